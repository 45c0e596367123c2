/* test_theory_gdvar2.c — the VARIANCE across initialisations at a TEST input
 * after t steps (and fully trained) of full-batch MSE gradient descent on one
 * training input, at order 1/n (wick_gd_var_test, wick_gd_testvar_tensors_two;
 * docs/theory-finite-width.md, "the variance at a test input"): its reduction
 * to wick_gd_var_t when the test input is the training input, its t = 0 and
 * t = 1 terms by hand, the fully trained infinite-width variance against
 * ReLU's arc-cosine kernels (a closed form, computed here), and the measured
 * variance of real networks (wick_gd_test_var_measure) fitted over widths.
 * WICK_THEORY_FULL=1 runs the long form (the note's numbers). */
#include "check.h"
#include "fit.h"
#include "lib/testlib.h"

static int full;
static const double G0[4] = {1.0, 0.5, 0.5, 1.5};

static wick_theory_config tanh3(void) {
    wick_theory_config c = wick_theory_defaults(chk_act("tanh"), 3);
    c.cb = 0; c.cw = 1;
    return c;
}

/* The single-input tensors (wick_gd_var_t's) placed at both inputs: the
 * test input is then the training input, and the map must give wick_gd_var_t's
 * terms, computed by another algebra (z(t) squared, z(0) one variable). */
static void single_as_two(const wick_gdvar_terms *g, wick_gd_testvar_tensors *V) {
    memset(V, 0, sizeof *V);
    wick_gd_test_tensors *T = &V->base;
    T->K = V->Kab = V->Kbb = g->K;
    T->ntk[0] = T->ntk[1] = g->ntk;
    T->ntk1[0] = T->ntk1[1] = g->ntk1;
    T->var_aa = T->cov_ab = V->var_bb = g->A + 2 * g->B;
    for (int k = 0; k < 3; k++) {
        T->xz[k] = V->xzb[k] = g->P + g->Q / 2;
        T->ddI[k] = 3 * g->R;
        T->ddII[k] = g->STU;
        V->K1[k] = g->K1;
    }
    V->V[0] = V->V[1] = g->V;
    V->kaa[0] = V->kaa[1] = V->kab[0] = V->kab[1] = g->D + 2 * g->F;
}

static void test_reduces_to_one_input(void) {
    wick_theory_config c = tanh3();
    static const long ts[] = {0, 1, 2, 3, 7, 40};
    for (int i = 0; i < 6; i++) {
        for (int yi = 0; yi < 2; yi++) {
            double y = yi ? 0.7 : -1.3, eta = yi ? 0.1 : 0.3;
            wick_gdvar_terms g;
            wick_gd_testvar_tensors V;
            wick_gd_testvar_terms o;
            CHECK_OK(wick_gd_var_t(&c, 1.0, y, eta, ts[i], NAN, NAN, &g));
            single_as_two(&g, &V);
            CHECK_OK(wick_gd_var_test(&V, y, eta, ts[i], &o));
            double tol = 1e-10;
            CHECK_NEAR(o.mean, g.mean, tol);
            CHECK_NEAR(o.var, g.var, tol);
            CHECK_NEAR(o.v_K1, g.v_K1, tol);
            CHECK_NEAR(o.v_V, g.v_V, tol);
            CHECK_NEAR(o.v_ntk1, g.v_ntk1, tol);
            CHECK_NEAR(o.v_DF, g.v_DF, tol);
            CHECK_NEAR(o.v_var, g.v_var, tol);
            CHECK_NEAR(o.v_dntk, g.v_dntk, tol);
            CHECK_NEAR(o.v_ddI, g.v_ddI, tol);
            CHECK_NEAR(o.v_ddII, g.v_ddII, tol);
            if (i == 3 && yi)
                fprintf(stderr, "  t = 3 at the training input: var %.6g  K1 %.6g DF %.6g var %.6g "
                        "dntk %.6g ddI %.6g ddII %.6g (both algebras)\n", o.var, o.v_K1, o.v_DF,
                        o.v_var, o.v_dntk, o.v_ddI, o.v_ddII);
        }
    }
}

/* The two-input tensors: their all-a components are the single-input ones at
 * q = G0_00; t = 0 is Var z_b(0) = K_bb + K1_bb/n; t = 1 term by term by hand:
 * z_b(1) = z_b - eta H_ba e + (eta^2/2) X_{b;aa} e^2 - (eta^3/6) Y_{b;aaa} e^3. */
