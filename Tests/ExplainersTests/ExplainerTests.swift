import Engine
import Foundation
import TestSupport
import XCTest
@testable import Explainers
import Tensors

/// Gradient, saliency and Grad-CAM on the demo CNN against PyTorch references (Tests/Fixtures/demo).
final class ExplainerTests: XCTestCase {
    var model: Model!
    var x: Tensor!

    override func setUpWithError() throws {
        model = try Model(path: Support.repo("models/demo.onnx"))
        x = try NPY.read(Support.fixture("demo/x.npy"))
    }

    func request(_ item: Int, target: Int = 1) -> ExplanationRequest {
        ExplanationRequest(model: model, input: x.item(item), target: target)
    }

    /// score=probability differentiates softmax(y)_t. The chain rule splits it into ∂p_t/∂y_k
    /// (checked by central differences of a float64 softmax at the model's logits: smooth, unlike
    /// differences through the ReLU network) times the per-class logit gradients (checked against
    /// autograd elsewhere). weights=w differentiates Σ_k w_k y_k: the same combination with w.
    func testProbabilityAndWeightedObjectives() throws {
        let item = x.item(1)
        let probabilityGradient = try ExplainerRegistry.make(method: "gradient", parameters: ["score": "probability"])
            .explain(ExplanationRequest(model: model, input: item, target: 1)).raw
        let logits = try model.forward(item).data.map(Double.init)
        func p1(_ y: [Double]) -> Double { let e = y.map { Foundation.exp($0) }; return e[1] / e.reduce(0, +) }
        let h = 1e-5
        let dp = (0..<2).map { k -> Double in
            var up = logits, down = logits
            up[k] += h
            down[k] -= h
            return (p1(up) - p1(down)) / (2 * h)
        }
        let g0 = try GradientExplainer().explain(request(1, target: 0)).raw
        let g1 = try GradientExplainer().explain(request(1, target: 1)).raw
        let chain = Tensor(shape: g0.shape, data: (0..<g0.count).map { Float(dp[0] * Double(g0.data[$0]) + dp[1] * Double(g1.data[$0])) })
        XCTAssertLessThan(FiniteDifference.relativeError(probabilityGradient, chain), 1e-4)
        XCTAssertGreaterThan(abs(dp[1]), 1e-3, "the check must not pass trivially")

        let weights: [Float] = [0.5, -2]
        let combined = try ExplainerRegistry.make(method: "gradient", parameters: ["weights": "0.5,-2"])
            .explain(ExplanationRequest(model: model, input: item, target: 0)).raw
        let expected = Tensor(shape: g0.shape, data: (0..<g0.count).map { weights[0] * g0.data[$0] + weights[1] * g1.data[$0] })
        XCTAssertLessThan(FiniteDifference.relativeError(combined, expected), 1e-5)

        // Parameters are checked and named.
        XCTAssertThrowsError(try ExplainerRegistry.make(method: "gradient", parameters: ["weights": "1,x"]))
        XCTAssertThrowsError(try ExplainerRegistry.make(method: "saliency", parameters: ["score": "weighted"]))
        XCTAssertThrowsError(try ExplainerRegistry.make(method: "gradient", parameters: ["weights": "1,2,3"])
            .explain(request(1))) { XCTAssertTrue("\($0)".contains("3 values but the model has 2 classes"), "\($0)") }
        XCTAssertEqual(try ExplainerRegistry.make(method: "gradcam", parameters: ["score": "probability"]).parameters["score"], "probability")
    }

    func testGradientAndSaliencyMatchAutograd() throws {
        let expected = try NPY.read(Support.fixture("demo/grad_input_t1.npy"))
        for item in 0..<2 {
            let g = try GradientExplainer().explain(request(item)).raw
            let ref = expected.item(item).reshaped([3, 64, 64])
            XCTAssertEqual(g.shape, [3, 64, 64])
            XCTAssertLessThan(FiniteDifference.relativeError(g, ref), 1e-3)
            let s = try SaliencyExplainer().explain(request(item)).raw
            XCTAssertEqual(s.data, g.data.map(abs))
        }
    }

    func testGradCAMMatchesCaptumLayerGradCam() throws {
        let expected = try NPY.read(Support.fixture("demo/gradcam_t1.npy")) // (2,h,w)
        for item in 0..<2 {
            let a = try GradCAMExplainer().explain(request(item))
            XCTAssertEqual(a.space, .layer)
            let ref = expected.item(item).reshaped(a.raw.shape)
            XCTAssertLessThan(FiniteDifference.relativeError(a.raw, ref), 1e-3)
            if ref.data.contains(where: { $0 > 0 }) { XCTAssertGreaterThan(FiniteDifference.pearson(a.raw, ref), 0.999) }
        }
    }

