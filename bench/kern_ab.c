/* kern_ab.c — two versions of wick's kernel (src/backend/kernel.c) side by
 * side on both cores, interleaved window by window, so that the machine's
 * noise (bench/README.md) hits both alike.  Built by bench/kern_ab.sh, which
 * compiles the older version with its symbols renamed old_*.
 *
 * Per window each thread runs, with each version in turn (the order
 * alternating): a forward product whose B stays in L2 (60 x 128 x 256), the
 * forward's per-thread share of the 784->512 layer (64 x 512 x 784, B from
 * L3), a weight-gradient item of that layer (48 x 784 x 128, A = dy^T) and
 * an input-gradient item of the 512->512 layer (128 x 32 x 512).
 * Prints each version's mean GFLOP/s (both threads) and the median and
 * quartiles of new / old over the windows. */
#include "fma_peak.h"
#include "backend/kernel.h"
#include <stdio.h>
#include <stdlib.h>

void old_kern_gemm(int m, int n, int k, const float *A, ptrdiff_t rsa, ptrdiff_t csa,
                   const float *B, ptrdiff_t ldb, ptrdiff_t bpanel, float *C, ptrdiff_t ldc,
                   const float *bias, int flags);
typedef void (*gemm_fn)(int, int, int, const float *, ptrdiff_t, ptrdiff_t, const float *,
                        ptrdiff_t, ptrdiff_t, float *, ptrdiff_t, const float *, int);

enum { NT = 4, MAXW = 1000 };
static const char *names[NT] = {"forward, B in L2  60x128x256", "forward, B in L3  64x512x784",
                                "weight grad       48x784x128", "input grad       128x32x512 "};

static double rate(gemm_fn g, int test, const float *A, const float *X, const float *P2,
                   const float *P3, float *C) {
    double t0 = now(), flop;
    switch (test) {
    case 0:
        for (int r = 0; r < 60; r++) g(60, 128, 256, A, 272, 1, P2, 16, 16L * 256, C, 144, NULL, 0);
        flop = 60.0 * 2 * 60 * 128 * 256;
        break;
    case 1:
        for (int r = 0; r < 6; r++) g(64, 512, 784, A, 800, 1, P3, 16, 16L * 784, C, 528, NULL, 0);
        flop = 6.0 * 2 * 64 * 512 * 784;
        break;
    case 2:   /* dW rows = dz^T x: A(i, p) = dz[p 528 + i], B(p, j) = x[p 800 + j] */
        for (int r = 0; r < 20; r++) g(48, 784, 128, A, 1, 528, X, 800, 16, C, 784, NULL, 0);
        flop = 20.0 * 2 * 48 * 784 * 128;
        break;
    default:   /* a dx item: all 128 rows of dz, two 16-column panels of the packed W */
        for (int r = 0; r < 60; r++) g(128, 32, 512, A, 528, 1, P3, 16, 16L * 512, C, 528, NULL, 0);
        flop = 60.0 * 2 * 128 * 32 * 512;
        break;
    }
    return flop / (now() - t0) / 1e9;
}

static int cmp(const void *x, const void *y) {
    double p = *(const double *)x, q = *(const double *)y;
    return (p > q) - (p < q);
}

int main(int argc, char **argv) {
    int W = argc > 1 ? atoi(argv[1]) : 150;
    if (W < 4 || W > MAXW) W = 150;
    float *P2 = aligned_alloc(64, 128 * 256 * 4), *P3 = aligned_alloc(64, 512 * 784 * 4);
    for (int i = 0; i < 128 * 256; i++) P2[i] = 0.001f * (i % 97);
    for (int i = 0; i < 512 * 784; i++) P3[i] = 0.001f * (i % 97);
    float *A[2], *X[2], *C[2];
    for (int t = 0; t < 2; t++) {
        A[t] = aligned_alloc(64, 128 * 800 * 4);
        X[t] = aligned_alloc(64, 128 * 800 * 4);
        C[t] = aligned_alloc(64, 128 * 800 * 4);
        for (int i = 0; i < 128 * 800; i++) A[t][i] = 0.01f * (i % 13), X[t][i] = 0.02f * (i % 7);
    }
    static double ratio[NT][MAXW];
    double sum[2][NT] = {{0}};
    gemm_fn g[2] = {old_kern_gemm, wick_kern_gemm};
    for (int w = 0; w < W; w++) {
        double r[2][2][NT];
        for (int o = 0; o < 2; o++) {
            int v = w & 1 ? 1 - o : o;
            #pragma omp parallel num_threads(2)
            {
                int t = omp_get_thread_num();
                for (int k = 0; k < NT; k++) r[v][t][k] = rate(g[v], k, A[t], X[t], P2, P3, C[t]);
            }
        }
        for (int k = 0; k < NT; k++) {
            for (int v = 0; v < 2; v++) sum[v][k] += r[v][0][k] + r[v][1][k];
            ratio[k][w] = (r[1][0][k] + r[1][1][k]) / (r[0][0][k] + r[0][1][k]);
        }
    }
    printf("%d windows, 2 threads; GFLOP/s is both threads' sum, the mean over windows\n", W);
    for (int k = 0; k < NT; k++) {
        qsort(ratio[k], W, sizeof(double), cmp);
        printf("%s  old %6.1f  new %6.1f GFLOP/s   new/old median %.3f (quartiles %.3f %.3f)\n",
               names[k], sum[0][k] / W, sum[1][k] / W, ratio[k][W / 2], ratio[k][W / 4],
               ratio[k][3 * W / 4]);
    }
    return 0;
}
