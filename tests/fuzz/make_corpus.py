#!/usr/bin/env python3
"""make_corpus.py BUILDDIR — (re)writes the fuzzers' seed corpora in
tests/fuzz/corpus/<harness>/: small valid and near-valid inputs.  Needs
BUILDDIR/qlm-convert (a built tree) for the .qlm seeds and
BUILDDIR/tests/gguftool (make tests/gguftool) for the GGUF ones; run from
anywhere:

    python3 tests/fuzz/make_corpus.py /tmp/build

A micro model (1 layer, hidden 32, byte-level vocab of 256 + 8 merges + 2
specials) is written as safetensors, converted to .qlm (q8, q4), and its
tokenizer section inflated to a QTOK seed; its f32 conversion gives
BUILDDIR/qlm-imatrix the .imat seed; and it is written as GGUF files by the
project's GGUF writer.  Everything is deterministic."""
import json, os, random, shutil, struct, subprocess, sys, tempfile, zlib

top = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
build = os.path.abspath(sys.argv[1]) if len(sys.argv) > 1 else os.path.join(top, "build")
out = os.path.join(top, "tests", "fuzz", "corpus")
rng = random.Random(7)


def put(harness, name, data):
    d = os.path.join(out, harness)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data if isinstance(data, bytes) else data.encode())


def st(tensors, extra_meta=None):
    """tensors: list of (name, dtype, shape, bytes) -> safetensors bytes."""
    hdr, off, blob = {}, 0, b""
    if extra_meta:
        hdr["__metadata__"] = extra_meta
    for name, dt, shape, b in tensors:
        hdr[name] = {"dtype": dt, "shape": shape, "data_offsets": [off, off + len(b)]}
        off += len(b)
        blob += b
    h = json.dumps(hdr, separators=(",", ":")).encode()
    return struct.pack("<Q", len(h)) + h + blob


def bf16(vals):
    return b"".join(struct.pack("<f", v)[2:] for v in vals)


# ---- GPT-2 byte alphabet, the micro tokenizer -------------------------------
def byte_alphabet():
    bs = list(range(33, 127)) + list(range(161, 173)) + list(range(174, 256))
    cs, n = bs[:], 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return {b: chr(c) for b, c in zip(bs, cs)}


B = byte_alphabet()
vocab = {B[b]: b for b in range(256)}
merges = []
for a, b in [("h", "e"), ("l", "l"), ("he", "ll"), ("hell", "o"), ("Ġ", "w"), ("o", "r"),
             ("Ġw", "or"), ("Ġwor", "l")]:
    vocab[a + b] = len(vocab)
    merges.append([a, b])
V = len(vocab) + 2
tokenizer = {
    "version": "1.0", "truncation": None, "padding": None,
    "added_tokens": [
        {"id": V - 2, "content": "<|endoftext|>", "single_word": False, "lstrip": False,
         "rstrip": False, "normalized": False, "special": True},
        {"id": V - 1, "content": "<|im_end|>", "single_word": False, "lstrip": False,
         "rstrip": False, "normalized": False, "special": True}],
    "normalizer": {"type": "NFC"},
    "pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": False,
                      "use_regex": True},
    "post_processor": None,
    "decoder": {"type": "ByteLevel"},
    "model": {"type": "BPE", "dropout": None, "unk_token": None,
              "continuing_subword_prefix": "", "end_of_word_suffix": "", "fuse_unk": False,
              "byte_fallback": False, "ignore_merges": False, "vocab": vocab, "merges": merges}}
tok_json = json.dumps(tokenizer, ensure_ascii=False, separators=(",", ":"))
tok_config = json.dumps({"add_bos_token": False, "eos_token": "<|im_end|>",
                         "pad_token": "<|endoftext|>",
                         "chat_template": "{% for m in messages %}{{ m.content }}{% endfor %}"})
config = {"architectures": ["Qwen3ForCausalLM"], "model_type": "qwen3", "hidden_size": 32,
          "intermediate_size": 64, "num_hidden_layers": 1, "num_attention_heads": 2,
          "num_key_value_heads": 1, "head_dim": 16, "vocab_size": V,
          "max_position_embeddings": 64, "rms_norm_eps": 1e-6, "rope_theta": 10000.0,
          "tie_word_embeddings": True, "rope_scaling": None, "hidden_act": "silu",
          "attention_bias": False, "use_sliding_window": False, "torch_dtype": "bfloat16"}


