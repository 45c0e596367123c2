/* optim_trace.c — runs a wick optimiser on a fixed parameter and gradient
 * sequence and prints the parameters after every step, so that another
 * implementation (tests/test_optim_torch.py runs torch.optim) can take the
 * same steps and compare.
 *
 *   optim_trace sgd|adam|adamw [--lr X] [--steps N] [--n N] [--n2 N]
 *       [--momentum X] [--nesterov] [--beta1 X] [--beta2 X] [--eps X]
 *       [--wd X] [--l1 X] [--nodecay2] [--vary-lr] [--reverse]
 *
 * The parameters are one tensor of n floats (and a second of n2 when n2 > 0);
 * with global index i over both, p0[i] = 0.5 cos(0.11 i + 0.3) except
 * p0[0] = 0, and the gradient of step t (0-based) is g_t[i] = sin(0.37 i + 1.3 t),
 * each computed in double and rounded to float.  --nodecay2: no weight decay
 * or L1 on the second tensor.  --vary-lr: step t uses lr (1 + 0.5 cos(0.7 t)).
 * --reverse: on odd steps the second tensor is updated first.  Output: one
 * line per step, every parameter with %.9g. */
#include <wick.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void usage(void) {
    fprintf(stderr, "usage: optim_trace sgd|adam|adamw [--lr X] [--steps N] [--n N] [--n2 N] "
                    "[--momentum X] [--nesterov] [--beta1 X] [--beta2 X] [--eps X] [--wd X] "
                    "[--l1 X] [--nodecay2] [--vary-lr] [--reverse]\n");
    exit(2);
}

int main(int argc, char **argv) {
    if (argc < 2) usage();
    wick_opt_kind kind;
    if (wick_opt_parse(argv[1], &kind)) { fprintf(stderr, "optim_trace: %s\n", wick_last_error()); return 2; }
    wick_opt_config c = wick_opt_defaults(kind);
    double lr = 0.01;
    int steps = 100, n = 37, n2 = 0, nodecay2 = 0, vary = 0, reverse = 0;
    for (int a = 2; a < argc; a++) {
        const char *o = argv[a], *v = a + 1 < argc ? argv[a + 1] : NULL;
        if (!strcmp(o, "--nesterov")) { c.nesterov = 1; continue; }
        if (!strcmp(o, "--nodecay2")) { nodecay2 = 1; continue; }
        if (!strcmp(o, "--vary-lr")) { vary = 1; continue; }
        if (!strcmp(o, "--reverse")) { reverse = 1; continue; }
        if (!v) usage();
        a++;
        if (!strcmp(o, "--lr")) lr = atof(v);
        else if (!strcmp(o, "--steps")) steps = atoi(v);
        else if (!strcmp(o, "--n")) n = atoi(v);
        else if (!strcmp(o, "--n2")) n2 = atoi(v);
        else if (!strcmp(o, "--momentum")) c.momentum = atof(v);
        else if (!strcmp(o, "--beta1")) c.beta1 = atof(v);
        else if (!strcmp(o, "--beta2")) c.beta2 = atof(v);
        else if (!strcmp(o, "--eps")) c.eps = atof(v);
        else if (!strcmp(o, "--wd")) c.weight_decay = atof(v);
        else if (!strcmp(o, "--l1")) c.l1 = atof(v);
        else usage();
    }
    if (n < 1 || n2 < 0 || steps < 0) usage();
    int nparam = n2 > 0 ? 2 : 1;
    size_t sizes[2] = {(size_t)n, (size_t)n2};
    int decay[2] = {1, !nodecay2};
    wick_opt *opt;
    if (wick_opt_new(&opt, &c, nparam, sizes, decay)) {
        fprintf(stderr, "optim_trace: %s\n", wick_last_error());
        return 1;
    }
    size_t total = (size_t)n + (size_t)n2;
    float *p = malloc(total * sizeof *p), *g = malloc(total * sizeof *g);
    if (!p || !g) return 1;
    for (size_t i = 0; i < total; i++) p[i] = (float)(0.5 * cos(0.11 * (double)i + 0.3));
    p[0] = 0.0f;
    float *ptr[2] = {p, p + n};
    const float *gptr[2] = {g, g + n};
    for (int t = 0; t < steps; t++) {
        for (size_t i = 0; i < total; i++) g[i] = (float)sin(0.37 * (double)i + 1.3 * (double)t);
        double lr_t = vary ? lr * (1.0 + 0.5 * cos(0.7 * t)) : lr;
        for (int k = 0; k < nparam; k++) {
            int j = reverse && (t & 1) ? nparam - 1 - k : k;
            wick_opt_update(opt, j, ptr[j], gptr[j], lr_t);
        }
        for (size_t i = 0; i < total; i++) printf(i ? " %.9g" : "%.9g", p[i]);
        putchar('\n');
    }
    wick_opt_free(opt);
    free(p);
    free(g);
    return 0;
}
