// Depthwise convolutions (one filter per channel) have no reuse to exploit in a GEMM; they run
// as a direct loop over taps, vectorised along output rows. The same sliding-window loop serves
// max pooling; the expansion + depthwise pair (MobileNet's inverted residual) runs a 1x1
// convolution into a per-thread scratch and the depthwise kernel from it.
#include "CKernels.h"
#include "microkernel.h"
#include <immintrin.h>
#include <stdint.h>
#include <string.h>

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
// three taps out of them (2 loads + 1 lane instead of 6 loads), with the same bits.
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

// The side of a square, undilated window of equal strides (the shapes with compiled instances),
// else 0.
static inline int square_window(const ck_conv_geometry *g) {
    return g->kh == g->kw && g->dh == 1 && g->dw == 1 && g->sh == g->sw ? g->kh : 0;
}

__attribute__((target("avx512f")))
static void depthwise_avx512(const ck_conv_geometry *g, const float *x, const float *w, const float *bias,
                             int channels, int act, float lo, float hi, float *y) {
    const int k = square_window(g), s = g->sw;
    if (k == 3 && s == 1) depthwise_rows_avx512(g, x, w, bias, channels, act, lo, hi, y, 3, 1, 0);
    else if (k == 3 && s == 2) depthwise_rows_avx512(g, x, w, bias, channels, act, lo, hi, y, 3, 2, 0);
    else if (k == 5 && s == 1) depthwise_rows_avx512(g, x, w, bias, channels, act, lo, hi, y, 5, 1, 0);
    else if (k == 5 && s == 2) depthwise_rows_avx512(g, x, w, bias, channels, act, lo, hi, y, 5, 2, 0);
    else window_avx512(g, x, w, bias, channels, act, lo, hi, y, 0, 0, 0, 0);
}

__attribute__((target("avx512f")))
static void maxpool_avx512(const ck_conv_geometry *g, const float *x, int channels, float *y) {
    const int k = square_window(g);
    if (k == 3 && g->sw == 2) depthwise_rows_avx512(g, x, NULL, NULL, channels, CK_ACT_NONE, 0, 0, y, 3, 2, 1);
    else if (k == 2 && g->sw == 2) window_avx512(g, x, NULL, NULL, channels, CK_ACT_NONE, 0, 0, y, 1, 2, 2, 2);
    else window_avx512(g, x, NULL, NULL, channels, CK_ACT_NONE, 0, 0, y, 1, 0, 0, 0);
}

// The same K x K window at stride S (K = 3 or 5, S = 1 or 2) with AVX2, blocked as above:
// DW_ROWS output rows of one 8-column block, two accumulators per row alternating by input row,
// rows in the padding skipped. Every output is the same chain of multiply-adds as in
// depthwise_rows_avx512, so the two paths give the same bits. Each tap is a plain load where
// all its lanes lie in the row (the inner column blocks), else a masked load, which reads 0 in
// the lanes off the row (blended with -inf for max pooling) and never touches memory there; at
// stride 2 two loads of 8 columns and a shuffle of their even lanes within 128-bit halves (the
// sums' lanes stay in that order until the store puts them in place). Masked loads are fast on
// every AVX2 core, masked stores are not: a short last block is stored in pieces. With is_max
// it is max pooling, as in depthwise_rows_avx512: max(v, acc) keeps acc when v is NaN, and the
// two accumulators are joined in that kernel's order (the same bits, signed zeros included).

// 8 floats from src, lanes outside `mask` (unless `full`) read as `pad` and never loaded.
__attribute__((target("avx2,fma"), always_inline))
static inline __m256 load_lanes256(const float *src, int full, __m256i mask, __m256 pad, int is_max) {
    if (full) return _mm256_loadu_ps(src);
    const __m256 v = _mm256_maskload_ps(src, mask);
    return is_max ? _mm256_blendv_ps(pad, v, _mm256_castsi256_ps(mask)) : v;
}

// The first `cols` (< 8) lanes of v to dst: 4, 2 and 1 floats.
__attribute__((target("avx2,fma"), always_inline))
static inline void store_head256(float *dst, __m256 v, int cols) {
    __m128 part = _mm256_castps256_ps128(v);
    if (cols & 4) {
        _mm_storeu_ps(dst, part);
        part = _mm256_extractf128_ps(v, 1);
        dst += 4;
    }
    if (cols & 2) {
        _mm_storel_pi((__m64 *)dst, part);
        part = _mm_movehl_ps(part, part);
        dst += 2;
    }
    if (cols & 1) _mm_store_ss(dst, part);
}

