import Engine
import Explainers
import Foundation
import Tensors

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

/// What a metric sees of one heatmap in the item job: the heatmap, the explainer and a request
/// to run it again, and the item's masks, each loaded the first time a metric asks.
final class MetricContext {
    let explainer: any Explainer
    let heatmap: Heatmap
    /// The raw attribution when it was computed in this job (nil when the heatmap came from the store).
    let raw: Tensor?
    /// The randomization check's cascade of re-drawn models, when a metric asks for it.
    let randomized: [Model]?
    private let lesionMask: () throws -> [Float]?
    private let tissueMask: () throws -> [Float]?
    private let makeRequest: () throws -> ExplanationRequest
    private let makeCurves: () throws -> Faithfulness.Curves
    /// Curves a metric measured on the way (kind → points), stored beside its values for the
    /// report's plots (`CurveRecord`).
    private(set) var recorded: [String: [Double]] = [:]

    init(explainer: any Explainer, heatmap: Heatmap, raw: Tensor?, randomized: [Model]?, lesion: @escaping () throws -> [Float]?,
         tissue: @escaping () throws -> [Float]?, request: @escaping () throws -> ExplanationRequest,
         curves: @escaping () throws -> Faithfulness.Curves) {
        self.explainer = explainer
        self.heatmap = heatmap
        self.raw = raw
        self.randomized = randomized
        self.lesionMask = lesion
        self.tissueMask = tissue
        self.makeRequest = request
        self.makeCurves = curves
    }

    /// The item's lesion mask at the model's input size (binary), nil when it has none.
    func lesion() throws -> [Float]? { try lesionMask() }
    /// The item's tissue mask at the model's input size (binary), nil when it has none.
    func tissue() throws -> [Float]? { try tissueMask() }
    /// The explanation request of this heatmap (model, input, target, forward pass, image).
    func request() throws -> ExplanationRequest { try makeRequest() }
    /// Deletion and insertion curves of this heatmap, computed once for both AUCs.
    func curves() throws -> Faithfulness.Curves { try makeCurves() }
    /// Keeps a curve for the store (see `HeatmapMetric.curves`).
    func record(curve kind: String, _ points: [Double]) { recorded[kind] = points }
}

/// A metric: its description and how it is measured on one heatmap. Adding a metric is its
/// file (a type conforming to this) and one line in `MetricRegistry.registered`.
protocol HeatmapMetric {
    static var info: MetricInfo { get }
    /// Whether a stored value may be reused by the heatmap's cache key (costly metrics that
    /// depend only on what the key covers: the model, the image, the method, the target).
    static var reusable: Bool { get }
    /// The values to store (names from `info.stored`); nil values are stored as "does not apply".
    static func measure(_ c: MetricContext) throws -> [(name: String, value: Double?)]
    /// The curves `measure` records (`MetricContext.record`); a reused value brings its stored curves.
    static var curves: [String] { get }
    /// Whether it is measured over an item's explainers together (agreement) by `across`
    /// rather than on each heatmap by `measure`.
    static var acrossExplainers: Bool { get }
    /// Per explainer name, its value; called once per item and model after every explainer,
    /// with their heatmaps.
    static func across(_ heatmaps: [String: Heatmap]) -> [String: Double]?
}

extension HeatmapMetric {
    static var reusable: Bool { false }
    static var curves: [String] { [] }
    static var acrossExplainers: Bool { false }
    static func measure(_ c: MetricContext) throws -> [(name: String, value: Double?)] { [] }
    static func across(_ heatmaps: [String: Heatmap]) -> [String: Double]? { nil }
}

/// Every metric, one line each, in the order the report shows them. The manifest checks, the
/// gates, the report and the item job read this list.
public enum MetricRegistry {
    static let registered: [any HeatmapMetric.Type] = [
        PointingGameMetric.self,
        EnergyPointingGameMetric.self,
        OutsideTissueMetric.self,
        DeletionAUCMetric.self,
        InsertionAUCMetric.self,
        RandomizationMetric.self,
        MaxSensitivityMetric.self,
        AgreementMetric.self,
    ]

    /// What the stochastic methods measure about their own heatmaps (`Attribution.diagnostics`):
    /// stored for every LIME and RISE heatmap without an evaluate stage asking, cached with it.
    public static let diagnostics: [MetricInfo] = [
        MetricInfo(name: "stability", stored: ["stability"],
                   help: "LIME, RISE: split-half reliability, the expected correlation with a rerun under another seed (higher is better; below 0.8 the heatmap is flagged unstable)",
                   inTable: true),
        MetricInfo(name: "fit_r2", stored: ["fit_r2"], help: "LIME: weighted R² of its linear model (higher is better)", inTable: true),
        MetricInfo(name: "samples", stored: ["samples"], help: "LIME, RISE: forward passes spent on the heatmap", inTable: true),
    ]

    public static var all: [MetricInfo] { registered.map { $0.info } }
    /// Metric names a manifest's evaluate stage may list.
    public static var names: [String] { all.map(\.name) }
    /// Names stored for a requested metric (the pointing game also stores its strict form).
    public static func storedNames(_ metric: String) -> [String] { all.first { $0.name == metric }?.stored ?? [metric] }
    static func entry(_ name: String) -> (any HeatmapMetric.Type)? { registered.first { $0.info.name == name } }
}
