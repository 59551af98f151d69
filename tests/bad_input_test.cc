// A corpus of hostile and broken inputs, run end to end through the reinit binary. Each case
// builds its input in a fresh folder (from a small valid model written in ONNX text syntax, then
// broken), remembers every file's bytes, runs the tool, and checks that it fails cleanly: exit 1
// (2 for usage errors), stderr starting "reinit: error: " and naming the file and the
// layer/tensor at fault, no signal and no "internal error", no output or temporary file left,
// and every input file unchanged.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <onnx/defs/parser.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <chrono>
#include <map>
#include <random>

#include "cli_util.h"

namespace reinit_cli_test {
namespace bad_input_test {
namespace {

bool Contains(const std::string& haystack, const std::string& needle) {
  return haystack.find(needle) != std::string::npos;
}

// x [2, 4] -> Gemm 'fc' (fc_w [3, 4], fc_b [3]) -> y.
constexpr const char* kGemm = R"(
<ir_version: 8, opset_import: ["" : 17]>
g (float[2,4] x) => (float[2,3] y) {
  y = Gemm <transB = 1> (x, fc_w, fc_b)
}
)";

onnx::ModelProto Parse(const std::string& text, const std::vector<std::string>& node_names) {
  onnx::ModelProto model;
  const auto status = onnx::OnnxParser::Parse(model, text.c_str());
  EXPECT_TRUE(status.IsOK()) << status.ErrorMessage() << "\n" << text;
  for (int i = 0; i < model.graph().node_size() && i < static_cast<int>(node_names.size()); ++i) {
    model.mutable_graph()->mutable_node(i)->set_name(node_names[i]);
  }
  return model;
}

// A FLOAT tensor of `dims` in raw_data, values 0.25.
onnx::TensorProto FloatTensor(const std::string& name, const std::vector<int64_t>& dims) {
  onnx::TensorProto t;
  t.set_name(name);
  t.set_data_type(onnx::TensorProto::FLOAT);
  int64_t count = 1;
  for (int64_t d : dims) {
    t.add_dims(d);
    count *= d;
  }
  std::vector<float> values(static_cast<size_t>(count), 0.25f);
  t.set_raw_data(values.data(), values.size() * sizeof(float));
  return t;
}

// The Gemm model, x [2, in] -> fc -> y [2, out], with its weight fc_w and bias fc_b.
onnx::ModelProto GemmModel(int64_t out = 3, int64_t in = 4) {
  std::string text = kGemm;
  if (out != 3 || in != 4) {
    text = "<ir_version: 8, opset_import: [\"\" : 17]>\ng (float[2," + std::to_string(in) +
           "] x) => (float[2," + std::to_string(out) +
           "] y) {\n  y = Gemm <transB = 1> (x, fc_w, fc_b)\n}\n";
  }
  onnx::ModelProto m = Parse(text, {"fc"});
  *m.mutable_graph()->add_initializer() = FloatTensor("fc_w", {out, in});
  *m.mutable_graph()->add_initializer() = FloatTensor("fc_b", {out});
  return m;
}

onnx::TensorProto* Initializer(onnx::ModelProto* m, const std::string& name) {
  for (auto& t : *m->mutable_graph()->mutable_initializer()) {
    if (t.name() == name) return &t;
  }
  ADD_FAILURE() << "no initializer " << name;
  return nullptr;
}

void SetEntry(onnx::TensorProto* t, const std::string& key, const std::string& value) {
  auto* e = t->add_external_data();
  e->set_key(key);
  e->set_value(value);
}

// Moves fc_w's bytes to external data at `location` (its bytes returned).
std::string Externalize(onnx::ModelProto* m, const std::string& location,
                        const std::string& offset = "", const std::string& length = "") {
  onnx::TensorProto* w = Initializer(m, "fc_w");
  std::string bytes = w->raw_data();
  w->clear_raw_data();
  w->set_data_location(onnx::TensorProto::EXTERNAL);
  SetEntry(w, "location", location);
  if (!offset.empty()) SetEntry(w, "offset", offset);
  if (!length.empty()) SetEntry(w, "length", length);
  return bytes;
}

// Files larger than this are remembered by size only (the sparse 2 GiB file is never read).
constexpr uintmax_t kReadLimit = 64 << 20;

class BadInput : public ::testing::Test {
 protected:
  // Every file under the folder, recursively (symlinks as their target), with its bytes.
  std::map<std::string, std::string> Files() const {
    std::map<std::string, std::string> files;
    for (const auto& e : fs::recursive_directory_iterator(dir_.path())) {
      const std::string rel = fs::relative(e.path(), dir_.path()).string();
      if (e.is_symlink()) {
        files[rel] = "symlink -> " + fs::read_symlink(e.path()).string();
      } else if (e.is_directory()) {
        files[rel] = "<dir>";
      } else if (e.file_size() > kReadLimit) {
        files[rel] = "<size " + std::to_string(e.file_size()) + ">";
      } else {
        files[rel] = ReadFile(e.path().string());
      }
    }
    return files;
  }

