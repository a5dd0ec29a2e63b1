#!/bin/sh
# The test command: installs what is missing (as root), builds with gcc and
# runs `make check`, then builds with clang under AddressSanitizer +
# UndefinedBehaviorSanitizer and runs the same tests again, then replays and
# briefly runs the fuzzers.  Build trees: build/ and build-asan/, build-fuzz/.
#   QLM_FUZZ_SECONDS=N  fuzzing time per harness (default 20; 0 = replay only)
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
. scripts/deps.sh
qlm_install_deps test

jobs=$(nproc 2>/dev/null || echo 2)
step() { printf '\n==> %s\n' "$*"; }

step "bootstrap"
autoreconf -fi >/dev/null 2>&1 || autoreconf -fi

step "gcc build + make check"
mkdir -p build
(cd build && ../configure -q CC=gcc CFLAGS="-O2 -g" && make -s -j"$jobs" &&
    make -s -j"$jobs" check) || { cat build/test-suite.log 2>/dev/null | tail -80; exit 1; }

step "clang build, AddressSanitizer + UndefinedBehaviorSanitizer, make check"
san="-fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer"
mkdir -p build-asan
(cd build-asan && ../configure -q CC=clang CFLAGS="-O1 -g $san" LDFLAGS="$san" \
        --disable-shared &&
    make -s -j"$jobs" &&
    ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 UBSAN_OPTIONS=print_stacktrace=1 \
        make -s -j"$jobs" check) || { cat build-asan/test-suite.log 2>/dev/null | tail -80; exit 1; }

if [ -x scripts/fuzz.sh ]; then
    step "fuzzing (libFuzzer, ${QLM_FUZZ_SECONDS:-20} s per harness)"
    scripts/fuzz.sh "${QLM_FUZZ_SECONDS:-20}"
fi
step "all tests passed"
