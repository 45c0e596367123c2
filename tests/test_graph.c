/* test_graph.c — every op's gradient against centred finite differences in
 * float64 (relative error below 1e-6), gradient accumulation, batch changes,
 * and the float32 fast path (backend plans) against the float64 path. */
#include "check.h"
#include "core/core.h"

#define B 5   /* rows of batched nodes */

typedef wick_node (*builder)(wick_graph *g, const void *arg);

static int lab_of(int r, int cols) { return (r * 7 + 3) % cols; }

/* Gradient check of the scalar sum(w * out) w.r.t. every parameter; returns
 * the worst relative error |analytic - numeric| / (|analytic| + |numeric|). */
static double grad_check(builder build, const void *arg, uint64_t seed) {
    wick_graph *g;
    CHECK_OK(wick_graph_new(&g, WICK_DT_F64, B));
    wick_node out = build(g, arg);
    CHECK_OK(wick_graph_compile(g));
    if (out < 0) { wick_graph_free(g); return 1e9; }
    int n = wick_graph_params(g, NULL, 0);
    wick_node params[16];
    wick_graph_params(g, params, 16);
    /* inputs and params: N(0,1) draws; labels fixed */
    int nn = 0;
    while (wick_graph_value(g, nn)) nn++;
    for (int i = 0; i < nn; i++) {
        const char *nm = wick_graph_name(g, i);
        size_t m = (size_t)wick_graph_rows(g, i) * wick_graph_cols(g, i);
        if (strncmp(nm, "lab", 3) == 0) {
            for (int r = 0; r < wick_graph_rows(g, i); r++) ((int32_t *)wick_graph_value(g, i))[r] = lab_of(r, 4);
        } else if (nm[0]) {
            wick_fill_normal_f64(wick_graph_value(g, i), m, 0, 1, seed, 100 + i, 0);
        }
    }
    size_t no = (size_t)wick_graph_rows(g, out) * wick_graph_cols(g, out);
    double *w = malloc(no * sizeof *w);
    wick_fill_normal_f64(w, no, 0, 1, seed, 99, 0);
    wick_graph_forward(g);
    wick_graph_backward_seed(g, out, w, NULL, NULL);
    double worst = 0;
    for (int p = 0; p < n; p++) {
        double *v = wick_graph_value(g, params[p]);
        size_t m = (size_t)wick_graph_rows(g, params[p]) * wick_graph_cols(g, params[p]);
        double *an = malloc(m * sizeof *an);
        memcpy(an, wick_graph_grad(g, params[p]), m * sizeof *an);
        for (size_t i = 0; i < m; i++) {
            /* five-point stencil: truncation O(h^4), so h can be large
               enough that rounding stays near 1e-12 */
            double keep = v[i], h = 1e-4 * (1 + fabs(keep)), f[4];
            const double steps[4] = {h, -h, 2 * h, -2 * h};
            for (int s = 0; s < 4; s++) {
                v[i] = keep + steps[s];
                wick_graph_forward(g);
                const double *o = wick_graph_value(g, out);
                f[s] = 0;
                for (size_t j = 0; j < no; j++) f[s] += w[j] * o[j];
            }
            v[i] = keep;
            double num = (8 * (f[0] - f[1]) - (f[2] - f[3])) / (12 * h);
            double err = fabs(num - an[i]) / fmax(fabs(num) + fabs(an[i]), 1e-7);
            if (err > worst) worst = err;
        }
        free(an);
    }
    free(w);
    wick_graph_free(g);
    if (getenv("WICK_VERBOSE")) fprintf(stderr, "  grad check: %d params, worst relative error %.3g\n", n, worst);
    return worst;
}

/* ---- the graphs under test ---------------------------------------------- */

static wick_node b_matmul(wick_graph *g, const void *arg) {
    int tb = *(const int *)arg;
    wick_node a = wick_g_param(g, "a", 3, 4);
    wick_node b = tb ? wick_g_param(g, "b", 6, 4) : wick_g_param(g, "b", 4, 6);
    return wick_g_matmul(g, a, b, tb);
}

static wick_node b_bias(wick_graph *g, const void *arg) {
    wick_node x = wick_g_param(g, "x", 3, 4), b = wick_g_param(g, "b", 1, 4);
    return wick_g_bias(g, x, b);
}

static wick_node b_act(wick_graph *g, const void *arg) {
    wick_node x = wick_g_param(g, "x", 4, 6);
    return wick_g_act(g, x, *(const wick_act *)arg);
}

