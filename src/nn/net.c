/* net.c — a network from a layer spec (spec.c) on the static graph: one
 * graph node (or fused node) per nn.Sequential entry, parameters and batch
 * norm state named as its state_dict, and the initialisations.
 *
 * A linear layer followed by an activation becomes one fused dense op, so a
 * spec of linear layers is exactly the graph wick_mlp_new builds and keeps
 * the chain executor's fast path. */
#include "core/core.h"
#include "nn/net.h"
#include <math.h>
#include <stdio.h>
#include <string.h>

static wick_conv2d_params window(const wick_layer *L) {
    wick_conv2d_params q;
    memset(&q, 0, sizeof q);
    q.kh = L->kh; q.kw = L->kw;
    q.stride_h = L->sh; q.stride_w = L->sw;
    q.pad_h = L->ph; q.pad_w = L->pw;
    q.dil_h = L->kind == WICK_LAYER_CONV2D ? L->dh : 1;
    q.dil_w = L->kind == WICK_LAYER_CONV2D ? L->dw : 1;
    q.groups = L->kind == WICK_LAYER_CONV2D ? L->groups : 1;
    return q;
}

wick_status nn_spec_build(wick_graph *g, const wick_spec *s, nn_spec_nodes *n) {
    memset(n, 0, sizeof *n);
    for (int i = 0; i < WICK_SPEC_MAX; i++) n->weight[i] = n->bias[i] = n->node[i] = -1;
    n->x = s->input[1] ? wick_g_input_image(g, "input", s->input[0], s->input[1], s->input[2])
                       : wick_g_input(g, "input", s->input[0]);
    wick_node h = n->x;
    for (int i = 0; i < s->n; i++) {
        const wick_layer *L = &s->layer[i];
        char wn[32], bn[32];
        snprintf(wn, sizeof wn, "%d.weight", i);
        snprintf(bn, sizeof bn, "%d.bias", i);
        switch (L->kind) {
        case WICK_LAYER_LINEAR: {
            n->weight[i] = wick_g_param(g, wn, L->out, L->in[0]);
            if (L->bias) n->bias[i] = wick_g_param(g, bn, 1, L->out);
            /* fuse a following activation into the dense op */
            int fuse = i + 1 < s->n && s->layer[i + 1].kind == WICK_LAYER_ACT;
            wick_act a = fuse ? s->layer[i + 1].act : (wick_act){WICK_ACT_LINEAR, 0};
            if (L->bias) {
                h = wick_g_dense(g, h, n->weight[i], n->bias[i], a);
            } else {
                h = wick_g_matmul(g, h, n->weight[i], 1);
                if (fuse) h = wick_g_act(g, h, a);
            }
            if (fuse) n->node[i++] = h;   /* the activation's node is the dense op's */
            break;
        }
        case WICK_LAYER_CONV2D: {
            wick_conv2d_params q = window(L);
            n->weight[i] = wick_g_param(g, wn, L->out, L->in[0] / L->groups * L->kh * L->kw);
            if (L->bias) n->bias[i] = wick_g_param(g, bn, 1, L->out);
            h = wick_g_conv2d(g, h, n->weight[i], L->bias ? n->bias[i] : -1, &q);
            break;
        }
        case WICK_LAYER_BATCHNORM: {
            char pre[16];
            snprintf(pre, sizeof pre, "%d", i);
            h = wick_g_batchnorm_named(g, pre, h, L->momentum, L->eps);
            n->weight[i] = wick_graph_find(g, wn);
            n->bias[i] = wick_graph_find(g, bn);
            break;
        }
        case WICK_LAYER_DROPOUT: h = wick_g_dropout(g, h, L->p); break;
        case WICK_LAYER_MAXPOOL: { wick_conv2d_params q = window(L); h = wick_g_maxpool2d(g, h, &q); break; }
        case WICK_LAYER_AVGPOOL: { wick_conv2d_params q = window(L); h = wick_g_avgpool2d(g, h, &q); break; }
        case WICK_LAYER_GLOBALAVGPOOL: h = wick_g_global_avgpool(g, h); break;
        case WICK_LAYER_FLATTEN: h = wick_g_flatten(g, h); break;
        case WICK_LAYER_ACT: h = wick_g_act(g, h, L->act); break;
        }
        if (i < s->n) n->node[i] = h;
        if (h < 0) break;
    }
    n->out = h;
    return h < 0 ? WICK_EINVAL : WICK_OK;
}

