/* kern.c — wick's own product (src/backend/kernel.c) against OpenBLAS, one
 * thread, on the shares of the headline step that one of two threads
 * computes inside the chain executor (batch 128, 784-512-512-10):
 *
 *   fwd    y[64 rows, N] = x W^T + b, ReLU     B = W packed (forward layout)
 *   bwd_w  dW[256 neurons, K] = dy^T x         A = dy transposed, B = x rows
 *   bwd_d  dx[128, 256 columns] = dy W         B = W packed (data layout),
 *                                              or W itself (stride K)
 *
 * Each cell: best and median of 9 samples of about 20 ms, alternating with
 * OpenBLAS (the OpenMP build, called with one thread, as the chain's threads
 * call it) and oneDNN (its inner-product primitives through wick's plan
 * (backend/onednn.c) for a layer of the share's shape, bias and ReLU fused),
 * in GFLOP/s and as a fraction of the one-core FMA peak measured in the same
 * run.  The packing of W, once per step in the chain, is timed too.
 *
 *   build/bench/kern [--samples N] */
#include "fma_peak.h"
#include "backend/backend.h"
#include "backend/kernel.h"
#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static float *rnd(size_t n) {
    float *v = aligned_alloc(64, (n * sizeof *v + 63) / 64 * 64);
    for (size_t i = 0; i < n; i++) v[i] = (float)rand() / RAND_MAX - 0.5f;
    return v;
}

typedef struct {
    const char *name;
    int m, n, k;
    void (*run)(void *);
    void *arg;
} job;

typedef struct {
    int m, n, k, mode;   /* mode: product kind + layout */
    float *A, *B, *P, *C, *bias;
    int lda, ldb, ldc;
    wick_dense *dnn;   /* the oneDNN rows */
} prob;

enum { FWD_K, FWD_B, FWD_D, BW_K, BW_B, BW_D, BD_KP, BD_KW, BD_B, BD_D, PACK_F, PACK_B };

static void run(void *v) {
    prob *p = v;
    switch (p->mode) {
    case FWD_K:   /* y = x W^T + b, ReLU; x rows stride lda, W packed */
        wick_kern_gemm(p->m, p->n, p->k, p->A, p->lda, 1, p->P, 16, 16L * p->k, p->C, p->ldc, p->bias,
                       WICK_KERN_BIAS | WICK_KERN_RELU);
        break;
    case FWD_B:
        for (int i = 0; i < p->m; i++) memcpy(p->C + (size_t)i * p->ldc, p->bias, p->n * sizeof(float));
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, p->m, p->n, p->k, 1, p->A, p->lda, p->B,
                    p->k, 1, p->C, p->ldc);
        for (int i = 0; i < p->m; i++)
            for (int j = 0; j < p->n; j++) {
                float *c = p->C + (size_t)i * p->ldc + j;
                *c = *c > 0 ? *c : 0;
            }
        break;
    case FWD_D:   /* a layer of n outputs over m rows: x [m, k] contiguous */
        wick_dense_forward(p->dnn, p->A, p->B, p->bias, p->C);
        break;
    case BW_D:    /* a layer of m outputs: dy [k, m], x [k, n] */
        wick_dense_backward_weights(p->dnn, p->B, p->A, p->C, p->bias);
        break;
    case BD_D:    /* a layer of n inputs, k outputs: dy [m, k], W [k, n] */
        wick_dense_backward_data(p->dnn, p->A, p->B, p->C);
        break;
    case BW_K:    /* dW[m, n] = dy[:, m]^T x: A(i, p) = dy[p, i], dy stride lda */
        wick_kern_gemm(p->m, p->n, p->k, p->A, 1, p->lda, p->B, p->ldb, 16, p->C, p->ldc, NULL, 0);
        break;
    case BW_B:
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, p->m, p->n, p->k, 1, p->A, p->lda, p->B,
                    p->ldb, 0, p->C, p->ldc);
        break;
    case BD_KP:   /* dx[m, n] = dy W[:, n]: dy rows stride lda; W packed */
        wick_kern_gemm(p->m, p->n, p->k, p->A, p->lda, 1, p->P, 16, 16L * p->k, p->C, p->ldc, NULL, 0);
        break;
    case BD_KW:   /* the same with W itself as B (row stride = its width) */
        wick_kern_gemm(p->m, p->n, p->k, p->A, p->lda, 1, p->B, p->ldb, 16, p->C, p->ldc, NULL, 0);
        break;
    case BD_B:
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, p->m, p->n, p->k, 1, p->A, p->lda, p->B,
                    p->ldb, 0, p->C, p->ldc);
        break;
    case PACK_F:
        wick_kern_pack_fwd(p->B, p->k, p->n, 0, p->k, p->P);
        break;
    case PACK_B:
        wick_kern_pack_bwd(p->B, p->k, p->n, 0, p->k, p->P);
        break;
    }
}

