import Engine
import Imaging
import TestSupport
import XCTest
@testable import Explainers
import Tensors

/// LIME's parts against known answers (the weighted ridge regression, split-half reliability,
/// SLIC's segments, a user-given segmentation, the seed), parity mode against the `lime`
/// package, and the adaptive mode's stopping rule.
final class LIMETests: XCTestCase {
    func testRidgeRecoversALinearModel() throws {
        // y = 0.5 + 2·z0 − z1 + 0·z2 over all 8 binary rows, repeated: with α small relative to
        // the data, the coefficients approach (2, −1, 0); the intercept is not penalized.
        var x: [[Float]] = [], y: [Double] = []
        for _ in 0..<50 { for r in 0..<8 {
            let z = [Float(r & 1), Float((r >> 1) & 1), Float((r >> 2) & 1)]
            x.append(z); y.append(0.5 + 2 * Double(z[0]) - Double(z[1]))
        } }
        // Even rows in one half, odd rows in the other: the halves add up to the whole.
        var halves = [RidgeMoments(features: 3), RidgeMoments(features: 3)]
        for (i, (z, v)) in zip(x, y).enumerated() { halves[i % 2].add(z, y: v, weight: 1) }
        let (beta, r2) = try (halves[0] + halves[1]).fit(alpha: 1)
        XCTAssertEqual(beta[0], 2 * 100 / 101, accuracy: 1e-9) // Σ(z−z̄)² = 100 per feature: β = 200/(100+1)
        XCTAssertEqual(beta[1], -100.0 / 101, accuracy: 1e-9)
        XCTAssertEqual(beta[2], 0, accuracy: 1e-9)
        // R² by hand: TSS = Σ(y−ȳ)² = 400·(4·0.25 + 0.25) = 500 (z0, z1 independent, variances 1/4 each);
        // the shrunk fit leaves RSS = 100·(2/101)² + 100·(1/101)² in all: R² = 1 − RSS/TSS.
        let rss: Double = 100 * (2.0 / 101) * (2.0 / 101) + 100 * (1.0 / 101) * (1.0 / 101)
        XCTAssertEqual(r2, 1 - rss / 500, accuracy: 1e-9)
        // A constant response has nothing to explain: R² 0, coefficients 0.
        var flat = RidgeMoments(features: 3)
        for z in x { flat.add(z, y: 0.7, weight: 2) }
        let f = try flat.fit(alpha: 1)
        XCTAssertEqual(f.r2, 0)
        XCTAssertEqual(f.beta.map { abs($0) }.max()!, 0, accuracy: 1e-12)
    }

    func testSplitHalfReliabilityIsSpearmanBrown() {
        let a: [Float] = [1, 2, 3, 4, 5]
        XCTAssertEqual(Statistics.splitHalfReliability(a, a), 1, accuracy: 1e-12)
        XCTAssertEqual(Statistics.splitHalfReliability(a, a.reversed()), 0)
        XCTAssertEqual(Statistics.splitHalfReliability(a, [Float](repeating: 3, count: 5)), 0)
        let c: [Float] = [-2, -1, 0, 1, 2], d: [Float] = [-2 + 1, -1 - 2, 0, 1 + 2, 2 - 1]
        let r = Statistics.pearson(c, d)
        XCTAssertEqual(Statistics.splitHalfReliability(c, d), 2 * r / (1 + r), accuracy: 1e-12)
    }

    /// Parity mode against the `lime` package (tools/make_lime_fixtures.py): the same
    /// segmentation, 1000 samples; lime's random draws are not ours, so the maps agree
    /// statistically. lime's own maps for five seeds agree with each other at r ≥ 0.99.
    func testLimeModeAgreesWithTheLimePackage() throws {
        let model = try Model(path: Support.repo("models/demo.onnx"))
        let x = try NPY.read(Support.fixture("demo/x.npy"))
        for (item, target) in [(0, 0), (1, 1)] {
            let request = ExplanationRequest(model: model, input: x.item(item), target: target)
            let explainer = try ExplainerRegistry.make(method: "lime", parameters: [
                "mode": "lime", "segments": Support.fixture("lime/segments_x\(item).npy")])
            let ours = try explainer.explain(request)
            XCTAssertEqual(ours.diagnostics["samples"], 1000)
            var rs: [Double] = []
            for seed in 0..<5 {
                let theirs = try NPY.read(Support.fixture("lime/lime_x\(item)_t\(target)_s\(seed).npy"))
                rs.append(Statistics.pearson(ours.raw.data, theirs.data))
            }
            let median = rs.sorted()[2]
            XCTAssertGreaterThanOrEqual(median, 0.95, "item \(item): r with lime's maps \(rs)")
        }
    }

