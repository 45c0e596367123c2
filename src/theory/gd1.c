/* gd1.c — the mean output of a finite-width network after one step of
 * full-batch MSE gradient descent, to order 1/n (the book's ch. 11 and its
 * chapter on the fully trained network; docs/theory-finite-width.md, "One
 * step of gradient descent at order 1/n").  Built from the single-input
 * tensors of wick_theory_finite (Theta, Theta1, A, B, P, Q) and the ddNTK
 * means of wick_theory_ddntk (R, S + T + U), or the caller's. */
#include "theory.h"
#include <math.h>
#include <string.h>

wick_status wick_gd_mean1(const wick_theory_config *c, double q, size_t nout, const double *y,
                          double eta, double R, wick_gd1_terms *out) {
    if (!c || !y || !out || nout == 0)
        return wick_fail(WICK_EINVAL, "one-step GD mean: needs a configuration, targets and an "
                         "output (nout = %zu)", nout);
    if (!isfinite(eta))
        return wick_fail(WICK_EINVAL, "one-step GD mean: eta = %g must be finite", eta);
    if (c->depth < 1 || c->depth > 4096)
        return wick_fail(WICK_EINVAL, "one-step GD mean: depth %d, expected 1..4096", c->depth);
    double y2 = 0;
    for (size_t i = 0; i < nout; i++) {
        if (!isfinite(y[i]))
            return wick_fail(WICK_EINVAL, "one-step GD mean: target %zu = %g is not finite", i, y[i]);
        y2 += y[i] * y[i];
    }
    wick_layer_finite *o = wick_malloc(sizeof *o * (size_t)c->depth);
    if (!o) return wick_fail(WICK_ENOMEM, "one-step GD mean: out of memory");
    wick_status st = wick_theory_finite(c, q, o);
    if (!st && isnan(R)) {
        /* the ddNTK mean of the theory engine (ch. 11) */
        wick_layer_ddntk *d = wick_malloc(sizeof *d * (size_t)c->depth);
        if (!d) st = wick_fail(WICK_ENOMEM, "one-step GD mean: out of memory");
        else if (!(st = wick_theory_ddntk(c, q, d))) R = d[c->depth - 1].R;
        wick_free(d);
    }
    if (!st) {
        const wick_layer_finite *f = &o[c->depth - 1];
        double nl = (double)nout;
        out->K = f->K; out->ntk = f->ntk; out->ntk1 = f->ntk1;
        out->P = f->P; out->Q = f->Q; out->R = R;
        out->lin = eta * f->ntk;
        out->a1 = eta * f->ntk1;
        /* -(eta^2/2) E[X_{i;jk} eps_j eps_k] with eps = z - y: only the two
         * cross terms z y survive the sign flip of the last layer, and
         * sum_j E[X_{i;jk} z_j] = delta_ik (P + nout Q/2) / n in wick's P, Q */
        out->a2 = -eta * eta * (f->P + nl * f->Q / 2);
        /* -(eta^3/6) E[Y_{i;jkl} eps eps eps]: the z z y terms (3 of them,
         * E[Y z z] = E[Y] K at this order) and the y y y term, with
         * E[Y_{i;jkl}] = R (d_ij d_kl + d_ik d_jl + d_il d_jk) / n */
        out->a3 = eta * eta * eta * R * (f->K * (nl + 2) + y2) / 2;
    }
    wick_free(o);
    return st;
}

/* t steps, one output.  Every network's step is the cubic Taylor map
 *   z' = z - eta H e + (eta^2/2) X e^2 - (eta^3/6) Y e^3,     e = z - y,
 *   H' = H - 2 eta e X + eta^2 e^2 (Y + Z),
 *   X' = X - eta e (Y + 2 Z),
 * with H = Theta + d (d of order 1/sqrt(n)), X the dNTK's contraction
 * sum lambda^2 d2z dz dz (order 1/n, correlated with z), Y = ddI and Z =
 * ddII (order 1/n, their means enough), Y and Z constant (their motion is
 * order 1/n^2).  Each quantity is carried as polynomials in z(0) beside the
 * monomials 1, d, d^2, X, Y, Z (products of two small ones dropped, d^2
 * kept), and the mean taken with z(0) ~ N(0, K):
 *   E[d] = Theta1/n, E[d^2] = (A + 2 B)/n, E[X g(z)] = p E[z g(z)]/(n K)
 *   with p = P + Q/2 (X is linear in z at this order: E[X z^3] = 3 K p/n),
 *   E[Y] = 3 R/n, E[Z] = (S + T + U)/n. */
