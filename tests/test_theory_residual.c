/* test_theory_residual.c — residual MLPs at initialisation (the book's
 * appendix on residual learning; docs/theory-residual.md): the recursion reduces to the plain MLP's at xi = 0, gamma = 1;
 * the deep linear residual net's exact finite-width law (an independent
 * derivation: its layer-to-layer norm ratio is independent of the past by
 * rotation invariance) gives the vertex; ReLU at residual criticality has the
 * closed form V/K^2 = (l - 1)(1 - xi^2)(5 - xi^2); the critical point has
 * chi_par = chi_perp = 1; and ensembles of real residual networks fitted as
 * c0 + c1/n over widths agree with V within 4 standard errors and reject 1.2 V.
 * WICK_THEORY_FULL=1: widths 16..256 and ten times the networks. */
#include "check.h"
#include "fit.h"
#include "lib/testlib.h"

static int full;

static void test_plain_limit(void) {
    const char *acts[] = {"relu", "tanh", "gelu", "sin"};
    for (int a = 0; a < 4; a++) {
        wick_theory_config c = wick_theory_defaults(chk_act(acts[a]), 6);
        c.cb = 0.1; c.cw = 1.7; c.lambda_b = 0.5; c.lambda_w = 2;
        wick_layer_theory p[6], r[6];
        CHECK_OK(wick_theory_single(&c, 0.8, p));
        CHECK_OK(wick_residual_single(&c, 0.0, 1.0, 0.8, r));
        for (int l = 0; l < 6; l++) {
            CHECK_REL(r[l].K, p[l].K, 1e-14);
            CHECK_REL(r[l].chi_par, p[l].chi_par, 1e-14);
            CHECK_REL(r[l].chi_perp, p[l].chi_perp, 1e-14);
            CHECK_REL(r[l].ntk, p[l].ntk, 1e-14);
            if (l) CHECK_REL(r[l].V, p[l].V, 1e-13);
        }
    }
    wick_theory_config c = wick_theory_defaults(chk_act("perceptron"), 3);
    wick_layer_theory r[3];
    CHECK_FAILS(wick_residual_single(&c, 0.5, 1.0, 1.0, r), WICK_EINVAL, "perceptron");
    wick_critical_info ci;
    CHECK_FAILS(wick_residual_critical(chk_act("relu"), 1.0, 1.0, &ci), WICK_EINVAL, "xi^2 < 1");
}

/* Deep linear residual net, C_b = 0: z' = xi z + gamma W z.  z is isotropic at
 * every layer and G' / G = |xi u + c g|^2 / n with |u|^2 = n, c^2 = gamma^2 C_W,
 * g ~ N(0, I) independent of the past: R = (xi + c N/sqrt n)^2 + c^2 X/n with
 * N ~ N(0,1), X ~ chi^2_{n-1}.  So E[G_L^2] = K1^2 (1 + 2/n) prod E[R^2],
 * E[G_L] = K1 prod E[R], and isotropy gives E[z_i^2 z_j^2] = E[G^2] n/(n+2). */
static void linear_exact(double xi, double c2, double K1, int L, double n, double *EG,
                         double *Vn) {
    double x2 = xi * xi, ER = x2 + c2, Ea2 = x2 + c2 / n, Ea4 = x2 * x2 + 6 * x2 * c2 / n +
                                                                 3 * c2 * c2 / (n * n);
    double EB = c2 * (n - 1) / n, EB2 = c2 * c2 * (n * n - 1) / (n * n);
    double ER2 = Ea4 + 2 * Ea2 * EB + EB2;
    double G = K1, G2 = K1 * K1 * (1 + 2 / n);
    for (int l = 2; l <= L; l++) { G *= ER; G2 *= ER2; }
    *EG = G;
    *Vn = n * (G2 * n / (n + 2) - G * G);  /* n (E[z_i^2 z_j^2] - E[z^2]^2) */
}

