import Foundation
import Tensors
import XCTest
@testable import Analysis

/// SpRAy's parts against known answers: Laplacian spectra in closed form (both solvers), and
/// clusters of synthetic heatmaps with a planted corner tag.
final class SpRAyTests: XCTestCase {
    /// The cycle C_n's normalized Laplacian has eigenvalues 1 − cos(2πj/n), j = 0…n−1 (each
    /// j ≠ 0, n/2 twice): the iterative solver must find the repeated ones too.
    func testCycleSpectrumBothSolvers() {
        let n = 40
        let graph = (0..<n).map { [($0 + n - 1) % n, ($0 + 1) % n].sorted() }
        let expected = (0..<n).map { 1 - cos(2 * Double.pi * Double($0) / Double(n)) }.sorted().prefix(6)
        for iterative in [false, true] {
            let s = Spectrum.smallest(of: graph, count: 6, seed: 3, forceIterative: iterative)
            for (a, b) in zip(s.values, expected) { XCTAssertEqual(a, b, accuracy: 1e-7, "iterative: \(iterative)") }
            // Each vector is an eigenvector: ‖Lv − λv‖ small.
            for (lambda, v) in zip(s.values, s.vectors) {
                var r = 0.0
                for i in 0..<n {
                    let mv = graph[i].reduce(0.0) { $0 + v[$1] / 2 }
                    r += pow(v[i] - mv - lambda * v[i], 2)
                }
                XCTAssertLessThan(r.squareRoot(), 1e-6)
            }
        }
    }

    /// Three disjoint cliques K₁₀: λ = 0 three times, then m/(m − 1) = 10/9.
    func testComponentsGiveRepeatedZeros() {
        let m = 10
        let graph = (0..<(3 * m)).map { i in (0..<m).map { (i / m) * m + $0 }.filter { $0 != i } }
        for iterative in [false, true] {
            let s = Spectrum.smallest(of: graph, count: 4, seed: 1, forceIterative: iterative)
            XCTAssertEqual(s.values[0], 0, accuracy: 1e-7)
            XCTAssertEqual(s.values[1], 0, accuracy: 1e-7)
            XCTAssertEqual(s.values[2], 0, accuracy: 1e-7)
            XCTAssertEqual(s.values[3], 10.0 / 9, accuracy: 1e-7)
        }
    }

    /// On a k-nearest-neighbour graph of three noisy groups (the shape SpRAy meets), subspace
    /// iteration agrees with LAPACK's dense solver.
    func testIterativeAgreesWithDenseOnNeighbourGraph() {
        var rng = SeededGenerator(seed: 5)
        let features = (0..<300).map { i -> [Float] in
            (0..<8).map { d in Float(d == i % 3 ? 1 : 0) + Float.random(in: -0.6...0.6, using: &rng) }
        }
        let graph = SpRAy.neighbourGraph(features, dimension: 8, k: 8)
        let dense = Spectrum.smallest(of: graph, count: 9)
        let iterative = Spectrum.smallest(of: graph, count: 9, seed: 2, forceIterative: true)
        for (a, b) in zip(dense.values, iterative.values) { XCTAssertEqual(a, b, accuracy: 1e-7) }
        // The same invariant subspace of the first three: |⟨u, v⟩| summed over the pairs is 3.
        var overlap = 0.0
        for u in dense.vectors.prefix(3) { for v in iterative.vectors.prefix(3) { let d = zip(u, v).reduce(0.0) { $0 + $1.0 * $1.1 }; overlap += d * d } }
        XCTAssertEqual(overlap, 3, accuracy: 1e-6)
    }

    func testPoolAveragesPositivePartToUnitSum() {
        // 4×4 → 2×2: block means of the positive part, scaled to sum 1.
        let map: [Float] = [1, 1, 0, 0,
                            1, 1, 0, -5,
                            0, 0, 2, 2,
                            0, 0, 2, 2]
        XCTAssertEqual(SpRAy.pool(map, width: 4, height: 4, size: 2), [1.0 / 3, 0, 0, 2.0 / 3])
        XCTAssertEqual(SpRAy.pool([-1, -2, 0, 0], width: 2, height: 2, size: 2), [0, 0, 0, 0])
        let mask: [Float] = [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]
        XCTAssertEqual(SpRAy.poolMask(mask, width: 4, height: 4, size: 2), [false, false, false, true])
        XCTAssertNil(SpRAy.poolMask([Float](repeating: 0, count: 16), width: 4, height: 4, size: 2))
    }

