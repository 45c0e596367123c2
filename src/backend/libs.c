/* libs.c — what wick tells and asks the third-party libraries it links as a
 * whole: the thread count (OpenMP's, kept in core, and OpenBLAS's) and their
 * versions for a run's first line.  Here rather than in src/core, which
 * includes no third-party header. */
#include "backend/backend.h"
#include "backend/kernel.h"
#include "core/core.h"
#include <cblas.h>
#include <dnnl.h>
#include <jansson.h>
#include <stdio.h>
#include <zlib.h>

void wick_set_threads(int n) {
    /* oneDNN's OpenMP build follows omp_set_num_threads; OpenBLAS keeps a
       count of its own (its pthread build, OPENBLAS_VARIANT=pthread) */
    openblas_set_num_threads(wick_core_set_threads(n));
}

const char *wick_library_versions(void) {
    static char buf[256];
    const dnnl_version_t *d = dnnl_version();
    snprintf(buf, sizeof buf, "%s; oneDNN %d.%d.%d; zlib %s; jansson %s",
             openblas_get_config(), d->major, d->minor, d->patch, zlibVersion(),
             jansson_version_str());
    return buf;
}

const char *wick_cpu_bf16(void) { return wick_kern_bf16_features(); }
