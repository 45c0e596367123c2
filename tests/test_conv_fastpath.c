/* test_conv_fastpath.c — the graph's float32 conv2d through the backend plans
 * (conv.h: oneDNN forward and input gradient, im2col where the input has few
 * channels) against the same graph on the general im2col path, which
 * test_graph_conv.c checks against finite differences and
 * test_conv_torch.py against PyTorch; max pooling's 2x2 loop against its
 * definition, exactly; batch norm with its ReLU fused against the two apart,
 * and with its ReLU and 2x2 max pool fused against the three apart.
 *
 * Tolerances, each relative to the tensor's largest magnitude: 1e-5 for one
 * conv's output and gradients (float32 sums of up to a few hundred products
 * taken in another order: below 7e-7 measured), and 1e-5 too for the
 * weights and batch norm states after six training steps of a whole CNN (the
 * per-op differences carried through batch norm and six updates: 3e-7
 * measured).  The same thread count must give bit-identical
 * runs, and so must 1 and 2 threads (oneDNN's forward and input-gradient
 * primitives sum each output on one thread; the weight gradient keeps the
 * graph's fixed chunks). */
#include "check.h"
#include "graph/graph_internal.h"

typedef struct {
    const char *what;
    int C, H, W, OUT, kh, kw, sh, sw, ph, pw, dil, G, bias;
} shape;

static const shape shapes[] = {
    {"c1 1x28x28->32 3x3 pad 1", 1, 28, 28, 32, 3, 3, 1, 1, 1, 1, 1, 1, 1},
    {"c2 32x14x14->64 3x3 pad 1", 32, 14, 14, 64, 3, 3, 1, 1, 1, 1, 1, 1, 1},
    {"stride 2", 16, 15, 13, 24, 3, 3, 2, 2, 1, 1, 1, 1, 1},
    {"1x1, no bias", 24, 9, 9, 16, 1, 1, 1, 1, 0, 0, 1, 1, 0},
    {"groups 4", 16, 10, 10, 32, 3, 3, 1, 1, 1, 1, 1, 4, 1},
    {"depthwise x8 (planned)", 8, 12, 12, 64, 3, 3, 1, 1, 1, 1, 1, 8, 1},
    {"depthwise x1 (direct loops)", 16, 12, 12, 16, 3, 3, 1, 1, 1, 1, 1, 16, 1},
    {"dilation 2", 8, 16, 16, 16, 3, 3, 1, 1, 2, 2, 2, 1, 1},
    {"3x5 kernel, stride 2x1", 12, 11, 17, 20, 3, 5, 2, 1, 1, 2, 1, 1, 1},
    /* the weight gradient on wick's kernel (ops.c conv_dw_mode): SHIFT with
       channels past a panel of 16, a dilation, a 2x3 kernel and uneven pads,
       no padding; ROWS (with db in its product) strided, with a 1-row kernel
       and padding wider than the kernel's reach, and without a bias */
    {"shift: 20 channels, 5x3 kernel", 20, 9, 11, 18, 5, 3, 1, 1, 2, 1, 1, 1, 1},
    {"shift: dilation 2, 2x3", 16, 10, 12, 8, 2, 3, 1, 1, 0, 2, 2, 1, 0},
    {"shift: 33 channels, no pad", 33, 7, 6, 5, 3, 3, 1, 1, 0, 0, 1, 1, 1},
    {"rows: 1 channel, 3x5, stride 2", 1, 13, 16, 10, 3, 5, 2, 2, 1, 2, 1, 1, 1},
    {"rows: 3 channels, 1x5, pad 3", 3, 6, 9, 7, 1, 5, 1, 1, 3, 3, 1, 1, 1},
    {"rows: 2 channels, 2x2, no bias", 2, 8, 7, 6, 2, 2, 1, 1, 0, 1, 1, 1, 0},
};

/* max |a - b| / max |b|. */
static double rel_err(const float *a, const float *b, size_t n) {
    double d = 0, m = 0;
    for (size_t i = 0; i < n; i++) {
        d = fmax(d, fabs((double)a[i] - b[i]));
        m = fmax(m, fabs((double)b[i]));
    }
    return m > 0 ? d / m : d;
}

typedef struct {
    wick_graph *g;
    wick_node x, h, W, b, y;
} conv_case;

/* input -> a depthwise 1x1 (the general path in both graphs, so that the conv
 * under test has an input gradient) -> the conv under test. */
static void build(conv_case *k, const shape *s, int max_batch, int fast) {
    CHECK_OK(wick_graph_new(&k->g, WICK_DT_F32, max_batch));
    CHECK_OK(wick_graph_set_conv_fast(k->g, fast));
    wick_graph *g = k->g;
    k->x = wick_g_input_image(g, "x", s->C, s->H, s->W);
    wick_node W0 = wick_g_param(g, "W0", s->C, 1);
    k->h = wick_g_conv2d(g, k->x, W0, -1, &(wick_conv2d_params){.kh = 1, .kw = 1, .groups = s->C});
    k->W = wick_g_param(g, "W", s->OUT, s->C / s->G * s->kh * s->kw);
    k->b = s->bias ? wick_g_param(g, "b", 1, s->OUT) : -1;
    wick_conv2d_params p = {.kh = s->kh, .kw = s->kw, .stride_h = s->sh, .stride_w = s->sw, .pad_h = s->ph,
                            .pad_w = s->pw, .dil_h = s->dil, .dil_w = s->dil, .groups = s->G};
    k->y = wick_g_conv2d(g, k->h, k->W, k->b, &p);
    CHECK_OK(wick_graph_compile(g));
    wick_node fill[] = {k->x, W0, k->W, k->b};
    for (int i = 0; i < 4; i++)
        if (fill[i] >= 0)
            wick_fill_normal_f32(wick_graph_value(g, fill[i]),
                                 (size_t)wick_graph_rows(g, fill[i]) * wick_graph_cols(g, fill[i]), 0, 1, 7, i, 0);
}

/* Forward and backward with a fixed N(0,1) seed gradient at the output. */
static void run(conv_case *k, int rows) {
    CHECK_OK(wick_graph_set_batch(k->g, rows));
    wick_graph_forward(k->g);
    size_t n = (size_t)rows * wick_graph_cols(k->g, k->y);
    float *seed = malloc(n * sizeof *seed);
    wick_fill_normal_f32(seed, n, 0, 1, 8, 0, 0);
    wick_graph_backward_seed(k->g, k->y, seed, NULL, NULL);
    free(seed);
}

/* Output, input gradient, weight and bias gradients: plans against the
 * general path, at the full batch and at a partial last batch. */
static void test_each_shape(void) {
    const int max_batch = 16;
    for (size_t i = 0; i < sizeof shapes / sizeof *shapes; i++) {
        const shape *s = &shapes[i];
        conv_case f, r;
        build(&f, s, max_batch, 1);
        build(&r, s, max_batch, 0);
        if (f.y < 0 || r.y < 0) continue;
        node *fy = &f.g->nodes[f.y];
        int depthwise = s->G == s->C && s->OUT / s->G <= 4;
        CHECK(!r.g->nodes[r.y].cplan);
        CHECK(depthwise ? !fy->cplan : fy->cplan != NULL);
        for (int rows = max_batch; rows > 0; rows = rows == max_batch ? 11 : 0) {
            run(&f, rows);
            run(&r, rows);
            CHECK(!fy->cplan || fy->cplan == (rows == max_batch ? fy->cplan_full : fy->cplan_part));
            wick_node t[] = {f.y, f.h, f.W, f.b};
            const char *tn[] = {"y", "dx", "dW", "db"};
            double worst = 0;
            for (int k = 0; k < 4; k++) {
                if (t[k] < 0) continue;
                size_t n = (size_t)wick_graph_rows(f.g, t[k]) * wick_graph_cols(f.g, t[k]);
                const float *a = k ? wick_graph_grad(f.g, t[k]) : wick_graph_value(f.g, t[k]);
                const float *b = k ? wick_graph_grad(r.g, t[k]) : wick_graph_value(r.g, t[k]);
                double e = rel_err(a, b, n);
                if (getenv("WICK_VERBOSE"))
                    fprintf(stderr, "  %-30s batch %2d %-2s %.3g\n", s->what, rows, tn[k], e);
                if (!(e <= 1e-5)) fprintf(stderr, "  %s, batch %d: %s off by %.3g\n", s->what, rows, tn[k], e);
                worst = fmax(worst, e);
            }
            CHECK(worst <= 1e-5);
        }
        wick_graph_free(f.g);
        wick_graph_free(r.g);
    }
}