enum { M1 = 0, MD, MDD, MX, MY, MZ, NM };
#define PDEG 12
typedef struct { double c[NM][PDEG + 1]; } gq;

static void gq_axpy(gq *r, double a, const gq *x) {
    for (int m = 0; m < NM; m++)
        for (int k = 0; k <= PDEG; k++) r->c[m][k] += a * x->c[m][k];
}

/* r = a * b with the truncation; returns 0 when a degree overflows */
static int gq_mul(gq *r, const gq *a, const gq *b) {
    static const int prod[NM][NM] = {
        /*        1    d    dd   X   Y   Z */
        /* 1 */ {M1, MD, MDD, MX, MY, MZ},
        /* d */ {MD, MDD, -1, -1, -1, -1},
        /* dd*/ {MDD, -1, -1, -1, -1, -1},
        /* X */ {MX, -1, -1, -1, -1, -1},
        /* Y */ {MY, -1, -1, -1, -1, -1},
        /* Z */ {MZ, -1, -1, -1, -1, -1}};
    gq t = {0};
    for (int i = 0; i < NM; i++)
        for (int j = 0; j < NM; j++) {
            int m = prod[i][j];
            if (m < 0) continue;
            for (int p = 0; p <= PDEG; p++) {
                if (a->c[i][p] == 0) continue;
                for (int q = 0; q <= PDEG; q++) {
                    if (b->c[j][q] == 0) continue;
                    if (p + q > PDEG) return 0;
                    t.c[m][p + q] += a->c[i][p] * b->c[j][q];
                }
            }
        }
    *r = t;
    return 1;
}

/* z(t) in the algebra: the map above iterated t times from z(0) = z,
 * H(0) = Theta + d.  Returns 0 when a degree overflows. */
static int gd_iterate(double Th, double y, double eta, long t, gq *zout) {
    gq z = {0}, H = {0}, X = {0}, Y = {0}, Z = {0}, e, tmp, tmp2, e2, yz;
    z.c[M1][1] = 1;
    H.c[M1][0] = Th; H.c[MD][0] = 1;
    X.c[MX][0] = 1; Y.c[MY][0] = 1; Z.c[MZ][0] = 1;
    yz = Y; gq_axpy(&yz, 1, &Z);                       /* Y + Z */
    gq y2z = Y; gq_axpy(&y2z, 2, &Z);                  /* Y + 2 Z */
    int ok = 1;
    for (long s = 0; s < t && ok; s++) {
        e = z; e.c[M1][0] -= y;
        ok &= gq_mul(&e2, &e, &e);
        gq zn = z, Hn = H, Xn = X;
        ok &= gq_mul(&tmp, &H, &e);   gq_axpy(&zn, -eta, &tmp);
        ok &= gq_mul(&tmp, &X, &e2);  gq_axpy(&zn, eta * eta / 2, &tmp);
        ok &= gq_mul(&tmp2, &e2, &e); ok &= gq_mul(&tmp, &Y, &tmp2);
        gq_axpy(&zn, -eta * eta * eta / 6, &tmp);
        ok &= gq_mul(&tmp, &e, &X);   gq_axpy(&Hn, -2 * eta, &tmp);
        ok &= gq_mul(&tmp, &e2, &yz); gq_axpy(&Hn, eta * eta, &tmp);
        ok &= gq_mul(&tmp, &e, &y2z); gq_axpy(&Xn, -eta, &tmp);
        z = zn; H = Hn; X = Xn;
    }
    *zout = z;
    return ok;
}

