#include "plan/drawable.h"

#include <cstdio>
#include <string>

#include "io/tensor_codec.h"
#include "io/tensor_store.h"
#include "plan/registry.h"

namespace reinit {

Status CheckMemory(const onnx::TensorProto& tensor, uint64_t limit) {
  auto count = ElementCount(tensor);
  if (!count.ok()) return count.status();
  const uint64_t width = tensor.data_type() == onnx::TensorProto::DOUBLE ? 8 : 4;
  uint64_t need = 0;
  const bool overflow = __builtin_mul_overflow(static_cast<uint64_t>(*count), 4 * width, &need);
  if (overflow || need > limit) {
    auto size_text = [](uint64_t bytes) {
      const char* units[] = {"bytes", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
      double v = static_cast<double>(bytes);
      int u = 0;
      for (; v >= 1024 && u < 6; ++u) v /= 1024;
      char text[32];
      std::snprintf(text, sizeof text, u == 0 ? "%.0f %s" : "%.3g %s", v, units[u]);
      return std::string(text);
    };
    std::string dims;
    for (int64_t d : tensor.dims()) dims += (dims.empty() ? "" : ", ") + std::to_string(d);
    return ModelError("shape [" + dims + "] (" + std::to_string(*count) +
                      " values) must be drawn whole in memory, about " +
                      (overflow ? std::string("more than 2^64 bytes") : size_text(need)) +
                      ", over the limit of " + size_text(limit) + " (raise it with --max-memory)");
  }
  return Status::Ok();
}

Status CheckDrawable(const proto::TensorInit& init, const onnx::TensorProto& tensor,
                     uint64_t max_memory) {
  if (init.scheme().empty() || init.scheme() == "keep" || max_memory == kNoMemoryLimit) {
    return Status::Ok();
  }
  auto scheme = FindScheme(init.scheme());
  const bool streamed = scheme.ok() && (*scheme)->distribution != Distribution::kOrthogonal &&
                        IsDeferred(tensor) && IsSupportedFloatType(tensor.data_type()) &&
                        init.blocks().empty() && init.view().empty() &&
                        init.quant_scale().empty() && init.materialize().empty();
  return streamed ? Status::Ok() : CheckMemory(tensor, max_memory);
}

}  // namespace reinit
