#!/bin/sh
# kernels_isa.sh — the kernel set a program runs, through qlm-bench --json:
# $QLM_ISA forces each set, or is refused with one line naming it (unknown,
# not compiled in, not supported by this CPU); unset or empty, the best set
# that runs here is chosen (avx512vnni, avxvnni, avx2, neon, scalar, in that
# order); scalar always runs.
set -u
top_builddir=${top_builddir:-.}
BENCH=$top_builddir/qlm-bench
M=$top_builddir/tests/fixtures/tiny-q8.qlm
[ -f "$M" ] || { echo "kernels_isa: $M missing (tests/fixtures.sh makes it): skipped"; exit 77; }
tmp=$(mktemp -d "${TMPDIR:-/tmp}/qlm-isa.XXXXXX") || exit 99
trap 'rm -rf "$tmp"' EXIT
fails=0
fail() { echo "FAIL: $*"; fails=$((fails + 1)); }

# bench [ISA]: qlm-bench with QLM_ISA=ISA (no argument: QLM_ISA unset); its
# "isa" on stdout, its stderr in $tmp/err.
bench() {
    set -- ${1+"QLM_ISA=$1"}
    env -u QLM_ISA "$@" "$BENCH" "$M" --prompt 2 --gen 0 --reps 1 --probe-mib 0 --threads 1 \
        --json 2> "$tmp/err" | sed -n 's/.*"isa": "\([a-z0-9]*\)".*/\1/p'
}

best=
for isa in avx512vnni avxvnni avx2 neon scalar; do
    got=$(bench "$isa")
    if [ -n "$got" ]; then
        [ "$got" = "$isa" ] || fail "QLM_ISA=$isa ran $got"
        [ -n "$best" ] || best=$isa
        echo "ok: QLM_ISA=$isa runs"
    elif [ "$(wc -l < "$tmp/err")" -eq 1 ] &&
         grep -Eq "^qlm-bench: QLM_ISA=$isa: (kernels not compiled into this build|this CPU does not support these kernels)\$" "$tmp/err"; then
        echo "ok: QLM_ISA=$isa refused: $(cat "$tmp/err")"
    else
        fail "QLM_ISA=$isa: neither ran nor was refused in one line: $(cat "$tmp/err")"
    fi
done
[ "$(bench scalar)" = scalar ] || fail "QLM_ISA=scalar does not run"
[ "$(bench "")" = "$best" ] || fail "QLM_ISA= (empty) did not choose $best"
[ "$(bench)" = "$best" ] || fail "QLM_ISA unset did not choose $best"

out=$(bench bogus)
[ -z "$out" ] || fail "QLM_ISA=bogus ran $out"
[ "$(cat "$tmp/err")" = "qlm-bench: QLM_ISA=bogus: unknown kernel set (scalar, avx2, avxvnni, avx512vnni, neon)" ] ||
    fail "QLM_ISA=bogus: $(cat "$tmp/err")"

[ "$fails" -eq 0 ] && { echo "kernels_isa: all passed"; exit 0; }
echo "$fails failure(s)"
exit 1
