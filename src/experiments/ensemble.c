/* ensemble.c — Monte Carlo ensembles of finite-width MLPs at initialisation,
 * measured layer by layer beside the theory (docs/theory.md §3, §5, §6, §12).
 *
 * M networks are sampled one after the other in float64, each by one thread,
 * their weights drawn on the fly from counter-based streams (nothing of a
 * network is kept once its statistics are taken).  Each network contributes
 * one sample of each statistic (its neuron average), and the samples are
 * summed over networks in a fixed order, so the result does not depend on
 * the thread count. */
#include "experiments.h"
#include <lapacke.h>
#include <math.h>
#include <omp.h>
#include <string.h>

wick_status ex_sqrt_psd(const double *K, size_t n, double *F) {
    double *A = wick_malloc(sizeof(double) * n * n), *w = wick_malloc(sizeof(double) * n);
    if (!A || !w) {
        wick_free(A); wick_free(w);
        return wick_fail(WICK_ENOMEM, "ensemble: out of memory for a %zu x %zu Gram", n, n);
    }
    memcpy(A, K, sizeof(double) * n * n);
    lapack_int info = LAPACKE_dsyev(LAPACK_ROW_MAJOR, 'V', 'U', (lapack_int)n, A, (lapack_int)n, w);
    wick_status st = WICK_OK;
    if (info != 0) {
        st = wick_fail(WICK_ENUMERIC, "ensemble: eigendecomposition of the first layer's kernel "
                       "failed (LAPACK info %d)", (int)info);
        goto out;
    }
    double wmax = fabs(w[n - 1]);
    for (size_t j = 0; j < n; j++) {
        if (w[j] < -1e-10 * (wmax > 0 ? wmax : 1)) {
            st = wick_fail(WICK_ENUMERIC, "ensemble: the first layer's kernel C_b + C_W G0 is "
                           "not positive semi-definite (eigenvalue %g)", w[j]);
            goto out;
        }
        double s = w[j] > 0 ? sqrt(w[j]) : 0;
        for (size_t a = 0; a < n; a++) F[a * n + j] = A[a * n + j] * s;  /* F = Q sqrt(Lambda) */
    }
out:
    wick_free(A); wick_free(w);
    return st;
}

void ex_draw_layer(double *W, double *b, size_t nout, size_t nin, double cb, double cw,
                   uint64_t seed, uint64_t k, int l) {
    uint64_t s = ex_stream(k, l);
    ex_fill_normal(W, nout * nin, seed, s, 0);
    ex_fill_normal(b, nout, seed, s, (uint64_t)(nout * nin));
    double sw = sqrt(cw / (double)nin), sb = sqrt(cb);
    for (size_t i = 0; i < nout * nin; i++) W[i] *= sw;
    for (size_t i = 0; i < nout; i++) b[i] *= sb;
}

/* ---------------------------------------------------------------------------
 * One network
 * ------------------------------------------------------------------------- */

/* Statistics of one network at one layer, per input a (ni inputs):
 * g[a*ni+b] = (1/n) sum_i z_ia z_ib, then m4[a] = (1/n) sum_i z_ia^4 and
 * p[a] = (sum_i z_ia^2)^2 - sum_i z_ia^4) / (n (n-1)), the unbiased
 * estimate of E[z_i^2 z_j^2] (i != j) from one network. */
static size_t nstat(size_t ni) { return ni * ni + 2 * ni; }

typedef struct {
    double *z, *s, *W, *braw;   /* z, sigma(z): [ni][n]; W [n][n]; b [n] */
} net_buf;

static void layer_stats(const double *z, size_t ni, size_t n, double *out) {
    double *g = out, *m4 = out + ni * ni, *p = m4 + ni;
    for (size_t a = 0; a < ni; a++) {
        const double *za = z + a * n;
        for (size_t b = a; b < ni; b++) {
            const double *zb = z + b * n;
            double acc = 0;
            #pragma omp simd reduction(+:acc)
            for (size_t i = 0; i < n; i++) acc += za[i] * zb[i];
            g[a * ni + b] = g[b * ni + a] = acc / (double)n;
        }
        double s2 = 0, s4 = 0;
        #pragma omp simd reduction(+:s2, s4)
        for (size_t i = 0; i < n; i++) {
            double q = za[i] * za[i];
            s2 += q;
            s4 += q * q;
        }
        m4[a] = s4 / (double)n;
        p[a] = (s2 * s2 - s4) / ((double)n * (double)(n - 1));
    }
}

