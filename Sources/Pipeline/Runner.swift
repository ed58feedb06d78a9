import Dispatch
import Engine
import Explainers
import Foundation
import Imaging
import Report
import Slides
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
    /// Overrides every drift stage's `baseline` ("previous", "STORE.sqlite" or "STORE.sqlite#RUN").
    public var baseline: String?
    /// Log a line for every item as it finishes (`--verbose`), not every 16th.
    public var logEveryItem = false
    /// The kernels every model of the run runs (`--kernel`, `--kernel-set`).
    public var kernels = KernelOptions.best

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
    /// Heatmaps left out by explainers' `only:` scopes.
    public var skipped: Int = 0
    /// Gate verdicts (empty when the manifest has no gates or the run was interrupted).
    public var gates: [GateResultRecord] = []
    /// Items already committed by the resumed run and skipped here.
    public var resumed: Int = 0
}

/// Runs a plan: every dataset × model combination of the manifest (`Plan.combinations`). Each
/// item of each dataset is one `ItemJob` (every model covering the dataset, its explainers and
/// metrics, in DAG order); items run in parallel on Dispatch (`jobs` workers pulling from one
/// shared cursor over all datasets' items); the `RunFinisher` then records the verdict,
/// evaluates the gates and writes the report.
///
/// One forward pass per item and model is shared by the prediction and every explainer. Each
/// item's rows are written in one transaction, so a killed run never leaves half an item.
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

    public func run() throws -> RunSummary {
        let start = Date()
        let manifest = plan.manifest
        let combinations = plan.combinations
        guard !combinations.isEmpty else { throw PipelineError("\(manifest.file): nothing to run (no dataset or no model)") }
        for w in plan.warnings { log("warning: \(w)") }
        // The report folder is checked before any item runs: a folder Candela may not write is a
        // fatal error, not a failure found after an hour of work.
        let report = RunFinisher.ReportPlan.of(manifest, directory: options.reportDirectory, force: options.forceReport)
        if let report { try ReportFolder(report.directory).prepare(force: options.forceReport) }
        // One writer per store, from here to the end of the run (`StoreLock`).
        try FileManager.default.createDirectory(atPath: URL(fileURLWithPath: options.database).deletingLastPathComponent().path,
                                                withIntermediateDirectories: true)
        let writerLock = try StoreLock(store: options.database)
        defer { withExtendedLifetime(writerLock) {} }

        // Every model once, every dataset once; each dataset's items go through the models that
        // cover it, with the explainers the explain stages give that pair.
        var loaded: [String: LoadedModel] = [:]
        for name in Set(combinations.map(\.model)).sorted() { loaded[name] = try LoadedModel(manifest.models[name]!, kernels: options.kernels) }
        var cascades: [String: [Model]] = [:]
        for c in combinations where cascades[c.model] == nil && c.explainers.contains(where: { $0.metrics.contains("randomization") }) {
            cascades[c.model] = try Evaluation.randomizationCascade(loaded[c.model]!.model)
        }
        let showModel = loaded.count > 1
        var allItems: [ItemJobSpec] = []
        var explainerCount = 0
        var slides: [(dataset: String, slide: LoadedSlide)] = []
        for dataset in Set(combinations.map(\.dataset)).sorted() {
            let spec = manifest.datasets[dataset]!
            let items: [DatasetItem]
            if let settings = spec.slides {
                // The aggregation's positive class must be a class of every model that judges the dataset.
                if let positive = settings.aggregation.positiveClass {
                    for c in combinations where c.dataset == dataset && !(manifest.models[c.model]?.classes.contains(positive) ?? true) {
                        throw PipelineError("\(manifest.location("datasets.\(dataset)")): dataset '\(dataset)' aggregates class '\(positive)', "
                                            + "which model '\(c.model)' does not have (its classes: \(manifest.models[c.model]!.classes.joined(separator: ", ")))")
                    }
                }
                let loaded = try DatasetLoader.slides(spec)
                slides += loaded.map { (dataset, $0) }
                items = loaded.flatMap(\.items)
                for s in loaded where s.grid.tiles.isEmpty {
                    log("warning: \(s.path): no tile has enough tissue (\(String(format: "%.1f", 100 * s.grid.mask.tissueFraction))% of the slide is tissue)")
                }
            } else {
                items = try DatasetLoader.load(spec)
            }
            guard !items.isEmpty else {
                throw PipelineError("\(manifest.location("datasets.\(dataset)")): dataset '\(dataset)' has "
                                    + (spec.slides == nil ? "no images" : "no tile on tissue") + " (\(spec.origin))")
            }
            let works = try combinations.filter { $0.dataset == dataset }.map { c in
                let model = loaded[c.model]!
                return ModelWork(model: model, explainers: try c.explainers.map { try ExplainerWork($0, for: model.spec) },
                                 randomized: cascades[c.model], showModel: showModel)
            }
            explainerCount += works.map(\.explainers.count).reduce(0, +)
            allItems += items.map { ItemJobSpec(item: $0, dataset: dataset, models: works) }
        }
        let items = options.shard?.select(allItems) ?? allItems

        let store = try Store(path: options.database)
        let manifestHash = try Hashing.sha256(file: manifest.file)
        let runParameters = canonicalJSON(options.shard.map { ["shard": $0.description] } ?? [:])
        let runID: Int64
        var done = Set<ItemKey>()
        if options.resume, let id = try store.resumableRun(pipeline: manifest.pipeline, manifestHash: manifestHash, parameters: runParameters) {
            runID = id
            try store.reopenRun(id)
            done = try store.itemKeys(run: id)
            log("resuming run \(id): \(done.count) of \(items.count) items already committed")
        } else {
            if options.resume { log("nothing to resume for this manifest\(options.shard.map { " and shard \($0)" } ?? ""); starting a new run") }
            runID = try store.insert(RunRecord(pipeline: manifest.pipeline, manifestPath: manifest.file, manifestHash: manifestHash,
                                               candelaVersion: CandelaVersion.release, startedAt: RunFinisher.timestamp(start),
                                               status: "running", jobs: options.jobs, parameters: runParameters))
        }
        // Every slide of the run, with its header, tiling and tissue (a resumed run keeps its rows).
        for (dataset, s) in slides {
            try store.insert(try SlideRecords.record(s, dataset: dataset, runID: runID,
                                                     settings: manifest.datasets[dataset]!.slides!))
        }
        let library = SlideCache(slides.map(\.slide.slide))
        let pending = items.filter { !done.contains(ItemKey(dataset: $0.dataset, path: $0.item.path)) }
        for model in loaded.values.sorted(by: { $0.spec.name < $1.spec.name }) { try store.upsert(try model.record) }
        let datasets = Set(combinations.map(\.dataset)).sorted()
        log("run \(runID): \(pending.count) items from \(datasets.map { "'\($0)'" }.joined(separator: ", "))"
            + "\(options.shard.map { " (shard \($0) of \(allItems.count))" } ?? ""), "
            + "\(loaded.count == 1 ? "model '\(loaded.keys.first!)'" : "\(loaded.count) models"), "
            + "\(combinations.count) dataset × model combinations (\(explainerCount) with their explainers), \(options.jobs) jobs")

        let jobs = max(1, options.jobs)
        // Parallelism comes from items, not from inside GEMM: N jobs use N cores, one each.
        BLAS.setThreads(1)
        let state = RunState()
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
                let spec = pending[index]
                let job = ItemJob(item: spec.item, dataset: spec.dataset, runID: runID, models: spec.models, library: library)
                do {
                    let outcome = try Deadline.with(seconds: options.itemTimeout, label: spec.item.path) {
                        try job.run(store: store, recent: recent)
                    }
                    if let rows = outcome.rows { writer.submit(rows) }
                    state.record(outcome)
                } catch {
                    writer.submit(failure: FailureRecord(runID: runID, itemPath: spec.item.path, stage: "item", message: "\(error)"))
                    log("failed: \(error)")
                }
                let done = state.finished()
                if done == 1 {
                    // Time to first item: opening, tissue detection and tiling of slides, model loading, one item.
                    log(String(format: "first item done %.2f s after the start", Date().timeIntervalSince(start)))
                }
                if let progress {
                    progress(done, pending.count)
                } else if options.logEveryItem {
                    log("\(done)/\(pending.count) items: \(spec.item.path) (\(spec.dataset))")
                } else if done % 16 == 0 || done == pending.count {
                    log("\(done)/\(pending.count) items")
                }
            }
        }
        try writer.finish()
        if state.isCancelled {
            try store.finishRun(runID, status: "interrupted", at: RunFinisher.timestamp(Date()))
            return RunSummary(runID: runID, items: items.count, failures: try store.failures(run: runID).count, status: "interrupted",
                              reportIndex: nil, pointingGame: state.pointing, seconds: Date().timeIntervalSince(start),
                              computed: state.computed, reused: state.reused, skipped: state.skipped, resumed: done.count)
        }
        let finished = try RunFinisher(store: store, runID: runID, gates: manifest.gates, report: report, log: log,
                                       slideSettings: manifest.datasets.compactMapValues(\.slides),
                                       analyses: plan.order.filter { [.compare, .drift, .spray].contains($0.kind) }.map { stage in
                                           var stage = stage
                                           if stage.kind == .drift, let baseline = options.baseline { stage.baseline = baseline }
                                           return stage
                                       },
                                       manifestFolder: URL(fileURLWithPath: manifest.file).deletingLastPathComponent().path).finish()
        return RunSummary(runID: runID, items: items.count, failures: finished.failures, status: finished.status,
                          reportIndex: finished.reportIndex, pointingGame: state.pointing, seconds: Date().timeIntervalSince(start),
                          computed: state.computed, reused: state.reused, skipped: state.skipped, gates: finished.gates,
                          resumed: done.count)
    }

    /// One item of the run with the models that run on it.
    struct ItemJobSpec: @unchecked Sendable {
        let item: DatasetItem
        let dataset: String
        let models: [ModelWork]
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
    private(set) var skipped = 0

    func record(_ o: ItemOutcome) {
        lock.lock(); defer { lock.unlock() }
        computed += o.computed
        reused += o.reused
        skipped += o.skipped
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
    public static func loadModelForValidation(_ spec: ModelSpec, kernels: KernelOptions) throws -> String {
        try LoadedModel(spec, kernels: kernels).hash
    }
}


/// The store's single writer: workers hand it finished items and go on computing; it commits
/// them in batches (one transaction per batch of up to 16 items, or every half second), so
/// SQLite sees few commits and the workers never wait for the disk. A killed run loses at most
/// the last half second of computed items, never part of an item. At most `backlog` items wait
/// for their commit: when the workers outpace the disk (a rerun that reuses every heatmap
/// produces items far faster than SQLite stores their copies), `submit` waits, so memory stays
/// bounded whatever the number of items.
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
    static let backlog = 4 * batchSize
    /// One slot per item submitted and not yet through `flush`.
    private let slots = DispatchSemaphore(value: ItemWriter.backlog)

    init(store: Store, log: @escaping @Sendable (String) -> Void) {
        self.store = store
        self.log = log
    }

    func submit(_ rows: ItemRows) {
        slots.wait()
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
        defer { for _ in items { slots.signal() } }
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
        for var prediction in rows.predictions {
            prediction.itemID = itemID
            try store.insert(prediction)
        }
        for var a in rows.attributions {
            a.itemID = itemID
            try store.insert(a)
        }
        for var m in rows.metrics {
            m.itemID = itemID
            try store.insert(m)
        }
        for var c in rows.curves {
            c.itemID = itemID
            try store.insert(c)
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
