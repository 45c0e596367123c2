/* test_theory_multi.c — the order-1/n tensors of m = 2 or 3 inputs
 * (docs/theory-finite-width.md, "Three inputs"): every tensor restricted to
 * any two of three inputs against the two-input function on that pair's
 * sub-Gram (and m = 2 against the two-input function itself); a permutation
 * of the inputs permutes every tensor's indices; and the three-sample
 * Gaussian expectations against independent computations: ReLU's orthant
 * probability in closed form (through B at layer 2) and tanh's vertex at
 * layer 2 by a nested Simpson rule in the preactivations themselves.
 * WICK_THEORY_FULL=1 runs the long form. */
#include "check.h"
#include "lib/testlib.h"

enum { NT = 17, MAXL = 4 };
static int full;   /* WICK_THEORY_FULL=1: more activations and the smooth permutation */
static const char *tname[NT] = {"V", "K1", "B", "T1", "A", "D", "F", "P", "Q", "Pp", "Qp",
                                "Pb", "Qb", "R", "S", "T", "U"};
/* 2: two indices a m + b; 4: four indices in their layout's nested order */
static const int tord[NT] = {4, 2, 4, 2, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4};

static wick_theory_config cfg(const char *act, int L, double cb, double cw, double lb, double lw) {
    wick_theory_config c = wick_theory_defaults(chk_act(act), L);
    c.cb = cb; c.cw = cw; c.lambda_b = lb; c.lambda_w = lw;
    return c;
}

/* every tensor, [t][layer * m^ord + index] */
static int all_multi(const wick_theory_config *c, int m, const double *G, double *out[NT]) {
    int s = 0;
    s |= wick_vertex_multi(c, m, G, out[0]);
    s |= wick_kernel1_multi(c, m, G, out[1]);
    s |= wick_ntk_B_multi(c, m, G, out[2]);
    s |= wick_ntk_fluct_multi(c, m, G, out[3], out[4], out[5], out[6]);
    s |= wick_dntk_PQ_multi(c, m, G, out[7], out[8]);
    s |= wick_dntk_PQ_multi_pathwise(c, m, G, out[9], out[10]);
    s |= wick_dntk_PQb_multi(c, m, G, out[11], out[12]);
    s |= wick_theory_ddntk_multi(c, m, G, out[13], out[14], out[15], out[16]);
    return s;
}

static int all_two(const wick_theory_config *c, const double *G, double *out[NT]) {
    int s = 0;
    s |= wick_vertex2(c, G, out[0]);
    s |= wick_kernel1_two(c, G, out[1]);
    s |= wick_ntk_B_two(c, G, out[2]);
    s |= wick_ntk_fluct_two(c, G, out[3], out[4], out[5], out[6]);
    s |= wick_dntk_PQ_two(c, G, out[7], out[8]);
    s |= wick_dntk_PQ_two_pathwise(c, G, out[9], out[10]);
    s |= wick_dntk_PQb_two(c, G, out[11], out[12]);
    s |= wick_theory_ddntk_two(c, G, out[13], out[14], out[15], out[16]);
    return s;
}

typedef struct { double *p[NT]; } tset;
static tset tnew(void) {
    tset s;
    for (int t = 0; t < NT; t++) s.p[t] = calloc(81 * MAXL, sizeof(double));
    return s;
}
static void tfree(tset *s) {
    for (int t = 0; t < NT; t++) free(s->p[t]);
}

static int ipow(int b, int e) { int r = 1; while (e--) r *= b; return r; }

/* the index of digits x (base m, ord of them) */
static int nest(const int *x, int ord, int m) {
    int i = 0;
    for (int k = 0; k < ord; k++) i = i * m + x[k];
    return i;
}

static double scale_of(const double *v, int n) {
    double s = 0;
    for (int i = 0; i < n; i++) s = fmax(s, fabs(v[i]));
    return s;
}

/* the m-input tensors on sub-pairs {a, b} against the two-input ones */
static void restriction(const wick_theory_config *c, int m, const double *G, double tol) {
    tset M = tnew();
    CHECK_OK(all_multi(c, m, G, M.p));
    int L = c->depth;
    for (int a = 0; a < m; a++)
        for (int b = a + 1; b < m; b++) {
            int sel[2] = {a, b};
            double G2[4] = {G[a * m + a], G[a * m + b], G[b * m + a], G[b * m + b]};
            tset T = tnew();
            CHECK_OK(all_two(c, G2, T.p));
            for (int t = 0; t < NT; t++) {
                int o = tord[t], n2 = ipow(2, o), nm = ipow(m, o);
                double sc = 1 + scale_of(T.p[t], n2 * L);
                double worst = 0;
                for (int l = 0; l < L; l++)
                    for (int j = 0; j < n2; j++) {
                        int x[4];
                        for (int k = 0; k < o; k++) x[k] = sel[(j >> (o - 1 - k)) & 1];
                        double d = fabs(M.p[t][l * nm + nest(x, o, m)] - T.p[t][l * n2 + j]);
                        if (d > worst) worst = d;
                    }
                if (!(worst <= tol * sc))
                    FAIL("%s %s m=%d pair (%d %d): off the two-input tensor by %.3g (scale %.3g)",
                         wick_act_name(c->act), tname[t], m, a, b, worst, sc);
            }
            tfree(&T);
        }
    tfree(&M);
}

