import Foundation

/// The SQLite store of runs, items, predictions, heatmaps, metrics and failures.
///
/// One connection guarded by a lock: callers on many threads may write; each call is atomic,
/// and `transaction` groups several writes into one commit. The database runs in WAL mode so
/// that a report can read while a run writes, and a killed process loses only uncommitted work.
public final class Store: @unchecked Sendable {
    private let connection: SQLiteConnection
    private let lock = NSRecursiveLock()
    /// A second connection for the cache lookups of the run's workers: in WAL mode readers do
    /// not wait for the writer's transactions, so a batch commit never stalls the workers.
    /// (An in-memory store has one connection: a second would open another database.)
    private let reader: SQLiteConnection?
    private let readLock = NSLock()
    public var path: String { connection.path }

    /// `PRAGMA application_id` of a Candela store ("CNDL").
    static let applicationID: Int64 = 0x434E_444C

    /// Opens (creating if needed) the database at `path` and migrates it; ":memory:" for tests.
    /// A file that is not a Candela store (another program's SQLite database, or not SQLite at
    /// all), a damaged one (`PRAGMA quick_check`) or one from a newer Candela is refused with an
    /// error naming the file; nothing is written to it.
    public init(path: String) throws {
        connection = try SQLiteConnection(path: path)
        try Store.checkIdentity(connection)
        // Foreign keys are enforced from after the migrations: a migration that rebuilds a table
        // (4) drops and renames it, which SQLite allows only with them off.
        try connection.execute("PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA foreign_keys=OFF;")
        reader = path == ":memory:" || path.isEmpty ? nil : try SQLiteConnection(path: path)
        try migrate()
        try connection.execute("PRAGMA foreign_keys=ON;")
    }

    /// Checks that the database is empty or a Candela store, and undamaged.
    static func checkIdentity(_ connection: SQLiteConnection) throws {
        let path = connection.path
        let tables: [String]
        let application: Int64, version: Int64
        do {
            tables = try connection.query("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'")
                .compactMap { $0.first?.text }
            application = try connection.query("PRAGMA application_id")[0][0].int ?? 0
            version = try connection.query("PRAGMA user_version")[0][0].int ?? 0
        } catch {
            throw StoreError("\(path): not a Candela store (not a readable SQLite database: \(error))")
        }
        if tables.isEmpty && version == 0 {
            if application == 0 || application == applicationID { return }
        }
        // Stores written before the application id was set: user_version and the runs table.
        let ours = application == applicationID || (application == 0 && version > 0 && tables.contains("runs") && tables.contains("items"))
        guard ours else {
            throw StoreError("\(path): not a Candela store (application id \(application), schema version \(version), tables: "
                             + "\(tables.prefix(5).joined(separator: ", "))); give --db a new file or a Candela store")
        }
        let check = (try? connection.query("PRAGMA quick_check").compactMap { $0.first?.text }) ?? ["unreadable"]
        guard check == ["ok"] else {
            throw StoreError("\(path): the store is damaged (SQLite quick_check: \(check.prefix(3).joined(separator: "; "))); "
                             + "restore it from a backup or start a new store")
        }
    }

    /// The schema version this database is at.
    public var schemaVersion: Int {
        (try? locked { Int(try connection.query("PRAGMA user_version")[0][0].int ?? 0) }) ?? 0
    }

    private func migrate() throws {
        let current = Int(try connection.query("PRAGMA user_version")[0][0].int ?? 0)
        guard current <= Schema.migrations.count else {
            throw StoreError("\(path): schema version \(current) is newer than this Candela (\(Schema.migrations.count)); upgrade Candela")
        }
        for (i, sql) in Schema.migrations.enumerated() where i >= current {
            do {
                try connection.execute("BEGIN; \(sql)")
                // A rebuilt table must leave every reference valid.
                if let bad = try connection.query("PRAGMA foreign_key_check").first {
                    throw StoreError("a row of \(bad.first?.text ?? "?") refers to a missing row of \(bad.count > 2 ? bad[2].text ?? "?" : "?")")
                }
                try connection.execute("PRAGMA user_version = \(i + 1); COMMIT;")
            } catch {
                try? connection.execute("ROLLBACK")
                throw StoreError("\(path): migration \(i + 1) of the store failed (\(error)); the store is unchanged")
            }
        }
        // Marked once (a write: readers beside a running writer would wait for its lock).
        if path != ":memory:" && !path.isEmpty, (try connection.query("PRAGMA application_id")[0][0].int ?? 0) != Store.applicationID {
            try connection.execute("PRAGMA application_id = \(Store.applicationID)")
        }
    }

    private func locked<T>(_ body: () throws -> T) throws -> T {
        lock.lock()
        defer { lock.unlock() }
        return try body()
    }

    /// Runs a read-only lookup on the reader connection (or the main one without a reader).
    private func reading<T>(_ body: (SQLiteConnection) throws -> T) throws -> T {
        guard let reader else { return try locked { try body(connection) } }
        readLock.lock()
        defer { readLock.unlock() }
        return try body(reader)
    }

    /// Runs `body` inside one transaction; rolls back when it throws.
    public func transaction<T>(_ body: () throws -> T) throws -> T {
        try locked {
            try connection.execute("BEGIN IMMEDIATE")
            do {
                let result = try body()
                try connection.execute("COMMIT")
                return result
            } catch {
                try? connection.execute("ROLLBACK")
                throw error
            }
        }
    }

    private func json<T: Encodable>(_ value: T) -> String {
        let e = JSONEncoder()
        e.outputFormatting = .sortedKeys
        return String(decoding: (try? e.encode(value)) ?? Data("null".utf8), as: UTF8.self)
    }

    private func decode<T: Decodable>(_ type: T.Type, _ text: String?) -> T? {
        guard let text else { return nil }
        return try? JSONDecoder().decode(type, from: Data(text.utf8))
    }

