/* noise.c — what the shared machine's noise takes away, and from what.
 *
 * Window after window (about 0.1 s each), both threads run the register-only
 * FMA loop of bench/peak, then wick's kernel on a product whose operands all
 * stay in L1 (one 6 x 16 tile, k = 192, B packed: 17 KB), then on one whose B
 * streams from L3 (the forward's per-thread share of the 784->512 layer,
 * 64 x 512 x 784).
 * Prints each one's distribution over the windows as a fraction of the
 * 1-core FMA peak measured at the start: if the FMA loop holds steady while
 * the L1-resident product drops, what the neighbours take is not the FMA
 * pipes or memory but the core's other shared resources (a sibling
 * hyperthread's loads and instruction dispatch).
 *
 *   build/bench/noise [WINDOWS]      (default 200, ~25 s) */
#include "fma_peak.h"
#include "backend/kernel.h"
#include <stdio.h>
#include <stdlib.h>

enum { NK = 3 };
static const char *names[NK] = {"FMA loop (registers only)", "kernel, all in L1 6x16x192",
                                "kernel, B from L3 64x512x784"};

static int cmp(const void *x, const void *y) {
    double p = *(const double *)x, q = *(const double *)y;
    return (p > q) - (p < q);
}

int main(int argc, char **argv) {
    int W = argc > 1 ? atoi(argv[1]) : 200;
    if (W < 10) W = 10;
    if (!wick_kern_ok()) {
        fprintf(stderr, "noise: this CPU has no AVX2/FMA\n");
        return 2;
    }
    double g1, gn;
    int nt;
    fma_peak(3, 30, &g1, &gn, &nt);
    float *P1 = aligned_alloc(64, 64 * 64 * 4), *P3 = aligned_alloc(64, 512 * 784 * 4);
    for (int i = 0; i < 64 * 64; i++) P1[i] = 0.001f * (i % 97);
    for (int i = 0; i < 512 * 784; i++) P3[i] = 0.001f * (i % 97);
    float *A[2], *C[2];
    for (int t = 0; t < 2; t++) {
        A[t] = aligned_alloc(64, 64 * 800 * 4);
        C[t] = aligned_alloc(64, 64 * 528 * 4);
        for (int i = 0; i < 64 * 800; i++) A[t][i] = 0.01f * (i % 13);
    }
    double *r = malloc(sizeof(double) * 2 * NK * W);   /* [k][window * 2 + thread] */
    volatile float sink = 0;
    for (int w = 0; w < W; w++) {
        #pragma omp parallel num_threads(2)
        {
            int t = omp_get_thread_num();
            double t0 = now();
            float v = fma_chains(400000, (float)t);
            r[(0 * W + w) * 2 + t] = 400000.0 * NACC * 16 / (now() - t0) / 1e9;
            #pragma omp atomic
            sink += v;
            t0 = now();
            for (int i = 0; i < 40000; i++) wick_kern_gemm(6, 16, 192, A[t], 800, 1, P1, 16, 16 * 192, C[t], 528, NULL, 0);
            r[(1 * W + w) * 2 + t] = 40000.0 * 2 * 6 * 16 * 192 / (now() - t0) / 1e9;
            t0 = now();
            for (int i = 0; i < 12; i++) wick_kern_gemm(64, 512, 784, A[t], 800, 1, P3, 16, 16 * 784, C[t], 528, NULL, 0);
            r[(2 * W + w) * 2 + t] = 12.0 * 2 * 64 * 512 * 784 / (now() - t0) / 1e9;
        }
    }
    printf("%d windows x 2 threads; per thread, %% of the 1-core FMA peak (%.1f GFLOP/s)\n", W, g1);
    printf("%-30s %6s %6s %6s %6s %6s\n", "", "p10", "p25", "median", "p75", "p90");
    for (int k = 0; k < NK; k++) {
        double *x = r + (size_t)k * W * 2;
        qsort(x, 2 * W, sizeof *x, cmp);
        int n = 2 * W;
        printf("%-30s %5.0f%% %5.0f%% %5.0f%% %5.0f%% %5.0f%%\n", names[k], 100 * x[n / 10] / g1,
               100 * x[n / 4] / g1, 100 * x[n / 2] / g1, 100 * x[3 * n / 4] / g1, 100 * x[9 * n / 10] / g1);
    }
    free(r);
    return 0;
}
