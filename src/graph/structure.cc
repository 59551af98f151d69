#include "graph/structure.h"

#include <algorithm>
#include <deque>
#include <map>
#include <numeric>
#include <optional>
#include <string_view>
#include <unordered_set>

#include "graph/op_traits.h"

namespace reinit {

const char* StreamNormName(StreamNorm norm) {
  switch (norm) {
    case StreamNorm::kPreNorm:
      return "pre_norm";
    case StreamNorm::kPostNorm:
      return "post_norm";
    case StreamNorm::kInBranch:
      return "in_branch";
    case StreamNorm::kUnknown:
      return "unknown";
    case StreamNorm::kNone:
      break;
  }
  return "none";
}

const char* BranchPositionName(BranchPosition position) {
  switch (position) {
    case BranchPosition::kFirst:
      return "first";
    case BranchPosition::kInner:
      return "inner";
    case BranchPosition::kLast:
      return "last";
    case BranchPosition::kOnly:
      return "only";
    case BranchPosition::kProjectedSkip:
      return "projected_skip";
    case BranchPosition::kNone:
      break;
  }
  return "none";
}

namespace {

enum class NodeRole { kOther, kWeight, kNorm, kStop };

class Analyzer {
 public:
  Analyzer(const GraphIndex& index, const std::vector<Layer>& layers, const std::vector<int>& order,
           const Normalizations& norms)
      : index_(index),
        order_(order),
        n_(index.node_count()),
        role_(n_, NodeRole::kOther),
        in_norm_(n_, 0) {
    for (const Layer& l : layers) {
      if (l.node < 0 || !l.rule) continue;
      const LayerKind kind = KindOf(l.rule->layout);
      data_input_[l.node] = l.rule->weight_input == 0 ? 1 : 0;
      if (kind == LayerKind::kDense || kind == LayerKind::kConv) role_[l.node] = NodeRole::kWeight;
      if (kind == LayerKind::kNorm) role_[l.node] = NodeRole::kNorm;
      if (kind == LayerKind::kEmbedding || kind == LayerKind::kRecurrent) {
        role_[l.node] = NodeRole::kStop;
        if (kind == LayerKind::kEmbedding) embedding_.insert(l.node);
      }
    }
    for (int i = 0; i < n_; ++i) {
      if (role_[i] == NodeRole::kOther && NormalizesStream(index.node(i).op_type()))
        role_[i] = NodeRole::kNorm;
    }
    NoteNormalizations(norms);
  }

  Structure Run() {
    Structure s;
    for (int node : order_) {
      auto join = AsJoin(node);
      if (join) s.joins.push_back(std::move(*join));
    }
    AssignPlaces(&s);
    GroupStreams(&s);
    FindHeads(&s);
    return s;
  }

 private:
  // A written-out norm stands at its anchor, unless a norm layer (the structural matcher's, at
  // its γ) stands for it already; every node of it reads as part of a norm. An unidentified one
  // is known by its reduction and the node that scales the stream.
  void NoteNormalizations(const Normalizations& norms) {
    for (const NormSite& site : norms.sites) {
      bool standing = false;
      for (int v : site.nodes) standing |= role_[v] == NodeRole::kNorm;
      for (int c : index_.Consumers(site.output)) standing |= role_[c] == NodeRole::kNorm;
      if (!standing && role_[site.anchor] == NodeRole::kOther) role_[site.anchor] = NodeRole::kNorm;
      for (int v : site.nodes) in_norm_[v] = 1;
    }
    for (const UnidentifiedNorm& u : norms.unidentified) {
      const std::string why = index_.Describe(u.combine) +
                              " scales the stream by a statistic of it that could not be "
                              "identified: " +
                              u.why;
      unidentified_.emplace(u.reduction, why);
      unidentified_.emplace(u.combine, why);
    }
  }

  // What could not be identified at node v, or null.
  const std::string* Unidentified(int v) const {
    auto it = unidentified_.find(v);
    return it == unidentified_.end() ? nullptr : &it->second;
  }

  struct Trace {
    std::string source;
    std::vector<int> projection;
    bool has_weight = false;
    double scale = 1;
  };

  bool Constant(const std::string& t) const {
    return t.empty() || index_.IsConstant(t) || ResolveConstant(index_, t).has_value();
  }

