// Deferred tensor bytes: how reinit handles weights of any size in little memory.
//
// Loading leaves each large initializer's bytes where they are, in the .onnx file or in its
// external data, and marks the tensor as deferred: data_location = EXTERNAL with one
// external_data entry {"reinit.deferred": "<payload index>"} and nothing else. The payload says
// where the bytes are. Apply gives a deferred tensor it re-initializes a producer, a recipe
// that writes the new bytes in order, instead of the bytes themselves. Saving streams each
// deferred tensor's bytes, from its producer or copied from its source, piece by piece to
// the output. So memory holds the graph and the small tensors, and a bounded buffer; never
// the weights.
//
// The marker is the only state in the tensor, so copies of the model and of the tensor
// still refer to the same payload (Duplicate gives a copy its own). Every stage that reads
// tensor values either never sees a deferred tensor (small tensors, which shapes, indices,
// scales and zero points are, stay in memory) or asks the store (Resolve) to bring the bytes
// in first.
#pragma once

#include <onnx/onnx_pb.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "status.h"

namespace reinit {

// Receives a tensor's bytes in consecutive pieces.
using ByteSink = std::function<Status(const char* data, size_t size)>;
// Writes a tensor's new bytes, all of them, in order, to the sink.
using Producer = std::function<Status(const ByteSink& sink)>;

// True for a tensor whose bytes are held by a TensorStore.
bool IsDeferred(const onnx::TensorProto& tensor);

class TensorStore {
 public:
  TensorStore() = default;
  ~TensorStore();
  TensorStore(const TensorStore&) = delete;
  TensorStore& operator=(const TensorStore&) = delete;

  // Tensors of at least this many bytes are deferred when loaded; smaller ones are read into
  // memory. Shapes, axes, indices, scales and zero points that the plan reads are far smaller.
  static constexpr uint64_t kDefaultMinBytes = 1 << 20;
  uint64_t min_bytes() const { return min_bytes_; }
  void set_min_bytes(uint64_t bytes) { min_bytes_ = bytes; }

  // Opens a file that payloads will read from; returns its index. `path` names it in messages.
  StatusOr<int> AddFile(const std::string& path);

  // Marks `tensor` as deferred, its bytes being `length` bytes at `offset` of file `file`.
  void Defer(onnx::TensorProto* tensor, int file, uint64_t offset, uint64_t length);

  // The number of bytes a deferred tensor holds.
  uint64_t Length(const onnx::TensorProto& tensor) const;
  // True if apply gave the tensor a producer.
  bool HasProducer(const onnx::TensorProto& tensor) const;

  // Gives `copy`, a CopyFrom of a deferred tensor, a payload of its own with the same bytes.
  void Duplicate(onnx::TensorProto* copy);

  // Replaces the tensor's bytes by what `producer` writes (exactly Length(tensor) bytes).
  void SetProducer(const onnx::TensorProto& tensor, Producer producer);

  // Reads a deferred tensor's bytes into raw_data and ends its deferral (producers are run).
  Status Resolve(onnx::TensorProto* tensor);

  // Writes the tensor's bytes to the sink, in pieces of at most kPieceBytes: the producer's, or
  // those of its source. Checks that exactly Length(tensor) bytes were written.
  Status Stream(const onnx::TensorProto& tensor, const ByteSink& sink) const;

  // The whole size of the deferred tensors, and a callback told of every piece streamed, for a
  // progress display.
  uint64_t TotalBytes() const;
  void SetProgress(std::function<void(uint64_t bytes)> progress) {
    progress_ = std::move(progress);
  }

  static constexpr size_t kPieceBytes = 8 << 20;

 private:
  struct File {
    std::string path;
    int fd = -1;
  };
  struct Payload {
    int file = -1;  // -1: no source bytes (zeros)
    uint64_t offset = 0;
    uint64_t length = 0;
    std::shared_ptr<const Producer> producer;
  };
  // The payload index of a deferred tensor, or -1.
  int IndexOf(const onnx::TensorProto& tensor) const;
  void Mark(onnx::TensorProto* tensor, size_t index);

  std::vector<File> files_;
  std::vector<Payload> payloads_;
  std::function<void(uint64_t)> progress_;
  uint64_t min_bytes_ = kDefaultMinBytes;
};

}  // namespace reinit
