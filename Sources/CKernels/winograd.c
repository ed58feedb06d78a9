// 3x3 stride-1 convolution by Winograd's minimal filtering F(2x2, 3x3) (Lavin & Gray, "Fast
// algorithms for convolutional neural networks", CVPR 2016, eq. 7-8): each 2x2 block of output
// pixels ("tile") of one output channel is Y = Aᵀ [ Σ_c (G g_c Gᵀ) ⊙ (Bᵀ d_c B) ] A, with g_c the
// 3x3 filter of input channel c and d_c the 4x4 input patch under the tile. With the 16
// element positions ξ of the 4x4 transformed domain as separate matrices, the sum over c is
// 16 GEMMs: M_ξ (M, tiles) = U_ξ (M, C) · V_ξ (C, tiles), 16 multiplications per tile and
// channel pair instead of 36 (2.25x fewer). F(2x2, 3x3)'s transforms only add and halve, so its
// error stays at the level of the direct convolution's. F(4x4, 3x3) (below) takes 36 products
// for 16 outputs (4x fewer than direct); its transforms hold entries up to 8 and 1/24, so its
// rounding error is a few times larger (docs/engine.md gives the measured figures).
//
//        [1  0 -1  0]        [1    0    0 ]
//   Bᵀ = [0  1  1  0]    G = [1/2  1/2  1/2]    Aᵀ = [1 1  1  0]
//        [0 -1  1  0]        [1/2 -1/2  1/2]         [0 1 -1 -1]
//        [0  1  0 -1]        [0    0    1 ]
//
// U_ξ are made once per weight tensor and packed for the GEMM kernel (ck_winograd_pack_weights);
// V_ξ are made per call straight into the kernel's B panels; M_ξ go to a scratch block, from
// which the output transform adds the bias, applies the activation and stores the pixels. With
// AVX-512, F(2x2)'s transforms read 16 tiles per vector with masked loads and permutes (the
// padding masked to zero) and store the 2x2 pixels with masks; the other transforms are plain C
// along a block's tiles, compiled per level. Which tile runs where: Conv2D.winogradTile.
#include "CKernels.h"
#include "microkernel.h"
#include <immintrin.h>
#include <string.h>

/// Tiles per block: 32 (one kernel panel); V (16 x KC x 32) and M (16 x M x 32) stay in L2.
enum { TB = 32 };

/// Transformed-domain positions of F(tile x tile, 3x3): (tile + 2)².
static int positions(int tile) { return (tile + 2) * (tile + 2); }

size_t ck_winograd_weights_count(int level, int tile, int m, int c) {
    return (size_t)positions(tile) * ck_packed_weights_count(level, m, c);
}

// U_ξ of F(4x4, 3x3) into scratch (36 matrices m x c, row-major): (G g Gᵀ) with
//        [ 1/4    0     0  ]
//        [-1/6  -1/6  -1/6 ]
//   G =  [-1/6   1/6  -1/6 ]
//        [1/24  1/12   1/6 ]
//        [1/24 -1/12   1/6 ]
//        [  0     0     1  ]
static void transform_weights4(int m, int c, const float *w, float *scratch) {
    for (int o = 0; o < m; o++) {
        for (int i = 0; i < c; i++) {
            const float *g = w + ((size_t)o * c + i) * 9;
            double t[6][3]; // G g
            for (int j = 0; j < 3; j++) {
                const double g0 = g[j], g1 = g[3 + j], g2 = g[6 + j];
                t[0][j] = g0 / 4;
                t[1][j] = -(g0 + g1 + g2) / 6;
                t[2][j] = -(g0 - g1 + g2) / 6;
                t[3][j] = g0 / 24 + g1 / 12 + g2 / 6;
                t[4][j] = g0 / 24 - g1 / 12 + g2 / 6;
                t[5][j] = g2;
            }
            for (int r = 0; r < 6; r++) { // (G g) Gᵀ
                const double g0 = t[r][0], g1 = t[r][1], g2 = t[r][2];
                const double u[6] = { g0 / 4, -(g0 + g1 + g2) / 6, -(g0 - g1 + g2) / 6,
                                      g0 / 24 + g1 / 12 + g2 / 6, g0 / 24 - g1 / 12 + g2 / 6, g2 };
                for (int s = 0; s < 6; s++) scratch[(size_t)(r * 6 + s) * m * c + (size_t)o * c + i] = (float)u[s];
            }
        }
    }
}

void ck_winograd_pack_weights(int level, int tile, int m, int c, const float *w, float *out, float *scratch) {
    // scratch: positions * m * c floats, U_ξ row-major.
    const int count = positions(tile);
    if (tile == 4) transform_weights4(m, c, w, scratch);
    else for (int o = 0; o < m; o++) {
        for (int i = 0; i < c; i++) {
            const float *g = w + ((size_t)o * c + i) * 9;
            double t[4][3]; // G g
            for (int j = 0; j < 3; j++) {
                t[0][j] = g[j];
                t[1][j] = 0.5 * (g[j] + g[3 + j] + g[6 + j]);
                t[2][j] = 0.5 * (g[j] - g[3 + j] + g[6 + j]);
                t[3][j] = g[6 + j];
            }
            for (int r = 0; r < 4; r++) { // (G g) Gᵀ
                const double u[4] = { t[r][0], 0.5 * (t[r][0] + t[r][1] + t[r][2]),
                                      0.5 * (t[r][0] - t[r][1] + t[r][2]), t[r][2] };
                for (int s = 0; s < 4; s++) scratch[(size_t)(r * 4 + s) * m * c + (size_t)o * c + i] = (float)u[s];
            }
        }
    }
    const size_t per = ck_packed_weights_count(level, m, c);
    for (int xi = 0; xi < count; xi++) ck_pack_weights(level, m, c, scratch + (size_t)xi * m * c, out + xi * per);
}

// The tiles of one vector of `width` lanes (16 on AVX-512, 8 on AVX2), cut where a tile row (or an
// image) ends: lanes [q, q+len) hold tiles tx .. tx+len-1 of tile row ty of `image`. A vector of
// tiles past `tiles` is idle.
typedef struct { int q, len, image, ty, tx; } segment;

static int tile_segments(int first, int width, int tiles, int per_image, int tw, segment *out) {
    int n = 0, l = 0;
    while (l < width && first + l < tiles) {
        const int t = first + l, image = t / per_image, local = t % per_image;
        const int ty = local / tw, tx = local % tw;
        int len = tw - tx;
        if (len > width - l) len = width - l;
        if (len > tiles - t) len = tiles - t;
        out[n++] = (segment){ l, len, image, ty, tx };
        l += len;
    }
    return n;
}

