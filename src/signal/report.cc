#include "signal/report.h"

#include <algorithm>
#include <cstdio>
#include <map>
#include <vector>

#include "graph/activation_kinds.h"
#include "plan/gains.h"
#include "plan/registry.h"

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
  if (auto kind = ActivationKindNamed(a.kind()); kind && TraitsOf(*kind).takes_param) {
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

std::string Parameter(const proto::TensorInit& w);

// A block's drawing parameters as a tensor's, for Parameter().
proto::TensorInit AsTensor(const proto::Block& b) {
  proto::TensorInit t;
  t.set_scheme(b.scheme());
  t.set_std(b.std());
  t.set_bound(b.bound());
  t.set_gain(b.gain());
  t.set_value(b.value());
  return t;
}

// A per-block tensor: its distinct block schemes, and each distinct parameter once.
std::string BlockSchemes(const proto::TensorInit& w) {
  std::vector<std::string> seen;
  for (const auto& b : w.blocks()) {
    if (std::find(seen.begin(), seen.end(), b.scheme()) == seen.end()) seen.push_back(b.scheme());
  }
  std::string out;
  for (const auto& s : seen) out += (out.empty() ? "" : "+") + s;
  return out;
}

std::string BlockParameters(const proto::TensorInit& w) {
  std::vector<std::string> seen;
  for (const auto& b : w.blocks()) {
    std::string text = Parameter(AsTensor(b));
    if (!b.activation().empty()) text += " (" + b.activation() + ")";
    if (std::find(seen.begin(), seen.end(), text) == seen.end()) seen.push_back(text);
  }
  std::string out;
  for (const auto& s : seen) out += (out.empty() ? "" : ", ") + s;
  return out;
}

std::string Parameter(const proto::TensorInit& w) {
  if (!w.blocks().empty()) return BlockParameters(w);
  if (w.scheme() == "keep") return "-";
  if (w.scheme() == "constant") return "= " + Num(w.value());
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

// The parameter column of a layer LSUV scales: what it reached, or that it is still to run.
std::string LsuvText(const proto::Layer& l, const std::string& parameter) {
  if (!l.has_lsuv()) return parameter;
  if (l.lsuv().scale() == 0) return parameter + ", then LSUV";
  return parameter + " x" + Num(l.lsuv().scale()) + ": var " + Num(l.lsuv().variance()) + " (" +
         std::to_string(l.lsuv().iterations()) + " steps)";
}

// "stream0 3/32 last": the layer's place in the residual structure, or "-".
std::string ResidualText(const proto::Layer& l) {
  const auto& r = l.residual();
  if (r.stream().empty()) return "-";
  return r.stream() + " " + std::to_string(r.branch() + 1) + "/" + std::to_string(r.branches()) +
         " " + r.position();
}

// One line per residual stream: its size, normalization and the rule it got.
std::string StreamLines(const proto::Plan& plan) {
  std::string out;
  for (const auto& st : plan.streams()) {
    int projected = 0;
    for (const auto& j : st.joins()) projected += j.skip() == "projected";
    out += "  " + st.name() + ": " + std::to_string(st.branches()) + " branches (" +
           std::to_string(projected) + " with a projected skip), normalization " +
           st.normalization() + ", rule " + st.rule();
    if (st.rule() == "scaled" && st.input_std() != 1) {
      out += ", stream starts at std " + Num(st.input_std());
    }
    out += "; joins " + st.joins(0).node();
    if (st.joins_size() > 1) out += " ... " + st.joins(st.joins_size() - 1).node();
    out += "\n";
  }
  return out;
}

}  // namespace

std::string FormatPlan(const proto::Plan& plan, bool verbose) {
  std::vector<std::vector<std::string>> rows = {{"layer", "op", "weight", "shape", "fan_in",
                                                 "fan_out", "activation", "scheme", "gain",
                                                 "parameter", "bias", "residual"}};
  std::string details, skipped;
  int planned = 0;
  for (const auto& l : plan.layers()) {
    if (!l.skipped().empty()) {
      std::string tensors = l.weight().name();
      for (const auto& p : l.params()) {
        if (!tensors.empty()) tensors += ", ";
        tensors += p.name();
      }
      skipped += "  " + l.name() + " (" + l.op() + ", " + tensors +
                 "): " + (l.skipped().rfind("kept:", 0) == 0 ? "" : "skipped: ") + l.skipped() +
                 "\n";
      continue;
    }
    ++planned;
    const auto& w = l.weight();
    const bool has_fans = l.fan_in() > 0;
    const bool has_activation = l.kind() == "dense" || l.kind() == "conv";
    rows.push_back(
        {l.name(), l.op(), w.name(), Shape(w), has_fans ? Num(l.fan_in(), 6) : "-",
         has_fans ? Num(l.fan_out(), 6) : "-",
         has_activation ? ActivationText(l.activation()) : "-",
         w.blocks().empty() ? w.scheme() : BlockSchemes(w),
         w.blocks().empty() ? GainText(w) : "per gate", LsuvText(l, Parameter(w)),
         l.has_bias() ? (l.bias().blocks().empty() ? l.bias().scheme() : "per gate") : "-",
         ResidualText(l)});
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
      std::vector<const proto::TensorInit*> tensors = {&l.weight()};
      if (l.has_bias()) tensors.push_back(&l.bias());
      for (const auto& p : l.params()) tensors.push_back(&p);
      for (const auto* t : tensors) {
        if (t->blocks().empty() && t == &l.weight()) continue;
        details +=
            "      " + (t->role().empty() ? std::string("tensor") : t->role()) + " '" + t->name() +
            "': " + (t->blocks().empty() ? t->scheme() + " " + Parameter(*t) : "per block") + "\n";
        for (const auto& b : t->blocks()) {
          details += "        " + b.name() + " [" + std::to_string(b.rows()) + "x" +
                     std::to_string(b.cols()) + "]: " + b.scheme() + " " + Parameter(AsTensor(b)) +
                     (b.activation().empty() ? "" : " (" + b.activation() + ")") + "\n";
        }
      }
      if (!l.shared_note().empty()) details += "      shared: " + l.shared_note() + "\n";
      if (const auto& r = l.residual(); !r.stream().empty()) {
        details += "      residual: " + r.stream() + ", branch " + std::to_string(r.branch() + 1) +
                   " of " + std::to_string(r.branches()) + ", " + r.position() +
                   " (m = " + std::to_string(r.layers_in_branch()) + ")\n";
      }
    }
  }
  std::string out = "scheme " + plan.scheme() + ", seed " + std::to_string(plan.seed()) +
                    ", fan convention " + plan.fan_convention() + ", " + std::to_string(planned) +
                    " layers planned\n";
  out += Table(rows);
  if (plan.streams_size() > 0) out += "\nresidual streams:\n" + StreamLines(plan);
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
  for (const auto& activation : AllActivationTraits()) {
    const double param = activation.shown_param;
    auto g = GainFor(activation.name, param);
    if (!g.ok()) continue;
    std::string name(activation.name);
    if (activation.takes_param) {
      name.append("(").append(Num(param, 3)).append(")");
    }
    gains.push_back({name, Num(g->gain, 5), g->source});
  }
  return out + Table(gains);
}

