/* cmd_ensemble.c — wick ensemble: M finite-width networks at initialisation,
 * measured per layer (kernel, connected four-point correlator, standard
 * errors) beside the theory's K^(l) and 1/n vertex (docs/theory.md §3, §5, §6, §12). */
#include "cli.h"
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A per-layer array: a number per layer when rows = cols = 1, else per layer
 * an array of rows (cols = 1) or a rows x cols matrix. */
static json_t *jlayers(const double *v, size_t L, size_t rows, size_t cols) {
    json_t *a = json_array();
    size_t per = rows * cols;
    for (size_t l = 0; l < L; l++) {
        const double *p = v + l * per;
        if (per == 1) { json_array_append_new(a, cli_jnum(p[0])); continue; }
        /* an array of rows: a rows x 1 matrix's rows are single numbers */
        json_t *mat = cli_json_matrix(p, rows, cols);
        if (cols == 1)
            for (size_t i = 0; i < rows; i++) json_array_set_new(mat, i, cli_jnum(p[i]));
        json_array_append_new(a, mat);
    }
    return a;
}

/* What the command line asks for. */
typedef struct {
    const char *act_name, *inputs, *plot;
    double cb, cw, q;
    long depth, width, samples, seed, threads;
    int json;
} ensemble_args;

static ensemble_args A;   /* the table's destinations */

static const cli_opt ensemble_opts[] = {
    {"act", CLI_FN, &A.act_name, 0, 0, 0, NULL, "NAME", "activation (default relu; see wick theory --help)", NULL, cli_act_arg},
    {"cb", CLI_REAL, &A.cb, -INFINITY, INFINITY, 0, NULL, "X", "bias variance C_b (default: the critical value, else 0)", NULL, NULL},
    {"cw", CLI_REAL, &A.cw, -INFINITY, INFINITY, 0, NULL, "X", "weight variance C_W (default: the critical value, else 1)", NULL, NULL},
    {"width", CLI_INT, &A.width, 2, 65536, 0, "64", "N", "width n of every layer", NULL, NULL},
    {"depth", CLI_INT, &A.depth, CLI_DEPTH_MIN, CLI_DEPTH_MAX, 0, "16", "L", "number of layers", NULL, NULL},
    {"samples", CLI_INT, &A.samples, 2, 1000000000000L, 0, "10000", "M", "number of networks", NULL, NULL},
    {"seed", CLI_INT, &A.seed, 0, 0x7fffffffffffffffL, 0, NULL, "S", "seed (default 1); network k is the same for any M or thread count", NULL, NULL},
    {"q", CLI_REAL, &A.q, 0, INFINITY, 0, "1", "X", "one input of normalised squared norm |x|^2/n0", NULL, NULL},
    {"inputs", CLI_STR, &A.inputs, 0, 0, 0, NULL, "FILE", "several inputs instead (at most 64): a CSV, one input per row", NULL, NULL},
    {"threads", CLI_INT, &A.threads, 1, CLI_THREADS_MAX, 0, NULL, "N", "threads (default: OMP_NUM_THREADS, else all cores)", NULL, NULL},
    {"json", CLI_BOOL, &A.json, 0, 0, 0, NULL, NULL, "last line of stdout: one JSON object with per-layer arrays", NULL, NULL},
    {"plot", CLI_STR, &A.plot, 0, 0, 0, NULL, "FILE.png",
     "measured V/(nK^2) = connected4/(3K^2) with error bars over the\n"
     "theory curve (gnuplot)", NULL, NULL},
    {0}};

static const cli_cmd ensemble_cmd = {
    "ensemble",
    "usage: wick ensemble [FLAGS]\n"
    "Samples M independent MLPs at initialisation (float64, every layer of width n) and\n"
    "measures per layer the kernel E[z_a z_b], the connected four-point correlator of one\n"
    "neuron E[z^4] - 3E[z^2]^2 and of two neurons E[z_i^2 z_j^2] - E[z^2]^2, with standard\n"
    "errors over networks, beside the theory (K^(l); 3V/n and V/n at order 1/n; for the\n"
    "scale-invariant class at C_b = 0 also the exact finite-width value).\n\n",
    ensemble_opts,
    "Exact finite-width values exist for C_b = 0 in the scale-invariant class (linear, relu,\n"
    "leaky_relu): E[z^4]/(3E[z^2]^2) = (1 + kappa/n)^(l-1), kappa = 2 linear, 5 relu.\n",
    0, 0};

/* The command line into A; CLI_GO, or the exit code. */
static int ensemble_parse(int argc, char **argv) {
    A = (ensemble_args){.act_name = "relu", .cb = NAN, .cw = NAN, .seed = 1};
    return cli_parse(&ensemble_cmd, argc, argv, NULL);
}

