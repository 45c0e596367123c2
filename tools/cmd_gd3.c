/* cmd_gd3.c — `wick gd --order1 --train-gram ...`: gradient descent on two
 * training inputs (3 Gram entries) or on two training inputs read at a third
 * (6 entries), the order-1/n prediction (wick_gd_mean_multi) beside the
 * measured ensembles (wick_gd_multi_measure) per width and input
 * (docs/theory-finite-width.md, "several training inputs"). */
#include "cli.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

int gd_order1_multi(wick_act act, double cb, double cw, double lb, double lw, int depth,
                    const cli_ints *widths, long samples, long seed, long steps, double eta,
                    const double y[2], const cli_reals *g, int json) {
    int m = g->n == 3 ? 2 : 3;
    double G0[9];
    if (m == 2) {
        const double v[4] = {g->v[0], g->v[1], g->v[1], g->v[2]};
        for (int i = 0; i < 4; i++) G0[i] = v[i];
    } else {
        const double v[9] = {g->v[0], g->v[1], g->v[2], g->v[1], g->v[3], g->v[4], g->v[2], g->v[4], g->v[5]};
        for (int i = 0; i < 9; i++) G0[i] = v[i];
    }
    wick_theory_config tc;
    int bad = gd_multi_theory("--train-gram", act, cb, cw, lb, lw, depth, &tc);
    if (bad) return bad;
    wick_gd_multi_tensors T;
    wick_gd_multi_terms o;
    wick_status st;
    if ((st = wick_gd_tensors_multi(&tc, m, 2, G0, 0, &T))) return cli_fail("gd", st);
    if ((st = wick_gd_mean_multi(&T, y, NULL, eta, steps, &o))) return cli_fail("gd", st);
    printf("# trained on inputs 0, 1 (targets %g, %g)%s, %s, depth %d, C_b %g, C_W %g, eta %g:\n"
           "# E[z_a] = lin + (frozen + beyond)/n per input a\n", y[0], y[1],
           m == 3 ? ", read at input 2" : "", steps < 0 ? "fully trained" : "t steps", depth, cb,
           cw, eta);
    for (int a = 0; a < m; a++) {
        const wick_gd_test_part *p = &o.at[a];
        printf("#   input %d: lin %.9g, frozen = Theta1 %.9g + NTK variance %.9g, beyond = dNTK %.9g "
               "+ ddI %.9g + ddII %.9g = %.9g\n", a, p->lin, p->a_ntk1, p->a_var, p->a_dntk,
               p->a_ddI, p->a_ddII, p->a_dntk + p->a_ddI + p->a_ddII);
    }
    if (steps > 0) printf("# t = %ld\n", steps);
    json_t *rows = json_array();
    for (int w = 0; w < widths->n; w++) {
        size_t n = (size_t)widths->v[w];
        wick_gd_multi_config c = {{act, cb, cw, lb, lw, depth, (size_t)m, n, 1}, m, 2, {0},
                                  {y[0], y[1]}, eta, (size_t)samples / 2, (uint64_t)seed, steps};
        for (int i = 0; i < m * m; i++) c.G0[i] = G0[i];
        double val[3 * WICK_GDM_PER + 1], se[3 * WICK_GDM_PER + 1];
        if ((st = wick_gd_multi_measure(&c, val, se))) { json_decref(rows); return cli_fail("gd", st); }
        double nd = (double)n;
        json_t *r = json_object(), *ins = json_array();
        json_object_set_new(r, "width", json_integer((json_int_t)n));
        json_object_set_new(r, "pairs", json_integer((json_int_t)c.samples));
        for (int a = 0; a < m; a++) {
            const double *v = val + a * WICK_GDM_PER, *s = se + a * WICK_GDM_PER;
            const double part[8] = {nd * (v[WICK_GDM_LIN] - o.at[a].lin), nd * s[WICK_GDM_LIN],
                                    nd * v[WICK_GDM_RES], nd * s[WICK_GDM_RES],
                                    nd * v[WICK_GDM_RES2], nd * s[WICK_GDM_RES2],
                                    nd * v[WICK_GDM_RES3], nd * s[WICK_GDM_RES3]};
            printf("# input %d\n", a);
            gd_parts_header();
            gd_parts_print(n, c.samples, part);
            json_t *ia = json_object();
            json_object_set_new(ia, "mean", cli_jnum(v[WICK_GDM_MEAN]));
            json_object_set_new(ia, "mean_se", cli_jnum(s[WICK_GDM_MEAN]));
            gd_parts_json(ia, part);
            json_array_append_new(ins, ia);
        }
        json_object_set_new(r, "inputs", ins);
        json_object_set_new(r, "steps_taken", cli_jnum(val[m * WICK_GDM_PER]));
        json_array_append_new(rows, r);
    }
    int ret = EXIT_OK;
    if (json) {
        json_t *root = cli_json_init(act, cb, cw);
        json_object_set_new(root, "depth", json_integer((json_int_t)depth));
        json_object_set_new(root, "eta", json_real(eta));
        json_object_set_new(root, "steps", json_integer((json_int_t)steps));
        json_t *gg = json_array(), *yy = json_array(), *pred = json_array();
        for (int i = 0; i < g->n; i++) json_array_append_new(gg, json_real(g->v[i]));
        for (int i = 0; i < 2; i++) json_array_append_new(yy, json_real(y[i]));
        json_object_set_new(root, "train_gram", gg);
        json_object_set_new(root, "targets", yy);
        for (int a = 0; a < m; a++) {
            const wick_gd_test_part *p = &o.at[a];
            json_t *q = json_object();
            json_object_set_new(q, "lin", cli_jnum(p->lin));
            json_object_set_new(q, "frozen", cli_jnum(p->a_ntk1 + p->a_var));
            json_object_set_new(q, "beyond", cli_jnum(p->a_dntk + p->a_ddI + p->a_ddII));
            json_object_set_new(q, "a_ntk1", cli_jnum(p->a_ntk1));
            json_object_set_new(q, "a_var", cli_jnum(p->a_var));
            json_object_set_new(q, "a_dntk", cli_jnum(p->a_dntk));
            json_object_set_new(q, "a_ddI", cli_jnum(p->a_ddI));
            json_object_set_new(q, "a_ddII", cli_jnum(p->a_ddII));
            json_array_append_new(pred, q);
        }
        json_object_set_new(root, "inputs", pred);
        json_object_set_new(root, "widths", rows);
        ret = cli_write_json(stdout, "gd", root, 17);
        json_decref(root);
    } else {
        json_decref(rows);
    }
    return ret;
}
