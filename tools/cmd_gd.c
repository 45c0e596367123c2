/* cmd_gd.c — wick gd: ensembles of finite-width MLPs trained by full-batch
 * gradient descent on a small Fashion-MNIST subset, against the
 * infinite-width frozen-NTK prediction (docs/theory.md §9), and the NTK's motion
 * during training (docs/theory.md §10), for several widths. */
#include "cli.h"
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DEFAULT_DATA "/usr/share/datasets/fashion-mnist"

/* The first `want` samples with label < classes, pooled P x P (square images). */
static size_t take(const wick_dataset *d, int classes, size_t want, int P, double *x, int32_t *y,
                   size_t *dim) {
    size_t side = (size_t)(sqrt((double)d->dim) + 0.5), ps = side / (size_t)P;
    if (side * side != d->dim || ps == 0) { P = 1; side = d->dim; ps = d->dim; }
    *dim = side * side == d->dim ? ps * ps : d->dim;
    size_t k = 0;
    for (size_t i = 0; i < d->n && k < want; i++) {
        if (d->y[i] >= classes) continue;
        const float *im = d->x + i * d->dim;
        double *o = x + k * *dim;
        if (side * side != d->dim) {
            for (size_t j = 0; j < d->dim; j++) o[j] = im[j];
        } else {
            for (size_t r = 0; r < ps; r++)
                for (size_t c = 0; c < ps; c++) {
                    double s = 0;
                    for (int a = 0; a < P; a++)
                        for (int b = 0; b < P; b++) s += im[(r * P + a) * side + c * P + b];
                    o[r * ps + c] = s / (P * P);
                }
        }
        y[k++] = d->y[i];
    }
    return k;
}

/* What the command line asks for. */
typedef struct {
    const char *dir, *act_name, *plot;
    cli_ints widths;
    double cb, cw, lb, lw, eta;
    long ntrain, ntest, classes, pool, depth, samples, seed, steps, probes, threads, anti;
    int json, order1;
    cli_reals target;     /* --order1: the targets y (one a output) */
    double q, R;          /* --order1: the input's norm, the ddNTK mean R (NAN: none) */
    cli_reals test_gram;  /* --order1 --test-gram: the training and test inputs' Gram */
    int trained;          /* --order1 --test-gram --trained: t -> infinity */
    cli_reals train_gram; /* --order1 --train-gram: two training inputs' (and a read input's) Gram */
    int variance;         /* --order1 --variance: Var z(t) too (one output) */
} gd_args;

static gd_args A;   /* the table's destinations */

