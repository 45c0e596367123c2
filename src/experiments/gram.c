/* gram.c — the last layer's NNGP kernel K and NTK Theta of an MLP at
 * infinite width, for many inputs of one norm, at the speed of the input
 * Gram (docs/kernel.md).
 *
 * With every input at the same |x|^2/n0 = q, every layer's diagonal is the
 * same for all inputs, so the whole L-layer walk of an entry (PDLT eq. (4.118)
 * for K, eq. (8.49) for Theta; docs/experiments.md) is a function of the
 * input correlation alone: K_L(a, b) = F(theta), Theta_L(a, b) = H(theta)
 * with theta = arccos(x_a.x_b / (n0 q)).  Both are analytic in theta on
 * [0, pi] for ReLU (the arccos kernel is entire in the angle) and for smooth
 * activations, so piecewise Chebyshev interpolation in theta converges
 * geometrically; the pieces are built once per network from the exact
 * layer-by-layer walk at the nodes (closed forms for the scale-invariant
 * class, wick_gauss_expect2's quadrature otherwise) and refined until the
 * Chebyshev tails are below 1e-14 of the diagonal.  An entry then costs one
 * vectorised arccos (glibc's libmvec) and two Clenshaw sums, whatever the
 * depth: every layer of an entry is computed while it is in registers.
 * What remains is the input Gram itself, a BLAS dsyrk/dgemm. */
#include "experiments.h"
#include "backend/backend.h"
#include <cblas.h>
#include <lapacke.h>
#include <limits.h>
#include <stdio.h>
#include <math.h>
#include <omp.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>

/* glibc's vector arccos (libmvec, _ZGVdN4v_acos with AVX2): measured faster
 * than SLEEF's 1-ulp acos and within 1.5 ulp (bench/README.md, Gram flow) */
#if defined(__x86_64__) && defined(__GLIBC__) && !defined(__clang__) && \
    (__GLIBC__ > 2 || __GLIBC_MINOR__ >= 35)
__attribute__((simd("notinbranch"))) double acos(double);
__attribute__((simd("notinbranch"))) double tanh(double);
#endif

#define KG_DEG 15            /* Chebyshev degree per piece: 16 nodes */
#define KG_NC (KG_DEG + 1)
#define KG_MIN_PIECES 8
#define KG_MAX_PIECES 4096
#define KG_TOL 1e-14         /* Chebyshev tail, relative to the diagonal */

struct wick_kgram {
    wick_theory_config c;
    double *cb_l, *cw_l, *lb_l, *lw_l; /* per-layer copies, [depth] */
    double q;
    int pieces;
    double *lo, *iw2;        /* [pieces]: left end and 2 / width, in theta */
    int *cell;               /* [cells]: the piece covering each of `cells` equal cells */
    int cells;
    double ih;               /* cells / pi */
    double *coef;            /* [pieces][KG_NC][2]: K then Theta, c_0 halved */
    double *kd_l;            /* [depth]: each layer's diagonal */
    double kdiag, tdiag;     /* K_L and Theta_L of an input with itself */
    double tail;             /* the largest Chebyshev tail, relative */
    double build_seconds;
    int closed;              /* the layers' maps are closed forms */
};

/* Half the width of the strip around the real axis where the activation is
 * analytic (in z), capped at 3: the trapezoid rule's error on it. */
static double strip(wick_act a) {
    switch (a.kind) {
    case WICK_ACT_TANH: return M_PI / 2;   /* poles at i pi/2 */
    case WICK_ACT_SIGMOID: case WICK_ACT_SOFTPLUS: case WICK_ACT_SWISH: return M_PI;
    default: return 2.0;                   /* entire (gelu, sin), growth e^{y^2/2} at most */
    }
}

/* <sigma(a) sigma(b)> and <sigma'(a) sigma'(b)> for (a, b) of variance kd
 * and correlation rho, smooth sigma: a = sqrt(kd) (c u + s w), b = sqrt(kd)
 * (c u - s w), c = sqrt((1 + rho)/2), s = sqrt((1 - rho)/2), u, w standard
 * normal and independent, by the trapezoid rule in u and w.  For an
 * integrand analytic in the strip |Im| < d the rule's error is about
 * exp(-2 pi d / h) exp(d^2/2) times the integrand's size near the strip's
 * edge (sigma' of tanh has double poles there); h = d/8 (d at most 3) is
 * within 1e-14 where h = d/6 was 2e-12 off, and c or s -> 0 (rho = -+1)
 * only widens the strip.  The product is
 * even in w, so w >= 0 only.  Measured against wick_gauss_expect2's graded
 * Gauss-Legendre rule in tests/test_kgram.c. */
static wick_status quad_pair(wick_act act, double kd, double rho, double *ss, double *s1) {
    rho = rho > 1 ? 1 : rho < -1 ? -1 : rho;
    const double U = 9.5;   /* e^{-U^2/2} = 2e-20 */
    double sk = sqrt(kd), c = sqrt(0.5 * (1 + rho)), s = sqrt(0.5 * (1 - rho)), d0 = strip(act);
    double du = sk * c > 0 ? d0 / (sk * c) : 3, dw = sk * s > 0 ? d0 / (sk * s) : 3;
    double hu = fmin(du, 3.0) / 8, hw = fmin(dw, 3.0) / 8;
    long nu = (long)ceil(U / hu), nw = (long)ceil(U / hw);
    if (nu > 20000 || nw > 20000)
        return wick_fail(WICK_ENUMERIC, "kernel Gram: the variance %g of %s is too large for the "
                         "map's quadrature", kd, wick_act_name(act));
    double accs = 0, acc1 = 0;
    const double nrm = 0.39894228040143267794;
    size_t m = (size_t)(2 * nu + 1);
    double *buf = wick_malloc(sizeof(double) * m * 5);
    if (!buf) return wick_fail(WICK_ENOMEM, "kernel Gram: out of memory");
    double *A = buf, *wu = buf + m, *sa = buf + 2 * m, *sb = buf + 3 * m, *d = buf + 4 * m;
    for (size_t i = 0; i < m; i++) {
        double u = hu * ((double)i - (double)nu);
        A[i] = sk * c * u;
        wu[i] = exp(-0.5 * u * u);
    }
    int is_tanh = act.kind == WICK_ACT_TANH;
    for (long j = 0; j <= nw; j++) {
        double w = hw * (double)j, ww = (j ? 2 : 1) * hw * nrm * exp(-0.5 * w * w);
        double B = sk * s * w, is = 0, i1 = 0;
        if (is_tanh) {   /* sigma' = 1 - sigma^2: one vectorised tanh a point */
#pragma omp simd reduction(+ : is, i1)
            for (size_t i = 0; i < m; i++) {
                double ta = tanh(A[i] + B), tb = tanh(A[i] - B);
                is += wu[i] * ta * tb;
                i1 += wu[i] * (1 - ta * ta) * (1 - tb * tb);
            }
        } else {
            for (size_t i = 0; i < m; i++) {
                sa[i] = wick_act_eval(act, A[i] + B);
                sb[i] = wick_act_eval(act, A[i] - B);
                d[i] = wick_act_deriv(act, A[i] + B) * wick_act_deriv(act, A[i] - B);
            }
            for (size_t i = 0; i < m; i++) {
                is += wu[i] * sa[i] * sb[i];
                i1 += wu[i] * d[i];
            }
        }
        accs += ww * is;
        acc1 += ww * i1;
    }
    wick_free(buf);
    *ss = accs * hu * nrm;
    *s1 = acc1 * hu * nrm;
    return WICK_OK;
}

/* <sigma sigma> and <sigma' sigma'> at the 2x2 covariance [[kd, k12],
 * [k12, kd]]: closed forms for the scale-invariant class (sigma = a+ z for
 * z >= 0, a- z below; PDLT sec. 5.5's arccos kernel), quadrature otherwise. */
static wick_status pair_ss(const wick_kgram *g, double ap, double am, double kd, double k12,
                           double *ss, double *s1) {
    if (g->closed) {
        double rho = k12 / kd;
        if (rho > 1) rho = 1;
        if (rho < -1) rho = -1;
        double th = acos(rho), sn = sqrt((1 - rho) * (1 + rho));
        double A = ap * ap + am * am, B = 2 * ap * am;
        *ss = kd / (2 * M_PI) * (A * (sn + (M_PI - th) * rho) + B * (th * rho - sn));
        *s1 = (A * (M_PI - th) + B * th) / (2 * M_PI);
        return WICK_OK;
    }
    return quad_pair(g->c.act, kd, k12 / kd, ss, s1);
}

