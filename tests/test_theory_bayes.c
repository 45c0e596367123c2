/* test_theory_bayes.c — finite-width Bayesian inference at order 1/n (the
 * book's ch. 6; docs/theory-residual.md §7) against exact Bayesian inference
 * of deep linear nets by importance sampling over their prior.
 *
 * The deep linear net's output is z(x) = u.x with u = W1^T v, v^T = e1^T W_L
 * ... W_2: given v, u ~ N(0, (C_W/n0)|v|^2 I), and by rotation invariance
 * |v|^2 = prod over L-1 layers of (C_W/n) chi^2_n, independent.  So the
 * network's prior is exactly a mixture over s = C_W |v|^2 of GPs with kernel
 * s G; drawing s from it and weighting by p(y | s) = N(y; 0, s G_AA + noise I)
 * gives the exact posterior mean E[s G_bA (s G_AA + noise)^-1 y | y] at any
 * width, with no use of the vertex; the same integral by quadrature over the
 * law of log s agrees with it, and being deterministic gives n (exact - GP)
 * at large n, extrapolated to its 1/n coefficient: within 1% of mean1, and
 * 1.2 mean1 is 10% away.  WICK_THEORY_FULL=1: ten times the draws. */
#include "check.h"
#include "lib/testlib.h"
#include <lapacke.h>

static int full;

/* The exact posterior mean at width n by M prior draws of s (Philox stream
 * `stream`); *se its standard error (the ratio estimator's, delta method). */
static void exact_posterior(double cw, int L, size_t n, const double *G, size_t m, const double *y,
                            double noise, size_t M, uint64_t stream, double *mean, double *se) {
    size_t nA = m - 1;
    double *g = malloc(sizeof(double) * n * (size_t)(L - 1) * 64);
    double *mv = malloc(sizeof(double) * M), *lw = malloc(sizeof(double) * M);
    double Q[64 * 64], lam[64];
    /* G_AA = Q diag(lam) Q^T once: then every s is a diagonal solve */
    for (size_t i = 0; i < nA; i++)
        for (size_t j = 0; j < nA; j++) Q[i * nA + j] = G[i * m + j];
    CHECK(LAPACKE_dsyev(LAPACK_ROW_MAJOR, 'V', 'L', (lapack_int)nA, Q, (lapack_int)nA, lam) == 0);
    double qy[64], qg[64];
    for (size_t k = 0; k < nA; k++) {
        double a = 0, b = 0;
        for (size_t i = 0; i < nA; i++) { a += Q[i * nA + k] * y[i]; b += Q[i * nA + k] * G[(m - 1) * m + i]; }
        qy[k] = a; qg[k] = b;
    }
    size_t chunk = 64;
    for (size_t k0 = 0; k0 < M; k0 += chunk) {
        size_t kn = k0 + chunk < M ? chunk : M - k0;
        wick_fill_normal_fast(g, n * (size_t)(L - 1) * kn, 2024, stream, k0 * n * (size_t)(L - 1));
        for (size_t k = 0; k < kn; k++) {
            double s = cw;
            for (int l = 0; l < L - 1; l++) {
                double c = 0;
                const double *x = g + (k * (size_t)(L - 1) + (size_t)l) * n;
                for (size_t i = 0; i < n; i++) c += x[i] * x[i];
                s *= cw * c / (double)n;
            }
            /* log N(y; 0, s G + noise) up to a constant, and the GP mean given s */
            double ll = 0, mu = 0;
            for (size_t j = 0; j < nA; j++) {
                double d = s * lam[j] + noise;
                ll += -0.5 * log(d) - 0.5 * qy[j] * qy[j] / d;
                mu += s * qg[j] * qy[j] / d;
            }
            lw[k0 + k] = ll; mv[k0 + k] = mu;
        }
    }
    double mx = -INFINITY;
    for (size_t k = 0; k < M; k++) if (lw[k] > mx) mx = lw[k];
    double sw = 0, swm = 0;
    for (size_t k = 0; k < M; k++) { double w = exp(lw[k] - mx); sw += w; swm += w * mv[k]; }
    double R = swm / sw, v = 0;
    for (size_t k = 0; k < M; k++) {
        double w = exp(lw[k] - mx);
        v += w * w * (mv[k] - R) * (mv[k] - R);
    }
    *mean = R;
    *se = sqrt(v) / sw;
    free(g); free(mv); free(lw);
}

