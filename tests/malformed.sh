#!/bin/sh
# tests/malformed.sh — hostile inputs to the real programs (issue #7).  Each
# case makes ONE defect in a copy of a good input (a model directory built
# from models/tiny, or tests/fixtures/tiny-q8.qlm) and runs the program on it.
# Every case must: exit with a status in 1..127 (never a signal, so an ASan
# report or a crash fails it) within a minute (a hang fails it), print
# exactly one line on stderr, "PROG: ...",
# naming the bad file and matching the case's expected problem (grep -Ei), and
# leave no output file and no temp file (qlm-convert writes into an empty
# folder that must stay empty).  The .imat cases (qlm-convert --imatrix) use
# a file qlm-imatrix writes from tests/fixtures/tiny-f32.qlm.  The table is the sequence of `bad` lines:
#   bad ID FILE-NAMED 'PROBLEM' PROGRAM ARGS...
# with the input made just above it.  Needs tests/fixtures.sh's output and
# tests/fuzz/qlmcraft (byte surgery: rewrites fields, recomputes checksums)
# and tests/gguftool (GGUF files of models/tiny).
set -u
top_srcdir=${top_srcdir:-.}
top_builddir=${top_builddir:-.}
FIX=$top_builddir/tests/fixtures
TINY=$(cd "$top_srcdir/models/tiny" && pwd)
CONVERT=$top_builddir/qlm-convert
INSPECT=$top_builddir/qlm-inspect
RUN=$top_builddir/qlm-run
PPL=$top_builddir/qlm-ppl
BENCH=$top_builddir/qlm-bench
CRAFT=$top_builddir/tests/fuzz/qlmcraft
GGUFTOOL=$top_builddir/tests/gguftool
IMATRIX=$top_builddir/qlm-imatrix
Q=$FIX/tiny-q8.qlm
for p in "$CONVERT" "$INSPECT" "$RUN" "$PPL" "$BENCH" "$CRAFT" "$IMATRIX" "$GGUFTOOL"; do
    [ -x "$p" ] || { echo "malformed: $p is not built"; exit 99; }
done
for f in "$Q" "$FIX/tiny-f32.qlm"; do
    [ -f "$f" ] || { echo "SKIP: $f missing (tests/fixtures.sh makes it)"; exit 77; }
done
T=$(mktemp -d "${TMPDIR:-/tmp}/qlm-malformed.XXXXXX") || exit 99
trap 'rm -rf "$T"' EXIT
mkdir "$T/out"
fails=0 cases=0
# A case that blocks (a FIFO opened for reading waits for a writer) must fail,
# not hang the suite: each runs under timeout(1) where there is one.
HANG_S=60
HANG=
if command -v timeout >/dev/null 2>&1; then HANG="timeout $HANG_S"; fi

