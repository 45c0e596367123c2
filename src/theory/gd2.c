/* gd2.c — the mean output of a finite-width network at a TEST input after t
 * steps (and fully trained, t -> infinity) of full-batch MSE gradient descent
 * on one training input, to order 1/n (the book's ch. 11 and its chapter on
 * the fully trained network; docs/theory-finite-width.md, "Gradient descent
 * at order 1/n: the mean at a test input").  The per-network Taylor map of
 * wick_gd_mean_t (src/theory/gd1.c) with sample indices: alpha = 0 the
 * training input, beta = 1 the test input, one output.
 *
 * With e = z_a - y and G_d = lambda grad z_d, the step is dtheta = -eta e G_a,
 * and every quantity of the network moves by its Taylor series along it:
 *   z_a' = z_a - eta H_aa e + (eta^2/2) X_{a;aa} e^2 - (eta^3/6) Y_{a;aaa} e^3
 *   z_b' = z_b - eta H_ba e + (eta^2/2) X_{b;aa} e^2 - (eta^3/6) Y_{b;aaa} e^3
 *   H_aa' = H_aa - 2 eta e X_{a;aa} + eta^2 e^2 (Y_{a;aaa} + Z_{aa;aa})
 *   H_ba' = H_ba - eta e (X_{b;aa} + X_{a;ba})
 *               + (eta^2/2) e^2 (Y_{b;aaa} + Y_{a;baa} + 2 Z_{ba;aa})
 *   X_{a;aa}' = X_{a;aa} - eta e (Y_{a;aaa} + 2 Z_{aa;aa})
 *   X_{b;aa}' = X_{b;aa} - eta e (Y_{b;aaa} + 2 Z_{ba;aa})
 *   X_{a;ba}' = X_{a;ba} - eta e (Y_{a;baa} + Z_{ba;aa} + Z_{aa;ba})
 * with X_{d;bc} = sum l l d2z_d dz_b dz_c (the dNTK in the book's form),
 * Y_{d;bce} = sum l^3 d3z_d dz_b dz_c dz_e (ddI), Z_{d1d2;b1b2} = <Hess z_d1
 * G_b1, lambda Hess z_d2 G_b2> (ddII); Y and Z move at order 1/n^2.  z_b(0)
 * enters z_b(t) only additively (its mean is 0), so everything is a
 * polynomial in z_a(0) ~ N(0, K_aa) times one of the monomials below. */
#include "theory.h"
#include <math.h>
#include <string.h>

#include "gd_poly.h"

/* The order-1/n mean of a quantity carried in the algebra.  d's
 * correlation with z z (the book's D, F) would enter through a d times an
 * even power of z >= 2, which the map never makes (the frozen part is
 * linear in z_a(0)); that is checked, not assumed. */
static int gp_mean(const gp *z, const wick_gd_test_tensors *T, wick_gd_test_part *o) {
    double K = T->K, E[NM] = {0}, Ez[NM] = {0};
    for (int m = 0; m < NM; m++)
        for (int k = 0; k <= PDEG; k++) {
            E[m] += z->c[m][k] * th_gauss_moment(k, K);
            if (k < PDEG) Ez[m] += z->c[m][k] * th_gauss_moment(k + 1, K);
        }
    for (int k = 2; k <= PDEG; k += 2)
        if (z->c[DA][k] != 0 || z->c[DB][k] != 0) return 0;
    if (gp_nonzero(z, DBB)) return 0;
    o->lin = E[M1];
    o->a_ntk1 = T->ntk1[0] * E[DA] + T->ntk1[1] * E[DB];
    o->a_var = T->var_aa * E[DAA] + T->cov_ab * E[DAB];
    /* X is linear in the preactivations at this order (the book's Wick rule
     * for the dNTK), so E[X g(z_a)] = E[X z_a] E[z_a g(z_a)] / K_aa */
    o->a_dntk = (T->xz[0] * Ez[XA] + T->xz[1] * Ez[XB] + T->xz[2] * Ez[XC]) / K;
    o->a_ddI = T->ddI[0] * E[YA] + T->ddI[1] * E[YB] + T->ddI[2] * E[YC];
    o->a_ddII = T->ddII[0] * E[ZA] + T->ddII[1] * E[ZB] + T->ddII[2] * E[ZC];
    return 1;
}

