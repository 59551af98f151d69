#include "model_io.h"

#include <fcntl.h>
#include <google/protobuf/io/zero_copy_stream_impl.h>
#include <onnx/checker.h>
#include <onnx/shape_inference/implementation.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <functional>
#include <memory>

#include "tensor_codec.h"

namespace reinit {

namespace {

constexpr int64_t kKnownIrVersion = 8;
constexpr int64_t kKnownOpset = 17;
// ShapeOnlyCopy keeps the data of tensors up to this size.
constexpr size_t kShapeDataBytes = 64 << 10;

std::string Errno() { return std::strerror(errno); }

std::string DirOf(const std::string& path) {
  const size_t slash = path.find_last_of('/');
  if (slash == std::string::npos) return ".";
  return slash == 0 ? "/" : path.substr(0, slash);
}

size_t StoredBytes(const onnx::TensorProto& t) {
  size_t bytes = t.raw_data().size() + 4 * (t.float_data_size() + t.int32_data_size()) +
                 8 * (t.int64_data_size() + t.double_data_size() + t.uint64_data_size());
  for (const auto& s : t.string_data()) bytes += s.size();
  return bytes;
}

Status WriteAt(int fd, const std::string& bytes, uint64_t offset, const std::string& path) {
  uint64_t done = 0;
  while (done < bytes.size()) {
    const size_t chunk = static_cast<size_t>(std::min<uint64_t>(bytes.size() - done, 1u << 30));
    const ssize_t n = pwrite(fd, bytes.data() + done, chunk, static_cast<off_t>(offset + done));
    if (n < 0) {
      if (errno == EINTR) continue;
      return IoError("cannot write '" + path + "': " + Errno());
    }
    done += static_cast<uint64_t>(n);
  }
  return Status::Ok();
}

// New files written under temporary names beside their targets and renamed into place, in the
// order they were added, by Commit(). Until Commit succeeds, the destructor removes every new
// file (temporary or already renamed, putting back a file it replaced) and every folder it
// created.
class FileTransaction {
 public:
  FileTransaction() = default;
  FileTransaction(const FileTransaction&) = delete;
  FileTransaction& operator=(const FileTransaction&) = delete;
  ~FileTransaction() {
    if (committed_) return;
    for (auto it = files_.rbegin(); it != files_.rend(); ++it) {
      if (!it->renamed) {
        unlink(it->temp.c_str());
      } else if (!it->backup.empty()) {
        rename(it->backup.c_str(), it->path.c_str());
      } else {
        unlink(it->path.c_str());
      }
    }
    for (auto it = folders_.rbegin(); it != folders_.rend(); ++it) rmdir(it->c_str());
  }

  // Creates the missing folders of `location` (a relative path of a file) below `base`.
  Status MakeFolders(const std::string& base, const std::string& location) {
    for (size_t slash = location.find('/'); slash != std::string::npos;
         slash = location.find('/', slash + 1)) {
      const std::string folder = base + location.substr(0, slash);
      if (mkdir(folder.c_str(), 0777) == 0) {
        folders_.push_back(folder);
      } else if (errno != EEXIST) {
        return IoError("cannot create the folder '" + folder + "': " + Errno());
      }
    }
    return Status::Ok();
  }

  // A temporary file beside `path`, filled by `fill`, flushed and closed.
  Status Add(const std::string& path, const std::function<Status(int fd)>& fill) {
    std::string temp = path + ".tmp.XXXXXX";
    const int fd = mkstemp(temp.data());
    if (fd < 0) return IoError("cannot create a file beside '" + path + "': " + Errno());
    files_.push_back({temp, path, "", false});
    Status s = fill(fd);
    if (s.ok() && fsync(fd) != 0) s = IoError("cannot flush '" + path + "': " + Errno());
    const mode_t mask = umask(0);
    umask(mask);
    if (s.ok() && fchmod(fd, 0666 & ~mask) != 0) {
      s = IoError("cannot set permissions of '" + path + "': " + Errno());
    }
    if (close(fd) != 0 && s.ok()) s = IoError("cannot write '" + path + "': " + Errno());
    return s;
  }

