/* busy_ab.c — environment switches of the headline's step A/B'd inside one
 * training run, a block of steps each in turn (issue 22, "a busy neighbour").
 *
 * Whole runs one after another cannot compare two ways of harvesting a
 * shared core on a machine whose load comes in bursts: a run lasts seconds
 * and the bursts change its speed 2x (bench/README.md, "Harvesting the
 * shared core").  Here the configurations take turns every --block steps
 * (the order reversed every other round: ABBA), each round's blocks within
 * a second, so a burst falls on all of them alike; each configuration's
 * block time is compared with the first configuration's in the same round.
 * The switches are the ones the step reads at every step or phase
 * (WICK_TEAM_SIZE, WICK_REDO, WICK_REDO_US, ...), set with setenv between
 * blocks; a configuration is `label:VAR=V,VAR=V` (`label:` for none).  The
 * first block of each configuration in a round after a switch includes
 * whatever the switch costs (a late worker of the previous block's redo
 * step), so --block should be tens of steps.
 *
 *   build/bench/busy_ab [--block K] [--rounds R] [--data DIR] CONFIG...
 *   build/bench/busy_ab 't1:WICK_TEAM_SIZE=1' 'redo:WICK_TEAM_SIZE=2,WICK_REDO=1'
 *   bench/busy_ab.sh starts the neighbour (a spinner on core 1) and runs it.
 * With WICK_REDO_PROF=1 in the environment it also prints, per configuration,
 * what became of the redo items each thread computed (chain.h's
 * wick_chain_fates): CPU ms a step committed, lost (computed to the end
 * after another thread committed the item) and abandoned (stopped early). */
#include "graph/chain.h"
#include "wick.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MAXCFG 8
#define MAXVAR 8

typedef struct {
    char label[32];
    char var[MAXVAR][64], val[MAXVAR][64];
    int nvar;
} config;

static config cfg[MAXCFG];
static int ncfg, block = 20, rounds = 40;
static double *bt;          /* [rounds][ncfg] seconds of each block */
static double *bcores;      /* its process CPU time over its wall time */
static long *bredo;         /* items redone in it (chain.h) */
static wick_chain_redo_fates *bfate, f_start;   /* the redo items' fates in it */
static double w0, c0;       /* the clocks at the block's start */
static long r0;
static long step_in_block, blocks_done;
static double t_block;      /* the block's steps' seconds so far */
static int cur = -1;

static void clocks(double *wall, double *cpu) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    *wall = t.tv_sec + 1e-9 * t.tv_nsec;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
    *cpu = t.tv_sec + 1e-9 * t.tv_nsec;
}

/* Block b's configuration: ABBA over rounds. */
static int block_cfg(long b) {
    long r = b / ncfg, k = b % ncfg;
    return (int)(r % 2 ? ncfg - 1 - k : k);
}

static void apply(int k) {
    for (int j = 0; j < ncfg; j++)
        for (int v = 0; v < cfg[j].nvar; v++) unsetenv(cfg[j].var[v]);
    for (int v = 0; v < cfg[k].nvar; v++) setenv(cfg[k].var[v], cfg[k].val[v], 1);
    cur = k;
}

static void on_step(void *user, long step, int epoch, int b, int nb, double loss) {
    (void)user, (void)step, (void)epoch, (void)b, (void)nb, (void)loss;
    if (blocks_done >= (long)rounds * ncfg) return;
    /* the step's own seconds (chain.h), not the clock between callbacks:
       an epoch's end evaluates the validation set between two steps */
    t_block += wick_chain_last_step().seconds;
    if (++step_in_block < block) return;
    bt[blocks_done] = t_block;   /* round-major: [round][position] */
    double w, cp;
    clocks(&w, &cp);
    bcores[blocks_done] = w > w0 ? (cp - c0) / (w - w0) : 0;
    bredo[blocks_done] = wick_chain_redone() - r0;
    const wick_chain_redo_fates f = wick_chain_fates();
    for (int k = 0; k < 2; k++)
        for (int j = 0; j < WICK_CHAIN_FATES; j++) {
            bfate[blocks_done].items[k][j] = f.items[k][j] - f_start.items[k][j];
            bfate[blocks_done].cpu[k][j] = f.cpu[k][j] - f_start.cpu[k][j];
        }
    f_start = f;
    w0 = w, c0 = cp, r0 = wick_chain_redone();
    blocks_done++;
    step_in_block = 0;
    t_block = 0;
    if (blocks_done < (long)rounds * ncfg) apply(block_cfg(blocks_done));
}