static double part_sum(const wick_gd_test_part *p) {
    return p->a_ntk1 + p->a_var + p->a_dntk + p->a_ddI + p->a_ddII;
}

wick_status wick_gd_mean_test(const wick_gd_test_tensors *T, double y, double eta, long t,
                              wick_gd_test_terms *out) {
    if (!T || !out) return wick_fail(WICK_EINVAL, "test-input GD mean: no tensors or output");
    if (!isfinite(eta) || !isfinite(y) || t < -1 || t > 100000000)
        return wick_fail(WICK_EINVAL, "test-input GD mean: eta = %g and y = %g must be finite and "
                         "t = %ld in 0..1e8 (or -1: fully trained)", eta, y, t);
    if (!(T->K > 0) || !isfinite(T->K))
        return wick_fail(WICK_EINVAL, "test-input GD mean: K_aa = %g must be positive", T->K);
    double Th = T->ntk[0];
    if (!(fabs(1 - eta * Th) < 1))
        return wick_fail(WICK_EINVAL, "test-input GD mean: eta = %g is outside (0, 2/Theta_aa) = "
                         "(0, %g): gradient descent would not converge", eta, 2 / Th);
    gp za, zb, Ha, Hb, Xa, Xb, Xc, Ya2, Yc;
    memset(&za, 0, sizeof za); memset(&zb, 0, sizeof zb);
    memset(&Ha, 0, sizeof Ha); memset(&Hb, 0, sizeof Hb);
    memset(&Xa, 0, sizeof Xa); memset(&Xb, 0, sizeof Xb); memset(&Xc, 0, sizeof Xc);
    za.c[M1][1] = 1;
    Ha.c[M1][0] = Th; Ha.c[DA][0] = 1;
    Hb.c[M1][0] = T->ntk[1]; Hb.c[DB][0] = 1;
    Xa.c[XA][0] = 1; Xb.c[XB][0] = 1; Xc.c[XC][0] = 1;
    /* the constant sources: Ya2 = Y_aaa + Z_aa;aa (H_aa's eta^2 term) and the
     * X motions' Y + 2Z combinations; Yc = H_ba's eta^2 term */
    gp sXa, sXb, sXc;
    memset(&sXa, 0, sizeof sXa); memset(&sXb, 0, sizeof sXb); memset(&sXc, 0, sizeof sXc);
    memset(&Ya2, 0, sizeof Ya2); memset(&Yc, 0, sizeof Yc);
    Ya2.c[YA][0] = 1; Ya2.c[ZA][0] = 1;
    sXa.c[YA][0] = 1; sXa.c[ZA][0] = 2;
    sXb.c[YB][0] = 1; sXb.c[ZB][0] = 2;
    sXc.c[YC][0] = 1; sXc.c[ZB][0] = 1; sXc.c[ZC][0] = 1;
    Yc.c[YB][0] = 0.5; Yc.c[YC][0] = 0.5; Yc.c[ZB][0] = 1;
    gp yA, yB;
    memset(&yA, 0, sizeof yA); memset(&yB, 0, sizeof yB);
    yA.c[YA][0] = 1; yB.c[YB][0] = 1;
    int ok = 1;
    const long tmax = t >= 0 ? t : 100000000;
    wick_gd_test_part prev = {0}, cur = {0};
    double rho = fabs(1 - eta * Th), rs = 1;
    long s = 0;
    for (; s < tmax && ok; s++) {
        ok &= gp_gd_step(&za, &zb, &Ha, &Hb, &Xa, &Xb, &Xc, &yA, &yB, &Ya2, &Yc, &sXa, &sXb, &sXc, eta, y);
        if (t < 0 && ok) {
            /* fully trained: the terms' increments fall as s^2 rho^s; stop
             * once rho^s and a step's change are below rounding */
            rs *= rho;
            if (!gp_mean(&zb, T, &cur)) { ok = 0; break; }
            double d = fabs(cur.lin - prev.lin) + fabs(part_sum(&cur) - part_sum(&prev)) +
                       fabs(cur.a_dntk - prev.a_dntk) + fabs(cur.a_ddI - prev.a_ddI) +
                       fabs(cur.a_ddII - prev.a_ddII) + fabs(cur.a_var - prev.a_var);
            double sc = fabs(cur.lin) + fabs(cur.a_dntk) + fabs(cur.a_ddI) + fabs(cur.a_ddII) +
                        fabs(cur.a_var) + fabs(cur.a_ntk1) + fabs(y);
            prev = cur;
            if (rs * (double)(s + 1) * (double)(s + 1) < 1e-17 && d <= 1e-16 * sc) { s++; break; }
        }
    }
    if (!ok) return wick_fail(WICK_ENUMERIC, "test-input GD mean: polynomial degree overflow");
    if (t < 0 && s >= tmax)
        return wick_fail(WICK_ENUMERIC, "test-input GD mean: no convergence in %ld steps", tmax);
    if (!gp_mean(&za, T, &out->train) || !gp_mean(&zb, T, &out->test))
        return wick_fail(WICK_ENUMERIC, "test-input GD mean: a term outside the order-1/n algebra "
                         "(d times z^2)");
    out->steps = s;
    return WICK_OK;
}

