import Dispatch
import Engine
import Explainers
import Foundation
import Imaging
import Report
import Store
import Tensors

/// How `candela run` was asked to run.
public struct RunOptions: Sendable {
    public var jobs: Int
    public var database: String
    /// Overrides the report stage's `out`.
    public var reportDirectory: String?
    /// Catch SIGINT: finish the items in flight, commit them, mark the run interrupted.
    public var handleInterrupts: Bool
    /// Continue the latest unfinished run of the same manifest and shard (killed or interrupted)
    /// instead of starting a new one: its committed items are kept, the rest are processed.
    public var resume: Bool
    /// Process only this shard of the dataset's items.
    public var shard: Shard?
    /// Write the report into a non-empty folder that holds no Candela report (`ReportFolder`).
    public var forceReport: Bool
    /// Wall-clock seconds one item may take (`Deadline`); past it the item is a failure row.
    public var itemTimeout: Double?

    public init(jobs: Int = 1, database: String = "candela.sqlite", reportDirectory: String? = nil, handleInterrupts: Bool = false,
                resume: Bool = false, shard: Shard? = nil, forceReport: Bool = false, itemTimeout: Double? = nil) {
        self.forceReport = forceReport
        self.itemTimeout = itemTimeout
        self.jobs = jobs
        self.database = database
        self.reportDirectory = reportDirectory
        self.handleInterrupts = handleInterrupts
        self.resume = resume
        self.shard = shard
    }
}

/// Shard K of N (1-based): the items at positions p with p mod N = K − 1 in dataset order. Every
/// item belongs to exactly one shard, and the same dataset always splits the same way.
public struct Shard: Sendable, Equatable, CustomStringConvertible {
    public let index: Int
    public let count: Int

    public init(index: Int, count: Int) throws {
        guard count >= 1, (1...count).contains(index) else {
            throw PipelineError("shard \(index)/\(count): K must be between 1 and N")
        }
        self.index = index
        self.count = count
    }

    /// Parses "K/N".
    public init(parsing text: String) throws {
        let parts = text.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count == 2, let k = Int(parts[0]), let n = Int(parts[1]) else {
            throw PipelineError("--shard expects K/N (e.g. 2/3), got '\(text)'")
        }
        try self.init(index: k, count: n)
    }

    public var description: String { "\(index)/\(count)" }

    public func select<T>(_ items: [T]) -> [T] {
        items.enumerated().filter { $0.offset % count == index - 1 }.map(\.element)
    }
}

/// What a run did.
public struct RunSummary: Sendable {
    public var runID: Int64
    public var items: Int
    public var failures: Int
    /// "complete", "partial" (some items failed) or "interrupted" (SIGINT; rerun to finish: done items are reused).
    public var status: String
    public var reportIndex: String?
    /// Per explainer: (hits, counted items) of the pointing game.
    public var pointingGame: [String: (hits: Int, total: Int)]
    public var seconds: Double
    /// Heatmaps computed in this run, and heatmaps reused from the store by cache key.
    public var computed: Int
    public var reused: Int
    /// Gate verdicts (empty when the manifest has no gates or the run was interrupted).
    public var gates: [GateResultRecord] = []
    /// Items already committed by the resumed run and skipped here.
    public var resumed: Int = 0
}

/// Runs a plan: every item through the per-item stages in DAG order, items in parallel on
/// Dispatch (`jobs` workers pulling from a shared cursor), then the report stage.
///
/// One forward pass per item is shared by the prediction and every explainer. Each item's
/// rows are written in one transaction, so a killed run never leaves half an item.
public final class Runner: @unchecked Sendable {
    let plan: Plan
    let options: RunOptions
    let log: @Sendable (String) -> Void
    /// Called after each item with (done, total); when nil, a log line every 16 items instead.
    let progress: (@Sendable (Int, Int) -> Void)?
    /// Heatmaps computed moments ago whose batch may not be committed yet: the same image twice
    /// in a dataset is still explained once.
    let recent = RecentAttributions(capacity: 256)

    public init(plan: Plan, options: RunOptions, log: @escaping @Sendable (String) -> Void,
                progress: (@Sendable (Int, Int) -> Void)? = nil) {
        self.plan = plan
        self.options = options
        self.log = log
        self.progress = progress
    }

