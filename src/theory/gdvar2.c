/* gdvar2.c — the VARIANCE across initialisations of a finite-width
 * network's output at a TEST input after t steps (and fully trained) of
 * full-batch MSE gradient descent on one training input, to order 1/n (the
 * book's ch. 4, 8, 11 and its chapter on the trained network;
 * docs/theory-finite-width.md, "the variance at a test input").
 *
 * The per-network map is wick_gd_mean_test's (src/theory/gd2.c): training
 * input a, test input b, one output, each quantity a polynomial in z_a(0)
 * times one of the monomials 1, d_a, d_b (the fluctuations of H_aa, H_ba),
 * their products, X, Y, Z.  z_b(0) enters z_b(t) only additively, z_b(t) =
 * z_b(0) + f with f free of z_b(0), so
 *   Var z_b(t) = E[z_b(0)^2] + 2 E[z_b(0) f] + E[f^2] - E[f]^2,
 * and the expectations see, at order 1/n, beyond the Gaussian (z_a, z_b) of
 * covariance K: the kernel's shift K1 and the vertex V (ch. 4), the NTK's
 * mean shift, its correlation with z z (D, F: now with one index at b, since
 * z_b(0) multiplies d), its covariance (A, B), the dNTK's correlation with
 * z_a AND z_b (P, Q), and the ddNTK means (R, S, T, U).  The algebra is a
 * gd2.c's (gd_poly.h); the map is the same. */
#include "theory.h"
#include <math.h>
#include <string.h>

#include "gd_poly.h"

enum { I0 = 0, IK1, IV, INTK1, IDF, IVAR, IDNTK, IDDI, IDDII, NI };

static double binom(int k, int r) {
    if (r < 0 || r > k) return 0;
    double b = 1;
    for (int i = 0; i < r; i++) b = b * (double)(k - i) / (double)(i + 1);
    return b;
}

/* E[g] per ingredient, g = sum_m sum_k c[m][k] z_a^k mono_m, times z_b(0)
 * where zb: the Gaussian moments m(k) = E[z_a^k] and E[z_b z_a^k] = K_ab k
 * m(k-1) (Stein), and at order 1/n:
 *   K1: their derivatives along (K1_aa, K1_ab);
 *   V:  the connected four-point function 3 V_{(x a)(a a)} (one output: the
 *       book's three pairings with every neuron index equal) in a block of
 *       four, the rest paired;
 *   d:  E[d g] = Theta1 E[g] + (1/2) sum_{c,e} kappa(d, z_c, z_e) E[d_c d_e g];
 *   X:  linear in the preactivations, E[X g] = sum_c E[X z_c] E[d_c g];
 *   Y, Z: their means. */
static void gp_expect(const gp *g, int zb, const wick_gd_testvar_tensors *V, double e[NI]) {
    const wick_gd_test_tensors *T = &V->base;
    double K = T->K, Kab = V->Kab;
    double m[PDEG + 2], mk[PDEG + 2], mb[PDEG + 2], mbk[PDEG + 2];
    for (int k = 0; k <= PDEG + 1; k++) {
        m[k] = th_gauss_moment(k, K);
        mk[k] = k % 2 || k == 0 ? 0 : (double)k / 2 * m[k] / K * V->K1[0];
    }
    for (int k = 0; k <= PDEG + 1; k++) {
        mb[k] = k ? Kab * k * m[k - 1] : 0;
        mbk[k] = k ? k * (V->K1[1] * m[k - 1] + Kab * mk[k - 1]) : 0;
    }
    const double *P = zb ? mb : m;
    memset(e, 0, sizeof(double) * NI);
    for (int k = 0; k <= PDEG; k++) {
        double c = g->c[M1][k];
        if (c == 0) continue;
        e[I0] += c * P[k];
        e[IK1] += c * (zb ? mbk[k] : mk[k]);
        double v = binom(k, 4) * 3 * V->V[0] * (k >= 4 ? (zb ? mb[k - 4] : m[k - 4]) : 0);
        if (zb) v += binom(k, 3) * 3 * V->V[1] * (k >= 3 ? m[k - 3] : 0);
        e[IV] += c * v;
    }
    for (int x = 0; x < 2; x++) {
        const double *cx = g->c[x ? DB : DA];
        for (int k = 0; k <= PDEG; k++) {
            if (cx[k] == 0) continue;
            e[INTK1] += cx[k] * T->ntk1[x] * P[k];
            double g2 = k >= 2 ? k * (k - 1) * P[k - 2] : 0;   /* E[(z_b) d_a^2 z_a^k] */
            double df = 0.5 * V->kaa[x] * g2;
            if (zb) df += V->kab[x] * (k >= 1 ? k * m[k - 1] : 0);
            e[IDF] += cx[k] * df;
        }
    }
    const double dd[3] = {T->var_aa, T->cov_ab, V->var_bb};
    for (int x = 0; x < 3; x++)
        for (int k = 0; k <= PDEG; k++) e[IVAR] += g->c[DAA + x][k] * dd[x] * P[k];
    for (int x = 0; x < 3; x++)
        for (int k = 0; k <= PDEG; k++) {
            double c = g->c[XA + x][k];
            double d1 = k >= 1 ? k * P[k - 1] : 0;            /* E[(z_b) d_a z_a^k] */
            e[IDNTK] += c * (T->xz[x] * d1 + (zb ? V->xzb[x] * m[k] : 0));
            e[IDDI] += g->c[YA + x][k] * T->ddI[x] * P[k];
            e[IDDII] += g->c[ZA + x][k] * T->ddII[x] * P[k];
        }
}

