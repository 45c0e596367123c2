/* step_ab_side.c — one side of bench/step_ab: a trainer of its own library
 * (compiled twice by bench/step_ab.sh: against the working tree's libwick,
 * and against an older revision's, whose symbols are renamed old_*), run a
 * block of steps at a time.  Only plain C types cross to step_ab.c, so each
 * side sees its own revision's wick.h. */
#include "wick.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifndef SIDE
#define SIDE(name) new_##name
#endif

static struct {
    wick_mlp *m;
    wick_dataset rnd, *d;
    wick_trainer *t;
    volatile int stop;
    int block, done;
    double *stamp;
    double (*clock)(void);
} s;

static void on_step(void *user, long step, int epoch, int b, int nb, double loss) {
    s.stamp[s.done++] = s.clock();
    if (s.done == s.block) s.stop = 1;
}

/* A trainer for `steps` steps in all of an MLP `arch` (relu, tanh, ...) on
 * random data or Fashion-MNIST from `data`; 0 or -1 with the error printed. */
int SIDE(open)(const char *arch, const char *act, int batch, long steps, const char *data,
               double (*clock)(void)) {
    wick_mlp_config mc;
    memset(&mc, 0, sizeof mc);
    wick_act ak;
    if (wick_arch_parse(arch, &mc) != WICK_OK || wick_act_parse(act, &ak) != WICK_OK) goto fail;
    mc.act = ak;
    mc.init = WICK_INIT_CRITICAL;
    if (wick_mlp_new(&s.m, &mc, WICK_DT_F32, batch) != WICK_OK) goto fail;
    wick_mlp_init(s.m, 1);
    const int D = mc.widths[0], classes = mc.widths[mc.layers];
    s.d = &s.rnd;
    if (data) {
        if (wick_dataset_load_idx_dir(data, "train", classes, &s.d) != WICK_OK) goto fail;
    } else {
        s.rnd.n = (size_t)batch * 100;
        s.rnd.dim = D;
        s.rnd.classes = classes;
        s.rnd.x = malloc(s.rnd.n * D * sizeof *s.rnd.x);
        s.rnd.y = malloc(s.rnd.n * sizeof *s.rnd.y);
        wick_fill_normal_f32(s.rnd.x, s.rnd.n * D, 0, 1, 1, 0, 0);
        for (size_t i = 0; i < s.rnd.n; i++) s.rnd.y[i] = (int32_t)(i % classes);
    }
    wick_train_config c = wick_train_defaults();
    c.batch = batch;
    const long per_epoch = (long)((s.d->n + batch - 1) / batch);
    c.epochs = (int)((steps + per_epoch - 1) / per_epoch);
    c.opt = wick_opt_defaults(WICK_OPT_SGD);
    c.opt.momentum = 0.9;
    c.sched.lr0 = 0.01;
    c.on_step = on_step;
    c.stop = &s.stop;
    s.clock = clock;
    if (wick_trainer_new(&s.t, s.m, s.d, NULL, &c) != WICK_OK) goto fail;
    return 0;
fail:
    fprintf(stderr, "step_ab: %s\n", wick_last_error());
    return -1;
}

/* The next `block` steps; stamp[i] = the clock after step i.  Returns the
 * steps run (fewer at the end of the run). */
int SIDE(block)(int block, double *stamp) {
    s.block = block, s.done = 0, s.stop = 0, s.stamp = stamp;
    wick_status st = wick_trainer_run(s.t);
    if (st != WICK_OK && st != WICK_EINTERRUPTED) {
        fprintf(stderr, "step_ab: %s\n", wick_last_error());
        return -1;
    }
    return s.done;
}

double SIDE(flops)(int batch) { return wick_mlp_flops_per_sample(s.m) * batch; }
