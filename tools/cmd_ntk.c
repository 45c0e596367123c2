/* cmd_ntk.c — wick ntk: the empirical NTK of M finite networks (through the
 * autodiff graph) against the infinite-width Theta^(L), for one or several
 * depths: its mean, and its fluctuation n Var[H]/Theta^2, which the theory
 * puts at O(1/n), growing with depth (docs/theory.md §7). */
#include "cli.h"
#include "core/core.h"
#include <getopt.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void usage(FILE *f) {
    fprintf(f,
        "usage: wick ntk [FLAGS]\n"
        "Computes the empirical NTK H = sum_params lambda dz/dtheta dz/dtheta (docs/theory.md §7:\n"
        "lambda_b for biases, lambda_W/n_{l-1} for weights) of M float64 networks through the\n"
        "autodiff graph,\n"
        "and sets its ensemble mean beside Theta^(L) and its fluctuation n Var[H]/Theta^2.\n\n"
        "  --act NAME        activation (default relu)\n"
        "  --cb X            bias variance C_b (default: the critical value, else 0)\n"
        "  --cw X            weight variance C_W (default: the critical value, else 1)\n"
        "  --lambda-b X      bias learning rate lambda_b (default 1)\n"
        "  --lambda-w X      weight learning rate lambda_W (default 1)\n"
        "  --width N         hidden width n (default 64)\n"
        "  --depth L[,L...]  depth, or a comma list of depths (default 4)\n"
        "  --outputs K       output width n_L (default 1)\n"
        "  --samples M       networks per depth (default 1000)\n"
        "  --seed S          seed (default 1)\n"
        "  --q X             one input x = sqrt(X) (1, ..., 1) of dimension --n0 (default 1)\n"
        "  --n0 N            input dimension for --q (default 8)\n"
        "  --inputs FILE     inputs instead: a CSV, one input per row (at most 64)\n"
        "  --threads N       threads (default: OMP_NUM_THREADS, else all cores)\n"
        "  --json            last line of stdout: one JSON object, per-depth arrays\n"
        "  --plot FILE.png   n Var[H_00]/Theta_00^2 against L/n with error bars (several depths)\n"
        "  --order1          instead, the order-1/n tensors of one input of norm --q, every\n"
        "                    layer of width n and n outputs (docs/theory-finite-width.md):\n"
        "                    per layer the measured K1, Theta1 (control variates), V, A, B,\n"
        "                    D, F (each n times its covariance: tensor + O(1/n)) with\n"
        "                    standard errors, beside the recursions' predictions\n"
        "  --help            this text\n");
}


static json_t *jmat(const double *m, size_t n) {
    if (n == 1) return cli_jnum(m[0]);
    json_t *a = json_array();
    for (size_t i = 0; i < n; i++) {
        json_t *row = json_array();
        for (size_t j = 0; j < n; j++) json_array_append_new(row, cli_jnum(m[i * n + j]));
        json_array_append_new(a, row);
    }
    return a;
}

/* "4,8,16" into depths (at most max); 0 on junk */
static int parse_list(const char *s, long *out, int max) {
    int k = 0;
    char buf[512];
    snprintf(buf, sizeof buf, "%s", s);
    for (char *tok = strtok(buf, ","); tok; tok = strtok(NULL, ",")) {
        if (k == max || !cli_int("--depth", tok, 1, 100000, &out[k])) return 0;
        k++;
    }
    return k;
}

