/* onednn.h — a dense layer's three products through oneDNN's inner-product
 * primitives (internal; dense.c decides when to use them).  Plain layouts
 * only (format tag ab everywhere), so nothing is ever reordered: x [B,in],
 * W [out,in], y [B,out], as in backend.h. */
#ifndef WICK_BACKEND_ONEDNN_H
#define WICK_BACKEND_ONEDNN_H

#include "wick.h"

typedef struct wick_onednn_dense wick_onednn_dense;

enum { WICK_PROD_FWD = 0, WICK_PROD_BWD_W, WICK_PROD_BWD_D, WICK_PROD_COUNT };

/* Creates the engine, stream, the three primitives (forward with bias and,
 * if relu, a fused ReLU post-op; backward weights with bias; backward data),
 * their memory objects and scratchpads.  Nothing is allocated afterwards.
 * `need` says which products to plan (a bit per WICK_PROD_*), so a plan that
 * uses oneDNN for one product does not pay for the others. */
wick_status wick_onednn_dense_new(wick_onednn_dense **out, int batch, int in, int outdim,
                                  int relu, unsigned need);
void wick_onednn_dense_free(wick_onednn_dense *d);

/* As wick_dense_forward / _backward_weights / _backward_data; b and db may
 * be NULL.  Calls on one object must not overlap in time (the memory
 * objects' data handles are set per call). */
void wick_onednn_forward(wick_onednn_dense *d, const float *x, const float *W, const float *b,
                         float *y);
void wick_onednn_backward_weights(wick_onednn_dense *d, const float *x, const float *dy,
                                  float *dW, float *db);
void wick_onednn_backward_data(wick_onednn_dense *d, const float *dy, const float *W, float *dx);

/* oneDNN's name for the implementation it chose for product p, e.g.
 * "gemm:jit" or "brgemm:avx2"; "" if not planned. */
const char *wick_onednn_impl(const wick_onednn_dense *d, int p);

/* 1 if the linked oneDNN runs on OpenMP (then wick's thread count reaches it
 * through omp_set_num_threads). */
int wick_onednn_uses_openmp(void);

#endif
