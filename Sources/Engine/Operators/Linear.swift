import Tensors

/// ONNX `Flatten`: (d0,...,dk-1, dk,...) -> (d0·…·dk-1, dk·…).
struct FlattenOp: Operator {
    let axis: Int

    init(_ a: Attributes) throws { axis = try a.int("axis", default: 1) }

    func forward(_ inputs: [Tensor?], _ pass: Pass) throws -> [Tensor] {
        let x = try required(inputs, 0, "input")
        let k = axis < 0 ? axis + x.rank : axis
        guard k >= 0 && k <= x.rank else { throw EngineError("axis \(axis) out of range for rank \(x.rank)") }
        return [x.reshaped([x.shape[..<k].elementCount, x.shape[k...].elementCount])]
    }

    func backward(inputs: [Tensor?], outputs: [Tensor], gradOutputs: [Tensor?], _ pass: Pass) throws -> [Tensor?] {
        guard let dy = gradOutputs[0] else { return [nil] }
        return [dy.reshaped(try required(inputs, 0, "input").shape)]
    }
}

/// ONNX `Gemm`: Y = α·op(A)·op(B) + β·C.
struct GemmOp: Operator {
    let alpha: Float, beta: Float
    let transA: Bool, transB: Bool

    init(_ a: Attributes) throws {
        alpha = try a.float("alpha", default: 1)
        beta = try a.float("beta", default: 1)
        transA = try a.int("transA", default: 0) != 0
        transB = try a.int("transB", default: 0) != 0
    }

    /// The weights packed once for the GEMM kernel (see `forward`).
    private(set) var packedWeights = PackedWeightsCache()

    func withFreshCaches() -> any Operator {
        var copy = self
        copy.packedWeights = PackedWeightsCache()
        return copy
    }

    // A: (M,K), B: (K,N), C: broadcastable to (M,N) -> Y: (M,N)
    func forward(_ inputs: [Tensor?], _ pass: Pass) throws -> [Tensor] {
        let a = try required(inputs, 0, "A"), b = try required(inputs, 1, "B")
        let c = inputs.count > 2 ? inputs[2] : nil
        if a.rank == 2, b.rank == 2 { // the product (M, N), checked before allocating
            try Limits.checkShape([transA ? a.shape[1] : a.shape[0], transB ? b.shape[0] : b.shape[1]], "Gemm")
        }
        if !transA, a.rank == 2, b.rank == 2, a.shape[0] >= 4, pass.kernels.ownKernels {
            // A batch through a fully connected layer: Yᵀ = W·Aᵀ as a 1×1 convolution over the batch,
            // so that W (N,K), the large operand, is packed once per model instead of on every call.
            let (m, k) = (a.shape[0], a.shape[1])
            let w = transB ? b : packedWeights.derived("transposed", from: b) { Layout.transpose($0, perm: [1, 0]) }
            if w.shape[1] == k {
                let n = w.shape[0]
                let x = Layout.transpose(a, perm: [1, 0]).reshaped([1, k, 1, m])
                let yt = try Conv2D.forward(x: x, w: w.reshaped([n, k, 1, 1]), b: nil, geometry: Conv2DGeometry(kernel: (1, 1)),
                                            cache: packedWeights, kernels: pass.kernels)
                var y = Layout.transpose(yt.reshaped([n, m]), perm: [1, 0])
                if alpha != 1 { y.data.withUnsafeMutableBufferPointer { p in for i in p.indices { p[i] *= alpha } } }
                if let c, beta != 0 { y = try Elementwise.binary(y, c) { [beta] yv, cv in yv + beta * cv } }
                return [y]
            }
        }
        return [try Gemm.forward(a: a, b: b, c: c, transA: transA, transB: transB, alpha: alpha, beta: beta,
                                 kernels: pass.kernels)]
    }

    func backward(inputs: [Tensor?], outputs: [Tensor], gradOutputs: [Tensor?], _ pass: Pass) throws -> [Tensor?] {
        guard let dy = gradOutputs[0] else { return [nil, nil, nil] }
        let da = Gemm.backwardA(dy: dy, a: try required(inputs, 0, "A"), b: try required(inputs, 1, "B"),
                                transA: transA, transB: transB, alpha: alpha, kernels: pass.kernels)
        return [da, nil, nil]
    }
}

/// ONNX `MatMul` with NumPy semantics: batched over leading axes (broadcast), 1-D operands
/// promoted and the promoted axis removed afterwards.
struct MatMulOp: Operator {
    func forward(_ inputs: [Tensor?], _ pass: Pass) throws -> [Tensor] {
        [try MatMul.forward(try required(inputs, 0, "A"), try required(inputs, 1, "B"), kernels: pass.kernels)]
    }

    func backward(inputs: [Tensor?], outputs: [Tensor], gradOutputs: [Tensor?], _ pass: Pass) throws -> [Tensor?] {
        guard let dy = gradOutputs[0] else { return [nil, nil] }
        return [try MatMul.backwardA(dy: dy, a: try required(inputs, 0, "A"), b: try required(inputs, 1, "B"),
                                   kernels: pass.kernels), nil]
    }
}
