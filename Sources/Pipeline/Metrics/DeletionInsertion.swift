import Explainers

/// Deletion (Petsiuk et al. 2018, "RISE: randomized input sampling for explanation of
/// black-box models"): the class probability while pixels are removed in heatmap order; its
/// area under the curve, lower when the heatmap finds what matters.
struct DeletionAUCMetric: HeatmapMetric {
    static let info = MetricInfo(name: "deletion_auc", stored: ["deletion_auc"],
                                 help: "probability while deleting pixels in heatmap order (lower is better)", inTable: true)
    static let reusable = true
    static let curves = ["deletion"]

    static func measure(_ c: MetricContext) throws -> [(name: String, value: Double?)] {
        let curves = try c.curves()
        c.record(curve: "deletion", curves.deletion)
        return [("deletion_auc", curves.deletionAUC)]
    }
}

/// Insertion (Petsiuk et al. 2018): pixels inserted in heatmap order into a blurred
/// image; the area under the probability curve, higher is better.
struct InsertionAUCMetric: HeatmapMetric {
    static let info = MetricInfo(name: "insertion_auc", stored: ["insertion_auc"],
                                 help: "probability while inserting pixels into a blurred image (higher is better)", inTable: true)
    static let reusable = true
    static let curves = ["insertion"]

    static func measure(_ c: MetricContext) throws -> [(name: String, value: Double?)] {
        let curves = try c.curves()
        c.record(curve: "insertion", curves.insertion)
        return [("insertion_auc", curves.insertionAUC)]
    }
}
