/* finite.c — the order-1/n theory of one input beyond the four-point vertex:
 * the subleading kernel K^{1} (the book's ch. 4), the NTK's 1/n mean shift,
 * its variance (A, B) and its correlation with the preactivations (D, F)
 * (ch. 8), and the dNTK-preactivation correlators P, Q (ch. 11).  The
 * recursions and their derivation are written out in
 * docs/theory-finite-width.md.
 *
 * Every layer-l quantity is defined with 1/n_{l-1} pulled out:
 *   E[z_i z_j]                 = delta_ij (K + K1 / n_{l-1})
 *   E[H_ij]                    = delta_ij (Theta + Theta1 / n_{l-1})
 *   Cov(H_i1i2, H_i3i4)        = (d12 d34 A + (d13 d24 + d14 d23) B) / n_{l-1}
 *   E[dH_i1i2 z_i3 z_i4]       = (d12 d34 D + (d13 d24 + d14 d23) F) / n_{l-1}
 *   Cov(z_i z_i, z_j z_j)      = V / n_{l-1}  (i != j)
 *   E[dH_i0i1i2 z_i3]          = (d01 d23 P + d02 d13 P + d03 d12 Q) / n_{l-1}
 * and all vanish at l = 1, where z is Gaussian and H = Theta exactly. */
#include "theory.h"
#include <math.h>
#include <string.h>

/* The Gaussian moments at variance K that the recursions need: g = <s^2>,
 * h = <s'^2> and their first two K-derivatives, <s^4>, <s'^4>, <s^2 s'^2>,
 * and for the dNTK (ch. 11) ss2 = <s s''> and x3 = <s s'^2 s''>. */
typedef th_fmom fmom;

