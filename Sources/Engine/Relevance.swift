import Tensors

/// A layer-wise relevance propagation rule for a linear layer (Conv, Gemm), in Zennit's terms:
/// each rule is a sum of terms (an input modifier, a weight modifier, a sign) whose stabilized
/// outputs z divide the incoming relevance: R_in = Σ_terms sign · x′ ⊙ W′ᵀ (R / stab(z)).
///
/// - epsilon(ε): x, W, bias kept; stab(z) = z + ε·sign(z) (sign(0) = 1). (Bach et al. 2015)
/// - zPlus: (x⁺, W⁺, b⁺) + (x⁻, W⁻). (Montavon et al. 2017, "deep Taylor")
/// - alphaBeta(α, β): α·[(x⁺,W⁺,b⁺)+(x⁻,W⁻)] − β·[(x⁺,W⁻,b⁻)+(x⁻,W⁺)], each part normalized by its own z.
/// - flat: x = 1, W = 1, no bias: relevance spread evenly over the receptive field.
/// - wSquare: x = 1, W = W², no bias. (Montavon et al. 2017)
/// - gamma(γ): outputs with z > 0 explained by (x⁺, W+γW⁺, b+γb⁺) + (x⁻, W+γW⁻), outputs with
///   z < 0 by (x⁺, W+γW⁻, b+γb⁻) + (x⁻, W+γW⁺). (Montavon et al. 2019; Zennit 0.5's form)
/// - zBox(low, high): (x, W) − (low, W⁺) − (high, W⁻), bias cancelling, for the input layer
///   with bounded pixels.
public enum LRPRule: Sendable, Equatable {
    case epsilon(Float)
    case zPlus
    case alphaBeta(Float, Float)
    case flat
    case wSquare
    case gamma(Float)
    case zBox(low: Float, high: Float)
}

/// Composites by name: which rule each linear layer gets (Zennit's definitions). The "first"
/// layer is the linear layer that reads the graph input.
public struct LRPComposite: Sendable {
    public let name: String
    let first: LRPRule
    let convolution: LRPRule
    let dense: LRPRule

    public static let names = ["epsilon", "epsilon-plus-flat", "epsilon-gamma-box", "epsilon-alpha2-beta1-flat"]

    /// - Parameters: `low`/`high` bound the model-input values for the z-box rule.
    public static func named(_ name: String, epsilon: Float = 1e-6, low: Float = 0, high: Float = 1) -> LRPComposite? {
        switch name {
        case "epsilon": return LRPComposite(name: name, first: .epsilon(epsilon), convolution: .epsilon(epsilon), dense: .epsilon(epsilon))
        case "epsilon-plus-flat": return LRPComposite(name: name, first: .flat, convolution: .zPlus, dense: .epsilon(epsilon))
        case "epsilon-gamma-box": return LRPComposite(name: name, first: .zBox(low: low, high: high), convolution: .gamma(0.25), dense: .epsilon(epsilon))
        case "epsilon-alpha2-beta1-flat": return LRPComposite(name: name, first: .flat, convolution: .alphaBeta(2, 1), dense: .epsilon(epsilon))
        default: return nil
        }
    }

    func rule(for node: Node, first isFirst: Bool) -> LRPRule {
        if isFirst { return first }
        return node.opType == "Conv" ? convolution : dense
    }
}

