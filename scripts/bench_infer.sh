#!/usr/bin/env bash
# Inference benchmark: tokens/s of the RoFormer encoder (base shape: vocab
# 50k, 12 layers, hidden 768, 12 heads, FFN 3072) for roformer.cpp (fp32 with
# its default matrix-product code, fp32 with the other library, fp32 on unpacked weights, bf16, and int8
# where the CPU has int8 dot products or AVX2), PyTorch
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
# 1x512 4x512 8x512"] (BATCHxSEQ); THREADS ["1 2"]; ROUNDS [1] rounds of every
# implementation per case (every second one in reverse order), the best median is reported; MIN_REPS [3] and MIN_SECONDS [3]
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

BENCH_NAME=bench_infer
. scripts/bench_prelude.sh

. scripts/bench_ort_env.sh

sgemm() {
  for t in $THREADS; do
    for g in openblas onednn; do
      record sgemm "$1" "$(load1)" "$(OMP_NUM_THREADS=$t "$BENCH" --sgemm --threads "$t" --gemm "$g" --json)"
    done
    record fma "$1" "$(load1)" "$(OMP_NUM_THREADS=$t "$BENCH" --fma-peak --threads "$t" --json)"
    record bf16peak "$1" "$(load1)" "$(OMP_NUM_THREADS=$t "$BENCH" --bf16-peak --threads "$t" --json)"
  done
}
# The library the engine picks on this CPU; the other one runs as a variant.
default_gemm="$("$BENCH" --sgemm --threads 1 --json | $PY -c 'import json, sys; print(json.load(sys.stdin)["gemm"])')"
other_gemm=openblas
if [ "$default_gemm" = openblas ]; then other_gemm=onednn; fi
# Where the CPU has AVX2 but no AVX-512, fp32 runs on the engine's own panels
# (packed at load) under either library; the libraries then run on the
# unpacked weights.
own_panels=no
if ! grep -qw avx512f /proc/cpuinfo && grep -qw avx2 /proc/cpuinfo; then own_panels=yes; fi

model="$work/model"
echo "== writing the $SHAPE model and ids"
"$BENCH" --dump "$model" --shape "$SHAPE"
"${torch_env[@]}" $PY bench/torch_infer.py --model "$model" --export-onnx "$work/model.onnx"

has_int8=no
if grep -qw -E "avx512_vnni|avx_vnni" /proc/cpuinfo; then has_int8="yes ($(grep -o -w -E "avx512_vnni|avx_vnni" /proc/cpuinfo | sort -u | tr '\n' ' ' | sed 's/ $//'))"; fi
# int8 runs on int8 dot products (VNNI) or, without them, on AVX2's 16-bit
# pair products in roformer.cpp's own int8 panels (kernels/int8_panels.h).
run_int8=no
if [ "$has_int8" != no ] || grep -qw avx2 /proc/cpuinfo; then run_int8=yes; fi
load_start="$(cut -d' ' -f1-3 /proc/loadavg)"
sgemm 1
echo "== peak memory of the mmap path (one process each)"
rss_dtypes="f32 bf16"
if [ "$run_int8" = yes ]; then rss_dtypes="$rss_dtypes int8"; fi
for dtype in $rss_dtypes; do
  for bt in "1 128" "8 512"; do
    set -- $bt
    record rss 1 "$(load1)" "$(OMP_NUM_THREADS=1 "$BENCH" --rss --model "$model" --batch "$1" --seq "$2" --dtype "$dtype" --json)"
  done
