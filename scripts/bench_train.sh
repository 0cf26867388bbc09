#!/usr/bin/env bash
# Training-step benchmark: roformer.cpp against PyTorch 1.13 (Debian's
# python3-torch) on the same RoFormer masked-LM, the same initial weights and
# the same batch, with 1 and 2 threads. Prints a Markdown table and writes it,
# with the method and the machine, to docs/bench_train.md.
#
#   scripts/bench_train.sh
#
# Environment knobs (defaults in brackets): ROUNDS [2] alternating C++/PyTorch
# runs per (shape, threads), the best median of the rounds is reported;
# SMALL_STEPS [10], BASE_STEPS [5] timed steps; WARMUP [2] untimed steps;
# THREADS ["1 2"]; SHAPES ["small base"]; OUT [docs/bench_train.md];
# TEXT [data/sample/en_train.txt] the lines of the ragged real-text batches
# (TEXT="" leaves that part out).
set -euo pipefail
cd "$(dirname "$0")/.."

ROUNDS="${ROUNDS:-2}"
SMALL_STEPS="${SMALL_STEPS:-10}"
BASE_STEPS="${BASE_STEPS:-5}"
WARMUP="${WARMUP:-2}"
THREADS="${THREADS:-1 2}"
SHAPES="${SHAPES:-small base}"
OUT="${OUT:-docs/bench_train.md}"
TEXT="${TEXT-data/sample/en_train.txt}"

# --- dependencies, build, PyTorch on OpenBLAS, scratch folder ---
BENCH_NAME=bench_train
. scripts/bench_prelude.sh

# --- runs ---
record() {  # shape threads round load json: one line of results.jsonl (in place of the prelude's)
  $PY -c 'import json, sys
r = json.loads(sys.argv[5])
r.update(shape=sys.argv[1], threads=int(sys.argv[2]), round=int(sys.argv[3]), load=float(sys.argv[4]))
if r.get("precision") == "bf16":
    r["impl"] = "roformer.cpp bf16"
if r.get("text"):
    r["impl"] += " text" + ("" if r["impl"] == "pytorch" or r.get("skip_padding") else " padded")
print(json.dumps(r))' "$1" "$2" "$3" "$4" "$5" >>"$results"
}
sgemm() {  # the yardstick, once per thread count; run at the start and at the end
  for t in $THREADS; do
    local l
    l="$(load1)"
    record sgemm "$t" "$1" "$l" "$(OMP_NUM_THREADS=$t "$BENCH" --sgemm --threads "$t" --json)"
  done
}
# Mixed precision is timed where the CPU has native bf16 dot products.
has_bf16=no
if grep -qw avx512_bf16 /proc/cpuinfo; then has_bf16=yes; fi
load_start="$(cut -d' ' -f1-3 /proc/loadavg)"
sgemm 1
for shape in $SHAPES; do
  steps="$SMALL_STEPS"
  if [ "$shape" = base ]; then steps="$BASE_STEPS"; fi
  dir="$work/$shape"
  echo "== $shape: writing the initial model and batch"
  "$BENCH" --shape "$shape" --dump "$dir" --steps 1 --warmup 0 >/dev/null
  for t in $THREADS; do
    for ((round = 1; round <= ROUNDS; round++)); do
      echo "== $shape, $t thread(s), round $round: roformer.cpp"
      l="$(load1)"
      cpp="$(OMP_NUM_THREADS=$t "$BENCH" --shape "$shape" --threads "$t" --steps "$steps" --warmup "$WARMUP" --json)"
      echo "$cpp"
      record "$shape" "$t" "$round" "$l" "$cpp"
      if [ "$has_bf16" = yes ]; then
        echo "== $shape, $t thread(s), round $round: roformer.cpp, bf16 products"
        l="$(load1)"
        cpp="$(OMP_NUM_THREADS=$t "$BENCH" --shape "$shape" --threads "$t" --steps "$steps" --warmup "$WARMUP" \
          --precision bf16 --json)"
        echo "$cpp"
        record "$shape" "$t" "$round" "$l" "$cpp"
      fi
      echo "== $shape, $t thread(s), round $round: PyTorch"
      l="$(load1)"
      py="$(OMP_NUM_THREADS=$t "${torch_env[@]}" \
        $PY bench/torch_train.py --model "$dir" --threads "$t" --steps "$steps" --warmup "$WARMUP" --json)"
      echo "$py"
      record "$shape" "$t" "$round" "$l" "$py"
    done
  done