wick_status wick_gd_mean_t(const wick_theory_config *c, double q, double y, double eta, long t,
                           double R, double STU, wick_gdt_terms *out) {
    if (!c || !out) return wick_fail(WICK_EINVAL, "t-step GD mean: no configuration or output");
    if (!isfinite(eta) || !isfinite(y) || t < 0 || t > 100000000)
        return wick_fail(WICK_EINVAL, "t-step GD mean: eta = %g and y = %g must be finite and "
                         "t = %ld in 0..1e8", eta, y, t);
    if (c->depth < 1 || c->depth > 4096)
        return wick_fail(WICK_EINVAL, "t-step GD mean: depth %d, expected 1..4096", c->depth);
    wick_layer_finite *o = wick_malloc(sizeof *o * (size_t)c->depth);
    if (!o) return wick_fail(WICK_ENOMEM, "t-step GD mean: out of memory");
    wick_status st = wick_theory_finite(c, q, o);
    if (st) { wick_free(o); return st; }
    const wick_layer_finite f = o[c->depth - 1];
    wick_free(o);
    if (isnan(R) || isnan(STU)) {
        /* the ddNTK means of the theory engine (ch. 11) */
        wick_layer_ddntk *d = wick_malloc(sizeof *d * (size_t)c->depth);
        if (!d) return wick_fail(WICK_ENOMEM, "t-step GD mean: out of memory");
        st = wick_theory_ddntk(c, q, d);
        if (!st && isnan(R)) R = d[c->depth - 1].R;
        if (!st && isnan(STU)) STU = d[c->depth - 1].S + d[c->depth - 1].T + d[c->depth - 1].U;
        wick_free(d);
        if (st) return st;
    }
    double Th = f.ntk, K = f.K;
    if (!(fabs(1 - eta * Th) < 1))
        return wick_fail(WICK_EINVAL, "t-step GD mean: eta = %g is outside (0, 2/Theta) = (0, %g): "
                         "gradient descent would not converge", eta, 2 / Th);
    gq z;
    int ok = gd_iterate(Th, y, eta, t, &z);
    if (!ok) return wick_fail(WICK_ENUMERIC, "t-step GD mean: polynomial degree overflow");
    double E[NM] = {0}, EzX = 0;
    for (int m = 0; m < NM; m++)
        for (int k = 0; k <= PDEG; k++) E[m] += z.c[m][k] * th_gauss_moment(k, K);
    for (int k = 0; k <= PDEG; k++) EzX += z.c[MX][k] * th_gauss_moment(k + 1, K);
    out->K = K; out->ntk = Th; out->ntk1 = f.ntk1; out->A = f.A; out->B = f.B;
    out->P = f.P; out->Q = f.Q; out->R = R; out->STU = STU;
    out->lin = E[M1];
    out->a_ntk1 = f.ntk1 * E[MD];
    out->a_var = (f.A + 2 * f.B) * E[MDD];
    out->a_dntk = (f.P + f.Q / 2) * EzX / K;
    out->a_ddI = 3 * R * E[MY];
    out->a_ddII = STU * E[MZ];
    return WICK_OK;
}

/* The last layer's tensors for the t-step functions: wick_theory_finite's,
 * and R, S + T + U from wick_theory_ddntk where the caller gave NAN. */
static wick_status gd_tensors(const wick_theory_config *c, double q, double *R, double *STU,
                              wick_layer_finite *f, const char *what) {
    if (c->depth < 1 || c->depth > 4096)
        return wick_fail(WICK_EINVAL, "%s: depth %d, expected 1..4096", what, c->depth);
    wick_layer_finite *o = wick_malloc(sizeof *o * (size_t)c->depth);
    if (!o) return wick_fail(WICK_ENOMEM, "%s: out of memory", what);
    wick_status st = wick_theory_finite(c, q, o);
    if (!st) *f = o[c->depth - 1];
    wick_free(o);
    if (st || !(isnan(*R) || isnan(*STU))) return st;
    wick_layer_ddntk *d = wick_malloc(sizeof *d * (size_t)c->depth);
    if (!d) return wick_fail(WICK_ENOMEM, "%s: out of memory", what);
    st = wick_theory_ddntk(c, q, d);
    if (!st && isnan(*R)) *R = d[c->depth - 1].R;
    if (!st && isnan(*STU)) *STU = d[c->depth - 1].S + d[c->depth - 1].T + d[c->depth - 1].U;
    wick_free(d);
    return st;
}

/* t steps, several outputs, by first-order perturbation about the frozen
 * trajectory eps0(s) = a^s eps (a = 1 - eta Theta; the infinite-width NTK
 * is Theta delta_ij for one input, so every output relaxes alike).  Every
 * order-1/n correction beyond the frozen NTK is then a scalar function of
 * (eta, a, s) times one of six contractions of a small tensor with eps:
 *   alpha_i = X_{i;jk} e_j e_k,  beta_i = X_{j;ik} e_j e_k,
 *   gamma_i = Y_{i;jkl} e e e,   delta_i = Y_{j;ikl} e e e,
 *   zeta1_i = Z_{ij;kl} e e e,   zeta2_i = Z_{jk;il} e e e,
 * (X = dNTK, Y = ddI, Z = ddII with Z_{ij;kl} = <v_ik, lambda v_jl>), and
 * the map's pieces are, with x(s) = -eta sum_{r<s} a^r,
 *   X(s)_{i;jk} e e                 = alpha + x(s) (gamma + 2 zeta1),
 *   (X(r)_{i;jk} + X(r)_{j;ik}) e e = alpha + beta + x(r) (gamma + delta + 3 zeta1 + zeta2),
 *   dH(s)_ij e_j = sum_{r<s} { -eta a^r [that] + (eta^2/2) a^{2r} (gamma + delta + 2 zeta1) },
 *   corr(s+1) = a corr(s) - eta a^s dH(s) e + (eta^2/2) a^{2s} X(s) e e - (eta^3/6) a^{3s} gamma.
 * The frozen NTK's own part is the binomial expansion of (a - eta d)^t to
 * d^2.  coef[6] receives the coefficients of the six contractions. */
