/* ddntk2.c — the ddNTK means R, S, T, U of two inputs (the book's ch. 11,
 * §11.3), every sample-index placement, by their layer recursion
 * (derived in docs/theory-finite-width.md, "The ddNTKs of two inputs").
 * With G_{i;a} = lambda grad z_{i;a} and v_{ij;ab} = Hess(z_{i;a}) G_{j;b}:
 *   ddI_{i0i1i2i3;a0a1a2a3}  = D^3 z_{i0;a0} [G_{i1;a1}, G_{i2;a2}, G_{i3;a3}]
 *   ddII_{i1i2i3i4;a1a2a3a4} = < v_{i1i3;a1a3}, lambda v_{i2i4;a2a4} >
 *   E[ddI]  = [d01 d23 R_{a0a1a2a3} + d02 d13 R_{a0a2a1a3} + d03 d12 R_{a0a3a1a2}] / n_{l-1}
 *   E[ddII] = [d12 d34 S_{a1a2a3a4} + d13 d24 T_{a1a2a3a4} + d14 d23 U_{a1a2a3a4}] / n_{l-1}
 * (R_{a0a1a2a3} = R_{a0a1a3a2}).  The components with every a equal are
 * wick_theory_ddntk's single-input R, S, T, U.
 *
 * The recursion needs the dNTK correlators in the book's form (sigma''
 * on the differentiated leg), which wick's P, Q (wick_dntk_PQ_two) do not
 * determine for two inputs (Q only gives Qb symmetrised), so they are
 * carried here by their own recursion (wick_dntk_PQb_two):
 *   E[D^2 z_{i0;a0}[G_{i1;a1}, G_{i2;a2}] z_{i3;a3}]
 *     = [d03 d12 Pb_{a0a1a2a3} + d01 d23 Qb_{a0a1a2a3} + d02 d13 Qb_{a0a2a1a3}] / n_{l-1}.
 *
 * Gaussian moments: no K^-1 is used (the correlations of a tensor with a
 * function of a neuron's preactivations are written as <d_b f> against the
 * tensor's linear correlator, Stein's lemma), so coincident inputs work.
 * Smooth activations: a 2-D trapezoid rule in whitened coordinates (an
 * analytic integrand: exponentially accurate).  The scale-invariant class
 * (linear, ReLU, leaky ReLU) is taken pathwise, sigma'' = sigma''' = 0 a.e.
 * (what a network's exact derivatives see, as in ddntk.c); its moments are
 * r^k times a piecewise trigonometric integrand in polar coordinates,
 * integrated by Gauss-Legendre between the kinks' angles. */
#include "theory.h"
#include <math.h>
#include <string.h>

#define I4(a, b, c, d) (8 * (a) + 4 * (b) + 2 * (c) + (d))
/* E[H_{jk;c1c2} H_{jk;c3c4}] n = B[(2c1+c3)*4 + 2c2+c4]  (wick_ntk_B_two);
 * E[dH_{jk;c1c2} z_{j;c3} z_{k;c4}] n = F alike (wick_ntk_fluct_two) */
#define BV(B, c1, c2, c3, c4) ((B)[(2 * (c1) + (c3)) * 4 + 2 * (c2) + (c4)])

enum { GN = 161 };              /* trapezoid nodes per axis, u in [-10, 10] */
#define GU 10.0
enum { PN = 24 };               /* Gauss-Legendre nodes per angular piece */

typedef struct {
    int si;                     /* scale-invariant: polar rule */
    double ap, am;
    double k0, rho, tau;        /* z0 = k0 u, z1 = rho u + tau v */
    size_t nn;                  /* trapezoid: nodes */
    double *w, *D;              /* weights, D[(node*2 + a)*5 + d] = sigma^(d)(z_a), d = 4: z_a */
    double Ki[4];               /* scale-invariant: K^-1 (Stein's lemma) */
    int np;                     /* polar: nodes */
    double pw[8 * PN], pc[8 * PN][2];  /* weight, (z0, z1) at r = 1 */
} gmom;

static const double gl_x[PN / 2] = {
    0.0640568928626056260850431, 0.1911188674736163091586398, 0.3150426796961633743867933,
    0.4337935076260451384870842, 0.5454214713888395356583757, 0.6480936519369755692524958,
    0.7401241915785543642438281, 0.8200019859739029219539499, 0.8864155270044010342131543,
    0.9382745520027327585236777, 0.9747285559713094981983919, 0.9951872199970213601799974};