done

# Ragged batches of real text: each step a new batch of lines, right-padded to
# its longest; roformer.cpp with the padding skipped (its default) and kept,
# PyTorch on the same padded batches.
if [ -n "$TEXT" ]; then
  echo "== learning a vocab from $TEXT"
  build/release/roformer data vocab -c "$TEXT" -n 8000 -o "$work/vocab.txt" >/dev/null
  for shape in $SHAPES; do
    steps="$SMALL_STEPS"
    if [ "$shape" = base ]; then steps="$BASE_STEPS"; fi
    dir="$work/$shape-text"
    text_args=(--shape "$shape" --text "$TEXT" --vocab "$work/vocab.txt" --steps "$steps" --warmup "$WARMUP" --json)
    "$BENCH" "${text_args[@]}" --dump "$dir" >/dev/null
    for t in $THREADS; do
      for ((round = 1; round <= ROUNDS; round++)); do
        for keep in "" --keep-padding; do
          echo "== $shape, real text, $t thread(s), round $round: roformer.cpp ${keep:-(padding skipped)}"
          l="$(load1)"
          cpp="$(OMP_NUM_THREADS=$t "$BENCH" "${text_args[@]}" --threads "$t" $keep)"
          echo "$cpp"
          record "$shape" "$t" "$round" "$l" "$cpp"
        done
        echo "== $shape, real text, $t thread(s), round $round: PyTorch"
        l="$(load1)"
        py="$(OMP_NUM_THREADS=$t "${torch_env[@]}" $PY bench/torch_train.py --model "$dir" --text --threads "$t" \
          --steps "$steps" --warmup "$WARMUP" --json)"
        echo "$py"
        record "$shape" "$t" "$round" "$l" "$py"
      done
    done
  done
fi

sgemm 2
load_end="$(cut -d' ' -f1-3 /proc/loadavg)"

# --- report ---
cpu_model="$(lscpu | sed -n 's/^Model name:[[:space:]]*//p' | head -1)"
has_avx512=no
if grep -qw avx512f /proc/cpuinfo; then has_avx512=yes; fi
commit="$(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
if [ -n "$(git status --porcelain 2>/dev/null)" ]; then commit="$commit (with uncommitted changes)"; fi
mkdir -p "$(dirname "$OUT")"
$PY - "$results" "$OUT" "$cpu_model" "$(nproc)" "$load_start" "$load_end" "$openblas_dir" \
  "$torch_default_blas" "$torch_blas" "$commit" "$ROUNDS" "$WARMUP" "$SMALL_STEPS" "$BASE_STEPS" "$has_avx512" <<'PYEOF'
import json, os, sys

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, "scripts")
from bench_notes import kept_notes, notes_lines

(results, out, cpu_model, nproc, load_start, load_end, openblas_dir, torch_default_blas, torch_blas, commit,
 rounds, warmup, small_steps, base_steps, has_avx512) = sys.argv[1:]
rows = [json.loads(l) for l in open(results)]
sgemm = {}
for r in rows:
    if r["shape"] == "sgemm":
        sgemm[r["threads"]] = max(sgemm.get(r["threads"], 0.0), r["gflops_per_second"])
text_runs = [r for r in rows if r.get("text")]
runs = [r for r in rows if r["shape"] != "sgemm" and not r.get("text")]
keys = []
for r in runs:
    if (r["shape"], r["threads"]) not in keys:
        keys.append((r["shape"], r["threads"]))

def best(shape, threads, impl):
    rs = [r for r in runs if (r["shape"], r["threads"], r["impl"]) == (shape, threads, impl)]
    return max(rs, key=lambda r: r["tokens_per_second"]), rs

