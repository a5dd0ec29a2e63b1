#!/bin/sh
# qlm(3) documents libqlm's whole API: every function declared in
# runtime/qlm.h has its prototype in the page's SYNOPSIS and an entry
# (".BR name ()") in its DESCRIPTION, and every function of the SYNOPSIS is
# declared in qlm.h or qlm_format.h (no entry outlives its function).
set -u
top_srcdir=${top_srcdir:-.}
H=$top_srcdir/runtime/qlm.h
F=$top_srcdir/formats/qlm_format.h
MAN=$top_srcdir/man/qlm.3
fails=0
fail() { echo "FAIL: $*"; fails=$((fails + 1)); }

# Names called "name(" in a C header, comments left out.
declared() {
    awk '{
        line = $0; out = ""
        while (line != "") {
            if (in_comment) {
                i = index(line, "*/")
                if (!i) { line = ""; break }
                line = substr(line, i + 2); in_comment = 0
            } else {
                i = index(line, "/*")
                if (!i) { out = out line; line = "" }
                else { out = out substr(line, 1, i - 1); line = substr(line, i + 2); in_comment = 1 }
            }
        }
        print out
    }' "$1" | grep -o 'qlm_[a-z0-9_]*[[:space:]]*(' | sed 's/[[:space:]]*($//' | sort -u
}
# The lines of one .SH section of the page.
section() { awk -v s="$1" '/^\.SH/ { on = ($0 == ".SH " s) ; next } on' "$MAN"; }

api=$(declared "$H")
[ "$(printf '%s\n' "$api" | wc -l)" -ge 30 ] || fail "only $(printf '%s\n' "$api" | wc -l) functions found in $H"
synopsis=$(section SYNOPSIS)
description=$(section DESCRIPTION)
for f in $api; do
    printf '%s\n' "$synopsis" | grep -q "[ *]$f(" || fail "$f: no prototype in the SYNOPSIS of $MAN"
    printf '%s\n' "$description" | grep -qx "\.BR $f ()" ||
        fail "$f: no '.BR $f ()' entry in the DESCRIPTION of $MAN"
done
known=$(printf '%s\n%s\n' "$api" "$(declared "$F")")
for f in $(printf '%s\n' "$synopsis" | grep -o 'qlm_[a-z0-9_]*(' | tr -d '(' | sort -u); do
    printf '%s\n' "$known" | grep -qx "$f" || fail "$f: in the SYNOPSIS of $MAN, declared nowhere"
done
[ "$fails" -eq 0 ] && echo "ok: the $(printf '%s\n' "$api" | wc -l) functions of qlm.h are in qlm(3)"
[ "$fails" -eq 0 ]
