import Engine
import TestSupport
import XCTest
@testable import Explainers
import Tensors

/// Each method against the reference library whose name it carries, on the demo CNN, abnormal
/// slide 001, target 1 (fixtures: Tests/Fixtures/methods, made by tools/make_method_fixtures.py
/// with Captum and pytorch-grad-cam; see cases.json there for the exact calls).
final class MethodParityTests: XCTestCase {
    var model: Model!
    var x: Tensor!

    override func setUpWithError() throws {
        model = try Model(path: Support.repo("models/demo.onnx"))
        x = try NPY.read(Support.fixture("demo/x.npy")).item(1)
    }

    func explain(_ method: String, _ params: [String: String] = [:]) throws -> Tensor {
        try ExplainerRegistry.make(method: method, parameters: params)
            .explain(ExplanationRequest(model: model, input: x, target: 1)).raw
    }

    func reference(_ name: String) throws -> Tensor { try NPY.read(Support.fixture("methods/\(name).npy")) }

    /// Same shape, Pearson ≥ 0.99 (the bar) and close in value.
    func assertMatches(_ got: Tensor, _ name: String, tolerance: Float = 1e-3, file: StaticString = #filePath, line: UInt = #line) throws {
        let ref = try reference(name)
        XCTAssertEqual(got.count, ref.count, name, file: file, line: line)
        guard got.count == ref.count else { return }
        let r = ref.reshaped(got.shape)
        XCTAssertGreaterThanOrEqual(FiniteDifference.pearson(got, r), 0.99, name, file: file, line: line)
        XCTAssertLessThan(FiniteDifference.relativeError(got, r), tolerance, name, file: file, line: line)
    }

    func testGradientFamily() throws {
        try assertMatches(try explain("saliency"), "saliency_x1_t1")
        try assertMatches(try explain("inputxgradient"), "inputxgradient_x1_t1")
        try assertMatches(try explain("guidedbackprop"), "guidedbackprop_x1_t1")
        try assertMatches(try explain("deconvnet"), "deconvnet_x1_t1")
    }

    func testIntegratedGradientsEveryRule() throws {
        for (rule, steps) in [("riemann_trapezoid", 16), ("riemann_left", 8), ("riemann_right", 8), ("riemann_middle", 8), ("gausslegendre", 16)] {
            let got = try explain("integratedgradients", ["rule": rule, "steps": "\(steps)"])
            try assertMatches(got, "ig_\(rule)_\(steps)_x1_t1")
        }
    }

    /// Integrated gradients' chunks run side by side on two threads (each pass single-threaded
    /// inside) and give the map of one thread bit for bit: the same chunks, in order.
    func testIntegratedGradientsOnTwoThreadsEqualsOne() throws {
        let params = ["steps": "20", "batch": "3"] // 7 chunks, the last one short
        let one = try withThreads(1) { try explain("integratedgradients", params) }
        let two = try withThreads(2) { try explain("integratedgradients", params) }
        XCTAssertEqual(one.data, two.data)
        XCTAssertGreaterThan(one.data.map(abs).max() ?? 0, 0)
    }

    func testGaussLegendreNodes() {
        // numpy.polynomial.legendre.leggauss(3): ±√(3/5) with weight 5/9, 0 with weight 8/9.
        let r = Quadrature.gaussLegendre(3)
        XCTAssertEqual(r[0].x, -(0.6).squareRoot(), accuracy: 1e-12)
        XCTAssertEqual(r[1].x, 0, accuracy: 1e-12)
        XCTAssertEqual(r[0].w, 5.0 / 9, accuracy: 1e-12)
        XCTAssertEqual(r[1].w, 8.0 / 9, accuracy: 1e-12)
        XCTAssertEqual(Quadrature.gaussLegendre(16).reduce(0) { $0 + $1.w }, 2, accuracy: 1e-12)
        // Captum's trapezoid weights: 1/n, ends halved.
        XCTAssertEqual(Quadrature.riemannTrapezoid.rule(16).map(\.weight), [0.03125] + Array(repeating: 0.0625, count: 14) + [0.03125])
    }

