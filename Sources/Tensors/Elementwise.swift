import CKernels

/// Elementwise kernels with ONNX (NumPy) broadcasting, and their vector-Jacobian products.
public enum Elementwise {
    /// y = 1 / (1 + exp(−x)): `ck_sigmoid` (AVX-512 on that path), large tensors on
    /// `BLAS.threadCount` threads.
    public static func sigmoid(_ x: Tensor, kernels: KernelOptions) -> Tensor {
        let level = kernels.level
        var y = Tensor(uninitializedShape: x.shape)
        let n = x.count, parts = n >= 1 << 16 ? Swift.max(1, BLAS.threadCount) : 1
        x.data.withUnsafeBufferPointer { xp in
            y.data.withUnsafeMutableBufferPointer { yp in
                let io = InOut(x: xp.baseAddress!, y: yp.baseAddress!)
                Parallel.run(parts, items: parts) { t in
                    let lo = n * t / parts, hi = n * (t + 1) / parts
                    ck_sigmoid(level, io.x + lo, io.y + lo, hi - lo)
                }
            }
        }
        return y
    }

    /// An input and an output buffer handed to worker threads, which write disjoint ranges.
    struct InOut: @unchecked Sendable {
        let x: UnsafePointer<Float>
        let y: UnsafeMutablePointer<Float>
    }

    /// The four arithmetic operators, for `arithmetic`'s specialized loops.
    public enum Arithmetic: Sendable { case add, sub, mul, div }

    /// a ∘ b with broadcasting, for ∘ one of + − × ÷. The output is cut into runs (the longest
    /// trailing block of axes) over which each operand is either contiguous or one repeated value
    /// (a per-channel scale over an H×W plane is one run per channel), and each run is one
    /// vectorizable loop. Same results as `binary(a, b, ∘)`, element for element.
    public static func arithmetic(_ a: Tensor, _ b: Tensor, _ op: Arithmetic) throws -> Tensor {
        switch op {
        case .add: return try runs(a, b, Add.self)
        case .sub: return try runs(a, b, Sub.self)
        case .mul: return try runs(a, b, Mul.self)
        case .div: return try runs(a, b, Div.self)
        }
    }

    protocol ScalarOperator: SendableMetatype { static func apply(_ a: Float, _ b: Float) -> Float }
    enum Add: ScalarOperator { @inline(__always) static func apply(_ a: Float, _ b: Float) -> Float { a + b } }
    enum Sub: ScalarOperator { @inline(__always) static func apply(_ a: Float, _ b: Float) -> Float { a - b } }
    enum Mul: ScalarOperator { @inline(__always) static func apply(_ a: Float, _ b: Float) -> Float { a * b } }
    enum Div: ScalarOperator { @inline(__always) static func apply(_ a: Float, _ b: Float) -> Float { a / b } }

    static func runs<O: ScalarOperator>(_ a: Tensor, _ b: Tensor, _: O.Type) throws -> Tensor {
        let shape = try broadcastShape(a.shape, b.shape)
        let sa = broadcastStrides(a.shape, to: shape), sb = broadcastStrides(b.shape, to: shape)
        // The run: trailing axes over which a (and b) is contiguous (step 1) or constant (step 0).
        var run = 1, stepA = -1, stepB = -1, outer = shape.count
        while outer > 0 {
            let k = outer - 1
            if shape[k] == 1 { outer -= 1; continue }
            let ma = sa[k] == 0 ? 0 : (sa[k] == run ? 1 : 2), mb = sb[k] == 0 ? 0 : (sb[k] == run ? 1 : 2)
            if ma == 2 || mb == 2 || (stepA >= 0 && ma != stepA) || (stepB >= 0 && mb != stepB) { break }
            (stepA, stepB) = (ma, mb)
            run *= shape[k]
            outer -= 1
        }
        if stepA < 0 { (stepA, stepB) = (1, 1) }
        var y = Tensor(uninitializedShape: shape)
        let total = y.count, runs = run > 0 ? total / run : 0
        // Large results (2^16 values and more: a squeeze-and-excitation scaling) split by runs
        // across the threads; each output is the same single operation either way.
        let parts = total >= 1 << 16 ? Swift.max(1, Swift.min(runs, BLAS.threadCount)) : 1
        let (steps, outerAxes, runLength) = ((stepA, stepB), outer, run)
        a.data.withUnsafeBufferPointer { ap in
            b.data.withUnsafeBufferPointer { bp in
                y.data.withUnsafeMutableBufferPointer { yp in
                    let io = Operands(a: ap.baseAddress!, b: bp.baseAddress!, y: yp.baseAddress!)
                    Parallel.run(parts, items: parts) { t in
                        let (r0, r1) = (runs * t / parts, runs * (t + 1) / parts)
                        // The multi-index over the outer axes of run r0, and the offsets it gives.
                        var index = [Int](repeating: 0, count: outerAxes)
                        var (ia, ib, rest) = (0, 0, r0)
                        for axis in stride(from: outerAxes - 1, through: 0, by: -1) {
                            index[axis] = rest % shape[axis]
                            rest /= shape[axis]
                            ia += index[axis] * sa[axis]
                            ib += index[axis] * sb[axis]
                        }
                        for r in r0..<r1 {
                            let (pa, pb, py) = (io.a + ia, io.b + ib, io.y + r * runLength)
                            switch steps {
                            case (1, 1): for i in 0..<runLength { py[i] = O.apply(pa[i], pb[i]) }
                            case (1, _): let v = pb[0]; for i in 0..<runLength { py[i] = O.apply(pa[i], v) }
                            case (_, 1): let v = pa[0]; for i in 0..<runLength { py[i] = O.apply(v, pb[i]) }
                            default: let v = O.apply(pa[0], pb[0]); for i in 0..<runLength { py[i] = v }
                            }
                            advance(&index, axes: outerAxes, shape, &ia, sa, &ib, sb)
                        }
                    }
                }
            }
        }
        return y
    }

