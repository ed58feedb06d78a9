import Engine
import Foundation
import TestSupport
import XCTest
@testable import Explainers
import Tensors

/// A model exported with a fixed batch (`torch.onnx.export`'s default, input [1,3,64,64], its
/// Flatten folded into Reshape(x, [1, -1]); tools/make_static_batch_fixtures.py) runs every
/// batched method and gives the heatmaps of the same weights exported with a free batch.
final class FreeBatchTests: XCTestCase {
    func testStaticBatchExportGivesTheDynamicExportsHeatmaps() throws {
        let dynamic = try Model(path: Support.repo("models/demo.onnx"))
        let fixed = try Model(path: Support.repo("Tests/Fixtures/static/demo_static_batch1.onnx"))
        XCTAssertEqual(dynamic.batch, .free)
        XCTAssertEqual(fixed.batch, .replanned(declared: 1, reshapes: 1))
        var rng = SeededRandom(seed: 5)
        let x = try NPY.read(Support.repo("Tests/Fixtures/demo/preprocessed_slide_000.npy")).reshaped([1, 3, 64, 64])
        // Batches of several images through the re-planned graph, against the file's.
        let batch = rng.tensor([5, 3, 64, 64], -1, 1)
        XCTAssertLessThan(try fixed.forward(batch).maxAbsDifference(try dynamic.forward(batch)), 1e-5)
        let methods: [(String, [String: String])] = [
            ("integratedgradients", ["steps": "8", "batch": "4"]),
            ("smoothgrad", ["samples": "6", "batch": "3"]),
            ("scorecam", ["batch": "8"]),
            ("rise", ["masks": "40", "batch": "16"]),
            ("lime", ["samples": "60", "batch": "16"]),
            ("occlusion", ["window": "3,16,16", "stride": "3,8,8", "batch": "8"]),
        ]
        for (method, parameters) in methods {
            let explainer = try ExplainerRegistry.make(method: method, parameters: parameters)
            let a = try explainer.explain(ExplanationRequest(model: fixed, input: x, target: 1)).raw
            let b = try explainer.explain(ExplanationRequest(model: dynamic, input: x, target: 1)).raw
            XCTAssertEqual(a.shape, b.shape, method)
            XCTAssertGreaterThan(Set(b.data).count, 1, "\(method): a constant map would prove nothing")
            let r = Statistics.pearson(a.data, b.data)
            XCTAssertGreaterThanOrEqual(r, 0.9999, "\(method): \(a.data.prefix(5)) vs \(b.data.prefix(5))")
        }
    }

    /// A graph that merges the batch with another axis cannot be re-planned: the model keeps its
    /// declared batch, and another batch is an error that says why.
    func testGraphThatMixesTheBatchKeepsItsDeclaredBatch() throws {
        let model = try Model(path: Support.repo("Tests/Fixtures/static/mixes_batch.onnx"))
        guard case .fixed(let declared, let reason) = model.batch else {
            return XCTFail("re-planned a graph that merges the batch: \(model.batch)")
        }
        XCTAssertEqual(declared, 1)
        XCTAssertFalse(reason.isEmpty)
        let one = Tensor(shape: [1, 4], data: [1, 2, 3, 4])
        XCTAssertEqual(try model.forward(one).data, [4, 6])
        XCTAssertThrowsError(try model.forward(Tensor(shape: [2, 4], data: Array(repeating: 1, count: 8)))) { error in
            XCTAssertTrue("\(error)".contains("the file fixes the batch at 1 and re-planning it for other batches failed"), "\(error)")
        }
    }
}
