/* test_optim.c — SGD, momentum, Nesterov, Adam, AdamW and L1 on one and two
 * steps computed by hand (the arithmetic is in the comments), configuration
 * checks, per-tensor step counts, state for checkpoints, thread-count
 * independence, no allocation per update, allocation failure.
 * tests/test_optim_torch.py compares 100-step runs with torch.optim. */
#include "check.h"
#include "core/core.h"
#include <stdint.h>

/* Floats: the hand values are exact decimals, the code rounds to float. */
#define FTOL 1e-6

static wick_opt *make(wick_opt_config c, int nparam, const size_t *sizes, const int *decay) {
    wick_opt *o = NULL;
    CHECK_OK(wick_opt_new(&o, &c, nparam, sizes, decay));
    return o;
}

static void test_sgd_plain(void) {
    /* lr 0.1: p = [1, -2], g1 = [0.5, -1]  ->  p - 0.1 g = [0.95, -1.9];
     *          g2 = [1, 2]                 ->  [0.85, -2.1] */
    size_t n = 2;
    wick_opt *o = make(wick_opt_defaults(WICK_OPT_SGD), 1, &n, NULL);
    float p[2] = {1, -2}, g1[2] = {0.5f, -1}, g2[2] = {1, 2};
    wick_opt_update(o, 0, p, g1, 0.1);
    CHECK_NEAR(p[0], 0.95, FTOL);
    CHECK_NEAR(p[1], -1.9, FTOL);
    wick_opt_update(o, 0, p, g2, 0.1);
    CHECK_NEAR(p[0], 0.85, FTOL);
    CHECK_NEAR(p[1], -2.1, FTOL);
    CHECK(wick_opt_state_count(o, 0) == 0);
    CHECK(wick_opt_state(o, 0, 0, NULL) == NULL);
    CHECK(wick_opt_steps(o, 0) == 2);
    wick_opt_free(o);
}

static void test_sgd_weight_decay(void) {
    /* wd 0.1, lr 0.1, p = 1, g = 0.5 twice:
     * d1 = 0.5 + 0.1*1 = 0.6       -> p1 = 1 - 0.06 = 0.94
     * d2 = 0.5 + 0.1*0.94 = 0.594  -> p2 = 0.94 - 0.0594 = 0.8806 */
    wick_opt_config c = wick_opt_defaults(WICK_OPT_SGD);
    c.weight_decay = 0.1;
    size_t n = 1;
    wick_opt *o = make(c, 1, &n, NULL);
    float p = 1, g = 0.5f;
    wick_opt_update(o, 0, &p, &g, 0.1);
    CHECK_NEAR(p, 0.94, FTOL);
    wick_opt_update(o, 0, &p, &g, 0.1);
    CHECK_NEAR(p, 0.8806, FTOL);
    wick_opt_free(o);
}

static void test_sgd_momentum(void) {
    /* momentum 0.9, lr 0.1, p = 1, g = 1 twice (torch: buf = clone(g) first):
     * buf1 = 1                  -> p1 = 1 - 0.1 = 0.9
     * buf2 = 0.9*1 + 1 = 1.9    -> p2 = 0.9 - 0.19 = 0.71 */
    wick_opt_config c = wick_opt_defaults(WICK_OPT_SGD);
    c.momentum = 0.9;
    size_t n = 1;
    wick_opt *o = make(c, 1, &n, NULL);
    float p = 1, g = 1;
    wick_opt_update(o, 0, &p, &g, 0.1);
    CHECK_NEAR(p, 0.9, FTOL);
    const char *name = NULL;
    CHECK(wick_opt_state_count(o, 0) == 1);
    float *buf = wick_opt_state(o, 0, 0, &name);
    CHECK(buf && name && strcmp(name, "momentum") == 0);
    if (buf) CHECK_NEAR(buf[0], 1.0, FTOL);
    wick_opt_update(o, 0, &p, &g, 0.1);
    CHECK_NEAR(p, 0.71, FTOL);
    if (buf) CHECK_NEAR(buf[0], 1.9, FTOL);
    wick_opt_free(o);
}

