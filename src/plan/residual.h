// Depth rules for residual streams (--residual): what each stream's branches get on top of the
// per-layer scheme, so that L branches adding to one stream do not add up their variance.
//
// With x_{l+1} = x_l + F_l(x_l) and independent branches, Var(x_L) = Var(x_0) + Σ Var(F_l).
//   rule     what it does                                            when (--residual auto)
//   none     nothing: every layer as if it stood alone                in_branch, post_norm,
//                                                                     unknown (with a warning)
//   fixup    Zhang, Dauphin & Ma 2019: the last weight layer of each  none (no normalization)
//            branch and the classifier 0; the branch's other weight
//            layers × L^(−1/(2m−2)) (m layers per branch): the
//            stream starts as the identity and each branch's update
//            is O(1/L) in the first steps of training
//   scaled   the last layer of each branch × s0/√L (GPT-2's          pre_norm
//            1/√(2·n_layer), n_layer = L/2 blocks); s0 = the
//            stream's own scale at its start (the std of the
//            embeddings it starts from, else 1) when the branch
//            normalizes its input and the scheme keeps unit
//            variance: then each branch adds s0²·c/L and the stream
//            ends within √(1+c) of its start whatever L is; where a
//            norm follows the branch's last weight layer, that
//            norm's γ takes the factor instead
//   zero     each branch's output 0: the γ of its last norm (Goyal
//            2017, torchvision's zero_init_residual), or its last
//            weight layer when no norm follows it (SkipInit)
//   deepnet  Wang 2022: β = (8N)^(−1/4), N = L/2, on the value,      (the deepnet scheme)
//            output and feed-forward projections; DeepNet's α up-
//            weighting of the skip is a change to the graph that
//            reinit does not make (a warning when the skips lack it)
// --zero-init-residual adds the zero rule's γ = 0 to every branch with a last norm.
#pragma once

#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "graph/graph_index.h"
#include "graph/structure.h"
#include "plan.pb.h"
#include "status.h"

namespace reinit {

// The --residual values, and the rules a stream can get.
const std::vector<std::string_view>& ResidualNames();
// A --residual value ("" for the scheme's own), and one `scheme` takes: a scheme that refuses
// residual rules (lsuv) takes only none.
Status CheckResidual(std::string_view residual, std::string_view scheme = "");

// The rule `requested` (a --residual value, or "" for the scheme's own) gives a stream of this
// normalization under `scheme` (none under a scheme that refuses residual rules).
std::string_view ResidualRuleFor(std::string_view requested, std::string_view scheme,
                                 StreamNorm norm);

struct ResidualInputs {
  const GraphIndex* index = nullptr;
  const Structure* structure = nullptr;
  std::string prefix;                               // of layer and node names (subgraphs)
  std::unordered_map<int, proto::Layer*> layer_of;  // layer node -> its planned entry
  std::string requested;                            // --residual ("" for the scheme's own)
  std::string scheme;                               // --scheme
  bool zero_init_residual = false;
};

// Records the streams in `plan` and each planned layer's place, and applies each stream's rule
// to the planned tensors (scale, zero, γ), with the reason appended to each layer's.
void ApplyResidual(const ResidualInputs& in, proto::Plan* plan);

}  // namespace reinit
