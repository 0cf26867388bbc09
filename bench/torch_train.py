#!/usr/bin/python3
"""The PyTorch side of bench_train: one full training step (forward, MLM loss,
backward, AdamW) of a RoFormer masked-LM, timed step by step.

The model is HuggingFace's RoFormerForMaskedLM (transformers v4.35) rewritten in
plain PyTorch -- the `transformers` package is not used -- with the same module
tree, so parameter names are HF's. Weights and the batch come from the
directory `bench_train --dump DIR` writes (config.json, model.safetensors,
batch.safetensors), read here without the safetensors package.

    torch_train.py --model DIR [--threads N] [--steps N] [--warmup N] [--json]

The loss of the first step is printed so it can be compared with roformer.cpp's
on the identical weights and batch. Dropout is left out (eval-mode behaviour),
as in the C++ run.
"""
import argparse
import json
import math
import os
import statistics
import struct
import sys
import time

import torch
import torch.nn.functional as F
from torch import nn

_DTYPES = {"F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16, "I64": torch.int64,
           "I32": torch.int32, "F64": torch.float64}


def read_safetensors(path):
    """{name: tensor} from a .safetensors file (owned copies)."""
    with open(path, "rb") as f:
        data = f.read()
    (header_len,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + header_len])
    start = 8 + header_len
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        begin, end = info["data_offsets"]
        dtype = _DTYPES[info["dtype"]]
        chunk = bytearray(data[start + begin:start + end])
        t = torch.frombuffer(chunk, dtype=dtype) if chunk else torch.empty(0, dtype=dtype)
        out[name] = t.reshape(info["shape"]).clone()
    return out


# ---------------------------------------------------------------------------
# HF RoFormer, module for module.

class Embeddings(nn.Module):
    def __init__(self, c):
        super().__init__()
        e = c["embedding_size"]
        self.word_embeddings = nn.Embedding(c["vocab_size"], e, padding_idx=c["pad_token_id"])
        self.token_type_embeddings = nn.Embedding(c["type_vocab_size"], e)
        self.LayerNorm = nn.LayerNorm(e, eps=c["layer_norm_eps"])

    def forward(self, input_ids, token_type_ids):
        x = self.word_embeddings(input_ids) + self.token_type_embeddings(token_type_ids)
        return self.LayerNorm(x)


def sinusoidal_table(n_pos, dim):
    """HF's RoFormerSinusoidalPositionalEmbedding weight: [sin | cos] halves, computed in float64."""
    pos = torch.arange(n_pos, dtype=torch.float64)[:, None]
    j = torch.arange(dim, dtype=torch.float64)[None, :]
    enc = pos / torch.pow(10000.0, 2 * torch.div(j, 2, rounding_mode="floor") / dim)
    out = torch.empty(n_pos, dim, dtype=torch.float64)
    sentinel = dim // 2 if dim % 2 == 0 else dim // 2 + 1
    out[:, :sentinel] = torch.sin(enc[:, 0::2])
    out[:, sentinel:] = torch.cos(enc[:, 1::2])
    return out.float()


def apply_rotary(sinusoidal_pos, x):
    """HF's apply_rotary_position_embeddings for one tensor (B, heads, T, D): interleaved pairs."""
    sin, cos = sinusoidal_pos.chunk(2, dim=-1)
    sin_pos = torch.stack([sin, sin], dim=-1).reshape_as(sinusoidal_pos)
    cos_pos = torch.stack([cos, cos], dim=-1).reshape_as(sinusoidal_pos)
    rotate_half = torch.stack([-x[..., 1::2], x[..., ::2]], dim=-1).reshape_as(x)
    return x * cos_pos + rotate_half * sin_pos


