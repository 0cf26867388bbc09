// `roformer plot`: curves from JSONL metrics logs (one object per line, as
// the trainer writes them) to an SVG picture. Several logs can be overlaid,
// e.g. to compare runs.
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>

#include "roformer/error.h"
#include "roformer/plot.h"
#include "tools/commands.h"

namespace roformer::cli {

void register_plot(CLI::App& app) {
  struct Options {
    std::vector<std::string> logs;
    std::vector<std::string> metrics{"loss"};
    std::string x = "step";
    std::string out = "metrics.svg";
    std::string title;
    bool log_y = false;
  };
  auto opt = std::make_shared<Options>();
  CLI::App* cmd = app.add_subcommand("plot", "draw metric curves from JSONL logs to an SVG picture");
  cmd->add_option("logs", opt->logs, "metrics.jsonl files")->required();
  cmd->add_option("--metric,-y", opt->metrics, "metric key(s) to draw")->capture_default_str();
  cmd->add_option("--x", opt->x, "key of the x axis")->capture_default_str();
  cmd->add_option("--out,-o", opt->out, "SVG output")->capture_default_str();
  cmd->add_option("--title", opt->title, "picture title");
  cmd->add_flag("--log-y", opt->log_y, "logarithmic y axis");
  cmd->callback([opt] {
    LinePlot plot{opt->title.empty() ? "training metrics" : opt->title, opt->x,
                  opt->metrics.size() == 1 ? opt->metrics[0] : "value", {}, opt->log_y};
    for (const auto& path : opt->logs) {
      std::ifstream in(path);
      check(static_cast<bool>(in), "plot: cannot open " + path);
      std::map<std::string, PlotSeries> series;
      std::string line;
      int64_t line_no = 0;
      while (std::getline(in, line)) {
        ++line_no;
        if (line.empty()) continue;
        nlohmann::json j;
        try {
          j = nlohmann::json::parse(line);
        } catch (const nlohmann::json::exception&) {
          throw Error("plot: " + path + " line " + std::to_string(line_no) + " is not JSON");
        }
        if (!j.is_object() || !j.contains(opt->x) || !j[opt->x].is_number()) continue;
        for (const auto& m : opt->metrics) {
          if (!j.contains(m) || !j[m].is_number()) continue;
          auto& s = series[m];
          s.x.push_back(j[opt->x].get<double>());
          s.y.push_back(j[m].get<double>());
        }
      }
      const std::string run = std::filesystem::path(path).parent_path().filename().string();
      for (auto& [m, s] : series) {
        s.name = opt->logs.size() > 1 ? (run.empty() ? path : run) + " " + m : m;
        plot.series.push_back(std::move(s));
      }
    }
    check(!plot.series.empty(), "plot: none of the logs has the metric(s) asked for");
    write_text_file(opt->out, render_svg(plot));
    std::printf("wrote %s (%zu curves)\n", opt->out.c_str(), plot.series.size());
  });
}

}  // namespace roformer::cli
