/* cmd_sweep.c — wick sweep: the aspect-ratio law.  Ensembles over widths and
 * depths measure the normalised deviation from Gaussianity
 * E[z^4]/(3E[z^2]^2) - 1 (theory V/(nK^2), docs/theory.md §6) and fit it against L/n:
 * the book's claim is that depth-to-width, not depth or width alone, sets the
 * distance from infinite width. */
#include "cli.h"
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* What the command line asks for. */
typedef struct {
    const char *act_name, *plot;
    cli_ints widths, depths;
    double cb, cw, q, fit_max;
    long samples, seed, threads;
    int json, fit_log;
} sweep_args;

static sweep_args A;   /* the table's destinations */

static const cli_opt sweep_opts[] = {
    {"act", CLI_FN, &A.act_name, 0, 0, 0, "relu", "NAME", "activation", NULL, cli_act_arg},
    {"cb", CLI_REAL, &A.cb, -INFINITY, INFINITY, 0, NULL, "X", "bias variance C_b (default: the critical value, else 0)", NULL, NULL},
    {"cw", CLI_REAL, &A.cw, -INFINITY, INFINITY, 0, NULL, "X", "weight variance C_W (default: the critical value, else 1)", NULL, NULL},
    {"widths", CLI_INTS, &A.widths, 2, 65536, 0, "32,64,128", "LIST", "widths, comma separated", "16", NULL},
    {"depths", CLI_INTS, &A.depths, CLI_DEPTH_MIN, CLI_DEPTH_MAX, 0, "4,16,64", "LIST", "layers to read, comma separated", "32", NULL},
    {"samples", CLI_INT, &A.samples, 2, 1000000000000L, 0, "10000", "M", "networks per width", NULL, NULL},
    {"seed", CLI_INT, &A.seed, 0, 0x7fffffffffffffffL, 0, "1", "S", "seed", NULL, NULL},
    {"q", CLI_REAL, &A.q, 0, INFINITY, CLI_OPEN_LO, "1", "X", "the input's normalised squared norm |x|^2/n0", NULL, NULL},
    {"fit-max", CLI_REAL, &A.fit_max, -INFINITY, INFINITY, 0, "0.5", "X", "fit over points with L/n <= X", NULL, NULL},
    {"fit-log", CLI_BOOL, &A.fit_log, 0, 0, 0, NULL, NULL,
     "fit log(1 + R) instead of R (error s.e./(1 + R)): for the scale-\n"
     "invariant class log(1 + R) = (L-1) log(1 + kappa/n) exactly, linear in\n"
     "L/n at any depth, where R itself grows like exp(kappa L/n)", NULL, NULL},
    {"threads", CLI_INT, &A.threads, 1, CLI_THREADS_MAX, 0, NULL, "N", "threads (default: OMP_NUM_THREADS, else all cores)", NULL, NULL},
    {"json", CLI_BOOL, &A.json, 0, 0, 0, NULL, NULL, "last line of stdout: one JSON object (arrays over the points)", NULL, NULL},
    {"plot", CLI_STR, &A.plot, 0, 0, 0, NULL, "FILE.png", "R against L/n per width, with error bars, over the theory curves", NULL, NULL},
    {0}};

static const cli_cmd sweep_cmd = {
    "sweep",
    "usage: wick sweep [FLAGS]\n"
    "The aspect-ratio law: for every width n, M networks of the largest depth are sampled\n"
    "(wick ensemble) and each listed layer L gives R = E[z^4]/(3E[z^2]^2) - 1 with its standard\n"
    "error, beside the theory's V/(nK^2) at order 1/n (and the exact value where one exists).\n"
    "R is fitted as slope * L/n + intercept over the points with L/n <= --fit-max.\n\n",
    sweep_opts, NULL, 0, 0};

/* The command line into A; CLI_GO, or the exit code. */
static int sweep_parse(int argc, char **argv) {
    A = (sweep_args){.cb = NAN, .cw = NAN};
    return cli_parse(&sweep_cmd, argc, argv, NULL);
}

/* What the sweep measured and fitted, for the report. */
typedef struct {
    wick_act act;
    double cb, cw;
    const double *P;   /* per point: n, L, L/n, R, se, R theory, R exact, K, K se, K theory */
    double slope, slope_se, icpt, icpt_se, chi2, tslope;
} sweep_out;

static int sweep_run(void);
static int sweep_plot(const sweep_out *o, const char *path);
static int sweep_json(const sweep_out *o);

int cmd_sweep(int argc, char **argv) {
    int prc = sweep_parse(argc, argv);
    return prc != CLI_GO ? prc : sweep_run();
}

