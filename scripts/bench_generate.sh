#!/usr/bin/env bash
# Generation benchmark: greedy decoding with a causal RoFormer and a KV cache
# (base shape: vocab 50k, 12 layers, hidden 768, 12 heads, FFN 3072) for
# roformer.cpp (fp32, bf16 products, and int8 products where the CPU has int8
# dot products or AVX2) against PyTorch 1.13 (Debian's python3-torch, on OpenBLAS) and
# ONNX Runtime (npm onnxruntime-node, CPU, on PyTorch's ONNX export of one
# decoding step with the cache as inputs and outputs) on the same weights and
# prompt, alternating in one run: the prompt's forward
# (time to the first new token) and the one-token steps after it, which read
# every weight once per token and so are set against the memory's read rate
# measured in the same run. Prints a Markdown report and writes it to
# docs/bench_generate.md.
#
#   scripts/bench_generate.sh
#
# Environment knobs (defaults in brackets): SHAPE [base]; PROMPTS ["128 512"]
# prompt lengths; NEW [64] tokens generated per run; THREADS ["1 2"]; ROUNDS
# [2] rounds of every implementation per case (every second one in reverse
# order), the best median is reported; REPS [3] timed generations per run
# after one warm-up; OUT [docs/bench_generate.md]; ORT_VERSION [1.20.1].
set -euo pipefail
cd "$(dirname "$0")/.."

SHAPE="${SHAPE:-base}"
PROMPTS="${PROMPTS:-128 512}"
NEW="${NEW:-64}"
THREADS="${THREADS:-1 2}"
ROUNDS="${ROUNDS:-2}"
REPS="${REPS:-3}"
OUT="${OUT:-docs/bench_generate.md}"

BENCH_NAME=bench_generate
. scripts/bench_prelude.sh
. scripts/bench_ort_env.sh

model="$work/model"
echo "== writing the $SHAPE causal LM and its prompt"
"$BENCH" --dump "$model" --shape "$SHAPE"
echo "== exporting one decoding step to ONNX"
"${torch_env[@]}" $PY bench/torch_generate.py --model "$model" --export-onnx "$work/step.onnx"
bandwidth() {
  for t in $THREADS; do
    record bandwidth "$1" "$(load1)" "$(OMP_NUM_THREADS=$t "$BENCH" --bandwidth --model "$model" --threads "$t" --json)"
  done
}

has_int8=no
# int8 dot products (VNNI), or AVX2's 16-bit pair products (kernels/int8_panels.h).
if grep -qw -E "avx512_vnni|avx_vnni|avx2" /proc/cpuinfo; then has_int8=yes; fi
load_start="$(cut -d' ' -f1-3 /proc/loadavg)"
bandwidth 1
for p in $PROMPTS; do
  for t in $THREADS; do
    for ((round = 1; round <= ROUNDS; round++)); do
      logits="$work/logits_$p.safetensors"
      echo "== prompt $p, $NEW new tokens, $t thread(s), round $round"
      common=(--model "$model" --prompt "$p" --new "$NEW" --threads "$t" --reps "$REPS" --json)
      items=(f32 bf16)
      if [ "$has_int8" = yes ]; then items+=(int8); fi
      items+=(pytorch onnxruntime)
      # fp32 writes the logits the others are compared with; in a reversed
      # round it runs last, against the first round's file.
      alternate_order "$round" items
      for item in "${items[@]}"; do
        l="$(load1)"
        case "$item" in
          f32) r="$(OMP_NUM_THREADS=$t "$BENCH" "${common[@]}" --save-logits "$logits")" ;;
          pytorch)
            r="$(OMP_NUM_THREADS=$t "${torch_env[@]}" $PY bench/torch_generate.py --model "$model" --prompt "$p" \
              --new "$NEW" --threads "$t" --reps "$REPS" --compare "$logits" --json)" ;;
          onnxruntime)
            r="$(OMP_NUM_THREADS=$t node bench/ort_generate.js --onnx "$work/step.onnx" --model "$model" --prompt "$p" \
              --new "$NEW" --threads "$t" --reps "$REPS" --compare "$logits")" ;;
          *) r="$(OMP_NUM_THREADS=$t "$BENCH" "${common[@]}" --dtype "$item" --compare "$logits")" ;;
        esac
        echo "$r" | cut -c1-240
        record run "$round" "$l" "$r"
      done
    done
  done
