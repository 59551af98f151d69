#include "graph/normalization.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <deque>
#include <optional>
#include <unordered_set>

#include "graph/sample_eval.h"
#include "io/model_io.h"

namespace reinit {

const char* NormKindName(NormKind kind) {
  switch (kind) {
    case NormKind::kRmsNorm:
      return "RMSNormalization";
    case NormKind::kL2Norm:
      return "LpNormalization";
    case NormKind::kLayerNorm:
      break;
  }
  return "LayerNormalization";
}

namespace {

// --- What a normalization computes.

// A row d (x less its mean when `centred`, else x) comes out as k·d/√(mean(d²) + ε), for one
// ε ≥ 0 over all rows, small beside the largest row's mean square.
struct NormReference {
  NormKind kind;
  bool centred;
  double (*factor)(int channels);  // k
};

const std::vector<NormReference>& NormReferences() {
  static const std::vector<NormReference> kRefs = {
      {NormKind::kLayerNorm, true, [](int) { return 1.0; }},
      // (x − mean)/std with Bessel's correction (torch.std, the Annotated Transformer's).
      {NormKind::kLayerNorm, true, [](int c) { return std::sqrt((c - 1.0) / c); }},
      {NormKind::kRmsNorm, false, [](int) { return 1.0; }},
      // x/‖x‖₂ over the channels.
      {NormKind::kL2Norm, false, [](int c) { return 1 / std::sqrt(static_cast<double>(c)); }},
  };
  return kRefs;
}

// The sample rows of x: scale·u + offset, u a fixed pseudo-random pattern in [-1, 1). Rows 0
// and 1 share their pattern and differ only in scale. The scales set ε apart from the row's own
// variance, the offsets a centred norm from one that is not.
struct RowShape {
  double scale, offset;
  uint32_t pattern;
};
constexpr RowShape kRows[] = {{3, 0, 0},   {30, 0, 0}, {0.5, 3, 0},
                              {4, -40, 0}, {2, 1, 1},  {50, -5, 1}};
constexpr int kRowCount = static_cast<int>(std::size(kRows));
constexpr int kDefaultWidth = 16;       // x's channels when nothing says how many
constexpr int64_t kMaxWidth = 1 << 17;  // wider rows (a vocabulary's softmax) are not evaluated

double Pattern(uint32_t pattern, int c) {
  uint32_t h = static_cast<uint32_t>(c) * 2654435761u ^ (pattern * 0x9E3779B9u + 0x7F4A7C15u);
  h ^= h >> 15;
  h *= 0x2C1B3C6Du;
  h ^= h >> 12;
  h *= 0x297A2D39u;
  h ^= h >> 15;
  return h / 4294967296.0 * 2 - 1;
}

Samples SampleRows(int width) {
  Samples x = Samples::Filled(kRowCount, width, 0);
  for (int r = 0; r < kRowCount; ++r) {
    for (int c = 0; c < width; ++c) {
      x.v[static_cast<size_t>(r) * width + c] =
          kRows[r].scale * Pattern(kRows[r].pattern, c) + kRows[r].offset;
    }
  }
  return x;
}

// One row's fit y = a·d, with d's mean square and the fit's largest error (relative to y's
// root mean square).
struct RowFit {
  double a = 0, mean_square = 0, residual = 0;
};

RowFit FitRow(const Samples& x, const Samples& y, int r, bool centred) {
  const int n = x.cols;
  double mean = 0;
  for (int c = 0; c < n; ++c) mean += x.at(r, c) / n;
  auto d = [&](int c) { return x.at(r, c) - (centred ? mean : 0); };
  double dd = 0, dy = 0, yy = 0;
  for (int c = 0; c < n; ++c) {
    dd += d(c) * d(c);
    dy += d(c) * y.at(r, c);
    yy += y.at(r, c) * y.at(r, c);
  }
  RowFit fit;
  fit.a = dd > 0 ? dy / dd : 0;
  fit.mean_square = dd / n;
  for (int c = 0; c < n; ++c) {
    fit.residual = std::max(fit.residual, std::abs(y.at(r, c) - fit.a * d(c)));
  }
  fit.residual /= std::sqrt(yy / n) + 1e-300;
  return fit;
}

// The k for which y is k·d/√(mean(d²) + ε) in every row, with one ε: 1/a² = (mean(d²) + ε)/k²
// is a line through the rows of least and most mean square, on which every row must lie.
std::optional<double> FitFactor(const Samples& x, const Samples& y, bool centred) {
  std::vector<RowFit> fits;
  for (int r = 0; r < kRowCount; ++r) {
    fits.push_back(FitRow(x, y, r, centred));
    if (!(fits.back().a > 0) || fits.back().residual > 1e-6) return std::nullopt;
  }
  const auto [lo, hi] = std::minmax_element(
      fits.begin(), fits.end(), [](auto& p, auto& q) { return p.mean_square < q.mean_square; });
  const double slope =
      (1 / (hi->a * hi->a) - 1 / (lo->a * lo->a)) / (hi->mean_square - lo->mean_square);
  if (!(slope > 0)) return std::nullopt;
  const double eps = std::max(0.0, 1 / (lo->a * lo->a * slope) - lo->mean_square);
  if (eps > 0.01 * hi->mean_square) return std::nullopt;  // no normalization at any scale
  const double k = 1 / std::sqrt(slope);
  for (const RowFit& f : fits) {
    if (std::abs(f.a * std::sqrt(f.mean_square + eps) / k - 1) > 1e-4) return std::nullopt;
  }
  return k;
}

// What y computes of x: a normalization of the table; or, when `other` is given and y
// normalizes x with another factor, nothing, and *other is set.
std::optional<NormKind> Classify(const Samples& x, const Samples& y, bool* other) {
  if (y.rows != x.rows || y.cols != x.cols || y.squeezed || x.cols < 2) return std::nullopt;
  for (bool centred : {true, false}) {
    const auto k = FitFactor(x, y, centred);
    if (!k) continue;
    for (const NormReference& ref : NormReferences()) {
      if (ref.centred == centred && std::abs(*k / ref.factor(x.cols) - 1) < 1e-4) return ref.kind;
    }
    *other = true;
  }
  return std::nullopt;
}

// --- The per-channel constants: what they are set to while evaluating.

enum class ChannelRole { kScale, kShift };

// Scale 1 and shift 0 (the norm itself), or distinct values per channel (γ and β checked).
enum class Probe { kIdentity, kDistinct };

double DistinctScale(int c) { return 0.75 + 0.5 * (Pattern(7, c) + 1) / 2; }
double DistinctShift(int c) { return 0.5 * Pattern(11, c); }

int64_t Count(const std::vector<int64_t>& shape) {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

// One value per channel: every dim 1 but the last, which is `width`.
bool PerChannel(const std::vector<int64_t>& shape, int width) {
  return width > 1 && !shape.empty() && shape.back() == width && Count(shape) == width;
}

// --- Matching.

// One exploration of what follows from a start tensor x.
struct Exploration {
  std::string x;
  std::unordered_map<std::string, Samples> known;  // x and what follows from it
  std::unordered_map<std::string, int> producer;   // computed tensor -> its node
  std::vector<int> order;                          // the nodes evaluated, in order
  std::unordered_set<std::string> reduced;         // tensors a reduction precedes
};

struct MatchResult {
  std::optional<NormSite> site;
  bool near = false;  // an output that looks normalizing, but is no site
  std::string why;    // why not, when near
};

class Matcher {
 public:
  Matcher(const GraphIndex& index, const TensorShapes& shapes) : index_(index), shapes_(shapes) {}

  // The norm that reduction node `i` is part of, or why it is unidentified; neither when it is
  // no normalization.
  void Match(int i, Normalizations* out) {
    std::vector<Exploration> explored;
    MatchResult found;
    for (const std::string& x : Starts(i)) {
      width_ = Width(x);
      rank_ = Rank(x);
      if (width_ < 2) continue;
      explored.push_back(Explore(x, Probe::kIdentity));
      MatchResult f = SiteFrom(explored.back(), i);
      if (f.site) {
        out->sites.push_back(std::move(*f.site));
        return;
      }
      if (f.near && !found.near) found = f;
    }
    if (auto u = Unidentified(i, explored, found)) out->unidentified.push_back(std::move(*u));
  }

 private:
  // The tensors x may be, nearest first: the reduction's input and, back through the sample
  // ops that computed it, their non-constant inputs (RMSNorm reduces x², not x).
  std::vector<std::string> Starts(int i) const {
    std::vector<std::string> starts;
    std::deque<std::pair<std::string, int>> todo = {{index_.node(i).input(0), 0}};
    while (!todo.empty() && starts.size() < 8) {
      auto [t, depth] = todo.front();
      todo.pop_front();
      if (Constant(t) || std::find(starts.begin(), starts.end(), t) != starts.end()) continue;
      starts.push_back(t);
      const int p = index_.Producer(t);
      if (p < 0 || depth >= 4 || !IsSampleOp(index_.node(p).op_type())) continue;
      for (const auto& in : index_.node(p).input()) {
        if (!in.empty()) todo.push_back({in, depth + 1});
      }
    }
    return starts;
  }

  bool Constant(const std::string& t) const {
    return index_.IsConstant(t) || ResolveConstant(index_, t).has_value();
  }

  const std::vector<int64_t>* ShapeOf(const std::string& t) const {
    auto it = shapes_.find(t);
    return it == shapes_.end() ? nullptr : &it->second;
  }

  // The rank of `t` where known: its own, or that of what an elementwise op computed it from.
  int Rank(std::string t) const {
    for (int depth = 0; depth < 8; ++depth) {
      if (const auto* s = ShapeOf(t)) return static_cast<int>(s->size());
      const int p = index_.Producer(t);
      const std::string op = p < 0 ? "" : index_.node(p).op_type();
      if (p < 0 || !IsSampleOp(op) || IsSampleReduction(op) || op == "Unsqueeze" ||
          op == "Squeeze") {
        break;
      }
      const auto& inputs = index_.node(p).input();
      auto data = std::find_if(inputs.begin(), inputs.end(),
                               [&](const std::string& in) { return !in.empty() && !Constant(in); });
      if (data == inputs.end()) break;
      t = *data;
    }
    return -1;
  }

  // x's channels: its last dim where known, else the size of the first per-channel constant
  // the ops after it read, else kDefaultWidth; 0 when wider than kMaxWidth.
  int Width(const std::string& x) const {
    if (const auto* s = ShapeOf(x); s && !s->empty() && s->back() > 1) {
      return s->back() <= kMaxWidth ? static_cast<int>(s->back()) : 0;
    }
    std::deque<std::pair<std::string, int>> todo = {{x, 0}};
    std::unordered_set<int> seen;
    while (!todo.empty()) {
      auto [t, depth] = todo.front();
      todo.pop_front();
      for (int c : index_.Consumers(t)) {
        if (depth >= 12 || !seen.insert(c).second || !IsSampleOp(index_.node(c).op_type())) {
          continue;
        }
        for (const auto& in : index_.node(c).input()) {
          auto view = in.empty() ? std::nullopt : ResolveConstant(index_, in);
          if (view && !view->shape.empty() && PerChannel(view->shape, view->shape.back())) {
            return view->shape.back() <= kMaxWidth ? static_cast<int>(view->shape.back()) : 0;
          }
        }
        for (const auto& out : index_.node(c).output()) todo.push_back({out, depth + 1});
      }
    }
    return kDefaultWidth;
  }

  // A per-channel constant is a scale when every node reading it multiplies or divides by it,
  // a shift when every one adds or subtracts it.
  std::optional<ChannelRole> RoleOf(const std::string& t) const {
    bool scale = false, shift = false;
    for (int c : index_.Consumers(t)) {
      const std::string& op = index_.node(c).op_type();
      scale |= op == "Mul" || op == "Div";
      shift |= op == "Add" || op == "Sub";
      if (op != "Mul" && op != "Div" && op != "Add" && op != "Sub") return std::nullopt;
    }
    if (scale == shift) return std::nullopt;
    return scale ? ChannelRole::kScale : ChannelRole::kShift;
  }

  std::optional<double> ScalarValue(const std::string& t, const ConstantView& view) const {
    auto v = index_.ConstantValues(t);
    if (!v && !view.dequantize) v = index_.ConstantValues(view.source);
    if (!v || v->size() != 1) return std::nullopt;
    return (*v)[0];
  }

  // A constant input's samples: a scalar's value, or a per-channel constant set as `probe` says.
  std::optional<Samples> ConstantSamples(const std::string& t, Probe probe) const {
    auto view = ResolveConstant(index_, t);
    if (!view) return std::nullopt;
    if (Count(view->shape) == 1) {
      auto v = ScalarValue(t, *view);
      if (!v) return std::nullopt;
      return Samples::Filled(1, 1, *v);
    }
    auto role = RoleOf(t);
    if (!PerChannel(view->shape, width_) || !role) return std::nullopt;
    Samples s = Samples::Filled(1, width_, *role == ChannelRole::kScale ? 1 : 0);
    for (int c = 0; probe == Probe::kDistinct && c < width_; ++c) {
      s.v[c] = *role == ChannelRole::kScale ? DistinctScale(c) : DistinctShift(c);
    }
    return s;
  }

  // Reduces the last axis alone: axes [-1], or [rank − 1] where the rank is known.
  bool ReducesLastAxis(const onnx::NodeProto& node) const {
    std::vector<int64_t> axes = IntsAttribute(node, "axes");
    if (axes.empty() && node.input_size() > 1 && !node.input(1).empty()) {
      auto v = index_.ConstantValues(node.input(1));
      if (!v) return false;
      for (double a : *v) axes.push_back(static_cast<int64_t>(a));
    }
    if (axes.size() != 1) return false;
    int rank = Rank(node.input(0));
    if (rank < 0) rank = rank_;
    return axes[0] == -1 || (rank > 0 && axes[0] == rank - 1);
  }

  SampleSources Sources(Probe probe) const {
    return {.constant = [this, probe](const std::string& t) { return ConstantSamples(t, probe); },
            .reduces_last_axis = [this](const onnx::NodeProto& n) { return ReducesLastAxis(n); }};
  }

  // Whether every input the node evaluates is known or a constant.
  bool Ready(const onnx::NodeProto& node, const Exploration& e) const {
    const int inputs = IsSampleReduction(node.op_type()) || node.op_type() == "Unsqueeze" ||
                               node.op_type() == "Squeeze"
                           ? 1
                           : node.input_size();
    for (int k = 0; k < inputs; ++k) {
      const std::string& in = node.input(k);
      if (!in.empty() && !e.known.count(in) && !Constant(in)) return false;
    }
    return true;
  }

  // Evaluates the sample ops that follow from x, breadth first, each once all it reads is known.
  Exploration Explore(const std::string& x, Probe probe) const {
    Exploration e;
    e.x = x;
    e.known[x] = SampleRows(width_);
    const SampleSources sources = Sources(probe);
    std::deque<std::pair<std::string, int>> todo = {{x, 0}};
    while (!todo.empty() && e.order.size() < 64) {
      auto [t, depth] = todo.front();
      todo.pop_front();
      for (int c : index_.Consumers(t)) {
        const auto& node = index_.node(c);
        if (depth >= 16 || !IsSampleOp(node.op_type()) || node.output_size() != 1 ||
            e.known.count(node.output(0)) || !Ready(node, e)) {
          continue;
        }
        auto y = EvaluateNode(node, e.known, sources);
        if (!y) continue;
        const std::string& out = node.output(0);
        e.known[out] = std::move(*y);
        e.producer[out] = c;
        e.order.push_back(c);
        bool reduced = IsSampleReduction(node.op_type());
        for (const auto& in : node.input()) reduced |= e.reduced.count(in) > 0;
        if (reduced) e.reduced.insert(out);
        todo.push_back({out, depth + 1});
      }
    }
    return e;
  }

  // The nodes `t` is computed by in the exploration.
  std::unordered_set<int> Ancestry(const Exploration& e, const std::string& t) const {
    std::unordered_set<int> nodes;
    std::vector<std::string> stack = {t};
    while (!stack.empty()) {
      auto it = e.producer.find(stack.back());
      stack.pop_back();
      if (it == e.producer.end() || !nodes.insert(it->second).second) continue;
      for (const auto& in : index_.node(it->second).input()) stack.push_back(in);
    }
    return nodes;
  }

  // The per-channel constants the nodes read: the scale and the shift (at most one each).
  bool ChannelConstants(const std::unordered_set<int>& nodes, NormSite* site) const {
    for (int v : nodes) {
      for (const auto& in : index_.node(v).input()) {
        auto view = in.empty() ? std::nullopt : ResolveConstant(index_, in);
        if (!view || !PerChannel(view->shape, width_)) continue;
        std::string& slot = RoleOf(in) == ChannelRole::kScale ? site->gamma : site->beta;
        if (!slot.empty() && slot != in) return false;
        slot = in;
      }
    }
    return true;
  }

  // Whether the output becomes γ·n + β when γ and β take distinct values per channel.
  bool AffineChecks(const Exploration& e, const NormSite& site) const {
    std::unordered_map<std::string, Samples> known = {{e.x, e.known.at(e.x)}};
    const SampleSources sources = Sources(Probe::kDistinct);
    const std::unordered_set<int> nodes(site.nodes.begin(), site.nodes.end());
    for (int v : e.order) {
      if (!nodes.count(v)) continue;
      auto y = EvaluateNode(index_.node(v), known, sources);
      if (!y) return false;
      known[index_.node(v).output(0)] = std::move(*y);
    }
    const Samples& n = e.known.at(site.output);
    const Samples& got = known.at(site.output);
    double worst = 0, size = 0;
    for (int r = 0; r < n.rows; ++r) {
      for (int c = 0; c < n.cols; ++c) {
        const double want = (site.gamma.empty() ? 1 : DistinctScale(c)) * n.at(r, c) +
                            (site.beta.empty() ? 0 : DistinctShift(c));
        worst = std::max(worst, std::abs(got.at(r, c) - want));
        size = std::max(size, std::abs(want));
      }
    }
    return worst <= 1e-6 * (1 + size);
  }

  // Tensors of full rows that a reduction precedes and that reduction `i` is among the nodes
  // of, most nodes first.
  std::vector<std::pair<std::string, std::unordered_set<int>>> Ends(const Exploration& e,
                                                                    int i) const {
    std::vector<std::pair<std::string, std::unordered_set<int>>> ends;
    for (auto it = e.order.rbegin(); it != e.order.rend(); ++it) {
      const std::string& t = index_.node(*it).output(0);
      const Samples& y = e.known.at(t);
      if (!e.reduced.count(t) || y.cols != width_ || y.rows != kRowCount || y.squeezed) continue;
      auto nodes = Ancestry(e, t);
      if (nodes.count(i)) ends.emplace_back(t, std::move(nodes));
    }
    std::stable_sort(ends.begin(), ends.end(), [](const auto& a, const auto& b) {
      return a.second.size() > b.second.size();
    });
    return ends;
  }

  MatchResult SiteFrom(const Exploration& e, int i) const {
    MatchResult found;
    for (auto& [t, nodes] : Ends(e, i)) {
      bool other = false;
      auto kind = Classify(e.known.at(e.x), e.known.at(t), &other);
      if (!kind) {
        if (other && !found.near) {
          found = {std::nullopt, true, "it normalizes, but by a factor no normalization has"};
        }
        continue;
      }
      NormSite site;
      site.kind = *kind;
      site.input = e.x;
      site.output = t;
      site.nodes.assign(nodes.begin(), nodes.end());
      std::sort(site.nodes.begin(), site.nodes.end());
      if (!ChannelConstants(nodes, &site) || !AffineChecks(e, site)) {
        if (!found.near) {
          found = {std::nullopt, true,
                   "it computes " + std::string(NormKindName(*kind)) +
                       ", but its per-channel scale and shift could not be told apart"};
        }
        continue;
      }
      Anchor(&site);
      found.site = std::move(site);
      return found;
    }
    return found;
  }

  // Whether `to` is reached from `from` through the site's nodes other than `without`.
  bool Reaches(const NormSite& site, const std::string& from, const std::string& to,
               int without) const {
    const std::unordered_set<int> nodes(site.nodes.begin(), site.nodes.end());
    std::vector<std::string> stack = {from};
    std::unordered_set<std::string> seen;
    while (!stack.empty()) {
      const std::string t = stack.back();
      stack.pop_back();
      if (t == to) return true;
      if (!seen.insert(t).second) continue;
      for (int c : index_.Consumers(t)) {
        if (c != without && nodes.count(c)) stack.push_back(index_.node(c).output(0));
      }
    }
    return false;
  }

  void Anchor(NormSite* site) const {
    site->anchor = index_.Producer(site->output);
    for (int v : site->nodes) {
      const auto& node = index_.node(v);
      const bool reads_gamma = !site->gamma.empty() && node.op_type() == "Mul" &&
                               (node.input(0) == site->gamma || node.input(1) == site->gamma);
      if (reads_gamma && !Reaches(*site, site->input, site->output, v)) site->anchor = v;
    }
    for (int v : site->nodes) {
      if (v != site->anchor &&
          Reaches(*site, index_.node(site->anchor).output(0), index_.node(v).output(0), -1)) {
        site->after_anchor.push_back(v);
      }
    }
  }

  // --- Unidentified: a reduction of x whose statistic scales x.

  // Ops a statistic is carried through on its way to scaling x (besides the sample ops).
  static bool Carries(const std::string& op) {
    return IsSampleOp(op) || op == "Reshape" || op == "Expand" || op == "Tile" ||
           op == "Transpose" || op == "Flatten" || op == "CastLike";
  }

  // The tensors reached from `from` through such ops; not through reductions unless `reduce`.
  std::unordered_set<std::string> Reach(const std::string& from, bool reduce) const {
    std::unordered_set<std::string> reached = {from};
    std::deque<std::pair<std::string, int>> todo = {{from, 0}};
    while (!todo.empty()) {
      auto [t, depth] = todo.front();
      todo.pop_front();
      for (int c : index_.Consumers(t)) {
        const auto& node = index_.node(c);
        if (depth >= 8 || !Carries(node.op_type()) || node.output_size() < 1 ||
            (!reduce && IsSampleReduction(node.op_type()))) {
          continue;
        }
        if (reached.insert(node.output(0)).second) todo.push_back({node.output(0), depth + 1});
      }
    }
    return reached;
  }

  // The Mul or Div of x (or what follows from x without a reduction) by what follows from
  // reduction `i`; -1 if none.
  int Combine(int i, const std::vector<std::string>& starts) const {
    const auto stat = Reach(index_.node(i).output(0), true);
    std::unordered_set<std::string> from_x;
    for (const auto& x : starts) {
      for (auto& t : Reach(x, false)) from_x.insert(t);
    }
    int best = -1;
    for (const auto& t : stat) {
      for (int c : index_.Consumers(t)) {
        const auto& node = index_.node(c);
        if ((node.op_type() != "Mul" && node.op_type() != "Div") || node.input_size() != 2) {
          continue;
        }
        const std::string& other = node.input(0) == t ? node.input(1) : node.input(0);
        if (other != t && from_x.count(other) && (best < 0 || c < best)) best = c;
      }
    }
    return best;
  }

  // What kept the path from reduction `i` to `combine` from being evaluated.
  std::string Blocked(int i, int combine, const std::vector<Exploration>& explored) const {
    auto evaluated = [&](int v) {
      for (const auto& e : explored) {
        if (e.producer.count(index_.node(v).output(0))) return true;
      }
      return false;
    };
    if (!evaluated(i)) {
      return index_.Describe(i) + " is no reduction over the last axis alone";
    }
    const auto stat = Reach(index_.node(i).output(0), true);
    int first = combine;
    for (int v = 0; v < index_.node_count(); ++v) {
      const auto& node = index_.node(v);
      if (v != i && node.output_size() > 0 && stat.count(node.output(0)) && !evaluated(v)) {
        first = v;
        break;
      }
    }
    return index_.Describe(first) + " could not be evaluated";
  }

  std::optional<UnidentifiedNorm> Unidentified(int i, const std::vector<Exploration>& explored,
                                               const MatchResult& found) const {
    const int combine = Combine(i, Starts(i));
    if (combine < 0) return std::nullopt;
    UnidentifiedNorm u{i, combine, found.why};
    if (!found.near) {
      for (const auto& e : explored) {
        if (e.producer.count(index_.node(combine).output(0))) return std::nullopt;
      }
      u.why = Blocked(i, combine, explored);
    }
    return u;
  }

  const GraphIndex& index_;
  const TensorShapes& shapes_;
  int width_ = kDefaultWidth;
  int rank_ = -1;
};

}  // namespace

Normalizations FindNormalizations(const GraphIndex& index, const TensorShapes* shapes) {
  TensorShapes declared;
  if (!shapes) {
    declared = DeclaredShapes(index.graph());
    shapes = &declared;
  }
  Matcher matcher(index, *shapes);
  Normalizations found;
  std::unordered_set<int> covered;
  for (int i = 0; i < index.node_count(); ++i) {
    const auto& node = index.node(i);
    if (!IsSampleReduction(node.op_type()) || covered.count(i) || node.input_size() < 1 ||
        (!node.domain().empty() && node.domain() != "ai.onnx")) {
      continue;
    }
    const size_t before = found.sites.size();
    matcher.Match(i, &found);
    if (found.sites.size() > before)
      covered.insert(found.sites.back().nodes.begin(), found.sites.back().nodes.end());
  }
  std::erase_if(found.unidentified, [&](const UnidentifiedNorm& u) {
    return covered.count(u.reduction) || covered.count(u.combine);
  });
  return found;
}

}  // namespace reinit
