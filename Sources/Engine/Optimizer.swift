import Tensors

/// Load-time rewrites that make inference faster without changing any result:
///
/// 1. `Identity` and inference `Dropout` nodes are dropped (consumers read their input);
/// 2. `BatchNormalization` after a `Conv` is folded into the convolution's weights and bias:
///    W′ = a·W, b′ = a·b + (β − a·μ) with a = γ/√(σ²+ε) (exact in inference);
/// 3. a `Relu`, or a `Clip` with constant bounds (ReLU6), after a `Conv` runs inside it.
///
/// A rewrite happens only when the intermediate tensor it removes has no other consumer and is
/// not a graph output. The original graph is kept beside the optimized one: `Model` runs the
/// original whenever a caller asks for a tensor the rewrite removed (a tap, a CAM layer), so
/// every tensor of the file stays observable and differentiable.
enum Optimizer {
    static func optimize(_ graph: Graph) throws -> Graph {
        var nodes = graph.nodes
        var initializers = graph.initializers
        let outputs = Set(graph.outputs)

        func consumers(_ name: String) -> [Int] {
            nodes.indices.filter { nodes[$0].inputs.contains(name) }
        }
        func removable(_ name: String) -> Bool { !outputs.contains(name) && consumers(name).count == 1 }

        // 1. Identity / Dropout: rewire consumers to the input.
        var renamed: [String: String] = [:]
        nodes = nodes.filter { n in
            guard n.opType == "Identity" || n.opType == "Dropout", let out = n.outputs.first, !outputs.contains(out) else {
                return true
            }
            // Keep a Dropout whose mask is used or whose training_mode is an input (its op decides at run time).
            let extras = n.outputs.dropFirst().filter { !$0.isEmpty }
            if extras.contains(where: { name in outputs.contains(name) || graph.nodes.contains { $0.inputs.contains(name) } }) {
                return true
            }
            if n.opType == "Dropout" && n.inputs.count > 2 && !n.inputs[2].isEmpty { return true }
            renamed[out] = renamed[n.inputs[0]] ?? n.inputs[0]
            return false
        }
        if !renamed.isEmpty {
            nodes = nodes.map { n in
                Node(name: n.name, opType: n.opType, inputs: n.inputs.map { renamed[$0] ?? $0 }, outputs: n.outputs, op: n.op)
            }
        }

        // 2 and 3: Conv followed by BatchNormalization, then by Relu / Clip.
        var i = 0
        while i < nodes.count {
            guard nodes[i].opType == "Conv", var conv = nodes[i].op as? ConvOp, conv.activation == nil,
                  nodes[i].inputs.count >= 2, let w = initializers[nodes[i].inputs[1]] else { i += 1; continue }
            let out = nodes[i].outputs[0]
            guard removable(out), let j = consumers(out).first else { i += 1; continue }
            let next = nodes[j]
            if next.opType == "BatchNormalization", let bn = next.op as? BatchNormalizationOp, !bn.training,
               next.inputs.count == 5, next.inputs[0] == out, next.outputs.count == 1,
               let scale = initializers[next.inputs[1]], let beta = initializers[next.inputs[2]],
               let mean = initializers[next.inputs[3]], let variance = initializers[next.inputs[4]],
               scale.count == w.shape[0] {
                let (a, b) = BatchNorm.affine(scale: scale, bias: beta, mean: mean, variance: variance, epsilon: bn.epsilon)
                let bias = nodes[i].inputs.count > 2 && !nodes[i].inputs[2].isEmpty ? initializers[nodes[i].inputs[2]] : nil
                if nodes[i].inputs.count > 2 && !nodes[i].inputs[2].isEmpty && bias == nil { i += 1; continue }
                var folded = w
                let per = w.count / w.shape[0]
                for m in 0..<w.shape[0] { for k in 0..<per { folded.data[m * per + k] *= a[m] } }
                let newBias = Tensor(shape: [w.shape[0]], data: (0..<w.shape[0]).map { m in a[m] * (bias?.data[m] ?? 0) + b[m] })
                let wName = "\(nodes[i].name)::folded_weight", bName = "\(nodes[i].name)::folded_bias"
                initializers[wName] = folded
                initializers[bName] = newBias
                nodes[i] = Node(name: nodes[i].name, opType: "Conv", inputs: [nodes[i].inputs[0], wName, bName],
                                outputs: next.outputs, op: conv)
                nodes.remove(at: j)
                if j < i { i -= 1 }
                continue // the folded conv may now take an activation
            }
            if next.outputs.count == 1, next.inputs.first == out {
                var activation: ConvOp.Activation?
                if next.opType == "Relu" {
                    activation = .relu
                } else if next.opType == "Clip", let clip = next.op as? ClipOp {
                    let lo = next.inputs.count > 1 && !next.inputs[1].isEmpty ? initializers[next.inputs[1]]?.data.first : -Float.infinity
                    let hi = next.inputs.count > 2 && !next.inputs[2].isEmpty ? initializers[next.inputs[2]]?.data.first : Float.infinity
                    if let b = clip.attributeBounds { activation = .clip(b.0, b.1) }
                    else if let lo, let hi { activation = .clip(lo, hi) }
                }
                if let activation {
                    conv.activation = activation
                    nodes[i] = Node(name: nodes[i].name, opType: "Conv", inputs: nodes[i].inputs, outputs: next.outputs, op: conv)
                    nodes.remove(at: j)
                    if j < i { i -= 1 }
                }
            }
            i += 1
        }
        // Drop initializers nothing reads any more.
        let used = Set(nodes.flatMap(\.inputs))
        initializers = initializers.filter { used.contains($0.key) || outputs.contains($0.key) }
        return try Graph(inputs: graph.inputs, outputs: graph.outputs, initializers: initializers, nodes: nodes)
    }
}

