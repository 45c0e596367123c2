/* learn.c — learning at infinite width: the Gaussian-process posterior
 * (docs/theory.md §8) and gradient descent under the frozen NTK (docs/theory.md §9).  Every
 * solve goes through a Cholesky factorisation (LAPACKE dpotrf/dpotrs); the
 * finite-t matrix function Theta^-1 [I - (I - eta Theta)^t] through the
 * eigendecomposition (dsyev) that also gives lambda_max for the step check.
 * Matrices are row-major. */
#include "theory.h"
#include <cblas.h>
#include <lapacke.h>
#include <math.h>
#include <string.h>

static wick_status check_gram(const double *M, size_t n, const char *what) {
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j < n; j++)
            if (!isfinite(M[i * n + j]) || M[i * n + j] != M[j * n + i])
                return wick_fail(WICK_EINVAL, "%s: entry (%zu, %zu) = %g is not finite and "
                                 "symmetric", what, i, j, M[i * n + j]);
    return WICK_OK;
}

/* Cholesky of the nA x nA block of the n x n matrix M plus noise I into L. */
static wick_status cholesky_block(const double *M, size_t n, size_t nA, double noise, double *L,
                                  const char *what) {
    for (size_t i = 0; i < nA; i++)
        for (size_t j = 0; j < nA; j++) L[i * nA + j] = M[i * n + j] + (i == j ? noise : 0.0);
    lapack_int info = LAPACKE_dpotrf(LAPACK_ROW_MAJOR, 'L', (lapack_int)nA, L, (lapack_int)nA);
    if (info > 0)
        return wick_fail(WICK_ENUMERIC, "%s is not positive definite (Cholesky fails at leading "
                         "minor %d of %zu)", what, (int)info, nA);
    if (info < 0) return wick_fail(WICK_EINVAL, "%s: dpotrf argument %d", what, (int)-info);
    return WICK_OK;
}

wick_status wick_gp_posterior(const double *K, size_t nA, size_t nB, const double *yA,
                              size_t nout, double noise, double *mean, double *cov,
                              double *logev) {
    if (!K || !yA || nA == 0 || nout == 0)
        return wick_fail(WICK_EINVAL, "GP posterior: needs a kernel, %zu training inputs and "
                         "%zu output components", nA, nout);
    if (!isfinite(noise) || noise < 0)
        return wick_fail(WICK_EINVAL, "GP posterior: noise variance %g must be finite and "
                         "non-negative", noise);
    size_t n = nA + nB, nn;
    if (!wick_mul_size(n, n, &nn) || nn > ((size_t)1 << 40))
        return wick_fail(WICK_EINVAL, "GP posterior: %zu inputs is too many", n);
    wick_status st = check_gram(K, n, "GP posterior: kernel");
    if (st) return st;
    for (size_t i = 0; i < nA * nout; i++)
        if (!isfinite(yA[i])) return wick_fail(WICK_EINVAL, "GP posterior: target %zu is not "
                                               "finite", i);
    double *L = wick_malloc(sizeof(double) * nA * nA);
    double *alpha = wick_malloc(sizeof(double) * nA * nout);
    double *X = nB && cov ? wick_malloc(sizeof(double) * nA * nB) : NULL;
    if (!L || !alpha || (nB && cov && !X)) {
        st = wick_fail(WICK_ENOMEM, "GP posterior: out of memory for %zu inputs", n);
        goto done;
    }
    if ((st = cholesky_block(K, n, nA, noise, L, "GP posterior: K_AA + noise I"))) goto done;
    memcpy(alpha, yA, sizeof(double) * nA * nout);
    LAPACKE_dpotrs(LAPACK_ROW_MAJOR, 'L', (lapack_int)nA, (lapack_int)nout, L, (lapack_int)nA,
                   alpha, (lapack_int)nout);
    if (logev) {
        /* per component: -1/2 y^T A^-1 y - 1/2 log det A - nA/2 log 2 pi */
        double quad = 0, logdet = 0;
        for (size_t i = 0; i < nA * nout; i++) quad += yA[i] * alpha[i];
        for (size_t i = 0; i < nA; i++) logdet += 2 * log(L[i * nA + i]);
        *logev = -0.5 * quad - 0.5 * (double)nout * logdet -
                 0.5 * (double)(nA * nout) * log(2 * M_PI);
    }
    if (nB && mean)  /* mean_B = K_BA alpha */
        cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)nB, (int)nout, (int)nA, 1.0,
                    K + nA * n, (int)n, alpha, (int)nout, 0.0, mean, (int)nout);
    if (nB && cov) {
        /* X = A^-1 K_AB, cov = K_BB - K_BA X */
        for (size_t i = 0; i < nA; i++)
            for (size_t j = 0; j < nB; j++) X[i * nB + j] = K[i * n + nA + j];
        LAPACKE_dpotrs(LAPACK_ROW_MAJOR, 'L', (lapack_int)nA, (lapack_int)nB, L, (lapack_int)nA,
                       X, (lapack_int)nB);
        for (size_t i = 0; i < nB; i++)
            for (size_t j = 0; j < nB; j++) cov[i * nB + j] = K[(nA + i) * n + nA + j];
        cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)nB, (int)nB, (int)nA, -1.0,
                    K + nA * n, (int)n, X, (int)nB, 1.0, cov, (int)nB);
        for (size_t i = 0; i < nB; i++)  /* exactly symmetric */
            for (size_t j = 0; j < i; j++)
                cov[i * nB + j] = cov[j * nB + i] = 0.5 * (cov[i * nB + j] + cov[j * nB + i]);
    }
