/* cmd_kernel.c — wick kernel: NNGP and NTK predictions on an image data set
 * (Fashion-MNIST by default) at infinite width.  Hyperparameters (depth, C_b,
 * observation noise) are chosen by the GP log evidence of the training set
 * (docs/theory.md §8, Bayesian model comparison); then the test accuracy of the
 * posterior mean and of the fully trained infinite-width network (docs/theory.md §9,
 * frozen NTK, t -> infinity) is reported. */
#include "cli.h"
#include <jansson.h>
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DEFAULT_DATA "/usr/share/datasets/fashion-mnist"

/* MemAvailable from /proc/meminfo in bytes, 0 when unknown; the
 * environment's WICK_MEMAVAILABLE (bytes) in its place, for the tests */
static double mem_available(void) {
    const char *e = getenv("WICK_MEMAVAILABLE");
    if (e && *e) return strtod(e, NULL);
    FILE *f = fopen("/proc/meminfo", "r");
    if (!f) return 0;
    char line[256];
    double kb = 0;
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "MemAvailable: %lf kB", &kb) == 1) break;
    fclose(f);
    return kb * 1024;
}

/* progress of the long phases on stderr: a phase's start and end, and
 * every 10 s in between */
typedef struct { char phase[64]; double last; } prog_state;
static void on_progress(void *ctx, const char *phase, double frac, double secs) {
    prog_state *p = ctx;
    int fresh = strcmp(p->phase, phase) != 0;
    if (!fresh && frac < 1 && secs - p->last < 10) return;
    snprintf(p->phase, sizeof p->phase, "%s", phase);
    p->last = secs;
    fprintf(stderr, "wick kernel: [%7.1f s] %s %3.0f%%\n", secs, phase, 100 * frac);
}

/* Reads images and labels, trying the .gz name first. */
/* The first `want` samples with label < classes: x as double, labels. */
static size_t take(const wick_dataset *d, int classes, size_t want, double *x, int32_t *y) {
    size_t k = 0;
    for (size_t i = 0; i < d->n && k < want; i++) {
        if (d->y[i] >= classes) continue;
        for (size_t j = 0; j < d->dim; j++) x[k * d->dim + j] = d->x[i * d->dim + j];
        y[k++] = d->y[i];
    }
    return k;
}

/* What the command line asks for. */
typedef struct {
    const char *dir, *act_name, *plot, *precision;
    cli_reals cbs, depths, noises;
    double cw, lb, lw, ridge;
    long ntrain, ntest, classes, batch, threads, nselect, probes;
    int json, want_var, want_grad, want_opt;
} kernel_args;

static kernel_args A;   /* the table's destinations */

