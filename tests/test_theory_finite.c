/* test_theory_finite.c — the order-1/n theory of one input (the book's ch. 4
 * and 8; docs/theory-finite-width.md): the subleading kernel K1, the NTK's
 * mean shift, variance (A, B) and correlation with the preactivations (D, F)
 * against hand-derived values of the deep linear net, and against ensembles
 * of real networks fitted as c0 + c1/n over widths: the fitted order-1/n
 * coefficient must agree within 4 standard errors, and the same fit must
 * reject the prediction times 1.2.
 *
 * The CI form uses small ensembles and checks the rejection where it has the
 * power for it (standard error below 3% of the prediction, and K1 always);
 * WICK_THEORY_FULL=1 runs the note's form (widths 16..256, ten times the
 * networks) and checks every rejection of the tensor runs and the means'
 * (but tanh's small Theta1 at criticality, 1% of Theta). */
#include "check.h"
#include "fit.h"
#include "lib/testlib.h"

static int full;

/* Deep linear, C_W = 1, C_b = 0, lambda_b = lambda_W = 1, q = 1, layer 2 by
 * hand: H^(2) = (1 + G) I + 2 W W^T with G = (1/n) sum z^2, so Var(H_ij) =
 * 4/n (B = 4), Cov(H_ii, H_jj) = Var G = 2/n (A = 2), E[dH_ii z_j^2] = 2/n
 * (D = 2), E[H_ij z_i z_j] = 2/n (F = 2); K1 = ntk1 = 0 (scale-invariant). */
static void test_deep_linear_by_hand(void) {
    wick_theory_config c = wick_theory_defaults(chk_act("linear"), 3);
    wick_layer_finite o[3];
    CHECK_OK(wick_theory_finite(&c, 1.0, o));
    CHECK_NEAR(o[0].A, 0, 0); CHECK_NEAR(o[0].B, 0, 0); CHECK_NEAR(o[0].F, 0, 0);
    CHECK_NEAR(o[1].A, 2, 1e-14); CHECK_NEAR(o[1].B, 4, 1e-14);
    CHECK_NEAR(o[1].D, 2, 1e-14); CHECK_NEAR(o[1].F, 2, 1e-14);
    CHECK_NEAR(o[1].V, 2, 1e-14);
    for (int l = 0; l < 3; l++) { CHECK_NEAR(o[l].K1, 0, 1e-14); CHECK_NEAR(o[l].ntk1, 0, 1e-14); }
    /* the perceptron has no derivative: refused */
    c.act = chk_act("perceptron");
    CHECK_FAILS(wick_theory_finite(&c, 1.0, o), WICK_EINVAL, "perceptron");
}

/* Unequal widths, deep linear as above, n_1 = 10, n_2 = 30: given layer 2,
 * Var(H^(3)_ij) = (1/n_2^2) E[tr H^(2)2] = (16 n_2 + 4 n_2^2/n_1)/n_2^2, so
 * B^(3) (the coefficient of 1/n_2) = 16 + 4 n_2/n_1 = 28; and V^(3) = 2 + 2
 * n_2/n_1 = 8 (the vertex carries r = n_2/n_1 the same way). */
static void test_unequal_widths_by_hand(void) {
    wick_theory_config c = wick_theory_defaults(chk_act("linear"), 3);
    size_t w[4] = {1, 10, 30, 30};
    c.width_l = w;
    wick_layer_finite o[3];
    CHECK_OK(wick_theory_finite(&c, 1.0, o));
    CHECK_NEAR(o[2].B, 28, 1e-12);
    CHECK_NEAR(o[2].V, 8, 1e-12);
    CHECK_NEAR(o[1].B, 4, 1e-12);   /* layer 2 does not see n_0 */
}

/* sin's closed forms against the generic quadrature path: the same
 * recursions with sin's moments from quadrature (through a tiny shift of
 * nothing: compare with tanh? no — with the moments' own definitions) are
 * covered by test_theory_gauss; here K1 of a 3-layer sin net against its
 * definition K1^(3) = C_W (1/2) g''(K^(2)) V^(2), g'' = -2 e^{-2K}. */
