/* test_kgram.c — the correlation map of src/experiments/gram.c (wick_kgram)
 * against two references it does not share code with: the theory engine's
 * layer-by-layer Gram flow with direct quadrature per entry
 * (wick_gram_flow_last, tabulate = 0) and, for ReLU, the arccos kernel's
 * closed form walked by hand.  The tolerance is 1e-10 of the diagonal at
 * every correlation, including 0.999999 at C_W = 50 (where the older
 * tabulated map of the theory engine is off by 1e-7). */
#include "check.h"

/* The theory engine's direct flow on two inputs of norm q at correlation
 * rho: returns K_L and Theta_L of the pair. */
static void direct_pair(const wick_theory_config *c0, double q, double rho, double *K, double *T) {
    wick_theory_config c = *c0;
    c.tabulate = 0;
    double G0[4] = {q, q * rho, q * rho, q}, Kl[4], Tl[4];
    wick_status st = wick_gram_flow_last(&c, G0, 2, Kl, Tl);
    if (st) fprintf(stderr, "direct flow: %s\n", wick_last_error());
    *K = Kl[1];
    *T = Tl[1];
}

static const double RHOS[] = {1.0, 0.999999, 0.9999, 0.99, 0.9, 0.5, 0.1, 0.0, -0.3, -0.9,
                              -0.999999, -1.0};
#define NRHO (sizeof RHOS / sizeof RHOS[0])

/* map vs the direct flow at RHOS, error relative to the diagonal */
static void map_vs_direct(const char *act_name, double cb, double cw, int depth, double q,
                          double tol) {
    wick_act act;
    CHECK_OK(wick_act_parse(act_name, &act));
    wick_theory_config c = wick_theory_defaults(act, depth);
    c.cb = cb; c.cw = cw; c.lambda_b = 0.7; c.lambda_w = 1.3;
    wick_kgram *g = NULL;
    CHECK_OK(wick_kgram_new(&c, q, &g));
    if (!g) return;
    wick_kgram_stats s;
    wick_kgram_info(g, &s);
    double K[NRHO], T[NRHO], eK = 0, eT = 0;
    CHECK_OK(wick_kgram_map(g, RHOS, NRHO, K, T));
    for (size_t i = 0; i < NRHO; i++) {
        double k, t;
        direct_pair(&c, q, RHOS[i], &k, &t);
        eK = fmax(eK, fabs(K[i] - k) / fabs(s.kdiag));
        eT = fmax(eT, fabs(T[i] - t) / fabs(s.tdiag));
    }
    printf("  %-8s C_b %-4g C_W %-5g depth %-3d q %-4g: %4d pieces, map vs direct %.2g (K) %.2g (Theta)\n",
           act_name, cb, cw, depth, q, s.pieces, eK, eT);
    CHECK(eK <= tol);
    CHECK(eT <= tol);
    wick_kgram_free(g);
}

static void test_map_matches_direct_quadrature_at_extreme_correlations(void) {
    map_vs_direct("tanh", 0, 50, 3, 1, 1e-10);    /* the case */
    map_vs_direct("tanh", 0, 1, 10, 1, 1e-10);    /* critical */
    map_vs_direct("tanh", 0.3, 2, 4, 2.5, 1e-10);
    map_vs_direct("gelu", 0.1, 1.5, 3, 1, 1e-10);
    map_vs_direct("sigmoid", 0.2, 3, 2, 1, 1e-10);
    map_vs_direct("relu", 0, 2, 10, 1, 1e-10);
    map_vs_direct("relu", 0.1, 1.9, 5, 3, 1e-10);
}

/* ReLU: K_{l+1} = C_b + C_W kd/(2 pi) (sin t + (pi - t) cos t),
 * Theta_{l+1} = lb + lw <ss> + C_W (pi - t)/(2 pi) Theta_l (PDLT sec. 5.5). */
