/* gd3.c — the mean output of a finite-width network after t steps (and fully
 * trained) of full-batch MSE gradient descent on SEVERAL training inputs, read
 * at every training input and at test inputs, to order 1/n (the book's ch. 11
 * and its chapter on the fully trained network, where the training set enters
 * through the inverse NTK; docs/theory-finite-width.md, "several training
 * inputs").  The per-network Taylor map of gd2.c with one force per training
 * sample: m inputs, the first nt train (targets y_b, loss weights w_b: the
 * loss is sum_b w_b (z_b - y_b)^2 / 2), the rest are read.  With f_b = w_b
 * (z_b - y_b) and G_d = lambda grad z_d the step is dtheta = -eta sum_b f_b G_b,
 * so (sums over training b, c, d; a over every input)
 *   z_a'   = z_a - eta H_ab f_b + (eta^2/2) X_{a;bc} f_b f_c - (eta^3/6) Y_{a;bcd} f_b f_c f_d
 *   H_ab'  = H_ab - eta (X_{a;bc} + X_{b;ac}) f_c
 *                 + (eta^2/2) (Y_{a;bcd} + Y_{b;acd} + 2 Z_{ab;cd}) f_c f_d
 *   X_{a;bc}' = X_{a;bc} - eta (Y_{a;bcd} + Z_{ab;cd} + Z_{ac;bd}) f_d
 * with X, Y, Z as in gd2.c (X_{d;bc} = D^2 z_d[G_b, G_c], Y = D^3 z_d[G, G, G],
 * Z_{d1d2;b1b2} = <Hess z_d1 G_b1, lambda Hess z_d2 G_b2>); Y and Z move at
 * order 1/n^2, and enter linearly, so only their means are carried.
 *
 * Each quantity is a polynomial in the training preactivations z_0(0), ...
 * (nt <= 2 variables; a test input's z(0) enters its own z(t) only
 * additively and has mean 0) beside the monomials 1, d_{ab} (the NTK's
 * fluctuation, order 1/sqrt(n)), d d, X_{a;bc}, Y, Z; products of two small
 * ones are dropped except d d.  The mean:
 *   E[d_ab g] = Theta1_ab E[g]/n for g of degree 0 (odd g: 0 by the mirror
 *     symmetry z -> -z; an even power >= 2 would need D, F and is refused:
 *     the map never makes it, which the code checks instead of assuming),
 *   E[d_p d_q g] = Cov(H_p, H_q) E[g]/n,
 *   E[X g(z)] = sum_d E[X z_d] E[d g/d z_d] (X is linear in the
 *     preactivations at this order: Wick's rule, no inverse kernel needed),
 *   E[Y g] = E[Y] E[g], E[Z g] = E[Z] E[g]. */
#include "theory.h"
#include <math.h>
#include <string.h>

#define MX WICK_GDM_MAX
#define PD 6                    /* the map's degree never passes 3: checked */
#define NC ((PD + 1) * (PD + 1))
#define NMONO (1 + 10 + 55 + 40 + 2)

/* the monomial table for m inputs */
typedef struct {
    int m, nt, nd, ndd, nx, n;
    int d_of[MX][MX];           /* d monomial of the unordered pair {a, b} */
    int dd_of[10][10];          /* dd monomial of the unordered pair of d's */
    int x_of[MX][MX][MX];       /* X_{a;bc} monomial (b, c unordered) */
    int y, z;                   /* the Y and Z monomials */
    int dpair[10][2], ddpair[55][2], xtrip[40][3];
    int kind[NMONO];            /* 0 one, 1 d, 2 dd, 3 X, 4 Y, 5 Z */
} mtab;

enum { K1 = 0, KD, KDD, KX, KY, KZ };

