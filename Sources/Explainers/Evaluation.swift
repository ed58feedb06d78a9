/// Trust metrics that score a heatmap. v0 has the pointing game; deletion/insertion AUC,
/// randomization sanity checks and stability come with the explainer-suite issue.
public enum Evaluation {
    /// Metric names a manifest's evaluate stage may list.
    public static let metrics = ["pointing_game"]

    /// The pointing-game rows for one heatmap: `pointing_game` (Zhang et al.'s tolerance, scaled)
    /// and `pointing_game_strict` (the peak pixel itself). nil values: no lesion in the mask.
    public static func pointingGame(_ heatmap: Heatmap, mask: [Float]) -> [(name: String, value: Double?)] {
        let tolerance = PointingGame.standardTolerance(size: max(heatmap.width, heatmap.height))
        func score(_ t: Int) -> Double? { PointingGame.hit(heatmap: heatmap, mask: mask, tolerance: t).map { $0 ? 1 : 0 } }
        return [("pointing_game", score(tolerance)), ("pointing_game_strict", score(0))]
    }
}
