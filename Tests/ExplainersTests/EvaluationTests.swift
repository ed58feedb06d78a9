import Engine
import Foundation
import Imaging
import TestSupport
import XCTest
@testable import Explainers
import Tensors

/// The trust metrics on cases with known answers.
final class EvaluationTests: XCTestCase {
    var model: Model!
    var x: Tensor!

    override func setUpWithError() throws {
        model = try Model(path: Support.repo("models/demo.onnx"))
        x = try NPY.read(Support.fixture("demo/x.npy"))
    }

    /// An "explainer" that ignores the model: the absolute input. It must fail the randomization check.
    struct InputEcho: Explainer {
        static let method = "echo"
        static let card = MethodCard(title: "echo", meaning: "", cost: "", limits: "")
        var parameters: [String: String] { [:] }
        func explain(_ request: ExplanationRequest) throws -> Attribution {
            Attribution(raw: Tensor(shape: Array(request.input.shape.dropFirst()), data: request.input.data), space: .input)
        }
    }

    func testSpearmanMatchesScipyConventions() {
        // scipy.stats.spearmanr([1, 2, 2, 3], [1, 3, 2, 4]) = 0.9486832980505138 (ties averaged).
        XCTAssertEqual(Statistics.spearman([1, 2, 2, 3], [1, 3, 2, 4]), 0.9486832980505138, accuracy: 1e-12)
        XCTAssertEqual(Statistics.ranks([10, 30, 20, 20]), [1, 4, 2.5, 2.5])
        XCTAssertEqual(Statistics.spearman([1, 2, 3], [3, 2, 1]), -1, accuracy: 1e-12)
        XCTAssertEqual(Statistics.spearman([1, 1, 1], [3, 2, 1]), 0) // constant side
    }

    func testMassInsideAndOutsideTissue() {
        let h = Heatmap(width: 2, height: 2, values: [1, 0.5, 0.5, 0])
        XCTAssertEqual(Evaluation.massInside(h, region: [1, 0, 0, 0])!, 0.5, accuracy: 1e-12)
        XCTAssertEqual(Evaluation.outsideTissue(h, tissue: [1, 1, 0, 0])!, 0.25, accuracy: 1e-12)
        XCTAssertNil(Evaluation.massInside(h, region: [0, 0, 0, 0]))
        XCTAssertNil(Evaluation.massInside(Heatmap(width: 1, height: 1, values: [0]), region: [1]))
    }

    /// Curves start and end at the probabilities of the images they interpolate; the AUC is the
    /// RISE code's trapezoid; insertion in the order of a good map beats the reversed order.
    func testDeletionAndInsertionCurves() throws {
        let item = x.item(1) // abnormal, target 1
        let black: [Float] = [-2, -2, -2] // (0 − 0.5) / 0.25
        let ig = try ExplainerRegistry.make(method: "integratedgradients", parameters: ["steps": "16"])
            .explain(ExplanationRequest(model: model, input: item, target: 1)).heatmap(height: 64, width: 64)
        let f = Faithfulness(steps: 16)
        let curves = try f.curves(model: model, input: item, target: 1, heatmap: ig, black: black)
        XCTAssertEqual(curves.deletion.count, 17)
        func p1(_ t: Tensor) throws -> Double { Double(softmax(try model.forward(t).data)[1]) }
        XCTAssertEqual(curves.deletion[0], try p1(item), accuracy: 1e-6)
        XCTAssertEqual(curves.deletion[16], try p1(Tensor(shape: item.shape, repeating: -2)), accuracy: 1e-6)
        XCTAssertEqual(curves.insertion[16], try p1(item), accuracy: 1e-6)
        XCTAssertEqual(curves.insertion[0], try p1(Faithfulness.blur(item, black: black)), accuracy: 1e-6)
        XCTAssertEqual(Faithfulness.auc([1, 1, 0]), 0.75, accuracy: 1e-12)

        let reversed = Heatmap(width: 64, height: 64, values: ig.values.map { 1 - $0 })
        let worse = try f.curves(model: model, input: item, target: 1, heatmap: reversed, black: black)
        print("insertion AUC: integrated gradients \(curves.insertionAUC), reversed \(worse.insertionAUC); "
              + "deletion AUC \(curves.deletionAUC), reversed \(worse.deletionAUC)")
        XCTAssertGreaterThan(curves.insertionAUC, worse.insertionAUC + 0.1)
    }

    /// The blur is a normalized Gaussian: a constant image equal to the border value stays constant.
    func testBlurKeepsConstants() {
        let t = Tensor(shape: [1, 3, 8, 8], repeating: 0.3)
        XCTAssertTrue(Faithfulness.blur(t, black: [0.3, 0.3, 0.3]).data.allSatisfy { abs($0 - 0.3) < 1e-6 })
    }

