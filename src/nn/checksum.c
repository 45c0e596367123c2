/* checksum.c — the integrity check of wick's files: CRC-32 (zlib) over the
 * metadata and the tensors, kept in __metadata__["checksum"], so that a
 * corrupted checkpoint is refused on load even when its structure is intact,
 * and an edited counter, learning rate or activation is refused as well.
 *
 * The canonical stream (version 1), fed to one running CRC:
 *   "wick-checksum-1" NUL
 *   for each key of known_keys (sorted, the checksum keys excluded):
 *     1 byte present (1) or absent (0), u64 length + key, and if present
 *     u64 length + value
 *   u64 tensor count; for each tensor sorted by name: u64 length + name,
 *     u64 length + dtype name, u64 ndim, ndim x u64 dims, u64 byte count +
 *     the bytes
 * (u64 little-endian).  CRC-32 catches corruption (every burst up to 32 bits,
 * all but 2^-32 of random damage); it is no defence against a deliberate
 * forger, who can recompute any unkeyed hash: that defence is the checking
 * of every field behind it (train.c, model_io.c). */
#include "core/core.h"
#include "core/cnum.h"
#include "nn/model_io.h"
#include "nn/nn_internal.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#define SUM_KEY "checksum"
#define LEGACY_KEY "crc32"

/* Every key wick writes, sorted (strcmp). */
static const char *const known_keys[] = {
    "act", "act_slope", "arch", "bad_epochs", "batch", "batch_in_epoch", "best_epoch", "best_val",
    "epoch", "epoch_loss_sum", "epoch_steps", "first_loss", "format", "init", "loss",
    "optimizer_steps", "samples", "sched_bad_epochs", "sched_best", "sched_lr", "seconds", "seed",
    "shuffle", "step", "train_samples", "wick_version"};

/* Keys added after version 1 (layer specs, the random layers' step, the
 * optimiser and schedule of a checkpoint, in the order added): covered
 * where present, after the others, so that a file without them keeps the
 * checksum it was written with; one deleted from a file that had it is a
 * mismatch like any other edit. */
static const char *const later_keys[] = {"graph_step", "spec", "optimizer", "lr", "momentum", "weight_decay",
                                         "schedule", "label_smoothing", "input"};

static int bypass;
void nn_checksum_bypass(int on) { bypass = on; }

int nn_meta_known(const char *key) {
    for (size_t i = 0; i < WICK_ARRAY_LEN(known_keys); i++)
        if (!strcmp(known_keys[i], key)) return 1;
    for (size_t i = 0; i < WICK_ARRAY_LEN(later_keys); i++)
        if (!strcmp(later_keys[i], key)) return 1;
    return 0;
}

static unsigned long crc_bytes(unsigned long c, const void *data, size_t bytes) {
    const unsigned char *p = data;
    while (bytes) {   /* crc32 takes a uInt length */
        uInt k = bytes > (1u << 30) ? (1u << 30) : (uInt)bytes;
        c = crc32(c, p, k);
        p += k;
        bytes -= k;
    }
    return c;
}

static unsigned long crc_u64(unsigned long c, uint64_t v) {
    unsigned char b[8];
    for (int i = 0; i < 8; i++) b[i] = (unsigned char)(v >> (8 * i));
    return crc32(c, b, 8);
}

static unsigned long crc_str(unsigned long c, const char *s) {
    size_t n = strlen(s);
    return crc_bytes(crc_u64(c, n), s, n);
}

static size_t tensor_bytes(const wick_st_tensor *t) {
    size_t bytes = wick_dtype_size(t->dtype);
    for (int d = 0; d < t->ndim; d++) bytes *= (size_t)t->shape[d];
    return bytes;
}

static int by_name(const void *a, const void *b) {
    return strcmp((*(const wick_st_tensor *const *)a)->name, (*(const wick_st_tensor *const *)b)->name);
}

/* The version-1 checksum; get(src, key) gives a key's value or NULL.  list
 * is sorted in place. */
static unsigned long checksum_v1(const char *(*get)(const void *, const char *), const void *src,
                                 const wick_st_tensor **list, int n) {
    unsigned long c = crc32(0L, Z_NULL, 0);
    c = crc32(c, (const unsigned char *)"wick-checksum-1", 16);   /* with its NUL */
    for (size_t i = 0; i < WICK_ARRAY_LEN(known_keys); i++) {
        const char *v = get(src, known_keys[i]);
        unsigned char present = v != NULL;
        c = crc32(c, &present, 1);
        c = crc_str(c, known_keys[i]);
        if (v) c = crc_str(c, v);
    }
    for (size_t i = 0; i < WICK_ARRAY_LEN(later_keys); i++) {
        const char *v = get(src, later_keys[i]);
        if (!v) continue;
        c = crc_str(c, later_keys[i]);
        c = crc_str(c, v);
    }
    qsort(list, (size_t)n, sizeof *list, by_name);
    c = crc_u64(c, (uint64_t)n);
    for (int i = 0; i < n; i++) {
        const wick_st_tensor *t = list[i];
        c = crc_str(c, t->name);
        c = crc_str(c, wick_dtype_name(t->dtype));
        c = crc_u64(c, (uint64_t)t->ndim);
        for (int d = 0; d < t->ndim; d++) c = crc_u64(c, (uint64_t)t->shape[d]);
        size_t b = tensor_bytes(t);
        c = crc_u64(c, b);
        c = crc_bytes(c, t->data, b);
    }
    return c;
}

