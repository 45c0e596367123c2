/* dntk2.c — the dNTK-preactivation correlators of two inputs measured on real
 * finite-width networks (the book's ch. 11; docs/theory-finite-width.md),
 * beside wick_dntk_PQ_two:
 *   E[dH_{i0i1i2;a0a1a2} z_{i3;a3}] = [d01 d23 P_{a0a1a2a3} + d02 d13 P_{a0a2a1a3}
 *                                     + d03 d12 Q_{a0a1a2a3}] / n_{l-1}.
 *
 * Networks as wick_ntk_fluct_two_measure's (n_0 = 2, x by the Cholesky
 * factor of 2 G0, every layer of width n).  As for one input (dntk.c), the
 * dNTK is carried contracted with a vector u of layer l at one sample a0,
 * M^{a0}[u]_{i1i2;a1a2} = sum_i0 u_i0 dH_{i0i1i2;a0a1a2}: the change of the NTK
 * block (a1, a2) along the step theta += lambda grad(u . z_{;a0}).  Its forward
 * equation (the one-input one with sample indices), W of layer k+1, the rest
 * of layer k, D_a = diag(sigma'_a), u~ = u^(k) = sigma'_{a0} o (W^T u^(k+1)):
 *   M'_{a1a2} = lambda_W/n [u^(k+1) (W D_a2 H_{a1a2}^T (s_a0 o s'_a1))^T
 *                          + (W D_a1 H_{a1a2} (s_a0 o s'_a2)) u^(k+1)^T]
 *             + lambda_W/n [u~ . H_{a0a1} (s'_a1 o s_a2) + u~ . H_{a0a2} (s_a1 o s'_a2)] I
 *             + W [D_a1 M_{a1a2} D_a2 + E(s''_a1 o c_a1) H_{a1a2} D_a2
 *                  + D_a1 H_{a1a2} E(s''_a2 o c_a2)] W^T,   c_a = H_{a a0} u~,
 * for the blocks 00, 01, 11 (M_{10} = M_{01}^T).
 *
 * Per network and layer: P_{a0a1a2a3} from a Rademacher probe xi at sample a0
 * (E_xi[xi_j M^{a0}[xi]_{jm;a1a2}] = dH_{jjm;a0a1a2}), sum_{j != m} of it times
 * z_{m;a3}; Q_{a0a1a2a3} from u = z_{;a3} at sample a0, sum_{j != m}
 * dH_{jmm;a0a1a2} z_{j;a3} = tr M^{a0}[z_{a3}]_{a1a2} less the diagonal (from the
 * probe).  Each over n (n - 1) pairs, times n, is its tensor + O(1/n). */
#include "experiments.h"
#include <cblas.h>
#include <math.h>
#include <omp.h>
#include <string.h>

typedef struct {
    size_t n;
    int L;
    double *W, *b, *z, *s, *d, *e, *H;   /* per layer: W n x n (layer 1: n x 2), H 3 blocks n x n, vectors 2 n */
    double *M, *T, *Y, *u, *ut, *va, *vb, *c;  /* workspace: M 3 blocks */
} d2_net;

#define D2_W(N, l) ((N)->W + (size_t)((l) - 1) * (N)->n * (N)->n)
#define D2_H(N, l, q) ((N)->H + ((size_t)((l) - 1) * 3 + (q)) * (N)->n * (N)->n)
#define D2_V(N, v, l, a) ((N)->v + ((size_t)((l) - 1) * 2 + (a)) * (N)->n)

static size_t d2_doubles(size_t n, int L) {
    size_t Ls = (size_t)L;
    return Ls * (4 * n * n + 9 * n) + 5 * n * n + (Ls + 1) * n + 7 * n;
}

static void d2_bind(d2_net *N, double *buf, size_t n, int L) {
    size_t nn = n * n, Ls = (size_t)L;
    N->n = n; N->L = L;
    N->W = buf; N->H = N->W + Ls * nn;
    N->b = N->H + 3 * Ls * nn; N->z = N->b + Ls * n; N->s = N->z + 2 * Ls * n;
    N->d = N->s + 2 * Ls * n; N->e = N->d + 2 * Ls * n;
    N->M = N->e + 2 * Ls * n; N->T = N->M + 3 * nn; N->Y = N->T + nn;
    N->u = N->Y + nn; N->ut = N->u + (Ls + 1) * n; N->va = N->ut + n; N->vb = N->va + n;
    N->c = N->vb + n;  /* 2 n */
}

