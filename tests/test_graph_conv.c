/* test_graph_conv.c — the image ops (conv2d, pooling, flatten), batch norm,
 * dropout, Gaussian noise and the L1 penalty on the static graph.
 *
 * Expected values come from two places: centred five-point finite
 * differences in float64 for every gradient (relative error below 1e-6, as
 * test_graph.c), and closed forms worked out here (running statistics after
 * one step, dropout's scaling, output sizes).  Then float32 against float64
 * (1e-4 relative), and 1 thread against 2 (bit-identical).  PyTorch's values
 * are compared in tests/test_conv_torch.py. */
#include "check.h"

#define B 3   /* rows of batched nodes in the gradient checks */

typedef wick_node (*builder)(wick_graph *g, const void *arg);
typedef void (*prep_fn)(wick_graph *g);

static int is_state(wick_graph *g, wick_node n) {
    wick_node st[64];
    int k = wick_graph_states(g, st, 64);
    for (int i = 0; i < k; i++)
        if (st[i] == n) return 1;
    return 0;
}

/* Every named node that is neither a label nor a state gets N(0,1) draws. */
static void fill_normal(wick_graph *g, uint64_t seed) {
    for (int i = 0; wick_graph_value(g, i); i++) {
        const char *nm = wick_graph_name(g, i);
        if (!nm[0] || is_state(g, i) || wick_graph_dtype(g, i) != wick_graph_dtype(g, -1)) continue;
        size_t m = (size_t)wick_graph_rows(g, i) * wick_graph_cols(g, i);
        if (wick_graph_dtype(g, i) == WICK_DT_F64) wick_fill_normal_f64(wick_graph_value(g, i), m, 0, 1, seed, 100 + i, 0);
        else wick_fill_normal_f32(wick_graph_value(g, i), m, 0, 1, seed, 100 + i, 0);
    }
}

/* One forward with the random ops' step pinned, so masks repeat. */
static void forward(wick_graph *g) {
    wick_graph_set_step(g, 11);
    wick_graph_forward(g);
}

/* Gradient check of sum(w * out) w.r.t. every parameter (inputs under test
 * are parameters seen as images); returns the worst relative error
 * |analytic - numeric| / (|analytic| + |numeric|). */
static double grad_check(builder build, const void *arg, uint64_t seed, prep_fn prep, int training) {
    wick_graph *g;
    CHECK_OK(wick_graph_new(&g, WICK_DT_F64, B));
    wick_node out = build(g, arg);
    CHECK_OK(wick_graph_compile(g));
    if (out < 0) {
        wick_graph_free(g);
        return 1e9;
    }
    wick_graph_set_training(g, training);
    fill_normal(g, seed);
    if (prep) prep(g);
    int n = wick_graph_params(g, NULL, 0);
    wick_node params[32];
    wick_graph_params(g, params, 32);
    size_t no = (size_t)wick_graph_rows(g, out) * wick_graph_cols(g, out);
    double *w = malloc(no * sizeof *w);
    wick_fill_normal_f64(w, no, 0, 1, seed, 99, 0);
    forward(g);
    wick_graph_backward_seed(g, out, w, NULL, NULL);
    double worst = 0;
    for (int p = 0; p < n; p++) {
        double *v = wick_graph_value(g, params[p]);
        size_t m = (size_t)wick_graph_rows(g, params[p]) * wick_graph_cols(g, params[p]);
        double *an = malloc(m * sizeof *an), pw = 0;
        memcpy(an, wick_graph_grad(g, params[p]), m * sizeof *an);
        for (size_t i = 0; i < m; i++) {
            double keep = v[i], h = 1e-4 * (1 + fabs(keep)), f[4];
            const double steps[4] = {h, -h, 2 * h, -2 * h};
            for (int s = 0; s < 4; s++) {
                v[i] = keep + steps[s];
                forward(g);
                const double *o = wick_graph_value(g, out);
                f[s] = 0;
                for (size_t j = 0; j < no; j++) f[s] += w[j] * o[j];
            }
            v[i] = keep;
            double num = (8 * (f[0] - f[1]) - (f[2] - f[3])) / (12 * h);
            double err = fabs(num - an[i]) / fmax(fabs(num) + fabs(an[i]), 1e-7);
            pw = fmax(pw, err);
        }
        if (getenv("WICK_VERBOSE") && pw > 1e-7) fprintf(stderr, "    %s: %.3g\n", wick_graph_name(g, params[p]), pw);
        worst = fmax(worst, pw);
        free(an);
    }
    free(w);
    wick_graph_free(g);
    if (getenv("WICK_VERBOSE")) fprintf(stderr, "  grad check: %d params, worst relative error %.3g\n", n, worst);
    return worst;
}

/* An image-shaped parameter [B, C*H*W]: the input under test. */
static wick_node image_param(wick_graph *g, const char *name, int C, int H, int W) {
    return wick_g_as_image(g, wick_g_param(g, name, B, C * H * W), C, H, W);
}

/* ---- conv2d ------------------------------------------------------------- */

typedef struct {
    int C, H, W, OUT;
    wick_conv2d_params p;
    int bias;
} conv_case;

