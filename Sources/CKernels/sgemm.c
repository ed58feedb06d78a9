// Single-precision GEMM for row-major matrices: packed panels and a register-blocked
// micro-kernel (the BLIS structure: Van Zee & van de Geijn, "BLIS: A framework for rapidly
// instantiating BLAS functionality", ACM TOMS 41(3), 2015), with an AVX-512 kernel of 8x32
// and an AVX2+FMA kernel of 6x16, chosen at run time from the CPU's feature flags.
//
// Loops (outside in): columns in blocks of NC, depth in blocks of KC (B's block packed into
// KC x NR panels), rows in blocks of MC (A's block packed into MR x KC panels), then NR-wide
// and MR-tall tiles, each computed in registers. Edge tiles are computed into a scratch tile
// and copied. OpenBLAS stays the reference the Swift tests compare against.
#include "CKernels.h"
#include "microkernel.h"
#include <immintrin.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

enum { MC = 96, NC = 4096 };

/// How far ahead (in floats) the AVX-512 and AVX2 tiles prefetch their A panel, two cache lines
/// every four depth steps. A convolution's packed weights are its A: at batch 1 resnet18's layer4 streams
/// 9-17 MB of them per layer from beyond the caches, which the hardware prefetcher alone did not
/// keep up with (figures in tools/bench/README.md, "Figures behind the kernels").
enum { PREFETCH_A = 256 };

/// A 1x1 convolution's tile with B read in place (`ck_kernel_avx512_unpacked`, tiles left to
/// right along 8 output rows, see conv.c's conv_pointwise):
/// - OUT_AHEAD: at its start, a tile asks for write ownership of the next tile's output lines
///   (prefetchw, 8 rows x 2 lines, OUT_AHEAD floats on). A wide plane's output goes far past
///   L2 (MobileNetV2's 96 x 112 x 112 expansion writes 4.8 MB over 16 depth steps a tile), and
///   each line stored waited for its read-for-ownership. A recycled output buffer may still sit
///   in the other core's cache, which prefetchw takes over early too.
/// - B_AHEAD: from depth 64 on, each step prefetches B's row B_AHEAD steps on: every depth row
///   of the input is a plane apart (12.5 KB at 56 x 56), a new page each step, which the
///   hardware prefetcher does not follow; at small depths it costs more than it saves, hence
///   the threshold.
enum { OUT_AHEAD = 32, B_AHEAD = 8, B_AHEAD_FROM_DEPTH = 64 };

// --- AVX-512: 8 rows x 32 columns, 16 accumulators (8 divides the usual channel counts) ------------------------------------
// One depth step of the AVX-512 tile: acc[r] += A[r] * B's row (two vectors of 16 lanes), B's row
// B_AHEAD steps on prefetched when `b_ahead`.
__attribute__((target("avx512f"), always_inline))
static inline void step_avx512(const float *ap, const float *bp, int ldb, __mmask16 load0, __mmask16 load1, int b_ahead,
                               __m512 acc[MR512][2]) {
    if (b_ahead) {
        _mm_prefetch((const char *)(bp + (size_t)B_AHEAD * ldb), _MM_HINT_T0);
        _mm_prefetch((const char *)(bp + (size_t)B_AHEAD * ldb + 16), _MM_HINT_T0);
    }
    const __m512 b0 = _mm512_maskz_loadu_ps(load0, bp), b1 = _mm512_maskz_loadu_ps(load1, bp + 16);
    for (int r = 0; r < MR512; r++) {
        const __m512 a = _mm512_set1_ps(ap[r]);
        acc[r][0] = _mm512_fmadd_ps(a, b0, acc[r][0]);
        acc[r][1] = _mm512_fmadd_ps(a, b1, acc[r][1]);
    }
}