static const cli_opt kernel_opts[] = {
    {"data", CLI_STR, &A.dir, 0, 0, 0, DEFAULT_DATA, "DIR",
     "directory with {train,t10k}-{images-idx3,labels-idx1}-ubyte[.gz]\n", NULL, NULL},
    {"train", CLI_INT, &A.ntrain, 2, 60000, 0, "2000", "N",
     "training images, the first N of the class subset (all 60000 fit a\n"
     "24 GB machine: the training Gram is kept as one packed triangle,\n"
     "8 N^2/2 bytes, and the memory needed is printed first)", NULL, NULL},
    {"select", CLI_INT, &A.nselect, 2, 60000, 0, "2000", "N",
     "choose the hyperparameters by the evidence of the first N training\n"
     "images (at most --train): each candidate costs a Cholesky of N x N", NULL, NULL},
    {"test", CLI_INT, &A.ntest, 1, 10000, 0, "10000", "N", "test images, the first N of the class subset", NULL, NULL},
    {"classes", CLI_INT, &A.classes, 2, 10, 0, "10", "K", "use classes 0..K-1 only (e.g. 2)", NULL, NULL},
    {"act", CLI_FN, &A.act_name, 0, 0, 0, "relu", "NAME", "activation", NULL, cli_act_arg},
    {"cw", CLI_REAL, &A.cw, -INFINITY, INFINITY, 0, NULL, "X", "weight variance C_W (default: the critical value, else 1)", NULL, NULL},
    {"cbs", CLI_REALS, &A.cbs, -INFINITY, INFINITY, 0, "0,0.1", "LIST", "bias variances C_b to try, comma separated", NULL, NULL},
    {"depths", CLI_REALS, &A.depths, CLI_DEPTH_MIN, CLI_DEPTH_MAX, 0, "2,3,5", "LIST",
     "depths to try (depth 1 is the linear model, whose evidence on a few\n"
     "hundred images beats the deeper kernels' though its test accuracy is\n"
     "lower: 0.648 vs 0.805 at depth 2 with 500)", NULL, NULL},
    {"noises", CLI_REALS, &A.noises, -INFINITY, INFINITY, 0, "0.000001,0.0001,0.01", "LIST", "GP noise variances to try", NULL, NULL},
    {"lambda-b", CLI_REAL, &A.lb, -INFINITY, INFINITY, 0, "1", "X", "NTK bias learning rate", NULL, NULL},
    {"lambda-w", CLI_REAL, &A.lw, -INFINITY, INFINITY, 0, "1", "X", "NTK weight learning rate", NULL, NULL},
    {"variance", CLI_BOOL, &A.want_var, 0, 0, 0, NULL, NULL,
     "also the NNGP posterior variance of each test prediction (the\n"
     "latent function's; costs nA^2 nB more flops) and its summary", NULL, NULL},
    {"optimise", CLI_BOOL, &A.want_opt, 0, 0, 0, NULL, NULL,
     "then follow the log evidence's gradient on the --select images to its\n"
     "maximum in (C_b, C_W, noise) at the chosen depth (BFGS in the logs;\n"
     "docs/kernel.md), and use that for the full set (a C_b of 0 stays 0)", NULL, NULL},
    {"grad", CLI_BOOL, &A.want_grad, 0, 0, 0, NULL, NULL,
     "the log evidence's gradient in C_b, C_W and the noise at the choice,\n"
     "on the --select images (exact trace of A^-1 dA)", NULL, NULL},
    {"grad-probes", CLI_INT, &A.probes, 1, 100000, 0, NULL, "M",
     "the same on the whole training set, the trace by Hutchinson's\n"
     "estimator with M random probes (docs/kernel.md)", NULL, NULL},
    {"ntk-ridge", CLI_REAL, &A.ridge, 0, 1, CLI_OPEN_HI, "1e-10", "X",
     "added to the NTK training Gram's diagonal, relative to it (exact\n"
     "duplicate images make it singular)", NULL, NULL},
    {"precision", CLI_STR, &A.precision, 0, 0, 0, "auto", "P",
     "the full set's solves: double (float64 Choleskys), mixed (float32\n"
     "Choleskys, twice as fast, refined to float64 accuracy by conjugate\n"
     "gradients: docs/kernel.md) or auto (mixed from 16384 training\n"
     "images on, double with --variance)", NULL, NULL},
    {"batch", CLI_INT, &A.batch, 1, 100000, 0, NULL, "N", "ignored (kept for old scripts: test inputs go in batches of 1024)", NULL, NULL},
    {"threads", CLI_INT, &A.threads, 1, CLI_THREADS_MAX, 0, NULL, "N", "threads (default: OMP_NUM_THREADS, else all cores)", NULL, NULL},
    {"json", CLI_BOOL, &A.json, 0, 0, 0, NULL, NULL, "last line of stdout: one JSON object", NULL, NULL},
    {"plot", CLI_STR, &A.plot, 0, 0, 0, NULL, "FILE.png", "log evidence against the noise, one curve per (depth, C_b)", NULL, NULL},
    {0}};

static const cli_cmd kernel_cmd = {
    "kernel",
    "usage: wick kernel [FLAGS]\n"
    "NNGP and NTK Gram matrices of an MLP at infinite width for an image data set, the GP\n"
    "posterior mean and the fully trained infinite-width network (docs/theory.md §8, §9), with\n"
    "(depth, C_b, noise) chosen by the log evidence of the training targets over a grid.\n"
    "Images are centred (training mean) and scaled to |x|^2/n0 = 1, so that the Gram flow\n"
    "takes its tabulated path; targets are one-hot minus 1/classes.\n\n",
    kernel_opts, NULL, 0, 0};

