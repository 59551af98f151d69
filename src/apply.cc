#include "apply.h"

#include <unordered_map>
#include <vector>

#include "rng.h"
#include "schemes/orthogonal.h"
#include "schemes/registry.h"
#include "tensor_codec.h"

namespace reinit {

namespace {

// Draws `count` values for `init` into `out` (float or double).
template <typename T>
Status Draw(const proto::TensorInit& init, uint64_t seed, std::vector<T>* out) {
  auto scheme = FindScheme(init.scheme());
  if (!scheme.ok()) return scheme.status();
  const StreamKey key = KeyFor(seed, init.name());
  std::span<T> values(*out);
  switch ((*scheme)->distribution) {
    case Distribution::kNone:
      std::fill(values.begin(), values.end(), T(0));
      return Status::Ok();
    case Distribution::kNormal:
      FillNormal<T>(key, init.std(), 0, values);
      return Status::Ok();
    case Distribution::kUniform:
      FillUniform<T>(key, -init.bound(), init.bound(), 0, values);
      return Status::Ok();
    case Distribution::kTruncatedNormal:
      FillTruncatedNormal<T>(key, init.std(), 2.0, 0, values);
      return Status::Ok();
    case Distribution::kOrthogonal:
      break;
  }
  const std::vector<int64_t> shape(init.shape().begin(), init.shape().end());
  const int axis = init.output_axis();
  if (shape.empty() || axis < 0 || axis >= static_cast<int>(shape.size())) {
    return ModelError("orthogonal needs a weight of rank >= 1 and a valid output axis");
  }
  const int64_t rows = shape[axis];
  const int64_t cols = static_cast<int64_t>(values.size()) / rows;
  std::vector<double> matrix(values.size()), tensor(values.size());
  FillOrthogonal(key, rows, cols, init.gain(), matrix);
  ScatterRows(matrix, shape, axis, tensor);
  std::copy(tensor.begin(), tensor.end(), values.begin());
  return Status::Ok();
}

Status Rewrite(const proto::TensorInit& init, uint64_t seed, onnx::TensorProto* tensor) {
  auto count = ElementCount(*tensor);
  if (!count.ok()) return count.status();
  if (tensor->data_type() == onnx::TensorProto::DOUBLE) {
    std::vector<double> values(static_cast<size_t>(*count));
    REINIT_RETURN_IF_ERROR(Draw(init, seed, &values));
    return WriteValues(std::span<const double>(values), tensor);
  }
  std::vector<float> values(static_cast<size_t>(*count));
  REINIT_RETURN_IF_ERROR(Draw(init, seed, &values));
  return WriteValues(std::span<const float>(values), tensor);
}

void SetMetadata(onnx::ModelProto* model, const std::string& key, const std::string& value) {
  for (auto& p : *model->mutable_metadata_props()) {
    if (p.key() == key) {
      p.set_value(value);
      return;
    }
  }
  auto* p = model->add_metadata_props();
  p->set_key(key);
  p->set_value(value);
}

}  // namespace

Status ApplyPlan(const proto::Plan& plan, onnx::ModelProto* model) {
  std::unordered_map<std::string, onnx::TensorProto*> tensors;
  for (auto& t : *model->mutable_graph()->mutable_initializer()) tensors.emplace(t.name(), &t);
  auto rewrite = [&](const proto::Layer& layer, const proto::TensorInit& init) -> Status {
    if (init.scheme().empty() || init.scheme() == "keep") return Status::Ok();
    auto it = tensors.find(init.name());
    const std::string ctx =
        "layer '" + layer.name() + "' (" + layer.op() + "), tensor '" + init.name() + "'";
    if (it == tensors.end()) return ModelError(ctx + ": no initializer of that name");
    return Rewrite(init, plan.seed(), it->second).WithContext(ctx);
  };
  for (const auto& layer : plan.layers()) {
    if (!layer.skipped().empty()) continue;
    REINIT_RETURN_IF_ERROR(rewrite(layer, layer.weight()));
    if (layer.has_bias()) REINIT_RETURN_IF_ERROR(rewrite(layer, layer.bias()));
  }
  SetMetadata(model, "reinit.version", plan.tool_version());
  SetMetadata(model, "reinit.scheme", plan.scheme());
  SetMetadata(model, "reinit.seed", std::to_string(plan.seed()));
  return Status::Ok();
}

}  // namespace reinit
