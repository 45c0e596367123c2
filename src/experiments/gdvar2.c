/* gdvar2.c — the variance across initialisations at a TEST input after
 * full-batch MSE gradient descent on one training input, on real
 * finite-width float64 networks, measured beside wick_gd_var_test
 * (docs/theory-finite-width.md, "the variance at a test input").  The
 * networks, mirror pairs and frozen-NTK trajectories of wick_gd_test_measure
 * (gd2.c); the variances as wick_gd1_var_measure's (gd1.c): each difference
 * of two variances is one covariance, Var u - Var w = Cov(u - w, u + w), so
 * its error is that of u - w, of order 1/n for the part beyond the frozen
 * NTK and 1/sqrt(n) for the frozen NTK's own. */
#include "experiments.h"
#include <math.h>
#include <omp.h>
#include <string.h>

enum { C_ZA = 0, C_ZB, C_ZT, C_ZL, C_N };

wick_status wick_gd_test_var_measure(const wick_gd_test_config *c, double cinf, double *val,
                                     double *se) {
    if (!c || !val || !se)
        return wick_fail(WICK_EINVAL, "test-input gd variance: needs a configuration and outputs");
    size_t M = c->samples, L = (size_t)c->net.depth, n = c->net.width;
    if (c->net.n0 != 2 || c->net.nout != 1 || M < 2 || L < 1 || n < 1)
        return wick_fail(WICK_EINVAL, "test-input gd variance: needs n0 = 2, one output, depth >= 1 "
                         "and >= 2 pairs (n0 %zu, nout %zu, depth %zu, pairs %zu)", c->net.n0,
                         c->net.nout, L, M);
    if (!(c->eta > 0) || !isfinite(c->eta) || !isfinite(c->y) || !isfinite(cinf))
        return wick_fail(WICK_EINVAL, "test-input gd variance: eta = %g must be positive, y = %g "
                         "and c = %g finite", c->eta, c->y, cinf);
    const double *G0 = c->G0;
    if (!(G0[0] > 0) || G0[1] != G0[2] || !(G0[3] * G0[0] - G0[1] * G0[1] >= 0))
        return wick_fail(WICK_EINVAL, "test-input gd variance: the input Gram is not symmetric "
                         "positive semi-definite with G0_00 > 0");
    const long T = c->steps;
    if (T == 0 || T < -1 || T > 1000000)
        return wick_fail(WICK_EINVAL, "test-input gd variance: %ld steps, expected 1..1e6 or -1 "
                         "(fully trained)", T);
    double xr[2][2];
    ex_two_inputs(G0, xr);
    const double x[4] = {xr[0][0], xr[0][1], xr[1][0], xr[1][1]};
    int nt = wick_threads();
    if ((size_t)nt > M) nt = (int)M;
    double *col = wick_malloc(sizeof(double) * 2 * M * C_N);
    double *stp = wick_malloc(sizeof(double) * M);
    wick_net64 **nets = wick_calloc((size_t)nt, sizeof *nets);
    wick_status st = WICK_OK;
    if (!col || !stp || !nets) { st = wick_fail(WICK_ENOMEM, "test-input gd variance: out of memory"); goto out; }
    for (int t = 0; t < nt; t++)
        if ((st = wick_net64_new(&nets[t], &c->net, 2))) goto out;
    const double eta = c->eta, y = c->y;
    int fail = 0;
    char msg[256] = "";
    #pragma omp parallel for num_threads(nt) schedule(dynamic, 1)
    for (size_t k = 0; k < M; k++) {
        if (fail) continue;
        wick_net64 *m = nets[omp_get_thread_num()];
        wick_status s = WICK_OK;
        long used = 0;
        for (int mir = 0; mir < 2 && !s; mir++) {
            /* the mirror: the same draw with the last layer negated (z -> -z, H unchanged) */
            wick_net64_init(m, c->seed, k);
            if (mir) {
                size_t a = L == 1 ? 2 : n;
                double *W = wick_net64_weight(m, (int)L), *b = wick_net64_bias(m, (int)L);
                for (size_t q = 0; q < a; q++) W[q] = -W[q];
                b[0] = -b[0];
            }
            double z0[2], z1[2], H[4], *p = col + (2 * k + (size_t)mir) * C_N;
            s = wick_net64_forward(m, x, 2, z0);
            if (!s) s = wick_net64_ntk(m, x, 2, 0, H);
            long steps = 0;
            if (!s) s = ex_gd_train(m, x, 2, &y, 1, eta, T, k, z1, &steps);
            if (s) break;
            used += steps;
            /* this network's own frozen-NTK trajectory, as wick_gd_test_measure's */
            double ea = z0[0] - y, sum = 0;
            if (T > 0) {
                for (long q = 0; q < T; q++) { sum += ea; ea -= eta * H[0] * ea; }
            } else {
                sum = ea / (eta * H[0]);
            }
            p[C_ZA] = z0[0]; p[C_ZB] = z0[1]; p[C_ZT] = z1[1];
            p[C_ZL] = z0[1] - eta * H[2] * sum;
        }
        stp[k] = 0.5 * (double)used;
        if (s) {
            #pragma omp critical(wick_gdtv_err)
            if (!fail) { fail = 1; snprintf(msg, sizeof msg, "%s", wick_last_error()); }
        }
    }
    if (fail) { st = wick_fail(WICK_ENUMERIC, "test-input gd variance: %s", msg); goto out; }
    {
        /* u, w per column; w = z_b(0) - cinf z_a(0) (+ const), the frozen
         * infinite-width NTK's trajectory on each network's own z(0) */
        static const double I[C_N][C_N] = {{1, 0, 0, 0}, {0, 1, 0, 0}, {0, 0, 1, 0}, {0, 0, 0, 1}};
        const double w[C_N] = {-cinf, 1, 0, 0};
        double du[C_N], sv[C_N];
        ex_pair_cov(col, M, C_N, I[C_ZT], I[C_ZT], &val[WICK_GDTV_VAR], &se[WICK_GDTV_VAR]);
        ex_pair_cov(col, M, C_N, w, w, &val[WICK_GDTV_GP], &se[WICK_GDTV_GP]);
        for (int q = 0; q < C_N; q++) { du[q] = I[C_ZL][q] - w[q]; sv[q] = I[C_ZL][q] + w[q]; }
        ex_pair_cov(col, M, C_N, du, sv, &val[WICK_GDTV_FROZEN], &se[WICK_GDTV_FROZEN]);
        for (int q = 0; q < C_N; q++) { du[q] = I[C_ZT][q] - I[C_ZL][q]; sv[q] = I[C_ZT][q] + I[C_ZL][q]; }
        ex_pair_cov(col, M, C_N, du, sv, &val[WICK_GDTV_BEYOND], &se[WICK_GDTV_BEYOND]);
        for (int q = 0; q < C_N; q++) { du[q] = I[C_ZT][q] - w[q]; sv[q] = I[C_ZT][q] + w[q]; }
        ex_pair_cov(col, M, C_N, du, sv, &val[WICK_GDTV_EXCESS], &se[WICK_GDTV_EXCESS]);
        double s1 = 0, s2 = 0, ss = 0;
        for (size_t k = 0; k < M; k++) {
            double g = 0.5 * (col[2 * k * C_N + C_ZT] + col[(2 * k + 1) * C_N + C_ZT]);
            s1 += g; s2 += g * g; ss += stp[k];
        }
        double mu = s1 / (double)M;
        val[WICK_GDTV_MEAN] = mu;
        se[WICK_GDTV_MEAN] = sqrt(fmax(s2 / (double)M - mu * mu, 0) / (double)(M - 1));
        val[WICK_GDTV_STEPS] = ss / (double)M;
        se[WICK_GDTV_STEPS] = 0;
    }
out:
    if (nets)
        for (int t = 0; t < nt; t++) wick_net64_free(nets[t]);
    wick_free(nets); wick_free(stp); wick_free(col);
    return st;
}