static wick_node b_dense(wick_graph *g, const void *arg) {
    wick_node x = wick_g_input(g, "x", 7);
    wick_node W1 = wick_g_param(g, "W1", 6, 7), b1 = wick_g_param(g, "b1", 1, 6);
    wick_node W2 = wick_g_param(g, "W2", 3, 6), b2 = wick_g_param(g, "b2", 1, 3);
    wick_node h = wick_g_dense(g, x, W1, b1, *(const wick_act *)arg);
    return wick_g_dense(g, h, W2, b2, (wick_act){WICK_ACT_LINEAR, 0});
}

static wick_node b_elementwise(wick_graph *g, const void *arg) {
    wick_node a = wick_g_param(g, "a", 3, 4), b = wick_g_param(g, "b", 3, 4);
    wick_node s = wick_g_add(g, wick_g_mul(g, a, b), wick_g_scale(g, a, -1.7));
    /* a is used three times: gradients must accumulate */
    return wick_g_mul(g, s, a);
}

static wick_node b_reduce(wick_graph *g, const void *arg) {
    wick_node a = wick_g_param(g, "a", 3, 4);
    wick_node sq = wick_g_mul(g, a, a);
    return *(const int *)arg ? wick_g_mean(g, sq) : wick_g_sum(g, sq);
}

static wick_node b_softmax(wick_graph *g, const void *arg) {
    wick_node a = wick_g_param(g, "a", 3, 5);
    return *(const int *)arg ? wick_g_log_softmax(g, a) : wick_g_softmax(g, a);
}

static wick_node b_mse(wick_graph *g, const void *arg) {
    wick_node x = wick_g_input(g, "x", 3), t = wick_g_input(g, "t", 2);
    wick_node W = wick_g_param(g, "W", 2, 3), b = wick_g_param(g, "b", 1, 2);
    return wick_g_mse(g, wick_g_dense(g, x, W, b, (wick_act){WICK_ACT_TANH, 0}), t);
}

static wick_node b_xent(wick_graph *g, const void *arg) {
    wick_node x = wick_g_input(g, "x", 3), lab = wick_g_labels(g, "lab");
    wick_node W = wick_g_param(g, "W", 4, 3), b = wick_g_param(g, "b", 1, 4);
    return wick_g_cross_entropy(g, wick_g_dense(g, x, W, b, (wick_act){WICK_ACT_LINEAR, 0}), lab,
                                *(const double *)arg);
}

/* ---- tests -------------------------------------------------------------- */

static void test_grad_matmul(void) {
    for (int tb = 0; tb < 2; tb++) CHECK(grad_check(b_matmul, &tb, 1) < 1e-6);
}

static void test_grad_bias(void) { CHECK(grad_check(b_bias, NULL, 2) < 1e-6); }

static void test_grad_activations(void) {
    for (int k = 0; k < WICK_ACT_COUNT; k++) {
        wick_act a = {k, 0.1};
        double e = grad_check(b_act, &a, 3 + k);
        if (!(e < 1e-6)) fprintf(stderr, "  activation %s: relative error %g\n", wick_act_name(a), e);
        CHECK(e < 1e-6);
    }
}

static void test_grad_dense(void) {
    for (int k = 0; k < WICK_ACT_COUNT; k++) {
        wick_act a = {k, 0.1};
        double e = grad_check(b_dense, &a, 20 + k);
        if (!(e < 1e-6)) fprintf(stderr, "  dense with %s: relative error %g\n", wick_act_name(a), e);
        CHECK(e < 1e-6);
    }
}

static void test_grad_elementwise_and_accumulation(void) {
    CHECK(grad_check(b_elementwise, NULL, 4) < 1e-6);
}

static void test_grad_reductions(void) {
    for (int m = 0; m < 2; m++) CHECK(grad_check(b_reduce, &m, 5) < 1e-6);
}

static void test_grad_softmax(void) {
    for (int l = 0; l < 2; l++) CHECK(grad_check(b_softmax, &l, 6) < 1e-6);
}

static void test_grad_losses(void) {
    CHECK(grad_check(b_mse, NULL, 7) < 1e-6);
    double eps[] = {0.0, 0.1};
    for (int i = 0; i < 2; i++) CHECK(grad_check(b_xent, &eps[i], 8) < 1e-6);
}

/* Cross-entropy's value against a hand computation: logits (0, ln 2, ln 3)
 * give p = (1/6, 2/6, 3/6); label 2, eps 0.3:
 * loss = 0.7 * ln 2 + 0.1 * (ln 6 + ln 3 + ln 2). */
