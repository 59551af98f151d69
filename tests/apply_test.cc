// The apply stage: only planned tensors change, each keeps its type and storage, values are a
// function of (seed, tensor name) only, and the metadata records the run.
#include "init/apply.h"

#include <gtest/gtest.h>
#include <onnx/checker.h>

#include "cli_util.h"
#include "io/codes.h"
#include "io/model_io.h"
#include "io/quantize.h"
#include "io/tensor_codec.h"
#include "model_builder.h"
#include "plan/plan.h"
#include "reinit.h"
#include "stats.h"

namespace reinit {
namespace apply_test {
namespace {

using reinit_test::AddFloatInitializer;
using reinit_test::FindInitializer;
using reinit_test::ParseModel;

// conv (with BN after it, and a Reshape shape constant) -> fc1 -> fc2.
onnx::ModelProto Net() {
  auto model = ParseModel(R"(<ir_version: 8, opset_import: ["" : 17]>
g (float[1, 3, 8, 8] x) => (float[1, 5] y) {
  c = Conv <pads = [1, 1, 1, 1]> (x, cw, cb)
  n = BatchNormalization (c, bn_s, bn_b, bn_m, bn_v)
  r = Relu (n)
  f = Reshape (r, shape)
  h = Gemm <transB = 1> (f, w1, b1)
  t = Tanh (h)
  y = Gemm <transB = 1> (t, w2, b2)
})");
  const char* names[] = {"conv", "bn", "relu", "flat", "fc1", "tanh", "fc2"};
  for (int i = 0; i < 7; ++i) model.mutable_graph()->mutable_node(i)->set_name(names[i]);
  AddFloatInitializer(&model, "cw", {4, 3, 3, 3});
  AddFloatInitializer(&model, "cb", {4});
  for (const char* bn : {"bn_s", "bn_b", "bn_m", "bn_v"}) AddFloatInitializer(&model, bn, {4});
  auto* shape = model.mutable_graph()->add_initializer();
  shape->set_name("shape");
  shape->set_data_type(onnx::TensorProto::INT64);
  shape->add_dims(2);
  shape->add_int64_data(1);
  shape->add_int64_data(256);
  AddFloatInitializer(&model, "w1", {16, 256});
  AddFloatInitializer(&model, "b1", {16});
  AddFloatInitializer(&model, "w2", {5, 16});
  AddFloatInitializer(&model, "b2", {5});
  return model;
}

onnx::ModelProto Reinit(onnx::ModelProto model, const PlanOptions& options) {
  auto plan = MakePlan(model, options);
  EXPECT_TRUE(plan.ok()) << plan.status().message();
  Status s = ApplyPlan(*plan, &model);
  EXPECT_TRUE(s.ok()) << s.message();
  return model;
}

std::string Bytes(const onnx::ModelProto& m, const std::string& tensor) {
  return FindInitializer(m, tensor)->SerializeAsString();
}

TEST(Apply, OnlyPlannedTensorsChange) {
  const auto before = Net();
  const auto after = Reinit(before, {});
  EXPECT_EQ(Bytes(before, "shape"), Bytes(after, "shape"));
  // Normalization state is reset: scale 1, shift 0, mean 0, variance 1.
  for (auto [name, value] :
       {std::pair{"bn_s", 1.0f}, {"bn_b", 0.0f}, {"bn_m", 0.0f}, {"bn_v", 1.0f}}) {
    for (float v : reinit_test::RawFloats(*FindInitializer(after, name)))
      EXPECT_EQ(v, value) << name;
  }
  // --norms keep leaves it.
  PlanOptions keep;
  keep.keep_norms = true;
  const auto kept = Reinit(before, keep);
  for (const char* same : {"bn_s", "bn_b", "bn_m", "bn_v"}) {
    EXPECT_EQ(Bytes(before, same), Bytes(kept, same)) << same;
  }
  for (const char* changed : {"cw", "cb", "w1", "b1", "w2", "b2"}) {
    EXPECT_NE(Bytes(before, changed), Bytes(after, changed)) << changed;
  }
  // Biases are zero, weights are not.
  for (float v : reinit_test::RawFloats(*FindInitializer(after, "b1"))) EXPECT_EQ(v, 0);
  EXPECT_EQ(after.graph().node_size(), before.graph().node_size());
  EXPECT_EQ(after.graph().initializer_size(), before.graph().initializer_size());
}

TEST(Apply, SameSeedSameBytesOtherSeedOtherValues) {
  PlanOptions o;
  o.seed = 11;
  const auto a = Reinit(Net(), o), b = Reinit(Net(), o);
  EXPECT_EQ(a.SerializeAsString(), b.SerializeAsString());
  o.seed = 12;
  const auto c = Reinit(Net(), o);
  EXPECT_NE(Bytes(a, "w1"), Bytes(c, "w1"));
  EXPECT_NE(Bytes(a, "cw"), Bytes(c, "cw"));
}

TEST(Apply, ChangingOneLayersSchemeChangesNoOtherLayer) {
  PlanOptions o;
  o.seed = 3;
  const auto a = Reinit(Net(), o);
  o.overrides = {{"fc1", "lecun-uniform"}};
  const auto b = Reinit(Net(), o);
  EXPECT_NE(Bytes(a, "w1"), Bytes(b, "w1"));
  EXPECT_EQ(Bytes(a, "cw"), Bytes(b, "cw"));
  EXPECT_EQ(Bytes(a, "w2"), Bytes(b, "w2"));
}

TEST(Apply, StreamsDependOnTheTensorNameNotItsPosition) {
  // The same weight under the same name gives the same values whatever else is in the model.
  auto small = reinit_test::GemmModel(256, 16, "Tanh");
  auto net = Net();
  // Rename so the Gemm in `small` and fc1 in `net` share the weight name "w1".
  small.mutable_graph()->mutable_node(0)->set_input(1, "w1");
  small.mutable_graph()->mutable_initializer(0)->set_name("w1");
  PlanOptions o;
  o.scheme = "he-normal";
  o.seed = 5;
  EXPECT_EQ(Bytes(Reinit(small, o), "w1"), Bytes(Reinit(net, o), "w1"));
}

TEST(Apply, KeepsTypeAndStorageField) {
  for (int type : {onnx::TensorProto::FLOAT, onnx::TensorProto::FLOAT16,
                   onnx::TensorProto::BFLOAT16, onnx::TensorProto::DOUBLE}) {
    for (bool raw : {true, false}) {
      const std::string tname = DataTypeName(type);
      auto model = ParseModel("<ir_version: 8, opset_import: [\"\" : 17]>\ng (" +
                              std::string(type == onnx::TensorProto::DOUBLE     ? "double"
                                          : type == onnx::TensorProto::FLOAT16  ? "float16"
                                          : type == onnx::TensorProto::BFLOAT16 ? "bfloat16"
                                                                                : "float") +
                              "[1, 8] x) => (y) { y = MatMul (x, w) }");
      auto* w = model.mutable_graph()->add_initializer();
      w->set_name("w");
      w->set_data_type(type);
      w->add_dims(8);
      w->add_dims(4);
      std::vector<double> ones(32, 1.0);
      if (!raw) {
        // Put the values in the typed field first (WriteValues keeps the field in use).
        if (type == onnx::TensorProto::FLOAT)
          w->add_float_data(0);
        else if (type == onnx::TensorProto::DOUBLE)
          w->add_double_data(0);
        else
          w->add_int32_data(0);
        w->clear_float_data();
        w->clear_double_data();
        w->clear_int32_data();
        if (type == onnx::TensorProto::FLOAT)
          for (int i = 0; i < 32; ++i) w->add_float_data(1);
        else if (type == onnx::TensorProto::DOUBLE)
          for (int i = 0; i < 32; ++i) w->add_double_data(1);
        else
          for (int i = 0; i < 32; ++i)
            w->add_int32_data(type == onnx::TensorProto::FLOAT16 ? 0x3C00 : 0x3F80);
      } else {
        ASSERT_TRUE(WriteValues(std::span<const double>(ones), w).ok());
      }
      PlanOptions o;
      o.scheme = "he-normal";
      const auto out = Reinit(model, o);
      const auto& t = *FindInitializer(out, "w");
      EXPECT_EQ(t.data_type(), type) << tname;
      EXPECT_EQ(t.raw_data().empty(), !raw) << tname;
      EXPECT_EQ(t.dims_size(), 2);
      auto values = ReadValues(t);
      ASSERT_TRUE(values.ok()) << values.status().message();
      int ones_left = 0;
      for (double v : *values) ones_left += v == 1.0;
      EXPECT_LT(ones_left, 3) << tname << (raw ? " raw" : " typed");
    }
  }
}

TEST(Apply, MetadataRecordsVersionSchemeAndSeedOnce) {
  PlanOptions o;
  o.seed = 77;
  auto model = Reinit(Reinit(Net(), o), o);  // twice: keys are replaced, not duplicated
  std::map<std::string, std::string> meta;
  int count = 0;
  for (const auto& p : model.metadata_props()) {
    meta[p.key()] = p.value();
    ++count;
  }
  EXPECT_EQ(count, 3);
  EXPECT_EQ(meta["reinit.scheme"], "auto");
  EXPECT_EQ(meta["reinit.seed"], "77");
  EXPECT_EQ(meta["reinit.version"], REINIT_VERSION);
}

TEST(Apply, AMissingTensorIsAnErrorNamingIt) {
  auto model = Net();
  auto plan = MakePlan(model, {});
  ASSERT_TRUE(plan.ok());
  model.mutable_graph()->mutable_initializer(0)->set_name("renamed");
  Status s = ApplyPlan(*plan, &model);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.message().find("'cw'"), std::string::npos) << s.message();
}

}  // namespace
}  // namespace apply_test
}  // namespace reinit

