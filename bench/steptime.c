/* steptime.c — the time of each training step of `wick train`'s loop, for
 * comparing versions of the engine on a shared, noisy machine: noise only
 * ever lengthens a step, so the lower quantiles of many short steps measure
 * the engine, where one epoch's mean measures the neighbours too.
 *
 * Trains an MLP with SGD + momentum on random data (784 inputs, 10 classes)
 * through the public trainer, timing each step from the on_step callback,
 * and prints the 10th percentile and the median per step, as samples/s and
 * as a fraction of the all-core FMA peak measured in the same run (FLOPs as
 * issue 7 counts them).
 *
 *   build/bench/steptime [--arch 784-512-512-10] [--act relu] [--batch 128]
 *                        [--steps 400] [--general] [--data DIR] [--precision bf16]
 *
 * --data DIR: the training images of the Fashion-MNIST IDX files in DIR
 * (e.g. /usr/share/datasets/fashion-mnist) instead of random normals. */
#include "fma_peak.h"
#include "graph/chain.h"
#include "wick.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static double *stamp;
static long nstamp, cap;

static void on_step(void *user, long step, int epoch, int b, int nb, double loss) {
    if (nstamp < cap) stamp[nstamp++] = now();
}

static int cmp(const void *x, const void *y) {
    double p = *(const double *)x, q = *(const double *)y;
    return (p > q) - (p < q);
}

/* With a library built with -DWICK_CHAIN_PROFILE (bench/README.md): each
 * thread's microseconds a step in each phase of the fast path, beside the
 * time its products would take at the thread's share of the FMA peak
 * (assuming the work splits evenly). */
static void print_profile(const wick_mlp_config *mc, int batch, double peak, int threads) {
    const wick_chain_profile *p = wick_chain_profile_totals();
    if (p->steps == 0) return;
    const int L = mc->layers;
    const double us = 1e6 / p->steps, per_thread = peak * 1e9 / threads;
    double fwd = 0;
    for (int l = 0; l < L; l++) fwd += 2.0 * batch * mc->widths[l] * mc->widths[l + 1];
    for (int t = 0; t < threads && t < WICK_CHAIN_PROF_THREADS; t++) {
        double total = 0;
        for (int ph = 0; ph < WICK_CHAIN_PH_N; ph++)
            for (int l = 0; l < L; l++) total += p->sec[t][ph][l] * us;
        printf("profile, thread %d (us a step; in brackets: its products at the peak): total %.0f\n", t, total);
        printf("  forward %.0f [%.0f]  wait for the loss %.0f\n", p->sec[t][WICK_CHAIN_PH_FORWARD][0] * us,
               fwd / threads / per_thread * 1e6, p->sec[t][WICK_CHAIN_PH_WAIT_LOSS][0] * us);
        for (int l = L - 1; l >= 0; l--) {
            double prod = 2.0 * batch * mc->widths[l] * mc->widths[l + 1] / threads / per_thread * 1e6;
            printf("  layer %d: dW %.0f [%.0f] + optimiser %.0f + packing %.0f", l,
                   p->sec[t][WICK_CHAIN_PH_DW][l] * us, prod, p->sec[t][WICK_CHAIN_PH_OPT][l] * us,
                   p->sec[t][WICK_CHAIN_PH_PACK][l] * us);
            if (l > 0)
                printf("  dx %.0f [%.0f]  wait %.0f", p->sec[t][WICK_CHAIN_PH_DX][l] * us, prod,
                       p->sec[t][WICK_CHAIN_PH_WAIT][l] * us);
            printf("\n");
        }
    }
}