static const conv_case conv_cases[] = {
    {3, 7, 6, 4, {3, 3, 1, 1, 1, 1, 1, 1, 1}, 1},     /* odd sizes, padding */
    {2, 9, 8, 3, {3, 2, 2, 2, 0, 1, 1, 1, 1}, 1},     /* stride 2, non-square kernel */
    {2, 9, 9, 2, {3, 3, 1, 1, 2, 2, 2, 2, 1}, 0},     /* dilation 2, no bias */
    {4, 6, 5, 6, {3, 3, 1, 2, 1, 0, 1, 1, 2}, 1},     /* groups 2, strides 1x2 */
    {3, 5, 7, 3, {3, 3, 1, 1, 1, 1, 1, 1, 3}, 1},     /* depthwise */
    {3, 5, 7, 6, {2, 2, 1, 1, 0, 0, 1, 1, 3}, 0},     /* depthwise, multiplier 2 */
    {4, 9, 8, 4, {3, 3, 2, 2, 1, 1, 2, 2, 4}, 1},     /* depthwise, stride 2, dilation 2 */
    {2, 4, 5, 4, {1, 1, 1, 1, 0, 0, 1, 1, 2}, 1},     /* depthwise 1x1 */
    {4, 5, 6, 5, {1, 1, 1, 1, 0, 0, 1, 1, 1}, 1},     /* 1x1: the direct path */
    {4, 6, 6, 4, {1, 1, 2, 2, 0, 0, 1, 1, 2}, 1},     /* 1x1 stride 2, groups 2 */
    {1, 8, 5, 2, {5, 3, 1, 1, 2, 1, 1, 1, 1}, 1},     /* non-square image and kernel */
    {2, 10, 7, 3, {3, 3, 3, 2, 1, 2, 2, 1, 1}, 1},    /* stride 3x2, dilation 2x1 */
};

static wick_node b_conv(wick_graph *g, const void *arg) {
    const conv_case *c = arg;
    wick_node x = image_param(g, "x", c->C, c->H, c->W);
    int G = c->p.groups ? c->p.groups : 1;
    wick_node W = wick_g_param(g, "W", c->OUT, c->C / G * c->p.kh * c->p.kw);
    wick_node b = c->bias ? wick_g_param(g, "b", 1, c->OUT) : -1;
    return wick_g_conv2d(g, x, W, b, &c->p);
}

/* x an input (no gradient wanted): only W and b are checked. */
static wick_node b_conv_input(wick_graph *g, const void *arg) {
    const conv_case *c = arg;
    wick_node x = wick_g_input_image(g, "x", c->C, c->H, c->W);
    wick_node W = wick_g_param(g, "W", c->OUT, c->C / c->p.groups * c->p.kh * c->p.kw);
    return wick_g_conv2d(g, x, W, wick_g_param(g, "b", 1, c->OUT), &c->p);
}

/* y[n][o][oy][ox] straight from the definition, for the forward values. */
static double conv_ref(const conv_case *c, const double *x, const double *W, const double *b, int n, int o,
                       int oy, int ox) {
    const wick_conv2d_params *p = &c->p;
    int G = p->groups, CG = c->C / G, gi = o / (c->OUT / G);
    double s = b ? b[o] : 0;
    for (int ci = 0; ci < CG; ci++)
        for (int i = 0; i < p->kh; i++)
            for (int j = 0; j < p->kw; j++) {
                int iy = oy * p->stride_h - p->pad_h + i * p->dil_h, ix = ox * p->stride_w - p->pad_w + j * p->dil_w;
                if (iy < 0 || iy >= c->H || ix < 0 || ix >= c->W) continue;
                s += W[((o * CG + ci) * p->kh + i) * p->kw + j] *
                     x[(size_t)n * c->C * c->H * c->W + ((size_t)(gi * CG + ci) * c->H + iy) * c->W + ix];
            }
    return s;
}

static void test_conv_forward_definition(void) {
    for (size_t k = 0; k < sizeof conv_cases / sizeof *conv_cases; k++) {
        const conv_case *c = &conv_cases[k];
        wick_graph *g;
        CHECK_OK(wick_graph_new(&g, WICK_DT_F64, B));
        wick_node y = b_conv(g, c);
        CHECK_OK(wick_graph_compile(g));
        fill_normal(g, 5 + k);
        wick_graph_forward(g);
        int chw[3];
        CHECK(wick_graph_shape(g, y, chw) == 1);
        int OH = (c->H + 2 * c->p.pad_h - c->p.dil_h * (c->p.kh - 1) - 1) / c->p.stride_h + 1;
        int OW = (c->W + 2 * c->p.pad_w - c->p.dil_w * (c->p.kw - 1) - 1) / c->p.stride_w + 1;
        CHECK(chw[0] == c->OUT && chw[1] == OH && chw[2] == OW);
        const double *x = wick_graph_value(g, wick_graph_find(g, "x")), *W = wick_graph_value(g, wick_graph_find(g, "W"));
        const double *bb = c->bias ? wick_graph_value(g, wick_graph_find(g, "b")) : NULL;
        const double *yv = wick_graph_value(g, y);
        double worst = 0;
        for (int n = 0; n < B; n++)
            for (int o = 0; o < c->OUT; o++)
                for (int oy = 0; oy < OH; oy++)
                    for (int ox = 0; ox < OW; ox++) {
                        double r = conv_ref(c, x, W, bb, n, o, oy, ox);
                        double d = fabs(yv[(size_t)n * c->OUT * OH * OW + ((size_t)o * OH + oy) * OW + ox] - r);
                        worst = fmax(worst, d / fmax(fabs(r), 1));
                    }
        CHECK(worst < 1e-13);
        wick_graph_free(g);
    }
}

