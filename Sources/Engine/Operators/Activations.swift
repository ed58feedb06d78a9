import Foundation
import Tensors

/// An elementwise operator y = f(x) with its derivative f'(x, y) for the backward pass
/// (dx = dy · f'). One value per ONNX activation; the table below says which.
struct UnaryOp: Operator {
    let f: @Sendable (Float) -> Float
    let derivative: @Sendable (_ x: Float, _ y: Float) -> Float
    /// A vectorized kernel computing `f` over a whole tensor, where one exists.
    var kernel: (@Sendable (Tensor, KernelOptions) -> Tensor)? = nil

    func forward(_ inputs: [Tensor?], _ pass: Pass) throws -> [Tensor] {
        let x = try required(inputs, 0, "X")
        if let kernel { return [kernel(x, pass.kernels)] }
        return [Tensor(shape: x.shape, data: x.data.map(f))]
    }

    func backward(inputs: [Tensor?], outputs: [Tensor], gradOutputs: [Tensor?], _ pass: Pass) throws -> [Tensor?] {
        guard let dy = gradOutputs[0] else { return [nil] }
        let x = try required(inputs, 0, "X"), y = outputs[0]
        var dx = dy
        for i in 0..<dx.count { dx.data[i] *= derivative(x.data[i], y.data[i]) }
        return [dx]
    }
}

enum Activations {
    static func sigmoid(_ x: Float) -> Float { x >= 0 ? 1 / (1 + exp(-x)) : exp(x) / (1 + exp(x)) }

    /// ONNX activations and unary math ops, built from their attributes (ONNX defaults).
    static let table: [String: @Sendable (Attributes) throws -> any Operator] = [
        "Relu": { _ in ReluOp() },
        "LeakyRelu": { a in
            let alpha = try a.float("alpha", default: 0.01)
            return UnaryOp(f: { $0 >= 0 ? $0 : alpha * $0 }, derivative: { x, _ in x > 0 ? 1 : alpha })
        },
        "Elu": { a in
            let alpha = try a.float("alpha", default: 1)
            return UnaryOp(f: { $0 >= 0 ? $0 : alpha * (exp($0) - 1) }, derivative: { x, y in x > 0 ? 1 : y + alpha })
        },
        "Selu": { a in
            let alpha = try a.float("alpha", default: 1.67326319217681884765625)
            let gamma = try a.float("gamma", default: 1.05070102214813232421875)
            return UnaryOp(f: { $0 > 0 ? gamma * $0 : gamma * alpha * (exp($0) - 1) },
                           derivative: { x, _ in x > 0 ? gamma : gamma * alpha * exp(x) })
        },
        "Sigmoid": { _ in UnaryOp(f: sigmoid, derivative: { _, y in y * (1 - y) }, kernel: { Elementwise.sigmoid($0, kernels: $1) }) },
        "Tanh": { _ in UnaryOp(f: { tanh($0) }, derivative: { _, y in 1 - y * y }) },
        "HardSigmoid": { a in
            let alpha = try a.float("alpha", default: 0.2), beta = try a.float("beta", default: 0.5)
            return UnaryOp(f: { max(0, min(1, alpha * $0 + beta)) },
                           derivative: { x, _ in let v = alpha * x + beta; return v > 0 && v < 1 ? alpha : 0 })
        },
        "HardSwish": { _ in
            UnaryOp(f: { $0 * max(0, min(1, $0 / 6 + 0.5)) },
                    derivative: { x, _ in x < -3 ? 0 : (x > 3 ? 1 : x / 3 + 0.5) })
        },
        "Sqrt": { _ in UnaryOp(f: { $0.squareRoot() }, derivative: { _, y in 0.5 / y }) },
        "Exp": { _ in UnaryOp(f: { exp($0) }, derivative: { _, y in y }) },
        "Log": { _ in UnaryOp(f: { log($0) }, derivative: { x, _ in 1 / x }) },
        "Neg": { _ in UnaryOp(f: { -$0 }, derivative: { _, _ in -1 }) },
        "Abs": { _ in UnaryOp(f: { abs($0) }, derivative: { x, _ in x > 0 ? 1 : (x < 0 ? -1 : 0) }) },
        "Reciprocal": { _ in UnaryOp(f: { 1 / $0 }, derivative: { _, y in -y * y }) },
        "Erf": { _ in
            UnaryOp(f: { Float(erf(Double($0))) }, derivative: { x, _ in Float(2 / Double.pi.squareRoot() * exp(-Double(x * x))) })
        },
        "Clip": { try ClipOp($0) },
    ]
}

/// ONNX `Clip`: bounds as attributes (opset < 11) or as optional inputs min, max (opset ≥ 11).
struct ClipOp: Operator {
    let attributeBounds: (Float, Float)?

    init(_ a: Attributes) throws {
        attributeBounds = a.opset < 11
            ? (try a.float("min", default: -Float.greatestFiniteMagnitude), try a.float("max", default: Float.greatestFiniteMagnitude))
            : nil
    }

    func bounds(_ inputs: [Tensor?]) -> (Float, Float) {
        if let b = attributeBounds { return b }
        let lo = inputs.count > 1 ? inputs[1]?.data.first : nil
        let hi = inputs.count > 2 ? inputs[2]?.data.first : nil
        return (lo ?? -Float.infinity, hi ?? Float.infinity)
    }

    func forward(_ inputs: [Tensor?], _ pass: Pass) throws -> [Tensor] {
        let x = try required(inputs, 0, "input")
        let (lo, hi) = bounds(inputs)
        return [Tensor(shape: x.shape, data: x.data.map { min(hi, max(lo, $0)) })]
    }

    /// The ordinary gradient: 1 strictly inside the bounds (ReLU6 keeps it under guided backprop too).
    func backward(inputs: [Tensor?], outputs: [Tensor], gradOutputs: [Tensor?], _ pass: Pass) throws -> [Tensor?] {
        guard let dy = gradOutputs[0] else { return [nil] }
        let x = try required(inputs, 0, "input")
        let (lo, hi) = bounds(inputs)
        var dx = dy
        for i in 0..<dx.count where !(x.data[i] > lo && x.data[i] < hi) { dx.data[i] = 0 }
        return [dx] + Array(repeating: nil, count: max(0, inputs.count - 1))
    }
}
