/* cmd_ntk.c — wick ntk: the empirical NTK of M finite networks (through the
 * autodiff graph) against the infinite-width Theta^(L), for one or several
 * depths: its mean, and its fluctuation n Var[H]/Theta^2, which the theory
 * puts at O(1/n), growing with depth (docs/theory.md §7). */
#include "cli.h"
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now_s(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

/* the n x n matrix, or its one number where n = 1 */
static json_t *jmat(const double *m, size_t n) { return n == 1 ? cli_jnum(m[0]) : cli_json_matrix(m, n, n); }

/* --order1's figures, per layer and tensor (K1, ntk1, V, A, B, D, F, with --dntk P, Q, and
 * with --ddntk also R, S, T, U):
 * measured, its standard error, predicted; fig[(l * nk + k) * 3 + 0..2]. */
typedef struct {
    wick_act act;
    double cb, cw, lb, lw, q, seconds;
    int L;
    size_t n, M;
    uint64_t seed;
    const double *fig;
    int nk;   /* 7, 9 with the dNTK's P, Q, 13 with the ddNTKs' R, S, T, U */
} order1_out;

static const char *const order1_names[13] = {"K1", "ntk1", "V", "A", "B", "D", "F", "P", "Q",
                                              "R", "S", "T", "U"};

/* --order1's table: per layer, measured +- s.e. [predicted]. */
static void order1_print(const order1_out *o) {
    printf("# wick ntk --order1: %s, C_b = %.9g, C_W = %.9g, lambda_b = %.9g, lambda_W = %.9g, "
           "q = %.9g, width %zu, depth %d, %zu networks, %.1f s\n", wick_act_name(o->act), o->cb, o->cw,
           o->lb, o->lw, o->q, o->n, o->L, o->M, o->seconds);
    printf("# measured +- standard error [predicted]; K1 = n (E[zz] - K), Theta1 = n (E[H_ii] - "
           "Theta); V, A, B, D, F: n times the covariance\n");
    if (o->nk > 7)
        printf("# P, Q (ch. 11): n_{l-1} times the average over pairs j != m of dH_jjm z_m and "
               "dH_jmm z_j\n");
    if (o->nk > 9)
        printf("# R, S, T, U (ch. 11): n_{l-1}/n^2 times probe estimates of sum_jm ddI_jjmm, "
               "ddII_jjmm, ddII_jmjm, ddII_jmmj\n");
    for (int l = 0; l < o->L; l++) {
        printf("layer %d\n", l + 1);
        for (int k = 0; k < o->nk; k++) {
            const double *f = o->fig + ((size_t)l * (size_t)o->nk + (size_t)k) * 3;
            printf("  %-5s %14.6g +- %-11.3g [%.6g]\n", order1_names[k], f[0], f[1], f[2]);
        }
    }
}

/* --order1 --json: per tensor {measured, stderr, predicted}, arrays over layers (index l-1 is
 * layer l). */
static int order1_json(const order1_out *o) {
    json_t *root = cli_json_init(o->act, o->cb, o->cw);
    json_object_set_new(root, "lambda_b", json_real(o->lb));
    json_object_set_new(root, "lambda_w", json_real(o->lw));
    json_object_set_new(root, "q", json_real(o->q));
    json_object_set_new(root, "width", json_integer((json_int_t)o->n));
    json_object_set_new(root, "depth", json_integer(o->L));
    json_object_set_new(root, "samples", json_integer((json_int_t)o->M));
    json_object_set_new(root, "seed", json_integer((json_int_t)o->seed));
    json_object_set_new(root, "seconds", json_real(o->seconds));
    static const char *parts[3] = {"measured", "stderr", "predicted"};
    for (int k = 0; k < o->nk; k++) {
        json_t *t = json_object();
        for (int a = 0; a < 3; a++) {
            json_t *arr = json_array();
            for (int l = 0; l < o->L; l++)
                json_array_append_new(arr, cli_jnum(o->fig[((size_t)l * (size_t)o->nk + (size_t)k) * 3 + (size_t)a]));
            json_object_set_new(t, parts[a], arr);
        }
        json_object_set_new(root, order1_names[k], t);
    }
    int ret = cli_write_json(stdout, "ntk", root, 17);
    json_decref(root);
    return ret;
}

/* --order1: wick_ntk_fluct_run (and with --dntk wick_dntk_measure) beside
 * wick_theory_finite, per layer; then the report. */
static int run_order1(wick_act act, double cb, double cw, double lb, double lw, double q, int L,
                      size_t n, size_t M, uint64_t seed, int json, int dntk, int ddntk) {
    int nk = ddntk ? 13 : dntk ? 9 : 7;
    wick_theory_config tc = wick_theory_defaults(act, L);
    tc.cb = cb; tc.cw = cw; tc.lambda_b = lb; tc.lambda_w = lw; tc.width = n;
    wick_layer_finite *th = calloc((size_t)L, sizeof *th);
    double *fig = malloc(sizeof(double) * (size_t)L * (size_t)nk * 3);
    double *dv = malloc(sizeof(double) * (size_t)L * 4);
    double *ddv = malloc(sizeof(double) * (size_t)L * 8);
    wick_layer_ddntk *dth = calloc((size_t)L, sizeof *dth);
    if (!th || !fig || !dv || !ddv || !dth) {
        free(th); free(fig); free(dv); free(ddv); free(dth);
        fprintf(stderr, "wick ntk: out of memory\n");
        return EXIT_FAIL;
    }
    wick_status st = wick_theory_finite(&tc, q, th);
    wick_ntk_fluct_config fc = {act, cb, cw, lb, lw, q, L, n, M, seed};
    wick_ntk_fluct_result *r = NULL;
    /* the dNTK first: its size limits refuse at once */
    double t0 = now_s();
    if (!st && dntk) st = wick_dntk_measure(&fc, dv, dv + (size_t)L * 2);
    if (!st && ddntk) st = wick_theory_ddntk(&tc, q, dth);
    if (!st && ddntk) st = wick_ddntk_measure(&fc, ddv, ddv + (size_t)L * 4);
    double dsec = now_s() - t0;
    if (!st) st = wick_ntk_fluct_run(&fc, &r);
    if (st) {
        wick_ntk_fluct_free(r); free(th); free(fig); free(dv); free(ddv); free(dth);
        return cli_fail("ntk", st);
    }
    fprintf(stderr, "wick %s | threads %d | seed %llu | %s\n", wick_version(), r->threads,
            (unsigned long long)seed, wick_library_versions());
    static const int ent[7] = {WICK_FL_KCV, WICK_FL_NTKCV, WICK_FL_V, WICK_FL_A, WICK_FL_B,
                               WICK_FL_D, WICK_FL_F};
    double nd = (double)n;
    for (int l = 0; l < L; l++) {
        const wick_layer_finite *t = th + l;
        double pred[7] = {t->K1, t->ntk1, t->V, t->A, t->B, t->D, t->F};
        for (int k = 0; k < 7; k++) {
            const double *v = r->val + ((size_t)l * WICK_FL_COUNT + (size_t)ent[k]) * 2;
            double m = v[0], se = v[1];
            /* K1 and Theta1 are n times the mean's shift from the infinite-width value */
            if (k == 0) { m = nd * (v[0] - t->K); se = nd * v[1]; }
            if (k == 1) { m = nd * (v[0] - t->ntk); se = nd * v[1]; }
            double *f = fig + ((size_t)l * (size_t)nk + (size_t)k) * 3;
            f[0] = m; f[1] = se; f[2] = pred[k];
        }
        for (int k = 7; k < nk && k < 9; k++) {
            double *f = fig + ((size_t)l * (size_t)nk + (size_t)k) * 3;
            f[0] = dv[l * 2 + k - 7]; f[1] = dv[(size_t)L * 2 + (size_t)l * 2 + (size_t)(k - 7)];
            f[2] = k == 7 ? t->P : t->Q;
        }
        for (int k = 9; k < nk; k++) {
            double *f = fig + ((size_t)l * (size_t)nk + (size_t)k) * 3;
            const wick_layer_ddntk *d = dth + l;
            f[0] = ddv[l * 4 + k - 9];
            f[1] = ddv[(size_t)L * 4 + (size_t)l * 4 + (size_t)(k - 9)];
            f[2] = k == 9 ? d->R : k == 10 ? d->S : k == 11 ? d->T : d->U;
        }
    }
    order1_out out = {act, cb, cw, lb, lw, q, r->seconds + (dntk ? dsec : 0), L, n, M, seed, fig,
                      nk};
    order1_print(&out);
    int ret = json ? order1_json(&out) : EXIT_OK;
    wick_ntk_fluct_free(r);
    free(th); free(fig); free(dv); free(ddv); free(dth);
    return ret;
}

/* --order1 --dntk --inputs (two rows): wick_dntk_two_measure beside
 * wick_dntk_PQ_two, every component per layer.  The networks see two
 * inputs of the CSV's Gram (n_0 = 2), which is all the statistics depend on.
 * The exact measurement is the pathwise dNTK, so the prediction beside it is
 * the pathwise one; the delta's (wick_dntk_PQ_two) is shown where it differs
 * (kinked activations; docs/theory-finite-width.md). */
static int run_dntk2(wick_act act, double cb, double cw, double lb, double lw, const double G0[4],
                     int L, size_t n, size_t M, uint64_t seed, int json) {
    wick_theory_config tc = wick_theory_defaults(act, L);
    tc.cb = cb; tc.cw = cw; tc.lambda_b = lb; tc.lambda_w = lw; tc.width = n;
    size_t Ls = (size_t)L;
    double *buf = malloc(sizeof(double) * Ls * 128);
    if (!buf) { fprintf(stderr, "wick ntk: out of memory\n"); return EXIT_FAIL; }
    double *P = buf, *Q = P + 16 * Ls, *Pp = Q + 16 * Ls, *Qp = Pp + 16 * Ls, *val = Qp + 16 * Ls,
           *se = val + 32 * Ls;
    wick_ntk_fluct_config fc = {act, cb, cw, lb, lw, 1.0, L, n, M, seed};
    double t0 = now_s();
    wick_status st = wick_dntk_PQ_two(&tc, G0, P, Q);
    if (!st) st = wick_dntk_PQ_two_pathwise(&tc, G0, Pp, Qp);
    if (!st) st = wick_dntk_two_measure(&fc, G0, 0.0, val, se);
    if (st) { free(buf); return cli_fail("ntk", st); }
    double sec = now_s() - t0;
    fprintf(stderr, "wick %s | threads %d | seed %llu | %s\n", wick_version(), wick_threads(),
            (unsigned long long)seed, wick_library_versions());
    printf("# wick ntk --order1 --dntk: %s, C_b = %.9g, C_W = %.9g, lambda_b = %.9g, lambda_W = %.9g, "
           "two inputs of Gram [[%.9g, %.9g], [%.9g, %.9g]], width %zu, depth %d, %zu networks, %.1f s\n",
           wick_act_name(act), cb, cw, lb, lw, G0[0], G0[1], G0[2], G0[3], n, L, M, sec);
    printf("# E[dH_{i0i1i2;a0a1a2} z_{i3;a3}] = (d01 d23 P_{a0a1a2a3} + d02 d13 P_{a0a2a1a3} + d03 d12 "
           "Q_{a0a1a2a3})/n; measured +- standard error [predicted, pathwise] (delta: sigma'' = delta "
           "at a kink)\n");
    for (int l = 0; l < L; l++) {
        printf("layer %d\n", l + 1);
        for (int t = 0; t < 32; t++) {
            const double *pr = t < 16 ? P : Q, *pp = t < 16 ? Pp : Qp;
            size_t i = (size_t)l * 16 + (size_t)(t & 15);
            printf("  %s%d%d%d%d %14.6g +- %-11.3g [%.6g]", t < 16 ? "P" : "Q", t >> 3 & 1, t >> 2 & 1,
                   t >> 1 & 1, t & 1, val[(size_t)l * 32 + (size_t)t], se[(size_t)l * 32 + (size_t)t], pp[i]);
            if (fabs(pr[i] - pp[i]) > 1e-9 * fabs(pp[i])) printf(" delta %.6g", pr[i]);
            printf("\n");
        }
    }
    int ret = EXIT_OK;
    if (json) {
        json_t *root = cli_json_init(act, cb, cw);
        json_object_set_new(root, "lambda_b", json_real(lb));
        json_object_set_new(root, "lambda_w", json_real(lw));
        json_object_set_new(root, "gram", cli_json_matrix(G0, 2, 2));
        json_object_set_new(root, "width", json_integer((json_int_t)n));
        json_object_set_new(root, "depth", json_integer(L));
        json_object_set_new(root, "samples", json_integer((json_int_t)M));
        json_object_set_new(root, "seed", json_integer((json_int_t)seed));
        json_object_set_new(root, "seconds", json_real(sec));
        /* per tensor: 4 x 4 per layer, row 2 a0 + a1, column 2 a2 + a3 */
        static const char *parts[4] = {"measured", "stderr", "predicted", "predicted_delta"};
        for (int k = 0; k < 2; k++) {
            json_t *t = json_object();
            for (int a = 0; a < 4; a++) {
                json_t *arr = json_array();
                for (int l = 0; l < L; l++) {
                    double m[16];
                    for (int i = 0; i < 16; i++)
                        m[i] = a == 0 ? val[(size_t)l * 32 + (size_t)(16 * k + i)]
                             : a == 1 ? se[(size_t)l * 32 + (size_t)(16 * k + i)]
                             : a == 2 ? (k ? Qp : Pp)[(size_t)l * 16 + (size_t)i]
                                      : (k ? Q : P)[(size_t)l * 16 + (size_t)i];
                    json_array_append_new(arr, cli_json_matrix(m, 4, 4));
                }
                json_object_set_new(t, parts[a], arr);
            }
            json_object_set_new(root, k ? "Q" : "P", t);
        }
        ret = cli_write_json(stdout, "ntk", root, 17);
        json_decref(root);
    }
    free(buf);
    return ret;
}

/* What the command line asks for. */
typedef struct {
    const char *act_name, *inputs, *plot;
    cli_ints depths;
    double cb, cw, lb, lw, q;
    long width, outputs, samples, seed, n0, threads;
    int json, order1, dntk, ddntk;
} ntk_args;

static ntk_args A;   /* the table's destinations */

static const cli_opt ntk_opts[] = {
    {"act", CLI_FN, &A.act_name, 0, 0, 0, "relu", "NAME", "activation", NULL, cli_act_arg},
    {"cb", CLI_REAL, &A.cb, -INFINITY, INFINITY, 0, NULL, "X", "bias variance C_b (default: the critical value, else 0)", NULL, NULL},
    {"cw", CLI_REAL, &A.cw, -INFINITY, INFINITY, 0, NULL, "X", "weight variance C_W (default: the critical value, else 1)", NULL, NULL},
    {"lambda-b", CLI_REAL, &A.lb, -INFINITY, INFINITY, 0, "1", "X", "bias learning rate lambda_b", NULL, NULL},
    {"lambda-w", CLI_REAL, &A.lw, -INFINITY, INFINITY, 0, "1", "X", "weight learning rate lambda_W", NULL, NULL},
    {"width", CLI_INT, &A.width, 1, 1 << 20, 0, "64", "N", "hidden width n", NULL, NULL},
    {"depth", CLI_INTS, &A.depths, CLI_DEPTH_MIN, CLI_DEPTH_MAX, 0, "4", "L[,L...]", "depth, or a comma list of depths", "64", NULL},
    {"outputs", CLI_INT, &A.outputs, 1, 4096, 0, "1", "K", "output width n_L", NULL, NULL},
    {"samples", CLI_INT, &A.samples, 2, 1L << 32, 0, "1000", "M", "networks per depth", NULL, NULL},
    {"seed", CLI_INT, &A.seed, 0, 0x7fffffffffffffffL, 0, "1", "S", "seed", NULL, NULL},
    {"q", CLI_REAL, &A.q, 0, INFINITY, 0, "1", "X", "one input x = sqrt(X) (1, ..., 1) of dimension --n0", NULL, NULL},
    {"n0", CLI_INT, &A.n0, 1, 1 << 20, 0, "8", "N", "input dimension for --q", NULL, NULL},
    {"inputs", CLI_STR, &A.inputs, 0, 0, 0, NULL, "FILE", "inputs instead: a CSV, one input per row (at most 64)", NULL, NULL},
    {"threads", CLI_INT, &A.threads, 1, CLI_THREADS_MAX, 0, NULL, "N", "threads (default: OMP_NUM_THREADS, else all cores)", NULL, NULL},
    {"json", CLI_BOOL, &A.json, 0, 0, 0, NULL, NULL, "last line of stdout: one JSON object, per-depth arrays", NULL, NULL},
    {"plot", CLI_STR, &A.plot, 0, 0, 0, NULL, "FILE.png", "n Var[H_00]/Theta_00^2 against L/n with error bars (several depths)", NULL, NULL},
    {"order1", CLI_BOOL, &A.order1, 0, 0, 0, NULL, NULL,
     "instead, the order-1/n tensors of one input of norm --q, every\n"
     "layer of width n and n outputs (docs/theory-finite-width.md):\n"
     "per layer the measured K1, Theta1 (control variates), V, A, B,\n"
     "D, F (each n times its covariance: tensor + O(1/n)) with\n"
     "standard errors, beside the recursions' predictions", NULL, NULL},
    {"dntk", CLI_BOOL, &A.dntk, 0, 0, 0, NULL, NULL,
     "with --order1, also the dNTK-preactivation correlators P, Q (the\n"
     "book's ch. 11; the dNTK carried by its forward recursion along a\n"
     "probe: several times --order1's time); with --inputs of two rows,\n"
     "instead every two-input component of P, Q (only those)", NULL, NULL},
    {"ddntk", CLI_BOOL, &A.ddntk, 0, 0, 0, NULL, NULL,
     "with --order1, also the ddNTK means R, S, T, U (the book's ch. 11;\n"
     "exact third derivatives along two probes; implies --dntk)", NULL, NULL},
    {0}};

static const cli_cmd ntk_cmd = {
    "ntk",
    "usage: wick ntk [FLAGS]\n"
    "Computes the empirical NTK H = sum_params lambda dz/dtheta dz/dtheta (docs/theory.md §7:\n"
    "lambda_b for biases, lambda_W/n_{l-1} for weights) of M float64 networks through the\n"
    "autodiff graph,\n"
    "and sets its ensemble mean beside Theta^(L) and its fluctuation n Var[H]/Theta^2.\n\n",
    ntk_opts, NULL, 0, 0};

/* The command line into A; CLI_GO, or the exit code. */
static int ntk_parse(int argc, char **argv) {
    A = (ntk_args){.cb = NAN, .cw = NAN};
    return cli_parse(&ntk_cmd, argc, argv, NULL);
}

/* What the ensembles measured, per depth, for the report. */
typedef struct {
    wick_act act;
    double cb, cw;
    size_t ni;          /* inputs */
    const double *res;  /* per depth: mean, its s.e., Theta, Var, its s.e., K (ni x ni each), seconds */
} ntk_out;

static int ntk_run(void);
static int ntk_plot(const ntk_out *g, const char *path);
static int ntk_json(const ntk_out *g);

int cmd_ntk(int argc, char **argv) {
    int rc = ntk_parse(argc, argv);
    return rc != CLI_GO ? rc : ntk_run();
}

/* The ensembles of A, printed as each depth comes; then plotted and as JSON. */
static int ntk_run(void) {
    const char *act_name = A.act_name, *inputs = A.inputs, *plot = A.plot;
    int order1 = A.order1, json = A.json;
    double cb = A.cb, cw = A.cw, lb = A.lb, lw = A.lw, q = A.q;
    long width = A.width, outputs = A.outputs, samples = A.samples, seed = A.seed, n0 = A.n0, threads = A.threads;
    const long *depths = A.depths.v;
    int nd = A.depths.n;
    wick_act act;
    wick_status st = wick_act_parse(act_name, &act);
    if (st) return cli_fail("ntk", st);
    int rc = cli_default_init("ntk", act, &cb, &cw);
    if (rc != EXIT_OK) return rc;
    wick_set_threads((int)threads);
    if ((A.dntk || A.ddntk) && !order1) {
        fprintf(stderr, "wick ntk: --%s goes with --order1\n", A.ddntk ? "ddntk" : "dntk");
        return EXIT_USAGE;
    }
    if (order1 && inputs && A.dntk && !A.ddntk && nd == 1 && !plot) {
        /* two inputs: the dNTK's P, Q with sample indices */
        double *xi = NULL;
        size_t rows = 0, cols = 0;
        int rc2 = cli_csv_rows("ntk", inputs, 64, &xi, &rows, &cols);
        if (rc2 != EXIT_OK) return rc2;
        if (rows != 2 || width < 2) {
            free(xi);
            fprintf(stderr, "wick ntk: --order1 --dntk --inputs takes two inputs (%zu given) and "
                    "--width >= 2\n", rows);
            return EXIT_USAGE;
        }
        double G0[4];
        for (int a = 0; a < 2; a++)
            for (int b = 0; b < 2; b++) {
                double g = 0;
                for (size_t j = 0; j < cols; j++) g += xi[(size_t)a * cols + j] * xi[(size_t)b * cols + j];
                G0[2 * a + b] = g / (double)cols;
            }
        free(xi);
        return run_dntk2(act, cb, cw, lb, lw, G0, (int)depths[0], (size_t)width, (size_t)samples,
                         (uint64_t)seed, json);
    }
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
                          (uint64_t)seed, json, A.dntk || A.ddntk, A.ddntk);
    }

    double *x = NULL;
    size_t ni = 1, dim = (size_t)n0;
    if (inputs) {
        size_t cols;
        int rc2 = cli_csv_rows("ntk", inputs, 64, &x, &ni, &cols);
        if (rc2 != EXIT_OK) return rc2;
        dim = cols;
    } else {
        x = malloc(sizeof(double) * dim);
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
    ntk_out out = {act, cb, cw, ni, res};
    if (plot && (ret = ntk_plot(&out, plot)) != EXIT_OK) goto done;
    if (json) ret = ntk_json(&out);
done:
    free(res);
    free(x);
    return ret;
}

