/* cmd_theory.c — wick theory: the infinite-width and order-1/n predictions of
 * docs/theory.md for an MLP: kernel, chi_par/chi_perp, four-point vertex and NTK
 * per layer, and the activation's critical initialisation. */
#include "cli.h"

#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void fmt(char *buf, size_t n, double v) {
    if (isfinite(v)) snprintf(buf, n, "%.9g", v);
    else snprintf(buf, n, "n/a");
}

/* What the command line asks for. */
typedef struct {
    const char *act_name, *inputs, *plot;
    double cb, cw, lb, lw, q;
    double xi, gamma;  /* --residual, --gamma (residual.c) */
    const char *bayes; /* --bayes Y1,Y2,...: observed outputs at the first inputs (bayes.c) */
    double noise;
    long depth, width;
    int critical, json;
} theory_args;

static theory_args A;   /* the table's destinations */

static const cli_opt theory_opts[] = {
    {"act", CLI_FN, &A.act_name, 0, 0, 0, NULL, "NAME",
     "activation (default relu): perceptron, sigmoid, tanh, sin, linear,\n"
     "relu, leaky_relu[:slope] (slope default 0.01), softplus, swish, gelu", NULL, cli_act_arg},
    {"cb", CLI_REAL, &A.cb, -INFINITY, INFINITY, 0, NULL, "X", "bias variance C_b (default: the critical value, else 0)", NULL, NULL},
    {"cw", CLI_REAL, &A.cw, -INFINITY, INFINITY, 0, NULL, "X", "weight variance C_W (default: the critical value, else 1)", NULL, NULL},
    {"depth", CLI_INT, &A.depth, CLI_DEPTH_MIN, CLI_DEPTH_MAX, 0, "10", "L", "number of layers", NULL, NULL},
    {"width", CLI_INT, &A.width, 1, 1000000000, 0, "128", "N", "hidden width n for V/(nK^2) and fluctuations", NULL, NULL},
    {"lambda-b", CLI_REAL, &A.lb, -INFINITY, INFINITY, 0, "1", "X", "NTK bias learning rate lambda_b", NULL, NULL},
    {"lambda-w", CLI_REAL, &A.lw, -INFINITY, INFINITY, 0, "1", "X", "NTK weight learning rate lambda_W", NULL, NULL},
    {"q", CLI_REAL, &A.q, -INFINITY, INFINITY, 0, "1", "X", "one input of normalised squared norm |x|^2/n0", NULL, NULL},
    {"inputs", CLI_STR, &A.inputs, 0, 0, 0, NULL, "FILE", "several inputs instead: a CSV, one input per row", NULL, NULL},
    {"residual", CLI_REAL, &A.xi, -INFINITY, INFINITY, 0, NULL, "XI",
     "a residual MLP, z' = XI z + gamma (b + W sigma(z)) (the book's xi;\n"
     "docs/theory-residual.md): its critical point and the vertex's growth\n"
     "beside the plain MLP's (one input; JSON key \"residual\")", NULL, NULL},
    {"gamma", CLI_REAL, &A.gamma, 0, INFINITY, CLI_OPEN_LO, "1", "G", "the residual branch's strength gamma (with --residual)", NULL, NULL},
    {"critical", CLI_BOOL, &A.critical, 0, 0, 0, NULL, NULL,
     "print the critical initialisation and universality class\n"
     "(and the large-depth power law of the K*=0 class)", NULL, NULL},
    {"bayes", CLI_STR, &A.bayes, 0, 0, 0, NULL, "Y1,Y2,...",
     "finite-width Bayesian inference (with --inputs): the outputs observed at the first inputs; "
     "the posterior at the rest, Gaussian process and 1/n coefficients (docs/theory-bayes.md)", NULL, NULL},
    {"noise", CLI_REAL, &A.noise, 0, INFINITY, 0, "0.01", "X", "observation noise variance (with --bayes)", NULL, NULL},
    {"json", CLI_BOOL, &A.json, 0, 0, 0, NULL, NULL, "last line of stdout: one JSON object with per-layer arrays", NULL, NULL},
    {"plot", CLI_STR, &A.plot, 0, 0, 0, NULL, "FILE.png", "draw the flows with gnuplot", NULL, NULL},
    {0}};

static const cli_cmd theory_cmd = {
    "theory",
    "usage: wick theory [FLAGS]\n"
    "Predicts an MLP at initialisation from the effective theory (docs/theory.md): per\n"
    "layer the kernel K, chi_par, chi_perp, the four-point vertex V (shown as V/(n K^2)) and\n"
    "the NTK; for one input also the order-1/n tensors (docs/theory-finite-width.md): the\n"
    "kernel's and NTK's 1/n shifts K1, Theta1, the NTK's variance A, B and its correlation\n"
    "with the preactivations D, F, and the dNTK's correlation with them P, Q (ch. 11)\n"
    "(JSON keys K1, ntk1, A, B, D, F, P, Q; index l-1 is layer l); for two inputs the\n"
    "keys K1, ntk1, A, B, D, F hold 2 x 2 (K1, ntk1) and 4 x 4 matrices per layer, and P,\n"
    "Q (P_pathwise, Q_pathwise: a kink's sigma'' taken as 0) 4 x 4 matrices, row 2 a0 + a1,\n"
    "column 2 a2 + a3, and the ddNTK means R, S, T, U alike (kinks pathwise).\n\n",
    theory_opts, NULL, 0, 0};

