/* dense.c — the dense layer's products.  For now every product goes through
 * OpenBLAS with the bias and ReLU applied in a second pass over y; the
 * oneDNN path (fused epilogue) is chosen per product by measurement. */
#include "backend/backend.h"
#include "core/core.h"
#include <string.h>

struct wick_dense {
    int batch, in, out, relu;
};

wick_status wick_dense_new(wick_dense **out, int batch, int in, int outdim, int relu) {
    if (batch <= 0 || in <= 0 || outdim <= 0)
        return wick_fail(WICK_EINVAL, "dense layer: non-positive shape [%d, %d] -> %d", batch, in, outdim);
    wick_dense *d = wick_calloc(1, sizeof *d);
    if (!d) return wick_fail(WICK_ENOMEM, "dense layer: out of memory");
    d->batch = batch; d->in = in; d->out = outdim; d->relu = relu;
    *out = d;
    return WICK_OK;
}

void wick_dense_free(wick_dense *d) { wick_free(d); }

void wick_dense_forward(wick_dense *d, const float *x, const float *W, const float *b, float *y) {
    int B = d->batch, N = d->out;
    /* y = b broadcast, then y += x W^T */
    if (b) {
        for (int i = 0; i < B; i++) memcpy(y + (size_t)i * N, b, N * sizeof *y);
    }
    wick_gemm_f32(0, 1, B, N, d->in, 1.0f, x, d->in, W, d->in, b ? 1.0f : 0.0f, y, N);
    if (d->relu) {
        size_t n = (size_t)B * N;
        #pragma omp parallel for simd schedule(static) if (n > 1 << 15)
        for (size_t i = 0; i < n; i++) y[i] = y[i] > 0 ? y[i] : 0;
    }
}

void wick_dense_backward_weights(wick_dense *d, const float *x, const float *dy, float *dW,
                                 float *db) {
    int B = d->batch, N = d->out;
    wick_gemm_f32(1, 0, N, d->in, B, 1.0f, dy, N, x, d->in, 0.0f, dW, d->in);
    if (db) {
        /* column sums in a fixed order: the same for every thread count */
        #pragma omp parallel for schedule(static) if (N >= 64)
        for (int j = 0; j < N; j++) {
            float s = 0;
            for (int i = 0; i < B; i++) s += dy[(size_t)i * N + j];
            db[j] = s;
        }
    }
}

void wick_dense_backward_data(wick_dense *d, const float *dy, const float *W, float *dx) {
    wick_gemm_f32(0, 0, d->batch, d->in, d->out, 1.0f, dy, d->out, W, d->in, 0.0f, dx, d->in);
}

const char *wick_dense_describe(const wick_dense *d) {
    return "fwd=openblas bwd_w=openblas bwd_d=openblas";
}
