# shellcheck shell=bash
# Sourced by the benchmark scripts that run a peer from npm (bench_ort_env.sh
# for ONNX Runtime, bench_tokenize.sh for HF's tokenizers): Node.js and npm
# from Debian when missing, and npm_package DIR NAME VERSION, which installs
# NAME@VERSION into DIR/node_modules unless that version is there already
# (extra environment for npm goes before the call, as for any command).
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  echo "installing nodejs and npm"
  SUDO=""
  if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends nodejs npm >/dev/null
fi
npm_package() {
  local dir=$1 name=$2 version=$3
  if [ ! -f "$dir/node_modules/$name/package.json" ] ||
    ! grep -q "\"version\": \"$version\"" "$dir/node_modules/$name/package.json"; then
    echo "installing $name $version into $dir"
    mkdir -p "$dir"
    npm install --prefix "$dir" --no-audit --no-fund --loglevel=error "$name@$version" >/dev/null
  fi
}
