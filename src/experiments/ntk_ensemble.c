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

/* Beside them, per layer, quantities for control variates (the means K1/n
 * and Theta1/n are 1/sqrt(n) of the networks' spread; these remove that
 * spread's part that is linear in zero-mean noises): given layer l-1, the
 * neurons of layer l are i.i.d. N(0, G) with G = C_b + C_W/n sum sigma^2 of
 * layer l-1, and E[H_ii | l-1] = Tc = lambda_b + lambda_W/n sum sigma^2 +
 * C_W/n sum sigma'^2 H_jj.  So s - G, t - Tc, (1/n) sum sigma(z)^2 -
 * <sigma^2>_G and (1/n) sum sigma'(z)^2 - <sigma'^2>_G have mean exactly 0,
 * and so has omega = (1/n) sum sigma'(z_j)^2 (H_jj - Tc) - 2 (C_W/n)^2
 * (u^T H u) h'(G), u = sigma sigma' of layer l-1 and h = <sigma'^2> (given
 * layer l-1, E[w^T M w - c tr M | z] = (z^2 - G) c^2 s^T M s / G^2 for a row
 * w ~ N(0, c I) of W, z = b + w.s; docs/theory-finite-width.md). */
enum { FA_G = FS_N, FA_TC, FA_ETA, FA_PSI, FA_OMEGA, FS_ALL };
#define CV_LAYERS 8

/* sigma, sigma' of layer z into s, d; eta, psi into o; returns sum s^2 */
static double layer_act(const wick_ntk_fluct_config *c, const double *z, size_t n, double *s,
                        double *d, const double *H, double *o, double *sd2h) {
    double s2 = 0, d2 = 0, dh = 0, e2 = 0, e1 = 0;
    for (size_t i = 0; i < n; i++) {
        s[i] = wick_act_eval(c->act, z[i]);
        d[i] = wick_act_deriv(c->act, z[i]);
        s2 += s[i] * s[i];
        d2 += d[i] * d[i];
        dh += d[i] * d[i] * H[i * n + i];
    }
    /* the layer's own conditional variance is o[FA_G] (set by the caller) */
    if (wick_gauss_expect1(c->act, 0, 2, o[FA_G], &e2)) e2 = NAN;
    if (wick_gauss_expect1(c->act, 1, 2, o[FA_G], &e1)) e1 = NAN;
    o[FA_ETA] = s2 / (double)n - e2;
    o[FA_PSI] = d2 / (double)n - e1;
    *sd2h = dh;
    /* omega without its conditional mean (the caller subtracts that) */
    double om = 0;
    for (size_t i = 0; i < n; i++) om += d[i] * d[i] * (H[i * n + i] - o[FA_TC]);
    o[FA_OMEGA] = om / (double)n;
    return s2;
}

/* Network k: the MLP of wick_net64 with n0 = 1, input x = sqrt(q) (so
 * |x|^2/n0 = q) and every layer of width n, its weights drawn as
 * wick_net64_init draws them; the NTK matrix H^(l) (n x n) by the forward
 * recursion (the book's ch. 8)
 *   H^(l+1) = (lambda_b + lambda_W/n sum_j s_j^2) I + W (s' s'^T o H^(l)) W^T,
 * from H^(1) = (lambda_b + lambda_W q) I.  buf: 5 n^2 + 4 n doubles. */
