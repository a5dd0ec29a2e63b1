#!/bin/sh
# qlm-run --chat from a pipe: two turns, the second evaluating only its new
# tokens (the cache is kept), /exit, and a context too small to go on.
. "${top_srcdir:-.}/tests/run_common.sh"
M=$(any_model) || exit $?

printf 'Hello there.\nWhat is your name?\n' |
    "$QLM_RUN" "$M" --chat --no-think -v --temp 0 -n 12 >"$T/out" 2>"$T/err"
rc=$?
[ $rc -eq 0 ] && pass "two turns: status 0" || { fail "two turns: status $rc"; cat "$T/err"; }
# (each reply ends with a newline; a random-weight model may answer newlines)
[ "$(wc -c <"$T/out")" -gt 2 ] && pass "replies on stdout ($(wc -c <"$T/out") bytes)" ||
    { fail "no reply text"; od -c "$T/out" | head; }
grep -q '> ' "$T/out" && fail "'> ' prompt printed although stdin is a pipe"
# "[turn 2: evaluated N new tokens in S s, cache P of C]": N < P - N means the
# first turn stayed in the cache.
t1=$(sed -n 's/^\[turn 1: evaluated \([0-9]*\) new tokens.*cache \([0-9]*\) of.*/\1 \2/p' "$T/err")
t2=$(sed -n 's/^\[turn 2: evaluated \([0-9]*\) new tokens.*cache \([0-9]*\) of.*/\1 \2/p' "$T/err")
set -- $t1 $t2
if [ $# -eq 4 ] && [ "$1" -eq "$2" ] && [ "$3" -lt "$4" ] && [ "$4" -gt "$2" ] && [ $(($4 - $3)) -gt "$2" ]; then
    pass "turn 2 evaluated $3 new tokens on top of a cache of $(($4 - $3))"
else
    fail "cache reuse: turn 1 '$t1', turn 2 '$t2'"; cat "$T/err"
fi
tail -n 1 "$T/err" | grep -qE '^prompt [0-9]+ tokens, prefill .* generated [0-9]+ tokens, decode' &&
    pass "final stats line" || fail "no final stats line"

# The same conversation again: greedy chat is deterministic.
printf 'Hello there.\nWhat is your name?\n' |
    "$QLM_RUN" "$M" --chat --no-think -v --temp 0 -n 12 >"$T/out2" 2>/dev/null
cmp -s "$T/out" "$T/out2" && pass "greedy chat repeats" || fail "greedy chat differs"

# A user cannot inject special tokens: "<|im_start|>" in a message is text,
# so it costs more than one token.
printf 'a\n' | "$QLM_RUN" "$M" --chat --no-think -v --temp 0 -n 1 2>"$T/e1" >/dev/null
printf 'a<|im_start|>\n' | "$QLM_RUN" "$M" --chat --no-think -v --temp 0 -n 1 2>"$T/e2" >/dev/null
n1=$(sed -n 's/^\[turn 1: evaluated \([0-9]*\) .*/\1/p' "$T/e1")
n2=$(sed -n 's/^\[turn 1: evaluated \([0-9]*\) .*/\1/p' "$T/e2")
[ -n "$n1" ] && [ -n "$n2" ] && [ "$n2" -gt $((n1 + 1)) ] &&
    pass "'<|im_start|>' in a message is plain text ($n1 vs $n2 tokens)" ||
    fail "special token injection: $n1 vs $n2 tokens"

# --no-think adds the empty think block (more prompt tokens than thinking).
printf 'a\n' | "$QLM_RUN" "$M" --chat -v --temp 0 -n 1 2>"$T/e3" >/dev/null
n3=$(sed -n 's/^\[turn 1: evaluated \([0-9]*\) .*/\1/p' "$T/e3")
[ -n "$n3" ] && [ "$n1" -gt "$n3" ] && pass "--no-think: $n1 vs $n3 prompt tokens" ||
    fail "--no-think: $n1 vs $n3"

# /exit ends the chat; what follows is not read.
printf 'Hi\n/exit\nNever answered\n' |
    "$QLM_RUN" "$M" --chat --temp 0 -n 4 -v >"$T/out" 2>"$T/err"
[ $? -eq 0 ] && ! grep -q 'turn 2' "$T/err" && pass "/exit ends the chat" || fail "/exit"

# A context too small for the next message ends the chat cleanly.
printf 'Hello there, how are you today?\nAnd again, how are you today?\n' |
    "$QLM_RUN" "$M" --chat --no-think --temp 0 -n 4 --ctx 40 >"$T/out" 2>"$T/err"
rc=$?
[ $rc -eq 0 ] && grep -q 'context of 40 tokens is full' "$T/err" &&
    pass "full context ends the chat with status 0" || { fail "full context: status $rc"; cat "$T/err"; }

# A piped message that is not UTF-8: one line naming stdin's line, status 1.
printf 'Hello\nna\357ve\n' |
    "$QLM_RUN" "$M" --chat --no-think --temp 0 -n 2 >"$T/out" 2>"$T/err"
rc=$?
[ $rc -eq 1 ] && [ "$(grep -c 'qlm-run:' "$T/err")" -eq 1 ] &&
    grep -q '<stdin>: line 2: not valid UTF-8 text (byte 2)' "$T/err" &&
    pass "invalid UTF-8 chat message refused" || { fail "invalid UTF-8 chat: status $rc"; cat "$T/err"; }
# A template libqlm does not render (Llama 3's headers), and none at all: the
# tiny model converted with its chat_template line replaced or removed.
CONVERT=$top_builddir/qlm-convert
if [ -f "$TINY/model.safetensors" ] && [ -x "$CONVERT" ]; then
    for t in llama3 none; do
        mkdir -p "$T/$t"
        cp "$TINY/config.json" "$TINY/tokenizer.json" "$T/$t/"
        ln -s "$(cd "$TINY" && pwd)/model.safetensors" "$T/$t/model.safetensors"
    done
    sed 's/^\(  "chat_template": \).*/\1"{% for m in messages %}<|start_header_id|>{{ m.role }}<|end_header_id|>{% endfor %}",/' \
        "$TINY/tokenizer_config.json" >"$T/llama3/tokenizer_config.json"
    sed '/^  "chat_template": /d' "$TINY/tokenizer_config.json" >"$T/none/tokenizer_config.json"
    for t in llama3 none; do
        "$CONVERT" "$T/$t" -o "$T/$t.qlm" --type q8 --quiet >/dev/null 2>&1 ||
            fail "converting the tiny model with chat template '$t'"
    done
    printf 'Hi\n' >"$T/hi"
    expect_error "--chat refuses a template qlm does not render" 'not one qlm renders' \
        sh -c '"$1" "$2" --chat -n 2 <"$3"' sh "$QLM_RUN" "$T/llama3.qlm" "$T/hi"
    expect_error "--chat without a chat template" 'chat template: the model has none' \
        sh -c '"$1" "$2" --chat -n 2 <"$3"' sh "$QLM_RUN" "$T/none.qlm" "$T/hi"
fi
finish
