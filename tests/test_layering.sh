#!/usr/bin/env bash
# test_layering.sh — src/core includes no third-party header: only the C
# library's, POSIX's and Linux's, the compiler's (immintrin.h, omp.h) and its
# own and wick.h.  The libraries wick links (OpenBLAS, oneDNN, zlib, jansson)
# are reached from the layers above it (src/backend/libs.c holds the thread
# count hook and their versions).
set -u
cd "$(dirname "$0")/.."
. tests/check.sh
allowed='^(assert|ctype|errno|float|inttypes|limits|locale|math|sched|setjmp|signal|stdarg|stdatomic|stdbool|stddef|stdint|stdio|stdlib|string|time|unistd|pthread|fcntl|immintrin|omp|sys/[a-z]+|linux/[a-z]+)\.h$'
bad_inc=$(grep -h '^#include <' src/core/*.c src/core/*.h | sed -E 's/#include <([^>]+)>.*/\1/' | sort -u |
          grep -Ev "$allowed")
[ -z "$bad_inc" ]; ok $? "src/core includes only system and compiler headers${bad_inc:+ (not: $(echo $bad_inc))}"
bad_local=$(grep -h '^#include "' src/core/*.c src/core/*.h | sed -E 's/#include "([^"]+)".*/\1/' | sort -u |
            grep -Ev '^(core/[a-z_]+\.h|[a-z_]+\.h)$' | grep -v '^wick\.h$' | grep -Ev '^(core\.h|cnum\.h)$')
[ -z "$bad_local" ]; ok $? "src/core includes only its own headers and wick.h${bad_local:+ (not: $(echo $bad_local))}"
# nothing in core names a third-party library's functions
grep -qE '\b(openblas_|cblas_|dnnl_|zlibVersion|json_|jansson_)' src/core/*.c src/core/*.h
[ $? != 0 ]; ok $? "src/core calls no OpenBLAS, oneDNN, zlib or jansson function"
finish
