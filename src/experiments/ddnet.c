/* ddnet.c — the network of the ddNTK measurements (ddnet.h): one
 * implementation for ddntk.c (n0 = 1) and ddntk2.c (n0 = 2).  Every
 * derivative is exact, so kinks need no care (sigma'' = sigma''' = 0 on
 * either side; the probability that a preactivation sits exactly on one is
 * 0). */
#include "ddnet.h"
#include <cblas.h>
#include <math.h>
#include <string.h>

void ddnet_bind(ddnet *N, const wick_ntk_fluct_config *c, size_t n0, double *th, const double *x,
                double *buf) {
    size_t n = c->width, L = (size_t)c->depth;
    N->n = n; N->n0 = n0; N->L = c->depth; N->c = c; N->x = x; N->th = th;
    N->np = ddnet_off(n, n0, c->depth + 1);
    N->z = buf; buf += L * n; N->s = buf; buf += L * n; N->d = buf; buf += L * n;
    N->e = buf; buf += L * n; N->f = buf; buf += L * n;
    N->dl = buf; buf += n; N->ddl = buf; buf += n; N->t1 = buf; buf += n; N->t2 = buf; buf += n;
    N->zt = buf; buf += L * n; N->st = buf; buf += L * n;
    N->jz = buf; buf += 6 * n; N->jy = buf; buf += 6 * n; N->ja = buf; buf += 6 * n; N->jb = buf;
}

#define LV(N, v, l) ((N)->v + (size_t)((l) - 1) * (N)->n)
#define OFF(N, l) ddnet_off((N)->n, (N)->n0, l)
#define FANIN(N, l) ddnet_fanin((N)->n, (N)->n0, l)

void ddnet_draw(const ddnet *N, uint64_t k) {
    for (int l = 1; l <= N->L; l++) {
        size_t o = OFF(N, l), fi = FANIN(N, l);
        ex_draw_layer(N->th + o, N->th + o + N->n * fi, N->n, fi, N->c->cb, N->c->cw, N->c->seed,
                      k, l);
    }
}

/* y = M v + beta y for M (n x fan-in) of layer l in the vector p (parameters
 * or a direction); a fan-in of 1 by hand (a dgemv of one column is slower) */
static void mv(const ddnet *N, const double *p, int l, const double *v, double beta, double *y) {
    size_t n = N->n, fi = FANIN(N, l);
    const double *W = p + OFF(N, l);
    if (fi == 1) {
        for (size_t i = 0; i < n; i++) y[i] = beta * y[i] + W[i] * v[0];
        return;
    }
    cblas_dgemv(CblasRowMajor, CblasNoTrans, (int)n, (int)fi, 1.0, W, (int)fi, v, 1, beta, y, 1);
}

/* y = M^T v (+ beta y), layer l >= 2 */
static void mtv(const ddnet *N, const double *p, int l, const double *v, double beta, double *y) {
    size_t n = N->n;
    cblas_dgemv(CblasRowMajor, CblasTrans, (int)n, (int)n, 1.0, p + OFF(N, l), (int)n, v, 1,
                beta, y, 1);
}

void ddnet_forward(ddnet *N) {
    size_t n = N->n;
    for (int l = 1; l <= N->L; l++) {
        double *z = LV(N, z, l);
        memcpy(z, N->th + OFF(N, l) + n * FANIN(N, l), sizeof(double) * n);
        mv(N, N->th, l, l == 1 ? N->x : LV(N, s, l - 1), 1.0, z);
        for (size_t i = 0; i < n; i++) {
            LV(N, s, l)[i] = wick_act_eval(N->c->act, z[i]);
            LV(N, d, l)[i] = wick_act_deriv(N->c->act, z[i]);
            LV(N, e, l)[i] = wick_act_deriv2(N->c->act, z[i]);
            LV(N, f, l)[i] = wick_act_deriv3(N->c->act, z[i]);
        }
    }
}

void ddnet_grad(ddnet *N, int L, const double *u, double *G) {
    size_t n = N->n;
    const wick_ntk_fluct_config *c = N->c;
    memset(G + OFF(N, L + 1), 0, sizeof(double) * (N->np - OFF(N, L + 1)));
    memcpy(N->dl, u, sizeof(double) * n);
    for (int l = L; l >= 1; l--) {
        size_t o = OFF(N, l), fi = FANIN(N, l);
        const double *y = l == 1 ? N->x : LV(N, s, l - 1);
        double lw = c->lambda_w / (double)fi;
        for (size_t i = 0; i < n; i++) {
            for (size_t j = 0; j < fi; j++) G[o + i * fi + j] = lw * N->dl[i] * y[j];
            G[o + n * fi + i] = c->lambda_b * N->dl[i];
        }
        if (l > 1) {
            mtv(N, N->th, l, N->dl, 0.0, N->t1);
            const double *d = LV(N, d, l - 1);
            for (size_t i = 0; i < n; i++) N->dl[i] = d[i] * N->t1[i];
        }
    }
}