// One body for two kernels: B from a packed panel (row stride NR512, every lane read) or straight
// from a row-major matrix (row stride ldb; lanes past the tile's columns are masked off and never
// read, so B may end right after the tile's last valid column). (prfchw: PREFETCHW, which every
// CPU with AVX-512 has.)
__attribute__((target("avx512f,prfchw"), always_inline))
static inline void tile_avx512(int kc, const float *ap, const float *bp, int ldb, __mmask16 load0, __mmask16 load1,
                               int in_place, float *c, int ldc, const ck_epilogue *e) {
    __m512 acc[MR512][2];
    for (int r = 0; r < MR512; r++) { acc[r][0] = _mm512_setzero_ps(); acc[r][1] = _mm512_setzero_ps(); }
    if (in_place) {
        for (int r = 0; r < MR512; r++) {
            _mm_prefetch((const char *)(c + (size_t)r * ldc + OUT_AHEAD), _MM_HINT_ET0);
            _mm_prefetch((const char *)(c + (size_t)r * ldc + OUT_AHEAD + 16), _MM_HINT_ET0);
        }
    }
    const int b_ahead = in_place && kc >= B_AHEAD_FROM_DEPTH;
    // Four depth steps per iteration, the A panel's two lines for them prefetched first: no
    // per-step branch for the prefetch (each sum is the same chain of multiply-adds).
    int p = 0;
    for (; p + 4 <= kc; p += 4) {
        _mm_prefetch((const char *)(ap + PREFETCH_A), _MM_HINT_T0);
        _mm_prefetch((const char *)(ap + PREFETCH_A + 16), _MM_HINT_T0);
        for (int q = 0; q < 4; q++) {
            step_avx512(ap, bp, ldb, load0, load1, b_ahead, acc);
            ap += MR512;
            bp += ldb;
        }
    }
    for (; p < kc; p++) {
        step_avx512(ap, bp, ldb, load0, load1, b_ahead, acc);
        ap += MR512;
        bp += ldb;
    }
    const __m512 lo = _mm512_set1_ps(e->lo), hi = _mm512_set1_ps(e->hi);
    // An edge tile stores its first `rows` rows and `cols` columns only (masked loads and stores).
    const int rows = e->rows ? e->rows : MR512, cols = e->cols ? e->cols : NR512;
    const __mmask16 m0 = (__mmask16)ck_bit_range(0, cols, 16), m1 = (__mmask16)(ck_bit_range(16, cols, 32) >> 16);
    for (int r = 0; r < rows; r++) {
        float *row = c + (size_t)r * ldc;
        if (e->accumulate) {
            acc[r][0] = _mm512_add_ps(acc[r][0], _mm512_maskz_loadu_ps(m0, row));
            acc[r][1] = _mm512_add_ps(acc[r][1], _mm512_maskz_loadu_ps(m1, row + 16));
        }
        if (e->bias) {
            __m512 b = _mm512_set1_ps(e->bias[r]);
            acc[r][0] = _mm512_add_ps(acc[r][0], b);
            acc[r][1] = _mm512_add_ps(acc[r][1], b);
        }
        acc[r][0] = ck_activate512(acc[r][0], e->act, lo, hi);
        acc[r][1] = ck_activate512(acc[r][1], e->act, lo, hi);
        _mm512_mask_storeu_ps(row, m0, acc[r][0]);
        _mm512_mask_storeu_ps(row + 16, m1, acc[r][1]);
    }
}

__attribute__((target("avx512f,prfchw")))
static void kernel_avx512(int kc, const float *ap, const float *bp, float *c, int ldc, const ck_epilogue *e) {
    tile_avx512(kc, ap, bp, NR512, 0xFFFF, 0xFFFF, 0, c, ldc, e);
}

__attribute__((target("avx512f,prfchw")))
void ck_kernel_avx512_unpacked(int kc, const float *ap, const float *b, int ldb, float *c, int ldc, const ck_epilogue *e) {
    const int cols = e->cols ? e->cols : NR512;
    tile_avx512(kc, ap, b, ldb, (__mmask16)ck_bit_range(0, cols, 16), (__mmask16)(ck_bit_range(16, cols, 32) >> 16), 1, c, ldc, e);
}

// Stores the rows x cols corner of a full scratch tile (row stride nr) into C with the epilogue.
static void store_edge(const float *tile, int nr, float *c, int ldc, int rows, int cols, const ck_epilogue *e) {
    for (int r = 0; r < rows; r++) {
        for (int q = 0; q < cols; q++) {
            float v = tile[r * nr + q] + (e->accumulate ? c[(size_t)r * ldc + q] : 0.0f);
            if (e->bias) v += e->bias[r];
            c[(size_t)r * ldc + q] = ck_activate1(v, e->act, e->lo, e->hi);
        }
    }
}

