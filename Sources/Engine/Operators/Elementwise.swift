import Tensors

/// ONNX `Relu`.
struct ReluOp: Operator {
    func forward(_ inputs: [Tensor?], _ pass: Pass) throws -> [Tensor] {
        [Elementwise.reluForward(try required(inputs, 0, "X"))]
    }

    func backward(inputs: [Tensor?], outputs: [Tensor], gradOutputs: [Tensor?], _ pass: Pass) throws -> [Tensor?] {
        guard var dx = gradOutputs[0] else { return [nil] }
        let x = try required(inputs, 0, "X")
        let relu = pass.relu
        x.data.withUnsafeBufferPointer { xp in
            dx.data.withUnsafeMutableBufferPointer { d in
                for i in 0..<d.count { d[i] = relu.apply(d[i], positive: xp[i] > 0) }
            }
        }
        return [dx]
    }
}

/// ONNX `Identity`, and `Dropout` in inference (where it is the identity).
struct IdentityOp: Operator {
    func forward(_ inputs: [Tensor?], _ pass: Pass) throws -> [Tensor] { [try required(inputs, 0, "X")] }

    func backward(inputs: [Tensor?], outputs: [Tensor], gradOutputs: [Tensor?], _ pass: Pass) throws -> [Tensor?] {
        [gradOutputs[0]]
    }
}

/// ONNX `BatchNormalization` in inference mode: per-channel affine y = a·x + b.
struct BatchNormalizationOp: Operator {
    let epsilon: Float
    let momentum: Float
    /// training_mode=1: normalize with the batch's statistics and also return the updated
    /// running mean and variance (ONNX conformance only; explanations always run in inference).
    let training: Bool

    init(_ a: Attributes) throws {
        epsilon = try a.float("epsilon", default: 1e-5)
        momentum = try a.float("momentum", default: 0.9)
        training = try a.int("training_mode", default: 0) != 0
    }

    func affine(_ inputs: [Tensor?]) throws -> (a: [Float], b: [Float]) {
        BatchNorm.affine(scale: try required(inputs, 1, "scale"), bias: try required(inputs, 2, "B"),
                         mean: try required(inputs, 3, "input_mean"), variance: try required(inputs, 4, "input_var"),
                         epsilon: epsilon)
    }

    // x: (N,C,...) -> y: (N,C,...)
    func forward(_ inputs: [Tensor?], _ pass: Pass) throws -> [Tensor] {
        let x = try required(inputs, 0, "X")
        if training { return try trainingForward(x, inputs, kernels: pass.kernels) }
        return [try forward(inputs, relu: false, kernels: pass.kernels)]
    }

    /// Inference mode: y = BN(x), or max(BN(x), 0) with `relu` (this node with the Relu after it,
    /// for inference passes: `BatchNormReluFusion`, which never takes a training-mode node).
    func forward(_ inputs: [Tensor?], relu: Bool, kernels: KernelOptions) throws -> Tensor {
        let x = try required(inputs, 0, "X")
        let (a, b) = try affine(inputs)
        guard x.rank >= 2, x.shape[1] == a.count else {
            throw EngineError("input \(x.shape) has \(x.rank >= 2 ? x.shape[1] : 0) channels, parameters have \(a.count)")
        }
        return BatchNorm.forward(x: x, a: a, b: b, relu: relu, kernels: kernels)
    }

    /// Batch statistics (population variance) per channel; running statistics updated with momentum.
    func trainingForward(_ x: Tensor, _ inputs: [Tensor?], kernels: KernelOptions) throws -> [Tensor] {
        let (n, c) = (x.shape[0], x.shape[1])
        let plane = x.shape.dropFirst(2).elementCount
        let count = Double(n * plane)
        var mean = Tensor(shape: [c]), variance = Tensor(shape: [c])
        for j in 0..<c {
            var s = 0.0, ss = 0.0
            for i in 0..<n { for k in 0..<plane { let v = Double(x.data[(i * c + j) * plane + k]); s += v; ss += v * v } }
            mean.data[j] = Float(s / count)
            variance.data[j] = Float(ss / count - (s / count) * (s / count))
        }
        let (a, b) = BatchNorm.affine(scale: try required(inputs, 1, "scale"), bias: try required(inputs, 2, "B"),
                                      mean: mean, variance: variance, epsilon: epsilon)
        let runningMean = try Elementwise.binary(try required(inputs, 3, "input_mean"), mean) { r, m in r * momentum + m * (1 - momentum) }
        let runningVar = try Elementwise.binary(try required(inputs, 4, "input_var"), variance) { r, v in r * momentum + v * (1 - momentum) }
        return [BatchNorm.forward(x: x, a: a, b: b, kernels: kernels), runningMean, runningVar]
    }

    func backward(inputs: [Tensor?], outputs: [Tensor], gradOutputs: [Tensor?], _ pass: Pass) throws -> [Tensor?] {
        guard let dy = gradOutputs[0] else { return [nil] }
        guard !training else { throw EngineError("backward of training-mode batch normalization is not supported").unsupported() }
        return [BatchNorm.backward(dy: dy, a: try affine(inputs).a)]
    }
}
