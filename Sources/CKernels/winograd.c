// 3x3 stride-1 convolution by Winograd's minimal filtering F(2x2, 3x3) (Lavin & Gray, "Fast
// algorithms for convolutional neural networks", CVPR 2016, eq. 7-8): each 2x2 block of output
// pixels ("tile") of one output channel is Y = Aᵀ [ Σ_c (G g_c Gᵀ) ⊙ (Bᵀ d_c B) ] A, with g_c the
// 3x3 filter of input channel c and d_c the 4x4 input patch under the tile. With the 16
// element positions ξ of the 4x4 transformed domain as separate matrices, the sum over c is
// 16 GEMMs: M_ξ (M, tiles) = U_ξ (M, C) · V_ξ (C, tiles), 16 multiplications per tile and
// channel pair instead of 36 (2.25x fewer). F(2x2, 3x3)'s transforms only add and halve, so its
// error stays at the level of the direct convolution's (F(4x4, 3x3) would save 4x at a cost in
// accuracy the engine's 1e-4 parity with ONNX Runtime does not allow).
//
//        [1  0 -1  0]        [1    0    0 ]
//   Bᵀ = [0  1  1  0]    G = [1/2  1/2  1/2]    Aᵀ = [1 1  1  0]
//        [0 -1  1  0]        [1/2 -1/2  1/2]         [0 1 -1 -1]
//        [0  1  0 -1]        [0    0    1 ]
//
// U_ξ are made once per weight tensor and packed for the GEMM kernel (ck_winograd_pack_weights);
// V_ξ are made per call straight into the kernel's B panels (16 tiles per vector, input pixels
// gathered with the padding masked to zero); M_ξ go to a scratch block, from which the output
// transform adds the bias, applies the activation and scatters the 2x2 pixels. AVX-512 only.
#include "CKernels.h"
#include "microkernel.h"
#include <immintrin.h>
#include <string.h>

/// Tiles per block: 32 (one kernel panel); V (16 x KC x 32) and M (16 x M x 32) stay in L2.
enum { TB = 32 };

size_t ck_winograd_weights_count(int m, int c) {
    return 16 * ck_packed_weights_count(2, m, c);
}