/* ---- a whole CNN, trained a few steps ---------------------------------- */

#define CNN "input:1x28x28,conv2d:32:3:pad=1,batchnorm,relu,maxpool:2,conv2d:64:3:pad=1,batchnorm," \
            "relu,maxpool:2,flatten,dropout:0.25,linear:256,relu,dropout:0.5,linear:10"
#define STEPS 6
#define BATCH 32

/* The CNN trained STEPS steps of SGD (lr 0.05) on N(0,1) images with
 * labels r mod 10, the last step a partial batch of 20; returns the
 * parameters and batch norm states, concatenated (*n floats). */
static int train_bn_dx_off;   /* set: WICK_BN_DX=0 (conv1's dx written by its batch norm) */
static int train_bn_dx_seen;  /* out: the last backward left a batch norm's dx to its conv */
static int train_early;       /* set: each parameter updated as soon as its gradient is ready */
static int train_blk_off;     /* set: WICK_CONV_BLK=0 (conv2's values transposed back to NCHW); 2: =fwd */
static int train_blk_seen;    /* out: a training forward left a conv's values in nChw8c */
static float *train_probe;    /* set: after training, an eval forward's conv2 values and logits here */
static int train_c1_off;      /* set: WICK_C1_FUSE=0 (conv1 writes its output; BN1 reads it) */
static int train_c1_seen;     /* out: the last forward left conv1's output to its batch norm */
static int train_c1_dw_off;   /* set: WICK_C1_DW=0 (conv1's weight gradient from recomputed planes) */
static int train_drop_off;    /* set: WICK_DROP_FAST=0 (dropout's draws a group at a time, mask as values) */
static int train_drop_seen;   /* out: a training forward's dropout kept its mask as bits */
static int train_f64;         /* set: the same net in float64 (general path), parameters cast */
static float train_shift;     /* set: added to every pixel (a large mean against the spread) */
static size_t train_len[64];  /* out: each parameter's and state's length, in train_cnn's order */
static int train_nt;
static int train_dyblk_off;   /* set: WICK_DY_BLK=0 (conv2's dy also written in NCHW by its batch norm) */
static int train_dyblk_seen;  /* out: a backward left conv2's dy in nChw8c alone (grad_blk 2) */
static float *train_dy;       /* set: conv2's gradient after the last step (wick_graph_grad), here */
static int train_xblk_off;    /* set: WICK_X_BLK=0 (conv2's input, the pool's values, in NCHW) */
static int train_xblk_seen;   /* out: a training forward left the pool's values in nChw8c for conv2 */
static float *train_xv;       /* set: the pool's values after the last step (wick_graph_value), here */
static int train_xg_seen;     /* out: a backward left the pool's gradient in nChw8c (conv2's dx) */
static float *train_xg;       /* set: the pool's gradient after the last step (wick_graph_grad), here */

/* The largest over the tensors of max |a - b| / max(max |b|, 1e-3): each
 * tensor against its own largest magnitude (a running mean of 30 does not
 * hide its variance's), or 1e-3 for a conv's bias before a batch norm,
 * whose gradient is rounding alone (it stays near 1e-9). */
static double rel_err_each(const float *a, const float *b) {
    double e = 0;
    for (int t = 0; t < train_nt; t++) {
        double d = 0, m = 1e-3;
        for (size_t i = 0; i < train_len[t]; i++) {
            d = fmax(d, fabs((double)a[i] - b[i]));
            m = fmax(m, fabs((double)b[i]));
        }
        e = fmax(e, d / m);
        a += train_len[t];
        b += train_len[t];
    }
    return e;
}

/* The SGD update of one parameter (the backward's ready callback, as wick
 * train overlaps it). */
static void sgd_param(void *user, wick_node p) {
    wick_graph *g = user;
    size_t m = (size_t)wick_graph_rows(g, p) * wick_graph_cols(g, p);
    if (wick_graph_dtype(g, p) == WICK_DT_F64) {
        double *w = wick_graph_value(g, p);
        const double *dw = wick_graph_grad(g, p);
        for (size_t j = 0; j < m; j++) w[j] -= 0.05 * dw[j];
        return;
    }
    float *w = wick_graph_value(g, p);
    const float *dw = wick_graph_grad(g, p);
    for (size_t j = 0; j < m; j++) w[j] -= 0.05f * dw[j];
}

/* The CNN (He init), its spec left in *spec for the caller to free. */
static wick_net *new_cnn(wick_dtype dt, wick_spec **spec) {
    wick_mlp_config cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.init = WICK_INIT_HE;
    wick_net *net = NULL;
    CHECK_OK(wick_spec_parse(CNN, spec));
    CHECK_OK(wick_net_new(&net, *spec, &cfg, dt, BATCH));
    return net;
}