    /// A model ready to run: loaded, hashed, checked against its class list.
    struct LoadedModel: @unchecked Sendable {
        let spec: ModelSpec
        let model: Model
        let hash: String
    }

    static func loadModel(_ spec: ModelSpec) throws -> LoadedModel {
        let model = try Model(path: spec.onnx)
        let p = spec.preprocessing
        try Limits.checkShape([1, 3, p.height, p.width], "\(spec.onnx): model '\(spec.name)' input at its preprocessing size")
        let probe = try model.forward(Tensor(shape: [1, 3, p.height, p.width]))
        guard probe.rank == 2, probe.shape[1] == spec.classes.count else {
            throw PipelineError("\(spec.onnx): model '\(spec.name)' outputs shape \(probe.shape) but the manifest lists \(spec.classes.count) classes")
        }
        return LoadedModel(spec: spec, model: model, hash: try modelHash(model))
    }

    /// The model's identity for cache keys: the file's SHA-256, and with external data the
    /// SHA-256 of each data file as well (named relative to the model's folder), so that new
    /// weights in a side file never serve old heatmaps.
    static func modelHash(_ model: Model) throws -> String {
        let fileHash = try Hashing.sha256(file: model.path)
        guard !model.dataFiles.isEmpty else { return fileHash }
        let folder = URL(fileURLWithPath: model.path).deletingLastPathComponent().resolvingSymlinksInPath().path + "/"
        var parts = [fileHash]
        for file in model.dataFiles {
            let name = file.hasPrefix(folder) ? String(file.dropFirst(folder.count)) : file
            parts.append("\(name)=\(try Hashing.sha256(file: file))")
        }
        return Hashing.sha256(parts.joined(separator: "\n"))
    }

    /// An explainer's parameters for its cache key: the canonical JSON of the values, and for
    /// every value that names an existing file (an integrated-gradients baseline, LIME segments)
    /// the file's SHA-256, so that a changed file is a new key.
    static func parameterKey(_ parameters: [String: String]) throws -> String {
        var keyed = parameters
        for (name, value) in parameters {
            var isDirectory: ObjCBool = false
            if FileManager.default.fileExists(atPath: value, isDirectory: &isDirectory), !isDirectory.boolValue {
                keyed[name + "#sha256"] = try Hashing.sha256(file: value)
            }
        }
        return canonicalJSON(keyed)
    }

