#include "plan/auto_policy.h"

#include <vector>

namespace reinit {

namespace {

struct Row {
  std::vector<std::string_view> activations;
  std::string_view scheme;
  std::string_view why;
};

// In order; the first row naming the activation wins. The deep-tanh row is handled before it.
const std::vector<Row>& Rows() {
  static const std::vector<Row> kRows = {
      {{"relu", "leaky_relu", "prelu", "relu6", "thresholded_relu"},
       "he-normal",
       "He 2015: variance 2/fan_in keeps the signal through ReLU units"},
      {{"gelu", "gelu_tanh", "silu", "mish", "hard_swish", "elu", "celu", "softplus"},
       "he-normal",
       "ReLU-like unit: He with its second-moment gain"},
      {{"selu"},
       "lecun-normal",
       "Klambauer 2017: self-normalizing SELU nets need variance 1/fan_in"},
      {{"tanh", "sigmoid", "hard_sigmoid", "softsign"},
       "xavier-uniform",
       "Glorot 2010: saturating unit, variance 2/(fan_in+fan_out)"},
      {{"linear"}, "xavier-uniform", "Glorot 2010: linear output, gain 1"},
  };
  return kRows;
}

}  // namespace

AutoChoice ChooseAuto(std::string_view activation, LayerKind kind, int depth) {
  if (kind == LayerKind::kEmbedding) {
    return {"lecun-normal",
            "auto: lecun-normal for an embedding table (std 1/sqrt(D): rows of unit expected "
            "norm, as Flax's Embed; LeCun for a tied output projection)"};
  }
  if (activation == "tanh" && kind == LayerKind::kDense && depth >= kDeepChain) {
    return {"orthogonal", "auto: orthogonal for tanh in a chain of " + std::to_string(depth) +
                              " layers (Saxe 2013: deep tanh stacks stay isometric)"};
  }
  for (const auto& row : Rows()) {
    for (auto a : row.activations) {
      if (a == activation) {
        return {row.scheme, "auto: " + std::string(row.scheme) + " for " + std::string(activation) +
                                " (" + std::string(row.why) + ")"};
      }
    }
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
