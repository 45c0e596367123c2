/* fma_peak.h — the register-only FMA loop behind bench/peak and the peak
 * column of bench/gemm (included by both; not a library part).
 *
 * Each thread runs NACC independent chains of FMAs on registers only, of the
 * widest vectors the CPU has: 512 bits (16 floats, 32 FLOPs an FMA) with
 * AVX-512, else 256.  Two FMA pipes with a 4-cycle latency need at least 8
 * chains in flight; 12 leave margin.  No memory traffic.  The machine's
 * limit is what its widest FMA does: on an AVX-512 CPU a ymm-only figure
 * would be half of it (Sapphire Rapids here: 214 vs 114 GFLOP/s a core). */
#ifndef WICK_BENCH_FMA_PEAK_H
#define WICK_BENCH_FMA_PEAK_H
#include <immintrin.h>
#include <omp.h>
#include <string.h>
#include <time.h>

#define NACC 12

static inline double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + 1e-9 * t.tv_nsec;
}

/* iters x NACC FMAs of VEC (8 or 16 floats); returns a value that depends on
 * every chain so the compiler keeps them all.  One body for both widths. */
#define FMA_CHAINS(NAME, TARGET, VEC, SET1, FMADD, ADD, REG)                              \
    TARGET static float NAME(long iters, float seed) {                                    \
        VEC a = SET1(1.0f - 1e-7f), b = SET1(1e-7f), acc[NACC];                           \
        for (int i = 0; i < NACC; i++) acc[i] = SET1(seed + i);                           \
        for (long n = 0; n < iters; n++) {                                                \
            _Pragma("GCC unroll 12") for (int i = 0; i < NACC; i++) acc[i] = FMADD(acc[i], a, b); \
            /* keep a, b opaque so the chain cannot be folded */                          \
            __asm__ volatile("" : "+" REG(a), "+" REG(b));                                \
        }                                                                                 \
        VEC s = acc[0];                                                                   \
        for (int i = 1; i < NACC; i++) s = ADD(s, acc[i]);                                \
        float out[sizeof(VEC) / sizeof(float)];                                           \
        memcpy(out, &s, sizeof s);                                                        \
        return out[0] + out[sizeof(VEC) / sizeof(float) - 1];                             \
    }
FMA_CHAINS(fma_chains, , __m256, _mm256_set1_ps, _mm256_fmadd_ps, _mm256_add_ps, "x")
FMA_CHAINS(fma_chains512, __attribute__((target("avx512f"))), __m512, _mm512_set1_ps,
           _mm512_fmadd_ps, _mm512_add_ps, "v")

/* Floats in the widest FMA this CPU has: 16 with AVX-512, else 8. */
static inline int fma_lanes(void) {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512f") ? 16 : 8;
}

static float fma_run(long iters, float seed) {
    return fma_lanes() == 16 ? fma_chains512(iters, seed) : fma_chains(iters, seed);
}

/* GFLOP/s of `threads` threads each running `iters` iterations; best of reps. */
static double measure(int threads, long iters, int reps, volatile float *sink) {
    double best = 0;
    for (int r = 0; r < reps; r++) {
        double t0 = now();
        #pragma omp parallel num_threads(threads)
        {
            float v = fma_run(iters, (float)omp_get_thread_num());
            #pragma omp atomic
            *sink += v;
        }
        double dt = now() - t0;
        double gf = (double)threads * iters * NACC * 2 * fma_lanes() / dt / 1e9;
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
    sink += fma_run(iters, 1);
    double dt = now() - t0;
    iters = (long)(iters * (ms / 1e3) / (dt > 1e-6 ? dt : 1e-6));
    if (iters < 1000) iters = 1000;
    *g1 = measure(1, iters, reps, &sink);
    *gn = measure(*nt, iters, reps, &sink);
}
#endif
