/* graph.c — building, compiling and running the static graph.
 *
 * Nodes are appended in creation order, which is a topological order: every
 * input exists before the node that uses it.  So forward is one pass up the
 * array and backward one pass down it.  compile() allocates every buffer in
 * one arena; after that a step allocates nothing. */
#include "graph/graph_internal.h"
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- construction ------------------------------------------------------ */

wick_status wick_graph_new(wick_graph **out, wick_dtype dtype, int max_batch) {
    if (dtype != WICK_DT_F32 && dtype != WICK_DT_F64)
        return wick_fail(WICK_EDTYPE, "graph: dtype must be F32 or F64, not %s", wick_dtype_name(dtype));
    if (max_batch < 1) return wick_fail(WICK_EINVAL, "graph: batch size %d < 1", max_batch);
    wick_graph *g = wick_calloc(1, sizeof *g);
    if (!g) return wick_fail(WICK_ENOMEM, "graph: out of memory");
    g->dt = dtype;
    g->esize = wick_dtype_size(dtype);
    g->max_batch = g->batch = max_batch;
    g->training = 1;
    const char *e = getenv("WICK_GRAPH_CONV");   /* benchmarks: the general path's speed */
    g->conv_general = e && !strcmp(e, "general");
    e = getenv("WICK_BN_DX");   /* A/B of the deferred batch norm dx (ops_impl.h bn_bwd) */
    g->bn_dx_off = e && !strcmp(e, "0");
    e = getenv("WICK_C1_FUSE");   /* A/B of conv1 + batch norm in one pass (ops_impl.h c1_fwd) */
    g->c1_fuse_off = e && !strcmp(e, "0");
    e = getenv("WICK_C1_POOL");   /* A/B of c1_fwd's planes kept in registers (ops.c c1_pool) */
    g->c1_pool_off = e && !strcmp(e, "0");
    e = getenv("WICK_C1_DW");   /* A/B of conv1's weight gradient from the patches' Gram (ops_impl.h c1_dw) */
    g->c1_dw_off = e && !strcmp(e, "0");
    e = getenv("WICK_DROP_FAST");   /* A/B of dropout's interleaved draws and mask bits (ops.c drop_bits4) */
    g->drop_fast_off = e && !strcmp(e, "0");
    e = getenv("WICK_CONV_BLK");   /* A/B of a conv's values left in nChw8c (ops_impl.h bn_fwd_blk) */
    g->conv_blk_off = e && !strcmp(e, "0");
    g->conv_blk_fwd = e && !strcmp(e, "fwd");
    e = getenv("WICK_DY_BLK");   /* A/B of conv_blk's dy left in nChw8c alone (ops_impl.h bn_bwd, conv_dw_kern) */
    g->dy_blk_off = e && !strcmp(e, "0");
    /* conv2's input left in nChw8c by c1_fwd (x_blk): off unless WICK_X_BLK=1,
       because the quiet 2-thread A/B measured it 0.7 ms a step slower (its
       transposes in BN1's passes cost more than conv2's reorders saved;
       bench/README.md, "the seventh quiet window") */
    e = getenv("WICK_X_BLK");
    g->x_blk_off = !(e && !strcmp(e, "1"));
    *out = g;
    return WICK_OK;
}

void wick_graph_free(wick_graph *g) {
    if (!g) return;
    for (int i = 0; i < g->n; i++) {
        wick_dense_free(g->nodes[i].plan_full);
        wick_dense_free(g->nodes[i].plan_part);
        wick_conv_free(g->nodes[i].cplan_full);
        wick_conv_free(g->nodes[i].cplan_part);
    }
    wick_free(g->nodes);
    wick_free(g->arena);
    wick_free(g->scratch);
    wick_free(g->bn_buf);
    wick_free(g);
}

/* Records a failure once: the first error is the one reported. */
static wick_node graph_error(wick_graph *g, wick_status s) {
    if (g->err == WICK_OK) g->err = s;
    return -1;
}

static int valid(wick_graph *g, wick_node a) {
    return g->err == WICK_OK && a >= 0 && a < g->n;
}

static wick_node add_node(wick_graph *g, op_kind op, const char *name, int rows, int cols,
                          int batched) {
    if (g->err != WICK_OK) return -1;
    if (g->compiled) {
        wick_fail(WICK_EINVAL, "graph: node '%s' added after compile", name ? name : "");
        return graph_error(g, WICK_EINVAL);
    }
    if (rows < 1 || cols < 1) {
        wick_fail(WICK_ESHAPE, "graph: node '%s' has empty shape [%d, %d]", name ? name : "", rows, cols);
        return graph_error(g, WICK_ESHAPE);
    }
    if (g->n == g->cap) {
        int cap = g->cap ? 2 * g->cap : 32;
        node *nn = wick_realloc(g->nodes, (size_t)cap * sizeof *nn);
        if (!nn) {
            wick_fail(WICK_ENOMEM, "graph: out of memory");
            return graph_error(g, WICK_ENOMEM);
        }
        g->nodes = nn;
        g->cap = cap;
    }
    node *nd = &g->nodes[g->n];
    memset(nd, 0, sizeof *nd);
    nd->op = op;
    nd->rows = rows;
    nd->cols = cols;
    nd->batched = batched;
    nd->needs_grad = op == OP_PARAM;
    if (name) snprintf(nd->name, sizeof nd->name, "%s", name);
    return g->n++;
}

/* Adds a node computed from inputs, inheriting needs_grad. */
static wick_node add_op(wick_graph *g, op_kind op, int rows, int cols, int batched, int n_in,
                        wick_node a, wick_node b, wick_node c) {
    wick_node ins[3] = {a, b, c};
    for (int i = 0; i < n_in; i++)
        if (!valid(g, ins[i])) {
            if (g->err == WICK_OK) {
                wick_fail(WICK_EINVAL, "graph: input %d of a new node is not a node", ins[i]);
                graph_error(g, WICK_EINVAL);
            }
            return -1;
        }
    wick_node id = add_node(g, op, NULL, rows, cols, batched);
    if (id < 0) return -1;
    node *nd = &g->nodes[id];
    nd->n_in = n_in;
    for (int i = 0; i < n_in; i++) {
        nd->in[i] = ins[i];
        if (g->nodes[ins[i]].needs_grad) nd->needs_grad = 1;
    }
    return id;
}