/* Three training inputs and a test input in 3 dimensions, G = x.x'/n0. */
static void gram(double *G) {
    static const double x[4][3] = {{1.0, 0.2, -0.5}, {-0.3, 1.1, 0.4}, {0.6, -0.7, 0.9},
                                   {0.8, 0.5, 0.1}};
    for (int a = 0; a < 4; a++)
        for (int b = 0; b < 4; b++) {
            double s = 0;
            for (int k = 0; k < 3; k++) s += x[a][k] * x[b][k];
            G[a * 4 + b] = s / 3;
        }
}

static void test_noiseless_scale_mixture(void) {
    /* no noise: the posterior mean is the GP's at every width (mean1 = 0),
     * and the sampler agrees at n = 4 */
    double G[16], y[3] = {0.7, -1.2, 0.4}, m0, m1, mean, se;
    gram(G);
    CHECK_OK(wick_bayes_linear(1.3, 3, G, 4, y, 0.0, &m0, &m1));
    CHECK_NEAR(m1, 0, 1e-12 * fabs(m0) + 1e-14);
    exact_posterior(1.3, 3, 4, G, 4, y, 1e-12, 20000, 1, &mean, &se);
    CHECK_REL(mean, m0, 1e-6);
    /* refusals */
    CHECK_FAILS(wick_bayes_linear(1.0, 2, G, 1, y, 0.1, &m0, &m1), WICK_EINVAL, "inputs");
    CHECK_FAILS(wick_bayes_linear(1.0, 2, G, 4, y, -1, &m0, &m1), WICK_EINVAL, "noise");
    double Gd[9] = {1, 1, 0.5, 1, 1, 0.5, 0.5, 0.5, 1};  /* a repeated input, no noise */
    CHECK_FAILS(wick_bayes_linear(1.0, 2, Gd, 3, y, 0.0, &m0, &m1), WICK_ENUMERIC, "noise > 0");
}

/* The exact posterior mean at width n by quadrature over the prior of
 * U = log(s / C_W^L), the sum of L-1 independent log(chi^2_n / n), whose
 * density log p(u) = (n/2) log(n/2) - lgamma(n/2) + n u/2 - (n/2) e^u is
 * convolved on a grid: deterministic, so the 1/n coefficient can be
 * extrapolated from wide nets (the sampler above is noisy there). */
