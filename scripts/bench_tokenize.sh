#!/usr/bin/env bash
# Tokenizer benchmark: roformer.cpp's WordPiece tokenizer against HF's Rust
# tokenizers (npm package `tokenizers`, the library behind transformers'
# BertTokenizerFast) on the same vocab.txt and the same lines of text, each
# encoding every line as [CLS] text [SEP], with 1 and 2 threads, without and
# with offsets. Checks that both give the same ids, prints a Markdown table
# and writes it, with the machine, to docs/bench_tokenize.md.
#
#   scripts/bench_tokenize.sh
#
# Texts: the committed English prose sample (ASCII but for a few lines), the
# German side of the committed parallel sample (umlauts and ß on half of its
# lines, so the tokenizer's Unicode paths run too), and Chinese made of words
# drawn from jieba's dictionary (scripts/zh_words_text.py; Debian's
# python3-jieba, installed by setup.sh), each with a vocab.txt that
# `roformer data vocab` learns from it (8000 pieces; 20000 for Chinese).
#
# Environment knobs (defaults in brackets): TEXT [the three texts] one text of
# your own, one input a line; VOCAB [learned from the text] its vocab.txt;
# JIEBA_DICT [Debian's python3-jieba dict.txt] the dictionary the Chinese
# text is drawn from;
# ROUNDS [3] alternating runs per case, the best median reported; THREADS
# ["1 2"]; MIN_SECONDS [2] per run; OUT [docs/bench_tokenize.md].
set -euo pipefail
cd "$(dirname "$0")/.."

TEXT="${TEXT:-}"
VOCAB="${VOCAB:-}"
ROUNDS="${ROUNDS:-3}"
THREADS="${THREADS:-1 2}"
MIN_SECONDS="${MIN_SECONDS:-2}"
OUT="${OUT:-docs/bench_tokenize.md}"
JIEBA_DICT="${JIEBA_DICT:-/usr/lib/python3/dist-packages/jieba/dict.txt}"
TOKENIZERS_VERSION="${TOKENIZERS_VERSION:-0.23.2}"

scripts/setup.sh
cmake --preset release >/dev/null
cmake --build --preset release --target bench_tokenize roformer_cli -j "$(nproc)"
BENCH=build/release/bench/bench_tokenize

# HF's tokenizers from npm into build/hf_tokenizers (its package carries the
# prebuilt library for each platform).
. scripts/bench_npm.sh
HF_DIR=build/hf_tokenizers
npm_package "$HF_DIR" tokenizers "$TOKENIZERS_VERSION"

work="$(mktemp -d "${TMPDIR:-/tmp}/bench_tokenize.XXXXXX")"
trap 'rm -rf "$work"' EXIT
results="$work/results.jsonl"
: >"$results"
# name -> text file and vocab.txt
declare -A text_of vocab_of
if [ -n "$TEXT" ]; then
  names=(custom)
  text_of[custom]="$TEXT"
else
  names=(en de zh)
  text_of[en]=data/sample/en_train.txt
  text_of[de]="$work/de.txt"
  cut -f1 data/sample/mt_de_en.tsv >"$work/de.txt"
  text_of[zh]="$work/zh.txt"
  python3 scripts/zh_words_text.py "$JIEBA_DICT" 3000 >"$work/zh.txt"
fi
for name in "${names[@]}"; do
  if [ -n "$VOCAB" ]; then
    vocab_of[$name]="$VOCAB"
  else
    # Chinese needs room for every character seen, each also as a "##" piece.
    vocab_of[$name]="$work/vocab_$name.txt"
    build/release/roformer data vocab -c "${text_of[$name]}" -n "$([ "$name" = zh ] && echo 20000 || echo 8000)" \
      -o "${vocab_of[$name]}" >/dev/null
  fi
done
if [ -n "$VOCAB" ]; then
  vocab_note="\`$VOCAB\`"
