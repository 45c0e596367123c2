/* ddntk.c — the two ddNTKs of real finite-width networks (the book's ch.
 * 11; docs/theory-finite-width.md): their means R, S, T, U measured over M
 * networks beside wick_theory_ddntk.
 *
 * With G_i = lambda grad z_i and v_ab = Hess(z_a) G_b (parameters of
 * layers 1..l, layer l's preactivations z):
 *   ddI_i0i1i2i3  = D^3 z_i0 [G_i1, G_i2, G_i3],
 *   ddII_i1i2i3i4 = < v_i1i3, lambda v_i2i4 >.
 * Both are n^4 tensors; what is computed instead are their contractions
 * with two Rademacher probes xi, eta of layer l (Hutchinson: E[xi_a xi_b]
 * = delta_ab), each an exact derivative of the scalar u . z:
 *   D^3 (xi.z) [G_xi, G_eta, G_eta]      -> sum_jm ddI_jjmm  = (n^2 + 2n) R / n_{l-1}
 *   |Hess(xi.z) G_eta|^2_lambda          -> sum_jm ddII_jjmm = (n^2 S + n T + n U) / n_{l-1}
 *   <Hess(xi.z) G_xi, Hess(eta.z) G_eta> -> sum_jm ddII_jmjm (T, n^2 times)
 *   <Hess(xi.z) G_eta, Hess(eta.z) G_xi> -> sum_jm ddII_jmmj (U, n^2 times)
 * with G_u = lambda grad(u.z).  Times n_{l-1}/n^2 each estimates its tensor
 * + O(1/n).  The gradient by backpropagation, Hess(u.z) a by its forward
 * tangent (forward over reverse), and D^3 (u.z)[a, b, b] by a Taylor jet in
 * two variables, f(theta + s a + t b) truncated at s t^2: all exact, so
 * kinks need no care (sigma'' = sigma''' = 0 on either side; the
 * probability that a preactivation sits exactly on one is 0). */
#include "experiments.h"
#include <cblas.h>
#include <math.h>
#include <omp.h>
#include <string.h>

/* sigma''' (act.c stops at sigma''): 0 for the piecewise-linear ones */
static double act_deriv3(wick_act a, double z) {
    switch (a.kind) {
    case WICK_ACT_TANH: { double t = tanh(z); return -2 * (1 - t * t) * (1 - 3 * t * t); }
    case WICK_ACT_SIN: return -cos(z);
    case WICK_ACT_SIGMOID: case WICK_ACT_SOFTPLUS: case WICK_ACT_SWISH: {
        double s = 1 / (1 + exp(-z)), d = s * (1 - s), d1 = d * (1 - 2 * s);
        double d2 = d * (1 - 2 * s) * (1 - 2 * s) - 2 * d * d;
        if (a.kind == WICK_ACT_SIGMOID) return d2;
        if (a.kind == WICK_ACT_SOFTPLUS) return d1;
        return 3 * d1 + z * d2;   /* (z s)''' = 3 s'' + z s''' */
    }
    case WICK_ACT_GELU: return exp(-0.5 * z * z) / sqrt(2 * M_PI) * (z * z * z - 4 * z);
    default: return 0.0;
    }
}

/* One network of width n, L layers (n_0 = 1, x = sqrt(q)); parameters
 * flat, layer by layer: W^(l) row-major then b^(l). */
typedef struct {
    size_t n, np;
    int L;
    const wick_ntk_fluct_config *c;
    double x;
    double *th;                         /* parameters */
    double *z, *s, *d, *e, *f;          /* per layer: z, sigma, sigma', sigma'', sigma''' (L x n) */
    double *dl, *ddl, *zt, *st, *t1, *t2; /* backward/tangent workspace (n each; zt, st: L x n) */
    double *jz, *jy, *jw, *ja, *jb;     /* jets: 6 x n each */
} dd_net;

static size_t dd_off(size_t n, int l) { return l == 1 ? 0 : 2 * n + (size_t)(l - 2) * (n * n + n); }
static size_t dd_fanin(size_t n, int l) { return l == 1 ? 1 : n; }

static size_t dd_doubles(size_t n, int L) {
    size_t np = dd_off(n, L + 1);
    return np + 5 * (size_t)L * n + 4 * n + 2 * (size_t)L * n + 30 * n;
}

