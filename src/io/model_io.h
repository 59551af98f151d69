// Model IO: reading a .onnx file (and the external data it refers to) into a ModelProto,
// validating a model with the onnx checker and shape inference, and writing a model, deferred
// tensors streamed from their sources or producers (see TensorStore), — with its
// external data laid out as asked — so that it appears atomically: every file is written under
// a temporary name beside its target, flushed, and renamed into place only when all are
// complete. Exceptions from protobuf and onnx stop here and become Status values that name the
// file.
#pragma once

#include <onnx/onnx_pb.h>

#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "io/external_data.h"
#include "io/tensor_store.h"
#include "status.h"

namespace reinit {

// Parses the model and resolves its external data (see ResolveExternalData). Without a `store`
// the result holds every tensor's bytes in the model itself. With one, the main graph's
// initializers of at least store->min_bytes() are deferred to it (see TensorStore), whether
// their bytes are in the .onnx (raw_data) or in external data: they are never read into
// memory; the .onnx is scanned field by field and only the rest is parsed. `sources`, if
// given, receives where the external tensors came from, for SaveModel's kKeep. A file over
// 2 GiB is refused before parsing: protobuf cannot read it (its weights must be in external
// data).
StatusOr<onnx::ModelProto> LoadModel(const std::string& path, ExternalSources* sources = nullptr,
                                     TensorStore* store = nullptr);

// The model serialized in `bytes` (a model given in memory: the Python module), every tensor in
// the result; `name` stands for its path in messages. Refused as LoadModel refuses a file's
// bytes, and a tensor stored in external data: its location is relative to a folder that bytes
// do not have.
StatusOr<onnx::ModelProto> ParseModel(std::string_view bytes, const std::string& name);

// The onnx checker and strict shape inference, both on light copies of the model that leave
// out the weights' data (in the checker's copy each large or deferred initializer is a graph
// input of its type and shape instead), so models of any size, with deferred tensors too, are
// checked without copying their weights. A model newer than this onnx library knows (onnx
// 1.23.2: IR > 14 or an ai.onnx opset > 28) is not checked; a warning says so instead.
Status ValidateModel(const onnx::ModelProto& model, const std::string& what,
                     std::vector<std::string>* warnings);

// A copy of the model for shape questions: graph structure, value infos, and the initializers
// with their names, types and dims. Only tensors of at most 64 KiB keep their data (shapes,
// axes, scales that inference reads are small); the weights' data is left out, so the copy is
// small whatever the model's size.
onnx::ModelProto ShapeOnlyCopy(const onnx::ModelProto& model);

// The shapes `graph` declares for its inputs, value_info and outputs (the first one named wins),
// an unknown dim as -1; no inference.
std::unordered_map<std::string, std::vector<int64_t>> DeclaredShapes(const onnx::GraphProto& graph);

// Tensor name -> dims (-1 where unknown) for every tensor whose shape is declared or can be
// inferred by ONNX shape inference; best effort, never fails.
std::unordered_map<std::string, std::vector<int64_t>> StaticShapes(const onnx::ModelProto& model);

// Writes the model to `path` with its external data laid out by options.mode (see
// ExternalDataMode and PlanDataFiles; `sources` is what LoadModel recorded for the input, or
// empty). The data files are written first, then the .onnx, all as unnamed files (or under
// temporary names) that are put into place at the end, the .onnx last; on any failure none of
// the new files is left behind and no existing file has changed. If the process is killed
// instead, at any moment, the output is the previous one, whole, or the new one: the data files
// of a model already at `path` are never overwritten (PlanDataFiles gives the new ones another
// generation's name), and are removed only after the new .onnx has replaced it. Refused before
// anything is written: a .onnx that would exceed options.max_proto_bytes (protobuf's 2 GiB limit).
// The model is unchanged on return. `data_files`, if given, receives the paths of the data files
// written.
//
// Deferred tensors (`store`) are streamed: into their data file, or, those that stay in the
// .onnx, each written as a repeated `graph` field holding one initializer whose raw_data is
// streamed; protobuf merges repeated message fields, so the file parses as the same model.
Status SaveModel(onnx::ModelProto* model, const std::string& path, const ExternalSources& sources,
                 const SaveOptions& options, std::vector<std::string>* data_files = nullptr,
                 const TensorStore* store = nullptr);

// The data files that the model at `path` refers to through external data (relative
// locations, joined to its folder), if there is a model there that parses; empty otherwise.
// SaveModel leaves them alone until the new model replaces that one (see PlanDataFiles).
std::vector<std::string> DataFilesInUse(const std::string& path);

// What SaveModel would refuse before writing (the data files' layout and names, the .onnx's
// size), checked without writing anything, so that a caller can fail before the expensive work.
// The model is unchanged on return.
Status CheckSaveable(onnx::ModelProto* model, const std::string& path,
                     const ExternalSources& sources, const SaveOptions& options,
                     const TensorStore* store = nullptr);

// Everything in the .onnx (ExternalDataMode::kInline), written atomically.
Status SaveModelAtomic(const onnx::ModelProto& model, const std::string& path);

// Any file (a report), written atomically the same way.
Status WriteFileAtomic(const std::string& path, const std::string& bytes);

// Several files (path, bytes), all or none: each is written in full under a temporary name and
// they are put into place together; on any failure none is left and no file they would have
// replaced has changed.
Status WriteFilesAtomic(const std::vector<std::pair<std::string, std::string>>& files);

}  // namespace reinit