/* The exact walk of one entry at input correlation rho through all layers:
 * K_1 = C_b + C_W q rho, Theta_1 = lambda_b + lambda_W q rho, then
 * K_{l+1} = C_b + C_W <sigma sigma>, Theta_{l+1} = lambda_b + lambda_W
 * <sigma sigma> + C_W <sigma' sigma'> Theta_l (PDLT eqs. (4.118), (8.49)),
 * the diagonal walked beside it. */
static wick_status walk(const wick_kgram *g, double rho, double *K, double *T) {
    double ap = 0, am = 0;
    if (g->closed) {
        if (g->c.act.kind == WICK_ACT_LINEAR) ap = am = 1;
        else if (g->c.act.kind == WICK_ACT_RELU) ap = 1;
        else { ap = 1; am = g->c.act.slope; }
    }
    double k = g->cb_l[0] + g->cw_l[0] * g->q * rho;
    double t = g->lb_l[0] + g->lw_l[0] * g->q * rho;
    for (int l = 1; l < g->c.depth; l++) {
        double ss, s1;
        wick_status st = pair_ss(g, ap, am, g->kd_l[l - 1], k, &ss, &s1);
        if (st) return st;
        t = g->lb_l[l] + g->lw_l[l] * ss + g->cw_l[l] * s1 * t;
        k = g->cb_l[l] + g->cw_l[l] * ss;
    }
    *K = k;
    *T = t;
    return WICK_OK;
}

/* Piecewise Chebyshev interpolation of the walk in theta, pieces bisected
 * until each one's tail (its last two coefficients) is below KG_TOL of the
 * diagonal: the pieces crowd where the map bends (small angles at large
 * variance), and each round's nodes are walked in parallel. */
typedef struct { double lo, w; int level; } piece;

static wick_status build(wick_kgram *g) {
    int cap = 2 * KG_MAX_PIECES, nacc = 0, ntodo = KG_MIN_PIECES;
    piece *todo = wick_malloc(sizeof(piece) * (size_t)cap), *acc = wick_malloc(sizeof(piece) * (size_t)cap);
    double *v = wick_malloc(sizeof(double) * (size_t)cap * KG_NC * 2);
    double *cacc = wick_malloc(sizeof(double) * (size_t)cap * KG_NC * 2);
    double *ctodo = wick_malloc(sizeof(double) * (size_t)cap * KG_NC * 2);
    wick_status st = WICK_OK;
    if (!todo || !acc || !v || !cacc || !ctodo) {
        st = wick_fail(WICK_ENOMEM, "kernel Gram: out of memory for the map");
        goto out;
    }
    for (int p = 0; p < ntodo; p++)
        todo[p] = (piece){M_PI * p / KG_MIN_PIECES, M_PI / KG_MIN_PIECES, 3};
    double tail = 0;
    int maxlevel = 3;
    while (ntodo > 0) {
        size_t nv = (size_t)ntodo * KG_NC;
        char msg[256] = "";
#pragma omp parallel for schedule(dynamic, 1)
        for (size_t i = 0; i < nv; i++) {
            const piece *pc = &todo[i / KG_NC];
            double x = cos(M_PI * ((double)(i % KG_NC) + 0.5) / KG_NC);
            wick_status s = walk(g, cos(pc->lo + 0.5 * pc->w * (x + 1)), &v[2 * i], &v[2 * i + 1]);
            if (s) {
#pragma omp critical(wick_kgram_err)
                if (!st) { st = s; snprintf(msg, sizeof msg, "%s", wick_last_error()); }
            }
        }
        if (st) { st = wick_fail(st, "%s", msg); goto out; }
        int nnext = 0;
        for (int p = 0; p < ntodo; p++) {
            double *cf = ctodo + (size_t)p * KG_NC * 2, t = 0;
            for (int w = 0; w < 2; w++) {
                double scale = fabs(w ? g->tdiag : g->kdiag);
                if (!(scale > 0)) scale = 1;
                for (int k = 0; k < KG_NC; k++) {
                    double sum = 0;
                    for (int j = 0; j < KG_NC; j++)
                        sum += v[2 * ((size_t)p * KG_NC + j) + w] * cos(M_PI * k * (j + 0.5) / KG_NC);
                    sum *= 2.0 / KG_NC;
                    if (k == 0) sum *= 0.5;
                    cf[2 * k + w] = sum;
                    if (k >= KG_DEG - 1) t = fmax(t, fabs(sum) / scale);
                }
            }
            if (t > KG_TOL && (1 << (todo[p].level + 1)) <= KG_MAX_PIECES && nnext + 2 <= cap / 2) {
                piece a = todo[p];
                a.w *= 0.5;
                a.level++;
                todo[cap / 2 + nnext++] = a;   /* the upper half of todo[] is the next round */
                a.lo += a.w;
                todo[cap / 2 + nnext++] = a;
                continue;
            }
            tail = fmax(tail, t);
            if (todo[p].level > maxlevel) maxlevel = todo[p].level;
            acc[nacc] = todo[p];
            memcpy(cacc + (size_t)nacc * KG_NC * 2, cf, sizeof(double) * KG_NC * 2);
            nacc++;
        }
        memmove(todo, todo + cap / 2, sizeof(piece) * (size_t)nnext);
        ntodo = nnext;
        if (nacc + ntodo > cap / 2) break;
    }
    /* pieces in theta order, and the cell -> piece lookup */
    int cells = 1 << maxlevel;
    g->cell = wick_malloc(sizeof(int) * (size_t)cells);
    g->lo = wick_malloc(sizeof(double) * (size_t)nacc * 2);
    g->coef = wick_malloc(sizeof(double) * (size_t)nacc * KG_NC * 2);
    if (!g->cell || !g->lo || !g->coef) {
        st = wick_fail(WICK_ENOMEM, "kernel Gram: out of memory for the map");
        goto out;
    }
    g->iw2 = g->lo + nacc;
    for (int p = 0; p < nacc; p++) {
        g->lo[p] = acc[p].lo;
        g->iw2[p] = 2.0 / acc[p].w;
        memcpy(g->coef + (size_t)p * KG_NC * 2, cacc + (size_t)p * KG_NC * 2, sizeof(double) * KG_NC * 2);
        int c0 = (int)lround(acc[p].lo / M_PI * cells), c1 = (int)lround((acc[p].lo + acc[p].w) / M_PI * cells);
        for (int c = c0; c < c1 && c < cells; c++) g->cell[c] = p;
    }
    g->pieces = nacc;
    g->cells = cells;
    g->ih = cells / M_PI;
    g->tail = tail;
out:
    wick_free(todo); wick_free(acc); wick_free(v); wick_free(cacc); wick_free(ctodo);
    return st;
}

wick_status wick_kgram_new(const wick_theory_config *c, double q, wick_kgram **out) {
    if (!out) return wick_fail(WICK_EINVAL, "kernel Gram: no output handle");
    *out = NULL;
    if (!c || c->depth < 1 || c->depth > EX_MAX_DEPTH)
        return wick_fail(WICK_EINVAL, "kernel Gram: depth %d, expected 1..%d", c ? c->depth : 0,
                         EX_MAX_DEPTH);
    if ((unsigned)c->act.kind >= WICK_ACT_COUNT)
        return wick_fail(WICK_EINVAL, "kernel Gram: unknown activation %d", (int)c->act.kind);
    if (c->act.kind == WICK_ACT_PERCEPTRON)
        return wick_fail(WICK_EINVAL, "kernel Gram: the perceptron has no NTK (its derivative "
                         "is a delta); use wick_gram_flow");
    if (!isfinite(q) || !(q > 0))
        return wick_fail(WICK_EINVAL, "kernel Gram: input norm |x|^2/n0 = %g, expected a "
                         "positive number", q);
    wick_kgram *g = wick_calloc(1, sizeof *g);
    if (!g) return wick_fail(WICK_ENOMEM, "kernel Gram: out of memory");
    g->c = *c;
    g->q = q;
    size_t L = (size_t)c->depth;
    g->cb_l = wick_malloc(sizeof(double) * L * 4);
    if (!g->cb_l) { wick_free(g); return wick_fail(WICK_ENOMEM, "kernel Gram: out of memory"); }
    g->cw_l = g->cb_l + L; g->lb_l = g->cw_l + L; g->lw_l = g->lb_l + L;
    for (size_t l = 0; l < L; l++) {
        g->cb_l[l] = c->cb_l ? c->cb_l[l] : c->cb;
        g->cw_l[l] = c->cw_l ? c->cw_l[l] : c->cw;
        g->lb_l[l] = c->lambda_b_l ? c->lambda_b_l[l] : c->lambda_b;
        g->lw_l[l] = c->lambda_w_l ? c->lambda_w_l[l] : c->lambda_w;
        double v[4] = {g->cb_l[l], g->cw_l[l], g->lb_l[l], g->lw_l[l]};
        for (int k = 0; k < 4; k++)
            if (!isfinite(v[k]) || v[k] < 0) {
                wick_kgram_free(g);
                return wick_fail(WICK_EINVAL, "kernel Gram: layer %zu: C_b, C_W, lambda_b, "
                                 "lambda_W must be finite and non-negative (%g)", l + 1, v[k]);
            }
    }
    g->closed = c->act.kind == WICK_ACT_RELU || c->act.kind == WICK_ACT_LINEAR ||
                c->act.kind == WICK_ACT_LEAKY_RELU;
    double t0 = omp_get_wtime();
    wick_status st = WICK_OK;
    if (!(g->kd_l = wick_malloc(sizeof(double) * L)))
        st = wick_fail(WICK_ENOMEM, "kernel Gram: out of memory");
    /* the diagonal, one input through the layers */
    double ap = 1, am = g->c.act.kind == WICK_ACT_LEAKY_RELU ? g->c.act.slope : g->c.act.kind == WICK_ACT_LINEAR ? 1 : 0;
    for (size_t l = 0; l < L && !st; l++) {
        double kd = g->cb_l[0] + g->cw_l[0] * q, ss, s1;
        if (l) {
            st = pair_ss(g, ap, am, g->kd_l[l - 1], g->kd_l[l - 1], &ss, &s1);
            kd = g->cb_l[l] + g->cw_l[l] * ss;
        }
        if (!st && !(kd > 0) && l + 1 < L)
            st = wick_fail(WICK_EINVAL, "kernel Gram: the layer-%zu variance is %g; the map over "
                           "the correlation needs a positive one", l + 1, kd);
        g->kd_l[l] = kd;
    }
    if (!st) st = walk(g, 1.0, &g->kdiag, &g->tdiag);
    /* a map whose tails never get below KG_TOL keeps its finest pieces and
       reports its tail */
    if (!st) st = build(g);
    g->build_seconds = omp_get_wtime() - t0;
    if (st) { wick_kgram_free(g); return st; }
    *out = g;
    return WICK_OK;
}