static void dd_bind(dd_net *N, const wick_ntk_fluct_config *c, double *buf) {
    size_t n = c->width, L = (size_t)c->depth;
    N->n = n; N->L = c->depth; N->c = c; N->x = sqrt(c->q);
    N->np = dd_off(n, c->depth + 1);
    N->th = buf; buf += N->np;
    N->z = buf; buf += L * n; N->s = buf; buf += L * n; N->d = buf; buf += L * n;
    N->e = buf; buf += L * n; N->f = buf; buf += L * n;
    N->dl = buf; buf += n; N->ddl = buf; buf += n; N->t1 = buf; buf += n; N->t2 = buf; buf += n;
    N->zt = buf; buf += L * n; N->st = buf; buf += L * n;
    N->jz = buf; buf += 6 * n; N->jy = buf; buf += 6 * n; N->jw = buf; buf += 6 * n;
    N->ja = buf; buf += 6 * n; N->jb = buf;
}

#define LV(N, v, l) ((N)->v + (size_t)((l) - 1) * (N)->n)

static void dd_draw(dd_net *N, uint64_t k) {
    for (int l = 1; l <= N->L; l++) {
        size_t o = dd_off(N->n, l), fi = dd_fanin(N->n, l);
        ex_draw_layer(N->th + o, N->th + o + N->n * fi, N->n, fi, N->c->cb, N->c->cw, N->c->seed,
                      k, l);
    }
}

/* y = M v + y0 for M (n x fi) of layer l in the vector p (parameters or a direction) */
static void dd_mv(const dd_net *N, const double *p, int l, const double *v, double beta, double *y) {
    size_t n = N->n, fi = dd_fanin(n, l);
    const double *W = p + dd_off(n, l);
    if (fi == 1) {
        for (size_t i = 0; i < n; i++) y[i] = beta * y[i] + W[i] * v[0];
        return;
    }
    cblas_dgemv(CblasRowMajor, CblasNoTrans, (int)n, (int)n, 1.0, W, (int)n, v, 1, beta, y, 1);
}

/* y = M^T v (+ beta y), layer l >= 2 */
static void dd_mtv(const dd_net *N, const double *p, int l, const double *v, double beta, double *y) {
    size_t n = N->n;
    cblas_dgemv(CblasRowMajor, CblasTrans, (int)n, (int)n, 1.0, p + dd_off(n, l), (int)n, v, 1,
                beta, y, 1);
}

static void dd_forward(dd_net *N, int L) {
    size_t n = N->n;
    for (int l = 1; l <= L; l++) {
        double *z = LV(N, z, l);
        const double *b = N->th + dd_off(n, l) + n * dd_fanin(n, l);
        memcpy(z, b, sizeof(double) * n);
        dd_mv(N, N->th, l, l == 1 ? &N->x : LV(N, s, l - 1), 1.0, z);
        for (size_t i = 0; i < n; i++) {
            LV(N, s, l)[i] = wick_act_eval(N->c->act, z[i]);
            LV(N, d, l)[i] = wick_act_deriv(N->c->act, z[i]);
            LV(N, e, l)[i] = wick_act_deriv2(N->c->act, z[i]);
            LV(N, f, l)[i] = act_deriv3(N->c->act, z[i]);
        }
    }
}

/* G = lambda grad(u . z^(L)) over layers 1..L (lambda_b on b, lambda_W/n_{l-1} on W) */
static void dd_grad(dd_net *N, int L, const double *u, double *G) {
    size_t n = N->n;
    const wick_ntk_fluct_config *c = N->c;
    memcpy(N->dl, u, sizeof(double) * n);
    for (int l = L; l >= 1; l--) {
        size_t o = dd_off(n, l), fi = dd_fanin(n, l);
        const double *y = l == 1 ? &N->x : LV(N, s, l - 1);
        double lw = c->lambda_w / (double)fi;
        for (size_t i = 0; i < n; i++) {
            for (size_t j = 0; j < fi; j++) G[o + i * fi + j] = lw * N->dl[i] * y[j];
            G[o + n * fi + i] = c->lambda_b * N->dl[i];
        }
        if (l > 1) {
            dd_mtv(N, N->th, l, N->dl, 0.0, N->t1);
            const double *d = LV(N, d, l - 1);
            for (size_t i = 0; i < n; i++) N->dl[i] = d[i] * N->t1[i];
        }
    }
}

/* out = Hess(u . z^(L)) a: the forward tangent along a, then backpropagation
 * of u with its tangent */
