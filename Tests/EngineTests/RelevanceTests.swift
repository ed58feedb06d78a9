import Foundation
import TestSupport
import XCTest
@testable import Engine
import Tensors

/// Each LRP rule against an independent matrix-form re-implementation (explicit sums over
/// z_ij = x_i·w_ij, as in Zennit's tests/unit/test_rules.py), on a dense layer and on a
/// convolution (compared through its im2col matrix form).
final class RelevanceTests: XCTestCase {
    /// Matrix form for y = W x + b, W (out,in): returns R_in for R_out.
    func reference(_ rule: LRPRule, x: [Float], w: [[Float]], b: [Float], r: [Float]) -> [Float] {
        let (o, n) = (w.count, x.count)
        func stab(_ z: Double, _ e: Double) -> Double { z + (z >= 0 ? e : -e) }
        /// Σ_j contrib_ij / stab(Σ_i contrib_ij + bias_j) · r_j for one term family.
        func share(_ contrib: (Int, Int) -> Double, bias: (Int) -> Double, eps: Double) -> [Double] {
            var out = [Double](repeating: 0, count: n)
            for j in 0..<o {
                var z = bias(j)
                for i in 0..<n { z += contrib(i, j) }
                let s = Double(r[j]) / stab(z, eps)
                for i in 0..<n { out[i] += contrib(i, j) * s }
            }
            return out
        }
        let X = x.map(Double.init), W = w.map { $0.map(Double.init) }, B = b.map(Double.init)
        let p = { (v: Double) in max(v, 0) }, q = { (v: Double) in min(v, 0) }
        let result: [Double]
        switch rule {
        case .epsilon(let e): result = share({ X[$0] * W[$1][$0] }, bias: { B[$0] }, eps: Double(e))
        case .zPlus: result = share({ p(X[$0]) * p(W[$1][$0]) + q(X[$0]) * q(W[$1][$0]) }, bias: { p(B[$0]) }, eps: 1e-6)
        case .alphaBeta(let a, let bt):
            let act = share({ p(X[$0]) * p(W[$1][$0]) + q(X[$0]) * q(W[$1][$0]) }, bias: { p(B[$0]) }, eps: 1e-6)
            let inh = share({ p(X[$0]) * q(W[$1][$0]) + q(X[$0]) * p(W[$1][$0]) }, bias: { q(B[$0]) }, eps: 1e-6)
            result = zip(act, inh).map { Double(a) * $0 - Double(bt) * $1 }
        case .flat: result = share({ _, _ in 1 }, bias: { _ in 0 }, eps: 1e-6)
        case .wSquare: result = share({ W[$1][$0] * W[$1][$0] }, bias: { _ in 0 }, eps: 1e-6)
        case .gamma(let g):
            let gg = Double(g)
            let wp = { (i: Int, j: Int) in W[j][i] + gg * p(W[j][i]) }, wn = { (i: Int, j: Int) in W[j][i] + gg * q(W[j][i]) }
            // Per output j: z_j decides which weights explain it.
            var out = [Double](repeating: 0, count: n)
            for j in 0..<o {
                var z = B[j]
                for i in 0..<n { z += X[i] * W[j][i] }
                guard z != 0 else { continue }
                let contrib = { (i: Int) -> Double in
                    z > 0 ? p(X[i]) * wp(i, j) + q(X[i]) * wn(i, j) : p(X[i]) * wn(i, j) + q(X[i]) * wp(i, j)
                }
                var denominator = z > 0 ? B[j] + gg * p(B[j]) : B[j] + gg * q(B[j])
                for i in 0..<n { denominator += contrib(i) }
                let s = Double(r[j]) / stab(denominator, 1e-6)
                for i in 0..<n { out[i] += contrib(i) * s }
            }
            result = out
        case .zBox(let l, let h):
            result = share({ X[$0] * W[$1][$0] - Double(l) * p(W[$1][$0]) - Double(h) * q(W[$1][$0]) }, bias: { _ in 0 }, eps: 1e-6)
        }
        return result.map(Float.init)
    }

    static let rules: [LRPRule] = [.epsilon(1e-6), .epsilon(0.25), .zPlus, .alphaBeta(2, 1), .flat, .wSquare, .gamma(0.25), .zBox(low: -2, high: 2)]

