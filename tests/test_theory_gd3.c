/* test_theory_gd3.c — the mean output after t steps (and fully trained) of
 * full-batch MSE gradient descent on TWO training inputs, at order 1/n
 * (wick_gd_mean_multi, wick_gd_tensors_multi; docs/theory-finite-width.md,
 * "several training inputs"): its reductions to the one-input algebras
 * (wick_gd_mean_t, wick_gd_mean_test: independent code) when the second
 * input has weight 0 or is the first input again, its t = 1 terms by hand,
 * its fully trained limit, and the measured residual of real networks
 * (wick_gd_multi_measure) fitted over widths.
 * WICK_THEORY_FULL=1 runs the long form (the closing note's numbers). */
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

/* tanh3's tensors on G0, both inputs training, wick's dNTK form (computed once) */
static const wick_gd_multi_tensors *tanh3_two(void) {
    static wick_gd_multi_tensors T;
    static int have;
    if (!have) {
        wick_theory_config c = tanh3();
        CHECK_OK(wick_gd_tensors_multi(&c, 2, 2, G0, 0, &T));
        have = 1;
    }
    return &T;
}

/* the single-input tensors at q on m inputs that are all the same input */
static void single_as_multi(const wick_theory_config *c, double q, int m, int nt,
                            wick_gd_multi_tensors *T) {
    wick_layer_finite f[8];
    wick_layer_ddntk d[8];
    CHECK_OK(wick_theory_finite(c, q, f));
    CHECK_OK(wick_theory_ddntk(c, q, d));
    const wick_layer_finite *g = &f[c->depth - 1];
    const wick_layer_ddntk *h = &d[c->depth - 1];
    memset(T, 0, sizeof *T);
    T->m = m; T->nt = nt;
    int m2 = m * m, m4 = m2 * m2;
    for (int i = 0; i < m2; i++) { T->K[i] = g->K; T->ntk[i] = g->ntk; T->ntk1[i] = g->ntk1; }
    for (int i = 0; i < m4; i++) {
        T->cov[i] = g->A + 2 * g->B;
        T->xz[i] = g->P + g->Q / 2;
        T->ddI[i] = 3 * h->R;
        T->ddII[i] = h->S + h->T + h->U;
    }
}

static void check_part(const wick_gd_test_part *p, const wick_gd_test_part *t, double tol) {
    CHECK_NEAR(p->lin, t->lin, tol * (fabs(t->lin) + 0.1));
    CHECK_NEAR(p->a_ntk1, t->a_ntk1, tol * (fabs(t->a_ntk1) + 0.1));
    CHECK_NEAR(p->a_var, t->a_var, tol * (fabs(t->a_var) + 0.1));
    CHECK_NEAR(p->a_dntk, t->a_dntk, tol * (fabs(t->a_dntk) + 0.1));
    CHECK_NEAR(p->a_ddI, t->a_ddI, tol * (fabs(t->a_ddI) + 1e-3));
    CHECK_NEAR(p->a_ddII, t->a_ddII, tol * (fabs(t->a_ddII) + 1e-3));
}

static wick_gd_test_part from_gdt(const wick_gdt_terms *g) {
    wick_gd_test_part p = {g->lin, g->a_ntk1, g->a_var, g->a_dntk, g->a_ddI, g->a_ddII};
    return p;
}

/* m = 1: wick_gd_mean_t; two copies of one input (K, Theta, ... all equal)
 * with equal targets: one input at rate 2 eta; a second input of weight 0:
 * wick_gd_mean_test with that input as the test input (its own algebra). */