static void dd_hvp(dd_net *N, int L, const double *u, const double *a, double *out) {
    size_t n = N->n;
    for (int l = 1; l <= L; l++) {
        double *zt = LV(N, zt, l);
        const double *db = a + dd_off(n, l) + n * dd_fanin(n, l);
        memcpy(zt, db, sizeof(double) * n);
        if (l == 1) {
            dd_mv(N, a, 1, &N->x, 1.0, zt);
        } else {
            dd_mv(N, a, l, LV(N, s, l - 1), 1.0, zt);
            dd_mv(N, N->th, l, LV(N, st, l - 1), 1.0, zt);
        }
        const double *d = LV(N, d, l);
        for (size_t i = 0; i < n; i++) LV(N, st, l)[i] = d[i] * zt[i];
    }
    memcpy(N->dl, u, sizeof(double) * n);
    memset(N->ddl, 0, sizeof(double) * n);
    for (int l = L; l >= 1; l--) {
        size_t o = dd_off(n, l);
        if (l == 1) {
            for (size_t i = 0; i < n; i++) {
                out[o + i] = N->ddl[i] * N->x;
                out[o + n + i] = N->ddl[i];
            }
            break;
        }
        const double *y = LV(N, s, l - 1), *yt = LV(N, st, l - 1);
        for (size_t i = 0; i < n; i++) {
            double dl = N->dl[i], ddl = N->ddl[i];
            double *row = out + o + i * n;
            for (size_t j = 0; j < n; j++) row[j] = ddl * y[j] + dl * yt[j];
            out[o + n * n + i] = ddl;
        }
        dd_mtv(N, N->th, l, N->dl, 0.0, N->t1);          /* t = W^T delta */
        dd_mtv(N, a, l, N->dl, 0.0, N->t2);              /* dW^T delta ... */
        dd_mtv(N, N->th, l, N->ddl, 1.0, N->t2);         /* ... + W^T delta' */
        const double *d = LV(N, d, l - 1), *e = LV(N, e, l - 1), *zt = LV(N, zt, l - 1);
        for (size_t i = 0; i < n; i++) {
            N->dl[i] = d[i] * N->t1[i];
            N->ddl[i] = e[i] * zt[i] * N->t1[i] + d[i] * N->t2[i];
        }
    }
}

/* D^3 (u . z^(L)) [a, b, b] = d/ds d^2/dt^2 of u . z(theta + s a + t b) at
 * 0, by a jet with the coefficients of 1, s, t, st, t^2, st^2 (s^2 = t^3 =
 * 0; Taylor coefficients, so the answer is 2 x the st^2 one). */
enum { J0 = 0, JS, JT, JST, JTT, JSTT };
static double dd_d3(dd_net *N, int L, const double *u, const double *a, const double *b) {
    size_t n = N->n;
    double *jz = N->jz, *jy = N->jy, *ja = N->ja, *jb = N->jb;
#define J(p, k) ((p) + (size_t)(k) * n)
    for (int l = 1; l <= L; l++) {
        size_t o = dd_off(n, l), fi = dd_fanin(n, l);
        const double *bias = N->th + o + n * fi, *dba = a + o + n * fi, *dbb = b + o + n * fi;
        if (l == 1) {
            memset(jz, 0, sizeof(double) * 6 * n);
            for (size_t i = 0; i < n; i++) {
                J(jz, J0)[i] = N->th[o + i] * N->x + bias[i];
                J(jz, JS)[i] = a[o + i] * N->x + dba[i];
                J(jz, JT)[i] = b[o + i] * N->x + dbb[i];
            }
        } else {
            /* (W + s A + t B) y + bias + s dba + t dbb, y the previous jet */
            for (int k = 0; k < 6; k++) dd_mv(N, N->th, l, J(jy, k), 0.0, J(jz, k));
            for (int k = 0; k < 6; k++) {
                dd_mv(N, a, l, J(jy, k), 0.0, J(ja, k));
                dd_mv(N, b, l, J(jy, k), 0.0, J(jb, k));
            }
            for (size_t i = 0; i < n; i++) {
                J(jz, J0)[i] += bias[i];
                J(jz, JS)[i] += J(ja, J0)[i] + dba[i];
                J(jz, JT)[i] += J(jb, J0)[i] + dbb[i];
                J(jz, JST)[i] += J(ja, JT)[i] + J(jb, JS)[i];
                J(jz, JTT)[i] += J(jb, JT)[i];
                J(jz, JSTT)[i] += J(ja, JTT)[i] + J(jb, JST)[i];
            }
        }
        if (l == L) break;
        const double *s = LV(N, s, l), *d = LV(N, d, l), *e = LV(N, e, l), *f = LV(N, f, l);
        for (size_t i = 0; i < n; i++) {
            double A = J(jz, JS)[i], B = J(jz, JT)[i], C = J(jz, JST)[i], D = J(jz, JTT)[i],
                   E = J(jz, JSTT)[i];
            J(jy, J0)[i] = s[i];
            J(jy, JS)[i] = d[i] * A;
            J(jy, JT)[i] = d[i] * B;
            J(jy, JST)[i] = d[i] * C + e[i] * A * B;
            J(jy, JTT)[i] = d[i] * D + 0.5 * e[i] * B * B;
            J(jy, JSTT)[i] = d[i] * E + e[i] * (A * D + B * C) + 0.5 * f[i] * A * B * B;
        }
    }
    double acc = 0;
    for (size_t i = 0; i < n; i++) acc += u[i] * J(jz, JSTT)[i];
#undef J
    return 2 * acc;
}