# bad ID FILE PROBLEM PROG ARGS...: see above.  For qlm-convert, -o goes in
# $T/out, which must be empty afterwards.
bad() {
    id=$1 file=$2 problem=$3 prog=$4
    shift 4
    cases=$((cases + 1))
    name=$(basename "$prog")
    if [ "$name" = qlm-convert ]; then
        $HANG "$prog" "$@" -o "$T/out/$id.qlm" --threads 2 --quiet >"$T/stdout" 2>"$T/stderr" </dev/null
    else
        $HANG "$prog" "$@" >"$T/stdout" 2>"$T/stderr" </dev/null
    fi
    rc=$?
    line=$(head -n 1 "$T/stderr")
    nl=$(wc -l <"$T/stderr")
    if [ -n "$HANG" ] && [ "$rc" -eq 124 ]; then
        echo "FAIL $id: still running after $HANG_S s (a hang)"
    elif [ "$rc" -eq 0 ] || [ "$rc" -ge 128 ]; then
        echo "FAIL $id: exit status $rc (want 1..127)"
    elif [ "$nl" -ne 1 ]; then
        echo "FAIL $id: $nl lines on stderr (want 1)"
    elif ! printf '%s\n' "$line" | grep -qE "^$name: .*($file)"; then
        echo "FAIL $id: does not start with '$name:' and name $file"
    elif ! printf '%s\n' "$line" | grep -qiE -e "$problem"; then
        echo "FAIL $id: does not match /$problem/"
    elif [ -n "$(ls -A "$T/out")" ]; then
        echo "FAIL $id: left behind: $(ls -A "$T/out")"
    else
        echo "ok $id: $line"
        return 0
    fi
    fails=$((fails + 1))
    sed 's/^/    /' "$T/stderr" | head -n 20
    rm -f "$T/out"/* "$T/out"/.[!.]* 2>/dev/null
    return 1
}

# model ID: $T/ID, a model folder of links to models/tiny's files; a case
# replaces one of them (rm the link first: writes must not reach models/tiny).
model() {
    mkdir "$T/$1"
    for f in config.json tokenizer.json tokenizer_config.json model.safetensors; do
        ln -s "$TINY/$f" "$T/$1/$f"
    done
    echo "$T/$1"
}
# with ID FILE: model ID whose FILE is a writable copy (its path on stdout).
with() {
    d=$(model "$1")
    rm "$d/$2" && cp "$TINY/$2" "$d/$2" && chmod u+w "$d/$2"
    echo "$d/$2"
}
# st ID JSON DATALEN [DECLARED]: model ID with a crafted model.safetensors.
st() {
    d=$(model "$1")
    rm "$d/model.safetensors"
    shift
    "$CRAFT" st "$d/model.safetensors" "$@"
    echo "$d"
}
# cfg ID SED-SCRIPT: model ID with config.json edited by sed.
cfg() {
    d=$(model "$1")
    rm "$d/config.json"
    sed "$2" "$TINY/config.json" >"$d/config.json"
    echo "$d"
}
# tok ID SED-SCRIPT: model ID with tokenizer.json edited by sed.
tok() {
    d=$(model "$1")
    rm "$d/tokenizer.json"
    sed "$2" "$TINY/tokenizer.json" >"$d/tokenizer.json"
    cmp -s "$d/tokenizer.json" "$TINY/tokenizer.json" && echo "malformed: $2 changed nothing" >&2
    echo "$d"
}

# ---- inputs that are not regular files -------------------------------------
# odd ID FILE KIND: model ID whose FILE is a FIFO, a directory or a character
# device (KIND fifo, dir, dev); its folder on stdout.  Each is refused at
# once, naming what it is (open(2) on a FIFO would wait for a writer).
odd() {
    d=$(model "$1")
    rm -f "$d/$2"
    mk "$3" "$d/$2"
    echo "$d"
}
mk() { # mk KIND PATH: a FIFO, a directory or a character device (/dev/null) at PATH
    case $1 in
        fifo) mkfifo "$2" ;;
        dir) mkdir "$2" ;;
        dev) ln -s /dev/null "$2" ;;
    esac
}
what() { # what KIND: the refusal's words
    case $1 in
        fifo) echo 'is a FIFO, not a regular file' ;;
        dir) echo 'is a directory, not a regular file' ;;
        dev) echo 'is a character device, not a regular file' ;;
    esac
}
for f in config.json model.safetensors tokenizer.json tokenizer_config.json chat_template.jinja; do
    for k in fifo dir dev; do
        d=$(odd "nr-$f-$k" "$f" "$k")
        bad "nr-$f-$k" "$f" "$(what $k)" "$CONVERT" "$d"
    done
done
for k in fifo dir dev; do # tokenizer.json.gz, read when there is no tokenizer.json
    d=$(odd "nr-gz-$k" tokenizer.json.gz "$k") && rm "$d/tokenizer.json"
    bad "nr-tokenizer.json.gz-$k" tokenizer.json.gz "$(what $k)" "$CONVERT" "$d"
done
# through a symbolic link: what counts is the file it names
d=$(model nr-link) && mkfifo "$T/nr-link.fifo" && rm "$d/config.json" &&
    ln -s "$T/nr-link.fifo" "$d/config.json"
bad nr-link-to-fifo config.json "$(what fifo)" "$CONVERT" "$d"
d=$(model nr-loop) && rm "$d/config.json" && ln -s config.json "$d/config.json"
bad nr-symlink-loop config.json 'symbolic links' "$CONVERT" "$d"
mkfifo "$T/nr-dir-fifo"
bad nr-model-dir-fifo nr-dir-fifo 'not a directory|FIFO' "$CONVERT" "$T/nr-dir-fifo"

# ---- safetensors ----------------------------------------------------------
ST=model.safetensors
E='"x":{"dtype":"BF16","shape":[4],"data_offsets":[0,8]}'
d=$(st st-empty '' 0 0) && : >"$d/$ST"
bad st-empty $ST 'truncat|too short|empty|header' "$CONVERT" "$d"
d=$(st st-len4 '' 0) && head -c 4 "$d/$ST" >"$d/x" && mv "$d/x" "$d/$ST"
bad st-len-cut $ST 'truncat|too short|header' "$CONVERT" "$d"
d=$(st st-past "{$E}" 8 1000)
bad st-hdr-past-end $ST 'header|past|beyond|exceed|truncat' "$CONVERT" "$d"
d=$(st st-huge "{$E}" 8 9223372036854775807)
bad st-hdr-huge $ST 'header|large|exceed|past' "$CONVERT" "$d"
d=$(st st-hdr-cut "{$E}" 0) && head -c 30 "$d/$ST" >"$d/x" && mv "$d/x" "$d/$ST"
bad st-hdr-cut $ST 'header|truncat|past|exceed' "$CONVERT" "$d"
d=$(st st-array '[1,2,3]' 0)
bad st-not-object $ST 'object' "$CONVERT" "$d"
d=$(st st-json '{"x":{"dtype":"BF16",' 0)
bad st-bad-json $ST 'json|invalid|parse' "$CONVERT" "$d"
d=$(st st-rev '{"x":{"dtype":"BF16","shape":[4],"data_offsets":[8,0]}}' 8)
bad st-offsets-reversed $ST 'offset|begin|end' "$CONVERT" "$d"
d=$(st st-overlap "{$E,"'"y":{"dtype":"BF16","shape":[4],"data_offsets":[4,12]}}' 12)
bad st-offsets-overlap $ST 'overlap|contiguous|hole|offset' "$CONVERT" "$d"
d=$(st st-hole "{$E,"'"y":{"dtype":"BF16","shape":[4],"data_offsets":[16,24]}}' 24)
bad st-offsets-hole $ST 'hole|gap|contiguous|offset' "$CONVERT" "$d"
d=$(st st-pastend "{$E}" 4)
bad st-data-past-end $ST 'past|end|beyond|truncat|size' "$CONVERT" "$d"
d=$(st st-trailing "{$E}" 16)
bad st-trailing-data $ST 'trailing|end|size|extra' "$CONVERT" "$d"
d=$(st st-len '{"x":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}}' 8)
bad st-shape-vs-length $ST 'shape|size|bytes|length' "$CONVERT" "$d"
d=$(st st-dtype '{"x":{"dtype":"Q9","shape":[4],"data_offsets":[0,8]}}' 8)
bad st-unknown-dtype $ST 'dtype' "$CONVERT" "$d"
d=$(st st-dup "{$E,"'"x":{"dtype":"BF16","shape":[4],"data_offsets":[8,16]}}' 16)
bad st-duplicate-name $ST 'duplicate|twice' "$CONVERT" "$d"
d=$(st st-ovf '{"x":{"dtype":"BF16","shape":[4294967296,4294967296,4294967296],"data_offsets":[0,8]}}' 8)
bad st-shape-overflow $ST 'overflow|shape|large' "$CONVERT" "$d"
d=$(st st-neg '{"x":{"dtype":"BF16","shape":[-4],"data_offsets":[0,8]}}' 8)
bad st-negative-dim $ST 'shape|dim|negative' "$CONVERT" "$d"
d=$(st st-offstr '{"x":{"dtype":"BF16","shape":[4],"data_offsets":"0,8"}}' 8)
bad st-offsets-not-array $ST 'offset' "$CONVERT" "$d"
d=$(st st-missing "{$E}" 8)
bad st-missing-tensor st-missing 'embed_tokens|missing|not found' "$CONVERT" "$d"
f=$(with st-cut model.safetensors) && truncate -s 3000000 "$f"
bad st-truncated-data $ST 'truncat|end|size|past' "$CONVERT" "$(dirname "$f")"
# sharded: model.safetensors.index.json next to a shard (a copy of models/tiny's)
IX=model.safetensors.index.json
index() { # index ID JSON: model ID whose weights are IX + shard a.safetensors
    d=$(model "$1")
    mv "$d/model.safetensors" "$d/a.safetensors"
    printf '%s\n' "$2" >"$d/$IX"
    echo "$d"
}
# (a valid shard name, then an invalid one: qlm_st_close dereferenced the
# not-yet-allocated map array; found by fuzz_safetensors)
d=$(index ix-bad-name '{"weight_map": {"x": "a.safetensors", "z": ""}}')
bad ix-bad-second-name $IX "weight_map\\['z'\\] is not a shard" "$CONVERT" "$d"
d=$(index ix-slash '{"weight_map": {"x": "../a.safetensors"}}')
bad ix-path-in-name $IX "not a shard" "$CONVERT" "$d"
d=$(index ix-none '{"metadata": {}}')
bad ix-no-weight-map $IX 'weight_map' "$CONVERT" "$d"
d=$(index ix-missing '{"weight_map": {"x": "a.safetensors", "y": "b.safetensors"}}')
bad ix-missing-shard 'b.safetensors' 'no such file' "$CONVERT" "$d"
d=$(index ix-json '{"weight_map": {"x": "a.safetensors"')
bad ix-bad-json $IX 'line|json|expected' "$CONVERT" "$d"
d=$(index ix-empty '') && : >"$d/$IX"
bad ix-empty-file $IX 'line|json|expected' "$CONVERT" "$d"
d=$(index ix-array '[{"weight_map": {}}]')
bad ix-not-object $IX 'no "weight_map" object' "$CONVERT" "$d"
d=$(index ix-wm-empty '{"weight_map": {}}')
bad ix-empty-weight-map $IX 'no "weight_map" object' "$CONVERT" "$d"
d=$(index ix-num '{"weight_map": {"x": 7}}')
bad ix-name-not-string $IX "weight_map\\['x'\\] is not a shard file name" "$CONVERT" "$d"
d=$(index ix-dot '{"weight_map": {"x": "."}}')
bad ix-name-dot $IX "weight_map\\['x'\\] is not a shard file name" "$CONVERT" "$d"
d=$(index ix-dotdot '{"weight_map": {"x": ".."}}')
bad ix-name-dotdot $IX "weight_map\\['x'\\] is not a shard file name" "$CONVERT" "$d"
d=$(index ix-dupkey '{"weight_map": {"x": "a.safetensors", "x": "a.safetensors"}}')
bad ix-duplicate-key $IX 'duplicate' "$CONVERT" "$d"
# the tensors are all in a.safetensors; the index names only some, or one elsewhere
E2="\"model.embed_tokens.weight\": \"a.safetensors\""
d=$(index ix-partial "{\"weight_map\": {$E2}}")
bad ix-tensor-not-listed a.safetensors "tensor '.*' is not in .*$IX" "$CONVERT" "$d"
# names are compared whole: "b.safetensors" (empty) is not "ab.safetensors"
d=$(index ix-suffix '') && mv "$d/a.safetensors" "$d/ab.safetensors" &&
    "$CRAFT" st "$d/b.safetensors" '{}' 0 &&
    printf '{"weight_map": {"model.embed_tokens.weight": "b.safetensors"}}\n' >"$d/$IX"
bad ix-suffix-shard-name $IX "weight_map tensor 'model.embed_tokens.weight' is not in b.safetensors" \
    "$CONVERT" "$d"
# more distinct shards than can be mapped at once: refused by count, at once
d=$(index ix-many '') && awk 'BEGIN { printf "{\"weight_map\": {"
    for (i = 0; i < 16385; i++) printf "%s\"t%d\": \"s%d.safetensors\"", i ? ", " : "", i, i
    print "}}" }' >"$d/$IX"
bad ix-too-many-shards $IX 'weight_map names more than 16384 shard files' "$CONVERT" "$d"
for k in fifo dir; do
    d=$(index "ix-$k" '{}') && rm "$d/$IX" && mk $k "$d/$IX"
    bad "ix-index-$k" $IX "$(what $k)" "$CONVERT" "$d"
done
for k in fifo dir dev; do # a shard the index names
    d=$(index "ix-shard-$k" '{"weight_map": {"x": "s.safetensors"}}') && mk $k "$d/s.safetensors"
    bad "ix-shard-$k" s.safetensors "$(what $k)" "$CONVERT" "$d"
done

# ---- config.json ----------------------------------------------------------
d=$(model cfg-none) && rm "$d/config.json"
bad cfg-missing config.json 'no such file|cannot open|not found' "$CONVERT" "$d"
d=$(cfg cfg-json 's/"hidden_size": 256,/"hidden_size": 256/')
bad cfg-bad-json config.json 'json|line' "$CONVERT" "$d"
d=$(model cfg-empty) && rm "$d/config.json" && : >"$d/config.json"
bad cfg-empty config.json 'json|line' "$CONVERT" "$d"
d=$(model cfg-array) && rm "$d/config.json" && echo '[1, 2]' >"$d/config.json"
bad cfg-not-object config.json 'object|json' "$CONVERT" "$d"
d=$(cfg cfg-nohidden '/"hidden_size"/d')
bad cfg-missing-hidden config.json "missing key 'hidden_size'" "$CONVERT" "$d"
d=$(cfg cfg-hidstr 's/"hidden_size": 256/"hidden_size": "256"/')
bad cfg-hidden-string config.json "hidden_size.*integer" "$CONVERT" "$d"
d=$(cfg cfg-heads0 's/"num_attention_heads": 4/"num_attention_heads": 0/')
bad cfg-zero-heads config.json 'num_attention_heads' "$CONVERT" "$d"
d=$(cfg cfg-hidneg 's/"hidden_size": 256/"hidden_size": -256/')
bad cfg-negative-hidden config.json 'hidden_size' "$CONVERT" "$d"
d=$(cfg cfg-kv3 's/"num_key_value_heads": 2/"num_key_value_heads": 3/')
bad cfg-kv-not-dividing config.json 'num_key_value_heads|divi' "$CONVERT" "$d"
d=$(cfg cfg-hd 's/"head_dim": 64/"head_dim": 63/')
bad cfg-odd-head-dim config.json 'head_dim' "$CONVERT" "$d"
d=$(cfg cfg-eps 's/"rms_norm_eps": 1e-06/"rms_norm_eps": -1/')
bad cfg-negative-eps config.json 'rms_norm_eps' "$CONVERT" "$d"
d=$(cfg cfg-type 's/"model_type": "qwen3"/"model_type": "gpt9"/')
bad cfg-unknown-model-type config.json 'model_type|gpt9|support' "$CONVERT" "$d"
d=$(cfg cfg-layers 's/"num_hidden_layers": 4/"num_hidden_layers": 99999999999/')
bad cfg-huge-layers config.json 'num_hidden_layers' "$CONVERT" "$d"
d=$(cfg cfg-rope 's/"rope_scaling": null/"rope_scaling": {"type": "yarn"}/')
bad cfg-rope-scaling config.json 'rope_scaling' "$CONVERT" "$d"
# values the runtime refuses are refused at conversion too (one validation)
d=$(cfg cfg-theta-tiny 's/"rope_theta": 10000.0/"rope_theta": 1e-300/')
bad cfg-rope-theta-tiny config.json "key 'rope_theta' = 1e-300 out of range" "$CONVERT" "$d"
d=$(cfg cfg-theta-huge 's/"rope_theta": 10000.0/"rope_theta": 1e308/')
bad cfg-rope-theta-huge config.json "key 'rope_theta' = 1e\\+308 out of range" "$CONVERT" "$d"
d=$(cfg cfg-maxpos 's/"max_position_embeddings": 1024/"max_position_embeddings": 2147483647/')
bad cfg-max-pos-huge config.json "max_position_embeddings' = 2147483647 out of range" "$CONVERT" "$d"
d=$(cfg cfg-eps-tiny 's/"rms_norm_eps": 1e-06/"rms_norm_eps": 1e-320/')
bad cfg-eps-denormal config.json "key 'rms_norm_eps' = .* out of range" "$CONVERT" "$d"
d=$(cfg cfg-layers-big 's/"num_hidden_layers": 4/"num_hidden_layers": 1025/')
bad cfg-layers-past-runtime config.json "num_hidden_layers' = 1025 out of range" "$CONVERT" "$d"
# features the runtime does not execute are refused by name, not ignored
d=$(cfg cfg-partial-rope 's/"use_cache": true,/"use_cache": true, "partial_rotary_factor": 0.5,/')
bad cfg-partial-rotary config.json 'partial_rotary_factor' "$CONVERT" "$d"
d=$(cfg cfg-layer-types 's/"use_cache": true,/"use_cache": true, "layer_types": ["full_attention", "sliding_attention", "full_attention", "full_attention"],/')
bad cfg-sliding-layer config.json 'layer_types\[1\].*sliding' "$CONVERT" "$d"
d=$(cfg cfg-quantized 's/"use_cache": true,/"use_cache": true, "quantization_config": {"quant_method": "gptq", "bits": 4},/')
bad cfg-pre-quantized config.json 'quantization_config.*pre-quantized' "$CONVERT" "$d"
d=$(cfg cfg-sliding 's/"use_sliding_window": false/"use_sliding_window": true/')
bad cfg-sliding-window config.json 'use_sliding_window' "$CONVERT" "$d"
d=$(cfg cfg-vocab 's/"vocab_size": 2304/"vocab_size": 2000/')
bad cfg-vocab-vs-tensor 'model.safetensors|config.json' 'embed_tokens|vocab|shape' "$CONVERT" "$d"

# ---- tokenizer.json -------------------------------------------------------
d=$(model tok-none) && rm "$d/tokenizer.json"
bad tok-missing tokenizer.json 'no tokenizer|no such file|not found' "$CONVERT" "$d"
d=$(tok tok-json '1s/{/{{/')
bad tok-bad-json tokenizer.json 'line|json' "$CONVERT" "$d"
d=$(tok tok-nomerges 's/"merges": \[/"mergez": [/')
bad tok-missing-merges tokenizer.json 'merges' "$CONVERT" "$d"
d=$(tok tok-merge-unknown '2355s/"Ġ"/"QQQQZZZZ"/')
bad tok-merge-unknown-token tokenizer.json 'merge|QQQQZZZZ|not.*token|unknown' "$CONVERT" "$d"
d=$(tok tok-id-range '/^   "!": 0,$/s/0/99999999/')
bad tok-vocab-id-out-of-range tokenizer.json 'id|range|vocab' "$CONVERT" "$d"
d=$(tok tok-added-range 's/"id": 2256,/"id": 4000000000,/')
bad tok-added-id-out-of-range tokenizer.json 'id|range|added' "$CONVERT" "$d"
d=$(tok tok-model 's/"type": "BPE"/"type": "WordPiece"/')
bad tok-not-bpe tokenizer.json 'BPE|WordPiece|type' "$CONVERT" "$d"
# the split regex is compiled at conversion as the runtime compiles it
d=$(tok tok-regex-invalid '61s/"Regex": "(?i:/"Regex": "((?i:/')
bad tok-regex-invalid tokenizer.json 'tokenizer regex: .*offset' "$CONVERT" "$d"
d=$(model tok-regex-huge) && rm "$d/tokenizer.json" &&
    awk 'NR == 61 { printf "     \"Regex\": \""; for (i = 0; i < 200000; i++) printf "abcdefghij"; print "\"" ; next } { print }' \
        "$TINY/tokenizer.json" >"$d/tokenizer.json"
bad tok-regex-2mb tokenizer.json 'regex of 2000000 bytes is too long' "$CONVERT" "$d"
d=$(tok tok-post-eos '75s/"type": "ByteLevel",/"type": "TemplateProcessing", "single": [{"Sequence": {"id": "A"}}, {"SpecialToken": {"id": "<|im_end|>"}}], "special_tokens": {"<|im_end|>": {"id": "<|im_end|>", "ids": [2258], "tokens": ["<|im_end|>"]}},/')
bad tok-post-processor-eos tokenizer.json 'post_processor TemplateProcessing adds tokens other' "$CONVERT" "$d"
d=$(tok tok-post-bert '75s/"type": "ByteLevel",/"type": "BertProcessing",/')
bad tok-post-processor-bert tokenizer.json 'post_processor BertProcessing is not supported' "$CONVERT" "$d"
d=$(tok tok-vocab-dup '/^   "\\"": 1,$/s/1/0/')
bad tok-vocab-id-twice tokenizer.json 'twice|duplicate|id 0' "$CONVERT" "$d"
d=$(model tok-empty) && rm "$d/tokenizer.json" && : >"$d/tokenizer.json"
bad tok-empty tokenizer.json 'line|json' "$CONVERT" "$d"
# tokenizer.json.gz, read when there is no tokenizer.json: a cut or damaged
# download is a gzip error, not a JSON one
gz() { # gz ID: model ID with tokenizer.json.gz (a copy of tokenizer.json, gzipped)
    d=$(model "$1") && rm "$d/tokenizer.json" && gzip -c "$TINY/tokenizer.json" >"$d/tokenizer.json.gz"
    echo "$d"
}
d=$(gz gz-cut) && head -c 5000 "$d/tokenizer.json.gz" >"$d/x" && mv "$d/x" "$d/tokenizer.json.gz"
bad gz-truncated tokenizer.json.gz 'truncated gzip stream' "$CONVERT" "$d"
d=$(gz gz-hdr) && head -c 9 "$d/tokenizer.json.gz" >"$d/x" && mv "$d/x" "$d/tokenizer.json.gz"
bad gz-truncated-header tokenizer.json.gz 'truncated gzip stream' "$CONVERT" "$d"
d=$(gz gz-crc) && n=$(wc -c <"$d/tokenizer.json.gz") && "$CRAFT" flip "$d/tokenizer.json.gz" $((n - 6))
bad gz-bad-crc tokenizer.json.gz 'corrupt gzip data' "$CONVERT" "$d"
d=$(gz gz-data) && "$CRAFT" flip "$d/tokenizer.json.gz" 3000
bad gz-bad-data tokenizer.json.gz 'corrupt gzip data|truncated gzip' "$CONVERT" "$d"

# ---- tokenizer_config.json and chat_template.jinja --------------------------
tc() { # tc ID JSON: model ID with tokenizer_config.json replaced by JSON
    d=$(model "$1") && rm "$d/tokenizer_config.json" && printf '%s\n' "$2" >"$d/tokenizer_config.json"
    echo "$d"
}
TC=tokenizer_config.json
d=$(tc tc-json '{"eos_token": ')
bad tc-bad-json $TC 'line .* column' "$CONVERT" "$d"
d=$(tc tc-array '["<|im_end|>"]')
bad tc-not-object $TC 'not a JSON object' "$CONVERT" "$d"
d=$(tc tc-eos '{"eos_token": "<|nope|>"}')
bad tc-eos-not-a-token $TC 'eos_token "<\|nope\|>" is not a token' "$CONVERT" "$d"
d=$(tc tc-eos-num '{"eos_token": 5}')
bad tc-eos-not-string $TC 'eos_token is not a string' "$CONVERT" "$d"
d=$(tc tc-bos-flag '{"add_bos_token": "yes"}')
bad tc-add-bos-not-bool $TC 'add_bos_token is not a boolean' "$CONVERT" "$d"
d=$(tc tc-bos-none '{"add_bos_token": true, "bos_token": null}')
bad tc-add-bos-without-bos $TC 'add_bos_token is true but there is no bos_token' "$CONVERT" "$d"
d=$(tc tc-tmpl '{"chat_template": 42}')
bad tc-template-not-string $TC 'chat_template is neither a string nor a list' "$CONVERT" "$d"
d=$(tc tc-tmpl-list '{"chat_template": [{"name": "default", "template": 1}]}')
bad tc-template-list-bad $TC 'chat_template is neither a string nor a list' "$CONVERT" "$d"
d=$(tc tc-none '{}') && printf 'a\000b' >"$d/chat_template.jinja"
bad jinja-nul-byte chat_template.jinja 'holds a NUL byte' "$CONVERT" "$d"

# ---- .qlm -----------------------------------------------------------------
eval "$("$CRAFT" hdr "$Q")"
size=$file_size
# qlm FILE: a writable copy of the fixture at $T/FILE.
qlm() { cp "$Q" "$T/$1" && chmod u+w "$T/$1" && echo "$T/$1"; }
both() { # both ID PROBLEM FILE: qlm-inspect and qlm-run refuse FILE
    bad "$1-inspect" "$(basename "$3")" "$2" "$INSPECT" "$3"
    bad "$1-run" "$(basename "$3")" "$2" "$RUN" "$3" -p hi -n 1
}
f=$(qlm magic.qlm) && "$CRAFT" flip "$f" 0
both bad-magic 'magic' "$f"
f=$(qlm newer.qlm) && "$CRAFT" put "$f" 8 4 3 && "$CRAFT" rehash "$f"
both newer-major 'version 3\.0 is newer.*upgrade' "$f"
# a format 1.x file (row-major quants, scales apart): refused up front
f=$(qlm older.qlm) && "$CRAFT" put "$f" 8 4 1 && "$CRAFT" rehash "$f"
both older-major 'version 1\.0 is older.*convert the checkpoint again' "$f"
f=$(qlm empty.qlm) && : >"$f"
both empty 'truncated' "$f"
# truncated in each section: header, metadata, tokenizer, directory, padding, data
for cut in 100 $((meta_offset + 3)) $((tok_offset + tok_size / 2)) $((dir_offset + 90)) \
        $((data_offset - 5)) $((data_offset + data_size / 2)) $((size - 1)); do
    f=$(qlm "cut-$cut.qlm") && truncate -s "$cut" "$f"
    both "truncated-at-$cut" 'truncated' "$f"
done
f=$(qlm extended.qlm) && printf x >>"$f"
both extended 'extended' "$f"
# one flipped bit in each checksummed region
f=$(qlm flip-hdr.qlm) && "$CRAFT" flip "$f" 30
both flip-header 'header checksum' "$f"
f=$(qlm flip-meta.qlm) && "$CRAFT" flip "$f" $((meta_offset + meta_size / 2))
both flip-metadata 'metadata checksum' "$f"
f=$(qlm flip-tok.qlm) && "$CRAFT" flip "$f" $((tok_offset + tok_size / 2))
both flip-tokenizer 'tokenizer checksum' "$f"
f=$(qlm flip-dir.qlm) && "$CRAFT" flip "$f" $((dir_offset + 100))
both flip-directory 'directory checksum' "$f"
f=$(qlm flip-data.qlm) && "$CRAFT" flip "$f" $((size - 100))
bad flip-data-inspect flip-data.qlm "checksum" "$INSPECT" --verify "$f"
bad flip-data-run flip-data.qlm "checksum" "$RUN" "$f" -p hi -n 1
# deeper: a defect with every checksum recomputed
E0=$dir_offset E1=$((dir_offset + 80))  # directory entries 0 and 1
[ "$("$CRAFT" get "$Q" $((E0 + 6)) 1)" = 3 ] && [ "$("$CRAFT" get "$Q" $((E1 + 6)) 1)" = 0 ] ||
    { echo "malformed: the cases below assume entry 0 is q8 and entry 1 f32"; exit 99; }
deep() { # deep ID PROBLEM OFF WIDTH VALUE
    f=$(qlm "$1.qlm") && "$CRAFT" put "$f" "$3" "$4" "$5" && "$CRAFT" rehash "$f"
    both "$1" "$2" "$f"
}
deep d-minor-ok-major-0 'version 0\.0 is older' 8 4 0
deep d-file-size 'truncated or extended' 16 8 $((size + 64))
deep d-meta-past-end 'outside|overlap|order' 24 8 $((size * 4))
deep d-tok-size-huge 'outside|overlap|order' 48 8 18446744073709551615
deep d-dir-offset 'outside|overlap|order' 64 8 100
deep d-alignment 'alignment' 84 4 3
deep d-data-offset 'data section|page|align' 88 8 $((data_offset + 1))
deep d-n-tensors 'exceeds' 80 4 4294967295
deep d-meta-count 'metadata count' "$meta_offset" 4 4294967295
deep d-meta-keylen 'metadata entry|truncated' $((meta_offset + 4)) 2 65535
kl=$("$CRAFT" get "$Q" $((meta_offset + 4)) 2)
deep d-meta-type 'unknown type' $((meta_offset + 6 + kl)) 1 9
deep d-name-offset 'name \[4000000000, \+[0-9]+\) outside the [0-9]+-byte string table' "$E0" 4 4000000000
deep d-dtype 'unknown dtype' $((E0 + 6)) 1 99
deep d-ndims 'dims' $((E0 + 7)) 1 0
deep d-dims-overflow '4611686018427387904 x [0-9]+ q8: byte size overflows' $((E0 + 8)) 8 4611686018427387904
deep d-layout 'layout 7, a q8 tensor has 8' $((E0 + 44)) 4 7
deep d-layout-1x 'layout 0, a q8 tensor has 8' $((E0 + 44)) 4 0
deep d-layout-float 'layout 8, a f32 tensor has 0' $((E1 + 44)) 4 8
deep d-offset-past-end 'outside the data section' $((E0 + 48)) 8 $((data_size + 64))
deep d-offset-unaligned 'not aligned' $((E0 + 48)) 8 1
deep d-size 'size' $((E0 + 56)) 8 64
off0=$("$CRAFT" get "$Q" $((E0 + 48)) 8)
deep d-overlap 'overlap' $((E1 + 48)) 8 "$off0"
deep d-group 'group' $((E0 + 40)) 4 3
deep d-group-16 'does not fit q8 group 16' $((E0 + 40)) 4 16
f=$(qlm d-tok-raw.qlm) && "$CRAFT" put "$f" 56 8 $((tok_raw_size - 1)) && "$CRAFT" rehash "$f"
bad d-tok-raw-size-run d-tok-raw.qlm 'tokenizer|inflate|size' "$RUN" "$f" -p hi -n 1
f=$(qlm d-tok-zlib.qlm) && "$CRAFT" flip "$f" $((tok_offset + tok_size / 2)) && "$CRAFT" rehash "$f"
bad d-tok-zlib-run d-tok-zlib.qlm 'tokenizer|inflate|zlib|corrupt' "$RUN" "$f" -p hi -n 1
f=$(qlm d-tok-raw-more.qlm) && "$CRAFT" put "$f" 56 8 $((tok_raw_size + 1)) && "$CRAFT" rehash "$f"
both d-tok-raw-size-more "does not inflate to $((tok_raw_size + 1)) bytes \\(it holds fewer\\)" "$f"
# bytes after the zlib stream, inside tok_size (the directory moved up)
for k in 1 100; do
    f=$(qlm "d-tok-tail-$k.qlm") && "$CRAFT" grow "$f" tok $k && "$CRAFT" rehash "$f"
    both "d-tok-trailing-$k" "zlib stream ends at byte $tok_size of its $((tok_size + k))-byte section" "$f"
done
# ---- the directory's string table: the names back to back, in entry order --
N1=$(($("$CRAFT" get "$Q" $((E0 + 4)) 2)))     # entry 0's name length
EL=$((dir_offset + (n_tensors - 1) * 80))      # the last entry
ST=$((dir_offset + n_tensors * 80))            # the string table
f=$(qlm d-strtab-extra.qlm) && "$CRAFT" grow "$f" dir 1 && "$CRAFT" rehash "$f"
both d-strtab-byte-uncovered "names cover $((dir_size - n_tensors * 80)) of the string table's $((dir_size - n_tensors * 80 + 1)) bytes" "$f"
deep d-name-short-last "names cover $((dir_size - n_tensors * 80 - 1)) of" $((EL + 4)) 2 \
    $(($("$CRAFT" get "$Q" $((EL + 4)) 2) - 1))
deep d-name-shared 'tensor 1: name at string-table offset 0, not '"$N1" $((E1)) 4 0
deep d-name-out-of-order 'tensor 0: name at string-table offset 1, not 0' "$E0" 4 1
deep d-name-empty 'tensor 0: empty name' $((E0 + 4)) 2 0
deep d-name-len-past 'tensor 0: name \[0, \+65535\) outside' $((E0 + 4)) 2 65535
deep d-name-nul 'tensor 0: NUL byte in name' "$ST" 1 0
deep d-name-not-utf8 'tensor 0: name is not valid UTF-8 \(byte 0\)' "$ST" 1 255
deep d-name-overlong 'tensor 0: name is not valid UTF-8 \(byte 0\)' "$ST" 2 0xafc0
# ---- metadata that is not UTF-8 (keys, string values) ----------------------
K0=$((meta_offset + 6))                        # entry 0's key
deep d-key-not-utf8 'metadata entry 0: key is not valid UTF-8 \(byte 0\)' "$K0" 1 255
deep d-key-overlong 'metadata entry 0: key is not valid UTF-8 \(byte 0\)' "$K0" 2 0xafc0
deep d-key-surrogate 'metadata entry 0: key is not valid UTF-8 \(byte 1\)' "$K0" 4 0x80a0ed67
deep d-key-past-max 'metadata entry 0: key is not valid UTF-8 \(byte 0\)' "$K0" 4 0x808090f4
deep d-key-cut-char 'metadata entry 0: key is not valid UTF-8 \(byte 2\)' "$K0" 4 0x2ee46567
QT=$(($("$CRAFT" meta-off "$Q" quant.type) + 4))
deep d-str-not-utf8 "metadata 'quant.type': string is not valid UTF-8 \\(byte 0\\)" "$QT" 2 0x3880
deep d-str-bad-lead "metadata 'quant.type': string is not valid UTF-8 \\(byte 1\\)" "$QT" 2 0xfe71
f=$(qlm d-meta-tail.qlm) && "$CRAFT" grow "$f" meta 3 && "$CRAFT" rehash "$f"
both d-meta-trailing '3 trailing bytes in the metadata section' "$f"
# dims whose byte size overflows 64 bits say so
deep d-f32-dims-overflow '4611686018427387904 f32: byte size overflows|1 x 4611686018427387904 f32' \
    $((E1 + 8)) 8 4611686018427387904
deep d-q8-cols-overflow 'x 4611686018427387904 q8: byte size overflows' $((E0 + 16)) 8 4611686018427387904
# ---- a .qlm that is not a regular file, for every program ------------------
for k in fifo dir dev; do
    mk $k "$T/$k.qlm"
    both "nr-qlm-$k" "$(what $k)" "$T/$k.qlm"
done
ln -s "$T/fifo.qlm" "$T/link.qlm"
bad nr-qlm-link-run link.qlm "$(what fifo)" "$RUN" "$T/link.qlm" -p hi -n 1
bad nr-qlm-verify fifo.qlm "$(what fifo)" "$INSPECT" --verify "$T/fifo.qlm"
printf 'Some text to score, long enough for a chunk or two.\n' >"$T/text.txt"
bad nr-qlm-ppl fifo.qlm "$(what fifo)" "$PPL" "$T/fifo.qlm" -f "$T/text.txt"
bad nr-qlm-ppl-ref fifo.qlm "$(what fifo)" "$PPL" "$Q" --ref "$T/fifo.qlm" -f "$T/text.txt"
bad nr-qlm-ppl-ref-dir dir.qlm "$(what dir)" "$PPL" "$Q" --ref "$T/dir.qlm" -f "$T/text.txt"
bad nr-qlm-bench fifo.qlm "$(what fifo)" "$BENCH" "$T/fifo.qlm"
bad nr-qlm-bench-dev dev.qlm "$(what dev)" "$BENCH" "$T/dev.qlm"

# ---- metadata that disagrees with the directory (checksums valid) ---------
# meta ID PROBLEM KEY WIDTH VALUE: the fixture with KEY's value (or a
# string's first bytes) rewritten, then qlm-run must refuse it.
meta() {
    f=$(qlm "$1.qlm") && off=$("$CRAFT" meta-off "$f" "$3") &&
        "$CRAFT" put "$f" "$off" "$4" "$5" && "$CRAFT" rehash "$f"
    bad "$1" "$1.qlm" "$2" "$RUN" "$f" -p hi -n 1
}
meta m-fewer-layers "unexpected tensor 'model.layers.3\." model.n_layers 8 3
meta m-more-layers "missing tensor 'model.layers.4\." model.n_layers 8 5
meta m-no-qk-norm "unexpected tensor 'model.layers.0.self_attn.[qk]_norm" model.qk_norm 8 0
meta m-qkv-bias "missing tensor 'model.layers.0.self_attn.q_proj.bias'" model.qkv_bias 8 1
meta m-untied-no-head "missing tensor 'lm_head.weight'" model.tied 8 0
meta m-flag-2 "'model.tied' must be 0 or 1" model.tied 8 2
meta m-max-pos "metadata 'model.max_pos' = 2147483647 out of range" model.max_pos 8 2147483647
meta m-theta-tiny "metadata 'model.rope_theta' = 1e-300 out of range" model.rope_theta 8 \
    0x01a56e1fc2f8f359
meta m-eps-denormal "metadata 'model.rms_eps' = .* out of range" model.rms_eps 8 2024
meta m-odd-head-dim "'model.head_dim' = 63 is odd" model.head_dim 8 63
meta m-kv-not-dividing "'model.n_heads' = 4 is not a multiple of 'model.n_kv_heads' = 3" \
    model.n_kv_heads 8 3
# quant.type is a u32 length then bytes: rewrite "q8" (0x3871) as "q4" / "zz"
qt=$(($("$CRAFT" meta-off "$Q" quant.type) + 4))
f=$(qlm m-qtype-q4.qlm) && "$CRAFT" put "$f" "$qt" 2 0x3471 && "$CRAFT" rehash "$f"
bad m-quant-type-q4 m-qtype-q4.qlm 'weights are q4 \(group 32\), but no linear weight' \
    "$RUN" "$f" -p hi -n 1
f=$(qlm m-qtype-zz.qlm) && "$CRAFT" put "$f" "$qt" 2 0x7a7a && "$CRAFT" rehash "$f"
bad m-quant-type-unknown m-qtype-zz.qlm "'quant.type' = 'zz' is not a type" "$RUN" "$f" -p hi -n 1
meta m-quant-group "weights are q8 \(group 64\), but no linear weight" quant.group 8 64

# ---- non-finite weights ---------------------------------------------------
# A NaN / an Inf (bf16 0x7fc0 / 0xff80) in one weight: refused, naming the
# tensor; --allow-nonfinite converts it with a warning naming the tensor.
W=model.layers.1.mlp.down_proj.weight
set -- $("$CRAFT" st-off "$TINY/model.safetensors" "$W")
woff=$1 wdt=$2
[ "$wdt" = BF16 ] || { echo "malformed: $W is $wdt, the NaN cases assume BF16"; exit 99; }
f=$(with nan model.safetensors) && "$CRAFT" put "$f" $((woff + 2 * 1000)) 2 0x7fc0
bad nan-weight model.safetensors "tensor '$W' has NaN at row $((1000 / 768))" "$CONVERT" "$(dirname "$f")"
f=$(with inf model.safetensors) && "$CRAFT" put "$f" $((woff + 2 * 77)) 2 0xff80
bad inf-weight model.safetensors "tensor '$W' has Inf at row 0" "$CONVERT" "$(dirname "$f")"
cases=$((cases + 1))
if "$CONVERT" "$(dirname "$f")" -o "$T/out/allow.qlm" --quiet --allow-nonfinite 2>"$T/stderr" &&
    grep -q "$W" "$T/stderr" && "$INSPECT" --verify "$T/out/allow.qlm" >/dev/null 2>&1; then
    echo "ok allow-nonfinite: converts, warns: $(cat "$T/stderr")"
else
    echo "FAIL allow-nonfinite: status $? or no warning naming $W"; cat "$T/stderr"
    fails=$((fails + 1))
fi
rm -f "$T/out/allow.qlm"

# ---- GGUF -----------------------------------------------------------------
# A Q8_0 GGUF of models/tiny (tests/gguftool), one defect per copy; the
# reader's refusals reach qlm-convert and qlm-inspect alike.
G=$T/tiny-q8_0.gguf
"$GGUFTOOL" write "$TINY" "$G" q8_0 || { echo "malformed: gguftool write failed"; exit 99; }
gguf() { cp "$G" "$T/$1" && chmod u+w "$T/$1" && echo "$T/$1"; }
gboth() { # gboth ID PROBLEM FILE: qlm-convert and qlm-inspect refuse FILE
    bad "$1-convert" "$(basename "$3")" "$2" "$CONVERT" "$3"
    bad "$1-inspect" "$(basename "$3")" "$2" "$INSPECT" "$3"
}
goff() { "$CRAFT" gguf-off "$G" "$1"; }
A=$(goff tensor:token_embd.weight)   # n_dims, ne0, ne1, type, offset of tensor 0
B=$(goff tensor:blk.0.attn_norm.weight) # ... of tensor 1 (1-dimensional)
size=$(wc -c <"$G")
f=$(gguf g-empty.gguf) && : >"$f"
gboth g-empty 'truncated: 0 bytes, not a GGUF file' "$f"
f=$(gguf g-magic.gguf) && "$CRAFT" put "$f" 0 1 0x58
gboth g-bad-magic 'not a GGUF file' "$f"
f=$(gguf g-v1.gguf) && "$CRAFT" put "$f" 4 4 1
gboth g-version-1 'GGUF version 1 is not supported' "$f"
f=$(gguf g-be.gguf) && "$CRAFT" put "$f" 4 4 0x03000000
gboth g-big-endian 'big-endian' "$f"
f=$(gguf g-ntensors.gguf) && "$CRAFT" put "$f" 8 8 1099511627776
gboth g-tensor-count 'tensors: more than the file can hold' "$f"
f=$(gguf g-keylen.gguf) && "$CRAFT" put "$f" 24 8 1152921504606846976
gboth g-key-length 'truncated in key/value 0' "$f"
f=$(gguf g-ndims.gguf) && "$CRAFT" put "$f" "$A" 4 5
gboth g-five-dims "tensor 'token_embd.weight' has 5 dimensions" "$f"
f=$(gguf g-ovf.gguf) && "$CRAFT" put "$f" $((A + 4)) 8 4611686018427387904
gboth g-dims-overflow 'elements overflow' "$f"
f=$(gguf g-type.gguf) && "$CRAFT" put "$f" $((A + 20)) 4 99
gboth g-unknown-type "tensor 'token_embd.weight' has unknown ggml type 99" "$f"
f=$(gguf g-block.gguf) && "$CRAFT" put "$f" $((A + 4)) 8 250
gboth g-partial-block 'rows of 250 elements, not a multiple of its block of 32' "$f"
f=$(gguf g-unaligned.gguf) && "$CRAFT" put "$f" $((B + 16)) 8 $(($("$CRAFT" get "$G" $((B + 16)) 8) + 1))
gboth g-unaligned 'is not aligned to 32' "$f"
f=$(gguf g-overlap.gguf) && "$CRAFT" put "$f" $((B + 16)) 8 0
gboth g-overlap 'overlaps the tensor before it' "$f"
f=$(gguf g-hole.gguf) && "$CRAFT" put "$f" $((B + 16)) 8 $(($("$CRAFT" get "$G" $((B + 16)) 8) + 64))
gboth g-hole "hole of 64 bytes before tensor 'blk.0.attn_norm.weight'" "$f"
f=$(gguf g-cut.gguf) && truncate -s $((size - 5000)) "$f"
gboth g-truncated 'ends at [0-9]+, past the end of the file' "$f"
f=$(gguf g-cut-info.gguf) && truncate -s $((A + 2)) "$f"
gboth g-truncated-info 'truncated in tensor info 0' "$f"
f=$(gguf g-trailing.gguf) && head -c 100 /dev/zero >>"$f"
gboth g-trailing 'trailing bytes after the last tensor' "$f"
# what the import refuses: named by the GGUF key or the tensor
K=$(goff key:general.architecture)
f=$(gguf g-arch.gguf) && "$CRAFT" put "$f" $((K + 8 + 4)) 1 0x39
bad g-unknown-arch g-arch.gguf "general.architecture 'qwen9' is not supported" "$CONVERT" "$f"
f=$(gguf g-layers.gguf) && "$CRAFT" put "$f" "$(goff key:qwen3.block_count)" 4 9999
bad g-layers-range g-layers.gguf "metadata 'qwen3.block_count' = 9999 out of range" "$CONVERT" "$f"
f=$(gguf g-fewer.gguf) && "$CRAFT" put "$f" "$(goff key:qwen3.block_count)" 4 3
bad g-fewer-layers g-fewer.gguf "unexpected tensor 'model.layers.3\..*not implied by the GGUF metadata" \
    "$CONVERT" "$f"
f=$(gguf g-model.gguf) && "$CRAFT" put "$f" $(($(goff key:tokenizer.ggml.model) + 8 + 3)) 1 0x33
bad g-tok-model g-model.gguf "tokenizer.ggml.model 'gpt3' is not supported" "$CONVERT" "$f"
f=$(gguf g-pre.gguf) && "$CRAFT" put "$f" $(($(goff key:tokenizer.ggml.pre) + 8 + 4)) 1 0x33
bad g-tok-pre g-pre.gguf "tokenizer.ggml.pre 'qwen3' is not supported" "$CONVERT" "$f"
f=$(gguf g-eos.gguf) && "$CRAFT" put "$f" "$(goff key:tokenizer.ggml.eos_token_id)" 4 999999
bad g-eos-range g-eos.gguf 'tokenizer.ggml.eos_token_id = 999999 is not a token' "$CONVERT" "$f"
f=$(gguf g-nan.gguf) && "$CRAFT" put "$f" $(($(goff tdata:blk.1.ffn_down.weight) + 34 * 25)) 2 0x7e00
bad g-nan-scale g-nan.gguf "tensor 'model.layers.1.mlp.down_proj.weight' has NaN at row 1" \
    "$CONVERT" "$f"
bad g-nan-verify g-nan.gguf "tensor 'blk.1.ffn_down.weight' has NaN at row 1" "$INSPECT" --verify "$f"
for k in fifo dir dev; do # not a regular file: refused at once
    mk $k "$T/$k.gguf"
    gboth "g-$k" "$(what $k)" "$T/$k.gguf"
done

# ---- .imat (qlm-convert --imatrix) ----------------------------------------
# A good .imat of the tiny model, then one defect per copy; the deeper cases
# recompute the trailing checksum (qlmcraft imat-rehash).
I0=$T/good.imat
"$IMATRIX" "$FIX/tiny-f32.qlm" -f "$TINY/heldout.txt" -o "$I0" --ctx 64 --chunks 2 --threads 2 \
    2>/dev/null || { echo "malformed: qlm-imatrix failed"; exit 99; }
isize=$(wc -c <"$I0")
imat() { cp "$I0" "$T/$1" && echo "$T/$1"; }
ibad() { # ibad ID PROBLEM FILE: qlm-convert --imatrix FILE refuses it, naming it
    bad "$1" "$(basename "$3")" "$2" "$CONVERT" "$TINY" --imatrix "$3"
}
ideep() { # ideep ID PROBLEM OFF WIDTH VALUE
    f=$(imat "$1.imat") && "$CRAFT" put "$f" "$3" "$4" "$5" && "$CRAFT" imat-rehash "$f"
    ibad "$1" "$2" "$f"
}
ibad imat-missing 'No such file' "$T/none.imat"
mkdir "$T/dir.imat"
ibad imat-directory 'not a regular file' "$T/dir.imat"
for k in fifo dev; do
    mk $k "$T/$k.imat"
    ibad "imat-$k" "$(what $k)" "$T/$k.imat"
done
f=$(imat empty.imat) && : >"$f"
ibad imat-empty 'truncated' "$f"
f=$(imat magic.imat) && "$CRAFT" flip "$f" 1
ibad imat-magic 'bad magic' "$f"
f=$(imat qlm.imat) && cp "$Q" "$f"
ibad imat-is-a-qlm 'bad magic' "$f"
for cut in 50 100 $((isize / 2)) $((isize - 1)); do
    f=$(imat "cut-$cut.imat") && truncate -s "$cut" "$f"
    ibad "imat-truncated-at-$cut" 'truncated' "$f"
done
f=$(imat extended.imat) && printf x >>"$f"
ibad imat-extended 'truncated or extended' "$f"
f=$(imat flip.imat) && "$CRAFT" flip "$f" $((isize / 2))
ibad imat-flipped-value 'checksum mismatch' "$f"
E0=$("$CRAFT" imat-off "$I0" model.layers.0.self_attn.q_proj.weight)
E1=$("$CRAFT" imat-off "$I0" model.layers.0.self_attn.k_proj.weight)
V0=$((E0 + 2 + 38 + 12)) # entry 0's values (its name is 38 bytes)
ideep imat-newer 'version 2\.0 is newer than this qlm \(1\.x\); upgrade' 8 4 2
ideep imat-older 'version 0\.0 is older' 8 4 0
ideep imat-size-field 'truncated or extended' 16 8 $((isize + 8))
ideep imat-arch 'architecture name' 24 1 0
ideep imat-zero-layers 'model n_layers is 0' 40 4 0
ideep imat-no-entries '0 entries' 68 4 0
ideep imat-entries-huge '4294967295 entries, not 1 to' 68 4 4294967295
ideep imat-entries-many '5000 entries do not fit' 68 4 5000
ideep imat-entries-more 'truncated in entry 29' 68 4 30
ideep imat-entries-fewer 'bytes after the last entry' 68 4 28
ideep imat-zero-tokens 'computed over 0 tokens' 72 8 0
ideep imat-name-empty 'entry 0: name of 0 bytes' "$E0" 2 0
ideep imat-name-long 'truncated in entry 0' "$E0" 2 65535
ideep imat-name-byte 'entry 0: name of 38 bytes is not printable' $((E0 + 2)) 1 32
ideep imat-cols-zero "entry 0 'model.layers.0.self_attn.q_proj.weight' has 0 columns" $((E0 + 40)) 4 0
ideep imat-cols-huge 'truncated in entry 0' $((E0 + 40)) 4 4294967295
ideep imat-count-zero 'counts 0 input rows, not 1 to' $((E0 + 44)) 8 0
ideep imat-count-more 'counts 129 input rows, not 1 to the file.s 128 tokens' $((E0 + 44)) 8 129
ideep imat-nan 'has a NaN value at column 3' $((V0 + 12)) 4 0x7fc00000
ideep imat-inf 'has an infinite value at column 0' "$V0" 4 0x7f800000
ideep imat-negative 'has a negative value at column 1' $((V0 + 4)) 4 0xbf800000
ideep imat-duplicate "entry 'model.layers.0.self_attn.q_proj.weight' appears twice" $((E1 + 27)) 1 113
# well-formed, but measured on another model
ideep imat-other-hidden 'measured on a model with hidden 1024, the checkpoint has 256' 44 4 1024
ideep imat-other-arch 'measured on a llama model, the checkpoint is qwen3' 24 8 0x616d616c6c
ideep imat-other-names "no entry for 'model.layers.0.self_attn.q_proj.weight'" $((E0 + 39)) 1 115

echo "$cases cases, $fails failed"
[ "$fails" -eq 0 ]