/* Every layer's order-1/n tensors of m = 2 (the wick_*_two functions) or 3
 * (wick_*_multi) inputs in their layouts: the NTK's T1, A, D, F and B, the
 * dNTK's P, Q (pq: 0 wick_dntk_PQ_*, 1 its pathwise form, 2 Pb, Qb) and the
 * ddNTK's R, S, T, U; the GD means of gd2.c and gd3.c read them. */
wick_status th_gd_tensors_all(const wick_theory_config *c, int m, const double *G0, int pq, double *T1,
                              double *A, double *D, double *F, double *B, double *P, double *Q,
                              double *R, double *S, double *Tt, double *U) {
    wick_status st;
    if (m == 2) {
        st = wick_ntk_fluct_two(c, G0, T1, A, D, F);
        if (!st) st = wick_ntk_B_two(c, G0, B);
        if (!st) st = pq == 0 ? wick_dntk_PQ_two(c, G0, P, Q)
                    : pq == 1 ? wick_dntk_PQ_two_pathwise(c, G0, P, Q)
                              : wick_dntk_PQb_two(c, G0, P, Q);
        if (!st) st = wick_theory_ddntk_two(c, G0, R, S, Tt, U);
    } else {
        /* the same layouts with index base 3 (src/theory/multi.c) */
        st = wick_ntk_fluct_multi(c, m, G0, T1, A, D, F);
        if (!st) st = wick_ntk_B_multi(c, m, G0, B);
        if (!st) st = pq == 0 ? wick_dntk_PQ_multi(c, m, G0, P, Q)
                    : pq == 1 ? wick_dntk_PQ_multi_pathwise(c, m, G0, P, Q)
                              : wick_dntk_PQb_multi(c, m, G0, P, Q);
        if (!st) st = wick_theory_ddntk_multi(c, m, G0, R, S, Tt, U);
    }
    return st;
}

