/* gd3.c — full-batch MSE gradient descent on several training inputs (the
 * first nt of m inputs), read at every input, on real finite-width float64
 * networks, measured beside wick_gd_mean_multi (docs/theory-finite-width.md,
 * "several training inputs").  gd2.c's variance-reduction devices: mirror
 * pairs (last layer negated: z -> -z, H unchanged) cancel every term odd in
 * z; each network's own frozen-NTK trajectory
 *   e(s+1) = (1 - eta H_TT(0)) e(s),  z_lin,a(t) = z_a(0) - eta H_aT(0) sum_s e(s)
 * (fully trained: sum_s e(s) = (eta H_TT)^-1 e(0)) is subtracted, so the
 * residual's spread is of order 1/n; at t = 1 each network also steps at
 * -eta, which splits the residual into its eta^2 and eta^3 parts. */
#include "experiments.h"
#include <math.h>
#include <omp.h>
#include <string.h>

#define MI WICK_GDM_MAX

/* rows x_a (n0 = m) with x_a . x_b / m = G0_ab: the Cholesky factor of m G0 */
static int input_rows(const double *G0, int m, double x[MI][MI]) {
    memset(x, 0, sizeof(double) * MI * MI);
    for (int i = 0; i < m; i++)
        for (int j = 0; j <= i; j++) {
            double s = m * G0[i * m + j];
            for (int k = 0; k < j; k++) s -= x[i][k] * x[j][k];
            if (i == j) {
                if (!(s > 0)) return 0;
                x[i][i] = sqrt(s);
            } else x[i][j] = s / x[j][j];
        }
    return 1;
}

