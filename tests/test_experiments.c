/* test_experiments.c — ensembles, the empirical NTK and kernel predictions
 * against exact or independently computed values (docs/theory.md §5-§9, §12).  Monte
 * Carlo checks use fixed seeds and state their tolerance in standard errors;
 * each also shows it can fail (docs/theory.md §12: the same measurement rejects the
 * prediction scaled by 1.2). */
#include "check.h"
#include "lib/testlib.h"
#include "experiments/experiments.h"

static wick_act act_of(wick_act_kind k) {
    wick_act a = {k, WICK_LEAKY_DEFAULT};
    return a;
}

/* The fast normal fill draws wick_rand_normal's numbers (to a few ulps:
 * vector log/sin/cos), at any offset and length. */
static void test_fill_normal_matches_rng(void) {
    double x[53];
    for (uint64_t off = 0; off < 3; off++)
        for (size_t n = 0; n <= 53; n += 13) {
            ex_fill_normal(x, n, 9, ((uint64_t)1 << 40) + 1234567, off);
            for (size_t i = 0; i < n; i++)
                CHECK_NEAR(x[i], wick_rand_normal(9, ((uint64_t)1 << 40) + 1234567, off + i), 1e-14);
        }
}

/* The public fillers take both halves of each Box-Muller pair once (issue
 * 18) and still give wick_rand_normal's numbers bit for bit, at odd and even
 * offsets and lengths, on the threaded path (n > 65536) too; the fast
 * filler is the same draws to a few ulps. */
static void test_public_fill_pairs_bit_identical(void) {
    size_t big = 70001;
    double *x = malloc(sizeof(double) * big), *y = malloc(sizeof(double) * big);
    float *f = malloc(sizeof(float) * big);
    if (!x || !y || !f) { free(x); free(y); free(f); CHECK(0); return; }
    int bad = 0;
    for (uint64_t off = 0; off < 4; off++)
        for (size_t n = 0; n <= 9; n++) {
            wick_fill_normal_f64(x, n, 0.5, 2.0, 77, 3, off);
            for (size_t i = 0; i < n; i++)
                bad += x[i] != 0.5 + 2.0 * wick_rand_normal(77, 3, off + i);
        }
    wick_fill_normal_f64(x, big, -1.0, 0.25, 5, 11, 12345);
    wick_fill_normal_f32(f, big, -1.0, 0.25, 5, 11, 12345);
    wick_fill_normal_fast(y, big, 5, 11, 12345);
    double worst = 0;
    for (size_t i = 0; i < big; i++) {
        double r = wick_rand_normal(5, 11, 12345 + i);
        bad += x[i] != -1.0 + 0.25 * r;
        bad += f[i] != (float)(-1.0 + 0.25 * r);
        worst = fmax(worst, fabs(y[i] - r));
    }
    CHECK(bad == 0);
    CHECK(worst < 1e-13);
    free(x); free(y); free(f);
}

/* docs/theory.md §5 and §12: deep linear, C_W = 1, n = 16, L = 4, M = 4e4.  The exact
 * connected four-point function 3K^2((1 + 2/16)^3 - 1) must lie within 4
 * standard errors; the 1/n formula 3K^2 * 0.375 (several s.e. away) and the
 * exact value scaled by 1.2 must not. */
