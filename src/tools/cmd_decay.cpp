// `roformer decay`: the long-term decay figure of the paper (section 3.4.3).
#include <cstdio>
#include <fstream>
#include <memory>

#include "roformer/error.h"
#include "roformer/plot.h"
#include "roformer/rope.h"
#include "tools/commands.h"

namespace roformer::cli {

void register_decay(CLI::App& app) {
  struct Options {
    int64_t head_dim = 128;
    int64_t max_distance = 250;
    double base = 10000.0;
    std::string csv = "decay.csv";
    std::string svg = "decay.svg";
  };
  auto opt = std::make_shared<Options>();
  CLI::App* cmd = app.add_subcommand("decay", "RoPE's long-term decay bound vs relative distance (paper Fig. 2)");
  cmd->add_option("--head-dim,-d", opt->head_dim, "head dimension d")->capture_default_str();
  cmd->add_option("--max-distance,-n", opt->max_distance, "largest relative distance")->capture_default_str();
  cmd->add_option("--base", opt->base, "RoPE base")->capture_default_str();
  cmd->add_option("--csv", opt->csv, "CSV output (distance,bound)")->capture_default_str();
  cmd->add_option("--svg", opt->svg, "SVG picture output")->capture_default_str();
  cmd->callback([opt] {
    const auto bound = rope_decay_bound(opt->head_dim, opt->max_distance, opt->base);
    std::string csv = "relative_distance,relative_upper_bound\n";
    PlotSeries series{"d = " + std::to_string(opt->head_dim), {}, {}};
    char line[64];
    for (std::size_t r = 0; r < bound.size(); ++r) {
      std::snprintf(line, sizeof line, "%zu,%.9g\n", r, bound[r]);
      csv += line;
      series.x.push_back(static_cast<double>(r));
      series.y.push_back(bound[r]);
    }
    write_text_file(opt->csv, csv);
    LinePlot plot{"Long-term decay of RoPE (base " + std::to_string(static_cast<long long>(opt->base)) + ")",
                  "relative distance m - n", "relative upper bound", {series}};
    write_text_file(opt->svg, render_svg(plot));
    std::printf("wrote %s and %s (%zu distances; bound %.3f at 0, %.3f at %lld)\n", opt->csv.c_str(),
                opt->svg.c_str(), bound.size(), bound.front(), bound.back(),
                static_cast<long long>(opt->max_distance));
  });
}

}  // namespace roformer::cli
