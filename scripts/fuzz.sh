#!/bin/sh
# scripts/fuzz.sh [SECONDS] — builds the libFuzzer harnesses (clang,
# -fsanitize=fuzzer + ASan + UBSan) in build-fuzz/, replays each seed corpus
# (tests/fuzz/corpus/<harness>/) and regression set (tests/fuzz/regressions/
# <harness>/), then fuzzes each harness for SECONDS (default 20; 0 = replay
# only) and prints the executions per harness.  New corpus entries go to
# build-fuzz/fuzz-corpus/<harness>/ (the committed seeds are not touched).
# Exits non-zero on any crash, leak or timeout; the input is saved as
# build-fuzz/fuzz-crashes/<harness>/crash-* (commit it to
# tests/fuzz/regressions/<harness>/ once fixed).
#   QLM_FUZZ_BUILD=DIR  build tree (default build-fuzz)
#   QLM_FUZZ_ONLY="fuzz_qlm ..."  run only these harnesses
set -eu
secs=${1:-20}
case $secs in '' | *[!0-9]*) echo "fuzz.sh: SECONDS must be a whole number, not '$secs'" >&2; exit 2 ;; esac
top=$(cd "$(dirname "$0")/.." && pwd)
bld=${QLM_FUZZ_BUILD:-$top/build-fuzz}
harnesses=${QLM_FUZZ_ONLY:-fuzz_safetensors fuzz_st_index fuzz_config fuzz_hf_tokenizer fuzz_tok_config fuzz_qlm fuzz_tokenize fuzz_imat fuzz_gguf}
jobs=$(nproc 2>/dev/null || echo 2)
san="-fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer"

mkdir -p "$bld"
cd "$bld"
if [ ! -f Makefile ] || ! grep -q '^ENABLE_FUZZING_TRUE = $' Makefile; then
    [ -x "$top/configure" ] || (cd "$top" && autoreconf -fi)
    "$top/configure" -q CC=clang CFLAGS="-O1 -g -fsanitize=fuzzer-no-link $san" LDFLAGS="$san" \
        --enable-fuzzing --disable-shared
fi
targets=
for h in $harnesses; do targets="$targets tests/fuzz/$h"; done
make -s -j"$jobs" $targets

export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1}
status=0
summary=
for h in $harnesses; do
    seeds=$top/tests/fuzz/corpus/$h
    regs=$top/tests/fuzz/regressions/$h
    work=$bld/fuzz-corpus/$h
    crashes=$bld/fuzz-crashes/$h
    mkdir -p "$work" "$crashes"
    # inputs of the tokenizer importer are kept small (a big JSON is slow, not
    # interesting); .qlm, safetensors and GGUF seeds are up to ~40 KB.
    case $h in
        fuzz_hf_tokenizer | fuzz_config | fuzz_tok_config | fuzz_st_index) maxlen=16384 ;;
        fuzz_tokenize) maxlen=4096 ;;
        *) maxlen=65536 ;;
    esac
    opts="-rss_limit_mb=2048 -timeout=20 -malloc_limit_mb=1024 -artifact_prefix=$crashes/"
    dirs=$seeds
    [ -d "$regs" ] && dirs="$dirs $regs"
    log=$bld/fuzz-$h.log
    # shellcheck disable=SC2086
    printf '%-18s replay %s inputs ... ' "$h" "$(find $dirs -type f | wc -l)"
    # shellcheck disable=SC2086
    if ! "tests/fuzz/$h" $opts -runs=0 $dirs >"$log" 2>&1; then
        echo "FAILED (see $log)"
        tail -n 40 "$log"
        status=1
        continue
    fi
    echo ok
    [ "$secs" -gt 0 ] || continue
    # shellcheck disable=SC2086
    if "tests/fuzz/$h" $opts -max_len=$maxlen -max_total_time="$secs" -print_final_stats=1 \
            "$work" $dirs >"$log" 2>&1; then
        execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
        printf '%-18s %s executions in %s s, corpus %s files\n' "$h" "${execs:-?}" "$secs" \
            "$(ls "$work" | wc -l)"
        summary="$summary $h=${execs:-?}"
    else
        echo "$h: CRASH (see $log); input saved in $crashes:"
        ls "$crashes"
        tail -n 60 "$log"
        status=1
    fi
done
[ -z "$summary" ] || echo "fuzz.sh: executions:$summary"
exit $status
