/* finite.c — the order-1/n theory of one input beyond the four-point vertex:
 * the subleading kernel K^{1} (the book's ch. 4), the NTK's 1/n mean shift,
 * its variance (A, B) and its correlation with the preactivations (D, F)
 * (ch. 8).  The recursions and their derivation are written out in
 * docs/theory-finite-width.md.
 *
 * Every layer-l quantity is defined with 1/n_{l-1} pulled out:
 *   E[z_i z_j]                 = delta_ij (K + K1 / n_{l-1})
 *   E[H_ij]                    = delta_ij (Theta + Theta1 / n_{l-1})
 *   Cov(H_i1i2, H_i3i4)        = (d12 d34 A + (d13 d24 + d14 d23) B) / n_{l-1}
 *   E[dH_i1i2 z_i3 z_i4]       = (d12 d34 D + (d13 d24 + d14 d23) F) / n_{l-1}
 *   Cov(z_i z_i, z_j z_j)      = V / n_{l-1}  (i != j)
 * and all vanish at l = 1, where z is Gaussian and H = Theta exactly. */
#include "theory.h"
#include <math.h>
#include <string.h>

/* The Gaussian moments at variance K that the recursions need: g = <s^2>,
 * h = <s'^2> and their first two K-derivatives, <s^4>, <s'^4>, <s^2 s'^2>. */
typedef struct { double g, g1, g2, h, h1, h2, s4, p4, sp; } fmom;

static wick_status finite_moments(wick_act act, double K, fmom *m) {
    double ap, am;
    if (th_scale_invariant(act, &ap, &am)) {
        /* sigma'^2 = a+^2 or a-^2 on each half line: every moment is a power of K */
        double A2 = 0.5 * (ap * ap + am * am), A4 = 0.5 * (ap * ap * ap * ap + am * am * am * am);
        m->g = A2 * K; m->g1 = A2; m->g2 = 0;
        m->h = A2; m->h1 = 0; m->h2 = 0;
        m->s4 = 3 * A4 * K * K; m->p4 = A4; m->sp = A4 * K;
        return WICK_OK;
    }
    if (act.kind == WICK_ACT_SIN) {
        /* from <cos(k z)>_K = e^{-k^2 K / 2} */
        double e2 = exp(-2 * K), e8 = exp(-8 * K);
        m->g = -0.5 * expm1(-2 * K); m->g1 = e2; m->g2 = -2 * e2;
        m->h = 0.5 * (1 + e2); m->h1 = -e2; m->h2 = 2 * e2;
        m->s4 = (3 - 4 * e2 + e8) / 8; m->p4 = (3 + 4 * e2 + e8) / 8;
        m->sp = -0.125 * expm1(-8 * K);   /* <sin^2 cos^2> = <sin^2 2z> / 4 */
        return WICK_OK;
    }
    if (act.kind == WICK_ACT_PERCEPTRON)
        return wick_fail(WICK_EINVAL, "perceptron: the order-1/n tensors are undefined (its "
                         "derivative is a delta)");
    /* d^k/dK^k <F>_K = (2K)^{-k} <He_{2k}(z / sqrt K) F> (differentiating the
     * Gaussian density); Price's d<s^2>/dK = <s'^2 + s s''> first, so that
     * g2 carries one division by K, not two */
    static const int b[8] = {TB_SQ, TB_S1SQ, TB_SS2, TB_Z2DSQ, TB_Z2S1SQ, TB_Z4S1SQ, TB_QUART,
                             TB_S1QUART};
    double o[9];
    wick_status st = th_expect1(act, K, 8, b, o, NULL);
    if (st) return st;
    st = th_expect1(act, K, 1, (const int[]){TB_SQS1SQ}, &o[8], NULL);
    if (st) return st;
    if (!(K > 0)) return wick_fail(WICK_EINVAL, "order-1/n tensors: variance %g must be positive", K);
    m->g = o[0];
    m->g1 = o[1] + o[2];
    m->g2 = (o[3] / K - m->g1) / (2 * K);
    m->h = o[1];
    m->h1 = (o[4] / K - o[1]) / (2 * K);
    m->h2 = (o[5] / (K * K) - 6 * o[4] / K + 3 * o[1]) / (4 * K * K);
    m->s4 = o[6]; m->p4 = o[7]; m->sp = o[8];
    return WICK_OK;
}