static void test_reductions(void) {
    wick_theory_config c = tanh3();
    static const long ts[] = {1, 2, 3, 7, 40};
    wick_gd_multi_tensors T1, T2, Tt = *tanh3_two();
    single_as_multi(&c, 1.0, 1, 1, &T1);
    single_as_multi(&c, 1.0, 2, 2, &T2);
    wick_gd_test_tensors T2o;
    CHECK_OK(wick_gd_test_tensors_two(&c, G0, 0, &T2o));
    double y = 0.7, yy[2] = {0.7, 0.7}, yd[2] = {0.7, -1.3}, w0[2] = {1, 0};
    for (int i = 0; i < 5; i++) {
        wick_gdt_terms g, g2;
        wick_gd_multi_terms o;
        CHECK_OK(wick_gd_mean_t(&c, 1.0, y, 0.1, ts[i], NAN, NAN, &g));
        CHECK_OK(wick_gd_mean_multi(&T1, &y, NULL, 0.1, ts[i], &o));
        wick_gd_test_part p = from_gdt(&g);
        check_part(&o.at[0], &p, 1e-12);
        CHECK_OK(wick_gd_mean_t(&c, 1.0, y, 0.2, ts[i], NAN, NAN, &g2));
        CHECK_OK(wick_gd_mean_multi(&T2, yy, NULL, 0.1, ts[i], &o));
        p = from_gdt(&g2);
        check_part(&o.at[0], &p, 1e-12);
        check_part(&o.at[1], &p, 1e-12);
        wick_gd_test_terms og;
        CHECK_OK(wick_gd_mean_test(&T2o, 0.7, 0.3, ts[i], &og));
        CHECK_OK(wick_gd_mean_multi(&Tt, yd, w0, 0.3, ts[i], &o));
        check_part(&o.at[0], &og.train, 1e-12);
        check_part(&o.at[1], &og.test, 1e-12);
    }
    wick_gd_test_terms og;
    wick_gd_multi_terms o;
    CHECK_OK(wick_gd_mean_test(&T2o, 0.7, 0.3, -1, &og));
    CHECK_OK(wick_gd_mean_multi(&Tt, yd, w0, 0.3, -1, &o));
    check_part(&o.at[1], &og.test, 1e-11);
    fprintf(stderr, "  weight-0 second input, fully trained: test-input terms %.6g %.6g %.6g %.6g "
            "%.6g %.6g (wick_gd_mean_test's)\n", o.at[1].lin, o.at[1].a_ntk1, o.at[1].a_var,
            o.at[1].a_dntk, o.at[1].a_ddI, o.at[1].a_ddII);
}

/* The m = 2 tensors against wick_gd_test_tensors_two's (gd2.c's own indexing). */
static void test_tensors(void) {
    wick_theory_config c = tanh3();
    wick_gd_multi_tensors T;
    wick_gd_test_tensors S;
    for (int pq = 0; pq < 3; pq += 2) {
        CHECK_OK(wick_gd_tensors_multi(&c, 2, 2, G0, pq, &T));
        CHECK_OK(wick_gd_test_tensors_two(&c, G0, pq, &S));
        CHECK_REL(T.K[0], S.K, 1e-15);
        CHECK_REL(T.ntk[0], S.ntk[0], 1e-15);
        CHECK_REL(T.ntk[2], S.ntk[1], 1e-15);
        CHECK_REL(T.ntk1[0], S.ntk1[0], 1e-15);
        CHECK_REL(T.ntk1[2], S.ntk1[1], 1e-15);
        CHECK_REL(T.cov[0], S.var_aa, 1e-15);
        CHECK_REL(T.cov[8], S.cov_ab, 1e-15);   /* Cov(H_10, H_00) */
        CHECK_REL(T.cov[2], S.cov_ab, 1e-12);   /* Cov(H_00, H_10): symmetric */
        CHECK_REL(T.xz[0], S.xz[0], 1e-14);     /* X_{0;00} z_0 */
        CHECK_REL(T.xz[8], S.xz[1], 1e-14);     /* X_{1;00} z_0 */
        CHECK_REL(T.xz[4], S.xz[2], 1e-14);     /* X_{0;10} z_0 */
        CHECK_REL(T.ddI[0], S.ddI[0], 1e-14);
        CHECK_REL(T.ddI[8], S.ddI[1], 1e-14);
        CHECK_REL(T.ddI[4], S.ddI[2], 1e-14);
        CHECK_REL(T.ddII[0], S.ddII[0], 1e-14);
        CHECK_REL(T.ddII[8], S.ddII[1], 1e-14);
        CHECK_REL(T.ddII[2], S.ddII[2], 1e-14);
    }
    /* the symmetries the map relies on: X_{a;bc} = X_{a;cb}, Cov symmetric */
    T = *tanh3_two();
    for (int a = 0; a < 2; a++)
        for (int d = 0; d < 2; d++) CHECK_REL(T.xz[8 * a + 4 + d], T.xz[8 * a + 2 + d], 1e-9);
    for (int i = 0; i < 4; i++)
        for (int j = 0; j < 4; j++) CHECK_REL(T.cov[4 * i + j], T.cov[4 * j + i], 1e-9);
    CHECK_FAILS(wick_gd_tensors_multi(&c, 2, 2, G0, 3, &T), WICK_EINVAL, "form");
    CHECK_FAILS(wick_gd_tensors_multi(&c, 5, 2, G0, 0, &T), WICK_EINVAL, "inputs");
}