  std::optional<double> ScalarValue(const std::string& t) const {
    auto v = index_.ConstantValues(t);
    if (!v || v->size() != 1) return std::nullopt;
    return (*v)[0];
  }

  // Walks back from a join operand along what a skip may pass through; through one weight
  // layer (and the norm after it) only when `projected`.
  Trace TraceSkip(std::string t, bool projected) const {
    Trace tr;
    std::string before_norm;
    for (int steps = 0; steps < 64; ++steps) {
      const int p = index_.Producer(t);
      if (p < 0) break;
      const auto& node = index_.node(p);
      const std::string& op = node.op_type();
      if (SkipPassesThrough(op) && node.input_size() > 0) {
        t = node.input(0);
      } else if ((op == "Mul" || op == "Div") && node.input_size() == 2 &&
                 Constant(node.input(1)) != Constant(node.input(0))) {
        const int c = Constant(node.input(1)) ? 1 : 0;
        auto v = ScalarValue(node.input(c));
        if (!v || *v == 0) break;  // a per-channel scaling (layer scale) is part of a branch
        tr.scale *= op == "Mul" ? *v : (c == 1 ? 1 / *v : *v);
        t = node.input(1 - c);
      } else if (projected && role_[p] == NodeRole::kNorm && IsNormalizationOp(op) &&
                 tr.projection.empty()) {
        tr.projection.push_back(p);  // a projection's norm, if a layer comes next
        before_norm = t;
        t = node.input(0);
      } else if (projected && role_[p] == NodeRole::kWeight && !tr.has_weight) {
        tr.projection.push_back(p);
        tr.has_weight = true;
        t = node.input(data_input_.at(p));
      } else {
        break;
      }
    }
    if (!tr.has_weight && !tr.projection.empty()) {
      tr.projection.clear();  // a norm alone is not a projection: the skip starts after it
      t = before_norm;
    }
    tr.source = t;
    return tr;
  }

  // Nodes reachable from the consumers of `tensor`.
  std::vector<char> Descendants(const std::string& tensor) const {
    std::vector<char> seen(n_, 0);
    std::deque<int> todo;
    for (int c : index_.Consumers(tensor)) todo.push_back(c);
    while (!todo.empty()) {
      const int v = todo.front();
      todo.pop_front();
      if (seen[v]) continue;
      seen[v] = 1;
      for (const auto& out : index_.node(v).output()) {
        for (int c : index_.Consumers(out)) todo.push_back(c);
      }
    }
    return seen;
  }

  // The producer of `tensor` and every node it depends on, among the nodes marked in `within`.
  std::vector<char> Ancestors(const std::string& tensor, const std::vector<char>& within) const {
    std::vector<char> seen(n_, 0);
    std::deque<int> todo;
    if (int p = index_.Producer(tensor); p >= 0) todo.push_back(p);
    while (!todo.empty()) {
      const int v = todo.front();
      todo.pop_front();
      if (seen[v] || !within[v]) continue;
      seen[v] = 1;
      for (const auto& in : index_.node(v).input()) {
        if (int p = in.empty() ? -1 : index_.Producer(in); p >= 0) todo.push_back(p);
      }
    }
    return seen;
  }

  struct Branch {
    std::vector<int> nodes;   // in execution order
    std::vector<int> before;  // per entry of nodes: weight layers on the longest path from S
    std::vector<int> after;   // ... and to the join, the node itself excluded
    int depth = 0;
  };