/* Runs network k and writes its statistics for every layer: stats[(l-1)*S ..]. */
/* Network k's first layer: z_{i;a} = sum_b F1[a][b] u_{i;b} with u ~ N(0, 1)
 * drawn into s (as [ni][n]), i.e. the exact law N(0, C_b + C_W G0) of each
 * neuron (docs/theory.md §3), independent over neurons. */
static void layer1_draw(const wick_ensemble_config *c, const double *F1, uint64_t k, double *s, double *z) {
    size_t n = c->width, ni = c->ninputs;
    ex_fill_normal(s, ni * n, c->seed, ex_stream(k, 1), 0);
    for (size_t a = 0; a < ni; a++)
        for (size_t i = 0; i < n; i++) {
            double acc = 0;
            for (size_t b = 0; b < ni; b++) acc += F1[a * ni + b] * s[b * n + i];
            z[a * n + i] = acc;
        }
}

static void run_network(const wick_ensemble_config *c, const double *F1, uint64_t k, net_buf *B,
                        double *stats) {
    size_t n = c->width, ni = c->ninputs, S = nstat(ni);
    double *z = B->z, *s = B->s, *W = B->W, *braw = B->braw;
    layer1_draw(c, F1, k, s, z);
    layer_stats(z, ni, n, stats);
    double sw = sqrt(c->cw / (double)n), sb = sqrt(c->cb);
    for (int l = 2; l <= c->depth; l++) {
        uint64_t st = ex_stream(k, l);
        ex_fill_normal(W, n * n, c->seed, st, 0);
        ex_fill_normal(braw, n, c->seed, st, (uint64_t)(n * n));
        for (size_t j = 0; j < ni * n; j++) s[j] = wick_act_eval(c->act, z[j]);
        /* z_{i;a} = sqrt(C_b) b_i + sqrt(C_W/n) sum_j W_ij s_{j;a} */
        for (size_t a = 0; a < ni; a++) {
            const double *sa = s + a * n;
            double *za = z + a * n;
            for (size_t i = 0; i < n; i++) {
                const double *Wi = W + i * n;
                double acc = 0;
                #pragma omp simd reduction(+:acc)
                for (size_t j = 0; j < n; j++) acc += Wi[j] * sa[j];
                za[i] = sb * braw[i] + sw * acc;
            }
        }
        layer_stats(z, ni, n, stats + (size_t)(l - 1) * S);
    }
}

/* ---------------------------------------------------------------------------
 * The ensemble
 * ------------------------------------------------------------------------- */

static wick_status check_config(const wick_ensemble_config *c) {
    if (!c) return wick_fail(WICK_EINVAL, "ensemble: no configuration given");
    if ((unsigned)c->act.kind >= WICK_ACT_COUNT)
        return wick_fail(WICK_EINVAL, "ensemble: unknown activation %d", (int)c->act.kind);
    if (!isfinite(c->cb) || c->cb < 0 || !isfinite(c->cw) || c->cw < 0)
        return wick_fail(WICK_EINVAL, "ensemble: C_b = %g and C_W = %g must be finite and "
                         "non-negative (they are variances)", c->cb, c->cw);
    if (c->depth < 1 || c->depth > EX_MAX_DEPTH)
        return wick_fail(WICK_EINVAL, "ensemble: depth %d, expected 1..%d", c->depth, EX_MAX_DEPTH);
    if (c->width < 2 || c->width > (1u << 16))
        return wick_fail(WICK_EINVAL, "ensemble: width %zu, expected 2..65536 (a correlator "
                         "between two neurons needs two)", c->width);
    if (c->samples < 2 || c->samples > ((uint64_t)1 << 40))
        return wick_fail(WICK_EINVAL, "ensemble: %zu networks, expected at least 2 for a "
                         "standard error", c->samples);
    if (!c->G0 || c->ninputs < 1 || c->ninputs > 64)
        return wick_fail(WICK_EINVAL, "ensemble: %zu inputs, expected 1..64 and their Gram",
                         c->ninputs);
    for (size_t i = 0; i < c->ninputs * c->ninputs; i++)
        if (!isfinite(c->G0[i]))
            return wick_fail(WICK_EINVAL, "ensemble: input Gram entry %zu is not finite", i);
    return WICK_OK;
}