/* G'_{ij} = G_{pi(i) pi(j)} gives T'(x) = T(pi(x)) */
static void permutation(const wick_theory_config *c, const double *G, double tol) {
    static const int perms[2][3] = {{2, 0, 1}, {1, 0, 2}};
    tset M = tnew();
    CHECK_OK(all_multi(c, 3, G, M.p));
    int L = c->depth;
    for (int pk = 0; pk < 2; pk++) {
        const int *pi = perms[pk];
        double Gp[9];
        for (int i = 0; i < 3; i++)
            for (int j = 0; j < 3; j++) Gp[i * 3 + j] = G[pi[i] * 3 + pi[j]];
        tset P = tnew();
        CHECK_OK(all_multi(c, 3, Gp, P.p));
        for (int t = 0; t < NT; t++) {
            int o = tord[t], nm = ipow(3, o);
            double sc = 1 + scale_of(M.p[t], nm * L), worst = 0;
            for (int l = 0; l < L; l++)
                for (int j = 0; j < nm; j++) {
                    int x[4], y[4];
                    for (int k = 0, r = j; k < o; k++, r /= 3) x[o - 1 - k] = r % 3;
                    for (int k = 0; k < o; k++) y[k] = pi[x[k]];
                    double d = fabs(P.p[t][l * nm + j] - M.p[t][l * nm + nest(y, o, 3)]);
                    if (d > worst) worst = d;
                }
            if (!(worst <= tol * sc))
                FAIL("%s %s: permuted inputs off by %.3g (scale %.3g)", wick_act_name(c->act),
                     tname[t], worst, sc);
        }
        tfree(&P);
    }
    tfree(&M);
}

static const double G3[9] = {1.0, 0.5, -0.3, 0.5, 1.5, 0.4, -0.3, 0.4, 0.8};

/* CI: tanh at depth 2 (the layer-2 integrals; the carried terms are
 * covered by ReLU and by m = 2 at depth 3), the full form depth 3 */
static void test_restriction_to_two_inputs(void) {
    wick_theory_config c = cfg("tanh", full ? 3 : 2, 0, 1, 1, 1);
    restriction(&c, 3, G3, 1e-10);
    c = cfg("relu", 3, 0, 2, 1, 1);
    restriction(&c, 3, G3, 1e-10);
    if (!full) return;
    c = cfg("gelu", 3, 0.1, 1.6, 0.5, 2.0);
    restriction(&c, 3, G3, 1e-10);
    c = cfg("leaky_relu", 3, 0.1, 1.7, 0.5, 1.5);
    size_t w[4] = {3, 40, 20, 10};
    c.width_l = w;
    restriction(&c, 3, G3, 1e-10);
}

static void test_two_inputs_are_the_two_input_functions(void) {
    static const double G2[4] = {1.0, 0.5, 0.5, 1.5};
    const char *acts[3] = {"tanh", "relu", "sin"};
    for (int i = 0; i < (full ? 3 : 2); i++) {
        wick_theory_config c = cfg(acts[i], full ? 4 : 3, 0.1, 1.3, 1, 1);
        restriction(&c, 2, G2, 1e-10);
    }
}

/* ReLU's sphere rule is exact up to rounding; the smooth trapezoid rule
 * reaches about 1e-7 on tanh's moments with sigma''' (the full form) */
static void test_permutation_of_inputs(void) {
    wick_theory_config c = cfg("relu", 3, 0, 2, 1, 1);
    permutation(&c, G3, 1e-8);
    if (!full) return;
    c = cfg("tanh", 3, 0, 1, 1, 1);
    permutation(&c, G3, 1e-5);
}

/* B_{(0 1)(0 2)} at layer 2 = C_W^2 <s'_0 s'_0 s'_1 s'_2> Theta_00 Theta_12,
 * and for ReLU <s'_0 s'_1 s'_2> = P(z_0, z_1, z_2 > 0) =
 * 1/8 + (asin r01 + asin r02 + asin r12) / (4 pi) */
