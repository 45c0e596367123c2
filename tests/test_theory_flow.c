/* test_theory_flow.c — kernel, chi, vertex and NTK flows (docs/theory.md §3-7) against
 * the oracles of docs/theory.md §12, the deep linear network's exact finite-width
 * results (§5) by theory and by Monte Carlo, and the Gram-matrix table. */
#include "check.h"
#include "lib/testlib.h"
#include "theory/theory.h"

/* docs/theory.md §12: ReLU at C_b = 0, C_W = 2 has chi_par = chi_perp = 1 at any K. */
static void test_relu_critical_chi(void) {
    double Ks[] = {1e-4, 0.3, 1, 17, 1e4};
    for (int i = 0; i < 5; i++) {
        double cp, cq;
        CHECK_OK(wick_chi(chk_act("relu"), 2.0, Ks[i], &cp, &cq));
        CHECK_NEAR(cp, 1.0, 1e-12);
        CHECK_NEAR(cq, 1.0, 1e-12);
    }
    /* a smooth activation: chi_par = C_W <sigma'^2 + sigma sigma''> equals the
     * Stein form C_W (1/K) <z sigma sigma'> of docs/theory.md §4 */
    int b[1] = {TB_ZSS1};
    double zss, cp;
    CHECK_OK(th_expect1(chk_act("gelu"), 2.5, 1, b, &zss, NULL));
    CHECK_OK(wick_chi(chk_act("gelu"), 1.7, 2.5, &cp, NULL));
    CHECK_NEAR(cp, 1.7 * zss / 2.5, 1e-12);
}

/* docs/theory.md §12: ReLU two-input flow at C_b = 0, C_W = 2 from K1 = [[2,1],[1,2]]. */
static void test_relu_two_input_flow(void) {
    wick_theory_config c = wick_theory_defaults(chk_act("relu"), 3);
    c.cw = 2.0;
    double G0[4] = {1, 0.5, 0.5, 1}, K[12];  /* K1 = C_W G0 */
    CHECK_OK(wick_gram_flow(&c, G0, 2, K, NULL));
    CHECK_NEAR(K[1], 1.0, 1e-15);
    CHECK_NEAR(K[4 + 1], 1.21799556, 1e-8);
    CHECK_NEAR(K[8 + 1], 1.36781130, 1e-8);
    for (int l = 0; l < 3; l++) {
        CHECK_NEAR(K[4 * l], 2.0, 1e-14);
        CHECK_NEAR(K[4 * l + 3], 2.0, 1e-14);
        CHECK(K[4 * l + 1] == K[4 * l + 2]);
    }
}

/* docs/theory.md §12: tanh at C_b = 0, C_W = 1 from K1 = 1: K2 = 0.39429449 and the
 * slow power law l K -> 1/2 (0.50167 at l = 1000); the vertex ratio
 * V/(K^2 l) -> 2/3: 0.6480 (l = 100), 0.66415 (l = 1000); sin 0.6621, 0.66669. */
static void test_kstar_zero_class(void) {
    wick_theory_config c = wick_theory_defaults(chk_act("tanh"), 1000);
    wick_layer_theory *L = calloc(1000, sizeof *L);
    CHECK_OK(wick_theory_single(&c, 1.0, L));
    CHECK_NEAR(L[1].K, 0.39429449, 1e-8);
    CHECK_NEAR(1000 * L[999].K, 0.50167, 1e-5);
    CHECK_NEAR(L[99].V / (L[99].K * L[99].K * 100), 0.6480, 1e-4);
    CHECK_NEAR(L[999].V / (L[999].K * L[999].K * 1000), 0.66415, 1e-5);
    c.act = chk_act("sin");
    CHECK_OK(wick_theory_single(&c, 1.0, L));
    CHECK_NEAR(L[99].V / (L[99].K * L[99].K * 100), 0.6621, 1e-4);
    CHECK_NEAR(L[999].V / (L[999].K * L[999].K * 1000), 0.66669, 1e-5);
    /* the power law's coefficient 1/(-a1): sin K ~ 1/l */
    wick_critical_info r;
    CHECK_OK(wick_critical(chk_act("sin"), &r));
    CHECK_NEAR(r.power_coeff, 1.0, 1e-12);
    CHECK_NEAR(r.power_exponent, 1.0, 0);
    CHECK_NEAR(1000 * L[999].K, r.power_coeff, 0.01);
    free(L);
}