default_blas = json.loads(torch_default_blas)
used_blas = json.loads(torch_blas)
L = []
L.append("# Training step: roformer.cpp against PyTorch")
L.append("")
L.append("Generated by `scripts/bench_train.sh`. One training step of a RoFormer masked-LM, timed for")
L.append("roformer.cpp (`bench/bench_train.cpp`) and for PyTorch (`bench/torch_train.py`, the same")
L.append("architecture written in plain PyTorch) on the same initial weights and the same batch,")
L.append("alternating in one run.")
L.append("")
notes = kept_notes(out)
L += notes_lines(notes, "run")
L.append("")
L.append("## Results")
L.append("")
L.append("| shape | threads | roformer.cpp tok/s | PyTorch tok/s | ratio | first-step loss roformer.cpp | first-step loss PyTorch | rel. diff | roformer.cpp allocations/step |")
L.append("|---|---|---|---|---|---|---|---|---|")
worst_rel = 0.0
for shape, threads in keys:
    c, cs = best(shape, threads, "roformer.cpp")
    p, ps = best(shape, threads, "pytorch")
    rel = abs(c["first_loss"] - p["first_loss"]) / abs(p["first_loss"])
    worst_rel = max(worst_rel, rel)
    L.append(f"| {shape} | {threads} | {c['tokens_per_second']:.0f} | {p['tokens_per_second']:.0f} | "
             f"{c['tokens_per_second'] / p['tokens_per_second']:.2f}x | {c['first_loss']:.7f} | {p['first_loss']:.7f} | "
             f"{rel:.1e} | {c['allocs_per_step']:.0f} ({c['alloc_bytes_per_step'] / 1e6:.1f} MB, "
             f"{c['aligned_allocs_per_step']:.0f} aligned_alloc) |")
L.append("")
L.append("ratio = roformer.cpp tokens/s ÷ PyTorch tokens/s (above 1: roformer.cpp is faster).")
L.append(f"Largest relative difference of the first-step losses: {worst_rel:.1e}.")
setup = max(r.get("setup_aligned_allocs", 0) for r in runs if r["impl"] == "roformer.cpp")
L.append(f"Allocations are roformer.cpp's heap allocations inside one timed step (median), all threads; the")
L.append(f"aligned_alloc count is the part that went to Tensor-style aligned storage (the same hook counted")
L.append(f"{setup} such calls while the model was set up, so it is live).")
L.append("")
bf16_keys = [k for k in keys if any((r["shape"], r["threads"], r["impl"]) == (*k, "roformer.cpp bf16") for r in runs)]
if bf16_keys:
    L.append("### Mixed precision: bf16 products")
    L.append("")
    L.append("The same steps with `--precision bf16`: both operands of every matrix product rounded to bf16 and")
    L.append("summed in fp32 (oneDNN's bf16 matmul on AVX512-BF16), weights, gradients, AdamW and every other")
    L.append("step in fp32 (`kernels/gemm_bf16.h`). A product whose large operand few rows reuse stays fp32 (the")
    L.append("MLM decoder's tied embedding against a batch's masked tokens); the fused attention's products")
    L.append("run in bf16 too.")
    L.append("")
    L.append("| shape | threads | fp32 tok/s | bf16 tok/s | bf16 ÷ fp32 | bf16 ÷ PyTorch | last-step loss fp32 | last-step loss bf16 | rel. diff |")
    L.append("|---|---|---|---|---|---|---|---|---|")
    for shape, threads in bf16_keys:
        c, _ = best(shape, threads, "roformer.cpp")
        b, _ = best(shape, threads, "roformer.cpp bf16")
        p, _ = best(shape, threads, "pytorch")
        rel = abs(b["last_loss"] - c["last_loss"]) / abs(c["last_loss"])
        L.append(f"| {shape} | {threads} | {c['tokens_per_second']:.0f} | {b['tokens_per_second']:.0f} | "
                 f"{b['tokens_per_second'] / c['tokens_per_second']:.2f}x | {b['tokens_per_second'] / p['tokens_per_second']:.2f}x | "
                 f"{c['last_loss']:.7f} | {b['last_loss']:.7f} | {rel:.1e} |")
    L.append("")
