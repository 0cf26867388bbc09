#pragma once
// Turning texts into padded model batches, and the model + tokenizer pair the
// text subcommands share.
#include <optional>
#include <string>
#include <vector>

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

// Runs `fn(first_index, encodings)` over batches of batch_size texts.
template <typename Fn>
void for_each_batch(const std::vector<Encoding>& all, int64_t batch_size, Fn fn) {
  for (std::size_t i = 0; i < all.size(); i += static_cast<std::size_t>(batch_size)) {
    const std::size_t end = std::min(all.size(), i + static_cast<std::size_t>(batch_size));
    fn(i, std::vector<Encoding>(all.begin() + static_cast<std::ptrdiff_t>(i), all.begin() + static_cast<std::ptrdiff_t>(end)));
  }
}

// Softmax of n logits (in double for the JSON scores).
std::vector<double> softmax(const float* logits, int64_t n);

}  // namespace roformer::cli