/* The command line into A; CLI_GO, or the exit code. */
static int kernel_parse(int argc, char **argv) {
    A = (kernel_args){.cw = NAN};
    int rc = cli_parse(&kernel_cmd, argc, argv, NULL);
    if (rc != CLI_GO) return rc;
    if (strcmp(A.precision, "auto") && strcmp(A.precision, "double") && strcmp(A.precision, "mixed")) {
        fprintf(stderr, "wick kernel: --precision expects auto, double or mixed, got '%s'\n", A.precision);
        return EXIT_USAGE;
    }
    for (int i = 0; i < A.depths.n; i++)
        if (A.depths.v[i] != floor(A.depths.v[i])) {
            fprintf(stderr, "wick kernel: --depths expects integers in [%d, %d], got '%g'\n", CLI_DEPTH_MIN,
                    CLI_DEPTH_MAX, A.depths.v[i]);
            return EXIT_USAGE;
        }
    return CLI_GO;
}

/* What the search and the full solve found, for the report. */
typedef struct {
    wick_act act;
    double cw;                    /* after --optimise, the optimised C_W */
    wick_kernel_hyper h;          /* the choice (optimised with --optimise) */
    size_t nA, nB, nsel, K;
    const double *ev;             /* the grid's log evidences, depth-major then C_b then noise */
    int best;                     /* the chosen grid point */
    const double *grad, *gradp;   /* --grad's and --grad-probes' gradients (NaN when not asked) */
    wick_kernel_opt_report orep;  /* --optimise's steps */
    double ev_full, secs, acc_gp, acc_nt;
    const wick_kernel_solve_out *solve;
    const double *gp, *var;       /* test posterior means (nB x K), variances (NULL without --variance) */
    const int32_t *labB;          /* the test labels */
} kernel_out;

static int kernel_run(void);
static void kernel_print(const kernel_out *o);
static int kernel_plot(const kernel_out *o, const char *path);
static int kernel_json(const kernel_out *o);

int cmd_kernel(int argc, char **argv) {
    int prc = kernel_parse(argc, argv);
    if (prc != CLI_GO) return prc;
    return kernel_run();
}

/* The grid search of A, printed as each candidate is evaluated (a long run shows its table as it
 * comes); then the full solve and the report. */
