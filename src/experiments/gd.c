/* gd.c — finite-width networks trained by full-batch gradient descent beside
 * the infinite-width frozen-NTK prediction (the book's ch. 10), and the motion of
 * their NTK during training (ch. 11; docs/experiments.md). */
#include "experiments.h"
#include <lapacke.h>
#include <math.h>
#include <omp.h>
#include <string.h>

void wick_gd_ensemble_free(wick_gd_ensemble_result *r) {
    if (!r) return;
    wick_free(r->mean); wick_free(r->var); wick_free(r->mean_theory); wick_free(r->var_theory);
    wick_free(r);
}

wick_status ex_gd_train(wick_net64 *m, const double *x, size_t nx, const double *tg, size_t nt, double eta,
                        long T, size_t k, double *z, long *steps) {
    wick_status s = WICK_OK;
    long n = 0;
    if (T > 0) {
        for (; n < T && !s; n++) s = wick_net64_gd_step(m, x, tg, nt, eta, NULL);
        if (!s) s = wick_net64_forward(m, x, nx, z);
        *steps = n;
        return s;
    }
    for (; n < 1000000 && !s; n++) {
        s = wick_net64_gd_step(m, x, tg, nt, eta, NULL);
        if (!s && n % 8 == 7) {
            s = wick_net64_forward(m, x, nx, z);
            double r = 0;
            for (size_t b = 0; b < nt; b++) r = fmax(r, fabs(z[b] - tg[b]) / (1 + fabs(tg[b])));
            if (r <= 1e-14) { n++; break; }
        }
    }
    if (!s) s = wick_net64_forward(m, x, nx, z);
    for (size_t b = 0; b < nt && !s; b++)
        if (!(fabs(z[b] - tg[b]) <= 1e-12 * (1 + fabs(tg[b]))))
            s = wick_fail(WICK_ENUMERIC, "network %zu did not converge in %ld steps", k, n);
    *steps = n;
    return s;
}

static double frob_diff(const double *a, const double *b, size_t n) {
    double s = 0;
    for (size_t i = 0; i < n; i++) s += (a[i] - (b ? b[i] : 0)) * (a[i] - (b ? b[i] : 0));
    return sqrt(s);
}

/* per network: z_B(T) (nB*nout), then gap, ntk change, init deviation, loss,
 * and the loss the frozen-NTK prediction gives from its z(0) */
#define PER_EXTRA 5

