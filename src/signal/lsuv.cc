#include "signal/lsuv.h"

#include <cmath>

#include "io/tensor_codec.h"
#include "signal/executor/executor.h"
#include "signal/propagate.h"

namespace reinit {

bool HasLsuvLayers(const proto::Plan& plan) {
  for (const auto& layer : plan.layers()) {
    if (layer.has_lsuv() && layer.skipped().empty()) return true;
  }
  return false;
}

bool UsesLsuv(const PlanOptions& options) {
  if (NeedsData(options.scheme)) return true;
  for (const auto& o : options.overrides) {
    if (NeedsData(o.scheme)) return true;
  }
  return false;
}

namespace {

// The plan's LSUV layers in the order they run (one pass on `feeds`, noting when each output
// appears); a layer whose output the pass does not compute is left orthogonal, with a warning.
StatusOr<std::vector<proto::Layer*>> LsuvOrder(exec::Executor& executor,
                                               const std::map<std::string, exec::Tensor>& feeds,
                                               proto::Plan* plan) {
  std::map<std::string, size_t> position;
  auto first = executor.Run(feeds, [&](int node, const std::vector<exec::Tensor>&) {
    for (const auto& out : executor.graph().node(node).output())
      position.emplace(out, position.size());
    return Status::Ok();
  });
  if (!first.ok()) return first.status();
  std::vector<std::pair<size_t, proto::Layer*>> order;
  for (auto& layer : *plan->mutable_layers()) {
    if (!layer.has_lsuv() || !layer.skipped().empty()) continue;
    auto at = position.find(layer.output());
    if (at == position.end()) {
      plan->add_warnings("lsuv: layer '" + layer.name() + "' is not computed from the inputs; " +
                         "left orthogonal");
      continue;
    }
    order.emplace_back(at->second, &layer);
  }
  std::stable_sort(order.begin(), order.end(),
                   [](const auto& a, const auto& b) { return a.first < b.first; });
  std::vector<proto::Layer*> layers;
  for (const auto& entry : order) layers.push_back(entry.second);
  return layers;
}

// The moments of the layer's output over all of `batches`, with the weights as they are now.
StatusOr<Moments> OutputMoments(exec::Executor& executor,
                                const std::vector<std::map<std::string, exec::Tensor>>& batches,
                                const proto::Layer& layer) {
  std::vector<Moments> parts;
  for (const auto& batch : batches) {
    Moments m;
    auto run = executor.Run(
        batch,
        [&](int node, const std::vector<exec::Tensor>& outputs) {
          const auto& n = executor.graph().node(node);
          for (size_t o = 0; o < outputs.size(); ++o) {
            if (n.output(static_cast<int>(o)) == layer.output()) m = MomentsOf(outputs[o]);
          }
          return Status::Ok();
        },
        layer.output());
    if (!run.ok()) return run.status().WithContext("lsuv, layer '" + layer.name() + "'");
    parts.push_back(m);
  }
  return Pool(parts);
}

// The record of one layer's scaling in the plan.
void RecordLsuv(double scale, int iterations, double variance, proto::Layer* layer,
                proto::Plan* plan) {
  if (!(variance > 0)) {
    plan->add_warnings("lsuv: layer '" + layer->name() +
                       "': its output has no variance on the batch; left orthogonal");
  }
  layer->mutable_lsuv()->set_variance(variance);
  layer->mutable_lsuv()->set_iterations(iterations);
  layer->mutable_lsuv()->set_scale(scale);
  layer->set_reason("lsuv: orthogonal (gain 1), then scaled by " + std::to_string(scale) + " in " +
                    std::to_string(iterations) + " step(s): output variance " +
                    std::to_string(variance));
}

// Scales one layer's weight until its output variance is within tolerance of 1 (or the
// iterations run out), records it in the plan, and writes the values into the model's tensor,
// in its own type and storage.
Status ScaleLsuvLayer(exec::Executor& executor,
                      const std::vector<std::map<std::string, exec::Tensor>>& batches,
                      const LsuvOptions& options, proto::Layer* layer, onnx::ModelProto* model,
                      proto::Plan* plan) {
  const std::string& weight = layer->weight().name();
  const exec::Tensor* value = executor.initializer(weight);
  if (!value || !value->is_float()) {
    plan->add_warnings("lsuv: layer '" + layer->name() + "': its weight '" + weight +
                       "' is not a float initializer; left orthogonal");
    return Status::Ok();
  }
  exec::Tensor w = *value;
  double scale = 1, variance = 0;
  int iterations = 0;
  for (;;) {
    auto m = OutputMoments(executor, batches, *layer);
    if (!m.ok()) return m.status();
    variance = m->std * m->std;
    if (std::fabs(variance - 1) < options.tolerance || iterations == options.max_iterations ||
        !(variance > 0) || !std::isfinite(variance)) {
      break;
    }
    const double factor = 1 / std::sqrt(variance);
    scale *= factor;
    for (float& v : w.f) v = static_cast<float>(v * factor);
    REINIT_RETURN_IF_ERROR(executor.SetInitializer(weight, w));
    ++iterations;
  }
  RecordLsuv(scale, iterations, variance, layer, plan);
  for (auto& t : *model->mutable_graph()->mutable_initializer()) {
    if (t.name() != weight) continue;
    REINIT_RETURN_IF_ERROR(WriteValues(std::span<const float>(w.f), &t));
  }
  return Status::Ok();
}

}  // namespace

Status RunLsuv(const std::vector<std::map<std::string, exec::Tensor>>& batches,
               const LsuvOptions& options, onnx::ModelProto* model, proto::Plan* plan) {
  if (batches.empty()) return ModelError("lsuv needs at least one batch");
  if (!(options.tolerance > 0)) return UsageError("--lsuv-tolerance must be positive");
  if (options.max_iterations < 1) return UsageError("--lsuv-iterations must be at least 1");
  auto created = exec::Executor::Create(*model);
  if (!created.ok()) return created.status();
  exec::Executor& executor = **created;
  auto order = LsuvOrder(executor, batches[0], plan);
  if (!order.ok()) return order.status();
  for (proto::Layer* layer : *order) {
    REINIT_RETURN_IF_ERROR(ScaleLsuvLayer(executor, batches, options, layer, model, plan));
  }
  return Status::Ok();
}

}  // namespace reinit
