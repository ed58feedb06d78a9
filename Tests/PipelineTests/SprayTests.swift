import Foundation
import TestSupport
import XCTest
@testable import Pipeline
import Store

/// SpRAy on a planted shortcut (Tests/Fixtures/spray, tools/make_spray_fixtures.py): 24 of the
/// 32 abnormal slides carry a small tag in the top-left corner and `tagged.onnx` learned to use
/// it; `clean.onnx` learned the same slides without tags. SpRAy must put the tagged slides in a
/// flagged cluster of their own, and flag nothing for the clean model.
final class SprayTests: XCTestCase {
    func testSprayFindsThePlantedShortcutAndNothingOnTheCleanSet() throws {
        let fixture = Support.fixture("spray")
        struct Meta: Decodable { let tagged_items: [String] }
        let tagged = Set(try JSONDecoder().decode(Meta.self, from: Data(contentsOf: URL(fileURLWithPath: "\(fixture)/meta.json"))).tagged_items
            .map { URL(fileURLWithPath: $0).lastPathComponent })
        XCTAssertEqual(tagged.count, 24)
        let dir = Support.temporaryDirectory()
        func model(_ name: String) -> String {
            """
              \(name)-cnn:
                onnx: \(fixture)/\(name).onnx
                classes: [normal, abnormal]
                preprocessing: {size: [64, 64], mean: [0.5, 0.5, 0.5], std: [0.25, 0.25, 0.25]}
                cam_layer: /block3/relu/Relu_output_0
            """
        }
        try """
        pipeline: clever-hans
        datasets:
          tagged: {csv: \(fixture)/tagged/labels.csv}
          clean: {csv: \(fixture)/clean/labels.csv}
        models:
        \(model("tagged"))
        \(model("clean"))
        explainers:
          gradcam: {method: gradcam}
          lrp: {method: lrp, params: {composite: epsilon-plus-flat}}
        stages:
          explain-tagged: {kind: explain, dataset: tagged, model: tagged-cnn}
          explain-clean: {kind: explain, dataset: clean, model: clean-cnn}
          strategies: {kind: spray}
        gates:
          no-clever-hans: {metric: spray_flags, explainer: gradcam, max: 0}
        """.write(toFile: "\(dir)/p.yaml", atomically: true, encoding: .utf8)
        let summary = try Runner(plan: try Plan(try ManifestParser.load(path: "\(dir)/p.yaml")),
                                 options: RunOptions(jobs: 2, database: "\(dir)/s.sqlite"), log: { _ in }).run()
        XCTAssertEqual(summary.status, "complete")
        let store = try Store(path: "\(dir)/s.sqlite")
        let models = Dictionary(uniqueKeysWithValues: try store.models().map { ($0.hash, $0.name) })
        let names = Dictionary(uniqueKeysWithValues: try store.items(run: summary.runID).map { ($0.id!, URL(fileURLWithPath: $0.path).lastPathComponent) })
        let summaries = try store.clusterSummaries(run: summary.runID)
        let rows = try store.clusters(run: summary.runID)
        func members(_ s: ClusterSummaryRecord) -> Set<String> {
            Set(rows.filter { $0.modelHash == s.modelHash && $0.explainer == s.explainer && $0.classIndex == s.classIndex && $0.cluster == s.cluster }
                .map { names[$0.itemID]! })
        }
        // The clean model: no cluster flagged, for either explainer or class.
        let clean = summaries.filter { models[$0.modelHash] == "clean-cnn" }
        XCTAssertFalse(clean.isEmpty)
        XCTAssertEqual(clean.filter(\.flagged).map { "\($0.explainer) class \($0.classIndex): \($0.reasons)" }, [])
        // The tagged model, Grad-CAM, class abnormal: exactly the 24 tagged slides, flagged, in the corner.
        let cam = summaries.filter { models[$0.modelHash] == "tagged-cnn" && $0.explainer == "gradcam" && $0.classIndex == 1 }
        let flagged = cam.filter(\.flagged)
        XCTAssertEqual(flagged.count, 1, "\(cam.map { ($0.size, $0.reasons) })")
        if let f = flagged.first {
            XCTAssertEqual(members(f), tagged)
            XCTAssertEqual(f.place, "top-left corner")
            XCTAssertTrue(f.reasons[0].contains("outside the object masks"), f.reasons[0])
            XCTAssertTrue(tagged.contains(names[f.medoidItem]!))
        }
        // LRP sees the same strategy: its flagged clusters hold the tagged slides and nothing else.
        let lrpFlagged = summaries.filter { models[$0.modelHash] == "tagged-cnn" && $0.explainer == "lrp" && $0.flagged }
        XCTAssertFalse(lrpFlagged.isEmpty)
        XCTAssertEqual(lrpFlagged.reduce(into: Set<String>()) { $0.formUnion(members($1)) }, tagged)
        // The normal class of either model is never flagged (no tag there).
        XCTAssertTrue(summaries.filter { $0.classIndex == 0 }.allSatisfy { !$0.flagged })
        // The gate judges each model: the tagged model fails it, the clean one passes.
        let gates = Dictionary(uniqueKeysWithValues: summary.gates.map { ($0.name, $0) })
        XCTAssertEqual(gates["no-clever-hans [tagged-cnn]"]?.passed, false)
        XCTAssertEqual(gates["no-clever-hans [tagged-cnn]"]?.value, 1)
        XCTAssertEqual(gates["no-clever-hans [clean-cnn]"]?.passed, true)
    }
}
