#include "signal/propagate.h"

#include <algorithm>
#include <cmath>
#include <span>

#include "init/rng.h"
#include "signal/npy.h"

namespace reinit {

namespace {

using exec::DType;
using exec::Tensor;

// The rows of the table a Gather reads with `input` as its indices, or -1 if none does.
int64_t EmbeddingRows(const exec::Executor& executor, const std::string& input) {
  for (const auto& node : executor.graph().node()) {
    if (node.op_type() != "Gather" || node.input_size() < 2 || node.input(1) != input) continue;
    const Tensor* table = executor.initializer(node.input(0));
    if (!table || table->rank() == 0) continue;
    int64_t axis = 0;
    for (const auto& a : node.attribute()) {
      if (a.name() == "axis") axis = a.i();
    }
    if (axis < 0) axis += table->rank();
    if (axis < 0 || axis >= table->rank()) continue;
    return table->shape[static_cast<size_t>(axis)];
  }
  return -1;
}

std::string Dims(const std::vector<int64_t>& shape, const std::vector<std::string>& names) {
  std::string s = "[";
  for (size_t k = 0; k < shape.size(); ++k) {
    if (k) s += ", ";
    s += shape[k] >= 0 ? std::to_string(shape[k]) : (names[k].empty() ? "?" : names[k]);
  }
  return s + "]";
}

}  // namespace

StatusOr<std::map<std::string, Tensor>> RandomInputs(const exec::Executor& executor,
                                                     const PropagateOptions& options) {
  for (const auto& [name, shape] : options.input_shapes) {
    bool known = false;
    for (const auto& in : executor.inputs()) known |= in.name == name;
    if (!known) {
      std::string inputs;
      for (const auto& in : executor.inputs()) {
        if (!inputs.empty()) inputs += ", ";
        inputs += "'" + in.name + "'";
      }
      return UsageError("--input " + name +
                        ": the model has no input of that name (its inputs: " + inputs + ")");
    }
  }
  std::map<std::string, Tensor> feeds;
  for (const auto& in : executor.inputs()) {
    std::vector<int64_t> shape = in.shape;
    const std::string declared = Dims(in.shape, in.dim_names);
    if (auto given = options.input_shapes.find(in.name); given != options.input_shapes.end()) {
      if (!in.shape.empty() && given->second.size() != in.shape.size()) {
        return UsageError("--input " + in.name + ": rank " + std::to_string(given->second.size()) +
                          ", but the model declares " + declared);
      }
      for (size_t k = 0; k < in.shape.size(); ++k) {
        if (in.shape[k] >= 0 && in.shape[k] != given->second[k]) {
          return UsageError("--input " + in.name + ": dim " + std::to_string(k) + " is " +
                            std::to_string(given->second[k]) + ", but the model declares " +
                            declared);
        }
      }
      shape = given->second;
    } else {
      for (size_t k = 0; k < shape.size(); ++k) {
        if (shape[k] >= 0) continue;
        if (k == 0) {
          shape[k] = options.batch;
          continue;
        }
        return UsageError("input '" + in.name + "' has the shape " + declared + ": give dim " +
                          std::to_string(k) + " with --input " + in.name + "=" +
                          "d0,d1,... (e.g. --input " + in.name + "=" +
                          std::to_string(options.batch) + ",...)");
      }
    }
    for (int64_t d : shape) {
      if (d <= 0) {
        return UsageError("input '" + in.name + "': every dim must be positive, not " +
                          exec::ShapeString(shape));
      }
    }
    if (exec::ShapeSize(shape) > (int64_t{1} << 31)) {
      return UsageError("input '" + in.name + "': " + exec::ShapeString(shape) +
                        " is more than 2^31 values");
    }
    const StreamKey key = KeyFor(options.seed, "reinit.input:" + in.name);
    if (in.type == DType::kFloat) {
      Tensor t = Tensor::Float(shape);
      FillNormal<float>(key, 1.0, 0, std::span<float>(t.f));
      feeds[in.name] = std::move(t);
    } else if (in.type == DType::kInt64) {
      const int64_t rows = EmbeddingRows(executor, in.name);
      if (rows <= 0) {
        return UsageError("input '" + in.name +
                          "' holds integers that no Gather reads as ids: reinit cannot make up "
                          "its values");
      }
      Tensor t = Tensor::Int64(shape);
      std::vector<double> u(t.i.size());
      FillUniform<double>(key, 0.0, static_cast<double>(rows), 0, std::span<double>(u));
      for (size_t k = 0; k < u.size(); ++k) {
        t.i[k] = std::min<int64_t>(static_cast<int64_t>(u[k]), rows - 1);
      }
      feeds[in.name] = std::move(t);
    } else {
      return UsageError("input '" + in.name + "' is bool: reinit cannot make up its values");
    }
  }
  return feeds;
}

StatusOr<std::map<std::string, Tensor>> DataInputs(
    const exec::Executor& executor, const std::map<std::string, std::string>& files) {
  std::map<std::string, Tensor> feeds;
  for (const auto& [given, path] : files) {
    std::string name = given;
    if (name.empty()) {
      if (executor.inputs().size() != 1) {
        return UsageError("--data " + path + ": the model has " +
                          std::to_string(executor.inputs().size()) +
                          " inputs; name each one (--data NAME=FILE.npy)");
      }
      name = executor.inputs()[0].name;
    }
    const exec::GraphInput* in = nullptr;
    for (const auto& i : executor.inputs()) {
      if (i.name == name) in = &i;
    }
    if (!in) return UsageError("--data " + name + "=" + path + ": the model has no such input");
    auto value = ReadNpy(path);
    if (!value.ok()) return value.status();
    if (value->type != in->type) {
      return UsageError("--data " + path + ": holds " + exec::DTypeName(value->type) +
                        " values; input '" + name + "' is " + exec::DTypeName(in->type));
    }
    const std::string declared = Dims(in->shape, in->dim_names);
    bool agrees = in->shape.empty() || value->shape.size() == in->shape.size();
    for (size_t k = 0; agrees && k < in->shape.size(); ++k) {
      agrees = in->shape[k] < 0 || in->shape[k] == value->shape[k];
    }
    if (!agrees) {
      return UsageError("--data " + path + ": shape " + exec::ShapeString(value->shape) +
                        "; input '" + name + "' is " + declared);
    }
    if (value->type == DType::kInt64) {
      const int64_t rows = EmbeddingRows(executor, name);
      for (int64_t id : value->i) {
        if (rows > 0 && (id < 0 || id >= rows)) {
          return UsageError("--data " + path + ": id " + std::to_string(id) +
                            " is not a row of the embedding table (" + std::to_string(rows) +
                            " rows)");
        }
      }
    }
    feeds[name] = std::move(*value);
  }
  for (const auto& in : executor.inputs()) {
    if (!feeds.count(in.name)) {
      return UsageError("--data: no file for input '" + in.name + "' (--data " + in.name +
                        "=FILE.npy)");
    }
  }
  return feeds;
}

Moments MomentsOf(const Tensor& tensor) {
  Moments m;
  if (!tensor.is_float() || tensor.f.empty()) return m;
  double sum = 0;
  for (float v : tensor.f) sum += v;
  m.mean = sum / static_cast<double>(tensor.f.size());
  double squares = 0;
  for (float v : tensor.f) squares += (v - m.mean) * (v - m.mean);
  m.std = std::sqrt(squares / static_cast<double>(tensor.f.size()));
  return m;
}

StatusOr<std::vector<Feeds>> RandomBatches(const exec::Executor& executor,
                                           const PropagateOptions& options) {
  auto first = RandomInputs(executor, options);
  if (!first.ok()) return first.status();
  int64_t per = options.batch;  // samples in one batch: the fed batch dim
  for (const auto& [name, t] : *first) {
    if (!t.shape.empty() && t.shape[0] > 0) per = std::min(per, t.shape[0]);
  }
  const int64_t count = std::max<int64_t>(1, (options.batch + per - 1) / per);
  std::vector<Feeds> batches;
  batches.push_back(std::move(*first));
  for (int64_t j = 1; j < count; ++j) {
    PropagateOptions o = options;
    o.seed = options.seed + static_cast<uint64_t>(j);
    auto more = RandomInputs(executor, o);
    if (!more.ok()) return more.status();
    batches.push_back(std::move(*more));
  }
  return batches;
}

Moments Pool(const std::vector<Moments>& parts) {
  if (parts.size() == 1) return parts[0];
  double mean = 0, second = 0;
  for (const auto& m : parts) {
    mean += m.mean;
    second += m.std * m.std + m.mean * m.mean;
  }
  const double n = static_cast<double>(parts.size());
  mean /= n;
  return {mean, std::sqrt(std::max(0.0, second / n - mean * mean))};
}

StatusOr<Signal> Propagate(const exec::Executor& executor, const proto::Plan& plan,
                           const std::vector<Feeds>& batches) {
  if (batches.empty()) return ModelError("propagation needs at least one batch");
  std::vector<Signal> each;
  for (const auto& feeds : batches) {
    auto s = Propagate(executor, plan, feeds);
    if (!s.ok()) return s.status();
    each.push_back(std::move(*s));
  }
  Signal pooled = std::move(each[0]);
  if (each.size() == 1) return pooled;
  auto pool = [&](auto member) {
    std::vector<Moments> parts = {member(pooled)};
    for (size_t b = 1; b < each.size(); ++b) parts.push_back(member(each[b]));
    return Pool(parts);
  };
  for (size_t k = 0; k < pooled.layers.size(); ++k) {
    pooled.layers[k].before = pool([k](const Signal& s) { return s.layers[k].before; });
    pooled.layers[k].after = pool([k](const Signal& s) { return s.layers[k].after; });
  }
  for (size_t k = 0; k < pooled.joins.size(); ++k) {
    pooled.joins[k].moments = pool([k](const Signal& s) { return s.joins[k].moments; });
  }
  if (!pooled.layers.empty() && pooled.layers.front().after.std > 0) {
    pooled.ratio = pooled.layers.back().after.std / pooled.layers.front().after.std;
  }
  return pooled;
}

StatusOr<Signal> Propagate(const exec::Executor& executor, const proto::Plan& plan,
                           const std::map<std::string, Tensor>& feeds) {
  // Tensor name -> its moments, for the tensors the plan's layers name.
  std::map<std::string, Moments> wanted;
  for (const auto& layer : plan.layers()) {
    if (!layer.skipped().empty() || layer.output().empty()) continue;
    wanted[layer.output()];
    if (!layer.activation().output().empty()) wanted[layer.activation().output()];
  }
  for (const auto& stream : plan.streams()) {
    for (const auto& join : stream.joins()) wanted[join.output()];
  }
  std::map<std::string, size_t> produced_at;  // tensor -> order in which it was computed
  const auto& graph = executor.graph();
  auto measured = executor.Run(feeds, [&](int node, const std::vector<Tensor>& outputs) {
    for (size_t o = 0; o < outputs.size(); ++o) {
      const std::string& name = graph.node(node).output(static_cast<int>(o));
      auto it = wanted.find(name);
      if (it == wanted.end()) continue;
      it->second = MomentsOf(outputs[o]);
      produced_at[name] = produced_at.size();
    }
    return Status::Ok();
  });
  if (!measured.ok()) return measured.status();

  Signal signal;
  for (const auto& [name, value] : feeds) signal.inputs[name] = value.shape;
  std::vector<std::pair<size_t, LayerSignal>> ordered;
  for (const auto& layer : plan.layers()) {
    if (!layer.skipped().empty() || layer.output().empty()) continue;
    auto at = produced_at.find(layer.output());
    if (at == produced_at.end()) continue;  // not computed (e.g. a branch to no output)
    LayerSignal s;
    s.name = layer.name();
    s.op = layer.op();
    s.activation = layer.activation().kind();
    s.before = wanted.at(layer.output());
    const std::string& after = layer.activation().output();
    s.after = !after.empty() && produced_at.count(after) ? wanted.at(after) : s.before;
    ordered.emplace_back(at->second, std::move(s));
  }
  std::stable_sort(ordered.begin(), ordered.end(),
                   [](const auto& a, const auto& b) { return a.first < b.first; });
  std::vector<size_t> layer_at;  // when each measured layer's output was computed
  for (auto& [position, s] : ordered) {
    signal.layers.push_back(std::move(s));
    layer_at.push_back(position);
  }
  for (const auto& stream : plan.streams()) {
    for (int j = 0; j < stream.joins_size(); ++j) {
      auto at = produced_at.find(stream.joins(j).output());
      if (at == produced_at.end()) continue;
      JoinSignal js;
      js.stream = stream.name();
      js.node = stream.joins(j).node();
      js.branch = j + 1;
      js.moments = wanted.at(stream.joins(j).output());
      js.after = static_cast<double>(
          std::lower_bound(layer_at.begin(), layer_at.end(), at->second) - layer_at.begin());
      signal.joins.push_back(std::move(js));
    }
  }
  std::stable_sort(signal.joins.begin(), signal.joins.end(),
                   [](const JoinSignal& a, const JoinSignal& b) { return a.after < b.after; });
  if (!signal.layers.empty() && signal.layers.front().after.std > 0) {
    signal.ratio = signal.layers.back().after.std / signal.layers.front().after.std;
  }
  return signal;
}

}  // namespace reinit