wick_status wick_gd_multi_measure(const wick_gd_multi_config *c, double *val, double *se) {
    if (!c || !val || !se)
        return wick_fail(WICK_EINVAL, "several-input gd measure: needs a configuration and outputs");
    const int m = c->m, nt = c->nt;
    size_t M = c->samples, L = (size_t)c->net.depth, n = c->net.width;
    if (m < 2 || m > MI || nt < 1 || nt > 2 || nt > m)
        return wick_fail(WICK_EINVAL, "several-input gd measure: %d inputs with %d training, "
                         "expected 2..%d inputs and 1..2 training", m, nt, MI);
    if (c->net.n0 != (size_t)m || c->net.nout != 1 || M < 2 || L < 1 || n < 1)
        return wick_fail(WICK_EINVAL, "several-input gd measure: needs n0 = m = %d, one output, "
                         "depth >= 1 and >= 2 pairs (n0 %zu, nout %zu, depth %zu, pairs %zu)", m,
                         c->net.n0, c->net.nout, L, M);
    if (!(c->eta > 0) || !isfinite(c->eta) || !isfinite(c->y[0]) || !isfinite(c->y[nt - 1]))
        return wick_fail(WICK_EINVAL, "several-input gd measure: eta = %g must be positive and "
                         "the targets finite", c->eta);
    double xr[MI][MI];
    for (int a = 0; a < m; a++)
        for (int b = 0; b < a; b++)
            if (c->G0[a * m + b] != c->G0[b * m + a])
                return wick_fail(WICK_EINVAL, "several-input gd measure: the input Gram is not symmetric");
    if (!input_rows(c->G0, m, xr))
        return wick_fail(WICK_EINVAL, "several-input gd measure: the input Gram is not positive "
                         "definite");
    const long T = c->steps;
    if (T == 0 || T < -1 || T > 1000000)
        return wick_fail(WICK_EINVAL, "several-input gd measure: %ld steps, expected 1..1e6 or -1 "
                         "(fully trained)", T);
    double x[MI * MI];
    for (int a = 0; a < m; a++)
        for (int j = 0; j < m; j++) x[a * m + j] = xr[a][j];
    const int PER = m * WICK_GDM_PER + 1;
    size_t np = 0;
    for (size_t l = 1; l <= L; l++) {
        size_t a = l == L ? 1 : n, b = l == 1 ? (size_t)m : n;
        np += a * b + a;
    }
    int nth = wick_threads();
    if ((size_t)nth > M) nth = (int)M;
    double *per = wick_malloc(sizeof(double) * M * (size_t)PER);
    double *tbuf = wick_malloc(sizeof(double) * np * (size_t)nth);
    wick_net64 **nets = wick_calloc((size_t)nth, sizeof *nets);
    wick_status st = WICK_OK;
    if (!per || !tbuf || !nets) { st = wick_fail(WICK_ENOMEM, "several-input gd measure: out of memory"); goto out; }
    for (int t = 0; t < nth; t++)
        if ((st = wick_net64_new(&nets[t], &c->net, m))) goto out;
    const double eta = c->eta;
    int fail = 0;
    char msg[256] = "";
    #pragma omp parallel for num_threads(nth) schedule(dynamic, 1)
    for (size_t k = 0; k < M; k++) {
        if (fail) continue;
        int t = omp_get_thread_num();
        wick_net64 *net = nets[t];
        double *par = tbuf + np * (size_t)t, z0[MI], z1[MI], H[MI * MI];
        double *o = per + k * (size_t)PER;
        memset(o, 0, sizeof(double) * (size_t)PER);
        wick_net64_init(net, c->seed, k);
        wick_status s = wick_net64_forward(net, x, (size_t)m, z0);
        if (!s) s = wick_net64_ntk(net, x, (size_t)m, 0, H);
        size_t off = 0;
        for (int l = 1; l <= (int)L; l++) {
            size_t a = l == (int)L ? 1 : n, b = l == 1 ? (size_t)m : n;
            memcpy(par + off, wick_net64_weight(net, l), sizeof(double) * a * b); off += a * b;
            memcpy(par + off, wick_net64_bias(net, l), sizeof(double) * a); off += a;
        }
        double rp[2][MI];
        long used = 0;
        for (int mir = 0; mir < 2 && !s; mir++)
            for (int sg = 0; sg < (T == 1 ? 2 : 1) && !s; sg++) {
                off = 0;
                for (int l = 1; l <= (int)L; l++) {
                    size_t a = l == (int)L ? 1 : n, b = l == 1 ? (size_t)m : n;
                    double *W = wick_net64_weight(net, l), *bb = wick_net64_bias(net, l);
                    double f = mir && l == (int)L ? -1.0 : 1.0;
                    for (size_t q = 0; q < a * b; q++) W[q] = f * par[off + q];
                    off += a * b;
                    for (size_t q = 0; q < a; q++) bb[q] = f * par[off + q];
                    off += a;
                }
                double za[MI], tg[2];
                for (int a = 0; a < m; a++) za[a] = mir ? -z0[a] : z0[a];
                /* a step at -eta toward y is the step at +eta toward 2 z(0) - y */
                for (int b = 0; b < nt; b++) tg[b] = sg ? 2 * za[b] - c->y[b] : c->y[b];
                const double e = sg ? -eta : eta;
                long steps = 0;
                s = ex_gd_train(net, x, (size_t)m, tg, (size_t)nt, eta, T, k, z1, &steps);   /* sg only at T = 1 */
                if (s) break;
                used += steps;
                /* this network's own frozen-NTK trajectory */
                double ea[2], sum[2] = {0, 0};
                for (int b = 0; b < nt; b++) ea[b] = za[b] - c->y[b];
                if (T > 0) {
                    for (long q = 0; q < T; q++) {
                        double nx[2];
                        for (int b = 0; b < nt; b++) {
                            sum[b] += ea[b];
                            nx[b] = ea[b];
                            for (int cc = 0; cc < nt; cc++) nx[b] -= e * H[b * m + cc] * ea[cc];
                        }
                        for (int b = 0; b < nt; b++) ea[b] = nx[b];
                    }
                } else {
                    if (nt == 1) sum[0] = ea[0] / (e * H[0]);
                    else {
                        double h00 = H[0], h01 = H[1], h10 = H[m], h11 = H[m + 1];
                        double det = e * (h00 * h11 - h01 * h10);
                        sum[0] = (h11 * ea[0] - h01 * ea[1]) / det;
                        sum[1] = (-h10 * ea[0] + h00 * ea[1]) / det;
                    }
                    ea[0] = ea[1] = 0;
                }
                for (int a = 0; a < m; a++) {
                    double lin = za[a];
                    for (int b = 0; b < nt; b++) lin -= e * H[a * m + b] * sum[b];
                    double r = z1[a] - lin;
                    double *oa = o + a * WICK_GDM_PER;
                    if (!sg) {
                        oa[WICK_GDM_MEAN] += 0.5 * z1[a];
                        oa[WICK_GDM_LIN] += 0.5 * lin;
                        oa[WICK_GDM_RES] += 0.5 * r;
                        rp[mir][a] = r;
                    } else {
                        oa[WICK_GDM_RES2] += 0.25 * (rp[mir][a] + r);
                        oa[WICK_GDM_RES3] += 0.25 * (rp[mir][a] - r);
                    }
                }
            }
        if (T != 1)
            for (int a = 0; a < m; a++) o[a * WICK_GDM_PER + WICK_GDM_RES2] = o[a * WICK_GDM_PER + WICK_GDM_RES3] = NAN;
        o[m * WICK_GDM_PER] = 0.5 * (double)used;
        if (s) {
            #pragma omp critical(wick_gdm_err)
            if (!fail) { fail = 1; snprintf(msg, sizeof msg, "%s", wick_last_error()); }
        }
    }
    if (fail) { st = wick_fail(WICK_ENUMERIC, "several-input gd measure: %s", msg); goto out; }
    /* reductions in pair order: the same for every thread count */
    ex_mean_se(per, M, (size_t)PER, val, se);
out:
    if (nets)
        for (int t = 0; t < nth; t++) wick_net64_free(nets[t]);
    wick_free(nets); wick_free(tbuf); wick_free(per);
    return st;
}
