#!/bin/sh
# tests/fixtures.sh — builds the .qlm fixtures other suites read, into
# $top_builddir/tests/fixtures/ (runs first: suites' .log files depend on
# tests/fixtures.log):
#   tiny-f32.qlm tiny-bf16.qlm tiny-q8.qlm tiny-q4.qlm   from models/tiny
#   synth-tiny/ (qlm-gen-synth --tiny) and synth-tiny-q8.qlm
# Exits 0 only when every fixture was made.
set -eu
top_srcdir=${top_srcdir:-.}
top_builddir=${top_builddir:-.}
FIX=$top_builddir/tests/fixtures
CONVERT=$top_builddir/qlm-convert
GEN=$top_builddir/qlm-gen-synth
TINY=$top_srcdir/models/tiny

mkdir -p "$FIX"
for p in "$CONVERT" "$GEN"; do
    [ -x "$p" ] || { echo "fixtures: $p is not built"; exit 1; }
done

convert() { # convert DIR TYPE OUT
    rm -f "$3"
    "$CONVERT" "$1" -o "$3" --type "$2" --threads 2 --quiet
    [ -s "$3" ] || { echo "fixtures: $3 was not made"; exit 1; }
    echo "fixtures: made $3"
}

rm -rf "$FIX/synth-tiny"
"$GEN" --tiny --tokenizer "$top_srcdir/models/qwen3-tokenizer" "$FIX/synth-tiny"
convert "$FIX/synth-tiny" q8 "$FIX/synth-tiny-q8.qlm"

missing=
for f in config.json model.safetensors tokenizer.json; do
    [ -f "$TINY/$f" ] || missing="$missing $f"
done
if [ -n "$missing" ]; then
    echo "fixtures: $TINY lacks$missing (committed with the tiny model: is the checkout complete?)"
    exit 1
fi
for t in f32 bf16 q8 q4; do
    convert "$TINY" "$t" "$FIX/tiny-$t.qlm"
done
exit 0
