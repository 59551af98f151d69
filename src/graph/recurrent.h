// Recurrent layers (LSTM, GRU, RNN): their gate blocks, as ONNX lays them out.
//
//   LSTM  W [D, 4H, I], R [D, 4H, H], B [D, 8H] (input biases then recurrent), P [D, 3H];
//         gates in the order i, o, f, c (PyTorch's is i, f, g, o); activations f, g, h per
//         direction: i, o, f use f (Sigmoid), c uses g (Tanh).
//   GRU   W [D, 3H, I], R [D, 3H, H], B [D, 6H]; gates z, r, h; z, r use f (Sigmoid), h uses
//         g (Tanh). linear_before_reset changes where R's h-block bias enters, not how any
//         block is drawn.
//   RNN   W [D, H, I], R [D, H, H], B [D, 2H]; one gate, activation f (Tanh).
// D is 2 for direction = bidirectional (forward, then reverse), else 1. Every (direction, gate)
// block is contiguous in W, R and B, so it can be drawn on its own.
#pragma once

#include <onnx/onnx_pb.h>

#include <string>
#include <string_view>
#include <vector>

#include "graph/layers.h"
#include "status.h"

namespace reinit {

struct Gate {
  std::string name;        // "i", "o", "f", "c", "z", "r", "h"
  std::string direction;   // "forward" or "reverse"
  std::string activation;  // the gate's activation kind (gains.h names)
  int64_t index;           // gate position within its direction
};

// The (direction, gate) blocks of a recurrent node whose W has `directions` x gates·H rows, in
// storage order; the activations come from the node's `activations` attribute or the
// defaults. Errors for an unknown activation or a direction count that disagrees with the
// direction attribute.
StatusOr<std::vector<Gate>> RecurrentGates(const onnx::NodeProto& node, WeightLayout layout,
                                           int64_t directions);

// The LSTM forget gate's index within a direction (2: i, o, f, c).
inline constexpr int64_t kLstmForgetGate = 2;

}  // namespace reinit