static void test_sgd_nesterov(void) {
    /* Nesterov, momentum 0.9, lr 0.1, p = 1, g = 1 twice:
     * buf1 = 1,   d1 = 1 + 0.9*1   = 1.9   -> p1 = 1 - 0.19 = 0.81
     * buf2 = 1.9, d2 = 1 + 0.9*1.9 = 2.71  -> p2 = 0.81 - 0.271 = 0.539 */
    wick_opt_config c = wick_opt_defaults(WICK_OPT_SGD);
    c.momentum = 0.9;
    c.nesterov = 1;
    size_t n = 1;
    wick_opt *o = make(c, 1, &n, NULL);
    float p = 1, g = 1;
    wick_opt_update(o, 0, &p, &g, 0.1);
    CHECK_NEAR(p, 0.81, FTOL);
    wick_opt_update(o, 0, &p, &g, 0.1);
    CHECK_NEAR(p, 0.539, FTOL);
    wick_opt_free(o);
}

static void test_l1_and_decay_flags(void) {
    /* SGD, l1 0.1, lr 0.1, zero gradient: d = 0.1 sign(p), sign(0) = 0:
     * p = [1, 0, -1] -> [0.99, 0, -0.99] -> [0.98, 0, -0.98].
     * Tensor 1 has decay 0: neither L1 nor weight decay touch it. */
    wick_opt_config c = wick_opt_defaults(WICK_OPT_SGD);
    c.l1 = 0.1;
    /* L1 alone first */
    size_t sizes[2] = {3, 3};
    int decay[2] = {1, 0};
    wick_opt *o = make(c, 2, sizes, decay);
    float p[3] = {1, 0, -1}, q[3] = {1, 0, -1}, g[3] = {0, 0, 0};
    for (int s = 1; s <= 2; s++) {
        wick_opt_update(o, 0, p, g, 0.1);
        wick_opt_update(o, 1, q, g, 0.1);
        CHECK_NEAR(p[0], 1 - 0.01 * s, FTOL);
        CHECK(p[1] == 0.0f);
        CHECK_NEAR(p[2], -1 + 0.01 * s, FTOL);
        CHECK(q[0] == 1.0f && q[1] == 0.0f && q[2] == -1.0f);
    }
    wick_opt_free(o);

    /* L1 and L2 together, momentum: p = 2, g = 0, l1 0.1, wd 0.1, lr 0.1:
     * d1 = 0 + 0.1*1 + 0.1*2 = 0.3, buf1 = 0.3   -> p1 = 2 - 0.03 = 1.97
     * d2 = 0.1 + 0.197 = 0.297, buf2 = 0.9*0.3 + 0.297 = 0.567 -> p2 = 1.97 - 0.0567 = 1.9133 */
    c.weight_decay = 0.1;
    c.momentum = 0.9;
    size_t one = 1;
    o = make(c, 1, &one, NULL);
    float w = 2, z = 0;
    wick_opt_update(o, 0, &w, &z, 0.1);
    CHECK_NEAR(w, 1.97, FTOL);
    wick_opt_update(o, 0, &w, &z, 0.1);
    CHECK_NEAR(w, 1.9133, FTOL);
    wick_opt_free(o);
}

