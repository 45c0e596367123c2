/* test_schedule.c — learning-rate schedules on values computed by hand, the
 * plateau rule on a scripted loss sequence, configuration checks.
 * tests/test_optim_torch.py compares 30-epoch sequences with torch's
 * StepLR, ExponentialLR, LinearLR and ReduceLROnPlateau. */
#include "check.h"
#include "core/core.h"

static wick_sched start(wick_sched_config c) {
    wick_sched s;
    memset(&s, 0, sizeof s);
    CHECK_OK(wick_sched_init(&s, &c));
    return s;
}

static void test_constant(void) {
    wick_sched_config c = wick_sched_defaults(WICK_SCHED_CONSTANT);
    c.lr0 = 0.05;
    wick_sched s = start(c);
    for (int e = 0; e < 50; e += 7) CHECK(wick_sched_lr(&s, e) == 0.05);
    wick_sched_observe(&s, 1.0); /* a no-op for every kind but plateau */
    CHECK(wick_sched_lr(&s, 3) == 0.05 && s.lr == 0.05);
}

static void test_step(void) {
    /* lr0 0.1, step 3, gamma 0.5: 0.1 for e = 0..2, 0.05 for 3..5, 0.025 for 6..8 */
    wick_sched_config c = wick_sched_defaults(WICK_SCHED_STEP);
    c.lr0 = 0.1;
    c.step_size = 3;
    c.gamma = 0.5;
    wick_sched s = start(c);
    const double want[9] = {0.1, 0.1, 0.1, 0.05, 0.05, 0.05, 0.025, 0.025, 0.025};
    for (int e = 0; e < 9; e++) CHECK_REL(wick_sched_lr(&s, e), want[e], 1e-15);
    /* any order of epochs: the rate is a function of the epoch */
    CHECK_REL(wick_sched_lr(&s, 30), 0.1 / 1024, 1e-15);
    CHECK_REL(wick_sched_lr(&s, 4), 0.05, 1e-15);
    CHECK(s.lr == wick_sched_lr(&s, 4));
}

static void test_exp(void) {
    /* lr0 1, gamma 0.5: 1, 0.5, 0.25, 0.125, 0.0625 (exact in binary) */
    wick_sched_config c = wick_sched_defaults(WICK_SCHED_EXP);
    c.lr0 = 1;
    c.gamma = 0.5;
    wick_sched s = start(c);
    for (int e = 0; e < 5; e++) CHECK(wick_sched_lr(&s, e) == ldexp(1.0, -e));
    /* gamma 0.9, e = 10: 0.9^10 = 0.3486784401 */
    c.gamma = 0.9;
    s = start(c);
    CHECK_REL(wick_sched_lr(&s, 10), 0.3486784401, 1e-14);
    CHECK(wick_sched_lr(&s, -3) == 1.0); /* a negative epoch counts as 0 */
}

static void test_linear(void) {
    /* lr0 0.1 -> floor 0.01 over 3 epochs: t = e/3, lr = (1-t) 0.1 + t 0.01:
     * 0.1, 0.07, 0.04, then exactly 0.01 from e = 3 on. */
    wick_sched_config c = wick_sched_defaults(WICK_SCHED_LINEAR);
    c.lr0 = 0.1;
    c.floor = 0.01;
    c.epochs = 3;
    wick_sched s = start(c);
    CHECK(wick_sched_lr(&s, 0) == 0.1);
    CHECK_REL(wick_sched_lr(&s, 1), 0.07, 1e-14);
    CHECK_REL(wick_sched_lr(&s, 2), 0.04, 1e-14);
    CHECK(wick_sched_lr(&s, 3) == 0.01);
    CHECK(wick_sched_lr(&s, 1000) == 0.01);
    /* to zero over 4: 1, 0.75, 0.5, 0.25, 0 */
    c.lr0 = 1;
    c.floor = 0;
    c.epochs = 4;
    s = start(c);
    for (int e = 0; e <= 5; e++) CHECK(wick_sched_lr(&s, e) == (e >= 4 ? 0.0 : 1.0 - 0.25 * e));
}