/* t = 1 by hand at each training input a: E[z_a(1)] = eta Theta_ab y_b +
 * [eta Theta1_ab y_b - eta^2 E[X_{a;bc} z_b] y_c + (eta^3/6) E[Y_{a;bcd}]
 * (3 K_bc y_d + y_b y_c y_d)] / n (sums over b, c, d; E[Y] symmetric in
 * its last three); fully trained, E[z_a] = y_a with no 1/n term. */
static void test_by_hand(void) {
    wick_gd_multi_tensors T = *tanh3_two();
    double y[2] = {0.8, -0.4}, eta = 0.2;
    wick_gd_multi_terms o;
    CHECK_OK(wick_gd_mean_multi(&T, y, NULL, eta, 1, &o));
    for (int a = 0; a < 2; a++) {
        double lin = 0, n1 = 0, dn = 0, dI = 0;
        for (int b = 0; b < 2; b++) {
            lin += eta * T.ntk[2 * a + b] * y[b];
            n1 += eta * T.ntk1[2 * a + b] * y[b];
            for (int cc = 0; cc < 2; cc++) {
                dn += -eta * eta * T.xz[8 * a + 4 * b + 2 * cc + b] * y[cc];
                for (int d = 0; d < 2; d++)
                    dI += eta * eta * eta / 6 * T.ddI[8 * a + 4 * b + 2 * cc + d] *
                          (T.K[2 * b + cc] * y[d] + T.K[2 * b + d] * y[cc] + T.K[2 * cc + d] * y[b] +
                           y[b] * y[cc] * y[d]);
            }
        }
        CHECK_REL(o.at[a].lin, lin, 1e-14);
        CHECK_REL(o.at[a].a_ntk1, n1, 1e-13);
        CHECK_REL(o.at[a].a_dntk, dn, 1e-12);
        CHECK_REL(o.at[a].a_ddI, dI, 1e-12);
        CHECK_NEAR(o.at[a].a_var, 0, 1e-16);
        CHECK_NEAR(o.at[a].a_ddII, 0, 1e-16);
    }
    /* t = 2, the frozen NTK's variance: E[-eta^2 sum_bc d_ab d_bc (-y_c)]... by the
     * matrix: z(2) - y = (1 - eta H)^2 (z - y), whose d d part is eta^2 d d (z - y) */
    CHECK_OK(wick_gd_mean_multi(&T, y, NULL, eta, 2, &o));
    for (int a = 0; a < 2; a++) {
        double v = 0;
        for (int b = 0; b < 2; b++)
            for (int cc = 0; cc < 2; cc++) v += -eta * eta * T.cov[(2 * a + b) * 4 + 2 * b + cc] * y[cc];
        CHECK_REL(o.at[a].a_var, v, 1e-12);
    }
    CHECK_OK(wick_gd_mean_multi(&T, y, NULL, eta, -1, &o));
    for (int a = 0; a < 2; a++) {
        CHECK_REL(o.at[a].lin, y[a], 1e-13);
        CHECK(fabs(o.at[a].a_ntk1) + fabs(o.at[a].a_var) + fabs(o.at[a].a_dntk) +
              fabs(o.at[a].a_ddI) + fabs(o.at[a].a_ddII) < 1e-12);
    }
    fprintf(stderr, "  fully trained on both (tanh L3, y %g %g, eta %g): %ld steps, E[z] = y\n",
            y[0], y[1], eta, o.steps);
    CHECK_FAILS(wick_gd_mean_multi(&T, y, NULL, 2.5 / T.ntk[0], 2, &o), WICK_EINVAL, "converge");
    CHECK_FAILS(wick_gd_mean_multi(&T, y, NULL, eta, -2, &o), WICK_EINVAL, "");
}


