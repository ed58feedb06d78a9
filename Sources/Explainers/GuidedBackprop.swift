import Engine
import Tensors

/// Guided backpropagation (Springenberg et al. 2015, arXiv:1412.6806, Fig. 1): the input gradient
/// with every ReLU passing back only positive gradients where its input was positive, as Captum
/// `GuidedBackprop(model).attribute(x, target=t)`. Raw output (C,H,W).
public struct GuidedBackpropExplainer: Explainer {
    public static let method = "guidedbackprop"
    public let objective: Objective
    public var parameters: [String: String] { objective.parameters }
    public static let card = MethodCard(
        title: "Guided backpropagation",
        meaning: "Fine-grained image structure that positively drives the score through the network's ReLUs.",
        cost: "One forward and one backward pass.",
        limits: "Often class-insensitive: on deep networks it barely changes when the model's weights are randomized (Adebayo et al. 2018), showing edges more than evidence; check its sanity-check result on your model.")

    public init(objective: Objective = .logit) { self.objective = objective }

    public func explain(_ request: ExplanationRequest) throws -> Attribution {
        Attribution(raw: Backprop.single(try Backprop.inputGradient(request, relu: .guided, objective: objective)), space: .input, signed: true)
    }
}

extension GuidedBackpropExplainer: RegisteredExplainer {
    static let parameterKeys: Set<String> = Objective.keys
    static func make(_ p: Parameters) throws -> any Explainer { GuidedBackpropExplainer(objective: try Objective(p)) }
}
