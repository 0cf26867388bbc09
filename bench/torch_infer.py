#!/usr/bin/python3
"""The PyTorch side of bench_infer: forward passes of the RoFormer encoder
(HF's RoFormerModel, last hidden state) timed on the same weights and ids.

The model is bench/torch_train.py's plain-PyTorch rewrite of HuggingFace's
RoFormer (transformers v4.35), the `transformers` package is not used.
Weights and ids come from the directory `bench_infer --dump DIR` writes.

    torch_infer.py --model DIR --batch B --seq T [--threads N] [--warmup N]
                   [--min-reps N] [--min-seconds S] [--json] [--compare FILE]

--compare FILE reads the last_hidden_state roformer.cpp saved for the same
case (bench_infer --save-output) and reports the largest absolute difference.

    torch_infer.py --model DIR --export-onnx FILE

writes the same encoder as ONNX (opset 14, dynamic batch and sequence axes;
inputs input_ids, attention_mask, token_type_ids; output last_hidden_state)
for the ONNX Runtime side of the benchmark (bench/ort_infer.js).
"""
import argparse
import json
import os
import statistics
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from torch_train import RoFormer, blas_kind, loaded_blas, openblas_corename, read_safetensors  # noqa: E402


def load_encoder(directory):
    with open(os.path.join(directory, "config.json")) as f:
        c = json.load(f)
    if c.get("embedding_size") is None:
        c["embedding_size"] = c["hidden_size"]
    for key, default in (("type_vocab_size", 2), ("layer_norm_eps", 1e-12), ("pad_token_id", 0),
                         ("max_position_embeddings", 1536), ("hidden_act", "gelu")):
        c.setdefault(key, default)
    if c["hidden_act"] != "gelu":
        sys.exit("torch_infer: only hidden_act=gelu is written here")
    model = RoFormer(c)
    weights = {k.removeprefix("roformer."): v for k, v in
               read_safetensors(os.path.join(directory, "model.safetensors")).items()}
    weights.pop("encoder.embed_positions.weight", None)  # a fixed table, rebuilt by the module
    own = dict(model.named_parameters())
    missing, unexpected = sorted(set(own) - set(weights)), sorted(set(weights) - set(own))
    if missing or unexpected:
        sys.exit(f"torch_infer: checkpoint mismatch: missing {missing}, unexpected {unexpected}")
    with torch.no_grad():
        for name, p in own.items():
            if tuple(weights[name].shape) != tuple(p.shape):
                sys.exit(f"torch_infer: {name} has shape {tuple(weights[name].shape)}, expected {tuple(p.shape)}")
            p.copy_(weights[name].to(p.dtype))
    return model.eval(), c


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", required=True, help="directory written by bench_infer --dump")
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--seq", type=int, default=128)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--min-reps", type=int, default=3)
    ap.add_argument("--min-seconds", type=float, default=2.0)
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--compare", help="roformer.cpp's saved last_hidden_state for this case")
    ap.add_argument("--export-onnx", metavar="FILE", help="write the encoder as ONNX and exit")
    a = ap.parse_args()

    torch.set_num_threads(a.threads)
    model, c = load_encoder(a.model)
    if a.export_onnx:
        names = ["input_ids", "attention_mask", "token_type_ids"]
        example = tuple(torch.ones(1, 16, dtype=torch.long) if n != "token_type_ids" else torch.zeros(1, 16, dtype=torch.long)
                        for n in names)
        axes = {n: {0: "batch", 1: "seq"} for n in names + ["last_hidden_state"]}
        with torch.no_grad():
            torch.onnx.export(model, example, a.export_onnx, input_names=names, output_names=["last_hidden_state"],
                              dynamic_axes=axes, opset_version=14)
        print(f"torch_infer: wrote {a.export_onnx}")
        return
    inputs = read_safetensors(os.path.join(a.model, "inputs.safetensors"))
    ids, mask, types = (inputs[k][: a.batch, : a.seq].contiguous()
                        for k in ("input_ids", "attention_mask", "token_type_ids"))
    if ids.shape != (a.batch, a.seq):
        sys.exit(f"torch_infer: inputs.safetensors holds {tuple(inputs['input_ids'].shape)}, too small for this case")

    seconds = []
    rep = 0
    with torch.inference_mode():
        while rep < a.warmup or len(seconds) < a.min_reps or sum(seconds) < a.min_seconds:
            t0 = time.perf_counter()
            out = model(ids, mask, types)
            t1 = time.perf_counter()
            if rep >= a.warmup:
                seconds.append(t1 - t0)
            rep += 1
    mean_abs = out.abs().double().mean().item()
    max_diff = None
    if a.compare:
        ours = read_safetensors(a.compare)["last_hidden_state"]
        if ours.shape != out.shape:
            sys.exit(f"torch_infer: {a.compare} has shape {tuple(ours.shape)}, PyTorch's output {tuple(out.shape)}")
        max_diff = (ours - out).abs().max().item()

    med = statistics.median(seconds)
    tokens = a.batch * a.seq
    blas = loaded_blas()
    result = {
        "impl": "pytorch", "torch": torch.__version__, "batch": a.batch, "seq": a.seq, "threads": a.threads,
        "reps": len(seconds), "seconds_median": med, "seconds_min": min(seconds), "seconds_max": max(seconds),
        "tokens_per_second": tokens / med, "mean_abs_output": mean_abs, "max_abs_diff_vs_roformer_cpp": max_diff,
        "max_abs_output": out.abs().max().item(),
        "blas": " ".join(os.path.basename(p) for p in blas), "blas_kind": blas_kind(blas),
        "openblas_core": openblas_corename(blas),
    }
    if a.json:
        print(json.dumps(result))
    else:
        print(f"pytorch {torch.__version__}  B={a.batch} T={a.seq}, {a.threads} thread(s): median {med:.4f} s over "
              f"{len(seconds)} reps -> {tokens / med:.1f} tokens/s ({result['blas_kind']})")
        if max_diff is not None:
            print(f"  max |roformer.cpp - PyTorch| = {max_diff:.3g} (outputs up to {result['max_abs_output']:.3g})")


if __name__ == "__main__":
    main()
