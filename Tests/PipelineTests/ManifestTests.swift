import Explainers
import Foundation
import TestSupport
import XCTest
@testable import Pipeline

/// Manifest parsing: the demo parses; mistakes are reported as file:line:column.
final class ManifestTests: XCTestCase {
    let base = Support.repo("pipelines")

    func parse(_ text: String) throws -> Manifest {
        try ManifestParser.parse(text, file: "test.yaml", baseDirectory: base)
    }

    func assertError(_ text: String, _ expected: String, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertThrowsError(try parse(text), file: file, line: line) {
            XCTAssertEqual("\($0)", expected, file: file, line: line)
        }
    }

    let valid = """
    pipeline: t
    datasets:
      d:
        csv: ../datasets/demo/labels.csv
    models:
      m:
        onnx: ../models/demo.onnx
        classes: [normal, abnormal]
        preprocessing:
          size: [64, 64]
    explainers:
      cam:
        method: gradcam
    stages:
      predict:
        kind: predict
      explain:
        kind: explain
        explainers: [cam]
      report:
        kind: report
        out: ../reports/t
    """

    func testDemoManifestParsesAndPlans() throws {
        let m = try ManifestParser.load(path: Support.repo("pipelines/demo.yaml"))
        XCTAssertEqual(m.pipeline, "demo")
        XCTAssertEqual(m.models["demo-cnn"]?.preprocessing.mean, [0.5, 0.5, 0.5])
        XCTAssertEqual(m.datasets["slides"]?.source, .csv(Support.repo("datasets/demo/labels.csv")))
        let plan = try Plan(m)
        XCTAssertEqual(plan.order.map(\.name), ["predict", "explain", "explain-sampled", "evaluate", "evaluate-sampled", "spray", "report"])
        XCTAssertEqual(Set(plan.edges["report"] ?? []), ["predict", "explain", "explain-sampled", "evaluate", "evaluate-sampled", "spray"])
        XCTAssertEqual(plan.edges["spray"], ["explain", "explain-sampled"])
        // Naming an explain stage in needs limits an evaluate stage to it.
        XCTAssertEqual(plan.edges["evaluate"], ["explain"])
        XCTAssertEqual(plan.edges["evaluate-sampled"], ["explain-sampled"])
        XCTAssertTrue(plan.dot.contains("\"explain\" -> \"evaluate\""))
        XCTAssertEqual(try DatasetLoader.load(m.datasets["slides"]!).count, 64)
    }

    /// A gate on a metric must reach the explainer's heatmaps: an evaluate stage that computes
    /// it and needs the explainer's explain stage (or names none).
    func testGateMetricMustReachTheExplainersStage() throws {
        let text = """
        datasets:
          a: {csv: ../datasets/demo/labels.csv}
        models:
          m: {onnx: ../models/demo.onnx, classes: [normal, abnormal], preprocessing: {size: [64, 64]}}
        explainers:
          cam: {method: gradcam}
          sal: {method: saliency}
        stages:
          e1: {kind: explain, explainers: [cam]}
          e2: {kind: explain, explainers: [sal]}
          pg: {kind: evaluate, metrics: [pointing_game], needs: [e1]}
        gates:
          g: {metric: pointing_game, explainer: EXPLAINER, min: 0.5}
        """
        XCTAssertNoThrow(try parse(text.replacingOccurrences(of: "EXPLAINER", with: "cam")))
        XCTAssertThrowsError(try parse(text.replacingOccurrences(of: "EXPLAINER", with: "sal"))) {
            XCTAssertTrue("\($0)".contains("gate 'g': no evaluate stage that computes 'pointing_game' needs an explain stage of 'sal'"), "\($0)")
        }
    }

