/* kernel_zmm.h — the end of an 8 x 32 zmm tile, shared by the float tile
 * (kernel.c, tile5) and the bf16 one (kernel_bf16.c, tileb): the sums in
 * accumulators c00, c01 .. c70, c71 (row i, columns 0-15 and 16-31) go to C
 * through wick_kern_gemm's flags (add C, or the bias; then the ReLU), masked to
 * nr columns and mr rows; and the 16 instances of a tile body with their
 * table.  Private to src/backend. */
#ifndef WICK_BACKEND_KERNEL_ZMM_H
#define WICK_BACKEND_KERNEL_ZMM_H
#include "backend/kernel.h"
#include <immintrin.h>

#define ZMM_ROWS8(X) X(0) X(1) X(2) X(3) X(4) X(5) X(6) X(7)

/* A tile body BODY(mr, two, nr, kc, a, rsa, csa, b, ldb, bpanel, c, ldc,
 * bias, flags, pf) as its 16 instances (mr 1..8, two 0/1), each a
 * wick_kern_tile_fn, and their table NAME[two][mr] for
 * wick_kern_drive8x32. */
#define ZMM_TILE_FN(TGT, BODY, R, T)                                                              \
    TGT static void BODY##_##R##_##T(int nr, int kc, const void *a, ptrdiff_t rsa, ptrdiff_t csa,  \
                                     const void *b, ptrdiff_t ldb, ptrdiff_t bpanel, float *c,     \
                                     ptrdiff_t ldc, const float *bias, int flags, const void *pf) { \
        BODY(R, T, nr, kc, a, rsa, csa, b, ldb, bpanel, c, ldc, bias, flags, pf);                  \
    }
#define ZMM_TILE_FNS(TGT, BODY, T)                                                                \
    ZMM_TILE_FN(TGT, BODY, 1, T) ZMM_TILE_FN(TGT, BODY, 2, T) ZMM_TILE_FN(TGT, BODY, 3, T)          \
    ZMM_TILE_FN(TGT, BODY, 4, T) ZMM_TILE_FN(TGT, BODY, 5, T) ZMM_TILE_FN(TGT, BODY, 6, T)          \
    ZMM_TILE_FN(TGT, BODY, 7, T) ZMM_TILE_FN(TGT, BODY, 8, T)
#define ZMM_TILES(TGT, BODY, NAME)                                                                \
    ZMM_TILE_FNS(TGT, BODY, 0) ZMM_TILE_FNS(TGT, BODY, 1)                                          \
    static const wick_kern_tile_fn NAME[2][WICK_KERN_MR5 + 1] = {                                 \
        {NULL, BODY##_1_0, BODY##_2_0, BODY##_3_0, BODY##_4_0, BODY##_5_0, BODY##_6_0, BODY##_7_0, \
         BODY##_8_0},                                                                             \
        {NULL, BODY##_1_1, BODY##_2_1, BODY##_3_1, BODY##_4_1, BODY##_5_1, BODY##_6_1, BODY##_7_1, \
         BODY##_8_1},                                                                             \
    };

__attribute__((target("avx512f"), always_inline)) static inline __m512
zmm_epi(__m512 x, float *ci, __mmask16 m, __m512 bi, int flags) {
    if (flags & WICK_KERN_ACC) x = _mm512_add_ps(x, _mm512_maskz_loadu_ps(m, ci));
    else if (flags & WICK_KERN_BIAS) x = _mm512_add_ps(x, bi);
    if (flags & WICK_KERN_RELU) x = _mm512_max_ps(x, _mm512_setzero_ps());
    return x;
}

/* In a tile function with mr, two, nr, c, ldc, bias, flags in scope. */
#define ZMM_STORE_ROW(i)                                                                          \
    if ((i) < mr) {                                                                               \
        float *ci = c + (i) * ldc;                                                                \
        _mm512_mask_storeu_ps(ci, m0, zmm_epi(c##i##0, ci, m0, bi0, flags));                      \
        if (two) _mm512_mask_storeu_ps(ci + 16, m1, zmm_epi(c##i##1, ci + 16, m1, bi1, flags));   \
    }
#define ZMM_STORE_TILE()                                                                          \
    do {                                                                                          \
        const __mmask16 m0 = nr >= 16 ? 0xffff : (__mmask16)((1u << nr) - 1);                     \
        const __mmask16 m1 = nr >= 32 ? 0xffff : nr > 16 ? (__mmask16)((1u << (nr - 16)) - 1) : 0; \
        __m512 bi0 = _mm512_setzero_ps(), bi1 = bi0;                                              \
        if (flags & WICK_KERN_BIAS) {                                                             \
            bi0 = _mm512_maskz_loadu_ps(m0, bias);                                                \
            if (two) bi1 = _mm512_maskz_loadu_ps(m1, bias + 16);                                  \
        }                                                                                         \
        ZMM_ROWS8(ZMM_STORE_ROW)                                                                  \
    } while (0)
#endif