    func testDenseRulesMatchMatrixForm() throws {
        var rng = SeededRandom(seed: 31)
        let x = rng.tensor([1, 7]), w = rng.tensor([5, 7]), b = rng.tensor([5]), r = rng.tensor([1, 5])
        let layer = LinearLayer(
            apply: { xi, wi in try Gemm.forward(a: xi, b: wi, c: nil, transA: false, transB: true, alpha: 1, beta: 0, kernels: .best) },
            transpose: { s, wi in Gemm.backwardA(dy: s, a: x, b: wi, transA: false, transB: true, alpha: 1, kernels: .best) })
        let rows = (0..<5).map { Array(w.data[($0 * 7)..<(($0 + 1) * 7)]) }
        for rule in RelevanceTests.rules {
            let got = try LRP.linear(x: x, w: w, bias: b, biasAxis: nil, relevance: r, rule: rule, layer: layer)
            let want = reference(rule, x: x.data, w: rows, b: b.data, r: r.data)
            XCTAssertLessThan(FiniteDifference.relativeError(got, Tensor(shape: [1, 7], data: want)), 1e-4, "\(rule)")
        }
    }

    func testConvolutionRulesMatchMatrixForm() throws {
        var rng = SeededRandom(seed: 32)
        let g = Conv2DGeometry(kernel: (3, 3), strides: (2, 1), pads: (1, 0, 1, 1))
        let x = rng.tensor([1, 2, 5, 4]), w = rng.tensor([3, 2, 3, 3]), b = rng.tensor([3])
        let y = try Conv2D.forward(x: x, w: w, b: nil, geometry: g, kernels: .best)
        let r = rng.tensor(y.shape)
        let layer = LinearLayer(apply: { xi, wi in try Conv2D.forward(x: xi, w: wi, b: nil, geometry: g, kernels: .best) },
                                transpose: { s, wi in Conv2D.backwardInput(dy: s, w: wi, inputShape: x.shape, geometry: g, kernels: .best) })
        // The convolution as a dense matrix: column i of W is the response to the unit input e_i.
        let n = x.count, o = y.count
        var dense = [[Float]](repeating: [Float](repeating: 0, count: n), count: o)
        for i in 0..<n {
            var e = Tensor(shape: x.shape); e.data[i] = 1
            let col = try Conv2D.forward(x: e, w: w, b: nil, geometry: g, kernels: .best)
            for j in 0..<o { dense[j][i] = col.data[j] }
        }
        let plane = y.shape[2] * y.shape[3]
        let denseBias = (0..<o).map { b.data[$0 / plane] }
        for rule in RelevanceTests.rules where rule != .flat && rule != .wSquare {
            let got = try LRP.linear(x: x, w: w, bias: b, biasAxis: 1, relevance: r, rule: rule, layer: layer)
            let want = reference(rule, x: x.data, w: dense, b: denseBias, r: r.data)
            XCTAssertLessThan(FiniteDifference.relativeError(got, Tensor(shape: x.shape, data: want)), 1e-4, "\(rule)")
        }
    }

    /// Input relevance sums for every composite, seed one-hot on class 1.
    func sums(_ model: Model, channels: Int) throws -> [String: Float] {
        var rng = SeededRandom(seed: 9)
        let x = rng.tensor([1, channels, 8, 8], 0, 1)
        let pass = try model.run(["x": x])
        var out: [String: Float] = [:]
        for name in ["epsilon", "epsilon-plus-flat", "epsilon-alpha2-beta1-flat"] {
            let r = try model.relevance(pass, seed: Tensor(shape: [1, 2], data: [0, 1]), composite: LRPComposite.named(name)!)
            out[name] = r.data.reduce(0, +)
        }
        return out
    }

    let pad1 = [("pads", [1, 1, 1, 1])]

