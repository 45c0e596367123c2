/* test_theory_dntk.c — the dNTK-preactivation correlators P and Q (the
 * book's ch. 11; docs/theory-finite-width.md): the recursion of
 * wick_theory_finite by hand for a deep linear net, the measurement's dNTK
 * against finite differences of the autodiff NTK along one gradient step,
 * and the prediction against ensembles of real networks over widths.
 * WICK_THEORY_FULL=1 runs the long form (the closing note's table). */
#include "check.h"
#include "fit.h"
#include "lib/testlib.h"

static int full;

/* Deep linear, C_W = 1, C_b = 0, lambda_b = lambda_W = q = 1: layer 1 has
 * K = 1 and Theta = 2, so at layer 2 (no s'', no dNTK carried, F = B = 0)
 * P = lambda_W C_W Theta <s^2 s'^2> = 2 and Q = 2 P = 4; layer 3 carries
 * P with chi_par chi_perp = 1 and adds Theta^(2) <s^2 s'^2> K-terms:
 * Theta^(2) = 1 + 1 + 2 = 4, K^(2) = 1, F^(2) = 2, g' = 1, so
 * P^(3) = 4 + (2 + 2) = 8 and Q^(3) = 8 + (4 + 4) = 16. */
static void test_deep_linear_by_hand(void) {
    wick_theory_config c = wick_theory_defaults(chk_act("linear"), 3);
    c.cb = 0; c.cw = 1;
    wick_layer_finite o[3];
    CHECK_OK(wick_theory_finite(&c, 1.0, o));
    CHECK_NEAR(o[0].P, 0, 0); CHECK_NEAR(o[0].Q, 0, 0);
    CHECK_REL(o[1].P, 2, 1e-14); CHECK_REL(o[1].Q, 4, 1e-14);
    CHECK_REL(o[2].P, 8, 1e-14); CHECK_REL(o[2].Q, 16, 1e-14);
    CHECK_REL(o[1].F, 2, 1e-14);
}

/* Unequal widths (n_1 = 10, n_2 = 30): layer 3 carries layer 2's P, Q and
 * F with r = n_2/n_1 = 3 (everything of order 1/n is written with 1/n_{l-1}
 * pulled out): P^(3) = 4 + 3 (2 + 2) = 16, Q^(3) = 8 + 3 (4 + 4) = 32, while
 * layer 2, which sees only layer 1's exact Gaussian, keeps P = 2, Q = 4. */
static void test_unequal_widths_by_hand(void) {
    wick_theory_config c = wick_theory_defaults(chk_act("linear"), 3);
    c.cb = 0; c.cw = 1;
    size_t w[4] = {1, 10, 30, 30};
    c.width_l = w;
    wick_layer_finite o[3];
    CHECK_OK(wick_theory_finite(&c, 1.0, o));
    CHECK_REL(o[1].P, 2, 1e-14); CHECK_REL(o[1].Q, 4, 1e-14);
    CHECK_REL(o[2].P, 16, 1e-14); CHECK_REL(o[2].Q, 32, 1e-14);
}

/* ReLU at criticality (C_W = 2, K = 2, Theta^(l) = 2 l, F = 8, 24 at layers
 * 2, 3; g' = 1/2, h' = 0, <s s''> = <s s'^2 s''> = 0):
 * P^(l+1) = 2 Theta <s^2 s'^2> + P + 2 (1/4) F = 2 Theta + P + F/2,
 * Q^(l+1) = 4 Theta + Q + F (and F^(l+1) = 4 Theta + F). */
static void test_relu_critical_closed_form(void) {
    wick_theory_config c = wick_theory_defaults(chk_act("relu"), 4);
    c.cb = 0; c.cw = 2;
    wick_layer_finite o[4];
    CHECK_OK(wick_theory_finite(&c, 1.0, o));
    double P = 0, Q = 0, F = 0;
    for (int l = 1; l < 4; l++) {
        double Th = 2.0 * l;
        double nP = 2 * Th + P + 0.5 * F, nQ = 4 * Th + Q + F;
        F = 4 * Th + F;
        P = nP; Q = nQ;
        CHECK_REL(o[l].P, P, 1e-13);
        CHECK_REL(o[l].Q, Q, 1e-13);
    }
}

