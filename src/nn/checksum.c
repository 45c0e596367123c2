/* checksum.c — the integrity check of wick's files: CRC-32 (zlib) over the
 * metadata and the tensors, kept in __metadata__["checksum"], so that a
 * corrupted checkpoint is refused on load even when its structure is intact,
 * and an edited counter, learning rate or activation is refused as well.
 *
 * The canonical stream (version 1), fed to one running CRC:
 *   "wick-checksum-1" NUL
 *   for each key of nn_meta_keys without NN_KEY_LATER (sorted, the checksum keys excluded):
 *     1 byte present (1) or absent (0), u64 length + key, and if present
 *     u64 length + value
 *   for each NN_KEY_LATER key present, in table order: u64 length + key,
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
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#define SUM_KEY "checksum"
#define LEGACY_KEY "crc32"

#define F(x) offsetof(nn_ckpt_meta, x)
#define NOF NN_KEY_NOFIELD
#define LATER NN_KEY_LATER
#define OPT NN_KEY_OPTIONAL
#define I32 2147483647.0
#define I64 9223372036854775807.0

/* Every key wick writes: first those of checksum version 1, sorted (strcmp),
 * then the later ones in the order they were added (layer specs, the random
 * layers' step, the optimiser and schedule of a checkpoint, the inputs'
 * standardisation), so that a file without them keeps the checksum it was
 * written with; one deleted from a file that had it is a mismatch like any
 * other edit.  Ranges as read_state (train.c) needs them before its checks
 * between fields. */
const nn_meta_key nn_meta_keys[] = {
    {"act", NN_KEY_STR, 0, 0, 0, NOF},
    {"act_slope", NN_KEY_REAL, 0, 0, 0, NOF},
    {"arch", NN_KEY_STR, 0, 0, 0, NOF},
    {"bad_epochs", NN_KEY_INT, 0, 0, I32, F(bad_epochs)},
    {"batch", NN_KEY_INT, 0, 1, I32, F(batch)},
    {"batch_in_epoch", NN_KEY_INT, 0, 0, I64, F(batch_in_epoch)},
    {"best_epoch", NN_KEY_INT, 0, 0, I32, F(best_epoch)},
    {"best_val", NN_KEY_REAL, NN_KEY_INF, 0, 0, F(best_val)},
    {"epoch", NN_KEY_INT, 0, 0, I32 - 1, F(epoch)},
    {"epoch_loss_sum", NN_KEY_REAL, 0, 0, 0, F(epoch_loss_sum)},
    {"epoch_steps", NN_KEY_INT, 0, 0, I64, F(epoch_steps)},
    {"first_loss", NN_KEY_REAL, NN_KEY_NAN, 0, 0, F(first_loss)},
    {"format", NN_KEY_STR, 0, 0, 0, NOF},
    {"init", NN_KEY_STR, 0, 0, 0, NOF},
    {"loss", NN_KEY_STR, 0, 0, 0, NOF},
    {"optimizer_steps", NN_KEY_STR, 0, 0, 0, F(optimizer_steps)},
    {"samples", NN_KEY_REAL, 0, 0, 0, F(samples)},
    {"sched_bad_epochs", NN_KEY_INT, 0, 0, I32, F(sched_bad_epochs)},
    {"sched_best", NN_KEY_REAL, NN_KEY_INF, -INFINITY, 0, F(sched_best)},
    {"sched_lr", NN_KEY_REAL, 0, 0, 0, F(sched_lr)},
    {"seconds", NN_KEY_REAL, 0, 0, 0, F(seconds)},
    {"seed", NN_KEY_U64, 0, 0, 0, F(seed)},
    {"shuffle", NN_KEY_INT, 0, 0, 1, F(shuffle)},
    {"step", NN_KEY_INT, 0, 0, I64, F(step)},
    {"train_samples", NN_KEY_INT, 0, 1, I64, F(train_samples)},
    {"wick_version", NN_KEY_STR, 0, 0, 0, NOF},
    {"graph_step", NN_KEY_U64, LATER | OPT, 0, 0, F(graph_step)},
    {"spec", NN_KEY_STR, LATER, 0, 0, NOF},
    {"optimizer", NN_KEY_STR, LATER | OPT, 0, 0, F(optimizer)},
    {"lr", NN_KEY_REAL, LATER | OPT, -INFINITY, 0, F(lr)},
    {"momentum", NN_KEY_REAL, LATER | OPT, -INFINITY, 0, F(momentum)},
    {"weight_decay", NN_KEY_REAL, LATER | OPT, -INFINITY, 0, F(weight_decay)},
    {"schedule", NN_KEY_STR, LATER | OPT, 0, 0, F(schedule)},
    {"label_smoothing", NN_KEY_REAL, LATER | OPT, -INFINITY, 0, F(label_smoothing)},
    {"input", NN_KEY_STR, LATER | OPT, 0, 0, F(input)},
    {"precision", NN_KEY_STR, LATER | OPT, 0, 0, F(precision)},
};
const int nn_meta_nkeys = (int)WICK_ARRAY_LEN(nn_meta_keys);

