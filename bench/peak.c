/* peak.c — this machine's fp32 FMA throughput, the ceiling every wick speed
 * figure is divided by (issue 7).
 *
 * Each thread runs NACC independent chains of 256-bit FMAs (8 floats, 16
 * FLOPs each) on registers only.  Zen 3 has two FMA pipes with a 4-cycle
 * latency, so at least 8 chains are in flight to keep both busy; 12 leaves
 * margin.  No memory traffic, no AVX-512 (this machine has none).  The best
 * of several repetitions is reported, because the cores are shared.
 *
 *   build/bench/peak [--json] [--reps N] [--ms T]
 * prints GFLOP/s on 1 thread and on all (omp_get_num_procs()) threads. */
#include <immintrin.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define NACC 12

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + 1e-9 * t.tv_nsec;
}

/* iters x NACC FMAs of 8 lanes; returns a value that depends on every chain so
 * the compiler keeps them all. */
static float fma_chains(long iters, float seed) {
    __m256 a = _mm256_set1_ps(1.0f - 1e-7f), b = _mm256_set1_ps(1e-7f);
    __m256 acc[NACC];
    for (int i = 0; i < NACC; i++) acc[i] = _mm256_set1_ps(seed + i);
    for (long n = 0; n < iters; n++) {
        #pragma GCC unroll 12
        for (int i = 0; i < NACC; i++) acc[i] = _mm256_fmadd_ps(acc[i], a, b);
        /* keep a, b opaque so the chain cannot be folded */
        __asm__ volatile("" : "+x"(a), "+x"(b));
    }
    __m256 s = acc[0];
    for (int i = 1; i < NACC; i++) s = _mm256_add_ps(s, acc[i]);
    float out[8];
    _mm256_storeu_ps(out, s);
    return out[0] + out[7];
}

/* GFLOP/s of `threads` threads each running `iters` iterations; best of reps. */
static double measure(int threads, long iters, int reps, volatile float *sink) {
    double best = 0;
    for (int r = 0; r < reps; r++) {
        double t0 = now();
        #pragma omp parallel num_threads(threads)
        {
            float v = fma_chains(iters, (float)omp_get_thread_num());
            #pragma omp atomic
            *sink += v;
        }
        double dt = now() - t0;
        double gf = (double)threads * iters * NACC * 16 / dt / 1e9;
        if (gf > best) best = gf;
    }
    return best;
}

int main(int argc, char **argv) {
    int json = 0, reps = 7;
    double ms = 200;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--json")) json = 1;
        else if (!strcmp(argv[i], "--reps") && i + 1 < argc) reps = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--ms") && i + 1 < argc) ms = atof(argv[++i]);
        else {
            fprintf(stderr, "usage: %s [--json] [--reps N] [--ms T]\n", argv[0]);
            return 2;
        }
    }
    if (reps < 1 || ms <= 0) { fprintf(stderr, "peak: --reps and --ms must be positive\n"); return 2; }
    volatile float sink = 0;
    int nt = omp_get_num_procs();
    /* calibrate iterations to about `ms` milliseconds on one thread */
    long iters = 1 << 20;
    double t0 = now();
    sink += fma_chains(iters, 1);
    double dt = now() - t0;
    iters = (long)(iters * (ms / 1e3) / (dt > 1e-6 ? dt : 1e-6));
    if (iters < 1000) iters = 1000;
    double g1 = measure(1, iters, reps, &sink);
    double gn = measure(nt, iters, reps, &sink);
    if (json)
        printf("{\"peak_gflops_1\": %.1f, \"peak_gflops_all\": %.1f, \"threads_all\": %d, "
               "\"chains\": %d, \"reps\": %d}\n", g1, gn, nt, NACC, reps);
    else
        printf("fp32 FMA peak (%d ymm chains, best of %d): 1 thread %.1f GFLOP/s, "
               "%d threads %.1f GFLOP/s\n", NACC, reps, g1, nt, gn);
    return sink == 12345.f; /* never: only to use sink */
}
