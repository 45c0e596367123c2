/* kernel.c — the chain executor's float matrix product (see kernel.h).
 *
 * A 6 x 16 register tile: 12 accumulators of 8 floats, two 8-float loads of
 * B and six broadcasts of A per step of p, 12 FMAs.  Zen 3 has two FMA pipes
 * of latency 4, so at least 8 independent accumulators keep both busy; 12
 * leave margin, and the 16 ymm registers hold them with B's two rows and one
 * broadcast.  (8 x 8 would need 8 broadcasts per 8 FMAs: bound by loads.)
 *
 * Blocking: p in blocks of at most KC so that one 16-column panel of B
 * (KC x 64 bytes, 16 KiB) stays in L1 while the tiles of a block of at most
 * MC rows of A pass over it; that block of A (MC x KC, 120 KiB) stays in L2
 * while every panel of B passes.  (Without MC, a 512-row A streamed from L3
 * once per panel: batch 512 ran 12% slower.)  Edges: m by tiles of 1..6 rows (each a
 * compile-time instance of the same body), n by masked loads and stores. */
#include "backend/kernel.h"
#include <immintrin.h>
#include <stdint.h>
#include <string.h>

#define MR 6
#define NR 16
#define KC 256
#define MC 120

#define TGT __attribute__((target("avx2,fma")))
#define INLINE static inline __attribute__((always_inline))

int wick_kern_ok(void) {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
}

/* 16 set lanes then 16 clear: a load at offset 16 - nr gives nr set lanes. */
static const int32_t lanes[32] = {-1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1};

TGT INLINE void store_row(float *ci, __m256 x0, __m256 x1, __m256i m0, __m256i m1, int full,
                          __m256 bi0, __m256 bi1, int flags) {
    if (flags & WICK_KERN_ACC) {
        x0 = _mm256_add_ps(x0, full ? _mm256_loadu_ps(ci) : _mm256_maskload_ps(ci, m0));
        x1 = _mm256_add_ps(x1, full ? _mm256_loadu_ps(ci + 8) : _mm256_maskload_ps(ci + 8, m1));
    } else if (flags & WICK_KERN_BIAS) {
        x0 = _mm256_add_ps(x0, bi0);
        x1 = _mm256_add_ps(x1, bi1);
    }
    if (flags & WICK_KERN_RELU) {
        x0 = _mm256_max_ps(x0, _mm256_setzero_ps());
        x1 = _mm256_max_ps(x1, _mm256_setzero_ps());
    }
    if (full) {
        _mm256_storeu_ps(ci, x0);
        _mm256_storeu_ps(ci + 8, x1);
    } else {
        _mm256_maskstore_ps(ci, m0, x0);
        _mm256_maskstore_ps(ci + 8, m1, x1);
    }
}

/* The accumulators are named variables, not an array: gcc keeps an array of
 * vectors in memory across the loop (a store per FMA), named ones in
 * registers.  R(i) guards row i, constant-folded in each instance. */
#define ROWS(X) X(0) X(1) X(2) X(3) X(4) X(5)
#define R(i) if (mr > i)

TGT INLINE void tile(const int mr, int nr, int kc, const float *a, ptrdiff_t rsa, ptrdiff_t csa,
                     const float *b, ptrdiff_t ldb, float *c, ptrdiff_t ldc, const float *bias,
                     int flags) {
#define DECL(i) __m256 c##i##0 = _mm256_setzero_ps(), c##i##1 = _mm256_setzero_ps();
    ROWS(DECL)
    for (int p = 0; p < kc; p++) {
        __m256 b0 = _mm256_loadu_ps(b), b1 = _mm256_loadu_ps(b + 8), ai;
#define FMA(i)                                                 \
        R(i) {                                                 \
            ai = _mm256_broadcast_ss(a + i * rsa + p * csa);   \
            c##i##0 = _mm256_fmadd_ps(ai, b0, c##i##0);        \
            c##i##1 = _mm256_fmadd_ps(ai, b1, c##i##1);        \
        }
        ROWS(FMA)
        b += ldb;
    }
    const __m256i m0 = _mm256_loadu_si256((const __m256i *)(lanes + NR - nr));
    const __m256i m1 = _mm256_loadu_si256((const __m256i *)(lanes + NR - nr + 8));
    const int full = nr == NR;
    __m256 bi0 = _mm256_setzero_ps(), bi1 = bi0;
    if (flags & WICK_KERN_BIAS) {
        bi0 = full ? _mm256_loadu_ps(bias) : _mm256_maskload_ps(bias, m0);
        bi1 = full ? _mm256_loadu_ps(bias + 8) : _mm256_maskload_ps(bias + 8, m1);
    }
#define STORE(i) R(i) store_row(c + i * ldc, c##i##0, c##i##1, m0, m1, full, bi0, bi1, flags);
    ROWS(STORE)
}

/* One instance per tile height, so every loop over rows unrolls. */
#define TILE(R)                                                                               \
    TGT static void tile##R(int nr, int kc, const float *a, ptrdiff_t rsa, ptrdiff_t csa,     \
                            const float *b, ptrdiff_t ldb, float *c, ptrdiff_t ldc,           \
                            const float *bias, int flags) {                                   \
        tile(R, nr, kc, a, rsa, csa, b, ldb, c, ldc, bias, flags);                            \
    }
TILE(1) TILE(2) TILE(3) TILE(4) TILE(5) TILE(6)
typedef void (*tile_fn)(int, int, const float *, ptrdiff_t, ptrdiff_t, const float *, ptrdiff_t,
                        float *, ptrdiff_t, const float *, int);