done
bandwidth 2
load_end="$(cut -d' ' -f1-3 /proc/loadavg)"

cpu_model="$(lscpu | sed -n 's/^Model name:[[:space:]]*//p' | head -1)"
commit="$(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
if [ -n "$(git status --porcelain 2>/dev/null)" ]; then commit="$commit (with uncommitted changes)"; fi
mkdir -p "$(dirname "$OUT")"
$PY - "$results" "$OUT" "$cpu_model" "$(nproc)" "$load_start" "$load_end" "$openblas_dir" "$torch_blas" "$commit" \
  "$ROUNDS" "$REPS" "$NEW" "$SHAPE" <<'PYEOF'
import json, os, sys

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, "scripts")
from bench_notes import kept_notes, notes_lines

(results, out, cpu_model, nproc, load_start, load_end, openblas_dir, torch_blas, commit, rounds, reps, new,
 shape) = sys.argv[1:]
rows = [json.loads(l) for l in open(results)]
bandwidth = {}  # threads -> best GB/s of the summing pass
for r in rows:
    if r["kind"] == "bandwidth":
        bandwidth[r["threads"]] = max(bandwidth.get(r["threads"], 0.0), r["gb_per_second"])
runs = [r for r in rows if r["kind"] == "run"]
cases = []
for r in runs:
    key = (r["prompt"], r["threads"])
    if key not in cases:
        cases.append(key)
NAMES = {"f32": "roformer.cpp", "bf16": "roformer.cpp bf16", "int8": "roformer.cpp int8"}

def of(key, impl):
    return [r for r in runs if (r["prompt"], r["threads"]) == key and r["impl"] == impl]

def best(key, impl, field):
    rs = of(key, impl)
    return min(rs, key=lambda r: r[field]) if rs else None

def fmt_ms(s):
    return f"{s * 1e3:.1f}"

L = ["# Generation: roformer.cpp against PyTorch and ONNX Runtime", ""]
L.append("Generated by `scripts/bench_generate.sh`. Greedy decoding with a causal RoFormer (HF's")
L.append("`RoFormerForCausalLM`, `is_decoder`, KV cache) on a freshly initialised model of shape "
         f"**{shape}**: the prompt's")
L.append("forward, which gives the first new token, then one forward per token on the cache. roformer.cpp")
L.append("(`bench/bench_generate.cpp`, weights loaded from the checkpoint directory) against PyTorch")
L.append("(`bench/torch_generate.py`: HF's RoFormer in plain PyTorch with its `past_key_values` scheme, under")
L.append("`torch.inference_mode()`) and ONNX Runtime (`bench/ort_generate.js`: onnxruntime-node's CPU provider on")
L.append("PyTorch's ONNX export of that decoding step, the cache as inputs and outputs, every graph optimisation")
L.append("on), same weights, same prompt, alternating in one run. All compute the LM head for the last position")
L.append("only (`ForwardOptions::logits_to_keep`).")
L.append("")
notes = kept_notes(out)
L += notes_lines(notes, "run")
L.append("")
L.append("## Steps after the prompt")
L.append("")
L.append("A step runs one token through every layer and the vocabulary product: it reads every weight matrix")
L.append("once, and the keys and values of every cached position, and does little arithmetic on each value,")
L.append("so memory, not the FMA units, bounds it. \"GB/s\" is the bytes an average step reads over the median")
L.append("step: the weight matrices at the width the products read them (fp32 4, bf16 2, int8 1 per value)")
L.append("and the KV cache at its own (`KvCache::dtype()`: fp32 with fp32 products, bf16 with bf16 and int8")
L.append("products here); \"÷ read rate\" divides it by the best of a pass summing a buffer as large as the fp32")
L.append("weights on the same threads (`bench_generate --bandwidth`): " +
         "; ".join(f"{v:.1f} GB/s on {t} thread(s)" for t, v in sorted(bandwidth.items())) + ".")
