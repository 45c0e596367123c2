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

/* ---- option tables ------------------------------------------------------ */

static int list_max(const cli_opt *o) {
    long m = o->choices ? strtol(o->choices, NULL, 10) : 16;
    return m > 0 && m <= CLI_LIST_MAX ? (int)m : 16;
}

/* "in [1, 100000]", "> 0", "in [0, 1)", "" (no range) */
static void range_text(char *buf, size_t n, double lo, double hi, int open, int integer) {
    const char *f = integer ? "%.0f" : "%g";
    char a[40], b[40];
    snprintf(a, sizeof a, f, lo);
    snprintf(b, sizeof b, f, hi);
    if (isinf(lo) && isinf(hi)) snprintf(buf, n, "%s", "");
    else if (isinf(hi)) snprintf(buf, n, " %s %s", open & CLI_OPEN_LO ? ">" : ">=", a);
    else if (isinf(lo)) snprintf(buf, n, " %s %s", open & CLI_OPEN_HI ? "<" : "<=", b);
    else snprintf(buf, n, " in %c%s, %s%c", open & CLI_OPEN_LO ? '(' : '[', a, b, open & CLI_OPEN_HI ? ')' : ']');
}

static int in_range(double v, double lo, double hi, int open) {
    return !(v < lo || v > hi || ((open & CLI_OPEN_LO) && v == lo) || ((open & CLI_OPEN_HI) && v == hi));
}

/* one item: a real or an integer in range; 0 on junk */
static int scan_real(const char *s, double lo, double hi, int open, double *out) {
    char *end;
    errno = 0;
    double v = strtod(s, &end);   /* the C locale's "0.5": the CLI never calls setlocale */
    if (end == s || *end || errno == ERANGE || !isfinite(v) || !in_range(v, lo, hi, open)) return 0;
    *out = v;
    return 1;
}

static int scan_int(const char *s, double lo, double hi, long *out) {
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (end == s || *end || errno == ERANGE || !in_range((double)v, lo, hi, 0)) return 0;
    *out = v;
    return 1;
}

static int list_error(const char *flag, const char *s, const char *what, double lo, double hi, int open, int max) {
    char r[96];
    range_text(r, sizeof r, lo, hi, open, what[0] == 'i');
    fprintf(stderr, "%s: %s expects a comma list of at most %d %ss%s, got '%s'\n", cli_command, flag, max, what, r, s);
    return 0;
}

int cli_parse_ints(const char *flag, const char *s, long lo, long hi, int max, cli_ints *out) {
    char buf[1024];
    int k = 0;
    if (strlen(s) >= sizeof buf || max > CLI_LIST_MAX) return list_error(flag, s, "integer", lo, hi, 0, max);
    snprintf(buf, sizeof buf, "%s", s);
    for (char *save, *tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save))
        if (k == max || !scan_int(tok, (double)lo, (double)hi, &out->v[k++])) return list_error(flag, s, "integer", lo, hi, 0, max);
    if (!k) return list_error(flag, s, "integer", lo, hi, 0, max);
    out->n = k;
    return 1;
}

int cli_parse_reals(const char *flag, const char *s, double lo, double hi, int open, int max, cli_reals *out) {
    char buf[1024];
    int k = 0;
    if (strlen(s) >= sizeof buf || max > CLI_LIST_MAX) return list_error(flag, s, "number", lo, hi, open, max);
    snprintf(buf, sizeof buf, "%s", s);
    for (char *save, *tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save))
        if (k == max || !scan_real(tok, lo, hi, open, &out->v[k++])) return list_error(flag, s, "number", lo, hi, open, max);
    if (!k) return list_error(flag, s, "number", lo, hi, open, max);
    out->n = k;
    return 1;
}