  void Write(const std::string& name, const std::string& bytes) { WriteFile(dir_ / name, bytes); }
  void Save(const onnx::ModelProto& m, const std::string& name = "m.onnx") {
    SaveModelFile(m, dir_ / name);
  }

  // Runs reinit in the folder and checks the failure: exit `code`, stderr "reinit: error: "
  // followed by a message containing every needle, nothing written, nothing changed.
  RunOutput Fails(const std::vector<std::string>& args, int code,
                  const std::vector<std::string>& needles) {
    const auto before = Files();
    const RunOutput r = RunReinit(args, dir_.path());
    EXPECT_NE(r.exit_code, -1) << "killed by a signal\n" << r;
    EXPECT_EQ(r.exit_code, code) << r;
    EXPECT_EQ(r.err.rfind("reinit: error: ", 0), 0u) << r;
    for (const auto& n : needles) {
      EXPECT_TRUE(Contains(r.err, n)) << "stderr lacks '" << n << "'\n" << r;
    }
    for (const char* bad : {"internal error", "terminate called", "Aborted", "Segmentation"}) {
      EXPECT_FALSE(Contains(r.err, bad)) << r;
    }
    const auto after = Files();
    for (const auto& [name, bytes] : after) {
      EXPECT_FALSE(Contains(name, ".tmp.")) << "temporary file left: " << name << "\n" << r;
      EXPECT_TRUE(before.count(name)) << "file left behind: " << name << "\n" << r;
    }
    for (const auto& [name, bytes] : before) {
      auto it = after.find(name);
      EXPECT_TRUE(it != after.end() && it->second == bytes) << "input changed: " << name << "\n"
                                                            << r;
    }
    return r;
  }

  // The usual run: m.onnx -o out.onnx, and the same model through inspect.
  void ModelFails(const std::vector<std::string>& needles, const std::string& model = "m.onnx") {
    std::vector<std::string> with_file = needles;
    with_file.push_back(model);
    Fails({model, "-o", "out.onnx"}, 1, with_file);
    Fails({"inspect", model}, 1, with_file);
  }