static float *train_cnn(int fast, int threads, size_t *n) {
    wick_set_threads(threads);
    if (!fast) setenv("WICK_GRAPH_CONV", "general", 1);
    if (train_bn_dx_off) setenv("WICK_BN_DX", "0", 1);
    if (train_c1_off) setenv("WICK_C1_FUSE", "0", 1);
    if (train_c1_dw_off) setenv("WICK_C1_DW", "0", 1);
    if (train_blk_off) setenv("WICK_CONV_BLK", train_blk_off == 2 ? "fwd" : "0", 1);
    if (train_drop_off) setenv("WICK_DROP_FAST", "0", 1);
    if (train_dyblk_off) setenv("WICK_DY_BLK", "0", 1);
    setenv("WICK_X_BLK", train_xblk_off ? "0" : "1", 1);   /* off by default: graph.c */
    wick_dtype dt = train_f64 ? WICK_DT_F64 : WICK_DT_F32;
    wick_spec *spec;
    wick_net *net = new_cnn(dt, &spec);
    unsetenv("WICK_GRAPH_CONV");
    unsetenv("WICK_BN_DX");
    unsetenv("WICK_C1_FUSE");
    unsetenv("WICK_C1_DW");
    unsetenv("WICK_CONV_BLK");
    unsetenv("WICK_DROP_FAST");
    unsetenv("WICK_DY_BLK");
    unsetenv("WICK_X_BLK");
    wick_mlp_init(net, 5);
    wick_graph *g = wick_mlp_graph(net);
    wick_graph_set_seed(g, 9);
    int planned = 0;
    for (int i = 0; i < g->n; i++) planned += g->nodes[i].cplan != NULL;
    CHECK(planned == (fast ? 2 : 0));
    wick_node params[64], states[64];
    int np = wick_graph_params(g, params, 64), ns = wick_graph_states(g, states, 64);
    int in = wick_mlp_inputs(net);
    if (train_f64) {   /* the float net's initial parameters (states: zeros and ones either way) */
        wick_graph *g32 = NULL;
        wick_spec *spec32;
        wick_net *n32 = new_cnn(WICK_DT_F32, &spec32);
        wick_mlp_init(n32, 5);
        g32 = wick_mlp_graph(n32);
        wick_node p32[64];
        CHECK(wick_graph_params(g32, p32, 64) == np);
        for (int k = 0; k < np; k++) {
            size_t m = (size_t)wick_graph_rows(g, params[k]) * wick_graph_cols(g, params[k]);
            const float *a = wick_graph_value(g32, p32[k]);
            double *d = wick_graph_value(g, params[k]);
            for (size_t j = 0; j < m; j++) d[j] = a[j];
        }
        wick_mlp_free(n32);
        wick_spec_free(spec32);
    }
    float *img = malloc((size_t)BATCH * in * sizeof *img);
    for (int st = 0; st < STEPS; st++) {
        int rows = st == STEPS - 1 ? 20 : BATCH;
        CHECK_OK(wick_graph_set_batch(g, rows));
        size_t ni = (size_t)rows * in;
        wick_fill_normal_f32(img, ni, 0, 1, 3, st, 0);
        for (size_t j = 0; j < ni; j++) img[j] += train_shift;
        if (train_f64)
            for (size_t j = 0; j < ni; j++) ((double *)wick_graph_value(g, wick_mlp_input(net)))[j] = img[j];
        else
            memcpy(wick_graph_value(g, wick_mlp_input(net)), img, ni * sizeof *img);
        int32_t *lab = wick_graph_value(g, wick_mlp_labels(net));
        for (int r = 0; r < rows; r++) lab[r] = (r * 7 + st) % 10;
        wick_graph_forward(g);
        for (int i = 0; i < g->n; i++) {
            train_blk_seen |= g->nodes[i].op == OP_CONV2D && g->nodes[i].val_blk;
            train_xblk_seen |= g->nodes[i].op == OP_MAXPOOL2D && g->nodes[i].val_blk;
            train_drop_seen |= g->nodes[i].op == OP_DROPOUT && g->nodes[i].drop_bits;
        }
        wick_graph_backward(g, wick_mlp_loss(net), train_early ? sgd_param : NULL, g);
        for (int i = 0; i < g->n; i++) train_dyblk_seen |= g->nodes[i].op == OP_CONV2D && g->nodes[i].grad_blk == 2;
        for (int i = 0; i < g->n && train_dy && st == STEPS - 1; i++)
            if (g->nodes[i].op == OP_CONV2D && g->nodes[i].C == 64)
                memcpy(train_dy, wick_graph_grad(g, i), (size_t)rows * g->nodes[i].cols * sizeof *train_dy);
        for (int i = 0; i < g->n; i++) train_xg_seen |= g->nodes[i].op == OP_MAXPOOL2D && g->nodes[i].grad_blk;
        for (int i = 0; i < g->n && train_xv && st == STEPS - 1; i++)
            if (g->nodes[i].op == OP_MAXPOOL2D && g->nodes[i].C == 32) {
                memcpy(train_xv, wick_graph_value(g, i), (size_t)rows * g->nodes[i].cols * sizeof *train_xv);
                memcpy(train_xg, wick_graph_grad(g, i), (size_t)rows * g->nodes[i].cols * sizeof *train_xg);
            }
        for (int k = 0; k < np && !train_early; k++) sgd_param(g, params[k]);
    }
    free(img);
    train_bn_dx_seen = train_c1_seen = 0;
    for (int i = 0; i < g->n; i++) {
        train_bn_dx_seen |= g->nodes[i].op == OP_CONV2D && g->nodes[i].bn_dx;
        train_c1_seen |= g->nodes[i].op == OP_CONV2D && g->nodes[i].c1_fuse;
    }
    if (train_probe && !train_f64) {   /* eval (running statistics): conv2's values as a caller reads them */
        wick_graph_set_training(g, 0);
        CHECK_OK(wick_graph_set_batch(g, BATCH));
        wick_fill_normal_f32(wick_graph_value(g, wick_mlp_input(net)), (size_t)BATCH * in, 0, 1, 3, 99, 0);
        wick_graph_forward(g);
        float *o = train_probe;
        for (int i = 0; i < g->n; i++)
            if (g->nodes[i].op == OP_CONV2D && g->nodes[i].C == 64) {
                memcpy(o, wick_graph_value(g, i), (size_t)BATCH * g->nodes[i].cols * sizeof *o);
                o += (size_t)BATCH * g->nodes[i].cols;
            }
        memcpy(o, wick_graph_value(g, wick_mlp_output(net)), BATCH * 10 * sizeof *o);
    }
    size_t tot = 0;
    for (int k = 0; k < np + ns; k++) {
        wick_node t = k < np ? params[k] : states[k - np];
        if (wick_graph_dtype(g, t) == dt) tot += (size_t)wick_graph_rows(g, t) * wick_graph_cols(g, t);
    }
    train_nt = 0;
    float *out = malloc(tot * sizeof *out), *o = out;
    for (int k = 0; k < np + ns; k++) {
        wick_node t = k < np ? params[k] : states[k - np];
        if (wick_graph_dtype(g, t) != dt) continue;
        size_t m = (size_t)wick_graph_rows(g, t) * wick_graph_cols(g, t);
        if (train_nt < 64) train_len[train_nt++] = m;
        if (dt == WICK_DT_F64)
            for (size_t j = 0; j < m; j++) o[j] = (float)((const double *)wick_graph_value(g, t))[j];
        else
            memcpy(o, wick_graph_value(g, t), m * sizeof *o);
        o += m;
    }
    *n = tot;
    wick_mlp_free(net);
    wick_spec_free(spec);
    wick_set_threads(0);
    return out;
}

static void test_cnn_training(void) {
    size_t n1, n2, n3, n4;
    float *fast = train_cnn(1, 1, &n1), *ref = train_cnn(0, 1, &n2);
    float *again = train_cnn(1, 1, &n3), *two = train_cnn(1, 2, &n4);
    CHECK(n1 == n2 && n1 == n3 && n1 == n4);
    if (n1 == n2 && n1 == n3 && n1 == n4) {
        double e = rel_err(fast, ref, n1);
        if (getenv("WICK_VERBOSE")) fprintf(stderr, "  CNN, %d steps: plans vs general %.3g\n", STEPS, e);
        CHECK(e <= 1e-5);
        CHECK(e > 0);   /* the plans did run: their sums differ in the last bits */
        CHECK(!memcmp(fast, again, n1 * sizeof *fast));   /* a repeated run */
        CHECK(!memcmp(fast, two, n1 * sizeof *fast));     /* 1 and 2 threads */
    }
    free(fast);
    free(ref);
    free(again);
    free(two);
}

/* conv1's output gradient left by its batch norm (+ ReLU + pool) to conv1's
 * weight-gradient product, which recomputes it a sample at a time (bn_dx,
 * ops_impl.h bn_bwd), against the batch norm writing it (WICK_BN_DX=0):
 * the same bits after the steps (full batches and a partial one), on 1 and
 * 2 threads, each parameter updated as soon as its gradient is ready (so
 * the batch norm's gamma and beta before conv1's backward runs).  Not on
 * the general path (WICK_GRAPH_CONV=general), whose weight gradient is the
 * BLAS product of dy as the batch norm wrote it. */
static void test_bn_dx_deferred(void) {
    train_early = 1;
    train_c1_off = 1;   /* conv1's output written (test_c1_fused takes the rest) */
    for (int fast = 1; fast >= 0; fast--) {
        size_t n1, n2, n3;
        train_bn_dx_off = 1;
        float *off = train_cnn(fast, 1, &n1);
        CHECK(!train_bn_dx_seen);
        train_bn_dx_off = 0;
        float *on = train_cnn(fast, 1, &n2);
        CHECK(train_bn_dx_seen == fast);   /* the deferred path did run, on plans only */
        float *two = train_cnn(fast, 2, &n3);
        CHECK(train_bn_dx_seen == fast);
        CHECK(n1 == n2 && n1 == n3);
        if (n1 == n2 && n1 == n3) {
            CHECK(!memcmp(on, off, n1 * sizeof *on));
            CHECK(!memcmp(two, off, n1 * sizeof *on));
        }
        free(off);
        free(on);
        free(two);
    }
    train_early = 0;
    train_c1_off = 0;
}

/* conv1 + batch norm 1 (+ ReLU + pool) in one pass (c1_fuse, ops_impl.h
 * c1_fwd): the batch's statistics from the patches' Gram, conv1's output
 * never written, its planes computed again in the backward.  Against conv1
 * written and read back (WICK_C1_FUSE=0) after the six training steps
 * (parameters updated as soon as their gradient is ready, as wick train
 * does), each parameter and each running mean and variance within 5e-5 of
 * its own largest magnitude (or 1e-3: rel_err_each; measured 1e-5, as each
 * path against float64): the mean and variance are the same sums taken in
 * another order and another form (float32 per sample, double across, as
 * both paths), carried through six updates; and against the same net in
 * float64 (general path, the same initial parameters and images) the fused
 * path's error is no more than twice the unfused one's, plus 1e-6.  1 and
 * 2 threads bit-identical.  (With every pixel shifted by 1000, train_shift,
 * float inputs have lost three digits and each path is 2-6e-3 off float64,
 * by build: the fused path was 5.8e-5 from the unfused one in the -O3 build,
 * 1.9e-3 without the Gram's centring, but 4.4e-3 in the ASan build, so that
 * case is not part of the test.) */
