import Foundation
import Tensors

/// The values computed by one forward pass, by tensor name. A pass run for a backward pass
/// keeps every tensor (taps and the backward read them); an inference pass keeps only the
/// outputs and the requested taps.
public struct ForwardPass: Sendable {
    public let values: [String: Tensor]
    /// The graph outputs, in declaration order.
    public let outputs: [Tensor]
    /// Which of the model's graphs computed it (the optimized one unless a tap needed the original).
    let graph: Graph
    /// The tensors of `graph` that depend on a graph input: the only ones a gradient can reach.
    let reachable: Set<String>

    /// The activation at a named tensor; an error names the tensor when it does not exist.
    public func value(_ name: String) throws -> Tensor {
        guard let v = values[name] else { throw EngineError("no tensor named '\(name)' in the model") }
        return v
    }
}

/// A loaded ONNX model and its executor: forward with taps, backward (vector-Jacobian products).
///
/// The model keeps the graph as the file has it and a load-time optimized copy (see `Optimizer`).
/// Passes run on the optimized copy unless a requested tap exists only in the original.
/// Immutable after loading, so one `Model` may serve many threads at once.
public final class Model: Sendable {
    public let path: String
    /// The graph as the ONNX file describes it.
    public let graph: Graph
    /// The same computation after BatchNormalization folding and activation fusion.
    public let optimizedGraph: Graph
    let optimizedNames: Set<String>
    /// For each graph: the tensors whose value depends on a graph input (the only ones a gradient can reach).
    let dependsOnInput: Set<String>
    let optimizedDependsOnInput: Set<String>
    /// For each node of each graph: the tensors that node reads last (freed after it in inference passes).
    let lastUse: [[String]]
    let optimizedLastUse: [[String]]
    /// Bytes of the file graph's constant tensors (weights, biases, statistics) as float32.
    public let parameterBytes: Int
    /// Residual connections inference passes on the optimized graph fuse into a convolution's
    /// store, by the index of that Conv node (see `ResidualFusion`).
    let residualFusions: [Int: ResidualFusion]

    /// Loads and checks an ONNX file; every operator must be supported.
    public convenience init(path: String, optimize: Bool = true) throws {
        try self.init(path: path, graph: try ONNXImport.load(path: path), optimize: optimize)
    }

    /// A model for an already-built graph (`path` names it in messages).
    init(path: String, graph: Graph, optimize: Bool = true) throws {
        self.path = path
        self.graph = graph
        do {
            self.optimizedGraph = optimize ? try Optimizer.optimize(graph) : graph
        } catch let e as EngineError {
            throw e.prefixed("\(path): while optimizing: ")
        }
        self.optimizedNames = Set(optimizedGraph.tensorNames)
        self.dependsOnInput = Model.forwardClosure(of: Set(graph.inputs.map(\.name)), in: graph)
        self.optimizedDependsOnInput = Model.forwardClosure(of: Set(optimizedGraph.inputs.map(\.name)), in: optimizedGraph)
        self.lastUse = Model.lastUses(graph)
        self.optimizedLastUse = Model.lastUses(optimizedGraph)
        self.parameterBytes = graph.initializers.values.reduce(0) { $0 + $1.count } * 4
        self.residualFusions = ResidualFusion.find(in: optimizedGraph)
    }

    /// The first graph input's name (image classifiers have one).
    public var inputName: String { graph.inputs.first?.name ?? "" }

