/* cmd_kernel.c — wick kernel: NNGP and NTK predictions on an image data set
 * (Fashion-MNIST by default) at infinite width.  Hyperparameters (depth, C_b,
 * observation noise) are chosen by the GP log evidence of the training set
 * (docs/theory.md §8, Bayesian model comparison); then the test accuracy of the
 * posterior mean and of the fully trained infinite-width network (docs/theory.md §9,
 * frozen NTK, t -> infinity) is reported. */
#include "cli.h"
#include "core/core.h"
#include <getopt.h>
#include <jansson.h>
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DEFAULT_DATA "/usr/share/datasets/fashion-mnist"

static void usage(FILE *f) {
    fprintf(f,
        "usage: wick kernel [FLAGS]\n"
        "NNGP and NTK Gram matrices of an MLP at infinite width for an image data set, the GP\n"
        "posterior mean and the fully trained infinite-width network (docs/theory.md §8, §9), with\n"
        "(depth, C_b, noise) chosen by the log evidence of the training targets over a grid.\n"
        "Images are centred (training mean) and scaled to |x|^2/n0 = 1, so that the Gram flow\n"
        "takes its tabulated path; targets are one-hot minus 1/classes.\n\n"
        "  --data DIR        directory with {train,t10k}-{images-idx3,labels-idx1}-ubyte[.gz]\n"
        "                    (default " DEFAULT_DATA ")\n"
        "  --train N         training images, the first N of the class subset (default 2000; all\n"
        "                    60000 fit a 24 GB machine: the training Gram is kept as one packed\n"
        "                    triangle, 8 N^2/2 bytes, and the memory needed is printed first)\n"
        "  --select N        choose the hyperparameters by the evidence of the first N training\n"
        "                    images (default 2000, at most --train): each candidate costs a\n"
        "                    Cholesky of N x N\n"
        "  --test N          test images, the first N of the class subset (default 10000)\n"
        "  --classes K       use classes 0..K-1 only (default 10; e.g. 2)\n"
        "  --act NAME        activation (default relu)\n"
        "  --cw X            weight variance C_W (default: the critical value, else 1)\n"
        "  --cbs LIST        bias variances C_b to try, comma separated (default 0,0.1)\n"
        "  --depths LIST     depths to try (default 2,3,5; depth 1 is the linear model, whose\n"
        "                    evidence on a few hundred images beats the deeper kernels' though\n"
        "                    its test accuracy is lower: 0.648 vs 0.805 at depth 2 with 500)\n"
        "  --noises LIST     GP noise variances to try (default 0.000001,0.0001,0.01)\n"
        "  --lambda-b X      NTK bias learning rate (default 1)\n"
        "  --lambda-w X      NTK weight learning rate (default 1)\n"
        "  --variance        also the NNGP posterior variance of each test prediction (the\n"
        "                    latent function's; costs nA^2 nB more flops) and its summary\n"
        "  --grad            the log evidence's gradient in C_b, C_W and the noise at the choice,\n"
        "                    on the --select images (exact trace of A^-1 dA)\n"
        "  --grad-probes M   the same on the whole training set, the trace by Hutchinson's\n"
        "                    estimator with M random probes (docs/kernel.md)\n"
        "  --ntk-ridge X     added to the NTK training Gram's diagonal, relative to it (default\n"
        "                    1e-10: exact duplicate images make it singular)\n"
        "  --batch N         ignored (kept for old scripts: test inputs go in batches of 1024)\n"
        "  --threads N       threads (default: OMP_NUM_THREADS, else all cores)\n"
        "  --json            last line of stdout: one JSON object\n"
        "  --plot FILE.png   log evidence against the noise, one curve per (depth, C_b)\n"
        "  --help            this text\n");
}

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

