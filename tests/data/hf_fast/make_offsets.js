// Writes offsets.jsonl: the offset_mapping of HF's fast BERT tokenizer (the
// `tokenizers` library, npm package of the same name) for the tokenizer cases
// of tests/data/fixtures/tokenizer_cases.json (BERT uncased and cased, and
// uncased keeping accents) and
// seeded random texts. The pipeline is the one transformers builds for
// BertTokenizerFast from a vocab.txt: BertNormalizer (clean text, CJK
// characters split, lower case, accents stripped with lower case unless set),
// BertPreTokenizer, WordPiece ("##" continuations, [UNK], 100 characters at
// most per word), with its special tokens.
//
//   npm install --prefix /some/dir tokenizers@0.23.2
//   NODE_PATH=/some/dir/node_modules node tests/data/hf_fast/make_offsets.js
//
// The library gives offsets in code points, as Python's str indexes them
// (checked on texts with characters outside the BMP).
const fs = require("fs");
const path = require("path");
const { Tokenizer, WordPiece, bertNormalizer, bertPreTokenizer } = require("tokenizers");

const here = __dirname;
const fixtures = path.join(here, "..", "fixtures");
const cases = JSON.parse(fs.readFileSync(path.join(fixtures, "tokenizer_cases.json"), "utf8"));

function vocabMap(file) {
  const map = {};
  fs.readFileSync(file, "utf8").split("\n").forEach((line, i) => {
    const token = line.replace(/\r$/, "");
    if (token.length > 0 || i === 0) map[token] = i;
  });
  return map;
}

function fastBert(vocab, lowercase, stripAccents) {
  const t = new Tokenizer(WordPiece.init(vocab, { unkToken: "[UNK]", continuingSubwordPrefix: "##", maxInputCharsPerWord: 100 }));
  const options = { cleanText: true, handleChineseChars: true, lowercase };
  if (stripAccents !== undefined) options.stripAccents = stripAccents;
  t.setNormalizer(bertNormalizer(options));
  t.setPreTokenizer(bertPreTokenizer());
  // BertTokenizerFast's special tokens, matched in the raw text before normalization.
  t.addSpecialTokens(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]);
  return t;
}

// Deterministic texts: words, accents (precomposed and combining), CJK,
// punctuation, control and odd whitespace characters, emoji outside the BMP.
function randomTexts(n, seed) {
  let s = seed >>> 0;
  const next = () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 4294967296);
  const pieces = ["hello", "world", "The", "quick", "brown", "fox", "running", "unaffable", "Café", "naïve", "e\u0301",
    "A\u0308", "ÉCOLE", "straße", "İstanbul", "ΣΟΦΊΑ", "ς", "北京", "大学", "用旋转位置编码", "，", "。", "！", "?", ".",
    ",", "'s", "don't", "(x)", "[MASK]", "##", "\u00ad", "\u200b", "\t", "\u3000", "\u0007", "😀", "𝔘", "x\u0301\u0302",
    "123", "4.5", "ﬁ", "Ⅻ", "١٢", "–", "…"];
  const spaces = [" ", " ", " ", "", "  ", "\n"];
  const out = [];
  for (let i = 0; i < n; ++i) {
    let t = "";
    const k = 1 + Math.floor(next() * 10);
    for (let j = 0; j < k; ++j) t += pieces[Math.floor(next() * pieces.length)] + spaces[Math.floor(next() * spaces.length)];
    out.push(t);
  }
  return out;
}

async function main() {
  const vocab = vocabMap(path.join(fixtures, "vocab.txt"));
  // [set name, lowercase, strip_accents (undefined: as lowercase), the goldens' cases to reuse]
  const sets = [["bert_uncased", true, undefined, "bert_uncased"], ["bert_cased", false, undefined, "bert_cased"],
                ["bert_uncased_accents", true, false, "bert_uncased"]];
  const lines = [];
  for (const [name, lowercase, stripAccents, caseSet] of sets) {
    const tok = fastBert(vocab, lowercase, stripAccents);
    const texts = cases.sets[caseSet].cases.map((c) => c.text).concat(randomTexts(400, name.length * 7919));
    for (const text of texts) {
      const enc = await tok.encode(text, null, { addSpecialTokens: false });
      lines.push(JSON.stringify({ set: name, text, tokens: enc.getTokens(), offsets: enc.getOffsets() }));
    }
  }
  fs.writeFileSync(path.join(here, "offsets.jsonl"), lines.join("\n") + "\n");
  console.log(`wrote ${lines.length} texts`);
}
main();
