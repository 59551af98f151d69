#include "export/npz.h"

#include <onnx/onnx_pb.h>
#include <zlib.h>

#include <algorithm>
#include <cstdint>

namespace reinit {

namespace {

struct Descr {
  int32_t onnx;
  const char* descr;
};
constexpr Descr kDescrs[] = {
    {onnx::TensorProto::FLOAT, "<f4"},  {onnx::TensorProto::FLOAT16, "<f2"},
    {onnx::TensorProto::DOUBLE, "<f8"}, {onnx::TensorProto::INT64, "<i8"},
    {onnx::TensorProto::INT32, "<i4"},  {onnx::TensorProto::INT16, "<i2"},
    {onnx::TensorProto::INT8, "|i1"},   {onnx::TensorProto::UINT8, "|u1"},
    {onnx::TensorProto::BOOL, "|b1"},
};

void Put16(std::string* out, uint32_t v) {
  out->push_back(static_cast<char>(v & 0xff));
  out->push_back(static_cast<char>((v >> 8) & 0xff));
}
void Put32(std::string* out, uint32_t v) {
  Put16(out, v & 0xffff);
  Put16(out, v >> 16);
}

// The fields a local file header and a central directory entry share, from "version needed"
// to the extra field's length. Time and date are fixed (1980-01-01 00:00): the same arrays
// give the same bytes.
std::string EntryFields(const std::string& name, uint32_t crc, uint32_t size) {
  const bool ascii = std::all_of(name.begin(), name.end(),
                                 [](char c) { return static_cast<unsigned char>(c) < 0x80; });
  std::string f;
  Put16(&f, 20);                  // version needed: 2.0
  Put16(&f, ascii ? 0 : 0x0800);  // bit 11: the name is UTF-8
  Put16(&f, 0);                   // stored
  Put16(&f, 0);                   // time
  Put16(&f, 0x21);                // date: 1980-01-01
  Put32(&f, crc);
  Put32(&f, size);  // compressed size
  Put32(&f, size);
  Put16(&f, static_cast<uint32_t>(name.size()));
  Put16(&f, 0);  // extra field length
  return f;
}

std::string ShapeTuple(const std::vector<int64_t>& shape) {
  std::string s = "(";
  for (size_t i = 0; i < shape.size(); ++i) {
    if (i) s += ", ";
    s += std::to_string(shape[i]);
  }
  return s + (shape.size() == 1 ? ",)" : ")");
}

}  // namespace

std::string NpyDescr(int32_t onnx_type) {
  for (const auto& d : kDescrs) {
    if (d.onnx == onnx_type) return d.descr;
  }
  return "";
}

StatusOr<std::string> EncodeNpy(const ExportedTensor& tensor) {
  const std::string descr = NpyDescr(tensor.data_type);
  if (descr.empty()) {
    return ModelError("tensor '" + tensor.name + "': numpy has no dtype for its type");
  }
  std::string dict = "{'descr': '" + descr +
                     "', 'fortran_order': False, 'shape': " + ShapeTuple(tensor.shape) + ", }";
  // magic (6) + version (2) + length (2) + dict + padding + '\n': a multiple of 64.
  const size_t unpadded = 10 + dict.size() + 1;
  dict.append((64 - unpadded % 64) % 64, ' ');
  dict += '\n';
  if (dict.size() > 0xffff) return ModelError("tensor '" + tensor.name + "': .npy header too long");
  std::string out = "\x93NUMPY";
  out += '\x01';
  out += '\x00';
  Put16(&out, static_cast<uint32_t>(dict.size()));
  out += dict;
  out += tensor.bytes;
  return out;
}

StatusOr<std::string> EncodeNpz(const std::vector<ExportedTensor>& tensors) {
  constexpr uint64_t kLimit = 0xffffffffu;  // past this, sizes and offsets need zip64
  if (tensors.size() >= 0xffff) {
    return ModelError(std::to_string(tensors.size()) +
                      " arrays: an .npz of 65535 or more needs zip64, which reinit does not "
                      "write; use .safetensors");
  }
  std::string out, directory;
  for (const auto& t : tensors) {
    auto npy = EncodeNpy(t);
    if (!npy.ok()) return npy.status();
    const std::string name = t.name + ".npy";
    const uint64_t offset = out.size();
    if (npy->size() >= kLimit || offset + npy->size() + name.size() + 30 >= kLimit) {
      return ModelError("tensor '" + t.name +
                        "': an .npz of 4 GiB or more needs zip64, which reinit does not write; "
                        "use .safetensors");
    }
    const uint32_t crc = static_cast<uint32_t>(
        crc32(0L, reinterpret_cast<const Bytef*>(npy->data()), static_cast<uInt>(npy->size())));
    const std::string fields = EntryFields(name, crc, static_cast<uint32_t>(npy->size()));
    Put32(&out, 0x04034b50);
    out += fields + name + *npy;
    Put32(&directory, 0x02014b50);
    Put16(&directory, 20);  // made by: 2.0, MS-DOS attributes
    directory += fields;
    Put16(&directory, 0);  // comment length
    Put16(&directory, 0);  // disk
    Put16(&directory, 0);  // internal attributes
    Put32(&directory, 0);  // external attributes
    Put32(&directory, static_cast<uint32_t>(offset));
    directory += name;
  }
  if (out.size() + directory.size() + 22 >= kLimit) {
    return ModelError(
        "an .npz of 4 GiB or more needs zip64, which reinit does not write; use "
        ".safetensors");
  }
  const uint32_t directory_offset = static_cast<uint32_t>(out.size());
  out += directory;
  Put32(&out, 0x06054b50);
  Put16(&out, 0);  // this disk
  Put16(&out, 0);  // the directory's disk
  Put16(&out, static_cast<uint32_t>(tensors.size()));
  Put16(&out, static_cast<uint32_t>(tensors.size()));
  Put32(&out, static_cast<uint32_t>(directory.size()));
  Put32(&out, directory_offset);
  Put16(&out, 0);  // comment length
  return out;
}

}  // namespace reinit