/* The pre-1 checksum ("crc32"): each tensor's CRC combined in file order
 * with its name; no metadata. */
static unsigned long checksum_legacy(const wick_st_tensor *const *t, int n) {
    unsigned long c = crc32(0L, Z_NULL, 0);
    for (int i = 0; i < n; i++) {
        unsigned long k = crc_bytes(crc32(0L, Z_NULL, 0), t[i]->data, tensor_bytes(t[i]));
        c = crc32(c, (const unsigned char *)t[i]->name, (uInt)strlen(t[i]->name));
        unsigned char b[4] = {k >> 24, k >> 16, k >> 8, k};
        c = crc32(c, b, 4);
    }
    return c;
}

static const char *meta_get_list(const void *src, const char *key) {
    const nn_meta *m = src;
    for (int i = 0; i < m->n; i++)
        if (!strcmp(m->key[i], key)) return m->val[i];
    return NULL;
}

static const char *meta_get_file(const void *src, const char *key) { return wick_st_meta(src, key); }

wick_status nn_write(const char *path, const wick_st_tensor *t, int n, const nn_meta *meta) {
    if (n < 0 || n > 4 * NN_MAX_TENSORS)
        return wick_fail(WICK_EINVAL, "%s: %d tensors (at most %d)", path, n, 4 * NN_MAX_TENSORS);
    for (int i = 0; i < meta->n; i++)
        if (!nn_meta_known(meta->key[i]))
            return wick_fail(WICK_EINVAL, "%s: metadata key '%s' is not covered by the checksum", path,
                             meta->key[i]);
    nn_meta *m = wick_malloc(sizeof *m);
    const wick_st_tensor **list = wick_malloc((size_t)(n ? n : 1) * sizeof *list);
    const char **kv = wick_malloc(2 * NN_META_MAX * sizeof *kv);
    wick_status s;
    if (!m || !list || !kv) {
        s = wick_fail(WICK_ENOMEM, "%s: out of memory", path);
        goto done;
    }
    *m = *meta;
    for (int i = 0; i < n; i++) list[i] = &t[i];
    nn_meta_setf(m, SUM_KEY, "crc32:%08lx", checksum_v1(meta_get_list, meta, list, n));
    for (int i = 0; i < m->n; i++) {
        kv[2 * i] = m->key[i];
        kv[2 * i + 1] = m->val[i];
    }
    s = wick_st_write(path, t, n, kv, m->n);
done:
    wick_free(m);
    wick_free(list);
    wick_free(kv);
    return s;
}

wick_status nn_verify_checksum(const wick_st_file *f, const char *path, int required) {
    const char *want = wick_st_meta(f, SUM_KEY), *legacy = wick_st_meta(f, LEGACY_KEY);
    if (!want && required)
        return wick_fail(WICK_EFORMAT, "%s: the checkpoint has no '" SUM_KEY "' in __metadata__%s, so it cannot "
                         "be verified: resume it with the wick that wrote it and let that save it again, or start "
                         "a new run from its weights with --init-from", path,
                         legacy ? " (only an older wick's crc32, which does not cover the metadata)" : "");
    if (!want && !legacy) return WICK_OK;   /* a model file from elsewhere, e.g. PyTorch */
    int n = wick_st_count(f);
    const wick_st_tensor **list = wick_malloc((size_t)(n ? n : 1) * sizeof *list);
    if (!list) return wick_fail(WICK_ENOMEM, "%s: out of memory", path);
    for (int i = 0; i < n; i++) list[i] = wick_st_get(f, i);
    char got[32], e[64];
    wick_status s = WICK_OK;
    if (want) {
        snprintf(got, sizeof got, "crc32:%08lx", checksum_v1(meta_get_file, f, list, n));
        int well_formed = strlen(want) == 14 && !strncmp(want, "crc32:", 6) &&
                          strspn(want + 6, "0123456789abcdef") == 8;
        if (!well_formed)
            s = wick_fail(WICK_EFORMAT, "%s: __metadata__ " SUM_KEY " = '%s' is not of the form crc32:<8 hex digits>",
                          path, wick_escape(want, e, sizeof e));
        else if (strcmp(got, want) != 0 && !bypass)
            s = wick_fail(WICK_EFORMAT, "%s: checksum mismatch (%s, the file says %s): the file is corrupted or "
                          "was edited", path, got, want);
    } else {
        snprintf(got, sizeof got, "%08lx", checksum_legacy(list, n));
        if (strcmp(got, legacy) != 0 && !bypass)
            s = wick_fail(WICK_EFORMAT, "%s: checksum mismatch (crc32 %s, the file says %s): the file is corrupted",
                          path, got, wick_escape(legacy, e, sizeof e));
    }
    wick_free(list);
    return s;
}
