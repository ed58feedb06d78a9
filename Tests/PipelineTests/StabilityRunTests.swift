import Foundation
import TestSupport
import XCTest
@testable import Pipeline
import Store

/// LIME's and RISE's own measures through a run: stored for every heatmap with no evaluate stage,
/// cached with the heatmap, judged by a gate, flagged in the report.
final class StabilityRunTests: XCTestCase {
    func manifest(_ dir: String, gate: String = "{metric: stability, explainer: lime, min: 0.5}") throws -> String {
        let demo = Support.repo("datasets/demo")
        var csv = "path,label,mask\n"
        for i in 0..<3 {
            let name = String(format: "slide_%03d.png", i)
            csv += "\(demo)/images/\(name),\(i % 2 == 0 ? "normal" : "abnormal"),\(demo)/masks/\(name)\n"
        }
        try csv.write(toFile: "\(dir)/labels.csv", atomically: true, encoding: .utf8)
        let yaml = """
        pipeline: stability
        datasets:
          d: {csv: labels.csv}
        models:
          m:
            onnx: \(Support.repo("models/demo.onnx"))
            classes: [normal, abnormal]
            preprocessing: {size: [64, 64], mean: [0.5, 0.5, 0.5], std: [0.25, 0.25, 0.25]}
        explainers:
          lime: {method: lime, params: {samples: 400}}
          rise: {method: rise, params: {masks: 600}}
          rise-few: {method: rise, params: {mode: paper, masks: 40}}
          saliency: {method: saliency}
          lrp: {method: lrp}
        stages:
          explain: {kind: explain, target: 1}
          report: {kind: report, out: report}
        gates:
          stable: \(gate)
        """
        try yaml.write(toFile: "\(dir)/p.yaml", atomically: true, encoding: .utf8)
        return "\(dir)/p.yaml"
    }

    func testStabilityIsStoredCachedGatedAndFlagged() throws {
        let dir = Support.temporaryDirectory()
        let plan = try Plan(try ManifestParser.load(path: try manifest(dir)))
        let summary = try Runner(plan: plan, options: RunOptions(jobs: 2, database: "\(dir)/c.sqlite"), log: { _ in }).run()
        XCTAssertEqual(summary.failures, 0)
        let store = try Store(path: "\(dir)/c.sqlite")
        let metrics = try store.metrics(run: summary.runID)
        func values(_ explainer: String, _ name: String) -> [Double] {
            metrics.filter { $0.explainer == explainer && $0.name == name }.compactMap(\.value)
        }
        for e in ["lime", "rise", "rise-few"] {
            XCTAssertEqual(values(e, "stability").count, 3, e)
            XCTAssertEqual(values(e, "samples").count, 3, e)
        }
        XCTAssertEqual(values("lime", "fit_r2").count, 3)
        XCTAssertTrue(values("rise", "fit_r2").isEmpty)
        XCTAssertTrue(metrics.filter { $0.explainer == "saliency" || $0.explainer == "lrp" }.isEmpty, "deterministic methods have no diagnostics")
        XCTAssertTrue(values("lime", "samples").allSatisfy { $0 <= 400 })
        XCTAssertEqual(values("rise-few", "samples"), [40, 40, 40])
        // 40 masks of the paper's estimator: its halves do not agree.
        XCTAssertTrue(values("rise-few", "stability").allSatisfy { $0 < 0.8 }, "\(values("rise-few", "stability"))")
        for a in try store.attributions(run: summary.runID) where a.method == "lime" || a.method == "rise" {
            XCTAssertEqual(a.diagnostics["samples"].map { _ in true }, true, a.explainer)
        }
        XCTAssertEqual(try store.gateResults(run: summary.runID).first?.passed, true)
        // LRP, LIME and adaptive RISE keep a signed map (for the red/blue overlay); the others do not.
        for a in try store.attributions(run: summary.runID) {
            if a.method == "lrp" {
                let signed = try XCTUnwrap(a.signed)
                XCTAssertEqual(signed.map { abs($0) }.max()!, 1, accuracy: 1e-4)
                XCTAssertGreaterThan(a.signedMax ?? 0, 0)
                // The positive evidence dominates (z⁺ and flat rules; the dense layers' epsilon rule
                // can leave a little negative relevance).
                XCTAssertGreaterThan(signed.filter { $0 > 0 }.reduce(0, +), 5 * signed.filter { $0 < 0 }.reduce(0) { $0 - $1 })
            } else if a.explainer == "lime" || a.explainer == "rise" {
                // LIME's coefficients and adaptive RISE's centred map: 0 means no effect.
                XCTAssertNotNil(a.signed, a.explainer)
            } else {
                XCTAssertNil(a.signed, a.explainer) // saliency, and RISE's paper mode (all positive)
            }
        }

        // A rerun reuses every heatmap and stores the same measures with them.
        let again = try Runner(plan: plan, options: RunOptions(jobs: 1, database: "\(dir)/c.sqlite"), log: { _ in }).run()
        XCTAssertEqual(again.computed, 0)
        let reused = try store.metrics(run: again.runID)
        XCTAssertEqual(reused.map(\.value), metrics.map(\.value))
        XCTAssertEqual(reused.map(\.name), metrics.map(\.name))

        // The report: the mode on the method cards, the flag on the unstable heatmaps.
        let index = try String(contentsOfFile: "\(dir)/report/index.html", encoding: .utf8)
        XCTAssertTrue(index.contains("Mode: adaptive"))
        XCTAssertTrue(index.contains("Mode: paper"))
        XCTAssertTrue(index.contains("3 below 0.8, flagged unstable"))
        let items = try FileManager.default.contentsOfDirectory(atPath: "\(dir)/report/items")
        let page = try String(contentsOfFile: "\(dir)/report/items/\(items.sorted()[0])", encoding: .utf8)
        XCTAssertTrue(page.contains("unstable, a rerun with another seed would draw a different picture"))
        XCTAssertTrue(page.contains("fit R²"))
        XCTAssertTrue(page.contains("red: for abnormal, blue: against"))
    }

    func testGatesOnDiagnosticsNeedTheirMethods() throws {
        let dir = Support.temporaryDirectory()
        XCTAssertThrowsError(try ManifestParser.load(path: try manifest(dir, gate: "{metric: fit_r2, explainer: rise, min: 0.5}"))) {
            XCTAssertTrue("\($0)".contains("fit_r2 is LIME's; explainer 'rise' is rise"), "\($0)")
        }
        XCTAssertThrowsError(try ManifestParser.load(path: try manifest(dir, gate: "{metric: stability, explainer: saliency, min: 0.5}"))) {
            XCTAssertTrue("\($0)".contains("'stability' is measured by LIME and RISE heatmaps"), "\($0)")
        }
    }
}
