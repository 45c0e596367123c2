/* test_theory_gd1.c — the mean output after one step of full-batch MSE
 * gradient descent at order 1/n (wick_gd_mean1; docs/theory-finite-width.md,
 * "One step of gradient descent at order 1/n"): its terms by hand, and
 * against the measured step of real networks (wick_gd1_measure) over widths.
 * WICK_THEORY_FULL=1 runs the long form (the closing note's numbers). */
#include "check.h"
#include "lib/testlib.h"

static int full;

/* ReLU at criticality, depth 3 (K = 2, Theta = 6, Theta1 = 0, P = 16,
 * Q = 32 at layer 3; tests/test_theory_dntk.c): a2 = -eta^2 (P + nout Q/2),
 * a3 = (eta^3/2) R (K (nout + 2) + |y|^2). */
static void test_terms_by_hand(void) {
    wick_theory_config c = wick_theory_defaults(chk_act("relu"), 3);
    c.cb = 0; c.cw = 2;
    double y[3] = {1.0, -2.0, 0.5};
    wick_gd1_terms t;
    CHECK_OK(wick_gd_mean1(&c, 1.0, 1, y, 0.08, NAN, &t));
    CHECK_REL(t.lin, 0.48, 1e-13);
    CHECK_NEAR(t.a1, 0, 1e-13);
    CHECK_REL(t.a2, -0.0064 * 32, 1e-13);
    CHECK_NEAR(t.a3, 0, 1e-13);   /* wick_theory_ddntk's R = 0 for ReLU */
    CHECK_OK(wick_gd_mean1(&c, 1.0, 3, y, 0.08, 2.0, &t));
    CHECK_REL(t.a2, -0.0064 * (16 + 48), 1e-13);
    CHECK_REL(t.a3, 0.000512 / 2 * 2.0 * (2 * 5 + 5.25), 1e-13);
    CHECK_FAILS(wick_gd_mean1(&c, 1.0, 0, y, 0.08, NAN, &t), WICK_EINVAL, "");
    y[1] = NAN;
    CHECK_FAILS(wick_gd_mean1(&c, 1.0, 3, y, 0.08, NAN, &t), WICK_EINVAL, "");
}

/* Fits n * measured = c1 + c2 / n over the widths and checks c1 against
 * pred within 4 standard errors, and (reject = 1) 1.2 x pred outside them. */
static void fit_check(const char *what, double pred, const double *x, const double *y,
                      const double *e, size_t nw, int reject) {
    double s, se_s, c1, c1e, chi;
    CHECK_OK(wick_fit_line(x, y, e, nw, &s, &se_s, &c1, &c1e, &chi));
    double z = (c1 - pred) / c1e, zw = (c1 - 1.2 * pred) / c1e;
    fprintf(stderr, "  %-30s predicted %10.5g  fitted %10.5g +- %-8.3g (%+.1f se; x1.2: %+.1f se; "
            "chi2/dof %.2f)\n", what, pred, c1, c1e, z, zw, chi);
    if (!(fabs(z) <= 4)) FAIL("%s: fitted %g +- %g vs predicted %g", what, c1, c1e, pred);
    if (reject && !(fabs(zw) > 4))
        FAIL("%s: the fit does not reject 1.2 x the prediction (%g +- %g vs %g)", what, c1, c1e,
             1.2 * pred);
}

/* The eta^2 part of the one-step mean, beyond each network's own frozen-NTK
 * step: E[res2_i] = -eta^2 (P + nout Q/2) y_i / n, fitted on its projection
 * sum_i y_i res2_i / |y|^2 (both outputs' evidence at once). */
