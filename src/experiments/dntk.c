/* dntk.c — the dNTK of real finite-width networks (the book's ch. 11;
 * docs/theory-finite-width.md): its correlation with the preactivations,
 * E[dH_i0i1i2 z_i3] = (d01 d23 P + d02 d13 P + d03 d12 Q) / n_{l-1},
 * measured over M networks beside wick_theory_finite's P and Q.
 *
 * The dNTK dH_i0i1i2 = sum_mu lambda_mu dz_i0/dtheta_mu dH_i1i2/dtheta_mu is
 * an n^3 tensor per layer; what is carried instead is its contraction with
 * a vector u of the layer, M[u]_i1i2 = sum_i0 u_i0 dH_i0i1i2: the change of
 * the NTK matrix along the gradient step theta += lambda grad(u . z).  The
 * contraction has a forward recursion of n x n matrices (the book's dNTK
 * forward equation contracted with u), in which u is carried backwards as
 * u^(l) = sigma'^(l) o (W^(l+1)^T u^(l+1)):
 *   M^(l+1) = lambda_W/n_l (u^(l+1) a^T + a u^(l+1)^T)
 *           + 2 lambda_W/n_l (u^(l) . H s_d) I
 *           + W [D M^(l) D + E(c) H D + D H E(c)] W^T,
 * with D = diag(sigma'), s_d = sigma o sigma', a = W D H s_d, c = H u^(l),
 * E(c) = diag(sigma'' o c), everything of layer l and M^(1) = 0 (the first
 * layer is linear in its parameters).  tests/test_theory_dntk.c holds it
 * against finite differences of wick_net64_ntk along one gradient step.
 *
 * Per network and layer: P from a Rademacher probe xi (Hutchinson:
 * E_xi[xi_j M[xi]_jm] = dH_jjm), sum_{j != m} dH_jjm z_m; Q from u = z
 * itself, sum_{j != m} dH_jmm z_j = tr M[z] minus the diagonal
 * sum_j dH_jjj z_j (from the probe).  Each sum over n (n - 1) pairs, times
 * n_{l-1}, estimates P (Q) + O(1/n). */
#include "experiments.h"
#include <cblas.h>
#include <math.h>
#include <omp.h>
#include <string.h>

/* One network's layers, all of width n (the first fed by n_0 = 1). */
typedef struct {
    size_t n;
    int L;
    double *W, *b, *z, *s, *d, *e, *H;   /* W[l] n x n (layer 1: n x 1), H[l] n x n, vectors n */
    double *M, *T, *Y, *u, *a, *c, *hs; /* workspace */
} dn_net;

#define DN_W(N, l) ((N)->W + (size_t)((l) - 1) * (N)->n * (N)->n)
#define DN_H(N, l) ((N)->H + (size_t)((l) - 1) * (N)->n * (N)->n)
#define DN_V(N, v, l) ((N)->v + (size_t)((l) - 1) * (N)->n)

static size_t dn_doubles(size_t n, int L) {
    return (size_t)L * (2 * n * n + 5 * n) + 3 * n * n + (size_t)(L + 1) * n + 3 * n;
}

static void dn_bind(dn_net *N, double *buf, size_t n, int L) {
    size_t nn = n * n, Ls = (size_t)L;
    N->n = n; N->L = L;
    N->W = buf; N->H = N->W + Ls * nn;
    N->b = N->H + Ls * nn; N->z = N->b + Ls * n; N->s = N->z + Ls * n;
    N->d = N->s + Ls * n; N->e = N->d + Ls * n;
    N->M = N->e + Ls * n; N->T = N->M + nn; N->Y = N->T + nn;
    N->u = N->Y + nn; N->a = N->u + (Ls + 1) * n; N->c = N->a + n; N->hs = N->c + n;
}

/* Network k of wick_net64_init's draws (n_0 = 1, x = sqrt(q)): z, sigma,
 * sigma', sigma'' and the NTK matrix of every layer (its forward recursion,
 * as in ntk_ensemble.c). */
