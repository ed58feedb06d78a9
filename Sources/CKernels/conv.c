// 2-D convolution as an implicit GEMM: Y (M, OH*OW) = W (M, C*kh*kw) * im2col(X), where the
// im2col matrix is never stored. Its KC x NR panels are packed straight from the image (the
// approach of "Anatomy of high-performance deep learning convolutions on SIMD architectures",
// Georganas et al., SC 2018, and of BLIS-based convolution: pack B from the input), the weights
// are packed once at load time, and the bias and activation are applied in the kernel's store
// (the epilogue), so each output element is written once per depth block.
//
// Depthwise convolutions (one filter per channel) have no reuse to exploit in a GEMM; they run
// as a direct loop over taps, vectorised along output rows.
#include "CKernels.h"
#include "microkernel.h"
#include <immintrin.h>
#include <string.h>

/// Columns of B packed per block: KC x NCB floats (384 KB) stay in L2.
enum { NCB = 384 };

size_t ck_packed_weights_count(int level, int m, int k) {
    int mr, nr;
    ck_kernel_fn kernel;
    if (!ck_tile(level, &mr, &nr, &kernel)) return 0;
    return (size_t)((m + mr - 1) / mr) * mr * (size_t)k;
}

// Block pc (depth rows [pc, pc+kc)) starts at pc * mpad; its panel of rows [ir, ir+MR) at + ir * kc.
void ck_pack_weights(int level, int m, int k, const float *a, float *out) {
    int mr, nr;
    ck_kernel_fn kernel;
    if (!ck_tile(level, &mr, &nr, &kernel)) return;
    for (int pc = 0; pc < k; pc += KC) {
        int kc = k - pc < KC ? k - pc : KC;
        for (int ir = 0; ir < m; ir += mr) {
            for (int p = 0; p < kc; p++) {
                for (int r = 0; r < mr; r++) *out++ = ir + r < m ? a[(size_t)(ir + r) * k + pc + p] : 0.0f;
            }
        }
    }
}

// Packs depth rows [p0, p0+kc) x output columns [j0, j0+nc) of im2col(x) into NR-wide panels,
// k-major; taps in the padding and columns past nc are zero. A depth row is one (channel, ki, kj)
// tap; a panel's columns run along output rows, so each output row they touch is one segment
// whose in-bounds part is a strided (at stride 1 contiguous) run of the input row.
static void pack_b_conv(const ck_conv_geometry *g, const float *x, int p0, int kc, int j0, int nc, float *bp, int nr) {
    const int taps = g->kh * g->kw;
    for (int j = 0; j < nc; j += nr) {
        const int cols = nc - j < nr ? nc - j : nr;
        const int col0 = j0 + j;
        for (int p = 0; p < kc; p++, bp += nr) {
            const int row = p0 + p, ch = row / taps, t = row % taps, ki = t / g->kw, kj = t % g->kw;
            const float *xc = x + (size_t)ch * g->h * g->w;
            const int offy = ki * g->dh - g->pt, offx = kj * g->dw - g->pl;
            // Output columns ox with 0 <= ox*sw + offx < w.
            int lo = (-offx + g->sw - 1) / g->sw;
            if (-offx + g->sw - 1 < 0) lo = 0;
            int hi = g->w - offx <= 0 ? 0 : (g->w - offx + g->sw - 1) / g->sw;
            if (hi > g->ow) hi = g->ow;
            if (lo > hi) lo = hi;
            int oy = col0 / g->ow, ox = col0 % g->ow, q = 0;
            while (q < cols) {
                const int seg = cols - q < g->ow - ox ? cols - q : g->ow - ox;
                float *dst = bp + q - ox; // dst[ox'] for ox' in [ox, ox+seg)
                const int iy = oy * g->sh + offy;
                if (iy < 0 || iy >= g->h) {
                    memset(bp + q, 0, sizeof(float) * seg);
                } else {
                    const int a = ox > lo ? ox : lo, b = ox + seg < hi ? ox + seg : hi;
                    const float *xrow = xc + (size_t)iy * g->w + offx;
                    if (a >= b) {
                        memset(bp + q, 0, sizeof(float) * seg);
                    } else {
                        if (a > ox) memset(dst + ox, 0, sizeof(float) * (a - ox));
                        if (g->sw == 1) memcpy(dst + a, xrow + a, sizeof(float) * (b - a));
                        else for (int o = a; o < b; o++) dst[o] = xrow[o * g->sw];
                        if (b < ox + seg) memset(dst + b, 0, sizeof(float) * (ox + seg - b));
                    }
                }
                q += seg;
                ox = 0;
                oy++;
            }
            if (cols < nr) memset(bp + cols, 0, sizeof(float) * (nr - cols));
        }
    }
}

