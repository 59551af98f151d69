// The plan stage: the auto table, --layer overrides, bias policy, depth, the JSON form and the
// reading back of an edited plan.
#include "plan/plan.h"

#include <google/protobuf/util/json_util.h>
#include <gtest/gtest.h>
#include <onnx/checker.h>

#include <cmath>
#include <map>

#include "init/apply.h"
#include "io/tensor_codec.h"
#include "model_builder.h"
#include "plan/auto_policy.h"
#include "plan/plan_options.h"

namespace reinit {
namespace plan_test {
namespace {

using reinit_test::AddFloatInitializer;
using reinit_test::GemmModel;
using reinit_test::ParseModel;

proto::Plan PlanOf(const onnx::ModelProto& model, PlanOptions options = {}) {
  auto plan = MakePlan(model, options);
  EXPECT_TRUE(plan.ok()) << plan.status().message();
  return plan.ok() ? *plan : proto::Plan();
}

// A chain of `depth` Gemm layers named fc1..fcN (64 wide), each followed by `act`.
onnx::ModelProto Chain(int depth, const std::string& act) {
  std::string body;
  std::string prev = "x";
  for (int i = 1; i <= depth; ++i) {
    const std::string n = std::to_string(i);
    body += " h" + n + " = Gemm <transB = 1> (" + prev + ", w" + n + ", b" + n + ")\n";
    body += " a" + n + " = " + act + " (h" + n + ")\n";
    prev = "a" + n;
  }
  body += " y = Identity (" + prev + ")\n";
  auto model = ParseModel(
      "<ir_version: 8, opset_import: [\"\" : 17]>\ng (float[1, 64] x) => "
      "(float[1, 64] y) {\n" +
      body + "}");
  for (int i = 1; i <= depth; ++i) {
    const std::string n = std::to_string(i);
    model.mutable_graph()->mutable_node((i - 1) * 2)->set_name("fc" + n);
    AddFloatInitializer(&model, "w" + n, {64, 64});
    AddFloatInitializer(&model, "b" + n, {64});
  }
  return model;
}

struct AutoCase {
  const char* op;
  const char* attrs;
  const char* activation;
  const char* scheme;
};

TEST(AutoPolicy, FollowsTheDocumentedTable) {
  const AutoCase cases[] = {
      {"Relu", "", "relu", "he-normal"},
      {"LeakyRelu", "<alpha = 0.1>", "leaky_relu", "he-normal"},
      {"Elu", "", "elu", "he-normal"},
      {"Selu", "", "selu", "lecun-normal"},
      {"Tanh", "", "tanh", "xavier-uniform"},
      {"Sigmoid", "", "sigmoid", "xavier-uniform"},
      {"HardSigmoid", "", "hard_sigmoid", "xavier-uniform"},
      {"Softsign", "", "softsign", "xavier-uniform"},
      {"Softplus", "", "softplus", "he-normal"},
      {"Softmax", "", "linear", "xavier-uniform"},
      {"Identity", "", "linear", "xavier-uniform"},
  };
  for (const auto& c : cases) {
    auto plan = PlanOf(GemmModel(32, 16, c.op, c.attrs));
    ASSERT_EQ(plan.layers_size(), 1) << c.op;
    const auto& layer = plan.layers(0);
    EXPECT_EQ(layer.activation().kind(), c.activation) << c.op;
    EXPECT_EQ(layer.weight().scheme(), c.scheme) << c.op;
    EXPECT_NE(layer.reason().find("auto"), std::string::npos) << c.op;
    EXPECT_EQ(layer.bias().scheme(), "zero") << c.op;
  }
}

TEST(AutoPolicy, DeepTanhDenseStacksGetOrthogonalShallowOnesXavier) {
  auto deep = PlanOf(Chain(kDeepChain, "Tanh"));
  ASSERT_EQ(deep.layers_size(), kDeepChain);
  for (const auto& l : deep.layers()) {
    EXPECT_EQ(l.depth(), kDeepChain) << l.name();
    EXPECT_EQ(l.weight().scheme(), "orthogonal") << l.name();
    EXPECT_NEAR(l.weight().gain(), 5.0 / 3.0, 1e-12);
  }
  auto shallow = PlanOf(Chain(kDeepChain - 1, "Tanh"));
  for (const auto& l : shallow.layers()) EXPECT_EQ(l.weight().scheme(), "xavier-uniform");
  // Depth does not make ReLU stacks orthogonal.
  auto relu = PlanOf(Chain(kDeepChain + 2, "Relu"));
  for (const auto& l : relu.layers()) {
    EXPECT_EQ(l.weight().scheme(), "he-normal");
  }
}

TEST(AutoPolicy, ChooseAutoCoversEveryActivationKind) {
  for (const char* kind :
       {"linear", "relu", "leaky_relu", "prelu", "elu", "celu", "selu", "thresholded_relu",
        "sigmoid", "hard_sigmoid", "tanh", "softplus", "softsign", "hard_swish", "mish", "gelu",
        "gelu_tanh", "silu", "relu6"}) {
    auto c = ChooseAuto(kind, LayerKind::kConv, 1);
    EXPECT_EQ(c.reason.find("no rule"), std::string::npos) << kind << ": " << c.reason;
  }
}

TEST(AutoPolicy, EmbeddingTablesGetStdOneOverSqrtD) {
  auto model = ParseModel(R"(<ir_version: 8, opset_import: ["" : 17]>
g (int64[5] ids) => (float[5, 32] y) { y = Gather (table, ids) })");
  AddFloatInitializer(&model, "table", {1000, 32});
  auto plan = PlanOf(model);
  ASSERT_EQ(plan.layers_size(), 1);
  const auto& l = plan.layers(0);
  EXPECT_EQ(l.kind(), "embedding");
  EXPECT_EQ(l.fan_in(), 32);
  EXPECT_EQ(l.fan_out(), 1000);
  EXPECT_EQ(l.weight().scheme(), "lecun-normal");
  EXPECT_DOUBLE_EQ(l.weight().std(), 1 / std::sqrt(32.0));
  EXPECT_EQ(l.weight().role(), "table");
}

TEST(Norms, ResetByDefaultKeptOnRequestZeroScaleByGlob) {
  auto model = ParseModel(R"(<ir_version: 8, opset_import: ["" : 17]>
g (float[1, 4, 8, 8] x) => (float[1, 4, 8, 8] y) {
  b = BatchNormalization (x, s, sh, m, v)
  y = InstanceNormalization (b, s2, sh2)
})");
  model.mutable_graph()->mutable_node(0)->set_name("bn");
  model.mutable_graph()->mutable_node(1)->set_name("in");
  for (const char* n : {"s", "sh", "m", "v", "s2", "sh2"}) AddFloatInitializer(&model, n, {4});
  auto plan = PlanOf(model);
  ASSERT_EQ(plan.layers_size(), 2);
  const auto& bn = plan.layers(0);
  EXPECT_EQ(bn.kind(), "norm");
  EXPECT_EQ(bn.weight().scheme(), "constant");
  EXPECT_EQ(bn.weight().value(), 1);
  EXPECT_EQ(bn.bias().scheme(), "zero");
  ASSERT_EQ(bn.params_size(), 2);
  EXPECT_EQ(bn.params(0).role(), "running_mean");
  EXPECT_EQ(bn.params(0).scheme(), "zero");
  EXPECT_EQ(bn.params(1).role(), "running_var");
  EXPECT_EQ(bn.params(1).scheme(), "constant");
  EXPECT_EQ(bn.params(1).value(), 1);
  PlanOptions keep;
  keep.keep_norms = true;
  const auto kept = PlanOf(model, keep);
  for (const auto& l : kept.layers()) {
    EXPECT_EQ(l.weight().scheme(), "keep") << l.name();
    EXPECT_EQ(l.bias().scheme(), "keep") << l.name();
    for (const auto& p : l.params()) EXPECT_EQ(p.scheme(), "keep") << p.name();
  }
  PlanOptions zero;
  zero.overrides = {{"in", "zero"}};
  auto z = PlanOf(model, zero);
  EXPECT_EQ(z.layers(0).weight().scheme(), "constant");
  EXPECT_EQ(z.layers(1).weight().scheme(), "zero");
}

TEST(SharedWeights, TiedEmbeddingIsInitializedOnceAndDisagreementIsReported) {
  auto model = ParseModel(R"(<ir_version: 8, opset_import: ["" : 17]>
g (int64[5] ids) => (float[5, 1000] y) {
  e = Gather (table, ids)
  y = Gemm <transB = 1> (e, table)
})");
  model.mutable_graph()->mutable_node(0)->set_name("embed");
  model.mutable_graph()->mutable_node(1)->set_name("lm_head");
  AddFloatInitializer(&model, "table", {1000, 32});
  auto plan = PlanOf(model);
  ASSERT_EQ(plan.layers_size(), 2);
  const auto& embed = plan.layers(0);
  const auto& head = plan.layers(1);
  EXPECT_EQ(embed.skipped(), "");
  ASSERT_EQ(embed.shared_with_size(), 1);
  EXPECT_EQ(embed.shared_with(0), "lm_head");
  EXPECT_NE(head.skipped().find("shared with layer 'embed'"), std::string::npos);
  // The head alone would get xavier-uniform; the table gets lecun-normal: both are reported.
  EXPECT_EQ(head.weight().scheme(), "xavier-uniform");
  EXPECT_NE(embed.shared_note().find("lm_head"), std::string::npos) << embed.shared_note();
  EXPECT_NE(embed.shared_note().find("xavier-uniform"), std::string::npos);
  EXPECT_NE(embed.shared_note().find("lecun-normal"), std::string::npos);
  // The unedited plan reads back, and the table is written once.
  auto back = ReadPlan(PlanToJson(plan), "p.json", model);
  ASSERT_TRUE(back.ok()) << back.status().message();
  // Agreeing users leave no note.
  PlanOptions same;
  same.scheme = "he-normal";
  auto agreed = PlanOf(model, same);
  EXPECT_EQ(agreed.layers(0).shared_note(), "") << agreed.layers(0).shared_note();
}

TEST(PlanOverrides, LaterGlobWinsAndWeightNamesMatch) {
  PlanOptions o;
  o.scheme = "he-normal";
  o.overrides = {{"fc*", "xavier-normal"}, {"fc2", "lecun-uniform"}, {"w3", "zero"}};
  auto plan = PlanOf(Chain(4, "Relu"), o);
  ASSERT_EQ(plan.layers_size(), 4);
  EXPECT_EQ(plan.layers(0).weight().scheme(), "xavier-normal");
  EXPECT_EQ(plan.layers(1).weight().scheme(), "lecun-uniform");
  EXPECT_EQ(plan.layers(2).weight().scheme(), "zero");  // matched by the weight's name
  EXPECT_EQ(plan.layers(3).weight().scheme(), "xavier-normal");
  EXPECT_EQ(plan.layers(1).reason(), "--layer fc2=lecun-uniform");
  EXPECT_TRUE(plan.warnings().empty());
}

TEST(PlanOverrides, UnmatchedGlobWarnsAndUnknownSchemeIsAUsageError) {
  PlanOptions o;
  o.overrides = {{"conv*", "he-normal"}};
  auto plan = PlanOf(Chain(2, "Relu"), o);
  ASSERT_EQ(plan.warnings_size(), 1);
  EXPECT_NE(plan.warnings(0).find("conv*"), std::string::npos);
  o.overrides = {{"fc1", "kaiming"}};
  auto bad = MakePlan(Chain(2, "Relu"), o);
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().code(), StatusCode::kUsage);
  EXPECT_NE(bad.status().message().find("fc1=kaiming"), std::string::npos);
  EXPECT_NE(bad.status().message().find("xavier-uniform"), std::string::npos);
}

TEST(PlanOptionsTest, BiasKeepAndRecordedOptions) {
  PlanOptions o;
  o.keep_bias = true;
  o.seed = 42;
  o.fan_convention = FanConvention::kTorch;
  auto plan = PlanOf(Chain(2, "Relu"), o);
  EXPECT_EQ(plan.layers(0).bias().scheme(), "keep");
  EXPECT_EQ(plan.seed(), 42u);
  EXPECT_EQ(plan.fan_convention(), "torch");
  EXPECT_EQ(plan.bias(), "keep");
}

TEST(PlanErrors, ErrorsNameTheLayerAndTheWeight) {
  auto model = ParseModel(R"(<ir_version: 8, opset_import: ["" : 17]>
g (float[1, 6, 8, 8] x) => (float[1, 6, 6, 6] y) { y = Conv <group = 4> (x, w) })");
  AddFloatInitializer(&model, "w", {6, 3, 3, 3});
  model.mutable_graph()->mutable_node(0)->set_name("conv1");
  auto plan = MakePlan(model, {});
  ASSERT_FALSE(plan.ok());
  EXPECT_EQ(plan.status().code(), StatusCode::kModel);
  EXPECT_NE(plan.status().message().find("layer 'conv1' (Conv), weight 'w'"), std::string::npos)
      << plan.status().message();
  EXPECT_NE(plan.status().message().find("group 4"), std::string::npos);
}

TEST(PlanErrors, WrongDataLengthNamesTheTensor) {
  auto model = GemmModel(8, 4, "Relu");
  auto* w = model.mutable_graph()->mutable_initializer(0);
  w->set_raw_data(w->raw_data().substr(0, 12));
  auto plan = MakePlan(model, {});
  ASSERT_FALSE(plan.ok());
  EXPECT_NE(plan.status().message().find("'w'"), std::string::npos) << plan.status().message();
}

TEST(PlanJson, RoundTripsThroughReadPlan) {
  auto model = Chain(3, "Relu");
  PlanOptions o;
  o.seed = 9;
  auto plan = PlanOf(model, o);
  const std::string json = PlanToJson(plan);
  EXPECT_NE(json.find("\"fanIn\""), std::string::npos);
  auto back = ReadPlan(json, "p.json", model);
  ASSERT_TRUE(back.ok()) << back.status().message();
  ASSERT_EQ(back->layers_size(), plan.layers_size());
  for (int i = 0; i < plan.layers_size(); ++i) {
    const auto& a = plan.layers(i).weight();
    const auto& b = back->layers(i).weight();
    EXPECT_EQ(a.scheme(), b.scheme());
    EXPECT_DOUBLE_EQ(a.std(), b.std());
    EXPECT_DOUBLE_EQ(a.bound(), b.bound());
    EXPECT_EQ(plan.layers(i).bias().scheme(), back->layers(i).bias().scheme());
  }
  EXPECT_EQ(back->seed(), 9u);
}

TEST(PlanJson, EditedSchemeIsRecomputedAndUnnamedLayersAreKept) {
  auto model = Chain(3, "Relu");
  auto plan = PlanOf(model);
  plan.mutable_layers(0)->mutable_weight()->set_scheme("lecun-normal");
  plan.mutable_layers(0)->mutable_weight()->set_std(123);  // stale: recomputed
  plan.mutable_layers(1)->mutable_weight()->set_scheme("normal");
  plan.mutable_layers(1)->mutable_weight()->set_std(0.5);  // naive: honoured
  plan.mutable_layers()->DeleteSubrange(2, 1);
  auto back = ReadPlan(PlanToJson(plan), "p.json", model);
  ASSERT_TRUE(back.ok()) << back.status().message();
  EXPECT_DOUBLE_EQ(back->layers(0).weight().std(), 1 / std::sqrt(64.0));
  EXPECT_DOUBLE_EQ(back->layers(1).weight().std(), 0.5);
  EXPECT_EQ(back->layers(2).weight().scheme(), "keep");
  EXPECT_EQ(back->layers(2).bias().scheme(), "keep");
}

TEST(PlanJson, ReadPlanRejectsWhatTheModelDoesNotHave) {
  auto model = Chain(2, "Relu");
  auto plan = PlanOf(model);
  auto expect_error = [&](const proto::Plan& p, const std::string& needle) {
    auto r = ReadPlan(PlanToJson(p), "edited.json", model);
    ASSERT_FALSE(r.ok()) << needle;
    EXPECT_EQ(r.status().code(), StatusCode::kModel);
    EXPECT_NE(r.status().message().find(needle), std::string::npos) << r.status().message();
    EXPECT_NE(r.status().message().find("edited.json"), std::string::npos);
  };
  auto p = plan;
  p.mutable_layers(0)->set_name("nope");
  expect_error(p, "layer 'nope' does not exist");
  p = plan;
  p.mutable_layers(0)->mutable_weight()->set_scheme("bogus");
  expect_error(p, "unknown scheme 'bogus'");
  p = plan;
  p.mutable_layers(0)->mutable_weight()->set_name("w2");
  expect_error(p, "weight 'w2'");
  p = plan;
  p.mutable_layers(0)->mutable_bias()->set_scheme("he-normal");
  expect_error(p, "takes zero, constant or keep");
  auto r = ReadPlan("{ not json", "edited.json", model);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("not a reinit plan"), std::string::npos);
}

}  // namespace
}  // namespace plan_test
}  // namespace reinit

