// `roformer translate`: source lines (arguments, or stdin one per line) to
// target lines on stdout, with a sequence-to-sequence RoFormer directory.
#include <cstdio>
#include <memory>

#include "roformer/error.h"
#include "roformer/translation.h"
#include "tools/commands.h"
#include "tools/common.h"

namespace roformer::cli {

void register_translate(CLI::App& app) {
  struct Options {
    std::string model;
    std::vector<std::string> texts;
    DecodeOptions decode;
    int64_t batch_size = 16;
    ExecOptions exec;
  };
  auto opt = std::make_shared<Options>();
  CLI::App* cmd = app.add_subcommand("translate", "translate lines with a sequence-to-sequence RoFormer (beam search)");
  cmd->add_option("--model,-m", opt->model, "model directory (config.json with model_type roformer_seq2seq, model.safetensors, vocab.txt)")
      ->required();
  cmd->add_option("texts", opt->texts, "source texts (default: one per line on stdin)");
  cmd->add_option("--beam", opt->decode.beam, "beam size (1: greedy)")->capture_default_str();
  cmd->add_option("--lenpen", opt->decode.lenpen, "length penalty alpha: score / length^alpha")->capture_default_str();
  cmd->add_option("--max-len-a", opt->decode.max_len_a, "maximum length = a * source length + b")->capture_default_str();
  cmd->add_option("--max-len-b", opt->decode.max_len_b, "maximum length = a * source length + b")->capture_default_str();
  cmd->add_option("--min-len", opt->decode.min_len, "no end of sentence before this many tokens")->capture_default_str();
  cmd->add_option("--batch-size", opt->batch_size, "sentences decoded together")->capture_default_str();
  add_exec_options(cmd, opt->exec);
  cmd->callback([opt] {
    const ExecContext ctx = opt->exec.context();
    const std::vector<std::string> lines = read_inputs(opt->texts);
    for (std::size_t i = 0; i < lines.size(); ++i) {
      const bool blank = lines[i].find_first_not_of(" \t\r\n\f\v") == std::string::npos;
      check(!blank, "input line " + std::to_string(i + 1) + " is empty; give one sentence per line");
    }
    const Seq2SeqModel model = Seq2SeqModel::from_pretrained(opt->model);
    const Tokenizer tok = Tokenizer::from_pretrained(opt->model);
    for (const std::string& out : translate_lines(model, tok, lines, opt->decode, opt->batch_size, ctx))
      std::printf("%s\n", out.c_str());
  });
}

}  // namespace roformer::cli
