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
    for (size_t q = 0; q < PER * no; q++) {
        double s = 0, v = 0;
        for (size_t k = 0; k < M; k++) s += per[k * PER * no + q];
        double mu = s / (double)M;
        for (size_t k = 0; k < M; k++) {
            double d = per[k * PER * no + q] - mu;
            v += d * d;
        }
        val[q] = mu;
        se[q] = sqrt(v / (double)(M - 1) / (double)M);
    }
out:
    if (nets)
        for (int t = 0; t < nt; t++) wick_net64_free(nets[t]);
    wick_free(nets); wick_free(tbuf); wick_free(per);
    return st;
}