/* Element-wise ops keep their input's image shape. */
static void keep_image(wick_graph *g, wick_node id, wick_node from) {
    g->nodes[id].C = g->nodes[from].C;
    g->nodes[id].H = g->nodes[from].H;
    g->nodes[id].W = g->nodes[from].W;
}

static wick_node shape_error(wick_graph *g, const char *op, wick_node a, wick_node b) {
    node *x = &g->nodes[a], *y = &g->nodes[b];
    wick_fail(WICK_ESHAPE, "graph: %s of [%d, %d] ('%s') and [%d, %d] ('%s')", op, x->rows,
              x->cols, x->name, y->rows, y->cols, y->name);
    return graph_error(g, WICK_ESHAPE);
}

wick_node wick_g_input(wick_graph *g, const char *name, int cols) {
    return add_node(g, OP_INPUT, name, g->max_batch, cols, 1);
}

wick_node wick_g_labels(wick_graph *g, const char *name) {
    return add_node(g, OP_LABELS, name, g->max_batch, 1, 1);
}

wick_node wick_g_param(wick_graph *g, const char *name, int rows, int cols) {
    return add_node(g, OP_PARAM, name, rows, cols, 0);
}

wick_node wick_g_matmul(wick_graph *g, wick_node a, wick_node b, int trans_b) {
    if (!valid(g, a) || !valid(g, b)) return -1;
    node *x = &g->nodes[a], *y = &g->nodes[b];
    int k = trans_b ? y->cols : y->rows, n = trans_b ? y->rows : y->cols;
    if (x->cols != k || y->batched) return shape_error(g, "matmul", a, b);
    wick_node id = add_op(g, OP_MATMUL, x->rows, n, x->batched, 2, a, b, 0);
    if (id >= 0) g->nodes[id].trans_b = trans_b;
    return id;
}

wick_node wick_g_bias(wick_graph *g, wick_node x, wick_node b) {
    if (!valid(g, x) || !valid(g, b)) return -1;
    if (g->nodes[b].rows != 1 || g->nodes[b].cols != g->nodes[x].cols || g->nodes[b].batched)
        return shape_error(g, "bias add", x, b);
    return add_op(g, OP_BIAS, g->nodes[x].rows, g->nodes[x].cols, g->nodes[x].batched, 2, x, b, 0);
}

wick_node wick_g_act(wick_graph *g, wick_node x, wick_act act) {
    if (!valid(g, x)) return -1;
    if ((unsigned)act.kind >= WICK_ACT_COUNT) {
        wick_fail(WICK_EINVAL, "graph: unknown activation %d", (int)act.kind);
        return graph_error(g, WICK_EINVAL);
    }
    wick_node id = add_op(g, OP_ACT, g->nodes[x].rows, g->nodes[x].cols, g->nodes[x].batched, 1, x, 0, 0);
    if (id >= 0) {
        g->nodes[id].act = act;
        keep_image(g, id, x);
    }
    return id;
}

wick_node wick_g_dense(wick_graph *g, wick_node x, wick_node W, wick_node b, wick_act act) {
    if (!valid(g, x) || !valid(g, W) || !valid(g, b)) return -1;
    node *xn = &g->nodes[x], *wn = &g->nodes[W], *bn = &g->nodes[b];
    if (wn->cols != xn->cols || wn->batched) return shape_error(g, "dense (x W^T)", x, W);
    if (bn->rows != 1 || bn->cols != wn->rows || bn->batched) return shape_error(g, "dense bias", W, b);
    if ((unsigned)act.kind >= WICK_ACT_COUNT) {
        wick_fail(WICK_EINVAL, "graph: unknown activation %d", (int)act.kind);
        return graph_error(g, WICK_EINVAL);
    }
    wick_node id = add_op(g, OP_DENSE, xn->rows, wn->rows, xn->batched, 3, x, W, b);
    if (id >= 0) g->nodes[id].act = act;
    return id;
}

static wick_node elementwise(wick_graph *g, op_kind op, const char *what, wick_node a, wick_node b) {
    if (!valid(g, a) || !valid(g, b)) return -1;
    node *x = &g->nodes[a], *y = &g->nodes[b];
    if (x->rows != y->rows || x->cols != y->cols || x->batched != y->batched)
        return shape_error(g, what, a, b);
    wick_node id = add_op(g, op, x->rows, x->cols, x->batched, 2, a, b, 0);
    if (id >= 0) keep_image(g, id, g->nodes[a].C > 0 ? a : b);
    return id;
}

wick_node wick_g_add(wick_graph *g, wick_node a, wick_node b) { return elementwise(g, OP_ADD, "add", a, b); }
wick_node wick_g_mul(wick_graph *g, wick_node a, wick_node b) { return elementwise(g, OP_MUL, "mul", a, b); }

wick_node wick_g_scale(wick_graph *g, wick_node a, double c) {
    if (!valid(g, a)) return -1;
    wick_node id = add_op(g, OP_SCALE, g->nodes[a].rows, g->nodes[a].cols, g->nodes[a].batched, 1, a, 0, 0);
    if (id >= 0) {
        g->nodes[id].scalar = c;
        keep_image(g, id, a);
    }
    return id;
}

wick_node wick_g_sum(wick_graph *g, wick_node x) { return valid(g, x) ? add_op(g, OP_SUM, 1, 1, 0, 1, x, 0, 0) : -1; }
wick_node wick_g_mean(wick_graph *g, wick_node x) { return valid(g, x) ? add_op(g, OP_MEAN, 1, 1, 0, 1, x, 0, 0) : -1; }

