import Engine
import Tensors

/// Grad-CAM (Selvaraju et al. 2017, arXiv:1610.02391, Eq. 1-2): channel weights
/// α_k = mean_ij ∂y_t/∂A_k(i,j), map = ReLU(Σ_k α_k A_k) at the layer's resolution.
///
/// Agrees with Captum `LayerGradCam(model, layer).attribute(x, target=t, relu_attributions=True)`
/// and with pytorch-grad-cam `GradCAM` before its resize and normalization. `layer` names an
/// ONNX tensor of rank 4; by default the last one before global pooling (`Graph.defaultCAMLayer`).
public struct GradCAMExplainer: Explainer {
    public static let method = "gradcam"
    public let layer: String?
    public var parameters: [String: String] { layer.map { ["layer": $0] } ?? [:] }
    public static let card = MethodCard(
        title: "Grad-CAM",
        meaning: "Regions whose features at a deep layer raised the class score; coarse, at that layer's resolution.",
        cost: "One forward pass and a backward pass down to the layer.",
        limits: "Blurry (one value per feature-map cell); only positive evidence is shown; a wrong layer gives misleading maps.")

    public init(layer: String? = nil) { self.layer = layer }

    /// The layer actually used for `model`.
    public func resolvedLayer(for model: Model) throws -> String {
        if let layer { return layer }
        guard let l = model.graph.defaultCAMLayer else {
            throw ExplainerError("\(model.path): no default CAM layer (no global pooling or flatten); pass layer=TENSOR")
        }
        return l
    }

    public func taps(for model: Model) throws -> [String] { [try resolvedLayer(for: model)] }

    public func explain(_ request: ExplanationRequest) throws -> Attribution {
        let model = request.model
        let name = try resolvedLayer(for: model)
        guard model.graph.tensorNames.contains(name) else {
            let known = model.graph.nodes.suffix(12).flatMap(\.outputs).joined(separator: ", ")
            throw ExplainerError("\(model.path): unknown layer '\(name)'; tensors near the end include: \(known)")
        }
        let pass = try request.forwardPass(taps: [name])
        guard let activation = pass.values[name] else {
            let known = model.graph.tensorNames.filter { pass.values[$0]?.rank == 4 }.suffix(8).joined(separator: ", ")
            throw ExplainerError("\(model.path): unknown layer '\(name)'; rank-4 tensors near the end include: \(known)")
        }
        guard activation.rank == 4 else {
            throw ExplainerError("\(model.path): layer '\(name)' has shape \(activation.shape); Grad-CAM needs a (N,C,h,w) tensor")
        }
        let grad = try Backprop.gradients(request, pass: pass, wrt: [name])[name]!
        // A: (1,C,h,w), dA: (1,C,h,w) -> cam: (h,w)
        let (c, h, w) = (activation.shape[1], activation.shape[2], activation.shape[3])
        let plane = h * w
        var cam = Tensor(shape: [h, w])
        for k in 0..<c {
            var alpha: Float = 0
            for i in 0..<plane { alpha += grad.data[k * plane + i] }
            alpha /= Float(plane)
            for i in 0..<plane { cam.data[i] += alpha * activation.data[k * plane + i] }
        }
        for i in 0..<plane { cam.data[i] = max(0, cam.data[i]) }
        return Attribution(raw: cam, space: .layer)
    }
}
