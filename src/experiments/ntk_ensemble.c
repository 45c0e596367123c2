/* ntk_ensemble.c — the empirical NTK of M finite-width networks beside the
 * infinite-width Theta^(L) (the book's ch. 8; docs/experiments.md): its mean and its network-to-network
 * fluctuation, which the theory puts at O(1/n), growing with depth. */
#include "experiments.h"
#include <cblas.h>
#include <math.h>
#include <omp.h>
#include <string.h>

void wick_ntk_ensemble_free(wick_ntk_ensemble_result *r) {
    if (!r) return;
    wick_free(r->mean); wick_free(r->mean_stderr); wick_free(r->var); wick_free(r->var_stderr);
    wick_free(r->theory); wick_free(r->kernel_theory);
    wick_free(r);
}

wick_status wick_ntk_ensemble(const wick_ntk_ensemble_config *c, wick_ntk_ensemble_result **out) {
    *out = NULL;
    if (!c || !c->x || c->ninputs < 1 || c->ninputs > 64)
        return wick_fail(WICK_EINVAL, "ntk ensemble: %zu inputs, expected 1..64",
                         c ? c->ninputs : 0);
    if (c->samples < 2 || c->samples > ((size_t)1 << 32))
        return wick_fail(WICK_EINVAL, "ntk ensemble: %zu networks, expected at least 2", c->samples);
    if (!wick_act_has_derivative(c->net.act))
        return wick_fail(WICK_EINVAL, "ntk ensemble: %s has no derivative (a delta): its NTK is "
                         "undefined", wick_act_name(c->net.act));
    size_t ni = c->ninputs, nn = ni * ni, M = c->samples, no = c->net.nout, R = ni * no;
    int nt = wick_threads();
    double t0 = omp_get_wtime();
    wick_status st = WICK_OK;
    wick_net64 **nets = wick_calloc((size_t)nt, sizeof *nets);
    double *Hbuf = wick_malloc(sizeof(double) * R * R * (size_t)nt);
    double *per = wick_malloc(sizeof(double) * M * 2 * nn);  /* per network: output mean, output 0 */
    double *G0 = wick_malloc(sizeof(double) * nn);
    wick_ntk_ensemble_result *r = wick_calloc(1, sizeof *r);
    if (r) {
        r->mean = wick_malloc(sizeof(double) * nn); r->mean_stderr = wick_malloc(sizeof(double) * nn);
        r->var = wick_malloc(sizeof(double) * nn); r->var_stderr = wick_malloc(sizeof(double) * nn);
        r->theory = wick_malloc(sizeof(double) * nn);
        r->kernel_theory = wick_malloc(sizeof(double) * nn);
    }
    if (!nets || !Hbuf || !per || !G0 || !r || !r->mean || !r->mean_stderr || !r->var ||
        !r->var_stderr || !r->theory || !r->kernel_theory) {
        st = wick_fail(WICK_ENOMEM, "ntk ensemble: out of memory (%zu networks)", M);
        goto out;
    }
    for (int t = 0; t < nt; t++)
        if ((st = wick_net64_new(&nets[t], &c->net, 1))) goto out;

    /* theory: the Gram flow's last layer (the book's ch. 4 and 8) */
    if ((st = wick_input_gram(c->x, ni, c->net.n0, G0))) goto out;
    {
        wick_theory_config tc = wick_theory_defaults(c->net.act, c->net.depth);
        tc.cb = c->net.cb; tc.cw = c->net.cw;
        tc.lambda_b = c->net.lambda_b; tc.lambda_w = c->net.lambda_w;
        tc.width = c->net.width;
        size_t L = (size_t)c->net.depth;
        double *K = wick_malloc(sizeof(double) * L * nn), *T = wick_malloc(sizeof(double) * L * nn);
        if (!K || !T) {
            wick_free(K); wick_free(T);
            st = wick_fail(WICK_ENOMEM, "ntk ensemble: out of memory for the theory");
            goto out;
        }
        st = wick_gram_flow(&tc, G0, ni, K, T);
        if (!st) {
            memcpy(r->kernel_theory, K + (L - 1) * nn, sizeof(double) * nn);
            memcpy(r->theory, T + (L - 1) * nn, sizeof(double) * nn);
        }
        wick_free(K); wick_free(T);
        if (st) goto out;
    }

    int fail = 0;
    #pragma omp parallel for num_threads(nt) schedule(dynamic, 4) reduction(|:fail)
    for (size_t k = 0; k < M; k++) {
        int t = omp_get_thread_num();
        wick_net64 *m = nets[t];
        double *H = Hbuf + R * R * (size_t)t;
        wick_net64_init(m, c->seed, k);
        if (wick_net64_ntk(m, c->x, ni, 0, H)) { fail = 1; continue; }
        double *pm = per + k * 2 * nn, *p0 = pm + nn;
        for (size_t a = 0; a < ni; a++)
            for (size_t b = 0; b < ni; b++) {
                double s = 0;
                for (size_t i = 0; i < no; i++) s += H[(a * no + i) * R + b * no + i];
                pm[a * ni + b] = s / (double)no;
                p0[a * ni + b] = H[(a * no) * R + b * no];
            }
    }
    if (fail) {
        st = wick_fail(WICK_ENOMEM, "ntk ensemble: out of memory in a network's NTK");
        goto out;
    }
    /* reduce in network order: two passes (mean, then central moments) */
    double Md = (double)M;
    for (size_t q = 0; q < nn; q++) {
        double s = 0, s0 = 0;
        for (size_t k = 0; k < M; k++) { s += per[k * 2 * nn + q]; s0 += per[k * 2 * nn + nn + q]; }
        double mu = s / Md, mu0 = s0 / Md, v = 0, v0 = 0, m4 = 0;
        for (size_t k = 0; k < M; k++) {
            double d = per[k * 2 * nn + q] - mu, d0 = per[k * 2 * nn + nn + q] - mu0;
            v += d * d; v0 += d0 * d0; m4 += d0 * d0 * d0 * d0;
        }
        v /= Md - 1; v0 /= Md - 1; m4 /= Md;
        r->mean[q] = mu;
        r->mean_stderr[q] = sqrt(v / Md);
        r->var[q] = v0;
        /* Var of the sample variance ~ (mu4 - sigma^4) / M */
        double vv = m4 - v0 * v0;
        r->var_stderr[q] = sqrt((vv > 0 ? vv : 0) / Md);
    }
    r->ninputs = ni;
    r->samples = M;
    r->threads = nt;
    r->seconds = omp_get_wtime() - t0;
out:
    if (nets) for (int t = 0; t < nt; t++) wick_net64_free(nets[t]);
    wick_free(nets); wick_free(Hbuf); wick_free(per); wick_free(G0);
    if (st) { wick_ntk_ensemble_free(r); r = NULL; }
    *out = r;
    return st;
}

