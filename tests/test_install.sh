#!/usr/bin/env bash
# `make install` honours PREFIX and DESTDIR, and a program finds wick through pkg-config,
# both with the shared and the static library.
set -u
T=${WICK_TEST_TMP:-/tmp}/install
BUILD=${BUILD:-build}
. "$(dirname "$0")/check.sh"
rm -rf "$T"; mkdir -p "$T"
make -s install BUILD="$BUILD" PREFIX=/opt/wick DESTDIR="$T/root" >"$T/log" 2>&1
ok $? "make install PREFIX=/opt/wick DESTDIR=..."
for f in include/wick.h lib/libwick.a lib/libwick.so lib/pkgconfig/wick.pc bin/wick; do
    [ -e "$T/root/opt/wick/$f" ]; ok $? "installed $f"
done
cat > "$T/p.c" <<'C'
#include <wick.h>
#include <stdio.h>
int main(void) {
    wick_act a;
    if (wick_act_parse("gelu", &a) != WICK_OK) return 1;
    printf("%s %.6f\n", wick_version(), wick_act_eval(a, 1.0));
    return 0;
}
C
# clang's UBSan build (make CC=clang SANITIZE=ubsan) carries clang's OpenMP and UBSan
# runtimes, which gcc-built programs do not link: the packaging is tested by the other builds
if nm "$T/root/opt/wick/lib/libwick.a" 2>/dev/null | grep -q __ubsan_handle &&
   ! nm "$T/root/opt/wick/lib/libwick.a" 2>/dev/null | grep -q __asan_report; then
    skip=$((skip + 1)); echo "  SKIP linking programs: a clang UBSan build" >&2
    finish; exit
fi
# under a sanitizer build the program must link the sanitizer runtime too
SAN=""
nm "$T/root/opt/wick/lib/libwick.a" 2>/dev/null | grep -q __asan_report && SAN="-fsanitize=address,undefined"
export PKG_CONFIG_PATH="$T/root/opt/wick/lib/pkgconfig" PKG_CONFIG_SYSROOT_DIR="$T/root"
cc $SAN "$T/p.c" -o "$T/p_shared" $(pkg-config --cflags --libs wick) -Wl,-rpath,"$T/root/opt/wick/lib" 2>>"$T/log" \
    && "$T/p_shared" | grep -q "0.841345"
ok $? "a program links the shared library through pkg-config and runs"
cc $SAN "$T/p.c" -o "$T/p_static" $(pkg-config --cflags wick) "$T/root/opt/wick/lib/libwick.a" \
    $(pkg-config --libs-only-other --libs-only-l --static wick | sed 's/-lwick//') 2>>"$T/log" \
    && "$T/p_static" | grep -q "0.841345"
ok $? "a program links the static library with Libs.private and runs"
[ $fail = 0 ] || tail -n 20 "$T/log" >&2
finish