extension Model {
    /// Propagates relevance from the first output back to the input.
    ///
    /// `seed` is the relevance at the output (one-hot on the target by default in the explainer).
    /// Conv and Gemm use the composite's rules; Add, AveragePool and GlobalAveragePool split
    /// relevance in proportion to their inputs' contributions (Zennit's Norm rule; for a residual
    /// Add this is its ResNet canonizer, applied here to every Add whatever the architecture);
    /// activations and BatchNormalization left unfused pass relevance unchanged; everything else
    /// (max pooling, reshapes, concatenation, slicing) routes it like its gradient. BatchNormalization
    /// after a convolution is already merged into it by the optimizer (Zennit's canonizer).
    /// - Returns: the relevance at the input, the input's shape.
    public func relevance(_ pass: ForwardPass, seed: Tensor, composite: LRPComposite) throws -> Tensor {
        let graph = pass.graph
        let inputName = inputName
        var r: [String: Tensor] = [graph.outputs[0]: seed]
        // The first linear layer: the Conv/Gemm reached first from the input.
        // Outputs of sigmoid-like nodes: gates when they multiply a signal.
        let gateProducers = Set(graph.nodes.filter { ["Sigmoid", "HardSigmoid"].contains($0.opType) }.flatMap(\.outputs))
        let firstLinear = graph.nodes.first { ($0.opType == "Conv" || $0.opType == "Gemm") && Model.forwardClosure(of: [inputName], in: graph).contains($0.inputs[0]) }?.name
        for node in graph.nodes.reversed() {
            let gradOutputs = node.outputs.map { r[$0] }
            guard gradOutputs.contains(where: { $0 != nil }) else { continue }
            let args = node.inputs.map { $0.isEmpty ? nil : pass.values[$0] }
            let outs = node.outputs.map { pass.values[$0] ?? Tensor(shape: [0]) }
            let relevanceIn: [Tensor?]
            do {
                relevanceIn = try propagate(node, args: args, outputs: outs, relevance: gradOutputs,
                                            rule: composite.rule(for: node, first: node.name == firstLinear),
                                            gateProducers: gateProducers)
            } catch let e as EngineError {
                throw e.prefixed("\(path): relevance through node '\(node.name)' (\(node.opType)): ")
            } catch let e as TensorError {
                throw EngineError("\(path): relevance through node '\(node.name)' (\(node.opType)): \(e.description)")
            }
            for (name, value) in zip(node.inputs, relevanceIn) {
                guard let value, pass.reachable.contains(name) else { continue }
                r[name] = try r[name].map { try Elementwise.binary($0, value, +) } ?? value
            }
        }
        return r[inputName] ?? Tensor(shape: pass.values[inputName]!.shape)
    }

