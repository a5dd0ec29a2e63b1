#!/bin/sh
# tests/walls.sh — the walls between the parts of the tree (HACKING.md):
# every '#include "..."' of a part resolves inside the folders that part may
# see, and libqlm.so exports exactly the functions its installed headers
# declare with QLM_API.
set -u
top_srcdir=${top_srcdir:-.}
top_builddir=$(cd "${top_builddir:-.}" && pwd)
cd "$top_srcdir" || exit 99
fails=0

# part: the folders its local includes may come from (config.h is generated)
allowed() {
    case $1 in
    formats) echo "formats" ;;
    schema) echo "schema formats" ;;
    cli) echo "cli formats" ;;
    convert) echo "convert schema formats cli" ;;
    runtime/kernels) echo "runtime/kernels formats" ;;
    runtime/programs) echo "runtime/programs runtime/public cli formats" ;;
    runtime) echo "runtime runtime/kernels schema formats" ;;
    esac
}
for part in formats schema cli convert runtime/kernels runtime/programs runtime; do
    for f in "$part"/*.c "$part"/*.h; do
        [ -f "$f" ] || continue
        for inc in $(sed -n 's/^#include "\([^"]*\)".*/\1/p' "$f"); do
            [ "$inc" = config.h ] && continue
            ok=no
            for dir in $(allowed "$part"); do
                # programs see only the public header of runtime/
                if [ "$dir" = runtime/public ]; then
                    [ "$inc" = qlm.h ] && ok=yes
                elif [ -f "$dir/$inc" ]; then
                    ok=yes
                fi
            done
            # a part's own subfolder path (runtime includes "kernels/kernels.h")
            [ "$part" = runtime ] && [ -f "runtime/$inc" ] && ok=yes
            # a program's main (qlm-inspect in formats/) also sees cli/
            case $f in *_main.c) [ -f "cli/$inc" ] && ok=yes ;; esac
            if [ $ok = no ]; then
                echo "FAIL: $f includes \"$inc\", outside what $part may see ($(allowed "$part"))"
                fails=$((fails + 1))
            fi
        done
    done
done

lib=$top_builddir/.libs/libqlm.so
if [ -f "$lib" ]; then
    api=$(sed -n 's/^QLM_API .*[ *]\(qlm_[a-z0-9_]*\)(.*/\1/p' formats/qlm_format.h \
        formats/qlm_imat.h runtime/qlm.h | sort -u)
    exported=$(nm -D --defined-only "$lib" | awk '$2 == "T" || $2 == "D" || $2 == "B" || $2 == "R" { print $3 }' | sort -u)
    extra=$(printf '%s\n' "$exported" | grep -vxF "$api")
    missing=$(printf '%s\n' "$api" | grep -vxF "$exported")
    [ -n "$extra" ] && { echo "FAIL: libqlm.so exports what no installed header declares:"; echo "$extra"; fails=$((fails + 1)); }
    [ -n "$missing" ] && { echo "FAIL: declared QLM_API but not exported:"; echo "$missing"; fails=$((fails + 1)); }
    echo "libqlm.so: $(printf '%s\n' "$exported" | wc -l) symbols, all qlm_ API"
else
    echo "no shared libqlm.so in $top_builddir (a static build): export check skipped"
fi
[ $fails -eq 0 ] || exit 1