    /// The DAG decides what runs: stages cover every dataset and model unless they name some;
    /// evaluate stages measure the explain stages they need; unused definitions are warned about
    /// at their line.
    func testCombinationsFollowTheStages() throws {
        let m = try parse("""
        datasets:
          a: {csv: ../datasets/demo/labels.csv}
          b: {csv: ../datasets/demo/labels.csv, limit: 2}
          c: {csv: ../datasets/demo/labels.csv, limit: 1}
        models:
          m1: {onnx: ../models/demo.onnx, classes: [normal, abnormal], preprocessing: {size: [64, 64]}}
          m2: {onnx: ../models/demo-vgg.onnx, classes: [normal, abnormal], preprocessing: {size: [64, 64]}}
        explainers:
          cam: {method: gradcam}
          sal: {method: saliency}
          lrp: {method: lrp}
        stages:
          everywhere: {kind: explain, explainers: [cam], dataset: [a, b]}
          on-m2: {kind: explain, explainers: [sal], model: m2, dataset: a, target: label}
          pg: {kind: evaluate, metrics: [pointing_game], needs: [on-m2]}
        """)
        let plan = try Plan(m)
        let combos = plan.combinations
        XCTAssertEqual(combos.map { "\($0.dataset)×\($0.model)" }, ["a×m1", "a×m2", "b×m1", "b×m2"])
        let am2 = combos[1].explainers
        XCTAssertEqual(am2.map(\.spec.name), ["cam", "sal"])
        XCTAssertEqual(am2.map(\.target), [.predicted, .label])
        // pg names on-m2 in its needs: it measures that explain stage's heatmaps only.
        XCTAssertEqual(am2.map(\.metrics), [[], ["pointing_game"]])
        XCTAssertEqual(combos[0].explainers.map(\.spec.name), ["cam"])
        XCTAssertEqual(plan.warnings, [
            "test.yaml:4:3: dataset 'c' is not run: no predict or explain stage covers it",
            "test.yaml:11:3: explainer 'lrp' is not run: no explain stage names it",
        ])
        // Without predict or explain stages, every dataset is predicted with every model.
        let bare = try Plan(try parse(valid.replacingOccurrences(of: "  explain:\n    kind: explain\n    explainers: [cam]\n", with: "")))
        XCTAssertEqual(bare.combinations.map(\.explainers.count), [0])
        XCTAssertEqual(bare.combinations.map(\.model), ["m"])
    }

    func testValidManifestResolvesPathsAgainstItsFolder() throws {
        let m = try parse(valid)
        XCTAssertEqual(m.models["m"]?.onnx, Support.repo("models/demo.onnx"))
        XCTAssertEqual(m.stages.first { $0.kind == .report }?.out, Support.repo("reports/t"))
    }

    func testTypoInKeyGivesLocationAndSuggestion() {
        assertError(valid.replacingOccurrences(of: "    classes:", with: "    clases:"),
                    "test.yaml:8:5: unknown key 'clases' in model 'm' (did you mean 'classes'?); allowed: onnx, classes, preprocessing, cam_layer")
    }

    func testTypeAndRangeErrors() {
        assertError(valid.replacingOccurrences(of: "size: [64, 64]", with: "size: [64, big]"),
                    "test.yaml:10:18: expected an integer, got 'big'")
        assertError(valid.replacingOccurrences(of: "size: [64, 64]", with: "size: [64]"),
                    "test.yaml:10:13: size must be [width, height]")
        assertError(valid.replacingOccurrences(of: "kind: explain", with: "kind: explian"),
                    "test.yaml:18:11: unknown stage kind 'explian' (did you mean 'explain'?); kinds: predict, explain, evaluate, compare, drift, spray, report")
        assertError(valid.replacingOccurrences(of: "method: gradcam", with: "method: gradcan"),
                    "test.yaml:13:13: unknown method 'gradcan' (did you mean 'gradcam'?); known methods: " + ExplainerRegistry.methods.joined(separator: ", "))
        assertError(valid.replacingOccurrences(of: "explainers: [cam]", with: "explainers: [camm]"),
                    "test.yaml:19:17: stage 'explain' uses explainer 'camm', which is not defined under explainers: (did you mean 'cam'?)")
    }

    func testMissingKeyAndYAMLSyntax() {
        assertError(valid.replacingOccurrences(of: "    onnx: ../models/demo.onnx\n", with: ""),
                    "test.yaml:7:5: missing required key 'onnx'")
        XCTAssertThrowsError(try parse("pipeline: [unclosed\n")) { XCTAssertTrue("\($0)".hasPrefix("test.yaml:"), "\($0)") }
    }

    func testCycleIsNamed() {
        let cyclic = valid.replacingOccurrences(of: "    kind: predict", with: "    kind: predict\n    needs: [explain]")
        XCTAssertThrowsError(try parse(cyclic)) {
            XCTAssertTrue("\($0)".contains("the stages form a cycle: "), "\($0)")
            XCTAssertTrue("\($0)".contains("predict") && "\($0)".contains("explain"), "\($0)")
        }
    }

    func testDatasetCSVErrorsNameLine() throws {
        let dir = Support.temporaryDirectory()
        try "path,label\na.png,x\nb.png,y,extra\n".write(toFile: "\(dir)/d.csv", atomically: true, encoding: .utf8)
        XCTAssertThrowsError(try DatasetLoader.load(DatasetSpec(name: "d", source: .csv("\(dir)/d.csv")))) {
            XCTAssertEqual("\($0)", "\(dir)/d.csv:3: expected 2 fields, found 3")
        }
        try "path,label\na.png,x\nb.png,y\n".write(toFile: "\(dir)/ok.csv", atomically: true, encoding: .utf8)
        let items = try DatasetLoader.load(DatasetSpec(name: "d", source: .csv("\(dir)/ok.csv"), limit: 1))
        XCTAssertEqual(items, [DatasetItem(path: "\(dir)/a.png", label: "x", mask: nil)])
    }