/* The quadrature path (tanh, off criticality, every hyperparameter away
 * from 1): layer 2 sees layer 1's exact Gaussian, so P^(2) and Q^(2) are
 * the layer's own terms alone,
 * P^(2) = lambda_W C_W Theta <s^2 s'^2> + 2 C_W^2 Theta^2 <s s'^2 s''> and
 * Q^(2) = P^(2) + lambda_W C_W Theta <s^2 s'^2>, here with the moments from
 * an independent midpoint rule. */
static void test_tanh_layer2_by_quadrature(void) {
    wick_theory_config c = wick_theory_defaults(chk_act("tanh"), 2);
    c.cb = 0.1; c.cw = 1.3; c.lambda_b = 0.7; c.lambda_w = 1.9;
    wick_layer_finite o[2];
    CHECK_OK(wick_theory_finite(&c, 0.8, o));
    double K = o[0].K, Th = o[0].ntk;
    /* an independent midpoint rule over z ~ N(0, K) */
    double sp = 0, x3 = 0, h = 1e-3;
    for (double t = -12; t < 12; t += h) {
        double z = (t + 0.5 * h) * sqrt(K), w = exp(-0.5 * (t + 0.5 * h) * (t + 0.5 * h)) * h /
                                                sqrt(2 * M_PI);
        double s = tanh(z), d = 1 - s * s, e = -2 * s * d;
        sp += w * s * s * d * d;
        x3 += w * s * d * d * e;
    }
    double P2 = c.lambda_w * c.cw * Th * sp + 2 * c.cw * c.cw * Th * Th * x3;
    CHECK_REL(o[1].P, P2, 1e-9);
    CHECK_REL(o[1].Q, P2 + c.lambda_w * c.cw * Th * sp, 1e-9);
}

/* The measurement's dNTK contraction M[u] against its definition: the
 * derivative of the autodiff NTK (wick_net64_ntk) along the gradient step
 * theta -= eta lambda grad(u . z), which wick_net64_gd_step takes with
 * targets y = z -+ u; central differences in eta. */
static void fd_check(const char *act, double cb, double cw, int L) {
    size_t n = 5;
    double q = 0.8, x = sqrt(q), eta = 1e-5;
    wick_ntk_fluct_config fc = {chk_act(act), cb, cw, 0.6, 1.4, q, L, n, 1, 77};
    wick_net64_config nc = {chk_act(act), cb, cw, 0.6, 1.4, L, 1, n, n};
    wick_net64 *m = NULL;
    CHECK_OK(wick_net64_new(&m, &nc, 1));
    if (!m) return;
    double u[5] = {0.3, -1.1, 0.7, 0.2, -0.5}, z[5], y[5], Hp[25], Hm[25], M[25];
    uint64_t k = 3;
    CHECK_OK(wick_dntk_contract(&fc, k, u, M));
    for (int sgn = -1; sgn <= 1; sgn += 2) {
        wick_net64_init(m, 77, k);
        CHECK_OK(wick_net64_forward(m, &x, 1, z));
        for (size_t i = 0; i < n; i++) y[i] = z[i] - sgn * u[i];
        CHECK_OK(wick_net64_gd_step(m, &x, y, 1, eta, NULL));
        CHECK_OK(wick_net64_ntk(m, &x, 1, 1, sgn > 0 ? Hp : Hm));
    }
    double err = 0, big = 0;
    for (size_t i = 0; i < n * n; i++) {
        double fd = (Hm[i] - Hp[i]) / (2 * eta);
        err = fmax(err, fabs(fd - M[i]));
        big = fmax(big, fabs(M[i]));
    }
    fprintf(stderr, "  %s depth %d: max |M - fd| = %.2g of max |M| = %.3g\n", act, L, err, big);
    CHECK(big > 0.05);
    CHECK(err < 1e-6 * (1 + big));
    wick_net64_free(m);
}

static void test_contract_matches_finite_differences(void) {
    fd_check("tanh", 0.2, 1.3, 3);
    fd_check("tanh", 0.0, 1.0, 4);
    fd_check("relu", 0.1, 2.0, 3);
    fd_check("sin", 0.0, 1.0, 3);
}