static void test_relu_map_matches_arccos_closed_form_at_depth_10(void) {
    wick_act act;
    CHECK_OK(wick_act_parse("relu", &act));
    wick_theory_config c = wick_theory_defaults(act, 10);
    c.cb = 0.05; c.cw = 2; c.lambda_b = 0.05; c.lambda_w = 2;
    wick_kgram *g = NULL;
    CHECK_OK(wick_kgram_new(&c, 1, &g));
    if (!g) return;
    double err = 0, kd_max = 0;
    for (int i = 0; i <= 4000; i++) {
        double rho = i < 4000 ? cos(M_PI * i / 4000.0 + 1e-4 * sin(i)) : 0.999999;
        double kd = c.cb + c.cw, k = c.cb + c.cw * rho, t = c.lambda_b + c.lambda_w * rho;
        for (int l = 1; l < 10; l++) {
            double r = k / kd;
            r = r > 1 ? 1 : r < -1 ? -1 : r;
            double th = acos(r), ss = kd / (2 * M_PI) * (sin(th) + (M_PI - th) * r);
            t = c.lambda_b + c.lambda_w * ss + c.cw * (M_PI - th) / (2 * M_PI) * t;
            k = c.cb + c.cw * ss;
            kd = c.cb + c.cw * kd / 2;
        }
        double K, T;
        CHECK_OK(wick_kgram_map(g, &rho, 1, &K, &T));
        err = fmax(err, fmax(fabs(K - k) / kd, fabs(T - t) / kd));
        kd_max = kd;
    }
    printf("  relu depth 10: map vs arccos closed form, largest error %.2g of the diagonal %g\n",
           err, kd_max);
    /* not 1e-14: the hand walk's own acos at each layer turns the rounding
       of r near 1 into 1e-16 / theta in the angle (1e-12 at theta ~ 1e-4) */
    CHECK(err <= 1e-10);
    wick_kgram_free(g);
}

/* Normalised random inputs: the n x n Grams from wick_kgram_sym and
 * wick_kgram_cross against the theory engine's direct flow. */
static void test_sym_and_cross_grams_match_the_direct_flow(void) {
    const size_t n = 24, n0 = 7;
    double x[24 * 7];
    for (size_t i = 0; i < n * n0; i++) x[i] = sin(1.7 * (double)i + 0.3) + 0.2 * cos(0.37 * (double)(i * i));
    /* a near-repeat (correlation ~0.9999): an exact repeat would be at 1 up to
       the rounding of the input Gram, where ReLU's Theta moves by sqrt(1e-16) */
    for (size_t j = 0; j < n0; j++) x[5 * n0 + j] = x[4 * n0 + j] + 0.01 * sin((double)j);
    CHECK_OK(wick_kernel_normalise(x, n, n0, n));
    const char *acts[] = {"relu", "tanh"};
    for (int a = 0; a < 2; a++) {
        wick_act act;
        CHECK_OK(wick_act_parse(acts[a], &act));
        wick_theory_config c = wick_theory_defaults(act, 4);
        c.cb = 0.1; c.cw = a ? 1.2 : 1.8;
        wick_kgram *g = NULL;
        CHECK_OK(wick_kgram_new(&c, 1, &g));
        if (!g) return;
        double *K = malloc(n * n * sizeof *K), *T = malloc(n * n * sizeof *T);
        double *Kc = malloc(n * n * sizeof *K), *Tc = malloc(n * n * sizeof *T);
        double *G0 = malloc(n * n * sizeof *G0), *Kd = malloc(n * n * sizeof *K), *Td = malloc(n * n * sizeof *T);
        CHECK_OK(wick_kgram_sym(g, x, n, n0, K, T));
        CHECK_OK(wick_kgram_cross(g, x, n, x, n, n0, Kc, Tc, n));
        CHECK_OK(wick_input_gram(x, n, n0, G0));
        c.tabulate = 0;
        CHECK_OK(wick_gram_flow_last(&c, G0, n, Kd, Td));
        double e = 0, ec = 0, scale = 0;
        int sym = 1;
        for (size_t i = 0; i < n * n; i++) {
            scale = fmax(scale, fmax(fabs(Kd[i]), fabs(Td[i])));
            e = fmax(e, fmax(fabs(K[i] - Kd[i]), fabs(T[i] - Td[i])));
            /* the cross Gram does not know an input meets itself: its
               diagonal is at correlation 1 only up to dgemm's rounding */
            if (i % (n + 1)) ec = fmax(ec, fmax(fabs(Kc[i] - Kd[i]), fabs(Tc[i] - Td[i])));
            sym &= K[i] == K[(i % n) * n + i / n] && T[i] == T[(i % n) * n + i / n];
        }
        printf("  %s: sym vs direct %.2g, cross vs direct %.2g (scale %g)\n", acts[a], e / scale, ec / scale, scale);
        CHECK(e <= 1e-10 * scale);
        CHECK(ec <= 1e-10 * scale);
        CHECK(sym);
        free(K); free(T); free(Kc); free(Tc); free(G0); free(Kd); free(Td);
        wick_kgram_free(g);
    }
}

