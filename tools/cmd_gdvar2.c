/* cmd_gdvar2.c — `wick gd --order1 --test-gram G00,G01,G11 --variance`: the
 * variance across initialisations at the test input after gradient descent on
 * the training input, the order-1/n prediction (wick_gd_var_test) beside the
 * measured ensembles (wick_gd_test_var_measure) per width
 * (docs/theory-finite-width.md, "the variance at a test input"). */
#include "cli.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

int gd_order1_test_var(wick_act act, double cb, double cw, double lb, double lw, int depth,
                       const cli_ints *widths, long samples, long seed, long steps, double eta,
                       double y, const double g[3], int json) {
    double G0[4];
    wick_theory_config tc;
    int bad = gd_test_gram(g, act, cb, cw, lb, lw, depth, G0, &tc);
    if (bad) return bad;
    wick_gd_testvar_tensors V;
    wick_gd_testvar_terms o;
    wick_status st;
    if ((st = wick_gd_testvar_tensors_two(&tc, G0, 0, &V))) return cli_fail("gd", st);
    if ((st = wick_gd_var_test(&V, y, eta, steps, &o))) return cli_fail("gd", st);
    double th = V.base.ntk[1] / V.base.ntk[0];
    double cinf = steps < 0 ? th : th * (1 - pow(1 - eta * V.base.ntk[0], (double)steps));
    double frozen = o.v_ntk1 + o.v_DF + o.v_var, beyond = o.v_dntk + o.v_ddI + o.v_ddII;
    printf("# trained on input a, read at input b (Gram %g %g %g), %s, depth %d, C_b %g, C_W %g,\n"
           "# eta %g, target %g: Var z_b = var + (K1 part + frozen + beyond)/n,\n"
           "#   var = K_bb - 2 c K_ab + c^2 K_aa = %.9g (c = %.9g), E[z_b] = %.9g,\n"
           "#   K1 part %.9g (the vertex V: %.3g), frozen = Theta1 %.9g + D/F %.9g + A/B %.9g,\n"
           "#   beyond = dNTK %.9g + ddI %.9g + ddII %.9g\n",
           g[0], g[1], g[2], steps < 0 ? "fully trained" : "t steps", depth, cb, cw, eta, y, o.var,
           cinf, o.mean, o.v_K1, o.v_V, o.v_ntk1, o.v_DF, o.v_var, o.v_dntk, o.v_ddI, o.v_ddII);
    if (steps > 0) printf("# t = %ld\n", steps);
    printf("# per width: n (Var z_b - var) against all = %.6g, n (Var z_lin,b - Var w) against\n"
           "# frozen = %.6g, n (Var z_b - Var z_lin,b) against beyond = %.6g (w = z_b(0) - c z_a(0))\n",
           o.v_K1 + o.v_V + frozen + beyond, frozen, beyond);
    printf("%8s %8s %22s %22s %22s\n", "width", "pairs", "n (Var - var)", "n frozen", "n beyond");
    json_t *rows = json_array();
    for (int w = 0; w < widths->n; w++) {
        size_t n = (size_t)widths->v[w];
        wick_gd_test_config c = {{act, cb, cw, lb, lw, depth, 2, n, 1}, {G0[0], G0[1], G0[2], G0[3]},
                                 y, eta, (size_t)samples / 2, (uint64_t)seed, steps};
        double val[WICK_GDTV_COUNT], se[WICK_GDTV_COUNT];
        if ((st = wick_gd_test_var_measure(&c, cinf, val, se))) {
            json_decref(rows);
            return cli_fail("gd", st);
        }
        double nd = (double)n;
        printf("%8zu %8zu %11.5g +- %-8.3g %11.5g +- %-8.3g %11.5g +- %-8.3g\n", n, c.samples,
               nd * (val[WICK_GDTV_VAR] - o.var), nd * se[WICK_GDTV_VAR],
               nd * val[WICK_GDTV_FROZEN], nd * se[WICK_GDTV_FROZEN],
               nd * val[WICK_GDTV_BEYOND], nd * se[WICK_GDTV_BEYOND]);
        fflush(stdout);
        json_t *r = json_object();
        json_object_set_new(r, "width", json_integer((json_int_t)n));
        json_object_set_new(r, "pairs", json_integer((json_int_t)c.samples));
        json_object_set_new(r, "var", cli_jnum(val[WICK_GDTV_VAR]));
        json_object_set_new(r, "var_se", cli_jnum(se[WICK_GDTV_VAR]));
        json_object_set_new(r, "n_var_frozen", cli_jnum(nd * val[WICK_GDTV_FROZEN]));
        json_object_set_new(r, "n_var_frozen_se", cli_jnum(nd * se[WICK_GDTV_FROZEN]));
        json_object_set_new(r, "n_var_beyond", cli_jnum(nd * val[WICK_GDTV_BEYOND]));
        json_object_set_new(r, "n_var_beyond_se", cli_jnum(nd * se[WICK_GDTV_BEYOND]));
        json_object_set_new(r, "steps_taken", cli_jnum(val[WICK_GDTV_STEPS]));
        json_array_append_new(rows, r);
    }
    int ret = EXIT_OK;
    if (json) {
        json_t *root = cli_json_init(act, cb, cw);
        json_object_set_new(root, "depth", json_integer((json_int_t)depth));
        json_object_set_new(root, "eta", json_real(eta));
        json_object_set_new(root, "steps", json_integer((json_int_t)steps));
        json_object_set_new(root, "target", json_real(y));
        json_t *gg = json_array();
        for (int i = 0; i < 3; i++) json_array_append_new(gg, json_real(g[i]));
        json_object_set_new(root, "test_gram", gg);
        json_object_set_new(root, "mean", cli_jnum(o.mean));
        json_object_set_new(root, "c", cli_jnum(cinf));
        json_object_set_new(root, "var", cli_jnum(o.var));
        json_object_set_new(root, "var_K1", cli_jnum(o.v_K1));
        json_object_set_new(root, "var_V", cli_jnum(o.v_V));
        json_object_set_new(root, "var_ntk1", cli_jnum(o.v_ntk1));
        json_object_set_new(root, "var_DF", cli_jnum(o.v_DF));
        json_object_set_new(root, "var_AB", cli_jnum(o.v_var));
        json_object_set_new(root, "var_dntk", cli_jnum(o.v_dntk));
        json_object_set_new(root, "var_ddI", cli_jnum(o.v_ddI));
        json_object_set_new(root, "var_ddII", cli_jnum(o.v_ddII));
        json_object_set_new(root, "var_frozen", cli_jnum(frozen));
        json_object_set_new(root, "var_beyond", cli_jnum(beyond));
        json_object_set_new(root, "widths", rows);
        ret = cli_write_json(stdout, "gd", root, 17);
        json_decref(root);
    } else {
        json_decref(rows);
    }
    return ret;
}
