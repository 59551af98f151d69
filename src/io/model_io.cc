#include "io/model_io.h"

#include <dirent.h>
#include <fcntl.h>
#include <google/protobuf/io/zero_copy_stream_impl.h>
#include <onnx/checker.h>
#include <onnx/defs/schema.h>
#include <onnx/shape_inference/implementation.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <memory>
#include <random>

#include "io/inference_guard.h"
#include "io/tensor_codec.h"
#include "io/tensor_store.h"

namespace reinit {

namespace {

// The newest IR version and ai.onnx opset this onnx library checks (1.23: IR 14, opset 28).
const int64_t kKnownIrVersion = onnx::IR_VERSION;
const int64_t kKnownOpset =
    onnx::OpSchemaRegistry::DomainToVersionRange::Instance().Map().at(onnx::ONNX_DOMAIN).second;
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

// ---- Reading: the .onnx scanned field by field --------------------------------------------

// Wire types and the tags of the fields the scan and the streaming writer look into.
constexpr uint32_t kWireVarint = 0, kWireFixed64 = 1, kWireLength = 2, kWireFixed32 = 5;
constexpr uint32_t kModelGraphTag = (7 << 3) | kWireLength;        // ModelProto.graph
constexpr uint32_t kGraphInitializerTag = (5 << 3) | kWireLength;  // GraphProto.initializer
constexpr uint32_t kTensorRawDataTag = (9 << 3) | kWireLength;     // TensorProto.raw_data

void AppendVarint(std::string* out, uint64_t v) {
  while (v >= 0x80) {
    out->push_back(static_cast<char>(v | 0x80));
    v >>= 7;
  }
  out->push_back(static_cast<char>(v));
}

uint64_t VarintSize(uint64_t v) {
  uint64_t n = 1;
  for (; v >= 0x80; v >>= 7) ++n;
  return n;
}

// Copies the field whose tag was just read, tag included.
bool CopyField(google::protobuf::io::CodedInputStream* in, uint32_t tag, std::string* out) {
  AppendVarint(out, tag);
  switch (tag & 7) {
    case kWireVarint: {
      uint64_t v = 0;
      if (!in->ReadVarint64(&v)) return false;
      AppendVarint(out, v);
      return true;
    }
    case kWireFixed64: {
      uint64_t v = 0;
      if (!in->ReadLittleEndian64(&v)) return false;
      out->append(reinterpret_cast<const char*>(&v), 8);
      return true;
    }
    case kWireFixed32: {
      uint32_t v = 0;
      if (!in->ReadLittleEndian32(&v)) return false;
      out->append(reinterpret_cast<const char*>(&v), 4);
      return true;
    }
    case kWireLength: {
      uint32_t n = 0;
      std::string bytes;
      if (!in->ReadVarint32(&n) || !in->ReadString(&bytes, static_cast<int>(n))) return false;
      AppendVarint(out, n);
      out->append(bytes);
      return true;
    }
    default:  // groups: not in onnx.proto
      return false;
  }
}

// A main-graph initializer's raw_data left in the file.
struct RawInFile {
  int initializer = 0;  // index among the graph's initializers
  uint64_t offset = 0;
  uint64_t length = 0;
};

// Reads the model's bytes from `fd` into `skeleton`, all but the raw_data of the main graph's
// initializers of at least `min_bytes`, which are skipped (lseek) and listed in `raw`.
// Protobuf parses the skeleton as the model without those bytes. False for anything the scan
// does not expect (a malformed file among others): the caller then parses the whole file the
// ordinary way, which reports what is wrong.
bool ScanModel(int fd, uint64_t file_size, uint64_t min_bytes, std::string* skeleton,
               std::vector<RawInFile>* raw) {
  google::protobuf::io::FileInputStream file(fd);
  google::protobuf::io::CodedInputStream in(&file);
  int initializer = 0;
  while (const uint32_t tag = in.ReadTag()) {
    if (tag != kModelGraphTag) {
      if (!CopyField(&in, tag, skeleton)) return false;
      continue;
    }
    uint32_t graph_length = 0;
    if (!in.ReadVarint32(&graph_length)) return false;
    const auto graph_limit = in.PushLimit(static_cast<int>(graph_length));
    std::string graph;
    while (const uint32_t graph_tag = in.ReadTag()) {
      if (graph_tag != kGraphInitializerTag) {
        if (!CopyField(&in, graph_tag, &graph)) return false;
        continue;
      }
      uint32_t tensor_length = 0;
      if (!in.ReadVarint32(&tensor_length)) return false;
      const auto tensor_limit = in.PushLimit(static_cast<int>(tensor_length));
      std::string tensor;
      int raw_fields = 0;
      RawInFile left{initializer, 0, 0};
      while (const uint32_t tensor_tag = in.ReadTag()) {
        if (tensor_tag != kTensorRawDataTag) {
          if (!CopyField(&in, tensor_tag, &tensor)) return false;
          continue;
        }
        ++raw_fields;
        uint32_t n = 0;
        if (!in.ReadVarint32(&n)) return false;
        if (n == 0 || n < min_bytes) {
          std::string bytes;
          if (!in.ReadString(&bytes, static_cast<int>(n))) return false;
          AppendVarint(&tensor, tensor_tag);
          AppendVarint(&tensor, n);
          tensor += bytes;
          continue;
        }
        left.offset = static_cast<uint64_t>(in.CurrentPosition());
        left.length = n;
        // Skip seeks, and a seek past the end of the file succeeds: check the end here.
        if (left.offset + n > file_size || !in.Skip(static_cast<int>(n))) return false;
      }
      // Reading stops at the end of the file as at a limit: a message cut short ends early.
      if (!in.ConsumedEntireMessage() || in.BytesUntilLimit() != 0) return false;
      in.PopLimit(tensor_limit);
      // Several raw_data fields (the last one wins): left to the ordinary parser.
      if (left.length > 0 && raw_fields > 1) return false;
      if (left.length > 0) raw->push_back(left);
      AppendVarint(&graph, graph_tag);
      AppendVarint(&graph, tensor.size());
      graph += tensor;
      ++initializer;
    }
    if (!in.ConsumedEntireMessage() || in.BytesUntilLimit() != 0) return false;
    in.PopLimit(graph_limit);
    AppendVarint(skeleton, tag);
    AppendVarint(skeleton, graph.size());
    *skeleton += graph;
  }
  return in.ConsumedEntireMessage() && file.GetErrno() == 0;
}

// Defers the initializers whose raw_data ScanModel left in the file at `path`; one whose bytes
// cannot be taken at face value (another data field as well, external data, a length that
// disagrees with its dims and type, a type of unknown width) is read into memory instead, so
// that the ordinary checks report it.
Status DeferRaw(const std::string& path, int fd, const std::vector<RawInFile>& raw,
                onnx::ModelProto* model, TensorStore* store) {
  if (raw.empty()) return Status::Ok();
  auto file = store->AddFile(path);
  if (!file.ok()) return file.status();
  for (const RawInFile& r : raw) {
    if (r.initializer >= model->graph().initializer_size()) {
      return ModelError("'" + path + "': initializers changed while reading");
    }
    onnx::TensorProto* t = model->mutable_graph()->mutable_initializer(r.initializer);
    const int bits = BitsPerElement(t->data_type());
    auto count = ElementCount(*t);
    const bool plain =
        StoredBytes(*t) == 0 && t->data_location() != onnx::TensorProto::EXTERNAL &&
        t->external_data_size() == 0 && bits > 0 && count.ok() &&
        static_cast<uint64_t>(*count) <= (UINT64_MAX - 7) / static_cast<uint64_t>(bits) &&
        (static_cast<uint64_t>(*count) * bits + 7) / 8 == r.length;
    if (plain) {
      store->Defer(t, *file, r.offset, r.length);
      continue;
    }
    std::string bytes(r.length, '\0');
    for (uint64_t done = 0; done < r.length;) {
      const ssize_t n =
          pread(fd, bytes.data() + done, r.length - done, static_cast<off_t>(r.offset + done));
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) return IoError("cannot read '" + path + "': " + (n < 0 ? Errno() : "it ended"));
      done += static_cast<uint64_t>(n);
    }
    t->set_raw_data(std::move(bytes));
  }
  return Status::Ok();
}

// ---- Writing ----------------------------------------------------------------------------------

// The largest single write: larger ones were measured several times slower on the machines
// reinit is built on (dd bs=16M: 2.8 s for 1 GiB, bs=256K: 0.6 s), the page cache taking
// them less smoothly.
constexpr size_t kWriteChunk = 1 << 20;

Status WriteAt(int fd, std::string_view bytes, uint64_t offset, const std::string& path) {
  uint64_t done = 0;
  while (done < bytes.size()) {
    const size_t chunk = static_cast<size_t>(std::min<uint64_t>(bytes.size() - done, kWriteChunk));
    const ssize_t n = pwrite(fd, bytes.data() + done, chunk, static_cast<off_t>(offset + done));
    if (n < 0) {
      if (errno == EINTR) continue;
      return IoError("cannot write '" + path + "': " + Errno());
    }
    done += static_cast<uint64_t>(n);
  }
  return Status::Ok();
}

// Test hook: with REINIT_TEST_KILL_AT=N in the environment, the process kills itself (SIGKILL)
// at step N of putting an output into place: step k < number of files is just before the k-th
// file goes into place, the next one just before the previous output's data files are
// removed. The kill tests use it to reach each of these moments for certain.
void KillPointForTests(size_t step) {
  static const long at = [] {
    const char* e = std::getenv("REINIT_TEST_KILL_AT");
    return e ? std::strtol(e, nullptr, 10) : -1;
  }();
  if (at >= 0 && static_cast<size_t>(at) == step) raise(SIGKILL);
}

// New files, written where they cannot be seen and put into place, in the order they were
// added, by Commit(). A file is written as an unnamed file in its target's folder (O_TMPFILE):
// if the process dies before Commit, even by SIGKILL, the kernel frees it and nothing is left.
// At Commit it is linked in under its target's name, or, when the target exists, under a
// temporary name that a rename moves over the target at once (replacing it atomically). Where
// unnamed files are not available (a file system without O_TMPFILE, no /proc), or when too
// many are open at once, a file is written under its temporary name instead. Temporary names
// are "<target>.tmp.<pid>.<16 hex digits>"; a kill can leave one only in the moment between a
// link and a rename, or, without unnamed files, while a file is written, and the next
// transaction that writes into the same folder removes those whose process is gone. Until Commit
// succeeds, the destructor removes every new file (unnamed, temporary or already in place, putting
// back a file it replaced) and every folder it created.
class FileTransaction {
 public:
  explicit FileTransaction(bool durable) : durable_(durable) {}
  FileTransaction(const FileTransaction&) = delete;
  FileTransaction& operator=(const FileTransaction&) = delete;
  ~FileTransaction() {
    for (File& f : files_) {
      if (f.fd >= 0) close(f.fd);
    }
    if (committed_) return;
    for (auto it = files_.rbegin(); it != files_.rend(); ++it) {
      if (!it->renamed) {
        if (!it->temp.empty()) unlink(it->temp.c_str());
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

  // A new file for `path`, filled by `fill`, flushed if durable.
  Status Add(const std::string& path, const std::function<Status(int fd)>& fill) {
    RemoveDeadTemporaries(path);
    File f;
    f.path = path;
    f.fd = held_ < kMaxHeld && ProcFdUsable()
               ? open(DirOf(path).c_str(), O_TMPFILE | O_RDWR | O_CLOEXEC, 0666)
               : -1;
    if (f.fd >= 0) {
      ++held_;
    } else {
      for (int attempt = 0; attempt < 100 && f.fd < 0; ++attempt) {
        f.temp = TemporaryName(path);
        f.fd = open(f.temp.c_str(), O_CREAT | O_EXCL | O_RDWR | O_CLOEXEC, 0666);
        if (f.fd < 0 && errno != EEXIST) break;
      }
      if (f.fd < 0) return IoError("cannot create a file beside '" + path + "': " + Errno());
    }
    files_.push_back(f);
    File& added = files_.back();
    Status s = fill(added.fd);
    if (s.ok() && durable_ && fsync(added.fd) != 0) {
      s = IoError("cannot flush '" + path + "': " + Errno());
    }
    if (!added.temp.empty()) {
      if (close(added.fd) != 0 && s.ok()) s = IoError("cannot write '" + path + "': " + Errno());
      added.fd = -1;
    }
    return s;
  }

  // Puts every file into place, the last one last; a file it replaces is kept under a hard link
  // until the end, so that a failure can put it back.
  Status Commit() {
    for (size_t k = 0; k < files_.size(); ++k) {
      File& f = files_[k];
      KillPointForTests(k);
      const std::string proc = "/proc/self/fd/" + std::to_string(f.fd);
      if (f.fd >= 0) {
        // An unnamed file with no target to replace is linked straight into place.
        if (linkat(AT_FDCWD, proc.c_str(), AT_FDCWD, f.path.c_str(), AT_SYMLINK_FOLLOW) == 0) {
          f.renamed = true;
          continue;
        }
        if (errno != EEXIST) return IoError("cannot create '" + f.path + "': " + Errno());
      }
      // The file it replaces, kept for a rollback while later files may still fail.
      struct stat st;
      if (k + 1 < files_.size() && lstat(f.path.c_str(), &st) == 0 && !S_ISDIR(st.st_mode)) {
        std::string backup = TemporaryName(f.path);
        if (link(f.path.c_str(), backup.c_str()) == 0) f.backup = std::move(backup);
      }
      if (f.fd >= 0) {
        for (int attempt = 0; attempt < 100 && f.temp.empty(); ++attempt) {
          std::string temp = TemporaryName(f.path);
          if (linkat(AT_FDCWD, proc.c_str(), AT_FDCWD, temp.c_str(), AT_SYMLINK_FOLLOW) == 0) {
            f.temp = std::move(temp);
          } else if (errno != EEXIST) {
            break;
          }
        }
        if (f.temp.empty()) {
          const Status s = IoError("cannot create a file beside '" + f.path + "': " + Errno());
          DropBackup(&f);
          return s;
        }
      }
      if (rename(f.temp.c_str(), f.path.c_str()) != 0) {
        const Status s =
            IoError("cannot rename the temporary file to '" + f.path + "': " + Errno());
        DropBackup(&f);
        return s;
      }
      f.renamed = true;
    }
    committed_ = true;
    for (File& f : files_) DropBackup(&f);
    if (!durable_) return Status::Ok();
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
  // Unnamed files held open at once; past this, files get temporary names (a model with
  // thousands of external data files must not run out of file descriptors).
  static constexpr int kMaxHeld = 64;

  struct File {
    std::string temp, path, backup;
    int fd = -1;  // open until Commit for an unnamed file
    bool renamed = false;
  };

  // Linking an unnamed file needs /proc (linkat with AT_EMPTY_PATH needs a capability).
  static bool ProcFdUsable() {
    static const bool usable = access("/proc/self/fd", X_OK) == 0;
    return usable;
  }

  static std::string TemporaryName(const std::string& path) {
    // One per thread: saves may run on several threads at once (the Python module).
    static thread_local std::mt19937_64 random(std::random_device{}());
    char suffix[17];
    std::snprintf(suffix, sizeof suffix, "%016llx", static_cast<unsigned long long>(random()));
    return path + ".tmp." + std::to_string(getpid()) + "." + suffix;
  }

  // Removes the temporary names (TemporaryName) in the folder of `path` left by processes that
  // no longer run; once per folder and transaction.
  void RemoveDeadTemporaries(const std::string& path) {
    const std::string dir = DirOf(path);
    if (std::find(cleaned_.begin(), cleaned_.end(), dir) != cleaned_.end()) return;
    cleaned_.push_back(dir);
    DIR* d = opendir(dir.c_str());
    if (!d) return;
    while (const dirent* e = readdir(d)) {
      const std::string name = e->d_name;
      const size_t tag = name.rfind(".tmp.");
      if (tag == std::string::npos) continue;
      char* end = nullptr;
      const long pid = std::strtol(name.c_str() + tag + 5, &end, 10);
      const size_t rest = static_cast<size_t>(end - name.c_str());
      if (pid <= 0 || pid == getpid() || rest + 17 != name.size() || name[rest] != '.' ||
          name.find_first_not_of("0123456789abcdef", rest + 1) != std::string::npos) {
        continue;
      }
      if (kill(static_cast<pid_t>(pid), 0) != 0 && errno == ESRCH) {
        unlink((dir + "/" + name).c_str());
      }
    }
    closedir(d);
  }

  static void DropBackup(File* f) {
    if (!f->backup.empty()) unlink(f->backup.c_str());
    f->backup.clear();
  }

  std::vector<File> files_;
  std::vector<std::string> folders_;
  std::vector<std::string> cleaned_;  // folders RemoveDeadTemporaries has been through
  int held_ = 0;
  bool committed_ = false;
  bool durable_;
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
        if (IsDeferred(*t)) {
          saved->marker.set_name(t->name());
          saved->marker.set_data_location(onnx::TensorProto::EXTERNAL);
          *saved->marker.mutable_external_data() = t->external_data();
        }
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
  // The bytes of the i-th entry, counting through the files in order; or, for a deferred
  // tensor, a tensor that refers to them in the store.
  const std::string& bytes(size_t i) const { return saved_[i]->bytes; }
  const onnx::TensorProto* deferred(size_t i) const {
    return IsDeferred(saved_[i]->marker) ? &saved_[i]->marker : nullptr;
  }

 private:
  struct Saved {
    onnx::TensorProto* tensor = nullptr;
    std::string bytes;
    onnx::TensorProto marker;  // the deferral marker of a deferred tensor
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

// Streams the .onnx. Initializers deferred in `store` cannot be serialized by protobuf, so when
// there are any the file is written in pieces: the model without initializers, then each
// initializer as a ModelProto.graph field of its own holding just that initializer, the raw_data
// of a deferred one streamed from the store. Parsers merge repeated message fields, so the file
// reads as the model with its initializers in their order. `write` is null to measure only.
// Returns the file's size.
StatusOr<uint64_t> WriteModelFile(onnx::ModelProto* model, const TensorStore* store,
                                  const ByteSink* write) {
  auto* initializers = model->mutable_graph()->mutable_initializer();
  const bool streamed = store && std::any_of(initializers->begin(), initializers->end(),
                                             [](const auto& t) { return IsDeferred(t); });
  if (!streamed) {
    const uint64_t size = model->ByteSizeLong();
    if (!write || size > kProtobufLimit) return size;
    std::string bytes;
    if (!model->SerializeToString(&bytes)) return ModelError("cannot serialize the model");
    REINIT_RETURN_IF_ERROR((*write)(bytes.data(), bytes.size()));
    return size;
  }
  google::protobuf::RepeatedPtrField<onnx::TensorProto> taken;
  taken.Swap(initializers);
  struct PutBack {
    google::protobuf::RepeatedPtrField<onnx::TensorProto>* from;
    google::protobuf::RepeatedPtrField<onnx::TensorProto>* to;
    ~PutBack() { to->Swap(from); }
  } put_back{&taken, initializers};
  uint64_t size = model->ByteSizeLong();
  if (write) {
    std::string head;
    if (!model->SerializeToString(&head)) return ModelError("cannot serialize the model");
    REINIT_RETURN_IF_ERROR((*write)(head.data(), head.size()));
  }
  for (const onnx::TensorProto& t : taken) {
    const bool deferred = IsDeferred(t);
    // A deferred tensor is written as its fields without the marker, then its raw_data.
    onnx::TensorProto header;
    if (deferred) {
      header.CopyFrom(t);
      header.clear_external_data();
      header.clear_data_location();
    }
    const onnx::TensorProto& fields = deferred ? header : t;
    const uint64_t raw = deferred ? store->Length(t) : 0;
    const uint64_t tensor_size = fields.ByteSizeLong() + (deferred ? 1 + VarintSize(raw) + raw
                                                                   : 0);  // raw_data's tag: 1 byte
    const uint64_t graph_size = 1 + VarintSize(tensor_size) + tensor_size;
    size += 1 + VarintSize(graph_size) + graph_size;
    if (!write) continue;
    std::string head;
    AppendVarint(&head, kModelGraphTag);
    AppendVarint(&head, graph_size);
    AppendVarint(&head, kGraphInitializerTag);
    AppendVarint(&head, tensor_size);
    if (!fields.AppendToString(&head)) return ModelError("cannot serialize '" + t.name() + "'");
    if (deferred) {
      AppendVarint(&head, kTensorRawDataTag);
      AppendVarint(&head, raw);
    }
    REINIT_RETURN_IF_ERROR((*write)(head.data(), head.size()));
    if (deferred) REINIT_RETURN_IF_ERROR(store->Stream(t, *write));
  }
  return size;
}

// The .onnx, with the external tensors already moved out, must fit protobuf's limit.
Status CheckSize(onnx::ModelProto* model, const std::string& path, const SaveOptions& options,
                 const TensorStore* store) {
  auto size = WriteModelFile(model, store, nullptr);
  if (!size.ok()) return size.status();
  if (*size > options.max_proto_bytes || *size > kProtobufLimit) {
    return ModelError(TooLarge(path, *size, options));
  }
  return Status::Ok();
}

// Sequential writes to a file through a buffer, so that the many small pieces of a streamed
// .onnx cost few system calls; pieces at least as large as the buffer go straight through.
class FileWriter {
 public:
  FileWriter(int fd, std::string path) : fd_(fd), path_(std::move(path)) {
    buffer_.reserve(kBuffer);
  }
  Status Write(const char* data, size_t size) {
    if (buffer_.size() + size > kBuffer) REINIT_RETURN_IF_ERROR(Flush());
    if (size >= kBuffer) return WriteFully(data, size);
    buffer_.append(data, size);
    return Status::Ok();
  }
  Status Flush() {
    Status s = WriteFully(buffer_.data(), buffer_.size());
    buffer_.clear();
    return s;
  }

 private:
  static constexpr size_t kBuffer = 1 << 20;
  Status WriteFully(const char* data, size_t size) {
    while (size > 0) {
      const ssize_t n = write(fd_, data, std::min(size, kWriteChunk));
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) return IoError("cannot write '" + path_ + "': " + Errno());
      data += n;
      size -= static_cast<size_t>(n);
    }
    return Status::Ok();
  }
  int fd_;
  std::string path_;
  std::string buffer_;
};

}  // namespace

namespace {

// For the checker, a large or deferred initializer without its data: a graph input of its type
// and shape (the checker reads a tensor's data only to check its size against the dims, which
// is reinit's own doing; the graph's structure, types and op schemas are checked the same).
// Where the name is a graph input already (IR < 4 lists every initializer there), nothing.
void AddStandIn(const onnx::TensorProto& t, onnx::GraphProto* g) {
  for (const auto& in : g->input()) {
    if (in.name() == t.name()) return;
  }
  onnx::ValueInfoProto* in = g->add_input();
  in->set_name(t.name());
  onnx::TypeProto_Tensor* type = in->mutable_type()->mutable_tensor_type();
  type->set_elem_type(t.data_type());
  for (int64_t d : t.dims()) type->mutable_shape()->add_dim()->set_dim_value(d);
}

// The model without the data of its large initializers and of deferred ones; with
// `stand_ins`, each of those is a graph input instead (AddStandIn; see ValidateModel).
onnx::ModelProto LightCopy(const onnx::ModelProto& model, bool stand_ins) {
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
    const bool small = StoredBytes(t) <= kShapeDataBytes;
    if ((small && t.data_location() != onnx::TensorProto::EXTERNAL) ||
        (stand_ins && !IsDeferred(t) && (small || t.data_type() == onnx::TensorProto::STRING))) {
      c->CopyFrom(t);  // may be a shape, axes or scales that inference reads
      continue;
    }
    if (stand_ins) {
      lg->mutable_initializer()->RemoveLast();
      AddStandIn(t, lg);
      continue;
    }
    c->set_name(t.name());
    c->set_data_type(t.data_type());
    *c->mutable_dims() = t.dims();
  }
  return light;
}

}  // namespace

onnx::ModelProto ShapeOnlyCopy(const onnx::ModelProto& model) { return LightCopy(model, false); }

std::unordered_map<std::string, std::vector<int64_t>> DeclaredShapes(
    const onnx::GraphProto& graph) {
  std::unordered_map<std::string, std::vector<int64_t>> shapes;
  auto add = [&](const onnx::ValueInfoProto& v) {
    if (!v.type().has_tensor_type() || !v.type().tensor_type().has_shape()) return;
    std::vector<int64_t> dims;
    for (const auto& d : v.type().tensor_type().shape().dim()) {
      dims.push_back(d.has_dim_value() ? d.dim_value() : -1);
    }
    shapes.emplace(v.name(), std::move(dims));
  };
  for (const auto& v : graph.input()) add(v);
  for (const auto& v : graph.value_info()) add(v);
  for (const auto& v : graph.output()) add(v);
  return shapes;
}

std::unordered_map<std::string, std::vector<int64_t>> StaticShapes(const onnx::ModelProto& model) {
  onnx::ModelProto light = ShapeOnlyCopy(model);
  try {
    onnx::shape_inference::InferShapes(light, GuardedSchemaRegistry());
  } catch (const std::exception&) {
    // Best effort: whatever was declared or inferred before the failure is still used.
  }
  return DeclaredShapes(light.graph());
}

namespace {

// What LoadModel and ParseModel refuse once protobuf is done: a parse failure, a model without
// a graph, and the deferral marker, which is reinit's own: one in the input would be taken for a
// tensor of the store, with another tensor's bytes.
Status CheckParsed(bool parsed, const std::string& path, onnx::ModelProto* model) {
  if (!parsed) {
    return ModelError("'" + path + "' is not an ONNX model (protobuf parsing failed)");
  }
  if (!model->has_graph()) {
    return ModelError("'" + path + "' is not an ONNX model: it has no graph");
  }
  for (const TensorRef& ref : AllTensors(model)) {
    if (IsDeferred(*ref.tensor)) {
      return ModelError("'" + path + "': " + ref.what +
                        ": its external data is reinit's internal marker 'reinit.deferred'");
    }
  }
  return Status::Ok();
}

}  // namespace

StatusOr<onnx::ModelProto> ParseModel(std::string_view bytes, const std::string& name) {
  if (bytes.empty()) return ModelError("'" + name + "' is empty, not an ONNX model");
  if (bytes.size() > kProtobufLimit) {
    return ModelError("'" + name + "' is larger than 2 GiB (" + std::to_string(bytes.size()) +
                      " bytes); protobuf cannot read it: the weights must be in external data");
  }
  onnx::ModelProto model;
  const bool parsed = model.ParseFromArray(bytes.data(), static_cast<int>(bytes.size()));
  REINIT_RETURN_IF_ERROR(CheckParsed(parsed, name, &model));
  // Locations are relative to a model's folder, and bytes have none.
  for (const TensorRef& ref : AllTensors(&model)) {
    if (ref.tensor->data_location() == onnx::TensorProto::EXTERNAL) {
      return ModelError("'" + name + "': " + ref.what +
                        " is stored in external data, which a model given in memory cannot "
                        "reach: give the model's path instead, or load its data into it");
    }
  }
  return model;
}

StatusOr<onnx::ModelProto> LoadModel(const std::string& path, ExternalSources* sources,
                                     TensorStore* store) {
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
  std::unique_ptr<int, void (*)(int*)> closer(new int(fd), [](int* f) {
    close(*f);
    delete f;
  });
  onnx::ModelProto model;
  bool parsed = false;
  std::vector<RawInFile> raw;
  if (store && S_ISREG(st.st_mode)) {
    std::string skeleton;
    parsed =
        ScanModel(fd, static_cast<uint64_t>(st.st_size), store->min_bytes(), &skeleton, &raw) &&
        model.ParseFromString(skeleton);
    if (!parsed) {
      raw.clear();
      model.Clear();
      if (lseek(fd, 0, SEEK_SET) != 0) return IoError("cannot read '" + path + "': " + Errno());
    }
  }
  if (!parsed) {
    // Parsed from the file in chunks: no second copy of the file's bytes in memory.
    google::protobuf::io::FileInputStream in(fd);
    parsed = model.ParseFromZeroCopyStream(&in);
    if (in.GetErrno() != 0) {
      return IoError("cannot read '" + path + "': " + std::strerror(in.GetErrno()));
    }
  }
  REINIT_RETURN_IF_ERROR(CheckParsed(parsed, path, &model));
  REINIT_RETURN_IF_ERROR(DeferRaw(path, fd, raw, &model, store));
  ExternalSources local;
  REINIT_RETURN_IF_ERROR(ResolveExternalData(path, &model, sources ? sources : &local, store));
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
    onnx::checker::check_model(LightCopy(model, /*stand_ins=*/true));
  } catch (const std::exception& e) {
    return ModelError(what + " fails the ONNX checker: " + e.what());
  }
  onnx::ModelProto light = ShapeOnlyCopy(model);
  try {
    onnx::ShapeInferenceOptions options(/*check_type=*/true, /*strict_mode=*/1);
    onnx::shape_inference::InferShapes(light, GuardedSchemaRegistry(), options);
  } catch (const std::exception& e) {
    return ModelError(what + " fails ONNX shape inference: " + e.what());
  }
  return Status::Ok();
}

std::vector<std::string> DataFilesInUse(const std::string& path) {
  std::vector<std::string> in_use;
  struct stat st;
  if (stat(path.c_str(), &st) != 0 || !S_ISREG(st.st_mode) ||
      static_cast<uint64_t>(st.st_size) > kProtobufLimit) {
    return in_use;
  }
  const int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return in_use;
  std::string skeleton;
  std::vector<RawInFile> raw;
  onnx::ModelProto model;
  const bool parsed =
      ScanModel(fd, static_cast<uint64_t>(st.st_size), /*min_bytes=*/4096, &skeleton, &raw) &&
      model.ParseFromString(skeleton);
  close(fd);
  if (!parsed) return in_use;
  for (const TensorRef& ref : AllTensors(&model)) {
    if (ref.tensor->data_location() != onnx::TensorProto::EXTERNAL) continue;
    for (const auto& e : ref.tensor->external_data()) {
      if (e.key() == "location" && !e.value().empty() && e.value()[0] != '/') {
        in_use.push_back(DirOf(path) + "/" + e.value());
      }
    }
  }
  std::sort(in_use.begin(), in_use.end());
  in_use.erase(std::unique(in_use.begin(), in_use.end()), in_use.end());
  return in_use;
}

Status CheckSaveable(onnx::ModelProto* model, const std::string& path,
                     const ExternalSources& sources, const SaveOptions& options,
                     const TensorStore* store) {
  auto files = PlanDataFiles(model, path, sources, options, store, DataFilesInUse(path));
  if (!files.ok()) return files.status();
  const Detached detached(*files);
  return CheckSize(model, path, options, store);
}

Status SaveModel(onnx::ModelProto* model, const std::string& path, const ExternalSources& sources,
                 const SaveOptions& options, std::vector<std::string>* data_files,
                 const TensorStore* store) {
  auto files = PlanDataFiles(model, path, sources, options, store, DataFilesInUse(path));
  if (!files.ok()) return files.status();
  const Detached detached(*files);
  REINIT_RETURN_IF_ERROR(CheckSize(model, path, options, store));
  FileTransaction transaction(options.fsync);
  size_t k = 0;
  for (const DataFile& file : *files) {
    const std::string base = file.path.substr(0, file.path.size() - file.location.size());
    REINIT_RETURN_IF_ERROR(transaction.MakeFolders(base, file.location));
    REINIT_RETURN_IF_ERROR(transaction.Add(file.path, [&](int fd) -> Status {
      for (const DataFile::Entry& e : file.entries) {
        const onnx::TensorProto* deferred = detached.deferred(k);
        if (!deferred) {
          REINIT_RETURN_IF_ERROR(WriteAt(fd, detached.bytes(k++), e.offset, file.path));
          continue;
        }
        ++k;
        if (!store) return ModelError("tensor '" + deferred->name() + "' has no store");
        uint64_t at = e.offset;
        REINIT_RETURN_IF_ERROR(store->Stream(*deferred, [&](const char* data, size_t size) {
          const uint64_t offset = at;
          at += size;
          return WriteAt(fd, std::string_view(data, size), offset, file.path);
        }));
      }
      if (ftruncate(fd, static_cast<off_t>(file.size)) != 0) {
        return IoError("cannot write '" + file.path + "': " + Errno());
      }
      return Status::Ok();
    }));
  }
  REINIT_RETURN_IF_ERROR(transaction.Add(path, [&](int fd) -> Status {
    FileWriter writer(fd, path);
    const ByteSink sink = [&writer](const char* data, size_t size) {
      return writer.Write(data, size);
    };
    auto size = WriteModelFile(model, store, &sink);
    if (!size.ok()) return size.status().WithContext("'" + path + "'");
    return writer.Flush();
  }));
  REINIT_RETURN_IF_ERROR(transaction.Commit());
  // The previous output's generations of the data files, no longer referred to by anything
  // reinit wrote; best effort.
  KillPointForTests(files->size() + 1);
  for (const DataFile& file : *files) {
    for (const std::string& stale : file.stale) unlink(stale.c_str());
  }
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
  FileTransaction transaction(/*durable=*/false);
  REINIT_RETURN_IF_ERROR(
      transaction.Add(path, [&](int fd) { return WriteAt(fd, bytes, 0, path); }));
  return transaction.Commit();
}

Status WriteFileAtomic(const std::string& path, const std::string& bytes) {
  FileTransaction transaction(/*durable=*/false);
  REINIT_RETURN_IF_ERROR(
      transaction.Add(path, [&](int fd) { return WriteAt(fd, bytes, 0, path); }));
  return transaction.Commit();
}

Status WriteFilesAtomic(const std::vector<std::pair<std::string, std::string>>& files) {
  FileTransaction transaction(/*durable=*/false);
  for (const auto& file : files) {  // no structured binding: clang 14 cannot capture one
    REINIT_RETURN_IF_ERROR(transaction.Add(
        file.first, [&file](int fd) { return WriteAt(fd, file.second, 0, file.first); }));
  }
  return transaction.Commit();
}

}  // namespace reinit
