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

Status RunLsuv(const std::vector<std::map<std::string, exec::Tensor>>& batches,
               const LsuvOptions& options, onnx::ModelProto* model, proto::Plan* plan) {
  if (batches.empty()) return ModelError("lsuv needs at least one batch");
  const auto& feeds = batches[0];
  if (!(options.tolerance > 0)) return UsageError("--lsuv-tolerance must be positive");
  if (options.max_iterations < 1) return UsageError("--lsuv-iterations must be at least 1");
  auto created = exec::Executor::Create(*model);
  if (!created.ok()) return created.status();
  exec::Executor& executor = **created;

  // The layers in the order they run: one pass, noting when each output appears.
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

  for (auto& entry : order) {
    proto::Layer* const layer = entry.second;
    const std::string& weight = layer->weight().name();
    const exec::Tensor* value = executor.initializer(weight);
    if (!value || !value->is_float()) {
      plan->add_warnings("lsuv: layer '" + layer->name() + "': its weight '" + weight +
                         "' is not a float initializer; left orthogonal");
      continue;
    }
    exec::Tensor w = *value;
    double scale = 1, variance = 0;
    int iterations = 0;
    for (;;) {
      std::vector<Moments> parts;
      for (const auto& batch : batches) {
        Moments m;
        auto run = executor.Run(
            batch,
            [&](int node, const std::vector<exec::Tensor>& outputs) {
              const auto& n = executor.graph().node(node);
              for (size_t o = 0; o < outputs.size(); ++o) {
                if (n.output(static_cast<int>(o)) == layer->output()) m = MomentsOf(outputs[o]);
              }
              return Status::Ok();
            },
            layer->output());
        if (!run.ok()) return run.status().WithContext("lsuv, layer '" + layer->name() + "'");
        parts.push_back(m);
      }
      const Moments m = Pool(parts);
      variance = m.std * m.std;
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
    if (!(variance > 0)) {
      plan->add_warnings("lsuv: layer '" + layer->name() +
                         "': its output has no variance on the batch; left orthogonal");
    }
    layer->mutable_lsuv()->set_variance(variance);
    layer->mutable_lsuv()->set_iterations(iterations);
    layer->mutable_lsuv()->set_scale(scale);
    layer->set_reason("lsuv: orthogonal (gain 1), then scaled by " + std::to_string(scale) +
                      " in " + std::to_string(iterations) + " step(s): output variance " +
                      std::to_string(variance));
    // The model's tensor gets the scaled values, in its own type and storage.
    for (auto& t : *model->mutable_graph()->mutable_initializer()) {
      if (t.name() != weight) continue;
      REINIT_RETURN_IF_ERROR(WriteValues(std::span<const float>(w.f), &t));
    }
  }
  return Status::Ok();
}

}  // namespace reinit