/* --plot: n Var[H_00]/Theta_00^2 against L/n, +- 1 s.e. */
static int ntk_plot(const ntk_out *g, const char *path) {
    wick_act act = g->act;
    double cw = g->cw;
    long width = A.width, samples = A.samples;
    const long *depths = A.depths.v;
    int nd = A.depths.n;
    size_t ni = g->ni, nn = ni * ni;
    const double *res = g->res;
    double *px = malloc(sizeof(double) * 3 * (size_t)nd);
    if (!px) { fprintf(stderr, "wick ntk: out of memory\n"); return EXIT_FAIL; }
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
    wick_status st = wick_plot_png(path, title, "L/n", "n Var[H_00] / Theta_00^2", sr, 1, 0, 0);
    free(px);
    return st ? cli_fail("ntk", st) : EXIT_OK;
}

/* --json: one object, per-depth arrays (n x n matrices for several inputs). */
static int ntk_json(const ntk_out *g) {
    wick_act act = g->act;
    double cb = g->cb, cw = g->cw;
    long width = A.width, samples = A.samples;
    const long *depths = A.depths.v;
    int nd = A.depths.n;
    size_t ni = g->ni, nn = ni * ni;
    const double *res = g->res;
    double lb = A.lb, lw = A.lw;
    long outputs = A.outputs, seed = A.seed;
    json_t *root = cli_json_init(act, cb, cw);
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
    int ret = cli_write_json(stdout, "ntk", root, 17);
    json_decref(root);
    return ret;
}