  // Renames every file into place; a file it replaces is kept under a hard link until the end,
  // so that a failure can put it back.
  Status Commit() {
    for (File& f : files_) {
      struct stat st;
      if (lstat(f.path.c_str(), &st) == 0 && !S_ISDIR(st.st_mode)) {
        const std::string backup = f.temp + ".old";
        if (link(f.path.c_str(), backup.c_str()) == 0) f.backup = backup;
      }
      if (rename(f.temp.c_str(), f.path.c_str()) != 0) {
        Status s = IoError("cannot rename the temporary file to '" + f.path + "': " + Errno());
        if (!f.backup.empty()) unlink(f.backup.c_str());
        f.backup.clear();
        return s;
      }
      f.renamed = true;
    }
    committed_ = true;
    for (const File& f : files_) {
      if (!f.backup.empty()) unlink(f.backup.c_str());
    }
    // Make the renames durable; best effort.
    std::vector<std::string> dirs;
    for (const File& f : files_) dirs.push_back(DirOf(f.path));
    std::sort(dirs.begin(), dirs.end());
    dirs.erase(std::unique(dirs.begin(), dirs.end()), dirs.end());
    for (const auto& d : dirs) {
      const int fd = open(d.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
      if (fd >= 0) {
        fsync(fd);
        close(fd);
      }
    }
    return Status::Ok();
  }

 private:
  struct File {
    std::string temp, path, backup;
    bool renamed = false;
  };
  std::vector<File> files_;
  std::vector<std::string> folders_;
  bool committed_ = false;
};

// Moves the bytes of the tensors that go to data files out of the model (swaps, no copies) and
// records their external_data entries instead; the destructor puts everything back.
class Detached {
 public:
  explicit Detached(const std::vector<DataFile>& files) {
    for (const DataFile& file : files) {
      for (const DataFile::Entry& e : file.entries) {
        auto saved = std::make_unique<Saved>();
        onnx::TensorProto* t = e.tensor;
        saved->tensor = t;
        saved->bytes.swap(*t->mutable_raw_data());
        t->clear_raw_data();
        saved->external.Swap(t->mutable_external_data());
        saved->had_location = t->has_data_location();
        saved->location = t->data_location();
        auto add = [t](const char* key, const std::string& value) {
          auto* entry = t->add_external_data();
          entry->set_key(key);
          entry->set_value(value);
        };
        add("location", file.location);
        add("offset", std::to_string(e.offset));
        add("length", std::to_string(e.length));
        t->set_data_location(onnx::TensorProto::EXTERNAL);
        saved_.push_back(std::move(saved));
      }
    }
  }
  Detached(const Detached&) = delete;
  Detached& operator=(const Detached&) = delete;
  ~Detached() {
    for (auto& s : saved_) {
      onnx::TensorProto* t = s->tensor;
      t->clear_external_data();
      t->mutable_external_data()->Swap(&s->external);
      t->mutable_raw_data()->swap(s->bytes);
      if (s->had_location) {
        t->set_data_location(s->location);
      } else {
        t->clear_data_location();
      }
    }
  }
  // The bytes of the i-th entry, counting through the files in order.
  const std::string& bytes(size_t i) const { return saved_[i]->bytes; }

