/* fit.c — the straight-line fit of the aspect-ratio law (docs/theory.md §6): the
 * normalised deviation from Gaussianity against L/n; and the mean and standard
 * error over networks that the ensemble measurements report. */
#include "experiments.h"
#include <math.h>

wick_status wick_fit_line(const double *x, const double *y, const double *err, size_t n,
                          double *slope, double *slope_err, double *intercept,
                          double *intercept_err, double *chi2_dof) {
    if (n < 3) return wick_fail(WICK_EINVAL, "fit: %zu points, a line with errors needs 3", n);
    double S = 0, Sx = 0, Sy = 0, Sxx = 0, Sxy = 0;
    for (size_t i = 0; i < n; i++) {
        if (!(err[i] > 0) || !isfinite(err[i]) || !isfinite(x[i]) || !isfinite(y[i]))
            return wick_fail(WICK_EINVAL, "fit: point %zu (x %g, y %g, error %g) is not usable", i,
                             x[i], y[i], err[i]);
        double w = 1 / (err[i] * err[i]);
        S += w; Sx += w * x[i]; Sy += w * y[i]; Sxx += w * x[i] * x[i]; Sxy += w * x[i] * y[i];
    }
    double D = S * Sxx - Sx * Sx;
    if (!(D > 0)) return wick_fail(WICK_EINVAL, "fit: the x values are all equal");
    double b = (S * Sxy - Sx * Sy) / D, a = (Sxx * Sy - Sx * Sxy) / D, chi2 = 0;
    for (size_t i = 0; i < n; i++) {
        double r = (y[i] - a - b * x[i]) / err[i];
        chi2 += r * r;
    }
    double cd = chi2 / (double)(n - 2), scale = cd > 1 ? sqrt(cd) : 1;
    *slope = b;
    *intercept = a;
    if (slope_err) *slope_err = sqrt(S / D) * scale;
    if (intercept_err) *intercept_err = sqrt(Sxx / D) * scale;
    if (chi2_dof) *chi2_dof = cd;
    return WICK_OK;
}

void ex_mean_se(const double *stats, size_t M, size_t P, double *val, double *se) {
    for (size_t q = 0; q < P; q++) {
        double mu = 0, v = 0;
        for (size_t k = 0; k < M; k++) mu += stats[k * P + q];
        mu /= (double)M;
        for (size_t k = 0; k < M; k++) {
            double d = stats[k * P + q] - mu;
            v += d * d;
        }
        val[q] = mu;
        se[q] = sqrt(v / ((double)M - 1) / (double)M);
    }
}

/* Cov(u, v) over the 2M networks of M mirror pairs, u = cu . x and v = cv . x
 * on each network's ncol columns of x (constants a covariance does not see
 * are left out), and its standard error from the pair averages of each
 * network's influence (u - mean u)(v - mean v). */
void ex_pair_cov(const double *x, size_t M, int ncol, const double *cu, const double *cv,
                 double *val, double *se) {
    double su = 0, sv = 0, suv = 0, N = 2.0 * (double)M;
    for (size_t j = 0; j < 2 * M; j++) {
        const double *p = x + j * (size_t)ncol;
        double u = 0, v = 0;
        for (int k = 0; k < ncol; k++) { u += cu[k] * p[k]; v += cv[k] * p[k]; }
        su += u; sv += v; suv += u * v;
    }
    double mu = su / N, mv = sv / N, c = suv / N - mu * mv, s2 = 0;
    for (size_t k = 0; k < M; k++) {
        double g = 0;
        for (int h = 0; h < 2; h++) {
            const double *p = x + (2 * k + (size_t)h) * (size_t)ncol;
            double u = 0, v = 0;
            for (int q = 0; q < ncol; q++) { u += cu[q] * p[q]; v += cv[q] * p[q]; }
            g += 0.5 * ((u - mu) * (v - mv) - c);
        }
        s2 += g * g;
    }
    *val = c * N / (N - 1);
    *se = sqrt(s2 / (double)(M - 1) / (double)M);
}