void ck_winograd_pack_weights(int m, int c, const float *w, float *out, float *scratch) {
    // scratch: 16 * m * c floats, U_ξ row-major.
    for (int o = 0; o < m; o++) {
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
    const size_t per = ck_packed_weights_count(2, m, c);
    for (int xi = 0; xi < 16; xi++) ck_pack_weights(2, m, c, scratch + (size_t)xi * m * c, out + xi * per);
}

// V_ξ for channels [p0, p0+kc) and the TB tiles from t0 (tiles past `tiles` read as zero),
// written as one NR512-wide panel per ξ: v[ξ][p][lane].
__attribute__((target("avx512f")))
static void input_transform(const ck_conv_geometry *g, const float *x, size_t x_stride, int tw, int per_image, int tiles,
                            int t0, int p0, int kc, float *v) {
    const __m512i lane = _mm512_set_epi32(15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0);
    for (int half = 0; half < 2; half++) {
        // Per lane: the tile's top-left input pixel (may lie in the padding) and which of its
        // 4 rows and 4 columns are inside the image.
        const __m512i t = _mm512_add_epi32(lane, _mm512_set1_epi32(t0 + 16 * half));
        const __mmask16 live = _mm512_cmplt_epi32_mask(t, _mm512_set1_epi32(tiles));
        // Tile t is tile t % per_image of image t / per_image (a panel may span two images).
        int ty[16], tx[16], image[16];
        _mm512_storeu_si512(ty, t);
        for (int l = 0; l < 16; l++) {
            image[l] = ty[l] < tiles ? ty[l] / per_image : 0;
            const int local = ty[l] - image[l] * per_image;
            tx[l] = local % tw;
            ty[l] = local / tw;
        }
        const __m512i iy = _mm512_sub_epi32(_mm512_slli_epi32(_mm512_loadu_si512(ty), 1), _mm512_set1_epi32(g->pt));
        const __m512i ix = _mm512_sub_epi32(_mm512_slli_epi32(_mm512_loadu_si512(tx), 1), _mm512_set1_epi32(g->pl));
        __mmask16 row[4], col[4];
        for (int k = 0; k < 4; k++) {
            const __m512i r = _mm512_add_epi32(iy, _mm512_set1_epi32(k)), q = _mm512_add_epi32(ix, _mm512_set1_epi32(k));
            row[k] = live & _mm512_cmpge_epi32_mask(r, _mm512_setzero_si512()) & _mm512_cmplt_epi32_mask(r, _mm512_set1_epi32(g->h));
            col[k] = _mm512_cmpge_epi32_mask(q, _mm512_setzero_si512()) & _mm512_cmplt_epi32_mask(q, _mm512_set1_epi32(g->w));
        }
        // Offsets from the first image's channel p0 + p (int32: the batch block stays below 2^31 floats).
        const __m512i base = _mm512_add_epi32(_mm512_add_epi32(_mm512_mullo_epi32(iy, _mm512_set1_epi32(g->w)), ix),
                                              _mm512_mullo_epi32(_mm512_loadu_si512(image), _mm512_set1_epi32((int)x_stride)));
        for (int p = 0; p < kc; p++) {
            const float *xc = x + (size_t)(p0 + p) * g->h * g->w;
            __m512 d[4][4];
            for (int i = 0; i < 4; i++)
                for (int j = 0; j < 4; j++)
                    d[i][j] = _mm512_mask_i32gather_ps(_mm512_setzero_ps(), row[i] & col[j],
                                                       _mm512_add_epi32(base, _mm512_set1_epi32(i * g->w + j)), xc, 4);
            __m512 s[4][4]; // Bᵀ d
            for (int j = 0; j < 4; j++) {
                s[0][j] = _mm512_sub_ps(d[0][j], d[2][j]);
                s[1][j] = _mm512_add_ps(d[1][j], d[2][j]);
                s[2][j] = _mm512_sub_ps(d[2][j], d[1][j]);
                s[3][j] = _mm512_sub_ps(d[1][j], d[3][j]);
            }
            for (int i = 0; i < 4; i++) { // (Bᵀ d) B
                const __m512 r[4] = { _mm512_sub_ps(s[i][0], s[i][2]), _mm512_add_ps(s[i][1], s[i][2]),
                                      _mm512_sub_ps(s[i][2], s[i][1]), _mm512_sub_ps(s[i][1], s[i][3]) };
                for (int j = 0; j < 4; j++)
                    _mm512_store_ps(v + ((size_t)(i * 4 + j) * kc + p) * NR512 + 16 * half, r[j]);
            }
        }
    }
}

// Y for rows [m0, m1) and the TB tiles from t0 from M (16 x mpad x TB): Aᵀ M A + bias, act,
// scattered to the 2x2 pixels that lie inside the output.
__attribute__((target("avx512f")))
static void output_transform(const ck_conv_geometry *g, int tw, int per_image, int tiles, int t0, const float *mb, int mpad,
                             int m0, int m1, const float *bias, int act, float lo, float hi, float *y, size_t y_stride) {
    const __m512i lane = _mm512_set_epi32(15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0);
    const __m512 zero = _mm512_setzero_ps(), vlo = _mm512_set1_ps(lo), vhi = _mm512_set1_ps(hi);
    const size_t plane = (size_t)g->oh * g->ow;
    for (int half = 0; half < 2; half++) {
        const __m512i t = _mm512_add_epi32(lane, _mm512_set1_epi32(t0 + 16 * half));
        const __mmask16 live = _mm512_cmplt_epi32_mask(t, _mm512_set1_epi32(tiles));
        if (!live) continue;
        int ty[16], tx[16], image[16];
        _mm512_storeu_si512(ty, t);
        for (int l = 0; l < 16; l++) {
            image[l] = ty[l] < tiles ? ty[l] / per_image : 0;
            const int local = ty[l] - image[l] * per_image;
            tx[l] = local % tw;
            ty[l] = local / tw;
        }
        const __m512i oy = _mm512_slli_epi32(_mm512_loadu_si512(ty), 1), ox = _mm512_slli_epi32(_mm512_loadu_si512(tx), 1);
        const __m512i at = _mm512_add_epi32(_mm512_add_epi32(_mm512_mullo_epi32(oy, _mm512_set1_epi32(g->ow)), ox),
                                            _mm512_mullo_epi32(_mm512_loadu_si512(image), _mm512_set1_epi32((int)y_stride)));
        // Pixel (a, b) of each tile: inside when 2ty + a < oh and 2tx + b < ow.
        __mmask16 keep[2][2];
        for (int a = 0; a < 2; a++)
            for (int b = 0; b < 2; b++)
                keep[a][b] = live & _mm512_cmplt_epi32_mask(_mm512_add_epi32(oy, _mm512_set1_epi32(a)), _mm512_set1_epi32(g->oh))
                                  & _mm512_cmplt_epi32_mask(_mm512_add_epi32(ox, _mm512_set1_epi32(b)), _mm512_set1_epi32(g->ow));
        const __m512i offset[2][2] = { { at, _mm512_add_epi32(at, _mm512_set1_epi32(1)) },
                                       { _mm512_add_epi32(at, _mm512_set1_epi32(g->ow)), _mm512_add_epi32(at, _mm512_set1_epi32(g->ow + 1)) } };
        for (int o = m0; o < m1; o++) {
            __m512 mm[4][4];
            for (int xi = 0; xi < 16; xi++) mm[xi / 4][xi % 4] = _mm512_load_ps(mb + ((size_t)xi * mpad + o) * TB + 16 * half);
            __m512 s[2][4]; // Aᵀ M
            for (int j = 0; j < 4; j++) {
                s[0][j] = _mm512_add_ps(_mm512_add_ps(mm[0][j], mm[1][j]), mm[2][j]);
                s[1][j] = _mm512_sub_ps(_mm512_sub_ps(mm[1][j], mm[2][j]), mm[3][j]);
            }
            const __m512 b = _mm512_set1_ps(bias ? bias[o] : 0.0f);
            float *yo = y + (size_t)o * plane;
            for (int a = 0; a < 2; a++) {
                __m512 r[2] = { _mm512_add_ps(_mm512_add_ps(_mm512_add_ps(s[a][0], s[a][1]), s[a][2]), b),
                                _mm512_add_ps(_mm512_sub_ps(_mm512_sub_ps(s[a][1], s[a][2]), s[a][3]), b) };
                for (int c = 0; c < 2; c++) {
                    if (act == CK_ACT_RELU) r[c] = _mm512_max_ps(r[c], zero);
                    else if (act == CK_ACT_CLIP) r[c] = _mm512_min_ps(_mm512_max_ps(r[c], vlo), vhi);
                    _mm512_mask_i32scatter_ps(yo, keep[a][c], offset[a][c], r[c], 4);
                }
            }
        }
    }
}

int ck_winograd(const float *packed, int m, int m0, int m1, const ck_conv_geometry *g, const float *x, int images,
                int t0, int t1, const float *bias, int act, float lo, float hi, float *y) {
    int mr, nr;
    ck_kernel_fn kernel;
    if (ck_sgemm_level() < 2 || !ck_tile(2, &mr, &nr, &kernel)) return -1;
    const int c = g->c, tw = (g->ow + 1) / 2, per_image = tw * ((g->oh + 1) / 2), tiles = per_image * images;
    const size_t x_stride = (size_t)c * g->h * g->w, y_stride = (size_t)m * g->oh * g->ow;
    const int mpad = ((m + mr - 1) / mr) * mr;
    const size_t per = ck_packed_weights_count(2, m, c);
    float *v = ck_scratch(0, (size_t)16 * KC * TB);
    float *mb = ck_scratch(1, (size_t)16 * mpad * TB);
    if (!v || !mb) return -1;
    if (t1 > tiles) t1 = tiles;
    const int r0 = m0 - m0 % mr;
    for (int tb = t0; tb < t1; tb += TB) {
        for (int pc = 0; pc < c; pc += KC) {
            const int kc = c - pc < KC ? c - pc : KC;
            input_transform(g, x, x_stride, tw, per_image, t1, tb, pc, kc, v);
            for (int xi = 0; xi < 16; xi++) {
                const float *ablock = packed + xi * per + (size_t)pc * mpad;
                const float *bpanel = v + (size_t)xi * kc * NR512;
                for (int ir = r0; ir < m1; ir += mr) {
                    ck_epilogue ep = { .accumulate = pc > 0 };
                    kernel(kc, ablock + (size_t)ir * kc, bpanel, mb + ((size_t)xi * mpad + ir) * TB, TB, &ep);
                }
            }
        }
        output_transform(g, tw, per_image, t1, tb, mb, mpad, m0, m1, bias, act, lo, hi, y, y_stride);
    }
    return 0;
}
