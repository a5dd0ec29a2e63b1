# run_common.sh — sourced by the tests/run_*.sh scripts (qlm-run end to end).
# Sets QLM_RUN, FIX (fixture folder), TINY (tiny model folder) and T (a
# scratch folder removed on exit); provides small assertion helpers.
set -u
top_srcdir=${top_srcdir:-.}
top_builddir=${top_builddir:-.}
QLM_RUN=${QLM_RUN:-$top_builddir/qlm-run}
FIX=$top_builddir/tests/fixtures
TINY=$top_srcdir/models/tiny
T=$(mktemp -d "${TMPDIR:-/tmp}/qlm-run-test.XXXXXX") || exit 99
trap 'rm -rf "$T"' EXIT
fails=0

fail() { echo "FAIL: $*"; fails=$((fails + 1)); }
pass() { echo "ok: $*"; }
skip() { echo "SKIP: $*"; exit 77; }
finish() { [ "$fails" -eq 0 ] && exit 0; echo "$fails failure(s)"; exit 1; }

# need_fixture NAME: path of tests/fixtures/NAME, or skip the test.
need_fixture() {
    [ -f "$FIX/$1" ] || skip "fixture $FIX/$1 missing (tests/fixtures.sh makes it)"
    echo "$FIX/$1"
}

# any_model: tiny-q8.qlm, or while the tiny model is not trained yet the
# synthetic synth-tiny-q8.qlm (random weights, the real Qwen3 tokenizer);
# skips the test if neither exists.
any_model() {
    for f in tiny-q8.qlm synth-tiny-q8.qlm; do
        [ -f "$FIX/$f" ] && { echo "$FIX/$f"; return 0; }
    done
    skip "no tests/fixtures/tiny-q8.qlm or synth-tiny-q8.qlm (tests/fixtures.sh makes them)"
}

# expect_error WHAT PATTERN CMD...: CMD fails with a status in 1..127, prints
# exactly one line on stderr, starting with "qlm-run:" and matching PATTERN
# (grep -E, case-insensitive); nothing on stdout.
expect_error() {
    what=$1 pat=$2
    shift 2
    "$@" >"$T/out" 2>"$T/err" </dev/null
    rc=$?
    nl=$(wc -l <"$T/err")
    if [ "$rc" -eq 0 ] || [ "$rc" -ge 128 ]; then
        fail "$what: exit status $rc (want 1..127)"; cat "$T/err"
    elif [ "$nl" -ne 1 ]; then
        fail "$what: $nl lines on stderr (want 1)"; cat "$T/err"
    elif ! grep -q '^qlm-run: ' "$T/err"; then
        fail "$what: stderr does not start with 'qlm-run: '"; cat "$T/err"
    elif ! grep -qiE -e "$pat" "$T/err"; then
        fail "$what: stderr does not match /$pat/"; cat "$T/err"
    elif [ -s "$T/out" ]; then
        fail "$what: output on stdout"
    else
        pass "$what (status $rc: $(cat "$T/err"))"
    fi
}

# f32cmp A B VOCAB TOL: see tests/f32cmp.c.
F32CMP=$top_builddir/tests/f32cmp

# vocab_of FILE.qlm: the embedding rows, from "--logits-out" of a 1-token
# prompt (4 bytes per logit), so the tests need no JSON parser.
vocab_of() {
    "$QLM_RUN" "$1" --tokens "$T/one.ids" -n 0 -q --logits-out "$T/one.f32" </dev/null 2>/dev/null &&
        echo $(($(wc -c <"$T/one.f32") / 4))
}
echo 0 >"$T/one.ids"

# wait_for PATTERN FILE: until a line of FILE matches PATTERN (grep), at
# most 30 s; status 0 if one did.
wait_for() {
    i=0
    while ! grep -q -e "$1" "$2" 2>/dev/null; do
        [ $i -ge 3000 ] && return 1
        sleep 0.01 2>/dev/null || sleep 1
        i=$((i + 1))
    done
}

# need_strace: skip the test unless strace can trace here (its delay
# injection holds a program at a chosen system call, so that a file can be
# changed under it at a known point).
need_strace() {
    command -v strace >/dev/null && strace -o /dev/null true 2>/dev/null ||
        skip "strace cannot trace here"
}
