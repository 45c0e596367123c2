/* csv.c — numeric CSV files and labelled data sets from them.
 *
 * What is accepted (decisions of docs/file-formats.md, CSV section):
 *  - fields separated by ',', lines by '\n' or "\r\n";
 *  - a UTF-8 byte-order mark at the start (skipped);
 *  - spaces and tabs around a field (skipped);
 *  - a field in double quotes ("" inside stands for one quote); the quote must
 *    close on the same line;
 *  - a header: the first row is skipped when none of its fields is a number;
 *    a first row mixing numbers and names is refused;
 *  - decimal numbers as strtod reads them in the C locale, whatever the
 *    user's locale; values that underflow become 0 or a subnormal;
 *  - blank lines at the end of the file (an editor's habit), not in between.
 * What is refused, naming the line (and column): a row whose field count
 * differs from the first row's; an empty field; trailing junk ("1.5abc");
 * hex floats ("0x1p3"); nan/inf unless allow_nonfinite; overflow ("1e999");
 * an unterminated quote; a NUL byte (binary data); a line longer than
 * CSV_MAX_LINE; an empty or header-only file.  "1,5" meant as a decimal is a
 * ragged row.
 * The file's text in a message (a field) is escaped (wick_io_esc), and
 * messages print numbers in the C locale too.  The file is opened without
 * blocking and must be a regular file (src/io/path.c). */
#include "core/core.h"
#include "io/io.h"
#include <errno.h>
#include <float.h>
#include <locale.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Longest accepted line: bounds the scratch buffer for one field. */
#define CSV_MAX_LINE (16u << 20)

/* Room for a field in a message: cut with "..." past about 40 bytes. */
#define CSV_TOK_CAP 48

typedef struct {
    const char *name;
    size_t line;            /* 1-based */
    int allow_nonfinite;
    char *tok;              /* scratch for one field, NUL-terminated */
} csv_ctx;

/* Parses one unquoted-or-unquoted field's text tok (already trimmed).
 * Returns 1 with *v set, 0 when it is not a number (message recorded with
 * status EFORMAT unless quiet). */
static int parse_number(csv_ctx *c, size_t col, const char *tok, double *v, int quiet) {
    const char *p = tok;
    if (*p == '+' || *p == '-') p++;
    char et[CSV_TOK_CAP];
    if (p[0] == '0' && (p[1] == 'x' || p[1] == 'X')) {
        if (!quiet)
            wick_fail(WICK_EFORMAT, "%s: line %zu, column %zu: hex number '%s' refused", c->name,
                      c->line, col, wick_io_esc(et, sizeof et, tok));
        return 0;
    }
    if (!*tok) {
        if (!quiet) wick_fail(WICK_EFORMAT, "%s: line %zu, column %zu: empty field", c->name, c->line, col);
        return 0;
    }
    char *end;
    errno = 0;
    double x = strtod_l(tok, &end, wick_io_c_locale());
    if (end == tok || *end) {
        if (!quiet)
            wick_fail(WICK_EFORMAT, "%s: line %zu, column %zu: '%s' is not a number", c->name,
                      c->line, col, wick_io_esc(et, sizeof et, tok));
        return 0;
    }
    if (quiet) { *v = x; return 1; }
    if (errno == ERANGE && isinf(x)) {
        wick_fail(WICK_EFORMAT, "%s: line %zu, column %zu: '%s' overflows a double", c->name,
                  c->line, col, wick_io_esc(et, sizeof et, tok));
        return 0;
    }
    /* ERANGE with a tiny result is underflow: accepted as 0 / subnormal. */
    if (!isfinite(x) && !c->allow_nonfinite) {
        wick_fail(WICK_EFORMAT, "%s: line %zu, column %zu: '%s' is not finite (nan/inf refused)",
                  c->name, c->line, col, wick_io_esc(et, sizeof et, tok));
        return 0;
    }
    *v = x;
    return 1;
}

/* Splits line [p, e) into fields; for each calls out(k, text).  Returns the
 * field count, or -1 after recording an error. */
typedef int (*field_fn)(csv_ctx *c, void *arg, size_t col, const char *tok);