std::string FormatSignal(const Signal& signal, uint64_t seed) {
  std::string out = "propagation of random inputs (seed " + std::to_string(seed) + "):";
  for (const auto& [name, shape] : signal.inputs) {
    out += " " + name + " [";
    for (size_t k = 0; k < shape.size(); ++k) {
      if (k) out += ",";
      out += std::to_string(shape[k]);
    }
    out += "]";
  }
  out += "\n\n";
  std::vector<std::vector<std::string>> rows = {
      {"layer", "op", "activation", "mean before", "std before", "mean after", "std after"}};
  for (const auto& l : signal.layers) {
    rows.push_back({l.name, l.op, l.activation, Num(l.before.mean), Num(l.before.std),
                    Num(l.after.mean), Num(l.after.std)});
  }
  out += Table(rows);
  if (signal.layers.empty()) {
    out += "no layer's output was computed\n";
  } else {
    out += "\nstd after activation, last layer / first layer: " + Num(signal.ratio) + "\n";
  }
  if (signal.joins.empty()) return out;
  // The residual streams: what each branch leaves on the stream.
  std::vector<std::vector<std::string>> joins = {{"stream", "after branch", "join", "std"}};
  for (const auto& j : signal.joins) {
    joins.push_back({j.stream, std::to_string(j.branch), j.node, Num(j.moments.std)});
  }
  out += "\nresidual streams, std after each join:\n" + Table(joins);
  std::map<std::string, std::pair<double, double>> span;  // stream -> first, last std
  for (const auto& j : signal.joins) {
    auto [it, fresh] = span.try_emplace(j.stream, j.moments.std, j.moments.std);
    if (!fresh) it->second.second = j.moments.std;
  }
  for (const auto& [name, s] : span) {
    out += name + ": std after the last join / after the first: " +
           (s.first > 0 ? Num(s.second / s.first) : "-") + "\n";
  }
  return out;
}

}  // namespace reinit
