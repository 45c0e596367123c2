/* threads.c — one thread count for OpenMP and the BLAS: --threads, else
 * OMP_NUM_THREADS, else the core count. */
#include "core.h"
#include <cblas.h>
#include <dnnl.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
#include <zlib.h>
#include <jansson.h>

static int threads_set;

static int default_threads(void) {
    const char *e = getenv("OMP_NUM_THREADS");
    if (e && atoi(e) > 0) return atoi(e);
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (int)n : 1;
}

void wick_set_threads(int n) {
    threads_set = n > 0 ? n : default_threads();
    omp_set_num_threads(threads_set);
    openblas_set_num_threads(threads_set);
}

int wick_threads(void) {
    if (!threads_set) wick_set_threads(0);
    return threads_set;
}

const char *wick_version(void) { return WICK_VERSION; }

const char *wick_library_versions(void) {
    static char buf[256];
    const dnnl_version_t *d = dnnl_version();
    snprintf(buf, sizeof buf, "%s; oneDNN %d.%d.%d; zlib %s; jansson %s",
             openblas_get_config(), d->major, d->minor, d->patch, zlibVersion(),
             jansson_version_str());
    return buf;
}
