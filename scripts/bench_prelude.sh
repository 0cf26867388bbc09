# shellcheck shell=bash
# Sourced by the benchmark scripts (bench_infer.sh, bench_train.sh,
# bench_generate.sh) after their knobs: installs the build's dependencies,
# builds the benchmark program, makes sure PyTorch runs on OpenBLAS, and opens
# a scratch folder with the run's results file.
#
# Needs: BENCH_NAME, the benchmark program's target (bench/<BENCH_NAME>.cpp).
# Sets: BENCH (the program), PY, openblas_dir, torch_default_blas, torch_blas
# (bench_torch_env.sh), torch_env (the command prefix of every PyTorch run),
# work (removed on exit), results (an empty JSON-lines file in it); defines
# load1 (the 1-minute load average), record KIND ROUND LOAD JSON (the JSON
# object with kind, round and load added, as one line of results), and
# alternate_order ROUND ARRAY (reverses the named array on even rounds).

scripts/setup.sh
cmake --preset release >/dev/null
cmake --build --preset release --target "$BENCH_NAME" -j "$(nproc)"
BENCH="build/release/bench/$BENCH_NAME"

. scripts/bench_torch_env.sh
torch_env=(env LD_LIBRARY_PATH="$openblas_dir${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}")

work="$(mktemp -d "${TMPDIR:-/tmp}/$BENCH_NAME.XXXXXX")"
trap 'rm -rf "$work"' EXIT
results="$work/results.jsonl"
: >"$results"

load1() { cut -d' ' -f1 /proc/loadavg; }
record() {
  $PY -c 'import json, sys
r = json.loads(sys.argv[4])
r.update(kind=sys.argv[1], round=int(sys.argv[2]), load=float(sys.argv[3]))
print(json.dumps(r))' "$1" "$2" "$3" "$4" >>"$results"
}

# Every second round runs its list backwards, so that no implementation always
# follows the same one (a heavy run can leave the core slower for the next).
alternate_order() {
  local -n list="$2"
  if (($1 % 2 == 0)); then
    local i j tmp
    for ((i = 0, j = ${#list[@]} - 1; i < j; i++, j--)); do
      tmp="${list[i]}"
      list[i]="${list[j]}"
      list[j]="$tmp"
    done
  fi
}
