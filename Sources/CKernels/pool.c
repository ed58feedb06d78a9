// 2-D max and average pooling of one plane, with the window bounds precomputed per output row
// and column by the caller (Tensors/PoolND.swift), so the inner loops have no bounds tests.
#include "CKernels.h"
#include <math.h>

void ck_pool2d(const float *x, int w, int oh, int ow, const int *rows, int row_step,
               const int *cols, int col_step, int kind, float *y, long long *argmax, long long argmax_base) {
    for (int oy = 0; oy < oh; oy++) {
        const int y0 = rows[3 * oy], ny = rows[3 * oy + 1], wy = rows[3 * oy + 2];
        for (int ox = 0; ox < ow; ox++) {
            const int x0 = cols[3 * ox], nx = cols[3 * ox + 1], wx = cols[3 * ox + 2];
            float *out = y + (size_t)oy * ow + ox;
            if (kind == CK_POOL_MAX) {
                if (ny == 0 || nx == 0) {
                    *out = -INFINITY;
                    if (argmax) argmax[(size_t)oy * ow + ox] = -1;
                    continue;
                }
                // Start from -inf at the first tap; a tap replaces the best only when strictly
                // greater, so a NaN never wins (an all-NaN window gives -inf), as in the vectorized
                // kernels. Selects, not branches: which tap wins is data-dependent.
                long long best_index = (long long)y0 * w + x0;
                float best = -INFINITY;
                for (int a = 0; a < ny; a++) {
                    const long long row = (long long)(y0 + a * row_step) * w;
                    for (int b = 0; b < nx; b++) {
                        const long long i = row + x0 + b * col_step;
                        const float v = x[i];
                        const int greater = v > best;
                        best = greater ? v : best;
                        best_index = greater ? i : best_index;
                    }
                }
                *out = best;
                if (argmax) argmax[(size_t)oy * ow + ox] = argmax_base + best_index;
            } else {
                float sum = 0;
                for (int a = 0; a < ny; a++) {
                    const float *row = x + (size_t)(y0 + a * row_step) * w + x0;
                    for (int b = 0; b < nx; b++) sum += row[b * col_step];
                }
                const int count = kind == CK_POOL_AVERAGE_INCLUDE_PAD ? wy * wx : ny * nx;
                *out = count > 0 ? sum / (float)count : 0.0f;
            }
        }
    }
}
