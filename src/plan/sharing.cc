#include "plan/sharing.h"

#include <cstdio>
#include <string>

namespace reinit {

namespace {

// "std 0.125", "bound 0.2", "gain 1.4" or "= 1": a tensor's drawing parameter, for notes.
std::string ParameterText(const proto::TensorInit& t) {
  char buf[64];
  if (t.scheme() == "orthogonal") {
    std::snprintf(buf, sizeof buf, "gain %.4g", t.gain());
  } else if (t.scheme() == "constant") {
    std::snprintf(buf, sizeof buf, "= %.4g", t.value());
  } else if (t.std() > 0) {
    std::snprintf(buf, sizeof buf, "std %.4g", t.std());
  } else if (t.bound() > 0) {
    std::snprintf(buf, sizeof buf, "bound %.4g", t.bound());
  } else {
    buf[0] = 0;
  }
  return buf;
}

}  // namespace

StatusOr<proto::Layer> PlanShared(const Layer& found, const PlanContext& ctx, proto::Plan* plan) {
  proto::Layer* owner = nullptr;
  for (auto& l : *plan->mutable_layers()) {
    if (l.name() == found.shared_owner) owner = &l;
  }
  Layer alone = found;
  alone.skipped.clear();
  alone.shared_owner.clear();
  google::protobuf::RepeatedPtrField<std::string> aside;  // not the plan's warnings
  PlanContext aside_ctx = ctx;
  aside_ctx.warnings = &aside;
  auto mine = PlanLayer(alone, aside_ctx);
  if (!mine.ok()) return mine.status();
  proto::Layer layer = std::move(mine).value();
  const std::string mine_text = layer.weight().scheme() + " " + ParameterText(layer.weight());
  layer.set_skipped(found.skipped);
  if (owner == nullptr) return layer;
  owner->add_shared_with(found.name);
  const std::string owner_text = owner->weight().scheme() + " " + ParameterText(owner->weight());
  if (mine_text != owner_text) {
    const std::string note = "'" + found.name + "' (" + found.op + ") would get " + mine_text +
                             ", '" + owner->name() + "' (" + owner->op() + ") gets " + owner_text +
                             "; the weight is initialized once, by '" + owner->name() + "'";
    owner->set_shared_note(owner->shared_note().empty() ? note
                                                        : owner->shared_note() + "; " + note);
    layer.set_shared_note(note);
  }
  return layer;
}

void KeepSharedIfSame(proto::TensorInit* t) {
  if (t->copy_of().empty()) return;
  const std::string& s = t->scheme();
  bool random = s != "zero" && s != "constant" && s != "keep";
  if (s == "per-block") {
    random = false;
    for (const auto& b : t->blocks()) {
      random |= b.scheme() != "zero" && b.scheme() != "constant" && b.scheme() != "keep";
    }
  }
  if (random) return;
  t->set_name(t->copy_of());
  t->clear_copy_of();
}

}  // namespace reinit