static void mtab_init(mtab *t, int m, int nt) {
    memset(t, 0, sizeof *t);
    t->m = m; t->nt = nt;
    int k = 1;
    t->kind[0] = K1;
    for (int a = 0; a < m; a++)
        for (int b = a; b < m; b++) {
            t->d_of[a][b] = t->d_of[b][a] = k;
            t->dpair[t->nd][0] = a; t->dpair[t->nd][1] = b; t->nd++;
            t->kind[k++] = KD;
        }
    for (int p = 0; p < t->nd; p++)
        for (int q = p; q < t->nd; q++) {
            t->dd_of[p][q] = t->dd_of[q][p] = k;
            t->ddpair[t->ndd][0] = p; t->ddpair[t->ndd][1] = q; t->ndd++;
            t->kind[k++] = KDD;
        }
    for (int a = 0; a < m; a++)
        for (int b = 0; b < m; b++)
            for (int c = b; c < m; c++) {
                t->x_of[a][b][c] = t->x_of[a][c][b] = k;
                t->xtrip[t->nx][0] = a; t->xtrip[t->nx][1] = b; t->xtrip[t->nx][2] = c; t->nx++;
                t->kind[k++] = KX;
            }
    t->y = k; t->kind[k++] = KY;
    t->z = k; t->kind[k++] = KZ;
    t->n = k;
}

/* a quantity: per monomial a polynomial c[i*(PD+1)+j] z_0^i z_1^j */
typedef struct { double c[NMONO][NC]; unsigned char nz[NMONO]; } gm;

static _Thread_local const mtab *TB;  /* the table of the call in progress (per thread) */

static void gm_zero(gm *r) { memset(r, 0, sizeof *r); }

/* the product of two monomials, -1 where it is beyond order 1/n */
static int mono_prod(int i, int j) {
    if (i == 0) return j;
    if (j == 0) return i;
    if (TB->kind[i] == KD && TB->kind[j] == KD) return TB->dd_of[i - 1][j - 1];
    return -1;
}

static int poly_mul_add(double *r, const double *a, const double *b) {
    for (int i1 = 0; i1 <= PD; i1++)
        for (int j1 = 0; i1 + j1 <= PD; j1++) {
            double x = a[i1 * (PD + 1) + j1];
            if (x == 0) continue;
            for (int i2 = 0; i2 <= PD; i2++)
                for (int j2 = 0; i2 + j2 <= PD; j2++) {
                    double y = b[i2 * (PD + 1) + j2];
                    if (y == 0) continue;
                    if (i1 + i2 + j1 + j2 > PD) return 0;
                    r[(i1 + i2) * (PD + 1) + j1 + j2] += x * y;
                }
        }
    return 1;
}

/* r += s a b; returns 0 when a degree overflows */
static int gm_muladd(gm *r, double s, const gm *a, const gm *b) {
    double tmp[NC];
    int ok = 1;
    for (int i = 0; i < TB->n; i++) {
        if (!a->nz[i]) continue;
        for (int j = 0; j < TB->n; j++) {
            if (!b->nz[j]) continue;
            int k = mono_prod(i, j);
            if (k < 0) continue;
            memset(tmp, 0, sizeof tmp);
            ok &= poly_mul_add(tmp, a->c[i], b->c[j]);
            r->nz[k] = 1;
            for (int q = 0; q < NC; q++) r->c[k][q] += s * tmp[q];
        }
    }
    return ok;
}

/* E[z_0^i z_1^j] for the training preactivations ~ N(0, K_TT) */
static void moments(const wick_gd_multi_tensors *T, double mu[PD + 2][PD + 2]) {
    int m = T->m;
    double k00 = T->K[0], k01 = T->nt > 1 ? T->K[1] : 0, k11 = T->nt > 1 ? T->K[m + 1] : 0;
    memset(mu, 0, sizeof(double) * (PD + 2) * (PD + 2));
    for (int s = 0; s <= PD + 1; s++)
        for (int i = 0; i <= s; i++) {
            int j = s - i;
            double v;
            if (s == 0) v = 1;
            else if (i > 0)
                v = (i >= 2 ? (i - 1) * k00 * mu[i - 2][j] : 0) + (j >= 1 ? j * k01 * mu[i - 1][j - 1] : 0);
            else v = (j >= 2 ? (j - 1) * k11 * mu[0][j - 2] : 0);
            mu[i][j] = v;
        }
}