    /// Runs the graph. `feeds` maps graph input names to tensors.
    ///
    /// - Parameters:
    ///   - taps: tensors the caller will read; the original graph runs when one was optimized away.
    ///   - keepAll: keep every tensor (needed by `backward`); when false, each tensor is freed after
    ///     its last reader, so peak memory follows the live set, not the whole network.
    ///   - clock: when given, adds each node's wall time to it (`candela bench --layers`).
    public func run(_ feeds: [String: Tensor], taps: [String] = [], keepAll: Bool = true,
                    clock: NodeClock? = nil) throws -> ForwardPass {
        let optimized = taps.allSatisfy(optimizedNames.contains)
        let g = optimized ? optimizedGraph : graph
        let frees = optimized ? optimizedLastUse : lastUse
        let keep = Set(g.outputs).union(taps)
        var values = g.initializers
        for input in g.inputs {
            guard let t = feeds[input.name] else { throw EngineError("\(path): missing value for graph input '\(input.name)'") }
            try checkShape(t, against: input)
            values[input.name] = t
        }
        // Inference on the optimized graph fuses residual connections whose intermediate tensors
        // nobody asked for; `skip` holds the Add (and ReLU) nodes a fused convolution has done.
        let fusing = optimized && !keepAll
        var skip = Set<Int>()
        for (index, node) in g.nodes.enumerated() {
            if !skip.contains(index) {
                let fused = fusing ? residualFusion(at: index, node, values: values, keep: keep) : nil
                let args = node.inputs.map { $0.isEmpty ? nil : values[$0] }
                let started = clock == nil ? 0 : DispatchTime.now().uptimeNanoseconds
                let results: [Tensor]
                do {
                    if let (fusion, conv) = fused {
                        // When the Add is the residual's last reader, its buffer becomes the output
                        // (taken out of `values`, it has no other owner, so writing it does not copy it).
                        let handOver = fusion.residualIdleUntilAdd && frees[fusion.add].contains(fusion.residual)
                            && !keep.contains(fusion.residual)
                        let residual = handOver ? values.removeValue(forKey: fusion.residual)! : values[fusion.residual]!
                        results = [try conv.forward(args, residual: residual, relu: fusion.relu != nil)]
                        skip.insert(fusion.add)
                        if let relu = fusion.relu { skip.insert(relu) }
                    } else {
                        results = try node.op.forward(args)
                    }
                    clock?.add(node: index, of: g, shape: results.first?.shape ?? [], nanoseconds: DispatchTime.now().uptimeNanoseconds - started)
                } catch let e as EngineError {
                    throw e.prefixed("\(path): node '\(node.name)' (\(node.opType))\(fused == nil ? "" : " with the Add after it"): ")
                } catch let e as TensorError {
                    throw EngineError("\(path): \(EngineError.node(node, e.description))")
                }
                let names = fused.map { [$0.0.output] } ?? node.outputs
                for (name, value) in zip(names, results) where !name.isEmpty { values[name] = value }
            }
            if !keepAll {
                for name in frees[index] where !keep.contains(name) { values[name] = nil }
            }
        }
        return ForwardPass(values: values, outputs: try g.outputs.map { name in
            guard let v = values[name] else { throw EngineError("\(path): output '\(name)' was not computed") }
            return v
        }, graph: g, reachable: optimized ? optimizedDependsOnInput : dependsOnInput)
    }

    /// The residual fusion that applies at node `index` of the optimized graph in this pass: none
    /// where a tap names a tensor it would skip, or where the residual's shape is not the
    /// convolution's output shape (a broadcasting Add).
    private func residualFusion(at index: Int, _ node: Node, values: [String: Tensor], keep: Set<String>) -> (ResidualFusion, ConvOp)? {
        guard let fusion = residualFusions[index], fusion.intermediates.allSatisfy({ !keep.contains($0) }),
              let conv = node.op as? ConvOp, let x = values[node.inputs[0]], let w = values[node.inputs[1]],
              let shape = conv.outputShape(x: x, w: w), values[fusion.residual]?.shape == shape else { return nil }
        return (fusion, conv)
    }

    /// Runs a single-input model and returns its first output: x (N,C,H,W) -> logits (N,K).
    ///
    /// A batch larger than `inferenceChunk` runs in chunks of that many images, each through
    /// the whole network: a layer's output for a few images stays in cache for the next layer,
    /// where 16 images' activations (77 MB in MobileNetV2's first blocks) go through memory.
    /// Not for models whose weights outweigh that (over `chunkedWeightLimit` bytes, VGG's 500 MB
    /// classifier): each chunk would read all of them again. Every image's result is the same
    /// either way.
    public func forward(_ x: Tensor, clock: NodeClock? = nil) throws -> Tensor {
        let n = x.rank > 0 ? x.shape[0] : 0
        guard n > Model.inferenceChunk, parameterBytes <= Model.chunkedWeightLimit else {
            return try run([inputName: x], keepAll: false, clock: clock).outputs[0]
        }
        let per = x.count / n
        var parts: [Tensor] = []
        var start = 0
        while start < n {
            let end = Swift.min(n, start + Model.inferenceChunk)
            let chunk = Tensor(shape: [end - start] + x.shape.dropFirst(), data: Array(x.data[(start * per)..<(end * per)]))
            parts.append(try run([inputName: chunk], keepAll: false, clock: clock).outputs[0])
            start = end
        }
        return try Layout.concat(parts, axis: 0)
    }

