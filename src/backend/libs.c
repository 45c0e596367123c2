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
#include <string.h>
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

wick_status wick_precision_supported(wick_precision p) {
    if (p == WICK_PRECISION_F32) return WICK_OK;
    if (p != WICK_PRECISION_BF16) return wick_fail(WICK_EINVAL, "unknown precision %d", (int)p);
    const char *has = wick_cpu_bf16();
    if (!*has)
        return wick_fail(WICK_EUNSUPPORTED, "bf16 needs a CPU with AMX (amx_bf16) or AVX512-BF16 "
                         "(avx512_bf16), and this one has neither: train in float32");
    /* wick's bf16 kernel is AVX512-BF16's (kernel_bf16.c): AMX alone, which
       no machine at hand had to test a kernel on, is not used */
    if (!strstr(has, "avx512_bf16"))
        return wick_fail(WICK_EUNSUPPORTED, "this CPU has %s but not avx512_bf16, which wick's bf16 "
                         "kernel uses: train in float32", has);
    if (!wick_kern_bf16_ok())
        return wick_fail(WICK_EUNSUPPORTED, "this CPU reports avx512_bf16 but lacks AVX-512 F, BW or VL, "
                         "which wick's bf16 kernel also uses: train in float32");
    return WICK_OK;
}