  TempDir dir_;
};

// ---- Not a model at all -------------------------------------------------------------------------

TEST_F(BadInput, EmptyFile) {
  Write("m.onnx", "");
  ModelFails({"empty"});
}

TEST_F(BadInput, RandomBytes) {
  std::mt19937 gen(7);
  std::string junk(8192, '\0');
  for (char& c : junk) c = static_cast<char>(gen() & 0xff);
  Write("m.onnx", junk);
  ModelFails({"not an ONNX model"});
}

TEST_F(BadInput, TextFile) {
  Write("m.onnx", "This is not a model.\nJust some text, the way a README would look.\n");
  ModelFails({"not an ONNX model"});
}

TEST_F(BadInput, SerializedTensorProto) {
  Write("m.onnx", FloatTensor("fc_w", {3, 4}).SerializeAsString());
  ModelFails({"not an ONNX model"});
}

TEST_F(BadInput, SerializedGraphProto) {
  Write("m.onnx", GemmModel().graph().SerializeAsString());
  ModelFails({"not an ONNX model"});
}

TEST_F(BadInput, ModelWithoutGraph) {
  onnx::ModelProto m = GemmModel();
  m.clear_graph();
  Save(m);
  ModelFails({"graph"});
}

// A valid model cut short at 20 offsets spread over its length.
class Truncated : public BadInput, public ::testing::WithParamInterface<int> {};

TEST_P(Truncated, IsRefused) {
  const std::string whole = GemmModel(16, 16).SerializeAsString();
  const size_t at = whole.size() * static_cast<size_t>(GetParam()) / 21;
  SCOPED_TRACE("cut at " + std::to_string(at) + " of " + std::to_string(whole.size()));
  Write("m.onnx", whole.substr(0, at));
  ModelFails({"not an ONNX model"});
}

INSTANTIATE_TEST_SUITE_P(Offsets, Truncated, ::testing::Range(1, 21));

// ---- Broken tensors -----------------------------------------------------------------------------

TEST_F(BadInput, NegativeDimOnAWeight) {
  onnx::ModelProto m = GemmModel();
  Initializer(&m, "fc_w")->set_dims(0, -3);
  Save(m);
  ModelFails({"fc_w", "-3"});
}

TEST_F(BadInput, DimsWhoseProductOverflowsInt64) {
  onnx::ModelProto m = GemmModel();
  onnx::TensorProto* w = Initializer(&m, "fc_w");
  w->clear_dims();
  w->add_dims(int64_t{1} << 40);
  w->add_dims(int64_t{1} << 40);
  Save(m);
  ModelFails({"fc_w"});
}

TEST_F(BadInput, DimsThatDisagreeWithTheFloatDataCount) {
  onnx::ModelProto m = GemmModel();
  onnx::TensorProto* w = Initializer(&m, "fc_w");
  w->clear_raw_data();
  for (int i = 0; i < 7; ++i) w->add_float_data(0.5f);  // 7 values for [3, 4]
  Save(m);
  ModelFails({"fc_w"});
}

TEST_F(BadInput, RawDataOfTheWrongSize) {
  onnx::ModelProto m = GemmModel();
  Initializer(&m, "fc_w")->mutable_raw_data()->resize(13);
  Save(m);
  ModelFails({"fc_w"});
}

// A layer weight whose type has no initializer: int32, string, int8 outside DequantizeLinear.
TEST_F(BadInput, Int32Weight) {
  onnx::ModelProto m = Parse(R"(
<ir_version: 8, opset_import: ["" : 17]>
g (int32[2,4] x) => (int32[2,3] y) {
  y = MatMul (x, fc_w)
}
)",
                             {"fc"});
  onnx::TensorProto w;
  w.set_name("fc_w");
  w.set_data_type(onnx::TensorProto::INT32);
  w.add_dims(4);
  w.add_dims(3);
  for (int i = 0; i < 12; ++i) w.add_int32_data(i);
  *m.mutable_graph()->add_initializer() = w;
  Save(m);
  Fails({"m.onnx", "--layer", "fc=he-normal", "-o", "out.onnx"}, 1, {"m.onnx", "fc_w", "INT32"});
}

TEST_F(BadInput, StringWeight) {
  onnx::ModelProto m = GemmModel();
  onnx::TensorProto* w = Initializer(&m, "fc_w");
  w->clear_raw_data();
  w->set_data_type(onnx::TensorProto::STRING);
  for (int i = 0; i < 12; ++i) w->mutable_string_data()->Add(std::string(1, 'w'));
  Save(m);
  Fails({"m.onnx", "--layer", "fc=he-normal", "-o", "out.onnx"}, 1, {"m.onnx", "fc_w", "STRING"});
}

TEST_F(BadInput, Int8WeightWithoutDequantizeLinear) {
  onnx::ModelProto m = GemmModel();
  onnx::TensorProto* w = Initializer(&m, "fc_w");
  w->set_data_type(onnx::TensorProto::INT8);
  w->set_raw_data(std::string(12, '\x01'));
  Save(m);
  Fails({"m.onnx", "--layer", "fc=he-normal", "-o", "out.onnx"}, 1, {"m.onnx", "fc_w", "INT8"});
}

// ---- External data ------------------------------------------------------------------------------

TEST_F(BadInput, MissingExternalDataFile) {
  onnx::ModelProto m = GemmModel();
  Externalize(&m, "weights.bin");
  Save(m);
  ModelFails({"fc_w", "weights.bin", "does not exist"});
}

TEST_F(BadInput, ExternalOffsetAndLengthPastTheEnd) {
  onnx::ModelProto m = GemmModel();
  Write("weights.bin", Externalize(&m, "weights.bin", "40", "48"));  // 48 bytes at 40 of 48
  Save(m);
  ModelFails({"fc_w", "weights.bin"});
}

TEST_F(BadInput, ExternalLocationThatIsAbsolute) {
  onnx::ModelProto m = GemmModel();
  const std::string abs = dir_ / "weights.bin";
  Write("weights.bin", Externalize(&m, abs));
  Save(m);
  ModelFails({"fc_w", abs, "absolute"});
}

TEST_F(BadInput, ExternalLocationThatClimbsOut) {
  fs::create_directory(dir_ / "model");
  onnx::ModelProto m = GemmModel();
  Write("weights.bin", Externalize(&m, "../weights.bin"));
  Save(m, "model/m.onnx");
  ModelFails({"fc_w", "../weights.bin", ".."}, "model/m.onnx");
}

TEST_F(BadInput, ExternalLocationThatLeavesThroughASymlink) {
  fs::create_directory(dir_ / "model");
  onnx::ModelProto m = GemmModel();
  Write("weights.bin", Externalize(&m, "link.bin"));
  fs::create_symlink(dir_ / "weights.bin", dir_ / "model/link.bin");
  Save(m, "model/m.onnx");
  ModelFails({"fc_w", "link.bin", "symbolic link"}, "model/m.onnx");
}

// ---- Broken graphs ------------------------------------------------------------------------------

TEST_F(BadInput, ACycle) {
  // a = Gemm(x + b), b = Relu(a): two nodes feeding each other.
  onnx::ModelProto m = Parse(R"(
<ir_version: 8, opset_import: ["" : 17]>
g (float[2,4] x) => (float[2,4] y) {
  s = Add (x, b)
  a = Gemm <transB = 1> (s, fc_w)
  b = Relu (a)
  y = Identity (a)
}
)",
                             {"add", "fc", "relu", "out"});
  *m.mutable_graph()->add_initializer() = FloatTensor("fc_w", {4, 4});
  Save(m);
  ModelFails({"cycle"});
}

