import Foundation
import TestSupport
import XCTest
@testable import Engine
import Tensors

/// Load-time folding and fusion change nothing but speed: outputs, taps and gradients agree
/// with the graph as written.
final class OptimizerTests: XCTestCase {
    func testDemoModelIsFoldedAndAgrees() throws {
        let model = try Model(path: Support.repo("models/demo.onnx"))
        let ops = model.optimizedGraph.nodes.map(\.opType)
        XCTAssertFalse(ops.contains("BatchNormalization"))
        XCTAssertEqual(ops.filter { $0 == "Relu" }.count, 1, "only the Relu after the residual Add stays separate")
        XCTAssertEqual(model.graph.nodes.count, 21)
        XCTAssertEqual(model.optimizedGraph.nodes.count, 12)

        let x = try NPY.read(Support.fixture("demo/x.npy"))
        let fast = try model.run([model.inputName: x])
        let reference = try Model(path: Support.repo("models/demo.onnx"), optimize: false).run([model.inputName: x])
        XCTAssertLessThan(fast.outputs[0].maxAbsDifference(reference.outputs[0]), 1e-4)

        // Gradients through fused conv+BN+ReLU equal those of the unfused graph. Rounding differs
        // at the 1e-6 level, which can flip a max-pool winner between two nearly equal values or a
        // ReLU at zero; such flips move single pixels, so compare in the L2 norm.
        let seed = Tensor(shape: [2, 2], data: [0, 1, 0, 1])
        let g1 = try model.backward(fast, seeds: ["logits": seed], wrt: ["input"])["input"]!
        let g2 = try model.backward(reference, seeds: ["logits": seed], wrt: ["input"])["input"]!
        var diff = 0.0, norm = 0.0
        for i in 0..<g1.count { diff += Double((g1.data[i] - g2.data[i]) * (g1.data[i] - g2.data[i])); norm += Double(g2.data[i] * g2.data[i]) }
        print("optimized vs original gradient: relative L2 \((diff / norm).squareRoot()), max \(FiniteDifference.relativeError(g1, g2))")
        XCTAssertLessThan((diff / norm).squareRoot(), 1e-3)
    }

    /// `forward` runs large batches in chunks; the logits equal one pass over the whole batch.
    func testForwardInChunksEqualsOnePass() throws {
        let model = try Model(path: Support.repo("models/demo.onnx"))
        var rng = SeededRandom(seed: 41)
        let x = rng.tensor([10, 3, 64, 64], -2, 2)
        let whole = try model.run([model.inputName: x], keepAll: false).outputs[0]
        let saved = Model.inferenceChunk
        defer { Model.inferenceChunk = saved }
        for chunk in [3, 4, 10] {
            Model.inferenceChunk = chunk
            let y = try model.forward(x)
            XCTAssertEqual(y.shape, [10, 2])
            XCTAssertLessThan(y.maxAbsDifference(whole), 1e-4, "chunks of \(chunk)")
        }
    }

    func testTapOnAFoldedTensorRunsTheOriginalGraph() throws {
        let model = try Model(path: Support.repo("models/demo.onnx"))
        let folded = "/block3/bn/BatchNormalization_output_0"
        XCTAssertFalse(model.optimizedGraph.tensorNames.contains(folded))
        let x = try NPY.read(Support.fixture("demo/x_slide_000.npy"))
        let pass = try model.run([model.inputName: x], taps: [folded])
        XCTAssertNotNil(pass.values[folded])
        let grad = try model.backward(pass, seeds: ["logits": Tensor(shape: [1, 2], data: [0, 1])], wrt: [folded])[folded]!
        XCTAssertEqual(grad.shape, [1, 64, 16, 16])
    }

    func testInferencePassFreesIntermediates() throws {
        let model = try Model(path: Support.repo("models/demo.onnx"))
        let x = try NPY.read(Support.fixture("demo/x_slide_000.npy"))
        let lean = try model.run([model.inputName: x], keepAll: false)
        let full = try model.run([model.inputName: x])
        XCTAssertEqual(lean.outputs[0], full.outputs[0])
        XCTAssertLessThan(lean.values.count - model.optimizedGraph.initializers.count, 3)
    }
}

/// Gemm of a batch runs as a 1×1 convolution with the weights packed once; it must equal the
/// plain GEMM for every transpose, alpha, beta and bias shape, and across repeated calls.
final class GemmFastPathTests: XCTestCase {
    func testBatchedGemmMatchesReference() throws {
        var rng = SeededRandom(seed: 21)
        for (transB, alpha, beta, cShape) in [(true, Float(1), Float(1), [7]), (false, 0.5, 2, [5, 7]), (true, 2, 0, [1, 7]), (false, 1, 1, [1])] {
            var attributes = Attributes(inputCount: 3)
            attributes.values = ["transB": .int(transB ? 1 : 0), "alpha": .float(alpha), "beta": .float(beta)]
            let op = try GemmOp(attributes)
            let a = rng.tensor([5, 300]), b = rng.tensor(transB ? [7, 300] : [300, 7]), c = rng.tensor(cShape)
            let expected = try Gemm.forward(a: a, b: b, c: c, transA: false, transB: transB, alpha: alpha, beta: beta)
            for _ in 0..<2 {
                let y = try op.forward([a, b, c])[0]
                XCTAssertEqual(y.shape, [5, 7])
                XCTAssertLessThan(y.maxAbsDifference(expected), 1e-4, "transB \(transB), alpha \(alpha), beta \(beta), C \(cShape)")
            }
        }
    }
}
