import CBLAS
import CKernels
import Dispatch
import Foundation

/// The only door to OpenBLAS. Everything above `Tensors` multiplies matrices through here.
public enum BLAS {
    /// C = alpha * op(A) * op(B) + beta * C, row-major, single precision.
    ///
    /// - Parameters:
    ///   - transA, transB: use Aᵀ / Bᵀ.
    ///   - m, n, k: op(A) is (m,k), op(B) is (k,n), C is (m,n).
    ///   - lda, ldb, ldc: leading dimensions (row strides) of the stored matrices.
    ///   - kernels: Candela's own GEMM tile at its level, or OpenBLAS on the OpenBLAS path (and
    ///     where the own kernel cannot get its packing memory).
    public static func sgemm(kernels: KernelOptions, transA: Bool = false, transB: Bool = false,
                             m: Int, n: Int, k: Int, alpha: Float = 1,
                             a: UnsafePointer<Float>, lda: Int,
                             b: UnsafePointer<Float>, ldb: Int,
                             beta: Float = 0,
                             c: UnsafeMutablePointer<Float>, ldc: Int) {
        let threads = threadCount // first use: also settles OpenBLAS's own thread count
        guard m > 0, n > 0 else { return }
        if k == 0 {
            // BLAS leaves C untouched for k == 0 only when beta == 1; make it exact.
            for i in 0..<m { for j in 0..<n { c[i * ldc + j] *= beta } }
            return
        }
        if m == 1 {
            // One row (a batch of one through a fully connected layer): a matrix-vector product reads
            // op(B) once, where the GEMM would first pack all of it. y = α·op(B)ᵀ·a + β·y; with β = 0,
            // C's old contents (possibly NaN) must not leak in through 0·C.
            // The outputs are split across the threads (OpenBLAS itself runs one): a classifier's
            // weights (5 MB in MobileNetV2) stream through both cores. Candela's AVX-512 kernel
            // when a is contiguous (it keeps more loads in flight than OpenBLAS's), else OpenBLAS.
            let own = kernels.level >= 2 && (!transA || lda == 1)
            if beta == 0 && !own { c.update(repeating: 0, count: n) }
            let parts = Swift.min(threads, Swift.max(1, (n * k) >> 16))
            let shared = SharedPointers(a: a, b: b, c: c, status: nil)
            // Each thread its outputs in four runs (`Parallel.shares`), the first done takes the
            // other's last; every output is one dot product whatever the runs.
            let pieces = parts > 1 ? 4 : 1
            Parallel.shares(parts, pieces: pieces) { t, piece in
                let outputs = Parallel.items(ofPiece: piece, of: pieces, part: t, of: parts, items: n)
                let (lo, hi) = (outputs.lowerBound, outputs.upperBound)
                guard lo < hi else { return }
                if own {
                    _ = ck_sgemv(kernels.level, transB ? 1 : 0, Int32(lo), Int32(hi), Int32(k), alpha, shared.b, Int32(ldb), shared.a, beta, shared.c)
                    return
                }
                // op(B) columns lo..<hi: rows of B when transposed, else columns.
                cblas_sgemv(CblasRowMajor, transB ? CblasNoTrans : CblasTrans,
                            Int32(transB ? hi - lo : k), Int32(transB ? k : hi - lo), alpha,
                            shared.b + (transB ? lo * ldb : lo), Int32(ldb),
                            shared.a, Int32(transA ? lda : 1), beta, shared.c + lo, 1)
            }
            return
        }
        // Split C across threads: by columns when it is wide, else by rows. Each part writes
        // its own rows or columns of C and its own status slot; every entry of C is one sum
        // along k whatever the split.
        let parts = Swift.min(threads, Swift.max(1, (m * n * k) >> 17))
        let byColumns = n >= 64 * parts
        let status = UnsafeMutablePointer<Int32>.allocate(capacity: parts)
        defer { status.deallocate() }
        let shared = SharedPointers(a: a, b: b, c: c, status: status)
        let level = kernels.level
        Parallel.run(parts, items: parts) { t in
            let (lo, hi) = byColumns ? (n * t / parts, n * (t + 1) / parts) : (m * t / parts, m * (t + 1) / parts)
            let (m0, m1, n0, n1) = byColumns ? (0, m, lo, hi) : (lo, hi, 0, n)
            if level > 0 {
                shared.status![t] = ck_sgemm(level, transA ? 1 : 0, transB ? 1 : 0, Int32(m0), Int32(m1), Int32(n0), Int32(n1),
                                            Int32(k), alpha, shared.a, Int32(lda), shared.b, Int32(ldb), beta, shared.c, Int32(ldc))
                if shared.status![t] == 0 { return }
            }
            // OpenBLAS (one thread: see `threadCount`) on this part's block of C: rows m0..<m1
            // of op(A), columns n0..<n1 of op(B).
            cblas_sgemm(CblasRowMajor, transA ? CblasTrans : CblasNoTrans, transB ? CblasTrans : CblasNoTrans,
                        Int32(m1 - m0), Int32(n1 - n0), Int32(k), alpha,
                        shared.a + (transA ? m0 : m0 * lda), Int32(lda), shared.b + (transB ? n0 * ldb : n0), Int32(ldb),
                        beta, shared.c + m0 * ldc + n0, Int32(ldc))
            shared.status![t] = 0
        }
    }

