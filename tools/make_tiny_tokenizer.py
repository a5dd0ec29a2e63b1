#!/usr/bin/python3
"""Derive the tiny model's tokenizer from the real Qwen3 tokenizer, and encode with it.

Qwen3's tokenizer is a byte-level BPE whose vocabulary ids follow merge order: id 256+r is
the result of merge rank r (checked below).  Keeping the 256 byte tokens and the first N
merges therefore gives a valid, smaller BPE: a prefix of a BPE merge list is itself a BPE
(every merge's parts are older tokens).  Ids are renumbered densely 0..V-1 in original id
order, so here they are unchanged; the five special tokens we keep become V..V+4.

Normalizer (NFC), pre-tokenizer (Split regex + ByteLevel), post-processor and decoder are
copied verbatim from the original.

Usage:
  /usr/bin/python3 tools/make_tiny_tokenizer.py [QWEN3_TOKENIZER_JSON] [--merges N]
        [--out models/tiny] [--golden-check]

This file also provides `BPETokenizer`, a plain-Python encoder/decoder for any HF byte-level
BPE tokenizer.json of this shape; tools/train_tiny.py and tools/make_reference.py import it.
It needs the `regex` module (Debian: python3-regex) for \\p{L} / \\p{N}.
"""
import argparse
import json
import os
import subprocess
import sys
import unicodedata

import regex

DEFAULT_SRC = "/work/shared/data/qwen3-tokenizer/tokenizer.json"
DEFAULT_MERGES = 2000
SPECIALS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<think>", "</think>"]
HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)