    // MARK: - Writes (each is one statement; wrap several in `transaction` to commit once)

    @discardableResult
    public func insert(_ r: RunRecord) throws -> Int64 {
        try locked {
            try connection.query("""
                INSERT INTO runs(pipeline, manifest_path, manifest_hash, candela_version, started_at, finished_at, status, jobs,
                                 parameters)
                VALUES (?,?,?,?,?,?,?,?,?)
                """, [.text(r.pipeline), .text(r.manifestPath), .text(r.manifestHash), .text(r.candelaVersion),
                      .text(r.startedAt), r.finishedAt.map { .text($0) } ?? .null, .text(r.status), .int(Int64(r.jobs)),
                      .text(r.parameters)])
            return connection.lastInsertRowID
        }
    }

    public func finishRun(_ id: Int64, status: String, at time: String) throws {
        try locked {
            try connection.query("UPDATE runs SET status = ?, finished_at = ? WHERE id = ?", [.text(status), .text(time), .int(id)])
        }
    }

    public func upsert(_ m: ModelRecord) throws {
        try locked {
            try connection.query("""
                INSERT INTO models(hash, name, path, classes, preprocessing) VALUES (?,?,?,?,?)
                ON CONFLICT(hash) DO UPDATE SET name = excluded.name, path = excluded.path,
                  classes = excluded.classes, preprocessing = excluded.preprocessing
                """, [.text(m.hash), .text(m.name), .text(m.path), .text(json(m.classes)), .text(m.preprocessing)])
        }
    }

    @discardableResult
    public func insert(_ i: ItemRecord) throws -> Int64 {
        try locked {
            try connection.query("""
                INSERT INTO items(run_id, dataset, path, label, mask_path, tissue_mask_path, content_hash, width, height,
                                  slide_path, tile_x, tile_y, tile_width, tile_height, tile_level, tissue, piece, annotation_path,
                                  sharpness)
                VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)
                """, [.int(i.runID), .text(i.dataset), .text(i.path), i.label.map { .text($0) } ?? .null,
                      i.maskPath.map { .text($0) } ?? .null, i.tissueMaskPath.map { .text($0) } ?? .null,
                      .text(i.contentHash), .int(Int64(i.width)), .int(Int64(i.height)),
                      i.tile.map { .text($0.slidePath) } ?? .null, i.tile.map { .int(Int64($0.x)) } ?? .null,
                      i.tile.map { .int(Int64($0.y)) } ?? .null, i.tile.map { .int(Int64($0.width)) } ?? .null,
                      i.tile.map { .int(Int64($0.height)) } ?? .null, i.tile.map { .int(Int64($0.level)) } ?? .null,
                      i.tile.map { .double($0.tissue) } ?? .null, i.tile.map { .int(Int64($0.piece)) } ?? .null,
                      i.annotationPath.map { .text($0) } ?? .null, i.tile?.sharpness.map { .double($0) } ?? .null])
            return connection.lastInsertRowID
        }
    }

    public func insert(_ p: PredictionRecord) throws {
        try locked {
            try connection.query("""
                INSERT OR REPLACE INTO predictions(item_id, model_hash, class_index, class_name, probability, probabilities)
                VALUES (?,?,?,?,?,?)
                """, [.int(p.itemID), .text(p.modelHash), .int(Int64(p.classIndex)), .text(p.className),
                      .double(p.probability), .text(json(p.probabilities))])
        }
    }

    @discardableResult
    public func insert(_ a: AttributionRecord) throws -> Int64 {
        try locked {
            try connection.query("""
                INSERT OR REPLACE INTO attributions(item_id, model_hash, explainer, method, parameters, target, cache_key,
                  raw_shape, height, width, heatmap, seconds, heat_low, heat_high, diagnostics, signed, signed_max)
                  VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)
                """, [.int(a.itemID), .text(a.modelHash), .text(a.explainer), .text(a.method), .text(a.parameters),
                      .int(Int64(a.target)), .text(a.cacheKey), .text(json(a.rawShape)), .int(Int64(a.height)),
                      .int(Int64(a.width)), .blob(AttributionRecord.quantize(a.heatmap)), .double(a.seconds),
                      a.low.map { .double($0) } ?? .null, a.high.map { .double($0) } ?? .null,
                      a.diagnostics.isEmpty ? .null : .text(json(a.diagnostics)),
                      a.signed.map { .blob(AttributionRecord.quantizeSigned($0)) } ?? .null, a.signedMax.map { .double($0) } ?? .null])
            return connection.lastInsertRowID
        }
    }

    public func insert(_ m: MetricRecord) throws {
        try locked {
            try connection.query("INSERT OR REPLACE INTO metrics(item_id, model_hash, explainer, name, value) VALUES (?,?,?,?,?)",
                                 [.int(m.itemID), .text(m.modelHash), .text(m.explainer), .text(m.name),
                                  m.value.map { .double($0) } ?? .null])
        }
    }

    public func insert(_ c: CurveRecord) throws {
        try locked {
            try connection.query("INSERT OR REPLACE INTO curves(item_id, model_hash, explainer, kind, points) VALUES (?,?,?,?,?)",
                                 [.int(c.itemID), .text(c.modelHash), .text(c.explainer), .text(c.kind), .text(json(c.points))])
        }
    }

    /// Every curve of a run's heatmaps.
    public func curves(run: Int64) throws -> [CurveRecord] {
        try reading { connection in
            try connection.query("""
                SELECT c.item_id, c.model_hash, c.explainer, c.kind, c.points FROM curves c JOIN items i ON i.id = c.item_id
                WHERE i.run_id = ? ORDER BY c.item_id, c.model_hash, c.explainer, c.kind
                """, [.int(run)]).map {
                CurveRecord(itemID: $0[0].int ?? 0, modelHash: $0[1].text ?? "", explainer: $0[2].text ?? "", kind: $0[3].text ?? "",
                            points: decode([Double].self, $0[4].text) ?? [])
            }
        }
    }

