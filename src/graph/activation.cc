#include "graph/activation.h"

#include <algorithm>
#include <cmath>
#include <deque>
#include <functional>
#include <iterator>
#include <map>
#include <optional>
#include <string_view>
#include <unordered_map>
#include <unordered_set>

#include "graph/activation_kinds.h"
#include "graph/op_traits.h"
#include "graph/sample_eval.h"

namespace reinit {

namespace {

struct Verdict {
  ActivationKind kind = ActivationKind::kLinear;
  double param = 0;
};

double ConstantScalar(const GraphIndex& index, const onnx::NodeProto& node, int input,
                      double fallback) {
  if (input >= node.input_size() || node.input(input).empty()) return fallback;
  auto values = index.ConstantValues(node.input(input));
  return values && values->size() == 1 ? (*values)[0] : std::nan("");
}

// PRelu's slope: the learned slope's mean when it is a constant, else `fallback`.
double SlopeMean(const GraphIndex& index, const onnx::NodeProto& node, double fallback) {
  double slope = fallback;
  if (auto v = index.ConstantValues(node.input_size() > 1 ? node.input(1) : "")) {
    if (!v->empty()) {
      double sum = 0;
      for (double x : *v) sum += x;
      slope = sum / static_cast<double>(v->size());
    }
  }
  return slope;
}

// Clip(0, 6) is relu6, Clip(0, 1) a hard sigmoid after the walk's affine ops (Clip(x/6 + 0.5,
// 0, 1)), Clip(0, ∞) relu; another clamp is no activation (the walk does not know it: linear).
std::optional<Verdict> ClipVerdict(const GraphIndex& index, const onnx::NodeProto& node) {
  // Opset < 11 keeps the bounds in attributes, later opsets in inputs 1 and 2.
  double lo, hi;
  if (FindAttribute(node, "min") || FindAttribute(node, "max")) {
    lo = FloatAttribute(node, "min", -INFINITY);
    hi = FloatAttribute(node, "max", INFINITY);
  } else {
    lo = ConstantScalar(index, node, 1, -INFINITY);
    hi = ConstantScalar(index, node, 2, INFINITY);
  }
  if (lo == 0 && hi == 6) return Verdict{ActivationKind::kRelu6};
  if (lo == 0 && hi == 1) return Verdict{ActivationKind::kHardSigmoid};
  if (lo == 0 && std::isinf(hi)) return Verdict{ActivationKind::kRelu};
  return std::nullopt;
}

// The verdict of an activation op (its record in graph/op_traits.cc), reading attributes and
// constant inputs; nullopt: not an activation op.
std::optional<Verdict> ActivationOp(const GraphIndex& index, const onnx::NodeProto& node) {
  const OpTraits* traits = FindOpTraits(node.op_type());
  if (!traits || !traits->activation) return std::nullopt;
  const ActivationOpRule& rule = *traits->activation;
  switch (rule.read) {
    case ActivationRead::kFixed:
      return Verdict{rule.kind};
    case ActivationRead::kAttribute:
      return Verdict{rule.kind, FloatAttribute(node, rule.attribute, rule.fallback)};
    case ActivationRead::kSlopeMean:
      return Verdict{rule.kind, SlopeMean(index, node, rule.fallback)};
    case ActivationRead::kGeluApproximate: {
      const auto* a = FindAttribute(node, rule.attribute);
      return Verdict{a && a->s() == "tanh" ? ActivationKind::kGeluTanh : ActivationKind::kGelu};
    }
    case ActivationRead::kClipBounds:
      return ClipVerdict(index, node);
  }
  return std::nullopt;
}

// An exporter's decomposition recognised at a tensor: its verdict, the Mul that completes it,
// and every node it consists of (so that the tensor's other consumers are still walked).
struct DecompositionMatch {
  Verdict verdict;
  int mul = -1;  // the node that completes it (a Mul, or what combines the two sides)
  std::unordered_set<int> nodes;
  bool by_value = false;  // identified by NumericDecomposition
  std::string output;     // what it produces; empty: after the constant scalings of `mul`'s
};

// Ops a named decomposition is made of -> whether it is a nonlinearity that names it.
const std::unordered_map<std::string_view, bool>& InnerOps() {
  static const std::unordered_map<std::string_view, bool> kInner = {
      {"Sigmoid", true}, {"HardSigmoid", true}, {"Tanh", true}, {"Softplus", true}, {"Erf", true},
      {"Pow", true},     {"Mul", false},        {"Div", false}, {"Add", false},     {"Sub", false},
  };
  return kInner;
}

// The tensors derived from t alone (through constants) by InnerOps, up to a few steps out.
struct Derived {
  std::unordered_map<std::string, int> producer;  // tensor -> producing node
  std::vector<int> muls;                          // the Muls among them, in the order found
};

Derived DeriveFrom(const GraphIndex& index, const std::string& t) {
  Derived d;
  std::deque<std::pair<std::string, int>> queue{{t, 0}};
  std::unordered_set<int> seen;
  while (!queue.empty()) {
    auto [tensor, depth] = queue.front();
    queue.pop_front();
    if (depth >= 8) continue;
    for (int c : index.Consumers(tensor)) {
      if (seen.count(c)) continue;
      const auto& node = index.node(c);
      if (!InnerOps().count(node.op_type())) continue;
      bool from_t = true;
      for (const auto& in : node.input()) {
        if (in != t && !d.producer.count(in) && !index.IsConstant(in)) from_t = false;
      }
      if (!from_t) continue;
      seen.insert(c);
      if (node.op_type() == "Mul") d.muls.push_back(c);
      for (const auto& out : node.output()) {
        d.producer.emplace(out, c);
        queue.emplace_back(out, depth + 1);
      }
    }
  }
  return d;
}

// The activation that the nonlinear ops of a decomposition's non-t side name (with how often
// each occurs); `squares_t`: that side multiplies two computed values (x·x for x³).
std::optional<ActivationKind> KindNamedByOps(const std::map<std::string, int>& ops,
                                             bool squares_t) {
  auto only = [&](std::initializer_list<const char*> names) {
    if (ops.size() != names.size()) return false;
    for (const char* n : names) {
      if (!ops.count(n)) return false;
    }
    return true;
  };
  if (only({"Sigmoid"})) return ActivationKind::kSilu;
  if (only({"HardSigmoid"})) return ActivationKind::kHardSwish;
  if (only({"Softplus", "Tanh"})) return ActivationKind::kMish;
  if (only({"Erf"})) return ActivationKind::kGelu;
  if (only({"Tanh", "Pow"}) || (only({"Tanh"}) && squares_t)) return ActivationKind::kGeluTanh;
  return std::nullopt;
}

// Recognises an exporter's decomposition of an activation applied to tensor `t`: a Mul of
// `t` (or of `t` scaled by constants, as in 0.5·x·(1 + Erf(x/√2))) with a value computed from
// `t` alone (through constants) by a few ops. The nonlinear ops on that side name the
// activation.
std::optional<DecompositionMatch> Decomposition(const GraphIndex& index, const std::string& t) {
  const Derived d = DeriveFrom(index, t);
  const auto& derived = d.producer;
  // Whether `s` is t times constants: t itself, or a Mul by a constant or a Div by a constant
  // of such a tensor. Collects the nodes on the way.
  auto scaled_t = [&](std::string s, std::unordered_set<int>* nodes) {
    while (s != t) {
      auto it = derived.find(s);
      if (it == derived.end()) return false;
      const auto& node = index.node(it->second);
      if ((node.op_type() != "Mul" && node.op_type() != "Div") || node.input_size() != 2) {
        return false;
      }
      const bool const0 = index.IsConstant(node.input(0));
      const bool const1 = index.IsConstant(node.input(1));
      if (const0 == const1 || (node.op_type() == "Div" && const0)) return false;
      nodes->insert(it->second);
      s = const0 ? node.input(1) : node.input(0);
    }
    return true;
  };
  for (int m : d.muls) {
    const auto& mul = index.node(m);
    if (mul.input_size() != 2) continue;
    for (int t_side = 0; t_side < 2; ++t_side) {
      DecompositionMatch match;
      const std::string& other = mul.input(1 - t_side);
      std::unordered_set<int> ignored;
      if (!derived.count(other) || !scaled_t(mul.input(t_side), &match.nodes) ||
          scaled_t(other, &ignored)) {
        continue;
      }
      // Collect the nonlinear ops among the other side's ancestors within the derived set.
      std::map<std::string, int> ops;
      std::vector<std::string> stack{other};
      std::unordered_set<std::string> visited;
      bool squares_t = false;
      while (!stack.empty()) {
        std::string cur = stack.back();
        stack.pop_back();
        if (!visited.insert(cur).second) continue;
        auto it = derived.find(cur);
        if (it == derived.end()) continue;
        match.nodes.insert(it->second);
        const auto& node = index.node(it->second);
        if (InnerOps().at(node.op_type())) ops[node.op_type()]++;
        if (node.op_type() == "Mul" && node.input_size() == 2 && !index.IsConstant(node.input(0)) &&
            !index.IsConstant(node.input(1))) {
          squares_t = true;  // x·x, as in x³ written without Pow
        }
        for (const auto& in : node.input()) stack.push_back(in);
      }
      const auto kind = KindNamedByOps(ops, squares_t);
      if (!kind) continue;
      match.verdict = Verdict{*kind};
      match.mul = m;
      match.nodes.insert(m);
      return match;
    }
  }
  return std::nullopt;
}

// `tensor`, then each tensor after a scaling by a constant that alone reads the previous one
// (the 0.5 that torch.onnx applies after x·(1 + Erf(x/√2))).
std::vector<std::string> ScalingChain(const GraphIndex& index, std::string tensor) {
  std::vector<std::string> chain = {tensor};
  for (int guard = 0; guard < 8; ++guard) {
    const auto& consumers = index.Consumers(tensor);
    if (consumers.size() != 1 || index.IsGraphOutput(tensor)) break;
    const auto& node = index.node(consumers[0]);
    const bool mul = node.op_type() == "Mul" && node.input_size() == 2;
    const bool div = node.op_type() == "Div" && node.input_size() == 2 && node.input(0) == tensor;
    if (!(mul || div) || node.output_size() != 1) break;
    const std::string& other = node.input(0) == tensor ? node.input(1) : node.input(0);
    if (!index.IsConstant(other)) break;
    tensor = node.output(0);
    chain.push_back(tensor);
  }
  return chain;
}

// The last of the chain: the decomposition's true output.
std::string AfterConstantScaling(const GraphIndex& index, const std::string& tensor) {
  return ScalingChain(index, tensor).back();
}

// --- Decompositions identified by their values.
//
// Other exporters spell activations in ops the table above does not name: hard-swish as
// x·Clip(x + 3, 0, 6)/6 or x·Min(Relu(x + 3), 6)/6 (tf2onnx, paddle2onnx), Mish with Softplus
// written as Log(1 + Exp(x)), LeakyReLU as Max(x, αx) or Where(x > 0, x, αx). Where a node
// combines two values computed from t alone (through scalar constants), the function it
// computes — with the constant scalings after it — is evaluated at sample points and compared
// with the activations' definitions.

// Ops an elementwise function of t may be spelled in.
bool IsElementwiseStep(std::string_view op) {
  static const std::unordered_set<std::string_view> kOps = {"Add",
                                                            "Sub",
                                                            "Mul",
                                                            "Div",
                                                            "Neg",
                                                            "Relu",
                                                            "Clip",
                                                            "Min",
                                                            "Max",
                                                            "Abs",
                                                            "Sigmoid",
                                                            "HardSigmoid",
                                                            "Tanh",
                                                            "Softplus",
                                                            "Erf",
                                                            "Pow",
                                                            "Exp",
                                                            "Log",
                                                            "Sqrt",
                                                            "Where",
                                                            "Greater",
                                                            "Less",
                                                            "GreaterOrEqual",
                                                            "LessOrEqual",
                                                            "Cast",
                                                            "Identity"};
  return kOps.count(op) > 0;
}

constexpr double kSamples[] = {-6,   -4,  -3, -2.5, -1.5, -1, -0.5, -0.25, 0,
                               0.25, 0.5, 1,  1.5,  2.5,  3,  4,    6};
constexpr size_t kSampleCount = std::size(kSamples);

// The values at the sample points (graph/sample_eval.h: one row a point), a scalar constant at
// every point; a node reading a non-scalar constant is not evaluated.
SampleSources PointSources(const GraphIndex& index) {
  return {.constant = [&index](const std::string& name) -> std::optional<Samples> {
            auto v = index.ConstantValues(name);
            if (!v || v->size() != 1) return std::nullopt;
            return Samples::Filled(1, 1, (*v)[0]);
          },
          .reduces_last_axis = nullptr};
}

// PyTorch's hardsigmoid, x/6 + 1/2, as exporters spell it out (φ has ONNX's default slope 0.2).
double TorchHardSigmoid(double x, double) { return std::clamp(x / 6 + 0.5, 0.0, 1.0); }

struct Reference {
  ActivationKind kind;
  double (*f)(double x, double a);
};

// The activations a decomposition may compute, by their φ (graph/activation_kinds.h), in the
// order tried: gelu before gelu_tanh, which agree within the tolerance.
const std::vector<Reference>& References() {
  static const std::vector<Reference> kRefs = [] {
    std::vector<Reference> refs;
    for (ActivationKind kind :
         {ActivationKind::kSilu, ActivationKind::kHardSwish, ActivationKind::kMish,
          ActivationKind::kGelu, ActivationKind::kGeluTanh, ActivationKind::kHardSigmoid,
          ActivationKind::kRelu}) {
      refs.push_back(
          {kind, kind == ActivationKind::kHardSigmoid ? TorchHardSigmoid : TraitsOf(kind).phi});
    }
    return refs;
  }();
  return kRefs;
}

bool Close(const Samples& got, double (*f)(double, double)) {
  for (size_t i = 0; i < kSampleCount; ++i) {
    const double want = f(kSamples[i], 0);
    if (!(std::abs(got.v[i] - want) <= 1e-3 * (1 + std::abs(want)))) return false;
  }
  return true;
}

std::optional<Verdict> Identify(const Samples& v) {
  for (const auto& r : References()) {
    if (Close(v, r.f)) return Verdict{r.kind};
  }
  // LeakyReLU with any slope in (0, 1): x for x >= 0, αx below.
  const double alpha = -v.v[5];  // at x = -1
  if (alpha > 0 && alpha < 1) {
    bool leaky = true;
    for (size_t i = 0; i < kSampleCount && leaky; ++i) {
      const double x = kSamples[i], want = x >= 0 ? x : alpha * x;
      leaky = std::abs(v.v[i] - want) <= 1e-4 * (1 + std::abs(want));
    }
    if (leaky) return Verdict{ActivationKind::kLeakyRelu, std::round(alpha * 1e6) / 1e6};
  }
  return std::nullopt;
}

std::optional<DecompositionMatch> NumericDecomposition(const GraphIndex& index,
                                                       const std::string& t) {
  std::unordered_map<std::string, Samples> known;
  Samples x = Samples::Filled(static_cast<int>(kSampleCount), 1, 0);
  std::copy(std::begin(kSamples), std::end(kSamples), x.v.begin());
  known[t] = x;
  const SampleSources sources = PointSources(index);
  std::unordered_map<std::string, int> producer;  // derived tensor -> node
  std::deque<std::pair<std::string, int>> queue{{t, 0}};
  std::vector<int> joins;             // candidate ends, in the order found
  std::unordered_set<int> combining;  // ... that combine two values derived from t
  while (!queue.empty()) {
    auto [tensor, depth] = queue.front();
    queue.pop_front();
    if (depth >= 8) continue;
    for (int c : index.Consumers(tensor)) {
      const auto& node = index.node(c);
      if (!IsElementwiseStep(node.op_type()) || node.output_size() != 1 ||
          known.count(node.output(0))) {
        continue;
      }
      int from_t = 0;
      bool ready = true;
      for (const auto& in : node.input()) {
        if (in.empty()) continue;
        if (known.count(in)) {
          ++from_t;
        } else if (!index.IsConstant(in)) {
          ready = false;
        }
      }
      if (!ready) continue;
      auto values = EvaluateNode(node, known, sources);
      if (!values) continue;
      known[node.output(0)] = *values;
      producer[node.output(0)] = c;
      // What combines two values of t; or a clamp of an affine function of t (a hard sigmoid
      // as Clip(x/6 + 0.5, 0, 1) or Clip(x + 3, 0, 6)/6), not of t itself (that is the op's).
      const bool clamp = node.op_type() == "Clip" || node.op_type() == "Min" ||
                         node.op_type() == "Max" || node.op_type() == "Relu";
      if (from_t >= 2) combining.insert(c);
      if (from_t >= 2 || (clamp && node.input(0) != t)) joins.push_back(c);
      queue.emplace_back(node.output(0), depth + 1);
    }
  }
  // What combines two values first: x·HardSigmoid(x) is hard-swish, not its hard sigmoid.
  std::stable_partition(joins.begin(), joins.end(), [&](int j) { return combining.count(j); });
  for (int j : joins) {
    // The first point of the scalings after it that computes an activation: a scaling that
    // belongs to what follows (paddle2onnx's learnable affine block) is not part of it.
    std::string out;
    std::optional<Verdict> verdict;
    for (const auto& tensor : ScalingChain(index, index.node(j).output(0))) {
      auto it = known.find(tensor);
      if (it == known.end()) break;
      verdict = Identify(it->second);
      out = tensor;
      if (verdict) break;
    }
    if (!verdict) continue;
    if (!combining.count(j) && verdict->kind != ActivationKind::kHardSigmoid) continue;
    DecompositionMatch match;
    match.verdict = *verdict;
    match.mul = j;
    match.by_value = true;
    match.output = out;
    // The nodes it consists of: every derived node the output depends on.
    std::vector<std::string> stack{out};
    while (!stack.empty()) {
      auto p = producer.find(stack.back());
      stack.pop_back();
      if (p == producer.end() || !match.nodes.insert(p->second).second) continue;
      for (const auto& in : index.node(p->second).input()) stack.push_back(in);
    }
    return match;
  }
  return std::nullopt;
}

std::string DecompositionText(ActivationKind kind) {
  switch (kind) {
    case ActivationKind::kSilu:
      return "x·Sigmoid(x) = SiLU";
    case ActivationKind::kHardSwish:
      return "x·HardSigmoid(x) = HardSwish";
    case ActivationKind::kMish:
      return "x·Tanh(Softplus(x)) = Mish";
    case ActivationKind::kGelu:
      return "0.5·x·(1 + Erf(x/√2)) = GELU";
    default:
      return "0.5·x·(1 + Tanh(√(2/π)(x + 0.044715x³))) = GELU (tanh)";
  }
}

// A verdict reached on one path, with the path and what the nonlinearity produces (empty for
// linear).
struct Found {
  Verdict verdict;
  std::vector<std::string> path;
  std::string tensor = {};
};

// A tensor the walk has reached, and the path to it.
struct WalkItem {
  std::string tensor;
  std::vector<std::string> path;
};

// The verdicts of the walk from a layer's output.
class ActivationWalk {
 public:
  ActivationWalk(const GraphIndex& index, const std::unordered_set<int>& layer_nodes)
      : index_(index), layer_nodes_(layer_nodes) {}