    public func run() throws -> RunSummary {
        let start = Date()
        let manifest = plan.manifest
        guard let datasetName = plan.runDataset, let dataset = manifest.datasets[datasetName] else {
            throw PipelineError("\(manifest.file): no dataset")
        }
        guard let modelName = plan.runModel, let modelSpec = manifest.models[modelName] else {
            throw PipelineError("\(manifest.file): no model")
        }
        for w in plan.warnings { log("warning: \(w)") }
        // The report folder is checked before any item runs: a folder Candela may not write is a
        // fatal error, not a failure found after an hour of work.
        // `--report DIR` writes a report even when the manifest has no report stage.
        let reportStage = plan.order.first(where: { $0.kind == .report })
        let reportDirectory = options.reportDirectory ?? reportStage.map { stage in
            stage.out ?? URL(fileURLWithPath: manifest.file).deletingLastPathComponent().appendingPathComponent("reports/\(manifest.pipeline)").path
        }
        if let reportDirectory { try ReportFolder(reportDirectory).prepare(force: options.forceReport) }
        // One writer per store, from here to the end of the run (`StoreLock`).
        try FileManager.default.createDirectory(atPath: URL(fileURLWithPath: options.database).deletingLastPathComponent().path,
                                                withIntermediateDirectories: true)
        let writerLock = try StoreLock(store: options.database)
        defer { withExtendedLifetime(writerLock) {} }
        let loaded = try Runner.loadModel(modelSpec)
        let allItems = try DatasetLoader.load(dataset)
        guard !allItems.isEmpty else { throw PipelineError("\(manifest.file): dataset '\(datasetName)' has no images (\(dataset.origin))") }
        let items = options.shard?.select(allItems) ?? allItems
        let explainStages = plan.order.filter { $0.kind == .explain }
        let wantedMetrics = Set(plan.order.filter { $0.kind == .evaluate }.flatMap(\.metrics))
        // The randomization check's cascade (top layer, top two, ..., all re-drawn), built once per run.
        let randomized = wantedMetrics.contains("randomization") ? try Evaluation.randomizationCascade(loaded.model) : nil
        var jobsList: [(stage: StageSpec, spec: ExplainerSpec, explainer: any Explainer)] = []
        for stage in explainStages {
            let names = stage.explainers.isEmpty ? manifest.explainers.keys.sorted() : stage.explainers
            for n in names {
                let spec = manifest.explainers[n]!
                var params = spec.parameters
                if ExplainerRegistry.usesLayer(spec.method), params["layer"] == nil, let l = modelSpec.camLayer { params["layer"] = l }
                jobsList.append((stage, spec, try ExplainerRegistry.make(method: spec.method, parameters: params)))
            }
        }
        let explainers = jobsList

        let store = try Store(path: options.database)
        let manifestHash = try Hashing.sha256(file: manifest.file)
        let runParameters = Runner.canonicalJSON(options.shard.map { ["shard": $0.description] } ?? [:])
        let runID: Int64
        var done = Set<String>()
        if options.resume, let id = try store.resumableRun(pipeline: manifest.pipeline, manifestHash: manifestHash, parameters: runParameters) {
            runID = id
            try store.reopenRun(id)
            done = try store.itemPaths(run: id)
            log("resuming run \(id): \(done.count) of \(items.count) items already committed")
        } else {
            if options.resume { log("nothing to resume for this manifest\(options.shard.map { " and shard \($0)" } ?? ""); starting a new run") }
            runID = try store.insert(RunRecord(pipeline: manifest.pipeline, manifestPath: manifest.file, manifestHash: manifestHash,
                                               candelaVersion: CandelaVersion.release, startedAt: Runner.timestamp(start),
                                               status: "running", jobs: options.jobs, parameters: runParameters))
        }
        let pending = items.filter { !done.contains($0.path) }
        let encoder = JSONEncoder()
        encoder.outputFormatting = .sortedKeys
        try store.upsert(ModelRecord(hash: loaded.hash, name: modelSpec.name, path: modelSpec.onnx, classes: modelSpec.classes,
                                     preprocessing: String(decoding: try encoder.encode(modelSpec.preprocessing), as: UTF8.self)))
        log("run \(runID): \(pending.count) items from '\(datasetName)'\(options.shard.map { " (shard \($0) of \(allItems.count))" } ?? ""), "
            + "model '\(modelName)', \(explainers.count) explainers, \(options.jobs) jobs")

        let jobs = max(1, options.jobs)
        // Parallelism comes from items, not from inside GEMM: N jobs use N cores, one each.
        BLAS.setThreads(1)
        let state = RunState()
        // Parameter keys once per run: a file a parameter names is hashed once, not per item.
        let perItem = try explainers.map { ($0.spec, $0.explainer, $0.stage.target, try Runner.parameterKey($0.explainer.parameters)) }
        var interrupt: DispatchSourceSignal?
        if options.handleInterrupts {
            signal(SIGINT, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: SIGINT, queue: .global())
            source.setEventHandler { [log] in
                state.cancel()
                log("interrupted: finishing the items in flight, then stopping (rerun to continue)")
            }
            source.resume()
            interrupt = source
        }
        defer {
            interrupt?.cancel()
            if options.handleInterrupts { signal(SIGINT, SIG_DFL) }
        }
        let writer = ItemWriter(store: store, log: log)
        DispatchQueue.concurrentPerform(iterations: jobs) { _ in
            while let index = state.next(limit: pending.count) {
                let item = pending[index]
                do {
                    let outcome = try Deadline.with(seconds: options.itemTimeout, label: item.path) {
                        try process(item, dataset: datasetName, runID: runID, model: loaded, explainers: perItem,
                                    metrics: wantedMetrics, randomized: randomized, store: store)
                    }
                    if let rows = outcome.rows { writer.submit(rows) }
                    state.record(outcome)
                } catch {
                    writer.submit(failure: FailureRecord(runID: runID, itemPath: item.path, stage: "item", message: "\(error)"))
                    log("failed: \(error)")
                }
                let done = state.finished()
                if let progress {
                    progress(done, pending.count)
                } else if done % 16 == 0 || done == pending.count {
                    log("\(done)/\(pending.count) items")
                }
            }
        }
        try writer.finish()
        if state.isCancelled {
            try store.finishRun(runID, status: "interrupted", at: Runner.timestamp(Date()))
            return RunSummary(runID: runID, items: items.count, failures: try store.failures(run: runID).count, status: "interrupted",
                              reportIndex: nil, pointingGame: state.pointing, seconds: Date().timeIntervalSince(start),
                              computed: state.computed, reused: state.reused, resumed: done.count)
        }
        // The run's verdict is recorded before the report is written, so the report shows it.
        var failures = try store.failures(run: runID).count
        try store.finishRun(runID, status: failures > 0 ? "partial" : "complete", at: Runner.timestamp(Date()))
        let gates = try Gates.evaluate(manifest.gates, store: store, runID: runID)
        try store.replaceGateResults(run: runID, gates)
        var reportIndex: String?
        if let dir = reportDirectory {
            do {
                var reportOptions = Runner.reportOptions(reportStage)
                reportOptions.force = options.forceReport
                reportIndex = try ReportWriter(store: store, runID: runID, directory: dir,
                                               cards: Runner.cards(for: explainers.map(\.spec)),
                                               options: reportOptions).write()
            } catch {
                try store.insert(FailureRecord(runID: runID, itemPath: dir, stage: reportStage?.name ?? "report", message: "\(error)"))
                failures += 1
                try store.finishRun(runID, status: "partial", at: Runner.timestamp(Date()))
                log("report failed: \(error)")
            }
        }
        return RunSummary(runID: runID, items: items.count, failures: failures, status: failures > 0 ? "partial" : "complete",
                          reportIndex: reportIndex, pointingGame: state.pointing, seconds: Date().timeIntervalSince(start),
                          computed: state.computed, reused: state.reused, gates: gates, resumed: done.count)
    }