static int kernel_run(void) {
    const char *dir = A.dir, *act_name = A.act_name, *plot = A.plot;
    double cw = A.cw, lb = A.lb, lw = A.lw, ridge = A.ridge;
    long ntrain = A.ntrain, ntest = A.ntest, classes = A.classes, threads = A.threads, nselect = A.nselect;
    long probes = A.probes;
    int json = A.json, want_var = A.want_var, want_grad = A.want_grad;
    const double *cbs = A.cbs.v, *dd = A.depths.v, *noises = A.noises.v;
    int ncb = A.cbs.n, nd = A.depths.n, nno = A.noises.n;
    wick_act act;
    wick_status st = wick_act_parse(act_name, &act);
    if (st) return cli_fail("kernel", st);
    if (isnan(cw)) {
        double cb0, cwc;
        cw = wick_critical_init(act, &cb0, &cwc, NULL) == WICK_OK ? cwc : 1.0;
    }
    wick_set_threads((int)threads);
    fprintf(stderr, "wick %s | threads %d | %s\n", wick_version(), wick_threads(), wick_library_versions());

    wick_dataset *tr = NULL, *te = NULL;
    if ((st = wick_dataset_load_idx_dir(dir, "train", 10, &tr)) || (st = wick_dataset_load_idx_dir(dir, "t10k", 10, &te))) {
        wick_dataset_free(tr);
        return cli_fail("kernel", st);
    }
    size_t n0 = tr->dim, K = (size_t)classes;
    double *x = malloc(sizeof(double) * (size_t)(ntrain + ntest) * n0);
    int32_t *lab = malloc(sizeof(int32_t) * (size_t)(ntrain + ntest));
    double *yA = malloc(sizeof(double) * (size_t)ntrain * K);
    double *gp = malloc(sizeof(double) * (size_t)ntest * K), *nt = malloc(sizeof(double) * (size_t)ntest * K);
    double *var = want_var ? malloc(sizeof(double) * (size_t)ntest) : NULL;
    int ncand = nd * ncb * nno;
    double *ev = malloc(sizeof(double) * (size_t)ncand);
    int ret = EXIT_OK;
    if (!x || !lab || !yA || !gp || !nt || !ev || (want_var && !var)) { fprintf(stderr, "wick kernel: out of memory\n"); ret = EXIT_FAIL; goto done; }
    size_t nA = take(tr, (int)classes, (size_t)ntrain, x, lab);
    size_t nB = take(te, (int)classes, (size_t)ntest, x + nA * n0, lab + nA);
    if (nA < (size_t)ntrain || nB < (size_t)ntest)
        fprintf(stderr, "wick kernel: the data hold only %zu training and %zu test images of classes "
                "0..%ld\n", nA, nB, classes - 1);
    if ((st = wick_kernel_normalise(x, nA + nB, n0, nA))) { ret = cli_fail("kernel", st); goto done; }
    for (size_t i = 0; i < nA; i++)
        for (size_t k = 0; k < K; k++) yA[i * K + k] = (k == (size_t)lab[i] ? 1.0 : 0.0) - 1.0 / (double)K;

    printf("# wick kernel: %s, C_W = %.9g, lambda_b = %.9g, lambda_W = %.9g, %zu training and %zu test "
           "images of %ld classes from %s\n", wick_act_name(act), cw, lb, lw, nA, nB, classes, dir);
    size_t nsel = (size_t)nselect < nA ? (size_t)nselect : nA;
    printf("# hyperparameters by the NNGP log evidence of the first %zu training images (PDLT "
           "sec. 6.3.3; exact: Cholesky)\n", nsel);
    printf("%6s %10s %10s %16s %9s\n", "depth", "C_b", "noise", "log evidence", "seconds");
    int best = -1;
    for (int i = 0; i < nd; i++)
        for (int j = 0; j < ncb; j++)
            for (int k = 0; k < nno; k++) {
                int q = (i * ncb + j) * nno + k;
                wick_kernel_hyper h = {act, cbs[j], cw, lb, lw, (int)dd[i], noises[k]};
                double t0 = omp_get_wtime();
                wick_kernel_solve_out so = {NULL, NULL, NULL, &ev[q], 0, 0, 0, {0, 0}, {0, 0}};
                if ((st = wick_kernel_solve(&h, x, yA, nsel, NULL, 0, n0, K, NULL, &so))) {
                    fprintf(stderr, "wick kernel: depth %g, C_b %g, noise %g: %s\n", dd[i], cbs[j],
                            noises[k], wick_last_error());
                    ev[q] = NAN;
                    continue;
                }
                printf("%6g %10.4g %10.4g %16.6f %9.2f\n", dd[i], cbs[j], noises[k], ev[q],
                       omp_get_wtime() - t0);
                fflush(stdout);
                if (best < 0 || ev[q] > ev[best]) best = q;
            }
    if (best < 0) { fprintf(stderr, "wick kernel: no candidate could be evaluated\n"); ret = EXIT_FAIL; goto done; }
    int bi = best / (ncb * nno), bj = (best / nno) % ncb, bk = best % nno;
    wick_kernel_hyper h = {act, cbs[bj], cw, lb, lw, (int)dd[bi], noises[bk]};
    /* why this choice: the best of each depth beside the chosen one */
    printf("chosen by the log evidence on %zu images: depth %d, C_b = %.6g, noise = %.6g (log "
           "evidence %.6f)\n", nsel, h.depth, h.cb, h.noise, ev[best]);
    for (int i = 0; i < nd; i++) {
        int bq = -1;
        for (int q = i * ncb * nno; q < (i + 1) * ncb * nno; q++)
            if (isfinite(ev[q]) && (bq < 0 || ev[q] > ev[bq])) bq = q;
        if (bq >= 0)
            printf("  best at depth %g: C_b = %g, noise = %g, log evidence %.3f (%+.3f nats from the "
                   "chosen)\n", dd[i], cbs[(bq / nno) % ncb], noises[bq % nno], ev[bq], ev[bq] - ev[best]);
    }
    printf("  (the evidence ranks how well each prior explains the training targets; it is not the "
           "test accuracy, and on small subsets it can prefer a shallower kernel than the test "
           "set would)\n");
    wick_kernel_opt_report orep = {NAN, NAN, 0, 0, NAN, 0};
    if (A.want_opt) {
        double t1 = omp_get_wtime();
        if ((st = wick_kernel_evidence_optimise(&h, x, yA, nsel, n0, K, 50, 1e-3, &orep))) {
            ret = cli_fail("kernel", st);
            goto done;
        }
        cw = h.cw;
        printf("optimised on %zu images (BFGS in log C_b, log C_W, log noise: %d steps, %d evaluations, "
               "largest |d log p / d log theta| %.2g%s): C_b = %.6g, C_W = %.6g, noise = %.6g; log "
               "evidence %.6f -> %.6f  [%.1f s]\n", nsel, orep.steps, orep.evaluations, orep.gradient,
               orep.converged ? "" : ", not converged", h.cb, h.cw, h.noise, orep.before, orep.after,
               omp_get_wtime() - t1);
    }
    double grad[3] = {NAN, NAN, NAN}, gradp[3] = {NAN, NAN, NAN};
    if (want_grad) {
        double t1 = omp_get_wtime();
        if ((st = wick_kernel_evidence_grad(&h, x, yA, nsel, n0, K, 0, 0, NULL, grad))) {
            ret = cli_fail("kernel", st);
            goto done;
        }
        printf("gradient of the log evidence on %zu images at the choice (exact): d/dC_b = %.6g, "
               "d/dC_W = %.6g, d/dnoise = %.6g  [%.1f s]\n", nsel, grad[0], grad[1], grad[2],
               omp_get_wtime() - t1);
    }
    if (probes) {
        double t1 = omp_get_wtime();
        if ((st = wick_kernel_evidence_grad(&h, x, yA, nA, n0, K, (int)probes, 1, NULL, gradp))) {
            ret = cli_fail("kernel", st);
            goto done;
        }
        printf("gradient of the log evidence on all %zu training images (Hutchinson, %ld probes): "
               "d/dC_b = %.6g, d/dC_W = %.6g, d/dnoise = %.6g  [%.1f s]\n", nA, probes, gradp[0],
               gradp[1], gradp[2], omp_get_wtime() - t1);
    }
    size_t need = wick_kernel_solve_bytes(nA, nB, n0, K, want_var);
    double avail = mem_available();
    printf("memory: the solve needs %.2f GB (the training Gram as one packed triangle: %.2f GB); "
           "MemAvailable %.2f GB\n", 1e-9 * (double)need, 4e-9 * (double)nA * (double)(nA + 1),
           1e-9 * avail);
    fflush(stdout);
    if (avail > 0 && (double)need > 0.95 * avail) {
        fprintf(stderr, "wick kernel: %zu training images need %.2f GB and only %.2f GB is available: "
                "refusing rather than swapping (use fewer --train images)\n", nA, 1e-9 * (double)need,
                1e-9 * avail);
        ret = EXIT_FAIL;
        goto done;
    }
    prog_state ps = {"", 0};
    wick_kernel_precision prec = !strcmp(A.precision, "double") ? WICK_KERNEL_DOUBLE
                                 : !strcmp(A.precision, "mixed") ? WICK_KERNEL_MIXED : WICK_KERNEL_AUTO;
    wick_kernel_solve_opts so = {ridge, nA >= 5000 ? on_progress : NULL, &ps, prec, 0};
    double ev_full = NAN;
    wick_kernel_solve_out out = {gp, var, nt, &ev_full, 0, 0, 0, {0, 0}, {0, 0}};
    double t0 = omp_get_wtime();
    if ((st = wick_kernel_solve(&h, x, yA, nA, x + nA * n0, nB, n0, K, &so, &out))) {
        ret = cli_fail("kernel", st);
        goto done;
    }
    double secs = omp_get_wtime() - t0;
    kernel_out ko = {act, cw, h, nA, nB, nsel, K, ev, best, grad, gradp, orep, ev_full, secs,
                     cli_accuracy(gp, lab + nA, nB, K), cli_accuracy(nt, lab + nA, nB, K), &out, gp, var,
                     lab + nA};
    kernel_print(&ko);
    if (plot && (ret = kernel_plot(&ko, plot)) != EXIT_OK) goto done;
    if (json) ret = kernel_json(&ko);
done:
    wick_dataset_free(tr); wick_dataset_free(te);
    free(x); free(lab); free(yA); free(gp); free(nt); free(ev); free(var);
    return ret;
}