/* One value of row o from text s into o->dest; 1, or 0 having said why. */
static int apply(const cli_opt *o, const char *s) {
    char flag[80], r[96];
    snprintf(flag, sizeof flag, "--%s", o->name);
    long v;
    switch (o->type) {
    case CLI_BOOL: *(int *)o->dest = 1; return 1;
    case CLI_STR: *(const char **)o->dest = s; return 1;
    case CLI_INT:
    case CLI_INT32:
        if (!scan_int(s, o->lo, o->hi, &v)) {
            range_text(r, sizeof r, o->lo, o->hi, 0, 1);
            fprintf(stderr, "%s: %s expects an integer%s, got '%s'\n", cli_command, flag, r, s);
            return 0;
        }
        if (o->type == CLI_INT) *(long *)o->dest = v;
        else *(int *)o->dest = (int)v;
        return 1;
    case CLI_U64: {
        char *end;
        errno = 0;
        unsigned long long u = strtoull(s, &end, 10);
        if (end == s || *end || errno || s[0] == '-') {
            fprintf(stderr, "%s: %s expects a non-negative integer, got '%s'\n", cli_command, flag, s);
            return 0;
        }
        *(uint64_t *)o->dest = (uint64_t)u;
        return 1;
    }
    case CLI_REAL: {
        double d;
        if (!scan_real(s, -INFINITY, INFINITY, 0, &d)) {
            fprintf(stderr, "%s: %s expects a finite number, got '%s'\n", cli_command, flag, s);
            return 0;
        }
        if (!in_range(d, o->lo, o->hi, o->open)) {
            range_text(r, sizeof r, o->lo, o->hi, o->open, 0);
            fprintf(stderr, "%s: %s expects a number%s, got '%s'\n", cli_command, flag, r, s);
            return 0;
        }
        *(double *)o->dest = d;
        return 1;
    }
    case CLI_INTS: return cli_parse_ints(flag, s, (long)o->lo, (long)o->hi, list_max(o), o->dest);
    case CLI_REALS: return cli_parse_reals(flag, s, o->lo, o->hi, o->open, list_max(o), o->dest);
    case CLI_CHOICE: {
        const char *c = o->choices;
        for (int i = 0; c && *c; i++) {
            size_t len = strcspn(c, "|");
            if (strlen(s) == len && !strncmp(c, s, len)) {
                *(int *)o->dest = (int)o->lo + i;
                return 1;
            }
            c += len + (c[len] == '|');
        }
        /* "a|b|c" said as "a, b or c" */
        char alts[256] = "";
        size_t at = 0;
        c = o->choices ? o->choices : "";
        for (int i = 0; *c && at < sizeof alts; i++) {
            size_t len = strcspn(c, "|");
            const char *sep = !i ? "" : c[len] ? ", " : " or ";
            at += (size_t)snprintf(alts + at, sizeof alts - at, "%s%.*s", sep, (int)len, c);
            c += len + (c[len] == '|');
        }
        fprintf(stderr, "%s: %s expects %s, got '%s'\n", cli_command, flag, alts, s);
        return 0;
    }
    case CLI_FN: return o->fn(o, s);
    }
    return 0;
}

int cli_act_arg(const cli_opt *o, const char *arg) {
    wick_act a;
    if (wick_act_parse(arg, &a) != WICK_OK) {
        fprintf(stderr, "%s: %s\n", cli_command, wick_last_error());
        return 0;
    }
    *(const char **)o->dest = arg;
    return 1;
}

int cli_row(const cli_cmd *c, const char *name) {
    for (int i = 0; c->opts[i].name; i++)
        if (!strcmp(c->opts[i].name, name)) return i;
    return -1;
}

void cli_usage(const cli_cmd *c, FILE *f) {
    int col = c->col ? c->col : 19;
    fputs(c->usage, f);
    for (const cli_opt *o = c->opts; o->name; o++) {
        if (!*o->name) {   /* a heading */
            fprintf(f, "%s\n", o->help);
            continue;
        }
        char head[64];
        if (o->type == CLI_BOOL) snprintf(head, sizeof head, "--%s", o->name);
        else snprintf(head, sizeof head, "--%s %s", o->name, o->meta ? o->meta : "X");
        int w = col - 3, at = col;   /* at: the column the text has reached */
        fprintf(f, "  %-*s", w, head);
        if ((int)strlen(head) >= w) fprintf(f, "\n%*s", col, "");
        else fputc(' ', f);
        for (const char *h = o->help ? o->help : ""; *h; h++) {
            fputc(*h, f);
            at++;
            if (*h == '\n') { fprintf(f, "%*s", col, ""); at = col; }
        }
        const char *def = o->def && *o->def == '=' ? o->def + 1 : o->def;
        if (def && c->brackets) fprintf(f, "%*s[%s]", at < 63 ? 65 - at : 2, "", def);
        else if (def) fprintf(f, "%s(default %s)", at == col ? "" : " ", def);
        fputc('\n', f);
    }
    fprintf(f, "  %-*s this text\n", col - 3, "--help");
    if (c->tail) fputs(c->tail, f);
}

