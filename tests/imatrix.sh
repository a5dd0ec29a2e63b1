#!/bin/sh
# tests/imatrix.sh — qlm-imatrix on the tiny model, and qlm-convert
# --imatrix with what it writes: the file does not depend on the thread
# count, --help is the man page's, bad input gets one line and leaves no
# file, and today's q8/q4 conversions are the same bytes with and without
# --imatrix.  (ppl_lib.sh: fail, need, expect_fail, $tmp.)
. "$top_srcdir/tests/ppl_lib.sh"
IMX="$top_builddir/qlm-imatrix"
CONVERT="$top_builddir/qlm-convert"
TINY="$top_srcdir/models/tiny"
TXT="$TINY/heldout.txt"
need "$IMX" "$CONVERT" "$FIX/tiny-f32.qlm" "$FIX/tiny-bf16.qlm" "$FIX/tiny-q8.qlm" \
    "$FIX/tiny-q4.qlm" "$FIX/synth-tiny"

"$IMX" --help > "$tmp/help" || fail "--help failed"
sed -n '/^prints\.$/,/^\.fi$/p' "$top_srcdir/man/qlm-imatrix.1" | sed '1,3d;$d' > "$tmp/man"
cmp -s "$tmp/help" "$tmp/man" || { diff "$tmp/man" "$tmp/help"; fail "--help is not man/qlm-imatrix.1's"; }
"$IMX" --version > "$tmp/ver" || fail "--version failed"
grep -Eq "^qlm-imatrix [0-9]+\.[0-9]+\.[0-9]+$" "$tmp/ver" || fail "--version: $(cat "$tmp/ver")"

# run IMAT THREADS MODEL [ARGS...]: one summary line on stderr, nothing on stdout
run() {
    out=$1 th=$2 model=$3
    shift 3
    "$IMX" "$model" -f "$TXT" -o "$tmp/$out" --threads "$th" "$@" > "$tmp/out" 2> "$tmp/err" ||
        fail "qlm-imatrix $model -o $out: $(cat "$tmp/err")"
    [ ! -s "$tmp/out" ] || fail "output on stdout"
    [ "$(wc -l < "$tmp/err")" -eq 1 ] || fail "not one line on stderr: $(cat "$tmp/err")"
    echo "ok: $(cat "$tmp/err")"
}
run a.imat 1 "$FIX/tiny-f32.qlm" --ctx 128 --chunks 6
grep -Eq "^qlm-imatrix: wrote .*/a\.imat: 29 weights, 768 tokens in 6 chunks of 128 \(of [0-9]+\), [0-9.]+ s \(1 threads\)$" \
    "$tmp/err" || fail "summary: $(cat "$tmp/err")"
run b.imat 2 "$FIX/tiny-f32.qlm" --ctx 128 --chunks 6
cmp -s "$tmp/a.imat" "$tmp/b.imat" || fail "1 and 2 threads wrote different files"
echo "ok: the same bytes with 1 and 2 threads"
run c.imat 2 "$FIX/tiny-bf16.qlm" --ctx 64 --chunks 3
cmp -s "$tmp/a.imat" "$tmp/c.imat" && fail "other chunks, same file"

# refusals: one line, no file
printf 'To be' > "$tmp/short.txt"
expect_fail "tiny-q8.qlm: tensor 'model.embed_tokens.weight' is q8: the statistics must come from a float model" \
    "$IMX" "$FIX/tiny-q8.qlm" -f "$TXT" -o "$tmp/q8.imat"
expect_fail "short.txt: [0-9]+ tokens, fewer than one chunk of --ctx 512" \
    "$IMX" "$FIX/tiny-f32.qlm" -f "$tmp/short.txt" -o "$tmp/s.imat"
expect_fail "context size 5000 exceeds the model's maximum of 1024" \
    "$IMX" "$FIX/tiny-f32.qlm" -f "$TXT" -o "$tmp/s.imat" --ctx 5000
