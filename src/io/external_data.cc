#include "io/external_data.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <charconv>
#include <climits>
#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>
#include <unordered_map>

#include "io/tensor_codec.h"

namespace reinit {

namespace {

std::string ErrnoText() { return std::strerror(errno); }

// ---- Visiting every tensor --------------------------------------------------------------------

class TensorCollector {
 public:
  explicit TensorCollector(std::vector<TensorRef>* out) : out_(out) {}

  void Graph(onnx::GraphProto* graph, const std::string& prefix) {
    for (int i = 0; i < graph->initializer_size(); ++i) {
      onnx::TensorProto* t = graph->mutable_initializer(i);
      Add(prefix + "initializer/" + Id(t->name(), i), t, true, "initializer " + std::to_string(i));
    }
    for (int i = 0; i < graph->sparse_initializer_size(); ++i) {
      Sparse(prefix + "sparse_initializer/" + std::to_string(i),
             graph->mutable_sparse_initializer(i), "sparse initializer " + std::to_string(i));
    }
    Nodes(graph->mutable_node(), prefix);
  }

  void Nodes(google::protobuf::RepeatedPtrField<onnx::NodeProto>* nodes,
             const std::string& prefix) {
    for (int i = 0; i < nodes->size(); ++i) {
      onnx::NodeProto* node = nodes->Mutable(i);
      const std::string where = prefix + "node/" + Id(node->name(), i) + "/";
      const std::string label = node->name().empty()
                                    ? node->op_type() + " node " + std::to_string(i)
                                    : node->op_type() + " '" + node->name() + "'";
      for (auto& attr : *node->mutable_attribute()) {
        const std::string key = where + attr.name();
        const std::string what = "attribute '" + attr.name() + "' of " + label;
        if (attr.has_t()) Add(key, attr.mutable_t(), false, what);
        for (int j = 0; j < attr.tensors_size(); ++j) {
          Add(key + "/" + std::to_string(j), attr.mutable_tensors(j), false, what);
        }
        if (attr.has_sparse_tensor()) Sparse(key + "/sparse", attr.mutable_sparse_tensor(), what);
        for (int j = 0; j < attr.sparse_tensors_size(); ++j) {
          Sparse(key + "/sparse/" + std::to_string(j), attr.mutable_sparse_tensors(j), what);
        }
        if (attr.has_g()) Graph(attr.mutable_g(), key + "/");
        for (int j = 0; j < attr.graphs_size(); ++j) {
          Graph(attr.mutable_graphs(j), key + "/" + std::to_string(j) + "/");
        }
      }
    }
  }

 private:
  // Names where there are any, so that keys survive tensors or nodes added or removed before.
  static std::string Id(const std::string& name, int index) {
    return name.empty() ? "#" + std::to_string(index) : "'" + name + "'";
  }

  void Add(std::string key, onnx::TensorProto* tensor, bool initializer,
           const std::string& fallback) {
    std::string what =
        tensor->name().empty() ? "tensor of " + fallback : "tensor '" + tensor->name() + "'";
    out_->push_back({std::move(key), std::move(what), initializer, tensor});
  }
  void Sparse(const std::string& key, onnx::SparseTensorProto* sparse, const std::string& what) {
    if (sparse->has_values()) Add(key + "/values", sparse->mutable_values(), false, what);
    if (sparse->has_indices()) Add(key + "/indices", sparse->mutable_indices(), false, what);
  }

