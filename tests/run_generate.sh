#!/bin/sh
# qlm-run generating from the tiny model: tokenizer goldens, the PyTorch greedy
# continuation, seeds, --logits-out against the PyTorch logits, -n 0, stats.
. "${top_srcdir:-.}/tests/run_common.sh"
F32=$(need_fixture tiny-f32.qlm) || exit $?
Q8=$(need_fixture tiny-q8.qlm) || exit $?
V=$(vocab_of "$F32") || { fail "cannot read the vocabulary size"; finish; }
pass "vocabulary of $V logits"

# --tokenize against ids from tokenizers.js (models/tiny/golden_tokens.json;
# the one-line entries whose text has no escapes).
sed -n 's/^{"text": "\([^"\\][^"\\]*\)", "ids": \[\([0-9, ]*\)\]},\{0,1\}$/\1	\2/p' \
    "$TINY/golden_tokens.json" | head -n 20 >"$T/golden.tsv"
n=0
while IFS='	' read -r text ids; do
    want=$(echo "$ids" | tr -d ',')
    got=$("$QLM_RUN" "$F32" --no-verify -p "$text" --tokenize 2>&1)
    [ "$got" = "$want" ] || fail "--tokenize '$text': got '$got', want '$want'"
    n=$((n + 1))
done <"$T/golden.tsv"
[ "$n" -ge 5 ] && pass "--tokenize matches tokenizers.js on $n strings" ||
    fail "only $n golden strings found"

# Special tokens in a prompt are parsed unless --no-special.
a=$("$QLM_RUN" "$F32" -p "<|im_start|>user" --tokenize)
b=$("$QLM_RUN" "$F32" -p "<|im_start|>user" --tokenize --no-special)
[ "$(echo "$a" | wc -w)" -lt "$(echo "$b" | wc -w)" ] &&
    pass "--no-special: '$a' vs '$b'" || fail "--no-special: '$a' vs '$b'"

# Greedy continuation equals PyTorch's (models/tiny/ref/greedy.txt).
G=$TINY/ref/greedy.txt
if [ -f "$G" ]; then
    # greedy.txt (tools/make_reference.py): line 1 the prompt ids, line 2 the
    # greedy ids, line 3 the decoded text as a JSON string.
    sed -n 1p "$G" >"$T/prompt.ids"
    want=$(sed -n 2p "$G" | tr -s ' \t' ' ' | sed 's/^ //; s/ $//')
    k=$(echo "$want" | wc -w)
    got=$("$QLM_RUN" "$F32" --tokens "$T/prompt.ids" -n "$k" --temp 0 --print-ids -q)
    [ "$got" = "$want" ] && pass "greedy continuation of $k tokens equals PyTorch's" ||
        fail "greedy: got '$got', want '$want'"
else
    echo "note: $G missing, greedy reference not checked"
fi
"$QLM_RUN" "$F32" -p "ROMEO:" -n 24 --temp 0 --print-ids -q >"$T/g1" &&
    "$QLM_RUN" "$F32" -p "ROMEO:" -n 24 --temp 0 --print-ids -q --threads 1 >"$T/g2" &&
    cmp -s "$T/g1" "$T/g2" && [ "$(wc -w <"$T/g1")" -ge 1 ] && [ "$(wc -w <"$T/g1")" -le 24 ] &&
    pass "greedy: same ids with default and 1 thread" || fail "greedy repeatability"

# Same seed, same output; different seeds differ (one of three, at temp 1).
gen() { "$QLM_RUN" "$Q8" -p "First Citizen:" -n 40 --temp 1 --top-k 0 --top-p 1 --min-p 0 --seed "$1" -q; }
gen 7 >"$T/s7a" && gen 7 >"$T/s7b" && cmp -s "$T/s7a" "$T/s7b" && [ -s "$T/s7a" ] &&
    pass "--seed 7 twice: same text" || fail "--seed 7 twice differs"
differ=0
for s in 8 9 10; do gen "$s" >"$T/s$s"; cmp -s "$T/s7a" "$T/s$s" || differ=1; done
[ "$differ" -eq 1 ] && pass "different seeds give different text" || fail "seeds 7..10 all equal"

