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
    ///
    /// With two or more threads the chunks run side by side, each with its forward and backward
    /// pass on one thread (every operator inside single-threaded), as `Model.forward` runs its
    /// chunks; each thread takes the next chunk when it is done. The chunks are the same at any
    /// thread count, and so is every row, to the last bit.
    static func batchGradients(_ request: ExplanationRequest, inputs: Tensor, chunk: Int,
                               objective: Objective = .logit) throws -> Tensor {
        let model = request.model
        let n = inputs.shape[0]
        let starts = Array(stride(from: 0, to: n, by: Swift.max(1, chunk)))
        let gradient = { @Sendable (i: Int) throws -> Tensor in
            let slice = Tensor.stack((starts[i]..<Swift.min(n, starts[i] + chunk)).map { inputs.item($0) })
            let pass = try model.run([model.inputName: slice])
            return try gradients(request, pass: pass, wrt: [model.inputName], objective: objective)[model.inputName]!
        }
        return Tensor.stack(try Parallel.map(BLAS.threadCount, count: starts.count, gradient))
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
