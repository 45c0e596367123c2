/* multi.c — the order-1/n tensors of m inputs (m = 2 or 3): the vertex, the
 * subleading kernel K1 (the book's ch. 4), the NTK's mean shift, variance
 * and correlations T1, A, B, D, F (ch. 8), the dNTK correlators P, Q and
 * Pb, Qb and the ddNTK means R, S, T, U (ch. 11).  Each recursion is the
 * two-input one (flow.c's wick_vertex2, finite.c, dntk2.c, ddntk2.c) with
 * every sample index running over 0..m-1 (docs/theory-finite-width.md,
 * "Three inputs"): a tensor's entries that involve two inputs only are
 * closed under the recursion, so they are the two-input function's on that
 * pair's sub-Gram.
 *
 * What is new is the Gaussian expectation of a product over three distinct
 * preactivations (with m = 3, a four-index product such as
 * <sigma_a sigma_a sigma_b sigma_c>).  The moment engine here (mm_*) takes
 * any product of z, sigma, sigma', sigma'', sigma''' over one to three
 * samples:
 *   - scale-invariant class (linear, ReLU, leaky ReLU): the integrand is
 *     positively homogeneous of degree k and piecewise polynomial, so
 *     E = E[r^k] (chi with d degrees of freedom) times its mean over the
 *     unit sphere in whitened coordinates z = L w (L the Cholesky factor);
 *     the sphere is cut where a z_a changes sign (in spherical angles
 *     (phi, psi) with w = (sin psi cos phi, sin psi sin phi, cos psi), z_0
 *     and z_1 change sign at fixed phi and z_2 at one psi(phi)), and each
 *     piece integrated by Gauss-Legendre: exact up to rounding.  sigma'' is
 *     0 there (pathwise) or a delta removed by Gaussian integration by
 *     parts (wick_dntk_PQ_multi, as dntk2.c does);
 *   - smooth activations: a tensor trapezoid rule in the whitened
 *     coordinates (analytic integrand: exponentially accurate in the step).
 * <d_a f> (the correlation of a tensor with a function of the next layer's
 * preactivations) is Stein's lemma on the samples f depends on,
 * sum_g (K_S^-1)_ag <z_g f>.  The one- and two-sample moments of the
 * K1 / NTK recursions use finite.c's and gauss.c's functions as the
 * two-input code does, so those entries agree with it to rounding. */
#include "theory.h"
#include <math.h>
#include <stdint.h>
#include <string.h>

#define MMAX 3

/* ---------------------------------------------------------------------------
 * The moment engine
 * ------------------------------------------------------------------------- */

enum { FS = 0, FS1, FS2, FS3, FZ, NKIND };
static const int kind_max[NKIND] = {7, 7, 3, 3, 7};

/* A product over up to three distinct samples, sorted ascending. */
typedef struct { int n, smp[MMAX], c[MMAX][NKIND]; } term;

/* One subset of the samples: its quadrature nodes (z per sample at each
 * node: on the unit sphere for the scale-invariant class, else the
 * trapezoid's points) and weights, and sigma^(k)(z) per node for the
 * smooth activations. */
typedef struct {
    int built, n, nn;
    double *w, *z;     /* w[node], z[node * n + j] */
    double *val;       /* smooth: val[(node * n + j) * NKIND + k] = sigma^(k)(z) (k < 4), z (k = FZ) */
    double Ki[MMAX][MMAX];
} subset;

#define HSIZE 8192
typedef struct {
    wick_act act;
    int si, m, delta;          /* delta: a kink's sigma'' is a delta (integration by parts) */
    double ap, am;
    double K[MMAX][MMAX];
    subset sub[1 << MMAX];     /* by bit mask of the samples */
    uint64_t key[HSIZE];
    double hval[HSIZE];
    wick_status st;
} mm;

static void mm_fail(mm *M, wick_status s) {
    if (s && !M->st) M->st = s;
}

static void mm_free(mm *M) {
    if (!M) return;
    for (int i = 0; i < (1 << MMAX); i++) {
        wick_free(M->sub[i].w); wick_free(M->sub[i].z); wick_free(M->sub[i].val);
    }
    wick_free(M);
}

/* A new layer: the kernel Kl (m x m) and the engine's mode. */
static void mm_layer(mm *M, wick_act act, int m, const double *Kl, int delta) {
    for (int i = 0; i < (1 << MMAX); i++) M->sub[i].built = 0;
    memset(M->key, 0, sizeof M->key);
    M->act = act; M->m = m; M->delta = delta;
    M->si = th_scale_invariant(act, &M->ap, &M->am);
    for (int a = 0; a < m; a++)
        for (int b = 0; b < m; b++) M->K[a][b] = Kl[a * m + b];
}

static const double gl24_x[12] = {
    0.0640568928626056260850431, 0.1911188674736163091586398, 0.3150426796961633743867933,
    0.4337935076260451384870842, 0.5454214713888395356583757, 0.6480936519369755692524958,
    0.7401241915785543642438281, 0.8200019859739029219539499, 0.8864155270044010342131543,
    0.9382745520027327585236777, 0.9747285559713094981983919, 0.9951872199970213601799974};
static const double gl24_w[12] = {
    0.1279381953467521569740561, 0.1258374563468282961213754, 0.1216704729278033912044632,
    0.1155056680537256013533445, 0.1074442701159656347825773, 0.0976186521041138882698807,
    0.0861901615319532759171499, 0.0733464814110803057340336, 0.0592985849154367807463678,
    0.0442774388174198061686027, 0.0285313886289336631813078, 0.0123412297999871995468057};
static void gl24(int j, double lo, double hi, double *x, double *w) {
    double c = 0.5 * (lo + hi), h = 0.5 * (hi - lo);
    *x = c + h * (j < 12 ? -gl24_x[11 - j] : gl24_x[j - 12]);
    *w = h * gl24_w[j < 12 ? 11 - j : j - 12];
}