    /// Bias-free nets with ReLU, max pooling and a residual Add (ResNet-style), with ReLU6 and
    /// depthwise convolutions and an un-activated residual (MobileNetV2-style), and with SiLU and
    /// squeeze-and-excitation gating (EfficientNet-style): with the epsilon rule and ε → 0 the input
    /// relevance sums to the output relevance (1). Zennit leaves the latter two residual additions
    /// untreated; Candela splits every Add and gives a gated product's relevance to its signal.
    /// z-plus and alpha-beta conserve only where their positive and negative parts are nonzero,
    /// so on nets with negative activations their sums are close to, not equal to, 1.
    func testConservationOnResNetMobileNetAndEfficientNetStyleNets() throws {
        let resnet = try ModelBuilder.model([
            ("Conv", ["x", "w1"], "c1", pad1), ("Relu", ["c1"], "r1", []),
            ("MaxPool", ["r1"], "p1", [("kernel_shape", [2, 2]), ("strides", [2, 2])]),
            ("Conv", ["p1", "w2"], "c2", pad1), ("Relu", ["c2"], "r2", []), ("Conv", ["r2", "w3"], "c3", pad1),
            ("Add", ["c3", "p1"], "s", []), ("Relu", ["s"], "r3", []), ("GlobalAveragePool", ["r3"], "gap", []),
            ("Flatten", ["gap"], "f", []), ("Gemm", ["f", "fc"], "y", [("transB", [1])]),
        ], weights: ["w1": [4, 3, 3, 3], "w2": [4, 4, 3, 3], "w3": [4, 4, 3, 3], "fc": [2, 4]], seed: 33)
        let mobilenet = try ModelBuilder.model([
            ("Conv", ["x", "w1"], "c1", pad1), ("Clip", ["c1", "zero", "six"], "a1", []),
            ("Conv", ["a1", "e"], "c2", []), ("Clip", ["c2", "zero", "six"], "a2", []),
            ("Conv", ["a2", "dw"], "c3", pad1 + [("group", [8])]), ("Clip", ["c3", "zero", "six"], "a3", []),
            ("Conv", ["a3", "pw"], "c4", []), ("Add", ["c4", "a1"], "s", []),
            ("GlobalAveragePool", ["s"], "gap", []), ("Flatten", ["gap"], "f", []), ("Gemm", ["f", "fc"], "y", [("transB", [1])]),
        ], weights: ["w1": [4, 3, 3, 3], "e": [8, 4, 1, 1], "dw": [8, 1, 3, 3], "pw": [4, 8, 1, 1], "fc": [2, 4],
                     "zero": [], "six": []], seed: 34)
        let efficientnet = try ModelBuilder.model([
            ("Conv", ["x", "w1"], "c1", pad1), ("Sigmoid", ["c1"], "g1", []), ("Mul", ["c1", "g1"], "a1", []),
            ("Conv", ["a1", "dw"], "c2", pad1 + [("group", [4])]), ("Sigmoid", ["c2"], "g2", []), ("Mul", ["c2", "g2"], "a2", []),
            ("GlobalAveragePool", ["a2"], "se0", []), ("Conv", ["se0", "sr"], "se1", []), ("Relu", ["se1"], "se2", []),
            ("Conv", ["se2", "se"], "se3", []), ("Sigmoid", ["se3"], "gate", []), ("Mul", ["a2", "gate"], "sc", []),
            ("Conv", ["sc", "pw"], "c3", []), ("Add", ["c3", "a1"], "s", []),
            ("GlobalAveragePool", ["s"], "gap", []), ("Flatten", ["gap"], "f", []), ("Gemm", ["f", "fc"], "y", [("transB", [1])]),
        ], weights: ["w1": [4, 3, 3, 3], "dw": [4, 1, 3, 3], "sr": [2, 4, 1, 1], "se": [4, 2, 1, 1], "pw": [4, 4, 1, 1], "fc": [2, 4]],
           seed: 35)
        for (name, net) in [("ResNet-style", resnet), ("MobileNetV2-style", mobilenet), ("EfficientNet-style", efficientnet)] {
            for (composite, total) in try sums(net, channels: 3).sorted(by: { $0.key < $1.key }) {
                print("conservation \(name) \(composite): \(total)")
                XCTAssertEqual(total, 1, accuracy: composite == "epsilon" ? 1e-3 : 0.1, "\(name) \(composite): relevance sums to \(total)")
            }
        }
    }
}