static void test_inputs_of_another_norm_are_refused(void) {
    wick_act act;
    CHECK_OK(wick_act_parse("relu", &act));
    wick_theory_config c = wick_theory_defaults(act, 3);
    c.cw = 2;
    wick_kgram *g = NULL;
    CHECK_OK(wick_kgram_new(&c, 1, &g));
    double x[6] = {1, 1, 1, 2, 0, 0}, K[4];
    CHECK(wick_kgram_sym(g, x, 2, 3, K, NULL) == WICK_EINVAL);
    CHECK(strstr(wick_last_error(), "input 1") != NULL);
    wick_kgram_free(g);
    wick_act p;
    CHECK_OK(wick_act_parse("perceptron", &p));
    c.act = p;
    CHECK(wick_kgram_new(&c, 1, &g) == WICK_EINVAL);
    c.act = act;
    CHECK(wick_kgram_new(&c, 0, &g) == WICK_EINVAL);
}

/* the map's own trapezoid quadrature (walked through wick_kgram_walk at
 * depth 2: K_2 = C_b + C_W <sigma sigma>) against wick_gauss_expect2 */
static void test_map_quadrature_matches_the_theory_engine(void) {
    const char *acts[] = {"tanh", "sigmoid", "gelu", "swish", "softplus", "sin"};
    const double kds[] = {0.3, 1, 7, 50}, rhos[] = {0.999999, 0.7, 0, -0.95};
    double worst = 0;
    for (int a = 0; a < 6; a++) {
        wick_act act;
        CHECK_OK(wick_act_parse(acts[a], &act));
        for (int k = 0; k < 4; k++) {
            if (act.kind == WICK_ACT_SIN && kds[k] > 7) continue;
            wick_theory_config c = wick_theory_defaults(act, 2);
            c.cw = kds[k];   /* q = 1: K_1 = C_W */
            wick_kgram *g = NULL;
            CHECK_OK(wick_kgram_new(&c, 1, &g));
            if (!g) continue;
            for (int r = 0; r < 4; r++) {
                double K, ss;
                CHECK_OK(wick_kgram_walk(g, rhos[r], &K, NULL));
                CHECK_OK(wick_gauss_expect2(act, 0, 0, kds[k], kds[k] * rhos[r], kds[k], &ss));
                double sd;
                CHECK_OK(wick_gauss_expect2(act, 0, 0, kds[k], kds[k], kds[k], &sd));
                double e = fabs(K - kds[k] * ss) / fabs(kds[k] * sd);
                if (!(e <= 1e-12))
                    printf("  %s K %g rho %g: %.3g\n", acts[a], kds[k], rhos[r], e);
                worst = fmax(worst, e);
            }
            wick_kgram_free(g);
        }
    }
    printf("  trapezoid vs wick_gauss_expect2: largest error %.2g of <sigma^2>\n", worst);
    CHECK(worst <= 1e-12);
}