/* block index of the ordered pair (a, b): 00 -> 0, 01 and 10 -> 1, 11 -> 2 */
static int blk(int a, int b) { return a + b; }
/* H_{ab}[i][j] from the stored blocks (H_10 = H_01^T) */
static double hget(const double *const *Hb, size_t n, int a, int b, size_t i, size_t j) {
    return a == 1 && b == 0 ? Hb[1][j * n + i] : Hb[blk(a, b)][i * n + j];
}

/* Layers 1..upto of network k: drawn first when `draw`, else from the
 * parameters already in N (the perturbed ones of the finite differences). */
static void d2_forward(const wick_ntk_fluct_config *c, const double x[2][2], uint64_t k,
                       d2_net *N, int upto, int draw) {
    size_t n = N->n;
    double nd = (double)n;
    for (int l = 1; l <= upto; l++) {
        double *W = D2_W(N, l), *b = N->b + (size_t)(l - 1) * n;
        if (l == 1) {
            if (draw) ex_draw_layer(W, b, n, 2, c->cb, c->cw, c->seed, k, 1);
            for (int a = 0; a < 2; a++) {
                double *z = D2_V(N, z, 1, a);
                for (size_t i = 0; i < n; i++) z[i] = W[2 * i] * x[a][0] + W[2 * i + 1] * x[a][1] + b[i];
            }
            for (int q = 0; q < 3; q++) {
                int a = q == 2, bb = q >= 1;
                double *H = D2_H(N, 1, q);
                memset(H, 0, sizeof(double) * n * n);
                double g = (x[a][0] * x[bb][0] + x[a][1] * x[bb][1]) / 2;
                for (size_t i = 0; i < n; i++) H[i * n + i] = c->lambda_b + c->lambda_w * g;
            }
        } else {
            if (draw) ex_draw_layer(W, b, n, n, c->cb, c->cw, c->seed, k, l);
            for (int q = 0; q < 3; q++) {
                int a = q == 2, bb = q >= 1;
                const double *Hp = D2_H(N, l - 1, q), *da = D2_V(N, d, l - 1, a),
                             *db = D2_V(N, d, l - 1, bb), *sa = D2_V(N, s, l - 1, a),
                             *sb = D2_V(N, s, l - 1, bb);
                double ss = 0;
                for (size_t i = 0; i < n; i++) {
                    ss += sa[i] * sb[i];
                    for (size_t j = 0; j < n; j++) N->Y[i * n + j] = da[i] * db[j] * Hp[i * n + j];
                }
                double *H = D2_H(N, l, q);
                cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)n, (int)n, (int)n, 1.0,
                            W, (int)n, N->Y, (int)n, 0.0, N->T, (int)n);
                cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)n, (int)n, (int)n, 1.0,
                            N->T, (int)n, W, (int)n, 0.0, H, (int)n);
                for (size_t i = 0; i < n; i++) H[i * n + i] += c->lambda_b + c->lambda_w * ss / nd;
            }
            for (int a = 0; a < 2; a++) {
                cblas_dgemv(CblasRowMajor, CblasNoTrans, (int)n, (int)n, 1.0, W, (int)n,
                            D2_V(N, s, l - 1, a), 1, 0.0, D2_V(N, z, l, a), 1);
                double *z = D2_V(N, z, l, a);
                for (size_t i = 0; i < n; i++) z[i] += b[i];
            }
        }
        for (int a = 0; a < 2; a++) {
            const double *z = D2_V(N, z, l, a);
            double *s = D2_V(N, s, l, a), *d = D2_V(N, d, l, a), *e = D2_V(N, e, l, a);
            for (size_t i = 0; i < n; i++) {
                s[i] = wick_act_eval(c->act, z[i]);
                d[i] = wick_act_deriv(c->act, z[i]);
                e[i] = wick_act_deriv2(c->act, z[i]);
            }
        }
    }
}

/* u^(k) = d(u . z^(l))/dz^(k) for k = l .. 1 at sample a0, into N->u: backwards,
 * u^(k) = (W^(k+1)^T u^(k+1)) times the layer's d (sigma' at sample a0). */