// V_ξ for channels [p0, p0+kc) and the TB tiles from t0 (tiles past `tiles` read as zero),
// written as one NR512-wide panel per ξ: v[ξ][p][lane]. Lane l of a segment needs input column
// 2(tx + l − q) + j − pl of input row 2ty + i − pt: for the segment's lanes, the even (j) and odd
// (j + 1) positions of the 32 floats from column 2(tx − q) + j − pl, j = 0 or 2: two masked loads
// and two permutes per pair of patch columns.
__attribute__((target("avx512f")))
static void input_transform(const ck_conv_geometry *g, const float *x, size_t x_stride, int tw, int per_image, int tiles,
                            int t0, int p0, int kc, float *v) {
    const __m512i lane = _mm512_set_epi32(15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0);
    const __m512i even = _mm512_add_epi32(lane, lane), odd = _mm512_add_epi32(even, _mm512_set1_epi32(1));
    for (int half = 0; half < 2; half++) {
        segment seg[16];
        const int segments = tile_segments(t0 + 16 * half, 16, tiles, per_image, tw, seg);
        // Per segment: its lanes, and for each of the 4x4 patch positions the offset of the load
        // (from the first image's channel) and the two load masks (0 when the row is outside).
        // Patch columns j and j+1 come from one pair of loads (even and odd positions), so two
        // pairs per patch row: `pair` 0 holds columns 0-1, `pair` 1 columns 2-3.
        __mmask16 lanes[16], lo[16][4][2], hi[16][4][2];
        ptrdiff_t offset[16][4][2];
        for (int s = 0; s < segments; s++) {
            lanes[s] = (__mmask16)(((1u << seg[s].len) - 1u) << seg[s].q);
            for (int i = 0; i < 4; i++) {
                const int iy = 2 * seg[s].ty + i - g->pt;
                for (int pair = 0; pair < 2; pair++) {
                    const int col0 = 2 * (seg[s].tx - seg[s].q) + 2 * pair - g->pl; // input column of position 0
                    offset[s][i][pair] = (ptrdiff_t)seg[s].image * (ptrdiff_t)x_stride + (ptrdiff_t)iy * g->w + col0;
                    // Positions 2l and 2l+1 for the segment's lanes l, where inside the image.
                    const unsigned long long m = iy >= 0 && iy < g->h
                        ? ck_bit_range(2 * seg[s].q, 2 * (seg[s].q + seg[s].len), 32) & ck_bit_range(-col0, g->w - col0, 32) : 0;
                    lo[s][i][pair] = (__mmask16)m;
                    hi[s][i][pair] = (__mmask16)(m >> 16);
                }
            }
        }
        for (int p = 0; p < kc; p++) {
            const float *xc = x + (size_t)(p0 + p) * g->h * g->w;
            __m512 d[4][4];
            for (int i = 0; i < 4; i++)
                for (int j = 0; j < 4; j++) d[i][j] = _mm512_setzero_ps();
            for (int s = 0; s < segments; s++) {
                for (int i = 0; i < 4; i++) {
                    for (int pair = 0; pair < 2; pair++) {
                        if (!(lo[s][i][pair] | hi[s][i][pair])) continue;
                        const float *src = xc + offset[s][i][pair];
                        const __m512 a = _mm512_maskz_loadu_ps(lo[s][i][pair], src), b = _mm512_maskz_loadu_ps(hi[s][i][pair], src + 16);
                        d[i][2 * pair] = _mm512_mask_mov_ps(d[i][2 * pair], lanes[s], _mm512_permutex2var_ps(a, even, b));
                        d[i][2 * pair + 1] = _mm512_mask_mov_ps(d[i][2 * pair + 1], lanes[s], _mm512_permutex2var_ps(a, odd, b));
                    }
                }
            }
            __m512 t[4][4]; // Bᵀ d
            for (int j = 0; j < 4; j++) {
                t[0][j] = _mm512_sub_ps(d[0][j], d[2][j]);
                t[1][j] = _mm512_add_ps(d[1][j], d[2][j]);
                t[2][j] = _mm512_sub_ps(d[2][j], d[1][j]);
                t[3][j] = _mm512_sub_ps(d[1][j], d[3][j]);
            }
            for (int i = 0; i < 4; i++) { // (Bᵀ d) B
                const __m512 r[4] = { _mm512_sub_ps(t[i][0], t[i][2]), _mm512_add_ps(t[i][1], t[i][2]),
                                      _mm512_sub_ps(t[i][2], t[i][1]), _mm512_sub_ps(t[i][1], t[i][3]) };
                for (int j = 0; j < 4; j++)
                    _mm512_store_ps(v + ((size_t)(i * 4 + j) * kc + p) * NR512 + 16 * half, r[j]);
            }
        }
    }
}

// Y for rows [m0, m1) and the TB tiles from t0 from M (16 x mpad x TB): Aᵀ M A + bias, act.
// Lane l's two output columns 2(tx + l − q) and +1 are interleaved into 32 consecutive floats
// and stored with a mask per segment and output row.
__attribute__((target("avx512f")))
static void output_transform(const ck_conv_geometry *g, int tw, int per_image, int tiles, int t0, const float *mb, int mpad,
                             int m0, int m1, const float *bias, int add_output, int act, float lo, float hi, float *y,
                             size_t y_stride) {
    const __m512 vlo = _mm512_set1_ps(lo), vhi = _mm512_set1_ps(hi);
    const __m512i first = _mm512_set_epi32(23, 7, 22, 6, 21, 5, 20, 4, 19, 3, 18, 2, 17, 1, 16, 0);
    const __m512i second = _mm512_set_epi32(31, 15, 30, 14, 29, 13, 28, 12, 27, 11, 26, 10, 25, 9, 24, 8);
    const size_t plane = (size_t)g->oh * g->ow;
    for (int half = 0; half < 2; half++) {
        segment seg[16];
        const int segments = tile_segments(t0 + 16 * half, 16, tiles, per_image, tw, seg);
        if (!segments) continue;
        __mmask16 keep_lo[16][2], keep_hi[16][2];
        ptrdiff_t offset[16][2];
        for (int s = 0; s < segments; s++) {
            const int col0 = 2 * (seg[s].tx - seg[s].q); // output column of position 0
            for (int a = 0; a < 2; a++) {
                const int oy = 2 * seg[s].ty + a;
                offset[s][a] = (ptrdiff_t)seg[s].image * (ptrdiff_t)y_stride + (ptrdiff_t)oy * g->ow + col0;
                const unsigned long long m = oy < g->oh ? ck_bit_range(2 * seg[s].q, 2 * (seg[s].q + seg[s].len), 32) &
                                                              ck_bit_range(-col0, g->ow - col0, 32) : 0;
                keep_lo[s][a] = (__mmask16)m;
                keep_hi[s][a] = (__mmask16)(m >> 16);
            }
        }
        for (int o = m0; o < m1; o++) {
            __m512 mm[4][4];
            for (int xi = 0; xi < 16; xi++) mm[xi / 4][xi % 4] = _mm512_load_ps(mb + ((size_t)xi * mpad + o) * TB + 16 * half);
            __m512 t[2][4]; // Aᵀ M
            for (int j = 0; j < 4; j++) {
                t[0][j] = _mm512_add_ps(_mm512_add_ps(mm[0][j], mm[1][j]), mm[2][j]);
                t[1][j] = _mm512_sub_ps(_mm512_sub_ps(mm[1][j], mm[2][j]), mm[3][j]);
            }
            const __m512 b = _mm512_set1_ps(bias ? bias[o] : 0.0f);
            float *yo = y + (size_t)o * plane;
            for (int a = 0; a < 2; a++) {
                __m512 r[2] = { _mm512_add_ps(_mm512_add_ps(_mm512_add_ps(t[a][0], t[a][1]), t[a][2]), b),
                                _mm512_add_ps(_mm512_sub_ps(_mm512_sub_ps(t[a][1], t[a][2]), t[a][3]), b) };
                if (!add_output) {
                    for (int c = 0; c < 2; c++) r[c] = ck_activate512(r[c], act, vlo, vhi);
                }
                // Positions 2l and 2l+1 of the row: lane l's two pixels.
                const __m512 p0 = _mm512_permutex2var_ps(r[0], first, r[1]), p1 = _mm512_permutex2var_ps(r[0], second, r[1]);
                for (int s = 0; s < segments; s++) {
                    if (add_output) {
                        // A fused residual: add what y holds at the segment's pixels, then activate.
                        __m512 q[2] = { p0, p1 };
                        const __mmask16 keep[2] = { keep_lo[s][a], keep_hi[s][a] };
                        for (int c = 0; c < 2; c++) {
                            if (!keep[c]) continue;
                            float *dst = yo + offset[s][a] + 16 * c;
                            q[c] = _mm512_add_ps(q[c], _mm512_maskz_loadu_ps(keep[c], dst));
                            q[c] = ck_activate512(q[c], act, vlo, vhi);
                            _mm512_mask_storeu_ps(dst, keep[c], q[c]);
                        }
                        continue;
                    }
                    if (keep_lo[s][a]) _mm512_mask_storeu_ps(yo + offset[s][a], keep_lo[s][a], p0);
                    if (keep_hi[s][a]) _mm512_mask_storeu_ps(yo + offset[s][a] + 16, keep_hi[s][a], p1);
                }
            }
        }
    }
}

