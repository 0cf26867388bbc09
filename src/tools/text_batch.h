#pragma once
// Turning texts into padded model batches, and the model + tokenizer pair the
// text subcommands share.
#include <cstdio>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "roformer/length_batches.h"
#include "roformer/model.h"
#include "roformer/tokenizer.h"
#include "tools/common.h"

namespace roformer::cli {

// Right-pads encodings to the longest one (pad id, mask 0, type 0).
Batch pad_batch(const std::vector<Encoding>& encodings, int64_t pad_id);

// Options every text subcommand takes.
struct TextOptions {
  std::string model;
  std::string jieba_dict;
  int64_t batch_size = 16;
  int64_t max_tokens = 0;  // padded tokens per forward; 0: no limit
  bool input_order = false;  // batch as read rather than by length
  int64_t max_length = 0;  // 0: no limit
  ExecOptions exec;
  std::vector<std::string> texts;
};
void add_text_options(CLI::App* cmd, TextOptions& options, const std::string& texts_help);

struct LoadedPipeline {
  RoFormerModel model;
  Tokenizer tokenizer;
};
LoadedPipeline load_pipeline(const TextOptions& options, std::optional<Task> task);

// Encodes one text (or pair), truncated to the options' maximum length.
Encoding encode_text(const Tokenizer& tokenizer, const TextOptions& options, const std::string& text,
                     std::optional<std::string> pair = std::nullopt, bool with_offsets = false);

// The options' batching: --batch-size, --max-tokens, by length unless --input-order.
LengthBatching length_batching(const TextOptions& options);

// Runs `fn(indices, encodings)` over the planned batches: encodings[r] is
// all[indices[r]].
template <typename Fn>
void for_each_batch(const std::vector<Encoding>& all, const LengthBatching& batching, Fn fn) {
  std::vector<int64_t> lengths;
  lengths.reserve(all.size());
  for (const Encoding& e : all) lengths.push_back(static_cast<int64_t>(e.input_ids.size()));
  for (const std::vector<int64_t>& indices : plan_length_batches(lengths, batching)) {
    std::vector<Encoding> batch;
    batch.reserve(indices.size());
    for (const int64_t i : indices) batch.push_back(all[static_cast<std::size_t>(i)]);
    fn(std::span<const int64_t>(indices), batch);
  }
}

// Prints one line per input in input order while batches finish in another:
// each line goes out as soon as every earlier one has.
class OrderedLines {
 public:
  explicit OrderedLines(std::size_t count) : lines_(count), ready_(count, false) {}
  void put(int64_t index, std::string line);

 private:
  std::vector<std::string> lines_;
  std::vector<bool> ready_;
  std::size_t next_ = 0;
};

// Softmax of n logits (in double for the JSON scores).
std::vector<double> softmax(const float* logits, int64_t n);

}  // namespace roformer::cli