/* What theory_run computed, for the report. */
typedef struct {
    wick_act act;
    double cb, cw;               /* as used: the critical values unless given */
    size_t L, n;                 /* layers, inputs */
    int undefined;               /* the perceptron: no chi, V or NTK */
    wick_critical_info crit;     /* the critical point, valid when cst is WICK_OK */
    wick_status cst;
    const char *crit_msg;        /* why there is none (WICK_ENUMERIC), else "" */
    const double *G0;            /* the input Gram matrix, n x n */
    const wick_layer_theory *per;          /* [input][layer] */
    const double *Kg, *Tg, *V2;  /* several inputs: K, Theta per layer (n x n), two: V (4 x 4) */
    const wick_layer_finite *fin;          /* one input: the order-1/n tensors, else NULL */
    const double *K1two;         /* two inputs: K1, Theta1, A, B, D, F per layer, else NULL */
    const wick_layer_ddntk *dd;  /* one input: the ddNTK means R, S, T, U, else NULL */
} theory_out;

static int theory_run(wick_act act);
static void theory_print(const theory_out *t);
static int theory_plot(const theory_out *t, const char *path);
static int theory_json(const theory_out *t);
static int residual_run(wick_act act);
static int bayes_run(wick_act act);

/* What residual_run computed, for its JSON. */
typedef struct {
    wick_act act;
    double cb, cw;                         /* the residual net's, as used */
    size_t L;
    int have_rc;                           /* crit holds the residual net's critical point */
    wick_critical_info crit;
    double plain_cb, plain_cw;             /* the plain MLP beside it */
    double nu_r, rs_r, nu_p, rs_p;         /* aspect ratios: residual nu, r*; plain nu, r* */
    const wick_layer_theory *res, *closure, *plain;  /* per layer */
} residual_out;

static int residual_json(const residual_out *r);

/* The command line into A; CLI_GO, or the exit code. */
static int theory_parse(int argc, char **argv) {
    A = (theory_args){.act_name = "relu", .cb = NAN, .cw = NAN, .xi = NAN};
    return cli_parse(&theory_cmd, argc, argv, NULL);
}

int cmd_theory(int argc, char **argv) {
    int rc = theory_parse(argc, argv);
    if (rc != CLI_GO) return rc;
    wick_act act;
    wick_status st = wick_act_parse(A.act_name, &act);
    if (st) return cli_fail("theory", st);
    if (isfinite(A.xi)) return residual_run(act);
    if (A.bayes) return bayes_run(act);
    return theory_run(act);
}