namespace reinit {
namespace plan_test {
namespace {

// An If whose branches hold layers: one uses a weight of the enclosing graph (also used by a
// layer outside), the other a weight of its own in an initializer and one in a Constant node.
onnx::ModelProto WithSubgraphs() {
  std::string zeros = "0.0";
  for (int i = 1; i < 256; ++i) zeros += ", 0.0";
  std::string text = R"(<ir_version: 8, opset_import: ["" : 17]>
g (bool c, float[1, 16] x) => (float[1, 16] y) {
  h = Gemm <transB = 1> (x, w_outer)
  y = If (c) <
    then_branch = then_g () => (float[1, 16] t) {
      t0 = Gemm <transB = 1> (h, w_outer)
      t = Relu (t0)
    },
    else_branch = else_g () => (float[1, 16] e) {
      wc = Constant <value = float[16, 16] {ZEROS}> ()
      e0 = Gemm <transB = 1> (h, wc)
      e = Tanh (e0)
    }
  >
})";
  text.replace(text.find("ZEROS"), 5, zeros);
  onnx::ModelProto model = ParseModel(text);
  model.mutable_graph()->mutable_node(0)->set_name("fc");
  model.mutable_graph()->mutable_node(1)->set_name("branch");
  AddFloatInitializer(&model, "w_outer", {16, 16});
  return model;
}

TEST(Subgraphs, LayersInIfBranchesArePlannedWithPrefixedNames) {
  auto plan = PlanOf(WithSubgraphs());
  std::map<std::string, const proto::Layer*> by_name;
  for (const auto& l : plan.layers()) by_name[l.name()] = &l;
  ASSERT_EQ(by_name.size(), 3u) << PlanToJson(plan);
  ASSERT_TRUE(by_name.count("fc"));
  ASSERT_TRUE(by_name.count("branch/then_branch/Gemm_0"));
  ASSERT_TRUE(by_name.count("branch/else_branch/Gemm_1"));
  // The outer weight is initialized once, by the outer layer; the branch's use is reported.
  const auto* inner = by_name["branch/then_branch/Gemm_0"];
  EXPECT_NE(inner->skipped().find("shared with layer 'fc'"), std::string::npos) << inner->skipped();
  EXPECT_EQ(inner->activation().kind(), "relu");
  ASSERT_EQ(by_name["fc"]->shared_with_size(), 1);
  // The Constant-node weight inside the else branch is a layer of its own, before Tanh.
  const auto* other = by_name["branch/else_branch/Gemm_1"];
  EXPECT_EQ(other->skipped(), "");
  EXPECT_EQ(other->weight().name(), "wc");
  EXPECT_EQ(other->activation().kind(), "tanh");
  EXPECT_EQ(other->weight().scheme(), "xavier-uniform");
}

TEST(Subgraphs, ApplyWritesTheConstantInsideTheBranch) {
  auto model = WithSubgraphs();
  auto plan = MakePlan(model, {});
  ASSERT_TRUE(plan.ok()) << plan.status().message();
  ASSERT_TRUE(ApplyPlan(*plan, &model).ok());
  const auto& else_g = model.graph().node(1).attribute(1).g();
  const auto& wc = else_g.node(0).attribute(0).t();
  auto values = ReadValues(wc);
  ASSERT_TRUE(values.ok());
  int zeros = 0;
  for (double v : *values) zeros += v == 0;
  EXPECT_LT(zeros, 3) << "the Constant node's value was not rewritten";
  // The graph still passes the checker.
  onnx::checker::check_model(model);
}

}  // namespace
}  // namespace plan_test
}  // namespace reinit

