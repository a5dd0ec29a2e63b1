#!/bin/sh
# qlm-ppl refuses bad input with one clear line: options, too-short texts,
# bad token files, mismatched tokenizers.
. "$top_srcdir/tests/ppl_lib.sh"
# The synthetic tiny model (Qwen3 tokenizer, random weights) is enough to be refused.
M="$FIX/synth-tiny-q8.qlm"
need "$PPL" "$M"

"$PPL" --help > "$tmp/help" || fail "--help failed"
grep -q "^Usage: qlm-ppl FILE.qlm" "$tmp/help" || fail "--help has no usage line"
"$PPL" --version > "$tmp/ver" || fail "--version failed"
grep -Eq "^qlm-ppl [0-9]+\.[0-9]+\.[0-9]+$" "$tmp/ver" || fail "--version: $(cat "$tmp/ver")"

printf '1 2 3 4 5 6 7 8 9 10\n' > "$tmp/ten.ids"
printf 'To be' > "$tmp/short.txt"
expect_usage "missing FILE.qlm" "$PPL"
expect_usage "no input" "$PPL" "$M"
expect_usage "not both" "$PPL" "$M" -f "$tmp/short.txt" --tokens "$tmp/ten.ids"
expect_usage "unknown option --bogus \(see --help\)" "$PPL" "$M" --tokens "$tmp/ten.ids" --bogus
expect_usage "option --tokens needs an argument" "$PPL" "$M" --tokens
expect_usage "unexpected argument" "$PPL" "$M" "$M" --tokens "$tmp/ten.ids"
expect_usage "unexpected argument" "$PPL" -m "$M" "$M" --tokens "$tmp/ten.ids"
expect_usage "ctx" "$PPL" "$M" --tokens "$tmp/ten.ids" --ctx 0
expect_usage "ctx" "$PPL" "$M" --tokens "$tmp/ten.ids" --ctx 3
expect_usage "ctx" "$PPL" "$M" --tokens "$tmp/ten.ids" --ctx-size 12x
expect_usage "chunks" "$PPL" "$M" --tokens "$tmp/ten.ids" --chunks 0
expect_usage "threads" "$PPL" "$M" --tokens "$tmp/ten.ids" --threads -1
expect_usage "kv-type 'f8': expected f16 or f32" "$PPL" "$M" --tokens "$tmp/ten.ids" --kv-type f8
expect_fail "nonexistent.qlm" "$PPL" "$tmp/nonexistent.qlm" --tokens "$tmp/ten.ids"
expect_fail "nonexistent.txt" "$PPL" "$M" -f "$tmp/nonexistent.txt"
printf 'To be, or not\377 to be' > "$tmp/latin1.txt"
expect_fail "latin1.txt: not valid UTF-8 text \\(byte 13\\)" "$PPL" "$M" -f "$tmp/latin1.txt"
# Too short: the message gives both numbers.
expect_fail "10 tokens.*--ctx 16" "$PPL" "$M" --tokens "$tmp/ten.ids" --ctx 16
expect_fail "short.txt: [0-9]+ tokens.*--ctx 512" "$PPL" "$M" -f "$tmp/short.txt"
# A context longer than the model's.
expect_fail "ctx 100000" "$PPL" "$M" --tokens "$tmp/ten.ids" --ctx 100000
# Token ids out of range, or not numbers.
printf '1 2 99999999 4\n' > "$tmp/big.ids"
expect_fail "big.ids" "$PPL" "$M" --tokens "$tmp/big.ids" --ctx 4
printf '1 2 x 4\n' > "$tmp/bad.ids"
expect_fail "bad.ids" "$PPL" "$M" --tokens "$tmp/bad.ids" --ctx 4
# A corrupt model file.
head -c 1000 "$M" > "$tmp/trunc.qlm"
expect_fail "trunc.qlm" "$PPL" "$tmp/trunc.qlm" --tokens "$tmp/ten.ids" --ctx 4
# Different tokenizers: the tiny model's own 2000-merge BPE against Qwen3's.
if [ -e "$FIX/tiny-f32.qlm" ]; then
    expect_fail "different tokenizers" "$PPL" "$FIX/tiny-f32.qlm" --tokens "$tmp/ten.ids" \
        --ctx 4 --ref "$M"
else
    echo "SKIP: $FIX/tiny-f32.qlm missing: the mismatched-tokenizer check did not run"
    exit 77
fi
echo "all refusals ok"