// --- AVX2 + FMA: 6 rows x 16 columns, 12 accumulators ----------------------------------
// One depth step of the AVX2 tile: acc[r] += A[r] * B's row (two vectors of 8 lanes; with
// `masked`, lanes outside m0/m1 not read), B's row B_AHEAD steps on prefetched when `b_ahead`.
__attribute__((target("avx2,fma"), always_inline))
static inline void step_avx2(const float *ap, const float *bp, int ldb, int b_ahead, int masked, __m256i m0, __m256i m1,
                             __m256 acc[MR256][2]) {
    if (b_ahead) _mm_prefetch((const char *)(bp + (size_t)B_AHEAD * ldb), _MM_HINT_T0);
    __m256 b0, b1;
    if (masked) {
        b0 = _mm256_maskload_ps(bp, m0);
        b1 = _mm256_maskload_ps(bp + 8, m1);
    } else {
        b0 = _mm256_loadu_ps(bp);
        b1 = _mm256_loadu_ps(bp + 8);
    }
    for (int r = 0; r < MR256; r++) {
        const __m256 a = _mm256_broadcast_ss(ap + r);
        acc[r][0] = _mm256_fmadd_ps(a, b0, acc[r][0]);
        acc[r][1] = _mm256_fmadd_ps(a, b1, acc[r][1]);
    }
}

// One body for two kernels, as tile_avx512: B from a packed panel (row stride NR256) or straight
// from a row-major matrix (row stride ldb; with `masked`, lanes past the tile's columns are not
// read: a masked load, which unlike a masked store is fast on every AVX2 core). The sums of an
// output are the same chain of multiply-adds either way.
__attribute__((target("avx2,fma"), always_inline))
static inline void sums_avx2(int kc, const float *ap, const float *bp, int ldb, int b_ahead, int masked, __m256i m0,
                             __m256i m1, __m256 acc[MR256][2]) {
    for (int r = 0; r < MR256; r++) { acc[r][0] = _mm256_setzero_ps(); acc[r][1] = _mm256_setzero_ps(); }
    // As the AVX-512 tile: four depth steps per iteration, the A panel (packed weights)
    // PREFETCH_A floats ahead, two lines for the four steps' 24 floats.
    int p = 0;
    for (; p + 4 <= kc; p += 4) {
        _mm_prefetch((const char *)(ap + PREFETCH_A), _MM_HINT_T0);
        _mm_prefetch((const char *)(ap + PREFETCH_A + 16), _MM_HINT_T0);
        for (int q = 0; q < 4; q++) {
            step_avx2(ap, bp, ldb, b_ahead, masked, m0, m1, acc);
            ap += MR256;
            bp += ldb;
        }
    }
    for (; p < kc; p++) {
        step_avx2(ap, bp, ldb, b_ahead, masked, m0, m1, acc);
        ap += MR256;
        bp += ldb;
    }
}

// C = act(S + (accumulate ? C : 0) + bias) on a whole 6 x 16 tile.
__attribute__((target("avx2,fma"), always_inline))
static inline void store_avx2(__m256 acc[MR256][2], float *c, int ldc, const ck_epilogue *e) {
    const __m256 zero = _mm256_setzero_ps(), lo = _mm256_set1_ps(e->lo), hi = _mm256_set1_ps(e->hi);
    for (int r = 0; r < MR256; r++) {
        float *row = c + (size_t)r * ldc;
        if (e->accumulate) {
            acc[r][0] = _mm256_add_ps(acc[r][0], _mm256_loadu_ps(row));
            acc[r][1] = _mm256_add_ps(acc[r][1], _mm256_loadu_ps(row + 8));
        }
        if (e->bias) {
            __m256 b = _mm256_set1_ps(e->bias[r]);
            acc[r][0] = _mm256_add_ps(acc[r][0], b);
            acc[r][1] = _mm256_add_ps(acc[r][1], b);
        }
        if (e->act == CK_ACT_RELU) {
            acc[r][0] = _mm256_max_ps(acc[r][0], zero);
            acc[r][1] = _mm256_max_ps(acc[r][1], zero);
        } else if (e->act == CK_ACT_CLIP) {
            acc[r][0] = _mm256_min_ps(_mm256_max_ps(acc[r][0], lo), hi);
            acc[r][1] = _mm256_min_ps(_mm256_max_ps(acc[r][1], lo), hi);
        }
        _mm256_storeu_ps(row, acc[r][0]);
        _mm256_storeu_ps(row + 8, acc[r][1]);
        if (e->act == CK_ACT_SILU) for (int q = 0; q < NR256; q++) row[q] = ck_silu1(row[q]);
    }
}

