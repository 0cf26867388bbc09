// The element-wise mean of several safetensors checkpoints.
#include "roformer/checkpoint_average.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <map>
#include <utility>

#include "roformer/error.h"
#include "roformer/safetensors.h"

namespace roformer {
namespace fs = std::filesystem;

namespace {

std::string resolve_input(const std::string& path) {
  if (fs::is_directory(path)) {
    const fs::path file = fs::path(path) / "model.safetensors";
    check(fs::is_regular_file(file), "average_checkpoints: " + path + " holds no model.safetensors");
    return file.string();
  }
  return path;
}

// Adds the values of `t` to `sum` (floats) or `isum` (integers).
void accumulate(const Tensor& t, std::vector<double>& sum, std::vector<int64_t>& isum, const std::string& where) {
  const std::size_t n = static_cast<std::size_t>(t.numel());
  switch (t.dtype()) {
    case DType::F32: {
      const float* p = t.data<float>();
      for (std::size_t i = 0; i < n; ++i) sum[i] += static_cast<double>(p[i]);
      break;
    }
    case DType::BF16: {
      const bf16* p = t.data<bf16>();
      for (std::size_t i = 0; i < n; ++i) sum[i] += static_cast<double>(bf16_to_f32(p[i]));
      break;
    }
    case DType::I64: {
      const int64_t* p = t.data<int64_t>();
      for (std::size_t i = 0; i < n; ++i)
        check(!__builtin_add_overflow(isum[i], p[i], &isum[i]),
              "average_checkpoints: the sum of integer tensor " + where + " overflows int64");
      break;
    }
  }
}

// Floor division, also for negative sums (Python's //, which fairseq uses).
int64_t floor_div(int64_t a, int64_t b) {
  const int64_t q = a / b;
  return (a % b != 0 && ((a < 0) != (b < 0))) ? q - 1 : q;
}

}  // namespace

CheckpointAverageReport average_checkpoints(const std::vector<std::string>& inputs, const std::string& output) {
  check(!inputs.empty(), "average_checkpoints: no checkpoint given");
  CheckpointAverageReport report;
  std::vector<SafeTensors> files;
  for (const auto& in : inputs) {
    report.inputs.push_back(resolve_input(in));
    files.push_back(SafeTensors::open(report.inputs.back()));
  }
  const SafeTensors& first = files.front();
  const std::vector<std::string> names = first.names();
  for (std::size_t f = 1; f < files.size(); ++f) {
    const std::vector<std::string> other = files[f].names();
    for (const auto& name : names)
      check(files[f].contains(name),
            "average_checkpoints: tensor '" + name + "' of " + first.path() + " is missing from " + files[f].path());
    for (const auto& name : other)
      check(first.contains(name),
            "average_checkpoints: tensor '" + name + "' of " + files[f].path() + " is not in " + first.path());
  }

  const int64_t count = static_cast<int64_t>(files.size());
  std::vector<std::pair<std::string, Tensor>> averaged;
  for (const auto& name : names) {
    const SafeTensorInfo& info = first.info(name);
    check(info.dtype == "F32" || info.dtype == "BF16" || info.dtype == "I64",
          "average_checkpoints: tensor '" + name + "' has dtype " + info.dtype +
              "; only F32, BF16 and I64 can be averaged and written back");
    for (std::size_t f = 1; f < files.size(); ++f) {
      const SafeTensorInfo& o = files[f].info(name);
      check(o.dtype == info.dtype, "average_checkpoints: tensor '" + name + "' is " + info.dtype + " in " +
                                       first.path() + " but " + o.dtype + " in " + files[f].path());
      check(o.shape == info.shape, "average_checkpoints: tensor '" + name + "' has shape " + shape_str(info.shape) +
                                       " in " + first.path() + " but " + shape_str(o.shape) + " in " + files[f].path());
    }
    const std::size_t n = static_cast<std::size_t>(shape_numel(info.shape));
    std::vector<double> sum(info.dtype == "I64" ? 0 : n, 0.0);
    std::vector<int64_t> isum(info.dtype == "I64" ? n : 0, 0);
    DType dtype = DType::F32;
    for (const SafeTensors& file : files) {
      const Tensor t = file.get(name);
      dtype = t.dtype();
      accumulate(t, sum, isum, "'" + name + "'");
    }
    Tensor out = Tensor::zeros(info.shape, dtype);
    const double inv = 1.0 / static_cast<double>(count);
    switch (dtype) {
      case DType::F32:
        for (std::size_t i = 0; i < n; ++i) out.data<float>()[i] = static_cast<float>(sum[i] * inv);
        break;
      case DType::BF16:
        for (std::size_t i = 0; i < n; ++i) out.data<bf16>()[i] = f32_to_bf16(static_cast<float>(sum[i] * inv));
        break;
      case DType::I64:
        for (std::size_t i = 0; i < n; ++i) out.data<int64_t>()[i] = floor_div(isum[i], count);
        break;
    }
    report.elements += static_cast<int64_t>(n);
    averaged.emplace_back(name, std::move(out));
  }
  report.tensors = static_cast<int64_t>(averaged.size());

  std::map<std::string, std::string> metadata = first.metadata();
  if (!metadata.count("format")) metadata["format"] = "pt";
  metadata["averaged_checkpoints"] = std::to_string(count);
  save_safetensors(output, averaged, metadata);
  return report;
}

std::vector<std::string> last_checkpoints(const std::string& run_dir, int n) {
  check(n >= 1, "last_checkpoints: n must be at least 1, got " + std::to_string(n));
  check(fs::is_directory(run_dir), "last_checkpoints: " + run_dir + " is not a directory");
  std::vector<std::pair<int64_t, std::string>> found;
  const std::string prefix = "checkpoint-";
  for (const auto& entry : fs::directory_iterator(run_dir)) {
    const std::string name = entry.path().filename().string();
    if (!entry.is_directory() || name.rfind(prefix, 0) != 0 || name.size() == prefix.size() || name.size() > prefix.size() + 18)
      continue;
    const std::string digits = name.substr(prefix.size());
    if (!std::all_of(digits.begin(), digits.end(), [](char c) { return c >= '0' && c <= '9'; })) continue;
    const fs::path model = entry.path() / "model.safetensors";
    if (fs::is_regular_file(model)) found.emplace_back(std::stoll(digits), model.string());
  }
  check(static_cast<int>(found.size()) >= n, "last_checkpoints: " + run_dir + " has " + std::to_string(found.size()) +
                                                 " checkpoint-<step> folders with a model.safetensors, " +
                                                 std::to_string(n) + " asked for");
  std::sort(found.begin(), found.end());
  std::vector<std::string> out;
  for (std::size_t i = found.size() - static_cast<std::size_t>(n); i < found.size(); ++i) out.push_back(found[i].second);
  return out;
}

}  // namespace roformer
