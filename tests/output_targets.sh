#!/bin/sh
# tests/output_targets.sh — the one rule for output files (cli/output.c), as
# qlm-run --logits-out and qlm-convert -o apply it: a regular file (or none)
# is replaced whole through a temporary file and a rename; a symbolic link
# stays a link and the file it names is replaced; a FIFO or a character
# device is written in place by qlm-run and refused by qlm-convert (a .qlm
# cannot be written in place); a directory or a dangling link is refused.
# Nothing here is ever turned into a regular file that was not one.
. "${top_srcdir:-.}/tests/run_common.sh"
CONVERT=$top_builddir/qlm-convert
INSPECT=$top_builddir/qlm-inspect
M=$(any_model) || exit $?
command -v mkfifo >/dev/null || skip "no mkfifo"
V=$(vocab_of "$M") || { fail "cannot read the vocabulary size"; finish; }
want=$((V * 4)) # one position of logits (--tokens one.ids)

logits() { # logits TARGET: qlm-run writes one position's logits to TARGET
    "$QLM_RUN" "$M" --tokens "$T/one.ids" -n 0 -q --no-verify --logits-out "$1" \
        </dev/null >"$T/out" 2>"$T/err"
}

# ---- qlm-run --logits-out ----------------------------------------------------
logits "$T/new.f32" && [ "$(wc -c <"$T/new.f32")" -eq $want ] && [ ! -s "$T/err" ] &&
    [ -z "$(ls "$T" | grep 'new.f32.tmp')" ] &&
    pass "absent file: created, $want bytes" || fail "absent file: $(cat "$T/err")"

echo old >"$T/old.f32"
ino=$(ls -i "$T/old.f32" | cut -d' ' -f1)
logits "$T/old.f32" && [ "$(wc -c <"$T/old.f32")" -eq $want ] &&
    [ "$(ls -i "$T/old.f32" | cut -d' ' -f1)" != "$ino" ] &&
    pass "existing file: replaced by rename (new inode)" || fail "existing file: $(cat "$T/err")"

echo old >"$T/target.f32"
ln -s target.f32 "$T/link.f32"
logits "$T/link.f32" && [ -L "$T/link.f32" ] && [ "$(wc -c <"$T/target.f32")" -eq $want ] &&
    pass "symlink: still a link, the file it names holds the logits" ||
    fail "symlink: $(cat "$T/err"); $(ls -l "$T/link.f32")"

ln -s nowhere.f32 "$T/dangling.f32"
expect_error "dangling symlink refused" 'dangling\.f32: a symbolic link to nothing' \
    "$QLM_RUN" "$M" --tokens "$T/one.ids" -n 0 -q --no-verify --logits-out "$T/dangling.f32"
[ -L "$T/dangling.f32" ] && [ ! -e "$T/nowhere.f32" ] || fail "dangling symlink was changed"

mkdir "$T/dir.f32"
expect_error "directory refused" 'dir\.f32: is a directory' \
    "$QLM_RUN" "$M" --tokens "$T/one.ids" -n 0 -q --no-verify --logits-out "$T/dir.f32"

mkfifo "$T/fifo"
cat "$T/fifo" >"$T/from-fifo" &
reader=$!
logits "$T/fifo"
rc=$?
[ -p "$T/fifo" ] || kill $reader 2>/dev/null # replaced: the reader would wait forever
wait $reader
[ $rc -eq 0 ] && [ -p "$T/fifo" ] && [ "$(wc -c <"$T/from-fifo")" -eq $want ] &&
    cmp -s "$T/from-fifo" "$T/new.f32" &&
    pass "FIFO: written in place ($want bytes to the reader), still a FIFO" ||
    fail "FIFO: status $rc, $(cat "$T/err"); $(ls -l "$T/fifo")"

if [ -c /dev/null ]; then
    logits /dev/null && [ -c /dev/null ] && [ ! -s "$T/err" ] &&
        pass "/dev/null: written in place, still a character device" ||
        fail "/dev/null: $(cat "$T/err"); $(ls -l /dev/null)"
fi

# ---- qlm-convert -o ----------------------------------------------------------------
conv_refused() { # conv_refused WHAT PATTERN OUT [ARGS...]
    what=$1 pat=$2 out=$3
    shift 3
    "$CONVERT" "$TINY" -o "$out" --quiet "$@" </dev/null >"$T/out" 2>"$T/err"
    rc=$?
    if [ $rc -eq 1 ] && [ "$(wc -l <"$T/err")" -eq 1 ] && grep -qE "^qlm-convert: $pat" "$T/err"; then
        pass "qlm-convert -o $what: refused, $(cat "$T/err")"
    else
        fail "qlm-convert -o $what: status $rc"; cat "$T/err"
    fi
}
conv_refused "FIFO" ".*fifo: not a regular file" "$T/fifo" --force
[ -p "$T/fifo" ] || fail "qlm-convert replaced the FIFO"
if [ -c /dev/null ]; then
    conv_refused "/dev/null --force" "/dev/null: not a regular file" /dev/null --force
    [ -c /dev/null ] || fail "qlm-convert replaced /dev/null"
fi
conv_refused "dangling symlink" ".*dangling\.f32: a symbolic link to nothing" "$T/dangling.f32"

echo old >"$T/m.qlm"
ln -s m.qlm "$T/mlink.qlm"
conv_refused "symlink to an existing file" ".*m\.qlm exists; use --force" "$T/mlink.qlm"
if "$CONVERT" "$TINY" -o "$T/mlink.qlm" --force --quiet 2>"$T/err" && [ -L "$T/mlink.qlm" ] &&
    "$INSPECT" --verify "$T/m.qlm" >/dev/null && [ -z "$(ls "$T" | grep 'm.qlm.tmp')" ]; then
    pass "qlm-convert -o symlink --force: still a link, the file it names is the new .qlm"
else
    fail "qlm-convert -o symlink --force: $(cat "$T/err"); $(ls -l "$T/mlink.qlm")"
fi
finish