// --- The AVX2 level: the same three steps, the transforms in plain C ---------------------------
// V_ξ for a block of TB2 = NR256 tiles goes straight into the AVX2 kernel's B panel (kc x 16,
// depth-major); the 16 products run on the 6 x 16 GEMM tile; M_ξ (mpad x 16) then go through
// the output transform. The transforms are adds and subtracts only (a few dozen operations per
// tile and channel against 16 x M multiply-adds in the products).
enum { TB2 = 16 };

// The stores of the plain-C output transforms: dst = act(value + add [+ dst]) for one pixel, and
// for four pixels of a row with the same operations in the same order (no SiLU: the callers take
// the pixel store for it). The vector clip keeps a NaN as the scalar one does.
static inline void store_pixel(float *dst, float value, float add, int add_output, int act, float lo, float hi) {
    value += add;
    if (add_output) value += *dst;
    *dst = ck_activate1(value, act, lo, hi);
}

static inline void store_pixels4(float *dst, __m128 value, __m128 add, int add_output, int act, __m128 lo, __m128 hi) {
    value = _mm_add_ps(value, add);
    if (add_output) value = _mm_add_ps(value, _mm_loadu_ps(dst));
    if (act == CK_ACT_RELU) value = _mm_max_ps(value, _mm_setzero_ps());
    else if (act == CK_ACT_CLIP) value = _mm_min_ps(hi, _mm_max_ps(lo, value));
    _mm_storeu_ps(dst, value);
}

// The patches of the lanes' tiles for the AVX2 transforms of F(2x2, 3x3) and F(4x4, 3x3), by
// rows (as the AVX-512 transforms read them): lane j of a block holds tile tb + j, and a block of
// 16 tiles is two vectors of 8 lanes, each cut into segments of one tile row (`tile_segments`).
// Lane l of a segment (tiles tx .. of tile row ty) needs the input columns
// tile·(tx + l − q) + j − pl, j = 0 .. tile + 1, of the rows tile·ty + i − pt: patch columns
// j < tile are the positions tile·l + j of the 8·tile floats from column tile·(tx − q) − pl, and
// j = tile, tile + 1 the positions tile·l + j − tile of the window `tile` columns further. A
// window is `tile` masked loads (zero outside the image and the segment's lanes) and shuffles
// that deinterleave it. d[position][lane] then holds the patches, 0 in the padding and past
// `tiles`, for the butterflies, which run along the lanes. Up to 32 lanes.
enum { LANES_MAX = 32 };

typedef struct {
    int segments[2];
    __m256i lanes[2][8];                // the segment's lanes
    ptrdiff_t offset[2][8][6][2];       // [half][segment][patch row][window], from the first image's channel
    int live[2][8][6][2];               // the window has a position to read
    __m256i mask[2][8][6][2][4];        // the window's load masks
} patch_rows_avx2;

__attribute__((target("avx2,fma")))
static void patch_rows_avx2_find(const ck_conv_geometry *g, size_t x_stride, int tw, int per_image, int tiles, int tb,
                                 const int tile, patch_rows_avx2 *r) {
    for (int half = 0; half < 2; half++) {
        segment seg[8];
        const int n = tile_segments(tb + 8 * half, 8, tiles, per_image, tw, seg);
        r->segments[half] = n;
        for (int s = 0; s < n; s++) {
            r->lanes[half][s] = ck_lane_mask256(seg[s].q, seg[s].q + seg[s].len);
            for (int i = 0; i < tile + 2; i++) {
                const int iy = tile * seg[s].ty + i - g->pt;
                for (int k = 0; k < 2; k++) {
                    const int col0 = tile * (seg[s].tx - seg[s].q) + tile * k - g->pl; // input column of position 0
                    r->offset[half][s][i][k] = (ptrdiff_t)seg[s].image * (ptrdiff_t)x_stride + (ptrdiff_t)iy * g->w + col0;
                    // Positions [lo, hi): lanes in the segment, columns in the row.
                    int lo = tile * seg[s].q, hi = tile * (seg[s].q + seg[s].len);
                    if (lo < -col0) lo = -col0;
                    if (hi > g->w - col0) hi = g->w - col0;
                    if (iy < 0 || iy >= g->h) hi = lo;
                    r->live[half][s][i][k] = hi > lo;
                    for (int part = 0; part < tile; part++) r->mask[half][s][i][k][part] = ck_lane_mask256(lo - 8 * part, hi - 8 * part);
                }
            }
        }
    }
}

// The even and odd positions of 16 floats: c[j][l] = a[2l + j].
__attribute__((target("avx2,fma"), always_inline))
static inline void deinterleave2_avx2(__m256 a0, __m256 a1, __m256 c[2]) {
    c[0] = _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(_mm256_shuffle_ps(a0, a1, 0x88)), 0xD8));
    c[1] = _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(_mm256_shuffle_ps(a0, a1, 0xDD)), 0xD8));
}

