#include <array>
#include <utility>

#include "roformer/error.h"
#include "roformer/model.h"

namespace roformer {

namespace {

struct TaskNames {
  Task task;
  std::string_view hf;
  std::string_view short_name;
};

constexpr std::array<TaskNames, 7> kTasks{{
    {Task::Base, "RoFormerModel", "base"},
    {Task::MaskedLM, "RoFormerForMaskedLM", "mlm"},
    {Task::CausalLM, "RoFormerForCausalLM", "causal"},
    {Task::SequenceClassification, "RoFormerForSequenceClassification", "cls"},
    {Task::TokenClassification, "RoFormerForTokenClassification", "tok"},
    {Task::QuestionAnswering, "RoFormerForQuestionAnswering", "qa"},
    {Task::MultipleChoice, "RoFormerForMultipleChoice", "mc"},
}};

}  // namespace

std::string_view task_name(Task task) {
  for (const auto& t : kTasks)
    if (t.task == task) return t.hf;
  return "unknown";
}

Task task_from_name(std::string_view name) {
  for (const auto& t : kTasks)
    if (name == t.hf || name == t.short_name) return t.task;
  throw Error("unknown model class \"" + std::string(name) +
              "\" (expected RoFormerModel, RoFormerForMaskedLM, RoFormerForCausalLM, "
              "RoFormerForSequenceClassification, RoFormerForTokenClassification, "
              "RoFormerForQuestionAnswering or RoFormerForMultipleChoice)");
}

}  // namespace roformer