    /// Two operands and a result handed to worker threads, which write disjoint runs.
    struct Operands: @unchecked Sendable {
        let a: UnsafePointer<Float>
        let b: UnsafePointer<Float>
        let y: UnsafeMutablePointer<Float>
    }

    /// y = max(x, 0)
    public static func reluForward(_ x: Tensor) -> Tensor {
        var y = Tensor(uninitializedShape: x.shape)
        x.data.withUnsafeBufferPointer { xp in
            y.data.withUnsafeMutableBufferPointer { yp in
                for i in 0..<xp.count { yp[i] = xp[i] > 0 ? xp[i] : 0 }
            }
        }
        return y
    }

    /// dx = dy · 1[x > 0]  (the derivative at 0 is taken as 0, as PyTorch)
    public static func reluBackward(dy: Tensor, x: Tensor) -> Tensor {
        var dx = dy
        for i in 0..<dx.count where !(x.data[i] > 0) { dx.data[i] = 0 }
        return dx
    }

    /// a + b for tensors of one shape.
    public static func add(_ a: Tensor, _ b: Tensor) -> Tensor {
        precondition(a.shape == b.shape, "add: shapes \(a.shape) and \(b.shape) differ")
        var y = Tensor(uninitializedShape: a.shape)
        a.data.withUnsafeBufferPointer { ap in
            b.data.withUnsafeBufferPointer { bp in
                y.data.withUnsafeMutableBufferPointer { yp in
                    for i in 0..<ap.count { yp[i] = ap[i] + bp[i] }
                }
            }
        }
        return y
    }

    /// The broadcast shape of two shapes (NumPy rules, aligned on the right).
    public static func broadcastShape(_ a: [Int], _ b: [Int]) throws -> [Int] {
        let r = Swift.max(a.count, b.count)
        let pa = Array(repeating: 1, count: r - a.count) + a
        let pb = Array(repeating: 1, count: r - b.count) + b
        return try (0..<r).map { i in
            if pa[i] == pb[i] || pb[i] == 1 { return pa[i] }
            if pa[i] == 1 { return pb[i] }
            throw TensorError("shapes \(a) and \(b) do not broadcast")
        }
    }

    /// Applies `op` elementwise after broadcasting `a` and `b` to a common shape.
    public static func binary(_ a: Tensor, _ b: Tensor, _ op: (Float, Float) -> Float) throws -> Tensor {
        if a.shape == b.shape {
            var out = Tensor(uninitializedShape: a.shape)
            a.data.withUnsafeBufferPointer { ap in
                b.data.withUnsafeBufferPointer { bp in
                    out.data.withUnsafeMutableBufferPointer { op_ in
                        for i in 0..<ap.count { op_[i] = op(ap[i], bp[i]) }
                    }
                }
            }
            return out
        }
        let shape = try broadcastShape(a.shape, b.shape)
        let sa = broadcastStrides(a.shape, to: shape)
        let sb = broadcastStrides(b.shape, to: shape)
        var out = Tensor(shape: shape)
        var index = [Int](repeating: 0, count: shape.count)
        var ia = 0, ib = 0
        for o in 0..<out.count {
            out.data[o] = op(a.data[ia], b.data[ib])
            advance(&index, axes: shape.count, shape, &ia, sa, &ib, sb)
        }
        return out
    }

