/* test_dataset_ops.c — bagging's bootstrap resample and the concatenation
 * of early stopping's second round: the resample's share of distinct
 * samples against its closed form 1 - (1 - 1/n)^n (-> 1 - 1/e), its
 * determinism, and concat's content. */
#include "check.h"
#include <math.h>
#include <string.h>

static wick_dataset *make(size_t n, size_t dim, float base) {
    wick_dataset *d = calloc(1, sizeof *d);
    d->n = n;
    d->dim = dim;
    d->classes = 3;
    d->x = malloc(n * dim * sizeof *d->x);
    d->y = malloc(n * sizeof *d->y);
    for (size_t i = 0; i < n; i++) {
        for (size_t j = 0; j < dim; j++) d->x[i * dim + j] = base + (float)i + 0.001f * (float)j;
        d->y[i] = (int32_t)(i % 3);
    }
    return d;
}

static void test_bootstrap_distinct_share_is_1_minus_1_over_e(void) {
    size_t n = 20000;
    wick_dataset *d = make(n, 2, 0), *b = NULL, *b2 = NULL, *b3 = NULL;
    CHECK_OK(wick_dataset_bootstrap(d, 7, 3000000, &b));
    CHECK_OK(wick_dataset_bootstrap(d, 7, 3000000, &b2));
    CHECK_OK(wick_dataset_bootstrap(d, 7, 3000001, &b3));
    if (!b || !b2 || !b3) return;
    CHECK(b->n == n && b->dim == 2 && b->classes == 3);
    char *seen = calloc(n, 1);
    size_t distinct = 0;
    for (size_t i = 0; i < n; i++) {
        size_t k = (size_t)b->x[i * 2];   /* sample k's first feature is k */
        CHECK(k < n && b->y[i] == (int32_t)(k % 3) && b->x[i * 2 + 1] == d->x[k * 2 + 1]);
        if (k < n && !seen[k]) { seen[k] = 1; distinct++; }
    }
    /* E[distinct]/n = 1 - (1 - 1/n)^n; its sd is below 0.5/sqrt(n) */
    double want = 1 - pow(1 - 1.0 / n, (double)n);
    CHECK_NEAR((double)distinct / n, want, 5 * 0.5 / sqrt((double)n));
    CHECK(!memcmp(b->x, b2->x, n * 2 * sizeof *b->x));   /* the same draws */
    CHECK(memcmp(b->x, b3->x, n * 2 * sizeof *b->x) != 0); /* another stream, another resample */
    free(seen);
    wick_dataset_free(b);
    wick_dataset_free(b2);
    wick_dataset_free(b3);
    wick_dataset_free(d);
}

static void test_concat_keeps_both_in_order(void) {
    wick_dataset *a = make(5, 3, 0), *b = make(4, 3, 100), *c = NULL, *bad = make(2, 4, 0);
    CHECK_OK(wick_dataset_concat(a, b, &c));
    if (c) {
        CHECK(c->n == 9 && c->dim == 3);
        CHECK(!memcmp(c->x, a->x, 15 * sizeof *c->x) && !memcmp(c->x + 15, b->x, 12 * sizeof *c->x));
        CHECK(!memcmp(c->y, a->y, 5 * sizeof *c->y) && !memcmp(c->y + 5, b->y, 4 * sizeof *c->y));
    }
    wick_dataset *none = (wick_dataset *)1;
    CHECK_FAILS(wick_dataset_concat(a, bad, &none), WICK_ESHAPE, "3 and 4 features");
    CHECK(none == NULL);
    wick_dataset_free(a);
    wick_dataset_free(b);
    wick_dataset_free(c);
    wick_dataset_free(bad);
}

int main(void) {
    RUN(test_bootstrap_distinct_share_is_1_minus_1_over_e);
    RUN(test_concat_keeps_both_in_order);
    return chk_finish();
}
