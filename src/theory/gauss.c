/* gauss.c — Gaussian expectations <f(z1) g(z2)> over a 2x2 covariance
 * (docs/theory.md §2): Gauss-Hermite nodes, a graded composite Gauss-Legendre rule for
 * large variances and kinked activations, and the closed forms of the
 * scale-invariant class, the perceptron and erf.
 *
 * The 2-D expectation is nested rather than a tensor product:
 *   <f(z1) g(z2)> = E_{z1}[ f(z1) E[g(z2) | z1] ],
 *   z2 | z1 ~ N(mu, s^2),  mu = (K12/K11) z1,  s^2 = K22 - K12^2/K11,
 * so that the inner rule can put a panel break exactly where z2 = 0, the
 * kink of ReLU-like activations and the sharp step of tanh at large K.  A
 * tensor-product rule in (u, v) would cut that line obliquely.  Perfect
 * correlation (s = 0) makes the inner expectation a point evaluation: no NaN.
 */
#include "theory.h"
#include <lapacke.h>
#include <math.h>
#include <pthread.h>
#include <string.h>

/* ---------------------------------------------------------------------------
 * Nodes (Golub-Welsch: eigenvalues of the Jacobi matrix are the nodes, the
 * squared first components of its eigenvectors times the mass the weights)
 * ------------------------------------------------------------------------- */

static double *gh_x[TH_GH_MAX + 1], *gh_w[TH_GH_MAX + 1];
static double *lg_x[TH_LEG_MAX + 1], *lg_w[TH_LEG_MAX + 1];
static pthread_mutex_t node_lock = PTHREAD_MUTEX_INITIALIZER;

/* off[k-1] is the Jacobi matrix's off-diagonal for k = 1..n-1; mass the
 * total weight. */
static wick_status golub_welsch(int n, const double *off, double mass, double **xo,
                                double **wo) {
    double *d = wick_malloc(sizeof(double) * n), *e = wick_malloc(sizeof(double) * n);
    double *z = wick_malloc(sizeof(double) * (size_t)n * n);
    double *x = wick_malloc(sizeof(double) * n), *w = wick_malloc(sizeof(double) * n);
    if (!d || !e || !z || !x || !w) {
        wick_free(d); wick_free(e); wick_free(z); wick_free(x); wick_free(w);
        return wick_fail(WICK_ENOMEM, "quadrature nodes: out of memory for %d nodes", n);
    }
    for (int i = 0; i < n; i++) d[i] = 0.0;
    for (int i = 0; i + 1 < n; i++) e[i] = off[i];
    lapack_int info = LAPACKE_dstev(LAPACK_COL_MAJOR, 'V', n, d, e, z, n);
    if (info != 0) {
        wick_free(d); wick_free(e); wick_free(z); wick_free(x); wick_free(w);
        return wick_fail(WICK_ENUMERIC, "quadrature nodes: dstev failed (info %d) for %d nodes",
                         (int)info, n);
    }
    /* symmetrise exactly: the rules are even, so force x_i = -x_{n-1-i} and
     * equal weights, which makes odd moments vanish to the last bit */
    for (int i = 0; i < n; i++) w[i] = mass * z[(size_t)i * n] * z[(size_t)i * n];
    for (int i = 0; i < n; i++) x[i] = d[i];
    for (int i = 0; i < n / 2; i++) {
        double xs = 0.5 * (x[n - 1 - i] - x[i]), ws = 0.5 * (w[i] + w[n - 1 - i]);
        x[i] = -xs; x[n - 1 - i] = xs; w[i] = w[n - 1 - i] = ws;
    }
    if (n % 2) x[n / 2] = 0.0;
    wick_free(d); wick_free(e); wick_free(z);
    *xo = x; *wo = w;
    return WICK_OK;
}

double th_gauss_moment(int k, double K) {
    if (k % 2) return 0;
    double m = 1;
    for (int j = k - 1; j > 0; j -= 2) m *= j * K;
    return m;
}

