#include "io/inference_guard.h"

#include <onnx/defs/shape_inference.h>

#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>

namespace reinit {

namespace {

using Guard = std::function<void(onnx::InferenceContext&)>;

// The rank of input `index`, or -1 if it is absent or has no shape.
int InputRank(const onnx::InferenceContext& ctx, size_t index) {
  if (index >= ctx.getNumInputs()) return -1;
  const onnx::TypeProto* type = ctx.getInputType(index);
  if (!type || !type->has_tensor_type() || !type->tensor_type().has_shape()) return -1;
  return type->tensor_type().shape().dim_size();
}

// Conv-like ops (Conv, ConvInteger, QLinearConv, ConvTranspose) take their kernel's spatial
// rank from the weight, then index the input's spatial dims, strides, dilations and pads with
// it (convPoolShapeInference, convTransposeShapeInference); ConvTranspose also reads the
// weight's dim 1. A weight whose rank differs from the input's (N, C, spatial...) reads past
// those ends: SEGV in convPoolShapeInference on a Conv with a 4-D input and a 5-D weight.
Guard SameRankAsInput(size_t x, size_t w) {
  return [x, w](onnx::InferenceContext& ctx) {
    const int x_rank = InputRank(ctx, x), w_rank = InputRank(ctx, w);
    if (x_rank < 0 || w_rank < 0) return;
    if (x_rank < 2 || w_rank != x_rank) {
      fail_shape_inference("the input has rank ", x_rank, " and the weight rank ", w_rank,
                           ": both must be the same, at least 2");
    }
  };
}

// Op type (ai.onnx) -> its guard, for every version of the op.
const std::map<std::string, Guard>& Guards() {
  static const auto* guards = new std::map<std::string, Guard>{
      {"Conv", SameRankAsInput(0, 1)},
      {"ConvInteger", SameRankAsInput(0, 1)},
      {"QLinearConv", SameRankAsInput(0, 3)},
      {"ConvTranspose", SameRankAsInput(0, 1)},
  };
  return *guards;
}

class GuardedRegistry final : public onnx::ISchemaRegistry {
 public:
  const onnx::OpSchema* GetSchema(const std::string& key, const int max_version,
                                  const std::string& domain) const override {
    const onnx::OpSchema* schema = onnx::OpSchemaRegistry::Schema(key, max_version, domain);
    if (!schema || !(domain.empty() || domain == "ai.onnx")) return schema;
    const auto guard = Guards().find(key);
    if (guard == Guards().end()) return schema;
    // One guarded copy per schema, made when first asked for and kept for the process.
    std::lock_guard<std::mutex> lock(mutex_);
    std::unique_ptr<onnx::OpSchema>& guarded = guarded_[schema];
    if (!guarded) {
      guarded = std::make_unique<onnx::OpSchema>(*schema);
      guarded->TypeAndShapeInferenceFunction(
          [check = guard->second,
           original = schema->GetTypeAndShapeInferenceFunction()](onnx::InferenceContext& ctx) {
            check(ctx);
            if (original) original(ctx);
          });
    }
    return guarded.get();
  }

 private:
  mutable std::mutex mutex_;
  mutable std::map<const onnx::OpSchema*, std::unique_ptr<onnx::OpSchema>> guarded_;
};

}  // namespace

const onnx::ISchemaRegistry* GuardedSchemaRegistry() {
  static const auto* registry = new GuardedRegistry;
  return registry;
}

}  // namespace reinit
