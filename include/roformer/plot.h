#pragma once
// Line charts as standalone SVG files: axes with round-number ticks, a
// legend, one polyline per series. Enough for loss curves and the RoPE
// decay figure, with no plotting dependency.
#include <string>
#include <vector>

namespace roformer {

struct PlotSeries {
  std::string name;
  std::vector<double> x;
  std::vector<double> y;
};

struct LinePlot {
  std::string title;
  std::string x_label;
  std::string y_label;
  std::vector<PlotSeries> series;
  bool log_y = false;
  int width = 720;
  int height = 440;
};

// Returns the SVG document. Throws Error for empty or mismatched series.
std::string render_svg(const LinePlot& plot);
void write_text_file(const std::string& path, const std::string& text);

}  // namespace roformer