/* The full solve's figures: evidence, Cholesky speed, test accuracy, the variance summary. */
static void kernel_print(const kernel_out *o) {
    const wick_kernel_solve_out *out = o->solve;
    size_t nA = o->nA, nB = o->nB, K = o->K;
    double nf = (double)nA / 3 * (double)nA * (double)nA;
    printf("full training set: log evidence %.6f on %zu images; Cholesky NNGP %.1f s, NTK %.1f s "
           "(%.1f and %.1f GFLOP/s: n^3/3 = %.3g flops each)\n", o->ev_full, nA, out->chol_seconds_gp,
           out->chol_seconds_ntk, 1e-9 * nf / out->chol_seconds_gp, 1e-9 * nf / out->chol_seconds_ntk, nf);
    if (out->mixed)
        printf("mixed precision: float32 Choleskys refined by conjugate gradients in float64: NNGP %d "
               "passes (relative residual %.2g), NTK %d (%.2g); the log evidence's log det from the float32 "
               "factor (~1e-5 relative)\n", out->pcg_iters[0], out->pcg_resid[0],
               out->pcg_iters[1], out->pcg_resid[1]);
    printf("test accuracy on %zu images: NNGP posterior mean %.4f, infinite-width trained network "
           "(NTK, t -> inf) %.4f  [%.1f s]\n", nB, o->acc_gp, o->acc_nt, o->secs);
    if (!o->var) return;
    const double *gp = o->gp, *var = o->var;
    double vmean_ok = 0, vmean_bad = 0, vmin = INFINITY, vmax = -INFINITY;
    size_t nok = 0;
    for (size_t i = 0; i < nB; i++) {
        int b = 0;
        for (size_t k = 1; k < K; k++) if (gp[i * K + k] > gp[i * K + b]) b = (int)k;
        if (b == o->labB[i]) { vmean_ok += var[i]; nok++; } else vmean_bad += var[i];
        vmin = fmin(vmin, var[i]);
        vmax = fmax(vmax, var[i]);
    }
    vmean_ok /= nok ? (double)nok : 1;
    vmean_bad /= nB - nok ? (double)(nB - nok) : 1;
    printf("NNGP posterior variance of the test predictions: %.4g .. %.4g; mean %.4g where the "
           "prediction is right, %.4g where it is wrong\n", vmin, vmax, vmean_ok, vmean_bad);
}

