/* graph_internal.h — the static graph's nodes and the op kernels' interface.
 * graph.c builds, compiles and runs the graph; ops.c holds each op's forward
 * and backward side by side, written once for float and double. */
#ifndef WICK_GRAPH_INTERNAL_H
#define WICK_GRAPH_INTERNAL_H

#include "backend/backend.h"
#include "backend/conv.h"
#include "core/core.h"

typedef enum {
    OP_INPUT, OP_LABELS, OP_PARAM, OP_STATE, /* leaves */
    OP_MATMUL, OP_BIAS, OP_ACT, OP_DENSE,
    OP_ADD, OP_MUL, OP_SCALE,
    OP_SUM, OP_MEAN,
    OP_SOFTMAX, OP_LOG_SOFTMAX,
    OP_MSE, OP_XENT,
    OP_VIEW,                                 /* as_image, flatten: shares its input's values */
    OP_CONV2D, OP_MAXPOOL2D, OP_AVGPOOL2D, OP_GLOBAL_AVGPOOL,
    OP_BATCHNORM, OP_DROPOUT, OP_GAUSS_NOISE, OP_L1
} op_kind;

static inline int op_is_leaf(op_kind op) { return op <= OP_STATE; }

typedef struct {
    op_kind op;
    int in[3], n_in;
    int rows, cols;     /* rows == max_batch for batched nodes until set_batch */
    int batched;        /* rows follow the batch size */
    int needs_grad;     /* a parameter lies upstream */
    wick_act act;       /* OP_ACT, OP_DENSE */
    double scalar;      /* OP_SCALE: factor; OP_XENT: label smoothing */
    int trans_b;        /* OP_MATMUL */
    int C, H, W;        /* an image: cols == C*H*W, NCHW in each row; C == 0: plain */
    wick_conv2d_params conv;  /* CONV2D, pools: geometry with the defaults filled in */
    int state[3];       /* BATCHNORM: running mean, running var, counter (-1: none) */
    double scalar2;     /* BATCHNORM: eps */
    double init;        /* PARAM, STATE: fill at compile when has_init */
    int has_init;
    int i64;            /* STATE: one int64_t counter */
    int grad_alias;     /* VIEW: grad is the input's grad (its only consumer) */
    int relu_fused;     /* BATCHNORM: writes ReLU of its output (its one consumer is that ReLU);
                           ACT: that ReLU, whose values and gradient are the batch norm's */
    int bn_pool;        /* BATCHNORM with relu_fused: the 2x2 stride-2 max pool (its ReLU's one
                           reader) that it computes too, so that its own values are not
                           its output (0: none); MAXPOOL2D: the batch norm that computes it */
    int bn_xa;          /* BATCHNORM with bn_pool: the last forward left x at each argmax in
                           its values (float, AVX2: bn_fwd), which bn_bwd's vector loops read */
    int conv_blk;       /* CONV2D (output channels a multiple of 8): its one reader, a batch norm
                           fused with ReLU + 2x2 pool, which can read its values in oneDNN's
                           nChw8c (ops_impl.h bn_fwd_blk; 0: none) */
    int val_blk;        /* CONV2D: the last forward left its values in nChw8c,
                           [B][C/8][H W][8], for that batch norm (0: NCHW); MAXPOOL2D
                           (x_blk): likewise, for that conv (c1_fwd wrote them so) */
    int x_blk;          /* MAXPOOL2D with bn_pool (channels a multiple of 8): its one reader, a
                           conv whose plan can read its values in nChw8c (0: none) */
    int grad_blk;       /* CONV2D: the last backward's gradient is also in its aux in nChw8c
                           (written by that batch norm; conv_bwd's input gradient reads it);
                           2: only there (dy_blk: SHIFT's weight gradient reads it there too,
                           and op_conv_dy_unblock writes the NCHW gradient where it is asked);
                           MAXPOOL2D (x_blk): 1: its gradient in nChw8c in place (conv_bwd wrote it
                           so for conv1's weight-gradient pass, c1_dw_sample) */
    int bn_dx;          /* CONV2D: the batch norm (with bn_pool; its gradient's one taker) whose last
                           backward left this node's gradient to this node's backward, which
                           recomputes it a sample at a time beside its weight gradient's
                           product instead of reading it (0: none; ops_impl.h bn_bwd) */
    int c1_fuse;        /* CONV2D: the batch norm (bn_dx's conditions, one grey input channel,
                           3x3, pad 1) that computed this conv's output itself in the last
                           forward, from the batch's patch Gram, without it being written: the
                           conv's values are stale (0: the conv wrote them; ops_impl.h c1_fwd) */
    int drop_bits;      /* DROPOUT: the last forward kept its mask as bits, one 32-bit word a
                           group of 32 elements, in its aux (0: as values, keep / (1 - p)) */
    int ran_train;      /* BATCHNORM: the last forward used batch statistics;
                           DROPOUT, GAUSS_NOISE: it drew a mask or noise */
    double bn_share;    /* BATCHNORM: this process's share of the rows whose statistics the
                           last forward took (graph_set_bn_sum); 0: its own rows alone */
    char name[64];
    void *val, *grad;   /* rows x cols elements (grad NULL unless needs_grad) */
    void *aux;          /* per-op scratch: pre-activation (ACT/DENSE), probabilities (XENT),
                           gradient of the pre-activation (DENSE) */
    void *aux2;
    int grad_begun;     /* backward: 0 until the first contribution wrote grad */
    int pending;        /* backward: consumers that have not yet contributed */
    int consumers;      /* nodes that take this one as input and need its gradient */
    wick_dense *plan;   /* OP_DENSE, float: the backend plan for the current batch */
    wick_dense *plan_full;
    wick_dense *plan_part;
    int part_rows;      /* batch size plan_part (cplan_part) was made for */
    wick_conv *cplan;   /* OP_CONV2D, float: the backend plan for the current batch, or NULL
                           (the general im2col path) */
    wick_conv *cplan_full;
    wick_conv *cplan_part;
} node;