if text_runs:
    def best_text(shape, threads, impl):
        rs = [r for r in text_runs if (r["shape"], r["threads"], r["impl"]) == (shape, threads, impl)]
        return max(rs, key=lambda r: r["tokens_per_second"]) if rs else None
    text_keys = []
    for r in text_runs:
        if (r["shape"], r["threads"]) not in text_keys:
            text_keys.append((r["shape"], r["threads"]))
    L.append("### Ragged batches of real text: the padding skipped")
    L.append("")
    L.append("Each step a new batch of the shape's rows from the lines of `" + text_runs[0].get("text_file", "the text") + "`")
    L.append("(`[CLS] line [SEP]`, cut at 128 tokens, on a WordPiece vocabulary of 8000 pieces learned from it),")
    L.append("right-padded to the batch's longest, 15 % of the real positions masked: the same batches for all")
    L.append("three. roformer.cpp trains on the real tokens alone by default (`TrainableRoFormer::set_skip_padding`;")
    L.append("`--keep-padding` runs the padded batch whole); PyTorch runs the padded batches, as HF does. Rates")
    L.append("count real tokens over the timed steps' total time.")
    L.append("")
    L.append("| shape | threads | real tokens ÷ positions | skipped tok/s | kept tok/s | skipped ÷ kept | PyTorch tok/s | skipped ÷ PyTorch | first-step loss skipped | kept | PyTorch |")
    L.append("|---|---|---|---|---|---|---|---|---|---|---|")
    for shape, threads in text_keys:
        s_, k_, p_ = (best_text(shape, threads, i) for i in ("roformer.cpp text", "roformer.cpp text padded", "pytorch text"))
        if not (s_ and k_ and p_):
            continue
        L.append(f"| {shape} | {threads} | {s_['real_tokens'] / s_['positions']:.0%} | {s_['tokens_per_second']:.0f} | "
                 f"{k_['tokens_per_second']:.0f} | {s_['tokens_per_second'] / k_['tokens_per_second']:.2f}x | "
                 f"{p_['tokens_per_second']:.0f} | {s_['tokens_per_second'] / p_['tokens_per_second']:.2f}x | "
                 f"{s_['first_loss']:.7f} | {k_['first_loss']:.7f} | {p_['first_loss']:.7f} |")
    L.append("")
L.append("### Against the machine's limits")
L.append("")
L.append("| shape | threads | GFLOP per step | roformer.cpp GFLOP/s | PyTorch GFLOP/s | sgemm 768³ in this run | roformer.cpp / sgemm | PyTorch / sgemm |")
L.append("|---|---|---|---|---|---|---|---|")
for shape, threads in keys:
    c, _ = best(shape, threads, "roformer.cpp")
    p, _ = best(shape, threads, "pytorch")
    f = c["flops_per_step"]
    cg, pg = f / c["step_seconds_median"] / 1e9, f / p["step_seconds_median"] / 1e9
    peak = sgemm.get(threads)
    L.append(f"| {shape} | {threads} | {f / 1e9:.1f} | {cg:.1f} | {pg:.1f} | "
             f"{peak:.1f} | {cg / peak:.0%} | {pg / peak:.0%} |" if peak else
             f"| {shape} | {threads} | {f / 1e9:.1f} | {cg:.1f} | {pg:.1f} | – | – | – |")
L.append("")
L.append("### Every run")
L.append("")
L.append("| shape | threads | round | implementation | load at start | median step (s) | min (s) | max (s) | tok/s | loss, first step | loss, last step |")
L.append("|---|---|---|---|---|---|---|---|---|---|---|")
for r in runs:
    L.append(f"| {r['shape']} | {r['threads']} | {r['round']} | {r['impl']} | {r['load']:.2f} | {r['step_seconds_median']:.4f} | "
             f"{r['step_seconds_min']:.4f} | {r['step_seconds_max']:.4f} | {r['tokens_per_second']:.0f} | "
             f"{r['first_loss']:.7f} | {r['last_loss']:.7f} |")
