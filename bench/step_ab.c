/* step_ab.c — two versions of the library training the same net in one
 * process, a few steps of one, then a few of the other, so that the shared
 * machine's noise (bench/README.md), which drifts over seconds, hits both
 * alike.  Separate runs of bench/steptime, even alternated, differ by +-5%
 * from one pair to the next.  Here a revision against itself gave median
 * ratios of 0.995 to 1.011 over 100-150 block pairs: differences of 2% and
 * more are real.  Built by
 * bench/step_ab.sh, which links the older library with its symbols renamed
 * old_* (bench/step_ab_side.c is each version's side).
 *
 * Each block's first step is dropped (it follows the other version's
 * block).  Prints each version's 10th percentile and median step and the
 * median over block pairs of new / old median step time. */
#include "fma_peak.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int new_open(const char *, const char *, int, long, const char *, double (*)(void));
int old_open(const char *, const char *, int, long, const char *, double (*)(void));
int new_block(int, double *);
int old_block(int, double *);
double new_flops(int);

static int cmp(const void *x, const void *y) {
    double p = *(const double *)x, q = *(const double *)y;
    return (p > q) - (p < q);
}

static double median(double *x, int n) {
    qsort(x, n, sizeof *x, cmp);
    return x[n / 2];
}

int main(int argc, char **argv) {
    const char *arch = "784-512-512-10", *act = "relu", *data = NULL;
    int batch = 128, blocks = 200, block = 6;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--arch") && i + 1 < argc) arch = argv[++i];
        else if (!strcmp(argv[i], "--act") && i + 1 < argc) act = argv[++i];
        else if (!strcmp(argv[i], "--batch") && i + 1 < argc) batch = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--blocks") && i + 1 < argc) blocks = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--block") && i + 1 < argc) block = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--data") && i + 1 < argc) data = argv[++i];
        else {
            fprintf(stderr, "usage: step_ab [--arch A] [--act F] [--batch B] [--blocks N] [--block K] [--data DIR]\n");
            return 2;
        }
    }
    if (block < 3 || blocks < 4) {
        fprintf(stderr, "step_ab: --block at least 3, --blocks at least 4\n");
        return 2;
    }
    const long steps = (long)blocks * block + 1;
    if (new_open(arch, act, batch, steps, data, now) || old_open(arch, act, batch, steps, data, now)) return 1;
    const int per = block - 1;
    double *t[2], *ratio = malloc(blocks * sizeof *ratio), *stamp = malloc(block * sizeof *stamp);
    double *bm[2] = {malloc(blocks * sizeof(double)), malloc(blocks * sizeof(double))};
    t[0] = malloc((size_t)blocks * per * sizeof(double));
    t[1] = malloc((size_t)blocks * per * sizeof(double));
    int n = 0;
    for (int b = 0; b < blocks; b++) {
        for (int o = 0; o < 2; o++) {
            int v = (b + o) & 1;   /* 0 old, 1 new; who goes first alternates */
            int got = v ? new_block(block, stamp) : old_block(block, stamp);
            if (got < block) {
                fprintf(stderr, "step_ab: a side ran %d of %d steps\n", got, block);
                return 1;
            }
            for (int i = 1; i < block; i++) t[v][n * per + i - 1] = stamp[i] - stamp[i - 1];
            double tmp[64];
            for (int i = 0; i < per && i < 64; i++) tmp[i] = t[v][n * per + i];
            bm[v][n] = median(tmp, per < 64 ? per : 64);
        }
        ratio[n] = bm[1][n] / bm[0][n];
        n++;
    }
    const double flops = new_flops(batch);
    double g1, gn;
    int nt;
    fma_peak(3, 30, &g1, &gn, &nt);
    printf("%s %s batch %d: %d blocks of %d steps each, alternating; %d-core FMA peak %.1f GFLOP/s\n", arch, act,
           batch, blocks, block, nt, gn);
    const char *name[2] = {"old", "new"};
    for (int v = 0; v < 2; v++) {
        int m = n * per;
        qsort(t[v], m, sizeof(double), cmp);
        printf("  %s: p10 %.3f ms (%.1f%% of the peak), median %.3f ms (%.1f%%)\n", name[v], 1e3 * t[v][m / 10],
               100 * flops / t[v][m / 10] / 1e9 / gn, 1e3 * t[v][m / 2], 100 * flops / t[v][m / 2] / 1e9 / gn);
    }
    qsort(ratio, n, sizeof *ratio, cmp);
    printf("  new / old step time: median %.4f over %d block pairs (quartiles %.4f %.4f)\n", ratio[n / 2], n,
           ratio[n / 4], ratio[3 * n / 4]);
    return 0;
}