expect_usage "no output" "$IMX" "$FIX/tiny-f32.qlm" -f "$TXT"
expect_usage "no text" "$IMX" "$FIX/tiny-f32.qlm" -o "$tmp/s.imat"
expect_usage "missing FILE.qlm" "$IMX"
expect_usage "--ctx" "$IMX" "$FIX/tiny-f32.qlm" -f "$TXT" -o "$tmp/s.imat" --ctx 0
expect_usage "--chunks" "$IMX" "$FIX/tiny-f32.qlm" -f "$TXT" -o "$tmp/s.imat" --chunks x
expect_usage "unknown option" "$IMX" "$FIX/tiny-f32.qlm" -f "$TXT" -o "$tmp/s.imat" --bogus
expect_fail "nodir/s.imat: cannot create" \
    "$IMX" "$FIX/tiny-f32.qlm" -f "$TXT" -o "$tmp/nodir/s.imat" --ctx 128 --chunks 1
# cli/'s rule for outputs, checked before any evaluation
mkdir "$tmp/dir.imat"
expect_fail "dir.imat: is a directory" "$IMX" -m "$FIX/tiny-f32.qlm" -f "$TXT" -o "$tmp/dir.imat"
ln -s nowhere.imat "$tmp/dangling.imat"
expect_fail "dangling.imat: a symbolic link to nothing" \
    "$IMX" "$FIX/tiny-f32.qlm" -f "$TXT" -o "$tmp/dangling.imat"
if command -v mkfifo >/dev/null; then
    mkfifo "$tmp/fifo.imat"
    expect_fail "fifo.imat: not a regular file" \
        "$IMX" "$FIX/tiny-f32.qlm" -f "$TXT" -o "$tmp/fifo.imat"
    rm -f "$tmp/fifo.imat"
fi
rm -f "$tmp/dangling.imat"
expect_fail "a.imat: already exists; use --force" \
    "$IMX" "$FIX/tiny-f32.qlm" -f "$TXT" -o "$tmp/a.imat" --ctx 128 --chunks 1
cmp -s "$tmp/a.imat" "$tmp/b.imat" || fail "an existing output was changed"
[ ! -e "$tmp/q8.imat" ] && [ ! -e "$tmp/s.imat" ] || fail "a refused run left a file"
run b.imat 2 "$FIX/tiny-f32.qlm" --ctx 128 --chunks 1 --force
cmp -s "$tmp/a.imat" "$tmp/b.imat" && fail "--force did not replace the file"
ln -s b.imat "$tmp/link.imat"
run link.imat 2 "$FIX/tiny-f32.qlm" --ctx 128 --chunks 6 --force
[ -L "$tmp/link.imat" ] && cmp -s "$tmp/a.imat" "$tmp/b.imat" ||
    fail "through a symbolic link: the link or the file it names is wrong"
rm -f "$tmp/link.imat"
ls "$tmp" | grep -q '\.tmp\.' && fail "temporary files left: $(ls "$tmp")"

# qlm-convert --imatrix: the fixtures' bytes (tests/fixtures.sh converts so)
for t in q8 q4; do
    "$CONVERT" "$TINY" -o "$tmp/$t.qlm" --type "$t" --threads 2 --quiet --imatrix "$tmp/a.imat" ||
        fail "qlm-convert --type $t --imatrix"
    cmp -s "$tmp/$t.qlm" "$FIX/tiny-$t.qlm" || fail "$t: --imatrix changed the output"
    echo "ok: $t with --imatrix is tiny-$t.qlm, byte for byte"
    rm -f "$tmp/$t.qlm"
done
expect_fail "a.imat: measured on a model with n_layers 4, the checkpoint has 2" \
    "$CONVERT" "$FIX/synth-tiny" -o "$tmp/s.qlm" --quiet --imatrix "$tmp/a.imat"
[ ! -e "$tmp/s.qlm" ] || fail "a refused conversion left its output"
echo "all qlm-imatrix checks ok"
