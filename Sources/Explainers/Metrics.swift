/// A per-heatmap metric an evaluate stage can ask for (docs/methods.md, "Metrics").
public struct MetricInfo: Sendable {
    public let name: String
    /// The names stored for it (the pointing game also stores its strict form).
    public let stored: [String]
    /// One line for the report: what it measures and which way is better.
    public let help: String
    /// Shown in the report's trust-metric table (the pointing game has a table of its own).
    public let inTable: Bool
}

/// Every metric, one line each, in the order the report shows them. The report, the manifest
/// checks and the gates read this list; `ItemJob` computes each metric.
public enum MetricRegistry {
    public static let all: [MetricInfo] = [
        MetricInfo(name: "pointing_game", stored: ["pointing_game", "pointing_game_strict"],
                   help: "does the heatmap's peak fall on the lesion (1 hit, 0 miss)", inTable: false),
        MetricInfo(name: "energy_pointing_game", stored: ["energy_pointing_game"],
                   help: "share of the heatmap's mass on the lesion (higher is better)", inTable: true),
        MetricInfo(name: "outside_tissue", stored: ["outside_tissue"],
                   help: "share of the mass outside the tissue mask (lower is better)", inTable: true),
        MetricInfo(name: "deletion_auc", stored: ["deletion_auc"],
                   help: "probability while deleting pixels in heatmap order (lower is better)", inTable: true),
        MetricInfo(name: "insertion_auc", stored: ["insertion_auc"],
                   help: "probability while inserting pixels into a blurred image (higher is better)", inTable: true),
        MetricInfo(name: "randomization", stored: ["randomization"],
                   help: "rank correlation with heatmaps of randomized models (lower is better; < 0.5 passes)", inTable: true),
        MetricInfo(name: "max_sensitivity", stored: ["max_sensitivity"],
                   help: "largest relative change under ±0.02 input noise (lower is better)", inTable: true),
        MetricInfo(name: "agreement", stored: ["agreement"],
                   help: "rank correlation with the other explainers (context)", inTable: true),
    ]
}