static void test_xent_value(void) {
    wick_graph *g;
    CHECK_OK(wick_graph_new(&g, WICK_DT_F64, 1));
    wick_node x = wick_g_input(g, "x", 3), lab = wick_g_labels(g, "lab");
    wick_node l = wick_g_cross_entropy(g, x, lab, 0.3);
    CHECK_OK(wick_graph_compile(g));
    double *xv = wick_graph_value(g, x);
    xv[0] = 0; xv[1] = log(2); xv[2] = log(3);
    ((int32_t *)wick_graph_value(g, lab))[0] = 2;
    wick_graph_forward(g);
    CHECK_NEAR(*(double *)wick_graph_value(g, l), 0.7 * log(2) + 0.1 * (log(6) + log(3) + log(2)), 1e-14);
    /* large logits stay finite (log-sum-exp) */
    xv[0] = 1000; xv[1] = -1000; xv[2] = 999;
    wick_graph_forward(g);
    CHECK(isfinite(*(double *)wick_graph_value(g, l)));
    wick_graph_free(g);
}

static void test_shape_errors(void) {
    wick_graph *g;
    CHECK_OK(wick_graph_new(&g, WICK_DT_F32, 4));
    wick_node x = wick_g_input(g, "x", 3), W = wick_g_param(g, "W", 2, 4), b = wick_g_param(g, "b", 1, 2);
    CHECK(wick_g_dense(g, x, W, b, (wick_act){WICK_ACT_RELU, 0}) < 0);
    CHECK(wick_g_add(g, x, W) < 0);   /* sticky: later nodes fail too */
    CHECK_FAILS(wick_graph_compile(g), WICK_ESHAPE, "dense (x W^T) of [4, 3] ('x') and [2, 4] ('W')");
    wick_graph_free(g);
    CHECK_FAILS(wick_graph_new(&g, WICK_DT_I32, 4), WICK_EDTYPE, "F32 or F64");
}

/* The float32 graph (backend plans, fused ReLU) computes what the float64 one
 * does, at the full batch and at a smaller one, forward and backward. */
static void test_f32_matches_f64(void) {
    const int in = 37, hid = 29, out = 5, mb = 16;
    wick_graph *g[2];
    wick_node x[2], lab[2], W1[2], b1[2], W2[2], b2[2], loss[2];
    for (int k = 0; k < 2; k++) {
        CHECK_OK(wick_graph_new(&g[k], k ? WICK_DT_F64 : WICK_DT_F32, mb));
        x[k] = wick_g_input(g[k], "x", in);
        lab[k] = wick_g_labels(g[k], "lab");
        W1[k] = wick_g_param(g[k], "W1", hid, in); b1[k] = wick_g_param(g[k], "b1", 1, hid);
        W2[k] = wick_g_param(g[k], "W2", out, hid); b2[k] = wick_g_param(g[k], "b2", 1, out);
        wick_node h = wick_g_dense(g[k], x[k], W1[k], b1[k], (wick_act){WICK_ACT_RELU, 0});
        wick_node z = wick_g_dense(g[k], h, W2[k], b2[k], (wick_act){WICK_ACT_LINEAR, 0});
        loss[k] = wick_g_cross_entropy(g[k], z, lab[k], 0.05);
        CHECK_OK(wick_graph_compile(g[k]));
    }
    wick_node leaves[] = {x[0], W1[0], b1[0], W2[0], b2[0]};
    for (size_t i = 0; i < WICK_ARRAY_LEN(leaves); i++) {
        size_t m = (size_t)wick_graph_rows(g[0], leaves[i]) * wick_graph_cols(g[0], leaves[i]);
        wick_fill_normal_f32(wick_graph_value(g[0], leaves[i]), m, 0, 0.5, 9, i, 0);
        wick_fill_normal_f64(wick_graph_value(g[1], leaves[i]), m, 0, 0.5, 9, i, 0);
        /* the same draws, rounded to float in both */
        double *d = wick_graph_value(g[1], leaves[i]);
        for (size_t j = 0; j < m; j++) d[j] = (float)d[j];
    }
    for (int r = 0; r < mb; r++) {
        ((int32_t *)wick_graph_value(g[0], lab[0]))[r] = r % out;
        ((int32_t *)wick_graph_value(g[1], lab[1]))[r] = r % out;
    }
    int batches[] = {mb, 7, mb};
    for (int t = 0; t < 3; t++) {
        for (int k = 0; k < 2; k++) {
            CHECK_OK(wick_graph_set_batch(g[k], batches[t]));
            wick_graph_forward(g[k]);
            wick_graph_backward(g[k], loss[k], NULL, NULL);
        }
        CHECK_REL(*(float *)wick_graph_value(g[0], loss[0]), *(double *)wick_graph_value(g[1], loss[1]), 1e-5);
        wick_node ps[] = {W1[0], b1[0], W2[0], b2[0]};
        for (int p = 0; p < 4; p++) {
            size_t m = (size_t)wick_graph_rows(g[0], ps[p]) * wick_graph_cols(g[0], ps[p]);
            const float *a = wick_graph_grad(g[0], ps[p]);
            const double *b = wick_graph_grad(g[1], ps[p]);
            double worst = 0, scale = 0;
            for (size_t j = 0; j < m; j++) { worst = fmax(worst, fabs(a[j] - b[j])); scale = fmax(scale, fabs(b[j])); }
            CHECK(worst <= 1e-5 * scale);
        }
    }
    wick_graph_free(g[0]);
    wick_graph_free(g[1]);
}

