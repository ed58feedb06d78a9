import Foundation
import Store

/// Dataset-level comparisons of stored heatmaps (docs/analysis.md): two models on the same
/// items, and a run against a baseline run (night-over-night drift). Both read heatmaps item by
/// item from the store (never all at once) and return one row per item and explainer.
public enum Comparisons {
    /// Model `a` against model `b` (hashes) in run `runID`: every item with a heatmap of the same
    /// explainer (and target rule) from both. `explainers` nil: every explainer both have.
    public static func models(store: Store, runID: Int64, name: String, a: String, b: String, explainers: Set<String>?,
                              topFraction: Double) throws -> [ComparisonRecord] {
        let predictions = Dictionary(grouping: try store.predictions(run: runID), by: \.itemID)
        var rows: [ComparisonRecord] = []
        for item in try store.items(run: runID) {
            guard let id = item.id else { continue }
            let heatmaps = try store.attributions(item: id)
            let p = predictions[id] ?? []
            let (pa, pb) = (p.first { $0.modelHash == a }, p.first { $0.modelHash == b })
            let same = pa.flatMap { x in pb.map { $0.classIndex == x.classIndex } }
            for ha in heatmaps where ha.modelHash == a && (explainers?.contains(ha.explainer) ?? true) {
                guard let hb = heatmaps.first(where: { $0.modelHash == b && $0.explainer == ha.explainer }) else { continue }
                let s = Similarity.of(ha.heatmap, width: ha.width, height: ha.height, hb.heatmap, bWidth: hb.width, bHeight: hb.height,
                                      topFraction: topFraction)
                rows.append(ComparisonRecord(runID: runID, kind: "models", name: name, itemID: id, explainer: ha.explainer, modelA: a,
                                             modelB: b, spearman: s.spearman, ssim: s.ssim, topK: s.topK, samePrediction: same))
            }
        }
        return rows
    }

    /// Run `runID` against `baselineRun` of `baseline` (the same store or another): items matched
    /// by dataset and path, models by name, heatmaps by explainer name. `reference` names the
    /// baseline in each row ("STORE#RUN").
    public static func drift(store: Store, runID: Int64, name: String, baseline: Store, baselineRun: Int64, reference: String,
                             explainers: Set<String>?, topFraction: Double) throws -> [ComparisonRecord] {
        let names = Dictionary(try store.models().map { ($0.hash, $0.name) }, uniquingKeysWith: { a, _ in a })
        let baselineNames = Dictionary(try baseline.models().map { ($0.hash, $0.name) }, uniquingKeysWith: { a, _ in a })
        let before = Dictionary(try baseline.items(run: baselineRun).compactMap { i in i.id.map { (ItemKey(dataset: i.dataset, path: i.path), $0) } },
                                uniquingKeysWith: { a, _ in a })
        let predictions = Dictionary(grouping: try store.predictions(run: runID), by: \.itemID)
        let baselinePredictions = Dictionary(grouping: try baseline.predictions(run: baselineRun), by: \.itemID)
        var rows: [ComparisonRecord] = []
        for item in try store.items(run: runID) {
            guard let id = item.id, let old = before[ItemKey(dataset: item.dataset, path: item.path)] else { continue }
            let oldHeatmaps = try baseline.attributions(item: old)
            for h in try store.attributions(item: id) where explainers?.contains(h.explainer) ?? true {
                guard let model = names[h.modelHash],
                      let o = oldHeatmaps.first(where: { baselineNames[$0.modelHash] == model && $0.explainer == h.explainer }) else { continue }
                let s = Similarity.of(h.heatmap, width: h.width, height: h.height, o.heatmap, bWidth: o.width, bHeight: o.height,
                                      topFraction: topFraction)
                let now = predictions[id]?.first { $0.modelHash == h.modelHash }
                let then = baselinePredictions[old]?.first { $0.modelHash == o.modelHash }
                rows.append(ComparisonRecord(runID: runID, kind: "baseline", name: name, itemID: id, explainer: h.explainer,
                                             modelA: h.modelHash, modelB: o.modelHash, reference: reference, spearman: s.spearman,
                                             ssim: s.ssim, topK: s.topK,
                                             samePrediction: now.flatMap { n in then.map { $0.classIndex == n.classIndex } }))
            }
        }
        return rows
    }
}