static int cmpd(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* phi in [-pi, pi] cut at +-pi/2 (z_0 = 0) and where l0 cos + l1 sin = 0
 * (z_1 = 0); returns the number of breaks (sorted, from -pi to pi) */
static int phi_breaks(double l0, double l1, int with1, double *br) {
    int nb = 0;
    br[nb++] = -M_PI; br[nb++] = -M_PI / 2; br[nb++] = M_PI / 2; br[nb++] = M_PI;
    if (with1) {
        double p = atan2(-l0, l1);
        br[nb++] = p; br[nb++] = p > 0 ? p - M_PI : p + M_PI;
    }
    qsort(br, (size_t)nb, sizeof *br, cmpd);
    return nb;
}

/* Cholesky factor of the subset's kernel (row-major, lower) and its inverse
 * kernel; 0 when not positive definite */
static int chol(int n, double Ks[MMAX][MMAX], double L[MMAX][MMAX], double Ki[MMAX][MMAX]) {
    memset(L, 0, sizeof(double) * MMAX * MMAX);
    for (int i = 0; i < n; i++)
        for (int j = 0; j <= i; j++) {
            double s = Ks[i][j];
            for (int k = 0; k < j; k++) s -= L[i][k] * L[j][k];
            if (i == j) {
                if (!(s > 1e-13 * Ks[i][i])) return 0;
                L[i][i] = sqrt(s);
            } else {
                L[i][j] = s / L[j][j];
            }
        }
    /* K^-1 = L^-T L^-1 */
    double Li[MMAX][MMAX] = {{0}};
    for (int j = 0; j < n; j++) {
        Li[j][j] = 1 / L[j][j];
        for (int i = j + 1; i < n; i++) {
            double s = 0;
            for (int k = j; k < i; k++) s -= L[i][k] * Li[k][j];
            Li[i][j] = s / L[i][i];
        }
    }
    for (int a = 0; a < n; a++)
        for (int b = 0; b < n; b++) {
            double s = 0;
            for (int k = 0; k < n; k++) s += Li[k][a] * Li[k][b];
            Ki[a][b] = s;
        }
    return 1;
}

/* trapezoid nodes per axis for the smooth rule, over u in [-U, U] */
static const int trap_n[4] = {0, 401, 161, 51};
#define TRAP_U1 10.0
#define TRAP_U3 7.5

static subset *mm_subset(mm *M, const term *t) {
    int mask = 0;
    for (int j = 0; j < t->n; j++) mask |= 1 << t->smp[j];
    subset *S = &M->sub[mask];
    if (S->built) return S;
    int n = t->n;
    double Ks[MMAX][MMAX], L[MMAX][MMAX];
    for (int i = 0; i < n; i++)
        for (int j = 0; j < n; j++) Ks[i][j] = M->K[t->smp[i]][t->smp[j]];
    if (!chol(n, Ks, L, S->Ki)) {
        mm_fail(M, wick_fail(WICK_EINVAL, "m-input tensors: the layer kernel of %d inputs is "
                             "singular (parallel inputs)", n));
        return NULL;
    }
    size_t cap;
    if (M->si) cap = n == 1 ? 2 : n == 2 ? 6 * 24 : 6 * 24 * 48;
    else {
        cap = 1;
        for (int j = 0; j < n; j++) cap *= (size_t)trap_n[n];
    }
    if (S->n != n || (size_t)S->nn < cap || !S->w) {
        wick_free(S->w); wick_free(S->z); wick_free(S->val);
        S->w = wick_malloc(sizeof(double) * cap);
        S->z = wick_malloc(sizeof(double) * cap * (size_t)n);
        S->val = M->si ? NULL : wick_malloc(sizeof(double) * cap * (size_t)n * NKIND);
        if (!S->w || !S->z || (!M->si && !S->val)) {
            mm_fail(M, wick_fail(WICK_ENOMEM, "m-input tensors: out of memory for quadrature"));
            S->nn = 0;
            return NULL;
        }
    }
    S->n = n;
    int nn = 0;
    if (M->si) {
        if (n == 1) {
            S->z[0] = L[0][0]; S->w[0] = 0.5;
            S->z[1] = -L[0][0]; S->w[1] = 0.5;
            nn = 2;
        } else if (n == 2) {
            double br[6];
            int nb = phi_breaks(L[1][0], L[1][1], 1, br);
            for (int i = 0; i + 1 < nb; i++) {
                if (!(br[i + 1] > br[i])) continue;
                for (int j = 0; j < 24; j++) {
                    double ph, wt;
                    gl24(j, br[i], br[i + 1], &ph, &wt);
                    double c = cos(ph), s = sin(ph);
                    S->w[nn] = wt / (2 * M_PI);
                    S->z[nn * 2] = L[0][0] * c;
                    S->z[nn * 2 + 1] = L[1][0] * c + L[1][1] * s;
                    nn++;
                }
            }
        } else {
            double br[6];
            int nb = phi_breaks(L[1][0], L[1][1], 1, br);
            for (int i = 0; i + 1 < nb; i++) {
                if (!(br[i + 1] > br[i])) continue;
                for (int j = 0; j < 24; j++) {
                    double ph, wp;
                    gl24(j, br[i], br[i + 1], &ph, &wp);
                    double c = cos(ph), s = sin(ph);
                    /* z_2 = 0 at cot psi = -(L20 cos + L21 sin) / L22 */
                    double ps = atan2(L[2][2], -(L[2][0] * c + L[2][1] * s));
                    for (int h = 0; h < 2; h++)
                        for (int k = 0; k < 24; k++) {
                            double psi, wq;
                            gl24(k, h ? ps : 0, h ? M_PI : ps, &psi, &wq);
                            double sp = sin(psi), w0 = sp * c, w1 = sp * s, w2 = cos(psi);
                            S->w[nn] = wp * wq * sp / (4 * M_PI);
                            S->z[nn * 3] = L[0][0] * w0;
                            S->z[nn * 3 + 1] = L[1][0] * w0 + L[1][1] * w1;
                            S->z[nn * 3 + 2] = L[2][0] * w0 + L[2][1] * w1 + L[2][2] * w2;
                            nn++;
                        }
                }
            }
        }
    } else {
        int N = trap_n[n];
        double U = n == 3 ? TRAP_U3 : TRAP_U1, du = 2 * U / (N - 1);
        double w1 = du / sqrt(2 * M_PI);
        int idx[MMAX] = {0, 0, 0};
        for (;;) {
            double u[MMAX], wt = 1;
            for (int j = 0; j < n; j++) {
                u[j] = -U + du * idx[j];
                wt *= w1 * exp(-0.5 * u[j] * u[j]);
            }
            S->w[nn] = wt;
            for (int a = 0; a < n; a++) {
                double z = 0;
                for (int j = 0; j <= a; j++) z += L[a][j] * u[j];
                S->z[nn * n + a] = z;
                double *v = S->val + ((size_t)nn * n + a) * NKIND;
                if (M->act.kind == WICK_ACT_TANH) {  /* one tanh for all four */
                    double th = tanh(z), d = 1 - th * th;
                    v[0] = th; v[1] = d; v[2] = -2 * th * d; v[3] = -2 * d * (1 - 3 * th * th);
                } else {
                    v[0] = wick_act_eval(M->act, z);
                    v[1] = wick_act_deriv(M->act, z);
                    v[2] = wick_act_deriv2(M->act, z);
                    v[3] = wick_act_deriv3(M->act, z);
                }
                v[FZ] = z;
            }
            nn++;
            int j = n - 1;
            while (j >= 0 && ++idx[j] == N) idx[j--] = 0;
            if (j < 0) break;
        }
    }
    S->nn = nn;
    S->built = 1;
    return S;
}

static void compact(term *t) {
    int k = 0;
    for (int j = 0; j < t->n; j++) {
        int any = 0;
        for (int f = 0; f < NKIND; f++) any |= t->c[j][f];
        if (!any) continue;
        if (k != j) {
            t->smp[k] = t->smp[j];
            memcpy(t->c[k], t->c[j], sizeof t->c[j]);
        }
        k++;
    }
    t->n = k;
}

/* <prod> with sigma'' = sigma''' = 0 for the scale-invariant class */
/* The layer's cache: a slot for key (never 0), *found when it holds it. */
static size_t hslot(mm *M, uint64_t key, int *found) {
    size_t h = (size_t)((key * 0x9E3779B97F4A7C15ull) >> 51) & (HSIZE - 1);
    int probes = 0;
    while (M->key[h] && M->key[h] != key && probes++ < HSIZE / 2) h = (h + 1) & (HSIZE - 1);
    *found = M->key[h] == key;
    return h;
}
static void hput(mm *M, size_t h, uint64_t key, double v) {
    if (M->key[h]) return;   /* a crowded table only loses the cache */
    M->key[h] = key;
    M->hval[h] = v;
}

static double mm_raw(mm *M, term t) {
    compact(&t);
    if (t.n == 0) return 1.0;
    uint64_t key = (uint64_t)t.n;
    for (int j = 0; j < t.n; j++) {
        key = key << 2 | (uint64_t)t.smp[j];
        for (int f = 0; f < NKIND; f++) {
            if (t.c[j][f] > kind_max[f]) {
                mm_fail(M, wick_fail(WICK_EUNSUPPORTED, "m-input tensors: a moment of power %d",
                                     t.c[j][f]));
                return 0;
            }
            key = key << 3 | (uint64_t)t.c[j][f];
        }
        if (M->si && (t.c[j][FS2] || t.c[j][FS3])) return 0.0;
    }
    key = key << 1 | 1;  /* never 0; odd: the other caches' keys are even */
    int found;
    size_t h = hslot(M, key, &found);
    if (found) return M->hval[h];
    subset *S = mm_subset(M, &t);
    if (!S) return 0;
    int n = t.n;
    double s = 0;
    if (M->si) {
        int k = 0;
        for (int j = 0; j < n; j++) k += t.c[j][FS] + t.c[j][FZ];
        for (int i = 0; i < S->nn; i++) {
            double p = S->w[i];
            for (int j = 0; j < n; j++) {
                double z = S->z[i * n + j], sl = z >= 0 ? M->ap : M->am;
                for (int e = 0; e < t.c[j][FS]; e++) p *= sl * z;
                for (int e = 0; e < t.c[j][FS1]; e++) p *= sl;
                for (int e = 0; e < t.c[j][FZ]; e++) p *= z;
            }
            s += p;
        }
        /* E[r^k] for the chi distribution with n degrees of freedom */
        s *= pow(2.0, 0.5 * k) * tgamma(0.5 * (k + n)) / tgamma(0.5 * n);
    } else {
        /* the factors as offsets into a node's record */
        int off[MMAX * 27], nf = 0, rec = n * NKIND;
        for (int j = 0; j < n; j++)
            for (int f = 0; f < NKIND; f++)
                for (int e = 0; e < t.c[j][f]; e++) off[nf++] = j * NKIND + f;
        const double *v = S->val;
        for (int i = 0; i < S->nn; i++, v += rec) {
            double p = S->w[i];
            for (int k = 0; k < nf; k++) p *= v[off[k]];
            s += p;
        }
    }
    hput(M, h, key, s);
    return s;
}

static double mm_ev(mm *M, term t);

static int slot_of(const term *t, int a) {
    for (int j = 0; j < t->n; j++)
        if (t->smp[j] == a) return j;
    return -1;
}

/* <d/dz_a X> by Stein's lemma on the samples X depends on */
static double mm_dstein(mm *M, term t, int a) {
    compact(&t);
    int ja = slot_of(&t, a);
    if (ja < 0) return 0.0;
    subset *S = mm_subset(M, &t);
    if (!S) return 0;
    double o = 0;
    for (int g = 0; g < t.n; g++) {
        term u = t;
        u.c[g][FZ]++;
        o += S->Ki[ja][g] * mm_ev(M, u);
    }
    return o;
}

/* <prod>, a kink's sigma'' removed by parts when M->delta (dntk2.c's ev) */
static double mm_ev(mm *M, term t) {
    if (!(M->si && M->delta)) return mm_raw(M, t);
    compact(&t);
    int ja = -1, n2 = 0;
    for (int j = 0; j < t.n; j++) {
        if (t.c[j][FS2]) { ja = j; n2++; }
        if (t.c[j][FS3]) n2 += 2;
    }
    if (ja < 0) return mm_raw(M, t);
    if (n2 > 1 || t.c[ja][FS2] > 1 || t.c[ja][FS] > 1) {
        mm_fail(M, wick_fail(WICK_EUNSUPPORTED, "m-input dNTK: two sigma'' factors"));
        return 0;
    }
    /* sigma^s sigma'^d sigma'' = [(sigma^s sigma'^(d+1))' - s sigma'^(d+2)]/(d+1),
     * z^k Y' = (z^k Y)' - k z^(k-1) Y */
    double cc = 1.0 / (t.c[ja][FS1] + 1);
    term y = t;
    y.c[ja][FS2] = 0; y.c[ja][FS1]++;
    double o = mm_dstein(M, y, t.smp[ja]);
    if (t.c[ja][FZ]) {
        term ym = y;
        ym.c[ja][FZ]--;
        o -= t.c[ja][FZ] * mm_ev(M, ym);
    }
    if (t.c[ja][FS]) {
        term z = t;
        z.c[ja][FS2] = 0; z.c[ja][FS] = 0; z.c[ja][FS1] += 2;
        o -= mm_ev(M, z);
    }
    return cc * o;
}

/* a term from nf factors (sample smp[i], kind kind[i]) */
static term tm(int nf, const int *smp, const int *kind) {
    term t;
    memset(&t, 0, sizeof t);
    for (int i = 0; i < nf; i++) {
        int j = slot_of(&t, smp[i]);
        if (j < 0) {
            j = t.n++;
            while (j > 0 && t.smp[j - 1] > smp[i]) {
                t.smp[j] = t.smp[j - 1];
                memcpy(t.c[j], t.c[j - 1], sizeof t.c[j]);
                j--;
            }
            t.smp[j] = smp[i];
            memset(t.c[j], 0, sizeof t.c[j]);
        }
        t.c[j][kind[i]]++;
    }
    return t;
}

#define E2(M, a, k0, b, k1) mm_ev(M, tm(2, (const int[]){a, b}, (const int[]){k0, k1}))
#define E4(M, a, k0, b, k1, c, k2, d, k3) \
    mm_ev(M, tm(4, (const int[]){a, b, c, d}, (const int[]){k0, k1, k2, k3}))
#define DS2(M, g, a, k0, b, k1) mm_dstein(M, tm(2, (const int[]){a, b}, (const int[]){k0, k1}), g)

/* <prod_t u_t(z_{al[t]})> with u_t = sigma' where isd[t], else sigma (four
 * factors): one or two samples through gauss.c as finite.c's mom does, three
 * through the engine. */
static double mom4(mm *M, const int *al, const int *isd) {
    int cnt[MMAX][2] = {{0}}, ns = 0, smp[MMAX] = {0};
    for (int t = 0; t < 4; t++) cnt[al[t]][isd[t]]++;
    for (int a = 0; a < M->m; a++)
        if (cnt[a][0] || cnt[a][1]) smp[ns++] = a;
    if (ns == 3) {
        int kinds[4];
        for (int t = 0; t < 4; t++) kinds[t] = isd[t] ? FS1 : FS;
        return mm_ev(M, tm(4, al, kinds));
    }
    uint64_t key = 2;   /* ...10: mom4's keys */
    for (int a = 0; a < M->m; a++) key |= (uint64_t)(cnt[a][0] * 5 + cnt[a][1]) << (2 + 5 * a);
    int found;
    size_t hs = hslot(M, key, &found);
    if (found) return M->hval[hs];
    double o = 0;
    wick_status s;
    if (ns == 1) {
        int a = smp[0], b = th_sd_basis(cnt[a][0], cnt[a][1]);
        s = th_expect1(M->act, M->K[a][a], 1, &b, &o, NULL);
    } else {
        int a = smp[0], c = smp[1];
        th_pair p = {th_sd_basis(cnt[a][0], cnt[a][1]), th_sd_basis(cnt[c][0], cnt[c][1])};
        s = th_expect2(M->act, M->K[a][a], M->K[a][c], M->K[c][c], 1, &p, &o, NULL);
    }
    mm_fail(M, s);
    if (!s) hput(M, hs, key, o);
    return o;
}

static wick_status check_in(const wick_theory_config *c, int m, const double *G0, const char *what) {
    if (!c || !G0) return wick_fail(WICK_EINVAL, "%s: no configuration or Gram", what);
    if (m < 2 || m > MMAX)
        return wick_fail(WICK_EINVAL, "%s: %d inputs (2 or 3 are offered)", what, m);
    if (c->act.kind == WICK_ACT_PERCEPTRON)
        return wick_fail(WICK_EINVAL, "perceptron: the order-1/n tensors are undefined (its "
                         "derivative is a delta)");
    if (c->depth < 1) return wick_fail(WICK_EINVAL, "%s: depth %d", what, c->depth);
    for (int a = 0; a < m; a++)
        for (int b = 0; b < m; b++)
            if (!isfinite(G0[a * m + b]) || G0[a * m + b] != G0[b * m + a])
                return wick_fail(WICK_EINVAL, "%s: the input Gram is not finite and symmetric", what);
    return WICK_OK;
}

/* ---------------------------------------------------------------------------
 * The vertex (flow.c's wick_vertex2 with m inputs)
 * ------------------------------------------------------------------------- */

wick_status wick_vertex_multi(const wick_theory_config *c, int m, const double *G0, double *V) {
    wick_status st = check_in(c, m, G0, "m-input vertex");
    if (st) return st;
    if (!V) return wick_fail(WICK_EINVAL, "m-input vertex: no output");
    int L = c->depth, M2 = m * m, M4 = M2 * M2;
    double *K = wick_malloc(sizeof(double) * (size_t)M2 * L);
    mm *E = wick_malloc(sizeof *E);
    if (!K || !E) {
        wick_free(K); wick_free(E);
        return wick_fail(WICK_ENOMEM, "m-input vertex: out of memory");
    }
    memset(E, 0, sizeof *E);
    if ((st = wick_gram_flow(c, G0, (size_t)m, K, NULL))) goto out;
    double ap, am;
    int si = th_scale_invariant(c->act, &ap, &am);
    double Vc[81] = {0}, Vn[81], F[81], D[81];
    for (int l = 1; l <= L; l++) {
        memcpy(V + (size_t)(l - 1) * M4, Vc, sizeof(double) * M4);
        if (l == L) break;
        const double *k = K + (size_t)(l - 1) * M2;
        double cw = th_cw_at(c, l + 1), ratio = l == 1 ? 1.0 : th_width_at(c, l) / th_width_at(c, l - 1);
        mm_layer(E, c->act, m, k, 0);
        th_mom1 m1[MMAX];
        for (int a = 0; a < m; a++)
            if ((st = th_moments1(c->act, k[a * m + a], &m1[a]))) goto out;
        /* E2: <sigma_a sigma_b>; dK[a][b]: d<sigma_a sigma_b>/dK_aa; s1: <sigma'_a sigma'_b> */
        double E2[MMAX][MMAX], dK[MMAX][MMAX], s1[MMAX][MMAX];
        double E4p[MMAX][MMAX][5];   /* <sigma_a^c sigma_b^(4-c)>, a < b */
        for (int a = 0; a < m; a++) {
            E2[a][a] = m1[a].s2;
            for (int b = a + 1; b < m; b++) {
                double kaa = k[a * m + a], kab = k[a * m + b], kbb = k[b * m + b], ss, s11, d0, d1;
                double o[7];
                th_pair p4[3] = {{TB_CUBE, TB_S}, {TB_SQ, TB_SQ}, {TB_S, TB_CUBE}};
                if ((st = th_check_cov(kaa, &kab, kbb, "m-input vertex"))) goto out;
                if (si) {
                    th_si_pair(ap, am, kaa, kab, kbb, &ss, &s11, &d0, &d1);
                    st = th_expect2(c->act, kaa, kab, kbb, 3, p4, o, NULL);
                } else {
                    th_pair p[7] = {{TB_CUBE, TB_S}, {TB_SQ, TB_SQ}, {TB_S, TB_CUBE}, {TB_S, TB_S},
                                    {TB_S1, TB_S1}, {TB_S2, TB_S}, {TB_S, TB_S2}};
                    st = th_expect2(c->act, kaa, kab, kbb, 7, p, o, NULL);
                    ss = o[3]; s11 = o[4]; d0 = 0.5 * o[5]; d1 = 0.5 * o[6];
                }
                if (st) goto out;
                E2[a][b] = E2[b][a] = ss;
                s1[a][b] = s1[b][a] = s11;
                dK[a][b] = d0; dK[b][a] = d1;   /* d/dK_aa of pair (a b), d/dK_bb */
                E4p[a][b][4] = m1[a].s4; E4p[a][b][0] = m1[b].s4;
                E4p[a][b][3] = o[0]; E4p[a][b][2] = o[1]; E4p[a][b][1] = o[2];
            }
        }
        for (int pi = 0; pi < M2; pi++)
            for (int qi = 0; qi < M2; qi++) {
                int idx[4] = {pi / m, pi % m, qi / m, qi % m}, lo = idx[0], hi = idx[0];
                for (int j = 1; j < 4; j++) {
                    if (idx[j] < lo) lo = idx[j];
                    if (idx[j] > hi) hi = idx[j];
                }
                int three = 0;
                for (int j = 0; j < 4; j++) three |= idx[j] != lo && idx[j] != hi;
                double e4;
                if (lo == hi) e4 = m1[lo].s4;
                else if (!three) {
                    int zl = 0;
                    for (int j = 0; j < 4; j++) zl += idx[j] == lo;
                    e4 = E4p[lo][hi][zl];
                } else {
                    e4 = E4(E, idx[0], FS, idx[1], FS, idx[2], FS, idx[3], FS);
                }
                F[pi * M2 + qi] = e4 - E2[idx[0]][idx[1]] * E2[idx[2]][idx[3]];
            }
        if (E->st) { st = E->st; goto out; }
        memset(D, 0, sizeof D);
        for (int a = 0; a < m; a++) {
            D[(a * m + a) * M2 + a * m + a] = cw * m1[a].ds2;
            for (int b = 0; b < m; b++) {
                if (b == a) continue;
                int pi = a * m + b;
                D[pi * M2 + a * m + a] = cw * dK[a][b];
                D[pi * M2 + b * m + b] = cw * dK[b][a];
                D[pi * M2 + a * m + b] = D[pi * M2 + b * m + a] = 0.5 * cw * s1[a][b];
            }
        }
        double DV[81];
        for (int i = 0; i < M2; i++)
            for (int j = 0; j < M2; j++) {
                double s = 0;
                for (int t = 0; t < M2; t++) s += D[i * M2 + t] * Vc[t * M2 + j];
                DV[i * M2 + j] = s;
            }
        for (int i = 0; i < M2; i++)
            for (int j = 0; j < M2; j++) {
                double s = 0;
                for (int t = 0; t < M2; t++) s += DV[i * M2 + t] * D[j * M2 + t];
                Vn[i * M2 + j] = cw * cw * F[i * M2 + j] + ratio * s;
            }
        memcpy(Vc, Vn, sizeof(double) * M4);
    }
out:
    wick_free(K); mm_free(E);
    return st;
}

/* ---------------------------------------------------------------------------
 * The subleading kernel (finite.c's wick_kernel1_two with m inputs)
 * ------------------------------------------------------------------------- */

wick_status wick_kernel1_multi(const wick_theory_config *c, int m, const double *G0, double *K1) {
    wick_status st = check_in(c, m, G0, "m-input subleading kernel");
    if (st) return st;
    if (!K1) return wick_fail(WICK_EINVAL, "m-input subleading kernel: no output");
    int L = c->depth, M2 = m * m, M4 = M2 * M2;
    double *V = wick_malloc(sizeof(double) * (size_t)M4 * L);
    double *K = wick_malloc(sizeof(double) * (size_t)M2 * L);
    if (!V || !K) {
        wick_free(V); wick_free(K);
        return wick_fail(WICK_ENOMEM, "m-input subleading kernel: out of memory");
    }
    if ((st = wick_vertex_multi(c, m, G0, V)) || (st = wick_gram_flow(c, G0, (size_t)m, K, NULL)))
        goto out;
    double k1[9] = {0}, nk[9];
    for (int l = 1; l <= L; l++) {
        memcpy(K1 + (size_t)M2 * (l - 1), k1, sizeof(double) * M2);
        if (l == L) break;
        const double *Kl = K + (size_t)M2 * (l - 1), *Vl = V + (size_t)M4 * (l - 1);
        double cw = th_cw_at(c, l + 1), r = l == 1 ? 1.0 : th_width_at(c, l) / th_width_at(c, l - 1);
        for (int a = 0; a < m; a++) {
            int p = a * m + a;
            th_fmom fm = {0};
            if ((st = th_finite_moments(c->act, Kl[p], &fm))) goto out;
            nk[p] = r * cw * (fm.g1 * k1[p] + 0.5 * fm.g2 * Vl[p * M2 + p]);
        }
        for (int a = 0; a < m; a++)
            for (int b = a + 1; b < m; b++) {
                double h = 1e-3 * sqrt(Kl[a * m + a] * Kl[b * m + b]), g;
                if (!(h > 0)) {
                    st = wick_fail(WICK_EINVAL, "m-input subleading kernel: a zero variance at "
                                   "layer %d", l);
                    goto out;
                }
                /* the pair's ordered pairs aa, ab, ba, bb */
                int op[4] = {a * m + a, a * m + b, b * m + a, b * m + b};
                if ((st = th_kernel1_pair(c->act, Kl[a * m + a], Kl[a * m + b], Kl[b * m + b], h, k1,
                                          Vl, M2, op, &g)))
                    goto out;
                nk[a * m + b] = nk[b * m + a] = r * cw * g;
            }
        memcpy(k1, nk, sizeof(double) * M2);
    }
out:
    wick_free(V); wick_free(K);
    return st;
}

/* ---------------------------------------------------------------------------
 * The NTK's variance B (finite.c's wick_ntk_B_two with m inputs)
 * ------------------------------------------------------------------------- */

/* <sigma'_a1 sigma'_a2 sigma'_a3 sigma'_a4> (or fewer factors, -1 for none) */
static double dpow(mm *E, const int *al, int nf) {
    int cnt[MMAX] = {0}, smp[MMAX] = {0}, ns = 0;
    for (int t = 0; t < nf; t++) cnt[al[t]]++;
    for (int a = 0; a < E->m; a++)
        if (cnt[a]) smp[ns++] = a;
    if (ns == 3) {
        static const int k4[4] = {FS1, FS1, FS1, FS1};
        return mm_ev(E, tm(nf, al, k4));
    }
    int a = smp[0], b = ns == 2 ? smp[1] : (smp[0] + 1) % E->m;
    uint64_t key = 4;   /* ...100: dpow's keys */
    for (int j = 0; j < E->m; j++) key |= (uint64_t)cnt[j] << (3 + 3 * j);
    int found;
    size_t hs = hslot(E, key, &found);
    if (found) return E->hval[hs];
    double o = 0;
    wick_status s = th_dpow_pair(E->act, cnt[a], ns == 2 ? cnt[b] : 0, E->K[a][a], E->K[a][b],
                                 E->K[b][b], &o);
    mm_fail(E, s);
    if (!s) hput(E, hs, key, o);
    return o;
}

wick_status wick_ntk_B_multi(const wick_theory_config *c, int m, const double *G0, double *B) {
    wick_status st = check_in(c, m, G0, "m-input NTK variance");
    if (st) return st;
    if (!B) return wick_fail(WICK_EINVAL, "m-input NTK variance: no output");
    int L = c->depth, M2 = m * m, M4 = M2 * M2;
    double *K = wick_malloc(sizeof(double) * (size_t)M2 * L);
    double *T = wick_malloc(sizeof(double) * (size_t)M2 * L);
    mm *E = wick_malloc(sizeof *E);
    if (!K || !T || !E) {
        wick_free(K); wick_free(T); wick_free(E);
        return wick_fail(WICK_ENOMEM, "m-input NTK variance: out of memory");
    }
    memset(E, 0, sizeof *E);
    if ((st = wick_gram_flow(c, G0, (size_t)m, K, T))) goto out;
    double b[81] = {0}, nb[81];
    for (int l = 1; l <= L; l++) {
        memcpy(B + (size_t)M4 * (l - 1), b, sizeof(double) * M4);
        if (l == L) break;
        const double *Kl = K + (size_t)M2 * (l - 1), *Tl = T + (size_t)M2 * (l - 1);
        double cw = th_cw_at(c, l + 1), r = l == 1 ? 1.0 : th_width_at(c, l) / th_width_at(c, l - 1);
        mm_layer(E, c->act, m, Kl, 0);
        double s11[9];
        for (int a = 0; a < m; a++)
            for (int bb = 0; bb < m; bb++) s11[a * m + bb] = dpow(E, (const int[]){a, bb}, 2);
        for (int pi = 0; pi < M2; pi++)
            for (int qi = 0; qi < M2; qi++) {
                int a1 = pi / m, a3 = pi % m, a2 = qi / m, a4 = qi % m;
                double four = dpow(E, (const int[]){a1, a2, a3, a4}, 4);
                nb[pi * M2 + qi] = cw * cw * four * Tl[a1 * m + a2] * Tl[a3 * m + a4] +
                                   r * cw * cw * s11[a1 * m + a3] * s11[a2 * m + a4] * b[pi * M2 + qi];
            }
        if (E->st) { st = E->st; goto out; }
        memcpy(b, nb, sizeof(double) * M4);
    }
out:
    wick_free(K); wick_free(T); mm_free(E);
    return st;
}

/* ---------------------------------------------------------------------------
 * T1, A, D, F (finite.c's wick_ntk_fluct_two with m inputs)
 * ------------------------------------------------------------------------- */

/* <u(z_a) u(z_b)> for u = sigma, sigma' over the ordered pairs p = a m + b:
 * value, gradient and Hessian in the ordered-pair variables, from finite.c's
 * th_pair_derivs on each pair's 2 x 2 sub-kernel */
typedef struct { double v[2][9], g[2][9][9], h[2][9][9][9]; } mderiv;

static wick_status multi_derivs(wick_act act, int m, const double *k, mderiv *P) {
    memset(P, 0, sizeof *P);
    for (int a = 0; a < m; a++)
        for (int b = a + 1; b < m; b++) {
            double k2[4] = {k[a * m + a], k[a * m + b], k[b * m + a], k[b * m + b]};
            th_pderiv Q;
            wick_status st = th_pair_derivs(act, k2, &Q);
            if (st) return st;
            int gp[4] = {a * m + a, a * m + b, b * m + a, b * m + b};
            /* a diagonal pair's row depends on its own variance only: every
             * pair that holds it writes the same values */
            for (int lp = 0; lp < 4; lp++) {
                for (int u = 0; u < 2; u++) {
                    P->v[u][gp[lp]] = Q.v[u][lp];
                    for (int q = 0; q < 4; q++) {
                        P->g[u][gp[lp]][gp[q]] = Q.g[u][lp][q];
                        for (int r = 0; r < 4; r++) P->h[u][gp[lp]][gp[q]][gp[r]] = Q.h[u][lp][q][r];
                    }
                }
            }
        }
    return WICK_OK;
}

wick_status wick_ntk_fluct_multi(const wick_theory_config *c, int m, const double *G0, double *T1,
                                 double *A, double *D, double *F) {
    wick_status st = check_in(c, m, G0, "m-input NTK tensors");
    if (st) return st;
    if (!T1 || !A || !D || !F) return wick_fail(WICK_EINVAL, "m-input NTK tensors: no output");
    int L = c->depth, M2 = m * m, M4 = M2 * M2;
    double *V = wick_malloc(sizeof(double) * (size_t)M4 * L);
    double *K = wick_malloc(sizeof(double) * (size_t)M2 * L);
    double *Th = wick_malloc(sizeof(double) * (size_t)M2 * L);
    double *K1 = wick_malloc(sizeof(double) * (size_t)M2 * L);
    mm *E = wick_malloc(sizeof *E);
    mderiv *P = wick_malloc(sizeof *P);
    if (!V || !K || !Th || !K1 || !E || !P) {
        st = wick_fail(WICK_ENOMEM, "m-input NTK tensors: out of memory");
        goto out;
    }
    memset(E, 0, sizeof *E);
    if ((st = wick_vertex_multi(c, m, G0, V)) || (st = wick_gram_flow(c, G0, (size_t)m, K, Th)) ||
        (st = wick_kernel1_multi(c, m, G0, K1)))
        goto out;
    double t1[9] = {0}, a[81] = {0}, d[81] = {0}, f[81] = {0};
    for (int l = 1; l <= L; l++) {
        memcpy(T1 + (size_t)M2 * (l - 1), t1, sizeof(double) * M2);
        memcpy(A + (size_t)M4 * (l - 1), a, sizeof(double) * M4);
        memcpy(D + (size_t)M4 * (l - 1), d, sizeof(double) * M4);
        memcpy(F + (size_t)M4 * (l - 1), f, sizeof(double) * M4);
        if (l == L) break;
        const double *Kl = K + (size_t)M2 * (l - 1), *Tl = Th + (size_t)M2 * (l - 1);
        const double *Vl = V + (size_t)M4 * (l - 1), *k1 = K1 + (size_t)M2 * (l - 1);
        double cw = th_cw_at(c, l + 1), lw = th_lw_at(c, l + 1);
        double r = l == 1 ? 1.0 : th_width_at(c, l) / th_width_at(c, l - 1);
        mm_layer(E, c->act, m, Kl, 0);
        if ((st = multi_derivs(c->act, m, Kl, P))) goto out;
        double da[9][9];
        for (int p = 0; p < M2; p++)
            for (int u = 0; u < M2; u++) da[p][u] = lw * P->g[0][p][u] + cw * Tl[p] * P->g[1][p][u];
        /* e[a1][a3][beta] = <d_beta (sigma'_a1 sigma_a3)> by Stein on the pair */
        double e[MMAX][MMAX][MMAX];
        memset(e, 0, sizeof e);
        for (int a1 = 0; a1 < m; a1++)
            for (int a3 = 0; a3 < m; a3++) {
                if (a1 == a3) {
                    double o = 0;
                    int bzs = TB_ZSS1;
                    if ((st = th_expect1(c->act, Kl[a1 * m + a1], 1, &bzs, &o, NULL))) goto out;
                    e[a1][a1][a1] = o / Kl[a1 * m + a1];
                    continue;
                }
                int lo = a1 < a3 ? a1 : a3, hi = a1 < a3 ? a3 : a1;
                double k00 = Kl[lo * m + lo], k01 = Kl[lo * m + hi], k11 = Kl[hi * m + hi];
                double det = k00 * k11 - k01 * k01;
                if (!(det > 0)) {
                    st = wick_fail(WICK_EINVAL, "m-input NTK tensors: the kernel of layer %d is "
                                   "singular (parallel inputs)", l);
                    goto out;
                }
                double Ki[2][2] = {{k11 / det, -k01 / det}, {-k01 / det, k00 / det}};
                int id[2] = {lo, hi};
                double zf[2];
                for (int g = 0; g < 2; g++) {
                    int bs[2];
                    for (int j = 0; j < 2; j++) {
                        int s = id[j];
                        bs[j] = s == a1 ? (id[g] == a1 ? TB_ZS1 : TB_S1) : (id[g] == a3 ? TB_ZS : TB_S);
                    }
                    double o = 0;
                    if ((st = th_expect2(c->act, k00, k01, k11, 1, &(th_pair){bs[0], bs[1]}, &o, NULL)))
                        goto out;
                    zf[g] = o;
                }
                for (int bt = 0; bt < 2; bt++) e[a1][a3][id[bt]] = Ki[bt][0] * zf[0] + Ki[bt][1] * zf[1];
            }
        double nt1[9], na[81], nd[81], nf[81];
        for (int p = 0; p < M2; p++) {
            int a1 = p / m, a2 = p % m;
            double lin_s = 0, lin_d = 0, quad_s = 0, quad_d = 0, corr = 0;
            for (int u = 0; u < M2; u++) {
                lin_s += P->g[0][p][u] * k1[u];
                lin_d += P->g[1][p][u] * k1[u];
                for (int v = 0; v < M2; v++) {
                    quad_s += P->h[0][p][u][v] * Vl[u * M2 + v];
                    quad_d += P->h[1][p][u][v] * Vl[u * M2 + v];
                }
                int bt = u / m, gm = u % m;
                corr += P->g[1][p][u] * (d[p * M2 + u] + 2 * f[(a1 * m + bt) * M2 + a2 * m + gm]);
            }
            nt1[p] = r * (lw * (lin_s + 0.5 * quad_s) +
                          cw * (Tl[p] * (lin_d + 0.5 * quad_d) + P->v[1][p] * t1[p] + corr));
        }
        for (int p = 0; p < M2; p++)
            for (int q = 0; q < M2; q++) {
                int al[4] = {p / m, p % m, q / m, q % m};
                double ssss = mom4(E, al, (const int[]){0, 0, 0, 0});
                double ddss = mom4(E, al, (const int[]){1, 1, 0, 0});
                double ssdd = mom4(E, al, (const int[]){0, 0, 1, 1});
                double dddd = mom4(E, al, (const int[]){1, 1, 1, 1});
                double mp = lw * P->v[0][p] + cw * Tl[p] * P->v[1][p];
                double mq = lw * P->v[0][q] + cw * Tl[q] * P->v[1][q];
                double aa = lw * lw * ssss + lw * cw * (Tl[q] * ssdd + Tl[p] * ddss) +
                            cw * cw * Tl[p] * Tl[q] * dddd - mp * mq;
                double as = cw * (lw * ssss + cw * Tl[p] * ddss - mp * P->v[0][q]);
                double vv = 0, vs = 0, dq = 0, dp = 0, dsq = 0;
                for (int u = 0; u < M2; u++) {
                    for (int v = 0; v < M2; v++) {
                        vv += da[p][u] * da[q][v] * Vl[u * M2 + v];
                        vs += da[p][u] * P->g[0][q][v] * Vl[u * M2 + v];
                    }
                    dq += da[p][u] * d[q * M2 + u];
                    dp += da[q][u] * d[p * M2 + u];
                    dsq += P->g[0][q][u] * d[p * M2 + u];
                }
                double hp = cw * P->v[1][p], hq = cw * P->v[1][q];
                na[p * M2 + q] = aa + r * (vv + hq * dq + hp * dp + hp * hq * a[p * M2 + q]);
                nd[p * M2 + q] = as + r * cw * (vs + hp * dsq);
                int a1 = p / m, a3 = p % m, a2 = q / m, a4 = q % m;
                int alf[4] = {a1, a2, a3, a4};
                double one = cw * cw * Tl[a1 * m + a2] * mom4(E, alf, (const int[]){1, 1, 0, 0});
                double two = 0;
                for (int bt = 0; bt < m; bt++)
                    for (int gm = 0; gm < m; gm++)
                        two += f[(a1 * m + bt) * M2 + a2 * m + gm] * e[a1][a3][bt] * e[a2][a4][gm];
                nf[p * M2 + q] = one + r * cw * cw * two;
            }
        if (E->st) { st = E->st; goto out; }
        memcpy(t1, nt1, sizeof(double) * M2); memcpy(a, na, sizeof(double) * M4);
        memcpy(d, nd, sizeof(double) * M4); memcpy(f, nf, sizeof(double) * M4);
    }
out:
    wick_free(V); wick_free(K); wick_free(Th); wick_free(K1); mm_free(E); wick_free(P);
    return st;
}

/* ---------------------------------------------------------------------------
 * P, Q (dntk2.c's recursion with m inputs)
 * ------------------------------------------------------------------------- */

#define X4(a0, a1, a2, a3) ((((a0) * m + (a1)) * m + (a2)) * m + (a3))
/* F and B's layout: (c1 c3)(c2 c4) */
#define XF(c1, c3, c2, c4) (((c1) * m + (c3)) * M2 + (c2) * m + (c4))

/* What pq_multi and dd_multi read per layer: the Gram flow's K and Theta,
 * the NTK's T1, A, D, F (F zero where L = 1) and B, and a moment engine. */
typedef struct { double *K, *Th, *T1, *A, *D, *F, *B; mm *E; } nt_in;

static void nt_in_free(nt_in *n) {
    wick_free(n->K); wick_free(n->Th); wick_free(n->T1); wick_free(n->A); wick_free(n->D);
    wick_free(n->F); wick_free(n->B); mm_free(n->E);
}

/* Allocates *n and fills K and Theta (what: the caller, for the errors); the
 * caller computes the NTK's tensors (in its own order) and frees n. */
static wick_status nt_in_new(const wick_theory_config *c, int m, const double *G0, const char *what,
                             nt_in *n) {
    size_t M2 = (size_t)m * m, M4 = M2 * M2, Ls = (size_t)c->depth;
    n->K = wick_malloc(sizeof(double) * M2 * Ls); n->Th = wick_malloc(sizeof(double) * M2 * Ls);
    n->T1 = wick_malloc(sizeof(double) * M2 * Ls); n->A = wick_malloc(sizeof(double) * M4 * Ls);
    n->D = wick_malloc(sizeof(double) * M4 * Ls); n->F = wick_malloc(sizeof(double) * M4 * Ls);
    n->B = wick_malloc(sizeof(double) * M4 * Ls);
    n->E = wick_malloc(sizeof *n->E);
    if (!n->K || !n->Th || !n->T1 || !n->A || !n->D || !n->F || !n->B || !n->E)
        return wick_fail(WICK_ENOMEM, "%s: out of memory", what);
    memset(n->E, 0, sizeof *n->E);
    memset(n->F, 0, sizeof(double) * M4 * Ls);
    memset(n->B, 0, sizeof(double) * M4 * Ls);
    return wick_gram_flow(c, G0, (size_t)m, n->K, n->Th);
}

static wick_status pq_multi(const wick_theory_config *c, int m, const double *G0, int pathwise,
                            double *P, double *Q) {
    wick_status st = check_in(c, m, G0, "m-input dNTK");
    if (st) return st;
    if (!P || !Q) return wick_fail(WICK_EINVAL, "m-input dNTK: no output");
    int L = c->depth, M2 = m * m, M4 = M2 * M2;
    nt_in in;
    if ((st = nt_in_new(c, m, G0, "m-input dNTK", &in))) goto out;
    if (L > 1 && ((st = wick_ntk_fluct_multi(c, m, G0, in.T1, in.A, in.D, in.F)) ||
                  (st = wick_ntk_B_multi(c, m, G0, in.B))))
        goto out;
    const double *K = in.K, *Th = in.Th, *F = in.F, *B = in.B;
    mm *E = in.E;
    double p[81] = {0}, q[81] = {0}, np_[81], nq[81];
    for (int l = 1; l <= L; l++) {
        memcpy(P + (size_t)M4 * (l - 1), p, sizeof(double) * M4);
        memcpy(Q + (size_t)M4 * (l - 1), q, sizeof(double) * M4);
        if (l == L) break;
        const double *t = Th + (size_t)M2 * (l - 1), *f = F + (size_t)M4 * (l - 1),
                     *bb = B + (size_t)M4 * (l - 1);
        double cw = th_cw_at(c, l + 1), lw = th_lw_at(c, l + 1);
        double r = l == 1 ? 1.0 : th_width_at(c, l) / th_width_at(c, l - 1);
        mm_layer(E, c->act, m, K + (size_t)M2 * (l - 1), !pathwise);
        for (int a0 = 0; a0 < m; a0++)
            for (int a1 = 0; a1 < m; a1++)
                for (int a2 = 0; a2 < m; a2++)
                    for (int a3 = 0; a3 < m; a3++) {
                        double gs[MMAX], gsd[MMAX], gds[MMAX];
                        for (int g = 0; g < m; g++) {
                            gs[g] = DS2(E, g, a2, FS1, a3, FS);
                            gsd[g] = DS2(E, g, a0, FS, a1, FS1);
                            gds[g] = DS2(E, g, a0, FS1, a1, FS2);
                        }
                        double own = lw * cw * t[a1 * m + a2] * E4(E, a0, FS, a1, FS1, a2, FS1, a3, FS);
                        double two = cw * cw * t[a1 * m + a2] *
                                     (t[a0 * m + a1] * E4(E, a0, FS1, a1, FS2, a2, FS1, a3, FS) +
                                      t[a0 * m + a2] * E4(E, a0, FS1, a1, FS1, a2, FS2, a3, FS));
                        double ownF = 0, twoF = 0, car = 0;
                        for (int be = 0; be < m; be++)
                            for (int ga = 0; ga < m; ga++) {
                                ownF += f[XF(a1, be, a2, ga)] * gsd[be] * gs[ga];
                                twoF += f[XF(a1, be, a2, ga)] * gds[be] * gs[ga];
                            }
                        for (int de = 0; de < m; de++) car += p[X4(a0, a1, a2, de)] * gs[de];
                        double s1s1 = E2(E, a0, FS1, a1, FS1);
                        np_[X4(a0, a1, a2, a3)] =
                            own + two +
                            r * (lw * cw * ownF + cw * cw * t[a0 * m + a1] * twoF +
                                 cw * cw * bb[XF(a0, a1, a2, a2)] * s1s1 * E2(E, a2, FS2, a3, FS) +
                                 cw * cw * s1s1 * car);
                        double h0[MMAX], h1[MMAX], h2[MMAX], h3[MMAX], h4[MMAX];
                        for (int g = 0; g < m; g++) {
                            h0[g] = DS2(E, g, a0, FS1, a3, FS);
                            h1[g] = DS2(E, g, a1, FS1, a2, FS);
                            h2[g] = DS2(E, g, a1, FS, a2, FS1);
                            h3[g] = DS2(E, g, a1, FS2, a2, FS1);
                            h4[g] = DS2(E, g, a1, FS1, a2, FS2);
                        }
                        double qown = lw * cw *
                                      (t[a0 * m + a1] * E4(E, a0, FS1, a3, FS, a1, FS1, a2, FS) +
                                       t[a0 * m + a2] * E4(E, a0, FS1, a3, FS, a1, FS, a2, FS1));
                        double qtwo = cw * cw * t[a1 * m + a2] *
                                      (t[a0 * m + a1] * E4(E, a0, FS1, a3, FS, a1, FS2, a2, FS1) +
                                       t[a0 * m + a2] * E4(E, a0, FS1, a3, FS, a1, FS1, a2, FS2));
                        double qownF = 0, qtwoF = 0, qcar = 0;
                        for (int be = 0; be < m; be++)
                            for (int ga = 0; ga < m; ga++) {
                                qownF += h0[be] * (f[XF(a0, be, a1, ga)] * h1[ga] +
                                                   f[XF(a0, be, a2, ga)] * h2[ga]);
                                qtwoF += h0[be] * (f[XF(a0, be, a1, ga)] * h3[ga] +
                                                   f[XF(a0, be, a2, ga)] * h4[ga]);
                            }
                        for (int de = 0; de < m; de++) qcar += q[X4(a0, a1, a2, de)] * h0[de];
                        nq[X4(a0, a1, a2, a3)] =
                            qown + qtwo + r * (lw * cw * qownF + cw * cw * t[a1 * m + a2] * qtwoF +
                                               cw * cw * E2(E, a1, FS1, a2, FS1) * qcar);
                    }
        if (E->st) { st = E->st; goto out; }
        memcpy(p, np_, sizeof(double) * M4);
        memcpy(q, nq, sizeof(double) * M4);
    }
out:
    nt_in_free(&in);
    return st;
}

wick_status wick_dntk_PQ_multi(const wick_theory_config *c, int m, const double *G0, double *P,
                               double *Q) {
    return pq_multi(c, m, G0, 0, P, Q);
}

wick_status wick_dntk_PQ_multi_pathwise(const wick_theory_config *c, int m, const double *G0,
                                        double *P, double *Q) {
    return pq_multi(c, m, G0, 1, P, Q);
}

/* ---------------------------------------------------------------------------
 * Pb, Qb, R, S, T, U (ddntk2.c's recursion with m inputs; kinks pathwise)
 * ------------------------------------------------------------------------- */

#define G2(a0, d0, a1, d1) E2(E, a0, d0, a1, d1)
#define G4(a0, d0, a1, d1, a2, d2, a3, d3) E4(E, a0, d0, a1, d1, a2, d2, a3, d3)
#define GD2(b, a0, d0, a1, d1) DS2(E, b, a0, d0, a1, d1)

static wick_status dd_multi(const wick_theory_config *c, int m, const double *G0, double *oPb,
                            double *oQb, double *oR, double *oS, double *oT, double *oU) {
    wick_status st = check_in(c, m, G0, "m-input ddNTK");
    if (st) return st;
    int L = c->depth, M2 = m * m, M4 = M2 * M2;
    nt_in in;
    if ((st = nt_in_new(c, m, G0, "m-input ddNTK", &in))) goto out;
    if (L > 1 && ((st = wick_ntk_B_multi(c, m, G0, in.B)) ||
                  (st = wick_ntk_fluct_multi(c, m, G0, in.T1, in.A, in.D, in.F))))
        goto out;
    const double *K = in.K, *Th = in.Th, *F = in.F, *B = in.B;
    mm *E = in.E;
    double pb[81] = {0}, qb[81] = {0}, R[81] = {0}, S[81] = {0}, T[81] = {0}, U[81] = {0};
    double npb[81], nqb[81], nR[81], nS[81], nT[81], nU[81];
    for (int l = 1; l <= L; l++) {
        size_t o = (size_t)M4 * (l - 1);
        size_t sz = sizeof(double) * M4;
        if (oPb) memcpy(oPb + o, pb, sz);
        if (oQb) memcpy(oQb + o, qb, sz);
        if (oR) memcpy(oR + o, R, sz);
        if (oS) memcpy(oS + o, S, sz);
        if (oT) memcpy(oT + o, T, sz);
        if (oU) memcpy(oU + o, U, sz);
        if (l == L) break;
        const double *t = Th + (size_t)M2 * (l - 1), *f = F + o, *bb = B + o;
        double C = th_cw_at(c, l + 1), lw = th_lw_at(c, l + 1);
        double r = l == 1 ? 1.0 : th_width_at(c, l) / th_width_at(c, l - 1);
        mm_layer(E, c->act, m, K + (size_t)M2 * (l - 1), 0);
        double h[9];
        for (int a = 0; a < m; a++)
            for (int b = 0; b < m; b++) h[a * m + b] = G2(a, FS1, b, FS1);
#define TH(a, b) t[(a) * m + (b)]
#define HH(a, b) h[(a) * m + (b)]
#define BV(X, c1, c2, c3, c4) ((X)[XF(c1, c3, c2, c4)])
        for (int a0 = 0; a0 < m; a0++)
            for (int a1 = 0; a1 < m; a1++)
                for (int a2 = 0; a2 < m; a2++)
                    for (int a3 = 0; a3 < m; a3++) {
                        int ix = X4(a0, a1, a2, a3);
                        double car = 0;
                        for (int b = 0; b < m; b++) car += pb[X4(a0, a1, a2, b)] * GD2(b, a0, 1, a3, 0);
                        npb[ix] = C * C * (TH(a0, a1) * TH(a0, a2) * G4(a0, 2, a1, 1, a2, 1, a3, 0) +
                                           r * HH(a1, a2) * (G2(a0, 2, a3, 0) * BV(bb, a0, a1, a0, a2) + car));
                        double fq = 0, cq = 0;
                        for (int b = 0; b < m; b++)
                            for (int d = 0; d < m; d++)
                                fq += BV(f, a0, a2, b, d) *
                                      (lw * C * GD2(b, a0, 1, a1, 0) + C * C * TH(a0, a1) * GD2(b, a0, 2, a1, 1)) *
                                      GD2(d, a2, 1, a3, 0);
                        for (int d = 0; d < m; d++) cq += qb[X4(a0, a1, a2, d)] * GD2(d, a2, 1, a3, 0);
                        nqb[ix] = lw * C * TH(a0, a2) * G4(a0, 1, a1, 0, a2, 1, a3, 0) +
                                  C * C * TH(a0, a1) * TH(a0, a2) * G4(a0, 2, a1, 1, a2, 1, a3, 0) +
                                  r * fq + r * C * C * HH(a0, a1) * cq;
                        double pr = 0;
                        for (int b = 0; b < m; b++)
                            pr += pb[X4(a0, a2, a3, b)] * (C * C * TH(a0, a1) * GD2(b, a0, 2, a1, 1) +
                                                           lw * C * GD2(b, a0, 1, a1, 0));
                        nR[ix] = C * C * TH(a0, a1) * TH(a0, a2) * TH(a0, a3) * G4(a0, 3, a1, 1, a2, 1, a3, 1) +
                                 lw * C * TH(a0, a2) * TH(a0, a3) * G4(a0, 2, a1, 0, a2, 1, a3, 1) +
                                 r * HH(a2, a3) *
                                     ((C * C * TH(a0, a1) * G2(a0, 3, a1, 1) + lw * C * G2(a0, 2, a1, 0)) *
                                          BV(bb, a0, a2, a0, a3) +
                                      pr + C * C * HH(a0, a1) * R[ix]);
                        nS[ix] = lw * C * TH(a0, a2) * TH(a1, a3) * G4(a0, 1, a1, 1, a2, 1, a3, 1) +
                                 C * C * TH(a0, a1) * TH(a0, a2) * TH(a1, a3) * G4(a0, 2, a1, 2, a2, 1, a3, 1) +
                                 r * HH(a2, a3) *
                                     ((lw * C * HH(a0, a1) + C * C * TH(a0, a1) * G2(a0, 2, a1, 2)) *
                                          BV(bb, a0, a2, a1, a3) +
                                      C * C * HH(a0, a1) * S[ix]);
                        double t13 = C * TH(a0, a2), t24 = C * TH(a1, a3);
                        double ab = t13 * t24 * G4(a0, 2, a2, 1, a1, 2, a3, 1) +
                                    t13 * lw * G4(a0, 2, a2, 1, a1, 1, a3, 0) +
                                    lw * t24 * G4(a0, 1, a2, 0, a1, 2, a3, 1) +
                                    lw * lw * G4(a0, 1, a2, 0, a1, 1, a3, 0);
                        double da[MMAX], db[MMAX];
                        for (int b = 0; b < m; b++) {
                            da[b] = t13 * GD2(b, a0, 2, a2, 1) + lw * GD2(b, a0, 1, a2, 0);
                            db[b] = t24 * GD2(b, a1, 2, a3, 1) + lw * GD2(b, a1, 1, a3, 0);
                        }
                        double ft = 0, q1 = 0, q2 = 0;
                        for (int b = 0; b < m; b++) {
                            for (int d = 0; d < m; d++) ft += BV(f, a0, a1, b, d) * da[b] * db[d];
                            q1 += qb[X4(a1, a3, a0, b)] * da[b];
                            q2 += qb[X4(a0, a2, a1, b)] * db[b];
                        }
                        nT[ix] = TH(a0, a1) * ab + r * ft + r * C * (HH(a1, a3) * q1 + HH(a0, a2) * q2) +
                                 r * C * C * HH(a0, a2) * HH(a1, a3) * T[ix];
                        nU[ix] = C * C * TH(a0, a1) * TH(a0, a2) * TH(a1, a3) * G4(a0, 2, a1, 2, a2, 1, a3, 1) +
                                 r * C * C * HH(a0, a3) * HH(a1, a2) * U[ix];
                    }
#undef TH
#undef HH
#undef BV
        if (E->st) { st = E->st; goto out; }
        memcpy(pb, npb, sizeof(double) * M4); memcpy(qb, nqb, sizeof(double) * M4);
        memcpy(R, nR, sizeof(double) * M4); memcpy(S, nS, sizeof(double) * M4);
        memcpy(T, nT, sizeof(double) * M4); memcpy(U, nU, sizeof(double) * M4);
    }
out:
    nt_in_free(&in);
    return st;
}

wick_status wick_dntk_PQb_multi(const wick_theory_config *c, int m, const double *G0, double *Pb,
                                double *Qb) {
    if (!Pb || !Qb) return wick_fail(WICK_EINVAL, "m-input dNTK (book form): no output");
    return dd_multi(c, m, G0, Pb, Qb, NULL, NULL, NULL, NULL);
}

wick_status wick_theory_ddntk_multi(const wick_theory_config *c, int m, const double *G0, double *R,
                                    double *S, double *T, double *U) {
    if (!R || !S || !T || !U) return wick_fail(WICK_EINVAL, "m-input ddNTK: no output");
    return dd_multi(c, m, G0, NULL, NULL, R, S, T, U);
}