L.append("")
L.append("| prompt | threads | roformer.cpp fp32 ms/token | bf16 | int8 | PyTorch | ONNX Runtime | "
         "fp32 / bf16 / int8 vs PyTorch | fp32 / bf16 / int8 vs ONNX Runtime | GB/s fp32 / bf16 / int8 | "
         "÷ read rate fp32 / bf16 / int8 | same tokens |")
L.append("|---|---|---|---|---|---|---|---|---|---|---|---|")
for key in cases:
    p, o = best(key, "pytorch", "step_seconds"), best(key, "onnxruntime", "step_seconds")
    cells = [best(key, NAMES[d], "step_seconds") for d in ("f32", "bf16", "int8")]
    def ms(r):
        return fmt_ms(r["step_seconds"]) if r else "–"
    def vs(r, peer):
        return f"{peer['step_seconds'] / r['step_seconds']:.2f}x" if r and peer else "–"
    def gbs(r):
        return f"{r['step_total_gb_per_second']:.1f}" if r else "–"
    top = bandwidth.get(key[1])
    def share(r):
        return f"{r['step_total_gb_per_second'] / top:.0%}" if r and top else "–"
    same = all(r["tokens"] == cells[0]["tokens"] for r in of(key, NAMES["f32"]) + of(key, "pytorch")
               + of(key, "onnxruntime")) if cells[0] else False
    L.append(f"| {key[0]} | {key[1]} | {ms(cells[0])} | {ms(cells[1])} | {ms(cells[2])} | {ms(p)} | {ms(o)} | "
             f"{' / '.join(vs(r, p) for r in cells)} | {' / '.join(vs(r, o) for r in cells)} | "
             f"{' / '.join(gbs(r) for r in cells)} | {' / '.join(share(r) for r in cells)} | "
             f"{'yes' if same else 'no'} |")
L.append("")
L.append("vs X = X's median step time ÷ roformer.cpp's (above 1: roformer.cpp is faster); PyTorch and ONNX")
L.append("Runtime run fp32. \"same tokens\": every fp32 run of roformer.cpp, PyTorch and ONNX Runtime generated")
L.append(f"the same {new} tokens.")
L.append("")
L += notes_lines(notes, "steps")
L.append("")
L.append("## The prompt's forward (time to the first token)")
L.append("")
L.append("| prompt | threads | roformer.cpp fp32 ms | bf16 ms | int8 ms | PyTorch ms | ONNX Runtime ms | "
         "fp32 vs PyTorch | fp32 vs ONNX Runtime | max \\|Δ\\| PyTorch | max \\|Δ\\| ONNX Runtime | "
         "max \\|Δ\\| bf16 | max \\|Δ\\| int8 |")