TEST_F(BadInput, DuplicateInitializerNames) {
  onnx::ModelProto m = GemmModel();
  *m.mutable_graph()->add_initializer() = FloatTensor("fc_w", {3, 4});
  Save(m);
  ModelFails({"fc_w", "duplicate"});
}

TEST_F(BadInput, ANodeInputThatNothingProduces) {
  onnx::ModelProto m = Parse(R"(
<ir_version: 8, opset_import: ["" : 17]>
g (float[2,4] x) => (float[2,3] y) {
  h = Add (x, ghost)
  y = Gemm <transB = 1> (h, fc_w, fc_b)
}
)",
                             {"add", "fc"});
  *m.mutable_graph()->add_initializer() = FloatTensor("fc_w", {3, 4});
  *m.mutable_graph()->add_initializer() = FloatTensor("fc_b", {3});
  Save(m);
  ModelFails({"ghost", "add"});
}

// x [1, 4, 8, 8] -> Conv 'conv_a' (W_a [6, 4 / group, 3, 3], `group`) -> y.
onnx::ModelProto ConvModel(int group, int64_t per_group_in) {
  onnx::ModelProto m = Parse(
      "<ir_version: 8, opset_import: [\"\" : 17]>\n"
      "g (float[1,4,8,8] x) => (float[1,6,6,6] y) {\n"
      "  y = Conv <group = " +
          std::to_string(group) +
          ", kernel_shape = [3, 3]> (x, W_a)\n"
          "}\n",
      {"conv_a"});
  *m.mutable_graph()->add_initializer() = FloatTensor("W_a", {6, per_group_in, 3, 3});
  return m;
}

