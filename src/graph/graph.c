/* graph.c — building, compiling and running the static graph.
 *
 * Nodes are appended in creation order, which is a topological order: every
 * input exists before the node that uses it.  So forward is one pass up the
 * array and backward one pass down it.  compile() allocates every buffer in
 * one arena; after that a step allocates nothing. */
#include "graph/graph_internal.h"
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
    *out = g;
    return WICK_OK;
}

void wick_graph_free(wick_graph *g) {
    if (!g) return;
    for (int i = 0; i < g->n; i++) {
        wick_dense_free(g->nodes[i].plan_full);
        wick_dense_free(g->nodes[i].plan_part);
    }
    wick_free(g->nodes);
    wick_free(g->arena);
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
    if (id >= 0) g->nodes[id].act = act;
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
    return add_op(g, op, x->rows, x->cols, x->batched, 2, a, b, 0);
}

wick_node wick_g_add(wick_graph *g, wick_node a, wick_node b) { return elementwise(g, OP_ADD, "add", a, b); }
wick_node wick_g_mul(wick_graph *g, wick_node a, wick_node b) { return elementwise(g, OP_MUL, "mul", a, b); }

wick_node wick_g_scale(wick_graph *g, wick_node a, double c) {
    if (!valid(g, a)) return -1;
    wick_node id = add_op(g, OP_SCALE, g->nodes[a].rows, g->nodes[a].cols, g->nodes[a].batched, 1, a, 0, 0);
    if (id >= 0) g->nodes[id].scalar = c;
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

/* ---- compile ----------------------------------------------------------- */

static size_t align64(size_t n) { return (n + 63) & ~(size_t)63; }

wick_status wick_graph_compile(wick_graph *g) {
    if (g->err != WICK_OK) return g->err;
    if (g->compiled) return WICK_OK;
    /* Pass 1 counts bytes, pass 2 hands out pointers into the arena. */
    size_t total = 0;
    for (int pass = 0; pass < 2; pass++) {
        char *base = pass ? g->arena : NULL;
        size_t off = 0;
        for (int i = 0; i < g->n; i++) {
            node *nd = &g->nodes[i];
            size_t es = nd->op == OP_LABELS ? sizeof(int32_t) : g->esize;
            size_t e = node_elems(nd), aux2 = 0, aux = op_aux_elems(g, nd, &aux2);
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
            total = off;
            /* huge pages: a training step streams the weights and their
               gradients, megabytes of them (core/alloc.c) */
            g->arena = wick_huge_alloc(total);
            if (!g->arena)
                return g->err = wick_fail(WICK_ENOMEM, "graph: cannot allocate %zu bytes", total);
            memset(g->arena, 0, total);
        }
    }
    g->arena_bytes = total;
    /* consumers that need a gradient from each node */
    for (int i = 0; i < g->n; i++)
        for (int k = 0; k < g->nodes[i].n_in; k++)
            if (g->nodes[i].needs_grad) g->nodes[g->nodes[i].in[k]].consumers++;
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
    return g->nodes[n].val;
}
void *wick_graph_grad(wick_graph *g, wick_node n) { return n >= 0 && n < g->n ? g->nodes[n].grad : NULL; }

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
    for (int i = 0; i <= n && i < g->n; i++) {
        node *nd = &g->nodes[i];
        if (nd->op > OP_PARAM) op_forward(g, nd);
    }
}

void wick_graph_forward(wick_graph *g) { wick_graph_forward_to(g, g->n - 1); }

/* Runs backward from `out`, whose gradient the caller has set. */
static void backward_from(wick_graph *g, wick_node out, wick_grad_ready_fn ready, void *user) {
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
