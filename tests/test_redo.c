/* test_redo.c — the MLP step's redo (graph/chain.c): a worker stalled in the
 * middle of an item (WICK_TEST_STALL_US, a sleep that stands in for the OS
 * taking its core) does not stall the step, since another thread redoes the
 * item; without redo (WICK_REDO=0) every stalled step waits the stall out;
 * by default redo starts after a step has waited; a worker whose item was
 * committed by another thread while it slept stops it at its next check
 * instead of computing it to the end (WICK_REDO_ABANDON); and the weights
 * are bit-identical with and without redo, stalls and abandons. */
#include "check.h"
#include "core/core.h"
#include "graph/chain.h"
#include <time.h>

#define STALL_US 50000
#define STEPS 24   /* WICK_TEST_STALL_US stalls a worker on steps 1, 5, 9, ... */

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

/* Each step's time (from the end of the last callback), the longest and
 * the sum.  After every other step the callback sleeps longer than a stall,
 * so that a worker that slept in a step (left out of the steps that follow,
 * chain.c) is back for the next stalled one. */
typedef struct { double worst, sum, last; } steps;
static int nap = 1;   /* 0: no sleeps between steps (test_late_worker_joins_the_step_under_way) */
static wick_precision prec = WICK_PRECISION_F32;   /* test_bf16_redo: the bf16 products */

static void on_step(void *user, long step, int epoch, int b, int nb, double loss) {
    steps *s = user;
    double t = now();
    if (s->last > 0) {
        if (t - s->last > s->worst) s->worst = t - s->last;
        s->sum += t - s->last;
    }
    if (nap && step % 2 == 0) {
        struct timespec d = {0, (STALL_US + 5000) * 1000L};
        nanosleep(&d, NULL);
    }
    s->last = now();
}

/* Trains STEPS steps of a 64-128-128-10 ReLU MLP on 2 threads (team fixed
 * at 2); returns the seconds its steps took (but the first), the longest
 * step in *worst, the first layer's weights in w.  Returns -1 off the fast
 * path. */
static double run(const char *redo, long stall_us, float *w, double *worst) {
    if (*redo) setenv("WICK_REDO", redo, 1);   /* "": unset, on demand */
    setenv("WICK_TEAM_SIZE", "2", 1);
    char v[32];
    snprintf(v, sizeof v, "%ld", stall_us);
    setenv("WICK_TEST_STALL_US", v, 1);
    wick_set_threads(2);
    const int dim = 64, n = 512;
    wick_dataset *d = calloc(1, sizeof *d);
    d->n = n, d->dim = dim, d->classes = 10;
    d->x = malloc((size_t)n * dim * sizeof *d->x);
    d->y = malloc(n * sizeof *d->y);
    wick_fill_normal_f32(d->x, (size_t)n * dim, 0, 1, 5, 50, 0);
    for (int i = 0; i < n; i++) d->y[i] = (int32_t)(wick_rand_uniform(5, 51, i) * 10);
    wick_mlp_config mc;
    memset(&mc, 0, sizeof mc);
    CHECK_OK(wick_arch_parse("64-128-128-10", &mc));
    mc.act = (wick_act){WICK_ACT_RELU, 0};
    mc.init = WICK_INIT_BOOK;
    for (int l = 0; l < mc.layers; l++) mc.cb[l] = 0.0, mc.cw[l] = 2.0;
    wick_mlp *m = NULL;
    CHECK_OK(wick_mlp_new(&m, &mc, WICK_DT_F32, 128));
    wick_mlp_init(m, 3);
    wick_train_config c = wick_train_defaults();
    c.epochs = 100;
    c.max_steps = STEPS;
    c.batch = 128;
    c.seed = 4;
    c.opt = wick_opt_defaults(WICK_OPT_SGD);
    c.opt.momentum = 0.9;
    c.sched.lr0 = 0.05;
    c.precision = prec;
    steps st = {0, 0, 0};
    c.on_step = on_step;
    c.user = &st;
    wick_trainer *t = NULL;
    double took = -1;
    CHECK_OK(wick_trainer_new(&t, m, d, NULL, &c));
    if (t && strstr(wick_trainer_backend(t), "own kernel")) {
        CHECK_OK(wick_trainer_run(t));
        took = st.sum;
        memcpy(w, wick_graph_value(wick_mlp_graph(m), wick_mlp_weight(m, 0)), 128 * 64 * sizeof *w);
    }
    *worst = st.worst;
    wick_trainer_free(t);
    wick_mlp_free(m);
    wick_dataset_free(d);
    wick_set_threads(0);
    unsetenv("WICK_REDO");
    unsetenv("WICK_TEAM_SIZE");
    unsetenv("WICK_TEST_STALL_US");
    return took;
}

static float w_plain[128 * 64], w_redo[128 * 64], w_stalled[128 * 64], w_waited[128 * 64];

/* With redo, a worker's stalls cost the steps far less than their sum, and
 * no step waits one out; the weights are those of the step without redo. */
