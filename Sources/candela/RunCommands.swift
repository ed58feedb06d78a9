import ArgumentParser
import Foundation
import Pipeline
import Report
import Store
import Tensors

struct Run: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Runs a pipeline manifest: predictions, heatmaps and metrics into SQLite, then the HTML report.",
        discussion: """
            Exit status: 0 when every item succeeded and every gate passed; 3 when a gate failed; 2 when some items \
            failed (recorded in the store) and no gate failed; 130 when interrupted (Ctrl-C finishes the items in flight and \
            commits them; --resume continues the run, and any rerun reuses their results); 1 on a fatal error.

            Examples:
              candela run pipelines/demo.yaml --db audit.sqlite
              candela run nightly.yaml --db a.sqlite -q --junit j.xml --metrics m.prom
              candela run nightly.yaml --db a.sqlite --resume    # after a kill
              candela run audit.yaml --shard 2/8 --db s2.sqlite  # then: merge
            """)

    @Argument(help: "The pipeline manifest (YAML).") var pipeline: String
    @Option(help: "Items processed in parallel.") var jobs: Int = ProcessInfo.processInfo.activeProcessorCount
    @Option(help: "SQLite database file.") var db: String = "candela.sqlite"
    @Option(help: "Report folder (overrides the report stage's 'out'; writes a report even when the manifest has no report stage).") var report: String?
    @Flag(help: "Continue the latest unfinished run (killed or interrupted) of this manifest and shard instead of starting a new one.")
    var resume = false
    @Option(help: "Process only shard K of N of the items (K/N, 1-based); join shard stores with 'candela merge'.")
    var shard: String?
    @Flag(help: "Write the report into a non-empty folder that holds no Candela report (files Candela did not write are never deleted).")
    var force = false
    @Option(help: ArgumentHelp("Wall-clock seconds one item may take; past it the item stops at its next forward or backward pass and becomes a failure row (default: no limit).",
                               valueName: "seconds"))
    var itemTimeout: Double?
    @Option(help: ArgumentHelp("The baseline of the manifest's drift stages: previous, STORE.sqlite or STORE.sqlite#RUN (overrides their 'baseline').",
                               valueName: "baseline"))
    var baseline: String?

    @OptionGroup var outputs: MachineOutputs
    @Flag(name: .shortAndLong, help: "Print only warnings, failures, the summary and the verdict: no progress bar or log lines.")
    var quiet = false
    @Flag(name: .shortAndLong, help: "Log every item as it finishes (instead of a progress bar or every 16th item).")
    var verbose = false

    func validate() throws {
        guard jobs >= 1 else { throw ValidationError("--jobs must be at least 1") }
        guard !(quiet && verbose) else { throw ValidationError("--quiet and --verbose exclude each other") }
    }

    @OptionGroup var kernelFlags: KernelFlags

    func run() throws {
        var summary: RunSummary?
        try guarded {
            let kernels = try kernelFlags.kernels()
            if let baseline, baseline != "previous" {
                let file = baselineStore(baseline).path
                guard FileManager.default.fileExists(atPath: file) else {
                    throw ValidationError("--baseline: \(file) does not exist (give a Candela store, STORE.sqlite#RUN, or previous)")
                }
            }
            if let t = itemTimeout, !(t > 0 && t.isFinite) {
                throw ValidationError("--item-timeout must be a positive number of seconds, got \(String(format: "%g", t))")
            }
            let plan = try Plan(try ManifestParser.load(path: pipeline))
            let bar = ProgressBar()
            var options = RunOptions(jobs: jobs, database: db, reportDirectory: report, handleInterrupts: true, resume: resume,
                                     shard: try shard.map { try Shard(parsing: $0) }, forceReport: force,
                                     itemTimeout: itemTimeout)
            options.baseline = baseline.map { $0 == "previous" || $0.hasPrefix("/") ? $0 : FileManager.default.currentDirectoryPath + "/" + $0 }
            options.logEveryItem = verbose
            options.kernels = kernels
            var progress: (@Sendable (Int, Int) -> Void)?
            if bar.isTerminal && !quiet && !verbose { progress = bar.updater }
            let full: @Sendable (String) -> Void = bar.logger
            // --quiet keeps what a reader must see: warnings and failures.
            @Sendable func essential(_ line: String) {
                if line.hasPrefix("warning") || line.hasPrefix("failed") || line.contains(": warning") { full(line) }
            }
            let log: @Sendable (String) -> Void = quiet ? essential : full
            let runner = Runner(plan: plan, options: options, log: log, progress: progress)
            summary = try runner.run()
            bar.clear()
        }
        guard let s = summary else { return }
        print("run \(s.runID): \(s.items) items\(s.resumed > 0 ? " (\(s.resumed) committed before the resume)" : ""), "
              + "\(s.failures) failures, \(s.status), \(String(format: "%.1f", s.seconds)) s; "
              + "\(s.computed) heatmaps computed, \(s.reused) reused from the store"
              + (s.skipped > 0 ? ", \(s.skipped) left out by explainers' only: scopes" : ""))
        for (name, p) in s.pointingGame.sorted(by: { $0.key < $1.key }) {
            print("pointing game \(name): \(p.hits)/\(p.total) = \(String(format: "%.1f", 100 * Double(p.hits) / Double(max(p.total, 1))))%")
        }
        try guarded {
            let store = try Store(path: db)
            for slide in try store.slides(run: s.runID) {
                for m in try store.slideHeatmaps(slide: slide.id ?? -1) {
                    guard let value = m.pointing, let k = m.pointingK else { continue }
                    print("slide pointing game \(m.explainer) on \((slide.path as NSString).lastPathComponent): "
                          + "\(Int((value * Double(k)).rounded()))/\(k) of the most relevant tiles on the annotation")
                }
            }
        }
        var usage = rusage()
        getrusage(RUSAGE_SELF.rawValue, &usage)
        print("peak memory: \(usage.ru_maxrss / 1024) MB")
        print("database: \(db)")
        if let r = s.reportIndex { print("report: \(r)") }
        for g in s.gates { print(Gates.describe(g)) }
        if !s.gates.isEmpty {
            let failed = s.gates.filter { !$0.passed }.count
            print(failed == 0 ? "verdict: PASS (\(s.gates.count) gates)" : "verdict: FAIL (\(failed) of \(s.gates.count) gates failed)")
        }
        try guarded {
            try outputs.write {
                RunOutputs(store: try Store(path: db), runID: s.runID, database: db, reportIndex: s.reportIndex, seconds: s.seconds,
                           heatmaps: (s.computed, s.reused, s.skipped))
            }
        }
        if s.status == "interrupted" { throw ExitCode(130) }
        if s.gates.contains(where: { !$0.passed }) { throw ExitCode(3) }
        if s.failures > 0 { throw ExitCode(2) }
    }
}