static void test_deep_linear_four_point(void) {
    double G0 = 1.0;
    wick_ensemble_config c = {act_of(WICK_ACT_LINEAR), 0.0, 1.0, 4, 16, 40000, 2026, &G0, 1};
    wick_ensemble_result *r = NULL;
    CHECK_OK(wick_ensemble_run(&c, &r));
    if (!r) return;
    double ex[4], k4[4], th[4];
    CHECK_OK(wick_ensemble_theory(&c, th, k4, NULL, ex));
    double K = 1.0, exact = 3 * K * K * (1.423828125 - 1);
    CHECK_NEAR(ex[3], exact, 1e-12);
    CHECK_NEAR(k4[3], 3 * K * K * 0.375, 1e-9);      /* 3V/n with V = 2(l-1)K^2 */
    double m = r->connected4[3], se = r->connected4_stderr[3];
    fprintf(stderr, "    deep linear l=4: measured %.5f +- %.5f, exact %.5f, 1/n %.5f\n", m, se,
            exact, 3 * 0.375);
    CHECK(se > 0 && se < 0.05 * exact);
    CHECK_NEAR(m, exact, 4 * se);
    CHECK(fabs(m - 1.2 * exact) > 4 * se);           /* it can fail */
    /* every layer: kernel exactly K = 1 in expectation, within 4 s.e. */
    for (int l = 0; l < 4; l++) {
        CHECK_NEAR(r->kernel[l], 1.0, 4 * r->kernel_stderr[l]);
        CHECK_NEAR(r->connected4[l], ex[l], 4 * r->connected4_stderr[l] + 1e-12);
        /* two neurons: E[z_i^2 z_j^2] - K^2 = exact / 3 (docs/theory.md §5: given the
         * previous layer, z_i and z_j are independent with one variance) */
        CHECK_NEAR(r->pair4[l], ex[l] / 3, 4 * r->pair4_stderr[l] + 1e-12);
    }
    CHECK_NEAR(r->connected4[0], 0.0, 4 * r->connected4_stderr[0]);
    /* the normalised deviation E[z^4]/(3E[z^2]^2) - 1 = (1 + 2/n)^(l-1) - 1 */
    CHECK_NEAR(r->ratio4[3], 0.423828125, 4 * r->ratio4_stderr[3]);
    CHECK(fabs(r->ratio4[3] - 1.2 * 0.423828125) > 4 * r->ratio4_stderr[3]);
    wick_ensemble_free(r);
}

/* ReLU at criticality (C_b = 0, C_W = 2) with two inputs.  The diagonal of
 * the kernel is exact at any width (the ReLU recursion of E[z^2] is linear
 * when C_b = 0) and so is the one-neuron four-point function, 3K^2((1 +
 * 5/n)^(l-1) - 1) (docs/theory.md §5's argument with kappa = 3A4/A2^2 - 1 = 5): both
 * within 4 s.e., and 1.2 x the exact value rejected.  The off-diagonal
 * kernel agrees with the recursion up to O(1/n): 4 s.e. + 1%. */
static void test_relu_kernel_vs_recursion(void) {
    double G0[4] = {1.0, 0.6, 0.6, 1.5};
    wick_ensemble_config c = {act_of(WICK_ACT_RELU), 0.0, 2.0, 6, 64, 6000, 7, G0, 2};
    wick_ensemble_result *r = NULL;
    CHECK_OK(wick_ensemble_run(&c, &r));
    if (!r) return;
    double K[6 * 4], k4[6 * 2], ex[6 * 2];
    CHECK_OK(wick_ensemble_theory(&c, K, k4, NULL, ex));
    /* the recursion's own checks: the diagonal stays 2 G0 at criticality */
    CHECK_NEAR(K[5 * 4 + 0], 2.0, 1e-12);
    CHECK_NEAR(K[5 * 4 + 3], 3.0, 1e-12);
    int rejected = 0;
    for (int l = 0; l < 6; l++) {
        for (int q = 0; q < 4; q++) {
            double tol = 4 * r->kernel_stderr[l * 4 + q] + (q == 1 || q == 2 ? 0.01 * K[l * 4 + q] : 0);
            CHECK_NEAR(r->kernel[l * 4 + q], K[l * 4 + q], tol);
        }
        if (fabs(r->kernel[l * 4] - 1.2 * K[l * 4]) > 4 * r->kernel_stderr[l * 4]) rejected++;
        for (int a = 0; a < 2; a++)
            CHECK_NEAR(r->connected4[l * 2 + a], ex[l * 2 + a], 4 * r->connected4_stderr[l * 2 + a] + 1e-12);
    }
    CHECK(rejected == 6);
    double m = r->connected4[5 * 2], se = r->connected4_stderr[5 * 2];
    double exact = 3 * 4.0 * (pow(1 + 5.0 / 64, 5) - 1);
    fprintf(stderr, "    relu l=6 n=64: connected4 %.4f +- %.4f, exact %.4f, 1/n theory %.4f\n", m, se,
            exact, k4[5 * 2]);
    CHECK_REL(ex[5 * 2], exact, 1e-12);
    CHECK_REL(k4[5 * 2], 3 * 5 * 5 * 4.0 / 64, 1e-9);  /* 3V/n, V = 5(l-1)K^2 (docs/theory.md §6) */
    CHECK(fabs(m - 1.2 * exact) > 4 * se);              /* it can fail */
    wick_ensemble_free(r);
}

