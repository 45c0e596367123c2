/* ddntk2.c — the ddNTK means of two inputs, R, S, T, U for every sample
 * placement, measured on real finite-width networks beside
 * wick_theory_ddntk_two (the book's ch. 11; docs/theory-finite-width.md).
 * The single-input measurement (ddntk.c) with n_0 = 2 and a forward pass
 * per input: Rademacher probes xi, eta of layer l, G_{u;a} = lambda
 * grad(u . z_{;a}) (backpropagation), v = Hess(u . z_{;a}) w (forward over
 * reverse), D^3 (u . z_{;a})[x, y, y] (a Taylor jet); every one exact in
 * float64, so kinks are seen pathwise (sigma'' = sigma''' = 0 beside one).
 *   D^3 (xi.z_a0)[G_{xi;a1}, G_{eta;a2}, G_{eta;a3}]  -> sum_jm ddI_{jjmm}  (R, n^2 times)
 *   <Hess(xi.z_a1) G_{eta;a3}, Hess(xi.z_a2) G_{eta;a4}> -> sum_jm ddII_{jjmm} (S)
 *   <Hess(xi.z_a1) G_{xi;a3}, Hess(eta.z_a2) G_{eta;a4}> -> sum_jm ddII_{jmjm} (T)
 *   <Hess(xi.z_a1) G_{eta;a3}, Hess(eta.z_a2) G_{xi;a4}> -> sum_jm ddII_{jmmj} (U)
 * times n_{l-1}/n^2: the tensor + O(1/n).  D^3 with two different
 * directions by polarisation, D^3[x, y, w] = (D^3[x, y+w, y+w] -
 * D^3[x, y-w, y-w]) / 4. */
#include "experiments.h"
#include <cblas.h>
#include <math.h>
#include <omp.h>
#include <string.h>

static double act_deriv3(wick_act a, double z) {
    switch (a.kind) {
    case WICK_ACT_TANH: { double t = tanh(z); return -2 * (1 - t * t) * (1 - 3 * t * t); }
    case WICK_ACT_SIN: return -cos(z);
    case WICK_ACT_SIGMOID: case WICK_ACT_SOFTPLUS: case WICK_ACT_SWISH: {
        double s = 1 / (1 + exp(-z)), d = s * (1 - s), d1 = d * (1 - 2 * s);
        double d2 = d * (1 - 2 * s) * (1 - 2 * s) - 2 * d * d;
        if (a.kind == WICK_ACT_SIGMOID) return d2;
        if (a.kind == WICK_ACT_SOFTPLUS) return d1;
        return 3 * d1 + z * d2;
    }
    case WICK_ACT_GELU: return exp(-0.5 * z * z) / sqrt(2 * M_PI) * (z * z * z - 4 * z);
    default: return 0.0;
    }
}

/* One network (shared parameters th) seen at one input x (n_0 = 2). */
typedef struct {
    size_t n, np;
    int L;
    const wick_ntk_fluct_config *c;
    const double *x;                    /* the input, 2 */
    double *th;
    double *z, *s, *d, *e, *f;          /* L x n each */
    double *dl, *ddl, *zt, *st, *t1, *t2;
    double *jz, *jy, *ja, *jb;          /* jets: 6 x n each */
} d2_net;

static size_t d2_off(size_t n, int l) { return l == 1 ? 0 : 3 * n + (size_t)(l - 2) * (n * n + n); }
static size_t d2_fanin(size_t n, int l) { return l == 1 ? 2 : n; }
static size_t d2_work(size_t n, int L) { return 5 * (size_t)L * n + 4 * n + 2 * (size_t)L * n + 24 * n; }

static void d2_bind(d2_net *N, const wick_ntk_fluct_config *c, double *th, const double *x,
                    double *buf) {
    size_t n = c->width, L = (size_t)c->depth;
    N->n = n; N->L = c->depth; N->c = c; N->x = x; N->th = th;
    N->np = d2_off(n, c->depth + 1);
    N->z = buf; buf += L * n; N->s = buf; buf += L * n; N->d = buf; buf += L * n;
    N->e = buf; buf += L * n; N->f = buf; buf += L * n;
    N->dl = buf; buf += n; N->ddl = buf; buf += n; N->t1 = buf; buf += n; N->t2 = buf; buf += n;
    N->zt = buf; buf += L * n; N->st = buf; buf += L * n;
    N->jz = buf; buf += 6 * n; N->jy = buf; buf += 6 * n; N->ja = buf; buf += 6 * n; N->jb = buf;
}

#define LV(N, v, l) ((N)->v + (size_t)((l) - 1) * (N)->n)

