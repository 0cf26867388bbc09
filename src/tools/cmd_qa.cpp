// `roformer qa`: extractive question answering over a context.
#include <cstdio>
#include <memory>
#include <nlohmann/json.hpp>

#include "roformer/error.h"
#include "tools/commands.h"
#include "tools/text_batch.h"

namespace roformer::cli {

void register_qa(CLI::App& app) {
  struct Options {
    TextOptions text;
    std::string question;
    int64_t max_answer_length = 30;
  };
  auto opt = std::make_shared<Options>();
  CLI::App* cmd = app.add_subcommand("qa", "answer a question with a span of its context (question answering)");
  add_text_options(cmd, opt->text, "\"question<TAB>context\" lines, or contexts with --question");
  cmd->add_option("--question,-q", opt->question, "ask this question of every context");
  cmd->add_option("--max-answer-length", opt->max_answer_length, "longest answer in tokens")->capture_default_str();
  cmd->callback([opt] {
    check(opt->max_answer_length >= 1, "--max-answer-length must be at least 1");
    const ExecContext ctx = opt->text.exec.context();
    LoadedPipeline p = load_pipeline(opt->text, Task::QuestionAnswering);
    const auto lines = read_inputs(opt->text.texts);
    std::vector<std::pair<std::string, std::string>> pairs;
    std::vector<Encoding> encodings;
    for (const auto& line : lines) {
      std::string question = opt->question, context = line;
      if (question.empty()) {
        const auto tab = line.find('\t');
        check(tab != std::string::npos, "qa: expected \"question<TAB>context\", got: " + line.substr(0, 80));
        question = line.substr(0, tab);
        context = line.substr(tab + 1);
      }
      pairs.emplace_back(question, context);
      encodings.push_back(encode_text(p.tokenizer, opt->text, question, context));
    }
    for_each_batch(encodings, opt->text.batch_size, [&](std::size_t first, const std::vector<Encoding>& batch) {
      ModelOutput out = p.model.forward(pad_batch(batch, p.tokenizer.pad_id()), {}, ctx);
      print_warnings(out.warnings);
      const int64_t T = out.heads.at("start_logits").size(1);
      for (std::size_t r = 0; r < batch.size(); ++r) {
        const Encoding& e = batch[r];
        const float* s = out.heads.at("start_logits").data<float>() + static_cast<int64_t>(r) * T;
        const float* en = out.heads.at("end_logits").data<float>() + static_cast<int64_t>(r) * T;
        // Candidates: context tokens only (segment 1, not the closing [SEP]).
        std::vector<int64_t> ctx_pos;
        for (std::size_t t = 0; t < e.input_ids.size(); ++t)
          if (e.token_type_ids[t] == 1 && e.input_ids[t] != p.tokenizer.sep_id()) ctx_pos.push_back(static_cast<int64_t>(t));
        nlohmann::json line = {{"question", pairs[first + r].first}, {"context", pairs[first + r].second}};
        if (ctx_pos.empty()) {
          line["answer"] = "";
          line["score"] = 0.0;
        } else {
          std::vector<float> sl, el;
          for (int64_t t : ctx_pos) {
            sl.push_back(s[t]);
            el.push_back(en[t]);
          }
          const auto ps = softmax(sl.data(), static_cast<int64_t>(sl.size()));
          const auto pe = softmax(el.data(), static_cast<int64_t>(el.size()));
          std::size_t bs = 0, be = 0;
          double best = -1;
          for (std::size_t i = 0; i < ps.size(); ++i)
            for (std::size_t j = i; j < pe.size() && static_cast<int64_t>(j - i) < opt->max_answer_length; ++j)
              if (ps[i] * pe[j] > best) {
                best = ps[i] * pe[j];
                bs = i;
                be = j;
              }
          std::vector<int64_t> ids;
          for (std::size_t i = bs; i <= be; ++i) ids.push_back(e.input_ids[static_cast<std::size_t>(ctx_pos[i])]);
          line["answer"] = p.tokenizer.decode(ids, true);
          line["start_token"] = ctx_pos[bs];
          line["end_token"] = ctx_pos[be];
          line["score"] = best;
        }
        std::printf("%s\n", line.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace).c_str());
      }
    });
  });
}

}  // namespace roformer::cli
