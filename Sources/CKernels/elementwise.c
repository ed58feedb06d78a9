// Elementwise transcendental kernels: the logistic sigmoid and SiLU (EfficientNet's Swish,
// x * sigmoid(x)), vectorized with AVX-512 where the CPU has it (exp: `ck_exp512` in
// microkernel.h, shared with the convolutions' fused SiLU).
#include <immintrin.h>
#include <math.h>
#include "CKernels.h"
#include "microkernel.h"

__attribute__((target("avx512f")))
static void sigmoid_avx512(const float *x, float *y, size_t n) {
    size_t i = 0;
    for (; i + 16 <= n; i += 16) _mm512_storeu_ps(y + i, ck_sigmoid512(_mm512_loadu_ps(x + i)));
    if (i < n) {
        const __mmask16 m = (__mmask16)((1u << (n - i)) - 1);
        _mm512_mask_storeu_ps(y + i, m, ck_sigmoid512(_mm512_maskz_loadu_ps(m, x + i)));
    }
}

__attribute__((target("avx512f")))
static void silu_avx512(const float *x, float *y, size_t n) {
    const __m512 none = _mm512_setzero_ps();
    size_t i = 0;
    for (; i + 16 <= n; i += 16) _mm512_storeu_ps(y + i, ck_activate512(_mm512_loadu_ps(x + i), CK_ACT_SILU, none, none));
    if (i < n) {
        const __mmask16 m = (__mmask16)((1u << (n - i)) - 1);
        _mm512_mask_storeu_ps(y + i, m, ck_activate512(_mm512_maskz_loadu_ps(m, x + i), CK_ACT_SILU, none, none));
    }
}

void ck_sigmoid(int level, const float *x, float *y, size_t n) {
    if (level >= 2 && ck_cpu_level() >= 2) {
        sigmoid_avx512(x, y, n);
        return;
    }
    // exp(-x) overflows to +inf for x < -88.7, giving 1 / inf = 0, the limit.
    for (size_t i = 0; i < n; i++) y[i] = ck_sigmoid1(x[i]);
}

void ck_silu(int level, const float *x, float *y, size_t n) {
    if (level >= 2 && ck_cpu_level() >= 2) {
        silu_avx512(x, y, n);
        return;
    }
    for (size_t i = 0; i < n; i++) y[i] = ck_silu1(x[i]);
}

__attribute__((target("avx512f")))
static void affine_plane_avx512(const float *x, float *y, size_t n, float a, float b, int relu) {
    const __m512 va = _mm512_set1_ps(a), vb = _mm512_set1_ps(b), zero = _mm512_setzero_ps();
    size_t i = 0;
    for (; i + 16 <= n; i += 16) {
        __m512 v = _mm512_add_ps(_mm512_mul_ps(va, _mm512_loadu_ps(x + i)), vb);
        _mm512_storeu_ps(y + i, relu ? _mm512_max_ps(v, zero) : v);
    }
    if (i < n) {
        const __mmask16 m = (__mmask16)((1u << (n - i)) - 1);
        __m512 v = _mm512_add_ps(_mm512_mul_ps(va, _mm512_maskz_loadu_ps(m, x + i)), vb);
        _mm512_mask_storeu_ps(y + i, m, relu ? _mm512_max_ps(v, zero) : v);
    }
}

void ck_channel_affine(int level, const float *x, float *y, size_t planes, size_t plane, const float *a, const float *b,
                       int channels, int first, int relu) {
    const int wide = level >= 2 && ck_cpu_level() >= 2;
    for (size_t p = 0; p < planes; p++) {
        const int c = (int)((first + p) % (size_t)channels);
        const float *xp = x + p * plane;
        float *yp = y + p * plane;
        if (wide) {
            affine_plane_avx512(xp, yp, plane, a[c], b[c], relu);
            continue;
        }
        for (size_t i = 0; i < plane; i++) {
            const float t = a[c] * xp[i];
            const float v = t + b[c];
            yp[i] = relu ? (v > 0 ? v : 0.0f) : v;
        }
    }
}
