#include "report.h"

#include <algorithm>
#include <cstdio>
#include <vector>

#include "gains.h"
#include "schemes/registry.h"

namespace reinit {

namespace {

std::string Num(double v, int precision = 4) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*g", precision, v);
  return buf;
}

std::string Shape(const proto::TensorInit& t) {
  std::string s = "[";
  for (int i = 0; i < t.shape_size(); ++i) {
    if (i) s += ',';
    s += std::to_string(t.shape(i));
  }
  s += ']';
  return s;
}

std::string ActivationText(const proto::Activation& a) {
  std::string s = a.kind();
  if (a.kind() == "leaky_relu" || a.kind() == "prelu" || a.kind() == "elu" || a.kind() == "celu" ||
      a.kind() == "thresholded_relu") {
    s.append("(").append(Num(a.param(), 3)).append(")");
  }
  if (a.ambiguous()) s += " [ambiguous]";
  return s;
}

// The gain where the scheme applies one, "-" where it ignores it.
std::string GainText(const proto::TensorInit& w) {
  auto scheme = FindScheme(w.scheme());
  return scheme.ok() && (*scheme)->uses_gain ? Num(w.gain()) : "-";
}

std::string Parameter(const proto::TensorInit& w) {
  if (w.scheme() == "keep") return "-";
  if (w.scheme() == "zero") return "0";
  if (w.scheme() == "orthogonal") return "gain " + Num(w.gain());
  if (w.scheme().find("truncated") != std::string::npos) return "std " + Num(w.std()) + " cut 2std";
  if (w.std() > 0) return "std " + Num(w.std());
  return "bound " + Num(w.bound());
}

std::string Table(const std::vector<std::vector<std::string>>& rows) {
  std::vector<size_t> width;
  for (const auto& r : rows) {
    width.resize(std::max(width.size(), r.size()));
    for (size_t i = 0; i < r.size(); ++i) width[i] = std::max(width[i], r[i].size());
  }
  std::string out;
  for (const auto& r : rows) {
    std::string line;
    for (size_t i = 0; i < r.size(); ++i) {
      line += r[i];
      if (i + 1 < r.size()) line += std::string(width[i] - r[i].size() + 2, ' ');
    }
    out += line + "\n";
  }
  return out;
}

}  // namespace

std::string FormatPlan(const proto::Plan& plan, bool verbose) {
  std::vector<std::vector<std::string>> rows = {{"layer", "op", "weight", "shape", "fan_in",
                                                 "fan_out", "activation", "scheme", "gain",
                                                 "parameter", "bias"}};
  std::string details, skipped;
  int planned = 0;
  for (const auto& l : plan.layers()) {
    if (!l.skipped().empty()) {
      std::string tensors = l.weight().name();
      for (const auto& p : l.params()) {
        if (!tensors.empty()) tensors += ", ";
        tensors += p.name();
      }
      skipped +=
          "  " + l.name() + " (" + l.op() + ", " + tensors + "): skipped: " + l.skipped() + "\n";
      continue;
    }
    ++planned;
    const auto& w = l.weight();
    rows.push_back({l.name(), l.op(), w.name(), Shape(w), Num(l.fan_in(), 6), Num(l.fan_out(), 6),
                    ActivationText(l.activation()), w.scheme(), GainText(w), Parameter(w),
                    l.has_bias() ? l.bias().scheme() : "-"});
    if (verbose) {
      std::string path;
      for (const auto& p : l.activation().path()) {
        if (!path.empty()) path += " -> ";
        path += p;
      }
      details +=
          "  " + l.name() + ": " + l.reason() + "\n      activation found via: " + path + "\n";
      for (const auto& alt : l.activation().alternatives()) {
        details += "      other consumers lead to: " + alt + "\n";
      }
    }
  }
  std::string out = "scheme " + plan.scheme() + ", seed " + std::to_string(plan.seed()) +
                    ", fan convention " + plan.fan_convention() + ", " + std::to_string(planned) +
                    " layers planned\n";
  out += Table(rows);
  if (verbose && !details.empty()) out += "\nwhy:\n" + details;
  if (!skipped.empty()) out += "\nnot re-initialized:\n" + skipped;
  return out;
}

std::string FormatSchemes() {
  std::vector<std::vector<std::string>> rows;
  for (const auto& s : Schemes()) rows.push_back({std::string(s.name), std::string(s.formula)});
  std::string out = "schemes (g = the gain of the layer's activation):\n" + Table(rows);
  out += "\ngains (torch calculate_gain where it has one, else 1/sqrt(E[phi(z)^2]), z ~ N(0,1)):\n";
  std::vector<std::vector<std::string>> gains;
  for (auto kind : ActivationKinds()) {
    double param = kind == "leaky_relu" ? 0.01 : kind == "prelu" ? 0.25 : 1.0;
    auto g = GainFor(kind, param);
    if (!g.ok()) continue;
    std::string name(kind);
    if (kind == "leaky_relu" || kind == "prelu" || kind == "elu" || kind == "celu" ||
        kind == "thresholded_relu") {
      name.append("(").append(Num(param, 3)).append(")");
    }
    gains.push_back({name, Num(g->gain, 5), g->source});
  }
  return out + Table(gains);
}

}  // namespace reinit
