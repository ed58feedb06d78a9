import Foundation
import Tensors

/// ONNX `Softmax` and `LogSoftmax`. Opset < 13 flattens to 2-D at `axis` (default 1) and
/// normalizes each row; opset ≥ 13 normalizes along `axis` (default −1).
struct SoftmaxOp: Operator {
    let axis: Int
    let coerce2D: Bool
    let log: Bool

    init(_ a: Attributes, log: Bool) throws {
        coerce2D = a.opset < 13
        axis = try a.int("axis", default: coerce2D ? 1 : -1)
        self.log = log
    }

    /// (outer, extent, inner) of the normalized axis (or of the coerced 2-D row).
    func layout(_ shape: [Int]) throws -> (Int, Int, Int) {
        let a = try normalizeAxis(axis, rank: max(shape.count, 1))
        if coerce2D { return (shape[..<a].elementCount, shape[a...].elementCount, 1) }
        return (shape[..<a].elementCount, shape[a], shape[(a + 1)...].elementCount)
    }

    func forward(_ inputs: [Tensor?], _ pass: Pass) throws -> [Tensor] {
        let x = try required(inputs, 0, "input")
        let (outer, n, inner) = try layout(x.shape)
        var y = x
        for o in 0..<outer {
            for i in 0..<inner {
                let at = { (k: Int) in (o * n + k) * inner + i }
                var m = -Float.infinity
                for k in 0..<n { m = max(m, x.data[at(k)]) }
                var s: Double = 0
                for k in 0..<n { s += Foundation.exp(Double(x.data[at(k)] - m)) }
                for k in 0..<n {
                    let z = x.data[at(k)] - m
                    y.data[at(k)] = log ? z - Float(Foundation.log(s)) : Float(Foundation.exp(Double(z)) / s)
                }
            }
        }
        return [y]
    }

    /// softmax: dx = y ⊙ (dy − Σ dy·y); log-softmax: dx = dy − softmax ⊙ Σ dy.
    func backward(inputs: [Tensor?], outputs: [Tensor], gradOutputs: [Tensor?], _ pass: Pass) throws -> [Tensor?] {
        guard let dy = gradOutputs[0] else { return [nil] }
        let y = outputs[0]
        let (outer, n, inner) = try layout(y.shape)
        var dx = dy
        for o in 0..<outer {
            for i in 0..<inner {
                let at = { (k: Int) in (o * n + k) * inner + i }
                var s: Float = 0
                for k in 0..<n { s += log ? dy.data[at(k)] : dy.data[at(k)] * y.data[at(k)] }
                for k in 0..<n {
                    dx.data[at(k)] = log ? dy.data[at(k)] - Foundation.exp(y.data[at(k)]) * s
                        : y.data[at(k)] * (dy.data[at(k)] - s)
                }
            }
        }
        return [dx]
    }
}

/// ONNX `LayerNormalization` (opset 17): normalizes over the axes from `axis` on, then
/// scale and optional bias; optional outputs Mean and InvStdDev.
struct LayerNormalizationOp: Operator {
    let axis: Int
    let epsilon: Float
    let outputs: Int

    init(_ a: Attributes) throws {
        axis = try a.int("axis", default: -1)
        epsilon = try a.float("epsilon", default: 1e-5)
        outputs = a.outputCount
    }

    func forward(_ inputs: [Tensor?], _ pass: Pass) throws -> [Tensor] {
        let x = try required(inputs, 0, "X")
        let scale = try required(inputs, 1, "Scale")
        let bias = inputs.count > 2 ? inputs[2] : nil
        let a = try normalizeAxis(axis, rank: x.rank)
        let outer = x.shape[..<a].elementCount, n = x.shape[a...].elementCount
        let normShape = Array(x.shape[a...])
        let s = try Elementwise.binary(Tensor(shape: normShape), scale) { _, v in v }
        let b = try bias.map { try Elementwise.binary(Tensor(shape: normShape), $0) { _, v in v } }
        var y = x
        var meanShape = x.shape
        for i in a..<x.rank { meanShape[i] = 1 }
        var means = Tensor(shape: meanShape), invStd = Tensor(shape: meanShape)
        for o in 0..<outer {
            var m: Double = 0
            for k in 0..<n { m += Double(x.data[o * n + k]) }
            m /= Double(n)
            var v: Double = 0
            for k in 0..<n { let d = Double(x.data[o * n + k]) - m; v += d * d }
            v /= Double(n)
            let r = 1 / (v + Double(epsilon)).squareRoot()
            means.data[o] = Float(m)
            invStd.data[o] = Float(r)
            for k in 0..<n {
                y.data[o * n + k] = Float((Double(x.data[o * n + k]) - m) * r) * s.data[k] + (b?.data[k] ?? 0)
            }
        }
        return Array([y, means, invStd].prefix(max(1, outputs)))
    }