else
  vocab_note="learned from each text by \`roformer data vocab\`: 8000 pieces (zh: up to 20000; its 4772 characters, each also as a \"##\" piece, take 9549)"
fi

load1() { cut -d' ' -f1 /proc/loadavg; }
record() {  # text round load json
  python3 -c 'import json, sys
r = json.loads(sys.argv[4])
r.update(text=sys.argv[1], round=int(sys.argv[2]), load=float(sys.argv[3]))
print(json.dumps(r))' "$1" "$2" "$3" "$4" >>"$results"
}

load_start="$(cut -d' ' -f1-3 /proc/loadavg)"
for ((round = 1; round <= ROUNDS; round++)); do
  for name in "${names[@]}"; do
    for t in $THREADS; do
      for offsets in "" "--offsets"; do
        impls=(cpp hf)
        if ((round % 2 == 0)); then impls=(hf cpp); fi
        for impl in "${impls[@]}"; do
          l="$(load1)"
          args=(--vocab "${vocab_of[$name]}" --text "${text_of[$name]}" --threads "$t" --min-seconds "$MIN_SECONDS"
                $offsets)
          if [ "$impl" = cpp ]; then
            r="$(OMP_NUM_THREADS="$t" "$BENCH" "${args[@]}" --json)"
          else
            r="$(RAYON_NUM_THREADS="$t" NODE_PATH="$HF_DIR/node_modules" node bench/hf_tokenize.js "${args[@]}")"
          fi
          echo "$name $r"
          record "$name" "$round" "$l" "$r"
        done
      done
    done
  done
done
load_end="$(cut -d' ' -f1-3 /proc/loadavg)"

cpu_model="$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')"
commit="$(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
node_version="$(node --version)"
text_note="$(for name in "${names[@]}"; do printf '%s: `%s`; ' "$name" "${text_of[$name]}"; done)"
[ -n "$TEXT" ] || text_note="en: \`data/sample/en_train.txt\` (English prose); de: the first column of \`data/sample/mt_de_en.tsv\` (German sentences); zh: 3000 lines of words drawn from jieba's \`dict.txt\` by frequency (\`scripts/zh_words_text.py\`, seed 1), encoded as BERT's Chinese models do, each ideograph a word (no jieba: HF's library has none)"
python3 - "$results" "$OUT" "$cpu_model" "$(nproc)" "$load_start" "$load_end" "$commit" "$ROUNDS" "$text_note" \
  "$vocab_note" "$TOKENIZERS_VERSION" "$node_version" "$MIN_SECONDS" <<'PYEOF'
import json, sys
sys.path.insert(0, "scripts")
from bench_notes import kept_notes, notes_lines

(results, out, cpu_model, nproc, load_start, load_end, commit, rounds, text, vocab_note, hf_version,
 node_version, min_seconds) = sys.argv[1:]
runs = [json.loads(l) for l in open(results) if l.strip()]
names = list(dict.fromkeys(r["text"] for r in runs))
cases = sorted({(r["text"], r["threads"], r["offsets"]) for r in runs}, key=lambda c: (names.index(c[0]), c[1], c[2]))

def best(text, threads, offsets, impl):
    rs = [r for r in runs if (r["text"], r["threads"], r["offsets"], r["impl"]) == (text, threads, offsets, impl)]
    return min(rs, key=lambda r: r["median_s"])

same = all(len({r["checksum"] for r in runs if (r["text"], r["threads"], r["offsets"]) == c}) == 1 and
           len({r["tokens"] for r in runs if (r["text"], r["threads"], r["offsets"]) == c}) == 1 for c in cases)