static void test_deep_linear_exact(void) {
    double xi = 0.6, gamma = 0.9, cw = 1.3, q = 1.1;
    wick_theory_config c = wick_theory_defaults(chk_act("linear"), 5);
    c.cw = cw;
    wick_layer_theory r[5];
    CHECK_OK(wick_residual_single(&c, xi, gamma, q, r));
    for (int L = 2; L <= 5; L++) {
        double EG, Vn;
        linear_exact(xi, gamma * gamma * cw, cw * q, L, 1e7, &EG, &Vn);
        CHECK_REL(r[L - 1].K, EG, 1e-14);
        CHECK_REL(r[L - 1].V, Vn, 1e-5);  /* Vn = V + O(1/n) */
    }
    /* the sampler against the exact finite-width law at n = 8 (far from the
     * 1/n limit, so this tests the networks, not the expansion) */
    size_t M = full ? 400000 : 100000;
    double K[5], Ks[5], V[5], Vs[5];
    CHECK_OK(wick_residual_measure(&c, xi, gamma, q, 8, M, 7, 0, K, Ks, V, Vs));
    for (int L = 2; L <= 5; L++) {
        double EG, Vn;
        linear_exact(xi, gamma * gamma * cw, cw * q, L, 8, &EG, &Vn);
        fprintf(stderr, "  linear n=8 layer %d: V measured %.5g +- %.3g, exact %.5g; K %.5g +- "
                "%.2g, exact %.5g\n", L, V[L - 1], Vs[L - 1], Vn, K[L - 1], Ks[L - 1], EG);
        CHECK(fabs(V[L - 1] - Vn) < 4 * Vs[L - 1]);
        CHECK(fabs(K[L - 1] - EG) < 4 * Ks[L - 1]);
    }
}

static void test_relu_critical_closed_form(void) {
    double xis[] = {0.0, 0.5, 0.8, 0.95};
    for (int k = 0; k < 4; k++) {
        double xi = xis[k], gamma = 0.7;
        wick_critical_info ci;
        CHECK_OK(wick_residual_critical(chk_act("relu"), xi, gamma, &ci));
        CHECK_REL(ci.cw, 2 * (1 - xi * xi) / (gamma * gamma), 1e-15);
        CHECK_NEAR(ci.cb, 0, 0);
        wick_theory_config c = wick_theory_defaults(chk_act("relu"), 8);
        c.cw = ci.cw;
        wick_layer_theory r[8], t[8];
        CHECK_OK(wick_residual_closure(&c, xi, gamma, 1.5, r));
        CHECK_OK(wick_residual_single(&c, xi, gamma, 1.5, t));
        /* layer 2 is exact in both (layer 1 is Gaussian) */
        CHECK_REL(t[1].V, r[1].V, 1e-12);
        for (int l = 1; l <= 8; l++) {
            double K = r[l - 1].K;
            CHECK_REL(K, 1.5 * ci.cw, 1e-14);  /* K^(l) = K^(1) at criticality */
            CHECK_REL(r[l - 1].chi_par, 1.0, 1e-14);
            CHECK_NEAR(r[l - 1].V / (K * K), (l - 1) * (1 - xi * xi) * (5 - xi * xi), 1e-12);
        }
    }
}

/* At the residual critical point: the fixed point holds and chi_par = chi_perp = 1. */
static void test_critical_point(void) {
    const char *acts[] = {"tanh", "gelu", "swish", "leaky_relu:0.1", "sin"};
    for (int a = 0; a < 5; a++) {
        wick_act act = chk_act(acts[a]);
        wick_critical_info p, r;
        CHECK_OK(wick_critical(act, &p));
        double xi = 0.6, gamma = 1.3, x2 = xi * xi, g2 = gamma * gamma;
        CHECK_OK(wick_residual_critical(act, xi, gamma, &r));
        CHECK(r.cls == p.cls);
        CHECK_REL(r.cw, p.cw * (1 - x2) / g2, 1e-15);
        double K = isfinite(r.kstar) ? r.kstar : 1.0;
        if (r.cls == WICK_UNIV_KSTAR_ZERO) K = 1e-4;  /* chi -> 1 as K -> 0 */
        double cp, cq, s2;
        CHECK_OK(wick_chi(act, r.cw, K, &cp, &cq));
        double tol = r.cls == WICK_UNIV_KSTAR_ZERO ? 2e-3 : 1e-8;
        CHECK_NEAR(x2 + g2 * cp, 1.0, tol);
        CHECK_NEAR(x2 + g2 * cq, 1.0, tol);
        if (r.cls == WICK_UNIV_HALF_STABLE) {
            CHECK_OK(wick_gauss_expect1(act, 0, 2, K, &s2));
            CHECK_NEAR(x2 * K + g2 * (r.cb + r.cw * s2), K, 1e-10);
        }
        if (r.cls == WICK_UNIV_KSTAR_ZERO) {
            /* K' = K + (1 - xi^2) a1 K^2 + ...: the flow's power law slows by 1 - xi^2 */
            wick_theory_config c = wick_theory_defaults(act, 4000);
            c.cw = r.cw;
            wick_layer_theory *o = malloc(sizeof *o * 4000);
            CHECK_OK(wick_residual_closure(&c, xi, gamma, 1.0, o));  /* K alone */
            double lK = 4000 * o[3999].K / r.power_coeff;
            fprintf(stderr, "  %s: l K / coeff at l = 4000: %.4f (-> 1)\n", acts[a], lK);
            CHECK_NEAR(lK, 1.0, 0.05);
            free(o);
        }
    }
}

