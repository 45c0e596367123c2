/* step.c — the dense products of one whole training step of an MLP, timed
 * with each plan: wick's per-product rule, all OpenBLAS, all oneDNN.  This
 * checks the rule at the level of a network (products in sequence share the
 * caches and the thread team) and gives an upper bound for `wick train`'s
 * speed: no loss, activations' backward, optimiser or data movement here.
 *
 * A step: forward through every layer (ReLU fused on hidden layers), then
 * for each layer from the last: weight gradient + bias gradient, and the
 * input gradient except for the first layer.  FLOPs as issue 7 counts them.
 *
 *   build/bench/step [--arch 784-512-512-10] [--batch 128] [--threads MAX]
 *                    [--samples N] [--ms T] */
#include "fma_peak.h"
#include "backend/backend.h"
#include "core/core.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAXL 64

static int nl, dims[MAXL + 1], B;
static wick_dense *plan[3][MAXL];
static float *act[MAXL + 1], *grad[MAXL + 1], *W[MAXL], *b[MAXL], *dW[MAXL], *db[MAXL];

static void step(int k) {
    for (int l = 0; l < nl; l++) wick_dense_forward(plan[k][l], act[l], W[l], b[l], act[l + 1]);
    for (int l = nl - 1; l >= 0; l--) {
        wick_dense_backward_weights(plan[k][l], act[l], grad[l + 1], dW[l], db[l]);
        if (l > 0) wick_dense_backward_data(plan[k][l], grad[l + 1], W[l], grad[l]);
    }
}

static int cmp(const void *x, const void *y) {
    double p = *(const double *)x, q = *(const double *)y;
    return (p > q) - (p < q);
}

static float *buf(size_t n, uint64_t s) {
    float *p = wick_aligned_alloc(n * sizeof(float));
    if (!p) { fprintf(stderr, "step: out of memory\n"); exit(1); }
    wick_fill_normal_f32(p, n, 0, 0.05, 3, s, 0);
    return p;
}

int main(int argc, char **argv) {
    const char *arch = "784-512-512-10";
    int maxthr = 2, nsamp = 9;
    double ms = 20;
    B = 128;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--arch") && i + 1 < argc) arch = argv[++i];
        else if (!strcmp(argv[i], "--batch") && i + 1 < argc) B = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--threads") && i + 1 < argc) maxthr = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--samples") && i + 1 < argc) nsamp = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--ms") && i + 1 < argc) ms = atof(argv[++i]);
        else {
            fprintf(stderr, "usage: %s [--arch A] [--batch B] [--threads MAX] [--samples N] [--ms T]\n", argv[0]);
            return 2;
        }
    }
    /* "784-512-512-10"; "WxN" repeats a width: "784-128x16-10" */
    int nd = 0;
    for (const char *p = arch; *p;) {
        char *end;
        long w = strtol(p, &end, 10), rep = 1;
        if (end == p || w < 1) { fprintf(stderr, "step: bad --arch %s\n", arch); return 2; }
        if (*end == 'x') { p = end + 1; rep = strtol(p, &end, 10); }
        for (long r = 0; r < rep && nd <= MAXL; r++) dims[nd++] = (int)w;
        if (*end == '-') end++;
        else if (*end) { fprintf(stderr, "step: bad --arch %s\n", arch); return 2; }
        p = end;
    }
    nl = nd - 1;
    if (nl < 1 || nl > MAXL || B < 1 || nsamp < 1 || nsamp > 99) { fprintf(stderr, "step: bad arguments\n"); return 2; }
    double flop = 0;
    for (int l = 0; l < nl; l++) flop += 2.0 * B * dims[l] * dims[l + 1] * (l ? 3 : 2);
    for (int l = 0; l <= nl; l++) {
        act[l] = buf((size_t)B * dims[l], 10 + l);
        grad[l] = buf((size_t)B * dims[l], 100 + l);
    }
    for (int l = 0; l < nl; l++) {
        size_t n = (size_t)dims[l] * dims[l + 1];
        W[l] = buf(n, 200 + l); dW[l] = buf(n, 300 + l);
        b[l] = buf(dims[l + 1], 400 + l); db[l] = buf(dims[l + 1], 500 + l);
    }
    static const char *names[3] = {"wick rule", "all openblas", "all onednn"};
    static const wick_lib libs[3] = {WICK_LIB_AUTO, WICK_LIB_OPENBLAS, WICK_LIB_ONEDNN};
    printf("# %s, batch %d: %.3f MFLOP a sample (issue 7's count)\n", arch, B, flop / B / 1e6);
    for (int t = 1; t <= maxthr; t++) {
        wick_set_threads(t);
        for (int k = 0; k < 3; k++)
            for (int l = 0; l < nl; l++)
                if (wick_dense_new_lib(&plan[k][l], B, dims[l], dims[l + 1], l + 1 < nl, libs[k])) {
                    fprintf(stderr, "step: %s\n", wick_last_error());
                    return 1;
                }
        long reps[3];
        double s[3][100];
        for (int k = 0; k < 3; k++) {
            for (int w = 0; w < 3; w++) step(k);
            double t0 = now();
            step(k);
            double dt = now() - t0;
            reps[k] = (long)(ms / 1e3 / (dt > 1e-7 ? dt : 1e-7)) + 1;
        }
        for (int i = 0; i < nsamp; i++)
            for (int k = 0; k < 3; k++) {
                double t0 = now();
                for (long r = 0; r < reps[k]; r++) step(k);
                s[k][i] = (double)B * reps[k] / (now() - t0);
            }
        for (int k = 0; k < 3; k++) {
            qsort(s[k], nsamp, sizeof(double), cmp);
            printf("%-13s %d thr: samples/s best %8.0f median %8.0f  = %6.1f / %6.1f GFLOP/s\n", names[k], t,
                   s[k][nsamp - 1], s[k][nsamp / 2], s[k][nsamp - 1] * flop / B / 1e9,
                   s[k][nsamp / 2] * flop / B / 1e9);
        }
        for (int k = 0; k < 3; k++)
            for (int l = 0; l < nl; l++) wick_dense_free(plan[k][l]);
    }
    return 0;
}
