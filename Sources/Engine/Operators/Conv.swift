import Tensors

/// ONNX `Conv`, 1-D and 2-D: groups, dilations, strides, pads and auto_pad. A 1-D convolution
/// runs as a 2-D one over a height of 1.
struct ConvOp: Operator {
    /// An activation fused in at load time (see Optimizer): applied to the output as it is stored.
    typealias Activation = ConvActivation

    var activation: Activation?
    /// The packed weights of the fast kernel, made on the first call (the weights are initializers).
    private(set) var packedWeights = PackedWeightsCache()

    func withFreshCaches() -> any Operator {
        var copy = self
        copy.packedWeights = PackedWeightsCache()
        return copy
    }
    let kernelShape: [Int]?
    let strides: [Int]?
    let dilations: [Int]?
    let pads: [Int]?
    let autoPad: String
    let group: Int

    init(_ a: Attributes) throws {
        kernelShape = try a.ints("kernel_shape")
        strides = try a.ints("strides")
        dilations = try a.ints("dilations")
        pads = try a.ints("pads")
        autoPad = try a.string("auto_pad", default: "NOTSET")
        group = try a.int("group", default: 1)
        try checkWindowAttributes(kernel: kernelShape, strides: strides, dilations: dilations, pads: pads, group: group)
    }

    /// The 2-D view of the operands and the geometry: (N,C,L) becomes (N,C,1,L).
    func plan(x: Tensor, w: Tensor) throws -> (x: Tensor, w: Tensor, geometry: Conv2DGeometry) {
        if let g = plainGeometry(x: x, w: w) { return (x, w, g) }
        return try generalPlan(x: x, w: w)
    }

    /// `plan`'s geometry in the common case, built without arrays: 2-D, explicit or no padding,
    /// every attribute of its right length; nil otherwise, and `generalPlan` then checks and
    /// says what is wrong. (A plan runs for every convolution of every pass: a chain of 100 small
    /// 1×1 convolutions took 0.936 of the time without the arrays, in process; MobileNetV2's
    /// pass is level within the noise.)
    func plainGeometry(x: Tensor, w: Tensor) -> Conv2DGeometry? {
        guard x.rank == 4, w.rank == 4, autoPad == "NOTSET" || autoPad == "VALID" else { return nil }
        let (kh, kw) = (w.shape[2], w.shape[3])
        if let ks = kernelShape, ks.count != 2 || ks[0] != kh || ks[1] != kw { return nil }
        if let s = strides, s.count != 2 { return nil }
        if let d = dilations, d.count != 2 { return nil }
        let p = autoPad == "VALID" ? nil : pads
        if let p, p.count != 4 { return nil }
        return Conv2DGeometry(kernel: (kh, kw), strides: (strides?[0] ?? 1, strides?[1] ?? 1),
                              pads: (p?[0] ?? 0, p?[1] ?? 0, p?[2] ?? 0, p?[3] ?? 0),
                              dilations: (dilations?[0] ?? 1, dilations?[1] ?? 1), group: group)
    }

    /// `plan` for any rank and padding rule.
    func generalPlan(x: Tensor, w: Tensor) throws -> (x: Tensor, w: Tensor, geometry: Conv2DGeometry) {
        guard x.rank == w.rank, x.rank == 3 || x.rank == 4 else {
            throw EngineError("only 1-D and 2-D convolution are supported; input \(x.shape), weight \(w.shape)").unsupported()
        }
        let spatial = x.rank - 2
        let kernel = Array(w.shape.dropFirst(2))
        if let ks = kernelShape, ks != kernel {
            throw EngineError("kernel_shape \(ks) disagrees with weight shape \(w.shape)")
        }
        let s = strides ?? Array(repeating: 1, count: spatial)
        let d = dilations ?? Array(repeating: 1, count: spatial)
        var p = try resolvePadsND(autoPad: autoPad, pads: pads, input: Array(x.shape.dropFirst(2)), kernel: kernel,
                                  strides: s, dilations: d)
        guard s.count == spatial, d.count == spatial else { throw EngineError("strides/dilations must have \(spatial) entries") }
        if spatial == 1 {
            p = [0, p[0], 0, p[1]]
            let g = Conv2DGeometry(kernel: (1, kernel[0]), strides: (1, s[0]), pads: (p[0], p[1], p[2], p[3]),
                                   dilations: (1, d[0]), group: group)
            return (x.reshaped([x.shape[0], x.shape[1], 1, x.shape[2]]), w.reshaped([w.shape[0], w.shape[1], 1, w.shape[2]]), g)
        }
        let g = Conv2DGeometry(kernel: (kernel[0], kernel[1]), strides: (s[0], s[1]), pads: (p[0], p[1], p[2], p[3]),
                               dilations: (d[0], d[1]), group: group)
        return (x, w, g)
    }