    /// The stored curve of a heatmap with this cache key (as `cachedMetric`), nil when none is.
    public func cachedCurve(cacheKey: String, kind: String) throws -> [Double]? {
        try reading { connection in
            try connection.query("""
                SELECT c.points FROM attributions a
                JOIN curves c ON c.item_id = a.item_id AND c.model_hash = a.model_hash AND c.explainer = a.explainer
                WHERE a.cache_key = ? AND c.kind = ? ORDER BY a.id DESC LIMIT 1
                """, [.text(cacheKey), .text(kind)]).first.flatMap { decode([Double].self, $0[0].text) }
        }
    }

    public func insert(_ f: FailureRecord) throws {
        try locked {
            try connection.query("INSERT INTO failures(run_id, item_path, stage, message) VALUES (?,?,?,?)",
                                 [.int(f.runID), .text(f.itemPath), .text(f.stage), .text(f.message)])
        }
    }

    /// The columns of an attributions row, in the order `attributionRecord` reads them.
    static let attributionColumns = "id, item_id, model_hash, explainer, method, parameters, target, cache_key, raw_shape, height, width, "
        + "heatmap, seconds, heat_low, heat_high, diagnostics, signed, signed_max"

    /// An attributions row, columns as `attributionColumns`.
    private func attributionRecord(_ r: [SQLValue]) -> AttributionRecord {
        AttributionRecord(id: r[0].int, itemID: r[1].int ?? 0, modelHash: r[2].text ?? "", explainer: r[3].text ?? "",
                          method: r[4].text ?? "", parameters: r[5].text ?? "{}", target: Int(r[6].int ?? 0),
                          cacheKey: r[7].text ?? "", rawShape: decode([Int].self, r[8].text) ?? [],
                          height: Int(r[9].int ?? 0), width: Int(r[10].int ?? 0),
                          heatmap: AttributionRecord.dequantize(r[11].blob ?? Data()), seconds: r[12].double ?? 0,
                          low: r[13].double, high: r[14].double, diagnostics: decode([String: Double].self, r[15].text) ?? [:],
                          signed: r[16].blob.map(AttributionRecord.dequantizeSigned), signedMax: r[17].double)
    }

    // MARK: - Queries

    public func runs() throws -> [RunRecord] {
        try locked {
            try connection.query("""
                SELECT id, pipeline, manifest_path, manifest_hash, candela_version, started_at, finished_at, status, jobs,
                       parameters
                FROM runs ORDER BY id
                """).map { r in
                RunRecord(id: r[0].int, pipeline: r[1].text ?? "", manifestPath: r[2].text ?? "", manifestHash: r[3].text ?? "",
                          candelaVersion: r[4].text ?? "", startedAt: r[5].text ?? "", finishedAt: r[6].text,
                          status: r[7].text ?? "", jobs: Int(r[8].int ?? 0), parameters: r[9].text ?? "{}")
            }
        }
    }

    public func models() throws -> [ModelRecord] {
        try locked {
            try connection.query("SELECT hash, name, path, classes, preprocessing FROM models ORDER BY name").map { r in
                ModelRecord(hash: r[0].text ?? "", name: r[1].text ?? "", path: r[2].text ?? "",
                            classes: decode([String].self, r[3].text) ?? [], preprocessing: r[4].text ?? "{}")
            }
        }
    }

    public func items(run: Int64) throws -> [ItemRecord] {
        try locked {
            try connection.query("""
                SELECT id, run_id, dataset, path, label, mask_path, content_hash, width, height, tissue_mask_path,
                       slide_path, tile_x, tile_y, tile_width, tile_height, tile_level, tissue, piece, annotation_path, sharpness
                FROM items WHERE run_id = ? ORDER BY dataset, slide_path, tile_y, tile_x, path
                """, [.int(run)]).map { r in
                var tile: TileRecord?
                if let slide = r[10].text {
                    tile = TileRecord(slidePath: slide, x: Int(r[11].int ?? 0), y: Int(r[12].int ?? 0), width: Int(r[13].int ?? 0),
                                      height: Int(r[14].int ?? 0), level: Int(r[15].int ?? 0), tissue: r[16].double ?? 0,
                                      piece: Int(r[17].int ?? 0), sharpness: r[19].double)
                }
                return ItemRecord(id: r[0].int, runID: r[1].int ?? 0, dataset: r[2].text ?? "", path: r[3].text ?? "",
                                  label: r[4].text, maskPath: r[5].text, tissueMaskPath: r[9].text, contentHash: r[6].text ?? "",
                                  width: Int(r[7].int ?? 0), height: Int(r[8].int ?? 0), tile: tile, annotationPath: r[18].text)
            }
        }
    }

    public func predictions(run: Int64) throws -> [PredictionRecord] {
        try locked {
            try connection.query("""
                SELECT p.item_id, p.model_hash, p.class_index, p.class_name, p.probability, p.probabilities
                FROM predictions p JOIN items i ON i.id = p.item_id WHERE i.run_id = ? ORDER BY i.dataset, i.path, p.model_hash
                """, [.int(run)]).map { r in
                PredictionRecord(itemID: r[0].int ?? 0, modelHash: r[1].text ?? "", classIndex: Int(r[2].int ?? 0),
                                 className: r[3].text ?? "", probability: r[4].double ?? 0,
                                 probabilities: decode([Double].self, r[5].text) ?? [])
            }
        }
    }

    public func attributions(run: Int64) throws -> [AttributionRecord] {
        try locked {
            try connection.query("""
                SELECT a.id, a.item_id, a.model_hash, a.explainer, a.method, a.parameters, a.target, a.cache_key,
                       a.raw_shape, a.height, a.width, a.heatmap, a.seconds, a.heat_low, a.heat_high, a.diagnostics,
                       a.signed, a.signed_max
                FROM attributions a JOIN items i ON i.id = a.item_id WHERE i.run_id = ? ORDER BY i.dataset, i.path, a.model_hash, a.explainer
                """, [.int(run)]).map(attributionRecord)
        }
    }

