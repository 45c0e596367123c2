/* fuzz_csv.c — libFuzzer harness for the CSV reader (from memory), with and
 * without non-finite values allowed.  Build and run: fuzz/run.sh */
#include "io/io.h"
#include <math.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    for (int allow = 0; allow < 2; allow++) {
        double *v = NULL;
        size_t r = 7, c = 7, first = 0;
        wick_status s = wick_csv_read_mem("fuzz.csv", (const char *)data, size, allow, &v, &r, &c, &first);
        /* again with the k-th allocation failing: same outcome or ENOMEM */
        double *v2 = NULL;
        size_t r2, c2;
        wick_alloc_fail_at(1 + (size ? data[size - 1] % 6 : 0));
        wick_status s2 = wick_csv_read_mem("fuzz.csv", (const char *)data, size, allow, &v2, &r2, &c2, NULL);
        wick_alloc_fail_at(0);
        if ((s2 != s && s2 != WICK_ENOMEM) || (s2 != WICK_OK && v2)) __builtin_trap();
        wick_free(v2);
        if (s != WICK_OK) {
            if (v || r || c || !wick_last_error()[0]) __builtin_trap();
            continue;
        }
        if (!r || !c || first < 1 || first > 2) __builtin_trap();
        volatile double sink = 0;
        for (size_t i = 0; i < r * c; i++) {
            if (!allow && !isfinite(v[i])) __builtin_trap();
            sink += v[i];
        }
        (void)sink;
        wick_free(v);
    }
    return 0;
}