/* The exact scale-invariant oracle expands to the theory's 3V/n at large n:
 * two independent routes to the same number (docs/theory.md §5 and §6). */
static void test_exact_oracle_matches_vertex(void) {
    double G0 = 0.7;
    wick_act acts[3] = {act_of(WICK_ACT_RELU), act_of(WICK_ACT_LINEAR), {WICK_ACT_LEAKY_RELU, 0.3}};
    double cws[3] = {2.0, 1.0, 2.0 / 1.09};
    for (int k = 0; k < 3; k++) {
        wick_ensemble_config c = {acts[k], 0.0, cws[k], 7, 50000, 2, 1, &G0, 1};
        double ex[7] = {0}, k4[7] = {0};
        CHECK_OK(wick_ensemble_theory(&c, NULL, k4, NULL, ex));
        /* exact/(1/n) - 1 = (l-1) kappa / (2n) + ...: below 5e-4 here */
        for (int l = 1; l < 7; l++) CHECK_REL(ex[l], k4[l], 5e-4);
    }
}

/* Bit-identical results for 1 and 2 threads and any M split. */
static void test_ensemble_thread_independent(void) {
    double G0 = 0.8;
    wick_ensemble_config c = {act_of(WICK_ACT_TANH), 0.1, 1.5, 5, 24, 600, 11, &G0, 1};
    wick_ensemble_result *a = NULL, *b = NULL;
    int keep = wick_threads();
    wick_set_threads(1);
    CHECK_OK(wick_ensemble_run(&c, &a));
    wick_set_threads(2);
    CHECK_OK(wick_ensemble_run(&c, &b));
    wick_set_threads(keep);
    if (!a || !b) { wick_ensemble_free(a); wick_ensemble_free(b); return; }
    CHECK(a->threads == 1 && b->threads == 2);
    CHECK(memcmp(a->kernel, b->kernel, 5 * sizeof(double)) == 0);
    CHECK(memcmp(a->connected4, b->connected4, 5 * sizeof(double)) == 0);
    CHECK(memcmp(a->connected4_stderr, b->connected4_stderr, 5 * sizeof(double)) == 0);
    wick_ensemble_free(a);
    wick_ensemble_free(b);
}

static void test_ensemble_bad_config(void) {
    double G0 = 1.0, Gbad[4] = {1, 2, 2, 1};  /* not PSD */
    wick_ensemble_result *r = NULL;
    wick_ensemble_config c = {act_of(WICK_ACT_RELU), 0.0, 2.0, 3, 1, 10, 1, &G0, 1};
    CHECK_FAILS(wick_ensemble_run(&c, &r), WICK_EINVAL, "width 1");
    c.width = 8; c.samples = 1;
    CHECK_FAILS(wick_ensemble_run(&c, &r), WICK_EINVAL, "1 networks");
    c.samples = 10; c.cw = -1;
    CHECK_FAILS(wick_ensemble_run(&c, &r), WICK_EINVAL, "C_W = -1");
    c.cw = 2; c.G0 = Gbad; c.ninputs = 2;
    CHECK_FAILS(wick_ensemble_run(&c, &r), WICK_ENUMERIC, "not positive semi-definite");
    CHECK(r == NULL);
    /* allocation failure at each call: a clean error, nothing returned */
    c.G0 = &G0; c.ninputs = 1;
    for (long k = 1; k <= 14; k++) {
        wick_alloc_fail_at(k);
        wick_status s = wick_ensemble_run(&c, &r);
        wick_alloc_fail_at(0);
        if (s == WICK_OK) { wick_ensemble_free(r); r = NULL; break; }
        CHECK(s == WICK_ENOMEM && r == NULL);
    }
}

