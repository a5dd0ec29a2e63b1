#!/bin/sh
# qlm-run: a model file truncated while mapped gives one clear line and status
# 1 (the SIGBUS handler), not a crash.
. "${top_srcdir:-.}/tests/run_common.sh"
M=$(any_model) || exit $?
command -v mkfifo >/dev/null || skip "no mkfifo"

cp "$M" "$T/m.qlm" && chmod u+w "$T/m.qlm"
mkfifo "$T/in"
"$QLM_RUN" "$T/m.qlm" --chat --no-verify --temp 0 -n 4 <"$T/in" >"$T/out" 2>"$T/err" &
pid=$!
exec 3>"$T/in"
# Wait until the model is open (the settings line), then cut the file.
i=0
while ! grep -q '^seed' "$T/err" 2>/dev/null && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
: >"$T/m.qlm"
echo "Hello" >&3
exec 3>&-
wait $pid
rc=$?
if [ $rc -eq 1 ] && grep -q '^qlm-run: .*m.qlm: the model file changed or was truncated while in use (SIGBUS)$' "$T/err"; then
    pass "truncated while in use: status 1, $(grep SIGBUS "$T/err")"
else
    fail "truncated while in use: status $rc"; cat "$T/err"
fi
finish
