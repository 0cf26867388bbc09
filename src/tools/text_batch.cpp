#include "tools/text_batch.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <utility>

#include "roformer/error.h"

namespace roformer::cli {

Batch pad_batch(const std::vector<Encoding>& encodings, int64_t pad_id) {
  check(!encodings.empty(), "empty batch");
  std::size_t longest = 0;
  for (const auto& e : encodings) longest = std::max(longest, e.input_ids.size());
  check(longest > 0, "an input encodes to no tokens");
  const int64_t B = static_cast<int64_t>(encodings.size()), T = static_cast<int64_t>(longest);
  Batch b{Tensor::zeros({B, T}, DType::I64), Tensor::zeros({B, T}, DType::I64), Tensor::zeros({B, T}, DType::I64)};
  for (int64_t r = 0; r < B; ++r) {
    const Encoding& e = encodings[static_cast<std::size_t>(r)];
    for (int64_t t = 0; t < T; ++t) {
      const bool real = t < static_cast<int64_t>(e.input_ids.size());
      const std::size_t i = static_cast<std::size_t>(t);
      b.input_ids.data<int64_t>()[r * T + t] = real ? e.input_ids[i] : pad_id;
      b.attention_mask.data<int64_t>()[r * T + t] = real ? e.attention_mask[i] : 0;
      b.token_type_ids.data<int64_t>()[r * T + t] = real ? e.token_type_ids[i] : 0;
    }
  }
  return b;
}

void add_text_options(CLI::App* cmd, TextOptions& options, const std::string& texts_help) {
  cmd->add_option("--model,-m", options.model, "HF checkpoint directory (with vocab.txt)")->required();
  cmd->add_option("--jieba-dict", options.jieba_dict, "jieba dict.txt for RoFormerTokenizer (default: $ROFORMER_JIEBA_DICT or Debian's)");
  cmd->add_option("--batch-size", options.batch_size, "texts per forward pass")->capture_default_str();
  cmd->add_option("--max-tokens", options.max_tokens,
                  "padded tokens per forward pass, texts x longest (0: no limit; a longer text runs alone)")
      ->capture_default_str();
  cmd->add_flag("--input-order", options.input_order,
                "batch texts as read instead of by length (the output keeps the input order either way)");
  cmd->add_option("--max-length", options.max_length, "truncate inputs to this many tokens (0: no limit; RoPE has none)");
  add_exec_options(cmd, options.exec);
  cmd->add_option("texts", options.texts, texts_help + " (default: one per line on stdin)");
}

LoadedPipeline load_pipeline(const TextOptions& options, std::optional<Task> task) {
  check(options.batch_size >= 1, "--batch-size must be at least 1");
  check(options.max_length >= 0, "--max-length must not be negative");
  check(options.max_tokens >= 0, "--max-tokens must not be negative");
  LoadOptions load;
  load.task = task;
  options.exec.set_precision(load);
  return LoadedPipeline{RoFormerModel::from_pretrained(options.model, load),
                        Tokenizer::from_pretrained(options.model, options.jieba_dict)};
}

Encoding encode_text(const Tokenizer& tokenizer, const TextOptions& options, const std::string& text,
                     std::optional<std::string> pair, bool with_offsets) {
  std::optional<int64_t> limit;
  if (options.max_length > 0) limit = options.max_length;
  std::optional<std::string_view> second;
  if (pair) second = *pair;
  return tokenizer.encode(text, second, limit ? Truncation::LongestFirst : Truncation::None, limit, with_offsets);
}

LengthBatching length_batching(const TextOptions& options) {
  return {.max_batch = options.batch_size, .max_tokens = options.max_tokens, .by_length = !options.input_order};
}

void OrderedLines::put(int64_t index, std::string line) {
  const auto i = static_cast<std::size_t>(index);
  lines_.at(i) = std::move(line);
  ready_.at(i) = true;
  const std::size_t from = next_;
  for (; next_ < lines_.size() && ready_[next_]; ++next_) {
    std::printf("%s\n", lines_[next_].c_str());
    std::string().swap(lines_[next_]);  // printed: its memory is not needed any more
  }
  if (next_ != from) std::fflush(stdout);
}

std::vector<double> softmax(const float* logits, int64_t n) {
  std::vector<double> p(static_cast<std::size_t>(n));
  const double mx = *std::max_element(logits, logits + n);
  double sum = 0;
  for (int64_t i = 0; i < n; ++i) sum += p[static_cast<std::size_t>(i)] = std::exp(logits[i] - mx);
  for (auto& v : p) v /= sum;
  return p;
}

}  // namespace roformer::cli