  // The nodes between S and the branch operand, and the weight layers along them.
  std::optional<Branch> BranchBetween(const std::string& source, const std::string& operand,
                                      int join) const {
    std::vector<char> mask = Descendants(source);
    mask[join] = 0;
    mask = Ancestors(operand, mask);
    Branch b;
    for (int v : order_) {
      if (mask[v]) b.nodes.push_back(v);
    }
    std::unordered_map<int, int> at;
    for (size_t k = 0; k < b.nodes.size(); ++k) at[b.nodes[k]] = static_cast<int>(k);
    b.before.assign(b.nodes.size(), 0);
    b.after.assign(b.nodes.size(), 0);
    auto weight = [&](int v) { return role_[v] == NodeRole::kWeight ? 1 : 0; };
    for (size_t k = 0; k < b.nodes.size(); ++k) {
      for (const auto& in : index_.node(b.nodes[k]).input()) {
        const int p = in.empty() ? -1 : index_.Producer(in);
        if (auto it = at.find(p); p >= 0 && it != at.end()) {
          b.before[k] = std::max(b.before[k], b.before[it->second] + weight(p));
        }
      }
    }
    for (size_t k = b.nodes.size(); k-- > 0;) {
      for (const auto& out : index_.node(b.nodes[k]).output()) {
        for (int c : index_.Consumers(out)) {
          if (auto it = at.find(c); it != at.end()) {
            b.after[k] = std::max(b.after[k], b.after[it->second] + weight(c));
          }
        }
      }
      if (weight(b.nodes[k])) b.depth = std::max(b.depth, b.before[k] + 1 + b.after[k]);
    }
    if (b.depth == 0) return std::nullopt;
    return b;
  }

  std::optional<Join> AsJoin(int node) {
    const auto& n = index_.node(node);
    if (!(n.op_type() == "Add" || (n.op_type() == "Sum" && n.input_size() == 2))) {
      return std::nullopt;
    }
    if (n.input_size() != 2 || n.output_size() < 1 || Constant(n.input(0)) ||
        Constant(n.input(1)) || n.input(0) == n.input(1)) {
      return std::nullopt;
    }
    std::optional<Join> best;
    std::optional<Branch> best_branch;
    for (int o = 0; o < 2; ++o) {
      // A direct skip if the operand's own stream reaches the branch, else a projected one.
      Trace tr = TraceSkip(n.input(o), false);
      std::optional<Branch> branch;
      if (!Constant(tr.source)) branch = BranchBetween(tr.source, n.input(1 - o), node);
      if (!branch) {
        tr = TraceSkip(n.input(o), true);
        if (!tr.has_weight || Constant(tr.source)) continue;
        branch = BranchBetween(tr.source, n.input(1 - o), node);
      }
      if (!branch) continue;
      const bool better = !best || (best->projected && !tr.has_weight) ||
                          (best->projected == tr.has_weight && branch->depth > best_branch->depth);
      const bool tie = best && best->projected == tr.has_weight && branch->depth == best->depth;
      if (tie) return std::nullopt;  // two alike parallel paths: a sum, not a residual
      if (!better) continue;
      Join j;
      j.node = node;
      j.output = n.output(0);
      j.source = tr.source;
      j.projected = tr.has_weight;
      j.projection = tr.projection;
      j.skip_scale = tr.scale;
      j.depth = branch->depth;
      best = std::move(j);
      best_branch = std::move(branch);
    }
    if (!best) return std::nullopt;
    Join& j = *best;
    bool pre = false, in_branch = false;
    for (size_t k = 0; k < best_branch->nodes.size(); ++k) {
      const int v = best_branch->nodes[k];
      if (const std::string* why = Unidentified(v); why && j.unknown.empty()) j.unknown = *why;
      if (role_[v] != NodeRole::kWeight && role_[v] != NodeRole::kNorm) continue;
      j.layers.push_back(v);
      BranchPosition pos = BranchPosition::kInner;
      const bool first = best_branch->before[k] == 0, last = best_branch->after[k] == 0;
      if (first && last)
        pos = role_[v] == NodeRole::kNorm ? BranchPosition::kFirst : BranchPosition::kOnly;
      else if (first)
        pos = BranchPosition::kFirst;
      else if (last)
        pos = BranchPosition::kLast;
      positions_[{static_cast<int>(joins_seen_), v}] = pos;
      if (role_[v] == NodeRole::kNorm) (first ? pre : in_branch) = true;
    }
    j.norm = in_branch           ? StreamNorm::kInBranch
             : pre               ? StreamNorm::kPreNorm
             : j.unknown.empty() ? StreamNorm::kNone
                                 : StreamNorm::kUnknown;
    if (j.norm != StreamNorm::kUnknown) j.unknown.clear();
    branch_sizes_.push_back(best_branch->nodes.size());
    ++joins_seen_;
    return best;
  }

