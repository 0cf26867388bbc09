#!/usr/bin/python3
"""The PyTorch side of bench_batching: the same batches of token ids
(`bench_batching --write-batches FILE`) through HF's RoFormer encoder written
in plain PyTorch (bench/torch_train.py's module), each plan timed per pass.

    torch_batching.py --model DIR --batches FILE [--threads N] [--rounds R] [--json]

Each batch is right-padded to its longest text (id 0, attention mask 0), as
HF's tokenizers pad. One untimed pass of the first plan comes first; then each
round times one pass of every plan, the order rotating from round to round.
"""
import argparse
import json
import statistics
import time

import torch

from torch_infer import load_encoder


def padded(batch):
    T = max(len(ids) for ids in batch)
    ids = torch.zeros(len(batch), T, dtype=torch.long)
    mask = torch.zeros(len(batch), T, dtype=torch.long)
    for r, row in enumerate(batch):
        ids[r, : len(row)] = torch.tensor(row, dtype=torch.long)
        mask[r, : len(row)] = 1
    return ids, mask, torch.zeros_like(ids)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", required=True, help="directory written by bench_infer --dump")
    ap.add_argument("--batches", required=True, help="JSON written by bench_batching --write-batches")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()

    torch.set_num_threads(a.threads)
    model, _ = load_encoder(a.model)
    with open(a.batches) as f:
        plans = json.load(f)["plans"]
    inputs = [[padded(b) for b in p["batches"]] for p in plans]
    seconds = [[] for _ in plans]
    with torch.inference_mode():
        for batch in inputs[0]:  # warm-up
            model(*batch)
        for rnd in range(a.rounds):
            for k in range(len(plans)):
                p = (k + rnd) % len(plans)
                t0 = time.perf_counter()
                for batch in inputs[p]:
                    model(*batch)
                seconds[p].append(time.perf_counter() - t0)
    real = sum(len(ids) for b in plans[0]["batches"] for ids in b)
    result = {"impl": "pytorch", "torch": torch.__version__, "threads": a.threads, "real_tokens": real,
              "plans": [{"name": p["name"], "seconds": s, "median_s": statistics.median(s), "best_s": min(s)}
                        for p, s in zip(plans, seconds)]}
    if a.json:
        print(json.dumps(result))
    else:
        base = result["plans"][0]["median_s"]
        for p in result["plans"]:
            print(f"pytorch {p['name']:24s} median {p['median_s']:.3f} s, {real / p['median_s']:.0f} real tokens/s, "
                  f"{base / p['median_s']:.2f}x input order")


if __name__ == "__main__":
    main()