/* < v, lambda w > over layers 1..L */
static double dd_dot(const dd_net *N, int L, const double *v, const double *w) {
    size_t n = N->n;
    const wick_ntk_fluct_config *c = N->c;
    double acc = 0;
    for (int l = 1; l <= L; l++) {
        size_t o = dd_off(n, l), fi = dd_fanin(n, l), nw = n * fi;
        double sw = 0, sb = 0;
        for (size_t i = 0; i < nw; i++) sw += v[o + i] * w[o + i];
        for (size_t i = 0; i < n; i++) sb += v[o + nw + i] * w[o + nw + i];
        acc += c->lambda_w / (double)fi * sw + c->lambda_b * sb;
    }
    return acc;
}

static wick_status dd_check(const wick_ntk_fluct_config *c, const char *what) {
    if (!c) return wick_fail(WICK_EINVAL, "%s: no configuration given", what);
    if (!wick_act_has_derivative(c->act))
        return wick_fail(WICK_EINVAL, "%s: %s has no derivative (a delta): its ddNTKs are "
                         "undefined", what, wick_act_name(c->act));
    double v[5] = {c->cb, c->cw, c->lambda_b, c->lambda_w, c->q};
    static const char *nm[5] = {"C_b", "C_W", "lambda_b", "lambda_w", "q"};
    for (int i = 0; i < 5; i++)
        if (!isfinite(v[i]) || v[i] < 0)
            return wick_fail(WICK_EINVAL, "%s: %s = %g must be finite and non-negative", what,
                             nm[i], v[i]);
    if (c->depth < 1 || c->depth > 64)
        return wick_fail(WICK_EINVAL, "%s: depth %d, expected 1..64", what, c->depth);
    if (c->width < 2 || c->width > 2048)
        return wick_fail(WICK_EINVAL, "%s: width %zu, expected 2..2048", what, c->width);
    if ((size_t)c->depth * c->width * c->width > ((size_t)1 << 25))
        return wick_fail(WICK_EINVAL, "%s: depth %d x width %zu^2 is over 2^25", what, c->depth,
                         c->width);
    return WICK_OK;
}

size_t wick_ddntk_nparams(const wick_ntk_fluct_config *c) {
    if (!c || c->depth < 1) return 0;
    return dd_off(c->width, c->depth + 1);
}

wick_status wick_ddntk_probe(const wick_ntk_fluct_config *c, uint64_t k, const double *at,
                             const double *u, const double *a, const double *b, double *G,
                             double *hvp, double *d3) {
    wick_status st = dd_check(c, "ddntk");
    if (st) return st;
    if (!u || (hvp && !a) || (d3 && (!a || !b)))
        return wick_fail(WICK_EINVAL, "ddntk: a probe or direction is missing");
    double *buf = wick_malloc(sizeof(double) * dd_doubles(c->width, c->depth));
    if (!buf) return wick_fail(WICK_ENOMEM, "ddntk: out of memory (width %zu)", c->width);
    dd_net N;
    dd_bind(&N, c, buf);
    if (at) memcpy(N.th, at, sizeof(double) * N.np);
    else dd_draw(&N, k);
    dd_forward(&N, c->depth);
    if (G) dd_grad(&N, c->depth, u, G);
    if (hvp) dd_hvp(&N, c->depth, u, a, hvp);
    if (d3) *d3 = dd_d3(&N, c->depth, u, a, b);
    wick_free(buf);
    return WICK_OK;
}

/* Per network k: stats[(l-1)*4 + {R,S,T,U}] (0 at l = 1).  vec: 6 parameter
 * vectors and 2 probes of workspace. */
