#include "graph/layers.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "plan/plan.h"
#include "test_util.h"

namespace reinit {
namespace layers_test {
namespace {

using reinit_test::AddInitializer;
using reinit_test::Contains;
using reinit_test::NameNodesAfterOutputs;
using reinit_test::ParseModelOrDie;

constexpr const char* kHeader = "<ir_version: 8, opset_import: [\"\" : 17]>\n";

// A model from a graph in text syntax, nodes named after their first outputs.
onnx::ModelProto Model(const std::string& graph) {
  auto model = ParseModelOrDie(kHeader + graph);
  NameNodesAfterOutputs(&model);
  return model;
}

const Layer* Find(const std::vector<Layer>& layers, const std::string& name) {
  for (const auto& l : layers) {
    if (l.name == name) return &l;
  }
  return nullptr;
}

// Each parameter's name and the role the Plan shows.
std::vector<std::string> ParamNames(const Layer& layer) {
  std::vector<std::string> names;
  for (const auto& p : layer.params) names.push_back(p.name);
  return names;
}
std::vector<std::string> ParamRoles(const Layer& layer) {
  std::vector<std::string> roles;
  for (const auto& p : layer.params) roles.push_back(ParamRoleName(p.role));
  return roles;
}

std::vector<std::string> Names(const std::vector<Layer>& layers) {
  std::vector<std::string> names;
  for (const auto& l : layers) names.push_back(l.name);
  return names;
}

void ExpectPlannable(const Layer& layer, WeightLayout layout, const std::string& weight,
                     const std::string& bias) {
  EXPECT_EQ(layer.skipped, "") << layer.name;
  ASSERT_NE(layer.rule, nullptr) << layer.name;
  EXPECT_EQ(layer.rule->layout, layout) << layer.name;
  EXPECT_EQ(layer.rule->op, layer.op) << layer.name;
  EXPECT_EQ(layer.weight, weight) << layer.name;
  EXPECT_EQ(layer.bias, bias) << layer.name;
}

TEST(Gemm, WeightIsBBiasIsC) {
  auto model = Model(R"(g (float[N, 32] x) => (float[N, 64] y) {
    fc = Gemm <transB = 1> (x, w, b)
    y = Relu (fc)
  })");
  AddInitializer(&model, "w", {64, 32});
  AddInitializer(&model, "b", {64});
  const GraphIndex index(model.graph());
  const auto layers = FindLayers(index);
  ASSERT_EQ(layers.size(), 1u);
  ExpectPlannable(layers[0], WeightLayout::kGemm, "w", "b");
  EXPECT_EQ(layers[0].node, 0);
  EXPECT_EQ(layers[0].name, "fc");
  EXPECT_EQ(layers[0].op, "Gemm");
  EXPECT_EQ(layers[0].output, "fc");
  EXPECT_TRUE(layers[0].path.empty());
}

TEST(MatMul, ConstantBWithItsBiasAddFolded) {
  auto model = Model(R"(g (float[N, 32] x) => (float[N, 64] y) {
    mm = MatMul (x, w)
    h = Add (mm, b)
    y = Relu (h)
  })");
  AddInitializer(&model, "w", {32, 64});
  AddInitializer(&model, "b", {64});
  const GraphIndex index(model.graph());
  const auto layers = FindLayers(index);
  ASSERT_EQ(layers.size(), 1u) << ::testing::PrintToString(Names(layers));
  ExpectPlannable(layers[0], WeightLayout::kMatMulB, "w", "b");
  EXPECT_EQ(layers[0].name, "mm");
  EXPECT_EQ(layers[0].output, "h");
  EXPECT_EQ(layers[0].path, std::vector<int>{1});
}

TEST(MatMul, BiasFirstAndBroadcastShapeAreFolded) {
  // Add(b, mm) with b [1, N]: the same bias.
  auto model = Model(R"(g (float[N, 32] x) => (float[N, 64] h) {
    mm = MatMul (x, w)
    h = Add (b, mm)
  })");
  AddInitializer(&model, "w", {32, 64});
  AddInitializer(&model, "b", {1, 64});
  const GraphIndex index(model.graph());
  const auto layers = FindLayers(index);
  ASSERT_EQ(layers.size(), 1u) << ::testing::PrintToString(Names(layers));
  ExpectPlannable(layers[0], WeightLayout::kMatMulB, "w", "b");
  EXPECT_EQ(layers[0].output, "h");
}

