// Model IO: loading refuses what is not a model with a message naming the file; validation runs
// the checker and warns (not fails) on models newer than the library; saving is atomic.
#include "io/model_io.h"

#include <dirent.h>
#include <gtest/gtest.h>
#include <onnx/defs/schema.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fstream>

#include "model_builder.h"

namespace reinit {
namespace model_io_test {
namespace {

class ModelIo : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/reinit_model_io_XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override { (void)system(("rm -rf '" + dir_ + "'").c_str()); }
  std::string Write(const std::string& name, const std::string& bytes) {
    std::string path = dir_ + "/" + name;
    std::ofstream(path, std::ios::binary) << bytes;
    return path;
  }
  std::vector<std::string> Files() {
    std::vector<std::string> names;
    DIR* d = opendir(dir_.c_str());
    while (auto* e = readdir(d)) {
      std::string n = e->d_name;
      if (n != "." && n != "..") names.push_back(n);
    }
    closedir(d);
    std::sort(names.begin(), names.end());
    return names;
  }
  std::string dir_;
};

onnx::ModelProto Small() { return reinit_test::GemmModel(4, 3, "Relu"); }

void ExpectError(const StatusOr<onnx::ModelProto>& r, const std::string& path,
                 const std::string& needle) {
  ASSERT_FALSE(r.ok()) << needle;
  EXPECT_NE(r.status().message().find(path), std::string::npos) << r.status().message();
  EXPECT_NE(r.status().message().find(needle), std::string::npos) << r.status().message();
}

TEST_F(ModelIo, LoadRefusesWhatIsNotAModel) {
  ExpectError(LoadModel(dir_ + "/missing.onnx"), "missing.onnx", "cannot open");
  ExpectError(LoadModel(dir_), dir_, "is a directory");
  ExpectError(LoadModel(Write("empty.onnx", "")), "empty.onnx", "is empty");
  ExpectError(LoadModel(Write("junk.onnx", std::string("\xff\xff\xff\xff garbage", 12))),
              "junk.onnx", "not an ONNX model");
  onnx::ModelProto no_graph;
  no_graph.set_ir_version(8);
  ExpectError(LoadModel(Write("nograph.onnx", no_graph.SerializeAsString())), "nograph.onnx",
              "no graph");
  const std::string good = Small().SerializeAsString();
  ExpectError(LoadModel(Write("cut.onnx", good.substr(0, good.size() / 2))), "cut.onnx",
              "not an ONNX model");
  auto ok = LoadModel(Write("good.onnx", good));
  ASSERT_TRUE(ok.ok()) << ok.status().message();
  EXPECT_EQ(ok->SerializeAsString(), good);
}

TEST_F(ModelIo, SaveIsAtomicAndLeavesNoTemporaryFile) {
  const std::string path = dir_ + "/out.onnx";
  Write("out.onnx", "previous");
  ASSERT_TRUE(SaveModelAtomic(Small(), path).ok());
  EXPECT_EQ(Files(), std::vector<std::string>{"out.onnx"});
  auto back = LoadModel(path);
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(back->SerializeAsString(), Small().SerializeAsString());
}

TEST_F(ModelIo, SaveIntoAMissingFolderFailsNamingThePath) {
  Status s = SaveModelAtomic(Small(), dir_ + "/no/such/dir/out.onnx");
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.code(), StatusCode::kIo);
  EXPECT_NE(s.message().find("no/such/dir/out.onnx"), std::string::npos) << s.message();
  EXPECT_TRUE(Files().empty());
}

TEST_F(ModelIo, ValidateAcceptsAGoodModelAndRejectsABrokenOne) {
  std::vector<std::string> warnings;
  EXPECT_TRUE(ValidateModel(Small(), "model", &warnings).ok());
  EXPECT_TRUE(warnings.empty());
  auto broken = Small();
  broken.mutable_graph()->mutable_node(0)->set_op_type("NoSuchOp");
  Status s = ValidateModel(broken, "the re-initialized model", &warnings);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.message().find("fails the ONNX checker"), std::string::npos) << s.message();
  auto bad_shape = Small();
  // w is [3, 4]; declare the output as [1, 7]: strict shape inference must object.
  bad_shape.mutable_graph()
      ->mutable_output(0)
      ->mutable_type()
      ->mutable_tensor_type()
      ->mutable_shape()
      ->mutable_dim(1)
      ->set_dim_value(7);
  s = ValidateModel(bad_shape, "m", &warnings);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.message().find("shape inference"), std::string::npos) << s.message();
}

// The newest IR and ai.onnx opset the linked onnx library has schemas for, read from the library
// itself (not from reinit's code).
int64_t LibraryOpset() {
  return onnx::OpSchemaRegistry::DomainToVersionRange::Instance()
      .Map()
      .at(onnx::ONNX_DOMAIN)
      .second;
}

TEST_F(ModelIo, TheLibraryChecksTodaysOpsetsAndIrVersions) {
  // onnx >= 1.18 (cmake/onnx.cmake): opset 23, IR 11 at least.
  EXPECT_GE(LibraryOpset(), 23);
  EXPECT_GE(static_cast<int64_t>(onnx::IR_VERSION), 11);
}

TEST_F(ModelIo, NewerModelsAreWarnedAboutNotRefused) {
  for (int which = 0; which < 2; ++which) {
    auto m = Small();
    if (which == 0)
      m.set_ir_version(onnx::IR_VERSION + 1);
    else
      m.mutable_opset_import(0)->set_version(LibraryOpset() + 1);
    std::vector<std::string> warnings;
    EXPECT_TRUE(ValidateModel(m, "model", &warnings).ok());
    ASSERT_EQ(warnings.size(), 1u);
    EXPECT_NE(warnings[0].find("newer"), std::string::npos) << warnings[0];
  }
}

// IR 10 with opset 21 (the quantizers' and onnxruntime-genai's models) and IR 11 with opset 23:
// checked, with no warning, and a defect at those versions is found: the checker ran.
TEST_F(ModelIo, Ir10Opset21AndIr11Opset23ModelsAreChecked) {
  for (auto [ir, opset] : {std::pair<int64_t, int64_t>{10, 21}, {11, 23}}) {
    auto m = Small();
    m.set_ir_version(ir);
    m.mutable_opset_import(0)->set_version(opset);
    std::vector<std::string> warnings;
    Status s = ValidateModel(m, "model", &warnings);
    EXPECT_TRUE(s.ok()) << s.message();
    EXPECT_TRUE(warnings.empty()) << warnings[0];
    // Gemm has no attribute "kernel": the checker says so at any opset it knows.
    auto bad = m;
    auto* a = bad.mutable_graph()->mutable_node(0)->add_attribute();
    a->set_name("kernel");
    a->set_type(onnx::AttributeProto::INT);
    a->set_i(3);
    s = ValidateModel(bad, "model", &warnings);
    ASSERT_FALSE(s.ok()) << "IR " << ir << ", opset " << opset;
    EXPECT_NE(s.message().find("fails the ONNX checker"), std::string::npos) << s.message();
  }
}

}  // namespace
}  // namespace model_io_test
}  // namespace reinit
