#include "init/schemes/auto_policy.h"

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

bool IsRecipe(std::string_view scheme) {
  for (auto r : {"fixup", "gpt2", "bert", "bert-truncated", "deepnet"}) {
    if (scheme == r) return true;
  }
  return false;
}

std::optional<AutoChoice> ChooseRecipe(std::string_view scheme, std::string_view activation,
                                       LayerKind kind, int depth) {
  if (!IsRecipe(scheme)) return std::nullopt;
  const bool weight = kind == LayerKind::kDense || kind == LayerKind::kConv;
  if (scheme == "gpt2" || scheme == "bert" || scheme == "bert-truncated") {
    if (weight || kind == LayerKind::kEmbedding) {
      const char* paper = scheme == "gpt2" ? "GPT-2, Radford 2019" : "BERT, Devlin 2019";
      if (scheme == "bert-truncated") {
        return AutoChoice{"truncated-normal",
                          "bert-truncated: N(0, std^2) cut at +-2 std (BERT, Devlin 2019)"};
      }
      return AutoChoice{"normal", std::string(scheme) + ": N(0, std^2) (" + paper + ")"};
    }
  } else if (weight && scheme == "fixup") {
    return AutoChoice{"he-normal", "fixup: He for the layer (Zhang 2019)"};
  } else if (weight) {
    return AutoChoice{"xavier-normal", "deepnet: xavier-normal, gain 1 (Wang 2022)", true};
  }
  AutoChoice fallback = ChooseAuto(activation, kind, depth);
  fallback.reason = std::string(scheme) + " leaves this layer to auto: " + fallback.reason;
  return fallback;
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
