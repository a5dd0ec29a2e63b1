#!/usr/bin/python3
"""Train qlm's tiny test model: exactly Qwen3's architecture, a few million parameters.

Writes models/tiny/config.json (a Hugging Face Qwen3 config), models/tiny/model.safetensors
(BF16, Hugging Face Qwen3 tensor names, tied embeddings) and models/tiny/train_log.txt.
Deterministic on a given machine: fixed seed, fixed thread count, deterministic algorithms.

  /usr/bin/python3 tools/train_tiny.py --steps 20 --out /tmp/dry    # dry run
  /usr/bin/python3 tools/train_tiny.py                              # the committed model

Needs PyTorch (Debian python3-torch) and the `regex` module (python3-regex); no PyPI.
The model class `Qwen3` is the reference forward pass; tools/make_reference.py imports it.
"""
import argparse
import json
import math
import os
import struct
import sys
import time

# Pin BLAS/OpenMP thread counts before torch loads: reductions split differently with a
# different thread count, and the determinism check compares losses digit for digit.
# (Debian's python3-torch runs its matmuls through libblas.so.3: install
# libopenblas0-pthread, or the netlib reference BLAS makes training ~40x slower.)
for _v in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
    os.environ.setdefault(_v, "2")

import torch
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, HERE)
from make_tiny_tokenizer import BPETokenizer  # noqa: E402

TEXT = "/work/shared/data/text/tinyshakespeare_input.txt"
HELDOUT_FRACTION = 0.10  # the last 10% of characters are held out


# ----------------------------------------------------------------------------- model

def rmsnorm(x, w, eps):
    """x * rsqrt(mean(x^2) + eps) * w over the last dimension, in fp32."""
    return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps) * w


def rope_cos_sin(n_pos, head_dim, theta, device=None):
    """NEOX-style tables: pair (i, i + head_dim/2) rotates by p * theta^(-2i/head_dim)."""
    inv = theta ** (-torch.arange(0, head_dim, 2, dtype=torch.float64) / head_dim)  # (hd/2)
    ang = torch.arange(n_pos, dtype=torch.float64)[:, None] * inv[None, :]         # (T, hd/2)
    ang = torch.cat([ang, ang], dim=-1)                                              # (T, hd)
    return ang.cos().float(), ang.sin().float()


def apply_rope(x, cos, sin):
    """x: (B, H, T, hd); rotate_half of NEOX / HF Qwen3."""
    h = x.shape[-1] // 2
    rot = torch.cat([-x[..., h:], x[..., :h]], dim=-1)
    return x * cos + rot * sin


