/// Explainers by method name, built from `key=value` parameters (the same keys on the command
/// line's `--set` and in a manifest).
public enum ExplainerRegistry {
    /// Registered method names.
    public static let methods = ["gradient", "saliency", "gradcam"]

    /// The method card of a registered method.
    public static func card(_ method: String) -> MethodCard? {
        switch method {
        case GradientExplainer.method: return GradientExplainer.card
        case SaliencyExplainer.method: return SaliencyExplainer.card
        case GradCAMExplainer.method: return GradCAMExplainer.card
        default: return nil
        }
    }

    /// Builds an explainer; unknown methods and parameters are errors that list what is allowed.
    public static func make(method: String, parameters: [String: String] = [:]) throws -> any Explainer {
        func allow(_ keys: Set<String>) throws {
            for k in parameters.keys.sorted() where !keys.contains(k) {
                let allowed = keys.isEmpty ? "it takes no parameters" : "allowed: \(keys.sorted().joined(separator: ", "))"
                throw ExplainerError("method '\(method)' has no parameter '\(k)' (\(allowed))")
            }
        }
        switch method {
        case GradientExplainer.method:
            try allow([])
            return GradientExplainer()
        case SaliencyExplainer.method:
            try allow([])
            return SaliencyExplainer()
        case GradCAMExplainer.method:
            try allow(["layer"])
            return GradCAMExplainer(layer: parameters["layer"])
        default:
            let hint = suggestion(for: method, among: methods).map { " (did you mean '\($0)'?)" } ?? ""
            throw ExplainerError("unknown method '\(method)'\(hint); known methods: \(methods.joined(separator: ", "))")
        }
    }
}

/// The closest candidate by edit distance, when it is close enough to be a likely typo.
public func suggestion(for word: String, among candidates: [String]) -> String? {
    func distance(_ a: [Character], _ b: [Character]) -> Int {
        var row = Array(0...b.count)
        for i in 1...max(a.count, 1) where !a.isEmpty {
            var prev = row[0]
            row[0] = i
            for j in stride(from: 1, through: b.count, by: 1) {
                let cur = row[j]
                row[j] = min(row[j] + 1, row[j - 1] + 1, prev + (a[i - 1] == b[j - 1] ? 0 : 1))
                prev = cur
            }
        }
        return a.isEmpty ? b.count : row[b.count]
    }
    let w = Array(word.lowercased())
    let best = candidates.map { ($0, distance(w, Array($0.lowercased()))) }.min { $0.1 < $1.1 }
    guard let (c, d) = best, d <= max(2, w.count / 3) else { return nil }
    return c
}
