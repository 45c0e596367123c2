/* kernel.c — the chain executor's float matrix product (see kernel.h).
 *
 * A 6 x 16 register tile: 12 accumulators of 8 floats, two 8-float loads of
 * B and six broadcasts of A per step of p, 12 FMAs.  Zen 3 has two FMA pipes
 * of latency 4, so at least 8 independent accumulators keep both busy; 12
 * leave margin, and the 16 ymm registers hold them with B's two rows and one
 * broadcast.  (8 x 8 would need 8 broadcasts per 8 FMAs: bound by loads.)
 *
 * Blocking: p in blocks of at most KC so that one 16-column panel of B
 * (KC x 64 bytes, 25 KiB of L1's 32) stays in L1 while the tiles of a block
 * of at most MC rows of A pass over it; that block of A (MC x KC, 184 KiB)
 * stays in L2 while every panel of B passes.  KC = 392 takes the 784-wide
 * first layer's forward in 2 blocks, and MC keeps a 512-row A from streaming
 * from L3 once per panel (both measured: bench/README.md, "Kept after
 * step_ab").
 * Edges: m by tiles of 1..6 rows (each a compile-time instance of the same
 * body), n by masked loads and stores.
 * The p loop of full tiles in the two layouts the chain uses is in
 * assembly (below: gcc schedules it poorly).
 * On a CPU with AVX-512 the 8 x 32 zmm tile at the end of this file serves
 * every product instead; the packed layouts are the same. */
#include "backend/kernel.h"
#include "backend/kernel_zmm.h"
#include <cpuid.h>
#include <immintrin.h>
#include <stdio.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define MR 6
#define NR 16
#define KC 392
#define MC 120

#define TGT __attribute__((target("avx2,fma")))
#define INLINE static inline __attribute__((always_inline))

int wick_kern_ok(void) {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
}

/* bf16 products: cpuid's feature bits, and the OS's consent to the register
 * state they need (XCR0: the AVX-512 state for avx512_bf16, the tile
 * configuration and data for AMX).  WICK_TEST_CPU_BF16 replaces the answer,
 * for tests of the dispatch on a CPU that has neither. */
