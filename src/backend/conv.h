/* conv.h — a 2-D convolution layer's three products at a fixed shape, planned
 * once (primitives, reorders, buffers) and run every step without allocating,
 * as wick_dense is for a dense layer (backend.h).  Which implementation
 * serves each product is chosen in conv.c by measurement (bench/conv).
 *
 * Layouts are PyTorch's contiguous ones, float32:
 *   x  [B, C*H*W]        NCHW, one row per sample
 *   W  [OUT, C/g*kh*kw]  torch's [OUT, C/groups, kh, kw] row-major
 *   b  [OUT]
 *   y  [B, OUT*OH*OW]    NCHW; OH = (H + 2 pad_h - dil_h (kh - 1) - 1) / stride_h + 1
 * The geometry is wick_conv2d_params (wick.h): zero in a stride, dilation or
 * groups means 1.  Results for a given thread count are deterministic. */
#ifndef WICK_BACKEND_CONV_H
#define WICK_BACKEND_CONV_H

#include "wick.h"

typedef struct wick_conv wick_conv;

/* How a product is served.  WICK_CONV_AUTO: the measured rule in conv.c. */
typedef enum {
    WICK_CONV_AUTO = 0,
    WICK_CONV_DNNL_BLOCKED,   /* oneDNN convolution in the layouts it prefers, reorders from/to NCHW */
    WICK_CONV_DNNL_PLAIN,     /* oneDNN convolution forced to plain nchw / oihw layouts */
    WICK_CONV_IM2COL,         /* im2col + OpenBLAS sgemm per sample, threads over samples */
    WICK_CONV_IMPL_COUNT
} wick_conv_impl;

/* relu != 0 fuses max(0, .) into the forward product.  Plan after
 * wick_set_threads: the plan sizes per-thread buffers for the OpenMP team
 * it sees then, and a later larger team uses only that many threads.  Sets
 * FTZ and DAZ (wick_flush_denormals).  Calls on one plan must not overlap.
 * WICK_EINVAL for a geometry that gives no output or groups that do not
 * divide C and OUT. */
wick_status wick_conv_new(wick_conv **out, int batch, int C, int H, int W, int OUT,
                          const wick_conv2d_params *p, int relu);
/* As wick_conv_new, with every product served by `impl` (WICK_CONV_AUTO: the
 * rule).  For benchmarks and tests. */
wick_status wick_conv_new_impl(wick_conv **out, int batch, int C, int H, int W, int OUT,
                               const wick_conv2d_params *p, int relu, wick_conv_impl impl);
void wick_conv_free(wick_conv *c);

/* y = conv2d(x, W) + b, then ReLU if planned so; b may be NULL. */
void wick_conv_forward(wick_conv *c, const float *x, const float *Wt, const float *b, float *y);
/* The forward with y in oneDNN's nChw8c, [B][OUT/8][OH OW][8], where the
 * plan's convolution writes that layout (wick_conv_nchw8c_out: 1; OUT a
 * multiple of 8): the transpose back to NCHW is skipped, for a reader that
 * takes the blocked layout (the graph's batch norm, ops_impl.h bn_fwd_blk).
 * The same values as wick_conv_forward's, only placed otherwise. */
int wick_conv_nchw8c_out(const wick_conv *c);
void wick_conv_forward_nchw8c(wick_conv *c, const float *x, const float *Wt, const float *b, float *y);
/* The forward with x in nChw8c, [B][C/8][H W][8], where the plan's
 * convolution reads that layout (wick_conv_nchw8c_in: 1; C a multiple of
 * 8), and y in nChw8c too where yblk: the transpose of x is skipped (the
 * graph's fused conv1 + batch norm 1 writes conv2's input so, ops_impl.h
 * c1_fwd).  The same values as wick_conv_forward's. */
int wick_conv_nchw8c_in(const wick_conv *c);
void wick_conv_forward_xblk(wick_conv *c, const float *x, const float *Wt, const float *b, float *y, int yblk);
/* The input gradient with dx in nChw8c too (wick_conv_nchw8c_dx: 1), dy
 * in nChw8c where dyblk: dx's transpose back to NCHW is skipped. */
int wick_conv_nchw8c_dx(const wick_conv *c);
void wick_conv_backward_data_dxblk(wick_conv *c, const float *dy, const float *Wt, float *dx, int dyblk);
/* Likewise the input gradient with dy in nChw8c (wick_conv_nchw8c_dy: 1):
 * its transpose from NCHW is skipped. */
int wick_conv_nchw8c_dy(const wick_conv *c);
void wick_conv_backward_data_nchw8c(wick_conv *c, const float *dy, const float *Wt, float *dx);
/* dW = the weight gradient given dy, db = per-channel sums of dy (both
 * overwritten; db may be NULL). */
void wick_conv_backward_weights(wick_conv *c, const float *x, const float *dy, float *dW,
                                float *db);
/* dx = the input gradient given dy (overwritten). */
void wick_conv_backward_data(wick_conv *c, const float *dy, const float *Wt, float *dx);

/* Output height and width of the plan. */
void wick_conv_out_hw(const wick_conv *c, int *OH, int *OW);
/* Multiply-adds of one product over the whole batch, times 2 (FLOPs); the
 * three products have the same count. */
double wick_conv_flops(const wick_conv *c);
/* Which implementation serves each product, for logs and benchmarks, e.g.
 * "fwd=dnnl-blocked(jit:avx2) bwd_w=im2col bwd_d=dnnl-blocked(jit:avx2)". */
const char *wick_conv_describe(const wick_conv *c);

/* For bench/conv only: on != 0 makes the oneDNN products skip their
 * reorders from and to NCHW, so the convolution primitive is timed alone
 * (the results are then wrong).  wick_conv_reorders says how many reorder
 * primitives product prod (0 forward, 1 weight gradient, 2 input gradient)
 * runs. */
void wick_conv_bench_core_only(wick_conv *c, int on);
int wick_conv_reorders(const wick_conv *c, int prod);

#endif
