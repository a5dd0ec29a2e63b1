#!/bin/sh
# qlm-run on bad input: each case fails with a status in 1..127 (never a
# signal) and exactly one "qlm-run:" line on stderr naming the problem.
. "${top_srcdir:-.}/tests/run_common.sh"
M=$(any_model) || exit $?

size=$(wc -c <"$M")
head -c $((size / 2)) "$M" >"$T/trunc.qlm"
expect_error "truncated file" 'trunc.qlm' "$QLM_RUN" "$T/trunc.qlm" -p hi
head -c 100 "$M" >"$T/short.qlm"
expect_error "file shorter than the header" 'short.qlm' "$QLM_RUN" "$T/short.qlm" -p hi
: >"$T/empty.qlm"
expect_error "empty file" 'empty.qlm' "$QLM_RUN" "$T/empty.qlm" -p hi
printf 'hello\n' >"$T/text.qlm"
expect_error "a 6-byte text file" 'text.qlm: not a \.qlm file' "$QLM_RUN" "$T/text.qlm" -p hi

# Flip one byte: in the header, and in the last tensor's data (caught by the
# checksums verified at start-up).
corrupt() { # corrupt OFFSET OUT
    cp "$M" "$2" && chmod u+w "$2"
    b=$(od -An -tu1 -j "$1" -N1 "$M" | tr -d ' ')
    printf "\\$(printf %03o $(((b + 1) % 256)))" |
        dd of="$2" bs=1 seek="$1" count=1 conv=notrunc 2>/dev/null
}
corrupt 20 "$T/hdr.qlm"
expect_error "corrupted header byte" 'hdr.qlm' "$QLM_RUN" "$T/hdr.qlm" -p hi
corrupt $((size - 3)) "$T/data.qlm"
expect_error "corrupted tensor byte" 'data.qlm.*(checksum|xxh|corrupt)' "$QLM_RUN" "$T/data.qlm" -p hi
expect_error "missing file" 'nonexistent.qlm.*(no such file|not found)' "$QLM_RUN" "$T/nonexistent.qlm" -p hi
mkdir "$T/dir.qlm"
expect_error "directory instead of a file" 'dir.qlm.*(directory|not a regular file)' "$QLM_RUN" "$T/dir.qlm" -p hi
printf 'not a model at all, just some text that is long enough to be read.....\n' >"$T/text.qlm"
expect_error "not a .qlm file" 'text.qlm' "$QLM_RUN" "$T/text.qlm" -p hi

expect_error "--ctx beyond the model's maximum" '--ctx 1000000000 exceeds the model.s maximum of [0-9]+' \
    "$QLM_RUN" "$M" -p hi --ctx 1000000000
expect_error "--ctx 0" 'ctx' "$QLM_RUN" "$M" -p hi --ctx 0
expect_error "--threads 0" 'threads' "$QLM_RUN" "$M" -p hi --threads 0
expect_error "prompt longer than the context" 'prompt is [0-9]+ tokens.*context of 4 tokens' \
    "$QLM_RUN" "$M" -p "To be, or not to be, that is the question" --ctx 4
expect_error "empty prompt" 'empty prompt' "$QLM_RUN" "$M" -p ""
: >"$T/empty.txt"
expect_error "empty prompt file" 'empty prompt' "$QLM_RUN" "$M" -f "$T/empty.txt"
# ... but it tokenizes to no ids, as Hugging Face's tokenizer says ([]).
tokenize_empty() { # tokenize_empty WHAT ARGS...: one empty line on stdout, status 0
    what=$1
    shift
    "$QLM_RUN" "$M" "$@" --tokenize >"$T/out" 2>"$T/err"
    rc=$?
    if [ $rc -eq 0 ] && [ "$(wc -c <"$T/out")" -eq 1 ] && [ -z "$(cat "$T/out")" ] &&
        [ ! -s "$T/err" ]; then
        pass "--tokenize $what: an empty line, status 0"
    else
        fail "--tokenize $what: status $rc, stdout '$(cat "$T/out")', stderr '$(cat "$T/err")'"
    fi
}
tokenize_empty '-p ""' -p ""
tokenize_empty "-f empty.txt" -f "$T/empty.txt"
# More threads than CPUs run, with a warning.
cpus=$(getconf _NPROCESSORS_ONLN 2>/dev/null || nproc)
if [ "$cpus" -ge 1 ] && [ "$cpus" -lt 1024 ]; then
    n=$((cpus + 1))
    if "$QLM_RUN" "$M" -p hi -n 1 -q --threads $n >"$T/out" 2>"$T/err" &&
        [ "$(cat "$T/err")" = "qlm-run: warning: --threads $n: more than the $cpus online CPUs (threads will share them)" ]; then
        pass "--threads $n on $cpus CPUs: $(cat "$T/err")"
    else
        fail "--threads $n on $cpus CPUs: status $?, stderr '$(cat "$T/err")'"
    fi
fi
expect_error "prompt file is a directory" 'directory' "$QLM_RUN" "$M" -f "$T/dir.qlm"
printf 'abc\377\376def' >"$T/bad.txt"
expect_error "invalid UTF-8 prompt file (named, with the offset)" 'bad.txt: not valid UTF-8 text \(byte 3\)' \
    "$QLM_RUN" "$M" -f "$T/bad.txt"
expect_error "invalid UTF-8 prompt (-p)" 'prompt \(-p\): not valid UTF-8 text \(byte 1\)' \
    "$QLM_RUN" "$M" -p "$(printf 'a\300\200b')"
printf '1 2\n3 999999 4\n' >"$T/ids.txt"
expect_error "out-of-range token id" 'ids.txt: token 4 \(999999\) is out of range' \
    "$QLM_RUN" "$M" --tokens "$T/ids.txt"
printf '1 2 -3\n' >"$T/neg.txt"
expect_error "negative token id" 'neg.txt: token 3' "$QLM_RUN" "$M" --tokens "$T/neg.txt"
printf '1 2 99999999999999999999999\n' >"$T/huge.txt"
expect_error "huge token id" 'huge.txt: token 3.*out of range' "$QLM_RUN" "$M" --tokens "$T/huge.txt"
printf ' \n\t\n' >"$T/blank.txt"
expect_error "no token ids" 'no token ids' "$QLM_RUN" "$M" --tokens "$T/blank.txt"
expect_error "--logits-out into a missing folder" 'nodir' \
    "$QLM_RUN" "$M" -p hi -n 0 --logits-out "$T/nodir/x.f32"
finish
