/* loop.c — where the headline run's training time goes: `wick train`'s
 * loop (784-512-512-10 ReLU, batch 128, SGD momentum 0.9, lr 0.05, seed 1,
 * one epoch of the 55,000 Fashion-MNIST images left after the 5,000-image
 * validation split, as `wick train` makes them) through the public trainer,
 * each step's wall time and team taken from the fast path (graph/chain.h).
 *
 * The trainer's seconds (what `wick train --json` reports as train_seconds
 * and divides into samples_per_s) are split into the steps themselves and
 * the loop around them; the steps' time is the median step times the steps
 * plus what each kind of step costs beyond the median: the first step
 * (which packs the weights), steps the team tuner ran on fewer threads
 * (its trials, or its choice beside a neighbour), steps run with redo,
 * slow steps (over 1.5 times the median: a thread preempted) and the
 * spread of the rest.  So samples/s can be read against the step alone:
 * batch / median step is what bench/step_ab.sh measures.
 *
 *   build/bench/loop [--data DIR] [--arch A] [--act F] [--batch B] [--epochs E] [--json]
 *   bench/loop.sh runs it beside `wick train` itself, in alternate rounds. */
#include "fma_peak.h"
#include "graph/chain.h"
#include "wick.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define SAMPLE 16
typedef struct {
    double t, wall, cpu;   /* the step's seconds; the clock and (every SAMPLE steps, else -1)
                              the process's CPU time after it */
    int team, redo, repack;
} rec;

static rec *recs;
static long nrec, cap;

static void on_step(void *user, long step, int epoch, int b, int nb, double loss) {
    (void)user, (void)step, (void)epoch, (void)b, (void)nb, (void)loss;
    wick_chain_last l = wick_chain_last_step();
    if (nrec >= cap) return;
    /* the process's CPU time every SAMPLE steps only: it is a system call,
       where a loaded machine's scheduler likes to take the core away */
    double cpu = -1;
    if (nrec % SAMPLE == 0) {
        struct timespec c;
        clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &c);
        cpu = c.tv_sec + 1e-9 * c.tv_nsec;
    }
    recs[nrec++] = (rec){l.seconds, now(), cpu, l.team, l.redo, l.repack};
}

static int cmp(const void *x, const void *y) {
    double p = *(const double *)x, q = *(const double *)y;
    return (p > q) - (p < q);
}