/* the forward tangent along a, then backpropagation of u with its tangent */
void ddnet_hvp(ddnet *N, int L, const double *u, const double *a, double *out) {
    size_t n = N->n;
    memset(out + OFF(N, L + 1), 0, sizeof(double) * (N->np - OFF(N, L + 1)));
    for (int l = 1; l <= L; l++) {
        double *zt = LV(N, zt, l);
        memcpy(zt, a + OFF(N, l) + n * FANIN(N, l), sizeof(double) * n);
        mv(N, a, l, l == 1 ? N->x : LV(N, s, l - 1), 1.0, zt);
        if (l > 1) mv(N, N->th, l, LV(N, st, l - 1), 1.0, zt);
        const double *d = LV(N, d, l);
        for (size_t i = 0; i < n; i++) LV(N, st, l)[i] = d[i] * zt[i];
    }
    memcpy(N->dl, u, sizeof(double) * n);
    memset(N->ddl, 0, sizeof(double) * n);
    for (int l = L; l >= 1; l--) {
        size_t o = OFF(N, l), fi = FANIN(N, l);
        if (l == 1) {   /* the input has no tangent */
            for (size_t i = 0; i < n; i++) {
                for (size_t j = 0; j < fi; j++) out[o + i * fi + j] = N->ddl[i] * N->x[j];
                out[o + n * fi + i] = N->ddl[i];
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
        mtv(N, N->th, l, N->dl, 0.0, N->t1);          /* t = W^T delta */
        mtv(N, a, l, N->dl, 0.0, N->t2);              /* dW^T delta ... */
        mtv(N, N->th, l, N->ddl, 1.0, N->t2);         /* ... + W^T delta' */
        const double *d = LV(N, d, l - 1), *e = LV(N, e, l - 1), *zt = LV(N, zt, l - 1);
        for (size_t i = 0; i < n; i++) {
            N->dl[i] = d[i] * N->t1[i];
            N->ddl[i] = e[i] * zt[i] * N->t1[i] + d[i] * N->t2[i];
        }
    }
}

/* d/ds d^2/dt^2 of u . z(theta + s a + t b) at 0, by a jet with the
 * coefficients of 1, s, t, st, t^2, st^2 (s^2 = t^3 = 0; Taylor
 * coefficients, so the answer is 2 x the st^2 one). */
enum { J0 = 0, JS, JT, JST, JTT, JSTT };
double ddnet_d3(ddnet *N, int L, const double *u, const double *a, const double *b) {
    size_t n = N->n;
    double *jz = N->jz, *jy = N->jy, *ja = N->ja, *jb = N->jb;
#define J(p, k) ((p) + (size_t)(k) * n)
    for (int l = 1; l <= L; l++) {
        size_t o = OFF(N, l), fi = FANIN(N, l);
        const double *bias = N->th + o + n * fi, *dba = a + o + n * fi, *dbb = b + o + n * fi;
        if (l == 1) {
            memset(jz, 0, sizeof(double) * 6 * n);
            mv(N, N->th, 1, N->x, 0.0, J(jz, J0));
            mv(N, a, 1, N->x, 0.0, J(jz, JS));
            mv(N, b, 1, N->x, 0.0, J(jz, JT));
            for (size_t i = 0; i < n; i++) {
                J(jz, J0)[i] += bias[i];
                J(jz, JS)[i] += dba[i];
                J(jz, JT)[i] += dbb[i];
            }
        } else {
            /* (W + s A + t B) y + bias + s dba + t dbb, y the previous jet */
            for (int k = 0; k < 6; k++) mv(N, N->th, l, J(jy, k), 0.0, J(jz, k));
            for (int k = 0; k < 6; k++) {
                mv(N, a, l, J(jy, k), 0.0, J(ja, k));
                mv(N, b, l, J(jy, k), 0.0, J(jb, k));
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

double ddnet_dot(const ddnet *N, int L, const double *v, const double *w) {
    size_t n = N->n;
    const wick_ntk_fluct_config *c = N->c;
    double acc = 0;
    for (int l = 1; l <= L; l++) {
        size_t o = OFF(N, l), fi = FANIN(N, l), nw = n * fi;
        double sw = 0, sb = 0;
        for (size_t i = 0; i < nw; i++) sw += v[o + i] * w[o + i];
        for (size_t i = 0; i < n; i++) sb += v[o + nw + i] * w[o + nw + i];
        acc += c->lambda_w / (double)fi * sw + c->lambda_b * sb;
    }
    return acc;
}
