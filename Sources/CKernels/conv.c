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
#include <stdint.h>
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
// its lanes with one masked load (stride 1), two masked loads and an even-lane permute (stride
// 2) or a masked gather (other strides) per 16 lanes; lanes
// outside the segment or in the padding keep zero. Masked-off lanes are never read, so the
// pointer may lie outside the image for them.
// Bit i of x moved to bit 2i (i < 32).
static inline unsigned long long spread_even(unsigned x32) {
    unsigned long long x = x32;
    x = (x | x << 16) & 0x0000FFFF0000FFFFULL;
    x = (x | x << 8) & 0x00FF00FF00FF00FFULL;
    x = (x | x << 4) & 0x0F0F0F0F0F0F0F0FULL;
    x = (x | x << 2) & 0x3333333333333333ULL;
    x = (x | x << 1) & 0x5555555555555555ULL;
    return x;
}

// Kernel columns whose lane masks pack_b_conv_avx512 precomputes per panel (wider kernels
// compute the rest per row).
enum { MASK_KW = 11 };

__attribute__((target("avx512f")))
static void pack_b_conv_avx512(const ck_conv_geometry *g, const float *x, int p0, int kc, int j0, int nc, float *bp) {
    const int sw = g->sw;
    const __m512i lane = _mm512_set_epi32(15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0);
    const __m512i stride = _mm512_mullo_epi32(lane, _mm512_set1_epi32(sw));
    const __m512i stride16 = _mm512_add_epi32(stride, _mm512_set1_epi32(16 * sw));
    const __m512i even = _mm512_add_epi32(lane, lane);
    // The tap of depth row p0 (channel, kernel row, kernel column), advanced row by row below:
    // no divisions in the loops.
    const int taps = g->kh * g->kw;
    const int ch0 = p0 / taps, ki0 = (p0 % taps) / g->kw, kj0 = (p0 % taps) % g->kw;
    for (int j = 0; j < nc; j += NR512) {
        const int cols = nc - j < NR512 ? nc - j : NR512;
        // The panel's output-row segments: lanes [q, q + len) are output row oy, columns ox.. .
        int seg_q[NR512], seg_len[NR512], seg_ox[NR512], seg_oy[NR512], segments = 0;
        {
            const int col0 = j0 + j;
            int oy = col0 / g->ow, ox = col0 % g->ow, q = 0;
            while (q < cols) {
                const int len = cols - q < g->ow - ox ? cols - q : g->ow - ox;
                seg_q[segments] = q; seg_len[segments] = len; seg_ox[segments] = ox; seg_oy[segments] = oy;
                segments++;
                q += len;
                ox = 0;
                oy++;
            }
        }
        // Per kernel column kj and segment: the lanes whose input column lies in the row (the
        // same for every channel and kernel row), and at stride 2 the positions they read.
        // Computed once per panel, so the rows below only test the input row and load.
        const int kjs = g->kw < MASK_KW ? g->kw : MASK_KW;
        unsigned long long lanes[MASK_KW][NR512], reads[MASK_KW][NR512];
        for (int c = 0; c < kjs; c++) {
            const int offx = c * g->dw - g->pl;
            int lo = (-offx + sw - 1) / sw;
            if (-offx + sw - 1 < 0) lo = 0;
            int hi = g->w - offx <= 0 ? 0 : (g->w - offx + sw - 1) / sw;
            if (hi > g->ow) hi = g->ow;
            for (int t = 0; t < segments; t++) {
                const int ox = seg_ox[t];
                const int a = ox > lo ? ox : lo, b = ox + seg_len[t] < hi ? ox + seg_len[t] : hi;
                lanes[c][t] = ck_bit_range(seg_q[t] + a - ox, seg_q[t] + b - ox, NR512);
                reads[c][t] = sw == 2 ? spread_even((unsigned)lanes[c][t]) : 0;
            }
        }
        int ch = ch0, ki = ki0, kj = kj0;
        for (int p = 0; p < kc; p++, bp += NR512) {
            const float *xc = x + (size_t)ch * g->h * g->w;
            const int offy = ki * g->dh - g->pt, offx = kj * g->dw - g->pl;
            __m512 v0 = _mm512_setzero_ps(), v1 = _mm512_setzero_ps();
            for (int t = 0; t < segments; t++) {
                const int q = seg_q[t], ox = seg_ox[t];
                const int iy = seg_oy[t] * g->sh + offy;
                if (iy < 0 || iy >= g->h) continue;
                unsigned long long bits, pos;
                if (kj < MASK_KW) {
                    bits = lanes[kj][t];
                    pos = reads[kj][t];
                } else {
                    // Output columns ox with 0 <= ox*sw + offx < w.
                    int lo = (-offx + sw - 1) / sw;
                    if (-offx + sw - 1 < 0) lo = 0;
                    int hi = g->w - offx <= 0 ? 0 : (g->w - offx + sw - 1) / sw;
                    if (hi > g->ow) hi = g->ow;
                    const int a = ox > lo ? ox : lo, b = ox + seg_len[t] < hi ? ox + seg_len[t] : hi;
                    bits = ck_bit_range(q + a - ox, q + b - ox, NR512);
                    pos = sw == 2 ? spread_even((unsigned)bits) : 0;
                }
                if (!bits) continue;
                // Lane l (a lane of `bits`) reads input column (ox + l - q)*sw + offx.
                const __mmask16 m0 = (__mmask16)bits, m1 = (__mmask16)(bits >> 16);
                const float *src = xc + (size_t)iy * g->w + offx + (ptrdiff_t)(ox - q) * sw;
                if (sw == 1) {
                    if (m0) v0 = _mm512_mask_loadu_ps(v0, m0, src);
                    if (m1) v1 = _mm512_mask_loadu_ps(v1, m1, src + 16);
                } else if (sw == 2) {
                    // Lane l reads src[2l]: the even positions of 64 floats, two masked loads and a
                    // permute per 16 lanes (the positions read are the lanes' bits spread to even bits).
                    if (m0) v0 = _mm512_mask_mov_ps(v0, m0, _mm512_permutex2var_ps(
                        _mm512_maskz_loadu_ps((__mmask16)pos, src), even, _mm512_maskz_loadu_ps((__mmask16)(pos >> 16), src + 16)));
                    if (m1) v1 = _mm512_mask_mov_ps(v1, m1, _mm512_permutex2var_ps(
                        _mm512_maskz_loadu_ps((__mmask16)(pos >> 32), src + 32), even, _mm512_maskz_loadu_ps((__mmask16)(pos >> 48), src + 48)));
                } else {
                    if (m0) v0 = _mm512_mask_i32gather_ps(v0, m0, stride, src, 4);
                    if (m1) v1 = _mm512_mask_i32gather_ps(v1, m1, stride16, src, 4);
                }
            }
            _mm512_store_ps(bp, v0);
            _mm512_store_ps(bp + 16, v1);
            if (++kj == g->kw) { kj = 0; if (++ki == g->kh) { ki = 0; ch++; } }
        }
    }
}

