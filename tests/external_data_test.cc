// External data: reading (one file, several files, offsets, folders, mixtures with typed and
// raw tensors), every refusal with its message, writing in the three --external-data modes
// (untouched tensors' bytes identical, rewritten ones changed, offsets, names, the input's files
// untouched, no temporaries after success or failure), the 2 GiB limits with a lowered
// threshold, and once for real behind REINIT_TEST_OVER_2GIB=1 (about 7.5 GB of disk and 5 GB of
// memory; see the test).
#include "io/external_data.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <map>
#include <optional>

#include "cli_util.h"
#include "io/model_io.h"
#include "model_builder.h"
#include "reinit.h"

namespace reinit {
namespace external_data_test {
namespace {

namespace fs = std::filesystem;
using reinit_cli_test::ReadFile;
using reinit_cli_test::TempDir;
using reinit_cli_test::WriteFile;

bool Contains(const std::string& haystack, const std::string& needle) {
  return haystack.find(needle) != std::string::npos;
}

// y = Gemm(Relu(Gemm(x, w1, b1)), w2, b2) and z = Cast(u8): two dense layers (w1 8 KiB, w2
// 4 KiB, biases of 256 and 64 bytes) and a UINT8 tensor of 2 KiB that no layer owns.
onnx::ModelProto Mlp() {
  auto m = reinit_test::ParseModel(R"(<ir_version: 8, opset_import: ["" : 17]>
g (float[1, 32] x) => (float[1, 16] y, float[2048] z) {
  h = Gemm <transB = 1> (x, w1, b1)
  r = Relu (h)
  y = Gemm <transB = 1> (r, w2, b2)
  z = Cast <to = 1> (u8)
})");
  reinit_test::AddFloatInitializer(&m, "w1", {64, 32});
  reinit_test::AddFloatInitializer(&m, "b1", {64});
  reinit_test::AddFloatInitializer(&m, "w2", {16, 64});
  reinit_test::AddFloatInitializer(&m, "b2", {16});
  auto* u8 = m.mutable_graph()->add_initializer();
  u8->set_name("u8");
  u8->set_data_type(onnx::TensorProto::UINT8);
  u8->add_dims(2048);
  std::string bytes(2048, '\0');
  for (size_t i = 0; i < bytes.size(); ++i) bytes[i] = static_cast<char>(i * 7 % 256);
  u8->set_raw_data(bytes);
  return m;
}

onnx::TensorProto* Find(onnx::ModelProto* m, const std::string& name) {
  for (auto& t : *m->mutable_graph()->mutable_initializer()) {
    if (t.name() == name) return &t;
  }
  ADD_FAILURE() << "no initializer " << name;
  return nullptr;
}

const onnx::TensorProto& Get(const onnx::ModelProto& m, const std::string& name) {
  const auto* t = reinit_test::FindInitializer(m, name);
  EXPECT_NE(t, nullptr) << name;
  static const onnx::TensorProto kEmpty;
  return t ? *t : kEmpty;
}

void SetEntry(onnx::TensorProto* t, const std::string& key, const std::string& value) {
  for (auto& e : *t->mutable_external_data()) {
    if (e.key() == key) {
      e.set_value(value);
      return;
    }
  }
  auto* e = t->add_external_data();
  e->set_key(key);
  e->set_value(value);
}

// Moves the tensor's raw_data into `file` at `offset` (at its end when offset < 0; a gap is
// filled with 0xEE) and points the tensor there, as an exporter would.
void Externalize(onnx::TensorProto* t, const std::string& location, std::string* file,
                 int64_t offset = -1, bool with_length = true) {
  const std::string raw = t->raw_data();
  const size_t at = offset < 0 ? file->size() : static_cast<size_t>(offset);
  if (file->size() < at + raw.size()) file->resize(at + raw.size(), '\xEE');
  file->replace(at, raw.size(), raw);
  t->clear_raw_data();
  SetEntry(t, "location", location);
  SetEntry(t, "offset", std::to_string(at));
  if (with_length) SetEntry(t, "length", std::to_string(raw.size()));
  t->set_data_location(onnx::TensorProto::EXTERNAL);
}

struct Ext {
  std::string location;
  uint64_t offset = 0;
  uint64_t length = 0;
};

// The external_data entries of a tensor as written in a file, or nullopt if it is in the model.
std::optional<Ext> ExternalOf(const onnx::TensorProto& t) {
  if (t.data_location() != onnx::TensorProto::EXTERNAL) return std::nullopt;
  Ext e;
  for (const auto& kv : t.external_data()) {
    if (kv.key() == "location") e.location = kv.value();
    if (kv.key() == "offset") e.offset = std::stoull(kv.value());
    if (kv.key() == "length") e.length = std::stoull(kv.value());
  }
  return e;
}

// Every file below `dir` (relative paths, sorted) with its bytes.
std::map<std::string, std::string> Snapshot(const std::string& dir) {
  std::map<std::string, std::string> files;
  for (const auto& e : fs::recursive_directory_iterator(dir)) {
    const std::string rel = fs::relative(e.path(), dir).string();
    files[rel] = e.is_regular_file() ? ReadFile(e.path().string()) : std::string("<dir>");
  }
  return files;
}

std::vector<std::string> Names(const std::map<std::string, std::string>& snapshot) {
  std::vector<std::string> names;
  for (const auto& [name, bytes] : snapshot) names.push_back(name);
  return names;
}

// The bytes a tensor has in a model written to `dir`, following external data by hand (not
// through reinit's loader).
std::string BytesIn(const onnx::ModelProto& m, const std::string& name, const std::string& dir) {
  const onnx::TensorProto& t = Get(m, name);
  if (auto e = ExternalOf(t)) {
    return ReadFile(dir + "/" + e->location).substr(e->offset, e->length);
  }
  return t.raw_data();
}

class ExternalData : public ::testing::Test {
 protected:
  // Writes `model` as dir/name and `files` (location -> bytes) beside it.
  std::string WriteModel(const std::string& dir, const std::string& name,
                         const onnx::ModelProto& model,
                         const std::map<std::string, std::string>& files) {
    fs::create_directories(dir);
    for (const auto& [location, bytes] : files) {
      fs::create_directories(fs::path(dir + "/" + location).parent_path());
      WriteFile(dir + "/" + location, bytes);
    }
    reinit_cli_test::SaveModelFile(model, dir + "/" + name);
    return dir + "/" + name;
  }