struct Merge: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Joins the stores of shard runs (candela run --shard K/N) into one run of one store.",
        discussion: """
            Takes the latest run of each input store; they must come from the same pipeline and manifest (same hash). \
            Items, predictions, heatmaps, metrics and failures are copied byte for byte; an item in two inputs is an error. \
            When the manifest is readable its gates are evaluated on the merged run (exit 3 when one fails) and its \
            report stage, if any, is written (or use --report). Exit 2 when a shard was partial or unfinished.
            """)

    @Option(help: "The merged SQLite database (created, or a new run appended).") var out: String
    @Argument(help: "Shard stores to merge.") var inputs: [String]
    @Option(help: "Manifest whose gates and report apply (default: the path recorded by the shard runs).") var manifest: String?
    @Option(help: "Report folder (default: the manifest's report stage 'out').") var report: String?
    @Flag(help: "Write the report into a non-empty folder that holds no Candela report (files Candela did not write are never deleted).")
    var force = false
    @OptionGroup var outputs: MachineOutputs

    func validate() throws {
        guard !inputs.isEmpty else { throw ValidationError("give at least one shard store to merge") }
    }

    func run() throws {
        var exit: Int32 = 0
        let start = Date()
        try guarded {
            var sources: [(path: String, run: RunRecord)] = []
            for path in inputs {
                guard let run = try Store.runs(at: path).last, run.id != nil else { throw StoreError("\(path): the store has no runs") }
                sources.append((path, run))
            }
            let first = sources[0].run
            for (path, run) in sources.dropFirst() where run.pipeline != first.pipeline || run.manifestHash != first.manifestHash {
                throw StoreError("\(path): run \(run.id!) is pipeline '\(run.pipeline)' with manifest \(run.manifestHash.prefix(12)), "
                                 + "but \(inputs[0]) has '\(first.pipeline)' with manifest \(first.manifestHash.prefix(12)); merge shards of one manifest")
            }
            let shards = sources.map { s -> String in
                (try? JSONDecoder().decode([String: String].self, from: Data(s.run.parameters.utf8)))?["shard"] ?? "all"
            }
            let statuses = sources.map(\.run.status)
            let status = statuses.allSatisfy { $0 == "complete" } ? "complete" : statuses.contains("running") || statuses.contains("interrupted") ? "interrupted" : "partial"
            let writerLock = try StoreLock(store: out)
            defer { withExtendedLifetime(writerLock) {} }
            let store = try Store(path: out)
            let parameters = String(decoding: try JSONEncoder.sorted.encode(["merged_from": inputs, "shards": shards]), as: UTF8.self)
            let runID = try store.insert(RunRecord(
                pipeline: first.pipeline, manifestPath: first.manifestPath, manifestHash: first.manifestHash,
                candelaVersion: first.candelaVersion, startedAt: sources.map(\.run.startedAt).min()!,
                status: "running", jobs: sources.map(\.run.jobs).reduce(0, +), parameters: parameters))
            for (path, run) in sources { try store.copyRun(run.id!, from: path, into: runID) }
            // The manifest's gates and report, when it is still readable; the same finisher as `run`.
            let manifestPath = manifest ?? first.manifestPath
            let m = FileManager.default.fileExists(atPath: manifestPath) ? try ManifestParser.load(path: manifestPath) : nil
            if m == nil { print("manifest \(manifestPath) not found: gates skipped\(report == nil ? " and no report" : "")") }
            let plan = m.flatMap { RunFinisher.ReportPlan.of($0, directory: report, force: force) }
                ?? report.map { dir in
                    var options = RunFinisher.reportOptions(nil)
                    options.force = force
                    return RunFinisher.ReportPlan(directory: dir, options: options, cards: [:])
                }
            let finished = try RunFinisher(store: store, runID: runID, gates: m?.gates ?? [], report: plan, log: { note($0) },
                                           slideSettings: m?.datasets.compactMapValues(\.slides) ?? [:],
                                           analyses: m?.stages.filter { [.compare, .drift, .spray].contains($0.kind) } ?? [],
                                           manifestFolder: URL(fileURLWithPath: manifestPath).deletingLastPathComponent().path)
                .finish(atLeast: status, at: sources.compactMap(\.run.finishedAt).max())
            print("run \(runID) in \(out): \(try store.items(run: runID).count) items from \(inputs.count) stores (shards \(shards.joined(separator: ", "))), "
                  + "\(finished.failures) failures, \(finished.status)")
            for g in finished.gates { print(Gates.describe(g)) }
            if let index = finished.reportIndex { print("report: \(index)") }
            try outputs.write {
                RunOutputs(store: store, runID: runID, database: out, reportIndex: finished.reportIndex,
                           seconds: Date().timeIntervalSince(start))
            }
            if finished.status != "complete" { exit = 2 }
            if finished.gates.contains(where: { !$0.passed }) { exit = 3 }
        }
        if exit != 0 { throw ExitCode(exit) }
    }
}