/* The ensembles of A and the fit, printed as they come; then the plot and the JSON. */
static int sweep_run(void) {
    const char *act_name = A.act_name, *plot = A.plot;
    double cb = A.cb, cw = A.cw, q = A.q, fit_max = A.fit_max;
    long samples = A.samples, seed = A.seed, threads = A.threads;
    int json = A.json, fit_log = A.fit_log;
    const long *widths = A.widths.v, *depths = A.depths.v;
    int nw = A.widths.n, nd = A.depths.n;
    wick_act act;
    wick_status st = wick_act_parse(act_name, &act);
    if (st) return cli_fail("sweep", st);
    int rc = cli_default_init("sweep", act, &cb, &cw);
    if (rc != EXIT_OK) return rc;
    wick_set_threads((int)threads);
    long Lmax = 0;
    for (int d = 0; d < nd; d++) if (depths[d] > Lmax) Lmax = depths[d];

    size_t np = (size_t)nw * (size_t)nd;
    /* per point: n, L, L/n, R, se, R theory, R exact, K, K se, K theory */
    double *P = calloc(np * 10, sizeof(double));
    double *Kt = malloc(sizeof(double) * (size_t)Lmax * 3);
    if (!P || !Kt) { free(P); free(Kt); fprintf(stderr, "wick sweep: out of memory\n"); return EXIT_FAIL; }
    double *c4t = Kt + Lmax, *ex4 = Kt + 2 * Lmax;
    fprintf(stderr, "wick %s | threads %d | seed %ld | %s\n", wick_version(), wick_threads(), seed,
            wick_library_versions());
    printf("# wick sweep: %s, C_b = %.9g, C_W = %.9g, %ld networks per width, seed %ld, q = %.9g\n",
           wick_act_name(act), cb, cw, samples, seed, q);
    printf("# R = E[z^4]/(3E[z^2]^2) - 1; theory V/(nK^2) at order 1/n; exact where known\n");
    printf("%6s %6s %8s %13s %11s %13s %13s %7s %11s %11s %11s\n", "n", "L", "L/n", "R", "+-",
           "V/(nK^2)", "R exact", "z", "K", "+-", "K theory");
    int ret = EXIT_OK;
    for (int w = 0; w < nw; w++) {
        wick_ensemble_config ec = {act, cb, cw, (int)Lmax, (size_t)widths[w], (size_t)samples,
                                   (uint64_t)seed, &q, 1};
        wick_ensemble_result *r = NULL;
        if ((st = wick_ensemble_theory(&ec, Kt, c4t, NULL, ex4)) || (st = wick_ensemble_run(&ec, &r))) {
            ret = cli_fail("sweep", st);
            goto done;
        }
        for (int d = 0; d < nd; d++) {
            size_t l = (size_t)depths[d] - 1;
            double *p = P + ((size_t)w * nd + d) * 10;
            p[0] = (double)widths[w]; p[1] = (double)depths[d]; p[2] = p[1] / p[0];
            p[3] = r->ratio4[l]; p[4] = r->ratio4_stderr[l];
            p[5] = c4t[l] / (3 * Kt[l] * Kt[l]);
            p[6] = ex4[l] / (3 * Kt[l] * Kt[l]);
            p[7] = r->kernel[l]; p[8] = r->kernel_stderr[l]; p[9] = Kt[l];
            double ref = isfinite(p[6]) ? p[6] : p[5];
            printf("%6ld %6ld %8.4f %13.6g %11.3g %13.6g %13.6g %7.2f %11.6g %11.3g %11.6g\n",
                   widths[w], depths[d], p[2], p[3], p[4], p[5], p[6],
                   p[4] > 0 ? (p[3] - ref) / p[4] : 0.0, p[7], p[8], p[9]);
        }
        fprintf(stderr, "width %ld: %ld networks of depth %ld in %.2f s on %d threads\n", widths[w],
                samples, Lmax, r->seconds, r->threads);
        fflush(stdout);
        wick_ensemble_free(r);
    }

    /* the fit over L/n <= fit_max, measured and theory alike */
    double fx[512], fy[512], fe[512], ft[512];
    size_t nf = 0;
    for (size_t i = 0; i < np && nf < 512; i++) {
        const double *p = P + i * 10;
        if (p[2] <= fit_max && p[4] > 0 && isfinite(p[3]) && (!fit_log || p[3] > -1)) {
            fx[nf] = p[2]; fy[nf] = p[3]; fe[nf] = p[4]; ft[nf] = p[5];
            if (fit_log) {
                fy[nf] = log1p(p[3]); fe[nf] = p[4] / (1 + p[3]);
                ft[nf] = log1p(isfinite(p[6]) ? p[6] : p[5]);
            }
            nf++;
        }
    }
    double slope = NAN, slope_se = NAN, icpt = NAN, icpt_se = NAN, chi2 = NAN;
    double tslope = NAN, ticpt = NAN;
    if (nf >= 3) {
        if ((st = wick_fit_line(fx, fy, fe, nf, &slope, &slope_se, &icpt, &icpt_se, &chi2))) {
            ret = cli_fail("sweep", st);
            goto done;
        }
        double tse, ise, tchi;
        wick_fit_line(fx, ft, fe, nf, &tslope, &tse, &ticpt, &ise, &tchi);
        const char *yv = fit_log ? "log(1+R)" : "R";
        printf("fit over %zu points with L/n <= %g: %s = (%.6g +- %.3g) L/n + (%.6g +- %.3g), "
               "chi2/dof = %.3g\n", nf, fit_max, yv, slope, slope_se, icpt, icpt_se, chi2);
        printf("theory (%s) fitted the same way: slope %.6g, intercept %.6g\n",
               fit_log ? "log(1 + exact R), else log(1 + V/(nK^2))" : "V/(nK^2)", tslope, ticpt);
    } else {
        printf("fit: only %zu points with L/n <= %g, no fit\n", nf, fit_max);
    }

    sweep_out o = {act, cb, cw, P, slope, slope_se, icpt, icpt_se, chi2, tslope};
    if (plot && (ret = sweep_plot(&o, plot)) != EXIT_OK) goto done;
    if (json) ret = sweep_json(&o);
done:
    free(P); free(Kt);
    return ret;
}

