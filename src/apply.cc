#include "apply.h"

#include <unordered_map>
#include <vector>

#include "rng.h"
#include "schemes/orthogonal.h"
#include "schemes/registry.h"
#include "tensor_codec.h"

namespace reinit {

namespace {

// What to draw into one span: a whole tensor or one block of it.
struct DrawSpec {
  std::string scheme;
  double gain = 1, std = 0, bound = 0, value = 0;
  std::vector<int64_t> shape;  // for orthogonal: the span's shape and its output axis
  int output_axis = 0;
};

template <typename T>
Status Draw(const DrawSpec& spec, StreamKey key, std::span<T> values) {
  auto scheme = FindScheme(spec.scheme);
  if (!scheme.ok()) return scheme.status();
  switch ((*scheme)->distribution) {
    case Distribution::kNone:
      std::fill(values.begin(), values.end(), T(0));
      return Status::Ok();
    case Distribution::kConstant:
      std::fill(values.begin(), values.end(), static_cast<T>(spec.value));
      return Status::Ok();
    case Distribution::kNormal:
      FillNormal<T>(key, spec.std, 0, values);
      return Status::Ok();
    case Distribution::kUniform:
      FillUniform<T>(key, -spec.bound, spec.bound, 0, values);
      return Status::Ok();
    case Distribution::kTruncatedNormal:
      FillTruncatedNormal<T>(key, spec.std, 2.0, 0, values);
      return Status::Ok();
    case Distribution::kOrthogonal:
      break;
  }
  const int axis = spec.output_axis;
  if (spec.shape.empty() || axis < 0 || axis >= static_cast<int>(spec.shape.size()) ||
      spec.shape[axis] <= 0) {
    return ModelError("orthogonal needs a weight of rank >= 1 and a valid output axis");
  }
  const int64_t rows = spec.shape[axis];
  const int64_t cols = static_cast<int64_t>(values.size()) / rows;
  std::vector<double> matrix(values.size()), tensor(values.size());
  FillOrthogonal(key, rows, cols, spec.gain, matrix);
  ScatterRows(matrix, spec.shape, axis, tensor);
  std::copy(tensor.begin(), tensor.end(), values.begin());
  return Status::Ok();
}

template <typename T>
Status DrawTensor(const proto::TensorInit& init, uint64_t seed, int64_t count,
                  const onnx::TensorProto& tensor, std::vector<T>* values) {
  if (init.blocks().empty()) {
    values->resize(static_cast<size_t>(count));
    DrawSpec spec{init.scheme(),     init.gain(),  init.std(),
                  init.bound(),      init.value(), {init.shape().begin(), init.shape().end()},
                  init.output_axis()};
    return Draw<T>(spec, KeyFor(seed, init.name()), *values);
  }
  // Blocks: elements outside every block keep their values.
  auto old = ReadValues(tensor);
  if (!old.ok()) return old.status();
  values->assign(old->begin(), old->end());
  for (const auto& b : init.blocks()) {
    const int64_t n = b.rows() * b.cols();
    if (b.offset() < 0 || b.rows() <= 0 || b.cols() <= 0 || b.offset() + n > count) {
      return ModelError("block '" + b.name() + "' does not fit in the tensor");
    }
    if (b.scheme() == "keep") continue;
    DrawSpec spec{b.scheme(), b.gain(), b.std(), b.bound(), b.value(), {b.rows(), b.cols()}, 0};
    std::span<T> part(values->data() + b.offset(), static_cast<size_t>(n));
    REINIT_RETURN_IF_ERROR(Draw<T>(spec, KeyFor(seed, init.name() + "/" + b.name()), part)
                               .WithContext("block '" + b.name() + "'"));
  }
  return Status::Ok();
}

Status Rewrite(const proto::TensorInit& init, uint64_t seed, onnx::TensorProto* tensor) {
  auto count = ElementCount(*tensor);
  if (!count.ok()) return count.status();
  if (tensor->data_type() == onnx::TensorProto::DOUBLE) {
    std::vector<double> values;
    REINIT_RETURN_IF_ERROR(DrawTensor(init, seed, *count, *tensor, &values));
    return WriteValues(std::span<const double>(values), tensor);
  }
  std::vector<float> values;
  REINIT_RETURN_IF_ERROR(DrawTensor(init, seed, *count, *tensor, &values));
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
    for (const auto& p : layer.params()) REINIT_RETURN_IF_ERROR(rewrite(layer, p));
  }
  SetMetadata(model, "reinit.version", plan.tool_version());
  SetMetadata(model, "reinit.scheme", plan.scheme());
  SetMetadata(model, "reinit.seed", std::to_string(plan.seed()));
  return Status::Ok();
}

}  // namespace reinit
