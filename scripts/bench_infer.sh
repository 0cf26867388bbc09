#!/usr/bin/env bash
# Inference benchmark: tokens/s of the RoFormer encoder (base shape: vocab
# 50k, 12 layers, hidden 768, 12 heads, FFN 3072) for roformer.cpp, PyTorch
# 1.13 (Debian's python3-torch) and ONNX Runtime (npm onnxruntime-node, CPU,
# running PyTorch's ONNX export of the model) on the same weights and ids, at
# (batch, seq) = (1, 128), (8, 128), (1, 512), (4, 512), (8, 512) with 1 and 2
# threads, alternating in one run; plus
# the peak resident memory of roformer.cpp's memory-mapped safetensors path.
# Prints a Markdown report and writes it to docs/bench_infer.md.
#
#   scripts/bench_infer.sh
#
# Environment knobs (defaults in brackets): SHAPE [base]; CASES ["1x128 8x128
# 1x512 4x512 8x512"] (BATCHxSEQ); THREADS ["1 2"]; ROUNDS [1] alternating C++/PyTorch runs
# per case, the best median is reported; MIN_REPS [3] and MIN_SECONDS [3]
# timed forwards per run (at least that many, and at least that long, after
# one warm-up forward); OUT [docs/bench_infer.md].
set -euo pipefail
cd "$(dirname "$0")/.."

SHAPE="${SHAPE:-base}"
CASES="${CASES:-1x128 8x128 1x512 4x512 8x512}"
THREADS="${THREADS:-1 2}"
ROUNDS="${ROUNDS:-1}"
MIN_REPS="${MIN_REPS:-3}"
MIN_SECONDS="${MIN_SECONDS:-3}"
OUT="${OUT:-docs/bench_infer.md}"
ORT_VERSION="${ORT_VERSION:-1.20.1}"

scripts/setup.sh
cmake --preset release >/dev/null
cmake --build --preset release --target bench_infer -j "$(nproc)"
BENCH=build/release/bench/bench_infer

BENCH_NAME=bench_infer
. scripts/bench_torch_env.sh
torch_env=(env LD_LIBRARY_PATH="$openblas_dir${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}")

# ONNX Runtime: Node.js from Debian, onnxruntime-node from npm (its package
# carries the CPU libraries; the CUDA download of its install script is skipped).
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  echo "bench_infer: installing nodejs and npm"
  SUDO=""
  if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends nodejs npm >/dev/null
fi
ORT_DIR=build/ort
if [ ! -f "$ORT_DIR/node_modules/onnxruntime-node/package.json" ] ||
  ! grep -q "\"version\": \"$ORT_VERSION\"" "$ORT_DIR/node_modules/onnxruntime-node/package.json"; then
  echo "bench_infer: installing onnxruntime-node $ORT_VERSION into $ORT_DIR"
  mkdir -p "$ORT_DIR"
  ONNXRUNTIME_NODE_INSTALL_CUDA=skip npm install --prefix "$ORT_DIR" --no-audit --no-fund --loglevel=error \
    "onnxruntime-node@$ORT_VERSION" >/dev/null
fi
export ORT_NODE_PATH="$ORT_DIR"

work="$(mktemp -d "${TMPDIR:-/tmp}/bench_infer.XXXXXX")"
trap 'rm -rf "$work"' EXIT
results="$work/results.jsonl"
: >"$results"
record() {  # kind round load json: one line of results.jsonl
  $PY -c 'import json, sys
r = json.loads(sys.argv[4])
r.update(kind=sys.argv[1], round=int(sys.argv[2]), load=float(sys.argv[3]))
print(json.dumps(r))' "$1" "$2" "$3" "$4" >>"$results"
}
load1() { cut -d' ' -f1 /proc/loadavg; }
sgemm() {
  for t in $THREADS; do
    record sgemm "$1" "$(load1)" "$(OMP_NUM_THREADS=$t "$BENCH" --sgemm --threads "$t" --json)"
  done
}

model="$work/model"
echo "== writing the $SHAPE model and ids"
"$BENCH" --dump "$model" --shape "$SHAPE"
"${torch_env[@]}" $PY bench/torch_infer.py --model "$model" --export-onnx "$work/model.onnx"

