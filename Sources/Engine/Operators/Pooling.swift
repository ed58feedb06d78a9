import Tensors

/// Shared attribute handling of ONNX MaxPool and AveragePool (1-D to 3-D).
struct PoolAttributes: Sendable {
    let kernel: [Int]
    let strides: [Int]?
    let dilations: [Int]?
    let pads: [Int]?
    let autoPad: String
    let ceilMode: Bool

    init(_ a: Attributes) throws {
        guard let k = try a.ints("kernel_shape") else { throw EngineError("kernel_shape is required") }
        kernel = k
        strides = try a.ints("strides")
        dilations = try a.ints("dilations")
        pads = try a.ints("pads")
        autoPad = try a.string("auto_pad", default: "NOTSET")
        ceilMode = try a.int("ceil_mode", default: 0) != 0
        try checkWindowAttributes(kernel: kernel, strides: strides, dilations: dilations, pads: pads, group: 1)
    }

    func geometry(_ x: Tensor) throws -> PoolGeometry {
        let k = kernel.count
        guard x.rank == k + 2 else { throw EngineError("input \(x.shape) does not match kernel_shape \(kernel)") }
        let s = strides ?? Array(repeating: 1, count: k)
        let d = dilations ?? Array(repeating: 1, count: k)
        let p = try resolvePadsND(autoPad: autoPad, pads: pads, input: Array(x.shape.dropFirst(2)), kernel: kernel,
                                  strides: s, dilations: d)
        return PoolGeometry(kernel: kernel, strides: s, pads: p, dilations: d, ceilMode: ceilMode)
    }
}

/// ONNX `MaxPool`, with the optional `Indices` output (row-major flat indices into X).
struct MaxPoolOp: Operator {
    let attributes: PoolAttributes
    let wantsIndices: Bool
    /// Indices as if each (H,W) plane were stored column-major (storage_order=1).
    let columnMajor: Bool

    init(_ a: Attributes) throws {
        attributes = try PoolAttributes(a)
        wantsIndices = a.outputCount > 1
        columnMajor = try a.int("storage_order", default: 0) != 0
    }

    // x: (N,C,D...) -> y: (N,C,O...)
    func forward(_ inputs: [Tensor?], _ pass: Pass) throws -> [Tensor] {
        let x = try required(inputs, 0, "X")
        let (y, argmax) = try Pool.forward(x: x, geometry: attributes.geometry(x), kind: .max, argmax: wantsIndices,
                                           kernels: pass.kernels)
        guard wantsIndices else { return [y] }
        var indices = argmax
        if columnMajor {
            guard x.rank == 4 else { throw EngineError("storage_order=1 is supported for 2-D pooling only").unsupported() }
            let (h, w) = (x.shape[2], x.shape[3])
            indices = argmax.map { i in
                let plane = i / (h * w), r = i % (h * w)
                return plane * h * w + (r % w) * h + r / w
            }
        }
        return [y, Tensor(shape: y.shape, data: indices.map(Float.init))]
    }

    /// Recomputes the winners from the saved input rather than keeping indices alive between passes.
    func backward(inputs: [Tensor?], outputs: [Tensor], gradOutputs: [Tensor?], _ pass: Pass) throws -> [Tensor?] {
        guard let dy = gradOutputs[0] else { return [nil] }
        let x = try required(inputs, 0, "X")
        let g = try attributes.geometry(x)
        let argmax = try Pool.forward(x: x, geometry: g, kind: .max, kernels: pass.kernels).argmax
        return [Pool.backward(dy: dy, x: x, geometry: g, kind: .max, argmax: argmax)]
    }
}

/// ONNX `AveragePool`: count_include_pad, ceil_mode, dilations (opset 19).
struct AveragePoolOp: Operator {
    let attributes: PoolAttributes
    let kind: Pool.Kind

    init(_ a: Attributes) throws {
        attributes = try PoolAttributes(a)
        kind = .average(countIncludePad: try a.int("count_include_pad", default: 0) != 0)
    }

    func forward(_ inputs: [Tensor?], _ pass: Pass) throws -> [Tensor] {
        let x = try required(inputs, 0, "X")
        return [try Pool.forward(x: x, geometry: attributes.geometry(x), kind: kind, argmax: false, kernels: pass.kernels).y]
    }

    func backward(inputs: [Tensor?], outputs: [Tensor], gradOutputs: [Tensor?], _ pass: Pass) throws -> [Tensor?] {
        guard let dy = gradOutputs[0] else { return [nil] }
        let x = try required(inputs, 0, "X")
        return [Pool.backward(dy: dy, x: x, geometry: try attributes.geometry(x), kind: kind, argmax: [])]
    }
}

