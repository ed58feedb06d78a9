import Tensors

/// The scalar a gradient method differentiates (DESIGN.md §3, "targets").
///
/// - `logit`: the target's raw score y_t (the default; Captum's and pytorch-grad-cam's
///   `target=t` on a model that outputs logits).
/// - `probability`: the target's softmax probability p_t = softmax(y)_t, as Captum on a model
///   wrapped in a softmax. Its seed at the scores is ∂p_t/∂y_k = p_t (δ_tk − p_k).
/// - `weighted(w)`: a user-given weighting Σ_k w_k y_k of all scores (one weight per class); the
///   target index is then not used.
///
/// Method parameters: `score=logit|probability`, `weights=w0,w1,...` (implies the weighting).
public enum Objective: Sendable, Equatable {
    case logit
    case probability
    case weighted([Float])

    /// The keys every gradient method accepts for its objective.
    static let keys: Set<String> = ["score", "weights"]

    init(_ p: Parameters) throws {
        let score = try p.choice("score", default: p.string("weights") == nil ? "logit" : "weighted",
                                 among: ["logit", "probability", "weighted"])
        switch score {
        case "probability":
            guard p.string("weights") == nil else { throw ExplainerError("\(p.method): weights and score=probability exclude each other") }
            self = .probability
        case "weighted":
            guard let text = p.string("weights") else { throw ExplainerError("\(p.method): score=weighted needs weights=w0,w1,... (one per class)") }
            let parts = text.split(separator: ",", omittingEmptySubsequences: false)
            let w = parts.compactMap { Float($0.trimmingCharacters(in: .whitespaces)) }
            guard w.count == parts.count, !w.isEmpty, w.allSatisfy(\.isFinite) else {
                throw ExplainerError("\(p.method): weights must be comma-separated numbers, got '\(text)'")
            }
            self = .weighted(w)
        default: self = .logit
        }
    }

    /// The canonical parameters (empty for the default, so cache keys of older runs still hold).
    var parameters: [String: String] {
        switch self {
        case .logit: return [:]
        case .probability: return ["score": "probability"]
        case .weighted(let w): return ["weights": w.map { "\($0)" }.joined(separator: ",")]
        }
    }

    /// The backward seed ∂objective/∂scores for every item of a batch of scores (N,K).
    func seed(scores: Tensor, target: Int) throws -> Tensor {
        let (n, k) = (scores.shape[0], scores.shape[1])
        var seed = Tensor(shape: scores.shape)
        for i in 0..<n {
            switch self {
            case .logit:
                seed.data[i * k + target] = 1
            case .probability:
                let p = softmax(Array(scores.data[(i * k)..<((i + 1) * k)]))
                for j in 0..<k { seed.data[i * k + j] = p[target] * ((j == target ? 1 : 0) - p[j]) }
            case .weighted(let w):
                guard w.count == k else {
                    throw ExplainerError("weights has \(w.count) values but the model has \(k) classes")
                }
                for j in 0..<k { seed.data[i * k + j] = w[j] }
            }
        }
        return seed
    }
}