    /// The heatmaps of one item.
    public func attributions(item: Int64) throws -> [AttributionRecord] {
        try locked {
            try connection.query("""
                SELECT \(Store.attributionColumns) FROM attributions WHERE item_id = ? ORDER BY model_hash, explainer, target
                """, [.int(item)]).map(attributionRecord)
        }
    }

    /// Each distinct (explainer, method, parameters) of a run's heatmaps, without the heatmaps.
    public func attributionSummaries(run: Int64) throws -> [AttributionSummary] {
        try locked {
            try connection.query("""
                SELECT DISTINCT a.explainer, a.method, a.parameters, a.model_hash FROM attributions a JOIN items i ON i.id = a.item_id
                WHERE i.run_id = ? ORDER BY a.explainer, a.model_hash
                """, [.int(run)]).map {
                AttributionSummary(explainer: $0[0].text ?? "", method: $0[1].text ?? "", parameters: $0[2].text ?? "{}",
                                   modelHash: $0[3].text ?? "")
            }
        }
    }

    public func metrics(run: Int64) throws -> [MetricRecord] {
        try locked {
            try connection.query("""
                SELECT m.item_id, m.explainer, m.name, m.value, m.model_hash FROM metrics m JOIN items i ON i.id = m.item_id
                WHERE i.run_id = ? ORDER BY i.dataset, i.path, m.model_hash, m.explainer, m.name
                """, [.int(run)]).map { r in
                MetricRecord(itemID: r[0].int ?? 0, explainer: r[1].text ?? "", name: r[2].text ?? "", value: r[3].double,
                             modelHash: r[4].text ?? "")
            }
        }
    }

    /// The most recent heatmap stored under `cacheKey`, from any run.
    public func attribution(cacheKey: String) throws -> AttributionRecord? {
        try reading { connection in
            try connection.query("""
                SELECT \(Store.attributionColumns) FROM attributions WHERE cache_key = ? ORDER BY id DESC LIMIT 1
                """, [.text(cacheKey)]).first.map { row -> AttributionRecord in
                var record = attributionRecord(row)
                record.id = nil // a template for a new row
                return record
            }
        }
    }

    /// A metric stored for a heatmap with this cache key, from any run (`value` may be nil:
    /// stored as not applicable). nil when none is stored.
    public func cachedMetric(cacheKey: String, name: String) throws -> (value: Double?, found: Bool)? {
        try reading { connection in
            try connection.query("""
                SELECT m.value FROM attributions a
                JOIN metrics m ON m.item_id = a.item_id AND m.model_hash = a.model_hash AND m.explainer = a.explainer
                WHERE a.cache_key = ? AND m.name = ? ORDER BY a.id DESC LIMIT 1
                """, [.text(cacheKey), .text(name)]).first.map { ($0[0].double, true) }
        }
    }

    /// A stored prediction of `modelHash` for an image with these bytes, with the image's size.
    public func cachedPrediction(contentHash: String, modelHash: String) throws -> (prediction: PredictionRecord, width: Int, height: Int)? {
        try reading { connection in
            try connection.query("""
                SELECT p.class_index, p.class_name, p.probability, p.probabilities, i.width, i.height
                FROM predictions p JOIN items i ON i.id = p.item_id
                WHERE i.content_hash = ? AND p.model_hash = ? ORDER BY p.item_id DESC LIMIT 1
                """, [.text(contentHash), .text(modelHash)]).first.map { r in
                (PredictionRecord(itemID: 0, modelHash: modelHash, classIndex: Int(r[0].int ?? 0), className: r[1].text ?? "",
                                  probability: r[2].double ?? 0, probabilities: decode([Double].self, r[3].text) ?? []),
                 Int(r[4].int ?? 0), Int(r[5].int ?? 0))
            }
        }
    }

    public func failures(run: Int64) throws -> [FailureRecord] {
        try locked {
            try connection.query("SELECT id, run_id, item_path, stage, message FROM failures WHERE run_id = ? ORDER BY id",
                                 [.int(run)]).map { r in
                FailureRecord(id: r[0].int, runID: r[1].int ?? 0, itemPath: r[2].text ?? "", stage: r[3].text ?? "",
                              message: r[4].text ?? "")
            }
        }
    }

    // MARK: - Gates

    /// Replaces the gate verdicts of a run.
    public func replaceGateResults(run: Int64, _ results: [GateResultRecord]) throws {
        try transaction {
            try connection.query("DELETE FROM gate_results WHERE run_id = ?", [.int(run)])
            for g in results {
                try connection.query("""
                    INSERT INTO gate_results(run_id, name, metric, explainer, comparison, threshold, value, passed)
                    VALUES (?,?,?,?,?,?,?,?)
                    """, [.int(g.runID), .text(g.name), .text(g.metric), g.explainer.map { .text($0) } ?? .null,
                          .text(g.comparison), .double(g.threshold), g.value.map { .double($0) } ?? .null,
                          .int(g.passed ? 1 : 0)])
            }
        }
    }

    public func gateResults(run: Int64) throws -> [GateResultRecord] {
        try locked {
            try connection.query("""
                SELECT run_id, name, metric, explainer, comparison, threshold, value, passed FROM gate_results
                WHERE run_id = ? ORDER BY name
                """, [.int(run)]).map { r in
                GateResultRecord(runID: r[0].int ?? 0, name: r[1].text ?? "", metric: r[2].text ?? "", explainer: r[3].text,
                                 comparison: r[4].text ?? ">=", threshold: r[5].double ?? 0, value: r[6].double,
                                 passed: (r[7].int ?? 0) != 0)
            }
        }
    }