    /// A 32×32 heatmap with a Gaussian blob at (cx, cy), and the mask of a disc of radius 4 there.
    func blob(_ cx: Double, _ cy: Double, sigma: Double = 2.5) -> [Float] {
        (0..<(32 * 32)).map { i in
            let (x, y) = (Double(i % 32) + 0.5, Double(i / 32) + 0.5)
            return Float(exp(-((x - cx) * (x - cx) + (y - cy) * (y - cy)) / (2 * sigma * sigma)))
        }
    }

    func disc(_ cx: Double, _ cy: Double) -> [Float] {
        (0..<(32 * 32)).map { i in
            let (x, y) = (Double(i % 32) + 0.5, Double(i / 32) + 0.5)
            return (x - cx) * (x - cx) + (y - cy) * (y - cy) <= 16 ? 1 : 0
        }
    }

    /// 30 heatmaps on their objects (random places in the interior) and 10 whose relevance sits
    /// on a corner tag while their object is elsewhere.
    func samples(tagged: Int, masks: Bool, seed: UInt64) -> [SpRAy.Sample] {
        var rng = SeededGenerator(seed: seed)
        let settings = SpRAy.Settings()
        return (0..<(30 + tagged)).map { i in
            let (ox, oy) = (Double.random(in: 8...24, using: &rng), Double.random(in: 8...24, using: &rng))
            let tag = i % 4 == 3 && i / 4 < tagged
            let (hx, hy) = tag ? (3.0 + Double.random(in: -0.5...0.5, using: &rng), 3.0 + Double.random(in: -0.5...0.5, using: &rng)) : (ox, oy)
            let noise = (0..<(32 * 32)).map { _ in Float.random(in: 0...0.02, using: &rng) }
            let map = zip(blob(hx, hy), noise).map(+)
            return SpRAy.Sample(id: Int64(i), features: SpRAy.pool(map, width: 32, height: 32, size: settings.size),
                                object: masks ? SpRAy.poolMask(disc(ox, oy), width: 32, height: 32, size: settings.size) : nil)
        }
    }

    func tagged(_ s: [SpRAy.Sample], count: Int) -> Set<Int64> {
        Set(s.map(\.id).filter { $0 % 4 == 3 && $0 / 4 < Int64(count) })
    }

    func testPlantedCornerTagIsItsOwnFlaggedCluster() {
        for masks in [true, false] {
            let s = samples(tagged: 10, masks: masks, seed: 7)
            let result = SpRAy.analyse(s, settings: SpRAy.Settings())
            let flagged = result.clusters.filter(\.flagged)
            XCTAssertEqual(flagged.count, 1, "masks: \(masks); clusters \(result.clusters.map { ($0.members.count, $0.reasons) })")
            guard let c = flagged.first else { continue }
            XCTAssertEqual(Set(c.members.map { s[$0].id }), tagged(s, count: 10), "masks: \(masks)")
            XCTAssertEqual(c.place, "top-left corner")
            XCTAssertTrue(c.reasons[0].contains(masks ? "outside the object masks" : "top-left corner"), c.reasons[0])
            XCTAssertTrue(c.members.contains(c.medoid))
            XCTAssertEqual(result.assignment.count, s.count)
            XCTAssertGreaterThanOrEqual(result.clusters.count, 2)
        }
    }

    func testCleanSetFlagsNothing() {
        for masks in [true, false] {
            for seed in [UInt64(1), 2, 3] {
                let result = SpRAy.analyse(samples(tagged: 0, masks: masks, seed: seed), settings: SpRAy.Settings())
                XCTAssertTrue(result.clusters.allSatisfy { !$0.flagged },
                              "masks: \(masks), seed \(seed): \(result.clusters.map(\.reasons))")
            }
        }
    }

    /// The medoid minimizes the summed distance to the other members (brute force).
    func testMedoidIsTheBruteForceMinimum() {
        var rng = SeededGenerator(seed: 11)
        let s = (0..<25).map { i in SpRAy.Sample(id: Int64(i), features: (0..<16).map { _ in Float.random(in: 0...1, using: &rng) }) }
        let members = Array(0..<25)
        func total(_ i: Int) -> Double {
            var sum = 0.0
            for j in members {
                var d2 = 0.0
                for t in 0..<16 { let e = Double(s[i].features[t] - s[j].features[t]); d2 += e * e }
                sum += d2.squareRoot()
            }
            return sum
        }
        let expected = members.min { total($0) < total($1) }!
        XCTAssertEqual(SpRAy.medoid(members, s), expected)
    }
}