    /// One odometer step of the multi-index over the first `axes` axes of `shape`, moving two
    /// source offsets along with their strides (0 on broadcast axes).
    @inline(__always)
    static func advance(_ index: inout [Int], axes: Int, _ shape: [Int], _ ia: inout Int, _ sa: [Int],
                        _ ib: inout Int, _ sb: [Int]) {
        var axis = axes - 1
        while axis >= 0 {
            index[axis] += 1
            ia += sa[axis]; ib += sb[axis]
            if index[axis] < shape[axis] { return }
            ia -= sa[axis] * shape[axis]; ib -= sb[axis] * shape[axis]
            index[axis] = 0
            axis -= 1
        }
    }

    /// Sums `grad` (of the broadcast shape) down to `shape`: the VJP of broadcasting.
    public static func sumToShape(_ grad: Tensor, _ shape: [Int]) -> Tensor {
        if grad.shape == shape { return grad }
        let s = broadcastStrides(shape, to: grad.shape)
        var out = Tensor(shape: shape)
        var index = [Int](repeating: 0, count: grad.rank)
        var io = 0
        for g in 0..<grad.count {
            out.data[io] += grad.data[g]
            var axis = grad.rank - 1
            while axis >= 0 {
                index[axis] += 1
                io += s[axis]
                if index[axis] < grad.shape[axis] { break }
                io -= s[axis] * grad.shape[axis]
                index[axis] = 0
                axis -= 1
            }
        }
        return out
    }

    /// Strides of `shape` read as if broadcast to `target` (0 on broadcast axes).
    static func broadcastStrides(_ shape: [Int], to target: [Int]) -> [Int] {
        let padded = Array(repeating: 1, count: target.count - shape.count) + shape
        let st = padded.rowMajorStrides
        return (0..<target.count).map { padded[$0] == 1 && target[$0] != 1 ? 0 : st[$0] }
    }
}

/// Inference-mode batch normalization over axis 1: y = γ (x − μ) / √(σ² + ε) + β.
public enum BatchNorm {
    /// Per-channel affine factors (a, b) with y = a·x + b.
    public static func affine(scale: Tensor, bias: Tensor, mean: Tensor, variance: Tensor, epsilon: Float) -> (a: [Float], b: [Float]) {
        var a = [Float](repeating: 0, count: scale.count), b = a
        for c in 0..<scale.count {
            a[c] = scale.data[c] / (variance.data[c] + epsilon).squareRoot()
            b[c] = bias.data[c] - a[c] * mean.data[c]
        }
        return (a, b)
    }

    /// x: (N,C,...) -> y: (N,C,...) = a·x + b per channel, then max(y, 0) when `relu` (a ReLU
    /// after it, fused by inference passes: `BatchNormReluFusion`). `ck_channel_affine` on the
    /// planes (AVX-512 on that path), large tensors split by planes across `BLAS.threadCount`
    /// threads.
    public static func forward(x: Tensor, a: [Float], b: [Float], relu: Bool = false, kernels: KernelOptions) -> Tensor {
        let level = kernels.level
        var y = Tensor(uninitializedShape: x.shape)
        let (n, c) = (x.shape[0], x.shape[1])
        let plane = x.shape.dropFirst(2).elementCount, planes = n * c
        let parts = x.count >= 1 << 16 ? Swift.max(1, Swift.min(planes, BLAS.threadCount)) : 1
        guard planes > 0, plane > 0 else { return y }
        x.data.withUnsafeBufferPointer { xp in
            y.data.withUnsafeMutableBufferPointer { yp in
                a.withUnsafeBufferPointer { ap in
                    b.withUnsafeBufferPointer { bp in
                        let io = Elementwise.InOut(x: xp.baseAddress!, y: yp.baseAddress!)
                        let ab = Coefficients(a: ap.baseAddress!, b: bp.baseAddress!)
                        Parallel.run(parts, items: parts) { t in
                            let (p0, p1) = (planes * t / parts, planes * (t + 1) / parts)
                            ck_channel_affine(level, io.x + p0 * plane, io.y + p0 * plane, p1 - p0, plane, ab.a, ab.b,
                                              Int32(c), Int32(p0 % c), relu ? 1 : 0)
                        }
                    }
                }
            }
        }
        return y
    }