L.append("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
for key in cases:
    c, h, q, p, o = (best(key, n, "prefill_seconds")
                     for n in (NAMES["f32"], NAMES["bf16"], NAMES["int8"], "pytorch", "onnxruntime"))
    def diff(impl, field):
        ds = [r[field] for r in of(key, impl) if r.get(field) is not None and r[field] >= 0]
        return f"{max(ds):.1e}" if ds else "–"
    def pre(r):
        return fmt_ms(r["prefill_seconds"]) if r else "–"
    def vs(peer):
        return f"{peer['prefill_seconds'] / c['prefill_seconds']:.2f}x" if peer else "–"
    L.append(f"| {key[0]} | {key[1]} | {pre(c)} | {pre(h)} | {pre(q)} | {pre(p)} | {pre(o)} | {vs(p)} | {vs(o)} | "
             f"{diff('pytorch', 'max_abs_diff_vs_roformer_cpp')} | {diff('onnxruntime', 'max_abs_diff_vs_roformer_cpp')} | "
             f"{diff(NAMES['bf16'], 'max_abs_diff_vs_compare')} | {diff(NAMES['int8'], 'max_abs_diff_vs_compare')} |")
L.append("")
L.append("max \\|Δ\\| = the largest absolute difference from roformer.cpp fp32's logits of the prompt's last position.")
L.append("")
L.append("## Every run")
L.append("")
L.append("| prompt | threads | round | implementation | load at start | prompt (ms) | median step (ms) | fastest step | "
         "slowest step | tokens/s |")
L.append("|---|---|---|---|---|---|---|---|---|---|")
for r in runs:
    L.append(f"| {r['prompt']} | {r['threads']} | {r['round']} | {r['impl']} | {r['load']:.2f} | "
             f"{fmt_ms(r['prefill_seconds'])} | {r['step_seconds'] * 1e3:.2f} | {r['step_seconds_min'] * 1e3:.2f} | "
             f"{r['step_seconds_max'] * 1e3:.2f} | {r['steps_per_second']:.1f} |")
L.append("")
L.append("Read rate, GB/s (start, end of the run): " + "; ".join(
    f"{t} thread(s): " + ", ".join(f"{r['gb_per_second']:.1f}" for r in rows if r["kind"] == "bandwidth" and r["threads"] == t)
    for t in sorted(bandwidth)) + ".")
L.append("")
L.append("## Machine and method")
L.append("")
used_blas = json.loads(torch_blas)
torch_any = next((r for r in runs if r["impl"] == "pytorch"), {})
L.append(f"- CPU: {cpu_model}; `nproc` = {nproc}; load average (1, 5, 15 min) {load_start} at the start, "
         f"{load_end} at the end")
L.append(f"- roformer.cpp: commit {commit}, release preset; PyTorch {torch_any.get('torch', '?')} (Debian "
         f"`python3-torch`) with `LD_LIBRARY_PATH` = the `{os.path.basename(openblas_dir)}` directory, BLAS mapped: "
         f"**{used_blas['kind']}**")
ort_any = next((r for r in runs if r["impl"] == "onnxruntime"), {})
L.append(f"- ONNX Runtime {ort_any.get('onnxruntime', '?')} (npm `onnxruntime-node`, CPU execution provider, every "
         "graph optimisation, `intraOpNumThreads` = the threads) on Node.js " + os.popen("node --version").read().strip()
         + "; one decoding step exported by `torch.onnx.export` (opset 14) from the PyTorch side's module, with")
L.append("  dynamic lengths for the new tokens and the cache: the prompt runs on an empty cache, each step feeds")
L.append("  the last step's `present.*` outputs back as `past_key_values.*`")
L.append("- `bench_generate --dump` writes the model (`RoFormerModel::random_init`, HF's init scheme, seed 1234,")
L.append("  `save_pretrained`) and a prompt of 512 ids drawn uniformly from the vocabulary; a case uses its first")
L.append(f"  ids. Each run: one untimed generation, then {reps} timed ones of {new} new tokens each; the prompt's")
L.append(f"  time is their median, the step time the median of all their steps. {rounds} round(s) per case, every")
L.append("  second one in reverse order; the best median of the rounds is reported. Threads: `ExecContext{threads}`,")
L.append("  `torch.set_num_threads` and `intraOpNumThreads`, plus `OMP_NUM_THREADS` for all.")
text = "\n".join(L) + "\n"
open(out, "w").write(text)
print(text)
PYEOF
echo "bench_generate: wrote $OUT"
