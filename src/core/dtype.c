/* dtype.c — element types, named as safetensors names them. */
#include "core.h"

static const struct { const char *name; size_t size; } dtypes[WICK_DT_COUNT] = {
    [WICK_DT_F32] = {"F32", 4}, [WICK_DT_F64] = {"F64", 8}, [WICK_DT_F16] = {"F16", 2},
    [WICK_DT_BF16] = {"BF16", 2}, [WICK_DT_I64] = {"I64", 8}, [WICK_DT_I32] = {"I32", 4},
    [WICK_DT_I16] = {"I16", 2}, [WICK_DT_I8] = {"I8", 1}, [WICK_DT_U8] = {"U8", 1},
    [WICK_DT_BOOL] = {"BOOL", 1},
};

const char *wick_dtype_name(wick_dtype t) {
    return (unsigned)t < WICK_DT_COUNT ? dtypes[t].name : "unknown";
}

size_t wick_dtype_size(wick_dtype t) {
    return (unsigned)t < WICK_DT_COUNT ? dtypes[t].size : 0;
}
