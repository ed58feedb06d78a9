// The C kernels under AddressSanitizer and UndefinedBehaviorSanitizer (`make sanitize`, part of
// `make test`): every kernel family on every level this CPU runs (AVX-512, AVX2, and the plain C
// loops), on odd shapes that cut tiles, panels and vectors at their edges, against direct
// loops. Inputs and outputs are allocated at their exact sizes, so that a read or write one
// float past an end is reported; any report, or a result off by more than the tolerance, fails.
#include "CKernels.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int failures = 0, checks = 0;
static unsigned long long state = 88172645463325252ULL;

static float uniform(void) {  // xorshift64, in [-1, 1)
    state ^= state << 13; state ^= state >> 7; state ^= state << 17;
    return (float)((state >> 40) / (double)(1ULL << 24)) * 2.0f - 1.0f;
}

static float *random_floats(size_t n) {
    float *p = malloc(n * sizeof(float));
    for (size_t i = 0; i < n; i++) p[i] = uniform();
    return p;
}

// Packed buffers the kernels read with aligned vector loads: 64-byte aligned, rounded up.
static float *aligned_floats(size_t n) {
    size_t bytes = (n * sizeof(float) + 63) / 64 * 64;
    float *p = aligned_alloc(64, bytes ? bytes : 64);
    memset(p, 0, bytes ? bytes : 64);
    return p;
}

static void expect_close(const char *what, int level, const float *got, const float *want, size_t n, float tol) {
    checks++;
    float worst = 0;
    size_t at = 0;
    for (size_t i = 0; i < n; i++) {
        float d = fabsf(got[i] - want[i]) / (1.0f + fabsf(want[i]));
        if (!(d <= worst)) { worst = d; at = i; }
    }
    if (!(worst <= tol)) {
        failures++;
        fprintf(stderr, "FAIL %s (level %d): element %zu is %g, expected %g (relative %g > %g)\n", what, level, at, got[at],
                want[at], worst, tol);
    }
}

static void expect(int ok, const char *what, int level) {
    checks++;
    if (!ok) { failures++; fprintf(stderr, "FAIL %s (level %d)\n", what, level); }
}

// y (m, oh*ow) = conv(x (c,h,w), w (m,c,kh,kw)) + bias, by direct loops.
static void reference_conv(const ck_conv_geometry *g, int m, const float *x, const float *w, const float *bias, float *y) {
    for (int o = 0; o < m; o++)
        for (int oy = 0; oy < g->oh; oy++)
            for (int ox = 0; ox < g->ow; ox++) {
                double s = bias ? bias[o] : 0;
                for (int c = 0; c < g->c; c++)
                    for (int ky = 0; ky < g->kh; ky++)
                        for (int kx = 0; kx < g->kw; kx++) {
                            int iy = oy * g->sh - g->pt + ky * g->dh, ix = ox * g->sw - g->pl + kx * g->dw;
                            if (iy < 0 || iy >= g->h || ix < 0 || ix >= g->w) continue;
                            s += (double)w[((o * g->c + c) * g->kh + ky) * g->kw + kx] * x[(c * g->h + iy) * g->w + ix];
                        }
                y[(o * g->oh + oy) * g->ow + ox] = (float)s;
            }
}

static ck_conv_geometry geometry(int c, int h, int w, int kh, int kw, int s, int p, int d) {
    ck_conv_geometry g = {c, h, w, kh, kw, s, s, p, p, d, d, 0, 0};
    g.oh = (h + 2 * p - d * (kh - 1) - 1) / s + 1;
    g.ow = (w + 2 * p - d * (kw - 1) - 1) / s + 1;
    return g;
}

