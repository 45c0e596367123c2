/* kernel_bf16.c — the chain executor's products with bfloat16 operands and
 * float32 sums, on AVX512-BF16 (see kernel.h, "bf16").
 *
 * vdpbf16ps takes 16 pairs of bf16 from each operand and adds each pair's
 * two products to one float lane: the sum over p runs two steps at a time,
 * and both operands hold those two steps' entries side by side in a 32-bit
 * word (even p in the low half).  So A and B here are arrays of words, and
 * the kernel is the float zmm kernel's (kernel.c) with words for floats, on
 * its blocking (wick_kern_drive8x32): an 8 x 32 tile, 16 zmm sums, two loads
 * of B and eight broadcast words of A per pair of steps for 16 vdpbf16ps,
 * twice the multiply-adds of a zmm FMA each (this Zen 5 issues both two a
 * cycle: build/bench/peak, 543 against 273 GFLOP/s a core).
 *
 * The conversions round to nearest even (vcvtne2ps2bf16), as PyTorch's
 * autocast does; the tests hold every packer and conversion to a scalar
 * rounding, bit for bit. */
#include "backend/kernel.h"
#include "backend/kernel_zmm.h"
#include <immintrin.h>
#include <stdint.h>
#include <string.h>

#define TGTB __attribute__((target("avx512f,avx512vl,avx512bw,avx512dq,avx512bf16")))
#define INLINE static inline __attribute__((always_inline))

int wick_kern_bf16_ok(void) {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
           __builtin_cpu_supports("avx512vl") && strstr(wick_kern_bf16_features(), "avx512_bf16") != NULL;
}

/* bf16 of x, rounded to nearest even (NaN stays NaN): the scalar rule the
 * vector conversions follow. */