static void dn_forward(const wick_ntk_fluct_config *c, uint64_t k, dn_net *N) {
    size_t n = N->n;
    double x = sqrt(c->q), nd = (double)n;
    for (int l = 1; l <= N->L; l++) {
        double *W = DN_W(N, l), *b = DN_V(N, b, l), *z = DN_V(N, z, l), *H = DN_H(N, l);
        if (l == 1) {
            ex_draw_layer(W, b, n, 1, c->cb, c->cw, c->seed, k, 1);
            for (size_t i = 0; i < n; i++) z[i] = W[i] * x + b[i];
            memset(H, 0, sizeof(double) * n * n);
            for (size_t i = 0; i < n; i++) H[i * n + i] = c->lambda_b + c->lambda_w * c->q;
        } else {
            ex_draw_layer(W, b, n, n, c->cb, c->cw, c->seed, k, l);
            const double *sp = DN_V(N, s, l - 1), *dp = DN_V(N, d, l - 1), *Hp = DN_H(N, l - 1);
            double s2 = 0;
            for (size_t i = 0; i < n; i++) {
                s2 += sp[i] * sp[i];
                for (size_t j = 0; j < n; j++) N->Y[i * n + j] = dp[i] * dp[j] * Hp[i * n + j];
            }
            cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)n, (int)n, (int)n, 1.0, W,
                        (int)n, N->Y, (int)n, 0.0, N->T, (int)n);
            cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)n, (int)n, (int)n, 1.0, N->T,
                        (int)n, W, (int)n, 0.0, H, (int)n);
            double diag = c->lambda_b + c->lambda_w * s2 / nd;
            for (size_t i = 0; i < n; i++) {
                H[i * n + i] += diag;
                for (size_t j = 0; j < i; j++)
                    H[i * n + j] = H[j * n + i] = 0.5 * (H[i * n + j] + H[j * n + i]);
            }
            cblas_dgemv(CblasRowMajor, CblasNoTrans, (int)n, (int)n, 1.0, W, (int)n, sp, 1, 0.0, z, 1);
            for (size_t i = 0; i < n; i++) z[i] += b[i];
        }
        double *s = DN_V(N, s, l), *d = DN_V(N, d, l), *e = DN_V(N, e, l);
        for (size_t i = 0; i < n; i++) {
            s[i] = wick_act_eval(c->act, z[i]);
            d[i] = wick_act_deriv(c->act, z[i]);
            e[i] = wick_act_deriv2(c->act, z[i]);
        }
    }
}

/* M = M[u] at layer l (n x n) for the vector u of layer l (see the top). */
static void dn_contract(const wick_ntk_fluct_config *c, dn_net *N, int l, const double *u,
                        double *M) {
    size_t n = N->n;
    double nd = (double)n;
    /* u carried backwards: u^(l) into slot l */
    memcpy(N->u + (size_t)l * n, u, sizeof(double) * n);
    for (int k = l - 1; k >= 1; k--) {
        double *uk = N->u + (size_t)k * n;
        cblas_dgemv(CblasRowMajor, CblasTrans, (int)n, (int)n, 1.0, DN_W(N, k + 1), (int)n,
                    N->u + (size_t)(k + 1) * n, 1, 0.0, uk, 1);
        const double *d = DN_V(N, d, k);
        for (size_t i = 0; i < n; i++) uk[i] *= d[i];
    }
    memset(M, 0, sizeof(double) * n * n);
    for (int k = 1; k < l; k++) {
        const double *W = DN_W(N, k + 1), *H = DN_H(N, k), *s = DN_V(N, s, k), *d = DN_V(N, d, k),
                     *e = DN_V(N, e, k), *uk = N->u + (size_t)k * n,
                     *un = N->u + (size_t)(k + 1) * n;
        /* hs = H (s o s'), c = H u^(k) */
        for (size_t i = 0; i < n; i++) N->Y[i] = s[i] * d[i];
        cblas_dsymv(CblasRowMajor, CblasUpper, (int)n, 1.0, H, (int)n, N->Y, 1, 0.0, N->hs, 1);
        cblas_dsymv(CblasRowMajor, CblasUpper, (int)n, 1.0, H, (int)n, uk, 1, 0.0, N->c, 1);
        double uhs = 0;
        for (size_t i = 0; i < n; i++) {
            uhs += uk[i] * N->hs[i];
            N->Y[i] = d[i] * N->hs[i];
        }
        cblas_dgemv(CblasRowMajor, CblasNoTrans, (int)n, (int)n, 1.0, W, (int)n, N->Y, 1, 0.0,
                    N->a, 1);
        /* inner = D M D + E(c) H D + D H E(c), in I */
        for (size_t i = 0; i < n; i++) {
            double ec = e[i] * N->c[i];
            for (size_t j = 0; j < n; j++)
                N->Y[i * n + j] = d[i] * d[j] * M[i * n + j] +
                                  H[i * n + j] * (ec * d[j] + d[i] * e[j] * N->c[j]);
        }
        cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)n, (int)n, (int)n, 1.0, W,
                    (int)n, N->Y, (int)n, 0.0, N->T, (int)n);
        cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)n, (int)n, (int)n, 1.0, N->T,
                    (int)n, W, (int)n, 0.0, M, (int)n);
        double lw = c->lambda_w / nd, diag = 2 * lw * uhs;
        for (size_t i = 0; i < n; i++) {
            for (size_t j = 0; j < n; j++) M[i * n + j] += lw * (un[i] * N->a[j] + N->a[i] * un[j]);
            M[i * n + i] += diag;
        }
    }
}