static void test_stalled_worker_does_not_stall_the_step(void) {
    double worst_plain, worst;
    if (run("0", 0, w_plain, &worst_plain) < 0) { SKIP("not on the fast path here"); return; }
    const long r0 = wick_chain_redone(), s0 = wick_chain_test_stalls();
    const double w0 = wick_chain_test_stall_wait();
    double took = run("1", STALL_US, w_stalled, &worst);
    const long redone = wick_chain_redone() - r0, stalls = wick_chain_test_stalls() - s0;
    /* less the time thread 0 waited for the worker to wake and start its
       stall (chain.c's test scaffolding), at most all of it per step */
    const double wait = wick_chain_test_stall_wait() - w0;
    printf("# redo: %ld stalls of %d ms, the steps %.1f ms in all (%.1f ms waiting for the stalls to"
           " begin), the longest %.1f ms, %ld items redone\n",
           stalls, STALL_US / 1000, took * 1e3, wait * 1e3, worst * 1e3, redone);
    CHECK(stalls >= 3);
    CHECK(redone >= stalls);
    CHECK(took - wait < stalls * STALL_US * 1e-6 / 2);
    CHECK(worst - wait < STALL_US * 1e-6 / 2);
    CHECK(memcmp(w_stalled, w_plain, sizeof w_plain) == 0);
}

/* Without redo the step waits for the stalled worker: each stall costs a
 * step at least its length (the checks above can fail). */
static void test_without_redo_the_step_waits(void) {
    double worst;
    const long s0 = wick_chain_test_stalls();
    double took = run("0", STALL_US, w_waited, &worst);
    if (took < 0) { SKIP("not on the fast path here"); return; }
    const long stalls = wick_chain_test_stalls() - s0;
    printf("# no redo: %ld stalls, the steps %.1f ms in all, the longest %.1f ms\n", stalls, took * 1e3,
           worst * 1e3);
    CHECK(stalls >= 3);
    CHECK(took >= stalls * STALL_US * 1e-6);
    CHECK(worst >= STALL_US * 1e-6);
    CHECK(memcmp(w_waited, w_plain, sizeof w_plain) == 0);
}

/* Redo without stalls: the weights of the step without redo. */
static void test_redo_is_bit_identical(void) {
    double worst;
    if (run("1", 0, w_redo, &worst) < 0) { SKIP("not on the fast path here"); return; }
    CHECK(memcmp(w_redo, w_plain, sizeof w_plain) == 0);
}

/* On demand (WICK_REDO unset): the step turns redo on once two steps have
 * waited for a stalled worker, so that only the first stalls are waited
 * out (without redo all six are: the test above). */
static void test_redo_on_demand(void) {
    static float w[128 * 64];
    double worst;
    const long s0 = wick_chain_test_stalls();
    const double w0 = wick_chain_test_stall_wait();
    double took = run("", STALL_US, w, &worst);
    if (took < 0) { SKIP("not on the fast path here"); return; }
    const long stalls = wick_chain_test_stalls() - s0;
    const double wait = wick_chain_test_stall_wait() - w0;
    printf("# on demand: %ld stalls, the steps %.1f ms in all (%.1f waiting for the stalls to begin)\n",
           stalls, took * 1e3, wait * 1e3);
    CHECK(stalls >= 5);
    CHECK(took - wait < (stalls - 1) * STALL_US * 1e-6);
    CHECK(memcmp(w, w_plain, sizeof w_plain) == 0);
}

/* With no pause between steps, a stalled worker wakes when its step has
 * long ended: it joins the step under way (chain.c's step_redo; with
 * WICK_REDO_REJOIN=0 it leaves, and this fails), and the weights are still
 * those of the step without redo. */
static void test_late_worker_joins_the_step_under_way(void) {
    static float w[128 * 64];
    double worst;
    nap = 0;
    const long j0 = wick_chain_rejoined(), s0 = wick_chain_test_stalls();
    double took = run("1", STALL_US, w, &worst);
    nap = 1;
    if (took < 0) { SKIP("not on the fast path here"); return; }
    const long joined = wick_chain_rejoined() - j0, stalls = wick_chain_test_stalls() - s0;
    printf("# late workers: %ld stalls, %ld steps joined under way, the steps %.1f ms in all\n", stalls, joined,
           took * 1e3);
    CHECK(stalls >= 3);
    CHECK(joined >= 1);
    CHECK(memcmp(w, w_plain, sizeof w_plain) == 0);
}

/* The stalled worker's item is redone and committed by thread 0 while the
 * worker sleeps: on waking, the worker sees at its next check (right after
 * the stall) that the item's state word has moved and stops (abandoned),
 * where with WICK_REDO_ABANDON=0 it computes the item to its end and loses
 * the compare-and-swap (lost): the CPU time it spends on such an item is a
 * fraction of a lost one's (WICK_REDO_PROF=1).  The weights are those of the
 * step without redo either way (every redo item is computed under the watch,
 * whose dW and dx products are split in halves: the same numbers). */