    /// The report options a report stage asks for.
    public static func reportOptions(_ stage: StageSpec?) -> ReportOptions {
        ReportOptions(pageSize: stage?.pageSize ?? 100, doctorExplainer: stage?.doctorExplainer, templateDirectory: stage?.templates)
    }

    public static func cards(for specs: [ExplainerSpec]) -> [String: ReportCard] {
        var out: [String: ReportCard] = [:]
        for s in specs {
            if let c = ExplainerRegistry.card(s.method) {
                out[s.name] = ReportCard(title: c.title, meaning: c.meaning, cost: c.cost, limits: c.limits)
            }
        }
        return out
    }

    /// The outcome of one item, for the run summary, with the rows to store.
    struct ItemOutcome {
        var rows: ItemRows?
        var pointing: [String: Bool] = [:]
        /// Heatmaps computed, and heatmaps reused from the store by cache key.
        var computed = 0
        var reused = 0
    }

    /// The cache key of one heatmap (DESIGN.md §2): model, image bytes, preprocessing, method,
    /// parameters, target and engine version.
    static func cacheKey(model: LoadedModel, contentHash: String, method: String, parameters: String, target: Int) -> String {
        let p = model.spec.preprocessing
        let preprocessing = canonicalJSON(["w": "\(p.width)", "h": "\(p.height)", "scale": "\(p.scale)", "mean": "\(p.mean)",
                                           "std": "\(p.std)", "order": p.channelOrder.rawValue])
        return Hashing.sha256([model.hash, contentHash, preprocessing, method, parameters, "\(target)", CandelaVersion.engine]
            .joined(separator: "\n"))
    }

