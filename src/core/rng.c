/* rng.c — Philox4x32-10 (Salmon et al., "Parallel random numbers: as easy as
 * 1, 2, 3", SC 2011).  A draw is a pure function of (seed, stream, index):
 * the counter holds (index, stream), the key the seed.  So a run's draws do
 * not depend on the thread count or the order of work, and each of 10^4
 * ensemble members gets its own stream. */
#include "core.h"
#include <math.h>

#define PHILOX_M0 0xD2511F53u
#define PHILOX_M1 0xCD9E8D57u
#define PHILOX_W0 0x9E3779B9u
#define PHILOX_W1 0xBB67AE85u

void wick_philox4x32(const uint32_t ctr[4], const uint32_t key[2], uint32_t out[4]) {
    uint32_t c0 = ctr[0], c1 = ctr[1], c2 = ctr[2], c3 = ctr[3];
    uint32_t k0 = key[0], k1 = key[1];
    for (int r = 0; r < 10; r++) {
        uint64_t p0 = (uint64_t)PHILOX_M0 * c0, p1 = (uint64_t)PHILOX_M1 * c2;
        uint32_t hi0 = (uint32_t)(p0 >> 32), lo0 = (uint32_t)p0;
        uint32_t hi1 = (uint32_t)(p1 >> 32), lo1 = (uint32_t)p1;
        c0 = hi1 ^ c1 ^ k0;
        c1 = lo1;
        c2 = hi0 ^ c3 ^ k1;
        c3 = lo0;
        k0 += PHILOX_W0;
        k1 += PHILOX_W1;
    }
    out[0] = c0; out[1] = c1; out[2] = c2; out[3] = c3;
}

/* One Philox block: 128 bits for counter `block` of `stream`. */
static void block(uint64_t seed, uint64_t stream, uint64_t blk, uint32_t out[4]) {
    uint32_t ctr[4] = {(uint32_t)blk, (uint32_t)(blk >> 32), (uint32_t)stream,
                       (uint32_t)(stream >> 32)};
    uint32_t key[2] = {(uint32_t)seed, (uint32_t)(seed >> 32)};
    wick_philox4x32(ctr, key, out);
}

/* 64 random bits to a double in the open interval (0, 1). */
static double to_unit(uint32_t hi, uint32_t lo) {
    uint64_t b = ((uint64_t)hi << 32 | lo) >> 11;      /* 53 bits */
    return ((double)b + 0.5) * (1.0 / 9007199254740992.0);
}

/* A block gives two uniforms, u[0] and u[1]: uniform draw i is u[i % 2] of
 * block i / 2, and normal draw i the matching half of the Box-Muller pair. */
double wick_rand_uniform(uint64_t seed, uint64_t stream, uint64_t index) {
    uint32_t r[4];
    block(seed, stream, index >> 1, r);
    return (index & 1) ? to_unit(r[2], r[3]) : to_unit(r[0], r[1]);
}

static void normal_pair(uint64_t seed, uint64_t stream, uint64_t blk, double *n0, double *n1) {
    uint32_t r[4];
    block(seed, stream, blk, r);
    double u1 = to_unit(r[0], r[1]), u2 = to_unit(r[2], r[3]);
    double rad = sqrt(-2.0 * log(u1)), th = 6.283185307179586477 * u2;
    *n0 = rad * cos(th);
    *n1 = rad * sin(th);
}

double wick_rand_normal(uint64_t seed, uint64_t stream, uint64_t index) {
    double a, b;
    normal_pair(seed, stream, index >> 1, &a, &b);
    return (index & 1) ? b : a;
}

/* Both halves of each pair are used (one Philox block and one log, sin, cos
 * per two draws, not per draw); the values are wick_rand_normal's, bit for
 * bit, so a fill is the same whatever its offset's parity or the threads. */