static void fluct_network(const wick_ntk_fluct_config *c, uint64_t k, double *buf, double *stats) {
    size_t n = c->width;
    double nd = (double)n;
    double *W = buf, *H = W + n * n, *M = H + n * n, *T = M + n * n, *W1 = T + n * n;
    double *z = W1 + n * n, *s = z + n, *d = s + n, *b = d + n;
    double x = sqrt(c->q);
    ex_draw_layer(W1, b, n, 1, c->cb, c->cw, c->seed, k, 1);
    for (size_t i = 0; i < n; i++) z[i] = W1[i] * x + b[i];
    memset(H, 0, sizeof(double) * n * n);
    for (size_t i = 0; i < n; i++) H[i * n + i] = c->lambda_b + c->lambda_w * c->q;
    double *o = stats;
    fluct_stats(z, H, n, o);
    o[FA_G] = c->cb + c->cw * c->q;
    o[FA_TC] = c->lambda_b + c->lambda_w * c->q;
    double dh, s2 = layer_act(c, z, n, s, d, H, o, &dh);
    o[FA_OMEGA] = 0;
    for (int l = 2; l <= c->depth; l++) {
        ex_draw_layer(W, b, n, n, c->cb, c->cw, c->seed, k, l);
        double uHu = 0;
        for (size_t i = 0; i < n; i++) {
            double acc = 0;
            for (size_t j = 0; j < n; j++) {
                M[i * n + j] = d[i] * d[j] * H[i * n + j];
                acc += M[i * n + j] * s[j];
            }
            uHu += s[i] * acc;
        }
        /* T = W M, H = T W^T (W already carries sqrt(C_W / n)) */
        cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)n, (int)n, (int)n, 1.0, W,
                    (int)n, M, (int)n, 0.0, T, (int)n);
        cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)n, (int)n, (int)n, 1.0, T,
                    (int)n, W, (int)n, 0.0, H, (int)n);
        double diag = c->lambda_b + c->lambda_w * s2 / nd;
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
        o = stats + (size_t)(l - 1) * FS_ALL;
        fluct_stats(z, H, n, o);
        o[FA_G] = c->cb + c->cw * s2 / nd;
        o[FA_TC] = diag + c->cw * dh / nd;
        s2 = layer_act(c, z, n, s, d, H, o, &dh);
        /* h'(G) by a central difference: only the control's mean depends on
         * it, and an error of 1e-8 there is far below any standard error */
        double G = o[FA_G], hp = 0, hm = 0, step = 1e-4 * G;
        if (step > 0 && !wick_gauss_expect1(c->act, 1, 2, G + step, &hp) &&
            !wick_gauss_expect1(c->act, 1, 2, G - step, &hm))
            o[FA_OMEGA] -= 2 * (c->cw / nd) * (c->cw / nd) * uHu * (hp - hm) / (2 * step);
        else
            o[FA_OMEGA] = 0;
    }
}

/* The mean of y over M networks with control variates cv[0..p) (each of
 * known mean 0): y - beta . cv, beta from the least squares over the
 * networks (a small ridge keeps collinear controls, e.g. linear sigma,
 * solvable); its standard error from the residual.  Deterministic order. */