void wick_ensemble_free(wick_ensemble_result *r) {
    if (!r) return;
    wick_free(r->kernel); wick_free(r->kernel_stderr);
    wick_free(r->connected4); wick_free(r->connected4_stderr);
    wick_free(r->pair4); wick_free(r->pair4_stderr);
    wick_free(r->ratio4); wick_free(r->ratio4_stderr);
    wick_free(r);
}

/* Networks per chunk: each chunk's per-network statistics are computed in
 * parallel, then added to the running sums in network order.  Chunks are
 * large (up to 2^22 statistics, 32 MiB) so that the team meets rarely: on a
 * loaded machine every barrier costs a time slice. */
#define CHUNK_STATS ((size_t)1 << 22)

wick_status wick_ensemble_run(const wick_ensemble_config *c, wick_ensemble_result **out) {
    *out = NULL;
    wick_status st = check_config(c);
    if (st) return st;
    size_t n = c->width, ni = c->ninputs, L = (size_t)c->depth, M = c->samples, S = nstat(ni);
    int nt = wick_threads();
    double t0 = omp_get_wtime();

    /* sums over networks, per layer: of each statistic, its square, and for
     * m4 and p their products with the diagonal g_aa (delta method) */
    size_t nsum = L * (2 * S + 2 * ni);
    size_t chunk = CHUNK_STATS / (L * S);
    if (chunk < 64) chunk = 64;
    if (chunk > M) chunk = M;
    size_t per_thread = 2 * ni * n + n * n + n;
    double *F1 = wick_malloc(sizeof(double) * ni * ni);
    double *K1 = wick_malloc(sizeof(double) * ni * ni);
    double *sums = wick_calloc(nsum, sizeof(double));
    double *stats = wick_malloc(sizeof(double) * chunk * L * S);
    double *bufs = wick_malloc(sizeof(double) * per_thread * (size_t)nt);
    wick_ensemble_result *r = wick_calloc(1, sizeof *r);
    if (r) {
        r->kernel = wick_malloc(sizeof(double) * L * ni * ni);
        r->kernel_stderr = wick_malloc(sizeof(double) * L * ni * ni);
        r->connected4 = wick_malloc(sizeof(double) * L * ni);
        r->connected4_stderr = wick_malloc(sizeof(double) * L * ni);
        r->pair4 = wick_malloc(sizeof(double) * L * ni);
        r->pair4_stderr = wick_malloc(sizeof(double) * L * ni);
        r->ratio4 = wick_malloc(sizeof(double) * L * ni);
        r->ratio4_stderr = wick_malloc(sizeof(double) * L * ni);
    }
    if (!F1 || !K1 || !sums || !stats || !bufs || !r || !r->kernel || !r->kernel_stderr ||
        !r->connected4 || !r->connected4_stderr || !r->pair4 || !r->pair4_stderr || !r->ratio4 ||
        !r->ratio4_stderr) {
        st = wick_fail(WICK_ENOMEM, "ensemble: out of memory (width %zu, %zu inputs, %d threads)",
                       n, ni, nt);
        goto fail;
    }
    for (size_t i = 0; i < ni * ni; i++) K1[i] = c->cb + c->cw * c->G0[i];
    if ((st = ex_sqrt_psd(K1, ni, F1))) goto fail;

    for (size_t k0 = 0; k0 < M; k0 += chunk) {
        size_t cnt = M - k0 < chunk ? M - k0 : chunk;
        #pragma omp parallel for num_threads(nt) schedule(dynamic, 16)
        for (size_t j = 0; j < cnt; j++) {
            double *base = bufs + per_thread * (size_t)omp_get_thread_num();
            net_buf B = {base, base + ni * n, base + 2 * ni * n, base + 2 * ni * n + n * n};
            run_network(c, F1, k0 + j, &B, stats + j * L * S);
        }
        for (size_t j = 0; j < cnt; j++)          /* fixed order: thread-count independent */
            for (size_t l = 0; l < L; l++) {
                const double *x = stats + (j * L + l) * S;
                double *sm = sums + l * (2 * S + 2 * ni);
                for (size_t q = 0; q < S; q++) { sm[q] += x[q]; sm[S + q] += x[q] * x[q]; }
                for (size_t a = 0; a < ni; a++) {
                    double gaa = x[a * ni + a];
                    sm[2 * S + a] += x[ni * ni + a] * gaa;           /* m4 g_aa */
                    sm[2 * S + ni + a] += x[ni * ni + ni + a] * gaa; /* p g_aa */
                }
            }
    }

    double Md = (double)M;
    for (size_t l = 0; l < L; l++) {
        const double *sm = sums + l * (2 * S + 2 * ni);
        double mean[S], var[S];
        for (size_t q = 0; q < S; q++) {
            mean[q] = sm[q] / Md;
            double v = (sm[S + q] - Md * mean[q] * mean[q]) / (Md - 1);
            var[q] = v > 0 ? v : 0;
        }
        for (size_t q = 0; q < ni * ni; q++) {
            r->kernel[l * ni * ni + q] = mean[q];
            r->kernel_stderr[l * ni * ni + q] = sqrt(var[q] / Md);
        }
        for (size_t a = 0; a < ni; a++) {
            size_t qg = a * ni + a, q4 = ni * ni + a, qp = ni * ni + ni + a;
            double g = mean[qg];
            double cov4 = (sm[2 * S + a] - Md * mean[q4] * g) / (Md - 1);
            double covp = (sm[2 * S + ni + a] - Md * mean[qp] * g) / (Md - 1);
            /* f = m4 - 3 g^2: grad (1, -6 g); f = p - g^2: grad (1, -2 g) */
            double v4 = var[q4] + 36 * g * g * var[qg] - 12 * g * cov4;
            double vp = var[qp] + 4 * g * g * var[qg] - 4 * g * covp;
            r->connected4[l * ni + a] = mean[q4] - 3 * g * g;
            r->connected4_stderr[l * ni + a] = sqrt((v4 > 0 ? v4 : 0) / Md);
            /* f = m4 / (3 g^2) - 1: grad (1/(3 g^2), -2 m4 / (3 g^3)) */
            double d4 = 1 / (3 * g * g), dg = -2 * mean[q4] / (3 * g * g * g);
            double vr = d4 * d4 * var[q4] + dg * dg * var[qg] + 2 * d4 * dg * cov4;
            r->ratio4[l * ni + a] = g > 0 ? mean[q4] * d4 - 1 : NAN;
            r->ratio4_stderr[l * ni + a] = g > 0 ? sqrt((vr > 0 ? vr : 0) / Md) : NAN;
            r->pair4[l * ni + a] = mean[qp] - g * g;
            r->pair4_stderr[l * ni + a] = sqrt((vp > 0 ? vp : 0) / Md);
        }
    }
    r->depth = c->depth;
    r->ninputs = ni;
    r->samples = M;
    r->width = n;
    r->threads = nt;
    r->seconds = omp_get_wtime() - t0;
    wick_free(F1); wick_free(K1); wick_free(sums); wick_free(stats); wick_free(bufs);
    *out = r;
    return WICK_OK;
fail:
    wick_free(F1); wick_free(K1); wick_free(sums); wick_free(stats); wick_free(bufs);
    wick_ensemble_free(r);
    return st;
}

