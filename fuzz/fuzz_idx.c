/* fuzz_idx.c — libFuzzer harness for the IDX reader, plain and gzip.  The
 * reader takes a path (zlib's gzopen), so the input goes into a memfd and is
 * read through /proc/self/fd.  The same file is also loaded as a data set
 * (images = labels), which reads when it is a 1-dimensional u8 file.
 * Build and run: fuzz/run.sh */
#include "io/io.h"
#include <stdio.h>
#include <sys/mman.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static int fd = -1;
    static char path[64];
    if (fd < 0) {
        fd = memfd_create("fuzz-idx", 0);
        if (fd < 0) __builtin_trap();
        snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
    }
    if (ftruncate(fd, 0) != 0 || (size && pwrite(fd, data, size, 0) != (ssize_t)size)) __builtin_trap();
    wick_idx *t = NULL;
    wick_status s = wick_idx_read(path, &t);
    if (s == WICK_OK) {
        size_t count = 1;
        for (int i = 0; i < t->ndim; i++) count *= t->dims[i];
        if (count != t->count) __builtin_trap();
        volatile uint8_t sink = 0;
        static const size_t es[16] = {[8] = 1, [9] = 1, [11] = 2, [12] = 4, [13] = 4, [14] = 8};
        size_t bytes = count * es[t->type & 15];
        if (bytes) sink ^= ((uint8_t *)t->data)[0] ^ ((uint8_t *)t->data)[bytes - 1];
        (void)sink;
    } else if (t || !wick_last_error()[0]) {
        __builtin_trap();
    }
    wick_idx_free(t);
    /* again with the k-th allocation failing: same outcome or ENOMEM */
    wick_idx *t2 = NULL;
    wick_alloc_fail_at(1 + (size ? data[size - 1] % 3 : 0));
    wick_status s2 = wick_idx_read(path, &t2);
    wick_alloc_fail_at(0);
    if ((s2 != s && s2 != WICK_ENOMEM) || (s2 != WICK_OK && t2)) __builtin_trap();
    wick_idx_free(t2);
    wick_dataset *d = NULL;
    s = wick_dataset_load_idx(path, path, 0, &d);
    if (s == WICK_OK) {
        volatile float sink = 0;
        for (size_t i = 0; i < d->n; i++) {
            if (d->y[i] < 0 || d->y[i] >= d->classes) __builtin_trap();
            sink += d->x[i * d->dim];
        }
        (void)sink;
    }
    wick_dataset_free(d);
    return 0;
}
