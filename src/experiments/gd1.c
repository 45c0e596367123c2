/* gd1.c — one step of full-batch MSE gradient descent on real finite-width
 * networks, measured beside wick_gd_mean1 (docs/theory-finite-width.md, "One
 * step of gradient descent at order 1/n").  The order-1/n shift of the
 * trained mean is a 1/sqrt(n) fraction of the networks' spread, so each
 * network's own frozen-NTK step z(0) - eta H(0) (z(0) - y) is subtracted
 * (its mean, eta E[H] y, is the NTK's and measured apart), every network is
 * paired with its mirror (last layer negated: z -> -z, H unchanged), which
 * cancels every term odd in z exactly, and each is stepped at +eta and
 * -eta, which splits the residual into its eta^2 and eta^3 parts. */
#include "experiments.h"
#include <math.h>
#include <omp.h>
#include <string.h>

enum { PER = WICK_GD1_COUNT };  /* per pair and output, the WICK_GD1_ columns */

wick_status wick_gd1_measure(const wick_gd1_config *c, double *val, double *se) {
    if (!c || !val || !se || !c->y)
        return wick_fail(WICK_EINVAL, "gd1 measure: needs a configuration, targets and outputs");
    size_t no = c->net.nout, M = c->samples, L = (size_t)c->net.depth;
    if (c->net.n0 != 1 || no < 1 || no > 64 || M < 2 || L < 1 || c->net.width < 1)
        return wick_fail(WICK_EINVAL, "gd1 measure: needs n0 = 1, 1..64 outputs, depth >= 1 and "
                         ">= 2 pairs (n0 %zu, nout %zu, depth %zu, pairs %zu)", c->net.n0, no, L, M);
    if (!(c->eta > 0) || !isfinite(c->eta) || !(c->q >= 0) || !isfinite(c->q))
        return wick_fail(WICK_EINVAL, "gd1 measure: eta = %g must be positive and q = %g "
                         "non-negative", c->eta, c->q);
    for (size_t i = 0; i < no; i++)
        if (!isfinite(c->y[i])) return wick_fail(WICK_EINVAL, "gd1 measure: target %zu is not finite", i);
    size_t np = 0;   /* parameters */
    for (size_t l = 1; l <= L; l++) {
        size_t a = l == L ? no : c->net.width, b = l == 1 ? 1 : c->net.width;
        np += a * b + a;
    }
    int nt = wick_threads();
    if ((size_t)nt > M) nt = (int)M;
    size_t tb = np + 6 * no + no * no;
    double *per = wick_malloc(sizeof(double) * M * PER * no);
    double *tbuf = wick_malloc(sizeof(double) * tb * (size_t)nt);
    wick_net64 **nets = wick_calloc((size_t)nt, sizeof *nets);
    wick_status st = WICK_OK;
    if (!per || !tbuf || !nets) { st = wick_fail(WICK_ENOMEM, "gd1 measure: out of memory"); goto out; }
    for (int t = 0; t < nt; t++)
        if ((st = wick_net64_new(&nets[t], &c->net, 1))) goto out;
    const double x = sqrt(c->q), eta = c->eta;
    const long T = c->steps > 1 ? c->steps : 1;
    if (T > 1000000) { st = wick_fail(WICK_EINVAL, "gd1 measure: %ld steps, at most 1e6", T); goto out; }
    int fail = 0;
    char msg[256] = "";
    #pragma omp parallel for num_threads(nt) schedule(dynamic, 1)
    for (size_t k = 0; k < M; k++) {
        if (fail) continue;
        int t = omp_get_thread_num();
        wick_net64 *m = nets[t];
        double *par = tbuf + tb * (size_t)t, *z0 = par + np, *zm = z0 + no, *z1 = zm + no,
               *tg = z1 + no, *rp = tg + no, *rm = rp + no, *H = rm + no;
        double *o = per + k * PER * no;
        memset(o, 0, sizeof(double) * PER * no);
        wick_net64_init(m, c->seed, k);
        wick_status s = wick_net64_forward(m, &x, 1, z0);
        if (!s) s = wick_net64_ntk(m, &x, 1, 0, H);
        /* save the parameters, to restart each step from them */
        size_t off = 0;
        for (int l = 1; l <= (int)L; l++) {
            size_t a = l == (int)L ? no : c->net.width, b = l == 1 ? 1 : c->net.width;
            memcpy(par + off, wick_net64_weight(m, l), sizeof(double) * a * b); off += a * b;
            memcpy(par + off, wick_net64_bias(m, l), sizeof(double) * a); off += a;
        }
        for (int mir = 0; mir < 2 && !s; mir++)
            for (int sg = 0; sg < (T > 1 ? 1 : 2) && !s; sg++) {
                off = 0;
                for (int l = 1; l <= (int)L; l++) {
                    size_t a = l == (int)L ? no : c->net.width, b = l == 1 ? 1 : c->net.width;
                    double *W = wick_net64_weight(m, l), *bb = wick_net64_bias(m, l);
                    double f = mir && l == (int)L ? -1.0 : 1.0;
                    for (size_t q = 0; q < a * b; q++) W[q] = f * par[off + q];
                    off += a * b;
                    for (size_t q = 0; q < a; q++) bb[q] = f * par[off + q];
                    off += a;
                }
                for (size_t i = 0; i < no; i++) zm[i] = mir ? -z0[i] : z0[i];
                /* a step at -eta toward y is the step at +eta toward 2 z(0) - y
                 * (the same gradient, negated), since wick_net64_gd_step takes eta > 0 */
                for (size_t i = 0; i < no; i++) tg[i] = sg ? 2 * zm[i] - c->y[i] : c->y[i];
                if (T > 1) {
                    /* t steps toward y; the frozen-NTK trajectory of this network's
                     * own H(0): z_lin(t) - y = (1 - eta H)^t (z(0) - y) */
                    for (long st2 = 0; st2 < T && !s; st2++) s = wick_net64_gd_step(m, &x, c->y, 1, eta, NULL);
                    if (!s) s = wick_net64_forward(m, &x, 1, z1);
                    for (size_t i = 0; i < no; i++) rp[i] = zm[i] - c->y[i];
                    for (long st2 = 0; st2 < T; st2++) {
                        for (size_t i = 0; i < no; i++) {
                            double hz = 0;
                            for (size_t j = 0; j < no; j++) hz += H[i * no + j] * rp[j];
                            rm[i] = rp[i] - eta * hz;
                        }
                        memcpy(rp, rm, sizeof(double) * no);
                    }
                    for (size_t i = 0; i < no && !s; i++) {
                        double lin = c->y[i] + rp[i];
                        o[i] += 0.5 * z1[i];
                        o[WICK_GD1_LIN * no + i] += 0.5 * lin;
                        o[WICK_GD1_RES * no + i] += 0.5 * (z1[i] - lin);
                        o[WICK_GD1_RES2 * no + i] = NAN;
                        o[WICK_GD1_RES3 * no + i] = NAN;
                    }
                    continue;
                }
                s = wick_net64_gd_step(m, &x, tg, 1, eta, NULL);
                if (!s) s = wick_net64_forward(m, &x, 1, z1);
                double e = sg ? -eta : eta, *r = sg ? rm : rp;
                for (size_t i = 0; i < no && !s; i++) {
                    double hz = 0;
                    for (size_t j = 0; j < no; j++) hz += H[i * no + j] * (zm[j] - c->y[j]);
                    r[i] = z1[i] - (zm[i] - e * hz);
                    if (!sg) {
                        o[i] += 0.5 * z1[i];
                        o[WICK_GD1_LIN * no + i] += 0.5 * (zm[i] - e * hz);
                    }
                }
                if (sg && !s)
                    for (size_t i = 0; i < no; i++) {
                        o[2 * no + i] += 0.5 * rp[i];
                        o[3 * no + i] += 0.25 * (rp[i] + rm[i]);
                        o[4 * no + i] += 0.25 * (rp[i] - rm[i]);
                    }
            }
        for (size_t i = 0; i < no; i++) o[no + i] = H[i * no + i];
        if (s) {
            #pragma omp critical(wick_gd1_err)
            if (!fail) { fail = 1; snprintf(msg, sizeof msg, "%s", wick_last_error()); }
        }
    }
    if (fail) { st = wick_fail(WICK_ENUMERIC, "gd1 measure: %s", msg); goto out; }
    /* reductions in pair order: the same for every thread count */
    ex_mean_se(per, M, PER * no, val, se);
out:
    if (nets)
        for (int t = 0; t < nt; t++) wick_net64_free(nets[t]);
    wick_free(nets); wick_free(tbuf); wick_free(per);
    return st;
}