/* ---------------------------------------------------------------------------
 * The NTK's order-1/n statistics for one input (docs/theory-finite-width.md)
 * ------------------------------------------------------------------------- */

/* Per network and layer: neuron averages whose expectations give each
 * tensor (i != j throughout; unbiased within one network):
 *   s  = (1/n) sum z_i^2             -> K + K1/n
 *   t  = (1/n) sum H_ii              -> Theta + Theta1/n
 *   pz = avg z_i^2 z_j^2             -> s^2 + V/n
 *   p  = avg H_ii H_jj               -> t^2 + A/n
 *   b  = avg H_ij^2                  -> B/n
 *   d  = avg H_ii z_j^2              -> t s + D/n
 *   f  = avg H_ij z_i z_j            -> F/n */
enum { FS_S, FS_T, FS_PZ, FS_P, FS_B, FS_D, FS_F, FS_N };

static void fluct_stats(const double *z, const double *H, size_t n, double *o) {
    double s2 = 0, s4 = 0, tr = 0, trsq = 0, fro = 0, hz2 = 0, zhz = 0;
    for (size_t i = 0; i < n; i++) {
        double zi = z[i], hii = H[i * n + i];
        s2 += zi * zi; s4 += zi * zi * zi * zi;
        tr += hii; trsq += hii * hii;
        hz2 += hii * zi * zi;
        const double *Hi = H + i * n;
        double acc = 0, f2 = 0;
        for (size_t j = 0; j < n; j++) { acc += Hi[j] * z[j]; f2 += Hi[j] * Hi[j]; }
        zhz += zi * acc;
        fro += f2;
    }
    double nd = (double)n, pairs = nd * (nd - 1);
    o[FS_S] = s2 / nd;
    o[FS_T] = tr / nd;
    o[FS_PZ] = (s2 * s2 - s4) / pairs;
    o[FS_P] = (tr * tr - trsq) / pairs;
    o[FS_B] = (fro - trsq) / pairs;
    o[FS_D] = (tr * s2 - hz2) / pairs;
    o[FS_F] = (zhz - hz2) / pairs;
}