static void test_sin_kernel_shift_closed_form(void) {
    wick_theory_config c = wick_theory_defaults(chk_act("sin"), 3);
    wick_layer_finite o[3];
    CHECK_OK(wick_theory_finite(&c, 1.0, o));
    double K2 = o[1].K, V2 = o[1].V;
    CHECK_REL(o[2].K1, 0.5 * (-2 * exp(-2 * K2)) * V2, 1e-13);
    CHECK_REL(K2, 0.5 * (1 - exp(-2.0)), 1e-14);
}

/* The measurement's NTK recursion against the graph's autodiff NTK of the
 * same networks (wick_net64 with n0 = 1, nout = n): the mean over two
 * networks of (1/n) tr H and (1/n) |z|^2 at the last layer, and the
 * off-diagonal sum of squares through B. */
static void test_fluct_matches_autodiff(void) {
    size_t n = 6, M = 2;
    int L = 3;
    double q = 0.7;
    wick_ntk_fluct_config fc = {chk_act("tanh"), 0.2, 1.3, 0.5, 1.5, q, L, n, M, 99};
    wick_ntk_fluct_result *r = NULL;
    CHECK_OK(wick_ntk_fluct_run(&fc, &r));
    if (!r) return;
    wick_net64_config nc = {chk_act("tanh"), 0.2, 1.3, 0.5, 1.5, L, 1, n, n};
    wick_net64 *m = NULL;
    CHECK_OK(wick_net64_new(&m, &nc, 1));
    if (!m) { wick_ntk_fluct_free(r); return; }
    double x = sqrt(q), z[6], H[36], tr = 0, s = 0, off = 0;
    for (size_t k = 0; k < M; k++) {
        wick_net64_init(m, 99, k);
        CHECK_OK(wick_net64_forward(m, &x, 1, z));
        CHECK_OK(wick_net64_ntk(m, &x, 1, 1, H));
        for (size_t i = 0; i < n; i++) {
            tr += H[i * n + i]; s += z[i] * z[i];
            for (size_t j = 0; j < n; j++) if (i != j) off += H[i * n + j] * H[i * n + j];
        }
    }
    const double *v = r->val + (size_t)(L - 1) * WICK_FL_COUNT * 2;
    CHECK_REL(v[2 * WICK_FL_NTK], tr / (double)(n * M), 1e-12);
    CHECK_REL(v[2 * WICK_FL_K], s / (double)(n * M), 1e-12);
    CHECK_REL(v[2 * WICK_FL_B], off / (double)((n - 1) * M), 1e-12);
    wick_net64_free(m);
    wick_ntk_fluct_free(r);
}

/* Fits y = c0 + c1 x over the widths (x = 1/n, tests/fit.h) and checks c0
 * against pred: within 4 standard errors, and pred * 1.2 outside them where
 * asked or where the fit resolves pred to 3%. */
static void fit_check(const char *what, int layer, double pred, const double *x, const double *y,
                      const double *e, size_t nw, int need_reject) {
    fit_width f = FIT_WIDTH(x, y, e, nw, pred, NAN);
    FIT_REPORT(&f, need_reject || (pred != 0 && f.c0e < 0.03 * fabs(pred)), "%-24s layer %d", what,
               layer);
}

/* A, B, D, F and V measured over widths (n times the covariance -> tensor +
 * O(1/n)), and the NTK's mean shift n (E[H_ii] - Theta) -> ntk1 + O(1/n). */
