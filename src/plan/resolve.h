// Resolving a scheme for one tensor or block: from the scheme's name, the fans, the gain and
// the plan's std, range and mode to the gain, std and bound the apply stage draws with.
// Used by the per-layer planning, the recurrent blocks and ReadPlan's edits.
#pragma once

#include <string>

#include "plan.pb.h"
#include "plan/framework_defaults.h"
#include "status.h"

namespace reinit {

// The fans a scheme is resolved with when the tensor carries none of its own: its layer's, or
// a block's.
struct DrawFans {
  double fan_in = 0;
  double fan_out = 0;
};
DrawFans FansOf(const proto::Layer& layer);

// Fills gain/std/bound of `init` for the concrete scheme `name`. The tensor's own fans, when
// set, win over `fans`; `plan` gives --std, --range and the He mode.
Status Resolve(const std::string& name, DrawFans fans, double gain, const proto::Plan& plan,
               proto::TensorInit* init);

// Draws `t` as a framework default says: its scheme, its own fans, gain 1.
Status DrawAs(const FrameworkDraw& d, DrawFans fans, const proto::Plan& plan, proto::TensorInit* t);

}  // namespace reinit
