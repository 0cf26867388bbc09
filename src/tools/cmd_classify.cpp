// `roformer classify`: labels for whole texts (sequence classification) or
// for every token (token classification), whichever head the model has.
#include <algorithm>
#include <cstdio>
#include <memory>
#include <nlohmann/json.hpp>

#include "roformer/error.h"
#include "tools/commands.h"
#include "tools/text_batch.h"

namespace roformer::cli {

void register_classify(CLI::App& app) {
  auto opt = std::make_shared<TextOptions>();
  CLI::App* cmd = app.add_subcommand("classify", "label texts (sequence classification) or their tokens (token classification)");
  add_text_options(cmd, *opt, "texts; \"a<TAB>b\" lines give text pairs");
  cmd->callback([opt] {
    const ExecContext ctx = opt->exec.context();
    LoadedPipeline p = load_pipeline(*opt, std::nullopt);
    const Task task = p.model.task();
    const char* instead = task == Task::MultipleChoice      ? " (use `roformer choose`)"
                          : task == Task::QuestionAnswering ? " (use `roformer qa`)"
                          : task == Task::MaskedLM          ? " (use `roformer fill-mask`)"
                          : task == Task::CausalLM          ? " (use `roformer generate`)"
                                                            : "";
    check(task == Task::SequenceClassification || task == Task::TokenClassification,
          "classify needs a sequence or token classification model, this is " + std::string(task_name(task)) + instead);
    const auto texts = read_inputs(opt->texts);
    std::vector<Encoding> encodings;
    for (const auto& t : texts) {
      const auto tab = t.find('\t');
      if (tab == std::string::npos) encodings.push_back(encode_text(p.tokenizer, *opt, t));
      else encodings.push_back(encode_text(p.tokenizer, *opt, t.substr(0, tab), t.substr(tab + 1)));
    }
    const auto& labels = p.model.config().id2label;
    const int64_t L = p.model.config().num_labels();
    for_each_batch(encodings, opt->batch_size, [&](std::size_t first, const std::vector<Encoding>& batch) {
      ModelOutput out = p.model.forward(pad_batch(batch, p.tokenizer.pad_id()), {}, ctx);
      print_warnings(out.warnings);
      const Tensor& logits = out.heads.at("logits");
      for (std::size_t r = 0; r < batch.size(); ++r) {
        nlohmann::json line = {{"text", texts[first + r]}};
        if (task == Task::SequenceClassification) {
          const auto probs = softmax(logits.data<float>() + static_cast<int64_t>(r) * L, L);
          const auto best = std::max_element(probs.begin(), probs.end()) - probs.begin();
          nlohmann::json scores = nlohmann::json::object();
          for (int64_t i = 0; i < L; ++i) scores[labels.at(i)] = probs[static_cast<std::size_t>(i)];
          line["label"] = labels.at(best);
          line["score"] = probs[static_cast<std::size_t>(best)];
          line["scores"] = scores;
        } else {
          const int64_t T = logits.size(1);
          nlohmann::json tokens = nlohmann::json::array();
          for (std::size_t t = 0; t < batch[r].input_ids.size(); ++t) {
            const auto probs = softmax(logits.data<float>() + (static_cast<int64_t>(r) * T + static_cast<int64_t>(t)) * L, L);
            const auto best = std::max_element(probs.begin(), probs.end()) - probs.begin();
            tokens.push_back({{"token", batch[r].tokens[t]}, {"label", labels.at(best)}, {"score", probs[static_cast<std::size_t>(best)]}});
          }
          line["tokens"] = tokens;
        }
        std::printf("%s\n", line.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace).c_str());
      }
    });
  });
}

}  // namespace roformer::cli