int main(int argc, char **argv) {
    const char *arch = "784-512-512-10", *act = "relu";
    const char *data = NULL;
    int batch = 128, general = 0, bf16 = 0;
    long steps = 400;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--arch") && i + 1 < argc) arch = argv[++i];
        else if (!strcmp(argv[i], "--act") && i + 1 < argc) act = argv[++i];
        else if (!strcmp(argv[i], "--batch") && i + 1 < argc) batch = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--steps") && i + 1 < argc) steps = atol(argv[++i]);
        else if (!strcmp(argv[i], "--general")) general = 1;
        else if (!strcmp(argv[i], "--precision") && i + 1 < argc) bf16 = !strcmp(argv[++i], "bf16");
        else if (!strcmp(argv[i], "--data") && i + 1 < argc) data = argv[++i];
        else {
            fprintf(stderr, "usage: steptime [--arch A] [--act relu|tanh|...] [--batch B] [--steps N] [--general] [--data DIR]"
                            " [--precision f32|bf16]\n");
            return 2;
        }
    }
    wick_mlp_config mc;
    memset(&mc, 0, sizeof mc);
    wick_act ak;
    if (wick_arch_parse(arch, &mc) != WICK_OK || wick_act_parse(act, &ak) != WICK_OK) {
        fprintf(stderr, "steptime: %s\n", wick_last_error());
        return 2;
    }
    mc.act = ak;
    mc.init = WICK_INIT_CRITICAL;
    wick_mlp *m;
    if (wick_mlp_new(&m, &mc, WICK_DT_F32, batch) != WICK_OK) {
        fprintf(stderr, "steptime: %s\n", wick_last_error());
        return 1;
    }
    wick_mlp_init(m, 1);
    int D = mc.widths[0], classes = mc.widths[mc.layers];
    wick_dataset rnd = {0}, *dd = &rnd;
    if (data) {
        if (wick_dataset_load_idx_dir(data, "train", classes, &dd) != WICK_OK) {
            fprintf(stderr, "steptime: %s\n", wick_last_error());
            return 1;
        }
    } else {
        rnd.n = (size_t)batch * 100;
        rnd.dim = D;
        rnd.classes = classes;
        rnd.x = malloc(rnd.n * D * sizeof *rnd.x);
        rnd.y = malloc(rnd.n * sizeof *rnd.y);
        wick_fill_normal_f32(rnd.x, rnd.n * D, 0, 1, 1, 0, 0);
        for (size_t i = 0; i < rnd.n; i++) rnd.y[i] = (int32_t)(i % classes);
    }
    wick_train_config c = wick_train_defaults();
    c.batch = batch;
    const long per_epoch = (long)((dd->n + batch - 1) / batch);
    c.epochs = (int)((steps + per_epoch - 1) / per_epoch);
    c.opt = wick_opt_defaults(WICK_OPT_SGD);
    c.opt.momentum = 0.9;
    c.sched.lr0 = 0.01;
    c.general_executor = general;
    c.precision = bf16 ? WICK_PRECISION_BF16 : WICK_PRECISION_F32;
    c.on_step = on_step;
    cap = c.epochs * per_epoch + 1;
    stamp = malloc(cap * sizeof *stamp);
    double g1, gn;
    int nt;
    fma_peak(3, 30, &g1, &gn, &nt);
    wick_trainer *t;
    if (wick_trainer_new(&t, m, dd, NULL, &c) != WICK_OK || wick_trainer_run(t) != WICK_OK) {
        fprintf(stderr, "steptime: %s\n", wick_last_error());
        return 1;
    }
    /* the peak again after the run, the better one counted: a neighbour
       busy on one core during the first measurement made the 2-core peak
       read as a 1-core one (and the percentages double) */
    double g1b, gnb;
    int ntb;
    fma_peak(3, 30, &g1b, &gnb, &ntb);
    if (gnb > gn) gn = gnb, nt = ntb;
    if (bf16) {   /* the bf16 dot product's peak instead (fma_peak.h) */
        double b1, bn;
        bf16_peak(3, 30, &b1, &bn);
        gn = bn;
    }
    /* differences of consecutive stamps, within an epoch (evaluation and
       the epoch's bookkeeping fall between epochs) */
    double *dt = malloc(cap * sizeof *dt);
    long n = 0;
    for (long i = 1; i < nstamp; i++)
        if (i % per_epoch) dt[n++] = stamp[i] - stamp[i - 1];
    double mean = (stamp[nstamp - 1] - stamp[0]) / (nstamp - 1);
    if (getenv("STEPTIME_DUMP")) {   /* every step's seconds, in order, one a line */
        FILE *f = fopen(getenv("STEPTIME_DUMP"), "w");
        for (long i = 0; f && i < n; i++) fprintf(f, "%.6f\n", dt[i]);
        if (f) fclose(f);
    }
    qsort(dt, n, sizeof *dt, cmp);
    double flops = wick_mlp_flops_per_sample(m) * batch;
    double p10 = dt[n / 10], med = dt[n / 2];
    printf("%s %s batch %d %s: p10 %.3f ms %.0f samples/s %.1f%% of %.1f GFLOP/s; median %.3f ms %.0f/s %.1f%%;"
           " mean %.3f ms %.0f/s\n",
           arch, act, batch, general ? "general" : bf16 ? "bf16" : "default", p10 * 1e3, batch / p10,
           100 * flops / p10 / 1e9 / gn, gn, med * 1e3, batch / med, 100 * flops / med / 1e9 / gn,
           mean * 1e3, batch / mean);
    print_profile(&mc, batch, gn, nt);
    wick_trainer_free(t);
    wick_mlp_free(m);
    if (data) wick_dataset_free(dd);
    else free(rnd.x), free(rnd.y);
    return 0;
}
