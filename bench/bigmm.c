/* bigmm.c — the best case of a matrix product on this machine: C = A B,
 * square n x n (default 2048), row-major, one thread, by OpenBLAS
 * (cblas_sgemm), oneDNN (dnnl_sgemm) and wick's own kernel, as a fraction
 * of the one-core FMA peak (fma_peak.h) measured in the same run.  It tells
 * what "x% of the peak" can mean for a whole training step: no step runs
 * its products faster than the libraries run a large square one.  (wick's
 * kernel is there for comparison only: it blocks p and the rows of A but not
 * the columns of B, since the chain's products are at most 784 wide; from
 * n = 2048 its block of B no longer fits L2.)
 *
 *   build/bench/bigmm [--n N] [--reps R] */
#include "fma_peak.h"
#include "backend/kernel.h"
#include <cblas.h>
#include <dnnl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(int argc, char **argv) {
    int n = 2048, reps = 5;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--n") && i + 1 < argc) n = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--reps") && i + 1 < argc) reps = atoi(argv[++i]);
        else {
            fprintf(stderr, "usage: %s [--n N] [--reps R]\n", argv[0]);
            return 2;
        }
    }
    if (n < 16 || n % 16 || reps < 1) {
        fprintf(stderr, "bigmm: --n must be a multiple of 16, --reps positive\n");
        return 2;
    }
    double g1, gn;
    int nt;
    fma_peak(5, 200, &g1, &gn, &nt);
    /* A's rows padded by 16 floats, for all three: a row stride that is a
       multiple of 4 KiB puts a tile's rows into the same L1 sets (the chain
       pads its activations the same way) */
    const int lda = n + 16;
    size_t nn = (size_t)n * n, na = (size_t)n * lda;
    float *a = aligned_alloc(64, na * 4), *b = aligned_alloc(64, nn * 4), *c = aligned_alloc(64, nn * 4);
    if (!a || !b || !c) {
        fprintf(stderr, "bigmm: out of memory\n");
        return 1;
    }
    for (size_t i = 0; i < na; i++) a[i] = (float)rand() / RAND_MAX;
    for (size_t i = 0; i < nn; i++) b[i] = (float)rand() / RAND_MAX;
    printf("# one-core FMA peak %.1f GFLOP/s; C = A B, %d x %d x %d, one thread, best of %d\n", g1, n,
           n, n, reps);
    /* wick's kernel reads B in 16-column panels: packed once, outside the
       timing (the training step keeps its weights packed between steps) */
    float *bp = aligned_alloc(64, wick_kern_bwd_elems(n, n) * 4);
    if (!bp) {
        fprintf(stderr, "bigmm: out of memory\n");
        return 1;
    }
    wick_kern_pack_bwd(b, n, n, 0, n, bp);
    static const char *names[] = {"OpenBLAS cblas_sgemm", "oneDNN dnnl_sgemm", "wick kernel (B packed)"};
    for (int lib = 0; lib < 3; lib++) {
        double best = 1e30;
        for (int r = 0; r < reps; r++) {
            double t = now();
            if (lib == 0)
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, n, n, 1, a, lda, b, n, 0, c, n);
            else if (lib == 1)
                dnnl_sgemm('N', 'N', n, n, n, 1, a, lda, b, n, 0, c, n);
            else
                wick_kern_gemm(n, n, n, a, lda, 1, bp, 16, 16L * n, c, n, NULL, 0);
            double dt = now() - t;
            if (dt < best) best = dt;
        }
        double gf = 2.0 * n * n * n / best / 1e9;
        printf("%-24s %8.1f GFLOP/s  %5.1f%% of the peak\n", names[lib], gf, 100 * gf / g1);
    }
    free(a); free(b); free(c); free(bp);
    return 0;
}
