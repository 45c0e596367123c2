/* model_io.h — shared by model_io.c and train.c: metadata lists, parameter
 * tensors, checksums. */
#ifndef WICK_NN_MODEL_IO_H
#define WICK_NN_MODEL_IO_H

#include "wick.h"
#include <stdarg.h>

#define NN_META_MAX 48

typedef struct {
    int n;
    char key[NN_META_MAX][32];
    char val[NN_META_MAX][1024];
} nn_meta;

void nn_meta_set(nn_meta *meta, const char *key, const char *value);
void nn_meta_setf(nn_meta *meta, const char *key, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* The architecture keys every model file carries. */
void nn_model_meta(const wick_mlp *m, nn_meta *meta);

/* The 2L parameter tensors in state_dict order (float64 models converted
 * into *scratch, which the caller frees with wick_free). */
wick_status nn_param_tensors(wick_mlp *m, wick_st_tensor *t, float **scratch);
/* Adds the "crc32" key over the tensors' bytes, then writes atomically. */
wick_status nn_write(const char *path, const wick_st_tensor *t, int n, const nn_meta *meta);
/* Checks names, shapes, dtypes of the model's tensors under `prefix` ("" or
 * e.g. "optimizer.best."), refuses unknown tensors (prefix ""; the
 * "optimizer." ones aside), then copies. */
wick_status nn_load_params(wick_mlp *m, const wick_st_file *f, const char *path, const char *prefix);
/* Where the file carries a "crc32", the tensors' bytes must match it. */
wick_status nn_verify_checksum(const wick_st_file *f, const char *path);

#endif