void wick_kgram_free(wick_kgram *g) {
    if (!g) return;
    wick_free(g->coef);
    wick_free(g->cb_l);
    wick_free(g->kd_l);
    wick_free(g->lo);
    wick_free(g->cell);
    wick_free(g);
}

void wick_kgram_info(const wick_kgram *g, wick_kgram_stats *s) {
    s->kdiag = g->kdiag;
    s->tdiag = g->tdiag;
    s->pieces = g->pieces;
    s->degree = KG_DEG;
    s->tail = g->tail;
    s->build_seconds = g->build_seconds;
}

/* The map on n values: G holds x_a.x_b/n0 on entry; K and T (either may be
 * NULL; K may be G itself) receive the last layer's entries. */
static void map_values(const wick_kgram *g, const double *G, size_t n, double *K, double *T) {
    const double iq = 1.0 / g->q, ih = g->ih, *lo = g->lo, *iw2 = g->iw2;
    const double *cf = g->coef;
    const int *cell = g->cell;
    const long last = g->cells - 1;
    enum { CHUNK = 256 };
    double th[CHUNK], kv[CHUNK], tv[CHUNK];
    /* two vector loops a chunk (a branch-free body each: gcc vectorises
       neither when the angle and the sums share one); int indices in the
       second, which gcc vectorises with gathers (with size_t ones it does
       not: 38 -> 24 ns an entry, bench/README.md) */
    for (size_t i0 = 0; i0 < n; i0 += CHUNK) {
        size_t m = n - i0 < CHUNK ? n - i0 : CHUNK;
#pragma omp simd
        for (size_t i = 0; i < m; i++) {
            double rho = G[i0 + i] * iq;
            rho = rho > 1 ? 1 : rho;
            rho = rho < -1 ? -1 : rho;
            th[i] = acos(rho);
        }
#pragma omp simd simdlen(4)
        for (int i = 0; i < (int)m; i++) {
            int q = (int)(th[i] * ih);
            q = q > (int)last ? (int)last : q;
            int p = cell[q];
            double t = (th[i] - lo[p]) * iw2[p] - 1, t2 = 2 * t;
            int base = p * (KG_NC * 2);
            double bk1 = 0, bk2 = 0, bt1 = 0, bt2 = 0;
#pragma GCC unroll 16
            for (int k = KG_DEG; k >= 1; k--) {
                double bk = t2 * bk1 - bk2 + cf[base + 2 * k], bt = t2 * bt1 - bt2 + cf[base + 2 * k + 1];
                bk2 = bk1; bk1 = bk;
                bt2 = bt1; bt1 = bt;
            }
            kv[i] = t * bk1 - bk2 + cf[base];
            tv[i] = t * bt1 - bt2 + cf[base + 1];
        }
        if (K) memcpy(K + i0, kv, sizeof(double) * m);
        if (T) memcpy(T + i0, tv, sizeof(double) * m);
    }
}

wick_status wick_kgram_map(const wick_kgram *g, const double *rho, size_t n, double *K, double *T) {
    if (!g || (n && !rho)) return wick_fail(WICK_EINVAL, "kernel Gram: no map or no correlations");
    double *G = wick_malloc(sizeof(double) * (n ? n : 1));
    if (!G) return wick_fail(WICK_ENOMEM, "kernel Gram: out of memory");
    for (size_t i = 0; i < n; i++) G[i] = rho[i] * g->q;
    map_values(g, G, n, K, T);
    wick_free(G);
    return WICK_OK;
}

wick_status wick_kgram_walk(const wick_kgram *g, double rho, double *K, double *T) {
    if (!g || !(fabs(rho) <= 1))
        return wick_fail(WICK_EINVAL, "kernel Gram: correlation %g is not in [-1, 1]", rho);
    double k, t;
    wick_status st = walk(g, rho, &k, &t);
    if (st) return st;
    if (K) *K = k;
    if (T) *T = t;
    return WICK_OK;
}

/* Every row at the map's norm (within rounding): the map's premise. */
static wick_status check_rows(const wick_kgram *g, const double *x, size_t n, size_t n0,
                              const char *what) {
    for (size_t a = 0; a < n; a++) {
        double s = 0;
        for (size_t j = 0; j < n0; j++) s += x[a * n0 + j] * x[a * n0 + j];
        s /= (double)n0;
        if (!(fabs(s - g->q) <= 1e-9 * g->q))
            return wick_fail(WICK_EINVAL, "kernel Gram: %s input %zu has |x|^2/n0 = %.17g, not the "
                             "map's %.17g (normalise the inputs: wick_kernel_normalise)", what, a,
                             s, g->q);
    }
    return WICK_OK;
}

#define KG_ROWS 64   /* rows of a block mapped at once: 64 x n doubles stay in L2 */

wick_status wick_kgram_cross(const wick_kgram *g, const double *xa, size_t na, const double *xb,
                             size_t nb, size_t n0, double *K, double *T, size_t ld) {
    if (!g || !xa || !xb || n0 == 0 || (!K && !T) || ld < nb)
        return wick_fail(WICK_EINVAL, "kernel Gram: cross Gram of %zu x %zu inputs of dimension "
                         "%zu needs inputs, an output and ld >= %zu", na, nb, n0, nb);
    if (na == 0 || nb == 0) return WICK_OK;
    if (na > INT_MAX || nb > INT_MAX || n0 > INT_MAX || ld > INT_MAX)
        return wick_fail(WICK_EINVAL, "kernel Gram: %zu x %zu inputs is too many for BLAS", na, nb);
    wick_status st = check_rows(g, xa, na, n0, "first");
    if (!st) st = check_rows(g, xb, nb, n0, "second");
    if (st) return st;
    double *G = K ? K : T;
    cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)na, (int)nb, (int)n0, 1.0 / (double)n0,
                xa, (int)n0, xb, (int)n0, 0.0, G, (int)ld);
#pragma omp parallel for schedule(static)
    for (size_t a = 0; a < na; a++)
        map_values(g, G + a * ld, nb, K ? K + a * ld : NULL, T ? T + a * ld : NULL);
    return WICK_OK;
}