/// `--junit`, `--summary`, `--metrics` of `run` and `merge` (docs/ci.md).
struct MachineOutputs: ParsableArguments {
    @Option(help: ArgumentHelp("Write JUnit XML here: a test case per gate and per failed item (Jenkins, GitLab).", valueName: "file"))
    var junit: String?
    @Option(help: ArgumentHelp("Write a JSON summary here: counts, gates, metric means, store and report (docs/ci.md).", valueName: "file"))
    var summary: String?
    @Option(help: ArgumentHelp("Write Prometheus text here, for node_exporter's textfile collector (a .prom file).", valueName: "file"))
    var metrics: String?

    /// Each requested file, written whole or not at all (temporary file, then rename); the
    /// outputs (and the store behind them) are not even made when no file is asked for.
    func write(_ make: () throws -> RunOutputs) throws {
        guard junit != nil || summary != nil || metrics != nil else { return }
        let outputs = try make()
        if let junit { try RunOutputs.write(Data(try outputs.junit().utf8), to: junit) }
        if let summary { try RunOutputs.write(try outputs.summary() + Data("\n".utf8), to: summary) }
        if let metrics { try RunOutputs.write(Data(try outputs.prometheus().utf8), to: metrics) }
    }
}

extension JSONEncoder {
    static var sorted: JSONEncoder {
        let e = JSONEncoder()
        e.outputFormatting = .sortedKeys
        return e
    }
}