static int parse_dlist(const char *flag, const char *s, double *out, int max) {
    int k = 0;
    char buf[512];
    snprintf(buf, sizeof buf, "%s", s);
    for (char *tok = strtok(buf, ","); tok; tok = strtok(NULL, ",")) {
        if (k == max || !cli_double(flag, tok, &out[k])) return 0;
        k++;
    }
    return k;
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

static double accuracy(const double *z, const int32_t *y, size_t n, int classes) {
    size_t ok = 0;
    for (size_t i = 0; i < n; i++) {
        int best = 0;
        for (int c = 1; c < classes; c++) if (z[i * classes + c] > z[i * classes + best]) best = c;
        ok += best == y[i];
    }
    return n ? (double)ok / (double)n : 0;
}

int cmd_kernel(int argc, char **argv) {
    static const struct option opts[] = {
        {"data", 1, 0, 'd'}, {"train", 1, 0, 'A'}, {"test", 1, 0, 'B'}, {"classes", 1, 0, 'k'},
        {"act", 1, 0, 'a'}, {"cw", 1, 0, 'w'}, {"cbs", 1, 0, 'b'}, {"depths", 1, 0, 'L'},
        {"noises", 1, 0, 'e'}, {"lambda-b", 1, 0, 'x'}, {"lambda-w", 1, 0, 'y'}, {"batch", 1, 0, 'm'},
        {"threads", 1, 0, 't'}, {"json", 0, 0, 'j'}, {"plot", 1, 0, 'p'}, {"help", 0, 0, 'h'},
        {"select", 1, 0, 'S'}, {"variance", 0, 0, 'V'}, {"ntk-ridge", 1, 0, 'R'},
        {"grad", 0, 0, 'G'}, {"grad-probes", 1, 0, 'P'},
        {0, 0, 0, 0}};
    const char *dir = DEFAULT_DATA, *act_name = "relu", *plot = NULL;
    const char *cbs_s = "0,0.1", *depths_s = "2,3,5", *noises_s = "0.000001,0.0001,0.01";
    double cw = NAN, lb = 1, lw = 1, ridge = 1e-10;
    long ntrain = 2000, ntest = 10000, classes = 10, batch = 2000, threads = 0, nselect = 2000;
    int json = 0, want_var = 0, want_grad = 0, c;
    long probes = 0;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 'd': dir = optarg; break;
        case 'A': if (!cli_int("--train", optarg, 2, 60000, &ntrain)) return EXIT_USAGE; break;
        case 'B': if (!cli_int("--test", optarg, 1, 10000, &ntest)) return EXIT_USAGE; break;
        case 'k': if (!cli_int("--classes", optarg, 2, 10, &classes)) return EXIT_USAGE; break;
        case 'a': act_name = optarg; break;
        case 'w': if (!cli_double("--cw", optarg, &cw)) return EXIT_USAGE; break;
        case 'b': cbs_s = optarg; break;
        case 'L': depths_s = optarg; break;
        case 'e': noises_s = optarg; break;
        case 'x': if (!cli_double("--lambda-b", optarg, &lb)) return EXIT_USAGE; break;
        case 'y': if (!cli_double("--lambda-w", optarg, &lw)) return EXIT_USAGE; break;
        case 'm': if (!cli_int("--batch", optarg, 1, 100000, &batch)) return EXIT_USAGE; break;
        case 't': if (!cli_int("--threads", optarg, 1, 1024, &threads)) return EXIT_USAGE; break;
        case 'j': json = 1; break;
        case 'p': plot = optarg; break;
        case 'S': if (!cli_int("--select", optarg, 2, 60000, &nselect)) return EXIT_USAGE; break;
        case 'V': want_var = 1; break;
        case 'G': want_grad = 1; break;
        case 'P': if (!cli_int("--grad-probes", optarg, 1, 100000, &probes)) return EXIT_USAGE; break;
        case 'R':
            if (!cli_double("--ntk-ridge", optarg, &ridge)) return EXIT_USAGE;
            if (!(ridge >= 0 && ridge < 1)) {
                fprintf(stderr, "wick kernel: --ntk-ridge %s: expected a number in [0, 1)\n", optarg);
                return EXIT_USAGE;
            }
            break;
        case 'h': usage(stdout); return EXIT_OK;
        default:
            return cli_bad_flag("kernel", argv);
        }
    }
    if (optind < argc) return cli_extra_argument("kernel", argv);
    double cbs[16], dd[16], noises[16];
    int ncb = parse_dlist("--cbs", cbs_s, cbs, 16), nd = parse_dlist("--depths", depths_s, dd, 16);
    int nno = parse_dlist("--noises", noises_s, noises, 16);
    if (!ncb || !nd || !nno) {
        fprintf(stderr, "wick kernel: --cbs, --depths, --noises take comma-separated numbers (at most 16)\n");
        return EXIT_USAGE;
    }
    for (int i = 0; i < nd; i++)
        if (dd[i] < 1 || dd[i] > 1000 || dd[i] != floor(dd[i])) {
            fprintf(stderr, "wick kernel: --depths: %g is not a depth in 1..1000\n", dd[i]);
            return EXIT_USAGE;
        }
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
    json_t *root = NULL;
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
                wick_kernel_solve_out so = {NULL, NULL, NULL, &ev[q], 0, 0};
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
    wick_kernel_solve_opts so = {ridge, nA >= 5000 ? on_progress : NULL, &ps};
    double ev_full = NAN;
    wick_kernel_solve_out out = {gp, var, nt, &ev_full, 0, 0};
    double t0 = omp_get_wtime();
    if ((st = wick_kernel_solve(&h, x, yA, nA, x + nA * n0, nB, n0, K, &so, &out))) {
        ret = cli_fail("kernel", st);
        goto done;
    }
    double secs = omp_get_wtime() - t0;
    double acc_gp = accuracy(gp, lab + nA, nB, (int)classes), acc_nt = accuracy(nt, lab + nA, nB, (int)classes);
    double nf = (double)nA / 3 * (double)nA * (double)nA;
    printf("full training set: log evidence %.6f on %zu images; Cholesky NNGP %.1f s, NTK %.1f s "
           "(%.1f and %.1f GFLOP/s: n^3/3 = %.3g flops each)\n", ev_full, nA, out.chol_seconds_gp,
           out.chol_seconds_ntk, 1e-9 * nf / out.chol_seconds_gp, 1e-9 * nf / out.chol_seconds_ntk, nf);
    printf("test accuracy on %zu images: NNGP posterior mean %.4f, infinite-width trained network "
           "(NTK, t -> inf) %.4f  [%.1f s]\n", nB, acc_gp, acc_nt, secs);

    double vmean_ok = 0, vmean_bad = 0;
    size_t nok = 0;
    if (var) {
        double vmin = INFINITY, vmax = -INFINITY;
        for (size_t i = 0; i < nB; i++) {
            int b = 0;
            for (size_t k = 1; k < K; k++) if (gp[i * K + k] > gp[i * K + b]) b = (int)k;
            if (b == lab[nA + i]) { vmean_ok += var[i]; nok++; } else vmean_bad += var[i];
            vmin = fmin(vmin, var[i]);
            vmax = fmax(vmax, var[i]);
        }
        vmean_ok /= nok ? (double)nok : 1;
        vmean_bad /= nB - nok ? (double)(nB - nok) : 1;
        printf("NNGP posterior variance of the test predictions: %.4g .. %.4g; mean %.4g where the "
               "prediction is right, %.4g where it is wrong\n", vmin, vmax, vmean_ok, vmean_bad);
    }
    if (plot) {
        int ns = nd * ncb;
        wick_series *sr = calloc((size_t)ns + 1, sizeof *sr);
        char (*names)[64] = calloc((size_t)ns, 64), chosen[128];
        if (!sr || !names) { free(sr); free(names); ret = EXIT_FAIL; goto done; }
        for (int s = 0; s < ns; s++) {
            snprintf(names[s], 64, "depth %g, C_b = %g", dd[s / ncb], cbs[s % ncb]);
            /* a curve per (depth, C_b), as --help says: one colour per depth */
            sr[s] = (wick_series){names[s], noises, ev + (size_t)s * nno, NULL, (size_t)nno, 0, s / ncb + 1};
        }
        /* the choice, marked on its curve */
        snprintf(chosen, sizeof chosen, "chosen: depth %g, C_b = %g, noise %g", dd[bi], cbs[bj], noises[bk]);
        sr[ns] = (wick_series){chosen, noises + bk, ev + best, NULL, 1, 1, 0};
        ns++;
        char title[256];
        snprintf(title, sizeof title, "NNGP log evidence, %s, C_W = %g, %zu training images", wick_act_name(act),
                 cw, nA);
        st = wick_plot_png(plot, title, "observation noise variance", "log evidence", sr, ns, 1, 0);
        free(sr); free(names);
        if (st) { ret = cli_fail("kernel", st); goto done; }
    }
    if (json) {
        root = json_object();
        json_object_set_new(root, "activation", json_string(wick_act_name(act)));
        json_object_set_new(root, "cw", json_real(cw));
        json_object_set_new(root, "lambda_b", json_real(lb));
        json_object_set_new(root, "lambda_w", json_real(lw));
        json_object_set_new(root, "train", json_integer((json_int_t)nA));
        json_object_set_new(root, "test", json_integer((json_int_t)nB));
        json_object_set_new(root, "classes", json_integer(classes));
        json_t *grid = json_array();
        for (int q = 0; q < ncand; q++) {
            int i = q / (ncb * nno), j = (q / nno) % ncb, k = q % nno;
            json_array_append_new(grid, json_pack("{s:f,s:f,s:f,s:o}", "depth", dd[i], "cb", cbs[j],
                                                  "noise", noises[k], "log_evidence",
                                                  isfinite(ev[q]) ? json_real(ev[q]) : json_null()));
        }
        json_object_set_new(root, "grid", grid);
        json_object_set_new(root, "depth", json_integer(h.depth));
        json_object_set_new(root, "cb", json_real(h.cb));
        json_object_set_new(root, "noise", json_real(h.noise));
        json_object_set_new(root, "log_evidence", json_real(ev[best]));
        json_object_set_new(root, "accuracy_nngp", json_real(acc_gp));
        json_object_set_new(root, "accuracy_ntk", json_real(acc_nt));
        json_object_set_new(root, "select", json_integer((json_int_t)nsel));
        if (want_grad)
            json_object_set_new(root, "evidence_grad", json_pack("[f,f,f]", grad[0], grad[1], grad[2]));
        if (probes)
            json_object_set_new(root, "evidence_grad_full", json_pack("[f,f,f]", gradp[0], gradp[1], gradp[2]));
        json_object_set_new(root, "log_evidence_full", json_real(ev_full));
        json_object_set_new(root, "seconds", json_real(secs));
        if (var) {
            json_t *va = json_array();
            for (size_t i = 0; i < nB; i++) json_array_append_new(va, json_real(var[i]));
            json_object_set_new(root, "nngp_variance", va);
        }
        if (cli_write_json(stdout, "kernel", root, 17)) { ret = EXIT_FAIL; goto done; }
    }
done:
    json_decref(root);
    wick_dataset_free(tr); wick_dataset_free(te);
    free(x); free(lab); free(yA); free(gp); free(nt); free(ev); free(var);
    return ret;
}