# Default output: the prompt echoed, then the continuation; stats on stderr.
"$QLM_RUN" "$Q8" -p "KING RICHARD III:" -n 8 --seed 1 >"$T/out" 2>"$T/err" || fail "plain run"
head -c 17 "$T/out" | grep -q '^KING RICHARD III:$' && pass "prompt echoed" || fail "prompt not echoed"
grep -q '^seed 1,' "$T/err" && pass "seed printed" || fail "seed not printed: $(cat "$T/err")"
tail -n 1 "$T/err" | grep -qE '^prompt [0-9]+ tokens, prefill [0-9.]+ tok/s; generated [0-8] tokens, decode [0-9.]+ tok/s$' &&
    pass "stats: $(tail -n 1 "$T/err")" || fail "stats line: $(cat "$T/err")"
"$QLM_RUN" "$Q8" -p "KING RICHARD III:" -n 8 --seed 1 -q >"$T/outq" 2>"$T/errq"
{ printf 'KING RICHARD III:'; cat "$T/outq"; } >"$T/outq2"
[ ! -s "$T/errq" ] && cmp -s "$T/out" "$T/outq2" && pass "-q: the same text without the prompt" ||
    fail "-q: not the same text without the prompt"

# The context filling up stops generation cleanly (status 0, a note).
"$QLM_RUN" "$Q8" -p "To be" -n 100 --ctx 6 --temp 0 --print-ids >"$T/out" 2>"$T/err"
rc=$?
[ $rc -eq 0 ] && grep -q 'context of 6 tokens is full' "$T/err" &&
    [ "$(wc -w <"$T/out")" -le 6 ] &&
    pass "full context: status 0, $(wc -w <"$T/out") tokens, note on stderr" ||
    fail "full context: status $rc, $(cat "$T/err")"

# The KV cache: f32 for a float model, f16 for a quantized one, unless --kv-type.
kv_of() { "$QLM_RUN" "$@" --no-verify -p "To be" -n 1 --temp 0 2>&1 >/dev/null |
    sed -n 's/.*(KV cache \([a-z0-9]*\)).*/\1/p'; }
a=$(kv_of "$F32"); b=$(kv_of "$Q8"); c=$(kv_of "$Q8" --kv-type f32)
[ "$a/$b/$c" = f32/f16/f32 ] && pass "KV cache types: f32 model $a, q8 $b, q8 --kv-type f32 $c" ||
    fail "KV cache types: '$a/$b/$c', want f32/f16/f32"

# --logits-out: positions x vocab f32; equal to PyTorch's reference logits.
printf '1249 387 11 476 537 311 387\n' >"$T/seq.ids"
"$QLM_RUN" "$F32" --tokens "$T/seq.ids" -n 0 --logits-out "$T/l.f32" 2>/dev/null &&
    [ "$(wc -c <"$T/l.f32")" -eq $((7 * V * 4)) ] && [ ! -e "$T/l.f32.tmp" ] &&
    pass "--logits-out: 7 x $V x 4 bytes" || fail "--logits-out size $(wc -c <"$T/l.f32")"
# Generating after --logits-out leaves the file the same.
"$QLM_RUN" "$F32" --tokens "$T/seq.ids" -n 3 --temp 0 --print-ids -q --logits-out "$T/l2.f32" >"$T/ids2" &&
    cmp -s "$T/l.f32" "$T/l2.f32" && pass "--logits-out with generation: same file" ||
    fail "--logits-out differs when generating"
nref=0
for ref in "$TINY"/ref/*.logits.f32; do
    [ -f "$ref" ] || continue
    ids=${ref%.logits.f32}.ids
    [ -f "$ids" ] || ids=${ref%.logits.f32}.tokens
    [ -f "$ids" ] || { echo "note: no token ids next to $ref"; continue; }
    "$QLM_RUN" "$F32" --tokens "$ids" -n 0 -q --logits-out "$T/r.f32" 2>"$T/err" ||
        { fail "$(basename "$ids"): $(cat "$T/err")"; continue; }
    if r=$("$F32CMP" "$T/r.f32" "$ref" "$V" 1e-4); then pass "$(basename "$ref"): $r"
    else fail "$(basename "$ref"): $r"; fi
    nref=$((nref + 1))
done
[ "$nref" -gt 0 ] || echo "note: no reference logits in $TINY/ref"
finish