static void d2_backprop_u(d2_net *N, int l, int a0, const double *u) {
    size_t n = N->n;
    memcpy(N->u + (size_t)l * n, u, sizeof(double) * n);
    for (int k = l - 1; k >= 1; k--) {
        double *uk = N->u + (size_t)k * n;
        cblas_dgemv(CblasRowMajor, CblasTrans, (int)n, (int)n, 1.0, D2_W(N, k + 1), (int)n,
                    N->u + (size_t)(k + 1) * n, 1, 0.0, uk, 1);
        const double *d = D2_V(N, d, k, a0);
        for (size_t i = 0; i < n; i++) uk[i] *= d[i];
    }
}

/* M[q] (blocks 00, 01, 11 of layer l) = M^{a0}[u] for the vector u of layer l. */
static void d2_contract(const wick_ntk_fluct_config *c, d2_net *N, int l, int a0, const double *u,
                        double *M) {
    size_t n = N->n, nn = n * n;
    double nd = (double)n;
    d2_backprop_u(N, l, a0, u);
    memset(M, 0, sizeof(double) * 3 * nn);
    for (int k = 1; k < l; k++) {
        const double *W = D2_W(N, k + 1), *ut = N->u + (size_t)k * n, *un = N->u + (size_t)(k + 1) * n;
        const double *Hb[3] = {D2_H(N, k, 0), D2_H(N, k, 1), D2_H(N, k, 2)};
        const double *s[2] = {D2_V(N, s, k, 0), D2_V(N, s, k, 1)};
        const double *d[2] = {D2_V(N, d, k, 0), D2_V(N, d, k, 1)};
        const double *e[2] = {D2_V(N, e, k, 0), D2_V(N, e, k, 1)};
        /* c_a = H_{a a0} u~ */
        for (int a = 0; a < 2; a++)
            for (size_t i = 0; i < n; i++) {
                double acc = 0;
                for (size_t j = 0; j < n; j++) acc += hget(Hb, n, a, a0, i, j) * ut[j];
                N->c[a * n + i] = acc;
            }
        for (int q = 0; q < 3; q++) {
            int a1 = q == 2, a2 = q >= 1;
            double *Mq = M + (size_t)q * nn;
            /* the diagonal term: u~ . H_{a0a1} (s'_a1 o s_a2) + u~ . H_{a0a2} (s_a1 o s'_a2) */
            double dg = 0;
            for (size_t i = 0; i < n; i++) {
                double h1 = 0, h2 = 0;
                for (size_t j = 0; j < n; j++) {
                    h1 += hget(Hb, n, a0, a1, i, j) * d[a1][j] * s[a2][j];
                    h2 += hget(Hb, n, a0, a2, i, j) * s[a1][j] * d[a2][j];
                }
                dg += ut[i] * (h1 + h2);
            }
            /* va = W D_a2 H_{a1a2}^T (s_a0 o s'_a1), vb = W D_a1 H_{a1a2} (s_a0 o s'_a2) */
            for (size_t i = 0; i < n; i++) {
                double t1 = 0, t2 = 0;
                for (size_t j = 0; j < n; j++) {
                    t1 += hget(Hb, n, a1, a2, j, i) * s[a0][j] * d[a1][j];
                    t2 += hget(Hb, n, a1, a2, i, j) * s[a0][j] * d[a2][j];
                }
                N->T[i] = d[a2][i] * t1;
                N->T[n + i] = d[a1][i] * t2;
            }
            cblas_dgemv(CblasRowMajor, CblasNoTrans, (int)n, (int)n, 1.0, W, (int)n, N->T, 1, 0.0,
                        N->va, 1);
            cblas_dgemv(CblasRowMajor, CblasNoTrans, (int)n, (int)n, 1.0, W, (int)n, N->T + n, 1,
                        0.0, N->vb, 1);
            /* inner = D_a1 M D_a2 + E(s''_a1 o c_a1) H D_a2 + D_a1 H E(s''_a2 o c_a2) */
            const double *c1 = N->c + (size_t)a1 * n, *c2 = N->c + (size_t)a2 * n;
            for (size_t i = 0; i < n; i++) {
                double ec = e[a1][i] * c1[i];
                for (size_t j = 0; j < n; j++)
                    N->Y[i * n + j] = d[a1][i] * d[a2][j] * Mq[i * n + j] +
                                      hget(Hb, n, a1, a2, i, j) *
                                          (ec * d[a2][j] + d[a1][i] * e[a2][j] * c2[j]);
            }
            cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)n, (int)n, (int)n, 1.0, W,
                        (int)n, N->Y, (int)n, 0.0, N->T, (int)n);
            cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)n, (int)n, (int)n, 1.0,
                        N->T, (int)n, W, (int)n, 0.0, Mq, (int)n);
            double lw = c->lambda_w / nd;
            for (size_t i = 0; i < n; i++) {
                for (size_t j = 0; j < n; j++) Mq[i * n + j] += lw * (un[i] * N->va[j] + N->vb[i] * un[j]);
                Mq[i * n + i] += lw * dg;
            }
        }
    }
}