/* The flows of A's network, computed; then printed, plotted and as JSON. */
static int theory_run(wick_act act) {
    const char *inputs = A.inputs, *plot = A.plot;
    double cb = A.cb, cw = A.cw, lb = A.lb, lw = A.lw, q = A.q;
    long depth = A.depth, width = A.width;
    int json = A.json;
    wick_status st;

    /* the critical point: the default (C_b, C_W) where one exists */
    wick_critical_info crit;
    wick_status cst = wick_critical(act, &crit);
    char crit_msg[512] = "";
    if (cst == WICK_ENUMERIC) snprintf(crit_msg, sizeof crit_msg, "%s", wick_last_error());
    else if (cst) return cli_fail("theory", cst);
    if (isnan(cb)) cb = cst ? 0.0 : crit.cb;
    if (isnan(cw)) cw = cst ? 1.0 : crit.cw;

    wick_theory_config cfg = wick_theory_defaults(act, (int)depth);
    cfg.cb = cb; cfg.cw = cw; cfg.lambda_b = lb; cfg.lambda_w = lw;
    cfg.width = (size_t)width;
    cfg.tabulate = 1;
    int undefined = act.kind == WICK_ACT_PERCEPTRON;

    /* inputs: one q, or the rows of a CSV */
    size_t n = 1;
    double *G0 = NULL;
    if (inputs) {
        int rc = cli_csv_gram("theory", inputs, 0, &G0, &n);
        if (rc != EXIT_OK) return rc;
    } else {
        G0 = malloc(sizeof(double));
        if (!G0) return EXIT_FAIL;
        G0[0] = q;
    }

    int ret = EXIT_OK;
    size_t L = (size_t)depth;
    wick_layer_theory *per = calloc(L * n, sizeof *per);  /* [input][layer] */
    double *Kg = n > 1 ? malloc(sizeof(double) * L * n * n) : NULL;
    double *Tg = n > 1 && !undefined ? malloc(sizeof(double) * L * n * n) : NULL;
    double *V2 = n == 2 && !undefined ? malloc(sizeof(double) * L * 16) : NULL;
    wick_layer_finite *fin = NULL;
    wick_layer_ddntk *dd = NULL;
    double *K1two = NULL;
    if (!per || (n > 1 && (!Kg || (!undefined && !Tg))) || (n == 2 && !undefined && !V2)) {
        fprintf(stderr, "wick theory: out of memory for %zu inputs\n", n);
        ret = EXIT_FAIL;
        goto done;
    }
    for (size_t a = 0; a < n; a++)
        if ((st = wick_theory_single(&cfg, G0[a * n + a], per + a * L))) {
            ret = cli_fail("theory", st);
            goto done;
        }
    if (n > 1 && (st = wick_gram_flow(&cfg, G0, n, Kg, Tg))) { ret = cli_fail("theory", st); goto done; }
    if (V2) {
        double g[4] = {G0[0], G0[1], G0[2], G0[3]};
        if ((st = wick_vertex2(&cfg, g, V2))) { ret = cli_fail("theory", st); goto done; }
    }
    /* two inputs: the subleading kernel (docs/theory-finite-width.md) */
    if (n == 2 && !undefined) {
        /* K1, then Theta1 (4 a layer), A, B, D, F (16 a layer each), then
         * the dNTK's P, Q and their pathwise forms, the ddNTKs' R, S, T, U
         * (16 a layer each) */
        if (!(K1two = malloc(sizeof(double) * 200 * L))) {
            fprintf(stderr, "wick theory: out of memory\n");
            ret = EXIT_FAIL;
            goto done;
        }
        double g[4] = {G0[0], G0[1], G0[2], G0[3]};
        if ((st = wick_kernel1_two(&cfg, g, K1two)) || (st = wick_ntk_B_two(&cfg, g, K1two + 24 * L)) ||
            (st = wick_ntk_fluct_two(&cfg, g, K1two + 4 * L, K1two + 8 * L, K1two + 40 * L,
                                     K1two + 56 * L)) ||
            (st = wick_dntk_PQ_two(&cfg, g, K1two + 72 * L, K1two + 88 * L)) ||
            (st = wick_dntk_PQ_two_pathwise(&cfg, g, K1two + 104 * L, K1two + 120 * L)) ||
            (st = wick_theory_ddntk_two(&cfg, g, K1two + 136 * L, K1two + 152 * L, K1two + 168 * L,
                                        K1two + 184 * L))) {
            ret = cli_fail("theory", st);
            goto done;
        }
    }
    /* the order-1/n tensors of one input (docs/theory-finite-width.md) */
    if (n == 1 && !undefined) {
        if (!(fin = calloc(L, sizeof *fin))) {
            fprintf(stderr, "wick theory: out of memory\n");
            ret = EXIT_FAIL;
            goto done;
        }
        if ((st = wick_theory_finite(&cfg, G0[0], fin))) { ret = cli_fail("theory", st); goto done; }
        if (!(dd = calloc(L, sizeof *dd))) {
            fprintf(stderr, "wick theory: out of memory\n");
            ret = EXIT_FAIL;
            goto done;
        }
        if ((st = wick_theory_ddntk(&cfg, G0[0], dd))) { ret = cli_fail("theory", st); goto done; }
    }

    theory_out out = {act, cb, cw, L, n, undefined, crit, cst, crit_msg, G0, per, Kg, Tg, V2, fin, K1two, dd};
    theory_print(&out);
    if (plot && (ret = theory_plot(&out, plot)) != EXIT_OK) goto done;
    if (json) ret = theory_json(&out);
done:
    free(per); free(Kg); free(Tg); free(V2); free(G0); free(fin); free(K1two); free(dd);
    return ret;
}

/* The flows as tables: the header, the critical point, per layer K, chi's, V, Theta (each input's
 * unless --json with several inputs), the 1/n tensors of one input, the last layer's Gram matrices. */
