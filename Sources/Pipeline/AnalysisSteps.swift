import Analysis
import Foundation
import Store

/// The run finisher's dataset-level stages (docs/analysis.md): `compare` (two models on the
/// same items), `drift` (this run against a baseline run) and `spray` (clusters of heatmaps). They read the stored heatmaps, so
/// a merged or resumed run gets the same rows as an uninterrupted one.
enum AnalysisSteps {
    static func run(_ stages: [StageSpec], store: Store, runID: Int64, manifestFolder: String,
                    log: @Sendable (String) -> Void) throws {
        guard !stages.isEmpty else { return }
        // Models by name, as this run holds them (its predictions say which hash each name has).
        let runHashes = Set(try store.predictions(run: runID).map(\.modelHash))
        let byName = Dictionary(try store.models().filter { runHashes.contains($0.hash) }.map { ($0.name, $0.hash) },
                                uniquingKeysWith: { a, _ in a })
        guard let run = try store.runs().first(where: { $0.id == runID }) else { return }
        for stage in stages {
            let explainers = stage.explainers.isEmpty ? nil : Set(stage.explainers)
            switch stage.kind {
            case .compare:
                guard stage.models.count == 2, let a = byName[stage.models[0]], let b = byName[stage.models[1]] else {
                    log("warning: compare stage '\(stage.name)': the run holds no predictions of \(stage.models.joined(separator: " and "))")
                    try store.replaceComparisons(run: runID, name: stage.name, [])
                    continue
                }
                let rows = try Comparisons.models(store: store, runID: runID, name: stage.name, a: a, b: b, explainers: explainers,
                                                  topFraction: stage.topK)
                try store.replaceComparisons(run: runID, name: stage.name, rows)
            case .drift:
                let spec = stage.baseline ?? "previous"
                var baseline = store
                var baselineRun: Int64?
                var reference = "\(store.path)"
                if spec == "previous" {
                    baselineRun = try store.runs().last { ($0.id ?? 0) < runID && $0.pipeline == run.pipeline
                        && ["complete", "partial"].contains($0.status) }?.id
                } else {
                    let (named, wanted) = baselineStore(spec)
                    var path = named
                    if !path.hasPrefix("/") { path = URL(fileURLWithPath: manifestFolder).appendingPathComponent(path).standardized.path }
                    guard FileManager.default.fileExists(atPath: path) else {
                        throw PipelineError("drift stage '\(stage.name)': baseline store \(path) does not exist")
                    }
                    reference = path
                    if path != URL(fileURLWithPath: store.path).standardized.path { baseline = try Store(path: path) }
                    let runs = try baseline.runs()
                    baselineRun = wanted.map { id in runs.first { $0.id == id }?.id }
                        ?? runs.last { $0.pipeline == run.pipeline && $0.id != runID && ["complete", "partial"].contains($0.status) }?.id
                    if let wanted, baselineRun == nil { throw PipelineError("drift stage '\(stage.name)': \(path) has no run \(wanted)") }
                }
                guard let baselineRun else {
                    log("drift stage '\(stage.name)': no baseline run of pipeline '\(run.pipeline)' yet; nothing to compare")
                    try store.replaceComparisons(run: runID, name: stage.name, [])
                    continue
                }
                let rows = try Comparisons.drift(store: store, runID: runID, name: stage.name, baseline: baseline, baselineRun: baselineRun,
                                                 reference: "\(reference)#\(baselineRun)", explainers: explainers, topFraction: stage.topK)
                try store.replaceComparisons(run: runID, name: stage.name, rows)
                let movedCount = rows.filter { ($0.spearman ?? 1) < stage.moved }.count
                log("drift '\(stage.name)' against run \(baselineRun): \(rows.count) heatmaps compared, \(movedCount) moved (Spearman < \(stage.moved))")
            case .spray:
                let (rows, summaries) = try Clusters.spray(store: store, runID: runID, name: stage.name, settings: stage.spray,
                                                           explainers: explainers, models: stage.models.isEmpty ? nil : Set(stage.models),
                                                           log: log)
                try store.replaceClusters(run: runID, name: stage.name, rows, summaries: summaries)
            default:
                continue
            }
        }
    }
}

/// A drift baseline other than "previous": "STORE.sqlite" or "STORE.sqlite#RUN" split into the
/// store's path and the run (nil: the store's latest run of the pipeline).
public func baselineStore(_ text: String) -> (path: String, run: Int64?) {
    if let hash = text.lastIndex(of: "#"), let run = Int64(text[text.index(after: hash)...]) {
        return (String(text[..<hash]), run)
    }
    return (text, nil)
}