namespace reinit {
namespace apply_test {
namespace {

// fc1 uses w; fc2 uses Identity(w) — an exporter's merging of two equal tensors.
onnx::ModelProto MergedByIdentity() {
  auto model = ParseModel(R"(<ir_version: 8, opset_import: ["" : 17]>
g (float[1, 16] x) => (float[1, 16] y) {
  h = Gemm <transB = 1> (x, w)
  w2 = Identity (w)
  y = Gemm <transB = 1> (h, w2)
})");
  model.mutable_graph()->mutable_node(0)->set_name("fc1");
  model.mutable_graph()->mutable_node(2)->set_name("fc2");
  AddFloatInitializer(&model, "w", {16, 16});
  return model;
}

TEST(Apply, TensorsMergedByIdentityGetCopiesOfTheirOwn) {
  const auto before = MergedByIdentity();
  auto plan = MakePlan(before, {});
  ASSERT_TRUE(plan.ok()) << plan.status().message();
  ASSERT_EQ(plan->layers_size(), 2);
  EXPECT_EQ(plan->layers(1).skipped(), "");
  EXPECT_EQ(plan->layers(1).weight().name(), "w2");
  EXPECT_EQ(plan->layers(1).weight().copy_of(), "w");
  auto after = before;
  ASSERT_TRUE(ApplyPlan(*plan, &after).ok());
  // The Identity is gone, w2 is an initializer of its own with other values than w.
  EXPECT_EQ(after.graph().node_size(), 2);
  ASSERT_NE(FindInitializer(after, "w2"), nullptr);
  EXPECT_NE(Bytes(after, "w"), Bytes(after, "w2"));
  EXPECT_EQ(FindInitializer(after, "w2")->data_type(), onnx::TensorProto::FLOAT);
  onnx::checker::check_model(after);
}

TEST(Apply, MergedTensorsStayMergedWhenTheirValuesAreTheSame) {
  PlanOptions o;
  o.scheme = "zero";
  auto plan = MakePlan(MergedByIdentity(), o);
  ASSERT_TRUE(plan.ok());
  EXPECT_EQ(plan->layers(1).weight().name(), "w");
  EXPECT_EQ(plan->layers(1).weight().copy_of(), "");
  auto after = MergedByIdentity();
  ASSERT_TRUE(ApplyPlan(*plan, &after).ok());
  EXPECT_EQ(after.graph().node_size(), 3);
  EXPECT_EQ(after.graph().initializer_size(), 1);
}

}  // namespace
}  // namespace apply_test
}  // namespace reinit

