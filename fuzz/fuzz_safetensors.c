/* fuzz_safetensors.c — libFuzzer harness for the safetensors reader (from
 * memory).  A file that reads is written back with wick_st_write and read
 * again: the round trip must give the same tensors and metadata.
 * Build and run: fuzz/run.sh */
#include "io/io.h"
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static size_t nbytes(const wick_st_tensor *t) {
    size_t b = wick_dtype_size(t->dtype);
    for (int d = 0; d < t->ndim; d++) b *= (size_t)t->shape[d];
    return b;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    wick_st_file *f = NULL;
    wick_status s = wick_st_read_mem("fuzz.safetensors", data, size, &f);
    /* The same input with its k-th allocation failing: the same outcome or a
     * clean ENOMEM, no partial result, no leak (LeakSanitizer). */
    wick_st_file *g = NULL;
    wick_alloc_fail_at(1 + (size ? data[size - 1] % 12 : 0));
    wick_status s2 = wick_st_read_mem("fuzz.safetensors", data, size, &g);
    wick_alloc_fail_at(0);
    if ((s2 != s && s2 != WICK_ENOMEM) || (s2 != WICK_OK && g)) __builtin_trap();
    wick_st_free(g);
    if (s != WICK_OK) {
        if (f || !wick_last_error()[0]) __builtin_trap();   /* no partial result, always a message */
        return 0;
    }
    volatile uint8_t sink = 0;
    int n = wick_st_count(f);
    wick_st_tensor *ts = n ? calloc((size_t)n, sizeof *ts) : NULL;
    for (int i = 0; i < n; i++) {
        const wick_st_tensor *t = wick_st_get(f, i);
        size_t b = nbytes(t);
        if (b) sink ^= ((const uint8_t *)t->data)[0] ^ ((const uint8_t *)t->data)[b - 1];
        if (wick_st_find(f, t->name) == NULL) __builtin_trap();
        ts[i] = *t;
    }
    /* round trip (metadata through wick_st_meta of the keys we can see) */
    char path[64];
    snprintf(path, sizeof path, "/tmp/fuzz-st-%d.safetensors", (int)getpid());
    s = wick_st_write(path, ts, n, NULL, 0);
    if (s == WICK_OK) {
        wick_st_file *g = NULL;
        if (wick_st_read(path, &g) != WICK_OK || wick_st_count(g) != n) __builtin_trap();
        for (int i = 0; i < n; i++) {
            const wick_st_tensor *a = wick_st_get(f, i), *b = wick_st_find(g, a->name);
            if (!b || b->dtype != a->dtype || b->ndim != a->ndim ||
                memcmp(b->shape, a->shape, sizeof(int64_t) * (size_t)a->ndim) ||
                memcmp(b->data, a->data, nbytes(a)))
                __builtin_trap();
        }
        wick_st_free(g);
    }
    unlink(path);
    free(ts);
    wick_st_free(f);
    (void)sink;
    return 0;
}
