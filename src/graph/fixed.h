// Fixed tensors: weights of a layer that are not learned parameters but signal-processing
// constants an exporter stored as one — an STFT's DFT basis as a Conv weight, a mel filter
// bank as a MatMul weight, a window, a smoothing kernel. Re-initializing them would destroy
// the model's front end, so the plan keeps them (`kept: fixed <what>`) unless a --layer glob
// names them. Recognised by their values, checked numerically, or by a buffer-like name:
//   DFT basis      each row (output unit) of a [M, 1, K] conv or each column of a dense weight
//                  holds ≥ 90% of its energy within ±2 bins of one harmonic frequency k, k
//                  running 0, 1, 2, ... over the rows (or over each half: cos rows then sin)
//   mel bank       every filter non-negative, non-zero on one contiguous run with one peak, the
//                  peaks strictly rising from filter to filter (≥ 8 filters)
//   window         a 1-D tensor equal to a Hann, Hamming or Blackman window (periodic or
//                  symmetric) within 1e-4
//   smoothing      a conv kernel of one output channel, non-negative, symmetric, summing to 1
//   buffer         a name with "buffer", "basis", "window", "filterbank" or "filter_bank"
// A tensor whose values are not in memory (deferred, or zeroed) is judged by its name only.
#pragma once

#include <onnx/onnx_pb.h>

#include <optional>
#include <string>
#include <vector>

namespace reinit {

// What the tensor is when it is fixed ("DFT basis", "mel filter bank", "window (hann)", ...),
// nullopt when it is an ordinary weight. `shape` is the shape the layer sees; `output_axis` the
// axis of its output units (rows of a conv, columns of a [K, N] dense weight).
std::optional<std::string> FixedTensorKind(const onnx::TensorProto& tensor, const std::string& name,
                                           const std::vector<int64_t>& shape, int output_axis);

}  // namespace reinit