static void test_sgemm(int level) {
    const int shapes[][3] = {{1, 1, 1}, {5, 7, 3}, {13, 33, 257}, {37, 100, 61}, {9, 17, 300}};
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
        for (int t = 0; t < 4; t++) {
            int m = shapes[s][0], n = shapes[s][1], k = shapes[s][2], ta = t & 1, tb = t >> 1;
            int lda = ta ? m : k, ldb = tb ? k : n;
            float *a = random_floats((size_t)m * k), *b = random_floats((size_t)k * n), *c = random_floats((size_t)m * n);
            float *want = malloc((size_t)m * n * sizeof(float));
            for (int i = 0; i < m; i++)
                for (int j = 0; j < n; j++) {
                    double acc = 0;
                    for (int p = 0; p < k; p++) acc += (double)a[ta ? p * lda + i : i * lda + p] * b[tb ? j * ldb + p : p * ldb + j];
                    want[i * n + j] = (float)(0.5 * acc + 2.0 * c[i * n + j]);
                }
            int rc = ck_sgemm(level, ta, tb, 0, m, 0, n, k, 0.5f, a, lda, b, ldb, 2.0f, c, n);
            expect(rc == 0, "ck_sgemm returns 0", level);
            if (rc == 0) expect_close("ck_sgemm", level, c, want, (size_t)m * n, 1e-4f);
            free(a); free(b); free(c); free(want);
        }
    }
}

static void test_conv(int level) {
    struct { int c, h, w, m, kh, kw, s, p, d; } cases[] = {
        {16, 9, 11, 19, 1, 1, 1, 0, 1}, // 1x1 read in place
        {5, 13, 12, 9, 3, 3, 1, 1, 1},  {3, 17, 15, 10, 5, 5, 2, 2, 1}, {4, 12, 14, 7, 3, 3, 1, 2, 2},
        {2, 5, 64, 6, 3, 3, 2, 0, 1},   // stride 2 on rows of 31 outputs: whole 16-column runs, the last reads column 63
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        ck_conv_geometry g = geometry(cases[i].c, cases[i].h, cases[i].w, cases[i].kh, cases[i].kw, cases[i].s, cases[i].p, cases[i].d);
        int m = cases[i].m, k = g.c * g.kh * g.kw, plane = g.oh * g.ow;
        float *x = random_floats((size_t)g.c * g.h * g.w), *w = random_floats((size_t)m * k), *bias = random_floats(m);
        float *packed = aligned_floats(ck_packed_weights_count(level, m, k));
        ck_pack_weights(level, m, k, w, packed);
        float *want = malloc((size_t)m * plane * sizeof(float)), *y = malloc((size_t)m * plane * sizeof(float));
        reference_conv(&g, m, x, w, bias, want);
        int rc = ck_conv(level, packed, m, 0, m, &g, x, 0, plane, bias, 0, CK_ACT_NONE, 0, 0, y, plane);
        expect(rc == 0, "ck_conv returns 0", level);
        if (rc == 0) expect_close("ck_conv", level, y, want, (size_t)m * plane, 1e-4f);
        // The same with the residual added in the store and a ReLU.
        float *r = random_floats((size_t)m * plane);
        memcpy(y, r, (size_t)m * plane * sizeof(float));
        for (int j = 0; j < m * plane; j++) want[j] = fmaxf(want[j] + r[j], 0);
        rc = ck_conv(level, packed, m, 0, m, &g, x, 0, plane, bias, 1, CK_ACT_RELU, 0, 0, y, plane);
        if (rc == 0) expect_close("ck_conv with residual and ReLU", level, y, want, (size_t)m * plane, 1e-4f);
        if (level >= 1 && g.c <= 4 && k <= 1024) { // the stem's channel-major kernel
            float *panels = aligned_floats(ck_channel_panels_count(m, k));
            ck_pack_channel_panels(m, k, w, panels);
            reference_conv(&g, m, x, w, bias, want);
            rc = ck_conv_channels(level, panels, m, 0, m, &g, x, 0, g.oh, bias, 0, CK_ACT_NONE, 0, 0, y);
            expect(rc == 0, "ck_conv_channels returns 0", level);
            if (rc == 0) expect_close("ck_conv_channels", level, y, want, (size_t)m * plane, 1e-4f);
            free(panels);
        }
        free(x); free(w); free(bias); free(packed); free(want); free(y); free(r);
    }
}