wick_status wick_kgram_sym(const wick_kgram *g, const double *x, size_t n, size_t n0, double *K,
                           double *T) {
    if (!g || !x || n0 == 0 || (!K && !T))
        return wick_fail(WICK_EINVAL, "kernel Gram: %zu inputs of dimension %zu need inputs and "
                         "an output", n, n0);
    if (n == 0) return WICK_OK;
    if (n > INT_MAX || n0 > INT_MAX)
        return wick_fail(WICK_EINVAL, "kernel Gram: %zu inputs is too many for BLAS", n);
    wick_status st = check_rows(g, x, n, n0, "an");
    if (st) return st;
    double *G = K ? K : T;
    /* the lower triangle only (half dgemm's flops), mapped, then mirrored */
    cblas_dsyrk(CblasRowMajor, CblasLower, CblasNoTrans, (int)n, (int)n0, 1.0 / (double)n0, x,
                (int)n0, 0.0, G, (int)n);
#pragma omp parallel for schedule(dynamic, 16)
    for (size_t a = 0; a < n; a++)
    {
        map_values(g, G + a * n, a + 1, K ? K + a * n : NULL, T ? T + a * n : NULL);
        /* an input with itself is at correlation 1 exactly, whatever the
           rounding of its Gram entry (ReLU's Theta has a square-root branch
           there: a rounding of 1e-16 would move it by 1e-8) */
        if (K) K[a * n + a] = g->kdiag;
        if (T) T[a * n + a] = g->tdiag;
    }
    /* mirror in 64 x 64 tiles: a row of the upper triangle reads a column of
       the lower, a page apiece unless tiled */
    const size_t B = 64, nt = (n + B - 1) / B;
#pragma omp parallel for schedule(dynamic, 1)
    for (size_t ti = 0; ti < nt; ti++)
        for (size_t tj = ti; tj < nt; tj++)
            for (size_t i = ti * B; i < n && i < ti * B + B; i++)
                for (size_t j = tj * B > i + 1 ? tj * B : i + 1; j < n && j < tj * B + B; j++) {
                    if (K) K[i * n + j] = K[j * n + i];
                    if (T) T[i * n + j] = T[j * n + i];
                }
    return WICK_OK;
}

/* ---------------------------------------------------------------------------
 * Kernel regression on the whole training set (docs/kernel.md)
 * ------------------------------------------------------------------------- */

/* A(i, j), i >= j, of an n x n symmetric matrix in LAPACK's rectangular full
 * packed format, TRANSR = 'N', UPLO = 'L' (column-major; as LAPACKE_dtrttf
 * lays it out, tests/test_kgram.c) */
static inline size_t rfp_at(size_t n, size_t i, size_t j) {
    if (n % 2 == 0) {
        size_t k = n / 2;
        return j < k ? (i + 1) + j * (n + 1) : (j - k) + (i - k) * (n + 1);
    }
    size_t n2 = (n + 1) / 2;
    return j < n2 ? i + j * n : (j - n2) + (i - n2 + 1) * n;
}

#define KS_PANEL 256   /* rows of the training Gram computed at once */
#define KS_BATCH 1024  /* test inputs per cross Gram */
#define KS_MIXED_MIN 16384  /* training inputs from which WICK_KERNEL_AUTO takes float32 factors */

size_t wick_kernel_solve_bytes(size_t nA, size_t nB, size_t n0, size_t nout, int variance) {
    double tri = (double)nA * (double)(nA + 1) / 2, panel = 2.0 * KS_PANEL * (double)nA;
    double batch = (double)(nB < KS_BATCH ? nB : KS_BATCH) * (double)nA * (variance ? 2 : 1);
    double rest = (double)(nA + nB) * (double)(n0 + 2 * nout) + (double)nA * (double)nout * 2;
    double b = 8 * (tri + (panel > batch ? panel : batch) + rest);
    return b > (double)SIZE_MAX ? SIZE_MAX : (size_t)b;
}

typedef struct {
    wick_kernel_progress fn;
    void *ctx;
    double t0;
} prog_t;

static void progress(const prog_t *p, const char *phase, double frac) {
    if (p->fn) p->fn(p->ctx, phase, frac, omp_get_wtime() - p->t0);
}

/* the training Gram's lower triangle into arf, row panels of KS_PANEL */
static wick_status fill_rfp(const wick_kgram *g, const double *xA, size_t nA, size_t n0, int ntk,
                            double *arf, double *panel, const prog_t *pr, const char *phase) {
    for (size_t i0 = 0; i0 < nA; i0 += KS_PANEL) {
        size_t i1 = i0 + KS_PANEL < nA ? i0 + KS_PANEL : nA, m = i1 - i0;
        cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)m, (int)i1, (int)n0,
                    1.0 / (double)n0, xA + i0 * n0, (int)n0, xA, (int)n0, 0.0, panel, (int)i1);
#pragma omp parallel for schedule(dynamic, 4)
        for (size_t r = 0; r < m; r++) {
            size_t i = i0 + r;
            double *row = panel + r * i1;
            map_values(g, row, i + 1, ntk ? NULL : row, ntk ? row : NULL);
            row[i] = ntk ? g->tdiag : g->kdiag;   /* correlation 1 exactly */
        }
        /* into the triangle by 64 x 64 tiles: RFP runs down columns (or
           along rows, in its transposed half), so entry by entry along a
           row each write would land on its own page */
#pragma omp parallel for schedule(dynamic, 1)
        for (size_t j0 = 0; j0 < i1; j0 += 64)
            for (size_t r0 = 0; r0 < m; r0 += 64)
                for (size_t j = j0; j < j0 + 64 && j < i1; j++)
                    for (size_t r = r0; r < r0 + 64 && r < m; r++)
                        if (i0 + r >= j) arf[rfp_at(nA, i0 + r, j)] = panel[r * i1 + j];
        /* rows near i carry i entries: the work done grows as i^2 */
        progress(pr, phase, ((double)i1 * (double)i1) / ((double)nA * (double)nA));
    }
    return WICK_OK;
}

/* Cholesky of the RFP matrix in float64 (factor_rfp) and float32
 * (factor_rfp32): one body, gram_factor_impl.h */
#define RFP_T double
#define RFP_NAME factor_rfp
#define RFP_LAPACK(x) LAPACKE_d##x
#define RFP_BLAS(x) cblas_d##x
#include "experiments/gram_factor_impl.h"
#undef RFP_T
#undef RFP_NAME
#undef RFP_LAPACK
#undef RFP_BLAS
#define RFP_T float
#define RFP_NAME factor_rfp32
#define RFP_LAPACK(x) LAPACKE_s##x
#define RFP_BLAS(x) cblas_s##x
#include "experiments/gram_factor_impl.h"
#undef RFP_T
#undef RFP_NAME
#undef RFP_LAPACK
#undef RFP_BLAS

/* ---------------------------------------------------------------------------
 * Float32 factors refined to float64 (docs/kernel.md, "Mixed precision")
 *
 * The two n^3/3 Choleskys are most of a large solve; in float32 the machine
 * does twice the flops a second (8 lanes, not 4), in half the memory, so
 * both kinds' factors fit where one float64 triangle did.  The float32
 * factor M = L L^T of A rounded is then the preconditioner of conjugate
 * gradients on A itself in float64; A's products are recomputed from the
 * inputs (dgemm and the map, both kinds from one pass), since A in float64
 * beside the factors would not fit.  On Fashion-MNIST's ReLU kernels
 * (cond(A) 3e5 at 2,000 images, 6e6 at 5,000) each step gains 4 to 5
 * digits, so a few passes reach float64's own accuracy.
 * ------------------------------------------------------------------------- */

/* Large arrays on 2 MiB pages where the kernel allows it (THP "madvise"):
 * the factor's columns are n + 1 doubles apart, each on its own 4 KiB page,
 * more than the TLB holds at n = 60,000. */
static void huge_pages(void *p, size_t bytes) {
    uintptr_t a = ((uintptr_t)p + 4095) & ~(uintptr_t)4095;
    uintptr_t e = ((uintptr_t)p + bytes) & ~(uintptr_t)4095;
    if (e > a) madvise((void *)a, e - a, MADV_HUGEPAGE);   /* advice: failure is harmless */
}

/* One pass over the rows of the training Grams, recomputed from the inputs
 * (the input Gram by dgemm, then the map: both kinds from one arccos).  For
 * each kind k with use[k], A_k = Gram_k + ridge[k] I:
 *   store[k] != NULL: A_k's lower triangle rounded into the float32 RFP store[k];
 *   v[k] != NULL:     av[k] = A_k v[k] (nA x nout, column-major).
 * pan: 2 KS_PANEL nA doubles. */
static void gram_pass(const wick_kgram *g, const double *xA, size_t nA, size_t n0, const int use[2],
                      const double ridge[2], float *const store[2], const double *const v[2],
                      double *const av[2], size_t nout, double *pan, const prog_t *pr, const char *phase) {
    int prod = 0;
    for (int k = 0; k < 2; k++)
        if (use[k] && v[k]) {
            prod = 1;
            memset(av[k], 0, sizeof(double) * nA * nout);
        }
    double *P[2] = {pan, pan + (size_t)KS_PANEL * nA};   /* K over the input Gram, Theta beside */
    const double dg[2] = {g->kdiag + ridge[0], g->tdiag + ridge[1]};
    for (size_t i0 = 0; i0 < nA; i0 += KS_PANEL) {
        size_t i1 = i0 + KS_PANEL < nA ? i0 + KS_PANEL : nA, m = i1 - i0;
        cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)m, (int)i1, (int)n0,
                    1.0 / (double)n0, xA + i0 * n0, (int)n0, xA, (int)n0, 0.0, P[0], (int)i1);
