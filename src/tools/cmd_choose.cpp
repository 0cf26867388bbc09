// `roformer choose`: a multiple-choice model picks, for each input line
// "context<TAB>choice 1<TAB>choice 2...", the choice that best continues the
// context, with every choice's probability. Each line is its own forward,
// its choices padded to the longest of them (--batch-size does not apply): a
// checkpoint with HF's default summary (the last position) scores padding,
// so its results depend on what shares the batch, as in HF.
#include <algorithm>
#include <cstdio>
#include <memory>
#include <nlohmann/json.hpp>

#include "roformer/error.h"
#include "tools/commands.h"
#include "tools/text_batch.h"

namespace roformer::cli {

void register_choose(CLI::App& app) {
  auto opt = std::make_shared<TextOptions>();
  CLI::App* cmd = app.add_subcommand("choose", "pick the best continuation with a multiple-choice model (one line per forward)");
  add_text_options(cmd, *opt, "\"context<TAB>choice<TAB>choice...\" lines (two choices at least)");
  cmd->callback([opt] {
    const ExecContext ctx = opt->exec.context();
    LoadedPipeline p = load_pipeline(*opt, Task::MultipleChoice);
    for (const auto& line : read_inputs(opt->texts)) {
      std::vector<std::string> fields;
      for (std::size_t at = 0;;) {
        const std::size_t tab = line.find('\t', at);
        fields.push_back(line.substr(at, tab == std::string::npos ? std::string::npos : tab - at));
        if (tab == std::string::npos) break;
        at = tab + 1;
      }
      check(fields.size() >= 3, "choose: expected \"context<TAB>choice<TAB>choice...\", got: " + line);
      const std::vector<std::string> choices(fields.begin() + 1, fields.end());
      std::vector<Encoding> pairs;
      for (const auto& c : choices) pairs.push_back(encode_text(p.tokenizer, *opt, fields[0], c));
      // One example: (1, choices, length).
      Batch rows = pad_batch(pairs, p.tokenizer.pad_id());
      const auto C = static_cast<int64_t>(choices.size());
      const int64_t T = rows.input_ids.size(1);
      Batch batch;
      batch.input_ids = rows.input_ids.reshape({1, C, T});
      batch.attention_mask = rows.attention_mask.reshape({1, C, T});
      batch.token_type_ids = rows.token_type_ids.reshape({1, C, T});
      ModelOutput out = p.model.forward(batch, {}, ctx);
      print_warnings(out.warnings);
      const auto probs = softmax(out.heads.at("logits").data<float>(), C);
      const auto best = std::max_element(probs.begin(), probs.end()) - probs.begin();
      const nlohmann::json result = {{"context", fields[0]},
                                     {"choices", choices},
                                     {"scores", probs},
                                     {"best", best},
                                     {"choice", choices[static_cast<std::size_t>(best)]}};
      std::printf("%s\n", result.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace).c_str());
    }
  });
}

}  // namespace roformer::cli
