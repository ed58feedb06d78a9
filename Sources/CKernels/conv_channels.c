// Convolutions with the output channels along the vector: 1x1 convolutions on small planes,
// where pixels do not fill a vector (at most 256 pixels: `Conv2D.channelMajor`), and
// convolutions of few input channels (a network's first layer), whose im2col panels cost more
// to pack than to multiply. Each has an AVX-512 and an AVX2 kernel.
#include "CKernels.h"
#include "microkernel.h"
#include <immintrin.h>
#include <stdint.h>
#include <string.h>

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
/// 14 MB cycle through a 2 MB L2), and 16 steps ahead (512) did not cover the miss (figures in
/// tools/bench/README.md, "Figures behind the kernels"). Panels lie one after the other, so the
/// last steps of a panel prefetch the next one's first.
enum { PREFETCH_PANEL = 2048 };

/// How far ahead (in depth rows) the 1x1 channel tile prefetches its input. Each depth row is
/// a plane further on, a new line every step, and on two threads half of them were just
/// written by the other core (the depthwise layer before splits by channels), a transfer the
/// hardware prefetcher did not start early enough (figures in tools/bench/README.md,
/// "Figures behind the kernels").
enum { X_AHEAD = 16 };

// The sums over k depth rows of a tile of R <= 8 pixels from a (R a constant once inlined:
// one copy of the loop per length). A 7 x 7 plane's last tile is 1 pixel; broadcasting it into
// all 8 rows cost as much as a full tile (tools/bench/README.md, "Figures behind the kernels").
// Accumulator rows R..7 keep their zeros and are never stored.
__attribute__((target("avx512f"), always_inline))
static inline void tile_sums_avx512(int k, const float *panel, const float *a, int plane, const int R,
                                    __m512 acc[8][2]) {
#pragma clang loop unroll_count(4)
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
/// pixels (figures in tools/bench/README.md, "Figures behind the kernels"); the outputs are the
/// same bits as without blocks (checked on 7 shapes x 3 activations).
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

// --- The same 1x1 kernel with AVX2: 6 pixels x 16 channels ------------------------------------
// Sixteen registers hold a tile of 6 pixels by 16 channels (12 accumulators, two weight vectors
// and the broadcast pixel), so each 32-channel panel runs as two halves, reading its weights at
// a stride of 32 floats. Every sum is the same chain of multiply-adds over the depth rows as in
// the AVX-512 tile (depth blocks carried over the same way), so the two paths give the same bits
// up to SiLU. The tile is transposed in registers and stored channel by channel.
enum { PX256 = 6 };

__attribute__((target("avx2,fma"), always_inline))
static inline void tile_sums_avx2(int k, const float *panel, const float *a, int plane, const int R, __m256 acc[PX256][2]) {
#pragma clang loop unroll_count(4)
    for (int p = 0; p < k; p++, a += plane, panel += 32) {
        _mm_prefetch((const char *)(panel + PREFETCH_PANEL), _MM_HINT_T0);
        _mm_prefetch((const char *)(a + (size_t)X_AHEAD * plane), _MM_HINT_T0);
        const __m256 b0 = _mm256_loadu_ps(panel), b1 = _mm256_loadu_ps(panel + 8);
        for (int r = 0; r < R; r++) {
            const __m256 v = _mm256_broadcast_ss(a + r);
            acc[r][0] = _mm256_fmadd_ps(v, b0, acc[r][0]);
            acc[r][1] = _mm256_fmadd_ps(v, b1, acc[r][1]);
        }
    }
}

// Adds the bias to a tile of rows pixels x cols channels (cols <= 16) and stores it transposed:
// channel c's pixels go to out + c * ldc, the residual already there added when add_output,
// then the activation (as channel_tile_store). Each 8-channel half is transposed in registers
// (pixel rows 6 and 7 zero), then written channel by channel, `rows` floats each.
__attribute__((target("avx2,fma"), always_inline))
static inline void channel_tile_store_avx2(__m256 acc[PX256][2], int rows, int cols, const float *bias, int add_output,
                                           int act, float lo, float hi, float *out, int ldc) {
    const __m256i mask = ck_lane_mask256(0, rows);
    const __m256 vlo = _mm256_set1_ps(lo), vhi = _mm256_set1_ps(hi), zero = _mm256_setzero_ps();
    for (int half = 0; half < 2 && half * 8 < cols; half++) {
        __m256 r[8];
        for (int i = 0; i < 8; i++) r[i] = i < PX256 ? acc[i][half] : zero;
        __m256 t[8], u[8];
        for (int i = 0; i < 8; i += 2) {
            t[i] = _mm256_unpacklo_ps(r[i], r[i + 1]);
            t[i + 1] = _mm256_unpackhi_ps(r[i], r[i + 1]);
        }
        for (int q = 0; q < 8; q += 4) {
            u[q + 0] = _mm256_shuffle_ps(t[q + 0], t[q + 2], 0x44);
            u[q + 1] = _mm256_shuffle_ps(t[q + 0], t[q + 2], 0xEE);
            u[q + 2] = _mm256_shuffle_ps(t[q + 1], t[q + 3], 0x44);
            u[q + 3] = _mm256_shuffle_ps(t[q + 1], t[q + 3], 0xEE);
        }
        for (int j = 0; j < 8; j++) {
            const int c = half * 8 + j;
            if (c >= cols) break;
            // Channel c's pixels: 128-bit lane j / 4 of u[j % 4] (pixels 0-3) and of u[4 + j % 4] (4-7).
            __m256 v = j < 4 ? _mm256_permute2f128_ps(u[j], u[4 + j], 0x20) : _mm256_permute2f128_ps(u[j - 4], u[j], 0x31);
            float *dst = out + (size_t)c * ldc;
            if (bias) v = _mm256_add_ps(v, _mm256_set1_ps(bias[c]));
            if (rows == PX256) {
                // A full tile: 4 + 2 floats (a masked store to memory is microcoded on AMD cores).
                if (add_output) {
                    const __m128 low = _mm_loadu_ps(dst), high = _mm_loadl_pi(_mm_setzero_ps(), (const __m64 *)(dst + 4));
                    v = _mm256_add_ps(v, _mm256_set_m128(high, low));
                }
                v = ck_activate256(v, act, vlo, vhi);
                _mm_storeu_ps(dst, _mm256_castps256_ps128(v));
                _mm_storel_pi((__m64 *)(dst + 4), _mm256_extractf128_ps(v, 1));
            } else {
                if (add_output) v = _mm256_add_ps(v, _mm256_maskload_ps(dst, mask));
                v = ck_activate256(v, act, vlo, vhi);
                float lanes[8];
                _mm256_storeu_ps(lanes, v);
                memcpy(dst, lanes, sizeof(float) * (size_t)rows);
            }
        }
    }
}

__attribute__((target("avx2,fma")))
static int conv1x1_channels_avx2(const float *panels, int m, int k, int c0, int c1, const float *x, int plane, int n0,
                                 int n1, const float *bias, int add_output, int act, float lo, float hi, float *y) {
    __m256 *partials = NULL; // 12 vectors a tile
    if (k > DEPTH_BLOCK) {
        partials = (__m256 *)ck_scratch(1, (size_t)((n1 - n0 + PX256 - 1) / PX256) * 12 * 8);
        if (!partials) return -1;
    }
    const int end = c1 < m ? c1 : m;
    for (int cp = c0; cp < end; cp += 16) {
        // cp & 31 is 0 or 16 (c0 is a multiple of 32): the first or second half of its panel.
        const int cols = end - cp < 16 ? end - cp : 16;
        const float *panel = panels + (size_t)(cp & ~31) * k + (cp & 31);
        for (int d0 = 0; d0 < k; d0 += DEPTH_BLOCK) {
            const int kd = k - d0 < DEPTH_BLOCK ? k - d0 : DEPTH_BLOCK;
            for (int p0 = n0, t = 0; p0 < n1; p0 += PX256, t++) {
                const int rows = n1 - p0 < PX256 ? n1 - p0 : PX256;
                __m256 acc[PX256][2];
                __m256 *partial = partials ? partials + (size_t)t * 12 : NULL;
                for (int r = 0; r < PX256; r++) {
                    acc[r][0] = d0 ? partial[2 * r] : _mm256_setzero_ps();
                    acc[r][1] = d0 ? partial[2 * r + 1] : _mm256_setzero_ps();
                }
                const float *a = x + (size_t)d0 * plane + p0, *w = panel + (size_t)d0 * 32;
                switch (rows) {
                case 1: tile_sums_avx2(kd, w, a, plane, 1, acc); break;
                case 2: tile_sums_avx2(kd, w, a, plane, 2, acc); break;
                case 3: tile_sums_avx2(kd, w, a, plane, 3, acc); break;
                case 4: tile_sums_avx2(kd, w, a, plane, 4, acc); break;
                case 5: tile_sums_avx2(kd, w, a, plane, 5, acc); break;
                default: tile_sums_avx2(kd, w, a, plane, 6, acc); break;
                }
                if (d0 + kd < k) {
                    for (int r = 0; r < PX256; r++) { partial[2 * r] = acc[r][0]; partial[2 * r + 1] = acc[r][1]; }
                    continue;
                }
                channel_tile_store_avx2(acc, rows, cols, bias ? bias + cp : NULL, add_output, act, lo, hi,
                                        y + (size_t)cp * plane + p0, plane);
            }
        }
    }
    return 0;
}

int ck_conv1x1_channels(int level, const float *panels, int m, int k, int c0, int c1, const float *x, int plane,
                        int n0, int n1, const float *bias, int add_output, int act, float lo, float hi, float *y) {
    if (level < 1 || level > ck_cpu_level()) return -1;
    return level == 2 ? conv1x1_channels_avx512(panels, m, k, c0, c1, x, plane, n0, n1, bias, add_output, act, lo, hi, y)
                      : conv1x1_channels_avx2(panels, m, k, c0, c1, x, plane, n0, n1, bias, add_output, act, lo, hi, y);
}

// --- Convolutions of few input channels (a network's first layer): channels along the vector ---
// An RGB stem's im2col matrix is short (K = 27 for 3x3, 147 for 7x7) and very wide, so packing
// its panels costs as much as a good part of the products (a quarter of resnet18's stem). Here
// the input rows a band of output rows reads are copied once into a zero-padded band (columns
// of the padding included), and a tile of 8
// output pixels (along one output row) x 32 output channels broadcasts each tap straight from
// the band, at the stride, through a table of the K taps' offsets. Weights as channel panels
// (ck_pack_channel_panels), the tile stored as in the 1x1 kernel above. Panels outermost: one
// panel (K x 32 floats) stays in L1 while every tile of the band passes under it.

// Sums over the k taps of one tile: pixel r of tap p is a[off[p] + r * SW] (SW a compile-time
// stride), or a[off[p] + at[r]] for a short tile (at clamps r to its last pixel).
__attribute__((target("avx512f"), always_inline))
static inline void taps_tile_avx512(int k, const int *off, const float *panel, const float *a, const int SW,
                                    const int *at, __m512 acc[8][2]) {
    for (int r = 0; r < 8; r++) { acc[r][0] = _mm512_setzero_ps(); acc[r][1] = _mm512_setzero_ps(); }
#pragma clang loop unroll_count(4)
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

// The input rows a band of output rows [oy0, oy1) reads, zero-padded, into the thread's scratch
// (slot 1): channel ch's row i at padded + (ch * band + i) * wp, holding input columns
// -pl .. (ow - 1) * sw - pl + (kw - 1) * dw; off[p] is tap p's offset from a band's first row,
// for the k = c * kh * kw taps. Returns the band, or NULL without scratch memory.
static float *padded_band(const ck_conv_geometry *g, const float *x, int oy0, int oy1, int *off, int *wp_out) {
    const int r0 = oy0 * g->sh - g->pt, band = (oy1 - 1 - oy0) * g->sh + (g->kh - 1) * g->dh + 1;
    const int wp = (g->ow - 1) * g->sw + (g->kw - 1) * g->dw + 1;
    float *padded = ck_scratch(1, (size_t)g->c * band * wp);
    if (!padded) return NULL;
    for (int ch = 0; ch < g->c; ch++) {
        for (int i = 0; i < band; i++) {
            float *dst = padded + ((size_t)ch * band + i) * wp;
            const int iy = r0 + i;
            if (iy < 0 || iy >= g->h) { memset(dst, 0, sizeof(float) * wp); continue; }
            // Columns j of the band hold input column j - pl: zeros left of column 0 and right
            // of column w - 1, the row's run between.
            const float *src = x + ((size_t)ch * g->h + iy) * g->w;
            const int j0 = g->pl < wp ? g->pl : wp, end = g->pl + g->w < wp ? g->pl + g->w : wp;
            const int j1 = end > j0 ? end : j0;
            memset(dst, 0, sizeof(float) * j0);
            memcpy(dst + j0, src, sizeof(float) * (j1 - j0));
            memset(dst + j1, 0, sizeof(float) * (wp - j1));
        }
    }
    const int k = g->c * g->kh * g->kw;
    for (int p = 0; p < k; p++) {
        const int ch = p / (g->kh * g->kw), t = p % (g->kh * g->kw);
        off[p] = (ch * band + (t / g->kw) * g->dh) * wp + (t % g->kw) * g->dw;
    }
    *wp_out = wp;
    return padded;
}

__attribute__((target("avx512f")))
static int conv_channels_avx512(const float *panels, int m, int c0, int c1, const ck_conv_geometry *g, const float *x,
                                int oy0, int oy1, const float *bias, int add_output, int act, float lo, float hi,
                                float *y) {
    const int k = g->c * g->kh * g->kw;
    if (k > CHANNELS_MAX_TAPS) return -1;
    int off[CHANNELS_MAX_TAPS], wp;
    const float *padded = padded_band(g, x, oy0, oy1, off, &wp);
    if (!padded) return -1;
    const int plane = g->oh * g->ow, end = c1 < m ? c1 : m;
    __m512 acc[8][2];
    for (int cp = c0; cp < c1; cp += 32) {
        const int cols = end - cp < 32 ? end - cp : 32;
        const float *panel = panels + (size_t)cp * k;
        for (int oy = oy0; oy < oy1; oy++) {
            const float *row = padded + (size_t)(oy - oy0) * g->sh * wp;
            for (int ox0 = 0; ox0 < g->ow; ox0 += 8) {
                const int rows = g->ow - ox0 < 8 ? g->ow - ox0 : 8;
                const float *a = row + (size_t)ox0 * g->sw;
                int at[8];
                for (int r = 0; r < 8; r++) at[r] = (r < rows ? r : rows - 1) * g->sw;
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

// The same with AVX2: tiles of 6 output pixels by 16 channels (half a 32-channel panel, read at
// a stride of 32 floats), stored as in the 1x1 kernel. Each sum is the same chain of
// multiply-adds over the taps as in the AVX-512 tile: the same bits.
__attribute__((target("avx2,fma"), always_inline))
static inline void taps_tile_avx2(int k, const int *off, const float *panel, const float *a, const int SW, const int *at,
                                  __m256 acc[PX256][2]) {
    for (int r = 0; r < PX256; r++) { acc[r][0] = _mm256_setzero_ps(); acc[r][1] = _mm256_setzero_ps(); }
#pragma clang loop unroll_count(4)
    for (int p = 0; p < k; p++, panel += 32) {
        const float *ap = a + off[p];
        const __m256 b0 = _mm256_loadu_ps(panel), b1 = _mm256_loadu_ps(panel + 8);
        for (int r = 0; r < PX256; r++) {
            const __m256 v = _mm256_broadcast_ss(at ? ap + at[r] : ap + r * SW);
            acc[r][0] = _mm256_fmadd_ps(v, b0, acc[r][0]);
            acc[r][1] = _mm256_fmadd_ps(v, b1, acc[r][1]);
        }
    }
}

__attribute__((target("avx2,fma")))
static int conv_channels_avx2(const float *panels, int m, int c0, int c1, const ck_conv_geometry *g, const float *x,
                              int oy0, int oy1, const float *bias, int add_output, int act, float lo, float hi, float *y) {
    const int k = g->c * g->kh * g->kw;
    if (k > CHANNELS_MAX_TAPS) return -1;
    int off[CHANNELS_MAX_TAPS], wp;
    const float *padded = padded_band(g, x, oy0, oy1, off, &wp);
    if (!padded) return -1;
    const int plane = g->oh * g->ow, end = c1 < m ? c1 : m;
    __m256 acc[PX256][2];
    for (int cp = c0; cp < end; cp += 16) {
        const int cols = end - cp < 16 ? end - cp : 16;
        const float *panel = panels + (size_t)(cp & ~31) * k + (cp & 31);
        for (int oy = oy0; oy < oy1; oy++) {
            const float *row = padded + (size_t)(oy - oy0) * g->sh * wp;
            for (int ox0 = 0; ox0 < g->ow; ox0 += PX256) {
                const int rows = g->ow - ox0 < PX256 ? g->ow - ox0 : PX256;
                const float *a = row + (size_t)ox0 * g->sw;
                int at[PX256];
                for (int r = 0; r < PX256; r++) at[r] = (r < rows ? r : rows - 1) * g->sw;
                if (rows == PX256 && g->sw == 1) taps_tile_avx2(k, off, panel, a, 1, NULL, acc);
                else if (rows == PX256 && g->sw == 2) taps_tile_avx2(k, off, panel, a, 2, NULL, acc);
                else taps_tile_avx2(k, off, panel, a, 1, at, acc);
                channel_tile_store_avx2(acc, rows, cols, bias ? bias + cp : NULL, add_output, act, lo, hi,
                                        y + (size_t)cp * plane + (size_t)oy * g->ow + ox0, plane);
            }
        }
    }
    return 0;
}

int ck_conv_channels(int level, const float *panels, int m, int c0, int c1, const ck_conv_geometry *g, const float *x,
                     int oy0, int oy1, const float *bias, int add_output, int act, float lo, float hi, float *y) {
    if (level < 1 || level > ck_cpu_level()) return -1;
    return level == 2 ? conv_channels_avx512(panels, m, c0, c1, g, x, oy0, oy1, bias, add_output, act, lo, hi, y)
                      : conv_channels_avx2(panels, m, c0, c1, g, x, oy0, oy1, bias, add_output, act, lo, hi, y);
}