static const cli_opt gd_opts[] = {
    {"data", CLI_STR, &A.dir, 0, 0, 0, DEFAULT_DATA, "DIR", "Fashion-MNIST directory", NULL, NULL},
    {"train", CLI_INT, &A.ntrain, 2, 60000, 0, "256", "N", "training images of the class subset", NULL, NULL},
    {"test", CLI_INT, &A.ntest, 1, 10000, 0, "500", "N", "test images of the class subset", NULL, NULL},
    {"classes", CLI_INT, &A.classes, 2, 10, 0, "2", "K", "classes 0..K-1 (2: one output, targets +-1)", NULL, NULL},
    {"pool", CLI_INT, &A.pool, 1, 28, 0, "2", "P", "average-pool P x P pixels (2: 784 -> 196 inputs; 1 keeps all)", NULL, NULL},
    {"act", CLI_FN, &A.act_name, 0, 0, 0, "relu", "NAME", "activation", NULL, cli_act_arg},
    {"cb", CLI_REAL, &A.cb, -INFINITY, INFINITY, 0, NULL, "X", "bias variance C_b (default: the critical value, else 0)", NULL, NULL},
    {"cw", CLI_REAL, &A.cw, -INFINITY, INFINITY, 0, NULL, "X", "weight variance C_W (default: the critical value, else 1)", NULL, NULL},
    {"lambda-b", CLI_REAL, &A.lb, -INFINITY, INFINITY, 0, "1", "X", "bias learning rate lambda_b", NULL, NULL},
    {"lambda-w", CLI_REAL, &A.lw, -INFINITY, INFINITY, 0, "1", "X", "weight learning rate lambda_W", NULL, NULL},
    {"depth", CLI_INT, &A.depth, CLI_DEPTH_MIN, CLI_DEPTH_MAX, 0, "2", "L", "layers (2: one hidden layer)", NULL, NULL},
    {"widths", CLI_INTS, &A.widths, 1, 1 << 20, 0, "64,256,1024", "LIST", "hidden widths", "16", NULL},
    {"samples", CLI_INT, &A.samples, 2, 1000000, 0, "8", "M", "networks per width", NULL, NULL},
    {"seed", CLI_INT, &A.seed, 0, 0x7fffffffffffffffL, 0, "1", "S", "seed", NULL, NULL},
    {"steps", CLI_INT, &A.steps, 0, 100000000, 0, "100", "T", "gradient-descent steps", NULL, NULL},
    {"eta", CLI_REAL, &A.eta, -INFINITY, INFINITY, 0, "=0.5/lambda_max", "X",
     "global rate in the book's units, below 2/lambda_max(Theta_AA)", NULL, NULL},
    {"probes", CLI_INT, &A.probes, 1, 64, 0, "16", "P", "training inputs on which the NTK's motion is measured", NULL, NULL},
    {"antithetic", CLI_INT, &A.anti, 0, 1, 0, "1", "B",
     "1: networks in mirror pairs (last layer negated: z(0) -> -z(0), same\n"
     "NTK), so the ensemble mean sheds its init noise; 0: independent\n"
     "(M must then be even)", NULL, NULL},
    {"threads", CLI_INT, &A.threads, 1, CLI_THREADS_MAX, 0, NULL, "N", "threads (default: OMP_NUM_THREADS, else all cores)", NULL, NULL},
    {"order1", CLI_BOOL, &A.order1, 0, 0, 0, NULL, NULL,
     "--steps t from one input of norm --q with targets --target instead of\n"
     "the data (any number of outputs): the order-1/n prediction of\n"
     "E[z(t)] (wick_gd_mean1, wick_gd_mean_t, wick_gd_mean_tn) beside its\n"
     "measurement on --samples networks (mirror pairs) at each width\n"
     "(docs/theory-finite-width.md, gradient descent at order 1/n)", NULL, NULL},
    {"target", CLI_REALS, &A.target, -1e6, 1e6, 0, "1", "Y1,Y2,...", "the targets, one per output (with --order1)", NULL, NULL},
    {"q", CLI_REAL, &A.q, 0, INFINITY, 0, "1", "X", "the input's |x|^2/n0 (with --order1)", NULL, NULL},
    {"ddntk-r", CLI_REAL, &A.R, -INFINITY, INFINITY, 0, NULL, "X",
     "the ddNTK mean R of the last layer (with --order1; default: the\n"
     "theory engine's, wick_theory_ddntk)", NULL, NULL},
    {"test-gram", CLI_REALS, &A.test_gram, -1e6, 1e6, 0, NULL, "G00,G01,G11",
     "with --order1: train on input a (|x_a|^2/n0 = G00), read the output at\n"
     "a test input b (x_a.x_b/n0 = G01, |x_b|^2/n0 = G11), one output\n"
     "(wick_gd_mean_test beside wick_gd_test_measure; docs/theory-finite-width.md)", NULL, NULL},
    {"train-gram", CLI_REALS, &A.train_gram, -1e6, 1e6, 0, NULL, "G00,G01,G11[,..]",
     "with --order1 and two --target values: train on two inputs of Gram\n"
     "G00,G01,G11, or on inputs 0, 1 read at input 2 (G00,G01,G02,G11,G12,G22),\n"
     "one output (wick_gd_mean_multi beside wick_gd_multi_measure)", NULL, NULL},
    {"variance", CLI_BOOL, &A.variance, 0, 0, 0, NULL, NULL,
     "with --order1 and one output: also Var z(t) across initialisations,\n"
     "predicted to order 1/n (wick_gd_var_t) and measured on other mirror\n"
     "pairs (wick_gd1_var_measure): its frozen-NTK and beyond parts; with\n"
     "--test-gram, Var z_b(t) at the test input instead of the mean (wick_gd_var_test\n"
     "beside wick_gd_test_var_measure; --trained too)", NULL, NULL},
    {"trained", CLI_BOOL, &A.trained, 0, 0, 0, NULL, NULL,
     "with --test-gram: fully trained (t -> infinity) instead of --steps", NULL, NULL},
    {"json", CLI_BOOL, &A.json, 0, 0, 0, NULL, NULL, "last line of stdout: one JSON object, arrays over widths", NULL, NULL},
    {"plot", CLI_STR, &A.plot, 0, 0, 0, NULL, "FILE.png", "gap_net, dH and H0-Theta against the width (log-log, +- 1 s.e.)", NULL, NULL},
    {0}};