done:
    wick_free(L); wick_free(alpha); wick_free(X);
    return st;
}

/* Y (nA x m) <- M_t Y with M_t = Theta_AA^-1 [I - (I - eta Theta_AA)^t]:
 * Cholesky solves for t -> infinity, the eigenbasis for finite t. */
typedef struct {
    size_t nA;
    long t;
    const double *L;         /* Cholesky factor (t < 0) */
    const double *Q, *phi;   /* eigenvectors (columns) and phi_i (t >= 0) */
    double *tmp;             /* nA x m */
} mt_op;

static void apply_mt(const mt_op *o, double *Y, size_t m) {
    size_t nA = o->nA;
    if (o->t < 0) {
        LAPACKE_dpotrs(LAPACK_ROW_MAJOR, 'L', (lapack_int)nA, (lapack_int)m, o->L, (lapack_int)nA,
                       Y, (lapack_int)m);
        return;
    }
    /* tmp = Q^T Y; tmp_i *= phi_i; Y = Q tmp */
    cblas_dgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)nA, (int)m, (int)nA, 1.0, o->Q,
                (int)nA, Y, (int)m, 0.0, o->tmp, (int)m);
    for (size_t i = 0; i < nA; i++)
        for (size_t j = 0; j < m; j++) o->tmp[i * m + j] *= o->phi[i];
    cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)nA, (int)m, (int)nA, 1.0, o->Q,
                (int)nA, o->tmp, (int)m, 0.0, Y, (int)m);
}