/* wick_kernel_solve (RFP triangle, dpftrf's steps, dpftrs, dtfsm) against
 * wick_kernel_predict (full Grams through the theory engine, dpotrf) and the
 * posterior variance against wick_gp_posterior's covariance, at an odd and
 * an even training-set size (the two RFP layouts). */
static void test_full_solve_matches_the_dense_path(void) {
    const size_t nB = 9, n0 = 6, nout = 3;
    for (size_t nA = 57; nA <= 64; nA += 7) {
        size_t n = nA + nB;
        double *x = malloc(n * n0 * sizeof *x), *y = malloc(nA * nout * sizeof *y);
        for (size_t i = 0; i < n * n0; i++) x[i] = sin(0.91 * (double)i * (double)i + 0.1 * (double)i);
        for (size_t i = 0; i < nA * nout; i++) y[i] = cos(1.3 * (double)i);
        CHECK_OK(wick_kernel_normalise(x, n, n0, nA));
        wick_act act;
        CHECK_OK(wick_act_parse("relu", &act));
        wick_kernel_hyper h = {act, 0.1, 1.9, 0.2, 1.1, 3, 1e-3};
        double gp[27], nt[27], var[9], ev, gp2[27], nt2[27], ev2;
        wick_kernel_solve_out o = {gp, var, nt, &ev, 0, 0, 0, {0, 0}, {0, 0}};
        CHECK_OK(wick_kernel_solve(&h, x, y, nA, x + nA * n0, nB, n0, nout, NULL, &o));
        CHECK_OK(wick_kernel_predict(&h, x, y, nA, x + nA * n0, nB, n0, nout, 0, gp2, nt2, &ev2));
        double em = 0, et = 0, ev_ = 0;
        for (size_t i = 0; i < nB * nout; i++) {
            em = fmax(em, fabs(gp[i] - gp2[i]));
            et = fmax(et, fabs(nt[i] - nt2[i]));
        }
        /* the variance: wick_gp_posterior's covariance from the full K */
        wick_theory_config c = wick_theory_defaults(act, 3);
        c.cb = h.cb; c.cw = h.cw;
        wick_kgram *g = NULL;
        CHECK_OK(wick_kgram_new(&c, 1, &g));
        double *K = malloc(n * n * sizeof *K), cov[81];
        CHECK_OK(wick_kgram_sym(g, x, n, n0, K, NULL));
        CHECK_OK(wick_gp_posterior(K, nA, nB, y, nout, h.noise, NULL, cov, NULL));
        for (size_t i = 0; i < nB; i++) ev_ = fmax(ev_, fabs(var[i] - cov[i * nB + i]));
        printf("  nA = %zu: NNGP mean %.2g, NTK mean %.2g, variance %.2g, log evidence %.17g vs %.17g\n",
               nA, em, et, ev_, ev, ev2);
        CHECK(em <= 1e-9);
        CHECK(et <= 1e-7);   /* Theta_AA unregularised: its condition number */
        CHECK(ev_ <= 1e-10);
        CHECK_REL(ev, ev2, 1e-10);
        free(x); free(y); free(K);
        wick_kgram_free(g);
    }
}

/* The evidence gradient: exact (A^-1) against central differences of the
 * log evidence itself (wick_kernel_solve), and Hutchinson's estimator
 * against the exact one. */
static double logev_at(const wick_kernel_hyper *h, const double *x, const double *y, size_t nA,
                       size_t n0, size_t nout) {
    double ev = NAN;
    wick_kernel_solve_out o = {NULL, NULL, NULL, &ev, 0, 0, 0, {0, 0}, {0, 0}};
    CHECK_OK(wick_kernel_solve(h, x, y, nA, NULL, 0, n0, nout, NULL, &o));
    return ev;
}

