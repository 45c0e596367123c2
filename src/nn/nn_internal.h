/* nn_internal.h — what the nn files share: a network's fields (an MLP is a
 * network whose spec is linear layers; net.c builds any spec) and row copies
 * between float data and the graph's dtype. */
#ifndef WICK_NN_INTERNAL_H
#define WICK_NN_INTERNAL_H

#include "wick.h"
#include "nn/net.h"
#include <string.h>

/* Tensors of a model file: parameters and batch norm state. */
#define NN_MAX_TENSORS (5 * WICK_SPEC_MAX)

struct wick_mlp {
    wick_mlp_config c;         /* C_b, C_W resolved for CRITICAL, one per layer with weights; layers
                                  and widths describe an MLP (is_mlp) only */
    wick_spec *spec;           /* always set: an MLP's is input:n0,linear:n1,act,... */
    int is_mlp;                /* built by wick_mlp_new: files carry "arch" as widths */
    int nin, nout;             /* features in (C*H*W) and out */
    wick_dtype dt;
    int max_batch;
    wick_graph *g;
    wick_node x, out, labels, target, loss;
    wick_node W[WICK_MAX_LAYERS], b[WICK_MAX_LAYERS];   /* is_mlp: the dense layers' */
    nn_spec_nodes nodes;
    int nt;                    /* the model file's tensors, in state_dict order: */
    wick_node tensor[NN_MAX_TENSORS];   /* their graph nodes */
    nn_spec_tensor *ft;        /* their names, dtypes and shapes in files */
};

/* The index of node n among m's file tensors, or -1. */
static inline int nn_tensor_index(const struct wick_mlp *m, wick_node n) {
    for (int i = 0; i < m->nt; i++)
        if (m->tensor[i] == n) return i;
    return -1;
}

/* wick_opt_update_range with the gradient of elements [lo, hi) only:
 * grad_span[0] is element lo's (the chain executor keeps a weight's gradient
 * 48 to 128 rows at a time, in a scratch block that stays in L2). */
void wick_opt_update_span(wick_opt *o, int i, float *param, const float *grad_span, double lr,
                          size_t lo, size_t hi);

/* Copies rows x cols floats into node n's value (converting for float64). */
static inline void nn_load_rows(wick_mlp *m, wick_node n, const float *src, int rows, int cols) {
    void *v = wick_graph_value(m->g, n);
    size_t k = (size_t)rows * cols;
    if (m->dt == WICK_DT_F32) memcpy(v, src, k * sizeof *src);
    else for (size_t i = 0; i < k; i++) ((double *)v)[i] = src[i];
}

static inline void nn_store_rows(wick_mlp *m, wick_node n, float *dst, int rows, int cols) {
    const void *v = wick_graph_value(m->g, n);
    size_t k = (size_t)rows * cols;
    if (m->dt == WICK_DT_F32) memcpy(dst, v, k * sizeof *dst);
    else for (size_t i = 0; i < k; i++) dst[i] = (float)((const double *)v)[i];
}

/* The index of v[0..n)'s first NaN or infinity; n when all are finite.  One
 * vectorised pass first (x * 0 is NaN exactly for NaN and ±inf). */
static inline size_t nn_first_nonfinite(const float *v, size_t n) {
    float acc = 0;
#pragma omp simd reduction(+ : acc)
    for (size_t i = 0; i < n; i++) acc += v[i] * 0.0f;
    if (acc == 0) return n;
    size_t i = 0;
    while (i < n && v[i] - v[i] == 0) i++;
    return i;
}

/* Elements of parameter tensor n. */
static inline size_t nn_param_size(wick_mlp *m, wick_node n) {
    return (size_t)wick_graph_rows(m->g, n) * wick_graph_cols(m->g, n);
}

#endif