void ex_cv_mean(const double *y, const double *cv, size_t M, int p, double *mean, double *se) {
    double my = 0, mc[64] = {0}, Ccc[64][64] = {{0}}, Ccy[64] = {0}, vy = 0;
    for (size_t k = 0; k < M; k++) {
        my += y[k];
        for (int a = 0; a < p; a++) mc[a] += cv[k * (size_t)p + a];
    }
    my /= (double)M;
    for (int a = 0; a < p; a++) mc[a] /= (double)M;
    for (size_t k = 0; k < M; k++) {
        double dy = y[k] - my;
        vy += dy * dy;
        for (int a = 0; a < p; a++) {
            double da = cv[k * (size_t)p + a] - mc[a];
            Ccy[a] += da * dy;
            for (int b2 = 0; b2 <= a; b2++) Ccc[a][b2] += da * (cv[k * (size_t)p + b2] - mc[b2]);
        }
    }
    double beta[64] = {0}, L[64][64] = {{0}}, tr = 0;
    for (int a = 0; a < p; a++) tr += Ccc[a][a];
    /* Cholesky of Ccc + ridge */
    int q = 0;
    for (int a = 0; a < p && tr > 0; a++) {
        for (int b2 = 0; b2 <= a; b2++) {
            double v = Ccc[a][b2] + (a == b2 ? 1e-10 * tr / p : 0);
            for (int t = 0; t < b2; t++) v -= L[a][t] * L[b2][t];
            if (a == b2) L[a][a] = v > 0 ? sqrt(v) : 0;
            else L[a][b2] = L[b2][b2] > 0 ? v / L[b2][b2] : 0;
        }
        q++;
    }
    if (q == p && tr > 0) {
        double w[64];
        for (int a = 0; a < p; a++) {
            double v = Ccy[a];
            for (int t = 0; t < a; t++) v -= L[a][t] * w[t];
            w[a] = L[a][a] > 0 ? v / L[a][a] : 0;
        }
        for (int a = p - 1; a >= 0; a--) {
            double v = w[a];
            for (int t = a + 1; t < p; t++) v -= L[t][a] * beta[t];
            beta[a] = L[a][a] > 0 ? v / L[a][a] : 0;
        }
    }
    double m = my, res = 0;
    for (int a = 0; a < p; a++) m -= beta[a] * mc[a];
    for (size_t k = 0; k < M; k++) {
        double r = y[k] - my;
        for (int a = 0; a < p; a++) r -= beta[a] * (cv[k * (size_t)p + a] - mc[a]);
        res += r * r;
    }
    double dof = (double)M - 1 - p;
    *mean = m;
    *se = sqrt(res / (dof > 1 ? dof : 1) / (double)M);
    (void)vy;
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
    double *stats = wick_malloc(sizeof(double) * M * L * FS_ALL);
    double *cvb = wick_malloc(sizeof(double) * M * (CV_LAYERS * 5 + 2));
    wick_ntk_fluct_result *r = wick_calloc(1, sizeof *r);
    if (r) r->val = wick_calloc(2 * WICK_FL_COUNT * L, sizeof(double));
    if (!bufs || !stats || !cvb || !r || !r->val) {
        wick_free(bufs); wick_free(stats); wick_free(cvb); wick_ntk_fluct_free(r);
        return wick_fail(WICK_ENOMEM, "ntk fluctuations: out of memory (width %zu, %zu networks)",
                         n, M);
    }
    #pragma omp parallel for num_threads(nt) schedule(dynamic, 4)
    for (size_t k = 0; k < M; k++)
        fluct_network(c, k, bufs + per_t * (size_t)omp_get_thread_num(), stats + k * L * FS_ALL);
    /* two passes in network order: means, then the covariance of the
     * statistics, for the delta method */
    double Md = (double)M, nd = (double)n;
    for (size_t l = 0; l < L; l++) {
        double mu[FS_N] = {0}, C[FS_N][FS_N] = {{0}};
        for (size_t k = 0; k < M; k++)
            for (int q = 0; q < FS_N; q++) mu[q] += stats[(k * L + l) * FS_ALL + q];
        for (int q = 0; q < FS_N; q++) mu[q] /= Md;
        for (size_t k = 0; k < M; k++) {
            const double *x = stats + (k * L + l) * FS_ALL;
            for (int p = 0; p < FS_N; p++)
                for (int q = 0; q < FS_N; q++) C[p][q] += (x[p] - mu[p]) * (x[q] - mu[q]);
        }
        for (int p = 0; p < FS_N; p++)
            for (int q = 0; q < FS_N; q++) C[p][q] /= Md - 1;
        /* each estimate as a function of the means, and its gradient; the
         * 1/n tensors are reported times n (n_{l-1} = n for l >= 2) */
        double g[WICK_FL_KCV][FS_N] = {{0}}, est[WICK_FL_KCV];
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
        for (int e = 0; e < WICK_FL_KCV; e++) {
            double var = 0;
            for (int p = 0; p < FS_N; p++)
                for (int q = 0; q < FS_N; q++) var += g[e][p] * C[p][q] * g[e][q];
            r->val[(l * WICK_FL_COUNT + e) * 2] = est[e];
            r->val[(l * WICK_FL_COUNT + e) * 2 + 1] = sqrt((var > 0 ? var : 0) / Md);
        }
    }
    /* the kernel and NTK means with control variates: the zero-mean noises
     * of this layer and the CV_LAYERS - 1 before it */
    for (size_t l = 0; l < L; l++) {
        size_t l0 = l + 1 > CV_LAYERS ? l + 1 - CV_LAYERS : 0;
        int p = (int)(5 * (l + 1 - l0));
        double *y = cvb, *cv = cvb + 2 * M;
        for (size_t k = 0; k < M; k++) {
            const double *x = stats + (k * L + l) * FS_ALL;
            y[k] = x[FS_S];
            y[M + k] = x[FS_T];
            double *row = cv + k * (size_t)p;
            for (size_t j = l0; j <= l; j++) {
                const double *xj = stats + (k * L + j) * FS_ALL;
                *row++ = xj[FS_S] - xj[FA_G];
                *row++ = xj[FS_T] - xj[FA_TC];
                *row++ = isfinite(xj[FA_ETA]) ? xj[FA_ETA] : 0;
                *row++ = isfinite(xj[FA_PSI]) ? xj[FA_PSI] : 0;
                *row++ = isfinite(xj[FA_OMEGA]) ? xj[FA_OMEGA] : 0;
            }
        }
        double *out_l = r->val + l * WICK_FL_COUNT * 2;
        ex_cv_mean(y, cv, M, p, &out_l[2 * WICK_FL_KCV], &out_l[2 * WICK_FL_KCV + 1]);
        ex_cv_mean(y + M, cv, M, p, &out_l[2 * WICK_FL_NTKCV], &out_l[2 * WICK_FL_NTKCV + 1]);
    }
    r->depth = c->depth;
    r->width = n;
    r->samples = M;
    r->threads = nt;
    r->seconds = omp_get_wtime() - t0;
    wick_free(bufs); wick_free(stats); wick_free(cvb);
    *out = r;
    return WICK_OK;
}

