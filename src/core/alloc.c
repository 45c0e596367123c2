/* alloc.c — allocation with failure injection, so that every reader, model
 * construction and checkpoint save can be tested against malloc failing at
 * the 1st, 2nd, 3rd, ... call. */
#include "core.h"
#include <stdatomic.h>
#include <sys/mman.h>

static atomic_long alloc_calls;
static atomic_long fail_at;   /* 0: never fail; else the call number that fails */

long wick_alloc_fail_at(long n) {
    long c = atomic_exchange(&alloc_calls, 0);
    atomic_store(&fail_at, n);
    return c;
}

long wick_alloc_count(void) { return atomic_load(&alloc_calls); }

static int should_fail(void) {
    long c = atomic_fetch_add(&alloc_calls, 1) + 1;
    long f = atomic_load(&fail_at);
    return f > 0 && c == f;
}

void *wick_malloc(size_t n) {
    if (should_fail()) return NULL;
    return malloc(n ? n : 1);
}

void *wick_calloc(size_t count, size_t size) {
    if (should_fail()) return NULL;
    return calloc(count ? count : 1, size ? size : 1);
}

void *wick_realloc(void *p, size_t n) {
    if (should_fail()) return NULL;
    return realloc(p, n ? n : 1);
}

static void *aligned(size_t align, size_t n) {
    void *p = NULL;
    return posix_memalign(&p, align, n ? n : align) == 0 ? p : NULL;
}

void *wick_aligned_alloc(size_t n) {
    if (should_fail()) return NULL;
    return aligned(64, n);
}

/* Large working buffers the fast path streams every step (packed weights,
 * activations): aligned to 2 MiB and marked for transparent huge pages,
 * where the kernel allows it, so that a pass over them costs a TLB entry
 * per 2 MiB rather than per 4 KiB.  Freed with wick_free. */
void *wick_huge_alloc(size_t n) {
    if (should_fail()) return NULL;
    const size_t huge = (size_t)2 << 20;
    if (n < huge / 2) return aligned(64, n);
    n = (n + huge - 1) / huge * huge;
    void *p = aligned(huge, n);
    if (!p) return NULL;
#ifdef MADV_HUGEPAGE
    madvise(p, n, MADV_HUGEPAGE);   /* advice only: failure changes nothing */
#endif
    return p;
}

void wick_free(void *p) { free(p); }
