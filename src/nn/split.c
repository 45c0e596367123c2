/* split.c — a seeded train/validation split of a data set. */
#include "core/core.h"
#include <string.h>

static wick_dataset *subset(const wick_dataset *d, const uint32_t *idx, size_t n) {
    wick_dataset *s = wick_calloc(1, sizeof *s);
    if (!s) return NULL;
    s->n = n;
    s->dim = d->dim;
    s->classes = d->classes;
    s->x = wick_malloc((n ? n : 1) * d->dim * sizeof *s->x);
    s->y = wick_malloc((n ? n : 1) * sizeof *s->y);
    if (!s->x || !s->y) {
        wick_dataset_free(s);
        return NULL;
    }
    for (size_t i = 0; i < n; i++) {
        memcpy(s->x + i * d->dim, d->x + (size_t)idx[i] * d->dim, d->dim * sizeof *s->x);
        s->y[i] = d->y[idx[i]];
    }
    return s;
}

static int cmp_u32(const void *a, const void *b) {
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

wick_status wick_dataset_split(const wick_dataset *d, size_t nval, uint64_t seed,
                               wick_dataset **train, wick_dataset **val) {
    if (nval >= d->n)
        return wick_fail(WICK_EINVAL, "validation split of %zu leaves no training data (%zu samples)", nval, d->n);
    uint32_t *perm = wick_malloc(d->n * sizeof *perm);
    if (!perm) return wick_fail(WICK_ENOMEM, "split: out of memory");
    wick_permutation(perm, d->n, seed, 999);
    /* keep both parts in the data's original order */
    qsort(perm, nval, sizeof *perm, cmp_u32);
    qsort(perm + nval, d->n - nval, sizeof *perm, cmp_u32);
    *val = subset(d, perm, nval);
    *train = subset(d, perm + nval, d->n - nval);
    wick_free(perm);
    if (!*val || !*train) {
        wick_dataset_free(*val);
        wick_dataset_free(*train);
        *val = *train = NULL;
        return wick_fail(WICK_ENOMEM, "split: out of memory");
    }
    return WICK_OK;
}