wick_status wick_gd_test_tensors_two(const wick_theory_config *c, const double G0[4], int pq,
                                     wick_gd_test_tensors *T) {
    if (!c || !G0 || !T) return wick_fail(WICK_EINVAL, "test-input GD tensors: null argument");
    if (c->depth < 2 || c->depth > 4096)
        return wick_fail(WICK_EINVAL, "test-input GD tensors: depth %d, expected 2..4096", c->depth);
    if (pq < 0 || pq > 2)
        return wick_fail(WICK_EINVAL, "test-input GD tensors: dNTK form %d, expected 0..2", pq);
    size_t L = (size_t)c->depth, o4 = (L - 1) * 4, o16 = (L - 1) * 16;
    double K[4], Th[4];
    double *buf = wick_malloc(sizeof(double) * L * (4 + 16 * 10));
    if (!buf) return wick_fail(WICK_ENOMEM, "test-input GD tensors: out of memory");
    double *T1 = buf, *A = T1 + 4 * L, *D = A + 16 * L, *F = D + 16 * L, *B = F + 16 * L,
           *P = B + 16 * L, *Q = P + 16 * L, *R = Q + 16 * L, *S = R + 16 * L, *Tt = S + 16 * L,
           *U = Tt + 16 * L;
    wick_status st = wick_gram_flow_last(c, G0, 2, K, Th);
    if (!st) st = th_gd_tensors_all(c, 2, G0, pq, T1, A, D, F, B, P, Q, R, S, Tt, U);
    if (!st) {
        memset(T, 0, sizeof *T);
        T->K = K[0];
        T->ntk[0] = Th[0]; T->ntk[1] = Th[2];
        T->ntk1[0] = T1[o4]; T->ntk1[1] = T1[o4 + 2];
        /* Var(H_aa) and Cov(H_aa, H_ba) of one output: the book's
         * [d12 d34 A + d13 d24 B + d14 d23 B] / n with every neuron index equal,
         * A in (2a1+a2)*4 + 2a3+a4, B_{(a1a3)(a2a4)} in (2a1+a3)*4 + 2a2+a4 */
        const double *a = A + o16, *b = B + o16;
        T->var_aa = a[0] + 2 * b[0];
        T->cov_ab = a[2] + b[4] + b[1];
        const double *p = P + o16, *q = Q + o16;
        if (pq == 2) {
            /* book form: E[X_{a0;a1a2} z_a3] = Pb + Qb_{a0a1a2a3} + Qb_{a0a2a1a3} */
            T->xz[0] = p[0] + 2 * q[0];
            T->xz[1] = p[8] + 2 * q[8];
            T->xz[2] = p[4] + q[4] + q[2];
        } else {
            /* wick's form, dH_{a0;a1a2} = X_{a1;a0a2} + X_{a2;a0a1}, inverted:
             * X_{a;bc} = (dH_{b;ac} + dH_{c;ba} - dH_{a;bc}) / 2, and one output's
             * E[dH_{a0;a1a2} z_d] = P_{a0a1a2d} + P_{a0a2a1d} + Q_{a0a1a2d} */
#define HZ(a0, a1, a2) (p[8 * (a0) + 4 * (a1) + 2 * (a2)] + p[8 * (a0) + 4 * (a2) + 2 * (a1)] + \
                        q[8 * (a0) + 4 * (a1) + 2 * (a2)])
#define XZ(a, b, cc) ((HZ(b, a, cc) + HZ(cc, b, a) - HZ(a, b, cc)) / 2)
            T->xz[0] = XZ(0, 0, 0);
            T->xz[1] = XZ(1, 0, 0);
            T->xz[2] = XZ(0, 1, 0);
#undef XZ
#undef HZ
        }
        /* E[Y_{a0;a1a2a3}] = R_{a0a1a2a3} + R_{a0a2a1a3} + R_{a0a3a1a2};
         * E[Z_{a1a2;a3a4}] = (S + T + U)_{a1a2a3a4} */
        const double *r = R + o16;
        T->ddI[0] = 3 * r[0];
        T->ddI[1] = 3 * r[8];
        T->ddI[2] = r[4] + 2 * r[2];
        const double *s = S + o16, *tt = Tt + o16, *u = U + o16;
        T->ddII[0] = s[0] + tt[0] + u[0];
        T->ddII[1] = s[8] + tt[8] + u[8];
        T->ddII[2] = s[2] + tt[2] + u[2];
    }
    wick_free(buf);
    return st;
}