static void test_c1_fused(void) {
    train_early = 1;
    for (int sh = 0; sh < 1; sh++) {
        train_shift = sh ? 1000.0f : 0.0f;
        size_t n1, n2, n3, n4;
        train_c1_off = 1;
        float *off = train_cnn(1, 1, &n1);
        CHECK(!train_c1_seen);
        train_c1_off = 0;
        float *on = train_cnn(1, 1, &n2);
        CHECK(train_c1_seen);
        float *two = train_cnn(1, 2, &n3);
        CHECK(train_c1_seen);
        train_f64 = 1;
        float *ref = train_cnn(0, 1, &n4);
        CHECK(!train_c1_seen);
        train_f64 = 0;
        CHECK(n1 == n2 && n1 == n3 && n1 == n4);
        if (n1 == n2 && n1 == n3 && n1 == n4) {
            double e = rel_err_each(on, off), ef = rel_err_each(on, ref), eo = rel_err_each(off, ref);
            if (getenv("WICK_VERBOSE"))
                fprintf(stderr, "  shift %g: fused vs written %.3g; vs float64: fused %.3g, written %.3g\n",
                        train_shift, e, ef, eo);
            CHECK(e <= (sh ? 2e-4 : 5e-5));
            CHECK(e > 0);   /* the fused pass did run: its sums differ in the last bits */
            CHECK(ef <= 2 * eo + 1e-6);
            CHECK(!memcmp(on, two, n1 * sizeof *on));
        }
        free(off);
        free(on);
        free(two);
        free(ref);
    }
    train_shift = 0;
    train_early = 0;
}

/* conv1's weight and bias gradient from the patches' sums and Gram and a
 * sparse sum over the pool's argmax positions (c1_dw, ops_impl.h), against
 * the planes recomputed and the dense product (WICK_C1_DW=0), both with
 * conv1 fused into its batch norm's forward: after the six training steps
 * (a partial last batch, each parameter updated as soon as its gradient is
 * ready), each parameter and state within 5e-5 of the recompute's (of its
 * own largest magnitude: rel_err_each), and against the same net in
 * float64 (general path) no more than twice the recompute's error + 1e-6;
 * 1 and 2 threads bit-identical.  With every pixel shifted by 3 (a mean
 * three times the spread: the centring's terms a Q and s db count) the
 * same checks.  Measured (-O3): 3.9e-6 from float64 against the
 * recompute's 1.1e-5, unshifted. */
static void test_c1_dw(void) {
    train_early = 1;
    for (int sh = 0; sh < 2; sh++) {
        train_shift = sh ? 3.0f : 0.0f;
        size_t n1, n2, n3, n4;
        train_c1_dw_off = 1;
        float *off = train_cnn(1, 1, &n1);
        CHECK(train_c1_seen);
        train_c1_dw_off = 0;
        float *on = train_cnn(1, 1, &n2);
        CHECK(train_c1_seen);
        float *two = train_cnn(1, 2, &n3);
        train_f64 = 1;
        float *ref = train_cnn(0, 1, &n4);
        train_f64 = 0;
        CHECK(n1 == n2 && n1 == n3 && n1 == n4);
        if (n1 == n2 && n1 == n3 && n1 == n4) {
            double e = rel_err_each(on, off), ea = rel_err_each(on, ref), er = rel_err_each(off, ref);
            if (getenv("WICK_VERBOSE"))
                fprintf(stderr, "  shift %g: Gram dW vs recomputed %.3g; vs float64: Gram %.3g, recomputed %.3g\n",
                        train_shift, e, ea, er);
            CHECK(e <= 5e-5);
            CHECK(e > 0);   /* the algebraic path did run: other roundings */
            CHECK(ea <= 2 * er + 1e-6);
            CHECK(!memcmp(on, two, n1 * sizeof *on));
        }
        free(off);
        free(on);
        free(two);
        free(ref);
    }
    train_shift = 0;
    train_early = 0;
}

/* c1_fwd's planes kept in registers (ops.c c1_pool: the conv's four window
 * values, their batch norm + ReLU and the pool's choice eight outputs at a
 * time) against each plane through the thread's scratch (WICK_C1_POOL=0:
 * c1_plane, maxpool22_plane, bnp_xa_avx2): the same bits in the pool's
 * values and argmax, x at each argmax and the batch's mean and invstd, for
 * N(0,1) images and MNIST-like ones (zeros but for a few flat squares: the
 * pool's windows tie everywhere, the ReLU is off on whole windows), a full
 * and a partial batch, 1 and 2 threads, the conv1 and a 12 x 10
 * image (5 x 6 pooled outputs: rows shorter than a vector, a plane not a
 * multiple of 8). */
static void test_c1_pool(void) {
    static const char *arch[] = {CNN, "input:1x12x10,conv2d:8:3:pad=1,batchnorm,relu,maxpool:2,flatten,linear:10"};
    for (int a = 0; a < 2; a++)
        for (int threads = 1; threads <= 2; threads++) {
            wick_set_threads(threads);
            wick_spec *spec;
            wick_net *net;
            wick_mlp_config cfg;
            memset(&cfg, 0, sizeof cfg);
            cfg.init = WICK_INIT_HE;
            CHECK_OK(wick_spec_parse(arch[a], &spec));
            CHECK_OK(wick_net_new(&net, spec, &cfg, WICK_DT_F32, BATCH));
            wick_mlp_init(net, 5);
            wick_graph *g = wick_mlp_graph(net);
            int in = wick_mlp_inputs(net), bn = 0;
            for (int i = 0; i < g->n && !bn; i++)
                if (g->nodes[i].op == OP_BATCHNORM) bn = i;
            node *b = &g->nodes[bn];
            float *img = wick_graph_value(g, wick_mlp_input(net));
            for (int st = 0; st < 4; st++) {
                int rows = st & 1 ? 20 : BATCH;
                CHECK_OK(wick_graph_set_batch(g, rows));
                wick_fill_normal_f32(img, (size_t)rows * in, 0, 1, 3, st, 0);
                if (st >= 2)   /* MNIST-like */
                    for (int r = 0; r < rows; r++)
                        for (int p = 0; p < in; p++) {
                            int y = p / (in == 784 ? 28 : 10), x = p % (in == 784 ? 28 : 10);
                            img[(size_t)r * in + p] = (y / 4 + x / 4 + r) % 3 ? 0 : 0.5f + (r % 4);
                        }
                int32_t *lab = wick_graph_value(g, wick_mlp_labels(net));
                for (int r = 0; r < rows; r++) lab[r] = r % 10;
                node *pn = NULL;
                size_t np = 0;
                float *ref = NULL;
                for (int off = 1; off >= 0; off--) {
                    g->c1_pool_off = off;
                    wick_graph_forward(g);
                    CHECK(g->nodes[b->in[0]].c1_fuse == bn);
                    pn = &g->nodes[b->bn_pool];
                    size_t nv = (size_t)rows * pn->cols, C = (size_t)g->nodes[b->in[0]].C;
                    np = 3 * nv + 2 * C;
                    float *got = malloc(np * sizeof *got);
                    memcpy(got, wick_graph_value(g, b->bn_pool), nv * sizeof *got);   /* NCHW (x_blk) */
                    memcpy(got + nv, pn->aux, nv * sizeof *got);
                    memcpy(got + 2 * nv, b->val, nv * sizeof *got);
                    memcpy(got + 3 * nv, b->aux, 2 * C * sizeof *got);
                    if (off) {
                        ref = got;
                        continue;
                    }
                    size_t bad = 0;
                    for (size_t i = 0; i < np; i++) bad += memcmp(got + i, ref + i, sizeof *got) != 0;
                    if (bad) fprintf(stderr, "  %s, %d threads, step %d: %zu of %zu differ\n", a ? "12x10" : "conv1",
                                     threads, st, bad, np);
                    CHECK(!bad);
                    free(got);
                }
                free(ref);
            }
            g->c1_pool_off = 0;
            wick_mlp_free(net);
            wick_spec_free(spec);
        }
    wick_set_threads(0);
}