/* docs/theory.md §12's critical points and classes, for every activation of ch. 2.2. */
static void test_critical_points(void) {
    struct { const char *name; wick_universality cls; double cb, cw; } t[] = {
        {"linear", WICK_UNIV_SCALE_INVARIANT, 0, 1},
        {"relu", WICK_UNIV_SCALE_INVARIANT, 0, 2},
        {"leaky_relu:0.1", WICK_UNIV_SCALE_INVARIANT, 0, 2 / 1.01},
        {"tanh", WICK_UNIV_KSTAR_ZERO, 0, 1},
        {"sin", WICK_UNIV_KSTAR_ZERO, 0, 1},
    };
    for (size_t i = 0; i < WICK_ARRAY_LEN(t); i++) {
        double cb, cw;
        wick_universality u;
        CHECK_OK(wick_critical_init(chk_act(t[i].name), &cb, &cw, &u));
        CHECK(u == t[i].cls);
        CHECK_NEAR(cb, t[i].cb, 1e-15);
        CHECK_NEAR(cw, t[i].cw, 1e-14);
    }
    const char *none[] = {"sigmoid", "softplus", "perceptron"};
    for (int i = 0; i < 3; i++) {
        double cb, cw;
        wick_universality u = WICK_UNIV_HALF_STABLE;
        char want[64];
        snprintf(want, sizeof want, "no critical point for %s", none[i]);
        CHECK_FAILS(wick_critical_init(chk_act(none[i]), &cb, &cw, &u), WICK_ENUMERIC, want);
        CHECK(u == WICK_UNIV_NONE);
    }
    /* half-stable: chi_par = chi_perp = 1 at K*, which is a fixed point, C_b >= 0
     * and C_W just below 2 (docs/theory.md §4) */
    const char *hs[] = {"swish", "gelu"};
    for (int i = 0; i < 2; i++) {
        wick_critical_info r;
        CHECK_OK(wick_critical(chk_act(hs[i]), &r));
        CHECK(r.cls == WICK_UNIV_HALF_STABLE);
        CHECK(r.a1 > 0);
        CHECK(r.cb > 0 && r.cw > 1.9 && r.cw < 2.0);
        double cp, cq, s2;
        CHECK_OK(wick_chi(chk_act(hs[i]), r.cw, r.kstar, &cp, &cq));
        CHECK_NEAR(cp, 1.0, 1e-10);
        CHECK_NEAR(cq, 1.0, 1e-12);
        CHECK_OK(wick_gauss_expect1(chk_act(hs[i]), 0, 2, r.kstar, &s2));
        CHECK_NEAR(r.cb + r.cw * s2, r.kstar, 1e-10 * r.kstar);
    }
    CHECK(strcmp(wick_universality_name(WICK_UNIV_KSTAR_ZERO), "K*=0") == 0);
}

static void test_fixed_point(void) {
    double k;
    /* ReLU, C_b = 1, C_W = 1: K* = 1 + K* / 2 = 2 */
    CHECK_OK(wick_fixed_point(chk_act("relu"), 1.0, 1.0, 0.3, &k));
    CHECK_NEAR(k, 2.0, 1e-12);
    /* tanh, C_b = 0.1, C_W = 1.5: K* = C_b + C_W <tanh^2>_K* */
    double s2;
    CHECK_OK(wick_fixed_point(chk_act("tanh"), 0.1, 1.5, 1.0, &k));
    CHECK_OK(wick_gauss_expect1(chk_act("tanh"), 0, 2, k, &s2));
    CHECK_NEAR(k, 0.1 + 1.5 * s2, 1e-12);
    /* tanh at criticality decays to K* = 0 as a power law */
    CHECK_OK(wick_fixed_point(chk_act("tanh"), 0.0, 1.0, 1.0, &k));
    CHECK_NEAR(k, 0.0, 0);
    CHECK_FAILS(wick_fixed_point(chk_act("relu"), 0.0, 3.0, 1.0, &k), WICK_ENUMERIC,
                "grows without bound");
}

/* docs/theory.md §5: the deep linear network.  Exact: E[z^4]/(3K^2) at l = 4, n = 16
 * is (1 + 2/16)^3 = 1.423828125; the kernel C_W^(l-1) K1 from the flow; the
 * 1/n vertex V = 2 (l - 1) K^2 is the first-order part of the exact result. */
