import Foundation
import TestSupport
import XCTest
@testable import Pipeline
import Store

/// End to end on a few demo slides plus a broken file: failures are rows, the run completes.
final class RunnerTests: XCTestCase {
    func testRunRecordsEverythingAndSurvivesABadItem() throws {
        let dir = Support.temporaryDirectory()
        let demo = Support.repo("datasets/demo")
        var csv = "path,label,mask\n"
        for i in 0..<4 {
            let name = String(format: "slide_%03d.png", i)
            csv += "\(demo)/images/\(name),\(i % 2 == 0 ? "normal" : "abnormal"),\(demo)/masks/\(name)\n"
        }
        // A truncated image and a name that must reach the report as text.
        try FileManager.default.copyItem(atPath: Support.fixture("images/truncated.png"), toPath: "\(dir)/broken.png")
        let evil = "<img src=x onerror=alert(1)>.png"
        try FileManager.default.copyItem(atPath: "\(demo)/images/slide_001.png", toPath: "\(dir)/\(evil)")
        csv += "\(dir)/broken.png,normal,\n\(dir)/\(evil),abnormal,\n"
        try csv.write(toFile: "\(dir)/labels.csv", atomically: true, encoding: .utf8)
        let manifest = """
        pipeline: mini
        datasets:
          d:
            csv: labels.csv
        models:
          m:
            onnx: \(Support.repo("models/demo.onnx"))
            classes: [normal, abnormal]
            preprocessing: {size: [64, 64], mean: [0.5, 0.5, 0.5], std: [0.25, 0.25, 0.25]}
        explainers:
          gradcam: {method: gradcam}
          saliency: {method: saliency}
        stages:
          predict: {kind: predict}
          explain: {kind: explain}
          evaluate: {kind: evaluate, metrics: [pointing_game]}
          report: {kind: report, out: report}
        """
        try manifest.write(toFile: "\(dir)/p.yaml", atomically: true, encoding: .utf8)
        let plan = try Plan(try ManifestParser.load(path: "\(dir)/p.yaml"))
        let summary = try Runner(plan: plan, options: RunOptions(jobs: 2, database: "\(dir)/c.sqlite"), log: { _ in }).run()
        XCTAssertEqual(summary.items, 6)
        XCTAssertEqual(summary.failures, 1)
        XCTAssertEqual(summary.status, "partial")

        let store = try Store(path: "\(dir)/c.sqlite")
        let run = summary.runID
        XCTAssertEqual(try store.items(run: run).count, 5)
        XCTAssertEqual(try store.predictions(run: run).count, 5)
        XCTAssertEqual(try store.attributions(run: run).count, 10)
        let failure = try XCTUnwrap(try store.failures(run: run).first)
        XCTAssertTrue(failure.message.contains("broken.png"), failure.message)
        XCTAssertEqual(try store.runs().last?.status, "partial")
        // Demo labels: predictions on these slides are right.
        let byPath = Dictionary(uniqueKeysWithValues: try store.items(run: run).map { ($0.id!, $0) })
        for p in try store.predictions(run: run) { XCTAssertEqual(p.className, byPath[p.itemID]?.label) }
        // Pointing game only where a lesion mask exists (the abnormal slides 1 and 3).
        // Two pointing-game rows (standard and strict) per explainer.
        XCTAssertEqual(try store.metrics(run: run).filter { $0.value != nil }.count, 8)
        // Cache keys are content-addressed: they differ across explainers and images, and the
        // renamed copy of slide_001 shares slide_001's keys.
        let keys = try store.attributions(run: run).map(\.cacheKey)
        XCTAssertEqual(keys.count, 10)
        XCTAssertEqual(Set(keys).count, 8)

        XCTAssertEqual(summary.computed, 8) // the renamed copy of slide_001 reuses its heatmaps
        XCTAssertEqual(summary.reused, 2)

        // Rerunning the unchanged manifest does no work: every heatmap comes from the store.
        let again = try Runner(plan: plan, options: RunOptions(jobs: 1, database: "\(dir)/c.sqlite"), log: { _ in }).run()
        XCTAssertEqual(again.computed, 0)
        XCTAssertEqual(again.reused, 10)
        XCTAssertEqual(again.failures, 1) // the broken file is still broken
        let first = try store.attributions(run: run).map(\.heatmap)
        XCTAssertEqual(try store.attributions(run: again.runID).map(\.heatmap), first)
        XCTAssertEqual(try store.metrics(run: again.runID).map(\.value), try store.metrics(run: run).map(\.value))

        let index = try String(contentsOfFile: "\(dir)/report/index.html", encoding: .utf8)
        XCTAssertTrue(index.contains("broken.png"), "failures are listed on the index")
        let gallery = try String(contentsOfFile: "\(dir)/report/gallery-abnormal-1.html", encoding: .utf8)
        for html in [index, gallery] {
            XCTAssertFalse(html.contains("<img src=x"), "the malicious file name reached the HTML unescaped")
        }
        XCTAssertTrue(gallery.contains("&lt;img src=x onerror=alert(1)&gt;.png"))
        // Files are named by content: the injected name is a copy of slide_001, so it shares its
        // original and overlays; four distinct readable images, each with two overlays and the
        // two heatmaps alone (the item page's view switch).
        let images = try FileManager.default.contentsOfDirectory(atPath: "\(dir)/report/images")
        XCTAssertEqual(images.count, 4 * 5)
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: "\(dir)/report/items").count, 5)
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: "\(dir)/report/doctor").count, 5)
    }

    /// Two datasets × two models × three explainers: all twelve combinations run, each item's
    /// models share one item row, gates judge each model, the report shows both, a rerun reuses
    /// everything and a resumed run skips what is committed.
    func testEveryDatasetAndModelRuns() throws {
        let dir = Support.temporaryDirectory()
        let demo = Support.repo("datasets/demo")
        func csv(_ range: Range<Int>) -> String {
            "path,label,mask\n" + range.map { i in
                let name = String(format: "slide_%03d.png", i)
                return "\(demo)/images/\(name),\(i % 2 == 0 ? "normal" : "abnormal"),\(demo)/masks/\(name)\n"
            }.joined()
        }
        try csv(0..<3).write(toFile: "\(dir)/a.csv", atomically: true, encoding: .utf8)
        // Dataset b shares slide 2 with a: the same file in two datasets is two items.
        try csv(2..<4).write(toFile: "\(dir)/b.csv", atomically: true, encoding: .utf8)
        let preprocessing = "{size: [64, 64], mean: [0.5, 0.5, 0.5], std: [0.25, 0.25, 0.25]}"
        try """
        pipeline: grid
        datasets:
          a: {csv: a.csv}
          b: {csv: b.csv}
        models:
          cnn: {onnx: \(Support.repo("models/demo.onnx")), classes: [normal, abnormal], preprocessing: \(preprocessing)}
          vgg: {onnx: \(Support.repo("models/demo-vgg.onnx")), classes: [normal, abnormal], preprocessing: \(preprocessing)}
        explainers:
          gradcam: {method: gradcam}
          saliency: {method: saliency}
          lrp: {method: lrp}
        stages:
          explain: {kind: explain}
          evaluate: {kind: evaluate, metrics: [pointing_game]}
          models: {kind: compare, model: [cnn, vgg]}
          nightly: {kind: drift}
          report: {kind: report, out: report}
        gates:
          accurate: {metric: accuracy, min: 0.5}
          vgg-points: {metric: pointing_game, explainer: lrp, model: vgg, min: 0.5}
          still-looks-there: {metric: drift_spearman, explainer: gradcam, min: 0.99}
        """.write(toFile: "\(dir)/p.yaml", atomically: true, encoding: .utf8)
        let plan = try Plan(try ManifestParser.load(path: "\(dir)/p.yaml"))
        XCTAssertEqual(plan.combinations.count, 4)
        let summary = try Runner(plan: plan, options: RunOptions(jobs: 2, database: "\(dir)/c.sqlite"), log: { _ in }).run()
        XCTAssertEqual(summary.items, 5)
        XCTAssertEqual(summary.status, "complete")
        let store = try Store(path: "\(dir)/c.sqlite")
        let items = try store.items(run: summary.runID)
        XCTAssertEqual(items.map(\.dataset), ["a", "a", "a", "b", "b"])
        XCTAssertEqual(try store.predictions(run: summary.runID).count, 5 * 2)
        let attributions = try store.attributions(run: summary.runID)
        XCTAssertEqual(attributions.count, 5 * 2 * 3)
        let models = Dictionary(uniqueKeysWithValues: try store.models().map { ($0.name, $0.hash) })
        // Every (dataset, model, explainer) has its heatmaps: 2 × 2 × 3 = 12 combinations.
        let byItem = Dictionary(uniqueKeysWithValues: items.map { ($0.id!, $0.dataset) })
        let combos = Set(attributions.map { "\(byItem[$0.itemID]!) \($0.modelHash) \($0.explainer)" })
        XCTAssertEqual(combos.count, 12)
        // Pointing-game rows for the abnormal items (1, 3 in b... and 1 in a), per model.
        let metrics = try store.metrics(run: summary.runID)
        XCTAssertEqual(Set(metrics.map(\.modelHash)), Set(models.values))
        XCTAssertEqual(metrics.filter { $0.value != nil }.count, 2 * 2 * 3 * 2) // 2 lesion items × 2 models × 3 explainers × (standard, strict)
        // The two models' heatmaps of one item differ (they are two models, not one copied).
        let slide1 = items.first { $0.path.hasSuffix("slide_001.png") }!.id!
        let cams = attributions.filter { $0.itemID == slide1 && $0.explainer == "gradcam" }
        XCTAssertEqual(cams.count, 2)
        XCTAssertNotEqual(cams[0].heatmap, cams[1].heatmap)
        XCTAssertEqual(summary.gates.map(\.name), ["accurate [cnn]", "accurate [vgg]", "vgg-points", "still-looks-there [cnn]",
                                                   "still-looks-there [vgg]"])
        // The first run has no baseline: the drift gates have no value and fail.
        XCTAssertEqual(summary.gates.filter { $0.metric == "drift_spearman" }.map(\.passed), [false, false])
        // Model vs model: one row per item and explainer, SSIM and ρ in range, models differ somewhere.
        let compared = try store.comparisons(run: summary.runID).filter { $0.kind == "models" }
        XCTAssertEqual(compared.count, 5 * 3)
        XCTAssertTrue(compared.allSatisfy { ($0.ssim ?? 2) <= 1.000001 && abs($0.spearman ?? 2) <= 1.000001 && $0.samePrediction != nil })
        XCTAssertTrue(compared.contains { ($0.ssim ?? 1) < 0.9 })
        let index = try String(contentsOfFile: "\(dir)/report/index.html", encoding: .utf8)
        XCTAssertTrue(index.contains("id=\"models\""))
        XCTAssertTrue(index.contains("gradcam [vgg]") && index.contains("lrp [cnn]"))
        let itemPage = try String(contentsOfFile: "\(dir)/report/items/\(slide1).html", encoding: .utf8)
        XCTAssertTrue(itemPage.contains("id=\"model-predictions\"") && itemPage.contains("saliency [cnn]"))

        XCTAssertTrue(index.contains("id=\"comparisons\"") && index.contains("cnn vs vgg"))

        let again = try Runner(plan: plan, options: RunOptions(jobs: 1, database: "\(dir)/c.sqlite"), log: { _ in }).run()
        XCTAssertEqual(again.computed, 0)
        XCTAssertEqual(again.reused, 30)
        // Against the previous run nothing moved: every drift row is identical, the gates pass.
        let drift = try store.comparisons(run: again.runID).filter { $0.kind == "baseline" }
        XCTAssertEqual(drift.count, 5 * 2 * 3)
        XCTAssertTrue(drift.allSatisfy { $0.spearman == 1 && $0.ssim.map { abs($0 - 1) < 1e-9 } == true && $0.topK == 1 })
        XCTAssertTrue(again.gates.filter { $0.metric == "drift_spearman" }.allSatisfy(\.passed))
        XCTAssertEqual(try store.metrics(run: again.runID).map(\.value), metrics.map(\.value))

        // A run killed after dataset a: resuming runs b only.
        let partial = try store.insert(RunRecord(pipeline: "grid", manifestPath: plan.manifest.file,
                                                 manifestHash: try Hashing.sha256(file: plan.manifest.file), candelaVersion: "x",
                                                 startedAt: "t", status: "running", jobs: 1))
        for item in items where item.dataset == "a" {
            var copy = item
            copy.runID = partial
            try store.insert(copy)
        }
        let resumed = try Runner(plan: plan, options: RunOptions(jobs: 1, database: "\(dir)/c.sqlite", resume: true), log: { _ in }).run()
        XCTAssertEqual(resumed.runID, partial)
        XCTAssertEqual(resumed.resumed, 3)
        XCTAssertEqual(resumed.reused, 2 * 2 * 3)
        XCTAssertEqual(try store.items(run: partial).count, 5)
    }

    /// Night-over-night drift: the same model name with new weights tonight; the heatmaps move,
    /// the drift gate fails, and the rows name the baseline run.
    func testDriftAgainstThePreviousRunFlagsNewWeights() throws {
        let dir = Support.temporaryDirectory()
        let demo = Support.repo("datasets/demo")
        try ("path,label,mask\n" + (0..<4).map { i in
            let name = String(format: "slide_%03d.png", i)
            return "\(demo)/images/\(name),\(i % 2 == 0 ? "normal" : "abnormal"),\(demo)/masks/\(name)\n"
        }.joined()).write(toFile: "\(dir)/d.csv", atomically: true, encoding: .utf8)
        func manifest(_ onnx: String) throws -> Plan {
            try """
            pipeline: nightly
            datasets:
              d: {csv: d.csv}
            models:
              m: {onnx: \(Support.repo(onnx)), classes: [normal, abnormal], preprocessing: {size: [64, 64], mean: [0.5, 0.5, 0.5], std: [0.25, 0.25, 0.25]}}
            explainers:
              saliency: {method: saliency}
            stages:
              explain: {kind: explain}
              tonight: {kind: drift, moved: 0.9}
            gates:
              stable: {metric: drift_spearman, explainer: saliency, min: 0.95}
              few-moved: {metric: drift_moved, explainer: saliency, max: 0.25}
            """.write(toFile: "\(dir)/p.yaml", atomically: true, encoding: .utf8)
            return try Plan(try ManifestParser.load(path: "\(dir)/p.yaml"))
        }
        let first = try Runner(plan: try manifest("models/demo.onnx"), options: RunOptions(database: "\(dir)/c.sqlite"), log: { _ in }).run()
        let second = try Runner(plan: try manifest("models/demo-vgg.onnx"), options: RunOptions(database: "\(dir)/c.sqlite"), log: { _ in }).run()
        let store = try Store(path: "\(dir)/c.sqlite")
        let rows = try store.comparisons(run: second.runID)
        XCTAssertEqual(rows.count, 4)
        XCTAssertTrue(rows.allSatisfy { $0.kind == "baseline" && $0.reference == "\(dir)/c.sqlite#\(first.runID)" && $0.modelA != $0.modelB })
        XCTAssertTrue(rows.allSatisfy { ($0.spearman ?? 1) < 0.9 }, "\(rows.map(\.spearman))")
        XCTAssertEqual(second.gates.map(\.name), ["stable", "few-moved"])
        XCTAssertEqual(second.gates.map(\.passed), [false, false])
        XCTAssertEqual(second.gates[1].value, 1) // every item moved
    }
}
