// Old and new files: an IR 3 model (every initializer also a graph input) keeps that property
// and passes the checker; an IR 10 model with data types this onnx library does not know
// (FLOAT8E4M3FN, INT4, and a number no onnx has yet) and fields added after it (unknown fields,
// written here as raw protobuf wire bytes) round-trips without loss, in the model and in external
// data, while its known layers are re-initialized.
#include <google/protobuf/unknown_field_set.h>
#include <gtest/gtest.h>
#include <onnx/checker.h>

#include "cli_util.h"
#include "io/external_data.h"
#include "io/model_io.h"
#include "model_builder.h"
#include "reinit.h"

namespace reinit {
namespace ir_versions_test {
namespace {

namespace fs = std::filesystem;
using google::protobuf::UnknownField;
using google::protobuf::UnknownFieldSet;
using reinit_cli_test::ReadFile;
using reinit_cli_test::TempDir;
using reinit_cli_test::WriteFile;

bool Contains(const std::string& haystack, const std::string& needle) {
  return haystack.find(needle) != std::string::npos;
}

const onnx::TensorProto& Get(const onnx::ModelProto& m, const std::string& name) {
  const auto* t = reinit_test::FindInitializer(m, name);
  EXPECT_NE(t, nullptr) << name;
  static const onnx::TensorProto kEmpty;
  return t ? *t : kEmpty;
}

onnx::TensorProto* Find(onnx::ModelProto* m, const std::string& name) {
  for (auto& t : *m->mutable_graph()->mutable_initializer()) {
    if (t.name() == name) return &t;
  }
  ADD_FAILURE() << "no initializer " << name;
  return nullptr;
}

// The unknown fields of a message, as "number:wire bytes" strings, for comparison.
std::vector<std::string> Unknown(const google::protobuf::Message& m) {
  const UnknownFieldSet& set = m.GetReflection()->GetUnknownFields(m);
  std::vector<std::string> out;
  for (int i = 0; i < set.field_count(); ++i) {
    const UnknownField& f = set.field(i);
    std::string value;
    switch (f.type()) {
      case UnknownField::TYPE_VARINT:
        value = std::to_string(f.varint());
        break;
      case UnknownField::TYPE_LENGTH_DELIMITED:
        value = f.length_delimited();
        break;
      default:
        value = "?";
    }
    out.push_back(std::to_string(f.number()) + ":" + value);
  }
  return out;
}

void AddRawTensor(onnx::ModelProto* m, const std::string& name, int32_t type,
                  std::vector<int64_t> dims, const std::string& raw) {
  auto* t = m->mutable_graph()->add_initializer();
  t->set_name(name);
  t->set_data_type(type);
  for (int64_t d : dims) t->add_dims(d);
  t->set_raw_data(raw);
}

void MakeExternal(onnx::TensorProto* t, const std::string& location, std::string* file,
                  bool with_length = true) {
  const std::string raw = t->raw_data();
  auto add = [t](const std::string& k, const std::string& v) {
    auto* e = t->add_external_data();
    e->set_key(k);
    e->set_value(v);
  };
  add("location", location);
  add("offset", std::to_string(file->size()));
  if (with_length) add("length", std::to_string(raw.size()));
  file->append(raw);
  t->clear_raw_data();
  t->set_data_location(onnx::TensorProto::EXTERNAL);
}

// ---- IR 3 -------------------------------------------------------------------------------------

onnx::ModelProto Ir3Model() {
  // IR 3, opset 7: the initializers w and b are graph inputs too, as IR <= 3 requires.
  auto m = reinit_test::ParseModel(R"(<ir_version: 3, opset_import: ["" : 7]>
g (float[1, 8] x, float[4, 8] w, float[4] b) => (float[1, 4] y) {
  h = Gemm <transB = 1> (x, w, b)
  y = Relu (h)
})");
  reinit_test::AddFloatInitializer(&m, "w", {4, 8});
  reinit_test::AddFloatInitializer(&m, "b", {4});
  return m;
}

std::vector<std::string> InputNames(const onnx::ModelProto& m) {
  std::vector<std::string> names;
  for (const auto& i : m.graph().input()) names.push_back(i.name());
  return names;
}

// An input that already fails the checker (IR 3 initializers missing from the graph inputs):
// the output has exactly the same defect, which is the input's, not reinit's: written, with a
// warning that says so. The plain CLI run exits 0 and prints it.
TEST(IrVersions, TheInputsOwnCheckerDefectIsAWarning) {
  TempDir tmp;
  onnx::ModelProto m = Ir3Model();
  m.mutable_graph()->mutable_input()->DeleteSubrange(1, 2);
  std::vector<std::string> ignored;
  const Status input_verdict = ValidateModel(m, "the model", &ignored);
  ASSERT_FALSE(input_verdict.ok());
  reinit_cli_test::SaveModelFile(m, tmp / "model.onnx");
  RunOptions o;
  o.input = tmp / "model.onnx";
  o.output = tmp / "out.onnx";
  auto r = ReinitFile(o);
  ASSERT_TRUE(r.ok()) << r.status().message();
  ASSERT_EQ(r->warnings.size(), 1u);
  EXPECT_NE(r->warnings[0].find(input_verdict.message()), std::string::npos) << r->warnings[0];
  EXPECT_NE(r->warnings[0].find("the input has exactly this defect"), std::string::npos);
  auto out = LoadModel(o.output);
  ASSERT_TRUE(out.ok());
  EXPECT_NE(Get(*out, "w").raw_data(), Get(m, "w").raw_data()) << "w was not rewritten";
  EXPECT_EQ(ValidateModel(*out, "the model", &ignored).message(), input_verdict.message());
  const auto run = reinit_cli_test::RunReinit({o.input, "-o", tmp / "cli.onnx", "-q"});
  EXPECT_EQ(run.exit_code, 0) << run;
  EXPECT_NE(run.err.find("warning"), std::string::npos) << run;
}

TEST(IrVersions, Ir3InitializersStayGraphInputsAndPassTheChecker) {
  TempDir tmp;
  const onnx::ModelProto input = Ir3Model();
  onnx::checker::check_model(input);  // the test model itself is valid IR 3
  // The checker enforces the rule: without the inputs it fails.
  onnx::ModelProto stripped = input;
  stripped.mutable_graph()->mutable_input()->DeleteSubrange(1, 2);
  EXPECT_THROW(onnx::checker::check_model(stripped), std::exception);

  for (bool external : {false, true}) {
    onnx::ModelProto m = input;
    std::string file;
    if (external) MakeExternal(Find(&m, "w"), "w.bin", &file);
    const std::string dir = tmp / (external ? "ext" : "plain");
    fs::create_directories(dir);
    if (external) WriteFile(dir + "/w.bin", file);
    reinit_cli_test::SaveModelFile(m, dir + "/model.onnx");
    RunOptions o;
    o.input = dir + "/model.onnx";
    o.output = dir + "/out.onnx";
    auto r = ReinitFile(o);
    ASSERT_TRUE(r.ok()) << r.status().message();
    EXPECT_TRUE(r->warnings.empty()) << r->warnings[0];
    auto out = LoadModel(o.output);
    ASSERT_TRUE(out.ok()) << out.status().message();
    EXPECT_EQ(out->ir_version(), 3);
    EXPECT_EQ(InputNames(*out), (std::vector<std::string>{"x", "w", "b"}));
    EXPECT_NO_THROW(onnx::checker::check_model(*out));
    std::vector<std::string> warnings;
    EXPECT_TRUE(ValidateModel(*out, "out", &warnings).ok());
    EXPECT_TRUE(warnings.empty());
    EXPECT_NE(Get(*out, "w").raw_data(), Get(input, "w").raw_data()) << "w was not rewritten";
    EXPECT_EQ(Get(*out, "b").raw_data(), std::string(16, '\0'));
    if (external) {
      const auto raw = reinit_cli_test::ParseModel(ReadFile(o.output));
      EXPECT_EQ(Get(raw, "w").data_location(), onnx::TensorProto::EXTERNAL);
    }
  }
}

// ---- IR 10 ------------------------------------------------------------------------------------

constexpr int32_t kFloat8E4M3FN = 17;
constexpr int32_t kInt4 = 22;
constexpr int32_t kFromTheFuture = 99;           // no onnx release has it: width unknown
constexpr int kNodeFieldFromTheFuture = 1300;    // NodeProto and TensorProto field numbers that
constexpr int kTensorFieldFromTheFuture = 1400;  // no onnx release uses

// IR 10, opset 21: a Gemm layer, and tensors of the IR 9/10 types FLOAT8 and INT4 and of one no
// onnx has yet, consumed by a custom-domain op (whose schema the checker does not know). Fields
// added after this onnx library (1.23), as unknown fields: on the Gemm node and on the weight and
// the FLOAT8 tensor (numbers no onnx uses yet), on the graph and, appended as wire bytes after
// serialization, on the model.
struct Ir10 {
  onnx::ModelProto model;
  std::string bytes;  // the serialized model with the appended model-level field
};

std::string MetadataEntry(const std::string& key, const std::string& value) {
  onnx::StringStringEntryProto e;
  e.set_key(key);
  e.set_value(value);
  return e.SerializeAsString();
}

// Wire bytes of field `number` (< 2^11) as a varint `value` (< 128).
std::string VarintField(int number, int value) {
  const uint32_t tag = static_cast<uint32_t>(number) << 3;  // wire type 0
  std::string s;
  s.push_back(static_cast<char>((tag & 0x7F) | 0x80));
  s.push_back(static_cast<char>(tag >> 7));
  s.push_back(static_cast<char>(value));
  return s;
}

Ir10 Ir10Model(std::string* data_file) {
  Ir10 r;
  r.model = reinit_test::ParseModel(R"(<ir_version: 10, opset_import: ["" : 21, "com.example" : 1]>
g (float[1, 8] x) => (float[1, 4] y, float[1] z) {
  h = Gemm <transB = 1> (x, w, b)
  y = Relu (h)
  z = com.example.Consume (f8, i4, future)
})");
  onnx::ModelProto& m = r.model;
  m.mutable_graph()->mutable_node(0)->set_name("fc");
  reinit_test::AddFloatInitializer(&m, "w", {4, 8});
  reinit_test::AddFloatInitializer(&m, "b", {4});
  std::string f8(64, '\0'), i4(5, '\0'), future(7, '\0');
  for (size_t i = 0; i < f8.size(); ++i) f8[i] = static_cast<char>(i * 37 + 1);
  for (size_t i = 0; i < i4.size(); ++i) i4[i] = static_cast<char>(0x1F + i);
  for (size_t i = 0; i < future.size(); ++i) future[i] = static_cast<char>(0xA0 + i);
  AddRawTensor(&m, "f8", kFloat8E4M3FN, {8, 8}, f8);
  AddRawTensor(&m, "i4", kInt4, {10}, i4);  // 10 four-bit values in 5 bytes
  AddRawTensor(&m, "future", kFromTheFuture, {7}, future);

  onnx::NodeProto* gemm = m.mutable_graph()->mutable_node(0);
  gemm->GetReflection()->MutableUnknownFields(gemm)->AddLengthDelimited(kNodeFieldFromTheFuture,
                                                                        "fast_gemm");
  for (const char* name : {"w", "f8"}) {
    onnx::TensorProto* t = Find(&m, name);
    t->GetReflection()->MutableUnknownFields(t)->AddLengthDelimited(kTensorFieldFromTheFuture,
                                                                    MetadataEntry("origin", name));
  }
  onnx::GraphProto* g = m.mutable_graph();
  g->GetReflection()->MutableUnknownFields(g)->AddVarint(1234, 42);
  if (data_file) {
    MakeExternal(Find(&m, "f8"), "data.bin", data_file);
    MakeExternal(Find(&m, "i4"), "data.bin", data_file);
    MakeExternal(Find(&m, "future"), "data.bin", data_file, /*with_length=*/false);
    MakeExternal(Find(&m, "w"), "data.bin", data_file);
  }
  r.bytes = m.SerializeAsString() + VarintField(1500, 7);
  return r;
}

void ExpectUnknownFieldsKept(const onnx::ModelProto& out) {
  EXPECT_EQ(Unknown(out), std::vector<std::string>{"1500:7"});
  EXPECT_EQ(Unknown(out.graph()), std::vector<std::string>{"1234:42"});
  EXPECT_EQ(Unknown(out.graph().node(0)),
            std::vector<std::string>{std::to_string(kNodeFieldFromTheFuture) + ":fast_gemm"});
  EXPECT_EQ(Unknown(Get(out, "w")),
            std::vector<std::string>{std::to_string(kTensorFieldFromTheFuture) + ":" +
                                     MetadataEntry("origin", "w")});
  EXPECT_EQ(Unknown(Get(out, "f8")),
            std::vector<std::string>{std::to_string(kTensorFieldFromTheFuture) + ":" +
                                     MetadataEntry("origin", "f8")});
}

TEST(IrVersions, Ir10UnknownTypesAndFieldsRoundTripInTheModel) {
  TempDir tmp;
  const Ir10 in = Ir10Model(nullptr);
  WriteFile(tmp / "model.onnx", in.bytes);
  RunOptions o;
  o.input = tmp / "model.onnx";
  o.output = tmp / "out.onnx";
  auto r = ReinitFile(o);
  ASSERT_TRUE(r.ok()) << r.status().message();
  // IR 10, opset 21 is within what this onnx library checks: written checked, no warning.
  for (const auto& w : r->warnings) ADD_FAILURE() << w;

  const auto out = reinit_cli_test::ParseModel(ReadFile(o.output));
  EXPECT_EQ(out.ir_version(), 10);
  ExpectUnknownFieldsKept(out);
  for (const char* name : {"f8", "i4", "future"}) {
    EXPECT_EQ(Get(out, name).SerializeAsString(), Get(in.model, name).SerializeAsString()) << name;
  }
  EXPECT_NE(Get(out, "w").raw_data(), Get(in.model, "w").raw_data()) << "w was not rewritten";
  EXPECT_EQ(Get(out, "b").raw_data(), std::string(16, '\0'));
  // The plan lists the layer it understood.
  ASSERT_GE(r->plan.layers_size(), 1);
  EXPECT_EQ(r->plan.layers(0).name(), "fc");
  EXPECT_TRUE(r->plan.layers(0).skipped().empty()) << r->plan.layers(0).skipped();
}

TEST(IrVersions, Ir10UnknownTypesRoundTripInExternalData) {
  TempDir tmp;
  std::string data;
  const Ir10 in = Ir10Model(&data);
  WriteFile(tmp / "data.bin", data);
  WriteFile(tmp / "model.onnx", in.bytes);
  // Read: every type's bytes arrive, the unknown-width one to the end of the file.
  ExternalSources sources;
  auto loaded = LoadModel(tmp / "model.onnx", &sources);
  ASSERT_TRUE(loaded.ok()) << loaded.status().message();
  const Ir10 plain = Ir10Model(nullptr);
  EXPECT_EQ(Get(*loaded, "f8").raw_data(), Get(plain.model, "f8").raw_data());
  EXPECT_EQ(Get(*loaded, "i4").raw_data(), Get(plain.model, "i4").raw_data());
  EXPECT_EQ(Get(*loaded, "future").raw_data(),
            Get(plain.model, "future").raw_data() + Get(plain.model, "w").raw_data());

  for (auto mode : {ExternalDataMode::kKeep, ExternalDataMode::kSingle}) {
    RunOptions o;
    o.input = tmp / "model.onnx";
    o.output = tmp / (std::string(ExternalDataModeName(mode)) + ".onnx");
    o.save.mode = mode;
    o.save.single_min_bytes = 1;  // small tensors too, so that f8 and i4 go out
    auto r = ReinitFile(o);
    ASSERT_TRUE(r.ok()) << r.status().message();
    const auto out = reinit_cli_test::ParseModel(ReadFile(o.output));
    ExpectUnknownFieldsKept(out);
    EXPECT_EQ(Get(out, "f8").data_type(), kFloat8E4M3FN);
    EXPECT_EQ(Get(out, "f8").data_location(), onnx::TensorProto::EXTERNAL);
    auto back = LoadModel(o.output);
    ASSERT_TRUE(back.ok()) << back.status().message();
    for (const char* name : {"f8", "i4"}) {
      EXPECT_EQ(Get(*back, name).raw_data(), Get(plain.model, name).raw_data()) << name;
    }
    EXPECT_NE(Get(*back, "w").raw_data(), Get(plain.model, "w").raw_data());
  }
}

TEST(IrVersions, Int4LengthIsCheckedInNibbles) {
  TempDir tmp;
  std::string data;
  Ir10 in = Ir10Model(&data);
  for (auto& e : *Find(&in.model, "i4")->mutable_external_data()) {
    if (e.key() == "length") e.set_value("10");  // one byte per value: wrong for INT4
  }
  WriteFile(tmp / "data.bin", data);
  WriteFile(tmp / "model.onnx", in.model.SerializeAsString());
  auto m = LoadModel(tmp / "model.onnx");
  ASSERT_FALSE(m.ok());
  EXPECT_TRUE(Contains(m.status().message(),
                       "tensor 'i4', external data 'data.bin': length 10 disagrees with dims [10] "
                       "of INT4, which take 5 bytes"))
      << m.status().message();
}

}  // namespace
}  // namespace ir_versions_test
}  // namespace reinit