/* --plot: the log evidence against the noise, a curve per (depth, C_b), the choice marked. */
static int kernel_plot(const kernel_out *o, const char *path) {
    const double *cbs = A.cbs.v, *dd = A.depths.v, *noises = A.noises.v;
    int ncb = A.cbs.n, nd = A.depths.n, nno = A.noises.n;
    int best = o->best, bi = best / (ncb * nno), bj = (best / nno) % ncb, bk = best % nno;
    int ns = nd * ncb;
    wick_series *sr = calloc((size_t)ns + 1, sizeof *sr);
    char (*names)[64] = calloc((size_t)ns, 64), chosen[128];
    if (!sr || !names) { free(sr); free(names); return EXIT_FAIL; }
    for (int s = 0; s < ns; s++) {
        snprintf(names[s], 64, "depth %g, C_b = %g", dd[s / ncb], cbs[s % ncb]);
        /* a curve per (depth, C_b), as --help says: one colour per depth */
        sr[s] = (wick_series){names[s], noises, o->ev + (size_t)s * nno, NULL, (size_t)nno, 0, s / ncb + 1};
    }
    /* the choice, marked on its curve */
    snprintf(chosen, sizeof chosen, "chosen: depth %g, C_b = %g, noise %g", dd[bi], cbs[bj], noises[bk]);
    sr[ns] = (wick_series){chosen, noises + bk, o->ev + best, NULL, 1, 1, 0};
    ns++;
    char title[256];
    snprintf(title, sizeof title, "NNGP log evidence, %s, C_W = %g, %zu training images", wick_act_name(o->act),
             o->cw, o->nA);
    wick_status st = wick_plot_png(path, title, "observation noise variance", "log evidence", sr, ns, 1, 0);
    free(sr); free(names);
    return st ? cli_fail("kernel", st) : EXIT_OK;
}