// The same packing for the AVX-512 kernel (NR = 32): each output-row segment of a panel fills
// its lanes with one masked load (stride 1) or masked gather (other strides) per 16 lanes; lanes
// outside the segment or in the padding keep zero. Masked-off lanes are never read, so the
// pointer may lie outside the image for them.
__attribute__((target("avx512f")))
static void pack_b_conv_avx512(const ck_conv_geometry *g, const float *x, int p0, int kc, int j0, int nc, float *bp) {
    const int taps = g->kh * g->kw, sw = g->sw;
    const __m512i lane = _mm512_set_epi32(15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0);
    const __m512i stride = _mm512_mullo_epi32(lane, _mm512_set1_epi32(sw));
    const __m512i stride16 = _mm512_add_epi32(stride, _mm512_set1_epi32(16 * sw));
    for (int j = 0; j < nc; j += NR512) {
        const int cols = nc - j < NR512 ? nc - j : NR512;
        const int col0 = j0 + j;
        for (int p = 0; p < kc; p++, bp += NR512) {
            const int row = p0 + p, ch = row / taps, t = row % taps, ki = t / g->kw, kj = t % g->kw;
            const float *xc = x + (size_t)ch * g->h * g->w;
            const int offy = ki * g->dh - g->pt, offx = kj * g->dw - g->pl;
            int lo = (-offx + sw - 1) / sw;
            if (-offx + sw - 1 < 0) lo = 0;
            int hi = g->w - offx <= 0 ? 0 : (g->w - offx + sw - 1) / sw;
            if (hi > g->ow) hi = g->ow;
            __m512 v0 = _mm512_setzero_ps(), v1 = _mm512_setzero_ps();
            int oy = col0 / g->ow, ox = col0 % g->ow, q = 0;
            while (q < cols) {
                const int seg = cols - q < g->ow - ox ? cols - q : g->ow - ox;
                const int iy = oy * g->sh + offy;
                const int a = ox > lo ? ox : lo, b = ox + seg < hi ? ox + seg : hi;
                if (iy >= 0 && iy < g->h && a < b) {
                    // Lane l (l in [q + a - ox, q + b - ox)) reads input column (ox + l - q)*sw + offx.
                    const unsigned long long bits = ((1ULL << (b - a)) - 1) << (q + a - ox);
                    const __mmask16 m0 = (__mmask16)bits, m1 = (__mmask16)(bits >> 16);
                    const float *src = xc + (size_t)iy * g->w + offx + (ptrdiff_t)(ox - q) * sw;
                    if (sw == 1) {
                        if (m0) v0 = _mm512_mask_loadu_ps(v0, m0, src);
                        if (m1) v1 = _mm512_mask_loadu_ps(v1, m1, src + 16);
                    } else {
                        if (m0) v0 = _mm512_mask_i32gather_ps(v0, m0, stride, src, 4);
                        if (m1) v1 = _mm512_mask_i32gather_ps(v1, m1, stride16, src, 4);
                    }
                }
                q += seg;
                ox = 0;
                oy++;
            }
            _mm512_store_ps(bp, v0);
            _mm512_store_ps(bp + 16, v1);
        }
    }
}