    func propagate(_ node: Node, args: [Tensor?], outputs: [Tensor], relevance: [Tensor?], rule: LRPRule,
                   gateProducers: Set<String>) throws -> [Tensor?] {
        let rOut = relevance[0] ?? Tensor(shape: outputs[0].shape)
        switch node.opType {
        case "Conv":
            guard let conv = node.op as? ConvOp, let x = args[0], let w = args[1] else { break }
            let plan = try conv.plan(x: x, w: w)
            let (cache, kernels) = (conv.packedWeights, kernels)
            var layer = LinearLayer(
                apply: { xi, wi in try Conv2D.forward(x: xi, w: wi, b: nil, geometry: plan.geometry, cache: cache, kernels: kernels) },
                transpose: { s, wi in
                    Conv2D.backwardInput(dy: s, w: wi, inputShape: plan.x.shape, geometry: plan.geometry, cache: cache, kernels: kernels)
                })
            layer.weights = { kind, wi, make in cache.derived("lrp:" + kind, from: wi, make) }
            let bias = args.count > 2 ? args[2] : nil
            let rIn = try LRP.linear(x: plan.x, w: plan.w, bias: bias, biasAxis: 1, relevance: rOut.reshaped(outputShape(plan, rOut)), rule: rule, layer: layer)
            return [rIn.reshaped(x.shape)] + Array(repeating: nil, count: args.count - 1)
        case "Gemm":
            guard let gemm = node.op as? GemmOp, !gemm.transA, let a = args[0], let b = args[1] else { break }
            let kernels = kernels
            let layer = LinearLayer(
                apply: { xi, wi in
                    try Gemm.forward(a: xi, b: wi, c: nil, transA: false, transB: gemm.transB, alpha: gemm.alpha, beta: 0, kernels: kernels)
                },
                transpose: { s, wi in
                    Gemm.backwardA(dy: s, a: a, b: wi, transA: false, transB: gemm.transB, alpha: gemm.alpha, kernels: kernels)
                })
            var bias = args.count > 2 ? args[2] : nil
            if let c = bias { bias = try Elementwise.binary(Tensor(shape: rOut.shape), c) { _, v in v * gemm.beta } }
            return [try LRP.linear(x: a, w: b, bias: bias, biasAxis: nil, relevance: rOut, rule: rule, layer: layer), nil, nil]
        case "Add", "Sum":
            // Norm: each input receives relevance in proportion to its contribution.
            let z = outputs[0]
            let s = Tensor(shape: z.shape, data: zip(rOut.data, z.data).map { r, zv in r / LRP.stabilize(zv, 1e-6) })
            return try args.map { input in
                guard let input else { return nil }
                return Elementwise.sumToShape(try Elementwise.binary(input, s, *), input.shape)
            }
        case "GlobalAveragePool", "AveragePool":
            // Norm: R_in = x ⊙ poolᵀ(R / stab(pool(x))).
            guard let x = args[0] else { break }
            let z = outputs[0]
            let s = Tensor(shape: z.shape, data: zip(rOut.data, z.data).map { r, zv in r / LRP.stabilize(zv, 1e-6) })
            let back = try node.op.backward(inputs: args, outputs: outputs, gradOutputs: [s], Pass(kernels: kernels))
            guard let g = back[0] else { break }
            return [Tensor(shape: x.shape, data: zip(x.data, g.data).map(*))]
        case "Mul" where args.count == 2:
            // Gating (SiLU's x·σ(x), squeeze-and-excitation's x·σ(s)): the gate is a weight, the
            // signal takes all the relevance (as LRP treats gated units); relevance is conserved.
            let gates = node.inputs.map { gateProducers.contains($0) }
            if gates[1] && !gates[0] { return [Elementwise.sumToShape(rOut, args[0]!.shape), nil] }
            if gates[0] && !gates[1] { return [nil, Elementwise.sumToShape(rOut, args[1]!.shape)] }
        case "Relu", "LeakyRelu", "Elu", "Selu", "Sigmoid", "Tanh", "Clip", "HardSigmoid", "HardSwish", "PRelu",
             "BatchNormalization", "Identity", "Dropout":
            return [rOut] + Array(repeating: nil, count: args.count - 1)
        default:
            break
        }
        // Everything else routes relevance like its gradient (max pooling: winner takes all).
        return try node.op.backward(inputs: args, outputs: outputs, gradOutputs: relevance, Pass(kernels: kernels))
    }

    /// The 2-D output shape a convolution plan produces (1-D convs run as 2-D).
    private func outputShape(_ plan: (x: Tensor, w: Tensor, geometry: Conv2DGeometry), _ r: Tensor) -> [Int] {
        let (oh, ow) = plan.geometry.outputSize(h: plan.x.shape[2], w: plan.x.shape[3])
        return [r.shape[0], plan.w.shape[0], oh, ow]
    }
}

/// A linear map and its transpose, for the rules to evaluate with modified inputs and weights.
struct LinearLayer {
    let apply: (Tensor, Tensor) throws -> Tensor
    let transpose: (Tensor, Tensor) throws -> Tensor
    /// A modified copy of the weights (W⁺, W⁻, ...) by kind; a layer that keeps a cache (a
    /// convolution operator) makes each once, so its packing for the GEMM kernel is reused too.
    var weights: (String, Tensor, (Tensor) -> Tensor) -> Tensor = { _, w, make in make(w) }
}

enum LRP {
    /// z + ε·sign(z), with sign(0) = 1 (Zennit's stabilizer).
    static func stabilize(_ z: Float, _ epsilon: Float) -> Float { z + (z >= 0 ? epsilon : -epsilon) }