static double poly_mean(const double *p, double mu[PD + 2][PD + 2]) {
    double s = 0;
    for (int i = 0; i <= PD; i++)
        for (int j = 0; i + j <= PD; j++) s += p[i * (PD + 1) + j] * mu[i][j];
    return s;
}

/* E[d p / d z_v] */
static double poly_dmean(const double *p, int v, double mu[PD + 2][PD + 2]) {
    double s = 0;
    for (int i = 0; i <= PD; i++)
        for (int j = 0; i + j <= PD; j++) {
            double c = p[i * (PD + 1) + j];
            if (c == 0) continue;
            if (v == 0 && i > 0) s += c * i * mu[i - 1][j];
            if (v == 1 && j > 0) s += c * j * mu[i][j - 1];
        }
    return s;
}

#define I2(a, b) ((a) * m + (b))
#define I4(a, b, c, d) ((((a) * m + (b)) * m + (c)) * m + (d))

static int gm_mean(const gm *g, const wick_gd_multi_tensors *T, double mu[PD + 2][PD + 2],
                   wick_gd_test_part *o) {
    const int m = T->m;
    memset(o, 0, sizeof *o);
    for (int k = 0; k < TB->n; k++) {
        if (!g->nz[k]) continue;
        const double *p = g->c[k];
        switch (TB->kind[k]) {
        case K1: o->lin += poly_mean(p, mu); break;
        case KD: {
            for (int i = 0; i <= PD; i++)
                for (int j = 0; i + j <= PD; j++)
                    if ((i + j) % 2 == 0 && i + j >= 2 && p[i * (PD + 1) + j] != 0) return 0;
            const int *ab = TB->dpair[k - 1];
            o->a_ntk1 += T->ntk1[I2(ab[0], ab[1])] * p[0];
            break;
        }
        case KDD: {
            const int *pq = TB->ddpair[k - 1 - TB->nd];
            const int *u = TB->dpair[pq[0]], *v = TB->dpair[pq[1]];
            o->a_var += T->cov[I2(u[0], u[1]) * m * m + I2(v[0], v[1])] * poly_mean(p, mu);
            break;
        }
        case KX: {
            const int *x = TB->xtrip[k - 1 - TB->nd - TB->ndd];
            for (int d = 0; d < T->nt; d++)
                o->a_dntk += T->xz[I4(x[0], x[1], x[2], d)] * poly_dmean(p, d, mu);
            break;
        }
        case KY: o->a_ddI += poly_mean(p, mu); break;
        case KZ: o->a_ddII += poly_mean(p, mu); break;
        }
    }
    return 1;
}

static double part_sum(const wick_gd_test_part *p) {
    return p->a_ntk1 + p->a_var + p->a_dntk + p->a_ddI + p->a_ddII;
}

/* the largest |1 - eta lambda| over the nonzero eigenvalues lambda of
 * Theta_TT W (real: similar to W^1/2 Theta W^1/2) */
static double contraction(const wick_gd_multi_tensors *T, const double *w, double eta, int *ok) {
    int m = T->m;
    double l[2];
    int nl = 0;
    if (T->nt == 1) l[nl++] = T->ntk[0] * w[0];
    else {
        double a = T->ntk[0] * w[0], b = T->ntk[1] * w[1], c = T->ntk[m] * w[0],
               d = T->ntk[m + 1] * w[1];
        double tr = a + d, det = a * d - b * c, disc = tr * tr / 4 - det;
        disc = disc > 0 ? sqrt(disc) : 0;
        l[0] = tr / 2 + disc; l[1] = tr / 2 - disc;
        nl = 2;
    }
    double big = fmax(fabs(l[0]), nl > 1 ? fabs(l[1]) : 0), rho = 0;
    *ok = 1;
    for (int i = 0; i < nl; i++) {
        if (fabs(l[i]) <= 1e-12 * big) continue;
        double r = fabs(1 - eta * l[i]);
        if (!(r < 1)) *ok = 0;
        if (r > rho) rho = r;
    }
    return rho;
}

