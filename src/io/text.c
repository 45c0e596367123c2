/* text.c — text that src/io takes from files or gives to people: names from
 * a file escaped before they reach a message, and numbers in the C locale
 * whatever locale the calling program chose. */
#include "core/core.h"
#include "io/io.h"
#include <locale.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

/* ---------------------------------------------------------------------------
 * Escaping
 * ------------------------------------------------------------------------- */

/* The code point of a well-formed UTF-8 sequence at s (its length in *len),
 * or -1 when the bytes there are not one. */
static long utf8_at(const unsigned char *s, int *len) {
    unsigned c = s[0];
    int extra;
    unsigned long cp, min;
    if (c < 0x80) { *len = 1; return c; }
    if ((c & 0xE0) == 0xC0) { extra = 1; min = 0x80; cp = c & 0x1F; }
    else if ((c & 0xF0) == 0xE0) { extra = 2; min = 0x800; cp = c & 0x0F; }
    else if ((c & 0xF8) == 0xF0) { extra = 3; min = 0x10000; cp = c & 0x07; }
    else return -1;
    for (int i = 1; i <= extra; i++) {
        if ((s[i] & 0xC0) != 0x80) return -1;   /* also stops at the NUL */
        cp = cp << 6 | (s[i] & 0x3F);
    }
    if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return -1;
    *len = extra + 1;
    return (long)cp;
}

/* Code points a terminal acts on rather than prints: C1 controls (U+009B is
 * CSI, as ESC [ is) and the bidirectional overrides and isolates that
 * reorder what follows them ("Trojan Source"). */
static int unprintable(long cp) {
    return (cp >= 0x80 && cp <= 0x9F) || (cp >= 0x202A && cp <= 0x202E) ||
           (cp >= 0x2066 && cp <= 0x2069) || cp == 0x200E || cp == 0x200F;
}

const char *wick_io_esc(char *buf, size_t cap, const char *s) {
    if (cap < 8) {
        if (cap) buf[0] = 0;
        return buf;
    }
    const unsigned char *p = (const unsigned char *)(s ? s : "(null)");
    size_t k = 0, room = cap - 4;   /* "..." and the NUL */
    while (*p) {
        char piece[8];
        int len = 1, n;
        long cp = utf8_at(p, &len);
        if (cp < 0) n = snprintf(piece, sizeof piece, "\\x%02x", *p), len = 1;
        else if (cp < 0x20 || cp == 0x7F) n = snprintf(piece, sizeof piece, "\\x%02lx", cp);
        else if (cp == '\\') n = snprintf(piece, sizeof piece, "\\\\");
        else if (unprintable(cp)) n = snprintf(piece, sizeof piece, "\\u%04lx", cp);
        else { memcpy(piece, p, (size_t)len); n = len; }
        if (k + (size_t)n > room) {
            memcpy(buf + k, "...", 3);
            k += 3;
            break;
        }
        memcpy(buf + k, piece, (size_t)n);
        k += (size_t)n;
        p += len;
    }
    buf[k] = 0;
    return buf;
}

/* ---------------------------------------------------------------------------
 * The C locale
 * ------------------------------------------------------------------------- */

static locale_t c_locale;
static pthread_once_t c_locale_once = PTHREAD_ONCE_INIT;
static void c_locale_init(void) { c_locale = newlocale(LC_ALL_MASK, "C", (locale_t)0); }

locale_t wick_io_c_locale(void) {
    pthread_once(&c_locale_once, c_locale_init);
    return c_locale;
}

locale_t wick_io_locale_enter(void) {
    locale_t c = wick_io_c_locale();
    /* newlocale("C") fails only without memory: then numbers follow the
     * caller's locale, which is no worse than before */
    return c ? uselocale(c) : (locale_t)0;
}

void wick_io_locale_leave(locale_t prev) {
    if (prev) uselocale(prev);
}
