import Foundation
import TestSupport
import XCTest
@testable import Store

/// The schema, records and queries, on an in-memory and on a file database.
final class StoreTests: XCTestCase {
    func fill(_ store: Store) throws -> Int64 {
        let run = try store.insert(RunRecord(pipeline: "p", manifestPath: "/m.yaml", manifestHash: "h", candelaVersion: "0.1.0",
                                             startedAt: "2026-11-26T00:00:00Z", status: "running", jobs: 2))
        try store.upsert(ModelRecord(hash: "mh", name: "m", path: "/m.onnx", classes: ["a", "b"], preprocessing: "{}"))
        let item = try store.insert(ItemRecord(runID: run, dataset: "d", path: "/x.png", label: "b", maskPath: nil,
                                               contentHash: "c", width: 4, height: 3))
        try store.insert(PredictionRecord(itemID: item, modelHash: "mh", classIndex: 1, className: "b", probability: 0.75,
                                          probabilities: [0.25, 0.75]))
        try store.insert(AttributionRecord(itemID: item, modelHash: "mh", explainer: "gradcam", method: "gradcam",
                                           parameters: "{}", target: 1, cacheKey: "k", rawShape: [2, 2], height: 2, width: 3,
                                           heatmap: [0, 0.1, 0.5, 0.33333, 0.9, 1], seconds: 0.01))
        try store.insert(AttributionRecord(itemID: item, modelHash: "mh", explainer: "lrp", method: "lrp",
                                           parameters: "{}", target: 1, cacheKey: "s", rawShape: [3, 2, 3], height: 2, width: 3,
                                           heatmap: [1, 0.1, 0.5, 0, 0.9, 1], seconds: 0.01, diagnostics: ["samples": 3],
                                           signed: [-1, 0.1, 0.5, 0, -0.9, 1], signedMax: 2.5))
        try store.insert(MetricRecord(itemID: item, explainer: "gradcam", name: "pointing_game", value: 1))
        try store.insert(CurveRecord(itemID: item, modelHash: "mh", explainer: "gradcam", kind: "deletion", points: [0.9, 0.5, 0.1]))
        try store.insert(FailureRecord(runID: run, itemPath: "/bad.png", stage: "item", message: "truncated"))
        return run
    }

    func check(_ store: Store, _ run: Int64) throws {
        // A signed map and diagnostics come back as written (the map within Int16 quantization).
        let lrp = try XCTUnwrap(try store.attributions(run: run).first { $0.explainer == "lrp" })
        XCTAssertEqual(lrp.signedMax, 2.5)
        XCTAssertEqual(lrp.diagnostics, ["samples": 3])
        for (a, b) in zip(try XCTUnwrap(lrp.signed), [Float(-1), 0.1, 0.5, 0, -0.9, 1]) { XCTAssertEqual(a, b, accuracy: 1.6e-5) }
        XCTAssertNil(try store.attributions(run: run).first { $0.explainer == "gradcam" }?.signed)
        XCTAssertEqual(try store.curves(run: run).map(\.points), [[0.9, 0.5, 0.1]])
        XCTAssertEqual(try store.cachedCurve(cacheKey: "k", kind: "deletion"), [0.9, 0.5, 0.1])
        XCTAssertNil(try store.cachedCurve(cacheKey: "k", kind: "insertion"))
        XCTAssertEqual(try store.runs().map(\.pipeline), ["p"])
        XCTAssertEqual(try store.items(run: run).map(\.path), ["/x.png"])
        XCTAssertEqual(try store.predictions(run: run).first?.probabilities, [0.25, 0.75])
        let a = try XCTUnwrap(try store.attributions(run: run).first)
        XCTAssertEqual(a.rawShape, [2, 2])
        let original: [Float] = [0, 0.1, 0.5, 0.33333, 0.9, 1]
        for (x, y) in zip(a.heatmap, original) { XCTAssertEqual(x, y, accuracy: 1 / 65535.0) }
        XCTAssertEqual(try store.metrics(run: run).first?.value, 1)
        XCTAssertEqual(try store.failures(run: run).map(\.message), ["truncated"])
        XCTAssertEqual(try store.models().first?.classes, ["a", "b"])
    }

    func testInMemory() throws {
        let store = try Store(path: ":memory:")
        XCTAssertEqual(store.schemaVersion, Schema.migrations.count)
        try check(store, try fill(store))
    }