done
for case in $CASES; do
  b="${case%x*}"
  s="${case#*x}"
  for t in $THREADS; do
    for ((round = 1; round <= ROUNDS; round++)); do
      out="$work/out_${b}_${s}.safetensors"
      echo "== B=$b T=$s, $t thread(s), round $round"
      common=(--model "$model" --batch "$b" --seq "$s" --threads "$t" --min-reps "$MIN_REPS" --min-seconds "$MIN_SECONDS" --json)
      if [ "$own_panels" = yes ]; then
        variants=("--dtype bf16" "--plain" "--plain --gemm $other_gemm")
      else
        variants=("--dtype bf16" "--gemm $other_gemm")
      fi
      if [ "$run_int8" = yes ]; then variants+=("--dtype int8"); fi
      # Both codes behind the bf16 products, where our AVX512-BF16 panels can run.
      if grep -qw avx512_bf16 /proc/cpuinfo; then
        variants+=("--dtype bf16 --bf16-kernel onednn" "--dtype bf16 --bf16-kernel panels")
      fi
      # Packing into oneDNN's layout only applies where oneDNN runs the fp32 products.
      if [ "$default_gemm" = onednn ]; then variants+=("--plain"); fi
      # The fp32 run writes the output the others are compared with; in a
      # reversed round it runs last, against the first round's file.
      items=(fp32 "${variants[@]}" pytorch onnxruntime)
      alternate_order "$round" items
      for item in "${items[@]}"; do
        l="$(load1)"
        case "$item" in
          fp32) r="$(OMP_NUM_THREADS=$t "$BENCH" "${common[@]}" --save-output "$out")" ;;
          pytorch)
            r="$(OMP_NUM_THREADS=$t "${torch_env[@]}" $PY bench/torch_infer.py --model "$model" --batch "$b" --seq "$s" \
              --threads "$t" --min-reps "$MIN_REPS" --min-seconds "$MIN_SECONDS" --compare "$out" --json)" ;;
          onnxruntime)
            r="$(OMP_NUM_THREADS=$t node bench/ort_infer.js --onnx "$work/model.onnx" --inputs "$model/inputs.safetensors" \
              --batch "$b" --seq "$s" --threads "$t" --min-reps "$MIN_REPS" --min-seconds "$MIN_SECONDS" --compare "$out")" ;;
          # shellcheck disable=SC2086 # a variant is several words on purpose
          *) r="$(OMP_NUM_THREADS=$t "$BENCH" "${common[@]}" $item --compare "$out")" ;;
        esac
        echo "$r"
        record run "$round" "$l" "$r"
      done
    done
  done
done
sgemm 2
load_end="$(cut -d' ' -f1-3 /proc/loadavg)"

cpu_model="$(lscpu | sed -n 's/^Model name:[[:space:]]*//p' | head -1)"
has_avx512=no
if grep -qw avx512f /proc/cpuinfo; then has_avx512=yes; fi
has_bf16=no
if grep -qw -E "avx512_bf16|amx_bf16" /proc/cpuinfo; then has_bf16="yes ($(grep -o -w -E "avx512_bf16|amx_bf16" /proc/cpuinfo | sort -u | tr '\n' ' ' | sed 's/ $//'))"; fi
commit="$(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
if [ -n "$(git status --porcelain 2>/dev/null)" ]; then commit="$commit (with uncommitted changes)"; fi
mkdir -p "$(dirname "$OUT")"
$PY - "$results" "$OUT" "$cpu_model" "$(nproc)" "$load_start" "$load_end" "$openblas_dir" \
  "$torch_default_blas" "$torch_blas" "$commit" "$ROUNDS" "$MIN_REPS" "$MIN_SECONDS" "$has_avx512" "$SHAPE" \
  "$default_gemm" "$other_gemm" "$has_bf16" "$has_int8" "$own_panels" <<'PYEOF'
import json, os, sys

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, "scripts")
from bench_notes import kept_notes, notes_lines

(results, out, cpu_model, nproc, load_start, load_end, openblas_dir, torch_default_blas, torch_blas, commit,
 rounds, min_reps, min_seconds, has_avx512, shape, default_gemm, other_gemm, has_bf16, has_int8,
 own_panels) = sys.argv[1:]
own_panels = own_panels == "yes"
rows = [json.loads(l) for l in open(results)]
sgemm = {}  # (library, threads) -> best GFLOP/s
for r in rows:
    if r["kind"] == "sgemm":
        k = (r["gemm"], r["threads"])
        sgemm[k] = max(sgemm.get(k, 0.0), r["gflops_per_second"])
fma = {}  # threads -> best GFLOP/s of the FMA loop
for r in rows:
    if r["kind"] == "fma":
        fma[r["threads"]] = max(fma.get(r["threads"], 0.0), r["gflops_per_second"])
