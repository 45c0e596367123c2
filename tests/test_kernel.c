/* test_kernel.c — wick's own float product (src/backend/kernel.c) against a
 * double-precision loop: every tile height and width edge, every flag, the
 * three operand layouts the chain executor uses (two of them through the
 * assembly loop of full tiles, with k not a multiple of its 4 steps), and
 * both packings. */
#include "check.h"
#include "backend/kernel.h"
#include <stdint.h>

static float frand(uint64_t *s) {
    *s = *s * 6364136223846793005ULL + 1442695040888963407ULL;
    return (float)((*s >> 40) & 0xFFFF) / 32768.0f - 1.0f;
}

static float *randv(size_t n, uint64_t *s) {
    float *v = malloc((n ? n : 1) * sizeof *v);
    for (size_t i = 0; i < n; i++) v[i] = frand(s);
    return v;
}

/* B(p, j) of the kernel's addressing */
static float bat(const float *B, long ldb, long bpanel, int p, int j) {
    return B[(j / 16) * bpanel + p * ldb + j % 16];
}

/* Runs the kernel and the reference on one shape; returns the largest error.
 * Layouts: A row-major (rsa = k) or transposed (csa = m); B row-major with a
 * padded stride (bpanel 16) or packed panels (ldb 16). */
static double one(int m, int n, int k, int a_t, int b_packed, int flags, uint64_t *s) {
    int n16 = (n + 15) / 16 * 16;
    long rsa = a_t ? 1 : k, csa = a_t ? m : 1;
    float *A = randv((size_t)m * k, s), *bias = randv(n16, s);
    long ldb = b_packed ? 16 : n16 + 16, bpanel = b_packed ? 16L * k : 16;
    size_t bn = b_packed ? (size_t)n16 * k : (size_t)k * ldb;
    float *B = randv(bn, s);
    long ldc = n + 3;
    float *C = randv((size_t)m * ldc, s), *C0 = malloc((size_t)m * ldc * sizeof *C0);
    memcpy(C0, C, (size_t)m * ldc * sizeof *C);
    wick_kern_gemm(m, n, k, A, rsa, csa, B, ldb, bpanel, C, ldc, bias, flags);
    double err = 0;
    for (int i = 0; i < m; i++)
        for (int j = 0; j < ldc; j++) {
            double want = C0[(size_t)i * ldc + j], scale = 1;
            if (j < n) {
                double acc = 0;
                for (int p = 0; p < k; p++) {
                    double t = (double)A[i * rsa + p * csa] * bat(B, ldb, bpanel, p, j);
                    acc += t;
                    scale += fabs(t);
                }
                if (flags & WICK_KERN_ACC) acc += want;
                else if (flags & WICK_KERN_BIAS) acc += bias[j];
                if ((flags & WICK_KERN_RELU) && acc < 0) acc = 0;
                want = acc;
            }
            /* float rounding of a k-term sum: relative to the sum of |terms| */
            double e = fabs(C[(size_t)i * ldc + j] - want) / (scale + fabs(want));
            if (!(e <= err)) err = isnan(e) ? INFINITY : e > err ? e : err;
        }
    free(A); free(bias); free(B); free(C); free(C0);
    return err;
}

static void test_products_match_reference(void) {
    if (!wick_kern_ok()) SKIP("this CPU has no AVX2/FMA");
    uint64_t s = 7;
    static const int ms[] = {1, 5, 7, 13, 128, 250}, ns[] = {1, 8, 10, 16, 17, 40}, ks[] = {0, 1, 9, 300, 784};
    static const int fl[] = {0, WICK_KERN_ACC, WICK_KERN_BIAS, WICK_KERN_BIAS | WICK_KERN_RELU,
                             WICK_KERN_ACC | WICK_KERN_RELU};
    double worst = 0;
    for (int a = 0; a < 6; a++)
        for (int b = 0; b < 6; b++)
            for (int c = 0; c < 5; c++)
                for (int lay = 0; lay < 4; lay++) {
                    int f = fl[(a + b + c + lay) % 5];
                    double e = one(ms[a], ns[b], ks[c], lay & 1, lay >> 1, f, &s);
                    if (e > worst) worst = e;
                }
    CHECK(worst < 1e-6);
}

/* Full tiles over all of p (k a multiple of 4 in every block) end in the
 * assembly's epilogue, which applies the flags itself: every flag, in both
 * layouts with an assembly loop, with one block of p and with two. */
static void test_whole_tiles_every_flag(void) {
    if (!wick_kern_ok()) SKIP("this CPU has no AVX2/FMA");
    uint64_t s = 5;
    static const int fl[] = {0, WICK_KERN_ACC, WICK_KERN_BIAS, WICK_KERN_BIAS | WICK_KERN_RELU,
                             WICK_KERN_ACC | WICK_KERN_RELU};
    static const int shapes[][3] = {{12, 32, 300}, {128, 48, 520}, {18, 40, 4}};
    double worst = 0;
    for (int sh = 0; sh < 3; sh++)
        for (int f = 0; f < 5; f++)
            for (int a_t = 0; a_t < 2; a_t++) {   /* row-major A with packed B; A^T */
                double e = one(shapes[sh][0], shapes[sh][1], shapes[sh][2], a_t, !a_t, fl[f], &s);
                if (e > worst) worst = e;
            }
    CHECK(worst < 1e-6);
}