static const tile_fn tiles[MR + 1] = {NULL, tile1, tile2, tile3, tile4, tile5, tile6};

TGT void wick_kern_gemm(int m, int n, int k, const float *A, ptrdiff_t rsa, ptrdiff_t csa,
                        const float *B, ptrdiff_t ldb, ptrdiff_t bpanel, float *C, ptrdiff_t ldc,
                        const float *bias, int flags) {
    if (m <= 0 || n <= 0) return;
    /* equal blocks of at most KC (784 = 3 x 261.3, not 256 + 256 + 256 + 16) */
    int nb = k > 0 ? (k + KC - 1) / KC : 1;
    /* row blocks of equal size, whole tiles */
    int mb = (m + MC - 1) / MC, mc = ((m + mb - 1) / mb + MR - 1) / MR * MR;
    for (int blk = 0; blk < nb; blk++) {
        int k0 = (int)((long)k * blk / nb), k1 = (int)((long)k * (blk + 1) / nb);
        int f = blk == 0 ? flags & (WICK_KERN_ACC | WICK_KERN_BIAS) : WICK_KERN_ACC;
        if (blk == nb - 1) f |= flags & WICK_KERN_RELU;
        for (int ib = 0; ib < m; ib += mc) {
            int ie = ib + mc < m ? ib + mc : m;
            for (int j0 = 0; j0 < n; j0 += NR) {
                int nr = n - j0 < NR ? n - j0 : NR;
                const float *bp = B + (j0 / NR) * bpanel + (ptrdiff_t)k0 * ldb;
                const float *bj = bias ? bias + j0 : NULL;
                for (int i0 = ib; i0 < ie; i0 += MR) {
                    int mr = ie - i0 < MR ? ie - i0 : MR;
                    tiles[mr](nr, k1 - k0, A + i0 * rsa + (ptrdiff_t)k0 * csa, rsa, csa, bp, ldb,
                              C + i0 * ldc + j0, ldc, bj, f);
                }
            }
        }
    }
}

/* ---- packing ------------------------------------------------------------ */

size_t wick_kern_fwd_elems(int N, int K) { return (size_t)(N + NR - 1) / NR * NR * K; }
size_t wick_kern_bwd_elems(int N, int K) { return (size_t)(K + NR - 1) / NR * NR * N; }

/* In-register transpose of an 8 x 8 block. */
TGT INLINE void transpose8(__m256 r[8]) {
    __m256 t[8], s[8];
    for (int i = 0; i < 4; i++) {
        t[2 * i] = _mm256_unpacklo_ps(r[2 * i], r[2 * i + 1]);
        t[2 * i + 1] = _mm256_unpackhi_ps(r[2 * i], r[2 * i + 1]);
    }
    for (int h = 0; h < 2; h++) {
        s[4 * h + 0] = _mm256_shuffle_ps(t[4 * h + 0], t[4 * h + 2], 0x44);
        s[4 * h + 1] = _mm256_shuffle_ps(t[4 * h + 0], t[4 * h + 2], 0xEE);
        s[4 * h + 2] = _mm256_shuffle_ps(t[4 * h + 1], t[4 * h + 3], 0x44);
        s[4 * h + 3] = _mm256_shuffle_ps(t[4 * h + 1], t[4 * h + 3], 0xEE);
    }
    for (int i = 0; i < 4; i++) {
        r[i] = _mm256_permute2f128_ps(s[i], s[4 + i], 0x20);
        r[4 + i] = _mm256_permute2f128_ps(s[i], s[4 + i], 0x31);
    }
}

TGT void wick_kern_pack_fwd(const float *W, int N, int K, int n0, int n1, float *P) {
    for (int q = n0; q < n1; q += NR) {
        float *panel = P + (size_t)(q / NR) * K * NR;
        const float *w = W + (size_t)q * K;
        int rows = n1 - q < NR ? n1 - q : NR, p = 0;
        if (rows == NR)   /* 8 columns of 16 rows: two transposes, 8 whole lines out */
            for (; p + 8 <= K; p += 8) {
                __m256 lo[8], hi[8];
                for (int i = 0; i < 8; i++) {
                    lo[i] = _mm256_loadu_ps(w + (size_t)i * K + p);
                    hi[i] = _mm256_loadu_ps(w + (size_t)(i + 8) * K + p);
                }
                transpose8(lo);
                transpose8(hi);
                for (int i = 0; i < 8; i++) {
                    _mm256_storeu_ps(panel + (size_t)(p + i) * NR, lo[i]);
                    _mm256_storeu_ps(panel + (size_t)(p + i) * NR + 8, hi[i]);
                }
            }
        for (; p < K; p++)
            for (int i = 0; i < NR; i++) panel[(size_t)p * NR + i] = i < rows ? w[(size_t)i * K + p] : 0.0f;
    }
}

TGT void wick_kern_pack_bwd(const float *W, int N, int K, int n0, int n1, float *P) {
    const size_t panel = (size_t)N * NR;
    for (int n = n0; n < n1; n++) {
        const float *row = W + (size_t)n * K;
        float *dst = P + (size_t)n * NR;
        int j = 0;
        for (; j + NR <= K; j += NR, dst += panel) {
            _mm256_storeu_ps(dst, _mm256_loadu_ps(row + j));
            _mm256_storeu_ps(dst + 8, _mm256_loadu_ps(row + j + 8));
        }
        if (j < K) {
            for (int i = 0; i < NR; i++) dst[i] = j + i < K ? row[j + i] : 0.0f;
        }
    }
}
