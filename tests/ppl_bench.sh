#!/bin/sh
# qlm-bench on the tiny q8 model: a short run gives sane figures; bad options
# are refused with one line.
. "$top_srcdir/tests/ppl_lib.sh"
Q8="$FIX/tiny-q8.qlm"
need "$BENCH" "$Q8"

"$BENCH" --help > "$tmp/help" || fail "--help failed"
grep -q "^Usage: qlm-bench FILE.qlm" "$tmp/help" || fail "--help has no usage line"
"$BENCH" --version | grep -Eq "^qlm-bench [0-9]+\.[0-9]+\.[0-9]+$" || fail "--version"

f=$tmp/b.json
"$BENCH" "$Q8" --prompt 16 --gen 4 --reps 2 --threads 1 --probe-mib 32 --json > "$f" ||
    fail "qlm-bench --json"
echo "bench: $(cat "$f")"
ok 'pp > 0 && tg > 0 && lm > 0 && w > 0 && p > 0 && fr > 0 && rss > 0' \
    pp="$(jget pp_tok_s "$f")" tg="$(jget tg_tok_s "$f")" lm="$(jget load_ms "$f")" \
    w="$(jget weight_bytes_per_token "$f")" p="$(jget probe_gb_s "$f")" \
    fr="$(jget bw_fraction "$f")" rss="$(jget peak_rss_bytes "$f")"
# The fraction is decode's weight traffic over the probe, recomputed here.
ok 'fr > 0.999 * tg * w / 1e9 / p && fr < 1.001 * tg * w / 1e9 / p' \
    fr="$(jget bw_fraction "$f")" tg="$(jget tg_tok_s "$f")" \
    w="$(jget weight_bytes_per_token "$f")" p="$(jget probe_gb_s "$f")"
ok 't == 1 && r == 2 && pr == 16 && g == 4' t="$(jget threads "$f")" r="$(jget reps "$f")" \
    pr="$(jget prompt "$f")" g="$(jget gen "$f")"
[ "$(jget type "$f")" = q8 ] || fail "type $(jget type "$f"), want q8"
[ "$(jget kv_type "$f")" = f16 ] || fail "kv_type $(jget kv_type "$f"), want f16 (q8's default)"
[ "$(jget file_bytes "$f")" -eq "$(wc -c < "$Q8")" ] || fail "file_bytes"

# QLM_ISA passes through and is reported.
QLM_ISA=scalar "$BENCH" "$Q8" --prompt 4 --gen 0 --reps 1 --probe-mib 0 --json > "$f" ||
    fail "QLM_ISA=scalar qlm-bench"
[ "$(jget isa "$f")" = scalar ] || fail "isa $(jget isa "$f"), want scalar"
[ "$(jget tg_tok_s "$f")" = null ] || fail "--gen 0 still reports decode speed"
"$BENCH" "$Q8" --prompt 4 --gen 1 --reps 1 --probe-mib 0 --kv-type f32 --json > "$f" ||
    fail "qlm-bench --kv-type f32"
[ "$(jget kv_type "$f")" = f32 ] || fail "--kv-type f32: kv_type $(jget kv_type "$f")"

# The human table has the bandwidth sentence.
"$BENCH" "$Q8" --prompt 8 --gen 2 --reps 1 --probe-mib 16 > "$tmp/out" || fail "table"
cat "$tmp/out"
grep -Eq "^decode .* tok/s = .* GB/s of weights = .*% of the .* GB/s probe" "$tmp/out" ||
    fail "no bandwidth line"

# bench/isa_table.sh: one row per kernel set that runs here, scalar first.
ISA_TABLE="$top_srcdir/bench/isa_table.sh"
QLM_ISA_LIST="scalar avx2 neon" QLM_ISA_PROMPT=4 QLM_ISA_GEN=1 \
    "$ISA_TABLE" "$(dirname "$BENCH")" "$Q8" > "$tmp/isa.md" 2> "$tmp/isa.err" ||
    fail "isa_table.sh: $(cat "$tmp/isa.err")"
cat "$tmp/isa.md"
grep -q '^| scalar | [0-9.]* | [0-9.]* | 1.0x | 1.0x |$' "$tmp/isa.md" || fail "isa_table.sh: no scalar row"
[ "$(grep -c '^| [a-z0-9]* | ' "$tmp/isa.md")" -ge 1 ] || fail "isa_table.sh: no rows"
QLM_ISA_LIST=bogus "$ISA_TABLE" "$(dirname "$BENCH")" "$Q8" > /dev/null 2> "$tmp/isa.err" &&
    fail "isa_table.sh ran with no kernel set"
grep -q "no kernel set ran" "$tmp/isa.err" || fail "isa_table.sh: $(cat "$tmp/isa.err")"

expect_usage "missing FILE.qlm" "$BENCH"
expect_usage "prompt" "$BENCH" "$Q8" --prompt 0
expect_usage "reps" "$BENCH" "$Q8" --reps x
expect_usage "unknown option --frobnicate \(see --help\)" "$BENCH" "$Q8" --frobnicate
expect_usage "kv-type 'bf16': expected f16 or f32" "$BENCH" "$Q8" --kv-type bf16
expect_usage "unexpected argument" "$BENCH" -m "$Q8" "$Q8"
expect_fail "positions" "$BENCH" "$Q8" --prompt 1000000 --gen 1
expect_fail "nonexistent" "$BENCH" "$tmp/nonexistent.qlm"
echo "all ok"