static void test_deep_linear(void) {
    double K, Ez4;
    CHECK_OK(wick_deep_linear(1.0, 1.0, 4, 16, &K, &Ez4));
    CHECK_NEAR(Ez4 / (3 * K * K), 1.423828125, 1e-15);
    wick_theory_config c = wick_theory_defaults(chk_act("linear"), 6);
    c.cw = 1.3;
    c.width = 16;
    wick_layer_theory L[6];
    CHECK_OK(wick_theory_single(&c, 0.7, L));
    for (int l = 1; l <= 6; l++) {
        CHECK_OK(wick_deep_linear(1.3, 1.3 * 0.7, l, 16, &K, &Ez4));
        CHECK_REL(L[l - 1].K, K, 1e-14);
        /* V at order 1/n: 3 V / n is the 1/n term of E[z^4] - 3 K^2 */
        double exact_conn = Ez4 - 3 * K * K, first_order = 3 * K * K * 2.0 * (l - 1) / 16;
        CHECK_REL(3 * L[l - 1].V / 16 + 1e-300, first_order + 1e-300, 1e-13);
        CHECK(exact_conn >= first_order - 1e-12);  /* the 1/n^2 terms are positive */
    }
}

/* docs/theory.md §6: at criticality in the scale-invariant class V = (l - 1)(3A4/A2^2 - 1) K^2,
 * linear in depth: 2 (linear), 5 (ReLU), and for leaky ReLU a = 0.1:
 * A2 = 1.01/2, A4 = 1.0001/2, 3A4/A2^2 - 1 = 6 * 1.0001/1.0201 - 1. */
static void test_scale_invariant_vertex(void) {
    struct { const char *name; double coef; } t[] = {
        {"linear", 2.0}, {"relu", 5.0}, {"leaky_relu:0.1", 6 * 1.0001 / 1.0201 - 1}};
    for (int i = 0; i < 3; i++) {
        wick_theory_config c = wick_theory_defaults(chk_act(t[i].name), 20);
        CHECK_OK(wick_critical_init(c.act, &c.cb, &c.cw, NULL));
        wick_layer_theory L[20];
        CHECK_OK(wick_theory_single(&c, 1.5, L));
        for (int l = 1; l <= 20; l++) {
            double K = L[l - 1].K;
            CHECK_REL(K, c.cw * 1.5, 1e-14);  /* the diagonal is constant in depth */
            CHECK_NEAR(L[l - 1].V, t[i].coef * (l - 1) * K * K, 1e-12 * l * K * K);
        }
    }
}

/* docs/theory.md §12: NTK of the linear network at C_W = 1, lambda_b = 0, lambda_W = 1,
 * K1 = 1 is Theta^(l) = l; and the Gram flow's diagonal equals the single-
 * input flow. */
static void test_ntk(void) {
    wick_theory_config c = wick_theory_defaults(chk_act("linear"), 7);
    c.lambda_b = 0;
    wick_layer_theory L[7];
    CHECK_OK(wick_theory_single(&c, 1.0, L));
    for (int l = 1; l <= 7; l++) CHECK_NEAR(L[l - 1].ntk, (double)l, 1e-13);
    /* tanh, several inputs, unequal norms: diagonal vs single input */
    c = wick_theory_defaults(chk_act("tanh"), 4);
    c.cb = 0.2; c.cw = 1.4; c.lambda_b = 0.5; c.lambda_w = 2;
    double x[3 * 4] = {1, 0, 0.5, -1, 0.2, 2, 0, 1, -1, -1, 1, 0.3};
    double G0[9], K[36], T[36];
    CHECK_OK(wick_input_gram(x, 3, 4, G0));
    CHECK_OK(wick_gram_flow(&c, G0, 3, K, T));
    for (int a = 0; a < 3; a++) {
        CHECK_OK(wick_theory_single(&c, G0[a * 3 + a], L));
        for (int l = 0; l < 4; l++) {
            CHECK_REL(K[l * 9 + a * 4], L[l].K, 1e-12);
            CHECK_REL(T[l * 9 + a * 4], L[l].ntk, 1e-12);
        }
    }
    /* the last layer alone, in place: the same numbers */
    double Kl[9], Tlast[9];
    CHECK_OK(wick_gram_flow_last(&c, G0, 3, Kl, Tlast));
    CHECK(memcmp(Kl, K + 27, sizeof Kl) == 0);
    CHECK(memcmp(Tlast, T + 27, sizeof Tlast) == 0);
    c.tabulate = 1;
    CHECK_OK(wick_gram_flow_last(&c, G0, 3, Kl, Tlast));  /* unequal norms: direct */
    CHECK(memcmp(Kl, K + 27, sizeof Kl) == 0);
    c.tabulate = 0;
    /* the perceptron has no NTK */
    c.act = chk_act("perceptron");
    CHECK_FAILS(wick_gram_flow(&c, G0, 3, K, T), WICK_EINVAL, "NTK is undefined");
    CHECK_OK(wick_gram_flow(&c, G0, 3, K, NULL));
}

