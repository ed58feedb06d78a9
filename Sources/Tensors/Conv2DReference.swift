import CKernels
import Dispatch
import Foundation

/// The reference convolution (im2col and one GEMM per image and group) with its backward, and
/// the input gradient, which runs on the fast forward kernel where it can (`Conv2D.forward`).
extension Conv2D {
    /// The reference kernel: y = conv(x, w) + b by im2col and one GEMM per image and group.
    ///
    /// - Parameters:
    ///   - x: (N,C,H,W)
    ///   - w: (M,C/group,kh,kw)
    ///   - b: (M) or nil
    ///   - kernels: the GEMM's path (`BLAS.sgemm`)
    /// - Returns: y: (N,M,OH,OW)
    public static func referenceForward(x: Tensor, w: Tensor, b: Tensor?, geometry g: Conv2DGeometry,
                                        kernels: KernelOptions) throws -> Tensor {
        let (n, c, h, wd, m, cg, oh, ow) = try checkedShapes(x: x, w: w, geometry: g)
        let mg = m / g.group
        let kdim = cg * g.kernel.h * g.kernel.w
        let plane = oh * ow
        var y = Tensor(shape: [n, m, oh, ow])
        if let b {
            y.data.withUnsafeMutableBufferPointer { yp in
                for i in 0..<n {
                    for j in 0..<m { (yp.baseAddress! + (i * m + j) * plane).update(repeating: b.data[j], count: plane) }
                }
            }
        }
        let direct = isPointwise(g)
        var col = [Float](repeating: 0, count: direct ? 0 : kdim * plane)
        x.data.withUnsafeBufferPointer { xp in
            w.data.withUnsafeBufferPointer { wp in
                y.data.withUnsafeMutableBufferPointer { yp in
                    col.withUnsafeMutableBufferPointer { colp in
                        for i in 0..<n {
                            for gi in 0..<g.group {
                                let xg = xp.baseAddress! + (i * c + gi * cg) * h * wd
                                let src: UnsafePointer<Float>
                                if direct {
                                    src = xg
                                } else {
                                    im2col(xg, channels: cg, h: h, w: wd, geometry: g, oh: oh, ow: ow, col: colp.baseAddress!)
                                    src = UnsafePointer(colp.baseAddress!)
                                }
                                // With a bias, Y already holds it (below) and SGEMM accumulates onto it.
                                BLAS.sgemm(kernels: kernels, m: mg, n: plane, k: kdim,
                                           a: wp.baseAddress! + gi * mg * kdim, lda: kdim,
                                           b: src, ldb: plane, beta: b == nil ? 0 : 1,
                                           c: yp.baseAddress! + (i * m + gi * mg) * plane, ldc: plane)
                            }
                        }
                    }
                }
            }
        }
        return y
    }