static void test_grad_conv(void) {
    for (size_t k = 0; k < sizeof conv_cases / sizeof *conv_cases; k++) {
        double e = grad_check(b_conv, &conv_cases[k], 10 + k, NULL, 1);
        if (!(e < 1e-6)) fprintf(stderr, "  conv case %zu: %.3g\n", k, e);
        CHECK(e < 1e-6);
    }
    CHECK(grad_check(b_conv_input, &conv_cases[3], 3, NULL, 1) < 1e-6);
}

/* ---- pooling ------------------------------------------------------------ */

typedef struct {
    int C, H, W, max;
    wick_conv2d_params p;
} pool_case;

static const pool_case pool_cases[] = {
    {2, 7, 8, 1, {3, 3, 2, 2, 1, 1, 0, 0, 0}},
    {3, 6, 6, 1, {2, 2, 0, 0, 0, 0, 0, 0, 0}},        /* stride = kernel */
    {2, 9, 7, 1, {3, 2, 1, 2, 1, 1, 2, 1, 0}},        /* non-square, dilation 2x1 */
    {2, 7, 8, 0, {3, 3, 2, 2, 1, 1, 0, 0, 0}},
    {2, 6, 5, 0, {2, 3, 1, 2, 1, 1, 0, 0, 0}},
    {1, 5, 5, 0, {5, 5, 0, 0, 0, 0, 0, 0, 0}},        /* one window */
};

static wick_node b_pool(wick_graph *g, const void *arg) {
    const pool_case *c = arg;
    wick_node x = image_param(g, "x", c->C, c->H, c->W);
    return c->max ? wick_g_maxpool2d(g, x, &c->p) : wick_g_avgpool2d(g, x, &c->p);
}

/* Distinct values 0.05 apart, shuffled: no ties, and no step of the finite
 * differences moves a maximum. */
static void prep_distinct(wick_graph *g) {
    wick_node x = wick_graph_find(g, "x");
    size_t m = (size_t)wick_graph_rows(g, x) * wick_graph_cols(g, x);
    uint32_t *perm = malloc(m * sizeof *perm);
    wick_permutation(perm, m, 4, 0);
    double *v = wick_graph_value(g, x);
    for (size_t i = 0; i < m; i++) v[i] = 0.05 * ((double)perm[i] - m / 2.0);
    free(perm);
}

static void test_grad_pool(void) {
    for (size_t k = 0; k < sizeof pool_cases / sizeof *pool_cases; k++) {
        double e = grad_check(b_pool, &pool_cases[k], 20 + k, pool_cases[k].max ? prep_distinct : NULL, 1);
        if (!(e < 1e-6)) fprintf(stderr, "  pool case %zu: %.3g\n", k, e);
        CHECK(e < 1e-6);
    }
}

static wick_node b_gap(wick_graph *g, const void *arg) {
    return wick_g_global_avgpool(g, image_param(g, "x", 3, 5, 4));
}

static void test_grad_global_avgpool(void) { CHECK(grad_check(b_gap, NULL, 30, NULL, 1) < 1e-6); }

/* Max pooling's ties go to the first maximum: all-equal windows send each
 * gradient to the window's top-left valid element. */
static void test_maxpool_ties(void) {
    wick_graph *g;
    CHECK_OK(wick_graph_new(&g, WICK_DT_F64, 1));
    wick_node xp = wick_g_param(g, "x", 1, 16);
    wick_node y = wick_g_maxpool2d(g, wick_g_as_image(g, xp, 1, 4, 4), &(wick_conv2d_params){.kh = 2, .kw = 2});
    CHECK_OK(wick_graph_compile(g));
    double *x = wick_graph_value(g, xp);
    for (int i = 0; i < 16; i++) x[i] = 1.5;
    wick_graph_forward(g);
    double seed[4] = {1, 2, 3, 4};
    wick_graph_backward_seed(g, y, seed, NULL, NULL);
    const double *dx = wick_graph_grad(g, xp);
    CHECK(dx[0] == 1 && dx[2] == 2 && dx[8] == 3 && dx[10] == 4);
    double s = 0;
    for (int i = 0; i < 16; i++) s += dx[i];
    CHECK(s == 10);
    wick_graph_free(g);
}

/* ---- batch norm --------------------------------------------------------- */

static wick_node b_bn(wick_graph *g, const void *arg) {
    int image = *(const int *)arg;
    wick_node x = image ? image_param(g, "x", 3, 4, 5) : wick_g_param(g, "x", B, 6);
    return wick_g_batchnorm_named(g, "bn", x, 0.1, 1e-5);
}

/* Running statistics away from their init, variance positive. */
static void prep_running(wick_graph *g) {
    wick_node rm = wick_graph_find(g, "bn.running_mean"), rv = wick_graph_find(g, "bn.running_var");
    double *m = wick_graph_value(g, rm), *v = wick_graph_value(g, rv);
    for (int c = 0; c < wick_graph_cols(g, rm); c++) {
        m[c] = 0.3 * c - 0.4;
        v[c] = 0.5 + 0.25 * c;
    }
}