static void eta2_fit(const char *act, double cw, int L, size_t nout, const double *y, double eta,
                     const size_t *ws, const size_t *Ms, size_t nw, int reject) {
    wick_act a = chk_act(act);
    wick_theory_config tc = wick_theory_defaults(a, L);
    tc.cb = 0; tc.cw = cw;
    wick_gd1_terms t;
    CHECK_OK(wick_gd_mean1(&tc, 1.0, nout, y, eta, NAN, &t));
    double x[8], v[8], e[8], val[WICK_GD1_COUNT * 8], se[WICK_GD1_COUNT * 8], y2 = 0;
    for (size_t i = 0; i < nout; i++) y2 += y[i] * y[i];
    for (size_t w = 0; w < nw; w++) {
        wick_gd1_config c = {{a, 0, cw, 1, 1, L, 1, ws[w], nout}, 1.0, eta, y, Ms[w], 2026, 1};
        CHECK_OK(wick_gd1_measure(&c, val, se));
        x[w] = 1.0 / (double)ws[w];
        v[w] = 0; e[w] = 0;
        /* the outputs' errors are correlated (the same networks): add them
         * linearly, an upper bound */
        for (size_t i = 0; i < nout; i++) {
            v[w] += (double)ws[w] * val[WICK_GD1_RES2 * nout + i] * y[i] / y2;
            e[w] += (double)ws[w] * se[WICK_GD1_RES2 * nout + i] * fabs(y[i]) / y2;
        }
    }
    char nm[64];
    snprintf(nm, sizeof nm, "%s L%d nout %zu eta^2 part", act, L, nout);
    fit_check(nm, t.a2, x, v, e, nw, reject);
}

static void test_eta2_tanh_critical(void) {
    static const size_t ws[] = {8, 16, 32}, Ms[] = {12000, 8000, 6000};
    static const size_t wf[] = {16, 32, 64, 128, 256}, Mf[] = {64000, 32000, 16000, 8000, 4000};
    double y1[1] = {1.0};
    if (full) eta2_fit("tanh", 1.0, 3, 1, y1, 0.1, wf, Mf, 5, 1);
    else eta2_fit("tanh", 1.0, 3, 1, y1, 0.1, ws, Ms, 3, 1);
}

/* nout = 2 takes P + Q instead of P + Q/2 (a2 = 0.0249 against 0.0197). */
static void test_eta2_tanh_two_outputs(void) {
    static const size_t ws[] = {8, 16, 32}, Ms[] = {8000, 6000, 4000};
    static const size_t wf[] = {16, 32, 64, 128, 256}, Mf[] = {64000, 32000, 16000, 8000, 4000};
    double y2[2] = {1.0, -0.5};
    if (full) eta2_fit("tanh", 1.0, 3, 2, y2, 0.1, wf, Mf, 5, 1);
    else eta2_fit("tanh", 1.0, 3, 2, y2, 0.1, ws, Ms, 3, 1);
}

/* ReLU's eta^2 part, at eta = 0.04, agreement only: the measured part may
 * sit a few per cent above P + Q/2 (full form: -0.0553 +- 0.0015 and
 * -0.0530 +- 0.0016 with two seeds against -0.0512; -0.2242 +- 0.0056
 * against -0.2048 at eta = 0.08), a possible eta^2/n kink term
 * (docs/theory-finite-width.md), so 1.2 x is no clean alternative here;
 * tanh's test rejects it. */
static void test_eta2_relu_critical(void) {
    static const size_t ws[] = {16, 32, 64}, Ms[] = {3000, 1500, 800};
    static const size_t wf[] = {16, 32, 64, 128, 256}, Mf[] = {128000, 64000, 32000, 16000, 8000};
    double y1[1] = {1.0};
    if (full) eta2_fit("relu", 2.0, 3, 1, y1, 0.04, wf, Mf, 5, 0);
    else eta2_fit("relu", 2.0, 3, 1, y1, 0.04, ws, Ms, 3, 0);
}

/* The eta^3 part is (eta^3/2) R (K (nout + 2) + |y|^2) y_i / n: its size
 * needs the ddNTK mean R, but its dependence on the targets does not.  At
 * one width, the part per unit target for y = 2 over that for y = 1 must be
 * (3K + 4) / (3K + 1) (2.75 for tanh at criticality), which needs
 * E[ddI z z] = E[ddI] K (the mixed z z y terms): without them the ratio
 * would be 4, with them alone 1. */
