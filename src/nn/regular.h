/* regular.h — regularisers on the update (regular.c). */
#ifndef WICK_NN_REGULAR_H
#define WICK_NN_REGULAR_H

#include <stddef.h>

/* g = clamp(g, -c, c). */
void   nn_clip_value(float *g, size_t n, double c);
/* sum g^2 in double. */
double nn_sum_squares(const float *g, size_t n);
/* The factor clip_grad_norm_ scales every gradient by: min(1, c / (sqrt(total_sq) + 1e-6)). */
double nn_clip_coef(double total_sq, double max_norm);
void   nn_scale(float *g, size_t n, double c);
/* Each row (a unit's incoming weights) of W [rows, cols] scaled to 2-norm c
 * where it is longer (torch.renorm(W, 2, 0, c)). */
void   nn_max_norm_rows(float *W, size_t rows, size_t cols, double c);

#endif