/* The two-input vertex: its (00)(00) component is the single-input vertex;
 * for the linear network Wick's theorem gives V^(l)_{(ab)(cd)} =
 * (l - 1)(K_ac K_bd + K_ad K_bc) at C_W = 1, C_b = 0. */
static void test_vertex_two_inputs(void) {
    wick_theory_config c = wick_theory_defaults(chk_act("linear"), 5);
    double G0[4] = {1.2, 0.4, 0.4, 0.7}, V[6 * 16];
    CHECK_OK(wick_vertex2(&c, G0, V));
    for (int l = 1; l <= 5; l++)
        for (int p = 0; p < 4; p++)
            for (int q = 0; q < 4; q++) {
                int a = p >> 1, b = p & 1, cc = q >> 1, d = q & 1;
                double want = (l - 1) * (G0[a * 2 + cc] * G0[b * 2 + d] + G0[a * 2 + d] * G0[b * 2 + cc]);
                CHECK_NEAR(V[(l - 1) * 16 + p * 4 + q], want, 1e-13 * l);
            }
    const char *acts[] = {"relu", "tanh", "gelu"};
    for (int i = 0; i < 3; i++) {
        c = wick_theory_defaults(chk_act(acts[i]), 6);
        c.cb = 0.1; c.cw = 1.6;
        wick_layer_theory L[6], L2[6];
        CHECK_OK(wick_vertex2(&c, G0, V));
        CHECK_OK(wick_theory_single(&c, G0[0], L));
        CHECK_OK(wick_theory_single(&c, G0[3], L2));
        for (int l = 0; l < 6; l++) {
            CHECK_REL(V[l * 16 + 0] + 1e-300, L[l].V + 1e-300, 1e-11);
            CHECK_REL(V[l * 16 + 15] + 1e-300, L2[l].V + 1e-300, 1e-11);
            for (int p = 0; p < 4; p++)
                for (int q = 0; q < 4; q++) {
                    CHECK_NEAR(V[l * 16 + p * 4 + q], V[l * 16 + q * 4 + p], 1e-13);
                    /* (01) and (10) are the same pair */
                    int pp = ((p & 1) << 1) | (p >> 1);
                    CHECK_NEAR(V[l * 16 + p * 4 + q], V[l * 16 + pp * 4 + q], 1e-13);
                }
        }
        /* the predicted four-point function: one neuron, one input: 3 V / n */
        int ii[4] = {0, 0, 0, 0}, aa[4] = {0, 0, 0, 0};
        CHECK_REL(wick_four_point(V + 5 * 16, 64, ii, aa), 3 * V[5 * 16] / 64, 1e-15);
        int ij[4] = {0, 0, 1, 1};
        CHECK_REL(wick_four_point(V + 5 * 16, 64, ij, aa), V[5 * 16] / 64, 1e-15);
    }
}

/* The table over the correlation (config.tabulate) against direct
 * quadrature for inputs of equal norm: the measured error, and identical
 * results for any thread count. */