/* Var z_b = E[z_b0^2] + 2 E[z_b0 f] + E[f^2] - E[f]^2 per ingredient */
static int gp_variance(const gp *f, const wick_gd_testvar_tensors *V, wick_gd_testvar_terms *o) {
    gp ff;
    if (!gp_mul(&ff, f, f)) return 0;
    double ef[NI], ebf[NI], eff[NI];
    gp_expect(f, 0, V, ef);
    gp_expect(f, 1, V, ebf);
    gp_expect(&ff, 0, V, eff);
    double v[NI];
    for (int i = 0; i < NI; i++) v[i] = 2 * ebf[i] + eff[i] - 2 * ef[I0] * ef[i];
    o->mean = ef[I0];
    o->var = V->Kbb + 2 * ebf[I0] + eff[I0] - ef[I0] * ef[I0];
    o->v_K1 = v[IK1] + V->K1[2];
    o->v_V = v[IV]; o->v_ntk1 = v[INTK1]; o->v_DF = v[IDF]; o->v_var = v[IVAR];
    o->v_dntk = v[IDNTK]; o->v_ddI = v[IDDI]; o->v_ddII = v[IDDII];
    return 1;
}

static double terms_sum(const wick_gd_testvar_terms *p) {
    return fabs(p->v_K1) + fabs(p->v_V) + fabs(p->v_ntk1) + fabs(p->v_DF) + fabs(p->v_var) +
           fabs(p->v_dntk) + fabs(p->v_ddI) + fabs(p->v_ddII);
}

static double terms_diff(const wick_gd_testvar_terms *p, const wick_gd_testvar_terms *q) {
    return fabs(p->var - q->var) + fabs(p->v_K1 - q->v_K1) + fabs(p->v_V - q->v_V) +
           fabs(p->v_ntk1 - q->v_ntk1) + fabs(p->v_DF - q->v_DF) + fabs(p->v_var - q->v_var) +
           fabs(p->v_dntk - q->v_dntk) + fabs(p->v_ddI - q->v_ddI) + fabs(p->v_ddII - q->v_ddII);
}

