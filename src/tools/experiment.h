#pragma once
// What the experiments of `roformer experiment` share: the scale and run
// context, mean ± std, and metric curves. cmd_experiment.cpp holds the
// pre-training experiments (a)-(e); each further experiment lives in its own
// file and is called from there.
#include <cstdint>
#include <string>
#include <vector>

#include "roformer/plot.h"

namespace roformer::cli {

// Sizes of one experiment scale (of the MLM-based experiments; the
// translation experiment keeps its own sizes, keyed by the same name).
struct Scale {
  std::string name;
  int64_t hidden, layers, heads, intermediate, seq_len, batch, steps, eval_every, eval_batches, vocab_size;
  std::string train_text, valid_text, mail_jsonl, long_jsonl, long_label_field;
  std::vector<int64_t> long_lengths;
  int64_t finetune_epochs;
  int seeds;
  // (c): epochs over the long documents, the splits it is scored on, the
  // documents per optimizer step (the same at every maximum length, so only
  // the length changes between rows) and the candidate peak learning rates
  // (with several, seed 0 at the shortest length picks one by held-out loss).
  int64_t long_epochs;
  std::string long_valid_split;
  int64_t long_batch;
  std::vector<double> long_lrs;
  // (e): the character LM's batch and steps (linear attention costs more per token).
  int64_t lm_batch, lm_steps;
  // (b): candidate peak learning rates (with several, seed 0 of each variant
  // picks that variant's by held-out loss).
  std::vector<double> finetune_lrs;
};

struct ExperimentContext {
  Scale scale;
  std::string out;
  int threads = 1;
  int seeds = 1;
  std::string command;  // how this was run, for the report
};

struct MeanStd {
  double mean = 0, std = 0;
  int n = 0;
};

MeanStd summarize(const std::vector<double>& v);
// "mean ± std" (just the mean for one value), times `scale`.
std::string fmt(const MeanStd& s, int digits = 4, double scale = 1.0);

// (step, value) pairs of one key in a metrics.jsonl.
PlotSeries curve(const std::string& metrics, const std::string& key);
// The point-wise mean of runs that logged at the same steps.
PlotSeries mean_curve(const std::vector<PlotSeries>& runs, const std::string& name);

// (f) machine translation, RoPE vs sinusoidal positions (experiment_translation.cpp).
std::string run_translation(const ExperimentContext& c);

}  // namespace roformer::cli