/* Three inputs (m = 3, two training, one read) in the layout the three-input
 * tensors use (index base 3), built from the two-input ones with the read
 * input a copy of training input 0 (index map 0 1 0): the read input's mean
 * must then be training input 0's (its z(0) only adds a mean-zero term), at
 * every t and fully trained; and with training input 1 at weight 0 the pair
 * (0, 2) must be wick_gd_mean_test's. */
static void test_three_inputs_layout(void) {
    const wick_gd_multi_tensors *T2 = tanh3_two();
    wick_gd_multi_tensors T3;
    memset(&T3, 0, sizeof T3);
    T3.m = 3; T3.nt = 2;
    static const int mp[3] = {0, 1, 0};
    for (int a = 0; a < 3; a++)
        for (int b = 0; b < 3; b++) {
            int i3 = 3 * a + b, i2 = 2 * mp[a] + mp[b];
            T3.K[i3] = T2->K[i2]; T3.ntk[i3] = T2->ntk[i2]; T3.ntk1[i3] = T2->ntk1[i2];
            for (int c = 0; c < 3; c++)
                for (int d = 0; d < 3; d++) {
                    int j3 = ((a * 3 + b) * 3 + c) * 3 + d;
                    int j2 = ((mp[a] * 2 + mp[b]) * 2 + mp[c]) * 2 + mp[d];
                    T3.cov[j3] = T2->cov[j2]; T3.xz[j3] = T2->xz[j2];
                    T3.ddI[j3] = T2->ddI[j2]; T3.ddII[j3] = T2->ddII[j2];
                }
        }
    double y[2] = {0.9, -0.3};
    static const long ts[] = {1, 2, 5, -1};
    for (int i = 0; i < 4; i++) {
        wick_gd_multi_terms o3, o2;
        CHECK_OK(wick_gd_mean_multi(&T3, y, NULL, 0.3, ts[i], &o3));
        CHECK_OK(wick_gd_mean_multi(T2, y, NULL, 0.3, ts[i], &o2));
        check_part(&o3.at[0], &o2.at[0], 1e-12);
        check_part(&o3.at[1], &o2.at[1], 1e-12);
        check_part(&o3.at[2], &o3.at[0], 1e-12);
    }
    /* weight 0 on input 1: only input 0 trains, and input 2 is input 0 again:
     * wick_gd_mean_t at q = G0_00 (gd1.c's algebra) at both */
    wick_theory_config c = tanh3();
    double w[2] = {1, 0};
    wick_gd_multi_terms o3;
    wick_gdt_terms g;
    CHECK_OK(wick_gd_mean_multi(&T3, y, w, 0.3, 3, &o3));
    CHECK_OK(wick_gd_mean_t(&c, G0[0], y[0], 0.3, 3, NAN, NAN, &g));
    wick_gd_test_part p = from_gdt(&g);
    /* the two-input engine's all-0 components are the single-input ones to
     * quadrature accuracy (1e-6: test_theory_gd2) */
    check_part(&o3.at[2], &p, 1e-5);
    check_part(&o3.at[0], &p, 1e-5);
}

/* m = 3 from the three-input tensors (two training inputs and a read one):
 * the training inputs' means are the m = 2 ones (the read input does not
 * act on them), and with training input 1 at weight 0 the read input's mean
 * is wick_gd_mean_test's on the pair (0, 2) (gd2.c's algebra on the two-input
 * engine); fully trained, the training outputs are y. */