class Qwen3(torch.nn.Module):
    """Qwen3 dense decoder, parameters stored under Hugging Face's names (dots -> '__')."""

    def __init__(self, cfg):
        super().__init__()
        self.cfg = cfg
        D, F_, V = cfg["hidden_size"], cfg["intermediate_size"], cfg["vocab_size"]
        H, KV, hd = cfg["num_attention_heads"], cfg["num_key_value_heads"], cfg["head_dim"]
        self.shapes = {"model.embed_tokens.weight": (V, D), "model.norm.weight": (D,)}
        for i in range(cfg["num_hidden_layers"]):
            p = "model.layers.%d." % i
            self.shapes.update({
                p + "input_layernorm.weight": (D,),
                p + "self_attn.q_proj.weight": (H * hd, D),   # nn.Linear (out, in)
                p + "self_attn.k_proj.weight": (KV * hd, D),
                p + "self_attn.v_proj.weight": (KV * hd, D),
                p + "self_attn.o_proj.weight": (D, H * hd),
                p + "self_attn.q_norm.weight": (hd,),
                p + "self_attn.k_norm.weight": (hd,),
                p + "post_attention_layernorm.weight": (D,),
                p + "mlp.gate_proj.weight": (F_, D),
                p + "mlp.up_proj.weight": (F_, D),
                p + "mlp.down_proj.weight": (D, F_),
            })
        for name, shape in self.shapes.items():
            self.register_parameter(name.replace(".", "__"),
                                    torch.nn.Parameter(torch.zeros(shape)))

    def w(self, name):
        return getattr(self, name.replace(".", "__"))

    def named_hf(self):
        return {n: self.w(n) for n in self.shapes}

    def init_weights(self, n_real_tokens):
        std = 0.02
        L = self.cfg["num_hidden_layers"]
        with torch.no_grad():
            for name, p in self.named_hf().items():
                if p.dim() == 1:
                    p.fill_(1.0)
                elif name.endswith(("o_proj.weight", "down_proj.weight")):
                    p.normal_(0.0, std / math.sqrt(2 * L))   # residual branches
                else:
                    p.normal_(0.0, std)
            self.w("model.embed_tokens.weight")[n_real_tokens:].zero_()

    def forward(self, ids):
        """ids: (B, T) int64 -> logits (B, T, vocab) fp32."""
        c = self.cfg
        B, T = ids.shape
        H, KV, hd = c["num_attention_heads"], c["num_key_value_heads"], c["head_dim"]
        eps = c["rms_norm_eps"]
        cos, sin = rope_cos_sin(T, hd, c["rope_theta"])
        mask = torch.full((T, T), float("-inf")).triu(1)
        emb = self.w("model.embed_tokens.weight")
        x = emb[ids]                                                       # (B, T, D)
        for i in range(c["num_hidden_layers"]):
            p = "model.layers.%d." % i
            h = rmsnorm(x, self.w(p + "input_layernorm.weight"), eps)
            q = F.linear(h, self.w(p + "self_attn.q_proj.weight")).view(B, T, H, hd)
            k = F.linear(h, self.w(p + "self_attn.k_proj.weight")).view(B, T, KV, hd)
            v = F.linear(h, self.w(p + "self_attn.v_proj.weight")).view(B, T, KV, hd)
            q = rmsnorm(q, self.w(p + "self_attn.q_norm.weight"), eps).transpose(1, 2)
            k = rmsnorm(k, self.w(p + "self_attn.k_norm.weight"), eps).transpose(1, 2)
            v = v.transpose(1, 2)                                          # (B, KV, T, hd)
            q, k = apply_rope(q, cos, sin), apply_rope(k, cos, sin)
            # GQA: query head j uses kv head j // (H / KV).
            k = k.repeat_interleave(H // KV, dim=1)
            v = v.repeat_interleave(H // KV, dim=1)
            att = (q @ k.transpose(-1, -2)) / math.sqrt(hd) + mask        # (B, H, T, T)
            o = torch.softmax(att, dim=-1) @ v                             # (B, H, T, hd)
            o = o.transpose(1, 2).reshape(B, T, H * hd)
            x = x + F.linear(o, self.w(p + "self_attn.o_proj.weight"))
            h = rmsnorm(x, self.w(p + "post_attention_layernorm.weight"), eps)
            g = F.linear(h, self.w(p + "mlp.gate_proj.weight"))
            u = F.linear(h, self.w(p + "mlp.up_proj.weight"))
            x = x + F.linear(F.silu(g) * u, self.w(p + "mlp.down_proj.weight"))
        x = rmsnorm(x, self.w("model.norm.weight"), eps)
        return F.linear(x, emb)                                            # tied lm_head


# ----------------------------------------------------------------------------- safetensors

def write_safetensors(path, tensors):
    """tensors: {name: fp32 tensor}; stored as BF16 (round to nearest even), sorted names."""
    header, blobs, off = {}, [], 0
    for name in sorted(tensors):
        t = tensors[name].detach().float().contiguous().to(torch.bfloat16)
        raw = t.view(torch.int16).numpy().astype("<i2").tobytes()
        header[name] = {"dtype": "BF16", "shape": list(t.shape), "data_offsets": [off, off + len(raw)]}
        blobs.append(raw)
        off += len(raw)
    header["__metadata__"] = {"format": "pt"}
    hj = json.dumps(header, separators=(",", ":")).encode()
    hj += b" " * (-len(hj) % 8)
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(struct.pack("<Q", len(hj)))
        f.write(hj)
        for b in blobs:
            f.write(b)
    os.replace(tmp, path)


def read_safetensors(path):
    """-> {name: fp32 tensor} for F32/BF16 files."""
    import numpy as np
    with open(path, "rb") as f:
        data = f.read()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + n])
    base = 8 + n
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        a, b = info["data_offsets"]
        buf = data[base + a:base + b]
        if info["dtype"] == "BF16":
            u = np.frombuffer(buf, dtype="<u2").astype(np.uint32) << 16
            arr = u.view(np.float32)
        elif info["dtype"] == "F32":
            arr = np.frombuffer(buf, dtype="<f4")
        else:
            raise ValueError("%s: unsupported dtype %s" % (name, info["dtype"]))
        out[name] = torch.from_numpy(arr.copy()).reshape(info["shape"])
    return out


# ----------------------------------------------------------------------------- data