    // MARK: - Resume

    /// The latest run of this pipeline, manifest and run parameters that did not finish
    /// (status "running" after a kill, or "interrupted"), if any.
    public func resumableRun(pipeline: String, manifestHash: String, parameters: String) throws -> Int64? {
        try locked {
            try connection.query("""
                SELECT id FROM runs WHERE pipeline = ? AND manifest_hash = ? AND parameters = ?
                  AND status IN ('running', 'interrupted') ORDER BY id DESC LIMIT 1
                """, [.text(pipeline), .text(manifestHash), .text(parameters)]).first?[0].int
        }
    }

    /// Marks a run running again and forgets its failures (failed items are retried).
    public func reopenRun(_ id: Int64) throws {
        try transaction {
            try connection.query("UPDATE runs SET status = 'running', finished_at = NULL WHERE id = ?", [.int(id)])
            try connection.query("DELETE FROM failures WHERE run_id = ?", [.int(id)])
        }
    }

    /// The (dataset, path) of every item a run has committed.
    public func itemKeys(run: Int64) throws -> Set<ItemKey> {
        try locked {
            Set(try connection.query("SELECT dataset, path FROM items WHERE run_id = ?", [.int(run)]).map {
                ItemKey(dataset: $0[0].text ?? "", path: $0[1].text ?? "")
            })
        }
    }

    // MARK: - Slides

    static let slideColumns = "dataset, path, label, annotation_path, vendor, width, height, levels, mpp_x, mpp_y, objective_power, "
        + "quickhash, tiling, tiles, tissue_fraction, pieces, view_downsample, view, tissue_mask, pen_fraction"

    /// Records a slide of a run (once: a resumed run keeps the row it has).
    @discardableResult
    public func insert(_ s: SlideRecord) throws -> Int64 {
        try locked {
            func opt(_ v: Double?) -> SQLValue { v.map { .double($0) } ?? .null }
            try connection.query("""
                INSERT OR IGNORE INTO slides(run_id, \(Store.slideColumns)) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)
                """, [.int(s.runID), .text(s.dataset), .text(s.path), s.label.map { .text($0) } ?? .null,
                      s.annotationPath.map { .text($0) } ?? .null, .text(s.vendor), .int(Int64(s.width)), .int(Int64(s.height)),
                      .text(json(s.levels)), opt(s.mppX), opt(s.mppY), opt(s.objectivePower), .text(s.quickHash), .text(s.tiling),
                      .int(Int64(s.tiles)), .double(s.tissueFraction), .text(s.pieces), .double(s.viewDownsample),
                      .blob(s.view), .blob(s.tissueMask), .double(s.penFraction)])
            return try connection.query("SELECT id FROM slides WHERE run_id = ? AND dataset = ? AND path = ?",
                                        [.int(s.runID), .text(s.dataset), .text(s.path)]).first?[0].int ?? 0
        }
    }

    public func slides(run: Int64) throws -> [SlideRecord] {
        try locked {
            try connection.query("SELECT id, run_id, \(Store.slideColumns) FROM slides WHERE run_id = ? ORDER BY dataset, path",
                                 [.int(run)]).map { r in
                SlideRecord(id: r[0].int, runID: r[1].int ?? 0, dataset: r[2].text ?? "", path: r[3].text ?? "", label: r[4].text,
                            annotationPath: r[5].text, vendor: r[6].text ?? "", width: Int(r[7].int ?? 0), height: Int(r[8].int ?? 0),
                            levels: decode([String].self, r[9].text) ?? [], mppX: r[10].double, mppY: r[11].double,
                            objectivePower: r[12].double, quickHash: r[13].text ?? "", tiling: r[14].text ?? "{}",
                            tiles: Int(r[15].int ?? 0), tissueFraction: r[16].double ?? 0, pieces: r[17].text ?? "[]",
                            viewDownsample: r[18].double ?? 1, view: r[19].blob ?? Data(), tissueMask: r[20].blob ?? Data(),
                            penFraction: r[21].double ?? 0)
            }
        }
    }

    /// Replaces a slide's verdicts and stitched heatmaps (the finisher's results) in one transaction.
    public func replaceSlideResults(slide: Int64, verdicts: [SlideVerdictRecord], heatmaps: [SlideHeatmapRecord]) throws {
        try transaction {
            try connection.query("DELETE FROM slide_verdicts WHERE slide_id = ?", [.int(slide)])
            try connection.query("DELETE FROM slide_heatmaps WHERE slide_id = ?", [.int(slide)])
            for v in verdicts {
                try connection.query("""
                    INSERT INTO slide_verdicts(slide_id, model_hash, piece, rule, tiles, score, class_name, probabilities)
                    VALUES (?,?,?,?,?,?,?,?)
                    """, [.int(v.slideID), .text(v.modelHash), .int(Int64(v.piece)), .text(v.rule), .int(Int64(v.tiles)),
                          v.score.map { .double($0) } ?? .null, .text(v.className), .text(json(v.probabilities))])
            }
            for h in heatmaps {
                var bytes = Data(capacity: h.values.count * 4)
                for v in h.values { withUnsafeBytes(of: v.bitPattern.littleEndian) { bytes.append(contentsOf: $0) } }
                try connection.query("""
                    INSERT INTO slide_heatmaps(slide_id, model_hash, explainer, downsample, width, height, low, high, heatmap,
                                               pointing, pointing_k)
                    VALUES (?,?,?,?,?,?,?,?,?,?,?)
                    """, [.int(h.slideID), .text(h.modelHash), .text(h.explainer), .double(h.downsample), .int(Int64(h.width)),
                          .int(Int64(h.height)), h.low.map { .double($0) } ?? .null, h.high.map { .double($0) } ?? .null, .blob(bytes),
                          h.pointing.map { .double($0) } ?? .null, h.pointingK.map { .int(Int64($0)) } ?? .null])
            }
        }
    }

