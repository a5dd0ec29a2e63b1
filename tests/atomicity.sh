#!/bin/sh
# tests/atomicity.sh — qlm-convert's output appears whole or not at all:
#   * SIGKILL mid-write (as soon as OUT.qlm.tmp.PID exists): no OUT.qlm; the
#     stale temp file is left (its name carries the dead pid, so no run can
#     mistake it for its own) and a re-run ignores it and succeeds;
#   * SIGKILL mid-write over an existing OUT.qlm with --force: the old file
#     is intact (the new one only replaces it by rename at the end);
#   * a full disk (ulimit -f, SIGXFSZ ignored so write fails with EFBIG): one
#     "qlm-convert:" line naming the file, status 1..127, no output, no temp;
#   * an existing OUT.qlm is never clobbered without --force (cmp).
# Uses tests/fixtures/synth-tiny (a 79 MB checkpoint: ~2 s of conversion, a
# wide window to kill it in) and models/tiny.
set -u
top_srcdir=${top_srcdir:-.}
top_builddir=${top_builddir:-.}
CONVERT=$top_builddir/qlm-convert
INSPECT=$top_builddir/qlm-inspect
SYNTH=$top_builddir/tests/fixtures/synth-tiny
TINY=$top_srcdir/models/tiny
[ -x "$CONVERT" ] || { echo "atomicity: $CONVERT is not built"; exit 99; }
[ -f "$SYNTH/model.safetensors" ] || { echo "SKIP: $SYNTH missing (tests/fixtures.sh)"; exit 77; }
T=$(mktemp -d "${TMPDIR:-/tmp}/qlm-atomicity.XXXXXX") || exit 99
trap 'rm -rf "$T"' EXIT
fails=0
fail() { echo "FAIL: $*"; fails=$((fails + 1)); }
pass() { echo "ok: $*"; }

# kill_mid_write OUT [ARGS...]: starts the conversion of synth-tiny into OUT,
# SIGKILLs it once OUT.tmp.* exists; status 0 if it was caught mid-write.
kill_mid_write() {
    out=$1
    shift
    "$CONVERT" "$SYNTH" -o "$out" --threads 1 --quiet "$@" 2>"$T/kill.err" &
    pid=$!
    i=0
    while [ $i -lt 3000 ]; do
        if ls "$out".tmp.* >/dev/null 2>&1; then
            kill -9 $pid 2>/dev/null
            wait $pid
            rc=$?
            [ $rc -eq 137 ] && return 0
            echo "converter ended (status $rc) before the kill"
            return 1
        fi
        kill -0 $pid 2>/dev/null || break
        sleep 0.01 2>/dev/null || sleep 1
        i=$((i + 1))
    done
    wait $pid
    echo "no temp file seen (converter status $?)"
    return 1
}

# 1. SIGKILL mid-write
mkdir "$T/a"
if kill_mid_write "$T/a/out.qlm"; then
    if [ -e "$T/a/out.qlm" ]; then
        fail "SIGKILL: out.qlm exists after a killed conversion"
    else
        pass "SIGKILL mid-write: no out.qlm, left: $(cd "$T/a" && ls)"
    fi
    stale=$(ls "$T/a"/out.qlm.tmp.* | head -n 1)
    if "$CONVERT" "$TINY" -o "$T/a/out.qlm" --threads 2 --quiet 2>"$T/err" &&
        "$INSPECT" --verify "$T/a/out.qlm" >/dev/null 2>&1; then
        pass "re-run after SIGKILL succeeds and verifies (stale temp ignored)"
    else
        fail "re-run after SIGKILL"; cat "$T/err"
    fi
    [ -e "$stale" ] || fail "the stale temp file of the killed run was removed by the re-run (expected it ignored)"
else
    fail "SIGKILL: could not kill the converter mid-write"
fi

# 2. SIGKILL mid-write over an existing output with --force: old file intact
mkdir "$T/b"
cp "$top_builddir/tests/fixtures/tiny-q8.qlm" "$T/b/out.qlm" 2>/dev/null ||
    "$CONVERT" "$TINY" -o "$T/b/out.qlm" --quiet
cp "$T/b/out.qlm" "$T/b/orig"
if kill_mid_write "$T/b/out.qlm" --force; then
    if cmp -s "$T/b/out.qlm" "$T/b/orig"; then
        pass "SIGKILL during --force: the existing out.qlm is intact"
    else
        fail "SIGKILL during --force: the existing out.qlm changed"
    fi
else
    fail "SIGKILL --force: could not kill the converter mid-write"
fi

# 3. full disk: the file size limit makes write() fail with EFBIG
mkdir "$T/c"
sh -c 'trap "" XFSZ; ulimit -f 200; exec "$@"' sh \
    "$CONVERT" "$TINY" -o "$T/c/out.qlm" --threads 2 --quiet >"$T/out" 2>"$T/err"
rc=$?
nl=$(wc -l <"$T/err")
if [ $rc -eq 0 ] || [ $rc -ge 128 ]; then
    fail "full disk: status $rc (want 1..127)"; cat "$T/err"
elif [ "$nl" -ne 1 ] || ! grep -qE '^qlm-convert: .*out\.qlm.*(too large|EFBIG|space|write)' "$T/err"; then
    fail "full disk: want one line naming out.qlm and the write error"; cat "$T/err"
elif [ -n "$(ls -A "$T/c")" ]; then
    fail "full disk: left behind: $(ls -A "$T/c")"
else
    pass "full disk: status $rc, $(cat "$T/err"), nothing left"
fi

# 4. no clobbering without --force
mkdir "$T/d"
printf 'precious, not a model\n' >"$T/d/out.qlm"
cp "$T/d/out.qlm" "$T/d/orig"
"$CONVERT" "$TINY" -o "$T/d/out.qlm" --threads 2 --quiet >"$T/out" 2>"$T/err"
rc=$?
if [ $rc -eq 0 ] || [ $rc -ge 128 ] || [ "$(wc -l <"$T/err")" -ne 1 ] ||
    ! grep -qE '^qlm-convert: .*out\.qlm.*(exists|force)' "$T/err"; then
    fail "existing output without --force: status $rc"; cat "$T/err"
elif ! cmp -s "$T/d/out.qlm" "$T/d/orig"; then
    fail "existing output without --force: the file changed"
elif [ "$(ls -A "$T/d" | wc -l)" -ne 2 ]; then
    fail "existing output without --force: left behind: $(ls -A "$T/d")"
else
    pass "existing output kept without --force: $(cat "$T/err")"
fi
if "$CONVERT" "$TINY" -o "$T/d/out.qlm" --threads 2 --quiet --force 2>"$T/err" &&
    ! cmp -s "$T/d/out.qlm" "$T/d/orig" && "$INSPECT" --verify "$T/d/out.qlm" >/dev/null 2>&1; then
    pass "--force replaces it with a valid model"
else
    fail "--force"; cat "$T/err"
fi

[ $fails -eq 0 ] && exit 0
echo "$fails failure(s)"
exit 1
