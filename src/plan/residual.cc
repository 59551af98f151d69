#include "plan/residual.h"

#include <cmath>
#include <cstdio>
#include <deque>
#include <unordered_set>

#include "plan/registry.h"

namespace reinit {

const std::vector<std::string_view>& ResidualNames() {
  static const std::vector<std::string_view> kNames = {"auto", "none", "scaled", "fixup", "zero"};
  return kNames;
}

Status CheckResidual(std::string_view residual, std::string_view scheme) {
  if (residual.empty()) return Status::Ok();
  std::string list;
  for (auto n : ResidualNames()) {
    if (n == residual) {
      const Scheme* s = SchemeNamed(scheme);
      if (!s || s->refuses_residual.empty() || residual == "none") return Status::Ok();
      return UsageError("--scheme " + std::string(scheme) + " " + std::string(s->refuses_residual) +
                        "; it takes no --residual rule (only none)");
    }
    list += (list.empty() ? "" : ", ") + std::string(n);
  }
  return UsageError("unknown --residual '" + std::string(residual) + "'; valid: " + list);
}

std::string_view ResidualRuleFor(std::string_view requested, std::string_view scheme,
                                 StreamNorm norm) {
  const Scheme* s = SchemeNamed(scheme);
  if (s && !s->refuses_residual.empty()) return "none";
  if (requested.empty()) requested = s ? s->residual : "none";
  if (requested != "auto") return requested;
  if (norm == StreamNorm::kNone) return "fixup";
  if (norm == StreamNorm::kPreNorm) return "scaled";
  return "none";  // in_branch, post_norm; unknown: nothing is known to need a rule
}

namespace {

std::string Num(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.4g", v);
  return buf;
}

void AddReason(proto::Layer* l, const std::string& why) {
  l->set_reason(l->reason().empty() ? why : l->reason() + "; " + why);
}

bool Drawn(const proto::TensorInit& t) {
  return t.scheme() != "keep" && t.scheme() != "per-block" && !t.scheme().empty();
}

void Scale(proto::Layer* l, double f, const std::string& why) {
  proto::TensorInit* t = l->mutable_weight();
  if (!Drawn(*t) || t->scheme() == "zero") return;
  t->set_scale((t->scale() > 0 ? t->scale() : 1) * f);
  t->set_std(t->std() * f);
  t->set_bound(t->bound() * f);
  AddReason(l, why + ": x" + Num(f));
}

void Zero(proto::Layer* l, const std::string& why) {
  proto::TensorInit* t = l->mutable_weight();
  if (!Drawn(*t)) return;
  t->set_scheme("zero");
  t->set_std(0);
  t->set_bound(0);
  t->clear_scale();
  AddReason(l, why + ": 0");
}

// A norm's γ: 0, or the constant `value`.
void Gamma(proto::Layer* l, double value, const std::string& why) {
  proto::TensorInit* t = l->mutable_weight();
  if (!Drawn(*t)) return;
  t->set_scheme(value == 0 ? "zero" : "constant");
  t->set_value(value);
  AddReason(l, why + ": scale " + Num(value));
}

// The std of the values a planned tensor will hold (0 for zero and orthogonal draws).
double DrawnStd(const proto::TensorInit& t) {
  auto scheme = FindScheme(t.scheme());
  if (!scheme.ok()) return 0;
  switch ((*scheme)->distribution) {
    case Distribution::kNormal:
      return t.std();
    case Distribution::kTruncatedNormal:
      return t.std() * kTruncatedStdAt2;
    case Distribution::kUniform:
      return t.bound() / std::sqrt(3.0);
    default:
      return 0;
  }
}

// Schemes whose per-layer draws keep a unit-variance input at unit variance (so a branch that
// normalizes its input puts out O(1) whatever the stream's scale).
bool KeepsVariance(std::string_view scheme) {
  const Scheme* s = SchemeNamed(scheme);
  return !s || s->keeps_variance;
}

class Applier {
 public:
  Applier(const ResidualInputs& in, proto::Plan* plan) : in_(in), s_(*in.structure), plan_(plan) {}

