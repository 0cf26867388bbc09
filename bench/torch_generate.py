#!/usr/bin/python3
"""The PyTorch side of bench_generate: greedy generation with a causal RoFormer
and a KV cache, timed on the same weights and prompt.

The layers are bench/torch_train.py's plain-PyTorch rewrite of HuggingFace's
RoFormer (transformers v4.35, same parameter names); decoding follows
RoFormerForCausalLM with `past_key_values`: the new tokens' queries and keys are
rotated at their positions after the cache, then the new keys and values are
appended to the cached ones, and a causal mask covers the new rows. As
roformer.cpp does, only the last position's logits are computed (HF v4.35
computes the LM head for every prompt position; newer versions have
`logits_to_keep` for this).

    torch_generate.py --model DIR [--prompt T] [--new N] [--threads N]
                      [--warmup N] [--reps N] [--json] [--compare FILE]
    torch_generate.py --model DIR --export-onnx FILE

DIR is written by `bench_generate --dump`; --compare FILE reads the prompt's
last logits roformer.cpp saved (bench_generate --save-logits) and reports the
largest absolute difference. --export-onnx writes one decoding step for ONNX
Runtime (bench/ort_generate.js): the cache's keys and values as inputs and
outputs, the new tokens and the cached positions as dynamic axes.
"""
import argparse
import json
import math
import os
import statistics
import sys
import time
import warnings

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from torch_train import apply_rotary, blas_kind, load_model, loaded_blas, openblas_corename, read_safetensors  # noqa: E402


def attend(attn, x, sinusoidal_pos, past):
    """RoFormerSelfAttention with a cache: (context, (keys, values) including the new ones)."""
    s = attn
    q, k, v = s.split(s.query(x)), s.split(s.key(x)), s.split(s.value(x))
    q, k = apply_rotary(sinusoidal_pos, q), apply_rotary(sinusoidal_pos, k)
    if s.rotary_value:
        v = apply_rotary(sinusoidal_pos, v)
    if past is not None:
        k, v = torch.cat([past[0], k], dim=2), torch.cat([past[1], v], dim=2)
    t, tk = q.shape[2], k.shape[2]
    scores = torch.matmul(q, k.transpose(-1, -2)) / math.sqrt(s.head_dim)
    if t > 1:  # the new rows see the cache and themselves up to their own position
        allowed = torch.ones(t, tk, dtype=torch.bool).tril(diagonal=tk - t)
        scores = scores.masked_fill(~allowed, torch.finfo(scores.dtype).min)
    ctx = torch.matmul(F.softmax(scores, dim=-1), v).permute(0, 2, 1, 3).contiguous()
    return ctx.view(ctx.shape[0], ctx.shape[1], -1), (k, v)


def step(model, ids, cache):
    """One forward of new tokens after `cache` (a list of (keys, values) per layer, or None):
    the last position's logits and the grown cache."""
    r = model.roformer
    past_len = 0 if cache is None else cache[0][0].shape[2]
    x = r.embeddings(ids, torch.zeros_like(ids))
    if hasattr(r, "embeddings_project"):
        x = r.embeddings_project(x)
    t = ids.shape[1]
    sinusoidal_pos = r.encoder.sinusoidal[past_len: past_len + t][None, None, :, :]
    grown = []
    for i, layer in enumerate(r.encoder.layer):
        ctx, kv = attend(layer.attention.self, x, sinusoidal_pos, None if cache is None else cache[i])
        grown.append(kv)
        a = layer.attention.output(ctx, x)
        x = layer.output(layer.intermediate(a), a)
    return model.cls.predictions(x[:, -1:, :]), grown


