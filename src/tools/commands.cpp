#include "tools/commands.h"

namespace roformer::cli {

void register_commands(CLI::App& app) {
  register_demo(app);
  register_decay(app);
  register_info(app);
  register_forward(app);
  register_export(app);
  register_tokenize(app);
  register_fill_mask(app);
  register_classify(app);
  register_choose(app);
  register_embed(app);
  register_qa(app);
  register_generate(app);
  register_plot(app);
  register_pretrain(app);
  register_data(app);
  register_finetune(app);
  register_eval(app);
  register_experiment(app);
  register_bleu(app);
  register_translate(app);
  register_train_translation(app);
}

}  // namespace roformer::cli