/* ---------------------------------------------------------------------------
 * The theory beside it
 * ------------------------------------------------------------------------- */

wick_status wick_ensemble_theory(const wick_ensemble_config *c, double *kernel,
                                 double *connected4, double *pair4, double *exact4) {
    wick_status st = check_config(c);
    if (st) return st;
    size_t ni = c->ninputs, L = (size_t)c->depth;
    double nd = (double)c->width;
    wick_theory_config tc = wick_theory_defaults(c->act, c->depth);
    tc.cb = c->cb; tc.cw = c->cw; tc.width = c->width;
    tc.tabulate = 0;   /* a handful of inputs: direct quadrature, the most accurate */
    wick_layer_theory *per = wick_malloc(sizeof *per * L);
    double *Kg = ni > 1 ? wick_malloc(sizeof(double) * L * ni * ni) : NULL;
    if (!per || (ni > 1 && !Kg)) {
        wick_free(per); wick_free(Kg);
        return wick_fail(WICK_ENOMEM, "ensemble: out of memory for the theory");
    }
    if (ni > 1 && (st = wick_gram_flow(&tc, c->G0, ni, Kg, NULL))) goto out;
    double kappa = 0;   /* > 0: the scale-invariant class, exact finite-width oracle */
    if (c->act.kind == WICK_ACT_RELU || c->act.kind == WICK_ACT_LEAKY_RELU) {
        double s2, s4;
        if ((st = wick_gauss_expect1(c->act, 0, 2, 1.0, &s2)) ||
            (st = wick_gauss_expect1(c->act, 0, 4, 1.0, &s4)))
            goto out;
        kappa = s4 / (s2 * s2) - 1;   /* <sigma^4>_1 = 3 A4, <sigma^2>_1 = A2 */
    }
    for (size_t a = 0; a < ni; a++) {
        double q = c->G0[a * ni + a];
        if ((st = wick_theory_single(&tc, q, per))) goto out;
        for (size_t l = 0; l < L; l++) {
            /* V^(l) enters with 1/n_{l-1}: n for l >= 2, and V^(1) = 0 */
            double V = per[l].V, K = per[l].K;
            if (kernel && ni == 1) kernel[l] = K;
            if (connected4) connected4[l * ni + a] = l == 0 ? 0.0 : 3 * V / nd;
            if (pair4) pair4[l * ni + a] = l == 0 ? 0.0 : V / nd;
            if (exact4) {
                exact4[l * ni + a] = NAN;
                double Kl, Ez4;
                if (c->act.kind == WICK_ACT_LINEAR && c->cb == 0) {
                    if (wick_deep_linear(c->cw, c->cw * q, (int)l + 1, c->width, &Kl, &Ez4) == WICK_OK)
                        exact4[l * ni + a] = Ez4 - 3 * Kl * Kl;
                } else if (kappa > 0 && c->cb == 0) {
                    /* scale-invariant, C_b = 0: given layer l-1, the neurons of
                     * layer l are iid N(0, G) with G = (C_W/n) sum_j sigma_j^2, so
                     * E[G^2] gains (C_W A2)^2 (1 + kappa/n) per layer, kappa =
                     * 3A4/A2^2 - 1 (docs/theory.md §5's derivation; kappa = 2 linear, 5 ReLU) */
                    double Kth = per[l].K;
                    exact4[l * ni + a] = 3 * Kth * Kth * (pow(1 + kappa / nd, (double)l) - 1);
                }
            }
        }
    }
    if (kernel && ni > 1) memcpy(kernel, Kg, sizeof(double) * L * ni * ni);
out:
    wick_free(per); wick_free(Kg);
    return st;
}