static void test_evidence_gradient_matches_finite_differences(void) {
    const size_t nA = 70, n0 = 5, nout = 2;
    double x[70 * 5], y[70 * 2];
    for (size_t i = 0; i < nA * n0; i++) x[i] = sin(0.73 * (double)i * (double)i + 0.2 * (double)i);
    for (size_t i = 0; i < nA * nout; i++) y[i] = cos(2.1 * (double)i) > 0 ? 0.5 : -0.5;
    CHECK_OK(wick_kernel_normalise(x, nA, n0, nA));
    const char *acts[] = {"relu", "tanh"};
    for (int a = 0; a < 2; a++) {
        wick_act act;
        CHECK_OK(wick_act_parse(acts[a], &act));
        wick_kernel_hyper h = {act, 0.2, a ? 1.3 : 1.8, 1, 1, 3, 0.05};
        double ev, g[3], gh[3];
        CHECK_OK(wick_kernel_evidence_grad(&h, x, y, nA, n0, nout, 0, 0, &ev, g));
        CHECK_OK(wick_kernel_evidence_grad(&h, x, y, nA, n0, nout, 4000, 7, NULL, gh));
        CHECK_REL(ev, logev_at(&h, x, y, nA, n0, nout), 1e-12);
        double fd[3];
        for (int k = 0; k < 3; k++) {
            double e = 1e-5, *v = k == 0 ? &h.cb : k == 1 ? &h.cw : &h.noise, v0 = *v;
            *v = v0 + e;
            double up = logev_at(&h, x, y, nA, n0, nout);
            *v = v0 - e;
            double dn = logev_at(&h, x, y, nA, n0, nout);
            *v = v0;
            fd[k] = (up - dn) / (2 * e);
        }
        printf("  %s: d/dC_b %.8g (differences %.8g, Hutchinson %.5g), d/dC_W %.8g (%.8g, %.5g), "
               "d/dnoise %.8g (%.8g, %.5g)\n", acts[a], g[0], fd[0], gh[0], g[1], fd[1], gh[1],
               g[2], fd[2], gh[2]);
        for (int k = 0; k < 3; k++) {
            CHECK_REL(g[k], fd[k], 1e-5);
            /* 4000 probes: the trace's spread is ~ ||A^-1 D||_F sqrt(2/4000) */
            CHECK(fabs(gh[k] - g[k]) <= 0.05 * fabs(g[k]) + 1.0);
        }
    }
}

/* Float32 factors refined by conjugate gradients (WICK_KERNEL_MIXED)
 * against the float64 solve, at an odd and an even size (the two RFP
 * layouts), on inputs clustered enough that cond(A) is ~1e6 at noise 1e-6
 * (Fashion-MNIST's ReLU kernel: 3e5 at 2,000 images): the predictions to
 * 1e-9 of their size, the log evidence to 1e-5 relative (its log det comes
 * from the float32 factor, whose rounding of the 1e-6 noise on a diagonal
 * of 2.3 moves it by ~0.6 nats here: docs/kernel.md). */
