#!/usr/bin/env bash
# Builds roformer.cpp and runs its main job on the embedded default: MLM
# pre-training of a small RoFormer on the committed Brown-corpus sample
# (a few minutes on 2 cores), evaluation on held-out text, an HF directory
# under runs/demo/final, and fill-mask predictions from it.
# Extra arguments go to `roformer pretrain` (see `roformer pretrain --help`).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
cmake --preset release >/dev/null
cmake --build --preset release -j "$(nproc)" --target roformer_cli
exec build/release/roformer pretrain --threads "$(nproc)" --out runs/demo "$@"