static int cmp(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int main(int argc, char **argv) {
    int samples = 9;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--samples") && i + 1 < argc) samples = atoi(argv[++i]);
        else {
            fprintf(stderr, "usage: kern [--samples N]\n");
            return 2;
        }
    }
    if (!wick_kern_ok()) {
        fprintf(stderr, "kern: this CPU has no AVX2/FMA\n");
        return 1;
    }
    omp_set_num_threads(1);
    double g1, gn;
    int nt;
    fma_peak(5, 50, &g1, &gn, &nt);
    printf("# one-core FMA peak %.1f GFLOP/s\n", g1);
    /* a 512-wide layer's stride padded to 528 as the chain pads it */
    struct { const char *name; int mode, m, n, k, lda, ldb; } rows[] = {
        {"fwd 784->512 (64 rows)", FWD_K, 64, 512, 784, 784, 0},
        {"fwd 784->512 openblas", FWD_B, 64, 512, 784, 784, 0},
        {"fwd 784->512 onednn", FWD_D, 64, 512, 784, 784, 0},
        {"fwd 512->512 (64 rows)", FWD_K, 64, 512, 512, 528, 0},
        {"fwd 512->512 openblas", FWD_B, 64, 512, 512, 528, 0},
        {"fwd 512->512 onednn", FWD_D, 64, 512, 512, 512, 0},
        {"fwd 512->10 (64 rows)", FWD_K, 64, 10, 512, 528, 0},
        {"fwd 512->10 openblas", FWD_B, 64, 10, 512, 528, 0},
        {"bwd_w 784->512 (256 neurons)", BW_K, 256, 784, 128, 528, 784},
        {"bwd_w 784->512 openblas", BW_B, 256, 784, 128, 528, 784},
        {"bwd_w 784->512 onednn", BW_D, 256, 784, 128, 256, 784},
        {"bwd_w 512->512 (256 neurons)", BW_K, 256, 512, 128, 528, 528},
        {"bwd_w 512->512 openblas", BW_B, 256, 512, 128, 528, 528},
        {"bwd_w 512->512 onednn", BW_D, 256, 512, 128, 256, 512},
        {"bwd_d 512->512 (256 cols) packed", BD_KP, 128, 256, 512, 528, 512},
        {"bwd_d 512->512 (256 cols) W itself", BD_KW, 128, 256, 512, 528, 512},
        {"bwd_d 512->512 openblas", BD_B, 128, 256, 512, 528, 512},
        {"bwd_d 512->512 onednn", BD_D, 128, 256, 512, 512, 256},
        {"pack fwd 512x512", PACK_F, 0, 512, 512, 0, 0},
        {"pack bwd 512x512", PACK_B, 0, 512, 512, 0, 0},
    };
    int nrow = sizeof rows / sizeof rows[0];
    prob p[sizeof rows / sizeof rows[0]];
    double *t = calloc((size_t)nrow * samples, sizeof *t);
    long reps[sizeof rows / sizeof rows[0]];
    for (int r = 0; r < nrow; r++) {
        prob *q = &p[r];
        memset(q, 0, sizeof *q);
        q->mode = rows[r].mode;
        q->m = rows[r].m, q->n = rows[r].n, q->k = rows[r].k, q->lda = rows[r].lda, q->ldb = rows[r].ldb;
        q->ldc = q->n < 16 ? q->n : q->n + (q->n % 128 ? 0 : 16);
        size_t asz = q->mode == BW_K || q->mode == BW_B ? (size_t)q->k * q->lda : (size_t)(q->m + 1) * q->lda;
        q->A = rnd(asz + 16);
        q->B = rnd(1024 * 1024);   /* W or x: every case fits */
        q->P = rnd(1024 * 1024);
        q->C = rnd((size_t)(q->m + 1) * (q->ldc + 16));
        q->bias = rnd(q->n + 16);
        /* forward B is W [n, k]; data gradient B is W [k, n] of stride ldb */
        if (q->mode == FWD_K) wick_kern_pack_fwd(q->B, q->n, q->k, 0, q->n, q->P);
        if (q->mode == BD_KP) wick_kern_pack_bwd(q->B, q->k, q->n, 0, q->k, q->P);
        wick_status st = WICK_OK;
        if (q->mode == FWD_D) st = wick_dense_new_lib(&q->dnn, q->m, q->k, q->n, 1, WICK_LIB_ONEDNN);
        if (q->mode == BW_D) st = wick_dense_new_lib(&q->dnn, q->k, q->n, q->m, 0, WICK_LIB_ONEDNN);
        if (q->mode == BD_D) st = wick_dense_new_lib(&q->dnn, q->m, q->n, q->k, 0, WICK_LIB_ONEDNN);
        if (st != WICK_OK) {
            fprintf(stderr, "kern: oneDNN plan: %s\n", wick_last_error());
            return 1;
        }
        /* calibrate to ~20 ms */
        double t0 = now();
        run(q);
        double dt = now() - t0;
        reps[r] = (long)(0.02 / (dt > 1e-7 ? dt : 1e-7)) + 1;
    }
    for (int s = 0; s < samples; s++)
        for (int r = 0; r < nrow; r++) {
            double t0 = now();
            for (long i = 0; i < reps[r]; i++) run(&p[r]);
            t[(size_t)r * samples + s] = (now() - t0) / reps[r];
        }
    printf("%-36s %9s %9s %7s %7s\n", "product (one thread)", "best us", "GFLOP/s", "%peak", "med%");
    for (int r = 0; r < nrow; r++) {
        double *v = t + (size_t)r * samples;
        qsort(v, samples, sizeof *v, cmp);
        double best = v[0], med = v[samples / 2];
        if (p[r].mode >= PACK_F) {
            printf("%-36s %9.1f %9s %7s %7s  (%.2f GB/s written)\n", rows[r].name, best * 1e6, "-", "-", "-",
                   2.0 * p[r].n * p[r].k * 4 / best / 1e9);
            continue;
        }
        double fl = 2.0 * p[r].m * p[r].n * p[r].k;
        printf("%-36s %9.1f %9.1f %6.1f%% %6.1f%%\n", rows[r].name, best * 1e6, fl / best / 1e9,
               100 * fl / best / 1e9 / g1, 100 * fl / med / 1e9 / g1);
    }
    return 0;
}