    /// Vector-Jacobian product with respect to the input: dx = convᵀ(dy, w).
    ///
    /// At stride 1 the transposed convolution is itself a convolution, of dy with the weights
    /// transposed per group and flipped in space, padded by (extent − 1 − pad) on each side
    /// (extent = dilation·(k − 1) + 1): dx[c,y,x] = Σ_m Σ_i,j dy[m, y + pt − i·dh, x + pl − j·dw]·w[m,c,i,j].
    /// That runs on the fast forward kernel (the flipped weights are made once per weight tensor
    /// and kept in `cache`), as an inference convolution: no ReLU mask or max-pooling winner is
    /// read from a gradient, so Winograd may take F(4×4, 3×3) (`winogradTile`). Other strides
    /// run the reference's GEMM with the fold (col2im) in C.
    ///
    /// - Parameters:
    ///   - dy: (N,M,OH,OW)
    ///   - w: (M,C/group,kh,kw)
    ///   - inputShape: (N,C,H,W)
    /// - Returns: dx: (N,C,H,W)
    public static func backwardInput(dy: Tensor, w: Tensor, inputShape: [Int], geometry g: Conv2DGeometry,
                                     cache: PackedWeightsCache? = nil, kernels: KernelOptions) -> Tensor {
        let (eh, ew) = (g.dilations.h * (g.kernel.h - 1), g.dilations.w * (g.kernel.w - 1))
        let pads = (eh - g.pads.top, ew - g.pads.left, eh - g.pads.bottom, ew - g.pads.right)
        guard kernels.ownKernels else { return referenceBackwardInput(dy: dy, w: w, inputShape: inputShape, geometry: g, kernels: kernels) }
        guard g.strides == (1, 1), pads.0 >= 0, pads.1 >= 0, pads.2 >= 0, pads.3 >= 0 else {
            return gemmBackwardInput(dy: dy, w: w, inputShape: inputShape, geometry: g, foldInC: true, kernels: kernels)
        }
        let flipped = cache?.derived("transposed", from: w) { transposedFlipped($0, group: g.group) }
            ?? transposedFlipped(w, group: g.group)
        let gT = Conv2DGeometry(kernel: (g.kernel.h, g.kernel.w), strides: (1, 1), pads: pads,
                                dilations: (g.dilations.h, g.dilations.w), group: g.group)
        do {
            let dx = try forward(x: dy, w: flipped, b: nil, geometry: gT, cache: cache, inference: true, kernels: kernels)
            if dx.shape == inputShape { return dx }
        } catch {}
        return referenceBackwardInput(dy: dy, w: w, inputShape: inputShape, geometry: g, kernels: kernels)
    }

    /// w (M,C/group,kh,kw) -> w′ (C,M/group,kh,kw) with w′[g·cg + c, m, i, j] = w[g·mg + m, c, kh−1−i, kw−1−j].
    static func transposedFlipped(_ w: Tensor, group: Int) -> Tensor {
        let (m, cg, kh, kw) = (w.shape[0], w.shape[1], w.shape[2], w.shape[3])
        let mg = m / group, taps = kh * kw
        var out = Tensor(uninitializedShape: [cg * group, mg, kh, kw])
        w.data.withUnsafeBufferPointer { src in
            out.data.withUnsafeMutableBufferPointer { dst in
                for gi in 0..<group {
                    for mo in 0..<mg {
                        for c in 0..<cg {
                            let s = ((gi * mg + mo) * cg + c) * taps, d = ((gi * cg + c) * mg + mo) * taps
                            for t in 0..<taps { dst[d + t] = src[s + taps - 1 - t] }
                        }
                    }
                }
            }
        }
        return out
    }

    /// The reference backward: one GEMM per image and group into an im2col matrix, then col2im.
    public static func referenceBackwardInput(dy: Tensor, w: Tensor, inputShape: [Int], geometry g: Conv2DGeometry,
                                              kernels: KernelOptions) -> Tensor {
        gemmBackwardInput(dy: dy, w: w, inputShape: inputShape, geometry: g, foldInC: false, kernels: kernels)
    }

    /// Wᵀ·dY by GEMM, then col2im: the Swift fold (`col2im`, the reference) or `ck_col2im`.
    static func gemmBackwardInput(dy: Tensor, w: Tensor, inputShape: [Int], geometry g: Conv2DGeometry, foldInC: Bool,
                                  kernels: KernelOptions) -> Tensor {
        let (n, c, h, wd) = (inputShape[0], inputShape[1], inputShape[2], inputShape[3])
        let m = w.shape[0], cg = w.shape[1]
        let (oh, ow) = (dy.shape[2], dy.shape[3])
        let mg = m / g.group
        let kdim = cg * g.kernel.h * g.kernel.w
        let plane = oh * ow
        var dx = Tensor(shape: inputShape)
        let direct = isPointwise(g)
        var col = [Float](repeating: 0, count: kdim * plane)
        var geometry = g.kernelGeometry(channels: cg, h: h, w: wd, oh: oh, ow: ow)
        dy.data.withUnsafeBufferPointer { dyp in
            w.data.withUnsafeBufferPointer { wp in
                dx.data.withUnsafeMutableBufferPointer { dxp in
                    col.withUnsafeMutableBufferPointer { colp in
                        for i in 0..<n {
                            for gi in 0..<g.group {
                                let dxg = dxp.baseAddress! + (i * c + gi * cg) * h * wd
                                // dcol (kdim, plane) = W_gᵀ (kdim, mg) · dy_g (mg, plane)
                                let dst = direct ? dxg : colp.baseAddress!
                                BLAS.sgemm(kernels: kernels, transA: true, m: kdim, n: plane, k: mg,
                                           a: wp.baseAddress! + gi * mg * kdim, lda: kdim,
                                           b: dyp.baseAddress! + (i * m + gi * mg) * plane, ldb: plane,
                                           c: dst, ldc: plane)
                                if !direct && foldInC {
                                    ck_col2im(&geometry, colp.baseAddress!, dxg)
                                } else if !direct {
                                    col2im(colp.baseAddress!, channels: cg, h: h, w: wd, geometry: g, oh: oh, ow: ow, x: dxg)
                                }
                            }
                        }
                    }
                }
            }
        }
        return dx
    }

