# bench/lib.sh — helpers sourced by the bench/ scripts.  The caller sets
# $me (its name, for messages) and $build (a build directory).

die() { echo "$me: $*" >&2; exit 1; }
say() { echo "$me: $*" >&2; }

# A program from the build directory (top level or its folder), else $PATH.
find_prog() {
    for p in "$build/$1" "$build/runtime/$1" "$build/convert/$1" "$build/formats/$1"; do
        if [ -x "$p" ]; then echo "$p"; return 0; fi
    done
    command -v "$1" 2>/dev/null || return 1
}

# "key": value of a one-line JSON object (jansson's output: no nesting here).
jget() { sed -n "s/.*\"$1\": \([^,}]*\).*/\1/p" | head -n 1 | tr -d '"'; }
