/* test_theory_bayes.c — finite-width Bayesian inference at order 1/n (the
 * book's ch. 6; docs/theory-residual.md §7, docs/theory-bayes.md) against
 * exact Bayesian inference of deep linear nets by importance sampling over
 * their prior and quadrature (posterior mean and covariance), and of tanh
 * nets by importance sampling over their prior (below, exact_net).
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

/* The grid of the quadratures below: u = k h, |k| <= N. */
enum { N = 2000 };

/* The prior of U = log(s / C_W^L), the sum of L-1 independent
 * log(chi^2_n / n), whose density log p(u) = (n/2) log(n/2) - lgamma(n/2) +
 * n u/2 - (n/2) e^u is convolved on the grid: p[k + N] at u = k h; returns h. */
static double logs_prior(size_t n, int L, double *p) {
    double dn = (double)n, R = 120.0 / dn + 10 * sqrt(2.0 / dn), h = R / N;
    static double p1[2 * N + 1], t[2 * N + 1];
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
        memcpy(p, t, sizeof t);
    }
    return h;
}

/* The log likelihood of the targets given s = s0 e^{k h}, up to a constant:
 * ll[k + N], from the training Gram's eigenvalues lam and the targets in its
 * eigenbasis qy (3 inputs); returns its largest value where the prior p > 0. */
static double logs_likelihood(double s0, double h, const double *lam, const double *qy,
                              double noise, const double *p, double *ll) {
    double lmax = -INFINITY;
    for (int k = -N; k <= N; k++) {
        double s = s0 * exp(k * h), v = 0;
        for (int j = 0; j < 3; j++) { double d = s * lam[j] + noise; v += -0.5 * log(d) - 0.5 * qy[j] * qy[j] / d; }
        ll[k + N] = v;
        if (p[k + N] > 0 && v > lmax) lmax = v;
    }
    return lmax;
}

/* The exact posterior mean at width n by quadrature over the prior of U
 * (logs_prior): deterministic, so the 1/n coefficient can be extrapolated
 * from wide nets (the sampler above is noisy there). */
