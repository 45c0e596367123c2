/* dntk2.c — the dNTK-preactivation correlators P and Q of two inputs (the
 * book's ch. 11, general sample indices; docs/theory-finite-width.md writes
 * out the recursion and its derivation).  With the dNTK
 *   dH_{i0i1i2;a0a1a2} = sum_mu lambda_mu dz_{i0;a0}/dth_mu dH_{i1i2;a1a2}/dth_mu,
 *   E[dH_{i0i1i2;a0a1a2} z_{i3;a3}] = [d01 d23 P_{a0a1a2a3} + d02 d13 P_{a0a2a1a3}
 *                                     + d03 d12 Q_{a0a1a2a3}] / n_{l-1},
 * the single-input P, Q of wick_theory_finite are the components with every
 * a equal (at that input's norm).
 *
 * Every layer needs two-input Gaussian expectations of products of sigma,
 * sigma', sigma'' and z.  sigma'' is a delta for the kinked activations, so
 * it is removed by Gaussian integration by parts before anything is
 * integrated: sigma'^d sigma'' = (sigma'^(d+1))'/(d+1) and sigma sigma'^d
 * sigma'' = [(sigma sigma'^(d+1))' - sigma'^(d+2)]/(d+1), then
 * <d_a X> = sum_g (K^-1)_ag <z_g X> (Stein).  What is left, <f(z_0) g(z_1)>
 * with f, g monomials z^m sigma^s sigma'^d, is one table per layer by a
 * composite Gauss-Legendre rule whose panels break at the kink of each
 * variable (so that the piecewise-polynomial integrands of the
 * scale-invariant class are integrated to rounding). */
#include "theory.h"
#include <math.h>
#include <string.h>

/* ---------------------------------------------------------------------------
 * Two-input moments <z0^m0 s0^s0 s0'^d0  z1^m1 s1^s1 s1'^d1>
 * ------------------------------------------------------------------------- */

#define MS 3   /* sigma powers 0..2 */
#define MD 5   /* sigma' powers 0..4 */
#define MM 3   /* z powers 0..2 */
#define NB (MS * MD * MM)
#define RULE_M 12     /* Legendre nodes per panel */
#define RULE_U 9.0    /* the rule covers |v| <= 9 standard deviations */
#define RULE_MAXN 4096

typedef struct {
    wick_act act;
    double k[3];          /* K00, K01, K11 */
    double Ki[2][2];      /* its inverse */
    double t[NB][NB];     /* <f_b0(z_0) f_b1(z_1)> */
    int no_delta;         /* a kink's sigma'' taken as 0 (the pathwise dNTK) */
    wick_status st;
} dmom;

static int bidx(int s, int d, int m) { return (s * MD + d) * MM + m; }

/* Nodes and weights of E[g(v)], v ~ N(0, 1), on [-U, U] in panels no wider
 * than h, one edge at `kink` (where the integrand is not smooth). */
static int rule_nodes(double kink, double h, const double *lx, const double *lw, double *x,
                      double *w) {
    double edges[2 * 4096];
    int ne = 0;
    int np = (int)ceil(2 * RULE_U / h);
    if (np > 300) np = 300;
    double hh = 2 * RULE_U / np;
    for (int i = 0; i <= np; i++) {
        double e = -RULE_U + i * hh;
        if (ne > 0 && edges[ne - 1] < kink && e > kink && kink > -RULE_U && kink < RULE_U)
            edges[ne++] = kink;
        edges[ne++] = e;
    }
    int n = 0;
    for (int p = 0; p + 1 < ne; p++) {
        double a = edges[p], b = edges[p + 1], c = 0.5 * (a + b), r = 0.5 * (b - a);
        if (!(r > 0)) continue;
        for (int i = 0; i < RULE_M; i++) {
            double v = c + r * lx[i];
            x[n] = v;
            w[n] = r * lw[i] * 0.39894228040143267794 * exp(-0.5 * v * v);
            n++;
        }
    }
    return n;
}

