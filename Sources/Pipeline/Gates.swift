import Foundation
import Store

/// Evaluates a manifest's gates on a run in the store (docs/manifest.md, "gates").
public enum Gates {
    /// The value each gate measures on run `runID`, compared with its threshold. A gate with no
    /// value (no item had the metric; no labelled item for `accuracy`) fails: a gate that cannot
    /// be checked must not pass silently.
    public static func evaluate(_ gates: [GateSpec], store: Store, runID: Int64) throws -> [GateResultRecord] {
        guard !gates.isEmpty else { return [] }
        let metrics = try store.metrics(run: runID)
        let failures = try store.failures(run: runID).count
        let items = try store.items(run: runID)
        let predictions = Dictionary(try store.predictions(run: runID).map { ($0.itemID, $0) }, uniquingKeysWith: { a, _ in a })
        return gates.map { gate in
            let value: Double?
            switch gate.metric {
            case "failures":
                value = Double(failures)
            case "accuracy":
                let labelled = items.compactMap { item -> Bool? in
                    guard let label = item.label, let id = item.id, let p = predictions[id] else { return nil }
                    return p.className == label
                }
                value = labelled.isEmpty ? nil : Double(labelled.filter { $0 }.count) / Double(labelled.count)
            default:
                let values = metrics.filter { $0.name == gate.metric && $0.explainer == gate.explainer }.compactMap(\.value)
                value = values.isEmpty ? nil : values.reduce(0, +) / Double(values.count)
            }
            let passed = value.map { gate.comparison == .atLeast ? $0 >= gate.threshold : $0 <= gate.threshold } ?? false
            return GateResultRecord(runID: runID, name: gate.name, metric: gate.metric, explainer: gate.explainer,
                                    comparison: gate.comparison.rawValue, threshold: gate.threshold, value: value, passed: passed)
        }
    }

    /// One line per gate: `gate NAME: METRIC[ of EXPLAINER] = VALUE (needs >= T): PASS|FAIL`.
    public static func describe(_ r: GateResultRecord) -> String {
        let subject = r.explainer.map { "\(r.metric) of \($0)" } ?? r.metric
        let value = r.value.map { String(format: "%.4g", $0) } ?? "no value"
        return "gate \(r.name): \(subject) = \(value) (needs \(r.comparison) \(String(format: "%g", r.threshold))): \(r.passed ? "PASS" : "FAIL")"
    }
}