    /// Loads, predicts, explains and evaluates one item; writes its rows in one transaction.
    ///
    /// Work whose result is already in the store is not done again: a prediction is reused when
    /// the same model saw the same image bytes, a heatmap when its cache key is stored. When
    /// everything is cached the image is not even decoded.
    func process(_ item: DatasetItem, dataset: String, runID: Int64, model: LoadedModel,
                 explainers: [(ExplainerSpec, any Explainer, TargetSpec, String)], metrics wanted: Set<String>, randomized: [Model]?,
                 store: Store) throws -> ItemOutcome {
        guard let bytes = FileManager.default.contents(atPath: item.path) else {
            throw PipelineError("\(item.path): cannot read image")
        }
        let contentHash = Hashing.sha256(bytes)
        let p = model.spec.preprocessing

        // The forward pass, computed at most once and only when something needs it.
        var decoded: (image: Image, x: Tensor)?
        var pass: ForwardPass?
        func input() throws -> (image: Image, x: Tensor) {
            if let decoded { return decoded }
            let image: Image
            do {
                image = try Codecs.decode(bytes)
            } catch let e as ImagingError {
                throw ImagingError("\(item.path): \(e.description)")
            }
            decoded = (image, p.apply(image))
            return decoded!
        }
        // The image in RGB at the model's resolution, for the methods that work in colour.
        var rgb: [Float]?
        func modelRGB() throws -> [Float] {
            if let rgb { return rgb }
            rgb = p.resizedRGB(try input().image)
            return rgb!
        }
        func forward() throws -> ForwardPass {
            if let pass { return pass }
            let taps = try Array(Set(explainers.flatMap { try $0.1.taps(for: model.model) }))
            pass = try model.model.run([model.model.inputName: try input().x], taps: taps)
            return pass!
        }

        let prediction: PredictionRecord
        let size: (width: Int, height: Int)
        if let cached = try store.cachedPrediction(contentHash: contentHash, modelHash: model.hash) {
            prediction = cached.prediction
            size = (cached.width, cached.height)
        } else {
            let logits = try forward().outputs[0].data
            let nonFinite = logits.filter { !$0.isFinite }.count
            guard nonFinite == 0 else {
                throw PipelineError("\(item.path): the model's output '\(model.model.graph.outputs[0])' has \(nonFinite) non-finite "
                                    + "values (NaN or Inf) of \(logits.count); no prediction is stored for it")
            }
            let probabilities = softmax(Array(logits))
            let top = probabilities.indices.max { probabilities[$0] < probabilities[$1] }!
            prediction = PredictionRecord(itemID: 0, modelHash: model.hash, classIndex: top, className: model.spec.classes[top],
                                          probability: Double(probabilities[top]), probabilities: probabilities.map(Double.init))
            size = (try input().image.width, try input().image.height)
        }

        /// A binary mask at the model input's size (resized bilinearly, then thresholded at half).
        func binaryMask(_ path: String) throws -> [Float] {
            let m = try Codecs.decode(path: path, as: .gray)
            return Resize.bilinear(m.planarFloats(), channels: 1, height: m.height, width: m.width, toHeight: p.height, toWidth: p.width)
                .map { $0 >= 127.5 ? 1 : 0 }
        }
        let mask = try (wanted.contains("pointing_game") || wanted.contains("energy_pointing_game") ? item.mask : nil).map(binaryMask)
        let tissue = try (wanted.contains("outside_tissue") ? item.tissueMask : nil).map(binaryMask)
        // The model input of a black pixel, per channel: deletion's baseline, insertion's blur border.
        let black = (0..<3).map { c in (0 - p.mean[c]) / p.std[c] }
        var heatmaps: [String: Heatmap] = [:]
        var outcome = ItemOutcome()
        var attributions: [AttributionRecord] = []
        var metrics: [(String, String, Double?)] = []
        for (spec, explainer, targetSpec, parameterKey) in explainers {
            let target: Int
            switch targetSpec {
            case .predicted: target = prediction.classIndex
            case .index(let i): target = i
            case .label:
                guard let label = item.label, let i = model.spec.classes.firstIndex(of: label) else {
                    throw PipelineError("\(item.path): label '\(item.label ?? "")' is not one of the model's classes \(model.spec.classes)")
                }
                target = i
            }
            let params = Runner.canonicalJSON(explainer.parameters)
            let key = Runner.cacheKey(model: model, contentHash: contentHash, method: spec.method, parameters: parameterKey, target: target)
            var record: AttributionRecord
            var raw: Tensor?
            if var cached = try recent.attribution(cacheKey: key) ?? store.attribution(cacheKey: key) {
                cached.explainer = spec.name
                record = cached
                outcome.reused += 1
            } else {
                let t0 = Date()
                let attribution = try explainer.explain(ExplanationRequest(
                    model: model.model, input: try input().x, target: target, pass: try forward(),
                    image: try modelRGB()))
                raw = attribution.raw
                record = AttributionRecord(itemID: 0, modelHash: model.hash, explainer: spec.name, method: spec.method,
                                           parameters: params, target: target, cacheKey: key, rawShape: attribution.raw.shape,
                                           height: p.height, width: p.width,
                                           heatmap: attribution.heatmap(height: p.height, width: p.width).values,
                                           seconds: Date().timeIntervalSince(t0))
                outcome.computed += 1
                recent.insert(record.asStored)
            }
            attributions.append(record)
            let heatmap = Heatmap(width: record.width, height: record.height, values: record.heatmap)
            heatmaps[spec.name] = heatmap
            if let mask, wanted.contains("pointing_game") {
                for (name, value) in Evaluation.pointingGame(heatmap, mask: mask) {
                    metrics.append((spec.name, name, value))
                    if let value { outcome.pointing[name == "pointing_game" ? spec.name : "\(spec.name) (strict)"] = value >= 0.5 }
                }
            }
            if wanted.contains("energy_pointing_game") {
                metrics.append((spec.name, "energy_pointing_game", mask.flatMap { Evaluation.massInside(heatmap, region: $0) }))
            }
            if wanted.contains("outside_tissue") {
                metrics.append((spec.name, "outside_tissue", tissue.flatMap { Evaluation.outsideTissue(heatmap, tissue: $0) }))
            }
            // The costly metrics depend only on what the cache key covers: reuse stored values.
            func costly(_ name: String, _ compute: () throws -> Double?) throws -> Double? {
                if let cached = try store.cachedMetric(cacheKey: key, name: name) { return cached.value }
                return try compute()
            }
            let request = { ExplanationRequest(model: model.model, input: try input().x, target: target, pass: try forward(),
                                               image: try modelRGB()) }
            let faithfulness = Faithfulness()
            var curves: Faithfulness.Curves?
            func curvesOnce() throws -> Faithfulness.Curves {
                if let curves { return curves }
                curves = try faithfulness.curves(model: model.model, input: try input().x, target: target, heatmap: heatmap, black: black)
                return curves!
            }
            if wanted.contains("deletion_auc") {
                metrics.append((spec.name, "deletion_auc", try costly("deletion_auc") { try curvesOnce().deletionAUC }))
            }
            if wanted.contains("insertion_auc") {
                metrics.append((spec.name, "insertion_auc", try costly("insertion_auc") { try curvesOnce().insertionAUC }))
            }
            if let randomized, wanted.contains("randomization") {
                metrics.append((spec.name, "randomization", try costly("randomization") {
                    try Evaluation.randomization(explainer, request: try request(), heatmap: heatmap, cascade: randomized)
                }))
            }
            if wanted.contains("max_sensitivity") {
                metrics.append((spec.name, "max_sensitivity", try costly("max_sensitivity") {
                    let r = try request()
                    return try Evaluation.maxSensitivity(explainer, request: r, attribution: try raw ?? explainer.explain(r).raw)
                }))
            }
        }
        if wanted.contains("agreement") {
            for (name, value) in Evaluation.agreement(heatmaps) { metrics.append((name, "agreement", value)) }
        }
        outcome.rows = ItemRows(item: ItemRecord(runID: runID, dataset: dataset, path: item.path, label: item.label,
                                                 maskPath: item.mask, tissueMaskPath: item.tissueMask, contentHash: contentHash,
                                                 width: size.width, height: size.height),
                                prediction: prediction, attributions: attributions,
                                metrics: metrics.map { MetricRecord(itemID: 0, explainer: $0.0, name: $0.1, value: $0.2) })
        return outcome
    }

