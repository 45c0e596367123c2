/* backend.h — matrix products behind one interface.  The graph's dense op
 * calls these; which library serves each product (OpenBLAS, oneDNN) is
 * chosen here, by measurement (bench/gemm), not by the caller.  The training
 * fast path (graph/chain.c) splits the products across threads itself and
 * calls wick's own single-threaded kernel instead (kernel.h, bench/kern).
 *
 * Layouts are PyTorch's: x is [B, in] row-major, W is [out, in], b is [out],
 * y is [B, out].  Results for a given thread count are deterministic. */
#ifndef WICK_BACKEND_H
#define WICK_BACKEND_H

#include "wick.h"

/* C[M,N] = alpha * op(A) op(B) + beta * C, row-major, op = transpose if t*. */
void wick_gemm_f32(int ta, int tb, int M, int N, int K, float alpha, const float *A, int lda,
                   const float *B, int ldb, float beta, float *C, int ldc);
void wick_gemm_f64(int ta, int tb, int M, int N, int K, double alpha, const double *A, int lda,
                   const double *B, int ldb, double beta, double *C, int ldc);

/* A dense layer's three products at a fixed shape, planned once (primitive
 * creation, packing decisions) and run every step without allocating. */
typedef struct wick_dense wick_dense;

/* relu != 0 fuses max(0, .) into the forward product's epilogue.  Plan after
 * wick_set_threads: oneDNN (OpenMP build) and OpenBLAS (OpenMP build, see the
 * Makefile) both take the thread count from the OpenMP team.  Also sets FTZ
 * and DAZ (wick_flush_denormals).  Calls on one plan must not overlap. */
wick_status wick_dense_new(wick_dense **out, int batch, int in, int outdim, int relu);
void wick_dense_free(wick_dense *d);

/* y = x W^T + b (then ReLU if planned so). */
void wick_dense_forward(wick_dense *d, const float *x, const float *W, const float *b, float *y);
/* dW = dy^T x, db = column sums of dy (both overwritten; db may be NULL). */
void wick_dense_backward_weights(wick_dense *d, const float *x, const float *dy, float *dW,
                                 float *db);
/* dx = dy W (overwritten). */
void wick_dense_backward_data(wick_dense *d, const float *dy, const float *W, float *dx);

/* Which library serves a product. */
typedef enum { WICK_LIB_AUTO = 0, WICK_LIB_OPENBLAS, WICK_LIB_ONEDNN } wick_lib;

/* As wick_dense_new, but every product is served by `lib` (WICK_LIB_AUTO:
 * the measured rule in dense.c).  For benchmarks and tests. */
wick_status wick_dense_new_lib(wick_dense **out, int batch, int in, int outdim, int relu,
                               wick_lib lib);

/* Sets flush-to-zero and denormals-are-zero (MXCSR) on the worker threads of
 * the OpenMP team, where oneDNN's and wick's own loops run, and leaves them
 * so (wick.h, "Floating-point mode"); the calling thread is set and restored
 * by each computing call (core.h's wick_fp_enter).  wick_dense_new calls it.
 * OpenBLAS's pthread build's workers keep their setting. */
void wick_flush_denormals(void);

/* Which library serves each product, for logs and benchmarks: e.g.
 * "fwd=onednn bwd_w=onednn bwd_d=openblas". */
const char *wick_dense_describe(const wick_dense *d);

#endif