/* --plot: R against L/n per width, with error bars, over the theory curves and the fit. */
static int sweep_plot(const sweep_out *o, const char *path) {
    wick_act act = o->act;
    double cb = o->cb, cw = o->cw, fit_max = A.fit_max;
    double slope = o->slope, slope_se = o->slope_se, icpt = o->icpt;
    const double *P = o->P;
    const long *widths = A.widths.v;
    long samples = A.samples;
    int nw = A.widths.n, nd = A.depths.n, fit_log = A.fit_log;
    size_t np = (size_t)nw * (size_t)nd;
    wick_series sr[33];
    int ns = 0;
    static char names[33][64];
    double *buf = malloc(sizeof(double) * np * 4 + 2 * 64 * sizeof(double));
    if (!buf) { fprintf(stderr, "wick sweep: out of memory\n"); return EXIT_FAIL; }
    for (int w = 0; w < nw && ns < 30; w++) {
        double *x = buf + (size_t)w * nd * 4, *y = x + nd, *e = y + nd, *t = e + nd;
        for (int d = 0; d < nd; d++) {
            const double *p = P + ((size_t)w * nd + d) * 10;
            x[d] = p[2]; y[d] = p[3]; e[d] = p[4]; t[d] = isfinite(p[6]) ? p[6] : p[5];
        }
        snprintf(names[ns], 64, "n = %ld measured", widths[w]);
        sr[ns++] = (wick_series){names[ns - 1], x, y, e, (size_t)nd, 1, w + 1};
        snprintf(names[ns], 64, "n = %ld %s", widths[w],
                 isfinite(P[((size_t)w * nd) * 10 + 6]) ? "exact" : "theory V/(nK^2)");
        sr[ns++] = (wick_series){names[ns - 1], x, t, NULL, (size_t)nd, 0, w + 1};
    }
    double *lx = buf + np * 4, *ly = lx + 64;
    if (isfinite(slope)) {
        for (int i = 0; i < 64; i++) {
            lx[i] = fit_max * i / 63.0;
            ly[i] = icpt + slope * lx[i];
            if (fit_log) ly[i] = expm1(ly[i]);
        }
        snprintf(names[ns], 64, "fit: slope %.3g +- %.2g", slope, slope_se);
        sr[ns++] = (wick_series){names[ns - 1], lx, ly, NULL, 64, 0, 0};
    }
    char title[256];
    snprintf(title, sizeof title, "aspect-ratio law: %s, C_b = %g, C_W = %g, M = %ld", wick_act_name(act),
             cb, cw, samples);
    wick_status st = wick_plot_png(path, title, "L/n", "E[z^4]/(3 E[z^2]^2) - 1", sr, ns, 0, 0);
    free(buf);
    return st ? cli_fail("sweep", st) : EXIT_OK;
}

/* --json: one object, arrays over the points. */
static int sweep_json(const sweep_out *o) {
    size_t np = (size_t)A.widths.n * (size_t)A.depths.n;
    json_t *root = cli_json_init(o->act, o->cb, o->cw);
    json_object_set_new(root, "samples", json_integer(A.samples));
    json_object_set_new(root, "seed", json_integer(A.seed));
    static const char *keys[10] = {"width", "depth", "aspect_ratio", "ratio4", "ratio4_stderr",
                                   "ratio4_theory", "ratio4_exact", "kernel", "kernel_stderr",
                                   "kernel_theory"};
    for (int k = 0; k < 10; k++) {
        json_t *a = json_array();
        for (size_t i = 0; i < np; i++) json_array_append_new(a, cli_jnum(o->P[i * 10 + k]));
        json_object_set_new(root, keys[k], a);
    }
    json_object_set_new(root, "fit_max", json_real(A.fit_max));
    json_object_set_new(root, "fit_log", json_boolean(A.fit_log));
    json_object_set_new(root, "slope", cli_jnum(o->slope));
    json_object_set_new(root, "slope_stderr", cli_jnum(o->slope_se));
    json_object_set_new(root, "intercept", cli_jnum(o->icpt));
    json_object_set_new(root, "intercept_stderr", cli_jnum(o->icpt_se));
    json_object_set_new(root, "chi2_dof", cli_jnum(o->chi2));
    json_object_set_new(root, "slope_theory", cli_jnum(o->tslope));
    int ret = cli_write_json(stdout, "sweep", root, 17);
    json_decref(root);
    return ret;
}