  // The Mlp with every initializer in "weights.bin", back to back (as onnx's Python writer
  // does), in tmp/in/model.onnx.
  std::string OneFileModel() {
    onnx::ModelProto m = Mlp();
    original_ = m;
    std::string file;
    for (const char* name : {"w1", "b1", "w2", "b2", "u8"})
      Externalize(Find(&m, name), "weights.bin", &file);
    return WriteModel(tmp_ / "in", "model.onnx", m, {{"weights.bin", file}});
  }

  RunOptions Options(const std::string& input, const std::string& output, ExternalDataMode mode) {
    RunOptions o;
    o.input = input;
    o.output = output;
    o.plan.keep_bias = true;  // b1, b2 and u8 stay as they were; w1 and w2 are rewritten
    o.plan.seed = 3;
    o.save.mode = mode;
    return o;
  }

  TempDir tmp_;
  onnx::ModelProto original_;
};

// ---- Reading ----------------------------------------------------------------------------------

TEST_F(ExternalData, ReadsTensorsBackToBackFromOneFile) {
  const std::string path = OneFileModel();
  ExternalSources sources;
  auto m = LoadModel(path, &sources);
  ASSERT_TRUE(m.ok()) << m.status().message();
  for (const char* name : {"w1", "b1", "w2", "b2", "u8"}) {
    const auto& t = Get(*m, name);
    EXPECT_EQ(t.raw_data(), Get(original_, name).raw_data()) << name;
    EXPECT_NE(t.data_location(), onnx::TensorProto::EXTERNAL) << name;
    EXPECT_EQ(t.external_data_size(), 0) << name;
  }
  ASSERT_EQ(sources.tensors.size(), 5u);
  EXPECT_EQ(sources.tensors[1].name, "b1");
  EXPECT_EQ(sources.tensors[1].location, "weights.bin");
  EXPECT_EQ(sources.tensors[1].offset, 8192u);
  EXPECT_EQ(sources.tensors[1].length, 256u);
  EXPECT_EQ(sources.bytes, 8192u + 256 + 4096 + 64 + 2048);
  ASSERT_EQ(sources.files.size(), 1u);
  EXPECT_EQ(sources.files[0], fs::canonical(tmp_ / "in/weights.bin").string());
}

TEST_F(ExternalData, ReadsSeveralFilesOffsetsAndFolders) {
  onnx::ModelProto m = Mlp();
  std::string a(100, 'x'), b, c;
  Externalize(Find(&m, "w1"), "a.bin", &a);                   // at offset 100
  Externalize(Find(&m, "w2"), "./a.bin", &a, 8192 + 107);     // another spelling, a gap before
  Externalize(Find(&m, "b1"), "sub/b.bin", &b);               // in a folder
  Externalize(Find(&m, "u8"), "sub/../c.bin", &c, 0, false);  // no length: dims x size
  a += "trailing bytes that belong to no tensor";
  const std::string path = WriteModel(tmp_ / "m", "model.onnx", m,
                                      {{"a.bin", a}, {"sub/b.bin", b}, {"c.bin", c + "tail"}});
  ExternalSources sources;
  auto loaded = LoadModel(path, &sources);
  ASSERT_TRUE(loaded.ok()) << loaded.status().message();
  const onnx::ModelProto plain = Mlp();
  for (const char* name : {"w1", "b1", "w2", "b2", "u8"}) {
    EXPECT_EQ(Get(*loaded, name).raw_data(), Get(plain, name).raw_data()) << name;
  }
  ASSERT_EQ(sources.tensors.size(), 4u);
  EXPECT_EQ(sources.tensors[0].offset, 100u);
  EXPECT_EQ(sources.tensors[2].location, "a.bin");  // "./a.bin", normalized
  EXPECT_EQ(sources.tensors[2].offset, 8192u + 107);
  EXPECT_EQ(sources.tensors[3].location, "c.bin");
  EXPECT_EQ(sources.tensors[3].length, 2048u);
}

TEST_F(ExternalData, MixesTypedRawAndExternalTensors) {
  onnx::ModelProto m = Mlp();
  // b1 in float_data, w2 in raw_data, w1 and b2 external in two files, u8 raw.
  onnx::TensorProto* b1 = Find(&m, "b1");
  const std::vector<float> b1_values = reinit_test::RawFloats(*b1);
  b1->clear_raw_data();
  for (float v : b1_values) b1->add_float_data(v);
  std::string f1, f2;
  Externalize(Find(&m, "w1"), "w1.bin", &f1);
  Externalize(Find(&m, "b2"), "b2.bin", &f2);
  const std::string in = WriteModel(tmp_ / "in", "model.onnx", m, {{"w1.bin", f1}, {"b2.bin", f2}});

  RunOptions o = Options(in, tmp_ / "out/out.onnx", ExternalDataMode::kKeep);
  o.plan.keep_bias = false;  // biases to zero, in their own storage
  fs::create_directories(tmp_ / "out");
  auto r = ReinitFile(o);
  ASSERT_TRUE(r.ok()) << r.status().message();

  const onnx::ModelProto out = reinit_cli_test::ParseModel(ReadFile(tmp_ / "out/out.onnx"));
  EXPECT_EQ(Get(out, "b1").float_data_size(), 64);
  EXPECT_FALSE(Get(out, "b1").has_raw_data());
  for (float v : Get(out, "b1").float_data()) EXPECT_EQ(v, 0.0f);
  EXPECT_FALSE(ExternalOf(Get(out, "w2")));
  EXPECT_EQ(Get(out, "w2").raw_data().size(), 4096u);
  ASSERT_TRUE(ExternalOf(Get(out, "w1")));
  EXPECT_EQ(ExternalOf(Get(out, "w1"))->location, "w1.bin");
  ASSERT_TRUE(ExternalOf(Get(out, "b2")));
  EXPECT_EQ(ExternalOf(Get(out, "b2"))->location, "b2.bin");
  EXPECT_EQ(BytesIn(out, "b2", tmp_ / "out"), std::string(64, '\0'));
  EXPECT_NE(BytesIn(out, "w1", tmp_ / "out"), f1);
  EXPECT_EQ(BytesIn(out, "u8", tmp_ / "out"), Get(Mlp(), "u8").raw_data());
}

// ---- Refusals ---------------------------------------------------------------------------------

class Refusal : public ExternalData {
 protected:
  // tmp/outside.bin, and tmp/model/model.onnx whose w1 is at `location` (with `length`, or the
  // right length when empty), with tmp/model/weights.bin holding w1.
  std::string ModelWith(const std::string& location, const std::string& length = "",
                        const std::string& offset = "0") {
    onnx::ModelProto m = Mlp();
    std::string weights;
    Externalize(Find(&m, "w1"), "weights.bin", &weights);
    WriteFile(tmp_ / "outside.bin", weights);
    onnx::TensorProto* w1 = Find(&m, "w1");
    SetEntry(w1, "location", location);
    SetEntry(w1, "offset", offset);
    if (!length.empty()) SetEntry(w1, "length", length);
    return WriteModel(tmp_ / "model", "model.onnx", m, {{"weights.bin", weights}});
  }