static const double gl_w[PN / 2] = {
    0.1279381953467521569740561, 0.1258374563468282961213754, 0.1216704729278033912044632,
    0.1155056680537256013533445, 0.1074442701159656347825773, 0.0976186521041138882698807,
    0.0861901615319532759171499, 0.0733464814110803057340336, 0.0592985849154367807463678,
    0.0442774388174198061686027, 0.0285313886289336631813078, 0.0123412297999871995468057};

static int cmpd(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static wick_status gm_init(gmom *M, wick_act act, const double K[4]) {
    if (!(K[0] > 0) || !(K[3] > 0))
        return wick_fail(WICK_EINVAL, "two-input ddNTK: variances %g, %g must be positive", K[0], K[3]);
    M->k0 = sqrt(K[0]);
    M->rho = K[1] / M->k0;
    double t2 = K[3] - M->rho * M->rho;
    M->tau = t2 > 0 ? sqrt(t2) : 0;
    M->si = th_scale_invariant(act, &M->ap, &M->am);
    if (M->si) {
        /* <d_b f> by Stein, K^-1 <z f>: the kinks' deltas are in it (a
         * Gaussian integration by parts needs the distributional derivative,
         * whatever convention the network's own sigma'' takes) */
        double det = K[0] * K[3] - K[1] * K[1];
        if (!(det > 1e-12 * K[0] * K[3]))
            return wick_fail(WICK_EINVAL, "two-input ddNTK: parallel inputs (the kernel is singular)");
        M->Ki[0] = K[3] / det; M->Ki[1] = M->Ki[2] = -K[1] / det; M->Ki[3] = K[0] / det;
        /* kinks where z0 = 0 (phi = +-pi/2) and z1 = 0 */
        double br[6];
        int nb = 0;
        br[nb++] = -M_PI; br[nb++] = -M_PI / 2; br[nb++] = M_PI / 2; br[nb++] = M_PI;
        double p = atan2(-M->rho, M->tau);  /* rho cos + tau sin = 0 */
        br[nb++] = p; br[nb++] = p > 0 ? p - M_PI : p + M_PI;
        qsort(br, (size_t)nb, sizeof *br, cmpd);
        M->np = 0;
        for (int i = 0; i + 1 < nb; i++) {
            double lo = br[i], hi = br[i + 1], c = 0.5 * (lo + hi), h = 0.5 * (hi - lo);
            if (!(h > 0)) continue;
            for (int j = 0; j < PN; j++) {
                double x = j < PN / 2 ? -gl_x[j] : gl_x[j - PN / 2];
                double wgt = gl_w[j < PN / 2 ? j : j - PN / 2];
                double phi = c + h * x;
                M->pw[M->np] = h * wgt;
                M->pc[M->np][0] = M->k0 * cos(phi);
                M->pc[M->np][1] = M->rho * cos(phi) + M->tau * sin(phi);
                M->np++;
            }
        }
        return WICK_OK;
    }
    double du = 2 * GU / (GN - 1);
    size_t k = 0;
    for (int i = 0; i < GN; i++)
        for (int j = 0; j < GN; j++, k++) {
            double u = -GU + du * i, v = -GU + du * j;
            M->w[k] = exp(-0.5 * (u * u + v * v)) * du * du / (2 * M_PI);
            double z[2] = {M->k0 * u, M->rho * u + M->tau * v};
            for (int a = 0; a < 2; a++) {
                double *d = M->D + (k * 2 + (size_t)a) * 5;
                d[0] = wick_act_eval(act, z[a]);
                d[1] = wick_act_deriv(act, z[a]);
                d[2] = wick_act_deriv2(act, z[a]);
                d[3] = wick_act_deriv3(act, z[a]);
                d[4] = z[a];
            }
        }
    M->nn = k;
    return WICK_OK;
}

/* < prod_i sigma^(d_i)(z_{a_i}) >, n factors */
static double gm(const gmom *M, int n, const int *a, const int *d) {
    if (M->si) {
        int k = 0;
        for (int i = 0; i < n; i++) {
            if (d[i] == 2 || d[i] == 3) return 0.0;  /* pathwise: sigma'' = sigma''' = 0 a.e. */
            k += d[i] == 0 || d[i] == 4;
        }
        double ang = 0;
        for (int j = 0; j < M->np; j++) {
            double p = M->pw[j];
            for (int i = 0; i < n; i++) {
                double z = M->pc[j][a[i]], sl = z >= 0 ? M->ap : M->am;
                p *= d[i] == 4 ? z : d[i] == 0 ? sl * z : sl;
            }
            ang += p;
        }
        /* int_0^inf r^(k+1) e^(-r^2/2) dr / (2 pi) */
        return ang * pow(2.0, 0.5 * k) * tgamma(0.5 * k + 1) / (2 * M_PI);
    }
    double s = 0;
    for (size_t k = 0; k < M->nn; k++) {
        double p = M->w[k];
        for (int i = 0; i < n; i++) p *= M->D[(k * 2 + (size_t)a[i]) * 5 + d[i]];
        s += p;
    }
    return s;
}

#define G2(M, a0, d0, a1, d1) gm(M, 2, (const int[]){a0, a1}, (const int[]){d0, d1})
#define G4(M, a0, d0, a1, d1, a2, d2, a3, d3) \
    gm(M, 4, (const int[]){a0, a1, a2, a3}, (const int[]){d0, d1, d2, d3})

/* < d/dz_b (sigma^(d0)(z_a0) sigma^(d1)(z_a1)) > */
static double gd2(const gmom *M, int b, int a0, int d0, int a1, int d1) {
    double s = 0;
    if (M->si) {
        for (int c = 0; c < 2; c++)
            s += M->Ki[2 * b + c] * gm(M, 3, (const int[]){c, a0, a1}, (const int[]){4, d0, d1});
        return s;
    }
    if (a0 == b) s += G2(M, a0, d0 + 1, a1, d1);
    if (a1 == b) s += G2(M, a0, d0, a1, d1 + 1);
    return s;
}

/* Everything per layer; Pb, Qb, R, S, T, U may be NULL where not wanted. */
static wick_status dd2(const wick_theory_config *c, const double G0[4], double *oPb, double *oQb,
                       double *oR, double *oS, double *oT, double *oU) {
    if (!c || !G0) return wick_fail(WICK_EINVAL, "two-input ddNTK: no configuration or Gram");
    if (c->act.kind == WICK_ACT_PERCEPTRON)
        return wick_fail(WICK_EINVAL, "perceptron: the ddNTKs are undefined (its derivative is "
                         "a delta)");
    int L = c->depth;
    if (L < 1) return wick_fail(WICK_EINVAL, "two-input ddNTK: depth %d", L);
    size_t Ls = (size_t)L, nn = (size_t)GN * GN;
    double *K = wick_malloc(sizeof(double) * 4 * Ls), *Th = wick_malloc(sizeof(double) * 4 * Ls);
    double *T1 = wick_malloc(sizeof(double) * 4 * Ls), *A = wick_malloc(sizeof(double) * 16 * Ls);
    double *D = wick_malloc(sizeof(double) * 16 * Ls), *F = wick_malloc(sizeof(double) * 16 * Ls);
    double *B = wick_malloc(sizeof(double) * 16 * Ls);
    gmom *M = wick_malloc(sizeof *M);
    double *mw = wick_malloc(sizeof(double) * nn), *mD = wick_malloc(sizeof(double) * nn * 10);
    wick_status st = WICK_OK;
    if (!K || !Th || !T1 || !A || !D || !F || !B || !M || !mw || !mD) {
        st = wick_fail(WICK_ENOMEM, "two-input ddNTK: out of memory");
        goto out;
    }
    M->w = mw; M->D = mD;
    if ((st = wick_gram_flow(c, G0, 2, K, Th))) goto out;
    memset(F, 0, sizeof(double) * 16 * Ls);
    memset(B, 0, sizeof(double) * 16 * Ls);
    if (L > 1 && ((st = wick_ntk_B_two(c, G0, B)) || (st = wick_ntk_fluct_two(c, G0, T1, A, D, F))))
        goto out;
    double pb[16] = {0}, qb[16] = {0}, R[16] = {0}, S[16] = {0}, T[16] = {0}, U[16] = {0};
    for (int l = 1; l <= L; l++) {
        size_t o = 16 * (size_t)(l - 1);
        if (oPb) memcpy(oPb + o, pb, sizeof pb);
        if (oQb) memcpy(oQb + o, qb, sizeof qb);
        if (oR) memcpy(oR + o, R, sizeof R);
        if (oS) memcpy(oS + o, S, sizeof S);
        if (oT) memcpy(oT + o, T, sizeof T);
        if (oU) memcpy(oU + o, U, sizeof U);
        if (l == L) break;
        const double *t = Th + 4 * (size_t)(l - 1), *f = F + o, *bb = B + o;
        double C = th_cw_at(c, l + 1), lw = th_lw_at(c, l + 1);
        double r = l == 1 ? 1.0 : th_width_at(c, l) / th_width_at(c, l - 1);  /* n_l / n_{l-1} */
        if ((st = gm_init(M, c->act, K + 4 * (size_t)(l - 1)))) goto out;
        double h[4];   /* <s'_a s'_b> */
        for (int a = 0; a < 2; a++)
            for (int b = 0; b < 2; b++) h[2 * a + b] = G2(M, a, 1, b, 1);
#define TH(a, b) t[2 * (a) + (b)]
#define HH(a, b) h[2 * (a) + (b)]
        double npb[16], nqb[16], nR[16], nS[16], nT[16], nU[16];
        for (int a0 = 0; a0 < 2; a0++)
            for (int a1 = 0; a1 < 2; a1++)
                for (int a2 = 0; a2 < 2; a2++)
                    for (int a3 = 0; a3 < 2; a3++) {
                        int ix = I4(a0, a1, a2, a3);
                        /* Pb_{a0a1a2a3}: D^2 z_{j;a0}[G_{k;a1}, G_{k;a2}] z_{j;a3}
                         * (no own-weight term: the W slot needs row j = k) */
                        double car = 0;
                        for (int b = 0; b < 2; b++) car += pb[I4(a0, a1, a2, b)] * gd2(M, b, a0, 1, a3, 0);
                        npb[ix] = C * C * (TH(a0, a1) * TH(a0, a2) * G4(M, a0, 2, a1, 1, a2, 1, a3, 0) +
                                           r * HH(a1, a2) * (G2(M, a0, 2, a3, 0) * BV(bb, a0, a1, a0, a2) + car));
                        /* Qb_{a0a1a2a3}: D^2 z_{k;a0}[G_{k;a1}, G_{j;a2}] z_{j;a3} */
                        double fq = 0, cq = 0;
                        for (int b = 0; b < 2; b++)
                            for (int d = 0; d < 2; d++)
                                fq += BV(f, a0, a2, b, d) *
                                      (lw * C * gd2(M, b, a0, 1, a1, 0) + C * C * TH(a0, a1) * gd2(M, b, a0, 2, a1, 1)) *
                                      gd2(M, d, a2, 1, a3, 0);
                        for (int d = 0; d < 2; d++) cq += qb[I4(a0, a1, a2, d)] * gd2(M, d, a2, 1, a3, 0);
                        nqb[ix] = lw * C * TH(a0, a2) * G4(M, a0, 1, a1, 0, a2, 1, a3, 0) +
                                  C * C * TH(a0, a1) * TH(a0, a2) * G4(M, a0, 2, a1, 1, a2, 1, a3, 0) +
                                  r * fq + r * C * C * HH(a0, a1) * cq;
                        /* R_{a0a1a2a3}: D^3 z_{I;a0}[G_{I;a1}, G_{M;a2}, G_{M;a3}] */
                        double pr = 0;
                        for (int b = 0; b < 2; b++)
                            pr += pb[I4(a0, a2, a3, b)] * (C * C * TH(a0, a1) * gd2(M, b, a0, 2, a1, 1) +
                                                           lw * C * gd2(M, b, a0, 1, a1, 0));
                        nR[ix] = C * C * TH(a0, a1) * TH(a0, a2) * TH(a0, a3) * G4(M, a0, 3, a1, 1, a2, 1, a3, 1) +
                                 lw * C * TH(a0, a2) * TH(a0, a3) * G4(M, a0, 2, a1, 0, a2, 1, a3, 1) +
                                 r * HH(a2, a3) *
                                     ((C * C * TH(a0, a1) * G2(M, a0, 3, a1, 1) + lw * C * G2(M, a0, 2, a1, 0)) *
                                          BV(bb, a0, a2, a0, a3) +
                                      pr + C * C * HH(a0, a1) * R[ix]);
                        /* S_{a1a2a3a4} (here a0..a3 stand for a1..a4): d12 d34 */
                        nS[ix] = lw * C * TH(a0, a2) * TH(a1, a3) * G4(M, a0, 1, a1, 1, a2, 1, a3, 1) +
                                 C * C * TH(a0, a1) * TH(a0, a2) * TH(a1, a3) * G4(M, a0, 2, a1, 2, a2, 1, a3, 1) +
                                 r * HH(a2, a3) *
                                     ((lw * C * HH(a0, a1) + C * C * TH(a0, a1) * G2(M, a0, 2, a1, 2)) *
                                          BV(bb, a0, a2, a1, a3) +
                                      C * C * HH(a0, a1) * S[ix]);
                        /* T: d13 d24.  at(z) = C Th13 s''_1 s'_3 + lw s'_1 s_3, bt alike
                         * with (2, 4); <at bt> expanded, <d_b at> by parts */
                        double t13 = C * TH(a0, a2), t24 = C * TH(a1, a3);
                        double ab = t13 * t24 * G4(M, a0, 2, a2, 1, a1, 2, a3, 1) +
                                    t13 * lw * G4(M, a0, 2, a2, 1, a1, 1, a3, 0) +
                                    lw * t24 * G4(M, a0, 1, a2, 0, a1, 2, a3, 1) +
                                    lw * lw * G4(M, a0, 1, a2, 0, a1, 1, a3, 0);
                        double da[2], db[2];
                        for (int b = 0; b < 2; b++) {
                            da[b] = t13 * gd2(M, b, a0, 2, a2, 1) + lw * gd2(M, b, a0, 1, a2, 0);
                            db[b] = t24 * gd2(M, b, a1, 2, a3, 1) + lw * gd2(M, b, a1, 1, a3, 0);
                        }
                        double ft = 0, q1 = 0, q2 = 0;
                        for (int b = 0; b < 2; b++) {
                            for (int d = 0; d < 2; d++) ft += BV(f, a0, a1, b, d) * da[b] * db[d];
                            q1 += qb[I4(a1, a3, a0, b)] * da[b];
                            q2 += qb[I4(a0, a2, a1, b)] * db[b];
                        }
                        nT[ix] = TH(a0, a1) * ab + r * ft + r * C * (HH(a1, a3) * q1 + HH(a0, a2) * q2) +
                                 r * C * C * HH(a0, a2) * HH(a1, a3) * T[ix];
                        /* U: d14 d23 */
                        nU[ix] = C * C * TH(a0, a1) * TH(a0, a2) * TH(a1, a3) * G4(M, a0, 2, a1, 2, a2, 1, a3, 1) +
                                 r * C * C * HH(a0, a3) * HH(a1, a2) * U[ix];
                    }
#undef TH
#undef HH
        memcpy(pb, npb, sizeof pb); memcpy(qb, nqb, sizeof qb);
        memcpy(R, nR, sizeof R); memcpy(S, nS, sizeof S); memcpy(T, nT, sizeof T); memcpy(U, nU, sizeof U);
    }
out:
    wick_free(K); wick_free(Th); wick_free(T1); wick_free(A); wick_free(D); wick_free(F);
    wick_free(B); wick_free(M); wick_free(mw); wick_free(mD);
    return st;
}

wick_status wick_dntk_PQb_two(const wick_theory_config *c, const double G0[4], double *Pb, double *Qb) {
    if (!Pb || !Qb) return wick_fail(WICK_EINVAL, "two-input dNTK (book form): no output");
    return dd2(c, G0, Pb, Qb, NULL, NULL, NULL, NULL);
}

wick_status wick_theory_ddntk_two(const wick_theory_config *c, const double G0[4], double *R, double *S,
                                  double *T, double *U) {
    if (!R || !S || !T || !U) return wick_fail(WICK_EINVAL, "two-input ddNTK: no output");
    return dd2(c, G0, NULL, NULL, R, S, T, U);
}
