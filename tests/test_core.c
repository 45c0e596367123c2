/* test_core.c — errors, activations, the Philox generator. */
#include "check.h"
#include "core/core.h"
#include "lib/locale_de.h"

/* Known-answer vectors of Random123 (kat_vectors, philox4x32_10). */
static void test_philox_known_answers(void) {
    static const uint32_t cases[3][10] = {
        {0, 0, 0, 0, 0, 0, 0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8},
        {0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff,
         0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd},
        {0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344, 0xa4093822, 0x299f31d0,
         0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1},
    };
    for (int c = 0; c < 3; c++) {
        uint32_t out[4];
        wick_philox4x32(cases[c], cases[c] + 4, out);
        for (int i = 0; i < 4; i++) CHECK(out[i] == cases[c][6 + i]);
    }
}

static void test_normal_moments(void) {
    /* mean, variance and 4th moment of 10^6 draws within ~5 standard errors */
    size_t n = 1000000;
    double *x = malloc(n * sizeof *x);
    wick_fill_normal_f64(x, n, 0.0, 1.0, 42, 7, 0);
    double m1 = 0, m2 = 0, m4 = 0;
    for (size_t i = 0; i < n; i++) { m1 += x[i]; m2 += x[i] * x[i]; m4 += x[i] * x[i] * x[i] * x[i]; }
    m1 /= n; m2 /= n; m4 /= n;
    CHECK_NEAR(m1, 0.0, 5 / sqrt(n));
    CHECK_NEAR(m2, 1.0, 5 * sqrt(2.0 / n));
    CHECK_NEAR(m4, 3.0, 5 * sqrt(96.0 / n));
    /* a pure function of (seed, stream, index) */
    CHECK(x[12345] == wick_rand_normal(42, 7, 12345));
    CHECK(x[12345] != wick_rand_normal(42, 8, 12345));
    CHECK(x[12345] != wick_rand_normal(43, 7, 12345));
    free(x);
}

static void test_fill_independent_of_threads(void) {
    size_t n = 300000;
    float *a = malloc(n * sizeof *a), *b = malloc(n * sizeof *b);
    wick_set_threads(1);
    wick_fill_normal_f32(a, n, 0.5, 2.0, 1, 2, 3);
    wick_set_threads(2);
    wick_fill_normal_f32(b, n, 0.5, 2.0, 1, 2, 3);
    CHECK(memcmp(a, b, n * sizeof *a) == 0);
    wick_set_threads(0);
    free(a); free(b);
}

static void test_permutation(void) {
    uint32_t p[1000], seen[1000] = {0};
    wick_permutation(p, 1000, 5, 1);
    int moved = 0;
    for (int i = 0; i < 1000; i++) { CHECK(p[i] < 1000); seen[p[i]]++; moved += p[i] != (uint32_t)i; }
    for (int i = 0; i < 1000; i++) CHECK(seen[i] == 1);
    CHECK(moved > 950);
}

static void test_act_parse(void) {
    wick_act a;
    CHECK_OK(wick_act_parse("relu", &a));
    CHECK(a.kind == WICK_ACT_RELU);
    CHECK_OK(wick_act_parse("leaky_relu:0.1", &a));
    CHECK(a.kind == WICK_ACT_LEAKY_RELU && a.slope == 0.1);
    CHECK_OK(wick_act_parse("leaky_relu", &a));
    CHECK(a.slope == WICK_LEAKY_DEFAULT);
    CHECK_FAILS(wick_act_parse("relux", &a), WICK_EINVAL, "unknown activation 'relux'");
    CHECK_FAILS(wick_act_parse("tanh:2", &a), WICK_EINVAL, "only leaky_relu");
    for (int k = 0; k < WICK_ACT_COUNT; k++) {
        wick_act b = {k, 0.01};
        CHECK_OK(wick_act_parse(wick_act_name(b), &a));
        CHECK((int)a.kind == k);
    }
}

