/* test_metrics.c — accuracy, confusion matrix, precision, recall, F1 and
 * macro F1 on a 3-class example counted by hand; undefined ratios; bad
 * labels; the printed report; allocation failure. */
#include "check.h"
#include "core/core.h"

/* Ten samples, three classes:
 *   truth 0 0 0 0 1 1 1 2 2 2
 *   pred  0 0 1 2 1 1 0 2 2 1
 * confusion [true][pred]:  class 0: 2 1 1 | class 1: 1 2 0 | class 2: 0 1 2
 * accuracy 6/10.  Predicted counts (column sums) 3 4 3, support (row sums) 4 3 3:
 *   precision 2/3, 2/4, 2/3;  recall 2/4, 2/3, 2/3;
 *   F1 = 2PR/(P+R): class 0 (2/3)/(7/6) = 4/7, class 1 4/7, class 2 2/3;
 *   macro F1 = (4/7 + 4/7 + 2/3)/3 = 38/63. */
static const int32_t truth[10] = {0, 0, 0, 0, 1, 1, 1, 2, 2, 2};
static const int32_t pred[10] = {0, 0, 1, 2, 1, 1, 0, 2, 2, 1};

static void test_three_classes(void) {
    wick_metrics *m = NULL;
    CHECK_OK(wick_metrics_compute(truth, pred, 10, 3, &m));
    if (!m) return;
    CHECK(m->classes == 3 && m->n == 10);
    CHECK_NEAR(m->accuracy, 0.6, 1e-15);
    const int64_t conf[9] = {2, 1, 1, 1, 2, 0, 0, 1, 2};
    for (int i = 0; i < 9; i++) CHECK(m->confusion[i] == conf[i]);
    const double p[3] = {2.0 / 3, 0.5, 2.0 / 3}, r[3] = {0.5, 2.0 / 3, 2.0 / 3};
    const double f[3] = {4.0 / 7, 4.0 / 7, 2.0 / 3};
    for (int c = 0; c < 3; c++) {
        CHECK_NEAR(m->precision[c], p[c], 1e-15);
        CHECK_NEAR(m->recall[c], r[c], 1e-15);
        CHECK_NEAR(m->f1[c], f[c], 1e-15);
    }
    CHECK_NEAR(m->macro_f1, 38.0 / 63, 1e-15);
    wick_metrics_free(m);
}

static void test_undefined_ratios(void) {
    /* The same samples with 4 classes: class 3 has no samples and no
     * predictions, so its precision, recall and F1 are 0, and macro F1 is
     * (4/7 + 4/7 + 2/3 + 0)/4 = 38/84. */
    wick_metrics *m = NULL;
    CHECK_OK(wick_metrics_compute(truth, pred, 10, 4, &m));
    if (!m) return;
    CHECK(m->precision[3] == 0 && m->recall[3] == 0 && m->f1[3] == 0);
    CHECK_NEAR(m->macro_f1, 38.0 / 84, 1e-15);
    wick_metrics_free(m);

    /* Class 1 is never predicted (precision undefined -> 0, recall 0, F1 0);
     * class 0 is predicted for everything: precision 2/4, recall 1, F1 2/3. */
    const int32_t t2[4] = {0, 0, 1, 1}, p2[4] = {0, 0, 0, 0};
    CHECK_OK(wick_metrics_compute(t2, p2, 4, 2, &m));
    if (!m) return;
    CHECK_NEAR(m->accuracy, 0.5, 1e-15);
    CHECK(m->precision[1] == 0 && m->recall[1] == 0 && m->f1[1] == 0);
    CHECK_NEAR(m->precision[0], 0.5, 1e-15);
    CHECK_NEAR(m->recall[0], 1.0, 1e-15);
    CHECK_NEAR(m->f1[0], 2.0 / 3, 1e-15);
    CHECK_NEAR(m->macro_f1, 1.0 / 3, 1e-15);
    wick_metrics_free(m);

    /* No samples at all: everything 0, no crash. */
    CHECK_OK(wick_metrics_compute(NULL, NULL, 0, 2, &m));
    if (!m) return;
    CHECK(m->n == 0 && m->accuracy == 0 && m->macro_f1 == 0 && m->confusion[3] == 0);
    wick_metrics_free(m);
}

