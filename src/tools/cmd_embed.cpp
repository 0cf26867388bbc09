// `roformer embed`: one vector per text from the encoder's last hidden state.
#include <cmath>
#include <cstdio>
#include <memory>
#include <nlohmann/json.hpp>

#include "roformer/error.h"
#include "tools/commands.h"
#include "tools/text_batch.h"

namespace roformer::cli {

void register_embed(CLI::App& app) {
  struct Options {
    TextOptions text;
    std::string pooling = "cls";
    bool normalize = false;
  };
  auto opt = std::make_shared<Options>();
  CLI::App* cmd = app.add_subcommand("embed", "sentence embeddings (CLS or mean pooling)");
  add_text_options(cmd, opt->text, "texts");
  cmd->add_option("--pooling", opt->pooling, "cls (first token) or mean (over real tokens)")
      ->check(CLI::IsMember({"cls", "mean"}))
      ->capture_default_str();
  cmd->add_flag("--normalize", opt->normalize, "scale each vector to unit L2 norm");
  cmd->callback([opt] {
    const ExecContext ctx = opt->text.exec.context();
    LoadedPipeline p = load_pipeline(opt->text, Task::Base);
    const auto texts = read_inputs(opt->text.texts);
    std::vector<Encoding> encodings;
    for (const auto& t : texts) encodings.push_back(encode_text(p.tokenizer, opt->text, t));
    const int64_t H = p.model.config().hidden_size;
    OrderedLines printer(texts.size());
    for_each_batch(encodings, length_batching(opt->text), [&](std::span<const int64_t> indices,
                                                               const std::vector<Encoding>& batch) {
      ModelOutput out = p.model.forward(pad_batch(batch, p.tokenizer.pad_id()), {.skip_padding = true}, ctx);
      print_warnings(out.warnings);
      const Tensor& h = out.last_hidden_state;
      const int64_t T = h.size(1);
      for (std::size_t r = 0; r < batch.size(); ++r) {
        std::vector<double> v(static_cast<std::size_t>(H), 0.0);
        const float* rows = h.data<float>() + static_cast<int64_t>(r) * T * H;
        if (opt->pooling == "cls") {
          for (int64_t k = 0; k < H; ++k) v[static_cast<std::size_t>(k)] = rows[k];
        } else {
          int64_t n = 0;
          for (std::size_t t = 0; t < batch[r].input_ids.size(); ++t) {
            if (batch[r].attention_mask[t] == 0) continue;
            ++n;
            for (int64_t k = 0; k < H; ++k) v[static_cast<std::size_t>(k)] += rows[static_cast<int64_t>(t) * H + k];
          }
          for (auto& x : v) x /= static_cast<double>(std::max<int64_t>(n, 1));
        }
        if (opt->normalize) {
          double norm = 0;
          for (double x : v) norm += x * x;
          norm = std::sqrt(norm);
          if (norm > 0)
            for (auto& x : v) x /= norm;
        }
        const nlohmann::json line = {{"text", texts[static_cast<std::size_t>(indices[r])]}, {"embedding", v}};
        printer.put(indices[r], line.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
      }
    });
  });
}

}  // namespace roformer::cli
