#pragma once
// What the Google Benchmark programs' table reporters share: every finished
// run of a benchmark named "impl/key" (Google Benchmark may append
// "/real_time"), kept per key and implementation over the repetitions, so
// the table printed after the normal report can take medians.
#include <benchmark/benchmark.h>

#include <map>
#include <optional>
#include <string>
#include <vector>

namespace roformer::bench {

class RunTable : public benchmark::ConsoleReporter {
 public:
  void ReportRuns(const std::vector<Run>& runs) override {
    ConsoleReporter::ReportRuns(runs);
    for (const Run& r : runs) {
      if (r.run_type != Run::RT_Iteration || r.error_occurred) continue;
      std::string name = r.benchmark_name();
      if (const auto rt = name.rfind("/real_time"); rt != std::string::npos) name.erase(rt);
      const std::size_t slash = name.find('/');
      if (const std::optional<double> v = value(r)) values_[name.substr(slash + 1)][name.substr(0, slash)].push_back(*v);
    }
  }

 protected:
  // What a run contributes: its real time per iteration (the unit it was
  // registered with) unless a reporter keeps a counter instead.
  virtual std::optional<double> value(const Run& r) const { return r.GetAdjustedRealTime(); }

  std::map<std::string, std::map<std::string, std::vector<double>>> values_;  // key -> impl -> values
};

}  // namespace roformer::bench