  std::vector<TensorRef>* out_;
};

// ---- Paths ------------------------------------------------------------------------------------

std::string DirName(const std::string& path) {
  const size_t slash = path.find_last_of('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return path.substr(0, slash);
}

std::string BaseName(const std::string& path) {
  const size_t slash = path.find_last_of('/');
  return slash == std::string::npos ? path : path.substr(slash + 1);
}

std::string JoinPath(const std::string& dir, const std::string& name) {
  if (dir == ".") return name;
  return dir.back() == '/' ? dir + name : dir + "/" + name;
}

std::string RealPath(const std::string& path) {
  std::unique_ptr<char, decltype(&std::free)> real(realpath(path.c_str(), nullptr), &std::free);
  return real ? std::string(real.get()) : std::string();
}

struct FileId {
  dev_t dev = 0;
  ino_t ino = 0;
  bool operator==(const FileId& o) const { return dev == o.dev && ino == o.ino; }
};

bool IdOf(const std::string& path, FileId* id) {
  struct stat st;
  if (stat(path.c_str(), &st) != 0) return false;
  *id = {st.st_dev, st.st_ino};
  return true;
}

// A location as it must be written: relative, '/'-separated. Returns the normalized form (no
// "." components, "x/.." folded) or an explanation of why it is refused.
bool NormalizeLocation(const std::string& location, std::string* normalized, std::string* why) {
  if (location.empty()) {
    *why = "is empty";
    return false;
  }
  const bool drive = location.size() >= 2 && location[1] == ':' &&
                     std::isalpha(static_cast<unsigned char>(location[0]));
  if (location[0] == '/' || location[0] == '\\' || drive) {
    *why = "is an absolute path; locations must be relative to the model's folder";
    return false;
  }
  std::vector<std::string> parts;
  size_t start = 0;
  while (start <= location.size()) {
    size_t end = location.find('/', start);
    if (end == std::string::npos) end = location.size();
    const std::string part = location.substr(start, end - start);
    if (part == "..") {
      if (parts.empty()) {
        *why = "leaves the model's folder ('..')";
        return false;
      }
      parts.pop_back();
    } else if (!part.empty() && part != ".") {
      parts.push_back(part);
    }
    start = end + 1;
  }
  if (parts.empty()) {
    *why = "names the model's folder, not a file";
    return false;
  }
  normalized->clear();
  for (const auto& p : parts) *normalized += (normalized->empty() ? "" : "/") + p;
  return true;
}

// ---- Sizes ------------------------------------------------------------------------------------

bool ParseUint(const std::string& text, uint64_t* value) {
  const char* end = text.data() + text.size();
  const auto [ptr, ec] = std::from_chars(text.data(), end, *value);
  return !text.empty() && ec == std::errc() && ptr == end;
}

bool HasInFileData(const onnx::TensorProto& t) {
  return !t.raw_data().empty() || t.float_data_size() > 0 || t.int32_data_size() > 0 ||
         t.string_data_size() > 0 || t.int64_data_size() > 0 || t.double_data_size() > 0 ||
         t.uint64_data_size() > 0;
}

uint64_t AlignUp(uint64_t value, uint64_t alignment) {
  if (alignment <= 1) return value;
  return (value + alignment - 1) / alignment * alignment;
}

std::string DimsText(const onnx::TensorProto& t) {
  std::string s = "[";
  for (int i = 0; i < t.dims_size(); ++i) s += (i ? ", " : "") + std::to_string(t.dims(i));
  return s + "]";
}

// ---- Reading ----------------------------------------------------------------------------------

struct OpenData {
  int fd = -1;
  uint64_t size = 0;
  int store_file = -1;  // its index in the TensorStore, once a tensor is deferred to it
};

class DataFiles {
 public:
  DataFiles(std::string model_path, ExternalSources* sources, TensorStore* store)
      : store_(store),
        model_path_(std::move(model_path)),
        dir_(DirName(model_path_)),
        real_dir_(RealPath(dir_)),
        sources_(sources) {}
  ~DataFiles() {
    for (auto& [location, file] : open_) close(file.fd);
  }
  DataFiles(const DataFiles&) = delete;
  DataFiles& operator=(const DataFiles&) = delete;

  // `location` is normalized; `fail` prefixes messages with the model, tensor and location.
  StatusOr<OpenData> Open(const std::string& location) {
    if (auto it = open_.find(location); it != open_.end()) return it->second;
    if (real_dir_.empty()) {
      return IoError("cannot resolve the model's folder '" + dir_ + "': " + ErrnoText());
    }
    const std::string path = JoinPath(dir_, location);
    const std::string real = RealPath(path);
    if (real.empty()) {
      if (errno == ENOENT) return ModelError("file '" + path + "' does not exist");
      return IoError("cannot resolve '" + path + "': " + ErrnoText());
    }
    const std::string inside = real_dir_ == "/" ? real_dir_ : real_dir_ + "/";
    if (real.compare(0, inside.size(), inside) != 0) {
      return ModelError("leaves the model's folder: '" + path + "' resolves to '" + real +
                        "' (through a symbolic link)");
    }
    const int fd = open(real.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return IoError("cannot open '" + path + "': " + ErrnoText());
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
      close(fd);
      return ModelError("'" + path + "' is not a regular file");
    }
    OpenData data{fd, static_cast<uint64_t>(st.st_size)};
    open_.emplace(location, data);
    sources_->files.push_back(real);
    return data;
  }

  const std::string& dir() const { return dir_; }

  // The store's index of the file at `location` (opened by Open before), added on first use.
  StatusOr<int> StoreFile(const std::string& location) {
    OpenData& data = open_.at(location);
    if (data.store_file < 0) {
      auto index = store_->AddFile(RealPath(JoinPath(dir_, location)));
      if (!index.ok()) return index.status();
      data.store_file = *index;
    }
    return data.store_file;
  }

  TensorStore* store() const { return store_; }

 private:
  TensorStore* store_;
  std::string model_path_;
  std::string dir_;
  std::string real_dir_;
  ExternalSources* sources_;
  std::map<std::string, OpenData> open_;
};

Status ReadFully(int fd, uint64_t offset, uint64_t length, std::string* out) {
  out->resize(length);
  uint64_t done = 0;
  while (done < length) {
    const size_t chunk = static_cast<size_t>(std::min<uint64_t>(length - done, 1u << 30));
    const ssize_t n = pread(fd, out->data() + done, chunk, static_cast<off_t>(offset + done));
    if (n < 0) {
      if (errno == EINTR) continue;
      return IoError("cannot read: " + ErrnoText());
    }
    if (n == 0) return IoError("the file ended while reading (it changed while being read?)");
    done += static_cast<uint64_t>(n);
  }
  return Status::Ok();
}

// The external_data entries of a tensor that say where its bytes are.
struct ExternalEntries {
  std::string location;
  bool has_location = false;
  uint64_t offset = 0, length = 0;
  bool has_length = false;
};

Status ReadExternalEntries(const onnx::TensorProto& t, ExternalEntries* entries) {
  for (const auto& entry : t.external_data()) {
    if (entry.key() == "location") {
      entries->location = entry.value();
      entries->has_location = true;
    } else if (entry.key() == "offset") {
      if (!ParseUint(entry.value(), &entries->offset)) {
        return ModelError("offset '" + entry.value() + "' is not a byte count");
      }
    } else if (entry.key() == "length") {
      if (!ParseUint(entry.value(), &entries->length)) {
        return ModelError("length '" + entry.value() + "' is not a byte count");
      }
      entries->has_length = true;
    }
  }
  return Status::Ok();
}

// The size the dims and type imply, where the type's width is known (`known`).
Status ImpliedBytes(const onnx::TensorProto& t, uint64_t* expected, bool* known) {
  const int bits = BitsPerElement(t.data_type());
  if (bits <= 0) return Status::Ok();
  auto count = ElementCount(t);
  if (!count.ok()) return count.status();
  uint64_t total_bits = 0;
  if (__builtin_mul_overflow(static_cast<uint64_t>(*count), static_cast<uint64_t>(bits),
                             &total_bits)) {
    return ModelError("dims " + DimsText(t) + " are too large");
  }
  *expected = (total_bits + 7) / 8;
  *known = true;
  return Status::Ok();
}

// Bytes [offset, offset + length) of the file at `location` become the tensor's: deferred to
// the store for a large graph initializer of known size, read into raw_data otherwise.
Status LoadOrDefer(const TensorRef& ref, const std::string& location, const OpenData& file,
                   uint64_t offset, uint64_t length, bool known, DataFiles* files) {
  onnx::TensorProto* t = ref.tensor;
  const bool defer = files->store() && known && ref.key.starts_with("graph/initializer/") &&
                     length >= files->store()->min_bytes();
  if (defer) {
    auto index = files->StoreFile(location);
    if (!index.ok()) return index.status();
    files->store()->Defer(t, *index, offset, length);
    return Status::Ok();
  }
  std::string bytes;
  REINIT_RETURN_IF_ERROR(ReadFully(file.fd, offset, length, &bytes)
                             .WithContext("'" + JoinPath(files->dir(), location) + "'"));
  t->set_raw_data(std::move(bytes));
  t->clear_external_data();
  t->clear_data_location();
  return Status::Ok();
}

// Resolves one external tensor; messages are completed by the caller with the model, tensor and
// location.
Status ResolveOne(const TensorRef& ref, DataFiles* files, ExternalSources* sources) {
  onnx::TensorProto* t = ref.tensor;
  ExternalEntries entries;
  REINIT_RETURN_IF_ERROR(ReadExternalEntries(*t, &entries));
  if (!entries.has_location) return ModelError("has no 'location' entry");
  std::string normalized, why;
  if (!NormalizeLocation(entries.location, &normalized, &why)) return ModelError(why);
  if (t->data_type() == onnx::TensorProto::STRING) {
    return ModelError("STRING tensors cannot be stored as external data");
  }
  if (HasInFileData(*t)) {
    return ModelError("is stored externally but also holds data in the model file");
  }
  uint64_t offset = entries.offset, length = entries.length;
  uint64_t expected = 0;
  bool known = false;
  REINIT_RETURN_IF_ERROR(ImpliedBytes(*t, &expected, &known));
  if (entries.has_length && known && length != expected) {
    return ModelError("length " + std::to_string(length) + " disagrees with dims " + DimsText(*t) +
                      " of " + DataTypeName(t->data_type()) + ", which take " +
                      std::to_string(expected) + " bytes");
  }
  auto file = files->Open(normalized);
  if (!file.ok()) return file.status();
  if (!entries.has_length) {
    if (known) {
      length = expected;
    } else if (offset <= file->size) {
      length = file->size - offset;  // the rest of the file, as onnx reads it
    }
  }
  uint64_t end = 0;
  if (__builtin_add_overflow(offset, length, &end) || end > file->size) {
    return ModelError("offset " + std::to_string(offset) + " + length " + std::to_string(length) +
                      " is past the end of '" + JoinPath(files->dir(), normalized) + "' (" +
                      std::to_string(file->size) + " bytes)");
  }
  REINIT_RETURN_IF_ERROR(LoadOrDefer(ref, normalized, *file, offset, length, known, files));
  sources->tensors.push_back({ref.key, t->name(), normalized, offset, length});
  sources->bytes += length;
  return Status::Ok();
}

// ---- Writing ----------------------------------------------------------------------------------

// "out.onnx" -> "out"; other names are kept whole.
std::string Stem(const std::string& name) {
  constexpr std::string_view kExt = ".onnx";
  if (name.size() > kExt.size() && name.ends_with(kExt)) {
    return name.substr(0, name.size() - kExt.size());
  }
  return name;
}

std::string DerivedLocation(const std::string& output_name, const std::string& location) {
  std::string flat = location;
  std::replace(flat.begin(), flat.end(), '/', '_');
  return Stem(output_name) + "." + flat;
}

struct InputFile {
  std::string path;
  FileId id;
};

std::vector<InputFile> InputFiles(const ExternalSources& sources) {
  std::vector<InputFile> files;
  FileId id;
  if (!sources.model_path.empty() && IdOf(sources.model_path, &id)) {
    files.push_back({sources.model_path, id});
  }
  for (const auto& f : sources.files) {
    if (IdOf(f, &id)) files.push_back({f, id});
  }
  return files;
}

const InputFile* FindInput(const std::string& path, const std::vector<InputFile>& inputs) {
  FileId id;
  if (!IdOf(path, &id)) return nullptr;
  for (const auto& in : inputs) {
    if (in.id == id) return &in;
  }
  return nullptr;
}

// "dir/name.ext" -> "dir/name.<generation>.ext"; "dir/name" -> "dir/name.<generation>".
std::string Generation(const std::string& location, int generation) {
  const size_t slash = location.find_last_of('/');
  const size_t start = slash == std::string::npos ? 0 : slash + 1;
  const size_t dot = location.find_last_of('.');
  const std::string tag = "." + std::to_string(generation);
  if (dot == std::string::npos || dot <= start) return location + tag;
  return location.substr(0, dot) + tag + location.substr(dot);
}

// The data files of the model already at `output` (`in_use`) must stay as they are until the
// new .onnx replaces it, so that an interrupted write leaves the previous output whole: a new
// data file whose name is one of them is written under its next free generation instead
// (DataFile::replaces), and once the new model is in place the previous generations are
// removed (DataFile::stale).
void AvoidFilesInUse(const std::string& output, const std::vector<InputFile>& inputs,
                     const std::vector<std::string>& in_use, std::vector<DataFile>* files) {
  if (in_use.empty()) return;
  std::vector<FileId> used;
  for (const std::string& path : in_use) {
    FileId id;
    if (IdOf(path, &id)) used.push_back(id);
  }
  auto is_used = [&](const std::string& path) {
    FileId id;
    return IdOf(path, &id) && std::find(used.begin(), used.end(), id) != used.end();
  };
  const std::string out_dir = DirName(output);
  auto taken = [&](const std::string& path, size_t self) {
    if (path == output || is_used(path) || FindInput(path, inputs)) return true;
    for (size_t j = 0; j < files->size(); ++j) {
      if (j != self && (*files)[j].path == path) return true;
    }
    return false;
  };
  constexpr int kGenerations = 16;
  for (size_t i = 0; i < files->size(); ++i) {
    DataFile& file = (*files)[i];
    const std::string canonical = file.location;
    if (is_used(file.path)) {
      for (int g = 1; g <= kGenerations; ++g) {
        const std::string location = Generation(canonical, g);
        if (taken(JoinPath(out_dir, location), i)) continue;
        file.location = location;
        file.path = JoinPath(out_dir, location);
        break;
      }
      // Sixteen generations in use: the last resort is the name itself, replaced as before.
    }
    // Previous generations the output used, to remove once it no longer does.
    for (int g = 0; g <= kGenerations; ++g) {
      const std::string path = JoinPath(out_dir, g == 0 ? canonical : Generation(canonical, g));
      if (path == file.path || !is_used(path) || FindInput(path, inputs)) continue;
      file.stale.push_back(path);
    }
  }
  // Never remove what the new output writes.
  for (DataFile& file : *files) {
    std::erase_if(file.stale, [&](const std::string& path) {
      return std::any_of(files->begin(), files->end(),
                         [&](const DataFile& f) { return f.path == path; });
    });
  }
}

// ExternalDataMode::kSingle: "<output name>.data" with every initializer held in raw_data of at
// least single_min_bytes, each aligned; no file when there are none.
std::vector<DataFile> SingleDataFile(const std::vector<TensorRef>& refs, const std::string& out_dir,
                                     const std::string& out_name, const SaveOptions& options,
                                     const TensorStore* store) {
  std::vector<DataFile> files;
  DataFile file;
  file.location = out_name + ".data";
  file.path = JoinPath(out_dir, file.location);
  for (const TensorRef& ref : refs) {
    const uint64_t size = StoredRawBytes(*ref.tensor, store);
    if (!ref.initializer || (!ref.tensor->has_raw_data() && size == 0)) continue;
    if (size == 0 || size < options.single_min_bytes) continue;
    const uint64_t offset = AlignUp(file.size, options.alignment);
    file.entries.push_back({ref.tensor, offset, size});
    file.size = offset + size;
  }
  if (!file.entries.empty()) files.push_back(std::move(file));
  return files;
}

// The tensors that were external in the input and still hold their bytes, by input location;
// the locations in order of first use.
struct LocationGroups {
  std::vector<std::string> locations;
  std::map<std::string, std::vector<std::pair<const ExternalSource*, onnx::TensorProto*>>> groups;
};

LocationGroups GroupByInputLocation(const std::vector<TensorRef>& refs,
                                    const ExternalSources& sources) {
  std::unordered_map<std::string, const ExternalSource*> by_key;
  for (const auto& s : sources.tensors) by_key.emplace(s.key, &s);
  LocationGroups result;
  for (const TensorRef& ref : refs) {
    auto it = by_key.find(ref.key);
    if (it == by_key.end() || it->second->name != ref.tensor->name() ||
        (!ref.tensor->has_raw_data() && !IsDeferred(*ref.tensor))) {
      continue;
    }
    auto& group = result.groups[it->second->location];
    if (group.empty()) result.locations.push_back(it->second->location);
    group.emplace_back(it->second, ref.tensor);
  }
  return result;
}

// ExternalDataMode::kKeep: the files as in the input, the locations derived from the output's
// name when it is in the input's folder or a kept name would be one of the input's files.
std::vector<DataFile> KeptDataFiles(const std::vector<TensorRef>& refs,
                                    const ExternalSources& sources, const std::string& out_dir,
                                    const std::string& out_name,
                                    const std::vector<InputFile>& inputs,
                                    const SaveOptions& options, const TensorStore* store) {
  LocationGroups grouped = GroupByInputLocation(refs, sources);
  FileId in_dir, this_dir;
  bool derive =
      IdOf(DirName(sources.model_path), &in_dir) && IdOf(out_dir, &this_dir) && in_dir == this_dir;
  for (size_t i = 0; i < grouped.locations.size() && !derive; ++i) {
    derive = FindInput(JoinPath(out_dir, grouped.locations[i]), inputs) != nullptr;
  }
  std::vector<DataFile> files;
  for (const std::string& location : grouped.locations) {
    DataFile file;
    file.location = derive ? DerivedLocation(out_name, location) : location;
    file.path = JoinPath(out_dir, file.location);
    auto group = grouped.groups[location];
    std::stable_sort(group.begin(), group.end(), [](const auto& a, const auto& b) {
      return a.first->offset < b.first->offset;
    });
    // Each tensor where it was, unless it would overlap the one before (tensors that shared
    // bytes in the input) or changed size: then after the last one.
    for (const auto& [source, tensor] : group) {
      const uint64_t size = StoredRawBytes(*tensor, store);
      const bool stays = size == source->length && source->offset >= file.size;
      const uint64_t offset = stays ? source->offset : AlignUp(file.size, options.alignment);
      file.entries.push_back({tensor, offset, size});
      file.size = std::max(file.size, offset + size);
    }
    files.push_back(std::move(file));
  }
  return files;
}

// Refuses data files that would be the output model itself, one of the input's files, or one
// another data file is written to as well.
Status CheckDataFilePaths(const std::string& output, const std::vector<DataFile>& files,
                          const std::vector<InputFile>& inputs) {
  FileId output_id;
  const bool output_exists = IdOf(output, &output_id);
  for (size_t i = 0; i < files.size(); ++i) {
    const std::string& path = files[i].path;
    FileId id;
    if (path == output || (output_exists && IdOf(path, &id) && id == output_id)) {
      return ModelError("'" + output + "': its external data file '" + files[i].location +
                        "' would be the model file itself; choose another output name");
    }
    if (const InputFile* in = FindInput(path, inputs)) {
      return ModelError("'" + output + "': writing external data to '" + path +
                        "' would overwrite '" + in->path +
                        "', a file of the input model; choose another output name");
    }
    for (size_t j = 0; j < i; ++j) {
      if (files[j].path == path) {
        return ModelError("'" + output + "': external data locations '" + files[j].location +
                          "' and '" + files[i].location + "' would both be '" + path + "'");
      }
    }
  }
  return Status::Ok();
}

}  // namespace

// 17-20 FLOAT8*, 21 UINT4, 22 INT4, 23 FLOAT4E2M1, 24 FLOAT8E8M0: newer than this onnx library.
int BitsPerElement(int32_t type) {
  switch (type) {
    case onnx::TensorProto::UINT8:
    case onnx::TensorProto::INT8:
    case onnx::TensorProto::BOOL:
    case 17:
    case 18:
    case 19:
    case 20:
    case 24:
      return 8;
    case 21:
    case 22:
    case 23:
      return 4;
    case onnx::TensorProto::UINT16:
    case onnx::TensorProto::INT16:
    case onnx::TensorProto::FLOAT16:
    case onnx::TensorProto::BFLOAT16:
      return 16;
    case onnx::TensorProto::FLOAT:
    case onnx::TensorProto::INT32:
    case onnx::TensorProto::UINT32:
      return 32;
    case onnx::TensorProto::INT64:
    case onnx::TensorProto::UINT64:
    case onnx::TensorProto::DOUBLE:
    case onnx::TensorProto::COMPLEX64:
      return 64;
    case onnx::TensorProto::COMPLEX128:
      return 128;
    default:
      return 0;
  }
}

const char* ExternalDataModeName(ExternalDataMode mode) {
  switch (mode) {
    case ExternalDataMode::kKeep:
      return "keep";
    case ExternalDataMode::kSingle:
      return "single";
    case ExternalDataMode::kInline:
      return "inline";
  }
  return "?";
}

std::vector<TensorRef> AllTensors(onnx::ModelProto* model) {
  std::vector<TensorRef> refs;
  TensorCollector collect(&refs);
  if (model->has_graph()) collect.Graph(model->mutable_graph(), "graph/");
  for (int f = 0; f < model->functions_size(); ++f) {
    collect.Nodes(model->mutable_functions(f)->mutable_node(),
                  "function/" + std::to_string(f) + "/");
  }
  return refs;
}

uint64_t StoredRawBytes(const onnx::TensorProto& tensor, const TensorStore* store) {
  if (IsDeferred(tensor)) return store ? store->Length(tensor) : 0;
  return tensor.raw_data().size();
}

Status ResolveExternalData(const std::string& model_path, onnx::ModelProto* model,
                           ExternalSources* sources, TensorStore* store) {
  sources->model_path = model_path;
  DataFiles files(model_path, sources, store);
  for (const TensorRef& ref : AllTensors(model)) {
    if (ref.tensor->data_location() != onnx::TensorProto::EXTERNAL || IsDeferred(*ref.tensor)) {
      continue;
    }
    std::string location;
    for (const auto& e : ref.tensor->external_data()) {
      if (e.key() == "location") location = e.value();
    }
    Status s = ResolveOne(ref, &files, sources);
    if (!s.ok()) {
      return s.WithContext("'" + model_path + "': " + ref.what + ", external data '" + location +
                           "'");
    }
  }
  return Status::Ok();
}

StatusOr<std::vector<DataFile>> PlanDataFiles(onnx::ModelProto* model, const std::string& output,
                                              const ExternalSources& sources,
                                              const SaveOptions& options, const TensorStore* store,
                                              const std::vector<std::string>& in_use) {
  std::vector<DataFile> files;
  if (options.mode == ExternalDataMode::kInline) return files;
  const std::string out_dir = DirName(output);
  const std::string out_name = BaseName(output);
  const std::vector<TensorRef> refs = AllTensors(model);
  const std::vector<InputFile> inputs = InputFiles(sources);
  if (options.mode == ExternalDataMode::kSingle) {
    files = SingleDataFile(refs, out_dir, out_name, options, store);
  } else {
    files = KeptDataFiles(refs, sources, out_dir, out_name, inputs, options, store);
  }
  REINIT_RETURN_IF_ERROR(CheckDataFilePaths(output, files, inputs));
  AvoidFilesInUse(output, inputs, in_use, &files);
  return files;
}

}  // namespace reinit