    public func slideVerdicts(slide: Int64) throws -> [SlideVerdictRecord] {
        try locked {
            try connection.query("""
                SELECT slide_id, model_hash, piece, rule, tiles, score, class_name, probabilities FROM slide_verdicts
                WHERE slide_id = ? ORDER BY model_hash, piece
                """, [.int(slide)]).map { r in
                SlideVerdictRecord(slideID: r[0].int ?? 0, modelHash: r[1].text ?? "", piece: Int(r[2].int ?? 0), rule: r[3].text ?? "",
                                   tiles: Int(r[4].int ?? 0), score: r[5].double, className: r[6].text ?? "",
                                   probabilities: decode([Double].self, r[7].text) ?? [])
            }
        }
    }

    public func slideHeatmaps(slide: Int64) throws -> [SlideHeatmapRecord] {
        try locked {
            try connection.query("""
                SELECT slide_id, model_hash, explainer, downsample, width, height, low, high, heatmap, pointing, pointing_k
                FROM slide_heatmaps
                WHERE slide_id = ? ORDER BY model_hash, explainer
                """, [.int(slide)]).map { r in
                let bytes = [UInt8](r[8].blob ?? Data())
                let values = stride(from: 0, to: bytes.count - 3, by: 4).map { i in
                    Float(bitPattern: UInt32(bytes[i]) | UInt32(bytes[i + 1]) << 8 | UInt32(bytes[i + 2]) << 16 | UInt32(bytes[i + 3]) << 24)
                }
                return SlideHeatmapRecord(slideID: r[0].int ?? 0, modelHash: r[1].text ?? "", explainer: r[2].text ?? "",
                                          downsample: r[3].double ?? 1, width: Int(r[4].int ?? 0), height: Int(r[5].int ?? 0),
                                          low: r[6].double, high: r[7].double, values: values,
                                          pointing: r[9].double, pointingK: r[10].int.map { Int($0) })
            }
        }
    }

    // MARK: - Comparisons

    /// Replaces a comparison stage's rows of a run, in one transaction.
    public func replaceComparisons(run: Int64, name: String, _ rows: [ComparisonRecord]) throws {
        try transaction {
            try connection.query("DELETE FROM comparisons WHERE run_id = ? AND name = ?", [.int(run), .text(name)])
            func opt(_ v: Double?) -> SQLValue { v.map { $0.isFinite ? .double($0) : .null } ?? .null }
            for c in rows {
                try connection.query("""
                    INSERT OR REPLACE INTO comparisons(run_id, kind, name, item_id, explainer, model_a, model_b, reference, spearman,
                                                       ssim, topk, same_prediction) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)
                    """, [.int(c.runID), .text(c.kind), .text(c.name), .int(c.itemID), .text(c.explainer), .text(c.modelA),
                          .text(c.modelB), c.reference.map { .text($0) } ?? .null, opt(c.spearman), opt(c.ssim), opt(c.topK),
                          c.samePrediction.map { .int($0 ? 1 : 0) } ?? .null])
            }
        }
    }

    public func comparisons(run: Int64) throws -> [ComparisonRecord] {
        try locked {
            try connection.query("""
                SELECT c.run_id, c.kind, c.name, c.item_id, c.explainer, c.model_a, c.model_b, c.reference, c.spearman, c.ssim,
                       c.topk, c.same_prediction FROM comparisons c JOIN items i ON i.id = c.item_id
                WHERE c.run_id = ? ORDER BY c.name, c.explainer, i.dataset, i.path
                """, [.int(run)]).map { r in
                ComparisonRecord(runID: r[0].int ?? 0, kind: r[1].text ?? "", name: r[2].text ?? "", itemID: r[3].int ?? 0,
                                 explainer: r[4].text ?? "", modelA: r[5].text ?? "", modelB: r[6].text ?? "", reference: r[7].text,
                                 spearman: r[8].double, ssim: r[9].double, topK: r[10].double,
                                 samePrediction: r[11].int.map { $0 != 0 })
            }
        }
    }

    // MARK: - Export

    /// One heatmap of a run as `candela export` writes it: the item, the model's prediction, the
    /// explainer, its metrics, and (when asked) the heatmap.
    public struct ExportRow {
        public var itemID: Int64
        public var dataset: String
        public var path: String
        public var label: String?
        public var predicted: String?
        public var probability: Double?
        public var explainer: String
        public var method: String
        public var target: Int
        public var seconds: Double
        public var modelHash: String
        public var modelName: String?
        /// Metric name → value (nil: stored without a value).
        public var metrics: [String: Double?]
        public var heatmap: (width: Int, height: Int, values: [Float])?
    }

    /// Whether any heatmap of a run kept a signed map (the report then shows the diverging scale).
    public func hasSignedAttributions(run: Int64) throws -> Bool {
        try reading { connection in
            try connection.query("""
                SELECT 1 FROM attributions a JOIN items i ON i.id = a.item_id WHERE i.run_id = ? AND a.signed IS NOT NULL LIMIT 1
                """, [.int(run)]).isEmpty == false
        }
    }

    /// Per model and explainer of a run: the seconds its heatmaps took in all, and how many there are.
    public func attributionSeconds(run: Int64) throws -> [(modelHash: String, explainer: String, seconds: Double, count: Int)] {
        try reading { c in
            try c.query("""
                SELECT a.model_hash, a.explainer, SUM(a.seconds), COUNT(*) FROM attributions a JOIN items i ON i.id = a.item_id
                WHERE i.run_id = ? GROUP BY a.model_hash, a.explainer ORDER BY a.explainer
                """, [.int(run)]).map { r in (r[0].text ?? "", r[1].text ?? "", r[2].double ?? 0, Int(r[3].int ?? 0)) }
        }
    }