/// A residual connection an inference pass runs inside the convolution before it:
/// `t = Conv(x)` (no fused activation), `a = Add(t, r)` (or `Add(r, t)`), then optionally
/// `Relu(a)` becomes one convolution whose store adds r and applies the ReLU
/// (`Conv2D.forward(residual:)`), as ONNX Runtime fuses its Sum. Only where t (and a, before a
/// ReLU) have no other reader and are not graph outputs, and r exists before the Conv runs.
/// Passes that keep every tensor (gradients, LRP) or tap t or a run the nodes one by one, so
/// every tensor stays observable; the sums differ from the unfused ones only in rounding.
struct ResidualFusion: Sendable {
    /// Indices of the Add and of the ReLU after it (nil when there is none) in the graph.
    let add: Int
    let relu: Int?
    /// The Add's other input, the tensor the fused node writes, and those it never makes.
    let residual: String
    let output: String
    let intermediates: [String]
    /// Whether no node between the Conv and the Add reads the residual: its buffer may then
    /// become the output when the Add is its last reader.
    let residualIdleUntilAdd: Bool

    /// The fusions of an optimized graph, by the index of their Conv node.
    static func find(in graph: Graph) -> [Int: ResidualFusion] {
        let readers = graph.readers
        var producer: [String: Int] = [:]
        for (i, node) in graph.nodes.enumerated() {
            for name in node.outputs where !name.isEmpty { producer[name] = i }
        }
        let outputs = Set(graph.outputs)
        func soleReader(_ name: String) -> Int? {
            guard !outputs.contains(name), let r = readers[name], r.count == 1 else { return nil }
            return r[0]
        }
        var found: [Int: ResidualFusion] = [:]
        for (i, node) in graph.nodes.enumerated() {
            guard node.opType == "Conv", let conv = node.op as? ConvOp, conv.activation == nil,
                  node.outputs.count == 1, let t = node.outputs.first, let j = soleReader(t) else { continue }
            let add = graph.nodes[j]
            guard add.opType == "Add", add.inputs.count == 2, add.outputs.count == 1, add.inputs[0] != add.inputs[1] else { continue }
            let r = add.inputs[0] == t ? add.inputs[1] : add.inputs[0]
            // r must be computed before the Conv runs (or be a graph input); not a constant.
            guard graph.initializers[r] == nil, producer[r].map({ $0 < i }) ?? graph.inputs.contains(where: { $0.name == r }) else { continue }
            let a = add.outputs[0]
            let idle = (readers[r] ?? []).allSatisfy { $0 < i || $0 == j }
            if let k = soleReader(a), graph.nodes[k].opType == "Relu", graph.nodes[k].outputs.count == 1 {
                found[i] = ResidualFusion(add: j, relu: k, residual: r, output: graph.nodes[k].outputs[0],
                                          intermediates: [t, a], residualIdleUntilAdd: idle)
            } else {
                found[i] = ResidualFusion(add: j, relu: nil, residual: r, output: a, intermediates: [t], residualIdleUntilAdd: idle)
            }
        }
        return found
    }
}

