// Activation detection: which nonlinearity a layer's output meets next.
//
// From the layer's output the walk follows consumers through ops that do not change which
// nonlinearity comes next (bias and residual Add, normalization, reshapes, pooling, Concat,
// Split, Slice, Pad, Resize, ...) to the first verdict on every path:
//  - an activation op (Relu, LeakyRelu, Tanh, Gelu, Clip(0, 6) as relu6, ...);
//  - an exporter's decomposition of one, recognised at the tensor that feeds it:
//    x·Sigmoid(x) (silu), x·HardSigmoid(x) (hard_swish), x·Tanh(Softplus(x)) (mish),
//    0.5·x·(1 + Erf(x/√2)) (gelu), 0.5·x·(1 + Tanh(√(2/π)(x + 0.044715x³))) (gelu_tanh);
//  - linear: another layer, Softmax/LogSoftmax, an op the walk does not know (the path says
//    so), or a graph output when no path reaches anything else.
// Ops that only compute statistics of the tensor (ReduceMean, Pow, Sqrt, Shape, ...) end a
// path with no verdict. Each kind of op is one row in a table in activation.cc.
#pragma once

#include <string>
#include <unordered_set>
#include <vector>

#include "graph/graph_index.h"
#include "plan.pb.h"

namespace reinit {

// `layer_nodes`: the nodes that are weight layers (reaching one as data means linear).
// `prefix`: nodes already folded into the layer (its bias Add), shown first in the path.
proto::Activation DetectActivation(const GraphIndex& index,
                                   const std::unordered_set<int>& layer_nodes,
                                   const std::string& output, const std::vector<int>& prefix);

}  // namespace reinit
