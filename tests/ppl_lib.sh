# tests/ppl_lib.sh — sourced by the tests/ppl_*.sh scripts (not a test itself).
# Run by `make check` with top_srcdir and top_builddir set (tests/local.am).
: "${top_srcdir:=.}"
: "${top_builddir:=.}"
PPL="$top_builddir/qlm-ppl"
BENCH="$top_builddir/qlm-bench"
FIX="$top_builddir/tests/fixtures"
REF="$top_srcdir/models/tiny/ref"
tmp=$(mktemp -d "${TMPDIR:-/tmp}/qlm-ppl-test.XXXXXX") || exit 99
trap 'rm -rf "$tmp"' EXIT
trap 'exit 1' INT TERM

fail() { echo "FAIL: $*" >&2; exit 1; }
# need FILE...: skip the test (status 77) when a fixture is missing.
need() { for f; do [ -e "$f" ] || { echo "SKIP: $f missing (tests/fixtures.sh makes it)"; exit 77; }; done; }

# jget KEY FILE: the value of "KEY" in a one-line JSON object (quotes removed).
jget() { sed -n "s/.*\"$1\": \([^,}]*\).*/\1/p" "$2" | head -n 1 | tr -d '"'; }

# ok 'awk condition' name=value...: fail unless the condition holds.
ok() {
    cond=$1
    shift
    args=
    for a; do args="$args -v $a"; done
    # shellcheck disable=SC2086
    awk $args "BEGIN { exit !($cond) }" || fail "expected $cond with$args"
}

# expect_fail PATTERN CMD...: CMD must exit 1 (an error; expect_usage: 2, a
# usage error) with nothing on stdout and exactly one line "PROG: ..." on
# stderr matching PATTERN (grep -E).
expect_fail() { expect_status 1 "$@"; }
expect_usage() { expect_status 2 "$@"; }
expect_status() {
    want=$1 pat=$2
    shift 2
    rc=0
    "$@" > "$tmp/out" 2> "$tmp/err" || rc=$?
    [ "$rc" -eq "$want" ] || fail "exit $rc, not $want: $* ($(cat "$tmp/err"))"
    [ ! -s "$tmp/out" ] || fail "output on stdout: $*"
    [ "$(wc -l < "$tmp/err")" -eq 1 ] || fail "not one line on stderr: $*: $(cat "$tmp/err")"
    prog=$(basename "$1")
    grep -q "^$prog: " "$tmp/err" || fail "no '$prog: ' prefix: $(cat "$tmp/err")"
    grep -Eq -e "$pat" "$tmp/err" || fail "stderr does not match '$pat': $(cat "$tmp/err")"
    echo "ok (refused, status $rc): $(cat "$tmp/err")"
}