const char *wick_kern_bf16_features(void) {
    const char *fake = getenv("WICK_TEST_CPU_BF16");
    if (fake) return fake;
    static char buf[32];
    unsigned a, b, c, d;
    int avx512bf16 = 0, amx = 0;
    if (__get_cpuid_count(7, 0, &a, &b, &c, &d)) {
        const unsigned leaf7_max = a;
        const int osxsave = __builtin_cpu_supports("avx") != 0;   /* implies OSXSAVE */
        unsigned long long xcr0 = 0;
        if (osxsave) {
            unsigned lo, hi;
            __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
            xcr0 = (unsigned long long)hi << 32 | lo;
        }
        const int os_avx512 = (xcr0 & 0xe6) == 0xe6, os_amx = (xcr0 & 0x60000) == 0x60000;
        amx = os_amx && (d >> 22 & 1) && (d >> 24 & 1);   /* amx_bf16, amx_tile */
        if (leaf7_max >= 1 && __get_cpuid_count(7, 1, &a, &b, &c, &d))
            avx512bf16 = os_avx512 && (a >> 5 & 1);
    }
    snprintf(buf, sizeof buf, "%s%s%s", amx ? "amx_bf16" : "", amx && avx512bf16 ? " " : "",
             avx512bf16 ? "avx512_bf16" : "");
    return buf;
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

/* ---- the loop of a full tile, in assembly ------------------------------
 *
 * trips x 4 steps of p of a full 6 x 16 tile, from zero, then the epilogue
 * (EPILOGUE below): the sums go to C through the flags when the loop was all
 * of p and all 16 columns, else to acc[0..96) (row i's 16 at 16 i) for the C
 * code to finish.  ymm0-11 accumulate, 12-13 hold B's row, 14 A's entry (15
 * is unused but listed as clobbered, for simplicity).
 * Why assembly: gcc's own loop is 26 instructions for 12 FMAs (the six row
 * addresses recomputed every step), and unrolled by gcc it reloads B's rows
 * as memory operands of the FMAs (47 loads for 48 FMAs).  Here a trip of
 * four steps is 87 instructions (two for a prefetch of the next panel, see
 * wick_kern_gemm) with 32 loads for 48 FMAs, A's and B's addresses constant
 * offsets from a few pointers.  The loop and its epilogue in assembly are
 * faster than gcc's loop on every product of the chain (bench/README.md,
 * "The kernel's loop in assembly"). */
#define F6(C0, C1)                                                                           \
    "vfmadd231ps %%ymm12, %%ymm14, %%ymm" C0 "\n\tvfmadd231ps %%ymm13, %%ymm14, %%ymm" C1 "\n\t"
#define BCAST(ADDR, R) "vbroadcastss " ADDR ", %%ymm" R "\n\t"
#define ZERO12                                                                               \
    "vxorps %%xmm0, %%xmm0, %%xmm0\n\tvxorps %%xmm1, %%xmm1, %%xmm1\n\t"                     \
    "vxorps %%xmm2, %%xmm2, %%xmm2\n\tvxorps %%xmm3, %%xmm3, %%xmm3\n\t"                     \
    "vxorps %%xmm4, %%xmm4, %%xmm4\n\tvxorps %%xmm5, %%xmm5, %%xmm5\n\t"                     \
    "vxorps %%xmm6, %%xmm6, %%xmm6\n\tvxorps %%xmm7, %%xmm7, %%xmm7\n\t"                     \
    "vxorps %%xmm8, %%xmm8, %%xmm8\n\tvxorps %%xmm9, %%xmm9, %%xmm9\n\t"                     \
    "vxorps %%xmm10, %%xmm10, %%xmm10\n\tvxorps %%xmm11, %%xmm11, %%xmm11\n\t"
/* Where a tile's loop leaves its sums (EPILOGUE reads it by offset). */
typedef struct {
    float *c;
    long ldc_bytes;
    const float *bias;
    long flags;
} epi;
_Static_assert(offsetof(epi, ldc_bytes) == 8 && offsetof(epi, bias) == 16 &&
                   offsetof(epi, flags) == 24, "EPILOGUE's offsets");

/* The end of a tile's loop: rows 0-5 of the tile to C, through its flags.
 * ep points at an epi {c, ldc in bytes, bias, flags}; it is read into registers the
 * loop no longer needs (C0, LC, BI, FL; C3 gets row 3's address).  Flags as
 * in kernel.h: ACC adds C, else BIAS adds bias[0..16); RELU then clamps.
 * EPI_ROWS applies OP to each row: its two accumulators and its address in C,
 * (c0), (c0 + ldc), (c0 + 2 ldc), (c3), (c3 + ldc), (c3 + 2 ldc). */
#define EPI_ROWS(OP, C0, C3, LC)                                                              \
    OP("0", "1", "(%[" C0 "])") OP("2", "3", "(%[" C0 "],%[" LC "])")                          \
    OP("4", "5", "(%[" C0 "],%[" LC "],2)") OP("6", "7", "(%[" C3 "])")                       \
    OP("8", "9", "(%[" C3 "],%[" LC "])") OP("10", "11", "(%[" C3 "],%[" LC "],2)")
#define ADD_C(R0, R1, A)                                                                      \
    "vaddps " A ", %%ymm" R0 ", %%ymm" R0 "\n\tvaddps 32" A ", %%ymm" R1 ", %%ymm" R1 "\n\t"
#define ADD_BIAS(R0, R1, A)                                                                   \
    "vaddps %%ymm12, %%ymm" R0 ", %%ymm" R0 "\n\tvaddps %%ymm13, %%ymm" R1 ", %%ymm" R1 "\n\t"
#define CLAMP(R0, R1, A)                                                                      \
    "vmaxps %%ymm14, %%ymm" R0 ", %%ymm" R0 "\n\tvmaxps %%ymm14, %%ymm" R1 ", %%ymm" R1 "\n\t"
#define STORE_C(R0, R1, A) "vmovups %%ymm" R0 ", " A "\n\tvmovups %%ymm" R1 ", 32" A "\n\t"
#define EPILOGUE(C0, C3, LC, BI, FL)                                                          \
    "mov 0(%[ep]), %[" C0 "]\n\tmov 8(%[ep]), %[" LC "]\n\t"                                  \
    "mov 16(%[ep]), %[" BI "]\n\tmov 24(%[ep]), %[" FL "]\n\t"                                \
    "lea (%[" C0 "],%[" LC "],2), %[" C3 "]\n\tadd %[" LC "], %[" C3 "]\n\t"                    \
    "test $1, %[" FL "]\n\tjz 2f\n\t"                                                        \
    EPI_ROWS(ADD_C, C0, C3, LC) "jmp 3f\n"                                                    \
    "2:\n\ttest $2, %[" FL "]\n\tjz 3f\n\t"                                                  \
    "vmovups (%[" BI "]), %%ymm12\n\tvmovups 32(%[" BI "]), %%ymm13\n\t"                       \
    EPI_ROWS(ADD_BIAS, C0, C3, LC)                                                            \
    "3:\n\ttest $4, %[" FL "]\n\tjz 4f\n\t"                                                  \
    "vxorps %%xmm14, %%xmm14, %%xmm14\n\t" EPI_ROWS(CLAMP, C0, C3, LC)                         \
    "4:\n\t" EPI_ROWS(STORE_C, C0, C3, LC)
#define CLOBBERS                                                                             \
    "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7", "xmm8", "xmm9", "xmm10", \
        "xmm11", "xmm12", "xmm13", "xmm14", "xmm15", "memory", "cc"
/* one step: B's row at BROW, A(i, p) at the six addresses */
#define STEP6(BROW0, BROW1, A0, A1, A2, A3, A4, A5)                                          \
    "vmovups " BROW0 ", %%ymm12\n\tvmovups " BROW1 ", %%ymm13\n\t"                           \
    BCAST(A0, "14") F6("0", "1") BCAST(A1, "14") F6("2", "3") BCAST(A2, "14") F6("4", "5")   \
    BCAST(A3, "14") F6("6", "7") BCAST(A4, "14") F6("8", "9") BCAST(A5, "14") F6("10", "11")
#define STEP6_(...) STEP6(__VA_ARGS__)

TGT static void steps_rowmajor(long trips, const float *a, ptrdiff_t rsa, const float *b,
                               const float *pf, ptrdiff_t pfs, const epi *ep) {
    /* A(i, p) = a[i rsa + p]: rows 0-2 off a0, 3-5 off a3; B packed 16 wide */
    const float *a3 = a + 3 * rsa;
    ptrdiff_t rs = rsa * 4;
#define R6(O) "" #O "(%[a0])", "" #O "(%[a0],%[rs])", "" #O "(%[a0],%[rs],2)", "" #O "(%[a3])", \
              "" #O "(%[a3],%[rs])", "" #O "(%[a3],%[rs],2)"
#define STEPR(O, BO) STEP6_(#BO "(%[b])", #BO "+32(%[b])", R6(O))
    __asm__ volatile(ZERO12
                     "1:\n\t"
                     STEPR(0, 0) STEPR(4, 64) STEPR(8, 128) STEPR(12, 192)
                     "prefetcht1 (%[pf])\n\tadd %[pfs], %[pf]\n\t"
                     "add $16, %[a0]\n\tadd $16, %[a3]\n\tadd $256, %[b]\n\t"
                     "dec %[n]\n\tjnz 1b\n\t"
                     EPILOGUE("a0", "a3", "rs", "b", "pf")
                     : [a0] "+r"(a), [a3] "+r"(a3), [b] "+r"(b), [n] "+r"(trips), [pf] "+r"(pf),
                       [rs] "+r"(rs)
                     : [ep] "r"(ep), [pfs] "r"(pfs)
                     : CLOBBERS);
}

/* steps_rowmajor for a tile of 4 rows (the edge of M = 64 = 10 x 6 + 4, as
 * SHIFT's weight gradient, ops_impl.h conv_dw_kern): 8 accumulators, the sums
 * left in acc (row i's 16 at 16 i) for tile's C code to add to C, each the
 * same sum in the same order as the C loop's.  gcc's own loop for 4 rows
 * took B's rows as memory operands of its 8 FMAs (12 loads for 8 FMAs) and
 * ran at about 60% of the 6-row tile's rate. */
TGT static void steps_rowmajor4(long trips, const float *a, ptrdiff_t rsa, const float *b,
                                const float *pf, ptrdiff_t pfs, float *acc) {
    const float *a3 = a + 3 * rsa;
    ptrdiff_t rs = rsa * 4;
#define STEP4(BO, O)                                                                          \
    "vmovups " #BO "(%[b]), %%ymm12\n\tvmovups " #BO "+32(%[b]), %%ymm13\n\t"                  \
    BCAST(#O "(%[a0])", "14") F6("0", "1") BCAST(#O "(%[a0],%[rs])", "14") F6("2", "3")      \
    BCAST(#O "(%[a0],%[rs],2)", "14") F6("4", "5") BCAST(#O "(%[a3])", "14") F6("6", "7")
    __asm__ volatile("vxorps %%xmm0, %%xmm0, %%xmm0\n\tvxorps %%xmm1, %%xmm1, %%xmm1\n\t"
                     "vxorps %%xmm2, %%xmm2, %%xmm2\n\tvxorps %%xmm3, %%xmm3, %%xmm3\n\t"
                     "vxorps %%xmm4, %%xmm4, %%xmm4\n\tvxorps %%xmm5, %%xmm5, %%xmm5\n\t"
                     "vxorps %%xmm6, %%xmm6, %%xmm6\n\tvxorps %%xmm7, %%xmm7, %%xmm7\n\t"
                     "1:\n\t"
                     STEP4(0, 0) STEP4(64, 4) STEP4(128, 8) STEP4(192, 12)
                     "prefetcht1 (%[pf])\n\tadd %[pfs], %[pf]\n\t"
                     "add $16, %[a0]\n\tadd $16, %[a3]\n\tadd $256, %[b]\n\t"
                     "dec %[n]\n\tjnz 1b\n\t"
                     "vmovaps %%ymm0, (%[acc])\n\tvmovaps %%ymm1, 32(%[acc])\n\t"
                     "vmovaps %%ymm2, 64(%[acc])\n\tvmovaps %%ymm3, 96(%[acc])\n\t"
                     "vmovaps %%ymm4, 128(%[acc])\n\tvmovaps %%ymm5, 160(%[acc])\n\t"
                     "vmovaps %%ymm6, 192(%[acc])\n\tvmovaps %%ymm7, 224(%[acc])\n\t"
                     : [a0] "+r"(a), [a3] "+r"(a3), [b] "+r"(b), [n] "+r"(trips), [pf] "+r"(pf)
                     : [rs] "r"(rs), [pfs] "r"(pfs), [acc] "r"(acc)
                     : CLOBBERS);
#undef STEP4
}

TGT static void steps_colmajor(long trips, const float *a, ptrdiff_t csa, const float *b,
                               ptrdiff_t ldb, const float *pf, ptrdiff_t pfs, const epi *ep) {
    /* A(i, p) = a[i + p csa]: steps 0-1 off (a0, b0), 2-3 off (a2, b2) */
    const float *a2 = a + 2 * csa, *b2 = b + 2 * ldb;
    ptrdiff_t cs = csa * 4, lb = ldb * 4;
    const ptrdiff_t cs4 = 16 * csa, lb4 = 16 * ldb;
#define C6(A, X) "0(%[" A "]" X ")", "4(%[" A "]" X ")", "8(%[" A "]" X ")", "12(%[" A "]" X ")", \
                 "16(%[" A "]" X ")", "20(%[" A "]" X ")"
#define STEPC(A, X, B, Y) STEP6_("(%[" B "]" Y ")", "32(%[" B "]" Y ")", C6(A, X))
    __asm__ volatile(ZERO12
                     "1:\n\t"
                     STEPC("a0", "", "b0", "") STEPC("a0", ",%[cs]", "b0", ",%[lb]")
                     STEPC("a2", "", "b2", "") STEPC("a2", ",%[cs]", "b2", ",%[lb]")
                     "prefetcht1 (%[pf])\n\tadd %[pfs], %[pf]\n\t"
                     "add %[cs4], %[a0]\n\tadd %[cs4], %[a2]\n\tadd %[lb4], %[b0]\n\tadd %[lb4], %[b2]\n\t"
                     "dec %[n]\n\tjnz 1b\n\t"
                     EPILOGUE("a0", "a2", "cs", "b0", "lb")
                     : [a0] "+r"(a), [a2] "+r"(a2), [b0] "+r"(b), [b2] "+r"(b2), [n] "+r"(trips),
                       [pf] "+r"(pf), [cs] "+r"(cs), [lb] "+r"(lb)
                     : [cs4] "r"(cs4), [lb4] "r"(lb4), [ep] "r"(ep), [pfs] "r"(pfs)
                     : CLOBBERS);
}

/* The operand layouts with a loop in assembly (for full 6-row tiles). */
enum { ANY, ROWMAJOR, COLMAJOR, ROWMAJOR_GCC4 /* ROWMAJOR with tile4ANY (WICK_KERN_TILE4=0) */ };

/* The accumulators are named variables, not an array: gcc keeps an array of
 * vectors in memory across the loop (a store per FMA), named ones in
 * registers.  R(i) guards row i, constant-folded in each instance. */
#define ROWS(X) X(0) X(1) X(2) X(3) X(4) X(5)
#define R(i) if (mr > i)

TGT INLINE void tile(const int mr, const int layout, int nr, int kc, const float *a,
                     ptrdiff_t rsa, ptrdiff_t csa, const float *b, ptrdiff_t ldb, float *c,
                     ptrdiff_t ldc, const float *bias, int flags, const float *pf) {
#define DECL(i) __m256 c##i##0 = _mm256_setzero_ps(), c##i##1 = _mm256_setzero_ps();
    ROWS(DECL)
    if (mr == MR && layout != ANY && kc >= 4) {   /* most of p in assembly, the rest below */
        float acc[96] __attribute__((aligned(32)));
        /* all of p and all 16 columns: the assembly's epilogue writes C;
           else it leaves the sums in acc for the loop and stores below */
        const int whole = kc % 4 == 0 && nr == NR;
        const epi ep = whole ? (epi){c, (long)ldc * 4, bias, flags} : (epi){acc, 64, bias, 0};
        if (layout == ROWMAJOR) steps_rowmajor(kc / 4, a, rsa, b, pf, 4 * ldb, &ep);
        else steps_colmajor(kc / 4, a, csa, b, ldb, pf, 4 * ldb, &ep);
        if (whole) return;
        const int done = kc / 4 * 4;
        a += done * csa;
        b += done * ldb;
        kc -= done;
#define LOAD(i) R(i) c##i##0 = _mm256_load_ps(acc + 16 * i), c##i##1 = _mm256_load_ps(acc + 16 * i + 8);
        ROWS(LOAD)
    }
    if (mr == 4 && layout == ROWMAJOR && kc >= 4) {   /* the same, 4 rows (steps_rowmajor4) */
        float acc[64] __attribute__((aligned(32)));
        steps_rowmajor4(kc / 4, a, rsa, b, pf, 4 * ldb, acc);
        const int done = kc / 4 * 4;
        a += done * csa;
        b += done * ldb;
        kc -= done;
        ROWS(LOAD)
    }
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

/* One instance per tile height, so every loop over rows unrolls; full tiles
 * also one per layout with a loop in assembly:
 *   ROWMAJOR  A row-major (csa = 1), B packed (ldb = 16): the forward and the
 *             data gradient;
 *   COLMAJOR  A column-major (rsa = 1), any B: the weight gradient, A = dy^T. */
#define TILE(R, LAYOUT)                                                                       \
    TGT static void tile##R##LAYOUT(int nr, int kc, const float *a, ptrdiff_t rsa,            \
                                    ptrdiff_t csa, const float *b, ptrdiff_t ldb, float *c,   \
                                    ptrdiff_t ldc, const float *bias, int flags,              \
                                    const float *pf) {                                        \
        tile(R, LAYOUT, nr, kc, a, rsa, csa, b, ldb, c, ldc, bias, flags, pf);                \
    }
TILE(1, ANY) TILE(2, ANY) TILE(3, ANY) TILE(4, ANY) TILE(5, ANY) TILE(6, ANY)
TILE(6, ROWMAJOR) TILE(6, COLMAJOR) TILE(4, ROWMAJOR)
typedef void (*tile_fn)(int, int, const float *, ptrdiff_t, ptrdiff_t, const float *, ptrdiff_t,
                        float *, ptrdiff_t, const float *, int, const float *);
static const tile_fn tiles[4][MR + 1] = {
    {NULL, tile1ANY, tile2ANY, tile3ANY, tile4ANY, tile5ANY, tile6ANY},
    {NULL, tile1ANY, tile2ANY, tile3ANY, tile4ROWMAJOR, tile5ANY, tile6ROWMAJOR},
    {NULL, tile1ANY, tile2ANY, tile3ANY, tile4ANY, tile5ANY, tile6COLMAJOR},
    {NULL, tile1ANY, tile2ANY, tile3ANY, tile4ANY, tile5ANY, tile6ROWMAJOR},
};

/* The flags of block blk of nb blocks of p: the first starts from C or the
 * bias, the others add to what it left; only the last applies the ReLU. */
static inline int block_flags(int flags, int blk, int nb) {
    int f = blk == 0 ? flags & (WICK_KERN_ACC | WICK_KERN_BIAS) : WICK_KERN_ACC;
    return blk == nb - 1 ? f | (flags & WICK_KERN_RELU) : f;
}

static void gemm5(int m, int n, int k, const float *A, ptrdiff_t rsa, ptrdiff_t csa,
                  const float *B, ptrdiff_t ldb, ptrdiff_t bpanel, float *C, ptrdiff_t ldc,
                  const float *bias, int flags);

/* The AVX-512 tile where the CPU has it (below); WICK_KERN_ISA=avx2 keeps the
 * AVX2 one, for comparing the two on one machine. */
static int use512(void) {
    static int v = -1;   /* threads may race to set it, to the same value */
    int u = __atomic_load_n(&v, __ATOMIC_RELAXED);
    if (u < 0) {
        __builtin_cpu_init();
        const char *e = getenv("WICK_KERN_ISA");
        u = __builtin_cpu_supports("avx512f") && !(e && !strcmp(e, "avx2"));
        __atomic_store_n(&v, u, __ATOMIC_RELAXED);
    }
    return u;
}

/* 4-row tiles of a row-major A through steps_rowmajor4; WICK_KERN_TILE4=0
 * keeps gcc's loop (tile4ANY), for an A/B: the same sums either way. */
static int use_tile4(void) {
    static int v = -1;   /* threads may race to set it, to the same value */
    int u = __atomic_load_n(&v, __ATOMIC_RELAXED);
    if (u < 0) {
        const char *e = getenv("WICK_KERN_TILE4");
        u = !(e && !strcmp(e, "0"));
        __atomic_store_n(&v, u, __ATOMIC_RELAXED);
    }
    return u;
}

int wick_kern_tile_rows(void) { return use512() ? 8 : MR; }   /* 8: MR5, the zmm tile below */

TGT void wick_kern_gemm(int m, int n, int k, const float *A, ptrdiff_t rsa, ptrdiff_t csa,
                        const float *B, ptrdiff_t ldb, ptrdiff_t bpanel, float *C, ptrdiff_t ldc,
                        const float *bias, int flags) {
    if (m <= 0 || n <= 0) return;
    if (use512()) {
        gemm5(m, n, k, A, rsa, csa, B, ldb, bpanel, C, ldc, bias, flags);
        return;
    }
    /* equal blocks of at most KC (784 = 2 x 392, 512 = 2 x 256, not 392 + 120) */
    int nb = k > 0 ? (k + KC - 1) / KC : 1;
    /* row blocks of equal size, whole tiles */
    int mb = (m + MC - 1) / MC, mc = ((m + mb - 1) / mb + MR - 1) / MR * MR;
    const int lay = csa == 1 && ldb == NR ? ROWMAJOR : rsa == 1 ? COLMAJOR : ANY;
    const tile_fn *tl = tiles[lay == ROWMAJOR && !use_tile4() ? ROWMAJOR_GCC4 : lay];
    for (int blk = 0; blk < nb; blk++) {
        /* block edges at multiples of 4 (the assembly's trip), k % 4 in the
           last block: the others end in the assembly's epilogue */
        int k0 = 4 * (int)((long)(k / 4) * blk / nb);
        int k1 = blk == nb - 1 ? k : 4 * (int)((long)(k / 4) * (blk + 1) / nb);
        const int f = block_flags(flags, blk, nb);
        for (int ib = 0; ib < m; ib += mc) {
            int ie = ib + mc < m ? ib + mc : m;
            for (int j0 = 0; j0 < n; j0 += NR) {
                int nr = n - j0 < NR ? n - j0 : NR;
                const float *bp = B + (j0 / NR) * bpanel + (ptrdiff_t)k0 * ldb;
                const float *bj = bias ? bias + j0 : NULL;
                /* Each trip of a full tile's loop also prefetches (into L2)
                   one row of the next panel of this block, tile t from row
                   t x trips on, so that the tiles together fetch it while
                   this panel is computed; otherwise the first tile of a
                   panel waits on L3 for each of its rows, the packed W's
                   panels being 50 KiB apart, a jump the hardware
                   prefetcher does not follow (bench/README.md, "The next
                   panel of B, prefetched").
                   A prefetch past the end of B is harmless (it never
                   faults). */
                const float *bn = j0 + NR < n ? bp + bpanel : bp;
                for (int i0 = ib, t = 0; i0 < ie; i0 += MR, t++) {
                    int mr = ie - i0 < MR ? ie - i0 : MR;
                    const int first = t * ((k1 - k0) / 4);
                    tl[mr](nr, k1 - k0, A + i0 * rsa + (ptrdiff_t)k0 * csa, rsa, csa, bp, ldb,
                           C + i0 * ldc + j0, ldc, bj, f,
                           bn + (first < k1 - k0 ? first : 0) * ldb);
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

/* ---- AVX-512 ------------------------------------------------------------
 *
 * On a CPU with AVX-512 (Intel since Skylake-SP, AMD since Zen 4) a zmm FMA
 * does twice the work of the ymm one above, so the AVX2 tile reaches at most
 * half of the machine's peak.  Here the tile is 8 rows x 32 columns: two
 * 16-column panels of B (b and b + bpanel, so the packed layouts are the
 * same), 16 zmm accumulators, two loads of B and eight broadcasts of A per
 * step of p for 16 FMAs.  Two FMA pipes of latency 4 need at least 8
 * independent sums; 16 leave margin in 32 registers.  A tile of at most 16
 * columns (an edge, or a layer of 10) runs the one-panel instance: 8 FMAs a
 * step, no reads past its panel.  Edges: rows by instances of 1..8, columns by
 * the store masks. */
#define MR5 WICK_KERN_MR5
#define KC5 256
#define MC5 128
#define TGT5 __attribute__((target("avx512f,avx512vl,avx512dq,fma")))


TGT5 INLINE void tile5(const int mr, const int two, int nr, int kc, const float *a, ptrdiff_t rsa,
                       ptrdiff_t csa, const float *b, ptrdiff_t ldb, ptrdiff_t bpanel, float *c,
                       ptrdiff_t ldc, const float *bias, int flags, const float *pf) {
#define DECL5(i) __m512 c##i##0 = _mm512_setzero_ps(), c##i##1 = _mm512_setzero_ps();
    ZMM_ROWS8(DECL5)
    const float *b2 = b + bpanel;
    _Pragma("GCC unroll 4") for (int p = 0; p < kc; p++) {
        __m512 b0 = _mm512_loadu_ps(b + p * ldb), b1 = two ? _mm512_loadu_ps(b2 + p * ldb) : b0, ai;
        if (pf) _mm_prefetch((const char *)(pf + p * ldb), _MM_HINT_T1);
#define FMA5(i)                                                \
        R(i) {                                                 \
            ai = _mm512_set1_ps(a[i * rsa + p * csa]);         \
            c##i##0 = _mm512_fmadd_ps(ai, b0, c##i##0);        \
            if (two) c##i##1 = _mm512_fmadd_ps(ai, b1, c##i##1); \
        }
        ZMM_ROWS8(FMA5)
    }
    ZMM_STORE_TILE();
}

ZMM_TILES(TGT5, tile5, tiles5)

/* Rows [0, m) of a column-major A (A(i, p) = a[i + p csa]), p in [0, kc),
 * into tiles of MR5 rows: P[t MR5 kc + p MR5 + i % MR5] = A(t MR5 + i, p).
 * Words of 4 bytes: floats, or kernel_bf16.c's bf16 pairs. */
TGT5 static void pack_a5(int m, int kc, const uint32_t *a, ptrdiff_t csa, uint32_t *P) {
    for (int i0 = 0; i0 < m; i0 += MR5) {
        const int mr = m - i0 < MR5 ? m - i0 : MR5;
        const __mmask8 mk = (__mmask8)((1u << mr) - 1);
        uint32_t *dst = P + (ptrdiff_t)i0 * kc;
        for (int p = 0; p < kc; p++)
            _mm256_mask_storeu_epi32(dst + p * MR5, mk, _mm256_maskz_loadu_epi32(mk, a + i0 + p * csa));
    }
}

/* The zmm tiles' blocking, for the float tiles here and the bf16 ones
 * (kernel.h, wick_kern_drive8x32): k counts words, a step of p for floats,
 * two for bf16. */
TGT5 void wick_kern_drive8x32(const wick_kern_tile_fn tile[2][WICK_KERN_MR5 + 1], int m, int n, int k,
                              const void *Av, ptrdiff_t rsa, ptrdiff_t csa, const void *Bv, ptrdiff_t ldb,
                              ptrdiff_t bpanel, float *C, ptrdiff_t ldc, const float *bias, int flags) {
    static _Thread_local uint32_t apack[MC5 * KC5] __attribute__((aligned(64)));
    const uint32_t *A = Av, *B = Bv;
    if (m <= 0 || n <= 0) return;
    int nb = k > 0 ? (k + KC5 - 1) / KC5 : 1;
    int mb = (m + MC5 - 1) / MC5, mc = ((m + mb - 1) / mb + MR5 - 1) / MR5 * MR5;
    const int ncol = (n + 31) / 32 * 32;   /* the columns the tiles span */
    for (int blk = 0; blk < nb; blk++) {
        int k0 = (int)((long)k * blk / nb), k1 = (int)((long)k * (blk + 1) / nb);
        const int f = block_flags(flags, blk, nb);
        for (int ib = 0; ib < m; ib += mc) {
            int ie = ib + mc < m ? ib + mc : m;
            /* A column-major with a long stride (the weight gradient's
               dy^T, a row of the batch per step of p): its rows of this
               block copied into tiles of 8 x (k1 - k0), 32 bytes a step,
               so that a tile reads one stream rather than a line every
               step at a stride past what the L1 prefetcher follows */
            const uint32_t *ab = A + ib * rsa + (ptrdiff_t)k0 * csa;
            ptrdiff_t acs = csa, atile = MR5 * rsa;
            if (rsa == 1 && csa > 2 * MR5) {
                pack_a5(ie - ib, k1 - k0, ab, csa, apack);
                ab = apack, acs = MR5, atile = (ptrdiff_t)MR5 * (k1 - k0);
            }
            for (int j0 = 0; j0 < n; j0 += 32) {
                int nr = n - j0 < 32 ? n - j0 : 32;
                const uint32_t *bp = B + (j0 / 16) * bpanel + (ptrdiff_t)k0 * ldb;
                const float *bj = bias ? bias + j0 : NULL;
                for (int i0 = ib, t = 0; i0 < ie; i0 += MR5, t++) {
                    int mr = ie - i0 < MR5 ? ie - i0 : MR5;
                    /* Tiles 0-7 each fetch one panel of the column tiles
                       1-4 ahead into L2 (t = 0, 1: the next tile's two
                       panels, t = 2, 3: the one after, ...), a line each
                       step of p; past the last column tile, the next
                       block of p's first panels.  In a step the packed
                       weights come from L3, where the previous step's
                       packing left them, and four tiles ahead hide that
                       wait better than one (bench/README.md, "6 December:
                       a Xeon with AVX-512"). */
                    const int jt = j0 + 32 * (1 + t / 2) + 16 * (t & 1);
                    const uint32_t *pf = NULL;
                    if (t < 8 && jt < n) pf = B + (jt / 16) * bpanel + (ptrdiff_t)k0 * ldb;
                    else if (t < 8 && blk + 1 < nb && ie == m && jt >= ncol && jt - ncol < n)
                        pf = B + ((jt - ncol) / 16) * bpanel + (ptrdiff_t)k1 * ldb;
                    tile[nr > 16][mr](nr, k1 - k0, ab + t * atile, rsa, acs, bp, ldb, bpanel,
                                       C + i0 * ldc + j0, ldc, bj, f, pf);
                }
            }
        }
    }
}

TGT5 static void gemm5(int m, int n, int k, const float *A, ptrdiff_t rsa, ptrdiff_t csa,
                       const float *B, ptrdiff_t ldb, ptrdiff_t bpanel, float *C, ptrdiff_t ldc,
                       const float *bias, int flags) {
    wick_kern_drive8x32(tiles5, m, n, k, A, rsa, csa, B, ldb, bpanel, C, ldc, bias, flags);
}