TEST(MatMul, BiasNotFoldedWhenTheOutputHasTwoConsumers) {
  auto model = Model(R"(g (float[N, 32] x) => (float[N, 64] y, float[N, 64] z) {
    mm = MatMul (x, w)
    y = Add (mm, b)
    z = Relu (mm)
  })");
  AddInitializer(&model, "w", {32, 64});
  AddInitializer(&model, "b", {64});
  const GraphIndex index(model.graph());
  const auto layers = FindLayers(index);
  ASSERT_EQ(Names(layers), (std::vector<std::string>{"mm", "b"}));
  ExpectPlannable(layers[0], WeightLayout::kMatMulB, "w", "");
  EXPECT_EQ(layers[0].output, "mm");
  EXPECT_TRUE(layers[0].path.empty());
  // The unfolded bias is a loose parameter.
  EXPECT_EQ(layers[1].node, -1);
  EXPECT_TRUE(Contains(layers[1].skipped, "Add 'y'"));
}

TEST(MatMul, BiasNotFoldedWhenTheOutputIsAGraphOutput) {
  auto model = Model(R"(g (float[N, 32] x) => (float[N, 64] mm, float[N, 64] y) {
    mm = MatMul (x, w)
    y = Add (mm, b)
  })");
  AddInitializer(&model, "w", {32, 64});
  AddInitializer(&model, "b", {64});
  const GraphIndex index(model.graph());
  const auto layers = FindLayers(index);
  ASSERT_EQ(Names(layers), (std::vector<std::string>{"mm", "b"}));
  EXPECT_EQ(layers[0].bias, "");
}

TEST(MatMul, BiasNotFoldedWhenTheConstantHasTheWrongSize) {
  // [K] instead of [N], and [N, 1] (N elements, but it broadcasts along the wrong axis).
  for (const std::vector<int64_t>& dims : {std::vector<int64_t>{32}, {64, 1}}) {
    auto model = Model(R"(g (float[N, 32] x) => (float[N, 64] y) {
      mm = MatMul (x, w)
      y = Add (mm, c)
    })");
    AddInitializer(&model, "w", {32, 64});
    AddInitializer(&model, "c", dims);
    const GraphIndex index(model.graph());
    const auto layers = FindLayers(index);
    ASSERT_EQ(Names(layers), (std::vector<std::string>{"mm", "c"})) << dims.size();
    EXPECT_EQ(layers[0].bias, "");
    EXPECT_EQ(layers[0].output, "mm");
    EXPECT_TRUE(Contains(layers[1].skipped, "not the weight of a supported layer"));
  }
}

TEST(MatMul, ConstantA) {
  auto model = Model(R"(g (float[32, N] x) => (float[16, N] y) {
    y = MatMul (w, x)
  })");
  AddInitializer(&model, "w", {16, 32});
  const GraphIndex index(model.graph());
  const auto layers = FindLayers(index);
  ASSERT_EQ(layers.size(), 1u);
  ExpectPlannable(layers[0], WeightLayout::kMatMulA, "w", "");
  EXPECT_EQ(layers[0].output, "y");
}

TEST(MatMul, OfTwoActivationsIsNotALayer) {
  auto model = Model(R"(g (float[N, 8, 16] q, float[N, 16, 8] k) => (float[N, 8, 8] s) {
    s = MatMul (q, k)
  })");
  const GraphIndex index(model.graph());
  EXPECT_TRUE(FindLayers(index).empty());
}

