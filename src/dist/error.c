/* error.c — src/dist's error helper.  src/dist is part of the wick program,
 * not of libwick, so it reaches the library through include/wick.h alone
 * (the program links against libwick.so, which hides the library's internal
 * wick_fail); its messages go where the program's other errors go, the CLI's
 * cli_error, so `wick train` reports them as it reports its own. */
#include "dist/dist.h"
#include <stdarg.h>
#include <stdio.h>

wick_status cli_error(wick_status s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));   /* tools/cli.h */

wick_status wick_dist_error(wick_status s, const char *fmt, ...) {
    char buf[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    return cli_error(s, "%s", buf);
}
