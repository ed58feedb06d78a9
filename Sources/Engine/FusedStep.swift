import Tensors

/// A run of nodes an inference pass on the optimized graph computes as one (see the fusions in
/// Optimizer.swift): found once per model, applied in a pass where no tap names a tensor it
/// would not make. Passes that keep every tensor (gradients, LRP) run the nodes one by one.
enum FusedStep: Sendable {
    /// Conv → Add (→ Relu): the residual added in the convolution's store.
    case residual(ResidualFusion, ConvOp)
    /// 1×1 expansion → depthwise Conv (each with its SiLU, if any), a few channels at a time.
    case pair(PointwiseDepthwiseFusion, ConvOp, ConvOp)
    /// Conv → Sigmoid, Mul: SiLU in the convolution's store.
    case silu(SiLUFusion, ConvOp)
    /// BatchNormalization → Relu in one pass.
    case batchNormRelu(BatchNormReluFusion, BatchNormalizationOp)

    /// The nodes the step does besides the one it starts at.
    var skipped: [Int] {
        switch self {
        case .residual(let f, _): return [f.add] + (f.relu.map { [$0] } ?? [])
        case .pair(let f, _, _): return f.skipped
        case .silu(let f, _): return [f.sigmoid, f.mul]
        case .batchNormRelu(let f, _): return [f.relu]
        }
    }

    /// The tensor the step writes.
    var output: String {
        switch self {
        case .residual(let f, _): return f.output
        case .pair(let f, _, _): return f.output
        case .silu(let f, _): return f.output
        case .batchNormRelu(let f, _): return f.output
        }
    }

    /// A node whose name the per-node clock adds to the first's ("expansion + depthwise").
    var namedWith: Int? {
        if case .pair(let f, _, _) = self { return f.depthwise }
        return nil
    }

    /// What an error message adds after the first node's name.
    func description(in graph: Graph) -> String {
        switch self {
        case .residual: return " with the Add after it"
        case .pair(let f, _, _): return " with the depthwise Conv '\(graph.nodes[f.depthwise].name)'"
        case .silu: return " with the SiLU after it"
        case .batchNormRelu: return " with the Relu after it"
        }
    }

    /// Runs the step on the first node's inputs `args` and its `extraInputs`, given as references
    /// into the pass (names, or an inference plan's slots): `fetch(ref, take)` returns one, taking
    /// it out of the pass when `take` (a residual the step hands over: with no other owner,
    /// writing it does not copy it). Steps run in inference passes only, with `kernels`.
    func run<Ref>(_ args: [Tensor?], extra: [Ref], handsOver: Bool, kernels: KernelOptions,
                  fetch: (Ref, _ take: Bool) -> Tensor?) throws -> Tensor {
        if case .residual = self { return try run(args, residual: fetch(extra[0], handsOver), depthwiseInputs: [], kernels: kernels) }
        return try run(args, residual: nil, depthwiseInputs: extra.map { fetch($0, false) }, kernels: kernels)
    }

    /// Runs the step on the first node's inputs `args`, the residual (`.residual`) and the
    /// depthwise node's inputs (`.pair`; its first, the intermediate tensor, is not read).
    func run(_ args: [Tensor?], residual: consuming Tensor?, depthwiseInputs: [Tensor?], kernels: KernelOptions) throws -> Tensor {
        switch self {
        case .residual(let fusion, let conv):
            guard let residual = residual.take() else { throw EngineError("the fused residual Add has no residual") }
            return try conv.forward(args, residual: residual, relu: fusion.relu != nil, kernels: kernels)
        case .pair(let pair, let conv, let depthwise):
            return try conv.forward(args, activation: pair.expansionSiLU == nil ? conv.activation : .silu,
                                    depthwise: depthwise, depthwiseInputs,
                                    dwActivation: pair.depthwiseSiLU == nil ? depthwise.activation : .silu, kernels: kernels)
        case .silu(_, let conv):
            return try conv.forward(args, activation: .silu, Pass(kernels: kernels, inference: true))
        case .batchNormRelu(_, let bn):
            return try bn.forward(args, relu: true, kernels: kernels)
        }
    }

    /// The tensors the step reads besides its first node's inputs, in the order `run` takes
    /// them: the residual, or the depthwise node's inputs.
    func extraInputs(in graph: Graph) -> [String] {
        switch self {
        case .residual(let f, _): return [f.residual]
        case .pair(let f, _, _): return graph.nodes[f.depthwise].inputs
        case .silu, .batchNormRelu: return []
        }
    }

    /// Whether a residual step takes the residual's buffer for its output: when the Add is the
    /// residual's last reader and nobody keeps it, the tensor leaves the pass (it has no other
    /// owner then, so writing it does not copy it).
    func handsOverResidual(frees: [[String]], keep: Set<String>) -> Bool {
        guard case .residual(let fusion, _) = self else { return false }
        return fusion.residualIdleUntilAdd && frees[fusion.add].contains(fusion.residual) && !keep.contains(fusion.residual)
    }
}

extension Model {
    /// How many runs of nodes inference passes can fuse, by kind (`candela inspect`): residual
    /// Adds, expansion + depthwise pairs, SiLUs (one inside a pair counts in both), and
    /// BatchNormalization + Relu.
    public var inferenceFusions: [String: Int] {
        ["residual_add": residualFusions.count, "expansion_depthwise": pointwiseDepthwiseFusions.count,
         "silu": siluFusions.count, "batchnorm_relu": batchNormReluFusions.count]
    }

    /// The fused step that starts at node `index` of the optimized graph in this pass, if any:
    /// none where a tap names a tensor it would not make, where a residual's shape is not the
    /// convolution's output shape (a broadcasting Add), or where a switch turns it off.
    func fusedStep(at index: Int, _ node: Node, values: [String: Tensor], keep: Set<String>) -> FusedStep? {
        let free = { (names: [String]) in names.allSatisfy { !keep.contains($0) } }
        if let fusion = residualFusions[index], free(fusion.intermediates), let conv = node.op as? ConvOp,
           let x = values[node.inputs[0]], let w = values[node.inputs[1]],
           let shape = conv.outputShape(x: x, w: w), values[fusion.residual]?.shape == shape {
            return .residual(fusion, conv)
        }
        if kernels.fusePointwiseDepthwise, let pair = pointwiseDepthwiseFusions[index], free(pair.intermediates),
           kernels.fuseSiLU || (pair.expansionSiLU == nil && pair.depthwiseSiLU == nil),
           let conv = node.op as? ConvOp, let depthwise = optimizedGraph.nodes[pair.depthwise].op as? ConvOp {
            return .pair(pair, conv, depthwise)
        }
        if kernels.fuseSiLU, let fusion = siluFusions[index], free(fusion.intermediates), let conv = node.op as? ConvOp {
            return .silu(fusion, conv)
        }
        if let fusion = batchNormReluFusions[index], free([fusion.intermediate]), let bn = node.op as? BatchNormalizationOp {
            return .batchNormRelu(fusion, bn)
        }
        return nil
    }
}