    /// A map that ignores the model keeps ρ = 1 under randomization (fails the check); the
    /// gradient depends on the weights (passes). Randomization re-draws the top layers only.
    func testRandomizationCheck() throws {
        let item = x.item(1)
        let request = ExplanationRequest(model: model, input: item, target: 1)
        let cascade = try Evaluation.randomizationCascade(model)
        XCTAssertEqual(cascade.count, 6) // 5 convolutions and the classifier
        let echo = InputEcho()
        let echoMap = try echo.explain(request).heatmap(height: 64, width: 64)
        XCTAssertEqual(try Evaluation.randomization(echo, request: request, heatmap: echoMap, cascade: cascade), 1, accuracy: 1e-9)
        let gradient = GradientExplainer()
        let map = try gradient.explain(request).heatmap(height: 64, width: 64)
        let rho = try Evaluation.randomization(gradient, request: request, heatmap: map, cascade: cascade)
        print("randomization: gradient mean ρ over the cascade \(rho)")
        XCTAssertLessThan(rho, Evaluation.sanityThreshold)
        // Only the top layer changed: the first convolution's weights are the trained ones.
        let top = try model.randomizingTopLayers(1)
        let first = model.graph.parameterizedLayers[0].inputs[1], last = model.graph.parameterizedLayers.last!.inputs[1]
        XCTAssertEqual(top.graph.initializers[first], model.graph.initializers[first])
        XCTAssertNotEqual(top.graph.initializers[last], model.graph.initializers[last])
        XCTAssertEqual(try model.randomizingTopLayers(1, seed: 5).graph.initializers[last],
                       try model.randomizingTopLayers(1, seed: 5).graph.initializers[last])
    }

    /// Adebayo et al.'s finding on a deep net, reproduced on the deeper demo model (eight
    /// convolutions, models/demo-vgg.md): under cascading randomization the guided-backprop map
    /// barely changes (mean ρ ≥ 0.5, flagged), while the gradient and Grad-CAM maps do (< 0.5).
    /// First 8 demo slides, predicted class, as `pipelines/randomization.yaml` runs all 64.
    func testRandomizationFlagsGuidedBackpropOnTheDeeperDemoModel() throws {
        let deep = try Model(path: Support.repo("models/demo-vgg.onnx"))
        let cascade = try Evaluation.randomizationCascade(deep)
        XCTAssertEqual(cascade.count, 9) // 8 convolutions and the classifier
        let prep = Preprocessing(width: 64, height: 64, mean: [0.5, 0.5, 0.5], std: [0.25, 0.25, 0.25])
        var means: [String: Double] = [:]
        for method in ["gradient", "gradcam", "guidedbackprop"] {
            let explainer = try ExplainerRegistry.make(method: method)
            var total = 0.0
            for i in 0..<8 {
                let image = try Codecs.decode(path: Support.repo(String(format: "datasets/demo/images/slide_%03d.png", i)))
                let input = prep.apply(image)
                let logits = try deep.forward(input).data
                let request = ExplanationRequest(model: deep, input: input, target: logits[1] > logits[0] ? 1 : 0)
                let map = try explainer.explain(request).heatmap(height: 64, width: 64)
                total += try Evaluation.randomization(explainer, request: request, heatmap: map, cascade: cascade)
            }
            means[method] = total / 8
        }
        print("randomization on demo-vgg, 8 slides: \(means.sorted { $0.key < $1.key })")
        XCTAssertLessThan(means["gradient"]!, Evaluation.sanityThreshold)
        XCTAssertLessThan(means["gradcam"]!, Evaluation.sanityThreshold)
        XCTAssertGreaterThanOrEqual(means["guidedbackprop"]!, Evaluation.sanityThreshold)
    }

    func testMaxSensitivityIsZeroForAConstantMethodAndSmallForCAM() throws {
        let request = ExplanationRequest(model: model, input: x.item(1), target: 1)
        let cam = GradCAMExplainer()
        let raw = try cam.explain(request).raw
        let s = try Evaluation.maxSensitivity(cam, request: request, attribution: raw, samples: 4)
        XCTAssertGreaterThan(s, 0)
        XCTAssertLessThan(s, 0.2)
        // The echo map moves by exactly the noise: ‖δ‖ / ‖x‖ ≤ r·√n / ‖x‖.
        let echo = InputEcho()
        let e = try Evaluation.maxSensitivity(echo, request: request, attribution: try echo.explain(request).raw, radius: 0.02, samples: 3)
        let norm = x.item(1).data.reduce(0.0) { $0 + Double($1 * $1) }.squareRoot()
        XCTAssertLessThanOrEqual(e, 0.02 * Double(x.item(1).count).squareRoot() / norm + 1e-6)
        XCTAssertGreaterThan(e, 0.5 * 0.02 * Double(x.item(1).count).squareRoot() / norm) // uniform noise: ‖δ‖ ≈ r·√(n/3)
    }

    func testAgreement() {
        let a = Heatmap(width: 2, height: 2, values: [0, 0.2, 0.4, 1])
        let b = Heatmap(width: 2, height: 2, values: [0, 0.3, 0.5, 0.9]) // same order as a
        let c = Heatmap(width: 2, height: 2, values: [1, 0.4, 0.2, 0]) // reversed
        let r = Evaluation.agreement(["a": a, "b": b, "c": c])
        XCTAssertEqual(r["a"]!, 0, accuracy: 1e-12) // (1 + −1) / 2
        XCTAssertEqual(r["c"]!, -1, accuracy: 1e-12)
        XCTAssertTrue(Evaluation.agreement(["a": a]).isEmpty)
    }
}
