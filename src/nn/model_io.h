/* model_io.h — shared by model_io.c, checksum.c and train.c (and the tests
 * and fuzz harnesses): metadata lists, parameter tensors, checksums, and the
 * loaders over an already parsed file, so that a harness can feed them bytes
 * from memory. */
#ifndef WICK_NN_MODEL_IO_H
#define WICK_NN_MODEL_IO_H

#include "wick.h"
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#define NN_META_MAX 48

typedef struct {
    int n;
    char key[NN_META_MAX][32];
    char val[NN_META_MAX][4096];   /* a layer spec of many layers is long */
} nn_meta;

void nn_meta_set(nn_meta *meta, const char *key, const char *value);
/* Formats in the C locale whatever the caller's ("%.17g" writes a point). */
void nn_meta_setf(nn_meta *meta, const char *key, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* The architecture keys every model file carries. */
void nn_model_meta(const wick_mlp *m, nn_meta *meta);

/* The model's m->nt tensors (parameters and batch norm state) in state_dict
 * order, shaped as files hold them (float64 models converted into *scratch,
 * which the caller frees with wick_free). */
wick_status nn_param_tensors(wick_mlp *m, wick_st_tensor *t, float **scratch);

/* ---- checksums (checksum.c) ---------------------------------------------
 * __metadata__["checksum"] = "crc32:xxxxxxxx": zlib's CRC-32 over a canonical
 * serialisation of every metadata key wick knows (nn_meta_known; all but the
 * checksum itself, sorted by name, absent keys marked as absent) and every
 * tensor in the file (sorted by name: name, dtype, shape, bytes).  Required
 * to resume from a checkpoint; verified where present when weights are
 * loaded (a PyTorch file has none); the older "crc32" key (tensors only) is
 * still verified when weights are loaded, and not enough to resume. */

/* Adds the "checksum" key, then writes atomically.  Every key of meta must be
 * one of nn_meta_known (WICK_EINVAL otherwise: the checksum would not cover
 * it). */
wick_status nn_write(const char *path, const wick_st_tensor *t, int n, const nn_meta *meta);
/* Verifies the file's checksum where it has one; refuses a file without one
 * when `required` (resuming: a checkpoint's counters drive the run, while
 * loading only weights needs no more trust than a PyTorch file gets). */
wick_status nn_verify_checksum(const wick_st_file *f, const char *path, int required);
/* 1 when key is one the checksum covers. */
int nn_meta_known(const char *key);
/* Test hook for the fuzz harnesses: 1 makes a checksum mismatch pass (the
 * checksum must still be present and well formed), so that mutated metadata
 * reaches the checks behind it.  0 (the default) restores. */
void nn_checksum_bypass(int on);

/* ---- the metadata keys (checksum.c): one table -------------------------
 * Every key wick writes, once: its place in the checksum's canonical stream,
 * its type and range, and for a checkpoint's own fields where the value lives
 * in nn_ckpt_meta.  The checksum, nn_meta_known, the checkpoint writer
 * (nn_ckpt_meta_write) and reader (nn_ckpt_meta_read) are generated from it;
 * the checks between fields (step = epoch x batches + batch_in_epoch, ...)
 * stay by hand in train.c. */
typedef enum { NN_KEY_STR, NN_KEY_INT, NN_KEY_U64, NN_KEY_REAL } nn_key_type;
enum {
    NN_KEY_LATER = 1,      /* added after checksum version 1: covered where present, in table order */
    NN_KEY_OPTIONAL = 2,   /* a checkpoint may lack it (older files): the field keeps its value */
    NN_KEY_INF = 4,        /* REAL: +inf allowed */
    NN_KEY_NAN = 8         /* REAL: nan allowed */
};
#define NN_KEY_NOFIELD ((size_t)-1)   /* a model key (nn_model_meta), checked by hand */
typedef struct {
    const char *name;
    nn_key_type type;
    int flags;
    double lo, hi;         /* INT: [lo, hi]; REAL: >= lo */
    size_t off;            /* offsetof in nn_ckpt_meta, or NN_KEY_NOFIELD */
} nn_meta_key;
extern const nn_meta_key nn_meta_keys[];
extern const int nn_meta_nkeys;

/* A checkpoint's own fields, as written and as read (strings point into the
 * file's metadata, or the writer's). */
typedef struct {
    uint64_t seed, graph_step;
    int64_t shuffle, batch, train_samples, step, epoch, batch_in_epoch, epoch_steps, best_epoch, bad_epochs,
        sched_bad_epochs;
    double epoch_loss_sum, first_loss, best_val, sched_lr, sched_best, seconds, samples, lr, momentum,
        weight_decay, label_smoothing;
    const char *optimizer_steps, *optimizer, *schedule, *input, *precision;
} nn_ckpt_meta;

/* Each field of v under its key, formatted by its type (a NULL string: not
 * written). */
void nn_ckpt_meta_write(nn_meta *meta, const nn_ckpt_meta *v);
/* Each field from f's metadata, parsed strictly by its type and range; the
 * first key that is missing (and not optional) or malformed is reported,
 * naming the key and the value.  Optional keys absent keep v's values. */
wick_status nn_ckpt_meta_read(const wick_st_file *f, const char *path, nn_ckpt_meta *v);

/* ---- loading (model_io.c) ---------------------------------------------- */

/* Checks names, shapes, dtypes and finiteness of the model's tensors under
 * `prefix` ("" or e.g. "optimizer.best."), and refuses unknown tensors
 * (prefix ""; the "optimizer." ones aside); copies nothing. */
wick_status nn_check_params(wick_mlp *m, const wick_st_file *f, const char *path, const char *prefix);
/* Copies what nn_check_params accepted into the model. */
void nn_copy_params(wick_mlp *m, const wick_st_file *f, const char *prefix);
/* Both, so a refused file changes nothing. */
wick_status nn_load_params(wick_mlp *m, const wick_st_file *f, const char *path, const char *prefix);
/* The first non-finite value of v[0..n), named as tensor `name` of path;
 * WICK_OK when all are finite. */
wick_status nn_check_finite(const float *v, size_t n, const char *path, const char *name);
/* wick_mlp_config_from_file over a parsed file (checksum verified first). */
wick_status nn_config_from_st(const wick_st_file *f, const char *path, wick_mlp_config *c, int *has_act);
/* wick_net_spec_from_file over a parsed file. */
wick_status nn_spec_from_st(const wick_st_file *f, const char *path, const char *given, wick_spec **out,
                            wick_mlp_config *c);
/* wick_trainer_resume over a parsed file. */
wick_status nn_trainer_resume_st(wick_trainer *t, const wick_st_file *f, const char *path);

#endif