static int cmp(const void *x, const void *y) {
    double p = *(const double *)x, q = *(const double *)y;
    return (p > q) - (p < q);
}

static int parse(const char *s, config *c) {
    memset(c, 0, sizeof *c);
    const char *colon = strchr(s, ':');
    if (!colon || colon - s >= (long)sizeof c->label) return -1;
    memcpy(c->label, s, colon - s);
    const char *p = colon + 1;
    while (*p) {
        const char *end = strchr(p, ','), *eq = strchr(p, '=');
        if (!end) end = p + strlen(p);
        if (!eq || eq > end || c->nvar == MAXVAR || eq - p >= 64 || end - eq - 1 >= 64) return -1;
        memcpy(c->var[c->nvar], p, eq - p);
        memcpy(c->val[c->nvar], eq + 1, end - eq - 1);
        c->nvar++;
        p = *end ? end + 1 : end;
    }
    return 0;
}

int main(int argc, char **argv) {
    const char *data = "/usr/share/datasets/fashion-mnist";
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--block") && i + 1 < argc) block = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--rounds") && i + 1 < argc) rounds = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--data") && i + 1 < argc) data = argv[++i];
        else if (argv[i][0] != '-' && ncfg < MAXCFG && parse(argv[i], &cfg[ncfg]) == 0) ncfg++;
        else {
            fprintf(stderr, "usage: busy_ab [--block K] [--rounds R] [--data DIR] label:VAR=V,... (2 to %d)\n", MAXCFG);
            return 2;
        }
    }
    if (ncfg < 2 || block < 1 || rounds < 2) {
        fprintf(stderr, "busy_ab: need 2 or more configurations, --block >= 1, --rounds >= 2\n");
        return 2;
    }
    /* the headline as `wick train` makes it (tools/cmd_train.c) */
    wick_mlp_config mc;
    memset(&mc, 0, sizeof mc);
    wick_act ak;
    wick_mlp *m = NULL;
    wick_dataset *all = NULL, *train = NULL, *val = NULL;
    wick_trainer *t = NULL;
    const uint64_t seed = 1;
    const int batch = 128;
    if (wick_arch_parse("784-512-512-10", &mc) != WICK_OK || wick_act_parse("relu", &ak) != WICK_OK) goto fail;
    mc.act = ak;
    mc.init = WICK_INIT_CRITICAL;
    if (wick_mlp_new(&m, &mc, WICK_DT_F32, batch) != WICK_OK) goto fail;
    wick_mlp_init(m, seed);
    if (wick_dataset_load_idx_dir(data, "train", mc.widths[mc.layers], &all) != WICK_OK) goto fail;
    if (wick_dataset_split(all, 5000, seed, &train, &val) != WICK_OK) goto fail;
    wick_dataset_free(all);
    all = NULL;
    const long per_epoch = (long)((train->n + batch - 1) / batch);
    const long need = (long)rounds * ncfg * block + 1;
    wick_train_config c = wick_train_defaults();
    c.batch = batch;
    c.epochs = (int)((need + per_epoch - 1) / per_epoch);
    c.seed = seed;
    c.opt = wick_opt_defaults(WICK_OPT_SGD);
    c.opt.momentum = 0.9;
    c.sched.lr0 = 0.05;
    c.on_step = on_step;
    bt = calloc((size_t)rounds * ncfg, sizeof *bt);
    bcores = calloc((size_t)rounds * ncfg, sizeof *bcores);
    bredo = calloc((size_t)rounds * ncfg, sizeof *bredo);
    bfate = calloc((size_t)rounds * ncfg, sizeof *bfate);
    if (!bt || !bcores || !bredo || !bfate) return 1;
    apply(0);
    clocks(&w0, &c0);
    f_start = wick_chain_fates();
    if (wick_trainer_new(&t, m, train, val, &c) != WICK_OK || wick_trainer_run(t) != WICK_OK) goto fail;
    const int R = (int)(blocks_done / ncfg);
    if (R < 2) {
        fprintf(stderr, "busy_ab: only %d rounds ran\n", R);
        return 1;
    }
    /* per configuration: its samples/s over all blocks (round 0 left out:
       the first block packs and warms up), its median block, and the median
       over rounds of its block time / the first configuration's */
    printf("busy_ab: %d rounds of %d steps a configuration (batch %d), ABBA\n", R - 1, block, batch);
    printf("%-16s %10s %10s %8s %17s %6s %7s\n", "config", "samples/s", "median", "ratio", "(quartiles)", "cores",
           "redone");
    double *x = malloc(sizeof *x * R), *q = malloc(sizeof *q * R);
    for (int k = 0; k < ncfg; k++) {
        double sum = 0, cores = 0;
        long redo = 0;
        int n = 0;
        for (int r = 1; r < R; r++)
            for (int p = 0; p < ncfg; p++) {
                long b = (long)r * ncfg + p;
                if (block_cfg(b) != k) continue;
                x[n] = bt[b];
                sum += bt[b];
                cores += bcores[b];
                redo += bredo[b];
                /* ratio of the first configuration's block time to this one's
                   in the same round: above 1, this one is faster */
                for (int p0 = 0; p0 < ncfg; p0++)
                    if (block_cfg((long)r * ncfg + p0) == 0) q[n] = bt[(long)r * ncfg + p0] / bt[b];
                n++;
            }
        qsort(x, n, sizeof *x, cmp);
        qsort(q, n, sizeof *q, cmp);
        /* cores: the process's CPU time over the clock in the block (the
           mean of the blocks); redone: items a step, the mean */
        printf("%-16s %10.0f %10.0f %8.3f %8.3f-%-8.3f %6.2f %7.2f\n", cfg[k].label, (double)n * block * batch / sum,
               block * batch / x[n / 2], q[n / 2], q[n / 4], q[3 * n / 4], cores / n, (double)redo / ((double)n * block));
    }
    /* the redo items' fates: CPU ms a step per thread kind, and items a step */
    const char *prof = getenv("WICK_REDO_PROF");
    if (prof && *prof == '1') {
        printf("redo items' CPU ms a step (WICK_REDO_PROF), thread 0 | workers: committed lost abandoned;"
               " items a step lost, abandoned (both kinds)\n");
        for (int k = 0; k < ncfg; k++) {
            wick_chain_redo_fates s;
            memset(&s, 0, sizeof s);
            long steps = 0;
            for (long b = ncfg; b < (long)R * ncfg; b++) {
                if (block_cfg(b) != k) continue;
                steps += block;
                for (int h = 0; h < 2; h++)
                    for (int j = 0; j < WICK_CHAIN_FATES; j++)
                        s.items[h][j] += bfate[b].items[h][j], s.cpu[h][j] += bfate[b].cpu[h][j];
            }
            const double ms = 1e3 / (double)steps;
            printf("%-16s %6.3f %6.3f %6.3f | %6.3f %6.3f %6.3f   %6.3f %6.3f\n", cfg[k].label,
                   s.cpu[0][WICK_CHAIN_COMMITTED] * ms, s.cpu[0][WICK_CHAIN_LOST] * ms,
                   s.cpu[0][WICK_CHAIN_ABANDONED] * ms, s.cpu[1][WICK_CHAIN_COMMITTED] * ms,
                   s.cpu[1][WICK_CHAIN_LOST] * ms, s.cpu[1][WICK_CHAIN_ABANDONED] * ms,
                   (double)(s.items[0][WICK_CHAIN_LOST] + s.items[1][WICK_CHAIN_LOST]) / (double)steps,
                   (double)(s.items[0][WICK_CHAIN_ABANDONED] + s.items[1][WICK_CHAIN_ABANDONED]) / (double)steps);
        }
    }
    free(bfate);
    free(x);
    free(q);
    free(bt);
    free(bcores);
    free(bredo);
    wick_trainer_free(t);
    wick_mlp_free(m);
    wick_dataset_free(train);
    wick_dataset_free(val);
    return 0;
fail:
    fprintf(stderr, "busy_ab: %s\n", wick_last_error());
    return 1;
}