uint16_t wick_bf16_round(float x) {
    uint32_t u;
    memcpy(&u, &x, sizeof u);
    if ((u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)(u >> 16 | 0x40);
    return (uint16_t)((u + 0x7fffu + (u >> 16 & 1)) >> 16);
}

#define R(i) if ((i) < mr)

TGTB INLINE void tileb(const int mr, const int two, int nr, int kq, const uint32_t *a, ptrdiff_t rsa,
                       ptrdiff_t csa, const uint32_t *b, ptrdiff_t ldb, ptrdiff_t bpanel, float *c,
                       ptrdiff_t ldc, const float *bias, int flags, const uint32_t *pf) {
#define DECLB(i) __m512 c##i##0 = _mm512_setzero_ps(), c##i##1 = _mm512_setzero_ps();
    ZMM_ROWS8(DECLB)
    const uint32_t *b2 = b + bpanel;
    _Pragma("GCC unroll 4") for (int q = 0; q < kq; q++) {
        __m512bh b0 = (__m512bh)_mm512_loadu_si512(b + q * ldb);
        __m512bh b1 = two ? (__m512bh)_mm512_loadu_si512(b2 + q * ldb) : b0;
        if (pf) _mm_prefetch((const char *)(pf + q * ldb), _MM_HINT_T1);
#define DPB(i)                                                                   \
        R(i) {                                                                   \
            __m512bh ai = (__m512bh)_mm512_set1_epi32((int)a[i * rsa + q * csa]); \
            c##i##0 = _mm512_dpbf16_ps(c##i##0, ai, b0);                         \
            if (two) c##i##1 = _mm512_dpbf16_ps(c##i##1, ai, b1);                \
        }
        ZMM_ROWS8(DPB)
    }
    ZMM_STORE_TILE();
}

ZMM_TILES(TGTB, tileb, tilesb)

/* The blocking is the float kernel's (kernel.c, wick_kern_drive8x32), over
 * words: kq pairs of steps. */
void wick_kern_gemm_bf16(int m, int n, int kq, const uint32_t *A, ptrdiff_t rsa, ptrdiff_t csa,
                         const uint32_t *B, ptrdiff_t ldb, ptrdiff_t bpanel, float *C, ptrdiff_t ldc,
                         const float *bias, int flags) {
    wick_kern_drive8x32(tilesb, m, n, kq, A, rsa, csa, B, ldb, bpanel, C, ldc, bias, flags);
}

/* ---- conversions and packing ------------------------------------------- */

/* 16 floats of a and 16 of b (masked loads: zero beyond) as 16 words
 * (a[j], b[j]): a in the low halves. */
TGTB INLINE __m512i pair_words(__m512 a, __m512 b) {
    /* cvtne2ps puts b's 16 bf16 after a's... as [a0..a15 | b0..b15] when
       called (b, a); then each a_j next to b_j */
    const __m512i mix = _mm512_set_epi16(31, 15, 30, 14, 29, 13, 28, 12, 27, 11, 26, 10, 25, 9, 24, 8,
                                         23, 7, 22, 6, 21, 5, 20, 4, 19, 3, 18, 2, 17, 1, 16, 0);
    return _mm512_permutexvar_epi16(mix, (__m512i)_mm512_cvtne2ps_pbh(b, a));
}

TGTB INLINE __mmask16 mask16(int n) { return n >= 16 ? 0xffff : n <= 0 ? 0 : (__mmask16)((1u << n) - 1); }

/* Rows [r0, r1), columns [0, cols) of x as words of column pairs:
 * dst[r ldd + w] = (x[r, 2w], x[r, 2w + 1]) (zero past cols), w < ceil(cols / 2). */
TGTB void wick_kern_rows_bf16(const float *x, ptrdiff_t ldx, int r0, int r1, int c0, int cols,
                              uint32_t *dst, ptrdiff_t ldd) {
    for (int r = r0; r < r1; r++) {
        const float *xr = x + r * ldx;
        uint32_t *dr = dst + r * ldd;
        for (int c = c0; c < cols; c += 32) {
            __m512 lo = _mm512_maskz_loadu_ps(mask16(cols - c), xr + c);
            __m512 hi = _mm512_maskz_loadu_ps(mask16(cols - c - 16), xr + c + 16);
            const int words = (cols - c + 1) / 2;
            _mm512_mask_storeu_epi32(dr + c / 2, mask16(words), (__m512i)_mm512_cvtne2ps_pbh(hi, lo));
        }
    }
}

/* Rows [r0, r1) (r0 even), columns [c0, c1) of x as words of row pairs:
 * dst[(r / 2) ldd + c] = (x[r, c], x[r + 1, c]), x[r + 1] zero when r + 1 = rows. */
TGTB void wick_kern_rowpairs_bf16(const float *x, ptrdiff_t ldx, int r0, int r1, int rows, int c0,
                                  int c1, uint32_t *dst, ptrdiff_t ldd) {
    for (int r = r0; r < r1; r += 2) {
        const float *a = x + r * ldx, *b = a + ldx;
        const int has_b = r + 1 < rows;
        uint32_t *dr = dst + (r / 2) * ldd;
        for (int c = c0; c < c1; c += 16) {
            const __mmask16 mk = mask16(c1 - c);
            __m512 va = _mm512_maskz_loadu_ps(mk, a + c);
            __m512 vb = has_b ? _mm512_maskz_loadu_ps(mk, b + c) : _mm512_setzero_ps();
            _mm512_mask_storeu_epi32(dr + c, mk, pair_words(va, vb));
        }
    }
}

/* A 16 x 16 transpose of words in registers: lane j of r[k] <-> lane k of r[j]. */
TGTB INLINE void xpose16(__m512i r[16]) {
    __m512i t[16];
    _Pragma("GCC unroll 16") for (int k = 0; k < 16; k += 2) {
        t[k] = _mm512_unpacklo_epi32(r[k], r[k + 1]);
        t[k + 1] = _mm512_unpackhi_epi32(r[k], r[k + 1]);
    }
    _Pragma("GCC unroll 16") for (int k = 0; k < 16; k += 4) {
        r[k] = _mm512_unpacklo_epi64(t[k], t[k + 2]);
        r[k + 1] = _mm512_unpackhi_epi64(t[k], t[k + 2]);
        r[k + 2] = _mm512_unpacklo_epi64(t[k + 1], t[k + 3]);
        r[k + 3] = _mm512_unpackhi_epi64(t[k + 1], t[k + 3]);
    }
    /* lane L of r[4g + j]: rows 4g..4g+3 of column 4L + j */
    _Pragma("GCC unroll 2") for (int g = 0; g < 16; g += 8)
        _Pragma("GCC unroll 4") for (int j = 0; j < 4; j++) {
            t[g + j] = _mm512_shuffle_i32x4(r[g + j], r[g + 4 + j], 0x88);
            t[g + 4 + j] = _mm512_shuffle_i32x4(r[g + j], r[g + 4 + j], 0xdd);
        }
    _Pragma("GCC unroll 8") for (int j = 0; j < 8; j++) {
        r[j] = _mm512_shuffle_i32x4(t[j], t[j + 8], 0x88);
        r[j + 8] = _mm512_shuffle_i32x4(t[j], t[j + 8], 0xdd);
    }
}

size_t wick_kern_fwd_words_bf16(int N, int K) { return (size_t)(N + 15) / 16 * 16 * ((K + 1) / 2); }
size_t wick_kern_bwd_words_bf16(int N, int K) { return (size_t)(K + 15) / 16 * 16 * ((N + 1) / 2); }

/* Forward layout: P[(n / 16) 16 kq + q 16 + n % 16] = (W[n, 2q], W[n, 2q + 1]),
 * kq = ceil(K / 2): 16 rows' 32 columns as 16 rows of words, transposed. */
TGTB void wick_kern_pack_fwd_bf16(const float *W, int N, int K, int n0, int n1, uint32_t *P) {
    const int kq = (K + 1) / 2;
    for (int p0 = n0; p0 < n1; p0 += 16) {
        uint32_t *panel = P + (size_t)(p0 / 16) * 16 * kq;
        const int rows = (n1 - p0 < 16 ? n1 - p0 : 16);
        for (int k = 0; k < K; k += 32) {
            /* rows past n1 (a last partial panel) read row 0 and are
               zeroed by the mask: no branch in the unrolled body */
            __m512i r[16];
            const __mmask16 mlo = mask16(K - k), mhi = mask16(K - k - 16);
            _Pragma("GCC unroll 16") for (int i = 0; i < 16; i++) {
                const __mmask16 live = i < rows ? 0xffff : 0;
                const float *w = W + (size_t)(p0 + (i < rows ? i : 0)) * K + k;
                __m512 lo = _mm512_maskz_loadu_ps(mlo & live, w);
                __m512 hi = _mm512_maskz_loadu_ps(mhi & live, w + 16);
                r[i] = (__m512i)_mm512_cvtne2ps_pbh(hi, lo);
            }
            xpose16(r);
            const int qs = kq - k / 2 < 16 ? kq - k / 2 : 16;
            if (qs == 16) {
                _Pragma("GCC unroll 16") for (int q = 0; q < 16; q++)
                    _mm512_storeu_si512(panel + (size_t)(k / 2 + q) * 16, r[q]);
            } else {
                for (int q = 0; q < qs; q++) _mm512_storeu_si512(panel + (size_t)(k / 2 + q) * 16, r[q]);
            }
        }
    }
}

/* Data-gradient layout: P[(k / 16) 16 nq + q 16 + k % 16] = (W[2q, k], W[2q + 1, k]),
 * nq = ceil(N / 2); rows [n0, n1), n0 even. */
TGTB void wick_kern_pack_bwd_bf16(const float *W, int N, int K, int n0, int n1, uint32_t *P) {
    const int nq = (N + 1) / 2;
    for (int n = n0; n < n1; n += 2) {
        const float *a = W + (size_t)n * K, *b = a + K;
        const int has_b = n + 1 < N;
        for (int k = 0; k < K; k += 16) {
            const __mmask16 mk = mask16(K - k);
            __m512 va = _mm512_maskz_loadu_ps(mk, a + k);
            __m512 vb = has_b ? _mm512_maskz_loadu_ps(mk, b + k) : _mm512_setzero_ps();
            _mm512_storeu_si512(P + (size_t)(k / 16) * 16 * nq + (size_t)(n / 2) * 16, pair_words(va, vb));
        }
    }
}