static void theory_print(const theory_out *t) {
    wick_act act = t->act;
    double cb = t->cb, cw = t->cw;
    size_t L = t->L, n = t->n;
    long width = A.width;
    const wick_layer_theory *per = t->per;
    const char *inputs = A.inputs;
    double lb = A.lb, lw = A.lw;
    int critical = A.critical, json = A.json;
    wick_status cst = t->cst;
    const wick_critical_info crit = t->crit;
    const char *crit_msg = t->crit_msg;
    const double *G0 = t->G0, *Kg = t->Kg, *Tg = t->Tg;
    const wick_layer_finite *fin = t->fin;
    char b1[32], b2[32], b3[32], b4[32], b5[32];
    printf("# wick theory: %s, C_b = %.9g, C_W = %.9g, depth %zu, width %ld, lambda_b = %.9g, "
           "lambda_W = %.9g, %s\n", wick_act_name(act), cb, cw, L, width, lb, lw,
           inputs ? "inputs from file" : "one input");
    if (critical) {
        if (cst) {
            printf("critical: %s\n", crit_msg);
        } else {
            printf("critical: C_b = %.9g, C_W = %.9g, class %s", crit.cb, crit.cw,
                   wick_universality_name(crit.cls));
            if (crit.cls == WICK_UNIV_HALF_STABLE) printf(", K* = %.9g", crit.kstar);
            printf("\n");
            if (crit.cls == WICK_UNIV_KSTAR_ZERO)
                printf("power law: K(l) ~ %.9g * l^-%.9g at large depth (a1 = %.9g)\n",
                       crit.power_coeff, crit.power_exponent, crit.a1);
        }
    }
    if (n == 1 || !json) {
        for (size_t a = 0; a < n; a++) {
            if (n > 1) printf("input %zu (q = %.9g)\n", a, G0[a * n + a]);
            printf("%6s %16s %16s %16s %16s %16s\n", "layer", "K", "chi_par", "chi_perp",
                   "V/(nK^2)", "Theta");
            for (size_t l = 0; l < L; l++) {
                const wick_layer_theory *o = per + a * L + l;
                fmt(b1, sizeof b1, o->K); fmt(b2, sizeof b2, o->chi_par);
                fmt(b3, sizeof b3, o->chi_perp);
                fmt(b4, sizeof b4, o->K > 0 ? o->V / ((double)width * o->K * o->K) : NAN);
                fmt(b5, sizeof b5, o->ntk);
                printf("%6zu %16s %16s %16s %16s %16s\n", l + 1, b1, b2, b3, b4, b5);
            }
        }
        if (fin) {
            printf("order 1/n, each a coefficient of 1/n_{l-1}: E[zz] = K + K1/n, E[H] = Theta + "
                   "Theta1/n,\nVar(H_ii) = (A + 2B)/n, Var(H_ij) = B/n, E[dH_ii z_j z_j] = D/n, "
                   "E[H_ij z_i z_j] = F/n\n");
            printf("%6s %14s %14s %14s %14s %14s %14s\n", "layer", "K1", "Theta1", "A", "B", "D",
                   "F");
            for (size_t l = 0; l < L; l++) {
                const wick_layer_finite *o = fin + l;
                printf("%6zu %14.7g %14.7g %14.7g %14.7g %14.7g %14.7g\n", l + 1, o->K1, o->ntk1,
                       o->A, o->B, o->D, o->F);
            }
            printf("the dNTK (ch. 11): E[dH_i0i1i2 z_i3] = (d01 d23 P + d02 d13 P + d03 d12 Q)/n\n");
            printf("%6s %14s %14s\n", "layer", "P", "Q");
            for (size_t l = 0; l < L; l++)
                printf("%6zu %14.7g %14.7g\n", l + 1, fin[l].P, fin[l].Q);
            if (t->dd) {
                printf("the ddNTKs (ch. 11): E[ddI_i0i1i2i3] = (d01 d23 + d02 d13 + d03 d12) R/n, "
                       "E[ddII_i1i2i3i4] = (d12 d34 S + d13 d24 T + d14 d23 U)/n\n");
                printf("%6s %14s %14s %14s %14s\n", "layer", "R", "S", "T", "U");
                for (size_t l = 0; l < L; l++)
                    printf("%6zu %14.7g %14.7g %14.7g %14.7g\n", l + 1, t->dd[l].R, t->dd[l].S,
                           t->dd[l].T, t->dd[l].U);
            }
        }
        if (n > 1) {
            printf("kernel K and NTK Theta of the last layer:\n");
            for (size_t a = 0; a < n; a++) {
                for (size_t b = 0; b < n; b++) printf(" %.9g", Kg[(L - 1) * n * n + a * n + b]);
                printf("   |");
                for (size_t b = 0; b < n; b++)
                    printf(" %s", Tg ? (fmt(b1, sizeof b1, Tg[(L - 1) * n * n + a * n + b]), b1) : "n/a");
                printf("\n");
            }
        }
    }
}

/* --plot: the flows of input 0 against the layer. */
static int theory_plot(const theory_out *t, const char *path) {
    wick_act act = t->act;
    double cb = t->cb, cw = t->cw;
    size_t L = t->L, n = t->n;
    long width = A.width;
    const wick_layer_theory *per = t->per;
    int undefined = t->undefined;
    double *lx = malloc(sizeof(double) * L), *ys = malloc(sizeof(double) * L * 4);
    if (!lx || !ys) { free(lx); free(ys); fprintf(stderr, "wick theory: out of memory\n"); return EXIT_FAIL; }
    for (size_t l = 0; l < L; l++) {
        const wick_layer_theory *o = per + l;
        lx[l] = (double)(l + 1);
        ys[l] = o->K; ys[L + l] = o->chi_par; ys[2 * L + l] = o->chi_perp;
        ys[3 * L + l] = o->K > 0 ? o->V / ((double)width * o->K * o->K) : NAN;
    }
    wick_series s[4] = {{"K", lx, ys, NULL, L, 0, 0}, {"chi_par", lx, ys + L, NULL, L, 0, 0},
                        {"chi_perp", lx, ys + 2 * L, NULL, L, 0, 0},
                        {"V/(nK^2)", lx, ys + 3 * L, NULL, L, 0, 0}};
    char title[256];
    snprintf(title, sizeof title, "%s, C_b = %g, C_W = %g, n = %ld%s", wick_act_name(act), cb,
             cw, width, n > 1 ? " (input 0)" : "");
    wick_status st = wick_plot_png(path, title, "layer", "value", s, undefined ? 1 : 4, 0, 0);
    free(lx); free(ys);
    return st ? cli_fail("theory", st) : EXIT_OK;
}

