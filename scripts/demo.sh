#!/usr/bin/env bash
# Builds roformer.cpp and runs its main job on the embedded default.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
cmake --preset release >/dev/null
cmake --build --preset release -j "$(nproc)" --target roformer_cli
exec build/release/roformer demo "$@"