static void run_fit_at(const char *act, double cb, double cw, double lb, double lw, int L,
                       const size_t *ws, const size_t *Ms, size_t nw) {
    wick_theory_config c = wick_theory_defaults(chk_act(act), L);
    c.cb = cb; c.cw = cw; c.lambda_b = lb; c.lambda_w = lw;
    wick_layer_finite o[8];
    CHECK_OK(wick_theory_finite(&c, 1.0, o));
    double x[8], y[2][8][8], e[2][8][8], val[16], se[16];
    for (size_t w = 0; w < nw; w++) {
        wick_ntk_fluct_config fc = {chk_act(act), cb, cw, lb, lw, 1.0, L, ws[w], Ms[w], 2026};
        CHECK_OK(wick_dntk_measure(&fc, val, se));
        x[w] = 1.0 / (double)ws[w];
        for (int l = 1; l < L; l++)
            for (int t = 0; t < 2; t++) {
                y[t][l][w] = val[l * 2 + t];
                e[t][l][w] = se[l * 2 + t];
            }
    }
    /* c0 + c1/n over the widths: c0 within 4 se of P (Q), 1.2 P outside them (tests/fit.h) */
    char nm[32];
    for (int l = 1; l < L; l++) {
        snprintf(nm, sizeof nm, "%s P", act);
        FIT_CHECK(x, y[0][l], e[0][l], nw, o[l].P, NAN, 1, "%-10s layer %d", nm, l + 1);
        snprintf(nm, sizeof nm, "%s Q", act);
        FIT_CHECK(x, y[1][l], e[1][l], nw, o[l].Q, NAN, 1, "%-10s layer %d", nm, l + 1);
    }
}

static void run_fit(const char *act, double cw, int L, const size_t *ws, const size_t *Ms,
                    size_t nw) {
    run_fit_at(act, 0.0, cw, 1.0, 1.0, L, ws, Ms, nw);
}

static void test_dntk_measured_relu_critical(void) {
    static const size_t ws[] = {16, 32, 64}, Ms[] = {4000, 2000, 1000};
    static const size_t wf[] = {16, 32, 64, 128}, Mf[] = {40000, 20000, 8000, 2000};
    if (full) run_fit("relu", 2.0, 4, wf, Mf, 4);
    else run_fit("relu", 2.0, 3, ws, Ms, 3);
}

static void test_dntk_measured_tanh_critical(void) {
    static const size_t ws[] = {16, 32, 64}, Ms[] = {4000, 2000, 1000};
    static const size_t wf[] = {16, 32, 64, 128}, Mf[] = {40000, 20000, 8000, 2000};
    if (full) run_fit("tanh", 1.0, 4, wf, Mf, 4);
    else run_fit("tanh", 1.0, 3, ws, Ms, 3);
}

/* Off criticality, C_b != 0 and unequal learning rates, through the
 * quadrature path (gelu; sin's closed forms; leaky ReLU's scale-invariant
 * forms with Q = 2 P): the recursion's every term is exercised. */
static void test_dntk_measured_other(void) {
    static const size_t ws[] = {16, 32, 64}, Ms[] = {3000, 1500, 750};
    static const size_t wf[] = {16, 32, 64, 128}, Mf[] = {40000, 20000, 8000, 2000};
    const size_t *w = full ? wf : ws, *M = full ? Mf : Ms;
    size_t nw = full ? 4 : 3;
    run_fit_at("gelu", 0.1, 1.6, 0.5, 2.0, 3, w, M, nw);
    if (full) {
        run_fit_at("sin", 0.2, 1.2, 1.5, 0.7, 3, w, M, nw);
        run_fit_at("leaky_relu:0.2", 0.3, 1.5, 0.5, 1.0, 3, w, M, nw);
        run_fit_at("swish", 0.0, 2.0, 1.0, 1.0, 3, w, M, nw);
        run_fit_at("linear", 0.5, 1.0, 0.3, 1.2, 3, w, M, nw);
    }
}

int main(void) {
    const char *f = getenv("WICK_THEORY_FULL");
    full = f && *f && strcmp(f, "0") != 0;
    RUN(test_deep_linear_by_hand);
    RUN(test_unequal_widths_by_hand);
    RUN(test_relu_critical_closed_form);
    RUN(test_tanh_layer2_by_quadrature);
    RUN(test_contract_matches_finite_differences);
    RUN(test_dntk_measured_relu_critical);
    RUN(test_dntk_measured_tanh_critical);
    RUN(test_dntk_measured_other);
    return chk_finish();
}
