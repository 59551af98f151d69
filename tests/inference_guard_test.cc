// The guarded schema registry: onnx's shape inference fed models that Debian's onnx 1.12 would
// crash on (found by fuzz/) fails with an error instead; consistent models infer as before.
#include "io/inference_guard.h"

#include <gtest/gtest.h>
#include <onnx/shape_inference/implementation.h>

#include "io/model_io.h"
#include "test_util.h"

namespace reinit {
namespace inference_guard_test {
namespace {

using reinit_test::AddInitializer;
using reinit_test::ParseModelOrDie;

// t = op(x, w), x [1, 4, 3, 3], w of the given shape, group 4; y = Identity(t) of shape `y`.
onnx::ModelProto ConvModel(const std::string& op, const std::vector<int64_t>& w,
                           const std::string& y = "1,8,2,2") {
  onnx::ModelProto m = ParseModelOrDie(R"(
<ir_version: 8, opset_import: ["" : 17]>
g (float[1,4,3,3] x) => (float[)" + y + R"(] y) {
  t = )" + op + R"( <group = 4> (x, w)
  y = Identity (t)
}
)");
  AddInitializer(&m, "w", w);
  return m;
}

TEST(InferenceGuard, ConvWeightOfAnotherRankFailsInferenceInsteadOfCrashing) {
  // onnx 1.12: SEGV in convPoolShapeInference (the kernel's rank taken from the weight).
  for (const char* op : {"Conv", "ConvTranspose"}) {
    for (const std::vector<int64_t>& w :
         {std::vector<int64_t>{4, 1, 2, 2, 2}, std::vector<int64_t>{4, 1, 2, 2, 2, 2, 2, 2},
          std::vector<int64_t>{4}}) {
      onnx::ModelProto m = ConvModel(op, w);
      std::vector<std::string> warnings;
      const Status s = ValidateModel(m, "the model", &warnings);
      ASSERT_FALSE(s.ok()) << op << " " << w.size();
      EXPECT_NE(s.message().find("the weight rank"), std::string::npos) << s.message();
      EXPECT_EQ(StaticShapes(m).count("t"), 0u) << op;  // best effort: no crash, no shape
    }
  }
}

TEST(InferenceGuard, ConsistentConvsInferAsBefore) {
  onnx::ModelProto conv = ConvModel("Conv", {8, 1, 2, 2});
  EXPECT_EQ(StaticShapes(conv).at("t"), (std::vector<int64_t>{1, 8, 2, 2}));
  onnx::ModelProto deconv = ConvModel("ConvTranspose", {4, 2, 2, 2}, "1,8,4,4");
  EXPECT_EQ(StaticShapes(deconv).at("t"), (std::vector<int64_t>{1, 8, 4, 4}));
  std::vector<std::string> warnings;
  EXPECT_TRUE(ValidateModel(conv, "the model", &warnings).ok());
  EXPECT_TRUE(ValidateModel(deconv, "the model", &warnings).ok());
}

TEST(InferenceGuard, OtherOpsAreOnnxsOwnSchemas) {
  const onnx::ISchemaRegistry* guarded = GuardedSchemaRegistry();
  EXPECT_EQ(guarded->GetSchema("Relu", 17, ""), onnx::OpSchemaRegistry::Schema("Relu", 17, ""));
  EXPECT_EQ(guarded->GetSchema("NoSuchOp", 17, ""), nullptr);
  const onnx::OpSchema* conv = guarded->GetSchema("Conv", 17, "");
  ASSERT_NE(conv, nullptr);
  EXPECT_EQ(conv->Name(), "Conv");
  EXPECT_EQ(conv->SinceVersion(), onnx::OpSchemaRegistry::Schema("Conv", 17, "")->SinceVersion());
  EXPECT_EQ(guarded->GetSchema("Conv", 17, ""), conv);  // made once
}

}  // namespace
}  // namespace inference_guard_test
}  // namespace reinit
