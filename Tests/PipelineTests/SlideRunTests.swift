import Foundation
import Slides
import TestSupport
import XCTest
@testable import Pipeline
import Store

/// A slide audit end to end on two synthetic slides with the demo model: tiles on tissue only,
/// verdicts per slide and per tissue piece, stitched heatmaps whose hottest point is a planted
/// lesion, and the same results from two shards merged as from one run.
final class SlideRunTests: XCTestCase {
    func writeSlides(_ dir: String) throws -> [SyntheticSlide] {
        let abnormal = SyntheticSlide.layout(width: 2048, height: 1024, pieceCount: 2, lesionsPerPiece: 3, seed: 11)
        let normal = SyntheticSlide.layout(width: 2048, height: 1024, pieceCount: 2, lesionsPerPiece: 0, seed: 12)
        for (name, slide) in [("abnormal", abnormal), ("normal", normal)] {
            try PyramidWriter(mpp: SyntheticSlide.mpp, tileSize: 128, compression: .jpeg(quality: 90), minimumSide: 512)
                .write(to: "\(dir)/\(name).svs", width: slide.width, height: slide.height) { x, y, w, h, d in
                    slide.render(x: x, y: y, width: w, height: h, downsample: d)
                }
        }
        try Data(abnormal.lesionGeoJSON.utf8).write(to: URL(fileURLWithPath: "\(dir)/abnormal.geojson"))
        try "path,label,annotation\nabnormal.svs,abnormal,abnormal.geojson\nnormal.svs,normal,\n"
            .write(toFile: "\(dir)/slides.csv", atomically: true, encoding: .utf8)
        return [abnormal, normal]
    }

    func manifest(_ dir: String) throws -> Plan {
        try """
        pipeline: slides
        datasets:
          biopsies:
            kind: slides
            csv: slides.csv
            mpp: 0.5
            tile: 64
            tissue_mpp: 4
            min_piece_area: 10000
            aggregate: {rule: top_k_mean, k: 3, class: abnormal}
        models:
          cnn:
            onnx: \(Support.repo("models/demo.onnx"))
            classes: [normal, abnormal]
            preprocessing: {size: [64, 64], mean: [0.5, 0.5, 0.5], std: [0.25, 0.25, 0.25]}
        explainers:
          gradcam: {method: gradcam}
          lrp: {method: lrp}
        stages:
          explain: {kind: explain}
          evaluate: {kind: evaluate, metrics: [pointing_game]}
        """.write(toFile: "\(dir)/p.yaml", atomically: true, encoding: .utf8)
        return try Plan(try ManifestParser.load(path: "\(dir)/p.yaml"))
    }

