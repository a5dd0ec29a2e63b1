#!/bin/sh
# bench/isa_table.sh — what each kernel set gains: qlm-bench on one .qlm file
# with QLM_ISA forced to each of scalar, avx2, avxvnni, avx512vnni and neon
# (those this CPU or build lacks are skipped), at the same threads.
#
# Usage: bench/isa_table.sh [BUILD_DIR] FILE.qlm   (BUILD_DIR default: .)
#
# Prints a Markdown table on stdout (progress on stderr).  Knobs: QLM_ISA_PROMPT
# (prompt tokens, default 16: the scalar kernels are ~100x slower), QLM_ISA_GEN
# (default 4), QLM_ISA_THREADS (default 1), QLM_ISA_LIST (the ISAs to try).
set -eu

me=isa_table.sh
if [ $# -ge 2 ]; then build=$1; file=$2; else build=.; file=${1:-}; fi
. "$(dirname "$0")/lib.sh"
[ -n "$file" ] || die "usage: bench/isa_table.sh [BUILD_DIR] FILE.qlm"
[ -f "$file" ] || die "$file: no such file"
prompt=${QLM_ISA_PROMPT:-16}
gen=${QLM_ISA_GEN:-4}
threads=${QLM_ISA_THREADS:-1}
isas=${QLM_ISA_LIST:-scalar avx2 avxvnni avx512vnni neon}
bench=$(find_prog qlm-bench) || die "qlm-bench not found in $build or \$PATH (build it first)"

err=$(mktemp) || die "mktemp failed"
trap 'rm -f "$err"' EXIT
rows=
base_pp= base_tg=
for isa in $isas; do
    say "QLM_ISA=$isa qlm-bench $file --prompt $prompt --gen $gen --threads $threads"
    if ! out=$(QLM_ISA=$isa "$bench" "$file" --prompt "$prompt" --gen "$gen" \
               --threads "$threads" --reps 1 --probe-mib 0 --json 2>"$err"); then
        say "skipped $isa: $(cat "$err")"
        continue
    fi
    pp=$(echo "$out" | jget pp_tok_s)
    tg=$(echo "$out" | jget tg_tok_s)
    [ -n "$base_pp" ] || { base_pp=$pp; base_tg=$tg; base=$isa; }
    rows="$rows$(awk -v i="$isa" -v pp="$pp" -v tg="$tg" -v bp="$base_pp" -v bt="$base_tg" \
        'BEGIN { printf "| %s | %.2f | %.2f | %.1fx | %.1fx |", i, pp, tg, pp / bp, tg / bt }')
"
done
[ -n "$rows" ] || die "no kernel set ran"

echo "$(basename "$file"), $(uname -m), $threads thread(s), prompt $prompt, $gen generated; ratios vs $base."
echo
echo "| ISA | prefill tok/s | decode tok/s | prefill vs $base | decode vs $base |"
echo "|---|---:|---:|---:|---:|"
printf '%s' "$rows"