    func testReusedForwardPassGivesTheSameResult() throws {
        let pass = try model.run([model.inputName: x.item(1)])
        let withPass = try GradCAMExplainer().explain(ExplanationRequest(model: model, input: x.item(1), target: 1, pass: pass))
        XCTAssertEqual(withPass.raw, try GradCAMExplainer().explain(request(1)).raw)
    }

    func testHeatmapDerivation() {
        // Input-space: channels reduced by Σ|·|, then min-max normalized.
        let raw = Tensor(shape: [2, 1, 2], data: [1, -3, -1, 1])
        let h = Attribution(raw: raw, space: .input).heatmap(height: 1, width: 2)
        XCTAssertEqual(h.values, [0, 1]) // sums 2 and 4
        // Layer maps are resized with half-pixel centres before normalizing.
        let cam = Attribution(raw: Tensor(shape: [1, 2], data: [0, 4]), space: .layer).heatmap(height: 1, width: 4)
        XCTAssertEqual(cam.values, [0, 0.25, 0.75, 1])
        XCTAssertEqual(Attribution(raw: Tensor(shape: [1, 2], repeating: 3), space: .layer).heatmap(height: 1, width: 2).values, [0, 0])
        // Positive reduction (occlusion): the plain channel sum, negatives clamped to 0.
        let signed = Tensor(shape: [2, 1, 3], data: [2, -3, 1, 2, 1, 1]) // sums 4, -2, 2
        XCTAssertEqual(Attribution(raw: signed, space: .input, reduction: .positive).heatmap(height: 1, width: 3).values, [1, 0, 0.5])
    }

    func testPointingGame() {
        let h = Heatmap(width: 3, height: 2, values: [0, 0.2, 0.1, 0.4, 1, 0.3])
        XCTAssertEqual(PointingGame.hit(heatmap: h, mask: [0, 0, 0, 0, 1, 0]), true)
        XCTAssertEqual(PointingGame.hit(heatmap: h, mask: [1, 0, 0, 0, 0, 0]), false)
        XCTAssertEqual(PointingGame.hit(heatmap: h, mask: [1, 0, 0, 0, 0, 0], tolerance: 2), true)
        XCTAssertNil(PointingGame.hit(heatmap: h, mask: [0, 0, 0, 0, 0, 0]))
    }

    func testBadRequestsAreClearErrors() throws {
        XCTAssertThrowsError(try GradCAMExplainer(layer: "nope").explain(request(0))) {
            XCTAssertTrue("\($0)".contains("unknown layer 'nope'"), "\($0)")
        }
        XCTAssertThrowsError(try GradCAMExplainer(layer: "logits").explain(request(0))) {
            XCTAssertTrue("\($0)".contains("need a (N,C,h,w)"), "\($0)")
        }
        XCTAssertThrowsError(try GradientExplainer().explain(request(0, target: 2))) {
            XCTAssertTrue("\($0)".contains("target 2 is out of range"), "\($0)")
        }
        XCTAssertThrowsError(try ExplainerRegistry.make(method: "saliancy")) {
            XCTAssertTrue("\($0)".contains("did you mean 'saliency'"), "\($0)")
        }
        XCTAssertThrowsError(try ExplainerRegistry.make(method: "gradcam", parameters: ["layr": "x"])) {
            XCTAssertTrue("\($0)".contains("no parameter 'layr'"), "\($0)")
        }
        XCTAssertEqual(try ExplainerRegistry.make(method: "gradcam", parameters: ["layer": "a"]).parameters, ["layer": "a"])
    }

    func testSoftmax() {
        let p = softmax([1000, 1000, -1000])
        XCTAssertEqual(p[0], 0.5, accuracy: 1e-6)
        XCTAssertEqual(p[2], 0, accuracy: 1e-6)
    }

    /// A signed attribution keeps its sign: channels summed as they are (the heatmap sums
    /// magnitudes); an unsigned one has no signed map.
    func testSignedMapSumsChannelsWithTheirSigns() {
        // (C,H,W) = (2,1,2): pixel 0 has +3 and −1, pixel 1 has −2 and −2.
        let raw = Tensor(shape: [2, 1, 2], data: [3, -2, -1, -2])
        let signed = Attribution(raw: raw, space: .input, signed: true)
        XCTAssertEqual(signed.signedMap(height: 1, width: 2), [2, -4])
        // The magnitudes cannot tell the pixels apart: |3| + |−1| = 4 = |−2| + |−2|, a constant map.
        XCTAssertEqual(signed.heatmap(height: 1, width: 2).values, [0, 0])
        XCTAssertNil(Attribution(raw: raw, space: .input).signedMap(height: 1, width: 2))
    }
}