wick_status th_hermite(int n, const double **x, const double **w) {
    if (n < 2 || n > TH_GH_MAX)
        return wick_fail(WICK_EINVAL, "Gauss-Hermite: %d nodes outside [2, %d]", n, TH_GH_MAX);
    pthread_mutex_lock(&node_lock);
    wick_status s = WICK_OK;
    if (!gh_x[n]) {
        /* probabilists' Hermite He_k: x He_k = He_{k+1} + k He_{k-1}, so the
         * Jacobi matrix has off-diagonal sqrt(k); the weight N(0,1) has mass 1 */
        double off[TH_GH_MAX];
        for (int k = 1; k < n; k++) off[k - 1] = sqrt((double)k);
        s = golub_welsch(n, off, 1.0, &gh_x[n], &gh_w[n]);
    }
    pthread_mutex_unlock(&node_lock);
    if (s) return s;
    *x = gh_x[n]; *w = gh_w[n];
    return WICK_OK;
}

wick_status th_legendre(int m, const double **x, const double **w) {
    if (m < 2 || m > TH_LEG_MAX)
        return wick_fail(WICK_EINVAL, "Gauss-Legendre: %d nodes outside [2, %d]", m, TH_LEG_MAX);
    pthread_mutex_lock(&node_lock);
    wick_status s = WICK_OK;
    if (!lg_x[m]) {
        double off[TH_LEG_MAX];
        for (int k = 1; k < m; k++) off[k - 1] = k / sqrt(4.0 * k * k - 1.0);
        s = golub_welsch(m, off, 2.0, &lg_x[m], &lg_w[m]);
    }
    pthread_mutex_unlock(&node_lock);
    if (s) return s;
    *x = lg_x[m]; *w = lg_w[m];
    return WICK_OK;
}

/* ---------------------------------------------------------------------------
 * Rules for E[g(mean + s v)], v ~ N(0, 1), as iterators over (z, weight)
 * ------------------------------------------------------------------------- */

/* The composite rule covers |v| <= TH_U; beyond it the Gaussian mass is
 * 1.5e-23 and even sigma^4 ~ (10 s)^4 cannot bring it near 1e-15. */
#define TH_U 10.0
/* Largest number of panels per rule: bounds the work at huge variance. */
#define TH_MAX_PANELS 4000
/* Below this the Hermite rule is used for smooth activations: there
 * TH_GH_N nodes reach ~1e-13 or better (tests/test_theory_gauss.c). */
#define TH_GH_SMAX 0.5

static const double INV_SQRT2PI = 0.39894228040143267794;

typedef struct {
    int gh;                       /* 1: Hermite rule */
    const double *x, *w;          /* Hermite or Legendre nodes */
    int n, i;                     /* nodes per rule/panel, next node */
    double mean, s;
    /* composite: panels grow from v0 outwards, right side first */
    double v0, wmin, wmax, a, b;  /* current panel [a, b] */
    int side, panels;             /* side +1 then -1; 0 when done */
    int point;                    /* s == 0: a single node at the mean */
} rule_it;

static int next_panel(rule_it *r) {
    for (;;) {
        if (r->side == 0) return 0;
        double edge = r->side > 0 ? TH_U : -TH_U;
        double pos = r->side > 0 ? r->b : r->a;  /* the end of the last panel */
        if ((r->side > 0 && pos >= TH_U) || (r->side < 0 && pos <= -TH_U)) {
            if (r->side > 0) { r->side = -1; r->a = r->b = r->v0; continue; }
            r->side = 0;
            return 0;
        }
        /* width proportional to the distance from the kink (geometric
         * grading), between the activation's scale and the Gaussian's */
        double d = fabs(pos - r->v0), wdt = d < r->wmin ? r->wmin : d > r->wmax ? r->wmax : d;
        double nxt = pos + r->side * wdt;
        if (fabs(edge - nxt) < 0.5 * wdt || (r->side > 0 ? nxt > edge : nxt < edge)) nxt = edge;
        if (r->side > 0) { r->a = pos; r->b = nxt; } else { r->b = pos; r->a = nxt; }
        r->panels++;
        r->i = 0;
        return 1;
    }
}