/* --json: one object with per-layer arrays (Gram matrices per layer for several inputs). */
static int theory_json(const theory_out *t) {
    size_t L = t->L, n = t->n;
    const wick_layer_theory *per = t->per;
    int critical = A.critical;
    wick_status cst = t->cst;
    const wick_critical_info crit = t->crit;
    const char *crit_msg = t->crit_msg;
    const double *Kg = t->Kg, *Tg = t->Tg, *V2 = t->V2, *K1two = t->K1two;
    const wick_layer_finite *fin = t->fin;
    json_t *root = cli_json_init(t->act, t->cb, t->cw);
    json_object_set_new(root, "depth", json_integer((json_int_t)L));
    json_object_set_new(root, "width", json_integer(A.width));
    json_object_set_new(root, "lambda_b", json_real(A.lb));
    json_object_set_new(root, "lambda_w", json_real(A.lw));
    json_object_set_new(root, "inputs", json_integer((json_int_t)n));
    if (critical) {
        json_t *cj = json_object();
        json_object_set_new(cj, "class", json_string(wick_universality_name(crit.cls)));
        json_object_set_new(cj, "cb", cli_jnum(crit.cb));
        json_object_set_new(cj, "cw", cli_jnum(crit.cw));
        json_object_set_new(cj, "kstar", cli_jnum(crit.kstar));
        json_object_set_new(cj, "a1", cli_jnum(crit.a1));
        json_object_set_new(cj, "power_exponent", cli_jnum(crit.power_exponent));
        json_object_set_new(cj, "power_coeff", cli_jnum(crit.power_coeff));
        if (cst) json_object_set_new(cj, "message", json_string(crit_msg));
        json_object_set_new(root, "critical", cj);
    }
    json_t *jK = json_array(), *jp = json_array(), *jq = json_array(), *jV = json_array(),
           *jT = json_array();
    for (size_t l = 0; l < L; l++) {
        if (n == 1) {
            const wick_layer_theory *o = per + l;
            json_array_append_new(jK, cli_jnum(o->K));
            json_array_append_new(jp, cli_jnum(o->chi_par));
            json_array_append_new(jq, cli_jnum(o->chi_perp));
            json_array_append_new(jV, cli_jnum(o->V));
            json_array_append_new(jT, cli_jnum(o->ntk));
            continue;
        }
        /* several inputs: Gram matrices per layer; chi per input (at K_aa);
         * V the two-input vertex (4 x 4 over ordered pairs) for two inputs,
         * else the single-input vertex of each input */
        json_array_append_new(jK, cli_json_matrix(Kg + l * n * n, n, n));
        json_array_append_new(jT, Tg ? cli_json_matrix(Tg + l * n * n, n, n) : json_null());
        json_t *ap = json_array(), *aq = json_array(), *av = json_array();
        for (size_t a = 0; a < n; a++) {
            json_array_append_new(ap, cli_jnum(per[a * L + l].chi_par));
            json_array_append_new(aq, cli_jnum(per[a * L + l].chi_perp));
            if (!V2) json_array_append_new(av, cli_jnum(per[a * L + l].V));
        }
        json_array_append_new(jp, ap);
        json_array_append_new(jq, aq);
        if (V2) { json_decref(av); av = cli_json_matrix(V2 + l * 16, 4, 4); }
        json_array_append_new(jV, av);
    }
    json_object_set_new(root, "K", jK);
    json_object_set_new(root, "chi_par", jp);
    json_object_set_new(root, "chi_perp", jq);
    json_object_set_new(root, "V", jV);
    json_object_set_new(root, "ntk", jT);
    if (K1two) {  /* two inputs: the subleading kernel, a 2 x 2 matrix per layer */
        json_t *arr = json_array();
        for (size_t l = 0; l < L; l++) json_array_append_new(arr, cli_json_matrix(K1two + 4 * l, 2, 2));
        json_object_set_new(root, "K1", arr);
        /* the NTK's mean shift (2 x 2) and A, B, D, F (4 x 4, the layouts of
         * wick_ntk_fluct_two and wick_ntk_B_two) per layer */
        /* and the dNTK's P, Q (wick_dntk_PQ_two; row 2 a0 + a1, column 2 a2 + a3)
         * and their pathwise forms (kink sigma'' = 0: wick_dntk_PQ_two_pathwise) */
        /* and the ddNTK means R, S, T, U (wick_theory_ddntk_two, same layout) */
        static const char *k2[13] = {"ntk1", "A", "B", "D", "F", "P", "Q", "P_pathwise",
                                     "Q_pathwise", "R", "S", "T", "U"};
        static const size_t o2[13] = {4, 8, 24, 40, 56, 72, 88, 104, 120, 136, 152, 168, 184};
        for (int k = 0; k < 13; k++) {
            size_t sz = k ? 16 : 4, d = k ? 4 : 2;
            arr = json_array();
            for (size_t l = 0; l < L; l++)
                json_array_append_new(arr, cli_json_matrix(K1two + o2[k] * L + sz * l, d, d));
            json_object_set_new(root, k2[k], arr);
        }
    }
    if (fin) {
        /* one array per tensor, index l-1 holding layer l (as K, V, ntk) */
        static const char *keys[8] = {"K1", "ntk1", "A", "B", "D", "F", "P", "Q"};
        for (int k = 0; k < 8; k++) {
            json_t *arr = json_array();
            for (size_t l = 0; l < L; l++) {
                const wick_layer_finite *o = fin + l;
                double v[8] = {o->K1, o->ntk1, o->A, o->B, o->D, o->F, o->P, o->Q};
                json_array_append_new(arr, cli_jnum(v[k]));
            }
            json_object_set_new(root, keys[k], arr);
        }
    }
    if (t->dd) {  /* the ddNTK means (wick_theory_ddntk), index l-1 holding layer l */
        static const char *dk[4] = {"R", "S", "T", "U"};
        for (int k = 0; k < 4; k++) {
            json_t *arr = json_array();
            for (size_t l = 0; l < L; l++) {
                const wick_layer_ddntk *o = t->dd + l;
                double v[4] = {o->R, o->S, o->T, o->U};
                json_array_append_new(arr, cli_jnum(v[k]));
            }
            json_object_set_new(root, dk[k], arr);
        }
    }
    int ret = cli_write_json(stdout, "theory", root, 17);
    json_decref(root);
    return ret;
}