TEST_F(BadInput, ConvGroupZero) {
  Save(ConvModel(0, 4));
  ModelFails({"conv_a", "W_a", "group"});
}

TEST_F(BadInput, ConvGroupNotDividingTheChannels) {
  Save(ConvModel(4, 1));  // 6 output channels in 4 groups
  ModelFails({"conv_a", "W_a", "group"});
}

TEST_F(BadInput, ConvNegativeGroup) {
  Save(ConvModel(-2, 2));
  ModelFails({"conv_a", "W_a", "group"});
}

// ---- Sizes and output paths ---------------------------------------------------------------------

TEST_F(BadInput, ASingleFileModelOver2GiBIsRefusedWithoutReadingIt) {
  const std::string path = dir_ / "m.onnx";
  const int fd = open(path.c_str(), O_CREAT | O_WRONLY, 0644);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(ftruncate(fd, off_t{3} << 30), 0);  // sparse: no disk used
  close(fd);
  const auto start = std::chrono::steady_clock::now();
  ModelFails({"2 GiB"});
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(5))
      << "the file seems to have been read";
}

TEST_F(BadInput, OutputPathEqualToTheInput) {
  Save(GemmModel());
  Fails({"m.onnx", "-o", "m.onnx"}, 2, {"--in-place"});
  Fails({"m.onnx", "-o", "./m.onnx"}, 2, {"--in-place"});
}

TEST_F(BadInput, OutputFolderMissing) {
  Save(GemmModel());
  Fails({"m.onnx", "-o", "nodir/out.onnx"}, 1, {"nodir/out.onnx"});
}

TEST_F(BadInput, OutputFolderReadOnly) {
  Save(GemmModel());
  fs::create_directory(dir_ / "ro");
  ASSERT_EQ(chmod((dir_ / "ro").c_str(), 0555), 0);
  if (access((dir_ / "ro").c_str(), W_OK) == 0) {
    chmod((dir_ / "ro").c_str(), 0755);
    GTEST_SKIP() << "the folder stays writable (running as root)";
  }
  Fails({"m.onnx", "-o", "ro/out.onnx"}, 1, {"ro/out.onnx"});
  chmod((dir_ / "ro").c_str(), 0755);
}

// A tmpfs mounted on a folder for the length of a test, where mounting is allowed (root with
// CAP_SYS_ADMIN, as on the CI machine); elsewhere ok() is false and the test skips itself.
class Tmpfs {
 public:
  Tmpfs(const fs::path& where, unsigned long flags, const std::string& options) : where_(where) {
    fs::create_directories(where);
    ok_ = mount("tmpfs", where.c_str(), "tmpfs", flags, options.c_str()) == 0;
  }
  ~Tmpfs() {
    if (ok_) umount2(where_.c_str(), MNT_DETACH);
  }
  bool ok() const { return ok_; }
  // Blocks in use (0 on a fresh tmpfs with nothing in it).
  uint64_t UsedBlocks() const {
    struct statvfs st;
    return statvfs(where_.c_str(), &st) == 0 ? st.f_blocks - st.f_bfree : UINT64_MAX;
  }

 private:
  fs::path where_;
  bool ok_ = false;
};

TEST_F(BadInput, OutputFolderOnAReadOnlyFileSystem) {
  // What a read-only folder cannot show as root: the file system itself refuses (EROFS).
  Save(GemmModel());
  Tmpfs ro(dir_ / "ro", MS_RDONLY, "size=1m");
  if (!ro.ok()) GTEST_SKIP() << "cannot mount a tmpfs here: " << std::strerror(errno);
  const RunOutput r = Fails({"m.onnx", "-o", "ro/out.onnx"}, 1, {"ro/out.onnx"});
  EXPECT_TRUE(Contains(r.err, "Read-only file system")) << r;
}