wick_status wick_gd_predict(const double *Theta, const double *K, size_t nA, size_t nB,
                            const double *yA, size_t nout, double eta, long t, const double *z0,
                            double *zt, double *mean, double *cov) {
    if (!Theta || !yA || nA == 0 || nout == 0)
        return wick_fail(WICK_EINVAL, "GD prediction: needs the NTK, %zu training inputs and %zu "
                         "output components", nA, nout);
    if (cov && !K)
        return wick_fail(WICK_EINVAL, "GD prediction: the ensemble covariance needs the kernel K");
    if (zt && !z0) return wick_fail(WICK_EINVAL, "GD prediction: z(t) needs z(0)");
    size_t n = nA + nB, nn;
    if (!wick_mul_size(n, n, &nn) || nn > ((size_t)1 << 40))
        return wick_fail(WICK_EINVAL, "GD prediction: %zu inputs is too many", n);
    wick_status st = check_gram(Theta, n, "GD prediction: NTK");
    if (st) return st;
    if (K && (st = check_gram(K, n, "GD prediction: kernel"))) return st;
    for (size_t i = 0; i < nA * nout; i++)
        if (!isfinite(yA[i])) return wick_fail(WICK_EINVAL, "GD prediction: target %zu is not "
                                               "finite", i);
    size_t m = nout > nB ? nout : nB;
    double *Q = wick_malloc(sizeof(double) * nA * nA), *lam = wick_malloc(sizeof(double) * nA);
    double *L = wick_malloc(sizeof(double) * nA * nA), *tmp = wick_malloc(sizeof(double) * nA * m);
    double *R = wick_malloc(sizeof(double) * nA * m), *X = wick_malloc(sizeof(double) * nA * (nB + 1));
    double *KX = wick_malloc(sizeof(double) * nA * (nB + 1));
    if (!Q || !lam || !L || !tmp || !R || !X || !KX) {
        st = wick_fail(WICK_ENOMEM, "GD prediction: out of memory for %zu inputs", n);
        goto done;
    }
    /* lambda_max and positivity from the spectrum of Theta_AA */
    for (size_t i = 0; i < nA; i++)
        for (size_t j = 0; j < nA; j++) Q[i * nA + j] = Theta[i * n + j];
    if (LAPACKE_dsyev(LAPACK_ROW_MAJOR, 'V', 'L', (lapack_int)nA, Q, (lapack_int)nA, lam) != 0) {
        st = wick_fail(WICK_ENUMERIC, "GD prediction: eigendecomposition of Theta_AA failed");
        goto done;
    }
    double lmax = lam[nA - 1];
    if (!(lam[0] > 0) || (st = cholesky_block(Theta, n, nA, 0.0, L, "GD prediction: Theta_AA"))) {
        if (!st)
            st = wick_fail(WICK_ENUMERIC, "GD prediction: Theta_AA is not positive definite "
                           "(smallest eigenvalue %g)", lam[0]);
        goto done;
    }
    if (!(eta > 0) || !(eta < 2.0 / lmax)) {
        st = wick_fail(WICK_EINVAL, "GD prediction: learning rate eta = %g outside (0, 2/lambda_max"
                       " = %.6g): gradient descent would not converge", eta, 2.0 / lmax);
        goto done;
    }
    for (size_t i = 0; i < nA; i++) {
        /* phi_i = (1 - (1 - eta lambda_i)^t) / lambda_i, without cancellation
           where 0 < eta lambda_i < 1; above 1 the base is negative (the
           iteration oscillates while it converges) and pow is exact enough */
        double x = eta * lam[i];
        if (t < 0) lam[i] = 1.0 / lam[i];
        else if (x < 1) lam[i] = -expm1((double)t * log1p(-x)) / lam[i];
        else lam[i] = (1 - pow(1 - x, (double)t)) / lam[i];
    }
    mt_op op = {nA, t, L, Q, lam, tmp};
    if (zt) {
        /* z(t) = z(0) - Theta_{.A} M_t (z_A(0) - y_A) for every input */
        for (size_t i = 0; i < nA * nout; i++) R[i] = z0[i] - yA[i];
        apply_mt(&op, R, nout);
        memcpy(zt, z0, sizeof(double) * n * nout);
        cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)n, (int)nout, (int)nA, -1.0,
                    Theta, (int)n, R, (int)nout, 1.0, zt, (int)nout);
    }
    if (nB && mean) {  /* E[z_B] = Theta_BA M_t y_A */
        memcpy(R, yA, sizeof(double) * nA * nout);
        apply_mt(&op, R, nout);
        cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)nB, (int)nout, (int)nA, 1.0,
                    Theta + nA * n, (int)n, R, (int)nout, 0.0, mean, (int)nout);
    }
    if (nB && cov) {
        /* X = M_t Theta_AB; cov = K_BB - X^T K_AB - K_BA X + X^T K_AA X */
        for (size_t i = 0; i < nA; i++)
            for (size_t j = 0; j < nB; j++) X[i * nB + j] = Theta[i * n + nA + j];
        apply_mt(&op, X, nB);
        for (size_t i = 0; i < nB; i++)
            for (size_t j = 0; j < nB; j++) cov[i * nB + j] = K[(nA + i) * n + nA + j];
        /* KX = K_AA X - K_AB, so cov += X^T KX - K_BA X */
        for (size_t i = 0; i < nA; i++)
            for (size_t j = 0; j < nB; j++) KX[i * nB + j] = -2.0 * K[i * n + nA + j];
        cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)nA, (int)nB, (int)nA, 1.0, K,
                    (int)n, X, (int)nB, 1.0, KX, (int)nB);
        /* X^T (K_AA X - 2 K_AB) = X^T K_AA X - X^T K_AB - (K_BA X)^T; symmetrised below */
        cblas_dgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)nB, (int)nB, (int)nA, 1.0, X,
                    (int)nB, KX, (int)nB, 1.0, cov, (int)nB);
        for (size_t i = 0; i < nB; i++)
            for (size_t j = 0; j < i; j++)
                cov[i * nB + j] = cov[j * nB + i] = 0.5 * (cov[i * nB + j] + cov[j * nB + i]);
    }
done:
    wick_free(Q); wick_free(lam); wick_free(L); wick_free(tmp); wick_free(R); wick_free(X);
    wick_free(KX);
    return st;
}
