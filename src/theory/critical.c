/* critical.c — fixed points, criticality and universality classes (docs/theory.md §4). */
#include "theory.h"
#include <math.h>

const char *wick_universality_name(wick_universality u) {
    switch (u) {
    case WICK_UNIV_SCALE_INVARIANT: return "scale-invariant";
    case WICK_UNIV_KSTAR_ZERO: return "K*=0";
    case WICK_UNIV_HALF_STABLE: return "half-stable";
    case WICK_UNIV_NONE: return "none";
    }
    return "unknown";
}

static wick_status s2_at(wick_act a, double K, double *s2) {
    return wick_gauss_expect1(a, 0, 2, K, s2);
}

wick_status wick_fixed_point(wick_act a, double cb, double cw, double K0, double *kstar) {
    if ((unsigned)a.kind >= WICK_ACT_COUNT)
        return wick_fail(WICK_EINVAL, "fixed point: unknown activation %d", (int)a.kind);
    if (!isfinite(cb) || cb < 0 || !isfinite(cw) || cw < 0 || !isfinite(K0) || K0 < 0)
        return wick_fail(WICK_EINVAL, "fixed point: C_b = %g, C_W = %g, K0 = %g must be finite "
                         "and non-negative", cb, cw, K0);
    double K = K0;
    for (int it = 0; it < 20000; it++) {
        double s2;
        wick_status st = s2_at(a, K, &s2);
        if (st) return st;
        double Kn = cb + cw * s2;
        if (!isfinite(Kn) || Kn > 1e12)
            return wick_fail(WICK_ENUMERIC, "fixed point of %s at C_b = %g, C_W = %g: the kernel "
                             "grows without bound", wick_act_name(a), cb, cw);
        if (fabs(Kn - K) <= 1e-14 * (1 + K)) { *kstar = Kn; return WICK_OK; }
        K = Kn;
    }
    /* a power-law approach to K* = 0 (the K*=0 class at criticality) never
     * meets the tolerance above; say 0 when that is where it is heading */
    if (cb == 0 && wick_act_eval(a, 0) == 0 && K < 1e-3) { *kstar = 0; return WICK_OK; }
    return wick_fail(WICK_ENUMERIC, "fixed point of %s at C_b = %g, C_W = %g: no convergence "
                     "after 20000 layers (K = %g)", wick_act_name(a), cb, cw, K);
}

/* sigma'''(0): exact for the activations of ch. 2.2 with sigma(0) = 0
 * (tanh: -2, sin: -1; swish and gelu are z/2 + c z^2 + O(z^4)), else by
 * Richardson-extrapolated central differences of sigma''. */
static double third_deriv0(wick_act a) {
    switch (a.kind) {
    case WICK_ACT_TANH: return -2.0;
    case WICK_ACT_SIN: return -1.0;
    case WICK_ACT_SWISH: case WICK_ACT_GELU: return 0.0;
    default: break;
    }
    double h = 1e-3;
    double d1 = wick_act_deriv2(a, h) - wick_act_deriv2(a, -h);
    double d2 = wick_act_deriv2(a, 2 * h) - wick_act_deriv2(a, -2 * h);
    return (8 * d1 - d2) / (12 * h);
}

/* chi_par - chi_perp per unit C_W: <sigma sigma''>_K (Price), smooth only */
static wick_status chi_gap(wick_act a, double K, double *g) {
    double cp, cq;
    wick_status st = wick_chi(a, 1.0, K, &cp, &cq);
    if (st) return st;
    *g = cp - cq;
    return WICK_OK;
}

wick_status wick_critical(wick_act a, wick_critical_info *out) {
    if ((unsigned)a.kind >= WICK_ACT_COUNT)
        return wick_fail(WICK_EINVAL, "criticality: unknown activation %d", (int)a.kind);
    wick_critical_info r = {WICK_UNIV_NONE, NAN, NAN, NAN, NAN, NAN, NAN};
    double ap, am;
    if (th_scale_invariant(a, &ap, &am)) {
        /* chi_par = chi_perp = C_W A2 at every K: C_b = 0, C_W = 1/A2 */
        r.cls = WICK_UNIV_SCALE_INVARIANT;
        r.cb = 0; r.cw = 2.0 / (ap * ap + am * am);
        *out = r;
        return WICK_OK;
    }
    if (a.kind == WICK_ACT_PERCEPTRON) {
        *out = r;
        return wick_fail(WICK_ENUMERIC, "no critical point for perceptron (its derivative is a "
                         "delta: chi is undefined)");
    }
    double s0 = wick_act_eval(a, 0), s1 = wick_act_deriv(a, 0), s2 = wick_act_deriv2(a, 0);
    if (s0 == 0 && s1 != 0) {
        double s3 = third_deriv0(a);
        r.a1 = s3 / s1 + 0.75 * (s2 / s1) * (s2 / s1);
        if (r.a1 < 0) {
            r.cls = WICK_UNIV_KSTAR_ZERO;
            r.cb = 0; r.cw = 1.0 / (s1 * s1); r.kstar = 0;
            r.power_exponent = 1.0; r.power_coeff = 1.0 / (-r.a1);
            *out = r;
            return WICK_OK;
        }
    }
    /* otherwise a non-zero K* with chi_par(K*) = chi_perp(K*): scan K on a
     * log grid for a sign change of <sigma sigma''>, then bisect */
    double Klo = 1e-4, glo, Kroot = NAN;
    wick_status st = chi_gap(a, Klo, &glo);
    if (st) return st;
    for (double K = Klo * 1.25; K <= 1e3; K *= 1.25) {
        double g;
        if ((st = chi_gap(a, K, &g))) return st;
        if ((glo < 0) != (g < 0)) {
            double lo = Klo, hi = K, flo = glo;
            for (int it = 0; it < 200 && hi - lo > 1e-14 * hi; it++) {
                double mid = 0.5 * (lo + hi), fm;
                if ((st = chi_gap(a, mid, &fm))) return st;
                if ((fm < 0) == (flo < 0)) { lo = mid; flo = fm; } else hi = mid;
            }
            Kroot = 0.5 * (lo + hi);
            double sq, cq;
            if ((st = wick_chi(a, 1.0, Kroot, NULL, &cq)) || (st = s2_at(a, Kroot, &sq))) return st;
            double cw = 1.0 / cq, cb = Kroot - cw * sq;
            if (cb >= -1e-12) {
                r.cls = WICK_UNIV_HALF_STABLE;
                r.cb = cb < 0 ? 0 : cb; r.cw = cw; r.kstar = Kroot;
                *out = r;
                return WICK_OK;
            }
        }
        Klo = K; glo = g;
    }
    *out = r;
    return wick_fail(WICK_ENUMERIC, "no critical point for %s (%s)", wick_act_name(a),
                     s0 != 0 ? "sigma(0) != 0: every candidate needs C_b < 0"
                             : "chi_par = chi_perp = 1 has no solution with C_b >= 0");
}

wick_status wick_critical_init(wick_act a, double *cb, double *cw, wick_universality *cls) {
    wick_critical_info r;
    wick_status st = wick_critical(a, &r);
    if (cls) *cls = r.cls;
    if (st) return st;
    if (cb) *cb = r.cb;
    if (cw) *cw = r.cw;
    return WICK_OK;
}