/* The empirical NTK of a one-hidden-layer ReLU network with weights set by
 * hand (n0 = 2, n1 = 2, one output), against the value worked out on paper
 * from docs/theory.md §7: dz/db2 = 1, dz/dW2_j = s_j, dz/db1_j = W2_j s'_j,
 * dz/dW1_jk = W2_j s'_j x_k, so
 * H_ab = lb (1 + sum_j W2_j^2 s'_ja s'_jb)
 *      + lw (1/n1 sum_j s_ja s_jb + 1/n0 sum_j W2_j^2 s'_ja s'_jb x_a.x_b).
 * W1 = [[1, 0], [0.5, -1]], b1 = [0, 0.5], W2 = [2, -1], b2 = 0.3,
 * x_a = (1, 2), x_b = (2, -1): z1_a = (1, -1), z1_b = (2, 2.5), x_a.x_b = 0.
 * lb = lw = 1: H_aa = 1 + 0.5 + 4 + 10 = 15.5, H_ab = 1 + 1 + 4 + 0 = 6,
 * H_bb = 1 + 5.125 + 5 + 12.5 = 23.625; lb = 0.5, lw = 2: H_aa = 2.5 + 21. */
static void test_ntk_one_hidden_layer_by_hand(void) {
    double lbs[2] = {1.0, 0.5}, lws[2] = {1.0, 2.0};
    double want[2][4] = {{15.5, 6, 6, 23.625}, {23.5, 0.5 * 5 + 2 * 1, 0.5 * 5 + 2 * 1, 0.5 * 6 + 2 * 17.625}};
    for (int v = 0; v < 2; v++) {
        wick_net64_config c = {act_of(WICK_ACT_RELU), 0.0, 2.0, lbs[v], lws[v], 2, 2, 2, 1};
        wick_net64 *m = NULL;
        CHECK_OK(wick_net64_new(&m, &c, 4));
        if (!m) return;
        double W1[4] = {1, 0, 0.5, -1}, b1[2] = {0, 0.5}, W2[2] = {2, -1}, b2 = 0.3;
        memcpy(wick_net64_weight(m, 1), W1, sizeof W1);
        memcpy(wick_net64_bias(m, 1), b1, sizeof b1);
        memcpy(wick_net64_weight(m, 2), W2, sizeof W2);
        *wick_net64_bias(m, 2) = b2;
        double x[4] = {1, 2, 2, -1}, H[4], Hd[4], z[2];
        CHECK_OK(wick_net64_forward(m, x, 2, z));
        CHECK_NEAR(z[0], 0.3 + 2 * 1, 1e-15);
        CHECK_NEAR(z[1], 0.3 + 2 * 2 - 2.5, 1e-15);
        CHECK_OK(wick_net64_ntk(m, x, 2, 0, H));
        CHECK_OK(wick_net64_ntk(m, x, 2, 1, Hd));
        for (int q = 0; q < 4; q++) {
            CHECK_NEAR(H[q], want[v][q], 1e-12);
            CHECK_NEAR(Hd[q], want[v][q], 1e-12);
        }
        wick_net64_free(m);
    }
}

/* The factorised NTK equals the definition (every parameter's gradient) for
 * a deeper tanh network with several outputs and biases. */
static void test_ntk_factorised_equals_direct(void) {
    wick_net64_config c = {act_of(WICK_ACT_TANH), 0.2, 1.3, 0.7, 1.9, 4, 5, 6, 3};
    wick_net64 *m = NULL;
    CHECK_OK(wick_net64_new(&m, &c, 8));
    if (!m) return;
    wick_net64_init(m, 5, 17);
    double x[3 * 5], H[81], Hd[81];
    for (int i = 0; i < 15; i++) x[i] = wick_rand_normal(1, 2, (uint64_t)i);
    CHECK_OK(wick_net64_ntk(m, x, 3, 0, H));
    CHECK_OK(wick_net64_ntk(m, x, 3, 1, Hd));
    for (int q = 0; q < 81; q++) CHECK_NEAR(H[q], Hd[q], 1e-12 * (1 + fabs(Hd[q])));
    CHECK(H[0] > 0 && H[1] != 0);   /* off-diagonal outputs do not vanish at finite width */
    wick_net64_free(m);
}