    /// Images per pass of `forward` (4). At batch 16, in chunks of 4 against whole (ms per
    /// image): MobileNetV2 8.6–9.2 against 12.3–12.9, EfficientNet-style 14 against 19,
    /// DenseNet-121 52 against 60, resnet18 the same within noise, vgg11_bn 54 against 46 (hence
    /// `chunkedWeightLimit`).
    nonisolated(unsafe) public static var inferenceChunk = 4
    /// Models with more weight bytes than this run whole batches (resnet18 has 47 MB, vgg11_bn 531 MB).
    nonisolated(unsafe) public static var chunkedWeightLimit = 128 << 20



    /// Back-propagates `seeds` (gradients of a scalar objective with respect to named tensors,
    /// usually the logits) and returns the gradient at each tensor named in `wrt`.
    ///
    /// Only nodes between the seeds and the requested tensors are visited: a Grad-CAM tap at the
    /// last convolution does not pay for the backward pass through the stem.
    public func backward(_ pass: ForwardPass, seeds: [String: Tensor], wrt: [String],
                         relu: ReluBackward = .gradient) throws -> [String: Tensor] {
        for name in wrt where pass.values[name] == nil {
            throw EngineError("\(path): no tensor named '\(name)' in the model")
        }
        let graph = pass.graph
        let relevant = Model.forwardClosure(of: Set(wrt), in: graph).intersection(pass.reachable.union(wrt))
        var grads = seeds
        for node in graph.nodes.reversed() {
            guard node.inputs.contains(where: relevant.contains) else { continue }
            let gradOutputs = node.outputs.map { grads[$0] }
            if gradOutputs.allSatisfy({ $0 == nil }) { continue }
            let args = node.inputs.map { $0.isEmpty ? nil : pass.values[$0] }
            let outs = node.outputs.map { pass.values[$0] ?? Tensor(shape: [0]) }
            let gradInputs: [Tensor?]
            do {
                gradInputs = try node.op.backward(inputs: args, outputs: outs, gradOutputs: gradOutputs, relu: relu)
            } catch let e as EngineError {
                throw e.prefixed("\(path): backward of node '\(node.name)' (\(node.opType)): ")
            }
            for (name, g) in zip(node.inputs, gradInputs) {
                guard let g, relevant.contains(name) else { continue }
                if let existing = grads[name] {
                    grads[name] = existing.shape == g.shape ? Elementwise.add(existing, g) : try Elementwise.binary(existing, g, +)
                } else {
                    grads[name] = g
                }
            }
        }
        var result: [String: Tensor] = [:]
        for name in wrt {
            // A tensor the objective does not depend on has a zero gradient.
            result[name] = grads[name] ?? Tensor(shape: pass.values[name]!.shape)
        }
        return result
    }

    /// For each node, the non-initializer tensors it is the last node to read.
    static func lastUses(_ graph: Graph) -> [[String]] {
        var last: [String: Int] = [:]
        for (i, n) in graph.nodes.enumerated() { for t in n.inputs where !t.isEmpty { last[t] = i } }
        var out = [[String]](repeating: [], count: graph.nodes.count)
        for (t, i) in last where graph.initializers[t] == nil { out[i].append(t) }
        return out
    }

    /// Every tensor computed from `start` (including `start` itself).
    static func forwardClosure(of start: Set<String>, in graph: Graph) -> Set<String> {
        var reached = start
        for node in graph.nodes where node.inputs.contains(where: reached.contains) {
            for o in node.outputs { reached.insert(o) }
        }
        return reached
    }

    func checkShape(_ t: Tensor, against input: GraphInput) throws {
        let ok = t.rank == input.shape.count
            && zip(t.shape, input.shape).allSatisfy { actual, declared in declared == nil || declared == actual || declared == 0 }
        if !ok && !input.shape.isEmpty {
            let declared = input.shape.map { $0.map(String.init) ?? "?" }.joined(separator: ",")
            throw EngineError("\(path): input '\(input.name)' expects shape [\(declared)], got \(t.shape)")
        }
    }
}
