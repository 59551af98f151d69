// Normalizations written out: a LayerNorm, RMSNorm or L2 normalization that an exporter spelled
// in reductions and elementwise ops, found by what it computes.
//
// From each reduction of a tensor x (ReduceMean, ReduceSum, ReduceSumSquare, ReduceL2, ...),
// the ops that follow from x alone — elementwise ops with scalar or per-channel constants,
// reductions over the last axis, Casts — are evaluated on sample rows of x (graph/sample_eval.h)
// with each per-channel multiplier set to 1 and each per-channel addend to 0. A tensor whose rows
// come out as a normalization's definition (the table in normalization.cc: (x − mean)/√(var + ε),
// x/√(mean(x²) + ε), ...) ends the norm; the multiplier is its γ and the addend its β, checked by
// evaluating again with other values in their place (the output must become γ·n + β). So
// torch ≤ 1.9's x − mean computed twice, a Cast between Sub and Pow, TensorFlow's
// x·s + (β − mean·s) with s = γ·rsqrt(var + ε) and T5's RMSNorm in float32 all read alike.
// A reduction of x whose statistic multiplies or divides x and that could not be identified so
// (a reduction over another axis, an op or a constant the evaluation does not take, a γ or β it
// cannot tell apart) is listed as unidentified: whether it normalizes cannot be said.
#pragma once

#include <string>
#include <unordered_map>
#include <vector>

#include "graph/graph_index.h"

namespace reinit {

enum class NormKind { kLayerNorm, kRmsNorm, kL2Norm };
// The ONNX op that computes it: LayerNormalization, RMSNormalization, LpNormalization.
const char* NormKindName(NormKind kind);

struct NormSite {
  NormKind kind = NormKind::kLayerNorm;
  std::string input;       // x
  std::string output;      // the normalized tensor, after γ and β
  std::vector<int> nodes;  // the ops from x to the output, in node order
  // The node that stands for the norm: the Mul by γ when every path from x to the output passes
  // it (n·γ + β, torch's spelling), else the node producing the output (TensorFlow's).
  int anchor = -1;
  std::vector<int> after_anchor;  // the nodes from the anchor to the output (the Add of β)
  std::string gamma, beta;        // the per-channel scale and shift as the nodes read them, or ""
};

struct UnidentifiedNorm {
  int reduction = -1;  // the reduction of x
  int combine = -1;    // the Mul or Div of x (or of x − mean) by what follows from it
  std::string why;     // what kept it from being identified
};

struct Normalizations {
  std::vector<NormSite> sites;  // in the order of their first reduction
  std::vector<UnidentifiedNorm> unidentified;
};

using TensorShapes = std::unordered_map<std::string, std::vector<int64_t>>;

// `shapes`: dims (-1 where unknown) of the tensors whose shapes are known (io/model_io's
// StaticShapes), which give a positive reduction axis its meaning and x its channel count; null:
// the shapes the graph declares.
Normalizations FindNormalizations(const GraphIndex& index, const TensorShapes* shapes = nullptr);

}  // namespace reinit
