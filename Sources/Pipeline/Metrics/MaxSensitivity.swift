import Explainers

/// Max-sensitivity (Yeh et al. 2019, "On the (in)fidelity and sensitivity of explanations"):
/// the largest relative change of the explanation under small input noise.
struct MaxSensitivityMetric: HeatmapMetric {
    static let info = MetricInfo(name: "max_sensitivity", stored: ["max_sensitivity"],
                                 help: "largest relative change under ±0.02 input noise (lower is better)", inTable: true)
    static let reusable = true

    static func measure(_ c: MetricContext) throws -> [(name: String, value: Double?)] {
        let r = try c.request()
        return [("max_sensitivity", try Evaluation.maxSensitivity(c.explainer, request: r, attribution: try c.raw ?? c.explainer.explain(r).raw))]
    }
}
