#!/usr/bin/python3
"""Write the PyTorch fp32 reference outputs of the tiny model into models/tiny/ref/.

Loads models/tiny/config.json + model.safetensors (BF16 widened to fp32 exactly), runs the
fp32 forward pass of tools/train_tiny.py's Qwen3 class, and writes:

  ref/seqK.tokens        token ids, space-separated, one line (K = 1, 2, 3)
  ref/seqK.logits.f32    raw little-endian float32, positions x vocab_size, row-major
  ref/greedy.txt         prompt ids / 32 greedy ids / decoded prompt+continuation
  ref/heldout.tokens     the first 2048 held-out token ids, space-separated
  ref/heldout_ppl.json   perplexity of those tokens, method spelled out
  heldout.txt            the held-out text (last 10% of tinyshakespeare's characters)

  /usr/bin/python3 tools/make_reference.py [--model models/tiny]
"""
import argparse
import json
import math
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from train_tiny import Qwen3, read_safetensors, load_split, REPO  # noqa: E402
from make_tiny_tokenizer import BPETokenizer  # noqa: E402

import torch  # noqa: E402

N_PPL, CTX = 2048, 256
SEQ1_TEXT = "ROMEO:\nWhat light through yonder window breaks?"
SEQ2_TEXT = ("<|im_start|>user\nSpeak, good friend: what news from Padua?<|im_end|>\n"
             "<|im_start|>assistant\nFirst Citizen:\nBefore we proceed any further, hear me "
             "speak.\n\nAll:\nSpeak, speak.\n\nFirst Citizen:\nYou are all resolved rather to "
             "die than to famish?\n")
GREEDY_PROMPT = "ROMEO:\n"
GREEDY_N = 32


def load_model(d):
    with open(os.path.join(d, "config.json")) as f:
        cfg = json.load(f)
    assert cfg["model_type"] == "qwen3" and cfg["tie_word_embeddings"]
    model = Qwen3(cfg)
    tensors = read_safetensors(os.path.join(d, "model.safetensors"))
    assert set(tensors) == set(model.shapes), set(tensors) ^ set(model.shapes)
    with torch.no_grad():
        for name, t in tensors.items():
            assert tuple(t.shape) == model.shapes[name], name
            model.w(name).copy_(t)
    model.eval()
    return cfg, model


def write_ids(path, ids):
    with open(path, "w") as f:
        f.write(" ".join(str(i) for i in ids) + "\n")


def write_logits(path, logits):
    a = logits.detach().float().contiguous().numpy().astype("<f4")
    with open(path, "wb") as f:
        f.write(a.tobytes())


@torch.no_grad()
def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default=os.path.join(REPO, "models", "tiny"))
    args = ap.parse_args()
    torch.set_num_threads(2)
    cfg, model = load_model(args.model)
    tok = BPETokenizer(os.path.join(args.model, "tokenizer.json"))
    V = cfg["vocab_size"]
    out = os.path.join(args.model, "ref")
    os.makedirs(out, exist_ok=True)

    _, held, held_text = load_split(tok)
    held = held.tolist()
    with open(os.path.join(args.model, "heldout.txt"), "w", encoding="utf-8") as f:
        f.write(held_text)
    assert tok.encode(held_text) == held

    seq1 = tok.encode(SEQ1_TEXT)[:12]
    seq2 = tok.encode(SEQ2_TEXT)[:60]
    assert len(seq2) == 60, len(seq2)
    seq3 = held[N_PPL:N_PPL + 300]          # past the ppl tokens; positions up to 299 > 256
    for k, ids in enumerate((seq1, seq2, seq3), 1):
        logits = model(torch.tensor([ids]))[0]                   # (T, V)
        assert logits.shape == (len(ids), V)
        write_ids(os.path.join(out, "seq%d.tokens" % k), ids)
        write_logits(os.path.join(out, "seq%d.logits.f32" % k), logits)
        # Causality sanity check: a prefix's logits do not depend on later tokens.
        pre = model(torch.tensor([ids[:7]]))[0]
        assert torch.allclose(pre, logits[:7], atol=1e-4), k
        print("seq%d: %d tokens, top-1 of last position %d, logits[0,:3] %s"
              % (k, len(ids), int(logits[-1].argmax()), logits[0, :3].tolist()))

    # Greedy: argmax each step over the full sequence, no stop token.
    prompt = tok.encode(GREEDY_PROMPT)
    ids = list(prompt)
    for _ in range(GREEDY_N):
        ids.append(int(model(torch.tensor([ids]))[0, -1].argmax()))
    gen = ids[len(prompt):]
    text = tok.decode(ids)
    with open(os.path.join(out, "greedy.txt"), "w", encoding="utf-8") as f:
        f.write(" ".join(map(str, prompt)) + "\n")
        f.write(" ".join(map(str, gen)) + "\n")
        f.write(json.dumps(text, ensure_ascii=False) + "\n")
    print("greedy: %r" % text)

    # Held-out perplexity, llama.cpp's method and the all-positions variant.
    toks = held[:N_PPL]
    write_ids(os.path.join(out, "heldout.tokens"), toks)
    nll_half, n_half, nll_all, n_all = 0.0, 0, 0.0, 0
    for c in range(N_PPL // CTX):
        chunk = toks[c * CTX:(c + 1) * CTX]
        lp = torch.log_softmax(model(torch.tensor([chunk]))[0].double(), dim=-1)
        for j in range(CTX - 1):                 # position j predicts chunk[j + 1]
            nll = -lp[j, chunk[j + 1]].item()
            nll_all += nll
            n_all += 1
            if j >= CTX // 2:
                nll_half += nll
                n_half += 1
    res = {
        "n_tokens": N_PPL,
        "ctx": CTX,
        "n_chunks": N_PPL // CTX,
        "ppl": math.exp(nll_half / n_half),
        "nll_mean": nll_half / n_half,
        "n_scored": n_half,
        "ppl_all": math.exp(nll_all / n_all),
        "nll_mean_all": nll_all / n_all,
        "n_scored_all": n_all,
        "method": ("tokens = ref/heldout.tokens (the first n_tokens ids of heldout.txt, no "
                   "BOS added); split into n_chunks non-overlapping chunks of ctx tokens; each "
                   "chunk is evaluated alone from an empty KV cache at positions 0..ctx-1; "
                   "logits at position j predict the chunk's token j+1. ppl/nll_mean (llama.cpp "
                   "perplexity): j = ctx/2 .. ctx-2, i.e. ctx/2-1 = 127 tokens per chunk. "
                   "ppl_all/nll_mean_all: j = 0 .. ctx-2, 255 tokens per chunk. nll = "
                   "-log_softmax(fp32 logits) in float64, mean over scored tokens, ppl = "
                   "exp(mean)."),
        "weights": "model.safetensors BF16 widened exactly to fp32; fp32 forward (PyTorch %s)"
                   % torch.__version__,
    }
    with open(os.path.join(out, "heldout_ppl.json"), "w") as f:
        json.dump(res, f, indent=2)
        f.write("\n")
    print("held-out ppl %.4f (llama.cpp method, %d tokens scored), ppl_all %.4f (%d)"
          % (res["ppl"], n_half, res["ppl_all"], n_all))


if __name__ == "__main__":
    main()
