// Ties and sharing: a layer whose weight another layer initializes (a tied embedding and
// output projection, a weight reused by several nodes) and tensors an exporter merged because
// their values were equal. A tie is planned once, at the owner; the other layer's entry says
// what it would have been given, and both say so when the two differ.
#pragma once

#include "graph/layers.h"
#include "plan.pb.h"
#include "plan/layer_plan.h"
#include "status.h"

namespace reinit {

// The entry of a layer whose weight `found.shared_owner` initializes: what it would have been
// given, planned aside (its warnings dropped), skipped as shared; the owner's entry in `plan`
// records the sharing, and both carry a note when what they would get differs.
StatusOr<proto::Layer> PlanShared(const Layer& found, const PlanContext& ctx, proto::Plan* plan);

// A tensor merged with an equal-valued one by the exporter needs a copy of its own only when
// it is drawn at random; zero, a constant or kept values may stay merged.
void KeepSharedIfSame(proto::TensorInit* t);

}  // namespace reinit
