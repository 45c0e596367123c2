/* test_theory_gauss.c — the Gaussian expectations of docs/theory.md §2: nodes, closed
 * forms against quadrature, Stein and Price, accuracy measured over
 * K in [1e-4, 1e2] and correlations in [-1, 1], degenerate covariances. */
#include "check.h"
#include "lib/testlib.h"
#include "theory/theory.h"

static const char *all_acts[] = {"perceptron", "sigmoid", "tanh", "sin", "linear",
                                 "relu", "leaky_relu:0.1", "softplus", "swish", "gelu"};
static const char *smooth_acts[] = {"sigmoid", "tanh", "sin", "softplus", "swish", "gelu"};

/* Gauss-Hermite with n nodes integrates u^k exactly for k <= 2n - 1:
 * E[u^2j] = (2j - 1)!! for u ~ N(0, 1). */
static void test_hermite_moments(void) {
    const double *x, *w;
    CHECK_OK(th_hermite(20, &x, &w));
    double dfact = 1;
    for (int j = 0; j <= 19; j++) {
        double m = 0;
        for (int i = 0; i < 20; i++) m += w[i] * pow(x[i], 2 * j);
        if (j > 0) dfact *= 2 * j - 1;
        CHECK_REL(m, dfact, 1e-11);
    }
    CHECK_OK(th_hermite(TH_GH_N, &x, &w));
    double s = 0, odd = 0;
    for (int i = 0; i < TH_GH_N; i++) { s += w[i]; odd += w[i] * x[i] * x[i] * x[i]; }
    CHECK_NEAR(s, 1.0, 1e-14);
    CHECK_NEAR(odd, 0.0, 1e-14);
    CHECK_OK(th_legendre(TH_LEG_M, &x, &w));
    double l4 = 0;
    for (int i = 0; i < TH_LEG_M; i++) l4 += w[i] * pow(x[i], 4);
    CHECK_NEAR(l4, 2.0 / 5.0, 1e-14);  /* int_{-1}^{1} x^4 dx */
}

/* docs/theory.md §2 and §12: <erf erf> = (2/pi) asin(2 K12 / sqrt((1+2K11)(1+2K22))),
 * at the table's covariance and across scales, perfect correlation included. */
static void test_erf_closed_form(void) {
    wick_act e = {TH_ACT_ERF, 0};
    th_pair p = {TB_S, TB_S};
    double got;
    CHECK_OK(th_expect2(e, 1, 0.5, 2, 1, &p, &got, NULL));
    CHECK_NEAR(got, 2 / M_PI * asin(2 * 0.5 / sqrt(3.0 * 5.0)), 1e-10);
    double Ks[] = {1e-4, 1e-2, 0.3, 1, 4, 20, 100}, rhos[] = {-1, -0.7, 0, 0.3, 0.95, 1};
    double worst = 0;
    for (int i = 0; i < 7; i++)
        for (int j = 0; j < 6; j++) {
            double K11 = Ks[i], K22 = 1.7 * Ks[i], K12 = rhos[j] * sqrt(K11 * K22);
            CHECK_OK(th_expect2(e, K11, K12, K22, 1, &p, &got, NULL));
            double want = 2 / M_PI * asin(2 * K12 / sqrt((1 + 2 * K11) * (1 + 2 * K22)));
            if (fabs(got - want) > worst) worst = fabs(got - want);
        }
    fprintf(stderr, "  erf: worst |quadrature - closed form| = %.2e over K in [1e-4, 170]\n", worst);
    CHECK(worst < 1e-12);
}

/* sin has closed forms too: <sin z1 sin z2> = e^{-(K11+K22)/2} sinh K12,
 * <cos z1 cos z2> = e^{-(K11+K22)/2} cosh K12 (sin' = cos); the quadrature
 * must resolve its oscillation at large K. */
