/* bayes.c — finite-width Bayesian inference at order 1/n (the book's ch. 6;
 * docs/theory-residual.md §7): the posterior mean of one output at a test
 * input given noisy observations of it at training inputs, when the prior
 * is the network's nearly-Gaussian output distribution instead of its
 * infinite-width Gaussian process.
 *
 * With observations y_a = z_a + eps_a (eps ~ N(0, noise)), Kt = K_AA + noise I,
 * B = K_bA Kt^-1 and r = z_b - B y (uncorrelated with y), the first-order
 * Edgeworth expansion of p(r, y) in the fourth cumulant kappa gives
 *   E[z_b | y] = B y + (1/6) sum_{a,c,d} kappa(r, z_a, z_c, z_d) H^{acd}(y),
 *   H^{acd} = yh_a yh_c yh_d - (Kt^-1_ac yh_d + Kt^-1_ad yh_c + Kt^-1_cd yh_a),  yh = Kt^-1 y
 * (the Hermite tensor of y's Gaussian); the noise has no fourth cumulant.
 * For one output neuron of a network, kappa_{abcd} = (V_(ab)(cd) + V_(ac)(bd)
 * + V_(ad)(bc)) / n_{L-1}: the vertex of ch. 4 carries the whole correction
 * when the kernel has no 1/n shift (the deep linear net). */
#include "theory.h"
#include <lapacke.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

wick_status wick_bayes_mean1(const double *K, const double *kappa, size_t m, const double *y,
                             double noise, double *mean0, double *mean1) {
    if (!K || !kappa || !y || m < 2)
        return wick_fail(WICK_EINVAL, "bayes: %zu inputs (need training inputs and one test "
                         "input)", m);
    if (!isfinite(noise) || noise < 0)
        return wick_fail(WICK_EINVAL, "bayes: noise variance %g must be finite and >= 0", noise);
    size_t nA = m - 1, b = m - 1;
    double *Ki = malloc(sizeof(double) * nA * nA), *yh = malloc(sizeof(double) * nA),
           *B = malloc(sizeof(double) * nA), *kr = malloc(sizeof(double) * nA * nA * nA);
    wick_status st = WICK_OK;
    if (!Ki || !yh || !B || !kr) { st = wick_fail(WICK_ENOMEM, "bayes: %zu inputs", m); goto done; }
    for (size_t i = 0; i < nA; i++)
        for (size_t j = 0; j < nA; j++) Ki[i * nA + j] = K[i * m + j] + (i == j ? noise : 0);
    if (LAPACKE_dpotrf(LAPACK_ROW_MAJOR, 'L', (lapack_int)nA, Ki, (lapack_int)nA) ||
        LAPACKE_dpotri(LAPACK_ROW_MAJOR, 'L', (lapack_int)nA, Ki, (lapack_int)nA)) {
        st = wick_fail(WICK_ENUMERIC, "bayes: the training kernel plus noise is not positive "
                       "definite (repeated inputs need noise > 0)");
        goto done;
    }
    for (size_t i = 0; i < nA; i++)
        for (size_t j = i + 1; j < nA; j++) Ki[i * nA + j] = Ki[j * nA + i];
    double m0 = 0;
    for (size_t i = 0; i < nA; i++) {
        double s = 0, t = 0;
        for (size_t j = 0; j < nA; j++) { s += Ki[i * nA + j] * y[j]; t += K[b * m + j] * Ki[j * nA + i]; }
        yh[i] = s; B[i] = t;
    }
    for (size_t i = 0; i < nA; i++) m0 += B[i] * y[i];
    /* kappa(r, a, c, d) = kappa(b, a, c, d) - sum_e B_e kappa(e, a, c, d) */
#define KAP(p, q, r_, s_) kappa[(((p) * m + (q)) * m + (r_)) * m + (s_)]
    for (size_t a = 0; a < nA; a++)
        for (size_t c = 0; c < nA; c++)
            for (size_t d = 0; d < nA; d++) {
                double v = KAP(b, a, c, d);
                for (size_t e = 0; e < nA; e++) v -= B[e] * KAP(e, a, c, d);
                kr[(a * nA + c) * nA + d] = v;
            }
#undef KAP
    double m1 = 0;
    for (size_t a = 0; a < nA; a++)
        for (size_t c = 0; c < nA; c++)
            for (size_t d = 0; d < nA; d++) {
                double H = yh[a] * yh[c] * yh[d] -
                           (Ki[a * nA + c] * yh[d] + Ki[a * nA + d] * yh[c] + Ki[c * nA + d] * yh[a]);
                m1 += kr[(a * nA + c) * nA + d] * H;
            }
    if (mean0) *mean0 = m0;
    if (mean1) *mean1 = m1 / 6;
done:
    free(Ki); free(yh); free(B); free(kr);
    return st;
}

/* The deep linear net (C_b = 0, every hidden width n): K = C_W^L G at the
 * output and V_(ab)(cd) = (L - 1)(K_ac K_bd + K_ad K_bc) (the book's ch. 3),
 * so one output neuron's kappa = 2 (L - 1)(K_ab K_cd + K_ac K_bd + K_ad K_bc)/n. */
wick_status wick_bayes_linear(double cw, int L, const double *G, size_t m, const double *y,
                              double noise, double *mean0, double *mean1) {
    if (!isfinite(cw) || cw <= 0 || L < 1 || !G)
        return wick_fail(WICK_EINVAL, "bayes (deep linear): C_W = %g, depth %d", cw, L);
    if (m < 2 || m > 64)
        return wick_fail(WICK_EINVAL, "bayes (deep linear): %zu inputs (2 to 64)", m);
    double *K = malloc(sizeof(double) * m * m), *kap = malloc(sizeof(double) * m * m * m * m);
    if (!K || !kap) { free(K); free(kap); return wick_fail(WICK_ENOMEM, "bayes: %zu inputs", m); }
    double s = pow(cw, L);
    for (size_t i = 0; i < m * m; i++) K[i] = s * G[i];
    for (size_t a = 0; a < m; a++)
        for (size_t b = 0; b < m; b++)
            for (size_t c = 0; c < m; c++)
                for (size_t d = 0; d < m; d++)
                    kap[((a * m + b) * m + c) * m + d] =
                        2.0 * (L - 1) * (K[a * m + b] * K[c * m + d] + K[a * m + c] * K[b * m + d] +
                                         K[a * m + d] * K[b * m + c]);
    wick_status st = wick_bayes_mean1(K, kap, m, y, noise, mean0, mean1);
    free(K); free(kap);
    return st;
}
