/* test_kernel_bf16.c — the bf16 products and conversions (src/backend/
 * kernel_bf16.c): the scalar rounding against hand-worked values; every
 * conversion and packing bit for bit against that rounding; the product
 * against a double-precision sum of the same rounded operands, within what
 * float sums allow, over tile edges, odd k, every flag and the operand
 * layouts the chain uses.  Skipped on a CPU without AVX512-BF16. */
#include "check.h"
#include "backend/kernel.h"
#include <stdint.h>

static float frand(uint64_t *s) {
    *s = *s * 6364136223846793005ULL + 1442695040888963407ULL;
    return (float)((*s >> 40) & 0xFFFF) / 32768.0f - 1.0f;
}

static float *randv(size_t n, uint64_t *s) {
    float *v = malloc((n ? n : 1) * sizeof *v);
    for (size_t i = 0; i < n; i++) v[i] = frand(s) * (1.0f + (float)(i % 7) / 3.0f);
    return v;
}

static float f_of(uint32_t u) {
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

static double bf(uint16_t h) { return f_of((uint32_t)h << 16); }
static uint32_t word(float lo, float hi) {
    return (uint32_t)wick_bf16_round(lo) | (uint32_t)wick_bf16_round(hi) << 16;
}

static void need_bf16(void) {
    if (!wick_kern_bf16_ok()) chk_skip("this CPU has no AVX512-BF16");
}

static void test_rounding_to_nearest_even(void) {
    CHECK(wick_bf16_round(1.0f) == 0x3f80);
    CHECK(wick_bf16_round(-2.0f) == 0xc000);
    CHECK(wick_bf16_round(f_of(0x3f808000)) == 0x3f80);   /* a tie: to the even 0x3f80 */
    CHECK(wick_bf16_round(f_of(0x3f818000)) == 0x3f82);   /* a tie: to the even 0x3f82 */
    CHECK(wick_bf16_round(f_of(0x3f808001)) == 0x3f81);   /* past the tie: up */
    CHECK(wick_bf16_round(f_of(0x3f807fff)) == 0x3f80);
    CHECK(wick_bf16_round(f_of(0x7f7fffff)) == 0x7f80);   /* the largest float rounds to inf */
    CHECK((wick_bf16_round(NAN) & 0x7fff) > 0x7f80);     /* NaN stays NaN */
    CHECK(wick_bf16_round(INFINITY) == 0x7f80);
}

static void test_conversions_bit_exact(void) {
    need_bf16();
    uint64_t s = 7;
    const int rows = 13, cols = 45, ldx = 64, ldd = 40, ldp = 64;
    float *x = randv((size_t)rows * ldx, &s);
    uint32_t *d = malloc((size_t)rows * ldd * sizeof *d), *p = malloc((size_t)rows * ldp * sizeof *p);
    /* rows 2..11, columns 4..45 (c0 > 0: a dx item's columns) */
    memset(d, 0xab, (size_t)rows * ldd * sizeof *d);
    wick_kern_rows_bf16(x, ldx, 2, 11, 4, cols, d, ldd);
    int bad = 0;
    for (int r = 0; r < rows; r++)
        for (int w = 0; w < ldd; w++) {
            uint32_t want = 0xabababab;
            if (r >= 2 && r < 11 && w >= 2 && w < (cols + 1) / 2)
                want = word(x[r * ldx + 2 * w], 2 * w + 1 < cols ? x[r * ldx + 2 * w + 1] : 0.0f);
            bad += d[r * ldd + w] != want;
        }
    CHECK(bad == 0);
    /* row pairs: rows 0..13 of a batch of 13 (the last pair half zero), columns 3..40 */
    memset(p, 0xcd, (size_t)rows * ldp * sizeof *p);
    wick_kern_rowpairs_bf16(x, ldx, 0, rows, rows, 3, 40, p, ldp);
    bad = 0;
    for (int q = 0; q < (rows + 1) / 2; q++)
        for (int c = 0; c < ldp; c++) {
            uint32_t want = 0xcdcdcdcd;
            if (c >= 3 && c < 40) want = word(x[2 * q * ldx + c], 2 * q + 1 < rows ? x[(2 * q + 1) * ldx + c] : 0.0f);
            bad += p[q * ldp + c] != want;
        }
    CHECK(bad == 0);
    free(x);
    free(d);
    free(p);
}

static void test_packings_bit_exact(void) {
    need_bf16();
    const int shapes[][2] = {{37, 45}, {10, 512}, {512, 784}, {16, 2}, {33, 1}};
    uint64_t s = 11;
    for (size_t t = 0; t < sizeof shapes / sizeof *shapes; t++) {
        const int N = shapes[t][0], K = shapes[t][1], kq = (K + 1) / 2, nq = (N + 1) / 2;
        float *W = randv((size_t)N * K, &s);
        size_t fw = wick_kern_fwd_words_bf16(N, K), bw = wick_kern_bwd_words_bf16(N, K);
        uint32_t *pf = calloc(fw, sizeof *pf), *pb = calloc(bw, sizeof *pb);
        /* in two ranges, as two dW items pack them */
        const int cut = N > 16 ? 16 : N;
        wick_kern_pack_fwd_bf16(W, N, K, 0, cut, pf);
        wick_kern_pack_fwd_bf16(W, N, K, cut, N, pf);
        wick_kern_pack_bwd_bf16(W, N, K, 0, cut, pb);
        wick_kern_pack_bwd_bf16(W, N, K, cut, N, pb);
        int bad = 0;
        for (int n = 0; n < (N + 15) / 16 * 16; n++)
            for (int q = 0; q < kq; q++) {
                float lo = n < N ? W[(size_t)n * K + 2 * q] : 0, hi = n < N && 2 * q + 1 < K ? W[(size_t)n * K + 2 * q + 1] : 0;
                bad += pf[(size_t)(n / 16) * 16 * kq + q * 16 + n % 16] != word(lo, hi);
            }
        for (int k = 0; k < (K + 15) / 16 * 16; k++)
            for (int q = 0; q < nq; q++) {
                float lo = k < K ? W[(size_t)2 * q * K + k] : 0, hi = k < K && 2 * q + 1 < N ? W[(size_t)(2 * q + 1) * K + k] : 0;
                bad += pb[(size_t)(k / 16) * 16 * nq + q * 16 + k % 16] != word(lo, hi);
            }
        CHECK(bad == 0);
        if (bad) fprintf(stderr, "  packing %d x %d: %d words differ\n", N, K, bad);
        free(W);
        free(pf);
        free(pb);
    }
}

/* One product against the double sum of the rounded operands: A as column
 * pairs of a row-major [m, k] (a_t = 0) or row pairs of a [k, m] (a_t = 1,
 * the weight gradient's dy^T), B packed (forward layout of a [n, k] W) or as
 * row pairs of a [k, n] activation (ldb the padded width, bpanel 16).
 * Returns the largest error relative to the sum of |terms| + |result|. */
static double one(int m, int n, int k, int a_t, int b_packed, int flags, uint64_t *s) {
    const int kq = (k + 1) / 2, n16 = (n + 15) / 16 * 16;
    float *Af = randv((size_t)m * k, s), *Bf = randv((size_t)n16 * k, s), *bias = randv(n16, s);
    /* A(i, p) = Af[i k + p]; B(p, j) = Bf[j k + p] */
    uint32_t *A, *B;
    long rsa, csa, ldb, bpanel;
    if (!a_t) {
        A = calloc((size_t)m * (kq + 3), sizeof *A);
        wick_kern_rows_bf16(Af, k, 0, m, 0, k, A, kq + 3);
        rsa = kq + 3, csa = 1;
    } else {   /* A^T [k, m] row-major, then its row pairs */
        float *At = malloc((size_t)k * m * sizeof *At);
        for (int i = 0; i < m; i++)
            for (int p = 0; p < k; p++) At[(size_t)p * m + i] = Af[(size_t)i * k + p];
        const int ld = m + 20;
        A = calloc((size_t)kq * ld, sizeof *A);
        wick_kern_rowpairs_bf16(At, m, 0, k, k, 0, m, A, ld);
        free(At);
        rsa = 1, csa = ld;
    }
    if (b_packed) {
        B = calloc(wick_kern_fwd_words_bf16(n16, k), sizeof *B);
        wick_kern_pack_fwd_bf16(Bf, n, k, 0, n, B);
        ldb = 16, bpanel = 16L * kq;
    } else {   /* B [k, n] row-major with a padded stride, then its row pairs */
        const int ld = n16 + 16;
        float *Bt = calloc((size_t)k * ld, sizeof *Bt);
        for (int p = 0; p < k; p++)
            for (int j = 0; j < n; j++) Bt[(size_t)p * ld + j] = Bf[(size_t)j * k + p];
        B = calloc((size_t)kq * ld, sizeof *B);
        wick_kern_rowpairs_bf16(Bt, ld, 0, k, k, 0, ld, B, ld);
        free(Bt);
        ldb = ld, bpanel = 16;
    }
    long ldc = n + 3;
    float *C = randv((size_t)m * ldc, s), *C0 = malloc((size_t)m * ldc * sizeof *C0);
    memcpy(C0, C, (size_t)m * ldc * sizeof *C);
    wick_kern_gemm_bf16(m, n, kq, A, rsa, csa, B, ldb, bpanel, C, ldc, bias, flags);
    double err = 0;
    for (int i = 0; i < m; i++)
        for (int j = 0; j < ldc; j++) {
            double want = C0[(size_t)i * ldc + j], scale = 1;
            if (j < n) {
                double acc = 0;
                for (int p = 0; p < k; p++) {
                    double t = bf(wick_bf16_round(Af[(size_t)i * k + p])) * bf(wick_bf16_round(Bf[(size_t)j * k + p]));
                    acc += t;
                    scale += fabs(t);
                }
                if (flags & WICK_KERN_ACC) acc += want;
                else if (flags & WICK_KERN_BIAS) acc += bias[j];
                if ((flags & WICK_KERN_RELU) && acc < 0) acc = 0;
                want = acc;
            }
            double e = fabs(C[(size_t)i * ldc + j] - want) / (scale + fabs(want));
            if (!(e <= err)) err = isnan(e) ? INFINITY : e > err ? e : err;
        }
    free(Af); free(Bf); free(bias); free(A); free(B); free(C); free(C0);
    return err;
}

static void test_products_match_reference(void) {
    need_bf16();
    uint64_t s = 3;
    const int ms[] = {1, 7, 8, 9, 20, 130}, ns[] = {1, 10, 16, 17, 33, 64}, ks[] = {1, 2, 5, 64, 129, 600};
    double worst = 0;
    for (int a = 0; a < 6; a++)
        for (int b = 0; b < 6; b++)
            for (int c = 0; c < 6; c++)
                for (int lay = 0; lay < 3; lay++) {
                    int flags = (a + b + c) % 4 == 0 ? 0 : (a + b + c) % 4 == 1 ? WICK_KERN_ACC
                              : (a + b + c) % 4 == 2 ? WICK_KERN_BIAS : WICK_KERN_BIAS | WICK_KERN_RELU;
                    double e = one(ms[a], ns[b], ks[c], lay == 2, lay != 1, flags, &s);
                    if (e > worst) worst = e;
                }
    /* float sums of products of bf16 (exact in float): the reference's
       rounding of the operands is the kernel's, so only the sums' rounding is
       left, k terms of relative 2^-24 each at most */
    CHECK(worst < 600 * 6e-8);
    if (!(worst < 600 * 6e-8)) fprintf(stderr, "  worst relative error %.3g\n", worst);
}

int main(void) {
    RUN(test_rounding_to_nearest_even);
    RUN(test_conversions_bit_exact);
    RUN(test_packings_bit_exact);
    RUN(test_products_match_reference);
    return chk_finish();
}