struct Validate: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Checks a manifest and prints the plan (stages, DAG, item counts).")

    @Argument(help: "The pipeline manifest (YAML).") var pipeline: String
    @Option(help: "Also write the stage DAG as Graphviz dot to this file.") var dot: String?

    func run() throws {
        try guarded {
            let plan = try Plan(try ManifestParser.load(path: pipeline))
            var counts: [String: Int] = [:]
            var slideLines: [String] = []
            for (name, spec) in plan.manifest.datasets.sorted(by: { $0.key < $1.key }) where spec.slides != nil {
                // Every slide's header and tissue before any heavy work.
                let slides = try DatasetLoader.slides(spec)
                counts[name] = slides.map(\.grid.tiles.count).reduce(0, +)
                for s in slides {
                    let slide = s.slide
                    let mpp = slide.mpp.map { String(format: "%.4g µm/px", ($0.x + $0.y) / 2) } ?? "no mpp"
                    slideLines.append("  slide \(s.path): \(slide.vendor), \(slide.width)x\(slide.height), \(slide.levels.count) levels, \(mpp), "
                                      + String(format: "%.1f%% tissue in %d pieces, %d tiles", 100 * s.grid.mask.tissueFraction,
                                               s.grid.mask.pieces.count, s.grid.tiles.count))
                    if s.grid.scale < 1 {
                        note("warning: \(s.path): the slide (\(mpp)) is coarser than the tiles dataset '\(name)' asks for; tiles are upsampled")
                    }
                    if s.grid.tiles.isEmpty { note("warning: \(s.path): no tile has enough tissue") }
                }
            }
            for (name, spec) in plan.manifest.datasets where spec.slides == nil {
                counts[name] = try DatasetLoader.load(spec).count
                if counts[name] == 0 { throw PipelineError("\(plan.manifest.location("datasets.\(name)")): dataset '\(name)' has no images (\(spec.origin))") }
            }
            for spec in plan.manifest.models.values { _ = try Runner.loadModelForValidation(spec, kernels: .best) }
            for w in plan.warnings { note("warning: \(w)") }
            print(plan.describe(itemCounts: counts))
            for line in slideLines { print(line) }
            if let dot { try Data(plan.dot.utf8).write(to: URL(fileURLWithPath: dot)) }
            print("ok")
        }
    }
}

