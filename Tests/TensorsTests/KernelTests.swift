import TestSupport
import XCTest
@testable import Tensors

/// Pooling, elementwise, batch norm and Gemm kernels: hand-computed forwards, finite-difference backwards.
final class KernelTests: XCTestCase {
    func testMaxPoolHandComputed() throws {
        // 1×1×4×4, k2 s2: the max of each 2×2 block.
        let x = Tensor(shape: [1, 1, 4, 4], data: [1, 2, 5, 3,
                                                  4, 0, 1, 1,
                                                  9, 8, 2, 7,
                                                  6, 7, 3, 1])
        let g = PoolGeometry(kernel: [2, 2], strides: [2, 2])
        let (y, argmax) = try Pool.forward(x: x, geometry: g, kind: .max, kernels: .best)
        XCTAssertEqual(y.data, [4, 5, 9, 7])
        XCTAssertEqual(argmax, [4, 2, 8, 11])
        let dx = Pool.backward(dy: Tensor(shape: [1, 1, 2, 2], data: [1, 2, 3, 4]), x: x, geometry: g, kind: .max, argmax: argmax)
        XCTAssertEqual(dx.data, [0, 0, 2, 0, 1, 0, 0, 0, 3, 0, 0, 4, 0, 0, 0, 0])
    }

    func testPoolOutputSizesPaddingAndCeilMode() throws {
        // k3 s2 p1 on 5×5 -> 3×3; ceil mode on 6×6 with k3 s2 -> 3×3 (floor gives 2×2).
        XCTAssertEqual(PoolGeometry(kernel: [3, 3], strides: [2, 2], pads: [1, 1, 1, 1]).outputSize([5, 5]), [3, 3])
        XCTAssertEqual(PoolGeometry(kernel: [3, 3], strides: [2, 2]).outputSize([6, 6]), [2, 2])
        XCTAssertEqual(PoolGeometry(kernel: [3, 3], strides: [2, 2], ceilMode: true).outputSize([6, 6]), [3, 3])
        // PyTorch's rule: the last window must start inside the input: 5×5, k2 s2 p1 ceil -> 3, not 4.
        XCTAssertEqual(PoolGeometry(kernel: [2, 2], strides: [2, 2], pads: [1, 1, 1, 1], ceilMode: true).outputSize([5, 5]), [3, 3])
        let x = Tensor(shape: [1, 1, 2, 2], data: [-5, -6, -7, -8])
        // Padding never wins a max, even against negative values.
        let g = PoolGeometry(kernel: [3, 3], pads: [1, 1, 1, 1])
        XCTAssertEqual(try Pool.forward(x: x, geometry: g, kind: .max, kernels: .best).y.data, [-5, -5, -5, -5])
        // Average with and without the padded taps: corner window holds 4 real of 9 taps.
        XCTAssertEqual(try Pool.forward(x: x, geometry: g, kind: .average(countIncludePad: false), kernels: .best).y.data[0], -6.5)
        XCTAssertEqual(try Pool.forward(x: x, geometry: g, kind: .average(countIncludePad: true), kernels: .best).y.data[0], -26.0 / 9, accuracy: 1e-6)
    }

    func testPoolBackwardFiniteDifferences() throws {
        var rng = SeededRandom(seed: 3)
        let cases: [(PoolGeometry, [Int])] = [
            (PoolGeometry(kernel: [3, 3], strides: [2, 2], pads: [1, 1, 1, 1]), [2, 2, 7, 8]),
            (PoolGeometry(kernel: [2, 3], strides: [1, 2], dilations: [2, 1], ceilMode: true), [2, 2, 7, 8]),
            (PoolGeometry(kernel: [3], strides: [2], pads: [1, 0]), [2, 3, 9]),
            (PoolGeometry(kernel: [2, 2, 2], strides: [1, 2, 1]), [1, 2, 3, 4, 3]),
        ]
        for (g, shape) in cases {
            for kind in [Pool.Kind.max, .average(countIncludePad: false), .average(countIncludePad: true)] {
                let x = rng.tensor(shape)
                let (y, argmax) = try Pool.forward(x: x, geometry: g, kind: kind, kernels: .best)
                let dy = rng.tensor(y.shape)
                let dx = Pool.backward(dy: dy, x: x, geometry: g, kind: kind, argmax: argmax)
                let numeric = try FiniteDifference.gradient(at: x, epsilon: 1e-4) {
                    FiniteDifference.dot(try Pool.forward(x: $0, geometry: g, kind: kind, kernels: .best).y, dy)
                }
                XCTAssertLessThan(FiniteDifference.relativeError(dx, numeric), 2e-2, "\(g) \(kind)")
            }
        }
    }

