#!/bin/sh
# tests/man_options.sh — every program's man page documents the options its
# --help lists, and no others: the long options of --help and those of the
# man page's option items (the line after each .TP) are the same set.
. "${top_srcdir:-.}/tests/run_common.sh"

for prog in qlm-run qlm-ppl qlm-bench qlm-inspect qlm-convert qlm-imatrix; do
    man=$top_srcdir/man/$prog.1
    "$top_builddir/$prog" --help >"$T/help" 2>"$T/err" ||
        { fail "$prog --help: status $?"; continue; }
    [ -s "$T/err" ] && fail "$prog --help writes on stderr: $(cat "$T/err")"
    grep -oE -- '--[a-z][a-z-]*' "$T/help" | sort -u >"$T/help.opts"
    sed 's/\\-/-/g' "$man" | awk 'tp { print; tp = 0 } /^\.TP/ { tp = 1 }' |
        grep -oE -- '--[a-z][a-z-]*' | sort -u >"$T/man.opts"
    if [ ! -s "$T/help.opts" ]; then
        fail "$prog: no long options in --help"
    elif cmp -s "$T/help.opts" "$T/man.opts"; then
        pass "$prog: man page and --help list the same $(wc -l <"$T/help.opts") options"
    else
        fail "$prog: man page (>) and --help (<) differ:"
        diff "$T/help.opts" "$T/man.opts" | grep '^[<>]'
    fi
done
finish
