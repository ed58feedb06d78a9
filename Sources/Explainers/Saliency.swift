import Tensors

/// Saliency map: |∂ score_t / ∂ x| (Simonyan et al. 2014, arXiv:1312.6034, Eq. 2-3), as Captum
/// `Saliency(model).attribute(x, target=t, abs=True)`. Raw output (C,H,W), non-negative.
public struct SaliencyExplainer: Explainer {
    public static let method = "saliency"
    public let objective: Objective
    public var parameters: [String: String] { objective.parameters }
    public static let card = MethodCard(
        title: "Saliency",
        meaning: "Pixels whose small changes would move the class score most, regardless of direction.",
        cost: "One forward and one backward pass.",
        limits: "Highlights edges and texture broadly; it is sensitivity, not evidence, and can look similar for different classes.")

    public init(objective: Objective = .logit) { self.objective = objective }

    public func explain(_ request: ExplanationRequest) throws -> Attribution {
        var g = Backprop.single(try Backprop.inputGradient(request, objective: objective))
        for i in 0..<g.count { g.data[i] = abs(g.data[i]) }
        return Attribution(raw: g, space: .input)
    }
}

extension SaliencyExplainer: RegisteredExplainer {
    static let parameterKeys: Set<String> = Objective.keys
    static func make(_ p: Parameters) throws -> any Explainer { SaliencyExplainer(objective: try Objective(p)) }
}