// Stores a tile of sums with the epilogue: a whole tile from the registers, an edge tile
// (e->rows x e->cols) through a scratch tile and its corner only, as the AVX-512 kernel's
// masked stores do.
__attribute__((target("avx2,fma"), always_inline))
static inline void finish_avx2(__m256 acc[MR256][2], float *c, int ldc, const ck_epilogue *e) {
    const int rows = e->rows ? e->rows : MR256, cols = e->cols ? e->cols : NR256;
    if (rows == MR256 && cols == NR256) {
        store_avx2(acc, c, ldc, e);
        return;
    }
    float tile[MR256 * NR256];
    for (int r = 0; r < MR256; r++) {
        _mm256_storeu_ps(tile + r * NR256, acc[r][0]);
        _mm256_storeu_ps(tile + r * NR256 + 8, acc[r][1]);
    }
    store_edge(tile, NR256, c, ldc, rows, cols, e);
}

__attribute__((target("avx2,fma")))
static void kernel_avx2(int kc, const float *ap, const float *bp, float *c, int ldc, const ck_epilogue *e) {
    __m256 acc[MR256][2];
    const __m256i none = _mm256_setzero_si256();
    sums_avx2(kc, ap, bp, NR256, 0, 0, none, none, acc);
    finish_avx2(acc, c, ldc, e);
}

__attribute__((target("avx2,fma")))
void ck_kernel_avx2_unpacked(int kc, const float *ap, const float *b, int ldb, float *c, int ldc, const ck_epilogue *e) {
    const int cols = e->cols ? e->cols : NR256;
    const int b_ahead = kc >= B_AHEAD_FROM_DEPTH;
    __m256 acc[MR256][2];
    if (cols == NR256) {
        const __m256i all = _mm256_set1_epi32(-1);
        sums_avx2(kc, ap, b, ldb, b_ahead, 0, all, all, acc);
    } else {
        sums_avx2(kc, ap, b, ldb, b_ahead, 1, ck_lane_mask256(0, cols), ck_lane_mask256(0, cols - 8), acc);
    }
    finish_avx2(acc, c, ldc, e);
}

static int detected_level(void) {
    static int level = -1;
    if (level < 0) {
        __builtin_cpu_init();
        level = __builtin_cpu_supports("avx512f") ? 2 : (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) ? 1 : 0;
    }
    return level;
}

int ck_cpu_level(void) { return detected_level(); }

int ck_tile(int level, int *mr, int *nr, ck_kernel_fn *kernel) {
    if (level == 2) { *mr = MR512; *nr = NR512; *kernel = kernel_avx512; return 1; }
    if (level == 1) { *mr = MR256; *nr = NR256; *kernel = kernel_avx2; return 1; }
    return 0;
}

int ck_tile_rows(int level) {
    int mr, nr;
    ck_kernel_fn kernel;
    return ck_tile(level, &mr, &nr, &kernel) ? mr : 0;
}

static _Atomic int scratch_fails; // ck_fail_scratch_for_tests

void ck_fail_scratch_for_tests(int on) { scratch_fails = on; }

float *ck_scratch(int slot, size_t count) {
    static __thread float *buffers[3];
    static __thread size_t capacity[3];
    if (scratch_fails) return NULL;
    if (capacity[slot] < count) {
        free(buffers[slot]);
        size_t bytes = ((sizeof(float) * count + 63) / 64) * 64;
        buffers[slot] = aligned_alloc(64, bytes);
        capacity[slot] = buffers[slot] ? count : 0;
    }
    return buffers[slot];
}

