/* cnn_loop.c — where a conv net's `wick train` time goes beyond its median
 * step: the run bench/cnn.sh times (a layer spec, default the issue's
 * example CNN, Fashion-MNIST, batch 128, one epoch cut at --max-steps, no
 * validation split, SGD momentum 0.9, lr 0.01, seed 1), made as
 * `wick train` makes it (tools/cmd_train.c) and run through the public
 * trainer, with each step's wall time, the process's CPU time, page faults
 * and context switches recorded from the trainer's on_step hook.
 *
 * The trainer's seconds (what `wick train --json` reports as train_seconds
 * and divides into samples_per_s) are split into the steps at the median
 * step plus what the rest costs: the first step (oneDNN's first run of each
 * primitive, the buffers' first touches), slow steps (over 1.5 times the
 * median: a thread preempted, a page-fault storm), the spread of the
 * others, and the loop outside the steps: the trainer's seconds less the
 * steps' (negative by the run's start, the weights' finiteness check and the
 * epoch's shuffle, which fall in the first step's window here but before the
 * trainer's clock starts).  Beside it: the median of each quarter of the run
 * (does a longer run get slower, and from when?), the page faults and
 * context switches a step after the first, and the share of their cores'
 * time the threads got.  batch / median step is what bench/cnn_prof
 * measures of the step alone (on random data, without the gather).
 *
 *   build/bench/cnn_loop [--arch SPEC] [--data DIR] [--batch B] [--steps N] [--threads T] [--flip] [--shift N]
 *                        [--json]           (--flip, --shift: wick train's augmentation, in the step's gather)
 *   bench/cnn_loop.sh runs it beside `wick train` and cnn_prof, in alternate rounds. */
#include "wick.h"
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#define CNN "input:1x28x28,conv2d:32:3:pad=1,batchnorm,relu,maxpool:2,conv2d:64:3:pad=1,batchnorm," \
            "relu,maxpool:2,flatten,dropout:0.25,linear:256,relu,dropout:0.5,linear:10"

typedef struct {
    double wall, cpu;     /* the clock and the process's CPU time at the step's end */
    double wait;          /* the seconds its threads had waited on a run queue, all together (schedstat) */
    long minflt, majflt, csw, icsw;
} rec;

static rec *recs;
static long nrec, cap;

static double clock_s(clockid_t id) {
    struct timespec t;
    clock_gettime(id, &t);
    return t.tv_sec + 1e-9 * t.tv_nsec;
}

/* The time the process's threads have spent ready to run but not running
 * (the second field of each /proc/self/task/N/schedstat): a step that took
 * long while it stayed near 0 was slow by itself, not for the machine's
 * other work.  -1 where the kernel keeps no schedstat. */
static double run_queue_wait(void) {
    DIR *d = opendir("/proc/self/task");
    if (!d) return -1;
    double w = 0;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.') continue;
        char path[300];
        snprintf(path, sizeof path, "/proc/self/task/%s/schedstat", e->d_name);
        FILE *f = fopen(path, "r");
        unsigned long long run, wait;
        if (f && fscanf(f, "%llu %llu", &run, &wait) == 2) w += 1e-9 * wait, n++;
        if (f) fclose(f);
    }
    closedir(d);
    return n ? w : -1;
}

static rec sample(void) {
    struct rusage u;
    getrusage(RUSAGE_SELF, &u);
    double w = run_queue_wait();
    return (rec){clock_s(CLOCK_MONOTONIC), clock_s(CLOCK_PROCESS_CPUTIME_ID), w, u.ru_minflt, u.ru_majflt,
                 u.ru_nvcsw, u.ru_nivcsw};
}

/* nrec 0 is the moment before the run: the trainer's loop starts right after
 * wick_trainer_run is called (its weight check and the epoch's shuffle) */
static void on_step(void *user, long step, int epoch, int b, int nb, double loss) {
    (void)user, (void)step, (void)epoch, (void)b, (void)nb, (void)loss;
    if (nrec < cap) recs[nrec++] = sample();
}

static int cmp(const void *x, const void *y) {
    double p = *(const double *)x, q = *(const double *)y;
    return (p > q) - (p < q);
}

static double median(const double *v, long n, double *tmp) {
    memcpy(tmp, v, n * sizeof *tmp);
    qsort(tmp, n, sizeof *tmp, cmp);
    return n % 2 ? tmp[n / 2] : 0.5 * (tmp[n / 2 - 1] + tmp[n / 2]);
}