static void test_grad_batchnorm(void) {
    for (int image = 0; image < 2; image++) {
        CHECK(grad_check(b_bn, &image, 40 + image, NULL, 1) < 1e-6);            /* batch statistics */
        CHECK(grad_check(b_bn, &image, 42 + image, prep_running, 0) < 1e-6);    /* eval */
    }
}

/* After one training forward from the init (0, 1): running mean = 0.1 mean,
 * running var = 0.9 + 0.1 var*M/(M-1), counter 1; eval forwards change none. */
static void test_batchnorm_running_stats(void) {
    for (int image = 0; image < 2; image++) {
        wick_graph *g;
        CHECK_OK(wick_graph_new(&g, WICK_DT_F64, B));
        wick_node y = b_bn(g, &image);
        CHECK_OK(wick_graph_compile(g));
        wick_node x = wick_graph_find(g, "x");
        wick_node rm = wick_graph_find(g, "bn.running_mean"), rv = wick_graph_find(g, "bn.running_var");
        wick_node nbt = wick_graph_find(g, "bn.num_batches_tracked");
        CHECK(wick_graph_params(g, NULL, 0) == 3);   /* x, weight, bias */
        CHECK(wick_graph_states(g, NULL, 0) == 3);
        CHECK(wick_graph_dtype(g, nbt) == WICK_DT_I64 && wick_graph_grad(g, rm) == NULL);
        CHECK(((double *)wick_graph_value(g, wick_graph_find(g, "bn.weight")))[0] == 1);
        CHECK(((double *)wick_graph_value(g, rv))[0] == 1 && ((double *)wick_graph_value(g, rm))[0] == 0);
        fill_normal(g, 50);
        double *ga = wick_graph_value(g, wick_graph_find(g, "bn.weight")), *be = wick_graph_value(g, wick_graph_find(g, "bn.bias"));
        for (int c = 0; c < wick_graph_cols(g, rm); c++) ga[c] = 1, be[c] = 0;
        const double *xv = wick_graph_value(g, x);
        int C = image ? 3 : 6, HW = image ? 20 : 1, cols = C * HW;
        wick_graph_forward(g);
        for (int c = 0; c < C; c++) {
            double s = 0, ss = 0, M = B * HW;
            for (int n = 0; n < B; n++)
                for (int p = 0; p < HW; p++) s += xv[n * cols + c * HW + p];
            double mu = s / M;
            for (int n = 0; n < B; n++)
                for (int p = 0; p < HW; p++) ss += pow(xv[n * cols + c * HW + p] - mu, 2);
            CHECK_NEAR(((double *)wick_graph_value(g, rm))[c], 0.1 * mu, 1e-15);
            CHECK_NEAR(((double *)wick_graph_value(g, rv))[c], 0.9 + 0.1 * ss / (M - 1), 1e-15);
            /* the output has mean beta (0) and biased variance 1 - eps/(var+eps) */
            double ys = 0, yss = 0;
            const double *yv = wick_graph_value(g, y);
            for (int n = 0; n < B; n++)
                for (int p = 0; p < HW; p++) {
                    ys += yv[n * cols + c * HW + p];
                    yss += pow(yv[n * cols + c * HW + p], 2);
                }
            CHECK_NEAR(ys / M, 0, 1e-14);
            CHECK_NEAR(yss / M, (ss / M) / (ss / M + 1e-5), 1e-13);
        }
        CHECK(((int64_t *)wick_graph_value(g, nbt))[0] == 1);
        wick_graph_forward(g);
        CHECK(((int64_t *)wick_graph_value(g, nbt))[0] == 2);
        wick_graph_set_training(g, 0);
        double keep = ((double *)wick_graph_value(g, rm))[0];
        wick_graph_forward(g);
        CHECK(((int64_t *)wick_graph_value(g, nbt))[0] == 2 && ((double *)wick_graph_value(g, rm))[0] == keep);
        wick_graph_free(g);
    }
}

/* ---- dropout, noise, L1 ------------------------------------------------- */

static wick_node b_dropout(wick_graph *g, const void *arg) {
    wick_node x = wick_g_param(g, "x", B, 40);
    return wick_g_dropout(g, wick_g_act(g, x, (wick_act){WICK_ACT_TANH, 0}), *(const double *)arg);
}

static void test_grad_dropout(void) {
    double p = 0.3;
    CHECK(grad_check(b_dropout, &p, 60, NULL, 1) < 1e-6);   /* fixed mask: same seed and step */
    CHECK(grad_check(b_dropout, &p, 61, NULL, 0) < 1e-6);   /* eval: the identity */
}

/* Training: each element is 0 or x/(1-p), about 1-p of them kept; eval: x;
 * the same step repeats a mask, the next step draws another, and the seed
 * changes it. */