/* Gradient descent steps: the loss 1/2 sum (z - y)^2 decreases for a small
 * rate, and one step moves z by -eta H (z - y) to first order (docs/theory.md §9). */
static void test_gd_step_follows_ntk(void) {
    wick_net64_config c = {act_of(WICK_ACT_TANH), 0.0, 1.0, 1.0, 1.0, 3, 4, 16, 1};
    wick_net64 *m = NULL;
    CHECK_OK(wick_net64_new(&m, &c, 3));
    if (!m) return;
    wick_net64_init(m, 3, 0);
    double x[12], y[3] = {0.5, -0.5, 1.0}, H[9], z0[3], z1[3], loss0, loss1;
    for (int i = 0; i < 12; i++) x[i] = wick_rand_normal(4, 0, (uint64_t)i);
    CHECK_OK(wick_net64_ntk(m, x, 3, 0, H));
    CHECK_OK(wick_net64_forward(m, x, 3, z0));
    double eta = 1e-5;
    CHECK_OK(wick_net64_gd_step(m, x, y, 3, eta, &loss0));
    CHECK_OK(wick_net64_forward(m, x, 3, z1));
    CHECK_OK(wick_net64_gd_step(m, x, y, 3, eta, &loss1));
    CHECK(loss1 < loss0);
    double l0 = 0;
    for (int a = 0; a < 3; a++) l0 += 0.5 * (z0[a] - y[a]) * (z0[a] - y[a]);
    CHECK_NEAR(loss0, l0, 1e-12);
    for (int a = 0; a < 3; a++) {
        double dz = 0;
        for (int b = 0; b < 3; b++) dz -= eta * H[a * 3 + b] * (z0[b] - y[b]);
        CHECK_NEAR(z1[a] - z0[a], dz, 1e-3 * fabs(dz) + 1e-13);
    }
    CHECK_FAILS(wick_net64_gd_step(m, x, y, 4, eta, NULL), WICK_EINVAL, "4 inputs");
    wick_net64_free(m);
}

/* Deep linear, C_W = 1, lambda_b = 0, lambda_W = 1, |x|^2/n0 = 1: the NTK's
 * ensemble mean is Theta^(L) = L exactly at any width (docs/theory.md §12's NTK row;
 * each layer's term is a product of independent factors: the backward
 * vector through the layers above and the forward signal below).  Within 4
 * s.e., and 1.2 Theta rejected; the fluctuation is positive and O(1/n). */
static void test_ntk_ensemble_deep_linear(void) {
    double x[2 * 4] = {1, 1, 1, 1, 1, -1, 1, -1};   /* |x|^2/4 = 1, orthogonal */
    wick_ntk_ensemble_config c = {{act_of(WICK_ACT_LINEAR), 0.0, 1.0, 0.0, 1.0, 4, 4, 16, 1},
                                  3000, 99, x, 2};
    wick_ntk_ensemble_result *r = NULL;
    CHECK_OK(wick_ntk_ensemble(&c, &r));
    if (!r) return;
    CHECK_NEAR(r->theory[0], 4.0, 1e-12);
    CHECK_NEAR(r->theory[1], 0.0, 1e-12);
    fprintf(stderr, "    deep linear NTK: mean %.4f +- %.4f (theory 4), Var %.3f +- %.3f\n",
            r->mean[0], r->mean_stderr[0], r->var[0], r->var_stderr[0]);
    CHECK_NEAR(r->mean[0], 4.0, 4 * r->mean_stderr[0]);
    CHECK_NEAR(r->mean[3], 4.0, 4 * r->mean_stderr[3]);
    CHECK_NEAR(r->mean[1], 0.0, 4 * r->mean_stderr[1]);
    CHECK(fabs(r->mean[0] - 4.8) > 4 * r->mean_stderr[0]);
    CHECK(r->var[0] > 4 * r->var_stderr[0]);
    wick_ntk_ensemble_free(r);
}