/* --residual: the residual MLP (residual.c) beside the plain one, both at
 * their critical points unless --cb/--cw say otherwise.  V/K^2 per layer:
 * the residual net's (Hermite-mode recursion), its V-only closure, the MLP's. */
static int residual_run(wick_act act) {
    double xi = A.xi, gamma = A.gamma;
    if (A.inputs) {
        fprintf(stderr, "wick theory: --residual takes one input (--q), not --inputs\n");
        return EXIT_USAGE;
    }
    wick_critical_info rc, pc;
    wick_status rst = xi * xi < 1 ? wick_residual_critical(act, xi, gamma, &rc) : WICK_EINVAL;
    wick_status pst = wick_critical(act, &pc);
    if (rst && rst != WICK_ENUMERIC && xi * xi < 1) return cli_fail("theory", rst);
    int have_rc = rst == WICK_OK, have_pc = pst == WICK_OK;
    double cb = isnan(A.cb) ? (have_rc ? rc.cb : 0.0) : A.cb;
    double cw = isnan(A.cw) ? (have_rc ? rc.cw : 1.0) : A.cw;
    size_t L = (size_t)A.depth;
    wick_theory_config c = wick_theory_defaults(act, (int)L), p = c;
    c.cb = cb; c.cw = cw; c.lambda_b = p.lambda_b = A.lb; c.lambda_w = p.lambda_w = A.lw;
    c.width = p.width = (size_t)A.width;
    p.cb = have_pc ? pc.cb : 0.0; p.cw = have_pc ? pc.cw : 1.0;
    wick_layer_theory *r = calloc(L, sizeof *r), *rv = calloc(L, sizeof *rv),
                      *pl = calloc(L, sizeof *pl);
    int ret = EXIT_OK;
    wick_status st;
    if (!r || !rv || !pl) { fprintf(stderr, "wick theory: out of memory\n"); ret = EXIT_FAIL; goto done; }
    if ((st = wick_residual_single(&c, xi, gamma, A.q, r)) ||
        (st = wick_residual_closure(&c, xi, gamma, A.q, rv)) ||
        (st = wick_theory_single(&p, A.q, pl))) { ret = cli_fail("theory", st); goto done; }
    printf("# wick theory --residual: %s, xi = %.9g, gamma = %.9g, C_b = %.9g, C_W = %.9g, depth %zu, "
           "q = %.9g\n", wick_act_name(act), xi, gamma, cb, cw, L, A.q);
    if (have_rc)
        printf("critical (residual): C_b = %.9g, C_W = %.9g = (1 - xi^2)/gamma^2 x the MLP's "
               "(%.9g, %.9g), class %s\n", rc.cb, rc.cw, pc.cb, pc.cw, wick_universality_name(rc.cls));
    else
        printf("critical (residual): none (%s)\n", xi * xi >= 1 ? "xi^2 >= 1: the skip alone has "
               "chi >= 1" : "the activation has no critical point");
    printf("the plain MLP beside it at C_b = %.9g, C_W = %.9g\n", p.cb, p.cw);
    printf("%6s %14s %14s %14s %14s %14s %14s\n", "layer", "K", "chi_par", "chi_perp", "V/K^2",
           "V/K^2 closure", "V/K^2 MLP");
    for (size_t l = 0; l < L; l++) {
        double k2 = r[l].K * r[l].K, p2 = pl[l].K * pl[l].K;
        printf("%6zu %14.7g %14.7g %14.7g %14.7g %14.7g %14.7g\n", l + 1, r[l].K, r[l].chi_par,
               r[l].chi_perp, k2 > 0 ? r[l].V / k2 : NAN, k2 > 0 ? rv[l].V / k2 : NAN,
               p2 > 0 ? pl[l].V / p2 : NAN);
    }
    if (L >= 3) {
        /* the growth of V/K^2 per layer over the last half of the net */
        size_t a = L / 2 - 1 > 0 ? L / 2 - 1 : 1, b = L - 1;
        double gr = (r[b].V / (r[b].K * r[b].K) - r[a].V / (r[a].K * r[a].K)) / (double)(b - a);
        double gp = (pl[b].V / (pl[b].K * pl[b].K) - pl[a].V / (pl[a].K * pl[a].K)) / (double)(b - a);
        printf("vertex growth d(V/K^2)/dl, layers %zu..%zu: residual %.7g, MLP %.7g (ratio %.4g)\n",
               a + 1, b + 1, gr, gp, gr / gp);
    }
    /* the book's optimal aspect ratio for one output, nu r* = 4/(20 + 3 n_L) */
    double nu_r = NAN, rs_r = NAN, nu_p = NAN, rs_p = NAN;
    if (have_rc && wick_aspect_ratio(act, xi, gamma, 1, &nu_r, &rs_r)) nu_r = rs_r = NAN;
    if (have_pc && wick_aspect_ratio(act, 0, 1, 1, &nu_p, &rs_p)) nu_p = rs_p = NAN;
    if (have_rc)
        printf("optimal aspect ratio L/n (the book's estimate, one output; nu = the growth of V/K^2 "
               "per layer at criticality, layers 100..200): residual nu = %.6g, r* = %.6g; MLP nu = "
               "%.6g, r* = %.6g\n", nu_r, rs_r, nu_p, rs_p);
    if (A.json) {
        residual_out ro = {act, cb, cw, L, have_rc, rc, p.cb, p.cw, nu_r, rs_r, nu_p, rs_p, r, rv, pl};
        ret = residual_json(&ro);
    }
done:
    free(r); free(rv); free(pl);
    return ret;
}