static void test_mixed_precision_matches_float64(void) {
    const size_t nB = 40, n0 = 12, nout = 4;
    for (size_t nA = 599; nA <= 600; nA++) {
        size_t n = nA + nB;
        double *x = malloc(n * n0 * sizeof *x), *y = malloc(nA * nout * sizeof *y);
        for (size_t i = 0; i < n; i++)   /* 30 centres, each point near one */
            for (size_t j = 0; j < n0; j++)
                x[i * n0 + j] = sin(1.7 * (double)((i % 30) * n0 + j) + 0.3) +
                                0.2 * sin(0.91 * (double)(i * n0 + j) * (double)(i * n0 + j));
        for (size_t i = 0; i < nA * nout; i++) y[i] = cos(1.3 * (double)i) > 0 ? 0.75 : -0.25;
        CHECK_OK(wick_kernel_normalise(x, n, n0, nA));
        wick_act act;
        CHECK_OK(wick_act_parse("relu", &act));
        wick_kernel_hyper h = {act, 0.1, 2, 1, 1, 3, 1e-6};
        double gp[160], nt[160], ev, gp2[160], nt2[160], ev2;
        wick_kernel_solve_opts od = {1e-10, NULL, NULL, WICK_KERNEL_DOUBLE, 0};
        wick_kernel_solve_opts om = {1e-10, NULL, NULL, WICK_KERNEL_MIXED, 1e-12};
        wick_kernel_solve_out o = {gp, NULL, nt, &ev, 0, 0, 0, {0, 0}, {0, 0}};
        wick_kernel_solve_out o2 = {gp2, NULL, nt2, &ev2, 0, 0, 0, {0, 0}, {0, 0}};
        CHECK_OK(wick_kernel_solve(&h, x, y, nA, x + nA * n0, nB, n0, nout, &od, &o));
        CHECK_OK(wick_kernel_solve(&h, x, y, nA, x + nA * n0, nB, n0, nout, &om, &o2));
        double em = 0, et = 0, sm = 0, st = 0;
        for (size_t i = 0; i < nB * nout; i++) {
            em = fmax(em, fabs(gp[i] - gp2[i]));
            et = fmax(et, fabs(nt[i] - nt2[i]));
            sm = fmax(sm, fabs(gp[i]));
            st = fmax(st, fabs(nt[i]));
        }
        printf("  nA = %zu: mixed %d, passes %d / %d (residuals %.2g / %.2g); NNGP mean %.2g, NTK mean "
               "%.2g of their size; log evidence %.17g vs %.17g\n", nA, o2.mixed, o2.pcg_iters[0],
               o2.pcg_iters[1], o2.pcg_resid[0], o2.pcg_resid[1], em / sm, et / st, ev2, ev);
        CHECK(o2.mixed == 1 && o.mixed == 0);
        CHECK(o2.pcg_resid[0] <= 1e-12 && o2.pcg_resid[1] <= 1e-12);
        CHECK(em <= 1e-9 * sm);
        CHECK(et <= 1e-9 * st);
        CHECK_REL(ev2, ev, 1e-5);
        free(x); free(y);
    }
}

/* The evidence's maximum by BFGS against brute force: on a coarse 3-D grid
 * (factors of 4 around it) nothing beats it, and on each parameter's 1-D
 * grid of steps of 2% through it the best point is the optimum's own
 * (so it is within 1% of the grid's maximum in every coordinate). */
static void test_evidence_optimum_matches_a_grid(void) {
    const size_t nA = 60, n0 = 5, nout = 2;
    double x[60 * 5], y[60 * 2];
    for (size_t i = 0; i < nA * n0; i++) x[i] = sin(0.73 * (double)i * (double)i + 0.2 * (double)i);
    CHECK_OK(wick_kernel_normalise(x, nA, n0, nA));
    for (size_t i = 0; i < nA; i++)   /* a smooth function of x plus a little noise */
        for (size_t c = 0; c < nout; c++)
            y[i * nout + c] = sin(x[i * n0 + c] + 0.5 * x[i * n0 + c + 2]) + 0.1 * sin(37.1 * (double)(i * 2 + c));
    wick_act act;
    CHECK_OK(wick_act_parse("relu", &act));
    wick_kernel_hyper h = {act, 0.5, 1.5, 1, 1, 2, 0.3};
    wick_kernel_opt_report r;
    CHECK_OK(wick_kernel_evidence_optimise(&h, x, y, nA, n0, nout, 50, 1e-5, &r));
    printf("  BFGS: log evidence %.9g -> %.9g in %d steps, %d evaluations, |grad| %.2g: C_b %.6g, C_W "
           "%.6g, noise %.6g\n", r.before, r.after, r.steps, r.evaluations, r.gradient, h.cb, h.cw, h.noise);
    CHECK(r.converged && r.after > r.before);
    CHECK_REL(r.after, logev_at(&h, x, y, nA, n0, nout), 1e-10);
    double best = -INFINITY;
    for (int a = -1; a <= 1; a++)
        for (int b = -1; b <= 1; b++)
            for (int c = -1; c <= 1; c++) {
                wick_kernel_hyper t = h;
                t.cb *= pow(4, a); t.cw *= pow(4, b); t.noise *= pow(4, c);
                best = fmax(best, logev_at(&t, x, y, nA, n0, nout));
            }
    printf("  coarse grid's best %.9g\n", best);
    CHECK(best <= r.after + 1e-9 * fabs(r.after));
    for (int k = 0; k < 3; k++) {
        int arg = 99;
        double top = -INFINITY;
        for (int s = -4; s <= 4; s++) {
            wick_kernel_hyper t = h;
            double *v = k == 0 ? &t.cb : k == 1 ? &t.cw : &t.noise;
            *v *= exp(0.02 * s);
            double e = logev_at(&t, x, y, nA, n0, nout);
            if (e > top) { top = e; arg = s; }
        }
        printf("  parameter %d: the 1-D grid's best is step %d\n", k, arg);
        CHECK(arg == 0);
    }
}