__attribute__((target("avx2,fma"), always_inline))
static inline int depthwise_rows_avx2(const ck_conv_geometry *g, const float *x, const float *w, const float *bias,
                               int channels, int act, float lo, float hi, float *y, const int K, const int S,
                               const int is_max) {
    enum { K_MAX = 5, IN_ROWS_MAX = (DW_ROWS - 1) * 2 + 5, CHUNKS_MAX = 64 };
    const int in_rows = (DW_ROWS - 1) * S + K;
    const int chunks = (g->ow + 7) / 8;
    if (chunks > CHUNKS_MAX) return -1;
    const __m256 vlo = _mm256_set1_ps(lo), vhi = _mm256_set1_ps(hi);
    const __m256 pad = _mm256_set1_ps(is_max ? -__builtin_inff() : 0.0f);
    // Per column block q and tap column kj: the lanes of the (first, and at stride 2 second) 8
    // input columns read that lie in the row and belong to an output, and whether that is all
    // of them. Tap kj of block q starts at input column q * 8 * S + kj - pl.
    __m256i mask0[CHUNKS_MAX * K_MAX], mask1[CHUNKS_MAX * K_MAX];
    int full[CHUNKS_MAX * K_MAX];
    for (int q = 0; q < chunks; q++) {
        for (int kj = 0; kj < K; kj++) {
            const int start = q * 8 * S + kj - g->pl, outputs = g->ow - q * 8 < 8 ? g->ow - q * 8 : 8;
            const int end = g->w - start < outputs * S ? g->w - start : outputs * S; // lanes [-start, end)
            const int t = q * K + kj;
            mask0[t] = ck_lane_mask256(-start, end);
            mask1[t] = ck_lane_mask256(-start - 8, end - 8);
            full[t] = start >= 0 && end >= 8 * S;
        }
    }
    for (int c = 0; c < channels; c++) {
        const float *xc = x + (size_t)c * g->h * g->w - g->pl;
        float *yc = y + (size_t)c * g->oh * g->ow;
        __m256 wv[K_MAX * K_MAX];
        if (!is_max) for (int t = 0; t < K * K; t++) wv[t] = _mm256_set1_ps(w[(size_t)c * K * K + t]);
        const __m256 b = is_max ? pad : _mm256_set1_ps(bias ? bias[c] : 0.0f);
        for (int oy0 = 0; oy0 < g->oh; oy0 += DW_ROWS) {
            for (int q = 0; q < chunks; q++) {
                __m256 acc[DW_ROWS][2];
                for (int r = 0; r < DW_ROWS; r++) { acc[r][0] = b; acc[r][1] = pad; }
                for (int ir = 0; ir < IN_ROWS_MAX; ir++) {
                    if (ir >= in_rows) break;
                    const int iy = oy0 * S - g->pt + ir;
                    if (iy < 0 || iy >= g->h) continue;
                    const float *src = xc + (size_t)iy * g->w + q * 8 * S;
                    __m256 v[K_MAX];
                    for (int kj = 0; kj < K; kj++) {
                        const int t = q * K + kj;
                        if (S == 1) {
                            v[kj] = load_lanes256(src + kj, full[t], mask0[t], pad, is_max);
                        } else {
                            const __m256 a0 = load_lanes256(src + kj, full[t], mask0[t], pad, is_max);
                            const __m256 a1 = load_lanes256(src + kj + 8, full[t], mask1[t], pad, is_max);
                            // Output lanes in the order 0 1 4 5 | 2 3 6 7 (a shuffle within 128-bit halves),
                            // put in order once per output at the store.
                            v[kj] = _mm256_shuffle_ps(a0, a1, _MM_SHUFFLE(2, 0, 2, 0));
                        }
                    }
                    for (int r = 0; r < DW_ROWS; r++) {
                        const int ki = ir - r * S;
                        if (ki < 0 || ki >= K) continue;
                        if (is_max) {
                            for (int kj = 0; kj < K; kj++) acc[r][ir & 1] = _mm256_max_ps(v[kj], acc[r][ir & 1]);
                        } else {
                            for (int kj = 0; kj < K; kj++) acc[r][ir & 1] = _mm256_fmadd_ps(wv[ki * K + kj], v[kj], acc[r][ir & 1]);
                        }
                    }
                }
                const int cols = g->ow - q * 8 < 8 ? g->ow - q * 8 : 8;
                for (int r = 0; r < DW_ROWS && oy0 + r < g->oh; r++) {
                    __m256 out = is_max ? _mm256_max_ps(acc[r][1], acc[r][0])
                                        : ck_activate256(_mm256_add_ps(acc[r][0], acc[r][1]), act, vlo, vhi);
                    if (S == 2) out = _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(out), _MM_SHUFFLE(3, 1, 2, 0)));
                    float *dst = yc + (size_t)(oy0 + r) * g->ow + q * 8;
                    if (cols == 8) _mm256_storeu_ps(dst, out);
                    else store_head256(dst, out, cols);
                }
            }
        }
    }
    return 0;
}