static void test_eta3_target_dependence_tanh(void) {
    wick_act a = chk_act("tanh");
    wick_theory_config tc = wick_theory_defaults(a, 3);
    tc.cb = 0; tc.cw = 1;
    double y1 = 1.0, y2 = 2.0, K;
    wick_gd1_terms t;
    CHECK_OK(wick_gd_mean1(&tc, 1.0, 1, &y1, 0.1, NAN, &t));
    K = t.K;
    size_t M = full ? 32000 : 3000, w = 32;
    double v1[WICK_GD1_COUNT], s1[WICK_GD1_COUNT], v2[WICK_GD1_COUNT], s2[WICK_GD1_COUNT];
    wick_gd1_config c = {{a, 0, 1.0, 1, 1, 3, 1, w, 1}, 1.0, 0.1, &y1, M, 99, 1};
    CHECK_OK(wick_gd1_measure(&c, v1, s1));
    c.y = &y2;
    CHECK_OK(wick_gd1_measure(&c, v2, s2));
    double r1 = v1[WICK_GD1_RES3], r2 = v2[WICK_GD1_RES3] / 2;
    double ratio = r2 / r1;
    /* the same networks: the two estimates are correlated, so take the
     * larger (independent-errors) bound */
    double rse = fabs(ratio) * (s1[WICK_GD1_RES3] / fabs(r1) + s2[WICK_GD1_RES3] / 2 / fabs(r2));
    double pred = (3 * K + 4) / (3 * K + 1);
    fprintf(stderr, "  tanh eta^3 part, y = 2 over y = 1 per unit target: %.4f +- %.4f "
            "(predicted %.4f; R = %.4g from n = %zu)\n", ratio, rse, pred,
            2 * w * r1 / (0.001 * (3 * K + 1)), w);
    CHECK(fabs(ratio - pred) < 4 * rse);
    CHECK(fabs(ratio - 4) > 4 * rse);
    CHECK(fabs(ratio - 1) > 4 * rse);
}

/* ReLU has no finite ddNTK mean: its sigma'' is a delta, and ddI carries
 * sigma''^2.  A finite step smears the delta over preactivations within
 * eta/sqrt(n) of the kink, and the eta-odd part of the residual comes out
 * as c eta|eta| / sqrt(n), not eta^3 R / n: quadrupling the width halves
 * it (a 1/n term would quarter it), and halving eta quarters it. */
static void test_eta3_relu_is_not_order_1_over_n(void) {
    wick_act a = chk_act("relu");
    double y = 1.0, v[3][WICK_GD1_COUNT], s[3][WICK_GD1_COUNT];
    size_t M = full ? 16000 : 2500;
    wick_gd1_config c = {{a, 0, 2.0, 1, 1, 3, 1, 16, 1}, 1.0, 0.08, &y, M, 5, 1};
    CHECK_OK(wick_gd1_measure(&c, v[0], s[0]));
    c.net.width = 64;
    CHECK_OK(wick_gd1_measure(&c, v[1], s[1]));
    c.net.width = 16; c.eta = 0.04;
    CHECK_OK(wick_gd1_measure(&c, v[2], s[2]));
    double rw = v[1][WICK_GD1_RES3] / v[0][WICK_GD1_RES3];
    double re = v[2][WICK_GD1_RES3] / v[0][WICK_GD1_RES3];
    double sw = fabs(rw) * (s[1][WICK_GD1_RES3] / fabs(v[1][WICK_GD1_RES3]) +
                            s[0][WICK_GD1_RES3] / fabs(v[0][WICK_GD1_RES3]));
    double sE = fabs(re) * (s[2][WICK_GD1_RES3] / fabs(v[2][WICK_GD1_RES3]) +
                            s[0][WICK_GD1_RES3] / fabs(v[0][WICK_GD1_RES3]));
    fprintf(stderr, "  relu eta-odd part: width 64 / 16 = %.3f +- %.3f (1/sqrt(n): 0.5, 1/n: "
            "0.25); eta/2 = %.3f +- %.3f (eta^2: 0.25, eta^3: 0.125)\n", rw, sw, re, sE);
    CHECK(fabs(rw - 0.5) < 4 * sw + 0.05);
    CHECK(fabs(rw - 0.25) > 4 * sw);
    CHECK(fabs(re - 0.25) < 4 * sE + 0.02);
    CHECK(fabs(re - 0.125) > 4 * sE);
}

