import Engine
import Tensors

/// What the CAM methods share: the layer (named or the model's default), its activation and
/// gradient, and the final ReLU(Σ_k w_k A_k) map at the layer's resolution. Each method supplies
/// only its channel weights, as pytorch-grad-cam's `BaseCAM` subclasses do.
enum CAM {
    /// The layer to use for `model`: the given one, or the input of the first global pooling/flatten.
    static func layer(_ name: String?, model: Model) throws -> String {
        if let name {
            guard model.graph.tensorNames.contains(name) else {
                let known = model.graph.nodes.suffix(12).flatMap(\.outputs).joined(separator: ", ")
                throw ExplainerError("\(model.path): unknown layer '\(name)'; tensors near the end include: \(known)")
            }
            return name
        }
        guard let l = model.graph.defaultCAMLayer else {
            throw ExplainerError("\(model.path): no default CAM layer (no global pooling or flatten); pass layer=TENSOR")
        }
        return l
    }

    /// The activation A (1,C,h,w) at `layer`, checked to be a feature map.
    static func activation(_ pass: ForwardPass, layer: String, model: Model) throws -> Tensor {
        let a = try pass.value(layer)
        guard a.rank == 4, a.shape[0] == 1 else {
            throw ExplainerError("\(model.path): layer '\(layer)' has shape \(a.shape); CAM methods need a (N,C,h,w) tensor")
        }
        return a
    }

    /// A (1,C,h,w) and ∂y_t/∂A (1,C,h,w).
    static func activationAndGradient(_ request: ExplanationRequest, layer: String,
                                      objective: Objective = .logit) throws -> (Tensor, Tensor) {
        let pass = try request.forwardPass(taps: [layer])
        let a = try activation(pass, layer: layer, model: request.model)
        let g = try Backprop.gradients(request, pass: pass, wrt: [layer], objective: objective)[layer]!
        return (a, g)
    }

    /// ReLU(Σ_k w_k A_k): (h,w).
    static func weightedMap(_ a: Tensor, weights: [Float]) -> Tensor {
        let (c, h, w) = (a.shape[1], a.shape[2], a.shape[3])
        var cam = Tensor(shape: [h, w])
        for k in 0..<c {
            let wk = weights[k]
            for i in 0..<(h * w) { cam.data[i] += wk * a.data[k * h * w + i] }
        }
        for i in 0..<cam.count { cam.data[i] = max(0, cam.data[i]) }
        return cam
    }
}
