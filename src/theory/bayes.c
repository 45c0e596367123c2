/* bayes.c — finite-width Bayesian inference at order 1/n (the book's ch. 6;
 * docs/theory-residual.md §7, docs/theory-bayes.md): the posterior mean of one output at a test
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
 * so one output neuron's kappa = 2 (L - 1)(K_ab K_cd + K_ac K_bd + K_ad K_bc)/n.
 * *K and *kap are the caller's to free. */
static wick_status linear_kappa(double cw, int L, const double *G, size_t m, double **Kp, double **kapp) {
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
    *Kp = K, *kapp = kap;
    return WICK_OK;
}

/* The deep linear net's posterior mean (linear_kappa's K and kappa). */
wick_status wick_bayes_linear(double cw, int L, const double *G, size_t m, const double *y,
                              double noise, double *mean0, double *mean1) {
    double *K, *kap;
    wick_status st = linear_kappa(cw, L, G, m, &K, &kap);
    if (st) return st;
    st = wick_bayes_mean1(K, kap, m, y, noise, mean0, mean1);
    free(K); free(kap);
    return st;
}

/* ---------------------------------------------------------------------------
 * The posterior mean and covariance at order 1/n, several test inputs
 * (docs/theory-bayes.md §3-§4)
 * ------------------------------------------------------------------------- */

/* The test inputs' residuals r_i = z_(beta i) - (B y)_i are uncorrelated with
 * y under the Gaussian part, so the first-order Edgeworth density of (r, y)
 * is N(r) N(y) [1 + (1/24) kappa'.H4], whose Hermite tensors factor into r's
 * and y's.  Integrating r against it: E[r_i | y] picks the term with one r
 * index, E[r_i r_j | y] the term with two, and the rest integrate to zero or
 * cancel with the normalisation:
 *   mean1_i = (1/6) kappa(r_i, a, c, d) H^{acd}(y),
 *   cov1_ij = (1/2) kappa(r_i, r_j, a, c) H^{ac}(y),  H^{ac} = yh_a yh_c - Kt^-1_ac
 * (the product of two mean corrections is order 1/n^2).  A shift K1/n of the
 * kernel adds the first-order change of the Gaussian formulas. */
wick_status wick_bayes_posterior(const double *K, const double *K1, const double *kappa, size_t m,
                                 size_t nA, const double *y, double noise, double *mean0,
                                 double *mean1, double *cov0, double *cov1) {
    if (!K || !y || nA < 1 || nA >= m)
        return wick_fail(WICK_EINVAL, "bayes: %zu inputs of which %zu training (need at least "
                         "one of each)", m, nA);
    if (m > 64) return wick_fail(WICK_EINVAL, "bayes: %zu inputs (at most 64)", m);
    if (!isfinite(noise) || noise < 0)
        return wick_fail(WICK_EINVAL, "bayes: noise variance %g must be finite and >= 0", noise);
    size_t nB = m - nA;
    double *Ki = malloc(sizeof(double) * nA * nA), *yh = malloc(sizeof(double) * nA),
           *B = malloc(sizeof(double) * nB * nA),
           *U = malloc(sizeof(double) * nB * m * nA * nA);
    wick_status st = WICK_OK;
    if (!Ki || !yh || !B || !U) { st = wick_fail(WICK_ENOMEM, "bayes: %zu inputs", m); goto done; }
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
    for (size_t i = 0; i < nA; i++) {
        double s = 0;
        for (size_t j = 0; j < nA; j++) s += Ki[i * nA + j] * y[j];
        yh[i] = s;
    }
    /* B = K_BA Kt^-1 */
    for (size_t i = 0; i < nB; i++)
        for (size_t e = 0; e < nA; e++) {
            double s = 0;
            for (size_t f = 0; f < nA; f++) s += K[(nA + i) * m + f] * Ki[f * nA + e];
            B[i * nA + e] = s;
        }
#define KK(M_, p, q) (M_)[(p) * m + (q)]
    for (size_t i = 0; i < nB; i++) {
        double m0 = 0, m1 = 0;
        for (size_t e = 0; e < nA; e++) m0 += B[i * nA + e] * y[e];
        if (K1)
            for (size_t a = 0; a < nA; a++) {
                double v = KK(K1, nA + i, a);
                for (size_t e = 0; e < nA; e++) v -= B[i * nA + e] * KK(K1, e, a);
                m1 += v * yh[a];
            }
        if (mean0) mean0[i] = m0;
        if (mean1) mean1[i] = m1;
        for (size_t j = 0; j < nB; j++) {
            double c0 = KK(K, nA + i, nA + j), c1 = 0;
            for (size_t e = 0; e < nA; e++) c0 -= B[i * nA + e] * KK(K, e, nA + j);
            if (K1) {
                c1 = KK(K1, nA + i, nA + j);
                for (size_t e = 0; e < nA; e++) {
                    c1 -= B[i * nA + e] * KK(K1, e, nA + j) + B[j * nA + e] * KK(K1, nA + i, e);
                    for (size_t f = 0; f < nA; f++)
                        c1 += B[i * nA + e] * B[j * nA + f] * KK(K1, e, f);
                }
            }
            if (cov0) cov0[i * nB + j] = c0;
            if (cov1) cov1[i * nB + j] = c1;
        }
    }
#undef KK
    if (kappa) {
        /* U[i][x][a][c] = kappa(r_i, x, a, c), x over every input, a, c training */
#define KAP(p, q, r_, s_) kappa[(((p) * m + (q)) * m + (r_)) * m + (s_)]
#define UU(i, x, a, c) U[(((i) * m + (x)) * nA + (a)) * nA + (c)]
        for (size_t i = 0; i < nB; i++)
            for (size_t x = 0; x < m; x++)
                for (size_t a = 0; a < nA; a++)
                    for (size_t c = 0; c < nA; c++) {
                        double v = KAP(nA + i, x, a, c);
                        for (size_t e = 0; e < nA; e++) v -= B[i * nA + e] * KAP(e, x, a, c);
                        UU(i, x, a, c) = v;
                    }
#undef KAP
        for (size_t i = 0; i < nB; i++) {
            double s = 0;
            for (size_t a = 0; a < nA; a++)
                for (size_t c = 0; c < nA; c++)
                    for (size_t d = 0; d < nA; d++) {
                        double H = yh[a] * yh[c] * yh[d] -
                                   (Ki[a * nA + c] * yh[d] + Ki[a * nA + d] * yh[c] +
                                    Ki[c * nA + d] * yh[a]);
                        s += UU(i, d, a, c) * H;
                    }
            if (mean1) mean1[i] += s / 6;
            for (size_t j = 0; cov1 && j < nB; j++) {
                double t = 0;
                for (size_t a = 0; a < nA; a++)
                    for (size_t c = 0; c < nA; c++) {
                        double v = UU(i, nA + j, a, c);  /* kappa(r_i, r_j, a, c) */
                        for (size_t f = 0; f < nA; f++) v -= B[j * nA + f] * UU(i, f, a, c);
                        t += v * (yh[a] * yh[c] - Ki[a * nA + c]);
                    }
                cov1[i * nB + j] += t / 2;
            }
        }
#undef UU
    }
done:
    free(Ki); free(yh); free(B); free(U);
    return st;
}

