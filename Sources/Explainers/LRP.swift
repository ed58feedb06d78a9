import Engine
import Tensors

/// Layer-wise relevance propagation (Bach et al. 2015, PLoS ONE 10(7); rules as in Montavon et
/// al., "Layer-wise relevance propagation: an overview", 2019), with Zennit's composites by name:
/// `composite` = epsilon, epsilon-plus-flat (default), epsilon-gamma-box (`low`, `high` bound the
/// model-input values), epsilon-alpha2-beta1-flat. Batch normalization is merged into the
/// preceding convolution and every Add splits relevance in proportion to its branches (Zennit's
/// canonizers, extended to every residual Add). The output relevance is one-hot on the target
/// (`output=onehot`, Zennit's default), or the target logit (`output=logit`) or probability
/// (`output=probability`). Raw output (C,H,W): relevance at the input.
public struct LRPExplainer: Explainer {
    public static let method = "lrp"
    let composite: LRPComposite
    let output: String
    let settings: [String: String]
    public var parameters: [String: String] { settings }
    public static let card = MethodCard(
        title: "Layer-wise relevance propagation",
        meaning: "The class score redistributed backwards, layer by layer, onto the pixels; relevance adds up to the score.",
        cost: "One forward pass and one relevance pass (a few times a backward pass).",
        limits: "The picture depends on the rules chosen per layer (the composite); it explains this network's computation, not the truth of the label.")

    init(_ p: Parameters) throws {
        let name = try p.choice("composite", default: "epsilon-plus-flat", among: LRPComposite.names)
        let epsilon = try p.float("epsilon", default: 1e-6, range: 0...1e6)
        let low = try p.float("low", default: 0), high = try p.float("high", default: 1)
        guard low < high else { throw ExplainerError("lrp: low must be below high, got \(low) and \(high)") }
        composite = LRPComposite.named(name, epsilon: epsilon, low: low, high: high)!
        output = try p.choice("output", default: "onehot", among: ["onehot", "logit", "probability"])
        var s = ["composite": name, "output": output, "epsilon": "\(epsilon)"]
        if name == "epsilon-gamma-box" { s["low"] = "\(low)"; s["high"] = "\(high)" }
        settings = s
    }

    public func explain(_ request: ExplanationRequest) throws -> Attribution {
        let pass = try request.forwardPass()
        let scores = try Backprop.scores(pass, model: request.model)
        try Backprop.checkTarget(request.target, classes: scores.shape[1])
        var seed = Tensor(shape: scores.shape)
        let logit = scores.data[request.target]
        switch output {
        case "logit": seed.data[request.target] = logit
        case "probability": seed.data[request.target] = softmax(scores.data)[request.target]
        default: seed.data[request.target] = 1
        }
        let r = try request.model.relevance(pass, seed: seed, composite: composite)
        return Attribution(raw: Backprop.single(r), space: .input, signed: true)
    }
}

extension LRPExplainer: RegisteredExplainer {
    static let parameterKeys: Set<String> = ["composite", "epsilon", "low", "high", "output"]
    static func make(_ p: Parameters) throws -> any Explainer { try LRPExplainer(p) }
}