static double exact_quadrature(double cw, int L, size_t n, const double *G, const double *y,
                               double noise) {
    static double p[2 * N + 1], ll[2 * N + 1];
    double h = logs_prior(n, L, p);
    double Q[9], lam[3], qy[3], qg[3];
    for (int i = 0; i < 3; i++) for (int j = 0; j < 3; j++) Q[i * 3 + j] = G[i * 4 + j];
    CHECK(LAPACKE_dsyev(LAPACK_ROW_MAJOR, 'V', 'L', 3, Q, 3, lam) == 0);
    for (int k = 0; k < 3; k++) {
        qy[k] = qg[k] = 0;
        for (int i = 0; i < 3; i++) { qy[k] += Q[i * 3 + k] * y[i]; qg[k] += Q[i * 3 + k] * G[12 + i]; }
    }
    double sw = 0, swm = 0, s0 = pow(cw, L), lmax = logs_likelihood(s0, h, lam, qy, noise, p, ll);
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


/* ---- the posterior covariance, several test inputs (deep linear) ---- */

/* Three training inputs and two test inputs in 3 dimensions. */
static void gram5(double *G) {
    static const double x[5][3] = {{1.0, 0.2, -0.5}, {-0.3, 1.1, 0.4}, {0.6, -0.7, 0.9},
                                   {0.8, 0.5, 0.1}, {-0.2, 0.3, 1.2}};
    for (int a = 0; a < 5; a++)
        for (int b = 0; b < 5; b++) {
            double s = 0;
            for (int k = 0; k < 3; k++) s += x[a][k] * x[b][k];
            G[a * 5 + b] = s / 3;
        }
}

/* The exact posterior mean [2] and covariance [2x2] of the deep linear net
 * at width n over the two test inputs of gram5, by quadrature over log s as
 * exact_quadrature: given s the posterior is Gaussian with mean mu(s) and
 * covariance C(s), so the exact covariance is E[C + mu mu^T | y] - E[mu] E[mu]^T. */
static void exact_quadrature_post(double cw, int L, size_t n, const double *G, const double *y,
                                  double noise, double *mean, double *cov) {
    static double p[2 * N + 1], ll[2 * N + 1];
    double h = logs_prior(n, L, p);
    double Q[9], lam[3], qy[3], qg[2][3];
    for (int i = 0; i < 3; i++) for (int j = 0; j < 3; j++) Q[i * 3 + j] = G[i * 5 + j];
    CHECK(LAPACKE_dsyev(LAPACK_ROW_MAJOR, 'V', 'L', 3, Q, 3, lam) == 0);
    for (int k = 0; k < 3; k++) {
        qy[k] = qg[0][k] = qg[1][k] = 0;
        for (int i = 0; i < 3; i++) {
            qy[k] += Q[i * 3 + k] * y[i];
            for (int b = 0; b < 2; b++) qg[b][k] += Q[i * 3 + k] * G[(3 + b) * 5 + i];
        }
    }
    double s0 = pow(cw, L), lmax = logs_likelihood(s0, h, lam, qy, noise, p, ll);
    double sw = 0, sm[2] = {0, 0}, sS[4] = {0, 0, 0, 0};
    for (int k = -N; k <= N; k++) {
        double s = s0 * exp(k * h), mu[2] = {0, 0}, C[4];
        for (int b = 0; b < 2; b++)
            for (int j = 0; j < 3; j++) mu[b] += s * qg[b][j] * qy[j] / (s * lam[j] + noise);
        for (int a = 0; a < 2; a++)
            for (int b = 0; b < 2; b++) {
                double c = s * G[(3 + a) * 5 + 3 + b];
                for (int j = 0; j < 3; j++) c -= s * s * qg[a][j] * qg[b][j] / (s * lam[j] + noise);
                C[a * 2 + b] = c + mu[a] * mu[b];
            }
        double w = p[k + N] * exp(ll[k + N] - lmax);
        sw += w;
        for (int b = 0; b < 2; b++) sm[b] += w * mu[b];
        for (int b = 0; b < 4; b++) sS[b] += w * C[b];
    }
    for (int b = 0; b < 2; b++) mean[b] = sm[b] / sw;
    for (int a = 0; a < 2; a++)
        for (int b = 0; b < 2; b++) cov[a * 2 + b] = sS[a * 2 + b] / sw - mean[a] * mean[b];
}

static void run_cov_fit(double cw, int L, double noise, const double *y) {
    double G[25], m0[2], m1[2], c0[4], c1[4];
    gram5(G);
    CHECK_OK(wick_bayes_linear_posterior(cw, L, G, 5, 3, y, noise, m0, m1, c0, c1));
    /* one test input at a time: the same as wick_bayes_linear's mean */
    for (int b = 0; b < 2; b++) {
        double G4[16], a0, a1, Gs[9];
        int idx[4] = {0, 1, 2, 3 + b};
        for (int i = 0; i < 4; i++) for (int j = 0; j < 4; j++) G4[i * 4 + j] = G[idx[i] * 5 + idx[j]];
        CHECK_OK(wick_bayes_linear(cw, L, G4, 4, y, noise, &a0, &a1));
        CHECK_NEAR(a0, m0[b], 1e-12 * (1 + fabs(a0)));
        CHECK_NEAR(a1, m1[b], 1e-12 * (1 + fabs(a1)));
        (void)Gs;
    }
    double f[3][6];  /* n (exact - GP) for mean[2], cov[4] at n = 256, 512, 1024 */
    size_t wl[3] = {256, 512, 1024};
    for (int w = 0; w < 3; w++) {
        double me[2], cv[4];
        exact_quadrature_post(cw, L, wl[w], G, y, noise, me, cv);
        for (int b = 0; b < 2; b++) f[w][b] = (double)wl[w] * (me[b] - m0[b]);
        for (int b = 0; b < 4; b++) f[w][2 + b] = (double)wl[w] * (cv[b] - c0[b]);
    }
    double pred[6] = {m1[0], m1[1], c1[0], c1[1], c1[2], c1[3]};
    const char *nm[6] = {"mean_1", "mean_2", "cov_11", "cov_12", "cov_21", "cov_22"};
    double gp[6] = {m0[0], m0[1], c0[0], c0[1], c0[2], c0[3]};
    for (int k = 0; k < 6; k++) {
        /* f = c1 + c2/n + c3/n^2 at n, 2n, 4n */
        double rich = (8 * f[2][k] - 6 * f[1][k] + f[0][k]) / 3;
        fprintf(stderr, "  L = %d, C_W = %g, noise %g, %s: GP %.6g; n (exact - GP) at n = 256, "
                "512, 1024: %.6g %.6g %.6g -> %.6g; predicted %.6g\n", L, cw, noise, nm[k], gp[k],
                f[0][k], f[1][k], f[2][k], rich, pred[k]);
        CHECK(fabs(rich - pred[k]) < 0.01 * fabs(pred[k]) + 1e-9);
        CHECK(fabs(rich - 1.2 * pred[k]) > 0.1 * fabs(pred[k]));
    }
    CHECK_NEAR(c1[1], c1[2], 1e-12 * (1 + fabs(c1[1])));
}

static void test_posterior_cov_deep_linear(void) {
    double y1[3] = {0.9, -1.4, 0.3}, y2[3] = {1.5, -0.4, 1.1};
    run_cov_fit(1.0, 2, 0.1, y1);
    run_cov_fit(1.2, 4, 0.05, y2);
}

/* Without noise the deep linear net's posterior is a scale mixture whose
 * scale's posterior moves with y^T K^-1 y: the book's closed form, cov1 =
 * (L - 1)(y^T K_AA^-1 y - nA) Sigma_GP, and mean1 = 0. */
static void test_posterior_cov_noiseless_closed_form(void) {
    double G[25], y[3] = {0.7, -1.2, 0.4}, m0[2], m1[2], c0[4], c1[4];
    gram5(G);
    int L = 3;
    double cw = 1.3, s = pow(cw, L), Ki[9];
    CHECK_OK(wick_bayes_linear_posterior(cw, L, G, 5, 3, y, 0.0, m0, m1, c0, c1));
    for (int i = 0; i < 3; i++) for (int j = 0; j < 3; j++) Ki[i * 3 + j] = s * G[i * 5 + j];
    CHECK(LAPACKE_dpotrf(LAPACK_ROW_MAJOR, 'L', 3, Ki, 3) == 0);
    CHECK(LAPACKE_dpotri(LAPACK_ROW_MAJOR, 'L', 3, Ki, 3) == 0);
    double q = 0;
    for (int i = 0; i < 3; i++)
        for (int j = 0; j < 3; j++) q += y[i] * Ki[(i > j ? i : j) * 3 + (i > j ? j : i)] * y[j];
    for (int k = 0; k < 4; k++) CHECK_NEAR(c1[k], (L - 1) * (q - 3) * c0[k], 1e-9 * (1 + fabs(c1[k])));
    for (int b = 0; b < 2; b++) CHECK_NEAR(m1[b], 0, 1e-10 * (1 + fabs(m0[b])));
    CHECK_FAILS(wick_bayes_posterior(G, NULL, NULL, 5, 5, y, 0.1, m0, m1, c0, c1), WICK_EINVAL,
                "training");
    CHECK_FAILS(wick_bayes_posterior(G, NULL, NULL, 5, 0, y, 0.1, m0, m1, c0, c1), WICK_EINVAL,
                "training");
}

/* ---- nonlinear nets: exact posterior by importance sampling ---- */

/* Exact finite-width Bayesian inference for an MLP of depth L (every hidden
 * width n) on m inputs, the last one the test input: the preactivations of a
 * layer given the previous are N(0, Ghat) per neuron, independent, with
 * Ghat = C_b + (C_W/n) sum_j sigma_j sigma_j^T of the previous layer (the
 * first layer's Ghat = C_b + C_W G0), so a network's outputs at the m inputs
 * are drawn layer by layer with m normals per neuron, and the last layer's
 * Gaussian is integrated analytically (its mean and variance at the test
 * input given y, and the likelihood of y).  Batches give a jackknife se;
 * ess = (sum w)^2 / sum w^2. */
typedef struct { double mean, mean_se, var, var_se, ess; } post_est;

static int chol(const double *A, size_t m, double *Lc) {
    for (size_t i = 0; i < m; i++)
        for (size_t j = 0; j <= i; j++) {
            double s = A[i * m + j];
            for (size_t k = 0; k < j; k++) s -= Lc[i * m + k] * Lc[j * m + k];
            if (i == j) { if (s <= 0) return -1; Lc[i * m + i] = sqrt(s); }
            else Lc[i * m + j] = s / Lc[j * m + j];
        }
    return 0;
}

static post_est exact_net(wick_act act, int L, double cb, double cw, const double *G0, size_t m,
                          const double *y, double noise, size_t n, size_t M, uint64_t stream) {
    enum { NB = 40 };
    size_t nA = m - 1, per = n * m * (size_t)(L - 1);
    double bmx[NB], bw[NB], bwm[NB], bwS[NB], bw2[NB];
    double *g = malloc(sizeof(double) * per * 64), *sg = malloc(sizeof(double) * n * m);
    for (int b = 0; b < NB; b++) { bmx[b] = -INFINITY; bw[b] = bwm[b] = bwS[b] = bw2[b] = 0; }
    size_t chunk = 64;
    for (size_t k0 = 0; k0 < M; k0 += chunk) {
        size_t kn = k0 + chunk < M ? chunk : M - k0;
        wick_fill_normal_fast(g, per * kn, 77, stream, k0 * per);
        for (size_t k = 0; k < kn; k++) {
            double Gh[16], Lc[16] = {0};
            for (size_t u = 0; u < m * m; u++) Gh[u] = cb + cw * G0[u];
            const double *xi = g + k * per;
            for (int l = 1; l < L; l++) {
                if (chol(Gh, m, Lc)) { for (size_t a = 0; a < m; a++) Gh[a * m + a] += 1e-12; CHECK(chol(Gh, m, Lc) == 0); }
                for (size_t j = 0; j < n; j++) {
                    const double *e = xi + ((size_t)(l - 1) * n + j) * m;
                    for (size_t a = 0; a < m; a++) {
                        double z = 0;
                        for (size_t c = 0; c <= a; c++) z += Lc[a * m + c] * e[c];
                        sg[j * m + a] = wick_act_eval(act, z);
                    }
                }
                for (size_t a = 0; a < m; a++)
                    for (size_t c = 0; c <= a; c++) {
                        double s = 0;
                        for (size_t j = 0; j < n; j++) s += sg[j * m + a] * sg[j * m + c];
                        Gh[a * m + c] = Gh[c * m + a] = cb + cw * s / (double)n;
                    }
            }
            /* the output: y's likelihood, and the test output's mean and variance given y */
            double Kt[9], Lt[9] = {0}, v[3], u[3];
            for (size_t a = 0; a < nA; a++)
                for (size_t c = 0; c < nA; c++) Kt[a * nA + c] = Gh[a * m + c] + (a == c ? noise : 0);
            CHECK(chol(Kt, nA, Lt) == 0);
            double ld = 0, q = 0, mu = 0, var = Gh[nA * m + nA];
            for (size_t a = 0; a < nA; a++) {  /* forward solves Lt v = y, Lt u = k_A,test */
                double s = y[a], t = Gh[a * m + nA];
                for (size_t c = 0; c < a; c++) { s -= Lt[a * nA + c] * v[c]; t -= Lt[a * nA + c] * u[c]; }
                v[a] = s / Lt[a * nA + a]; u[a] = t / Lt[a * nA + a];
                ld += log(Lt[a * nA + a]); q += v[a] * v[a]; mu += u[a] * v[a]; var -= u[a] * u[a];
            }
            double lw = -ld - 0.5 * q;
            int b = (int)((k0 + k) * NB / M);
            if (lw > bmx[b]) {
                double r = exp(bmx[b] - lw);
                bw[b] *= r; bwm[b] *= r; bwS[b] *= r; bw2[b] *= r * r; bmx[b] = lw;
            }
            double w = exp(lw - bmx[b]);
            bw[b] += w; bwm[b] += w * mu; bwS[b] += w * (var + mu * mu); bw2[b] += w * w;
        }
    }
    double mx = -INFINITY;
    for (int b = 0; b < NB; b++) if (bmx[b] > mx) mx = bmx[b];
    double T[4] = {0, 0, 0, 0};
    for (int b = 0; b < NB; b++) {
        double r = exp(bmx[b] - mx);
        bw[b] *= r; bwm[b] *= r; bwS[b] *= r; bw2[b] *= r * r;
        T[0] += bw[b]; T[1] += bwm[b]; T[2] += bwS[b]; T[3] += bw2[b];
    }
    post_est o;
    o.mean = T[1] / T[0];
    o.var = T[2] / T[0] - o.mean * o.mean;
    o.ess = T[0] * T[0] / T[3];
    double jm[NB], jv[NB], am = 0, av = 0;
    for (int b = 0; b < NB; b++) {
        double w = T[0] - bw[b], me = (T[1] - bwm[b]) / w;
        jm[b] = me; jv[b] = (T[2] - bwS[b]) / w - me * me;
        am += jm[b] / NB; av += jv[b] / NB;
    }
    double sm = 0, sv = 0;
    for (int b = 0; b < NB; b++) { sm += (jm[b] - am) * (jm[b] - am); sv += (jv[b] - av) * (jv[b] - av); }
    o.mean_se = sqrt(sm * (NB - 1) / NB);
    o.var_se = sqrt(sv * (NB - 1) / NB);
    free(g); free(sg);
    return o;
}

/* Weighted least squares d_n = c1/n + ... + ck/n^k (k = 2 or 3) over nw
 * widths: c1, its se, and chi^2 (nw - k degrees of freedom). */
static void fitk(int k, const size_t *ns, const double *d, const double *se, int nw, double *c1,
                 double *c1se, double *chi2) {
    double A[9] = {0}, bv[3] = {0}, c[3];
    for (int i = 0; i < nw; i++) {
        double x[3], w = 1 / (se[i] * se[i]);
        x[0] = 1.0 / (double)ns[i]; x[1] = x[0] * x[0]; x[2] = x[1] * x[0];
        for (int r = 0; r < k; r++) {
            bv[r] += w * x[r] * d[i];
            for (int q = 0; q < k; q++) A[r * k + q] += w * x[r] * x[q];
        }
    }
    double Ai[9];
    memcpy(Ai, A, sizeof A);
    CHECK(LAPACKE_dpotrf(LAPACK_ROW_MAJOR, 'L', k, Ai, k) == 0);
    CHECK(LAPACKE_dpotri(LAPACK_ROW_MAJOR, 'L', k, Ai, k) == 0);
    for (int r = 0; r < k; r++)
        for (int q = r + 1; q < k; q++) Ai[r * k + q] = Ai[q * k + r];
    for (int r = 0; r < k; r++) {
        c[r] = 0;
        for (int q = 0; q < k; q++) c[r] += Ai[r * k + q] * bv[q];
    }
    *c1 = c[0];
    *c1se = sqrt(Ai[0]);
    double x2 = 0;
    for (int i = 0; i < nw; i++) {
        double f = 0, p = 1;
        for (int r = 0; r < k; r++) { p /= (double)ns[i]; f += c[r] * p; }
        x2 += (d[i] - f) * (d[i] - f) / (se[i] * se[i]);
    }
    *chi2 = x2;
}

/* The fitted 1/n coefficients within 4 se of the predicted ones; and 1.2x
 * the prediction more than 4 se away for the mean (reject & 1) and the
 * variance (reject & 2) in the short form, reject_full's in the full form
 * (where se is a third of the short form's): those with the power for it.  The
 * full form fits wider nets: at its precision the variance's 1/n^3 term
 * biases a c1/n + c2/n^2 fit over n = 8..32 (tanh, depth 2: -0.077 +- 0.003
 * against -0.0912 predicted at y = (1.2, -0.9); n (exact - GP) = -0.081,
 * -0.085, -0.086 at n = 32, 48, 64 approaches it as c1 + c2/n with c2 = 0.33). */
static void run_net(const char *actname, int L, double cb, double cw, const double *G0, size_t m,
                    const double *y, double noise, size_t M, const size_t *ns, int order,
                    int reject, int reject_full) {
    wick_act act;
    CHECK_OK(wick_act_parse(actname, &act));
    wick_theory_config c = wick_theory_defaults(act, L);
    c.cb = cb; c.cw = cw;
    double m0, m1, c0, c1;
    CHECK_OK(wick_bayes_net(&c, G0, m, m - 1, y, noise, &m0, &m1, &c0, &c1));
    /* a sanitizer build draws a tenth (check.h CHK_SANITIZED): the same
     * checks, at about 3x the standard errors (the rejections stay > 10 se) */
    if (CHK_SANITIZED && !full) M /= 10;
    enum { NW = 6 };
    double dm[NW], dms[NW], dv[NW], dvs[NW];
    for (int w = 0; w < NW; w++) {
        post_est e = exact_net(act, L, cb, cw, G0, m, y, noise, ns[w], M, 100 + (uint64_t)w);
        dm[w] = e.mean - m0; dms[w] = e.mean_se; dv[w] = e.var - c0; dvs[w] = e.var_se;
        fprintf(stderr, "  %s L = %d, n = %zu: exact mean %.6f +- %.1e, var %.6f +- %.1e, "
                "ESS %.0f of %zu\n", actname, L, ns[w], e.mean, e.mean_se, e.var, e.var_se,
                e.ess, M);
        CHECK(e.ess > 0.25 * (double)M);
    }
    double f1, f1se, chi, g1, g1se, chv;
    fitk(order, ns, dm, dms, NW, &f1, &f1se, &chi);
    fitk(order, ns, dv, dvs, NW, &g1, &g1se, &chv);
    fprintf(stderr, "  %s L = %d, C_b %g, C_W %g, noise %g: GP mean %.6f var %.6f; 1/n coefficient "
            "of the mean: fitted %.5f +- %.5f (chi2 %.1f/%d), predicted %.5f (%+.1f se); of the "
            "variance: fitted %.5f +- %.5f (chi2 %.1f/%d), predicted %.5f (%+.1f se); fit to "
            "order 1/n^%d\n", actname, L, cb, cw, noise, m0, c0, f1, f1se, chi, NW - order, m1,
            (f1 - m1) / f1se, g1, g1se, chv, NW - order, c1, (g1 - c1) / g1se, order);
    CHECK(fabs(f1 - m1) < 4 * f1se);
    CHECK(fabs(g1 - c1) < 4 * g1se);
    int rj = full ? reject_full : reject;
    if (rj & 1) CHECK(fabs(f1 - 1.2 * m1) > 4 * f1se);
    if (rj & 2) CHECK(fabs(g1 - 1.2 * c1) > 4 * g1se);
}

/* Depth 2 with two inputs two ways: the Gauss-Hermite rule over the hidden
 * layer against wick_vertex2 and wick_gram_flow through wick_bayes_posterior. */
static void test_net_depth2_against_vertex2(void) {
    wick_act act;
    CHECK_OK(wick_act_parse("tanh", &act));
    wick_theory_config c = wick_theory_defaults(act, 2);
    c.cb = 0.1; c.cw = 2.0;
    double G0[4] = {1.0, 0.5, 0.5, 1.3}, y = 1.5, a[4], b[4], V[32], K[8], kap[16];
    CHECK_OK(wick_bayes_net(&c, G0, 2, 1, &y, 0.05, a, a + 1, a + 2, a + 3));
    CHECK_OK(wick_vertex2(&c, G0, V));
    CHECK_OK(wick_gram_flow(&c, G0, 2, K, NULL));
    const double *Vl = V + 16;
    for (int i = 0; i < 2; i++) for (int j = 0; j < 2; j++) for (int k = 0; k < 2; k++) for (int l = 0; l < 2; l++)
        kap[((i * 2 + j) * 2 + k) * 2 + l] = Vl[(i * 2 + j) * 4 + k * 2 + l] +
                                             Vl[(i * 2 + k) * 4 + j * 2 + l] + Vl[(i * 2 + l) * 4 + j * 2 + k];
    CHECK_OK(wick_bayes_posterior(K + 4, NULL, kap, 2, 1, &y, 0.05, b, b + 1, b + 2, b + 3));
    for (int k = 0; k < 4; k++) CHECK_NEAR(a[k], b[k], 1e-7 * (1 + fabs(b[k])));
    CHECK_FAILS(wick_bayes_net(&c, G0, 2, 2, &y, 0.05, a, a + 1, a + 2, a + 3), WICK_EINVAL, "training");
}

static void test_posterior_tanh_depth2(void) {
    /* two training inputs and a test input */
    double G0[9] = {1.0, 0.3, 0.6, 0.3, 0.8, -0.2, 0.6, -0.2, 1.2}, y[2] = {1.6, -1.2};
    size_t ns[6] = {8, 12, 16, 24, 32, 48}, nf[6] = {16, 24, 32, 48, 64, 96};
    run_net("tanh", 2, 0.1, 2.0, G0, 3, y, 0.05, full ? 3000000 : 200000, full ? nf : ns, 2, 0, 3);
}
static void test_posterior_tanh_depth3(void) {
    double G0[4] = {1.0, 0.5, 0.5, 1.3}, y[1] = {2.5};
    size_t ns[6] = {6, 8, 12, 16, 24, 32}, nf[6] = {12, 16, 24, 32, 48, 64};
    run_net("tanh", 3, 0.1, 2.0, G0, 2, y, 0.05, full ? 2000000 : 200000, full ? nf : ns, 2, 2, 3);
}

/* ReLU at criticality, depth 2 (full form only: about 3 minutes).  Its
 * vertex is large (V/K^2 = 5 on the diagonal), so the series in 1/n needs
 * its 1/n^3 term over n = 16..96: fitted to order 1/n^3 (a c1/n + c2/n^2
 * fit gives the variance 3.570 +- 0.023, chi2 9.7/4, against 3.446); its
 * Gauss-Hermite vertex is within 1e-3 of wick_vertex2's (the kink). */
static void test_posterior_relu_depth2(void) {
    if (!full) {
        fprintf(stderr, "  (WICK_THEORY_FULL=1 only)\n");
        return;
    }
    double G0[9] = {1.0, 0.3, 0.6, 0.3, 0.8, -0.2, 0.6, -0.2, 1.2}, y[2] = {1.6, -1.2};
    size_t nf[6] = {16, 24, 32, 48, 64, 96};
    run_net("relu", 2, 0.0, 2.0, G0, 3, y, 0.05, 1000000, nf, 3, 0, 2);
}

int main(void) {
    const char *f = getenv("WICK_THEORY_FULL");
    full = f && *f && strcmp(f, "0") != 0;
    RUN(test_noiseless_scale_mixture);
    RUN(test_posterior_mean_depth2);
    RUN(test_posterior_mean_depth4);
    RUN(test_posterior_cov_noiseless_closed_form);
    RUN(test_posterior_cov_deep_linear);
    RUN(test_net_depth2_against_vertex2);
    RUN(test_posterior_tanh_depth2);
    RUN(test_posterior_tanh_depth3);
    RUN(test_posterior_relu_depth2);
    return chk_finish();
}
