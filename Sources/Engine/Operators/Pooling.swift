import Tensors

/// ONNX `MaxPool` (2-D): kernel, strides, pads/auto_pad, dilations, ceil_mode.
struct MaxPoolOp: Operator {
    let kernel: (Int, Int)
    let strides: (Int, Int)
    let dilations: (Int, Int)
    let pads: [Int]?
    let autoPad: String
    let ceilMode: Bool

    init(_ a: Attributes) throws {
        guard let k = try a.ints("kernel_shape") else { throw EngineError("kernel_shape is required") }
        kernel = try pair(k, default: 1, "kernel_shape")
        strides = try pair(a.ints("strides"), default: 1, "strides")
        dilations = try pair(a.ints("dilations"), default: 1, "dilations")
        pads = try a.ints("pads")
        autoPad = try a.string("auto_pad", default: "NOTSET")
        ceilMode = try a.int("ceil_mode", default: 0) != 0
        if try a.int("storage_order", default: 0) != 0 { throw EngineError("storage_order=1 is not supported") }
    }

    func geometry(_ x: Tensor) throws -> Pool2DGeometry {
        guard x.rank == 4 else { throw EngineError("only 2-D pooling is supported; input \(x.shape)") }
        let p = try resolvePads(autoPad: autoPad, pads: pads, input: (x.shape[2], x.shape[3]),
                                kernel: kernel, strides: strides, dilations: dilations)
        return Pool2DGeometry(kernel: kernel, strides: strides, pads: p, dilations: dilations, ceilMode: ceilMode)
    }

    // x: (N,C,H,W) -> y: (N,C,OH,OW)
    func forward(_ inputs: [Tensor?]) throws -> [Tensor] {
        let x = try required(inputs, 0, "X")
        return [try MaxPool2D.forward(x: x, geometry: geometry(x)).y]
    }

    /// Recomputes the winners from the saved input rather than keeping indices alive between passes.
    func backward(inputs: [Tensor?], outputs: [Tensor], gradOutputs: [Tensor?]) throws -> [Tensor?] {
        guard let dy = gradOutputs[0] else { return [nil] }
        let x = try required(inputs, 0, "X")
        let argmax = try MaxPool2D.forward(x: x, geometry: geometry(x)).argmax
        return [MaxPool2D.backward(dy: dy, argmax: argmax, inputShape: x.shape)]
    }
}

/// ONNX `GlobalAveragePool`: (N,C,H,W) -> (N,C,1,1).
struct GlobalAveragePoolOp: Operator {
    func forward(_ inputs: [Tensor?]) throws -> [Tensor] {
        let x = try required(inputs, 0, "X")
        guard x.rank >= 3 else { throw EngineError("input must have rank >= 3, got \(x.shape)") }
        return [GlobalAveragePool.forward(x: x)]
    }

    func backward(inputs: [Tensor?], outputs: [Tensor], gradOutputs: [Tensor?]) throws -> [Tensor?] {
        guard let dy = gradOutputs[0] else { return [nil] }
        return [GlobalAveragePool.backward(dy: dy, inputShape: try required(inputs, 0, "X").shape)]
    }
}
