#!/bin/sh
# qlm-run: --help, --version and usage errors that need no model (each: one
# "qlm-run:" line, status 2).  tests/man_options.sh checks the man page.
. "${top_srcdir:-.}/tests/run_common.sh"

"$QLM_RUN" --help >"$T/help" 2>"$T/err" && grep -q '^Usage: qlm-run' "$T/help" && [ ! -s "$T/err" ] &&
    pass "--help" || fail "--help"
"$QLM_RUN" --version >"$T/ver" 2>&1 && grep -qE '^qlm-run [0-9]+\.[0-9]+\.[0-9]+$' "$T/ver" &&
    pass "--version: $(cat "$T/ver")" || fail "--version: $(cat "$T/ver")"

M=$T/none.qlm # never opened: usage errors come first
expect_error "--ctx 0" 'ctx' "$QLM_RUN" "$M" -p hi --ctx 0
expect_error "--ctx -5" 'ctx' "$QLM_RUN" "$M" -p hi --ctx -5
expect_error "--ctx garbage" 'ctx.*not an integer' "$QLM_RUN" "$M" -p hi --ctx 12x
expect_error "--ctx overflow" 'ctx' "$QLM_RUN" "$M" -p hi --ctx 99999999999999999999
expect_error "--threads 0" 'threads 0.*between 1 and 1024' "$QLM_RUN" "$M" -p hi --threads 0
expect_error "--threads -1" 'threads' "$QLM_RUN" "$M" -p hi --threads -1
expect_error "--threads 1025" 'threads 1025' "$QLM_RUN" "$M" -p hi --threads 1025
expect_error "--temp nan" 'temp' "$QLM_RUN" "$M" -p hi --temp nan
expect_error "--top-p 0" 'top-p' "$QLM_RUN" "$M" -p hi --top-p 0
expect_error "--seed -1" 'seed' "$QLM_RUN" "$M" -p hi --seed -1
expect_error "-n garbage" '-n' "$QLM_RUN" "$M" -p hi -n ten
expect_error "unknown option" 'unknown option --frobnicate' "$QLM_RUN" "$M" -p hi --frobnicate
expect_error "--kv-type q8" "--kv-type 'q8': expected f16 or f32" "$QLM_RUN" "$M" -p hi --kv-type q8
expect_error "missing argument" '--temp needs an argument' "$QLM_RUN" "$M" -p hi --temp
expect_error "no prompt" 'no prompt' "$QLM_RUN" "$M"
expect_error "no model" 'missing FILE.qlm \(see --help\)' "$QLM_RUN"
expect_error "model twice" "unexpected argument 'b.qlm' \(the model is given with -m\)" \
    "$QLM_RUN" -m "$M" b.qlm -p hi
expect_error "unknown short option" 'unknown option -x \(see --help\)' "$QLM_RUN" "$M" -p hi -qx
expect_error "-c 0 (--ctx's letter)" 'ctx 0' "$QLM_RUN" "$M" -p hi -c 0
expect_error "--ctx-size 0" 'ctx 0' "$QLM_RUN" "$M" -p hi --ctx-size 0
expect_error "-s -1 (--seed's letter)" 'seed' "$QLM_RUN" "$M" -p hi -s -1
expect_error "two prompts" 'only one' "$QLM_RUN" "$M" -p hi -f x
expect_error "--system without --chat" 'chat' "$QLM_RUN" "$M" -p hi --system x
expect_error "--chat with -p" 'chat' "$QLM_RUN" "$M" --chat -p hi
for s in 2; do
    "$QLM_RUN" "$M" -p hi --ctx 0 >/dev/null 2>&1
    [ $? -eq $s ] && pass "usage errors exit 2" || fail "usage errors do not exit 2"
done
finish