static void run_fluct_fit(const char *act, double cb, double cw, int L, const size_t *ws,
                          const size_t *Ms, size_t nw, int want_means) {
    wick_theory_config c = wick_theory_defaults(chk_act(act), L);
    c.cb = cb; c.cw = cw;
    wick_layer_finite o[16];
    CHECK_OK(wick_theory_finite(&c, 1.0, o));
    double x[8], y[WICK_FL_COUNT][16][8], e[WICK_FL_COUNT][16][8];
    for (size_t w = 0; w < nw; w++) {
        wick_ntk_fluct_config fc = {chk_act(act), cb, cw, 1.0, 1.0, 1.0, L, ws[w], Ms[w], 2026};
        wick_ntk_fluct_result *r = NULL;
        CHECK_OK(wick_ntk_fluct_run(&fc, &r));
        if (!r) return;
        x[w] = 1.0 / (double)ws[w];
        for (int l = 1; l < L; l++)
            for (int k = 0; k < WICK_FL_COUNT; k++) {
                const double *v = r->val + ((size_t)l * WICK_FL_COUNT + k) * 2;
                double nd = (double)ws[w];
                if (k == WICK_FL_NTK || k == WICK_FL_NTKCV) {
                    y[k][l][w] = nd * (v[0] - o[l].ntk); e[k][l][w] = nd * v[1];
                } else if (k == WICK_FL_K || k == WICK_FL_KCV) {
                    y[k][l][w] = nd * (v[0] - o[l].K); e[k][l][w] = nd * v[1];
                } else {
                    y[k][l][w] = v[0]; e[k][l][w] = v[1];
                }
            }
        fprintf(stderr, "  %s width %zu: %zu networks in %.1f s\n", act, ws[w], Ms[w], r->seconds);
        wick_ntk_fluct_free(r);
    }
    char nm[64];
    for (int l = 1; l < L; l++) {
        const wick_layer_finite *t = &o[l];
        double pred[WICK_FL_COUNT] = {0, 0, t->V, t->A, t->B, t->D, t->F};
        static const char *names[WICK_FL_COUNT] = {"", "", "V", "A", "B", "D", "F"};
        for (int k = WICK_FL_V; k < WICK_FL_KCV; k++) {
            snprintf(nm, sizeof nm, "%s %s", act, names[k]);
            /* the full form of the tensor runs requires every rejection */
            fit_check(nm, l + 1, pred[k], x, y[k][l], e[k][l], nw, full && !want_means);
        }
        /* the means' 1/n shifts through the control-variate estimates (at
         * layer 2 both are exactly 0, and so are the estimates) */
        if (want_means && l >= 2) {
            snprintf(nm, sizeof nm, "%s K1", act);
            fit_check(nm, l + 1, t->K1, x, y[WICK_FL_KCV][l], e[WICK_FL_KCV][l], nw, 1);
            snprintf(nm, sizeof nm, "%s Theta1", act);
            fit_check(nm, l + 1, t->ntk1, x, y[WICK_FL_NTKCV][l], e[WICK_FL_NTKCV][l], nw,
                      want_means > 1);
        }
    }
}

static void test_ntk_tensors_tanh_critical(void) {
    static const size_t ws[] = {16, 32, 64}, Ms[] = {4000, 2500, 1500};
    static const size_t wf[] = {16, 32, 64, 128, 256}, Mf[] = {60000, 40000, 30000, 12000, 4000};
    if (full) run_fluct_fit("tanh", 0.0, 1.0, 4, wf, Mf, 5, 0);
    else run_fluct_fit("tanh", 0.0, 1.0, 3, ws, Ms, 3, 0);
}

static void test_ntk_tensors_relu_critical(void) {
    static const size_t ws[] = {16, 32, 64}, Ms[] = {4000, 2500, 1500};
    static const size_t wf[] = {16, 32, 64, 128, 256}, Mf[] = {60000, 40000, 30000, 12000, 4000};
    if (full) run_fluct_fit("relu", 0.0, 2.0, 4, wf, Mf, 5, 0);
    else run_fluct_fit("relu", 0.0, 2.0, 3, ws, Ms, 3, 0);
}

/* The means' 1/n shifts, K1 (ch. 4) and Theta1 (ch. 8), through the
 * control-variate estimates: sin and tanh at criticality, and tanh at
 * C_W = 3, where Theta1 is 17% of Theta at n = 1. */