def load_split(tok, path=TEXT):
    """(train_ids, heldout_ids, heldout_text): split by characters, then tokenize each."""
    with open(path, encoding="utf-8") as f:
        text = f.read()
    cut = int(len(text) * (1 - HELDOUT_FRACTION))
    return (torch.tensor(tok.encode(text[:cut]), dtype=torch.long),
            torch.tensor(tok.encode(text[cut:]), dtype=torch.long), text[cut:])


def make_config(args, n_tokens):
    vocab = (n_tokens + 63) // 64 * 64        # Qwen3-style padding of the embedding rows
    return {
        "architectures": ["Qwen3ForCausalLM"],
        "attention_bias": False,
        "attention_dropout": 0.0,
        "bos_token_id": args.bos_id,
        "eos_token_id": args.eos_id,
        "head_dim": args.head_dim,
        "hidden_act": "silu",
        "hidden_size": args.hidden,
        "initializer_range": 0.02,
        "intermediate_size": args.intermediate,
        "max_position_embeddings": args.max_pos,
        "max_window_layers": args.layers,
        "model_type": "qwen3",
        "num_attention_heads": args.heads,
        "num_hidden_layers": args.layers,
        "num_key_value_heads": args.kv_heads,
        "rms_norm_eps": 1e-6,
        "rope_scaling": None,
        "rope_theta": args.rope_theta,
        "sliding_window": None,
        "tie_word_embeddings": True,
        "torch_dtype": "bfloat16",
        "transformers_version": "4.51.0",
        "use_cache": True,
        "use_sliding_window": False,
        "vocab_size": vocab,
    }