  // Each layer goes to the innermost branch that holds it; projections to their join.
  void AssignPlaces(Structure* s) {
    for (size_t j = 0; j < s->joins.size(); ++j) {
      for (int v : s->joins[j].layers) {
        auto it = s->places.find(v);
        if (it != s->places.end() && (it->second.position == BranchPosition::kProjectedSkip ||
                                      branch_sizes_[it->second.join] <= branch_sizes_[j])) {
          continue;
        }
        s->places[v] = {static_cast<int>(j), positions_.at({static_cast<int>(j), v})};
      }
      for (int v : s->joins[j].projection) {
        s->places[v] = {static_cast<int>(j), BranchPosition::kProjectedSkip};
      }
    }
  }

  // What a walk back from a join's source passed on its way to the joins it comes from.
  struct Passed {
    bool norm = false;
    const std::string* unknown = nullptr;  // an unidentified normalization's description
  };

  // Walks back from `tensor` through anything but weight layers and embeddings to the joins it
  // comes from; `passed` says whether a path passed a norm, or an unidentified one.
  std::vector<int> JoinsBehind(const std::string& tensor,
                               const std::unordered_map<int, int>& join_of, Passed* passed,
                               std::vector<int>* embeddings) const {
    std::vector<int> found;
    std::unordered_set<int> seen;
    std::deque<std::pair<int, Passed>> todo;
    if (int p = index_.Producer(tensor); p >= 0) todo.push_back({p, {}});
    while (!todo.empty() && seen.size() < 512) {
      auto [v, path] = todo.front();
      todo.pop_front();
      if (!seen.insert(v).second) continue;
      if (auto it = join_of.find(v); it != join_of.end()) {
        found.push_back(it->second);
        passed->norm |= path.norm;
        if (!passed->unknown) passed->unknown = path.unknown;
        continue;
      }
      if (embedding_.count(v)) {
        if (embeddings) embeddings->push_back(v);
        continue;
      }
      if (role_[v] == NodeRole::kWeight || role_[v] == NodeRole::kStop) continue;
      path.norm |= role_[v] == NodeRole::kNorm;
      if (!path.unknown) path.unknown = Unidentified(v);
      for (const auto& in : index_.node(v).input()) {
        if (int p = in.empty() || Constant(in) ? -1 : index_.Producer(in); p >= 0) {
          todo.push_back({p, path});
        }
      }
    }
    return found;
  }

  void GroupStreams(Structure* s) {
    const int count = static_cast<int>(s->joins.size());
    std::unordered_map<int, int> join_of;
    for (int j = 0; j < count; ++j) join_of[s->joins[j].node] = j;
    std::vector<int> parent(count);
    std::iota(parent.begin(), parent.end(), 0);
    auto find = [&](int x) {
      while (parent[x] != x) x = parent[x] = parent[parent[x]];
      return x;
    };
    std::vector<Passed> post(count);
    for (int j = 0; j < count; ++j) {
      Passed passed;
      for (int prev : JoinsBehind(s->joins[j].source, join_of, &passed, nullptr)) {
        parent[find(j)] = find(prev);
        post[prev].norm |= passed.norm;
        if (!post[prev].unknown) post[prev].unknown = passed.unknown;
      }
    }
    // The last join of a post-norm stream has no successor to show its norm: it counts as
    // post-norm when a norm reads its output before any weight layer.
    for (int j = 0; j < count; ++j) {
      const StreamNorm own = s->joins[j].norm;
      if (!post[j].norm && (own == StreamNorm::kNone || own == StreamNorm::kUnknown)) {
        ReadBy(s->joins[j].output, &post[j]);
      }
    }
    std::unordered_map<int, int> stream_of_root;
    for (int j = 0; j < count; ++j) {
      const int root = find(j);
      auto [it, fresh] = stream_of_root.emplace(root, static_cast<int>(s->streams.size()));
      if (fresh) {
        s->streams.emplace_back();
        s->streams.back().input = s->joins[j].source;
        Passed unused;
        JoinsBehind(s->joins[j].source, {}, &unused, &s->streams.back().embeddings);
      }
      Join& join = s->joins[j];
      SetPostNorm(post[j], &join);
      join.stream = it->second;
      join.branch = static_cast<int>(s->streams[it->second].joins.size());
      s->streams[it->second].joins.push_back(j);
    }
    for (Stream& stream : s->streams) {
      stream.norm = Majority(*s, stream);
      for (int j : stream.joins) {
        if (stream.unknown.empty()) stream.unknown = s->joins[j].unknown;
      }
      if (stream.norm != StreamNorm::kUnknown) stream.unknown.clear();
    }
  }