/* --json: the grid, the choice and the full solve's figures, one object. */
static int kernel_json(const kernel_out *o) {
    const double *cbs = A.cbs.v, *dd = A.depths.v, *noises = A.noises.v, *ev = o->ev;
    int ncb = A.cbs.n, nno = A.noises.n, ncand = A.depths.n * ncb * nno;
    const wick_kernel_solve_out *out = o->solve;
    json_t *root = json_object();
    json_object_set_new(root, "activation", json_string(wick_act_name(o->act)));
    json_object_set_new(root, "cw", json_real(o->cw));
    json_object_set_new(root, "lambda_b", json_real(A.lb));
    json_object_set_new(root, "lambda_w", json_real(A.lw));
    json_object_set_new(root, "train", json_integer((json_int_t)o->nA));
    json_object_set_new(root, "test", json_integer((json_int_t)o->nB));
    json_object_set_new(root, "classes", json_integer(A.classes));
    json_t *grid = json_array();
    for (int q = 0; q < ncand; q++) {
        int i = q / (ncb * nno), j = (q / nno) % ncb, k = q % nno;
        json_array_append_new(grid, json_pack("{s:f,s:f,s:f,s:o}", "depth", dd[i], "cb", cbs[j],
                                              "noise", noises[k], "log_evidence",
                                              isfinite(ev[q]) ? json_real(ev[q]) : json_null()));
    }
    json_object_set_new(root, "grid", grid);
    json_object_set_new(root, "depth", json_integer(o->h.depth));
    json_object_set_new(root, "cb", json_real(o->h.cb));
    json_object_set_new(root, "noise", json_real(o->h.noise));
    json_object_set_new(root, "log_evidence", json_real(ev[o->best]));
    json_object_set_new(root, "accuracy_nngp", json_real(o->acc_gp));
    json_object_set_new(root, "accuracy_ntk", json_real(o->acc_nt));
    json_object_set_new(root, "select", json_integer((json_int_t)o->nsel));
    if (A.want_grad)
        json_object_set_new(root, "evidence_grad", json_pack("[f,f,f]", o->grad[0], o->grad[1], o->grad[2]));
    if (A.probes)
        json_object_set_new(root, "evidence_grad_full", json_pack("[f,f,f]", o->gradp[0], o->gradp[1], o->gradp[2]));
    json_object_set_new(root, "log_evidence_full", json_real(o->ev_full));
    json_object_set_new(root, "seconds", json_real(o->secs));
    json_object_set_new(root, "mixed_precision", json_boolean(out->mixed));
    if (A.want_opt)
        json_object_set_new(root, "optimised", json_pack("{s:f,s:f,s:i,s:b}", "log_evidence_before",
                            o->orep.before, "log_evidence_after", o->orep.after, "steps", o->orep.steps,
                            "converged", o->orep.converged));
    if (out->mixed)
        json_object_set_new(root, "refinement_passes", json_pack("[i,i]", out->pcg_iters[0], out->pcg_iters[1]));
    if (o->var) {
        json_t *va = json_array();
        for (size_t i = 0; i < o->nB; i++) json_array_append_new(va, json_real(o->var[i]));
        json_object_set_new(root, "nngp_variance", va);
    }
    int ret = cli_write_json(stdout, "kernel", root, 17);
    json_decref(root);
    return ret;
}