L = ["# Tokenization: roformer.cpp against HF's tokenizers", ""]
L.append("Generated by `scripts/bench_tokenize.sh`. Every line of a text encoded as BERT's tokenizer encodes it")
L.append("(`[CLS] text [SEP]`, input ids), by roformer.cpp (`bench/bench_tokenize.cpp`: `Tokenizer::encode_batch`)")
L.append("and by HF's Rust tokenizers (`bench/hf_tokenize.js`: npm `tokenizers`, built as transformers builds")
L.append("`BertTokenizerFast` from a vocab.txt, one `encodeBatch` call a pass and the ids read back), on the same")
L.append("vocabulary and lines, alternating in one run.")
L.append("")
L += notes_lines(kept_notes(out), "run")
L.append("")
L.append("## Throughput")
L.append("")
L.append("| text | threads | offsets | roformer.cpp MB/s | HF tokenizers MB/s | roformer.cpp tokens/s | HF tokenizers tokens/s | ratio | same ids |")
L.append("|---|---|---|---|---|---|---|---|---|")
for text_name, threads, offsets in cases:
    c, h = best(text_name, threads, offsets, "roformer.cpp"), best(text_name, threads, offsets, "hf-tokenizers")
    ok = c["checksum"] == h["checksum"] and c["tokens"] == h["tokens"]
    L.append(f"| {text_name} | {threads} | {'yes' if offsets else 'no'} | {c['mb_per_s']:.2f} | {h['mb_per_s']:.2f} | "
             f"{c['tokens_per_s']:.0f} | {h['tokens_per_s']:.0f} | {h['median_s'] / c['median_s']:.2f}x | "
             f"{'yes' if ok else '**no**'} |")
L.append("")
L.append("ratio = HF's median pass time ÷ roformer.cpp's (above 1: roformer.cpp is faster). MB/s counts the")
L.append("text's UTF-8 bytes. \"same ids\": both produced the same number of tokens and the same sum of ids.")
L.append("HF's library computes offsets on every call; \"offsets yes\" has roformer.cpp compute them too and")
L.append("HF's side read them back.")
L.append("")
L.append("## Every run")
L.append("")
L.append("| text | threads | offsets | round | implementation | load at start | median pass (s) | best pass (s) | passes | tokens | id sum |")
L.append("|---|---|---|---|---|---|---|---|---|---|---|")
for r in runs:
    L.append(f"| {r['text']} | {r['threads']} | {'yes' if r['offsets'] else 'no'} | {r['round']} | {r['impl']} | {r['load']:.2f} | "
             f"{r['median_s']:.4f} | {r['best_s']:.4f} | {r['reps']} | {r['tokens']} | {r['checksum']} |")
L.append("")
L.append("## Machine and method")
L.append("")
L.append(f"- CPU: {cpu_model}; `nproc` = {nproc}; load average (1, 5, 15 min) {load_start} at the start, "
         f"{load_end} at the end")
L.append(f"- roformer.cpp: commit {commit}, release preset; HF tokenizers {hf_version} (npm) on Node.js {node_version}")
L.append(f"- texts: {text}; " + ", ".join(
    f"{n}: {next(r for r in runs if r['text'] == n)['lines']} non-empty lines, "
    f"{next(r for r in runs if r['text'] == n)['bytes'] / 1e6:.2f} MB" for n in names) + f"; vocabulary: {vocab_note};")
L.append("  lower case, accents stripped (BERT uncased) on both sides")
L.append(f"- each run: one untimed pass, then passes until at least 5 and {min_seconds} s; its median pass is its time;")
L.append(f"  {rounds} round(s) per case, every second one in reverse order; the best median of the rounds is")
L.append("  reported. Threads: roformer.cpp's `encode_batch(texts, {}, threads)` (OpenMP), HF's")
L.append("  `RAYON_NUM_THREADS` (its batch runs on a rayon pool)")
L.append(f"- every case gave the same ids on both sides: {'yes' if same else '**no**'}")
text_out = "\n".join(L) + "\n"
open(out, "w").write(text_out)
print(text_out)
if not same:
    sys.exit("bench_tokenize: the two tokenizers gave different ids")
PYEOF
echo "bench_tokenize: wrote $OUT"