bf16peak = {}  # threads -> best GFLOP/s of the bf16 dot-product loop (0: no AVX512-BF16)
for r in rows:
    if r["kind"] == "bf16peak" and r["gflops_per_second"] > 0:
        bf16peak[r["threads"]] = max(bf16peak.get(r["threads"], 0.0), r["gflops_per_second"])
runs = [r for r in rows if r["kind"] == "run"]
rss = [r for r in rows if r["kind"] == "rss"]
cases = []
for r in runs:
    key = (r["batch"], r["seq"], r["threads"])
    if key not in cases:
        cases.append(key)
F32, BF16, OTHER, PLAIN = "roformer.cpp", "roformer.cpp bf16", "roformer.cpp " + other_gemm, "roformer.cpp unpacked"
INT8 = "roformer.cpp int8"
OTHER_PLAIN = "roformer.cpp " + other_gemm + " unpacked"
BF16_ONEDNN, BF16_PANELS = "roformer.cpp bf16 onednn", "roformer.cpp bf16 panels"

def best(key, impl):
    rs = [r for r in runs if (r["batch"], r["seq"], r["threads"]) == key and r["impl"] == impl]
    return max(rs, key=lambda r: r["tokens_per_second"]) if rs else None

def ratio_table(other, ours_title, other_title):
    """roformer.cpp fp32 against another of its own variants, case by case."""
    L.append(f"| batch | seq | threads | {ours_title} | {other_title} | ratio |")
    L.append("|---|---|---|---|---|---|")
    for key in cases:
        c, x = best(key, F32), best(key, other)
        if x is None:
            continue
        L.append(f"| {key[0]} | {key[1]} | {key[2]} | {c['tokens_per_second']:.0f} | {x['tokens_per_second']:.0f} | "
                 f"{c['tokens_per_second'] / x['tokens_per_second']:.2f}x |")

def worst_diff(key, impl, field):
    return max(r[field] for r in runs if (r["batch"], r["seq"], r["threads"]) == key and r["impl"] == impl)

L = ["# Inference: roformer.cpp against PyTorch and ONNX Runtime", ""]
L.append("Generated by `scripts/bench_infer.sh`. Forward passes of the RoFormer encoder (HF's `RoFormerModel`,")
L.append("last hidden state, no head), timed for roformer.cpp (`bench/bench_infer.cpp`, weights loaded through the")
L.append("memory-mapped safetensors path) in fp32 and with bf16 matrix products, PyTorch (`bench/torch_infer.py`:")
L.append("HF's RoFormer written in plain PyTorch, run under `torch.inference_mode()`) and ONNX Runtime")
L.append("(`bench/ort_infer.js`: onnxruntime-node's CPU provider on PyTorch's ONNX export of that module, all graph")
L.append(f"optimisations on), with the same weights and token ids, alternating in one run. Shape **{shape}**.")
L.append("")
notes = kept_notes(out)
L += notes_lines(notes, "run")
L.append("")
L.append("## Throughput")
L.append("")
L.append("| batch | seq | threads | roformer.cpp fp32 tok/s | bf16 tok/s | PyTorch tok/s | ONNX Runtime tok/s | "
         "fp32 vs PyTorch | fp32 vs ONNX Runtime | bf16 vs ONNX Runtime | fp32 GFLOP/s | ÷ sgemm 768³ | "
         "fp32 ÷ FMA peak | ONNX Runtime ÷ FMA peak | "
         "max \\|Δ\\| PyTorch | max \\|Δ\\| ONNX Runtime | max \\|Δ\\| bf16 |")
