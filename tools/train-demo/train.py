#!/usr/bin/env python3
"""Trains bitnet's demo model: a small BitNet b1.58 language model on the King James Bible.

The architecture is exactly the one bitnet runs (BITNET_MODEL.md): token embedding tied to the
output, per layer rmsnorm -> BitLinear q/k/v (GQA) -> NeoX RoPE -> causal attention ->
attn_sub_norm -> BitLinear o, rmsnorm -> BitLinear gate/up -> relu(g)^2 * u -> ffn_sub_norm ->
BitLinear down. BitLinear is quantization-aware: absmean ternary weights
(gamma = max(mean|W|, 1e-5), codes = clamp(round(W / gamma), -1, 1), value = code * gamma) and
per-token absmax int8 activations (s = 127 / max(max|x|, 1e-5), q = clamp(round(x s), -128, 127),
value = q / s), both with the straight-through estimator.

Steps (one command, on a GPU):
  1. a byte-level BPE tokenizer (LLaMA 3 pre-tokenizer, --vocab tokens) trained on train.txt;
  2. the model, trained with AdamW, evaluated on eval.txt every --eval-every steps; the best
     evaluation wins (early stopping: the corpus is small);
  3. export as a Hugging Face style checkpoint (config.json, model.safetensors in bf16 with the
     projections already ternary: code * bf16(gamma), tokenizer.json, tokenizer_config.json);
  4. reference outputs of the *exported* checkpoint, computed in float32 by a plain forward
     pass written independently of the training module: last-position logits and 32 greedy
     tokens for 4 prompts, and llama.cpp-convention perplexity (chunks of --ctx tokens, first
     token replaced by BOS, second half scored) on eval.txt and on its first 32 KiB.

    python3 train.py --corpus build/demo-corpus --out OUT [--minutes 5]
"""
import argparse
import json
import math
import os
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file
from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, trainers

# LLaMA 3's pre-tokenizer pattern (bitnet recognises it and uses its own implementation).
LLAMA3_SPLIT = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}|"
                r" ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+")
BOS, EOS = "<|begin_of_text|>", "<|end_of_text|>"
PROMPTS = ["In the beginning", "And the LORD said unto Moses,", "Blessed are the",
           "And it came to pass, when"]
SLICE_BYTES = 32 * 1024  # the part of eval.txt that CI evaluates


def train_tokenizer(text_path: Path, vocab: int) -> Tokenizer:
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(LLAMA3_SPLIT), behavior="isolated", invert=False),
        pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=True, use_regex=False),
    ])
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab, min_frequency=2, special_tokens=[BOS, EOS],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                  show_progress=False)
    tok.train([str(text_path)], trainer)
    return tok


def weight_quant(w):
    gamma = w.abs().mean().clamp(min=1e-5)
    return (w / gamma).round().clamp(-1, 1) * gamma


def act_quant(x):
    s = 127.0 / x.abs().amax(dim=-1, keepdim=True).clamp(min=1e-5)
    return (x * s).round().clamp(-128, 127) / s


class BitLinear(torch.nn.Linear):
    def forward(self, x):
        w = self.weight
        wq = w + (weight_quant(w) - w).detach()
        xq = x + (act_quant(x) - x).detach()
        return F.linear(xq, wq)


def rmsnorm(x, weight, eps):
    x32 = x.float()
    return weight * (x32 * torch.rsqrt(x32.pow(2).mean(-1, keepdim=True) + eps))