#pragma omp parallel for schedule(dynamic, 4)
        for (size_t r = 0; r < m; r++) {
            size_t i = i0 + r;
            /* a product needs the diagonal block's upper part too */
            map_values(g, P[0] + r * i1, prod ? i1 : i + 1, use[0] ? P[0] + r * i1 : NULL,
                       use[1] ? P[1] + r * i1 : NULL);
            for (int k = 0; k < 2; k++) P[k][r * i1 + i] = dg[k];   /* correlation 1 exactly */
        }
        for (int k = 0; k < 2; k++) {
            if (!use[k]) continue;
            const double *pk = P[k];
            if (store[k]) {
                /* scaled to a unit diagonal, which float32 holds exactly:
                   rounding kdiag + noise itself would shift every
                   eigenvalue alike, biasing the log det (docs/kernel.md) */
                float *s = store[k];
                const double sc = 1 / dg[k];
#pragma omp parallel for schedule(dynamic, 1)
                for (size_t j0 = 0; j0 < i1; j0 += 64)
                    for (size_t r0 = 0; r0 < m; r0 += 64)
                        for (size_t j = j0; j < j0 + 64 && j < i1; j++)
                            for (size_t r = r0; r < r0 + 64 && r < m; r++)
                                if (i0 + r >= j) s[rfp_at(nA, i0 + r, j)] = (float)(pk[r * i1 + j] * sc);
            }
            if (v[k]) {
                /* rows i0..i1 against columns 0..i1, and their mirror image
                   for columns 0..i0: together every entry of A_k once */
                cblas_dgemm(CblasColMajor, CblasTrans, CblasNoTrans, (int)m, (int)nout, (int)i1, 1.0, pk,
                            (int)i1, v[k], (int)nA, 1.0, av[k] + i0, (int)nA);
                if (i0)
                    cblas_dgemm(CblasColMajor, CblasNoTrans, CblasNoTrans, (int)i0, (int)nout, (int)m, 1.0,
                                pk, (int)i1, v[k] + i0, (int)nA, 1.0, av[k], (int)nA);
            }
        }
        progress(pr, phase, ((double)i1 * (double)i1) / ((double)nA * (double)nA));
    }
}

/* z = M^-1 r through the float32 factor of A / d (nA x nout, column-major) */
static void precondition(const float *f, double d, size_t nA, size_t nout, const double *r, double *z,
                         float *buf) {
    for (size_t i = 0; i < nA * nout; i++) buf[i] = (float)r[i];
    LAPACKE_spftrs(LAPACK_COL_MAJOR, 'N', 'L', (lapack_int)nA, (lapack_int)nout, f, buf, (lapack_int)nA);
    for (size_t i = 0; i < nA * nout; i++) z[i] = buf[i] / d;
}

#define KS_PCG_MAX 40   /* passes before giving up on the float32 factor */

/* Both kinds' training solves, alpha[k] = A_k^-1 Y, by float32 factors and
 * preconditioned conjugate gradients in float64, one recomputed pass of
 * the Grams per step for every kind still short of tol (the largest
 * ||r_c|| / ||y_c|| over the outputs c).  logdet[0]: from the float32
 * factor (its error is tr(A^-1 E) for the rounding E: see docs/kernel.md).
 * Returns 1 when a float32 factor fails or the iteration stalls (the
 * caller falls back to float64), -1 out of memory, 0 done. */
static int solve_mixed(const wick_kgram *g, const double *xA, const double *yA, size_t nA, size_t n0,
                       size_t nout, const int use[2], const double ridge[2], double tol, double *pan,
                       double *alpha[2], double *logdet, wick_kernel_solve_out *out, const prog_t *pr) {
    size_t tri = nA * (nA + 1) / 2, nv = nA * nout;
    const double dg[2] = {g->kdiag + ridge[0], g->tdiag + ridge[1]};
    float *f[2] = {NULL, NULL}, *buf = wick_malloc(sizeof(float) * nv);
    double *R[2] = {0}, *Z[2] = {0}, *D[2] = {0}, *AD[2] = {0};
    double *yn = wick_malloc(sizeof(double) * nout);
    double *rzp[2] = {wick_malloc(sizeof(double) * nout), wick_malloc(sizeof(double) * nout)};
    int ret = -1;
    if (!buf || !yn || !rzp[0] || !rzp[1]) goto out;
    for (int k = 0; k < 2; k++) {
        if (!use[k]) continue;
        f[k] = wick_malloc(sizeof(float) * tri);
        R[k] = wick_malloc(sizeof(double) * nv); Z[k] = wick_malloc(sizeof(double) * nv);
        D[k] = wick_malloc(sizeof(double) * nv); AD[k] = wick_malloc(sizeof(double) * nv);
        if (!f[k] || !R[k] || !Z[k] || !D[k] || !AD[k]) goto out;
        huge_pages(f[k], sizeof(float) * tri);
    }
    const char *nm = use[0] && use[1] ? "NNGP and NTK" : use[0] ? "NNGP" : "NTK";
    char ph[96];
    snprintf(ph, sizeof ph, "%s training Gram (float32)", nm);
    const double *nov[2] = {NULL, NULL};
    double *noav[2] = {NULL, NULL};
    gram_pass(g, xA, nA, n0, use, ridge, f, nov, noav, nout, pan, pr, ph);
    ret = 1;
    for (int k = 0; k < 2; k++) {
        if (!use[k]) continue;
        snprintf(ph, sizeof ph, "%s Cholesky (float32)", k ? "NTK" : "NNGP");
        double tf = omp_get_wtime();
        int info = factor_rfp32(nA, f[k], pr, ph);
        tf = omp_get_wtime() - tf;
        if (k == 0) out->chol_seconds_gp = tf; else out->chol_seconds_ntk = tf;
        if (info) goto out;
        if (k == 0) {
            double s = (double)nA * log(g->kdiag + ridge[0]);
            for (size_t i = 0; i < nA; i++) s += 2 * log((double)f[k][rfp_at(nA, i, i)]);
            *logdet = s;
        }
    }
    /* conjugate gradients, each output column on its own (x0 = 0) */
    for (size_t c = 0; c < nout; c++) {
        double s = 0;
        for (size_t i = 0; i < nA; i++) s += yA[i * nout + c] * yA[i * nout + c];
        yn[c] = s > 0 ? sqrt(s) : 1;
    }
    int act[2] = {use[0], use[1]};
    for (int k = 0; k < 2; k++) {
        if (!use[k]) continue;
        for (size_t i = 0; i < nA; i++)
            for (size_t c = 0; c < nout; c++) R[k][c * nA + i] = yA[i * nout + c];
        memset(alpha[k], 0, sizeof(double) * nv);
        precondition(f[k], dg[k], nA, nout, R[k], Z[k], buf);
        memcpy(D[k], Z[k], sizeof(double) * nv);
        for (size_t c = 0; c < nout; c++) {
            double s = 0;
            for (size_t i = 0; i < nA; i++) s += R[k][c * nA + i] * Z[k][c * nA + i];
            rzp[k][c] = s;
        }
        out->pcg_iters[k] = 0;
        out->pcg_resid[k] = 1;
    }
    for (int it = 1; it <= KS_PCG_MAX && (act[0] || act[1]); it++) {
        snprintf(ph, sizeof ph, "%s refinement %d", act[0] && act[1] ? "NNGP and NTK" : act[0] ? "NNGP" : "NTK", it);
        const double *dv[2] = {act[0] ? D[0] : NULL, act[1] ? D[1] : NULL};
        float *nos[2] = {NULL, NULL};
        gram_pass(g, xA, nA, n0, act, ridge, nos, dv, AD, nout, pan, pr, ph);
        for (int k = 0; k < 2; k++) {
            if (!act[k]) continue;
            double worst = 0;
            for (size_t c = 0; c < nout; c++) {
                double *x = alpha[k] + c * nA, *r = R[k] + c * nA, *d = D[k] + c * nA, *ad = AD[k] + c * nA;
                double dad = 0, rr = 0;
                for (size_t i = 0; i < nA; i++) dad += d[i] * ad[i];
                double a = dad > 0 ? rzp[k][c] / dad : 0;
                for (size_t i = 0; i < nA; i++) {
                    x[i] += a * d[i];
                    r[i] -= a * ad[i];
                    rr += r[i] * r[i];
                }
                worst = fmax(worst, sqrt(rr) / yn[c]);
            }
            out->pcg_iters[k] = it;
            out->pcg_resid[k] = worst;
            if (worst <= tol) { act[k] = 0; continue; }
            precondition(f[k], dg[k], nA, nout, R[k], Z[k], buf);
            for (size_t c = 0; c < nout; c++) {
                double *z = Z[k] + c * nA, *r = R[k] + c * nA, *d = D[k] + c * nA, s = 0;
                for (size_t i = 0; i < nA; i++) s += r[i] * z[i];
                double b = rzp[k][c] > 0 ? s / rzp[k][c] : 0;
                rzp[k][c] = s;
                for (size_t i = 0; i < nA; i++) d[i] = z[i] + b * d[i];
            }
        }
    }
    ret = act[0] || act[1];   /* stalled: float64 instead */
out:
    wick_free(yn); wick_free(rzp[0]); wick_free(rzp[1]);
    for (int k = 0; k < 2; k++) { wick_free(f[k]); wick_free(R[k]); wick_free(Z[k]); wick_free(D[k]); wick_free(AD[k]); }
    wick_free(buf);
    return ret;
}