/* ---------------------------------------------------------------------------
 * The kernel's 1/n shift with control variates (docs/theory-finite-width.md)
 * ------------------------------------------------------------------------- */

/* Per network, layer and entry e of the upper triangle (a <= b): the kernel
 * sample s = (1/n) sum z_a z_b, its conditional mean G = C_b + C_W/n sum
 * sigma_a sigma_b of the layer before (the first layer's own kernel at l =
 * 1), and eta = (1/n) sum sigma(z_a) sigma(z_b) - <sigma_a sigma_b>_G of this
 * layer, G its conditional kernel: s - G and eta have mean exactly 0. */
enum { K1S_S, K1S_G, K1S_ETA, K1S_N };
#define K1_CV_LAYERS 8

static void kernel1_network(const wick_ensemble_config *c, const double *F1, const double *K1,
                            uint64_t k, double *buf, double *out) {
    size_t n = c->width, ni = c->ninputs, ne = ni * (ni + 1) / 2;
    double *z = buf, *s = z + ni * n, *W = s + ni * n, *braw = W + n * n;
    double G[64 * 65 / 2];
    layer1_draw(c, F1, k, s, z);
    for (size_t a = 0, e = 0; a < ni; a++)
        for (size_t b = a; b < ni; b++, e++) G[e] = K1[a * ni + b];
    double sw = sqrt(c->cw / (double)n), sb = sqrt(c->cb);
    for (int l = 1; l <= c->depth; l++) {
        double *o = out + (size_t)(l - 1) * ne * K1S_N;
        for (size_t j = 0; j < ni * n; j++) s[j] = wick_act_eval(c->act, z[j]);
        for (size_t a = 0, e = 0; a < ni; a++)
            for (size_t b = a; b < ni; b++, e++) {
                double zz = 0, ss = 0, ex = 0;
                for (size_t i = 0; i < n; i++) {
                    zz += z[a * n + i] * z[b * n + i];
                    ss += s[a * n + i] * s[b * n + i];
                }
                size_t ea = a * ni - a * (a - 1) / 2, eb = b * ni - b * (b - 1) / 2;
                double gaa = G[ea], gbb = G[eb], gab = G[e];
                if (wick_gauss_expect2(c->act, 0, 0, gaa, gab, gbb, &ex)) ex = NAN;
                o[e * K1S_N + K1S_S] = zz / (double)n;
                o[e * K1S_N + K1S_G] = gab;
                o[e * K1S_N + K1S_ETA] = ss / (double)n - ex;
            }
        if (l == c->depth) break;
        /* the next layer's conditional kernel, then its preactivations */
        for (size_t a = 0, e = 0; a < ni; a++)
            for (size_t b = a; b < ni; b++, e++) {
                double ss = 0;
                for (size_t i = 0; i < n; i++) ss += s[a * n + i] * s[b * n + i];
                G[e] = c->cb + c->cw * ss / (double)n;
            }
        uint64_t st = ex_stream(k, l + 1);
        ex_fill_normal(W, n * n, c->seed, st, 0);
        ex_fill_normal(braw, n, c->seed, st, (uint64_t)(n * n));
        for (size_t a = 0; a < ni; a++) {
            const double *sa = s + a * n;
            for (size_t i = 0; i < n; i++) {
                const double *Wi = W + i * n;
                double acc = 0;
                for (size_t j = 0; j < n; j++) acc += Wi[j] * sa[j];
                z[a * n + i] = sb * braw[i] + sw * acc;
            }
        }
    }
}