/* kappa_abcd = V_(ab)(cd) + V_(ac)(bd) + V_(ad)(bc), V over ordered pairs */
static void kappa_from_vertex(const double *V, size_t m, double *kap) {
    size_t m2 = m * m;
    for (size_t a = 0; a < m; a++)
        for (size_t b = 0; b < m; b++)
            for (size_t c = 0; c < m; c++)
                for (size_t d = 0; d < m; d++)
                    kap[((a * m + b) * m + c) * m + d] = V[(a * m + b) * m2 + c * m + d] +
                                                         V[(a * m + c) * m2 + b * m + d] +
                                                         V[(a * m + d) * m2 + b * m + c];
}

wick_status wick_bayes_linear_posterior(double cw, int L, const double *G, size_t m, size_t nA,
                                        const double *y, double noise, double *mean0,
                                        double *mean1, double *cov0, double *cov1) {
    double *K, *kap;
    wick_status st = linear_kappa(cw, L, G, m, &K, &kap);
    if (st) return st;
    st = wick_bayes_posterior(K, NULL, kap, m, nA, y, noise, mean0, mean1, cov0, cov1);
    free(K); free(kap);
    return st;
}

static double cfg_cb(const wick_theory_config *c, int l) { return c->cb_l ? c->cb_l[l - 1] : c->cb; }
static double cfg_cw(const wick_theory_config *c, int l) { return c->cw_l ? c->cw_l[l - 1] : c->cw; }

/* One hidden layer: the output given the hidden layer is Gaussian with kernel
 * Ghat = C_b + (C_W/n) sum_j sigma_j sigma_j^T, whose mean is K exactly (no
 * 1/n shift) and whose covariance gives V_(ab)(cd) = C_W^2 (<s_a s_b s_c s_d>
 * - <s_a s_b><s_c s_d>) over the first layer's Gaussian N(0, C_b + C_W G0):
 * a tensor-product Gauss-Hermite rule over its eigenbasis (m <= 4). */
