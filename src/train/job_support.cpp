#include "train/job_support.h"

#include <fstream>

#include "roformer/error.h"

namespace roformer::train {

using nlohmann::json;

json merge_options(const std::string& text, json defaults, const std::string& what) {
  json j;
  try {
    j = json::parse(text);
  } catch (const json::exception& e) {
    throw Error(what + ": not valid JSON: " + e.what());
  }
  ROFORMER_CHECK(j.is_object(), what + ": the top level must be an object");
  for (const auto& [k, v] : j.items()) {
    ROFORMER_CHECK(defaults.contains(k), what + ": unknown key \"" + k + "\"");
    defaults[k] = v;
  }
  return defaults;
}

std::vector<Parameter> optimizer_parameters(const TrainableRoFormer& model) {
  std::vector<Parameter> params;
  for (const auto& p : model.parameters())
    params.push_back({p.name, p.value.data<float>(), p.grad.data<float>(), p.value.numel(), true, p.value.shape()});
  return params;
}

AdamW bert_adamw(const std::vector<Parameter>& params, double lr, double weight_decay, const ExecContext& ctx) {
  AdamWOptions o;
  o.lr = lr;
  o.weight_decay = weight_decay;
  o.exec = ctx;
  return AdamW(params, bert_style_groups(params, weight_decay), o);
}

void append_json_line(const std::string& path, const json& j) {
  std::ofstream out(path, std::ios::app);
  out << j.dump() << "\n";
}

}  // namespace roformer::train