    func testFileDatabaseSurvivesReopening() throws {
        let path = Support.temporaryDirectory() + "/c.sqlite"
        let run = try fill(try Store(path: path))
        let reopened = try Store(path: path) // migrations are not re-applied
        XCTAssertEqual(reopened.schemaVersion, Schema.migrations.count)
        try check(reopened, run)
        try reopened.finishRun(run, status: "complete", at: "2026-11-26T01:00:00Z")
        XCTAssertEqual(try reopened.runs().first?.status, "complete")
    }

    /// Migration 4 on a store written at schema 3: every row kept, metrics given the model of
    /// their heatmap, items unique per (run, dataset, path) instead of (run, path).
    func testMigrationFourKeepsRowsAndAddsTheModelDimension() throws {
        let path = Support.temporaryDirectory() + "/v3.sqlite"
        do {
            let c = try SQLiteConnection(path: path)
            for sql in Schema.migrations.prefix(3) { try c.execute("BEGIN; \(sql) COMMIT;") }
            try c.execute("""
                PRAGMA user_version = 3;
                INSERT INTO runs(id, pipeline, manifest_path, manifest_hash, candela_version, started_at, status, jobs)
                  VALUES (1, 'p', '/m.yaml', 'h', '0.1.0', 't', 'complete', 1);
                INSERT INTO models VALUES ('mh', 'm', '/m.onnx', '["a","b"]', '{}');
                INSERT INTO items(id, run_id, dataset, path, content_hash, width, height) VALUES (7, 1, 'd', '/x.png', 'c', 4, 3);
                INSERT INTO predictions VALUES (7, 'mh', 1, 'b', 0.75, '[0.25,0.75]');
                INSERT INTO attributions(item_id, model_hash, explainer, method, parameters, target, cache_key, raw_shape, height,
                                         width, heatmap, seconds) VALUES (7, 'mh', 'gradcam', 'gradcam', '{}', 1, 'k', '[2]', 1, 1, x'ffff', 0.5);
                INSERT INTO metrics VALUES (7, 'gradcam', 'pointing_game', 1.0);
                """)
        }
        let store = try Store(path: path)
        XCTAssertEqual(store.schemaVersion, Schema.migrations.count)
        XCTAssertEqual(try store.items(run: 1).map(\.id), [7])
        XCTAssertEqual(try store.metrics(run: 1), [MetricRecord(itemID: 7, explainer: "gradcam", name: "pointing_game", value: 1, modelHash: "mh")])
        XCTAssertEqual(try store.attributions(run: 1).first?.heatmap, [1])
        // The cached metric is found through its heatmap's model.
        XCTAssertEqual(try store.cachedMetric(cacheKey: "k", name: "pointing_game")?.value, 1)
        // The same file in a second dataset of the run is a new item; twice in one dataset is refused.
        XCTAssertNoThrow(try store.insert(ItemRecord(runID: 1, dataset: "e", path: "/x.png", label: nil, maskPath: nil,
                                                     contentHash: "c", width: 4, height: 3)))
        XCTAssertThrowsError(try store.insert(ItemRecord(runID: 1, dataset: "d", path: "/x.png", label: nil, maskPath: nil,
                                                         contentHash: "c", width: 4, height: 3)))
        XCTAssertEqual(try store.itemKeys(run: 1), [ItemKey(dataset: "d", path: "/x.png"), ItemKey(dataset: "e", path: "/x.png")])
        // Foreign keys are enforced again after the migration.
        XCTAssertThrowsError(try store.insert(PredictionRecord(itemID: 999, modelHash: "mh", classIndex: 0, className: "a",
                                                               probability: 1, probabilities: [1, 0])))
        // Two models' metrics on one heatmap name are two rows.
        try store.insert(MetricRecord(itemID: 7, explainer: "gradcam", name: "pointing_game", value: 0, modelHash: "other"))
        XCTAssertEqual(try store.metrics(run: 1).count, 2)
    }

    func testTransactionRollsBack() throws {
        let store = try Store(path: ":memory:")
        let run = try fill(store)
        struct Boom: Error {}
        XCTAssertThrowsError(try store.transaction {
            try store.insert(FailureRecord(runID: run, itemPath: "/y.png", stage: "item", message: "x"))
            throw Boom()
        })
        XCTAssertEqual(try store.failures(run: run).count, 1)
    }

    func testNewerSchemaIsRefused() throws {
        let path = Support.temporaryDirectory() + "/future.sqlite"
        _ = try Store(path: path)
        let c = try SQLiteConnection(path: path)
        try c.execute("PRAGMA user_version = 99")
        XCTAssertThrowsError(try Store(path: path)) { XCTAssertTrue("\($0)".contains("newer"), "\($0)") }
    }
}