/* ---- initialisation ---------------------------------------------------- */

static void fill(wick_graph *g, wick_node n, int normal, double a, double b, uint64_t seed, uint64_t stream) {
    size_t k = (size_t)wick_graph_rows(g, n) * wick_graph_cols(g, n);
    void *v = wick_graph_value(g, n);
    int f32 = wick_graph_dtype(g, n) == WICK_DT_F32;
    if (normal) {
        if (f32) wick_fill_normal_f32(v, k, a, b, seed, stream, 0);
        else wick_fill_normal_f64(v, k, a, b, seed, stream, 0);
        return;
    }
    for (size_t i = 0; i < k; i++) {
        double u = a + (b - a) * wick_rand_uniform(seed, stream, i);
        if (f32) ((float *)v)[i] = (float)u;
        else ((double *)v)[i] = u;
    }
}

static void fill_const(wick_graph *g, wick_node n, double c) {
    if (n < 0) return;
    size_t k = (size_t)wick_graph_rows(g, n) * wick_graph_cols(g, n);
    void *v = wick_graph_value(g, n);
    if (wick_graph_dtype(g, n) == WICK_DT_I64) { memset(v, 0, k * sizeof(int64_t)); return; }
    for (size_t i = 0; i < k; i++) {
        if (wick_graph_dtype(g, n) == WICK_DT_F32) ((float *)v)[i] = (float)c;
        else ((double *)v)[i] = c;
    }
}

/* The k-th layer with a weight matrix draws its weights from stream 2k and
 * its biases from 2k+1, as wick_mlp_init does for the MLP's layers. */
void nn_spec_init(wick_graph *g, const wick_spec *s, const nn_spec_nodes *n, wick_init_kind init,
                  const double *cb, const double *cw, uint64_t seed) {
    int k = 0;
    for (int i = 0; i < s->n; i++) {
        const wick_layer *L = &s->layer[i];
        if (L->kind == WICK_LAYER_BATCHNORM) {
            char name[48];
            fill_const(g, n->weight[i], 1);
            fill_const(g, n->bias[i], 0);
            snprintf(name, sizeof name, "%d.running_mean", i);
            fill_const(g, wick_graph_find(g, name), 0);
            snprintf(name, sizeof name, "%d.running_var", i);
            fill_const(g, wick_graph_find(g, name), 1);
            snprintf(name, sizeof name, "%d.num_batches_tracked", i);
            fill_const(g, wick_graph_find(g, name), 0);
            continue;
        }
        if (L->kind != WICK_LAYER_LINEAR && L->kind != WICK_LAYER_CONV2D) continue;
        double fan_in = L->kind == WICK_LAYER_LINEAR ? L->in[0] : (double)(L->in[0] / L->groups) * L->kh * L->kw;
        double fan_out = L->kind == WICK_LAYER_LINEAR ? L->out : (double)(L->out / L->groups) * L->kh * L->kw;
        uint64_t sw = 2 * (uint64_t)k, sb = sw + 1;
        wick_node W = n->weight[i], b = n->bias[i];
        switch (init) {
        case WICK_INIT_CRITICAL:
        case WICK_INIT_BOOK:
            fill(g, W, 1, 0, sqrt(cw[k] / fan_in), seed, sw);
            if (b >= 0) fill(g, b, 1, 0, sqrt(cb[k]), seed, sb);
            break;
        case WICK_INIT_HE:
            fill(g, W, 1, 0, sqrt(2 / fan_in), seed, sw);
            if (b >= 0) fill_const(g, b, 0);
            break;
        case WICK_INIT_GLOROT: {
            double a = sqrt(6 / (fan_in + fan_out));
            fill(g, W, 0, -a, a, seed, sw);
            if (b >= 0) fill_const(g, b, 0);
            break;
        }
        default: {   /* PyTorch's default: kaiming_uniform(a = sqrt 5), U(-1/sqrt(fan_in), 1/sqrt(fan_in)) */
            double a = 1 / sqrt(fan_in);
            fill(g, W, 0, -a, a, seed, sw);
            if (b >= 0) fill(g, b, 0, -a, a, seed, sb);
            break;
        }
        }
        k++;
    }
}