static const double G3[9] = {1.0, 0.5, 0.3, 0.5, 1.5, 0.2, 0.3, 0.2, 1.2};
static void test_three_inputs_engine(void) {
    wick_theory_config c = tanh3();
    wick_gd_multi_tensors T3;
    CHECK_OK(wick_gd_tensors_multi(&c, 3, 2, G3, 0, &T3));
    double y[2] = {1.0, 0.5}, w[2] = {1, 0};
    static const long ts[] = {1, 3, -1};
    for (int i = 0; i < 3; i++) {
        wick_gd_multi_terms o3, o2;
        CHECK_OK(wick_gd_mean_multi(&T3, y, NULL, 0.3, ts[i], &o3));
        CHECK_OK(wick_gd_mean_multi(tanh3_two(), y, NULL, 0.3, ts[i], &o2));
        check_part(&o3.at[0], &o2.at[0], 1e-8);
        check_part(&o3.at[1], &o2.at[1], 1e-8);
        if (ts[i] < 0)
            fprintf(stderr, "  three inputs, fully trained (tanh L3, y 1 0.5, eta 0.3): read input "
                    "lin %.6g ntk1 %.6g var %.6g dntk %.6g ddI %.6g ddII %.6g\n", o3.at[2].lin,
                    o3.at[2].a_ntk1, o3.at[2].a_var, o3.at[2].a_dntk, o3.at[2].a_ddI, o3.at[2].a_ddII);
    }
    const double g02[4] = {G3[0], G3[2], G3[6], G3[8]};
    wick_gd_test_tensors S;
    CHECK_OK(wick_gd_test_tensors_two(&c, g02, 0, &S));
    for (int i = 0; i < 3; i++) {
        wick_gd_multi_terms o3;
        wick_gd_test_terms og;
        CHECK_OK(wick_gd_mean_multi(&T3, y, w, 0.3, ts[i], &o3));
        CHECK_OK(wick_gd_mean_test(&S, y[0], 0.3, ts[i], &og));
        check_part(&o3.at[0], &og.train, 1e-8);
        check_part(&o3.at[2], &og.test, 1e-8);
    }
}

/* The measured residual at both training inputs beyond each network's own
 * frozen-NTK trajectory, n E[z_a - z_lin,a] over widths, against the NTK
 * motion's terms.  t = 1: its eta^2 part is the dNTK's, its eta^3 part the
 * ddI's; t > 1: their sum with the ddII's, and each term left out must be
 * rejected.  The frozen part (Theta1, Cov H) is 1/sqrt(n) noisy per network:
 * agreement only. */