/* --residual --json: the residual net's flows beside the plain MLP's, under the key "residual". */
static int residual_json(const residual_out *r) {
    const wick_layer_theory *rn = r->res, *rv = r->closure, *pl = r->plain;
    size_t L = r->L;
    json_t *root = cli_json_init(r->act, r->cb, r->cw);
    json_object_set_new(root, "depth", json_integer((json_int_t)r->L));
    json_t *res = json_object();
    json_object_set_new(res, "nu", cli_jnum(r->nu_r));
    json_object_set_new(res, "rstar", cli_jnum(r->rs_r));
    json_object_set_new(res, "nu_plain", cli_jnum(r->nu_p));
    json_object_set_new(res, "rstar_plain", cli_jnum(r->rs_p));
    json_object_set_new(res, "xi", json_real(A.xi));
    json_object_set_new(res, "gamma", json_real(A.gamma));
    json_object_set_new(res, "critical_cb", cli_jnum(r->have_rc ? r->crit.cb : NAN));
    json_object_set_new(res, "critical_cw", cli_jnum(r->have_rc ? r->crit.cw : NAN));
    json_object_set_new(res, "plain_cb", cli_jnum(r->plain_cb));
    json_object_set_new(res, "plain_cw", cli_jnum(r->plain_cw));
    static const char *keys[7] = {"K", "chi_par", "chi_perp", "V", "V_closure", "ntk", "V_plain"};
    for (int k = 0; k < 7; k++) {
        json_t *arr = json_array();
        for (size_t l = 0; l < L; l++) {
            double v[7] = {rn[l].K, rn[l].chi_par, rn[l].chi_perp, rn[l].V, rv[l].V, rn[l].ntk, pl[l].V};
            json_array_append_new(arr, cli_jnum(v[k]));
        }
        json_object_set_new(res, keys[k], arr);
    }
    json_object_set_new(root, "residual", res);
    int ret = cli_write_json(stdout, "theory", root, 17);
    json_decref(root);
    return ret;
}

