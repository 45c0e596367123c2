/* cli.c — helpers shared by the command files. */
#include "cli.h"
#include <errno.h>
#include <stdarg.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <getopt.h>

const char *cli_command = "wick";

/* The CLI's own last error, which cli_fail prints before the library's. */
static char pending[4096];
static int has_pending;

wick_status cli_error(wick_status s, const char *fmt, ...) {
    char buf[sizeof pending];   /* fmt's arguments may be cli_last_error() itself */
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    memcpy(pending, buf, sizeof pending);
    has_pending = 1;
    return s;
}

const char *cli_last_error(void) { return has_pending ? pending : wick_last_error(); }

int cli_fail(const char *cmd, wick_status s) {
    const char *m = cli_last_error();
    fprintf(stderr, "wick %s: %s\n", cmd, *m ? m : wick_strerror(s));
    has_pending = 0;
    return s == WICK_EDIVERGED ? EXIT_DIVERGED : s == WICK_EINTERRUPTED ? EXIT_INTERRUPTED : EXIT_FAIL;
}

int cli_default_init(const char *cmd, wick_act act, double *cb, double *cw) {
    wick_critical_info crit;
    wick_status cst = wick_critical(act, &crit);
    if (cst && cst != WICK_ENUMERIC) return cli_fail(cmd, cst);
    if (isnan(*cb)) *cb = cst ? 0.0 : crit.cb;
    if (isnan(*cw)) *cw = cst ? 1.0 : crit.cw;
    return EXIT_OK;
}

int cli_double(const char *flag, const char *s, double *out) {
    char *end;
    errno = 0;
    double v = strtod(s, &end);   /* the C locale's "0.5": the CLI never calls setlocale */
    if (end == s || *end || errno == ERANGE || !isfinite(v)) {
        fprintf(stderr, "%s: %s expects a finite number, got '%s'\n", cli_command, flag, s);
        return 0;
    }
    *out = v;
    return 1;
}

int cli_double_in(const char *flag, const char *s, double lo, double hi, int open_lo, int open_hi, double *out) {
    double v;
    if (!cli_double(flag, s, &v)) return 0;
    if (v < lo || v > hi || (open_lo && v == lo) || (open_hi && v == hi)) {
        char range[96];
        if (isinf(hi)) snprintf(range, sizeof range, "%s %g", open_lo ? ">" : ">=", lo);
        else snprintf(range, sizeof range, "in %c%g, %g%c", open_lo ? '(' : '[', lo, hi, open_hi ? ')' : ']');
        fprintf(stderr, "%s: %s expects a number %s, got '%s'\n", cli_command, flag, range, s);
        return 0;
    }
    *out = v;
    return 1;
}

int cli_int(const char *flag, const char *s, long lo, long hi, long *out) {
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (end == s || *end || errno == ERANGE || v < lo || v > hi) {
        fprintf(stderr, "%s: %s expects an integer in [%ld, %ld], got '%s'\n", cli_command, flag, lo, hi, s);
        return 0;
    }
    *out = v;
    return 1;
}

int cli_bad_flag(const char *cmd, char **argv) {
    fprintf(stderr, "wick %s: unknown or incomplete flag '%s' (see wick %s --help)\n", cmd, argv[optind - 1], cmd);
    return EXIT_USAGE;
}

int cli_extra_argument(const char *cmd, char **argv) {
    fprintf(stderr, "wick %s: unexpected argument '%s' (see wick %s --help)\n", cmd, argv[optind], cmd);
    return EXIT_USAGE;
}

json_t *cli_json_init(wick_act act, double cb, double cw) {
    json_t *root = json_object();
    json_object_set_new(root, "activation", json_string(wick_act_name(act)));
    json_object_set_new(root, "cb", json_real(cb));
    json_object_set_new(root, "cw", json_real(cw));
    return root;
}

json_t *cli_jnum(double v) { return isfinite(v) ? json_real(v) : json_null(); }

int cli_write_json(FILE *f, const char *cmd, const json_t *o, int digits) {
    char *s = json_dumps(o, JSON_COMPACT | JSON_REAL_PRECISION(digits));
    if (!s) {
        fprintf(stderr, "wick %s: out of memory for the JSON\n", cmd);
        return EXIT_FAIL;
    }
    int bad = fprintf(f, "%s\n", s) < 0;
    bad |= fflush(f) != 0;
    free(s);
    if (bad) {
        if (f != stderr) fprintf(stderr, "wick %s: writing the JSON failed: %s\n", cmd, strerror(errno));
        return EXIT_FAIL;
    }
    return EXIT_OK;
}