// A 1x1 convolution at stride 1 without padding: the input (C, H*W) already is the im2col
// matrix, so the kernel reads its panels in place (row stride H*W) instead of packing them.
// Columns in blocks of NCB and depth in blocks of KC as in ck_conv's packed path; within a
// block, the output is written one 8-row panel at a time, left to right (MobileNetV2's 16 -> 96
// expansion on 112x112 took half the time so, against tile by tile down the rows).
static void pointwise_columns_avx512(const float *packed, int mpad, int k, int m0, int m1, const float *x, int plane,
                                     int n0, int n1, const float *bias, int add_output, int act, float lo, float hi,
                                     float *y, int ldy) {
    for (int jc = n0; jc < n1; jc += NCB) {
        const int nc = n1 - jc < NCB ? n1 - jc : NCB;
        for (int pc = 0; pc < k; pc += KC) {
            const int kc = k - pc < KC ? k - pc : KC;
            const int first = pc == 0, last = pc + kc >= k;
            const float *ablock = packed + (size_t)pc * mpad;
            for (int ir = m0 - m0 % MR512; ir < m1; ir += MR512) {
                for (int jr = 0; jr < nc; jr += NR512) {
                    const int cols = nc - jr < NR512 ? nc - jr : NR512;
                    const float *bpanel = x + (size_t)pc * plane + jc + jr;
                    ck_epilogue ep = { .accumulate = !first || add_output, .bias = first && bias ? bias + ir : NULL,
                                       .act = last ? act : CK_ACT_NONE, .lo = lo, .hi = hi,
                                       .rows = m1 - ir < MR512 ? m1 - ir : MR512, .cols = cols };
                    ck_kernel_avx512_unpacked(kc, ablock + (size_t)ir * kc, bpanel, plane, y + (size_t)ir * ldy + jc + jr, ldy, &ep);
                }
            }
        }
    }
}

// The tiles read the input rows 16 floats at a time, and a load across two cache lines costs
// two: where every depth row starts at the same offset in its line (plane % 16 == 0), the
// columns up to the first 64-byte boundary of x + n0 run first as one narrow tile, and the
// tiles after it start on line boundaries. (Activations are Swift arrays, whose elements start
// 16 or 48 bytes into a line.) Each output's sum is the same either way. Alone on one thread,
// with x 16 bytes into a line against aligned: 24 x 144 x 3136 took 1.22x the time, 32 x 192 x
// 784 1.07x, 192 x 32 x 784 1.09x.
static void conv_pointwise_avx512(const float *packed, int mpad, int k, int m0, int m1, const float *x, int plane,
                                  int n0, int n1, const float *bias, int add_output, int act, float lo, float hi,
                                  float *y, int ldy) {
    int head = 0;
    if (plane % 16 == 0) {
        head = (int)((16 - ((uintptr_t)(x + n0) / sizeof(float)) % 16) % 16);
        if (head > n1 - n0) head = n1 - n0;
    }
    if (head > 0)
        pointwise_columns_avx512(packed, mpad, k, m0, m1, x, plane, n0, n0 + head, bias, add_output, act, lo, hi, y, ldy);
    pointwise_columns_avx512(packed, mpad, k, m0, m1, x, plane, n0 + head, n1, bias, add_output, act, lo, hi, y, ldy);
}

// --- 1x1 convolutions on small planes: output channels along the vector -----------------------
// Y^T (pixels, M) = X^T (pixels, K) W^T (K, M), with the same 8 x 32 register tile as the GEMM
// but 8 pixels by 32 output channels: the 8 pixels of a depth row are contiguous in the input
// (broadcast straight from it, no packing) and the weights are packed as W^T in 32-channel
// panels. On a 7x7 plane the pixel-major tile fills 49 of 64 lanes (32 + 17); this one fills 49
// of 56 rows, and every channel panel of a multiple of 32 fully. The tile is stored transposed.

size_t ck_channel_panels_count(int m, int k) { return (size_t)((m + 31) / 32) * 32 * (size_t)k; }

void ck_pack_channel_panels(int m, int k, const float *w, float *out) {
    for (int c0 = 0; c0 < m; c0 += 32) {
        for (int p = 0; p < k; p++) {
            for (int c = 0; c < 32; c++) *out++ = c0 + c < m ? w[(size_t)(c0 + c) * k + p] : 0.0f;
        }
    }
}

// Adds the bias to an 8-pixel x 32-channel tile of sums and stores it transposed: channel c's
// pixels go to out + c * ldc (rows <= 8 of them, cols <= 32 channels), with the residual
// already there added when add_output, then the activation.
__attribute__((target("avx512f"), always_inline))
static inline void channel_tile_store(__m512 acc[8][2], int rows, int cols, const float *bias, int add_output, int act,
                                      float lo, float hi, float *out, int ldc) {
    // The bias runs along the vector here: add it before transposing.
    if (bias) {
        const __m512 bb0 = _mm512_maskz_loadu_ps((__mmask16)ck_bit_range(0, cols, 16), bias);
        const __m512 bb1 = _mm512_maskz_loadu_ps((__mmask16)(ck_bit_range(16, cols, 32) >> 16), bias + 16);
        for (int r = 0; r < 8; r++) { acc[r][0] = _mm512_add_ps(acc[r][0], bb0); acc[r][1] = _mm512_add_ps(acc[r][1], bb1); }
    }
    // Transposed in registers, 16 channels at a time: unpack and shuffle within 128-bit lanes
    // give each lane's 4 channels x 4 pixels, a two-source permute joins pixels 0-3 and 4-7.
    // Each result holds two channels' 8 pixels (lanes 0-7 and 8-15); a masked store writes
    // each half to its own row of y, the upper one from 8 floats before its start (lanes
    // masked off are never touched).
    const __m512i lo_lanes = _mm512_setr_epi32(0, 1, 2, 3, 16, 17, 18, 19, 4, 5, 6, 7, 20, 21, 22, 23);
    const __m512i hi_lanes = _mm512_setr_epi32(8, 9, 10, 11, 24, 25, 26, 27, 12, 13, 14, 15, 28, 29, 30, 31);
    const __mmask16 low = (__mmask16)ck_bit_range(0, rows, 16), high = (__mmask16)(low << 8);
    const __m512 vlo = _mm512_set1_ps(lo), vhi = _mm512_set1_ps(hi);
    for (int half = 0; half < 2; half++) {
        __m512 t[8], u[8];
        for (int r = 0; r < 8; r += 2) {
            t[r] = _mm512_unpacklo_ps(acc[r][half], acc[r + 1][half]);
            t[r + 1] = _mm512_unpackhi_ps(acc[r][half], acc[r + 1][half]);
        }
        // u[j] (j < 4): pixels 0-3 of channel 4L + j in lane L; u[4 + j]: pixels 4-7.
        for (int q = 0; q < 2; q++) {
            const int s = 4 * q;
            u[s + 0] = _mm512_shuffle_ps(t[s + 0], t[s + 2], 0x44);
            u[s + 1] = _mm512_shuffle_ps(t[s + 0], t[s + 2], 0xEE);
            u[s + 2] = _mm512_shuffle_ps(t[s + 1], t[s + 3], 0x44);
            u[s + 3] = _mm512_shuffle_ps(t[s + 1], t[s + 3], 0xEE);
        }
        for (int j = 0; j < 4; j++) {
            for (int part = 0; part < 2; part++) {
                // Channels 16 half + 8 part + j (lanes 0-7) and that + 4 (lanes 8-15).
                __m512 v = _mm512_permutex2var_ps(u[j], part ? hi_lanes : lo_lanes, u[4 + j]);
                const int ca = 16 * half + 8 * part + j, cb = ca + 4;
                float *ya = out + (size_t)ca * ldc, *yb = out + (size_t)cb * ldc - 8;
                const __mmask16 m = (__mmask16)((ca < cols ? low : 0) | (cb < cols ? high : 0));
                if (!m) continue;
                if (add_output) v = _mm512_add_ps(v, _mm512_mask_loadu_ps(_mm512_maskz_loadu_ps(m & low, ya), m & high, yb));
                v = ck_activate512(v, act, vlo, vhi);
                _mm512_mask_storeu_ps(ya, m & low, v);
                _mm512_mask_storeu_ps(yb, m & high, v);
            }
        }
    }
}