static void test_mean_shifts_measured(void) {
    static const size_t ws[] = {8, 16, 32}, Ms[] = {6000, 4000, 3000};
    static const size_t wf[] = {8, 16, 32, 64}, Mf[] = {60000, 40000, 30000, 20000};
    const size_t *w = full ? wf : ws, *M = full ? Mf : Ms;
    size_t nw = full ? 4 : 3;
    /* the CI form checks Theta1's agreement; its rejection of 1.2 x needs
     * the full form's networks (sin: 6% standard error here, 2% there) */
    run_fluct_fit("sin", 0.0, 1.0, 4, w, M, nw, full ? 2 : 1);
    if (full) {
        run_fluct_fit("tanh", 0.0, 1.0, 4, w, M, nw, 1);
        run_fluct_fit("tanh", 0.0, 3.0, 4, w, M, nw, 2);
    }
}

/* Two inputs (K = [[1, .5], [.5, 1.5]] at layer 1): the subleading kernel's
 * three entries (ch. 4) against wick_kernel1_measure over widths.  ReLU's
 * diagonal has no shift (scale-invariant) but its off-diagonal entry has;
 * sin shifts all three.  The diagonal entries equal the single-input K1. */
static void test_kernel_shift_two_inputs(void) {
    static const char *acts[] = {"relu", "sin"};
    static const double cws[] = {2.0, 1.0};
    size_t ws[4] = {16, 32, 64, 128}, nw = full ? 4 : 3;
    double G0[4] = {1.0, 0.5, 0.5, 1.5};
    int L = 4;
    for (int a = 0; a < 2; a++) {
        wick_act act = chk_act(acts[a]);
        size_t M = full ? 100000 : (a == 0 ? 12000 : 6000);
        wick_theory_config c = wick_theory_defaults(act, L);
        c.cw = cws[a];
        double K1[16], K[16];
        wick_layer_finite o[4];
        CHECK_OK(wick_kernel1_two(&c, G0, K1));
        CHECK_OK(wick_gram_flow(&c, G0, 2, K, NULL));
        CHECK_OK(wick_theory_finite(&c, G0[3], o));
        CHECK_NEAR(K1[4 * (L - 1) + 3], o[L - 1].K1, 1e-12 + 1e-12 * fabs(o[L - 1].K1));
        double x[4], y[3][4][4], e[3][4][4];
        for (size_t w = 0; w < nw; w++) {
            wick_ensemble_config ec = {act, 0.0, cws[a], L, ws[w], M, 17, G0, 2};
            double m[16], se[16];
            CHECK_OK(wick_kernel1_measure(&ec, m, se));
            x[w] = 1.0 / (double)ws[w];
            for (int l = 2; l < L; l++)
                for (int q = 0; q < 3; q++) {
                    int idx = q == 0 ? 0 : q == 1 ? 1 : 3;
                    y[q][l][w] = (double)ws[w] * (m[4 * l + idx] - K[4 * l + idx]);
                    e[q][l][w] = (double)ws[w] * se[4 * l + idx];
                }
        }
        static const char *ent[3] = {"K1_11", "K1_12", "K1_22"};
        for (int l = 2; l < L; l++)
            for (int q = 0; q < 3; q++) {
                int idx = q == 0 ? 0 : q == 1 ? 1 : 3;
                double pred = K1[4 * l + idx];
                char nm[48];
                snprintf(nm, sizeof nm, "%s two-input %s", acts[a], ent[q]);
                if (pred == 0 && e[q][l][0] < 1e-9) {
                    /* exactly 0 predicted and measured (to rounding) */
                    for (size_t w = 0; w < nw; w++) CHECK(fabs(y[q][l][w]) < 1e-6);
                    continue;
                }
                fit_check(nm, l + 1, pred, x, y[q][l], e[q][l], nw, 0);
            }
    }
}