L.append("")
L.append("sgemm 768³ GFLOP/s (start, end of the run): " + "; ".join(
    f"{t} thread(s): " + ", ".join(f"{r['gflops_per_second']:.1f}" for r in rows if r["shape"] == "sgemm" and r["threads"] == t)
    for t in sorted(sgemm)) + ". \"load at start\" is the 1-minute load average when the run began.")
L.append("")
L.append("## Machine")
L.append("")
cpp_any = next((r for r in runs if r["impl"] == "roformer.cpp"), {})
torch_any = next((r for r in runs if r["impl"] == "pytorch"), {})
try:
    l1s, l1e = float(load_start.split()[0]), float(load_end.split()[0])
except ValueError:
    l1s = l1e = 0.0
L.append(f"- CPU: {cpu_model}; `nproc` = {nproc}")
L.append(f"- load average (1, 5, 15 min): {load_start} at the start, {load_end} at the end")
peak_load = max([l1s, l1e] + [r["load"] for r in rows])
if peak_load > 0.5:
    L.append(f"- **the machine was shared during this run** (1-minute load average up to {peak_load:.2f} on "
             f"{nproc} cores): other work competed for the cores, so the absolute numbers, the 2-thread ones "
             "most, are pessimistic; both implementations ran alternately under the same conditions")
L.append(f"- roformer.cpp: commit {commit}, release preset; BLAS mapped in the process: "
         f"`{cpp_any.get('blas', '?')}` (OpenBLAS core `{cpp_any.get('openblas_core', '?')}`)")
L.append(f"- PyTorch {torch_any.get('torch', '?')} (Debian `python3-torch`), run with `LD_LIBRARY_PATH` = "
         f"the `{os.path.basename(openblas_dir)}` directory; BLAS mapped in the process after a matmul "
         f"(read from `/proc/self/maps`): `{' '.join(os.path.basename(x) for x in used_blas['blas'])}` "
         f"= **{used_blas['kind']}** (core `{used_blas['openblas_core']}`)")
if default_blas["kind"] == "OpenBLAS":
    L.append("- without `LD_LIBRARY_PATH`, this machine's PyTorch also loads OpenBLAS (`libblas.so.3` "
             "resolves to it through Debian's alternatives)")
else:
    L.append(f"- **WARNING: without `LD_LIBRARY_PATH`, PyTorch loads {default_blas['kind']} "
             f"(`{' '.join(default_blas['blas'])}`)**, which is many times slower; the numbers above use OpenBLAS")
