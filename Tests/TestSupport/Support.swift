import Foundation
import Tensors

/// Helpers shared by every test target: fixture paths, seeded random tensors, numerical checks.
public enum Support {
    /// The repository root (found from this file's path).
    public static let root: String = {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().path
    }()

    /// `Tests/Fixtures/<relative>`.
    public static func fixture(_ relative: String) -> String { "\(root)/Tests/Fixtures/\(relative)" }

    /// A path inside the repository.
    public static func repo(_ relative: String) -> String { "\(root)/\(relative)" }

    /// A fresh temporary directory.
    public static func temporaryDirectory() -> String {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("candela-test-\(UUID().uuidString)")
        try? FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        return dir.path
    }
}

extension KernelOptions {
    /// The options tests compare the fast kernels against: the OpenBLAS path (im2col and
    /// OpenBLAS's GEMM, plain C loops).
    public static var reference: KernelOptions { KernelOptions(path: .openblas) }
}

/// Runs `body` with `BLAS.threadCount` set to `threads` (the one process-wide setting left:
/// how many threads a kernel splits into), restored after.
public func withThreads<T>(_ threads: Int, _ body: () throws -> T) rethrows -> T {
    let saved = BLAS.threadCount
    defer { BLAS.setThreads(saved) }
    BLAS.setThreads(threads)
    return try body()
}

/// The seeded generator of `Tensors` (SplitMix64), with helpers for tests: every random test is reproducible.
public typealias SeededRandom = SeededGenerator

extension SeededGenerator {
    /// A tensor of uniform values in [lo, hi).
    public mutating func tensor(_ shape: [Int], _ lo: Float = -1, _ hi: Float = 1) -> Tensor {
        Tensor(shape: shape, data: (0..<shape.elementCount).map { _ in Float.random(in: lo..<hi, using: &self) })
    }

    public mutating func int(_ range: ClosedRange<Int>) -> Int { Int.random(in: range, using: &self) }
}

/// Numerical gradient checks in double-checked single precision.
public enum FiniteDifference {
    /// Central-difference gradient of a scalar function, evaluated at every coordinate of x.
    public static func gradient(at x: Tensor, epsilon: Float = 1e-2, _ f: (Tensor) throws -> Double) rethrows -> Tensor {
        var g = Tensor(shape: x.shape)
        var probe = x
        for i in 0..<x.count {
            let v = x.data[i]
            probe.data[i] = v + epsilon
            let up = try f(probe)
            probe.data[i] = v - epsilon
            let down = try f(probe)
            probe.data[i] = v
            g.data[i] = Float((up - down) / Double(2 * epsilon))
        }
        return g
    }

    /// ⟨a, b⟩ accumulated in Double: turns an output tensor into the scalar objective ⟨y, w⟩.
    public static func dot(_ a: Tensor, _ b: Tensor) -> Double {
        precondition(a.count == b.count)
        var s = 0.0
        for i in 0..<a.count { s += Double(a.data[i]) * Double(b.data[i]) }
        return s
    }

    /// Pearson correlation of the elements of two tensors of equal size (the parity bar of ≥ 0.99).
    public static func pearson(_ a: Tensor, _ b: Tensor) -> Double {
        precondition(a.count == b.count)
        let n = Double(a.count)
        let ma = a.data.reduce(0) { $0 + Double($1) } / n, mb = b.data.reduce(0) { $0 + Double($1) } / n
        var sab = 0.0, saa = 0.0, sbb = 0.0
        for i in 0..<a.count {
            let da = Double(a.data[i]) - ma, db = Double(b.data[i]) - mb
            sab += da * db; saa += da * da; sbb += db * db
        }
        return sab / (saa * sbb).squareRoot()
    }

    /// Largest |a − b| relative to max(1, max|b|).
    public static func relativeError(_ a: Tensor, _ b: Tensor) -> Float {
        let scale = max(1, b.data.map(abs).max() ?? 0)
        return a.maxAbsDifference(b) / scale
    }
}