/* Kernel regression on a tiny problem (5 training, 3 test inputs, 2 outputs,
 * test batches of 2) against a direct solve on the Gram flow of all 8
 * inputs: NNGP mean K_BA (K_AA + noise I)^-1 y_A (docs/theory.md §8) and NTK mean
 * Theta_BA Theta_AA^-1 y_A, which must also equal wick_gd_predict at
 * t -> infinity (docs/theory.md §9).  ReLU (closed forms, 1e-10) and tanh (the
 * tabulated flow on normalised inputs against direct quadrature, 1e-7). */
static void test_kernel_regression_tiny(void) {
    enum { NA = 5, NB = 3, N = 8, D = 4, O = 2 };
    double x[N * D], y[NA * O];
    for (int i = 0; i < N * D; i++) x[i] = wick_rand_normal(21, 0, (uint64_t)i);
    for (int i = 0; i < NA * O; i++) y[i] = wick_rand_normal(21, 1, (uint64_t)i);
    CHECK_OK(wick_kernel_normalise(x, N, D, NA));
    double nrm = 0;
    for (int j = 0; j < D; j++) nrm += x[6 * D + j] * x[6 * D + j];
    CHECK_NEAR(nrm / D, 1.0, 1e-12);
    wick_act acts[2] = {act_of(WICK_ACT_RELU), act_of(WICK_ACT_TANH)};
    double cws[2] = {2.0, 1.0}, tols[2] = {1e-10, 1e-7};
    for (int k = 0; k < 2; k++) {
        wick_kernel_hyper h = {acts[k], 0.1, cws[k], 1.0, 1.0, 3, 0.05};
        double gp[NB * O], nt[NB * O], logev;
        CHECK_OK(wick_kernel_predict(&h, x, y, NA, x + NA * D, NB, D, O, 2, gp, nt, &logev));
        /* the direct route */
        wick_theory_config tc = wick_theory_defaults(h.act, h.depth);
        tc.cb = h.cb; tc.cw = h.cw;
        double G0[N * N], K[3 * N * N], T[3 * N * N];
        CHECK_OK(wick_input_gram(x, N, D, G0));
        CHECK_OK(wick_gram_flow(&tc, G0, N, K, T));
        const double *KL = K + 2 * N * N, *TL = T + 2 * N * N;
        double A[NA * NA], At[NA * NA], al[NA * O], alt[NA * O];
        for (int i = 0; i < NA; i++)
            for (int j = 0; j < NA; j++) {
                A[i * NA + j] = KL[i * N + j] + (i == j ? h.noise : 0);
                At[i * NA + j] = TL[i * N + j];
            }
        chk_dense_solve(A, y, NA, O, al);
        chk_dense_solve(At, y, NA, O, alt);
        double logdet = 0, quad = 0, Ac[NA * NA];
        memcpy(Ac, A, sizeof A);
        for (int c = 0; c < NA; c++) {      /* log det by elimination (A is SPD) */
            logdet += log(Ac[c * NA + c]);
            for (int i = c + 1; i < NA; i++) {
                double f = Ac[i * NA + c] / Ac[c * NA + c];
                for (int j = c; j < NA; j++) Ac[i * NA + j] -= f * Ac[c * NA + j];
            }
        }
        for (int i = 0; i < NA * O; i++) quad += y[i] * al[i];
        double want_logev = -0.5 * quad - O * 0.5 * logdet - O * NA / 2.0 * log(2 * M_PI);
        CHECK_NEAR(logev, want_logev, 1e-9);
        for (int b = 0; b < NB; b++)
            for (int o = 0; o < O; o++) {
                double g = 0, t = 0;
                for (int a = 0; a < NA; a++) {
                    g += KL[(NA + b) * N + a] * al[a * O + o];
                    t += TL[(NA + b) * N + a] * alt[a * O + o];
                }
                CHECK_NEAR(gp[b * O + o], g, tols[k] * (1 + fabs(g)));
                CHECK_NEAR(nt[b * O + o], t, tols[k] * (1 + fabs(t)));
            }
        /* wick_gd_predict at t -> infinity gives the same ensemble mean */
        double mean[NB * O];
        CHECK_OK(wick_gd_predict(TL, KL, NA, NB, y, O, 1e-3, -1, NULL, NULL, mean, NULL));
        for (int i = 0; i < NB * O; i++) CHECK_NEAR(nt[i], mean[i], tols[k] * (1 + fabs(mean[i])));
    }
}

