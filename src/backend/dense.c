/* dense.c — the dense layer's products, each served by the library that
 * bench/gemm measured faster on the target machine (a fixed rule below, not
 * a run-time autotune: a run stays bit-identical for a given thread count).
 * Both libraries run on libgomp's one thread pool: wick links Debian's
 * OpenMP build of OpenBLAS (Makefile), because the default pthread build's
 * spinning workers and the OpenMP team starve each other on 2 cores.
 *
 * OpenBLAS path: sgemm, with the bias copied into y first (beta = 1) and the
 * ReLU a second pass over y; the bias gradient a column sum in fixed order.
 * oneDNN path: inner-product primitives, bias and ReLU fused (onednn.c). */
#include "backend/backend.h"
#include "backend/onednn.h"
#include "core/core.h"
#include <omp.h>
#include <stdio.h>
#include <string.h>

struct wick_dense {
    int batch, in, out, relu;
    wick_lib lib[WICK_PROD_COUNT];
    wick_onednn_dense *dnn;   /* NULL when no product uses oneDNN */
    char desc[96];
};

/* The rule is the simplest that matches bench/gemm's table of every product
 * of the benchmark nets (bench/README.md, "Per-product table" and "Extra
 * shapes"): oneDNN for the forward (it fuses bias + ReLU, where OpenBLAS
 * needs two more passes) and for shapes far from those measured; OpenBLAS
 * for the weight gradient of 256..520 inputs into 64..512 outputs, and for
 * the input gradient when the input width is a multiple of 512 (the rows of
 * W and dx are then a multiple of 2 KiB apart, which oneDNN's kernel suffers
 * and OpenBLAS's packing does not). */
static wick_lib pick(int prod, int batch, int in, int out) {
    (void)batch;   /* batch 32 and 512 agree with 128 (bench/README.md) */
    switch (prod) {
    case WICK_PROD_BWD_W:
        return out >= 64 && out <= 512 && in >= 256 && in <= 520 ? WICK_LIB_OPENBLAS : WICK_LIB_ONEDNN;
    case WICK_PROD_BWD_D:
        return in % 512 == 0 && out >= 64 ? WICK_LIB_OPENBLAS : WICK_LIB_ONEDNN;
    default:
        return WICK_LIB_ONEDNN;
    }
}

static const char *lib_name(wick_lib l) { return l == WICK_LIB_ONEDNN ? "onednn" : "openblas"; }

void wick_flush_denormals(void) {
    /* the workers only: the calling thread's mode is set and restored by
       each computing call (wick_fp_enter, wick.h's policy) */
    #pragma omp parallel
    if (omp_get_thread_num() != 0) wick_fp_flush_here();
}

wick_status wick_dense_new_lib(wick_dense **out, int batch, int in, int outdim, int relu,
                               wick_lib lib) {
    *out = NULL;
    if (batch <= 0 || in <= 0 || outdim <= 0)
        return wick_fail(WICK_EINVAL, "dense layer: non-positive shape [%d, %d] -> %d", batch, in, outdim);
    wick_dense *d = wick_calloc(1, sizeof *d);
    if (!d) return wick_fail(WICK_ENOMEM, "dense layer: out of memory");
    d->batch = batch; d->in = in; d->out = outdim; d->relu = relu;
    unsigned need = 0;
    for (int p = 0; p < WICK_PROD_COUNT; p++) {
        d->lib[p] = lib == WICK_LIB_AUTO ? pick(p, batch, in, outdim) : lib;
        if (d->lib[p] == WICK_LIB_ONEDNN) need |= 1u << p;
    }
    if (need) {
        wick_status s = wick_onednn_dense_new(&d->dnn, batch, in, outdim, relu, need);
        if (s) { wick_free(d); return s; }
    }
    snprintf(d->desc, sizeof d->desc, "fwd=%s bwd_w=%s bwd_d=%s", lib_name(d->lib[WICK_PROD_FWD]),
             lib_name(d->lib[WICK_PROD_BWD_W]), lib_name(d->lib[WICK_PROD_BWD_D]));
    wick_flush_denormals();
    *out = d;
    return WICK_OK;
}

wick_status wick_dense_new(wick_dense **out, int batch, int in, int outdim, int relu) {
    return wick_dense_new_lib(out, batch, in, outdim, relu, WICK_LIB_AUTO);
}

void wick_dense_free(wick_dense *d) {
    if (!d) return;
    wick_onednn_dense_free(d->dnn);
    wick_free(d);
}

void wick_dense_forward(wick_dense *d, const float *x, const float *W, const float *b, float *y) {
    if (d->lib[WICK_PROD_FWD] == WICK_LIB_ONEDNN) {
        wick_onednn_forward(d->dnn, x, W, b, y);
        return;
    }
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
    if (d->lib[WICK_PROD_BWD_W] == WICK_LIB_ONEDNN) {
        wick_onednn_backward_weights(d->dnn, x, dy, dW, db);
        return;
    }
    int B = d->batch, N = d->out;
    wick_gemm_f32(1, 0, N, d->in, B, 1.0f, dy, N, x, d->in, 0.0f, dW, d->in);
    if (db) {
        /* column sums, each over i = 0..B-1 in order whatever the thread
         * count; blocks of 64 columns keep the row walk vectorised */
        #pragma omp parallel for schedule(static) if (N >= 128)
        for (int j0 = 0; j0 < N; j0 += 64) {
            int j1 = j0 + 64 < N ? j0 + 64 : N;
            for (int j = j0; j < j1; j++) db[j] = 0;
            for (int i = 0; i < B; i++) {
                const float *r = dy + (size_t)i * N;
                #pragma omp simd
                for (int j = j0; j < j1; j++) db[j] += r[j];
            }
        }
    }
}

void wick_dense_backward_data(wick_dense *d, const float *dy, const float *W, float *dx) {
    if (d->lib[WICK_PROD_BWD_D] == WICK_LIB_ONEDNN) {
        wick_onednn_backward_data(d->dnn, dy, W, dx);
        return;
    }
    wick_gemm_f32(0, 0, d->batch, d->in, d->out, 1.0f, dy, d->out, W, d->in, 0.0f, dx, d->in);
}

const char *wick_dense_describe(const wick_dense *d) { return d->desc; }
