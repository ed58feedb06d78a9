import Foundation
import Store

/// Evaluates a manifest's gates on a run in the store (docs/manifest.md, "gates").
public enum Gates {
    /// The value each gate measures on run `runID`, compared with its threshold. A gate with no
    /// value (no item had the metric; no labelled item for `accuracy`) fails: a gate that cannot
    /// be checked must not pass silently.
    ///
    /// A gate on a per-model number (`accuracy`, any heatmap metric) holds for each model of the
    /// run: with one model, or a gate naming its `model`, one verdict named as the gate; with
    /// several models, one verdict per model that ran the gate's explainer, named "GATE [MODEL]".
    /// `failures` counts the run.
    /// Drift metrics average the run's comparison rows against its baseline for the explainer:
    /// `drift_spearman`, `drift_ssim`, `drift_topk`, and `drift_moved`, the share of items whose
    /// Spearman ρ is below the drift stage's `moved`. No baseline (a first run): no value, fails.
    /// `driftThresholds`: each drift stage's `moved` threshold by stage name (for `drift_moved`).
    /// `spray_flags` counts the SpRAy clusters flagged as Clever Hans for the explainer (over
    /// its classes); no spray rows: no value, fails. `slide_pointing_game` averages the slide
    /// pointing game of the explainer's stitched maps over the run's annotated slides.
    public static func evaluate(_ gates: [GateSpec], store: Store, runID: Int64,
                                driftThresholds: [String: Double] = [:]) throws -> [GateResultRecord] {
        guard !gates.isEmpty else { return [] }
        let metrics = try store.metrics(run: runID)
        let failures = try store.failures(run: runID).count
        let items = try store.items(run: runID)
        let predictions = try store.predictions(run: runID)
        let names = Dictionary(try store.models().map { ($0.hash, $0.name) }, uniquingKeysWith: { a, _ in a })
        let runModels = Set(predictions.map(\.modelHash)).sorted { (names[$0] ?? $0, $0) < (names[$1] ?? $1, $1) }
        let labels = Dictionary(items.compactMap { i in i.id.map { ($0, i.label) } }, uniquingKeysWith: { a, _ in a })
        let spray = gates.contains { GateSpec.sprayMetrics.contains($0.metric) } ? try store.clusterSummaries(run: runID) : []
        var slideMaps: [SlideHeatmapRecord] = []
        if gates.contains(where: { GateSpec.slideMetrics.contains($0.metric) }) {
            for slide in try store.slides(run: runID) { slideMaps += try store.slideHeatmaps(slide: slide.id ?? -1) }
        }
        let drift = gates.contains { GateSpec.driftMetrics.contains($0.metric) } ? try store.comparisons(run: runID).filter { $0.kind == "baseline" } : []
        var results: [GateResultRecord] = []
        for gate in gates {
            // The models this gate judges (nil: the whole run).
            var subjects: [(hash: String?, suffix: String)] = [(nil, "")]
            if gate.metric != "failures" {
                if let model = gate.model {
                    subjects = runModels.filter { names[$0] == model }.map { ($0, "") }
                    if subjects.isEmpty { subjects = [("", "")] } // the model is not in the run: no value, the gate fails
                } else if runModels.count > 1 {
                    // A heatmap or drift gate judges the models that ran its explainer (a stage may
                    // cover some models only); with none, every model, to fail without a value.
                    var judged = runModels
                    if gate.metric != "accuracy" {
                        let ran = GateSpec.driftMetrics.contains(gate.metric)
                            ? Set(drift.filter { $0.explainer == gate.explainer }.map(\.modelA))
                            : GateSpec.sprayMetrics.contains(gate.metric)
                            ? Set(spray.filter { $0.explainer == gate.explainer }.map(\.modelHash))
                            : GateSpec.slideMetrics.contains(gate.metric)
                            ? Set(slideMaps.filter { $0.explainer == gate.explainer && $0.pointing != nil }.map(\.modelHash))
                            : Set(metrics.filter { $0.explainer == gate.explainer && $0.name == gate.metric }.map(\.modelHash))
                        if !ran.isEmpty { judged = runModels.filter(ran.contains) }
                    }
                    subjects = judged.map { ($0, " [\(names[$0] ?? String($0.prefix(12)))]") }
                }
            }
            for subject in subjects {
                let value: Double?
                switch gate.metric {
                case "failures":
                    value = Double(failures)
                case "accuracy":
                    let labelled = predictions.filter { subject.hash == nil || $0.modelHash == subject.hash }.compactMap { p -> Bool? in
                        guard let label = labels[p.itemID] ?? nil else { return nil }
                        return p.className == label
                    }
                    value = labelled.isEmpty ? nil : Double(labelled.filter { $0 }.count) / Double(labelled.count)
                case "drift_spearman", "drift_ssim", "drift_topk", "drift_moved":
                    let rows = drift.filter { $0.explainer == gate.explainer && (subject.hash == nil || $0.modelA == subject.hash) }
                    let values: [Double]
                    switch gate.metric {
                    case "drift_spearman": values = rows.compactMap(\.spearman)
                    case "drift_ssim": values = rows.compactMap(\.ssim)
                    case "drift_topk": values = rows.compactMap(\.topK)
                    default: values = rows.compactMap(\.spearman).map { $0 < (driftThresholds[rows.first?.name ?? ""] ?? 0.5) ? 1 : 0 }
                    }
                    value = values.isEmpty ? nil : values.reduce(0, +) / Double(values.count)
                case "spray_flags":
                    let rows = spray.filter { $0.explainer == gate.explainer && (subject.hash == nil || $0.modelHash == subject.hash) }
                    value = rows.isEmpty ? nil : Double(rows.filter(\.flagged).count)
                case "slide_pointing_game":
                    let values = slideMaps.filter { $0.explainer == gate.explainer && (subject.hash == nil || $0.modelHash == subject.hash) }
                        .compactMap(\.pointing)
                    value = values.isEmpty ? nil : values.reduce(0, +) / Double(values.count)
                default:
                    let values = metrics.filter {
                        $0.name == gate.metric && $0.explainer == gate.explainer && (subject.hash == nil || $0.modelHash == subject.hash)
                    }.compactMap(\.value)
                    value = values.isEmpty ? nil : values.reduce(0, +) / Double(values.count)
                }
                let passed = value.map { gate.comparison == .atLeast ? $0 >= gate.threshold : $0 <= gate.threshold } ?? false
                results.append(GateResultRecord(runID: runID, name: gate.name + subject.suffix, metric: gate.metric,
                                                explainer: gate.explainer, comparison: gate.comparison.rawValue,
                                                threshold: gate.threshold, value: value, passed: passed))
            }
        }
        return results
    }

    /// One line per gate: `gate NAME: METRIC[ of EXPLAINER] = VALUE (needs >= T): PASS|FAIL`.
    public static func describe(_ r: GateResultRecord) -> String {
        let subject = r.explainer.map { "\(r.metric) of \($0)" } ?? r.metric
        let value = r.value.map { String(format: "%.4g", $0) } ?? "no value"
        return "gate \(r.name): \(subject) = \(value) (needs \(r.comparison) \(String(format: "%g", r.threshold))): \(r.passed ? "PASS" : "FAIL")"
    }
}
