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
        try store.insert(MetricRecord(itemID: item, explainer: "gradcam", name: "pointing_game", value: 1))
        try store.insert(FailureRecord(runID: run, itemPath: "/bad.png", stage: "item", message: "truncated"))
        return run
    }

    func check(_ store: Store, _ run: Int64) throws {
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
