/* check.h — the test harness: one test binary per part (tests/test_<part>.c),
 * each a main() that RUNs its test functions.  A test passes when none of its
 * CHECKs (or FAILs) failed.  SKIP, in a test or in any helper it calls, ends
 * the test as skipped (unless a check had failed).  The binary's last line is
 * "RESULT passed failed skipped", which tests/run.sh adds up into the suite's
 * closing line.  Helpers that several tests share are in tests/lib/; the
 * width fits of the 1/n tests in tests/fit.h (static inline, like this
 * file, so that their checks count in the including test). */
#ifndef WICK_CHECK_H
#define WICK_CHECK_H

#include "wick.h"
#include <math.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* CHK_SANITIZED: 1 in the sanitizer builds (make SANITIZE=1, gcc's ASan and
 * UBSan; make CC=clang SANITIZE=ubsan).  A long statistical test may draw
 * fewer samples there, through the same code: the sanitizers need each path
 * taken, and the optimised build's run of the full CI form holds the test's
 * power (scripts/test.sh runs the suite in all three). */
#ifndef CHK_SANITIZED
#if defined(__SANITIZE_ADDRESS__)
#define CHK_SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(undefined_behavior_sanitizer)
#define CHK_SANITIZED 1
#endif
#endif
#endif
#ifndef CHK_SANITIZED
#define CHK_SANITIZED 0
#endif

static int chk_cur_failed, chk_cur_skipped, chk_passed, chk_failed, chk_skipped;
static const char *chk_cur_name = "";

static inline void chk_report(const char *file, int line, const char *what) {
    fprintf(stderr, "  FAIL %s (%s:%d): %s\n", chk_cur_name, file, line, what);
    chk_cur_failed = 1;
}

#define CHECK(cond)                                                             \
    do { if (!(cond)) chk_report(__FILE__, __LINE__, #cond); } while (0)

/* A failed check with a printf-style message; the test goes on. */
#define FAIL(...)                                                               \
    do {                                                                        \
        char m_[800];                                                           \
        snprintf(m_, sizeof m_, __VA_ARGS__);                                   \
        chk_report(__FILE__, __LINE__, m_);                                     \
    } while (0)

/* |a - b| <= tol (absolute). */
#define CHECK_NEAR(a, b, tol)                                                   \
    do {                                                                        \
        double a_ = (a), b_ = (b), t_ = (tol);                                  \
        if (!(fabs(a_ - b_) <= t_)) {                                           \
            char m_[256];                                                       \
            snprintf(m_, sizeof m_, "%s = %.17g, expected %s = %.17g (tol %g)", \
                     #a, a_, #b, b_, t_);                                       \
            chk_report(__FILE__, __LINE__, m_);                                 \
        }                                                                       \
    } while (0)

/* |a - b| <= rtol * max(|b|, tiny). */
#define CHECK_REL(a, b, rtol)                                                   \
    do {                                                                        \
        double a_ = (a), b_ = (b), t_ = (rtol);                                 \
        double s_ = fabs(b_) > 1e-300 ? fabs(b_) : 1e-300;                      \
        if (!(fabs(a_ - b_) <= t_ * s_)) {                                      \
            char m_[256];                                                       \
            snprintf(m_, sizeof m_, "%s = %.17g, expected %s = %.17g (rel %.3g > %g)", \
                     #a, a_, #b, b_, fabs(a_ - b_) / s_, t_);                   \
            chk_report(__FILE__, __LINE__, m_);                                 \
        }                                                                       \
    } while (0)

/* A call that must succeed. */
#define CHECK_OK(expr)                                                          \
    do {                                                                        \
        wick_status s_ = (expr);                                                \
        if (s_ != WICK_OK) {                                                    \
            char m_[700];                                                       \
            snprintf(m_, sizeof m_, "%s -> %s: %s", #expr, wick_strerror(s_),   \
                     wick_last_error());                                        \
            chk_report(__FILE__, __LINE__, m_);                                 \
        }                                                                       \
    } while (0)

/* A call that must fail with status `code` and a message containing `needle`
 * (NULL: any message). */
#define CHECK_FAILS(expr, code, needle)                                         \
    do {                                                                        \
        wick_status s_ = (expr);                                                \
        const char *n_ = (needle);                                              \
        if (s_ != (code) || (n_ && !strstr(wick_last_error(), n_))) {           \
            char m_[800];                                                       \
            snprintf(m_, sizeof m_, "%s -> %s \"%s\", expected %s containing \"%s\"", \
                     #expr, wick_strerror(s_), wick_last_error(),               \
                     wick_strerror(code), n_ ? n_ : "");                        \
            chk_report(__FILE__, __LINE__, m_);                                 \
        }                                                                       \
    } while (0)

/* Skips the rest of the current test with a reason: from a helper too, it
 * jumps back to RUN, so the caller goes no further.  (Outside RUN it
 * returns from the function it is in.) */
static jmp_buf chk_jmp;
static int chk_in_test;
static inline void chk_skip(const char *reason) {
    fprintf(stderr, "  SKIP %s: %s\n", chk_cur_name, reason);
    chk_cur_skipped = 1;
    if (chk_in_test) longjmp(chk_jmp, 1);
}
#define SKIP(reason)                                                            \
    do {                                                                        \
        chk_skip(reason);                                                       \
        return;                                                                 \
    } while (0)

static inline void chk_run(const char *name, void (*fn)(void)) {
    chk_cur_name = name;
    chk_cur_failed = chk_cur_skipped = 0;
    chk_in_test = 1;
    if (setjmp(chk_jmp) == 0) fn();
    chk_in_test = 0;
    if (chk_cur_failed) chk_failed++;
    else if (chk_cur_skipped) chk_skipped++;
    else chk_passed++;
    fprintf(stderr, "%s %s\n", chk_cur_failed ? "not ok" : chk_cur_skipped ? "skip  " : "ok    ",
            name);
}
#define RUN(fn) chk_run(#fn, fn)

/* The binary's closing line; returns main's exit code. */
static inline int chk_finish(void) {
    printf("RESULT %d %d %d\n", chk_passed, chk_failed, chk_skipped);
    return chk_failed ? 1 : 0;
}

/* A path inside this binary's scratch directory ($WICK_TEST_TMP or /tmp). */
static inline const char *chk_tmp(const char *name) {
    static char buf[8][512];
    static int k;
    const char *d = getenv("WICK_TEST_TMP");
    char *p = buf[k++ % 8];
    snprintf(p, 512, "%s/%s", d && *d ? d : "/tmp", name);
    return p;
}

/* A whole file into a malloc'd buffer (one spare byte for a terminator);
 * NULL if it cannot be opened. */
static inline uint8_t *chk_read_file(const char *path, size_t *n) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long sz = ftell(f);
    rewind(f);
    uint8_t *b = malloc(sz + 1);
    *n = fread(b, 1, sz, f);
    fclose(f);
    return b;
}

/* Writes n bytes to a scratch file and returns its path. */
static inline const char *chk_write_file(const char *name, const void *data, size_t n) {
    const char *p = chk_tmp(name);
    FILE *f = fopen(p, "wb");
    if (!f) { perror(p); exit(2); }
    if (n && fwrite(data, 1, n, f) != n) { perror(p); exit(2); }
    fclose(f);
    return p;
}

#endif
