/* ddntk.c — the means of the two ddNTKs of one input (the book's ch. 11,
 * §11.3), R, S, T, U, by their layer-to-layer recursion; derived in
 * docs/theory-finite-width.md ("The ddNTKs").  With G_i = lambda grad z_i
 * (lambda the learning-rate tensor) and v_ab = Hess(z_a) G_b,
 *   ddI_i0i1i2i3  = D^3 z_i0 [G_i1, G_i2, G_i3]
 *   ddII_i1i2i3i4 = < v_i1i3 , lambda v_i2i4 >
 * and, at order 1/n (one input, so every sample index is the same),
 *   E[ddI_i0i1i2i3]  = (d01 d23 + d02 d13 + d03 d12) R / n_{l-1}
 *   E[ddII_i1i2i3i4] = (d12 d34 S + d13 d24 T + d14 d23 U) / n_{l-1}.
 * All four vanish at l = 1 (z is linear in the first layer's parameters).
 *
 * The recursion needs B, F, P, Q of wick_theory_finite (its P, Q are those
 * of wick's dNTK, sum_mu lambda dz_i0 dH_i1i2/dtheta_mu); the book's form,
 * E[D^2 z_i0 [G_i1, G_i2] z_i3] = (d03 d12 Pb + (d01 d23 + d02 d13) Qb) / n,
 * has Qb = Q/2 and Pb = P - Q/2 (0 for the scale-invariant class).
 *
 * Kinks: a ReLU network is piecewise polynomial in its parameters, so its
 * ddNTKs exist almost surely and equal those of sigma'' = sigma''' = 0,
 * which is what we compute for the scale-invariant class (and what the
 * measurement sees).  Reading sigma'' as a delta would make <sigma''^2>
 * infinite; the terms where the delta meets sigma (zero at the kink)
 * vanish either way. */
#include "theory.h"
#include <math.h>
#include <string.h>

/* The Gaussian moments at variance K of ch. 11's ddNTK recursions. */
typedef struct {
    double h;    /* <s'^2> */
    double g1;   /* <s'^2 + s s''> = d<s^2>/dK */
    double h1;   /* <s''^2 + s' s'''> = d<s'^2>/dK */
    double ss2;  /* <s s''> */
    double x3;   /* <s s'^2 s''> */
    double sp;   /* <s^2 s'^2> */
    double p4;   /* <s'^4> */
    double e2;   /* <s''^2> */
    double e22;  /* <s'^2 s''^2> */
    double d31;  /* <s''' s'> */
    double m31;  /* <s''' s'^3> */
} ddmom;

/* The smooth activations' moments by the trapezoid rule in u = z / sqrt K
 * on [-14, 14] (exponentially accurate for an analytic integrand with a
 * Gaussian weight); s''' enters only through Stein's lemma,
 * <s''' f> = <z s'' f>/K - <s'' f'>, so act.c's sigma'' is enough. */
static void dd_quadrature(wick_act act, double K, ddmom *m) {
    const int N = 2800;
    const double U = 14.0, du = 2 * U / N, sk = sqrt(K);
    double h = 0, g1 = 0, ss2 = 0, x3 = 0, sp = 0, p4 = 0, e2 = 0, e22 = 0, z12 = 0, z32 = 0;
    for (int i = 0; i <= N; i++) {
        double u = -U + du * i, w = exp(-0.5 * u * u) * du * (i == 0 || i == N ? 0.5 : 1.0);
        double z = sk * u;
        double s = wick_act_eval(act, z), d = wick_act_deriv(act, z), e = wick_act_deriv2(act, z);
        h += w * d * d;
        g1 += w * (d * d + s * e);
        ss2 += w * s * e;
        x3 += w * s * d * d * e;
        sp += w * s * s * d * d;
        p4 += w * d * d * d * d;
        e2 += w * e * e;
        e22 += w * d * d * e * e;
        z12 += w * z * d * e;          /* <z s' s''> = K <(s' s'')'> */
        z32 += w * z * d * d * d * e;  /* <z s'^3 s''> = K <(s'^3 s'')'> */
    }
    double c = 1 / sqrt(2 * M_PI);
    m->h = c * h; m->g1 = c * g1; m->ss2 = c * ss2; m->x3 = c * x3; m->sp = c * sp;
    m->p4 = c * p4; m->e2 = c * e2; m->e22 = c * e22;
    m->h1 = c * z12 / K;
    m->d31 = m->h1 - m->e2;                /* <s''' s'> = <(s' s'')'> - <s''^2> */
    m->m31 = c * z32 / K - 3 * m->e22;     /* <s''' s'^3> = <(s'' s'^3)'> - 3 <s''^2 s'^2> */
}

