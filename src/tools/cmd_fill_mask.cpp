// `roformer fill-mask`: the most likely tokens for every [MASK] in each text.
#include <algorithm>
#include <cstdio>
#include <memory>
#include <nlohmann/json.hpp>
#include <numeric>

#include "roformer/error.h"
#include "tools/commands.h"
#include "tools/text_batch.h"

namespace roformer::cli {

void register_fill_mask(CLI::App& app) {
  struct Options {
    TextOptions text;
    int64_t top_k = 5;
  };
  auto opt = std::make_shared<Options>();
  CLI::App* cmd = app.add_subcommand("fill-mask", "predict the tokens behind [MASK] (masked LM)");
  add_text_options(cmd, opt->text, "texts containing the mask token");
  cmd->add_option("--top-k,-k", opt->top_k, "predictions per mask")->capture_default_str();
  cmd->callback([opt] {
    check(opt->top_k >= 1, "--top-k must be at least 1");
    const ExecContext ctx = opt->text.exec.context();
    LoadedPipeline p = load_pipeline(opt->text, Task::MaskedLM);
    const auto texts = read_inputs(opt->text.texts);
    std::vector<Encoding> encodings;
    for (const auto& t : texts) encodings.push_back(encode_text(p.tokenizer, opt->text, t));
    const int64_t V = p.model.config().vocab_size, mask_id = p.tokenizer.mask_id();
    const int64_t k = std::min(opt->top_k, V);
    OrderedLines printer(texts.size());
    for_each_batch(encodings, length_batching(opt->text), [&](std::span<const int64_t> indices,
                                                               const std::vector<Encoding>& batch) {
      ModelOutput out = p.model.forward(pad_batch(batch, p.tokenizer.pad_id()), {.skip_padding = true}, ctx);
      print_warnings(out.warnings);
      const Tensor& logits = out.heads.at("logits");
      const int64_t T = logits.size(1);
      for (std::size_t r = 0; r < batch.size(); ++r) {
        const Encoding& e = batch[r];
        nlohmann::json masks = nlohmann::json::array();
        std::vector<int64_t> filled = e.input_ids;
        for (std::size_t t = 0; t < e.input_ids.size(); ++t) {
          if (e.input_ids[t] != mask_id) continue;
          const float* row = logits.data<float>() + (static_cast<int64_t>(r) * T + static_cast<int64_t>(t)) * V;
          const auto probs = softmax(row, V);
          std::vector<int64_t> order(static_cast<std::size_t>(V));
          std::iota(order.begin(), order.end(), 0);
          std::partial_sort(order.begin(), order.begin() + k, order.end(),
                            [&](int64_t a, int64_t b) { return probs[a] > probs[b] || (probs[a] == probs[b] && a < b); });
          nlohmann::json preds = nlohmann::json::array();
          for (int64_t i = 0; i < k; ++i) {
            const int64_t id = order[static_cast<std::size_t>(i)];
            preds.push_back({{"token", p.tokenizer.id_to_token(id)}, {"id", id}, {"score", probs[static_cast<std::size_t>(id)]}});
          }
          filled[t] = order[0];
          masks.push_back({{"position", t}, {"predictions", preds}});
        }
        const nlohmann::json line = {{"text", texts[static_cast<std::size_t>(indices[r])]},
                                     {"masks", masks},
                                     {"filled", p.tokenizer.decode(filled, true)}};
        printer.put(indices[r], line.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
      }
    });
  });
}

}  // namespace roformer::cli
