#include "io/codes.h"

#include <string>

#include "io/tensor_codec.h"

namespace reinit {

namespace {

using onnx::TensorProto;

std::string TensorNamed(const TensorProto& t) { return "tensor '" + t.name() + "'"; }

// The stored bytes the tensor's elements take, once the type and the storage are known good.
StatusOr<uint64_t> ExpectedCodeBytes(const TensorProto& t) {
  if (CodeBits(t.data_type()) == 0) {
    return ModelError(TensorNamed(t) + ": data type " + DataTypeName(t.data_type()) +
                      " is not stored in codes of 8 bits or fewer");
  }
  if (t.data_location() == TensorProto::EXTERNAL) {
    return ModelError(TensorNamed(t) + ": external data is not supported yet");
  }
  if (t.has_raw_data() && t.int32_data_size() > 0) {
    return ModelError(TensorNamed(t) + ": holds both raw_data and int32_data");
  }
  auto count = ElementCount(t);
  if (!count.ok()) return count.status();
  return CodeBytes(t.data_type(), static_cast<uint64_t>(*count));
}

}  // namespace

int CodeBits(int32_t data_type) {
  switch (data_type) {
    case TensorProto::INT8:
    case TensorProto::UINT8:
    case TensorProto::FLOAT8E4M3FN:
    case TensorProto::FLOAT8E4M3FNUZ:
    case TensorProto::FLOAT8E5M2:
    case TensorProto::FLOAT8E5M2FNUZ:
      return 8;
    case TensorProto::INT4:
    case TensorProto::UINT4:
    case TensorProto::FLOAT4E2M1:
      return 4;
    default:
      return 0;
  }
}

uint64_t CodeBytes(int32_t data_type, uint64_t count) {
  return CodeBits(data_type) == 4 ? count / 2 + count % 2 : count;
}

Status CheckCodes(const TensorProto& t) {
  auto bytes = ExpectedCodeBytes(t);
  if (!bytes.ok()) return bytes.status();
  const std::string what = std::to_string(*bytes) + " for " + std::to_string(*ElementCount(t)) +
                           " " + DataTypeName(t.data_type()) + " values";
  if (t.int32_data_size() > 0) {
    if (static_cast<uint64_t>(t.int32_data_size()) != *bytes) {
      return ModelError(TensorNamed(t) + ": int32_data holds " +
                        std::to_string(t.int32_data_size()) + " entries, expected " + what);
    }
    for (int32_t v : t.int32_data()) {
      if (v < -128 || v > 255) {
        return ModelError(TensorNamed(t) + ": int32_data holds " + std::to_string(v) +
                          ", not a byte");
      }
    }
    return Status::Ok();
  }
  if (t.raw_data().size() != *bytes) {
    return ModelError(TensorNamed(t) + ": raw_data holds " + std::to_string(t.raw_data().size()) +
                      " bytes, expected " + what);
  }
  return Status::Ok();
}

StatusOr<std::vector<uint8_t>> ReadCodes(const TensorProto& t) {
  REINIT_RETURN_IF_ERROR(CheckCodes(t));
  const size_t count = static_cast<size_t>(*ElementCount(t));
  const bool typed = t.int32_data_size() > 0;
  auto byte = [&](size_t i) -> uint8_t {
    return typed ? static_cast<uint8_t>(t.int32_data(static_cast<int>(i)))
                 : static_cast<uint8_t>(t.raw_data()[i]);
  };
  std::vector<uint8_t> codes(count);
  if (CodeBits(t.data_type()) == 8) {
    for (size_t i = 0; i < count; ++i) codes[i] = byte(i);
    return codes;
  }
  for (size_t i = 0; i < count; ++i) {
    codes[i] = static_cast<uint8_t>(byte(i / 2) >> (i % 2 ? 4 : 0)) & 0x0f;
  }
  return codes;
}

Status WriteCodes(std::span<const uint8_t> codes, TensorProto* t) {
  auto bytes = ExpectedCodeBytes(*t);
  if (!bytes.ok()) return bytes.status();
  if (codes.size() != static_cast<uint64_t>(*ElementCount(*t))) {
    return ModelError(TensorNamed(*t) + ": got " + std::to_string(codes.size()) +
                      " values to write, expected " + std::to_string(*ElementCount(*t)));
  }
  std::string packed(static_cast<size_t>(*bytes), '\0');
  auto* out = reinterpret_cast<uint8_t*>(packed.data());
  if (CodeBits(t->data_type()) == 4) {
    PackNibbles(codes, out);
  } else {
    std::copy(codes.begin(), codes.end(), out);
  }
  if (t->int32_data_size() == 0) {
    t->set_raw_data(std::move(packed));
    return Status::Ok();
  }
  auto* field = t->mutable_int32_data();
  field->Clear();
  field->Reserve(static_cast<int>(packed.size()));
  const bool int8 = t->data_type() == TensorProto::INT8;
  for (char c : packed) {
    field->Add(int8 ? static_cast<int8_t>(c) : static_cast<uint8_t>(c));
  }
  return Status::Ok();
}

void PackNibbles(std::span<const uint8_t> codes, uint8_t* out) {
  const size_t n = codes.size();
  for (size_t i = 0; i + 1 < n; i += 2) {
    out[i / 2] = static_cast<uint8_t>((codes[i] & 0x0f) | ((codes[i + 1] & 0x0f) << 4));
  }
  if (n % 2) out[n / 2] = codes[n - 1] & 0x0f;
}

}  // namespace reinit
