/* status.c — error codes and the per-thread last-error message. */
#include "core.h"
#include "cnum.h"
#include <stdio.h>
#include <string.h>

static _Thread_local char last_error[512];

const char *wick_strerror(wick_status s) {
    switch (s) {
    case WICK_OK: return "success";
    case WICK_EINVAL: return "invalid argument";
    case WICK_ENOMEM: return "out of memory";
    case WICK_EIO: return "input/output error";
    case WICK_EFORMAT: return "malformed file";
    case WICK_ESHAPE: return "shape mismatch";
    case WICK_EDTYPE: return "element type mismatch";
    case WICK_ENUMERIC: return "numerical failure";
    case WICK_EDIVERGED: return "training diverged";
    case WICK_EINTERRUPTED: return "interrupted";
    case WICK_EUNSUPPORTED: return "not supported";
    }
    return "unknown status";
}

const char *wick_last_error(void) { return last_error; }

wick_status wick_fail(wick_status s, const char *fmt, ...) {
    /* format into a scratch buffer: the arguments may include
       wick_last_error() itself, to wrap a message with context; numbers in
       the C locale whatever the calling program set */
    char buf[sizeof last_error];
    va_list ap;
    va_start(ap, fmt);
    wick_vsnprintf_c(buf, sizeof buf, fmt, ap);
    va_end(ap);
    memcpy(last_error, buf, sizeof buf);
    /* one line: a message never carries a newline into a log */
    for (char *p = last_error; *p; p++)
        if (*p == '\n' || *p == '\r') *p = ' ';
    return s;
}
