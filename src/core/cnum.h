/* cnum.h — numbers as text in the C locale whatever the calling program's
 * locale is (a library user under de_DE must still write and read "0.25"),
 * and text from files made safe to print.  Not installed. */
#ifndef WICK_CNUM_H
#define WICK_CNUM_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

/* strtod in the C locale. */
double wick_strtod_c(const char *s, char **end);
/* vsnprintf / snprintf in the C locale (a point, never a comma). */
int wick_snprintf_c(char *buf, size_t size, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
int wick_vsnprintf_c(char *buf, size_t size, const char *fmt, va_list ap);

/* Strict whole-string parses for values read from files: no leading space,
 * no sign where none is allowed, nothing after the number.  1 on success. */
int wick_parse_i64(const char *s, int64_t lo, int64_t hi, int64_t *out);
int wick_parse_u64(const char *s, uint64_t *out);
/* A decimal or exponent number, "inf"/"nan" only where allow_nonfinite
 * (hex floats refused). */
int wick_parse_f64(const char *s, int allow_nonfinite, double *out);

/* Copies s into buf (size >= 8), escaping control bytes and DEL as \xNN and
 * cutting it at about size - 4 bytes with "...", so that a name or value from
 * a file cannot drive the terminal.  Returns buf. */
const char *wick_escape(const char *s, char *buf, size_t size);

#endif
