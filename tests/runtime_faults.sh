#!/bin/sh
# tests/runtime_faults.sh — qlm-run under bad options and runtime faults:
#   bad --threads / --ctx values, empty prompt, prompt longer than --ctx,
#   out-of-range --tokens ids, invalid UTF-8: status 1..127, exactly one
#   "qlm-run:" line on stderr naming the problem, nothing on stdout;
#   the model file truncated (truncate -s 4096) while qlm-run generates from
#   it: a one-line SIGBUS message and status 1..127, not a core dump;
#   the context running out mid-generation (--ctx 16 -n 100): stops cleanly
#   with a message, status 0.
set -u
top_srcdir=${top_srcdir:-.}
top_builddir=${top_builddir:-.}
RUN=$top_builddir/qlm-run
FIX=$top_builddir/tests/fixtures
M=$FIX/tiny-q8.qlm
SLOW=$FIX/tiny-f32.qlm
[ -x "$RUN" ] || { echo "runtime_faults: $RUN is not built"; exit 99; }
for f in "$M" "$SLOW"; do
    [ -f "$f" ] || { echo "SKIP: $f missing (tests/fixtures.sh makes it)"; exit 77; }
done
T=$(mktemp -d "${TMPDIR:-/tmp}/qlm-faults.XXXXXX") || exit 99
trap 'rm -rf "$T"' EXIT
fails=0
fail() { echo "FAIL: $*"; fails=$((fails + 1)); }
pass() { echo "ok: $*"; }

# refuse WHAT PATTERN ARGS...: qlm-run ARGS fails as described above.
refuse() {
    what=$1 pat=$2
    shift 2
    "$RUN" "$@" >"$T/out" 2>"$T/err" </dev/null
    rc=$?
    if [ $rc -eq 0 ] || [ $rc -ge 128 ]; then
        fail "$what: status $rc (want 1..127)"; cat "$T/err"
    elif [ "$(wc -l <"$T/err")" -ne 1 ] || ! grep -q '^qlm-run: ' "$T/err"; then
        fail "$what: want one 'qlm-run:' line on stderr"; cat "$T/err"
    elif ! grep -qiE -e "$pat" "$T/err"; then
        fail "$what: stderr does not match /$pat/"; cat "$T/err"
    elif [ -s "$T/out" ]; then
        fail "$what: output on stdout"
    else
        pass "$what: $(cat "$T/err")"
    fi
}

for v in 0 -1 99999 abc '' 2x; do
    refuse "--threads '$v'" "threads" "$M" -p hi -n 1 --threads "$v"
done
for v in 0 -3 99999999999999999999 4096000 abc 1e3; do
    refuse "--ctx '$v'" "ctx" "$M" -p hi -n 1 --ctx "$v"
done
refuse "-n abc" "n-predict|-n" "$M" -p hi -n abc
refuse "empty prompt" "empty prompt" "$M" -p ""
refuse "prompt longer than --ctx" "context" "$M" --ctx 3 \
    -p "It was the best of times, it was the worst of times"
printf '5 7 2304\n' >"$T/ids"  # the tiny model has 2304 embedding rows
refuse "token id = vocab size" "ids.*2304.*range" "$M" --tokens "$T/ids"
printf '5 -1\n' >"$T/ids"
refuse "negative token id" "ids" "$M" --tokens "$T/ids"
printf '5 x7\n' >"$T/ids"
refuse "non-numeric token id" "ids" "$M" --tokens "$T/ids"
refuse "invalid UTF-8 (lone continuation byte)" "utf-?8" "$M" -p "$(printf 'ab\200cd')"
refuse "invalid UTF-8 (surrogate)" "utf-?8" "$M" -p "$(printf 'x\355\240\200y')"
printf 'hello \377 there' >"$T/p.txt"
refuse "invalid UTF-8 prompt file" "utf-?8" "$M" -f "$T/p.txt"

# The context runs out mid-generation: a clean stop with a message, status 0.
"$RUN" "$M" -p "Once upon a time" --ctx 16 -n 100 --temp 0 >"$T/out" 2>"$T/err" </dev/null
rc=$?
if [ $rc -eq 0 ] && grep -qiE 'context.*full|out of context' "$T/err" && [ -s "$T/out" ]; then
    pass "context full mid-generation: status 0, $(grep -iE 'context.*full|out of context' "$T/err")"
else
    fail "context full mid-generation: status $rc"; cat "$T/err"
fi

# The model file truncated while mapped, during generation (f32, one thread:
# ~1000 tokens take seconds).  Started once its settings line is out.
cp "$SLOW" "$T/m.qlm" && chmod u+w "$T/m.qlm"
"$RUN" "$T/m.qlm" -p "Once upon a time" --ctx 1024 -n 1000 --temp 0 --threads 1 --no-verify \
    >"$T/out" 2>"$T/err" </dev/null &
pid=$!
i=0
while ! grep -q '^seed' "$T/err" 2>/dev/null && [ $i -lt 200 ]; do sleep 0.05; i=$((i + 1)); done
sleep 0.2
truncate -s 4096 "$T/m.qlm"
wait $pid
rc=$?
nl=$(grep -c '^qlm-run: ' "$T/err")
if [ $rc -eq 0 ]; then
    fail "truncated while mapped: status 0 (finished before the truncation?)"; cat "$T/err"
elif [ $rc -ge 128 ]; then
    fail "truncated while mapped: killed by signal $((rc - 128))"; cat "$T/err"
elif [ "$nl" -ne 1 ] || ! grep -q '^qlm-run: .*m\.qlm.*SIGBUS' "$T/err"; then
    fail "truncated while mapped: want one 'qlm-run: ...m.qlm...SIGBUS' line"; cat "$T/err"
else
    pass "truncated while mapped: status $rc, $(grep '^qlm-run: ' "$T/err")"
fi

[ $fails -eq 0 ] && exit 0
echo "$fails failure(s)"
exit 1