static void test_pointwise_channels(int level) {
    ck_conv_geometry g = geometry(70, 5, 7, 1, 1, 1, 0, 1);
    int m = 45, k = 70, plane = 35;
    float *x = random_floats((size_t)k * plane), *w = random_floats((size_t)m * k), *bias = random_floats(m);
    float *panels = aligned_floats(ck_channel_panels_count(m, k));
    ck_pack_channel_panels(m, k, w, panels);
    float *want = malloc((size_t)m * plane * sizeof(float)), *y = malloc((size_t)m * plane * sizeof(float));
    reference_conv(&g, m, x, w, bias, want);
    int rc = ck_conv1x1_channels(level, panels, m, k, 0, m, x, plane, 0, plane, bias, 0, CK_ACT_NONE, 0, 0, y);
    expect(rc == 0, "ck_conv1x1_channels returns 0", level);
    if (rc == 0) expect_close("ck_conv1x1_channels", level, y, want, (size_t)m * plane, 1e-4f);
    free(x); free(w); free(bias); free(panels); free(want); free(y);
}

static void test_winograd(int level, int tile) {
    // F(4x4, 3x3) on a plane of 36 tiles: more than one block of lanes on either level.
    ck_conv_geometry g = tile == 2 ? geometry(16, 11, 9, 3, 3, 1, 1, 1) : geometry(16, 23, 21, 3, 3, 1, 1, 1);
    const int tw = (g.ow + tile - 1) / tile;
    int m = 12, plane = g.oh * g.ow, tiles = ((g.oh + tile - 1) / tile) * tw, first = tile == 2 ? 16 : 20;
    float *x = random_floats((size_t)g.c * g.h * g.w), *w = random_floats((size_t)m * g.c * 9), *bias = random_floats(m);
    float *packed = aligned_floats(ck_winograd_weights_count(level, tile, m, g.c));
    float *scratch = malloc((size_t)(tile + 2) * (tile + 2) * m * g.c * sizeof(float));
    ck_winograd_pack_weights(level, tile, m, g.c, w, packed, scratch);
    float *want = malloc((size_t)m * plane * sizeof(float)), *y = malloc((size_t)m * plane * sizeof(float));
    reference_conv(&g, m, x, w, bias, want);
    int rc = ck_winograd(level, tile, packed, m, 0, m, &g, x, 1, 0, tiles, bias, 0, CK_ACT_NONE, 0, 0, y);
    expect(rc == 0, tile == 2 ? "ck_winograd F(2x2) returns 0" : "ck_winograd F(4x4) returns 0", level);
    if (rc == 0) expect_close(tile == 2 ? "ck_winograd F(2x2)" : "ck_winograd F(4x4)", level, y, want, (size_t)m * plane, 1e-4f);
    // Rows [8, m) and tiles [first, tiles) alone, with the residual and a clip: the rest untouched.
    float *r = random_floats((size_t)m * plane);
    memcpy(y, r, (size_t)m * plane * sizeof(float));
    rc = ck_winograd(level, tile, packed, m, 8, m, &g, x, 1, first, tiles, bias, 1, CK_ACT_CLIP, -0.5f, 0.5f, y);
    for (int o = 0; o < m; o++)
        for (int oy = 0; oy < g.oh; oy++)
            for (int ox = 0; ox < g.ow; ox++) {
                size_t i = ((size_t)o * g.oh + oy) * g.ow + ox;
                int t = (oy / tile) * tw + ox / tile;
                int inside = o >= 8 && t >= first;
                want[i] = inside ? fminf(fmaxf(want[i] + r[i], -0.5f), 0.5f) : r[i];
            }
    if (rc == 0) expect_close(tile == 2 ? "ck_winograd F(2x2), a range of rows and tiles with residual and clip"
                                        : "ck_winograd F(4x4), a range of rows and tiles with residual and clip",
                              level, y, want, (size_t)m * plane, 1e-4f);
    free(r);
    free(x); free(w); free(bias); free(packed); free(scratch); free(want); free(y);
}