    static func map(_ t: Tensor, _ f: (Float) -> Float) -> Tensor { Tensor(shape: t.shape, data: t.data.map(f)) }

    /// One term of a rule: a modified input, modified weights, an optional (modified) bias, a sign.
    struct Term {
        let x: Tensor
        let w: Tensor
        var bias: Tensor? = nil
        var sign: Float = 1
    }

    /// Adds a per-output bias to z: along axis 1 for a convolution, broadcast for a dense layer.
    static func addBias(_ z: inout Tensor, _ bias: Tensor, axis: Int?, sign: Float) throws {
        if let axis {
            let plane = z.shape.dropFirst(axis + 1).elementCount, m = z.shape[axis]
            let outer = z.count / max(1, plane * m)
            z.data.withUnsafeMutableBufferPointer { zp in
                for o in 0..<outer {
                    for c in 0..<m {
                        let v = sign * bias.data[c], base = (o * m + c) * plane
                        for i in base..<(base + plane) { zp[i] += v }
                    }
                }
            }
        } else {
            z = try Elementwise.binary(z, bias) { $0 + sign * $1 }
        }
    }

    /// Terms sharing one normalizer: Σ sign·x′ ⊙ W′ᵀ(s), s = gate ⊙ R / stab(Σ sign·(W′x′ + b′)).
    static func group(_ terms: [Term], relevance r: Tensor, gate: ((Int) -> Bool)? = nil, epsilon: Float,
                      biasAxis: Int?, layer: LinearLayer) throws -> Tensor {
        let inputShape = terms[0].x.shape
        // A term whose input is all zero and that has no bias adds nothing to z or to the result:
        // skip its two passes (x⁻ after a ReLU, the common case, halves z-plus and alpha-beta).
        let terms = terms.filter { t in t.bias != nil || t.x.data.contains { $0 != 0 } }
        var z = Tensor(shape: r.shape)
        for (n, t) in terms.enumerated() {
            let zt = try layer.apply(t.x, t.w)
            if n == 0 && t.sign == 1 {
                z = zt.reshaped(r.shape)
            } else {
                z.data.withUnsafeMutableBufferPointer { zp in
                    zt.data.withUnsafeBufferPointer { tp in for i in 0..<zp.count { zp[i] += t.sign * tp[i] } }
                }
            }
            if let b = t.bias { try addBias(&z, b, axis: biasAxis, sign: t.sign) }
        }
        var s = Tensor(shape: r.shape)
        s.data.withUnsafeMutableBufferPointer { sp in
            r.data.withUnsafeBufferPointer { rp in
                z.data.withUnsafeBufferPointer { zp in
                    for i in 0..<sp.count where gate?(i) ?? true { sp[i] = rp[i] / stabilize(zp[i], epsilon) }
                }
            }
        }
        var out = Tensor(shape: inputShape)
        for t in terms {
            let g = try layer.transpose(s, t.w)
            out.data.withUnsafeMutableBufferPointer { op in
                t.x.data.withUnsafeBufferPointer { xp in
                    g.data.withUnsafeBufferPointer { gp in for i in 0..<op.count { op[i] += t.sign * xp[i] * gp[i] } }
                }
            }
        }
        return out
    }