wick_node wick_g_softmax(wick_graph *g, wick_node x) {
    if (!valid(g, x)) return -1;
    return add_op(g, OP_SOFTMAX, g->nodes[x].rows, g->nodes[x].cols, g->nodes[x].batched, 1, x, 0, 0);
}

wick_node wick_g_log_softmax(wick_graph *g, wick_node x) {
    if (!valid(g, x)) return -1;
    return add_op(g, OP_LOG_SOFTMAX, g->nodes[x].rows, g->nodes[x].cols, g->nodes[x].batched, 1, x, 0, 0);
}

wick_node wick_g_mse(wick_graph *g, wick_node pred, wick_node target) {
    if (!valid(g, pred) || !valid(g, target)) return -1;
    node *p = &g->nodes[pred], *t = &g->nodes[target];
    if (p->rows != t->rows || p->cols != t->cols || p->batched != t->batched)
        return shape_error(g, "mse", pred, target);
    return add_op(g, OP_MSE, 1, 1, 0, 2, pred, target, 0);
}

wick_node wick_g_cross_entropy(wick_graph *g, wick_node logits, wick_node labels, double smoothing) {
    if (!valid(g, logits) || !valid(g, labels)) return -1;
    if (g->nodes[labels].op != OP_LABELS || !g->nodes[logits].batched)
        return shape_error(g, "cross-entropy (logits, labels)", logits, labels);
    if (!(smoothing >= 0 && smoothing < 1)) {
        wick_fail(WICK_EINVAL, "graph: label smoothing %g outside [0, 1)", smoothing);
        return graph_error(g, WICK_EINVAL);
    }
    wick_node id = add_op(g, OP_XENT, 1, 1, 0, 2, logits, labels, 0);
    if (id >= 0) g->nodes[id].scalar = smoothing;
    return id;
}

/* ---- images, convolutions, normalisation, regularisers ----------------- */