static double cw_at(const wick_theory_config *c, int l) { return c->cw_l ? c->cw_l[l - 1] : c->cw; }
static double lw_at(const wick_theory_config *c, int l) {
    return c->lambda_w_l ? c->lambda_w_l[l - 1] : c->lambda_w;
}
static double width_at(const wick_theory_config *c, int l) {
    return (double)(c->width_l ? c->width_l[l] : c->width);
}

wick_status wick_theory_finite(const wick_theory_config *c, double q, wick_layer_finite *out) {
    if (!c || !out) return wick_fail(WICK_EINVAL, "order-1/n theory: no configuration or output");
    if (c->depth < 1)
        return wick_fail(WICK_EINVAL, "order-1/n theory: depth %d, expected at least 1", c->depth);
    if (!isfinite(q) || q < 0)
        return wick_fail(WICK_EINVAL, "order-1/n theory: input norm q = %g must be a finite "
                         "non-negative number", q);
    /* the same validation and leading order as the infinite-width flow */
    wick_layer_theory *lt = wick_malloc(sizeof *lt * (size_t)c->depth);
    if (!lt) return wick_fail(WICK_ENOMEM, "order-1/n theory: out of memory");
    wick_status st = wick_theory_single(c, q, lt);
    if (st) { wick_free(lt); return st; }
    if (c->act.kind == WICK_ACT_PERCEPTRON) {
        wick_free(lt);
        return wick_fail(WICK_EINVAL, "perceptron: the order-1/n tensors are undefined (its "
                         "derivative is a delta)");
    }
    double K1 = 0, T1 = 0, A = 0, B = 0, D = 0, F = 0;
    for (int l = 1; l <= c->depth; l++) {
        double K = lt[l - 1].K, Th = lt[l - 1].ntk, V = lt[l - 1].V;
        wick_layer_finite *o = &out[l - 1];
        o->K = K; o->V = V; o->ntk = Th;
        o->K1 = K1; o->ntk1 = T1; o->A = A; o->B = B; o->D = D; o->F = F;
        if (l == c->depth) break;
        fmom m = {0};
        if ((st = finite_moments(c->act, K, &m))) {
            wick_free(lt);
            return st;
        }
        double cw = cw_at(c, l + 1), lw = lw_at(c, l + 1);
        double r = l == 1 ? 1.0 : width_at(c, l) / width_at(c, l - 1);  /* n_l / n_{l-1} */
        double chp = cw * m.g1, chq = cw * m.h;          /* chi_par, chi_perp */
        /* a(z) = lambda_W s^2 + C_W Theta s'^2: the conditional NTK mean's summand */
        double da = lw * m.g1 + cw * Th * m.h1;
        double varf = lw * lw * (m.s4 - m.g * m.g) + 2 * lw * cw * Th * (m.sp - m.g * m.h) +
                      cw * cw * Th * Th * (m.p4 - m.h * m.h);
        double covfg = cw * (lw * (m.s4 - m.g * m.g) + cw * Th * (m.sp - m.g * m.h));
        double nK1 = r * cw * (m.g1 * K1 + 0.5 * m.g2 * V);
        double nT1 = r * (lw * (m.g1 * K1 + 0.5 * m.g2 * V) +
                          cw * (Th * (m.h1 * K1 + 0.5 * m.h2 * V) + m.h * T1 + m.h1 * (D + 2 * F)));
        double nA = varf + r * (chq * chq * A + 2 * chq * da * D + da * da * V);
        double nB = cw * cw * m.p4 * Th * Th + r * chq * chq * B;
        double nD = covfg + r * (chp * chq * D + chp * da * V);
        double nF = cw * cw * Th * m.sp + r * chp * chp * F;
        K1 = nK1; T1 = nT1; A = nA; B = nB; D = nD; F = nF;
    }
    wick_free(lt);
    return WICK_OK;
}

/* ---------------------------------------------------------------------------
 * The subleading kernel of two inputs
 * ------------------------------------------------------------------------- */

/* <sigma(z0) sigma(z1)> over [[k00, k01], [k01, k11]] (closed forms where
 * they exist, else quadrature). */
static double pair_g(wick_act act, double k00, double k01, double k11, wick_status *st) {
    double ss = 0;
    wick_status s = th_pair_ss(act, k00, k01, k11, &ss, NULL);
    if (s && !*st) *st = s;
    return ss;
}

