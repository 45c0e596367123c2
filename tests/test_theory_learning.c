/* test_theory_learning.c — infinite-width learning (docs/theory.md §8-9): the GP
 * posterior and log evidence against a direct dense solve, gradient descent
 * under the frozen NTK against explicit iteration and its t = 0 / t -> inf
 * reductions, the step-size and positivity checks; and wick_plot_png. */
#include "check.h"
#include "lib/testlib.h"
#include "core/core.h"

/* Kernel and NTK of a ReLU network on 5 inputs (3 training, 2 test). */
static void make_grams(double *K, double *T) {
    wick_act a;
    wick_act_parse("relu", &a);
    wick_theory_config c = wick_theory_defaults(a, 3);
    c.cb = 0.1; c.cw = 2.0;
    double x[5 * 3] = {1, 0.2, -0.5, 0.3, 1.1, 0.4, -0.7, 0.5, 1.0, 0.9, -0.1, 0.2, 0.1, 0.8, -0.6};
    double G0[25], Ks[75], Ts[75];
    CHECK_OK(wick_input_gram(x, 5, 3, G0));
    CHECK_OK(wick_gram_flow(&c, G0, 5, Ks, Ts));
    memcpy(K, Ks + 50, sizeof(double) * 25);
    memcpy(T, Ts + 50, sizeof(double) * 25);
}

/* docs/theory.md §12: the GP posterior on a 3-point problem equals a direct dense
 * solve to 1e-10, and the log evidence its textbook formula. */
static void test_gp_posterior(void) {
    double K[25], T[25], y[3 * 2] = {1, -1, 0.5, 0.2, -0.3, 0.8}, noise = 0.01;
    make_grams(K, T);
    double mean[2 * 2], cov[4], logev;
    CHECK_OK(wick_gp_posterior(K, 3, 2, y, 2, noise, mean, cov, &logev));
    double A[9], KAB[6], X[6], alpha[6];
    for (int i = 0; i < 3; i++)
        for (int j = 0; j < 3; j++) A[i * 3 + j] = K[i * 5 + j] + (i == j ? noise : 0);
    for (int i = 0; i < 3; i++)
        for (int j = 0; j < 2; j++) KAB[i * 2 + j] = K[i * 5 + 3 + j];
    chk_dense_solve(A, y, 3, 2, alpha);
    chk_dense_solve(A, KAB, 3, 2, X);
    for (int b = 0; b < 2; b++)
        for (int o = 0; o < 2; o++) {
            double m = 0;
            for (int i = 0; i < 3; i++) m += K[(3 + b) * 5 + i] * alpha[i * 2 + o];
            CHECK_NEAR(mean[b * 2 + o], m, 1e-10);
        }
    for (int b = 0; b < 2; b++)
        for (int d = 0; d < 2; d++) {
            double cv = K[(3 + b) * 5 + 3 + d];
            for (int i = 0; i < 3; i++) cv -= K[(3 + b) * 5 + i] * X[i * 2 + d];
            CHECK_NEAR(cov[b * 2 + d], cv, 1e-10);
        }
    double det = A[0] * (A[4] * A[8] - A[5] * A[7]) - A[1] * (A[3] * A[8] - A[5] * A[6]) +
                 A[2] * (A[3] * A[7] - A[4] * A[6]);
    double quad = 0;
    for (int i = 0; i < 6; i++) quad += y[i] * alpha[i];
    CHECK_NEAR(logev, -0.5 * quad - log(det) - 3 * log(2 * M_PI), 1e-10);
    /* no test inputs: just the evidence */
    double lev2, KAA[9];
    for (int i = 0; i < 3; i++)
        for (int j = 0; j < 3; j++) KAA[i * 3 + j] = K[i * 5 + j];
    CHECK_OK(wick_gp_posterior(KAA, 3, 0, y, 2, noise, NULL, NULL, &lev2));
    CHECK_NEAR(lev2, logev, 1e-12);
}

static void test_gp_invalid(void) {
    double K[9] = {1, 1, 0, 1, 1, 0, 0, 0, 1}, y[2] = {1, 2}, m[1], c[1];
    /* K_AA = [[1,1],[1,1]] is singular: not positive definite without noise */
    CHECK_FAILS(wick_gp_posterior(K, 2, 1, y, 1, 0.0, m, c, NULL), WICK_ENUMERIC,
                "not positive definite");
    CHECK_OK(wick_gp_posterior(K, 2, 1, y, 1, 0.1, m, c, NULL));
    CHECK_FAILS(wick_gp_posterior(K, 2, 1, y, 1, -0.1, m, c, NULL), WICK_EINVAL, "noise");
    double Kbad[9] = {1, 0.5, 0, 0.4, 1, 0, 0, 0, 1};
    CHECK_FAILS(wick_gp_posterior(Kbad, 2, 1, y, 1, 0.1, m, c, NULL), WICK_EINVAL, "symmetric");
}