static wick_status finite_moments(wick_act act, double K, fmom *m) {
    double ap, am;
    if (th_scale_invariant(act, &ap, &am)) {
        /* sigma'^2 = a+^2 or a-^2 on each half line: every moment is a power of K */
        double A2 = 0.5 * (ap * ap + am * am), A4 = 0.5 * (ap * ap * ap * ap + am * am * am * am);
        m->g = A2 * K; m->g1 = A2; m->g2 = 0;
        m->h = A2; m->h1 = 0; m->h2 = 0;
        m->s4 = 3 * A4 * K * K; m->p4 = A4; m->sp = A4 * K;
        /* s'' is a delta at the kink, where s = 0: both vanish (by Stein,
         * <s s''> = <z s s'>/K - <s'^2> and 3<s s'^2 s''> = <z s s'^3>/K - <s'^4>) */
        m->ss2 = 0; m->x3 = 0;
        return WICK_OK;
    }
    if (act.kind == WICK_ACT_SIN) {
        /* from <cos(k z)>_K = e^{-k^2 K / 2} */
        double e2 = exp(-2 * K), e8 = exp(-8 * K);
        m->g = -0.5 * expm1(-2 * K); m->g1 = e2; m->g2 = -2 * e2;
        m->h = 0.5 * (1 + e2); m->h1 = -e2; m->h2 = 2 * e2;
        m->s4 = (3 - 4 * e2 + e8) / 8; m->p4 = (3 + 4 * e2 + e8) / 8;
        m->sp = -0.125 * expm1(-8 * K);   /* <sin^2 cos^2> = <sin^2 2z> / 4 */
        m->ss2 = -m->g; m->x3 = -m->sp;   /* s'' = -s */
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
    double x3 = 0;
    st = th_expect1(act, K, 1, (const int[]){TB_SS1SQS2}, &x3, NULL);
    if (st) return st;
    if (!(K > 0)) return wick_fail(WICK_EINVAL, "order-1/n tensors: variance %g must be positive", K);
    m->g = o[0];
    m->g1 = o[1] + o[2];
    m->g2 = (o[3] / K - m->g1) / (2 * K);
    m->h = o[1];
    m->h1 = (o[4] / K - o[1]) / (2 * K);
    m->h2 = (o[5] / (K * K) - 6 * o[4] / K + 3 * o[1]) / (4 * K * K);
    m->s4 = o[6]; m->p4 = o[7]; m->sp = o[8];
    m->ss2 = o[2]; m->x3 = x3;
    return WICK_OK;
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
    double K1 = 0, T1 = 0, A = 0, B = 0, D = 0, F = 0, P = 0, Q = 0;
    for (int l = 1; l <= c->depth; l++) {
        double K = lt[l - 1].K, Th = lt[l - 1].ntk, V = lt[l - 1].V;
        wick_layer_finite *o = &out[l - 1];
        o->K = K; o->V = V; o->ntk = Th;
        o->K1 = K1; o->ntk1 = T1; o->A = A; o->B = B; o->D = D; o->F = F;
        o->P = P; o->Q = Q;
        if (l == c->depth) break;
        fmom m = {0};
        if ((st = finite_moments(c->act, K, &m))) {
            wick_free(lt);
            return st;
        }
        double cw = th_cw_at(c, l + 1), lw = th_lw_at(c, l + 1);
        double r = l == 1 ? 1.0 : th_width_at(c, l) / th_width_at(c, l - 1);  /* n_l / n_{l-1} */
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
        /* the dNTK-preactivation correlators (ch. 11; docs/theory-finite-width.md):
         * the layer's own weights' term (lambda_W), the two-NTK term of s''
         * and the carried dNTK, each neuron pair's off-diagonal NTK (F, B) */
        double own = lw * cw * Th * m.sp, two = 2 * cw * cw * Th * Th * m.x3;
        double fF = lw * cw * m.g1 * m.g1 * F, hF = cw * cw * Th * m.g1 * m.h1 * F;
        double nP = own + two + r * (chp * chq * P + fF + hF + cw * cw * m.h * m.ss2 * B);
        double nQ = 2 * own + two + r * (chp * chq * Q + 2 * fF + 2 * hF);
        K1 = nK1; T1 = nT1; A = nA; B = nB; D = nD; F = nF; P = nP; Q = nQ;
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

/* The subleading kernel's off-diagonal step (the book's ch. 4) for the pair
 * (a, b) of kernel entries x = (K_aa, K_ab, K_bb): with G(x) = <sigma_a sigma_b>,
 * *out = sum_p grad G . k1 + 1/2 sum_pq Hess G . V over the pair's ordered
 * pairs op = (aa, ab, ba, bb) (indices into k1 and rows of V, stride ld);
 * gradient and Hessian by central differences of step h (1e-3 of the
 * scale: 1e-6 relative).  wick_kernel1_two and wick_kernel1_multi share it. */
wick_status th_kernel1_pair(wick_act act, double k00, double k01, double k11, double h,
                            const double *k1, const double *V, int ld, const int op[4], double *out) {
    wick_status st = WICK_OK;
    double x[3] = {k00, k01, k11};
    double g0 = pair_g(act, x[0], x[1], x[2], &st), grad[3], hess[3][3];
    for (int i = 0; i < 3; i++) {
        double xp[3] = {x[0], x[1], x[2]}, xm[3] = {x[0], x[1], x[2]};
        xp[i] += h; xm[i] -= h;
        double gp = pair_g(act, xp[0], xp[1], xp[2], &st);
        double gm = pair_g(act, xm[0], xm[1], xm[2], &st);
        grad[i] = (gp - gm) / (2 * h);
        hess[i][i] = (gp - 2 * g0 + gm) / (h * h);
    }
    for (int i = 0; i < 3; i++)
        for (int j = i + 1; j < 3; j++) {
            double v[4];
            for (int s = 0; s < 4; s++) {
                double y[3] = {x[0], x[1], x[2]};
                y[i] += (s & 1 ? -h : h); y[j] += (s & 2 ? -h : h);
                v[s] = pair_g(act, y[0], y[1], y[2], &st);
            }
            hess[i][j] = hess[j][i] = (v[0] - v[1] - v[2] + v[3]) / (4 * h * h);
        }
    if (st) return st;
    /* ordered pair p -> variable (aa -> K_aa, ab and ba -> K_ab at half
     * weight each, bb -> K_bb) */
    static const int var[4] = {0, 1, 1, 2};
    static const double wt[4] = {1, 0.5, 0.5, 1};
    double lin = 0, quad = 0;
    for (int p = 0; p < 4; p++) {
        lin += wt[p] * grad[var[p]] * k1[op[p]];
        for (int q = 0; q < 4; q++)
            quad += wt[p] * wt[q] * hess[var[p]][var[q]] * V[op[p] * ld + op[q]];
    }
    *out = lin + 0.5 * quad;
    return WICK_OK;
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
        double cw = th_cw_at(c, l + 1), r = l == 1 ? 1.0 : th_width_at(c, l) / th_width_at(c, l - 1);
        double nk[4];
        /* diagonal entries: functions of their own variance only */
        for (int a = 0; a < 2; a++) {
            int p = 3 * a;
            fmom m = {0};
            if ((st = finite_moments(c->act, Kl[p], &m))) goto out;
            nk[p] = r * cw * (m.g1 * k1[p] + 0.5 * m.g2 * Vl[p * 4 + p]);
        }
        /* the off-diagonal entry G(K00, K01, K11) */
        {
            double h = 1e-3 * sqrt(Kl[0] * Kl[3]), g;
            if (!(h > 0)) { st = wick_fail(WICK_EINVAL, "subleading kernel: a zero variance at "
                                           "layer %d", l); goto out; }
            static const int op[4] = {0, 1, 2, 3};
            if ((st = th_kernel1_pair(c->act, Kl[0], Kl[1], Kl[3], h, k1, Vl, 4, op, &g))) goto out;
            nk[1] = nk[2] = r * cw * g;
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
        double cw = th_cw_at(c, l + 1), r = l == 1 ? 1.0 : th_width_at(c, l) / th_width_at(c, l - 1);
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

/* ---------------------------------------------------------------------------
 * Two inputs: the NTK's variance A, its correlation with the preactivations
 * D and F, and its 1/n mean shift (the book's ch. 8, general sample indices;
 * docs/theory-finite-width.md writes out the recursions and their derivation)
 * ------------------------------------------------------------------------- */

/* A layer's Gaussian moments over the 2 x 2 kernel k (k[0], k[1], k[3]):
 * mixed products sigma_0^s0 sigma'_0^d0 sigma_1^s1 sigma'_1^d1 (cached, as
 * the recursions ask for the same ones many times). */
typedef struct {
    wick_act act;
    const double *k;
    double val[5][5][5][5];
    unsigned char have[5][5][5][5];
    wick_status st;
} mom2;

/* the basis function of th_expect1/2 for s^s s'^d (-1 where none) */
int th_sd_basis(int s, int d) {
    static const int t[5][5] = {
        {TB_ONE, TB_S1, TB_S1SQ, TB_S1CUBE, TB_S1QUART},
        {TB_S, TB_SS1, TB_SS1SQ, -1, -1},
        {TB_SQ, TB_SQS1, TB_SQS1SQ, -1, -1},
        {TB_CUBE, -1, -1, -1, -1},
        {TB_QUART, -1, -1, -1, -1}};
    return s < 5 && d < 5 ? t[s][d] : -1;
}

/* <B_b0(z_0) B_b1(z_1)>, one-dimensional where either factor is 1 */
static double e2b(mom2 *m, int b0, int b1) {
    double o = 0;
    wick_status s;
    if (b1 == TB_ONE) s = th_expect1(m->act, m->k[0], 1, &b0, &o, NULL);
    else if (b0 == TB_ONE) s = th_expect1(m->act, m->k[3], 1, &b1, &o, NULL);
    else s = th_expect2(m->act, m->k[0], m->k[1], m->k[3], 1, &(th_pair){b0, b1}, &o, NULL);
    if (s && !m->st) m->st = s;
    return o;
}

static double mom(mom2 *m, int s0, int d0, int s1, int d1) {
    if (m->have[s0][d0][s1][d1]) return m->val[s0][d0][s1][d1];
    int b0 = th_sd_basis(s0, d0), b1 = th_sd_basis(s1, d1);
    double v = 0;
    if (b0 < 0 || b1 < 0) {
        if (!m->st) m->st = wick_fail(WICK_EUNSUPPORTED, "two-input NTK tensors: moment %d %d %d %d "
                                      "has no basis", s0, d0, s1, d1);
    } else {
        v = e2b(m, b0, b1);
    }
    m->have[s0][d0][s1][d1] = 1;
    return m->val[s0][d0][s1][d1] = v;
}

/* <prod_t f_t(z_{al[t]})> with f_t = sigma' where isd[t], else sigma */
static double mom4(mom2 *m, int nf, const int *al, const int *isd) {
    int e[2][2] = {{0, 0}, {0, 0}};
    for (int t = 0; t < nf; t++) e[al[t]][isd[t]]++;
    return mom(m, e[0][0], e[0][1], e[1][0], e[1][1]);
}

/* <u(z_a) u(z_b)> for u = sigma (kind 0) or sigma' (kind 1) over the ordered
 * pairs p = 2a + b: its value, gradient and Hessian in the ordered-pair
 * variables (a derivative by 01 or 10 is half the derivative by the
 * symmetric entry K01).  Diagonal pairs from finite_moments (closed forms
 * or quadrature), the off-diagonal one by central differences of
 * th_pair_ss (steps 1e-3 of the scale, about 1e-6 relative). */
typedef th_pderiv pderiv;

static wick_status pair_derivs(wick_act act, const double *k, pderiv *P) {
    memset(P, 0, sizeof *P);
    for (int a = 0; a < 2; a++) {
        fmom m = {0};
        wick_status st = finite_moments(act, k[3 * a], &m);
        if (st) return st;
        int p = 3 * a;
        P->v[0][p] = m.g; P->g[0][p][p] = m.g1; P->h[0][p][p][p] = m.g2;
        P->v[1][p] = m.h; P->g[1][p][p] = m.h1; P->h[1][p][p][p] = m.h2;
    }
    double x[3] = {k[0], k[1], k[3]}, h = 1e-3 * sqrt(k[0] * k[3]);
    if (!(h > 0)) return wick_fail(WICK_EINVAL, "two-input NTK tensors: a zero variance");
    wick_status st = WICK_OK;
    double f0[2], grad[2][3], hess[2][3][3];
#define PSS(y, o) do { wick_status s_ = th_pair_ss(act, (y)[0], (y)[1], (y)[2], &(o)[0], &(o)[1]); \
                       if (s_ && !st) st = s_; } while (0)
    PSS(x, f0);
    for (int i = 0; i < 3; i++) {
        double xp[3] = {x[0], x[1], x[2]}, xm[3] = {x[0], x[1], x[2]}, fp[2], fm[2];
        xp[i] += h; xm[i] -= h;
        PSS(xp, fp); PSS(xm, fm);
        for (int u = 0; u < 2; u++) {
            grad[u][i] = (fp[u] - fm[u]) / (2 * h);
            hess[u][i][i] = (fp[u] - 2 * f0[u] + fm[u]) / (h * h);
        }
    }
    for (int i = 0; i < 3; i++)
        for (int j = i + 1; j < 3; j++) {
            double v[4][2];
            for (int s = 0; s < 4; s++) {
                double y[3] = {x[0], x[1], x[2]};
                y[i] += (s & 1 ? -h : h); y[j] += (s & 2 ? -h : h);
                PSS(y, v[s]);
            }
            for (int u = 0; u < 2; u++)
                hess[u][i][j] = hess[u][j][i] = (v[0][u] - v[1][u] - v[2][u] + v[3][u]) / (4 * h * h);
        }
#undef PSS
    if (st) return st;
    static const int var[4] = {0, 1, 1, 2};
    static const double wt[4] = {1, 0.5, 0.5, 1};
    for (int u = 0; u < 2; u++)
        for (int pp = 1; pp <= 2; pp++) {
            P->v[u][pp] = f0[u];
            for (int p = 0; p < 4; p++) {
                P->g[u][pp][p] = wt[p] * grad[u][var[p]];
                for (int q = 0; q < 4; q++) P->h[u][pp][p][q] = wt[p] * wt[q] * hess[u][var[p]][var[q]];
            }
        }
    return WICK_OK;
}

wick_status wick_ntk_fluct_two(const wick_theory_config *c, const double G0[4], double *T1,
                               double *A, double *D, double *F) {
    if (!c || !G0 || !T1 || !A || !D || !F)
        return wick_fail(WICK_EINVAL, "two-input NTK tensors: no input or output");
    if (c->act.kind == WICK_ACT_PERCEPTRON)
        return wick_fail(WICK_EINVAL, "perceptron: the NTK's order-1/n tensors are undefined (its "
                         "derivative is a delta)");
    int L = c->depth;
    if (L < 1) return wick_fail(WICK_EINVAL, "two-input NTK tensors: depth %d", L);
    double *V = wick_malloc(sizeof(double) * 16 * (size_t)L);
    double *K = wick_malloc(sizeof(double) * 4 * (size_t)L);
    double *Th = wick_malloc(sizeof(double) * 4 * (size_t)L);
    double *K1 = wick_malloc(sizeof(double) * 4 * (size_t)L);
    mom2 *m = wick_malloc(sizeof *m);
    pderiv *P = wick_malloc(sizeof *P);
    wick_status st = WICK_OK;
    if (!V || !K || !Th || !K1 || !m || !P) {
        st = wick_fail(WICK_ENOMEM, "two-input NTK tensors: out of memory");
        goto out;
    }
    if ((st = wick_vertex2(c, G0, V)) || (st = wick_gram_flow(c, G0, 2, K, Th)) ||
        (st = wick_kernel1_two(c, G0, K1)))
        goto out;
    double t1[4] = {0}, a[16] = {0}, d[16] = {0}, f[16] = {0};
    for (int l = 1; l <= L; l++) {
        memcpy(T1 + 4 * (size_t)(l - 1), t1, sizeof t1);
        memcpy(A + 16 * (size_t)(l - 1), a, sizeof a);
        memcpy(D + 16 * (size_t)(l - 1), d, sizeof d);
        memcpy(F + 16 * (size_t)(l - 1), f, sizeof f);
        if (l == L) break;
        const double *Kl = K + 4 * (size_t)(l - 1), *Tl = Th + 4 * (size_t)(l - 1);
        const double *Vl = V + 16 * (size_t)(l - 1), *k1 = K1 + 4 * (size_t)(l - 1);
        double cw = th_cw_at(c, l + 1), lw = th_lw_at(c, l + 1);
        double r = l == 1 ? 1.0 : th_width_at(c, l) / th_width_at(c, l - 1);
        memset(m, 0, sizeof *m);
        m->act = c->act; m->k = Kl;
        if ((st = pair_derivs(c->act, Kl, P))) goto out;
        /* a_{pq} = lambda_W s_p s_q + C_W Theta_pq s'_p s'_q: its mean's
         * gradient da[pq][.] in the ordered-pair variables */
        double da[4][4];
        for (int p = 0; p < 4; p++)
            for (int u = 0; u < 4; u++) da[p][u] = lw * P->g[0][p][u] + cw * Tl[p] * P->g[1][p][u];
        /* <d_beta (sigma'_a1 sigma_a3)> by Stein's lemma, K^{-1} <z_beta f>
         * (no sigma'' needed, so kinks are fine) */
        double det = Kl[0] * Kl[3] - Kl[1] * Kl[1];
        if (!(det > 0)) {
            st = wick_fail(WICK_EINVAL, "two-input NTK tensors: the kernel of layer %d is singular "
                           "(the inputs are parallel)", l);
            goto out;
        }
        double Ki[2][2] = {{Kl[3] / det, -Kl[1] / det}, {-Kl[1] / det, Kl[0] / det}};
        double e[2][2][2];   /* e[a1][a3][beta] */
        for (int a1 = 0; a1 < 2; a1++)
            for (int a3 = 0; a3 < 2; a3++) {
                double zf[2];  /* <z_gamma sigma'_a1 sigma_a3> */
                for (int g = 0; g < 2; g++) {
                    if (a1 == a3) {
                        double o = 0;
                        int bzs = TB_ZSS1;
                        wick_status s = th_expect1(c->act, Kl[3 * a1], 1, &bzs, &o, NULL);
                        if (s) { st = s; goto out; }
                        zf[g] = o * Kl[2 * g + a1] / Kl[3 * a1];  /* E[z_g | z_a] = K_ga/K_aa z_a */
                    } else {
                        int b[2];
                        b[a1] = g == a1 ? TB_ZS1 : TB_S1;
                        b[a3] = g == a3 ? TB_ZS : TB_S;
                        zf[g] = e2b(m, b[0], b[1]);
                    }
                }
                for (int bt = 0; bt < 2; bt++) e[a1][a3][bt] = Ki[bt][0] * zf[0] + Ki[bt][1] * zf[1];
            }
        double nt1[4], na[16], nd[16], nf[16];
        for (int p = 0; p < 4; p++) {
            int a1 = p >> 1, a2 = p & 1;
            /* E[s'_a1 s'_a2 dH_{jj;a1a2}] = sum_u d_u<s's'> (D_{p,u} + 2 F_{(a1 b)(a2 c)}), u = 2b + c */
            double lin_s = 0, lin_d = 0, quad_s = 0, quad_d = 0, corr = 0;
            for (int u = 0; u < 4; u++) {
                lin_s += P->g[0][p][u] * k1[u];
                lin_d += P->g[1][p][u] * k1[u];
                for (int v = 0; v < 4; v++) {
                    quad_s += P->h[0][p][u][v] * Vl[u * 4 + v];
                    quad_d += P->h[1][p][u][v] * Vl[u * 4 + v];
                }
                int bt = u >> 1, gm = u & 1;
                corr += P->g[1][p][u] * (d[p * 4 + u] + 2 * f[(2 * a1 + bt) * 4 + 2 * a2 + gm]);
            }
            nt1[p] = r * (lw * (lin_s + 0.5 * quad_s) +
                          cw * (Tl[p] * (lin_d + 0.5 * quad_d) + P->v[1][p] * t1[p] + corr));
        }
        for (int p = 0; p < 4; p++)
            for (int q = 0; q < 4; q++) {
                int al[4] = {p >> 1, p & 1, q >> 1, q & 1};
                /* one neuron: Cov(a_p, a_q) and C_W Cov(a_p, s_q s_q) */
                double ssss = mom4(m, 4, al, (const int[]){0, 0, 0, 0});
                double ddss = mom4(m, 4, al, (const int[]){1, 1, 0, 0});
                double ssdd = mom4(m, 4, al, (const int[]){0, 0, 1, 1});
                double dddd = mom4(m, 4, al, (const int[]){1, 1, 1, 1});
                double mp = lw * P->v[0][p] + cw * Tl[p] * P->v[1][p];
                double mq = lw * P->v[0][q] + cw * Tl[q] * P->v[1][q];
                double aa = lw * lw * ssss + lw * cw * (Tl[q] * ssdd + Tl[p] * ddss) +
                            cw * cw * Tl[p] * Tl[q] * dddd - mp * mq;
                double as = cw * (lw * ssss + cw * Tl[p] * ddss - mp * P->v[0][q]);
                /* across neurons, through layer l's V, D and A */
                double vv = 0, vs = 0, dq = 0, dp = 0, dsq = 0;
                for (int u = 0; u < 4; u++) {
                    for (int v = 0; v < 4; v++) {
                        vv += da[p][u] * da[q][v] * Vl[u * 4 + v];
                        vs += da[p][u] * P->g[0][q][v] * Vl[u * 4 + v];
                    }
                    dq += da[p][u] * d[q * 4 + u];
                    dp += da[q][u] * d[p * 4 + u];
                    dsq += P->g[0][q][u] * d[p * 4 + u];
                }
                double hp = cw * P->v[1][p], hq = cw * P->v[1][q];
                na[p * 4 + q] = aa + r * (vv + hq * dq + hp * dp + hp * hq * a[p * 4 + q]);
                nd[p * 4 + q] = as + r * cw * (vs + hp * dsq);
                /* F_{(a1 a3)(a2 a4)}: index (2 a1 + a3) * 4 + 2 a2 + a4 */
                int a1 = p >> 1, a3 = p & 1, a2 = q >> 1, a4 = q & 1;
                int alf[4] = {a1, a2, a3, a4};
                double one = cw * cw * Tl[2 * a1 + a2] * mom4(m, 4, alf, (const int[]){1, 1, 0, 0});
                double two = 0;
                for (int bt = 0; bt < 2; bt++)
                    for (int gm = 0; gm < 2; gm++)
                        two += f[(2 * a1 + bt) * 4 + 2 * a2 + gm] * e[a1][a3][bt] * e[a2][a4][gm];
                nf[p * 4 + q] = one + r * cw * cw * two;
            }
        if (m->st) { st = m->st; goto out; }
        memcpy(t1, nt1, sizeof t1); memcpy(a, na, sizeof a);
        memcpy(d, nd, sizeof d); memcpy(f, nf, sizeof f);
    }
out:
    wick_free(V); wick_free(K); wick_free(Th); wick_free(K1); wick_free(m); wick_free(P);
    return st;
}

/* For the m-input tensors (multi.c): the same moments, not a second copy. */
wick_status th_finite_moments(wick_act act, double K, th_fmom *m) { return finite_moments(act, K, m); }
wick_status th_pair_derivs(wick_act act, const double *k, th_pderiv *P) { return pair_derivs(act, k, P); }
wick_status th_dpow_pair(wick_act act, int p, int q, double k00, double k01, double k11, double *out) {
    return dpow_pair(act, p, q, k00, k01, k11, out);
}
