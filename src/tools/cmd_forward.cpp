// `roformer forward`: run a checkpoint on tensors from a safetensors file and
// write every output to another: the bridge for comparing with other engines.
// With --backward it also computes the head's loss from train.labels (or
// train.start_positions / train.end_positions for QA) and writes train.loss
// and grad.<HF parameter name>, so gradients compare with PyTorch's.
#include <cstdio>
#include <memory>

#include "roformer/error.h"
#include "roformer/model.h"
#include "roformer/safetensors.h"
#include "roformer/training.h"
#include "tools/commands.h"
#include "tools/common.h"

namespace roformer::cli {

void register_forward(CLI::App& app) {
  struct Options {
    std::string model, input, output, task;
    bool hidden_states = false, attentions = false, backward = false;
    ExecOptions exec;
  };
  auto opt = std::make_shared<Options>();
  CLI::App* cmd = app.add_subcommand("forward", "run a model on input_ids/attention_mask/token_type_ids from a safetensors file");
  cmd->add_option("--model,-m", opt->model, "HF checkpoint directory")->required();
  cmd->add_option("--input,-i", opt->input, "safetensors with input_ids (I64) [+ attention_mask, token_type_ids]")
      ->required();
  cmd->add_option("--output,-o", opt->output, "safetensors to write")->required();
  cmd->add_option("--task", opt->task, "use this head instead of config.architectures (mlm, cls, tok, qa, mc, causal, base)");
  cmd->add_flag("--hidden-states", opt->hidden_states, "also write hidden_states.<i>");
  cmd->add_flag("--attentions", opt->attentions, "also write attentions.<i>");
  cmd->add_flag("--backward", opt->backward,
                "also compute the loss from train.labels (QA: train.start_positions/end_positions) and write "
                "train.loss and grad.<parameter> (dropout off)");
  add_exec_options(cmd, opt->exec);
  cmd->callback([opt] {
    const ExecContext ctx = opt->exec.context();
    LoadOptions load;
    if (!opt->task.empty()) load.task = task_from_name(opt->task);
    const bool reduced = opt->exec.set_precision(load);
    check(!(reduced && opt->backward), "--backward needs --dtype f32 (bf16 and int8 are for inference)");
    RoFormerModel model = RoFormerModel::from_pretrained(opt->model, load);
    SafeTensors in = SafeTensors::open(opt->input);
    check(in.contains("input_ids"), opt->input + ": no tensor named input_ids");
    Batch batch{in.get("input_ids"), in.contains("attention_mask") ? in.get("attention_mask") : Tensor{},
                in.contains("token_type_ids") ? in.get("token_type_ids") : Tensor{}};
    ModelOutput out = model.forward(batch, ForwardOptions{opt->hidden_states, opt->attentions}, ctx);
    print_warnings(out.warnings);
    std::vector<std::pair<std::string, Tensor>> tensors{{"last_hidden_state", out.last_hidden_state}};
    for (std::size_t i = 0; i < out.hidden_states.size(); ++i)
      tensors.emplace_back("hidden_states." + std::to_string(i), out.hidden_states[i]);
    for (std::size_t i = 0; i < out.attentions.size(); ++i)
      tensors.emplace_back("attentions." + std::to_string(i), out.attentions[i]);
    for (const auto& [name, t] : out.heads) tensors.emplace_back(name, t);
    if (opt->backward) {
      TrainLabels labels;
      if (in.contains("train.labels")) labels.labels = in.get("train.labels");
      if (in.contains("train.start_positions")) labels.start_positions = in.get("train.start_positions");
      if (in.contains("train.end_positions")) labels.end_positions = in.get("train.end_positions");
      check(in.contains("train.labels") || in.contains("train.start_positions"),
            opt->input + ": --backward needs train.labels (or train.start_positions and train.end_positions for QA)");
      TrainableRoFormer trainable(model);
      trainable.zero_grad();
      const TrainStep step = trainable.forward_backward(batch, labels, ctx);
      tensors.emplace_back("train.loss", Tensor::from_vector({1}, {static_cast<float>(step.loss)}));
      for (auto& p : trainable.parameters()) tensors.emplace_back("grad." + p.name, p.grad);
      std::printf("loss %.6f over %lld labelled items\n", step.loss, static_cast<long long>(step.examples));
    }
    save_safetensors(opt->output, tensors);
    std::printf("wrote %zu tensors to %s\n", tensors.size(), opt->output.c_str());
  });
}

}  // namespace roformer::cli