static void test_sin_closed_form(void) {
    wick_act a = chk_act("sin");
    double Ks[] = {1e-4, 0.5, 3, 30, 100}, rhos[] = {-1, -0.2, 0.6, 1};
    double worst = 0;
    for (int i = 0; i < 5; i++)
        for (int j = 0; j < 4; j++) {
            double K11 = Ks[i], K22 = 0.8 * Ks[i], K12 = rhos[j] * sqrt(K11 * K22), ss, cc;
            /* the quadrature itself (the public call now takes the closed form) */
            th_pair p[2] = {{TB_S, TB_S}, {TB_S1, TB_S1}};
            double o[2], pub;
            CHECK_OK(th_expect2(a, K11, K12, K22, 2, p, o, NULL));
            ss = o[0]; cc = o[1];
            double e = exp(-0.5 * (K11 + K22));
            worst = fmax(worst, fmax(fabs(ss - e * sinh(K12)), fabs(cc - e * cosh(K12))));
            CHECK_OK(wick_gauss_expect2(a, 0, 0, K11, K12, K22, &pub));
            CHECK_NEAR(pub, e * sinh(K12), 1e-15 * (1 + fabs(e * sinh(K12))));
        }
    fprintf(stderr, "  sin: worst |quadrature - closed form| = %.2e\n", worst);
    CHECK(worst < 1e-12);
}

/* sin's single-input closed forms (used by the flows, so that order-1/n
 * differences stay accurate at large K): chi_par = C_W e^{-2K} relative to
 * 1e-14 even at K = 9 and 25, where quadrature's 1e-16 absolute error would
 * be 1e-8 and order 1 of it; <sin^2>, <sin^4> through the flow's first layer
 * and the vertex. */
static void test_sin_single_closed_forms(void) {
    wick_act a = chk_act("sin");
    double Ks[] = {1e-3, 0.3, 2, 9, 25};
    for (int i = 0; i < 5; i++) {
        double K = Ks[i], cp, cq;
        CHECK_OK(wick_chi(a, 1.5, K, &cp, &cq));
        CHECK_REL(cp, 1.5 * exp(-2 * K), 1e-14);
        CHECK_REL(cq, 1.5 * 0.5 * (1 + exp(-2 * K)), 1e-14);
        /* a 2-layer net with C_b = 0, C_W = 1 and q = K: K^(2) = <sin^2>_K and
         * V^(2) = <sin^4> - <sin^2>^2 */
        wick_theory_config c = wick_theory_defaults(a, 2);
        wick_layer_theory L[2];
        CHECK_OK(wick_theory_single(&c, K, L));
        double s2 = 0.5 * (1 - exp(-2 * K)), s4 = (3 - 4 * exp(-2 * K) + exp(-8 * K)) / 8;
        CHECK_REL(L[1].K, s2, 1e-14);
        CHECK_REL(L[1].V, s4 - s2 * s2, 1e-13);
    }
}

/* The scale-invariant closed form and the perceptron's against the graded
 * composite quadrature, which puts a panel break on the kink and so is
 * accurate for kinked functions too (Gauss-Hermite is not: ~1e-2). */
