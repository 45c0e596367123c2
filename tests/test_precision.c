/* test_precision.c — bf16 training's dispatch: wick_cpu_bf16 agrees with the
 * kernel's /proc/cpuinfo, and wick_trainer_new takes bf16 where the CPU has
 * AVX512-BF16 (with AVX-512 F, BW, VL) and refuses it elsewhere with a message
 * that says why (neither AMX nor AVX512-BF16; AMX alone, which wick's kernel
 * does not use). */
#include "check.h"

static wick_dataset data = {0};
static float xs[16 * 4];
static int32_t ys[16];

static wick_status try_precision(wick_precision p) {
    wick_mlp_config mc;
    memset(&mc, 0, sizeof mc);
    if (wick_arch_parse("4-8-2", &mc) != WICK_OK) return WICK_EINVAL;
    mc.act = (wick_act){WICK_ACT_RELU, 0};
    mc.init = WICK_INIT_CRITICAL;
    wick_mlp *m = NULL;
    wick_status s = wick_mlp_new(&m, &mc, WICK_DT_F32, 8);
    if (s) return s;
    data.n = 16, data.dim = 4, data.classes = 2, data.x = xs, data.y = ys;
    for (int i = 0; i < 16; i++) ys[i] = i % 2;
    wick_train_config c = wick_train_defaults();
    c.batch = 8;
    c.precision = p;
    wick_trainer *t = NULL;
    s = wick_trainer_new(&t, m, &data, NULL, &c);
    wick_trainer_free(t);
    wick_mlp_free(m);
    return s;
}

/* The flags line of /proc/cpuinfo has `flag` as a word. */
static int cpuinfo_has(const char *flag) {
    FILE *f = fopen("/proc/cpuinfo", "r");
    if (!f) return -1;
    char line[8192];
    int found = 0;
    while (fgets(line, sizeof line, f))
        if (!strncmp(line, "flags", 5)) {
            for (char *w = strtok(strchr(line, ':') + 1, " \n"); w; w = strtok(NULL, " \n"))
                if (!strcmp(w, flag)) found = 1;
            break;
        }
    fclose(f);
    return found;
}

static void test_cpu_detection_matches_cpuinfo(void) {
    const char *has = wick_cpu_bf16();
    int amx = cpuinfo_has("amx_bf16"), avx = cpuinfo_has("avx512_bf16");
    if (amx < 0) SKIP("no /proc/cpuinfo");
    /* the kernel lists a feature only when it enabled its state, as wick checks */
    CHECK((strstr(has, "amx_bf16") != NULL) == amx);
    CHECK((strstr(has, "avx512_bf16") != NULL) == avx);
}

static void test_float32_is_the_default(void) {
    wick_train_config c = wick_train_defaults();
    CHECK(c.precision == WICK_PRECISION_F32);
    CHECK_OK(try_precision(WICK_PRECISION_F32));
}

static void test_bf16_taken_or_refused_with_reason(void) {
    const char *has = wick_cpu_bf16();
    if (!*has)
        CHECK_FAILS(try_precision(WICK_PRECISION_BF16), WICK_EUNSUPPORTED,
                    "needs a CPU with AMX (amx_bf16) or AVX512-BF16 (avx512_bf16), and this one has neither");
    else if (!strstr(has, "avx512_bf16"))
        CHECK_FAILS(try_precision(WICK_PRECISION_BF16), WICK_EUNSUPPORTED, "but not avx512_bf16");
    else
        CHECK_OK(try_precision(WICK_PRECISION_BF16));
    CHECK_FAILS(try_precision((wick_precision)7), WICK_EINVAL, "unknown precision 7");
}

/* The other branches of the dispatch, on any CPU: one that reports AMX alone,
 * and one that reports neither. */
static void test_bf16_on_other_cpus(void) {
    setenv("WICK_TEST_CPU_BF16", "amx_bf16", 1);
    CHECK(strcmp(wick_cpu_bf16(), "amx_bf16") == 0);
    CHECK_FAILS(try_precision(WICK_PRECISION_BF16), WICK_EUNSUPPORTED,
                "this CPU has amx_bf16 but not avx512_bf16, which wick's bf16 kernel uses");
    setenv("WICK_TEST_CPU_BF16", "", 1);
    CHECK_FAILS(try_precision(WICK_PRECISION_BF16), WICK_EUNSUPPORTED, "has neither");
    unsetenv("WICK_TEST_CPU_BF16");
}

int main(void) {
    RUN(test_cpu_detection_matches_cpuinfo);
    RUN(test_float32_is_the_default);
    RUN(test_bf16_taken_or_refused_with_reason);
    RUN(test_bf16_on_other_cpus);
    return chk_finish();
}