static int rule_next(rule_it *r, double *z, double *w) {
    if (r->point) {
        if (r->point == 2) return 0;
        r->point = 2; *z = r->mean; *w = 1.0;
        return 1;
    }
    if (r->gh) {
        if (r->i >= r->n) return 0;
        *z = r->mean + r->s * r->x[r->i];
        *w = r->w[r->i];
        r->i++;
        return 1;
    }
    if (r->i >= r->n && !next_panel(r)) return 0;
    double h = 0.5 * (r->b - r->a), c = 0.5 * (r->b + r->a);
    double v = c + h * r->x[r->i];
    *z = r->mean + r->s * v;
    *w = h * r->w[r->i] * INV_SQRT2PI * exp(-0.5 * v * v);
    r->i++;
    return 1;
}

static int act_smooth(wick_act a) {
    return a.kind != WICK_ACT_PERCEPTRON && a.kind != WICK_ACT_RELU &&
           a.kind != WICK_ACT_LEAKY_RELU;
}

/* Sets up E[g(mean + s v)].  extra_min bounds the smallest panel (in v) from
 * above: the outer rule resolves the inner expectation's smoothed kink. */
static wick_status rule_init(rule_it *r, wick_act act, double mean, double s, double extra_min,
                             const th_quad *q) {
    memset(r, 0, sizeof *r);
    r->mean = mean; r->s = s;
    if (!(s > 1e-15 * (fabs(mean) + 1e-300)) || s < 1e-300) { r->point = 1; return WICK_OK; }
    int method = q ? q->method : TH_AUTO;
    if (method == TH_HERMITE || (method == TH_AUTO && act_smooth(act) && s <= TH_GH_SMAX)) {
        r->gh = 1;
        r->n = q && q->gh_n ? q->gh_n : TH_GH_N;
        return th_hermite(r->n, &r->x, &r->w);
    }
    r->n = q && q->leg_m ? q->leg_m : TH_LEG_M;
    wick_status st = th_legendre(r->n, &r->x, &r->w);
    if (st) return st;
    /* Every activation's features (kink, step, curvature, poles at Im z = pi/2
     * for tanh) sit within |z| ~ 1 of z = 0, i.e. within 1/s of v0 = -mean/s;
     * sin oscillates with period 2 pi in z everywhere, so its panels stay
     * below 4 in z.  Panels no wider than 3 in v resolve the Gaussian. */
    r->wmax = 3.0;
    if (act.kind == WICK_ACT_SIN && 4.0 / s < r->wmax) r->wmax = 4.0 / s;
    r->wmin = 2.0 / s;
    if (extra_min > 0 && extra_min < r->wmin) r->wmin = extra_min;
    if (r->wmin > r->wmax) r->wmin = r->wmax;
    if (r->wmin < 1e-9) r->wmin = 1e-9;
    double v0 = -mean / s;
    r->v0 = v0 > TH_U ? TH_U : v0 < -TH_U ? -TH_U : v0;
    /* the panel count: about 2 U / wmax plus the graded ones near v0 */
    double est = 2.0 * TH_U / r->wmax + 2.0 * (log2(r->wmax / r->wmin) + 2);
    if (est > TH_MAX_PANELS)
        return wick_fail(WICK_ENUMERIC, "Gaussian expectation of %s: variance %.3g too large for "
                         "the quadrature", wick_act_name(act), s * s);
    r->side = 1;
    r->a = r->b = r->v0;
    r->i = r->n;  /* forces next_panel on the first call */
    return WICK_OK;
}

/* sigma, sigma', sigma'' at z sharing the transcendental calls (the three
 * functions of act.c would each call tanh or exp again); same formulas. */
