#!/bin/sh
# qlm-ppl --ref on the tiny model: a model against itself, and the quantized
# types against f32, on the held-out tokens of the PyTorch reference.
. "$top_srcdir/tests/ppl_lib.sh"
TOK="$REF/heldout.tokens"
need "$PPL" "$FIX/tiny-f32.qlm" "$FIX/tiny-bf16.qlm" "$FIX/tiny-q8.qlm" "$FIX/tiny-q4.qlm" "$TOK"
CTX=${QLM_PPL_CTX:-256}

run() { # run NAME MODEL ARGS...: JSON in $tmp/NAME.json, and a summary line
    name=$1
    shift
    "$PPL" "$@" --tokens "$TOK" --ctx "$CTX" --json > "$tmp/$name.json" || fail "qlm-ppl $*"
    echo "$name: $(cat "$tmp/$name.json")"
}

# Self: identical logits, so KLD exactly 0, ratio 1, every top token the same
# (3 chunks of the 8 keep the suite quick).
run self "$FIX/tiny-f32.qlm" --ref "$FIX/tiny-f32.qlm" --chunks 3
f=$tmp/self.json
ok 'k <= 1e-9 && m == 0 && s == 1 && r == 1 && l == 0' k="$(jget kld_max "$f")" \
    m="$(jget kld_mean "$f")" s="$(jget same_top "$f")" r="$(jget ppl_ratio "$f")" \
    l="$(jget ln_ppl_ratio "$f")"
ok 'a == b' a="$(jget ppl "$f")" b="$(jget ref_ppl "$f")"

# Without --ref the same PPL (the reference changes nothing about the model's own figures).
run alone "$FIX/tiny-f32.qlm" --chunks 3
ok 'a == b' a="$(jget ppl "$tmp/alone.json")" b="$(jget ppl "$f")"
n=$(jget n_tokens "$f")
c=$(jget chunks "$f")
ok 'c == 3 && ca == int(n / ctx)' c="$c" ca="$(jget chunks_available "$f")" n="$n" ctx="$CTX"
ok 'ns == c * (ctx - 1 - int(ctx / 2))' ns="$(jget n_scored "$f")" c="$c" ctx="$CTX"

# --score-all and --chunks change what is counted.
run all "$FIX/tiny-f32.qlm" --score-all --chunks 3
ok 'ns == c * (ctx - 1)' ns="$(jget n_scored "$tmp/all.json")" c="$c" ctx="$CTX"
run one "$FIX/tiny-f32.qlm" --chunks 1
ok 'c == 1 && ns == ctx - 1 - int(ctx / 2)' c="$(jget chunks "$tmp/one.json")" \
    ns="$(jget n_scored "$tmp/one.json")" ctx="$CTX"

# Quantized against f32 on all 8 chunks (1016 scored positions).  Bounds sit a
# little beyond what was measured (printed in this test's log), at ctx 256:
#   bf16  ratio 1 exactly, KLD 0, same top 100% (bf16 widens exactly to f32)
#   q8    ratio 0.99938, KLD mean 7.3e-5 (max 6.6e-4), same top 98.72%
#   q4    ratio 1.00153, KLD mean 3.8e-3 (max 0.062), same top 95.28%
check() { # check TYPE MAX_RATIO MAX_KLD MIN_SAME
    run "$1" "$FIX/tiny-$1.qlm" --ref "$FIX/tiny-f32.qlm"
    f=$tmp/$1.json
    printf '%s vs f32: PPL %s / %s ratio %s KLD mean %s p99 %s max %s same top %s\n' "$1" \
        "$(jget ppl "$f")" "$(jget ref_ppl "$f")" "$(jget ppl_ratio "$f")" \
        "$(jget kld_mean "$f")" "$(jget kld_p99 "$f")" "$(jget kld_max "$f")" \
        "$(jget same_top "$f")"
    ok "r <= $2 && r >= 1 / $2" r="$(jget ppl_ratio "$f")"
    ok "k <= $3 && k >= 0" k="$(jget kld_mean "$f")"
    ok "s >= $4" s="$(jget same_top "$f")"
    ok 'med <= p99 && p99 <= p999 && p999 <= mx' med="$(jget kld_median "$f")" \
        p99="$(jget kld_p99 "$f")" p999="$(jget kld_p999 "$f")" mx="$(jget kld_max "$f")"
}
check bf16 1.0001 1e-6 0.999
check q8 1.002 2e-4 0.98
check q4 1.006 0.008 0.93
echo "all ok"
