/* gd_poly.h — the small polynomial algebra of the gradient-descent maps at a
 * test input (gd2.c's mean, gdvar2.c's variance): a quantity is a
 * polynomial in the training preactivation z_a(0) (degree <= PDEG) beside
 * each monomial of the small quantities (the NTK's fluctuations d, the dNTK
 * X, the ddNTKs Y and Z).  Internal to src/theory/. */
#ifndef WICK_THEORY_GD_POLY_H
#define WICK_THEORY_GD_POLY_H
#include <string.h>

enum { M1 = 0, DA, DB, DAA, DAB, DBB, XA, XB, XC, YA, YB, YC, ZA, ZB, ZC, NM };
#define PDEG 12
typedef struct { double c[NM][PDEG + 1]; } gp;

/* the products that survive at order 1/n: 1 x anything, and the NTK's
 * fluctuations d (of order 1/sqrt(n)) two at a time */
static inline int mono_prod(int i, int j) {
    if (i == M1) return j;
    if (j == M1) return i;
    if (i == DA && j == DA) return DAA;
    if (i == DB && j == DB) return DBB;
    if ((i == DA && j == DB) || (i == DB && j == DA)) return DAB;
    return -1;
}

static inline int gp_nonzero(const gp *a, int m) {
    for (int k = 0; k <= PDEG; k++)
        if (a->c[m][k] != 0) return 1;
    return 0;
}

static inline void gp_axpy(gp *r, double a, const gp *x) {
    for (int m = 0; m < NM; m++)
        for (int k = 0; k <= PDEG; k++) r->c[m][k] += a * x->c[m][k];
}

/* r = a * b with the truncation (products of two small monomials other than
 * d d dropped); 0 when a degree overflows */
static inline int gp_mul(gp *r, const gp *a, const gp *b) {
    gp t;
    memset(&t, 0, sizeof t);
    int nza[NM], nzb[NM];
    for (int m = 0; m < NM; m++) { nza[m] = gp_nonzero(a, m); nzb[m] = gp_nonzero(b, m); }
    for (int i = 0; i < NM; i++) {
        if (!nza[i]) continue;
        for (int j = 0; j < NM; j++) {
            int m = nzb[j] ? mono_prod(i, j) : -1;
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
    }
    *r = t;
    return 1;
}

/* One step of gradient descent on the per-network Taylor map of the training
 * output z_a and the test output z_b with their NTK (Ha, Hb) and dNTK (Xa,
 * Xb, Xc) components, at rate eta and target y (gd2.c's mean and gdvar2.c's
 * variance step the same map; the ddNTK terms Ya2, Yc, sXa, sXb, sXc and
 * yA, yB are constants).  Returns 0 where a product leaves order 1/n. */
static inline int gp_gd_step(gp *za, gp *zb, gp *Ha, gp *Hb, gp *Xa, gp *Xb, gp *Xc, const gp *yA,
                             const gp *yB, const gp *Ya2, const gp *Yc, const gp *sXa, const gp *sXb,
                             const gp *sXc, double eta, double y) {
    gp e = *za, e2, e3, tmp, xs;
    int ok = 1;
    e.c[M1][0] -= y;
    ok &= gp_mul(&e2, &e, &e);
    ok &= gp_mul(&e3, &e2, &e);
    gp zan = *za, zbn = *zb, Han = *Ha, Hbn = *Hb, Xan = *Xa, Xbn = *Xb, Xcn = *Xc;
    ok &= gp_mul(&tmp, Ha, &e);  gp_axpy(&zan, -eta, &tmp);
    ok &= gp_mul(&tmp, Xa, &e2); gp_axpy(&zan, eta * eta / 2, &tmp);
    ok &= gp_mul(&tmp, yA, &e3); gp_axpy(&zan, -eta * eta * eta / 6, &tmp);
    ok &= gp_mul(&tmp, Hb, &e);  gp_axpy(&zbn, -eta, &tmp);
    ok &= gp_mul(&tmp, Xb, &e2); gp_axpy(&zbn, eta * eta / 2, &tmp);
    ok &= gp_mul(&tmp, yB, &e3); gp_axpy(&zbn, -eta * eta * eta / 6, &tmp);
    ok &= gp_mul(&tmp, &e, Xa);  gp_axpy(&Han, -2 * eta, &tmp);
    ok &= gp_mul(&tmp, &e2, Ya2); gp_axpy(&Han, eta * eta, &tmp);
    xs = *Xb; gp_axpy(&xs, 1, Xc);
    ok &= gp_mul(&tmp, &e, &xs);  gp_axpy(&Hbn, -eta, &tmp);
    ok &= gp_mul(&tmp, &e2, Yc); gp_axpy(&Hbn, eta * eta, &tmp);
    ok &= gp_mul(&tmp, &e, sXa); gp_axpy(&Xan, -eta, &tmp);
    ok &= gp_mul(&tmp, &e, sXb); gp_axpy(&Xbn, -eta, &tmp);
    ok &= gp_mul(&tmp, &e, sXc); gp_axpy(&Xcn, -eta, &tmp);
    *za = zan; *zb = zbn; *Ha = Han; *Hb = Hbn; *Xa = Xan; *Xb = Xbn; *Xc = Xcn;
    return ok;
}
#endif