 private:
  struct Saved {
    onnx::TensorProto* tensor = nullptr;
    std::string bytes;
    google::protobuf::RepeatedPtrField<onnx::StringStringEntryProto> external;
    bool had_location = false;
    onnx::TensorProto::DataLocation location = onnx::TensorProto::DEFAULT;
  };
  std::vector<std::unique_ptr<Saved>> saved_;
};

std::string TooLarge(const std::string& path, size_t size, const SaveOptions& options) {
  const std::string limit =
      options.max_proto_bytes == kProtobufLimit
          ? "protobuf's 2 GiB limit"
          : "the limit of " + std::to_string(options.max_proto_bytes) + " bytes";
  const std::string head = "'" + path + "': the model would be " + std::to_string(size) + " bytes";
  switch (options.mode) {
    case ExternalDataMode::kInline:
      return head + " with every tensor inside, over " + limit +
             "; write the weights as external data (--external-data keep or single)";
    case ExternalDataMode::kKeep:
      return head + " with only the tensors that were external in the input outside, over " +
             limit + "; use --external-data single";
    case ExternalDataMode::kSingle:
      break;
  }
  return head + " even with every raw_data initializer of at least " +
         std::to_string(options.single_min_bytes) + " bytes in external data, over " + limit;
}

// The .onnx, with the external tensors already moved out, must fit protobuf's limit.
Status CheckSize(const onnx::ModelProto& model, const std::string& path,
                 const SaveOptions& options) {
  const size_t size = model.ByteSizeLong();
  if (size > options.max_proto_bytes || size > kProtobufLimit) {
    return ModelError(TooLarge(path, size, options));
  }
  return Status::Ok();
}

}  // namespace

onnx::ModelProto ShapeOnlyCopy(const onnx::ModelProto& model) {
  onnx::ModelProto light;
  light.set_ir_version(model.ir_version());
  *light.mutable_opset_import() = model.opset_import();
  *light.mutable_functions() = model.functions();
  light.set_producer_name(model.producer_name());
  const onnx::GraphProto& g = model.graph();
  onnx::GraphProto* lg = light.mutable_graph();
  lg->set_name(g.name());
  *lg->mutable_node() = g.node();
  *lg->mutable_input() = g.input();
  *lg->mutable_output() = g.output();
  *lg->mutable_value_info() = g.value_info();
  *lg->mutable_sparse_initializer() = g.sparse_initializer();
  for (const auto& t : g.initializer()) {
    onnx::TensorProto* c = lg->add_initializer();
    if (StoredBytes(t) <= kShapeDataBytes && t.data_location() != onnx::TensorProto::EXTERNAL) {
      c->CopyFrom(t);  // may be a shape, axes or scales that inference reads
      continue;
    }
    c->set_name(t.name());
    c->set_data_type(t.data_type());
    *c->mutable_dims() = t.dims();
  }
  return light;
}

std::unordered_map<std::string, std::vector<int64_t>> StaticShapes(const onnx::ModelProto& model) {
  onnx::ModelProto light = ShapeOnlyCopy(model);
  try {
    onnx::shape_inference::InferShapes(light);
  } catch (const std::exception&) {
    // Best effort: whatever was declared or inferred before the failure is still used.
  }
  std::unordered_map<std::string, std::vector<int64_t>> shapes;
  auto add = [&](const onnx::ValueInfoProto& v) {
    if (!v.type().has_tensor_type() || !v.type().tensor_type().has_shape()) return;
    std::vector<int64_t> dims;
    for (const auto& d : v.type().tensor_type().shape().dim()) {
      dims.push_back(d.has_dim_value() ? d.dim_value() : -1);
    }
    shapes.emplace(v.name(), std::move(dims));
  };
  for (const auto& v : light.graph().input()) add(v);
  for (const auto& v : light.graph().value_info()) add(v);
  for (const auto& v : light.graph().output()) add(v);
  return shapes;
}

StatusOr<onnx::ModelProto> LoadModel(const std::string& path, ExternalSources* sources) {
  struct stat st;
  if (stat(path.c_str(), &st) != 0) return IoError("cannot open '" + path + "': " + Errno());
  if (S_ISDIR(st.st_mode)) return IoError("'" + path + "' is a directory, not a model file");
  if (S_ISREG(st.st_mode) && st.st_size == 0) {
    return ModelError("'" + path + "' is empty, not an ONNX model");
  }
  if (S_ISREG(st.st_mode) && static_cast<uint64_t>(st.st_size) > kProtobufLimit) {
    return ModelError("'" + path + "' is larger than 2 GiB (" + std::to_string(st.st_size) +
                      " bytes); protobuf cannot read it: the weights must be in external data");
  }
  const int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return IoError("cannot open '" + path + "': " + Errno());
  onnx::ModelProto model;
  bool parsed = false;
  int read_errno = 0;
  {
    // Parsed from the file in chunks: no second copy of the file's bytes in memory.
    google::protobuf::io::FileInputStream in(fd);
    parsed = model.ParseFromZeroCopyStream(&in);
    read_errno = in.GetErrno();
  }
  close(fd);
  if (read_errno != 0) {
    return IoError("cannot read '" + path + "': " + std::strerror(read_errno));
  }
  if (!parsed) {
    return ModelError("'" + path + "' is not an ONNX model (protobuf parsing failed)");
  }
  if (!model.has_graph()) {
    return ModelError("'" + path + "' is not an ONNX model: it has no graph");
  }
  ExternalSources local;
  REINIT_RETURN_IF_ERROR(ResolveExternalData(path, &model, sources ? sources : &local));
  return model;
}

Status ValidateModel(const onnx::ModelProto& model, const std::string& what,
                     std::vector<std::string>* warnings) {
  int64_t opset = 0;
  for (const auto& o : model.opset_import()) {
    if (o.domain().empty() || o.domain() == "ai.onnx") opset = o.version();
  }
  if (model.ir_version() > kKnownIrVersion || opset > kKnownOpset) {
    warnings->push_back(what + ": IR version " + std::to_string(model.ir_version()) + ", opset " +
                        std::to_string(opset) + " is newer than this onnx library checks (IR " +
                        std::to_string(kKnownIrVersion) + ", opset " + std::to_string(kKnownOpset) +
                        "); written without the checker");
    return Status::Ok();
  }
  try {
    onnx::checker::check_model(model);
  } catch (const std::exception& e) {
    return ModelError(what + " fails the ONNX checker: " + e.what());
  }
  onnx::ModelProto light = ShapeOnlyCopy(model);
  try {
    onnx::ShapeInferenceOptions options(/*check_type=*/true, /*strict_mode=*/1);
    onnx::shape_inference::InferShapes(light, onnx::OpSchemaRegistry::Instance(), options);
  } catch (const std::exception& e) {
    return ModelError(what + " fails ONNX shape inference: " + e.what());
  }
  return Status::Ok();
}

Status CheckSaveable(onnx::ModelProto* model, const std::string& path,
                     const ExternalSources& sources, const SaveOptions& options) {
  auto files = PlanDataFiles(model, path, sources, options);
  if (!files.ok()) return files.status();
  const Detached detached(*files);
  return CheckSize(*model, path, options);
}

Status SaveModel(onnx::ModelProto* model, const std::string& path, const ExternalSources& sources,
                 const SaveOptions& options, std::vector<std::string>* data_files) {
  auto files = PlanDataFiles(model, path, sources, options);
  if (!files.ok()) return files.status();
  const Detached detached(*files);
  REINIT_RETURN_IF_ERROR(CheckSize(*model, path, options));
  FileTransaction transaction;
  size_t k = 0;
  for (const DataFile& file : *files) {
    const std::string base = file.path.substr(0, file.path.size() - file.location.size());
    REINIT_RETURN_IF_ERROR(transaction.MakeFolders(base, file.location));
    REINIT_RETURN_IF_ERROR(transaction.Add(file.path, [&](int fd) -> Status {
      for (const DataFile::Entry& e : file.entries) {
        REINIT_RETURN_IF_ERROR(WriteAt(fd, detached.bytes(k++), e.offset, file.path));
      }
      if (ftruncate(fd, static_cast<off_t>(file.size)) != 0) {
        return IoError("cannot write '" + file.path + "': " + Errno());
      }
      return Status::Ok();
    }));
  }
  std::string bytes;
  if (!model->SerializeToString(&bytes)) {
    return ModelError("cannot serialize the model for '" + path + "'");
  }
  REINIT_RETURN_IF_ERROR(
      transaction.Add(path, [&](int fd) { return WriteAt(fd, bytes, 0, path); }));
  REINIT_RETURN_IF_ERROR(transaction.Commit());
  if (data_files) {
    for (const DataFile& file : *files) data_files->push_back(file.path);
  }
  return Status::Ok();
}

Status SaveModelAtomic(const onnx::ModelProto& model, const std::string& path) {
  std::string bytes;
  if (model.ByteSizeLong() > kProtobufLimit || !model.SerializeToString(&bytes)) {
    return ModelError("cannot serialize the model for '" + path +
                      "': protobuf cannot write a message over 2 GiB (external data is needed)");
  }
  FileTransaction transaction;
  REINIT_RETURN_IF_ERROR(
      transaction.Add(path, [&](int fd) { return WriteAt(fd, bytes, 0, path); }));
  return transaction.Commit();
}

}  // namespace reinit