    /// dx = r/n · (n·g − Σg − x̂·Σ(g·x̂)) with g = dy ⊙ scale, x̂ the normalized input.
    func backward(inputs: [Tensor?], outputs: [Tensor], gradOutputs: [Tensor?], _ pass: Pass) throws -> [Tensor?] {
        guard let dy = gradOutputs[0] else { return inputs.map { _ in nil } }
        let x = try required(inputs, 0, "X")
        let a = try normalizeAxis(axis, rank: x.rank)
        let outer = x.shape[..<a].elementCount, n = x.shape[a...].elementCount
        let s = try Elementwise.binary(Tensor(shape: Array(x.shape[a...])), try required(inputs, 1, "Scale")) { _, v in v }
        let stats = try forward(Array(inputs.prefix(2)), pass)
        var dx = x
        for o in 0..<outer {
            let m = stats.count > 1 ? stats[1].data[o] : 0, r = stats.count > 2 ? stats[2].data[o] : 1
            var sg: Float = 0, sgx: Float = 0
            for k in 0..<n {
                let g = dy.data[o * n + k] * s.data[k], xh = (x.data[o * n + k] - m) * r
                sg += g; sgx += g * xh
            }
            for k in 0..<n {
                let g = dy.data[o * n + k] * s.data[k], xh = (x.data[o * n + k] - m) * r
                dx.data[o * n + k] = r / Float(n) * (Float(n) * g - sg - xh * sgx)
            }
        }
        return [dx] + Array(repeating: nil, count: inputs.count - 1)
    }
}

/// ONNX `ReduceMean` and `ReduceSum`: axes as an attribute (ReduceSum < 13, ReduceMean < 18)
/// or an input; keepdims (default 1); noop_with_empty_axes.
struct ReduceOp: Operator {
    let mean: Bool
    let keepDims: Bool
    let noopWithEmptyAxes: Bool
    let attributeAxes: [Int]?

    init(_ a: Attributes, mean: Bool) throws {
        self.mean = mean
        keepDims = try a.int("keepdims", default: 1) != 0
        noopWithEmptyAxes = try a.int("noop_with_empty_axes", default: 0) != 0
        attributeAxes = a.opset < (mean ? 18 : 13) ? try a.ints("axes") : nil
    }

    func axes(_ inputs: [Tensor?], rank: Int) throws -> [Int]? {
        let given = attributeAxes ?? (inputs.count > 1 ? inputs[1].map(integers) : nil)
        if let given, !given.isEmpty { return try given.map { try normalizeAxis($0, rank: rank) } }
        return noopWithEmptyAxes ? nil : Array(0..<rank)
    }

    func forward(_ inputs: [Tensor?], _ pass: Pass) throws -> [Tensor] {
        let x = try required(inputs, 0, "data")
        guard let axes = try axes(inputs, rank: x.rank) else { return [x] }
        var kept = x.shape
        for a in axes { kept[a] = 1 }
        var y = Elementwise.sumToShape(x, kept)
        if mean {
            let n = Float(axes.reduce(1) { $0 * x.shape[$1] })
            for i in 0..<y.count { y.data[i] /= n }
        }
        return [keepDims ? y : y.reshaped(x.shape.indices.filter { !axes.contains($0) }.map { x.shape[$0] })]
    }

    func backward(inputs: [Tensor?], outputs: [Tensor], gradOutputs: [Tensor?], _ pass: Pass) throws -> [Tensor?] {
        guard let dy = gradOutputs[0] else { return inputs.map { _ in nil } }
        let x = try required(inputs, 0, "data")
        guard let axes = try axes(inputs, rank: x.rank) else { return [dy] + Array(repeating: nil, count: inputs.count - 1) }
        var kept = x.shape
        for a in axes { kept[a] = 1 }
        let n = mean ? Float(axes.reduce(1) { $0 * x.shape[$1] }) : 1
        let dx = try Elementwise.binary(dy.reshaped(kept), Tensor(shape: x.shape)) { g, _ in g / n }
        return [dx] + Array(repeating: nil, count: inputs.count - 1)
    }
}