static void test_kinked_closed_forms(void) {
    const char *names[] = {"relu", "leaky_relu:0.1", "leaky_relu:-0.5", "linear", "perceptron"};
    th_quad q = {TH_COMPOSITE, 0, 32};
    double Ks[] = {1e-4, 1, 100}, rhos[] = {-1, -0.99, -0.3, 0.5, 0.999, 1};
    for (int a = 0; a < 5; a++) {
        wick_act act = chk_act(names[a]);
        double worst = 0;
        for (int i = 0; i < 3; i++)
            for (int j = 0; j < 6; j++) {
                double K11 = Ks[i], K22 = 2.3 * Ks[i], K12 = rhos[j] * sqrt(K11 * K22);
                th_pair p[2] = {{TB_S, TB_S}, {TB_S1, TB_S1}};
                double o[2], ss, s1 = 0;
                int np = act.kind == WICK_ACT_PERCEPTRON ? 1 : 2;
                CHECK_OK(th_expect2(act, K11, K12, K22, np, p, o, &q));
                CHECK_OK(wick_gauss_expect2(act, 0, 0, K11, K12, K22, &ss));
                if (np == 2) CHECK_OK(wick_gauss_expect2(act, 1, 1, K11, K12, K22, &s1));
                double scale = fmax(1.0, sqrt(K11 * K22));
                /* the perceptron's map has a sqrt(1 - rho) cusp at |rho| = 1, where
                 * the rounding of K12 alone moves it by ~1e-9: checked exactly below */
                if (np == 2 || fabs(rhos[j]) < 1) worst = fmax(worst, fabs(o[0] - ss) / scale);
                if (np == 2 && fabs(rhos[j]) < 1) worst = fmax(worst, fabs(o[1] - s1));
            }
        fprintf(stderr, "  %s: worst |quadrature - closed form| = %.2e\n", names[a], worst);
        CHECK(worst < 1e-12);
    }
    double v;
    CHECK_OK(wick_gauss_expect2(chk_act("perceptron"), 0, 0, 100, 100, 100, &v));
    CHECK_NEAR(v, 0.5, 1e-15);
    CHECK_OK(wick_gauss_expect2(chk_act("perceptron"), 0, 0, 100, -100, 100, &v));
    CHECK_NEAR(v, 0.0, 1e-15);
    /* the diagonal: <sigma^2> = A2 K and <sigma^4> = 3 A4 K^2 with a+ = 1, a- = 0.1 */
    wick_act lk = chk_act("leaky_relu:0.1");
    double s2, s4;
    th_pair p[2] = {{TB_SQ, TB_ONE}, {TB_QUART, TB_ONE}};
    double o[2];
    CHECK_OK(wick_gauss_expect1(lk, 0, 2, 3.0, &s2));
    CHECK_OK(wick_gauss_expect1(lk, 0, 4, 3.0, &s4));
    CHECK_OK(th_expect2(lk, 3.0, 0, 0, 2, p, o, &q));
    CHECK_REL(s2, 0.5 * 1.01 * 3.0, 1e-15);
    CHECK_REL(s4, 1.5 * 1.0001 * 9.0, 1e-15);
    CHECK_REL(o[0], s2, 1e-13);
    CHECK_REL(o[1], s4, 1e-13);
}

/* docs/theory.md §12: ReLU <sigma' sigma'> at correlation 0.5 is (pi - pi/3)/(2 pi) = 1/3. */
static void test_relu_derivative_pair(void) {
    double v;
    CHECK_OK(wick_gauss_expect2(chk_act("relu"), 1, 1, 2.0, 1.0, 2.0, &v));
    CHECK_NEAR(v, 1.0 / 3.0, 1e-15);
    CHECK_OK(wick_gauss_expect2(chk_act("relu"), 0, 0, 1.0, 0.0, 1.0, &v));
    CHECK_NEAR(v, 1.0 / (2 * M_PI), 1e-15);  /* sin(pi/2)/(2 pi) */
}

/* docs/theory.md §12: Stein, <z tanh z>_K = K <1 - tanh^2>_K at K = 0.7 to 1e-12; and
 * for every smooth activation over K in [1e-4, 100]. */
static void test_stein(void) {
    int b[2] = {TB_ZS, TB_S1};
    double o[2];
    CHECK_OK(th_expect1(chk_act("tanh"), 0.7, 2, b, o, NULL));
    CHECK_NEAR(o[0], 0.7 * o[1], 1e-12);
    double Ks[] = {1e-4, 0.1, 1, 7, 100};
    for (size_t a = 0; a < WICK_ARRAY_LEN(smooth_acts); a++)
        for (int i = 0; i < 5; i++) {
            CHECK_OK(th_expect1(chk_act(smooth_acts[a]), Ks[i], 2, b, o, NULL));
            CHECK_NEAR(o[0], Ks[i] * o[1], 1e-12 * fmax(1, Ks[i]));
        }
}

