// `roformer export`: write a model as an HF directory (config.json,
// model.safetensors, and the tokenizer files) that transformers loads back;
// also converts pytorch_model.bin checkpoints to safetensors.
#include <cstdio>
#include <filesystem>
#include <memory>

#include "roformer/error.h"
#include "roformer/model.h"
#include "tools/commands.h"

namespace roformer::cli {

void register_export(CLI::App& app) {
  struct Options {
    std::string model, out, task;
  };
  auto opt = std::make_shared<Options>();
  CLI::App* cmd = app.add_subcommand("export", "save a model as an HF directory (config.json, model.safetensors, tokenizer files)");
  cmd->add_option("--model,-m", opt->model, "HF checkpoint directory to read")->required();
  cmd->add_option("--out,-o", opt->out, "directory to write")->required();
  cmd->add_option("--task", opt->task, "keep only this head (mlm, causal, cls, tok, qa, mc, base)");
  cmd->callback([opt] {
    namespace fs = std::filesystem;
    check(fs::weakly_canonical(opt->model) != fs::weakly_canonical(opt->out),
          "export: --out must differ from --model");
    LoadOptions load;
    if (!opt->task.empty()) load.task = task_from_name(opt->task);
    RoFormerModel model = RoFormerModel::from_pretrained(opt->model, load);
    model.save_pretrained(opt->out);
    int copied = 0;
    for (const char* name : {"vocab.txt", "tokenizer_config.json", "special_tokens_map.json", "generation_config.json"}) {
      const fs::path src = fs::path(opt->model) / name;
      if (!fs::exists(src)) continue;
      std::error_code ec;
      fs::copy_file(src, fs::path(opt->out) / name, fs::copy_options::overwrite_existing, ec);
      check(!ec, "export: cannot copy " + src.string() + ": " + ec.message());
      ++copied;
    }
    std::printf("wrote %s (%s, %zu tensors, %d tokenizer files)\n", opt->out.c_str(),
                std::string(task_name(model.task())).c_str(), model.named_tensors().size(), copied);
  });
}

}  // namespace roformer::cli