int main(int argc, char **argv) {
    const char *arch = CNN, *data = "/usr/share/datasets/fashion-mnist";
    int batch = 128, threads = 2, json = 0, flip = 0, shift = 0;
    long steps = 60;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--arch") && i + 1 < argc) arch = argv[++i];
        else if (!strcmp(argv[i], "--data") && i + 1 < argc) data = argv[++i];
        else if (!strcmp(argv[i], "--batch") && i + 1 < argc) batch = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--steps") && i + 1 < argc) steps = atol(argv[++i]);
        else if (!strcmp(argv[i], "--threads") && i + 1 < argc) threads = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--shift") && i + 1 < argc) shift = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--flip")) flip = 1;
        else if (!strcmp(argv[i], "--json")) json = 1;
        else {
            fprintf(stderr, "usage: cnn_loop [--arch SPEC] [--data DIR] [--batch B] [--steps N] [--threads T] [--flip] "
                    "[--shift N] [--json]\n");
            return 2;
        }
    }
    if (batch < 1 || steps < 8 || threads < 1) {
        fprintf(stderr, "cnn_loop: --batch and --threads take integers >= 1, --steps >= 8\n");
        return 2;
    }
    wick_set_threads(threads);
    /* the model and data as `wick train --arch SPEC --val 0` makes them */
    wick_spec *spec = NULL;
    wick_mlp_config mc;
    memset(&mc, 0, sizeof mc);
    mc.act = (wick_act){WICK_ACT_RELU, WICK_LEAKY_DEFAULT};
    mc.init = WICK_INIT_CRITICAL;
    mc.cw[0] = 1;
    wick_mlp *m = NULL;
    wick_dataset *train = NULL, *test = NULL;
    wick_trainer *t = NULL;
    const uint64_t seed = 1;
    if (wick_spec_parse(arch, &spec) != WICK_OK) goto fail;
    int nl = 0;
    for (int i = 0; i < spec->n; i++)
        nl += spec->layer[i].kind == WICK_LAYER_LINEAR || spec->layer[i].kind == WICK_LAYER_CONV2D;
    for (int l = 0; l < nl && l < WICK_MAX_LAYERS; l++) mc.cb[l] = 0, mc.cw[l] = 1;
    if (wick_net_new(&m, spec, &mc, WICK_DT_F32, batch) != WICK_OK) goto fail;
    wick_mlp_init(m, seed);
    if (wick_dataset_load_idx_dir(data, "train", 10, &train) != WICK_OK) goto fail;
    /* wick train holds the test set through training too */
    if (wick_dataset_load_idx_dir(data, "t10k", 10, &test) != WICK_OK) goto fail;
    wick_train_config c = wick_train_defaults();
    c.batch = batch;
    c.epochs = 1;
    c.max_steps = steps;
    c.seed = seed;
    c.opt = wick_opt_defaults(WICK_OPT_SGD);
    c.opt.momentum = 0.9;
    c.sched = wick_sched_defaults(WICK_SCHED_LINEAR);   /* wick train's default schedule */
    c.sched.lr0 = 0.01;
    c.sched.epochs = 1;
    c.sched.floor = 0.01 * c.sched.lr0;
    c.augment.flip = flip;
    c.augment.shift = shift;
    c.on_step = on_step;
    cap = steps + 1;
    recs = malloc(cap * sizeof *recs);
    double *dt = malloc(3 * cap * sizeof *dt), *tmp = dt + cap, *q = tmp + cap;   /* cap >= 9 */
    if (!recs || !dt) {
        fprintf(stderr, "cnn_loop: out of memory\n");
        return 1;
    }
    if (wick_trainer_new(&t, m, train, NULL, &c) != WICK_OK) goto fail;
    recs[nrec++] = sample();
    if (wick_trainer_run(t) != WICK_OK) goto fail;
    const double loop_s = wick_trainer_seconds(t), samples = wick_trainer_samples(t);
    const long ns = nrec - 1;   /* steps */
    if (ns < 8) {
        fprintf(stderr, "cnn_loop: only %ld steps ran\n", ns);
        return 1;
    }
    for (long i = 0; i < ns; i++) dt[i] = recs[i + 1].wall - recs[i].wall;
    /* the median of the steps after the first (as cnn_prof, after its warm-up) */
    const double med = median(dt + 1, ns - 1, tmp);
    /* and of their CPU time (all threads): with one thread, or passive
       waits, the work a step does whatever the machine's load */
    for (long i = 0; i < ns; i++) q[i] = recs[i + 1].cpu - recs[i].cpu;
    const double med_cpu = median(q + 1, ns - 1, tmp), first_cpu = q[0] - med_cpu;
    /* the steps after the first whose threads waited under 0.5 ms on a run
       queue: the loop as a machine without other work would run it */
    long nq = 0;
    double wsum = 0, qsum = 0;
    for (long i = 1; i < ns; i++) {
        const double w = recs[i + 1].wait - recs[i].wait;
        wsum += w;
        if (recs[0].wait >= 0 && w < 5e-4) q[nq++] = dt[i], qsum += dt[i];
    }
    const double qmed = nq ? median(q, nq, tmp) : 0, qmean = nq ? qsum / nq : 0, wait = wsum / (ns - 1);
    double first = dt[0] - med, slow = 0, spread = 0, steps_s = 0;
    long n_slow = 0;
    for (long i = 0; i < ns; i++) {
        steps_s += dt[i];
        if (i == 0) continue;
        if (dt[i] > 1.5 * med) slow += dt[i] - med, n_slow++;
        else spread += dt[i] - med;
    }
    const double base = ns * med, rest = loop_s - steps_s, mean = (steps_s - dt[0]) / (ns - 1);
    /* each quarter's median step (the first step left out of the first) */
    long qb[5];
    for (int k = 0; k <= 4; k++) qb[k] = 1 + (ns - 1) * k / 4;
    double qm[4];
    for (int k = 0; k < 4; k++) qm[k] = median(dt + qb[k], qb[k + 1] - qb[k], tmp);
    const rec *a = &recs[1], *z = &recs[ns];
    const double flt = (double)(z->minflt - a->minflt) / (ns - 1), flt0 = (double)(a->minflt - recs[0].minflt);
    const double csw = (double)(z->csw - a->csw) / (ns - 1), icsw = (double)(z->icsw - a->icsw) / (ns - 1);
    const double share = (z->cpu - a->cpu) / ((z->wall - a->wall) * threads);
    const double flops = wick_mlp_flops_per_sample(m), sps = samples / loop_s;
    if (json) {
        printf("{\"samples_per_s\": %.1f, \"loop_s\": %.6f, \"steps\": %ld, \"threads\": %d, \"median_step_s\": %.7f, "
               "\"median_samples_per_s\": %.1f, \"median_step_cpu_s\": %.7f, \"mean_step_s\": %.7f, \"at_median_s\": %.6f, \"first_s\": %.6f, \"first_cpu_s\": %.6f, "
               "\"slow_s\": %.6f, \"slow_steps\": %ld, \"spread_s\": %.6f, \"outside_s\": %.6f, "
               "\"quarters_s\": [%.7f, %.7f, %.7f, %.7f], \"first_step_faults\": %.0f, \"faults_per_step\": %.2f, "
               "\"majflt\": %ld, \"csw_per_step\": %.2f, \"icsw_per_step\": %.2f, \"cpu_share\": %.4f, \"run_queue_wait_per_step_s\": %.6f, \"unwaited_steps\": %ld, "
               "\"unwaited_median_s\": %.7f, \"unwaited_mean_s\": %.7f, "
               "\"gflop_per_sample\": %.6f}\n",
               sps, loop_s, ns, threads, med, batch / med, med_cpu, mean, base, first, first_cpu, slow, n_slow, spread, rest, qm[0], qm[1],
               qm[2], qm[3], flt0, flt, z->majflt - recs[0].majflt, csw, icsw, share, wait, nq, qmed, qmean, flops / 1e9);
    } else {
        printf("batch %d, %d threads, %ld steps: %.0f samples/s; the median step %.3f ms would give %.0f (mean "
               "after the first %.3f ms; the median step's CPU time %.3f ms)\n", batch, threads, ns, sps, med * 1e3,
               batch / med, mean * 1e3, med_cpu * 1e3);
        printf("  loop %.4f s = steps at the median %.4f (%.1f%%) + first step %+.4f (CPU %+.4f) + %ld slow %+.4f + "
               "spread %+.4f + outside the steps %+.4f\n", loop_s, base, 100 * base / loop_s, first, first_cpu, n_slow,
               slow, spread, rest);
        printf("  quarters' median steps %.3f %.3f %.3f %.3f ms; page faults: first step %.0f, then %.2f a step; "
               "context switches a step %.2f voluntary, %.2f involuntary; the threads had %.1f%% of their cores\n",
               qm[0] * 1e3, qm[1] * 1e3, qm[2] * 1e3, qm[3] * 1e3, flt0, flt, csw, icsw, 100 * share);
        printf("  the threads waited %.3f ms a step on a run queue; %ld steps waited under 0.5 ms: median %.3f ms, "
               "mean %.3f ms\n", wait * 1e3, nq, qmed * 1e3, qmean * 1e3);
    }
    if (getenv("CNN_LOOP_STEPS"))   /* every step's wall and CPU seconds, a line each, to stderr */
        for (long i = 0; i < ns; i++)
            fprintf(stderr, "%.7f %.7f %.7f\n", dt[i], recs[i + 1].cpu - recs[i].cpu, recs[i + 1].wait - recs[i].wait);
    wick_trainer_free(t);
    wick_mlp_free(m);
    wick_spec_free(spec);
    wick_dataset_free(train);
    wick_dataset_free(test);
    free(recs);
    free(dt);
    return 0;
fail:
    fprintf(stderr, "cnn_loop: %s\n", wick_last_error());
    return 1;
}