static void test_dropout_masks(void) {
    const int n = 20000;
    double p = 0.25;
    wick_graph *g;
    CHECK_OK(wick_graph_new(&g, WICK_DT_F32, 4));
    wick_node x = wick_g_input(g, "x", n / 4);
    wick_node y = wick_g_dropout(g, x, p);
    CHECK_OK(wick_graph_compile(g));
    float *xv = wick_graph_value(g, x);
    for (int i = 0; i < n; i++) xv[i] = 1.0f + (float)(i % 7);
    const float *yv = wick_graph_value(g, y);
    float *first = malloc(n * sizeof *first);
    wick_graph_set_step(g, 5);
    wick_graph_forward(g);
    CHECK(wick_graph_step(g) == 6);
    int kept = 0, bad = 0;
    for (int i = 0; i < n; i++) {
        if (yv[i] != 0) kept++;
        if (yv[i] != 0 && fabsf(yv[i] - xv[i] / 0.75f) > 1e-6f * yv[i]) bad++;
        first[i] = yv[i];
    }
    CHECK(bad == 0);
    /* binomial: 3 standard deviations of n (1-p) */
    CHECK(fabs(kept - n * (1 - p)) < 3 * sqrt(n * p * (1 - p)));
    wick_graph_forward(g);   /* step 6: a different mask */
    int diff = 0;
    for (int i = 0; i < n; i++) diff += yv[i] != first[i];
    CHECK(diff > n / 10);
    wick_graph_set_step(g, 5);
    wick_graph_forward(g);
    CHECK(memcmp(first, yv, n * sizeof *first) == 0);
    wick_graph_set_seed(g, 1);
    wick_graph_set_step(g, 5);
    wick_graph_forward(g);
    CHECK(memcmp(first, yv, n * sizeof *first) != 0);
    wick_graph_set_training(g, 0);
    wick_graph_forward(g);
    CHECK(memcmp(xv, yv, n * sizeof *xv) == 0);
    CHECK(wick_graph_step(g) == 6);   /* eval forwards do not advance it */
    free(first);
    wick_graph_free(g);
}

/* The mask's definition (ops_impl.h): element e = 32 g + 8 w + l keeps when
 * word w of Philox block (8 g + l, node, step lo, step hi) under the seed, u,
 * has (u + 1/2) / 2^32 >= p.  Recomputed here with wick_philox4x32. */
static void test_dropout_mask_definition(void) {
    const int rows = 3, cols = 37;
    double p = 0.4;
    uint64_t seed = 0x123456789abcdefULL, step = 0x500000007ULL;
    wick_graph *g;
    CHECK_OK(wick_graph_new(&g, WICK_DT_F64, rows));
    wick_node x = wick_g_input(g, "x", cols);
    wick_node y = wick_g_dropout(g, x, p);
    CHECK_OK(wick_graph_compile(g));
    double *xv = wick_graph_value(g, x);
    for (int i = 0; i < rows * cols; i++) xv[i] = 1 + i;
    wick_graph_set_seed(g, seed);
    wick_graph_set_step(g, step);
    wick_graph_forward(g);
    const double *yv = wick_graph_value(g, y);
    int bad = 0, kept = 0;
    for (int e = 0; e < rows * cols; e++) {
        int grp = e / 32, w = e % 32 / 8, l = e % 8;
        uint32_t ctr[4] = {(uint32_t)(8 * grp + l), (uint32_t)y, (uint32_t)step, (uint32_t)(step >> 32)};
        uint32_t key[2] = {(uint32_t)seed, (uint32_t)(seed >> 32)}, r[4];
        wick_philox4x32(ctr, key, r);
        int keep = ((double)r[w] + 0.5) / 4294967296.0 >= p;
        kept += keep;
        if (yv[e] != (keep ? xv[e] * (1 / (1 - p)) : 0)) bad++;
    }
    CHECK(bad == 0);
    CHECK(kept > 0 && kept < rows * cols);
    wick_graph_free(g);
}

static wick_node b_noise(wick_graph *g, const void *arg) {
    wick_node x = wick_g_param(g, "x", B, 7);
    /* noise on a weight: the parameter's noisy copy is what the product uses */
    wick_node W = wick_g_param(g, "W", 5, 7), b = wick_g_param(g, "b", 1, 5);
    wick_node Wn = wick_g_gaussian_noise(g, W, 0.3);
    return wick_g_dense(g, wick_g_gaussian_noise(g, x, 0.5), Wn, b, (wick_act){WICK_ACT_TANH, 0});
}

static void test_gaussian_noise(void) {
    CHECK(grad_check(b_noise, NULL, 70, NULL, 1) < 1e-6);
    CHECK(grad_check(b_noise, NULL, 71, NULL, 0) < 1e-6);
    /* its statistics, and eval's identity */
    const int n = 40000;
    wick_graph *g;
    CHECK_OK(wick_graph_new(&g, WICK_DT_F64, 1));
    wick_node W = wick_g_param(g, "W", 100, n / 100);
    wick_node y = wick_g_gaussian_noise(g, W, 0.5);
    CHECK_OK(wick_graph_compile(g));
    double *w = wick_graph_value(g, W);
    for (int i = 0; i < n; i++) w[i] = 2;
    wick_graph_forward(g);
    const double *yv = wick_graph_value(g, y);
    double s = 0, ss = 0;
    for (int i = 0; i < n; i++) {
        s += yv[i] - 2;
        ss += (yv[i] - 2) * (yv[i] - 2);
    }
    CHECK_NEAR(s / n, 0, 4 * 0.5 / sqrt(n));
    CHECK_NEAR(sqrt(ss / n), 0.5, 4 * 0.5 / sqrt(2.0 * n));
    wick_graph_set_training(g, 0);
    wick_graph_forward(g);
    CHECK(memcmp(w, yv, n * sizeof *w) == 0);
    wick_graph_free(g);
}

