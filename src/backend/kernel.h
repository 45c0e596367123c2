/* kernel.h — wick's own single-threaded float matrix product, for the chain
 * executor (graph/chain.c), which splits a step's work across the cores
 * itself and calls this from inside its one parallel region.
 *
 * Why its own: inside that region a library's sgemm packs both operands on
 * every call, so each thread would repack every W twice per step, a large
 * share of the step (bench/README.md, "wick's own kernel").  Here the
 * weights are packed once per
 * step into the two panel layouts below, shared by the threads, and the
 * activations need no packing: the micro-kernel broadcasts A's entries from
 * any strided layout and reads B as 16-wide rows.
 *
 *   C[i, j] (+)= sum_p A(i, p) B(p, j)      0 <= i < m, 0 <= j < n, 0 <= p < k
 *   A(i, p) = A[i * rsa + p * csa]
 *   B(p, j) = B[(j / 16) * bpanel + p * ldb + j % 16]
 *
 * B is read 16 columns at a time, so its column panels must be readable up to
 * the next multiple of 16 (the packed layouts are zero-padded; a row-major
 * operand needs a row stride of at least n rounded up to 16).  Results beyond
 * n are never stored. */
#ifndef WICK_BACKEND_KERNEL_H
#define WICK_BACKEND_KERNEL_H

#include <stddef.h>
#include <stdint.h>

#ifdef __AVX2__
#include <immintrin.h>
/* An 8 x 8 float transpose in registers (lane j of r[k] <-> lane k of r[j]):
 * conv.c's nchw <-> nChw8c reorder (xpose_run) and ops.c's blk_planes, one
 * copy so both move the same values the same way. */
static inline void wick_xpose8(__m256 r[8]) {
    __m256 a[8], b[8];
    for (int k = 0; k < 8; k += 2) {
        a[k] = _mm256_unpacklo_ps(r[k], r[k + 1]);
        a[k + 1] = _mm256_unpackhi_ps(r[k], r[k + 1]);
    }
    for (int k = 0; k < 8; k += 4) {
        b[k] = _mm256_shuffle_ps(a[k], a[k + 2], 0x44);
        b[k + 1] = _mm256_shuffle_ps(a[k], a[k + 2], 0xEE);
        b[k + 2] = _mm256_shuffle_ps(a[k + 1], a[k + 3], 0x44);
        b[k + 3] = _mm256_shuffle_ps(a[k + 1], a[k + 3], 0xEE);
    }
    for (int k = 0; k < 4; k++) {
        r[k] = _mm256_permute2f128_ps(b[k], b[k + 4], 0x20);
        r[k + 4] = _mm256_permute2f128_ps(b[k], b[k + 4], 0x31);
    }
}
#endif

enum {
    WICK_KERN_ACC = 1,    /* C += A B (else C = A B) */
    WICK_KERN_BIAS = 2,   /* C = bias[j] + A B */
    WICK_KERN_RELU = 4,   /* then max(0, .) */
};

/* Non-zero when this CPU runs the kernel (AVX2 and FMA). */
int wick_kern_ok(void);
/* The rows of the kernel's register tile on this CPU: 6 (AVX2) or 8 (AVX-512). */
int wick_kern_tile_rows(void);

/* This CPU's bf16 product instructions that the OS lets a program use:
 * "amx_bf16", "avx512_bf16", both separated by a space, or "" (wick_cpu_bf16
 * in wick.h).  WICK_TEST_CPU_BF16 replaces the answer, for the tests. */
const char *wick_kern_bf16_features(void);

void wick_kern_gemm(int m, int n, int k, const float *A, ptrdiff_t rsa, ptrdiff_t csa,
                    const float *B, ptrdiff_t ldb, ptrdiff_t bpanel, float *C, ptrdiff_t ldc,
                    const float *bias, int flags);

/* W is [N, K] row-major (PyTorch's [out, in]).  Both pack rows [n0, n1) of
 * W; n0 a multiple of 16, so that threads packing disjoint ranges never
 * write the same panel.
 *
 * Forward layout, for y = x W^T (B(p, j) = W[j, p]): ceil(N/16) panels of
 * K x 16, P[(n / 16) * K * 16 + p * 16 + n % 16] = W[n, p]; use ldb = 16,
 * bpanel = 16 K.  Zero beyond N. */
void wick_kern_pack_fwd(const float *W, int N, int K, int n0, int n1, float *P);
size_t wick_kern_fwd_elems(int N, int K);

/* Data-gradient layout, for dx = dy W (B(p, j) = W[p, j]): ceil(K/16) panels
 * of N x 16, P[(j / 16) * N * 16 + n * 16 + j % 16] = W[n, j]; use ldb = 16,
 * bpanel = 16 N.  Zero beyond K. */
