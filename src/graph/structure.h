// Residual structure: where a branch's output is added back to the stream it started from.
//
// A residual join is an Add (or a two-input Sum) of two activations where one operand, the
// skip, comes from a tensor S — directly, through layout ops, Identity, Dropout, Cast, pooling
// and scalings by a constant, or through a projection (one dense or conv layer with an optional
// norm: ResNet's downsample) — and S also reaches the other operand, the branch, through at
// least one dense or conv layer. A stream is a chain of joins in which each join's skip starts
// (through activations, norms and the like, but no dense or conv layer) from the previous
// join's output; its L is the number of joins, one branch each. Each stream's normalization is
// read off its branches: `in_branch` (a norm after a weight layer inside the branch: ResNet's
// BatchNorm), `pre_norm` (a norm before the branch's first weight layer: GPT-2, ViT),
// `post_norm` (a norm on the stream after the join: BERT), `none` or `unknown`; the majority of
// its joins decides. A norm is a normalization op (of any domain: com.microsoft's fused ones
// too) or a normalization written out and found by what it computes (graph/normalization.h).
// `none` must be established: a join whose branch or stream holds a reduction that scales the
// stream and that could not be identified (an unidentified normalization) is `unknown`, and so
// is a stream whose majority is `none` if any of its joins is. The plan uses this to scale each
// branch to the depth of its stream (plan/residual.h); it leaves an `unknown` stream alone.
#pragma once

#include <string>
#include <unordered_map>
#include <vector>

#include "graph/graph_index.h"
#include "graph/layers.h"
#include "graph/normalization.h"

namespace reinit {

enum class StreamNorm { kNone, kPreNorm, kPostNorm, kInBranch, kUnknown };
const char* StreamNormName(StreamNorm norm);

// Where a layer node stands on its branch.
enum class BranchPosition { kNone, kFirst, kInner, kLast, kOnly, kProjectedSkip };
const char* BranchPositionName(BranchPosition position);

struct Join {
  int node = -1;                // the Add
  std::string output;           // the stream after the join
  std::string source;           // S: where the skip and the branch start
  bool projected = false;       // the skip passes through a layer
  std::vector<int> projection;  // the skip's layer nodes (weight layer and norm)
  std::vector<int> layers;      // the branch's layer nodes (weight layers and norms), in order
  int depth = 0;                // m: weight layers on the longest path through the branch
  double skip_scale = 1;        // product of the constant scalings on the skip (DeepNet's α)
  int stream = -1;
  int branch = -1;                      // index in its stream, in execution order
  StreamNorm norm = StreamNorm::kNone;  // this join's own evidence
  // kUnknown: what could not be identified on its branch or after it.
  std::string unknown;
};

struct Stream {
  std::vector<int> joins;  // indices into Structure::joins, in execution order
  StreamNorm norm = StreamNorm::kNone;
  std::string input;  // the first join's S
  // Embedding lookups (layer nodes) whose sum the stream starts from; empty when it starts
  // elsewhere (a layer, a graph input).
  std::vector<int> embeddings;
  std::string unknown;  // kUnknown: its first unknown join's
};

struct LayerPlace {
  int join = -1;  // index into Structure::joins
  BranchPosition position = BranchPosition::kNone;
};

struct Structure {
  std::vector<Join> joins;  // in execution order
  std::vector<Stream> streams;
  std::unordered_map<int, LayerPlace> places;  // layer node -> its branch (innermost) or skip
  // Dense and conv layers after a stream that no other weight layer follows: the classifier
  // (Fixup zeroes it).
  std::vector<int> heads;
};

// `layers` as FindLayers returns them; `order` a topological order of the graph's nodes;
// `norms` the normalizations found by what they compute (FindNormalizations), null: found here.
Structure FindStructure(const GraphIndex& index, const std::vector<Layer>& layers,
                        const std::vector<int>& order, const Normalizations* norms = nullptr);

}  // namespace reinit