    func testFolderGlobAndSampleSources() throws {
        let dir = Support.temporaryDirectory()
        let fm = FileManager.default
        for (label, files) in [("normal", ["b.png", "a.png", "notes.txt"]), ("abnormal", ["c.jpg"])] {
            try fm.createDirectory(atPath: "\(dir)/slides/\(label)", withIntermediateDirectories: true)
            for f in files { fm.createFile(atPath: "\(dir)/slides/\(label)/\(f)", contents: Data([1])) }
        }
        let folder = try DatasetLoader.load(DatasetSpec(name: "f", source: .folder("\(dir)/slides")))
        XCTAssertEqual(folder, [DatasetItem(path: "\(dir)/slides/abnormal/c.jpg", label: "abnormal"),
                                DatasetItem(path: "\(dir)/slides/normal/a.png", label: "normal"),
                                DatasetItem(path: "\(dir)/slides/normal/b.png", label: "normal")])
        let glob = try DatasetLoader.load(DatasetSpec(name: "g", source: .glob("\(dir)/slides/*/*.png")))
        XCTAssertEqual(glob.map(\.path), ["\(dir)/slides/normal/a.png", "\(dir)/slides/normal/b.png"])
        XCTAssertNil(glob[0].label)
        XCTAssertThrowsError(try DatasetLoader.load(DatasetSpec(name: "g", source: .glob("\(dir)/none/*.png")))) {
            XCTAssertEqual("\($0)", "\(dir)/none/*.png: no files match the dataset pattern")
        }
        XCTAssertThrowsError(try DatasetLoader.load(DatasetSpec(name: "f", source: .folder("\(dir)/missing"))))

        // A seeded sample: the same items every time, in dataset order, different for another seed.
        let all = try DatasetLoader.load(ManifestParser.load(path: Support.repo("pipelines/demo.yaml")).datasets["slides"]!)
        let spec = DatasetSpec(name: "s", source: .csv(Support.repo("datasets/demo/labels.csv")), sample: 10, seed: 3)
        let a = try DatasetLoader.load(spec), b = try DatasetLoader.load(spec)
        XCTAssertEqual(a, b)
        XCTAssertEqual(a.count, 10)
        XCTAssertEqual(a.map { p in all.firstIndex { $0.path == p.path }! }, a.map { p in all.firstIndex { $0.path == p.path }! }.sorted())
        var other = spec
        other.seed = 4
        XCTAssertNotEqual(try DatasetLoader.load(other), a)
    }

    func testTwoDatasetSourcesAndTissueMaskColumn() throws {
        assertError(valid.replacingOccurrences(of: "    csv: ../datasets/demo/labels.csv", with: "    csv: a.csv\n    glob: '*.png'"),
                    "test.yaml:4:5: dataset 'd' has both csv and glob; give one source")
        let dir = Support.temporaryDirectory()
        try "path,tissue_mask,label\na.png,t.png,x\n".write(toFile: "\(dir)/d.csv", atomically: true, encoding: .utf8)
        XCTAssertEqual(try DatasetLoader.load(DatasetSpec(name: "d", source: .csv("\(dir)/d.csv"))),
                       [DatasetItem(path: "\(dir)/a.png", label: "x", tissueMask: "\(dir)/t.png")])
        try "path,lable\na.png,x\n".write(toFile: "\(dir)/e.csv", atomically: true, encoding: .utf8)
        XCTAssertThrowsError(try DatasetLoader.load(DatasetSpec(name: "d", source: .csv("\(dir)/e.csv")))) {
            XCTAssertEqual("\($0)", "\(dir)/e.csv:1:6: unknown column 'lable'; columns: path, label, mask, tissue_mask")
        }
    }

    func testEnvironmentInterpolation() throws {
        let text = valid.replacingOccurrences(of: "csv: ../datasets/demo/labels.csv", with: "csv: ${DATA}/labels.csv")
            .replacingOccurrences(of: "out: ../reports/t", with: "out: ${OUT:-../reports/default}")
        let m = try ManifestParser.parse(text, file: "test.yaml", baseDirectory: base, environment: ["DATA": "../datasets/demo"])
        XCTAssertEqual(m.datasets["d"]?.source, .csv(Support.repo("datasets/demo/labels.csv")))
        XCTAssertEqual(m.stages.last?.out, Support.repo("reports/default"))
        XCTAssertThrowsError(try ManifestParser.parse(text, file: "test.yaml", baseDirectory: base, environment: [:])) {
            XCTAssertEqual("\($0)", "test.yaml:4:10: environment variable DATA is not set (write ${DATA:-default} for a default)")
        }
        let literal = valid.replacingOccurrences(of: "pipeline: t", with: "pipeline: a$${B}")
        XCTAssertEqual(try ManifestParser.parse(literal, file: "test.yaml", baseDirectory: base, environment: [:]).pipeline, "a${B}")
    }
}
