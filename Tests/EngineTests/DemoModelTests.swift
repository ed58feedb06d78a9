import Foundation
import TestSupport
import XCTest
@testable import Engine
import Tensors

/// The committed demo CNN against values PyTorch computed for the same weights
/// (Tests/Fixtures/demo, made by tools/make_fixtures.py).
final class DemoModelTests: XCTestCase {
    let layer = "/block3/relu/Relu_output_0"

    func load() throws -> (Model, Tensor) {
        (try Model(path: Support.repo("models/demo.onnx")), try NPY.read(Support.fixture("demo/x.npy")))
    }

    func testLogitsMatchPyTorch() throws {
        let (model, x) = try load()
        let logits = try model.forward(x)
        let expected = try NPY.read(Support.fixture("demo/logits.npy"))
        XCTAssertLessThan(logits.maxAbsDifference(expected), 1e-3)
    }

    func testTapAndGradientsMatchPyTorch() throws {
        let (model, x) = try load()
        let pass = try model.run([model.inputName: x])
        XCTAssertLessThan(try pass.value(layer).maxAbsDifference(try NPY.read(Support.fixture("demo/activation_layer.npy"))), 1e-3)
        var seed = Tensor(shape: pass.outputs[0].shape)
        for n in 0..<seed.shape[0] { seed.data[n * 2 + 1] = 1 } // d logit[:,1]
        let grads = try model.backward(pass, seeds: [model.graph.outputs[0]: seed], wrt: [model.inputName, layer])
        let gx = try NPY.read(Support.fixture("demo/grad_input_t1.npy"))
        let gl = try NPY.read(Support.fixture("demo/grad_layer_t1.npy"))
        XCTAssertLessThan(FiniteDifference.relativeError(grads[model.inputName]!, gx), 1e-3)
        XCTAssertLessThan(FiniteDifference.relativeError(grads[layer]!, gl), 1e-3)
    }

    /// Directional derivative of the whole network: ⟨∇x, v⟩ against (f(x+εv) − f(x−εv)) / 2ε, for
    /// sparse directions v (a few pixels), so that few ReLU/max-pool kinks lie within ±εv.
    func testWholeNetworkBackwardMatchesFiniteDifferences() throws {
        let (model, x) = try load()
        var rng = SeededRandom(seed: 12)
        let x0 = x.item(0)
        let pass = try model.run([model.inputName: x0])
        let seed = Tensor(shape: [1, 2], data: [0.3, -1.1])
        let g = try model.backward(pass, seeds: [model.graph.outputs[0]: seed], wrt: [model.inputName])[model.inputName]!
        for _ in 0..<3 {
            var v = Tensor(shape: x0.shape)
            for _ in 0..<8 { v.data[rng.int(0...(x0.count - 1))] = Float.random(in: -1...1, using: &rng) }
            let eps: Float = 1e-2
            var up = x0, down = x0
            for i in 0..<x0.count { up.data[i] += eps * v.data[i]; down.data[i] -= eps * v.data[i] }
            let numeric = (FiniteDifference.dot(try model.forward(up), seed) - FiniteDifference.dot(try model.forward(down), seed)) / Double(2 * eps)
            let analytic = FiniteDifference.dot(g, v)
            XCTAssertEqual(analytic, numeric, accuracy: 2e-2 * max(1, abs(numeric)))
        }
    }

    func testDefaultCAMLayerIsTheLastConvBlock() throws {
        XCTAssertEqual(try load().0.graph.defaultCAMLayer, layer)
    }

    func testBatchGivesPerItemGradients() throws {
        // Items of a batch are independent: the batch gradient equals the per-item ones.
        let (model, x) = try load()
        let pass = try model.run([model.inputName: x])
        var seed = Tensor(shape: [2, 2]); seed.data[1] = 1; seed.data[3] = 1
        let batch = try model.backward(pass, seeds: [model.graph.outputs[0]: seed], wrt: [model.inputName])[model.inputName]!
        let p1 = try model.run([model.inputName: x.item(1)])
        let single = try model.backward(p1, seeds: [model.graph.outputs[0]: Tensor(shape: [1, 2], data: [0, 1])],
                                        wrt: [model.inputName])[model.inputName]!
        XCTAssertLessThan(batch.item(1).maxAbsDifference(single), 1e-5)
    }
}