wick_status wick_kernel1_two(const wick_theory_config *c, const double G0[4], double *K1) {
    if (!c || !G0 || !K1) return wick_fail(WICK_EINVAL, "subleading kernel: no input or output");
    if (c->act.kind == WICK_ACT_PERCEPTRON)
        return wick_fail(WICK_EINVAL, "perceptron: the order-1/n kernel is undefined (its "
                         "derivative is a delta)");
    int L = c->depth;
    if (L < 1) return wick_fail(WICK_EINVAL, "subleading kernel: depth %d", L);
    double *V = wick_malloc(sizeof(double) * 16 * (size_t)L);
    double *K = wick_malloc(sizeof(double) * 4 * (size_t)L);
    if (!V || !K) {
        wick_free(V); wick_free(K);
        return wick_fail(WICK_ENOMEM, "subleading kernel: out of memory");
    }
    wick_status st = wick_vertex2(c, G0, V);
    if (!st) st = wick_gram_flow(c, G0, 2, K, NULL);
    if (st) { wick_free(V); wick_free(K); return st; }
    double k1[4] = {0, 0, 0, 0};  /* over ordered pairs p = 2a + b */
    for (int l = 1; l <= L; l++) {
        memcpy(K1 + 4 * (size_t)(l - 1), k1, sizeof k1);
        if (l == L) break;
        const double *Kl = K + 4 * (size_t)(l - 1), *Vl = V + 16 * (size_t)(l - 1);
        double cw = cw_at(c, l + 1), r = l == 1 ? 1.0 : width_at(c, l) / width_at(c, l - 1);
        double nk[4];
        /* diagonal entries: functions of their own variance only */
        for (int a = 0; a < 2; a++) {
            int p = 3 * a;
            fmom m = {0};
            if ((st = finite_moments(c->act, Kl[p], &m))) goto out;
            nk[p] = r * cw * (m.g1 * k1[p] + 0.5 * m.g2 * Vl[p * 4 + p]);
        }
        /* the off-diagonal entry G(K00, K01, K11): gradient and Hessian by
         * central differences (steps 1e-3 of the scale: 1e-6 relative) */
        {
            double x[3] = {Kl[0], Kl[1], Kl[3]}, h = 1e-3 * sqrt(Kl[0] * Kl[3]);
            if (!(h > 0)) { st = wick_fail(WICK_EINVAL, "subleading kernel: a zero variance at "
                                           "layer %d", l); goto out; }
            double g0 = pair_g(c->act, x[0], x[1], x[2], &st), grad[3], hess[3][3];
            for (int i = 0; i < 3; i++) {
                double xp[3] = {x[0], x[1], x[2]}, xm[3] = {x[0], x[1], x[2]};
                xp[i] += h; xm[i] -= h;
                double gp = pair_g(c->act, xp[0], xp[1], xp[2], &st);
                double gm = pair_g(c->act, xm[0], xm[1], xm[2], &st);
                grad[i] = (gp - gm) / (2 * h);
                hess[i][i] = (gp - 2 * g0 + gm) / (h * h);
            }
            for (int i = 0; i < 3; i++)
                for (int j = i + 1; j < 3; j++) {
                    double v[4];
                    for (int s = 0; s < 4; s++) {
                        double y[3] = {x[0], x[1], x[2]};
                        y[i] += (s & 1 ? -h : h); y[j] += (s & 2 ? -h : h);
                        v[s] = pair_g(c->act, y[0], y[1], y[2], &st);
                    }
                    hess[i][j] = hess[j][i] = (v[0] - v[1] - v[2] + v[3]) / (4 * h * h);
                }
            if (st) goto out;
            /* ordered pair p -> variable (00 -> K00, 01 and 10 -> K01 at half
             * weight each, 11 -> K11) */
            static const int var[4] = {0, 1, 1, 2};
            static const double wt[4] = {1, 0.5, 0.5, 1};
            double lin = 0, quad = 0;
            for (int p = 0; p < 4; p++) {
                lin += wt[p] * grad[var[p]] * k1[p];
                for (int q = 0; q < 4; q++)
                    quad += wt[p] * wt[q] * hess[var[p]][var[q]] * Vl[p * 4 + q];
            }
            nk[1] = nk[2] = r * cw * (lin + 0.5 * quad);
        }
        memcpy(k1, nk, sizeof k1);
    }
out:
    wick_free(V); wick_free(K);
    return st;
}

/* ---------------------------------------------------------------------------
 * The NTK's variance B of two inputs
 * ------------------------------------------------------------------------- */

