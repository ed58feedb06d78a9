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

    /// Gradients of score[target] with respect to the named tensors (the input when `wrt` is nil).
    static func gradients(_ request: ExplanationRequest, pass: ForwardPass, wrt: [String]) throws -> [String: Tensor] {
        let model = request.model
        let scores = try scores(pass, model: model)
        try checkTarget(request.target, classes: scores.shape[1])
        // One-hot seed on the target score for every item of the batch.
        var seed = Tensor(shape: scores.shape)
        for n in 0..<scores.shape[0] { seed.data[n * scores.shape[1] + request.target] = 1 }
        return try model.backward(pass, seeds: [model.graph.outputs[0]: seed], wrt: wrt)
    }

    /// d score_target / d input, shape of the input.
    static func inputGradient(_ request: ExplanationRequest) throws -> Tensor {
        let pass = try request.forwardPass()
        let name = request.model.inputName
        return try gradients(request, pass: pass, wrt: [name])[name]!
    }

    /// Drops the batch axis of a (1,...) tensor.
    static func single(_ t: Tensor) -> Tensor {
        t.reshaped(Array(t.shape.dropFirst()))
    }
}