static wick_status dd_moments(wick_act act, double K, ddmom *m) {
    memset(m, 0, sizeof *m);
    double ap, am;
    if (th_scale_invariant(act, &ap, &am)) {
        /* sigma'' = sigma''' = 0 almost everywhere (see the top) */
        double A2 = 0.5 * (ap * ap + am * am), A4 = 0.5 * (ap * ap * ap * ap + am * am * am * am);
        m->h = A2; m->g1 = A2; m->sp = A4 * K; m->p4 = A4;
        return WICK_OK;
    }
    if (act.kind == WICK_ACT_SIN) {
        /* s' = cos, s'' = -sin, s''' = -cos; <cos kz> = e^{-k^2 K/2} */
        double e2 = exp(-2 * K), e8 = exp(-8 * K);
        m->h = 0.5 * (1 + e2); m->g1 = e2; m->h1 = -e2;
        m->ss2 = 0.5 * expm1(-2 * K);             /* -<sin^2> */
        m->sp = -0.125 * expm1(-8 * K);           /* <sin^2 cos^2> */
        m->x3 = -m->sp; m->e22 = m->sp;
        m->p4 = (3 + 4 * e2 + e8) / 8;
        m->e2 = -m->ss2;                          /* <sin^2> */
        m->d31 = -m->h; m->m31 = -m->p4;
        return WICK_OK;
    }
    if (act.kind == WICK_ACT_PERCEPTRON)
        return wick_fail(WICK_EINVAL, "perceptron: the ddNTKs are undefined (its derivative is "
                         "a delta)");
    if (!(K > 0)) return wick_fail(WICK_EINVAL, "ddNTK: variance %g must be positive", K);
    dd_quadrature(act, K, m);
    return WICK_OK;
}

static double dd_cw(const wick_theory_config *c, int l) { return c->cw_l ? c->cw_l[l - 1] : c->cw; }
static double dd_lw(const wick_theory_config *c, int l) {
    return c->lambda_w_l ? c->lambda_w_l[l - 1] : c->lambda_w;
}
static double dd_width(const wick_theory_config *c, int l) {
    return (double)(c->width_l ? c->width_l[l] : c->width);
}

wick_status wick_theory_ddntk(const wick_theory_config *c, double q, wick_layer_ddntk *out) {
    if (!c || !out) return wick_fail(WICK_EINVAL, "ddNTK theory: no configuration or output");
    if (c->depth < 1)
        return wick_fail(WICK_EINVAL, "ddNTK theory: depth %d, expected at least 1", c->depth);
    wick_layer_finite *f = wick_malloc(sizeof *f * (size_t)c->depth);
    if (!f) return wick_fail(WICK_ENOMEM, "ddNTK theory: out of memory");
    wick_status st = wick_theory_finite(c, q, f);
    if (st) { wick_free(f); return st; }
    double R = 0, S = 0, T = 0, U = 0;
    for (int l = 1; l <= c->depth; l++) {
        out[l - 1] = (wick_layer_ddntk){R, S, T, U};
        if (l == c->depth) break;
        const wick_layer_finite *o = &f[l - 1];
        ddmom m;
        if ((st = dd_moments(c->act, o->K, &m))) break;
        double C = dd_cw(c, l + 1), lw = dd_lw(c, l + 1), Th = o->ntk;
        double r = l == 1 ? 1.0 : dd_width(c, l) / dd_width(c, l - 1);  /* n_l / n_{l-1} */
        double Qb = 0.5 * o->Q, Pb = o->P - 0.5 * o->Q;                 /* the book's P, Q */
        double carry = r * C * C * m.h * m.h;                           /* chi_perp^2 r */
        /* a(z) = lambda_W s s' + C_W Theta s' s'': the mean of a neuron's
         * own second-derivative term in v_ii (T) */
        double a2 = lw * lw * m.sp + 2 * lw * C * Th * m.x3 + C * C * Th * Th * m.e22;
        double a1 = lw * m.g1 + C * Th * m.h1;
        double nR = lw * C * (Th * Th * m.x3 + r * m.h * (m.ss2 * o->B + m.g1 * Pb)) +
                    C * C * (Th * Th * Th * m.m31 + r * Th * m.h * (m.d31 * o->B + m.h1 * Pb)) +
                    carry * R;
        double nS = lw * C * (Th * Th * m.p4 + r * m.h * m.h * o->B) +
                    C * C * (Th * Th * Th * m.e22 + r * Th * m.h * m.e2 * o->B) + carry * S;
        double nT = Th * a2 + r * a1 * a1 * o->F + 2 * r * C * m.h * a1 * Qb + carry * T;
        double nU = C * C * Th * Th * Th * m.e22 + carry * U;
        R = nR; S = nS; T = nT; U = nU;
    }
    wick_free(f);
    return st;
}