/* Trained networks approach the frozen-NTK prediction as the width grows
 * (docs/theory.md §9, §10): 20 full-batch GD steps on 8 inputs, 4 networks per width.
 * The per-network gap (against the prediction from the network's own z(0))
 * shrinks about like n^-1/2 and the NTK's motion like n^-1: from n = 16 to
 * 1024 the first must fall by more than 2x, the second by more than 8x
 * (expected 8x and 64x; observed with this seed in the test's output). */
static void test_gd_ensemble_approaches_ntk(void) {
    enum { NA = 8, NB = 4, D = 6 };
    double x[(NA + NB) * D], y[NA];
    for (int i = 0; i < (NA + NB) * D; i++) x[i] = wick_rand_normal(31, 0, (uint64_t)i);
    for (int i = 0; i < NA; i++) y[i] = i % 2 ? 1.0 : -1.0;
    CHECK_OK(wick_kernel_normalise(x, NA + NB, D, NA));
    double gap[2], dH[2];
    size_t widths[2] = {16, 1024};
    for (int w = 0; w < 2; w++) {
        wick_gd_ensemble_config c = {{act_of(WICK_ACT_RELU), 0.0, 2.0, 1.0, 1.0, 2, D, widths[w], 1},
                                     4, 5, 0, 20, x, y, NA, x + NA * D, NB, 4, 0};
        wick_gd_ensemble_result *r = NULL;
        CHECK_OK(wick_gd_ensemble(&c, &r));
        if (!r) return;
        gap[w] = r->gap_net;
        dH[w] = r->ntk_change;
        CHECK(r->train_loss_theory > 0 && r->eta > 0);
        wick_gd_ensemble_free(r);
    }
    fprintf(stderr, "    gd: gap_net %.4f -> %.4f, NTK motion %.5f -> %.5f (n = 16 -> 1024)\n", gap[0],
            gap[1], dH[0], dH[1]);
    CHECK(gap[1] < gap[0] / 2);
    CHECK(dH[1] < dH[0] / 8);
    /* a rate at which gradient descent diverges is refused */
    wick_gd_ensemble_config bad = {{act_of(WICK_ACT_RELU), 0.0, 2.0, 1.0, 1.0, 2, D, 8, 1},
                                   2, 5, 1e6, 2, x, y, NA, x + NA * D, NB, 4, 0};
    wick_gd_ensemble_result *r = NULL;
    CHECK_FAILS(wick_gd_ensemble(&bad, &r), WICK_EINVAL, "2/lambda_max");
}

int main(void) {
    RUN(test_fill_normal_matches_rng);
    RUN(test_public_fill_pairs_bit_identical);
    RUN(test_deep_linear_four_point);
    RUN(test_relu_kernel_vs_recursion);
    RUN(test_exact_oracle_matches_vertex);
    RUN(test_ensemble_thread_independent);
    RUN(test_ensemble_bad_config);
    RUN(test_ntk_one_hidden_layer_by_hand);
    RUN(test_ntk_factorised_equals_direct);
    RUN(test_gd_step_follows_ntk);
    RUN(test_ntk_ensemble_deep_linear);
    RUN(test_kernel_regression_tiny);
    RUN(test_gd_ensemble_approaches_ntk);
    return chk_finish();
}
