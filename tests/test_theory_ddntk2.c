/* test_theory_ddntk2.c — the ddNTK means R, S, T, U of two inputs (the
 * book's ch. 11; docs/theory-finite-width.md "The ddNTKs of two inputs"):
 * the recursion of wick_theory_ddntk_two against the single-input one where
 * every sample index is the same, its book-form dNTK correlators against
 * wick_dntk_PQ_two (an independent two-input recursion in wick's form),
 * and against ensembles of real two-input networks.  WICK_THEORY_FULL=1
 * runs the long form. */
#include "check.h"
#include "lib/testlib.h"

static int full;
static const double G0[4] = {1.0, 0.5, 0.5, 1.5};

static wick_theory_config cfg(const char *act, int L, double cb, double cw, double lb, double lw) {
    wick_theory_config c = wick_theory_defaults(chk_act(act), L);
    c.cb = cb; c.cw = cw; c.lambda_b = lb; c.lambda_w = lw;
    return c;
}

/* every-index-equal components = wick_theory_ddntk at that input's norm */
static void single_limit(const wick_theory_config *c, double tol) {
    int L = c->depth;
    double R[16 * 8], S[16 * 8], T[16 * 8], U[16 * 8];
    CHECK_OK(wick_theory_ddntk_two(c, G0, R, S, T, U));
    for (int a = 0; a < 2; a++) {
        wick_layer_ddntk o[8];
        CHECK_OK(wick_theory_ddntk(c, G0[3 * a], o));
        for (int l = 0; l < L; l++) {
            int i = 16 * l + 15 * a;
            double sc = 1 + fabs(o[l].S) + fabs(o[l].R);
            CHECK_NEAR(R[i], o[l].R, tol * sc);
            CHECK_NEAR(S[i], o[l].S, tol * sc);
            CHECK_NEAR(T[i], o[l].T, tol * sc);
            CHECK_NEAR(U[i], o[l].U, tol * sc);
        }
    }
}

static void test_single_input_limit(void) {
    wick_theory_config c = cfg("tanh", 4, 0, 1, 1, 1);
    single_limit(&c, 1e-10);
    c = cfg("tanh", 4, 0.2, 1.5, 0.7, 1.3);
    single_limit(&c, 1e-10);
    c = cfg("gelu", 4, 0.1, 1.6, 0.5, 2.0);
    single_limit(&c, 1e-10);
    c = cfg("sin", 3, 0.1, 1.2, 1, 1);
    single_limit(&c, 1e-10);
    c = cfg("swish", 3, 0.0, 1.8, 1, 1);
    single_limit(&c, 1e-10);
    c = cfg("relu", 4, 0, 2, 1, 1);
    single_limit(&c, 1e-10);
    c = cfg("leaky_relu", 3, 0.1, 1.7, 0.5, 1.5);
    single_limit(&c, 1e-10);
    /* unequal widths (r = n_l / n_{l-1} != 1) */
    size_t w[5] = {2, 40, 20, 80, 10};
    c = cfg("tanh", 4, 0.1, 1.2, 1, 1);
    c.width_l = w;
    single_limit(&c, 1e-10);
}

/* P_{a0a1a2a3} = Qb_{a1a0a2a3} + Pb_{a2a0a1a3}, Q_{a0a1a2a3} = Qb_{a1a2a0a3} +
 * Qb_{a2a1a0a3}: the book-form correlators carried here against
 * wick_dntk_PQ_two's own recursion of wick's form (pathwise for ReLU) */
static void book_form(const wick_theory_config *c, int pathwise) {
    int L = c->depth;
    double Pb[16 * 8], Qb[16 * 8], P[16 * 8], Q[16 * 8];
    CHECK_OK(wick_dntk_PQb_two(c, G0, Pb, Qb));
    CHECK_OK(pathwise ? wick_dntk_PQ_two_pathwise(c, G0, P, Q) : wick_dntk_PQ_two(c, G0, P, Q));
#define X(a, b, c_, d) (8 * (a) + 4 * (b) + 2 * (c_) + (d))
    for (int l = 0; l < L; l++)
        for (int a0 = 0; a0 < 2; a0++)
            for (int a1 = 0; a1 < 2; a1++)
                for (int a2 = 0; a2 < 2; a2++)
                    for (int a3 = 0; a3 < 2; a3++) {
                        int o = 16 * l;
                        double p = Qb[o + X(a1, a0, a2, a3)] + Pb[o + X(a2, a0, a1, a3)];
                        double q = Qb[o + X(a1, a2, a0, a3)] + Qb[o + X(a2, a1, a0, a3)];
                        CHECK_NEAR(p, P[o + X(a0, a1, a2, a3)], 1e-10 * (1 + fabs(P[o + X(a0, a1, a2, a3)])));
                        CHECK_NEAR(q, Q[o + X(a0, a1, a2, a3)], 1e-10 * (1 + fabs(Q[o + X(a0, a1, a2, a3)])));
                    }
#undef X
}

static void test_book_form_dntk_against_wick_form(void) {
    wick_theory_config c = cfg("tanh", 4, 0, 1, 1, 1);
    book_form(&c, 0);
    c = cfg("gelu", 4, 0.1, 1.6, 0.5, 2.0);
    book_form(&c, 0);
    c = cfg("relu", 4, 0, 2, 1, 1);
    book_form(&c, 1);
}

int main(void) {
    const char *e = getenv("WICK_THEORY_FULL");
    full = e && *e == '1';
    RUN(test_single_input_limit);
    RUN(test_book_form_dntk_against_wick_form);
    return chk_finish();
}