static double exact_quadrature(double cw, int L, size_t n, const double *G, const double *y,
                               double noise) {
    enum { N = 2000 };
    double dn = (double)n, R = 120.0 / dn + 10 * sqrt(2.0 / dn), h = R / N;
    static double p1[2 * N + 1], p[2 * N + 1], t[2 * N + 1];
    for (int k = -N; k <= N; k++) {
        double u = k * h;
        p1[k + N] = exp(0.5 * dn * log(0.5 * dn) - lgamma(0.5 * dn) + 0.5 * dn * u - 0.5 * dn * exp(u));
        p[k + N] = p1[k + N];
    }
    for (int l = 1; l < L - 1; l++) {
        for (int k = -N; k <= N; k++) {
            double a = 0;
            for (int j = -N; j <= N; j++) {
                int d = k - j;
                if (d >= -N && d <= N) a += p[j + N] * p1[d + N];
            }
            t[k + N] = a * h;
        }
        memcpy(p, t, sizeof p);
    }
    double Q[9], lam[3], qy[3], qg[3];
    for (int i = 0; i < 3; i++) for (int j = 0; j < 3; j++) Q[i * 3 + j] = G[i * 4 + j];
    CHECK(LAPACKE_dsyev(LAPACK_ROW_MAJOR, 'V', 'L', 3, Q, 3, lam) == 0);
    for (int k = 0; k < 3; k++) {
        qy[k] = qg[k] = 0;
        for (int i = 0; i < 3; i++) { qy[k] += Q[i * 3 + k] * y[i]; qg[k] += Q[i * 3 + k] * G[12 + i]; }
    }
    double sw = 0, swm = 0, s0 = pow(cw, L), lmax = -INFINITY, *ll = t;
    for (int k = -N; k <= N; k++) {
        double s = s0 * exp(k * h), v = 0;
        for (int j = 0; j < 3; j++) { double d = s * lam[j] + noise; v += -0.5 * log(d) - 0.5 * qy[j] * qy[j] / d; }
        ll[k + N] = v;
        if (p[k + N] > 0 && v > lmax) lmax = v;
    }
    for (int k = -N; k <= N; k++) {
        double s = s0 * exp(k * h), mu = 0;
        for (int j = 0; j < 3; j++) mu += s * qg[j] * qy[j] / (s * lam[j] + noise);
        double w = p[k + N] * exp(ll[k + N] - lmax);
        sw += w; swm += w * mu;
    }
    return swm / sw;
}

/* The 1/n correction with noise: the quadrature's n (exact - GP), Richardson-
 * extrapolated from n = 512 and 1024, against mean1; and the quadrature
 * against importance sampling (brute force over the prior) at n = 8 and 32. */
static void run_fit(double cw, int L, double noise, const double *y) {
    double G[16], m0, m1;
    gram(G);
    CHECK_OK(wick_bayes_linear(cw, L, G, 4, y, noise, &m0, &m1));
    size_t M = full ? 2000000 : 200000;
    size_t ws[] = {8, 32};
    for (int w = 0; w < 2; w++) {
        double mean, se, q = exact_quadrature(cw, L, ws[w], G, y, noise);
        exact_posterior(cw, L, ws[w], G, 4, y, noise, M, 10 + (uint64_t)w, &mean, &se);
        fprintf(stderr, "  n = %zu: posterior mean by importance sampling %.6g +- %.2g, by "
                "quadrature %.6g (%+.1f se)\n", ws[w], mean, se, q, (mean - q) / se);
        CHECK(fabs(mean - q) < 4 * se);
    }
    double f[4];
    size_t wl[4] = {64, 128, 512, 1024};
    for (int w = 0; w < 4; w++)
        f[w] = (double)wl[w] * (exact_quadrature(cw, L, wl[w], G, y, noise) - m0);
    double rich = 2 * f[3] - f[2];
    fprintf(stderr, "  L = %d, C_W = %g, noise %g: GP mean %.6g; n (exact - GP) at n = 64, 128, "
            "512, 1024: %.5g %.5g %.5g %.5g -> %.6g; predicted 1/n coefficient %.6g\n", L, cw,
            noise, m0, f[0], f[1], f[2], f[3], rich, m1);
    CHECK(fabs(rich - m1) < 0.01 * fabs(m1));
    CHECK(fabs(rich - 1.2 * m1) > 0.1 * fabs(m1));
}

static void test_posterior_mean_depth2(void) {
    double y[3] = {0.9, -1.4, 0.3};
    run_fit(1.0, 2, 0.1, y);
}
static void test_posterior_mean_depth4(void) {
    double y[3] = {1.5, -0.4, 1.1};
    run_fit(1.2, 4, 0.05, y);
}

int main(void) {
    const char *f = getenv("WICK_THEORY_FULL");
    full = f && *f && strcmp(f, "0") != 0;
    RUN(test_noiseless_scale_mixture);
    RUN(test_posterior_mean_depth2);
    RUN(test_posterior_mean_depth4);
    return chk_finish();
}