static void test_depthwise_and_pooling(int level) {
    int kernels[] = {3, 5, 9, 3};
    for (int i = 0; i < 4; i++) { // 3x3 stride 1, 5x5 stride 2, 9x9 stride 1, 3x3 stride 2
        int kk = kernels[i], channels = 6;
        ck_conv_geometry g = geometry(1, 19, 23, kk, kk, 1 + i % 2, kk / 2, 1);
        int plane = g.oh * g.ow;
        float *x = random_floats((size_t)channels * g.h * g.w), *w = random_floats((size_t)channels * kk * kk);
        float *bias = random_floats(channels);
        float *want = malloc((size_t)channels * plane * sizeof(float)), *y = malloc((size_t)channels * plane * sizeof(float));
        for (int c = 0; c < channels; c++)
            reference_conv(&g, 1, x + (size_t)c * g.h * g.w, w + (size_t)c * kk * kk, bias + c, want + (size_t)c * plane);
        ck_depthwise(level, &g, x, w, bias, channels, CK_ACT_NONE, 0, 0, y);
        expect_close("ck_depthwise", level, y, want, (size_t)channels * plane, 1e-4f);
        // Max pooling of the same windows (padding never wins).
        for (int c = 0; c < channels; c++)
            for (int oy = 0; oy < g.oh; oy++)
                for (int ox = 0; ox < g.ow; ox++) {
                    float best = -INFINITY;
                    for (int ky = 0; ky < kk; ky++)
                        for (int kx = 0; kx < kk; kx++) {
                            int iy = oy * g.sh - g.pt + ky, ix = ox * g.sw - g.pl + kx;
                            if (iy >= 0 && iy < g.h && ix >= 0 && ix < g.w) best = fmaxf(best, x[((size_t)c * g.h + iy) * g.w + ix]);
                        }
                    want[((size_t)c * g.oh + oy) * g.ow + ox] = best;
                }
        if (ck_maxpool2d(level, &g, x, channels, y) == 0) expect_close("ck_maxpool2d", level, y, want, (size_t)channels * plane, 0);
        free(x); free(w); free(bias); free(want); free(y);
    }
}

static void test_elementwise(int level) {
    size_t n = 1037;
    float *x = random_floats(n), *y = malloc(n * sizeof(float)), *want = malloc(n * sizeof(float));
    for (size_t i = 0; i < n; i++) { x[i] *= 30; want[i] = (float)(1 / (1 + exp(-(double)x[i]))); }
    ck_sigmoid(level, x, y, n);
    expect_close("ck_sigmoid", level, y, want, n, 1e-6f);
    free(x); free(y); free(want);
}

static void test_col2im(int level) {
    ck_conv_geometry g = geometry(3, 9, 8, 3, 3, 2, 1, 1);
    int k = g.c * g.kh * g.kw, plane = g.oh * g.ow;
    float *col = random_floats((size_t)k * plane), *x = calloc((size_t)g.c * g.h * g.w, sizeof(float));
    float *want = calloc((size_t)g.c * g.h * g.w, sizeof(float));
    for (int c = 0; c < g.c; c++)
        for (int ky = 0; ky < g.kh; ky++)
            for (int kx = 0; kx < g.kw; kx++)
                for (int oy = 0; oy < g.oh; oy++)
                    for (int ox = 0; ox < g.ow; ox++) {
                        int iy = oy * g.sh - g.pt + ky, ix = ox * g.sw - g.pl + kx;
                        if (iy < 0 || iy >= g.h || ix < 0 || ix >= g.w) continue;
                        want[(c * g.h + iy) * g.w + ix] += col[((c * g.kh + ky) * g.kw + kx) * plane + oy * g.ow + ox];
                    }
    ck_col2im(&g, col, x);
    expect_close("ck_col2im", level, x, want, (size_t)g.c * g.h * g.w, 1e-5f);
    free(col); free(x); free(want);
}

int main(void) {
    int top = ck_cpu_level();
    for (int level = top; level >= 0; level--) {
        if (level >= 1) { test_sgemm(level); test_conv(level); }
        if (level >= 1) test_pointwise_channels(level);
        if (level >= 1) { test_winograd(level, 2); test_winograd(level, 4); }
        test_depthwise_and_pooling(level);
        test_elementwise(level);
        test_col2im(level);
    }
    printf("sanitize: levels %d..0 on this CPU; %d passed, %d failed\n", top, checks - failures, failures);
    return failures ? 1 : 0;
}
