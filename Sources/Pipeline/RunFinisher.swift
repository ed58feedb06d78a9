import Explainers
import Foundation
import Report
import Store

/// The run finisher (DESIGN.md §5): what happens once a run's items are stored, the same for
/// `candela run`, `candela merge` and a resumed run. It records the run's verdict, evaluates the
/// manifest's gates on the stored rows and writes the report. Its steps read only the store, so
/// they give the same result on a merged run as on the unsharded one.
public struct RunFinisher {
    public let store: Store
    public let runID: Int64
    public let gates: [GateSpec]
    /// Where the report goes (nil: no report) and how it is written.
    public let report: ReportPlan?
    let log: @Sendable (String) -> Void

    /// A report to write: its folder, options and method cards.
    public struct ReportPlan {
        public var directory: String
        public var options: ReportOptions
        public var cards: [String: ReportCard]
        /// The stage the failure row names when writing fails.
        public var stage: String

        public init(directory: String, options: ReportOptions, cards: [String: ReportCard], stage: String = "report") {
            self.directory = directory
            self.options = options
            self.cards = cards
            self.stage = stage
        }

        /// The report a manifest asks for: `--report DIR` when given (a report even without a report
        /// stage), else the report stage's `out` (default `reports/<pipeline>` beside the manifest).
        public static func of(_ manifest: Manifest, directory: String?, force: Bool) -> ReportPlan? {
            let stage = manifest.stages.first { $0.kind == .report }
            guard let dir = directory ?? stage.map({ stage in
                stage.out ?? URL(fileURLWithPath: manifest.file).deletingLastPathComponent()
                    .appendingPathComponent("reports/\(manifest.pipeline)").path
            }) else { return nil }
            var options = RunFinisher.reportOptions(stage)
            options.force = force
            for s in manifest.stages where s.kind == .compare || s.kind == .drift {
                options.comparisonSettings[s.name] = (s.moved, s.topK)
            }
            return ReportPlan(directory: dir, options: options, cards: RunFinisher.cards(for: Array(manifest.explainers.values)),
                              stage: stage?.name ?? "report")
        }
    }

    /// What finishing found.
    public struct Outcome {
        /// "complete", "partial" or "interrupted".
        public var status: String
        public var failures: Int
        public var gates: [GateResultRecord]
        public var reportIndex: String?
    }

    /// The slide datasets' settings by dataset name (their aggregation rules).
    let slideSettings: [String: SlideSettings]
    /// The manifest's compare and drift stages, and the folder relative baselines are named from.
    let analyses: [StageSpec]
    let manifestFolder: String

    public init(store: Store, runID: Int64, gates: [GateSpec], report: ReportPlan?, log: @escaping @Sendable (String) -> Void,
                slideSettings: [String: SlideSettings] = [:], analyses: [StageSpec] = [], manifestFolder: String = ".") {
        self.slideSettings = slideSettings
        self.analyses = analyses
        self.manifestFolder = manifestFolder
        self.store = store
        self.runID = runID
        self.gates = gates
        self.report = report
        self.log = log
    }

    /// Finishes the run: slide verdicts and stitched heatmaps, compare and drift stages; status "partial" when it has
    /// failure rows (or `atLeast` says so), else `atLeast`; then gates, then the report. The verdict is recorded before the report is
    /// written, so the report shows it; a report that cannot be written is a failure row and
    /// makes the run partial.
    public func finish(atLeast: String = "complete", at time: String? = nil) throws -> Outcome {
        let stamp = time ?? RunFinisher.timestamp(Date())
        var failures = try store.failures(run: runID).count
        var status = atLeast == "complete" && failures > 0 ? "partial" : atLeast
        // Slides: verdicts per slide and tissue piece, stitched heatmaps (from the stored tiles).
        do {
            try SlideRecords.finish(store: store, runID: runID, settings: slideSettings)
        } catch {
            try store.insert(FailureRecord(runID: runID, itemPath: manifestFolder, stage: "slides", message: "\(error)"))
            failures += 1
            if status == "complete" { status = "partial" }
            log("failed: \(error)")
        }
        // Dataset-level stages: model vs model, drift against a baseline.
        do {
            try AnalysisSteps.run(analyses, store: store, runID: runID, manifestFolder: manifestFolder, log: log)
        } catch {
            // A baseline that cannot be read is the analysis's failure, not the run's end.
            try store.insert(FailureRecord(runID: runID, itemPath: manifestFolder, stage: "analysis", message: "\(error)"))
            failures += 1
            if status == "complete" { status = "partial" }
            log("failed: \(error)")
        }
        try store.finishRun(runID, status: status, at: stamp)
        let results = try Gates.evaluate(gates, store: store, runID: runID,
                                         driftThresholds: Dictionary(analyses.filter { $0.kind == .drift }.map { ($0.name, $0.moved) },
                                                                     uniquingKeysWith: { a, _ in a }))
        try store.replaceGateResults(run: runID, results)
        var index: String?
        if let report {
            do {
                var options = report.options
                options.log = options.log ?? log
                index = try ReportWriter(store: store, runID: runID, directory: report.directory, cards: report.cards,
                                         options: options).write()
            } catch {
                try store.insert(FailureRecord(runID: runID, itemPath: report.directory, stage: report.stage, message: "\(error)"))
                failures += 1
                if status == "complete" { status = "partial" }
                try store.finishRun(runID, status: status, at: stamp)
                log("report failed: \(error)")
            }
        }
        return Outcome(status: status, failures: failures, gates: results, reportIndex: index)
    }

    /// The report options a report stage asks for.
    public static func reportOptions(_ stage: StageSpec?) -> ReportOptions {
        var options = ReportOptions(pageSize: stage?.pageSize ?? 100, doctorExplainer: stage?.doctorExplainer,
                                    templateDirectory: stage?.templates)
        options.metrics = (MetricRegistry.all + MetricRegistry.diagnostics).filter(\.inTable).map { ($0.name, $0.help) }
        return options
    }

    /// The method cards of the explainers, by explainer name (Report does not import Explainers).
    public static func cards(for specs: [ExplainerSpec]) -> [String: ReportCard] {
        var out: [String: ReportCard] = [:]
        for s in specs {
            if let c = ExplainerRegistry.card(s.method) {
                out[s.name] = ReportCard(title: c.title, meaning: c.meaning, cost: c.cost, limits: c.limits)
            }
        }
        return out
    }

    static func timestamp(_ d: Date) -> String {
        ISO8601DateFormatter().string(from: d)
    }
}