/// ONNX `GlobalAveragePool`: (N,C,D...) -> (N,C,1...).
struct GlobalAveragePoolOp: Operator {
    func forward(_ inputs: [Tensor?], _ pass: Pass) throws -> [Tensor] {
        let x = try required(inputs, 0, "X")
        guard x.rank >= 3 else { throw EngineError("input must have rank >= 3, got \(x.shape)") }
        return [GlobalAveragePool.forward(x: x)]
    }

    func backward(inputs: [Tensor?], outputs: [Tensor], gradOutputs: [Tensor?], _ pass: Pass) throws -> [Tensor?] {
        guard let dy = gradOutputs[0] else { return [nil] }
        return [GlobalAveragePool.backward(dy: dy, inputShape: try required(inputs, 0, "X").shape)]
    }
}

/// ONNX `GlobalMaxPool`: (N,C,D...) -> (N,C,1...).
struct GlobalMaxPoolOp: Operator {
    func forward(_ inputs: [Tensor?], _ pass: Pass) throws -> [Tensor] {
        let x = try required(inputs, 0, "X")
        guard x.rank >= 3 else { throw EngineError("input must have rank >= 3, got \(x.shape)") }
        return [GlobalMaxPool.forward(x: x).y]
    }

    func backward(inputs: [Tensor?], outputs: [Tensor], gradOutputs: [Tensor?], _ pass: Pass) throws -> [Tensor?] {
        guard let dy = gradOutputs[0] else { return [nil] }
        let x = try required(inputs, 0, "X")
        return [GlobalMaxPool.backward(dy: dy, argmax: GlobalMaxPool.forward(x: x).argmax, inputShape: x.shape)]
    }
}

/// ONNX `LRN` (Krizhevsky et al. 2012, §3.3): y = x / (bias + α/size · Σ_{window over channels} x²)^β.
struct LRNOp: Operator {
    let size: Int
    let alpha: Float, beta: Float, bias: Float

    init(_ a: Attributes) throws {
        size = try a.int("size", default: 0)
        guard size > 0 else { throw EngineError("size is required and must be positive") }
        alpha = try a.float("alpha", default: 1e-4)
        beta = try a.float("beta", default: 0.75)
        bias = try a.float("bias", default: 1)
    }

    /// The channel window of channel `ch`: [ch − ⌊(size−1)/2⌋, ch + ⌈(size−1)/2⌉] ∩ [0, C).
    func window(_ ch: Int, channels c: Int) -> ClosedRange<Int> {
        let lo = (size - 1) / 2, hi = size - 1 - lo
        return max(0, ch - lo)...min(c - 1, ch + hi)
    }

    /// S = bias + α/size · Σ_window x², per element.  x: (N,C,D...)
    func denominators(_ x: Tensor) -> [Float] {
        let (n, c) = (x.shape[0], x.shape[1])
        let plane = x.shape.dropFirst(2).elementCount
        var s = [Float](repeating: 0, count: x.count)
        for i in 0..<n { for ch in 0..<c { for k in 0..<plane {
            var sum: Float = 0
            for j in window(ch, channels: c) { let v = x.data[(i * c + j) * plane + k]; sum += v * v }
            s[(i * c + ch) * plane + k] = bias + alpha / Float(size) * sum
        } } }
        return s
    }

    // x: (N,C,D...) -> y: (N,C,D...)
    func forward(_ inputs: [Tensor?], _ pass: Pass) throws -> [Tensor] {
        let x = try required(inputs, 0, "X")
        let s = denominators(x)
        var y = x
        for i in 0..<x.count { y.data[i] = x.data[i] / Float(pow(Double(s[i]), Double(beta))) }
        return [y]
    }

    /// dx_k = dy_k·S_k^(−β) − (2αβ/size)·x_k·Σ_{i: k ∈ window(i)} dy_i·x_i·S_i^(−β−1)
    func backward(inputs: [Tensor?], outputs: [Tensor], gradOutputs: [Tensor?], _ pass: Pass) throws -> [Tensor?] {
        guard let dy = gradOutputs[0] else { return [nil] }
        let x = try required(inputs, 0, "X")
        let (n, c) = (x.shape[0], x.shape[1])
        let plane = x.shape.dropFirst(2).elementCount
        let s = denominators(x)
        var t = [Float](repeating: 0, count: x.count) // dy_i · x_i · S_i^(−β−1)
        for i in 0..<x.count { t[i] = dy.data[i] * x.data[i] * Float(pow(Double(s[i]), Double(-beta - 1))) }
        var dx = Tensor(shape: x.shape)
        let factor = 2 * alpha * beta / Float(size)
        for b in 0..<n { for k in 0..<c { for p in 0..<plane {
            let idx = (b * c + k) * plane + p
            var acc: Float = 0
            // Channels i whose window contains k.
            for i in 0..<c where window(i, channels: c).contains(k) { acc += t[(b * c + i) * plane + p] }
            dx.data[idx] = dy.data[idx] * Float(pow(Double(s[idx]), Double(-beta))) - factor * x.data[idx] * acc
        } } }
        return [dx]
    }
}

import Foundation