static void test_measure_rejects_bad_config(void) {
    double y = 1, val[WICK_GD1_COUNT], se[WICK_GD1_COUNT];
    wick_gd1_config c = {{chk_act("tanh"), 0, 1, 1, 1, 2, 2, 8, 1}, 1.0, 0.1, &y, 4, 1, 1};
    CHECK_FAILS(wick_gd1_measure(&c, val, se), WICK_EINVAL, "");  /* n0 = 2 */
    c.net.n0 = 1; c.eta = -0.1;
    CHECK_FAILS(wick_gd1_measure(&c, val, se), WICK_EINVAL, "");
    c.eta = 0.1; c.samples = 1;
    CHECK_FAILS(wick_gd1_measure(&c, val, se), WICK_EINVAL, "");
}

/* t steps (wick_gd_mean_t), tanh at criticality, depth 3, eta = 0.1: the
 * residual beyond each network's own frozen-NTK trajectory carries the
 * dNTK (P + Q/2), ddI (R) and ddII (S + T + U) terms, the frozen
 * trajectory's mean the NTK's Theta1 and variance A + 2B.  R and S + T + U
 * are the ddNTK means of the theory engine's ch. 11 recursion
 * (wick_theory_ddntk) at this network's layer 3, written out here.  At
 * t = 1 the map is wick_gd_mean1's; at t = 2 leaving the ddII term out
 * moves the prediction by 0.024 (12 standard errors of the CI form). */
static const double TANH3_R = -13.2947, TANH3_STU = 11.14714;

static void test_steps_by_hand(void) {
    wick_theory_config c = wick_theory_defaults(chk_act("tanh"), 3);
    c.cb = 0; c.cw = 1;
    /* the constants are the theory engine's (NAN asks for them) */
    wick_gdt_terms td;
    CHECK_OK(wick_gd_mean_t(&c, 1.0, 1.0, 0.1, 1, NAN, NAN, &td));
    CHECK_REL(td.R, TANH3_R, 1e-5);
    CHECK_REL(td.STU, TANH3_STU, 1e-5);
    double y = 0.7;
    wick_gd1_terms t1;
    wick_gdt_terms tt;
    CHECK_OK(wick_gd_mean1(&c, 1.0, 1, &y, 0.1, TANH3_R, &t1));
    CHECK_OK(wick_gd_mean_t(&c, 1.0, y, 0.1, 1, TANH3_R, TANH3_STU, &tt));
    CHECK_REL(tt.lin, t1.lin * y, 1e-13);
    CHECK_REL(tt.a_ntk1, t1.a1 * y, 1e-12);
    CHECK_REL(tt.a_dntk, t1.a2 * y, 1e-12);
    CHECK_REL(tt.a_ddI, t1.a3 * y, 1e-12);
    CHECK_NEAR(tt.a_var, 0, 1e-15);
    CHECK_NEAR(tt.a_ddII, 0, 1e-15);
    /* t = 2, the frozen part by hand: lin = y (1 - (1 - eta Theta)^2), the
     * NTK's mean and variance through E[(1 - eta H)^2] */
    CHECK_OK(wick_gd_mean_t(&c, 1.0, y, 0.1, 2, TANH3_R, TANH3_STU, &tt));
    double u = 1 - 0.1 * tt.ntk;
    CHECK_REL(tt.lin, y * (1 - u * u), 1e-13);
    CHECK_REL(tt.a_ntk1, y * 2 * u * 0.1 * tt.ntk1, 1e-12);
    CHECK_REL(tt.a_var, -y * 0.01 * (tt.A + 2 * tt.B), 1e-12);
    /* a single training input is fitted exactly: every 1/n term dies as t grows */
    CHECK_OK(wick_gd_mean_t(&c, 1.0, y, 0.1, 400, TANH3_R, TANH3_STU, &tt));
    CHECK_REL(tt.lin, y, 1e-12);
    CHECK(fabs(tt.a_ntk1) + fabs(tt.a_var) + fabs(tt.a_dntk) + fabs(tt.a_ddI) + fabs(tt.a_ddII) < 1e-12);
    CHECK_FAILS(wick_gd_mean_t(&c, 1.0, y, 0.8, 2, TANH3_R, TANH3_STU, &tt), WICK_EINVAL, "converge");
}

