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
    public let objective: Objective
    public var parameters: [String: String] {
        (layer.map { ["layer": $0] } ?? [:]).merging(objective.parameters) { a, _ in a }
    }
    public static let card = MethodCard(
        title: "Grad-CAM",
        meaning: "Regions whose features at a deep layer raised the class score; coarse, at that layer's resolution.",
        cost: "One forward pass and a backward pass down to the layer.",
        limits: "Blurry (one value per feature-map cell); only positive evidence is shown; a wrong layer gives misleading maps.")

    public init(layer: String? = nil, objective: Objective = .logit) {
        self.layer = layer
        self.objective = objective
    }

    public func taps(for model: Model) throws -> [String] { [try CAM.layer(layer, model: model)] }

    public func explain(_ request: ExplanationRequest) throws -> Attribution {
        let (a, g) = try CAM.activationAndGradient(request, layer: try CAM.layer(layer, model: request.model), objective: objective)
        let (c, plane) = (a.shape[1], a.shape[2] * a.shape[3])
        let weights = (0..<c).map { k in g.data[(k * plane)..<((k + 1) * plane)].reduce(0, +) / Float(plane) }
        return Attribution(raw: CAM.weightedMap(a, weights: weights), space: .layer)
    }
}

extension GradCAMExplainer: RegisteredExplainer {
    static let parameterKeys: Set<String> = Objective.keys.union(["layer"])
    static func make(_ p: Parameters) throws -> any Explainer { GradCAMExplainer(layer: p.string("layer"), objective: try Objective(p)) }
    static var usesLayer: Bool { true }
}
