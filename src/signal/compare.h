// The scheme comparison behind --report: the same random inputs propagated through the model
// re-initialized under each reference scheme (zero, naive normal, Xavier, He, LeCun,
// orthogonal) and under the scheme the run uses, layer by layer; and the chart of it, per-layer
// output std against depth on a log scale, as a self-contained SVG.
#pragma once

#include <onnx/onnx_pb.h>

#include <string>
#include <vector>

#include "plan/plan.h"
#include "signal/propagate.h"
#include "status.h"

namespace reinit {

struct SchemeSignal {
  std::string scheme;   // a registry name, or "auto"
  bool chosen = false;  // the scheme of the run
  Signal signal;
};

struct Comparison {
  std::vector<SchemeSignal> schemes;  // the reference schemes, then the chosen one
};

// The reference schemes, in the order they are drawn.
const std::vector<std::string>& ComparedSchemes();

// `model` holds its weights in memory. Each scheme is planned with `chosen`'s options (its
// --layer overrides only for the chosen scheme itself), applied to a copy, and run on the same
// inputs (RandomInputs with `options`). The chosen scheme is listed once, marked, even when it
// is one of the reference schemes.
StatusOr<Comparison> CompareSchemes(const onnx::ModelProto& model, const PlanOptions& chosen,
                                    const PropagateOptions& options);

// The terminal's version of the chart: one row per layer, one column per scheme (std after the
// layer's activation).
std::string FormatComparison(const Comparison& comparison);

// The chart: x = the layers in the order they run, y = std after activation, log scale, one
// line per scheme; zero stds are drawn on the bottom edge and said to be dead. No scripts, no
// external references.
std::string ComparisonSvg(const Comparison& comparison, const std::string& title);

}  // namespace reinit
