import CKernels

/// Max and average pooling over the spatial axes of (N,C,D1,...,Dk), k = 1...3, each backward
/// beside its forward. ONNX semantics: explicit begin/end pads, strides, dilations, ceil_mode;
/// padded taps never win a max and count in an average only with `countIncludePad`.
public struct PoolGeometry: Sendable {
    public var kernel: [Int]
    public var strides: [Int]
    /// Begin pads for each spatial axis, then end pads (ONNX order).
    public var pads: [Int]
    public var dilations: [Int]
    public var ceilMode: Bool

    public init(kernel: [Int], strides: [Int]? = nil, pads: [Int]? = nil, dilations: [Int]? = nil, ceilMode: Bool = false) {
        self.kernel = kernel
        self.strides = strides ?? Array(repeating: 1, count: kernel.count)
        self.pads = pads ?? Array(repeating: 0, count: 2 * kernel.count)
        self.dilations = dilations ?? Array(repeating: 1, count: kernel.count)
        self.ceilMode = ceilMode
    }

    /// Output extents for spatial input extents; in ceil mode the last window must start inside
    /// the input or its leading padding (PyTorch's rule, which ONNX follows).
    public func outputSize(_ input: [Int]) -> [Int] {
        let k = kernel.count
        return (0..<k).map { i in
            let span = input[i] + pads[i] + pads[i + k] - (dilations[i] * (kernel[i] - 1) + 1)
            var o = (ceilMode ? (span + strides[i] - 1) / strides[i] : span / strides[i]) + 1
            if ceilMode && (o - 1) * strides[i] >= input[i] + pads[i] { o -= 1 }
            return o
        }
    }
}

public enum Pool {
    public enum Kind: Sendable { case max, average(countIncludePad: Bool) }

    /// y: (N,C,O1,...,Ok); for max pooling also the flat index into x of each window's first
    /// maximum (ONNX's `Indices`, row-major over the whole input), -1 for an all-padding window.
    /// 2-D pooling runs `forward2D` (planes split across `BLAS.threadCount` threads); other ranks
    /// the general `referenceForward`. `argmax: false` skips the indices (inference), and max
    /// pooling then runs the sliding-window kernel of `kernels`' path (`ck_maxpool2d`).
    ///
    /// - Parameter x: (N,C,D1,...,Dk)
    public static func forward(x: Tensor, geometry g: PoolGeometry, kind: Kind, argmax: Bool = true,
                               kernels: KernelOptions) throws -> (y: Tensor, argmax: [Int]) {
        if x.rank == 4 && g.kernel.count == 2 { return try forward2D(x: x, geometry: g, kind: kind, argmax: argmax, kernels: kernels) }
        return try referenceForward(x: x, geometry: g, kind: kind)
    }

    /// For each output index along one axis: the first kernel tap's input index that lies inside
    /// the input, how many taps do, and how many lie inside the input or its padding (flattened
    /// in threes, as `ck_pool2d` reads them).
    static func axisWindows(input: Int, output: Int, kernel: Int, stride: Int, padBegin: Int, padEnd: Int, dilation: Int) -> [Int32] {
        (0..<output).flatMap { o -> [Int32] in
            var first = -1, count = 0, within = 0
            for t in 0..<kernel {
                let i = o * stride - padBegin + t * dilation
                if i >= 0 && i < input { if first < 0 { first = i }; count += 1 }
                if i >= -padBegin && i < input + padEnd { within += 1 }
            }
            return [Int32(max(first, 0)), Int32(count), Int32(within)]
        }
    }