int main(int argc, char **argv) {
    const char *arch = "784-512-512-10", *act = "relu", *data = "/usr/share/datasets/fashion-mnist";
    int batch = 128, epochs = 1, json = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--arch") && i + 1 < argc) arch = argv[++i];
        else if (!strcmp(argv[i], "--act") && i + 1 < argc) act = argv[++i];
        else if (!strcmp(argv[i], "--batch") && i + 1 < argc) batch = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--epochs") && i + 1 < argc) epochs = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--data") && i + 1 < argc) data = argv[++i];
        else if (!strcmp(argv[i], "--json")) json = 1;
        else {
            fprintf(stderr, "usage: loop [--data DIR] [--arch A] [--act F] [--batch B] [--epochs E] [--json]\n");
            return 2;
        }
    }
    if (batch < 1 || epochs < 1) {
        fprintf(stderr, "loop: --batch and --epochs take integers >= 1\n");
        return 2;
    }
    /* the model and data as `wick train` makes them (tools/cmd_train.c) */
    wick_mlp_config mc;
    memset(&mc, 0, sizeof mc);
    wick_act ak;
    wick_mlp *m = NULL;
    wick_dataset *all = NULL, *train = NULL, *val = NULL;
    wick_trainer *t = NULL;
    const uint64_t seed = 1;
    if (wick_arch_parse(arch, &mc) != WICK_OK || wick_act_parse(act, &ak) != WICK_OK) goto fail;
    mc.act = ak;
    mc.init = WICK_INIT_CRITICAL;
    if (wick_mlp_new(&m, &mc, WICK_DT_F32, batch) != WICK_OK) goto fail;
    wick_mlp_init(m, seed);
    if (wick_dataset_load_idx_dir(data, "train", mc.widths[mc.layers], &all) != WICK_OK) goto fail;
    if (wick_dataset_split(all, 5000, seed, &train, &val) != WICK_OK) goto fail;
    wick_dataset_free(all);
    all = NULL;
    wick_train_config c = wick_train_defaults();
    c.batch = batch;
    c.epochs = epochs;
    c.seed = seed;
    c.opt = wick_opt_defaults(WICK_OPT_SGD);
    c.opt.momentum = 0.9;
    c.sched.lr0 = 0.05;
    c.on_step = on_step;
    const long per_epoch = (long)((train->n + batch - 1) / batch);
    cap = (long)epochs * per_epoch;
    recs = malloc(cap * sizeof *recs);
    double *dt = malloc(cap * sizeof *dt);
    if (!recs || !dt) {
        fprintf(stderr, "loop: out of memory\n");
        return 1;
    }
    if (wick_trainer_new(&t, m, train, val, &c) != WICK_OK || wick_trainer_run(t) != WICK_OK) goto fail;
    const double loop_s = wick_trainer_seconds(t), samples = wick_trainer_samples(t);
    /* the median of the steps at the full team, without redo or repacking */
    int full = 0;
    for (long i = 0; i < nrec; i++) full = recs[i].team > full ? recs[i].team : full;
    long n = 0;
    for (long i = 0; i < nrec; i++)
        if (recs[i].team == full && !recs[i].redo && !recs[i].repack) dt[n++] = recs[i].t;
    if (n == 0 || nrec == 0) {
        fprintf(stderr, "loop: no step ran on the fast path (is this an MLP on an AVX2 machine?)\n");
        return 1;
    }
    qsort(dt, n, sizeof *dt, cmp);
    const double med = dt[n / 2];
    /* the share of their cores the threads got in the steps at the full
       team (over SAMPLE steps at a time: the team tuner's measure) */
    double cpu = 0, wall = 0;
    for (long i = SAMPLE; i < nrec; i += SAMPLE) {
        int whole = 1;
        for (long k = i - SAMPLE + 1; k <= i; k++) whole &= recs[k].team == full;
        if (whole) {
            cpu += recs[i].cpu - recs[i - SAMPLE].cpu;
            wall += recs[i].wall - recs[i - SAMPLE].wall;
        }
    }
    const double share = wall > 0 ? cpu / (wall * full) : 0;
    double steps_s = 0, first = 0, fewer = 0, redo = 0, slow = 0, spread = 0;
    long n_fewer = 0, n_redo = 0, n_slow = 0;
    for (long i = 0; i < nrec; i++) {
        const rec *r = &recs[i];
        const double x = r->t - med;
        steps_s += r->t;
        if (r->repack) first += x;
        else if (r->team < full) fewer += x, n_fewer++;
        else if (r->redo) redo += x, n_redo++;
        else if (r->t > 1.5 * med) slow += x, n_slow++;
        else spread += x;
    }
    double g1, gn;
    int nt;
    fma_peak(3, 30, &g1, &gn, &nt);
    const double flops = wick_mlp_flops_per_sample(m), sps = samples / loop_s;
    const double pct = 100 * sps * flops / 1e9 / gn, pct_med = 100 * batch / med * flops / 1e9 / gn;
    const double rest = loop_s - steps_s, base = nrec * med;
    if (json) {
        printf("{\"samples_per_s\": %.1f, \"pct_peak\": %.2f, \"peak_gflops\": %.1f, \"loop_s\": %.6f, \"steps\": %ld, "
               "\"median_step_s\": %.7f, \"median_samples_per_s\": %.1f, \"pct_peak_median\": %.2f, "
               "\"at_median_s\": %.6f, \"first_s\": %.6f, \"fewer_s\": %.6f, \"fewer_steps\": %ld, \"redo_s\": %.6f, "
               "\"redo_steps\": %ld, \"slow_s\": %.6f, \"slow_steps\": %ld, \"spread_s\": %.6f, \"outside_s\": %.6f, "
               "\"team\": %d, \"cpu_share\": %.4f}\n",
               sps, pct, gn, loop_s, nrec, med, batch / med, pct_med, base, first, fewer, n_fewer, redo, n_redo, slow,
               n_slow, spread, rest, full, share);
    } else {
        printf("%s %s batch %d, %ld steps: %.0f samples/s (%.1f%% of the %.1f GFLOP/s peak); the median step %.3f ms "
               "would give %.0f (%.1f%%)\n", arch, act, batch, nrec, sps, pct, gn, med * 1e3, batch / med, pct_med);
        printf("  loop %.4f s = steps at the median %.4f (%.1f%%) + first step %+.4f + %ld on fewer threads %+.4f + "
               "%ld with redo %+.4f + %ld slow %+.4f + spread %+.4f + outside the steps %+.4f\n",
               loop_s, base, 100 * base / loop_s, first, n_fewer, fewer, n_redo, redo, n_slow, slow, spread, rest);
        if (share > 0)
            printf("  the threads had %.1f%% of their cores' time in the steps at the full team (%d threads)\n",
                   100 * share, full);
    }
    wick_trainer_free(t);
    wick_mlp_free(m);
    wick_dataset_free(train);
    wick_dataset_free(val);
    free(recs);
    free(dt);
    return 0;
fail:
    fprintf(stderr, "loop: %s\n", wick_last_error());
    return 1;
}