// Positions 4l + j of 32 floats: c[j][l] = a[4l + j] (a 4 x 8 transpose).
__attribute__((target("avx2,fma"), always_inline))
static inline void deinterleave4_avx2(__m256 a0, __m256 a1, __m256 a2, __m256 a3, __m256 c[4]) {
    const __m256 b0 = _mm256_permute2f128_ps(a0, a2, 0x20), b1 = _mm256_permute2f128_ps(a0, a2, 0x31); // tiles 0|4, 1|5
    const __m256 b2 = _mm256_permute2f128_ps(a1, a3, 0x20), b3 = _mm256_permute2f128_ps(a1, a3, 0x31); // tiles 2|6, 3|7
    const __m256 u0 = _mm256_unpacklo_ps(b0, b1), u1 = _mm256_unpackhi_ps(b0, b1);
    const __m256 u2 = _mm256_unpacklo_ps(b2, b3), u3 = _mm256_unpackhi_ps(b2, b3);
    c[0] = _mm256_shuffle_ps(u0, u2, 0x44);
    c[1] = _mm256_shuffle_ps(u0, u2, 0xEE);
    c[2] = _mm256_shuffle_ps(u1, u3, 0x44);
    c[3] = _mm256_shuffle_ps(u1, u3, 0xEE);
}

// One channel's patches (xc: the channel in the first image) into d[(tile + 2)·i + j][lane].
__attribute__((target("avx2,fma"), always_inline))
static inline void fill_patch_rows_avx2(const patch_rows_avx2 *r, const float *xc, float (*d)[LANES_MAX], const int tile) {
    const int side = tile + 2;
    for (int half = 0; half < 2; half++) {
        for (int i = 0; i < side; i++) {
            __m256 row[6];
            for (int j = 0; j < side; j++) row[j] = _mm256_setzero_ps();
            for (int s = 0; s < r->segments[half]; s++) {
                for (int k = 0; k < 2; k++) {
                    if (!r->live[half][s][i][k]) continue;
                    const float *src = xc + r->offset[half][s][i][k];
                    const __m256i *m = r->mask[half][s][i][k];
                    __m256 c[4];
                    if (tile == 2) {
                        deinterleave2_avx2(_mm256_maskload_ps(src, m[0]), _mm256_maskload_ps(src + 8, m[1]), c);
                    } else {
                        deinterleave4_avx2(_mm256_maskload_ps(src, m[0]), _mm256_maskload_ps(src + 8, m[1]),
                                           _mm256_maskload_ps(src + 16, m[2]), _mm256_maskload_ps(src + 24, m[3]), c);
                    }
                    const __m256 lanes = _mm256_castsi256_ps(r->lanes[half][s]);
                    for (int j = 0; j < (k == 0 ? tile : 2); j++) row[tile * k + j] = _mm256_blendv_ps(row[tile * k + j], c[j], lanes);
                }
            }
            for (int j = 0; j < side; j++) _mm256_storeu_ps(d[side * i + j] + 8 * half, row[j]);
        }
    }
}

// V_ξ = (Bᵀ d B)_ξ of tiles [tb, tb + TB2) (those below `tiles`; the others zero) for input
// channels [pc, pc + kc), into v: 16 panels of kc x TB2, panel ξ at v + ξ * kc * TB2. The
// block's 16 tiles are the lanes: the rows to read are found once per block (`patch_rows_avx2`),
// and per channel the patches are loaded into d[position][lane], so that the butterflies and the
// stores run along the lanes (vectorised for AVX2 by the compiler).
__attribute__((target("avx2,fma")))
static void input_transform_plain(const ck_conv_geometry *g, const float *x, size_t x_stride, int tw, int per_image,
                                  int tiles, int tb, int pc, int kc, float *v) {
    patch_rows_avx2 rows;
    patch_rows_avx2_find(g, x_stride, tw, per_image, tiles, tb, 2, &rows);
    for (int p = 0; p < kc; p++) {
        float d[16][LANES_MAX], u[16][TB2];
        fill_patch_rows_avx2(&rows, x + (size_t)(pc + p) * g->h * g->w, d, 2);
        for (int b = 0; b < 4; b++) { // Bᵀ d
            for (int j = 0; j < TB2; j++) {
                u[0 + b][j] = d[0 + b][j] - d[8 + b][j];
                u[4 + b][j] = d[4 + b][j] + d[8 + b][j];
                u[8 + b][j] = d[8 + b][j] - d[4 + b][j];
                u[12 + b][j] = d[4 + b][j] - d[12 + b][j];
            }
        }
        for (int a = 0; a < 4; a++) { // (Bᵀ d) B
            float *v0 = v + ((size_t)(a * 4 + 0) * kc + p) * TB2, *v1 = v + ((size_t)(a * 4 + 1) * kc + p) * TB2;
            float *v2 = v + ((size_t)(a * 4 + 2) * kc + p) * TB2, *v3 = v + ((size_t)(a * 4 + 3) * kc + p) * TB2;
            const float *u0 = u[a * 4 + 0], *u1 = u[a * 4 + 1], *u2 = u[a * 4 + 2], *u3 = u[a * 4 + 3];
            for (int j = 0; j < TB2; j++) {
                v0[j] = u0[j] - u2[j];
                v1[j] = u1[j] + u2[j];
                v2[j] = u2[j] - u1[j];
                v3[j] = u1[j] - u3[j];
            }
        }
    }
}

// Y = Aᵀ M A for output channels [m0, m1) of tiles [tb, tb + TB2) below `tiles`, plus the bias
// (and y's contents with add_output), then the activation; mb holds M_ξ (mpad x TB2) for ξ in
// 0..15. Pixels past the plane's last row or column are not stored. The transform runs along
// the 16 tiles (lanes) of a channel; four whole tiles side by side store their rows as vectors.
__attribute__((target("avx2,fma")))
static void output_transform_plain(const ck_conv_geometry *g, int tw, int per_image, int tiles, int tb, const float *mb,
                                   int mpad, int m0, int m1, const float *bias, int add_output, int act, float lo, float hi,
                                   float *y, size_t y_stride) {
    const int lanes = tiles - tb < TB2 ? tiles - tb : TB2;
    size_t corner[TB2]; // the tile's first output pixel, from channel 0 of its image
    int rows[TB2], cols[TB2], run[TB2];
    for (int j = 0; j < lanes; j++) {
        const int t = tb + j, image = t / per_image, r = t % per_image, ty = r / tw, tx = r % tw;
        corner[j] = (size_t)image * y_stride + (size_t)(2 * ty) * g->ow + 2 * tx;
        rows[j] = g->oh - 2 * ty < 2 ? g->oh - 2 * ty : 2;
        cols[j] = g->ow - 2 * tx < 2 ? g->ow - 2 * tx : 2;
    }
    // run[j]: tiles j..j+3 are whole and side by side in one tile row (their rows are 8
    // consecutive floats).
    for (int j = 0; j < lanes; j++) {
        run[j] = j % 4 == 0 && j + 4 <= lanes;
        for (int k = 0; k < 4 && run[j]; k++) {
            run[j] = rows[j + k] == 2 && cols[j + k] == 2 && corner[j + k] == corner[j] + 2 * (size_t)k;
        }
    }
    const size_t plane = (size_t)g->oh * g->ow;
    for (int o = m0; o < m1; o++) {
        float out[4][TB2]; // output pixel (a, b) at out[2a + b]
        {
            const float *mm[16];
            for (int xi = 0; xi < 16; xi++) mm[xi] = mb + ((size_t)xi * mpad + o) * TB2;
            for (int j = 0; j < TB2; j++) {
                float u[2][4]; // Aᵀ M
                for (int b = 0; b < 4; b++) {
                    u[0][b] = mm[b][j] + mm[4 + b][j] + mm[8 + b][j];
                    u[1][b] = mm[4 + b][j] - mm[8 + b][j] - mm[12 + b][j];
                }
                for (int a = 0; a < 2; a++) {
                    out[2 * a][j] = u[a][0] + u[a][1] + u[a][2];
                    out[2 * a + 1][j] = u[a][1] - u[a][2] - u[a][3];
                }
            }
        }
        const float add = bias ? bias[o] : 0.0f;
        const __m128 vadd = _mm_set1_ps(add), vlo = _mm_set1_ps(lo), vhi = _mm_set1_ps(hi);
        for (int j = 0; j < lanes; j++) {
            if (run[j] && act != CK_ACT_SILU) {
                // Four tiles' row a: pixels (a, 0) and (a, 1) of each, interleaved (the sums and
                // order of the loop below).
                for (int a = 0; a < 2; a++) {
                    const __m128 e = _mm_loadu_ps(out[2 * a] + j), d = _mm_loadu_ps(out[2 * a + 1] + j);
                    float *dst = y + corner[j] + (size_t)o * plane + (size_t)a * g->ow;
                    store_pixels4(dst, _mm_unpacklo_ps(e, d), vadd, add_output, act, vlo, vhi);
                    store_pixels4(dst + 4, _mm_unpackhi_ps(e, d), vadd, add_output, act, vlo, vhi);
                }
                j += 3;
                continue;
            }
            float *tile = y + corner[j] + (size_t)o * plane;
            for (int a = 0; a < rows[j]; a++) {
                for (int b = 0; b < cols[j]; b++) {
                    store_pixel(tile + (size_t)a * g->ow + b, out[2 * a + b][j], add, add_output, act, lo, hi);
                }
            }
        }
    }
}

