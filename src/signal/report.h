// Report: the Plan and the scheme registry as text for a terminal. The library only builds the
// strings; the tool prints them.
#pragma once

#include <string>

#include "plan.pb.h"
#include "signal/propagate.h"

namespace reinit {

// One row per layer (name, op, weight shape, fans, activation, scheme, gain, std or bound,
// bias), skipped layers listed after with their reasons. `verbose` adds, under each layer, why
// the scheme was chosen and the path that decided the activation.
std::string FormatPlan(const proto::Plan& plan, bool verbose);

// Every scheme with its formula, and the gain table.
std::string FormatSchemes();

// inspect --propagate: one row per layer (mean and std before and after its activation), the
// inputs fed, and the ratio of the last layer's std to the first's.
std::string FormatSignal(const Signal& signal, uint64_t seed);

}  // namespace reinit
