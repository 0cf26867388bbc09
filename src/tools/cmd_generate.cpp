// `roformer generate`: continue prompts with a causal RoFormer LM.
#include <cstdio>
#include <memory>
#include <nlohmann/json.hpp>

#include "roformer/error.h"
#include "roformer/generate.h"
#include "tools/commands.h"
#include "tools/text_batch.h"

namespace roformer::cli {

void register_generate(CLI::App& app) {
  struct Options {
    TextOptions text;
    GenerateOptions gen;
    bool no_stop = false;
  };
  auto opt = std::make_shared<Options>();
  CLI::App* cmd = app.add_subcommand("generate", "continue prompts with a causal LM (greedy or top-k/top-p sampling)");
  add_text_options(cmd, opt->text, "prompts");
  cmd->add_option("--max-new-tokens,-n", opt->gen.max_new_tokens, "tokens to add")->capture_default_str();
  cmd->add_flag("--sample", opt->gen.sample, "sample instead of greedy decoding");
  cmd->add_option("--temperature", opt->gen.temperature, "sampling temperature")->capture_default_str();
  cmd->add_option("--top-k", opt->gen.top_k, "sample among the k most likely tokens (0: all)")->capture_default_str();
  cmd->add_option("--top-p", opt->gen.top_p, "nucleus sampling mass")->capture_default_str();
  cmd->add_option("--seed", opt->gen.seed, "random seed")->capture_default_str();
  cmd->add_flag("--no-stop", opt->no_stop, "do not stop at the separator token");
  cmd->callback([opt] {
    const ExecContext ctx = opt->text.exec.context();
    LoadedPipeline p = load_pipeline(opt->text, Task::CausalLM);
    GenerateOptions gen = opt->gen;
    if (!opt->no_stop) gen.eos_token_id = p.tokenizer.sep_id();
    KvCache cache;  // one for every prompt: its memory is paged in once
    for (const auto& prompt : read_inputs(opt->text.texts)) {
      Encoding e = encode_text(p.tokenizer, opt->text, prompt);
      // The prompt continues where the text ends: drop the closing separator.
      if (e.input_ids.size() > 1 && e.input_ids.back() == p.tokenizer.sep_id()) e.input_ids.pop_back();
      const auto ids = generate(p.model, e.input_ids, gen, ctx, cache);
      const nlohmann::json line = {{"prompt", prompt},
                                   {"generated", p.tokenizer.decode(ids, true)},
                                   {"ids", ids}};
      std::printf("%s\n", line.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace).c_str());
    }
  });
}

}  // namespace roformer::cli
