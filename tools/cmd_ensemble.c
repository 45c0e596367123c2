/* cmd_ensemble.c — wick ensemble: M finite-width networks at initialisation,
 * measured per layer (kernel, connected four-point correlator, standard
 * errors) beside the theory's K^(l) and 1/n vertex (docs/theory.md §3, §5, §6, §12). */
#include "cli.h"
#include "core/core.h"   /* wick_free for wick_csv_read's buffer */
#include <getopt.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void usage(FILE *f) {
    fprintf(f,
        "usage: wick ensemble [FLAGS]\n"
        "Samples M independent MLPs at initialisation (float64, every layer of width n) and\n"
        "measures per layer the kernel E[z_a z_b], the connected four-point correlator of one\n"
        "neuron E[z^4] - 3E[z^2]^2 and of two neurons E[z_i^2 z_j^2] - E[z^2]^2, with standard\n"
        "errors over networks, beside the theory (K^(l); 3V/n and V/n at order 1/n; for the\n"
        "scale-invariant class at C_b = 0 also the exact finite-width value).\n\n"
        "  --act NAME        activation (default relu; see wick theory --help)\n"
        "  --cb X            bias variance C_b (default: the critical value, else 0)\n"
        "  --cw X            weight variance C_W (default: the critical value, else 1)\n"
        "  --width N         width n of every layer (default 64)\n"
        "  --depth L         number of layers (default 16)\n"
        "  --samples M       number of networks (default 10000)\n"
        "  --seed S          seed (default 1); network k is the same for any M or thread count\n"
        "  --q X             one input of normalised squared norm |x|^2/n0 (default 1)\n"
        "  --inputs FILE     several inputs instead (at most 64): a CSV, one input per row\n"
        "  --threads N       threads (default: OMP_NUM_THREADS, else all cores)\n"
        "  --json            last line of stdout: one JSON object with per-layer arrays\n"
        "  --plot FILE.png   measured V/(nK^2) = connected4/(3K^2) with error bars over the\n"
        "                    theory curve (gnuplot)\n"
        "Exact finite-width values exist for C_b = 0 in the scale-invariant class (linear, relu,\n"
        "leaky_relu): E[z^4]/(3E[z^2]^2) = (1 + kappa/n)^(l-1), kappa = 2 linear, 5 relu.\n"
        "  --help            this text\n");
}


/* A per-layer array: a number per layer when rows = cols = 1, else per layer
 * an array of rows (cols = 1) or a rows x cols matrix. */
static json_t *jlayers(const double *v, size_t L, size_t rows, size_t cols) {
    json_t *a = json_array();
    size_t per = rows * cols;
    for (size_t l = 0; l < L; l++) {
        const double *p = v + l * per;
        if (per == 1) { json_array_append_new(a, cli_jnum(p[0])); continue; }
        json_t *row = json_array();
        for (size_t i = 0; i < rows; i++) {
            if (cols == 1) { json_array_append_new(row, cli_jnum(p[i])); continue; }
            json_t *r2 = json_array();
            for (size_t j = 0; j < cols; j++) json_array_append_new(r2, cli_jnum(p[i * cols + j]));
            json_array_append_new(row, r2);
        }
        json_array_append_new(a, row);
    }
    return a;
}