/* The same M by central differences of the NTK blocks along the step
 * theta += t lambda grad(u . z_{;a0}^(l)), t = -+eta: a finite step crosses the
 * kinks that the derivative cannot see (the delta of sigma'').  P0 saves
 * the parameters (L n^2 + L n doubles); Hs holds the + side (3 n^2). */
static void d2_fd(const wick_ntk_fluct_config *c, const double x[2][2], d2_net *N, int l, int a0,
                  const double *u, double eta, double *P0, double *Hs, double *M) {
    size_t n = N->n, nn = n * n, Ls = (size_t)N->L;
    double nd = (double)n;
    d2_backprop_u(N, l, a0, u);   /* u^(k) backwards at sample a0 */
    /* the step's direction: dW^(k) = lambda_W/n_{k-1} u^(k) h^(k-1)^T, db = lambda_b u^(k) */
    double *G = P0 + Ls * nn + Ls * n;  /* the gradient, same layout as the parameters */
    for (int k = 1; k <= l; k++) {
        const double *uk = N->u + (size_t)k * n;
        size_t nin = k == 1 ? 2 : n;
        double sc = c->lambda_w / (double)nin;
        const double *h = k == 1 ? x[a0] : D2_V(N, s, k - 1, a0);
        double *gW = G + (size_t)(k - 1) * nn, *gb = G + Ls * nn + (size_t)(k - 1) * n;
        for (size_t i = 0; i < n; i++) {
            for (size_t j = 0; j < nin; j++) gW[i * nin + j] = sc * uk[i] * h[j];
            gb[i] = c->lambda_b * uk[i];
        }
    }
    memcpy(P0, N->W, sizeof(double) * Ls * nn);
    memcpy(P0 + Ls * nn, N->b, sizeof(double) * Ls * n);
    for (int sg = 1; sg >= -1; sg -= 2) {
        for (int k = 1; k <= l; k++) {
            size_t nw = k == 1 ? 2 * n : nn;
            double *W = D2_W(N, k), *b = N->b + (size_t)(k - 1) * n;
            const double *W0 = P0 + (size_t)(k - 1) * nn, *b0 = P0 + Ls * nn + (size_t)(k - 1) * n;
            const double *gW = G + (size_t)(k - 1) * nn, *gb = G + Ls * nn + (size_t)(k - 1) * n;
            for (size_t i = 0; i < nw; i++) W[i] = W0[i] + sg * eta * gW[i];
            for (size_t i = 0; i < n; i++) b[i] = b0[i] + sg * eta * gb[i];
        }
        d2_forward(c, x, 0, N, l, 0);
        for (int q = 0; q < 3; q++) {
            const double *H = D2_H(N, l, q);
            if (sg > 0) memcpy(Hs + (size_t)q * nn, H, sizeof(double) * nn);
            else
                for (size_t i = 0; i < nn; i++) M[(size_t)q * nn + i] = (Hs[(size_t)q * nn + i] - H[i]) / (2 * eta);
        }
    }
    (void)nd;
    memcpy(N->W, P0, sizeof(double) * Ls * nn);
    memcpy(N->b, P0 + Ls * nn, sizeof(double) * Ls * n);
    d2_forward(c, x, 0, N, N->L, 0);
}