L.append("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
needed = {}  # threads -> fractions of the FMA peak that 1.2x ONNX Runtime would take
worst = 0.0
worst_bf16 = 0.0
for key in cases:
    c, h, p, o = best(key, F32), best(key, BF16), best(key, "pytorch"), best(key, "onnxruntime")
    dp = worst_diff(key, "pytorch", "max_abs_diff_vs_roformer_cpp")
    do = worst_diff(key, "onnxruntime", "max_abs_diff_vs_roformer_cpp")
    dh = worst_diff(key, BF16, "max_abs_diff_vs_compare")
    worst, worst_bf16 = max(worst, dp, do), max(worst_bf16, dh)
    peak = sgemm.get((default_gemm, key[2]))
    ct, ht = c["tokens_per_second"], h["tokens_per_second"]
    ort_gflops = o["tokens_per_second"] * c["gflops_per_second"] / ct  # the same FLOP count per token
    top = fma.get(key[2])
    if top:
        needed.setdefault(key[2], []).append(1.2 * ort_gflops / top)
    L.append(f"| {key[0]} | {key[1]} | {key[2]} | {ct:.0f} | {ht:.0f} | {p['tokens_per_second']:.0f} | "
             f"{o['tokens_per_second']:.0f} | {ct / p['tokens_per_second']:.2f}x | {ct / o['tokens_per_second']:.2f}x | "
             f"{ht / o['tokens_per_second']:.2f}x | {c['gflops_per_second']:.1f} | "
             + (f"{c['gflops_per_second'] / peak:.0%}" if peak else "–") + " | "
             + (f"{c['gflops_per_second'] / top:.0%} | {ort_gflops / top:.0%}" if top else "– | –")
             + f" | {dp:.1e} | {do:.1e} | {dh:.1e} |")
L.append("")
L.append("vs X = roformer.cpp tokens/s ÷ X's tokens/s (above 1: roformer.cpp is faster). GFLOP/s counts the")
L.append("matrix products only: per layer 2N(4H² + 2HI) for the projections and FFN and 4BT²H for QKᵀ and PV")
L.append(f"(N = B·T tokens); LayerNorm, GELU, softmax and RoPE are not counted; \"÷ sgemm\" divides it by the best")
sgemm_of = (f"{default_gemm}, the library its own panels replace on this CPU," if own_panels
            else f"the library roformer.cpp used ({default_gemm})")
L.append(f"768³ sgemm of {sgemm_of} measured in this run. The max \\|Δ\\| columns are the largest")
L.append("absolute differences from roformer.cpp's fp32 last hidden states (LayerNorm outputs of magnitude ~1–5):")
L.append(f"PyTorch and ONNX Runtime agree with it to {worst:.1e}; bf16 products move them by up to {worst_bf16:.1e}.")
if fma:
    L.append("\"÷ FMA peak\" divides the same count (ONNX Runtime's by its tokens/s) by the best of a loop of nothing but")
    L.append("independent fused multiply-adds on the same threads (`bench_infer --fma-peak`), the arithmetic ceiling: " +
             "; ".join(f"{v:.1f} GFLOP/s on {t} thread(s)" for t, v in sorted(fma.items())) + ". At that count, 1.2× ONNX")
    L.append("Runtime takes " + "; ".join(f"{min(v):.0%}–{max(v):.0%} of the FMA peak end to end on {t} thread(s)"
                                        for t, v in sorted(needed.items())) + ".")
L.append("")
if bf16peak:
    L.append("**bf16 against its own ceiling.** The same product count over the bf16 forward's time, divided by the")
    L.append("best of a loop of nothing but independent bf16 dot products (`vdpbf16ps`, 4 flops per lane;")
    L.append("`bench_infer --bf16-peak`): " + "; ".join(f"{v:.1f} GFLOP/s on {t} thread(s)" for t, v in sorted(bf16peak.items())) + ".")
    L.append("\"2× ONNX Runtime takes\" is the share of that ceiling a bf16 forward needs to be twice as fast as ONNX")
    L.append("Runtime's fp32 one, every non-product step included.")
    L.append("")
    L += notes_lines(notes, "ceiling")
    L.append("")
    L.append("The last columns run the same bf16 forward with each code behind its weight products: oneDNN's")
    L.append("bf16 matmul and roformer.cpp's own AVX512-BF16 panels (`kernels/bf16_panels.h`; `bench_infer")
    L.append("--bf16-kernel onednn|panels`). The bf16 column is the engine's default choice.")
    L.append("")
    L.append("| batch | seq | threads | bf16 GFLOP/s | ÷ bf16 dot-product peak | 2× ONNX Runtime takes | "
             "oneDNN bf16 tok/s | panels bf16 tok/s | panels ÷ oneDNN |")
    L.append("|---|---|---|---|---|---|---|---|---|")
    for key in cases:
        c, h, o = best(key, F32), best(key, BF16), best(key, "onnxruntime")
        top = bf16peak.get(key[2])
        if not (h and o and top):
            continue
        per_token = c["gflops_per_second"] / c["tokens_per_second"]
        hg, og = h["tokens_per_second"] * per_token, o["tokens_per_second"] * per_token
        bo, bp = best(key, BF16_ONEDNN), best(key, BF16_PANELS)
        kernels = (f"{bo['tokens_per_second']:.0f} | {bp['tokens_per_second']:.0f} | "
                   f"{bp['tokens_per_second'] / bo['tokens_per_second']:.2f}x") if bo and bp else "– | – | –"
        L.append(f"| {key[0]} | {key[1]} | {key[2]} | {hg:.1f} | {hg / top:.0%} | {2 * og / top:.0%} | {kernels} |")
    L.append("")
L += notes_lines(notes, "analysis")
L.append("")
if any(best(key, INT8) for key in cases):
    L.append("## int8 products")
    L.append("")
    L.append("The same forward with `--dtype int8`: dynamic quantization, weights to int8 per output row at load time,")
    L.append("activations to uint8 per token on every product, exact int32 sums (oneDNN on AVX512-VNNI; without VNNI")
    L.append("roformer.cpp's own int8 panels, `kernels/int8_panels.h`, on AVX2 16-bit pair products), rescaled to")
    L.append("fp32 before bias, GELU and the residual; the attention products in bf16 as for a bf16 model, LayerNorm")
    L.append("and the residual stream in fp32. In the same run:")
    L.append("")
    L.append("| batch | seq | threads | int8 tok/s | vs fp32 | vs ONNX Runtime (fp32) | vs PyTorch | max \\|Δ\\| int8 |")
    L.append("|---|---|---|---|---|---|---|---|")
    worst_int8 = 0.0
    for key in cases:
        q = best(key, INT8)
        if q is None:
            continue
        c, p, o = best(key, F32), best(key, "pytorch"), best(key, "onnxruntime")
        dq = worst_diff(key, INT8, "max_abs_diff_vs_compare")
        worst_int8 = max(worst_int8, dq)
        qt = q["tokens_per_second"]
        L.append(f"| {key[0]} | {key[1]} | {key[2]} | {qt:.0f} | {qt / c['tokens_per_second']:.2f}x | "
                 f"{qt / o['tokens_per_second']:.2f}x | {qt / p['tokens_per_second']:.2f}x | {dq:.1e} |")
    L.append("")
    L.append(f"int8 moves the last hidden states by up to {worst_int8:.1e} from fp32 here (random weights); its")
    L.append("accuracy on a trained model is in docs/precision.md.")
    L.append("")
if own_panels:
    L.append("## Which matrix-product code")
    L.append("")
    L.append("roformer.cpp's fp32 path ran its **own AVX2 panels** (`kernels/f32_panels.h`: the weights packed once at")
    L.append("load, bias in the product, GELU and the residual add in passes after it), its default on a CPU without")
    L.append(f"AVX-512; the same forward on the unpacked weights through {default_gemm} (which packs them on every")
    L.append(f"call), then through {other_gemm}, in the same run:")
    L.append("")
    ratio_table(PLAIN, "panels tok/s", f"{default_gemm} unpacked tok/s")
    L.append("")
    ratio_table(OTHER_PLAIN, "panels tok/s", f"{other_gemm} unpacked tok/s")
    L.append("")
else:
    L.append("## Which matrix-product library")
    L.append("")
    L.append(f"roformer.cpp's fp32 path used **{default_gemm}** (its default on this CPU); the same forward through")
    L.append(f"{other_gemm}, in the same run:")
    L.append("")
    ratio_table(OTHER, f"{default_gemm} tok/s", f"{other_gemm} tok/s")
    L.append("")
if not own_panels and any(best(key, PLAIN) for key in cases):
    L.append("")
    L.append("## Packed weights")
    L.append("")
    L.append("The fp32 path above reads weights packed once at load time into oneDNN's blocked layout, with bias,")
    L.append("GELU and the residual add fused into the products; the same forward on the plain weights (oneDNN's")
    L.append("sgemm packing them on every call, then separate passes), in the same run:")
    L.append("")
    ratio_table(PLAIN, "packed tok/s", "unpacked tok/s")
L.append("")
L.append("sgemm 768×768×768 (B transposed), best of 30, GFLOP/s: " + "; ".join(
    f"{g} {t} thread(s) {v:.1f}" for (g, t), v in sorted(sgemm.items())) + ".")
L.append("")
L.append("## Peak memory of the mmap path")
L.append("")
L.append("| precision | forward | weights (model.safetensors) | RSS after loading | peak RSS | peak ÷ weights |")
L.append("|---|---|---|---|---|---|")
for r in rss:
    prec = "bf16" if "bf16" in r["impl"] else "int8" if "int8" in r["impl"] else "fp32"
    L.append(f"| {prec} | B={r['batch']}, T={r['seq']} | {r['weights_bytes'] / 1e6:.1f} MB | {r['rss_after_load'] / 1e6:.1f} MB | "
             f"{r['peak_rss'] / 1e6:.1f} MB | {r['peak_over_weights']:.2f}x |")
L.append("")
L.append("One process per row: load the model from its directory, run one forward, read `VmHWM` (peak resident")
L.append("set) from `/proc/self/status`. F32 tensors are used in place from the mapping, so loading costs")
L.append("almost nothing until the first forward pages the weights in; the peak is then the weights plus the")
L.append("activations of that forward plus the program itself (libraries, BLAS buffers). The weights are packed")
L.append("at load time (fp32, bf16 at half the size, or int8 at a quarter) and the mapped fp32 pages they came from are handed back")
L.append("to the kernel, so the packed copy is the only one resident.")
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
    f"{g}, {t} thread(s): " + ", ".join(f"{r['gflops_per_second']:.1f}" for r in rows
                                       if r["kind"] == "sgemm" and r["threads"] == t and r["gemm"] == g)
    for (g, t) in sorted(sgemm)) + ". \"load at start\" is the 1-minute load average when the run began.")
