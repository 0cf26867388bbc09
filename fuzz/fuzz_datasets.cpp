// libFuzzer: the training data readers on arbitrary files. Byte 0 picks the
// reader (sequence classification, token classification, multiple choice and
// question answering JSONL, the binary token dataset, the parallel TSV) and an
// option bit; byte 1 sets max_length (and the QA stride); the rest is the
// file. Must hold: a reader loads or throws Error, nothing else; what it loads
// keeps its documented shapes (ids start with [CLS], end with [SEP], stay in
// the vocabulary and within max_length; labels and answer positions in range;
// document offsets adding up), and batching any of it succeeds.
#include <unistd.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <numeric>
#include <string>
#include <string_view>
#include <vector>

#include "fuzz_support.h"
#include "roformer/choice_dataset.h"
#include "roformer/dataset.h"
#include "roformer/error.h"
#include "roformer/labelled_dataset.h"
#include "roformer/parallel_corpus.h"
#include "roformer/qa_dataset.h"
#include "roformer/tagged_dataset.h"
#include "roformer/tokenizer.h"

using roformer::fuzz::require;

namespace {

// The readers take a path: each input is written to one scratch file per
// process, removed at exit. The name lives in a plain array, which outlives
// every exit handler (a static std::string would be destroyed before it).
const char* scratch_path() {
  static char name[4096] = {};
  if (name[0] == '\0') {
    const std::string pattern = (std::filesystem::temp_directory_path() / "fuzz_datasets_XXXXXX").string();
    require(pattern.size() < sizeof name, "a temporary directory of a sane length");
    std::memcpy(name, pattern.c_str(), pattern.size() + 1);
    const int fd = mkstemp(name);
    require(fd >= 0, "a scratch file");
    close(fd);
    std::atexit([] { std::remove(name); });
  }
  return name;
}

void write_scratch(std::string_view bytes) {
  std::FILE* f = std::fopen(scratch_path(), "wb");
  require(f != nullptr, "the scratch file opens");
  require(std::fwrite(bytes.data(), 1, bytes.size(), f) == bytes.size(), "the scratch file is written");
  std::fclose(f);
}

bool ids_in_vocab(const std::vector<int64_t>& ids, int64_t vocab) {
  return std::all_of(ids.begin(), ids.end(), [&](int64_t id) { return id >= 0 && id < vocab; });
}

// [CLS] ... [SEP] within max_length, every id a vocabulary id.
void check_sequence(const std::vector<int64_t>& ids, const roformer::Tokenizer& tok, int64_t max_length) {
  require(ids.size() >= 2 && static_cast<int64_t>(ids.size()) <= max_length, "a sequence fits max_length");
  require(ids.front() == tok.cls_id() && ids.back() == tok.sep_id(), "[CLS] first, [SEP] last");
  require(ids_in_vocab(ids, tok.vocab().size()), "ids in the vocabulary");
}

void check_mask(const std::vector<int64_t>& mask, int64_t rows, int64_t seq_len) {
  require(static_cast<int64_t>(mask.size()) == rows * seq_len, "mask shape");
  for (int64_t r = 0; r < rows; ++r) {
    require(mask[r * seq_len] == 1, "every row has a real token");
    for (int64_t t = 1; t < seq_len; ++t)
      require(mask[r * seq_len + t] <= mask[r * seq_len + t - 1] && mask[r * seq_len + t] >= 0, "right padding");
  }
}

std::vector<int64_t> first_indices(int64_t n) {
  std::vector<int64_t> idx(static_cast<std::size_t>(std::min<int64_t>(n, 8)));
  std::iota(idx.begin(), idx.end(), int64_t{0});
  return idx;
}

void labelled(const roformer::Tokenizer& tok, int64_t max_length, bool windows) {
  roformer::LabelledOptions o;
  o.max_length = max_length;
  o.windows = windows;
  o.stride = windows ? max_length / 4 : 0;
  const auto d = roformer::LabelledDataset::from_jsonl(scratch_path(), tok, o);
  for (int64_t i = 0; i < d.size(); ++i) {
    const auto& e = d.example(i);
    check_sequence(e.ids, tok, max_length);
    require(e.label >= 0 && e.label < d.num_labels(), "label in range");
    require(e.group >= 0 && e.group < d.records(), "group is a record");
  }
  if (d.size() == 0) return;
  const auto idx = first_indices(d.size());
  const auto b = d.batch(idx);
  require(b.batch == static_cast<int64_t>(idx.size()) && b.labels.size() == idx.size(), "batch rows");
  require(static_cast<int64_t>(b.input_ids.size()) == b.batch * b.seq_len, "batch ids shape");
  check_mask(b.attention_mask, b.batch, b.seq_len);
  (void)d.split(0.5, 1);
}

void tagged(const roformer::Tokenizer& tok, int64_t max_length) {
  roformer::TaggedOptions o;
  o.max_length = max_length;
  const auto d = roformer::TaggedDataset::from_jsonl(scratch_path(), tok, o);
  for (int64_t i = 0; i < d.size(); ++i) {
    const auto& e = d.example(i);
    check_sequence(e.ids, tok, max_length);
    require(e.labels.size() == e.ids.size(), "a label per token");
    for (int64_t l : e.labels) require(l == -100 || (l >= 0 && l < d.num_labels()), "tag in range");
  }
  if (d.size() == 0) return;
  roformer::TokenBatch b;
  d.batch(first_indices(d.size()), b);
  require(static_cast<int64_t>(b.labels.size()) == b.batch * b.seq_len, "batch labels shape");
  check_mask(b.attention_mask, b.batch, b.seq_len);
}

void choice(const roformer::Tokenizer& tok, int64_t max_length) {
  roformer::ChoiceOptions o;
  o.max_length = max_length;
  const auto d = roformer::ChoiceDataset::from_jsonl(scratch_path(), tok, o);
  for (int64_t i = 0; i < d.size(); ++i) {
    const auto& e = d.example(i);
    require(static_cast<int64_t>(e.pairs.size()) == d.choices() && d.choices() >= 2, "choices per example");
    require(e.label >= 0 && e.label < d.choices(), "label is a choice");
    for (const auto& p : e.pairs) {
      check_sequence(p.ids, tok, max_length);
      require(p.types.size() == p.ids.size(), "a type per token");
    }
  }
  if (d.size() == 0) return;
  roformer::ChoiceBatch b;
  d.batch(first_indices(d.size()), b);
  require(static_cast<int64_t>(b.input_ids.size()) == b.batch * b.choices * b.seq_len, "batch ids shape");
  check_mask(b.attention_mask, b.batch * b.choices, b.seq_len);
}

void qa(const roformer::Tokenizer& tok, int64_t max_length, int64_t stride) {
  roformer::QaOptions o;
  o.max_length = max_length;
  o.stride = stride;
  const auto d = roformer::QaDataset::from_jsonl(scratch_path(), tok, o);
  for (int64_t i = 0; i < d.size(); ++i) {
    const auto& w = d.window(i);
    check_sequence(w.ids, tok, max_length);
    const auto n = static_cast<int64_t>(w.ids.size());
    require(w.types.size() == w.ids.size(), "a type per token");
    require(0 <= w.start && w.start <= w.end && w.end < n, "answer inside the window");
    require(0 < w.context_begin && w.context_begin <= w.context_end && w.context_end < n, "context inside");
    require(w.record >= 0 && w.record < d.records(), "window of a record");
    const auto& r = d.record(w.record);
    const int64_t last = w.context_offset + (w.context_end - w.context_begin) - 1;
    require(w.context_offset >= 0 && last < static_cast<int64_t>(r.offsets.size()), "context tokens of the record");
    if (w.context_end > w.context_begin) (void)r.text_of(w.context_offset, last);
  }
  if (d.size() == 0) return;
  roformer::QaBatch b;
  d.batch(first_indices(d.size()), b);
  require(static_cast<int64_t>(b.start_positions.size()) == b.batch, "batch positions");
  check_mask(b.attention_mask, b.batch, b.seq_len);
}

void token_dataset(bool check_ids) {
  const auto d = roformer::TokenDataset::open(scratch_path(), check_ids);
  int64_t total = 0;
  for (int64_t doc = 0; doc < d.documents(); ++doc) {
    const int64_t n = d.document_length(doc);
    require(n >= 0, "document length");
    total += n;
    if (check_ids) require(ids_in_vocab(d.document(doc), d.vocab_size()), "ids below the vocabulary size");
  }
  require(total == d.tokens(), "documents add up to the tokens");
  (void)roformer::split_documents(d, 0.25, 3);
}

void parallel(std::string_view text, bool skip_malformed) {
  roformer::ParallelReadOptions o;
  o.skip_malformed = skip_malformed;
  o.max_line_bytes = 512;
  const auto c = roformer::parse_parallel_tsv(text, "fuzz", o);
  for (const auto& p : c.pairs) {
    require(p.line >= 1, "pairs name their line");
    require(p.source.find('\n') == std::string::npos && p.target.find('\n') == std::string::npos, "one line each");
  }
  (void)roformer::split_parallel(c.pairs);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, std::size_t size) {
  static const roformer::Tokenizer tok(roformer::Vocab::from_file(ROFORMER_FUZZ_TEST_DATA "/fixtures/vocab.txt"),
                                       roformer::TokenizerOptions{});
  if (size < 2) return 0;
  const int reader = (data[0] & 0x7F) % 6;
  const bool flag = (data[0] & 0x80) != 0;
  const int64_t max_length = 1 + data[1] % 64;  // below 3 must be refused cleanly
  const int64_t stride = data[1] / 64 * 4;      // 0, 4, 8, 12
  const std::string_view body(reinterpret_cast<const char*>(data + 2), size - 2);
  try {
    if (reader == 5) {
      parallel(body, flag);
      return 0;
    }
    write_scratch(body);
    switch (reader) {
      case 0: labelled(tok, max_length, flag); break;
      case 1: tagged(tok, max_length); break;
      case 2: choice(tok, max_length); break;
      case 3: qa(tok, max_length, stride); break;
      default: token_dataset(!flag); break;
    }
  } catch (const roformer::Error&) {
  }
  return 0;
}
