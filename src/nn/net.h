/* net.h — building a graph from a layer spec (net.c). */
#ifndef WICK_NN_NET_H
#define WICK_NN_NET_H

#include "wick.h"

/* The nodes of a net built from a spec; per spec layer i: weight[i] and
 * bias[i] (-1 where none; batch norm's gamma and beta), node[i] the layer's
 * output (a linear layer fused with the activation after it gives both the
 * same node). */
typedef struct {
    wick_node x, out;
    wick_node weight[WICK_SPEC_MAX], bias[WICK_SPEC_MAX], node[WICK_SPEC_MAX];
} nn_spec_nodes;

/* Adds the spec's input and layers to g (not compiled); the graph's sticky
 * error says what failed. */
wick_status nn_spec_build(wick_graph *g, const wick_spec *s, nn_spec_nodes *n);
/* Draws every parameter (after compile): the k-th layer with weights takes
 * C_b = cb[k], C_W = cw[k] for CRITICAL/BOOK; any other kind than
 * CRITICAL/BOOK/HE/GLOROT is PyTorch's default (WICK_INIT_TORCH).  Batch
 * norm: weight 1, bias 0, running mean 0, variance 1, counter 0. */
void nn_spec_init(wick_graph *g, const wick_spec *s, const nn_spec_nodes *n, wick_init_kind init,
                  const double *cb, const double *cw, uint64_t seed);
/* Layers with a weight matrix (linear, conv2d). */
int nn_spec_weighted_layers(const wick_spec *s);
/* The spec's activation: 1 and *act when every activation layer is the same,
 * 0 when there is none, -1 when they differ. */
int nn_spec_activation(const wick_spec *s, wick_act *act);

/* One tensor of a model file, as PyTorch's state_dict has it: a conv weight
 * [OUT, C/groups, kh, kw], a linear weight [out, in], biases and batch norm
 * vectors [C], num_batches_tracked a 0-D int64. */
typedef struct {
    char name[32];
    wick_dtype dtype;           /* F32, or I64 for the counter */
    int is_param;               /* trainable (else batch norm state) */
    int ndim;
    int64_t shape[4];
} nn_spec_tensor;

/* The spec's tensors in state_dict order (the order nn_spec_build creates
 * them in); returns the count (fills at most max). */
int nn_spec_tensors(const wick_spec *s, nn_spec_tensor *t, int max);
size_t nn_spec_tensor_elems(const nn_spec_tensor *t);

#endif