static const cli_cmd gd_cmd = {
    "gd",
    "usage: wick gd [FLAGS]\n"
    "Trains M float64 MLPs per width by full-batch gradient descent on the loss\n"
    "1/2 sum (z - y)^2 with per-layer rates eta*lambda_b, eta*lambda_W/n_{l-1}\n"
    "(docs/theory.md §9; a mean-MSE trainer needs eta_engine = eta |A| n_L / 2 for the same\n"
    "steps) and compares\n"
    "the test outputs with the frozen-NTK prediction at the same step:\n"
    "  gap_mean  RMS(ensemble mean - predicted mean) / RMS(predicted mean), beside its Monte\n"
    "            Carlo floor sqrt(avg var/M) / RMS(predicted mean)\n"
    "  gap_var   avg |ensemble variance - predicted variance| / avg predicted variance, beside\n"
    "            what sampling alone gives (vfloor, Gaussian outputs)\n"
    "  gap_net   per network, given its own z(0): RMS(z(T) - prediction) / RMS(prediction - z(0))\n"
    "  dH        ||H(T) - H(0)|| / ||H(0)|| on the probe inputs (the NTK's motion)\n"
    "  H0-Theta  ||H(0) - Theta|| / ||Theta|| on the probe inputs (the NTK's fluctuation at init)\n"
    "Images: 2x2-pooled (--pool), centred, |x|^2/n0 = 1; targets +-1 (2 classes) or one-hot\n"
    "minus 1/classes.\n\n",
    gd_opts, NULL, 0, 0};

/* The command line into A; CLI_GO, or the exit code. */
static int gd_parse(int argc, char **argv) {
    A = (gd_args){.cb = NAN, .cw = NAN, .R = NAN};
    const char *given[sizeof gd_opts / sizeof gd_opts[0]] = {0};
    int rc = cli_parse(&gd_cmd, argc, argv, given);
    if (rc != CLI_GO) return rc;
    /* The two modes read different flags: one the other ignores is a contradiction, not a no-op. */
    static const char *const data_only[] = {"data", "train", "test", "classes", "pool", "probes", "antithetic", "plot"};
    static const char *const order1_only[] = {"target", "q", "ddntk-r", "test-gram", "trained", "variance",
                                              "train-gram"};
    const char *const *off = A.order1 ? data_only : order1_only;
    size_t noff = A.order1 ? sizeof data_only / sizeof *data_only : sizeof order1_only / sizeof *order1_only;
    for (size_t i = 0; i < noff; i++)
        if (given[cli_row(&gd_cmd, off[i])]) {
            fprintf(stderr, "wick gd: --%s %s --order1 (%s)\n", off[i], A.order1 ? "contradicts" : "needs",
                    A.order1 ? "--order1 steps one input of norm --q, not the data" : "the data run ignores it");
            return EXIT_USAGE;
        }
    return CLI_GO;
}

/* What the ensembles measured, per width, for the report. */
typedef struct {
    wick_act act;
    double cb, cw;
    size_t nA, nB, nout;
    const double *res;    /* 16 figures a width (gd_run's table columns) */
    double pw[3], pe[3];  /* power laws in n of gap_net, dH, H0-Theta, and their errors */
} gd_out;

static int gd_run(void);
static int order1_run(void);
static int gd_plot(const gd_out *g, const char *path);
static int gd_json(const gd_out *g);

int cmd_gd(int argc, char **argv) {
    int prc = gd_parse(argc, argv);
    if (prc != CLI_GO) return prc;
    return A.order1 ? order1_run() : gd_run();
}

/* --order1: one step from one input, predicted to order 1/n and measured per
 * width; the measured gap to the infinite-width step is eta (E[H] - Theta) y
 * + E[r], r each network's residual beyond its own frozen-NTK step. */
int gd_multi_theory(const char *flag, wick_act act, double cb, double cw, double lb, double lw, int depth,
                    wick_theory_config *tc) {
    if (depth < 2) {
        fprintf(stderr, "wick gd: %s needs --depth >= 2 (the %s tensors live on hidden layers)\n", flag,
                strcmp(flag, "--test-gram") ? "several-input" : "two-input");
        return EXIT_USAGE;
    }
    *tc = wick_theory_defaults(act, depth);
    tc->cb = cb, tc->cw = cw, tc->lambda_b = lb, tc->lambda_w = lw;
    return 0;
}

int gd_test_gram(const double g[3], wick_act act, double cb, double cw, double lb, double lw, int depth,
                 double G0[4], wick_theory_config *tc) {
    if (!(g[0] > 0) || !(g[2] > 0) || !(g[0] * g[2] - g[1] * g[1] > 0)) {
        fprintf(stderr, "wick gd: --test-gram %g,%g,%g: the inputs' Gram must be positive definite "
                "(the two inputs not parallel)\n", g[0], g[1], g[2]);
        return EXIT_USAGE;
    }
    G0[0] = g[0], G0[1] = G0[2] = g[1], G0[3] = g[2];
    return gd_multi_theory("--test-gram", act, cb, cw, lb, lw, depth, tc);
}

void gd_parts_header(void) {
    printf("%8s %8s %12s %10s %12s %10s %12s %10s %12s %10s\n", "width", "pairs", "n*frozen", "se",
           "n*beyond", "se", "n*eta^2", "se", "n*eta^3", "se");
}