/* ---------------------------------------------------------------------------
 * Two inputs: the NTK's variance tensor B (docs/theory-finite-width.md)
 * ------------------------------------------------------------------------- */

/* H^{ab}_{jk} with H^{10} the transpose of H^{01}. */
static inline double hblk(const double *const *H, int a, int b, size_t n, size_t j, size_t k) {
    if (a == 1 && b == 0) return H[1][k * n + j];
    return H[a + b][j * n + k];
}

/* Per layer, the averages whose expectations give the two-input tensors
 * (p = 2a + b an ordered pair of inputs, pairs of neurons i != j):
 *   t_p = (1/n) sum H^p_ii -> Theta_p,  s_p = (1/n) sum z_ia z_ib -> K_p,
 *   avg H^p_ii H^q_jj -> t_p t_q + A_pq/n,  avg H^{a1a2}_jk H^{a3a4}_jk -> B/n,
 *   avg H^p_ii z_{j,q0} z_{j,q1} -> t_p s_q + D_pq/n,
 *   avg H^{a1a2}_jk z_{j,a3} z_{k,a4} -> F_{(a1a3)(a2a4)}/n. */
enum { FL2_T = 0, FL2_S = 4, FL2_P = 8, FL2_B = 24, FL2_D = 40, FL2_F = 56, FL2_CV = 72,
       FL2_N = 84 };
/* FL2_CV: 4 zero-mean controls for each of the pairs 00, 01, 11 (as for
 * one input, given layer l-1 the neurons of layer l are i.i.d. N(0, G)):
 * s_p - G_p, t_p - Tc_p, (1/n) sum s_a s_b - <s_a s_b>_G and (1/n) sum
 * s'_a s'_b - <s'_a s'_b>_G, with Tc_p = lambda_b + lambda_W/n sum s_a s_b +
 * C_W/n sum s'_a s'_b H^p_jj of layer l-1. */

static void fluct2_stats(const double *const *Hc, const double *z, size_t n, double *o) {
    double nd = (double)n, pairs = nd * (nd - 1);
    double tr[4] = {0}, sz[4] = {0};
    for (int p = 0; p < 4; p++) {
        int a = p >> 1, b = p & 1;
        for (size_t i = 0; i < n; i++) {
            tr[p] += hblk(Hc, a, b, n, i, i);
            sz[p] += z[a * n + i] * z[b * n + i];
        }
        o[FL2_T + p] = tr[p] / nd;
        o[FL2_S + p] = sz[p] / nd;
    }
    for (int p = 0; p < 4; p++)
        for (int q = 0; q < 4; q++) {
            int a = p >> 1, b = p & 1, c0 = q >> 1, c1 = q & 1;
            double hh = 0, hz = 0;
            for (size_t i = 0; i < n; i++) {
                double hi = hblk(Hc, a, b, n, i, i);
                hh += hi * hblk(Hc, c0, c1, n, i, i);
                hz += hi * z[c0 * n + i] * z[c1 * n + i];
            }
            o[FL2_P + p * 4 + q] = (tr[p] * tr[q] - hh) / pairs;
            o[FL2_D + p * 4 + q] = (tr[p] * sz[q] - hz) / pairs;
        }
    for (int pi = 0; pi < 4; pi++)
        for (int qi = 0; qi < 4; qi++) {
            int a1 = pi >> 1, a3 = pi & 1, a2 = qi >> 1, a4 = qi & 1;
            double acc = 0, fz = 0;
            for (size_t j = 0; j < n; j++) {
                double row = 0;
                for (size_t kk = 0; kk < n; kk++) {
                    double h12 = hblk(Hc, a1, a2, n, j, kk);
                    if (j != kk) acc += h12 * hblk(Hc, a3, a4, n, j, kk);
                    row += h12 * z[a4 * n + kk];
                }
                fz += z[a3 * n + j] * (row - hblk(Hc, a1, a2, n, j, j) * z[a4 * n + j]);
            }
            o[FL2_B + pi * 4 + qi] = acc / pairs;
            o[FL2_F + pi * 4 + qi] = fz / pairs;
        }
}