    /// Sets how many threads one product or convolution uses. Call with 1 when the caller
    /// already runs several forward passes in parallel, so that the two kinds of threads do not
    /// fight.
    public static func setThreads(_ n: Int) {
        threadCount = Swift.max(1, n)
    }

    /// Threads of Candela's own kernels and of its products: OpenBLAS's default count (the
    /// cores, or OPENBLAS_NUM_THREADS) until `setThreads` is called. OpenBLAS itself is set to
    /// one thread on first use, on every kernel path: `sgemm` splits its products across
    /// Candela's threads itself, what else goes to OpenBLAS (LAPACK's small solves) gains
    /// nothing from threads, and OpenBLAS's idle workers spin (sched_yield) for a while after
    /// each call, taking a core from the convolution that follows (a quarter of the two cores'
    /// time on resnet18 at batch 1).
    nonisolated(unsafe) public static var threadCount: Int = {
        let n = Int(openblas_get_num_threads())
        openblas_set_num_threads(1)
        return n
    }()

    /// Number of threads OpenBLAS currently uses.
    public static var threads: Int { Int(openblas_get_num_threads()) }
}

/// The operands of one product, handed to the threads that split it (disjoint writes).
private struct SharedPointers: @unchecked Sendable {
    let a: UnsafePointer<Float>
    let b: UnsafePointer<Float>
    let c: UnsafeMutablePointer<Float>
    let status: UnsafeMutablePointer<Int32>?
}

/// Dense linear algebra through LAPACK (the only other door to OpenBLAS).
public enum LinearAlgebra {
    /// Solves A·x = b for a symmetric positive definite A (n×n, row-major) by Cholesky
    /// (LAPACKE_dposv). Returns nil when A is not positive definite.
    public static func solveSPD(_ a: [Double], _ b: [Double], n: Int) -> [Double]? {
        precondition(a.count == n * n && b.count == n)
        var a = a, x = b
        let info = LAPACKE_dposv(LAPACK_ROW_MAJOR, Int8(UInt8(ascii: "U")), Int32(n), 1, &a, Int32(n), &x, 1)
        return info == 0 ? x : nil
    }

    /// Eigenvalues (ascending) and eigenvectors of a symmetric matrix A (n×n, row-major, upper
    /// triangle read) by LAPACK's divide and conquer (LAPACKE_dsyevd). `vectors[i * n + j]` is
    /// component i of the eigenvector of `values[j]`. Nil when LAPACK does not converge.
    public static func symmetricEigen(_ a: [Double], n: Int) -> (values: [Double], vectors: [Double])? {
        precondition(a.count == n * n)
        guard n > 0 else { return ([], []) }
        var a = a, w = [Double](repeating: 0, count: n)
        let info = LAPACKE_dsyevd(LAPACK_ROW_MAJOR, Int8(UInt8(ascii: "V")), Int8(UInt8(ascii: "U")), Int32(n), &a, Int32(n), &w)
        return info == 0 ? (w, a) : nil
    }
}

/// Process-wide memory settings.
public enum Memory {
    /// glibc's malloc set for tensors, by tunables it reads once, at start: so the program runs
    /// itself again with them set (`ck_reexec_with_malloc_tunables`; `CANDELA_HUGE_PAGES=0` turns
    /// this off). Call first thing in `main`, before any thread starts. Results do not change.
    /// - `glibc.malloc.mmap_max=0`, `glibc.malloc.trim_threshold=4294967295`: large blocks come
    ///   from the heap and freed ones stay there for the next. A backward pass allocates and frees
    ///   tensors of tens of MB at every step; as fresh mappings, their pages were faulted in and
    ///   cleared by the kernel every time.
    /// - `glibc.malloc.hugetlb=1` where Linux backs memory with huge pages only when a program
    ///   asks (`transparent_hugepage` = madvise): a 1 × 1 or depthwise kernel reads each input
    ///   channel a plane apart, a new 4 KB page every depth step, and a pass streams every
    ///   layer's weights.
    /// Figures in docs/engine.md ("Huge pages and the heap") and tools/bench/README.md.
    public static func tuneMalloc() { _ = ck_reexec_with_malloc_tunables(CommandLine.unsafeArgv) }

    /// Whether this process's malloc takes large blocks from its heap (`glibc.malloc.mmap_max=0`
    /// is among its GLIBC_TUNABLES): `candela bench --json` reports it.
    public static var heapBlocks: Bool { tunables.contains("glibc.malloc.mmap_max=0") }

    /// Whether this process's malloc asks for huge pages (`glibc.malloc.hugetlb=1` is among its
    /// GLIBC_TUNABLES): `candela bench --json` reports it.
    public static var hugePages: Bool { tunables.contains("glibc.malloc.hugetlb=1") }

    /// This process's GLIBC_TUNABLES, one `name=value` each.
    private static var tunables: [Substring] {
        (ProcessInfo.processInfo.environment["GLIBC_TUNABLES"] ?? "").split(separator: ":")
    }
}
