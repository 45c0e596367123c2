/* cmd_gd2.c — `wick gd --order1 --test-gram G00,G01,G11`: gradient descent
 * on one training input read at a test input, the order-1/n prediction
 * (wick_gd_mean_test) beside the measured ensembles (wick_gd_test_measure)
 * per width (docs/theory-finite-width.md, "the mean at a test input"). */
#include "cli.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

int gd_order1_test(wick_act act, double cb, double cw, double lb, double lw, int depth,
                   const cli_ints *widths, long samples, long seed, long steps, double eta,
                   double y, const double g[3], int json) {
    double G0[4];
    wick_theory_config tc;
    int bad = gd_test_gram(g, act, cb, cw, lb, lw, depth, G0, &tc);
    if (bad) return bad;
    /* wick_dntk_PQ_two takes a kink's sigma'' as a delta, the pathwise form
     * as 0: the same for smooth activations, two predictions for a kink */
    wick_gd_test_tensors T[2];
    wick_gd_test_terms o[2];
    wick_status st;
    for (int k = 0; k < 2; k++) {
        if ((st = wick_gd_test_tensors_two(&tc, G0, k, &T[k]))) return cli_fail("gd", st);
        if ((st = wick_gd_mean_test(&T[k], y, eta, steps, &o[k]))) return cli_fail("gd", st);
    }
    const wick_gd_test_part *p = &o[0].test;
    double pfroz = p->a_ntk1 + p->a_var, pbeyond = p->a_dntk + p->a_ddI + p->a_ddII;
    double pbeyond_pw = o[1].test.a_dntk + o[1].test.a_ddI + o[1].test.a_ddII;
    int kink = fabs(pbeyond - pbeyond_pw) > 1e-12 * (1 + fabs(pbeyond));
    printf("# trained on input a, read at input b (Gram %g %g %g), %s, depth %d, C_b %g, C_W %g,\n"
           "# eta %g, target %g: E[z_b] = lin + (frozen + beyond)/n, lin = %.9g,\n"
           "#   frozen = Theta1 %.9g + NTK variance %.9g,\n"
           "#   beyond = dNTK %.9g + ddI %.9g + ddII %.9g = %.9g%s\n",
           g[0], g[1], g[2], steps < 0 ? "fully trained" : "t steps", depth, cb, cw, eta, y, p->lin,
           p->a_ntk1, p->a_var, p->a_dntk, p->a_ddI, p->a_ddII, pbeyond,
           kink ? " (kink's sigma'' a delta)" : "");
    if (kink)
        printf("#   beyond with the pathwise dNTK (sigma'' = 0 at the kink) = %.9g\n", pbeyond_pw);
    if (steps > 0) printf("# t = %ld\n", steps);
    printf("# per width: n (E[z_lin,b] - lin) of each network's own frozen-NTK trajectory\n"
           "# (noisy: its NTK) against 'frozen', n E[z_b - z_lin,b] against 'beyond'%s\n",
           steps == 1 ? ", and its eta^2, eta^3 parts" : "");
    gd_parts_header();
    json_t *rows = json_array();
    for (int w = 0; w < widths->n; w++) {
        size_t n = (size_t)widths->v[w];
        wick_gd_test_config c = {{act, cb, cw, lb, lw, depth, 2, n, 1}, {G0[0], G0[1], G0[2], G0[3]},
                                 y, eta, (size_t)samples / 2, (uint64_t)seed, steps};
        double val[WICK_GDT_COUNT], se[WICK_GDT_COUNT];
        if ((st = wick_gd_test_measure(&c, val, se))) { json_decref(rows); return cli_fail("gd", st); }
        double nd = (double)n;
        const double part[8] = {nd * (val[WICK_GDT_LIN] - p->lin), nd * se[WICK_GDT_LIN],
                                nd * val[WICK_GDT_RES],            nd * se[WICK_GDT_RES],
                                nd * val[WICK_GDT_RES2],           nd * se[WICK_GDT_RES2],
                                nd * val[WICK_GDT_RES3],           nd * se[WICK_GDT_RES3]};
        gd_parts_print(n, c.samples, part);
        json_t *r = json_object();
        json_object_set_new(r, "width", json_integer((json_int_t)n));
        json_object_set_new(r, "pairs", json_integer((json_int_t)c.samples));
        json_object_set_new(r, "mean", cli_jnum(val[WICK_GDT_MEAN]));
        json_object_set_new(r, "mean_se", cli_jnum(se[WICK_GDT_MEAN]));
        gd_parts_json(r, part);
        json_object_set_new(r, "steps_taken", cli_jnum(val[WICK_GDT_STEPS]));
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
        json_object_set_new(root, "lin", cli_jnum(p->lin));
        json_object_set_new(root, "frozen", cli_jnum(pfroz));
        json_object_set_new(root, "beyond", cli_jnum(pbeyond));
        json_object_set_new(root, "beyond_pathwise", cli_jnum(pbeyond_pw));
        json_object_set_new(root, "a_ntk1", cli_jnum(p->a_ntk1));
        json_object_set_new(root, "a_var", cli_jnum(p->a_var));
        json_object_set_new(root, "a_dntk", cli_jnum(p->a_dntk));
        json_object_set_new(root, "a_ddI", cli_jnum(p->a_ddI));
        json_object_set_new(root, "a_ddII", cli_jnum(p->a_ddII));
        json_object_set_new(root, "widths", rows);
        ret = cli_write_json(stdout, "gd", root, 17);
        json_decref(root);
    } else {
        json_decref(rows);
    }
    return ret;
}