// Packs rows [i0, i0+mc) x depth [p0, p0+kc) of op(A), times alpha, into MR-tall panels,
// k-major; rows past mc are zero.
static void pack_a(int trans, int i0, int p0, int mc, int kc, float alpha, const float *a, int lda, float *ap, int mr) {
    for (int i = 0; i < mc; i += mr) {
        int rows = mc - i < mr ? mc - i : mr;
        for (int p = 0; p < kc; p++) {
            for (int r = 0; r < rows; r++) {
                size_t row = (size_t)(i0 + i + r), col = (size_t)(p0 + p);
                ap[r] = alpha * (trans ? a[col * lda + row] : a[row * lda + col]);
            }
            for (int r = rows; r < mr; r++) ap[r] = 0;
            ap += mr;
        }
    }
}

// Packs depth [p0, p0+kc) x columns [j0, j0+nc) of op(B) into NR-wide panels, k-major;
// columns past nc are zero.
static void pack_b(int trans, int p0, int j0, int kc, int nc, const float *b, int ldb, float *bp, int nr) {
    for (int j = 0; j < nc; j += nr) {
        int cols = nc - j < nr ? nc - j : nr;
        for (int p = 0; p < kc; p++) {
            if (trans) {
                for (int q = 0; q < cols; q++) bp[q] = b[(size_t)(j0 + j + q) * ldb + p0 + p];
                for (int q = cols; q < nr; q++) bp[q] = 0;
                bp += nr;
                continue;
            }
            const float *src = b + (size_t)(p0 + p) * ldb + j0 + j;
            if (cols == nr) {
                memcpy(bp, src, sizeof(float) * nr);
            } else {
                memcpy(bp, src, sizeof(float) * cols);
                memset(bp + cols, 0, sizeof(float) * (nr - cols));
            }
            bp += nr;
        }
    }
}

int ck_sgemm(int level, int transA, int transB, int m0, int m1, int n0, int n1, int k, float alpha,
             const float *a, int lda, const float *b, int ldb,
             float beta, float *c, int ldc) {
    int mr, nr;
    ck_kernel_fn kernel;
    if (level > ck_cpu_level() || !ck_tile(level, &mr, &nr, &kernel)) return -1;
    const int m = m1 - m0, n = n1 - n0;
    if (m <= 0 || n <= 0) return 0;
    if (k <= 0 || (beta != 0.0f && beta != 1.0f)) {
        // The kernels add C only with weight 1: scale it first (and alone when k is 0).
        for (int i = m0; i < m1; i++) for (int j = n0; j < n1; j++) c[(size_t)i * ldc + j] = beta == 0.0f ? 0.0f : beta * c[(size_t)i * ldc + j];
        if (k <= 0) return 0;
        if (beta != 0.0f) beta = 1.0f;
    }
    const int ncmax = n < NC ? n : NC, mcmax = m < MC ? m : MC;
    float *bp = ck_scratch(0, (size_t)KC * (((ncmax + nr - 1) / nr) * nr));
    float *ap = ck_scratch(1, (size_t)KC * (((mcmax + mr - 1) / mr) * mr));
    if (!bp || !ap) return -1;
    for (int jc = n0; jc < n1; jc += NC) {
        int nc = n1 - jc < NC ? n1 - jc : NC;
        for (int pc = 0; pc < k; pc += KC) {
            int kc = k - pc < KC ? k - pc : KC;
            const ck_epilogue ep = { .accumulate = pc > 0 || beta != 0.0f };
            pack_b(transB, pc, jc, kc, nc, b, ldb, bp, nr);
            for (int ic = m0; ic < m1; ic += MC) {
                int mc = m1 - ic < MC ? m1 - ic : MC;
                pack_a(transA, ic, pc, mc, kc, alpha, a, lda, ap, mr);
                for (int jr = 0; jr < nc; jr += nr) {
                    int cols = nc - jr < nr ? nc - jr : nr;
                    for (int ir = 0; ir < mc; ir += mr) {
                        int rows = mc - ir < mr ? mc - ir : mr;
                        float *cij = c + (size_t)(ic + ir) * ldc + jc + jr;
                        const float *apanel = ap + (size_t)ir * kc, *bpanel = bp + (size_t)jr * kc;
                        ck_epilogue e = ep;
                        e.rows = rows;
                        e.cols = cols;
                        kernel(kc, apanel, bpanel, cij, ldc, &e);
                    }
                }
            }
        }
    }
    return 0;
}