TEST(Conv, WithAndWithoutBias) {
  auto model = Model(R"(g (float[1, 3, 8, 8] x) => (float[1, 8, 8, 8] y) {
    c1 = Conv <pads = [1, 1, 1, 1]> (x, w1, b1)
    y = Conv <pads = [1, 1, 1, 1]> (c1, w2)
  })");
  AddInitializer(&model, "w1", {4, 3, 3, 3});
  AddInitializer(&model, "b1", {4});
  AddInitializer(&model, "w2", {8, 4, 3, 3});
  const GraphIndex index(model.graph());
  const auto layers = FindLayers(index);
  ASSERT_EQ(Names(layers), (std::vector<std::string>{"c1", "y"}));
  ExpectPlannable(layers[0], WeightLayout::kConv, "w1", "b1");
  ExpectPlannable(layers[1], WeightLayout::kConv, "w2", "");
  EXPECT_EQ(layers[1].node, 1);
}

TEST(ConvTranspose, WeightAndBias) {
  auto model = Model(R"(g (float[1, 8, 4, 4] x) => (float[1, 6, 8, 8] y) {
    y = ConvTranspose <strides = [2, 2]> (x, w, b)
  })");
  AddInitializer(&model, "w", {8, 6, 2, 2});
  AddInitializer(&model, "b", {6});
  const GraphIndex index(model.graph());
  const auto layers = FindLayers(index);
  ASSERT_EQ(layers.size(), 1u);
  ExpectPlannable(layers[0], WeightLayout::kConvTranspose, "w", "b");
}

TEST(ConstantChains, WeightBehindATransposeIsTheStoredTensorSeenTransposed) {
  auto model = Model(R"(g (float[N, 32] x) => (float[N, 64] y) {
    wt = Transpose <perm = [1, 0]> (w0)
    y = Gemm (x, wt, b)
  })");
  AddInitializer(&model, "w0", {64, 32});
  AddInitializer(&model, "b", {64});
  const auto layers = FindLayers(GraphIndex(model.graph()));
  ASSERT_EQ(layers.size(), 1u);  // w0 is the layer's, not a loose parameter
  EXPECT_EQ(layers[0].skipped, "");
  EXPECT_EQ(layers[0].weight, "w0");
  EXPECT_EQ(layers[0].weight_view.shape, (std::vector<int64_t>{32, 64}));
  ASSERT_EQ(layers[0].weight_view.steps.size(), 1u);
  EXPECT_EQ(layers[0].weight_view.steps[0].perm, (std::vector<int64_t>{1, 0}));
}

TEST(ConstantChains, IdentityCastReshapeSqueezeUnsqueezeAndConstantNodes) {
  auto model = Model(R"(g (float[N, 2] x) => (float[N, 3] y) {
    c = Constant <value = float[1, 6] {1.0, 2.0, 3.0, 4.0, 5.0, 6.0}> ()
    i = Identity (c)
    k = Cast <to = 1> (i)
    s = Squeeze (k, zero)
    u = Unsqueeze (s, zero)
    r = Reshape (u, shape)
    y = MatMul (x, r)
  })");
  auto* zero = AddInitializer(&model, "zero", {1}, onnx::TensorProto::INT64);
  zero->clear_raw_data();
  zero->add_int64_data(0);
  auto* shape = AddInitializer(&model, "shape", {2}, onnx::TensorProto::INT64);
  shape->clear_raw_data();
  shape->add_int64_data(2);
  shape->add_int64_data(-1);
  const auto layers = FindLayers(GraphIndex(model.graph()));
  ASSERT_EQ(layers.size(), 1u);
  EXPECT_EQ(layers[0].skipped, "");
  EXPECT_EQ(layers[0].weight, "c");
  EXPECT_EQ(layers[0].weight_view.shape, (std::vector<int64_t>{2, 3}));
}

ViewStep Step(std::vector<int64_t> perm, std::vector<int64_t> shape) {
  ViewStep step;
  step.perm = std::move(perm);
  step.shape = std::move(shape);
  return step;
}