    func testCAMFamilyBeforeResize() throws {
        try assertMatches(try explain("gradcam++"), "gradcampp_x1_t1")
        try assertMatches(try explain("scorecam"), "scorecam_x1_t1")
    }

    /// The full pytorch-grad-cam output: normalize, resize with half-pixel centres, normalize.
    func testCAMHeatmapsMatchPytorchGradCamFinalOutput() throws {
        for (method, name) in [("gradcam", "gradcam_final_x1_t1"), ("gradcam++", "gradcampp_final_x1_t1"), ("scorecam", "scorecam_final_x1_t1")] {
            let a = try ExplainerRegistry.make(method: method).explain(ExplanationRequest(model: model, input: x, target: 1))
            let h = a.heatmap(height: 64, width: 64)
            try assertMatches(Tensor(shape: [64, 64], data: h.values), name, tolerance: 1e-3)
        }
    }

    func testOcclusionMatchesCaptum() throws {
        try assertMatches(try explain("occlusion", ["window": "3,8,8", "stride": "3,4,4"]), "occlusion_3x8x8_s4_x1_t1")
        try assertMatches(try explain("occlusion", ["window": "3,16,16", "stride": "3,8,8"]), "occlusion_3x16x16_s8_x1_t1")
    }

    /// LRP against Zennit 0.5.1 (Tests/Fixtures/lrp, tools/make_lrp_fixtures.py): batch norm merged,
    /// the residual Add as Zennit's Sum with the Norm rule, output relevance = the target logit.
    func testLRPCompositesMatchZennit() throws {
        for name in ["epsilon", "epsilon-plus-flat", "epsilon-gamma-box", "epsilon-alpha2-beta1-flat"] {
            let got = try explain("lrp", ["composite": name, "low": "-2", "high": "2", "output": "logit"])
            let ref = try NPY.read(Support.fixture("lrp/\(name).npy"))
            XCTAssertEqual(got.data.reduce(0, +), ref.data.reduce(0, +), accuracy: 1e-3 * max(1, abs(ref.data.reduce(0, +))), name)
            XCTAssertGreaterThanOrEqual(FiniteDifference.pearson(got, ref.reshaped(got.shape)), 0.99, name)
            XCTAssertLessThan(FiniteDifference.relativeError(got, ref.reshaped(got.shape)), 1e-3, name)
        }
    }

    /// With σ → 0, SmoothGrad is saliency; with noise it is seeded and repeatable.
    func testSmoothGradLimitsAndSeed() throws {
        try assertMatches(try explain("smoothgrad", ["samples": "3", "sigma": "0"]), "saliency_x1_t1")
        let a = try explain("smoothgrad", ["samples": "4", "sigma": "0.2", "seed": "7"])
        XCTAssertEqual(a, try explain("smoothgrad", ["samples": "4", "sigma": "0.2", "seed": "7"]))
        XCTAssertNotEqual(a, try explain("smoothgrad", ["samples": "4", "sigma": "0.2", "seed": "8"]))
    }

    func testRISEIsSeededAndFavoursTheClassEvidence() throws {
        let a = try explain("rise", ["mode": "paper", "masks": "64", "seed": "3"])
        XCTAssertEqual(a.shape, [64, 64])
        XCTAssertEqual(a, try explain("rise", ["mode": "paper", "masks": "64", "seed": "3"]))
        XCTAssertNotEqual(a, try explain("rise", ["mode": "paper", "masks": "64", "seed": "4"]))
        // Σ_i P·M_i / (N·p) averages the probability: its mean is near the clean probability.
        let mean = a.data.reduce(0, +) / Float(a.count)
        XCTAssertGreaterThan(mean, 0.05)
        XCTAssertLessThan(mean, 1.5)
        // The adaptive estimator Σ (P − P̄)·M / Σ M is centred: a probability-weighted mean of
        // deviations from P̄, so its pixel mean is near 0, within the probability's spread.
        let b = try explain("rise", ["masks": "500", "seed": "3", "output": "probability"])
        XCTAssertEqual(b, try explain("rise", ["masks": "500", "seed": "3", "output": "probability"]))
        XCTAssertLessThan(abs(b.data.reduce(0, +) / Float(b.count)), 0.05)
    }
}
