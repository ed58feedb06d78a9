import Explainers

/// The share of the heatmap's mass outside the item's tissue mask (the `tissue_mask` column).
struct OutsideTissueMetric: HeatmapMetric {
    static let info = MetricInfo(name: "outside_tissue", stored: ["outside_tissue"],
                                 help: "share of the mass outside the tissue mask (lower is better)", inTable: true)

    static func measure(_ c: MetricContext) throws -> [(name: String, value: Double?)] {
        [("outside_tissue", try c.tissue().flatMap { Evaluation.outsideTissue(c.heatmap, tissue: $0) })]
    }
}