L.append("")
L.append("## Machine")
L.append("")
cpp_any = next((r for r in runs if r["impl"] == F32), {})
torch_any = next((r for r in runs if r["impl"] == "pytorch"), {})
used_blas, default_blas = json.loads(torch_blas), json.loads(torch_default_blas)
L.append(f"- CPU: {cpu_model}; `nproc` = {nproc}; AVX-512: {has_avx512}; native bf16 products: {has_bf16}; "
         f"native int8 products: {has_int8}")
L.append(f"- load average (1, 5, 15 min): {load_start} at the start, {load_end} at the end")
try:
    peak_load = max([float(load_start.split()[0]), float(load_end.split()[0])] + [r["load"] for r in rows])
except ValueError:
    peak_load = 0.0
if peak_load > 0.5:
    L.append(f"- **the machine was shared during this run** (1-minute load average up to {peak_load:.2f} on {nproc} "
             "cores): absolute numbers are pessimistic; both implementations ran alternately under the same conditions")
fp32_code = "its own AVX2 panels" if own_panels else default_gemm
L.append(f"- roformer.cpp: commit {commit}, release preset; fp32 products through {fp32_code}; "
         f"BLAS `{cpp_any.get('blas', '?')}` (OpenBLAS core `{cpp_any.get('openblas_core', '?')}`); oneDNN "
         "(Debian `libdnnl-dev`) for the other library and for bf16")
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
if own_panels:
    L.append(f"  roformer.cpp fp32, bf16, fp32 unpacked through {default_gemm} and through {other_gemm}, int8, then")
    L.append("  PyTorch, then ONNX Runtime; every second round in the reverse order, so that no")
else:
    L.append(f"  roformer.cpp fp32, bf16, fp32 through {other_gemm}, int8 (where the CPU has VNNI or AVX2), bf16")
    L.append("  through each named product code (where the CPU has AVX512-BF16), fp32 unpacked (where oneDNN is the")
    L.append("  default), then PyTorch, then ONNX Runtime; every second round in the reverse order, so that no")
L.append("  implementation always runs after the same one.")
L.append("- Yardstick: the best of 30 `sgemm` 768×768×768 products per library at the start and the end of the run.")
text = "\n".join(L) + "\n"
open(out, "w").write(text)
print(text)
PYEOF
echo "bench_infer: wrote $OUT"