/* --bayes: the posterior of the outputs at the test inputs (the CSV's rows
 * after the observed ones) at order 1/n (docs/theory-bayes.md): the deep
 * linear net in closed form, depth 2 with up to 4 inputs, deeper nets with
 * one training and one test input. */
static int bayes_run(wick_act act) {
    if (!A.inputs) {
        fprintf(stderr, "wick theory: --bayes needs --inputs (training rows first, then test rows)\n");
        return EXIT_USAGE;
    }
    double y[64];
    size_t nA = 0;
    for (const char *p = A.bayes; *p && nA < 64;) {
        char *e;
        double v = strtod(p, &e);
        if (e == p || !isfinite(v) || (*e && *e != ',')) {
            fprintf(stderr, "wick theory: --bayes expects comma-separated numbers, got '%s'\n", A.bayes);
            return EXIT_USAGE;
        }
        y[nA++] = v;
        p = *e ? e + 1 : e;
    }
    double *G0 = NULL;
    size_t m = 0;
    int rc = cli_csv_gram("theory", A.inputs, 0, &G0, &m);
    if (rc != EXIT_OK) return rc;
    if (nA < 1 || nA >= m) {
        fprintf(stderr, "wick theory: --bayes gives %zu observations for %zu inputs (need fewer "
                "observations than inputs: the rows after them are the test inputs)\n", nA, m);
        free(G0);
        return EXIT_USAGE;
    }
    wick_critical_info crit;
    wick_status cst = wick_critical(act, &crit);
    double cb = isnan(A.cb) ? (cst ? 0.0 : crit.cb) : A.cb, cw = isnan(A.cw) ? (cst ? 1.0 : crit.cw) : A.cw;
    size_t nB = m - nA;
    double *mo = malloc(sizeof(double) * 2 * nB), *co = malloc(sizeof(double) * 2 * nB * nB);
    if (!mo || !co) { free(G0); free(mo); free(co); return EXIT_FAIL; }
    wick_status st;
    if (act.kind == WICK_ACT_LINEAR && cb == 0)
        st = wick_bayes_linear_posterior(cw, (int)A.depth, G0, m, nA, y, A.noise, mo, mo + nB, co,
                                         co + nB * nB);
    else {
        wick_theory_config cfg = wick_theory_defaults(act, (int)A.depth);
        cfg.cb = cb; cfg.cw = cw;
        st = wick_bayes_net(&cfg, G0, m, nA, y, A.noise, mo, mo + nB, co, co + nB * nB);
    }
    free(G0);
    if (st) { free(mo); free(co); return cli_fail("theory", st); }
    double n = (double)A.width;
    printf("# posterior at the %zu test inputs given %zu observations (noise %g), depth %ld, "
           "C_b %g, C_W %g: GP value, 1/n coefficient, and at width n = %ld\n",
           nB, nA, A.noise, A.depth, cb, cw, A.width);
    printf("%-10s %16s %16s %16s\n", "quantity", "GP", "1/n coeff", "width n");
    for (size_t i = 0; i < nB; i++)
        printf("mean[%zu]   %16.9g %16.9g %16.9g\n", i, mo[i], mo[nB + i], mo[i] + mo[nB + i] / n);
    for (size_t i = 0; i < nB; i++)
        for (size_t j = 0; j < nB; j++)
            printf("cov[%zu,%zu]   %16.9g %16.9g %16.9g\n", i, j, co[i * nB + j],
                   co[nB * nB + i * nB + j], co[i * nB + j] + co[nB * nB + i * nB + j] / n);
    int ret = EXIT_OK;
    if (A.json) {
        json_t *root = cli_json_init(act, cb, cw);
        json_object_set_new(root, "depth", json_integer((json_int_t)A.depth));
        json_object_set_new(root, "width", json_integer((json_int_t)A.width));
        json_t *b = json_object();
        json_object_set_new(b, "noise", json_real(A.noise));
        json_object_set_new(b, "train", json_integer((json_int_t)nA));
        json_object_set_new(b, "test", json_integer((json_int_t)nB));
        const char *mk[2] = {"mean0", "mean1"}, *ck[2] = {"cov0", "cov1"};
        for (int k = 0; k < 2; k++) {
            json_t *a = json_array(), *c = json_array();
            for (size_t i = 0; i < nB; i++) {
                json_array_append_new(a, cli_jnum(mo[k * nB + i]));
                json_t *row = json_array();
                for (size_t j = 0; j < nB; j++) json_array_append_new(row, cli_jnum(co[k * nB * nB + i * nB + j]));
                json_array_append_new(c, row);
            }
            json_object_set_new(b, mk[k], a);
            json_object_set_new(b, ck[k], c);
        }
        json_object_set_new(root, "bayes", b);
        ret = cli_write_json(stdout, "theory", root, 17);
        json_decref(root);
    }
    free(mo); free(co);
    return ret;
}