/* Price: d<s1 s2>/dK12 = <s1' s2'> (both ordered pairs), d<s1 s2>/dK11 =
 * (1/2) <s1'' s2>, against central differences (error ~h^2). */
static void test_price(void) {
    double K11 = 0.8, K12 = 0.3, K22 = 1.4, h = 1e-4;
    for (size_t a = 0; a < WICK_ARRAY_LEN(smooth_acts); a++) {
        wick_act act = chk_act(smooth_acts[a]);
        double p, m, d1d1, d2;
        CHECK_OK(wick_gauss_expect2(act, 0, 0, K11, K12 + h, K22, &p));
        CHECK_OK(wick_gauss_expect2(act, 0, 0, K11, K12 - h, K22, &m));
        CHECK_OK(wick_gauss_expect2(act, 1, 1, K11, K12, K22, &d1d1));
        CHECK_NEAR((p - m) / (2 * h), d1d1, 1e-8);
        CHECK_OK(wick_gauss_expect2(act, 0, 0, K11 + h, K12, K22, &p));
        CHECK_OK(wick_gauss_expect2(act, 0, 0, K11 - h, K12, K22, &m));
        CHECK_OK(wick_gauss_expect2(act, 2, 0, K11, K12, K22, &d2));
        CHECK_NEAR((p - m) / (2 * h), 0.5 * d2, 1e-8);
    }
    /* the scale-invariant class: dG/dK11 from the closed form */
    double G11, G22, pp, mm;
    th_si_pair(1, 0.1, K11, K12, K22, NULL, NULL, &G11, &G22);
    th_si_pair(1, 0.1, K11 + h, K12, K22, &pp, NULL, NULL, NULL);
    th_si_pair(1, 0.1, K11 - h, K12, K22, &mm, NULL, NULL, NULL);
    CHECK_NEAR((pp - mm) / (2 * h), G11, 1e-9);
    th_si_pair(1, 0.1, K11, K12, K22 + h, &pp, NULL, NULL, NULL);
    th_si_pair(1, 0.1, K11, K12, K22 - h, &mm, NULL, NULL, NULL);
    CHECK_NEAR((pp - mm) / (2 * h), G22, 1e-9);
}

/* The accuracy claim of docs/theory.md §2, measured: the default rule against the
 * composite rule with twice the nodes per panel (which agrees with 400-node
 * Gauss-Hermite where that converges), for every smooth activation and all
 * the products the flows use, K from 1e-4 to 1e2, correlations in [-1, 1]. */
static void test_accuracy_measured(void) {
    th_quad fine = {TH_COMPOSITE, 0, 24};
    th_pair p[6] = {{TB_S, TB_S}, {TB_S1, TB_S1}, {TB_SQ, TB_SQ}, {TB_CUBE, TB_S},
                    {TB_S2, TB_S}, {TB_S2, TB_S2}};
    double Ks[] = {1e-4, 0.2, 1, 3, 10, 100}, rhos[] = {-1, 0.9, 0.99999, 1};
    double worst_all = 0;
    for (size_t a = 0; a < WICK_ARRAY_LEN(smooth_acts); a++) {
        wick_act act = chk_act(smooth_acts[a]);
        double worst = 0;
        for (int i = 0; i < 6; i++)
            for (int j = 0; j < 4; j++) {
                double K11 = Ks[i], K22 = 1.3 * Ks[i], K12 = rhos[j] * sqrt(K11 * K22);
                double o1[6], o2[6];
                CHECK_OK(th_expect2(act, K11, K12, K22, 6, p, o1, NULL));
                CHECK_OK(th_expect2(act, K11, K12, K22, 6, p, o2, &fine));
                for (int k = 0; k < 6; k++)
                    worst = fmax(worst, fabs(o1[k] - o2[k]) / fmax(1.0, fabs(o2[k])));
            }
        fprintf(stderr, "  %s: worst relative difference default vs fine rule = %.2e\n",
                smooth_acts[a], worst);
        worst_all = fmax(worst_all, worst);
    }
    CHECK(worst_all < 1e-12);
}