    static func canonicalJSON(_ d: [String: String]) -> String {
        let e = JSONEncoder()
        e.outputFormatting = .sortedKeys
        return String(decoding: (try? e.encode(d)) ?? Data(), as: UTF8.self)
    }

    static func timestamp(_ d: Date) -> String {
        ISO8601DateFormatter().string(from: d)
    }
}

/// Shared counters of the worker threads.
final class RunState: @unchecked Sendable {
    private let lock = NSLock()
    private var cursor = 0
    private var done = 0
    private(set) var pointing: [String: (hits: Int, total: Int)] = [:]

    private(set) var isCancelled = false

    /// Stops handing out items; the ones in flight finish and are committed.
    func cancel() {
        lock.lock(); defer { lock.unlock() }
        isCancelled = true
    }

    func next(limit: Int) -> Int? {
        lock.lock(); defer { lock.unlock() }
        guard cursor < limit, !isCancelled else { return nil }
        cursor += 1
        return cursor - 1
    }

    func finished() -> Int {
        lock.lock(); defer { lock.unlock() }
        done += 1
        return done
    }

    private(set) var computed = 0
    private(set) var reused = 0

    func record(_ o: Runner.ItemOutcome) {
        lock.lock(); defer { lock.unlock() }
        computed += o.computed
        reused += o.reused
        for (name, hit) in o.pointing {
            var p = pointing[name] ?? (0, 0)
            p.total += 1
            if hit { p.hits += 1 }
            pointing[name] = p
        }
    }
}