static void test_relu_orthant_probability(void) {
    wick_theory_config c = cfg("relu", 2, 0, 2, 1, 1);
    double B[2 * 81], K[2 * 9], Th[2 * 9];
    CHECK_OK(wick_ntk_B_multi(&c, 3, G3, B));
    CHECK_OK(wick_gram_flow(&c, G3, 3, K, Th));
#define RHO(a, b) (K[(a) * 3 + (b)] / sqrt(K[(a) * 3 + (a)] * K[(b) * 3 + (b)]))
    double p3 = 0.125 + (asin(RHO(0, 1)) + asin(RHO(0, 2)) + asin(RHO(1, 2))) / (4 * M_PI);
#undef RHO
    double want = 4 * p3 * Th[0] * Th[1 * 3 + 2];
    CHECK_REL(B[81 + (0 * 3 + 1) * 9 + 0 * 3 + 2], want, 1e-12);
}

/* V_{(0 0)(1 2)} at layer 2 = C_W^2 (<s_0 s_0 s_1 s_2> - <s_0^2><s_1 s_2>) */
static double simpson_w(int i, int n) { return i == 0 || i == n ? 1 : (i % 2 ? 4 : 2); }
static void test_tanh_vertex_three_inputs(void) {
    wick_theory_config c = cfg("tanh", 2, 0, 1, 1, 1);
    double V[2 * 81], K[2 * 9];
    CHECK_OK(wick_vertex_multi(&c, 3, G3, V));
    CHECK_OK(wick_gram_flow(&c, G3, 3, K, NULL));
    /* z0 ~ N(0, K00); z1 | z0, z2 | z0, z1 by the conditional normals,
     * Simpson in each standardised variable over +-8 */
    const double *k = K;
    double k00 = k[0], k01 = k[1], k02 = k[2], k11 = k[4], k12 = k[5], k22 = k[8];
    double m1 = k01 / k00, v1 = k11 - k01 * k01 / k00;
    /* (z2 | z0, z1): regression on (z0, z1) */
    double det = k00 * k11 - k01 * k01;
    double b0 = (k02 * k11 - k12 * k01) / det, b1 = (k12 * k00 - k02 * k01) / det;
    double v2 = k22 - (b0 * k02 + b1 * k12);
    int n = 120;
    double U = 8, h = 2 * U / n, s0112 = 0, s12 = 0, s00 = 0;
    for (int i = 0; i <= n; i++) {
        double u = -U + h * i, wu = simpson_w(i, n) * h / 3 * exp(-0.5 * u * u) / sqrt(2 * M_PI);
        double z0 = sqrt(k00) * u, t0 = tanh(z0);
        s00 += wu * t0 * t0;
        for (int j = 0; j <= n; j++) {
            double v = -U + h * j, wv = simpson_w(j, n) * h / 3 * exp(-0.5 * v * v) / sqrt(2 * M_PI);
            double z1 = m1 * z0 + sqrt(v1) * v, t1 = tanh(z1), in = 0;
            for (int q = 0; q <= n; q++) {
                double x = -U + h * q, wx = simpson_w(q, n) * h / 3 * exp(-0.5 * x * x) / sqrt(2 * M_PI);
                in += wx * tanh(b0 * z0 + b1 * z1 + sqrt(v2) * x);
            }
            s0112 += wu * wv * t0 * t0 * t1 * in;
            s12 += wu * wv * t1 * in;
        }
    }
    double want = s0112 - s00 * s12;
    CHECK_REL(V[81 + (0 * 3 + 0) * 9 + 1 * 3 + 2], want, 1e-8);
}

static void test_bad_input(void) {
    wick_theory_config c = cfg("tanh", 3, 0, 1, 1, 1);
    double out[3 * 81];
    CHECK(wick_ntk_B_multi(&c, 4, G3, out) == WICK_EINVAL);
    CHECK(wick_ntk_B_multi(&c, 1, G3, out) == WICK_EINVAL);
    double bad[9] = {1, 0.5, 0, 0.4, 1, 0, 0, 0, 1};  /* not symmetric */
    CHECK(wick_vertex_multi(&c, 3, bad, out) == WICK_EINVAL);
    c = cfg("perceptron", 3, 0, 1, 1, 1);
    CHECK(wick_theory_ddntk_multi(&c, 3, G3, out, out, out, out) == WICK_EINVAL);
}

int main(void) {
    const char *f = getenv("WICK_THEORY_FULL");
    full = f && atoi(f) > 0;
    RUN(test_restriction_to_two_inputs);
    RUN(test_two_inputs_are_the_two_input_functions);
    RUN(test_permutation_of_inputs);
    RUN(test_relu_orthant_probability);
    RUN(test_tanh_vertex_three_inputs);
    RUN(test_bad_input);
    return chk_finish();
}