/* The components of a 16-entry two-input tensor that its symmetries leave
 * distinct: q = (x << 3) | (y << 2) | (u << 1) | v for the index pair
 * (2x + y, 2u + v); kind 'A' swaps x-y, u-v and the pairs, 'D' swaps x-y
 * and u-v, 'F' the pairs, 'B' the pairs and (x u)-(y v). */
static int distinct(char kind, int q) {
    int x = q >> 3, y = (q >> 2) & 1, u = (q >> 1) & 1, v = q & 1;
#define IX(a, b, c, d) (((a) << 3) | ((b) << 2) | ((c) << 1) | (d))
    int orbit[4] = {q, q, q, q};
    switch (kind) {
    case 'A': orbit[0] = IX(y, x, u, v); orbit[1] = IX(x, y, v, u); orbit[2] = IX(u, v, x, y); break;
    case 'D': orbit[0] = IX(y, x, u, v); orbit[1] = IX(x, y, v, u); orbit[2] = IX(y, x, v, u); break;
    case 'F': orbit[0] = IX(u, v, x, y); break;
    case 'B': orbit[0] = IX(y, x, v, u); orbit[1] = IX(u, v, x, y); break;
    }
#undef IX
    for (int t = 0; t < 4; t++)
        if (orbit[t] < q) return 0;
    return 1;
}

/* Two inputs (G0 = [[1, .5], [.5, 1.5]]): the NTK's variance A and B, its
 * correlation with the preactivations D and F (ch. 8), every distinct
 * component per layer, against wick_ntk_fluct_two_measure fitted over
 * widths.  Their diagonal components are the single-input tensors of each
 * input, and so is the diagonal of the mean shift. */