/* Whether this CPU's oneDNN plan for conv2 (64 channels) uses nChw8c where
 * the blocked paths need it: where writes (1), reads (2), its input gradient
 * reads dy (4) and writes dx (8) so.  oneDNN picks the layout by the CPU:
 * nChw8c on AVX2, nChw16c on AVX-512, where the blocked paths (written for
 * nChw8c) stand aside and the plain ones run. */
static int conv2_plan8(void) {
    wick_spec *spec;
    wick_net *net = new_cnn(WICK_DT_F32, &spec);
    wick_graph *g = wick_mlp_graph(net);
    int r = 0;
    for (int i = 0; i < g->n; i++)
        if (g->nodes[i].op == OP_CONV2D && g->nodes[i].C == 64 && g->nodes[i].cplan) {
            const wick_conv *c = g->nodes[i].cplan;
            r = wick_conv_nchw8c_out(c) | wick_conv_nchw8c_in(c) << 1 | wick_conv_nchw8c_dy(c) << 2 |
                wick_conv_nchw8c_dx(c) << 3;
        }
    wick_mlp_free(net);
    wick_spec_free(spec);
    return r;
}

/* conv2's values left in nChw8c for its batch norm (+ ReLU + pool: conv_blk,
 * ops_impl.h bn_fwd_blk and bn_bwd's blocked dx) against the transpose to
 * NCHW (WICK_CONV_BLK=0): the same bits after the steps (full batches and a
 * partial one, each parameter updated as soon as ready), on 1 and 2 threads;
 * then an eval forward's conv2 values, read through wick_graph_value (which
 * brings them back to NCHW), and logits.  The blocked path must have run. */
#define PROBE (BATCH * (64 * 14 * 14 + 10))
static void test_conv_blk(void) {
    if (!(conv2_plan8() & 1)) SKIP("this CPU's oneDNN conv2 writes no nChw8c (nChw16c on AVX-512)");
    train_early = 1;
    size_t n1, n2, n3;
    float *p_off = calloc(PROBE, sizeof(float)), *p_on = calloc(PROBE, sizeof(float));
    float *p_two = calloc(PROBE, sizeof(float));
    train_blk_off = 1;
    train_blk_seen = 0;
    train_probe = p_off;
    float *off = train_cnn(1, 1, &n1);
    CHECK(!train_blk_seen);
    train_blk_off = 0;
    train_probe = p_on;
    float *on = train_cnn(1, 1, &n2);
    CHECK(train_blk_seen);   /* the blocked path did run */
    train_blk_seen = 0;
    train_probe = p_two;
    float *two = train_cnn(1, 2, &n3);
    CHECK(train_blk_seen);
    train_probe = NULL;
    size_t n4;
    train_blk_off = 2;   /* the forward half alone (WICK_CONV_BLK=fwd) */
    float *fwd = train_cnn(1, 2, &n4);
    train_blk_off = 0;
    CHECK(n1 == n2 && n1 == n3 && n1 == n4);
    if (n1 == n2 && n1 == n3 && n1 == n4) {
        CHECK(!memcmp(on, off, n1 * sizeof *on));
        CHECK(!memcmp(two, off, n1 * sizeof *on));
        CHECK(!memcmp(fwd, off, n1 * sizeof *on));
    }
    free(fwd);
    CHECK(!memcmp(p_on, p_off, PROBE * sizeof *p_on));
    CHECK(!memcmp(p_two, p_off, PROBE * sizeof *p_on));
    free(off);
    free(on);
    free(two);
    free(p_off);
    free(p_on);
    free(p_two);
    train_early = 0;
}

/* conv2's dy left by its batch norm in nChw8c alone (WICK_DY_BLK, ops_impl.h
 * bn_bwd's dy_blk): the plan's input gradient and SHIFT's weight gradient
 * (conv_dw_kern, each sample's planes transposed in its slot) read it there.
 * The same bits as with dy also written in NCHW: every parameter and state
 * after STEPS steps (a partial last batch), 1 and 2 threads, and conv2's
 * gradient as wick_graph_grad gives it (op_conv_dy_unblock). */
#define DY_PROBE (20 * 64 * 14 * 14)
static void test_dy_blk(void) {
    if ((conv2_plan8() & 5) != 5) SKIP("this CPU's oneDNN conv2 takes no nChw8c dy (nChw16c on AVX-512)");
    train_early = 1;
    size_t n1, n2, n3;
    float *d_off = calloc(DY_PROBE, sizeof(float)), *d_on = calloc(DY_PROBE, sizeof(float));
    float *d_two = calloc(DY_PROBE, sizeof(float));
    train_dyblk_off = 1;
    train_dyblk_seen = 0;
    train_dy = d_off;
    float *off = train_cnn(1, 1, &n1);
    CHECK(!train_dyblk_seen);
    train_dyblk_off = 0;
    train_dy = d_on;
    float *on = train_cnn(1, 1, &n2);
    CHECK(train_dyblk_seen);   /* the blocked dy did run */
    train_dyblk_seen = 0;
    train_dy = d_two;
    float *two = train_cnn(1, 2, &n3);
    CHECK(train_dyblk_seen);
    train_dy = NULL;
    CHECK(n1 == n2 && n1 == n3);
    if (n1 == n2 && n1 == n3) {
        CHECK(!memcmp(on, off, n1 * sizeof *on));
        CHECK(!memcmp(two, off, n1 * sizeof *on));
    }
    CHECK(!memcmp(d_on, d_off, DY_PROBE * sizeof *d_on));
    CHECK(!memcmp(d_two, d_off, DY_PROBE * sizeof *d_on));
    free(off);
    free(on);
    free(two);
    free(d_off);
    free(d_on);
    free(d_two);
    train_early = 0;
}

/* conv2's input, the pool's values, left in nChw8c by conv1 + batch norm 1's
 * fused forward (WICK_X_BLK, ops_impl.h c1_fwd's x_blk): conv2's plan reads
 * it there and SHIFT's weight gradient copies it from there; conv2's input
 * gradient stays in nChw8c too for conv1's weight-gradient pass
 * (c1_dw_sample).  The same bits as with both in NCHW: every parameter and
 * state after STEPS steps (a partial last batch, each parameter updated as
 * soon as its gradient is ready), 1 and 2 threads, and the pool's values
 * and gradient as wick_graph_value and wick_graph_grad give them
 * (op_conv_unblock, op_pool_grad_unblock). */
#define XV_PROBE (20 * 32 * 14 * 14)
static void test_x_blk(void) {
    if ((conv2_plan8() & 10) != 10) SKIP("this CPU's oneDNN conv2 reads no nChw8c x (nChw16c on AVX-512)");
    train_early = 1;
    size_t n1, n2, n3;
    float *v_off = calloc(XV_PROBE, sizeof(float)), *v_on = calloc(XV_PROBE, sizeof(float));
    float *v_two = calloc(XV_PROBE, sizeof(float));
    float *g_off = calloc(XV_PROBE, sizeof(float)), *g_on = calloc(XV_PROBE, sizeof(float));
    float *g_two = calloc(XV_PROBE, sizeof(float));
    train_xblk_off = 1;
    train_xblk_seen = train_xg_seen = 0;
    train_xv = v_off;
    train_xg = g_off;
    float *off = train_cnn(1, 1, &n1);
    CHECK(!train_xblk_seen && !train_xg_seen);
    train_xblk_off = 0;
    train_xv = v_on;
    train_xg = g_on;
    float *on = train_cnn(1, 1, &n2);
    CHECK(train_xblk_seen && train_xg_seen);   /* the blocked input and its gradient did run */
    train_xblk_seen = train_xg_seen = 0;
    train_xv = v_two;
    train_xg = g_two;
    float *two = train_cnn(1, 2, &n3);
    CHECK(train_xblk_seen && train_xg_seen);
    train_xv = train_xg = NULL;
    CHECK(n1 == n2 && n1 == n3);
    if (n1 == n2 && n1 == n3) {
        CHECK(!memcmp(on, off, n1 * sizeof *on));
        CHECK(!memcmp(two, off, n1 * sizeof *on));
    }
    CHECK(!memcmp(v_on, v_off, XV_PROBE * sizeof *v_on));
    CHECK(!memcmp(v_two, v_off, XV_PROBE * sizeof *v_on));
    CHECK(!memcmp(g_on, g_off, XV_PROBE * sizeof *g_on));
    CHECK(!memcmp(g_two, g_off, XV_PROBE * sizeof *g_on));
    free(g_off);
    free(g_on);
    free(g_two);
    free(off);
    free(on);
    free(two);
    free(v_off);
    free(v_on);
    free(v_two);
    train_early = 0;
}