    // x: (N,C,H,W), w: (M,C/group,kh,kw), b: (M) -> y: (N,M,OH,OW)   (1-D: drop H)
    func forward(_ inputs: [Tensor?], _ pass: Pass) throws -> [Tensor] {
        [try forward(inputs, activation: activation, pass)]
    }

    /// y = relu?(conv(x) + b + residual): this Conv with the Add (and ReLU) after it, for
    /// inference passes (`ResidualFusion`). Only for a Conv without a fused activation.
    func forward(_ inputs: [Tensor?], residual: consuming Tensor, relu: Bool, kernels: KernelOptions) throws -> Tensor {
        let x = try required(inputs, 0, "X"), w = try required(inputs, 1, "W")
        let b = inputs.count > 2 ? inputs[2] : nil
        if let g = plainGeometry(x: x, w: w) {
            // (No plan tuple: copying the operands into one and out again retains and releases
            // each twice, per call.)
            return try Conv2D.forward(x: x, w: w, b: b, geometry: g, activation: relu ? .relu : nil, cache: packedWeights,
                                      residual: consume residual, inference: true, kernels: kernels)
        }
        let p = try generalPlan(x: x, w: w)
        return try Conv2D.forward(x: p.x, w: p.w, b: b, geometry: p.geometry, activation: relu ? .relu : nil,
                                  cache: packedWeights, residual: consume residual, inference: true, kernels: kernels)
    }

    /// y = act(conv(x) + b): `forward` with the fused activation, or another one (`SiLUFusion`'s
    /// SiLU, for inference passes) in `pass` (its `inference` as for `Conv2D.forward`).
    func forward(_ inputs: [Tensor?], activation act: ConvActivation?, _ pass: Pass) throws -> Tensor {
        let x = try required(inputs, 0, "X"), w = try required(inputs, 1, "W")
        let b = inputs.count > 2 ? inputs[2] : nil
        if let g = plainGeometry(x: x, w: w) {
            return try Conv2D.forward(x: x, w: w, b: b, geometry: g, activation: act, cache: packedWeights,
                                      inference: pass.inference, kernels: pass.kernels)
        }
        let p = try generalPlan(x: x, w: w)
        let y = try Conv2D.forward(x: p.x, w: p.w, b: b, geometry: p.geometry, activation: act, cache: packedWeights,
                                   inference: pass.inference, kernels: pass.kernels)
        return x.rank == 3 ? y.reshaped([y.shape[0], y.shape[1], y.shape[3]]) : y
    }