static void test_gram_table(void) {
    enum { N = 12, D = 8 };
    double x[N * D], G0[N * N], *K1 = malloc(sizeof(double) * 4 * N * N),
           *K2 = malloc(sizeof(double) * 4 * N * N), *T1 = malloc(sizeof(double) * 4 * N * N),
           *T2 = malloc(sizeof(double) * 4 * N * N);
    for (int i = 0; i < N; i++) {
        double s = 0;
        for (int j = 0; j < D; j++) { x[i * D + j] = wick_rand_normal(7, 0, i * D + j); s += x[i * D + j] * x[i * D + j]; }
        for (int j = 0; j < D; j++) x[i * D + j] *= sqrt(D / s);  /* |x|^2/n0 = 1 */
    }
    memcpy(x + D, x, sizeof(double) * D);  /* a duplicate: correlation exactly 1 */
    for (int j = 0; j < D; j++) x[2 * D + j] = -x[j];  /* and exactly -1 */
    CHECK_OK(wick_input_gram(x, N, D, G0));
    const char *acts[] = {"tanh", "gelu"};
    double cws[] = {1.0, 1.9}, cbs[] = {0, 0.17};
    for (int a = 0; a < 2; a++) {
        wick_theory_config c = wick_theory_defaults(chk_act(acts[a]), 2);
        c.cb = cbs[a]; c.cw = cws[a];
        CHECK_OK(wick_gram_flow(&c, G0, N, K1, a == 0 ? T1 : NULL));
        c.tabulate = 1;
        CHECK_OK(wick_gram_flow(&c, G0, N, K2, a == 0 ? T2 : NULL));
        double ek = 0, et = 0;
        for (int i = 0; i < 2 * N * N; i++) {
            ek = fmax(ek, fabs(K1[i] - K2[i]));
            if (a == 0) et = fmax(et, fabs(T1[i] - T2[i]) / fmax(1, fabs(T1[i])));
        }
        fprintf(stderr, "  %s: table vs direct, max |dK| = %.2e, max rel |dTheta| = %.2e\n",
                acts[a], ek, et);
        CHECK(ek < 1e-9);
        CHECK(et < 1e-9);
    }
    /* a larger K: tanh at C_W = 20 (diagonal ~ 20), where the map is sharp near rho = 1 */
    wick_theory_config c = wick_theory_defaults(chk_act("tanh"), 2);
    c.cw = 20;
    CHECK_OK(wick_gram_flow(&c, G0, N, K1, NULL));
    c.tabulate = 1;
    CHECK_OK(wick_gram_flow(&c, G0, N, K2, NULL));
    double ek = 0;
    for (int i = 0; i < 2 * N * N; i++) ek = fmax(ek, fabs(K1[i] - K2[i]) / fmax(1, fabs(K1[i])));
    fprintf(stderr, "  tanh C_W = 20: table vs direct, max rel |dK| = %.2e\n", ek);
    CHECK(ek < 1e-8);
    /* thread independence: entries are computed independently */
    c.tabulate = 0;
    wick_set_threads(1);
    CHECK_OK(wick_gram_flow(&c, G0, N, K1, NULL));
    wick_set_threads(2);
    CHECK_OK(wick_gram_flow(&c, G0, N, K2, NULL));
    wick_set_threads(0);
    CHECK(memcmp(K1, K2, sizeof(double) * 2 * N * N) == 0);
    free(K1); free(K2); free(T1); free(T2);
}

/* docs/theory.md §12 Monte Carlo: deep linear, n = 16, L = 4, at init.  E[z^4] -
 * 3 E[z^2]^2 matches the exact 3K^2((1 + 2/16)^3 - 1) within 4 standard
 * errors (networks independent, neurons of one network not: each network
 * is one sample, delta method), and the same measurement rejects the exact
 * value scaled by 1.2 and the 1/n formula alone (3K^2 * 0.375, expected
 * ~7 standard errors away at this M).
 * Sampling: given layer l, z^(l+1) = W z^(l) with W_ij ~ N(0, C_W/n) is
 * exactly N(0, (C_W/n)|z^(l)|^2 I) (docs/theory.md §5's derivation), so each network
 * is drawn layer by layer with n normals per layer instead of n^2 weights:
 * the same law as multiplying the weight matrices, 16 times cheaper. */
static void test_deep_linear_monte_carlo(void) {
    enum { n = 16, L = 4, M = 100000 };
    double s2 = 0, s4 = 0, s22 = 0, s44 = 0, s24 = 0;
    for (long m = 0; m < M; m++) {
        double z[n], S = 0;
        uint64_t k = 0;
        for (int i = 0; i < n; i++) {  /* z^(1) ~ N(0, K1 = 1): C_W = 1, |x|^2/n0 = 1 */
            z[i] = wick_rand_normal(11, (uint64_t)m, k++);
            S += z[i] * z[i];
        }
        for (int l = 2; l <= L; l++) {
            double sd = sqrt(S / n);
            S = 0;
            for (int i = 0; i < n; i++) {
                z[i] = sd * wick_rand_normal(11, (uint64_t)m, k++);
                S += z[i] * z[i];
            }
        }
        double m2 = 0, m4 = 0;
        for (int i = 0; i < n; i++) { m2 += z[i] * z[i]; m4 += z[i] * z[i] * z[i] * z[i]; }
        m2 /= n; m4 /= n;
        s2 += m2; s4 += m4; s22 += m2 * m2; s44 += m4 * m4; s24 += m2 * m4;
    }
    double mu2 = s2 / M, mu4 = s4 / M;
    double v22 = s22 / M - mu2 * mu2, v44 = s44 / M - mu4 * mu4, c24 = s24 / M - mu2 * mu4;
    double est = mu4 - 3 * mu2 * mu2;
    /* delta method: the gradient of f(mu2, mu4) = mu4 - 3 mu2^2 is (-6 mu2, 1) */
    double se = sqrt((v44 + 36 * mu2 * mu2 * v22 - 12 * mu2 * c24) / M);
    double K, Ez4;
    CHECK_OK(wick_deep_linear(1.0, 1.0, L, n, &K, &Ez4));
    double exact = Ez4 - 3 * K * K, first = 3 * K * K * 0.375;
    fprintf(stderr, "  measured %.4f +- %.4f, exact %.4f, 1/n formula %.4f\n", est, se, exact, first);
    CHECK(fabs(est - exact) < 4 * se);
    CHECK(fabs(est - 1.2 * exact) > 4 * se);
    CHECK(fabs(est - first) > 4 * se);
    CHECK_NEAR(mu2, K, 4 * sqrt(v22 / M));  /* E[z^2] = K exactly */
}

