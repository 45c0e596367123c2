/* gram_factor_impl.h — the Cholesky of a training Gram in RFP, written once
 * for float64 (factor_rfp) and float32 (factor_rfp32, the mixed path's
 * factors): src/experiments/gram.c includes it twice, as src/graph/ops.c
 * does ops_impl.h, with
 *   RFP_T        the element type,
 *   RFP_NAME     the function's name,
 *   RFP_LAPACK(x) and RFP_BLAS(x)  the LAPACKE_ / cblas_ routine x of that
 *                type (d or s prefix).
 *
 * dpftrf's four steps for even n (LAPACK's dpftrf.f, TRANSR = 'N', UPLO =
 * 'L'), the two big ones in slices so that progress can be told; ?pftrf
 * itself for odd n.  Returns LAPACK's info (0, or the order of the leading
 * minor that is not positive definite). */
static int RFP_NAME(size_t n, RFP_T *a, const prog_t *pr, const char *phase) {
    if (n % 2) {
        progress(pr, phase, 0);
        return RFP_LAPACK(pftrf)(LAPACK_COL_MAJOR, 'N', 'L', (lapack_int)n, a);
    }
    int k = (int)(n / 2), ld = (int)n + 1, info;
    double k3 = (double)k * k * k, total = 8 * k3 / 3, done = 0;  /* flops: n^3/3 */
    progress(pr, phase, 0);
    if ((info = RFP_LAPACK(potrf)(LAPACK_COL_MAJOR, 'L', k, a + 1, ld))) return info;
    done += k3 / 3;
    progress(pr, phase, done / total);
    const int S = 8;
    for (int s = 0; s < S; s++) {   /* rows of X L^T = B are independent */
        int r0 = (int)((long)k * s / S), r1 = (int)((long)k * (s + 1) / S);
        RFP_BLAS(trsm)(CblasColMajor, CblasRight, CblasLower, CblasTrans, CblasNonUnit, r1 - r0, k,
                       (RFP_T)1, a + 1, ld, a + k + 1 + r0, ld);
        done += k3 / S;
        progress(pr, phase, done / total);
    }
    /* C = A(0) upper (k x k) -= B B^T, B = a + k + 1 (k x k): by column blocks */
    for (int s = 0; s < S; s++) {
        int c0 = (int)((long)k * s / S), c1 = (int)((long)k * (s + 1) / S);
        if (c0 > 0)
            RFP_BLAS(gemm)(CblasColMajor, CblasNoTrans, CblasTrans, c0, c1 - c0, k, (RFP_T)-1, a + k + 1,
                           ld, a + k + 1 + c0, ld, (RFP_T)1, a + (size_t)c0 * ld, ld);
        RFP_BLAS(syrk)(CblasColMajor, CblasUpper, CblasNoTrans, c1 - c0, k, (RFP_T)-1, a + k + 1 + c0, ld,
                       (RFP_T)1, a + c0 + (size_t)c0 * ld, ld);
        done += k3 * ((double)c1 * c1 - (double)c0 * c0) / ((double)k * k);
        progress(pr, phase, done / total);
    }
    if ((info = RFP_LAPACK(potrf)(LAPACK_COL_MAJOR, 'U', k, a, ld))) return info + k;
    progress(pr, phase, 1);
    return 0;
}