/// A Conv followed by SiLU (EfficientNet's Swish) written as two nodes, `s = Sigmoid(t)` and
/// `y = Mul(t, s)` (or `Mul(s, t)`), which an inference pass runs as one convolution whose store
/// applies v · sigmoid(v) (`ConvActivation.silu`): the two passes over memory disappear, and the
/// result has the bits of the three nodes (the store computes the sigmoid as the Sigmoid node
/// does, then the product). Only where the Conv has no fused activation, t is read by exactly
/// those two nodes and s by the Mul alone, and neither is a graph output; passes that keep every
/// tensor or tap t or s run the nodes one by one (the fused Conv has no backward: its gradient
/// needs t).
struct SiLUFusion: Sendable {
    /// Indices of the Sigmoid and the Mul in the graph.
    let sigmoid: Int
    let mul: Int
    /// The Mul's output (the fused Conv writes it), and the tensors it never makes.
    let output: String
    let intermediates: [String]

    /// The fusions of an optimized graph, by the index of their Conv node.
    static func find(in graph: Graph) -> [Int: SiLUFusion] {
        let readers = graph.readers
        let outputs = Set(graph.outputs)
        var found: [Int: SiLUFusion] = [:]
        for (i, node) in graph.nodes.enumerated() {
            guard node.opType == "Conv", let conv = node.op as? ConvOp, conv.activation == nil, node.outputs.count == 1,
                  let t = node.outputs.first, !outputs.contains(t), let r = readers[t], r.count == 2 else { continue }
            guard let si = r.first(where: { graph.nodes[$0].opType == "Sigmoid" }), let mi = r.first(where: { $0 != si }) else { continue }
            let (sig, mul) = (graph.nodes[si], graph.nodes[mi])
            guard sig.inputs == [t], sig.outputs.count == 1, let s = sig.outputs.first, !outputs.contains(s),
                  readers[s] == [mi], mul.opType == "Mul", mul.outputs.count == 1,
                  mul.inputs == [t, s] || mul.inputs == [s, t] else { continue }
            found[i] = SiLUFusion(sigmoid: si, mul: mi, output: mul.outputs[0], intermediates: [t, s])
        }
        return found
    }
}

/// A 1×1 convolution and the depthwise convolution that alone reads its output (a MobileNet
/// inverted-residual block's expansion and filter), which an inference pass runs as one
/// (`Conv2D.forwardPointwiseDepthwise`: a few channels at a time, the expanded tensor never
/// whole). Either may end in a SiLU the pass fuses (`SiLUFusion`: EfficientNet's blocks). The
/// same bits as node by node. Only where the expansion (after its SiLU, if any) has no other
/// reader and is not a graph output, and the depthwise Conv has no residual fused into it;
/// passes that keep every tensor or tap a tensor between the two run the nodes one by one.
/// Whether the convolutions' geometry allows it (1×1, stride 1, no padding; groups equal to the
/// channels) is known only with the input's shape: the fused call runs them one after the
/// other where it does not.
struct PointwiseDepthwiseFusion: Sendable {
    /// Index of the depthwise Conv in the graph.
    let depthwise: Int
    /// The SiLU each of the two runs in its store, where the graph has one after it.
    let expansionSiLU: SiLUFusion?
    let depthwiseSiLU: SiLUFusion?
    /// The tensors the pair never makes, and the one it writes.
    let intermediates: [String]
    let output: String