def micro_tensors():
    H, F, D = 32, 64, 16
    def w(r, c):
        return bf16([rng.gauss(0, 0.05) for _ in range(r * c)])
    t = [("model.embed_tokens.weight", "BF16", [V, H], w(V, H)),
         ("model.norm.weight", "BF16", [H], bf16([1.0] * H))]
    p = "model.layers.0."
    t += [(p + "input_layernorm.weight", "BF16", [H], bf16([1.0] * H)),
          (p + "post_attention_layernorm.weight", "BF16", [H], bf16([1.0] * H)),
          (p + "self_attn.q_proj.weight", "BF16", [2 * D, H], w(2 * D, H)),
          (p + "self_attn.k_proj.weight", "BF16", [D, H], w(D, H)),
          (p + "self_attn.v_proj.weight", "BF16", [D, H], w(D, H)),
          (p + "self_attn.o_proj.weight", "BF16", [H, 2 * D], w(H, 2 * D)),
          (p + "self_attn.q_norm.weight", "BF16", [D], bf16([1.0] * D)),
          (p + "self_attn.k_norm.weight", "BF16", [D], bf16([1.0] * D)),
          (p + "mlp.gate_proj.weight", "BF16", [F, H], w(F, H)),
          (p + "mlp.up_proj.weight", "BF16", [F, H], w(F, H)),
          (p + "mlp.down_proj.weight", "BF16", [H, F], w(H, F))]
    return sorted(t)


if os.path.isdir(out):
    shutil.rmtree(out)

# ---- fuzz_safetensors -------------------------------------------------------
one = [("x", "BF16", [2, 3], bf16([1, 2, 3, 4, 5, 6]))]
put("fuzz_safetensors", "one-bf16", st(one))
put("fuzz_safetensors", "mixed", st([("a", "F32", [2], struct.pack("<2f", 1.5, -2)),
                                       ("b", "F16", [3], struct.pack("<3H", 0x3c00, 0x7c00, 1)),
                                       ("c", "BF16", [1, 1, 2], bf16([0.5, -0.5])),
                                       ("d", "I64", [1], struct.pack("<q", 7))],
                                      {"format": "pt"}))
put("fuzz_safetensors", "empty-tensor", st([("e", "F32", [0, 4], b""), ("s", "F32", [], b"\0" * 4)]))
put("fuzz_safetensors", "no-tensors", st([]))
put("fuzz_safetensors", "hole", st(one)[:-2])
put("fuzz_safetensors", "padded-header", struct.pack("<Q", 72) + b'{"x":{"dtype":"BF16","shape":[2],'
    b'"data_offsets":[0,4]}}' + b" " * 24 + b"\1\2\3\4")
put("fuzz_safetensors", "micro-model", st(micro_tensors()))

# ---- fuzz_st_index ----------------------------------------------------------
# indexes over the shards fuzz_st_index writes at start-up: a.safetensors
# (x, y), b.safetensors (z), ab.safetensors (w)
wmap = {"x": "a.safetensors", "y": "a.safetensors", "z": "b.safetensors"}
put("fuzz_st_index", "index", json.dumps({"metadata": {"total_size": 18}, "weight_map": wmap}))
put("fuzz_st_index", "three-shards", json.dumps({"weight_map": dict(wmap, w="ab.safetensors")},
                                                 indent=2))
put("fuzz_st_index", "suffix-name", json.dumps({"weight_map": dict(wmap, w="b.safetensors")}))
put("fuzz_st_index", "tensor-missing", json.dumps({"weight_map": {"x": "a.safetensors"}}))
put("fuzz_st_index", "path-name", json.dumps({"weight_map": {"x": "../a.safetensors"}}))
put("fuzz_st_index", "no-weight-map", json.dumps({"metadata": {}}))

# ---- fuzz_config ------------------------------------------------------------
put("fuzz_config", "micro", json.dumps(config, indent=1))
with open(os.path.join(top, "models", "tiny", "config.json")) as f:
    put("fuzz_config", "tiny", f.read())
q2 = dict(config, model_type="qwen2", architectures=["Qwen2ForCausalLM"])
del q2["head_dim"]
put("fuzz_config", "qwen2", json.dumps(q2))
ll = dict(config, model_type="llama", tie_word_embeddings=False, rope_theta=500000.0)
put("fuzz_config", "llama", json.dumps(ll))
put("fuzz_config", "bad-heads", json.dumps(dict(config, num_key_value_heads=3)))
put("fuzz_config", "minimal", '{"model_type":"qwen3","hidden_size":8,"intermediate_size":8,'
    '"num_hidden_layers":1,"num_attention_heads":1,"vocab_size":4,"rms_norm_eps":1e-5,'
    '"max_position_embeddings":8}')