    /// A budget for costly explainers (`only:`): occlusion on the tiles the model calls abnormal
    /// with p ≥ 0.5, LIME on the tiles that touch the annotation; Grad-CAM on every tile.
    func testOnlyScopesBudgetCostlyExplainers() throws {
        let dir = Support.temporaryDirectory()
        let truth = try writeSlides(dir)
        _ = try manifest(dir)
        var text = try String(contentsOfFile: "\(dir)/p.yaml", encoding: .utf8)
        text = text.replacingOccurrences(of: "  lrp: {method: lrp}", with: "  occlusion: {method: occlusion, params: {window: \"3,16,16\", "
            + "stride: \"3,16,16\"}, only: {class: abnormal, probability: 0.5}}\n  lime: {method: lime, params: {samples: 32}, only: {annotated: true}}")
        XCTAssertTrue(text.contains("only: {annotated: true}"))
        try text.write(toFile: "\(dir)/p.yaml", atomically: true, encoding: .utf8)
        let plan = try Plan(try ManifestParser.load(path: "\(dir)/p.yaml"))
        let summary = try Runner(plan: plan, options: RunOptions(jobs: 2, database: "\(dir)/c.sqlite"), log: { _ in }).run()
        XCTAssertEqual(summary.status, "complete")
        let store = try Store(path: "\(dir)/c.sqlite")
        let items = Dictionary(uniqueKeysWithValues: try store.items(run: summary.runID).map { ($0.id!, $0) })
        let predictions = Dictionary(uniqueKeysWithValues: try store.predictions(run: summary.runID).map { ($0.itemID, $0) })
        let byExplainer = Dictionary(grouping: try store.attributions(run: summary.runID), by: \.explainer).mapValues { Set($0.map(\.itemID)) }
        XCTAssertEqual(byExplainer["gradcam"]?.count, items.count)
        let positive = Set(predictions.values.filter { $0.probabilities[1] >= 0.5 }.map(\.itemID))
        XCTAssertFalse(positive.isEmpty)
        XCTAssertEqual(byExplainer["occlusion"] ?? [], positive)
        // LIME: tiles of the abnormal slide only (the normal slide has no annotation), each within
        // a lesion's bounding box widened by the tile.
        let lime = byExplainer["lime"] ?? []
        XCTAssertFalse(lime.isEmpty)
        XCTAssertLessThan(lime.count, items.count / 2)
        for id in lime {
            let t = items[id]!.tile!
            XCTAssertTrue(t.slidePath.hasSuffix("abnormal.svs"))
            XCTAssertTrue(truth[0].lesions.contains { l in
                let r = 1.3 * max(l.rx, l.ry) // the outline's wobble
                return Double(t.x) < l.cx + r && l.cx - r < Double(t.x + t.width) && Double(t.y) < l.cy + r && l.cy - r < Double(t.y + t.height)
            }, "tile \(t.x),\(t.y) is far from every lesion")
        }
        XCTAssertEqual(summary.skipped, 2 * items.count - positive.count - lime.count)
    }