    /// The metric names of a run's rows, sorted.
    public func metricNames(run: Int64) throws -> [String] {
        try reading { c in
            try c.query("SELECT DISTINCT m.name FROM metrics m JOIN items i ON i.id = m.item_id WHERE i.run_id = ? ORDER BY m.name",
                        [.int(run)]).compactMap { $0[0].text }
        }
    }

    /// Streams a run's heatmap rows in (dataset, path, model, explainer) order, one SQL row at a
    /// time: memory does not grow with the run. Metrics arrive joined to their heatmap row, read
    /// as doubles (exact; a JSON detour would round them to 15 digits).
    public func exportRows(run: Int64, heatmaps: Bool, _ body: (ExportRow) throws -> Void) throws {
        try reading { c in
            // One statement: each heatmap row once per metric (LEFT JOIN), adjacent by the
            // attribution's id, folded here into one row.
            var current: ExportRow?
            var currentID: Int64?
            try c.forEachRow("""
                SELECT a.id, a.item_id, i.dataset, i.path, i.label, p.class_name, p.probability, a.explainer, a.method, a.target,
                       a.seconds, a.model_hash, mo.name, a.width, a.height, \(heatmaps ? "a.heatmap" : "NULL"), m.name, m.value
                FROM attributions a JOIN items i ON i.id = a.item_id
                LEFT JOIN predictions p ON p.item_id = a.item_id AND p.model_hash = a.model_hash
                LEFT JOIN models mo ON mo.hash = a.model_hash
                LEFT JOIN metrics m ON m.item_id = a.item_id AND m.model_hash = a.model_hash AND m.explainer = a.explainer
                WHERE i.run_id = ? ORDER BY i.dataset, i.path, mo.name, a.model_hash, a.explainer, a.id, m.name
                """, [.int(run)]) { r in
                let id = r[0].int ?? 0
                if id != currentID {
                    if let current { try body(current) }
                    currentID = id
                    let (w, h) = (Int(r[13].int ?? 0), Int(r[14].int ?? 0))
                    current = ExportRow(itemID: r[1].int ?? 0, dataset: r[2].text ?? "", path: r[3].text ?? "", label: r[4].text,
                                        predicted: r[5].text, probability: r[6].double, explainer: r[7].text ?? "", method: r[8].text ?? "",
                                        target: Int(r[9].int ?? 0), seconds: r[10].double ?? 0, modelHash: r[11].text ?? "",
                                        modelName: r[12].text, metrics: [:],
                                        heatmap: r[15].blob.map { (w, h, AttributionRecord.dequantize($0)) })
                }
                // Values as doubles, exactly as stored (NULL: stored without a value).
                if let name = r[16].text { current?.metrics[name] = .some(r[17].double) }
            }
            if let current { try body(current) }
        }
    }

    // MARK: - SpRAy clusters

    /// Replaces a spray stage's rows of a run (items and cluster summaries), in one transaction.
    public func replaceClusters(run: Int64, name: String, _ rows: [ClusterRecord], summaries: [ClusterSummaryRecord]) throws {
        try transaction {
            try connection.query("DELETE FROM clusters WHERE run_id = ? AND name = ?", [.int(run), .text(name)])
            try connection.query("DELETE FROM cluster_summaries WHERE run_id = ? AND name = ?", [.int(run), .text(name)])
            func finite(_ v: Double) -> SQLValue { v.isFinite ? .double(v) : .null }
            for c in rows {
                try connection.query("""
                    INSERT INTO clusters(run_id, name, item_id, model_hash, explainer, class_index, cluster, medoid, x, y)
                    VALUES (?,?,?,?,?,?,?,?,?,?)
                    """, [.int(c.runID), .text(c.name), .int(c.itemID), .text(c.modelHash), .text(c.explainer),
                          .int(Int64(c.classIndex)), .int(Int64(c.cluster)), .int(c.medoid ? 1 : 0), finite(c.x), finite(c.y)])
            }
            for s in summaries {
                try connection.query("""
                    INSERT INTO cluster_summaries(run_id, name, model_hash, explainer, class_index, cluster, size, medoid_item, flagged,
                      reasons, place, outside_share, object_lift, region_share, grid, mean_map, region, eigenvalues, neighbours)
                    VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)
                    """, [.int(s.runID), .text(s.name), .text(s.modelHash), .text(s.explainer), .int(Int64(s.classIndex)),
                          .int(Int64(s.cluster)), .int(Int64(s.size)), .int(s.medoidItem), .int(s.flagged ? 1 : 0),
                          .text(json(s.reasons)), .text(s.place), s.outsideShare.map(finite) ?? .null, s.objectLift.map(finite) ?? .null,
                          finite(s.regionShare),
                          .int(Int64(s.grid)), .text(json(s.meanMap)), .text(json(s.region)), .text(json(s.eigenvalues)),
                          .int(Int64(s.neighbours))])
            }
        }
    }

    /// A run's SpRAy rows, by stage, model, explainer, class, cluster, then item path.
    public func clusters(run: Int64) throws -> [ClusterRecord] {
        try reading { c in
            try c.query("""
                SELECT k.run_id, k.name, k.item_id, k.model_hash, k.explainer, k.class_index, k.cluster, k.medoid, k.x, k.y
                FROM clusters k JOIN items i ON i.id = k.item_id WHERE k.run_id = ?
                ORDER BY k.name, k.model_hash, k.explainer, k.class_index, k.cluster, i.dataset, i.path
                """, [.int(run)]).map { r in
                ClusterRecord(runID: r[0].int ?? 0, name: r[1].text ?? "", itemID: r[2].int ?? 0, modelHash: r[3].text ?? "",
                              explainer: r[4].text ?? "", classIndex: Int(r[5].int ?? 0), cluster: Int(r[6].int ?? 0),
                              medoid: (r[7].int ?? 0) != 0, x: r[8].double ?? .nan, y: r[9].double ?? .nan)
            }
        }
    }