int cmd_ensemble(int argc, char **argv) {
    static const struct option opts[] = {
        {"act", required_argument, 0, 'a'},   {"cb", required_argument, 0, 'b'},
        {"cw", required_argument, 0, 'w'},    {"depth", required_argument, 0, 'L'},
        {"width", required_argument, 0, 'n'}, {"samples", required_argument, 0, 'M'},
        {"seed", required_argument, 0, 's'},  {"q", required_argument, 0, 'q'},
        {"inputs", required_argument, 0, 'i'}, {"threads", required_argument, 0, 't'},
        {"json", no_argument, 0, 'j'},        {"plot", required_argument, 0, 'p'},
        {"help", no_argument, 0, 'h'},        {0, 0, 0, 0}};
    const char *act_name = "relu", *inputs = NULL, *plot = NULL;
    double cb = NAN, cw = NAN, q = 1;
    long depth = 16, width = 64, samples = 10000, seed = 1, threads = 0;
    int json = 0, c;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 'a': act_name = optarg; break;
        case 'b': if (!cli_double("--cb", optarg, &cb)) return EXIT_USAGE; break;
        case 'w': if (!cli_double("--cw", optarg, &cw)) return EXIT_USAGE; break;
        case 'L': if (!cli_int("--depth", optarg, 1, 100000, &depth)) return EXIT_USAGE; break;
        case 'n': if (!cli_int("--width", optarg, 2, 65536, &width)) return EXIT_USAGE; break;
        case 'M': if (!cli_int("--samples", optarg, 2, 1000000000000L, &samples)) return EXIT_USAGE; break;
        case 's': if (!cli_int("--seed", optarg, 0, 0x7fffffffffffffffL, &seed)) return EXIT_USAGE; break;
        case 'q': if (!cli_double("--q", optarg, &q)) return EXIT_USAGE; break;
        case 'i': inputs = optarg; break;
        case 't': if (!cli_int("--threads", optarg, 1, 1024, &threads)) return EXIT_USAGE; break;
        case 'j': json = 1; break;
        case 'p': plot = optarg; break;
        case 'h': usage(stdout); return EXIT_OK;
        default:
            return cli_bad_flag("ensemble", argv);
        }
    }
    if (optind < argc) return cli_extra_argument("ensemble", argv);
    wick_act act;
    wick_status st = wick_act_parse(act_name, &act);
    if (st) return cli_fail("ensemble", st);
    if (q < 0) {
        fprintf(stderr, "wick ensemble: --q %g: a squared norm is not negative\n", q);
        return EXIT_USAGE;
    }
    int rc = cli_default_init("ensemble", act, &cb, &cw);
    if (rc != EXIT_OK) return rc;
    wick_set_threads((int)threads);

    size_t ni = 1;
    double *G0 = NULL;
    if (inputs) {
        double *x;
        size_t rows, cols;
        if ((st = wick_csv_read(inputs, 0, &x, &rows, &cols))) return cli_fail("ensemble", st);
        if (rows > 64) {
            wick_free(x);
            fprintf(stderr, "wick ensemble: %s: %zu inputs, at most 64 are measured at once\n",
                    inputs, rows);
            return EXIT_FAIL;
        }
        ni = rows;
        G0 = malloc(sizeof(double) * ni * ni);
        if (!G0) { wick_free(x); fprintf(stderr, "wick ensemble: out of memory\n"); return EXIT_FAIL; }
        st = wick_input_gram(x, rows, cols, G0);
        wick_free(x);
        if (st) { free(G0); return cli_fail("ensemble", st); }
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
    json_t *root = NULL;
    double *Kt = malloc(sizeof(double) * L * ni * ni), *c4t = malloc(sizeof(double) * L * ni),
           *p4t = malloc(sizeof(double) * L * ni), *ex4 = malloc(sizeof(double) * L * ni);
    if (!Kt || !c4t || !p4t || !ex4) { fprintf(stderr, "wick ensemble: out of memory\n"); ret = EXIT_FAIL; goto done; }
    if ((st = wick_ensemble_theory(&ec, Kt, c4t, p4t, ex4))) { ret = cli_fail("ensemble", st); goto done; }
    if ((st = wick_ensemble_run(&ec, &r))) { ret = cli_fail("ensemble", st); goto done; }
    int have_exact = isfinite(ex4[L * ni - 1]);

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

    if (plot) {
        double *lx = malloc(sizeof(double) * L * 5);
        if (!lx) { fprintf(stderr, "wick ensemble: out of memory\n"); ret = EXIT_FAIL; goto done; }
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
        st = wick_plot_png(plot, title, "layer l", "(E[z^4] - 3 E[z^2]^2) / (3 E[z^2]^2)", sr,
                           have_exact ? 3 : 2, 0, 0);
        free(lx);
        if (st) { ret = cli_fail("ensemble", st); goto done; }
    }

    if (json) {
        root = cli_json_init(act, cb, cw);
        json_object_set_new(root, "width", json_integer(width));
        json_object_set_new(root, "depth", json_integer(depth));
        json_object_set_new(root, "samples", json_integer(samples));
        json_object_set_new(root, "seed", json_integer(seed));
        json_object_set_new(root, "inputs", json_integer((json_int_t)ni));
        json_object_set_new(root, "threads", json_integer(r->threads));
        json_object_set_new(root, "seconds", json_real(r->seconds));
        json_object_set_new(root, "kernel", jlayers(r->kernel, L, ni, ni));
        json_object_set_new(root, "kernel_stderr", jlayers(r->kernel_stderr, L, ni, ni));
        json_object_set_new(root, "kernel_theory", jlayers(Kt, L, ni, ni));
        json_object_set_new(root, "connected4", jlayers(r->connected4, L, ni, 1));
        json_object_set_new(root, "connected4_stderr", jlayers(r->connected4_stderr, L, ni, 1));
        json_object_set_new(root, "connected4_theory", jlayers(c4t, L, ni, 1));
        if (have_exact) json_object_set_new(root, "connected4_exact", jlayers(ex4, L, ni, 1));
        json_object_set_new(root, "pair4", jlayers(r->pair4, L, ni, 1));
        json_object_set_new(root, "pair4_stderr", jlayers(r->pair4_stderr, L, ni, 1));
        json_object_set_new(root, "pair4_theory", jlayers(p4t, L, ni, 1));
        if (cli_write_json(stdout, "ensemble", root, 17)) { ret = EXIT_FAIL; goto done; }
    }
done:
    json_decref(root);
    wick_ensemble_free(r);
    free(Kt); free(c4t); free(p4t); free(ex4); free(G0);
    return ret;
}
