#include "export/export.h"

#include <cstring>
#include <unordered_map>

#include "export/json.h"
#include "export/npz.h"
#include "export/safetensors.h"
#include "graph/graph_index.h"
#include "init/apply.h"
#include "io/tensor_codec.h"
#include "io/tensor_store.h"

namespace reinit {

namespace {

using onnx::TensorProto;

size_t BytesPerElement(int32_t type) {
  switch (type) {
    case TensorProto::DOUBLE:
    case TensorProto::INT64:
      return 8;
    case TensorProto::FLOAT:
    case TensorProto::INT32:
      return 4;
    case TensorProto::FLOAT16:
    case TensorProto::BFLOAT16:
    case TensorProto::INT16:
      return 2;
    default:
      return 1;
  }
}

// A float tensor's little-endian bytes, whichever field holds them.
StatusOr<std::string> StoredBytes(const TensorProto& t) {
  if (IsDeferred(t) || t.data_location() == TensorProto::EXTERNAL) {
    return ModelError("tensor '" + t.name() + "': its data is not in memory");
  }
  REINIT_RETURN_IF_ERROR(CheckStoredSize(t));
  if (!t.raw_data().empty()) return t.raw_data();
  std::string out;
  switch (t.data_type()) {
    case TensorProto::FLOAT:
      out.assign(reinterpret_cast<const char*>(t.float_data().data()), 4 * t.float_data_size());
      break;
    case TensorProto::DOUBLE:
      out.assign(reinterpret_cast<const char*>(t.double_data().data()), 8 * t.double_data_size());
      break;
    default:  // FLOAT16, BFLOAT16: one 16-bit pattern per int32
      for (int32_t v : t.int32_data()) {
        out += static_cast<char>(v & 0xff);
        out += static_cast<char>((v >> 8) & 0xff);
      }
  }
  return out;
}

// The transform's elements of `bytes` (source dims `dims`, `size` bytes each), in order.
StatusOr<std::string> ApplyTransform(const std::string& bytes, size_t size, const Transform& t,
                                     const std::string& what) {
  std::string gathered;
  if (t.chunks.empty()) {
    gathered = bytes;
  } else {
    for (const auto& [offset, count] : t.chunks) {
      if (offset < 0 || count < 0 || (offset + count) * size > bytes.size()) {
        return ModelError(what + ": elements [" + std::to_string(offset) + ", " +
                          std::to_string(offset + count) + ") are outside the tensor");
      }
      gathered.append(bytes, offset * size, count * size);
    }
  }
  int64_t count = 1;
  for (int64_t d : t.dims) count *= d;
  if (static_cast<size_t>(count) * size != gathered.size()) {
    return ModelError(what + ": " + std::to_string(gathered.size() / size) +
                      " elements do not fill the dims " + JsonInts(t.dims));
  }
  if (t.perm.empty()) return gathered;
  // out[i0, i1, ...] = in[...] with in's axis perm[k] = out's axis k.
  const size_t rank = t.dims.size();
  std::vector<int64_t> in_stride(rank, 1), out_dims(rank), stride(rank);
  for (size_t k = rank; k-- > 1;) in_stride[k - 1] = in_stride[k] * t.dims[k];
  for (size_t k = 0; k < rank; ++k) {
    out_dims[k] = t.dims[t.perm[k]];
    stride[k] = in_stride[t.perm[k]];
  }
  std::string out(gathered.size(), '\0');
  std::vector<int64_t> index(rank, 0);
  int64_t from = 0;
  for (int64_t i = 0; i < count; ++i) {
    std::memcpy(&out[i * size], &gathered[from * size], size);
    for (size_t k = rank; k-- > 0;) {
      from += stride[k];
      if (++index[k] < out_dims[k]) break;
      from -= stride[k] * out_dims[k];
      index[k] = 0;
    }
  }
  return out;
}

// bfloat16 -> float32, exactly (the top half of the float's bits).
std::string WidenBFloat16(const std::string& bytes) {
  std::string out;
  out.reserve(bytes.size() * 2);
  for (size_t i = 0; i + 1 < bytes.size(); i += 2) {
    out += '\0';
    out += '\0';
    out += bytes[i];
    out += bytes[i + 1];
  }
  return out;
}

struct PlanEntry {
  const proto::Layer* layer;
  const proto::TensorInit* init;
};

std::unordered_map<std::string, PlanEntry> IndexPlan(const proto::Plan& plan) {
  std::unordered_map<std::string, PlanEntry> out;
  for (const auto& layer : plan.layers()) {
    auto add = [&](const proto::TensorInit& t) {
      if (!t.name().empty()) out.emplace(t.name(), PlanEntry{&layer, &t});
    };
    if (layer.has_weight()) add(layer.weight());
    if (layer.has_bias()) add(layer.bias());
    for (const auto& p : layer.params()) add(p);
  }
  return out;
}

const PlanEntry* Lookup(const std::unordered_map<std::string, PlanEntry>& plan,
                        const NamedTensor& t) {
  for (const std::string* name : {&t.reads, &t.source}) {
    auto it = plan.find(*name);
    if (it != plan.end()) return &it->second;
  }
  return nullptr;
}

// One sidecar entry: where the tensor came from and what the plan did to it.
std::string TensorEntry(const NamedTensor& n, const ExportedTensor& t,
                        const std::vector<int64_t>& source_shape, const PlanEntry* p, bool as_is) {
  std::string role = n.role, scheme, layer;
  double std = 0, bound = 0, gain = 0;
  std::string blocks;
  if (p) {
    layer = p->layer->name();
    if (!p->init->role().empty()) role = p->init->role();
    scheme = p->layer->skipped().empty() ? p->init->scheme() : "keep";
    std = p->init->std();
    bound = p->init->bound();
    gain = p->init->gain();
    for (const auto& b : p->init->blocks()) {
      blocks += std::string(blocks.empty() ? "" : ",") + "{\"name\":" + JsonString(b.name()) +
                ",\"scheme\":" + JsonString(b.scheme()) + ",\"std\":" + JsonNumber(b.std()) +
                ",\"bound\":" + JsonNumber(b.bound()) + ",\"gain\":" + JsonNumber(b.gain()) + "}";
    }
  }
  if (n.source.empty()) {
    scheme = "synthesized";
  } else if (as_is) {
    scheme = "as-is";
  } else if (!p) {
    scheme = "unchanged (not in the plan)";
  }
  std::string e = "{\"name\":" + JsonString(n.name) +
                  ",\"source\":" + (n.source.empty() ? "null" : JsonString(n.source));
  if (n.reads != n.source && !n.reads.empty()) e += ",\"reads\":" + JsonString(n.reads);
  e += ",\"node\":" + JsonString(n.node) + ",\"layer\":" + JsonString(layer) +
       ",\"role\":" + JsonString(role) + ",\"scheme\":" + JsonString(scheme) +
       ",\"std\":" + JsonNumber(std) + ",\"bound\":" + JsonNumber(bound) +
       ",\"gain\":" + JsonNumber(gain) + ",\"shape\":" + JsonInts(t.shape) +
       ",\"dtype\":" + JsonString(SafetensorsDtype(t.data_type)) +
       ",\"source_shape\":" + JsonInts(source_shape) +
       ",\"transform\":" + JsonString(n.transform.text);
  if (!blocks.empty()) e += ",\"blocks\":[" + blocks + "]";
  return e + "}";
}

std::string UnmappedEntry(const UnmappedTensor& u) {
  return "{\"kind\":" + JsonString(u.kind) +
         ",\"source\":" + (u.source.empty() ? "null" : JsonString(u.source)) +
         ",\"name\":" + JsonString(u.name) + ",\"node\":" + JsonString(u.node) +
         ",\"reason\":" + JsonString(u.reason) + "}";
}

std::string Sidecar(const ExportResult& r, const std::vector<std::string>& entries) {
  std::string s = "{\n";
  for (const auto& [k, v] : r.metadata) {
    s += ' ';
    s += JsonString(k) + ": " + JsonString(v) + ",\n";
  }
  auto list = [](const std::vector<std::string>& items) {
    std::string out = "[";
    for (size_t i = 0; i < items.size(); ++i) {
      out += i ? ",\n  " : "\n  ";
      out += items[i];
    }
    return out + (items.empty() ? "]" : "\n ]");
  };
  std::vector<std::string> unmapped, warnings;
  for (const auto& u : r.mapping.unmapped) unmapped.push_back(UnmappedEntry(u));
  for (const auto& w : r.mapping.warnings) warnings.push_back(JsonString(w));
  s += " \"tensors\": " + list(entries) + ",\n";
  s += " \"unmapped\": " + list(unmapped) + ",\n";
  s += " \"warnings\": " + list(warnings) + "\n}\n";
  return s;
}

}  // namespace

// safetensors' "format" metadata as the loaders read it: Hugging Face transformers loads a file
// whose format is pt, tf, flax or mlx (torch names: pt; Keras names: tf) and refuses any other;
// ONNX names are no framework's state dict.
const char* LoaderFormat(NameStyle names) {
  return names == NameStyle::kTorch ? "pt" : names == NameStyle::kKeras ? "tf" : "onnx";
}

const char* ExportFormatName(ExportFormat format) {
  return format == ExportFormat::kNpz ? "npz" : "safetensors";
}

StatusOr<ExportFormat> ChooseExportFormat(const std::string& path, const std::string& format) {
  if (format == "safetensors") return ExportFormat::kSafetensors;
  if (format == "npz") return ExportFormat::kNpz;
  if (!format.empty()) {
    return UsageError("unknown --format '" + format + "'; expected safetensors or npz");
  }
  auto ends = [&](const std::string& ext) {
    return path.size() > ext.size() && path.compare(path.size() - ext.size(), ext.size(), ext) == 0;
  };
  if (ends(".safetensors")) return ExportFormat::kSafetensors;
  if (ends(".npz")) return ExportFormat::kNpz;
  return UsageError("cannot tell the format of '" + path +
                    "' from its extension: name it .safetensors or .npz, or pass --format");
}

StatusOr<ExportResult> ExportParameters(const onnx::ModelProto& model, const proto::Plan& plan,
                                        const ExportOptions& options) {
  onnx::ModelProto applied;
  if (!options.as_is) {
    applied.CopyFrom(model);
    REINIT_RETURN_IF_ERROR(ApplyPlan(plan, &applied));
  }
  const onnx::ModelProto& values = options.as_is ? model : applied;
  const auto planned = IndexPlan(plan);
  auto redrawn = [&](const std::string& name) {
    auto it = planned.find(name);
    return !options.as_is && it != planned.end() && it->second.layer->skipped().empty() &&
           it->second.init->scheme() != "keep";
  };
  ExportResult result;
  // Framework names are found on the model as it came (apply turns a shared tensor's Identity
  // into an initializer of its own, which would hide that it was shared); ONNX names are those
  // of the model as written. The values are the applied model's.
  result.mapping =
      MapNames(options.names == NameStyle::kOnnx ? values : model, options.names, redrawn);
  result.metadata = {{"reinit_version", REINIT_VERSION},
                     {"model", options.model_path},
                     {"names", NameStyleName(options.names)},
                     {"format", LoaderFormat(options.names)},
                     {"file_format", ExportFormatName(options.format)},
                     {"scheme", options.as_is ? "as-is" : plan.scheme()},
                     {"seed", std::to_string(plan.seed())},
                     {"as_is", options.as_is ? "true" : "false"}};
  GraphIndex index(values.graph());
  std::vector<std::string> entries;
  for (NamedTensor& n : result.mapping.tensors) {
    ExportedTensor t;
    t.name = n.name;
    std::vector<int64_t> source_shape;
    if (n.source.empty()) {
      t.data_type = n.synthesized_type;
      t.bytes.assign(BytesPerElement(t.data_type), '\0');
      std::memcpy(t.bytes.data(), &n.synthesized_value, t.bytes.size());
    } else {
      // A copy apply made for the layer that reads it is that layer's tensor.
      const TensorProto* copy = index.Initializer(n.reads);
      if (copy) n.source = n.reads;
      const TensorProto* source = copy ? copy : index.ConstantTensor(n.source);
      if (!source) return ModelError("tensor '" + n.source + "' is gone from the model");
      auto bytes = StoredBytes(*source);
      if (!bytes.ok()) return bytes.status();
      source_shape.assign(source->dims().begin(), source->dims().end());
      if (n.transform.dims.empty() && n.transform.chunks.empty()) n.transform.dims = source_shape;
      const std::string what = "'" + n.name + "' from '" + n.source + "'";
      auto moved = ApplyTransform(*bytes, BytesPerElement(source->data_type()), n.transform, what);
      if (!moved.ok()) return moved.status();
      t.data_type = source->data_type();
      t.shape = TransformedShape(n.transform);
      t.bytes = std::move(*moved);
      if (options.format == ExportFormat::kNpz && t.data_type == TensorProto::BFLOAT16) {
        t.data_type = TensorProto::FLOAT;
        t.bytes = WidenBFloat16(t.bytes);
        n.transform.text += "; bfloat16 widened to float32 (numpy has no bfloat16)";
      }
    }
    entries.push_back(TensorEntry(n, t, source_shape, Lookup(planned, n), options.as_is));
    result.tensors.push_back(std::move(t));
  }
  result.sidecar = Sidecar(result, entries);
  return result;
}

StatusOr<std::string> EncodeExport(const ExportResult& result, ExportFormat format) {
  if (format == ExportFormat::kNpz) return EncodeNpz(result.tensors);
  return EncodeSafetensors(result.tensors, result.metadata);
}

}  // namespace reinit
