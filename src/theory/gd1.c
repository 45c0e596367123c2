/* gd1.c — the mean output of a finite-width network after one step of
 * full-batch MSE gradient descent, to order 1/n (the book's ch. 11 and its
 * chapter on the fully trained network; docs/theory-finite-width.md, "One
 * step of gradient descent at order 1/n").  Built from the single-input
 * tensors of wick_theory_finite (Theta, Theta1, P, Q) and the ddNTK mean R
 * supplied by the caller. */
#include "theory.h"
#include <math.h>

wick_status wick_gd_mean1(const wick_theory_config *c, double q, size_t nout, const double *y,
                          double eta, double R, wick_gd1_terms *out) {
    if (!c || !y || !out || nout == 0)
        return wick_fail(WICK_EINVAL, "one-step GD mean: needs a configuration, targets and an "
                         "output (nout = %zu)", nout);
    if (!isfinite(eta))
        return wick_fail(WICK_EINVAL, "one-step GD mean: eta = %g must be finite", eta);
    if (c->depth < 1 || c->depth > 4096)
        return wick_fail(WICK_EINVAL, "one-step GD mean: depth %d, expected 1..4096", c->depth);
    double y2 = 0;
    for (size_t i = 0; i < nout; i++) {
        if (!isfinite(y[i]))
            return wick_fail(WICK_EINVAL, "one-step GD mean: target %zu = %g is not finite", i, y[i]);
        y2 += y[i] * y[i];
    }
    wick_layer_finite *o = wick_malloc(sizeof *o * (size_t)c->depth);
    if (!o) return wick_fail(WICK_ENOMEM, "one-step GD mean: out of memory");
    wick_status st = wick_theory_finite(c, q, o);
    if (!st) {
        const wick_layer_finite *f = &o[c->depth - 1];
        double nl = (double)nout;
        out->K = f->K; out->ntk = f->ntk; out->ntk1 = f->ntk1;
        out->P = f->P; out->Q = f->Q; out->R = R;
        out->lin = eta * f->ntk;
        out->a1 = eta * f->ntk1;
        /* -(eta^2/2) E[X_{i;jk} eps_j eps_k] with eps = z - y: only the two
         * cross terms z y survive the sign flip of the last layer, and
         * sum_j E[X_{i;jk} z_j] = delta_ik (P + nout Q/2) / n in wick's P, Q */
        out->a2 = -eta * eta * (f->P + nl * f->Q / 2);
        /* -(eta^3/6) E[Y_{i;jkl} eps eps eps]: the z z y terms (3 of them,
         * E[Y z z] = E[Y] K at this order) and the y y y term, with
         * E[Y_{i;jkl}] = R (d_ij d_kl + d_ik d_jl + d_il d_jk) / n */
        out->a3 = isfinite(R) ? eta * eta * eta * R * (f->K * (nl + 2) + y2) / 2 : NAN;
    }
    wick_free(o);
    return st;
}
