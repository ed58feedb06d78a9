import Tensors

/// ONNX `Relu`.
struct ReluOp: Operator {
    func forward(_ inputs: [Tensor?]) throws -> [Tensor] {
        [Elementwise.reluForward(try required(inputs, 0, "X"))]
    }

    func backward(inputs: [Tensor?], outputs: [Tensor], gradOutputs: [Tensor?]) throws -> [Tensor?] {
        guard let dy = gradOutputs[0] else { return [nil] }
        return [Elementwise.reluBackward(dy: dy, x: try required(inputs, 0, "X"))]
    }
}

/// ONNX `Add` with multidirectional broadcasting; each gradient is summed back to its input's shape.
struct AddOp: Operator {
    func forward(_ inputs: [Tensor?]) throws -> [Tensor] {
        [try Elementwise.binary(try required(inputs, 0, "A"), try required(inputs, 1, "B"), +)]
    }

    func backward(inputs: [Tensor?], outputs: [Tensor], gradOutputs: [Tensor?]) throws -> [Tensor?] {
        guard let dy = gradOutputs[0] else { return [nil, nil] }
        return [Elementwise.sumToShape(dy, try required(inputs, 0, "A").shape),
                Elementwise.sumToShape(dy, try required(inputs, 1, "B").shape)]
    }
}

/// ONNX `Identity`, and `Dropout` in inference (where it is the identity).
struct IdentityOp: Operator {
    func forward(_ inputs: [Tensor?]) throws -> [Tensor] { [try required(inputs, 0, "X")] }

    func backward(inputs: [Tensor?], outputs: [Tensor], gradOutputs: [Tensor?]) throws -> [Tensor?] {
        [gradOutputs[0]]
    }
}

/// ONNX `BatchNormalization` in inference mode: per-channel affine y = a·x + b.
struct BatchNormalizationOp: Operator {
    let epsilon: Float

    init(_ a: Attributes) throws {
        epsilon = try a.float("epsilon", default: 1e-5)
        if try a.int("training_mode", default: 0) != 0 {
            throw EngineError("training_mode=1 is not supported: Candela runs models in inference")
        }
    }

    func affine(_ inputs: [Tensor?]) throws -> (a: [Float], b: [Float]) {
        BatchNorm.affine(scale: try required(inputs, 1, "scale"), bias: try required(inputs, 2, "B"),
                         mean: try required(inputs, 3, "input_mean"), variance: try required(inputs, 4, "input_var"),
                         epsilon: epsilon)
    }

    // x: (N,C,...) -> y: (N,C,...)
    func forward(_ inputs: [Tensor?]) throws -> [Tensor] {
        let x = try required(inputs, 0, "X")
        let (a, b) = try affine(inputs)
        guard x.rank >= 2, x.shape[1] == a.count else {
            throw EngineError("input \(x.shape) has \(x.rank >= 2 ? x.shape[1] : 0) channels, parameters have \(a.count)")
        }
        return [BatchNorm.forward(x: x, a: a, b: b)]
    }

    func backward(inputs: [Tensor?], outputs: [Tensor], gradOutputs: [Tensor?]) throws -> [Tensor?] {
        guard let dy = gradOutputs[0] else { return [nil] }
        return [BatchNorm.backward(dy: dy, a: try affine(inputs).a)]
    }
}