static long long split_line(csv_ctx *c, const char *p, const char *e, field_fn fn, void *arg) {
    size_t col = 0;
    for (;;) {
        col++;
        while (p < e && (*p == ' ' || *p == '\t')) p++;
        size_t k = 0;
        if (p < e && *p == '"') {
            p++;
            for (;;) {
                if (p >= e) {
                    wick_fail(WICK_EFORMAT, "%s: line %zu, column %zu: unterminated quote", c->name,
                              c->line, col);
                    return -1;
                }
                if (*p == '"') {
                    if (p + 1 < e && p[1] == '"') { c->tok[k++] = '"'; p += 2; continue; }
                    p++;
                    break;
                }
                c->tok[k++] = *p++;
            }
            while (p < e && (*p == ' ' || *p == '\t')) p++;
            if (p < e && *p != ',') {
                wick_fail(WICK_EFORMAT, "%s: line %zu, column %zu: junk after a closing quote", c->name,
                          c->line, col);
                return -1;
            }
            c->tok[k] = 0;
            /* spaces inside the quotes are as insignificant as outside */
            char *t = c->tok;
            while (*t == ' ' || *t == '\t') t++;
            while (k > (size_t)(t - c->tok) && (c->tok[k - 1] == ' ' || c->tok[k - 1] == '\t'))
                c->tok[--k] = 0;
            if (fn && fn(c, arg, col, t) < 0) return -1;
        } else {
            while (p < e && *p != ',') c->tok[k++] = *p++;
            while (k && (c->tok[k - 1] == ' ' || c->tok[k - 1] == '\t')) k--;
            c->tok[k] = 0;
            if (fn && fn(c, arg, col, c->tok) < 0) return -1;
        }
        if (p >= e) return (long long)col;
        p++;   /* the comma */
    }
}

/* Counts numeric fields of the first row (header detection). */
static int count_numeric(csv_ctx *c, void *arg, size_t col, const char *tok) {
    double v;
    if (*tok && parse_number(c, col, tok, &v, 1)) ++*(size_t *)arg;
    return 0;
}

typedef struct {
    double *row;            /* where this row's values go */
    size_t cols;
} row_dest;

static int store_number(csv_ctx *c, void *arg, size_t col, const char *tok) {
    row_dest *d = arg;
    if (col > d->cols) return 0;   /* ragged: reported by the caller with the count */
    return parse_number(c, col, tok, &d->row[col - 1], 0) ? 0 : -1;
}

static int blank(const char *p, const char *e) {
    for (; p < e; p++)
        if (*p != ' ' && *p != '\t') return 0;
    return 1;
}

