/* regular.c — the regularisers that act on the update rather than the loss
 * (Goodfellow et al., ch. 7): gradient clipping by value and by global norm,
 * and the max-norm constraint on each unit's incoming weights.  Semantics are
 * PyTorch's, so that a wick run and a PyTorch run take the same steps:
 *   clip by value:  torch.nn.utils.clip_grad_value_   g = clamp(g, -c, c)
 *   clip by norm:   torch.nn.utils.clip_grad_norm_    g *= c / (|g| + 1e-6) when that is < 1,
 *                   |g| the 2-norm over every parameter's gradient together
 *   max-norm:       torch.renorm(W, 2, 0, c)          row r *= c / (|W_r| + 1e-7) when |W_r| > c
 * Sums are in double and in a fixed order, so the result does not depend on
 * the thread count. */
#include "core/core.h"
#include "nn/regular.h"
#include <math.h>

void nn_clip_value(float *g, size_t n, double c) {
    float hi = (float)c, lo = -hi;
    for (size_t i = 0; i < n; i++) g[i] = g[i] > hi ? hi : g[i] < lo ? lo : g[i];
}

double nn_sum_squares(const float *g, size_t n) {
    double s = 0;
    for (size_t i = 0; i < n; i++) s += (double)g[i] * g[i];
    return s;
}

double nn_clip_coef(double total_sq, double max_norm) {
    double c = max_norm / (sqrt(total_sq) + 1e-6);
    return c < 1 ? c : 1;
}

void nn_scale(float *g, size_t n, double c) {
    float f = (float)c;
    for (size_t i = 0; i < n; i++) g[i] *= f;
}

void nn_max_norm_rows(float *W, size_t rows, size_t cols, double c) {
    for (size_t r = 0; r < rows; r++) {
        float *w = W + r * cols;
        double norm = sqrt(nn_sum_squares(w, cols));
        if (norm > c) nn_scale(w, cols, c / (norm + 1e-7));
    }
}