static void act3(wick_act a, double z, double *s, double *s1) {
    *s = wick_act_eval(a, z);
    *s1 = wick_act_deriv(a, z);
}

/* per-point monomials f_b(z), b = bidx(s, d, m) */
static void monos(wick_act a, double z, double *f) {
    double s, s1;
    act3(a, z, &s, &s1);
    double sp[MS], dp[MD], zp[MM];
    sp[0] = dp[0] = zp[0] = 1;
    for (int i = 1; i < MS; i++) sp[i] = sp[i - 1] * s;
    for (int i = 1; i < MD; i++) dp[i] = dp[i - 1] * s1;
    for (int i = 1; i < MM; i++) zp[i] = zp[i - 1] * z;
    for (int i = 0; i < MS; i++)
        for (int j = 0; j < MD; j++)
            for (int m = 0; m < MM; m++) f[bidx(i, j, m)] = sp[i] * dp[j] * zp[m];
}

static wick_status dmom_init(dmom *M, wick_act act, const double *k2) {
    memset(M, 0, sizeof *M);
    M->act = act;
    M->k[0] = k2[0]; M->k[1] = k2[1]; M->k[2] = k2[3];
    double det = M->k[0] * M->k[2] - M->k[1] * M->k[1];
    if (!(M->k[0] > 0) || !(M->k[2] > 0) || !(det > 1e-12 * M->k[0] * M->k[2]))
        return wick_fail(WICK_EINVAL, "two-input dNTK: the layer kernel [[%g, %g], [%g, %g]] is "
                         "singular (the inputs are parallel)", M->k[0], M->k[1], M->k[1], M->k[2]);
    M->Ki[0][0] = M->k[2] / det; M->Ki[1][1] = M->k[0] / det;
    M->Ki[0][1] = M->Ki[1][0] = -M->k[1] / det;
    const double *lx, *lw;
    wick_status st = th_legendre(RULE_M, &lx, &lw);
    if (st) return st;
    /* z_0 = s0 u, z_1 = rho z_0 + sc v; kinks at u = 0 and v = -rho z_0 / sc;
     * panels at most 1 in z (sin's period, tanh's curvature) and 0.75 in v */
    double s0 = sqrt(M->k[0]), rho = M->k[1] / M->k[0], sc = sqrt(det / M->k[0]);
    double hu = fmin(0.75, 1.0 / s0), hv = fmin(0.75, 1.0 / sc);
    static _Thread_local double ux[RULE_MAXN], uw[RULE_MAXN], vx[RULE_MAXN], vw[RULE_MAXN];
    int nu = rule_nodes(0.0, hu, lx, lw, ux, uw);
    double f0[NB], f1[NB], inner[NB];
    for (int iu = 0; iu < nu; iu++) {
        double z0 = s0 * ux[iu], m1 = rho * z0;
        int nv = rule_nodes(-m1 / sc, hv, lx, lw, vx, vw);
        memset(inner, 0, sizeof inner);
        for (int iv = 0; iv < nv; iv++) {
            monos(act, m1 + sc * vx[iv], f1);
            for (int b = 0; b < NB; b++) inner[b] += vw[iv] * f1[b];
        }
        monos(act, z0, f0);
        for (int a = 0; a < NB; a++) {
            double wa = uw[iu] * f0[a];
            for (int b = 0; b < NB; b++) M->t[a][b] += wa * inner[b];
        }
    }
    return WICK_OK;
}

/* A product of factors at the two samples: z^m sigma^s sigma'^d sigma''^e. */
typedef struct { int s[2], d[2], e[2], m[2]; } term;

enum { FS, FS1, FS2, FZ };
static term tm(int n, const int *smp, const int *kind) {
    term t;
    memset(&t, 0, sizeof t);
    for (int i = 0; i < n; i++) {
        int a = smp[i];
        if (kind[i] == FS) t.s[a]++;
        else if (kind[i] == FS1) t.d[a]++;
        else if (kind[i] == FS2) t.e[a]++;
        else t.m[a]++;
    }
    return t;
}