// --- F(4x4, 3x3): the transforms in plain C along the block's tiles -------------------------
// Each 4x4 block of output pixels ("tile") reads a 6x6 input patch d and gives
// Y = Aᵀ [ Σ_c U_c ⊙ (Bᵀ d_c B) ] A (Lavin & Gray 2016, eq. 7-8, with interpolation points
// 0, ±1, ±2 and ∞) with
//        [4  0 -5  0  1  0]
//        [0 -4 -4  1  1  0]
//   Bᵀ = [0  4 -4 -1  1  0]        [1  1  1  1  1  0]
//        [0 -2 -1  2  1  0]   Aᵀ = [0  1 -1  2 -2  0]
//        [0  2 -1 -2  1  0]        [0  1  1  4  4  0]
//        [0  4  0 -5  0  1]        [0  1 -1  8 -8  1]
// As for F(2x2, 3x3) on AVX2, the block's tiles are the lanes (16 on AVX2, 32 on AVX-512): the
// patches are loaded per channel into d[position][lane] (`patch_rows_avx2`, `patch_rows4`) and
// the butterflies run along the lanes, vectorised by the compiler for the caller's target.

// Bᵀ applied to six values a stride apart: r[k·stride] = (Bᵀ d)_k for one lane.
#define INPUT4_BUTTERFLY(d0, d1, d2, d3, d4, d5, r0, r1, r2, r3, r4, r5) \
    do {                                                                   \
        const float s12 = (d1) + (d2), s34 = (d3) + (d4);                  \
        const float e12 = (d1) - (d2), e34 = (d4) - (d3);                  \
        const float e42 = (d4) - (d2), e31 = (d3) - (d1);                  \
        r0 = 4.0f * (d0) - 5.0f * (d2) + (d4);                             \
        r1 = s34 - 4.0f * s12;                                             \
        r2 = e34 + 4.0f * e12;                                             \
        r3 = e42 + 2.0f * e31;                                             \
        r4 = e42 - 2.0f * e31;                                             \
        r5 = 4.0f * (d1) - 5.0f * (d3) + (d5);                             \
    } while (0)

// `fill` puts one channel's patches into d, reading the rows found once per block (`patches`:
// a `patch_rows_avx2` or a `patch_rows4`); lanes of no segment keep what d held.
typedef void (*patch_fill_fn)(const void *patches, const float *xc, float (*d)[LANES_MAX]);

// V_ξ = (Bᵀ d B)_ξ of tiles [tb, tb + lanes) (those below `tiles`; the others zero) for input
// channels [pc, pc + kc), into v: 36 panels of kc x lanes, panel ξ at v + ξ * kc * lanes.
__attribute__((always_inline))
static inline void input_transform4(const ck_conv_geometry *g, const float *x, int pc, int kc, float *v, const int lanes,
                                    const void *patches, patch_fill_fn fill) {
    float d[36][LANES_MAX];
    memset(d, 0, sizeof d); // lanes no segment writes (past `tiles`)
    for (int p = 0; p < kc; p++) {
        float u[36][LANES_MAX];
        fill(patches, x + (size_t)(pc + p) * g->h * g->w, d);
        for (int b = 0; b < 6; b++) { // Bᵀ d, column b
            for (int j = 0; j < lanes; j++) {
                INPUT4_BUTTERFLY(d[b][j], d[6 + b][j], d[12 + b][j], d[18 + b][j], d[24 + b][j], d[30 + b][j],
                                 u[b][j], u[6 + b][j], u[12 + b][j], u[18 + b][j], u[24 + b][j], u[30 + b][j]);
            }
        }
        for (int a = 0; a < 6; a++) { // (Bᵀ d) B, row a
            float *va[6];
            for (int b = 0; b < 6; b++) va[b] = v + ((size_t)(a * 6 + b) * kc + p) * lanes;
            for (int j = 0; j < lanes; j++) {
                INPUT4_BUTTERFLY(u[a * 6][j], u[a * 6 + 1][j], u[a * 6 + 2][j], u[a * 6 + 3][j], u[a * 6 + 4][j],
                                 u[a * 6 + 5][j], va[0][j], va[1][j], va[2][j], va[3][j], va[4][j], va[5][j]);
            }
        }
    }
}

// Aᵀ applied to six values: the four outputs.
#define OUTPUT4_BUTTERFLY(m0, m1, m2, m3, m4, m5, r0, r1, r2, r3) \
    do {                                                          \
        const float s12 = (m1) + (m2), s34 = (m3) + (m4);         \
        const float e12 = (m1) - (m2), e34 = (m3) - (m4);         \
        r0 = (m0) + s12 + s34;                                    \
        r1 = e12 + 2.0f * e34;                                    \
        r2 = s12 + 4.0f * s34;                                    \
        r3 = e12 + 8.0f * e34 + (m5);                             \
    } while (0)