static void run_fit(const char *act, double xi, double gamma, int L, double q) {
    wick_act a = chk_act(act);
    wick_critical_info ci;
    CHECK_OK(wick_residual_critical(a, xi, gamma, &ci));
    wick_theory_config c = wick_theory_defaults(a, L);
    c.cb = ci.cb; c.cw = ci.cw;
    wick_layer_theory r[8], rc[8];
    CHECK_OK(wick_residual_single(&c, xi, gamma, q, r));
    CHECK_OK(wick_residual_closure(&c, xi, gamma, q, rc));
    size_t ws_ci[] = {16, 32, 64, 128}, ws_full[] = {16, 32, 64, 128, 256};
    size_t nw = full ? 5 : 4;
    const size_t *ws = full ? ws_full : ws_ci;
    size_t M = full ? 400000 : 50000;
    double x[5], y[8][5], e[8][5], K[8], Ks[8], V[8], Vs[8];
    for (size_t w = 0; w < nw; w++) {
        CHECK_OK(wick_residual_measure(&c, xi, gamma, q, ws[w], M, 11 + w, 0, K, Ks, V, Vs));
        x[w] = 1.0 / (double)ws[w];
        for (int l = 0; l < L; l++) { y[l][w] = V[l]; e[l][w] = Vs[l]; }
    }
    char nm[64];
    snprintf(nm, sizeof nm, "%s xi=%.2f V", act, xi);
    for (int l = 2; l <= L; l++) {
        /* the ensemble fit n V_meas(n) = c0 + c1/n with c0 = V (tests/fit.h) */
        fit_width f = FIT_CHECK(x, y[l - 1], e[l - 1], nw, r[l - 1].V, NAN, 1, "%-28s layer %d", nm,
                                l);
        double c0 = f.c0, c0e = f.c0e;
        /* the V-only closure (the MLP's way) is rejected beyond layer 2
         * where it differs from the modes by more than 10% */
        if (l >= 3 && fabs(rc[l - 1].V - r[l - 1].V) > 0.1 * fabs(r[l - 1].V)) {
            fprintf(stderr, "    the V-only closure: %.5g (%+.1f se)\n", rc[l - 1].V,
                    (c0 - rc[l - 1].V) / c0e);
            CHECK(fabs(c0 - rc[l - 1].V) > 4 * c0e);
        }
    }
}

static void test_vertex_measured_relu(void) {
    run_fit("relu", 0.7, 1.0, 4, 1.0);
    if (full) {  /* deeper, where the closure is off by 40% (docs/theory-residual.md §4) */
        run_fit("relu", 0.5, 1.0, 8, 1.0);
        run_fit("relu", 0.9, 1.0, 8, 1.0);
    }
}
static void test_vertex_measured_tanh(void) { run_fit("tanh", 0.7, 1.0, 4, 1.0); }

/* The shortcut sampler (b + W sigma drawn as the Gaussian it is for one
 * input) against real weight matrices: the same law. */