struct ReportCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "report", abstract: "Writes the HTML report of a run from the store.")

    @Option(help: "SQLite database file.") var db: String
    @Option(help: "Output folder.") var out: String
    @Option(name: .customLong("run"), help: "Run id (default: the latest run).") var runID: Int64?
    @Option(help: "Explainer for the doctor's pages (default: the report stage's doctor_explainer, else the best at the pointing game).")
    var doctorExplainer: String?
    @Option(help: "Folder of Mustache templates overriding the built-in ones (index, gallery, item, doctor .mustache).")
    var templates: String?
    @Option(help: "Items per gallery page (default: the report stage's page_size, else 100).") var pageSize: Int?
    @Flag(help: "Write into a non-empty folder that holds no Candela report (files Candela did not write are never deleted).")
    var force = false

    func run() throws {
        try guarded {
            guard FileManager.default.fileExists(atPath: db) else { throw StoreError("\(db): no such database") }
            let store = try Store(path: db)
            guard let run = try runID.flatMap({ id in try store.runs().first { $0.id == id } }) ?? store.runs().last, let id = run.id else {
                throw StoreError(runID.map { "\(db): no run \($0)" } ?? "\(db): the store has no runs")
            }
            // Method cards and report settings from the run's manifest, when it is still readable.
            let manifest = FileManager.default.fileExists(atPath: run.manifestPath) ? try? ManifestParser.load(path: run.manifestPath) : nil
            var options = RunFinisher.reportOptions(manifest?.stages.first { $0.kind == .report })
            if let pageSize { options.pageSize = max(1, pageSize) }
            if let doctorExplainer { options.doctorExplainer = doctorExplainer }
            if let templates { options.templateDirectory = templates }
            options.force = force
            options.log = { FileHandle.standardError.write(Data(($0 + "\n").utf8)) }
            let cards = RunFinisher.cards(for: Array(manifest?.explainers.values ?? [:].values))
            print("report: \(try ReportWriter(store: store, runID: id, directory: out, cards: cards, options: options).write())")
        }
    }
}

struct Runs: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Lists the runs in a store.")

    @Option(help: "SQLite database file.") var db: String = "candela.sqlite"

    func run() throws {
        try guarded {
            guard FileManager.default.fileExists(atPath: db) else { throw StoreError("\(db): no such database") }
            let store = try Store(path: db)
            print("id  pipeline              started               finished              status       items  failures")
            for r in try store.runs() {
                guard let id = r.id else { continue }
                let items = try store.items(run: id).count, failures = try store.failures(run: id).count
                print([String(id).padding(toLength: 3, withPad: " ", startingAt: 0), r.pipeline.padding(toLength: 21, withPad: " ", startingAt: 0),
                       r.startedAt.padding(toLength: 21, withPad: " ", startingAt: 0),
                       (r.finishedAt ?? "-").padding(toLength: 21, withPad: " ", startingAt: 0),
                       r.status.padding(toLength: 12, withPad: " ", startingAt: 0),
                       String(items).padding(toLength: 6, withPad: " ", startingAt: 0), String(failures)].joined(separator: " "))
            }
        }
    }
}

