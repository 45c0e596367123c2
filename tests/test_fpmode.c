/* test_fpmode.c — wick's floating-point mode (wick.h, "Floating-point mode"):
 * training, evaluation and the graph compute with flush-to-zero and
 * denormals-are-zero, and the caller's MXCSR control bits are back when they
 * return, whatever they were (FTZ off, FTZ on, another rounding mode); the
 * exception flags (bits 0-5) are status that any computation raises. */
#include "check.h"
#if defined(__x86_64__)
#include <immintrin.h>

#define FTZ_DAZ 0x8040u
#define CONTROL(m) ((m) & ~0x3fu)

static unsigned mode_in_step;

static void on_step(void *user, long step, int epoch, int b, int nb, double loss) {
    mode_in_step |= _mm_getcsr();
}

static wick_dataset *tiny_data(void) {
    wick_dataset *d = calloc(1, sizeof *d);
    d->n = 64, d->dim = 8, d->classes = 4;
    d->x = malloc(d->n * d->dim * sizeof *d->x);
    d->y = malloc(d->n * sizeof *d->y);
    wick_fill_normal_f32(d->x, d->n * d->dim, 0, 1, 5, 50, 0);
    for (size_t i = 0; i < d->n; i++) d->y[i] = (int32_t)(i % 4);
    return d;
}

/* Trains two epochs (the fast path: float32, ReLU, cross-entropy), evaluates
 * and runs the graph with the caller's MXCSR set to `caller`; checks that it
 * is still exactly `caller` after each call and that the steps ran with FTZ
 * and DAZ set. */
static void check_restored(unsigned caller, int threads) {
    wick_dataset *d = tiny_data();
    wick_mlp_config mc;
    memset(&mc, 0, sizeof mc);
    CHECK_OK(wick_arch_parse("8-32-32-4", &mc));
    mc.act = (wick_act){WICK_ACT_RELU, 0};
    mc.init = WICK_INIT_CRITICAL;
    wick_mlp *m = NULL;
    CHECK_OK(wick_mlp_new(&m, &mc, WICK_DT_F32, 16));
    if (!m) return;
    wick_mlp_init(m, 1);
    wick_set_threads(threads);
    wick_train_config c = wick_train_defaults();
    c.epochs = 2;
    c.batch = 16;
    c.on_step = on_step;
    wick_trainer *t = NULL;
    CHECK_OK(wick_trainer_new(&t, m, d, NULL, &c));
    mode_in_step = 0;
    _mm_setcsr(caller);
    wick_status s = wick_trainer_run(t);
    unsigned after_run = _mm_getcsr();
    CHECK(s == WICK_OK);
    if (CONTROL(after_run) != caller) FAIL("after wick_trainer_run: MXCSR %#x, the caller's was %#x", after_run, caller);
    if ((mode_in_step & FTZ_DAZ) != FTZ_DAZ) FAIL("the steps ran with MXCSR %#x: no FTZ/DAZ", mode_in_step);
    wick_metrics *mt = NULL;
    _mm_setcsr(caller);
    CHECK_OK(wick_evaluate(m, d, &mt, NULL));
    unsigned after_eval = _mm_getcsr();
    if (CONTROL(after_eval) != caller) FAIL("after wick_evaluate: MXCSR %#x, the caller's was %#x", after_eval, caller);
    _mm_setcsr(caller);
    wick_graph_forward(wick_mlp_graph(m));
    unsigned after_fwd = _mm_getcsr();
    if (CONTROL(after_fwd) != caller) FAIL("after wick_graph_forward: MXCSR %#x, the caller's was %#x", after_fwd, caller);
    _mm_setcsr(0x1f80);
    wick_metrics_free(mt);
    wick_trainer_free(t);
    wick_mlp_free(m);
    free(d->x), free(d->y), free(d);
    wick_set_threads(0);
}

static void test_default_mode_restored(void) { check_restored(0x1f80, 2); }
static void test_default_mode_restored_one_thread(void) { check_restored(0x1f80, 1); }
/* a caller that flushes already keeps flushing */
static void test_flushing_mode_kept(void) { check_restored(0x1f80 | FTZ_DAZ, 2); }
/* round toward zero (RC = 11), no FTZ: restored bit for bit */
static void test_rounding_mode_restored(void) { check_restored(0x7f80, 2); }

int main(void) {
    RUN(test_default_mode_restored);
    RUN(test_default_mode_restored_one_thread);
    RUN(test_flushing_mode_kept);
    RUN(test_rounding_mode_restored);
    return chk_finish();
}
#else
int main(void) {
    printf("SKIP: MXCSR is x86's\nRESULT 0 0 1\n");
    return 0;
}
#endif