# ---- fuzz_hf_tokenizer ------------------------------------------------------
put("fuzz_hf_tokenizer", "micro", tok_json)
put("fuzz_hf_tokenizer", "micro-with-config", tok_json + "\0" + tok_config)
split = json.loads(tok_json)
split["pre_tokenizer"] = {"type": "Sequence", "pretokenizers": [
    {"type": "Split", "pattern": {"Regex": "\\p{L}+|\\p{N}|\\s+|[^\\s\\p{L}\\p{N}]+"},
     "behavior": "Isolated", "invert": False},
    {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": False, "use_regex": False}]}
split["model"]["merges"] = [" ".join(m) for m in merges]  # the older "a b" form
put("fuzz_hf_tokenizer", "split-regex-string-merges", json.dumps(split, ensure_ascii=False))
bad = json.loads(tok_json)
bad["model"]["merges"].append(["zz", "q"])
put("fuzz_hf_tokenizer", "bad-merge", json.dumps(bad, ensure_ascii=False))

# ---- fuzz_tok_config (beside the micro tokenizer.json) -----------------------
put("fuzz_tok_config", "micro", tok_config)
put("fuzz_tok_config", "add-bos", json.dumps({"add_bos_token": True, "bos_token": "<|endoftext|>",
                                              "eos_token": {"content": "<|im_end|>"}}))
put("fuzz_tok_config", "template-list", json.dumps({"eos_token": None, "chat_template": [
    {"name": "tool_use", "template": "{{ tools }}"},
    {"name": "default", "template": "{{ messages }}"}]}))
put("fuzz_tok_config", "unknown-token", json.dumps({"eos_token": "<|nope|>"}))
put("fuzz_tok_config", "empty", "{}")

# ---- fuzz_qlm (and the QTOK seed) -------------------------------------------
tmp = tempfile.mkdtemp()
try:
    md = os.path.join(tmp, "micro")
    os.mkdir(md)
    for name, data in [("config.json", json.dumps(config)), ("tokenizer.json", tok_json),
                       ("tokenizer_config.json", tok_config)]:
        with open(os.path.join(md, name), "w", encoding="utf-8") as f:
            f.write(data)
    with open(os.path.join(md, "model.safetensors"), "wb") as f:
        f.write(st(micro_tensors()))
    conv = os.path.join(build, "qlm-convert")
    for t in ["q8", "q4", "f32"]:
        o = os.path.join(tmp, t + ".qlm")
        subprocess.run([conv, md, "-o", o, "--type", t, "--quiet", "--threads", "1"], check=True)
        data = open(o, "rb").read()
        if t == "f32":  # ---- fuzz_imat: the micro model's statistics
            txt, im = os.path.join(tmp, "calib.txt"), os.path.join(tmp, "micro.imat")
            with open(txt, "w") as f:
                f.write("hello world, hello world! " * 8)
            subprocess.run([os.path.join(build, "qlm-imatrix"), o, "-f", txt, "-o", im,
                            "--ctx", "16", "--threads", "1"], check=True, stderr=subprocess.DEVNULL)
            imat = open(im, "rb").read()
            put("fuzz_imat", "micro", imat)
            put("fuzz_imat", "truncated", imat[:len(imat) // 2])
            continue
        put("fuzz_qlm", "micro-" + t, data)
        if t == "q8":
            to, ts = struct.unpack_from("<QQ", data, 40)
            qtok = zlib.decompress(data[to:to + ts])
            put("fuzz_qlm", "qtok", qtok)
            put("fuzz_qlm", "truncated", data[:len(data) // 2])
    tool = os.path.join(build, "tests", "gguftool")
    for t in ["q8_0", "q4_0", "f16"]:
        o = os.path.join(tmp, t + ".gguf")
        subprocess.run([tool, "write", md, o, t], check=True)
        data = open(o, "rb").read()
        put("fuzz_gguf", "micro-" + t, data)
        if t == "q8_0":
            put("fuzz_gguf", "truncated", data[:len(data) // 2])
    put("fuzz_gguf", "header-only", b"GGUF" + struct.pack("<IQQ", 3, 0, 0))
finally:
    shutil.rmtree(tmp)

# ---- fuzz_tokenize ----------------------------------------------------------
texts = {
    "hello": "Hello world, hello world!",
    "chat": "<|im_start|>user\nWhat is 2+2?<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n4",
    "unicode": "Caf\u00e9 na\u0131ve \u00fcber \u65e5\u672c\u8a9e \U0001F600 e\u0301 \u212b",
    "spaces": "  a  \t\n\n b\r\n  12345 678 's 't 're 've DON'T",
    "code": "int main(void) { return x[i] >= 0 ? 1 : -1; } // ok\n",
}
for k, v in texts.items():
    put("fuzz_tokenize", k, v)
put("fuzz_tokenize", "invalid-utf8", b"abc\xff\xfe\xc0\x80 \xed\xa0\x80 end")
with open(os.path.join(top, "models", "tiny", "heldout.txt"), encoding="utf-8") as f:
    put("fuzz_tokenize", "heldout", f.read()[:2000])
print("corpus written to", out)
