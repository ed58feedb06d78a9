/// Trust metrics that score a heatmap. v0 has the pointing game; deletion/insertion AUC,
/// randomization sanity checks and stability come with the explainer-suite issue.
public enum Evaluation {
    /// Metric names a manifest's evaluate stage may list.
    public static let metrics = ["pointing_game"]
}