int nn_spec_weighted_layers(const wick_spec *s) {
    int k = 0;
    for (int i = 0; i < s->n; i++) k += s->layer[i].kind == WICK_LAYER_LINEAR || s->layer[i].kind == WICK_LAYER_CONV2D;
    return k;
}

/* The activation that sets a net's critical initialisation: the first one
 * in the spec (a net of several kinds takes --init book or he instead). */
int nn_spec_activation(const wick_spec *s, wick_act *act) {
    int found = 0;
    for (int i = 0; i < s->n; i++) {
        if (s->layer[i].kind != WICK_LAYER_ACT) continue;
        if (!found) *act = s->layer[i].act;
        else if (s->layer[i].act.kind != act->kind || s->layer[i].act.slope != act->slope) return -1;
        found = 1;
    }
    return found;
}

/* ---- the model file's tensors ------------------------------------------ */

static void add_tensor(nn_spec_tensor *t, int *n, int max, int layer, const char *what, wick_dtype dt, int is_param,
                       int ndim, int64_t d0, int64_t d1, int64_t d2, int64_t d3) {
    if (*n < max) {
        nn_spec_tensor *x = &t[*n];
        snprintf(x->name, sizeof x->name, "%d.%s", layer, what);
        x->dtype = dt;
        x->is_param = is_param;
        x->ndim = ndim;
        int64_t d[4] = {d0, d1, d2, d3};
        for (int k = 0; k < 4; k++) x->shape[k] = d[k];
    }
    (*n)++;
}

int nn_spec_tensors(const wick_spec *s, nn_spec_tensor *t, int max) {
    int n = 0;
    for (int i = 0; i < s->n; i++) {
        const wick_layer *L = &s->layer[i];
        switch (L->kind) {
        case WICK_LAYER_LINEAR:
            add_tensor(t, &n, max, i, "weight", WICK_DT_F32, 1, 2, L->out, L->in[0], 0, 0);
            if (L->bias) add_tensor(t, &n, max, i, "bias", WICK_DT_F32, 1, 1, L->out, 0, 0, 0);
            break;
        case WICK_LAYER_CONV2D:
            add_tensor(t, &n, max, i, "weight", WICK_DT_F32, 1, 4, L->out, L->in[0] / L->groups, L->kh, L->kw);
            if (L->bias) add_tensor(t, &n, max, i, "bias", WICK_DT_F32, 1, 1, L->out, 0, 0, 0);
            break;
        case WICK_LAYER_BATCHNORM:
            add_tensor(t, &n, max, i, "weight", WICK_DT_F32, 1, 1, L->in[0], 0, 0, 0);
            add_tensor(t, &n, max, i, "bias", WICK_DT_F32, 1, 1, L->in[0], 0, 0, 0);
            add_tensor(t, &n, max, i, "running_mean", WICK_DT_F32, 0, 1, L->in[0], 0, 0, 0);
            add_tensor(t, &n, max, i, "running_var", WICK_DT_F32, 0, 1, L->in[0], 0, 0, 0);
            add_tensor(t, &n, max, i, "num_batches_tracked", WICK_DT_I64, 0, 0, 0, 0, 0, 0);
            break;
        default: break;
        }
    }
    return n;
}

size_t nn_spec_tensor_elems(const nn_spec_tensor *t) {
    size_t e = 1;
    for (int d = 0; d < t->ndim; d++) e *= (size_t)t->shape[d];
    return e;
}
