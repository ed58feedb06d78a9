import Foundation
import TestSupport
import XCTest
@testable import Tensors

/// Candela's own GEMM micro-kernels against OpenBLAS (the reference), on shapes that hit every
/// edge: tiles cut at the borders, depth across several blocks, transposes, alpha and beta,
/// one and two threads, and one row (a matrix-vector product, its outputs split across threads).
final class GEMMKernelTests: XCTestCase {
    func product(transA: Bool, transB: Bool, m: Int, n: Int, k: Int, alpha: Float, beta: Float,
                 path: KernelOptions.Path, threads: Int, seed: UInt64) -> [Float] {
        var rng = SeededGenerator(seed: seed)
        let (lda, ldb, ldc) = (transA ? m + 3 : k + 1, transB ? k + 2 : n + 5, n + 4)
        let a = (0..<((transA ? k : m) * lda)).map { _ in rng.gaussian() }
        let b = (0..<((transB ? n : k) * ldb)).map { _ in rng.gaussian() }
        var c = (0..<(m * ldc)).map { _ in rng.gaussian() }
        withThreads(threads) {
            a.withUnsafeBufferPointer { ap in b.withUnsafeBufferPointer { bp in c.withUnsafeMutableBufferPointer { cp in
                BLAS.sgemm(kernels: KernelOptions(path: path), transA: transA, transB: transB, m: m, n: n, k: k, alpha: alpha,
                           a: ap.baseAddress!, lda: lda, b: bp.baseAddress!, ldb: ldb, beta: beta, c: cp.baseAddress!, ldc: ldc)
            } } }
        }
        return c
    }

    func testKernelsMatchOpenBLAS() throws {
        // Every own-kernel path this CPU runs (an AVX2 CPU runs the avx2 iteration alone).
        let paths = KernelOptions.supportedPaths.filter { $0 != .openblas }
        print("GEMM kernels on \(CPU.summary): \(paths.map(\.rawValue).joined(separator: ", "))")
        var seed: UInt64 = 1
        for level in paths {
            let small = [(1, 1, 1), (1, 1000, 300), (1, 37, 5), (5, 7, 3), (12, 32, 256), (13, 33, 257), (37, 100, 600), (200, 17, 9)]
            let large = [(64, 784, 576), (256, 49, 2304)]
            for (m, n, k) in small + large {
                let isLarge = m * n * k > 1_000_000
                for (transA, transB) in isLarge ? [(false, false), (true, false)] : [(false, false), (true, false), (false, true), (true, true)] {
                    for (alpha, beta) in isLarge ? [(Float(1), Float(0))] : [(Float(1), Float(0)), (1, 1), (0.5, 2)] {
                        for threads in [1, 2] {
                            seed += 1
                            let ref = product(transA: transA, transB: transB, m: m, n: n, k: k, alpha: alpha, beta: beta, path: .openblas, threads: 1, seed: seed)
                            let got = product(transA: transA, transB: transB, m: m, n: n, k: k, alpha: alpha, beta: beta, path: level, threads: threads, seed: seed)
                            var worst: Float = 0
                            for i in 0..<ref.count { worst = max(worst, abs(got[i] - ref[i]) / (1 + abs(ref[i]))) }
                            XCTAssertLessThan(worst, 1e-4 * Float(k).squareRoot(),
                                              "level \(level) m \(m) n \(n) k \(k) transA \(transA) transB \(transB) alpha \(alpha) beta \(beta) threads \(threads)")
                        }
                    }
                }
            }
        }
    }
}