    /// Unfolds x (C,H,W) into col (C*kh*kw, OH*OW); padded taps read as zero.
    ///
    /// For each kernel tap the valid output columns form one range [lo, hi), computed once per
    /// row of taps, so the inner loop has no bounds tests (and is a plain copy at stride 1).
    static func im2col(_ x: UnsafePointer<Float>, channels: Int, h: Int, w: Int,
                       geometry g: Conv2DGeometry, oh: Int, ow: Int, col: UnsafeMutablePointer<Float>) {
        let sw = g.strides.w
        var row = 0
        for ch in 0..<channels {
            let xc = x + ch * h * w
            for ki in 0..<g.kernel.h {
                for kj in 0..<g.kernel.w {
                    let dst = col + row * oh * ow
                    let offset = kj * g.dilations.w - g.pads.left // ix = ox*sw + offset
                    // Valid ox: 0 ≤ ox*sw + offset < w.
                    let lo = min(ow, max(0, (-offset + sw - 1) / sw))
                    let hi = max(lo, min(ow, (w - offset + sw - 1) / sw))
                    for oy in 0..<oh {
                        let iy = oy * g.strides.h - g.pads.top + ki * g.dilations.h
                        let drow = dst + oy * ow
                        if iy < 0 || iy >= h {
                            drow.update(repeating: 0, count: ow)
                            continue
                        }
                        if lo > 0 { drow.update(repeating: 0, count: lo) }
                        if hi < ow { (drow + hi).update(repeating: 0, count: ow - hi) }
                        let xrow = xc + iy * w + offset
                        if sw == 1 {
                            (drow + lo).update(from: xrow + lo, count: hi - lo)
                        } else {
                            for ox in lo..<hi { drow[ox] = xrow[ox * sw] }
                        }
                    }
                    row += 1
                }
            }
        }
    }

    /// Folds col (C*kh*kw, OH*OW) back into x (C,H,W), adding overlapping taps (adjoint of im2col).
    static func col2im(_ col: UnsafePointer<Float>, channels: Int, h: Int, w: Int,
                       geometry g: Conv2DGeometry, oh: Int, ow: Int, x: UnsafeMutablePointer<Float>) {
        var row = 0
        for ch in 0..<channels {
            let xc = x + ch * h * w
            for ki in 0..<g.kernel.h {
                for kj in 0..<g.kernel.w {
                    let src = col + row * oh * ow
                    for oy in 0..<oh {
                        let iy = oy * g.strides.h - g.pads.top + ki * g.dilations.h
                        if iy < 0 || iy >= h { continue }
                        let srow = src + oy * ow
                        let xrow = xc + iy * w
                        for ox in 0..<ow {
                            let ix = ox * g.strides.w - g.pads.left + kj * g.dilations.w
                            if ix >= 0 && ix < w { xrow[ix] += srow[ox] }
                        }
                    }
                    row += 1
                }
            }
        }
    }
}