wick_status wick_csv_read_mem(const char *name, const char *buf, size_t len, int allow_nonfinite,
                              double **out, size_t *rows, size_t *cols, size_t *first_line) {
    if (!name || (!buf && len) || !out || !rows || !cols)
        return wick_fail(WICK_EINVAL, "wick_csv_read: NULL argument");
    *out = NULL;
    *rows = *cols = 0;
    if (!wick_io_c_locale()) return wick_fail(WICK_ENOMEM, "%s: cannot create the C locale", name);
    const char *p = buf ? buf : "", *end = p + len;
    if (len >= 3 && memcmp(p, "\xEF\xBB\xBF", 3) == 0) p += 3;   /* UTF-8 BOM */
    const char *nul = memchr(p, 0, (size_t)(end - p));
    if (nul) {
        size_t line = 1;
        for (const char *q = p; q < nul; q++) line += *q == '\n';
        return wick_fail(WICK_EFORMAT, "%s: line %zu: NUL byte: not a text file", name, line);
    }
    csv_ctx c = {name, 0, allow_nonfinite, NULL};
    size_t maxline = (size_t)(end - p) < CSV_MAX_LINE ? (size_t)(end - p) : CSV_MAX_LINE;
    c.tok = wick_malloc(maxline + 1);
    if (!c.tok) return wick_fail(WICK_ENOMEM, "%s: out of memory", name);
    double *data = NULL;
    size_t nrows = 0, ncols = 0, cap = 0, first = 0;
    wick_status s = WICK_OK;
    while (p < end) {
        c.line++;
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *e = nl ? nl : end, *next = nl ? nl + 1 : end;
        if (e > p && e[-1] == '\r') e--;
        if ((size_t)(e - p) > CSV_MAX_LINE) {
            s = wick_fail(WICK_EFORMAT, "%s: line %zu is longer than %u bytes", name, c.line, CSV_MAX_LINE);
            goto fail;
        }
        if (blank(p, e)) {
            /* blank lines are accepted only at the end of the file */
            const char *q = next;
            while (q < end && (*q == ' ' || *q == '\t' || *q == '\r' || *q == '\n')) q++;
            if (q == end) break;
            s = wick_fail(WICK_EFORMAT, "%s: line %zu: empty line inside the data", name, c.line);
            goto fail;
        }
        if (!ncols) {
            /* The first row: its field count is the width; a row with no
             * number at all is a header. */
            size_t numeric = 0;
            long long nf = split_line(&c, p, e, count_numeric, &numeric);
            if (nf < 0) { s = WICK_EFORMAT; goto fail; }
            ncols = (size_t)nf;
            if (numeric == 0) {
                p = next;
                continue;
            }
            first = c.line;
        }
        if (!first) first = c.line;
        if (nrows == cap) {
            size_t ncap = cap ? 2 * cap : 64, bytes;
            if (!wick_mul_size(ncap, ncols, &bytes) || !wick_mul_size(bytes, sizeof(double), &bytes)) {
                s = wick_fail(WICK_ENOMEM, "%s: too much data (line %zu)", name, c.line);
                goto fail;
            }
            double *nd = wick_realloc(data, bytes);
            if (!nd) {
                s = wick_fail(WICK_ENOMEM, "%s: out of memory at line %zu", name, c.line);
                goto fail;
            }
            data = nd;
            cap = ncap;
        }
        row_dest d = {data + nrows * ncols, ncols};
        long long nf = split_line(&c, p, e, store_number, &d);
        if (nf < 0) { s = WICK_EFORMAT; goto fail; }
        if ((size_t)nf != ncols) {
            s = wick_fail(WICK_EFORMAT, "%s: line %zu has %lld fields, the first row has %zu", name,
                          c.line, nf, ncols);
            goto fail;
        }
        nrows++;
        p = next;
    }
    if (!ncols) {
        s = wick_fail(WICK_EFORMAT, "%s: empty file", name);
        goto fail;
    }
    if (!nrows) {
        s = wick_fail(WICK_EFORMAT, "%s: no data rows (only a header on line 1)", name);
        goto fail;
    }
    wick_free(c.tok);
    *out = data;
    *rows = nrows;
    *cols = ncols;
    if (first_line) *first_line = first;
    return WICK_OK;
fail:
    wick_free(c.tok);
    wick_free(data);
    return s;
}

/* The whole file in memory (a CSV is far smaller than the doubles it holds). */
static wick_status slurp(const char *path, char **buf, size_t *len) {
    *buf = NULL;
    int fd;
    struct stat st;
    wick_status s = wick_io_open_input(path, &fd, &st);
    if (s) return s;
    size_t n = (size_t)st.st_size;
    char *b = wick_malloc(n + 1);
    if (!b) {
        close(fd);
        return wick_fail(WICK_ENOMEM, "%s: out of memory for %zu bytes", path, n);
    }
    size_t got = 0;
    int err = 0;
    while (got < n) {
        ssize_t r = read(fd, b + got, n - got);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) { err = r < 0 ? errno : 0; break; }
        got += (size_t)r;
    }
    close(fd);
    if (got != n) {
        wick_free(b);
        return wick_fail(WICK_EIO, "%s: read error (%zu of %zu bytes)%s%s", path, got, n,
                         err ? ": " : "", err ? strerror(err) : "");
    }
    b[n] = 0;
    *buf = b;
    *len = n;
    return WICK_OK;
}

