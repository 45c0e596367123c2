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

/* The bf16 dot product (AVX512-BF16's vdpbf16ps: 16 lanes, two
 * multiply-adds each, 64 FLOPs an instruction), for --precision bf16's
 * ceiling.  Its latency is longer than the FMA's: 12 chains reached 485
 * GFLOP/s a core on Zen 5, 16 chains 545, twice the zmm FMA's 273. */
#define NACC_BF16 16
__attribute__((target("avx512f,avx512bf16"))) static inline float bf16_chains(long iters, float seed) {
    __m512 acc[NACC_BF16];
    __m512bh a = (__m512bh)_mm512_set1_epi16(0x3f80), b = (__m512bh)_mm512_set1_epi16(0x3380);
    for (int i = 0; i < NACC_BF16; i++) acc[i] = _mm512_set1_ps(seed + i);
    for (long n = 0; n < iters; n++) {
        _Pragma("GCC unroll 16") for (int i = 0; i < NACC_BF16; i++) acc[i] = _mm512_dpbf16_ps(acc[i], a, b);
        __asm__ volatile("" : "+v"(a), "+v"(b));
    }
    __m512 s = acc[0];
    for (int i = 1; i < NACC_BF16; i++) s = _mm512_add_ps(s, acc[i]);
    float out[16];
    memcpy(out, &s, sizeof s);
    return out[0] + out[15];
}

/* Whether this CPU has AVX512-BF16 (cpuid leaf 7, subleaf 1, eax bit 5). */
static inline int has_bf16(void) {
    unsigned a, b, c, d;
    __builtin_cpu_init();
    if (!__builtin_cpu_supports("avx512f")) return 0;
    __asm__("cpuid" : "=a"(a), "=b"(b), "=c"(c), "=d"(d) : "a"(7), "c"(1));
    return a >> 5 & 1;
}

/* GFLOP/s of `threads` threads each running `iters` iterations; best of reps.
 * bf16: the dot product's chains instead of the FMA's. */
static inline double measure_kind(int threads, long iters, int reps, volatile float *sink, int bf16) {
    double best = 0;
    for (int r = 0; r < reps; r++) {
        double t0 = now();
        #pragma omp parallel num_threads(threads)
        {
            float v = bf16 ? bf16_chains(iters, (float)omp_get_thread_num())
                           : fma_run(iters, (float)omp_get_thread_num());
            #pragma omp atomic
            *sink += v;
        }
        double dt = now() - t0;
        double gf = bf16 ? (double)threads * iters * NACC_BF16 * 64 / dt / 1e9
                         : (double)threads * iters * NACC * 2 * fma_lanes() / dt / 1e9;
        if (gf > best) best = gf;
    }
    return best;
}
static double measure(int threads, long iters, int reps, volatile float *sink) {
    return measure_kind(threads, iters, reps, sink, 0);
}


/* Iterations of the FMA (bf16 = 0) or bf16 chains that take about ms. */
static inline long calibrate(double ms, int bf16, volatile float *sink) {
    long iters = 1 << 20;
    double t0 = now();
    *sink += bf16 ? bf16_chains(iters, 1) : fma_run(iters, 1);
    double dt = now() - t0;
    iters = (long)(iters * (ms / 1e3) / (dt > 1e-6 ? dt : 1e-6));
    return iters < 1000 ? 1000 : iters;
}

/* Peak GFLOP/s on 1 and all threads, best of reps, about ms per rep. */
static inline void fma_peak(int reps, double ms, double *g1, double *gn, int *nt) {
    volatile float sink = 0;
    *nt = omp_get_num_procs();
    long iters = calibrate(ms, 0, &sink);
    *g1 = measure(1, iters, reps, &sink);
    *gn = measure(*nt, iters, reps, &sink);
}

/* The bf16 dot product's peak on 1 and all threads (0 without AVX512-BF16),
 * about ms per rep. */
static inline void bf16_peak(int reps, double ms, double *g1, double *gn) {
    *g1 = *gn = 0;
    if (!has_bf16()) return;
    volatile float sink = 0;
    long iters = calibrate(ms, 1, &sink);
    *g1 = measure_kind(1, iters, reps, &sink, 1);
    *gn = measure_kind(omp_get_num_procs(), iters, reps, &sink, 1);
}
#endif