/* --order1: wick_ntk_fluct_run beside wick_theory_finite, per layer. */
static int run_order1(wick_act act, double cb, double cw, double lb, double lw, double q, int L,
                      size_t n, size_t M, uint64_t seed, int json) {
    wick_theory_config tc = wick_theory_defaults(act, L);
    tc.cb = cb; tc.cw = cw; tc.lambda_b = lb; tc.lambda_w = lw; tc.width = n;
    wick_layer_finite *th = calloc((size_t)L, sizeof *th);
    if (!th) { fprintf(stderr, "wick ntk: out of memory\n"); return EXIT_FAIL; }
    wick_status st = wick_theory_finite(&tc, q, th);
    if (st) { free(th); return cli_fail("ntk", st); }
    wick_ntk_fluct_config fc = {act, cb, cw, lb, lw, q, L, n, M, seed};
    wick_ntk_fluct_result *r = NULL;
    if ((st = wick_ntk_fluct_run(&fc, &r))) { free(th); return cli_fail("ntk", st); }
    fprintf(stderr, "wick %s | threads %d | seed %llu | %s\n", wick_version(), r->threads,
            (unsigned long long)seed, wick_library_versions());
    printf("# wick ntk --order1: %s, C_b = %.9g, C_W = %.9g, lambda_b = %.9g, lambda_W = %.9g, "
           "q = %.9g, width %zu, depth %d, %zu networks, %.1f s\n", wick_act_name(act), cb, cw, lb,
           lw, q, n, L, M, r->seconds);
    printf("# measured +- standard error [predicted]; K1 = n (E[zz] - K), Theta1 = n (E[H_ii] - "
           "Theta); V, A, B, D, F: n times the covariance\n");
    static const char *names[7] = {"K1", "ntk1", "V", "A", "B", "D", "F"};
    static const int ent[7] = {WICK_FL_KCV, WICK_FL_NTKCV, WICK_FL_V, WICK_FL_A, WICK_FL_B,
                               WICK_FL_D, WICK_FL_F};
    double nd = (double)n;
    json_t *arrs[7][3];
    for (int k = 0; k < 7; k++)
        for (int a = 0; a < 3; a++) arrs[k][a] = json_array();
    for (int l = 0; l < L; l++) {
        const wick_layer_finite *t = th + l;
        double pred[7] = {t->K1, t->ntk1, t->V, t->A, t->B, t->D, t->F};
        printf("layer %d\n", l + 1);
        for (int k = 0; k < 7; k++) {
            const double *v = r->val + ((size_t)l * WICK_FL_COUNT + (size_t)ent[k]) * 2;
            double m = v[0], se = v[1];
            if (k == 0) { m = nd * (v[0] - t->K); se = nd * v[1]; }
            if (k == 1) { m = nd * (v[0] - t->ntk); se = nd * v[1]; }
            printf("  %-5s %14.6g +- %-11.3g [%.6g]\n", names[k], m, se, pred[k]);
            json_array_append_new(arrs[k][0], cli_jnum(m));
            json_array_append_new(arrs[k][1], cli_jnum(se));
            json_array_append_new(arrs[k][2], cli_jnum(pred[k]));
        }
    }
    int ret = EXIT_OK;
    if (json) {
        json_t *root = cli_json_init(act, cb, cw);
        json_object_set_new(root, "lambda_b", json_real(lb));
        json_object_set_new(root, "lambda_w", json_real(lw));
        json_object_set_new(root, "q", json_real(q));
        json_object_set_new(root, "width", json_integer((json_int_t)n));
        json_object_set_new(root, "depth", json_integer(L));
        json_object_set_new(root, "samples", json_integer((json_int_t)M));
        json_object_set_new(root, "seed", json_integer((json_int_t)seed));
        json_object_set_new(root, "seconds", json_real(r->seconds));
        for (int k = 0; k < 7; k++) {
            /* per key: arrays over layers (index l-1 is layer l) */
            json_t *o = json_object();
            json_object_set_new(o, "measured", arrs[k][0]);
            json_object_set_new(o, "stderr", arrs[k][1]);
            json_object_set_new(o, "predicted", arrs[k][2]);
            json_object_set_new(root, names[k], o);
        }
        if (cli_write_json(stdout, "ntk", root, 17)) ret = EXIT_FAIL;
        json_decref(root);
    } else {
        for (int k = 0; k < 7; k++)
            for (int a = 0; a < 3; a++) json_decref(arrs[k][a]);
    }
    wick_ntk_fluct_free(r);
    free(th);
    return ret;
}