static void test_stalled_item_is_abandoned_not_finished(void) {
    static float w_on[128 * 64], w_off[128 * 64];
    double worst;
    setenv("WICK_REDO_PROF", "1", 1);
    const wick_chain_redo_fates f0 = wick_chain_fates();
    long s0 = wick_chain_test_stalls();
    if (run("1", STALL_US, w_on, &worst) < 0) { SKIP("not on the fast path here"); unsetenv("WICK_REDO_PROF"); return; }
    const wick_chain_redo_fates f1 = wick_chain_fates();
    const long stalls_on = wick_chain_test_stalls() - s0;
    s0 = wick_chain_test_stalls();
    setenv("WICK_REDO_ABANDON", "0", 1);
    run("1", STALL_US, w_off, &worst);
    unsetenv("WICK_REDO_ABANDON");
    unsetenv("WICK_REDO_PROF");
    const wick_chain_redo_fates f2 = wick_chain_fates();
    const long stalls_off = wick_chain_test_stalls() - s0;
    enum { C = WICK_CHAIN_COMMITTED, LO = WICK_CHAIN_LOST, AB = WICK_CHAIN_ABANDONED };
    const long ab_on = f1.items[1][AB] - f0.items[1][AB], lost_on = f1.items[1][LO] - f0.items[1][LO];
    const long ab_off = f2.items[0][AB] + f2.items[1][AB] - f1.items[0][AB] - f1.items[1][AB];
    const long lost_off = f2.items[1][LO] - f1.items[1][LO];
    const double cpu_ab = (f1.cpu[1][AB] - f0.cpu[1][AB]) / (ab_on > 0 ? ab_on : 1);
    const double cpu_lost = (f2.cpu[1][LO] - f1.cpu[1][LO]) / (lost_off > 0 ? lost_off : 1);
    printf("# abandon on: %ld stalls, the worker abandoned %ld items (%.1f us CPU each), lost %ld, committed %ld;"
           " off: %ld stalls, %ld abandoned, the worker lost %ld (%.1f us CPU each)\n",
           stalls_on, ab_on, cpu_ab * 1e6, lost_on, f1.items[1][C] - f0.items[1][C], stalls_off, ab_off,
           lost_off, cpu_lost * 1e6);
    CHECK(stalls_on >= 3 && stalls_off >= 3);
    /* most, not all: on a loaded machine thread 0 itself may lose its core
       for the length of a stall, and the worker then commits its own item */
    CHECK(2 * ab_on >= stalls_on);
    CHECK(ab_off == 0);
    CHECK(2 * lost_off >= stalls_off);
    CHECK(cpu_ab < cpu_lost);
    CHECK(memcmp(w_on, w_plain, sizeof w_plain) == 0);
    CHECK(memcmp(w_off, w_plain, sizeof w_plain) == 0);
}

/* bf16 (chain.c's bf16 copies in each thread's private buffers, committed
 * with the float rows and columns): with redo and stalls, the weights of the
 * bf16 step without redo, bit for bit, and no step waits a stall out. */
static void test_bf16_redo(void) {
    if (wick_precision_supported(WICK_PRECISION_BF16) != WICK_OK) { SKIP("no bf16 on this CPU"); return; }
    static float w0[128 * 64], w1[128 * 64], w2[128 * 64];
    double worst;
    prec = WICK_PRECISION_BF16;
    double plain = run("0", 0, w0, &worst);
    const long r0 = wick_chain_redone(), s0 = wick_chain_test_stalls();
    const double t0 = wick_chain_test_stall_wait();
    double took = run("1", STALL_US, w1, &worst);
    const long redone = wick_chain_redone() - r0, stalls = wick_chain_test_stalls() - s0;
    const double wait = wick_chain_test_stall_wait() - t0;
    run("1", 0, w2, &worst);
    prec = WICK_PRECISION_F32;
    if (plain < 0) { SKIP("not on the fast path here"); return; }
    printf("# bf16 redo: %ld stalls, %ld items redone, the steps %.1f ms in all (%.1f waiting for the stalls"
           " to begin)\n", stalls, redone, took * 1e3, wait * 1e3);
    CHECK(stalls >= 3);
    CHECK(redone >= stalls);
    CHECK(took - wait < stalls * STALL_US * 1e-6 / 2);
    CHECK(memcmp(w1, w0, sizeof w0) == 0);
    CHECK(memcmp(w2, w0, sizeof w0) == 0);
    CHECK(memcmp(w0, w_plain, sizeof w0) != 0);   /* and it is not the float32 step */
}

int main(void) {
    RUN(test_stalled_worker_does_not_stall_the_step);
    RUN(test_without_redo_the_step_waits);
    RUN(test_redo_is_bit_identical);
    RUN(test_redo_on_demand);
    RUN(test_late_worker_joins_the_step_under_way);
    RUN(test_stalled_item_is_abandoned_not_finished);
    RUN(test_bf16_redo);
    return chk_finish();
}