static double mget(const double *M, size_t n, int a1, int a2, size_t i, size_t j) {
    return a1 == 1 && a2 == 0 ? M[n * n + j * n + i] : M[(size_t)blk(a1, a2) * n * n + i * n + j];
}

#define D2_STATS 32  /* per layer: P (16) then Q (16) */

static void d2_network(const wick_ntk_fluct_config *c, const double x[2][2], uint64_t k,
                       double eta, d2_net *N, double *Mx, double *Mz, double *xi, double *P0,
                       double *stats) {
    size_t n = N->n;
    double nm1 = (double)(n - 1);
    d2_forward(c, x, k, N, N->L, 1);
    double *Hs = P0 + 2 * ((size_t)N->L * (n * n + n));
    memset(stats, 0, sizeof(double) * D2_STATS);
    for (int l = 2; l <= N->L; l++) {
        double *o = stats + (size_t)(l - 1) * D2_STATS;
        for (int a0 = 0; a0 < 2; a0++) {
            ex_fill_normal(xi, n, c->seed, ex_stream(k, 0x90000 | (a0 << 12) | l), 0);
            for (size_t i = 0; i < n; i++) xi[i] = xi[i] >= 0 ? 1.0 : -1.0;
            if (eta > 0) d2_fd(c, x, N, l, a0, xi, eta, P0, Hs, Mx);
            else d2_contract(c, N, l, a0, xi, Mx);
            double diag[2][2][2];  /* [a1][a2][a3]: sum_j dH_{jjj;a0a1a2} z_{j;a3} */
            for (int a1 = 0; a1 < 2; a1++)
                for (int a2 = 0; a2 < 2; a2++)
                    for (int a3 = 0; a3 < 2; a3++) {
                        const double *z = D2_V(N, z, l, a3);
                        double full = 0, dg = 0;
                        for (size_t j = 0; j < n; j++) {
                            double acc = 0;
                            for (size_t m = 0; m < n; m++) acc += mget(Mx, n, a1, a2, j, m) * z[m];
                            full += xi[j] * acc;
                            dg += xi[j] * mget(Mx, n, a1, a2, j, j) * z[j];
                        }
                        diag[a1][a2][a3] = dg;
                        o[8 * a0 + 4 * a1 + 2 * a2 + a3] = (full - dg) / nm1;
                    }
            for (int a3 = 0; a3 < 2; a3++) {
                /* u = z_{;a3} itself: copied, as the differences recompute z */
                memcpy(xi + n, D2_V(N, z, l, a3), sizeof(double) * n);
                if (eta > 0) d2_fd(c, x, N, l, a0, xi + n, eta, P0, Hs, Mz);
                else d2_contract(c, N, l, a0, xi + n, Mz);
                for (int a1 = 0; a1 < 2; a1++)
                    for (int a2 = 0; a2 < 2; a2++) {
                        double tr = 0;
                        for (size_t j = 0; j < n; j++) tr += mget(Mz, n, a1, a2, j, j);
                        o[16 + 8 * a0 + 4 * a1 + 2 * a2 + a3] = (tr - diag[a1][a2][a3]) / nm1;
                    }
            }
        }
    }
}

