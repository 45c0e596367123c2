/* core.h — what every part of wick shares internally: errors, allocation with
 * failure injection, small helpers.  Not installed. */
#ifndef WICK_CORE_H
#define WICK_CORE_H

#include "wick.h"
#include <stdarg.h>
#include <stdlib.h>

/* Records a one-line message for wick_last_error() and returns s, so that a
 * failure reads:  return wick_fail(WICK_EFORMAT, "%s: bad magic", path); */
wick_status wick_fail(wick_status s, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Allocation goes through these so that tests can inject failure at the Nth
 * call (wick_alloc_fail_at).  wick_malloc never returns memory for n == 0
 * unless asked: it returns a unique small block. */
void *wick_malloc(size_t n);
void *wick_calloc(size_t count, size_t size);
void *wick_realloc(void *p, size_t n);
void *wick_aligned_alloc(size_t n);     /* 64-byte aligned, free with wick_free */
void *wick_huge_alloc(size_t n);        /* 2 MiB aligned, huge pages advised; wick_free */
void  wick_free(void *p);

/* Test hook: the n-th allocation from now fails (n >= 1); 0 disables.
 * Returns how many allocations have been made since the last call. */
long  wick_alloc_fail_at(long n);
long  wick_alloc_count(void);

/* Checked size arithmetic: 0 on overflow, else 1 and *out set. */
static inline int wick_mul_size(size_t a, size_t b, size_t *out) {
    return !__builtin_mul_overflow(a, b, out);
}
static inline int wick_add_size(size_t a, size_t b, size_t *out) {
    return !__builtin_add_overflow(a, b, out);
}

#define WICK_ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

#endif