namespace reinit {
namespace plan_test {
namespace {

TEST(Functions, AWeightPassedToALocalFunctionIsPlannedAtEachCall) {
  auto model = ParseModel(R"(<ir_version: 8, opset_import: ["" : 17, "local" : 1]>
g (float[1, 16] x) => (float[1, 16] y) {
  h = local.Dense <slope = 0.2> (x, w1)
  y = local.Dense (h, w2)
}
<domain: "local", opset_import: ["" : 17]>
Dense <slope> (a, w) => (b) {
  t = Gemm <transB = 1> (a, w)
  b = LeakyRelu <alpha: float = @slope> (t)
})");
  model.mutable_graph()->mutable_node(0)->set_name("d1");
  model.mutable_graph()->mutable_node(1)->set_name("d2");
  AddFloatInitializer(&model, "w1", {16, 16});
  AddFloatInitializer(&model, "w2", {16, 16});
  auto plan = PlanOf(model);
  ASSERT_EQ(plan.layers_size(), 2) << PlanToJson(plan);
  EXPECT_EQ(plan.layers(0).name(), "d1/Gemm_0");
  EXPECT_EQ(plan.layers(0).weight().name(), "w1");
  EXPECT_EQ(plan.layers(0).activation().kind(), "leaky_relu");
  // The call's attribute reaches the body: LeakyRelu's alpha is 0.2 at d1, the default at d2.
  EXPECT_NEAR(plan.layers(0).activation().param(), 0.2, 1e-6);
  EXPECT_NEAR(plan.layers(1).activation().param(), 0.01, 1e-6);
  EXPECT_EQ(plan.layers(1).weight().name(), "w2");
  EXPECT_EQ(plan.layers(0).weight().scheme(), "he-normal");
  auto applied = model;
  ASSERT_TRUE(ApplyPlan(plan, &applied).ok());
  EXPECT_NE(reinit_test::FindInitializer(applied, "w1")->raw_data(),
            reinit_test::FindInitializer(model, "w1")->raw_data());
}

}  // namespace
}  // namespace plan_test
}  // namespace reinit