wick_status wick_gd_mean_multi(const wick_gd_multi_tensors *T, const double *y, const double *w,
                               double eta, long t, wick_gd_multi_terms *out) {
    if (!T || !y || !out) return wick_fail(WICK_EINVAL, "several-input GD mean: null argument");
    const int m = T->m, nt = T->nt;
    if (m < 1 || m > MX || nt < 1 || nt > 2 || nt > m)
        return wick_fail(WICK_EINVAL, "several-input GD mean: %d inputs with %d training, expected "
                         "1..%d inputs and 1..2 training", m, nt, MX);
    if (!isfinite(eta) || t < -1 || t > 100000000)
        return wick_fail(WICK_EINVAL, "several-input GD mean: eta = %g must be finite and t = %ld "
                         "in 0..1e8 (or -1: fully trained)", eta, t);
    double wv[2] = {1, 1};
    for (int b = 0; b < nt; b++) {
        if (w) wv[b] = w[b];
        if (!isfinite(y[b]) || !(wv[b] >= 0) || !isfinite(wv[b]))
            return wick_fail(WICK_EINVAL, "several-input GD mean: target %d = %g must be finite and "
                             "its weight %g >= 0", b, y[b], wv[b]);
    }
    if (!(T->K[0] > 0) || (nt > 1 && !(T->K[m + 1] > 0 && T->K[0] * T->K[m + 1] >= T->K[1] * T->K[1])))
        return wick_fail(WICK_EINVAL, "several-input GD mean: the training inputs' kernel is not "
                         "positive semi-definite");
    int conv;
    double rho = contraction(T, wv, eta, &conv);
    if (!conv)
        return wick_fail(WICK_EINVAL, "several-input GD mean: eta = %g gives |1 - eta lambda| >= 1 "
                         "for an eigenvalue lambda of Theta_TT W: gradient descent would not "
                         "converge", eta);
    mtab tab;
    mtab_init(&tab, m, nt);
    TB = &tab;
    /* the state: z_a, H_ab (b training), X_{a;bc}; and scratch */
    gm *z = wick_calloc((size_t)m, sizeof *z), *H = wick_calloc((size_t)(m * nt), sizeof *H);
    gm *X = wick_calloc((size_t)tab.nx, sizeof *X);
    gm *zn = wick_calloc((size_t)m, sizeof *zn), *Hn = wick_calloc((size_t)(m * nt), sizeof *Hn);
    gm *Xn = wick_calloc((size_t)tab.nx, sizeof *Xn), *f = wick_calloc(2, sizeof *f);
    gm *ff = wick_calloc(4, sizeof *ff), *tmp = wick_calloc(1, sizeof *tmp);
    if (!z || !H || !X || !zn || !Hn || !Xn || !f || !ff || !tmp) {
        wick_free(z); wick_free(H); wick_free(X); wick_free(zn); wick_free(Hn); wick_free(Xn);
        wick_free(f); wick_free(ff); wick_free(tmp);
        return wick_fail(WICK_ENOMEM, "several-input GD mean: out of memory");
    }
    for (int a = 0; a < nt; a++) {
        z[a].nz[0] = 1;
        z[a].c[0][a == 0 ? PD + 1 : 1] = 1;       /* z_0 or z_1 */
    }
    for (int a = 0; a < m; a++)
        for (int b = 0; b < nt; b++) {
            gm *h = &H[a * nt + b];
            h->nz[0] = 1; h->c[0][0] = T->ntk[I2(a, b)];
            int k = tab.d_of[a][b];
            h->nz[k] = 1; h->c[k][0] = 1;
        }
    for (int x = 0; x < tab.nx; x++) { X[x].nz[x + 1 + tab.nd + tab.ndd] = 1; X[x].c[x + 1 + tab.nd + tab.ndd][0] = 1; }
    double mu[PD + 2][PD + 2];
    moments(T, mu);
    const double *EY = T->ddI, *EZ = T->ddII;
    int ok = 1;
    const long tmax = t >= 0 ? t : 100000000;
    wick_gd_test_part prev[MX], cur[MX];
    memset(prev, 0, sizeof prev);
    double rs = 1;
    long s = 0;
    for (; s < tmax && ok; s++) {
        for (int b = 0; b < nt; b++) {
            f[b] = z[b];
            f[b].nz[0] = 1; f[b].c[0][0] -= y[b];
            for (int k = 0; k < tab.n; k++)
                if (f[b].nz[k])
                    for (int q = 0; q < NC; q++) f[b].c[k][q] *= wv[b];
        }
        for (int b = 0; b < nt; b++)
            for (int c = 0; c < nt; c++) {
                gm_zero(&ff[b * 2 + c]);
                ok &= gm_muladd(&ff[b * 2 + c], 1, &f[b], &f[c]);
            }
        /* the polynomial parts (monomial 1) of f_b f_c f_d, enough for Y and Z */
        double p3[2][2][2][NC], *p2[2][2], *p1[2];
        for (int b = 0; b < nt; b++) p1[b] = f[b].c[0];
        for (int b = 0; b < nt; b++) {
            for (int c = 0; c < nt; c++) {
                p2[b][c] = ff[b * 2 + c].c[0];
                for (int d = 0; d < nt; d++) {
                    memset(p3[b][c][d], 0, sizeof p3[b][c][d]);
                    ok &= poly_mul_add(p3[b][c][d], p2[b][c], p1[d]);
                }
            }
        }
        for (int a = 0; a < m; a++) {
            zn[a] = z[a];
            for (int b = 0; b < nt; b++) {
                ok &= gm_muladd(&zn[a], -eta, &H[a * nt + b], &f[b]);
                for (int c = 0; c < nt; c++) {
                    ok &= gm_muladd(&zn[a], eta * eta / 2, &X[tab.x_of[a][b][c] - 1 - tab.nd - tab.ndd],
                                    &ff[b * 2 + c]);
                    for (int d = 0; d < nt; d++) {
                        double cy = EY[I4(a, b, c, d)];
                        if (cy == 0) continue;
                        zn[a].nz[tab.y] = 1;
                        for (int q = 0; q < NC; q++)
                            zn[a].c[tab.y][q] += -eta * eta * eta / 6 * cy * p3[b][c][d][q];
                    }
                }
            }
            for (int b = 0; b < nt; b++) {
                gm *h = &Hn[a * nt + b];
                *h = H[a * nt + b];
                for (int c = 0; c < nt; c++) {
                    ok &= gm_muladd(h, -eta, &X[tab.x_of[a][b][c] - 1 - tab.nd - tab.ndd], &f[c]);
                    ok &= gm_muladd(h, -eta, &X[tab.x_of[b][a][c] - 1 - tab.nd - tab.ndd], &f[c]);
                    for (int d = 0; d < nt; d++) {
                        double cy = EY[I4(a, b, c, d)] + EY[I4(b, a, c, d)], cz = 2 * EZ[I4(a, b, c, d)];
                        h->nz[tab.y] = 1; h->nz[tab.z] = 1;
                        for (int q = 0; q < NC; q++) {
                            h->c[tab.y][q] += eta * eta / 2 * cy * p2[c][d][q];
                            h->c[tab.z][q] += eta * eta / 2 * cz * p2[c][d][q];
                        }
                    }
                }
            }
        }
        for (int x = 0; x < tab.nx; x++) {
            int a = tab.xtrip[x][0], b = tab.xtrip[x][1], c = tab.xtrip[x][2];
            Xn[x] = X[x];
            for (int d = 0; d < nt; d++) {
                double cy = EY[I4(a, b, c, d)], cz = EZ[I4(a, b, c, d)] + EZ[I4(a, c, b, d)];
                Xn[x].nz[tab.y] = 1; Xn[x].nz[tab.z] = 1;
                for (int q = 0; q < NC; q++) {
                    Xn[x].c[tab.y][q] += -eta * cy * p1[d][q];
                    Xn[x].c[tab.z][q] += -eta * cz * p1[d][q];
                }
            }
        }
        memcpy(z, zn, sizeof *z * (size_t)m);
        memcpy(H, Hn, sizeof *H * (size_t)(m * nt));
        memcpy(X, Xn, sizeof *X * (size_t)tab.nx);
        if (t < 0 && ok) {
            /* fully trained: the increments fall as s^2 rho^s; stop once rho^s
             * and a step's change are below rounding at every input */
            rs *= rho;
            double d = 0, sc = 0;
            for (int a = 0; a < m && ok; a++) {
                if (!gm_mean(&z[a], T, mu, &cur[a])) { ok = 0; break; }
                d += fabs(cur[a].lin - prev[a].lin) + fabs(part_sum(&cur[a]) - part_sum(&prev[a])) +
                     fabs(cur[a].a_dntk - prev[a].a_dntk) + fabs(cur[a].a_ddI - prev[a].a_ddI) +
                     fabs(cur[a].a_ddII - prev[a].a_ddII) + fabs(cur[a].a_var - prev[a].a_var);
                sc += fabs(cur[a].lin) + fabs(cur[a].a_dntk) + fabs(cur[a].a_ddI) +
                      fabs(cur[a].a_ddII) + fabs(cur[a].a_var) + fabs(cur[a].a_ntk1) + fabs(y[0]);
                prev[a] = cur[a];
            }
            if (ok && rs * (double)(s + 1) * (double)(s + 1) < 1e-17 && d <= 1e-16 * sc) { s++; break; }
        }
    }
    wick_status st = WICK_OK;
    if (!ok) st = wick_fail(WICK_ENUMERIC, "several-input GD mean: a term outside the order-1/n "
                            "algebra (degree overflow, or d times z^2)");
    else if (t < 0 && s >= tmax)
        st = wick_fail(WICK_ENUMERIC, "several-input GD mean: no convergence in %ld steps", tmax);
    else {
        memset(out, 0, sizeof *out);
        for (int a = 0; a < m && !st; a++)
            if (!gm_mean(&z[a], T, mu, &out->at[a]))
                st = wick_fail(WICK_ENUMERIC, "several-input GD mean: a term outside the order-1/n "
                               "algebra (d times z^2)");
        out->steps = s;
    }
    TB = NULL;
    wick_free(z); wick_free(H); wick_free(X); wick_free(zn); wick_free(Hn); wick_free(Xn);
    wick_free(f); wick_free(ff); wick_free(tmp);
    return st;
}

