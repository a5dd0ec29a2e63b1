#!/bin/sh
# tests/gguf_e2e.sh — GGUF import end to end (issue 17).  models/tiny is
# written as GGUF files by the project's own writer (tests/gguftool) in F32,
# F16, BF16, Q8_0 and Q4_0 and converted with qlm-convert:
#   - F32 / BF16 GGUFs give the very .qlm of the safetensors checkpoint at
#     --type f32 and q8 (so the same tensors, tokenizer and logits, bit for
#     bit); the F16 GGUF at --type f16 and q8 (BF16 -> F16 rounds a few tiny
#     weights, which f16 output rounds the same way and q8 never sees);
#   - the Q8_0 GGUF's q8 tensors keep its codes and scales exactly, and its
#     tokenizer (ids of a few texts, chat template) is the checkpoint's;
#   - -128 codes are quantized again and counted; Q4_0 keeps its blocks
#     under --type q4 and is quantized again, with a note, under q8;
#   - qlm-inspect shows a GGUF's header, keys and tensors (text, --json,
#     --verify).
# Needs tests/fixtures.sh's tiny-f32.qlm and tiny-q8.qlm.
set -u
top_srcdir=${top_srcdir:-.}
top_builddir=${top_builddir:-.}
FIX=$top_builddir/tests/fixtures
TINY=$top_srcdir/models/tiny
CONVERT=$top_builddir/qlm-convert
INSPECT=$top_builddir/qlm-inspect
RUN=$top_builddir/qlm-run
TOOL=$top_builddir/tests/gguftool
for f in "$FIX/tiny-f32.qlm" "$FIX/tiny-q8.qlm"; do
    [ -f "$f" ] || { echo "SKIP: $f missing (tests/fixtures.sh makes it)"; exit 77; }
done
T=$(mktemp -d "${TMPDIR:-/tmp}/qlm-gguf-e2e.XXXXXX") || exit 99
trap 'rm -rf "$T"' EXIT
fails=0
pass() { echo "ok: $*"; }
fail() { echo "FAIL: $*"; fails=$((fails + 1)); }

# convert IN TYPE OUT [OPTION...]: qlm-convert, its stderr in $T/stderr
convert() {
    in=$1 type=$2 out=$3
    shift 3
    "$CONVERT" "$in" -o "$out" --type "$type" --threads 2 --force "$@" 2>"$T/stderr" ||
        { fail "qlm-convert $in --type $type: $(cat "$T/stderr")"; return 1; }
}
# logits FILE.qlm OUT: the logits of a fixed prompt
logits() {
    "$RUN" "$1" -p "The quick brown fox jumps over the lazy dog." -n 1 --temp 0 -q \
        --threads 2 --logits-out "$2" >/dev/null 2>&1
}

# same_ids TEXT: $Q tokenizes TEXT as the checkpoint's conversion does
same_ids() {
    a=$("$RUN" "$Q" --tokenize -p "$1" 2>&1)
    b=$("$RUN" "$FIX/tiny-q8.qlm" --tokenize -p "$1" 2>&1)
    [ -n "$a" ] && [ "$a" = "$b" ] && pass "ids of '$(echo "$1" | head -n 1)': $a" ||
        fail "ids of '$1': $a vs $b"
}

for t in f32 f16 bf16 q8_0 q4_0; do
    "$TOOL" write "$TINY" "$T/tiny-$t.gguf" "$t" || { echo "gguftool write $t failed"; exit 99; }
done
convert "$TINY" f16 "$T/st-f16.qlm" --quiet

# ---- float GGUFs: the checkpoint's .qlm, byte for byte ------------------------
for c in "f32 f32 $FIX/tiny-f32.qlm" "f32 q8 $FIX/tiny-q8.qlm" "bf16 f32 $FIX/tiny-f32.qlm" \
         "bf16 q8 $FIX/tiny-q8.qlm" "f16 f16 $T/st-f16.qlm" "f16 q8 $FIX/tiny-q8.qlm"; do
    set -- $c
    out=$T/g-$1-$2.qlm
    convert "$T/tiny-$1.gguf" "$2" "$out" --quiet || continue
    if cmp -s "$out" "$3"; then
        pass "$1 GGUF -> $2: the same file as the checkpoint's conversion"
    else
        fail "$1 GGUF -> $2 differs from $(basename "$3")"
    fi
done
for c in "f32 f32 $FIX/tiny-f32.qlm" "f32 q8 $FIX/tiny-q8.qlm"; do
    set -- $c
    if logits "$T/g-$1-$2.qlm" "$T/a.f32" && logits "$3" "$T/b.f32" && [ -s "$T/a.f32" ] &&
        cmp -s "$T/a.f32" "$T/b.f32"; then
        pass "$1 GGUF -> $2: the same logits bit for bit ($(wc -c <"$T/a.f32") bytes)"
    else
        fail "$1 GGUF -> $2: logits differ from the checkpoint's"
    fi