#define FILL_NORMAL(NAME, T)                                                            \
    void NAME(T *x, size_t n, double mean, double std, uint64_t seed, uint64_t stream,  \
              uint64_t offset) {                                                        \
        if (n == 0) return;                                                             \
        size_t head = (size_t)(offset & 1), np = (n - head) / 2;                        \
        uint64_t blk0 = (offset + head) >> 1;                                           \
        if (head) x[0] = (T)(mean + std * wick_rand_normal(seed, stream, offset));      \
        _Pragma("omp parallel for schedule(static) if (n > 65536)")                     \
        for (size_t p = 0; p < np; p++) {                                               \
            double a, b;                                                                \
            normal_pair(seed, stream, blk0 + p, &a, &b);                                \
            x[head + 2 * p] = (T)(mean + std * a);                                      \
            x[head + 2 * p + 1] = (T)(mean + std * b);                                  \
        }                                                                               \
        if (head + 2 * np < n)                                                          \
            x[n - 1] = (T)(mean + std * wick_rand_normal(seed, stream, offset + n - 1)); \
    }
FILL_NORMAL(wick_fill_normal_f32, float)
FILL_NORMAL(wick_fill_normal_f64, double)

void wick_permutation(uint32_t *perm, size_t n, uint64_t seed, uint64_t stream) {
    for (size_t i = 0; i < n; i++) perm[i] = (uint32_t)i;
    for (size_t i = n; i > 1; i--) {
        /* 64-bit uniform draw scaled to [0, i): bias below 2^-40 for n < 2^24 */
        size_t j = (size_t)(wick_rand_uniform(seed, stream, i) * (double)i);
        if (j >= i) j = i - 1;
        uint32_t t = perm[i - 1]; perm[i - 1] = perm[j]; perm[j] = t;
    }
}

#ifdef __AVX2__
#include <immintrin.h>
/* glibc's vector math (libmvec, linked through libm's linker script) */
__m256d _ZGVdN4v_log(__m256d x);
__m256d _ZGVdN4v_sin(__m256d x);
__m256d _ZGVdN4v_cos(__m256d x);

/* 64-bit lanes holding values below 2^53 to doubles, exactly */
static inline __m256d u53_to_pd(__m256i b) {
    const __m256i magic = _mm256_set1_epi64x(0x4330000000000000LL);
    const __m256d two52 = _mm256_set1_pd(4503599627370496.0);
    __m256i hi = _mm256_srli_epi64(b, 32), lo = _mm256_and_si256(b, _mm256_set1_epi64x(0xffffffffLL));
    __m256d dh = _mm256_sub_pd(_mm256_castsi256_pd(_mm256_or_si256(hi, magic)), two52);
    __m256d dl = _mm256_sub_pd(_mm256_castsi256_pd(_mm256_or_si256(lo, magic)), two52);
    return _mm256_add_pd(_mm256_mul_pd(dh, _mm256_set1_pd(4294967296.0)), dl);
}

/* Blocks blk .. blk+7 of the stream, each a Box-Muller pair, into x[0..16):
 * two independent 4-lane Philox chains, interleaved for the multiplier's
 * latency. */
