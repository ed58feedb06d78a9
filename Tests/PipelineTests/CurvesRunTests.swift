import Engine
import Foundation
import TestSupport
import XCTest
@testable import Explainers
@testable import Pipeline
import Store

/// The curves behind the deletion/insertion AUCs and the randomization check: stored per
/// heatmap, consistent with their metrics, brought along when a rerun reuses the metrics, and
/// plotted on the report's index.
final class CurvesRunTests: XCTestCase {
    func testCurvesAreStoredReusedAndPlotted() throws {
        let dir = Support.temporaryDirectory()
        let demo = Support.repo("datasets/demo")
        try "path,label,mask\n\(demo)/images/slide_001.png,abnormal,\(demo)/masks/slide_001.png\n\(demo)/images/slide_002.png,normal,\n"
            .write(toFile: "\(dir)/labels.csv", atomically: true, encoding: .utf8)
        try """
        pipeline: curves
        datasets:
          d: {csv: labels.csv}
        models:
          m:
            onnx: \(Support.repo("models/demo.onnx"))
            classes: [normal, abnormal]
            preprocessing: {size: [64, 64], mean: [0.5, 0.5, 0.5], std: [0.25, 0.25, 0.25]}
        explainers:
          gradcam: {method: gradcam}
          saliency: {method: saliency}
        stages:
          explain: {kind: explain}
          evaluate: {kind: evaluate, metrics: [deletion_auc, insertion_auc, randomization]}
          report: {kind: report, out: report}
        """.write(toFile: "\(dir)/p.yaml", atomically: true, encoding: .utf8)
        let plan = try Plan(try ManifestParser.load(path: "\(dir)/p.yaml"))
        let summary = try Runner(plan: plan, options: RunOptions(jobs: 2, database: "\(dir)/c.sqlite"), log: { _ in }).run()
        XCTAssertEqual(summary.failures, 0)
        let store = try Store(path: "\(dir)/c.sqlite")
        let curves = try store.curves(run: summary.runID)
        XCTAssertEqual(curves.count, 2 * 2 * 3) // items × explainers × kinds
        let metrics = try store.metrics(run: summary.runID)
        let layers = try Model(path: Support.repo("models/demo.onnx")).graph.parameterizedLayers.count
        for c in curves {
            let metric = metrics.first { $0.itemID == c.itemID && $0.explainer == c.explainer && $0.name == "\(c.kind == "randomization" ? "randomization" : c.kind + "_auc")" }
            let value = try XCTUnwrap(metric?.value, "\(c.kind) of \(c.explainer)")
            switch c.kind {
            case "randomization":
                XCTAssertEqual(c.points.count, layers)
                XCTAssertEqual(c.points.reduce(0, +) / Double(c.points.count), value, accuracy: 1e-9)
            default:
                XCTAssertEqual(Faithfulness.auc(c.points), value, accuracy: 1e-9, "the AUC is the area under the stored curve")
                XCTAssertTrue(c.points.allSatisfy { $0 >= 0 && $0 <= 1 })
            }
        }
        // A rerun reuses the costly metrics and brings their curves along.
        let again = try Runner(plan: plan, options: RunOptions(jobs: 1, database: "\(dir)/c.sqlite"), log: { _ in }).run()
        XCTAssertEqual(again.computed, 0)
        // (Items are committed in the order they finish: compare the curves as a set.)
        func sorted(_ c: [CurveRecord]) -> [[Double]] { c.map(\.points).sorted { $0.lexicographicallyPrecedes($1) } }
        XCTAssertEqual(sorted(try store.curves(run: again.runID)), sorted(curves))
        let index = try String(contentsOfFile: "\(dir)/report/index.html", encoding: .utf8)
        XCTAssertTrue(index.contains("aria-label=\"Deletion: mean probability (lower is better)\""))
        XCTAssertTrue(index.contains("aria-label=\"Insertion: mean probability (higher is better)\""))
        XCTAssertTrue(index.contains("Sanity check per layer"))
        XCTAssertEqual(index.components(separatedBy: "<polyline").count - 1, 3 * 2, "one line per explainer in each plot")
    }
}