void nn_ckpt_meta_write(nn_meta *meta, const nn_ckpt_meta *v) {
    for (int i = 0; i < nn_meta_nkeys; i++) {
        const nn_meta_key *k = &nn_meta_keys[i];
        if (k->off == NOF) continue;
        const char *p = (const char *)v + k->off;
        switch (k->type) {
        case NN_KEY_STR:
            if (*(const char *const *)p) nn_meta_set(meta, k->name, *(const char *const *)p);
            break;
        case NN_KEY_INT: nn_meta_setf(meta, k->name, "%lld", (long long)*(const int64_t *)p); break;
        case NN_KEY_U64: nn_meta_setf(meta, k->name, "%llu", (unsigned long long)*(const uint64_t *)p); break;
        case NN_KEY_REAL: nn_meta_setf(meta, k->name, "%.17g", *(const double *)p); break;
        }
    }
}

wick_status nn_ckpt_meta_read(const wick_st_file *f, const char *path, nn_ckpt_meta *v) {
    char e[96];
    for (int i = 0; i < nn_meta_nkeys; i++) {
        const nn_meta_key *k = &nn_meta_keys[i];
        if (k->off == NOF) continue;
        const char *s = wick_st_meta(f, k->name);
        if (!s) {
            if (k->flags & OPT) continue;
            return wick_fail(WICK_EFORMAT, "%s: __metadata__ lacks '%s' (not a complete wick checkpoint)", path, k->name);
        }
        char *p = (char *)v + k->off;
        const char *why = NULL;
        char buf[128];
        switch (k->type) {
        case NN_KEY_STR: *(const char **)p = s; break;
        case NN_KEY_INT: {
            int64_t x;
            if (!wick_parse_i64(s, (int64_t)k->lo, k->hi >= I64 ? INT64_MAX : (int64_t)k->hi, &x)) {
                snprintf(buf, sizeof buf, "is not an integer in [%lld, %lld]", (long long)k->lo,
                         k->hi >= I64 ? (long long)INT64_MAX : (long long)k->hi);
                why = buf;
            }
            else *(int64_t *)p = x;
            break;
        }
        case NN_KEY_U64:
            if (!wick_parse_u64(s, (uint64_t *)p)) why = "is not an unsigned 64-bit integer";
            break;
        case NN_KEY_REAL: {
            double x = 0;
            int inf = k->flags & NN_KEY_INF, nan_ok = k->flags & NN_KEY_NAN;
            if (!wick_parse_f64(s, 1, &x) || (isnan(x) && !nan_ok) || (isinf(x) && !(inf && x > 0)) || x < k->lo) {
                snprintf(buf, sizeof buf, "is not a number >= %g%s%s", k->lo, inf ? " or inf" : "", nan_ok ? " or nan" : "");
                why = buf;
            }
            else *(double *)p = x;
            break;
        }
        }
        if (why) return wick_fail(WICK_EFORMAT, "%s: __metadata__ %s = '%s' %s", path, k->name, wick_escape(s, e, sizeof e), why);
    }
    return WICK_OK;
}

static int bypass;
void nn_checksum_bypass(int on) { bypass = on; }

int nn_meta_known(const char *key) {
    for (int i = 0; i < nn_meta_nkeys; i++)
        if (!strcmp(nn_meta_keys[i].name, key)) return 1;
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
    for (int i = 0; i < nn_meta_nkeys; i++) {   /* version 1's keys, present or not */
        if (nn_meta_keys[i].flags & NN_KEY_LATER) continue;
        const char *v = get(src, nn_meta_keys[i].name);
        unsigned char present = v != NULL;
        c = crc32(c, &present, 1);
        c = crc_str(c, nn_meta_keys[i].name);
        if (v) c = crc_str(c, v);
    }
    for (int i = 0; i < nn_meta_nkeys; i++) {   /* the later ones where present */
        if (!(nn_meta_keys[i].flags & NN_KEY_LATER)) continue;
        const char *v = get(src, nn_meta_keys[i].name);
        if (!v) continue;
        c = crc_str(c, nn_meta_keys[i].name);
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
