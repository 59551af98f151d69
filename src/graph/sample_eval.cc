#include "graph/sample_eval.h"

#include <algorithm>
#include <cmath>

#include "graph/graph_index.h"

namespace reinit {

Samples Samples::Filled(int rows, int cols, double value) {
  Samples s;
  s.rows = rows;
  s.cols = cols;
  s.v.assign(static_cast<size_t>(rows) * static_cast<size_t>(cols), value);
  return s;
}

namespace {

// One element of an elementwise op: its first three inputs' values there (an absent input is
// 0, and not `present`).
struct Element {
  const onnx::NodeProto& node;
  double in[3] = {0, 0, 0};
  bool present[3] = {false, false, false};
};

using ElementFn = double (*)(const Element& e);
using ReduceFn = double (*)(const double* row, int n);

struct SampleOp {
  ElementFn element = nullptr;
  ReduceFn reduce = nullptr;
  bool layout = false;  // Unsqueeze, Squeeze: the values unchanged
};

// Clip: its bounds from the attributes (opset < 11) or inputs 1 and 2.
double ClipElement(const Element& e) {
  double lo, hi;
  if (FindAttribute(e.node, "min") || FindAttribute(e.node, "max")) {
    lo = FloatAttribute(e.node, "min", -INFINITY);
    hi = FloatAttribute(e.node, "max", INFINITY);
  } else {
    lo = e.present[1] ? e.in[1] : -INFINITY;
    hi = e.present[2] ? e.in[2] : INFINITY;
  }
  return std::clamp(e.in[0], lo, hi);
}

double HardSigmoidElement(const Element& e) {
  return std::clamp(
      FloatAttribute(e.node, "alpha", 0.2f) * e.in[0] + FloatAttribute(e.node, "beta", 0.5f), 0.0,
      1.0);
}

double Sum(const double* row, int n) {
  double s = 0;
  for (int i = 0; i < n; ++i) s += row[i];
  return s;
}

double SumSquare(const double* row, int n) {
  double s = 0;
  for (int i = 0; i < n; ++i) s += row[i] * row[i];
  return s;
}

// The ops EvaluateNode handles, by name.
const std::unordered_map<std::string_view, SampleOp>& SampleOps() {
  using E = const Element&;
  static const std::unordered_map<std::string_view, SampleOp> kOps = {
      {"Add", {[](E e) { return e.in[0] + e.in[1]; }}},
      {"Sub", {[](E e) { return e.in[0] - e.in[1]; }}},
      {"Mul", {[](E e) { return e.in[0] * e.in[1]; }}},
      {"Div", {[](E e) { return e.in[0] / e.in[1]; }}},
      {"Neg", {[](E e) { return -e.in[0]; }}},
      {"Reciprocal", {[](E e) { return 1 / e.in[0]; }}},
      {"Relu", {[](E e) { return std::max(e.in[0], 0.0); }}},
      {"Abs", {[](E e) { return std::abs(e.in[0]); }}},
      {"Min", {[](E e) { return std::min(e.in[0], e.in[1]); }}},
      {"Max", {[](E e) { return std::max(e.in[0], e.in[1]); }}},
      {"Sigmoid", {[](E e) { return 1 / (1 + std::exp(-e.in[0])); }}},
      {"Tanh", {[](E e) { return std::tanh(e.in[0]); }}},
      {"Softplus", {[](E e) { return std::log1p(std::exp(e.in[0])); }}},
      {"Erf", {[](E e) { return std::erf(e.in[0]); }}},
      {"Pow", {[](E e) { return std::pow(e.in[0], e.in[1]); }}},
      {"Exp", {[](E e) { return std::exp(e.in[0]); }}},
      {"Log", {[](E e) { return std::log(e.in[0]); }}},
      {"Sqrt", {[](E e) { return std::sqrt(e.in[0]); }}},
      {"Greater", {[](E e) { return static_cast<double>(e.in[0] > e.in[1]); }}},
      {"Less", {[](E e) { return static_cast<double>(e.in[0] < e.in[1]); }}},
      {"GreaterOrEqual", {[](E e) { return static_cast<double>(e.in[0] >= e.in[1]); }}},
      {"LessOrEqual", {[](E e) { return static_cast<double>(e.in[0] <= e.in[1]); }}},
      {"Cast", {[](E e) { return e.in[0]; }}},
      {"Identity", {[](E e) { return e.in[0]; }}},
      {"Where", {[](E e) { return e.in[0] != 0 ? e.in[1] : e.in[2]; }}},
      {"HardSigmoid", {HardSigmoidElement}},
      {"Clip", {ClipElement}},
      {"ReduceMean", {nullptr, [](const double* r, int n) { return Sum(r, n) / n; }}},
      {"ReduceSum", {nullptr, Sum}},
      {"ReduceSumSquare", {nullptr, SumSquare}},
      {"ReduceL2", {nullptr, [](const double* r, int n) { return std::sqrt(SumSquare(r, n)); }}},
      {"ReduceMax", {nullptr, [](const double* r, int n) { return *std::max_element(r, r + n); }}},
      {"ReduceMin", {nullptr, [](const double* r, int n) { return *std::min_element(r, r + n); }}},
      {"Unsqueeze", {nullptr, nullptr, true}},
      {"Squeeze", {nullptr, nullptr, true}},
  };
  return kOps;
}

const SampleOp* FindSampleOp(std::string_view op) {
  auto it = SampleOps().find(op);
  return it == SampleOps().end() ? nullptr : &it->second;
}

// The samples of the node's first `count` inputs; nullopt when one cannot be had.
std::optional<std::vector<Samples>> InputSamples(
    const onnx::NodeProto& node, int count, const std::unordered_map<std::string, Samples>& known,
    const SampleSources& sources) {
  std::vector<Samples> in;
  for (int k = 0; k < count; ++k) {
    const std::string& name = node.input(k);
    if (name.empty()) {
      in.push_back(Samples::Filled(1, 1, 0));
      continue;
    }
    if (auto it = known.find(name); it != known.end()) {
      in.push_back(it->second);
      continue;
    }
    auto c = sources.constant ? sources.constant(name) : std::nullopt;
    if (!c) return std::nullopt;
    in.push_back(std::move(*c));
  }
  return in;
}

// Elementwise with broadcasting: every input has the output's rows or one, its columns or one.
// A squeezed statistic meets only squeezed ones and scalars.
std::optional<Samples> Elementwise(const onnx::NodeProto& node, ElementFn fn,
                                   const std::vector<Samples>& in) {
  Samples out;
  bool squeezed = false;
  for (const Samples& s : in) {
    out.rows = std::max(out.rows, s.rows);
    out.cols = std::max(out.cols, s.cols);
    squeezed |= s.squeezed;
  }
  for (const Samples& s : in) {
    if ((s.rows != 1 && s.rows != out.rows) || (s.cols != 1 && s.cols != out.cols)) {
      return std::nullopt;
    }
    if (squeezed && !s.squeezed && (s.rows != 1 || s.cols != 1)) return std::nullopt;
  }
  out.squeezed = squeezed;
  out.v.resize(static_cast<size_t>(out.rows) * static_cast<size_t>(out.cols));
  Element e{node};
  const size_t used = std::min<size_t>(in.size(), 3);
  for (size_t k = 0; k < used; ++k) e.present[k] = !node.input(static_cast<int>(k)).empty();
  for (int r = 0; r < out.rows; ++r) {
    for (int c = 0; c < out.cols; ++c) {
      for (size_t k = 0; k < used; ++k) e.in[k] = in[k].at(r, c);
      out.v[static_cast<size_t>(r) * out.cols + c] = fn(e);
    }
  }
  return out;
}

// A reduction over the last axis: each row becomes one value (squeezed without keepdims).
std::optional<Samples> Reduce(const onnx::NodeProto& node, ReduceFn fn, const Samples& x,
                              const SampleSources& sources) {
  if (x.squeezed || !sources.reduces_last_axis || !sources.reduces_last_axis(node)) {
    return std::nullopt;
  }
  Samples out = Samples::Filled(x.rows, 1, 0);
  for (int r = 0; r < x.rows; ++r) out.v[r] = fn(&x.v[static_cast<size_t>(r) * x.cols], x.cols);
  out.squeezed = IntAttribute(node, "keepdims", 1) == 0;
  return out;
}

// Unsqueeze puts a reduced axis back; Squeeze takes a statistic's axis of one away.
Samples Relayout(const onnx::NodeProto& node, Samples x) {
  if (node.op_type() == "Unsqueeze") {
    x.squeezed = false;
  } else if (x.cols == 1 && x.rows > 1) {
    x.squeezed = true;
  }
  return x;
}

}  // namespace

bool IsSampleOp(std::string_view op) { return FindSampleOp(op) != nullptr; }

bool IsSampleReduction(std::string_view op) {
  const SampleOp* s = FindSampleOp(op);
  return s && s->reduce;
}

std::optional<Samples> EvaluateNode(const onnx::NodeProto& node,
                                    const std::unordered_map<std::string, Samples>& known,
                                    const SampleSources& sources) {
  const SampleOp* op = FindSampleOp(node.op_type());
  if (!op || node.input_size() < 1) return std::nullopt;
  auto in = InputSamples(node, op->element ? node.input_size() : 1, known, sources);
  if (!in) return std::nullopt;
  if (op->reduce) return Reduce(node, op->reduce, (*in)[0], sources);
  if (op->layout) return Relayout(node, std::move((*in)[0]));
  return Elementwise(node, op->element, *in);
}

}  // namespace reinit