enum { SH_A = 0, SH_B, SH_G, SH_D, SH_Z1, SH_Z2, SH_N };

static void gd_shapes(double eta, double a, long t, double coef[SH_N]) {
    double corr[SH_N] = {0}, h[SH_N] = {0}, x = 0, as = 1;   /* as = a^s */
    for (long s = 0; s < t; s++) {
        double nc[SH_N];
        for (int k = 0; k < SH_N; k++) nc[k] = a * corr[k] - eta * as * h[k];
        double e2 = eta * eta / 2 * as * as;
        nc[SH_A] += e2;
        nc[SH_G] += e2 * x - eta * eta * eta / 6 * as * as * as;
        nc[SH_Z1] += e2 * 2 * x;
        /* dH gains step s's change (r = s in the sum above) */
        h[SH_A] += -eta * as;
        h[SH_B] += -eta * as;
        h[SH_G] += -eta * as * x + e2;
        h[SH_D] += -eta * as * x + e2;
        h[SH_Z1] += -eta * as * 3 * x + 2 * e2;
        h[SH_Z2] += -eta * as * x;
        x -= eta * as;
        as *= a;
        memcpy(corr, nc, sizeof corr);
    }
    memcpy(coef, corr, sizeof corr);
}

wick_status wick_gd_mean_tn(const wick_theory_config *c, double q, size_t nout, const double *y,
                            double eta, long t, double R, double STU, wick_gdt_terms *out) {
    if (!c || !y || !out || nout == 0)
        return wick_fail(WICK_EINVAL, "t-step GD mean: needs a configuration, targets and an "
                         "output (nout = %zu)", nout);
    if (!isfinite(eta) || t < 0 || t > 100000000)
        return wick_fail(WICK_EINVAL, "t-step GD mean: eta = %g must be finite and t = %ld in "
                         "0..1e8", eta, t);
    double y2 = 0;
    for (size_t i = 0; i < nout; i++) {
        if (!isfinite(y[i]))
            return wick_fail(WICK_EINVAL, "t-step GD mean: target %zu = %g is not finite", i, y[i]);
        y2 += y[i] * y[i];
    }
    wick_layer_finite f;
    wick_status st = gd_tensors(c, q, &R, &STU, &f, "t-step GD mean");
    if (st) return st;
    double Th = f.ntk, K = f.K, nl = (double)nout, a = 1 - eta * Th;
    if (!(fabs(a) < 1))
        return wick_fail(WICK_EINVAL, "t-step GD mean: eta = %g is outside (0, 2/Theta) = (0, %g): "
                         "gradient descent would not converge", eta, 2 / Th);
    double cf[SH_N], W = K * (nl + 2) + y2, td = (double)t;
    gd_shapes(eta, a, t, cf);
    out->K = K; out->ntk = Th; out->ntk1 = f.ntk1; out->A = f.A; out->B = f.B;
    out->P = f.P; out->Q = f.Q; out->R = R; out->STU = STU;
    out->lin = 1 - pow(a, td);
    out->a_ntk1 = t >= 1 ? eta * td * pow(a, td - 1) * f.ntk1 : 0;
    /* E[(d^2)_ik] = delta_ik (A + (nout + 1) B) / n */
    out->a_var = t >= 2 ? -eta * eta * td * (td - 1) / 2 * pow(a, td - 2) * (f.A + (nl + 1) * f.B) : 0;
    /* the means of the six contractions per unit target (times 1/n):
     * E[alpha_i] = -2 (P + nout Q/2) y_i, E[beta_i] = -((nout + 1) P + Q) y_i,
     * E[gamma] = E[delta] = -3 R W y_i, E[zeta1] = E[zeta2] = -(S + T + U) W y_i,
     * W = K (nout + 2) + |y|^2 (the docs' section) */
    out->a_dntk = -2 * (f.P + nl * f.Q / 2) * cf[SH_A] - ((nl + 1) * f.P + f.Q) * cf[SH_B];
    out->a_ddI = -3 * R * W * (cf[SH_G] + cf[SH_D]);
    out->a_ddII = -STU * W * (cf[SH_Z1] + cf[SH_Z2]);
    return WICK_OK;
}