/* Dropout's draws four Philox groups at a time with its mask kept as keep
 * bits (ops.c drop_bits4, ops_impl.h dropout_fwd and its backward) against
 * a group at a time with the mask as values (WICK_DROP_FAST=0): the same
 * bits in the CNN after the steps (full batches and a partial one,
 * each parameter updated as soon as ready: a wrong word or element changes
 * every weight after it), on 1 and 2 threads, the fast path having run;
 * then a dropout's values and gradients alone, written and added into (a
 * gradient begun by another consumer), float and double, p = 0.25, 0.5, 1
 * (nothing kept) and 0 (not drawn), sizes that end in a partial group and
 * a partial four (3 x 37, 7 x 701) and one split over threads (40 x 1001). */
static void drop_one(int fast, wick_dtype dt, int rows, int cols, double p, int threads, void **out) {
    wick_set_threads(threads);
    if (!fast) setenv("WICK_DROP_FAST", "0", 1);
    wick_graph *g;
    CHECK_OK(wick_graph_new(&g, dt, 1));
    unsetenv("WICK_DROP_FAST");
    wick_node x1 = wick_g_param(g, "x1", rows, cols), x2 = wick_g_param(g, "x2", rows, cols);
    wick_node c = wick_g_param(g, "c", rows, cols);
    wick_node d1 = wick_g_dropout(g, x1, p), d2 = wick_g_dropout(g, x2, p);
    wick_node s = wick_g_add(g, wick_g_mul(g, d1, c), wick_g_add(g, wick_g_mul(g, d2, c), x2));
    wick_node loss = wick_g_sum(g, s);
    CHECK_OK(wick_graph_compile(g));
    size_t n = (size_t)rows * cols, es = dt == WICK_DT_F32 ? 4 : 8;
    wick_node ps[3] = {x1, x2, c};
    for (int k = 0; k < 3; k++) {
        float *f = malloc(n * sizeof *f);
        wick_fill_normal_f32(f, n, 0, 1, 11, k, 0);
        for (size_t j = 0; j < n; j++) {
            if (dt == WICK_DT_F32) ((float *)wick_graph_value(g, ps[k]))[j] = f[j];
            else ((double *)wick_graph_value(g, ps[k]))[j] = f[j];
        }
        free(f);
    }
    wick_graph_set_seed(g, 77);
    wick_graph_set_step(g, 3);
    wick_graph_forward(g);
    wick_graph_backward(g, loss, NULL, NULL);
    CHECK(g->nodes[d1].drop_bits == (fast && p > 0));
    for (int k = 0; k < 4; k++) {   /* d1, d2 values; x1, x2 gradients */
        const void *v = k == 0 ? wick_graph_value(g, d1) : k == 1 ? wick_graph_value(g, d2)
                      : wick_graph_grad(g, k == 2 ? x1 : x2);
        out[k] = malloc(n * es);
        memcpy(out[k], v, n * es);
    }
    wick_graph_free(g);
    wick_set_threads(0);
}

static void test_drop_fast(void) {
    train_early = 1;
    size_t n1, n2, n3;
    train_drop_off = 1;
    train_drop_seen = 0;
    float *off = train_cnn(1, 1, &n1);
    CHECK(!train_drop_seen);
    train_drop_off = 0;
    float *on = train_cnn(1, 1, &n2);
    CHECK(train_drop_seen);
    train_drop_seen = 0;
    float *two = train_cnn(1, 2, &n3);
    CHECK(train_drop_seen);
    CHECK(n1 == n2 && n1 == n3);
    if (n1 == n2 && n1 == n3) {
        CHECK(!memcmp(on, off, n1 * sizeof *on));
        CHECK(!memcmp(two, off, n1 * sizeof *on));
    }
    free(off);
    free(on);
    free(two);
    train_early = 0;
    static const int sz[3][2] = {{3, 37}, {7, 701}, {40, 1001}};
    static const double ps[4] = {0.25, 0.5, 1, 0};
    int bad = 0;
    for (int d = 0; d < 2; d++)
        for (int s = 0; s < 3; s++)
            for (int q = 0; q < 4; q++) {
                wick_dtype dt = d ? WICK_DT_F64 : WICK_DT_F32;
                size_t n = (size_t)sz[s][0] * sz[s][1] * (d ? 8 : 4);
                void *a[4], *b[4], *c[4];
                drop_one(0, dt, sz[s][0], sz[s][1], ps[q], 1, a);
                drop_one(1, dt, sz[s][0], sz[s][1], ps[q], 1, b);
                drop_one(1, dt, sz[s][0], sz[s][1], ps[q], 2, c);
                for (int k = 0; k < 4; k++) {
                    bad += memcmp(a[k], b[k], n) != 0;
                    bad += memcmp(a[k], c[k], n) != 0;
                    free(a[k]);
                    free(b[k]);
                    free(c[k]);
                }
            }
    CHECK(bad == 0);
}

/* Max pooling's 2x2, stride 2 loop (ops_impl.h maxpool22_fwd) against the
 * four taps taken in row-major order by torch's rule (v > m or v NaN, from
 * m = -inf, no gradient when nothing beats -inf), on inputs full of ties,
 * NaNs and infinities, odd sizes included; then the gradient scatter. */
static void test_maxpool22(void) {
    for (int d = 0; d < 3; d++) {   /* rows of 4 outputs (less than the loop's eight), and of 15 (8 + 7) */
        int C = 3, H = 6 + d, W = d == 2 ? 30 : 8 + d, OH = H / 2, OW = W / 2, N = 2;
        wick_graph *g;
        CHECK_OK(wick_graph_new(&g, WICK_DT_F32, N));
        wick_node x = wick_g_input_image(g, "x", C, H, W), P0 = wick_g_param(g, "p", C, 1);
        /* a depthwise 1x1 conv with weights 1: the values exactly, and a parameter
           upstream so that the pool has an input gradient */
        wick_node h = wick_g_conv2d(g, x, P0, -1, &(wick_conv2d_params){.kh = 1, .kw = 1, .groups = C});
        wick_node y = wick_g_maxpool2d(g, h, &(wick_conv2d_params){.kh = 2, .kw = 2});
        CHECK_OK(wick_graph_compile(g));
        float *xv = wick_graph_value(g, x), *pv = wick_graph_value(g, P0);
        for (int c = 0; c < C; c++) pv[c] = 1;
        static const float pool[] = {0, 0, 1, -1, 2, 2, NAN, INFINITY, -INFINITY, -INFINITY, 0.5f};
        uint64_t r = 12345;
        size_t n = (size_t)N * C * H * W;
        for (size_t i = 0; i < n; i++) {
            r = r * 6364136223846793005ull + 1442695040888963407ull;
            xv[i] = pool[(r >> 33) % (sizeof pool / sizeof *pool)];
        }
        wick_graph_forward(g);
        size_t ny = (size_t)N * C * OH * OW;
        float *seed = malloc(ny * sizeof *seed), *dx = calloc(n, sizeof *dx);
        for (size_t i = 0; i < ny; i++) seed[i] = (float)(i % 7) + 1;
        wick_graph_backward_seed(g, y, seed, NULL, NULL);
        const float *yv = wick_graph_value(g, y), *hg = wick_graph_grad(g, h);
        int bad = 0;
        for (int s = 0; s < N; s++)
            for (int c = 0; c < C; c++)
                for (int oy = 0; oy < OH; oy++)
                    for (int ox = 0; ox < OW; ox++) {
                        float m = -INFINITY;
                        long a = -1;
                        for (int k = 0; k < 4; k++) {
                            long i = (((long)s * C + c) * H + 2 * oy + k / 2) * W + 2 * ox + k % 2;
                            if (xv[i] > m || xv[i] != xv[i]) m = xv[i], a = i;
                        }
                        size_t o = (((size_t)s * C + c) * OH + oy) * OW + ox;
                        if (a >= 0) dx[a] += seed[o];
                        if (memcmp(&m, &yv[o], sizeof m) && !(m != m && yv[o] != yv[o])) bad++;
                    }
        CHECK(bad == 0);
        CHECK(!memcmp(dx, hg, n * sizeof *dx));
        free(seed);
        free(dx);
        wick_graph_free(g);
    }
}