static void normal_pairs8(uint64_t seed, uint64_t stream, uint64_t blk, double *x) {
    __m256i c0[2], c1[2], c2[2], c3[2];
    for (int h = 0; h < 2; h++) {
        uint64_t q = blk + 4 * (uint64_t)h;
        c0[h] = _mm256_set_epi64x((uint32_t)(q + 3), (uint32_t)(q + 2), (uint32_t)(q + 1),
                                  (uint32_t)q);
        c1[h] = _mm256_set_epi64x((q + 3) >> 32, (q + 2) >> 32, (q + 1) >> 32, q >> 32);
        c2[h] = _mm256_set1_epi64x((uint32_t)stream);
        c3[h] = _mm256_set1_epi64x(stream >> 32);
    }
    const __m256i m0 = _mm256_set1_epi64x(PHILOX_M0), m1 = _mm256_set1_epi64x(PHILOX_M1);
    const __m256i lo32 = _mm256_set1_epi64x(0xffffffffLL);
    uint32_t k0 = (uint32_t)seed, k1 = (uint32_t)(seed >> 32);
    for (int r = 0; r < 10; r++) {
        __m256i K0 = _mm256_set1_epi64x(k0), K1 = _mm256_set1_epi64x(k1);
        for (int h = 0; h < 2; h++) {
            __m256i p0 = _mm256_mul_epu32(c0[h], m0), p1 = _mm256_mul_epu32(c2[h], m1);
            __m256i n0 = _mm256_xor_si256(_mm256_xor_si256(_mm256_srli_epi64(p1, 32), c1[h]), K0);
            __m256i n2 = _mm256_xor_si256(_mm256_xor_si256(_mm256_srli_epi64(p0, 32), c3[h]), K1);
            c1[h] = _mm256_and_si256(p1, lo32);
            c3[h] = _mm256_and_si256(p0, lo32);
            c0[h] = n0;
            c2[h] = n2;
        }
        k0 += PHILOX_W0;
        k1 += PHILOX_W1;
    }
    const __m256d scale = _mm256_set1_pd(1.0 / 9007199254740992.0), half = _mm256_set1_pd(0.5);
    for (int h = 0; h < 2; h++) {
        __m256i b1 = _mm256_srli_epi64(_mm256_or_si256(_mm256_slli_epi64(c0[h], 32), c1[h]), 11);
        __m256i b2 = _mm256_srli_epi64(_mm256_or_si256(_mm256_slli_epi64(c2[h], 32), c3[h]), 11);
        __m256d u1 = _mm256_mul_pd(_mm256_add_pd(u53_to_pd(b1), half), scale);
        __m256d u2 = _mm256_mul_pd(_mm256_add_pd(u53_to_pd(b2), half), scale);
        __m256d rad = _mm256_sqrt_pd(_mm256_mul_pd(_mm256_set1_pd(-2.0), _ZGVdN4v_log(u1)));
        __m256d th = _mm256_mul_pd(_mm256_set1_pd(6.283185307179586477), u2);
        __m256d z0 = _mm256_mul_pd(rad, _ZGVdN4v_cos(th)), z1 = _mm256_mul_pd(rad, _ZGVdN4v_sin(th));
        __m256d lo = _mm256_unpacklo_pd(z0, z1), hi = _mm256_unpackhi_pd(z0, z1);
        _mm256_storeu_pd(x + 8 * h, _mm256_permute2f128_pd(lo, hi, 0x20));
        _mm256_storeu_pd(x + 8 * h + 4, _mm256_permute2f128_pd(lo, hi, 0x31));
    }
}
#endif

/* The vector filler: x[i] = wick_rand_normal(seed, stream, offset + i) to
 * within a few ulps (glibc's vector log/sin/cos instead of the scalar ones),
 * both halves of each Box-Muller pair used, 8 Philox blocks at a time with
 * AVX2.  Used where weights are drawn by the million (src/experiments). */
void wick_fill_normal_fast(double *x, size_t n, uint64_t seed, uint64_t stream, uint64_t offset) {
    size_t i = 0;
    double a, b;
    if (n == 0) return;
    if (offset & 1) {  /* an odd start takes the second half of its pair */
        normal_pair(seed, stream, offset >> 1, &a, &b);
        x[i++] = b;
    }
#ifdef __AVX2__
    for (; i + 16 <= n; i += 16) normal_pairs8(seed, stream, (offset + i) >> 1, x + i);
#endif
    for (; i + 1 < n; i += 2) normal_pair(seed, stream, (offset + i) >> 1, x + i, x + i + 1);
    if (i < n) {
        normal_pair(seed, stream, (offset + i) >> 1, &a, &b);
        x[i] = a;
    }
}