static wick_node b_l1(wick_graph *g, const void *arg) {
    wick_node x = wick_g_param(g, "x", B, 9);
    wick_node h = wick_g_act(g, x, (wick_act){WICK_ACT_SIN, 0});
    /* loss + lambda l1(h), with h also used elsewhere */
    return wick_g_add(g, wick_g_mean(g, wick_g_mul(g, h, h)), wick_g_scale(g, wick_g_l1(g, h), 0.7));
}

static void test_l1(void) {
    CHECK(grad_check(b_l1, NULL, 80, NULL, 1) < 1e-6);
    wick_graph *g;
    CHECK_OK(wick_graph_new(&g, WICK_DT_F64, 1));
    wick_node x = wick_g_param(g, "x", 1, 4);
    wick_node l = wick_g_l1(g, x);
    CHECK_OK(wick_graph_compile(g));
    double *v = wick_graph_value(g, x);
    v[0] = -2, v[1] = 0, v[2] = 3, v[3] = 0.5;
    wick_graph_forward(g);
    CHECK(((double *)wick_graph_value(g, l))[0] == 5.5 / 4);
    wick_graph_backward(g, l, NULL, NULL);
    const double *d = wick_graph_grad(g, x);
    CHECK(d[0] == -0.25 && d[1] == 0 && d[2] == 0.25 && d[3] == 0.25);   /* sign(0) = 0 */
    wick_graph_free(g);
}

/* ---- a whole conv net --------------------------------------------------- */

/* conv - batchnorm - tanh - maxpool - conv(1x1) - avgpool - dropout -
 * flatten - dense - cross-entropy; plus a view read twice (its gradient not
 * aliased) and an L1 penalty on the first activation.  The first conv has
 * no bias (batch norm would give it a zero gradient) and the logits are
 * scaled down (a saturated softmax has gradients too small to check). */
static wick_node build_net(wick_graph *g, int xparam) {
    wick_node x = xparam ? image_param(g, "x", 2, 9, 8) : wick_g_input_image(g, "x", 2, 9, 8);
    wick_node lab = wick_g_labels(g, "lab");
    wick_node W1 = wick_g_param(g, "0.weight", 4, 2 * 3 * 3);
    wick_node h = wick_g_conv2d(g, x, W1, -1, &(wick_conv2d_params){.kh = 3, .kw = 3, .pad_h = 1, .pad_w = 1});
    h = wick_g_batchnorm_named(g, "1", h, 0.1, 1e-5);
    h = wick_g_act(g, h, (wick_act){WICK_ACT_TANH, 0});
    wick_node pen = wick_g_l1(g, h);
    h = wick_g_maxpool2d(g, h, &(wick_conv2d_params){.kh = 2, .kw = 2});
    wick_node W2 = wick_g_param(g, "4.weight", 3, 4), b2 = wick_g_param(g, "4.bias", 1, 3);
    h = wick_g_conv2d(g, h, W2, b2, &(wick_conv2d_params){.kh = 1, .kw = 1});
    h = wick_g_avgpool2d(g, h, &(wick_conv2d_params){.kh = 2, .kw = 2, .stride_h = 1, .stride_w = 1});
    h = wick_g_dropout(g, h, 0.2);
    wick_node f = wick_g_flatten(g, h);
    int F = wick_graph_cols(g, f);
    wick_node W3 = wick_g_param(g, "8.weight", 4, F), b3 = wick_g_param(g, "8.bias", 1, 4);
    wick_node z = wick_g_dense(g, f, W3, b3, (wick_act){WICK_ACT_LINEAR, 0});
    wick_node loss = wick_g_cross_entropy(g, wick_g_scale(g, z, 1 / sqrt(F)), lab, 0);
    wick_node v = wick_g_as_image(g, f, 1, 1, F);   /* f read twice: by dense and by this view */
    loss = wick_g_add(g, loss, wick_g_scale(g, wick_g_mean(g, wick_g_mul(g, v, v)), 0.1));
    return wick_g_add(g, loss, wick_g_scale(g, pen, 0.05));
}

static wick_node b_net(wick_graph *g, const void *arg) { return build_net(g, 0); }

static void prep_labels(wick_graph *g) {
    wick_node lab = wick_graph_find(g, "lab");
    for (int r = 0; r < wick_graph_rows(g, lab); r++) ((int32_t *)wick_graph_value(g, lab))[r] = (r * 3 + 1) % 4;
}

static void test_grad_net(void) {
    CHECK(grad_check(b_net, NULL, 90, prep_labels, 1) < 1e-6);
    CHECK(grad_check(b_net, NULL, 91, prep_labels, 0) < 1e-6);
}

