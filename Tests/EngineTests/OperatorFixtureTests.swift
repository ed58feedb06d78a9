import Foundation
import TestSupport
import XCTest
@testable import Engine
import Tensors

/// Every one-node operator model of Tests/Fixtures/ops against PyTorch-computed outputs
/// (tools/make_fixtures.py; the expected values come from torch functional ops, not from ONNX).
final class OperatorFixtureTests: XCTestCase {
    struct Case {
        let name: String
        let model: String
        let inputs: [(name: String, file: String)]
        let output: String
    }

    func cases() throws -> [Case] {
        let data = try Data(contentsOf: URL(fileURLWithPath: Support.fixture("ops/cases.json")))
        let json = try XCTUnwrap(try JSONSerialization.jsonObject(with: data) as? [String: Any])
        let list = try XCTUnwrap(json["cases"] as? [[String: Any]])
        return list.map { c in
            Case(name: c["name"] as! String, model: c["model"] as! String,
                 inputs: (c["inputs"] as! [[String: Any]]).map { ($0["name"] as! String, $0["file"] as! String) },
                 output: (c["output"] as! [String: Any])["file"] as! String)
        }
    }

    func testEveryOperatorCaseMatchesPyTorch() throws {
        let all = try cases()
        XCTAssertGreaterThanOrEqual(all.count, 18, "fixture cases went missing")
        var opsSeen = Set<String>()
        for c in all {
            let model = try Model(path: Support.fixture("ops/\(c.model)"))
            opsSeen.formUnion(model.graph.nodes.map(\.opType))
            var feeds: [String: Tensor] = [:]
            for input in c.inputs { feeds[input.name] = try NPY.read(Support.fixture("ops/\(input.file)")) }
            let expected = try NPY.read(Support.fixture("ops/\(c.output)"))
            let got = try model.run(feeds).outputs[0]
            XCTAssertEqual(got.shape, expected.shape, c.name)
            if got.shape == expected.shape {
                XCTAssertLessThan(got.maxAbsDifference(expected), 1e-4, c.name)
            }
        }
        XCTAssertEqual(opsSeen, ["Conv", "MaxPool", "GlobalAveragePool", "Flatten", "Gemm", "Relu", "Add", "BatchNormalization"])
    }

    /// The backward of each fixture model against central differences of ⟨y, w⟩ in every input.
    func testEveryOperatorBackwardMatchesFiniteDifferences() throws {
        var rng = SeededRandom(seed: 11)
        for c in try cases() {
            let model = try Model(path: Support.fixture("ops/\(c.model)"))
            var feeds: [String: Tensor] = [:]
            for input in c.inputs { feeds[input.name] = try NPY.read(Support.fixture("ops/\(input.file)")) }
            let pass = try model.run(feeds)
            let w = rng.tensor(pass.outputs[0].shape)
            let names = c.inputs.map(\.name)
            let grads = try model.backward(pass, seeds: [model.graph.outputs[0]: w], wrt: names)
            for name in names {
                let epsilon: Float = c.name.hasPrefix("maxpool") || c.name == "relu" ? 1e-3 : 1e-2
                let numeric = try FiniteDifference.gradient(at: feeds[name]!, epsilon: epsilon) { probe in
                    var f = feeds
                    f[name] = probe
                    return FiniteDifference.dot(try model.run(f).outputs[0], w)
                }
                XCTAssertLessThan(FiniteDifference.relativeError(grads[name]!, numeric), 1e-2, "\(c.name) d/d\(name)")
            }
        }
    }
}