static void measured_fit(const char *act, long T, double eta, const double *y, const size_t *ws,
                         const size_t *Ms, size_t nw, int reject_ddII) {
    wick_theory_config tc = tanh3();
    wick_gd_multi_tensors Tn = *tanh3_two();
    if (strcmp(act, "tanh") != 0) {
        tc = wick_theory_defaults(chk_act(act), 3);
        tc.cb = 0; tc.cw = 2;
        CHECK_OK(wick_gd_tensors_multi(&tc, 2, 2, G0, 0, &Tn));
    }
    wick_gd_multi_terms o;
    CHECK_OK(wick_gd_mean_multi(&Tn, y, NULL, eta, T, &o));
    double x[8], v[2][4][8], e[2][4][8];
    enum { NV = 2 * WICK_GDM_PER + 1 };
    double val[NV], se[NV];
    for (size_t w = 0; w < nw; w++) {
        wick_gd_multi_config c = {{chk_act(act), 0, tc.cw, 1, 1, 3, 2, ws[w], 1}, 2, 2,
                                  {G0[0], G0[1], G0[2], G0[3]}, {y[0], y[1]}, eta, Ms[w], 13, T};
        CHECK_OK(wick_gd_multi_measure(&c, val, se));
        double nd = (double)ws[w];
        x[w] = 1.0 / nd;
        for (int a = 0; a < 2; a++) {
            const double *va = val + a * WICK_GDM_PER, *sa = se + a * WICK_GDM_PER;
            v[a][0][w] = nd * va[WICK_GDM_RES]; e[a][0][w] = nd * sa[WICK_GDM_RES];
            v[a][1][w] = nd * va[WICK_GDM_RES2]; e[a][1][w] = nd * sa[WICK_GDM_RES2];
            v[a][2][w] = nd * va[WICK_GDM_RES3]; e[a][2][w] = nd * sa[WICK_GDM_RES3];
            v[a][3][w] = nd * (va[WICK_GDM_LIN] - o.at[a].lin); e[a][3][w] = nd * sa[WICK_GDM_LIN];
            if (T < 0) CHECK(fabs(va[WICK_GDM_MEAN] - y[a]) < 1e-12);
        }
        fprintf(stderr, "    n %zu (%zu pairs): n res %.4g +- %.3g, %.4g +- %.3g\n", ws[w], Ms[w],
                v[0][0][w], e[0][0][w], v[1][0][w], e[1][0][w]);
    }
    for (int a = 0; a < 2; a++) {
        const wick_gd_test_part *p = &o.at[a];
        if (T == 1) {
            FIT_CHECK(x, v[a][2], e[a][2], nw, p->a_ddI, NAN, 1,
                      "%s L3 t = 1 eta %g, input %d, eta^3 part (ddI)", act, eta, a);
            /* the eta^2 part's 1.2 x is resolved by the full form only */
            FIT_CHECK(x, v[a][1], e[a][1], nw, p->a_dntk, NAN, full,
                      "%s L3 t = 1 eta %g, input %d, eta^2 part (dNTK)", act, eta, a);
            continue;
        }
        double beyond = p->a_dntk + p->a_ddI + p->a_ddII;
        fit_width f = FIT_CHECK(x, v[a][0], e[a][0], nw, beyond, NAN, 1,
                                "%s L3 t = %ld eta %g, input %d, beyond frozen", act, T, eta, a);
        double alt[3] = {p->a_ddI + p->a_ddII, p->a_dntk + p->a_ddII, p->a_dntk + p->a_ddI};
        for (int k = 0; k < 3; k++) {
            fprintf(stderr, "    without the %s term (%.4g): %+.1f se\n",
                    k == 0 ? "dNTK" : k == 1 ? "ddI" : "ddII",
                    k == 0 ? p->a_dntk : k == 1 ? p->a_ddI : p->a_ddII, (f.c0 - alt[k]) / f.c0e);
            /* a ddII term of a few hundredths is not resolved: reported only */
            if (k < 2 || (reject_ddII && fabs(p->a_ddII) > 0.05)) CHECK(fabs(f.c0 - alt[k]) > 4 * f.c0e);
        }
        FIT_CHECK(x, v[a][3], e[a][3], nw, p->a_ntk1 + p->a_var, NAN, 0,
                  "%s L3 t = %ld eta %g, input %d, frozen NTK part", act, T, eta, a);
    }
}

/* Three inputs measured: two training inputs and the read input 2 (n0 = 3),
 * n E[z_2 - z_lin,2] over widths against the read input's beyond-frozen
 * terms, each term left out reported (rejected where reject). */