/* The ready callback fires once per parameter, after its gradient is final. */
static int ready_count[8];
static void on_ready(void *user, wick_node p) { ready_count[p]++; }

static void test_grad_ready_callback(void) {
    wick_graph *g;
    CHECK_OK(wick_graph_new(&g, WICK_DT_F64, 2));
    wick_node x = wick_g_input(g, "x", 3);
    wick_node W = wick_g_param(g, "W", 3, 3), b = wick_g_param(g, "b", 1, 3);
    wick_node unused = wick_g_param(g, "unused", 2, 2);
    wick_node h = wick_g_dense(g, x, W, b, (wick_act){WICK_ACT_TANH, 0});
    wick_node h2 = wick_g_dense(g, h, W, b, (wick_act){WICK_ACT_TANH, 0}); /* W shared */
    wick_node l = wick_g_sum(g, h2);
    CHECK_OK(wick_graph_compile(g));
    CHECK(W < 8 && b < 8 && unused < 8);
    wick_graph_forward(g);
    memset(ready_count, 0, sizeof ready_count);
    wick_graph_backward(g, l, on_ready, NULL);
    CHECK(ready_count[W] == 1 && ready_count[b] == 1 && ready_count[unused] == 1);
    const double *gu = wick_graph_grad(g, unused);
    CHECK(gu[0] == 0 && gu[3] == 0);
    wick_graph_free(g);
}

/* The float32 activation kernels (vectorised through glibc's libmvec where it
 * has the function) against the double-precision scalar definitions of
 * src/core/act.c, on z in [-8, 8], forward and backward. */
static void test_f32_activations_accurate(void) {
    const int n = 4001;
    for (int k = 0; k < WICK_ACT_COUNT; k++) {
        wick_act a = {k, 0.1};
        wick_graph *g;
        CHECK_OK(wick_graph_new(&g, WICK_DT_F32, 1));
        wick_node z = wick_g_param(g, "z", 1, n);
        wick_node y = wick_g_act(g, z, a);
        CHECK_OK(wick_graph_compile(g));
        float *zv = wick_graph_value(g, z), *seed = malloc(n * sizeof *seed);
        for (int i = 0; i < n; i++) { zv[i] = -8.0f + 16.0f * i / (n - 1) + 1e-3f; seed[i] = 1; }
        wick_graph_forward(g);
        wick_graph_backward_seed(g, y, seed, NULL, NULL);
        const float *yv = wick_graph_value(g, y), *dz = wick_graph_grad(g, z);
        double worst_y = 0, worst_d = 0;
        for (int i = 0; i < n; i++) {
            double e = wick_act_eval(a, zv[i]), d = wick_act_deriv(a, zv[i]);
            worst_y = fmax(worst_y, fabs(yv[i] - e) / fmax(1, fabs(e)));
            worst_d = fmax(worst_d, fabs(dz[i] - d) / fmax(1, fabs(d)));
        }
        if (!(worst_y < 2e-6 && worst_d < 2e-6))
            fprintf(stderr, "  %s: worst relative error %.2g (value), %.2g (derivative)\n", wick_act_name(a), worst_y, worst_d);
        CHECK(worst_y < 2e-6);
        CHECK(worst_d < 2e-6);
        free(seed);
        wick_graph_free(g);
    }
}

int main(void) {
    wick_set_threads(2);
    RUN(test_grad_matmul);
    RUN(test_grad_bias);
    RUN(test_grad_activations);
    RUN(test_grad_dense);
    RUN(test_grad_elementwise_and_accumulation);
    RUN(test_grad_reductions);
    RUN(test_grad_softmax);
    RUN(test_grad_losses);
    RUN(test_xent_value);
    RUN(test_shape_errors);
    RUN(test_f32_matches_f64);
    RUN(test_grad_ready_callback);
    RUN(test_f32_activations_accurate);
    return chk_finish();
}