    func testSlideAuditFindsTheLesions() throws {
        let dir = Support.temporaryDirectory()
        let truth = try writeSlides(dir)
        let plan = try manifest(dir)
        let summary = try Runner(plan: plan, options: RunOptions(jobs: 2, database: "\(dir)/c.sqlite"), log: { _ in }).run()
        XCTAssertEqual(summary.status, "complete")
        let store = try Store(path: "\(dir)/c.sqlite")
        let slides = try store.slides(run: summary.runID)
        XCTAssertEqual(slides.map { URL(fileURLWithPath: $0.path).lastPathComponent }, ["abnormal.svs", "normal.svs"])
        let items = try store.items(run: summary.runID)
        XCTAssertEqual(items.count, slides.map(\.tiles).reduce(0, +))
        XCTAssertEqual(summary.items, items.count)
        for (slide, synthetic) in zip(slides, truth) {
            XCTAssertEqual(slide.vendor, "aperio")
            XCTAssertEqual(slide.mppX ?? 0, 0.25, accuracy: 1e-9)
            // Every tile centre lies on a planted tissue piece.
            for item in items where item.tile?.slidePath == slide.path {
                let t = item.tile!
                let (cx, cy) = (Double(t.x + t.width / 2), Double(t.y + t.height / 2))
                XCTAssertTrue(synthetic.pieces.contains { (p: SyntheticSlide.Ellipse) -> Bool in p.contains(cx, cy, wobble: 0.15) })
                XCTAssertEqual(item.width, 64)
            }
            let verdicts = try store.slideVerdicts(slide: slide.id!)
            XCTAssertEqual(verdicts.map(\.piece), [0, 1, 2])
            let expected = slide.label == "abnormal" ? ["abnormal", "abnormal", "normal"] : ["normal", "normal", "normal"]
            XCTAssertEqual(verdicts.map(\.className), expected, "\(verdicts)")
            XCTAssertTrue(verdicts[0].rule.contains("3 largest"))
            // Stitched maps: NaN off tissue, finite on it; on the abnormal slide the hottest
            // point of each map lies on a lesion (a slide-scale pointing game, 2 view pixels of slack).
            let maps = try store.slideHeatmaps(slide: slide.id!)
            XCTAssertEqual(maps.map(\.explainer), ["gradcam", "lrp"])
            for m in maps {
                XCTAssertTrue(m.values[0].isNaN, "a corner of glass has no tile")
                XCTAssertGreaterThan(m.values.filter { $0.isFinite }.count, m.values.count / 5)
                guard slide.label == "abnormal" else { continue }
                let best = m.values.indices.filter { m.values[$0].isFinite }.max { m.values[$0] < m.values[$1] }!
                let (x, y) = ((Double(best % m.width) + 0.5) * m.downsample, (Double(best / m.width) + 0.5) * m.downsample)
                let slack = 2 * m.downsample
                XCTAssertTrue(synthetic.lesions.contains { hypot($0.cx - x, $0.cy - y) <= $0.rx + slack },
                              "\(m.explainer): hottest point (\(x), \(y)) is on no lesion")
            }
        }
        // The slide pointing game: on the annotated slide, k = its 3 lesions, and the tiles ranked
        // highest by Grad-CAM and LRP lie on them; the slide without annotation has none.
        for slide in slides {
            let maps = try store.slideHeatmaps(slide: slide.id!)
            if slide.label == "abnormal" {
                XCTAssertEqual(maps.map(\.pointingK), [3, 3])
                for m in maps { XCTAssertGreaterThanOrEqual(m.pointing ?? -1, 2.0 / 3, m.explainer) }
            } else {
                XCTAssertEqual(maps.map(\.pointing), [nil, nil])
            }
        }
        let gate = { (explainer: String, min: Double) in
            GateSpec(name: "g", metric: "slide_pointing_game", explainer: explainer, comparison: .atLeast, threshold: min, line: 1, column: 1)
        }
        let gates = try Gates.evaluate([gate("gradcam", 0.6), gate("lrp", 1.01)], store: store, runID: summary.runID)
        XCTAssertEqual(gates.map(\.passed), [true, false])
        XCTAssertEqual(gates[0].value, try store.slideHeatmaps(slide: slides[0].id!)[0].pointing)
        // Pointing game per tile against the annotation: only tiles that touch a lesion count.
        let pointing = try store.metrics(run: summary.runID).filter { $0.name == "pointing_game" }.compactMap(\.value)
        XCTAssertFalse(pointing.isEmpty)
        XCTAssertLessThan(pointing.count, items.count)

        // Two shards merged give the same verdicts and stitched maps as the whole run.
        var merged: Int64 = 0
        let target = try Store(path: "\(dir)/merged.sqlite")
        for k in 1...2 {
            let shard = try Runner(plan: plan, options: RunOptions(jobs: 1, database: "\(dir)/s\(k).sqlite", shard: try Shard(index: k, count: 2)),
                                   log: { _ in }).run()
            if k == 1 {
                merged = try target.insert(RunRecord(pipeline: "slides", manifestPath: plan.manifest.file, manifestHash: "h",
                                                     candelaVersion: "x", startedAt: "t", status: "running", jobs: 2))
            }
            try target.copyRun(shard.runID, from: "\(dir)/s\(k).sqlite", into: merged)
        }
        _ = try RunFinisher(store: target, runID: merged, gates: [], report: nil, log: { _ in },
                            slideSettings: plan.manifest.datasets.compactMapValues(\.slides)).finish()
        let mergedSlides = try target.slides(run: merged)
        XCTAssertEqual(mergedSlides.map(\.path), slides.map(\.path))
        for (a, b) in zip(slides, mergedSlides) {
            XCTAssertEqual(try target.slideVerdicts(slide: b.id!).map(\.score), try store.slideVerdicts(slide: a.id!).map(\.score))
            let (ma, mb) = (try store.slideHeatmaps(slide: a.id!), try target.slideHeatmaps(slide: b.id!))
            XCTAssertEqual(ma.count, mb.count)
            for (x, y) in zip(ma, mb) {
                XCTAssertEqual(x.values.count, y.values.count)
                XCTAssertEqual(x.pointing, y.pointing)
                for (u, v) in zip(x.values, y.values) where u.isFinite || v.isFinite { XCTAssertEqual(u, v, accuracy: 1e-6 * max(1, abs(u))) }
            }
        }
    }
}
