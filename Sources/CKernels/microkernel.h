// Internal to CKernels: the register-blocked micro-kernels shared by the GEMM (sgemm.c) and
// the convolutions (conv.c), and what they do to a tile before storing it.
#ifndef CK_MICROKERNEL_H
#define CK_MICROKERNEL_H
#include "CKernels.h"
#include <immintrin.h>
#include <stddef.h>

/// The fused activation on 16 lanes, shared by every AVX-512 store (GEMM tile, channel-major
/// tile, window kernels, Winograd's output transform): CK_ACT_RELU gives max(v, 0), which is 0
/// for a NaN v as the Swift ReLU; CK_ACT_CLIP clamps to [lo, hi]; anything else leaves v.
__attribute__((target("avx512f"), always_inline))
static inline __m512 ck_activate512(__m512 v, int act, __m512 lo, __m512 hi) {
    if (act == CK_ACT_RELU) return _mm512_max_ps(v, _mm512_setzero_ps());
    if (act == CK_ACT_CLIP) return _mm512_min_ps(_mm512_max_ps(v, lo), hi);
    return v;
}

/// Depth of one packed block: A's MR x KC and B's KC x NR panels stay in L1/L2.
enum { KC = 256 };

/// Tile shapes: AVX-512 8 rows x 32 columns, AVX2 6 x 16.
#define MR512 8
#define NR512 32
#define MR256 6
#define NR256 16

/// What a kernel does to its MR x NR tile of sums S before storing it into C:
/// C = act(S + (accumulate ? C : 0) + bias[row]), on the tile's first `rows` rows and `cols`
/// columns (0: all). Only the AVX-512 kernel stores partial tiles; the AVX2 one needs full ones.
typedef struct {
    int accumulate;
    const float *bias; // the tile's rows' entries, or NULL
    int act;           // CK_ACT_*
    float lo, hi;      // CK_ACT_CLIP bounds
    int rows, cols;
} ck_epilogue;

/// C tile (MR x NR, row stride ldc) from kc steps of packed A (MR per step) and B (NR per step).
typedef void (*ck_kernel_fn)(int kc, const float *ap, const float *bp, float *c, int ldc, const ck_epilogue *e);

/// The AVX-512 kernel with B read in place: kc rows of a row-major matrix (row stride ldb), the
/// tile's e->cols columns (0: all 32) from b on; no lane past them is read.
void ck_kernel_avx512_unpacked(int kc, const float *ap, const float *b, int ldb, float *c, int ldc, const ck_epilogue *e);

/// The tile shape and kernel of a level (ck_sgemm_level); 0 when the level has none.
int ck_tile(int level, int *mr, int *nr, ck_kernel_fn *kernel);

/// Stores the rows x cols corner of a full scratch tile (row stride nr) into C with the epilogue.
void ck_store_edge(const float *tile, int nr, float *c, int ldc, int rows, int cols, const ck_epilogue *e);

/// Bits [a, b) of a mask `width` bits wide (width <= 32): a and b are clamped to [0, width], and
/// the mask is empty when a >= b. Lane masks for partial vectors and runs of panel columns.
static inline unsigned long long ck_bit_range(int a, int b, int width) {
    if (a < 0) a = 0;
    if (b > width) b = width;
    return a >= b ? 0ULL : (((1ULL << (b - a)) - 1ULL) << a);
}

/// A per-thread 64-byte aligned buffer of at least `count` floats that lives as long as the
/// thread (slot 0, 1 or 2; 2 is `ck_pointwise_depthwise`'s); NULL when it cannot be allocated.
float *ck_scratch(int slot, size_t count);

#endif
