/* cnum.c — locale-independent number conversion (newlocale + strtod_l,
 * uselocale around vsnprintf) and escaping of untrusted text for messages. */
#include "core/cnum.h"
#include <ctype.h>
#include <errno.h>
#include <locale.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static locale_t c_locale;
static pthread_once_t c_once = PTHREAD_ONCE_INIT;
static void c_init(void) { c_locale = newlocale(LC_ALL_MASK, "C", (locale_t)0); }

static locale_t c_loc(void) {
    pthread_once(&c_once, c_init);
    return c_locale;
}

double wick_strtod_c(const char *s, char **end) {
    locale_t c = c_loc();
    if (c) return strtod_l(s, end, c);
    return strtod(s, end);   /* newlocale failed (out of memory): the caller's locale */
}

int wick_vsnprintf_c(char *buf, size_t size, const char *fmt, va_list ap) {
    locale_t c = c_loc(), old = c ? uselocale(c) : (locale_t)0;
    int n = vsnprintf(buf, size, fmt, ap);
    if (c) uselocale(old);
    return n;
}

int wick_snprintf_c(char *buf, size_t size, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    int n = wick_vsnprintf_c(buf, size, fmt, ap);
    va_end(ap);
    return n;
}

int wick_parse_i64(const char *s, int64_t lo, int64_t hi, int64_t *out) {
    if (!s) return 0;
    const char *p = s + (*s == '-');
    if (!isdigit((unsigned char)*p)) return 0;   /* no space, no '+', not empty */
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (*end || errno == ERANGE || v < lo || v > hi) return 0;
    *out = v;
    return 1;
}

int wick_parse_u64(const char *s, uint64_t *out) {
    if (!s || !isdigit((unsigned char)*s)) return 0;
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (*end || errno == ERANGE) return 0;
    *out = v;
    return 1;
}

int wick_parse_f64(const char *s, int allow_nonfinite, double *out) {
    if (!s) return 0;
    const char *p = s + (*s == '-' || *s == '+');
    if (!isdigit((unsigned char)*p) && *p != '.' && !(allow_nonfinite && isalpha((unsigned char)*p)))
        return 0;
    if (p[0] == '0' && (p[1] == 'x' || p[1] == 'X')) return 0;
    char *end;
    errno = 0;
    double v = wick_strtod_c(s, &end);
    if (end == s || *end) return 0;
    if (!allow_nonfinite && !isfinite(v)) return 0;
    if (errno == ERANGE && isinf(v)) return 0;
    *out = v;
    return 1;
}

const char *wick_escape(const char *s, char *buf, size_t size) {
    size_t o = 0;
    if (size < 8) { if (size) buf[0] = 0; return buf; }
    if (!s) s = "(null)";
    for (; *s && o + 8 < size; s++) {
        unsigned char c = (unsigned char)*s;
        if (c < 0x20 || c == 0x7f || c == '\\') o += (size_t)snprintf(buf + o, size - o, c == '\\' ? "\\\\" : "\\x%02x", c);
        else buf[o++] = (char)c;
    }
    if (*s) memcpy(buf + o, "...", 4);   /* the loop left o <= size - 5 */
    else buf[o] = 0;
    return buf;
}