  // A join with no norm of its own is post-norm when a norm follows it; unknown when only an
  // unidentified normalization does.
  static void SetPostNorm(const Passed& post, Join* join) {
    if (post.norm && (join->norm == StreamNorm::kNone || join->norm == StreamNorm::kUnknown)) {
      join->norm = StreamNorm::kPostNorm;
      join->unknown.clear();
    } else if (post.unknown && join->norm == StreamNorm::kNone) {
      join->norm = StreamNorm::kUnknown;
      join->unknown = *post.unknown;
    }
  }

  // The joins' majority; unknown rather than none when any join is unknown (norm-free must be
  // established on every branch).
  static StreamNorm Majority(const Structure& s, const Stream& stream) {
    constexpr int kKinds = static_cast<int>(StreamNorm::kUnknown) + 1;
    int votes[kKinds] = {};
    for (int j : stream.joins) ++votes[static_cast<int>(s.joins[j].norm)];
    int best = 0;
    for (int k = 1; k < kKinds; ++k) {
      if (votes[k] > votes[best]) best = k;
    }
    const auto unknown = static_cast<int>(StreamNorm::kUnknown);
    if (best == static_cast<int>(StreamNorm::kNone) && votes[unknown] > 0) best = unknown;
    return static_cast<StreamNorm>(best);
  }

  // Whether a norm (or, failing that, an unidentified normalization) reads `tensor` through
  // layout ops and activations, before any layer.
  void ReadBy(const std::string& tensor, Passed* read) const {
    std::deque<std::pair<std::string, int>> todo = {{tensor, 0}};
    while (!todo.empty()) {
      auto [t, hops] = todo.front();
      todo.pop_front();
      for (int c : index_.Consumers(t)) {
        if (role_[c] == NodeRole::kNorm || in_norm_[c]) {
          read->norm = true;
          return;
        }
        if (!read->unknown) read->unknown = Unidentified(c);
        const auto& node = index_.node(c);
        const bool unary = node.input_size() == 1 || SkipPassesThrough(node.op_type());
        if (hops < 4 && role_[c] == NodeRole::kOther && unary && node.output_size() > 0) {
          todo.push_back({node.output(0), hops + 1});
        }
      }
    }
  }

  // Weight layers after a stream's last join, off every branch, that no other weight layer
  // follows.
  void FindHeads(Structure* s) const {
    std::vector<char> after(n_, 0);
    for (const Stream& stream : s->streams) {
      auto d = Descendants(s->joins[stream.joins.back()].output);
      for (int v = 0; v < n_; ++v) after[v] |= d[v];
    }
    for (int v : order_) {
      if (role_[v] != NodeRole::kWeight || !after[v] || s->places.count(v)) continue;
      auto d = Descendants(index_.node(v).output(0));
      bool followed = false;
      for (int u = 0; u < n_ && !followed; ++u) followed = d[u] && role_[u] == NodeRole::kWeight;
      if (!followed) s->heads.push_back(v);
    }
  }

  const GraphIndex& index_;
  const std::vector<int>& order_;
  const int n_;
  std::vector<NodeRole> role_;
  std::vector<char> in_norm_;                          // a node of a written-out norm
  std::unordered_map<int, std::string> unidentified_;  // node -> what could not be identified
  std::unordered_map<int, int> data_input_;
  std::unordered_set<int> embedding_;
  std::map<std::pair<int, int>, BranchPosition> positions_;  // (join, node) -> position
  std::vector<size_t> branch_sizes_;
  size_t joins_seen_ = 0;
};

}  // namespace

Structure FindStructure(const GraphIndex& index, const std::vector<Layer>& layers,
                        const std::vector<int>& order, const Normalizations* norms) {
  if (norms) return Analyzer(index, layers, order, *norms).Run();
  return Analyzer(index, layers, order, FindNormalizations(index)).Run();
}

}  // namespace reinit
