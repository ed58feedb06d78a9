#ifndef CKERNELS_H
#define CKERNELS_H
#include <stddef.h>

/// Which single-precision GEMM kernel this CPU runs: 2 = AVX-512F, 1 = AVX2+FMA, 0 = none
/// (the caller falls back to OpenBLAS). Checked once with the CPU's feature flags.
int ck_sgemm_level(void);

/// Restricts the kernel to at most `level` (tests run the AVX2 kernel on an AVX-512 CPU);
/// a level above what the CPU supports is lowered to it. Returns the level now in use.
int ck_sgemm_limit(int level);

/// C = alpha * op(A) * op(B) + beta * C for row-major matrices (op(A) m x k, op(B) k x n,
/// C m x n; lda, ldb, ldc the stored row strides; op = transpose when transA / transB), on the
/// rows [m0, m1) and columns [n0, n1) of C only, so that callers can split one product across
/// threads. Single-threaded. Returns 0, or -1 when there is no kernel for this CPU or the
/// packing buffers cannot be allocated (the caller then uses OpenBLAS).
int ck_sgemm(int transA, int transB, int m0, int m1, int n0, int n1, int k, float alpha,
             const float *a, int lda, const float *b, int ldb,
             float beta, float *c, int ldc);

/// Fixes glibc's mmap threshold at 128 KB (it otherwise grows after each large free, and
/// activation buffers then fragment the heap) and trims freed memory above 1 MB.
void ck_configure_allocator(void);

#endif