    /// The per-channel factors handed to worker threads (read only).
    struct Coefficients: @unchecked Sendable {
        let a: UnsafePointer<Float>
        let b: UnsafePointer<Float>
    }

    /// dx = a · dy, per channel.
    public static func backward(dy: Tensor, a: [Float]) -> Tensor {
        var dx = dy
        let (n, c) = (dy.shape[0], dy.shape[1])
        let plane = dy.shape.dropFirst(2).elementCount
        for i in 0..<n {
            for j in 0..<c {
                let base = (i * c + j) * plane
                for k in 0..<plane { dx.data[base + k] *= a[j] }
            }
        }
        return dx
    }
}

/// ONNX `Gemm`: Y = α·op(A)·op(B) + β·C, with C broadcast to (M,N).
public enum Gemm {
    /// A: (M,K) or (K,M) when transA; B: (K,N) or (N,K) when transB; C: broadcastable to (M,N).
    public static func forward(a: Tensor, b: Tensor, c: Tensor?, transA: Bool, transB: Bool,
                               alpha: Float, beta: Float, kernels: KernelOptions) throws -> Tensor {
        guard a.rank == 2, b.rank == 2 else { throw TensorError("Gemm: inputs must be 2-D, got \(a.shape) and \(b.shape)") }
        let m = transA ? a.shape[1] : a.shape[0]
        let k = transA ? a.shape[0] : a.shape[1]
        let kb = transB ? b.shape[1] : b.shape[0]
        let n = transB ? b.shape[0] : b.shape[1]
        guard k == kb else { throw TensorError("Gemm: inner dimensions differ: \(a.shape) and \(b.shape)") }
        var y: Tensor
        var betaEff: Float = 0
        if let c, beta != 0 {
            // Broadcast C into Y first, then let SGEMM accumulate on top of β·C.
            y = try Elementwise.binary(Tensor(shape: [m, n]), c) { _, cv in cv }
            betaEff = beta
        } else {
            y = Tensor(shape: [m, n])
        }
        a.data.withUnsafeBufferPointer { ap in
            b.data.withUnsafeBufferPointer { bp in
                y.data.withUnsafeMutableBufferPointer { yp in
                    BLAS.sgemm(kernels: kernels, transA: transA, transB: transB, m: m, n: n, k: k, alpha: alpha,
                               a: ap.baseAddress!, lda: a.shape[1], b: bp.baseAddress!, ldb: b.shape[1],
                               beta: betaEff, c: yp.baseAddress!, ldc: n)
                }
            }
        }
        return y
    }

    /// dA = α · dY · op(B)ᵀ, laid out like A.  dy: (M,N)
    public static func backwardA(dy: Tensor, a: Tensor, b: Tensor, transA: Bool, transB: Bool, alpha: Float,
                                 kernels: KernelOptions) -> Tensor {
        let m = dy.shape[0], n = dy.shape[1]
        let k = transB ? b.shape[1] : b.shape[0]
        var da = Tensor(shape: a.shape)
        dy.data.withUnsafeBufferPointer { dyp in
            b.data.withUnsafeBufferPointer { bp in
                da.data.withUnsafeMutableBufferPointer { dap in
                    if transA {
                        // A stored (K,M): dA = α · op(B) · dYᵀ  -> (K,M)
                        BLAS.sgemm(kernels: kernels, transA: transB, transB: true, m: k, n: m, k: n, alpha: alpha,
                                   a: bp.baseAddress!, lda: b.shape[1], b: dyp.baseAddress!, ldb: n,
                                   c: dap.baseAddress!, ldc: m)
                    } else {
                        // A stored (M,K): dA = α · dY · op(B)ᵀ -> (M,K)
                        BLAS.sgemm(kernels: kernels, transA: false, transB: !transB, m: m, n: k, k: n, alpha: alpha,
                                   a: dyp.baseAddress!, lda: n, b: bp.baseAddress!, ldb: b.shape[1],
                                   c: dap.baseAddress!, ldc: k)
                    }
                }
            }
        }
        return da
    }
}