/// How far ahead (in floats: 64 depth steps, ~500 cycles of FMAs) the 1x1 channel tile
/// prefetches its weight panel, two lines a step. A layer's weights are cold (MobileNetV2's
/// 14 MB cycle through a 2 MB L2), and 16 steps ahead (512) did not cover the miss: with cold
/// weights, 1536-2048 took 0.82-0.88x the time of 512 on MobileNetV2's 14x14 and 7x7 shapes
/// (one process, variants interleaved), 3072 no better. Panels lie one after the other, so the
/// last steps of a panel prefetch the next one's first.
enum { PREFETCH_PANEL = 2048 };

/// How far ahead (in depth rows) the 1x1 channel tile prefetches its input. Each depth row is
/// a plane further on, a new line every step, and on two threads half of them were just
/// written by the other core (the depthwise layer before splits by channels), a transfer the
/// hardware prefetcher did not start early enough: two threads splitting MobileNetV2's
/// 14 x 14 and 7 x 7 1x1 shapes by pixels, after a phase writing the input by channel halves,
/// took 0.87-0.92x the time (16 rows ahead; 8 and 32 alike).
enum { X_AHEAD = 16 };

// The sums over k depth rows of a tile of R <= 8 pixels from a (R a constant once inlined:
// one copy of the loop per length). A 7 x 7 plane's last tile is 1 pixel; broadcasting it into
// all 8 rows cost as much as a full tile (7 x 7 layers took 0.73-0.78x the time with this).
// Accumulator rows R..7 keep their zeros and are never stored.
__attribute__((target("avx512f"), always_inline))
static inline void tile_sums_avx512(int k, const float *panel, const float *a, int plane, const int R,
                                    __m512 acc[8][2]) {
    for (int p = 0; p < k; p++, a += plane, panel += 32) {
        _mm_prefetch((const char *)(panel + PREFETCH_PANEL), _MM_HINT_T0);
        _mm_prefetch((const char *)(panel + PREFETCH_PANEL + 16), _MM_HINT_T0);
        // The tile's pixels X_AHEAD depth rows on (both ends: 8 pixels may span two lines; past
        // the input's end a prefetch is dropped, never a fault).
        _mm_prefetch((const char *)(a + (size_t)X_AHEAD * plane), _MM_HINT_T0);
        _mm_prefetch((const char *)(a + (size_t)X_AHEAD * plane + 7), _MM_HINT_T0);
        const __m512 b0 = _mm512_loadu_ps(panel), b1 = _mm512_loadu_ps(panel + 16);
        for (int r = 0; r < R; r++) {
            const __m512 v = _mm512_set1_ps(a[r]);
            acc[r][0] = _mm512_fmadd_ps(v, b0, acc[r][0]);
            acc[r][1] = _mm512_fmadd_ps(v, b1, acc[r][1]);
        }
    }
}

// Depth rows [d0, d0 + kd) of one tile of a 1x1 convolution: pixels [p0, p0 + rows) x channels
// [c0, c0 + cols) of y (rows <= 8, cols <= 32). The sums start from zero at d0 = 0, else from
// `partial` (16 vectors, the tile's sums so far); at the last depth row they are stored into y,
// else back into `partial`. Carried over this way, every output is still one chain of
// multiply-adds over all depth rows in order: the same bits as a tile taken in one block.
__attribute__((target("avx512f"), always_inline))
static inline void channel_tile_avx512(int k, int d0, int kd, const float *panel, const float *x, int plane, int p0,
                                       int rows, int c0, int cols, const float *bias, int add_output, int act, float lo,
                                       float hi, float *y, __m512 *partial) {
    __m512 acc[8][2];
    for (int r = 0; r < 8; r++) {
        acc[r][0] = d0 ? partial[2 * r] : _mm512_setzero_ps();
        acc[r][1] = d0 ? partial[2 * r + 1] : _mm512_setzero_ps();
    }
    const float *a = x + (size_t)d0 * plane + p0, *w = panel + (size_t)d0 * 32;
    switch (rows) {
    case 1: tile_sums_avx512(kd, w, a, plane, 1, acc); break;
    case 2: tile_sums_avx512(kd, w, a, plane, 2, acc); break;
    case 3: tile_sums_avx512(kd, w, a, plane, 3, acc); break;
    case 4: tile_sums_avx512(kd, w, a, plane, 4, acc); break;
    case 5: tile_sums_avx512(kd, w, a, plane, 5, acc); break;
    case 6: tile_sums_avx512(kd, w, a, plane, 6, acc); break;
    case 7: tile_sums_avx512(kd, w, a, plane, 7, acc); break;
    default: tile_sums_avx512(kd, w, a, plane, 8, acc); break;
    }
    if (d0 + kd < k) {
        for (int r = 0; r < 8; r++) { partial[2 * r] = acc[r][0]; partial[2 * r + 1] = acc[r][1]; }
        return;
    }
    channel_tile_store(acc, rows, cols, bias ? bias + c0 : NULL, add_output, act, lo, hi, y + (size_t)c0 * plane + p0, plane);
}