/* Each entry of C is one sum in p order from zero (fused multiply-adds),
 * then C or the bias added: the same bits whatever the tile, so 4-row edge
 * tiles through steps_rowmajor4 (WICK_KERN_TILE4) give what gcc's loop and
 * the 6-row tiles give.  Row-major A and packed B (SHIFT's weight gradient:
 * 64 x 32 x 196 is ten 6-row tiles and one of 4), 4-row tiles alone, a
 * masked width, k a multiple of 4 and not, with and without ACC. */
static void test_sums_in_p_order(void) {
    if (!wick_kern_ok()) SKIP("this CPU has no AVX2/FMA");
    uint64_t s = 11;
    static const int shapes[][3] = {{64, 32, 196}, {4, 16, 9}, {10, 20, 100}, {16, 48, 4}, {22, 7, 3}};
    int bad = 0;
    for (int sh = 0; sh < 5; sh++)
        for (int acc = 0; acc < 2; acc++) {
            int m = shapes[sh][0], n = shapes[sh][1], k = shapes[sh][2], n16 = (n + 15) / 16 * 16;
            float *A = randv((size_t)m * k, &s), *B = randv((size_t)n16 * k, &s);
            float *C = randv((size_t)m * n, &s), *C0 = malloc((size_t)m * n * sizeof *C0);
            memcpy(C0, C, (size_t)m * n * sizeof *C);
            wick_kern_gemm(m, n, k, A, k, 1, B, 16, 16L * k, C, n, NULL, acc ? WICK_KERN_ACC : 0);
            for (int i = 0; i < m; i++)
                for (int j = 0; j < n; j++) {
                    float t = 0;
                    for (int p = 0; p < k; p++) t = fmaf(A[(size_t)i * k + p], bat(B, 16, 16L * k, p, j), t);
                    if (acc) t = C0[(size_t)i * n + j] + t;
                    bad += memcmp(&t, &C[(size_t)i * n + j], sizeof t) != 0;
                }
            free(A); free(B); free(C); free(C0);
        }
    CHECK(bad == 0);
}

/* Writes outside C's m x n block: none (the masked edges). */
static void test_stores_stay_inside(void) {
    if (!wick_kern_ok()) SKIP("this CPU has no AVX2/FMA");
    uint64_t s = 3;
    int m = 7, n = 10, k = 5, ldc = 12;
    float *A = randv(m * k, &s), *B = randv(k * 32, &s);
    float C[8 * 12];
    for (int i = 0; i < 8 * 12; i++) C[i] = 1234.0f;
    wick_kern_gemm(m, n, k, A, k, 1, B, 32, 16, C, ldc, NULL, 0);
    int outside = 0;
    for (int i = 0; i < 8; i++)
        for (int j = 0; j < 12; j++)
            if ((i >= m || j >= n) && C[i * 12 + j] != 1234.0f) outside++;
    CHECK(outside == 0);
    free(A); free(B);
}

/* The packings hold W's entries where kernel.h says, zero padded, and
 * packing disjoint row ranges gives the same as packing all rows. */
static void test_packings(void) {
    if (!wick_kern_ok()) SKIP("this CPU has no AVX2/FMA");
    uint64_t s = 11;
    static const int shapes[][2] = {{10, 512}, {512, 784}, {37, 9}, {16, 16}, {130, 100}};
    for (int t = 0; t < 5; t++) {
        int N = shapes[t][0], K = shapes[t][1];
        float *W = randv((size_t)N * K, &s);
        size_t nf = wick_kern_fwd_elems(N, K), nb = wick_kern_bwd_elems(N, K);
        float *F = randv(nf, &s), *Bk = randv(nb, &s), *F2 = randv(nf, &s), *B2 = randv(nb, &s);
        wick_kern_pack_fwd(W, N, K, 0, N, F);
        wick_kern_pack_bwd(W, N, K, 0, N, Bk);
        int cut = N > 16 ? (N / 2) / 16 * 16 : 0;
        wick_kern_pack_fwd(W, N, K, cut, N, F2);
        wick_kern_pack_fwd(W, N, K, 0, cut, F2);
        wick_kern_pack_bwd(W, N, K, cut, N, B2);
        wick_kern_pack_bwd(W, N, K, 0, cut, B2);
        int bad = 0;
        for (int n = 0; n < (N + 15) / 16 * 16; n++)
            for (int p = 0; p < K; p++) {
                float want = n < N ? W[(size_t)n * K + p] : 0.0f;
                size_t at = (size_t)(n / 16) * K * 16 + (size_t)p * 16 + n % 16;
                bad += F[at] != want || F2[at] != want;
            }
        for (int n = 0; n < N; n++)
            for (int j = 0; j < (K + 15) / 16 * 16; j++) {
                float want = j < K ? W[(size_t)n * K + j] : 0.0f;
                size_t at = (size_t)(j / 16) * N * 16 + (size_t)n * 16 + j % 16;
                bad += Bk[at] != want || B2[at] != want;
            }
        CHECK(bad == 0);
        free(W); free(F); free(Bk); free(F2); free(B2);
    }
}

int main(void) {
    RUN(test_products_match_reference);
    RUN(test_whole_tiles_every_flag);
    RUN(test_stores_stay_inside);
    RUN(test_sums_in_p_order);
    RUN(test_packings);
    return chk_finish();
}