TEST(ConstantChains, ViewToSourceFollowsTransposes) {
  // [2, 3] transposed to [3, 2]: view element (i, j) is source element (j, i).
  const auto map = ViewToSource({2, 3}, {Step({1, 0}, {3, 2})});
  EXPECT_EQ(map, (std::vector<int64_t>{0, 3, 1, 4, 2, 5}));
  // A reshape keeps the order.
  EXPECT_EQ(ViewToSource({2, 3}, {Step({}, {6})}), (std::vector<int64_t>{0, 1, 2, 3, 4, 5}));
}

TEST(Skipped, WeightComputedByAnotherOpNamesTheProducer) {
  auto model = Model(R"(g (float[N, 32] x) => (float[N, 64] y) {
    wt = Mul (w0, w0)
    y = Gemm (x, wt, b)
  })");
  AddInitializer(&model, "w0", {32, 64});
  AddInitializer(&model, "b", {64});
  const GraphIndex index(model.graph());
  const auto layers = FindLayers(index);
  const Layer* gemm = Find(layers, "y");
  ASSERT_NE(gemm, nullptr);
  EXPECT_NE(gemm->rule, nullptr);
  EXPECT_TRUE(Contains(gemm->skipped, "weight 'wt' is produced by Mul 'wt', not a constant"))
      << gemm->skipped;
  // The initializer behind it is not lost: it is listed as a loose parameter.
  const Layer* w0 = Find(layers, "w0");
  ASSERT_NE(w0, nullptr);
  EXPECT_TRUE(Contains(w0->skipped, "Mul 'wt'"));
}

TEST(Skipped, IntegerWeightNamesTheType) {
  auto model = Model(R"(g (int32[N, 4] x) => (int32[N, 8] y) {
    y = MatMul (x, w)
  })");
  AddInitializer(&model, "w", {4, 8}, onnx::TensorProto::INT32);
  const GraphIndex index(model.graph());
  const auto layers = FindLayers(index);
  ASSERT_EQ(layers.size(), 1u);
  EXPECT_TRUE(Contains(layers[0].skipped, "weight 'w' has data type INT32"));
}

TEST(Skipped, IntegerBiasNamesTheBias) {
  auto model = Model(R"(g (float[N, 4] x) => (float[N, 8] y) {
    y = Gemm (x, w, b)
  })");
  AddInitializer(&model, "w", {4, 8});
  AddInitializer(&model, "b", {8}, onnx::TensorProto::INT64);
  const GraphIndex index(model.graph());
  const auto layers = FindLayers(index);
  ASSERT_EQ(layers.size(), 1u);
  EXPECT_TRUE(Contains(layers[0].skipped, "bias 'b' has data type INT64"));
}

TEST(Skipped, GraphInputWeight) {
  auto model = Model(R"(g (float[N, 4] x, float[4, 8] w) => (float[N, 8] y) {
    y = Gemm (x, w)
  })");
  const GraphIndex index(model.graph());
  const auto layers = FindLayers(index);
  ASSERT_EQ(layers.size(), 1u);
  EXPECT_TRUE(Contains(layers[0].skipped, "weight 'w' is a graph input"));
}

