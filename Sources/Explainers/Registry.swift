/// Explainers by method name, built from `key=value` parameters (the same keys on the command
/// line's `--set` and in a manifest).
public enum ExplainerRegistry {
    /// Registered method names.
    public static let methods = ["gradient", "saliency", "inputxgradient", "integratedgradients", "smoothgrad",
                                 "guidedbackprop", "deconvnet", "gradcam", "gradcam++", "scorecam", "occlusion", "rise", "lime", "lrp", "activation-max"]

    /// The method card of a registered method.
    public static func card(_ method: String) -> MethodCard? {
        let cards: [String: MethodCard] = [
            GradientExplainer.method: GradientExplainer.card, SaliencyExplainer.method: SaliencyExplainer.card,
            InputXGradientExplainer.method: InputXGradientExplainer.card,
            IntegratedGradientsExplainer.method: IntegratedGradientsExplainer.card,
            SmoothGradExplainer.method: SmoothGradExplainer.card, GuidedBackpropExplainer.method: GuidedBackpropExplainer.card,
            DeconvnetExplainer.method: DeconvnetExplainer.card, GradCAMExplainer.method: GradCAMExplainer.card,
            GradCAMPlusPlusExplainer.method: GradCAMPlusPlusExplainer.card, ScoreCAMExplainer.method: ScoreCAMExplainer.card,
            OcclusionExplainer.method: OcclusionExplainer.card, RISEExplainer.method: RISEExplainer.card,
            LIMEExplainer.method: LIMEExplainer.card, LRPExplainer.method: LRPExplainer.card,
            ActivationMaxExplainer.method: ActivationMaxExplainer.card,
        ]
        return cards[method]
    }

    /// The parameters each method accepts.
    static let allowed: [String: Set<String>] = [
        "gradient": Objective.keys, "saliency": Objective.keys, "inputxgradient": Objective.keys,
        "guidedbackprop": Objective.keys, "deconvnet": Objective.keys,
        "integratedgradients": Objective.keys.union(["steps", "rule", "baseline", "batch"]),
        "smoothgrad": Objective.keys.union(["samples", "sigma", "seed", "batch"]),
        "gradcam": Objective.keys.union(["layer"]), "gradcam++": ["layer"], "scorecam": ["layer", "batch"],
        "occlusion": ["window", "stride", "batch", "incremental"],
        "rise": ["masks", "cells", "p", "seed", "batch"],
        "lime": ["samples", "segments", "compactness", "seed", "batch"],
        "lrp": ["composite", "epsilon", "low", "high", "output"],
        "activation-max": ["layer", "channel", "steps", "lr", "l2", "tv", "jitter", "clip", "seed"],
    ]

    /// Builds an explainer; unknown methods and parameters are errors that list what is allowed.
    public static func make(method: String, parameters: [String: String] = [:]) throws -> any Explainer {
        guard let keys = allowed[method] else {
            let hint = suggestion(for: method, among: methods).map { " (did you mean '\($0)'?)" } ?? ""
            throw ExplainerError("unknown method '\(method)'\(hint); known methods: \(methods.joined(separator: ", "))")
        }
        for k in parameters.keys.sorted() where !keys.contains(k) {
            let list = keys.isEmpty ? "it takes no parameters" : "allowed: \(keys.sorted().joined(separator: ", "))"
            throw ExplainerError("method '\(method)' has no parameter '\(k)' (\(list))")
        }
        let p = Parameters(method: method, values: parameters)
        switch method {
        case "gradient": return GradientExplainer(objective: try Objective(p))
        case "saliency": return SaliencyExplainer(objective: try Objective(p))
        case "inputxgradient": return InputXGradientExplainer(objective: try Objective(p))
        case "guidedbackprop": return GuidedBackpropExplainer(objective: try Objective(p))
        case "deconvnet": return DeconvnetExplainer(objective: try Objective(p))
        case "integratedgradients": return try IntegratedGradientsExplainer(p)
        case "smoothgrad": return try SmoothGradExplainer(p)
        case "gradcam": return GradCAMExplainer(layer: p.string("layer"), objective: try Objective(p))
        case "gradcam++": return GradCAMPlusPlusExplainer(layer: p.string("layer"))
        case "scorecam": return ScoreCAMExplainer(layer: p.string("layer"), batch: try p.int("batch", default: 16))
        case "occlusion": return try OcclusionExplainer(p)
        case "rise": return try RISEExplainer(p)
        case "lime": return try LIMEExplainer(p)
        case "activation-max": return try ActivationMaxExplainer(p)
        default: return try LRPExplainer(p)
        }
    }

    /// Methods whose maps live at a CAM layer and take its `layer` parameter.
    /// CAM methods: their `layer` defaults to the model's `cam_layer` in a manifest.
    public static func usesLayer(_ method: String) -> Bool { ["gradcam", "gradcam++", "scorecam"].contains(method) }
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