/* What a run measured, beside the theory, for the report. */
typedef struct {
    wick_act act;
    double cb, cw;
    const double *G0;
    size_t ni, L;
    wick_ensemble_result *r;
    double *Kt, *c4t, *p4t, *ex4;   /* the theory: kernel, 3V/n, V/n, exact c4 */
    int have_exact;
} ensemble_out;

static int ensemble_run(wick_act act);
static void ensemble_print(const ensemble_out *o);
static int ensemble_plot(const ensemble_out *o, const char *path);
static int ensemble_json(const ensemble_out *o);

int cmd_ensemble(int argc, char **argv) {
    int prc = ensemble_parse(argc, argv);
    if (prc != CLI_GO) return prc;
    wick_act act;
    wick_status st = wick_act_parse(A.act_name, &act);
    if (st) return cli_fail("ensemble", st);
    return ensemble_run(act);
}

/* The ensemble of A and the theory beside it; then the report. */
static int ensemble_run(wick_act act) {
    const char *inputs = A.inputs, *plot = A.plot;
    double cb = A.cb, cw = A.cw, q = A.q;
    long depth = A.depth, width = A.width, samples = A.samples, seed = A.seed, threads = A.threads;
    int json = A.json;
    wick_status st;
    int rc = cli_default_init("ensemble", act, &cb, &cw);
    if (rc != EXIT_OK) return rc;
    wick_set_threads((int)threads);

    size_t ni = 1;
    double *G0 = NULL;
    if (inputs) {
        int rc2 = cli_csv_gram("ensemble", inputs, 64, &G0, &ni);
        if (rc2 != EXIT_OK) return rc2;
    } else {
        G0 = malloc(sizeof(double));
        if (!G0) return EXIT_FAIL;
        G0[0] = q;
    }

    wick_ensemble_config ec = {act, cb, cw, (int)depth, (size_t)width, (size_t)samples,
                               (uint64_t)seed, G0, ni};
    size_t L = (size_t)depth;
    fprintf(stderr, "wick %s | threads %d | seed %ld | %s\n", wick_version(), wick_threads(), seed,
            wick_library_versions());
    int ret = EXIT_OK;
    wick_ensemble_result *r = NULL;
    double *Kt = malloc(sizeof(double) * L * ni * ni), *c4t = malloc(sizeof(double) * L * ni),
           *p4t = malloc(sizeof(double) * L * ni), *ex4 = malloc(sizeof(double) * L * ni);
    if (!Kt || !c4t || !p4t || !ex4) { fprintf(stderr, "wick ensemble: out of memory\n"); ret = EXIT_FAIL; goto done; }
    if ((st = wick_ensemble_theory(&ec, Kt, c4t, p4t, ex4))) { ret = cli_fail("ensemble", st); goto done; }
    if ((st = wick_ensemble_run(&ec, &r))) { ret = cli_fail("ensemble", st); goto done; }
    ensemble_out o = {act, cb, cw, G0, ni, L, r, Kt, c4t, p4t, ex4, isfinite(ex4[L * ni - 1])};
    ensemble_print(&o);
    if (plot && (ret = ensemble_plot(&o, plot)) != EXIT_OK) goto done;
    if (json) ret = ensemble_json(&o);
done:
    wick_ensemble_free(r);
    free(Kt); free(c4t); free(p4t); free(ex4); free(G0);
    return ret;
}

/* The table: per input and layer, measured beside the theory. */
static void ensemble_print(const ensemble_out *o) {
    wick_act act = o->act;
    double cb = o->cb, cw = o->cw;
    size_t ni = o->ni, L = o->L;
    const wick_ensemble_result *r = o->r;
    const double *Kt = o->Kt, *c4t = o->c4t, *ex4 = o->ex4, *G0 = o->G0;
    int have_exact = o->have_exact;
    long width = A.width, depth = A.depth, samples = A.samples, seed = A.seed;
    printf("# wick ensemble: %s, C_b = %.9g, C_W = %.9g, width %ld, depth %ld, %ld networks, "
           "seed %ld, %zu input%s: %.3f s on %d threads\n", wick_act_name(act), cb, cw, width,
           depth, samples, seed, ni, ni > 1 ? "s" : "", r->seconds, r->threads);
    printf("# K = E[z^2]; c4 = E[z^4] - 3E[z^2]^2 (one neuron), theory 3V/n; "
           "z: (measured - theory)/stderr\n");
    for (size_t a = 0; a < ni; a++) {
        if (ni > 1) printf("input %zu (q = %.9g)\n", a, G0[a * ni + a]);
        printf("%5s %13s %11s %13s %7s %13s %11s %13s %7s%s\n", "layer", "K", "+-", "K theory",
               "z", "c4", "+-", "3V/n", "z", have_exact ? "    c4 exact      z" : "");
        for (size_t l = 0; l < L; l++) {
            size_t kq = l * ni * ni + a * ni + a, cq = l * ni + a;
            double K = r->kernel[kq], Ks = r->kernel_stderr[kq], c4 = r->connected4[cq],
                   c4s = r->connected4_stderr[cq];
            printf("%5zu %13.6g %11.3g %13.6g %7.2f %13.6g %11.3g %13.6g %7.2f", l + 1, K, Ks,
                   Kt[kq], Ks > 0 ? (K - Kt[kq]) / Ks : 0.0, c4, c4s, c4t[cq],
                   c4s > 0 ? (c4 - c4t[cq]) / c4s : 0.0);
            if (have_exact) printf(" %13.6g %6.2f", ex4[cq], c4s > 0 ? (c4 - ex4[cq]) / c4s : 0.0);
            printf("\n");
        }
    }
}

