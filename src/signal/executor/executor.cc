#include "signal/executor/executor.h"

#include <algorithm>
#include <cstring>
#include <set>

#include "graph/graph_index.h"
#include "io/tensor_codec.h"
#include "signal/executor/ops.h"

namespace reinit::exec {

namespace {

bool IsIntegerType(int32_t type) {
  switch (type) {
    case onnx::TensorProto::INT8:
    case onnx::TensorProto::UINT8:
    case onnx::TensorProto::INT16:
    case onnx::TensorProto::UINT16:
    case onnx::TensorProto::INT32:
    case onnx::TensorProto::UINT32:
    case onnx::TensorProto::INT64:
    case onnx::TensorProto::UINT64:
      return true;
    default:
      return false;
  }
}

template <typename T>
int64_t LoadRaw(const char* p) {
  T v;
  std::memcpy(&v, p, sizeof v);
  return static_cast<int64_t>(v);
}

// Integer and bool values from raw_data or the typed fields.
StatusOr<std::vector<int64_t>> ReadIntegers(const onnx::TensorProto& t, int64_t count) {
  std::vector<int64_t> v(static_cast<size_t>(count));
  const int32_t type = t.data_type();
  if (t.has_raw_data()) {
    size_t width = 0;
    switch (type) {
      case onnx::TensorProto::INT8:
      case onnx::TensorProto::UINT8:
      case onnx::TensorProto::BOOL:
        width = 1;
        break;
      case onnx::TensorProto::INT16:
      case onnx::TensorProto::UINT16:
        width = 2;
        break;
      case onnx::TensorProto::INT32:
      case onnx::TensorProto::UINT32:
        width = 4;
        break;
      default:
        width = 8;
    }
    if (t.raw_data().size() != static_cast<size_t>(count) * width) {
      return ModelError("tensor '" + t.name() + "': raw_data holds " +
                        std::to_string(t.raw_data().size()) + " bytes, the dims need " +
                        std::to_string(static_cast<size_t>(count) * width));
    }
    const char* p = t.raw_data().data();
    for (size_t k = 0; k < v.size(); ++k, p += width) {
      switch (type) {
        case onnx::TensorProto::INT8:
          v[k] = LoadRaw<int8_t>(p);
          break;
        case onnx::TensorProto::UINT8:
        case onnx::TensorProto::BOOL:
          v[k] = LoadRaw<uint8_t>(p);
          break;
        case onnx::TensorProto::INT16:
          v[k] = LoadRaw<int16_t>(p);
          break;
        case onnx::TensorProto::UINT16:
          v[k] = LoadRaw<uint16_t>(p);
          break;
        case onnx::TensorProto::INT32:
          v[k] = LoadRaw<int32_t>(p);
          break;
        case onnx::TensorProto::UINT32:
          v[k] = LoadRaw<uint32_t>(p);
          break;
        default:
          v[k] = LoadRaw<int64_t>(p);
      }
    }
    return v;
  }
  const int64_t stored = type == onnx::TensorProto::INT64    ? t.int64_data_size()
                         : type == onnx::TensorProto::UINT64 ? t.uint64_data_size()
                         : type == onnx::TensorProto::UINT32 ? t.uint64_data_size()
                                                             : t.int32_data_size();
  if (stored != count) {
    return ModelError("tensor '" + t.name() + "': holds " + std::to_string(stored) +
                      " values, the dims need " + std::to_string(count));
  }
  for (int k = 0; k < static_cast<int>(count); ++k) {
    v[k] = type == onnx::TensorProto::INT64    ? t.int64_data(k)
           : type == onnx::TensorProto::UINT64 ? static_cast<int64_t>(t.uint64_data(k))
           : type == onnx::TensorProto::UINT32 ? static_cast<int64_t>(t.uint64_data(k))
                                               : t.int32_data(k);
  }
  return v;
}

DType DTypeOf(int32_t elem_type) {
  if (elem_type == onnx::TensorProto::BOOL) return DType::kBool;
  return IsIntegerType(elem_type) ? DType::kInt64 : DType::kFloat;
}

}  // namespace

StatusOr<Tensor> DecodeTensor(const onnx::TensorProto& t) {
  auto count = ElementCount(t);
  if (!count.ok()) return count.status();
  if (t.data_location() == onnx::TensorProto::EXTERNAL) {
    return ModelError("tensor '" + t.name() + "': its external data was not read in");
  }
  std::vector<int64_t> shape(t.dims().begin(), t.dims().end());
  if (IsSupportedFloatType(t.data_type())) {
    auto values = ReadValues(t);
    if (!values.ok()) return values.status();
    std::vector<float> f(values->begin(), values->end());
    return Tensor::Float(std::move(shape), std::move(f));
  }
  if (IsIntegerType(t.data_type()) || t.data_type() == onnx::TensorProto::BOOL) {
    auto values = ReadIntegers(t, *count);
    if (!values.ok()) return values.status();
    Tensor out = Tensor::Int64(std::move(shape), std::move(*values));
    if (t.data_type() == onnx::TensorProto::BOOL) {
      out.type = DType::kBool;
      for (int64_t& b : out.i) b = b != 0;
    }
    return out;
  }
  return ModelError("tensor '" + t.name() + "': data type " + DataTypeName(t.data_type()) +
                    " is not one the reference executor computes with");
}

StatusOr<std::unique_ptr<Executor>> Executor::Create(const onnx::ModelProto& model,
                                                     TensorStore* store) {
  std::unique_ptr<Executor> e(new Executor());
  for (const auto& o : model.opset_import()) {
    if (o.domain().empty() || o.domain() == "ai.onnx") e->opset_ = o.version();
  }
  const onnx::GraphProto& g = model.graph();
  // The nodes, inputs and outputs, and the initializers without their data.
  *e->graph_.mutable_node() = g.node();
  *e->graph_.mutable_input() = g.input();
  *e->graph_.mutable_output() = g.output();
  for (const auto& t : g.initializer()) {
    auto* light = e->graph_.add_initializer();
    light->set_name(t.name());
    light->set_data_type(t.data_type());
    *light->mutable_dims() = t.dims();
  }
  const OpTable& ops = Ops();
  for (int k = 0; k < g.node_size(); ++k) {
    const onnx::NodeProto& n = g.node(k);
    const std::string what = "node '" +
                             (n.name().empty() ? n.op_type() + "_" + std::to_string(k) : n.name()) +
                             "' (" + n.op_type() + ")";
    if (!n.domain().empty() && n.domain() != "ai.onnx") {
      return ModelError(what + ": domain '" + n.domain() +
                        "' is not one the reference executor runs (only ONNX's own ops)");
    }
    if (!ops.count(n.op_type())) {
      std::string known;
      for (const auto& [name, kernel] : ops) known += (known.empty() ? "" : ", ") + name;
      return ModelError(what + ": operator '" + n.op_type() +
                        "' is not supported by the reference executor (it runs " + known + ")");
    }
  }
  GraphIndex index(e->graph_);
  auto order = index.TopologicalOrder();
  if (!order.ok()) return order.status();
  e->order_ = std::move(*order);

  for (const auto& t : g.initializer()) {
    StatusOr<Tensor> value = Status::Ok();
    if (IsDeferred(t) && store) {
      onnx::TensorProto copy = t;
      REINIT_RETURN_IF_ERROR(store->Resolve(&copy));
      value = DecodeTensor(copy);
    } else {
      value = DecodeTensor(t);
    }
    if (!value.ok()) return value.status();
    e->initializers_[t.name()] = std::move(*value);
  }
  for (const auto& in : g.input()) {
    if (e->initializers_.count(in.name())) continue;
    GraphInput gi;
    gi.name = in.name();
    const auto& tt = in.type().tensor_type();
    gi.type = DTypeOf(tt.elem_type());
    for (const auto& d : tt.shape().dim()) {
      gi.shape.push_back(d.has_dim_value() ? d.dim_value() : -1);
      gi.dim_names.push_back(d.has_dim_param() ? d.dim_param() : "");
    }
    e->inputs_.push_back(std::move(gi));
  }
  for (const auto& out : g.output()) e->outputs_.push_back(out.name());
  for (size_t pos = 0; pos < e->order_.size(); ++pos) {
    for (const auto& in : g.node(e->order_[pos]).input()) {
      if (!in.empty()) e->last_use_[in] = pos;
    }
  }
  return e;
}

const Tensor* Executor::initializer(const std::string& name) const {
  auto it = initializers_.find(name);
  return it == initializers_.end() ? nullptr : &it->second;
}

Status Executor::SetInitializer(const std::string& name, Tensor value) {
  auto it = initializers_.find(name);
  if (it == initializers_.end()) return ModelError("no initializer named '" + name + "'");
  if (it->second.shape != value.shape || it->second.type != value.type) {
    return ModelError("initializer '" + name + "' is " + DTypeName(it->second.type) + " " +
                      ShapeString(it->second.shape) + "; the new value is " +
                      DTypeName(value.type) + " " + ShapeString(value.shape));
  }
  it->second = std::move(value);
  return Status::Ok();
}

namespace {

// A graph input's value: its dims' product (without overflowing: a zero dim wins, past 2^31 is
// refused) must be the number of values it holds.
Status CheckFeed(const std::string& name, const Tensor& t) {
  const size_t held = t.is_float() ? t.f.size() : t.i.size();
  bool valid = true, empty = false;
  for (int64_t d : t.shape) {
    valid &= d >= 0;
    empty |= d == 0;
  }
  int64_t count = 1;
  for (size_t k = 0; valid && !empty && k < t.shape.size(); ++k) {
    if (t.shape[k] > (int64_t{1} << 31) / count) {
      return UsageError("the value given for the graph input '" + name + "' has " +
                        "more than 2^31 elements: " + ShapeString(t.shape));
    }
    count *= t.shape[k];
  }
  if (empty) count = 0;
  if (!valid || static_cast<int64_t>(held) != count) {
    return UsageError("the value given for the graph input '" + name + "' holds " +
                      std::to_string(held) + " values for the shape " + ShapeString(t.shape));
  }
  return Status::Ok();
}

// The node's inputs, from the values computed so far or the initializers (null: an omitted
// optional input).
StatusOr<std::vector<const Tensor*>> NodeInputs(const onnx::NodeProto& n,
                                                const std::map<std::string, Tensor>& values,
                                                const std::map<std::string, Tensor>& initializers) {
  std::vector<const Tensor*> inputs;
  for (const auto& name : n.input()) {
    if (name.empty()) {
      inputs.push_back(nullptr);
      continue;
    }
    if (auto v = values.find(name); v != values.end()) {
      inputs.push_back(&v->second);
      continue;
    }
    auto init = initializers.find(name);
    if (init == initializers.end()) {
      return ModelError("node '" + n.name() + "' (" + n.op_type() + "): input '" + name +
                        "' has no value");
    }
    inputs.push_back(&init->second);
  }
  return inputs;
}

bool Produces(const onnx::NodeProto& n, const std::string& name) {
  return !name.empty() && std::find(n.output().begin(), n.output().end(), name) != n.output().end();
}

}  // namespace

StatusOr<std::map<std::string, Tensor>> Executor::Run(const std::map<std::string, Tensor>& feeds,
                                                      const Observer& observe,
                                                      const std::string& stop_after) const {
  std::map<std::string, Tensor> values;
  for (const GraphInput& in : inputs_) {
    auto it = feeds.find(in.name);
    if (it == feeds.end())
      return UsageError("no value given for the graph input '" + in.name + "'");
    REINIT_RETURN_IF_ERROR(CheckFeed(in.name, it->second));
    values[in.name] = it->second;
  }
  const std::set<std::string> outputs(outputs_.begin(), outputs_.end());
  for (size_t pos = 0; pos < order_.size(); ++pos) {
    const int k = order_[pos];
    const onnx::NodeProto& n = graph_.node(k);
    REINIT_RETURN_IF_ERROR(RunNode(k, &values, observe));
    if (Produces(n, stop_after)) return std::map<std::string, Tensor>{};
    // Values read for the last time here go, unless they are graph outputs.
    for (const auto& name : n.input()) {
      auto last = last_use_.find(name);
      if (last != last_use_.end() && last->second == pos && !outputs.count(name)) {
        values.erase(name);
      }
    }
  }
  return GraphOutputs(&values);
}

Status Executor::RunNode(int k, std::map<std::string, Tensor>* values,
                         const Observer& observe) const {
  const onnx::NodeProto& n = graph_.node(k);
  auto inputs = NodeInputs(n, *values, initializers_);
  if (!inputs.ok()) return inputs.status();
  OpContext ctx(n, std::move(inputs).value(), opset_);
  Status s = Ops().at(n.op_type())(ctx);
  if (!s.ok()) {
    return s.WithContext("node '" +
                         (n.name().empty() ? n.op_type() + "_" + std::to_string(k) : n.name()) +
                         "' (" + n.op_type() + ")");
  }
  if (observe) REINIT_RETURN_IF_ERROR(observe(k, ctx.outputs()));
  for (int o = 0; o < n.output_size(); ++o) {
    if (!n.output(o).empty()) (*values)[n.output(o)] = std::move(ctx.output(o));
  }
  return Status::Ok();
}

StatusOr<std::map<std::string, Tensor>> Executor::GraphOutputs(
    std::map<std::string, Tensor>* values) const {
  std::map<std::string, Tensor> result;
  for (const auto& name : outputs_) {
    if (auto v = values->find(name); v != values->end()) {
      result[name] = std::move(v->second);
    } else if (auto init = initializers_.find(name); init != initializers_.end()) {
      result[name] = init->second;
    } else {
      return ModelError("graph output '" + name + "' was not computed");
    }
  }
  return result;
}

}  // namespace reinit::exec
