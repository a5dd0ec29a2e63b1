#!/bin/sh
# bench/run_table.sh — speed table of the synthetic Qwen3-0.6B at f32, q8 and q4.
#
# Usage: bench/run_table.sh [BUILD_DIR]     (default: the current directory)
#
# Makes the synthetic checkpoint with qlm-gen-synth if it is missing, converts it
# to each type (both cached in $QLM_BENCH_DIR, default ./bench-out), runs
# qlm-bench for each type x threads x prompt length, and prints a Markdown table
# on stdout (progress on stderr).  See bench/README.md for the knobs.
set -eu

build=${1:-.}
dir=${QLM_BENCH_DIR:-./bench-out}
types=${QLM_BENCH_TYPES:-f32 q8 q4}
threads_list=${QLM_BENCH_THREADS:-1 2}
prompts=${QLM_BENCH_PROMPTS:-128 512}
gen=${QLM_BENCH_GEN:-64}
reps=${QLM_BENCH_REPS:-1}
probe=${QLM_BENCH_PROBE_MIB:-1024}

me=run_table.sh
. "$(dirname "$0")/lib.sh"

bench=$(find_prog qlm-bench) || die "qlm-bench not found in $build or \$PATH (build it first)"
mkdir -p "$dir"
synth="$dir/qwen3-0.6b-synth"

if [ ! -f "$synth/config.json" ]; then
    gen_synth=$(find_prog qlm-gen-synth) || die "qlm-gen-synth not found in $build"
    say "generating the synthetic Qwen3-0.6B checkpoint in $synth"
    rm -rf "$synth.tmp"
    "$gen_synth" "$synth.tmp" >&2 || die "qlm-gen-synth failed"
    mv "$synth.tmp" "$synth"
fi

convert=
for t in $types; do
    f="$dir/qwen3-0.6b-$t.qlm"
    [ -f "$f" ] && continue
    [ -n "$convert" ] || convert=$(find_prog qlm-convert) || die "qlm-convert not found in $build"
    say "converting to $t: $f"
    "$convert" "$synth" -o "$f" --type "$t" >&2 || die "qlm-convert --type $t failed"
done

isa=
rows=
for t in $types; do
    f="$dir/qwen3-0.6b-$t.qlm"
    mib=$(awk -v b="$(wc -c < "$f")" 'BEGIN { printf "%.0f", b / 1048576 }')
    for th in $threads_list; do
        row="| $t | $mib | $th |"
        tg= frac= probe_gbs= rss=0
        for p in $prompts; do
            say "qlm-bench $t, $th threads, prompt $p, gen $gen"
            out=$("$bench" "$f" --prompt "$p" --gen "$gen" --threads "$th" --reps "$reps" \
                  --probe-mib "$probe" --json) || die "qlm-bench failed on $f"
            pp=$(echo "$out" | jget pp_tok_s)
            row="$row $(awk -v x="$pp" 'BEGIN { printf "%.2f", x }') |"
            r=$(echo "$out" | jget peak_rss_bytes)
            [ "$r" -gt "$rss" ] && rss=$r
            # Decode figures from the first (shortest) prompt: closest to an empty context.
            if [ -z "$tg" ]; then
                tg=$(echo "$out" | jget tg_tok_s)
                frac=$(echo "$out" | jget bw_fraction)
                isa=$(echo "$out" | jget isa)
                probe_gbs=$(echo "$out" | jget probe_gb_s)
            fi
        done
        row="$row $(awk -v x="$tg" 'BEGIN { printf "%.2f", x }') |"
        if [ "$frac" = null ] || [ -z "$frac" ]; then row="$row - |"
        else row="$row $(awk -v x="$frac" -v p="$probe_gbs" \
                          'BEGIN { printf "%.1f%% of %.1f GB/s", 100 * x, p }') |"; fi
        row="$row $(awk -v x="$rss" 'BEGIN { printf "%.0f", x / 1048576 }') |"
        rows="$rows$row
"
    done
done

hdr="| type | file MiB | threads |"
sep="|---|---:|---:|"
for p in $prompts; do hdr="$hdr pp$p tok/s |"; sep="$sep---:|"; done
hdr="$hdr tg$gen tok/s | % of BW bound | peak RSS MiB |"
sep="$sep---:|---:|---:|"

echo "Synthetic Qwen3-0.6B, ISA $isa, $(uname -m), qlm-bench --reps $reps."
echo "tg$gen: greedy decoding after the $(echo "$prompts" | awk '{print $1}')-token prompt;" \
     "BW bound: weight bytes per token x tg$gen over the read bandwidth that qlm-bench's probe" \
     "measured in the same run with the same threads."
echo
echo "$hdr"
echo "$sep"
printf '%s' "$rows"