void gd_parts_print(size_t n, size_t pairs, const double part[8]) {
    printf("%8zu %8zu %12.6g %10.3g %12.6g %10.3g %12.6g %10.3g %12.6g %10.3g\n", n, pairs, part[0], part[1],
           part[2], part[3], part[4], part[5], part[6], part[7]);
    fflush(stdout);
}

void gd_parts_json(json_t *r, const double part[8]) {
    static const char *const key[8] = {"n_frozen", "n_frozen_se", "n_beyond", "n_beyond_se",
                                       "n_eta2",   "n_eta2_se",   "n_eta3",   "n_eta3_se"};
    for (int i = 0; i < 8; i++) json_object_set_new(r, key[i], cli_jnum(part[i]));
}

static int order1_run(void) {
    wick_act act;
    wick_status st = wick_act_parse(A.act_name, &act);
    if (st) return cli_fail("gd", st);
    double cb = A.cb, cw = A.cw;
    int rc = cli_default_init("gd", act, &cb, &cw);
    if (rc != EXIT_OK) return rc;
    size_t no = (size_t)A.target.n;
    const double *y = A.target.v;
    if (!(A.eta > 0)) {
        fprintf(stderr, "wick gd: --order1 needs --eta X > 0 (the step's rate, book units)\n");
        return EXIT_USAGE;
    }
    if (A.samples % 2) {
        fprintf(stderr, "wick gd: --order1 --samples %ld: networks come in mirror pairs, give an "
                "even number\n", A.samples);
        return EXIT_USAGE;
    }
    long T = A.steps;
    if (A.variance && (no != 1 || (A.trained && !A.test_gram.n))) {
        fprintf(stderr, "wick gd: --variance takes one --target, and --trained only with --test-gram\n");
        return EXIT_USAGE;
    }
    if (A.train_gram.n) {
        if ((A.train_gram.n != 3 && A.train_gram.n != 6) || no != 2 || A.test_gram.n || A.variance ||
            !isnan(A.R) || (T < 1 && !A.trained)) {
            fprintf(stderr, "wick gd: --train-gram takes 3 or 6 Gram entries, two --target values, "
                    "--steps >= 1 or --trained, and no --test-gram/--variance/--ddntk-r\n");
            return EXIT_USAGE;
        }
        wick_set_threads((int)A.threads);
        return gd_order1_multi(act, cb, cw, A.lb, A.lw, (int)A.depth, &A.widths, A.samples, A.seed,
                               A.trained ? -1 : T, A.eta, y, &A.train_gram, A.json);
    }
    if (A.test_gram.n || A.trained) {
        if (A.test_gram.n != 3 || no != 1 || !isnan(A.R) || T < 1) {
            fprintf(stderr, "wick gd: --test-gram takes G00,G01,G11, one --target, --steps >= 1 or "
                    "--trained, and no --ddntk-r\n");
            return EXIT_USAGE;
        }
        wick_set_threads((int)A.threads);
        if (A.variance)
            return gd_order1_test_var(act, cb, cw, A.lb, A.lw, (int)A.depth, &A.widths, A.samples,
                                      A.seed, A.trained ? -1 : T, A.eta, y[0], A.test_gram.v, A.json);
        return gd_order1_test(act, cb, cw, A.lb, A.lw, (int)A.depth, &A.widths, A.samples, A.seed,
                              A.trained ? -1 : T, A.eta, y[0], A.test_gram.v, A.json);
    }
    if (T < 1) {
        fprintf(stderr, "wick gd: --order1 --steps %ld: at least one step\n", T);
        return EXIT_USAGE;
    }
    wick_set_threads((int)A.threads);
    wick_theory_config tc = wick_theory_defaults(act, (int)A.depth);
    tc.cb = cb; tc.cw = cw; tc.lambda_b = A.lb; tc.lambda_w = A.lw;
    /* the prediction along output 0: lin y_0 + (frozen + beyond) / n */
    double lin, pfroz, pbeyond;
    if (T == 1) {
        wick_gd1_terms t;
        if ((st = wick_gd_mean1(&tc, A.q, no, y, A.eta, A.R, &t))) return cli_fail("gd", st);
        lin = t.lin * y[0]; pfroz = t.a1 * y[0]; pbeyond = (t.a2 + t.a3) * y[0];
        printf("# one step, depth %ld, C_b %g, C_W %g, q %g, eta %g, %zu output(s):\n"
               "#   E[z_i(1)] = y_i [eta Theta + (a1 + a2 + a3)/n], eta Theta = %.9g,\n"
               "#   a1 = eta Theta1 = %.9g, a2 = -eta^2 (P + nout Q/2) = %.9g,\n"
               "#   a3 = (eta^3/2) R (K (nout + 2) + |y|^2) = %.9g (R = %.9g)\n",
               A.depth, cb, cw, A.q, A.eta, no, t.lin, t.a1, t.a2, t.a3, t.R);
    } else if (no == 1) {
        wick_gdt_terms t;
        if ((st = wick_gd_mean_t(&tc, A.q, y[0], A.eta, T, A.R, NAN, &t))) return cli_fail("gd", st);
        lin = t.lin; pfroz = t.a_ntk1 + t.a_var; pbeyond = t.a_dntk + t.a_ddI + t.a_ddII;
        printf("# %ld steps, depth %ld, C_b %g, C_W %g, q %g, eta %g, one output:\n"
               "#   E[z(t)] = lin + (frozen + beyond)/n, lin = y (1 - (1 - eta Theta)^t) = %.9g,\n"
               "#   frozen = Theta1 %.9g + NTK variance %.9g,\n"
               "#   beyond = dNTK %.9g + ddI %.9g + ddII %.9g\n",
               T, A.depth, cb, cw, A.q, A.eta, t.lin, t.a_ntk1, t.a_var, t.a_dntk, t.a_ddI, t.a_ddII);
    } else {
        wick_gdt_terms t;
        if ((st = wick_gd_mean_tn(&tc, A.q, no, y, A.eta, T, A.R, NAN, &t))) return cli_fail("gd", st);
        lin = t.lin * y[0]; pfroz = (t.a_ntk1 + t.a_var) * y[0];
        pbeyond = (t.a_dntk + t.a_ddI + t.a_ddII) * y[0];
        printf("# %ld steps, depth %ld, C_b %g, C_W %g, q %g, eta %g, %zu outputs:\n"
               "#   E[z_i(t)] = y_i [lin + (frozen + beyond)/n], lin = 1 - (1 - eta Theta)^t = %.9g,\n"
               "#   frozen = Theta1 %.9g + NTK variance (A + (nout + 1) B) %.9g,\n"
               "#   beyond = dNTK %.9g + ddI %.9g + ddII %.9g (per unit target)\n",
               T, A.depth, cb, cw, A.q, A.eta, no, t.lin, t.a_ntk1, t.a_var, t.a_dntk, t.a_ddI, t.a_ddII);
    }
    /* --variance: Var z(t) = var + (frozen + beyond + K1 part)/n */
    wick_gdvar_terms vt = {0};
    double at = 0;
    if (A.variance) {
        if ((st = wick_gd_var_t(&tc, A.q, y[0], A.eta, T, A.R, NAN, &vt))) return cli_fail("gd", st);
        at = pow(1 - A.eta * vt.ntk, (double)T);
        printf("# Var z(t) = var + (K1 part + frozen + beyond)/n, var = (1 - eta Theta)^{2t} K = %.9g,\n"
               "#   K1 part %.9g, frozen = Theta1 %.9g + D + 2F %.9g + A + 2B %.9g,\n"
               "#   beyond = dNTK %.9g + ddI %.9g + ddII %.9g (the vertex V: %.3g)\n",
               vt.var, vt.v_K1, vt.v_ntk1, vt.v_DF, vt.v_var, vt.v_dntk, vt.v_ddI, vt.v_ddII, vt.v_V);
    }
    printf("# per width, along output 0: n (E[z_lin] - lin) of each network's own frozen-NTK\n"
           "# trajectory (noisy: its NTK) against 'frozen' = %.6g, n E[z - z_lin] against\n"
           "# 'beyond' = %.6g%s\n", pfroz, pbeyond,
           T == 1 ? ", and its eta^2 and eta^3 parts (steps at +-eta)" : "");
    gd_parts_header();
    json_t *rows = json_array();
    for (int w = 0; w < A.widths.n; w++) {
        size_t n = (size_t)A.widths.v[w];
        wick_gd1_config c = {{act, cb, cw, A.lb, A.lw, (int)A.depth, 1, n, no}, A.q, A.eta, y,
                             (size_t)A.samples / 2, (uint64_t)A.seed, T};
        double *val = malloc(sizeof(double) * WICK_GD1_COUNT * no * 2), *se = val + WICK_GD1_COUNT * no;
        if (!val) { json_decref(rows); return EXIT_FAIL; }
        if ((st = wick_gd1_measure(&c, val, se))) { free(val); json_decref(rows); return cli_fail("gd", st); }
        double nd = (double)n;
        const double part[8] = {nd * (val[WICK_GD1_LIN * no] - lin), nd * se[WICK_GD1_LIN * no],
                                nd * val[WICK_GD1_RES * no],         nd * se[WICK_GD1_RES * no],
                                nd * val[WICK_GD1_RES2 * no],        nd * se[WICK_GD1_RES2 * no],
                                nd * val[WICK_GD1_RES3 * no],        nd * se[WICK_GD1_RES3 * no]};
        gd_parts_print(n, c.samples, part);
        json_t *r = json_object();
        json_object_set_new(r, "width", json_integer((json_int_t)n));
        json_object_set_new(r, "pairs", json_integer((json_int_t)c.samples));
        gd_parts_json(r, part);
        free(val);
        if (A.variance) {
            /* other networks than the mean's (seed + 1): the two tables' errors are independent */
            double vv[WICK_GD1V_COUNT], vs[WICK_GD1V_COUNT];
            c.seed = (uint64_t)A.seed + 1;
            if ((st = wick_gd1_var_measure(&c, at, vv, vs))) { json_decref(r); json_decref(rows); return cli_fail("gd", st); }
            printf("%8s variance: n*(Var - var) %.6g +- %.3g, n*frozen %.6g +- %.3g, n*beyond %.6g +- %.3g\n",
                   "", nd * (vv[WICK_GD1V_VAR] - vt.var), nd * vs[WICK_GD1V_VAR],
                   nd * vv[WICK_GD1V_FROZEN], nd * vs[WICK_GD1V_FROZEN],
                   nd * vv[WICK_GD1V_BEYOND], nd * vs[WICK_GD1V_BEYOND]);
            fflush(stdout);
            json_object_set_new(r, "var", cli_jnum(vv[WICK_GD1V_VAR]));
            json_object_set_new(r, "var_se", cli_jnum(vs[WICK_GD1V_VAR]));
            json_object_set_new(r, "n_var_frozen", cli_jnum(nd * vv[WICK_GD1V_FROZEN]));
            json_object_set_new(r, "n_var_frozen_se", cli_jnum(nd * vs[WICK_GD1V_FROZEN]));
            json_object_set_new(r, "n_var_beyond", cli_jnum(nd * vv[WICK_GD1V_BEYOND]));
            json_object_set_new(r, "n_var_beyond_se", cli_jnum(nd * vs[WICK_GD1V_BEYOND]));
        }
        json_array_append_new(rows, r);
    }
    int ret = EXIT_OK;
    if (A.json) {
        json_t *root = cli_json_init(act, cb, cw);
        json_object_set_new(root, "depth", json_integer((json_int_t)A.depth));
        json_object_set_new(root, "eta", json_real(A.eta));
        json_object_set_new(root, "steps", json_integer((json_int_t)T));
        json_object_set_new(root, "lin", cli_jnum(lin));
        json_object_set_new(root, "frozen", cli_jnum(pfroz));
        json_object_set_new(root, "beyond", cli_jnum(pbeyond));
        json_object_set_new(root, "outputs", json_integer((json_int_t)no));
        if (A.variance) {
            json_object_set_new(root, "var", cli_jnum(vt.var));
            json_object_set_new(root, "var_K1", cli_jnum(vt.v_K1));
            json_object_set_new(root, "var_frozen", cli_jnum(vt.v_ntk1 + vt.v_DF + vt.v_var));
            json_object_set_new(root, "var_beyond", cli_jnum(vt.v_dntk + vt.v_ddI + vt.v_ddII));
        }
        json_object_set_new(root, "widths", rows);
        ret = cli_write_json(stdout, "gd", root, 17);
        json_decref(root);
    } else {
        json_decref(rows);
    }
    return ret;
}