static void test_adam(void) {
    /* Adam, lr 0.1, betas (0.9, 0.999), eps 1e-8, p = 1.
     * Step 1, g = 0.5: m = 0.1*0.5 = 0.05, v = 0.001*0.25 = 0.00025;
     *   bc1 = 0.1, bc2 = 0.001; denom = sqrt(0.00025)/sqrt(0.001) + 1e-8 = 0.5 + 1e-8;
     *   p1 = 1 - (0.1/0.1) * 0.05/0.5 = 0.9 (+2e-9 from eps).
     * Step 2, g = -1: m = 0.045 - 0.1 = -0.055, v = 0.999*0.00025 + 0.001 = 0.00124975;
     *   bc1 = 1 - 0.81 = 0.19, bc2 = 1 - 0.998001 = 0.001999;
     *   m/bc1 = -0.28947368, sqrt(v/bc2) = 0.79068805;
     *   p2 = 0.9 + 0.1*0.28947368/0.79068805 = 0.93661035. */
    wick_opt_config c = wick_opt_defaults(WICK_OPT_ADAM);
    size_t n = 1;
    wick_opt *o = make(c, 1, &n, NULL);
    float p = 1, g = 0.5f;
    wick_opt_update(o, 0, &p, &g, 0.1);
    CHECK_NEAR(p, 0.9, FTOL);
    const char *n0 = NULL, *n1 = NULL;
    CHECK(wick_opt_state_count(o, 0) == 2);
    float *m = wick_opt_state(o, 0, 0, &n0), *v = wick_opt_state(o, 0, 1, &n1);
    CHECK(m && v && n0 && n1 && !strcmp(n0, "exp_avg") && !strcmp(n1, "exp_avg_sq"));
    if (m && v) {
        CHECK_NEAR(m[0], 0.05, 1e-8);
        CHECK_NEAR(v[0], 0.00025, 1e-10);
    }
    g = -1;
    wick_opt_update(o, 0, &p, &g, 0.1);
    CHECK_NEAR(p, 0.93661035, FTOL);
    if (m && v) {
        CHECK_NEAR(m[0], -0.055, 1e-8);
        CHECK_NEAR(v[0], 0.00124975, 1e-10);
    }
    CHECK(wick_opt_steps(o, 0) == 2);
    wick_opt_free(o);
}

static void test_adam_weight_decay(void) {
    /* Adam with L2 weight decay 0.1, lr 0.1, p = 1, g = 0.5 twice:
     * step 1: d = 0.5 + 0.1 = 0.6; the first Adam step is lr*sign(d): p1 = 0.9.
     * step 2: d = 0.5 + 0.09 = 0.59; m = 0.9*0.06 + 0.1*0.59 = 0.113,
     *   v = 0.999*0.00036 + 0.001*0.3481 = 0.00070774;
     *   m/bc1 = 0.113/0.19 = 0.59473684, sqrt(v/0.001999) = 0.59501851;
     *   p2 = 0.9 - 0.1*0.59473684/0.59501851 = 0.80004734. */
    wick_opt_config c = wick_opt_defaults(WICK_OPT_ADAM);
    c.weight_decay = 0.1;
    size_t n = 1;
    wick_opt *o = make(c, 1, &n, NULL);
    float p = 1, g = 0.5f;
    wick_opt_update(o, 0, &p, &g, 0.1);
    CHECK_NEAR(p, 0.9, FTOL);
    wick_opt_update(o, 0, &p, &g, 0.1);
    CHECK_NEAR(p, 0.80004734, FTOL);
    wick_opt_free(o);
}

static void test_adamw(void) {
    /* AdamW, wd 0.1, lr 0.1, p = 1, g = 0.5 twice (decoupled: p *= 1 - 0.01 first):
     * step 1: p = 0.99, then the first Adam step -0.1: p1 = 0.89.
     * step 2: p = 0.89*0.99 = 0.8811; m = 0.095, v = 0.00049975, m/bc1 = 0.5,
     *   sqrt(v/bc2) = sqrt(0.25) = 0.5, so p2 = 0.8811 - 0.1 = 0.7811. */
    wick_opt_config c = wick_opt_defaults(WICK_OPT_ADAMW);
    CHECK(c.weight_decay == 0.01);
    c.weight_decay = 0.1;
    size_t n = 1;
    wick_opt *o = make(c, 1, &n, NULL);
    float p = 1, g = 0.5f;
    wick_opt_update(o, 0, &p, &g, 0.1);
    CHECK_NEAR(p, 0.89, FTOL);
    wick_opt_update(o, 0, &p, &g, 0.1);
    CHECK_NEAR(p, 0.7811, FTOL);
    wick_opt_free(o);

    /* decay 0: plain Adam steps, 1 -> 0.9 -> 0.8 */
    int nodecay = 0;
    o = make(c, 1, &n, &nodecay);
    p = 1;
    wick_opt_update(o, 0, &p, &g, 0.1);
    wick_opt_update(o, 0, &p, &g, 0.1);
    CHECK_NEAR(p, 0.8, FTOL);
    wick_opt_free(o);
}

/* Each tensor's own step count drives its bias correction: tensor 1's first
 * update is a first Adam step (lr * sign(g)) however often tensor 0 moved. */