// Aᵀ M A of output channel o for the block's lanes: pixel (a, b) of lane j's tile at out[4a + b][j];
// mb holds M_ξ (mpad x lanes) for ξ in 0..35.
__attribute__((always_inline))
static inline void output_tiles4(const float *mb, int mpad, int o, const int lanes, float (*out)[LANES_MAX]) {
    const float *mm[36];
    for (int xi = 0; xi < 36; xi++) mm[xi] = mb + ((size_t)xi * mpad + o) * lanes;
    float t[4][6][LANES_MAX]; // Aᵀ M
    for (int b = 0; b < 6; b++) {
        for (int j = 0; j < lanes; j++) {
            OUTPUT4_BUTTERFLY(mm[b][j], mm[6 + b][j], mm[12 + b][j], mm[18 + b][j], mm[24 + b][j], mm[30 + b][j],
                              t[0][b][j], t[1][b][j], t[2][b][j], t[3][b][j]);
        }
    }
    for (int a = 0; a < 4; a++) { // (Aᵀ M) A
        for (int j = 0; j < lanes; j++) {
            OUTPUT4_BUTTERFLY(t[a][0][j], t[a][1][j], t[a][2][j], t[a][3][j], t[a][4][j], t[a][5][j],
                              out[4 * a][j], out[4 * a + 1][j], out[4 * a + 2][j], out[4 * a + 3][j]);
        }
    }
}

// Y = Aᵀ M A for output channels [m0, m1) of tiles [tb, tb + lanes) below `tiles`, plus the
// bias (and y's contents with add_output), then the activation; mb holds M_ξ (mpad x lanes) for
// ξ in 0..35. Pixels past the plane's last row or column are not stored.
__attribute__((always_inline))
static inline void output_transform4(const ck_conv_geometry *g, int tw, int per_image, int tiles, int tb, const float *mb,
                                     int mpad, int m0, int m1, const float *bias, int add_output, int act, float lo,
                                     float hi, float *y, size_t y_stride, const int lanes) {
    const int used = tiles - tb < lanes ? tiles - tb : lanes;
    size_t corner[LANES_MAX]; // the tile's first output pixel, from channel 0 of its image
    int rows[LANES_MAX], cols[LANES_MAX], whole[LANES_MAX];
    for (int j = 0; j < used; j++) {
        const int t = tb + j, image = t / per_image, r = t % per_image, ty = r / tw, tx = r % tw;
        corner[j] = (size_t)image * y_stride + (size_t)(4 * ty) * g->ow + 4 * tx;
        rows[j] = g->oh - 4 * ty < 4 ? g->oh - 4 * ty : 4;
        cols[j] = g->ow - 4 * tx < 4 ? g->ow - 4 * tx : 4;
        whole[j] = rows[j] == 4 && cols[j] == 4;
    }
    const size_t plane = (size_t)g->oh * g->ow;
    for (int o = m0; o < m1; o++) {
        float out[16][LANES_MAX]; // output pixel (a, b) at out[4a + b]
        output_tiles4(mb, mpad, o, lanes, out);
        const float add = bias ? bias[o] : 0.0f;
        const __m128 vadd = _mm_set1_ps(add), vlo = _mm_set1_ps(lo), vhi = _mm_set1_ps(hi);
        for (int j = 0; j < used; j += 4) {
            if (j + 4 <= used && act != CK_ACT_SILU && whole[j] && whole[j + 1] && whole[j + 2] && whole[j + 3]) {
                // Four whole tiles: a 4x4 transpose turns lanes j..j+3 of pixel row a into the
                // four tiles' rows, each stored as one vector (the sums and order of the loop below).
                for (int a = 0; a < 4; a++) {
                    __m128 r[4] = { _mm_loadu_ps(out[4 * a] + j), _mm_loadu_ps(out[4 * a + 1] + j),
                                    _mm_loadu_ps(out[4 * a + 2] + j), _mm_loadu_ps(out[4 * a + 3] + j) };
                    _MM_TRANSPOSE4_PS(r[0], r[1], r[2], r[3]);
                    for (int k = 0; k < 4; k++) {
                        store_pixels4(y + corner[j + k] + (size_t)o * plane + (size_t)a * g->ow, r[k], vadd, add_output, act,
                                      vlo, vhi);
                    }
                }
                continue;
            }
            for (int k = j; k < j + 4 && k < used; k++) {
                float *tile = y + corner[k] + (size_t)o * plane;
                for (int a = 0; a < rows[k]; a++) {
                    for (int b = 0; b < cols[k]; b++) {
                        store_pixel(tile + (size_t)a * g->ow + b, out[4 * a + b][k], add, add_output, act, lo, hi);
                    }
                }
            }
        }
    }
}

// The F(4x4, 3x3) transforms compiled for each level, at the level's panel width.
__attribute__((target("avx2,fma")))
static void fill_patch_rows4_avx2(const void *patches, const float *xc, float (*d)[LANES_MAX]) {
    fill_patch_rows_avx2(patches, xc, d, 4);
}

__attribute__((target("avx2,fma")))
static void input_transform4_avx2(const ck_conv_geometry *g, const float *x, size_t x_stride, int tw, int per_image,
                                  int tiles, int tb, int pc, int kc, float *v) {
    patch_rows_avx2 rows;
    patch_rows_avx2_find(g, x_stride, tw, per_image, tiles, tb, 4, &rows);
    input_transform4(g, x, pc, kc, v, NR256, &rows, fill_patch_rows4_avx2);
}

__attribute__((target("avx2,fma")))
static void output_transform4_avx2(const ck_conv_geometry *g, int tw, int per_image, int tiles, int tb, const float *mb,
                                   int mpad, int m0, int m1, const float *bias, int add_output, int act, float lo, float hi,
                                   float *y, size_t y_stride) {
    output_transform4(g, tw, per_image, tiles, tb, mb, mpad, m0, m1, bias, add_output, act, lo, hi, y, y_stride, NR256);
}

// The F(4x4, 3x3) patches of a block of 32 tiles by rows instead of gathers, on AVX-512 (the
// F(2x2, 3x3) transform's approach at stride 4). Lane l of a segment (tiles tx .. of tile row ty)
// needs input columns 4(tx + l − q) + j − pl, j = 0..5, of rows 4ty + i − pt: the positions
// 4l + j of the 66 floats from column 4(tx − q) − pl. Four masked loads read positions 0-63 (zero
// outside the image and the positions no lane of the segment needs); the even and odd positions
// of each 32 (four permutes), then their even and odd ones (four more), give patch columns 0-3;
// columns 4 and 5 are columns 0 and 1 one lane on, with positions 64 and 65 (two one-float
// loads) in lane 15. Each segment's lanes of the six columns are stored into d with its mask;
// `input_transform4` zeroes d once, so lanes past `tiles` stay zero.
typedef struct {
    int segments[2];
    __mmask16 lanes[2][16];
    ptrdiff_t offset[2][16][6];   // [half][segment][patch row], from the first image's channel
    __mmask16 mask[2][16][6][6];  // load masks of positions 0-63 (four parts), 64 and 65; all 0: a row outside
} patch_rows4;

