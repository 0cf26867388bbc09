// `roformer qa`: extractive question answering over a context; a context
// longer than --max-length is read in windows, as HF's pipeline does.
#include <cstdio>
#include <memory>
#include <nlohmann/json.hpp>

#include "roformer/error.h"
#include "roformer/qa_dataset.h"
#include "tools/commands.h"
#include "tools/text_batch.h"

namespace roformer::cli {

void register_qa(CLI::App& app) {
  struct Options {
    TextOptions text;
    std::string question;
    int64_t max_answer_length = 30;
    int64_t doc_stride = 128;
  };
  auto opt = std::make_shared<Options>();
  CLI::App* cmd = app.add_subcommand("qa", "answer a question with a span of its context (question answering)");
  add_text_options(cmd, opt->text, "\"question<TAB>context\" lines, or contexts with --question");
  cmd->add_option("--question,-q", opt->question, "ask this question of every context");
  cmd->add_option("--max-answer-length", opt->max_answer_length, "longest answer in tokens")->capture_default_str();
  cmd->add_option("--doc-stride", opt->doc_stride,
                  "with --max-length: a longer context is read in windows sharing this many tokens")
      ->capture_default_str();
  cmd->callback([opt] {
    check(opt->max_answer_length >= 1, "--max-answer-length must be at least 1");
    check(opt->doc_stride >= 0, "--doc-stride must not be negative");
    const ExecContext ctx = opt->text.exec.context();
    LoadedPipeline p = load_pipeline(opt->text, Task::QuestionAnswering);
    const Tokenizer& tok = p.tokenizer;
    auto ids_of = [&](const std::string& text) { return tok.convert_tokens_to_ids(tok.tokenize(text)); };
    const auto lines = read_inputs(opt->text.texts);
    // Every line's windows (one unless --max-length cuts its context), in order.
    std::vector<std::pair<std::string, std::string>> pairs;
    std::vector<std::vector<CharSpan>> context_offsets;
    std::vector<QaWindow> windows;
    std::vector<std::size_t> first_window;
    for (const auto& line : lines) {
      std::string question = opt->question, context = line;
      if (question.empty()) {
        const auto tab = line.find('\t');
        check(tab != std::string::npos, "qa: expected \"question<TAB>context\", got: " + line.substr(0, 80));
        question = line.substr(0, tab);
        context = line.substr(tab + 1);
      }
      pairs.emplace_back(question, context);
      first_window.push_back(windows.size());
      TokenizedText context_tokens = tok.tokenize_with_offsets(context);
      const auto q = ids_of(question), c = tok.convert_tokens_to_ids(context_tokens.tokens);
      context_offsets.push_back(std::move(context_tokens.offsets));
      const int64_t whole = static_cast<int64_t>(q.size() + c.size()) + 3;
      // Without --max-length one window holds it all (RoPE has no length limit).
      const int64_t limit = opt->text.max_length > 0 ? opt->text.max_length : whole + 1;
      for (QaWindow& w : qa_windows(q, c, limit, whole <= limit ? 0 : opt->doc_stride, tok.cls_id(), tok.sep_id()))
        windows.push_back(std::move(w));
    }
    first_window.push_back(windows.size());
    std::vector<Encoding> encodings;
    for (const QaWindow& w : windows) {
      Encoding e;
      e.input_ids = w.ids;
      e.token_type_ids = w.types;
      e.attention_mask.assign(w.ids.size(), 1);
      e.tokens = tok.convert_ids_to_tokens(w.ids);
      encodings.push_back(std::move(e));
    }
    // Per window: the best span of its context tokens by the product of the
    // start and end probabilities (softmax over those tokens), as HF's pipeline scores it.
    struct Span {
      double score = -1;
      int64_t start = 0, end = 0;
    };
    std::vector<Span> best(windows.size());
    for_each_batch(encodings, opt->text.batch_size, [&](std::size_t first, const std::vector<Encoding>& batch) {
      ModelOutput out = p.model.forward(pad_batch(batch, tok.pad_id()), {}, ctx);
      print_warnings(out.warnings);
      const int64_t T = out.heads.at("start_logits").size(1);
      for (std::size_t r = 0; r < batch.size(); ++r) {
        const QaWindow& w = windows[first + r];
        const float* s = out.heads.at("start_logits").data<float>() + static_cast<int64_t>(r) * T;
        const float* en = out.heads.at("end_logits").data<float>() + static_cast<int64_t>(r) * T;
        const int64_t n = w.context_end - w.context_begin;
        if (n <= 0) continue;
        const auto ps = softmax(s + w.context_begin, n), pe = softmax(en + w.context_begin, n);
        Span& b = best[first + r];
        for (int64_t i = 0; i < n; ++i)
          for (int64_t j = i; j < n && j - i < opt->max_answer_length; ++j) {
            const double score = ps[static_cast<std::size_t>(i)] * pe[static_cast<std::size_t>(j)];
            if (score > b.score) b = {score, w.context_begin + i, w.context_begin + j};
          }
      }
    });
    for (std::size_t k = 0; k < pairs.size(); ++k) {
      nlohmann::json line = {{"question", pairs[k].first}, {"context", pairs[k].second}};
      std::size_t top = first_window[k];
      for (std::size_t i = first_window[k]; i < first_window[k + 1]; ++i)
        if (best[i].score > best[top].score) top = i;
      if (best[top].score < 0) {  // an empty context
        line["answer"] = "";
        line["score"] = 0.0;
      } else {
        const QaWindow& w = windows[top];
        // Token positions in the context's own tokens (the same in every window).
        const int64_t first = best[top].start - w.context_begin + w.context_offset;
        const int64_t last = best[top].end - w.context_begin + w.context_offset;
        // The context's own text under them, with its character span, as HF's pipeline answers.
        const CharSpan from = context_offsets[k][static_cast<std::size_t>(first)];
        const CharSpan to = context_offsets[k][static_cast<std::size_t>(last)];
        line["answer"] = slice_code_points(pairs[k].second, from.start, to.end);
        line["start"] = from.start;
        line["end"] = to.end;
        line["start_token"] = first;
        line["end_token"] = last;
        line["window"] = top - first_window[k];
        line["score"] = best[top].score;
      }
      std::printf("%s\n", line.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace).c_str());
    }
  });
}

}  // namespace roformer::cli