// One instance per window and stride, so that the tap loops unroll.
__attribute__((target("avx2,fma")))
static int depthwise_avx2(const ck_conv_geometry *g, const float *x, const float *w, const float *bias, int channels,
                          int act, float lo, float hi, float *y, int k, int s) {
    if (k == 3 && s == 1) return depthwise_rows_avx2(g, x, w, bias, channels, act, lo, hi, y, 3, 1, 0);
    if (k == 3 && s == 2) return depthwise_rows_avx2(g, x, w, bias, channels, act, lo, hi, y, 3, 2, 0);
    if (k == 5 && s == 1) return depthwise_rows_avx2(g, x, w, bias, channels, act, lo, hi, y, 5, 1, 0);
    if (k == 5 && s == 2) return depthwise_rows_avx2(g, x, w, bias, channels, act, lo, hi, y, 5, 2, 0);
    return -1;
}

// Max pooling with AVX2 on the windows the row-blocked kernel has (resnet's 3x3 stride 2).
__attribute__((target("avx2,fma")))
static int maxpool_avx2(const ck_conv_geometry *g, const float *x, int channels, float *y) {
    const int k = square_window(g);
    if (k == 3 && g->sw == 2) return depthwise_rows_avx2(g, x, NULL, NULL, channels, CK_ACT_NONE, 0, 0, y, 3, 2, 1);
    if (k == 3 && g->sw == 1) return depthwise_rows_avx2(g, x, NULL, NULL, channels, CK_ACT_NONE, 0, 0, y, 3, 1, 1);
    return -1;
}

int ck_maxpool2d(int level, const ck_conv_geometry *g, const float *x, int channels, float *y) {
    if (level > ck_cpu_level()) return -1;
    if (level == 1) return maxpool_avx2(g, x, channels, y);
    if (level < 2 || g->kh * g->kw > DW_MAX_TAPS) return -1;
    maxpool_avx512(g, x, channels, y);
    return 0;
}

// The plain loop (any CPU): one channel, taps outermost, vectorised by the compiler along rows.
static void depthwise_plain(int level, const ck_conv_geometry *g, const float *x, const float *w, float bias,
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
            ck_silu(level, yrow, yrow, (size_t)g->ow);
        }
    }
}

void ck_depthwise(int level, const ck_conv_geometry *g, const float *x, const float *w, const float *bias, int channels,
                  int act, float lo, float hi, float *y) {
    if (level > ck_cpu_level()) level = ck_cpu_level();
    if (level >= 2 && g->kh * g->kw <= DW_MAX_TAPS) {
        depthwise_avx512(g, x, w, bias, channels, act, lo, hi, y);
        return;
    }
    if (level == 1 && depthwise_avx2(g, x, w, bias, channels, act, lo, hi, y, square_window(g), g->sw) == 0) {
        return;
    }
    for (int c = 0; c < channels; c++) {
        depthwise_plain(level, g, x + (size_t)c * g->h * g->w, w + (size_t)c * g->kh * g->kw, bias ? bias[c] : 0.0f,
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
void ck_depthwise_rows(int level, const ck_conv_geometry *g, const float *x, size_t x_plane, const float *w, const float *bias,
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
        ck_depthwise(level, &band, x + c * x_plane + (size_t)a * g->w, w + c * taps, bias ? bias + c : NULL, 1, act, lo, hi,
                     y + c * out_plane + (size_t)oy0 * g->ow);
    }
}

int ck_pointwise_depthwise(int level, int panels, const float *packed, int m, int k, int c0, int c1, int oy0, int oy1,
                           const ck_conv_geometry *pointwise, const float *x, const float *bias, int act, float lo,
                           float hi, const ck_conv_geometry *depthwise, const float *w, const float *dw_bias, int dw_act,
                           float dw_lo, float dw_hi, float *y) {
    if (level < 1 || level > ck_cpu_level()) return -1;
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
    if (whole) ck_depthwise(level, depthwise, t, dw, db, c1 - c0, dw_act, dw_lo, dw_hi, out);
    else ck_depthwise_rows(level, depthwise, t, (size_t)plane, dw, db, c1 - c0, oy0, oy1, dw_act, dw_lo, dw_hi, out);
    return 0;
}