int ck_conv(int level, const float *packed, int m, const ck_conv_geometry *g, const float *x,
            int n0, int n1, const float *bias, int act, float lo, float hi, float *y, int ldy) {
    int mr, nr;
    ck_kernel_fn kernel;
    if (!ck_tile(level, &mr, &nr, &kernel)) return -1;
    const int k = g->c * g->kh * g->kw, mpad = ((m + mr - 1) / mr) * mr;
    float *bp = ck_scratch(0, (size_t)KC * NCB);
    if (!bp) return -1;
    float tile[MR512 * NR512], bias_tile[MR512];
    for (int jc = n0; jc < n1; jc += NCB) {
        const int nc = n1 - jc < NCB ? n1 - jc : NCB;
        for (int pc = 0; pc < k; pc += KC) {
            const int kc = k - pc < KC ? k - pc : KC;
            const int first = pc == 0, last = pc + kc >= k;
            if (nr == NR512) pack_b_conv_avx512(g, x, pc, kc, jc, nc, bp);
            else pack_b_conv(g, x, pc, kc, jc, nc, bp, nr);
            const float *ablock = packed + (size_t)pc * mpad;
            for (int jr = 0; jr < nc; jr += nr) {
                const int cols = nc - jr < nr ? nc - jr : nr;
                const float *bpanel = bp + (size_t)jr * kc;
                for (int ir = 0; ir < m; ir += mr) {
                    const int rows = m - ir < mr ? m - ir : mr;
                    float *cij = y + (size_t)ir * ldy + jc + jr;
                    ck_epilogue ep = { .accumulate = !first, .bias = NULL, .act = last ? act : CK_ACT_NONE, .lo = lo, .hi = hi };
                    if (first && bias) {
                        if (rows == mr) {
                            ep.bias = bias + ir;
                        } else {
                            // The kernel reads MR bias entries: pad the last panel's.
                            for (int r = 0; r < mr; r++) bias_tile[r] = r < rows ? bias[ir + r] : 0.0f;
                            ep.bias = bias_tile;
                        }
                    }
                    if (rows == mr && cols == nr) {
                        kernel(kc, ablock + (size_t)ir * kc, bpanel, cij, ldy, &ep);
                    } else {
                        const ck_epilogue none = { 0 };
                        kernel(kc, ablock + (size_t)ir * kc, bpanel, tile, nr, &none);
                        ck_store_edge(tile, nr, cij, ldy, rows, cols, &ep);
                    }
                }
            }
        }
    }
    return 0;
}

// Lanes [a, b) of a 16-lane mask (empty when a >= b); a and b are clamped to [0, 16].
static inline unsigned lane_range(int a, int b) {
    if (a < 0) a = 0;
    if (b > 16) b = 16;
    return a >= b ? 0u : ((b == 16 ? 0xFFFFu : ((1u << b) - 1u)) & ~((1u << a) - 1u));
}