int cmd_ntk(int argc, char **argv) {
    static const struct option opts[] = {
        {"act", 1, 0, 'a'}, {"cb", 1, 0, 'b'}, {"cw", 1, 0, 'w'}, {"lambda-b", 1, 0, 'B'},
        {"lambda-w", 1, 0, 'W'}, {"width", 1, 0, 'n'}, {"depth", 1, 0, 'L'}, {"outputs", 1, 0, 'o'},
        {"samples", 1, 0, 'M'}, {"seed", 1, 0, 's'}, {"q", 1, 0, 'q'}, {"n0", 1, 0, 'z'},
        {"inputs", 1, 0, 'i'}, {"threads", 1, 0, 't'}, {"json", 0, 0, 'j'}, {"plot", 1, 0, 'p'},
        {"order1", 0, 0, '1'}, {"help", 0, 0, 'h'}, {0, 0, 0, 0}};
    const char *act_name = "relu", *inputs = NULL, *plot = NULL, *depth_s = "4";
    int order1 = 0;
    double cb = NAN, cw = NAN, lb = 1, lw = 1, q = 1;
    long width = 64, outputs = 1, samples = 1000, seed = 1, n0 = 8, threads = 0;
    int json = 0, c;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 'a': act_name = optarg; break;
        case 'b': if (!cli_double("--cb", optarg, &cb)) return EXIT_USAGE; break;
        case 'w': if (!cli_double("--cw", optarg, &cw)) return EXIT_USAGE; break;
        case 'B': if (!cli_double("--lambda-b", optarg, &lb)) return EXIT_USAGE; break;
        case 'W': if (!cli_double("--lambda-w", optarg, &lw)) return EXIT_USAGE; break;
        case 'n': if (!cli_int("--width", optarg, 1, 1 << 20, &width)) return EXIT_USAGE; break;
        case 'L': depth_s = optarg; break;
        case 'o': if (!cli_int("--outputs", optarg, 1, 4096, &outputs)) return EXIT_USAGE; break;
        case 'M': if (!cli_int("--samples", optarg, 2, 1L << 32, &samples)) return EXIT_USAGE; break;
        case 's': if (!cli_int("--seed", optarg, 0, 0x7fffffffffffffffL, &seed)) return EXIT_USAGE; break;
        case 'q': if (!cli_double("--q", optarg, &q)) return EXIT_USAGE; break;
        case 'z': if (!cli_int("--n0", optarg, 1, 1 << 20, &n0)) return EXIT_USAGE; break;
        case 'i': inputs = optarg; break;
        case 't': if (!cli_int("--threads", optarg, 1, 1024, &threads)) return EXIT_USAGE; break;
        case 'j': json = 1; break;
        case 'p': plot = optarg; break;
        case '1': order1 = 1; break;
        case 'h': usage(stdout); return EXIT_OK;
        default:
            return cli_bad_flag("ntk", argv);
        }
    }
    if (optind < argc) return cli_extra_argument("ntk", argv);
    long depths[64];
    int nd = parse_list(depth_s, depths, 64);
    if (!nd) {
        fprintf(stderr, "wick ntk: --depth '%s': expected depths 1..100000, comma separated (at most 64)\n",
                depth_s);
        return EXIT_USAGE;
    }
    if (q < 0) { fprintf(stderr, "wick ntk: --q %g: a squared norm is not negative\n", q); return EXIT_USAGE; }
    wick_act act;
    wick_status st = wick_act_parse(act_name, &act);
    if (st) return cli_fail("ntk", st);
    int rc = cli_default_init("ntk", act, &cb, &cw);
    if (rc != EXIT_OK) return rc;
    wick_set_threads((int)threads);
    if (order1) {
        if (inputs || nd != 1 || plot) {
            fprintf(stderr, "wick ntk: --order1 takes one input (--q), one depth and no --plot\n");
            return EXIT_USAGE;
        }
        if (width < 2) {
            fprintf(stderr, "wick ntk: --order1 --width %ld: a correlator between two neurons "
                    "needs 2\n", width);
            return EXIT_USAGE;
        }
        return run_order1(act, cb, cw, lb, lw, q, (int)depths[0], (size_t)width, (size_t)samples,
                          (uint64_t)seed, json);
    }

    double *x = NULL;
    size_t ni = 1, dim = (size_t)n0;
    if (inputs) {
        size_t rows, cols;
        if ((st = wick_csv_read(inputs, 0, &x, &rows, &cols))) return cli_fail("ntk", st);
        if (rows > 64) {
            wick_free(x);
            fprintf(stderr, "wick ntk: %s: %zu inputs, at most 64\n", inputs, rows);
            return EXIT_FAIL;
        }
        ni = rows; dim = cols;
    } else {
        x = wick_malloc(sizeof(double) * dim);
        if (!x) { fprintf(stderr, "wick ntk: out of memory\n"); return EXIT_FAIL; }
        for (size_t j = 0; j < dim; j++) x[j] = sqrt(q);
    }
    fprintf(stderr, "wick %s | threads %d | seed %ld | %s\n", wick_version(), wick_threads(), seed,
            wick_library_versions());
    printf("# wick ntk: %s, C_b = %.9g, C_W = %.9g, lambda_b = %.9g, lambda_W = %.9g, width %ld, "
           "%ld output%s, %ld networks per depth, seed %ld, %zu input%s\n", wick_act_name(act), cb,
           cw, lb, lw, width, outputs, outputs > 1 ? "s" : "", samples, seed, ni, ni > 1 ? "s" : "");
    printf("# H_00: ensemble mean of the first input's NTK; nVar/T^2 = n Var[H_00] / Theta_00^2\n");
    printf("%6s %8s %13s %11s %13s %7s %13s %11s %8s\n", "depth", "L/n", "H_00", "+-", "Theta_00",
           "z", "nVar/T^2", "+-", "seconds");
    int ret = EXIT_OK;
    size_t nn = ni * ni;
    double *res = calloc((size_t)nd * (6 * nn + 1), sizeof(double));
    json_t *root = NULL;
    if (!res) { fprintf(stderr, "wick ntk: out of memory\n"); ret = EXIT_FAIL; goto done; }
    for (int d = 0; d < nd; d++) {
        wick_ntk_ensemble_config ec = {{act, cb, cw, lb, lw, (int)depths[d], dim, (size_t)width,
                                        (size_t)outputs}, (size_t)samples, (uint64_t)seed, x, ni};
        wick_ntk_ensemble_result *r = NULL;
        if ((st = wick_ntk_ensemble(&ec, &r))) { ret = cli_fail("ntk", st); goto done; }
        double *o = res + (size_t)d * (6 * nn + 1);
        memcpy(o, r->mean, sizeof(double) * nn);
        memcpy(o + nn, r->mean_stderr, sizeof(double) * nn);
        memcpy(o + 2 * nn, r->theory, sizeof(double) * nn);
        memcpy(o + 3 * nn, r->var, sizeof(double) * nn);
        memcpy(o + 4 * nn, r->var_stderr, sizeof(double) * nn);
        memcpy(o + 5 * nn, r->kernel_theory, sizeof(double) * nn);
        o[6 * nn] = r->seconds;
        double T = r->theory[0], s = (double)width / (T * T);
        printf("%6ld %8.4f %13.6g %11.3g %13.6g %7.2f %13.6g %11.3g %8.2f\n", depths[d],
               (double)depths[d] / (double)width, r->mean[0], r->mean_stderr[0], T,
               r->mean_stderr[0] > 0 ? (r->mean[0] - T) / r->mean_stderr[0] : 0.0, s * r->var[0],
               s * r->var_stderr[0], r->seconds);
        fflush(stdout);
        wick_ntk_ensemble_free(r);
    }
    if (plot) {
        double *px = malloc(sizeof(double) * 3 * (size_t)nd);
        if (!px) { fprintf(stderr, "wick ntk: out of memory\n"); ret = EXIT_FAIL; goto done; }
        for (int d = 0; d < nd; d++) {
            const double *o = res + (size_t)d * (6 * nn + 1);
            double s = (double)width / (o[2 * nn] * o[2 * nn]);
            px[d] = (double)depths[d] / (double)width;
            px[nd + d] = s * o[3 * nn];
            px[2 * nd + d] = s * o[4 * nn];
        }
        wick_series sr[1] = {{"measured n Var[H]/Theta^2 (+- 1 s.e.)", px, px + nd, px + 2 * nd,
                              (size_t)nd, 1, 0}};
        char title[256];
        snprintf(title, sizeof title, "empirical NTK fluctuation: %s, C_W = %g, n = %ld, M = %ld",
                 wick_act_name(act), cw, width, samples);
        st = wick_plot_png(plot, title, "L/n", "n Var[H_00] / Theta_00^2", sr, 1, 0, 0);
        free(px);
        if (st) { ret = cli_fail("ntk", st); goto done; }
    }
    if (json) {
        root = cli_json_init(act, cb, cw);
        json_object_set_new(root, "lambda_b", json_real(lb));
        json_object_set_new(root, "lambda_w", json_real(lw));
        json_object_set_new(root, "width", json_integer(width));
        json_object_set_new(root, "outputs", json_integer(outputs));
        json_object_set_new(root, "samples", json_integer(samples));
        json_object_set_new(root, "seed", json_integer(seed));
        json_object_set_new(root, "inputs", json_integer((json_int_t)ni));
        static const char *keys[6] = {"ntk", "ntk_stderr", "ntk_theory", "ntk_var", "ntk_var_stderr",
                                      "kernel_theory"};
        json_t *jd = json_array();
        for (int d = 0; d < nd; d++) json_array_append_new(jd, json_integer(depths[d]));
        json_object_set_new(root, "depth", jd);
        for (int k = 0; k < 6; k++) {
            json_t *a = json_array();
            for (int d = 0; d < nd; d++)
                json_array_append_new(a, jmat(res + (size_t)d * (6 * nn + 1) + (size_t)k * nn, ni));
            json_object_set_new(root, keys[k], a);
        }
        json_t *a = json_array(), *ae = json_array();
        for (int d = 0; d < nd; d++) {
            const double *o = res + (size_t)d * (6 * nn + 1);
            double s = (double)width / (o[2 * nn] * o[2 * nn]);
            json_array_append_new(a, cli_jnum(s * o[3 * nn]));
            json_array_append_new(ae, cli_jnum(s * o[4 * nn]));
        }
        json_object_set_new(root, "ntk_var_normalised", a);
        json_object_set_new(root, "ntk_var_normalised_stderr", ae);
        if (cli_write_json(stdout, "ntk", root, 17)) { ret = EXIT_FAIL; goto done; }
    }
done:
    json_decref(root);
    free(res);
    wick_free(x);
    return ret;
}