/* Network k: the MLP of wick_net64 with n0 = 1, input x = sqrt(q) (so
 * |x|^2/n0 = q) and every layer of width n, its weights drawn as
 * wick_net64_init draws them; the NTK matrix H^(l) (n x n) by the forward
 * recursion (the book's ch. 8)
 *   H^(l+1) = (lambda_b + lambda_W/n sum_j s_j^2) I + W (s' s'^T o H^(l)) W^T,
 * from H^(1) = (lambda_b + lambda_W q) I.  buf: 5 n^2 + 4 n doubles. */
static void fluct_network(const wick_ntk_fluct_config *c, uint64_t k, double *buf, double *stats) {
    size_t n = c->width;
    double *W = buf, *H = W + n * n, *M = H + n * n, *T = M + n * n, *W1 = T + n * n;
    double *z = W1 + n * n, *s = z + n, *d = s + n, *b = d + n;
    double x = sqrt(c->q);
    ex_draw_layer(W1, b, n, 1, c->cb, c->cw, c->seed, k, 1);
    for (size_t i = 0; i < n; i++) z[i] = W1[i] * x + b[i];
    memset(H, 0, sizeof(double) * n * n);
    for (size_t i = 0; i < n; i++) H[i * n + i] = c->lambda_b + c->lambda_w * c->q;
    fluct_stats(z, H, n, stats);
    for (int l = 2; l <= c->depth; l++) {
        ex_draw_layer(W, b, n, n, c->cb, c->cw, c->seed, k, l);
        double s2 = 0;
        for (size_t i = 0; i < n; i++) {
            s[i] = wick_act_eval(c->act, z[i]);
            d[i] = wick_act_deriv(c->act, z[i]);
            s2 += s[i] * s[i];
        }
        for (size_t i = 0; i < n; i++)
            for (size_t j = 0; j < n; j++) M[i * n + j] = d[i] * d[j] * H[i * n + j];
        /* T = W M, H = T W^T (W already carries sqrt(C_W / n)) */
        cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)n, (int)n, (int)n, 1.0, W,
                    (int)n, M, (int)n, 0.0, T, (int)n);
        cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)n, (int)n, (int)n, 1.0, T,
                    (int)n, W, (int)n, 0.0, H, (int)n);
        double diag = c->lambda_b + c->lambda_w * s2 / (double)n;
        for (size_t i = 0; i < n; i++) {
            H[i * n + i] += diag;
            for (size_t j = 0; j < i; j++)   /* exactly symmetric */
                H[i * n + j] = H[j * n + i] = 0.5 * (H[i * n + j] + H[j * n + i]);
        }
        for (size_t i = 0; i < n; i++) {
            const double *Wi = W + i * n;
            double acc = 0;
            for (size_t j = 0; j < n; j++) acc += Wi[j] * s[j];
            z[i] = b[i] + acc;
        }
        fluct_stats(z, H, n, stats + (size_t)(l - 1) * FS_N);
    }
}

void wick_ntk_fluct_free(wick_ntk_fluct_result *r) {
    if (!r) return;
    wick_free(r->val);
    wick_free(r);
}

