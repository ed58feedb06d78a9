import Explainers

/// Agreement: for each explainer of an item, the mean Spearman ρ of its heatmap with the item's
/// other explainers' (context: methods that disagree deserve a second look).
struct AgreementMetric: HeatmapMetric {
    static let info = MetricInfo(name: "agreement", stored: ["agreement"],
                                 help: "rank correlation with the other explainers (context)", inTable: true)

    static let acrossExplainers = true

    static func across(_ heatmaps: [String: Heatmap]) -> [String: Double]? { Evaluation.agreement(heatmaps) }
}