/* The tensors from the last layer's arrays in the base-m layouts of the
 * *_two / *_multi functions (offsets already applied). */
static void fill(wick_gd_multi_tensors *T, int m, int nt, const double *K, const double *Th,
                 const double *T1, const double *A, const double *B, const double *P,
                 const double *Q, int pq, const double *R, const double *S, const double *Tt,
                 const double *U) {
    memset(T, 0, sizeof *T);
    T->m = m; T->nt = nt;
    for (int i = 0; i < m * m; i++) { T->K[i] = K[i]; T->ntk[i] = Th[i]; T->ntk1[i] = T1[i]; }
    const int m2 = m * m;
    for (int a1 = 0; a1 < m; a1++)
        for (int a2 = 0; a2 < m; a2++)
            for (int a3 = 0; a3 < m; a3++)
                for (int a4 = 0; a4 < m; a4++) {
                    /* one output's Cov(H_{a1a2}, H_{a3a4}): [d12 d34 A + d13 d24 B + d14 d23 B]
                     * with every neuron index equal; A in (a1 m + a2) m^2 + a3 m + a4,
                     * B_{(a1a3)(a2a4)} in (a1 m + a3) m^2 + a2 m + a4 */
                    T->cov[I2(a1, a2) * m2 + I2(a3, a4)] =
                        A[I2(a1, a2) * m2 + I2(a3, a4)] + B[I2(a1, a3) * m2 + I2(a2, a4)] +
                        B[I2(a1, a4) * m2 + I2(a2, a3)];
                    /* E[Y_{a0;a1a2a3}] = R_{a0a1a2a3} + R_{a0a2a1a3} + R_{a0a3a1a2};
                     * E[Z_{a1a2;a3a4}] = (S + T + U)_{a1a2a3a4} */
                    T->ddI[I4(a1, a2, a3, a4)] =
                        R[I4(a1, a2, a3, a4)] + R[I4(a1, a3, a2, a4)] + R[I4(a1, a4, a2, a3)];
                    T->ddII[I4(a1, a2, a3, a4)] = S[I4(a1, a2, a3, a4)] + Tt[I4(a1, a2, a3, a4)] +
                                                  U[I4(a1, a2, a3, a4)];
                    if (pq == 2) {
                        /* the book's form: E[X_{a0;a1a2} z_a3] = Pb + Qb_{a0a1a2a3} + Qb_{a0a2a1a3} */
                        T->xz[I4(a1, a2, a3, a4)] =
                            P[I4(a1, a2, a3, a4)] + Q[I4(a1, a2, a3, a4)] + Q[I4(a1, a3, a2, a4)];
                    } else {
                        /* wick's form inverted (gd2.c): X_{a;bc} = (dH_{b;ac} + dH_{c;ba} -
                         * dH_{a;bc}) / 2, E[dH_{a0;a1a2} z_d] = P_{a0a1a2d} + P_{a0a2a1d} + Q_{a0a1a2d} */
#define HZ(x0, x1, x2) (P[I4(x0, x1, x2, a4)] + P[I4(x0, x2, x1, a4)] + Q[I4(x0, x1, x2, a4)])
                        T->xz[I4(a1, a2, a3, a4)] =
                            (HZ(a2, a1, a3) + HZ(a3, a2, a1) - HZ(a1, a2, a3)) / 2;
#undef HZ
                    }
                }
}

