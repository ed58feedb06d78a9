// Elementwise transcendental kernels: the logistic sigmoid (EfficientNet's Swish is
// x * sigmoid(x), run as Sigmoid then Mul), vectorized with AVX-512 where the CPU has it.
#include <immintrin.h>
#include <math.h>
#include "CKernels.h"

// exp(x) for 16 lanes, after Cephes' expf: n = round(x / ln 2), r = x - n ln 2 (ln 2 split in two
// parts so that n ln 2 is exact), exp(r) by its degree-7 Taylor-like minimax polynomial on
// [-ln 2 / 2, ln 2 / 2], then 2^n by scalef (which saturates to 0 and +inf without overflow in n).
// Relative error below 2e-7 over the float range; NaN stays NaN.
__attribute__((target("avx512f")))
static inline __m512 exp_avx512(__m512 x) {
    const __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(1.44269504088896341f)),
                                          _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693359375f), x);
    r = _mm512_fnmadd_ps(n, _mm512_set1_ps(-2.12194440e-4f), r);
    __m512 p = _mm512_set1_ps(1.9875691500e-4f);
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.3981999507e-3f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(8.3334519073e-3f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(4.1665795894e-2f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.6666665459e-1f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(5.0000001201e-1f));
    const __m512 e = _mm512_add_ps(_mm512_fmadd_ps(p, _mm512_mul_ps(r, r), r), _mm512_set1_ps(1.0f));
    return _mm512_scalef_ps(e, n);
}

__attribute__((target("avx512f")))
static void sigmoid_avx512(const float *x, float *y, size_t n) {
    const __m512 one = _mm512_set1_ps(1.0f);
    size_t i = 0;
    for (; i + 16 <= n; i += 16) {
        const __m512 e = exp_avx512(_mm512_sub_ps(_mm512_setzero_ps(), _mm512_loadu_ps(x + i)));
        _mm512_storeu_ps(y + i, _mm512_div_ps(one, _mm512_add_ps(one, e)));
    }
    if (i < n) {
        const __mmask16 m = (__mmask16)((1u << (n - i)) - 1);
        const __m512 e = exp_avx512(_mm512_sub_ps(_mm512_setzero_ps(), _mm512_maskz_loadu_ps(m, x + i)));
        _mm512_mask_storeu_ps(y + i, m, _mm512_div_ps(one, _mm512_add_ps(one, e)));
    }
}

void ck_sigmoid(const float *x, float *y, size_t n) {
    if (ck_sgemm_level() >= 2) {
        sigmoid_avx512(x, y, n);
        return;
    }
    // exp(-x) overflows to +inf for x < -88.7, giving 1 / inf = 0, the limit.
    for (size_t i = 0; i < n; i++) y[i] = 1.0f / (1.0f + expf(-x[i]));
}