/// Depth rows per block of the 1x1 channel kernel: a panel's block (32 x 128 floats, 16 KB)
/// and the input rows a tile reads in it (128 lines) stay in L1 while the block runs down all
/// the pixel tiles, which carry their sums from block to block. In one block, a deep
/// projection streamed its whole panel (73 KB at depth 576) from L2 for every tile of 8
/// pixels: MobileNetV2's 96 x 576 x 196 took 0.77-0.80x the time blocked, its 1280 x 320 x 49
/// 0.83x, 160 x 960 x 49 0.87-0.91x (cold weights, one process, variants interleaved;
/// blocks of 64 and 256 alike, 0.91x and 0.88x over all shapes). Inside the model the gain is
/// smaller (its deep projections 0.91-0.99x, the pass within the noise: 1.00 on two threads,
/// DenseNet-121 0.986); the outputs are the same bits as before (checked on 7 shapes x 3
/// activations).
enum { DEPTH_BLOCK = 128 };

__attribute__((target("avx512f")))
static int conv1x1_channels_avx512(const float *panels, int m, int k, int c0, int c1, const float *x, int plane,
                                   int n0, int n1, const float *bias, int add_output, int act, float lo, float hi,
                                   float *y) {
    __m512 *partials = NULL; // 16 vectors a tile
    if (k > DEPTH_BLOCK) {
        partials = (__m512 *)ck_scratch(1, (size_t)((n1 - n0 + 7) / 8) * 16 * 16);
        if (!partials) return -1;
    }
    // Channel panels outside, then depth blocks, pixel tiles inside: each weight panel is read
    // once per call.
    const int end = c1 < m ? c1 : m;
    for (int cp = c0; cp < c1; cp += 32) {
        const int cols = end - cp < 32 ? end - cp : 32;
        const float *panel = panels + (size_t)cp * k;
        for (int d0 = 0; d0 < k; d0 += DEPTH_BLOCK) {
            const int kd = k - d0 < DEPTH_BLOCK ? k - d0 : DEPTH_BLOCK;
            for (int p0 = n0, t = 0; p0 < n1; p0 += 8, t++) {
                const int rows = n1 - p0 < 8 ? n1 - p0 : 8;
                channel_tile_avx512(k, d0, kd, panel, x, plane, p0, rows, cp, cols, bias, add_output, act, lo, hi, y,
                                    partials ? partials + (size_t)t * 16 : NULL);
            }
        }
    }
    return 0;
}

int ck_conv1x1_channels(int level, const float *panels, int m, int k, int c0, int c1, const float *x, int plane,
                        int n0, int n1, const float *bias, int add_output, int act, float lo, float hi, float *y) {
    if (level != 2 || ck_sgemm_level() < 2) return -1;
    return conv1x1_channels_avx512(panels, m, k, c0, c1, x, plane, n0, n1, bias, add_output, act, lo, hi, y);
}

// --- Convolutions of few input channels (a network's first layer): channels along the vector ---
// An RGB stem's im2col matrix is short (K = 27 for 3x3, 147 for 7x7) and very wide, so packing
// its panels costs as much as a good part of the products (a quarter of resnet18's stem). Here
// the input rows a band of output rows reads are copied once into a zero-padded band (columns
// of the padding included), and a tile of 8
// output pixels (along one output row) x 32 output channels broadcasts each tap straight from
// the band, at the stride, through a table of the K taps' offsets. Weights as channel panels
// (ck_pack_channel_panels), the tile stored as in the 1x1 kernel above.

// Sums over the k taps of one tile: pixel r of tap p is a[off[p] + r * SW] (SW a compile-time
// stride), or a[off[p] + at[r]] for a short tile (at clamps r to its last pixel).
__attribute__((target("avx512f"), always_inline))
static inline void taps_tile_avx512(int k, const int *off, const float *panel, const float *a, const int SW,
                                    const int *at, __m512 acc[8][2]) {
    for (int r = 0; r < 8; r++) { acc[r][0] = _mm512_setzero_ps(); acc[r][1] = _mm512_setzero_ps(); }
    for (int p = 0; p < k; p++, panel += 32) {
        const float *ap = a + off[p];
        const __m512 b0 = _mm512_loadu_ps(panel), b1 = _mm512_loadu_ps(panel + 16);
        for (int r = 0; r < 8; r++) {
            const __m512 v = _mm512_set1_ps(at ? ap[at[r]] : ap[r * SW]);
            acc[r][0] = _mm512_fmadd_ps(v, b0, acc[r][0]);
            acc[r][1] = _mm512_fmadd_ps(v, b1, acc[r][1]);
        }
    }
}

enum { CHANNELS_MAX_TAPS = 1024 };

__attribute__((target("avx512f")))
static int conv_channels_avx512(const float *panels, int m, int c0, int c1, const ck_conv_geometry *g, const float *x,
                                int oy0, int oy1, const float *bias, int add_output, int act, float lo, float hi,
                                float *y) {
    const int k = g->c * g->kh * g->kw;
    if (k > CHANNELS_MAX_TAPS) return -1;
    // Input rows [r0, r0 + band) feed output rows [oy0, oy1); a padded row holds input columns
    // -pl .. (ow - 1) * sw - pl + (kw - 1) * dw.
    const int r0 = oy0 * g->sh - g->pt, band = (oy1 - 1 - oy0) * g->sh + (g->kh - 1) * g->dh + 1;
    const int wp = (g->ow - 1) * g->sw + (g->kw - 1) * g->dw + 1;
    float *padded = ck_scratch(1, (size_t)g->c * band * wp);
    if (!padded) return -1;
    for (int ch = 0; ch < g->c; ch++) {
        for (int i = 0; i < band; i++) {
            float *dst = padded + ((size_t)ch * band + i) * wp;
            const int iy = r0 + i;
            if (iy < 0 || iy >= g->h) { memset(dst, 0, sizeof(float) * wp); continue; }
            const float *src = x + ((size_t)ch * g->h + iy) * g->w;
            for (int j = 0; j < wp; j++) {
                const int ix = j - g->pl;
                dst[j] = ix >= 0 && ix < g->w ? src[ix] : 0.0f;
            }
        }
    }
    int off[CHANNELS_MAX_TAPS];
    for (int p = 0; p < k; p++) {
        const int ch = p / (g->kh * g->kw), t = p % (g->kh * g->kw);
        off[p] = (ch * band + (t / g->kw) * g->dh) * wp + (t % g->kw) * g->dw;
    }
    const int plane = g->oh * g->ow;
    __m512 acc[8][2];
    for (int oy = oy0; oy < oy1; oy++) {
        const float *row = padded + (size_t)(oy - oy0) * g->sh * wp;
        for (int ox0 = 0; ox0 < g->ow; ox0 += 8) {
            const int rows = g->ow - ox0 < 8 ? g->ow - ox0 : 8;
            const float *a = row + (size_t)ox0 * g->sw;
            int at[8];
            for (int r = 0; r < 8; r++) at[r] = (r < rows ? r : rows - 1) * g->sw;
            for (int cp = c0; cp < c1; cp += 32) {
                const int cols = (c1 < m ? c1 : m) - cp < 32 ? (c1 < m ? c1 : m) - cp : 32;
                const float *panel = panels + (size_t)cp * k;
                if (rows == 8 && g->sw == 1) taps_tile_avx512(k, off, panel, a, 1, NULL, acc);
                else if (rows == 8 && g->sw == 2) taps_tile_avx512(k, off, panel, a, 2, NULL, acc);
                else taps_tile_avx512(k, off, panel, a, 1, at, acc);
                channel_tile_store(acc, rows, cols, bias ? bias + cp : NULL, add_output, act, lo, hi,
                                   y + (size_t)cp * plane + (size_t)oy * g->ow + ox0, plane);
            }
        }
    }
    return 0;
}

