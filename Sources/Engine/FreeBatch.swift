import Foundation
import Tensors

/// Running a model exported with a fixed batch (`torch.onnx.export`'s default: input
/// `[1,3,224,224]`) on batches of any size, as the batched explainers need (integrated gradients,
/// Score-CAM, RISE, LIME, SmoothGrad, occlusion).
///
/// The engine computes every shape from the tensors it is given, so two things bake the batch
/// in: the input's declared shape, and Reshape nodes whose target shape is a constant starting
/// with the batch (static exports fold `x.view(x.size(0), -1)` into `Reshape(x, [1, -1])`).
/// `relaxed` re-plans the graph: the batch extent becomes free, and each such Reshape of a
/// tensor computed from the input gets 0 in place of the batch (ONNX: "copy the input's
/// extent"), which is the same at the declared batch. `Model(path:)` then checks the re-planned
/// graph: at the declared batch its outputs must equal the file's graph's, and a batch of two
/// distinct images must give each image's own outputs; otherwise the model keeps the file's
/// graph and a batch of another size is an error naming the reason.
enum FreeBatch {
    /// The re-planned graph and the declared batch, or nil when the first input's batch is
    /// already free (or the graph has no rank >= 1 input).
    static func relaxed(_ graph: Graph) throws -> (graph: Graph, batch: Int, reshapes: Int)? {
        guard let input = graph.inputs.first, let declared = input.shape.first, let batch = declared, batch >= 1 else {
            return nil
        }
        let fromInput = Model.forwardClosure(of: Set(graph.inputs.map(\.name)), in: graph)
        var initializers = graph.initializers
        var nodes: [Node] = []
        var reshapes = 0
        for node in graph.nodes {
            guard node.opType == "Reshape", node.inputs.count >= 2, fromInput.contains(node.inputs[0]),
                  let (allowZero, shape) = reshapeTarget(node, initializers: graph.initializers),
                  !allowZero, shape.first == batch else {
                nodes.append(node)
                continue
            }
            var freed = shape
            freed[0] = 0
            let name = "\(node.inputs[1])::free_batch::\(node.name)"
            initializers[name] = Tensor(shape: [freed.count], data: freed.map(Float.init))
            nodes.append(Node(name: node.name, opType: node.opType, inputs: [node.inputs[0], name] + node.inputs.dropFirst(2),
                              outputs: node.outputs, op: node.op))
            reshapes += 1
        }
        var inputs = graph.inputs
        inputs[0] = GraphInput(name: input.name, shape: [nil] + input.shape.dropFirst())
        return (try Graph(inputs: inputs, outputs: graph.outputs, initializers: initializers, nodes: nodes), batch, reshapes)
    }

    /// A Reshape's allowzero flag and its constant target shape, or nil when the shape is computed.
    static func reshapeTarget(_ node: Node, initializers: [String: Tensor]) -> (Bool, [Int])? {
        guard let op = node.op as? ReshapeOp, let shape = initializers[node.inputs[1]] else { return nil }
        return (op.allowZero, integers(shape))
    }

    /// Checks that `relaxed` computes what `strict` does at the declared batch, and each image's
    /// own outputs in a batch of two distinct images (seeded inputs in [-1, 1]). Returns nil when
    /// it does, else the reason. Needs every other extent of the input declared.
    static func verify(relaxed: Model, strict: Model, batch: Int) -> String? {
        guard let input = strict.graph.inputs.first, input.shape.dropFirst().allSatisfy({ ($0 ?? 0) > 0 }) else {
            return "the input's other extents are not declared, so the re-planned graph cannot be checked"
        }
        let item = input.shape.dropFirst().map { $0! }
        var rng = SeededGenerator(seed: 7)
        func images(_ n: Int) -> Tensor {
            Tensor(shape: [n] + item, data: (0..<(n * item.elementCount)).map { _ in Float.random(in: -1...1, using: &rng) })
        }
        do {
            try Limits.checkShape([2 * batch] + item, "the check's input")
            let a = images(batch), b = images(batch)
            let expectedA = try strict.run([input.name: a], keepAll: false).outputs
            let expectedB = try strict.run([input.name: b], keepAll: false).outputs
            let same = try relaxed.run([input.name: a], keepAll: false).outputs
            for (y, e) in zip(same, expectedA) where y.shape != e.shape || y.maxAbsDifference(e) > 0 {
                return "at the declared batch the re-planned graph gives other outputs"
            }
            let both = try relaxed.run([input.name: Tensor.stack([a, b])], keepAll: false).outputs
            for (k, y) in both.enumerated() {
                let (ea, eb) = (expectedA[k], expectedB[k])
                guard y.shape == [2 * batch] + ea.shape.dropFirst(), ea.shape.first == batch else {
                    return "output '\(strict.graph.outputs[k])' has shape \(y.shape) for \(2 * batch) images, not the batch first"
                }
                let expected = Tensor.stack([ea, eb])
                let scale = max(1, expected.data.reduce(0) { max($0, abs($1)) })
                if !(y.maxAbsDifference(expected) <= 1e-4 * scale) {
                    return "output '\(strict.graph.outputs[k])' mixes images across the batch"
                }
            }
            return nil
        } catch {
            return "\(error)"
        }
    }
}
