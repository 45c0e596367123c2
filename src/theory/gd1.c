/* gd1.c — the mean output of a finite-width network after one step of
 * full-batch MSE gradient descent, to order 1/n (the book's ch. 11 and its
 * chapter on the fully trained network; docs/theory-finite-width.md, "One
 * step of gradient descent at order 1/n").  Built from the single-input
 * tensors of wick_theory_finite (Theta, Theta1, A, B, P, Q) and the ddNTK
 * means of wick_theory_ddntk (R, S + T + U), or the caller's. */
#include "theory.h"
#include <math.h>

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

/* E[z^k], z ~ N(0, K) */
static double gmom(int k, double K) {
    if (k % 2) return 0;
    double m = 1;
    for (int j = k - 1; j > 0; j -= 2) m *= j * K;
    return m;
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
    if (!ok) return wick_fail(WICK_ENUMERIC, "t-step GD mean: polynomial degree overflow");
    double E[NM] = {0}, EzX = 0;
    for (int m = 0; m < NM; m++)
        for (int k = 0; k <= PDEG; k++) E[m] += z.c[m][k] * gmom(k, K);
    for (int k = 0; k <= PDEG; k++) EzX += z.c[MX][k] * gmom(k + 1, K);
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