int ck_conv_channels(int level, const float *panels, int m, int c0, int c1, const ck_conv_geometry *g, const float *x,
                     int oy0, int oy1, const float *bias, int add_output, int act, float lo, float hi, float *y) {
    if (level != 2 || ck_sgemm_level() < 2) return -1;
    return conv_channels_avx512(panels, m, c0, c1, g, x, oy0, oy1, bias, add_output, act, lo, hi, y);
}

int ck_conv(int level, const float *packed, int m, int m0, int m1, const ck_conv_geometry *g, const float *x,
            int n0, int n1, const float *bias, int add_output, int act, float lo, float hi, float *y, int ldy) {
    int mr, nr;
    ck_kernel_fn kernel;
    if (level > ck_sgemm_level() || !ck_tile(level, &mr, &nr, &kernel)) return -1;
    const int k = g->c * g->kh * g->kw, mpad = ((m + mr - 1) / mr) * mr;
    if (nr == NR512 && g->kh == 1 && g->kw == 1 && g->sh == 1 && g->sw == 1 && g->pt == 0 && g->pl == 0
        && g->oh == g->h && g->ow == g->w) {
        conv_pointwise_avx512(packed, mpad, k, m0, m1, x, g->h * g->w, n0, n1, bias, add_output, act, lo, hi, y, ldy);
        return 0;
    }
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
                for (int ir = m0 - m0 % mr; ir < m1; ir += mr) {
                    const int rows = m1 - ir < mr ? m1 - ir : mr;
                    float *cij = y + (size_t)ir * ldy + jc + jr;
                    ck_epilogue ep = { .accumulate = !first || add_output, .bias = NULL, .act = last ? act : CK_ACT_NONE, .lo = lo, .hi = hi };
                    if (first && bias) ep.bias = bias + ir; // the AVX-512 kernel reads the valid rows' entries only
                    if (nr == NR512) {
                        ep.rows = rows;
                        ep.cols = cols;
                        kernel(kc, ablock + (size_t)ir * kc, bpanel, cij, ldy, &ep);
                        continue;
                    }
                    if (first && bias && rows < mr) {
                        // The AVX2 kernel reads MR bias entries: pad the last panel's.
                        for (int r = 0; r < mr; r++) bias_tile[r] = r < rows ? bias[ir + r] : 0.0f;
                        ep.bias = bias_tile;
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

// Lanes [a, b) of a 16-lane mask (a and b clamped to [0, 16]).
static inline __mmask16 lane_range(int a, int b) { return (__mmask16)ck_bit_range(a, b, 16); }

// For the 16 outputs of column block q whose first input column is `start` (any column, even in
// the padding), at stride 1 or 2: *m0 the lanes of input columns start .. start+15 that lie in
// the row and belong to an output, and at stride 2 *m1 the same for start+16 .. start+31 (the
// output lanes then take the even columns). Lanes outside are read as the padding value.
static inline void window_masks(const ck_conv_geometry *g, int q, int start, int stride, __mmask16 *m0, __mmask16 *m1) {
    if (stride == 2) {
        const int end = g->w - start < (g->ow - q * 16) * 2 ? g->w - start : (g->ow - q * 16) * 2;
        *m0 = lane_range(-start, end);
        *m1 = lane_range(-start - 16, end - 16);
    } else {
        *m0 = lane_range(-start, g->w - start) & lane_range(0, g->ow - q * 16);
        *m1 = 0;
    }
}

// Per-channel sliding windows with AVX-512: the depthwise convolution (multiply-add with the
// channel's filter, zero padding) and max pooling (maximum, padding never wins). An output row
// is cut into vectors of 16 columns; the vectors of the plane (row by row) are taken four at a
// time and accumulated side by side, so the dependency chains overlap even on 7x7 planes. Per
// tap, one masked load per vector at stride 1, two masked loads and an even-lane permute at
// stride 2, a masked gather otherwise. Lanes whose input column lies in the padding (or past the
// row's end) are masked off and read as the padding value; the masks depend only on the
// vector's column block and kj, so they are computed once for all channels of the call.
// KH, KW and SW, when not 0, are the window's height, width and stride as compile-time
// constants, so that the tap loops unroll: max pooling instantiates its 2x2 stride-2 window.
// (Depthwise 3x3 and 5x5 windows at strides 1 and 2, and 3x3 stride-2 max pooling, take the
// row-blocked kernel below instead, about 3x faster on MobileNetV2's layers.)
enum { DW_GROUP = 4, DW_MAX_TAPS = 64 };

__attribute__((target("avx512f"), always_inline))
static inline void window_avx512(const ck_conv_geometry *g, const float *x, const float *w, const float *bias,
                                 int channels, int act, float lo, float hi, float *y, const int is_max,
                                 const int KH, const int KW, const int SW) {
    const int sw = SW ? SW : g->sw, kw = KW ? KW : g->kw, kh = KH ? KH : g->kh, taps = kh * kw;
    // The instances are for undilated windows of equal strides.
    const int sh = SW ? SW : g->sh, dh = KH ? 1 : g->dh, dw = KW ? 1 : g->dw;
    const int chunks = (g->ow + 15) / 16, vectors = g->oh * chunks;
    const __m512i lane = _mm512_set_epi32(15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0);
    const __m512i even = _mm512_add_epi32(lane, lane);
    const __m512i strided = _mm512_mullo_epi32(lane, _mm512_set1_epi32(sw));
    const __m512 zero = _mm512_setzero_ps(), vlo = _mm512_set1_ps(lo), vhi = _mm512_set1_ps(hi);
    const __m512 pad = is_max ? _mm512_set1_ps(-__builtin_inff()) : zero;
    // mask0/mask1[chunk * kw + kj]: lanes of the first / second 16 input columns read (the
    // second only at stride 2); store[chunk]: the lanes that are outputs.
    __mmask16 mask0[chunks * kw], mask1[chunks * kw], store[chunks];
    for (int q = 0; q < chunks; q++) {
        store[q] = (__mmask16)lane_range(0, g->ow - q * 16);
        for (int kj = 0; kj < kw; kj++) {
            const int start = q * 16 * sw + kj * g->dw - g->pl;
            if (sw <= 2) {
                window_masks(g, q, start, sw, &mask0[q * kw + kj], &mask1[q * kw + kj]);
            } else {
                const __m512i ix = _mm512_add_epi32(strided, _mm512_set1_epi32(start));
                mask0[q * kw + kj] = _mm512_cmpge_epi32_mask(ix, _mm512_setzero_si512())
                    & _mm512_cmplt_epi32_mask(ix, _mm512_set1_epi32(g->w)) & store[q];
                mask1[q * kw + kj] = 0;
            }
        }
    }
    __m512 wv[DW_MAX_TAPS];
    for (int c = 0; c < channels; c++) {
        const float *xc = x + (size_t)c * g->h * g->w;
        float *yc = y + (size_t)c * g->oh * g->ow;
        if (!is_max) for (int t = 0; t < taps; t++) wv[t] = _mm512_set1_ps(w[(size_t)c * taps + t]);
        const __m512 start_value = is_max ? pad : _mm512_set1_ps(bias ? bias[c] : 0.0f);
        int next_row = 0, next_q = 0;
        for (int v0 = 0; v0 < vectors; v0 += DW_GROUP) {
            // Vectors in row-major order: output row, then column block; past the last one the
            // group repeats it (computed, not stored).
            int oy[DW_GROUP], q[DW_GROUP];
            // Two accumulators per vector (even and odd kj), so that eight chains overlap.
            __m512 acc[DW_GROUP][2];
            for (int j = 0; j < DW_GROUP; j++) {
                oy[j] = next_row;
                q[j] = next_q;
                acc[j][0] = start_value;
                acc[j][1] = pad;
                if (v0 + j + 1 < vectors && ++next_q == chunks) {
                    next_q = 0;
                    next_row++;
                }
            }
            for (int ki = 0; ki < kh; ki++) {
                for (int j = 0; j < DW_GROUP; j++) {
                    // A row in the padding reads nothing: its loads are masked off entirely (and
                    // point at row 0, so no address leaves the plane).
                    const int iy = oy[j] * sh - g->pt + ki * dh;
                    const int inside = iy >= 0 && iy < g->h;
                    const __mmask16 rows = inside ? (__mmask16)0xFFFF : 0;
                    const float *xrow = xc + (size_t)(inside ? iy : 0) * g->w + q[j] * 16 * sw - g->pl;
                    const __mmask16 *m0 = mask0 + q[j] * kw, *m1 = mask1 + q[j] * kw;
                    for (int kj = 0; kj < kw; kj++) {
                        const float *src = xrow + kj * dw;
                        __m512 v;
                        if (sw == 1) {
                            v = _mm512_mask_loadu_ps(pad, m0[kj] & rows, src);
                        } else if (sw == 2) {
                            v = _mm512_permutex2var_ps(_mm512_mask_loadu_ps(pad, m0[kj] & rows, src), even,
                                                       _mm512_mask_loadu_ps(pad, m1[kj] & rows, src + 16));
                        } else {
                            v = _mm512_mask_i32gather_ps(pad, m0[kj] & rows, strided, src, 4);
                        }
                        // max(v, acc) keeps acc when v is NaN: a NaN never wins, as in the reference.
                        acc[j][kj & 1] = is_max ? _mm512_max_ps(v, acc[j][kj & 1])
                                                : _mm512_fmadd_ps(wv[ki * kw + kj], v, acc[j][kj & 1]);
                    }
                }
            }
            for (int j = 0; j < DW_GROUP && v0 + j < vectors; j++) {
                __m512 out = is_max ? _mm512_max_ps(acc[j][1], acc[j][0]) : _mm512_add_ps(acc[j][0], acc[j][1]);
                out = ck_activate512(out, act, vlo, vhi);
                _mm512_mask_storeu_ps(yc + (size_t)oy[j] * g->ow + q[j] * 16, store[q[j]], out);
            }
        }
    }
}

// The K x K depthwise convolution (K = 3 or 5) at stride S = 1 or 2 (MobileNet's and
// EfficientNet's layers), blocked over DW_ROWS output rows of one 16-column block: each input
// row is loaded once (K shifted vectors, masked at the plane's edges) and feeds every output row
// of the block it belongs to, so a row's loads serve up to K outputs at stride 1. Two
// accumulators per output row give 2 * DW_ROWS independent FMA chains. Rows in the padding are
// skipped. With is_max it is max pooling instead (resnet's 3x3 stride-2 window): padding lanes
// read -inf, and max(v, acc) keeps acc when v is NaN, as the general window kernel does.
// A 3-wide window at stride 2 loads each input row's 32 columns once a block and permutes its
// three taps out of them (2 loads + 1 lane instead of 6 loads): MobileNetV2's four stride-2
// layers 0.82x the time alone, the same bits.
enum { DW_ROWS = 4 };

__attribute__((target("avx512f"), always_inline))
static inline void depthwise_rows_avx512(const ck_conv_geometry *g, const float *x, const float *w, const float *bias,
                                         int channels, int act, float lo, float hi, float *y, const int K, const int S,
                                         const int is_max) {
    enum { IN_ROWS_MAX = (DW_ROWS - 1) * 2 + 5, K_MAX = 5 };
    const int in_rows = (DW_ROWS - 1) * S + K;
    const int chunks = (g->ow + 15) / 16;
    const __m512i lane = _mm512_set_epi32(15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0);
    const __m512i even = _mm512_add_epi32(lane, lane);
    const __m512 zero = _mm512_setzero_ps(), vlo = _mm512_set1_ps(lo), vhi = _mm512_set1_ps(hi);
    const __m512 pad = is_max ? _mm512_set1_ps(-__builtin_inff()) : zero;
    // mask0/mask1[q * K + kj]: tap kj's lanes in column block q (window_masks); store[q]: the
    // lanes that are outputs.
    __mmask16 mask0[chunks * K], mask1[chunks * K], store[chunks];
    for (int q = 0; q < chunks; q++) {
        store[q] = lane_range(0, g->ow - q * 16);
        for (int kj = 0; kj < K; kj++) window_masks(g, q, q * 16 * S + kj - g->pl, S, &mask0[q * K + kj], &mask1[q * K + kj]);
    }
    // 3-wide windows at stride 2 (s2k3): input columns start .. start+31 of a column block
    // (start = 32q - pl) come in two loads, low[q] and high[q] their in-row lanes; tap kj of
    // output lane o is column start + 2o + kj, taken from the pair by a permute. Lane 15 of tap
    // 2 is column start + 32, one past the pair: where lane 15 is an output, fix[q] sets it to
    // the padding value and one[q] loads it when it lies in the row.
    const int s2k3 = S == 2 && K == 3;
    __mmask16 low[chunks], high[chunks], fix[chunks], one[chunks];
    const __m512i tap_index[3] = {even, _mm512_add_epi32(even, _mm512_set1_epi32(1)), _mm512_add_epi32(even, _mm512_set1_epi32(2))};
    if (s2k3) {
        for (int q = 0; q < chunks; q++) {
            const int start = q * 32 - g->pl;
            low[q] = lane_range(-start, g->w - start);
            high[q] = lane_range(-start - 16, g->w - start - 16);
            fix[q] = g->ow - q * 16 >= 16 ? (__mmask16)0x8000 : 0;
            one[q] = fix[q] && start + 32 >= 0 && start + 32 < g->w ? (__mmask16)0x8000 : 0;
        }
    }
    // Channel, then block of output rows, then column block: the block's input rows (a few KB)
    // stay in L1 while every column block reads them, and the plane is read once, in order.
    for (int c = 0; c < channels; c++) {
        const float *xc = x + (size_t)c * g->h * g->w - g->pl;
        float *yc = y + (size_t)c * g->oh * g->ow;
        __m512 wv[K_MAX * K_MAX];
        if (!is_max) for (int t = 0; t < K * K; t++) wv[t] = _mm512_set1_ps(w[(size_t)c * K * K + t]);
        const __m512 b = is_max ? pad : _mm512_set1_ps(bias ? bias[c] : 0.0f);
        for (int oy0 = 0; oy0 < g->oh; oy0 += DW_ROWS) {
            for (int q = 0; q < chunks; q++) {
                const __mmask16 *m0 = mask0 + q * K, *m1 = mask1 + q * K;
                __m512 acc[DW_ROWS][2];
                for (int r = 0; r < DW_ROWS; r++) { acc[r][0] = b; acc[r][1] = pad; }
                for (int ir = 0; ir < IN_ROWS_MAX; ir++) {
                    if (ir >= in_rows) break;
                    const int iy = oy0 * S - g->pt + ir;
                    if (iy < 0 || iy >= g->h) continue;
                    const float *src = xc + (size_t)iy * g->w + q * 16 * S;
                    __m512 v[K_MAX];
                    if (s2k3) {
                        const __m512 lo16 = _mm512_mask_loadu_ps(pad, low[q], src), hi16 = _mm512_mask_loadu_ps(pad, high[q], src + 16);
                        for (int kj = 0; kj < 3; kj++) v[kj] = _mm512_permutex2var_ps(lo16, tap_index[kj], hi16);
                        if (fix[q]) v[2] = _mm512_mask_loadu_ps(_mm512_mask_mov_ps(v[2], fix[q], pad), one[q], src + 17);
                    } else {
                        for (int kj = 0; kj < K; kj++) {
                            v[kj] = S == 1 ? _mm512_mask_loadu_ps(pad, m0[kj], src + kj)
                                           : _mm512_permutex2var_ps(_mm512_mask_loadu_ps(pad, m0[kj], src + kj), even,
                                                                    _mm512_mask_loadu_ps(pad, m1[kj], src + kj + 16));
                        }
                    }
                    // Input row ir is tap row ki = ir - r*S of output row r.
                    for (int r = 0; r < DW_ROWS; r++) {
                        const int ki = ir - r * S;
                        if (ki < 0 || ki >= K) continue;
                        for (int kj = 0; kj < K; kj++) {
                            acc[r][ir & 1] = is_max ? _mm512_max_ps(v[kj], acc[r][ir & 1])
                                                    : _mm512_fmadd_ps(wv[ki * K + kj], v[kj], acc[r][ir & 1]);
                        }
                    }
                }
                for (int r = 0; r < DW_ROWS && oy0 + r < g->oh; r++) {
                    __m512 out = is_max ? _mm512_max_ps(acc[r][1], acc[r][0]) : _mm512_add_ps(acc[r][0], acc[r][1]);
                    out = ck_activate512(out, act, vlo, vhi);
                    _mm512_mask_storeu_ps(yc + (size_t)(oy0 + r) * g->ow + q * 16, store[q], out);
                }
            }
        }
    }
}

__attribute__((target("avx512f")))
static void depthwise_avx512(const ck_conv_geometry *g, const float *x, const float *w, const float *bias,
                             int channels, int act, float lo, float hi, float *y) {
    const int k = g->kh == g->kw && g->dh == 1 && g->dw == 1 && g->sh == g->sw ? g->kh : 0, s = g->sw;
    if (k == 3 && s == 1) depthwise_rows_avx512(g, x, w, bias, channels, act, lo, hi, y, 3, 1, 0);
    else if (k == 3 && s == 2) depthwise_rows_avx512(g, x, w, bias, channels, act, lo, hi, y, 3, 2, 0);
    else if (k == 5 && s == 1) depthwise_rows_avx512(g, x, w, bias, channels, act, lo, hi, y, 5, 1, 0);
    else if (k == 5 && s == 2) depthwise_rows_avx512(g, x, w, bias, channels, act, lo, hi, y, 5, 2, 0);
    else window_avx512(g, x, w, bias, channels, act, lo, hi, y, 0, 0, 0, 0);
}

__attribute__((target("avx512f")))
static void maxpool_avx512(const ck_conv_geometry *g, const float *x, int channels, float *y) {
    const int k = g->kh == g->kw && g->dh == 1 && g->dw == 1 && g->sh == g->sw ? g->kh : 0;
    if (k == 3 && g->sw == 2) depthwise_rows_avx512(g, x, NULL, NULL, channels, CK_ACT_NONE, 0, 0, y, 3, 2, 1);
    else if (k == 2 && g->sw == 2) window_avx512(g, x, NULL, NULL, channels, CK_ACT_NONE, 0, 0, y, 1, 2, 2, 2);
    else window_avx512(g, x, NULL, NULL, channels, CK_ACT_NONE, 0, 0, y, 1, 0, 0, 0);
}

int ck_maxpool2d(const ck_conv_geometry *g, const float *x, int channels, float *y) {
    if (ck_sgemm_level() < 2 || g->kh * g->kw > DW_MAX_TAPS) return -1;
    maxpool_avx512(g, x, channels, y);
    return 0;
}

// The plain loop (any CPU): one channel, taps outermost, vectorised by the compiler along rows.
static void depthwise_plain(const ck_conv_geometry *g, const float *x, const float *w, float bias,
                            int act, float lo, float hi, float *y) {
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
        } else if (act == CK_ACT_SILU) {
            ck_silu(yrow, yrow, (size_t)g->ow);
        }
    }
}

void ck_depthwise(const ck_conv_geometry *g, const float *x, const float *w, const float *bias, int channels,
                  int act, float lo, float hi, float *y) {
    if (ck_sgemm_level() >= 2 && g->kh * g->kw <= DW_MAX_TAPS) {
        depthwise_avx512(g, x, w, bias, channels, act, lo, hi, y);
        return;
    }
    for (int c = 0; c < channels; c++) {
        depthwise_plain(g, x + (size_t)c * g->h * g->w, w + (size_t)c * g->kh * g->kw, bias ? bias[c] : 0.0f,
                        act, lo, hi, y + (size_t)c * g->oh * g->ow);
    }
}

// --- A 1x1 expansion and the depthwise convolution after it, by chunks of channels ---
// MobileNet's inverted-residual blocks widen the channels six times with a 1x1 convolution and
// then filter each channel alone. Computed layer after layer, the wide tensor goes out to memory
// (4.8 MB at 112 x 112) and comes back; here the expansion's output for a few channels at a time
// lands in a thread's scratch (32 KB where one tile of channels allows, 400 KB for 8 channels at
// 112 x 112: in L1 or L2), and the depthwise kernel reads it from there. Each output is the same kernel call's sum as layer after layer
// (the expansion's sums do not depend on the channel range), so the results are bit for bit the
// same.
// The input rows [*a, *e) output rows [oy0, oy1) of a convolution with geometry g read
// (clipped to the plane; empty when the window lies in the padding only).
static void band_input_rows(const ck_conv_geometry *g, int oy0, int oy1, int *a, int *e) {
    int first = oy0 * g->sh - g->pt, end = (oy1 - 1) * g->sh - g->pt + (g->kh - 1) * g->dh + 1;
    if (first < 0) first = 0;
    if (end > g->h) end = g->h;
    if (end < first) end = first;
    *a = first;
    *e = end;
}

// A band of output rows is the whole-plane kernel on the rows it reads: with those rows as the
// plane (h' = e - a) and the top padding moved so that output row oy0 + j reads input row
// (oy0 + j) * sh - pt + ki * dh, local row j * sh - pt' + ki * dh with pt' = pt + a - oy0 * sh.
// Rows past e are never read by an output of the band (they lie past the plane or its window).
void ck_depthwise_rows(const ck_conv_geometry *g, const float *x, size_t x_plane, const float *w, const float *bias,
                       int channels, int oy0, int oy1, int act, float lo, float hi, float *y) {
    if (oy0 >= oy1) return;
    int a, e;
    band_input_rows(g, oy0, oy1, &a, &e);
    ck_conv_geometry band = *g;
    band.h = e - a;
    band.pt = g->pt + a - oy0 * g->sh;
    band.oh = oy1 - oy0;
    const size_t taps = (size_t)g->kh * g->kw, out_plane = (size_t)g->oh * g->ow;
    for (int c = 0; c < channels; c++) {
        ck_depthwise(&band, x + c * x_plane + (size_t)a * g->w, w + c * taps, bias ? bias + c : NULL, 1, act, lo, hi,
                     y + c * out_plane + (size_t)oy0 * g->ow);
    }
}

int ck_pointwise_depthwise(int level, int panels, const float *packed, int m, int k, int c0, int c1, int oy0, int oy1,
                           const ck_conv_geometry *pointwise, const float *x, const float *bias, int act, float lo,
                           float hi, const ck_conv_geometry *depthwise, const float *w, const float *dw_bias, int dw_act,
                           float dw_lo, float dw_hi, float *y) {
    if (level < 1 || level > ck_sgemm_level()) return -1;
    const int plane = pointwise->h * pointwise->w;
    const int whole = oy0 <= 0 && oy1 >= depthwise->oh;
    // The expansion's rows the band's windows read (all of them for the whole plane).
    int a = 0, e = pointwise->h;
    if (!whole) band_input_rows(depthwise, oy0, oy1, &a, &e);
    float *t = ck_scratch(2, (size_t)(c1 - c0) * plane);
    if (!t) return -1;
    // The expansion writes channel c (c0 <= c < c1) at row c of its output; shifted back by c0
    // rows, row c0 is the scratch's first.
    float *rows = t - (ptrdiff_t)c0 * plane;
    const int n0 = a * pointwise->w, n1 = e * pointwise->w;
    const int status = n0 >= n1 ? 0
        : panels ? ck_conv1x1_channels(level, packed, m, k, c0, c1, x, plane, n0, n1, bias, 0, act, lo, hi, rows)
                 : ck_conv(level, packed, m, c0, c1, pointwise, x, n0, n1, bias, 0, act, lo, hi, rows, plane);
    if (status != 0) return status;
    const float *dw = w + (size_t)c0 * depthwise->kh * depthwise->kw, *db = dw_bias ? dw_bias + c0 : NULL;
    float *out = y + (size_t)c0 * depthwise->oh * depthwise->ow;
    if (whole) ck_depthwise(depthwise, t, dw, db, c1 - c0, dw_act, dw_lo, dw_hi, out);
    else ck_depthwise_rows(depthwise, t, (size_t)plane, dw, db, c1 - c0, oy0, oy1, dw_act, dw_lo, dw_hi, out);
    return 0;
}

// The adjoint of im2col for one image and group: x (c, h, w) += the taps of col (c*kh*kw, oh*ow).
// For each tap the valid output columns form one range, computed once per tap as in the packing,
// so the inner loop has no bounds tests (and at stride 1 is a plain vector add).
void ck_col2im(const ck_conv_geometry *g, const float *col, float *x) {
    const int sw = g->sw;
    size_t row = 0;
    for (int ch = 0; ch < g->c; ch++) {
        float *xc = x + (size_t)ch * g->h * g->w;
        for (int ki = 0; ki < g->kh; ki++) {
            for (int kj = 0; kj < g->kw; kj++, row++) {
                const float *src = col + row * (size_t)g->oh * g->ow;
                const int offx = kj * g->dw - g->pl;
                int lo = (-offx + sw - 1) / sw;
                if (-offx + sw - 1 < 0) lo = 0;
                int hi = g->w - offx <= 0 ? 0 : (g->w - offx + sw - 1) / sw;
                if (hi > g->ow) hi = g->ow;
                for (int oy = 0; oy < g->oh; oy++) {
                    const int iy = oy * g->sh - g->pt + ki * g->dh;
                    if (iy < 0 || iy >= g->h) continue;
                    const float *s = src + (size_t)oy * g->ow;
                    float *d = xc + (size_t)iy * g->w + offx;
                    if (sw == 1) {
                        for (int ox = lo; ox < hi; ox++) d[ox] += s[ox];
                    } else {
                        for (int ox = lo; ox < hi; ox++) d[ox * sw] += s[ox];
                    }
                }
            }
        }
    }
}