  // Walks from `output` (`start`: the path to it), breadth first.
  void Run(const std::string& output, const std::vector<std::string>& start) {
    std::deque<WalkItem> queue{{output, start}};
    std::unordered_set<std::string> visited{output};
    constexpr size_t kMaxSteps = 4096;  // a bound for pathological graphs
    size_t steps = 0;
    while (!queue.empty() && steps++ < kMaxSteps) {
      WalkItem item = std::move(queue.front());
      queue.pop_front();
      const std::string& t = item.tensor;
      if (index_.IsGraphOutput(t)) {
        auto path = item.path;
        path.push_back("graph output '" + t + "'");
        exported.push_back({{ActivationKind::kLinear}, std::move(path)});
      }
      // The decomposition's own nodes are not walked; the tensor's other consumers are.
      const std::unordered_set<int> decomposition_nodes = VisitDecomposition(item);
      for (int c : index_.Consumers(t)) {
        if (decomposition_nodes.count(c)) continue;
        auto path = item.path;
        path.push_back(index_.Describe(c));
        if (!Verdicts(c, &path)) continue;
        for (const auto& out : index_.node(c).output()) {
          if (!out.empty() && visited.insert(out).second) queue.push_back({out, path});
        }
      }
    }
  }

  std::vector<Found> found;
  // Reaching a graph output means linear only when nothing else is reached: a pre-activation
  // also exported as an output still feeds its nonlinearity inside the network.
  std::vector<Found> exported;

