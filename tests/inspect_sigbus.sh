#!/bin/sh
# tests/inspect_sigbus.sh — qlm-inspect --verify on a .qlm truncated while it
# is being verified: one line naming the file (the SIGBUS handler), status
# 1, not a crash.  strace holds qlm-inspect after it has mapped the file;
# the file then loses its data section (header and sections stay, so the
# open's checks pass and the hashing touches the vanished pages).
. "${top_srcdir:-.}/tests/run_common.sh"
INSPECT=$top_builddir/qlm-inspect
M=$(any_model) || exit $?
need_strace

cp "$M" "$T/m.qlm" && chmod u+w "$T/m.qlm"
data=$("$INSPECT" --json "$T/m.qlm" | sed -n 's/^ *"data_offset": \([0-9]*\).*/\1/p')
[ -n "$data" ] || { fail "no data_offset in qlm-inspect --json"; finish; }
# (LeakSanitizer cannot run under ptrace: an ASan build exits without it)
ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0" \
    strace -o "$T/trace" -P "$T/m.qlm" -e trace=close -e inject=close:delay_exit=2000000 \
    "$INSPECT" --verify "$T/m.qlm" >"$T/out" 2>"$T/err" &
pid=$!
wait_for DELAYED "$T/trace"
truncate -s "$data" "$T/m.qlm"
wait $pid
rc=$?
want="qlm-inspect: $T/m.qlm: the file changed or was truncated while in use (SIGBUS)"
if [ $rc -eq 1 ] && [ "$(cat "$T/err")" = "$want" ] && [ ! -s "$T/out" ]; then
    pass "truncated during --verify: status 1, $(cat "$T/err")"
else
    fail "truncated during --verify: status $rc"; cat "$T/err" "$T/trace"
fi
finish