/* y = M v + beta y for the weight matrix of layer l in p */
static void d2_mv(const d2_net *N, const double *p, int l, const double *v, double beta, double *y) {
    size_t n = N->n, fi = d2_fanin(n, l);
    cblas_dgemv(CblasRowMajor, CblasNoTrans, (int)n, (int)fi, 1.0, p + d2_off(n, l), (int)fi, v, 1,
                beta, y, 1);
}
static void d2_mtv(const d2_net *N, const double *p, int l, const double *v, double beta, double *y) {
    size_t n = N->n;
    cblas_dgemv(CblasRowMajor, CblasTrans, (int)n, (int)n, 1.0, p + d2_off(n, l), (int)n, v, 1,
                beta, y, 1);
}

static void d2_forward(d2_net *N) {
    size_t n = N->n;
    for (int l = 1; l <= N->L; l++) {
        double *z = LV(N, z, l);
        memcpy(z, N->th + d2_off(n, l) + n * d2_fanin(n, l), sizeof(double) * n);
        d2_mv(N, N->th, l, l == 1 ? N->x : LV(N, s, l - 1), 1.0, z);
        for (size_t i = 0; i < n; i++) {
            LV(N, s, l)[i] = wick_act_eval(N->c->act, z[i]);
            LV(N, d, l)[i] = wick_act_deriv(N->c->act, z[i]);
            LV(N, e, l)[i] = wick_act_deriv2(N->c->act, z[i]);
            LV(N, f, l)[i] = act_deriv3(N->c->act, z[i]);
        }
    }
}

/* G = lambda grad(u . z^(L)) (zero beyond layer L) */
static void d2_grad(d2_net *N, int L, const double *u, double *G) {
    size_t n = N->n;
    const wick_ntk_fluct_config *c = N->c;
    memset(G, 0, sizeof(double) * N->np);
    memcpy(N->dl, u, sizeof(double) * n);
    for (int l = L; l >= 1; l--) {
        size_t o = d2_off(n, l), fi = d2_fanin(n, l);
        const double *y = l == 1 ? N->x : LV(N, s, l - 1);
        double lw = c->lambda_w / (double)fi;
        for (size_t i = 0; i < n; i++) {
            for (size_t j = 0; j < fi; j++) G[o + i * fi + j] = lw * N->dl[i] * y[j];
            G[o + n * fi + i] = c->lambda_b * N->dl[i];
        }
        if (l > 1) {
            d2_mtv(N, N->th, l, N->dl, 0.0, N->t1);
            const double *d = LV(N, d, l - 1);
            for (size_t i = 0; i < n; i++) N->dl[i] = d[i] * N->t1[i];
        }
    }
}

/* out = Hess(u . z^(L)) a (no lambda; zero beyond layer L) */
static void d2_hvp(d2_net *N, int L, const double *u, const double *a, double *out) {
    size_t n = N->n;
    memset(out, 0, sizeof(double) * N->np);
    for (int l = 1; l <= L; l++) {
        double *zt = LV(N, zt, l);
        memcpy(zt, a + d2_off(n, l) + n * d2_fanin(n, l), sizeof(double) * n);
        d2_mv(N, a, l, l == 1 ? N->x : LV(N, s, l - 1), 1.0, zt);
        if (l > 1) d2_mv(N, N->th, l, LV(N, st, l - 1), 1.0, zt);
        const double *d = LV(N, d, l);
        for (size_t i = 0; i < n; i++) LV(N, st, l)[i] = d[i] * zt[i];
    }
    memcpy(N->dl, u, sizeof(double) * n);
    memset(N->ddl, 0, sizeof(double) * n);
    for (int l = L; l >= 1; l--) {
        size_t o = d2_off(n, l), fi = d2_fanin(n, l);
        const double *y = l == 1 ? N->x : LV(N, s, l - 1);
        const double *yt = l == 1 ? NULL : LV(N, st, l - 1);
        for (size_t i = 0; i < n; i++) {
            double dl = N->dl[i], ddl = N->ddl[i];
            for (size_t j = 0; j < fi; j++) out[o + i * fi + j] = ddl * y[j] + (yt ? dl * yt[j] : 0.0);
            out[o + n * fi + i] = ddl;
        }
        if (l == 1) break;
        d2_mtv(N, N->th, l, N->dl, 0.0, N->t1);
        d2_mtv(N, a, l, N->dl, 0.0, N->t2);
        d2_mtv(N, N->th, l, N->ddl, 1.0, N->t2);
        const double *d = LV(N, d, l - 1), *e = LV(N, e, l - 1), *zt = LV(N, zt, l - 1);
        for (size_t i = 0; i < n; i++) {
            N->dl[i] = d[i] * N->t1[i];
            N->ddl[i] = e[i] * zt[i] * N->t1[i] + d[i] * N->t2[i];
        }
    }
}