    /// Adaptive mode on the demo's abnormal slide: stops at its stability target within the
    /// budget, reports its fit, is seeded, and its peak falls on the lesion.
    func testAdaptiveModeStopsWhenStableAndFindsTheLesion() throws {
        let model = try Model(path: Support.repo("models/demo.onnx"))
        let x = try NPY.read(Support.fixture("demo/x.npy")).item(1)
        let rgb = x.data.map { $0 * 0.25 + 0.5 }
        let request = ExplanationRequest(model: model, input: x, target: 1, image: rgb)
        let explainer = try ExplainerRegistry.make(method: "lime", parameters: [:])
        XCTAssertEqual(explainer.parameters["mode"], "adaptive")
        let a = try explainer.explain(request)
        let d = a.diagnostics
        XCTAssertGreaterThanOrEqual(d["stability"]!, 0.9)
        XCTAssertLessThanOrEqual(d["samples"]!, 2000)
        XCTAssertGreaterThanOrEqual(d["samples"]!, 600) // three scales, 200 each in the first round
        XCTAssertGreaterThan(d["fit_r2"]!, 0.5)
        XCTAssertEqual(a.raw, try explainer.explain(request).raw)
        // A budget too small for the target stops at the budget.
        let capped = try ExplainerRegistry.make(method: "lime", parameters: ["samples": "90", "stability": "1"]).explain(request)
        XCTAssertEqual(capped.diagnostics["samples"], 90)
        // A budget below two samples per scale keeps fewer scales and is never overspent.
        for n in [2, 3, 5] {
            let tiny = try ExplainerRegistry.make(method: "lime", parameters: ["samples": "\(n)"]).explain(request)
            XCTAssertLessThanOrEqual(tiny.diagnostics["samples"]!, Double(n))
        }
        // A kernel so narrow that only the all-ones row has weight: a flat map, stability 0, no error.
        let narrow = try ExplainerRegistry.make(method: "lime", parameters: ["mode": "lime", "kernel_width": "0.001", "samples": "40"])
            .explain(request)
        XCTAssertEqual(narrow.diagnostics["stability"], 0)
        let mask = try LIMETests.lesionMask("slide_001")
        XCTAssertEqual(PointingGame.hit(heatmap: a.heatmap(height: 64, width: 64), mask: mask, tolerance: 3), true)
        // What stability claims: the correlation with a rerun under another seed.
        let other = try ExplainerRegistry.make(method: "lime", parameters: ["seed": "1"]).explain(request)
        let rerun = Statistics.pearson(a.raw.data, other.raw.data)
        XCTAssertEqual(rerun, (d["stability"]! + other.diagnostics["stability"]!) / 2, accuracy: 0.1, "rerun r \(rerun), \(d), \(other.diagnostics)")
    }

    func testAutoScalesFollowTheImageSize() {
        XCTAssertEqual(LIMEExplainer.autoSegments(height: 64, width: 64), [49, 100, 196])
        XCTAssertEqual(LIMEExplainer.autoSegments(height: 224, width: 224), [49, 100, 196])
        XCTAssertEqual(LIMEExplainer.autoSegments(height: 32, width: 32), [49, 64])
        XCTAssertThrowsError(try ExplainerRegistry.make(method: "lime", parameters: ["mode": "lime", "stability": "0.9"])) {
            XCTAssertTrue("\($0)".contains("stability"), "\($0)")
        }
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

    /// A demo slide's lesion mask at the model's 64 px, as the item job makes it (bilinear, then
    /// thresholded at half).
    static func lesionMask(_ name: String) throws -> [Float] {
        let m = try Codecs.decode(path: Support.repo("datasets/demo/masks/\(name).png"), as: .gray)
        return Resize.bilinear(m.planarFloats(), channels: 1, height: m.height, width: m.width, toHeight: 64, toWidth: 64)
            .map { $0 >= 127.5 ? 1 : 0 }
    }
}
