// `roformer qa`: extractive question answering over a context; a context
// longer than --max-length is read in windows, as HF's pipeline does.
#include <algorithm>
#include <cstdio>
#include <memory>
#include <optional>
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
    int64_t top_k = 1;
    bool allow_impossible = false;
    bool align_to_words = true;
  };
  auto opt = std::make_shared<Options>();
  CLI::App* cmd = app.add_subcommand("qa", "answer a question with a span of its context (question answering)");
  add_text_options(cmd, opt->text, "\"question<TAB>context\" lines, or contexts with --question");
  cmd->add_option("--question,-q", opt->question, "ask this question of every context");
  cmd->add_option("--max-answer-length", opt->max_answer_length, "longest answer in tokens")->capture_default_str();
  cmd->add_option("--doc-stride", opt->doc_stride,
                  "with --max-length: a longer context is read in windows sharing this many tokens")
      ->capture_default_str();
  cmd->add_option("--top-k", opt->top_k, "also list this many best answers (\"answers\"), best first")
      ->capture_default_str();
  cmd->add_flag("--allow-impossible", opt->allow_impossible,
                "the answer may be \"\" (no answer): when [CLS] as start and end scores above every span "
                "(HF's handle_impossible_answer)");
  cmd->add_flag("--align-to-words,!--no-align-to-words", opt->align_to_words,
                "widen an answer that starts or ends inside a word (a \"##\" piece) to the whole word, as HF's "
                "pipeline does by default");
  cmd->callback([opt] {
    check(opt->max_answer_length >= 1, "--max-answer-length must be at least 1");
    check(opt->top_k >= 1, "--top-k must be at least 1");
    check(opt->doc_stride >= 0, "--doc-stride must not be negative");
    const ExecContext ctx = opt->text.exec.context();
    LoadedPipeline p = load_pipeline(opt->text, Task::QuestionAnswering);
    const Tokenizer& tok = p.tokenizer;
    const auto lines = read_inputs(opt->text.texts);
    // Every line's windows (one unless --max-length cuts its context), in order.
    std::vector<std::pair<std::string, std::string>> pairs;
    std::vector<std::vector<CharSpan>> context_offsets;
    std::vector<std::vector<bool>> continues;  // per context token: a "##" piece of the word before
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
      const std::vector<int64_t> q = tok.tokenize_to_ids(question);
      const std::vector<int64_t>& c = context_tokens.ids;
      context_offsets.push_back(std::move(context_tokens.offsets));
      std::vector<bool>& pieces = continues.emplace_back();
      for (const std::string& t : context_tokens.tokens) pieces.push_back(t.size() > 2 && t.compare(0, 2, "##") == 0);
      const int64_t whole = static_cast<int64_t>(q.size() + c.size()) + 3;
      // Without --max-length one window holds it all (RoPE has no length limit).
      const int64_t limit = opt->text.max_length > 0 ? opt->text.max_length : whole + 1;
      for (QaWindow& w : qa_windows(q, c, limit, whole <= limit ? 0 : opt->doc_stride, tok.cls_id(), tok.sep_id())) {
        w.record = static_cast<int64_t>(pairs.size()) - 1;  // its line
        windows.push_back(std::move(w));
      }
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
    // Per window: its top_k spans of context tokens by the product of the
    // start and end probabilities (softmax over those tokens), as HF's pipeline scores them.
    struct Span {
      double score = 0;
      int64_t window = 0, first = 0, last = 0;  // first / last: indices into the context's own tokens
    };
    const auto top_k = static_cast<std::size_t>(opt->top_k);
    // The best top_k of `spans`, best first; a span listed twice (by two
    // windows, or widened to the same words) keeps its better score.
    const auto keep_best = [&](std::vector<Span>& spans) {
      std::stable_sort(spans.begin(), spans.end(), [](const Span& x, const Span& y) { return x.score > y.score; });
      std::vector<Span> best;
      for (const Span& c : spans) {
        if (best.size() == top_k) break;
        const bool seen = std::any_of(best.begin(), best.end(),
                                      [&](const Span& b) { return b.first == c.first && b.last == c.last; });
        if (!seen) best.push_back(c);
      }
      spans = std::move(best);
    };
    std::vector<std::vector<Span>> found(windows.size());
    std::vector<std::optional<double>> null_score(windows.size());  // [CLS] as start and end
    for_each_batch(encodings, length_batching(opt->text), [&](std::span<const int64_t> indices,
                                                               const std::vector<Encoding>& batch) {
      ModelOutput out = p.model.forward(pad_batch(batch, tok.pad_id()), {.skip_padding = true}, ctx);
      print_warnings(out.warnings);
      const int64_t T = out.heads.at("start_logits").size(1);
      for (std::size_t r = 0; r < batch.size(); ++r) {
        const auto window = static_cast<std::size_t>(indices[r]);
        const QaWindow& w = windows[window];
        const float* s = out.heads.at("start_logits").data<float>() + static_cast<int64_t>(r) * T;
        const float* en = out.heads.at("end_logits").data<float>() + static_cast<int64_t>(r) * T;
        const int64_t n = w.context_end - w.context_begin;
        // The candidates: the context's tokens, and [CLS] where "no answer" may win.
        const std::size_t lead = opt->allow_impossible ? 1 : 0;
        std::vector<float> ls(s + w.context_begin, s + w.context_end), le(en + w.context_begin, en + w.context_end);
        if (lead != 0) {
          ls.insert(ls.begin(), s[0]);
          le.insert(le.begin(), en[0]);
        }
        if (ls.empty()) continue;
        const auto ps = softmax(ls.data(), static_cast<int64_t>(ls.size()));
        const auto pe = softmax(le.data(), static_cast<int64_t>(le.size()));
        if (lead != 0) null_score[window] = ps[0] * pe[0];
        std::vector<Span>& spans = found[window];
        for (int64_t i = 0; i < n; ++i)
          for (int64_t j = i; j < n && j - i < opt->max_answer_length; ++j) {
            spans.push_back({ps[lead + static_cast<std::size_t>(i)] * pe[lead + static_cast<std::size_t>(j)],
                             indices[r], w.context_offset + i, w.context_offset + j});
          }
        if (opt->align_to_words) {  // widen to whole words, as HF's align_to_words does
          const std::vector<bool>& piece = continues[static_cast<std::size_t>(w.record)];
          for (Span& a : spans) {
            while (a.first > 0 && piece[static_cast<std::size_t>(a.first)]) --a.first;
            while (a.last + 1 < static_cast<int64_t>(piece.size()) && piece[static_cast<std::size_t>(a.last + 1)]) ++a.last;
          }
        }
        keep_best(spans);
      }
    });
    for (std::size_t k = 0; k < pairs.size(); ++k) {
      // The line's best spans over all its windows.
      std::vector<Span> top;
      for (std::size_t i = first_window[k]; i < first_window[k + 1]; ++i) top.insert(top.end(), found[i].begin(), found[i].end());
      keep_best(top);
      // The context's own text under a span, with its character span, as HF's pipeline answers.
      const auto answer_json = [&](const Span& a) {
        const CharSpan from = context_offsets[k][static_cast<std::size_t>(a.first)];
        const CharSpan to = context_offsets[k][static_cast<std::size_t>(a.last)];
        return nlohmann::json{{"answer", slice_code_points(pairs[k].second, from.start, to.end)},
                              {"start", from.start},
                              {"end", to.end},
                              {"start_token", a.first},
                              {"end_token", a.last},
                              {"window", a.window - static_cast<int64_t>(first_window[k])},
                              {"score", a.score}};
      };
      // "No answer" scores as its lowest over the windows, as HF's pipeline
      // takes it, and is ranked among the spans.
      std::optional<double> no_answer;
      for (std::size_t i = first_window[k]; i < first_window[k + 1]; ++i)
        if (null_score[i]) no_answer = std::min(no_answer.value_or(*null_score[i]), *null_score[i]);
      std::vector<nlohmann::json> ranked;
      const auto rank_no_answer = [&] {
        if (ranked.size() < top_k) ranked.push_back({{"answer", ""}, {"start", 0}, {"end", 0}, {"score", *no_answer}});
        no_answer.reset();
      };
      for (const Span& a : top) {
        if (no_answer && *no_answer > a.score) rank_no_answer();
        if (ranked.size() < top_k) ranked.push_back(answer_json(a));
      }
      if (no_answer) rank_no_answer();
      nlohmann::json line = {{"question", pairs[k].first}, {"context", pairs[k].second}};
      if (ranked.empty()) {  // an empty context
        line["answer"] = "";
        line["score"] = 0.0;
      } else {
        line.update(ranked.front());
      }
      if (top_k > 1) line["answers"] = ranked;
      std::printf("%s\n", line.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace).c_str());
    }
  });
}

}  // namespace roformer::cli
