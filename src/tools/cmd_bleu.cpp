// `roformer bleu HYP REF [REF...]`: corpus BLEU with sacreBLEU's defaults
// (13a tokenisation, exp smoothing), printed as sacreBLEU's JSON plus every
// component. One line of HYP per line of each REF; "-" reads stdin.
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>
#include <sstream>

#include "roformer/bleu.h"
#include "roformer/error.h"
#include "tools/commands.h"

namespace roformer::cli {
namespace {

// Lines split at '\n' only, as sacreBLEU reads them (a final newline ends the
// last line; '\r' and other trailing whitespace are stripped later).
std::vector<std::string> read_lines(const std::string& path) {
  std::string text;
  if (path == "-") {
    std::ostringstream ss;
    ss << std::cin.rdbuf();
    text = ss.str();
  } else {
    std::ifstream in(path, std::ios::binary);
    check(static_cast<bool>(in), "bleu: cannot open " + path);
    std::ostringstream ss;
    ss << in.rdbuf();
    text = ss.str();
  }
  std::vector<std::string> lines;
  std::size_t pos = 0;
  while (pos < text.size()) {
    std::size_t end = text.find('\n', pos);
    if (end == std::string::npos) end = text.size();
    lines.push_back(text.substr(pos, end - pos));
    pos = end + 1;
  }
  return lines;
}

// sacreBLEU prints float(f"{score:.{width}f}").
double rounded(double v, int width) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", width, v);
  return std::strtod(buf, nullptr);
}

}  // namespace

void register_bleu(CLI::App& app) {
  struct Options {
    std::string hyp;
    std::vector<std::string> refs;
    std::string tokenize = "13a";
    std::string smooth = "exp";
    double smooth_value = -1.0;
    bool lowercase = false;
    int width = 1;
  };
  auto opt = std::make_shared<Options>();
  CLI::App* cmd = app.add_subcommand("bleu", "corpus BLEU of a hypothesis file against reference file(s), sacreBLEU-compatible");
  cmd->add_option("hypotheses", opt->hyp, "hypothesis file, one sentence a line (- for stdin)")->required();
  cmd->add_option("references", opt->refs, "reference file(s), line-aligned with the hypotheses (- for stdin)")
      ->required();
  cmd->add_option("--tokenize", opt->tokenize, "13a (sacreBLEU's default) or none")
      ->check(CLI::IsMember({"13a", "none"}))
      ->capture_default_str();
  cmd->add_option("--smooth-method,-s", opt->smooth, "exp (default), none, floor or add-k")
      ->check(CLI::IsMember({"exp", "none", "floor", "add-k"}))
      ->capture_default_str();
  cmd->add_option("--smooth-value", opt->smooth_value, "value for floor (0.1) and add-k (1)");
  cmd->add_flag("--lowercase,--lc", opt->lowercase, "case-insensitive BLEU");
  cmd->add_option("--width,-w", opt->width, "decimals of the printed score")->capture_default_str();
  cmd->callback([opt] {
    check(opt->width >= 0 && opt->width <= 17, "bleu: --width must be in 0..17");
    int stdin_uses = opt->hyp == "-" ? 1 : 0;
    for (const auto& r : opt->refs) stdin_uses += r == "-" ? 1 : 0;
    check(stdin_uses <= 1, "bleu: only one of the files can be - (stdin)");

    BleuOptions o;
    o.tokenize = opt->tokenize == "none" ? BleuTokenize::None : BleuTokenize::V13a;
    o.smoothing = opt->smooth == "none"    ? BleuSmoothing::None
                  : opt->smooth == "floor" ? BleuSmoothing::Floor
                  : opt->smooth == "add-k" ? BleuSmoothing::AddK
                                           : BleuSmoothing::Exp;
    o.smooth_value = opt->smooth_value;
    o.lowercase = opt->lowercase;

    const std::vector<std::string> hyps = read_lines(opt->hyp);
    std::vector<std::vector<std::string>> refs;
    for (const auto& r : opt->refs) {
      refs.push_back(read_lines(r));
      check(refs.back().size() == hyps.size(), "bleu: " + opt->hyp + " has " + std::to_string(hyps.size()) +
                                                   " lines but " + r + " has " + std::to_string(refs.back().size()));
    }
    const BleuResult b = corpus_bleu_multiref(hyps, refs, o);

    nlohmann::ordered_json j;
    j["name"] = "BLEU";
    j["score"] = rounded(b.score, opt->width);
    j["signature"] = b.signature;
    j["verbose_score"] = b.verbose();
    j["score_unrounded"] = b.score;
    j["precisions"] = b.precisions;
    j["counts"] = b.counts;
    j["totals"] = b.totals;
    j["bp"] = b.bp;
    j["ratio"] = b.ratio;
    j["sys_len"] = b.sys_len;
    j["ref_len"] = b.ref_len;
    // The signature's fields one by one, as sacreBLEU's JSON has them.
    std::stringstream sig(b.signature);
    for (std::string field; std::getline(sig, field, '|');) {
      const auto colon = field.find(':');
      if (colon != std::string::npos) j[field.substr(0, colon)] = field.substr(colon + 1);
    }
    std::printf("%s\n", j.dump(1).c_str());
  });
}

}  // namespace roformer::cli