namespace reinit {
namespace apply_test {
namespace {

TEST(Apply, WeightsFromConstantOfShapeBecomeRealInitializers) {
  // A model whose weights were stripped: ConstantOfShape stands in for them.
  auto model = ParseModel(R"(<ir_version: 8, opset_import: ["" : 17]>
g (float[1, 32] x) => (float[1, 16] y) {
  w = ConstantOfShape <value = float[1] {0.0}> (wshape)
  b = ConstantOfShape (bshape)
  h = Gemm <transB = 1> (x, w, b)
  y = Relu (h)
})");
  auto add_shape = [&](const char* name, std::vector<int64_t> dims) {
    auto* t = model.mutable_graph()->add_initializer();
    t->set_name(name);
    t->set_data_type(onnx::TensorProto::INT64);
    t->add_dims(static_cast<int64_t>(dims.size()));
    for (int64_t d : dims) t->add_int64_data(d);
  };
  add_shape("wshape", {16, 32});
  add_shape("bshape", {16});
  auto plan = MakePlan(model, {});
  ASSERT_TRUE(plan.ok()) << plan.status().message();
  ASSERT_EQ(plan->layers_size(), 1);
  const auto& l = plan->layers(0);
  EXPECT_EQ(l.skipped(), "");
  EXPECT_EQ(l.weight().materialize(), "ConstantOfShape");
  EXPECT_EQ(l.fan_in(), 32);
  EXPECT_EQ(l.weight().scheme(), "he-normal");
  ASSERT_TRUE(ApplyPlan(*plan, &model).ok());
  EXPECT_EQ(model.graph().node_size(), 2);  // the two ConstantOfShape nodes are gone
  const auto* w = FindInitializer(model, "w");
  ASSERT_NE(w, nullptr);
  EXPECT_EQ(w->dims_size(), 2);
  const auto wv = reinit_test::RawFloats(*w);
  reinit_test::ExpectNormal({wv.begin(), wv.end()}, 2.0 / 32, "w");
  const auto* b = FindInitializer(model, "b");
  ASSERT_NE(b, nullptr);
  for (float v : reinit_test::RawFloats(*b)) EXPECT_EQ(v, 0);
  onnx::checker::check_model(model);
}

// A weightless ResNet (the ONNX backend test's light models): every BatchNormalization
// parameter, running statistics included, is a ConstantOfShape output. What the plan lists,
// apply writes: each becomes an initializer holding what the norm reset gives.
TEST(Apply, NormParametersFromConstantOfShapeBecomeRealInitializers) {
  auto model = ParseModel(R"(<ir_version: 8, opset_import: ["" : 17]>
g (float[1, 3, 8, 8] x) => (float[1, 4, 8, 8] y) {
  ws = Constant <value = int64[4] {4, 3, 3, 3}> ()
  cs = Constant <value = int64[1] {4}> ()
  w = ConstantOfShape (ws)
  sc = ConstantOfShape <value = float[1] {0.5}> (cs)
  sh = ConstantOfShape (cs)
  rm = ConstantOfShape <value = float[1] {0.3}> (cs)
  rv = ConstantOfShape <value = float[1] {2.0}> (cs)
  c = Conv <pads = [1, 1, 1, 1]> (x, w)
  n = BatchNormalization (c, sc, sh, rm, rv)
  y = Relu (n)
})");
  auto plan = MakePlan(model, {});
  ASSERT_TRUE(plan.ok()) << plan.status().message();
  ASSERT_EQ(plan->layers_size(), 2);
  ASSERT_EQ(plan->layers(1).params_size(), 2);
  for (const auto& p : plan->layers(1).params()) EXPECT_EQ(p.materialize(), "ConstantOfShape");
  ASSERT_TRUE(ApplyPlan(*plan, &model).ok());
  const std::map<std::string, float> want = {{"sc", 1}, {"sh", 0}, {"rm", 0}, {"rv", 1}};
  for (const auto& [name, value] : want) {
    const auto* t = FindInitializer(model, name);
    ASSERT_NE(t, nullptr) << name;
    for (float v : reinit_test::RawFloats(*t)) EXPECT_EQ(v, value) << name;
  }
  for (const auto& n : model.graph().node()) EXPECT_NE(n.op_type(), "ConstantOfShape");
  onnx::checker::check_model(model);
}

// IR 3 (onnx-caffe2's light models): an initializer must also be a graph input, so the tensor
// apply makes of a ConstantOfShape output is added to the inputs, with its type and shape.
TEST(Apply, ConstantOfShapeInIr3BecomesAnInitializerAndAGraphInput) {
  auto model = ParseModel(R"(<ir_version: 3, opset_import: ["" : 9]>
g (float[1, 3, 8, 8] x, int64[4] ws) => (float[1, 4, 8, 8] y) {
  w = ConstantOfShape <value = float[1] {0.02}> (ws)
  c = Conv <pads = [1, 1, 1, 1]> (x, w)
  y = Relu (c)
})");
  auto* ws = model.mutable_graph()->add_initializer();
  ws->set_name("ws");
  ws->set_data_type(onnx::TensorProto::INT64);
  ws->add_dims(4);
  for (int64_t d : {4, 3, 3, 3}) ws->add_int64_data(d);
  onnx::checker::check_model(model);  // the input is valid IR 3
  auto plan = MakePlan(model, {});
  ASSERT_TRUE(plan.ok()) << plan.status().message();
  ASSERT_EQ(plan->layers_size(), 1);
  ASSERT_TRUE(ApplyPlan(*plan, &model).ok());
  const onnx::ValueInfoProto* input = nullptr;
  for (const auto& in : model.graph().input()) {
    if (in.name() == "w") input = &in;
  }
  ASSERT_NE(input, nullptr) << "the new initializer is not a graph input";
  const auto& type = input->type().tensor_type();
  EXPECT_EQ(type.elem_type(), onnx::TensorProto::FLOAT);
  ASSERT_EQ(type.shape().dim_size(), 4);
  for (int k = 0; k < 4; ++k) EXPECT_EQ(type.shape().dim(k).dim_value(), ws->int64_data(k));
  std::vector<std::string> warnings;
  EXPECT_TRUE(ValidateModel(model, "out", &warnings).ok());
}

// Weights streamed as they are drawn (every tensor deferred: stream_min_bytes 1) get the bytes
// they get in memory: FLOAT8 and FLOAT4 (an odd count over three batches, the second of two
// pieces, so that a piece that starts inside a batch and the last nibble are both seen) and
// FLOAT16, and a deferred INT4 QDQ weight, read into memory to be requantized.
TEST(Apply, StreamedNarrowFloatsAndQuantizedWeightsGetTheirInMemoryBytes) {
  auto model = ParseModel(R"(<ir_version: 11, opset_import: ["" : 23]>
g (float[1, 445] x) => (float[1, 64] y) {
  a = Cast <to = 1> (w8)
  h1 = Gemm <transB = 1> (x, a)
  b = Cast <to = 1> (w4)
  h2 = Gemm <transB = 1> (h1, b)
  c = Cast <to = 1> (w16)
  h3 = Gemm <transB = 1> (h2, c)
  d = DequantizeLinear <axis = 0> (wq, scale, zp)
  y = Gemm <transB = 1> (h3, d)
})");
  auto add = [&](const std::string& name, int32_t type, std::vector<int64_t> dims) {
    auto* t = model.mutable_graph()->add_initializer();
    t->set_name(name);
    t->set_data_type(type);
    int64_t n = 1;
    for (int64_t d : dims) {
      t->add_dims(d);
      n *= d;
    }
    if (CodeBits(type) != 0 && !IsSupportedFloatType(type)) {
      EXPECT_TRUE(WriteIntegers(std::vector<int32_t>(static_cast<size_t>(n), 1), t).ok());
    } else {
      EXPECT_TRUE(WriteValues(std::vector<double>(static_cast<size_t>(n), 0.5), t).ok());
    }
  };
  add("w8", onnx::TensorProto::FLOAT8E5M2, {443, 445});  // 197135 = 65536 + 131072 + 527
  add("w4", onnx::TensorProto::FLOAT4E2M1, {445, 443});
  add("w16", onnx::TensorProto::FLOAT16, {128, 445});
  add("wq", onnx::TensorProto::INT4, {64, 128});
  add("scale", onnx::TensorProto::FLOAT16, {64});
  add("zp", onnx::TensorProto::INT4, {64});
  std::string bytes;
  ASSERT_TRUE(model.SerializeToString(&bytes));

  RunOptions options;
  options.plan.overrides.push_back({"*", "he-uniform"});
  std::string in_memory;
  auto r = ReinitBytes({bytes}, options, &in_memory);
  ASSERT_TRUE(r.ok()) << r.status().message();
  reinit_cli_test::TempDir tmp;
  reinit_cli_test::WriteFile(tmp / "m.onnx", bytes);
  options.input = tmp / "m.onnx";
  options.output = tmp / "out.onnx";
  options.stream_min_bytes = 1;
  r = ReinitFile(options);
  ASSERT_TRUE(r.ok()) << r.status().message();
  const auto streamed = reinit_cli_test::LoadModelFile(options.output);
  const auto expected = reinit_cli_test::ParseModel(in_memory);
  for (const char* name : {"w8", "w4", "w16", "wq", "scale", "zp"}) {
    const auto* t = FindInitializer(streamed, name);
    ASSERT_NE(t, nullptr) << name;
    EXPECT_EQ(t->raw_data(), FindInitializer(expected, name)->raw_data()) << name;
    const bool kept = std::string(name) == "zp";
    EXPECT_EQ(t->raw_data() == FindInitializer(model, name)->raw_data(), kept) << name;
  }
}

}  // namespace
}  // namespace apply_test
}  // namespace reinit
