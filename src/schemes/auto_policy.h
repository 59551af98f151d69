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
//
// Biases are set to zero.
#pragma once

#include <string>
#include <string_view>

namespace reinit {

inline constexpr int kDeepChain = 8;

struct AutoChoice {
  std::string_view scheme;
  std::string reason;
};

AutoChoice ChooseAuto(std::string_view activation, bool dense, int depth);

}  // namespace reinit