namespace reinit {
namespace plan_test {
namespace {

TEST(Subgraphs, LoopBodyLayersUseTheirOwnAndOuterWeights) {
  auto model = ParseModel(R"(<ir_version: 8, opset_import: ["" : 17]>
g (int64 n, bool c, float[1, 16] x) => (float[1, 16] y) {
  y = Loop (n, c, x) <
    body = step (int64 i, bool ci, float[1, 16] v) => (bool co, float[1, 16] vo) {
      co = Identity (ci)
      h = Gemm <transB = 1> (v, w_outer)
      t = Tanh (h)
      vo = MatMul (t, w_body)
    }
  >
})");
  model.mutable_graph()->mutable_node(0)->set_name("loop");
  AddFloatInitializer(&model, "w_outer", {16, 16});
  // The body's own initializer.
  auto* body = model.mutable_graph()->mutable_node(0)->mutable_attribute(0)->mutable_g();
  auto* w = body->add_initializer();
  w->set_name("w_body");
  w->set_data_type(onnx::TensorProto::FLOAT);
  w->add_dims(16);
  w->add_dims(16);
  w->set_raw_data(std::string(16 * 16 * 4, '\1'));
  auto plan = PlanOf(model);
  ASSERT_EQ(plan.layers_size(), 2) << PlanToJson(plan);
  EXPECT_EQ(plan.layers(0).name(), "loop/body/Gemm_1");
  EXPECT_EQ(plan.layers(0).weight().name(), "w_outer");
  EXPECT_EQ(plan.layers(0).activation().kind(), "tanh");
  EXPECT_EQ(plan.layers(1).name(), "loop/body/MatMul_3");
  EXPECT_EQ(plan.layers(1).activation().kind(), "linear");  // the body's output
  auto applied = model;
  ASSERT_TRUE(ApplyPlan(plan, &applied).ok());
  EXPECT_NE(applied.graph().node(0).attribute(0).g().initializer(0).raw_data(),
            std::string(16 * 16 * 4, '\1'));
  EXPECT_NE(reinit_test::FindInitializer(applied, "w_outer")->raw_data(),
            reinit_test::FindInitializer(model, "w_outer")->raw_data());
}

// Every planning option's row: a value other than the default, set through the row, written
// by MakePlan and read back from the plan's JSON by ReadPlan's reader, gives the same
// PlanOptions (the rows without a reader: the defaults). A new row fails here until it has a
// value below.
TEST(PlanOptionTable, EveryRowRoundTripsThroughThePlan) {
  const std::map<std::string_view, OptionValue> non_default = {
      {"scheme", std::string("he-normal")},
      {"seed", uint64_t{7}},
      {"layer", std::vector<std::string>{"*=xavier-uniform"}},
      {"bias", std::string("keep")},
      {"norms", std::string("keep")},
      {"forget-bias", 1.0},
      {"fan-convention", std::string("torch")},
      {"mode", std::string("fan_out")},
      {"std", 0.05},
      {"range", 0.2},
      {"residual", std::string("zero")},
      {"zero-init-residual", true},
  };
  PlanOptions base;
  base.naive_std = EffectiveStd(base);  // what a plan holds, and so reads back
  const auto model = GemmModel(16, 8, "Relu");
  for (const auto& row : PlanOptionRows()) {
    auto value = non_default.find(row.flag);
    ASSERT_NE(value, non_default.end()) << row.flag << ": give the new row a value here";
    PlanOptions o = base;
    ASSERT_TRUE(SetPlanOption(row.flag, value->second, &o).ok()) << row.flag;
    EXPECT_FALSE(o == base) << row.flag << ": the value is the default";
    auto plan = MakePlan(model, o);
    ASSERT_TRUE(plan.ok()) << row.flag << ": " << plan.status().message();
    proto::Plan read;
    ASSERT_TRUE(google::protobuf::util::JsonStringToMessage(PlanToJson(*plan), &read).ok());
    PlanOptions back;
    ASSERT_TRUE(ReadPlanOptions(read, &back).ok()) << row.flag;
    EXPECT_TRUE(back == (row.read ? o : base)) << row.flag;
    auto again = ReadPlan(PlanToJson(*plan), "p.json", model);
    EXPECT_TRUE(again.ok()) << row.flag << ": " << again.status().message();
  }
}

TEST(PlanOptionTable, TextsAndPlanFieldsAreCheckedWithTheToolsMessages) {
  PlanOptions o;
  EXPECT_EQ(SetPlanOption("mode", std::string("fan_middle"), &o).message(),
            "unknown --mode 'fan_middle'; valid: fan_in, fan_out");
  EXPECT_EQ(SetPlanOption("layer", std::vector<std::string>{"fc1"}, &o).message(),
            "--layer 'fc1': expected GLOB=SCHEME");
  EXPECT_TRUE(SetPlanOption("layer", std::vector<LayerOverride>{{"fc=1", ""}}, &o).ok());
  EXPECT_EQ(o.overrides, (std::vector<LayerOverride>{{"fc=1", ""}}));
  EXPECT_FALSE(SetPlanOption("std", std::string("0.1"), &o).ok());  // a number, not a text
  proto::Plan plan;
  plan.set_fan_convention("keras");
  EXPECT_EQ(ReadPlanOptions(plan, &o).message(),
            "fanConvention must be 'onnx' or 'torch', not 'keras'");
  plan.set_fan_convention("torch");
  plan.set_mode("fan_avg");
  EXPECT_EQ(ReadPlanOptions(plan, &o).message(),
            "mode must be 'fan_in' or 'fan_out', not 'fan_avg'");
}

}  // namespace
}  // namespace plan_test
}  // namespace reinit