@torch.no_grad()
def heldout_loss(model, ids, ctx, max_chunks=None):
    """Mean NLL over non-overlapping ctx+1-token windows, every position scored."""
    model.eval()
    n = (len(ids) - 1) // ctx
    if max_chunks:
        n = min(n, max_chunks)
    tot, cnt = 0.0, 0
    for s in range(0, n, 8):
        e = min(n, s + 8)
        x = torch.stack([ids[j * ctx:j * ctx + ctx] for j in range(s, e)])
        y = torch.stack([ids[j * ctx + 1:j * ctx + ctx + 1] for j in range(s, e)])
        logits = model(x)
        tot += F.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1),
                               reduction="sum").item()
        cnt += y.numel()
    model.train()
    return tot / cnt, cnt


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default=os.path.join(REPO, "models", "tiny"))
    ap.add_argument("--tokenizer", default=None, help="default: OUT/tokenizer.json")
    ap.add_argument("--steps", type=int, default=600)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--ctx", type=int, default=256)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--min-lr-ratio", type=float, default=0.1)
    ap.add_argument("--warmup", type=int, default=30)
    ap.add_argument("--wd", type=float, default=0.1)
    ap.add_argument("--seed", type=int, default=1234)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--eval-every", type=int, default=100)
    ap.add_argument("--layers", type=int, default=4)
    ap.add_argument("--hidden", type=int, default=256)
    ap.add_argument("--heads", type=int, default=4)
    ap.add_argument("--kv-heads", type=int, default=2)
    ap.add_argument("--head-dim", type=int, default=64)
    ap.add_argument("--intermediate", type=int, default=768)
    ap.add_argument("--rope-theta", type=float, default=10000.0)
    ap.add_argument("--max-pos", type=int, default=1024)
    args = ap.parse_args()

    torch.manual_seed(args.seed)
    torch.set_num_threads(args.threads)
    torch.use_deterministic_algorithms(True)

    os.makedirs(args.out, exist_ok=True)
    tok = BPETokenizer(args.tokenizer or os.path.join(args.out, "tokenizer.json"))
    n_regular = len(tok.vocab)
    n_tokens = n_regular + len(tok.added)
    args.bos_id = tok.added["<|endoftext|>"]
    args.eos_id = tok.added["<|im_end|>"]
    cfg = make_config(args, n_tokens)
    for name, dim in (("hidden", args.hidden), ("heads*head_dim", args.heads * args.head_dim),
                      ("intermediate", args.intermediate)):
        assert dim % 128 == 0, "%s=%d: linear input dims must be multiples of 128" % (name, dim)

    t0 = time.time()
    train, held, _ = load_split(tok)
    print("tokens: train %d, held-out %d (tokenized in %.1fs); vocab %d (%d used)"
          % (len(train), len(held), time.time() - t0, cfg["vocab_size"], n_tokens), flush=True)

    model = Qwen3(cfg)
    model.init_weights(n_tokens)
    n_params = sum(p.numel() for p in model.parameters())
    print("params: %d; threads %d; seed %d" % (n_params, torch.get_num_threads(), args.seed),
          flush=True)
    # Padding rows past the last token never get a gradient: they stay exactly zero.
    emb = model.w("model.embed_tokens.weight")
    emb.register_hook(lambda g: torch.cat([g[:n_tokens], torch.zeros_like(g[n_tokens:])]))
    decay = [p for p in model.parameters() if p.dim() == 2]
    no_decay = [p for p in model.parameters() if p.dim() == 1]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": args.wd},
                             {"params": no_decay, "weight_decay": 0.0}],
                            lr=args.lr, betas=(0.9, 0.95), eps=1e-8)

    def lr_at(step):
        if step < args.warmup:
            return args.lr * (step + 1) / args.warmup
        t = (step - args.warmup) / max(1, args.steps - args.warmup)
        r = args.min_lr_ratio
        return args.lr * (r + (1 - r) * 0.5 * (1 + math.cos(math.pi * t)))

    gen = torch.Generator().manual_seed(args.seed)
    log = []
    t0 = time.time()
    for step in range(args.steps):
        starts = torch.randint(0, len(train) - args.ctx - 1, (args.batch,), generator=gen)
        x = torch.stack([train[s:s + args.ctx] for s in starts.tolist()])
        y = torch.stack([train[s + 1:s + args.ctx + 1] for s in starts.tolist()])
        for g in opt.param_groups:
            g["lr"] = lr_at(step)
        logits = model(x)
        loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        if step % 10 == 0 or step == args.steps - 1:
            print("step %5d  lr %.2e  train loss %.6f  (%.1fs)"
                  % (step, lr_at(step), loss.item(), time.time() - t0), flush=True)
        if (step + 1) % args.eval_every == 0 and step + 1 < args.steps:
            hl, _ = heldout_loss(model, held, args.ctx, max_chunks=16)
            print("step %5d  held-out loss (16 chunks) %.4f" % (step + 1, hl), flush=True)
            log.append("step %d held-out loss (first 16 chunks of %d) %.4f"
                       % (step + 1, args.ctx, hl))
    train_s = time.time() - t0

    # Final figures on the whole held-out text, with the fp32 and the BF16-rounded weights.
    hl32, n_scored = heldout_loss(model, held, args.ctx)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(p.to(torch.bfloat16).float())
    hl16, _ = heldout_loss(model, held, args.ctx)
    print("held-out loss fp32 %.4f ppl %.3f | bf16 %.4f ppl %.3f  (%d tokens)"
          % (hl32, math.exp(hl32), hl16, math.exp(hl16), n_scored), flush=True)

    with open(os.path.join(args.out, "config.json"), "w") as f:
        json.dump(cfg, f, indent=2)
        f.write("\n")
    write_safetensors(os.path.join(args.out, "model.safetensors"), model.named_hf())
    with open(os.path.join(args.out, "train_log.txt"), "w") as f:
        f.write("command: /usr/bin/python3 tools/train_tiny.py %s\n" % " ".join(sys.argv[1:]))
        f.write("args: %s\n" % json.dumps({k: v for k, v in vars(args).items()}, sort_keys=True))
        f.write("torch %s, torch.get_num_threads() = %d, OMP_NUM_THREADS=%s, "
                "OPENBLAS_NUM_THREADS=%s, deterministic algorithms on\n"
                % (torch.__version__, torch.get_num_threads(), os.environ["OMP_NUM_THREADS"],
                   os.environ["OPENBLAS_NUM_THREADS"]))
        f.write("tokens: train %d, held-out %d; params %d\n" % (len(train), len(held), n_params))
        f.write("training wall time: %.1f s (%d steps of %d x %d tokens)\n"
                % (train_s, args.steps, args.batch, args.ctx))
        for line in log:
            f.write(line + "\n")
        f.write("final train loss (last batch): %.4f\n" % loss.item())
        f.write("held-out: %d tokens scored = non-overlapping windows of %d, every position, "
                "from an empty context\n" % (n_scored, args.ctx))
        f.write("held-out loss fp32 weights: %.4f nats/token, perplexity %.3f\n"
                % (hl32, math.exp(hl32)))
        f.write("held-out loss bf16 weights (as committed): %.4f nats/token, perplexity %.3f\n"
                % (hl16, math.exp(hl16)))
    print("wrote %s/{config.json,model.safetensors,train_log.txt}" % args.out, flush=True)


if __name__ == "__main__":
    main()