/* Batch norm followed by a ReLU that is its only consumer is fused at
 * compile (bn_fwd writes the ReLU's output, bn_bwd masks dy): the same
 * values and gradients as the two ops apart (kept apart here by a second
 * consumer, 0 * bn added to the output), in float64 and float32, training
 * and eval mode.  Tolerance 1e-12 of each tensor's largest in float64, 1e-6
 * in float32 (the same arithmetic, only the compiler's vectorisation of the
 * fused loops differs). */
static void test_bn_relu_fused(void) {
    for (int dt = 0; dt < 2; dt++)
        for (int train = 0; train < 2; train++) {
            wick_graph *g[2];
            wick_node x[2], W0[2], h[2], bn[2], y[2];
            for (int f = 0; f < 2; f++) {
                CHECK_OK(wick_graph_new(&g[f], dt ? WICK_DT_F32 : WICK_DT_F64, 5));
                x[f] = wick_g_input_image(g[f], "x", 6, 7, 9);
                W0[f] = wick_g_param(g[f], "W0", 6, 1);
                h[f] = wick_g_conv2d(g[f], x[f], W0[f], -1, &(wick_conv2d_params){.kh = 1, .kw = 1, .groups = 6});
                bn[f] = wick_g_batchnorm_named(g[f], "bn", h[f], 0.1, 1e-5);
                y[f] = wick_g_act(g[f], bn[f], (wick_act){WICK_ACT_RELU, 0});
                if (!f) y[f] = wick_g_add(g[f], y[f], wick_g_scale(g[f], bn[f], 0));
                CHECK_OK(wick_graph_compile(g[f]));
                wick_graph_set_training(g[f], train);
                size_t n = (size_t)5 * 6 * 7 * 9;
                wick_node fill[] = {x[f], W0[f], wick_graph_find(g[f], "bn.weight"), wick_graph_find(g[f], "bn.bias"),
                                    wick_graph_find(g[f], "bn.running_mean")};
                size_t sz[] = {n, 6, 6, 6, 6};
                for (int k = 0; k < 5; k++) {
                    if (dt) wick_fill_normal_f32(wick_graph_value(g[f], fill[k]), sz[k], 0, 1, 21, k, 0);
                    else wick_fill_normal_f64(wick_graph_value(g[f], fill[k]), sz[k], 0, 1, 21, k, 0);
                }
                wick_graph_forward(g[f]);
                void *seed = malloc(n * 8);
                if (dt) wick_fill_normal_f32(seed, n, 0, 1, 22, 0, 0);
                else wick_fill_normal_f64(seed, n, 0, 1, 22, 0, 0);
                wick_graph_backward_seed(g[f], y[f], seed, NULL, NULL);
                free(seed);
            }
            CHECK(!g[0]->nodes[bn[0]].relu_fused && g[1]->nodes[bn[1]].relu_fused);
            wick_node t0[] = {y[0], h[0], W0[0], wick_graph_find(g[0], "bn.weight"), wick_graph_find(g[0], "bn.bias")};
            wick_node t1[] = {y[1], h[1], W0[1], wick_graph_find(g[1], "bn.weight"), wick_graph_find(g[1], "bn.bias")};
            double worst = 0;
            for (int k = 0; k < 5; k++) {
                size_t m = (size_t)wick_graph_rows(g[0], t0[k]) * wick_graph_cols(g[0], t0[k]);
                const void *a = k ? wick_graph_grad(g[1], t1[k]) : wick_graph_value(g[1], t1[k]);
                const void *b = k ? wick_graph_grad(g[0], t0[k]) : wick_graph_value(g[0], t0[k]);
                double d = 0, mx = 0;
                for (size_t i = 0; i < m; i++) {
                    double u = dt ? ((const float *)a)[i] : ((const double *)a)[i];
                    double v = dt ? ((const float *)b)[i] : ((const double *)b)[i];
                    d = fmax(d, fabs(u - v));
                    mx = fmax(mx, fabs(v));
                }
                worst = fmax(worst, mx > 0 ? d / mx : d);
            }
            if (getenv("WICK_VERBOSE"))
                fprintf(stderr, "  bn+relu %s %s: fused vs apart %.3g\n", dt ? "f32" : "f64", train ? "train" : "eval", worst);
            CHECK(worst <= (dt ? 1e-6 : 1e-12));
            wick_graph_free(g[0]);
            wick_graph_free(g[1]);
        }
}

/* Batch norm + ReLU + a 2x2 stride-2 max pool, the pool the ReLU's only
 * reader, are fused at compile (bn_pool: bn_fwd writes the pooled values and
 * argmax only, bn_bwd takes the pooled gradient): against the three ops
 * apart (kept apart by a second reader of the ReLU, off the backward path),
 * float64 and float32, training and eval mode, odd sizes (the pool drops the
 * last row or column), rows of outputs shorter and longer than the pool's
 * eight; 1 and 2 threads give the same bits.  The pooled values, argmax and
 * running statistics are bit-identical; the gradients' per-channel sums take
 * the pooled outputs alone, in another order, so they and dx differ in the
 * last bits: tolerance 1e-12 of each tensor's largest in float64, 1e-5 in
 * float32 (sums of up to a few thousand terms). */
typedef struct {
    wick_graph *g;
    wick_node x, W0, h, bn, r, y;
} bnpool_case;

/* set: a forward that stops at the ReLU runs between the forward and the
 * backward (the batch norm's values are then the ReLU's, not x at each
 * argmax, and bn_bwd must not read them as such) */
static int bnpool_short_forward;

static void bnpool_run(bnpool_case *k, int f32, int train, int fused, int threads, int N, int C, int H, int W) {
    wick_set_threads(threads);
    CHECK_OK(wick_graph_new(&k->g, f32 ? WICK_DT_F32 : WICK_DT_F64, N));
    wick_graph *g = k->g;
    k->x = wick_g_input_image(g, "x", C, H, W);
    k->W0 = wick_g_param(g, "W0", C, 1);
    k->h = wick_g_conv2d(g, k->x, k->W0, -1, &(wick_conv2d_params){.kh = 1, .kw = 1, .groups = C});
    k->bn = wick_g_batchnorm_named(g, "bn", k->h, 0.1, 1e-5);
    k->r = wick_g_act(g, k->bn, (wick_act){WICK_ACT_RELU, 0});
    k->y = wick_g_maxpool2d(g, k->r, &(wick_conv2d_params){.kh = 2, .kw = 2});
    if (!fused) wick_g_scale(g, k->r, 0);   /* a second reader, after y: off y's backward path */
    CHECK_OK(wick_graph_compile(g));
    wick_graph_set_training(g, train);
    size_t n = (size_t)N * C * H * W, ny = (size_t)N * C * (H / 2) * (W / 2);
    wick_node fill[] = {k->x, k->W0, wick_graph_find(g, "bn.weight"), wick_graph_find(g, "bn.bias"),
                        wick_graph_find(g, "bn.running_mean")};
    size_t sz[] = {n, C, C, C, C};
    for (int i = 0; i < 5; i++) {
        if (f32) wick_fill_normal_f32(wick_graph_value(g, fill[i]), sz[i], 0, 1, 31, i, 0);
        else wick_fill_normal_f64(wick_graph_value(g, fill[i]), sz[i], 0, 1, 31, i, 0);
    }
    wick_graph_forward(g);
    if (bnpool_short_forward) wick_graph_forward_to(g, k->r);
    void *seed = malloc(ny * 8);
    if (f32) wick_fill_normal_f32(seed, ny, 0, 1, 32, 0, 0);
    else wick_fill_normal_f64(seed, ny, 0, 1, 32, 0, 0);
    wick_graph_backward_seed(g, k->y, seed, NULL, NULL);
    free(seed);
    wick_set_threads(0);
}