    /// The input relevance of a linear layer under `rule`, with Zennit 0.5's definitions of each
    /// rule (including which bias parts enter the denominators).
    static func linear(x: Tensor, w: Tensor, bias: Tensor?, biasAxis: Int?, relevance r: Tensor, rule: LRPRule,
                       layer: LinearLayer) throws -> Tensor {
        let pos = { (v: Float) in max(v, 0) }, neg = { (v: Float) in min(v, 0) }
        // x⁺ and x⁻ only for the rules that split the input; after a ReLU x⁺ is x and x⁻ is zero.
        let nonNegative = !x.data.contains { $0 < 0 }
        var split: (Tensor, Tensor)?
        func parts() -> (Tensor, Tensor) {
            if let split { return split }
            split = nonNegative ? (x, Tensor(shape: x.shape)) : (map(x, pos), map(x, neg))
            return split!
        }
        let eps: Float = 1e-6
        // W⁺ and W⁻, made once per layer when the layer keeps a cache.
        func positive() -> Tensor { layer.weights("positive", w) { map($0, pos) } }
        func negative() -> Tensor { layer.weights("negative", w) { map($0, neg) } }
        switch rule {
        case .epsilon(let e):
            return try group([Term(x: x, w: w, bias: bias)], relevance: r, epsilon: e, biasAxis: biasAxis, layer: layer)
        case .zPlus:
            // z = W⁺x⁺ + b⁺ + W⁻x⁻: the positive bias part stays in the denominator.
            let (xp, xn) = parts()
            return try group([Term(x: xp, w: positive(), bias: bias.map { map($0, pos) }), Term(x: xn, w: negative())],
                             relevance: r, epsilon: eps, biasAxis: biasAxis, layer: layer)
        case .alphaBeta(let alpha, let beta):
            let (xp, xn) = parts()
            let activating = try group([Term(x: xp, w: positive(), bias: bias.map { map($0, pos) }), Term(x: xn, w: negative())],
                                       relevance: r, epsilon: eps, biasAxis: biasAxis, layer: layer)
            let inhibiting = try group([Term(x: xp, w: negative(), bias: bias.map { map($0, neg) }), Term(x: xn, w: positive())],
                                       relevance: r, epsilon: eps, biasAxis: biasAxis, layer: layer)
            return Tensor(shape: x.shape, data: zip(activating.data, inhibiting.data).map { alpha * $0 - beta * $1 })
        case .flat:
            return try group([Term(x: Tensor(shape: x.shape, repeating: 1), w: layer.weights("ones", w) { map($0) { _ in 1 } })],
                             relevance: r, epsilon: eps, biasAxis: biasAxis, layer: layer)
        case .wSquare:
            return try group([Term(x: Tensor(shape: x.shape, repeating: 1), w: layer.weights("square", w) { map($0) { $0 * $0 } })],
                             relevance: r, epsilon: eps, biasAxis: biasAxis, layer: layer)
        case .gamma(let g):
            // Outputs with z > 0 are explained by the positive-emphasized weights W + γW⁺, outputs
            // with z < 0 by W + γW⁻; z == 0 passes nothing.
            var z = try layer.apply(x, w)
            if let bias { try addBias(&z, bias, axis: biasAxis, sign: 1) }
            let wp = layer.weights("gamma+\(g)", w) { map($0) { $0 + g * max($0, 0) } }, wn = layer.weights("gamma-\(g)", w) { map($0) { $0 + g * min($0, 0) } }
            let bp = bias.map { map($0) { $0 + g * max($0, 0) } }, bn = bias.map { map($0) { $0 + g * min($0, 0) } }
            let zs = z.data
            let (xp, xn) = parts()
            let up = try group([Term(x: xp, w: wp, bias: bp), Term(x: xn, w: wn)], relevance: r, gate: { zs[$0] > 0 },
                               epsilon: eps, biasAxis: biasAxis, layer: layer)
            let down = try group([Term(x: xp, w: wn, bias: bn), Term(x: xn, w: wp)], relevance: r, gate: { zs[$0] < 0 },
                                 epsilon: eps, biasAxis: biasAxis, layer: layer)
            return Tensor(shape: x.shape, data: zip(up.data, down.data).map(+))
        case .zBox(let low, let high):
            // (x, W) − (low, W⁺) − (high, W⁻); the bias parts cancel in the denominator.
            return try group([Term(x: x, w: w), Term(x: Tensor(shape: x.shape, repeating: low), w: positive(), sign: -1),
                              Term(x: Tensor(shape: x.shape, repeating: high), w: negative(), sign: -1)],
                             relevance: r, epsilon: eps, biasAxis: biasAxis, layer: layer)
        }
    }
}
