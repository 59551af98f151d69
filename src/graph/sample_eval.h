// Sample evaluation: what a small subgraph computes, found by running it on chosen values.
//
// Exporters spell an activation or a normalization in many ops (tf2onnx's hard-swish as
// x·Clip(x + 3, 0, 6)/6, TensorFlow's LayerNorm as x·s + (β − mean·s)); rather than match each
// spelling, a caller evaluates the ops from the input on samples and compares the result with
// the definitions (activation.cc, normalization.cc). A tensor's samples are a rows × cols table
// of doubles, each row an independent sample: a point for an activation (one column), a row of
// channels for a normalization. A value of one column is one value per row, broadcast along the
// row (a row's statistic, keepdims); a value of one row is the same for every row (a constant:
// scalar, or one value per channel). Elementwise ops broadcast so; a reduction over the last
// axis makes a row one value. Everything is computed in double: a Cast changes no value.
#pragma once

#include <onnx/onnx_pb.h>

#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace reinit {

struct Samples {
  int rows = 1;
  int cols = 1;
  std::vector<double> v;  // row-major, rows · cols values
  // A reduction without keepdims: the reduced axis is gone, so the value meets a full row only
  // after an Unsqueeze puts it back.
  bool squeezed = false;

  static Samples Filled(int rows, int cols, double value);
  double at(int r, int c) const { return v[(rows == 1 ? 0 : r) * cols + (cols == 1 ? 0 : c)]; }
};

// How an evaluation reads what it does not compute.
struct SampleSources {
  // A constant input's samples (a scalar; or one row of one value per channel), nullopt when
  // it cannot be given: the node is then not evaluated.
  std::function<std::optional<Samples>(const std::string& tensor)> constant;
  // Whether a reduction node reduces the last axis of its data input, and only that one.
  std::function<bool(const onnx::NodeProto& node)> reduces_last_axis;
};

// Whether EvaluateNode handles the op; and whether the op is a reduction (ReduceMean, ...).
bool IsSampleOp(std::string_view op);
bool IsSampleReduction(std::string_view op);

// The node's first output from its inputs' samples: those in `known`, else the constants
// `sources` gives (an absent optional input is 0). Reductions and Unsqueeze/Squeeze read only
// their data input. nullopt when the node cannot be evaluated: an op not handled, an input
// neither known nor given, shapes that do not broadcast, a reduction over another axis.
std::optional<Samples> EvaluateNode(const onnx::NodeProto& node,
                                    const std::unordered_map<std::string, Samples>& known,
                                    const SampleSources& sources);

}  // namespace reinit
