#pragma once
// Shared helpers for the test programs: fixture paths, random data, comparisons.
#include <gtest/gtest.h>

#include <cstdint>
#include <nlohmann/json.hpp>
#include <random>
#include <string>
#include <vector>

#include "roformer/cpu.h"
#include "roformer/error.h"
#include "roformer/tensor.h"

namespace roformer::testing {

// Path of a file under tests/data (fixtures are copied there from the HF harness).
std::string data_path(const std::string& relative);
// Path of a fixture checkpoint directory, tests/data/fixtures/<name>.
std::string fixture_dir(const std::string& name);
// Path of the built `roformer` command-line program.
std::string cli_path();

// The lines of a JSON-lines file under tests/data, parsed (goldens written by
// the generators next to them); throws when the file is missing or empty.
std::vector<nlohmann::json> read_jsonl(const std::string& relative);

// Compares `compute(text)` with the string list under `key` of every
// {"text", key} line of a JSON-lines golden file, reporting the first ten
// differences as test failures; returns the number of lines compared.
template <class Compute>
std::size_t expect_word_goldens(const std::string& relative, const std::string& key, Compute compute) {
  const auto goldens = read_jsonl(relative);
  int failures = 0;
  for (const auto& golden : goldens) {
    const std::string text = golden["text"];
    const auto want = golden[key].template get<std::vector<std::string>>();
    const std::vector<std::string> got = compute(text);
    if (got != want && ++failures <= 10) {
      ADD_FAILURE() << relative << ": " << nlohmann::json(text).dump() << "\n  want " << nlohmann::json(want).dump()
                    << "\n  got  " << nlohmann::json(got).dump();
    }
  }
  EXPECT_EQ(failures, 0) << relative;
  return goldens.size();
}

// Writes `bytes` to `path` as they are (binary), replacing the file.
void write_file(const std::string& path, const std::string& bytes);

// Same shape, dtype and bytes.
bool same_bits(const Tensor& a, const Tensor& b);

// Runs `fn`, expecting a roformer::Error whose message contains `needle`.
template <typename Fn>
void expect_error(Fn fn, const std::string& needle) {
  try {
    fn();
    ADD_FAILURE() << "no error; expected one mentioning '" << needle << "'";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << "message: " << e.what();
  }
}

// Test names for suites run once per instruction set.
inline std::string isa_param_name(const ::testing::TestParamInfo<Isa>& info) { return std::string(isa_name(info.param)); }

std::vector<float> random_floats(std::size_t n, uint32_t seed, float lo = -1.0f, float hi = 1.0f);

// max |a - b| over two equally sized float ranges.
double max_abs_diff(const std::vector<float>& a, const std::vector<float>& b);

// max |got - ref| / max(1, max |ref|): a difference on the reference's scale.
double max_scaled_diff(const std::vector<float>& got, const std::vector<float>& ref);
double max_abs(const std::vector<float>& a);

// Runs a shell command, returns its exit status and captures stdout (+ stderr when asked).
struct CommandResult {
  int status = -1;
  std::string output;
};
CommandResult run_command(const std::string& command);

// A fresh, empty directory under the system temp folder, removed by the destructor.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }
  std::string file(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

}  // namespace roformer::testing
