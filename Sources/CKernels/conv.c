// 2-D convolution as an implicit GEMM: Y (M, OH*OW) = W (M, C*kh*kw) * im2col(X), where the
// im2col matrix is never stored. Its KC x NR panels are packed straight from the image (the
// approach of "Anatomy of high-performance deep learning convolutions on SIMD architectures",
// Georganas et al., SC 2018, and of BLIS-based convolution: pack B from the input), the weights
// are packed once at load time, and the bias and activation are applied in the kernel's store
// (the epilogue), so each output element is written once per depth block. Also the adjoint of
// im2col (`ck_col2im`). The other convolution kernels: conv_channels.c (output channels along
// the vector: small 1x1 planes and RGB stems), depthwise.c (per-channel windows, max pooling,
// the fused expansion + depthwise pair), winograd.c (3x3 stride 1).
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
// dst[0..15] = src[0], src[s], ..., src[15 s] for s = 1 or 2: two loads (at stride 2 four,
// and the even lanes of each 16) and two stores, instead of a memcpy call or a scalar loop.
__attribute__((target("avx2,fma")))
static void copy16_avx2(const float *src, int s, float *dst) {
    if (s == 1) {
        _mm256_storeu_ps(dst, _mm256_loadu_ps(src));
        _mm256_storeu_ps(dst + 8, _mm256_loadu_ps(src + 8));
        return;
    }
    _mm256_storeu_ps(dst, ck_even_lanes256(src));
    _mm256_storeu_ps(dst + 8, ck_even_lanes256(src + 16));
}