static void test_ntk_tensors_two_inputs(void) {
    static const char *acts[] = {"relu", "tanh"};
    static const double cws[] = {2.0, 1.0};
    static const size_t ws[] = {16, 32, 64}, Ms[] = {1500, 1000, 500};
    static const size_t wf[] = {16, 32, 64, 128}, Mf[] = {30000, 20000, 10000, 4000};
    const size_t *w = full ? wf : ws, *Mw = full ? Mf : Ms;
    size_t nw = full ? 4 : 3;
    double G0[4] = {1.0, 0.5, 0.5, 1.5};
    enum { L = 3 };
    static const char kinds[4] = {'A', 'B', 'D', 'F'};
    static const int off[4] = {WICK_FL2_A, WICK_FL2_B, WICK_FL2_D, WICK_FL2_F};
    for (int a = 0; a < 2; a++) {
        wick_act act = chk_act(acts[a]);
        wick_theory_config c = wick_theory_defaults(act, L);
        c.cw = cws[a];
        double T[4][16 * L], T1[4 * L], v[WICK_FL2_COUNT * L], se[WICK_FL2_COUNT * L];
        double x[4], y[WICK_FL2_COUNT * L][4], e[WICK_FL2_COUNT * L][4];
        wick_layer_finite o[2][L];
        CHECK_OK(wick_ntk_B_two(&c, G0, T[1]));
        CHECK_OK(wick_ntk_fluct_two(&c, G0, T1, T[0], T[2], T[3]));
        double Kf[4 * L], Th[4 * L];
        CHECK_OK(wick_gram_flow(&c, G0, 2, Kf, Th));
        CHECK_OK(wick_theory_finite(&c, G0[0], o[0]));
        CHECK_OK(wick_theory_finite(&c, G0[3], o[1]));
        for (int l = 0; l < L; l++)
            for (int i = 0; i < 2; i++) {
                const wick_layer_finite *s = &o[i][l];
                int dq = 15 * i;   /* the (ii)(ii) component */
                CHECK_NEAR(T[0][16 * l + dq], s->A, 1e-9 * (1 + fabs(s->A)));
                CHECK_NEAR(T[1][16 * l + dq], s->B, 1e-9 * (1 + fabs(s->B)));
                CHECK_NEAR(T[2][16 * l + dq], s->D, 1e-9 * (1 + fabs(s->D)));
                CHECK_NEAR(T[3][16 * l + dq], s->F, 1e-9 * (1 + fabs(s->F)));
                CHECK_NEAR(T1[4 * l + 3 * i], s->ntk1, 1e-9 * (1 + fabs(s->ntk1)));
            }
        for (size_t k = 0; k < nw; k++) {
            wick_ntk_fluct_config fc = {act, 0.0, cws[a], 1.0, 1.0, 1.0, L, w[k], Mw[k], 31};
            CHECK_OK(wick_ntk_fluct_two_measure(&fc, G0, v, se));
            if (k == 0) {   /* the B-only entry point reads the same networks */
                double Bm[16 * L], Be[16 * L];
                CHECK_OK(wick_ntk_B_two_measure(&fc, G0, Bm, Be));
                CHECK_NEAR(Bm[16 * (L - 1) + 5], v[WICK_FL2_COUNT * (L - 1) + WICK_FL2_B + 5], 0);
            }
            x[k] = 1.0 / (double)w[k];
            for (int q = 0; q < WICK_FL2_COUNT * L; q++) { y[q][k] = v[q]; e[q][k] = se[q]; }
            /* the mean shift: n (E[H] - Theta) with control variates */
            for (int l = 0; l < L; l++)
                for (int pp = 0; pp < 4; pp++) {
                    int iq = WICK_FL2_COUNT * l + WICK_FL2_NTKCV + pp;
                    y[iq][k] = (double)w[k] * (v[iq] - Th[4 * l + pp]);
                    e[iq][k] = (double)w[k] * se[iq];
                }
        }
        /* from layer 3: at layer 2 the shift is exactly 0 and the controls
         * take the whole spread, leaving rounding (1e-9) as the "error" */
        for (int l = 2; l < L; l++)
            for (int pp = 0; pp < 4; pp += 1 + (pp == 1)) {
                char nm[48];
                snprintf(nm, sizeof nm, "%s two-input Theta1_%d%d", acts[a], (pp >> 1) + 1, (pp & 1) + 1);
                int iq = WICK_FL2_COUNT * l + WICK_FL2_NTKCV + pp;
                fit_check(nm, l + 1, T1[4 * l + pp], x, y[iq], e[iq], nw, 0);
            }
        for (int l = 1; l < L; l++)
            for (int t = 0; t < 4; t++)
                for (int q = 0; q < 16; q++) {
                    if (!distinct(kinds[t], q)) continue;
                    char nm[48];
                    snprintf(nm, sizeof nm, "%s two-input %c_%d%d%d%d", acts[a], kinds[t],
                             (q >> 3) + 1, ((q >> 2) & 1) + 1, ((q >> 1) & 1) + 1, (q & 1) + 1);
                    int iq = WICK_FL2_COUNT * l + off[t] + q;
                    /* the 1.2x rejection wherever the fit resolves the
                     * component to 3% (tanh's small A, D components need far
                     * more networks: docs/theory-finite-width.md) */
                    fit_check(nm, l + 1, T[t][16 * l + q], x, y[iq], e[iq], nw, 0);
                }
    }
}

int main(void) {
    const char *f = getenv("WICK_THEORY_FULL");
    full = f && *f && strcmp(f, "0") != 0;
    /* WICK_THEORY_ONLY=two runs only the tests whose names contain "two"
     * (the full form of one table takes minutes, the whole one much longer) */
    const char *only = getenv("WICK_THEORY_ONLY");
#define RUNF(fn) do { if (!only || strstr(#fn, only)) RUN(fn); } while (0)
    RUNF(test_deep_linear_by_hand);
    RUNF(test_unequal_widths_by_hand);
    RUNF(test_sin_kernel_shift_closed_form);
    RUNF(test_fluct_matches_autodiff);
    RUNF(test_ntk_tensors_tanh_critical);
    RUNF(test_ntk_tensors_relu_critical);
    RUNF(test_mean_shifts_measured);
    RUNF(test_kernel_shift_two_inputs);
    RUNF(test_ntk_tensors_two_inputs);
    return chk_finish();
}