wick_status wick_gd_var_test(const wick_gd_testvar_tensors *V, double y, double eta, long t,
                             wick_gd_testvar_terms *out) {
    if (!V || !out) return wick_fail(WICK_EINVAL, "test-input GD variance: no tensors or output");
    const wick_gd_test_tensors *T = &V->base;
    if (!isfinite(eta) || !isfinite(y) || t < -1 || t > 100000000)
        return wick_fail(WICK_EINVAL, "test-input GD variance: eta = %g and y = %g must be finite "
                         "and t = %ld in 0..1e8 (or -1: fully trained)", eta, y, t);
    if (!(T->K > 0) || !isfinite(T->K))
        return wick_fail(WICK_EINVAL, "test-input GD variance: K_aa = %g must be positive", T->K);
    double Th = T->ntk[0];
    if (!(fabs(1 - eta * Th) < 1))
        return wick_fail(WICK_EINVAL, "test-input GD variance: eta = %g is outside (0, 2/Theta_aa) "
                         "= (0, %g): gradient descent would not converge", eta, 2 / Th);
    gp za, zb, Ha, Hb, Xa, Xb, Xc, Ya2, Yc, sXa, sXb, sXc, yA, yB;
    memset(&za, 0, sizeof za); memset(&zb, 0, sizeof zb);
    memset(&Ha, 0, sizeof Ha); memset(&Hb, 0, sizeof Hb);
    memset(&Xa, 0, sizeof Xa); memset(&Xb, 0, sizeof Xb); memset(&Xc, 0, sizeof Xc);
    memset(&sXa, 0, sizeof sXa); memset(&sXb, 0, sizeof sXb); memset(&sXc, 0, sizeof sXc);
    memset(&Ya2, 0, sizeof Ya2); memset(&Yc, 0, sizeof Yc);
    memset(&yA, 0, sizeof yA); memset(&yB, 0, sizeof yB);
    za.c[M1][1] = 1;
    Ha.c[M1][0] = Th; Ha.c[DA][0] = 1;
    Hb.c[M1][0] = T->ntk[1]; Hb.c[DB][0] = 1;
    Xa.c[XA][0] = 1; Xb.c[XB][0] = 1; Xc.c[XC][0] = 1;
    /* the constant sources, as gd2.c's: H_aa's eta^2 term Y_aaa + Z_aa;aa, the
     * X motions' Y + 2Z combinations, H_ba's eta^2 term */
    Ya2.c[YA][0] = 1; Ya2.c[ZA][0] = 1;
    sXa.c[YA][0] = 1; sXa.c[ZA][0] = 2;
    sXb.c[YB][0] = 1; sXb.c[ZB][0] = 2;
    sXc.c[YC][0] = 1; sXc.c[ZB][0] = 1; sXc.c[ZC][0] = 1;
    Yc.c[YB][0] = 0.5; Yc.c[YC][0] = 0.5; Yc.c[ZB][0] = 1;
    yA.c[YA][0] = 1; yB.c[YB][0] = 1;
    int ok = 1;
    const long tmax = t >= 0 ? t : 100000000;
    wick_gd_testvar_terms prev, cur;
    memset(&prev, 0, sizeof prev); memset(&cur, 0, sizeof cur);
    double rho = fabs(1 - eta * Th), rs = 1;
    long s = 0;
    for (; s < tmax && ok; s++) {
        ok &= gp_gd_step(&za, &zb, &Ha, &Hb, &Xa, &Xb, &Xc, &yA, &yB, &Ya2, &Yc, &sXa, &sXb, &sXc, eta, y);
        if (t < 0 && ok) {
            /* fully trained: the increments fall as s^2 rho^s; stop once rho^s
             * and a step's change are below rounding */
            rs *= rho;
            if (!gp_variance(&zb, V, &cur)) { ok = 0; break; }
            double d = terms_diff(&cur, &prev), sc = fabs(cur.var) + terms_sum(&cur) + V->Kbb;
            prev = cur;
            if (rs * (double)(s + 1) * (double)(s + 1) < 1e-17 && d <= 1e-16 * sc) { s++; break; }
        }
    }
    if (!ok) return wick_fail(WICK_ENUMERIC, "test-input GD variance: polynomial degree overflow");
    if (t < 0 && s >= tmax)
        return wick_fail(WICK_ENUMERIC, "test-input GD variance: no convergence in %ld steps", tmax);
    if (!gp_variance(&zb, V, out))
        return wick_fail(WICK_ENUMERIC, "test-input GD variance: polynomial degree overflow");
    out->steps = s;
    return WICK_OK;
}