    public func clusterSummaries(run: Int64) throws -> [ClusterSummaryRecord] {
        try reading { c in
            try c.query("""
                SELECT run_id, name, model_hash, explainer, class_index, cluster, size, medoid_item, flagged, reasons, place,
                       outside_share, object_lift, region_share, grid, mean_map, region, eigenvalues, neighbours
                FROM cluster_summaries WHERE run_id = ? ORDER BY name, model_hash, explainer, class_index, cluster
                """, [.int(run)]).map { r in
                ClusterSummaryRecord(runID: r[0].int ?? 0, name: r[1].text ?? "", modelHash: r[2].text ?? "", explainer: r[3].text ?? "",
                                     classIndex: Int(r[4].int ?? 0), cluster: Int(r[5].int ?? 0), size: Int(r[6].int ?? 0),
                                     medoidItem: r[7].int ?? 0, flagged: (r[8].int ?? 0) != 0,
                                     reasons: decode([String].self, r[9].text) ?? [], place: r[10].text ?? "",
                                     outsideShare: r[11].double, objectLift: r[12].double, regionShare: r[13].double ?? 0,
                                     grid: Int(r[14].int ?? 0), meanMap: decode([Float].self, r[15].text) ?? [],
                                     region: decode([Int].self, r[16].text) ?? [], eigenvalues: decode([Double].self, r[17].text) ?? [],
                                     neighbours: Int(r[18].int ?? 0))
            }
        }
    }

    // MARK: - Merge

    /// Copies run `source` of the store at `path` (its items, predictions, heatmaps, metrics and
    /// failures, byte for byte, and the models they refer to) into run `target` of this store, in
    /// one transaction. An item (dataset and path) already in `target` is an error naming it.
    public func copyRun(_ source: Int64, from path: String, into target: Int64) throws {
        try locked {
            try connection.query("ATTACH DATABASE ? AS src", [.text(path)])
            defer { try? connection.execute("DETACH DATABASE src") }
            let duplicate = try connection.query("""
                SELECT s.path FROM src.items s JOIN main.items m ON m.dataset = s.dataset AND m.path = s.path AND m.run_id = ?
                WHERE s.run_id = ? LIMIT 1
                """, [.int(target), .int(source)]).first?[0].text
            if let duplicate { throw StoreError("\(path): item \(duplicate) is already in the merged run (two shards hold it)") }
            try transaction {
                try connection.execute("INSERT OR IGNORE INTO main.models SELECT hash, name, path, classes, preprocessing FROM src.models")
                try connection.query("""
                    INSERT INTO main.items(run_id, dataset, path, label, mask_path, tissue_mask_path, content_hash, width, height,
                                           slide_path, tile_x, tile_y, tile_width, tile_height, tile_level, tissue, piece, annotation_path,
                                           sharpness)
                    SELECT ?, dataset, path, label, mask_path, tissue_mask_path, content_hash, width, height,
                           slide_path, tile_x, tile_y, tile_width, tile_height, tile_level, tissue, piece, annotation_path, sharpness
                    FROM src.items WHERE run_id = ? ORDER BY id
                    """, [.int(target), .int(source)])
                // New item ids by dataset and path within the target run.
                let newID = "(SELECT m.id FROM main.items m WHERE m.run_id = \(target) AND m.dataset = si.dataset AND m.path = si.path)"
                try connection.query("""
                    INSERT INTO main.predictions(item_id, model_hash, class_index, class_name, probability, probabilities)
                    SELECT \(newID), p.model_hash, p.class_index, p.class_name, p.probability, p.probabilities
                    FROM src.predictions p JOIN src.items si ON si.id = p.item_id WHERE si.run_id = ?
                    """, [.int(source)])
                try connection.query("""
                    INSERT INTO main.attributions(item_id, model_hash, explainer, method, parameters, target, cache_key, raw_shape,
                                                  height, width, heatmap, seconds, heat_low, heat_high, diagnostics, signed, signed_max)
                    SELECT \(newID), a.model_hash, a.explainer, a.method, a.parameters, a.target, a.cache_key, a.raw_shape,
                           a.height, a.width, a.heatmap, a.seconds, a.heat_low, a.heat_high, a.diagnostics, a.signed, a.signed_max
                    FROM src.attributions a JOIN src.items si ON si.id = a.item_id WHERE si.run_id = ? ORDER BY a.id
                    """, [.int(source)])
                try connection.query("""
                    INSERT INTO main.metrics(item_id, model_hash, explainer, name, value)
                    SELECT \(newID), m.model_hash, m.explainer, m.name, m.value
                    FROM src.metrics m JOIN src.items si ON si.id = m.item_id WHERE si.run_id = ?
                    """, [.int(source)])
                try connection.query("""
                    INSERT INTO main.curves(item_id, model_hash, explainer, kind, points)
                    SELECT \(newID), c.model_hash, c.explainer, c.kind, c.points
                    FROM src.curves c JOIN src.items si ON si.id = c.item_id WHERE si.run_id = ?
                    """, [.int(source)])
                // Every shard records every slide of its datasets: one row each in the merged run.
                try connection.query("""
                    INSERT OR IGNORE INTO main.slides(run_id, \(Store.slideColumns))
                    SELECT ?, \(Store.slideColumns) FROM src.slides WHERE run_id = ? ORDER BY id
                    """, [.int(target), .int(source)])
                try connection.query("""
                    INSERT INTO main.failures(run_id, item_path, stage, message)
                    SELECT ?, item_path, stage, message FROM src.failures WHERE run_id = ? ORDER BY id
                    """, [.int(target), .int(source)])
            }
        }
    }

    /// Every run of the store at `path` (opened and migrated like any store).
    public static func runs(at path: String) throws -> [RunRecord] {
        guard FileManager.default.fileExists(atPath: path) else { throw StoreError("\(path): no such database") }
        return try Store(path: path).runs()
    }
}