/* (k-1)!! K^{k/2} and its companions for the variance: d/dK of it (the
 * kernel's shift K1), and E[He4(z/sqrt K) z^k] / (8 K^2) (z(0)'s
 * non-Gaussianity: E[f(z)] gains V/n times it, E[z^4] - 3K^2 = 3V/n). */
static double gmom_dK(int k, double K) {
    return k % 2 || k == 0 ? 0 : (double)k / 2 * th_gauss_moment(k, K) / K;
}
static double gmom_V(int k, double K) {
    if (k % 2) return 0;
    double u = th_gauss_moment(k + 4, 1) - 6 * th_gauss_moment(k + 2, 1) + 3 * th_gauss_moment(k, 1);
    return u * pow(K, (double)k / 2 - 2) / 8;
}

/* Var z(t), one output: the algebra's z(t) squared (its truncation drops
 * the same products), and the expectation extended by what a second moment
 * sees: z(0) ~ N(0, K + K1/n) with the vertex V; E[d g(z)] = Theta1 E[g] +
 * (D + 2F)/(2K^2) E[(z^2 - K) g] (the NTK's correlation with z^2, the book's
 * D, F; zero on the mean's odd g); the rest as for the mean. */
wick_status wick_gd_var_t(const wick_theory_config *c, double q, double y, double eta, long t,
                          double R, double STU, wick_gdvar_terms *out) {
    if (!c || !out) return wick_fail(WICK_EINVAL, "t-step GD variance: no configuration or output");
    if (!isfinite(eta) || !isfinite(y) || t < 0 || t > 100000000)
        return wick_fail(WICK_EINVAL, "t-step GD variance: eta = %g and y = %g must be finite "
                         "and t = %ld in 0..1e8", eta, y, t);
    wick_layer_finite f;
    wick_status st = gd_tensors(c, q, &R, &STU, &f, "t-step GD variance");
    if (st) return st;
    double Th = f.ntk, K = f.K;
    if (!(fabs(1 - eta * Th) < 1))
        return wick_fail(WICK_EINVAL, "t-step GD variance: eta = %g is outside (0, 2/Theta) = "
                         "(0, %g): gradient descent would not converge", eta, 2 / Th);
    gq z, zz;
    int ok = gd_iterate(Th, y, eta, t, &z);
    ok = ok && gq_mul(&zz, &z, &z);
    if (!ok) return wick_fail(WICK_ENUMERIC, "t-step GD variance: polynomial degree overflow");
    /* per ingredient: [0] order 1, then the 1/n parts */
    enum { I0 = 0, IK1, IV, INTK1, IDF, IVAR, IDNTK, IDDI, IDDII, NI };
    double m[NI] = {0}, s[NI] = {0};
    const double p = f.P + f.Q / 2;
    for (int w = 0; w < 2; w++) {
        const gq *g = w ? &zz : &z;
        double *e = w ? s : m;
        for (int k = 0; k <= PDEG; k++) {
            double g0 = th_gauss_moment(k, K), g2 = th_gauss_moment(k + 2, K) - K * g0;
            e[I0] += g->c[M1][k] * g0;
            e[IK1] += g->c[M1][k] * gmom_dK(k, K) * f.K1;
            e[IV] += g->c[M1][k] * gmom_V(k, K) * f.V;
            e[INTK1] += g->c[MD][k] * g0 * f.ntk1;
            e[IDF] += g->c[MD][k] * g2 * (f.D + 2 * f.F) / (2 * K * K);
            e[IVAR] += g->c[MDD][k] * g0 * (f.A + 2 * f.B);
            e[IDNTK] += g->c[MX][k] * th_gauss_moment(k + 1, K) * p / K;
            e[IDDI] += g->c[MY][k] * g0 * 3 * R;
            e[IDDII] += g->c[MZ][k] * g0 * STU;
        }
    }
    double v[NI];
    for (int i = 1; i < NI; i++) v[i] = s[i] - 2 * m[I0] * m[i];
    out->K = K; out->K1 = f.K1; out->V = f.V; out->ntk = Th; out->ntk1 = f.ntk1;
    out->A = f.A; out->B = f.B; out->D = f.D; out->F = f.F; out->P = f.P; out->Q = f.Q;
    out->R = R; out->STU = STU;
    out->mean = m[I0];
    out->var = s[I0] - m[I0] * m[I0];
    out->v_K1 = v[IK1]; out->v_V = v[IV]; out->v_ntk1 = v[INTK1]; out->v_DF = v[IDF];
    out->v_var = v[IVAR]; out->v_dntk = v[IDNTK]; out->v_ddI = v[IDDI]; out->v_ddII = v[IDDII];
    return WICK_OK;
}
