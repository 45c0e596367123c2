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