static void test_per_tensor_steps(void) {
    wick_opt_config c = wick_opt_defaults(WICK_OPT_ADAM);
    size_t sizes[2] = {1, 1};
    wick_opt *o = make(c, 2, sizes, NULL);
    float a = 0, b = 0, g = 3;
    for (int s = 0; s < 5; s++) wick_opt_update(o, 0, &a, &g, 0.01);
    CHECK(wick_opt_steps(o, 0) == 5 && wick_opt_steps(o, 1) == 0);
    wick_opt_update(o, 1, &b, &g, 0.01);
    CHECK_NEAR(b, -0.01, 1e-8);
    /* a constant gradient gives m/bc1 = g and v/bc2 = g^2: five steps of -lr */
    CHECK_NEAR(a, -0.05, 1e-7);
    CHECK(wick_opt_steps(o, 1) == 1);
    wick_opt_free(o);
}

/* Checkpoint and resume: copying the state buffers and step counts into a
 * fresh optimiser continues bit for bit. */
static void test_state_resume(void) {
    wick_opt_kind kinds[3] = {WICK_OPT_SGD, WICK_OPT_ADAM, WICK_OPT_ADAMW};
    for (int k = 0; k < 3; k++) {
        wick_opt_config c = wick_opt_defaults(kinds[k]);
        if (kinds[k] == WICK_OPT_SGD) c.momentum = 0.9;
        c.l1 = 1e-3;
        enum { N = 50 };
        size_t n = N;
        wick_opt *a = make(c, 1, &n, NULL), *b = make(c, 1, &n, NULL);
        float pa[N], pb[N], g[N];
        for (int i = 0; i < N; i++) pa[i] = (float)cos(i);
        for (int t = 0; t < 4; t++) {
            for (int i = 0; i < N; i++) g[i] = (float)sin(0.3 * i + t);
            wick_opt_update(a, 0, pa, g, 0.01);
        }
        memcpy(pb, pa, sizeof pa);
        CHECK(wick_opt_state_count(b, 0) == wick_opt_state_count(a, 0));
        for (int s = 0; s < wick_opt_state_count(a, 0); s++)
            memcpy(wick_opt_state(b, 0, s, NULL), wick_opt_state(a, 0, s, NULL), sizeof(float) * N);
        wick_opt_set_steps(b, 0, wick_opt_steps(a, 0));
        for (int i = 0; i < N; i++) g[i] = (float)sin(0.3 * i + 7);
        wick_opt_update(a, 0, pa, g, 0.01);
        wick_opt_update(b, 0, pb, g, 0.01);
        CHECK(memcmp(pa, pb, sizeof pa) == 0);
        wick_opt_free(a);
        wick_opt_free(b);
    }
}

/* Element-wise only: 1 and 2 threads give identical bits on a tensor big
 * enough for the parallel path; and an update allocates nothing. */
static void test_threads_and_no_alloc(void) {
    size_t n = 100003;
    float *p1 = malloc(n * sizeof *p1), *p2 = malloc(n * sizeof *p2), *g = malloc(n * sizeof *g);
    wick_opt_kind kinds[3] = {WICK_OPT_SGD, WICK_OPT_ADAM, WICK_OPT_ADAMW};
    for (int k = 0; k < 3; k++) {
        wick_opt_config c = wick_opt_defaults(kinds[k]);
        if (kinds[k] == WICK_OPT_SGD) { c.momentum = 0.9; c.nesterov = 1; }
        c.weight_decay = 0.01;
        c.l1 = 1e-4;
        float *ps[2] = {p1, p2};
        for (int r = 0; r < 2; r++) {
            wick_set_threads(r + 1);
            wick_opt *o = make(c, 1, &n, NULL);
            for (size_t i = 0; i < n; i++) ps[r][i] = (float)cos(0.01 * (double)i);
            long before = wick_alloc_count();
            for (int t = 0; t < 3; t++) {
                for (size_t i = 0; i < n; i++) g[i] = (float)sin(0.37 * (double)i + t);
                wick_opt_update(o, 0, ps[r], g, 0.01);
            }
            CHECK(wick_alloc_count() == before);
            wick_opt_free(o);
        }
        CHECK(memcmp(p1, p2, n * sizeof *p1) == 0);
    }
    wick_set_threads(0);
    free(p1); free(p2); free(g);
}