/* <sigma'(z0)^p sigma'(z1)^q> over [[k00, k01], [k01, k11]], p + q = 4 or
 * p = q = 1: the scale-invariant class by its quadrant probabilities
 * ((pi - theta)/(2 pi) for ++ and --, theta/(2 pi) for +- and -+), else
 * quadrature. */
static wick_status dpow_pair(wick_act act, int p, int q, double k00, double k01, double k11,
                             double *out) {
    double ap, am;
    if (th_scale_invariant(act, &ap, &am)) {
        double rho = k01 / sqrt(k00 * k11);
        if (rho > 1) rho = 1;
        if (rho < -1) rho = -1;
        double th = acos(rho), same = (M_PI - th) / (2 * M_PI), diff = th / (2 * M_PI);
        *out = (pow(ap, p + q) + pow(am, p + q)) * same +
               (pow(ap, p) * pow(am, q) + pow(am, p) * pow(ap, q)) * diff;
        return WICK_OK;
    }
    static const int basis[5] = {TB_ONE, TB_S1, TB_S1SQ, TB_S1CUBE, TB_S1QUART};
    if (q == 0) return th_expect1(act, k00, 1, &basis[p], out, NULL);
    if (p == 0) return th_expect1(act, k11, 1, &basis[q], out, NULL);
    th_pair pr = {basis[p], basis[q]};
    return th_expect2(act, k00, k01, k11, 1, &pr, out, NULL);
}

wick_status wick_ntk_B_two(const wick_theory_config *c, const double G0[4], double *B) {
    if (!c || !G0 || !B) return wick_fail(WICK_EINVAL, "NTK variance: no input or output");
    if (c->act.kind == WICK_ACT_PERCEPTRON)
        return wick_fail(WICK_EINVAL, "perceptron: the NTK's variance is undefined (its "
                         "derivative is a delta)");
    int L = c->depth;
    if (L < 1) return wick_fail(WICK_EINVAL, "NTK variance: depth %d", L);
    double *K = wick_malloc(sizeof(double) * 4 * (size_t)L);
    double *T = wick_malloc(sizeof(double) * 4 * (size_t)L);
    if (!K || !T) {
        wick_free(K); wick_free(T);
        return wick_fail(WICK_ENOMEM, "NTK variance: out of memory");
    }
    wick_status st = wick_gram_flow(c, G0, 2, K, T);
    if (st) { wick_free(K); wick_free(T); return st; }
    double b[16] = {0};
    for (int l = 1; l <= L; l++) {
        memcpy(B + 16 * (size_t)(l - 1), b, sizeof b);
        if (l == L) break;
        const double *Kl = K + 4 * (size_t)(l - 1), *Tl = T + 4 * (size_t)(l - 1);
        double cw = cw_at(c, l + 1), r = l == 1 ? 1.0 : width_at(c, l) / width_at(c, l - 1);
        /* <sigma'_a sigma'_b> and the four-way moments by the number of 0s */
        double s11[4], four[5];
        for (int a = 0; a < 2; a++)
            for (int bb = 0; bb < 2; bb++) {
                int p = (a == 0) + (bb == 0), q = 2 - p;
                if ((st = dpow_pair(c->act, p, q, Kl[0], Kl[1], Kl[3], &s11[2 * a + bb]))) goto out;
                if (a != bb) {   /* one of each */
                    if ((st = dpow_pair(c->act, 1, 1, Kl[0], Kl[1], Kl[3], &s11[2 * a + bb])))
                        goto out;
                }
            }
        for (int z0 = 0; z0 <= 4; z0++)
            if ((st = dpow_pair(c->act, z0, 4 - z0, Kl[0], Kl[1], Kl[3], &four[z0]))) goto out;
        double nb[16];
        for (int pi = 0; pi < 4; pi++)       /* (a1 a3) */
            for (int qi = 0; qi < 4; qi++) { /* (a2 a4) */
                int a1 = pi >> 1, a3 = pi & 1, a2 = qi >> 1, a4 = qi & 1;
                int zeros = (a1 == 0) + (a2 == 0) + (a3 == 0) + (a4 == 0);
                nb[pi * 4 + qi] = cw * cw * four[zeros] * Tl[2 * a1 + a2] * Tl[2 * a3 + a4] +
                                  r * cw * cw * s11[2 * a1 + a3] * s11[2 * a2 + a4] * b[pi * 4 + qi];
            }
        memcpy(b, nb, sizeof b);
    }
out:
    wick_free(K); wick_free(T);
    return st;
}
