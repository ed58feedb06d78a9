import Tensors

/// Input × gradient (Shrikumar et al. 2016, arXiv:1605.01713, "gradient*input"): x ⊙ ∂y_t/∂x,
/// as Captum `InputXGradient(model).attribute(x, target=t)`. Raw output (C,H,W).
public struct InputXGradientExplainer: Explainer {
    public static let method = "inputxgradient"
    public let objective: Objective
    public var parameters: [String: String] { objective.parameters }
    public static let card = MethodCard(
        title: "Input × gradient",
        meaning: "Each pixel's value times its gradient: a first-order estimate of its contribution to the score.",
        cost: "One forward and one backward pass.",
        limits: "Inherits the gradient's noise; depends on how the input is normalized (zero pixels get zero credit).")

    public init(objective: Objective = .logit) { self.objective = objective }

    public func explain(_ request: ExplanationRequest) throws -> Attribution {
        let g = Backprop.single(try Backprop.inputGradient(request, objective: objective))
        let x = Backprop.single(request.input)
        return Attribution(raw: Tensor(shape: g.shape, data: zip(g.data, x.data).map(*)), space: .input, signed: true)
    }
}

extension InputXGradientExplainer: RegisteredExplainer {
    static let parameterKeys: Set<String> = Objective.keys
    static func make(_ p: Parameters) throws -> any Explainer { InputXGradientExplainer(objective: try Objective(p)) }
}