/* Exact derivatives against centred differences, at points away from kinks. */
static void test_act_derivatives(void) {
    const double zs[] = {-3.1, -1.2, -0.4, 0.3, 0.9, 2.2, 4.5};
    for (int k = 0; k < WICK_ACT_COUNT; k++) {
        wick_act a = {k, 0.1};
        if (!wick_act_has_derivative(a)) continue;
        for (size_t i = 0; i < WICK_ARRAY_LEN(zs); i++) {
            double z = zs[i], h = 1e-5;
            double d1 = (wick_act_eval(a, z + h) - wick_act_eval(a, z - h)) / (2 * h);
            double d2 = (wick_act_deriv(a, z + h) - wick_act_deriv(a, z - h)) / (2 * h);
            CHECK_NEAR(wick_act_deriv(a, z), d1, 1e-8 * (1 + fabs(d1)));
            CHECK_NEAR(wick_act_deriv2(a, z), d2, 1e-8 * (1 + fabs(d2)));
        }
    }
    wick_act g = {WICK_ACT_GELU, 0};
    CHECK_NEAR(wick_act_eval(g, 1.0), 0.8413447460685429, 1e-15);
    wick_act sp = {WICK_ACT_SOFTPLUS, 0};
    CHECK_NEAR(wick_act_eval(sp, 800.0), 800.0, 0);
    CHECK_NEAR(wick_act_eval(sp, -800.0), 0.0, 1e-300);
}

static void test_errors(void) {
    CHECK(strcmp(wick_strerror(WICK_EFORMAT), "malformed file") == 0);
    CHECK(wick_fail(WICK_EIO, "x.bin: line\nbreak") == WICK_EIO);
    CHECK(strcmp(wick_last_error(), "x.bin: line break") == 0);
    /* a message may wrap the last one */
    wick_fail(WICK_EIO, "outer: %s", wick_last_error());
    CHECK(strcmp(wick_last_error(), "outer: x.bin: line break") == 0);
}

static void test_alloc_injection(void) {
    wick_alloc_fail_at(2);
    void *a = wick_malloc(8), *b = wick_malloc(8), *c = wick_malloc(8);
    CHECK(a && !b && c);
    wick_free(a); wick_free(c);
    CHECK(wick_alloc_fail_at(0) == 3);
}

/* Large buffers come 2 MiB aligned and whole huge pages long (the advice
 * needs both), small ones 64-byte aligned; both writable to their end, and
 * counted by the failure injection like any allocation. */
static void test_huge_alloc(void) {
    const size_t big = (size_t)5 << 20, small = 1000;
    char *a = wick_huge_alloc(big), *b = wick_huge_alloc(small);
    CHECK(a && b);
    CHECK((uintptr_t)a % ((size_t)2 << 20) == 0);
    CHECK((uintptr_t)b % 64 == 0);
    memset(a, 1, big);
    memset(b, 1, small);
    CHECK(a[big - 1] == 1 && b[small - 1] == 1);
    wick_free(a);
    wick_free(b);
    wick_alloc_fail_at(1);
    CHECK(wick_huge_alloc(big) == NULL);
    wick_alloc_fail_at(0);
}

/* A library user under de_DE still gets "1.5" in wick's messages. */
static void test_messages_in_the_c_locale(void) {
    if (!chk_locale_de()) SKIP("no de_DE.UTF-8 locale");
    wick_fail(WICK_EINVAL, "value %g, %.2f", 1.5, 0.25);
    CHECK(!strcmp(wick_last_error(), "value 1.5, 0.25"));
    chk_locale_c();
}

int main(void) {
    RUN(test_philox_known_answers);
    RUN(test_messages_in_the_c_locale);
    RUN(test_normal_moments);
    RUN(test_fill_independent_of_threads);
    RUN(test_permutation);
    RUN(test_act_parse);
    RUN(test_act_derivatives);
    RUN(test_errors);
    RUN(test_alloc_injection);
    RUN(test_huge_alloc);
    return chk_finish();
}