static void measured_fit3(long T, double eta, const size_t *ws, const size_t *Ms, size_t nw,
                          int reject) {
    wick_theory_config tc = tanh3();
    wick_gd_multi_tensors Tn;
    double y[2] = {1.0, 0.5};
    CHECK_OK(wick_gd_tensors_multi(&tc, 3, 2, G3, 0, &Tn));
    wick_gd_multi_terms o;
    CHECK_OK(wick_gd_mean_multi(&Tn, y, NULL, eta, T, &o));
    const wick_gd_test_part *p = &o.at[2];
    enum { NV = 3 * WICK_GDM_PER + 1 };
    double x[8], v[8], e[8], vl[8], el[8], val[NV], se[NV];
    for (size_t w = 0; w < nw; w++) {
        wick_gd_multi_config c = {{chk_act("tanh"), 0, 1.0, 1, 1, 3, 3, ws[w], 1}, 3, 2, {0},
                                  {y[0], y[1]}, eta, Ms[w], 17, T};
        memcpy(c.G0, G3, sizeof G3);
        CHECK_OK(wick_gd_multi_measure(&c, val, se));
        double nd = (double)ws[w];
        const double *va = val + 2 * WICK_GDM_PER, *sa = se + 2 * WICK_GDM_PER;
        x[w] = 1.0 / nd;
        v[w] = nd * va[WICK_GDM_RES]; e[w] = nd * sa[WICK_GDM_RES];
        vl[w] = nd * (va[WICK_GDM_LIN] - p->lin); el[w] = nd * sa[WICK_GDM_LIN];
        fprintf(stderr, "    n %zu (%zu pairs): read input n res %.4g +- %.3g, mean %.6g (lin %.6g)\n",
                ws[w], Ms[w], v[w], e[w], va[WICK_GDM_MEAN], p->lin);
    }
    double beyond = p->a_dntk + p->a_ddI + p->a_ddII;
    /* fully trained, the three terms nearly cancel (0.055 of -0.24, 0.44, -0.15):
     * 1.2 x is reported, each term left out is rejected */
    fit_width f = FIT_CHECK(x, v, e, nw, beyond, NAN, 0,
                            "tanh L3 three inputs t = %ld eta %g, read input, beyond frozen", T, eta);
    double alt[3] = {p->a_ddI + p->a_ddII, p->a_dntk + p->a_ddII, p->a_dntk + p->a_ddI};
    for (int k = 0; k < 3; k++) {
        fprintf(stderr, "    without the %s term (%.4g): %+.1f se\n", k == 0 ? "dNTK" : k == 1 ? "ddI" : "ddII",
                k == 0 ? p->a_dntk : k == 1 ? p->a_ddI : p->a_ddII, (f.c0 - alt[k]) / f.c0e);
        if (reject) CHECK(fabs(f.c0 - alt[k]) > 4 * f.c0e);
    }
    FIT_CHECK(x, vl, el, nw, p->a_ntk1 + p->a_var, NAN, 0,
              "tanh L3 three inputs t = %ld eta %g, read input, frozen NTK part", T, eta);
}

static void test_measured(void) {
    static const double y[2] = {1.0, 0.5};
    const char *e = getenv("WICK_GD3_EXPLORE");
    if (e && *e) {
        /* a scratch form: WICK_GD3_EXPLORE="act t eta n1,n2,.. M1,M2,.." */
        char act[16];
        long t;
        double eta;
        size_t ws[8], Ms[8], nw = 0;
        char wl[128], ml[128];
        if (sscanf(e, "%15s %ld %lf %127s %127s", act, &t, &eta, wl, ml) == 5) {
            int three = strcmp(act, "tanh3") == 0;
            char *p = wl, *q = ml;
            while (nw < 8 && *p && *q) {
                ws[nw] = strtoul(p, &p, 10); Ms[nw] = strtoul(q, &q, 10); nw++;
                if (*p == ',') p++;
                if (*q == ',') q++;
            }
            if (three) measured_fit3(t, eta, ws, Ms, nw, 0);
            else measured_fit(act, t, eta, y, ws, Ms, nw, 0);
        }
        return;
    }
    static const size_t ws[] = {8, 16, 32}, Ms[] = {3000, 2000, 1500};
    static const size_t wf[] = {16, 32, 64, 128, 256}, Mf[] = {32000, 16000, 8000, 8000, 4000};
    if (full) {
        measured_fit("tanh", 1, 0.3, y, wf, Mf, 5, 1);
        measured_fit("tanh", 3, 0.3, y, wf, Mf, 5, 1);
        static const size_t w3[] = {16, 32, 64, 128}, M3[] = {8000, 8000, 4000, 4000};
        measured_fit3(-1, 0.3, w3, M3, 4, 1);
    } else measured_fit("tanh", 1, 0.3, y, ws, Ms, 3, 0);
}

int main(void) {
    const char *f = getenv("WICK_THEORY_FULL");
    full = f && *f && strcmp(f, "0") != 0;
    RUN(test_reductions);
    RUN(test_tensors);
    RUN(test_by_hand);
    RUN(test_three_inputs_layout);
    RUN(test_three_inputs_engine);
    RUN(test_measured);
    return chk_finish();
}
