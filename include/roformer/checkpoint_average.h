#pragma once
// Checkpoint averaging as fairseq's scripts/average_checkpoints.py does it:
// the element-wise mean of the parameters of several checkpoints (usually
// the last N of one run), saved as a new model. Averaging the end of a
// training run smooths out the last updates' noise and usually gains a
// little BLEU for translation models.
//
// Inputs are model.safetensors files (or directories holding one). Every
// input must have the same tensor names, shapes and dtypes, else Error naming
// the tensor and the file. The mean is accumulated in double and rounded once
// to the stored dtype (F32 or BF16); integer tensors (I64, e.g. position ids)
// get the floor of the mean, as in fairseq. The output keeps the first
// input's tensor order and metadata, plus "averaged_checkpoints": "N".
#include <cstdint>
#include <string>
#include <vector>

namespace roformer {

struct CheckpointAverageReport {
  std::vector<std::string> inputs;  // the safetensors files averaged, in the order given
  int64_t tensors = 0;
  int64_t elements = 0;
};

// Writes the average of `inputs` to `output` (a .safetensors path; written
// atomically). Throws Error on mismatched or unreadable inputs.
CheckpointAverageReport average_checkpoints(const std::vector<std::string>& inputs, const std::string& output);

// The model.safetensors of the last `n` "checkpoint-<step>" folders of a run
// directory (what `roformer pretrain` writes), ordered by step, oldest first.
// Throws Error when fewer than `n` exist.
std::vector<std::string> last_checkpoints(const std::string& run_dir, int n);

}  // namespace roformer
