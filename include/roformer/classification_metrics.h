#pragma once
// Metrics of a classifier from its confusion matrix: accuracy, macro-averaged
// F1 (as scikit-learn's f1_score(average="macro"), classes absent from both
// predictions and labels left out), and the Matthews correlation coefficient
// in its multi-class form (Gorodkin's R_K, scikit-learn's matthews_corrcoef).
#include <cstdint>
#include <vector>

namespace roformer {

class ConfusionMatrix {
 public:
  explicit ConfusionMatrix(int64_t classes);

  void add(int64_t label, int64_t predicted);  // both in [0, classes)
  int64_t classes() const { return classes_; }
  int64_t total() const { return total_; }
  int64_t count(int64_t label, int64_t predicted) const;

  double accuracy() const;
  double f1(int64_t cls) const;  // 0 when the class has no true or predicted item
  double macro_f1() const;
  double mcc() const;  // 0 when it is undefined (a constant prediction or label)

 private:
  int64_t classes_;
  int64_t total_ = 0;
  std::vector<int64_t> cells_;  // [label * classes + predicted]
};

}  // namespace roformer
