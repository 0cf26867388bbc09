// HF's side of bench_tokenize: the Rust `tokenizers` library (npm package
// of that name) built as transformers builds BertTokenizerFast from a
// vocab.txt (BertNormalizer, BertPreTokenizer, WordPiece with "##"
// continuations, [CLS] text [SEP]), encoding every non-empty line of a text
// file in one encodeBatch call per pass. Prints one JSON object like
// `bench_tokenize --json`, with the same id checksum.
//
//   NODE_PATH=DIR/node_modules node bench/hf_tokenize.js --vocab FILE --text FILE
//       [--threads N] [--offsets] [--cased] [--min-seconds S] [--min-reps N]
//
// The library shares a batch among its own threads (rayon); RAYON_NUM_THREADS
// sets how many, so scripts/bench_tokenize.sh sets it to --threads.
"use strict";
const fs = require("fs");
const { Tokenizer, WordPiece, bertNormalizer, bertPreTokenizer, bertProcessing } = require("tokenizers");

function parseArgs(argv) {
  const o = { threads: 1, offsets: false, cased: false, minSeconds: 2, minReps: 5 };
  for (let i = 0; i < argv.length; ++i) {
    const a = argv[i];
    const value = () => {
      if (i + 1 >= argv.length) throw new Error(`${a} needs a value`);
      return argv[++i];
    };
    if (a === "--vocab") o.vocab = value();
    else if (a === "--text") o.text = value();
    else if (a === "--threads") o.threads = Number(value());
    else if (a === "--min-seconds") o.minSeconds = Number(value());
    else if (a === "--min-reps") o.minReps = Number(value());
    else if (a === "--offsets") o.offsets = true;
    else if (a === "--cased") o.cased = true;
    else throw new Error(`unknown argument ${a}`);
  }
  if (!o.vocab || !o.text) throw new Error("--vocab and --text are required");
  return o;
}

function vocabMap(file) {
  const map = {};
  fs.readFileSync(file, "utf8").split("\n").forEach((line, i) => {
    const token = line.replace(/\r$/, "");
    if (!(token in map) && (token.length > 0 || i === 0)) map[token] = i;
  });
  return map;
}

async function main() {
  const o = parseArgs(process.argv.slice(2));
  const vocab = vocabMap(o.vocab);
  for (const t of ["[UNK]", "[CLS]", "[SEP]"]) if (!(t in vocab)) throw new Error(`${o.vocab} has no ${t}`);
  const tok = new Tokenizer(WordPiece.init(vocab, { unkToken: "[UNK]", continuingSubwordPrefix: "##", maxInputCharsPerWord: 100 }));
  tok.setNormalizer(bertNormalizer({ cleanText: true, handleChineseChars: true, lowercase: !o.cased }));
  tok.setPreTokenizer(bertPreTokenizer());
  tok.setPostProcessor(bertProcessing(["[SEP]", vocab["[SEP]"]], ["[CLS]", vocab["[CLS]"]]));
  tok.addSpecialTokens(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]);

  const lines = fs.readFileSync(o.text, "utf8").split("\n").map((l) => l.replace(/\r$/, "")).filter((l) => l.length > 0);
  if (lines.length === 0) throw new Error(`${o.text} has no non-empty line`);
  const bytes = lines.reduce((n, l) => n + Buffer.byteLength(l, "utf8"), 0);

  let tokens = 0;
  let checksum = 0n;
  const pass = async () => {
    const encodings = await tok.encodeBatch(lines);
    tokens = 0;
    let sum = 0;
    for (const e of encodings) {
      const ids = e.getIds();
      tokens += ids.length;
      for (const id of ids) sum += id;
      if (o.offsets) e.getOffsets();
    }
    checksum = BigInt(sum);
  };
  await pass();  // warm-up
  const seconds = [];
  const start = process.hrtime.bigint();
  while (seconds.length < o.minReps || Number(process.hrtime.bigint() - start) / 1e9 < o.minSeconds) {
    const t0 = process.hrtime.bigint();
    await pass();
    seconds.push(Number(process.hrtime.bigint() - t0) / 1e9);
  }
  seconds.sort((a, b) => a - b);
  const median = seconds[Math.floor(seconds.length / 2)];
  console.log(JSON.stringify({
    impl: "hf-tokenizers", threads: o.threads, offsets: o.offsets, lines: lines.length, bytes, tokens,
    checksum: Number(checksum), reps: seconds.length, median_s: median, best_s: seconds[0],
    mb_per_s: bytes / median / 1e6, tokens_per_s: tokens / median,
  }));
}

main().catch((e) => {
  console.error(`hf_tokenize: ${e.message}`);
  process.exit(1);
});