/* D^3 (u . z^(L)) [a, b, b] by a jet in 1, s, t, st, t^2, st^2 */
enum { J0 = 0, JS, JT, JST, JTT, JSTT };
static double d2_d3(d2_net *N, int L, const double *u, const double *a, const double *b) {
    size_t n = N->n;
    double *jz = N->jz, *jy = N->jy, *ja = N->ja, *jb = N->jb;
#define J(p, k) ((p) + (size_t)(k) * n)
    for (int l = 1; l <= L; l++) {
        size_t o = d2_off(n, l), fi = d2_fanin(n, l);
        const double *bias = N->th + o + n * fi, *dba = a + o + n * fi, *dbb = b + o + n * fi;
        if (l == 1) {
            memset(jz, 0, sizeof(double) * 6 * n);
            d2_mv(N, N->th, 1, N->x, 0.0, J(jz, J0));
            d2_mv(N, a, 1, N->x, 0.0, J(jz, JS));
            d2_mv(N, b, 1, N->x, 0.0, J(jz, JT));
            for (size_t i = 0; i < n; i++) {
                J(jz, J0)[i] += bias[i];
                J(jz, JS)[i] += dba[i];
                J(jz, JT)[i] += dbb[i];
            }
        } else {
            for (int k = 0; k < 6; k++) d2_mv(N, N->th, l, J(jy, k), 0.0, J(jz, k));
            for (int k = 0; k < 6; k++) {
                d2_mv(N, a, l, J(jy, k), 0.0, J(ja, k));
                d2_mv(N, b, l, J(jy, k), 0.0, J(jb, k));
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

static double d2_dot(const d2_net *N, int L, const double *v, const double *w) {
    size_t n = N->n;
    double acc = 0;
    for (int l = 1; l <= L; l++) {
        size_t o = d2_off(n, l), fi = d2_fanin(n, l), nw = n * fi;
        double sw = 0, sb = 0;
        for (size_t i = 0; i < nw; i++) sw += v[o + i] * w[o + i];
        for (size_t i = 0; i < n; i++) sb += v[o + nw + i] * w[o + nw + i];
        acc += N->c->lambda_w / (double)fi * sw + N->c->lambda_b * sb;
    }
    return acc;
}

/* per network k: st[(l-1)*64 + 16 t + 8 a0 + 4 a1 + 2 a2 + a3], t = R, S, T, U.
 * ws: 20 parameter vectors + 2 probes + 2 forward workspaces */
static void d2_network(const wick_ntk_fluct_config *c, const double x[2][2], uint64_t k, double *ws,
                       double *st) {
    size_t n = c->width, np = d2_off(n, c->depth + 1), L = (size_t)c->depth;
    double *th = ws, *G = th + np, *V = G + 4 * np, *p1 = V + 16 * np, *p2 = p1 + np,
           *xi = p2 + np, *eta = xi + n, *w0 = eta + n, *w1 = w0 + d2_work(n, c->depth);
    d2_net N[2];
    d2_bind(&N[0], c, th, x[0], w0);
    d2_bind(&N[1], c, th, x[1], w1);
    for (int l = 1; l <= c->depth; l++) {
        size_t o = d2_off(n, l), fi = d2_fanin(n, l);
        ex_draw_layer(th + o, th + o + n * fi, n, fi, c->cb, c->cw, c->seed, k, l);
    }
    d2_forward(&N[0]);
    d2_forward(&N[1]);
    memset(st, 0, sizeof(double) * 64 * L);
    for (int l = 2; l <= c->depth; l++) {
        ex_fill_normal(xi, n, c->seed, ex_stream(k, 0xC0000 | l), 0);
        ex_fill_normal(eta, n, c->seed, ex_stream(k, 0xD0000 | l), 0);
        for (size_t i = 0; i < n; i++) {
            xi[i] = xi[i] >= 0 ? 1.0 : -1.0;
            eta[i] = eta[i] >= 0 ? 1.0 : -1.0;
        }
        const double *pr[2] = {xi, eta};
        /* G[(2u + a) np]: G_{u;a};  V[(8u + 4a + 2w + b) np]: Hess(u.z_a) G_{w;b} */
        for (int u = 0; u < 2; u++)
            for (int a = 0; a < 2; a++) d2_grad(&N[a], l, pr[u], G + (size_t)(2 * u + a) * np);
        for (int u = 0; u < 2; u++)
            for (int a = 0; a < 2; a++)
                for (int w = 0; w < 2; w++)
                    for (int b = 0; b < 2; b++)
                        d2_hvp(&N[a], l, pr[u], G + (size_t)(2 * w + b) * np,
                               V + (size_t)(8 * u + 4 * a + 2 * w + b) * np);
        double nrm = 1.0 / (double)n, *o = st + (size_t)(l - 1) * 64;
#define GV(u, a) (G + (size_t)(2 * (u) + (a)) * np)
#define VV(u, a, w, b) (V + (size_t)(8 * (u) + 4 * (a) + 2 * (w) + (b)) * np)
        for (int a0 = 0; a0 < 2; a0++)
            for (int a1 = 0; a1 < 2; a1++)
                for (int a2 = 0; a2 < 2; a2++)
                    for (int a3 = 0; a3 < 2; a3++) {
                        int ix = 8 * a0 + 4 * a1 + 2 * a2 + a3;
                        double d3;
                        if (a2 == a3) {
                            d3 = d2_d3(&N[a0], l, xi, GV(0, a1), GV(1, a2));
                        } else {
                            for (size_t i = 0; i < np; i++) {
                                p1[i] = GV(1, a2)[i] + GV(1, a3)[i];
                                p2[i] = GV(1, a2)[i] - GV(1, a3)[i];
                            }
                            d3 = 0.25 * (d2_d3(&N[a0], l, xi, GV(0, a1), p1) -
                                         d2_d3(&N[a0], l, xi, GV(0, a1), p2));
                        }
                        o[ix] = nrm * d3;
                        o[16 + ix] = nrm * d2_dot(&N[0], l, VV(0, a0, 1, a2), VV(0, a1, 1, a3));
                        o[32 + ix] = nrm * d2_dot(&N[0], l, VV(0, a0, 0, a2), VV(1, a1, 1, a3));
                        o[48 + ix] = nrm * d2_dot(&N[0], l, VV(0, a0, 1, a2), VV(1, a1, 0, a3));
                    }
#undef GV
#undef VV
    }
}

wick_status wick_ddntk_two_measure(const wick_ntk_fluct_config *c, const double G0[4], double *val,
                                   double *se) {
    if (!c || !G0 || !val || !se) return wick_fail(WICK_EINVAL, "two-input ddntk: no input or output");
    if (!wick_act_has_derivative(c->act))
        return wick_fail(WICK_EINVAL, "two-input ddntk: %s has no derivative (a delta)",
                         wick_act_name(c->act));
    if (c->depth < 1 || c->depth > 64 || c->width < 2 || c->width > 2048 ||
        (size_t)c->depth * c->width * c->width > ((size_t)1 << 24))
        return wick_fail(WICK_EINVAL, "two-input ddntk: depth %d, width %zu: expected 1..64, "
                         "2..2048, depth x width^2 <= 2^24", c->depth, c->width);
    if (c->samples < 2 || c->samples > ((size_t)1 << 32))
        return wick_fail(WICK_EINVAL, "two-input ddntk: %zu networks, expected at least 2",
                         c->samples);
    if (!(G0[0] > 0) || !(G0[3] > 0) || !(G0[0] * G0[3] - G0[1] * G0[1] >= 0))
        return wick_fail(WICK_EINVAL, "two-input ddntk: the Gram matrix is not positive "
                         "semi-definite");
    double x[2][2];   /* x_a . x_b / 2 = G0_ab */
    x[0][0] = sqrt(2 * G0[0]); x[0][1] = 0;
    x[1][0] = 2 * G0[1] / x[0][0];
    double r2 = 2 * G0[3] - x[1][0] * x[1][0];
    x[1][1] = sqrt(r2 > 0 ? r2 : 0);
    size_t n = c->width, L = (size_t)c->depth, M = c->samples, np = d2_off(n, c->depth + 1);
    int nt = wick_threads();
    size_t per_t = 23 * np + 2 * n + 2 * d2_work(n, c->depth);
    double *bufs = wick_malloc(sizeof(double) * per_t * (size_t)nt);
    double *stats = wick_malloc(sizeof(double) * M * L * 64);
    if (!bufs || !stats) {
        wick_free(bufs); wick_free(stats);
        return wick_fail(WICK_ENOMEM, "two-input ddntk: out of memory (width %zu, %zu networks)",
                         n, M);
    }
    #pragma omp parallel for num_threads(nt) schedule(dynamic, 2)
    for (size_t k = 0; k < M; k++)
        d2_network(c, (const double(*)[2])x, k, bufs + per_t * (size_t)omp_get_thread_num(),
                   stats + k * L * 64);
    for (size_t q = 0; q < L * 64; q++) {
        double mu = 0, v = 0;
        for (size_t k = 0; k < M; k++) mu += stats[k * L * 64 + q];
        mu /= (double)M;
        for (size_t k = 0; k < M; k++) {
            double dl = stats[k * L * 64 + q] - mu;
            v += dl * dl;
        }
        val[q] = mu;
        se[q] = sqrt(v / ((double)M - 1) / (double)M);
    }
    wick_free(bufs); wick_free(stats);
    return WICK_OK;
}