    /// 2-D max and average pooling, plane by plane (`ck_pool2d`); same results as
    /// `referenceForward` (first maximum in row-major tap order; an all-padding max window gives
    /// -inf and index -1).
    ///
    /// - Parameter x: (N,C,H,W)
    static func forward2D(x: Tensor, geometry g: PoolGeometry, kind: Kind, argmax wantArgmax: Bool,
                          kernels: KernelOptions) throws -> (y: Tensor, argmax: [Int]) {
        let (h, w) = (x.shape[2], x.shape[3])
        let out = g.outputSize([h, w])
        guard out.allSatisfy({ $0 > 0 }) else { throw TensorError("pooling: output would be empty for input \(x.shape)") }
        let (oh, ow) = (out[0], out[1])
        let rows = axisWindows(input: h, output: oh, kernel: g.kernel[0], stride: g.strides[0], padBegin: g.pads[0], padEnd: g.pads[2], dilation: g.dilations[0])
        let cols = axisWindows(input: w, output: ow, kernel: g.kernel[1], stride: g.strides[1], padBegin: g.pads[1], padEnd: g.pads[3], dilation: g.dilations[1])
        let planes = x.shape[0] * x.shape[1]
        var y = Tensor(uninitializedShape: [x.shape[0], x.shape[1], oh, ow])
        let code: Int32
        switch kind {
        case .max: code = Int32(CK_POOL_MAX)
        case .average(let includePad): code = Int32(includePad ? CK_POOL_AVERAGE_INCLUDE_PAD : CK_POOL_AVERAGE)
        }
        var argmax = [Int](repeating: -1, count: code == CK_POOL_MAX && wantArgmax ? y.count : 0)
        let threads = planes * oh * ow * g.kernel[0] * g.kernel[1] < 1 << 16 ? 1 : BLAS.threadCount
        let level = kernels.level
        if code == CK_POOL_MAX && !wantArgmax && level > 0 {
            // Inference: the vectorized sliding-window kernel, blocks of planes on each thread.
            let geometry = Conv2DGeometry(kernel: (g.kernel[0], g.kernel[1]), strides: (g.strides[0], g.strides[1]),
                                          pads: (g.pads[0], g.pads[1], g.pads[2], g.pads[3]),
                                          dilations: (g.dilations[0], g.dilations[1]))
                .kernelGeometry(channels: 1, h: h, w: w, oh: oh, ow: ow)
            let blocks = Swift.min(planes, 2 * threads)
            let done = x.data.withUnsafeBufferPointer { xb in
                y.data.withUnsafeMutableBufferPointer { yb in
                    let p = PoolPointers(x: xb.baseAddress!, y: yb.baseAddress!, argmax: nil, rows: nil, cols: nil)
                    let status = Conv2D.StatusSlots(count: blocks)
                    defer { status.deallocate() }
                    Parallel.run(threads, items: blocks) { b in
                        let (p0, p1) = (planes * b / blocks, planes * (b + 1) / blocks)
                        var gp = geometry
                        if p1 > p0 { status.slots[b] = ck_maxpool2d(level, &gp, p.x + p0 * h * w, Int32(p1 - p0), p.y + p0 * oh * ow) }
                    }
                    return !status.anyFailed
                }
            }
            if done { return (y, []) }
        }
        let (rowStep, colStep) = (Int32(g.dilations[0]), Int32(g.dilations[1]))
        x.data.withUnsafeBufferPointer { xb in
            y.data.withUnsafeMutableBufferPointer { yb in
                argmax.withUnsafeMutableBufferPointer { ab in
                    rows.withUnsafeBufferPointer { rb in
                        cols.withUnsafeBufferPointer { cb in
                            let p = PoolPointers(x: xb.baseAddress!, y: yb.baseAddress!, argmax: ab.isEmpty ? nil : ab.baseAddress,
                                                 rows: rb.baseAddress!, cols: cb.baseAddress!)
                            Parallel.run(threads, items: planes) { plane in
                                ck_pool2d(p.x + plane * h * w, Int32(w), Int32(oh), Int32(ow), p.rows!, rowStep, p.cols!, colStep, code,
                                          p.y + plane * oh * ow,
                                          p.argmax.map { UnsafeMutableRawPointer($0 + plane * oh * ow).assumingMemoryBound(to: Int64.self) },
                                          Int64(plane * h * w))
                            }
                        }
                    }
                }
            }
        }
        return (y, argmax)
    }