struct Export: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Exports a run's predictions and metrics as CSV (one row per item, model and explainer), its SpRAy clusters, or its slides as QuPath GeoJSON.",
        discussion: """
            Examples:
              candela export --db audit.sqlite --out run.csv
              candela export --db a.sqlite --format jsonl --arrays maps/ --out r.jsonl
              candela export --db audit.sqlite --table clusters --out clusters.csv
              candela export --db slides.sqlite --format geojson --out qupath/

            --format geojson writes, into the folder --out, one QuPath-readable FeatureCollection per slide in level-0 \
            pixels: tissue pieces as annotations classified by their verdict, tiles as detections classified by their \
            prediction, with the probability of every class and each explainer's mean relevance as measurements \
            (docs/slides.md).
            """)

    @Option(help: "SQLite database file.") var db: String = "candela.sqlite"
    @Option(name: .customLong("run"), help: "Run id (default: the latest run).") var runID: Int64?
    @Option(help: "Output format: csv, jsonl (one JSON object a line), or geojson (slides, for QuPath).") var format: String = "csv"
    @Option(help: "csv, jsonl: also write each heatmap as FOLDER/<item>-<model>-<explainer>.npy ([0,1] float32, model-input size) and name it in an 'array' column.")
    var arrays: String?
    @Option(help: "Output file (default: standard output); for geojson, the output folder.") var out: String?
    @Option(help: "geojson: the model whose predictions classify tiles and pieces (default: the first by name).") var model: String?
    @Option(help: "csv: the table, heatmaps (one row per item, model and explainer) or clusters (SpRAy: path,class,explainer,cluster,medoid).")
    var table: String = "heatmaps"

    /// RFC 4180 quoting: fields with commas, quotes or line breaks are quoted, quotes doubled.
    static func field(_ s: String) -> String {
        s.contains(where: { $0 == "," || $0 == "\"" || $0.isNewline })
            ? "\"" + s.replacingOccurrences(of: "\"", with: "\"\"") + "\"" : s
    }

    func run() throws {
        try guarded {
            guard ["csv", "jsonl", "geojson"].contains(format) else { throw ValidationError("--format: csv, jsonl or geojson, got '\(format)'") }
            guard FileManager.default.fileExists(atPath: db) else { throw StoreError("\(db): no such database") }
            let store = try Store(path: db)
            guard let id = try runID ?? store.runs().last?.id else { throw StoreError("\(db): the store has no runs") }
            if format == "geojson" {
                guard let out else { throw ValidationError("--format geojson writes one file per slide: give --out FOLDER") }
                for file in try QuPathExport.write(store: store, runID: id, directory: out, model: model) { print(file) }
                return
            }
            guard ["heatmaps", "clusters"].contains(table) else { throw ValidationError("--table: heatmaps or clusters, got '\(table)'") }
            let models = Dictionary(try store.models().map { ($0.hash, $0.name) }, uniquingKeysWith: { a, _ in a })
            if table == "clusters" {
                guard arrays == nil, format != "geojson" else {
                    throw ValidationError("--table clusters writes csv or jsonl; --arrays and geojson apply to the heatmaps table")
                }
                // SpRAy: one row per clustered heatmap; class by name where the model lists it.
                let rows = try store.clusters(run: id)
                guard !rows.isEmpty else { throw StoreError("\(db): run \(id) has no SpRAy clusters (add a stage of kind spray)") }
                let paths = Dictionary(try store.items(run: id).compactMap { i in i.id.map { ($0, i.path) } }, uniquingKeysWith: { a, _ in a })
                let classes = Dictionary(try store.models().map { ($0.hash, $0.classes) }, uniquingKeysWith: { a, _ in a })
                let flagged = Set(try store.clusterSummaries(run: id).filter(\.flagged).map { "\($0.name) \($0.modelHash) \($0.explainer) \($0.classIndex) \($0.cluster)" })
                var lines = format == "jsonl" ? [] : ["path,class,explainer,cluster,medoid,model,stage,flagged"]
                for r in rows {
                    let names = classes[r.modelHash] ?? []
                    let cls = r.classIndex < names.count ? names[r.classIndex] : String(r.classIndex)
                    let isFlagged = flagged.contains("\(r.name) \(r.modelHash) \(r.explainer) \(r.classIndex) \(r.cluster)")
                    if format == "jsonl" {
                        var line = ""
                        JSONValue.object([
                            ("class", .string(cls)), ("cluster", .int(r.cluster)), ("explainer", .string(r.explainer)),
                            ("flagged", .bool(isFlagged)), ("medoid", .bool(r.medoid)), ("model", .string(models[r.modelHash] ?? r.modelHash)),
                            ("path", .string(paths[r.itemID] ?? "")), ("stage", .string(r.name)), ("x", .number(r.x)), ("y", .number(r.y)),
                        ]).write(into: &line)
                        lines.append(line)
                        continue
                    }
                    lines.append([Export.cell(paths[r.itemID] ?? ""), Export.cell(cls), Export.cell(r.explainer), String(r.cluster), r.medoid ? "1" : "0",
                                  models[r.modelHash] ?? r.modelHash, r.name, isFlagged ? "1" : "0"].map(Export.field).joined(separator: ","))
                }
                let text = lines.joined(separator: "\n") + "\n"
                if let out { try Data(text.utf8).write(to: URL(fileURLWithPath: out)) } else { print(text, terminator: "") }
                return
            }
            // One row per heatmap, streamed from SQL: the item, the model that made it (its
            // prediction), the explainer and its metrics; with --arrays, the heatmap as .npy.
            let metricNames = try store.metricNames(run: id)
            let writer = try StreamWriter(path: out)
            if let arrays {
                try FileManager.default.createDirectory(atPath: arrays, withIntermediateDirectories: true)
            }
            let header = ["run", "path", "label", "predicted", "probability", "explainer", "method", "target", "seconds", "dataset", "model"]
                + metricNames + (arrays == nil ? [] : ["array"])
            if format == "csv" { try writer.write(header.joined(separator: ",") + "\n") }
            var rows = 0
            try store.exportRows(run: id, heatmaps: arrays != nil) { r in
                var array: String?
                if let arrays, let h = r.heatmap {
                    let name = "\(r.itemID)-\(r.modelHash.prefix(12))-\(Export.fileSafe(r.explainer)).npy"
                    try NPY.write(Tensor(shape: [h.height, h.width], data: h.values), to: "\(arrays)/\(name)")
                    array = name
                }
                let model = r.modelName ?? r.modelHash
                if format == "jsonl" {
                    // Keys sorted, as JSONSerialization's .sortedKeys wrote them (written by hand: 8× faster).
                    var object: [(String, JSONValue)] = []
                    if let array { object.append(("array", .string(array))) }
                    object += [
                        ("dataset", .string(r.dataset)), ("explainer", .string(r.explainer)), ("label", .optional(r.label)),
                        ("method", .string(r.method)),
                        ("metrics", .object(r.metrics.sorted { $0.key < $1.key }.map { ($0.key, $0.value.map(JSONValue.number) ?? .null) })),
                        ("model", .string(model)), ("path", .string(r.path)), ("predicted", .optional(r.predicted)),
                        ("probability", r.probability.map(JSONValue.number) ?? .null), ("run", .int(Int(id))),
                        ("seconds", .number(r.seconds)), ("target", .int(r.target)),
                    ]
                    var line = ""
                    JSONValue.object(object).write(into: &line)
                    try writer.write(line + "\n")
                } else {
                    let values = metricNames.map { name in (r.metrics[name] ?? nil).map { "\($0)" } ?? "" }
                    // Text cells are made safe for spreadsheets; numbers are written as they are.
                    let cells = [String(id), Export.cell(r.path), Export.cell(r.label ?? ""), Export.cell(r.predicted ?? ""),
                                 r.probability.map { String(format: "%.6f", $0) } ?? "", Export.cell(r.explainer), Export.cell(r.method),
                                 String(r.target), String(format: "%.4f", r.seconds), Export.cell(r.dataset), Export.cell(model)]
                        + values + (arrays == nil ? [] : [array ?? ""])
                    try writer.write(cells.map(Export.field).joined(separator: ",") + "\n")
                }
                rows += 1
            }
            try writer.close()
            if out != nil { note("exported \(rows) rows\(arrays.map { " and their heatmaps into \($0)" } ?? "")") }
        }
    }

    /// OWASP's defence against CSV injection: a text cell that a spreadsheet would read as a
    /// formula (starting with =, +, -, @, a tab or a carriage return) gets a leading apostrophe.
    static func cell(_ s: String) -> String {
        guard let first = s.unicodeScalars.first, "=+-@\t\r".unicodeScalars.contains(first) else { return s }
        return "'" + s
    }

    /// An explainer name as part of a file name.
    static func fileSafe(_ s: String) -> String {
        String(s.map { $0.isLetter || $0.isNumber || "+-_.".contains($0) ? $0 : "_" })
    }
}