static double ev(dmom *M, term t);

static int trivial(const term *t, int a) { return !t->s[a] && !t->d[a] && !t->e[a] && !t->m[a]; }

/* <d_a X> by Stein: sum_g (K^-1)_ag <z_g X>, or <z_a X>/K_aa when X does not
 * depend on the other sample (exact there, and no inverse needed). */
static double dstein(dmom *M, term t, int a) {
    int b = 1 - a;
    if (trivial(&t, a) && !trivial(&t, b)) return 0;
    if (trivial(&t, b)) {
        t.m[a]++;
        return ev(M, t) / (a ? M->k[2] : M->k[0]);
    }
    double o = 0;
    for (int g = 0; g < 2; g++) {
        term u = t;
        u.m[g]++;
        o += M->Ki[a][g] * ev(M, u);
    }
    return o;
}

static double ev(dmom *M, term t) {
    int a = t.e[0] ? 0 : t.e[1] ? 1 : -1;
    if (a < 0) {
        for (int i = 0; i < 2; i++)
            if (t.s[i] >= MS || t.d[i] >= MD || t.m[i] >= MM) {
                if (!M->st)
                    M->st = wick_fail(WICK_EUNSUPPORTED, "two-input dNTK: moment outside the table");
                return 0;
            }
        return M->t[bidx(t.s[0], t.d[0], t.m[0])][bidx(t.s[1], t.d[1], t.m[1])];
    }
    if (M->no_delta) return 0;
    if (t.e[a] > 1 || t.e[1 - a] || t.s[a] > 1) {
        if (!M->st) M->st = wick_fail(WICK_EUNSUPPORTED, "two-input dNTK: two sigma'' factors");
        return 0;
    }
    /* sigma^s sigma'^d sigma'' = [(sigma^s sigma'^(d+1))' - s sigma'^(d+2)]/(d+1),
     * z^m Y' = (z^m Y)' - m z^(m-1) Y */
    double c = 1.0 / (t.d[a] + 1);
    term y = t;
    y.e[a] = 0; y.d[a]++;
    double o = dstein(M, y, a);
    if (t.m[a]) {
        term ym = y;
        ym.m[a]--;
        o -= t.m[a] * ev(M, ym);
    }
    if (t.s[a]) {
        term z = t;
        z.e[a] = 0; z.s[a] = 0; z.d[a] += 2;
        o -= ev(M, z);
    }
    return c * o;
}

/* <d_beta f> for a product f of two factors (kinds k0 at sample a, k1 at b) */
static double dst2(dmom *M, int a, int k0, int b, int k1, int beta) {
    return dstein(M, tm(2, (const int[]){a, b}, (const int[]){k0, k1}), beta);
}

static double e4(dmom *M, const int *smp, const int *kind) { return ev(M, tm(4, smp, kind)); }
static double e2(dmom *M, int a, int k0, int b, int k1) {
    return ev(M, tm(2, (const int[]){a, b}, (const int[]){k0, k1}));
}

#define I4(a0, a1, a2, a3) (8 * (a0) + 4 * (a1) + 2 * (a2) + (a3))
#define IF(a1, b1, a2, b2) ((2 * (a1) + (b1)) * 4 + 2 * (a2) + (b2))