    /// The general k-D kernel (k = 1...3), output position by output position.
    public static func referenceForward(x: Tensor, geometry g: PoolGeometry, kind: Kind) throws -> (y: Tensor, argmax: [Int]) {
        let k = g.kernel.count
        guard x.rank == k + 2 else { throw TensorError("pooling: input \(x.shape) does not have \(k) spatial axes") }
        let spatial = Array(x.shape.dropFirst(2))
        let out = g.outputSize(spatial)
        guard out.allSatisfy({ $0 > 0 }) else { throw TensorError("pooling: output would be empty for input \(x.shape)") }
        let planes = x.shape[0] * x.shape[1]
        let inPlane = spatial.elementCount, outPlane = out.elementCount
        let inStrides = spatial.rowMajorStrides
        var y = Tensor(shape: Array(x.shape.prefix(2)) + out)
        var argmax = [Int](repeating: -1, count: isMax(kind) ? y.count : 0)
        // Window offsets, as per-axis kernel indices.
        let taps = g.kernel.elementCount
        let tapIndex: [[Int]] = (0..<taps).map { t in
            var r = t
            return g.kernel.indices.reversed().map { a -> (Int, Int) in let v = r % g.kernel[a]; r /= g.kernel[a]; return (a, v) }
                .sorted { $0.0 < $1.0 }.map(\.1)
        }
        var position = [Int](repeating: 0, count: k)
        for o in 0..<outPlane {
            var r = o
            for a in stride(from: k - 1, through: 0, by: -1) { position[a] = r % out[a]; r /= out[a] }
            // Window start and, for count_include_pad=0, the number of real taps.
            var offsets: [Int] = []
            offsets.reserveCapacity(taps)
            var padded = 0
            for t in tapIndex {
                var flat = 0
                var inside = true
                var withinPads = true
                for a in 0..<k {
                    let i = position[a] * g.strides[a] - g.pads[a] + t[a] * g.dilations[a]
                    if i < 0 || i >= spatial[a] { inside = false }
                    if i < -g.pads[a] || i >= spatial[a] + g.pads[a + k] { withinPads = false }
                    flat += i * inStrides[a]
                }
                if inside { offsets.append(flat) } else if withinPads { padded += 1 }
            }
            for p in 0..<planes {
                let base = p * inPlane
                switch kind {
                case .max:
                    // The first maximum in tap order; a NaN never wins (an all-NaN window gives
                    // -inf at its first tap), as in every fast kernel.
                    var best = -Float.infinity, bestIndex = -1
                    for f in offsets {
                        if bestIndex < 0 { bestIndex = base + f }
                        if x.data[base + f] > best { best = x.data[base + f]; bestIndex = base + f }
                    }
                    y.data[p * outPlane + o] = best
                    argmax[p * outPlane + o] = bestIndex
                case .average(let includePad):
                    var s: Float = 0
                    for f in offsets { s += x.data[base + f] }
                    let count = offsets.count + (includePad ? padded : 0)
                    y.data[p * outPlane + o] = count > 0 ? s / Float(count) : 0
                }
            }
        }
        return (y, argmax)
    }

    /// Vector-Jacobian product: max pooling routes dy to each window's winner; average pooling
    /// spreads it evenly over the window's counted taps.
    public static func backward(dy: Tensor, x: Tensor, geometry g: PoolGeometry, kind: Kind, argmax: [Int]) -> Tensor {
        var dx = Tensor(shape: x.shape)
        switch kind {
        case .max:
            for o in 0..<dy.count where argmax[o] >= 0 { dx.data[argmax[o]] += dy.data[o] }
        case .average:
            // The average is linear: its adjoint applied to dy is the forward applied to unit impulses,
            // accumulated window by window.
            let k = g.kernel.count
            let spatial = Array(x.shape.dropFirst(2))
            let out = Array(dy.shape.dropFirst(2))
            let ones = Tensor(shape: [1, 1] + spatial, repeating: 1)
            // (Average pooling is the same plain loop on every kernel path.)
            let counts = (try? forward(x: ones, geometry: g, kind: kind, kernels: KernelOptions(path: .openblas)).y)
                ?? Tensor(shape: [1, 1] + out)
            let inStrides = spatial.rowMajorStrides
            let planes = x.shape[0] * x.shape[1]
            let inPlane = spatial.elementCount, outPlane = out.elementCount
            var position = [Int](repeating: 0, count: k)
            for o in 0..<outPlane {
                var r = o
                for a in stride(from: k - 1, through: 0, by: -1) { position[a] = r % out[a]; r /= out[a] }
                var offsets: [Int] = []
                for t in 0..<g.kernel.elementCount {
                    var rr = t, flat = 0, inside = true
                    for a in stride(from: k - 1, through: 0, by: -1) {
                        let ki = rr % g.kernel[a]; rr /= g.kernel[a]
                        let i = position[a] * g.strides[a] - g.pads[a] + ki * g.dilations[a]
                        if i < 0 || i >= spatial[a] { inside = false }
                        flat += i * inStrides[a]
                    }
                    if inside { offsets.append(flat) }
                }
                // counts holds (number of real taps)/divisor for a window of ones.
                let scale = offsets.isEmpty ? 0 : counts.data[o] / Float(offsets.count)
                for p in 0..<planes {
                    let g = dy.data[p * outPlane + o] * scale
                    for f in offsets { dx.data[p * inPlane + f] += g }
                }
            }
        }
        return dx
    }

    /// The buffers of one pooling, shared by the threads that split its planes (disjoint writes).
    private struct PoolPointers: @unchecked Sendable {
        let x: UnsafePointer<Float>
        let y: UnsafeMutablePointer<Float>
        let argmax: UnsafeMutablePointer<Int>?
        let rows: UnsafePointer<Int32>?
        let cols: UnsafePointer<Int32>?
    }


    static func isMax(_ k: Kind) -> Bool { if case .max = k { return true } else { return false } }
}