class SelfAttention(nn.Module):
    def __init__(self, c):
        super().__init__()
        h = c["hidden_size"]
        self.heads = c["num_attention_heads"]
        self.head_dim = h // self.heads
        self.rotary_value = c.get("rotary_value", False)
        self.query = nn.Linear(h, h)
        self.key = nn.Linear(h, h)
        self.value = nn.Linear(h, h)

    def split(self, x):
        b, t, _ = x.shape
        return x.view(b, t, self.heads, self.head_dim).permute(0, 2, 1, 3)

    def forward(self, x, ext_mask, sinusoidal_pos):
        q, k, v = self.split(self.query(x)), self.split(self.key(x)), self.split(self.value(x))
        q, k = apply_rotary(sinusoidal_pos, q), apply_rotary(sinusoidal_pos, k)
        if self.rotary_value:
            v = apply_rotary(sinusoidal_pos, v)
        scores = torch.matmul(q, k.transpose(-1, -2)) / math.sqrt(self.head_dim) + ext_mask
        probs = F.softmax(scores, dim=-1)
        ctx = torch.matmul(probs, v).permute(0, 2, 1, 3).contiguous()
        return ctx.view(ctx.shape[0], ctx.shape[1], -1)


class DenseNorm(nn.Module):
    """RoFormerSelfOutput / RoFormerOutput: LayerNorm(dense(x) + residual)."""

    def __init__(self, n_in, c):
        super().__init__()
        self.dense = nn.Linear(n_in, c["hidden_size"])
        self.LayerNorm = nn.LayerNorm(c["hidden_size"], eps=c["layer_norm_eps"])

    def forward(self, x, residual):
        return self.LayerNorm(self.dense(x) + residual)


