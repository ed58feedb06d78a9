// Internal to CKernels: the register-blocked micro-kernels shared by the GEMM (sgemm.c) and
// the convolutions (conv.c), and what they do to a tile before storing it.
#ifndef CK_MICROKERNEL_H
#define CK_MICROKERNEL_H
#include "CKernels.h"
#include <immintrin.h>
#include <math.h>
#include <stddef.h>

/// exp(x) for 16 lanes, after Cephes' expf: n = round(x / ln 2), r = x - n ln 2 (ln 2 split in
/// two parts so that n ln 2 is exact), exp(r) by its degree-7 Taylor-like minimax polynomial on
/// [-ln 2 / 2, ln 2 / 2], then 2^n by scalef (which saturates to 0 and +inf without overflow in
/// n). Relative error below 2e-7 over the float range; NaN stays NaN.
__attribute__((target("avx512f"), always_inline))
static inline __m512 ck_exp512(__m512 x) {
    const __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(1.44269504088896341f)),
                                          _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693359375f), x);
    r = _mm512_fnmadd_ps(n, _mm512_set1_ps(-2.12194440e-4f), r);
    __m512 p = _mm512_set1_ps(1.9875691500e-4f);
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.3981999507e-3f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(8.3334519073e-3f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(4.1665795894e-2f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.6666665459e-1f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(5.0000001201e-1f));
    const __m512 e = _mm512_add_ps(_mm512_fmadd_ps(p, _mm512_mul_ps(r, r), r), _mm512_set1_ps(1.0f));
    return _mm512_scalef_ps(e, n);
}

/// The logistic sigmoid 1 / (1 + exp(-v)) on 16 lanes (`ck_sigmoid`'s AVX-512 path).
__attribute__((target("avx512f"), always_inline))
static inline __m512 ck_sigmoid512(__m512 v) {
    const __m512 one = _mm512_set1_ps(1.0f);
    return _mm512_div_ps(one, _mm512_add_ps(one, ck_exp512(_mm512_sub_ps(_mm512_setzero_ps(), v))));
}

/// One lane of the sigmoid and of SiLU without AVX-512 (`ck_sigmoid`'s and `ck_silu`'s
/// fallbacks, and the AVX2 stores'): SiLU is the sigmoid's bits, then the product.
static inline float ck_sigmoid1(float v) { return 1.0f / (1.0f + expf(-v)); }
static inline float ck_silu1(float v) { return v * ck_sigmoid1(v); }

/// The fused activation on one value, for the scalar stores: ReLU v > 0 ? v : 0 (0 for NaN),
/// clip to [lo, hi] (NaN stays NaN), SiLU; anything else leaves v.
static inline float ck_activate1(float v, int act, float lo, float hi) {
    if (act == CK_ACT_RELU) return v > 0 ? v : 0.0f;
    if (act == CK_ACT_CLIP) return v < lo ? lo : (v > hi ? hi : v);
    if (act == CK_ACT_SILU) return ck_silu1(v);
    return v;
}

/// The fused activation on 16 lanes, shared by every AVX-512 store (GEMM tile, channel-major
/// tile, window kernels, Winograd's output transform): CK_ACT_RELU gives max(v, 0), which is 0
/// for a NaN v as the Swift ReLU; CK_ACT_CLIP clamps to [lo, hi]; CK_ACT_SILU gives
/// v * sigmoid(v) (the bits of `ck_sigmoid` and a product); anything else leaves v.
__attribute__((target("avx512f"), always_inline))
static inline __m512 ck_activate512(__m512 v, int act, __m512 lo, __m512 hi) {
    if (act == CK_ACT_RELU) return _mm512_max_ps(v, _mm512_setzero_ps());
    if (act == CK_ACT_CLIP) return _mm512_min_ps(_mm512_max_ps(v, lo), hi);
    if (act == CK_ACT_SILU) return _mm512_mul_ps(v, ck_sigmoid512(v));
    return v;
}

/// The fused activation on 8 lanes (the AVX2 channel-major and depthwise stores), as
/// ck_activate512: ReLU max(v, 0), clip to [lo, hi], SiLU lane by lane through ck_silu1 (the
/// AVX2 GEMM's bits); anything else leaves v.
__attribute__((target("avx2,fma"), always_inline))
static inline __m256 ck_activate256(__m256 v, int act, __m256 lo, __m256 hi) {
    if (act == CK_ACT_RELU) return _mm256_max_ps(v, _mm256_setzero_ps());
    if (act == CK_ACT_CLIP) return _mm256_min_ps(_mm256_max_ps(v, lo), hi);
    if (act == CK_ACT_SILU) {
        float lanes[8];
        _mm256_storeu_ps(lanes, v);
        for (int i = 0; i < 8; i++) lanes[i] = ck_silu1(lanes[i]);
        return _mm256_loadu_ps(lanes);
    }
    return v;
}

/// src[0], src[2], ..., src[14] (the even lanes of 16 floats, every float read): two loads, a
/// shuffle within 128-bit halves ([a0 a2 b0 b2 | a4 a6 b4 b6]) and the 64-bit pairs put in order
/// 0 2 1 3. Stride-2 rows for the AVX2 packing and depthwise kernels.
__attribute__((target("avx2,fma"), always_inline))
static inline __m256 ck_even_lanes256(const float *src) {
    const __m256 even = _mm256_shuffle_ps(_mm256_loadu_ps(src), _mm256_loadu_ps(src + 8), _MM_SHUFFLE(2, 0, 2, 0));
    return _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(even), _MM_SHUFFLE(3, 1, 2, 0)));
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
/// columns (0: all): an edge tile stores its valid part only and reads the bias of its valid
/// rows only.
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

/// The AVX2 kernel with B read in place (6 x 16 tiles): kc rows of a row-major matrix (row stride
/// ldb), the tile's e->cols columns (0: all 16) from b on, e->rows rows (0: all 6) stored; no
/// lane past the columns is read.
void ck_kernel_avx2_unpacked(int kc, const float *ap, const float *b, int ldb, float *c, int ldc, const ck_epilogue *e);

/// The tile shape and kernel of a level (ck_sgemm_level); 0 when the level has none.
int ck_tile(int level, int *mr, int *nr, ck_kernel_fn *kernel);

/// Bits [a, b) of a mask `width` bits wide (width <= 64): a and b are clamped to [0, width], and
/// the mask is empty when a >= b. Lane masks for partial vectors and runs of panel columns.
static inline unsigned long long ck_bit_range(int a, int b, int width) {
    if (a < 0) a = 0;
    if (b > width) b = width;
    if (a >= b) return 0ULL;
    return (b - a == 64 ? ~0ULL : (1ULL << (b - a)) - 1ULL) << a;
}

/// Lanes i of 8 with a <= i < b as an AVX2 mask (every bit of a lane set or clear): the lanes a
/// masked load reads.
__attribute__((target("avx2,fma"), always_inline))
static inline __m256i ck_lane_mask256(int a, int b) {
    const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    return _mm256_and_si256(_mm256_cmpgt_epi32(lane, _mm256_set1_epi32(a - 1)), _mm256_cmpgt_epi32(_mm256_set1_epi32(b), lane));
}

/// A per-thread 64-byte aligned buffer of at least `count` floats that lives as long as the
/// thread (slot 0, 1 or 2; 2 is `ck_pointwise_depthwise`'s); NULL when it cannot be allocated.
float *ck_scratch(int slot, size_t count);

#endif
