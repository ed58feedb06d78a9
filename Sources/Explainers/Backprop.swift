import Engine
import Tensors

/// Gradient plumbing shared by the gradient-based methods.
enum Backprop {
    /// The model's output for a forward pass, checked to be (N,K) class scores.
    static func scores(_ pass: ForwardPass, model: Model) throws -> Tensor {
        guard let out = pass.outputs.first, out.rank == 2 else {
            throw ExplainerError("\(model.path): expected the first output to be class scores (N,K), got \(pass.outputs.first?.shape ?? [])")
        }
        return out
    }

    /// Checks that `target` names a class of the model.
    static func checkTarget(_ target: Int, classes: Int) throws {
        guard target >= 0 && target < classes else {
            throw ExplainerError("target \(target) is out of range: the model has \(classes) classes (0...\(classes - 1))")
        }
    }

    /// Gradients of the objective (by default score[target]) with respect to the named tensors,
    /// for every item of the pass's batch.
    static func gradients(_ request: ExplanationRequest, pass: ForwardPass, wrt: [String],
                          relu: ReluBackward = .gradient, objective: Objective = .logit) throws -> [String: Tensor] {
        let model = request.model
        let scores = try scores(pass, model: model)
        try checkTarget(request.target, classes: scores.shape[1])
        let seed = try objective.seed(scores: scores, target: request.target)
        return try model.backward(pass, seeds: [model.graph.outputs[0]: seed], wrt: wrt, relu: relu)
    }

    /// d score_target / d input, shape of the input.
    static func inputGradient(_ request: ExplanationRequest, relu: ReluBackward = .gradient,
                              objective: Objective = .logit) throws -> Tensor {
        let pass = try request.forwardPass()
        let name = request.model.inputName
        return try gradients(request, pass: pass, wrt: [name], relu: relu, objective: objective)[name]!
    }

    /// Input gradients for a batch of inputs (N,C,H,W) in chunks of `chunk`: one row per input.
    static func batchGradients(_ request: ExplanationRequest, inputs: Tensor, chunk: Int,
                               objective: Objective = .logit) throws -> Tensor {
        let model = request.model
        let n = inputs.shape[0]
        var parts: [Tensor] = []
        var start = 0
        while start < n {
            let end = min(n, start + chunk)
            let slice = Tensor.stack((start..<end).map { inputs.item($0) })
            let pass = try model.run([model.inputName: slice])
            parts.append(try gradients(request, pass: pass, wrt: [model.inputName], objective: objective)[model.inputName]!)
            start = end
        }
        return Tensor.stack(parts)
    }

    /// Class scores for a batch of inputs (N,C,H,W) in chunks, as (N,K); inference passes only.
    static func batchScores(_ model: Model, inputs: [Tensor], chunk: Int) throws -> [[Float]] {
        var out: [[Float]] = []
        var start = 0
        while start < inputs.count {
            let end = min(inputs.count, start + chunk)
            let y = try model.forward(Tensor.stack(Array(inputs[start..<end])))
            let k = y.shape[1]
            for i in 0..<(end - start) { out.append(Array(y.data[(i * k)..<((i + 1) * k)])) }
            start = end
        }
        return out
    }

    /// Drops the batch axis of a (1,...) tensor.
    static func single(_ t: Tensor) -> Tensor {
        t.reshaped(Array(t.shape.dropFirst()))
    }
}