wick_status wick_ntk_fluct_run(const wick_ntk_fluct_config *c, wick_ntk_fluct_result **out) {
    *out = NULL;
    if (!c) return wick_fail(WICK_EINVAL, "ntk fluctuations: no configuration given");
    if (!wick_act_has_derivative(c->act))
        return wick_fail(WICK_EINVAL, "ntk fluctuations: %s has no derivative (a delta): its NTK "
                         "is undefined", wick_act_name(c->act));
    double v[5] = {c->cb, c->cw, c->lambda_b, c->lambda_w, c->q};
    static const char *nm[5] = {"C_b", "C_W", "lambda_b", "lambda_w", "q"};
    for (int i = 0; i < 5; i++)
        if (!isfinite(v[i]) || v[i] < 0)
            return wick_fail(WICK_EINVAL, "ntk fluctuations: %s = %g must be finite and "
                             "non-negative", nm[i], v[i]);
    if (c->depth < 1 || c->depth > 4096)
        return wick_fail(WICK_EINVAL, "ntk fluctuations: depth %d, expected 1..4096", c->depth);
    if (c->width < 2 || c->width > 8192)
        return wick_fail(WICK_EINVAL, "ntk fluctuations: width %zu, expected 2..8192 (a "
                         "correlator between two neurons needs two)", c->width);
    if (c->samples < 2 || c->samples > ((size_t)1 << 32))
        return wick_fail(WICK_EINVAL, "ntk fluctuations: %zu networks, expected at least 2",
                         c->samples);
    size_t n = c->width, L = (size_t)c->depth, M = c->samples;
    int nt = wick_threads();
    double t0 = omp_get_wtime();
    size_t per_t = 5 * n * n + 4 * n;
    double *bufs = wick_malloc(sizeof(double) * per_t * (size_t)nt);
    double *stats = wick_malloc(sizeof(double) * M * L * FS_N);
    wick_ntk_fluct_result *r = wick_calloc(1, sizeof *r);
    if (r) r->val = wick_calloc(2 * WICK_FL_COUNT * L, sizeof(double));
    if (!bufs || !stats || !r || !r->val) {
        wick_free(bufs); wick_free(stats); wick_ntk_fluct_free(r);
        return wick_fail(WICK_ENOMEM, "ntk fluctuations: out of memory (width %zu, %zu networks)",
                         n, M);
    }
    #pragma omp parallel for num_threads(nt) schedule(dynamic, 4)
    for (size_t k = 0; k < M; k++)
        fluct_network(c, k, bufs + per_t * (size_t)omp_get_thread_num(), stats + k * L * FS_N);
    /* two passes in network order: means, then the covariance of the
     * statistics, for the delta method */
    double Md = (double)M, nd = (double)n;
    for (size_t l = 0; l < L; l++) {
        double mu[FS_N] = {0}, C[FS_N][FS_N] = {{0}};
        for (size_t k = 0; k < M; k++)
            for (int q = 0; q < FS_N; q++) mu[q] += stats[(k * L + l) * FS_N + q];
        for (int q = 0; q < FS_N; q++) mu[q] /= Md;
        for (size_t k = 0; k < M; k++) {
            const double *x = stats + (k * L + l) * FS_N;
            for (int p = 0; p < FS_N; p++)
                for (int q = 0; q < FS_N; q++) C[p][q] += (x[p] - mu[p]) * (x[q] - mu[q]);
        }
        for (int p = 0; p < FS_N; p++)
            for (int q = 0; q < FS_N; q++) C[p][q] /= Md - 1;
        /* each estimate as a function of the means, and its gradient; the
         * 1/n tensors are reported times n (n_{l-1} = n for l >= 2) */
        double g[WICK_FL_COUNT][FS_N] = {{0}}, est[WICK_FL_COUNT];
        est[WICK_FL_K] = mu[FS_S]; g[WICK_FL_K][FS_S] = 1;
        est[WICK_FL_NTK] = mu[FS_T]; g[WICK_FL_NTK][FS_T] = 1;
        est[WICK_FL_V] = nd * (mu[FS_PZ] - mu[FS_S] * mu[FS_S]);
        g[WICK_FL_V][FS_PZ] = nd; g[WICK_FL_V][FS_S] = -2 * nd * mu[FS_S];
        est[WICK_FL_A] = nd * (mu[FS_P] - mu[FS_T] * mu[FS_T]);
        g[WICK_FL_A][FS_P] = nd; g[WICK_FL_A][FS_T] = -2 * nd * mu[FS_T];
        est[WICK_FL_B] = nd * mu[FS_B]; g[WICK_FL_B][FS_B] = nd;
        est[WICK_FL_D] = nd * (mu[FS_D] - mu[FS_T] * mu[FS_S]);
        g[WICK_FL_D][FS_D] = nd; g[WICK_FL_D][FS_T] = -nd * mu[FS_S]; g[WICK_FL_D][FS_S] = -nd * mu[FS_T];
        est[WICK_FL_F] = nd * mu[FS_F]; g[WICK_FL_F][FS_F] = nd;
        for (int e = 0; e < WICK_FL_COUNT; e++) {
            double var = 0;
            for (int p = 0; p < FS_N; p++)
                for (int q = 0; q < FS_N; q++) var += g[e][p] * C[p][q] * g[e][q];
            r->val[(l * WICK_FL_COUNT + e) * 2] = est[e];
            r->val[(l * WICK_FL_COUNT + e) * 2 + 1] = sqrt((var > 0 ? var : 0) / Md);
        }
    }
    r->depth = c->depth;
    r->width = n;
    r->samples = M;
    r->threads = nt;
    r->seconds = omp_get_wtime() - t0;
    wick_free(bufs); wick_free(stats);
    *out = r;
    return WICK_OK;
}
