import Explainers

/// The pointing game (Zhang et al. 2018, "Top-down neural attention by excitation backprop"):
/// does the heatmap's peak fall on the lesion? Also stored strictly (no tolerance).
struct PointingGameMetric: HeatmapMetric {
    static let info = MetricInfo(name: "pointing_game", stored: ["pointing_game", "pointing_game_strict"],
                                 help: "does the heatmap's peak fall on the lesion (1 hit, 0 miss)", inTable: false)

    static func measure(_ c: MetricContext) throws -> [(name: String, value: Double?)] {
        guard let mask = try c.lesion() else { return [] }
        return Evaluation.pointingGame(c.heatmap, mask: mask)
    }
}