def rope(x, positions, theta):
    # NeoX style: dimension i pairs with i + head_dim/2.
    hd = x.shape[-1]
    dtype = torch.float64 if x.dtype == torch.float64 else torch.float32
    inv = 1.0 / theta ** (torch.arange(0, hd, 2, device=x.device, dtype=dtype) / hd)
    ang = positions[:, None].to(inv.dtype) * inv[None, :]
    cos = torch.cat([ang.cos(), ang.cos()], -1)
    sin = torch.cat([ang.sin(), ang.sin()], -1)
    x1, x2 = x[..., : hd // 2], x[..., hd // 2:]
    return x * cos + torch.cat([-x2, x1], -1) * sin


class Block(torch.nn.Module):
    def __init__(self, c):
        super().__init__()
        d, hd = c["hidden_size"], c["head_dim"]
        self.c = c
        self.q = BitLinear(d, c["num_attention_heads"] * hd, bias=False)
        self.k = BitLinear(d, c["num_key_value_heads"] * hd, bias=False)
        self.v = BitLinear(d, c["num_key_value_heads"] * hd, bias=False)
        self.o = BitLinear(c["num_attention_heads"] * hd, d, bias=False)
        self.gate = BitLinear(d, c["intermediate_size"], bias=False)
        self.up = BitLinear(d, c["intermediate_size"], bias=False)
        self.down = BitLinear(c["intermediate_size"], d, bias=False)
        ones = lambda n: torch.nn.Parameter(torch.ones(n))  # noqa: E731
        self.attn_norm, self.attn_sub_norm = ones(d), ones(c["num_attention_heads"] * hd)
        self.ffn_norm, self.ffn_sub_norm = ones(d), ones(c["intermediate_size"])

    def forward(self, h, positions):
        c, eps = self.c, self.c["rms_norm_eps"]
        B, T, _ = h.shape
        nh, nkv, hd = c["num_attention_heads"], c["num_key_value_heads"], c["head_dim"]
        x = rmsnorm(h, self.attn_norm, eps)
        q = self.q(x).view(B, T, nh, hd).transpose(1, 2)
        k = self.k(x).view(B, T, nkv, hd).transpose(1, 2)
        v = self.v(x).view(B, T, nkv, hd).transpose(1, 2)
        q = rope(q, positions, c["rope_theta"]).to(v.dtype)
        k = rope(k, positions, c["rope_theta"]).to(v.dtype)
        a = F.scaled_dot_product_attention(q, k, v, is_causal=True, enable_gqa=True)
        a = a.transpose(1, 2).reshape(B, T, nh * hd)
        drop = c.get("_dropout", 0.0) if self.training else 0.0
        h = h + F.dropout(self.o(rmsnorm(a, self.attn_sub_norm, eps)), drop)
        x = rmsnorm(h, self.ffn_norm, eps)
        g = F.relu(self.gate(x)).square() * self.up(x)
        return h + F.dropout(self.down(rmsnorm(g, self.ffn_sub_norm, eps)), drop)


class Model(torch.nn.Module):
    def __init__(self, c):
        super().__init__()
        self.c = c
        self.embed = torch.nn.Embedding(c["vocab_size"], c["hidden_size"])
        torch.nn.init.normal_(self.embed.weight, std=0.02)
        self.blocks = torch.nn.ModuleList(Block(c) for _ in range(c["num_hidden_layers"]))
        self.norm = torch.nn.Parameter(torch.ones(c["hidden_size"]))

    def forward(self, ids):
        positions = torch.arange(ids.shape[1], device=ids.device)
        h = self.embed(ids)
        for b in self.blocks:
            h = b(h, positions)
        return rmsnorm(h, self.norm, self.c["rms_norm_eps"]) @ self.embed.weight.t()


# ---- export: Hugging Face BitNet names, bf16, projections already ternary -------------------

def export_state(model):
    out = {"model.embed_tokens.weight": model.embed.weight, "model.norm.weight": model.norm}
    names = {"q": "self_attn.q_proj", "k": "self_attn.k_proj", "v": "self_attn.v_proj",
             "o": "self_attn.o_proj", "gate": "mlp.gate_proj", "up": "mlp.up_proj",
             "down": "mlp.down_proj"}
    for i, b in enumerate(model.blocks):
        p = f"model.layers.{i}."
        for short, long in names.items():
            w = getattr(b, short).weight.detach().float()
            gamma = w.abs().mean().clamp(min=1e-5)
            codes = (w / gamma).round().clamp(-1, 1)
            out[p + long + ".weight"] = codes * gamma.to(torch.bfloat16).float()
        out[p + "input_layernorm.weight"] = b.attn_norm
        out[p + "self_attn.attn_sub_norm.weight"] = b.attn_sub_norm
        out[p + "post_attention_layernorm.weight"] = b.ffn_norm
        out[p + "mlp.ffn_sub_norm.weight"] = b.ffn_sub_norm
    return {k: v.detach().to(torch.bfloat16).contiguous().cpu() for k, v in out.items()}


# ---- reference forward of an exported checkpoint (float64, no training code) ---------------

def reference_logits(w, c, ids):
    """Logits [T, V] of token ids [T] from checkpoint tensors `w` (float64), from scratch."""
    eps, nh, nkv, hd = c["rms_norm_eps"], c["num_attention_heads"], c["num_key_value_heads"], \
        c["head_dim"]
    T = ids.shape[0]
    pos = torch.arange(T, device=ids.device)

    def norm(x, g):
        return g * (x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps))

    def bitlinear(name, x):  # weights are used as stored (already ternary)
        return act_quant(x) @ w[name].t()

    h = w["model.embed_tokens.weight"][ids]
    mask = torch.full((T, T), float("-inf"), device=ids.device, dtype=h.dtype).triu(1)
    for i in range(c["num_hidden_layers"]):
        p = f"model.layers.{i}."
        x = norm(h, w[p + "input_layernorm.weight"])
        q = bitlinear(p + "self_attn.q_proj.weight", x).view(T, nh, hd).transpose(0, 1)
        k = bitlinear(p + "self_attn.k_proj.weight", x).view(T, nkv, hd).transpose(0, 1)
        v = bitlinear(p + "self_attn.v_proj.weight", x).view(T, nkv, hd).transpose(0, 1)
        q, k = rope(q, pos, c["rope_theta"]), rope(k, pos, c["rope_theta"])
        k = k.repeat_interleave(nh // nkv, dim=0)  # query head j uses KV head j // group
        v = v.repeat_interleave(nh // nkv, dim=0)
        att = torch.softmax(q @ k.transpose(1, 2) / math.sqrt(hd) + mask, dim=-1)
        a = (att @ v).transpose(0, 1).reshape(T, nh * hd)
        h = h + bitlinear(p + "self_attn.o_proj.weight",
                          norm(a, w[p + "self_attn.attn_sub_norm.weight"]))
        x = norm(h, w[p + "post_attention_layernorm.weight"])
        g = F.relu(bitlinear(p + "mlp.gate_proj.weight", x)).square() * \
            bitlinear(p + "mlp.up_proj.weight", x)
        h = h + bitlinear(p + "mlp.down_proj.weight", norm(g, w[p + "mlp.ffn_sub_norm.weight"]))
    return norm(h, w["model.norm.weight"]) @ w["model.embed_tokens.weight"].t()


def chunk_perplexity(w, c, ids, window, bos):
    """llama.cpp's convention, as `bitnet perplexity` (default mode)."""
    nll, count = 0.0, 0
    for start in range(0, (len(ids) // window) * window, window):
        chunk = torch.tensor(ids[start:start + window], device=DEVICE)
        chunk[0] = bos
        logp = torch.log_softmax(reference_logits(w, c, chunk).double(), -1)
        for j in range(window // 2, window - 1):
            nll -= logp[j, chunk[j + 1]].item()
            count += 1
    return math.exp(nll / count), count


DEVICE = "cuda"


def write_references(ckpt: Path, corpus: Path, out: Path, training=None):
    """Reference outputs of the exported checkpoint, reloaded from disk (what `bitnet convert`
    sees), computed in float64 so that every int8 rounding decision is the exact one."""
    c = json.loads((ckpt / "config.json").read_text())
    tok = Tokenizer.from_file(str(ckpt / "tokenizer.json"))
    bos = c["bos_token_id"]
    w = {k: v.double().to(DEVICE) for k, v in load_file(str(ckpt / "model.safetensors")).items()}
    refs = {"precision": "float64", "prompts": []}
    with torch.no_grad():
        for prompt in PROMPTS:
            ids = [bos] + tok.encode(prompt).ids
            last = reference_logits(w, c, torch.tensor(ids, device=DEVICE))[-1]
            seq, margins = list(ids), []
            for _ in range(32):
                logits = reference_logits(w, c, torch.tensor(seq, device=DEVICE))[-1]
                top2 = logits.topk(2).values
                margins.append(round(float(top2[0] - top2[1]), 6))
                seq.append(int(logits.argmax()))
            refs["prompts"].append({"prompt": prompt, "tokens": ids,
                                    "last_logits": [round(float(v), 6) for v in last],
                                    "greedy": seq[len(ids):], "greedy_margins": margins,
                                    "greedy_text": tok.decode(seq[len(ids):])})
            print(f"{prompt!r} -> {tok.decode(seq[len(ids):])!r} (smallest top-2 margin "
                  f"{min(margins):.4f})", flush=True)
        eval_text = (corpus / "eval.txt").read_text(encoding="utf-8")
        slice_text = eval_text.encode()[:SLICE_BYTES].decode("utf-8", errors="ignore")
        for key, text in (("eval_slice", slice_text), ("eval_full", eval_text)):
            ids = [bos] + tok.encode(text).ids
            ppl, scored = chunk_perplexity(w, c, ids, c["max_position_embeddings"], bos)
            refs[key] = {"bytes": len(text.encode()), "tokens": len(ids),
                         "window": c["max_position_embeddings"], "scored_tokens": scored,
                         "perplexity": ppl}
            print(f"{key}: perplexity {ppl:.4f} over {scored} tokens", flush=True)
    (out / "eval_slice.txt").write_text(slice_text, encoding="utf-8")
    return refs


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--corpus", type=Path, required=True)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--minutes", type=float, default=5.0)
    ap.add_argument("--vocab", type=int, default=4096)
    ap.add_argument("--hidden", type=int, default=384)
    ap.add_argument("--layers", type=int, default=6)
    ap.add_argument("--heads", type=int, default=6)
    ap.add_argument("--kv-heads", type=int, default=2)
    ap.add_argument("--ffn", type=int, default=1024)
    ap.add_argument("--ctx", type=int, default=512)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--lr", type=float, default=1.5e-3)
    ap.add_argument("--eval-every", type=int, default=200)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--dropout", type=float, default=0.1, help="residual dropout (training)")
    ap.add_argument("--reference-only", type=Path, metavar="CHECKPOINT",
                    help="only recompute reference.json for an exported checkpoint directory")
    args = ap.parse_args()
    if args.reference_only:
        args.out.mkdir(parents=True, exist_ok=True)
        refs = write_references(args.reference_only, args.corpus, args.out)
        old = args.reference_only.parent / "reference.json"
        if old.exists():
            refs["training"] = json.loads(old.read_text()).get("training")
        (args.out / "reference.json").write_text(json.dumps(refs))
        return
    torch.manual_seed(args.seed)
    torch.backends.cuda.matmul.allow_tf32 = True
    torch.backends.cudnn.allow_tf32 = True
    out = args.out
    ckpt = out / "checkpoint"
    ckpt.mkdir(parents=True, exist_ok=True)
    t0 = time.time()

    tok = train_tokenizer(args.corpus / "train.txt", args.vocab)
    tok.save(str(ckpt / "tokenizer.json"))
    bos, eos = tok.token_to_id(BOS), tok.token_to_id(EOS)
    (ckpt / "tokenizer_config.json").write_text(json.dumps(
        {"bos_token": BOS, "eos_token": EOS, "add_bos_token": True, "add_eos_token": False,
         "model_max_length": args.ctx, "tokenizer_class": "PreTrainedTokenizerFast"}, indent=2))

    def encode_file(name):
        ids = []
        for chapter in (args.corpus / name).read_text(encoding="utf-8").split("\n\n"):
            ids += [bos] + tok.encode(chapter + "\n\n").ids
        return torch.tensor(ids, dtype=torch.long)

    train_ids, eval_ids = encode_file("train.txt").cuda(), encode_file("eval.txt").cuda()
    print(f"tokenizer: {tok.get_vocab_size()} tokens; train {len(train_ids)} tokens, "
          f"eval {len(eval_ids)} tokens ({time.time() - t0:.0f} s)", flush=True)

    c = {"architectures": ["BitNetForCausalLM"], "model_type": "bitnet",
         "hidden_size": args.hidden, "intermediate_size": args.ffn,
         "num_hidden_layers": args.layers, "num_attention_heads": args.heads,
         "num_key_value_heads": args.kv_heads, "head_dim": args.hidden // args.heads,
         "max_position_embeddings": args.ctx, "rms_norm_eps": 1e-5, "rope_theta": 10000.0,
         "vocab_size": tok.get_vocab_size(), "hidden_act": "relu2", "tie_word_embeddings": True,
         "bos_token_id": bos, "eos_token_id": eos, "torch_dtype": "bfloat16"}
    model = Model(dict(c, _dropout=args.dropout)).cuda()
    n_params = sum(p.numel() for p in model.parameters())
    decay = [p for n, p in model.named_parameters() if p.dim() == 2]
    other = [p for n, p in model.named_parameters() if p.dim() < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.05},
                             {"params": other, "weight_decay": 0.0}], lr=args.lr,
                            betas=(0.9, 0.95))

    def batch(ids, n):
        starts = torch.randint(0, len(ids) - args.ctx - 1, (n,), device="cuda")
        idx = starts[:, None] + torch.arange(args.ctx + 1, device="cuda")[None, :]
        return ids[idx]

    @torch.no_grad()
    def evaluate():
        model.eval()
        losses = []
        g = torch.Generator(device="cuda").manual_seed(123)
        for _ in range(8):
            starts = torch.randint(0, len(eval_ids) - args.ctx - 1, (32,), device="cuda",
                                   generator=g)
            x = eval_ids[starts[:, None] + torch.arange(args.ctx + 1, device="cuda")[None, :]]
            with torch.autocast("cuda", dtype=torch.bfloat16):
                logits = model(x[:, :-1])
            losses.append(F.cross_entropy(logits.float().reshape(-1, logits.shape[-1]),
                                          x[:, 1:].reshape(-1)).item())
        model.train()
        return sum(losses) / len(losses)

    budget = args.minutes * 60
    warmup, step, best, best_state = 200, 0, float("inf"), None
    t_train = time.time()
    est_steps = None
    while True:
        elapsed = time.time() - t_train
        if elapsed > budget:
            break
        # Cosine decay over the time budget (steps are not known in advance).
        frac = min(1.0, elapsed / budget)
        lr = args.lr * min(1.0, (step + 1) / warmup) * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * frac)))
        for gr in opt.param_groups:
            gr["lr"] = lr
        x = batch(train_ids, args.batch)
        with torch.autocast("cuda", dtype=torch.bfloat16):
            logits = model(x[:, :-1])
        loss = F.cross_entropy(logits.float().reshape(-1, logits.shape[-1]), x[:, 1:].reshape(-1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        step += 1
        if step % args.eval_every == 0:
            ev = evaluate()
            tokens_seen = step * args.batch * args.ctx
            print(f"step {step}: train {loss.item():.3f} eval {ev:.3f} (ppl {math.exp(ev):.2f}) "
                  f"lr {lr:.2e} {tokens_seen / len(train_ids):.1f} epochs "
                  f"{time.time() - t_train:.0f} s", flush=True)
            if ev < best:
                best = ev
                best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
    train_seconds = time.time() - t_train
    model.load_state_dict(best_state)
    print(f"trained {step} steps in {train_seconds:.0f} s; best eval loss {best:.3f}", flush=True)

    save_file(export_state(model), str(ckpt / "model.safetensors"), metadata={"format": "pt"})
    (ckpt / "config.json").write_text(json.dumps(c, indent=2))
    refs = write_references(ckpt, args.corpus, out)
    refs["training"] = {"steps": step, "seconds": round(train_seconds, 1),
                        "best_eval_loss": best, "parameters": n_params,
                        "train_tokens": len(train_ids), "eval_tokens": len(eval_ids),
                        "device": torch.cuda.get_device_name(), "torch": torch.__version__,
                        "batch": args.batch, "ctx": args.ctx, "lr": args.lr, "seed": args.seed,
                        "dropout": args.dropout, "minutes": args.minutes}
    (out / "reference.json").write_text(json.dumps(refs))
    print(f"done in {time.time() - t0:.0f} s", flush=True)


if __name__ == "__main__":
    main()
