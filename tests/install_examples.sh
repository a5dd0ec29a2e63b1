#!/bin/sh
# libqlm out of tree, as a packager and then a user would take it: `make
# install DESTDIR=<scratch>` of this build, then examples/simple.c and
# examples/chat.c compiled against the staged install with nothing but
# `pkg-config --cflags --libs qlm` (PKG_CONFIG_SYSROOT_DIR pointing at the
# stage; --static when only the static library is built) and the build's
# compiler and flags, and run on the tiny model: the same text as qlm-run.
# The installed headers compile alone, and qlm(3) is installed.
. "${top_srcdir:-.}/tests/run_common.sh"
M=$(need_fixture tiny-q8.qlm) || exit $?
command -v pkg-config >/dev/null 2>&1 || skip "no pkg-config"
CC=${QLM_CC:-cc}
CFLAGS=${QLM_CFLAGS:-}
LDFLAGS=${QLM_LDFLAGS:-}
src=$(cd "$top_srcdir" && pwd)

stage=$T/stage
# (a make of its own: the jobserver of the make running the tests is not ours)
env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL ${MAKE:-make} -C "$top_builddir" install \
    DESTDIR="$stage" >"$T/install.log" 2>&1
rc=$?
[ $rc -eq 0 ] && pass "make install DESTDIR=..." ||
    { fail "make install: status $rc"; tail -20 "$T/install.log"; finish; }
pc=$(find "$stage" -name qlm.pc -path '*/pkgconfig/*')
[ -n "$pc" ] && [ "$(printf '%s\n' "$pc" | wc -l)" -eq 1 ] && pass "qlm.pc installed: ${pc#"$stage"}" ||
    { fail "qlm.pc: '$pc'"; finish; }
man3=$(find "$stage" -name qlm.3 -path '*/man3/*')
[ -n "$man3" ] && man -l "$man3" >/dev/null 2>&1 && pass "qlm(3) installed: ${man3#"$stage"}" ||
    fail "qlm(3) not installed or not readable: '$man3'"

export PKG_CONFIG_SYSROOT_DIR="$stage" PKG_CONFIG_PATH="$(dirname "$pc")${PKG_CONFIG_PATH:+:$PKG_CONFIG_PATH}"
want_version=$("$QLM_RUN" --version | awk '{ print $NF }')
[ "$(pkg-config --modversion qlm)" = "$want_version" ] && pass "pkg-config --modversion qlm: $want_version" ||
    fail "pkg-config --modversion: '$(pkg-config --modversion qlm)', qlm-run says $want_version"
cflags=$(pkg-config --cflags qlm) && libs=$(pkg-config --libs qlm) ||
    { fail "pkg-config --cflags --libs qlm"; finish; }
libdir=$(printf '%s\n' "$libs" | sed -n 's/.*-L\([^ ]*\).*/\1/p')
case $libdir in
"$stage"/*) pass "pkg-config --libs points into the stage: $libs" ;;
*) fail "pkg-config --libs qlm: '$libs' (no -L into $stage)" ;;
esac
shared=
for f in "$libdir/libqlm.so" "$libdir/libqlm.dylib"; do
    [ -e "$f" ] && shared=$f
done
if [ -z "$shared" ]; then
    libs=$(pkg-config --static --libs qlm)
    echo "only the static libqlm: linking with --static: $libs"
fi

# qlm.h and what it includes stand alone under the installed include path.
printf '#include <qlm.h>\nint main(void) { return qlm_version() == 0; }\n' >"$T/hdr.c"
$CC -std=c11 -Wall -Wextra -Werror $cflags -c "$T/hdr.c" -o "$T/hdr.o" 2>"$T/cc.log" &&
    pass "<qlm.h> compiles alone with $cflags" || { fail "<qlm.h> alone"; cat "$T/cc.log"; }

for ex in simple chat; do
    # shellcheck disable=SC2086 # flags are lists
    $CC $CFLAGS $cflags "$src/examples/$ex.c" -o "$T/$ex" $LDFLAGS $libs 2>"$T/cc.log" &&
        pass "examples/$ex.c built with pkg-config's flags" ||
        { fail "examples/$ex.c: $CC $CFLAGS $cflags ... $LDFLAGS $libs"; cat "$T/cc.log"; }
done
run_ex() { LD_LIBRARY_PATH="$libdir" DYLD_LIBRARY_PATH="$libdir" "$@"; }

# The example's greedy text is qlm-run's, and it runs on the staged library.
prompt="Once upon a time"
run_ex "$T/simple" "$M" "$prompt" 24 >"$T/simple.out" 2>"$T/err"
rc=$?
"$QLM_RUN" "$M" -p "$prompt" -n 24 --temp 0 -q >"$T/run.out" 2>/dev/null
[ $rc -eq 0 ] && [ "$(wc -c <"$T/simple.out")" -gt 10 ] && cmp -s "$T/simple.out" "$T/run.out" &&
    pass "examples/simple: qlm-run's greedy text" ||
    { fail "examples/simple: status $rc"; cat "$T/err"; diff "$T/simple.out" "$T/run.out" | head; }
if command -v ldd >/dev/null 2>&1 && [ "$shared" = "$libdir/libqlm.so" ]; then
    run_ex ldd "$T/simple" | grep -q "libqlm.*=> $libdir/" && pass "examples/simple uses the staged libqlm" ||
        fail "examples/simple does not load $libdir/libqlm: $(run_ex ldd "$T/simple" | grep qlm)"
fi

# One chat turn: qlm-run --chat's reply (the same template, greedy, 64 tokens).
printf 'Hello there.\n' | run_ex "$T/chat" "$M" --no-think >"$T/chat.out" 2>"$T/err"
rc=$?
printf 'Hello there.\n' | "$QLM_RUN" "$M" --chat --no-think --temp 0 -n 64 -q >"$T/run.out" 2>/dev/null
[ $rc -eq 0 ] && [ "$(wc -c <"$T/chat.out")" -gt 10 ] && cmp -s "$T/chat.out" "$T/run.out" &&
    pass "examples/chat: qlm-run --chat's reply" ||
    { fail "examples/chat: status $rc"; cat "$T/err"; diff "$T/chat.out" "$T/run.out" | head; }
# Two turns: the first reply again, then a second one.
printf 'Hello there.\nWhat is your name?\n' | run_ex "$T/chat" "$M" --no-think >"$T/chat2.out" 2>"$T/err"
rc=$?
n1=$(wc -c <"$T/chat.out")
[ $rc -eq 0 ] && [ "$(head -c "$n1" "$T/chat2.out")" = "$(cat "$T/chat.out")" ] &&
    [ "$(wc -c <"$T/chat2.out")" -gt $((n1 + 10)) ] && pass "examples/chat: a second turn" ||
    { fail "examples/chat, two turns: status $rc"; cat "$T/err"; }
finish