/* Allocation failure at each allocation of a tabulated flow: a clean
 * WICK_ENOMEM, never a crash (the quadrature nodes are cached after the
 * first successful call). */
static void test_alloc_failure(void) {
    wick_theory_config c = wick_theory_defaults(chk_act("tanh"), 3);
    c.tabulate = 1;
    double G0[4] = {1, 0.3, 0.3, 1}, K[12], T[12];
    int failures = 0;
    for (long k = 1; k <= 6; k++) {
        wick_alloc_fail_at(k);
        wick_status st = wick_gram_flow(&c, G0, 2, K, T);
        wick_alloc_fail_at(0);
        CHECK(st == WICK_OK || st == WICK_ENOMEM);
        if (st == WICK_ENOMEM) { failures++; CHECK(strstr(wick_last_error(), "out of memory") != NULL); }
    }
    CHECK(failures >= 2);
}

static void test_invalid(void) {
    wick_theory_config c = wick_theory_defaults(chk_act("tanh"), 0);
    wick_layer_theory L[4];
    CHECK_FAILS(wick_theory_single(&c, 1.0, L), WICK_EINVAL, "depth 0");
    c.depth = 3;
    c.cb = -0.1;
    CHECK_FAILS(wick_theory_single(&c, 1.0, L), WICK_EINVAL, "C_b = -0.1");
    c.cb = 0;
    CHECK_FAILS(wick_theory_single(&c, -1.0, L), WICK_EINVAL, "q = |x|^2/n0 = -1");
    double G0[4] = {1, 2, 2, 1}, K[12];
    CHECK_FAILS(wick_gram_flow(&c, G0, 2, K, NULL), WICK_ENUMERIC, "not positive semi-definite");
    double G1[4] = {1, 0.2, 0.3, 1};
    CHECK_FAILS(wick_gram_flow(&c, G1, 2, K, NULL), WICK_EINVAL, "symmetric");
    double V[48];
    c.act = chk_act("perceptron");
    CHECK_FAILS(wick_vertex2(&c, G1, V), WICK_EINVAL, "perceptron");
    CHECK_FAILS(wick_chi(c.act, 1, 1, NULL, NULL), WICK_EINVAL, "undefined");
    /* the perceptron's derivative quantities are NAN, never numbers */
    CHECK_OK(wick_theory_single(&c, 1.0, L));
    CHECK(isnan(L[1].chi_par) && isnan(L[1].chi_perp) && isnan(L[1].V) && isnan(L[1].ntk));
    CHECK_NEAR(L[1].K, 0.5, 1e-15);
    c.act.kind = (wick_act_kind)77;
    CHECK_FAILS(wick_theory_single(&c, 1.0, L), WICK_EINVAL, "unknown activation");
    CHECK_FAILS(wick_deep_linear(1, 1, 0, 16, NULL, NULL), WICK_EINVAL, "layer 0");
}

int main(void) {
    RUN(test_relu_critical_chi);
    RUN(test_relu_two_input_flow);
    RUN(test_kstar_zero_class);
    RUN(test_critical_points);
    RUN(test_fixed_point);
    RUN(test_deep_linear);
    RUN(test_scale_invariant_vertex);
    RUN(test_ntk);
    RUN(test_vertex_two_inputs);
    RUN(test_gram_table);
    RUN(test_deep_linear_monte_carlo);
    RUN(test_alloc_failure);
    RUN(test_invalid);
    return chk_finish();
}