 private:
  // An exporter's decomposition of an activation applied to the item's tensor: its verdict;
  // returns the nodes it consists of.
  std::unordered_set<int> VisitDecomposition(const WalkItem& item) {
    auto d = Decomposition(index_, item.tensor);
    if (!d) d = NumericDecomposition(index_, item.tensor);
    if (!d) return {};
    const std::string kind(ActivationName(d->verdict.kind));
    auto path = item.path;
    path.push_back(index_.Describe(d->mul) + " (" +
                   (d->by_value ? "computes " + kind + ", checked at " +
                                      std::to_string(kSampleCount) + " points"
                                : DecompositionText(d->verdict.kind)) +
                   ")");
    found.push_back({d->verdict, std::move(path),
                     d->output.empty() ? AfterConstantScaling(index_, index_.node(d->mul).output(0))
                                       : d->output});
    return std::move(d->nodes);
  }

  // Judges consumer `c` reached along `path`: records a verdict, or ends the path without
  // one; true when the walk goes on through its outputs.
  bool Verdicts(int c, std::vector<std::string>* path) {
    const auto& node = index_.node(c);
    if (layer_nodes_.count(c)) {
      found.push_back({{ActivationKind::kLinear}, std::move(*path)});
      return false;
    }
    if (auto v = ActivationOp(index_, node)) {
      found.push_back({*v, std::move(*path), node.output_size() ? node.output(0) : ""});
      return false;
    }
    switch (WalkRoleOf(node.op_type())) {
      case WalkRole::kUnknown:
        path->back() += " (not a known activation or pass-through op: taken as linear)";
        found.push_back({{ActivationKind::kLinear}, std::move(*path)});
        return false;
      case WalkRole::kStatistic:
        return false;
      case WalkRole::kLinearStop:
        found.push_back({{ActivationKind::kLinear}, std::move(*path)});
        return false;
      case WalkRole::kPass:
        break;
    }
    return true;
  }