/* Var z(t) across initialisations, one output, on the same mirror pairs.
 * The order-1/n part of a variance is a 1/n fraction of it, so what is
 * fitted is a difference of two variances of nearly equal variables,
 * estimated as one covariance: Var u - Var w = Cov(u - w, u + w), whose
 * per-network spread is that of u - w (order 1/sqrt(n) or 1/n, not 1).
 * Per network: z0 = z(0), zt = z(t), zl = its own frozen-NTK trajectory
 * y + (1 - eta H(0))^t (z0 - y). */
enum { V_Z0 = 0, V_ZT, V_ZL, V_N };

wick_status wick_gd1_var_measure(const wick_gd1_config *c, double at, double *val, double *se) {
    if (!c || !val || !se || !c->y)
        return wick_fail(WICK_EINVAL, "gd1 variance: needs a configuration, a target and outputs");
    size_t M = c->samples, L = (size_t)c->net.depth;
    if (c->net.n0 != 1 || c->net.nout != 1 || M < 2 || L < 1 || c->net.width < 1)
        return wick_fail(WICK_EINVAL, "gd1 variance: needs n0 = 1, one output, depth >= 1 and "
                         ">= 2 pairs (n0 %zu, nout %zu, depth %zu, pairs %zu)", c->net.n0,
                         c->net.nout, L, M);
    if (!(c->eta > 0) || !isfinite(c->eta) || !(c->q >= 0) || !isfinite(c->q) ||
        !isfinite(c->y[0]) || !isfinite(at))
        return wick_fail(WICK_EINVAL, "gd1 variance: eta = %g must be positive, q = %g "
                         "non-negative, the target and a^t = %g finite", c->eta, c->q, at);
    const long T = c->steps > 1 ? c->steps : 1;
    if (T > 1000000) return wick_fail(WICK_EINVAL, "gd1 variance: %ld steps, at most 1e6", T);
    int nt = wick_threads();
    if ((size_t)nt > M) nt = (int)M;
    double *x = wick_malloc(sizeof(double) * 2 * M * V_N);
    wick_net64 **nets = wick_calloc((size_t)nt, sizeof *nets);
    wick_status st = WICK_OK;
    if (!x || !nets) { st = wick_fail(WICK_ENOMEM, "gd1 variance: out of memory"); goto out; }
    for (int t = 0; t < nt; t++)
        if ((st = wick_net64_new(&nets[t], &c->net, 1))) goto out;
    const double xin = sqrt(c->q), eta = c->eta, y = c->y[0];
    int fail = 0;
    char msg[256] = "";
    #pragma omp parallel for num_threads(nt) schedule(dynamic, 1)
    for (size_t k = 0; k < M; k++) {
        if (fail) continue;
        wick_net64 *m = nets[omp_get_thread_num()];
        wick_status s = WICK_OK;
        for (int mir = 0; mir < 2 && !s; mir++) {
            /* the mirror: the same draw with the last layer negated */
            wick_net64_init(m, c->seed, k);
            if (mir) {
                size_t a = c->net.width;
                double *W = wick_net64_weight(m, (int)L), *b = wick_net64_bias(m, (int)L);
                for (size_t q = 0; q < (L == 1 ? 1 : a); q++) W[q] = -W[q];
                b[0] = -b[0];
            }
            double z0, zt, H, *p = x + (2 * k + (size_t)mir) * V_N;
            s = wick_net64_forward(m, &xin, 1, &z0);
            if (!s) s = wick_net64_ntk(m, &xin, 1, 0, &H);
            for (long q = 0; q < T && !s; q++) s = wick_net64_gd_step(m, &xin, &y, 1, eta, NULL);
            if (!s) s = wick_net64_forward(m, &xin, 1, &zt);
            p[V_Z0] = z0; p[V_ZT] = zt;
            p[V_ZL] = y + pow(1 - eta * H, (double)T) * (z0 - y);
        }
        if (s) {
            #pragma omp critical(wick_gd1v_err)
            if (!fail) { fail = 1; snprintf(msg, sizeof msg, "%s", wick_last_error()); }
        }
    }
    if (fail) { st = wick_fail(WICK_ENUMERIC, "gd1 variance: %s", msg); goto out; }
    {
        /* u, v pairs per column of WICK_GD1V_*, on (z0, zt, zl) */
        static const double I[3][V_N] = {{1, 0, 0}, {0, 1, 0}, {0, 0, 1}};
        const double dT[V_N] = {-at, 1, 0}, sT[V_N] = {at, 1, 0};
        const double dL[V_N] = {-at, 0, 1}, sL[V_N] = {at, 0, 1};
        const double dB[V_N] = {0, 1, -1}, sB[V_N] = {0, 1, 1};
        ex_pair_cov(x, M, V_N, I[V_ZT], I[V_ZT], &val[WICK_GD1V_VAR], &se[WICK_GD1V_VAR]);
        ex_pair_cov(x, M, V_N, I[V_Z0], I[V_Z0], &val[WICK_GD1V_VAR0], &se[WICK_GD1V_VAR0]);
        ex_pair_cov(x, M, V_N, dT, sT, &val[WICK_GD1V_EXCESS], &se[WICK_GD1V_EXCESS]);
        ex_pair_cov(x, M, V_N, dL, sL, &val[WICK_GD1V_FROZEN], &se[WICK_GD1V_FROZEN]);
        ex_pair_cov(x, M, V_N, dB, sB, &val[WICK_GD1V_BEYOND], &se[WICK_GD1V_BEYOND]);
        /* the mean of zt, over pair averages */
        double s1 = 0, s2 = 0;
        for (size_t k = 0; k < M; k++) {
            double g = 0.5 * (x[2 * k * V_N + V_ZT] + x[(2 * k + 1) * V_N + V_ZT]);
            s1 += g; s2 += g * g;
        }
        double mu = s1 / (double)M;
        val[WICK_GD1V_MEAN] = mu;
        se[WICK_GD1V_MEAN] = sqrt(fmax(s2 / (double)M - mu * mu, 0) / (double)(M - 1));
    }
out:
    if (nets)
        for (int t = 0; t < nt; t++) wick_net64_free(nets[t]);
    wick_free(nets); wick_free(x);
    return st;
}
