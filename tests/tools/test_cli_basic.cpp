// The command-line program end to end: exit codes, outputs, one-line errors.
#include <gtest/gtest.h>

#include <fstream>
#include <sstream>
#include <string>

#include "support/test_support.h"

namespace roformer::testing {
namespace {

std::string read_file(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

TEST(Cli, DemoRunsAndReportsRelativeProperty) {
  const auto r = run_command(cli_path() + " demo 2>&1");
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_NE(r.output.find("RoPE demo"), std::string::npos) << r.output;
}

TEST(Cli, DecayWritesCsvAndSvg) {
  TempDir dir;
  const auto r = run_command(cli_path() + " decay -d 64 -n 40 --csv " + dir.file("d.csv") + " --svg " +
                             dir.file("d.svg") + " 2>&1");
  ASSERT_EQ(r.status, 0) << r.output;
  const std::string csv = read_file(dir.file("d.csv"));
  std::istringstream lines(csv);
  std::string line;
  int rows = 0;
  std::getline(lines, line);
  EXPECT_EQ(line, "relative_distance,relative_upper_bound");
  while (std::getline(lines, line)) ++rows;
  EXPECT_EQ(rows, 41);
  EXPECT_NE(csv.find("\n0,16.5\n"), std::string::npos) << "bound at 0 must be (d/2+1)/2";
  const std::string svg = read_file(dir.file("d.svg"));
  EXPECT_EQ(svg.rfind("<svg", 0), 0u);
  EXPECT_NE(svg.find("</svg>"), std::string::npos);
}

TEST(Cli, BadArgumentsGiveOneLineErrorAndNonZeroExit) {
  TempDir dir;
  const auto odd = run_command(cli_path() + " decay -d 7 --csv " + dir.file("x.csv") + " --svg " + dir.file("x.svg") + " 2>&1");
  EXPECT_NE(odd.status, 0);
  EXPECT_NE(odd.output.find("error"), std::string::npos) << odd.output;
  const auto unknown = run_command(cli_path() + " no-such-command 2>&1");
  EXPECT_NE(unknown.status, 0);
  const auto bad_path = run_command(cli_path() + " decay --csv /nonexistent-dir/x.csv --svg " + dir.file("x.svg") + " 2>&1");
  EXPECT_NE(bad_path.status, 0);
  EXPECT_NE(bad_path.output.find("error"), std::string::npos) << bad_path.output;
}

}  // namespace
}  // namespace roformer::testing

namespace roformer::testing {
namespace {

TEST(Cli, PlotDrawsCurvesFromJsonl) {
  TempDir dir;
  {
    std::ofstream log(dir.file("metrics.jsonl"));
    for (int s = 1; s <= 20; ++s) log << "{\"step\": " << s << ", \"loss\": " << 10.0 / s << "}\n";
    log << "{\"step\": 20, \"val_loss\": 0.7}\n";
  }
  const auto r = run_command(cli_path() + " plot " + dir.file("metrics.jsonl") + " -y loss -y val_loss -o " +
                             dir.file("m.svg") + " 2>&1");
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_NE(r.output.find("2 curves"), std::string::npos) << r.output;
  const std::string svg = read_file(dir.file("m.svg"));
  EXPECT_NE(svg.find("<polyline"), std::string::npos);
  const auto missing = run_command(cli_path() + " plot " + dir.file("metrics.jsonl") + " -y accuracy -o " +
                                   dir.file("x.svg") + " 2>&1");
  EXPECT_NE(missing.status, 0);
  std::ofstream(dir.file("bad.jsonl")) << "{not json\n";
  EXPECT_NE(run_command(cli_path() + " plot " + dir.file("bad.jsonl") + " -o " + dir.file("y.svg") + " 2>&1").status, 0);
}

}  // namespace
}  // namespace roformer::testing