/* The ensembles of A against the frozen-NTK prediction, printed as they come; then the report. */
static int gd_run(void) {
    const char *dir = A.dir, *act_name = A.act_name, *plot = A.plot;
    double cb = A.cb, cw = A.cw, lb = A.lb, lw = A.lw, eta = A.eta;
    long ntrain = A.ntrain, ntest = A.ntest, classes = A.classes, pool = A.pool, depth = A.depth;
    long samples = A.samples, seed = A.seed, steps = A.steps, probes = A.probes, threads = A.threads, anti = A.anti;
    int json = A.json;
    const long *widths = A.widths.v;
    int nw = A.widths.n;
    if (probes > ntrain) probes = ntrain;
    wick_act act;
    wick_status st = wick_act_parse(act_name, &act);
    if (st) return cli_fail("gd", st);
    int rc = cli_default_init("gd", act, &cb, &cw);
    if (rc != EXIT_OK) return rc;
    wick_set_threads((int)threads);
    fprintf(stderr, "wick %s | threads %d | seed %ld | %s\n", wick_version(), wick_threads(), seed,
            wick_library_versions());

    wick_dataset *tr = NULL, *te = NULL;
    if ((st = wick_dataset_load_idx_dir(dir, "train", 10, &tr)) || (st = wick_dataset_load_idx_dir(dir, "t10k", 10, &te))) {
        wick_dataset_free(tr);
        return cli_fail("gd", st);
    }
    size_t nout = classes == 2 ? 1 : (size_t)classes, dim = 0, dim2 = 0;
    double *x = malloc(sizeof(double) * (size_t)(ntrain + ntest) * tr->dim);
    int32_t *lab = malloc(sizeof(int32_t) * (size_t)(ntrain + ntest));
    double *yA = malloc(sizeof(double) * (size_t)ntrain * nout);
    double *res = calloc((size_t)nw * 16, sizeof(double));
    int ret = EXIT_OK;
    if (!x || !lab || !yA || !res) { fprintf(stderr, "wick gd: out of memory\n"); ret = EXIT_FAIL; goto done; }
    size_t nA = take(tr, (int)classes, (size_t)ntrain, (int)pool, x, lab, &dim);
    size_t nB = take(te, (int)classes, (size_t)ntest, (int)pool, x + nA * dim, lab + nA, &dim2);
    if ((st = wick_kernel_normalise(x, nA + nB, dim, nA))) { ret = cli_fail("gd", st); goto done; }
    for (size_t i = 0; i < nA; i++) {
        if (nout == 1) yA[i] = lab[i] == 1 ? 1.0 : -1.0;
        else for (size_t k = 0; k < nout; k++) yA[i * nout + k] = (k == (size_t)lab[i]) - 1.0 / (double)nout;
    }
    printf("# wick gd: %s, C_b = %.9g, C_W = %.9g, lambda_b = %.9g, lambda_W = %.9g, depth %ld, %zu "
           "training / %zu test images (%ld classes, %zu inputs), %ld steps, %ld networks per width, "
           "seed %ld%s\n", wick_act_name(act), cb, cw, lb, lw, depth, nA, nB, classes, dim, steps,
           samples, seed, anti ? " (antithetic pairs)" : "");
    printf("%6s %9s %9s %9s %7s %9s %8s %9s %8s %9s %8s %7s %7s %10s %10s %8s\n", "n", "gap_mean", "floor",
           "gap_var", "vfloor", "gap_net", "+-", "dH", "+-", "H0-Theta", "+-", "acc", "acc_th", "loss", "loss_th",
           "seconds");
    for (int w = 0; w < nw; w++) {
        wick_gd_ensemble_config gc = {{act, cb, cw, lb, lw, (int)depth, dim, (size_t)widths[w], nout},
                                      (size_t)samples, (uint64_t)seed, eta, steps, x, yA, nA,
                                      x + nA * dim, nB, (size_t)probes, (int)anti};
        wick_gd_ensemble_result *r = NULL;
        if ((st = wick_gd_ensemble(&gc, &r))) { ret = cli_fail("gd", st); goto done; }
        double *o = res + (size_t)w * 16;
        o[0] = r->gap_mean; o[1] = r->gap_mean_floor; o[2] = r->gap_var; o[3] = r->gap_net;
        o[4] = r->gap_net_stderr; o[5] = r->ntk_change; o[6] = r->ntk_change_stderr;
        o[7] = r->ntk_init_dev; o[8] = r->ntk_init_dev_stderr;
        o[9] = cli_accuracy(r->mean, lab + nA, nB, nout);
        o[10] = cli_accuracy(r->mean_theory, lab + nA, nB, nout);
        o[11] = r->train_loss; o[12] = r->train_loss_theory; o[13] = r->seconds; o[14] = r->eta;
        o[15] = r->gap_var_floor;
        printf("%6ld %9.4g %9.3g %9.4g %7.3g %9.4g %8.2g %9.4g %8.2g %9.4g %8.2g %7.4f %7.4f %10.5g %10.5g %8.1f\n",
               widths[w], o[0], o[1], o[2], o[15], o[3], o[4], o[5], o[6], o[7], o[8], o[9], o[10],
               o[11], o[12], o[13]);
        fflush(stdout);
        wick_gd_ensemble_free(r);
    }
    printf("eta = %.9g in the book's units (loss 1/2 sum); a mean-MSE trainer would need eta_engine = "
           "%.9g\n", res[14], res[14] * (double)nA * (double)nout / 2);
    /* power laws against the width: log(quantity) = p log n + c */
    double pw[3] = {NAN, NAN, NAN}, pe[3] = {NAN, NAN, NAN};
    if (nw >= 3) {
        static const int col[3] = {3, 5, 7};
        static const char *nm[3] = {"gap_net", "dH", "H0-Theta"};
        for (int k = 0; k < 3; k++) {
            double lx[16], ly[16], le[16], ic, ie, chi;
            for (int w = 0; w < nw; w++) {
                const double *o = res + (size_t)w * 16;
                lx[w] = log((double)widths[w]);
                ly[w] = log(o[col[k]]);
                le[w] = o[col[k] + 1] / o[col[k]];
            }
            if (wick_fit_line(lx, ly, le, (size_t)nw, &pw[k], &pe[k], &ic, &ie, &chi) == WICK_OK)
                printf("%s ~ n^p: p = %.3f +- %.3f (chi2/dof %.2g)\n", nm[k], pw[k], pe[k], chi);
        }
    }
    gd_out out = {act, cb, cw, nA, nB, nout, res, {pw[0], pw[1], pw[2]}, {pe[0], pe[1], pe[2]}};
    if (plot && (ret = gd_plot(&out, plot)) != EXIT_OK) goto done;
    if (json) ret = gd_json(&out);
done:
    wick_dataset_free(tr); wick_dataset_free(te);
    free(x); free(lab); free(yA); free(res);
    return ret;
}

