#include "roformer/plot.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <limits>

#include "roformer/error.h"

namespace roformer {
namespace {

// Round tick spacing (1, 2 or 5 times a power of ten) giving about `want` ticks.
double nice_step(double span, int want) {
  const double raw = span / want;
  const double mag = std::pow(10.0, std::floor(std::log10(raw)));
  const double r = raw / mag;
  return (r < 1.5 ? 1 : r < 3.5 ? 2 : r < 7.5 ? 5 : 10) * mag;
}

std::string fmt(double v) {
  char buf[32];
  if (v != 0 && (std::fabs(v) >= 1e5 || std::fabs(v) < 1e-3))
    std::snprintf(buf, sizeof buf, "%.0e", v);
  else
    std::snprintf(buf, sizeof buf, "%g", v);
  return buf;
}

std::string escape(const std::string& s) {
  std::string out;
  for (char c : s) {
    if (c == '<') out += "&lt;";
    else if (c == '>') out += "&gt;";
    else if (c == '&') out += "&amp;";
    else if (c == '"') out += "&quot;";
    else out += c;
  }
  return out;
}

const char* kColors[] = {"#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf"};
// Series with at most this many points are drawn with a dot on each one.
constexpr std::size_t kMarkedPoints = 16;

}  // namespace

std::string render_svg(const LinePlot& plot) {
  check(!plot.series.empty(), "plot: no series to draw");
  double x0 = std::numeric_limits<double>::infinity(), x1 = -x0, y0 = x0, y1 = -x0;
  for (const PlotSeries& s : plot.series) {
    check(s.x.size() == s.y.size(), "plot: series '" + s.name + "' has different x and y lengths");
    for (std::size_t i = 0; i < s.x.size(); ++i) {
      if (!std::isfinite(s.x[i]) || !std::isfinite(s.y[i]) || (plot.log_y && s.y[i] <= 0)) continue;
      const double y = plot.log_y ? std::log10(s.y[i]) : s.y[i];
      x0 = std::min(x0, s.x[i]), x1 = std::max(x1, s.x[i]);
      y0 = std::min(y0, y), y1 = std::max(y1, y);
    }
  }
  check(std::isfinite(x0) && std::isfinite(y0), "plot: no finite points to draw");
  if (x1 == x0) x1 = x0 + 1;
  if (y1 == y0) y1 = y0 + 1;
  const double pad = 0.04 * (y1 - y0);
  y0 -= pad, y1 += pad;

  const double left = 70, right = 20, top = 40, bottom = 55;
  const double w = plot.width - left - right, h = plot.height - top - bottom;
  auto px = [&](double x) { return left + (x - x0) / (x1 - x0) * w; };
  auto py = [&](double y) { return top + (1 - (y - y0) / (y1 - y0)) * h; };

  std::string svg;
  char buf[256];
  std::snprintf(buf, sizeof buf,
                "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" viewBox=\"0 0 %d %d\" "
                "font-family=\"sans-serif\" font-size=\"12\">\n<rect width=\"100%%\" height=\"100%%\" fill=\"white\"/>\n",
                plot.width, plot.height, plot.width, plot.height);
  svg += buf;
  std::snprintf(buf, sizeof buf, "<text x=\"%g\" y=\"22\" text-anchor=\"middle\" font-size=\"15\">", plot.width / 2.0);
  svg += buf + escape(plot.title) + "</text>\n";

  // Grid and ticks.
  const double xs = nice_step(x1 - x0, 8), ys = nice_step(y1 - y0, 6);
  for (double t = std::ceil(x0 / xs) * xs; t <= x1 + 1e-9 * xs; t += xs) {
    std::snprintf(buf, sizeof buf,
                  "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#e5e5e5\"/>"
                  "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">",
                  px(t), top, px(t), top + h, px(t), top + h + 16);
    svg += buf + fmt(t) + "</text>\n";
  }
  for (double t = std::ceil(y0 / ys) * ys; t <= y1 + 1e-9 * ys; t += ys) {
    std::snprintf(buf, sizeof buf,
                  "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#e5e5e5\"/>"
                  "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"end\">",
                  left, py(t), left + w, py(t), left - 6, py(t) + 4);
    svg += buf + fmt(plot.log_y ? std::pow(10.0, t) : t) + "</text>\n";
  }
  std::snprintf(buf, sizeof buf,
                "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"none\" stroke=\"#333\"/>\n", left,
                top, w, h);
  svg += buf;
  std::snprintf(buf, sizeof buf, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">", left + w / 2,
                plot.height - 14.0);
  svg += buf + escape(plot.x_label) + "</text>\n";
  std::snprintf(buf, sizeof buf,
                "<text x=\"16\" y=\"%.1f\" text-anchor=\"middle\" transform=\"rotate(-90 16 %.1f)\">", top + h / 2,
                top + h / 2);
  svg += buf + escape(plot.y_label + (plot.log_y ? " (log scale)" : "")) + "</text>\n";

  // Series and legend.
  for (std::size_t k = 0; k < plot.series.size(); ++k) {
    const PlotSeries& s = plot.series[k];
    const char* color = kColors[k % (sizeof kColors / sizeof *kColors)];
    std::string points, markers;
    std::size_t shown = 0;
    for (std::size_t i = 0; i < s.x.size(); ++i) {
      if (!std::isfinite(s.x[i]) || !std::isfinite(s.y[i]) || (plot.log_y && s.y[i] <= 0)) continue;
      const double x = px(s.x[i]), y = py(plot.log_y ? std::log10(s.y[i]) : s.y[i]);
      std::snprintf(buf, sizeof buf, "%.1f,%.1f ", x, y);
      points += buf;
      std::snprintf(buf, sizeof buf, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"3\" fill=\"%s\"/>", x, y, color);
      markers += buf;
      ++shown;
    }
    svg += "<polyline fill=\"none\" stroke-width=\"1.8\" stroke=\"" + std::string(color) + "\" points=\"" + points +
           "\"/>\n";
    // Short series get a dot per point: a few measurements read better as
    // points, and a single one would otherwise not show at all.
    if (shown <= kMarkedPoints) svg += markers + "\n";
    const double ly = top + 14 + 16.0 * static_cast<double>(k);
    std::snprintf(buf, sizeof buf,
                  "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"%s\" stroke-width=\"2\"/>"
                  "<text x=\"%.1f\" y=\"%.1f\">",
                  left + w - 170, ly, left + w - 150, ly, color, left + w - 145, ly + 4);
    svg += buf + escape(s.name) + "</text>\n";
  }
  svg += "</svg>\n";
  return svg;
}

void write_text_file(const std::string& path, const std::string& text) {
  std::ofstream f(path, std::ios::binary);
  if (!f) throw Error(path + ": cannot open for writing");
  f << text;
  if (!f.flush()) throw Error(path + ": write failed");
}

}  // namespace roformer