static void dd_network(dd_net *N, uint64_t k, double *vec, double *stats) {
    size_t n = N->n, np = N->np;
    const wick_ntk_fluct_config *c = N->c;
    double *Gx = vec, *Ge = Gx + np, *vxe = Ge + np, *vex = vxe + np, *vxx = vex + np,
           *vee = vxx + np, *xi = vee + np, *eta = xi + n;
    dd_draw(N, k);
    dd_forward(N, N->L);
    memset(stats, 0, sizeof(double) * 4);
    for (int l = 2; l <= N->L; l++) {
        /* the probes: signs of Philox normals on streams of their own per layer */
        ex_fill_normal(xi, n, c->seed, ex_stream(k, 0xC0000 | l), 0);
        ex_fill_normal(eta, n, c->seed, ex_stream(k, 0xD0000 | l), 0);
        for (size_t i = 0; i < n; i++) {
            xi[i] = xi[i] >= 0 ? 1.0 : -1.0;
            eta[i] = eta[i] >= 0 ? 1.0 : -1.0;
        }
        dd_grad(N, l, xi, Gx);
        dd_grad(N, l, eta, Ge);
        dd_hvp(N, l, xi, Ge, vxe);
        dd_hvp(N, l, eta, Gx, vex);
        dd_hvp(N, l, xi, Gx, vxx);
        dd_hvp(N, l, eta, Ge, vee);
        double nrm = 1.0 / (double)n;   /* n_{l-1} / n^2, n_{l-1} = n */
        double *o = stats + (size_t)(l - 1) * 4;
        o[0] = nrm * dd_d3(N, l, xi, Gx, Ge);
        o[1] = nrm * dd_dot(N, l, vxe, vxe);
        o[2] = nrm * dd_dot(N, l, vxx, vee);
        o[3] = nrm * dd_dot(N, l, vxe, vex);
    }
}

wick_status wick_ddntk_measure(const wick_ntk_fluct_config *c, double *val, double *se) {
    wick_status st = dd_check(c, "ddntk ensemble");
    if (st) return st;
    if (!val || !se) return wick_fail(WICK_EINVAL, "ddntk ensemble: no output arrays");
    if (c->samples < 2 || c->samples > ((size_t)1 << 32))
        return wick_fail(WICK_EINVAL, "ddntk ensemble: %zu networks, expected at least 2",
                         c->samples);
    size_t n = c->width, L = (size_t)c->depth, M = c->samples, np = dd_off(n, c->depth + 1);
    int nt = wick_threads();
    size_t per_t = dd_doubles(n, c->depth) + 6 * np + 2 * n;
    double *bufs = wick_malloc(sizeof(double) * per_t * (size_t)nt);
    double *stats = wick_malloc(sizeof(double) * M * L * 4);
    if (!bufs || !stats) {
        wick_free(bufs); wick_free(stats);
        return wick_fail(WICK_ENOMEM, "ddntk ensemble: out of memory (width %zu, %zu networks)",
                         n, M);
    }
    #pragma omp parallel for num_threads(nt) schedule(dynamic, 2)
    for (size_t k = 0; k < M; k++) {
        double *buf = bufs + per_t * (size_t)omp_get_thread_num();
        dd_net N;
        dd_bind(&N, c, buf);
        dd_network(&N, k, buf + dd_doubles(n, c->depth), stats + k * L * 4);
    }
    /* mean and standard error over networks, in network order */
    for (size_t q = 0; q < L * 4; q++) {
        double mu = 0, v = 0;
        for (size_t k = 0; k < M; k++) mu += stats[k * L * 4 + q];
        mu /= (double)M;
        for (size_t k = 0; k < M; k++) {
            double dlt = stats[k * L * 4 + q] - mu;
            v += dlt * dlt;
        }
        val[q] = mu;
        se[q] = sqrt(v / ((double)M - 1) / (double)M);
    }
    wick_free(bufs); wick_free(stats);
    return WICK_OK;
}

wick_status wick_ddntk_draw(const wick_ntk_fluct_config *c, uint64_t k, double *theta) {
    wick_status st = dd_check(c, "ddntk");
    if (st) return st;
    if (!theta) return wick_fail(WICK_EINVAL, "ddntk: no parameter output");
    dd_net N;
    N.n = c->width; N.L = c->depth; N.c = c; N.th = theta;
    dd_draw(&N, k);
    return WICK_OK;
}
