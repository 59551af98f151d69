// The `auto` policy: which scheme a layer gets from its activation, its kind and its depth.
//
//   activation                                   scheme            why
//   relu, leaky_relu, prelu, relu6,              he-normal         He 2015: var 2/fan_in keeps
//     thresholded_relu                                               the signal through ReLUs
//   gelu, gelu_tanh, silu, mish, hard_swish,     he-normal         ReLU-like units; the gain is
//     elu, celu, softplus                                            their second-moment gain
//   selu                                         lecun-normal      Klambauer 2017: self-
//                                                                    normalization needs 1/fan_in
//   tanh on a dense layer (Gemm/MatMul) in a     orthogonal        Saxe 2013, Pennington 2017:
//     chain of >= kDeepChain layers                                  orthogonal keeps deep tanh
//                                                                    stacks isometric
//   tanh, sigmoid, hard_sigmoid, softsign        xavier-uniform    Glorot 2010
//   linear (head, before Softmax or a layer)     xavier-uniform    Glorot 2010, gain 1
//   embedding table [V, D]                       lecun-normal      std 1/√D: rows of unit
//                                                                    expected norm (Flax's Embed);
//                                                                    as a tied output projection
//                                                                    it is LeCun for fan_in D
//   recurrent: input-to-hidden gate blocks       xavier-uniform    Glorot, each gate's gain
//              hidden-to-hidden gate blocks      orthogonal        Saxe 2013: norm-preserving
//                                                                    through time (gain 1)
//
// The per-activation rows are data in graph/activation_kinds.cc (auto_scheme, auto_why).
// Biases are set to zero; normalization layers are reset (scale 1, shift 0, mean 0, var 1).
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "graph/layers.h"

namespace reinit {

inline constexpr int kDeepChain = 8;

struct AutoChoice {
  std::string_view scheme;
  std::string reason;
  bool unit_gain = false;  // draw with gain 1 instead of the activation's
};

AutoChoice ChooseAuto(std::string_view activation, LayerKind kind, int depth);

// The recipes' per-layer draws (fixup, gpt2, bert, bert-truncated, deepnet, lsuv) are their
// rows in plan/registry.cc (ChooseForLayer); layers a recipe does not name get auto's
// choice.

// Recurrent layers: the scheme of an input-to-hidden (recurrence = false) or hidden-to-hidden
// gate block.
AutoChoice ChooseAutoRecurrent(bool recurrence);

}  // namespace reinit
