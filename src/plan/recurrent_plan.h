// Planning of one recurrent layer (LSTM, GRU, RNN): its W, R and B drawn block by block —
// per direction and gate under auto and the named schemes, as their framework does under the
// framework defaults — with the LSTM forget gate's bias (--forget-bias) and peepholes.
#pragma once

#include "graph/layers.h"
#include "plan.pb.h"
#include "plan/layer_plan.h"
#include "status.h"

namespace reinit {

// LSTM/GRU/RNN. Under auto and the named schemes every (direction, gate) block of W and R is
// drawn on its own — input blocks with fan_in = input size and the gate's gain, recurrent
// blocks orthogonal under auto — biases zero but the LSTM forget gate's input bias
// (--forget-bias), peepholes zero. The framework defaults draw as their framework does.
Status PlanRecurrent(const PlanContext& ctx, const Layer& found, proto::Layer* layer);

}  // namespace reinit