  void ExpectRefused(const std::string& path, const std::string& location, const std::string& why) {
    auto m = LoadModel(path);
    ASSERT_FALSE(m.ok()) << location;
    const std::string msg = m.status().message();
    EXPECT_TRUE(Contains(msg, "'" + path + "'")) << msg;
    EXPECT_TRUE(Contains(msg, "tensor 'w1'")) << msg;
    EXPECT_TRUE(Contains(msg, "external data '" + location + "'")) << msg;
    EXPECT_TRUE(Contains(msg, why)) << msg;
  }
};

TEST_F(Refusal, AbsoluteLocation) {
  const std::string abs = tmp_ / "model/weights.bin";
  ExpectRefused(ModelWith(abs), abs, "is an absolute path");
}

TEST_F(Refusal, LocationThatClimbsOut) {
  ExpectRefused(ModelWith("../outside.bin"), "../outside.bin", "leaves the model's folder ('..')");
  ExpectRefused(ModelWith("sub/../../outside.bin"), "sub/../../outside.bin",
                "leaves the model's folder");
}

TEST_F(Refusal, SymlinkThatLeadsOut) {
  const std::string path = ModelWith("link.bin");
  fs::create_symlink(tmp_ / "outside.bin", tmp_ / "model/link.bin");
  ExpectRefused(path, "link.bin", "through a symbolic link");
  fs::create_directory_symlink(tmp_.path(), tmp_ / "model/up");
  ExpectRefused(ModelWith("up/outside.bin"), "up/outside.bin", "through a symbolic link");
}

TEST_F(Refusal, SymlinkThatStaysInsideIsFollowed) {
  const std::string path = ModelWith("alias.bin");
  fs::create_symlink("weights.bin", tmp_ / "model/alias.bin");
  auto m = LoadModel(path);
  ASSERT_TRUE(m.ok()) << m.status().message();
  EXPECT_EQ(Get(*m, "w1").raw_data(), Get(Mlp(), "w1").raw_data());
}

TEST_F(Refusal, MissingFile) { ExpectRefused(ModelWith("nope.bin"), "nope.bin", "does not exist"); }

TEST_F(Refusal, FileTooShort) {
  ExpectRefused(ModelWith("weights.bin", "", "4"), "weights.bin",
                "offset 4 + length 8192 is past the end of");
  ExpectRefused(ModelWith("weights.bin", "", "99999"), "weights.bin", "(8192 bytes)");
}

TEST_F(Refusal, LengthThatDisagreesWithTheShape) {
  ExpectRefused(ModelWith("weights.bin", "8000"), "weights.bin",
                "length 8000 disagrees with dims [64, 32] of FLOAT, which take 8192 bytes");
}

TEST_F(Refusal, MalformedEntries) {
  ExpectRefused(ModelWith("weights.bin", "", "12x"), "weights.bin",
                "offset '12x' is not a byte count");
  ExpectRefused(ModelWith("weights.bin", "-1"), "weights.bin", "length '-1' is not a byte count");
  ExpectRefused(ModelWith("sub/.."), "sub/..", "names the model's folder");
  ExpectRefused(ModelWith("."), ".", "names the model's folder");
}

TEST_F(Refusal, ADirectoryInsteadOfAFile) {
  const std::string path = ModelWith("dir.bin");
  fs::create_directory(tmp_ / "model/dir.bin");
  ExpectRefused(path, "dir.bin", "is not a regular file");
}

TEST_F(ExternalData, RefusesAModelOver2GiBWithoutExternalData) {
  // A sparse file: 2 GiB + 1 byte of size, no disk used. LoadModel refuses it before reading.
  const std::string path = tmp_ / "huge.onnx";
  const int fd = open(path.c_str(), O_CREAT | O_WRONLY, 0644);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(ftruncate(fd, off_t{2147483648}), 0);
  close(fd);
  auto m = LoadModel(path);
  ASSERT_FALSE(m.ok());
  EXPECT_TRUE(Contains(m.status().message(),
                       "'" + path +
                           "' is larger than 2 GiB (2147483648 bytes); protobuf cannot "
                           "read it: the weights must be in external data"))
      << m.status().message();
}

// ---- Writing ----------------------------------------------------------------------------------

TEST_F(ExternalData, KeepWritesTheInputsLayoutBesideAnOutputElsewhere) {
  const std::string in = OneFileModel();
  const auto before = Snapshot(tmp_ / "in");
  fs::create_directories(tmp_ / "out");
  auto r = ReinitFile(Options(in, tmp_ / "out/out.onnx", ExternalDataMode::kKeep));
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_EQ(r->data_files, std::vector<std::string>{tmp_ / "out/weights.bin"});
  EXPECT_EQ(Snapshot(tmp_ / "in"), before) << "the input's files changed";
  EXPECT_EQ(Names(Snapshot(tmp_ / "out")), (std::vector<std::string>{"out.onnx", "weights.bin"}));

  const onnx::ModelProto input = reinit_cli_test::ParseModel(before.at("model.onnx"));
  const onnx::ModelProto out = reinit_cli_test::ParseModel(ReadFile(tmp_ / "out/out.onnx"));
  for (const char* name : {"w1", "b1", "w2", "b2", "u8"}) {
    auto e_in = ExternalOf(Get(input, name));
    auto e_out = ExternalOf(Get(out, name));
    ASSERT_TRUE(e_out) << name << " is no longer external";
    EXPECT_EQ(e_out->location, "weights.bin") << name;
    EXPECT_EQ(e_out->offset, e_in->offset) << name;
    EXPECT_EQ(e_out->length, e_in->length) << name;
  }
  EXPECT_EQ(ReadFile(tmp_ / "out/weights.bin").size(), before.at("weights.bin").size());
  for (const char* name : {"b1", "b2", "u8"}) {
    EXPECT_EQ(BytesIn(out, name, tmp_ / "out"), BytesIn(input, name, tmp_ / "in")) << name;
  }
  for (const char* name : {"w1", "w2"}) {
    EXPECT_NE(BytesIn(out, name, tmp_ / "out"), BytesIn(input, name, tmp_ / "in")) << name;
  }
  // Through reinit's own loader too.
  auto back = LoadModel(tmp_ / "out/out.onnx");
  ASSERT_TRUE(back.ok()) << back.status().message();
  EXPECT_EQ(Get(*back, "w1").raw_data(), BytesIn(out, "w1", tmp_ / "out"));
}

TEST_F(ExternalData, KeepBesideTheInputNamesTheFilesAfterTheOutput) {
  const std::string in = OneFileModel();
  const auto before = Snapshot(tmp_ / "in");
  auto r = ReinitFile(Options(in, tmp_ / "in/out.onnx", ExternalDataMode::kKeep));
  ASSERT_TRUE(r.ok()) << r.status().message();
  const onnx::ModelProto out = reinit_cli_test::ParseModel(ReadFile(tmp_ / "in/out.onnx"));
  EXPECT_EQ(ExternalOf(Get(out, "w1"))->location, "out.weights.bin");
  // The default output name, and --in-place, follow the same rule.
  auto d = ReinitFile(Options(in, "", ExternalDataMode::kKeep));
  ASSERT_TRUE(d.ok()) << d.status().message();
  EXPECT_EQ(d->data_files, std::vector<std::string>{tmp_ / "in/model.reinit.weights.bin"});
  auto after = Snapshot(tmp_ / "in");
  EXPECT_EQ(after.at("weights.bin"), before.at("weights.bin"));
  EXPECT_EQ(after.at("model.onnx"), before.at("model.onnx"));
  EXPECT_EQ(Names(after),
            (std::vector<std::string>{"model.onnx", "model.reinit.onnx", "model.reinit.weights.bin",
                                      "out.onnx", "out.weights.bin", "weights.bin"}));

  RunOptions o = Options(in, "", ExternalDataMode::kKeep);
  o.in_place = true;
  auto p = ReinitFile(o);
  ASSERT_TRUE(p.ok()) << p.status().message();
  EXPECT_EQ(p->data_files, std::vector<std::string>{tmp_ / "in/model.weights.bin"});
  EXPECT_EQ(ReadFile(tmp_ / "in/weights.bin"), before.at("weights.bin"));
  auto back = LoadModel(in);
  ASSERT_TRUE(back.ok()) << back.status().message();
  EXPECT_EQ(Get(*back, "u8").raw_data(), Get(original_, "u8").raw_data());
}

TEST_F(ExternalData, KeepRenamesWhenAKeptNameWouldBeAnInputFile) {
  // The input reads w.bin and sub/w.bin; an output in sub/ keeping "w.bin" would write over
  // sub/w.bin, so every location is derived from the output's name instead.
  onnx::ModelProto m = Mlp();
  std::string a, b;
  Externalize(Find(&m, "w1"), "w.bin", &a);
  Externalize(Find(&m, "w2"), "sub/w.bin", &b);
  const std::string in = WriteModel(tmp_ / "in", "model.onnx", m, {{"w.bin", a}, {"sub/w.bin", b}});
  const auto before = Snapshot(tmp_ / "in");
  auto r = ReinitFile(Options(in, tmp_ / "in/sub/out.onnx", ExternalDataMode::kKeep));
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_EQ(r->data_files,
            (std::vector<std::string>{tmp_ / "in/sub/out.w.bin", tmp_ / "in/sub/out.sub_w.bin"}));
  auto after = Snapshot(tmp_ / "in");
  EXPECT_EQ(after.at("w.bin"), before.at("w.bin"));
  EXPECT_EQ(after.at("sub/w.bin"), before.at("sub/w.bin"));
  // An output elsewhere keeps the names, folders included.
  fs::create_directories(tmp_ / "out");
  auto k = ReinitFile(Options(in, tmp_ / "out/out.onnx", ExternalDataMode::kKeep));
  ASSERT_TRUE(k.ok()) << k.status().message();
  EXPECT_EQ(k->data_files, (std::vector<std::string>{tmp_ / "out/w.bin", tmp_ / "out/sub/w.bin"}));
  ASSERT_TRUE(LoadModel(tmp_ / "out/out.onnx").ok());
}

TEST_F(ExternalData, SingleWritesOneAlignedFile) {
  const std::string in = OneFileModel();
  const auto before = Snapshot(tmp_ / "in");
  auto r = ReinitFile(Options(in, tmp_ / "in/out.onnx", ExternalDataMode::kSingle));
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_EQ(r->data_files, std::vector<std::string>{tmp_ / "in/out.onnx.data"});
  const onnx::ModelProto out = reinit_cli_test::ParseModel(ReadFile(tmp_ / "in/out.onnx"));
  // Tensors of 1 KiB or more are in the file at 4096-aligned offsets, in graph order; smaller
  // ones are in the model.
  uint64_t expected_offset = 0;
  for (const char* name : {"w1", "w2", "u8"}) {
    auto e = ExternalOf(Get(out, name));
    ASSERT_TRUE(e) << name;
    EXPECT_EQ(e->location, "out.onnx.data");
    EXPECT_EQ(e->offset % 4096, 0u) << name;
    EXPECT_EQ(e->offset, expected_offset) << name;
    expected_offset += (e->length + 4095) / 4096 * 4096;
  }
  for (const char* name : {"b1", "b2"}) EXPECT_FALSE(ExternalOf(Get(out, name))) << name;
  const onnx::ModelProto input = reinit_cli_test::ParseModel(before.at("model.onnx"));
  for (const char* name : {"b1", "b2", "u8"}) {
    EXPECT_EQ(BytesIn(out, name, tmp_ / "in"), BytesIn(input, name, tmp_ / "in")) << name;
  }
  for (const char* name : {"w1", "w2"}) {
    EXPECT_NE(BytesIn(out, name, tmp_ / "in"), BytesIn(input, name, tmp_ / "in")) << name;
  }
  auto after = Snapshot(tmp_ / "in");
  EXPECT_EQ(after.at("weights.bin"), before.at("weights.bin"));
  EXPECT_EQ(after.at("model.onnx"), before.at("model.onnx"));
  EXPECT_EQ(Names(after),
            (std::vector<std::string>{"model.onnx", "out.onnx", "out.onnx.data", "weights.bin"}));
  ASSERT_TRUE(LoadModel(tmp_ / "in/out.onnx").ok());

  // With a lower threshold b1 (256 bytes) goes out too, and w2 after it starts at the next
  // multiple of 4096, not right after b1.
  RunOptions o = Options(in, tmp_ / "in/low.onnx", ExternalDataMode::kSingle);
  o.save.single_min_bytes = 100;
  ASSERT_TRUE(ReinitFile(o).ok());
  const onnx::ModelProto low = reinit_cli_test::ParseModel(ReadFile(tmp_ / "in/low.onnx"));
  ASSERT_TRUE(ExternalOf(Get(low, "b1")));
  EXPECT_EQ(ExternalOf(Get(low, "b1"))->offset, 8192u);
  ASSERT_TRUE(ExternalOf(Get(low, "w2")));
  EXPECT_EQ(ExternalOf(Get(low, "w2"))->offset, 12288u);
  EXPECT_FALSE(ExternalOf(Get(low, "b2")));  // 64 bytes
  auto back = LoadModel(tmp_ / "in/low.onnx");
  ASSERT_TRUE(back.ok()) << back.status().message();
  EXPECT_EQ(Get(*back, "b1").raw_data(), Get(original_, "b1").raw_data());
}

TEST_F(ExternalData, InlineWritesEverythingIntoTheModel) {
  const std::string in = OneFileModel();
  auto r = ReinitFile(Options(in, tmp_ / "in/out.onnx", ExternalDataMode::kInline));
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_TRUE(r->data_files.empty());
  const onnx::ModelProto out = reinit_cli_test::ParseModel(ReadFile(tmp_ / "in/out.onnx"));
  for (const auto& t : out.graph().initializer()) EXPECT_FALSE(ExternalOf(t)) << t.name();
  EXPECT_EQ(Get(out, "u8").raw_data(), Get(original_, "u8").raw_data());
  EXPECT_EQ(Names(Snapshot(tmp_ / "in")),
            (std::vector<std::string>{"model.onnx", "out.onnx", "weights.bin"}));
}

TEST_F(ExternalData, EveryModeWritesTheSameTensors) {
  const std::string in = OneFileModel();
  std::vector<onnx::ModelProto> loaded;
  for (auto mode :
       {ExternalDataMode::kKeep, ExternalDataMode::kSingle, ExternalDataMode::kInline}) {
    const std::string out = tmp_ / (std::string(ExternalDataModeName(mode)) + ".onnx");
    auto r = ReinitFile(Options(in, out, mode));
    ASSERT_TRUE(r.ok()) << r.status().message();
    auto m = LoadModel(out);
    ASSERT_TRUE(m.ok()) << m.status().message();
    loaded.push_back(*m);
  }
  for (size_t i = 1; i < loaded.size(); ++i) {
    for (const char* name : {"w1", "b1", "w2", "b2", "u8"}) {
      EXPECT_EQ(Get(loaded[i], name).raw_data(), Get(loaded[0], name).raw_data()) << name;
    }
  }
}

TEST_F(ExternalData, ProtobufLimitWithALoweredThreshold) {
  // The 2 GiB paths, exercised with a limit of 4 KiB: the MLP's .onnx is about 16 KiB inline.
  const std::string in = OneFileModel();
  const auto before = Snapshot(tmp_.path());
  RunOptions o = Options(in, tmp_ / "in/out.onnx", ExternalDataMode::kInline);
  o.save.max_proto_bytes = 4096;
  auto r = ReinitFile(o);
  ASSERT_FALSE(r.ok());
  EXPECT_TRUE(Contains(r.status().message(), "over the limit of 4096 bytes"))
      << r.status().message();
  EXPECT_TRUE(Contains(r.status().message(), "--external-data keep or single"))
      << r.status().message();
  EXPECT_EQ(Snapshot(tmp_.path()), before) << "a failed write left files";
  for (auto mode : {ExternalDataMode::kKeep, ExternalDataMode::kSingle}) {
    o.save.mode = mode;
    auto ok = ReinitFile(o);
    ASSERT_TRUE(ok.ok()) << ExternalDataModeName(mode) << ": " << ok.status().message();
    EXPECT_LE(fs::file_size(tmp_ / "in/out.onnx"), 4096u);
  }
  // A model whose weights are all inside cannot be kept under the limit: keep says to use single.
  const std::string plain = WriteModel(tmp_ / "plain", "model.onnx", Mlp(), {});
  o = Options(plain, tmp_ / "plain/out.onnx", ExternalDataMode::kKeep);
  o.save.max_proto_bytes = 4096;
  r = ReinitFile(o);
  ASSERT_FALSE(r.ok());
  EXPECT_TRUE(Contains(r.status().message(), "use --external-data single")) << r.status().message();
  o.save.mode = ExternalDataMode::kSingle;
  EXPECT_TRUE(ReinitFile(o).ok());
}

// ---- Atomicity --------------------------------------------------------------------------------

TEST_F(ExternalData, NoTemporaryFilesAfterSuccess) {
  const std::string in = OneFileModel();
  for (auto mode :
       {ExternalDataMode::kKeep, ExternalDataMode::kSingle, ExternalDataMode::kInline}) {
    ASSERT_TRUE(ReinitFile(Options(in, tmp_ / "in/out.onnx", mode)).ok());
    for (const auto& name : Names(Snapshot(tmp_.path()))) {
      EXPECT_FALSE(Contains(name, ".tmp.")) << name;
    }
  }
}

TEST_F(ExternalData, FailuresLeaveNothingBehind) {
  const std::string in = OneFileModel();
  const auto before = Snapshot(tmp_.path());
  // An output folder that does not exist.
  auto r = ReinitFile(Options(in, tmp_ / "no/such/out.onnx", ExternalDataMode::kSingle));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kIo);
  EXPECT_TRUE(Contains(r.status().message(), "no/such/out.onnx")) << r.status().message();
  EXPECT_EQ(Snapshot(tmp_.path()), before);
  // The data file's name is taken by a folder: the data file cannot be renamed into place.
  fs::create_directory(tmp_ / "in/out.onnx.data");
  const auto with_dir = Snapshot(tmp_.path());
  r = ReinitFile(Options(in, tmp_ / "in/out.onnx", ExternalDataMode::kSingle));
  ASSERT_FALSE(r.ok());
  EXPECT_TRUE(Contains(r.status().message(), "out.onnx.data")) << r.status().message();
  EXPECT_EQ(Snapshot(tmp_.path()), with_dir);
}

TEST_F(ExternalData, AFailedRenameTakesBackTheFilesAlreadyInPlace) {
  // Two data files are renamed into place, then the model's name turns out to be a folder: both
  // new data files go, and a file one of them replaced comes back.
  onnx::ModelProto m = Mlp();
  std::string a, b;
  Externalize(Find(&m, "w1"), "a.bin", &a);
  Externalize(Find(&m, "w2"), "b.bin", &b);
  const std::string in = WriteModel(tmp_ / "in", "model.onnx", m, {{"a.bin", a}, {"b.bin", b}});
  fs::create_directories(tmp_ / "out/out.onnx");
  WriteFile(tmp_ / "out/a.bin", "an older file");
  const auto before = Snapshot(tmp_.path());
  auto r = ReinitFile(Options(in, tmp_ / "out/out.onnx", ExternalDataMode::kKeep));
  ASSERT_FALSE(r.ok());
  EXPECT_TRUE(Contains(r.status().message(), "cannot rename the temporary file to"))
      << r.status().message();
  EXPECT_EQ(Snapshot(tmp_.path()), before);
}

// Writing over an earlier output never touches the data files it uses: the new ones take the
// next generation's names, and the old ones go once the new .onnx is in place (the kill test,
// tests/kill_test.cc, interrupts this at every step).
TEST_F(ExternalData, WritingAnOutputAgainAlternatesItsDataFilesGenerations) {
  const std::string in = OneFileModel();
  fs::create_directories(tmp_ / "out");
  const std::string out = tmp_ / "out/out.onnx";
  struct Case {
    ExternalDataMode mode;
    std::vector<std::string> names;  // the data file of runs 1, 2, 3
  };
  for (const Case& c :
       {Case{ExternalDataMode::kSingle, {"out.onnx.data", "out.onnx.1.data", "out.onnx.data"}},
        Case{ExternalDataMode::kKeep, {"weights.bin", "weights.1.bin", "weights.bin"}}}) {
    fs::remove_all(tmp_ / "out");
    fs::create_directories(tmp_ / "out");
    std::string previous_w1;
    for (int run = 0; run < 3; ++run) {
      RunOptions o = Options(in, out, c.mode);
      o.plan.seed = 10 + run;
      if (run > 0) {
        EXPECT_EQ(DataFilesInUse(out),
                  std::vector<std::string>{tmp_ / ("out/" + c.names[run - 1])});
      }
      auto r = ReinitFile(o);
      ASSERT_TRUE(r.ok()) << r.status().message();
      const std::string name = c.names[run];
      EXPECT_EQ(r->data_files, std::vector<std::string>{tmp_ / ("out/" + name)});
      EXPECT_EQ(Names(Snapshot(tmp_ / "out")), (std::vector<std::string>{"out.onnx", name}))
          << "run " << run << ": the previous generation is still there";
      const onnx::ModelProto m = reinit_cli_test::ParseModel(ReadFile(out));
      EXPECT_EQ(ExternalOf(Get(m, "w1"))->location, name);
      auto back = LoadModel(out);
      ASSERT_TRUE(back.ok()) << back.status().message();
      const std::string w1 = BytesIn(m, "w1", tmp_ / "out");
      EXPECT_EQ(Get(*back, "w1").raw_data(), w1);
      EXPECT_NE(w1, previous_w1) << "run " << run << " wrote the same weights";
      previous_w1 = w1;
    }
  }
}

TEST_F(ExternalData, ADataFileNoModelUsesIsReplacedInPlace) {
  // No model at the output: a file under the data file's name (left by an interrupted run, or
  // by anything else) is simply replaced, as is one that the model there does not use.
  const std::string in = OneFileModel();
  fs::create_directories(tmp_ / "out");
  const std::string out = tmp_ / "out/out.onnx";
  WriteFile(tmp_ / "out/out.onnx.data", "left over");
  auto r = ReinitFile(Options(in, out, ExternalDataMode::kSingle));
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_EQ(r->data_files, std::vector<std::string>{tmp_ / "out/out.onnx.data"});
  WriteFile(tmp_ / "out/out.onnx.1.data", "left over too");
  r = ReinitFile(Options(in, out, ExternalDataMode::kSingle));
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_EQ(r->data_files, std::vector<std::string>{tmp_ / "out/out.onnx.1.data"});
  EXPECT_EQ(Names(Snapshot(tmp_ / "out")),
            (std::vector<std::string>{"out.onnx", "out.onnx.1.data"}));
}

TEST_F(ExternalData, DataFilesInUseIsEmptyForAnythingButAModel) {
  EXPECT_TRUE(DataFilesInUse(tmp_ / "none.onnx").empty());
  WriteFile(tmp_ / "junk.onnx", "not a model at all \xff\xff\xff");
  EXPECT_TRUE(DataFilesInUse(tmp_ / "junk.onnx").empty());
  fs::create_directories(tmp_ / "folder.onnx");
  EXPECT_TRUE(DataFilesInUse(tmp_ / "folder.onnx").empty());
  // Absolute locations are not the output's: never counted (nor removed).
  onnx::ModelProto m = Mlp();
  std::string f;
  Externalize(Find(&m, "w1"), "/etc/passwd", &f);
  Externalize(Find(&m, "w2"), "sub/w2.bin", &f);
  reinit_cli_test::SaveModelFile(m, tmp_ / "m.onnx");
  EXPECT_EQ(DataFilesInUse(tmp_ / "m.onnx"), std::vector<std::string>{tmp_ / "sub/w2.bin"});
}

TEST_F(ExternalData, TemporaryNamesOfDeadProcessesAreRemoved) {
  const std::string in = OneFileModel();
  fs::create_directories(tmp_ / "out");
  const pid_t child = fork();
  if (child == 0) _exit(0);
  waitpid(child, nullptr, 0);  // a process that no longer runs
  const std::string dead = "w.bin.tmp." + std::to_string(child) + ".0123456789abcdef";
  const std::string alive = "w.bin.tmp." + std::to_string(getppid()) + ".0123456789abcdef";
  const std::string other = "notes.tmp.txt";
  for (const auto& name : {dead, alive, other}) WriteFile(tmp_ / ("out/" + name), "x");
  ASSERT_TRUE(ReinitFile(Options(in, tmp_ / "out/out.onnx", ExternalDataMode::kSingle)).ok());
  EXPECT_FALSE(fs::exists(tmp_ / ("out/" + dead)));
  EXPECT_TRUE(fs::exists(tmp_ / ("out/" + alive)));
  EXPECT_TRUE(fs::exists(tmp_ / ("out/" + other)));
}

TEST_F(ExternalData, RefusesToWriteOverTheInputsDataFile) {
  // model.onnx keeps its data in model.onnx.data; --in-place --external-data single would
  // replace it while the old .onnx still points into it.
  onnx::ModelProto m = Mlp();
  std::string data;
  Externalize(Find(&m, "w1"), "model.onnx.data", &data);
  const std::string in = WriteModel(tmp_ / "in", "model.onnx", m, {{"model.onnx.data", data}});
  const auto before = Snapshot(tmp_.path());
  RunOptions o = Options(in, "", ExternalDataMode::kSingle);
  o.in_place = true;
  auto r = ReinitFile(o);
  ASSERT_FALSE(r.ok());
  EXPECT_TRUE(Contains(r.status().message(),
                       "would overwrite '" + fs::canonical(tmp_ / "in/model.onnx.data").string() +
                           "', a file of the input model"))
      << r.status().message();
  EXPECT_EQ(Snapshot(tmp_.path()), before);
  // Into another file name it works, and the input is as it was.
  o.in_place = false;
  o.output = tmp_ / "in/new.onnx";
  ASSERT_TRUE(ReinitFile(o).ok());
  EXPECT_EQ(ReadFile(tmp_ / "in/model.onnx.data"), before.at("in/model.onnx.data"));
}

// ---- The command line -------------------------------------------------------------------------

TEST_F(ExternalData, CommandLineOption) {
  const std::string in = OneFileModel();
  auto bad = reinit_cli_test::RunReinit({in, "--external-data", "separate"});
  EXPECT_EQ(bad.exit_code, 2) << bad;
  EXPECT_TRUE(Contains(bad.err, "reinit: error: ")) << bad;
  EXPECT_TRUE(Contains(bad.err, "--external-data")) << bad;
  const std::string out = tmp_ / "in/cli.onnx";
  auto ok = reinit_cli_test::RunReinit({in, "-o", out, "--external-data", "single"});
  ASSERT_EQ(ok.exit_code, 0) << ok;
  EXPECT_TRUE(Contains(ok.out, "wrote " + out + " with external data " + out + ".data")) << ok;
  EXPECT_TRUE(fs::exists(out + ".data"));
  auto refused = reinit_cli_test::RunReinit({in, "-o", out, "--external-data", "inline"});
  EXPECT_EQ(refused.exit_code, 0) << refused;  // small enough inline
  // A refused location reaches the user once, naming model, tensor and location.
  onnx::ModelProto m = Mlp();
  std::string f;
  Externalize(Find(&m, "w1"), "../escape.bin", &f);
  const std::string evil = WriteModel(tmp_ / "evil", "model.onnx", m, {});
  auto err = reinit_cli_test::RunReinit({evil});
  EXPECT_EQ(err.exit_code, 1) << err;
  EXPECT_TRUE(Contains(err.err, "reinit: error: '" + evil +
                                    "': tensor 'w1', external data '../escape.bin': leaves the "
                                    "model's folder ('..')\n"))
      << err;
}

// ---- Over 2 GiB, for real ---------------------------------------------------------------------

// Three Gemm layers of 16384 x 12288 floats (768 MiB each, 2.25 GiB together) in external data:
// loaded, re-initialized and written with keep and single, each output loaded back. Needs about
// 7 GB of free disk under $TMPDIR and 5 GB of memory, and takes about a minute, so it runs only
// with REINIT_TEST_OVER_2GIB=1 (ctest -R Over2GiB after exporting it). With
// REINIT_TEST_OVER_2GIB_KEEP=1 the generated input is left in place and its path printed, for
// timing the command line by hand.
TEST(ExternalDataOver2GiB, LoadsReinitializesAndWrites) {
  const char* enabled = std::getenv("REINIT_TEST_OVER_2GIB");
  if (!enabled || std::string(enabled) != "1") {
    GTEST_SKIP() << "set REINIT_TEST_OVER_2GIB=1 to run (writes about 7 GB)";
  }
  const char* base = std::getenv("TMPDIR");
  std::string root = std::string(base && *base ? base : "/tmp") + "/reinit_2gib_XXXXXX";
  ASSERT_NE(mkdtemp(root.data()), nullptr);
  const bool keep_input = std::getenv("REINIT_TEST_OVER_2GIB_KEEP") != nullptr;

  constexpr int64_t kIn = 12288, kHidden = 16384;
  auto m = reinit_test::ParseModel(R"(<ir_version: 8, opset_import: ["" : 17]>
g (float[1, 12288] x) => (float[1, 16384] y) {
  h1 = Gemm <transB = 1> (x, w1)
  r1 = Relu (h1)
  h2 = Gemm <transB = 1> (r1, w2)
  r2 = Tanh (h2)
  y = Gemm <transB = 1> (r2, w3)
})");
  const std::vector<std::pair<std::string, std::vector<int64_t>>> weights = {
      {"w1", {kHidden, kIn}}, {"w2", {kIn, kHidden}}, {"w3", {kHidden, kIn}}};
  fs::create_directories(root + "/in");
  const std::string data_path = root + "/in/weights.bin";
  const int fd = open(data_path.c_str(), O_CREAT | O_WRONLY | O_TRUNC, 0644);
  ASSERT_GE(fd, 0);
  const uint64_t bytes_each = static_cast<uint64_t>(kIn) * kHidden * 4;
  std::string chunk(64 << 20, '\0');
  for (size_t i = 0; i < chunk.size(); i += 4) {
    const float v = 0.001f * static_cast<float>(i % 4093);
    std::memcpy(chunk.data() + i, &v, 4);
  }
  uint64_t offset = 0;
  for (const auto& [name, dims] : weights) {
    auto* t = m.mutable_graph()->add_initializer();
    t->set_name(name);
    t->set_data_type(onnx::TensorProto::FLOAT);
    for (int64_t d : dims) t->add_dims(d);
    SetEntry(t, "location", "weights.bin");
    SetEntry(t, "offset", std::to_string(offset));
    SetEntry(t, "length", std::to_string(bytes_each));
    t->set_data_location(onnx::TensorProto::EXTERNAL);
    for (uint64_t done = 0; done < bytes_each; done += chunk.size()) {
      ASSERT_EQ(pwrite(fd, chunk.data(), chunk.size(), static_cast<off_t>(offset + done)),
                static_cast<ssize_t>(chunk.size()));
    }
    offset += bytes_each;
  }
  close(fd);
  reinit_cli_test::SaveModelFile(m, root + "/in/model.onnx");
  ASSERT_GT(fs::file_size(data_path), uint64_t{2} << 30);

  // Inline cannot hold it.
  RunOptions o;
  o.input = root + "/in/model.onnx";
  o.output = root + "/in/inline.onnx";
  o.save.mode = ExternalDataMode::kInline;
  auto r = ReinitFile(o);
  ASSERT_FALSE(r.ok());
  EXPECT_TRUE(Contains(r.status().message(), "over protobuf's 2 GiB limit"))
      << r.status().message();

  for (auto mode : {ExternalDataMode::kKeep, ExternalDataMode::kSingle}) {
    const std::string dir = root + "/" + ExternalDataModeName(mode);
    fs::create_directories(dir);
    o.output = dir + "/out.onnx";
    o.save.mode = mode;
    const auto start = std::chrono::steady_clock::now();
    r = ReinitFile(o);
    ASSERT_TRUE(r.ok()) << r.status().message();
    const double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    std::printf("%s: re-initialized and wrote 2.25 GiB in %.1f s\n", ExternalDataModeName(mode),
                seconds);
    EXPECT_LT(fs::file_size(o.output), 4096u);
    auto back = LoadModel(o.output);
    ASSERT_TRUE(back.ok()) << back.status().message();
    for (const auto& [name, dims] : weights) {
      const std::string& raw = Get(*back, name).raw_data();
      ASSERT_EQ(raw.size(), bytes_each) << name;
      EXPECT_NE(raw.compare(0, 4096, chunk, 0, 4096), 0) << name << " was not rewritten";
    }
    fs::remove_all(dir);
  }
  if (keep_input) {
    std::printf("input left in %s/in\n", root.c_str());
  } else {
    fs::remove_all(root);
  }
}

}  // namespace
}  // namespace external_data_test
}  // namespace reinit
