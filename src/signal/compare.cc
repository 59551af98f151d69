#include "signal/compare.h"

#include <algorithm>
#include <cmath>
#include <cstdio>

#include "init/apply.h"
#include "signal/executor/executor.h"

namespace reinit {

namespace {

std::string Num(double v, int precision = 3) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*g", precision, v);
  return buf;
}

// XML text: &, <, > and quotes escaped.
std::string Escape(const std::string& s) {
  std::string out;
  for (char c : s) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      default:
        out += c;
    }
  }
  return out;
}

std::string Label(const SchemeSignal& s) { return s.chosen ? s.scheme + " (chosen)" : s.scheme; }

}  // namespace

const std::vector<std::string>& ComparedSchemes() {
  static const std::vector<std::string> schemes = {"zero",      "normal",       "xavier-normal",
                                                   "he-normal", "lecun-normal", "orthogonal"};
  return schemes;
}

StatusOr<Comparison> CompareSchemes(const onnx::ModelProto& model, const PlanOptions& chosen,
                                    const PropagateOptions& options) {
  auto original = exec::Executor::Create(model);
  if (!original.ok()) return original.status();
  auto feeds = RandomBatches(**original, options);
  if (!feeds.ok()) return feeds.status();
  original->reset();

  std::vector<std::string> schemes = ComparedSchemes();
  schemes.erase(std::remove(schemes.begin(), schemes.end(), chosen.scheme), schemes.end());
  schemes.push_back(chosen.scheme);
  Comparison comparison;
  for (const std::string& scheme : schemes) {
    const bool is_chosen = scheme == chosen.scheme;
    PlanOptions p = chosen;
    p.scheme = scheme;
    if (!is_chosen) p.overrides.clear();
    auto plan = MakePlan(model, p);
    if (!plan.ok()) return plan.status().WithContext("scheme " + scheme);
    onnx::ModelProto copy = model;
    REINIT_RETURN_IF_ERROR(ApplyPlan(*plan, &copy).WithContext("scheme " + scheme));
    auto executor = exec::Executor::Create(copy);
    if (!executor.ok()) return executor.status();
    auto signal = Propagate(**executor, *plan, *feeds);
    if (!signal.ok()) return signal.status().WithContext("scheme " + scheme);
    comparison.schemes.push_back({scheme, is_chosen, std::move(*signal)});
  }
  return comparison;
}

namespace {

// Rows as left-aligned columns two spaces apart.
std::string Columns(const std::vector<std::vector<std::string>>& rows) {
  std::vector<size_t> width;
  for (const auto& r : rows) {
    width.resize(std::max(width.size(), r.size()), 0);
    for (size_t i = 0; i < r.size(); ++i) width[i] = std::max(width[i], r[i].size());
  }
  std::string out;
  for (const auto& r : rows) {
    for (size_t i = 0; i < r.size(); ++i) {
      out += r[i];
      if (i + 1 < r.size()) out += std::string(width[i] - r[i].size() + 2, ' ');
    }
    out += "\n";
  }
  return out;
}

}  // namespace

std::string FormatComparison(const Comparison& c) {
  if (c.schemes.empty()) return "";
  std::vector<std::vector<std::string>> rows;
  std::vector<std::string> head = {"layer", "activation"};
  for (const auto& s : c.schemes) head.push_back(Label(s));
  rows.push_back(head);
  const auto& layers = c.schemes.front().signal.layers;
  for (size_t k = 0; k < layers.size(); ++k) {
    std::vector<std::string> row = {layers[k].name, layers[k].activation};
    for (const auto& s : c.schemes) {
      row.push_back(k < s.signal.layers.size() ? Num(s.signal.layers[k].after.std) : "-");
    }
    rows.push_back(row);
  }
  std::string out =
      "std after each layer's activation, by scheme (same random inputs):\n" + Columns(rows);
  const auto& joins = c.schemes.front().signal.joins;
  if (!joins.empty()) {
    std::vector<std::vector<std::string>> stream_rows;
    std::vector<std::string> stream_head = {"stream", "after branch"};
    for (const auto& s : c.schemes) stream_head.push_back(Label(s));
    stream_rows.push_back(stream_head);
    for (size_t k = 0; k < joins.size(); ++k) {
      std::vector<std::string> row = {joins[k].stream, std::to_string(joins[k].branch)};
      for (const auto& s : c.schemes) {
        row.push_back(k < s.signal.joins.size() ? Num(s.signal.joins[k].moments.std) : "-");
      }
      stream_rows.push_back(row);
    }
    out += "residual stream std after each join, by scheme:\n" + Columns(stream_rows);
  }
  out += "last/first:";
  for (const auto& s : c.schemes) out += "  " + Label(s) + " " + Num(s.signal.ratio);
  return out + "\n";
}