static void test_by_hand(void) {
    wick_theory_config c = tanh3();
    wick_gd_testvar_tensors V;
    wick_gdvar_terms g;
    CHECK_OK(wick_gd_testvar_tensors_two(&c, G0, 0, &V));
    CHECK_OK(wick_gd_var_t(&c, G0[0], 1, 0.1, 1, NAN, NAN, &g));
    const wick_gd_test_tensors *T = &V.base;
    CHECK_REL(T->K, g.K, 1e-9);
    CHECK_REL(V.K1[0], g.K1, 1e-6);
    CHECK_REL(V.V[0], g.V, 1e-6);
    CHECK_REL(V.kaa[0], g.D + 2 * g.F, 1e-6);
    fprintf(stderr, "  tanh L3 G0 (1, .5, 1.5): Kab %.6g Kbb %.6g K1 %.6g %.6g %.6g V %.6g %.6g\n"
            "    var_bb %.6g kaa %.6g %.6g kab %.6g %.6g xzb %.6g %.6g %.6g\n", V.Kab, V.Kbb,
            V.K1[0], V.K1[1], V.K1[2], V.V[0], V.V[1], V.var_bb, V.kaa[0], V.kaa[1], V.kab[0],
            V.kab[1], V.xzb[0], V.xzb[1], V.xzb[2]);
    /* the book's form of the dNTK correlators gives the same E[X z_b] (smooth) */
    wick_gd_testvar_tensors V2;
    CHECK_OK(wick_gd_testvar_tensors_two(&c, G0, 2, &V2));
    for (int k = 0; k < 3; k++) CHECK_REL(V2.xzb[k], V.xzb[k], 1e-8);
    wick_gd_testvar_terms o;
    CHECK_OK(wick_gd_var_test(&V, 0.8, 0.2, 0, &o));
    CHECK_REL(o.var, V.Kbb, 1e-15);
    CHECK_REL(o.v_K1, V.K1[2], 1e-15);
    CHECK(fabs(o.v_V) + fabs(o.v_ntk1) + fabs(o.v_DF) + fabs(o.v_var) + fabs(o.v_dntk) +
          fabs(o.v_ddI) + fabs(o.v_ddII) == 0);
    double y = 0.8, eta = 0.2, Th = T->ntk[1], Ka = T->K, Kab = V.Kab, E2 = Ka + y * y;
    double E4 = 3 * Ka * Ka + 6 * Ka * y * y + y * y * y * y;
    CHECK_OK(wick_gd_var_test(&V, y, eta, 1, &o));
    CHECK_REL(o.var, V.Kbb - 2 * eta * Th * Kab + eta * eta * Th * Th * Ka, 1e-14);
    CHECK_REL(o.v_K1, V.K1[2] - 2 * eta * Th * V.K1[1] + eta * eta * Th * Th * V.K1[0], 1e-13);
    CHECK_REL(o.v_ntk1, -2 * eta * T->ntk1[1] * Kab + 2 * eta * eta * Th * T->ntk1[1] * Ka, 1e-13);
    CHECK_REL(o.v_DF, -2 * eta * V.kab[1] + 2 * eta * eta * Th * V.kaa[1], 1e-13);
    CHECK_REL(o.v_var, eta * eta * V.var_bb * E2, 1e-13);
    double xz = T->xz[1];
    CHECK_REL(o.v_dntk, eta * eta * (2 * xz * Kab + V.xzb[1] * E2) - 3 * eta * eta * eta * Th * xz * E2 +
              2 * eta * eta * eta * Th * xz * y * y, 1e-12);
    double Y = T->ddI[1];
    CHECK_REL(o.v_ddI, -eta * eta * eta * Y * Kab * E2 + eta * eta * eta * eta / 3 * Th * Y * E4 -
              2 * eta * Th * y * eta * eta * eta / 6 * Y * (3 * Ka * y + y * y * y), 1e-12);
    CHECK(o.v_ddII == 0 && o.v_V == 0);
    /* the vertex does not enter: z_b(t) is linear in z(0) at leading order */
    for (long t = 2; t <= 6; t += 4) {
        CHECK_OK(wick_gd_var_test(&V, y, eta, t, &o));
        CHECK(fabs(o.v_V) < 1e-15);
    }
    CHECK_FAILS(wick_gd_var_test(&V, y, 2.5 / T->ntk[0], 2, &o), WICK_EINVAL, "converge");
    CHECK_FAILS(wick_gd_var_test(&V, y, eta, -2, &o), WICK_EINVAL, "");
}

