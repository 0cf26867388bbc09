#!/usr/bin/env bash
# Installs the Debian packages roformer.cpp needs to build, test and benchmark.
# Safe to run repeatedly: it installs only what is missing.
set -euo pipefail

packages=(
  cmake ninja-build g++ clang pkg-config
  libclang-rt-dev          # clang's libFuzzer and sanitizer runtimes (only recommended by clang) for scripts/fuzz.sh
  libgtest-dev libgmock-dev libbenchmark-dev
  libopenblas-openmp-dev   # OpenMP build of OpenBLAS: the pthread build oversubscribes with our OpenMP threads
  libdnnl-dev              # oneDNN: AVX-512 / AMX GEMM kernels (f32 and bf16) where the CPU has them
  ocl-icd-opencl-dev       # only recommended by libdnnl-dev, but its CMake config requires OpenCL
  libomp-dev
  nlohmann-json3-dev libutf8proc-dev libcli11-dev
  python3-jieba            # ships jieba's dict.txt, the dictionary of the Chinese tokenizer
  zlib1g-dev
)

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if ((${#missing[@]})); then
  echo "setup: installing ${missing[*]}"
  SUDO=""
  if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