def bytes_to_unicode():
    """GPT-2's byte <-> printable-char table used by the ByteLevel pre-tokenizer."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("\xa1"), ord("\xac") + 1)) + \
        list(range(ord("\xae"), ord("\xff") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return {b: chr(c) for b, c in zip(bs, cs)}


class BPETokenizer:
    """Encoder for a HF tokenizer.json with NFC + Split(regex, Isolated) + ByteLevel + BPE."""

    def __init__(self, path):
        with open(path, encoding="utf-8") as f:
            tj = json.load(f)
        assert tj["model"]["type"] == "BPE"
        assert tj["normalizer"] == {"type": "NFC"}
        pre = tj["pre_tokenizer"]["pretokenizers"]
        assert pre[0]["type"] == "Split" and pre[0]["behavior"] == "Isolated"
        assert pre[1]["type"] == "ByteLevel" and not pre[1]["add_prefix_space"]
        self.pattern = regex.compile(pre[0]["pattern"]["Regex"])
        self.vocab = tj["model"]["vocab"]
        self.id_to_token = {i: t for t, i in self.vocab.items()}
        self.ranks = {}
        for r, m in enumerate(tj["model"]["merges"]):
            a, b = m if isinstance(m, list) else m.split(" ")
            self.ranks[(a, b)] = r
        self.added = {t["content"]: t["id"] for t in tj["added_tokens"]}
        for t, i in self.added.items():
            self.id_to_token[i] = t
        # Longest first so that a token that is a prefix of another cannot win.
        alts = sorted(self.added, key=len, reverse=True)
        self.added_re = regex.compile("(" + "|".join(regex.escape(a) for a in alts) + ")") \
            if alts else None
        self.b2u = bytes_to_unicode()
        self.u2b = {c: b for b, c in self.b2u.items()}
        self.cache = {}

    def _bpe(self, word):
        if word in self.cache:
            return self.cache[word]
        parts = list(word)
        while len(parts) > 1:
            best, best_rank = -1, None
            for i in range(len(parts) - 1):
                r = self.ranks.get((parts[i], parts[i + 1]))
                if r is not None and (best_rank is None or r < best_rank):
                    best, best_rank = i, r
            if best < 0:
                break
            # Merge every occurrence of that pair, left to right (same as HF's BPE).
            a, b = parts[best], parts[best + 1]
            out, i = [], 0
            while i < len(parts):
                if i < len(parts) - 1 and parts[i] == a and parts[i + 1] == b:
                    out.append(a + b)
                    i += 2
                else:
                    out.append(parts[i])
                    i += 1
            parts = out
        ids = [self.vocab[p] for p in parts]
        self.cache[word] = ids
        return ids

    def _encode_plain(self, text):
        text = unicodedata.normalize("NFC", text)
        ids = []
        for m in self.pattern.finditer(text):
            word = "".join(self.b2u[b] for b in m.group(0).encode("utf-8"))
            ids.extend(self._bpe(word))
        return ids

    def encode(self, text):
        """Ids for `text`; special tokens written inline are matched whole, as HF does."""
        if self.added_re is None:
            return self._encode_plain(text)
        ids = []
        for k, piece in enumerate(self.added_re.split(text)):
            if k % 2 == 1:
                ids.append(self.added[piece])
            elif piece:
                ids.extend(self._encode_plain(piece))
        return ids

    def decode(self, ids):
        out, buf = [], bytearray()
        for i in ids:
            t = self.id_to_token[i]
            if t in self.added:
                out.append(buf.decode("utf-8", errors="replace"))
                buf = bytearray()
                out.append(t)
            else:
                buf.extend(self.u2b[c] for c in t)
        out.append(buf.decode("utf-8", errors="replace"))
        return "".join(out)


def build(src, n_merges):
    with open(src, encoding="utf-8") as f:
        tj = json.load(f)
    model = tj["model"]
    vocab, merges = model["vocab"], model["merges"]
    merges = [m if isinstance(m, list) else m.split(" ") for m in merges]

    # Qwen3 numbers merge results in rank order after the 256 byte tokens; check, since the
    # dense renumbering below relies on it only for readability, not for correctness.
    for r in range(n_merges):
        a, b = merges[r]
        assert vocab[a + b] == 256 + r, (r, a, b)
    kept_tokens = {t for t, i in vocab.items() if i < 256}
    assert len(kept_tokens) == 256
    for r in range(n_merges):
        kept_tokens.add("".join(merges[r]))
    # Keep merges whose parts and result are all kept, in original rank order.  With a prefix
    # of the merge list this keeps exactly the first n_merges merges.
    kept_merges = [m for m in merges[:n_merges * 4]
                   if m[0] in kept_tokens and m[1] in kept_tokens and m[0] + m[1] in kept_tokens]
    ordered = sorted(kept_tokens, key=lambda t: vocab[t])
    new_vocab = {t: i for i, t in enumerate(ordered)}
    V = len(new_vocab)
    for a, b in kept_merges:
        assert a in new_vocab and b in new_vocab and a + b in new_vocab
    assert kept_merges == merges[:n_merges], "kept merges must be a prefix of the original"

    by_content = {t["content"]: t for t in tj["added_tokens"]}
    added = []
    for k, s in enumerate(SPECIALS):
        t = dict(by_content[s])
        t["id"] = V + k
        added.append(t)

    out = {
        "version": tj["version"],
        "truncation": None,
        "padding": None,
        "added_tokens": added,
        "normalizer": tj["normalizer"],
        "pre_tokenizer": tj["pre_tokenizer"],
        "post_processor": tj["post_processor"],
        "decoder": tj["decoder"],
        "model": dict(model, vocab=new_vocab, merges=kept_merges),
    }
    return out, V


def build_config(cfg_path, added):
    with open(cfg_path, encoding="utf-8") as f:
        cfg = json.load(f)
    old = cfg["added_tokens_decoder"]
    by_content = {v["content"]: v for v in old.values()}
    cfg["added_tokens_decoder"] = {str(t["id"]): by_content[t["content"]] for t in added}
    cfg["additional_special_tokens"] = [s for s in cfg.get("additional_special_tokens", [])
                                        if s in SPECIALS]
    cfg["eos_token"] = "<|im_end|>"
    cfg["pad_token"] = "<|endoftext|>"
    return cfg


GOLDEN_STRINGS = [
    "Hello world",
    "Hello, world! How are you today?",
    "ROMEO:\n",
    "First Citizen:\nBefore we proceed any further, hear me speak.\n\nAll:\nSpeak, speak.",
    "O Romeo, Romeo! wherefore art thou Romeo?\nDeny thy father and refuse thy name;",
    "To be, or not to be, that is the question:",
    "KING RICHARD III:\nNow is the winter of our discontent",
    "I'll go, you're sure, she's here, we've done, I'm fine, he'd say, it'd be. DON'T YOU'LL",
    "12345",
    "The year 1597, page 42: 3.14159 and 1,000,000.",
    "def main(argc, argv):\n    return 0  # comment\n",
    "int main(void) {\n\tprintf(\"%d\\n\", x[i] + 1);\n\treturn 0;\n}\n",
    "    four spaces then text",
    "trailing spaces   ",
    "a\tb\t\tc",
    "line one\r\nline two\r\n",
    "\n\n",
    "\n",
    " ",
    "   \n\n   x",
    "Café naïve résumé façade Ångström",
    "Привет, мир! Как дела?",
    "你好，世界。今天天气很好。",
    "こんにちは世界、カタカナ",
    "مرحبا بالعالم",
    "Emoji: 😀🎉👍🏽 and ❤️ flags 🇫🇷",
    "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n",
    "<think>\nreasoning here\n</think>\n\nanswer<|endoftext|>",
    "e\u0301 (decomposed e-acute, NFC makes it one code point)",
    "Mixed: x=1;y=2;z=x+y//2 -- done!!! ???",
    "ALL CAPS SHOUTING AND lower case whispers",
    "",
]


def golden_check(tok_json, node_script, strings, out_path):
    """Encode `strings` with the independent npm tokenizer, compare with ours, write them."""
    strings_path = "/tmp/qlm_golden_strings.json"
    with open(strings_path, "w", encoding="utf-8") as f:
        json.dump(strings, f, ensure_ascii=False)
    res = subprocess.run(["node", node_script, tok_json, strings_path], check=True,
                         capture_output=True, text=True)
    npm_ids = json.loads(res.stdout)
    ours = BPETokenizer(tok_json)
    bad = 0
    for s, ids in zip(strings, npm_ids):
        mine = ours.encode(s)
        if mine != ids:
            bad += 1
            print("MISMATCH %r\n  npm:  %s\n  ours: %s" % (s, ids, mine), file=sys.stderr)
        assert ours.decode(mine) == unicodedata.normalize("NFC", s), s
    assert bad == 0, "%d golden strings differ between npm and Python tokenizers" % bad
    with open(out_path, "w", encoding="utf-8") as f:
        f.write("[\n")
        f.write(",\n".join(json.dumps({"text": s, "ids": ids}, ensure_ascii=False)
                           for s, ids in zip(strings, npm_ids)))
        f.write("\n]\n")
    print("golden: %d strings agree (npm @huggingface/tokenizers == Python); wrote %s"
          % (len(strings), out_path))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("src", nargs="?", default=DEFAULT_SRC)
    ap.add_argument("--config", help="Qwen3 tokenizer_config.json (default: next to SRC)")
    ap.add_argument("--merges", type=int, default=DEFAULT_MERGES)
    ap.add_argument("--out", default=os.path.join(REPO, "models", "tiny"))
    ap.add_argument("--golden-check", action="store_true",
                    help="run tools/golden_tokens.mjs (needs node + @huggingface/tokenizers, "
                         "NODE_PATH) and write golden_tokens.json")
    args = ap.parse_args()

    src = args.src
    if src.endswith(".gz"):
        import gzip
        import tempfile
        tmp = tempfile.NamedTemporaryFile(suffix=".json", delete=False)
        with gzip.open(src, "rb") as g:
            tmp.write(g.read())
        tmp.close()
        src = tmp.name
    tj, V = build(src, args.merges)
    os.makedirs(args.out, exist_ok=True)
    tok_path = os.path.join(args.out, "tokenizer.json")
    with open(tok_path, "w", encoding="utf-8") as f:
        json.dump(tj, f, ensure_ascii=False, indent=1)
        f.write("\n")
    cfg_src = args.config or os.path.join(os.path.dirname(args.src), "tokenizer_config.json")
    cfg = build_config(cfg_src, tj["added_tokens"])
    with open(os.path.join(args.out, "tokenizer_config.json"), "w", encoding="utf-8") as f:
        json.dump(cfg, f, ensure_ascii=False, indent=2)
        f.write("\n")
    print("tokenizer: %d merges, V=%d regular tokens, specials %s -> ids %d..%d"
          % (len(tj["model"]["merges"]), V, SPECIALS, V, V + len(SPECIALS) - 1))

    # Spot-check a few merges explicitly (the build() asserts cover all of them).
    nv = tj["model"]["vocab"]
    for r in (0, 1, len(tj["model"]["merges"]) // 2, len(tj["model"]["merges"]) - 1):
        a, b = tj["model"]["merges"][r]
        print("  merge %4d: %r + %r -> %r (ids %d %d -> %d)" % (r, a, b, a + b, nv[a], nv[b],
                                                               nv[a + b]))
    if args.golden_check:
        golden_check(tok_path, os.path.join(HERE, "golden_tokens.mjs"), GOLDEN_STRINGS,
                     os.path.join(args.out, "golden_tokens.json"))


if __name__ == "__main__":
    main()