TEST(Layers, NormalizationEmbeddingAndRecurrentOpsOwnTheirParameters) {
  auto model = Model(R"(g (float[1, 4, 8, 8] x, int64[1, 5] ids, float[5, 1, 3] seq)
      => (float[1, 4, 8, 8] bn, float[1, 5, 16] ln, float[5, 1, 1, 2] lstm) {
    bn = BatchNormalization (x, scale, shift, mean, var)
    emb = Gather (table, ids)
    ln = LayerNormalization (emb, gamma, beta)
    lstm, lstm_h, lstm_c = LSTM <hidden_size = 2> (seq, W, R, B)
  })");
  for (const char* name : {"scale", "shift", "mean", "var"}) AddInitializer(&model, name, {4});
  AddInitializer(&model, "table", {100, 16});
  AddInitializer(&model, "gamma", {16});
  AddInitializer(&model, "beta", {16});
  AddInitializer(&model, "W", {1, 8, 3});
  AddInitializer(&model, "R", {1, 8, 2});
  AddInitializer(&model, "B", {1, 16});
  const GraphIndex index(model.graph());
  const auto layers = FindLayers(index);
  // Every parameter is claimed by its node: nothing left loose.
  ASSERT_EQ(Names(layers), (std::vector<std::string>{"bn", "emb", "ln", "lstm"}));
  using Names = std::vector<std::string>;
  for (const auto& l : layers) {
    ASSERT_NE(l.rule, nullptr) << l.name;
    EXPECT_EQ(l.skipped, "") << l.name;
  }
  EXPECT_EQ(KindOf(layers[0].rule->layout), LayerKind::kNorm);
  EXPECT_EQ(layers[0].weight, "scale");
  EXPECT_EQ(layers[0].bias, "shift");
  EXPECT_EQ(ParamNames(layers[0]), (Names{"mean", "var"}));
  EXPECT_EQ(ParamRoles(layers[0]), (Names{"running_mean", "running_var"}));
  EXPECT_EQ(KindOf(layers[1].rule->layout), LayerKind::kEmbedding);
  EXPECT_EQ(layers[1].weight, "table");
  EXPECT_EQ(layers[2].weight, "gamma");
  EXPECT_EQ(layers[2].bias, "beta");
  EXPECT_EQ(KindOf(layers[3].rule->layout), LayerKind::kRecurrent);
  EXPECT_EQ(layers[3].weight, "W");
  EXPECT_EQ(layers[3].bias, "B");
  EXPECT_EQ(ParamNames(layers[3]), Names{"R"});
  EXPECT_EQ(ParamRoles(layers[3]), Names{"recurrence"});
  // Only the LSTM ends an activation walk.
  EXPECT_EQ(WalkBoundaries(layers), (std::unordered_set<int>{3}));
}

// onnx-caffe2's DenseNet and BN-Inception: Caffe's BatchNorm layer (no affine of its own in
// Caffe; a fixed 1/0 in the export) followed by a Scale layer, written as Mul and Add of
// per-channel vectors through Unsqueeze. The Scale is the norm's affine: a norm layer of its own,
// reset to 1 and 0 by the plan, not a loose tensor keeping its trained values.
TEST(Layers, PerChannelMulAndAddAfterANormAreItsAffine) {
  auto model = Model(R"(g (float[1, 4, 8, 8] x) => (float[1, 4, 8, 8] y, float[1, 4, 8, 8] z) {
    bn = BatchNormalization (x, scale, shift, mean, var)
    g3 = Unsqueeze <axes = [1, 2]> (g)
    m = Mul (bn, g3)
    b3 = Unsqueeze <axes = [1, 2]> (b)
    a = Add (m, b3)
    y = Relu (a)
    bn2 = BatchNormalization (x, scale, shift, mean, var)
    z = Mul (bn2, half)
  })");
  for (const char* name : {"scale", "shift", "mean", "var", "g", "b"}) {
    AddInitializer(&model, name, {4});
  }
  AddInitializer(&model, "half", {1});  // a scalar Mul is not a per-channel affine
  const GraphIndex index(model.graph());
  const auto layers = FindLayers(index);
  const Layer* scale = Find(layers, "m");
  ASSERT_NE(scale, nullptr);
  EXPECT_EQ(scale->op, "Scale (after BatchNormalization)");
  ASSERT_NE(scale->rule, nullptr);
  EXPECT_EQ(KindOf(scale->rule->layout), LayerKind::kNorm);
  EXPECT_EQ(scale->weight, "g");
  EXPECT_EQ(scale->bias, "b");
  EXPECT_EQ(scale->output, "a");
  EXPECT_EQ(scale->skipped, "");
  EXPECT_EQ(Find(layers, "z"), nullptr);
  for (const auto& l : layers) EXPECT_NE(l.weight, "half") << l.name;

  auto plan = MakePlan(model, {});
  ASSERT_TRUE(plan.ok()) << plan.status().message();
  const proto::Layer* planned = nullptr;
  for (const auto& l : plan->layers()) {
    if (l.name() == "m") planned = &l;
  }
  ASSERT_NE(planned, nullptr);
  EXPECT_EQ(planned->weight().scheme(), "constant");
  EXPECT_EQ(planned->weight().value(), 1);
  EXPECT_EQ(planned->bias().scheme(), "zero");
}