/* --plot: gap_net, dH and H0-Theta against the width (log-log, +- 1 s.e.). */
static int gd_plot(const gd_out *g, const char *path) {
    const double *res = g->res;
    const long *widths = A.widths.v;
    int nw = A.widths.n;
    double *px = malloc(sizeof(double) * 7 * (size_t)nw);
    if (!px) { fprintf(stderr, "wick gd: out of memory\n"); return EXIT_FAIL; }
    for (int w = 0; w < nw; w++) {
        const double *o = res + (size_t)w * 16;
        px[w] = (double)widths[w];
        px[nw + w] = o[3]; px[2 * nw + w] = o[4];
        px[3 * nw + w] = o[5]; px[4 * nw + w] = o[6];
        px[5 * nw + w] = o[7]; px[6 * nw + w] = o[8];
    }
    wick_series sr[3] = {{"gap_net: trained vs frozen-NTK prediction", px, px + nw, px + 2 * nw, (size_t)nw, 1, 0},
                         {"dH: NTK motion ||H(T)-H(0)||/||H(0)||", px, px + 3 * nw, px + 4 * nw, (size_t)nw, 1, 0},
                         {"H0-Theta: NTK at init vs Theta", px, px + 5 * nw, px + 6 * nw, (size_t)nw, 1, 0}};
    char title[256];
    snprintf(title, sizeof title, "%s, depth %ld, %zu images, %ld GD steps, M = %ld", wick_act_name(g->act),
             A.depth, g->nA, A.steps, A.samples);
    wick_status st = wick_plot_png(path, title, "width n", "relative deviation", sr, 3, 1, 1);
    free(px);
    return st ? cli_fail("gd", st) : EXIT_OK;
}