class DecodeStep(torch.nn.Module):
    """step() as one graph, for the ONNX export: (input_ids, then the keys and values of
    every layer cached so far) -> (the last position's logits, then every layer's keys
    and values including the new tokens'). An empty cache (0 positions) is the prompt."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, ids, *past):
        cache = [(past[2 * i], past[2 * i + 1]) for i in range(len(past) // 2)]
        logits, grown = step(self.model, ids, cache)
        return (logits,) + tuple(t for kv in grown for t in kv)


def export_onnx(model, path):
    """Writes DecodeStep with the new tokens and the cached positions as dynamic axes.
    The example has 3 new tokens after 2 cached ones, so the causal mask of a
    multi-token forward is in the graph (for one token it allows every key)."""
    layers = len(model.roformer.encoder.layer)
    attn = model.roformer.encoder.layer[0].attention.self
    heads, head_dim = attn.heads, attn.head_dim
    ids = torch.ones(1, 3, dtype=torch.long)
    past = tuple(torch.zeros(1, heads, 2, head_dim) for _ in range(2 * layers))
    names_in = ["input_ids"] + [f"past_key_values.{i}.{kv}" for i in range(layers) for kv in ("key", "value")]
    names_out = ["logits"] + [f"present.{i}.{kv}" for i in range(layers) for kv in ("key", "value")]
    axes = {"input_ids": {1: "new"}}
    axes.update({n: {2: "past"} for n in names_in[1:]})
    axes.update({n: {2: "total"} for n in names_out[1:]})
    with torch.no_grad(), warnings.catch_warnings():
        # attend()'s `if t > 1` is traced as taken: the mask it adds allows every key for one new token.
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        torch.onnx.export(DecodeStep(model), (ids,) + past, path, input_names=names_in, output_names=names_out,
                          dynamic_axes=axes, opset_version=14)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", required=True, help="directory written by bench_generate --dump")
    ap.add_argument("--prompt", type=int, default=128)
    ap.add_argument("--new", type=int, default=64)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--compare", help="roformer.cpp's saved logits of the prompt's last position")
    ap.add_argument("--export-onnx", metavar="FILE", help="write one decoding step (with the cache as inputs and "
                    "outputs) as ONNX and exit")
    a = ap.parse_args()
    if a.prompt < 1 or a.new < 2 or a.reps < 1:
        ap.error("--prompt and --reps must be positive, --new at least 2 (one step after the prompt)")

    torch.set_num_threads(a.threads)
    model = load_model(a.model).eval()
    if a.export_onnx:
        export_onnx(model, a.export_onnx)
        print(f"torch_generate: wrote {a.export_onnx}")
        return
    positions = model.roformer.encoder.sinusoidal.shape[0]
    if a.prompt + a.new > positions:
        sys.exit(f"torch_generate: {a.prompt} + {a.new} tokens exceed the model's {positions} positions")
    prompt = read_safetensors(os.path.join(a.model, "prompt.safetensors"))["input_ids"][:, : a.prompt].contiguous()
    if prompt.shape[1] != a.prompt:
        sys.exit(f"torch_generate: prompt.safetensors holds {prompt.shape[1]} tokens, fewer than --prompt")

    prefill, steps = [], []
    with torch.inference_mode():
        for rep in range(a.warmup + a.reps):
            timed = rep >= a.warmup
            t0 = time.perf_counter()
            logits, cache = step(model, prompt, None)
            token = int(logits[0, -1].argmax())
            if timed:
                prefill.append(time.perf_counter() - t0)
            first_logits = logits[0, -1].clone()
            tokens = [token]
            for _ in range(1, a.new):
                t0 = time.perf_counter()
                logits, cache = step(model, torch.tensor([[token]]), cache)
                token = int(logits[0, -1].argmax())
                if timed:
                    steps.append(time.perf_counter() - t0)
                tokens.append(token)

    max_diff = None
    if a.compare:
        ours = read_safetensors(a.compare)["logits"].reshape(-1)
        if ours.numel() != first_logits.numel():
            sys.exit(f"torch_generate: {a.compare} holds {ours.numel()} logits, PyTorch {first_logits.numel()}")
        max_diff = (ours - first_logits).abs().max().item()
    step_s = statistics.median(steps)
    blas = loaded_blas()
    result = {
        "impl": "pytorch", "torch": torch.__version__, "prompt": a.prompt, "new_tokens": a.new,
        "threads": a.threads, "reps": a.reps, "prefill_seconds": statistics.median(prefill),
        "prefill_seconds_min": min(prefill), "step_seconds": step_s,
        "step_seconds_min": min(steps), "step_seconds_max": max(steps),
        "steps_per_second": 1.0 / step_s, "max_abs_diff_vs_roformer_cpp": max_diff, "tokens": tokens,
        "blas": " ".join(os.path.basename(p) for p in blas), "blas_kind": blas_kind(blas),
        "openblas_core": openblas_corename(blas),
    }
    if a.json:
        print(json.dumps(result))
    else:
        print(f"pytorch {torch.__version__}  prompt {a.prompt}, {a.new} new tokens, {a.threads} thread(s): prompt "
              f"{result['prefill_seconds'] * 1e3:.1f} ms, step {step_s * 1e3:.2f} ms ({1.0 / step_s:.1f} tokens/s; "
              f"{result['blas_kind']})")
        if max_diff is not None:
            print(f"  max |roformer.cpp - PyTorch| over the first logits = {max_diff:.3g}")


if __name__ == "__main__":
    main()