extension Runner {
    /// Loads a model and checks it against its manifest entry, as `candela validate` does.
    public static func loadModelForValidation(_ spec: ModelSpec) throws -> String {
        try loadModel(spec).hash
    }
}

/// One item's rows, written together (the item is the unit of commit).
struct ItemRows {
    var item: ItemRecord
    var prediction: PredictionRecord
    var attributions: [AttributionRecord]
    var metrics: [MetricRecord]
}

/// The store's single writer: workers hand it finished items and go on computing; it commits
/// them in batches (one transaction per batch of up to 16 items, or every half second), so
/// SQLite sees few commits and the workers never wait for the disk. A killed run loses at most
/// the last half second of computed items, never part of an item.
final class ItemWriter: @unchecked Sendable {
    private let store: Store
    private let log: @Sendable (String) -> Void
    private let queue = DispatchQueue(label: "candela.store-writer")
    private var pending: [ItemRows] = []
    private var failures: [FailureRecord] = []
    private var lastFlush = Date()
    private var error: Error?
    static let batchSize = 16
    static let interval: TimeInterval = 0.5

    init(store: Store, log: @escaping @Sendable (String) -> Void) {
        self.store = store
        self.log = log
    }

    func submit(_ rows: ItemRows) {
        queue.async { [self] in
            pending.append(rows)
            if pending.count >= ItemWriter.batchSize || Date().timeIntervalSince(lastFlush) >= ItemWriter.interval { flush() }
        }
    }

    func submit(failure: FailureRecord) {
        queue.async { [self] in
            failures.append(failure)
            flush()
        }
    }

    /// Commits what is pending and waits for the queue; rethrows the first write error.
    func finish() throws {
        try queue.sync {
            flush()
            if let error { throw error }
        }
    }

    /// On the queue: one transaction for every pending item and failure.
    private func flush() {
        lastFlush = Date()
        guard !pending.isEmpty || !failures.isEmpty else { return }
        let (items, failed) = (pending, failures)
        pending.removeAll()
        failures.removeAll()
        do {
            try store.transaction {
                for rows in items { try insert(rows) }
                for f in failed { try store.insert(f) }
            }
        } catch {
            // One bad item (say, a path listed twice) must not take its batch down: retry one
            // by one; an item that still fails becomes a failure row.
            for rows in items {
                do {
                    try store.transaction { try insert(rows) }
                } catch {
                    log("failed: \(rows.item.path): cannot store: \(error)")
                    record(FailureRecord(runID: rows.item.runID, itemPath: rows.item.path, stage: "store", message: "\(error)"))
                }
            }
            for f in failed { record(f) }
        }
    }

    private func insert(_ rows: ItemRows) throws {
        let itemID = try store.insert(rows.item)
        var prediction = rows.prediction
        prediction.itemID = itemID
        try store.insert(prediction)
        for var a in rows.attributions {
            a.itemID = itemID
            try store.insert(a)
        }
        for var m in rows.metrics {
            m.itemID = itemID
            try store.insert(m)
        }
    }

    private func record(_ failure: FailureRecord) {
        do {
            try store.insert(failure)
        } catch {
            log("store write failed: \(error)")
            if self.error == nil { self.error = error }
        }
    }
}

/// The last `capacity` heatmaps computed in this run, by cache key (the store's writer commits
/// in batches, so the store alone would miss them for up to half a second).
final class RecentAttributions: @unchecked Sendable {
    private let lock = NSLock()
    private var byKey: [String: AttributionRecord] = [:]
    private var order: [String] = []
    private let capacity: Int

    init(capacity: Int) { self.capacity = capacity }

    func attribution(cacheKey: String) -> AttributionRecord? {
        lock.lock(); defer { lock.unlock() }
        return byKey[cacheKey]
    }

    func insert(_ record: AttributionRecord) {
        lock.lock(); defer { lock.unlock() }
        if byKey.updateValue(record, forKey: record.cacheKey) == nil { order.append(record.cacheKey) }
        if order.count > capacity { byKey[order.removeFirst()] = nil }
    }
}