/* The net's loss and gradients in float32 and float64 from the same values. */
static void test_f32_matches_f64(void) {
    wick_graph *g[2];
    wick_node loss[2];
    for (int k = 0; k < 2; k++) {
        CHECK_OK(wick_graph_new(&g[k], k ? WICK_DT_F64 : WICK_DT_F32, B));
        loss[k] = build_net(g[k], 0);
        CHECK_OK(wick_graph_compile(g[k]));
        if (loss[k] < 0) SKIP("the net did not build");
        fill_normal(g[k], 95);
        prep_labels(g[k]);
        forward(g[k]);
        wick_graph_backward(g[k], loss[k], NULL, NULL);
    }
    CHECK_REL(((float *)wick_graph_value(g[0], loss[0]))[0], ((double *)wick_graph_value(g[1], loss[1]))[0], 1e-5);
    wick_node p[2][16];
    int n = wick_graph_params(g[0], p[0], 16);
    wick_graph_params(g[1], p[1], 16);
    double worst = 0;
    for (int i = 0; i < n; i++) {
        size_t m = (size_t)wick_graph_rows(g[0], p[0][i]) * wick_graph_cols(g[0], p[0][i]);
        const float *a = wick_graph_grad(g[0], p[0][i]);
        const double *b = wick_graph_grad(g[1], p[1][i]), *scale = b;
        double mx = 0;
        for (size_t j = 0; j < m; j++) mx = fmax(mx, fabs(scale[j]));
        double w1 = 0;
        for (size_t j = 0; j < m; j++) w1 = fmax(w1, fabs(a[j] - b[j]) / mx);
        if (getenv("WICK_VERBOSE")) fprintf(stderr, "  %s: %.3g (largest %.3g)\n", wick_graph_name(g[1], p[1][i]), w1, mx);
        worst = fmax(worst, w1);
    }
    if (getenv("WICK_VERBOSE")) fprintf(stderr, "  f32 vs f64: worst %.3g of each tensor's largest\n", worst);
    CHECK(worst < 1e-4);
    for (int k = 0; k < 2; k++) wick_graph_free(g[k]);
}

/* A batch big enough for every parallel loop: outputs and gradients on 1 and
 * 2 threads must be bit-identical (fixed chunks, per-channel sums). */
static void run_big(wick_dtype dt, int threads, void **vals, size_t *sizes, int *count) {
    wick_set_threads(threads);
    wick_graph *g;
    CHECK_OK(wick_graph_new(&g, dt, 37));
    wick_node x = wick_g_input_image(g, "x", 8, 16, 16), lab = wick_g_labels(g, "lab");
    wick_node W1 = wick_g_param(g, "W1", 16, 8 * 9), b1 = wick_g_param(g, "b1", 1, 16);
    wick_node h = wick_g_conv2d(g, x, W1, b1, &(wick_conv2d_params){.kh = 3, .kw = 3, .pad_h = 1, .pad_w = 1});
    h = wick_g_batchnorm_named(g, "bn", h, 0.1, 1e-5);
    h = wick_g_act(g, h, (wick_act){WICK_ACT_RELU, 0});
    h = wick_g_maxpool2d(g, h, &(wick_conv2d_params){.kh = 2, .kw = 2});
    wick_node Wd = wick_g_param(g, "Wd", 16, 9);   /* depthwise: the direct loops */
    h = wick_g_conv2d(g, h, Wd, -1, &(wick_conv2d_params){.kh = 3, .kw = 3, .pad_h = 1, .pad_w = 1, .groups = 16});
    wick_node W2 = wick_g_param(g, "W2", 16, 4 * 9);
    h = wick_g_conv2d(g, h, W2, -1, &(wick_conv2d_params){.kh = 3, .kw = 3, .stride_h = 2, .stride_w = 2, .groups = 4});
    h = wick_g_dropout(g, h, 0.1);
    h = wick_g_global_avgpool(g, h);
    wick_node W3 = wick_g_param(g, "W3", 5, 16), b3 = wick_g_param(g, "b3", 1, 5);
    wick_node loss = wick_g_cross_entropy(g, wick_g_dense(g, h, W3, b3, (wick_act){WICK_ACT_LINEAR, 0}), lab, 0);
    CHECK_OK(wick_graph_compile(g));
    fill_normal(g, 123);
    for (int r = 0; r < 37; r++) ((int32_t *)wick_graph_value(g, lab))[r] = r % 5;
    forward(g);
    wick_graph_backward(g, loss, NULL, NULL);
    wick_node keep[] = {loss, wick_graph_find(g, "bn.running_var"), W1, b1, Wd, W2, W3,
                        wick_graph_find(g, "bn.weight")};
    *count = 0;
    for (size_t i = 0; i < sizeof keep / sizeof *keep; i++)
        for (int gr = 0; gr < 2; gr++) {
            void *src = gr ? wick_graph_grad(g, keep[i]) : wick_graph_value(g, keep[i]);
            if (!src) continue;
            size_t bytes = (size_t)wick_graph_rows(g, keep[i]) * wick_graph_cols(g, keep[i]) *
                           (dt == WICK_DT_F32 ? 4 : 8);
            vals[*count] = malloc(bytes);
            memcpy(vals[*count], src, bytes);
            sizes[(*count)++] = bytes;
        }
    wick_graph_free(g);
    wick_set_threads(0);
}

static void test_threads_identical(void) {
    for (int d = 0; d < 2; d++) {
        void *a[16], *b[16];
        size_t sa[16], sb[16];
        int na, nb;
        run_big(d ? WICK_DT_F64 : WICK_DT_F32, 1, a, sa, &na);
        run_big(d ? WICK_DT_F64 : WICK_DT_F32, 2, b, sb, &nb);
        CHECK(na == nb && na == 15);
        for (int i = 0; i < na && i < nb; i++) {
            if (sa[i] != sb[i] || memcmp(a[i], b[i], sa[i])) {
                FAIL("%s: tensor %d differs between 1 and 2 threads", d ? "f64" : "f32", i);
            }
            free(a[i]);
            free(b[i]);
        }
    }
}

