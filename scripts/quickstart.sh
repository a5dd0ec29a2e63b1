#!/bin/sh
# The first command: installs what is missing (as root), builds qlm, converts
# the bundled tiny trained Qwen3 (models/tiny) to f32, q8 and q4, generates a
# continuation with the q8 model, and prints a quality/speed table: file size,
# bits per weight, perplexity on the held-out text, KL divergence and top-token
# agreement against f32, and tokens per second.
#   QLM_QS_CHUNKS=N   256-token chunks of held-out text to score (default 40)
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
. scripts/deps.sh
qlm_install_deps build

jobs=$(nproc 2>/dev/null || echo 2)
say() { printf '%s\n' "$*" >&2; }

say "==> building (build/)"
[ -x configure ] || autoreconf -fi >/dev/null 2>&1
mkdir -p build
(cd build && { [ -f Makefile ] || ../configure -q; } && make -s -j"$jobs") >/dev/null
bin=$top/build
out=$top/out
mkdir -p "$out"

for t in f32 q8 q4; do
    say "==> qlm-convert models/tiny -o out/tiny-$t.qlm --type $t"
    "$bin/qlm-convert" models/tiny -o "$out/tiny-$t.qlm" --type "$t" --force
done

say "==> qlm-run out/tiny-q8.qlm -p 'ROMEO:' -n 64 --seed 42"
"$bin/qlm-run" "$out/tiny-q8.qlm" -p "ROMEO:" -n 64 --seed 42
echo

# A number from a one-line JSON object: jnum KEY < json
jnum() { sed -n "s/.*\"$1\": *\([-0-9.eE+]*\).*/\1/p"; }

chunks=${QLM_QS_CHUNKS:-40}
say "==> measuring: qlm-ppl (held-out text, $chunks chunks of 256, --ref f32) and qlm-bench"
printf '\n| model | file MiB | bits/weight | PPL held-out | PPL ratio | mean KLD | same top | prefill tok/s | decode tok/s |\n'
printf '|---|---|---|---|---|---|---|---|---|\n'
for t in f32 q8 q4; do
    f=$out/tiny-$t.qlm
    size=$(wc -c < "$f")
    bpw=$("$bin/qlm-inspect" "$f" --json | tr -d '\n ' | sed -n 's/.*"totals":{[^}]*"bpw":\([-0-9.eE+]*\).*/\1/p')
    ppl=$("$bin/qlm-ppl" "$f" -f models/tiny/heldout.txt --ctx 256 --chunks "$chunks" \
          --ref "$out/tiny-f32.qlm" --json)
    bench=$("$bin/qlm-bench" "$f" --prompt 128 --gen 64 --reps 3 --probe-mib 0 --json)
    awk -v t="$t" -v size="$size" -v bpw="$bpw" \
        -v ppl="$(echo "$ppl" | jnum ppl)" -v ratio="$(echo "$ppl" | jnum ppl_ratio)" \
        -v kld="$(echo "$ppl" | jnum kld_mean)" -v top="$(echo "$ppl" | jnum same_top)" \
        -v pp="$(echo "$bench" | jnum pp_tok_s)" -v tg="$(echo "$bench" | jnum tg_tok_s)" \
        'BEGIN { printf "| %s | %.2f | %.2f | %.3f | %.4f | %.6f | %.2f%% | %.0f | %.0f |\n",
                 t, size / 1048576, bpw, ppl, ratio, kld, 100 * top, pp, tg }'
done
say ""
say "Files are in out/; try: build/qlm-run out/tiny-q8.qlm --chat"