  const GraphIndex& index_;
  const std::unordered_set<int>& layer_nodes_;
};

std::string VerdictKey(const Verdict& v) {
  return std::string(ActivationName(v.kind)) + "/" + std::to_string(v.param);
}

// The verdict reached on most paths (ties go to the first found), with the others as
// alternatives.
proto::Activation ChooseVerdict(const std::vector<Found>& found) {
  std::vector<std::pair<std::string, int>> counts;  // key -> count, in order found
  for (const auto& f : found) {
    auto it = std::find_if(counts.begin(), counts.end(),
                           [&](const auto& c) { return c.first == VerdictKey(f.verdict); });
    if (it == counts.end())
      counts.emplace_back(VerdictKey(f.verdict), 1);
    else
      it->second++;
  }
  size_t best = 0;
  for (size_t i = 1; i < counts.size(); ++i) {
    if (counts[i].second > counts[best].second) best = i;
  }
  const Found* chosen = nullptr;
  for (const auto& f : found) {
    if (VerdictKey(f.verdict) == counts[best].first) {
      chosen = &f;
      break;
    }
  }
  proto::Activation result;
  result.set_kind(std::string(ActivationName(chosen->verdict.kind)));
  result.set_param(chosen->verdict.param);
  for (const auto& p : chosen->path) result.add_path(p);
  result.set_output(chosen->tensor);
  if (counts.size() > 1) {
    result.set_ambiguous(true);
    std::unordered_set<std::string> listed{counts[best].first};
    for (const auto& f : found) {
      if (!listed.insert(VerdictKey(f.verdict)).second) continue;
      std::string alt(ActivationName(f.verdict.kind));
      if (!f.path.empty()) alt += " via " + f.path.back();
      result.add_alternatives(alt);
    }
  }
  return result;
}

}  // namespace

proto::Activation DetectActivation(const GraphIndex& index,
                                   const std::unordered_set<int>& layer_nodes,
                                   const std::string& output, const std::vector<int>& prefix) {
  std::vector<std::string> start;
  for (int p : prefix) start.push_back(index.Describe(p));
  ActivationWalk walk(index, layer_nodes);
  walk.Run(output, start);
  if (!walk.found.empty()) return ChooseVerdict(walk.found);
  if (!walk.exported.empty()) return ChooseVerdict(walk.exported);
  proto::Activation result;
  result.set_kind("linear");
  auto path = start;
  path.push_back("no nonlinearity reached");
  for (auto& p : path) result.add_path(p);
  return result;
}

}  // namespace reinit