/* Perfect correlation, zero variances and a K12 over the bound by rounding:
 * finite results for every activation, and the rho -> 1 limit continuous. */
static void test_degenerate(void) {
    for (size_t a = 0; a < WICK_ARRAY_LEN(all_acts); a++) {
        wick_act act = chk_act(all_acts[a]);
        double v, near;
        CHECK_OK(wick_gauss_expect2(act, 0, 0, 2.0, 2.0, 2.0, &v));
        CHECK(isfinite(v));
        double s2;
        CHECK_OK(wick_gauss_expect1(act, 0, 2, 2.0, &s2));
        CHECK_NEAR(v, s2, 1e-12);  /* rho = 1: <sigma^2> */
        CHECK_OK(wick_gauss_expect2(act, 0, 0, 2.0, 2.0 * (1 - 1e-9), 2.0, &near));
        /* 1 - rho = 1e-9: smooth maps move by ~1e-9, kinked ones by theta^3 ~ 1e-13,
         * the perceptron by theta/(2 pi) = 7e-6 (its sqrt(1 - rho) cusp) */
        CHECK_NEAR(near, v, act.kind == WICK_ACT_PERCEPTRON ? 1e-5 : 1e-8);
        CHECK_OK(wick_gauss_expect2(act, 0, 0, 2.0, -2.0 * (1 + 1e-12), 2.0, &v));
        CHECK(isfinite(v));
        CHECK_OK(wick_gauss_expect2(act, 0, 0, 0.0, 0.0, 1.5, &v));
        CHECK(isfinite(v));
        CHECK_OK(wick_gauss_expect2(act, 0, 0, 0.0, 0.0, 0.0, &v));
        CHECK_NEAR(v, wick_act_eval(act, 0) * wick_act_eval(act, 0), 1e-15);
    }
}

static void test_invalid(void) {
    double v;
    wick_act t = chk_act("tanh");
    CHECK_FAILS(wick_gauss_expect2(t, 0, 0, -1, 0, 1, &v), WICK_EINVAL, "negative variance");
    CHECK_FAILS(wick_gauss_expect2(t, 0, 0, 1, 2, 1, &v), WICK_ENUMERIC, "not positive semi-definite");
    CHECK_FAILS(wick_gauss_expect2(t, 0, 0, NAN, 0, 1, &v), WICK_EINVAL, "not finite");
    CHECK_FAILS(wick_gauss_expect2(chk_act("perceptron"), 1, 1, 1, 0, 1, &v), WICK_EINVAL,
                "derivative is a delta");
    CHECK_FAILS(wick_gauss_expect2(chk_act("relu"), 2, 0, 1, 0, 1, &v), WICK_EINVAL, "delta");
    CHECK_FAILS(wick_gauss_expect2(t, 3, 0, 1, 0, 1, &v), WICK_EINVAL, "derivative order");
    CHECK_FAILS(wick_gauss_expect1(t, 0, 2, -0.5, &v), WICK_EINVAL, "variance");
    CHECK_FAILS(wick_gauss_expect1(t, 0, 5, 0.5, &v), WICK_EINVAL, "power");
    CHECK_FAILS(wick_gauss_expect1(chk_act("sin"), 0, 2, 1e9, &v), WICK_ENUMERIC, "too large");
}

int main(void) {
    RUN(test_hermite_moments);
    RUN(test_erf_closed_form);
    RUN(test_sin_closed_form);
    RUN(test_sin_single_closed_forms);
    RUN(test_kinked_closed_forms);
    RUN(test_relu_derivative_pair);
    RUN(test_stein);
    RUN(test_price);
    RUN(test_accuracy_measured);
    RUN(test_degenerate);
    RUN(test_invalid);
    return chk_finish();
}
