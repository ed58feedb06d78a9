import Engine
import Imaging
import TestSupport
import XCTest
@testable import Explainers
import Tensors

/// LIME's parts against known answers: the weighted ridge regression, SLIC's segments, a
/// user-given segmentation, and the seed.
final class LIMETests: XCTestCase {
    func testRidgeRecoversALinearModel() throws {
        // y = 0.5 + 2·z0 − z1 + 0·z2 over all 8 binary rows, repeated: with α small relative to
        // the data, the coefficients approach (2, −1, 0); the intercept is not penalized.
        var x: [[Float]] = [], y: [Double] = []
        for _ in 0..<50 { for r in 0..<8 {
            let z = [Float(r & 1), Float((r >> 1) & 1), Float((r >> 2) & 1)]
            x.append(z); y.append(0.5 + 2 * Double(z[0]) - Double(z[1]))
        } }
        let beta = try LIMEExplainer.ridge(x, y, weights: Array(repeating: 1, count: x.count), alpha: 1)
        XCTAssertEqual(beta[0], 2 * 100 / 101, accuracy: 1e-9) // Σ(z−z̄)² = 100 per feature: β = 200/(100+1)
        XCTAssertEqual(beta[1], -100.0 / 101, accuracy: 1e-9)
        XCTAssertEqual(beta[2], 0, accuracy: 1e-9)
    }

    func testSLICSegmentsAreConnectedAndNearTheRequestedCount() {
        // Left half red, right half blue: no superpixel may straddle the colour edge.
        let (h, w) = (32, 32)
        var rgb = [Float](repeating: 0, count: 3 * h * w)
        for y in 0..<h { for x in 0..<w { if x < 16 { rgb[y * w + x] = 1 } else { rgb[2 * h * w + y * w + x] = 1 } } }
        let (labels, count) = SLIC.segment(rgb: rgb, height: h, width: w, segments: 16, compactness: 10)
        XCTAssertGreaterThanOrEqual(count, 8)
        XCTAssertLessThanOrEqual(count, 24)
        for y in 0..<h { XCTAssertNotEqual(labels[y * w + 15], labels[y * w + 16]) }
        XCTAssertEqual(Set(labels).count, count)
        XCTAssertEqual(Set(labels), Set(0..<count))
    }

    func testLIMEOnTheDemoIsSeededAndUsesAUserSegmentation() throws {
        let model = try Model(path: Support.repo("models/demo.onnx"))
        let x = try NPY.read(Support.fixture("demo/x.npy")).item(1)
        let request = ExplanationRequest(model: model, input: x, target: 1)
        let a = try ExplainerRegistry.make(method: "lime", parameters: ["samples": "64", "seed": "1"]).explain(request).raw
        XCTAssertEqual(a, try ExplainerRegistry.make(method: "lime", parameters: ["samples": "64", "seed": "1"]).explain(request).raw)
        XCTAssertNotEqual(a, try ExplainerRegistry.make(method: "lime", parameters: ["samples": "64", "seed": "2"]).explain(request).raw)
        // Two segments, left and right halves: the map has exactly two values, one per half.
        let dir = Support.temporaryDirectory()
        let halves = Tensor(shape: [64, 64], data: (0..<4096).map { Float(($0 % 64) < 32 ? 7 : 3) })
        try NPY.write(halves, to: "\(dir)/halves.npy")
        let b = try ExplainerRegistry.make(method: "lime", parameters: ["samples": "32", "segments": "\(dir)/halves.npy"])
            .explain(request).raw
        XCTAssertEqual(Set(b.data).count, 2)
        XCTAssertEqual(b.data[0], b.data[31])
        try NPY.write(Tensor(shape: [32, 32]), to: "\(dir)/small.npy")
        XCTAssertThrowsError(try ExplainerRegistry.make(method: "lime", parameters: ["segments": "\(dir)/small.npy"]).explain(request)) {
            XCTAssertTrue("\($0)".contains("small.npy"), "\($0)")
        }
    }
}