wick_status wick_kernel_solve(const wick_kernel_hyper *h, const double *xA, const double *yA,
                              size_t nA, const double *xB, size_t nB, size_t n0, size_t nout,
                              const wick_kernel_solve_opts *o, wick_kernel_solve_out *out) {
    if (!h || !xA || !yA || !out || nA == 0 || n0 == 0 || nout == 0 || (nB && !xB))
        return wick_fail(WICK_EINVAL, "kernel solve: needs %zu training inputs, their targets, "
                         "inputs of dimension %zu and an output", nA, n0);
    if (nA > INT_MAX || n0 > INT_MAX || nB > INT_MAX)
        return wick_fail(WICK_EINVAL, "kernel solve: %zu training inputs is too many", nA);
    if (!isfinite(h->noise) || h->noise < 0)
        return wick_fail(WICK_EINVAL, "kernel solve: noise %g must be finite and non-negative", h->noise);
    wick_kernel_solve_opts def = {0};
    if (!o) o = &def;
    prog_t pr = {o->progress, o->ctx, omp_get_wtime()};
    wick_theory_config tc = wick_theory_defaults(h->act, h->depth);
    tc.cb = h->cb; tc.cw = h->cw; tc.lambda_b = h->lambda_b; tc.lambda_w = h->lambda_w;
    wick_kgram *g = NULL;
    wick_status st = wick_kgram_new(&tc, 1.0, &g);
    if (st) return st;
    if ((st = check_rows(g, xA, nA, n0, "training")) || (st = check_rows(g, xB, nB, n0, "test"))) {
        wick_kgram_free(g);
        return st;
    }
    size_t tri = nA * (nA + 1) / 2, bmax = nB < KS_BATCH ? nB : KS_BATCH;
    size_t pan = 2 * nA * (KS_PANEL > bmax ? KS_PANEL : bmax);   /* two kinds' rows */
    double *arf = NULL, *work = wick_malloc(sizeof(double) * pan);
    double *alphas = wick_malloc(sizeof(double) * nA * nout * 2), *al[2] = {alphas, alphas + nA * nout};
    if (!work || !alphas) {
        st = wick_fail(WICK_ENOMEM, "kernel solve: out of memory for %zu training inputs", nA);
        goto out;
    }
    /* float32 factors refined by conjugate gradients where the factors'
       n^3/3 dominate (not for the variance, which needs L in float64) */
    const int use[2] = {out->gp_mean || out->logev || out->gp_var, out->ntk_mean != NULL};
    const double rdg[2] = {h->noise, o->ntk_ridge * g->tdiag};
    int mixed = o->precision == WICK_KERNEL_MIXED ||
                (o->precision == WICK_KERNEL_AUTO && nA >= KS_MIXED_MIN);
    double logdet = NAN;
    out->mixed = 0;
    if (mixed && !out->gp_var) {
        int r = solve_mixed(g, xA, yA, nA, n0, nout, use, rdg, o->tol > 0 ? o->tol : 1e-10, work, al,
                            &logdet, out, &pr);
        if (r < 0) {
            st = wick_fail(WICK_ENOMEM, "kernel solve: out of memory for the float32 factors "
                           "(%.1f GB)", 4e-9 * (double)tri * (use[0] + use[1]));
            goto out;
        }
        out->mixed = r == 0;
        if (r) progress(&pr, "float32 factor failed or stalled: float64 instead", 1);
    }
    if (!out->mixed) {
        arf = wick_malloc(sizeof(double) * tri);
        if (!arf) {
            st = wick_fail(WICK_ENOMEM, "kernel solve: out of memory for the %zu x %zu training Gram "
                           "(%.1f GB as a packed triangle)", nA, nA, 8e-9 * (double)tri);
            goto out;
        }
        huge_pages(arf, sizeof(double) * tri);
    }
    for (int kind = 0; kind < 2; kind++) {
        double *mean = kind ? out->ntk_mean : out->gp_mean;
        double *var = kind ? NULL : out->gp_var;
        if (!use[kind]) continue;
        double *alpha = al[kind];
        const char *nm = kind ? "NTK" : "NNGP";
        char ph[64];
        if (!out->mixed) {
            snprintf(ph, sizeof ph, "%s training Gram", nm);
            if ((st = fill_rfp(g, xA, nA, n0, kind, arf, work, &pr, ph))) goto out;
            /* NNGP: the observation noise; NTK: o->ntk_ridge of the diagonal
               (exact duplicates make Theta_AA singular) */
            double ridge = rdg[kind];
            for (size_t i = 0; i < nA; i++) arf[rfp_at(nA, i, i)] += ridge;
            snprintf(ph, sizeof ph, "%s Cholesky", nm);
            double tf = omp_get_wtime();
            int info = factor_rfp(nA, arf, &pr, ph);
            tf = omp_get_wtime() - tf;
            if (kind == 0) out->chol_seconds_gp = tf; else out->chol_seconds_ntk = tf;
            if (info) {
                st = wick_fail(WICK_ENUMERIC, "kernel solve: the %s training Gram (+ %g on the diagonal) "
                               "is not positive definite (Cholesky pivot %d)%s", nm, ridge, info,
                               kind ? "; a small ridge helps (wick kernel --ntk-ridge)" : "");
                goto out;
            }
            /* alpha = A^-1 Y, Y column-major nA x nout */
            for (size_t i = 0; i < nA; i++)
                for (size_t c = 0; c < nout; c++) alpha[c * nA + i] = yA[i * nout + c];
            LAPACKE_dpftrs(LAPACK_COL_MAJOR, 'N', 'L', (lapack_int)nA, (lapack_int)nout, arf, alpha,
                           (lapack_int)nA);
            if (kind == 0) {
                logdet = 0;
                for (size_t i = 0; i < nA; i++) logdet += 2 * log(arf[rfp_at(nA, i, i)]);
            }
        }
        if (kind == 0 && out->logev) {
            /* per component: -1/2 y^T A^-1 y - 1/2 log det A - nA/2 log 2 pi (PDLT sec. 6.3) */
            double quad = 0;
            for (size_t i = 0; i < nA; i++)
                for (size_t c = 0; c < nout; c++) quad += yA[i * nout + c] * alpha[c * nA + i];
            *out->logev = -0.5 * quad - 0.5 * (double)nout * logdet -
                          0.5 * (double)(nA * nout) * log(2 * M_PI);
        }
        snprintf(ph, sizeof ph, "%s test predictions", nm);
        for (size_t b0 = 0; b0 < nB && (mean || var); b0 += KS_BATCH) {
            size_t nb = nB - b0 < KS_BATCH ? nB - b0 : KS_BATCH;
            double *C = work;   /* nb x nA row-major = K_AB column-major */
            cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)nb, (int)nA, (int)n0,
                        1.0 / (double)n0, xB + b0 * n0, (int)n0, xA, (int)n0, 0.0, C, (int)nA);
#pragma omp parallel for schedule(static)
            for (size_t r = 0; r < nb; r++)
                map_values(g, C + r * nA, nA, kind ? NULL : C + r * nA, kind ? C + r * nA : NULL);
            if (mean)   /* mean = K_BA alpha */
                cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)nb, (int)nout, (int)nA, 1.0, C,
                            (int)nA, alpha, (int)nA, 0.0, mean + b0 * nout, (int)nout);
            if (var) {
                /* var_b = K_bb - |L^-1 k_Ab|^2 (the latent function's posterior
                   variance, PDLT sec. 6.3.2), L the Cholesky factor */
                LAPACKE_dtfsm(LAPACK_COL_MAJOR, 'N', 'L', 'L', 'N', 'N', (lapack_int)nA, (lapack_int)nb,
                              1.0, arf, C, (lapack_int)nA);
                for (size_t r = 0; r < nb; r++) {
                    double s = 0;
                    for (size_t i = 0; i < nA; i++) s += C[r * nA + i] * C[r * nA + i];
                    var[b0 + r] = g->kdiag - s;
                }
            }
            progress(&pr, ph, (double)(b0 + nb) / (double)nB);
        }
    }
