/* csv_stub_tmp.c — TEMPORARY minimal wick_csv_read so that `wick theory
 * --inputs` links and can be tested on this branch before src/io/csv.c is
 * merged.  Delete before the final commit (the real reader lives on main). */
#include "core/core.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

wick_status wick_csv_read(const char *path, int allow_nonfinite, double **out, size_t *rows,
                          size_t *cols) {
    FILE *f = fopen(path, "r");
    if (!f) return wick_fail(WICK_EIO, "%s: cannot open", path);
    size_t cap = 64, n = 0, nc = 0, r = 0;
    double *v = malloc(cap * sizeof *v);
    char line[65536];
    while (fgets(line, sizeof line, f)) {
        size_t c = 0;
        char *p = line;
        if (*p == '\n' || !*p) continue;
        for (;;) {
            char *e;
            double x = strtod(p, &e);
            if (e == p) { free(v); fclose(f); return wick_fail(WICK_EFORMAT, "%s: line %zu: not a number", path, r + 1); }
            if (n == cap) v = realloc(v, (cap *= 2) * sizeof *v);
            v[n++] = x; c++;
            p = e;
            if (*p == ',') { p++; continue; }
            break;
        }
        if (r == 0) nc = c;
        else if (c != nc) { free(v); fclose(f); return wick_fail(WICK_EFORMAT, "%s: line %zu: %zu fields, expected %zu", path, r + 1, c, nc); }
        r++;
    }
    fclose(f);
    (void)allow_nonfinite;
    if (r == 0) { free(v); return wick_fail(WICK_EFORMAT, "%s: empty", path); }
    double *o = wick_malloc(n * sizeof *o);
    memcpy(o, v, n * sizeof *o);
    free(v);
    *out = o; *rows = r; *cols = nc;
    return WICK_OK;
}
