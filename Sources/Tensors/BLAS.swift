import CBLAS

/// The only door to OpenBLAS. Everything above `Tensors` multiplies matrices through here.
public enum BLAS {
    /// C = alpha * op(A) * op(B) + beta * C, row-major, single precision.
    ///
    /// - Parameters:
    ///   - transA, transB: use Aᵀ / Bᵀ.
    ///   - m, n, k: op(A) is (m,k), op(B) is (k,n), C is (m,n).
    ///   - lda, ldb, ldc: leading dimensions (row strides) of the stored matrices.
    @inlinable
    public static func sgemm(transA: Bool = false, transB: Bool = false,
                             m: Int, n: Int, k: Int, alpha: Float = 1,
                             a: UnsafePointer<Float>, lda: Int,
                             b: UnsafePointer<Float>, ldb: Int,
                             beta: Float = 0,
                             c: UnsafeMutablePointer<Float>, ldc: Int) {
        guard m > 0, n > 0 else { return }
        if k == 0 {
            // BLAS leaves C untouched for k == 0 only when beta == 1; make it exact.
            for i in 0..<m { for j in 0..<n { c[i * ldc + j] *= beta } }
            return
        }
        cblas_sgemm(CblasRowMajor,
                    transA ? CblasTrans : CblasNoTrans,
                    transB ? CblasTrans : CblasNoTrans,
                    Int32(m), Int32(n), Int32(k), alpha,
                    a, Int32(lda), b, Int32(ldb), beta, c, Int32(ldc))
    }

    /// Bounds OpenBLAS's own thread pool. Call with 1 when the caller already runs
    /// several forward passes in parallel, so that the two kinds of threads do not fight.
    public static func setThreads(_ n: Int) {
        openblas_set_num_threads(Int32(Swift.max(1, n)))
    }

    /// Number of threads OpenBLAS currently uses.
    public static var threads: Int { Int(openblas_get_num_threads()) }
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
}
