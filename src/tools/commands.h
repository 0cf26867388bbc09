#pragma once
// Each subcommand lives in its own file and registers itself here.
#include <CLI/CLI.hpp>

namespace roformer::cli {

void register_commands(CLI::App& app);

void register_demo(CLI::App& app);
void register_decay(CLI::App& app);
void register_info(CLI::App& app);
void register_forward(CLI::App& app);
void register_export(CLI::App& app);
void register_tokenize(CLI::App& app);
void register_fill_mask(CLI::App& app);
void register_classify(CLI::App& app);
void register_choose(CLI::App& app);
void register_embed(CLI::App& app);
void register_qa(CLI::App& app);
void register_generate(CLI::App& app);
void register_plot(CLI::App& app);
void register_pretrain(CLI::App& app);
void register_data(CLI::App& app);
void register_finetune(CLI::App& app);
void register_eval(CLI::App& app);
void register_experiment(CLI::App& app);
void register_bleu(CLI::App& app);
void register_translate(CLI::App& app);
void register_train_translation(CLI::App& app);

}  // namespace roformer::cli