static wick_status shallow_moments(const wick_theory_config *c, const double *G0, size_t m,
                                   double *K, double *V) {
    double Q[16], lam[4];
    double cb1 = cfg_cb(c, 1), cw1 = cfg_cw(c, 1), cb2 = cfg_cb(c, 2), cw2 = cfg_cw(c, 2);
    for (size_t a = 0; a < m; a++)
        for (size_t b = 0; b < m; b++) Q[a * m + b] = cb1 + cw1 * G0[a * m + b];
    if (LAPACKE_dsyev(LAPACK_ROW_MAJOR, 'V', 'L', (lapack_int)m, Q, (lapack_int)m, lam))
        return wick_fail(WICK_ENUMERIC, "bayes: eigendecomposition of the first layer's kernel");
    for (size_t k = 0; k < m; k++) {
        if (lam[k] < -1e-12 * (fabs(lam[m - 1]) + 1))
            return wick_fail(WICK_EINVAL, "bayes: the input Gram is not positive semidefinite");
        lam[k] = lam[k] > 0 ? sqrt(lam[k]) : 0;
    }
    int q = m <= 2 ? 128 : m == 3 ? 64 : 40;  /* m = 4: 2.6M points, about a second */
    const double *x, *w;
    wick_status st = th_hermite(q, &x, &w);
    if (st) return st;
    size_t m2 = m * m, np = 1;
    for (size_t k = 0; k < m; k++) np *= (size_t)q;
    double *E2 = calloc(m2, sizeof(double)), *E4 = calloc(m2 * m2, sizeof(double));
    if (!E2 || !E4) { free(E2); free(E4); return wick_fail(WICK_ENOMEM, "bayes: quadrature"); }
    for (size_t p = 0; p < np; p++) {
        size_t r = p;
        double wt = 1, s[4], xi[4];
        for (size_t k = 0; k < m; k++) { int j = (int)(r % (size_t)q); r /= (size_t)q; xi[k] = x[j] * lam[k]; wt *= w[j]; }
        if (wt < 1e-300) continue;
        for (size_t a = 0; a < m; a++) {
            double z = 0;
            for (size_t k = 0; k < m; k++) z += Q[a * m + k] * xi[k];
            s[a] = wick_act_eval(c->act, z);
        }
        double pr[16];
        for (size_t a = 0; a < m; a++)
            for (size_t b = 0; b < m; b++) { pr[a * m + b] = s[a] * s[b]; E2[a * m + b] += wt * pr[a * m + b]; }
        for (size_t u = 0; u < m2; u++)
            for (size_t v = 0; v < m2; v++) E4[u * m2 + v] += wt * pr[u] * pr[v];
    }
    for (size_t u = 0; u < m2; u++) {
        K[u] = cb2 + cw2 * E2[u];
        for (size_t v = 0; v < m2; v++) V[u * m2 + v] = cw2 * cw2 * (E4[u * m2 + v] - E2[u] * E2[v]);
    }
    free(E2); free(E4);
    return WICK_OK;
}

wick_status wick_bayes_net(const wick_theory_config *c, const double *G0, size_t m, size_t nA,
                           const double *y, double noise, double *mean0, double *mean1,
                           double *cov0, double *cov1) {
    if (!c || !G0 || !y || c->depth < 1)
        return wick_fail(WICK_EINVAL, "bayes: no network, inputs or observations");
    if (c->act.kind == WICK_ACT_PERCEPTRON)
        return wick_fail(WICK_EINVAL, "bayes: the perceptron has no order-1/n theory");
    int L = c->depth;
    if (m < 2 || (L <= 2 && m > 4) || (L > 2 && m != 2))
        return wick_fail(WICK_EINVAL, "bayes: %zu inputs at depth %d (2 to 4 at depth <= 2, "
                         "exactly 2 deeper: the multi-input vertex is the two-input one)", m, L);
    size_t m2 = m * m;
    double K[16], K1[16] = {0}, *V = calloc(m2 * m2 * (size_t)(L > 2 ? L : 1), sizeof(double)),
           *kap = malloc(sizeof(double) * m2 * m2);
    wick_status st = WICK_OK;
    if (!V || !kap) { st = wick_fail(WICK_ENOMEM, "bayes: out of memory"); goto done; }
    if (L == 1) {
        for (size_t u = 0; u < m2; u++) K[u] = cfg_cb(c, 1) + cfg_cw(c, 1) * G0[u];
    } else if (L == 2) {
        if ((st = shallow_moments(c, G0, m, K, V))) goto done;
    } else {
        double Kl[4 * 64], K1l[4 * 64];
        if (L > 64) { st = wick_fail(WICK_EINVAL, "bayes: depth %d (at most 64)", L); goto done; }
        if ((st = wick_gram_flow(c, G0, 2, Kl, NULL)) || (st = wick_kernel1_two(c, G0, K1l)) ||
            (st = wick_vertex2(c, G0, V)))
            goto done;
        memcpy(K, Kl + 4 * (size_t)(L - 1), sizeof(double) * 4);
        memcpy(K1, K1l + 4 * (size_t)(L - 1), sizeof(double) * 4);
        memmove(V, V + 16 * (size_t)(L - 1), sizeof(double) * 16);
    }
    kappa_from_vertex(V, m, kap);
    st = wick_bayes_posterior(K, K1, kap, m, nA, y, noise, mean0, mean1, cov0, cov1);
done:
    free(V); free(kap);
    return st;
}