    func testGlobalAveragePool() {
        var rng = SeededRandom(seed: 4)
        let x = rng.tensor([2, 3, 4, 5])
        let y = GlobalAveragePool.forward(x: x)
        XCTAssertEqual(y.shape, [2, 3, 1, 1])
        XCTAssertEqual(y.data[4], x.data[80..<100].reduce(0, +) / 20, accuracy: 1e-6)
        let dy = rng.tensor(y.shape)
        let numeric = FiniteDifference.gradient(at: x) { FiniteDifference.dot(GlobalAveragePool.forward(x: $0), dy) }
        XCTAssertLessThan(FiniteDifference.relativeError(GlobalAveragePool.backward(dy: dy, inputShape: x.shape), numeric), 1e-3)
        // Planes summed eight side by side give the bits of one plane after another, also for
        // the planes past the last group of eight, for 1×1 planes, and split across threads
        // (MobileNetV2's last activation).
        for shape in [[2, 13, 7, 7], [1, 16, 1, 1], [3, 5, 2, 3], [1, 1283, 7, 7]] {
            let x = rng.tensor(shape)
            let plane = shape[2] * shape[3]
            let expected = (0..<(shape[0] * shape[1])).map { p in
                x.data[(p * plane)..<((p + 1) * plane)].reduce(Float(0), +) / Float(plane)
            }
            XCTAssertEqual(GlobalAveragePool.forward(x: x).data, expected, "\(shape)")
        }
        // The threads' runs cover every plane once, each part's runs in order and cut at multiples
        // of eight planes from the part's start (the planes `meanOfPlanes` sums side by side).
        for (planes, parts) in [(32, 2), (1283, 2), (20, 2), (3, 2), (96, 3)] {
            var covered: [Int] = []
            for part in 0..<parts {
                let start = planes * part / parts
                for piece in 0..<4 {
                    let r = Parallel.items(ofPiece: piece, of: 4, part: part, of: parts, items: planes, multiple: 8)
                    covered += Array(r)
                    if piece < 3 { XCTAssertEqual((r.upperBound - start) % 8, 0, "\(planes) planes, part \(part), run \(piece)") }
                }
            }
            XCTAssertEqual(covered, Array(0..<planes), "\(planes) planes in \(parts) parts")
        }
        // Without a multiple, the runs are the even split of each part (the stem's rows, the
        // matrix-vector product's outputs): 112 rows in two parts, runs of 14.
        XCTAssertEqual((0..<4).map { Parallel.items(ofPiece: $0, of: 4, part: 1, of: 2, items: 112) },
                       [56..<70, 70..<84, 84..<98, 98..<112])
    }

    func testReluForwardBackward() {
        let x = Tensor(shape: [4], data: [-1, 0, 2, -3])
        XCTAssertEqual(Elementwise.reluForward(x).data, [0, 0, 2, 0])
        XCTAssertEqual(Elementwise.reluBackward(dy: Tensor(shape: [4], data: [1, 1, 1, 1]), x: x).data, [0, 0, 1, 0])
    }

    func testBroadcastingAndItsAdjoint() throws {
        var rng = SeededRandom(seed: 5)
        XCTAssertEqual(try Elementwise.broadcastShape([2, 3, 4, 5], [3, 1, 1]), [2, 3, 4, 5])
        XCTAssertEqual(try Elementwise.broadcastShape([5], [2, 1]), [2, 5])
        XCTAssertThrowsError(try Elementwise.broadcastShape([2, 3], [4]))
        let a = rng.tensor([2, 3, 4, 5]), b = rng.tensor([3, 1, 1])
        let y = try Elementwise.binary(a, b, +)
        XCTAssertEqual(y.data[(1 * 3 + 2) * 20 + 7], a.data[(1 * 3 + 2) * 20 + 7] + b.data[2], accuracy: 1e-6)
        // d⟨a + b, w⟩/db = Σ over broadcast axes of w.
        let w = rng.tensor(y.shape)
        let numeric = try FiniteDifference.gradient(at: b) { FiniteDifference.dot(try Elementwise.binary(a, $0, +), w) }
        XCTAssertLessThan(FiniteDifference.relativeError(Elementwise.sumToShape(w, b.shape), numeric), 1e-3)
    }

    func testBatchNormAffine() {
        let x = Tensor(shape: [1, 2, 1, 2], data: [1, 2, 3, 4])
        let (a, b) = BatchNorm.affine(scale: Tensor(shape: [2], data: [2, 1]), bias: Tensor(shape: [2], data: [0, 1]),
                                      mean: Tensor(shape: [2], data: [1, 3]), variance: Tensor(shape: [2], data: [4, 1]),
                                      epsilon: 0)
        // channel 0: 2·(x−1)/2 = x−1; channel 1: (x−3)/1 + 1 = x−2
        XCTAssertEqual(BatchNorm.forward(x: x, a: a, b: b, kernels: .best).data, [0, 1, 1, 2])
        XCTAssertEqual(BatchNorm.backward(dy: Tensor(shape: [1, 2, 1, 2], repeating: 1), a: a).data, [1, 1, 1, 1])
    }

    func testGemmAllTranspositions() throws {
        var rng = SeededRandom(seed: 6)
        for (ta, tb) in [(false, false), (true, false), (false, true), (true, true)] {
            let (m, k, n) = (3, 4, 5)
            let a = rng.tensor(ta ? [k, m] : [m, k]), b = rng.tensor(tb ? [n, k] : [k, n]), c = rng.tensor([n])
            let y = try Gemm.forward(a: a, b: b, c: c, transA: ta, transB: tb, alpha: 0.5, beta: 2, kernels: .best)
            for i in 0..<m { for j in 0..<n {
                var s: Float = 0
                for q in 0..<k { s += (ta ? a.data[q * m + i] : a.data[i * k + q]) * (tb ? b.data[j * k + q] : b.data[q * n + j]) }
                XCTAssertEqual(y.data[i * n + j], 0.5 * s + 2 * c.data[j], accuracy: 1e-5)
            } }
            let dy = rng.tensor(y.shape)
            let da = Gemm.backwardA(dy: dy, a: a, b: b, transA: ta, transB: tb, alpha: 0.5, kernels: .best)
            let numeric = try FiniteDifference.gradient(at: a) {
                FiniteDifference.dot(try Gemm.forward(a: $0, b: b, c: c, transA: ta, transB: tb, alpha: 0.5, beta: 2, kernels: .best), dy)
            }
            XCTAssertLessThan(FiniteDifference.relativeError(da, numeric), 1e-3, "transA \(ta) transB \(tb)")
        }
    }
}