TEST_F(BadInput, DiskFullOnASmallTmpfs) {
  // A real full disk: a 128 KiB tmpfs and 256 KiB of weights. Nothing may stay on it, not even
  // the space of an unnamed temporary file.
  Save(GemmModel(256, 256));
  Tmpfs small(dir_ / "small", 0, "size=128k");
  if (!small.ok()) GTEST_SKIP() << "cannot mount a tmpfs here: " << std::strerror(errno);
  for (const char* mode : {"keep", "single", "inline"}) {
    SCOPED_TRACE(mode);
    const RunOutput r = Fails({"m.onnx", "-o", "small/out.onnx", "--external-data", mode}, 1,
                              {"small/out.onnx", "No space left on device"});
    EXPECT_EQ(small.UsedBlocks(), 0u) << r;
  }
}

// The disk fills up while writing: a file-size limit (RLIMIT_FSIZE) in the child, with SIGXFSZ
// ignored so that write() fails with EFBIG; both are inherited across fork and exec.
class FileSizeLimit {
 public:
  explicit FileSizeLimit(rlim_t bytes) {
    getrlimit(RLIMIT_FSIZE, &old_);
    old_handler_ = signal(SIGXFSZ, SIG_IGN);
    rlimit lim = old_;
    lim.rlim_cur = bytes;
    ok_ = setrlimit(RLIMIT_FSIZE, &lim) == 0;
  }
  ~FileSizeLimit() {
    setrlimit(RLIMIT_FSIZE, &old_);
    signal(SIGXFSZ, old_handler_);
  }
  bool ok() const { return ok_; }

 private:
  rlimit old_{};
  sighandler_t old_handler_ = SIG_DFL;
  bool ok_ = false;
};

TEST_F(BadInput, DiskFullWhileWriting) {
  Save(GemmModel(256, 256));  // 256 KiB of weights
  for (const char* mode : {"keep", "single", "inline"}) {
    SCOPED_TRACE(mode);
    FileSizeLimit limit(64 << 10);
    ASSERT_TRUE(limit.ok());
    Fails({"m.onnx", "-o", "out.onnx", "--external-data", mode}, 1, {"out.onnx"});
  }
}

TEST_F(BadInput, DiskFullWhileWritingInPlace) {
  Save(GemmModel(256, 256));
  FileSizeLimit limit(64 << 10);
  ASSERT_TRUE(limit.ok());
  Fails({"m.onnx", "--in-place"}, 1, {"m.onnx"});
}

// ---- Plans --------------------------------------------------------------------------------------

TEST_F(BadInput, PlanNamingALayerThatDoesNotExist) {
  Save(GemmModel());
  RunOutput plan = RunReinit({"inspect", "m.onnx", "--json"}, dir_.path());
  ASSERT_EQ(plan.exit_code, 0) << plan;
  const size_t at = plan.out.find("\"fc\"");
  ASSERT_NE(at, std::string::npos) << plan.out;
  plan.out.replace(at, 4, "\"no_such_layer\"");
  Write("p.json", plan.out);
  Fails({"m.onnx", "--plan", "p.json", "-o", "out.onnx"}, 1, {"no_such_layer", "p.json"});
}

TEST_F(BadInput, PlanNamingASchemeThatDoesNotExist) {
  Save(GemmModel());
  RunOutput plan = RunReinit({"inspect", "m.onnx", "--json"}, dir_.path());
  ASSERT_EQ(plan.exit_code, 0) << plan;
  reinit::proto::Plan p = ParsePlan(plan.out);
  ASSERT_GT(p.layers_size(), 0);
  p.mutable_layers(0)->mutable_weight()->set_scheme("bogus-scheme");
  Write("p.json", PlanJson(p));
  Fails({"m.onnx", "--plan", "p.json", "-o", "out.onnx"}, 1,
        {"bogus-scheme", "fc", "he-normal", "p.json"});
}

TEST_F(BadInput, PlanThatIsNotJson) {
  Save(GemmModel());
  Write("p.json", "layers: [fc = he-normal\n");
  Fails({"m.onnx", "--plan", "p.json", "-o", "out.onnx"}, 1, {"p.json"});
}

TEST_F(BadInput, PlanThatIsMissing) {
  Save(GemmModel());
  Fails({"m.onnx", "--plan", "absent.json", "-o", "out.onnx"}, 1, {"absent.json"});
}

}  // namespace
}  // namespace bad_input_test
}  // namespace reinit_cli_test