TEST(Skipped, GatherOfAnIntegerTableIsNotListed) {
  auto model = Model(R"(g (float[N, 4] x) => (int64[1] y) {
    s = Shape (x)
    y = Gather (s, idx)
  })");
  AddInitializer(&model, "idx", {1}, onnx::TensorProto::INT64);
  const GraphIndex index(model.graph());
  EXPECT_TRUE(FindLayers(index).empty());
}

TEST(Skipped, LooseFloatInitializerIsListed) {
  // A learned positional embedding added to the token embeddings, and a scalar (not listed).
  auto model = Model(R"(g (float[1, 16, 32] x) => (float[1, 16, 32] y) {
    h = Add (x, pos)
    y = Mul (h, scale)
  })");
  AddInitializer(&model, "pos", {1, 16, 32});
  AddInitializer(&model, "scale", {});
  const GraphIndex index(model.graph());
  const auto layers = FindLayers(index);
  ASSERT_EQ(layers.size(), 1u);
  EXPECT_EQ(layers[0].name, "pos");
  EXPECT_EQ(layers[0].node, -1);
  EXPECT_EQ(layers[0].op, "Add");
  EXPECT_EQ(layers[0].weight, "pos");
  EXPECT_EQ(layers[0].rule, nullptr);
  EXPECT_TRUE(Contains(layers[0].skipped, "used by Add 'h'"));
}

TEST(Shared, WeightUsedByTwoGemmsIsPlannedOnce) {
  auto model = Model(R"(g (float[N, 8] x) => (float[N, 8] y) {
    fc1 = Gemm (x, w)
    fc2 = Gemm (fc1, w)
    y = Relu (fc2)
  })");
  AddInitializer(&model, "w", {8, 8});
  const GraphIndex index(model.graph());
  const auto layers = FindLayers(index);
  ASSERT_EQ(Names(layers), (std::vector<std::string>{"fc1", "fc2"}));
  EXPECT_EQ(layers[0].skipped, "");
  EXPECT_NE(layers[1].rule, nullptr);
  EXPECT_EQ(layers[1].weight, "w");
  EXPECT_TRUE(Contains(layers[1].skipped, "shared with layer 'fc1'"));
}

TEST(Names, UnnamedNodesAreOpTypeAndIndex) {
  auto model = ParseModelOrDie(std::string(kHeader) + R"(g (float[N, 8] x) => (float[N, 4] y) {
    h = Relu (x)
    y = Gemm (h, w)
  })");
  AddInitializer(&model, "w", {8, 4});
  const GraphIndex index(model.graph());
  const auto layers = FindLayers(index);
  ASSERT_EQ(layers.size(), 1u);
  EXPECT_EQ(layers[0].name, "Gemm_1");
  EXPECT_EQ(index.Describe(1), "Gemm 'Gemm_1'");
}

TEST(Order, LayersInNodeOrderThenLooseParameters) {
  auto model = Model(R"(g (float[N, 8] x) => (float[N, 8] y) {
    a = Add (x, pos)
    fc1 = Gemm (a, w1)
    fc2 = Gemm (fc1, w2)
    y = Add (fc2, offset)
  })");
  AddInitializer(&model, "offset", {3, 8});  // initializer order differs from node order
  AddInitializer(&model, "w2", {8, 8});
  AddInitializer(&model, "pos", {8});
  AddInitializer(&model, "w1", {8, 8});
  const GraphIndex index(model.graph());
  EXPECT_EQ(Names(FindLayers(index)), (std::vector<std::string>{"fc1", "fc2", "offset", "pos"}));
}

}  // namespace
}  // namespace layers_test
}  // namespace reinit

