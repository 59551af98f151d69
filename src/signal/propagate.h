// Signal propagation: runs a batch of random inputs through a model on the reference executor
// and measures, for every layer of a plan, the mean and standard deviation of what the layer
// produces before and after its activation. This is what `inspect --propagate` prints, what
// the scheme comparison (--report) draws, and what LSUV scales against.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "plan.pb.h"
#include "signal/executor/executor.h"
#include "status.h"

namespace reinit {

struct PropagateOptions {
  // The size of a symbolic first dim (the batch) of every input.
  int64_t batch = 8;
  // Shapes given for inputs (--input NAME=SHAPE), replacing the declared ones.
  std::map<std::string, std::vector<int64_t>> input_shapes;
  uint64_t seed = 0;
};

// The random inputs: standard normal values for a float input, and for an integer input read
// as indices by a Gather (an embedding), ids drawn uniformly from the rows of its table.
// Every value is a pure function of (seed, input name, index). Refused, naming the input: a
// symbolic dim other than the first with no --input shape, a given shape that disagrees with
// a declared dim, an integer input that feeds no Gather, a bool input.
StatusOr<std::map<std::string, exec::Tensor>> RandomInputs(const exec::Executor& executor,
                                                           const PropagateOptions& options);

using Feeds = std::map<std::string, exec::Tensor>;

// Random inputs of `options.batch` samples in all: one batch where the model's batch dim is
// symbolic (it takes that size), else as many batches of the model's own (static) batch size as
// reach it, batch j drawn with seed `options.seed + j`. So that a measurement holds on fresh
// data even where an export fixed its batch at 1.
StatusOr<std::vector<Feeds>> RandomBatches(const exec::Executor& executor,
                                           const PropagateOptions& options);

// Inputs read from .npy files (input name -> path; "" names the model's only input). Each
// must be of the input's kind (float, integer, bool) and agree with its declared dims;
// integer ids that a Gather reads must be rows of its table.
StatusOr<std::map<std::string, exec::Tensor>> DataInputs(
    const exec::Executor& executor, const std::map<std::string, std::string>& files);

struct Moments {
  double mean = 0;
  double std = 0;  // population standard deviation
};

// Mean and standard deviation of a float tensor's values (0, 0 for an empty or non-float one).
Moments MomentsOf(const exec::Tensor& tensor);

struct LayerSignal {
  std::string name;
  std::string op;
  std::string activation;  // the plan's activation kind
  Moments before;          // the layer's output (after a bias Add folded into it)
  Moments after;           // after its activation (equal to `before` when linear)
};

// The residual stream after one join of the plan (the output of its Add).
struct JoinSignal {
  std::string stream;
  std::string node;
  int branch = 0;  // 1-based: the stream after this many branches
  Moments moments;
  double after = 0;  // how many of the measured layers ran before it: its place in depth
};

struct Signal {
  std::map<std::string, std::vector<int64_t>> inputs;  // the shapes fed
  std::vector<LayerSignal> layers;                     // in the order they ran
  std::vector<JoinSignal> joins;                       // in the order they ran
  // The last layer's std after its activation over the first layer's; 0 if the first's is 0.
  double ratio = 0;
};

// Runs `feeds` through `executor` and measures every layer of `plan` that has an output
// tensor (skipped layers are left out), and the stream after every residual join.
StatusOr<Signal> Propagate(const exec::Executor& executor, const proto::Plan& plan,
                           const std::map<std::string, exec::Tensor>& feeds);
// The same over several batches: the moments pooled over all of them (Signal::inputs: the
// first batch's shapes).
StatusOr<Signal> Propagate(const exec::Executor& executor, const proto::Plan& plan,
                           const std::vector<Feeds>& batches);

// Pools the moments of equally sized parts into those of the whole.
Moments Pool(const std::vector<Moments>& parts);

}  // namespace reinit
