// `roformer tokenize`: HF-equivalent tokenization of texts (or text pairs), one JSON line each.
#include <cstdio>
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

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
    std::string line;
    while (std::getline(std::cin, line)) {
      if (!line.empty() && line.back() == '\r') line.pop_back();
      const std::size_t tab = line.find('\t');
      std::optional<std::string_view> pair;
      std::string_view text = line;
      if (tab != std::string::npos) {
        text = std::string_view(line).substr(0, tab);
        pair = std::string_view(line).substr(tab + 1);
      }
      print_encoding(tok.encode(text, pair, truncation, max_length, opt->offsets));
    }
    std::fflush(stdout);
  });
}

}  // namespace roformer::cli
