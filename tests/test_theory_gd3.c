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
    CHECK_NEAR(p->lin, t->lin, tol * (fabs(t->lin) + 1e-3));
    CHECK_NEAR(p->a_ntk1, t->a_ntk1, tol * (fabs(t->a_ntk1) + 1e-3));
    CHECK_NEAR(p->a_var, t->a_var, tol * (fabs(t->a_var) + 1e-3));
    CHECK_NEAR(p->a_dntk, t->a_dntk, tol * (fabs(t->a_dntk) + 1e-3));
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

int main(void) {
    const char *f = getenv("WICK_THEORY_FULL");
    full = f && *f && strcmp(f, "0") != 0;
    RUN(test_reductions);
    RUN(test_tensors);
    RUN(test_by_hand);
    return chk_finish();
}