done

# ---- Q8_0: codes and scales kept, the tokenizer the checkpoint's ----------------
Q=$T/g-q8_0.qlm
if convert "$T/tiny-q8_0.gguf" q8 "$Q"; then
    grep -q "note: .*: 29 tensors kept their Q8_0/Q4_0 blocks" "$T/stderr" &&
        pass "Q8_0 -> q8: $(grep note "$T/stderr")" ||
        fail "Q8_0 -> q8: no note of the kept blocks: $(cat "$T/stderr")"
    r=$("$TOOL" same "$T/tiny-q8_0.gguf" "$Q") && [ "${r%% blocks*}" = "tensors 29" ] &&
        pass "Q8_0 -> q8: exact codes and scales: $r" || fail "Q8_0 -> q8: $r"
    r=$("$TOOL" tok "$Q" "$FIX/tiny-q8.qlm") && pass "$r" || fail "the tokenizers differ"
    same_ids "Hello world"
    same_ids "<|im_start|>user
Who are you?<|im_end|>"
    same_ids "$(printf 'Caf\303\251 na\303\257ve, 12345 \346\227\245\346\234\254')"
    "$INSPECT" --verify "$Q" >/dev/null 2>&1 && pass "Q8_0 -> q8 passes qlm-inspect --verify" ||
        fail "Q8_0 -> q8 fails --verify"
    logits "$Q" "$T/a.f32" && [ -s "$T/a.f32" ] && pass "Q8_0 -> q8 runs" ||
        fail "qlm-run on the Q8_0 conversion"
fi

# ---- -128 and Q4_0 -----------------------------------------------------------------
"$TOOL" write "$TINY" "$T/m128.gguf" q8_0 --minus128 5 || exit 99
if convert "$T/m128.gguf" q8 "$T/m128.qlm"; then
    grep -q "5 Q8_0 blocks held the code -128, which q8 does not allow" "$T/stderr" &&
        pass "-128: $(grep -- -128 "$T/stderr")" || fail "-128: no note: $(cat "$T/stderr")"
    r=$("$TOOL" same "$T/m128.gguf" "$T/m128.qlm") && [ "${r##* redone }" = 5 ] &&
        pass "-128: the 5 blocks quantized again, the others kept: $r" || fail "-128: $r"
    "$INSPECT" --verify "$T/m128.qlm" >/dev/null 2>&1 || fail "-128: the .qlm fails --verify"
fi
if convert "$T/tiny-q4_0.gguf" q4 "$T/g-q4.qlm"; then
    r=$("$TOOL" same "$T/tiny-q4_0.gguf" "$T/g-q4.qlm") && [ "${r%% blocks*}" = "tensors 28" ] &&
        pass "Q4_0 -> q4: the 28 matrices keep their blocks: $r" || fail "Q4_0 -> q4: $r"
fi
if convert "$T/tiny-q4_0.gguf" q8 "$T/g-q4-q8.qlm"; then
    grep -q "note: .*29 Q4_0 tensors dequantized and quantized again" "$T/stderr" &&
        pass "Q4_0 -> q8: $(grep note "$T/stderr")" || fail "Q4_0 -> q8: no note"
fi

# ---- qlm-inspect on a GGUF -----------------------------------------------------------
G=$T/tiny-q8_0.gguf
out=$("$INSPECT" "$G" 2>&1)
echo "$out" | grep -q "^format: GGUF 3, " &&
    echo "$out" | grep -q "tokenizer.ggml.pre  *string \"qwen2\"" &&
    echo "$out" | grep -qE "^  blk.0.attn_q.weight +Q8_0 +256 x 256 " &&
    echo "$out" | grep -q "^total: 3738368 parameters" &&
    pass "qlm-inspect: header, keys, tensors, totals" || fail "qlm-inspect text: $out"
"$INSPECT" --json "$G" >"$T/j" 2>&1 && grep -q '"format": "gguf"' "$T/j" &&
    grep -q '"name": "token_embd.weight"' "$T/j" && pass "qlm-inspect --json" ||
    fail "qlm-inspect --json: $(head -c 300 "$T/j")"
"$INSPECT" --verify "$G" 2>&1 | grep -q "^verify: every F32, F16, BF16, Q8_0 and Q4_0" &&
    pass "qlm-inspect --verify" || fail "qlm-inspect --verify"

[ "$fails" -eq 0 ] && exit 0
echo "$fails failure(s)"
exit 1
