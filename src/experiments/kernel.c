/* kernel.c — infinite-width predictions on a data set: NNGP posterior mean
 * (docs/theory.md §8) and the frozen-NTK trained network (docs/theory.md §9), through the theory
 * engine's Gram flow and solves.  Nothing here re-implements a flow: this
 * file assembles input Grams, calls wick_gram_flow, and hands the last
 * layer's blocks to wick_gp_posterior. */
#include "experiments.h"
#include "backend/backend.h"
#include <math.h>
#include <string.h>

wick_status wick_kernel_normalise(double *x, size_t n, size_t n0, size_t nA) {
    if (!x || n == 0 || n0 == 0 || nA == 0 || nA > n)
        return wick_fail(WICK_EINVAL, "kernel: normalise %zu rows of %zu (%zu training)", n, n0, nA);
    double *mu = wick_calloc(n0, sizeof(double));
    if (!mu) return wick_fail(WICK_ENOMEM, "kernel: out of memory");
    for (size_t a = 0; a < nA; a++)
        for (size_t j = 0; j < n0; j++) mu[j] += x[a * n0 + j];
    for (size_t j = 0; j < n0; j++) mu[j] /= (double)nA;
    for (size_t a = 0; a < n; a++) {
        double s = 0;
        for (size_t j = 0; j < n0; j++) {
            x[a * n0 + j] -= mu[j];
            s += x[a * n0 + j] * x[a * n0 + j];
        }
        if (!(s > 0) || !isfinite(s)) {
            wick_free(mu);
            return wick_fail(WICK_EINVAL, "kernel: input %zu is zero (or not finite) after "
                             "centring and cannot be normalised", a);
        }
        double f = sqrt((double)n0 / s);
        for (size_t j = 0; j < n0; j++) x[a * n0 + j] *= f;
    }
    wick_free(mu);
    return WICK_OK;
}

/* G[i][j] for rows i of X (ni x n0) and rows j of Y (nj x n0): (1/n0) x.y,
 * written into G with leading dimension ld. */
static void cross_gram(const double *X, size_t ni, const double *Y, size_t nj, size_t n0,
                       double *G, size_t ld) {
    wick_gemm_f64(0, 1, (int)ni, (int)nj, (int)n0, 1.0 / (double)n0, X, (int)n0, Y, (int)n0, 0.0,
                  G, (int)ld);
}

wick_status wick_kernel_predict(const wick_kernel_hyper *h, const double *xA, const double *yA,
                                size_t nA, const double *xB, size_t nB, size_t n0, size_t nout,
                                size_t batch, double *gp_mean, double *ntk_mean, double *logev) {
    if (!h || !xA || !yA || nA == 0 || n0 == 0 || nout == 0 || (nB && !xB))
        return wick_fail(WICK_EINVAL, "kernel: needs %zu training inputs, their targets and "
                         "inputs of dimension %zu", nA, n0);
    if (h->depth < 1) return wick_fail(WICK_EINVAL, "kernel: depth %d, expected at least 1", h->depth);
    if (batch == 0) batch = nB ? nB : 1;
    size_t L = (size_t)h->depth, nb_max = nB < batch ? nB : batch, n = nA + nb_max;
    size_t nn;
    if (!wick_mul_size(n, n, &nn) || nn > ((size_t)1 << 34) / L)
        return wick_fail(WICK_EINVAL, "kernel: %zu training + %zu test inputs per batch is too "
                         "many for the Gram flow (memory ~ 2 L n^2 doubles)", nA, nb_max);
    wick_theory_config tc = wick_theory_defaults(h->act, h->depth);
    tc.cb = h->cb; tc.cw = h->cw; tc.lambda_b = h->lambda_b; tc.lambda_w = h->lambda_w;
    tc.tabulate = 1;
    int want_ntk = ntk_mean != NULL;
    double *G0 = wick_malloc(sizeof(double) * nn);
    double *K = wick_malloc(sizeof(double) * nn * L);
    double *T = want_ntk ? wick_malloc(sizeof(double) * nn * L) : NULL;
    double *mb = wick_malloc(sizeof(double) * (nb_max ? nb_max : 1) * nout);
    wick_status st = WICK_OK;
    if (!G0 || !K || (want_ntk && !T) || !mb) {
        st = wick_fail(WICK_ENOMEM, "kernel: out of memory for Grams of %zu inputs (depth %d)", n,
                       h->depth);
        goto out;
    }
    size_t b0 = 0;
    do {
        size_t nb = nB - b0 < batch ? nB - b0 : batch, m = nA + nb;
        /* the input Gram of training then this batch's test inputs, symmetric
         * to the bit (the solves check it) */
        cross_gram(xA, nA, xA, nA, n0, G0, m);
        if (nb) {
            cross_gram(xB + b0 * n0, nb, xA, nA, n0, G0 + nA * m, m);
            cross_gram(xB + b0 * n0, nb, xB + b0 * n0, nb, n0, G0 + nA * m + nA, m);
        }
        for (size_t i = 0; i < m; i++)
            for (size_t j = 0; j < i; j++) G0[j * m + i] = G0[i * m + j];
        if ((st = wick_gram_flow(&tc, G0, m, K, T))) goto out;
        const double *KL = K + (L - 1) * m * m;
        if ((st = wick_gp_posterior(KL, nA, nb, yA, nout, h->noise, nb ? mb : NULL, NULL,
                                    b0 == 0 ? logev : NULL)))
            goto out;
        if (gp_mean && nb) memcpy(gp_mean + b0 * nout, mb, sizeof(double) * nb * nout);
        if (want_ntk && nb) {
            /* t -> infinity: E[z_B] = Theta_BA Theta_AA^-1 y_A (docs/theory.md §9), the GP
             * posterior formula with Theta in place of K and no noise (a
             * Cholesky solve; wick_gd_predict gives the same, see the tests) */
            if ((st = wick_gp_posterior(T + (L - 1) * m * m, nA, nb, yA, nout, 0.0, mb, NULL, NULL))) {
                st = wick_fail(st, "kernel: the NTK solve Theta_AA^-1 y_A (%s)", wick_last_error());
                goto out;
            }
            memcpy(ntk_mean + b0 * nout, mb, sizeof(double) * nb * nout);
        }
        b0 += nb;
    } while (b0 < nB);
out:
    wick_free(G0); wick_free(K); wick_free(T); wick_free(mb);
    return st;
}