/* Network k with two inputs of Gram G0 (n0 = 2, x by the Cholesky factor
 * of 2 G0, so that x_a.x_b / n0 = G0_ab): the NTK blocks H^{00}, H^{01},
 * H^{11} (n x n each) by the forward recursion, per block
 *   H'^{ab} = (lambda_b + lambda_W/n sum_j s_ja s_jb) I + W (s'_a s'_b^T o H^{ab}) W^T,
 * and per layer the FL2_N averages of fluct2_stats.  buf: 6 n^2 + 11 n doubles. */
static void fluct2_network(const wick_ntk_fluct_config *c, const double x[2][2], uint64_t k,
                           double *buf, double *out) {
    size_t n = c->width;
    double nd = (double)n;
    double *W = buf, *M = W + n * n, *T = M + n * n, *Hb[3] = {T + n * n, T + 2 * n * n, T + 3 * n * n};
    double *W1 = T + 4 * n * n, *z = W1 + 2 * n, *s = z + 2 * n, *d = s + 2 * n, *b = d + 2 * n;
    ex_draw_layer(W1, b, n, 2, c->cb, c->cw, c->seed, k, 1);
    for (int a = 0; a < 2; a++)
        for (size_t i = 0; i < n; i++) z[a * n + i] = W1[2 * i] * x[a][0] + W1[2 * i + 1] * x[a][1] + b[i];
    for (int q = 0; q < 3; q++) {
        int a = q == 2, bb = q >= 1;
        double g = (x[a][0] * x[bb][0] + x[a][1] * x[bb][1]) / 2;
        memset(Hb[q], 0, sizeof(double) * n * n);
        for (size_t i = 0; i < n; i++) Hb[q][i * n + i] = c->lambda_b + c->lambda_w * g;
    }
    double Gc[3], Tc[3];
    for (int q = 0; q < 3; q++) {
        int a = q == 2, bb = q >= 1;
        double g = (x[a][0] * x[bb][0] + x[a][1] * x[bb][1]) / 2;
        Gc[q] = c->cb + c->cw * g;
        Tc[q] = c->lambda_b + c->lambda_w * g;
    }
    for (int l = 1; l <= c->depth; l++) {
        if (l > 1) {
            ex_draw_layer(W, b, n, n, c->cb, c->cw, c->seed, k, l);
            for (int q = 0; q < 3; q++) {
                int a = q == 2, bb = q >= 1;
                double ss0 = 0, dh = 0;
                for (size_t i = 0; i < n; i++) {
                    ss0 += s[a * n + i] * s[bb * n + i];
                    dh += d[a * n + i] * d[bb * n + i] * Hb[q][i * n + i];
                }
                Gc[q] = c->cb + c->cw * ss0 / nd;
                Tc[q] = c->lambda_b + c->lambda_w * ss0 / nd + c->cw * dh / nd;
            }
            for (int q = 0; q < 3; q++) {
                int a = q == 2, bb = q >= 1;
                double ss = 0;
                for (size_t i = 0; i < n; i++) ss += s[a * n + i] * s[bb * n + i];
                for (size_t i = 0; i < n; i++)
                    for (size_t j = 0; j < n; j++)
                        M[i * n + j] = d[a * n + i] * d[bb * n + j] * Hb[q][i * n + j];
                cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)n, (int)n, (int)n, 1.0,
                            W, (int)n, M, (int)n, 0.0, T, (int)n);
                cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)n, (int)n, (int)n, 1.0,
                            T, (int)n, W, (int)n, 0.0, Hb[q], (int)n);
                for (size_t i = 0; i < n; i++) Hb[q][i * n + i] += c->lambda_b + c->lambda_w * ss / nd;
            }
            for (int a = 0; a < 2; a++)
                for (size_t i = 0; i < n; i++) {
                    const double *Wi = W + i * n;
                    double acc = 0;
                    for (size_t j = 0; j < n; j++) acc += Wi[j] * s[a * n + j];
                    z[a * n + i] = b[i] + acc;
                }
        }
        const double *Hc[3] = {Hb[0], Hb[1], Hb[2]};
        double *o = out + (size_t)(l - 1) * FL2_N;
        fluct2_stats(Hc, z, n, o);
        for (size_t i = 0; i < 2 * n; i++) {
            s[i] = wick_act_eval(c->act, z[i]);
            d[i] = wick_act_deriv(c->act, z[i]);
        }
        static const int pq[3] = {0, 1, 3};
        for (int q = 0; q < 3; q++) {
            int a = q == 2, bb = q >= 1;
            double ss = 0, dd = 0, es = NAN, ed = NAN;
            for (size_t i = 0; i < n; i++) {
                ss += s[a * n + i] * s[bb * n + i];
                dd += d[a * n + i] * d[bb * n + i];
            }
            if (a == bb) {
                if (wick_gauss_expect1(c->act, 0, 2, Gc[q], &es)) es = NAN;
                if (wick_gauss_expect1(c->act, 1, 2, Gc[q], &ed)) ed = NAN;
            } else if (c->act.kind == WICK_ACT_RELU || c->act.kind == WICK_ACT_LEAKY_RELU ||
                       c->act.kind == WICK_ACT_LINEAR) {
                /* closed forms; elsewhere a two-dimensional quadrature per
                 * network and layer would cost more than the networks, so
                 * the off-diagonal pair goes without these two controls */
                if (wick_gauss_expect2(c->act, 0, 0, Gc[0], Gc[1], Gc[2], &es)) es = NAN;
                if (wick_gauss_expect2(c->act, 1, 1, Gc[0], Gc[1], Gc[2], &ed)) ed = NAN;
            }
            double *cv = o + FL2_CV + 4 * q;
            cv[0] = o[FL2_S + pq[q]] - Gc[q];
            cv[1] = o[FL2_T + pq[q]] - Tc[q];
            cv[2] = isfinite(es) ? ss / nd - es : 0;
            cv[3] = isfinite(ed) ? dd / nd - ed : 0;
        }
    }
}