/* ReLU at C_W = 2, C_b = 0, lambda = 1 by the arc-cosine kernels (the book's
 * ch. 7 forward equations, written out here): K and Theta of two inputs at
 * layer L. */
static void relu_kernels(const double G[4], int L, double K[4], double H[4]) {
    double k[4] = {2 * G[0], 2 * G[1], 2 * G[2], 2 * G[3]};
    double h[4] = {1 + G[0], 1 + G[1], 1 + G[2], 1 + G[3]};
    for (int l = 1; l < L; l++) {
        double kn[4], hn[4];
        for (int a = 0; a < 2; a++)
            for (int b = 0; b < 2; b++) {
                double r = sqrt(k[3 * a] * k[3 * b]), cs = k[2 * a + b] / r;
                cs = cs > 1 ? 1 : cs < -1 ? -1 : cs;
                double t = acos(cs), ss = r * (sin(t) + (M_PI - t) * cs) / (2 * M_PI);
                kn[2 * a + b] = 2 * ss;
                hn[2 * a + b] = 1 + ss + 2 * (M_PI - t) / (2 * M_PI) * h[2 * a + b];
            }
        memcpy(k, kn, sizeof k);
        memcpy(h, hn, sizeof h);
    }
    memcpy(K, k, sizeof k);
    memcpy(H, h, sizeof h);
}

static void test_relu_closed_form(void) {
    wick_theory_config c = wick_theory_defaults(chk_act("relu"), 3);
    c.cb = 0; c.cw = 2;
    wick_gd_testvar_tensors V;
    CHECK_OK(wick_gd_testvar_tensors_two(&c, G0, 0, &V));
    double K[4], H[4];
    relu_kernels(G0, 3, K, H);
    double eta = 0.15, y = 0.7;
    wick_gd_testvar_terms o;
    CHECK_OK(wick_gd_var_test(&V, y, eta, -1, &o));
    double cf = H[2] / H[0];
    CHECK_REL(o.var, K[3] - 2 * cf * K[2] + cf * cf * K[0], 1e-9);
    CHECK_REL(o.mean, cf * y, 1e-9);
    fprintf(stderr, "  relu L3 fully trained (%ld steps): var %.8g (arc-cosine %.8g); 1/n: K1 %.4g "
            "ntk1 %.4g DF %.4g var %.4g dntk %.4g ddI %.4g ddII %.4g\n", o.steps, o.var,
            K[3] - 2 * cf * K[2] + cf * cf * K[0], o.v_K1, o.v_ntk1, o.v_DF, o.v_var, o.v_dntk,
            o.v_ddI, o.v_ddII);
    long t = 3;
    CHECK_OK(wick_gd_var_test(&V, y, eta, t, &o));
    cf *= 1 - pow(1 - eta * H[0], (double)t);
    CHECK_REL(o.var, K[3] - 2 * cf * K[2] + cf * cf * K[0], 1e-9);
    /* fully trained: the sum's cut does not matter */
    wick_gd_testvar_terms a, b;
    CHECK_OK(wick_gd_var_test(&V, y, eta, -1, &a));
    CHECK_OK(wick_gd_var_test(&V, y, eta, a.steps + 100, &b));
    CHECK_NEAR(a.v_DF + a.v_var + a.v_dntk + a.v_ntk1, b.v_DF + b.v_var + b.v_dntk + b.v_ntk1, 1e-11);
}

/* The measured variance at the test input over widths, n x (part) = c0 +
 * c1/n, the intercept against the prediction's 1/n coefficient: the part
 * beyond each network's own frozen-NTK trajectory (dNTK + ddI + ddII; each
 * per-network difference of order 1/n) and the frozen NTK's own part
 * (Theta1, D/F, A/B; 1/sqrt(n) per network: agreement). */
