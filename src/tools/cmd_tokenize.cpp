// `roformer tokenize`: HF-equivalent tokenization of texts (or text pairs), one JSON line each.
#include <cstdio>
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "core/parallel_items.h"
#include "roformer/error.h"
#include "roformer/tokenizer.h"
#include "tools/commands.h"

namespace roformer::cli {

void register_tokenize(CLI::App& app);

namespace {

Truncation parse_truncation(const std::string& name) {
  if (name == "longest_first") return Truncation::LongestFirst;
  if (name == "only_first") return Truncation::OnlyFirst;
  if (name == "only_second") return Truncation::OnlySecond;
  if (name == "none" || name == "do_not_truncate") return Truncation::None;
  throw Error("--truncation: unknown strategy '" + name + "' (longest_first, only_first, only_second, none)");
}

void print_encoding(const Encoding& e) {
  nlohmann::ordered_json j;
  j["tokens"] = e.tokens;
  j["input_ids"] = e.input_ids;
  j["token_type_ids"] = e.token_type_ids;
  j["attention_mask"] = e.attention_mask;
  if (!e.offsets.empty()) {
    auto& spans = j["offset_mapping"] = nlohmann::ordered_json::array();
    for (const CharSpan& s : e.offsets) spans.push_back({s.start, s.end});
  }
  const std::string line = j.dump() + "\n";
  std::fwrite(line.data(), 1, line.size(), stdout);
}

}  // namespace

void register_tokenize(CLI::App& app) {
  struct Options {
    std::string model;
    std::vector<std::string> texts;
    std::vector<std::string> pairs;
    int64_t max_length = 0;
    std::string truncation;
    std::string jieba_dict;
    bool offsets = false;
    int threads = 1;
  };
  auto opt = std::make_shared<Options>();
  CLI::App* cmd = app.add_subcommand(
      "tokenize", "Tokenize texts like the checkpoint's HF tokenizer; prints one JSON line per input");
  cmd->add_option("--model,-m", opt->model, "checkpoint directory (vocab.txt, tokenizer_config.json, ...)")
      ->required();
  cmd->add_option("texts", opt->texts, "texts to tokenize; without any, stdin is read one text per line "
                                       "(a tab separates a text from its pair)");
  // One value per --pair, so the positional texts after it are not swallowed.
  cmd->add_option("--pair", opt->pairs, "second text for each positional text (give it once per text)")
      ->allow_extra_args(false);
  cmd->add_option("--max-length", opt->max_length, "truncate to this many tokens (special tokens included)");
  cmd->add_option("--truncation", opt->truncation,
                  "longest_first | only_first | only_second | none (default: longest_first when "
                  "--max-length is given, else none)");
  cmd->add_option("--jieba-dict", opt->jieba_dict, "jieba dict.txt (default: $ROFORMER_JIEBA_DICT or Debian's)");
  cmd->add_flag("--offsets", opt->offsets,
                "also print offset_mapping: each token's [start, end) in its text, in characters (code points)");
  cmd->add_option("--threads", opt->threads,
                  "texts tokenized at once; above 1, stdin is read in blocks of 4096 lines (the same output, "
                  "in order; a bad line stops its whole block)")
      ->check(CLI::Range(1, 1 << 16))
      ->capture_default_str();
  cmd->callback([opt] {
    const Tokenizer tok = Tokenizer::from_pretrained(opt->model, opt->jieba_dict);
    std::optional<int64_t> max_length;
    if (opt->max_length != 0) {
      check(opt->max_length > 0, "--max-length must be positive");
      max_length = opt->max_length;
    }
    Truncation truncation = max_length ? Truncation::LongestFirst : Truncation::None;
    if (!opt->truncation.empty()) truncation = parse_truncation(opt->truncation);

    if (!opt->texts.empty()) {
      check(opt->pairs.empty() || opt->pairs.size() == opt->texts.size(),
            "--pair: given " + std::to_string(opt->pairs.size()) + " times for " + std::to_string(opt->texts.size()) +
                " texts (give one per text)");
      for (std::size_t i = 0; i < opt->texts.size(); ++i) {
        std::optional<std::string_view> pair;
        if (!opt->pairs.empty()) pair = opt->pairs[i];
        print_encoding(tok.encode(opt->texts[i], pair, truncation, max_length, opt->offsets));
      }
      return;
    }
    check(opt->pairs.empty(), "--pair needs positional texts; on stdin write 'text<TAB>pair'");
    // One line at a time on one thread, so that a line piped in is answered
    // at once; with more, blocks of lines are encoded on the threads and
    // printed in order. Errors name the line.
    const std::size_t block = opt->threads > 1 ? 4096 : 1;
    std::vector<std::string> lines;
    std::vector<Encoding> encodings;
    int64_t first_line = 1;
    const auto flush = [&] {
      encodings.assign(lines.size(), Encoding{});
      for_each_item(
          static_cast<int64_t>(lines.size()), opt->threads,
          [&](int64_t i) {
            const std::string_view line = lines[static_cast<std::size_t>(i)];
            const std::size_t tab = line.find('\t');
            std::optional<std::string_view> pair;
            std::string_view text = line;
            if (tab != std::string::npos) {
              text = line.substr(0, tab);
              pair = line.substr(tab + 1);
            }
            encodings[static_cast<std::size_t>(i)] = tok.encode(text, pair, truncation, max_length, opt->offsets);
          },
          [&](int64_t i) { return "stdin line " + std::to_string(first_line + i); });
      for (const Encoding& e : encodings) print_encoding(e);
      first_line += static_cast<int64_t>(lines.size());
      lines.clear();
    };
    std::string line;
    while (std::getline(std::cin, line)) {
      if (!line.empty() && line.back() == '\r') line.pop_back();
      lines.push_back(std::move(line));
      if (lines.size() >= block) flush();
    }
    flush();
    std::fflush(stdout);
  });
}

}  // namespace roformer::cli
