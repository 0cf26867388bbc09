# Sourced by the benchmark scripts that compare with PyTorch: installs Debian's
# python3-torch when missing and makes sure PyTorch runs on OpenBLAS.
#
# Sets: PY (Debian's interpreter), openblas_dir (put it first on
# LD_LIBRARY_PATH for every PyTorch run), torch_default_blas and torch_blas
# (JSON: the BLAS PyTorch maps without and with that directory).
# Needs: bench/torch_train.py (its --blas-only mode), and the caller's name in
# BENCH_NAME for messages.

# Debian's interpreter: python3-torch is installed for it, not for a pyenv or venv python3 earlier in PATH.
PY=/usr/bin/python3

if ! dpkg-query -W -f='${Status}' python3-torch 2>/dev/null | grep -q "install ok installed"; then
  echo "$BENCH_NAME: installing python3-torch"
  SUDO=""
  if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends python3-torch >/dev/null
fi

# Debian's torch links libblas.so.3, which the alternatives system may point at
# the slow reference BLAS. Put OpenBLAS's libblas.so.3 first on the library path
# and check, from inside the process, which library was really mapped.
multiarch="$(gcc -print-multiarch 2>/dev/null || echo x86_64-linux-gnu)"
openblas_dir=""
for d in "/usr/lib/$multiarch/openblas-openmp" "/usr/lib/$multiarch/openblas-pthread"; do
  if [ -e "$d/libblas.so.3" ]; then openblas_dir="$d"; break; fi
done
if [ -z "$openblas_dir" ]; then
  echo "$BENCH_NAME: no OpenBLAS libblas.so.3 found (install libopenblas-openmp-dev)" >&2
  exit 1
fi
torch_default_blas="$($PY bench/torch_train.py --blas-only)"
torch_blas="$(LD_LIBRARY_PATH="$openblas_dir${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" $PY bench/torch_train.py --blas-only)"
echo "PyTorch BLAS by default:        $torch_default_blas"
echo "PyTorch BLAS with OpenBLAS dir: $torch_blas"
if ! grep -q '"kind": "OpenBLAS"' <<<"$torch_blas"; then
  echo "$BENCH_NAME: PyTorch did not load OpenBLAS even with LD_LIBRARY_PATH=$openblas_dir" >&2
  exit 1
fi
if ! grep -q '"kind": "OpenBLAS"' <<<"$torch_default_blas"; then
  echo
  echo "!!! WARNING: without LD_LIBRARY_PATH, PyTorch loads $(sed 's/.*"kind": "\([^"]*\)".*/\1/' <<<"$torch_default_blas"),"
  echo "!!! not OpenBLAS. Every PyTorch number below uses OpenBLAS through LD_LIBRARY_PATH."
  echo
fi