    /// y = depthwise(self(x)): this 1×1 Conv with the depthwise Conv `dw` after it, for inference
    /// passes (`PointwiseDepthwiseFusion`), each with its activation (`activation`, `dwActivation`:
    /// the fused ones, or SiLU); `dwInputs` are the depthwise node's (its first, the intermediate
    /// tensor, is not read). 2-D only.
    func forward(_ inputs: [Tensor?], activation act: ConvActivation?, depthwise dw: ConvOp, _ dwInputs: [Tensor?],
                 dwActivation: ConvActivation?, kernels: KernelOptions) throws -> Tensor {
        let x = try required(inputs, 0, "X"), w = try required(inputs, 1, "W")
        let k = try required(dwInputs, 1, "W")
        guard x.rank == 4, w.rank == 4 else {
            throw EngineError("a fused 1×1 and depthwise convolution needs 4-D input and weights; got \(x.shape) and \(w.shape)")
        }
        let p = try plan(x: x, w: w)
        let (oh, ow) = p.geometry.outputSize(h: x.shape[2], w: x.shape[3])
        let q = try dw.plan(x: Tensor(shape: [0, w.shape[0], oh, ow]), w: k)
        return try Conv2D.forwardPointwiseDepthwise(x: p.x, w: p.w, b: inputs.count > 2 ? inputs[2] : nil, geometry: p.geometry,
                                                    activation: act, cache: packedWeights, dw: q.w,
                                                    dwBias: dwInputs.count > 2 ? dwInputs[2] : nil, dwGeometry: q.geometry,
                                                    dwActivation: dwActivation, kernels: kernels)
    }

    /// The output shape of a 2-D convolution of x with w, nil for other ranks or a bad geometry.
    func outputShape(x: Tensor, w: Tensor) -> [Int]? {
        guard x.rank == 4, w.rank == 4, let p = try? plan(x: x, w: w) else { return nil }
        let (oh, ow) = p.geometry.outputSize(h: x.shape[2], w: x.shape[3])
        return [x.shape[0], w.shape[0], oh, ow]
    }

    func backward(inputs: [Tensor?], outputs: [Tensor], gradOutputs: [Tensor?], _ pass: Pass) throws -> [Tensor?] {
        guard var dy = gradOutputs[0] else { return [nil] }
        let relu = pass.relu
        let x = try required(inputs, 0, "X"), w = try required(inputs, 1, "W")
        if activation == .silu { throw EngineError("a Conv with SiLU fused into it has no backward (inference passes only)") }
        // A fused activation passes the gradient where its output is not clamped (y is monotone in
        // the pre-activation, so the mask read from y equals the one read from the pre-activation).
        // A fused ReLU follows the requested ReLU rule, as a separate Relu node would.
        if let activation {
            outputs[0].data.withUnsafeBufferPointer { y in
                dy.data.withUnsafeMutableBufferPointer { d in
                    switch activation {
                    case .relu: for i in 0..<d.count { d[i] = relu.apply(d[i], positive: y[i] > 0) }
                    case .clip(let lo, let hi): for i in 0..<d.count where !(y[i] > lo && y[i] < hi) { d[i] = 0 }
                    case .silu: break // rejected above
                    }
                }
            }
        }
        let p = try plan(x: x, w: w)
        let dy2 = x.rank == 3 ? dy.reshaped([dy.shape[0], dy.shape[1], 1, dy.shape[2]]) : dy
        return [Conv2D.backwardInput(dy: dy2, w: p.w, inputShape: p.x.shape, geometry: p.geometry, cache: packedWeights,
                                      kernels: pass.kernels).reshaped(x.shape)]
    }
}

/// Checks a sliding-window operator's attributes at load time, where ONNX requires them
/// positive (pads non-negative): a stride or dilation of 0 would divide by zero or loop
/// forever. The error names the attribute and its value (the import adds the node).
func checkWindowAttributes(kernel: [Int]?, strides: [Int]?, dilations: [Int]?, pads: [Int]?, group: Int) throws {
    for (name, values, least) in [("kernel_shape", kernel, 1), ("strides", strides, 1), ("dilations", dilations, 1), ("pads", pads, 0)] {
        if let values, let bad = values.first(where: { $0 < least || $0 > 1 << 20 }) {
            throw EngineError("\(name) \(values) has \(bad); each must be from \(least) to \(1 << 20)")
        }
    }
    guard group >= 1 else { throw EngineError("group \(group) must be at least 1") }
}