static wick_status dn_check(const wick_ntk_fluct_config *c, const char *what) {
    if (!c) return wick_fail(WICK_EINVAL, "%s: no configuration given", what);
    if (!wick_act_has_derivative(c->act))
        return wick_fail(WICK_EINVAL, "%s: %s has no derivative (a delta): its NTK is undefined",
                         what, wick_act_name(c->act));
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
    /* every layer's W and NTK matrix are kept (two n x n each, per thread) */
    if ((size_t)c->depth * c->width * c->width > ((size_t)1 << 25))
        return wick_fail(WICK_EINVAL, "%s: depth %d x width %zu^2 is over 2^25 (%zu MB of "
                         "matrices a thread)", what, c->depth, c->width,
                         ((size_t)c->depth * c->width * c->width * 16) >> 20);
    return WICK_OK;
}

wick_status wick_dntk_contract(const wick_ntk_fluct_config *c, uint64_t k, const double *u,
                               double *M) {
    wick_status st = dn_check(c, "dntk");
    if (st) return st;
    if (!u || !M) return wick_fail(WICK_EINVAL, "dntk: no probe vector or output");
    size_t n = c->width;
    double *buf = wick_malloc(sizeof(double) * dn_doubles(n, c->depth));
    if (!buf) return wick_fail(WICK_ENOMEM, "dntk: out of memory (width %zu)", n);
    dn_net N;
    dn_bind(&N, buf, n, c->depth);
    dn_forward(c, k, &N);
    dn_contract(c, &N, c->depth, u, M);
    wick_free(buf);
    return WICK_OK;
}

/* Per network k: stats[(l-1)*2 + {0,1}] the P and Q estimates of layer l
 * (0 at l = 1). */
static void dn_network(const wick_ntk_fluct_config *c, uint64_t k, dn_net *N, double *Mx,
                       double *Mz, double *xi, double *stats) {
    size_t n = N->n;
    dn_forward(c, k, N);
    stats[0] = stats[1] = 0;
    for (int l = 2; l <= N->L; l++) {
        /* the probe: signs of Philox normals on a stream of its own per layer */
        ex_fill_normal(xi, n, c->seed, ex_stream(k, 0x80000 | l), 0);
        for (size_t i = 0; i < n; i++) xi[i] = xi[i] >= 0 ? 1.0 : -1.0;
        const double *z = DN_V(N, z, l);
        dn_contract(c, N, l, xi, Mx);
        dn_contract(c, N, l, z, Mz);
        double full = 0, diag = 0, tr = 0;
        for (size_t j = 0; j < n; j++) {
            double acc = 0;
            for (size_t m = 0; m < n; m++) acc += Mx[j * n + m] * z[m];
            full += xi[j] * acc;
            diag += xi[j] * Mx[j * n + j] * z[j];
            tr += Mz[j * n + j];
        }
        /* n_{l-1} / (n (n - 1)) with n_{l-1} = n */
        stats[(l - 1) * 2] = (full - diag) / (double)(n - 1);
        stats[(l - 1) * 2 + 1] = (tr - diag) / (double)(n - 1);
    }
}

wick_status wick_dntk_measure(const wick_ntk_fluct_config *c, double *val, double *se) {
    wick_status st = dn_check(c, "dntk ensemble");
    if (st) return st;
    if (!val || !se) return wick_fail(WICK_EINVAL, "dntk ensemble: no output arrays");
    if (c->samples < 2 || c->samples > ((size_t)1 << 32))
        return wick_fail(WICK_EINVAL, "dntk ensemble: %zu networks, expected at least 2",
                         c->samples);
    size_t n = c->width, L = (size_t)c->depth, M = c->samples;
    int nt = wick_threads();
    size_t per_t = dn_doubles(n, c->depth) + 2 * n * n + n;
    double *bufs = wick_malloc(sizeof(double) * per_t * (size_t)nt);
    double *stats = wick_malloc(sizeof(double) * M * L * 2);
    if (!bufs || !stats) {
        wick_free(bufs); wick_free(stats);
        return wick_fail(WICK_ENOMEM, "dntk ensemble: out of memory (width %zu, %zu networks)", n,
                         M);
    }
    #pragma omp parallel for num_threads(nt) schedule(dynamic, 2)
    for (size_t k = 0; k < M; k++) {
        double *buf = bufs + per_t * (size_t)omp_get_thread_num();
        dn_net N;
        dn_bind(&N, buf, n, c->depth);
        double *Mx = buf + dn_doubles(n, c->depth), *Mz = Mx + n * n, *xi = Mz + n * n;
        dn_network(c, k, &N, Mx, Mz, xi, stats + k * L * 2);
    }
    ex_mean_se(stats, M, L * 2, val, se);
    wick_free(bufs); wick_free(stats);
    return WICK_OK;
}
