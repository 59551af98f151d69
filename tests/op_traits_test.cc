// The op table against the units that read it: every record's claim is checked by running the
// unit on a small model written in ONNX text (a norm op is found as a norm layer, a pass-through
// op is walked through to the Relu after it, a skip-layout op carries a residual skip, a
// constant-view op keeps a weight a view of its initializer), so a wrong or missing record
// fails here.
#include "graph/op_traits.h"

#include <gtest/gtest.h>

#include <set>
#include <string>
#include <unordered_set>
#include <vector>

#include "graph/activation.h"
#include "graph/layers.h"
#include "graph/structure.h"
#include "test_util.h"

namespace reinit {
namespace op_traits_test {
namespace {

using reinit_test::AddInitializer;
using reinit_test::NameNodesAfterOutputs;
using reinit_test::ParseModelOrDie;

onnx::ModelProto Model(const std::string& graph) {
  auto model = ParseModelOrDie("<ir_version: 8, opset_import: [\"\" : 17]>\n" + graph);
  NameNodesAfterOutputs(&model);
  return model;
}

// x [N, 4] -> fc = Gemm(x, w [8, 4], b [8]) -> t = `op`(fc) -> y = Relu(t).
onnx::ModelProto GemmOpRelu(std::string_view op) {
  auto model = Model(
      "g (float[N, 4] x) => (float[N, 8] y) {\n fc = Gemm <transB = 1> (x, w, b)\n"
      " t = " +
      std::string(op) + " (fc)\n y = Relu (t)\n}");
  AddInitializer(&model, "w", {8, 4});
  AddInitializer(&model, "b", {8});
  return model;
}

proto::Activation DetectAfterFc(const onnx::ModelProto& model) {
  const GraphIndex index(model.graph());
  const auto layers = FindLayers(index);
  for (const auto& l : layers) {
    if (l.name == "fc") return DetectActivation(index, WalkBoundaries(layers), l.output, l.path);
  }
  ADD_FAILURE() << "no layer fc";
  return {};
}

TEST(OpTraits, OneRecordPerOpAndLookupFindsIt) {
  std::set<std::string_view> seen;
  for (const auto& o : AllOpTraits()) {
    EXPECT_TRUE(seen.insert(o.op).second) << o.op << " has two records";
    EXPECT_EQ(FindOpTraits(o.op), &o) << o.op;
    for (const auto& rule : o.layers) EXPECT_EQ(rule.op, o.op);
  }
  EXPECT_EQ(FindOpTraits("NoSuchOp"), nullptr);
  EXPECT_EQ(WalkRoleOf("NoSuchOp"), WalkRole::kUnknown);
}

TEST(OpTraits, LayerRulesAndSkippedOpsAreTheTablesRecords) {
  std::vector<const LayerRule*> from_table;
  for (const auto& o : AllOpTraits()) {
    for (const auto& rule : o.layers) from_table.push_back(&rule);
  }
  ASSERT_EQ(LayerRules().size(), from_table.size());
  for (size_t i = 0; i < from_table.size(); ++i) {
    EXPECT_EQ(LayerRules()[i].op, from_table[i]->op) << i;
    EXPECT_EQ(LayerRules()[i].layout, from_table[i]->layout) << i;
  }
  // MatMul: constant B first, then constant A.
  const OpTraits* matmul = FindOpTraits("MatMul");
  ASSERT_NE(matmul, nullptr);
  ASSERT_EQ(matmul->layers.size(), 2u);
  EXPECT_EQ(matmul->layers[0].layout, WeightLayout::kMatMulB);
  EXPECT_EQ(matmul->layers[1].layout, WeightLayout::kMatMulA);
  size_t skipped = 0;
  for (const auto& o : AllOpTraits()) skipped += !o.skipped.empty();
  EXPECT_EQ(SkippedOpRules().size(), skipped);
  for (const auto& s : SkippedOpRules()) EXPECT_EQ(FindOpTraits(s.op)->skipped, s.reason);
}

// Every norm op of the table, its scale, shift and statistics constants: FindLayers finds a
// plannable norm layer.
TEST(OpTraits, EveryNormOpIsFoundAsANormLayer) {
  int norms = 0;
  for (const auto& o : AllOpTraits()) {
    if (!IsNormalizationOp(o.op)) continue;
    ++norms;
    const LayerRule& rule = o.layers.at(0);
    int inputs = std::max(rule.weight_input, rule.bias_input) + 1;
    for (const auto& p : rule.params) inputs = std::max(inputs, p.input + 1);
    std::string args = "x";
    for (int i = 1; i < inputs; ++i) args += ", p" + std::to_string(i);
    auto model = Model("g (float[N, 4, 6] x) => (float[N, 4, 6] y) {\n y = " + std::string(o.op) +
                       " <num_groups = 2> (" + args + ")\n}");
    for (int i = 1; i < inputs; ++i) AddInitializer(&model, "p" + std::to_string(i), {4});
    const GraphIndex index(model.graph());
    const auto layers = FindLayers(index);
    ASSERT_EQ(layers.size(), 1u) << o.op;
    EXPECT_EQ(layers[0].skipped, "") << o.op;
    ASSERT_NE(layers[0].rule, nullptr) << o.op;
    EXPECT_EQ(KindOf(layers[0].rule->layout), LayerKind::kNorm) << o.op;
    EXPECT_EQ(layers[0].weight, "p" + std::to_string(rule.weight_input)) << o.op;
  }
  EXPECT_EQ(norms, 4);
  EXPECT_FALSE(IsNormalizationOp("LpNormalization"));  // no parameters: walked through only
}

// For the residual structure every normalization counts, record or not, in any domain: the norm
// layers, those without parameters, ONNX's RMSNormalization, com.microsoft's fused ones.
TEST(OpTraits, EveryOpNamedNormalizationNormalizesTheStream) {
  for (const auto& o : AllOpTraits()) {
    EXPECT_EQ(NormalizesStream(o.op), IsNormalizationOp(o.op) ||
                                          o.op == std::string_view("LpNormalization") ||
                                          o.op == std::string_view("MeanVarianceNormalization"))
        << o.op;
  }
  for (const char* op :
       {"RMSNormalization", "SkipLayerNormalization", "SimplifiedLayerNormalization",
        "SkipSimplifiedLayerNormalization", "EmbedLayerNormalization"}) {
    EXPECT_TRUE(NormalizesStream(op)) << op;
  }
  EXPECT_FALSE(NormalizesStream("Attention"));
}

// Gemm -> op -> Relu: the walk reaches the Relu through every pass-through op; a statistic
// ends the path with no verdict; a linear stop or an op the table does not know means linear.
TEST(OpTraits, TheActivationWalkDoesWhatEachRecordSays) {
  int checked = 0;
  for (const auto& o : AllOpTraits()) {
    // An activation's verdict is checked below; a weight layer's node ends the walk as linear.
    if (o.activation || (!o.layers.empty() && o.walk == WalkRole::kUnknown)) continue;
    const auto a = DetectAfterFc(GemmOpRelu(o.op));
    const std::vector<std::string> path(a.path().begin(), a.path().end());
    switch (o.walk) {
      case WalkRole::kPass:
        EXPECT_EQ(a.kind(), "relu") << o.op;
        break;
      case WalkRole::kStatistic:
        EXPECT_EQ(a.kind(), "linear") << o.op;
        EXPECT_EQ(path.back(), "no nonlinearity reached") << o.op;
        break;
      case WalkRole::kLinearStop:
        EXPECT_EQ(a.kind(), "linear") << o.op;
        EXPECT_NE(path.back().find(std::string(o.op)), std::string::npos) << o.op;
        break;
      case WalkRole::kUnknown:
        EXPECT_EQ(a.kind(), "linear") << o.op;
        EXPECT_NE(path.back().find("not a known activation or pass-through op"), std::string::npos)
            << o.op;
        break;
    }
    ++checked;
  }
  EXPECT_GT(checked, 60);
  const auto unknown = DetectAfterFc(GemmOpRelu("NoSuchOp"));
  EXPECT_EQ(unknown.kind(), "linear");
}

// Each activation op, right after the layer, with its defaults: the row's kind and parameter.
TEST(OpTraits, EachActivationOpGivesItsKind) {
  for (const auto& o : AllOpTraits()) {
    if (!o.activation || o.activation->read == ActivationRead::kClipBounds) continue;
    auto model = Model(
        "g (float[N, 4] x) => (float[N, 8] y) {\n fc = Gemm <transB = 1> (x, w, b)\n"
        " y = " +
        std::string(o.op) + " (fc)\n}");
    AddInitializer(&model, "w", {8, 4});
    AddInitializer(&model, "b", {8});
    const auto a = DetectAfterFc(model);
    EXPECT_EQ(a.kind(), ActivationName(o.activation->kind)) << o.op;
    EXPECT_DOUBLE_EQ(a.param(), o.activation->fallback) << o.op;
  }
}

// x -> fc1 -> Relu -> fc2 = branch; skip = op(x); y = Add(skip, branch): a join from x exactly
// when the skip may pass through the op.
TEST(OpTraits, AResidualSkipPassesThroughTheSkipLayoutOpsOnly) {
  int passing = 0;
  for (const auto& o : AllOpTraits()) {
    if (!o.layers.empty() || o.activation) continue;
    auto model = Model(
        "g (float[N, 8] x) => (float[N, 8] y) {\n h = Gemm <transB = 1> (x, w1, b1)\n"
        " r = Relu (h)\n c = Gemm <transB = 1> (r, w2, b2)\n s = " +
        std::string(o.op) + " (x)\n y = Add (s, c)\n}");
    for (const char* w : {"w1", "w2"}) AddInitializer(&model, w, {8, 8});
    for (const char* b : {"b1", "b2"}) AddInitializer(&model, b, {8});
    const GraphIndex index(model.graph());
    auto order = index.TopologicalOrder();
    ASSERT_TRUE(order.ok());
    const Structure s = FindStructure(index, FindLayers(index), *order);
    const bool joined_at_x = s.joins.size() == 1 && s.joins[0].source == "x";
    EXPECT_EQ(joined_at_x, o.skip_passes) << o.op;
    passing += o.skip_passes;
  }
  EXPECT_EQ(passing, 10);
}

// Gemm(x, op(w0)): the weight is seen through a constant-view op as a view of w0, and through
// another op not at all.
TEST(OpTraits, ConstantViewsFollowTheViewOpsOnly) {
  // How each op is written so that w0 [4, 8] becomes the [8, 4] (or [4, 8]) weight.
  const std::vector<std::pair<std::string, std::string>> nodes = {
      {"Identity", "Identity (w0)"},
      {"Cast", "Cast <to = 1> (w0)"},
      {"Transpose", "Transpose <perm = [1, 0]> (w0)"},
      {"Reshape", "Reshape (w0, shape)"},
      {"Flatten", "Flatten (w0)"},
      {"Squeeze", "Squeeze (w0)"},
      {"Unsqueeze", "Unsqueeze (w0, axes)"},
      {"Dropout", "Dropout (w0)"},
      {"Neg", "Neg (w0)"},
  };
  std::set<std::string_view> covered;
  for (const auto& [op, node] : nodes) {
    auto model = Model(
        "g (float[N, 4] x) => (float[N, 8] y) {\n shape = Constant <value = "
        "int64[2] {8, 4}> ()\n axes = Constant <value = int64[1] {0}> ()\n"
        " w = " +
        node + "\n y = Gemm <transB = 1> (x, w)\n}");
    AddInitializer(&model, "w0", {8, 4});
    const GraphIndex index(model.graph());
    const auto view = ResolveConstant(index, "w");
    EXPECT_EQ(view.has_value(), IsConstantViewStep(op)) << op;
    if (view) {
      EXPECT_EQ(view->source, "w0") << op;
    }
    if (IsConstantViewStep(op)) covered.insert(FindOpTraits(op)->op);
  }
  for (const auto& o : AllOpTraits()) {
    if (o.constant_view) {
      EXPECT_TRUE(covered.count(o.op)) << o.op << ": add it to this test";
    }
  }
}

}  // namespace
}  // namespace op_traits_test
}  // namespace reinit