static inline void eval3(wick_act act, double z, int need1, int need2, double *s, double *s1,
                         double *s2) {
    switch ((int)act.kind) {
    case WICK_ACT_TANH: {
        double t = tanh(z), d = 1 - t * t;
        *s = t; *s1 = d; *s2 = -2 * t * d;
        return;
    }
    case WICK_ACT_SIGMOID: {
        double e = exp(-fabs(z)), p = 1 / (1 + e), sg = z >= 0 ? p : e * p, d = sg * (1 - sg);
        *s = sg; *s1 = d; *s2 = d * (1 - 2 * sg);
        return;
    }
    case WICK_ACT_SOFTPLUS: {
        double e = exp(-fabs(z)), p = 1 / (1 + e), sg = z >= 0 ? p : e * p;
        *s = (z > 0 ? z : 0) + log1p(e); *s1 = sg; *s2 = sg * (1 - sg);
        return;
    }
    case WICK_ACT_SWISH: {
        double e = exp(-fabs(z)), p = 1 / (1 + e), sg = z >= 0 ? p : e * p;
        *s = z * sg; *s1 = sg + z * sg * (1 - sg); *s2 = sg * (1 - sg) * (2 + z * (1 - 2 * sg));
        return;
    }
    case WICK_ACT_GELU: {
        double Phi = 0.5 * erfc(-z * 0.70710678118654752440), phi = INV_SQRT2PI * exp(-0.5 * z * z);
        *s = z * Phi; *s1 = Phi + z * phi; *s2 = phi * (2 - z * z);
        return;
    }
    case WICK_ACT_SIN: *s = sin(z); *s1 = need1 ? cos(z) : 0; *s2 = -*s; return;
    case TH_ACT_ERF: *s = erf(z); *s1 = 1.1283791670955125739 * exp(-z * z); *s2 = -2 * z * *s1; return;
    default:
        *s = wick_act_eval(act, z);
        *s1 = need1 ? wick_act_deriv(act, z) : 0;
        *s2 = need2 ? wick_act_deriv2(act, z) : 0;
    }
}

static inline void eval_basis(wick_act act, double z, unsigned need, double *B) {
    double s = 0, s1 = 0, s2 = 0;
    int need1 = (need & ((1u << TB_S1) | (1u << TB_S1SQ) | (1u << TB_ZSS1) | (1u << TB_S1QUART) |
                         (1u << TB_SQS1SQ) | (1u << TB_Z2S1SQ) | (1u << TB_Z4S1SQ) |
                         (1u << TB_Z2DSQ) | (1u << TB_S1CUBE) | (1u << TB_SS1) |
                         (1u << TB_SQS1) | (1u << TB_SS1SQ) | (1u << TB_ZS1) |
                         (1u << TB_SS1SQS2))) != 0;
    int need2 = (need & ((1u << TB_S2) | (1u << TB_SS2) | (1u << TB_Z2DSQ) |
                         (1u << TB_SS1SQS2))) != 0;
    if (need & ~(1u << TB_ONE)) eval3(act, z, need1, need2, &s, &s1, &s2);
    B[TB_ONE] = 1.0; B[TB_S] = s; B[TB_S1] = s1; B[TB_S2] = s2;
    B[TB_SQ] = s * s; B[TB_CUBE] = s * s * s; B[TB_QUART] = B[TB_SQ] * B[TB_SQ];
    B[TB_S1SQ] = s1 * s1; B[TB_SS2] = s * s2; B[TB_ZS] = z * s; B[TB_ZSS1] = z * s * s1;
    B[TB_S1QUART] = B[TB_S1SQ] * B[TB_S1SQ]; B[TB_SQS1SQ] = B[TB_SQ] * B[TB_S1SQ];
    B[TB_Z2S1SQ] = z * z * B[TB_S1SQ]; B[TB_Z4S1SQ] = z * z * B[TB_Z2S1SQ];
    B[TB_Z2DSQ] = z * z * (B[TB_S1SQ] + B[TB_SS2]);
    B[TB_S1CUBE] = B[TB_S1SQ] * s1;
    B[TB_SS1] = s * s1; B[TB_SQS1] = B[TB_SQ] * s1; B[TB_SS1SQ] = s * B[TB_S1SQ];
    B[TB_ZS1] = z * s1;
    B[TB_SS1SQS2] = B[TB_SS1SQ] * s2;
}

