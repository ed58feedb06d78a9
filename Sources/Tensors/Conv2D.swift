/// 2-D convolution (cross-correlation, as ONNX `Conv` and PyTorch `conv2d`) by im2col + SGEMM.
///
/// This is the clear reference kernel: one `im2col` per image and group, one GEMM. Faster
/// kernels must be tested against it.
public struct Conv2DGeometry: Sendable, Equatable {
    public var kernel: (h: Int, w: Int)
    public var strides: (h: Int, w: Int)
    /// Zero padding: top, left, bottom, right.
    public var pads: (top: Int, left: Int, bottom: Int, right: Int)
    public var dilations: (h: Int, w: Int)
    public var group: Int

    public init(kernel: (Int, Int), strides: (Int, Int) = (1, 1),
                pads: (Int, Int, Int, Int) = (0, 0, 0, 0),
                dilations: (Int, Int) = (1, 1), group: Int = 1) {
        self.kernel = (kernel.0, kernel.1)
        self.strides = (strides.0, strides.1)
        self.pads = (pads.0, pads.1, pads.2, pads.3)
        self.dilations = (dilations.0, dilations.1)
        self.group = group
    }

    public static func == (a: Self, b: Self) -> Bool {
        a.kernel == b.kernel && a.strides == b.strides && a.pads == b.pads
            && a.dilations == b.dilations && a.group == b.group
    }

    /// Output spatial size for an input of `h`×`w`.
    public func outputSize(h: Int, w: Int) -> (h: Int, w: Int) {
        let eh = dilations.h * (kernel.h - 1) + 1
        let ew = dilations.w * (kernel.w - 1) + 1
        return ((h + pads.top + pads.bottom - eh) / strides.h + 1,
                (w + pads.left + pads.right - ew) / strides.w + 1)
    }
}

public enum Conv2D {
    /// y = conv(x, w) + b.
    ///
    /// - Parameters:
    ///   - x: (N,C,H,W)
    ///   - w: (M,C/group,kh,kw)
    ///   - b: (M) or nil
    /// - Returns: y: (N,M,OH,OW)
    public static func forward(x: Tensor, w: Tensor, b: Tensor?, geometry g: Conv2DGeometry) throws -> Tensor {
        let (n, c, h, wd) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
        let m = w.shape[0], cg = w.shape[1]
        guard c == cg * g.group, m % g.group == 0 else {
            throw TensorError("Conv: input has \(c) channels but weight \(w.shape) with group \(g.group) expects \(cg * g.group)")
        }
        let (oh, ow) = g.outputSize(h: h, w: wd)
        guard oh > 0, ow > 0 else { throw TensorError("Conv: output would be empty for input \(x.shape)") }
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
                                BLAS.sgemm(m: mg, n: plane, k: kdim,
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
    /// - Parameters:
    ///   - dy: (N,M,OH,OW)
    ///   - w: (M,C/group,kh,kw)
    ///   - inputShape: (N,C,H,W)
    /// - Returns: dx: (N,C,H,W)
    public static func backwardInput(dy: Tensor, w: Tensor, inputShape: [Int], geometry g: Conv2DGeometry) -> Tensor {
        let (n, c, h, wd) = (inputShape[0], inputShape[1], inputShape[2], inputShape[3])
        let m = w.shape[0], cg = w.shape[1]
        let (oh, ow) = (dy.shape[2], dy.shape[3])
        let mg = m / g.group
        let kdim = cg * g.kernel.h * g.kernel.w
        let plane = oh * ow
        var dx = Tensor(shape: inputShape)
        let direct = isPointwise(g)
        var col = [Float](repeating: 0, count: kdim * plane)
        dy.data.withUnsafeBufferPointer { dyp in
            w.data.withUnsafeBufferPointer { wp in
                dx.data.withUnsafeMutableBufferPointer { dxp in
                    col.withUnsafeMutableBufferPointer { colp in
                        for i in 0..<n {
                            for gi in 0..<g.group {
                                let dxg = dxp.baseAddress! + (i * c + gi * cg) * h * wd
                                // dcol (kdim, plane) = W_gᵀ (kdim, mg) · dy_g (mg, plane)
                                let dst = direct ? dxg : colp.baseAddress!
                                BLAS.sgemm(transA: true, m: kdim, n: plane, k: mg,
                                           a: wp.baseAddress! + gi * mg * kdim, lda: kdim,
                                           b: dyp.baseAddress! + (i * m + gi * mg) * plane, ldb: plane,
                                           c: dst, ldc: plane)
                                if !direct {
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

    /// 1×1 kernel, stride 1, no padding: the input plane already is the im2col matrix.
    static func isPointwise(_ g: Conv2DGeometry) -> Bool {
        g.kernel == (1, 1) && g.strides == (1, 1) && g.pads == (0, 0, 0, 0)
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