void wick_kern_pack_bwd(const float *W, int N, int K, int n0, int n1, float *P);
size_t wick_kern_bwd_elems(int N, int K);

/* ---- the AVX-512 kernels' blocking (kernel.c), shared by the float tile
 * and the bf16 one: p in blocks, rows in blocks of 128 (an A of long stride
 * copied into tiles first), 32-column tiles of 8 rows, the next panels
 * prefetched.  Operands are 4-byte words (floats, or pairs of bf16), k counts
 * words; tiles[two][mr] computes an mr-row tile of 32 (two = 1) or at most
 * 16 columns (two = 0) over kc words, wick_kern_gemm's flags. */
#define WICK_KERN_MR5 8
typedef void (*wick_kern_tile_fn)(int nr, int kc, const void *a, ptrdiff_t rsa, ptrdiff_t csa,
                                  const void *b, ptrdiff_t ldb, ptrdiff_t bpanel, float *c, ptrdiff_t ldc,
                                  const float *bias, int flags, const void *pf);
void wick_kern_drive8x32(const wick_kern_tile_fn tiles[2][WICK_KERN_MR5 + 1], int m, int n, int k,
                         const void *A, ptrdiff_t rsa, ptrdiff_t csa, const void *B, ptrdiff_t ldb,
                         ptrdiff_t bpanel, float *C, ptrdiff_t ldc, const float *bias, int flags);

/* ---- bf16 (kernel_bf16.c): products of bfloat16 operands with float32 sums,
 * on AVX512-BF16 (vdpbf16ps), for the chain's --precision bf16.
 *
 * Operands are 32-bit words, each two bf16 entries of consecutive steps of
 * the sum (p = 2q in the low half, 2q + 1 in the high half), kq = ceil(k/2)
 * words along it:
 *   C[i, j] (+)= sum_q A2(i, q) . B2(q, j)
 *   A2(i, q) = A[i * rsa + q * csa]
 *   B2(q, j) = B[(j / 16) * bpanel + q * ldb + j % 16]
 * with the same flags and edge rules as wick_kern_gemm (B's panels readable
 * to a multiple of 16 columns).  Conversions round to nearest even. */
int wick_kern_bf16_ok(void);   /* AVX-512 (F, BW, VL) with AVX512-BF16, the OS's consent too */
uint16_t wick_bf16_round(float x);   /* the scalar rounding every conversion follows */
void wick_kern_gemm_bf16(int m, int n, int kq, const uint32_t *A, ptrdiff_t rsa, ptrdiff_t csa,
                         const uint32_t *B, ptrdiff_t ldb, ptrdiff_t bpanel, float *C, ptrdiff_t ldc,
                         const float *bias, int flags);
/* Forward layout of W [N, K]: P[(n/16) 16 kq + q 16 + n % 16] = (W[n, 2q], W[n, 2q+1]),
 * kq = ceil(K/2); ldb = 16, bpanel = 16 kq.  Rows [n0, n1), n0 a multiple of 16. */
void wick_kern_pack_fwd_bf16(const float *W, int N, int K, int n0, int n1, uint32_t *P);
size_t wick_kern_fwd_words_bf16(int N, int K);
/* Data-gradient layout: P[(k/16) 16 nq + q 16 + k % 16] = (W[2q, k], W[2q+1, k]),
 * nq = ceil(N/2); ldb = 16, bpanel = 16 nq.  Rows [n0, n1), n0 even. */
void wick_kern_pack_bwd_bf16(const float *W, int N, int K, int n0, int n1, uint32_t *P);
size_t wick_kern_bwd_words_bf16(int N, int K);
/* Activations: rows [r0, r1) of x, columns [c0, cols) (c0 even) as column
 * pairs, dst[r ldd + w] = (x[r, 2w], x[r, 2w+1]) (zero past cols): an A
 * operand with rsa = ldd, csa = 1. */
void wick_kern_rows_bf16(const float *x, ptrdiff_t ldx, int r0, int r1, int c0, int cols,
                         uint32_t *dst, ptrdiff_t ldd);
/* Rows [r0, r1) (r0 even) of a batch of `rows`, columns [c0, c1), as row
 * pairs, dst[(r/2) ldd + c] = (x[r, c], x[r+1, c]) (zero for r + 1 = rows):
 * the weight gradient's operands, summed over the batch (B with ldb = ldd,
 * bpanel = 16; dy^T as A with rsa = 1, csa = ldd). */
void wick_kern_rowpairs_bf16(const float *x, ptrdiff_t ldx, int r0, int r1, int rows, int c0,
                             int c1, uint32_t *dst, ptrdiff_t ldd);

#endif
