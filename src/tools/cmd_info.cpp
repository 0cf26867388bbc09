// `roformer info`: what a checkpoint directory holds, as one JSON object.
#include <cstdio>
#include <filesystem>
#include <memory>
#include <nlohmann/json.hpp>

#include "roformer/model.h"
#include "tools/commands.h"

namespace roformer::cli {

void register_info(CLI::App& app) {
  auto model_dir = std::make_shared<std::string>();
  CLI::App* cmd = app.add_subcommand("info", "describe an HF RoFormer checkpoint directory (JSON)");
  cmd->add_option("--model,-m", *model_dir, "HF checkpoint directory")->required();
  cmd->callback([model_dir] {
    namespace fs = std::filesystem;
    RoFormerModel model = RoFormerModel::from_pretrained(*model_dir);
    const RoFormerConfig& c = model.config();
    int64_t params = 0;
    nlohmann::json tensors = nlohmann::json::array();
    for (const auto& [name, t] : model.named_tensors()) {
      if (name.find("embed_positions") == std::string::npos) params += t.numel();  // a fixed table, not trained
      tensors.push_back({{"name", name}, {"shape", t.shape()}});
    }
    nlohmann::json files = nlohmann::json::array();
    for (const auto& entry : fs::directory_iterator(*model_dir))
      if (entry.is_regular_file()) files.push_back(entry.path().filename().string());
    std::sort(files.begin(), files.end());
    nlohmann::json labels = nlohmann::json::object();
    for (const auto& [id, name] : c.id2label) labels[std::to_string(id)] = name;
    nlohmann::json j = {
        {"class", std::string(task_name(model.task()))},
        {"parameters", params},
        {"vocab_size", c.vocab_size},
        {"embedding_size", c.embedding_dim()},
        {"hidden_size", c.hidden_size},
        {"layers", c.num_hidden_layers},
        {"heads", c.num_attention_heads},
        {"head_dim", c.head_dim()},
        {"intermediate_size", c.intermediate_size},
        {"hidden_act", c.hidden_act},
        {"rotary_value", c.rotary_value},
        {"is_decoder", c.is_decoder},
        {"max_position_embeddings", c.max_position_embeddings},
        {"labels", labels},
        {"files", files},
        {"tensors", tensors},
    };
    std::printf("%s\n", j.dump(2).c_str());
  });
}

}  // namespace roformer::cli