static wick_node op_error(wick_graph *g, wick_status s, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static wick_node op_error(wick_graph *g, wick_status s, const char *fmt, ...) {
    char msg[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    wick_fail(s, "graph: %s", msg);
    return graph_error(g, s);
}

static void set_image(node *nd, int C, int H, int W) {
    nd->C = C;
    nd->H = H;
    nd->W = W;
}

wick_node wick_g_input_image(wick_graph *g, const char *name, int C, int H, int W) {
    if (g->err != WICK_OK) return -1;
    if (C < 1 || H < 1 || W < 1 || (long long)C * H * W > INT_MAX)
        return op_error(g, WICK_ESHAPE, "input image '%s': bad shape %dx%dx%d", name ? name : "", C, H, W);
    wick_node id = add_node(g, OP_INPUT, name, g->max_batch, C * H * W, 1);
    if (id >= 0) set_image(&g->nodes[id], C, H, W);
    return id;
}

static wick_node view(wick_graph *g, wick_node x, int C, int H, int W) {
    node *xn = &g->nodes[x];
    if (xn->op == OP_LABELS || (xn->op == OP_STATE && xn->i64))
        return op_error(g, WICK_EDTYPE, "view of '%s': not a floating-point node", xn->name);
    wick_node id = add_op(g, OP_VIEW, xn->rows, xn->cols, xn->batched, 1, x, 0, 0);
    if (id >= 0) set_image(&g->nodes[id], C, H, W);
    return id;
}

wick_node wick_g_as_image(wick_graph *g, wick_node x, int C, int H, int W) {
    if (!valid(g, x)) return -1;
    if (C < 1 || H < 1 || W < 1 || (long long)C * H * W != g->nodes[x].cols)
        return op_error(g, WICK_ESHAPE, "as_image: %dx%dx%d does not hold the %d columns of '%s'", C, H,
                        W, g->nodes[x].cols, g->nodes[x].name);
    return view(g, x, C, H, W);
}

wick_node wick_g_flatten(wick_graph *g, wick_node x) {
    return valid(g, x) ? view(g, x, 0, 0, 0) : -1;
}

int wick_graph_shape(const wick_graph *g, wick_node n, int chw[3]) {
    chw[0] = chw[1] = chw[2] = 0;
    if (n < 0 || n >= g->n) return 0;
    const node *nd = &g->nodes[n];
    if (nd->C > 0) {
        chw[0] = nd->C, chw[1] = nd->H, chw[2] = nd->W;
        return 1;
    }
    chw[0] = nd->cols, chw[1] = chw[2] = 1;
    return 0;
}

/* The image behind x, or an error naming the op. */
static int need_image(wick_graph *g, const char *op, wick_node x) {
    node *xn = &g->nodes[x];
    if (xn->C > 0) return 1;
    op_error(g, WICK_ESHAPE, "%s: input '%s' [%d, %d] is not an image (wick_g_input_image or wick_g_as_image)",
             op, xn->name, xn->rows, xn->cols);
    return 0;
}

static wick_conv2d_params conv_defaults(const wick_conv2d_params *p, int pool) {
    wick_conv2d_params q = *p;
    if (q.stride_h == 0) q.stride_h = pool ? q.kh : 1;
    if (q.stride_w == 0) q.stride_w = pool ? q.kw : 1;
    if (q.dil_h == 0) q.dil_h = 1;
    if (q.dil_w == 0) q.dil_w = 1;
    if (q.groups == 0) q.groups = 1;
    return q;
}

/* Checks a window's geometry on an H x W input and gives the output size. */
static int window_out(wick_graph *g, const char *op, const wick_conv2d_params *q, int H, int W,
                      int *OH, int *OW) {
    if (q->kh < 1 || q->kw < 1 || q->stride_h < 1 || q->stride_w < 1 || q->pad_h < 0 || q->pad_w < 0 ||
        q->dil_h < 1 || q->dil_w < 1 || q->groups < 1) {
        op_error(g, WICK_EINVAL,
                 "%s: kernel %dx%d, stride %dx%d, padding %dx%d, dilation %dx%d, groups %d: each must be "
                 ">= 1 (padding >= 0)", op, q->kh, q->kw, q->stride_h, q->stride_w, q->pad_h, q->pad_w,
                 q->dil_h, q->dil_w, q->groups);
        return 0;
    }
    long eh = (long)q->dil_h * (q->kh - 1) + 1, ew = (long)q->dil_w * (q->kw - 1) + 1;
    long ph = H + 2L * q->pad_h, pw = W + 2L * q->pad_w;
    if (eh > ph || ew > pw) {
        op_error(g, WICK_ESHAPE, "%s: kernel %dx%d with dilation %dx%d larger than the padded input %ldx%ld",
                 op, q->kh, q->kw, q->dil_h, q->dil_w, ph, pw);
        return 0;
    }
    *OH = (int)((ph - eh) / q->stride_h + 1);
    *OW = (int)((pw - ew) / q->stride_w + 1);
    return 1;
}

wick_node wick_g_conv2d(wick_graph *g, wick_node x, wick_node W, wick_node b, const wick_conv2d_params *p) {
    if (!valid(g, x) || !valid(g, W) || (b != -1 && !valid(g, b))) return -1;
    if (!need_image(g, "conv2d", x)) return -1;
    wick_conv2d_params q = conv_defaults(p, 0);
    node *xn = &g->nodes[x], *wn = &g->nodes[W];
    int C = xn->C, OH, OW;
    if (!window_out(g, "conv2d", &q, xn->H, xn->W, &OH, &OW)) return -1;
    if (C % q.groups)
        return op_error(g, WICK_ESHAPE, "conv2d: %d input channels not divisible by %d groups", C, q.groups);
    int OUT = wn->rows;
    long kg = (long)(C / q.groups) * q.kh * q.kw;
    if (wn->batched || wn->cols != kg || OUT % q.groups)
        return op_error(g, WICK_ESHAPE,
                        "conv2d: weight '%s' [%d, %d] should be [OUT, C/groups*kh*kw] = [OUT, %d*%d*%d] "
                        "with OUT divisible by %d groups", wn->name, wn->rows, wn->cols, C / q.groups, q.kh,
                        q.kw, q.groups);
    if (b != -1 && (g->nodes[b].rows != 1 || g->nodes[b].cols != OUT || g->nodes[b].batched))
        return op_error(g, WICK_ESHAPE, "conv2d: bias '%s' [%d, %d] should be [1, %d]", g->nodes[b].name,
                        g->nodes[b].rows, g->nodes[b].cols, OUT);
    if ((long long)OUT * OH * OW > INT_MAX)
        return op_error(g, WICK_ESHAPE, "conv2d: output %dx%dx%d too large", OUT, OH, OW);
    wick_node id = add_op(g, OP_CONV2D, xn->rows, OUT * OH * OW, xn->batched, b == -1 ? 2 : 3, x, W, b);
    if (id < 0) return -1;
    set_image(&g->nodes[id], OUT, OH, OW);
    g->nodes[id].conv = q;
    return id;
}

static wick_node pool(wick_graph *g, op_kind op, const char *what, wick_node x, const wick_conv2d_params *p) {
    if (!valid(g, x) || !need_image(g, what, x)) return -1;
    wick_conv2d_params q = conv_defaults(p, 1);
    node *xn = &g->nodes[x];
    int OH, OW;
    if (q.groups != 1) return op_error(g, WICK_EINVAL, "%s: groups %d (pooling has none)", what, q.groups);
    if (op == OP_AVGPOOL2D && (q.dil_h != 1 || q.dil_w != 1))
        return op_error(g, WICK_EINVAL, "%s: dilation %dx%d (average pooling has none)", what, q.dil_h, q.dil_w);
    if (!window_out(g, what, &q, xn->H, xn->W, &OH, &OW)) return -1;
    if (2 * q.pad_h > q.kh || 2 * q.pad_w > q.kw)
        return op_error(g, WICK_EINVAL, "%s: padding %dx%d more than half the kernel %dx%d", what, q.pad_h,
                        q.pad_w, q.kh, q.kw);
    wick_node id = add_op(g, op, xn->rows, xn->C * OH * OW, xn->batched, 1, x, 0, 0);
    if (id < 0) return -1;
    set_image(&g->nodes[id], xn->C, OH, OW);
    g->nodes[id].conv = q;
    return id;
}

wick_node wick_g_maxpool2d(wick_graph *g, wick_node x, const wick_conv2d_params *p) {
    return pool(g, OP_MAXPOOL2D, "maxpool2d", x, p);
}

wick_node wick_g_avgpool2d(wick_graph *g, wick_node x, const wick_conv2d_params *p) {
    return pool(g, OP_AVGPOOL2D, "avgpool2d", x, p);
}

wick_node wick_g_global_avgpool(wick_graph *g, wick_node x) {
    if (!valid(g, x) || !need_image(g, "global_avgpool", x)) return -1;
    node *xn = &g->nodes[x];
    wick_node id = add_op(g, OP_GLOBAL_AVGPOOL, xn->rows, xn->C, xn->batched, 1, x, 0, 0);
    if (id >= 0) set_image(&g->nodes[id], g->nodes[x].C, 1, 1);
    return id;
}

wick_node wick_g_state(wick_graph *g, const char *name, int rows, int cols, double init) {
    wick_node id = add_node(g, OP_STATE, name, rows, cols, 0);
    if (id >= 0) {
        g->nodes[id].init = init;
        g->nodes[id].has_init = 1;
    }
    return id;
}

wick_node wick_g_counter(wick_graph *g, const char *name) {
    wick_node id = add_node(g, OP_STATE, name, 1, 1, 0);
    if (id >= 0) g->nodes[id].i64 = 1;
    return id;
}

/* Channels of a batch norm's input: per channel of an image, per column else. */
static int bn_channels(const node *xn) { return xn->C > 0 ? xn->C : xn->cols; }

wick_node wick_g_batchnorm(wick_graph *g, wick_node x, wick_node gamma, wick_node beta,
                           wick_node running_mean, wick_node running_var, wick_node num_batches_tracked,
                           double momentum, double eps) {
    if (!valid(g, x) || !valid(g, gamma) || !valid(g, beta)) return -1;
    node *xn = &g->nodes[x];
    int C = bn_channels(xn);
    wick_node pv[2] = {gamma, beta};
    for (int k = 0; k < 2; k++) {
        node *pn = &g->nodes[pv[k]];
        if (pn->rows != 1 || pn->cols != C || pn->batched)
            return op_error(g, WICK_ESHAPE, "batchnorm: %s '%s' [%d, %d] should be [1, %d] for input '%s' [%d, %d]",
                            k ? "beta" : "gamma", pn->name, pn->rows, pn->cols, C, xn->name, xn->rows, xn->cols);
    }
    if ((running_mean == -1) != (running_var == -1) || (running_mean == -1 && num_batches_tracked != -1))
        return op_error(g, WICK_EINVAL, "batchnorm: running mean and variance (and counter) go together");
    wick_node st[3] = {running_mean, running_var, num_batches_tracked};
    for (int k = 0; k < 3; k++) {
        if (st[k] == -1) continue;
        if (!valid(g, st[k])) {
            if (g->err == WICK_OK) op_error(g, WICK_EINVAL, "batchnorm: state %d is not a node", st[k]);
            return -1;
        }
        node *sn = &g->nodes[st[k]];
        int ok = k == 2 ? sn->op == OP_STATE && sn->i64
                        : sn->op == OP_STATE && !sn->i64 && sn->rows == 1 && sn->cols == C;
        if (!ok)
            return op_error(g, WICK_ESHAPE, "batchnorm: '%s' should be %s", sn->name,
                            k == 2 ? "a counter (wick_g_counter)" : "a state [1, C] (wick_g_state)");
    }
    if (!(momentum >= 0 && momentum <= 1) || !(eps > 0))
        return op_error(g, WICK_EINVAL, "batchnorm: momentum %g outside [0, 1] or eps %g not > 0", momentum, eps);
    if (!xn->batched && (long)xn->rows * xn->cols / C < 2)
        return op_error(g, WICK_ESHAPE, "batchnorm: input '%s' [%d, %d] has one value per channel", xn->name,
                        xn->rows, xn->cols);
    wick_node id = add_op(g, OP_BATCHNORM, xn->rows, xn->cols, xn->batched, 3, x, gamma, beta);
    if (id < 0) return -1;
    node *nd = &g->nodes[id];
    keep_image(g, id, x);
    for (int k = 0; k < 3; k++) nd->state[k] = st[k];
    nd->scalar = momentum;
    nd->scalar2 = eps;
    return id;
}

wick_node wick_g_batchnorm_named(wick_graph *g, const char *prefix, wick_node x, double momentum, double eps) {
    if (!valid(g, x)) return -1;
    int C = bn_channels(&g->nodes[x]);
    static const char *suffix[5] = {"weight", "bias", "running_mean", "running_var", "num_batches_tracked"};
    wick_node n[5];
    for (int k = 0; k < 5; k++) {
        char name[64];
        if (snprintf(name, sizeof name, "%s.%s", prefix, suffix[k]) >= (int)sizeof name)
            return op_error(g, WICK_EINVAL, "batchnorm: prefix '%s' too long", prefix);
        if (k < 2) {
            n[k] = wick_g_param(g, name, 1, C);
            if (n[k] >= 0) {
                g->nodes[n[k]].init = k == 0;
                g->nodes[n[k]].has_init = 1;
            }
        } else if (k < 4) {
            n[k] = wick_g_state(g, name, 1, C, k == 3);
        } else {
            n[k] = wick_g_counter(g, name);
        }
    }
    return wick_g_batchnorm(g, x, n[0], n[1], n[2], n[3], n[4], momentum, eps);
}

wick_node wick_g_dropout(wick_graph *g, wick_node x, double p) {
    if (!valid(g, x)) return -1;
    if (!(p >= 0 && p <= 1)) return op_error(g, WICK_EINVAL, "dropout: probability %g outside [0, 1]", p);
    node *xn = &g->nodes[x];
    wick_node id = add_op(g, OP_DROPOUT, xn->rows, xn->cols, xn->batched, 1, x, 0, 0);
    if (id < 0) return -1;
    keep_image(g, id, x);
    g->nodes[id].scalar = p;
    return id;
}

wick_node wick_g_gaussian_noise(wick_graph *g, wick_node x, double std) {
    if (!valid(g, x)) return -1;
    if (!(std >= 0 && isfinite(std)))
        return op_error(g, WICK_EINVAL, "gaussian_noise: standard deviation %g not >= 0", std);
    node *xn = &g->nodes[x];
    wick_node id = add_op(g, OP_GAUSS_NOISE, xn->rows, xn->cols, xn->batched, 1, x, 0, 0);
    if (id < 0) return -1;
    keep_image(g, id, x);
    g->nodes[id].scalar = std;
    return id;
}

wick_node wick_g_l1(wick_graph *g, wick_node x) {
    return valid(g, x) ? add_op(g, OP_L1, 1, 1, 0, 1, x, 0, 0) : -1;
}

wick_status wick_graph_set_conv_fast(wick_graph *g, int on) {
    if (g->compiled) return wick_fail(WICK_EINVAL, "graph: set_conv_fast after compile");
    g->conv_general = on == 0;
    return WICK_OK;
}

wick_status graph_set_bn_sum(wick_graph *g, void (*sum)(void *user, double *x, int n), void *user,
                             int *bn_nodes) {
    int C = 0, k = 0;
    for (int i = 0; i < g->n; i++)
        if (g->nodes[i].op == OP_BATCHNORM) {
            int c = bn_channels(&g->nodes[g->nodes[i].in[0]]);
            if (c > C) C = c;
            k++;
        }
    if (bn_nodes) *bn_nodes = k;
    wick_free(g->bn_buf);
    g->bn_buf = NULL;
    g->bn_sum = NULL;
    if (!sum || !k) return WICK_OK;
    if (!(g->bn_buf = wick_malloc((2 * (size_t)C + 1) * sizeof *g->bn_buf)))
        return wick_fail(WICK_ENOMEM, "graph: out of memory");
    g->bn_sum = sum;
    g->bn_user = user;
    return WICK_OK;
}

void wick_graph_set_training(wick_graph *g, int on) { g->training = on != 0; }
int wick_graph_training(const wick_graph *g) { return g->training; }
void wick_graph_set_seed(wick_graph *g, uint64_t seed) { g->seed = seed; }
void wick_graph_set_step(wick_graph *g, uint64_t step) { g->step = step; }
uint64_t wick_graph_step(const wick_graph *g) { return g->step; }

wick_node wick_graph_find(const wick_graph *g, const char *name) {
    if (!name || !*name) return -1;
    for (int i = 0; i < g->n; i++)
        if (!strcmp(g->nodes[i].name, name)) return i;
    return -1;
}

int wick_graph_states(const wick_graph *g, wick_node *out, int max) {
    int k = 0;
    for (int i = 0; i < g->n; i++)
        if (g->nodes[i].op == OP_STATE) {
            if (out && k < max) out[k] = i;
            k++;
        }
    return k;
}

wick_dtype wick_graph_dtype(const wick_graph *g, wick_node n) {
    if (n >= 0 && n < g->n) {
        if (g->nodes[n].op == OP_LABELS) return WICK_DT_I32;
        if (g->nodes[n].op == OP_STATE && g->nodes[n].i64) return WICK_DT_I64;
    }
    return g->dt;
}

/* ---- compile ----------------------------------------------------------- */

static size_t align64(size_t n) { return (n + 63) & ~(size_t)63; }

/* A conv node's backend plan for `rows` samples.  ReLU is not fused: the
 * graph's ReLU is a node of its own.  A geometry the backend refuses leaves
 * *out NULL, and the node on the general path; only running out of memory
 * is an error. */
static wick_status conv_plan_new(const wick_graph *g, const node *nd, int rows, wick_conv **out) {
    const node *x = &g->nodes[nd->in[0]];
    wick_status s = wick_conv_new(out, rows, x->C, x->H, x->W, nd->C, &nd->conv, 0);
    if (s != WICK_OK) *out = NULL;
    return s == WICK_ENOMEM ? s : WICK_OK;
}

wick_status wick_graph_compile(wick_graph *g) {
    if (g->err != WICK_OK) return g->err;
    if (g->compiled) return WICK_OK;
    /* consumers that need a gradient from each node */
    for (int i = 0; i < g->n; i++)
        for (int k = 0; k < g->nodes[i].n_in; k++)
            if (g->nodes[i].needs_grad) g->nodes[g->nodes[i].in[k]].consumers++;
    /* A ReLU right after a batch norm that nothing else reads is done by the
       batch norm, in the pass that writes its output, and the ReLU node then
       shares the batch norm's values and gradient (a separate pass each way
       is memory traffic only; bench/README.md, "CNN step"). */
    int *users = wick_calloc(g->n ? g->n : 1, sizeof *users);
    if (!users) return g->err = wick_fail(WICK_ENOMEM, "graph: out of memory");
    for (int i = 0; i < g->n; i++)
        for (int k = 0; k < g->nodes[i].n_in; k++) users[g->nodes[i].in[k]]++;
    for (int i = 0; i < g->n; i++) {
        node *nd = &g->nodes[i], *in = nd->n_in ? &g->nodes[nd->in[0]] : NULL;
        if (nd->op == OP_ACT && nd->act.kind == WICK_ACT_RELU && in->op == OP_BATCHNORM &&
            users[nd->in[0]] == 1 && in->consumers == nd->needs_grad)
            nd->relu_fused = in->relu_fused = 1;
    }
    /* And a 2x2 stride-2 max pool that is that ReLU's one reader: the batch
       norm's forward normalises, rectifies and pools in one pass, writing the
       pooled values and argmax only, and its backward takes the pool's
       gradient and argmax (bench/README.md, "CNN step"). */
    for (int i = 0; i < g->n; i++) {
        node *p = &g->nodes[i], *a = p->n_in ? &g->nodes[p->in[0]] : NULL;
        if (p->op != OP_MAXPOOL2D || a->op != OP_ACT || !a->relu_fused || users[p->in[0]] != 1 ||
            a->consumers != p->needs_grad)
            continue;
        const wick_conv2d_params *k = &p->conv;
        if (k->kh != 2 || k->kw != 2 || k->stride_h != 2 || k->stride_w != 2 || k->pad_h || k->pad_w ||
            k->dil_h != 1 || k->dil_w != 1 || p->H != a->H / 2 || p->W != a->W / 2)
            continue;
        g->nodes[a->in[0]].bn_pool = i;
        p->bn_pool = a->in[0];
        /* And the conv that that batch norm alone reads: its output may stay
           in the layout its oneDNN product writes (nChw8c), which the batch
           norm reads eight channels at a time, instead of being transposed
           to NCHW and back (bench/README.md, "conv2's output in nChw8c") */
        int bi = a->in[0], ci = g->nodes[bi].in[0];
        if (g->nodes[ci].op == OP_CONV2D && users[ci] == 1 && g->nodes[ci].C % 8 == 0)
            g->nodes[ci].conv_blk = bi;
        /* And the conv that alone reads the pool: its input may come in
           nChw8c too, where c1_fwd writes the pool (bench/README.md,
           "conv2's input in nChw8c") */
        for (int j = i + 1; j < g->n && users[i] == 1 && p->C % 8 == 0; j++)
            if (g->nodes[j].op == OP_CONV2D && g->nodes[j].in[0] == i) p->x_blk = j;
    }
    wick_free(users);
    /* Pass 1 counts bytes, pass 2 hands out pointers into the arena.  A view
       takes its input's values, and its gradient too when it is the input's
       only consumer (else its backward adds its gradient in); so does a
       fused ReLU. */
    size_t total = 0;
    for (int pass = 0; pass < 2; pass++) {
        char *base = pass ? g->arena : NULL;
        size_t off = 0;
        for (int i = 0; i < g->n; i++) {
            node *nd = &g->nodes[i];
            size_t es = nd->op == OP_LABELS ? sizeof(int32_t) : nd->i64 ? sizeof(int64_t) : g->esize;
            size_t e = node_elems(nd), aux2 = 0, aux = op_aux_elems(g, nd, &aux2);
            if (nd->op == OP_VIEW || (nd->relu_fused && nd->op == OP_ACT)) {
                node *in = &g->nodes[nd->in[0]];
                nd->grad_alias = nd->needs_grad && in->consumers == 1;
                if (pass) nd->val = in->val;
                if (nd->grad_alias) {
                    if (pass) nd->grad = in->grad;
                } else if (nd->needs_grad) {
                    if (pass) nd->grad = base + off;
                    off += align64(e * es);
                }
                continue;
            }
            if (pass) nd->val = base + off;
            off += align64(e * es);
            if (nd->needs_grad) {
                if (pass) nd->grad = base + off;
                off += align64(e * es);
            }
            if (aux) {
                if (pass) nd->aux = base + off;
                off += align64(aux * g->esize);
            }
            if (aux2) {
                if (pass) nd->aux2 = base + off;
                off += align64(aux2 * g->esize);
            }
        }
        if (!pass) {
            total = off ? off : 64;
            /* huge pages: a training step streams the weights and their
               gradients, megabytes of them (core/alloc.c) */
            g->arena = wick_huge_alloc(total);
            if (!g->arena)
                return g->err = wick_fail(WICK_ENOMEM, "graph: cannot allocate %zu bytes", total);
            memset(g->arena, 0, total);
        }
    }
    g->arena_bytes = total;
    /* initial values: batch norm's weight 1, running variance 1 */
    for (int i = 0; i < g->n; i++) {
        node *nd = &g->nodes[i];
        if (!nd->has_init) continue;
        for (size_t j = 0; j < node_elems(nd); j++) {
            if (g->dt == WICK_DT_F32) ((float *)nd->val)[j] = (float)nd->init;
            else ((double *)nd->val)[j] = nd->init;
        }
    }
    /* the ops' shared work space, one slot per thread of today's count */
    g->scratch_threads = wick_threads() > 0 ? wick_threads() : 1;
    size_t sb = 0;
    for (int i = 0; i < g->n; i++) {
        size_t b = op_scratch_bytes(g, &g->nodes[i], g->scratch_threads);
        sb = b > sb ? b : sb;
    }
    if (sb) {
        g->scratch = wick_aligned_alloc(sb);
        if (!g->scratch) return g->err = wick_fail(WICK_ENOMEM, "graph: cannot allocate %zu bytes of scratch", sb);
        g->scratch_bytes = sb;
    }
    /* dense plans for float graphs at the full batch */
    if (g->dt == WICK_DT_F32)
        for (int i = 0; i < g->n; i++) {
            node *nd = &g->nodes[i];
            if (nd->op != OP_DENSE) continue;
            wick_status s = wick_dense_new(&nd->plan_full, nd->rows, g->nodes[nd->in[0]].cols,
                                           nd->cols, nd->act.kind == WICK_ACT_RELU);
            if (s != WICK_OK) return g->err = s;
            nd->plan = nd->plan_full;
        }
    for (int i = 0; i < g->n; i++) {
        node *nd = &g->nodes[i];
        if (!op_conv_planned(g, nd)) continue;
        wick_status s = conv_plan_new(g, nd, nd->rows, &nd->cplan_full);
        if (s != WICK_OK) return g->err = s;
        nd->cplan = nd->cplan_full;
    }
    g->compiled = 1;
    return WICK_OK;
}

wick_status wick_graph_set_batch(wick_graph *g, int rows) {
    if (!g->compiled) return wick_fail(WICK_EINVAL, "graph: set_batch before compile");
    if (rows < 1 || rows > g->max_batch)
        return wick_fail(WICK_EINVAL, "graph: batch %d outside [1, %d]", rows, g->max_batch);
    if (rows == g->batch) return WICK_OK;
    for (int i = 0; i < g->n; i++) {
        node *nd = &g->nodes[i];
        if (!nd->batched) continue;
        nd->rows = rows;
        if (nd->cplan_full) {
            if (rows == g->max_batch) {
                nd->cplan = nd->cplan_full;
                continue;
            }
            if (!nd->cplan_part || nd->part_rows != rows) {   /* as dense's below */
                wick_conv_free(nd->cplan_part);
                nd->cplan_part = NULL;
                nd->part_rows = rows;
                wick_status s = conv_plan_new(g, nd, rows, &nd->cplan_part);
                if (s != WICK_OK) return s;
            }
            nd->cplan = nd->cplan_part;
            continue;
        }
        if (nd->op != OP_DENSE || g->dt != WICK_DT_F32) continue;
        if (rows == g->max_batch) {
            nd->plan = nd->plan_full;
            continue;
        }
        /* A second plan for the odd batch (an epoch's last): made once, kept. */
        if (!nd->plan_part || nd->part_rows != rows) {
            wick_dense_free(nd->plan_part);
            nd->plan_part = NULL;
            nd->part_rows = rows;
            wick_status s = wick_dense_new(&nd->plan_part, rows, g->nodes[nd->in[0]].cols, nd->cols,
                                           nd->act.kind == WICK_ACT_RELU);
            if (s != WICK_OK) return s;
        }
        nd->plan = nd->plan_part;
    }
    g->batch = rows;
    return WICK_OK;
}

/* ---- accessors --------------------------------------------------------- */

int wick_graph_batch(const wick_graph *g) { return g->batch; }
int wick_graph_rows(const wick_graph *g, wick_node n) { return n >= 0 && n < g->n ? g->nodes[n].rows : 0; }
int wick_graph_cols(const wick_graph *g, wick_node n) { return n >= 0 && n < g->n ? g->nodes[n].cols : 0; }
const char *wick_graph_name(const wick_graph *g, wick_node n) { return n >= 0 && n < g->n ? g->nodes[n].name : ""; }
void *wick_graph_value(wick_graph *g, wick_node n) {
    if (n < 0 || n >= g->n) return NULL;
    if (g->nodes[n].op == OP_PARAM) g->param_writes++;   /* the caller may write it */
    if (g->nodes[n].val_blk) op_conv_unblock(g, &g->nodes[n]);   /* the caller reads NCHW */
    return g->nodes[n].val;
}
void *wick_graph_grad(wick_graph *g, wick_node n) {
    if (n < 0 || n >= g->n) return NULL;
    if (g->nodes[n].grad_blk == 2) op_conv_dy_unblock(g, &g->nodes[n]);   /* the caller reads NCHW */
    if (g->nodes[n].op == OP_MAXPOOL2D && g->nodes[n].grad_blk) op_pool_grad_unblock(g, &g->nodes[n]);
    return g->nodes[n].grad;
}

int wick_graph_params(const wick_graph *g, wick_node *out, int max) {
    int k = 0;
    for (int i = 0; i < g->n; i++)
        if (g->nodes[i].op == OP_PARAM) {
            if (out && k < max) out[k] = i;
            k++;
        }
    return k;
}

const char *wick_graph_backend(const wick_graph *g) {
    for (int i = 0; i < g->n; i++)
        if (g->nodes[i].plan_full) return wick_dense_describe(g->nodes[i].plan_full);
    return g->dt == WICK_DT_F64 ? "openblas (float64)" : "openblas";
}

/* ---- execution --------------------------------------------------------- */

void wick_graph_forward_to(wick_graph *g, wick_node n) {
    const unsigned fp = wick_fp_enter();   /* wick.h, "Floating-point mode" */
    g->fwd_end = n;   /* a batch norm fused with a pool beyond n writes its own values */
    for (int i = 0; i <= n && i < g->n; i++) {
        node *nd = &g->nodes[i];
        if (!op_is_leaf(nd->op)) op_forward(g, nd);
    }
    if (g->training) g->step++;   /* the next forward draws new masks */
    wick_fp_leave(fp);
}

void wick_graph_forward(wick_graph *g) { wick_graph_forward_to(g, g->n - 1); }

/* Runs backward from `out`, whose gradient the caller has set. */
static void backward_path(wick_graph *g, wick_node out, wick_grad_ready_fn ready, void *user);
static void backward_from(wick_graph *g, wick_node out, wick_grad_ready_fn ready, void *user) {
    const unsigned fp = wick_fp_enter();   /* wick.h, "Floating-point mode" */
    backward_path(g, out, ready, user);
    wick_fp_leave(fp);
}

static void backward_path(wick_graph *g, wick_node out, wick_grad_ready_fn ready, void *user) {
    /* Which nodes lie on a path to `out`: only those take part. */
    for (int i = 0; i < g->n; i++) {
        g->nodes[i].grad_begun = 0;
        g->nodes[i].pending = -1;   /* -1: not on the path */
    }
    g->nodes[out].pending = 0;
    for (int i = out; i >= 0; i--) {
        node *nd = &g->nodes[i];
        if (nd->pending < 0 || !nd->needs_grad) continue;
        for (int k = 0; k < nd->n_in; k++) {
            node *a = &g->nodes[nd->in[k]];
            if (!a->needs_grad) continue;
            a->pending = a->pending < 0 ? 1 : a->pending + 1;
        }
    }
    g->nodes[out].grad_begun = 1;
    for (int i = out; i >= 0; i--) {
        node *nd = &g->nodes[i];
        if (nd->pending < 0 || !nd->needs_grad) continue;
        if (nd->op == OP_PARAM) continue;
        op_backward(g, nd);
        for (int k = 0; k < nd->n_in; k++) {
            node *a = &g->nodes[nd->in[k]];
            if (!a->needs_grad) continue;
            if (--a->pending == 0 && a->op == OP_PARAM && ready) ready(user, nd->in[k]);
        }
    }
    /* A parameter off the path has a zero gradient, not a stale one. */
    for (int i = 0; i < g->n; i++) {
        node *nd = &g->nodes[i];
        if (nd->op == OP_PARAM && nd->pending < 0) {
            memset(nd->grad, 0, node_elems(nd) * g->esize);
            if (ready) ready(user, i);
        }
    }
}

void wick_graph_backward(wick_graph *g, wick_node loss, wick_grad_ready_fn ready, void *user) {
    node *l = &g->nodes[loss];
    if (!l->needs_grad) return;   /* nothing upstream to differentiate */
    if (g->dt == WICK_DT_F32) ((float *)l->grad)[0] = 1.0f;
    else ((double *)l->grad)[0] = 1.0;
    backward_from(g, loss, ready, user);
}

void wick_graph_backward_seed(wick_graph *g, wick_node out, const void *seed,
                              wick_grad_ready_fn ready, void *user) {
    node *o = &g->nodes[out];
    if (!o->needs_grad) return;
    memcpy(o->grad, seed, node_elems(o) * g->esize);
    backward_from(g, out, ready, user);
}