wick_status wick_ntk_fluct_two_measure(const wick_ntk_fluct_config *c, const double G0[4],
                                      double *val, double *se) {
    if (!c || !G0 || !val || !se)
        return wick_fail(WICK_EINVAL, "two-input NTK tensors: no input or output");
    if (!wick_act_has_derivative(c->act))
        return wick_fail(WICK_EINVAL, "two-input NTK tensors: %s has no derivative (a delta)",
                         wick_act_name(c->act));
    if (c->depth < 1 || c->depth > 4096 || c->width < 2 || c->width > 4096 || c->samples < 2)
        return wick_fail(WICK_EINVAL, "two-input NTK tensors: depth %d, width %zu, %zu networks",
                         c->depth, c->width, c->samples);
    if (!(G0[0] > 0) || G0[1] != G0[2] || !(G0[3] * G0[0] - G0[1] * G0[1] >= 0))
        return wick_fail(WICK_EINVAL, "two-input NTK tensors: the input Gram is not symmetric "
                         "positive semi-definite with G0_11 > 0");
    double x[2][2];
    ex_two_inputs(G0, x);
    size_t n = c->width, L = (size_t)c->depth, M = c->samples;
    int nt = wick_threads();
    size_t per_t = 6 * n * n + 11 * n;
    double *bufs = wick_malloc(sizeof(double) * per_t * (size_t)nt);
    double *stats = wick_malloc(sizeof(double) * M * L * FL2_N);
    if (!bufs || !stats) {
        wick_free(bufs); wick_free(stats);
        return wick_fail(WICK_ENOMEM, "two-input NTK tensors: out of memory (width %zu)", n);
    }
    #pragma omp parallel for num_threads(nt) schedule(dynamic, 4)
    for (size_t k = 0; k < M; k++)
        fluct2_network(c, x, k, bufs + per_t * (size_t)omp_get_thread_num(), stats + k * L * FL2_N);
    double Md = (double)M, nd = (double)n;
    for (size_t l = 0; l < L; l++) {
        double mu[FL2_N] = {0};
        for (size_t k = 0; k < M; k++)
            for (int q = 0; q < FL2_N; q++) mu[q] += stats[(k * L + l) * FL2_N + q];
        for (int q = 0; q < FL2_N; q++) mu[q] /= Md;
        double *v = val + l * WICK_FL2_COUNT, *e = se + l * WICK_FL2_COUNT;
        /* each estimate is linear in at most three means (x - y w, times n
         * for the 1/n tensors): its standard error by the delta method over
         * the networks */
        for (int q = 0; q < WICK_FL2_NTKCV; q++) {
            int ix = -1, iy = -1, iw = -1;
            double sc = nd;
            if (q < WICK_FL2_NTK) { ix = FL2_S + q; sc = 1; }
            else if (q < WICK_FL2_A) { ix = FL2_T + q - WICK_FL2_NTK; sc = 1; }
            else if (q < WICK_FL2_B) {
                int pq = q - WICK_FL2_A;
                ix = FL2_P + pq; iy = FL2_T + pq / 4; iw = FL2_T + pq % 4;
            } else if (q < WICK_FL2_D) ix = FL2_B + q - WICK_FL2_B;
            else if (q < WICK_FL2_F) {
                int pq = q - WICK_FL2_D;
                ix = FL2_D + pq; iy = FL2_T + pq / 4; iw = FL2_S + pq % 4;
            } else ix = FL2_F + q - WICK_FL2_F;
            double my = iy >= 0 ? mu[iy] : 0, mw = iw >= 0 ? mu[iw] : 0, var = 0;
            for (size_t k = 0; k < M; k++) {
                const double *xs = stats + (k * L + l) * FL2_N;
                double g = xs[ix] - mu[ix];
                if (iy >= 0) g -= mw * (xs[iy] - my) + my * (xs[iw] - mw);
                var += g * g;
            }
            v[q] = sc * (mu[ix] - my * mw);
            e[q] = sc * sqrt(var / (Md - 1) / Md);
        }
    }
    /* the NTK means with the controls of this layer and the three before */
    double *cvb = wick_malloc(sizeof(double) * M * (4 * 12 + 1));
    if (!cvb) {
        wick_free(bufs); wick_free(stats);
        return wick_fail(WICK_ENOMEM, "two-input NTK tensors: out of memory (%zu networks)", M);
    }
    for (size_t l = 0; l < L; l++) {
        size_t l0 = l >= 3 ? l - 3 : 0;
        int p = (int)(12 * (l + 1 - l0));
        double *y = cvb, *cv = cvb + M;
        for (int pp = 0; pp < 4; pp++) {
            for (size_t k = 0; k < M; k++) {
                y[k] = stats[(k * L + l) * FL2_N + FL2_T + pp];
                double *row = cv + k * (size_t)p;
                for (size_t j = l0; j <= l; j++)
                    for (int t = 0; t < 12; t++) *row++ = stats[(k * L + j) * FL2_N + FL2_CV + t];
            }
            double *v = val + l * WICK_FL2_COUNT, *e = se + l * WICK_FL2_COUNT;
            ex_cv_mean(y, cv, M, p, &v[WICK_FL2_NTKCV + pp], &e[WICK_FL2_NTKCV + pp]);
        }
    }
    wick_free(cvb);
    wick_free(bufs); wick_free(stats);
    return WICK_OK;
}

wick_status wick_ntk_B_two_measure(const wick_ntk_fluct_config *c, const double G0[4], double *B,
                                   double *se) {
    if (!c || !G0 || !B || !se) return wick_fail(WICK_EINVAL, "NTK variance: no input or output");
    if (c->depth < 1 || c->depth > 4096)
        return wick_fail(WICK_EINVAL, "NTK variance: depth %d", c->depth);
    size_t L = (size_t)c->depth;
    double *v = wick_malloc(sizeof(double) * 2 * WICK_FL2_COUNT * L);
    if (!v) return wick_fail(WICK_ENOMEM, "NTK variance: out of memory");
    wick_status st = wick_ntk_fluct_two_measure(c, G0, v, v + WICK_FL2_COUNT * L);
    if (!st)
        for (size_t l = 0; l < L; l++)
            for (int q = 0; q < 16; q++) {
                B[l * 16 + q] = v[l * WICK_FL2_COUNT + WICK_FL2_B + q];
                se[l * 16 + q] = v[(L + l) * WICK_FL2_COUNT + WICK_FL2_B + q];
            }
    wick_free(v);
    return st;
}
