import Tensors

/// ONNX `Flatten`: (d0,...,dk-1, dk,...) -> (d0·…·dk-1, dk·…).
struct FlattenOp: Operator {
    let axis: Int

    init(_ a: Attributes) throws { axis = try a.int("axis", default: 1) }

    func forward(_ inputs: [Tensor?]) throws -> [Tensor] {
        let x = try required(inputs, 0, "input")
        let k = axis < 0 ? axis + x.rank : axis
        guard k >= 0 && k <= x.rank else { throw EngineError("axis \(axis) out of range for rank \(x.rank)") }
        return [x.reshaped([x.shape[..<k].elementCount, x.shape[k...].elementCount])]
    }

    func backward(inputs: [Tensor?], outputs: [Tensor], gradOutputs: [Tensor?]) throws -> [Tensor?] {
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

    // A: (M,K), B: (K,N), C: broadcastable to (M,N) -> Y: (M,N)
    func forward(_ inputs: [Tensor?]) throws -> [Tensor] {
        let c = inputs.count > 2 ? inputs[2] : nil
        return [try Gemm.forward(a: try required(inputs, 0, "A"), b: try required(inputs, 1, "B"), c: c,
                                 transA: transA, transB: transB, alpha: alpha, beta: beta)]
    }

    func backward(inputs: [Tensor?], outputs: [Tensor], gradOutputs: [Tensor?]) throws -> [Tensor?] {
        guard let dy = gradOutputs[0] else { return [nil, nil, nil] }
        let da = Gemm.backwardA(dy: dy, a: try required(inputs, 0, "A"), b: try required(inputs, 1, "B"),
                                transA: transA, transB: transB, alpha: alpha)
        return [da, nil, nil]
    }
}

/// ONNX `MatMul` with NumPy semantics: batched over leading axes (broadcast), 1-D operands
/// promoted and the promoted axis removed afterwards.
struct MatMulOp: Operator {
    func forward(_ inputs: [Tensor?]) throws -> [Tensor] {
        [try MatMul.forward(try required(inputs, 0, "A"), try required(inputs, 1, "B"))]
    }

    func backward(inputs: [Tensor?], outputs: [Tensor], gradOutputs: [Tensor?]) throws -> [Tensor?] {
        guard let dy = gradOutputs[0] else { return [nil, nil] }
        return [try MatMul.backwardA(dy: dy, a: try required(inputs, 0, "A"), b: try required(inputs, 1, "B")), nil]
    }
}