static void test_parse_and_defaults(void) {
    wick_opt_kind k;
    CHECK_OK(wick_opt_parse("sgd", &k));
    CHECK(k == WICK_OPT_SGD);
    CHECK_OK(wick_opt_parse("adam", &k));
    CHECK(k == WICK_OPT_ADAM);
    CHECK_OK(wick_opt_parse("adamw", &k));
    CHECK(k == WICK_OPT_ADAMW);
    CHECK_FAILS(wick_opt_parse("rmsprop", &k), WICK_EINVAL, "unknown optimiser 'rmsprop'");
    CHECK_FAILS(wick_opt_parse("", &k), WICK_EINVAL, "unknown optimiser");
    /* torch's defaults */
    wick_opt_config c = wick_opt_defaults(WICK_OPT_ADAM);
    CHECK(c.beta1 == 0.9 && c.beta2 == 0.999 && c.eps == 1e-8 && c.weight_decay == 0);
    CHECK(c.momentum == 0 && c.nesterov == 0 && c.l1 == 0);
    c = wick_opt_defaults(WICK_OPT_SGD);
    CHECK(c.momentum == 0 && c.weight_decay == 0);
}

static void test_bad_configs(void) {
    wick_opt *o = (wick_opt *)&o;  /* must be reset to NULL on failure */
    size_t n = 4;
    wick_opt_config c;
#define BAD(kind, field, value, needle)                                        \
    do {                                                                       \
        c = wick_opt_defaults(kind);                                           \
        c.field = value;                                                       \
        CHECK_FAILS(wick_opt_new(&o, &c, 1, &n, NULL), WICK_EINVAL, needle);   \
        CHECK(o == NULL);                                                      \
    } while (0)
    BAD(WICK_OPT_SGD, momentum, -0.1, "invalid momentum value: -0.1");
    BAD(WICK_OPT_SGD, momentum, NAN, "invalid momentum");
    BAD(WICK_OPT_SGD, weight_decay, -1, "sgd: invalid weight_decay value: -1");
    BAD(WICK_OPT_SGD, l1, -1e-3, "invalid l1 value");
    BAD(WICK_OPT_SGD, nesterov, 1, "Nesterov momentum requires a momentum");
    BAD(WICK_OPT_ADAM, beta1, 1.0, "adam: invalid beta parameter at index 0: 1");
    BAD(WICK_OPT_ADAM, beta1, -0.1, "index 0");
    BAD(WICK_OPT_ADAMW, beta2, 1.5, "adamw: invalid beta parameter at index 1: 1.5");
    BAD(WICK_OPT_ADAM, eps, 0.0, "invalid epsilon value: 0");
    BAD(WICK_OPT_ADAM, eps, -1e-8, "invalid epsilon");
    BAD(WICK_OPT_ADAMW, weight_decay, INFINITY, "invalid weight_decay");
    BAD(WICK_OPT_ADAM, momentum, 0.9, "momentum/nesterov apply to sgd only");
    BAD(WICK_OPT_ADAM, kind, (wick_opt_kind)7, "unknown kind 7");
#undef BAD
    c = wick_opt_defaults(WICK_OPT_SGD);
    CHECK_FAILS(wick_opt_new(&o, &c, -1, &n, NULL), WICK_EINVAL, "negative tensor count");
    CHECK_FAILS(wick_opt_new(&o, &c, 1, NULL, NULL), WICK_EINVAL, "sizes is NULL");
    CHECK_FAILS(wick_opt_new(NULL, &c, 1, &n, NULL), WICK_EINVAL, "NULL");
    c.momentum = 0.9;
    size_t huge = SIZE_MAX / 2;
    CHECK_FAILS(wick_opt_new(&o, &c, 1, &huge, NULL), WICK_EINVAL, "overflows");
    /* momentum 0 with nesterov 0 is plain SGD; a zero-size tensor is fine */
    size_t zero[2] = {0, 3};
    CHECK_OK(wick_opt_new(&o, &c, 2, zero, NULL));
    float p[3] = {1, 2, 3}, g[3] = {1, 1, 1};
    wick_opt_update(o, 0, NULL, NULL, 0.1);
    wick_opt_update(o, 1, p, g, 0.1);
    CHECK_NEAR(p[2], 2.9, FTOL);
    /* an index out of range is ignored, not a write out of bounds */
    wick_opt_update(o, 2, p, g, 0.1);
    wick_opt_update(o, -1, p, g, 0.1);
    CHECK(wick_opt_state(o, 2, 0, NULL) == NULL && wick_opt_state(o, 1, 1, NULL) == NULL);
    CHECK(wick_opt_steps(o, 5) == 0 && wick_opt_state_count(o, -1) == 0);
    CHECK_NEAR(p[2], 2.9, FTOL);
    wick_opt_free(o);
    wick_opt_free(NULL);
}

