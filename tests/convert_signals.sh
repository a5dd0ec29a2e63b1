#!/bin/sh
# tests/convert_signals.sh — qlm-convert stopped by a signal:
#   * SIGINT or SIGTERM while the output is being written: one line
#     "qlm-convert: interrupted: OUT not written (removed OUT.tmp.PID)", the
#     program ends by the signal (status 130, 143), nothing is left;
#   * SIGINT once the output was renamed into place (the rename held for a
#     while by strace): the file is complete, so status 0, a warning that
#     it is kept, and the file verifies;
#   * SIGBUS from a shard truncated while it is read: one line naming the
#     checkpoint, status 1, the temporary output removed.
# Uses tests/fixtures/synth-tiny (~2 s of conversion with one thread).
. "${top_srcdir:-.}/tests/run_common.sh"
CONVERT=$top_builddir/qlm-convert
INSPECT=$top_builddir/qlm-inspect
SYNTH=$FIX/synth-tiny
[ -f "$SYNTH/model.safetensors" ] || skip "$SYNTH missing (tests/fixtures.sh makes it)"

# until_exists PATTERN PID: wait (up to 30 s) until a file matches PATTERN
# while PID runs; status 0 if one did.
until_exists() {
    i=0
    while [ $i -lt 3000 ]; do
        # shellcheck disable=SC2086
        ls $1 >/dev/null 2>&1 && return 0
        kill -0 "$2" 2>/dev/null || return 1
        sleep 0.01 2>/dev/null || sleep 1
        i=$((i + 1))
    done
    return 1
}

# interrupt SIG STATUS: signal SIG once the temporary output exists.
interrupt() {
    sig=$1 want=$2
    d=$T/$sig
    mkdir "$d"
    "$CONVERT" "$SYNTH" -o "$d/out.qlm" --threads 1 --quiet 2>"$d/err" &
    pid=$!
    if ! until_exists "$d/out.qlm.tmp.*" $pid; then
        wait $pid
        fail "SIG$sig: no temporary file seen (status $?)"
        return
    fi
    kill -s "$sig" $pid
    wait $pid
    rc=$?
    left=$(ls -A "$d" | grep -v '^err$')
    if [ $rc -ne "$want" ]; then
        fail "SIG$sig mid-write: status $rc, want $want"; cat "$d/err"
    elif [ -n "$left" ]; then
        fail "SIG$sig mid-write: left behind: $left"
    elif [ "$(wc -l <"$d/err")" -ne 1 ] || ! grep -q "^qlm-convert: interrupted: $d/out.qlm not written (removed $d/out.qlm.tmp.$pid)$" "$d/err"; then
        fail "SIG$sig mid-write: stderr"; cat "$d/err"
    else
        pass "SIG$sig mid-write: status $rc, $(cat "$d/err")"
    fi
}
interrupt INT 130
interrupt TERM 143

# A shard cut short while it is read: SIGBUS, reported as one line naming
# the checkpoint, and the unfinished output removed.
d=$T/bus
mkdir "$d"
cp -r "$SYNTH" "$d/ckpt"
"$CONVERT" "$d/ckpt" -o "$d/out.qlm" --threads 1 --quiet 2>"$d/err" &
pid=$!
if until_exists "$d/out.qlm.tmp.*" $pid; then
    truncate -s 4096 "$d/ckpt/model.safetensors"
    wait $pid
    rc=$?
    want="qlm-convert: $d/ckpt: a checkpoint file changed or was truncated while in use (SIGBUS); $d/out.qlm not written (removed $d/out.qlm.tmp.$pid)"
    if [ $rc -eq 1 ] && [ "$(cat "$d/err")" = "$want" ] && [ -z "$(ls "$d" | grep out)" ]; then
        pass "shard truncated mid-conversion: status 1, $(cat "$d/err")"
    else
        fail "shard truncated mid-conversion: status $rc, left: $(ls "$d" | grep out)"
        cat "$d/err"
    fi
else
    wait $pid
    fail "shard truncation: no temporary file seen (status $?)"
fi

# After the rename: strace holds the converter in link(2) (the publish step
# without --force) for 2 s, and the signal arrives then.
command -v strace >/dev/null && strace -o /dev/null true 2>/dev/null || {
    echo "SKIP: strace cannot trace here: the after-rename case did not run"
    finish
}
d=$T/late
mkdir "$d"
# (LeakSanitizer cannot run under ptrace: an ASan build exits without it)
ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0" \
    strace -f -o "$d/trace" -e trace=link,linkat -e inject=link,linkat:delay_exit=2000000 \
    "$CONVERT" "$TINY" -o "$d/out.qlm" --quiet 2>"$d/err" &
spid=$!
wait_for DELAYED "$d/trace"
# strace -f starts each line with the pid; the link is the main thread's
kill -INT "$(sed -n 's/^\([0-9][0-9]*\) .*DELAYED.*/\1/p' "$d/trace")"
wait $spid
rc=$?
if [ $rc -eq 0 ] && [ "$(wc -l <"$d/err")" -eq 1 ] &&
    grep -q "^qlm-convert: warning: interrupted after $d/out.qlm was complete: it is kept$" "$d/err" &&
    "$INSPECT" --verify "$d/out.qlm" >/dev/null && [ -z "$(ls "$d" | grep tmp)" ]; then
    pass "SIGINT after the rename: status 0, $(cat "$d/err"), the file verifies"
else
    fail "SIGINT after the rename: status $rc"; cat "$d/err" "$d/trace"; ls -la "$d"
fi
finish