wick_status th_expect2(wick_act act, double K11, double K12, double K22, int np,
                       const th_pair *p, double *out, const th_quad *q) {
    unsigned need_a = 0, need_b = 0;
    for (int k = 0; k < np; k++) {
        need_a |= 1u << p[k].a; need_b |= 1u << p[k].b;
        out[k] = 0.0;
    }
    double sd1 = sqrt(K11), ratio = K11 > 0 ? K12 / K11 : 0.0;
    double cvar = K11 > 0 ? K22 - K12 * ratio : K22;
    double sc = cvar > 0 ? sqrt(cvar) : 0.0;
    /* the inner expectation smooths the kink at z2 = 0 over a width sc in z2,
     * i.e. over sc * sd1 / |K12| in the outer variable u = z1 / sd1 */
    double extra = 0.0;
    if (K11 > 0 && K12 != 0 && sc > 0) extra = sc * sd1 / fabs(K12);
    rule_it ro, ri;
    wick_status st = rule_init(&ro, act, 0.0, sd1, extra, q);
    if (st) return st;
    double z1, w1, z2, w2, Ba[TB_COUNT], Bb[TB_COUNT], inner[TB_COUNT];
    while (rule_next(&ro, &z1, &w1)) {
        if (w1 == 0.0) continue;
        st = rule_init(&ri, act, ratio * z1, sc, 0.0, q);
        if (st) return st;
        for (int b = 0; b < TB_COUNT; b++) inner[b] = 0.0;
        while (rule_next(&ri, &z2, &w2)) {
            eval_basis(act, z2, need_b, Bb);
            for (int b = 0; b < TB_COUNT; b++)
                if (need_b & (1u << b)) inner[b] += w2 * Bb[b];
        }
        eval_basis(act, z1, need_a, Ba);
        for (int k = 0; k < np; k++) out[k] += w1 * Ba[p[k].a] * inner[p[k].b];
    }
    return WICK_OK;
}

wick_status th_expect1(wick_act act, double K, int nb, const int *b, double *out,
                       const th_quad *q) {
    unsigned need = 0;
    for (int k = 0; k < nb; k++) { need |= 1u << b[k]; out[k] = 0.0; }
    rule_it r;
    wick_status st = rule_init(&r, act, 0.0, sqrt(K > 0 ? K : 0.0), 0.0, q);
    if (st) return st;
    double z, w, B[TB_COUNT];
    while (rule_next(&r, &z, &w)) {
        eval_basis(act, z, need, B);
        for (int k = 0; k < nb; k++) out[k] += w * B[b[k]];
    }
    return WICK_OK;
}

/* ---------------------------------------------------------------------------
 * Closed forms (docs/theory.md §2)
 * ------------------------------------------------------------------------- */

int th_scale_invariant(wick_act act, double *ap, double *am) {
    switch (act.kind) {
    case WICK_ACT_LINEAR: *ap = 1; *am = 1; return 1;
    case WICK_ACT_RELU: *ap = 1; *am = 0; return 1;
    case WICK_ACT_LEAKY_RELU: *ap = 1; *am = act.slope; return 1;
    default: return 0;
    }
}

/* theta = arccos of the correlation, computed so that rho = +-1 exactly
 * gives 0 or pi without a NaN from rounding; the clamped correlation to
 * *rho_out when it is not NULL */
static double corr_angle(double K11, double K12, double K22, double *rho_out) {
    double rho = K12 / sqrt(K11 * K22);
    if (rho > 1) rho = 1;
    if (rho < -1) rho = -1;
    if (rho_out) *rho_out = rho;
    return acos(rho);
}

