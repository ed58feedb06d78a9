import Foundation
import Tensors

/// A broadcasting binary operator y = f(a, b) with its partial derivatives, for ONNX Add, Sub,
/// Mul, Div and Pow. Gradients are summed back to each input's shape (the adjoint of broadcasting).
struct BinaryOp: Operator {
    let f: @Sendable (Float, Float) -> Float
    /// ∂f/∂a and ∂f/∂b at (a, b, y).
    let da: @Sendable (Float, Float, Float) -> Float
    let db: @Sendable (Float, Float, Float) -> Float
    /// For + − × ÷ on floats: the vectorized broadcasting loops (`Elementwise.arithmetic`)
    /// instead of a closure call per element.
    var kind: Elementwise.Arithmetic? = nil
    /// Add's derivatives are constant (1, 1): its backward only sums dy back to each shape.
    var isAdd: Bool { kind == .add }

    func forward(_ inputs: [Tensor?], _ pass: Pass) throws -> [Tensor] {
        let a = try required(inputs, 0, "A"), b = try required(inputs, 1, "B")
        if let kind { return [try Elementwise.arithmetic(a, b, kind)] }
        return [try Elementwise.binary(a, b, f)]
    }

    func backward(inputs: [Tensor?], outputs: [Tensor], gradOutputs: [Tensor?], _ pass: Pass) throws -> [Tensor?] {
        guard let dy = gradOutputs[0] else { return [nil, nil] }
        let a = try required(inputs, 0, "A"), b = try required(inputs, 1, "B")
        if isAdd { return [Elementwise.sumToShape(dy, a.shape), Elementwise.sumToShape(dy, b.shape)] }
        // Broadcast a and b to y's shape, then apply the chain rule elementwise.
        let ab = try Elementwise.binary(a, Tensor(shape: dy.shape), { x, _ in x })
        let bb = try Elementwise.binary(b, Tensor(shape: dy.shape), { x, _ in x })
        let y = outputs[0]
        var ga = dy, gb = dy
        for i in 0..<dy.count {
            ga.data[i] *= da(ab.data[i], bb.data[i], y.data[i])
            gb.data[i] *= db(ab.data[i], bb.data[i], y.data[i])
        }
        return [Elementwise.sumToShape(ga, a.shape), Elementwise.sumToShape(gb, b.shape)]
    }

    static let table: [String: @Sendable (Attributes) throws -> any Operator] = [
        "Add": { _ in BinaryOp(f: +, da: { _, _, _ in 1 }, db: { _, _, _ in 1 }, kind: .add) },
        "Sub": { _ in BinaryOp(f: -, da: { _, _, _ in 1 }, db: { _, _, _ in -1 }, kind: .sub) },
        "Mul": { _ in BinaryOp(f: *, da: { _, b, _ in b }, db: { a, _, _ in a }, kind: .mul) },
        "Div": { a in
            // Integer tensors divide with truncation toward zero, as C and ONNX Runtime do.
            a.isInteger(input: 0)
                ? BinaryOp(f: { ($0 / $1).rounded(.towardZero) }, da: { _, _, _ in 0 }, db: { _, _, _ in 0 })
                : BinaryOp(f: /, da: { _, b, _ in 1 / b }, db: { a, b, _ in -a / (b * b) }, kind: .div)
        },
        "Pow": { _ in
            BinaryOp(f: { Float(pow(Double($0), Double($1))) },
                     da: { a, b, _ in b * Float(pow(Double(a), Double(b - 1))) },
                     db: { a, _, y in a > 0 ? y * log(a) : 0 })
        },
    ]
}

/// ONNX `Sum`, `Max`, `Min`: variadic, broadcasting.
struct VariadicOp: Operator {
    enum Kind: Sendable { case sum, max, min }
    let kind: Kind

    func combine(_ a: Float, _ b: Float) -> Float {
        switch kind {
        case .sum: return a + b
        case .max: return a.isNaN || b.isNaN ? .nan : Swift.max(a, b)
        case .min: return a.isNaN || b.isNaN ? .nan : Swift.min(a, b)
        }
    }

    func forward(_ inputs: [Tensor?], _ pass: Pass) throws -> [Tensor] {
        let xs = inputs.compactMap { $0 }
        guard var acc = xs.first else { throw EngineError("needs at least one input") }
        for x in xs.dropFirst() { acc = try Elementwise.binary(acc, x, combine) }
        return [acc]
    }

    /// Sum: dy to every input. Max/Min: dy to the input that supplied the value (first on ties).
    func backward(inputs: [Tensor?], outputs: [Tensor], gradOutputs: [Tensor?], _ pass: Pass) throws -> [Tensor?] {
        guard let dy = gradOutputs[0] else { return inputs.map { _ in nil } }
        var taken = [Bool](repeating: false, count: dy.count)
        return try inputs.map { input -> Tensor? in
            guard let x = input else { return nil }
            if kind == .sum { return Elementwise.sumToShape(dy, x.shape) }
            let xb = try Elementwise.binary(x, Tensor(shape: dy.shape), { v, _ in v })
            var g = Tensor(shape: dy.shape)
            for i in 0..<dy.count where !taken[i] && xb.data[i] == outputs[0].data[i] {
                g.data[i] = dy.data[i]
                taken[i] = true
            }
            return Elementwise.sumToShape(g, x.shape)
        }
    }
}

/// ONNX `PRelu`: y = x for x ≥ 0, slope·x otherwise; slope broadcasts to x.
struct PReluOp: Operator {
    func forward(_ inputs: [Tensor?], _ pass: Pass) throws -> [Tensor] {
        [try Elementwise.binary(try required(inputs, 0, "X"), try required(inputs, 1, "slope")) { x, s in x >= 0 ? x : s * x }]
    }

    func backward(inputs: [Tensor?], outputs: [Tensor], gradOutputs: [Tensor?], _ pass: Pass) throws -> [Tensor?] {
        guard let dy = gradOutputs[0] else { return [nil, nil] }
        let x = try required(inputs, 0, "X"), slope = try required(inputs, 1, "slope")
        let s = try Elementwise.binary(x, slope) { x, s in x > 0 ? 1 : s }
        return [try Elementwise.binary(dy, s, *), nil]
    }
}