wick_status wick_dntk_two_measure(const wick_ntk_fluct_config *c, const double G0[4], double eta,
                                  double *val, double *se) {
    if (!c || !G0 || !val || !se)
        return wick_fail(WICK_EINVAL, "two-input dntk ensemble: no configuration, input or output");
    if (!wick_act_has_derivative(c->act))
        return wick_fail(WICK_EINVAL, "two-input dntk ensemble: %s has no derivative (a delta)",
                         wick_act_name(c->act));
    double v[4] = {c->cb, c->cw, c->lambda_b, c->lambda_w};
    for (int i = 0; i < 4; i++)
        if (!isfinite(v[i]) || v[i] < 0)
            return wick_fail(WICK_EINVAL, "two-input dntk ensemble: C_b, C_W, lambda_b, lambda_w "
                             "must be finite and non-negative");
    if (c->depth < 1 || c->depth > 64 || c->width < 2 || c->width > 2048 || c->samples < 2 ||
        (size_t)c->depth * c->width * c->width > ((size_t)1 << 24))
        return wick_fail(WICK_EINVAL, "two-input dntk ensemble: depth %d, width %zu, %zu networks "
                         "(depth 1..64, width 2..2048, depth x width^2 <= 2^24, at least 2 "
                         "networks)", c->depth, c->width, c->samples);
    if (!(G0[0] > 0) || G0[1] != G0[2] || !(G0[3] * G0[0] - G0[1] * G0[1] >= 0))
        return wick_fail(WICK_EINVAL, "two-input dntk ensemble: the input Gram is not symmetric "
                         "positive semi-definite with G0_11 > 0");
    double x[2][2];
    ex_two_inputs(G0, x);
    size_t n = c->width, L = (size_t)c->depth, M = c->samples;
    int nt = wick_threads();
    if (!(eta >= 0) || !isfinite(eta))
        return wick_fail(WICK_EINVAL, "two-input dntk ensemble: step %g must be finite and >= 0", eta);
    size_t pn = L * (n * n + n);  /* one copy of the parameters */
    size_t per_t = d2_doubles(n, c->depth) + 6 * n * n + 2 * n + 2 * pn + 3 * n * n;
    double *bufs = wick_malloc(sizeof(double) * per_t * (size_t)nt);
    double *stats = wick_malloc(sizeof(double) * M * L * D2_STATS);
    if (!bufs || !stats) {
        wick_free(bufs); wick_free(stats);
        return wick_fail(WICK_ENOMEM, "two-input dntk ensemble: out of memory (width %zu, %zu "
                         "networks)", n, M);
    }
    #pragma omp parallel for num_threads(nt) schedule(dynamic, 2)
    for (size_t k = 0; k < M; k++) {
        double *buf = bufs + per_t * (size_t)omp_get_thread_num();
        d2_net N;
        d2_bind(&N, buf, n, c->depth);
        double *Mx = buf + d2_doubles(n, c->depth), *Mz = Mx + 3 * n * n, *xi = Mz + 3 * n * n;
        d2_network(c, x, k, eta, &N, Mx, Mz, xi, xi + 2 * n, stats + k * L * D2_STATS);
    }
    ex_mean_se(stats, M, L * D2_STATS, val, se);
    wick_free(bufs); wick_free(stats);
    return WICK_OK;
}

wick_status wick_dntk_two_contract(const wick_ntk_fluct_config *c, const double G0[4], uint64_t k,
                                   int a0, const double *u, double *M) {
    if (!c || !G0 || !u || !M || (a0 != 0 && a0 != 1))
        return wick_fail(WICK_EINVAL, "two-input dntk: no configuration, input, probe or output "
                         "(or sample %d not 0 or 1)", a0);
    if (!wick_act_has_derivative(c->act))
        return wick_fail(WICK_EINVAL, "two-input dntk: %s has no derivative (a delta)",
                         wick_act_name(c->act));
    if (c->depth < 1 || c->depth > 64 || c->width < 2 || c->width > 2048 ||
        (size_t)c->depth * c->width * c->width > ((size_t)1 << 24))
        return wick_fail(WICK_EINVAL, "two-input dntk: depth %d, width %zu", c->depth, c->width);
    if (!(G0[0] > 0) || G0[1] != G0[2] || !(G0[3] * G0[0] - G0[1] * G0[1] >= 0))
        return wick_fail(WICK_EINVAL, "two-input dntk: the input Gram is not symmetric positive "
                         "semi-definite with G0_11 > 0");
    double x[2][2];
    ex_two_inputs(G0, x);
    size_t n = c->width;
    double *buf = wick_malloc(sizeof(double) * (d2_doubles(n, c->depth) + 3 * n * n));
    if (!buf) return wick_fail(WICK_ENOMEM, "two-input dntk: out of memory (width %zu)", n);
    d2_net N;
    d2_bind(&N, buf, n, c->depth);
    double *Mb = buf + d2_doubles(n, c->depth);
    d2_forward(c, x, k, &N, N.L, 1);
    d2_contract(c, &N, c->depth, a0, u, Mb);
    for (int a1 = 0; a1 < 2; a1++)
        for (int a2 = 0; a2 < 2; a2++)
            for (size_t i = 0; i < n; i++)
                for (size_t j = 0; j < n; j++)
                    M[(a1 * n + i) * 2 * n + a2 * n + j] = mget(Mb, n, a1, a2, i, j);
    wick_free(buf);
    return WICK_OK;
}