static void pack_b_conv(const ck_conv_geometry *g, const float *x, int p0, int kc, int j0, int nc, float *bp, int nr) {
    // Per depth row (kc <= KC): its channel's plane, the tap's offsets, and the output columns
    // [lo, hi) whose input column ox*sw + offx lies in the row. Found once per call, the tap
    // advanced row by row: no divisions in the panel loops.
    const float *planes[KC];
    int offys[KC], offxs[KC], los[KC], his[KC];
    {
        const int taps = g->kh * g->kw;
        int ch = p0 / taps, ki = (p0 % taps) / g->kw, kj = (p0 % taps) % g->kw;
        for (int p = 0; p < kc; p++) {
            planes[p] = x + (size_t)ch * g->h * g->w;
            offys[p] = ki * g->dh - g->pt;
            const int offx = offxs[p] = kj * g->dw - g->pl;
            int lo = (-offx + g->sw - 1) / g->sw;
            if (-offx + g->sw - 1 < 0) lo = 0;
            int hi = g->w - offx <= 0 ? 0 : (g->w - offx + g->sw - 1) / g->sw;
            if (hi > g->ow) hi = g->ow;
            if (lo > hi) lo = hi;
            los[p] = lo;
            his[p] = hi;
            if (++kj == g->kw) { kj = 0; if (++ki == g->kh) { ki = 0; ch++; } }
        }
    }
    for (int j = 0; j < nc; j += nr) {
        const int cols = nc - j < nr ? nc - j : nr;
        const int col0 = j0 + j, oy0 = col0 / g->ow, ox0 = col0 % g->ow;
        for (int p = 0; p < kc; p++, bp += nr) {
            const float *xc = planes[p];
            const int offy = offys[p], offx = offxs[p], lo = los[p], hi = his[p];
            int oy = oy0, ox = ox0, q = 0;
            if (nr == 16 && cols == 16 && ox + 16 <= g->ow && ox >= lo && ox + 16 <= hi
                && (g->sw == 1 || (g->sw == 2 && (ox + 15) * 2 + 1 + offx < g->w))) {
                // The AVX2 panel's common case: 16 columns of one output row, all in the image
                // (at stride 2 the loads also read the column after the last, inside the row).
                const int iy = oy * g->sh + offy;
                if (iy >= 0 && iy < g->h) {
                    copy16_avx2(xc + (size_t)iy * g->w + offx + (size_t)ox * g->sw, g->sw, bp);
                    continue;
                }
            }
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
// block, the output is written one panel of MR rows at a time, left to right (faster than tile
// by tile down the rows on wide planes; tools/bench/README.md, "Figures behind the kernels").
// AVX-512 tiles are 8 x 32, AVX2 ones 6 x 16 (`ck_kernel_avx512_unpacked`,
// `ck_kernel_avx2_unpacked`).
static void pointwise_columns(int level, const float *packed, int mpad, int k, int m0, int m1, const float *x,
                              int plane, int n0, int n1, const float *bias, int add_output, int act, float lo, float hi,
                              float *y, int ldy) {
    const int mr = level == 2 ? MR512 : MR256, nr = level == 2 ? NR512 : NR256;
    for (int jc = n0; jc < n1; jc += NCB) {
        const int nc = n1 - jc < NCB ? n1 - jc : NCB;
        for (int pc = 0; pc < k; pc += KC) {
            const int kc = k - pc < KC ? k - pc : KC;
            const int first = pc == 0, last = pc + kc >= k;
            const float *ablock = packed + (size_t)pc * mpad;
            for (int ir = m0 - m0 % mr; ir < m1; ir += mr) {
                for (int jr = 0; jr < nc; jr += nr) {
                    const int cols = nc - jr < nr ? nc - jr : nr;
                    const float *bpanel = x + (size_t)pc * plane + jc + jr;
                    ck_epilogue ep = { .accumulate = !first || add_output, .bias = first && bias ? bias + ir : NULL,
                                       .act = last ? act : CK_ACT_NONE, .lo = lo, .hi = hi,
                                       .rows = m1 - ir < mr ? m1 - ir : mr, .cols = cols };
                    float *c = y + (size_t)ir * ldy + jc + jr;
                    if (level == 2) ck_kernel_avx512_unpacked(kc, ablock + (size_t)ir * kc, bpanel, plane, c, ldy, &ep);
                    else ck_kernel_avx2_unpacked(kc, ablock + (size_t)ir * kc, bpanel, plane, c, ldy, &ep);
                }
            }
        }
    }
}

// The tiles read the input rows 16 floats at a time, and a load across two cache lines costs
// two: where every depth row starts at the same offset in its line (plane % 16 == 0), the
// columns up to the first 64-byte boundary of x + n0 run first as one narrow tile, and the
// tiles after it start on line boundaries. (Activations are Swift arrays, whose elements start
// 16 or 48 bytes into a line.) Each output's sum is the same either way (figures in
// tools/bench/README.md, "Figures behind the kernels").
static void conv_pointwise(int level, const float *packed, int mpad, int k, int m0, int m1, const float *x, int plane,
                           int n0, int n1, const float *bias, int add_output, int act, float lo, float hi, float *y,
                           int ldy) {
    int head = 0;
    if (plane % 16 == 0) {
        head = (int)((16 - ((uintptr_t)(x + n0) / sizeof(float)) % 16) % 16);
        if (head > n1 - n0) head = n1 - n0;
    }
    if (head > 0)
        pointwise_columns(level, packed, mpad, k, m0, m1, x, plane, n0, n0 + head, bias, add_output, act, lo, hi, y, ldy);
    pointwise_columns(level, packed, mpad, k, m0, m1, x, plane, n0 + head, n1, bias, add_output, act, lo, hi, y, ldy);
}

int ck_conv(int level, const float *packed, int m, int m0, int m1, const ck_conv_geometry *g, const float *x,
            int n0, int n1, const float *bias, int add_output, int act, float lo, float hi, float *y, int ldy) {
    int mr, nr;
    ck_kernel_fn kernel;
    if (level > ck_cpu_level() || !ck_tile(level, &mr, &nr, &kernel)) return -1;
    const int k = g->c * g->kh * g->kw, mpad = ((m + mr - 1) / mr) * mr;
    if (g->kh == 1 && g->kw == 1 && g->sh == 1 && g->sw == 1 && g->pt == 0 && g->pl == 0 && g->oh == g->h
        && g->ow == g->w) {
        conv_pointwise(level, packed, mpad, k, m0, m1, x, g->h * g->w, n0, n1, bias, add_output, act, lo, hi, y, ldy);
        return 0;
    }
    float *bp = ck_scratch(0, (size_t)KC * NCB);
    if (!bp) return -1;
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
                    // Every kernel stores an edge tile's valid rows and columns only, and reads
                    // the bias of its valid rows only.
                    ck_epilogue ep = { .accumulate = !first || add_output, .bias = first && bias ? bias + ir : NULL,
                                       .act = last ? act : CK_ACT_NONE, .lo = lo, .hi = hi, .rows = rows, .cols = cols };
                    kernel(kc, ablock + (size_t)ir * kc, bpanel, y + (size_t)ir * ldy + jc + jr, ldy, &ep);
                }
            }
        }
    }
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
