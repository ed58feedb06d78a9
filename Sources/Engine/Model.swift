import Foundation
import Tensors

/// The values computed by one forward pass, by tensor name. Kept whole so that taps
/// (activations at any named tensor) and the backward pass can read them.
public struct ForwardPass: Sendable {
    public let values: [String: Tensor]
    /// The graph outputs, in declaration order.
    public let outputs: [Tensor]

    /// The activation at a named tensor; an error names the tensor when it does not exist.
    public func value(_ name: String) throws -> Tensor {
        guard let v = values[name] else { throw EngineError("no tensor named '\(name)' in the model") }
        return v
    }
}

/// A loaded ONNX model and its executor: forward with taps, backward (vector-Jacobian products).
///
/// Immutable after loading, so one `Model` may serve many threads at once.
public final class Model: Sendable {
    public let path: String
    public let graph: Graph
    /// Tensors whose value depends on a graph input: the only ones a gradient can reach.
    let dependsOnInput: Set<String>

    /// Loads and checks an ONNX file; every operator must be supported.
    public init(path: String) throws {
        self.path = path
        self.graph = try ONNXImport.load(path: path)
        self.dependsOnInput = Model.forwardClosure(of: Set(graph.inputs.map(\.name)), in: graph)
    }

    /// The first graph input's name (image classifiers have one).
    public var inputName: String { graph.inputs.first?.name ?? "" }

    /// Runs the graph. `feeds` maps graph input names to tensors.
    public func run(_ feeds: [String: Tensor]) throws -> ForwardPass {
        var values = graph.initializers
        for input in graph.inputs {
            guard let t = feeds[input.name] else { throw EngineError("\(path): missing value for graph input '\(input.name)'") }
            try checkShape(t, against: input)
            values[input.name] = t
        }
        for node in graph.nodes {
            let args = node.inputs.map { $0.isEmpty ? nil : values[$0] }
            let results: [Tensor]
            do {
                results = try node.op.forward(args)
            } catch let e as EngineError {
                throw e.prefixed("\(path): node '\(node.name)' (\(node.opType)): ")
            } catch let e as TensorError {
                throw EngineError("\(path): \(EngineError.node(node, e.description))")
            }
            for (name, value) in zip(node.outputs, results) where !name.isEmpty { values[name] = value }
        }
        return ForwardPass(values: values, outputs: try graph.outputs.map { name in
            guard let v = values[name] else { throw EngineError("\(path): output '\(name)' was not computed") }
            return v
        })
    }

    /// Runs a single-input model and returns its first output: x (N,C,H,W) -> logits (N,K).
    public func forward(_ x: Tensor) throws -> Tensor {
        try run([inputName: x]).outputs[0]
    }

    /// Back-propagates `seeds` (gradients of a scalar objective with respect to named tensors,
    /// usually the logits) and returns the gradient at each tensor named in `wrt`.
    ///
    /// Only nodes between the seeds and the requested tensors are visited: a Grad-CAM tap at the
    /// last convolution does not pay for the backward pass through the stem.
    public func backward(_ pass: ForwardPass, seeds: [String: Tensor], wrt: [String]) throws -> [String: Tensor] {
        for name in wrt where pass.values[name] == nil {
            throw EngineError("\(path): no tensor named '\(name)' in the model")
        }
        let relevant = Model.forwardClosure(of: Set(wrt), in: graph).intersection(dependsOnInput.union(wrt))
        var grads = seeds
        for node in graph.nodes.reversed() {
            guard node.inputs.contains(where: relevant.contains) else { continue }
            let gradOutputs = node.outputs.map { grads[$0] }
            if gradOutputs.allSatisfy({ $0 == nil }) { continue }
            let args = node.inputs.map { $0.isEmpty ? nil : pass.values[$0] }
            let outs = node.outputs.map { pass.values[$0] ?? Tensor(shape: [0]) }
            let gradInputs: [Tensor?]
            do {
                gradInputs = try node.op.backward(inputs: args, outputs: outs, gradOutputs: gradOutputs)
            } catch let e as EngineError {
                throw EngineError("\(path): backward of \(EngineError.node(node, e.description))")
            }
            for (name, g) in zip(node.inputs, gradInputs) {
                guard let g, relevant.contains(name) else { continue }
                if let existing = grads[name] {
                    grads[name] = try Elementwise.binary(existing, g, +)
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
