/* fma_peak.h — the register-only FMA loop behind bench/peak and the peak
 * column of bench/gemm (included by both; not a library part).
 *
 * Each thread runs NACC independent chains of 256-bit FMAs (8 floats, 16
 * FLOPs each) on registers only.  Zen 3 has two FMA pipes with a 4-cycle
 * latency, so at least 8 chains are in flight to keep both busy; 12 leaves
 * margin.  No memory traffic, no AVX-512 (this machine has none). */
#ifndef WICK_BENCH_FMA_PEAK_H
#define WICK_BENCH_FMA_PEAK_H
#include <immintrin.h>
#include <omp.h>
#include <time.h>

#define NACC 12

static inline double now(void) {
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

/* Peak GFLOP/s on 1 and all threads, best of reps, about ms per rep. */
static inline void fma_peak(int reps, double ms, double *g1, double *gn, int *nt) {
    volatile float sink = 0;
    *nt = omp_get_num_procs();
    long iters = 1 << 20;
    double t0 = now();
    sink += fma_chains(iters, 1);
    double dt = now() - t0;
    iters = (long)(iters * (ms / 1e3) / (dt > 1e-6 ? dt : 1e-6));
    if (iters < 1000) iters = 1000;
    *g1 = measure(1, iters, reps, &sink);
    *gn = measure(*nt, iters, reps, &sink);
}
#endif
