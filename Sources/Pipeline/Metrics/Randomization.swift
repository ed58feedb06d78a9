import Explainers

/// The model-parameter randomization test (Adebayo et al. 2018, "Sanity checks for saliency
/// maps"): mean Spearman ρ between the heatmap and those of the cascade of randomized
/// models; below 0.5 the heatmap depends on what the model learnt.
struct RandomizationMetric: HeatmapMetric {
    static let info = MetricInfo(name: "randomization", stored: ["randomization"],
                                 help: "rank correlation with heatmaps of randomized models (lower is better; < 0.5 passes)", inTable: true)
    static let reusable = true
    static let curves = ["randomization"]

    static func measure(_ c: MetricContext) throws -> [(name: String, value: Double?)] {
        guard let cascade = c.randomized else { return [] }
        let rhos = try Evaluation.randomizationCurve(c.explainer, request: try c.request(), heatmap: c.heatmap, cascade: cascade)
        c.record(curve: "randomization", rhos)
        return [("randomization", rhos.reduce(0, +) / Double(rhos.count))]
    }
}