wick_status wick_kernel1_measure(const wick_ensemble_config *c, double *mean, double *se) {
    wick_status st = check_config(c);
    if (st) return st;
    if (!mean || !se) return wick_fail(WICK_EINVAL, "kernel shift: no output");
    if (c->ninputs > 4)
        return wick_fail(WICK_EINVAL, "kernel shift: %zu inputs, at most 4", c->ninputs);
    size_t n = c->width, ni = c->ninputs, L = (size_t)c->depth, M = c->samples;
    size_t ne = ni * (ni + 1) / 2, per = L * ne * K1S_N;
    int nt = wick_threads();
    size_t per_t = 2 * ni * n + n * n + n;
    double *F1 = wick_malloc(sizeof(double) * ni * ni), *K1 = wick_malloc(sizeof(double) * ni * ni);
    double *bufs = wick_malloc(sizeof(double) * per_t * (size_t)nt);
    double *stats = wick_malloc(sizeof(double) * M * per);
    size_t maxp = 2 * ne * K1_CV_LAYERS;
    double *y = wick_malloc(sizeof(double) * M), *cv = wick_malloc(sizeof(double) * M * maxp);
    if (!F1 || !K1 || !bufs || !stats || !y || !cv) {
        st = wick_fail(WICK_ENOMEM, "kernel shift: out of memory (%zu networks)", M);
        goto out;
    }
    for (size_t i = 0; i < ni * ni; i++) K1[i] = c->cb + c->cw * c->G0[i];
    if ((st = ex_sqrt_psd(K1, ni, F1))) goto out;
    #pragma omp parallel for num_threads(nt) schedule(dynamic, 8)
    for (size_t k = 0; k < M; k++)
        kernel1_network(c, F1, K1, k, bufs + per_t * (size_t)omp_get_thread_num(), stats + k * per);
    for (size_t l = 0; l < L; l++) {
        size_t l0 = l + 1 > K1_CV_LAYERS ? l + 1 - K1_CV_LAYERS : 0;
        int p = (int)(2 * ne * (l + 1 - l0));
        for (size_t e = 0; e < ne; e++) {
            for (size_t k = 0; k < M; k++) {
                const double *x = stats + k * per;
                y[k] = x[(l * ne + e) * K1S_N + K1S_S];
                double *row = cv + k * (size_t)p;
                for (size_t j = l0; j <= l; j++)
                    for (size_t f = 0; f < ne; f++) {
                        const double *q = x + (j * ne + f) * K1S_N;
                        *row++ = q[K1S_S] - q[K1S_G];
                        *row++ = isfinite(q[K1S_ETA]) ? q[K1S_ETA] : 0;
                    }
            }
            double m, s;
            ex_cv_mean(y, cv, M, p, &m, &s);
            /* back to the full matrix */
            size_t a = 0, b, cnt = e;
            while (cnt >= ni - a) { cnt -= ni - a; a++; }
            b = a + cnt;
            mean[l * ni * ni + a * ni + b] = mean[l * ni * ni + b * ni + a] = m;
            se[l * ni * ni + a * ni + b] = se[l * ni * ni + b * ni + a] = s;
        }
    }
out:
    wick_free(F1); wick_free(K1); wick_free(bufs); wick_free(stats); wick_free(y); wick_free(cv);
    return st;
}