/* --json: one object, arrays over the widths. */
static int gd_json(const gd_out *g) {
    const double *res = g->res;
    const long *widths = A.widths.v;
    int nw = A.widths.n;
    json_t *root = cli_json_init(g->act, g->cb, g->cw);
    json_object_set_new(root, "depth", json_integer(A.depth));
    json_object_set_new(root, "train", json_integer((json_int_t)g->nA));
    json_object_set_new(root, "test", json_integer((json_int_t)g->nB));
    json_object_set_new(root, "steps", json_integer(A.steps));
    json_object_set_new(root, "samples", json_integer(A.samples));
    json_object_set_new(root, "eta", json_real(res[14]));
    json_object_set_new(root, "eta_engine_mean_mse", json_real(res[14] * (double)g->nA * (double)g->nout / 2));
    static const char *keys[14] = {"gap_mean", "gap_mean_floor", "gap_var", "gap_net", "gap_net_stderr",
                                   "ntk_change", "ntk_change_stderr", "ntk_init_dev",
                                   "ntk_init_dev_stderr", "accuracy", "accuracy_theory",
                                   "train_loss", "train_loss_theory", "seconds"};
    json_t *jw = json_array();
    for (int w = 0; w < nw; w++) json_array_append_new(jw, json_integer(widths[w]));
    json_object_set_new(root, "width", jw);
    for (int k = 0; k < 14; k++) {
        json_t *a = json_array();
        for (int w = 0; w < nw; w++) json_array_append_new(a, cli_jnum(res[(size_t)w * 16 + k]));
        json_object_set_new(root, keys[k], a);
    }
    json_t *vf = json_array();
    for (int w = 0; w < nw; w++) json_array_append_new(vf, cli_jnum(res[(size_t)w * 16 + 15]));
    json_object_set_new(root, "gap_var_floor", vf);
    json_object_set_new(root, "gap_net_power", cli_jnum(g->pw[0]));
    json_object_set_new(root, "gap_net_power_stderr", cli_jnum(g->pe[0]));
    json_object_set_new(root, "ntk_change_power", cli_jnum(g->pw[1]));
    json_object_set_new(root, "ntk_change_power_stderr", cli_jnum(g->pe[1]));
    int ret = cli_write_json(stdout, "gd", root, 17);
    json_decref(root);
    return ret;
}
