import Explainers

/// The energy-based pointing game (Wang et al. 2020, "Score-CAM"): the share of the
/// heatmap's mass on the lesion.
struct EnergyPointingGameMetric: HeatmapMetric {
    static let info = MetricInfo(name: "energy_pointing_game", stored: ["energy_pointing_game"],
                                 help: "share of the heatmap's mass on the lesion (higher is better)", inTable: true)

    static func measure(_ c: MetricContext) throws -> [(name: String, value: Double?)] {
        [("energy_pointing_game", try c.lesion().flatMap { Evaluation.massInside(c.heatmap, region: $0) })]
    }
}