/* --plot: the measured V/(nK^2) with error bars over the theory curve. */
static int ensemble_plot(const ensemble_out *o, const char *path) {
    wick_act act = o->act;
    double cb = o->cb, cw = o->cw;
    size_t ni = o->ni, L = o->L;
    const wick_ensemble_result *r = o->r;
    const double *Kt = o->Kt, *c4t = o->c4t, *ex4 = o->ex4;
    int have_exact = o->have_exact;
    long width = A.width, samples = A.samples;
    double *lx = malloc(sizeof(double) * L * 5);
    if (!lx) { fprintf(stderr, "wick ensemble: out of memory\n"); return EXIT_FAIL; }
    double *ym = lx + L, *ye = lx + 2 * L, *yt = lx + 3 * L, *yx = lx + 4 * L;
    for (size_t l = 0; l < L; l++) {
        double K = r->kernel[l * ni * ni];
        double s = 3 * K * K;
        lx[l] = (double)(l + 1);
        ym[l] = r->connected4[l * ni] / s;
        ye[l] = r->connected4_stderr[l * ni] / s;
        double Kth = Kt[l * ni * ni];
        yt[l] = c4t[l * ni] / (3 * Kth * Kth);
        yx[l] = ex4[l * ni] / (3 * Kth * Kth);
    }
    wick_series sr[3] = {{"measured (+- 1 s.e.)", lx, ym, ye, L, 1, 0},
                         {"theory V/(nK^2), order 1/n", lx, yt, NULL, L, 0, 0},
                         {"exact at width n", lx, yx, NULL, L, 0, 0}};
    char title[256];
    snprintf(title, sizeof title, "%s, C_b = %g, C_W = %g, n = %ld, M = %ld%s", wick_act_name(act),
             cb, cw, width, samples, ni > 1 ? " (input 0)" : "");
    wick_status st = wick_plot_png(path, title, "layer l", "(E[z^4] - 3 E[z^2]^2) / (3 E[z^2]^2)", sr,
                                   have_exact ? 3 : 2, 0, 0);
    free(lx);
    return st ? cli_fail("ensemble", st) : EXIT_OK;
}

/* --json: one object, per-layer arrays. */
static int ensemble_json(const ensemble_out *o) {
    size_t ni = o->ni, L = o->L;
    const wick_ensemble_result *r = o->r;
    /* the run's key figures and what it measured, each beside the theory */
    json_t *root = cli_json_init(o->act, o->cb, o->cw);
    json_object_set_new(root, "width", json_integer(A.width));
    json_object_set_new(root, "depth", json_integer(A.depth));
    json_object_set_new(root, "samples", json_integer(A.samples));
    json_object_set_new(root, "seed", json_integer(A.seed));
    json_object_set_new(root, "inputs", json_integer((json_int_t)ni));
    json_object_set_new(root, "threads", json_integer(r->threads));
    json_object_set_new(root, "seconds", json_real(r->seconds));
    json_object_set_new(root, "kernel", jlayers(r->kernel, L, ni, ni));
    json_object_set_new(root, "kernel_stderr", jlayers(r->kernel_stderr, L, ni, ni));
    json_object_set_new(root, "kernel_theory", jlayers(o->Kt, L, ni, ni));
    json_object_set_new(root, "connected4", jlayers(r->connected4, L, ni, 1));
    json_object_set_new(root, "connected4_stderr", jlayers(r->connected4_stderr, L, ni, 1));
    json_object_set_new(root, "connected4_theory", jlayers(o->c4t, L, ni, 1));
    if (o->have_exact) json_object_set_new(root, "connected4_exact", jlayers(o->ex4, L, ni, 1));
    json_object_set_new(root, "pair4", jlayers(r->pair4, L, ni, 1));
    json_object_set_new(root, "pair4_stderr", jlayers(r->pair4_stderr, L, ni, 1));
    json_object_set_new(root, "pair4_theory", jlayers(o->p4t, L, ni, 1));
    int ret = cli_write_json(stdout, "ensemble", root, 17);
    json_decref(root);
    return ret;
}
