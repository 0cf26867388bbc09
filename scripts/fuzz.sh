#!/usr/bin/env bash
# Builds the libFuzzer targets (preset "fuzz": clang, ASan + UBSan) and runs
# each for FUZZ_SECONDS (default 60) on a scratch copy of its seed corpus in
# fuzz/corpus/<target>/, FUZZ_JOBS (default 2) targets at a time.
#   scripts/fuzz.sh                          every target
#   scripts/fuzz.sh fuzz_vocab fuzz_config   only these
# Exits non-zero when any target crashes, leaks, hangs (an input over 10 s) or
# goes over 2 GiB; the input that did it is kept in build/fuzz/runs/<target>/.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${FUZZ_SECONDS:-60}"
jobs="${FUZZ_JOBS:-2}"

# Every target with its -max_len: well above its seeds, small enough to keep
# thousands of runs a second.
all=(fuzz_safetensors fuzz_torch_bin fuzz_torch_pickle fuzz_config fuzz_vocab fuzz_tokenizer
     fuzz_tokenizer_config fuzz_jieba_dict fuzz_datasets)
declare -A max_len=(
  [fuzz_safetensors]=16384 [fuzz_torch_bin]=65536 [fuzz_torch_pickle]=16384 [fuzz_config]=4096
  [fuzz_vocab]=16384 [fuzz_tokenizer]=2048 [fuzz_tokenizer_config]=4096 [fuzz_jieba_dict]=8192 [fuzz_datasets]=4096
)

targets=("$@")
((${#targets[@]})) || targets=("${all[@]}")
for t in "${targets[@]}"; do
  [[ -n "${max_len[$t]:-}" ]] || { echo "fuzz: unknown target '$t' (known: ${all[*]})" >&2; exit 2; }
done

start=$SECONDS
scripts/setup.sh
cmake --preset fuzz >/dev/null
cmake --build --preset fuzz -j "$(nproc)"

runs=build/fuzz/runs
rm -rf "$runs"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1}"

# One target: libFuzzer adds new inputs to the scratch corpus, never to fuzz/corpus.
run_one() {
  local t=$1 dir="$runs/$1"
  mkdir -p "$dir/corpus" "$dir/artifacts"
  cp fuzz/corpus/"$t"/* "$dir/corpus/"
  local rc=0
  "build/fuzz/fuzz/$t" -max_total_time="$seconds" -max_len="${max_len[$t]}" -timeout=10 -rss_limit_mb=2048 \
    -print_final_stats=1 -artifact_prefix="$dir/artifacts/" "$dir/corpus" >"$dir/log" 2>&1 || rc=$?
  echo "$rc" >"$dir/rc"
}

echo "fuzz: ${#targets[@]} target(s), ${seconds} s each, ${jobs} at a time"
running=0
for t in "${targets[@]}"; do
  if ((running >= jobs)); then
    wait -n || true
    running=$((running - 1))
  fi
  run_one "$t" &
  running=$((running + 1))
done
wait || true

final_stat() { sed -n "s/^stat::$2: *//p" "$1" 2>/dev/null | tail -1; }
failed=()
printf '\n%-22s %-6s %10s %8s %6s %7s %6s %9s\n' target result runs exec/s cov feat corpus peak_mb
for t in "${targets[@]}"; do
  dir="$runs/$t"
  rc=$(cat "$dir/rc" 2>/dev/null || echo "not run")
  # The last status line: "#N DONE cov: C ft: F corp: K/..."
  line=$(grep -E '^#[0-9]+' "$dir/log" 2>/dev/null | tail -1 || true)
  cov=$(sed -n 's/.* cov: \([0-9]*\).*/\1/p' <<<"$line")
  ft=$(sed -n 's/.* ft: \([0-9]*\).*/\1/p' <<<"$line")
  corp=$(sed -n 's/.* corp: \([0-9]*\).*/\1/p' <<<"$line")
  result=ok
  if [[ "$rc" != 0 ]]; then
    result=FAIL
    failed+=("$t")
  fi
  printf '%-22s %-6s %10s %8s %6s %7s %6s %9s\n' "$t" "$result" "$(final_stat "$dir/log" number_of_executed_units)" \
    "$(final_stat "$dir/log" average_exec_per_sec)" "${cov:--}" "${ft:--}" "${corp:--}" "$(final_stat "$dir/log" peak_rss_mb)"
done

for t in "${failed[@]}"; do
  dir="$runs/$t"
  echo
  echo "fuzz: $t failed (exit $(cat "$dir/rc" 2>/dev/null || echo "not run")); log: $dir/log"
  grep -E '^(==[0-9]+==ERROR|SUMMARY|fuzz property violated)|runtime error' "$dir/log" | head -5 || true
  for a in "$dir"/artifacts/*; do
    [[ -e "$a" && "$(basename "$a")" != slow-unit-* ]] && echo "  input: $a (replay: build/fuzz/fuzz/$t $a)"
  done
done
echo
echo "fuzz: ${#failed[@]} of ${#targets[@]} target(s) failed, $((SECONDS - start)) s in all"
((${#failed[@]} == 0))