int cli_parse(const cli_cmd *c, int argc, char **argv, const char **given) {
    enum { MAXOPT = 128 };
    struct option lo[MAXOPT + 2];
    int n = 0;
    int m = 0;   /* getopt's rows: the table's less its headings */
    for (; c->opts[n].name; n++) {
        if (n == MAXOPT) { fprintf(stderr, "wick %s: too many flags in the table\n", c->name); return EXIT_FAIL; }
        if (!*c->opts[n].name) continue;
        lo[m++] = (struct option){c->opts[n].name, c->opts[n].type == CLI_BOOL ? no_argument : required_argument,
                                  NULL, 1000 + n};
    }
    lo[m] = (struct option){"help", no_argument, NULL, 999};
    lo[m + 1] = (struct option){0, 0, 0, 0};
    /* the defaults first, from the same text --help shows */
    for (int i = 0; i < n; i++)
        if (*c->opts[i].name && c->opts[i].def && *c->opts[i].def != '=' && c->opts[i].type != CLI_BOOL && !apply(&c->opts[i], c->opts[i].def)) {
            fprintf(stderr, "wick %s: the default of --%s does not parse (a bug)\n", c->name, c->opts[i].name);
            return EXIT_FAIL;
        }
    optind = 1;
    opterr = 0;   /* cli_bad_flag says it in one line */
    int k;
    while ((k = getopt_long(argc, argv, "", lo, NULL)) != -1) {
        if (k == 999) { cli_usage(c, stdout); return EXIT_OK; }
        if (k < 1000 || k >= 1000 + n) return cli_bad_flag(c->name, argv);
        const cli_opt *o = &c->opts[k - 1000];
        if (given) given[k - 1000] = optarg ? optarg : "";
        if (!apply(o, optarg)) return EXIT_USAGE;
    }
    if (optind < argc) return cli_extra_argument(c->name, argv);
    return CLI_GO;
}

/* ---- shared writers and loaders ---------------------------------------- */

double cli_accuracy(const double *z, const int32_t *y, size_t n, size_t nout) {
    size_t ok = 0;
    for (size_t i = 0; i < n; i++) {
        int best = 0;
        if (nout == 1) best = z[i] > 0;
        else
            for (size_t c = 1; c < nout; c++) if (z[i * nout + c] > z[i * nout + best]) best = (int)c;
        ok += best == y[i];
    }
    return n ? (double)ok / (double)n : 0;
}

json_t *cli_json_matrix(const double *m, size_t r, size_t c) {
    json_t *a = json_array();
    for (size_t i = 0; i < r; i++) {
        json_t *row = json_array();
        for (size_t j = 0; j < c; j++) json_array_append_new(row, cli_jnum(m[i * c + j]));
        json_array_append_new(a, row);
    }
    return a;
}

int cli_csv_rows(const char *cmd, const char *path, size_t max, double **x, size_t *rows, size_t *cols) {
    double *v = NULL;
    wick_status st = wick_csv_read(path, 0, &v, rows, cols);
    if (st) return cli_fail(cmd, st);
    if (max && *rows > max) {
        wick_free(v);
        fprintf(stderr, "wick %s: %s: %zu inputs, at most %zu\n", cmd, path, *rows, max);
        return EXIT_FAIL;
    }
    /* a copy the caller frees with free(), not the library's wick_free */
    *x = malloc(sizeof(double) * (*rows) * (*cols) + 1);
    if (!*x) { wick_free(v); fprintf(stderr, "wick %s: out of memory\n", cmd); return EXIT_FAIL; }
    memcpy(*x, v, sizeof(double) * (*rows) * (*cols));
    wick_free(v);
    return EXIT_OK;
}

int cli_csv_gram(const char *cmd, const char *path, size_t max, double **gram, size_t *n) {
    double *x;
    size_t rows, cols;
    int rc = cli_csv_rows(cmd, path, max, &x, &rows, &cols);
    if (rc != EXIT_OK) return rc;
    double *g = malloc(sizeof(double) * rows * rows + 1);
    if (!g) { free(x); fprintf(stderr, "wick %s: out of memory\n", cmd); return EXIT_FAIL; }
    wick_status st = wick_input_gram(x, rows, cols, g);
    free(x);
    if (st) { free(g); return cli_fail(cmd, st); }
    *gram = g;
    *n = rows;
    return EXIT_OK;
}