wick_status wick_gd_tensors_multi(const wick_theory_config *c, int m, int nt, const double *G0,
                                      int pq, wick_gd_multi_tensors *T) {
    if (!c || !G0 || !T) return wick_fail(WICK_EINVAL, "several-input GD tensors: null argument");
    if (m < 2 || m > 3 || nt < 1 || nt > 2)
        return wick_fail(WICK_EINVAL, "several-input GD tensors: %d inputs (%d training), expected "
                         "2 or 3 inputs with 1 or 2 training", m, nt);
    if (c->depth < 2 || c->depth > 4096)
        return wick_fail(WICK_EINVAL, "several-input GD tensors: depth %d, expected 2..4096", c->depth);
    if (pq < 0 || pq > 2)
        return wick_fail(WICK_EINVAL, "several-input GD tensors: dNTK form %d, expected 0..2", pq);
    size_t L = (size_t)c->depth, M2 = (size_t)(m * m), M4 = M2 * M2;
    size_t o2 = (L - 1) * M2, o4 = (L - 1) * M4;
    double K[MX * MX], Th[MX * MX];
    double *buf = wick_malloc(sizeof(double) * L * (M2 + M4 * 10));
    if (!buf) return wick_fail(WICK_ENOMEM, "several-input GD tensors: out of memory");
    double *T1 = buf, *A = T1 + M2 * L, *D = A + M4 * L, *F = D + M4 * L, *B = F + M4 * L,
           *P = B + M4 * L, *Q = P + M4 * L, *R = Q + M4 * L, *S = R + M4 * L, *Tt = S + M4 * L,
           *U = Tt + M4 * L;
    wick_status st = wick_gram_flow_last(c, G0, (size_t)m, K, Th);
    if (!st) st = th_gd_tensors_all(c, m, G0, pq, T1, A, D, F, B, P, Q, R, S, Tt, U);
    if (!st)
        fill(T, m, nt, K, Th, T1 + o2, A + o4, B + o4, P + o4, Q + o4, pq, R + o4, S + o4, Tt + o4,
             U + o4);
    wick_free(buf);
    return st;
}