struct wick_graph {
    wick_dtype dt;
    size_t esize;
    node *nodes;
    int n, cap;
    int max_batch, batch;
    unsigned long param_writes;   /* wick_graph_value calls on parameters (chain.c) */
    int compiled;
    wick_status err;
    void *arena;
    size_t arena_bytes;
    int training;                 /* 1 (default): batch statistics, dropout, noise */
    uint64_t seed, step;          /* random ops: Philox key and the next step's counter */
    void *scratch;                /* per-thread and per-chunk work space of the ops */
    size_t scratch_bytes;
    int scratch_threads;          /* threads the scratch holds a slot for */
    int conv_general;             /* 1: float convs take the general path, not backend plans */
    int bn_dx_off;                /* 1 (WICK_BN_DX=0): a batch norm's dx always written (bn_dx) */
    int conv_blk_off;             /* 1 (WICK_CONV_BLK=0): a conv's values always in NCHW (conv_blk) */
    int conv_blk_fwd;             /* 1 (WICK_CONV_BLK=fwd): conv_blk's forward only, no grad_blk */
    int dy_blk_off;               /* 1 (WICK_DY_BLK=0): grad_blk's dy also written in NCHW (grad_blk 1) */
    int x_blk_off;                /* 1 (WICK_X_BLK=0): a pool's values always in NCHW (x_blk) */
    int drop_fast_off;            /* 1 (WICK_DROP_FAST=0): dropout draws a Philox group at a time,
                                     its mask kept as values (drop_bits 0) */
    int c1_fuse_off;              /* 1 (WICK_C1_FUSE=0): a first conv always writes its output (c1_fuse) */
    int c1_pool_off;              /* 1 (WICK_C1_POOL=0): c1_fwd through each plane in scratch (c1_plane) */
    int c1_dw_off;                /* 1 (WICK_C1_DW=0): c1_fuse's weight gradient from recomputed planes */
    int fwd_end;                  /* the last node the running forward computes */
    /* batch norm over several processes (graph_set_bn_sum): NULL, this one's rows */
    void (*bn_sum)(void *user, double *x, int n);
    void *bn_user;
    double *bn_buf;               /* 2 C + 1 doubles for the widest batch norm */
};

/* Synchronised batch norm (data parallelism, src/nn/train.c): in training,
 * every batch norm takes its batch statistics over the rows of all the
 * processes, and its backward the sums of dy and dy xhat over them, through
 * sum (x[0..n) replaced by its sum over the processes, the same bits on each;
 * collective: every process makes the same calls, three a batch norm and
 * step).  The gradients it leaves are those of this process's mean loss
 * (they are to be summed weighted by its share of the rows, as the others).
 * *bn_nodes: how many batch norms there are.  sum NULL: off. */
wick_status graph_set_bn_sum(wick_graph *g, void (*sum)(void *user, double *x, int n), void *user,
                             int *bn_nodes);

/* Float conv2d nodes run through backend plans (conv.h) when on is 1 (the
 * default, unless the environment has WICK_GRAPH_CONV=general); 0 keeps them
 * on the general im2col path, the reference the plans are tested against.
 * Before compile: WICK_EINVAL after. */
wick_status wick_graph_set_conv_fast(wick_graph *g, int on);
/* Whether a conv node takes the backend plan: float, and not depthwise (whose
 * direct loops serve it, ops.c). */
int op_conv_planned(const wick_graph *g, const node *nd);
/* A conv's values left in nChw8c (val_blk) brought back to NCHW in place. */
void op_conv_unblock(wick_graph *g, node *nd);
/* A conv's gradient left in nChw8c alone (grad_blk 2) written in NCHW too. */
void op_conv_dy_unblock(wick_graph *g, node *nd);
/* A pool's gradient left in nChw8c by its conv (x_blk, grad_blk) brought back to NCHW in place. */
void op_pool_grad_unblock(wick_graph *g, node *nd);

/* Per-op kernels (ops.c).  acc: add into the gradient instead of writing it. */
void op_forward(wick_graph *g, node *nd);
/* Propagates nd->grad into the gradients of nd's inputs. */
void op_backward(wick_graph *g, node *nd);
/* Extra scratch an op needs beyond val/grad (elements of the graph's dtype). */
size_t op_aux_elems(const wick_graph *g, const node *nd, size_t *aux2);
/* Bytes of the graph-wide scratch an op needs while it runs with `threads`
 * threads (shared by all ops: they run one at a time). */
size_t op_scratch_bytes(const wick_graph *g, const node *nd, int threads);

/* Float kernels over n contiguous elements, for the chain executor. */
void op_act_fwd_f32(wick_act a, const float *z, float *y, size_t n);
void op_act_bwd_f32(wick_act a, const float *z, const float *y, const float *dy, float *dz, size_t n);
/* Cross-entropy over rows [r0, r1): probabilities into p, the rows' summed
 * loss returned; and dx = scale (p - q) over the same rows. */
double op_xent_rows_f32(const float *x, const int32_t *lab, float *p, int r0, int r1, int cols, double eps);
void op_xent_grad_rows_f32(const float *p, const int32_t *lab, float scale, float *dx, int r0, int r1,
                           int cols, double eps);

static inline size_t node_elems(const node *nd) { return (size_t)nd->rows * nd->cols; }

#endif