// The depthwise loop with AVX-512: 16 output columns per vector, one masked load per tap at
// stride 1, two masked loads and an even-lane permute at stride 2, a masked gather otherwise.
// Lanes whose input column lies in the padding are masked off and read as zero.
__attribute__((target("avx512f")))
static void depthwise_avx512(const ck_conv_geometry *g, const float *x, const float *w, float bias,
                             int act, float lo, float hi, float *y) {
    const int sw = g->sw;
    const __m512i lane = _mm512_set_epi32(15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0);
    const __m512i even = _mm512_add_epi32(lane, lane);
    const __m512i strided = _mm512_mullo_epi32(lane, _mm512_set1_epi32(sw));
    const __m512 zero = _mm512_setzero_ps(), vlo = _mm512_set1_ps(lo), vhi = _mm512_set1_ps(hi);
    for (int oy = 0; oy < g->oh; oy++) {
        float *yrow = y + (size_t)oy * g->ow;
        for (int ox0 = 0; ox0 < g->ow; ox0 += 16) {
            const __mmask16 store = (__mmask16)lane_range(0, g->ow - ox0);
            __m512 acc = _mm512_set1_ps(bias);
            for (int ki = 0; ki < g->kh; ki++) {
                const int iy = oy * g->sh - g->pt + ki * g->dh;
                if (iy < 0 || iy >= g->h) continue;
                const float *xrow = x + (size_t)iy * g->w;
                for (int kj = 0; kj < g->kw; kj++) {
                    const __m512 wv = _mm512_set1_ps(w[ki * g->kw + kj]);
                    const int start = ox0 * sw + kj * g->dw - g->pl; // input column of lane 0
                    __m512 v;
                    if (sw == 1) {
                        v = _mm512_maskz_loadu_ps((__mmask16)lane_range(-start, g->w - start), xrow + start);
                    } else if (sw == 2) {
                        const __m512 v0 = _mm512_maskz_loadu_ps((__mmask16)lane_range(-start, g->w - start), xrow + start);
                        const __m512 v1 = _mm512_maskz_loadu_ps((__mmask16)lane_range(-start - 16, g->w - start - 16), xrow + start + 16);
                        v = _mm512_permutex2var_ps(v0, even, v1);
                    } else {
                        const __m512i ix = _mm512_add_epi32(strided, _mm512_set1_epi32(start));
                        const __mmask16 inside = _mm512_cmpge_epi32_mask(ix, _mm512_setzero_si512())
                            & _mm512_cmplt_epi32_mask(ix, _mm512_set1_epi32(g->w));
                        v = _mm512_mask_i32gather_ps(zero, inside, ix, xrow, 4);
                    }
                    acc = _mm512_fmadd_ps(wv, v, acc);
                }
            }
            if (act == CK_ACT_RELU) acc = _mm512_max_ps(acc, zero);
            else if (act == CK_ACT_CLIP) acc = _mm512_min_ps(_mm512_max_ps(acc, vlo), vhi);
            _mm512_mask_storeu_ps(yrow + ox0, store, acc);
        }
    }
}

void ck_depthwise(const ck_conv_geometry *g, const float *x, const float *w, float bias,
                  int act, float lo, float hi, float *y) {
    if (ck_sgemm_level() >= 2) {
        depthwise_avx512(g, x, w, bias, act, lo, hi, y);
        return;
    }
    const int sw = g->sw;
    for (int oy = 0; oy < g->oh; oy++) {
        float *yrow = y + (size_t)oy * g->ow;
        for (int ox = 0; ox < g->ow; ox++) yrow[ox] = bias;
        for (int ki = 0; ki < g->kh; ki++) {
            const int iy = oy * g->sh - g->pt + ki * g->dh;
            if (iy < 0 || iy >= g->h) continue;
            for (int kj = 0; kj < g->kw; kj++) {
                const float wv = w[ki * g->kw + kj];
                const int offx = kj * g->dw - g->pl;
                int a = (-offx + sw - 1) / sw;
                if (-offx + sw - 1 < 0) a = 0;
                int b = g->w - offx <= 0 ? 0 : (g->w - offx + sw - 1) / sw;
                if (b > g->ow) b = g->ow;
                const float *xrow = x + (size_t)iy * g->w + offx;
                if (sw == 1) {
                    for (int ox = a; ox < b; ox++) yrow[ox] += wv * xrow[ox];
                } else {
                    for (int ox = a; ox < b; ox++) yrow[ox] += wv * xrow[ox * sw];
                }
            }
        }
        if (act == CK_ACT_RELU) {
            for (int ox = 0; ox < g->ow; ox++) yrow[ox] = yrow[ox] > 0 ? yrow[ox] : 0.0f;
        } else if (act == CK_ACT_CLIP) {
            for (int ox = 0; ox < g->ow; ox++) yrow[ox] = yrow[ox] < lo ? lo : (yrow[ox] > hi ? hi : yrow[ox]);
        }
    }
}