load_start="$(cut -d' ' -f1-3 /proc/loadavg)"
sgemm 1
echo "== peak memory of the mmap path (one process each)"
for bt in "1 128" "8 512"; do
  set -- $bt
  record rss 1 "$(load1)" "$(OMP_NUM_THREADS=1 "$BENCH" --rss --model "$model" --batch "$1" --seq "$2" --json)"
done
for case in $CASES; do
  b="${case%x*}"
  s="${case#*x}"
  for t in $THREADS; do
    for ((round = 1; round <= ROUNDS; round++)); do
      out="$work/out_${b}_${s}.safetensors"
      echo "== B=$b T=$s, $t thread(s), round $round"
      l="$(load1)"
      cpp="$(OMP_NUM_THREADS=$t "$BENCH" --model "$model" --batch "$b" --seq "$s" --threads "$t" \
        --min-reps "$MIN_REPS" --min-seconds "$MIN_SECONDS" --save-output "$out" --json)"
      echo "$cpp"
      record run "$round" "$l" "$cpp"
      l="$(load1)"
      py="$(OMP_NUM_THREADS=$t "${torch_env[@]}" $PY bench/torch_infer.py --model "$model" --batch "$b" --seq "$s" \
        --threads "$t" --min-reps "$MIN_REPS" --min-seconds "$MIN_SECONDS" --compare "$out" --json)"
      echo "$py"
      record run "$round" "$l" "$py"
      l="$(load1)"
      ortr="$(OMP_NUM_THREADS=$t node bench/ort_infer.js --onnx "$work/model.onnx" --inputs "$model/inputs.safetensors" \
        --batch "$b" --seq "$s" --threads "$t" --min-reps "$MIN_REPS" --min-seconds "$MIN_SECONDS" --compare "$out")"
      echo "$ortr"
      record run "$round" "$l" "$ortr"
    done
  done
done
sgemm 2
load_end="$(cut -d' ' -f1-3 /proc/loadavg)"

cpu_model="$(lscpu | sed -n 's/^Model name:[[:space:]]*//p' | head -1)"
has_avx512=no
if grep -qw avx512f /proc/cpuinfo; then has_avx512=yes; fi
commit="$(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
if [ -n "$(git status --porcelain 2>/dev/null)" ]; then commit="$commit (with uncommitted changes)"; fi
mkdir -p "$(dirname "$OUT")"
$PY - "$results" "$OUT" "$cpu_model" "$(nproc)" "$load_start" "$load_end" "$openblas_dir" \
  "$torch_default_blas" "$torch_blas" "$commit" "$ROUNDS" "$MIN_REPS" "$MIN_SECONDS" "$has_avx512" "$SHAPE" <<'PYEOF'
import json, os, sys

(results, out, cpu_model, nproc, load_start, load_end, openblas_dir, torch_default_blas, torch_blas, commit,
 rounds, min_reps, min_seconds, has_avx512, shape) = sys.argv[1:]
rows = [json.loads(l) for l in open(results)]
sgemm = {}
for r in rows:
    if r["kind"] == "sgemm":
        sgemm[r["threads"]] = max(sgemm.get(r["threads"], 0.0), r["gflops_per_second"])
runs = [r for r in rows if r["kind"] == "run"]
rss = [r for r in rows if r["kind"] == "rss"]
cases = []
for r in runs:
    key = (r["batch"], r["seq"], r["threads"])
    if key not in cases:
        cases.append(key)

def best(key, impl):
    rs = [r for r in runs if (r["batch"], r["seq"], r["threads"]) == key and r["impl"] == impl]
    return max(rs, key=lambda r: r["tokens_per_second"])