/* Allocation failure at the 1st, 2nd, ... allocation: a clean ENOMEM and no
 * optimiser (ASan's leak check covers the rest under make SANITIZE=1). */
static void test_alloc_failure(void) {
    wick_opt_config c = wick_opt_defaults(WICK_OPT_ADAM);
    size_t sizes[3] = {10, 20, 30};
    int failures = 0;
    for (long k = 1; k < 100; k++) {
        wick_opt *o = (wick_opt *)&o;
        wick_alloc_fail_at(k);
        wick_status s = wick_opt_new(&o, &c, 3, sizes, NULL);
        wick_alloc_fail_at(0);
        if (s == WICK_OK) {
            CHECK(o != NULL);
            wick_opt_free(o);
            break;
        }
        failures++;
        CHECK(s == WICK_ENOMEM && o == NULL);
        CHECK(strstr(wick_last_error(), "out of memory") != NULL);
    }
    CHECK(failures >= 5); /* the struct, 4 arrays, 3 state buffers */
}

/* Range updates over a partition of the tensor, then advance, take exactly
 * the steps of whole-tensor updates (Adam, whose bias correction reads the
 * step count, and SGD with momentum, whose first step is special). */
static void test_range_updates_equal_whole(void) {
    for (int kind = 0; kind < 2; kind++) {
        wick_opt_config c = wick_opt_defaults(kind ? WICK_OPT_ADAM : WICK_OPT_SGD);
        if (!kind) c.momentum = 0.9;
        size_t sizes[2] = {1000, 7};
        wick_opt *a, *b;
        CHECK_OK(wick_opt_new(&a, &c, 2, sizes, NULL));
        CHECK_OK(wick_opt_new(&b, &c, 2, sizes, NULL));
        float pa[1007], pb[1007], g[1007];
        for (int i = 0; i < 1007; i++) pa[i] = pb[i] = 0.5f * cosf(0.1f * i);
        for (int step = 0; step < 5; step++) {
            for (int i = 0; i < 1007; i++) g[i] = sinf(0.37f * i + 1.3f * step);
            wick_opt_update(a, 0, pa, g, 0.01);
            wick_opt_update(a, 1, pa + 1000, g + 1000, 0.01);
            wick_opt_update_range(b, 0, pb, g, 0.01, 0, 384);
            wick_opt_update_range(b, 1, pb + 1000, g + 1000, 0.01, 0, 7);
            wick_opt_update_range(b, 0, pb, g, 0.01, 384, 1000);
            wick_opt_advance(b);
        }
        CHECK(memcmp(pa, pb, sizeof pa) == 0);
        CHECK(wick_opt_steps(b, 0) == 5 && wick_opt_steps(b, 1) == 5);
        wick_opt_free(a);
        wick_opt_free(b);
    }
}

int main(void) {
    RUN(test_sgd_plain);
    RUN(test_sgd_weight_decay);
    RUN(test_sgd_momentum);
    RUN(test_sgd_nesterov);
    RUN(test_l1_and_decay_flags);
    RUN(test_adam);
    RUN(test_adam_weight_decay);
    RUN(test_adamw);
    RUN(test_per_tensor_steps);
    RUN(test_state_resume);
    RUN(test_threads_and_no_alloc);
    RUN(test_parse_and_defaults);
    RUN(test_bad_configs);
    RUN(test_alloc_failure);
    RUN(test_range_updates_equal_whole);
    return chk_finish();
}
