#include "io/tensor_store.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstring>

namespace reinit {

namespace {

constexpr const char* kMarkerKey = "reinit.deferred";

const onnx::StringStringEntryProto* Marker(const onnx::TensorProto& tensor) {
  if (tensor.data_location() != onnx::TensorProto::EXTERNAL || tensor.external_data_size() != 1) {
    return nullptr;
  }
  const auto& entry = tensor.external_data(0);
  return entry.key() == kMarkerKey ? &entry : nullptr;
}

}  // namespace

bool IsDeferred(const onnx::TensorProto& tensor) { return Marker(tensor) != nullptr; }

TensorStore::~TensorStore() {
  for (const File& f : files_) close(f.fd);
}

StatusOr<int> TensorStore::AddFile(const std::string& path) {
  const int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return IoError("cannot open '" + path + "': " + std::strerror(errno));
  files_.push_back({path, fd});
  return static_cast<int>(files_.size() - 1);
}

int TensorStore::IndexOf(const onnx::TensorProto& tensor) const {
  const auto* marker = Marker(tensor);
  if (!marker) return -1;
  size_t index = 0;
  const std::string& v = marker->value();
  const auto [ptr, ec] = std::from_chars(v.data(), v.data() + v.size(), index);
  if (ec != std::errc() || ptr != v.data() + v.size() || index >= payloads_.size()) return -1;
  return static_cast<int>(index);
}

void TensorStore::Mark(onnx::TensorProto* tensor, size_t index) {
  tensor->clear_raw_data();
  tensor->clear_external_data();
  tensor->set_data_location(onnx::TensorProto::EXTERNAL);
  auto* entry = tensor->add_external_data();
  entry->set_key(kMarkerKey);
  entry->set_value(std::to_string(index));
}

void TensorStore::Defer(onnx::TensorProto* tensor, int file, uint64_t offset, uint64_t length) {
  payloads_.push_back({file, offset, length, nullptr});
  Mark(tensor, payloads_.size() - 1);
}

uint64_t TensorStore::Length(const onnx::TensorProto& tensor) const {
  const int i = IndexOf(tensor);
  return i < 0 ? 0 : payloads_[i].length;
}

bool TensorStore::HasProducer(const onnx::TensorProto& tensor) const {
  const int i = IndexOf(tensor);
  return i >= 0 && payloads_[i].producer != nullptr;
}

void TensorStore::Duplicate(onnx::TensorProto* copy) {
  const int i = IndexOf(*copy);
  if (i < 0) return;
  payloads_.push_back(payloads_[i]);
  Mark(copy, payloads_.size() - 1);
}

void TensorStore::SetProducer(const onnx::TensorProto& tensor, Producer producer) {
  const int i = IndexOf(tensor);
  if (i >= 0) payloads_[i].producer = std::make_shared<const Producer>(std::move(producer));
}

Status TensorStore::Resolve(onnx::TensorProto* tensor) {
  if (IndexOf(*tensor) < 0) return Status::Ok();
  std::string bytes;
  bytes.reserve(Length(*tensor));
  REINIT_RETURN_IF_ERROR(Stream(*tensor, [&bytes](const char* data, size_t size) {
    bytes.append(data, size);
    return Status::Ok();
  }));
  tensor->clear_external_data();
  tensor->clear_data_location();
  tensor->set_raw_data(std::move(bytes));
  return Status::Ok();
}

Status TensorStore::Stream(const onnx::TensorProto& tensor, const ByteSink& sink) const {
  const int i = IndexOf(tensor);
  if (i < 0) return ModelError("tensor '" + tensor.name() + "' has no deferred data");
  const Payload& p = payloads_[i];
  uint64_t written = 0;
  const ByteSink counted = [&](const char* data, size_t size) -> Status {
    written += size;
    if (written > p.length) return Status::Ok();  // reported below
    if (progress_) progress_(size);
    return sink(data, size);
  };
  if (p.producer) {
    REINIT_RETURN_IF_ERROR((*p.producer)(counted));
  } else {
    std::vector<char> buffer(static_cast<size_t>(std::min<uint64_t>(p.length, kPieceBytes)));
    for (uint64_t done = 0; done < p.length;) {
      const size_t n = static_cast<size_t>(std::min<uint64_t>(p.length - done, buffer.size()));
      if (p.file < 0) {
        std::fill(buffer.begin(), buffer.begin() + n, 0);
      } else {
        const ssize_t got =
            pread(files_[p.file].fd, buffer.data(), n, static_cast<off_t>(p.offset + done));
        if (got < 0 && errno == EINTR) continue;
        if (got < 0) {
          return IoError("cannot read '" + files_[p.file].path + "': " + std::strerror(errno));
        }
        if (got == 0) {
          return IoError("'" + files_[p.file].path + "' ended while reading tensor '" +
                         tensor.name() + "' (did it change while reinit ran?)");
        }
        REINIT_RETURN_IF_ERROR(counted(buffer.data(), static_cast<size_t>(got)));
        done += static_cast<uint64_t>(got);
        continue;
      }
      REINIT_RETURN_IF_ERROR(counted(buffer.data(), n));
      done += n;
    }
  }
  if (written != p.length) {
    return ModelError("tensor '" + tensor.name() + "': " + std::to_string(written) +
                      " bytes were produced for its " + std::to_string(p.length));
  }
  return Status::Ok();
}

uint64_t TensorStore::TotalBytes() const {
  uint64_t total = 0;
  for (const Payload& p : payloads_) total += p.length;
  return total;
}

}  // namespace reinit
