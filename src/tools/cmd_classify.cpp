// `roformer classify`: labels for whole texts (sequence classification) or
// for every token (token classification), whichever head the model has.
#include <algorithm>
#include <cstdio>
#include <memory>
#include <nlohmann/json.hpp>

#include "roformer/entities.h"
#include "roformer/error.h"
#include "tools/commands.h"
#include "tools/text_batch.h"

namespace roformer::cli {

namespace {

// HF's aggregation over one line's tokens, each entity with the text it covers.
nlohmann::json entities_of(const std::vector<TokenLabel>& labels, Aggregation aggregation,
                           const std::vector<std::string>& label_names, const std::string& text, const std::string& pair) {
  nlohmann::json out = nlohmann::json::array();
  for (const Entity& e : group_entities(labels, aggregation, label_names)) {
    out.push_back({{"entity_group", e.group},
                   {"score", e.score},
                   {"word", slice_code_points(e.segment == 0 ? text : pair, e.span.start, e.span.end)},
                   {"start", e.span.start},
                   {"end", e.span.end}});
    if (e.segment == 1) out.back()["pair"] = true;
  }
  return out;
}

}  // namespace

void register_classify(CLI::App& app) {
  struct Options {
    TextOptions text;
    std::string aggregate;
  };
  auto opts = std::make_shared<Options>();
  auto opt = std::shared_ptr<TextOptions>(opts, &opts->text);
  CLI::App* cmd = app.add_subcommand("classify", "label texts (sequence classification) or their tokens (token classification)");
  add_text_options(cmd, *opt, "texts; \"a<TAB>b\" lines give text pairs");
  cmd->add_option("--aggregate", opts->aggregate,
                  "token classification: also group the tokens into entities (B-/I- labels), each with its text "
                  "and characters, O left out, as HF's aggregation_strategy: simple (tokens), or words labelled "
                  "by their first token, average probabilities or surest token (first, average, max)");
  cmd->callback([opt, opts] {
    const std::optional<Aggregation> aggregation =
        opts->aggregate.empty() ? std::nullopt : std::optional<Aggregation>(parse_aggregation(opts->aggregate));
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
    check(!aggregation || task == Task::TokenClassification, "--aggregate needs a token classification model");
    const auto texts = read_inputs(opt->texts);
    // Token classification reports where each token is in its text.
    const bool spans = task == Task::TokenClassification;
    std::vector<Encoding> encodings;
    std::vector<std::pair<std::string, std::string>> parts;  // text, pair
    for (const auto& t : texts) {
      const auto tab = t.find('\t');
      if (tab == std::string::npos) {
        parts.emplace_back(t, "");
        encodings.push_back(encode_text(p.tokenizer, *opt, t, std::nullopt, spans));
      } else {
        parts.emplace_back(t.substr(0, tab), t.substr(tab + 1));
        encodings.push_back(encode_text(p.tokenizer, *opt, parts.back().first, parts.back().second, spans));
      }
    }
    const auto& labels = p.model.config().id2label;
    const int64_t L = p.model.config().num_labels();
    std::vector<std::string> names;  // in class order, for averaged probabilities
    for (int64_t i = 0; i < L; ++i) names.push_back(labels.at(i));
    OrderedLines printer(texts.size());
    for_each_batch(encodings, length_batching(*opt), [&](std::span<const int64_t> indices,
                                                          const std::vector<Encoding>& batch) {
      ModelOutput out = p.model.forward(pad_batch(batch, p.tokenizer.pad_id()), {.skip_padding = true}, ctx);
      print_warnings(out.warnings);
      const Tensor& logits = out.heads.at("logits");
      for (std::size_t r = 0; r < batch.size(); ++r) {
        const auto input = static_cast<std::size_t>(indices[r]);
        nlohmann::json line = {{"text", texts[input]}};
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
          const Encoding& e = batch[r];
          nlohmann::json tokens = nlohmann::json::array();
          std::vector<TokenLabel> token_labels;
          for (std::size_t t = 0; t < e.input_ids.size(); ++t) {
            const auto probs = softmax(logits.data<float>() + (static_cast<int64_t>(r) * T + static_cast<int64_t>(t)) * L, L);
            const auto best = std::max_element(probs.begin(), probs.end()) - probs.begin();
            const double score = probs[static_cast<std::size_t>(best)];
            const bool special = p.tokenizer.is_special_id(e.input_ids[t]);
            tokens.push_back({{"token", e.tokens[t]}, {"label", labels.at(best)}, {"score", score}});
            if (!special) {  // characters in its own text: the pair's, after the first [SEP]
              tokens.back()["start"] = e.offsets[t].start;
              tokens.back()["end"] = e.offsets[t].end;
              if (e.token_type_ids[t] == 1) tokens.back()["pair"] = true;
            }
            const bool subword = e.tokens[t].size() > 2 && e.tokens[t].compare(0, 2, "##") == 0;
            token_labels.push_back(
                {labels.at(best), score, e.offsets[t], special, static_cast<int>(e.token_type_ids[t]), subword, probs});
          }
          line["tokens"] = tokens;
          if (aggregation) {
            line["entities"] =
                entities_of(token_labels, *aggregation, names, parts[input].first, parts[input].second);
          }
        }
        printer.put(indices[r], line.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
      }
    });
  });
}

}  // namespace roformer::cli