namespace reinit {
namespace layers_test {
namespace {

TEST(DecomposedNorm, LayerNormWrittenOutIsOneLayerWithScaleAndShift) {
  auto model = Model(R"(g (float[N, 16] x) => (float[N, 16] y) {
    mu = ReduceMean <axes = [-1]> (x)
    d = Sub (x, mu)
    sq = Pow (d, two)
    var = ReduceMean <axes = [-1]> (sq)
    ve = Add (var, eps)
    sd = Sqrt (ve)
    n = Div (d, sd)
    sc = Mul (n, gamma)
    y = Add (sc, beta)
  })");
  AddInitializer(&model, "gamma", {16});
  AddInitializer(&model, "beta", {16});
  AddInitializer(&model, "two", {});
  AddInitializer(&model, "eps", {});
  const auto layers = FindLayers(GraphIndex(model.graph()));
  ASSERT_EQ(layers.size(), 1u);
  EXPECT_EQ(layers[0].op, "LayerNormalization (decomposed)");
  EXPECT_EQ(layers[0].name, "sc");
  EXPECT_EQ(layers[0].weight, "gamma");
  EXPECT_EQ(layers[0].bias, "beta");
  EXPECT_EQ(KindOf(layers[0].rule->layout), LayerKind::kNorm);
}

TEST(DecomposedNorm, RmsNormWithReciprocalAndNoShift) {
  auto model = Model(R"(g (float[N, 16] x) => (float[N, 16] y) {
    sq = Mul (x, x)
    ms = ReduceMean <axes = [-1]> (sq)
    me = Add (ms, eps)
    rt = Sqrt (me)
    inv = Reciprocal (rt)
    n = Mul (x, inv)
    y = Mul (n, w)
  })");
  AddInitializer(&model, "w", {16});
  AddInitializer(&model, "eps", {});
  const auto layers = FindLayers(GraphIndex(model.graph()));
  ASSERT_EQ(layers.size(), 1u);
  EXPECT_EQ(layers[0].op, "RMSNormalization (decomposed)");
  EXPECT_EQ(layers[0].weight, "w");
  EXPECT_EQ(layers[0].bias, "");
}

TEST(DecomposedNorm, ADivisionByAnythingElseIsNotANorm) {
  // x / sqrt(mean(y²)) for another tensor y: not a normalization of x.
  auto model = Model(R"(g (float[N, 16] x, float[N, 16] z) => (float[N, 16] y) {
    sq = Mul (z, z)
    ms = ReduceMean <axes = [-1]> (sq)
    rt = Sqrt (ms)
    n = Div (x, rt)
    y = Mul (n, w)
  })");
  AddInitializer(&model, "w", {16});
  const auto layers = FindLayers(GraphIndex(model.graph()));
  ASSERT_EQ(layers.size(), 1u);
  EXPECT_FALSE(layers[0].skipped.empty());  // w is only a loose parameter
  EXPECT_EQ(layers[0].rule, nullptr);
}

TEST(Embedding, TiedOutputProjectionSharesTheTable) {
  auto m = Model(R"(g (int64[5] ids) => (float[5, 100] y) {
    e = Gather (table, ids)
    y = Gemm <transB = 1> (e, table)
  })");
  AddInitializer(&m, "table", {100, 16});
  const auto layers = FindLayers(GraphIndex(m.graph()));
  ASSERT_EQ(layers.size(), 2u);
  EXPECT_EQ(KindOf(layers[0].rule->layout), LayerKind::kEmbedding);
  EXPECT_EQ(layers[0].skipped, "");
  EXPECT_EQ(layers[1].op, "Gemm");
  EXPECT_TRUE(Contains(layers[1].skipped, "shared with layer 'e'"));
}

}  // namespace
}  // namespace layers_test
}  // namespace reinit
