/* gd2.c — full-batch MSE gradient descent on one training input, read at a
 * test input, on real finite-width float64 networks, measured beside
 * wick_gd_mean_test (docs/theory-finite-width.md, "the mean at a test
 * input").  The variance-reduction devices of gd1.c: each network is paired
 * with its mirror (last layer negated: z -> -z, H unchanged), which cancels
 * every term odd in z exactly; each network's own frozen-NTK trajectory
 * z_lin(t) = z(0) - eta H_ba(0) sum_s (1 - eta H_aa(0))^s (z_a(0) - y) is
 * subtracted, so the residual's spread is of order 1/n; and at t = 1 each
 * network is also stepped at -eta, which splits the residual into its
 * eta^2 and eta^3 parts. */
#include "experiments.h"
#include <math.h>
#include <omp.h>
#include <string.h>

enum { PER = WICK_GDT_COUNT };

wick_status wick_gd_test_measure(const wick_gd_test_config *c, double *val, double *se) {
    if (!c || !val || !se)
        return wick_fail(WICK_EINVAL, "test-input gd measure: needs a configuration and outputs");
    size_t M = c->samples, L = (size_t)c->net.depth, n = c->net.width;
    if (c->net.n0 != 2 || c->net.nout != 1 || M < 2 || L < 1 || n < 1)
        return wick_fail(WICK_EINVAL, "test-input gd measure: needs n0 = 2, one output, depth >= 1 "
                         "and >= 2 pairs (n0 %zu, nout %zu, depth %zu, pairs %zu)", c->net.n0,
                         c->net.nout, L, M);
    if (!(c->eta > 0) || !isfinite(c->eta) || !isfinite(c->y))
        return wick_fail(WICK_EINVAL, "test-input gd measure: eta = %g must be positive and y = %g "
                         "finite", c->eta, c->y);
    const double *G0 = c->G0;
    if (!(G0[0] > 0) || G0[1] != G0[2] || !(G0[3] * G0[0] - G0[1] * G0[1] >= 0))
        return wick_fail(WICK_EINVAL, "test-input gd measure: the input Gram is not symmetric "
                         "positive semi-definite with G0_00 > 0");
    const long T = c->steps;
    if (T == 0 || T < -1 || T > 1000000)
        return wick_fail(WICK_EINVAL, "test-input gd measure: %ld steps, expected 1..1e6 or -1 "
                         "(fully trained)", T);
    /* the inputs' rows: the Cholesky factor of n0 G0 (G0 = x x^T / n0) */
    double xr[2][2];
    ex_two_inputs(G0, xr);
    const double x[4] = {xr[0][0], xr[0][1], xr[1][0], xr[1][1]};
    size_t np = 0;
    for (size_t l = 1; l <= L; l++) {
        size_t a = l == L ? 1 : n, b = l == 1 ? 2 : n;
        np += a * b + a;
    }
    int nt = wick_threads();
    if ((size_t)nt > M) nt = (int)M;
    double *per = wick_malloc(sizeof(double) * M * PER);
    double *tbuf = wick_malloc(sizeof(double) * np * (size_t)nt);
    wick_net64 **nets = wick_calloc((size_t)nt, sizeof *nets);
    wick_status st = WICK_OK;
    if (!per || !tbuf || !nets) { st = wick_fail(WICK_ENOMEM, "test-input gd measure: out of memory"); goto out; }
    for (int t = 0; t < nt; t++)
        if ((st = wick_net64_new(&nets[t], &c->net, 2))) goto out;
    const double eta = c->eta, y = c->y;
    int fail = 0;
    char msg[256] = "";
    #pragma omp parallel for num_threads(nt) schedule(dynamic, 1)
    for (size_t k = 0; k < M; k++) {
        if (fail) continue;
        int t = omp_get_thread_num();
        wick_net64 *m = nets[t];
        double *par = tbuf + np * (size_t)t, z0[2], z1[2], H[4];
        double *o = per + k * PER;
        memset(o, 0, sizeof(double) * PER);
        wick_net64_init(m, c->seed, k);
        wick_status s = wick_net64_forward(m, x, 2, z0);
        if (!s) s = wick_net64_ntk(m, x, 2, 0, H);
        size_t off = 0;
        for (int l = 1; l <= (int)L; l++) {
            size_t a = l == (int)L ? 1 : n, b = l == 1 ? 2 : n;
            memcpy(par + off, wick_net64_weight(m, l), sizeof(double) * a * b); off += a * b;
            memcpy(par + off, wick_net64_bias(m, l), sizeof(double) * a); off += a;
        }
        double rp[2] = {0, 0};
        long used = 0;
        for (int mir = 0; mir < 2 && !s; mir++)
            for (int sg = 0; sg < (T == 1 ? 2 : 1) && !s; sg++) {
                off = 0;
                for (int l = 1; l <= (int)L; l++) {
                    size_t a = l == (int)L ? 1 : n, b = l == 1 ? 2 : n;
                    double *W = wick_net64_weight(m, l), *bb = wick_net64_bias(m, l);
                    double f = mir && l == (int)L ? -1.0 : 1.0;
                    for (size_t q = 0; q < a * b; q++) W[q] = f * par[off + q];
                    off += a * b;
                    for (size_t q = 0; q < a; q++) bb[q] = f * par[off + q];
                    off += a;
                }
                double za = mir ? -z0[0] : z0[0], zb = mir ? -z0[1] : z0[1];
                /* a step at -eta toward y is the step at +eta toward 2 z(0) - y */
                double tg = sg ? 2 * za - y : y, e = sg ? -eta : eta;
                long steps = 0;
                s = ex_gd_train(m, x, 2, &tg, 1, eta, T, k, z1, &steps);   /* sg only at T = 1 */
                if (s) break;
                used += steps;
                /* this network's own frozen-NTK trajectory: e_a(t) = (1 - e H_aa)^t e_a(0),
                 * z_b(t) = z_b(0) - e H_ba sum_s e_a(s); fully trained, sum_s e_a(s) =
                 * e_a(0) / (e H_aa) */
                double ea = za - y, sum = 0;
                if (T > 0) {
                    for (long q = 0; q < T; q++) { sum += ea; ea -= e * H[0] * ea; }
                } else {
                    sum = ea / (e * H[0]);
                    ea = 0;
                }
                double lina = y + ea, linb = zb - e * H[2] * sum;
                double ra = z1[0] - lina, rb = z1[1] - linb;
                if (!sg) {
                    o[WICK_GDT_MEAN] += 0.5 * z1[1];
                    o[WICK_GDT_LIN] += 0.5 * linb;
                    o[WICK_GDT_RES] += 0.5 * rb;
                    o[WICK_GDT_TRAIN_RES] += 0.5 * ra;
                    rp[mir] = rb;
                } else {
                    o[WICK_GDT_RES2] += 0.25 * (rp[mir] + rb);
                    o[WICK_GDT_RES3] += 0.25 * (rp[mir] - rb);
                }
            }
        if (T != 1) { o[WICK_GDT_RES2] = NAN; o[WICK_GDT_RES3] = NAN; }
        o[WICK_GDT_NTK_AA] = H[0];
        o[WICK_GDT_NTK_BA] = H[2];
        o[WICK_GDT_STEPS] = 0.5 * (double)used;
        if (s) {
            #pragma omp critical(wick_gdt_err)
            if (!fail) { fail = 1; snprintf(msg, sizeof msg, "%s", wick_last_error()); }
        }
    }
    if (fail) { st = wick_fail(WICK_ENUMERIC, "test-input gd measure: %s", msg); goto out; }
    /* reductions in pair order: the same for every thread count */
    ex_mean_se(per, M, PER, val, se);
out:
    if (nets)
        for (int t = 0; t < nt; t++) wick_net64_free(nets[t]);
    wick_free(nets); wick_free(tbuf); wick_free(per);
    return st;
}
