# shellcheck shell=bash
# Sourced by the benchmark scripts that run ONNX Runtime (bench_infer.sh,
# bench_generate.sh): Node.js and npm from Debian, onnxruntime-node
# $ORT_VERSION from npm into build/ort (its package carries the CPU
# libraries; the CUDA download of its install script is skipped). Sets and
# exports ORT_NODE_PATH, where bench/ort_common.js looks for it.
ORT_VERSION="${ORT_VERSION:-1.20.1}"
. scripts/bench_npm.sh
ORT_DIR=build/ort
ONNXRUNTIME_NODE_INSTALL_CUDA=skip npm_package "$ORT_DIR" onnxruntime-node "$ORT_VERSION"
export ORT_NODE_PATH="$ORT_DIR"