static void test_full_weights_same_law(void) {
    wick_theory_config c = wick_theory_defaults(chk_act("tanh"), 3);
    c.cb = 0.2; c.cw = 1.1;
    size_t M = full ? 200000 : 40000;
    double K0[3], Ks0[3], V0[3], Vs0[3], K1[3], Ks1[3], V1[3], Vs1[3];
    CHECK_OK(wick_residual_measure(&c, 0.8, 0.9, 1.2, 16, M, 3, 0, K0, Ks0, V0, Vs0));
    CHECK_OK(wick_residual_measure(&c, 0.8, 0.9, 1.2, 16, M, 5, 1, K1, Ks1, V1, Vs1));
    for (int l = 0; l < 3; l++) {
        double zk = (K0[l] - K1[l]) / hypot(Ks0[l], Ks1[l]);
        double zv = (V0[l] - V1[l]) / hypot(Vs0[l], Vs1[l]);
        fprintf(stderr, "  layer %d: K %.5g vs %.5g (%+.1f se), V %.5g vs %.5g (%+.1f se)\n", l + 1,
                K0[l], K1[l], zk, V0[l], V1[l], zv);
        CHECK(fabs(zk) < 4);
        CHECK(fabs(zv) < 4);
    }
    /* the same seed gives the same numbers (threads never change a draw) */
    double K2[3], V2[3];
    CHECK_OK(wick_residual_measure(&c, 0.8, 0.9, 1.2, 16, M, 3, 0, K2, NULL, V2, NULL));
    for (int l = 0; l < 3; l++) { CHECK(K2[l] == K0[l]); CHECK(V2[l] == V0[l]); }
}

/* The residual NTK mean, Theta' = gamma^2 (lambda_b + lambda_W <sigma^2>) +
 * chi_perp Theta, against real networks' backpropagated NTK fitted over widths. */
static void ntk_fit(const char *act, double xi, double gamma) {
    wick_act a = chk_act(act);
    wick_critical_info ci;
    CHECK_OK(wick_residual_critical(a, xi, gamma, &ci));
    wick_theory_config c = wick_theory_defaults(a, 4);
    c.cb = ci.cb + 0.1; c.cw = ci.cw; c.lambda_b = 0.7; c.lambda_w = 1.3;
    wick_layer_theory r[4];
    CHECK_OK(wick_residual_single(&c, xi, gamma, 1.1, r));
    size_t ws[3] = {16, 32, 64}, M = full ? 40000 : 4000;
    double x[3], y[3], e[3];
    for (int w = 0; w < 3; w++) {
        CHECK_OK(wick_residual_ntk_measure(&c, xi, gamma, 1.1, ws[w], M, 21 + (uint64_t)w, &y[w], &e[w]));
        x[w] = 1.0 / (double)ws[w];
    }
    FIT_CHECK(x, y, e, 3, r[3].ntk, NAN, 1, "%s xi=%.2f NTK layer 4", act, xi);
}

static void test_ntk_measured(void) {
    ntk_fit("relu", 0.7, 0.9);
    ntk_fit("tanh", 0.6, 1.2);
}

/* Two inputs: the Gram flow's diagonal is the single-input flow, and its
 * off-diagonal kernel is what real residual networks of two inputs show,
 * fitted over widths (weights drawn here, independently of the library). */
