#include "plan/auto_policy.h"

#include <vector>

#include "graph/activation_kinds.h"

namespace reinit {

AutoChoice ChooseAuto(std::string_view activation, LayerKind kind, int depth) {
  if (kind == LayerKind::kEmbedding) {
    return {"lecun-normal",
            "auto: lecun-normal for an embedding table (std 1/sqrt(D): rows of unit expected "
            "norm, as Flax's Embed; LeCun for a tied output projection)"};
  }
  const auto known = ActivationKindNamed(activation);
  if (known == ActivationKind::kTanh && kind == LayerKind::kDense && depth >= kDeepChain) {
    return {"orthogonal", "auto: orthogonal for tanh in a chain of " + std::to_string(depth) +
                              " layers (Saxe 2013: deep tanh stacks stay isometric)"};
  }
  if (known) {
    // The activation's row (graph/activation_kinds.cc) holds its scheme and why.
    const ActivationTraits& traits = TraitsOf(*known);
    return {traits.auto_scheme, "auto: " + std::string(traits.auto_scheme) + " for " +
                                    std::string(activation) + " (" + std::string(traits.auto_why) +
                                    ")"};
  }
  return {"xavier-uniform",
          "auto: xavier-uniform for " + std::string(activation) + " (no rule; Glorot 2010)"};
}

AutoChoice ChooseAutoRecurrent(bool recurrence) {
  if (recurrence) {
    return {"orthogonal",
            "auto: orthogonal per gate block for hidden-to-hidden weights (Saxe 2013: "
            "norm-preserving through time)"};
  }
  return {"xavier-uniform",
          "auto: xavier-uniform per gate block for input-to-hidden weights (Glorot 2010, the "
          "gate's gain)"};
}

}  // namespace reinit