void th_si_pair(double ap, double am, double K11, double K12, double K22, double *ss,
                double *s1s1, double *dss_dK11, double *dss_dK22) {
    double A = ap * ap + am * am, B = 2 * ap * am;
    if (!(K11 > 0) || !(K22 > 0)) {
        /* one of z1, z2 is identically 0, where sigma = 0 and sigma'(0) = a-
         * (act.c's convention); the other has <sigma'> = (a+ + a-)/2 */
        if (ss) *ss = 0.0;
        if (s1s1) *s1s1 = (K11 > 0 ? 0.5 * (ap + am) : am) * (K22 > 0 ? 0.5 * (ap + am) : am);
        if (dss_dK11) *dss_dK11 = 0.0;
        if (dss_dK22) *dss_dK22 = 0.0;
        return;
    }
    /* cos(theta) is the correlation itself and sin(theta) = sqrt(1 - rho^2):
       one acos an entry rather than acos, cos and sin (the Gram flow's ReLU
       layer spends most of its time here) */
    double c, th = corr_angle(K11, K12, K22, &c), sn = sqrt((1 - c) * (1 + c)), r = sqrt(K11 * K22);
    double G = r / (2 * M_PI) * (A * (sn + (M_PI - th) * c) + B * (th * c - sn));
    double D = (A * (M_PI - th) + B * th) / (2 * M_PI);  /* dG/dK12 = <sigma' sigma'> */
    if (ss) *ss = G;
    if (s1s1) *s1s1 = D;
    /* G = sqrt(K11 K22) J(rho)/(2 pi), rho = K12/sqrt(K11 K22):
     * dG/dK11 = (G - K12 dG/dK12) / (2 K11) */
    if (dss_dK11) *dss_dK11 = (G - K12 * D) / (2 * K11);
    if (dss_dK22) *dss_dK22 = (G - K12 * D) / (2 * K22);
}

void th_sin_pair(double K11, double K12, double K22, double *ss, double *cc) {
    /* <sin z1 sin z2> = e^{-(K11+K22)/2} sinh K12, <cos z1 cos z2> the cosh,
     * as differences of exponentials that cannot overflow (|K12| <= the mean
     * of the variances) */
    double h = 0.5 * (K11 + K22), a = exp(K12 - h), b = exp(-K12 - h);
    if (ss) *ss = 0.5 * (a - b);
    if (cc) *cc = 0.5 * (a + b);
}

double th_perceptron_pair(double K11, double K12, double K22) {
    /* sigma(0) = 1: a zero variance makes that factor identically 1 */
    if (!(K11 > 0) && !(K22 > 0)) return 1.0;
    if (!(K11 > 0) || !(K22 > 0)) return 0.5;
    return (M_PI - corr_angle(K11, K12, K22, NULL)) / (2 * M_PI);
}

wick_status th_check_cov(double K11, double *K12, double K22, const char *what) {
    if (!isfinite(K11) || !isfinite(*K12) || !isfinite(K22))
        return wick_fail(WICK_EINVAL, "%s: covariance [[%g, %g], [%g, %g]] is not finite", what,
                         K11, *K12, *K12, K22);
    if (K11 < 0 || K22 < 0)
        return wick_fail(WICK_EINVAL, "%s: negative variance in [[%g, %g], [%g, %g]]", what, K11,
                         *K12, *K12, K22);
    double lim = sqrt(K11 * K22);
    if (fabs(*K12) > lim) {
        if (fabs(*K12) > lim * (1 + 1e-9) + 1e-300)
            return wick_fail(WICK_ENUMERIC, "%s: covariance [[%g, %g], [%g, %g]] is not positive "
                             "semi-definite", what, K11, *K12, *K12, K22);
        *K12 = copysign(lim, *K12);
    }
    return WICK_OK;
}

wick_status th_pair_ss(wick_act act, double K11, double K12, double K22, double *ss,
                       double *s1s1) {
    double ap, am;
    if (th_scale_invariant(act, &ap, &am)) {
        th_si_pair(ap, am, K11, K12, K22, ss, s1s1, NULL, NULL);
        return WICK_OK;
    }
    if (act.kind == WICK_ACT_PERCEPTRON) {
        *ss = th_perceptron_pair(K11, K12, K22);
        if (s1s1) *s1s1 = NAN;
        return WICK_OK;
    }
    if (act.kind == WICK_ACT_SIN) {
        th_sin_pair(K11, K12, K22, ss, s1s1);
        return WICK_OK;
    }
    th_pair p[2] = {{TB_S, TB_S}, {TB_S1, TB_S1}};
    double o[2];
    wick_status st = th_expect2(act, K11, K12, K22, s1s1 ? 2 : 1, p, o, NULL);
    if (st) return st;
    *ss = o[0];
    if (s1s1) *s1s1 = o[1];
    return WICK_OK;
}

/* ---------------------------------------------------------------------------
 * Public expectations
 * ------------------------------------------------------------------------- */

