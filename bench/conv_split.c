/* conv_split.c — does the conv plan's batch split (src/backend/conv.c
 * split_run: one one-thread oneDNN plan per half of the batch, each thread
 * its half) beat one oneDNN primitive dividing its work over the team?
 * Plans the same layer twice, WICK_CONV_SPLIT=0 and 1, and calls their
 * forward and input-gradient products interleaved (ABBA), so that the noise
 * of a loaded machine hits both alike; prints each plan's median, first
 * quartile and best wall time a product.  The two plans' outputs are
 * compared first (they must be bit-identical: test_conv_backend).
 *
 *   build/bench/conv_split [--batch B] [--reps N] [--threads T] [--layer C,H,OUT]
 *   (default: the CNN's conv2, 32x14x14 -> 64, 3x3, pad 1, batch 128,
 *   2 threads, 200 reps: about 5 s) */
#include "backend/backend.h"
#include "backend/conv.h"
#include "core/core.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + 1e-9 * t.tv_nsec;
}

static int cmpd(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int main(int argc, char **argv) {
    int B = 128, N = 200, T = 2, C = 32, H = 14, OUT = 64;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--batch")) B = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--reps")) N = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--threads")) T = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--layer") && sscanf(argv[i + 1], "%d,%d,%d", &C, &H, &OUT) == 3) continue;
        else {
            fprintf(stderr, "conv_split: bad option %s\n", argv[i]);
            return 2;
        }
    }
    if (B < 1 || N < 4 || T < 1 || C < 1 || H < 1 || OUT < 1) {
        fprintf(stderr, "conv_split: sizes must be positive (reps >= 4)\n");
        return 2;
    }
    wick_set_threads(T);
    wick_conv2d_params p = {.kh = 3, .kw = 3, .pad_h = 1, .pad_w = 1};
    wick_conv *c[2];
    for (int v = 0; v < 2; v++) {
        setenv("WICK_CONV_SPLIT", v ? "1" : "0", 1);
        if (wick_conv_new(&c[v], B, C, H, H, OUT, &p, 0)) {
            fprintf(stderr, "conv_split: %s\n", wick_last_error());
            return 1;
        }
    }
    size_t nx = (size_t)B * C * H * H, ny = (size_t)B * OUT * H * H, nw = (size_t)OUT * C * 9;
    float *x = wick_aligned_alloc(nx * 4), *dx[2] = {wick_aligned_alloc(nx * 4), wick_aligned_alloc(nx * 4)};
    float *y[2] = {wick_aligned_alloc(ny * 4), wick_aligned_alloc(ny * 4)};
    float *w = wick_aligned_alloc(nw * 4), *b = wick_aligned_alloc(OUT * 4);
    double *t = malloc(4 * (size_t)N * sizeof *t);
    if (!x || !dx[0] || !dx[1] || !y[0] || !y[1] || !w || !b || !t) {
        fprintf(stderr, "conv_split: out of memory\n");
        return 1;
    }
    wick_fill_normal_f32(x, nx, 0, 1, 1, 1, 0);
    wick_fill_normal_f32(w, nw, 0, 0.1, 1, 2, 0);
    wick_fill_normal_f32(b, OUT, 0, 1, 1, 3, 0);
    for (int v = 0; v < 2; v++) {
        wick_conv_forward(c[v], x, w, b, y[v]);
        wick_conv_backward_data(c[v], y[v], w, dx[v]);
    }
    int same = !memcmp(y[0], y[1], ny * 4) && !memcmp(dx[0], dx[1], nx * 4);
    printf("# %dx%dx%d -> %d, batch %d, %d threads, %d reps; outputs %s\n", C, H, H, OUT, B, T, N,
           same ? "bit-identical" : "DIFFER");
    printf("# unsplit: %s\n# split:   %s\n", wick_conv_describe(c[0]), wick_conv_describe(c[1]));
    for (int i = -5; i < N; i++)
        for (int k = 0; k < 2; k++) {
            int v = (i & 1) ? 1 - k : k;   /* ABBA */
            double a = now();
            wick_conv_forward(c[v], x, w, b, y[v]);
            double m = now();
            wick_conv_backward_data(c[v], y[v], w, dx[v]);
            double e = now();
            if (i >= 0) {
                t[(size_t)(2 * v) * N + i] = m - a;
                t[(size_t)(2 * v + 1) * N + i] = e - m;
            }
        }
    printf("%-8s %-6s %9s %9s %9s\n", "plan", "prod", "median", "q1", "best");
    for (int v = 0; v < 2; v++)
        for (int k = 0; k < 2; k++) {
            double *s = t + (size_t)(2 * v + k) * N;
            qsort(s, N, sizeof *s, cmpd);
            printf("%-8s %-6s %9.3f %9.3f %9.3f  ms\n", v ? "split" : "unsplit", k ? "bwd_d" : "fwd",
                   1e3 * s[N / 2], 1e3 * s[N / 4], 1e3 * s[0]);
        }
    for (int v = 0; v < 2; v++) {
        wick_conv_free(c[v]);
        wick_free(y[v]);
        wick_free(dx[v]);
    }
    wick_free(x); wick_free(w); wick_free(b); free(t);
    return same ? 0 : 1;
}