static wick_status csv_read_file(const char *path, int allow_nonfinite, double **out, size_t *rows,
                                 size_t *cols, size_t *first_line) {
    if (!path) return wick_fail(WICK_EINVAL, "wick_csv_read: NULL path");
    char *buf = NULL;
    size_t len = 0;
    wick_status s = slurp(path, &buf, &len);
    if (s) return s;
    locale_t loc = wick_io_locale_enter();
    s = wick_csv_read_mem(path, buf, len, allow_nonfinite, out, rows, cols, first_line);
    wick_io_locale_leave(loc);
    wick_free(buf);
    return s;
}

wick_status wick_csv_read(const char *path, int allow_nonfinite, double **out, size_t *rows,
                          size_t *cols) {
    if (!out || !rows || !cols) return wick_fail(WICK_EINVAL, "wick_csv_read: NULL argument");
    return csv_read_file(path, allow_nonfinite, out, rows, cols, NULL);
}

wick_status wick_dataset_load_csv(const char *path, int label_col, int classes, wick_dataset **out) {
    if (!out) return wick_fail(WICK_EINVAL, "wick_dataset_load_csv: NULL argument");
    *out = NULL;
    double *v;
    size_t rows, cols, first;
    wick_status s = csv_read_file(path, 0, &v, &rows, &cols, &first);
    if (s) return s;
    wick_dataset *d = NULL;
    /* labels and values in messages: "2.5", not "2,5" */
    locale_t loc = wick_io_locale_enter();
    if (cols < 2) {
        s = wick_fail(WICK_EFORMAT, "%s: %zu column: need features and a label", path, cols);
        goto done;
    }
    if (label_col < -1 || label_col >= (long long)cols) {
        s = wick_fail(WICK_EINVAL, "%s: label column %d out of range (the file has %zu columns)", path,
                      label_col, cols);
        goto done;
    }
    size_t lc = label_col < 0 ? cols - 1 : (size_t)label_col;
    int maxl = 0;
    for (size_t r = 0; r < rows; r++) {
        double y = v[r * cols + lc];
        size_t line = first + r;
        if (y != floor(y)) {
            s = wick_fail(WICK_EFORMAT, "%s: line %zu, column %zu: label %.17g is not an integer", path,
                          line, lc + 1, y);
            goto done;
        }
        if (y < 0 || y > INT32_MAX - 1 || (classes > 0 && y >= classes)) {
            if (classes > 0)
                s = wick_fail(WICK_EFORMAT, "%s: line %zu, column %zu: label %.17g is not in [0, %d)",
                              path, line, lc + 1, y, classes);
            else
                s = wick_fail(WICK_EFORMAT, "%s: line %zu, column %zu: label %.17g is out of range",
                              path, line, lc + 1, y);
            goto done;
        }
        if ((int)y > maxl) maxl = (int)y;
        for (size_t k = 0; k < cols; k++)
            if (k != lc && fabs(v[r * cols + k]) > FLT_MAX && isfinite(v[r * cols + k])) {
                s = wick_fail(WICK_EFORMAT, "%s: line %zu, column %zu: %.17g overflows a float", path,
                              line, k + 1, v[r * cols + k]);
                goto done;
            }
    }
    d = wick_calloc(1, sizeof *d);
    if (!d) { s = wick_fail(WICK_ENOMEM, "%s: out of memory", path); goto done; }
    d->n = rows;
    d->dim = cols - 1;
    d->classes = classes > 0 ? classes : maxl + 1;
    /* rows * cols doubles already exist, so these products cannot overflow */
    d->x = wick_malloc(rows * d->dim * sizeof *d->x);
    d->y = wick_malloc(rows * sizeof *d->y);
    if (!d->x || !d->y) { s = wick_fail(WICK_ENOMEM, "%s: out of memory", path); goto done; }
    for (size_t r = 0; r < rows; r++) {
        float *x = d->x + r * d->dim;
        for (size_t k = 0, j = 0; k < cols; k++)
            if (k != lc) x[j++] = (float)v[r * cols + k];
        d->y[r] = (int32_t)v[r * cols + lc];
    }
    *out = d;
    d = NULL;
done:
    wick_io_locale_leave(loc);
    wick_dataset_free(d);
    wick_free(v);
    return s;
}
