/* ntk_ensemble.c — the empirical NTK of M finite-width networks beside the
 * infinite-width Theta^(L) (the book's ch. 8; docs/experiments.md): its mean and its network-to-network
 * fluctuation, which the theory puts at O(1/n), growing with depth. */
#include "experiments.h"
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
