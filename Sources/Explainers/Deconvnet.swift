import Engine
import Tensors

/// Deconvnet (Zeiler & Fergus 2014, arXiv:1311.2901, §2.1): ReLUs pass back the positive part of
/// the incoming gradient regardless of their forward input, as Captum
/// `Deconvolution(model).attribute(x, target=t)`. Raw output (C,H,W).
public struct DeconvnetExplainer: Explainer {
    public static let method = "deconvnet"
    public let objective: Objective
    public var parameters: [String: String] { objective.parameters }
    public static let card = MethodCard(
        title: "Deconvnet",
        meaning: "Image patterns that the network's filters respond to on the way to the class score.",
        cost: "One forward and one backward pass.",
        limits: "Not the model's true gradient; similar for every class and insensitive to weight randomization.")

    public init(objective: Objective = .logit) { self.objective = objective }

    public func explain(_ request: ExplanationRequest) throws -> Attribution {
        Attribution(raw: Backprop.single(try Backprop.inputGradient(request, relu: .deconvnet, objective: objective)), space: .input, signed: true)
    }
}

extension DeconvnetExplainer: RegisteredExplainer {
    static let parameterKeys: Set<String> = Objective.keys
    static func make(_ p: Parameters) throws -> any Explainer { DeconvnetExplainer(objective: try Objective(p)) }
}