class Attention(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.self = SelfAttention(c)
        self.output = DenseNorm(c["hidden_size"], c)

    def forward(self, x, ext_mask, sinusoidal_pos):
        return self.output(self.self(x, ext_mask, sinusoidal_pos), x)


class Intermediate(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.dense = nn.Linear(c["hidden_size"], c["intermediate_size"])

    def forward(self, x):
        return F.gelu(self.dense(x))  # HF "gelu" = exact erf GELU


class Layer(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.attention = Attention(c)
        self.intermediate = Intermediate(c)
        self.output = DenseNorm(c["intermediate_size"], c)

    def forward(self, x, ext_mask, sinusoidal_pos):
        a = self.attention(x, ext_mask, sinusoidal_pos)
        return self.output(self.intermediate(a), a)


class Encoder(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.layer = nn.ModuleList([Layer(c) for _ in range(c["num_hidden_layers"])])
        table = sinusoidal_table(c["max_position_embeddings"], c["hidden_size"] // c["num_attention_heads"])
        self.register_buffer("sinusoidal", table, persistent=False)

    def forward(self, x, ext_mask):
        sinusoidal_pos = self.sinusoidal[: x.shape[1]][None, None, :, :]
        for layer in self.layer:
            x = layer(x, ext_mask, sinusoidal_pos)
        return x


class RoFormer(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.embeddings = Embeddings(c)
        if c["embedding_size"] != c["hidden_size"]:
            self.embeddings_project = nn.Linear(c["embedding_size"], c["hidden_size"])
        self.encoder = Encoder(c)

    def forward(self, input_ids, attention_mask, token_type_ids):
        x = self.embeddings(input_ids, token_type_ids)
        if hasattr(self, "embeddings_project"):
            x = self.embeddings_project(x)
        ext = (1.0 - attention_mask[:, None, None, :].to(x.dtype)) * torch.finfo(x.dtype).min
        return self.encoder(x, ext)


class PredictionHeadTransform(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.dense = nn.Linear(c["hidden_size"], c["embedding_size"])
        self.LayerNorm = nn.LayerNorm(c["embedding_size"], eps=c["layer_norm_eps"])

    def forward(self, x):
        return self.LayerNorm(F.gelu(self.dense(x)))


class LMPredictionHead(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.transform = PredictionHeadTransform(c)
        self.decoder = nn.Linear(c["embedding_size"], c["vocab_size"], bias=False)
        self.bias = nn.Parameter(torch.zeros(c["vocab_size"]))
        self.decoder.bias = self.bias

    def forward(self, x):
        return self.decoder(self.transform(x))


class OnlyMLMHead(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.predictions = LMPredictionHead(c)


class RoFormerForMaskedLM(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.config = c
        self.roformer = RoFormer(c)
        self.cls = OnlyMLMHead(c)
        self.cls.predictions.decoder.weight = self.roformer.embeddings.word_embeddings.weight  # tied

    def forward(self, input_ids, attention_mask, token_type_ids, labels):
        h = self.roformer(input_ids, attention_mask, token_type_ids)
        logits = self.cls.predictions(h)
        return F.cross_entropy(logits.view(-1, self.config["vocab_size"]), labels.view(-1), ignore_index=-100)


def load_model(directory):
    with open(os.path.join(directory, "config.json")) as f:
        c = json.load(f)
    c.setdefault("embedding_size", None)
    if c["embedding_size"] is None:
        c["embedding_size"] = c["hidden_size"]
    for key, default in (("type_vocab_size", 2), ("layer_norm_eps", 1e-12), ("pad_token_id", 0),
                         ("max_position_embeddings", 1536), ("hidden_act", "gelu")):
        c.setdefault(key, default)
    if c["hidden_act"] != "gelu":
        sys.exit("torch_train: only hidden_act=gelu is written here")
    model = RoFormerForMaskedLM(c)
    weights = read_safetensors(os.path.join(directory, "model.safetensors"))
    weights.pop("roformer.encoder.embed_positions.weight", None)  # a fixed table, rebuilt above
    own = dict(model.named_parameters())
    decoder_w = weights.pop("cls.predictions.decoder.weight", None)
    decoder_b = weights.pop("cls.predictions.decoder.bias", None)
    missing = sorted(set(own) - set(weights))
    unexpected = sorted(set(weights) - set(own))
    if missing or unexpected:
        sys.exit(f"torch_train: checkpoint mismatch: missing {missing}, unexpected {unexpected}")
    with torch.no_grad():
        for name, p in own.items():
            w = weights[name]
            if tuple(w.shape) != tuple(p.shape):
                sys.exit(f"torch_train: {name} has shape {tuple(w.shape)}, expected {tuple(p.shape)}")
            p.copy_(w.to(p.dtype))
    if decoder_w is not None and not torch.equal(decoder_w, model.roformer.embeddings.word_embeddings.weight):
        sys.exit("torch_train: cls.predictions.decoder.weight is not tied to the word embeddings")
    if decoder_b is not None and not torch.equal(decoder_b, model.cls.predictions.bias):
        sys.exit("torch_train: cls.predictions.decoder.bias differs from cls.predictions.bias")
    return model


def loaded_blas():
    """Shared libraries mapped into this process whose file name mentions BLAS."""
    seen = []
    with open("/proc/self/maps") as f:
        for line in f:
            parts = line.split()
            if len(parts) < 6 or not parts[-1].startswith("/"):
                continue
            path = parts[-1]
            if "blas" in os.path.basename(path) and path not in seen:
                seen.append(path)
    return seen


def blas_kind(paths):
    if any("openblas" in p for p in paths):
        return "OpenBLAS"
    if any("/blas/" in p or os.path.basename(p).startswith("libblas.so") for p in paths):
        return "reference BLAS (netlib)"
    return "unknown"


def openblas_corename(paths):
    import ctypes
    for p in paths:
        if "openblas" in os.path.basename(p):
            try:
                fn = ctypes.CDLL(p).openblas_get_corename
                fn.restype = ctypes.c_char_p
                return fn().decode()
            except (OSError, AttributeError):
                pass
    return ""


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", help="directory written by bench_train --dump")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--text", action="store_true",
                    help="a new batch each step from text_batches.safetensors (bench_train --text --dump); "
                         "tokens/s then counts real tokens")
    ap.add_argument("--blas-only", action="store_true", help="print the BLAS torch loads and exit")
    a = ap.parse_args()

    torch.set_num_threads(a.threads)
    x = torch.ones(64, 64)
    _ = x @ x  # make sure the BLAS is loaded and used before looking
    blas = loaded_blas()
    if a.blas_only:
        print(json.dumps({"blas": blas, "kind": blas_kind(blas), "openblas_core": openblas_corename(blas)}))
        return

    if not a.model:
        ap.error("--model is required")
    model = load_model(a.model)
    model.train()  # no dropout modules exist, so train and eval compute the same
    c = model.config
    names = ("input_ids", "attention_mask", "token_type_ids", "labels")
    if a.text:  # padded batches of real lines, one per step; PyTorch runs them padded, as HF does
        stored = read_safetensors(os.path.join(a.model, "text_batches.safetensors"))
        batches = [tuple(stored[f"{k}.{i}"] for k in names) for i in range(a.warmup + a.steps)]
    else:
        batch = read_safetensors(os.path.join(a.model, "batch.safetensors"))
        batches = [tuple(batch[k] for k in names)] * (a.warmup + a.steps)
    ids = batches[0][0]
    tokens = ids.numel()

    # BERT-style groups, as roformer.cpp's bert_style_groups: no decay for biases and LayerNorm weights.
    lr, wd = 1e-4, 0.01
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        (no_decay if ("bias" in name or "LayerNorm.weight" in name) else decay).append(p)
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": wd}, {"params": no_decay, "weight_decay": 0.0}],
                            lr=lr, betas=(0.9, 0.999), eps=1e-8)
    n_params = sum(p.numel() for p in model.parameters())

    seconds, losses, real_tokens = [], [], 0
    for step in range(a.warmup + a.steps):
        ids, mask, types, labels = batches[step]
        t0 = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        loss = model(ids, mask, types, labels)
        loss.backward()
        opt.step()
        t1 = time.perf_counter()
        losses.append(loss.item())
        if not math.isfinite(losses[-1]):
            sys.exit(f"torch_train: the loss became non-finite at step {step}")
        if step >= a.warmup:
            seconds.append(t1 - t0)
            real_tokens += int(mask.sum())

    med = statistics.median(seconds)
    # Ragged batches differ step to step: real tokens over the timed steps' time.
    tps = real_tokens / sum(seconds) if a.text else tokens / med
    result = {
        "impl": "pytorch", "torch": torch.__version__, "vocab": c["vocab_size"], "threads": a.threads,
        "batch": ids.shape[0], "seq": ids.shape[1], "warmup": a.warmup, "steps": a.steps,
        "step_seconds_median": med, "step_seconds_min": min(seconds), "step_seconds_max": max(seconds),
        "tokens_per_second": tps, "text": a.text, "real_tokens": real_tokens, "first_loss": losses[0], "last_loss": losses[-1], "params": n_params,
        "blas": " ".join(os.path.basename(p) for p in blas), "blas_kind": blas_kind(blas),
        "openblas_core": openblas_corename(blas),
    }
    if a.json:
        print(json.dumps(result))
    else:
        print(f"pytorch {torch.__version__}  B={ids.shape[0]} T={ids.shape[1]}, {a.threads} thread(s), "
              f"{a.steps} timed steps after {a.warmup} warm-up")
        print(f"  parameters        {n_params}")
        print(f"  step (median)     {med:.4f} s  (min {min(seconds):.4f}, max {max(seconds):.4f})")
        print(f"  {'real tokens/s' if a.text else 'tokens/s':<18}{tps:.1f}")
        print(f"  loss              first step {losses[0]:.7f}, last step {losses[-1]:.7f}")
        print(f"  BLAS              {result['blas_kind']}: {result['blas']} (core {result['openblas_core']})")


if __name__ == "__main__":
    main()