/* max |a - b| / max |b| over node t's values (grad 0) or gradient (grad 1). */
static double bnpool_err(bnpool_case *a, bnpool_case *b, wick_node ta, wick_node tb, int grad, int f32) {
    size_t m = (size_t)wick_graph_rows(a->g, ta) * wick_graph_cols(a->g, ta);
    const void *u = grad ? wick_graph_grad(a->g, ta) : wick_graph_value(a->g, ta);
    const void *v = grad ? wick_graph_grad(b->g, tb) : wick_graph_value(b->g, tb);
    double d = 0, mx = 0;
    for (size_t i = 0; i < m; i++) {
        double p = f32 ? ((const float *)u)[i] : ((const double *)u)[i];
        double q = f32 ? ((const float *)v)[i] : ((const double *)v)[i];
        d = fmax(d, fabs(p - q));
        mx = fmax(mx, fabs(q));
    }
    return mx > 0 ? d / mx : d;
}

static void test_bn_relu_pool_fused(void) {
    static const int dims[][4] = {{5, 6, 7, 9}, {3, 4, 8, 30}, {4, 5, 14, 14}, {16, 8, 17, 31}};
    for (int s = 0; s < 4; s++)
        for (int f32 = 0; f32 < 2; f32++)
            for (int train = 0; train < 2; train++) {
                const int *d = dims[s];
                bnpool_case ref, fu, fu2;
                bnpool_run(&ref, f32, train, 0, 1, d[0], d[1], d[2], d[3]);
                bnpool_run(&fu, f32, train, 1, 1, d[0], d[1], d[2], d[3]);
                bnpool_run(&fu2, f32, train, 1, 2, d[0], d[1], d[2], d[3]);
                CHECK(!ref.g->nodes[ref.bn].bn_pool && ref.g->nodes[ref.bn].relu_fused);
                CHECK(fu.g->nodes[fu.bn].bn_pool == fu.y && fu.g->nodes[fu.y].bn_pool == fu.bn);
                size_t ny = (size_t)d[0] * d[1] * (d[2] / 2) * (d[3] / 2), es = f32 ? 4 : 8;
                CHECK(!memcmp(wick_graph_value(fu.g, fu.y), wick_graph_value(ref.g, ref.y), ny * es));
                CHECK(!memcmp(fu.g->nodes[fu.y].aux, ref.g->nodes[ref.y].aux, ny * sizeof(int32_t)));
                wick_node st[2][2] = {{wick_graph_find(ref.g, "bn.running_mean"), wick_graph_find(ref.g, "bn.running_var")},
                                      {wick_graph_find(fu.g, "bn.running_mean"), wick_graph_find(fu.g, "bn.running_var")}};
                for (int i = 0; i < 2; i++) CHECK(bnpool_err(&fu, &ref, st[1][i], st[0][i], 0, f32) == 0);
                wick_node tf[] = {fu.h, fu.W0, wick_graph_find(fu.g, "bn.weight"), wick_graph_find(fu.g, "bn.bias")};
                wick_node tr[] = {ref.h, ref.W0, wick_graph_find(ref.g, "bn.weight"), wick_graph_find(ref.g, "bn.bias")};
                double worst = 0;
                /* with batch statistics the batch norm is invariant to W0's
                   scaling of its channel: W0's gradient is 0 up to rounding,
                   a difference of noise, and is left out */
                for (int i = 0; i < 4; i++)
                    if (!(train && i == 1)) worst = fmax(worst, bnpool_err(&fu, &ref, tf[i], tr[i], 1, f32));
                if (getenv("WICK_VERBOSE"))
                    fprintf(stderr, "  bn+relu+pool %dx%dx%dx%d %s %s: fused vs apart %.3g\n", d[0], d[1], d[2], d[3],
                            f32 ? "f32" : "f64", train ? "train" : "eval", worst);
                CHECK(worst <= (f32 ? 1e-5 : 1e-12));
                /* 2 threads: the same bits (the last shape is large enough to be shared) */
                for (int i = 0; i < 4; i++) CHECK(bnpool_err(&fu2, &fu, tf[i], tf[i], 1, f32) == 0);
                CHECK(!memcmp(wick_graph_value(fu2.g, fu2.y), wick_graph_value(fu.g, fu.y), ny * es));
                /* a forward that stops short of the pool writes the ReLU's values */
                if (!train) {
                    wick_graph_forward_to(fu.g, fu.r);
                    size_t nr = (size_t)d[0] * d[1] * d[2] * d[3];
                    CHECK(!memcmp(wick_graph_value(fu.g, fu.r), wick_graph_value(ref.g, ref.r), nr * es));
                }
                wick_graph_free(ref.g);
                wick_graph_free(fu.g);
                wick_graph_free(fu2.g);
            }
    /* the fused backward after a forward that stopped at the ReLU: the
       pool's argmax and gradient with x itself, as the ops apart */
    bnpool_short_forward = 1;
    for (int f32 = 0; f32 < 2; f32++) {
        bnpool_case ref, fu;
        bnpool_run(&ref, f32, 1, 0, 1, 4, 5, 14, 14);
        bnpool_run(&fu, f32, 1, 1, 1, 4, 5, 14, 14);
        wick_node tf[] = {fu.h, wick_graph_find(fu.g, "bn.weight"), wick_graph_find(fu.g, "bn.bias")};
        wick_node tr[] = {ref.h, wick_graph_find(ref.g, "bn.weight"), wick_graph_find(ref.g, "bn.bias")};
        for (int i = 0; i < 3; i++) CHECK(bnpool_err(&fu, &ref, tf[i], tr[i], 1, f32) <= (f32 ? 1e-5 : 1e-12));
        wick_graph_free(ref.g);
        wick_graph_free(fu.g);
    }
    bnpool_short_forward = 0;
    /* another reader of the batch norm's output: neither fusion */
    wick_graph *g;
    CHECK_OK(wick_graph_new(&g, WICK_DT_F32, 2));
    wick_node x = wick_g_input_image(g, "x", 2, 6, 6), W0 = wick_g_param(g, "W0", 2, 1);
    wick_node h = wick_g_conv2d(g, x, W0, -1, &(wick_conv2d_params){.kh = 1, .kw = 1, .groups = 2});
    wick_node bn = wick_g_batchnorm_named(g, "bn", h, 0.1, 1e-5);
    wick_node y = wick_g_maxpool2d(g, wick_g_act(g, bn, (wick_act){WICK_ACT_RELU, 0}), &(wick_conv2d_params){.kh = 2, .kw = 2});
    wick_g_add(g, wick_g_flatten(g, y), wick_g_flatten(g, wick_g_maxpool2d(g, bn, &(wick_conv2d_params){.kh = 2, .kw = 2})));
    CHECK_OK(wick_graph_compile(g));
    CHECK(!g->nodes[bn].bn_pool && !g->nodes[bn].relu_fused && !g->nodes[y].bn_pool);
    wick_graph_free(g);
}

/* set_conv_fast only before compile. */
static void test_set_after_compile(void) {
    wick_graph *g;
    CHECK_OK(wick_graph_new(&g, WICK_DT_F32, 2));
    wick_node x = wick_g_input_image(g, "x", 2, 5, 5), W = wick_g_param(g, "W", 3, 18);
    wick_g_conv2d(g, x, W, -1, &(wick_conv2d_params){.kh = 3, .kw = 3});
    CHECK_OK(wick_graph_compile(g));
    CHECK(wick_graph_set_conv_fast(g, 0) == WICK_EINVAL);
    wick_graph_free(g);
}

int main(void) {
    RUN(test_each_shape);
    RUN(test_cnn_training);
    RUN(test_maxpool22);
    RUN(test_bn_relu_fused);
    RUN(test_bn_dx_deferred);
    RUN(test_conv_blk);
    RUN(test_drop_fast);
    RUN(test_dy_blk);
    RUN(test_x_blk);
    RUN(test_c1_fused);
    RUN(test_c1_pool);
    RUN(test_c1_dw);
    RUN(test_bn_relu_pool_fused);
    RUN(test_set_after_compile);
    return chk_finish();
}