  void Run() {
    bool fixup = false;
    for (size_t k = 0; k < s_.streams.size(); ++k) {
      const Stream& st = s_.streams[k];
      proto::Stream* ps = plan_->add_streams();
      ps->set_name(in_.prefix + "stream" + std::to_string(k));
      ps->set_normalization(StreamNormName(st.norm));
      ps->set_branches(static_cast<int>(st.joins.size()));
      ps->set_input(st.input);
      ps->set_input_std(InputStd(st));
      ps->set_rule(std::string(ResidualRuleFor(in_.requested, in_.scheme, st.norm)));
      for (int j : st.joins) Describe(s_.joins[j], ps->add_joins());
      fixup |= ps->rule() == "fixup";
      if (st.norm == StreamNorm::kUnknown) WarnUnknown(*ps, st);
    }
    RecordPlaces();
    for (size_t k = 0; k < s_.streams.size(); ++k) {
      const proto::Stream& ps = plan_->streams(plan_->streams_size() - s_.streams.size() + k);
      for (int j : s_.streams[k].joins) ApplyToBranch(ps, s_.streams[k], j);
    }
    if (!fixup) return;
    for (int v : s_.heads) {
      if (proto::Layer* l = Planned(v)) Zero(l, "fixup: the classifier starts at 0 (Zhang 2019)");
    }
  }

 private:
  // A stream whose normalization could not be established gets no depth rule under auto: a
  // rule for a norm-free stream (Fixup) would zero what a normalized one needs.
  void WarnUnknown(const proto::Stream& ps, const Stream& st) {
    plan_->add_warnings(ps.name() + ": normalization could not be established (" + st.unknown +
                        "); " +
                        (ps.rule() == "none" ? std::string("no depth rule applied")
                                             : "--residual " + ps.rule() + " applied as asked"));
  }

  proto::Layer* Planned(int node) const {
    auto it = in_.layer_of.find(node);
    if (it == in_.layer_of.end() || !it->second->skipped().empty()) return nullptr;
    return it->second;
  }

  std::string Name(int node) const {
    auto it = in_.layer_of.find(node);
    return it != in_.layer_of.end() ? it->second->name() : in_.prefix + in_.index->NodeName(node);
  }

  double InputStd(const Stream& st) const {
    double var = 0;
    for (int v : st.embeddings) {
      if (const proto::Layer* l = Planned(v)) var += std::pow(DrawnStd(l->weight()), 2);
    }
    return var > 0 ? std::sqrt(var) : 1;
  }

  void Describe(const Join& j, proto::Join* pj) const {
    pj->set_node(in_.prefix + in_.index->NodeName(j.node));
    pj->set_output(j.output);
    pj->set_skip(j.projected ? "projected" : "direct");
    for (int v : j.projection) pj->add_projection(Name(v));
    for (int v : j.layers) pj->add_layers(Name(v));
    pj->set_depth(j.depth);
    pj->set_skip_scale(j.skip_scale);
  }

  void RecordPlaces() {
    for (auto& [node, layer] : in_.layer_of) {
      proto::Residual* r = layer->mutable_residual();
      auto it = s_.places.find(node);
      if (it == s_.places.end()) {
        r->set_position("none");
        continue;
      }
      const Join& j = s_.joins[it->second.join];
      r->set_stream(in_.prefix + "stream" + std::to_string(j.stream));
      r->set_branch(j.branch);
      r->set_position(BranchPositionName(it->second.position));
      r->set_layers_in_branch(j.depth);
      r->set_branches(static_cast<int>(s_.streams[j.stream].joins.size()));
    }
  }

  // Whether a layer's output reaches a Softmax before any other weight layer: attention's
  // query and key projections (DeepNet leaves them at gain 1).
  bool FeedsSoftmax(int node) const {
    std::deque<int> todo = {node};
    std::unordered_set<int> seen;
    while (!todo.empty() && seen.size() < 256) {
      const int v = todo.front();
      todo.pop_front();
      if (!seen.insert(v).second) continue;
      if (in_.index->node(v).op_type() == "Softmax") return true;
      if (v != node && in_.layer_of.count(v) && in_.layer_of.at(v)->kind() != "norm") continue;
      for (const auto& out : in_.index->node(v).output()) {
        for (int c : in_.index->Consumers(out)) todo.push_back(c);
      }
    }
    return false;
  }

