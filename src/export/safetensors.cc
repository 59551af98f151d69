#include "export/safetensors.h"

#include <onnx/onnx_pb.h>

#include <algorithm>
#include <numeric>

#include "export/json.h"

namespace reinit {

namespace {

struct Dtype {
  int32_t onnx;
  const char* name;
  size_t size;
};
constexpr Dtype kDtypes[] = {
    {onnx::TensorProto::FLOAT, "F32", 4},     {onnx::TensorProto::FLOAT16, "F16", 2},
    {onnx::TensorProto::BFLOAT16, "BF16", 2}, {onnx::TensorProto::DOUBLE, "F64", 8},
    {onnx::TensorProto::INT64, "I64", 8},     {onnx::TensorProto::INT32, "I32", 4},
    {onnx::TensorProto::INT16, "I16", 2},     {onnx::TensorProto::INT8, "I8", 1},
    {onnx::TensorProto::UINT8, "U8", 1},      {onnx::TensorProto::BOOL, "BOOL", 1},
};

const Dtype* Find(int32_t onnx_type) {
  for (const auto& d : kDtypes) {
    if (d.onnx == onnx_type) return &d;
  }
  return nullptr;
}

}  // namespace

std::string SafetensorsDtype(int32_t onnx_type) {
  const Dtype* d = Find(onnx_type);
  return d ? d->name : "";
}

StatusOr<std::string> EncodeSafetensors(const std::vector<ExportedTensor>& tensors,
                                        const std::map<std::string, std::string>& metadata) {
  std::vector<size_t> order(tensors.size());
  std::iota(order.begin(), order.end(), 0);
  for (const auto& t : tensors) {
    const Dtype* d = Find(t.data_type);
    if (!d) return ModelError("tensor '" + t.name + "': safetensors has no dtype for its type");
    int64_t count = 1;
    for (int64_t v : t.shape) count *= v;
    if (t.bytes.size() != static_cast<size_t>(count) * d->size) {
      return ModelError("tensor '" + t.name + "': " + std::to_string(t.bytes.size()) +
                        " bytes for shape " + JsonInts(t.shape));
    }
  }
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) {
    return Find(tensors[a].data_type)->size > Find(tensors[b].data_type)->size;
  });
  std::string header = "{";
  if (!metadata.empty()) {
    header += "\"__metadata__\":{";
    bool first = true;
    for (const auto& [k, v] : metadata) {
      if (!first) header += ',';
      header += JsonString(k) + ":" + JsonString(v);
      first = false;
    }
    header += "}";
  }
  uint64_t offset = 0;
  for (size_t i : order) {
    const ExportedTensor& t = tensors[i];
    const uint64_t end = offset + t.bytes.size();
    if (header.size() > 1) header += ',';
    header += JsonString(t.name) + ":{\"dtype\":\"" + Find(t.data_type)->name +
              "\",\"shape\":" + JsonInts(t.shape) + ",\"data_offsets\":[" + std::to_string(offset) +
              "," + std::to_string(end) + "]}";
    offset = end;
  }
  header += "}";
  header.append((8 - header.size() % 8) % 8, ' ');  // the data starts 8-byte aligned
  std::string out;
  out.reserve(8 + header.size() + offset);
  const uint64_t n = header.size();
  for (int b = 0; b < 8; ++b) out += static_cast<char>((n >> (8 * b)) & 0xff);
  out += header;
  for (size_t i : order) out += tensors[i].bytes;
  return out;
}

}  // namespace reinit