    /// The nodes the pair does besides the 1×1 Conv.
    var skipped: [Int] {
        [depthwise] + [expansionSiLU, depthwiseSiLU].compactMap { $0 }.flatMap { [$0.sigmoid, $0.mul] }
    }

    /// The fusions of an optimized graph, by the index of their 1×1 Conv node.
    static func find(in graph: Graph, residualFusions: [Int: ResidualFusion], siluFusions: [Int: SiLUFusion]) -> [Int: PointwiseDepthwiseFusion] {
        let readers = graph.readers
        let outputs = Set(graph.outputs)
        var found: [Int: PointwiseDepthwiseFusion] = [:]
        for (i, node) in graph.nodes.enumerated() {
            guard node.opType == "Conv", let conv = node.op as? ConvOp, conv.group == 1, node.outputs.count == 1,
                  node.inputs.count >= 2, let w = graph.initializers[node.inputs[1]], w.rank == 4,
                  w.shape[2] == 1, w.shape[3] == 1 else { continue }
            let silu = siluFusions[i]
            let t = silu?.output ?? node.outputs[0]
            guard !outputs.contains(t), let r = readers[t], r.count == 1, residualFusions[r[0]] == nil else { continue }
            let next = graph.nodes[r[0]]
            guard next.opType == "Conv", let dw = next.op as? ConvOp, next.inputs.first == t, next.outputs.count == 1,
                  next.inputs.count >= 2, let k = graph.initializers[next.inputs[1]], k.rank == 4,
                  k.shape[0] == w.shape[0], k.shape[1] == 1, dw.group == w.shape[0] else { continue }
            let dwSiLU = siluFusions[r[0]]
            found[i] = PointwiseDepthwiseFusion(depthwise: r[0], expansionSiLU: silu, depthwiseSiLU: dwSiLU,
                                                intermediates: [t] + (silu?.intermediates ?? []) + (dwSiLU?.intermediates ?? []),
                                                output: dwSiLU?.output ?? next.outputs[0])
        }
        return found
    }
}

/// A BatchNormalization (inference mode) whose output only a Relu reads (DenseNet's
/// pre-activation BN → ReLU → Conv), which an inference pass runs as one pass over memory
/// (`BatchNorm.forward(relu:)`): the bits of the two nodes. Only where that output is not a
/// graph output and not tapped; passes that keep every tensor run the two nodes.
struct BatchNormReluFusion: Sendable {
    /// Index of the Relu in the graph, the tensor between the two and the Relu's output.
    let relu: Int
    let intermediate: String
    let output: String

    /// The fusions of an optimized graph, by the index of their BatchNormalization node.
    static func find(in graph: Graph) -> [Int: BatchNormReluFusion] {
        let readers = graph.readers
        let outputs = Set(graph.outputs)
        var found: [Int: BatchNormReluFusion] = [:]
        for (i, node) in graph.nodes.enumerated() {
            guard node.opType == "BatchNormalization", let bn = node.op as? BatchNormalizationOp, !bn.training,
                  node.outputs.count == 1, let t = node.outputs.first, !outputs.contains(t),
                  let r = readers[t], r.count == 1, graph.nodes[r[0]].opType == "Relu",
                  graph.nodes[r[0]].inputs == [t], graph.nodes[r[0]].outputs.count == 1 else { continue }
            found[i] = BatchNormReluFusion(relu: r[0], intermediate: t, output: graph.nodes[r[0]].outputs[0])
        }
        return found
    }
}

extension Graph {
    /// For each tensor, the indices of the nodes that read it, in graph order (a node that reads
    /// it twice counted once): what the fusions ask of a tensor between two nodes.
    var readers: [String: [Int]] {
        var readers: [String: [Int]] = [:]
        for (i, node) in nodes.enumerated() {
            for name in Set(node.inputs) where !name.isEmpty { readers[name, default: []].append(i) }
        }
        return readers
    }
}