wick_status wick_gd_ensemble(const wick_gd_ensemble_config *c, wick_gd_ensemble_result **out) {
    *out = NULL;
    if (!c || !c->xA || !c->yA || c->nA < 1 || (c->nB && !c->xB))
        return wick_fail(WICK_EINVAL, "gd ensemble: needs training inputs and targets");
    if (c->samples < 2) return wick_fail(WICK_EINVAL, "gd ensemble: %zu networks, expected at least 2", c->samples);
    if (c->nB < 1) return wick_fail(WICK_EINVAL, "gd ensemble: no test inputs");
    if (c->steps < 0) return wick_fail(WICK_EINVAL, "gd ensemble: %ld steps", c->steps);
    if (c->nprobe < 1 || c->nprobe > c->nA || c->nprobe > 64)
        return wick_fail(WICK_EINVAL, "gd ensemble: %zu probe inputs, expected 1..min(64, %zu)",
                         c->nprobe, c->nA);
    if (c->antithetic && c->samples % 2)
        return wick_fail(WICK_EINVAL, "gd ensemble: antithetic pairs need an even number of "
                         "networks, not %zu", c->samples);
    if (!wick_act_has_derivative(c->net.act))
        return wick_fail(WICK_EINVAL, "gd ensemble: %s has no derivative", wick_act_name(c->net.act));
    size_t nA = c->nA, nB = c->nB, n = nA + nB, no = c->net.nout, n0 = c->net.n0, M = c->samples;
    size_t np = c->nprobe * no, L = (size_t)c->net.depth;
    int nt = wick_threads();
    if ((size_t)nt > M) nt = (int)M;
    double t0 = omp_get_wtime();
    wick_status st = WICK_OK;
    size_t per_n = nB * no + PER_EXTRA;
    double *x = wick_malloc(sizeof(double) * n * n0);
    double *G0 = wick_malloc(sizeof(double) * n * n);
    double *K = wick_malloc(sizeof(double) * n * n * L), *T = wick_malloc(sizeof(double) * n * n * L);
    double *KL = wick_malloc(sizeof(double) * n * n), *TL = wick_malloc(sizeof(double) * n * n);
    double *Tp = wick_malloc(sizeof(double) * np * np);
    double *per = wick_malloc(sizeof(double) * M * per_n);
    size_t tb = 2 * n * no + 2 * np * np;          /* per thread: z0, zpred, H0, HT */
    double *tbuf = wick_malloc(sizeof(double) * tb * (size_t)nt);
    wick_net64 **nets = wick_calloc((size_t)nt, sizeof *nets);
    wick_gd_ensemble_result *r = wick_calloc(1, sizeof *r);
    if (r) {
        r->mean = wick_malloc(sizeof(double) * nB * no); r->var = wick_malloc(sizeof(double) * nB * no);
        r->mean_theory = wick_malloc(sizeof(double) * nB * no);
        r->var_theory = wick_malloc(sizeof(double) * nB * no);
    }
    if (!x || !G0 || !K || !T || !KL || !TL || !Tp || !per || !tbuf || !nets || !r || !r->mean ||
        !r->var || !r->mean_theory || !r->var_theory) {
        st = wick_fail(WICK_ENOMEM, "gd ensemble: out of memory (%zu inputs)", n);
        goto out;
    }
    memcpy(x, c->xA, sizeof(double) * nA * n0);
    memcpy(x + nA * n0, c->xB, sizeof(double) * nB * n0);

    /* the theory: last layer's K and Theta over training then test inputs */
    {
        wick_theory_config tc = wick_theory_defaults(c->net.act, c->net.depth);
        tc.cb = c->net.cb; tc.cw = c->net.cw;
        tc.lambda_b = c->net.lambda_b; tc.lambda_w = c->net.lambda_w;
        tc.width = c->net.width;
        tc.tabulate = 1;
        if ((st = wick_input_gram(x, n, n0, G0)) || (st = wick_gram_flow(&tc, G0, n, K, T))) goto out;
        memcpy(KL, K + (L - 1) * n * n, sizeof(double) * n * n);
        memcpy(TL, T + (L - 1) * n * n, sizeof(double) * n * n);
    }
    /* Theta on the probes, as the empirical H is laid out: (a, i) x (b, j) */
    for (size_t a = 0; a < c->nprobe; a++)
        for (size_t i = 0; i < no; i++)
            for (size_t b = 0; b < c->nprobe; b++)
                for (size_t j = 0; j < no; j++)
                    Tp[(a * no + i) * np + b * no + j] = i == j ? TL[a * n + b] : 0.0;
    /* lambda_max(Theta_AA): the default rate and the bound of convergence */
    double eta = c->eta, lmax = NAN;
    {
        double *Q = wick_malloc(sizeof(double) * nA * nA), *lam = wick_malloc(sizeof(double) * nA);
        if (!Q || !lam) { wick_free(Q); wick_free(lam); st = wick_fail(WICK_ENOMEM, "gd ensemble: out of memory"); goto out; }
        for (size_t i = 0; i < nA; i++)
            for (size_t j = 0; j < nA; j++) Q[i * nA + j] = TL[i * n + j];
        lapack_int info = LAPACKE_dsyev(LAPACK_ROW_MAJOR, 'N', 'U', (lapack_int)nA, Q, (lapack_int)nA, lam);
        if (info == 0 && lam[nA - 1] > 0) lmax = lam[nA - 1];
        wick_free(Q); wick_free(lam);
        if (!isfinite(lmax)) { st = wick_fail(WICK_ENUMERIC, "gd ensemble: no lambda_max of Theta_AA"); goto out; }
    }
    if (!(eta > 0)) eta = 0.5 / lmax;
    if (!(eta * lmax < 2)) {
        st = wick_fail(WICK_EINVAL, "gd ensemble: eta = %g is at or above 2/lambda_max(Theta_AA) = %g: "
                       "gradient descent would not converge", eta, 2 / lmax);
        goto out;
    }
    /* the ensemble prediction (z(0) ~ GP(0, K)) at t = T */
    {
        double *cov = wick_malloc(sizeof(double) * nB * nB);
        if (!cov) { st = wick_fail(WICK_ENOMEM, "gd ensemble: out of memory"); goto out; }
        st = wick_gd_predict(TL, KL, nA, nB, c->yA, no, eta, c->steps, NULL, NULL, r->mean_theory, cov);
        for (size_t b = 0; b < nB && !st; b++)
            for (size_t i = 0; i < no; i++) r->var_theory[b * no + i] = cov[b * nB + b];
        wick_free(cov);
        if (st) goto out;
    }
    for (int t = 0; t < nt; t++)
        if ((st = wick_net64_new(&nets[t], &c->net, (int)(n > 1 ? n : 1)))) goto out;

    int fail = 0;
    char msg[256] = "";
    #pragma omp parallel for num_threads(nt) schedule(dynamic, 1)
    for (size_t k = 0; k < M; k++) {
        if (fail) continue;
        int t = omp_get_thread_num();
        wick_net64 *m = nets[t];
        double *z0 = tbuf + tb * (size_t)t, *zp = z0 + n * no, *H0 = zp + n * no, *HT = H0 + np * np;
        double *o = per + k * per_n;
        wick_status s = WICK_OK;
        wick_net64_init(m, c->seed, c->antithetic ? k / 2 : k);
        if (c->antithetic && k % 2) {
            /* the mirror network: z(0) -> -z(0), the NTK unchanged (every
             * gradient flips sign or not at all, pairwise products stay) */
            double *WL = wick_net64_weight(m, c->net.depth), *bL = wick_net64_bias(m, c->net.depth);
            for (size_t q = 0; q < no * (L > 1 ? c->net.width : n0); q++) WL[q] = -WL[q];
            for (size_t q = 0; q < no; q++) bL[q] = -bL[q];
        }
        if (!s) s = wick_net64_forward(m, x, n, z0);
        if (!s) s = wick_net64_ntk(m, c->xA, c->nprobe, 0, H0);
        for (long step = 0; step < c->steps && !s; step++)
            s = wick_net64_gd_step(m, c->xA, c->yA, nA, eta, NULL);
        double *zT = zp;   /* measured z(T) for every input, then overwritten below */
        if (!s) s = wick_net64_forward(m, x, n, zT);
        if (!s) s = wick_net64_ntk(m, c->xA, c->nprobe, 0, HT);
        double loss = 0;
        for (size_t q = 0; q < nA * no && !s; q++) loss += 0.5 * (zT[q] - c->yA[q]) * (zT[q] - c->yA[q]);
        if (!s) memcpy(o, zT + nA * no, sizeof(double) * nB * no);
        /* the frozen-NTK prediction given this network's own z(0) */
        if (!s) s = wick_gd_predict(TL, NULL, nA, nB, c->yA, no, eta, c->steps, z0, zp, NULL, NULL);
        if (s) {
            #pragma omp critical(wick_gd_err)
            if (!fail) { fail = 1; snprintf(msg, sizeof msg, "%s", wick_last_error()); }
            continue;
        }
        double num = 0, den = 0;
        for (size_t q = 0; q < nB * no; q++) {
            double d = o[q] - zp[nA * no + q], e = zp[nA * no + q] - z0[nA * no + q];
            num += d * d; den += e * e;
        }
        o[nB * no] = den > 0 ? sqrt(num / den) : NAN;
        o[nB * no + 1] = frob_diff(HT, H0, np * np) / frob_diff(H0, NULL, np * np);
        o[nB * no + 2] = frob_diff(H0, Tp, np * np) / frob_diff(Tp, NULL, np * np);
        o[nB * no + 3] = loss;
        double lp = 0;
        for (size_t q = 0; q < nA * no; q++) lp += 0.5 * (zp[q] - c->yA[q]) * (zp[q] - c->yA[q]);
        o[nB * no + 4] = lp;
    }
    if (fail) { st = wick_fail(WICK_ENUMERIC, "gd ensemble: %s", msg); goto out; }

    /* reductions in network order */
    double Md = (double)M, vsum = 0, msq = 0, tsq = 0, vdev = 0, vth = 0;
    for (size_t q = 0; q < nB * no; q++) {
        double s = 0, v = 0;
        for (size_t k = 0; k < M; k++) s += per[k * per_n + q];
        double mu = s / Md;
        for (size_t k = 0; k < M; k++) v += (per[k * per_n + q] - mu) * (per[k * per_n + q] - mu);
        v /= Md - 1;
        r->mean[q] = mu;
        r->var[q] = v;
        vsum += v;
        msq += (mu - r->mean_theory[q]) * (mu - r->mean_theory[q]);
        tsq += r->mean_theory[q] * r->mean_theory[q];
        vdev += fabs(v - r->var_theory[q]);
        vth += r->var_theory[q];
    }
    r->gap_mean = sqrt(msq / tsq);
    r->gap_mean_floor = sqrt(vsum / Md / tsq);
    if (c->antithetic) {
        /* the mean's noise from the spread of the pair averages */
        double Pd = Md / 2, vp = 0;
        for (size_t q = 0; q < nB * no; q++) {
            double s = 0, v = 0;
            for (size_t j = 0; j < M / 2; j++)
                s += 0.5 * (per[2 * j * per_n + q] + per[(2 * j + 1) * per_n + q]);
            double mu = s / Pd;
            for (size_t j = 0; j < M / 2; j++) {
                double d = 0.5 * (per[2 * j * per_n + q] + per[(2 * j + 1) * per_n + q]) - mu;
                v += d * d;
            }
            vp += Pd > 1 ? v / (Pd - 1) / Pd : NAN;
        }
        r->gap_mean_floor = sqrt(vp / tsq);
    }
    r->gap_var = vdev / vth;
    {
        /* E|s^2 - sigma^2| / sigma^2 for s^2 from m Gaussian samples ~ sqrt(2/pi) sqrt(2/(m-1)) */
        double me = c->antithetic ? Md / 2 : Md;
        r->gap_var_floor = me > 1 ? sqrt(2 / M_PI) * sqrt(2 / (me - 1)) : NAN;
    }
    double *stat[3] = {&r->gap_net, &r->ntk_change, &r->ntk_init_dev};
    double *serr[3] = {&r->gap_net_stderr, &r->ntk_change_stderr, &r->ntk_init_dev_stderr};
    for (int j = 0; j < 3; j++) {
        double s = 0, v = 0;
        for (size_t k = 0; k < M; k++) s += per[k * per_n + nB * no + j];
        double mu = s / Md;
        for (size_t k = 0; k < M; k++) {
            double d = per[k * per_n + nB * no + j] - mu;
            v += d * d;
        }
        *stat[j] = mu;
        *serr[j] = sqrt(v / (Md - 1) / Md);
    }
    double ls = 0, lt = 0;
    for (size_t k = 0; k < M; k++) {
        ls += per[k * per_n + nB * no + 3];
        lt += per[k * per_n + nB * no + 4];
    }
    r->train_loss = ls / Md;
    r->train_loss_theory = lt / Md;
    r->nB = nB; r->nout = no; r->samples = M; r->eta = eta; r->threads = nt;
    r->seconds = omp_get_wtime() - t0;
out:
    if (nets) for (int t = 0; t < nt; t++) wick_net64_free(nets[t]);
    wick_free(nets); wick_free(x); wick_free(G0); wick_free(K); wick_free(T); wick_free(KL);
    wick_free(TL); wick_free(Tp); wick_free(per); wick_free(tbuf);
    if (st) { wick_gd_ensemble_free(r); r = NULL; }
    *out = r;
    return st;
}
