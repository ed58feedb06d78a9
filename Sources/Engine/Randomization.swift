import Tensors

extension Graph {
    /// The same graph with some initializers replaced (same names and shapes).
    func replacingInitializers(_ replaced: [String: Tensor]) throws -> Graph {
        var values = initializers
        for (name, t) in replaced {
            guard let old = values[name], old.shape == t.shape else {
                throw EngineError("cannot replace initializer '\(name)': \(values[name] == nil ? "no such initializer" : "shape \(values[name]!.shape) ≠ \(t.shape)")")
            }
            values[name] = t
        }
        return try Graph(inputs: inputs, outputs: outputs, initializers: values, nodes: nodes)
    }

    /// Conv and Gemm nodes whose weights are initializers (the "layers" of a randomization
    /// check), in topological order: the last one is the top layer.
    public var parameterizedLayers: [Node] {
        nodes.filter { ($0.opType == "Conv" || $0.opType == "Gemm") && $0.inputs.count > 1 && initializers[$0.inputs[1]] != nil }
    }
}

extension Model {
    /// A copy of the model with the weights of its top `count` layers re-drawn, for the
    /// model-parameter randomization test (Adebayo et al., "Sanity checks for saliency maps",
    /// NeurIPS 2018, §3.1, cascading randomization from the top layer).
    ///
    /// Each randomized Conv/Gemm weight tensor is drawn from N(0, σ²) with σ its original
    /// standard deviation (so activations keep their scale), and its bias is set to zero, as a
    /// fresh initialization would. BatchNormalization parameters are kept. `seed` makes it
    /// reproducible.
    public func randomizingTopLayers(_ count: Int, seed: UInt64 = 0) throws -> Model {
        let layers = graph.parameterizedLayers
        guard count >= 0, count <= layers.count else {
            throw EngineError("\(path): cannot randomize \(count) layers; the model has \(layers.count) Conv/Gemm layers")
        }
        var rng = SeededGenerator(seed: seed)
        var replaced: [String: Tensor] = [:]
        for node in layers.suffix(count).reversed() {
            let w = graph.initializers[node.inputs[1]]!
            let mean = w.data.reduce(0, +) / Float(max(w.count, 1))
            let sigma = (w.data.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / Float(max(w.count, 1))).squareRoot()
            replaced[node.inputs[1]] = Tensor(shape: w.shape, data: (0..<w.count).map { _ in sigma * rng.gaussian() })
            if node.inputs.count > 2, !node.inputs[2].isEmpty, let b = graph.initializers[node.inputs[2]] {
                replaced[node.inputs[2]] = Tensor(shape: b.shape)
            }
            // A BatchNormalization right after the layer is part of it: fresh statistics and affine.
            for bn in graph.nodes where bn.opType == "BatchNormalization" && bn.inputs.first == node.outputs[0] {
                for (k, value) in [(1, Float(1)), (2, 0), (3, 0), (4, 1)] where bn.inputs.count > k {
                    if let t = graph.initializers[bn.inputs[k]] { replaced[bn.inputs[k]] = Tensor(shape: t.shape, repeating: value) }
                }
            }
        }
        return try Model(path: path, graph: try graph.replacingInitializers(replaced), batch: batch, kernels: kernels)
    }
}
