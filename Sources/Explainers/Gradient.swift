import Tensors

/// The plain input gradient: ∂ score_t / ∂ x, signed (Simonyan et al. 2014, arXiv:1312.6034,
/// Eq. 2 before the absolute value). Raw output (C,H,W).
public struct GradientExplainer: Explainer {
    public static let method = "gradient"
    public let objective: Objective
    public var parameters: [String: String] { objective.parameters }
    public static let card = MethodCard(
        title: "Gradient",
        meaning: "How much a tiny change of each pixel would change the class score; sign kept.",
        cost: "One forward and one backward pass.",
        limits: "Local and noisy: it shows sensitivity, not what the model relied on; saturated units give zero gradient.")

    public init(objective: Objective = .logit) { self.objective = objective }

    public func explain(_ request: ExplanationRequest) throws -> Attribution {
        Attribution(raw: Backprop.single(try Backprop.inputGradient(request, objective: objective)), space: .input, signed: true)
    }
}

extension GradientExplainer: RegisteredExplainer {
    static let parameterKeys: Set<String> = Objective.keys
    static func make(_ p: Parameters) throws -> any Explainer { GradientExplainer(objective: try Objective(p)) }
}
