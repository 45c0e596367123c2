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

/* Bagging's resample: n draws with replacement, draw i being
 * floor(u n) for u = Philox (seed, stream, i). */
wick_status wick_dataset_bootstrap(const wick_dataset *d, uint64_t seed, uint64_t stream, wick_dataset **out) {
    *out = NULL;
    if (d->n == 0 || d->n > UINT32_MAX) return wick_fail(WICK_EINVAL, "bootstrap: %zu samples", d->n);
    uint32_t *idx = wick_malloc(d->n * sizeof *idx);
    if (!idx) return wick_fail(WICK_ENOMEM, "bootstrap: out of memory");
    for (size_t i = 0; i < d->n; i++) {
        size_t k = (size_t)(wick_rand_uniform(seed, stream, i) * (double)d->n);
        idx[i] = (uint32_t)(k < d->n ? k : d->n - 1);
    }
    *out = subset(d, idx, d->n);
    wick_free(idx);
    return *out ? WICK_OK : wick_fail(WICK_ENOMEM, "bootstrap: out of memory");
}

wick_status wick_dataset_concat(const wick_dataset *a, const wick_dataset *b, wick_dataset **out) {
    *out = NULL;
    if (a->dim != b->dim) return wick_fail(WICK_ESHAPE, "concat: %zu and %zu features", a->dim, b->dim);
    size_t n;
    if (!wick_add_size(a->n, b->n, &n) || n > UINT32_MAX) return wick_fail(WICK_EINVAL, "concat: too many samples");
    wick_dataset *s = wick_calloc(1, sizeof *s);
    if (!s) return wick_fail(WICK_ENOMEM, "concat: out of memory");
    s->n = n;
    s->dim = a->dim;
    s->classes = a->classes > b->classes ? a->classes : b->classes;
    s->x = wick_malloc((n ? n : 1) * a->dim * sizeof *s->x);
    s->y = wick_malloc((n ? n : 1) * sizeof *s->y);
    if (!s->x || !s->y) {
        wick_dataset_free(s);
        return wick_fail(WICK_ENOMEM, "concat: out of memory");
    }
    memcpy(s->x, a->x, a->n * a->dim * sizeof *s->x);
    memcpy(s->x + a->n * a->dim, b->x, b->n * b->dim * sizeof *s->x);
    memcpy(s->y, a->y, a->n * sizeof *s->y);
    memcpy(s->y + a->n, b->y, b->n * sizeof *s->y);
    *out = s;
    return WICK_OK;
}
