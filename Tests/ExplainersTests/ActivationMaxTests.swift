import Engine
import TestSupport
import XCTest
@testable import Explainers
import Tensors

/// Activation maximization on the demo CNN, with answers known in advance.
final class ActivationMaxTests: XCTestCase {
    var model: Model!

    override func setUpWithError() throws {
        model = try Model(path: Support.repo("models/demo.onnx"))
    }

    func request() -> ExplanationRequest {
        ExplanationRequest(model: model, input: Tensor(shape: [1, 3, 64, 64]), target: 0)
    }

    /// The first convolution is linear: the mean of channel k is Σ_c (Σ_ij W[k,c,i,j])·mean(x_c)
    /// away from the border, so its maximizer is a flat colour whose channel c has the sign of
    /// Σ_ij W[k,c,i,j] (driven to the clip).
    func testFirstLayerMaximizerFollowsTheFilterSums() throws {
        let conv = model.graph.parameterizedLayers[0]
        let w = model.graph.initializers[conv.inputs[1]]!
        var checked = 0
        for k in 0..<4 {
            let x = try ActivationMaxExplainer(layer: conv.outputs[0], channel: k, steps: 64).explain(request()).raw
            for c in 0..<3 {
                let sum = (0..<9).reduce(Float(0)) { $0 + w.data[(k * 3 + c) * 9 + $1] }
                guard abs(sum) > 0.05 else { continue }
                let mean = x.data[(c * 4096)..<((c + 1) * 4096)].reduce(0, +) / 4096
                XCTAssertEqual(mean.sign, sum.sign, "channel \(k), input channel \(c): mean \(mean), filter sum \(sum)")
                XCTAssertGreaterThan(abs(mean), 0.5, "driven towards the clip")
                checked += 1
            }
        }
        XCTAssertGreaterThanOrEqual(checked, 4)
    }

    /// A deep channel is excited far more by its visualization than by the starting noise,
    /// and the class visualization raises its class score.
    func testAscentRaisesTheObjective() throws {
        let layer = model.graph.defaultCAMLayer!
        func channelMean(_ x: Tensor, _ k: Int) throws -> Float {
            let a = try model.run([model.inputName: x], taps: [layer]).value(layer)
            let plane = a.shape[2] * a.shape[3]
            return a.data[(k * plane)..<((k + 1) * plane)].reduce(0, +) / Float(plane)
        }
        let slide = try NPY.read(Support.fixture("demo/x.npy")).item(1)
        var rng = SeededGenerator(seed: 0)
        let noise = Tensor(shape: [1, 3, 64, 64], data: (0..<(3 * 4096)).map { _ in 0.1 * rng.gaussian() })
        for k in [0, 5] {
            let x = try ActivationMaxExplainer(layer: layer, channel: k, steps: 48).explain(request()).raw.reshaped([1, 3, 64, 64])
            let (got, start) = (try channelMean(x, k), try channelMean(noise, k))
            print("activation-max channel \(k): mean \(got) (noise \(start), slide 001 \(try channelMean(slide, k)))")
            XCTAssertGreaterThan(got, 2 * max(start, 0.01), "channel \(k)")
        }
        let abnormal = try ActivationMaxExplainer(steps: 48).explain(ExplanationRequest(model: model, input: slide, target: 1)).raw
        let scores = try model.forward(abnormal.reshaped([1, 3, 64, 64])).data
        XCTAssertGreaterThan(scores[1] - scores[0], 5, "the class model of 'abnormal' is classified abnormal with a wide margin")
        XCTAssertThrowsError(try ActivationMaxExplainer(layer: layer, channel: 999, steps: 1).explain(request()))
    }
}
