import Foundation
import Tensors
import TestSupport
import XCTest
@testable import Analysis

/// Heatmap similarities against their reference implementations (fixtures by
/// tools/make_similarity_fixtures.py: scikit-image's SSIM, scipy's Spearman).
final class SimilarityTests: XCTestCase {
    struct Case: Decodable { let name: String; let ssim: Double; let spearman: Double }

    func testAgreesWithScikitImageAndScipy() throws {
        let dir = Support.fixture("similarity")
        let cases = try JSONDecoder().decode([Case].self, from: Data(contentsOf: URL(fileURLWithPath: "\(dir)/cases.json")))
        XCTAssertEqual(cases.count, 4)
        for c in cases {
            let a = try NPY.read("\(dir)/\(c.name)_a.npy"), b = try NPY.read("\(dir)/\(c.name)_b.npy")
            let s = Similarity.of(a.data, width: a.shape[1], height: a.shape[0], b.data, bWidth: b.shape[1], bHeight: b.shape[0])
            XCTAssertEqual(s.ssim, c.ssim, accuracy: 1e-6, c.name)
            XCTAssertEqual(s.spearman, c.spearman, accuracy: 1e-6, c.name)
        }
    }

    func testIdentityAndTopK() {
        let a = (0..<400).map { Float(($0 * 37) % 400) / 400 }
        let same = Similarity.of(a, width: 20, height: 20, a, bWidth: 20, bHeight: 20)
        XCTAssertEqual(same.ssim, 1, accuracy: 1e-9)
        XCTAssertEqual(same.spearman, 1, accuracy: 1e-9)
        XCTAssertEqual(same.topK, 1)
        // Reversed ranks: no top pixel in common, ρ = −1.
        let reversed = a.map { 1 - $0 }
        let r = Similarity.of(a, width: 20, height: 20, reversed, bWidth: 20, bHeight: 20)
        XCTAssertEqual(r.topK, 0)
        XCTAssertEqual(r.spearman, -1, accuracy: 1e-9)
        // A map at half the size is compared after resizing: a constant-gradient map stays alike.
        let ramp = (0..<400).map { Float($0 % 20) / 19 }
        let half = (0..<100).map { Float($0 % 10) / 9 }
        XCTAssertGreaterThan(Similarity.of(ramp, width: 20, height: 20, half, bWidth: 10, bHeight: 10).spearman, 0.99)
    }
}
