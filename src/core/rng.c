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

#define FILL_NORMAL(NAME, T)                                                            \
    void NAME(T *x, size_t n, double mean, double std, uint64_t seed, uint64_t stream,  \
              uint64_t offset) {                                                        \
        _Pragma("omp parallel for schedule(static) if (n > 65536)")                     \
        for (size_t i = 0; i < n; i++)                                                  \
            x[i] = (T)(mean + std * wick_rand_normal(seed, stream, offset + i));        \
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