L.append("")
L.append("## Method")
L.append("")
L.append("- **Model**: HF `RoFormerForMaskedLM` (v4.35 architecture): word + token-type embeddings, LayerNorm,")
L.append("  post-LN encoder layers with interleaved-pair RoPE on queries and keys, softmax attention with an")
L.append("  additive mask, erf-GELU FFN, MLM head (dense, GELU, LayerNorm, decoder tied to the word embeddings,")
L.append("  bias). Shapes: **small** = vocab 8000, hidden 256, 4 layers, 4 heads, FFN 1024, batch 16 × seq 128;")
L.append("  **base** = vocab 50000, hidden 768, 12 layers, 12 heads, FFN 3072, batch 4 × seq 128.")
L.append("- **Same model, same data**: `bench_train --dump` writes the initial weights (`RoFormerModel::random_init`,")
L.append("  seed 1234, saved with `save_pretrained`) and the batch (random ids; ~15 % of positions labelled, BERT")
L.append("  80/10/10 replacement, the rest -100; all positions attended; token type 0 then 1 for the two halves")
L.append("  of each row). PyTorch loads exactly those files. Equal first-step losses show both compute the same")
L.append("  function; the last-step losses (after the same number of AdamW updates on the same batch) show the")
L.append("  updates agree too.")
L.append("- **One step** = zero the gradients, forward, MLM cross-entropy (mean over labelled positions), backward")
L.append("  through every parameter, AdamW update (lr 1e-4, betas 0.9/0.999, eps 1e-8, weight decay 0.01 except")
L.append("  biases and LayerNorm weights; no clipping). Dropout is off in both (eval-mode equivalent). PyTorch")
L.append("  zeroes gradients with `zero_grad(set_to_none=True)` and uses 1.13's default (single-tensor) AdamW.")
L.append(f"- **Timing**: {warmup} untimed warm-up steps, then {small_steps} (small) or {base_steps} (base) timed steps,")
L.append("  each timed on its own (`std::chrono::steady_clock`, `time.perf_counter`); the median step")
L.append(f"  gives tokens/s = batch × seq / median. Each (shape, threads) pair runs {rounds} rounds, C++ and")
L.append("  PyTorch alternating; the tables show each implementation's best round, \"Every run\" shows all.")
L.append("  Threads: `ExecContext{threads}` in roformer.cpp, `torch.set_num_threads` in PyTorch, and")
L.append("  `OMP_NUM_THREADS` for both (OpenBLAS's OpenMP build follows it).")
L.append("- **Allocations per step** (roformer.cpp only): `bench_train.cpp` replaces every global `operator new`")
L.append("  / `operator delete` overload (plain, array, sized, aligned, nothrow) with a counting version, and on")
L.append("  glibc also defines `aligned_alloc` and `posix_memalign` (which Tensor storage uses) to count them;")
L.append("  the count is the median, over timed steps, of calls made during the step by all threads. Direct")
L.append("  `malloc` calls from C libraries (OpenBLAS, libgomp) are not counted.")
L.append("- **FLOPs per step** count matrix products only, as 3 × forward (backward = 2 × forward):")
L.append("  forward = L · [2N(4H² + 2HI) + 4BT²H] + 2N(HE + EV), with N = B·T tokens, L layers, H hidden,")
L.append("  I FFN, E embedding size (= H here), V vocab: the Q/K/V/output and FFN projections, QKᵀ and PV,")
L.append("  and the MLM transform and decoder (logits for every position, as HF computes them). This is")
L.append("  6 × (non-embedding matrix parameters + the tied decoder) × tokens + 12·L·B·T²·H. LayerNorm, GELU,")
L.append("  softmax, RoPE, the loss and AdamW are not counted, so GFLOP/s is a lower bound on work done.")
L.append("  roformer.cpp runs the MLM head (transform and decoder) only on the labelled positions (about 15 %):")
L.append("  the others add nothing to the loss or the gradients, so the result is the same with less work. Its")
L.append("  GFLOP/s column therefore counts the work PyTorch does for the same step (an effective rate), which")
L.append("  is how it can pass the sgemm yardstick.")
L.append("- **Yardstick**: the best of 30 OpenBLAS `sgemm` 768×768×768 products, measured at the start and the")
L.append("  end of the same run (the better of the two is used) with the same thread count (column \"sgemm 768³")
L.append("  in this run\"): what this CPU's BLAS reaches on a dense product of the model's size, under the same")
L.append("  load as the training runs. A training step cannot reach it: part of its time goes to memory-bound")
L.append("  elementwise work, and the small shape's matrices are small.")
L.append("  For scale, separate measurements on an idle Intel AVX-512 VM with 2 vCPUs (Sapphire Rapids class)")
L.append("  gave OpenBLAS sgemm 157–167 GFLOP/s with 1 thread and 320–336 GFLOP/s with 2 threads (shapes 256³ to")
L.append("  2048³ and 512×3072×768), about 70 % of its 229 GFLOP/s per core AVX-512 FMA peak.")
if has_avx512 != "yes":
    L.append(f"  **Those figures do not apply to this run's CPU ({cpu_model}), which has no AVX-512** (OpenBLAS")
    L.append(f"  picks its `{cpp_any.get('openblas_core', '?')}` kernels, 256-bit FMAs): the in-run sgemm column is")
    L.append("  the yardstick here.")
text = "\n".join(L) + "\n"
open(out, "w").write(text)
print(text)
PYEOF
echo "bench_train: wrote $OUT"
