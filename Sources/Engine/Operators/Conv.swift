import Tensors

/// ONNX `Conv` (2-D): groups, dilations, strides, pads and auto_pad.
struct ConvOp: Operator {
    let kernelShape: [Int]?
    let strides: (Int, Int)
    let dilations: (Int, Int)
    let pads: [Int]?
    let autoPad: String
    let group: Int

    init(_ a: Attributes) throws {
        kernelShape = try a.ints("kernel_shape")
        strides = try pair(a.ints("strides"), default: 1, "strides")
        dilations = try pair(a.ints("dilations"), default: 1, "dilations")
        pads = try a.ints("pads")
        autoPad = try a.string("auto_pad", default: "NOTSET")
        group = try a.int("group", default: 1)
    }

    func geometry(x: Tensor, w: Tensor) throws -> Conv2DGeometry {
        guard x.rank == 4, w.rank == 4 else {
            throw EngineError("only 2-D convolution is supported; input \(x.shape), weight \(w.shape)")
        }
        let k = (w.shape[2], w.shape[3])
        if let ks = kernelShape, ks != [k.0, k.1] {
            throw EngineError("kernel_shape \(ks) disagrees with weight shape \(w.shape)")
        }
        let p = try resolvePads(autoPad: autoPad, pads: pads, input: (x.shape[2], x.shape[3]),
                                kernel: k, strides: strides, dilations: dilations)
        return Conv2DGeometry(kernel: k, strides: strides, pads: p, dilations: dilations, group: group)
    }

    // x: (N,C,H,W), w: (M,C/group,kh,kw), b: (M) -> y: (N,M,OH,OW)
    func forward(_ inputs: [Tensor?]) throws -> [Tensor] {
        let x = try required(inputs, 0, "X"), w = try required(inputs, 1, "W")
        let b = inputs.count > 2 ? inputs[2] : nil
        return [try Conv2D.forward(x: x, w: w, b: b, geometry: geometry(x: x, w: w))]
    }

    func backward(inputs: [Tensor?], outputs: [Tensor], gradOutputs: [Tensor?]) throws -> [Tensor?] {
        guard let dy = gradOutputs[0] else { return [nil] }
        let x = try required(inputs, 0, "X"), w = try required(inputs, 1, "W")
        return [Conv2D.backwardInput(dy: dy, w: w, inputShape: x.shape, geometry: try geometry(x: x, w: w))]
    }
}