wick_status wick_gd_testvar_tensors_two(const wick_theory_config *c, const double G0[4], int pq,
                                        wick_gd_testvar_tensors *V) {
    if (!c || !G0 || !V) return wick_fail(WICK_EINVAL, "test-input GD variance tensors: null argument");
    wick_status st = wick_gd_test_tensors_two(c, G0, pq, &V->base);
    if (st) return st;
    size_t L = (size_t)c->depth, o4 = (L - 1) * 4, o16 = (L - 1) * 16;
    double K[4], Th[4];
    double *buf = wick_malloc(sizeof(double) * L * (4 + 16 * 7));
    if (!buf) return wick_fail(WICK_ENOMEM, "test-input GD variance tensors: out of memory");
    double *K1 = buf, *Vx = K1 + 4 * L, *T1 = Vx + 16 * L, *A = T1 + 16 * L, *D = A + 16 * L,
           *F = D + 16 * L, *B = F + 16 * L, *P = B + 16 * L;
    double *Q = wick_malloc(sizeof(double) * L * 16);
    if (!Q) { wick_free(buf); return wick_fail(WICK_ENOMEM, "test-input GD variance tensors: out of memory"); }
    st = wick_gram_flow_last(c, G0, 2, K, Th);
    if (!st) st = wick_kernel1_two(c, G0, K1);
    if (!st) st = wick_vertex2(c, G0, Vx);
    if (!st) st = wick_ntk_fluct_two(c, G0, T1, A, D, F);
    if (!st) st = wick_ntk_B_two(c, G0, B);
    if (!st) st = pq == 0 ? wick_dntk_PQ_two(c, G0, P, Q)
                : pq == 1 ? wick_dntk_PQ_two_pathwise(c, G0, P, Q)
                          : wick_dntk_PQb_two(c, G0, P, Q);
    if (!st) {
        V->Kab = K[2]; V->Kbb = K[3];
        V->K1[0] = K1[o4]; V->K1[1] = K1[o4 + 2]; V->K1[2] = K1[o4 + 3];
        /* V_{(aa)(aa)} and V_{(ba)(aa)}: p = 2 a1 + a2, q = 2 a3 + a4 */
        V->V[0] = Vx[o16]; V->V[1] = Vx[o16 + 8];
        /* one output's E[dH_{a1a2} z_a3 z_a4] = D_{a1a2a3a4} + F_{(a1a3)(a2a4)}
         * + F_{(a1a4)(a2a3)}, D at (2a1+a2)*4 + 2a3+a4, F_{(pq)(rs)} at (2p+q)*4 + 2r+s */
        const double *d = D + o16, *f = F + o16, *a = A + o16, *b = B + o16;
        V->kaa[0] = d[0] + 2 * f[0];
        V->kaa[1] = d[8] + 2 * f[8];
        V->kab[0] = d[1] + f[1] + f[4];
        V->kab[1] = d[9] + f[9] + f[12];
        /* Var(H_ba) = A_{(ba)(ba)} + B_{(bb)(aa)} + B_{(ba)(ab)} */
        V->var_bb = a[10] + b[12] + b[9];
        const double *p = P + o16, *q = Q + o16;
        if (pq == 2) {
            /* E[X_{a0;a1a2} z_d] = Pb + Qb_{a0a1a2d} + Qb_{a0a2a1d}, d = b */
            V->xzb[0] = p[1] + 2 * q[1];
            V->xzb[1] = p[9] + 2 * q[9];
            V->xzb[2] = p[5] + q[5] + q[3];
        } else {
#define HZ(a0, a1, a2) (p[8 * (a0) + 4 * (a1) + 2 * (a2) + 1] + p[8 * (a0) + 4 * (a2) + 2 * (a1) + 1] + \
                        q[8 * (a0) + 4 * (a1) + 2 * (a2) + 1])
#define XZ(a, bb, cc) ((HZ(bb, a, cc) + HZ(cc, bb, a) - HZ(a, bb, cc)) / 2)
            V->xzb[0] = XZ(0, 0, 0);
            V->xzb[1] = XZ(1, 0, 0);
            V->xzb[2] = XZ(0, 1, 0);
#undef XZ
#undef HZ
        }
    }
    (void)T1; (void)Th;
    wick_free(Q);
    wick_free(buf);
    return st;
}
