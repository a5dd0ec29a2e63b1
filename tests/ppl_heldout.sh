#!/bin/sh
# The f32 tiny model's perplexity on the held-out tokens equals the PyTorch
# reference's (tools/make_reference.py -> models/tiny/ref/heldout_ppl.json), by
# both methods: llama.cpp's second half of each chunk, and --score-all.
. "$top_srcdir/tests/ppl_lib.sh"
J="$REF/heldout_ppl.json"
need "$PPL" "$FIX/tiny-f32.qlm" "$REF/heldout.tokens" "$J"
ctx=$(jget ctx "$J")
[ -n "$ctx" ] || fail "$J has no ctx"

for method in half all; do
    if [ "$method" = half ]; then
        want=$(jget ppl "$J") n_want=$(jget n_scored "$J") extra=
    else
        want=$(jget ppl_all "$J") n_want=$(jget n_scored_all "$J") extra=--score-all
    fi
    # shellcheck disable=SC2086
    "$PPL" "$FIX/tiny-f32.qlm" --tokens "$REF/heldout.tokens" --ctx "$ctx" $extra --json \
        > "$tmp/$method.json" || fail "qlm-ppl $extra"
    got=$(jget ppl "$tmp/$method.json")
    n_got=$(jget n_scored "$tmp/$method.json")
    echo "$method: qlm-ppl $got ($n_got scored), PyTorch $want ($n_want scored)"
    ok 'n == m' n="$n_got" m="$n_want"
    ok 'g > 1 && (g - w) / w < 1e-4 && (w - g) / w < 1e-4' g="$got" w="$want"
    ok 'c == m' c="$(jget chunks "$tmp/$method.json")" m="$(jget n_chunks "$J")"
done
# Threads change the order of nothing that matters: 1 and 2 threads agree.
"$PPL" "$FIX/tiny-f32.qlm" --tokens "$REF/heldout.tokens" --ctx "$ctx" --threads 1 --json \
    > "$tmp/t1.json" || fail "--threads 1"
ok '(a - b) / b < 1e-5 && (b - a) / b < 1e-5' a="$(jget ppl "$tmp/t1.json")" \
    b="$(jget ppl "$tmp/half.json")"
echo "all ok"