static void test_plateau(void) {
    /* lr0 1, factor 0.5, patience 1, threshold 0.1 (relative), floor 0.2.
     * A loss improves when it is below best*(1 - 0.1); after more than 1 bad
     * epoch in a row lr halves (not below 0.2) and the count restarts:
     *  e  lr    loss  best  bad
     *  0  1     1.0   1.0   0
     *  1  1     0.95  1.0   1     (0.95 is not below 0.9)
     *  2  1     0.95  1.0   2 -> lr 0.5, bad 0
     *  3  0.5   0.8   0.8   0
     *  4  0.5   0.8   0.8   1
     *  5  0.5   0.75  0.8   2 -> lr 0.25  (0.75 is not below 0.72)
     *  6  0.25  0.7   0.7   0
     *  7  0.25  0.7   0.7   1
     *  8  0.25  0.7   0.7   2 -> lr max(0.125, 0.2) = 0.2
     *  9  0.2   0.7         1
     * 10  0.2   NaN         2 -> max(0.1, 0.2) = 0.2: no change (a NaN is a bad epoch)
     * 11  0.2 */
    wick_sched_config c = wick_sched_defaults(WICK_SCHED_PLATEAU);
    CHECK(c.threshold == 1e-4 && c.factor == 0.1 && c.patience == 10); /* torch's defaults */
    c.lr0 = 1;
    c.factor = 0.5;
    c.patience = 1;
    c.threshold = 0.1;
    c.floor = 0.2;
    wick_sched s = start(c);
    CHECK(isinf(s.best) && s.bad_epochs == 0);
    const double loss[12] = {1.0, 0.95, 0.95, 0.8, 0.8, 0.75, 0.7, 0.7, 0.7, 0.7, NAN, 0.7};
    const double want[12] = {1, 1, 1, 0.5, 0.5, 0.5, 0.25, 0.25, 0.25, 0.2, 0.2, 0.2};
    const int bad_after[12] = {0, 1, 0, 0, 1, 0, 0, 1, 0, 1, 0, 1};
    for (int e = 0; e < 12; e++) {
        CHECK(wick_sched_lr(&s, e) == want[e]);
        wick_sched_observe(&s, loss[e]);
        CHECK(s.bad_epochs == bad_after[e]);
    }
    CHECK(s.best == 0.7);

    /* The state is the struct: a copy taken mid-run continues identically. */
    s = start(c);
    for (int e = 0; e < 4; e++) wick_sched_observe(&s, loss[e]);
    wick_sched copy = s;
    for (int e = 4; e < 12; e++) {
        wick_sched_observe(&s, loss[e]);
        wick_sched_observe(&copy, loss[e]);
        CHECK(s.lr == copy.lr && s.bad_epochs == copy.bad_epochs);
    }

    /* torch's eps: a reduction of less than 1e-8 is skipped.  lr0 1e-7,
     * factor 0.5, patience 0, constant loss: 1e-7 -> 5e-8 -> 2.5e-8 ->
     * 1.25e-8, then 6.25e-9 would be a change of 6.25e-9 < 1e-8: stays. */
    c.lr0 = 1e-7;
    c.patience = 0;
    c.floor = 0;
    s = start(c);
    const double tiny[6] = {1e-7, 1e-7, 5e-8, 2.5e-8, 1.25e-8, 1.25e-8};
    for (int e = 0; e < 6; e++) {
        CHECK_REL(wick_sched_lr(&s, e), tiny[e], 1e-15);
        wick_sched_observe(&s, 1.0);
    }
}

static void test_parse(void) {
    const char *names[5] = {"constant", "step", "exp", "linear", "plateau"};
    for (int k = 0; k < 5; k++) {
        wick_sched_kind kind;
        CHECK_OK(wick_sched_parse(names[k], &kind));
        CHECK((int)kind == k);
    }
    wick_sched_kind kind;
    CHECK_FAILS(wick_sched_parse("cosine", &kind), WICK_EINVAL, "unknown schedule 'cosine'");
    CHECK_FAILS(wick_sched_parse(NULL, &kind), WICK_EINVAL, "NULL");
}

static void test_bad_configs(void) {
    wick_sched s;
    wick_sched_config c;
#define BAD(kind_, field, value, needle)                                  \
    do {                                                                  \
        c = wick_sched_defaults(kind_);                                   \
        c.field = value;                                                  \
        CHECK_FAILS(wick_sched_init(&s, &c), WICK_EINVAL, needle);        \
    } while (0)
    BAD(WICK_SCHED_CONSTANT, lr0, 0.0, "constant schedule: initial learning rate 0 must be");
    BAD(WICK_SCHED_EXP, lr0, -1.0, "initial learning rate -1");
    BAD(WICK_SCHED_STEP, lr0, NAN, "initial learning rate");
    BAD(WICK_SCHED_STEP, step_size, 0, "step schedule: step_size 0 must be >= 1");
    BAD(WICK_SCHED_STEP, gamma, 0.0, "step schedule: gamma 0 must be");
    BAD(WICK_SCHED_EXP, gamma, -0.5, "exp schedule: gamma -0.5");
    BAD(WICK_SCHED_EXP, gamma, INFINITY, "gamma");
    BAD(WICK_SCHED_LINEAR, epochs, 0, "linear schedule: epochs 0 must be >= 1");
    BAD(WICK_SCHED_LINEAR, floor, 0.5, "floor 0.5 must be in [0, lr0 = 0.001]");
    BAD(WICK_SCHED_LINEAR, floor, -1e-3, "floor");
    BAD(WICK_SCHED_PLATEAU, factor, 1.0, "plateau schedule: factor 1 must be in (0, 1)");
    BAD(WICK_SCHED_PLATEAU, factor, 0.0, "factor 0");
    BAD(WICK_SCHED_PLATEAU, patience, -1, "patience -1");
    BAD(WICK_SCHED_PLATEAU, threshold, -1e-4, "threshold");
    BAD(WICK_SCHED_PLATEAU, threshold, 1.0, "threshold 1 must be in [0, 1)");
    BAD(WICK_SCHED_PLATEAU, floor, -1.0, "floor (min_lr) -1");
    BAD(WICK_SCHED_PLATEAU, kind, (wick_sched_kind)9, "unknown kind 9");
#undef BAD
    /* fields another kind uses are not checked: exp ignores step_size */
    c = wick_sched_defaults(WICK_SCHED_EXP);
    c.step_size = -5;
    c.gamma = 0.9;
    CHECK_OK(wick_sched_init(&s, &c));
    CHECK_FAILS(wick_sched_init(NULL, &c), WICK_EINVAL, "NULL");
}

int main(void) {
    RUN(test_constant);
    RUN(test_step);
    RUN(test_exp);
    RUN(test_linear);
    RUN(test_plateau);
    RUN(test_parse);
    RUN(test_bad_configs);
    return chk_finish();
}