/* docs/theory.md §9: finite t against explicit iteration of the GD dynamics, t = 0
 * gives z(0), t -> infinity kernel regression with Theta; the ensemble mean
 * and covariance at t -> infinity against direct solves. */
static void test_gd(void) {
    double K[25], T[25], y[3] = {1, -0.5, 0.25};
    make_grams(K, T);
    double z0[5] = {0.3, -0.2, 0.1, 0.05, -0.4}, zt[5];
    double TAA[9], lmax = 0;
    for (int i = 0; i < 3; i++)
        for (int j = 0; j < 3; j++) TAA[i * 3 + j] = T[i * 5 + j];
    for (int i = 0; i < 3; i++) {  /* a bound on lambda_max: the largest row sum */
        double r = 0;
        for (int j = 0; j < 3; j++) r += fabs(TAA[i * 3 + j]);
        lmax = fmax(lmax, r);
    }
    /* explicit GD: z <- z - eta Theta_{.A} (z_A - y_A); the second rate puts
       eta lambda_max above 1 (the residual oscillates while it converges) */
    const double etas[2] = {1.0 / lmax, 1.8 / lmax};
    for (int e = 0; e < 2; e++) {
        double z[5];
        memcpy(z, z0, sizeof z);
        for (int step = 0; step < 7; step++) {
            double r[3];
            for (int i = 0; i < 3; i++) r[i] = z[i] - y[i];
            for (int a = 0; a < 5; a++)
                for (int i = 0; i < 3; i++) z[a] -= etas[e] * T[a * 5 + i] * r[i];
        }
        CHECK_OK(wick_gd_predict(T, K, 3, 2, y, 1, etas[e], 7, z0, zt, NULL, NULL));
        for (int a = 0; a < 5; a++) CHECK_NEAR(zt[a], z[a], 1e-12);
    }
    double eta = 1.0 / lmax;
    /* t = 0 */
    double mean[2], cov[4];
    CHECK_OK(wick_gd_predict(T, K, 3, 2, y, 1, eta, 0, z0, zt, mean, cov));
    for (int a = 0; a < 5; a++) CHECK_NEAR(zt[a], z0[a], 1e-15);
    CHECK_NEAR(mean[0], 0, 1e-15);
    CHECK_NEAR(cov[0], K[18], 1e-14);
    CHECK_NEAR(cov[1], K[19], 1e-14);
    /* t -> infinity: z_A = y_A, z_B = z_B(0) + Theta_BA Theta_AA^-1 (y_A - z_A(0)) */
    CHECK_OK(wick_gd_predict(T, K, 3, 2, y, 1, eta, -1, z0, zt, mean, cov));
    for (int i = 0; i < 3; i++) CHECK_NEAR(zt[i], y[i], 1e-12);
    double r[3], sol[3], TAB[6], X[6];
    for (int i = 0; i < 3; i++) r[i] = y[i] - z0[i];
    chk_dense_solve(TAA, r, 3, 1, sol);
    for (int b = 0; b < 2; b++) {
        double v = z0[3 + b];
        for (int i = 0; i < 3; i++) v += T[(3 + b) * 5 + i] * sol[i];
        CHECK_NEAR(zt[3 + b], v, 1e-12);
    }
    chk_dense_solve(TAA, y, 3, 1, sol);
    for (int b = 0; b < 2; b++) {
        double v = 0;
        for (int i = 0; i < 3; i++) v += T[(3 + b) * 5 + i] * sol[i];
        CHECK_NEAR(mean[b], v, 1e-12);
    }
    /* Cov = K_BB - P K_AB - K_BA P^T + P K_AA P^T with P = Theta_BA Theta_AA^-1 */
    for (int i = 0; i < 3; i++)
        for (int b = 0; b < 2; b++) TAB[i * 2 + b] = T[i * 5 + 3 + b];
    chk_dense_solve(TAA, TAB, 3, 2, X);  /* X = P^T */
    for (int b = 0; b < 2; b++)
        for (int d = 0; d < 2; d++) {
            double v = K[(3 + b) * 5 + 3 + d];
            for (int i = 0; i < 3; i++) {
                v -= X[i * 2 + b] * K[i * 5 + 3 + d] + K[(3 + b) * 5 + i] * X[i * 2 + d];
                for (int j = 0; j < 3; j++) v += X[i * 2 + b] * K[i * 5 + j] * X[j * 2 + d];
            }
            CHECK_NEAR(cov[b * 2 + d], v, 1e-12);
        }
    /* a long finite run approaches the limit */
    double mean2[2];
    CHECK_OK(wick_gd_predict(T, K, 3, 2, y, 1, eta, 100000, NULL, NULL, mean2, NULL));
    CHECK_NEAR(mean2[0], mean[0], 1e-9);
}

