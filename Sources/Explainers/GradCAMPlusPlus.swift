import Engine
import Tensors

/// Grad-CAM++ (Chattopadhyay et al. 2018, arXiv:1710.11063, Eq. 19 with the exponential-output
/// simplification): α_k^ij = g² / (2g² + Σ_ab A_k(a,b)·g³ + ε) where g = ∂y_t/∂A_k(i,j) (0 where
/// g = 0), w_k = Σ_ij α_k^ij·ReLU(g), map = ReLU(Σ_k w_k A_k). As pytorch-grad-cam
/// `GradCAMPlusPlus` before its resize and normalization (ε = 1e-6). Raw output (h,w).
public struct GradCAMPlusPlusExplainer: Explainer {
    public static let method = "gradcam++"
    public let layer: String?
    public var parameters: [String: String] { layer.map { ["layer": $0] } ?? [:] }
    public static let card = MethodCard(
        title: "Grad-CAM++",
        meaning: "Like Grad-CAM, but weighting each feature map by the locations that raised the score, which helps when several objects are present.",
        cost: "One forward pass and a backward pass down to the layer.",
        limits: "As coarse as Grad-CAM; its weights rest on an approximation of higher derivatives.")

    public init(layer: String? = nil) { self.layer = layer }

    public func taps(for model: Model) throws -> [String] { [try CAM.layer(layer, model: model)] }

    public func explain(_ request: ExplanationRequest) throws -> Attribution {
        let (a, g) = try CAM.activationAndGradient(request, layer: try CAM.layer(layer, model: request.model))
        let (c, plane) = (a.shape[1], a.shape[2] * a.shape[3])
        let weights: [Float] = (0..<c).map { k in
            let range = (k * plane)..<((k + 1) * plane)
            let sumA = a.data[range].reduce(0, +)
            var w: Float = 0
            for i in range {
                let gi = g.data[i]
                guard gi != 0 else { continue }
                let g2 = gi * gi, g3 = g2 * gi
                let alpha = g2 / (2 * g2 + sumA * g3 + 1e-6)
                w += alpha * max(gi, 0)
            }
            return w
        }
        return Attribution(raw: CAM.weightedMap(a, weights: weights), space: .layer)
    }
}

extension GradCAMPlusPlusExplainer: RegisteredExplainer {
    static let parameterKeys: Set<String> = ["layer"]
    static func make(_ p: Parameters) throws -> any Explainer { GradCAMPlusPlusExplainer(layer: p.string("layer")) }
    static var usesLayer: Bool { true }
}