namespace {

// The chart's geometry and scales: plot area [kLeft, kLeft + kW] x [kTop, kTop + kH], legend to
// the right; the layers evenly along x, the std on a log scale of whole decades along y.
struct StdPlot {
  static constexpr double kLeft = 70, kTop = 50, kW = 620, kH = 360, kLegend = 200;
  static constexpr double kWidth = kLeft + kW + kLegend + 20, kHeight = kTop + kH + 90;
  size_t layers = 0;
  int d_lo = 0, d_hi = 1;
  double decades = 1;

  double X(double k) const {
    return kLeft + (layers <= 1 ? kW / 2 : kW * std::clamp(k, 0.0, layers - 1.0) / (layers - 1));
  }
  // A zero (or underflowing) std is drawn on the bottom edge.
  double Y(double v) const {
    const double d = v > 0 ? std::clamp(std::log10(v), double(d_lo), double(d_hi)) : d_lo;
    return kTop + kH * (d_hi - d) / decades;
  }
};

// Scales for the most layers any scheme has and for the decades its finite positive stds span
// (at most 40).
StdPlot StdPlotFor(const Comparison& c) {
  StdPlot plot;
  double lo = INFINITY, hi = 0;
  for (const auto& s : c.schemes) {
    plot.layers = std::max(plot.layers, s.signal.layers.size());
    std::vector<double> stds;
    for (const auto& l : s.signal.layers) stds.push_back(l.after.std);
    for (const auto& j : s.signal.joins) stds.push_back(j.moments.std);
    for (double v : stds) {
      if (v > 0 && std::isfinite(v)) {
        lo = std::min(lo, v);
        hi = std::max(hi, v);
      }
    }
  }
  if (!(hi > 0)) lo = hi = 1;
  plot.d_lo = static_cast<int>(std::floor(std::log10(lo)));
  plot.d_hi = static_cast<int>(std::ceil(std::log10(hi)));
  if (plot.d_hi <= plot.d_lo) plot.d_hi = plot.d_lo + 1;
  plot.d_lo = std::max(plot.d_lo, plot.d_hi - 40);  // at most 40 decades
  plot.decades = plot.d_hi - plot.d_lo;
  return plot;
}

void AddElement(const std::string& element, std::string* svg) { *svg += element + "\n"; }

// The <svg> element, a white background and the title.
void AddPlotHeader(const std::string& title, std::string* svg) {
  constexpr double kWidth = StdPlot::kWidth, kHeight = StdPlot::kHeight;
  AddElement("<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" + Num(kWidth, 6) +
                 "\" height=\"" + Num(kHeight, 6) + "\" viewBox=\"0 0 " + Num(kWidth, 6) + " " +
                 Num(kHeight, 6) + "\" font-family=\"sans-serif\" font-size=\"12\">",
             svg);
  AddElement("<rect width=\"100%\" height=\"100%\" fill=\"white\"/>", svg);
  AddElement("<text x=\"" + Num(StdPlot::kLeft, 6) + "\" y=\"24\" font-size=\"15\">" +
                 Escape(title) + "</text>",
             svg);
}

// Decade grid lines and labels (at most about 12 of them), and the plot area's frame.
void AddDecadeGrid(const StdPlot& plot, std::string* svg) {
  constexpr double kLeft = StdPlot::kLeft, kTop = StdPlot::kTop;
  constexpr double kW = StdPlot::kW, kH = StdPlot::kH;
  for (int d = plot.d_lo; d <= plot.d_hi; ++d) {
    const double y = kTop + kH * (plot.d_hi - d) / plot.decades;
    if (plot.decades <= 12 || d % ((static_cast<int>(plot.decades) + 11) / 12) == 0) {
      AddElement("<line x1=\"" + Num(kLeft, 6) + "\" y1=\"" + Num(y, 6) + "\" x2=\"" +
                     Num(kLeft + kW, 6) + "\" y2=\"" + Num(y, 6) + "\" stroke=\"#e0e0e0\"/>",
                 svg);
      AddElement("<text x=\"" + Num(kLeft - 8, 6) + "\" y=\"" + Num(y + 4, 6) +
                     "\" text-anchor=\"end\">1e" + std::to_string(d) + "</text>",
                 svg);
    }
  }
  AddElement("<rect x=\"" + Num(kLeft, 6) + "\" y=\"" + Num(kTop, 6) + "\" width=\"" + Num(kW, 6) +
                 "\" height=\"" + Num(kH, 6) + "\" fill=\"none\" stroke=\"#333\"/>",
             svg);
}

// Layer ticks (names when few, indices otherwise) and the axis titles.
void AddLayerTicks(const StdPlot& plot, const Comparison& c, std::string* svg) {
  constexpr double kLeft = StdPlot::kLeft, kTop = StdPlot::kTop;
  constexpr double kW = StdPlot::kW, kH = StdPlot::kH;
  const size_t layers = plot.layers;
  const auto& names = c.schemes.empty() ? std::vector<LayerSignal>{} : c.schemes[0].signal.layers;
  const size_t every = std::max<size_t>(1, (layers + 19) / 20);
  for (size_t k = 0; k < layers; k += every) {
    const double x = plot.X(k);
    AddElement("<line x1=\"" + Num(x, 6) + "\" y1=\"" + Num(kTop + kH, 6) + "\" x2=\"" + Num(x, 6) +
                   "\" y2=\"" + Num(kTop + kH + 5, 6) + "\" stroke=\"#333\"/>",
               svg);
    const std::string label =
        layers <= 20 && k < names.size() ? names[k].name : std::to_string(k + 1);
    AddElement("<text transform=\"translate(" + Num(x + 4, 6) + "," + Num(kTop + kH + 10, 6) +
                   ") rotate(45)\" font-size=\"10\">" + Escape(label) + "</text>",
               svg);
  }
  AddElement("<text x=\"" + Num(kLeft + kW / 2, 6) + "\" y=\"" + Num(StdPlot::kHeight - 8, 6) +
                 "\" text-anchor=\"middle\">layer, in the order they run (depth)</text>",
             svg);
  AddElement("<text transform=\"translate(18," + Num(kTop + kH / 2, 6) +
                 ") rotate(-90)\" text-anchor=\"middle\">std of the layer's output after its "
                 "activation (log)</text>",
             svg);
}

// Scheme number s: its line over the layers (dashed unless chosen, dotted when dead), a dot for
// the residual stream after each join, and its legend entry.
void AddSchemeLine(const StdPlot& plot, const SchemeSignal& scheme, size_t s, std::string* svg) {
  // Tableau-like palette, distinguishable in print; the chosen scheme is drawn thick.
  static const char* kColors[] = {"#7f7f7f", "#d62728", "#1f77b4", "#2ca02c",
                                  "#9467bd", "#ff7f0e", "#000000"};
  const char* color = scheme.chosen ? "#000000" : kColors[s % 6];
  const std::string width = scheme.chosen ? "7\" stroke-opacity=\"0.3" : "1.6";
  std::string points;
  bool dead = true;
  for (size_t k = 0; k < scheme.signal.layers.size(); ++k) {
    const double v = scheme.signal.layers[k].after.std;
    dead &= !(v > 0);
    points += Num(plot.X(k), 6) + "," + Num(plot.Y(v), 6) + " ";
  }
  // The residual stream after each join: one dot per branch, between the layers around it.
  for (const auto& j : scheme.signal.joins) {
    AddElement("<circle cx=\"" + Num(plot.X(j.after - 0.5), 6) + "\" cy=\"" +
                   Num(plot.Y(j.moments.std), 6) + "\" r=\"" + (scheme.chosen ? "4" : "2.5") +
                   "\" fill=\"" + color + "\"" + (scheme.chosen ? " fill-opacity=\"0.4\"" : "") +
                   "/>",
               svg);
  }
  AddElement(
      "<polyline fill=\"none\" stroke=\"" + std::string(color) + "\" stroke-width=\"" + width +
          "\"" +
          (scheme.chosen ? ""
                         : " stroke-dasharray=\"" + std::string(dead ? "2,3" : "none") + "\"") +
          " points=\"" + points + "\"/>",
      svg);
  const double ly = StdPlot::kTop + 14 + 20 * static_cast<double>(s);
  const double lx = StdPlot::kLeft + StdPlot::kW + 16;
  AddElement("<line x1=\"" + Num(lx, 6) + "\" y1=\"" + Num(ly - 4, 6) + "\" x2=\"" +
                 Num(lx + 24, 6) + "\" y2=\"" + Num(ly - 4, 6) + "\" stroke=\"" + color +
                 "\" stroke-width=\"" + width + "\"/>",
             svg);
  AddElement("<text x=\"" + Num(lx + 30, 6) + "\" y=\"" + Num(ly, 6) + "\">" +
                 Escape(Label(scheme) + (dead ? " (0: dead)" : "")) + "</text>",
             svg);
}

// The notes under the legend: where a zero std is drawn and, when there are joins, what the
// dots are.
void AddPlotNotes(const Comparison& c, std::string* svg) {
  const double x = StdPlot::kLeft + StdPlot::kW;
  const double note_y = StdPlot::kTop + 30 + 20 * static_cast<double>(c.schemes.size());
  AddElement("<text x=\"" + Num(x + 16, 6) + "\" y=\"" + Num(note_y, 6) +
                 "\" font-size=\"10\" fill=\"#555\">a zero std is drawn</text>",
             svg);
  AddElement("<text x=\"" + Num(x + 16, 6) + "\" y=\"" + Num(note_y + 13, 6) +
                 "\" font-size=\"10\" fill=\"#555\">on the bottom edge</text>",
             svg);
  const bool has_joins = std::any_of(c.schemes.begin(), c.schemes.end(),
                                     [](const SchemeSignal& s) { return !s.signal.joins.empty(); });
  if (!has_joins) return;
  AddElement("<circle cx=\"" + Num(x + 20, 6) + "\" cy=\"" + Num(note_y + 26, 6) +
                 "\" r=\"2.5\" fill=\"#555\"/>",
             svg);
  AddElement("<text x=\"" + Num(x + 28, 6) + "\" y=\"" + Num(note_y + 30, 6) +
                 "\" font-size=\"10\" fill=\"#555\">residual stream after</text>",
             svg);
  AddElement("<text x=\"" + Num(x + 28, 6) + "\" y=\"" + Num(note_y + 43, 6) +
                 "\" font-size=\"10\" fill=\"#555\">each join (std)</text>",
             svg);
}

}  // namespace

std::string ComparisonSvg(const Comparison& c, const std::string& title) {
  const StdPlot plot = StdPlotFor(c);
  std::string svg;
  AddPlotHeader(title, &svg);
  AddDecadeGrid(plot, &svg);
  AddLayerTicks(plot, c, &svg);
  // One line per scheme. The chosen one is a wide translucent band drawn first, so that a
  // reference scheme it coincides with stays visible on top of it.
  std::vector<size_t> order(c.schemes.size());
  for (size_t s = 0; s < order.size(); ++s) order[s] = s;
  std::stable_partition(order.begin(), order.end(), [&](size_t s) { return c.schemes[s].chosen; });
  for (size_t s : order) AddSchemeLine(plot, c.schemes[s], s, &svg);
  AddPlotNotes(c, &svg);
  AddElement("</svg>", &svg);
  return svg;
}

}  // namespace reinit