static void test_gd_invalid(void) {
    double K[25], T[25], y[3] = {1, 2, 3}, mean[2];
    make_grams(K, T);
    CHECK_FAILS(wick_gd_predict(T, K, 3, 2, y, 1, 100.0, 5, NULL, NULL, mean, NULL), WICK_EINVAL,
                "would not converge");
    CHECK_FAILS(wick_gd_predict(T, K, 3, 2, y, 1, 0.0, 5, NULL, NULL, mean, NULL), WICK_EINVAL,
                "learning rate");
    double S[9] = {1, 1, 0, 1, 1, 0, 0, 0, 1};
    CHECK_FAILS(wick_gd_predict(S, S, 2, 1, y, 1, 0.1, 5, NULL, NULL, mean, NULL), WICK_ENUMERIC,
                "not positive definite");
}

/* Allocation failure at each allocation: WICK_ENOMEM, never a crash. */
static void test_alloc_failure(void) {
    double K[25], T[25], y[3] = {1, -0.5, 0.25}, mean[2], cov[4], lev;
    make_grams(K, T);
    int fails = 0;
    for (long k = 1; k <= 10; k++) {
        wick_alloc_fail_at(k);
        wick_status a = wick_gp_posterior(K, 3, 2, y, 1, 0.0, mean, cov, &lev);
        wick_alloc_fail_at(k);
        wick_status b = wick_gd_predict(T, K, 3, 2, y, 1, 0.1, 10, NULL, NULL, mean, cov);
        wick_alloc_fail_at(0);
        CHECK(a == WICK_OK || a == WICK_ENOMEM);
        CHECK(b == WICK_OK || b == WICK_ENOMEM);
        fails += (a == WICK_ENOMEM) + (b == WICK_ENOMEM);
    }
    CHECK(fails >= 5);
}

static int have_gnuplot(void) { return system("command -v gnuplot >/dev/null 2>&1") == 0; }

static void test_plot(void) {
    double x[4] = {1, 2, 3, 4}, y[4] = {1, 4, 9, 16}, e[4] = {0.5, 0.5, 1, 1};
    wick_series s[2] = {{"line", x, y, NULL, 4, 0, 0}, {"points", x, y, e, 4, 1, 0}};
    const char *path = chk_tmp("theory_plot.png");
    if (!have_gnuplot()) {
        CHECK_FAILS(wick_plot_png(path, "t", "x", "y", s, 2, 0, 0), WICK_EUNSUPPORTED, "gnuplot");
        SKIP("gnuplot not installed");
    }
    unlink(path);
    CHECK_OK(wick_plot_png(path, "a 'quoted' title", "x", "y", s, 2, 0, 1));
    FILE *f = fopen(path, "rb");
    unsigned char sig[8] = {0};
    size_t got = f ? fread(sig, 1, 8, f) : 0;
    if (f) fclose(f);
    CHECK(got == 8 && sig[0] == 0x89 && sig[1] == 'P' && sig[2] == 'N' && sig[3] == 'G');
    /* a missing gnuplot is a clear error, not a crash */
    char *old = getenv("PATH") ? strdup(getenv("PATH")) : NULL;
    setenv("PATH", "/nonexistent", 1);
    CHECK_FAILS(wick_plot_png(path, "t", "x", "y", s, 2, 0, 0), WICK_EUNSUPPORTED,
                "gnuplot is not installed");
    if (old) { setenv("PATH", old, 1); free(old); }
    CHECK_FAILS(wick_plot_png("/nonexistent/dir/p.png", "t", "x", "y", s, 2, 0, 0), WICK_EIO,
                "cannot write");
    CHECK_FAILS(wick_plot_png(path, "t", "x", "y", s, 0, 0, 0), WICK_EINVAL, "nothing to plot");
}

int main(void) {
    RUN(test_gp_posterior);
    RUN(test_gp_invalid);
    RUN(test_gd);
    RUN(test_gd_invalid);
    RUN(test_alloc_failure);
    RUN(test_plot);
    return chk_finish();
}