  void ApplyToBranch(const proto::Stream& ps, const Stream& st, int j) {
    const Join& join = s_.joins[j];
    const double L = static_cast<double>(st.joins.size());
    std::vector<proto::Layer*> last, others;
    std::vector<int> other_nodes, last_nodes;
    proto::Layer* last_norm = nullptr;
    for (int v : join.layers) {
      auto place = s_.places.find(v);
      if (place == s_.places.end() || place->second.join != j) continue;  // an inner stream's
      proto::Layer* l = Planned(v);
      if (!l) continue;
      const BranchPosition pos = place->second.position;
      if (l->kind() == "norm") {
        if (pos == BranchPosition::kLast) last_norm = l;
        continue;
      }
      const bool is_last = pos == BranchPosition::kLast || pos == BranchPosition::kOnly;
      (is_last ? last : others).push_back(l);
      (is_last ? last_nodes : other_nodes).push_back(v);
    }
    const std::string where = "branch " + std::to_string(join.branch + 1) + "/" +
                              std::to_string(st.joins.size()) + " of " + ps.name();
    const std::string& rule = ps.rule();
    if (rule == "fixup") {
      for (proto::Layer* l : last) Zero(l, "fixup (Zhang 2019): last layer of " + where);
      if (join.depth >= 2) {
        const double f = std::pow(L, -1.0 / (2.0 * join.depth - 2.0));
        for (proto::Layer* l : others) {
          Scale(l, f,
                "fixup: L^(-1/(2m-2)), L=" + Num(L) + ", m=" + std::to_string(join.depth) + ", " +
                    where);
        }
      }
    } else if (rule == "scaled") {
      const bool normalized = st.norm == StreamNorm::kPreNorm || st.norm == StreamNorm::kInBranch;
      const double s0 = normalized && KeepsVariance(in_.scheme) ? ps.input_std() : 1;
      const double f = s0 / std::sqrt(L);
      const std::string why = "scaled: " + (s0 != 1 ? "s0/sqrt(L) = " + Num(s0) + "/" : "1/") +
                              "sqrt(" + Num(L) + "), last of " + where;
      if (last_norm) {
        Gamma(last_norm, f, why);
      } else {
        for (proto::Layer* l : last) Scale(l, f, why);
      }
    } else if (rule == "zero") {
      if (last_norm) {
        Gamma(last_norm, 0, "zero: last norm of " + where);
      } else {
        for (proto::Layer* l : last) Zero(l, "zero: last layer of " + where);
      }
    } else if (rule == "deepnet") {
      ApplyDeepNet(ps, st, join, last, last_nodes, others, other_nodes, where);
    }
    if (in_.zero_init_residual && last_norm && rule != "zero") {
      Gamma(last_norm, 0, "--zero-init-residual (Goyal 2017): last norm of " + where);
    }
  }

  // DeepNet (Wang 2022): β = (8N)^(-1/4) on the value, output and feed-forward projections,
  // N = L/2 blocks; α = (2N)^(1/4) on the skip is the graph's, checked here.
  void ApplyDeepNet(const proto::Stream& ps, const Stream& st, const Join& join,
                    const std::vector<proto::Layer*>& last, const std::vector<int>& last_nodes,
                    const std::vector<proto::Layer*>& others, const std::vector<int>& other_nodes,
                    const std::string& where) {
    const double n = std::max(1.0, static_cast<double>(st.joins.size()) / 2);
    const double beta = std::pow(8 * n, -0.25), alpha = std::pow(2 * n, 0.25);
    const std::string why = "deepnet: beta = (8N)^(-1/4), N=" + Num(n) + ", " + where;
    for (size_t k = 0; k < last.size(); ++k) Scale(last[k], beta, why);
    for (size_t k = 0; k < others.size(); ++k) {
      if (!FeedsSoftmax(other_nodes[k])) Scale(others[k], beta, why);
    }
    (void)last_nodes;
    if (std::abs(join.skip_scale / alpha - 1) > 0.01 && !warned_.count(ps.name())) {
      warned_.insert(ps.name());
      plan_->add_warnings("deepnet: the skips of " + ps.name() + " are multiplied by " +
                          Num(join.skip_scale) +
                          ", not DeepNet's alpha = (2N)^(1/4) = " + Num(alpha) +
                          "; alpha is a change to the graph, which reinit does not make: only "
                          "beta is applied");
    }
  }

  const ResidualInputs& in_;
  const Structure& s_;
  proto::Plan* plan_;
  std::unordered_set<std::string> warned_;
};

}  // namespace

void ApplyResidual(const ResidualInputs& in, proto::Plan* plan) { Applier(in, plan).Run(); }

}  // namespace reinit