static void patch_rows4_find(const ck_conv_geometry *g, size_t x_stride, int tw, int per_image, int tiles, int tb,
                             patch_rows4 *r) {
    for (int half = 0; half < 2; half++) {
        segment seg[16];
        const int n = tile_segments(tb + 16 * half, 16, tiles, per_image, tw, seg);
        r->segments[half] = n;
        for (int s = 0; s < n; s++) {
            r->lanes[half][s] = (__mmask16)(((1u << seg[s].len) - 1u) << seg[s].q);
            const int first = 4 * seg[s].q, end = 4 * (seg[s].q + seg[s].len) + 2; // positions the lanes read
            const int col0 = 4 * (seg[s].tx - seg[s].q) - g->pl;                    // input column of position 0
            for (int i = 0; i < 6; i++) {
                const int iy = 4 * seg[s].ty + i - g->pt;
                r->offset[half][s][i] = (ptrdiff_t)seg[s].image * (ptrdiff_t)x_stride + (ptrdiff_t)iy * g->w + col0;
                const int inside = iy >= 0 && iy < g->h;
                const unsigned long long m = inside ? ck_bit_range(first, end, 64) & ck_bit_range(-col0, g->w - col0, 64) : 0;
                for (int part = 0; part < 4; part++) r->mask[half][s][i][part] = (__mmask16)(m >> (16 * part));
                for (int e = 0; e < 2; e++) {
                    const int position = 64 + e;
                    r->mask[half][s][i][4 + e] = (__mmask16)(inside && position >= first && position < end
                                                             && col0 + position >= 0 && col0 + position < g->w);
                }
            }
        }
    }
}

__attribute__((target("avx512f")))
static void fill_patch_rows4(const void *patches, const float *xc, float (*d)[LANES_MAX]) {
    const patch_rows4 *r = patches;
    const __m512i lane = _mm512_set_epi32(15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0);
    const __m512i even = _mm512_add_epi32(lane, lane), odd = _mm512_add_epi32(even, _mm512_set1_epi32(1));
    for (int half = 0; half < 2; half++) {
        for (int s = 0; s < r->segments[half]; s++) {
            const __mmask16 lanes = r->lanes[half][s];
            for (int i = 0; i < 6; i++) {
                const __mmask16 *m = r->mask[half][s][i];
                float *const out = d[6 * i] + 16 * half;
                if (!(m[0] | m[1] | m[2] | m[3] | m[4] | m[5])) { // a row outside the image
                    for (int j = 0; j < 6; j++) _mm512_mask_storeu_ps(out + j * LANES_MAX, lanes, _mm512_setzero_ps());
                    continue;
                }
                const float *src = xc + r->offset[half][s][i];
                const __m512 w0 = _mm512_maskz_loadu_ps(m[0], src), w1 = _mm512_maskz_loadu_ps(m[1], src + 16);
                const __m512 w2 = _mm512_maskz_loadu_ps(m[2], src + 32), w3 = _mm512_maskz_loadu_ps(m[3], src + 48);
                // Positions 2k (e) and 2k + 1 (o) of each 32; then 4l + j.
                const __m512 e01 = _mm512_permutex2var_ps(w0, even, w1), o01 = _mm512_permutex2var_ps(w0, odd, w1);
                const __m512 e23 = _mm512_permutex2var_ps(w2, even, w3), o23 = _mm512_permutex2var_ps(w2, odd, w3);
                const __m512 c0 = _mm512_permutex2var_ps(e01, even, e23), c1 = _mm512_permutex2var_ps(o01, even, o23);
                const __m512 c2 = _mm512_permutex2var_ps(e01, odd, e23), c3 = _mm512_permutex2var_ps(o01, odd, o23);
                const __m512i p64 = _mm512_castps_si512(_mm512_maskz_loadu_ps(m[4], src + 64));
                const __m512i p65 = _mm512_castps_si512(_mm512_maskz_loadu_ps(m[5], src + 65));
                const __m512 c4 = _mm512_castsi512_ps(_mm512_alignr_epi32(p64, _mm512_castps_si512(c0), 1));
                const __m512 c5 = _mm512_castsi512_ps(_mm512_alignr_epi32(p65, _mm512_castps_si512(c1), 1));
                _mm512_mask_storeu_ps(out, lanes, c0);
                _mm512_mask_storeu_ps(out + LANES_MAX, lanes, c1);
                _mm512_mask_storeu_ps(out + 2 * LANES_MAX, lanes, c2);
                _mm512_mask_storeu_ps(out + 3 * LANES_MAX, lanes, c3);
                _mm512_mask_storeu_ps(out + 4 * LANES_MAX, lanes, c4);
                _mm512_mask_storeu_ps(out + 5 * LANES_MAX, lanes, c5);
            }
        }
    }
}

__attribute__((target("avx512f,avx2,fma")))
static void input_transform4_avx512(const ck_conv_geometry *g, const float *x, size_t x_stride, int tw, int per_image,
                                    int tiles, int tb, int pc, int kc, float *v) {
    patch_rows4 rows;
    patch_rows4_find(g, x_stride, tw, per_image, tiles, tb, &rows);
    input_transform4(g, x, pc, kc, v, NR512, &rows, fill_patch_rows4);
}