/// Text written to a file (or standard output) through a 1 MB buffer.
final class StreamWriter {
    private let handle: FileHandle
    private let owned: Bool
    private var buffer = Data()

    init(path: String?) throws {
        if let path {
            guard FileManager.default.createFile(atPath: path, contents: nil), let h = FileHandle(forWritingAtPath: path) else {
                throw ValidationError("\(path): cannot write")
            }
            (handle, owned) = (h, true)
        } else {
            (handle, owned) = (FileHandle.standardOutput, false)
        }
        buffer.reserveCapacity(1 << 20)
    }

    func write(_ text: String) throws {
        buffer.append(contentsOf: text.utf8)
        if buffer.count >= 1 << 20 { try flush() }
    }

    func flush() throws {
        try handle.write(contentsOf: buffer)
        buffer.removeAll(keepingCapacity: true)
    }

    func close() throws {
        try flush()
        if owned { try handle.close() }
    }
}

/// A one-line progress bar on a terminal (done/total, rate, ETA); plain log lines otherwise.
final class ProgressBar: @unchecked Sendable {
    let isTerminal = isatty(STDERR_FILENO) != 0
    private let start = Date()
    private let lock = NSLock()
    private var shown = false

    func update(done: Int, total: Int) {
        lock.lock(); defer { lock.unlock() }
        let elapsed = Date().timeIntervalSince(start)
        let rate = elapsed > 0 ? Double(done) / elapsed : 0
        let eta = rate > 0 ? Double(total - done) / rate : 0
        let width = 30, filled = total > 0 ? width * done / total : width
        let bar = String(repeating: "#", count: filled) + String(repeating: ".", count: width - filled)
        let line = String(format: "\r[%@] %d/%d  %.1f items/s  ETA %.0f s ", bar, done, total, rate, eta)
        FileHandle.standardError.write(Data(line.utf8))
        shown = true
    }

