# shellcheck shell=bash
# Sourced by the benchmark scripts that run ONNX Runtime (bench_infer.sh,
# bench_generate.sh): Node.js and npm from Debian, onnxruntime-node
# $ORT_VERSION from npm into build/ort (its package carries the CPU
# libraries; the CUDA download of its install script is skipped). Sets and
# exports ORT_NODE_PATH, where bench/ort_common.js looks for it.
ORT_VERSION="${ORT_VERSION:-1.20.1}"
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  echo "installing nodejs and npm"
  SUDO=""
  if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends nodejs npm >/dev/null
fi
ORT_DIR=build/ort
if [ ! -f "$ORT_DIR/node_modules/onnxruntime-node/package.json" ] ||
  ! grep -q "\"version\": \"$ORT_VERSION\"" "$ORT_DIR/node_modules/onnxruntime-node/package.json"; then
  echo "installing onnxruntime-node $ORT_VERSION into $ORT_DIR"
  mkdir -p "$ORT_DIR"
  ONNXRUNTIME_NODE_INSTALL_CUDA=skip npm install --prefix "$ORT_DIR" --no-audit --no-fund --loglevel=error \
    "onnxruntime-node@$ORT_VERSION" >/dev/null
fi
export ORT_NODE_PATH="$ORT_DIR"
