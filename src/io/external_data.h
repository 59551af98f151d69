// External data: tensors whose bytes live in files beside the .onnx (data_location = EXTERNAL,
// external_data keys "location", "offset", "length"; "checksum" is ignored and not written).
// Loading resolves every such tensor into raw_data and records where it came from, so every
// later stage sees ordinary tensors. Saving decides, per ExternalDataMode, which tensors go back
// out, into which files and at which offsets, and refuses any layout whose data files would be
// one of the input's files. model_io does the reading of the .onnx and the atomic writing.
#pragma once

#include <onnx/onnx_pb.h>

#include <cstdint>
#include <string>
#include <vector>

#include "io/tensor_store.h"
#include "status.h"

namespace reinit {

// Protobuf cannot parse or serialize a message larger than INT32_MAX bytes (2 GiB - 1).
inline constexpr uint64_t kProtobufLimit = 2147483647;

enum class ExternalDataMode {
  // Tensors external in the input stay external, grouped in files as in the input and at the
  // same offsets. The files keep the input's location strings, relative to the output's folder,
  // unless the output is in the input's folder (or a kept name would be one of the input's
  // files): then a location L becomes "<output stem>.L" with '/' in L replaced by '_', where
  // the stem is the output's file name without ".onnx" ("out.onnx" + "weights.bin" ->
  // "out.weights.bin").
  kKeep,
  // Every initializer held in raw_data of at least SaveOptions::single_min_bytes goes into one
  // file "<output file name>.data", each at an offset that is a multiple of
  // SaveOptions::alignment (so the file can be mmapped); the rest stays in the .onnx.
  kSingle,
  // Everything in the .onnx.
  kInline,
};

// Bits per element for the types whose width is known, including those newer than this onnx
// library; 0 otherwise (UNDEFINED, STRING, types it does not know).
int BitsPerElement(int32_t type);

// "keep", "single" or "inline".
const char* ExternalDataModeName(ExternalDataMode mode);

// A tensor anywhere in a model: graph and subgraph initializers, sparse initializers, tensors in
// node attributes (Constant), in functions too. `key` says where it is, by name where there is
// one ("graph/initializer/'w'", "graph/node/'c1'/value", "graph/node/#4/value" for a node
// without a name), so that it survives nodes and tensors added or removed elsewhere; `what`
// names the tensor for messages.
struct TensorRef {
  std::string key;
  std::string what;
  bool initializer = false;  // an initializer of the graph or of a subgraph
  onnx::TensorProto* tensor = nullptr;
};

// Every tensor of the model, in a fixed order.
std::vector<TensorRef> AllTensors(onnx::ModelProto* model);

// Where one tensor's bytes were in the input.
struct ExternalSource {
  std::string key;       // TensorRef::key
  std::string name;      // the tensor's name
  std::string location;  // normalized: relative, no "." or ".." components
  uint64_t offset = 0;
  uint64_t length = 0;
};

// What ResolveExternalData read.
struct ExternalSources {
  std::string model_path;          // the .onnx the locations are relative to
  std::vector<std::string> files;  // real paths of the data files read
  std::vector<ExternalSource> tensors;
  uint64_t bytes = 0;  // total bytes read
};

// Reads the bytes of every external tensor of `model`, loaded from `model_path`, into raw_data
// (data_location and external_data are cleared) and records each one in `sources`. Refused,
// with a message naming the model, the tensor and the location: an absolute location; one that
// leaves the model's folder, lexically ("..") or through a symlink; a file that is missing or
// not a regular file; an offset or length that is not a number; offset + length past the end of
// the file; a length that disagrees with dims x element size (for types of known size); a
// STRING tensor; a tensor that has both external and in-file data. Reads with pread: each
// tensor's bytes are held once, in its raw_data.
//
// With a `store`, initializers of the main graph of at least store->min_bytes() are checked
// the same way but deferred instead of read (see TensorStore): their bytes stay in the file.
Status ResolveExternalData(const std::string& model_path, onnx::ModelProto* model,
                           ExternalSources* sources, TensorStore* store = nullptr);

// The bytes a tensor holds in raw_data, or deferred in `store`; 0 for neither.
uint64_t StoredRawBytes(const onnx::TensorProto& tensor, const TensorStore* store);

struct SaveOptions {
  ExternalDataMode mode = ExternalDataMode::kKeep;
  // The largest .onnx that may be written; lowered by tests to exercise the 2 GiB paths.
  uint64_t max_proto_bytes = kProtobufLimit;
  uint64_t single_min_bytes = 1024;  // kSingle: smaller tensors stay in the .onnx
  uint64_t alignment = 4096;         // kSingle offsets; kKeep offsets that must move
  // Flush every file to the disk before renaming it into place (--fsync): the output then
  // survives a power failure too. Without it, the rename still makes the output appear whole
  // or not at all to every process, and after a crash of reinit itself; it is what cp and
  // onnx.save do, and several times faster for large models.
  bool fsync = false;
};

// One data file to write.
struct DataFile {
  std::string path;      // where it is written
  std::string location;  // what the model records, relative to the output's folder
  struct Entry {
    onnx::TensorProto* tensor = nullptr;
    uint64_t offset = 0;
    uint64_t length = 0;
  };
  std::vector<Entry> entries;
  uint64_t size = 0;  // end of the last entry
  // Data files of the model being replaced at the output that are earlier generations of this
  // one: removed once the new model is in place (see PlanDataFiles' `in_use`).
  std::vector<std::string> stale;
};

// Decides which tensors of `model` go into which data files for writing it to `output`, by
// options.mode (only tensors held in raw_data, or deferred in `store`, can be external). `sources`
// is what loading the input recorded (empty for a model built in memory). Refused, naming both
// files: a data file that would be one of the input's files (the model or a data file it read), the
// output model itself, or the same file as another data file.
//
// `in_use` lists the data files that the model already at `output` refers to (see
// DataFilesInUse). They are not overwritten: the .onnx is renamed into place last, and it alone
// must switch from the previous output to the new one, so that an interrupted write leaves the
// previous output whole. A data file whose name is in use is written under its next free
// generation, "w.bin" -> "w.1.bin" ("model.onnx.data" -> "model.onnx.1.data"), and the
// generations the previous output used are listed in DataFile::stale, to be removed after.
// Writing the same output again thus alternates between two names.
StatusOr<std::vector<DataFile>> PlanDataFiles(onnx::ModelProto* model, const std::string& output,
                                              const ExternalSources& sources,
                                              const SaveOptions& options,
                                              const TensorStore* store = nullptr,
                                              const std::vector<std::string>& in_use = {});

}  // namespace reinit