static void test_gram_two_inputs(void) {
    const char *acts[] = {"relu", "tanh", "gelu"};
    double G0[4] = {1.2, 0.5, 0.5, 0.9};
    for (int a = 0; a < 3; a++) {
        wick_theory_config c = wick_theory_defaults(chk_act(acts[a]), 5);
        c.cb = 0.2; c.cw = 1.1; c.lambda_b = 0.6;
        double K[20], T[20];
        wick_layer_theory r[5];
        CHECK_OK(wick_residual_gram(&c, 0.6, 0.9, G0, 2, K, T));
        for (int i = 0; i < 2; i++) {
            CHECK_OK(wick_residual_single(&c, 0.6, 0.9, G0[3 * i], r));
            for (int l = 0; l < 5; l++) {
                CHECK_REL(K[4 * l + 3 * i], r[l].K, 1e-13);
                CHECK_REL(T[4 * l + 3 * i], r[l].ntk, 1e-13);
            }
        }
    }
    /* ReLU at the residual critical point, L = 3, x1 = (1, 0.3), x2 = (-0.2, 1.1) */
    double xi = 0.6, gamma = 1.0, x[2][2] = {{1.0, 0.3}, {-0.2, 1.1}};
    wick_critical_info ci;
    CHECK_OK(wick_residual_critical(chk_act("relu"), xi, gamma, &ci));
    wick_theory_config c = wick_theory_defaults(chk_act("relu"), 3);
    c.cw = ci.cw;
    double G[4], K[12];
    for (int i = 0; i < 2; i++)
        for (int j = 0; j < 2; j++) G[2 * i + j] = (x[i][0] * x[j][0] + x[i][1] * x[j][1]) / 2;
    CHECK_OK(wick_residual_gram(&c, xi, gamma, G, 2, K, NULL));
    size_t ws[3] = {32, 64, 128}, M = full ? 20000 : 1000;
    double xs[3], y[3], e[3];
    for (int w = 0; w < 3; w++) {
        size_t n = ws[w];
        double *W = malloc(sizeof(double) * n * n), *z = malloc(sizeof(double) * 2 * n),
               *s = malloc(sizeof(double) * 2 * n), sum = 0, sum2 = 0;
        for (size_t k = 0; k < M; k++) {
            uint64_t off = 0;
            double s1 = sqrt(c.cw / 2), sl = sqrt(c.cw / (double)n);
            wick_fill_normal_fast(W, 2 * n, 77, k, off); off += 2 * n;
            for (size_t i = 0; i < n; i++)
                for (int a = 0; a < 2; a++)
                    z[a * n + i] = s1 * (W[2 * i] * x[a][0] + W[2 * i + 1] * x[a][1]);
            for (int l = 2; l <= 3; l++) {
                wick_fill_normal_fast(W, n * n, 77, k, off); off += n * n;
                for (size_t i = 0; i < 2 * n; i++) s[i] = z[i] > 0 ? z[i] : 0;
                for (int a = 0; a < 2; a++)
                    for (size_t i = 0; i < n; i++) {
                        double v = 0;
                        for (size_t j = 0; j < n; j++) v += W[i * n + j] * s[a * n + j];
                        z[a * n + i] = xi * z[a * n + i] + gamma * sl * v;
                    }
            }
            double g = 0;
            for (size_t i = 0; i < n; i++) g += z[i] * z[n + i];
            g /= (double)n;
            sum += g; sum2 += g * g;
        }
        double m = sum / (double)M;
        xs[w] = 1.0 / (double)n; y[w] = m;
        e[w] = sqrt((sum2 / (double)M - m * m) / (double)(M - 1));
        free(W); free(z); free(s);
    }
    FIT_CHECK(xs, y, e, 3, K[8 + 1], NAN, 1, "relu xi=0.6 two inputs, K_12 at layer 3");
}

/* The aspect-ratio estimate nu r* = 4/(20 + 3 n_L): ReLU's nu = 5 (the MLP's
 * V/K^2 = 5 (l - 1)), the deep linear residual net's 2 (1 - xi^4) (its exact
 * law above), the K*=0 class's 2/3 approached from below. */
static void test_aspect_ratio(void) {
    double nu, r;
    CHECK_OK(wick_aspect_ratio(chk_act("relu"), 0, 1, 1, &nu, &r));
    CHECK_REL(nu, 5, 1e-12);
    CHECK_REL(r, 4.0 / 23 / 5, 1e-12);
    CHECK_OK(wick_aspect_ratio(chk_act("relu"), 0, 1, 10, NULL, &r));
    CHECK_REL(r, 4.0 / 50 / 5, 1e-12);
    CHECK_OK(wick_aspect_ratio(chk_act("linear"), 0.5, 0.8, 1, &nu, NULL));
    CHECK_REL(nu, 2 * (1 - 0.0625), 1e-9);
    CHECK_OK(wick_aspect_ratio(chk_act("tanh"), 0, 1, 1, &nu, NULL));
    CHECK(nu > 0.66 && nu < 2.0 / 3);
    CHECK_FAILS(wick_aspect_ratio(chk_act("sigmoid"), 0, 1, 1, &nu, &r), WICK_ENUMERIC, "sigmoid");
    CHECK_FAILS(wick_aspect_ratio(chk_act("relu"), 0, 1, 0, &nu, &r), WICK_EINVAL, "outputs");
}

int main(void) {
    const char *f = getenv("WICK_THEORY_FULL");
    full = f && *f && strcmp(f, "0") != 0;
    RUN(test_plain_limit);
    RUN(test_deep_linear_exact);
    RUN(test_relu_critical_closed_form);
    RUN(test_critical_point);
    RUN(test_vertex_measured_relu);
    RUN(test_vertex_measured_tanh);
    RUN(test_full_weights_same_law);
    RUN(test_ntk_measured);
    RUN(test_gram_two_inputs);
    RUN(test_aspect_ratio);
    return chk_finish();
}