L = ["# Inference: roformer.cpp against PyTorch and ONNX Runtime", ""]
L.append("Generated by `scripts/bench_infer.sh`. Forward passes of the RoFormer encoder (HF's `RoFormerModel`,")
L.append("last hidden state, no head), timed for roformer.cpp (`bench/bench_infer.cpp`, weights loaded through the")
L.append("memory-mapped safetensors path), PyTorch (`bench/torch_infer.py`: HF's RoFormer written in plain")
L.append("PyTorch, run under `torch.inference_mode()`) and ONNX Runtime (`bench/ort_infer.js`: onnxruntime-node's")
L.append("CPU provider on PyTorch's ONNX export of that module, all graph optimisations on) with the same weights")
L.append(f"and the same token ids, alternating in one run. Shape **{shape}**.")
L.append("")
L.append("## Throughput")
L.append("")
L.append("| batch | seq | threads | roformer.cpp tok/s | PyTorch tok/s | ONNX Runtime tok/s | vs PyTorch | vs ONNX Runtime | roformer.cpp GFLOP/s | sgemm 768³ in this run | roformer.cpp / sgemm | max \\|Δ\\| PyTorch | max \\|Δ\\| ONNX Runtime |")
L.append("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
worst = 0.0
def max_diff(key, impl):
    return max(r["max_abs_diff_vs_roformer_cpp"] for r in runs
               if (r["batch"], r["seq"], r["threads"]) == key and r["impl"] == impl)
for key in cases:
    c, p, o = best(key, "roformer.cpp"), best(key, "pytorch"), best(key, "onnxruntime")
    dp, do = max_diff(key, "pytorch"), max_diff(key, "onnxruntime")
    worst = max(worst, dp, do)
    peak = sgemm.get(key[2])
    L.append(f"| {key[0]} | {key[1]} | {key[2]} | {c['tokens_per_second']:.0f} | {p['tokens_per_second']:.0f} | "
             f"{o['tokens_per_second']:.0f} | {c['tokens_per_second'] / p['tokens_per_second']:.2f}x | "
             f"{c['tokens_per_second'] / o['tokens_per_second']:.2f}x | {c['gflops_per_second']:.1f} | "
             + (f"{peak:.1f} | {c['gflops_per_second'] / peak:.0%}" if peak else "– | –") + f" | {dp:.1e} | {do:.1e} |")
L.append("")
L.append("vs X = roformer.cpp tokens/s ÷ X's tokens/s (above 1: roformer.cpp is faster). GFLOP/s counts the")
L.append("matrix products only: per layer 2N(4H² + 2HI) for the projections and FFN and 4BT²H for QKᵀ and PV")
L.append("(N = B·T tokens); LayerNorm, GELU, softmax and RoPE are not counted. The last column is the largest")
L.append("absolute differences between roformer.cpp's last hidden states and the other implementation's for that case")
L.append(f"(largest over all cases: {worst:.1e}; the hidden states are LayerNorm outputs of magnitude ~1–5).")
L.append("")
L.append("## Peak memory of the mmap path")
L.append("")
L.append("| forward | weights (model.safetensors) | RSS after loading | peak RSS | peak ÷ weights |")
L.append("|---|---|---|---|---|")
for r in rss:
    L.append(f"| B={r['batch']}, T={r['seq']} | {r['weights_bytes'] / 1e6:.1f} MB | {r['rss_after_load'] / 1e6:.1f} MB | "
             f"{r['peak_rss'] / 1e6:.1f} MB | {r['peak_over_weights']:.2f}x |")
L.append("")
L.append("One process per row: load the model from its directory, run one forward, read `VmHWM` (peak resident")
L.append("set) from `/proc/self/status`. F32 tensors are used in place from the mapping, so loading costs")
L.append("almost nothing until the first forward pages the weights in; the peak is then the weights plus the")
L.append("activations of that forward plus the program itself (libraries, OpenBLAS buffers).")
L.append("")
L.append("## Every run")
L.append("")
L.append("| batch | seq | threads | round | implementation | load at start | reps | median (s) | min (s) | max (s) | tok/s |")
L.append("|---|---|---|---|---|---|---|---|---|---|---|")
for r in runs:
    L.append(f"| {r['batch']} | {r['seq']} | {r['threads']} | {r['round']} | {r['impl']} | {r['load']:.2f} | {r['reps']} | "
             f"{r['seconds_median']:.4f} | {r['seconds_min']:.4f} | {r['seconds_max']:.4f} | {r['tokens_per_second']:.0f} |")
L.append("")
L.append("sgemm 768³ GFLOP/s (start, end of the run): " + "; ".join(
    f"{t} thread(s): " + ", ".join(f"{r['gflops_per_second']:.1f}" for r in rows if r["kind"] == "sgemm" and r["threads"] == t)
    for t in sorted(sgemm)) + ". \"load at start\" is the 1-minute load average when the run began.")
L.append("")
L.append("## Machine")
L.append("")
cpp_any = next((r for r in runs if r["impl"] == "roformer.cpp"), {})
torch_any = next((r for r in runs if r["impl"] == "pytorch"), {})
used_blas, default_blas = json.loads(torch_blas), json.loads(torch_default_blas)
L.append(f"- CPU: {cpu_model}; `nproc` = {nproc}; AVX-512: {has_avx512}")
L.append(f"- load average (1, 5, 15 min): {load_start} at the start, {load_end} at the end")
try:
    peak_load = max([float(load_start.split()[0]), float(load_end.split()[0])] + [r["load"] for r in rows])
except ValueError:
    peak_load = 0.0
if peak_load > 0.5:
    L.append(f"- **the machine was shared during this run** (1-minute load average up to {peak_load:.2f} on {nproc} "
             "cores): absolute numbers are pessimistic; both implementations ran alternately under the same conditions")
L.append(f"- roformer.cpp: commit {commit}, release preset; BLAS `{cpp_any.get('blas', '?')}` "
         f"(OpenBLAS core `{cpp_any.get('openblas_core', '?')}`)")
L.append(f"- PyTorch {torch_any.get('torch', '?')} (Debian `python3-torch`), run with `LD_LIBRARY_PATH` = the "
         f"`{os.path.basename(openblas_dir)}` directory; BLAS mapped in the process: "
         f"`{' '.join(os.path.basename(x) for x in used_blas['blas'])}` = **{used_blas['kind']}** "
         f"(core `{used_blas['openblas_core']}`)")
ort_any = next((r for r in runs if r["impl"] == "onnxruntime"), {})
L.append(f"- ONNX Runtime {ort_any.get('onnxruntime', '?')} (npm `onnxruntime-node`, CPU execution provider, "
         "`intraOpNumThreads` = threads, `interOpNumThreads` = 1, sequential execution, graph optimisation level all), "
         "on Node.js " + os.popen("node --version").read().strip() + "; the model is exported by `torch.onnx.export` "
         "(opset 14, dynamic batch and sequence axes) from the same PyTorch module")
if default_blas["kind"] == "OpenBLAS":
    L.append("- without `LD_LIBRARY_PATH`, this machine's PyTorch also loads OpenBLAS (Debian's alternatives)")
else:
    L.append(f"- **WARNING: without `LD_LIBRARY_PATH`, PyTorch loads {default_blas['kind']}**, many times slower; "
             "the numbers above use OpenBLAS")
L.append("")
L.append("## Method")
L.append("")
L.append("- `bench_infer --dump` writes a freshly initialised model (`RoFormerModel::random_init`, HF's init scheme,")
L.append("  seed 1234, `save_pretrained`) and token ids (8 × 512, uniform over the vocabulary, all attended, token")
L.append("  type 0); a case (B, T) uses the first B rows and T columns. All three load those files.")
L.append(f"- Each run: one untimed warm-up forward, then at least {min_reps} timed forwards and at least {min_seconds} s")
L.append("  of them; tokens/s = B·T ÷ the median forward time. Threads: `ExecContext{threads}` and `torch.set_num_threads`,")
L.append(f"  ONNX Runtime's `intraOpNumThreads`, plus `OMP_NUM_THREADS` for all three. {rounds} round(s) per case,")
L.append("  roformer.cpp, then PyTorch, then ONNX Runtime.")
L.append("- Yardstick: the best of 30 OpenBLAS `sgemm` 768×768×768 products at the start and the end of the run.")
text = "\n".join(L) + "\n"
open(out, "w").write(text)
print(text)
PYEOF
echo "bench_infer: wrote $OUT"