out:
    wick_free(arf); wick_free(work); wick_free(alphas);
    wick_kgram_free(g);
    return st;
}

/* ---------------------------------------------------------------------------
 * The log evidence's gradient (docs/kernel.md)
 * ------------------------------------------------------------------------- */

/* d log p(Y) / d theta = 1/2 sum_c alpha_c^T D alpha_c - nout/2 tr(A^-1 D),
 * D = dA/d theta, A = K_AA + noise I, alpha_c = A^-1 y_c (PDLT sec. 6.3.3;
 * Rasmussen and Williams eq. (5.9)).  D for C_b and C_W (every layer's) by
 * the second-order forward difference (-3 K(t) + 4 K(t + d) - K(t + 2d)) /
 * (2 d) of the angle map, d = 1e-4 (t + 1): its error is O(d^2) ~ 1e-8 of
 * the derivative; D = I for the noise.  tr(A^-1 D): exact through A^-1
 * (dpftri, 2 n^3 / 3 flops more) when probes == 0, else Hutchinson's
 * estimator with `probes` Rademacher vectors z: mean z^T A^-1 D z. */
wick_status wick_kernel_evidence_grad(const wick_kernel_hyper *h, const double *xA, const double *yA,
                                      size_t nA, size_t n0, size_t nout, int probes, uint64_t seed,
                                      double *logev, double grad[3]) {
    if (!h || !xA || !yA || !grad || nA == 0 || nout == 0 || probes < 0 || nA > INT_MAX)
        return wick_fail(WICK_EINVAL, "evidence gradient: needs %zu training inputs and targets", nA);
    wick_theory_config tc = wick_theory_defaults(h->act, h->depth);
    tc.cb = h->cb; tc.cw = h->cw; tc.lambda_b = h->lambda_b; tc.lambda_w = h->lambda_w;
    double db = 1e-4 * (h->cb + 1), dw = 1e-4 * (h->cw + 1);
    wick_kgram *g[5] = {0};
    wick_status st = WICK_OK;
    for (int k = 0; k < 5 && !st; k++) {
        wick_theory_config t = tc;
        if (k == 1 || k == 2) t.cb += k * db;
        if (k == 3 || k == 4) t.cw += (k - 2) * dw;
        st = wick_kgram_new(&t, 1.0, &g[k]);
    }
    if (!st) st = check_rows(g[0], xA, nA, n0, "training");
    size_t tri = nA * (nA + 1) / 2, m = (size_t)probes;
    double *arf = NULL, *alpha = NULL, *pan = NULL, *Z = NULL, *W = NULL, *P = NULL;
    if (st) goto out;
    arf = wick_malloc(sizeof(double) * tri);
    alpha = wick_malloc(sizeof(double) * nA * nout);
    pan = wick_malloc(sizeof(double) * KS_PANEL * nA * 3);
    if (m) {
        Z = wick_malloc(sizeof(double) * nA * m);
        W = wick_malloc(sizeof(double) * nA * m);
        P = wick_malloc(sizeof(double) * KS_PANEL * nA * 2);
    }
    if (!arf || !alpha || !pan || (m && (!Z || !W || !P))) {
        st = wick_fail(WICK_ENOMEM, "evidence gradient: out of memory for %zu inputs", nA);
        goto out;
    }
    prog_t pr = {NULL, NULL, 0};
    if ((st = fill_rfp(g[0], xA, nA, n0, 0, arf, pan, &pr, ""))) goto out;
    for (size_t i = 0; i < nA; i++) arf[rfp_at(nA, i, i)] += h->noise;
    if (factor_rfp(nA, arf, &pr, "")) {
        st = wick_fail(WICK_ENUMERIC, "evidence gradient: K_AA + noise I is not positive definite");
        goto out;
    }
    for (size_t i = 0; i < nA; i++)
        for (size_t c = 0; c < nout; c++) alpha[c * nA + i] = yA[i * nout + c];
    LAPACKE_dpftrs(LAPACK_COL_MAJOR, 'N', 'L', (lapack_int)nA, (lapack_int)nout, arf, alpha, (lapack_int)nA);
    double quad = 0, logdet = 0, aa = 0;
    for (size_t i = 0; i < nA; i++) {
        logdet += 2 * log(arf[rfp_at(nA, i, i)]);
        for (size_t c = 0; c < nout; c++) {
            quad += yA[i * nout + c] * alpha[c * nA + i];
            aa += alpha[c * nA + i] * alpha[c * nA + i];
        }
    }
    if (logev) *logev = -0.5 * quad - 0.5 * (double)nout * logdet - 0.5 * (double)(nA * nout) * log(2 * M_PI);
    if (m) {   /* Rademacher probes from Philox, W = A^-1 Z */
        for (size_t i = 0; i < nA * m; i++) Z[i] = wick_rand_uniform(seed, 0x6772616dULL, i) < 0.5 ? -1 : 1;
        memcpy(W, Z, sizeof(double) * nA * m);
        LAPACKE_dpftrs(LAPACK_COL_MAJOR, 'N', 'L', (lapack_int)nA, (lapack_int)m, arf, W, (lapack_int)nA);
    } else if (LAPACKE_dpftri(LAPACK_COL_MAJOR, 'N', 'L', (lapack_int)nA, arf)) {
        st = wick_fail(WICK_ENUMERIC, "evidence gradient: A^-1 failed");
        goto out;
    }
    /* one more pass over the Gram's lower triangle: D for C_b and C_W */
    double sq[2] = {0, 0}, tr[2] = {0, 0}, trI = 0;
    for (size_t i0 = 0; i0 < nA; i0 += KS_PANEL) {
        size_t i1 = i0 + KS_PANEL < nA ? i0 + KS_PANEL : nA, rows = i1 - i0;
        cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)rows, (int)i1, (int)n0,
                    1.0 / (double)n0, xA + i0 * n0, (int)n0, xA, (int)n0, 0.0, pan, (int)i1);
        if (m) {   /* P = W_rows Z^T and Z_rows W^T, /m: the probes' (i, j) and (j, i) */
            cblas_dgemm(CblasColMajor, CblasNoTrans, CblasTrans, (int)i1, (int)rows, (int)m, 1.0 / (double)m,
                        Z, (int)nA, W + i0, (int)nA, 0.0, P, (int)i1);
            cblas_dgemm(CblasColMajor, CblasNoTrans, CblasTrans, (int)i1, (int)rows, (int)m, 1.0 / (double)m,
                        W, (int)nA, Z + i0, (int)nA, 0.0, P + KS_PANEL * nA, (int)i1);
        }
        /* each row's five sums kept apart and added in row order below: an omp
           reduction over a dynamic schedule adds the threads' partial sums in
           the order the threads happened to take rows, so --optimise's path
           differed at the 9th digit from run to run */
        double part[KS_PANEL][5];
#pragma omp parallel for schedule(dynamic, 4)
        for (size_t r = 0; r < rows; r++) {
            double s0 = 0, s1 = 0, t0 = 0, t1 = 0, tI = 0;
            size_t i = i0 + r;
            double *G = pan + r * i1, buf[3][256];
            for (size_t j0 = 0; j0 <= i; j0 += 256) {
                size_t nj = i + 1 - j0 < 256 ? i + 1 - j0 : 256;
                for (int p = 0; p < 2; p++) {
                    map_values(g[0], G + j0, nj, buf[0], NULL);
                    map_values(g[1 + 2 * p], G + j0, nj, buf[1], NULL);
                    map_values(g[2 + 2 * p], G + j0, nj, buf[2], NULL);
                    double d = p ? dw : db, s = 0, t = 0;
                    for (size_t q = 0; q < nj; q++) {
                        size_t j = j0 + q;
                        double D = (-3 * buf[0][q] + 4 * buf[1][q] - buf[2][q]) / (2 * d);
                        if (j == i)   /* correlation 1 exactly */
                            D = (-3 * g[0]->kdiag + 4 * g[1 + 2 * p]->kdiag - g[2 + 2 * p]->kdiag) / (2 * d);
                        double w = j == i ? 1 : 2, aij = 0;
                        for (size_t c = 0; c < nout; c++) aij += alpha[c * nA + i] * alpha[c * nA + j];
                        s += w * D * aij;
                        double inv = m ? (j == i ? P[r * i1 + j] : P[r * i1 + j] + P[KS_PANEL * nA + r * i1 + j])
                                       : (j == i ? 1 : 2) * arf[rfp_at(nA, i, j)];
                        t += D * inv;
                    }
                    if (p) { s1 += s; t1 += t; } else { s0 += s; t0 += t; }
                }
            }
            tI += m ? P[r * i1 + i] : arf[rfp_at(nA, i, i)];
            part[r][0] = s0; part[r][1] = s1; part[r][2] = t0; part[r][3] = t1; part[r][4] = tI;
        }
        for (size_t r = 0; r < rows; r++) {
            sq[0] += part[r][0]; sq[1] += part[r][1]; tr[0] += part[r][2]; tr[1] += part[r][3];
            trI += part[r][4];
        }
    }
    grad[0] = 0.5 * sq[0] - 0.5 * (double)nout * tr[0];
    grad[1] = 0.5 * sq[1] - 0.5 * (double)nout * tr[1];
    grad[2] = 0.5 * aa - 0.5 * (double)nout * trI;