static wick_status pq_two(const wick_theory_config *c, const double G0[4], int pathwise, double *P,
                          double *Q) {
    if (!c || !G0 || !P || !Q) return wick_fail(WICK_EINVAL, "two-input dNTK: no input or output");
    if (c->act.kind == WICK_ACT_PERCEPTRON)
        return wick_fail(WICK_EINVAL, "perceptron: the dNTK is undefined (its derivative is a "
                         "delta)");
    int L = c->depth;
    if (L < 1) return wick_fail(WICK_EINVAL, "two-input dNTK: depth %d", L);
    size_t Ls = (size_t)L;
    double *K = wick_malloc(sizeof(double) * 4 * Ls), *Th = wick_malloc(sizeof(double) * 4 * Ls);
    double *T1 = wick_malloc(sizeof(double) * 4 * Ls), *A = wick_malloc(sizeof(double) * 16 * Ls);
    double *D = wick_malloc(sizeof(double) * 16 * Ls), *F = wick_malloc(sizeof(double) * 16 * Ls);
    double *B = wick_malloc(sizeof(double) * 16 * Ls);
    dmom *M = wick_malloc(sizeof *M);
    wick_status st = WICK_OK;
    if (!K || !Th || !T1 || !A || !D || !F || !B || !M) {
        st = wick_fail(WICK_ENOMEM, "two-input dNTK: out of memory");
        goto out;
    }
    if ((st = wick_gram_flow(c, G0, 2, K, Th))) goto out;
    if (L > 1 && ((st = wick_ntk_fluct_two(c, G0, T1, A, D, F)) || (st = wick_ntk_B_two(c, G0, B))))
        goto out;
    double p[16] = {0}, q[16] = {0};
    for (int l = 1; l <= L; l++) {
        memcpy(P + 16 * (size_t)(l - 1), p, sizeof p);
        memcpy(Q + 16 * (size_t)(l - 1), q, sizeof q);
        if (l == L) break;
        const double *t = Th + 4 * (size_t)(l - 1), *f = F + 16 * (size_t)(l - 1),
                     *bb = B + 16 * (size_t)(l - 1);
        double cw = th_cw_at(c, l + 1), lw = th_lw_at(c, l + 1);
        double r = l == 1 ? 1.0 : th_width_at(c, l) / th_width_at(c, l - 1);
        if ((st = dmom_init(M, c->act, K + 4 * (size_t)(l - 1)))) goto out;
        double ap, am;
        M->no_delta = pathwise && th_scale_invariant(c->act, &ap, &am);
        double np_[16], nq[16];
        for (int a0 = 0; a0 < 2; a0++)
            for (int a1 = 0; a1 < 2; a1++)
                for (int a2 = 0; a2 < 2; a2++)
                    for (int a3 = 0; a3 < 2; a3++) {
                        /* P: the layer's own weights (lambda_W), the two-NTK
                         * sigma'' terms, the pair's off-diagonal NTK (F, B)
                         * and the carried P */
                        double gs[2], gsd[2], gds[2], sum;
                        for (int g = 0; g < 2; g++) {
                            gs[g] = dst2(M, a2, FS1, a3, FS, g);     /* <d_g (s'_a2 s_a3)> */
                            gsd[g] = dst2(M, a0, FS, a1, FS1, g);    /* <d_g (s_a0 s'_a1)> */
                            gds[g] = dst2(M, a0, FS1, a1, FS2, g);   /* <d_g (s'_a0 s''_a1)> */
                        }
                        double own = lw * cw * t[2 * a1 + a2] *
                                     e4(M, (const int[]){a0, a1, a2, a3}, (const int[]){FS, FS1, FS1, FS});
                        double two = cw * cw * t[2 * a1 + a2] *
                                     (t[2 * a0 + a1] * e4(M, (const int[]){a0, a1, a2, a3},
                                                          (const int[]){FS1, FS2, FS1, FS}) +
                                      t[2 * a0 + a2] * e4(M, (const int[]){a0, a1, a2, a3},
                                                          (const int[]){FS1, FS1, FS2, FS}));
                        double ownF = 0, twoF = 0, car = 0;
                        for (int be = 0; be < 2; be++)
                            for (int ga = 0; ga < 2; ga++) {
                                ownF += f[IF(a1, be, a2, ga)] * gsd[be] * gs[ga];
                                twoF += f[IF(a1, be, a2, ga)] * gds[be] * gs[ga];
                            }
                        for (int de = 0; de < 2; de++) car += p[I4(a0, a1, a2, de)] * gs[de];
                        double s1s1 = e2(M, a0, FS1, a1, FS1);
                        sum = own + two +
                              r * (lw * cw * ownF + cw * cw * t[2 * a0 + a1] * twoF +
                                   cw * cw * bb[IF(a0, a1, a2, a2)] * s1s1 * e2(M, a2, FS2, a3, FS) +
                                   cw * cw * s1s1 * car);
                        np_[I4(a0, a1, a2, a3)] = sum;
                        /* Q: the same four sources with i0 paired to i3 */
                        double h0[2], h1[2], h2[2], h3[2], h4[2];
                        for (int g = 0; g < 2; g++) {
                            h0[g] = dst2(M, a0, FS1, a3, FS, g);     /* <d_g (s'_a0 s_a3)> */
                            h1[g] = dst2(M, a1, FS1, a2, FS, g);     /* <d_g (s'_a1 s_a2)> */
                            h2[g] = dst2(M, a1, FS, a2, FS1, g);     /* <d_g (s_a1 s'_a2)> */
                            h3[g] = dst2(M, a1, FS2, a2, FS1, g);    /* <d_g (s''_a1 s'_a2)> */
                            h4[g] = dst2(M, a1, FS1, a2, FS2, g);    /* <d_g (s'_a1 s''_a2)> */
                        }
                        double qown = lw * cw *
                                      (t[2 * a0 + a1] * e4(M, (const int[]){a0, a3, a1, a2},
                                                           (const int[]){FS1, FS, FS1, FS}) +
                                       t[2 * a0 + a2] * e4(M, (const int[]){a0, a3, a1, a2},
                                                           (const int[]){FS1, FS, FS, FS1}));
                        double qtwo = cw * cw * t[2 * a1 + a2] *
                                      (t[2 * a0 + a1] * e4(M, (const int[]){a0, a3, a1, a2},
                                                           (const int[]){FS1, FS, FS2, FS1}) +
                                       t[2 * a0 + a2] * e4(M, (const int[]){a0, a3, a1, a2},
                                                           (const int[]){FS1, FS, FS1, FS2}));
                        double qownF = 0, qtwoF = 0, qcar = 0;
                        for (int be = 0; be < 2; be++)
                            for (int ga = 0; ga < 2; ga++) {
                                qownF += h0[be] * (f[IF(a0, be, a1, ga)] * h1[ga] +
                                                   f[IF(a0, be, a2, ga)] * h2[ga]);
                                qtwoF += h0[be] * (f[IF(a0, be, a1, ga)] * h3[ga] +
                                                   f[IF(a0, be, a2, ga)] * h4[ga]);
                            }
                        for (int de = 0; de < 2; de++) qcar += q[I4(a0, a1, a2, de)] * h0[de];
                        nq[I4(a0, a1, a2, a3)] =
                            qown + qtwo + r * (lw * cw * qownF + cw * cw * t[2 * a1 + a2] * qtwoF +
                                               cw * cw * e2(M, a1, FS1, a2, FS1) * qcar);
                    }
        if (M->st) { st = M->st; goto out; }
        memcpy(p, np_, sizeof p);
        memcpy(q, nq, sizeof q);
    }
out:
    wick_free(K); wick_free(Th); wick_free(T1); wick_free(A); wick_free(D); wick_free(F);
    wick_free(B); wick_free(M);
    return st;
}

wick_status wick_dntk_PQ_two(const wick_theory_config *c, const double G0[4], double *P, double *Q) {
    return pq_two(c, G0, 0, P, Q);
}

wick_status wick_dntk_PQ_two_pathwise(const wick_theory_config *c, const double G0[4], double *P,
                                      double *Q) {
    return pq_two(c, G0, 1, P, Q);
}