static void measured_fit(long T, double eta, const size_t *ws, const size_t *Ms, size_t nw) {
    wick_theory_config tc = tanh3();
    wick_gd_testvar_tensors V;
    wick_gd_testvar_terms o;
    double y = 1.0;
    CHECK_OK(wick_gd_testvar_tensors_two(&tc, G0, 0, &V));
    CHECK_OK(wick_gd_var_test(&V, y, eta, T, &o));
    double Th = V.base.ntk[1] / V.base.ntk[0];
    double cinf = T < 0 ? Th : Th * (1 - pow(1 - eta * V.base.ntk[0], (double)T));
    double x[8], v[4][8], e[4][8], val[WICK_GDTV_COUNT], se[WICK_GDTV_COUNT];
    for (size_t w = 0; w < nw; w++) {
        wick_gd_test_config c = {{chk_act("tanh"), 0, 1.0, 1, 1, 3, 2, ws[w], 1},
                                 {G0[0], G0[1], G0[2], G0[3]}, y, eta, Ms[w], 13, T};
        CHECK_OK(wick_gd_test_var_measure(&c, cinf, val, se));
        double nd = (double)ws[w];
        x[w] = 1.0 / nd;
        v[0][w] = nd * val[WICK_GDTV_BEYOND]; e[0][w] = nd * se[WICK_GDTV_BEYOND];
        v[1][w] = nd * val[WICK_GDTV_FROZEN]; e[1][w] = nd * se[WICK_GDTV_FROZEN];
        v[2][w] = nd * (val[WICK_GDTV_VAR] - o.var); e[2][w] = nd * se[WICK_GDTV_VAR];
        v[3][w] = nd * val[WICK_GDTV_EXCESS]; e[3][w] = nd * se[WICK_GDTV_EXCESS];
    }
    const char *tn = T < 0 ? "trained" : "t";
    double beyond = o.v_dntk + o.v_ddI + o.v_ddII;
    /* the short form resolves the sum (and the dNTK term), the long form 1.2 x */
    fit_width f = FIT_CHECK(x, v[0], e[0], nw, beyond, NAN, full && T < 0, "tanh L3 %s eta %g var, beyond frozen",
                            tn, eta);
    double alt[3] = {o.v_ddI + o.v_ddII, o.v_dntk + o.v_ddII, o.v_dntk + o.v_ddI};
    for (int k = 0; k < 3; k++) {
        fprintf(stderr, "    without the %s term: %+.1f se\n", k == 0 ? "dNTK" : k == 1 ? "ddI" : "ddII",
                (f.c0 - alt[k]) / f.c0e);
        if (k == 0 || (k == 1 && full)) CHECK(fabs(f.c0 - alt[k]) > 4 * f.c0e);
    }
    double frozen = o.v_ntk1 + o.v_DF + o.v_var;
    f = FIT_CHECK(x, v[1], e[1], nw, frozen, NAN, 0, "tanh L3 %s eta %g var, frozen NTK part", tn, eta);
    fprintf(stderr, "    without D/F (the z_b-mixed correlation): %+.1f se; without A/B: %+.1f se\n",
                (f.c0 - (frozen - o.v_DF)) / f.c0e, (f.c0 - (frozen - o.v_var)) / f.c0e);
    FIT_CHECK(x, v[3], e[3], nw, frozen + beyond, NAN, 0, "tanh L3 %s eta %g var, all but K1", tn, eta);
    FIT_CHECK(x, v[2], e[2], nw, frozen + beyond + o.v_K1 + o.v_V, NAN, 0,
              "tanh L3 %s eta %g var, the whole 1/n part", tn, eta);
}

/* t = 2 at eta 0.4 carries a large 1/n^2 term at small widths (n x beyond
 * -0.54, -0.37 at n = 16, 32 against -0.33; fits from n = 8 or 16 miss by
 * 2.4-2.9 se with chi2/dof 2.5-4.8; docs/theory-finite-width.md): the long
 * form fits n = 32 ... 128, agreement only (1.2 x is at the edge there) */
static void test_measured_t2(void) {
    static const size_t wf[] = {32, 64, 128}, Mf[] = {12000, 8000, 6000};
    if (full) measured_fit(2, 0.4, wf, Mf, 3);
}

static void test_measured_fully_trained(void) {
    static const size_t ws[] = {8, 16, 32}, Ms[] = {2000, 1500, 1000};
    static const size_t wf[] = {8, 16, 32, 64}, Mf[] = {12000, 8000, 6000, 4000};
    if (full) measured_fit(-1, 0.4, wf, Mf, 4);
    else measured_fit(-1, 0.4, ws, Ms, 3);
}

int main(void) {
    const char *f = getenv("WICK_THEORY_FULL");
    full = f && *f && strcmp(f, "0") != 0;
    RUN(test_reduces_to_one_input);
    RUN(test_by_hand);
    RUN(test_relu_closed_form);
    RUN(test_measured_t2);
    RUN(test_measured_fully_trained);
    return chk_finish();
}