// Y of F(4x4, 3x3) on AVX-512: the pixels of `output_tiles4`, stored by rows as the F(2x2, 3x3)
// transform stores them. Per block half of 16 lanes and output row a, the four pixels of each
// lane's tile row are interleaved into 64 consecutive floats (lane l at 4l .. 4l + 3) by eight
// permutes, and each segment of lanes (one tile row) is stored with masks at its columns. The
// store adds and activates as store_pixel does, in the same order; SiLU takes output_transform4.
__attribute__((target("avx512f,avx2,fma")))
static void output_transform4_avx512(const ck_conv_geometry *g, int tw, int per_image, int tiles, int tb, const float *mb,
                                     int mpad, int m0, int m1, const float *bias, int add_output, int act, float lo, float hi,
                                     float *y, size_t y_stride) {
    if (act == CK_ACT_SILU) {
        output_transform4(g, tw, per_image, tiles, tb, mb, mpad, m0, m1, bias, add_output, act, lo, hi, y, y_stride, NR512);
        return;
    }
    // Pairs: lanes 0-7 (first) or 8-15 (second) of two vectors, alternating. Quads: float pairs
    // 0-3 (low) or 4-7 (high) of two such vectors, alternating.
    const __m512i first = _mm512_set_epi32(23, 7, 22, 6, 21, 5, 20, 4, 19, 3, 18, 2, 17, 1, 16, 0);
    const __m512i second = _mm512_set_epi32(31, 15, 30, 14, 29, 13, 28, 12, 27, 11, 26, 10, 25, 9, 24, 8);
    const __m512i low = _mm512_set_epi32(23, 22, 7, 6, 21, 20, 5, 4, 19, 18, 3, 2, 17, 16, 1, 0);
    const __m512i high = _mm512_set_epi32(31, 30, 15, 14, 29, 28, 13, 12, 27, 26, 11, 10, 25, 24, 9, 8);
    const __m512 vlo = _mm512_set1_ps(lo), vhi = _mm512_set1_ps(hi);
    const size_t plane = (size_t)g->oh * g->ow;
    int segments[2];
    ptrdiff_t offset[2][16][4];     // [half][segment][output row]: the row's column 4(tx − q), from channel 0 of the image
    __mmask16 keep[2][16][4][4];    // the four 16-float parts' store masks
    for (int half = 0; half < 2; half++) {
        segment seg[16];
        segments[half] = tile_segments(tb + 16 * half, 16, tiles, per_image, tw, seg);
        for (int s = 0; s < segments[half]; s++) {
            const int col0 = 4 * (seg[s].tx - seg[s].q); // output column of position 0
            for (int a = 0; a < 4; a++) {
                const int oy = 4 * seg[s].ty + a;
                offset[half][s][a] = (ptrdiff_t)seg[s].image * (ptrdiff_t)y_stride + (ptrdiff_t)oy * g->ow + col0;
                const unsigned long long m =
                    oy < g->oh ? ck_bit_range(4 * seg[s].q, 4 * (seg[s].q + seg[s].len), 64) & ck_bit_range(-col0, g->ow - col0, 64) : 0;
                for (int part = 0; part < 4; part++) keep[half][s][a][part] = (__mmask16)(m >> (16 * part));
            }
        }
    }
    for (int o = m0; o < m1; o++) {
        float out[16][LANES_MAX];
        output_tiles4(mb, mpad, o, NR512, out);
        const __m512 add = _mm512_set1_ps(bias ? bias[o] : 0.0f);
        float *yo = y + (size_t)o * plane;
        for (int half = 0; half < 2; half++) {
            for (int a = 0; a < 4; a++) {
                const __m512 c0 = _mm512_loadu_ps(out[4 * a] + 16 * half), c1 = _mm512_loadu_ps(out[4 * a + 1] + 16 * half);
                const __m512 c2 = _mm512_loadu_ps(out[4 * a + 2] + 16 * half), c3 = _mm512_loadu_ps(out[4 * a + 3] + 16 * half);
                const __m512 p01 = _mm512_permutex2var_ps(c0, first, c1), q01 = _mm512_permutex2var_ps(c0, second, c1);
                const __m512 p23 = _mm512_permutex2var_ps(c2, first, c3), q23 = _mm512_permutex2var_ps(c2, second, c3);
                // Lanes 0-3, 4-7, 8-11, 12-15: four pixels each.
                const __m512 row[4] = { _mm512_permutex2var_ps(p01, low, p23), _mm512_permutex2var_ps(p01, high, p23),
                                        _mm512_permutex2var_ps(q01, low, q23), _mm512_permutex2var_ps(q01, high, q23) };
                for (int s = 0; s < segments[half]; s++) {
                    for (int part = 0; part < 4; part++) {
                        const __mmask16 m = keep[half][s][a][part];
                        if (!m) continue;
                        float *dst = yo + offset[half][s][a] + 16 * part;
                        __m512 v = _mm512_add_ps(row[part], add);
                        if (add_output) v = _mm512_add_ps(v, _mm512_maskz_loadu_ps(m, dst));
                        if (act == CK_ACT_RELU) v = _mm512_max_ps(v, _mm512_setzero_ps());
                        else if (act == CK_ACT_CLIP) v = _mm512_min_ps(vhi, _mm512_max_ps(vlo, v));
                        _mm512_mask_storeu_ps(dst, m, v);
                    }
                }
            }
        }
    }
}

// The three steps over tiles [t0, t1) and output rows [m0, m1) at `level` for F(tile x tile,
// 3x3), `block` tiles (the kernel's panel width) at a time: V_ξ by `input` into the B panels, the
// products for each of the (tile + 2)² positions on the level's GEMM tile (accumulated over depth
// blocks of KC, as the weights are packed), then Y by `output`.
typedef void (*input_transform_fn)(const ck_conv_geometry *g, const float *x, size_t x_stride, int tw, int per_image,
                                   int tiles, int tb, int pc, int kc, float *v);
typedef void (*output_transform_fn)(const ck_conv_geometry *g, int tw, int per_image, int tiles, int tb, const float *mb,
                                    int mpad, int m0, int m1, const float *bias, int add_output, int act, float lo, float hi,
                                    float *y, size_t y_stride);

static int winograd_blocks(int level, int block, int tile, input_transform_fn input, output_transform_fn output,
                           const float *packed, int m, int m0, int m1, const ck_conv_geometry *g, const float *x, int images,
                           int t0, int t1, const float *bias, int add_output, int act, float lo, float hi, float *y) {
    int mr, nr;
    ck_kernel_fn kernel;
    if (!ck_tile(level, &mr, &nr, &kernel) || nr != block) return -1;
    const int count = positions(tile);
    const int c = g->c, tw = (g->ow + tile - 1) / tile, per_image = tw * ((g->oh + tile - 1) / tile), tiles = per_image * images;
    const size_t x_stride = (size_t)c * g->h * g->w, y_stride = (size_t)m * g->oh * g->ow;
    const int mpad = ((m + mr - 1) / mr) * mr;
    const size_t per = ck_packed_weights_count(level, m, c);
    float *v = ck_scratch(0, (size_t)count * KC * block);
    float *mb = ck_scratch(1, (size_t)count * mpad * block);
    if (!v || !mb) return -1;
    if (t1 > tiles) t1 = tiles;
    const int r0 = m0 - m0 % mr;
    for (int tb = t0; tb < t1; tb += block) {
        for (int pc = 0; pc < c; pc += KC) {
            const int kc = c - pc < KC ? c - pc : KC;
            input(g, x, x_stride, tw, per_image, t1, tb, pc, kc, v);
            for (int xi = 0; xi < count; xi++) {
                const float *ablock = packed + xi * per + (size_t)pc * mpad;
                const float *bpanel = v + (size_t)xi * kc * block;
                for (int ir = r0; ir < m1; ir += mr) {
                    ck_epilogue ep = { .accumulate = pc > 0 };
                    kernel(kc, ablock + (size_t)ir * kc, bpanel, mb + ((size_t)xi * mpad + ir) * block, block, &ep);
                }
            }
        }
        output(g, tw, per_image, t1, tb, mb, mpad, m0, m1, bias, add_output, act, lo, hi, y, y_stride);
    }
    return 0;
}

int ck_winograd(int level, int tile, const float *packed, int m, int m0, int m1, const ck_conv_geometry *g, const float *x,
                int images, int t0, int t1, const float *bias, int add_output, int act, float lo, float hi, float *y) {
    if (level < 1 || level > ck_cpu_level() || (tile != 2 && tile != 4)) return -1;
    if (tile == 4) {
        return level == 2 ? winograd_blocks(2, NR512, 4, input_transform4_avx512, output_transform4_avx512, packed, m, m0,
                                            m1, g, x, images, t0, t1, bias, add_output, act, lo, hi, y)
                          : winograd_blocks(1, NR256, 4, input_transform4_avx2, output_transform4_avx2, packed, m, m0,
                                            m1, g, x, images, t0, t1, bias, add_output, act, lo, hi, y);
    }
    return level == 2 ? winograd_blocks(2, TB, 2, input_transform, output_transform, packed, m, m0, m1, g, x, images, t0,
                                        t1, bias, add_output, act, lo, hi, y)
                      : winograd_blocks(1, TB2, 2, input_transform_plain, output_transform_plain, packed, m, m0, m1, g, x,
                                        images, t0, t1, bias, add_output, act, lo, hi, y);
}