static void test_bad_labels(void) {
    wick_metrics *m = (wick_metrics *)&m;
    int32_t t[10], p[10];
    memcpy(t, truth, sizeof t);
    memcpy(p, pred, sizeof p);
    t[5] = 3;
    CHECK_FAILS(wick_metrics_compute(t, p, 10, 3, &m), WICK_EINVAL,
                "true label 3 at index 5 is outside [0, 3)");
    CHECK(m == NULL);
    t[5] = 1;
    p[7] = -1;
    CHECK_FAILS(wick_metrics_compute(t, p, 10, 3, &m), WICK_EINVAL,
                "predicted label -1 at index 7 is outside [0, 3)");
    CHECK_FAILS(wick_metrics_compute(truth, pred, 10, 0, &m), WICK_EINVAL, "0 classes");
    CHECK_FAILS(wick_metrics_compute(NULL, pred, 10, 3, &m), WICK_EINVAL, "NULL labels");
    CHECK_FAILS(wick_metrics_compute(truth, pred, 10, 3, NULL), WICK_EINVAL, "NULL");
    wick_metrics_free(NULL);
}

static char *slurp(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    static char buf[8192];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    buf[n] = 0;
    fclose(f);
    return buf;
}

static void test_print(void) {
    wick_metrics *m = NULL;
    CHECK_OK(wick_metrics_compute(truth, pred, 10, 3, &m));
    if (!m) return;
    const char *names[3] = {"T-shirt/top", "Trouser", "Pullover"};
    const char *path = chk_tmp("metrics.txt");
    FILE *f = fopen(path, "w");
    if (!f) SKIP("cannot write the scratch file");
    wick_metrics_print(f, m, names);
    fclose(f);
    char *s = slurp(path);
    CHECK(s != NULL);
    if (s) {
        fputs(s, stderr); /* the report, for a human reading the log */
        CHECK(strstr(s, "accuracy 0.6000 (6/10)") != NULL);
        CHECK(strstr(s, "precision") && strstr(s, "recall") && strstr(s, "support"));
        /* class 1's row: precision 0.5, recall 2/3, F1 4/7, support 3 */
        CHECK(strstr(s, "1 Trouser        0.5000    0.6667    0.5714         3") != NULL);
        CHECK(strstr(s, "macro avg") && strstr(s, "0.6032"));
        CHECK(strstr(s, "confusion matrix (rows: true class, columns: predicted class)") != NULL);
        CHECK(strstr(s, "true \\ pred      0    1    2") != NULL);
        CHECK(strstr(s, "0 T-shirt/top    2    1    1") != NULL);
        CHECK(strstr(s, "2 Pullover       0    1    2") != NULL);
    }
    /* without names: indices */
    f = fopen(path, "w");
    if (!f) SKIP("cannot write the scratch file");
    wick_metrics_print(f, m, NULL);
    fclose(f);
    s = slurp(path);
    CHECK(s && strstr(s, "\n1              0.5000    0.6667") &&
          strstr(s, "\n2              0    1    2"));
    wick_metrics_free(m);
}

static void test_alloc_failure(void) {
    int failures = 0;
    for (long k = 1; k < 20; k++) {
        wick_metrics *m = (wick_metrics *)&m;
        wick_alloc_fail_at(k);
        wick_status s = wick_metrics_compute(truth, pred, 10, 3, &m);
        wick_alloc_fail_at(0);
        if (s == WICK_OK) {
            CHECK(m && m->accuracy == 0.6);
            wick_metrics_free(m);
            break;
        }
        failures++;
        CHECK(s == WICK_ENOMEM && m == NULL);
    }
    CHECK(failures == 5); /* the struct and its four arrays */
}

int main(void) {
    RUN(test_three_classes);
    RUN(test_undefined_ratios);
    RUN(test_bad_labels);
    RUN(test_print);
    RUN(test_alloc_failure);
    return chk_finish();
}