/* A batch smaller than max_batch (set_batch) gives the rows of the full batch
 * that it keeps, with the batch statistics of its own rows. */
static void test_set_batch(void) {
    wick_graph *g;
    CHECK_OK(wick_graph_new(&g, WICK_DT_F64, 6));
    wick_node x = wick_g_input_image(g, "x", 2, 5, 5);
    wick_node W = wick_g_param(g, "W", 3, 18);
    wick_node y = wick_g_conv2d(g, x, W, -1, &(wick_conv2d_params){.kh = 3, .kw = 3, .pad_h = 1, .pad_w = 1});
    wick_node p = wick_g_maxpool2d(g, y, &(wick_conv2d_params){.kh = 2, .kw = 2});
    CHECK_OK(wick_graph_compile(g));
    fill_normal(g, 7);
    wick_graph_forward(g);
    size_t m = 4 * (size_t)wick_graph_cols(g, p);
    double *full = malloc(m * sizeof *full);
    memcpy(full, wick_graph_value(g, p), m * sizeof *full);
    CHECK_OK(wick_graph_set_batch(g, 4));
    wick_graph_forward(g);
    CHECK(memcmp(full, wick_graph_value(g, p), m * sizeof *full) == 0);
    free(full);
    wick_graph_free(g);
}

/* ---- construction errors ------------------------------------------------ */

static wick_status build_err(int which) {
    wick_graph *g;
    wick_graph_new(&g, WICK_DT_F32, 2);
    wick_node x = wick_g_input_image(g, "x", 4, 3, 3), flat = wick_g_input(g, "f", 10);
    wick_node W = wick_g_param(g, "W", 8, 4 * 25), W3 = wick_g_param(g, "W3", 8, 4 * 9);
    switch (which) {
    case 0: wick_g_conv2d(g, x, W, -1, &(wick_conv2d_params){.kh = 5, .kw = 5}); break;
    case 1: wick_g_conv2d(g, flat, W3, -1, &(wick_conv2d_params){.kh = 3, .kw = 3}); break;
    case 2: wick_g_conv2d(g, x, W, -1, &(wick_conv2d_params){.kh = 3, .kw = 3, .pad_h = 1, .pad_w = 1}); break;
    case 3: wick_g_conv2d(g, x, W3, -1, &(wick_conv2d_params){.kh = 3, .kw = 3, .groups = 3}); break;
    case 4: wick_g_maxpool2d(g, x, &(wick_conv2d_params){.kh = 2, .kw = 2, .pad_h = 2}); break;
    case 5: wick_g_dropout(g, x, 1.5); break;
    case 6: wick_g_batchnorm(g, x, W3, W3, -1, -1, -1, 0.1, 1e-5); break;
    case 7: wick_g_as_image(g, flat, 3, 2, 2); break;
    case 8: wick_g_conv2d(g, x, W3, wick_g_param(g, "b", 1, 7), &(wick_conv2d_params){.kh = 3, .kw = 3}); break;
    case 9: wick_g_conv2d(g, x, W3, -1, &(wick_conv2d_params){.kh = 3, .kw = 3, .stride_h = -1}); break;
    }
    wick_status s = wick_graph_compile(g);
    wick_graph_free(g);
    return s;
}

static void test_errors(void) {
    CHECK_FAILS(build_err(0), WICK_ESHAPE, "conv2d: kernel 5x5 with dilation 1x1 larger than the padded input 3x3");
    CHECK_FAILS(build_err(1), WICK_ESHAPE, "conv2d: input 'f' [2, 10] is not an image");
    CHECK_FAILS(build_err(2), WICK_ESHAPE, "conv2d: weight 'W' [8, 100] should be [OUT, C/groups*kh*kw] = [OUT, 4*3*3]");
    CHECK_FAILS(build_err(3), WICK_ESHAPE, "conv2d: 4 input channels not divisible by 3 groups");
    CHECK_FAILS(build_err(4), WICK_EINVAL, "maxpool2d: padding 2x0 more than half the kernel 2x2");
    CHECK_FAILS(build_err(5), WICK_EINVAL, "dropout: probability 1.5 outside [0, 1]");
    CHECK_FAILS(build_err(6), WICK_ESHAPE, "batchnorm: gamma 'W3' [8, 36] should be [1, 4]");
    CHECK_FAILS(build_err(7), WICK_ESHAPE, "as_image: 3x2x2 does not hold the 10 columns of 'f'");
    CHECK_FAILS(build_err(8), WICK_ESHAPE, "conv2d: bias 'b' [1, 7] should be [1, 8]");
    CHECK_FAILS(build_err(9), WICK_EINVAL, "conv2d: kernel 3x3, stride -1x1");
}

int main(void) {
    RUN(test_conv_forward_definition);
    RUN(test_grad_conv);
    RUN(test_grad_pool);
    RUN(test_grad_global_avgpool);
    RUN(test_maxpool_ties);
    RUN(test_grad_batchnorm);
    RUN(test_batchnorm_running_stats);
    RUN(test_grad_dropout);
    RUN(test_dropout_masks);
    RUN(test_dropout_mask_definition);
    RUN(test_gaussian_noise);
    RUN(test_l1);
    RUN(test_grad_net);
    RUN(test_f32_matches_f64);
    RUN(test_threads_identical);
    RUN(test_set_batch);
    RUN(test_errors);
    return chk_finish();
}