// --- Matrix-vector products (a batch of one through a fully connected layer) ---------------
// Memory-bound: each element of B is read once, so the loops only need to keep enough loads in
// flight. trans: B is (n, k) and y_j = dot(B_j, x), four rows at a time against one vector of
// x; otherwise B is (k, n) and y accumulates x_p * B_p over rows, 128 columns at a time.
__attribute__((target("avx512f")))
static void sgemv_avx512(int trans, int n0, int n1, int k, float alpha, const float *b, int ldb, const float *x,
                         float beta, float *y) {
    if (trans) {
        int j = n0;
        for (; j + 4 <= n1; j += 4) {
            const float *r0 = b + (size_t)j * ldb, *r1 = r0 + ldb, *r2 = r1 + ldb, *r3 = r2 + ldb;
            __m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
            for (int p = 0; p < k; p += 16) {
                const __mmask16 m = (__mmask16)ck_bit_range(0, k - p, 16);
                const __m512 xv = _mm512_maskz_loadu_ps(m, x + p);
                a0 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, r0 + p), xv, a0);
                a1 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, r1 + p), xv, a1);
                a2 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, r2 + p), xv, a2);
                a3 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, r3 + p), xv, a3);
            }
            const float d[4] = { _mm512_reduce_add_ps(a0), _mm512_reduce_add_ps(a1), _mm512_reduce_add_ps(a2), _mm512_reduce_add_ps(a3) };
            for (int q = 0; q < 4; q++) y[j + q] = alpha * d[q] + (beta == 0.0f ? 0.0f : beta * y[j + q]);
        }
        for (; j < n1; j++) {
            const float *r = b + (size_t)j * ldb;
            __m512 a = _mm512_setzero_ps();
            for (int p = 0; p < k; p += 16) {
                const __mmask16 m = (__mmask16)ck_bit_range(0, k - p, 16);
                a = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, r + p), _mm512_maskz_loadu_ps(m, x + p), a);
            }
            y[j] = alpha * _mm512_reduce_add_ps(a) + (beta == 0.0f ? 0.0f : beta * y[j]);
        }
        return;
    }
    enum { W = 8 }; // vectors of columns per block
    for (int j = n0; j < n1; j += 16 * W) {
        __m512 acc[W];
        __mmask16 mask[W];
        for (int v = 0; v < W; v++) {
            acc[v] = _mm512_setzero_ps();
            mask[v] = (__mmask16)ck_bit_range(0, n1 - j - 16 * v, 16);
        }
        for (int p = 0; p < k; p++) {
            const __m512 xv = _mm512_set1_ps(x[p]);
            const float *row = b + (size_t)p * ldb + j;
            for (int v = 0; v < W; v++) acc[v] = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(mask[v], row + 16 * v), xv, acc[v]);
        }
        const __m512 va = _mm512_set1_ps(alpha), vb = _mm512_set1_ps(beta);
        for (int v = 0; v < W; v++) {
            if (!mask[v]) break;
            __m512 r = _mm512_mul_ps(acc[v], va);
            if (beta != 0.0f) r = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(mask[v], y + j + 16 * v), vb, r);
            _mm512_mask_storeu_ps(y + j + 16 * v, mask[v], r);
        }
    }
}

int ck_sgemv(int level, int trans, int n0, int n1, int k, float alpha, const float *b, int ldb, const float *x, float beta,
             float *y) {
    if (level < 2 || ck_cpu_level() < 2) return -1;
    if (n1 > n0) sgemv_avx512(trans, n0, n1, k, alpha, b, ldb, x, beta, y);
    return 0;
}
