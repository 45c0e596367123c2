/* fit.h — the width fits of the tests of the 1/n theory (tests/test_theory_*.c).
 * A quantity measured over networks at widths n_1 .. n_k is fitted as
 * y = c0 + c1 x with x = 1/n (wick_fit_line's weighted line), and the
 * intercept c0, its infinite-width value, is set against the prediction: it
 * must lie within 4 standard errors of it, and a wrong value (1.2 x the
 * prediction unless given) outside them, so that the test tells the theory
 * from a theory 20% off.  Static inline after check.h, so that its checks
 * count in the test that includes it and name the caller's line. */
#ifndef WICK_TEST_FIT_H
#define WICK_TEST_FIT_H

#include "check.h"
#include <stdarg.h>

typedef struct {
    double c0, c0e;      /* the intercept (n -> infinity) and its standard error */
    double c1, c1e;      /* the slope: the 1/n coefficient */
    double chi2;         /* chi^2 per degree of freedom */
    double pred, wrong;  /* the prediction, and the value the fit should reject */
    double z, zw;        /* (c0 - pred) / c0e and (c0 - wrong) / c0e */
} fit_width;

/* The fit of y +- e over x[0..nw) against pred; wrong NAN: 1.2 x pred.  A
 * fit wick_fit_line refuses is a failed check (and gives z = +-inf). */
#define FIT_WIDTH(x, y, e, nw, pred, wrong) fit_width_at(__FILE__, __LINE__, x, y, e, nw, pred, wrong)
static inline fit_width fit_width_at(const char *file, int line, const double *x, const double *y,
                                     const double *e, size_t nw, double pred, double wrong) {
    fit_width f = {0};
    wick_status s = wick_fit_line(x, y, e, nw, &f.c1, &f.c1e, &f.c0, &f.c0e, &f.chi2);
    if (s != WICK_OK) {
        char m[700];
        snprintf(m, sizeof m, "wick_fit_line -> %s: %s", wick_strerror(s), wick_last_error());
        chk_report(file, line, m);
    }
    f.pred = pred;
    f.wrong = isnan(wrong) ? 1.2 * pred : wrong;
    f.z = (f.c0 - pred) / f.c0e;
    f.zw = (f.c0 - f.wrong) / f.c0e;
    return f;
}

/* Prints "  LABEL: predicted .. fitted c0 +- c0e (z se; x1.2: zw se; chi2/dof ..)"
 * ("wrong:" where the wrong value is not 1.2 x pred) and checks |z| <= 4 and,
 * where reject, |zw| > 4.  LABEL is printf's of fmt (padded to line up the
 * columns; the failure messages fold its runs of blanks). */
static inline void fit_vreport(const char *file, int line, const fit_width *f, int reject,
                               const char *fmt, va_list ap) {
    char label[256], name[256], m[800];
    vsnprintf(label, sizeof label, fmt, ap);
    size_t j = 0;
    for (size_t i = 0; label[i]; i++)
        if (!(label[i] == ' ' && (j == 0 || name[j - 1] == ' '))) name[j++] = label[i];
    while (j > 0 && name[j - 1] == ' ') j--;
    name[j] = 0;
    int x12 = f->wrong == 1.2 * f->pred;
    fprintf(stderr, "  %s: predicted %10.5g  fitted %10.5g +- %-8.3g (%+.1f se; %s: %+.1f se; "
            "chi2/dof %.2f)\n", label, f->pred, f->c0, f->c0e, f->z, x12 ? "x1.2" : "wrong", f->zw,
            f->chi2);
    if (!(fabs(f->z) <= 4)) {
        snprintf(m, sizeof m, "%s: fitted %g +- %g vs predicted %g", name, f->c0, f->c0e, f->pred);
        chk_report(file, line, m);
    }
    if (reject && !(fabs(f->zw) > 4)) {
        snprintf(m, sizeof m, "%s: the fit does not reject %s (%g +- %g vs %g)", name,
                 x12 ? "1.2 x the prediction" : "the wrong value", f->c0, f->c0e, f->wrong);
        chk_report(file, line, m);
    }
}

#define FIT_REPORT(f, reject, ...) fit_report_at(__FILE__, __LINE__, f, reject, __VA_ARGS__)
static inline void fit_report_at(const char *file, int line, const fit_width *f, int reject,
                                 const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fit_vreport(file, line, f, reject, fmt, ap);
    va_end(ap);
}

/* FIT_WIDTH then FIT_REPORT, for a rejection that does not depend on the fit. */
#define FIT_CHECK(x, y, e, nw, pred, wrong, reject, ...) \
    fit_check_at(__FILE__, __LINE__, x, y, e, nw, pred, wrong, reject, __VA_ARGS__)
static inline fit_width fit_check_at(const char *file, int line, const double *x, const double *y,
                                     const double *e, size_t nw, double pred, double wrong,
                                     int reject, const char *fmt, ...) {
    fit_width f = fit_width_at(file, line, x, y, e, nw, pred, wrong);
    va_list ap;
    va_start(ap, fmt);
    fit_vreport(file, line, &f, reject, fmt, ap);
    va_end(ap);
    return f;
}

#endif