static void steps_fit(long T, const size_t *ws, const size_t *Ms, size_t nw) {
    wick_act a = chk_act("tanh");
    wick_theory_config tc = wick_theory_defaults(a, 3);
    tc.cb = 0; tc.cw = 1;
    double y = 1.0, x[8], v[2][8], e[2][8], val[WICK_GD1_COUNT], se[WICK_GD1_COUNT];
    wick_gdt_terms t;
    CHECK_OK(wick_gd_mean_t(&tc, 1.0, y, 0.1, T, TANH3_R, TANH3_STU, &t));
    for (size_t w = 0; w < nw; w++) {
        wick_gd1_config c = {{a, 0, 1.0, 1, 1, 3, 1, ws[w], 1}, 1.0, 0.1, &y, Ms[w], 31, T};
        CHECK_OK(wick_gd1_measure(&c, val, se));
        x[w] = 1.0 / (double)ws[w];
        v[0][w] = (double)ws[w] * val[WICK_GD1_RES];
        e[0][w] = (double)ws[w] * se[WICK_GD1_RES];
        v[1][w] = (double)ws[w] * (val[WICK_GD1_LIN] - t.lin);
        e[1][w] = (double)ws[w] * se[WICK_GD1_LIN];
    }
    char nm[64];
    snprintf(nm, sizeof nm, "tanh L3 t = %ld, beyond frozen", T);
    /* its three terms nearly cancel (0.082 - 0.080 + 0.024 at t = 2), so
     * 1.2 x their sum is no sharp alternative: each term left out is */
    fit_check(nm, t.a_dntk + t.a_ddI + t.a_ddII, x, v[0], e[0], nw, 0);
    double s1, s1e, c1, c1e;
    CHECK_OK(wick_fit_line(x, v[0], e[0], nw, &s1, &s1e, &c1, &c1e, NULL));
    double alt[3] = {t.a_ddI + t.a_ddII, t.a_dntk + t.a_ddII, t.a_dntk + t.a_ddI};
    for (int k = 0; k < 3; k++) {
        fprintf(stderr, "    without the %s term: %+.1f se\n", k == 0 ? "dNTK" : k == 1 ? "ddI" : "ddII",
                (c1 - alt[k]) / c1e);
        CHECK(fabs(c1 - alt[k]) > 4 * c1e);
    }
    /* the frozen trajectory's NTK part is 1/sqrt(n) noisy per network: agreement only */
    snprintf(nm, sizeof nm, "tanh L3 t = %ld, frozen NTK part", T);
    fit_check(nm, t.a_ntk1 + t.a_var, x, v[1], e[1], nw, 0);
}

static void test_steps_measured_tanh(void) {
    static const size_t ws[] = {8, 16, 32}, Ms[] = {8000, 6000, 4000};
    static const size_t wf[] = {16, 32, 64, 128, 256}, Mf[] = {32000, 32000, 16000, 8000, 8000};
    if (full) {
        steps_fit(2, wf, Mf, 5);
        steps_fit(3, wf, Mf, 5);
    } else {
        steps_fit(2, ws, Ms, 3);
    }
}

int main(void) {
    const char *f = getenv("WICK_THEORY_FULL");
    full = f && *f && strcmp(f, "0") != 0;
    RUN(test_terms_by_hand);
    RUN(test_measure_rejects_bad_config);
    RUN(test_eta2_tanh_critical);
    RUN(test_eta2_tanh_two_outputs);
    RUN(test_eta2_relu_critical);
    RUN(test_eta3_target_dependence_tanh);
    RUN(test_eta3_relu_is_not_order_1_over_n);
    RUN(test_steps_by_hand);
    RUN(test_steps_measured_tanh);
    return chk_finish();
}