    /// `update` as a closure for the runner.
    var updater: @Sendable (Int, Int) -> Void { { [self] done, total in update(done: done, total: total) } }

    /// A log function that first ends the bar's line.
    var logger: @Sendable (String) -> Void { { [self] line in clear(); note(line) } }

    /// Ends the bar's line so that a log line starts clean.
    func clear() {
        lock.lock(); defer { lock.unlock() }
        if shown { FileHandle.standardError.write(Data("\n".utf8)); shown = false }
    }
}

/// A JSON value written by hand for `export --format jsonl`, heatmaps and clusters (RFC 8259): strings escaped (quote,
/// backslash, control characters; "/" and non-ASCII as they are), numbers in Swift's shortest
/// round-trip form, non-finite numbers as null, objects in the order given.
enum JSONValue {
    case string(String), number(Double), int(Int), bool(Bool), null
    case object([(String, JSONValue)])

    static func optional(_ s: String?) -> JSONValue { s.map(JSONValue.string) ?? .null }

    func write(into out: inout String) {
        switch self {
        case .string(let s): JSONValue.quote(s, into: &out)
        case .number(let d): out += d.isFinite ? "\(d)" : "null"
        case .int(let i): out += String(i)
        case .bool(let b): out += b ? "true" : "false"
        case .null: out += "null"
        case .object(let fields):
            out += "{"
            for (i, (key, value)) in fields.enumerated() {
                if i > 0 { out += "," }
                JSONValue.quote(key, into: &out)
                out += ":"
                value.write(into: &out)
            }
            out += "}"
        }
    }

    static func quote(_ s: String, into out: inout String) {
        out += "\""
        for u in s.unicodeScalars {
            switch u {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case _ where u.value < 0x20: out += String(format: "\\u%04x", u.value)
            default: out.unicodeScalars.append(u)
            }
        }
        out += "\""
    }
}