out:
    for (int k = 0; k < 5; k++) wick_kgram_free(g[k]);
    wick_free(arf); wick_free(alpha); wick_free(pan); wick_free(Z); wick_free(W); wick_free(P);
    return st;
}

/* ---------------------------------------------------------------------------
 * Hyperparameters by the evidence's maximum (docs/kernel.md, "Optimising
 * the evidence")
 * ------------------------------------------------------------------------- */

/* parameter k's bounds: C_b, C_W, noise */
static const double opt_lo[3] = {1e-8, 1e-2, 1e-10}, opt_hi[3] = {1e2, 1e2, 1e2};

/* -log p and its gradient in u = log theta at u; fails (returns non-OK) where
 * A is not positive definite */
static wick_status neg_ev(const wick_kernel_hyper *h0, const int free_[3], const double u[3],
                          const double *xA, const double *yA, size_t nA, size_t n0, size_t nout,
                          double *phi, double g[3]) {
    wick_kernel_hyper h = *h0;
    if (free_[0]) h.cb = exp(u[0]);
    if (free_[1]) h.cw = exp(u[1]);
    if (free_[2]) h.noise = exp(u[2]);
    double ev, gr[3];
    wick_status st = wick_kernel_evidence_grad(&h, xA, yA, nA, n0, nout, 0, 0, &ev, gr);
    if (st) return st;
    const double th[3] = {h.cb, h.cw, h.noise};
    *phi = -ev;
    for (int k = 0; k < 3; k++) g[k] = free_[k] ? -gr[k] * th[k] : 0;   /* d/du = theta d/dtheta */
    return isfinite(ev) ? WICK_OK : wick_fail(WICK_ENUMERIC, "evidence: not finite");
}

/* the gradient with components that push against a bound set to zero */
static double proj_norm(const double u[3], const double g[3], const int free_[3]) {
    double m = 0;
    for (int k = 0; k < 3; k++) {
        if (!free_[k]) continue;
        if (u[k] <= log(opt_lo[k]) + 1e-12 && g[k] > 0) continue;
        if (u[k] >= log(opt_hi[k]) - 1e-12 && g[k] < 0) continue;
        m = fmax(m, fabs(g[k]));
    }
    return m;
}

wick_status wick_kernel_evidence_optimise(wick_kernel_hyper *h, const double *xA, const double *yA,
                                          size_t nA, size_t n0, size_t nout, int maxit, double gtol,
                                          wick_kernel_opt_report *rep) {
    if (!h || !xA || !yA || nA == 0 || nout == 0 || maxit < 0 || !(gtol >= 0))
        return wick_fail(WICK_EINVAL, "evidence optimisation: needs inputs, targets, maxit >= 0, gtol >= 0");
    if (gtol == 0) gtol = 1e-3;
    /* log C_b needs C_b > 0: a zero bias variance stays zero */
    const int fr[3] = {h->cb > 0, h->cw > 0, h->noise > 0};
    double u[3] = {log(fmax(h->cb, opt_lo[0])), log(fmax(h->cw, opt_lo[1])), log(fmax(h->noise, opt_lo[2]))};
    for (int k = 0; k < 3; k++) u[k] = fmin(fmax(u[k], log(opt_lo[k])), log(opt_hi[k]));
    double phi, g[3], H[3][3] = {{1, 0, 0}, {0, 1, 0}, {0, 0, 1}};
    wick_status st = neg_ev(h, fr, u, xA, yA, nA, n0, nout, &phi, g);
    if (st) return st;
    wick_kernel_opt_report r = {-phi, -phi, 0, 1, proj_norm(u, g, fr), 0};
    int it = 0, fe_prev[3] = {fr[0], fr[1], fr[2]};
    for (; it < maxit && proj_norm(u, g, fr) > gtol; it++) {
        /* coordinates held at a bound by the gradient take no part in the step */
        int fe[3];
        for (int k = 0; k < 3; k++)
            fe[k] = fr[k] && !(u[k] <= log(opt_lo[k]) + 1e-12 && g[k] > 0) &&
                    !(u[k] >= log(opt_hi[k]) - 1e-12 && g[k] < 0);
        /* a coordinate that joined or left the bounds: the curvature
           gathered with it is stale (the bound-held step pairs are not
           the function's), start again from a scaled identity */
        if (fe[0] != fe_prev[0] || fe[1] != fe_prev[1] || fe[2] != fe_prev[2]) {
            double d = H[0][0] + H[1][1] + H[2][2];
            for (int i = 0; i < 3; i++) for (int j = 0; j < 3; j++) H[i][j] = i == j ? (d > 0 ? d / 3 : 1) : 0;
            memcpy(fe_prev, fe, sizeof fe);
        }
        double p[3] = {0, 0, 0}, slope = 0, big = 0;
        for (int i = 0; i < 3; i++)
            for (int j = 0; j < 3; j++) p[i] -= fe[i] && fe[j] ? H[i][j] * g[j] : 0;
        for (int i = 0; i < 3; i++) big = fmax(big, fabs(p[i]));
        if (big > 2)   /* at most a factor e^2 in any parameter a step */
            for (int i = 0; i < 3; i++) p[i] *= 2 / big;
        for (int i = 0; i < 3; i++) slope += p[i] * g[i];
        if (!(slope < 0)) {   /* not a descent direction: restart from the gradient */
            for (int i = 0; i < 3; i++) for (int j = 0; j < 3; j++) H[i][j] = i == j;
            for (int i = 0; i < 3; i++) p[i] = fe[i] ? -g[i] : 0;
            big = 0;
            for (int i = 0; i < 3; i++) big = fmax(big, fabs(p[i]));
            if (big > 2) for (int i = 0; i < 3; i++) p[i] *= 2 / big;
            slope = 0;
            for (int i = 0; i < 3; i++) slope += p[i] * g[i];
        }
        /* backtracking to Armijo's condition, the step clipped to the bounds */
        double t = 1, un[3], phin = 0, gn[3];
        int ok = 0;
        for (int bt = 0; bt < 40 && !ok; bt++, t *= 0.5) {
            for (int i = 0; i < 3; i++)
                un[i] = fmin(fmax(u[i] + t * p[i], log(opt_lo[i])), log(opt_hi[i]));
            r.evaluations++;
            if (neg_ev(h, fr, un, xA, yA, nA, n0, nout, &phin, gn)) continue;   /* not PD: shorter */
            double dec = 0;
            for (int i = 0; i < 3; i++) dec += (un[i] - u[i]) * g[i];
            ok = phin <= phi + 1e-4 * dec;
        }
        if (!ok) break;   /* no decrease along p: at the optimum to rounding */
        double s[3], y[3], sy = 0;
        for (int i = 0; i < 3; i++) { s[i] = un[i] - u[i]; y[i] = gn[i] - g[i]; sy += s[i] * y[i]; }
        if (sy > 1e-12) {   /* BFGS update of the inverse Hessian */
            double Hy[3] = {0, 0, 0}, yHy = 0;
            if (it == 0) {   /* the first step's curvature sets the scale */
                double yy = y[0] * y[0] + y[1] * y[1] + y[2] * y[2];
                for (int i = 0; i < 3; i++) H[i][i] = sy / yy;
            }
            for (int i = 0; i < 3; i++) for (int j = 0; j < 3; j++) Hy[i] += H[i][j] * y[j];
            for (int i = 0; i < 3; i++) yHy += y[i] * Hy[i];
            for (int i = 0; i < 3; i++)
                for (int j = 0; j < 3; j++)
                    H[i][j] += (sy + yHy) * s[i] * s[j] / (sy * sy) - (Hy[i] * s[j] + s[i] * Hy[j]) / sy;
        }
        memcpy(u, un, sizeof u);
        memcpy(g, gn, sizeof g);
        phi = phin;
    }
    if (fr[0]) h->cb = exp(u[0]);
    if (fr[1]) h->cw = exp(u[1]);
    if (fr[2]) h->noise = exp(u[2]);
    r.after = -phi;
    r.steps = it;
    r.gradient = proj_norm(u, g, fr);
    r.converged = r.gradient <= gtol;
    if (rep) *rep = r;
    return WICK_OK;
}