static wick_status check_deriv(wick_act a, int d) {
    if (d < 0 || d > 2) return wick_fail(WICK_EINVAL, "Gaussian expectation: derivative order %d "
                                         "not in {0, 1, 2}", d);
    if (d >= 1 && a.kind == WICK_ACT_PERCEPTRON)
        return wick_fail(WICK_EINVAL, "perceptron: its derivative is a delta, so derivative "
                         "expectations are undefined");
    if (d == 2 && !act_smooth(a))
        return wick_fail(WICK_EINVAL, "%s: its second derivative is a delta, so this expectation "
                         "is undefined as a number", wick_act_name(a));
    return WICK_OK;
}

wick_status wick_gauss_expect2(wick_act a, int d1, int d2, double K11, double K12, double K22,
                               double *out) {
    if ((unsigned)a.kind >= WICK_ACT_COUNT)
        return wick_fail(WICK_EINVAL, "Gaussian expectation: unknown activation %d", (int)a.kind);
    wick_status st = th_check_cov(K11, &K12, K22, "Gaussian expectation");
    if (st) return st;
    if ((st = check_deriv(a, d1)) || (st = check_deriv(a, d2))) return st;
    double ap, am;
    if (d1 == d2 && d1 <= 1 && th_scale_invariant(a, &ap, &am) && K11 > 0 && K22 > 0) {
        double ss, s1;
        th_si_pair(ap, am, K11, K12, K22, &ss, &s1, NULL, NULL);
        *out = d1 == 0 ? ss : s1;
        return WICK_OK;
    }
    if (d1 == d2 && d1 <= 1 && a.kind == WICK_ACT_SIN) {
        double ss, cc;
        th_sin_pair(K11, K12, K22, &ss, &cc);
        *out = d1 == 0 ? ss : cc;
        return WICK_OK;
    }
    if (d1 == 0 && d2 == 0 && a.kind == WICK_ACT_PERCEPTRON) {
        *out = th_perceptron_pair(K11, K12, K22);
        return WICK_OK;
    }
    static const int basis[3] = {TB_S, TB_S1, TB_S2};
    th_pair p = {basis[d1], basis[d2]};
    return th_expect2(a, K11, K12, K22, 1, &p, out, NULL);
}

wick_status wick_gauss_expect1(wick_act a, int d, int p, double K, double *out) {
    if ((unsigned)a.kind >= WICK_ACT_COUNT)
        return wick_fail(WICK_EINVAL, "Gaussian expectation: unknown activation %d", (int)a.kind);
    if (!(K >= 0) || !isfinite(K))
        return wick_fail(WICK_EINVAL, "Gaussian expectation: variance %g is not a finite "
                         "non-negative number", K);
    if (p < 1 || p > 4)
        return wick_fail(WICK_EINVAL, "Gaussian expectation: power %d not in 1..4", p);
    wick_status st = check_deriv(a, d);
    if (st) return st;
    double ap, am;
    if (d == 0 && th_scale_invariant(a, &ap, &am) && (p == 2 || p == 4)) {
        /* <sigma^2> = A2 K, <sigma^4> = 3 A4 K^2 (docs/theory.md §2) */
        *out = p == 2 ? 0.5 * (ap * ap + am * am) * K
                      : 1.5 * (ap * ap * ap * ap + am * am * am * am) * K * K;
        return WICK_OK;
    }
    if (d == 0 && a.kind == WICK_ACT_PERCEPTRON) { *out = K > 0 ? 0.5 : 1.0; return WICK_OK; }
    if (d == 0) {
        static const int pw[5] = {0, TB_S, TB_SQ, TB_CUBE, TB_QUART};
        return th_expect1(a, K, 1, &pw[p], out, NULL);
    }
    /* derivative powers: through the pair rule at perfect correlation */
    static const int basis[3] = {TB_S, TB_S1, TB_S2};
    if (p == 1) return th_expect1(a, K, 1, &basis[d], out, NULL);
    if (d == 1 && p == 2) { int b = TB_S1SQ; return th_expect1(a, K, 1, &b, out, NULL); }
    return wick_fail(WICK_EINVAL, "Gaussian expectation: power %d of derivative %d not offered",
                     p, d);
}
