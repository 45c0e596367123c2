/* checksum.c — CRC-32 (zlib) over a file's tensor bytes, kept in
 * __metadata__["crc32"], so a corrupted checkpoint is refused on load even
 * when its structure is intact. */
#include "core/core.h"
#include "nn/model_io.h"
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

static unsigned long crc_of(const wick_st_tensor *t) {
    size_t bytes = wick_dtype_size(t->dtype);
    for (int d = 0; d < t->ndim; d++) bytes *= (size_t)t->shape[d];
    unsigned long c = crc32(0L, Z_NULL, 0);
    const unsigned char *p = t->data;
    while (bytes) {   /* crc32 takes a uInt length */
        uInt k = bytes > (1u << 30) ? (1u << 30) : (uInt)bytes;
        c = crc32(c, p, k);
        p += k;
        bytes -= k;
    }
    return c;
}

/* The checksum of a list: each tensor's CRC combined in order with its name. */
static unsigned long crc_list(const wick_st_tensor *const *t, int n) {
    unsigned long c = crc32(0L, Z_NULL, 0);
    for (int i = 0; i < n; i++) {
        unsigned long k = crc_of(t[i]);
        c = crc32(c, (const unsigned char *)t[i]->name, (uInt)strlen(t[i]->name));
        unsigned char b[4] = {k >> 24, k >> 16, k >> 8, k};
        c = crc32(c, b, 4);
    }
    return c;
}

wick_status nn_write(const char *path, const wick_st_tensor *t, int n, const nn_meta *meta) {
    const wick_st_tensor *list[512];
    if (n > 512) return wick_fail(WICK_EINVAL, "%s: too many tensors", path);
    for (int i = 0; i < n; i++) list[i] = &t[i];
    nn_meta m = *meta;
    nn_meta_setf(&m, "crc32", "%08lx", crc_list(list, n));
    const char *kv[2 * NN_META_MAX];
    for (int i = 0; i < m.n; i++) {
        kv[2 * i] = m.key[i];
        kv[2 * i + 1] = m.val[i];
    }
    return wick_st_write(path, t, n, kv, m.n);
}

wick_status nn_verify_checksum(const wick_st_file *f, const char *path) {
    const char *want = wick_st_meta(f, "crc32");
    if (!want) return WICK_OK;
    int n = wick_st_count(f);
    const wick_st_tensor **list = wick_malloc((size_t)(n ? n : 1) * sizeof *list);
    if (!list) return wick_fail(WICK_ENOMEM, "%s: out of memory", path);
    for (int i = 0; i < n; i++) list[i] = wick_st_get(f, i);
    char got[16];
    snprintf(got, sizeof got, "%08lx", crc_list(list, n));
    wick_free(list);
    if (strcmp(got, want) != 0)
        return wick_fail(WICK_EFORMAT, "%s: checksum mismatch (crc32 %s, file says %s): the file is corrupted",
                         path, got, want);
    return WICK_OK;
}