/* The gradient (and so --optimise's path) is bit-identical from run to run at
 * a given thread count: its sums over the rows of A^-1 D are added in row
 * order, not in the order the threads took rows (an omp reduction over a
 * dynamic schedule made them differ at the 9th digit). 300 inputs: two
 * panels of rows, shared unevenly by 2 threads. */
static void test_evidence_gradient_is_bit_reproducible(void) {
    const size_t nA = 300, n0 = 6, nout = 3;
    double *x = malloc(nA * n0 * sizeof *x), *y = malloc(nA * nout * sizeof *y);
    for (size_t i = 0; i < nA * n0; i++) x[i] = sin(0.37 * (double)i * (double)i + 0.1 * (double)i);
    for (size_t i = 0; i < nA * nout; i++) y[i] = cos(1.7 * (double)i) > 0 ? 0.5 : -0.5;
    CHECK_OK(wick_kernel_normalise(x, nA, n0, nA));
    wick_act act;
    CHECK_OK(wick_act_parse("relu", &act));
    wick_kernel_hyper h = {act, 0.1, 1.7, 1, 1, 3, 0.01};
    int threads = wick_threads();
    wick_set_threads(2);
    double ev0, g0[3];
    CHECK_OK(wick_kernel_evidence_grad(&h, x, y, nA, n0, nout, 0, 0, &ev0, g0));
    int same = 1;
    for (int rep = 0; rep < 6; rep++) {
        double ev, g[3];
        CHECK_OK(wick_kernel_evidence_grad(&h, x, y, nA, n0, nout, 0, 0, &ev, g));
        same &= memcmp(&ev, &ev0, sizeof ev) == 0 && memcmp(g, g0, sizeof g) == 0;
    }
    wick_set_threads(threads);
    printf("  6 repeats on 2 threads: %s\n", same ? "bit-identical" : "DIFFERENT");
    CHECK(same);
    free(x); free(y);
}

int main(void) {
    RUN(test_evidence_gradient_matches_finite_differences);
    RUN(test_full_solve_matches_the_dense_path);
    RUN(test_mixed_precision_matches_float64);
    RUN(test_evidence_optimum_matches_a_grid);
    RUN(test_evidence_gradient_is_bit_reproducible);
    RUN(test_map_quadrature_matches_the_theory_engine);
    RUN(test_map_matches_direct_quadrature_at_extreme_correlations);
    RUN(test_relu_map_matches_arccos_closed_form_at_depth_10);
    RUN(test_sym_and_cross_grams_match_the_direct_flow);
    RUN(test_inputs_of_another_norm_are_refused);
    return chk_finish();
}
