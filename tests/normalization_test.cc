// Normalizations written out, found by what they compute: each exporter's spelling (torch
// <= 1.9, Megatron's Cast, TensorFlow's x·s + (β − mean·s), T5's RMSNorm between float16 Casts,
// ...) is found with its γ and β and the node that stands for it; what computes no
// normalization (a softmax, a mean subtraction, a scaling by a tensor that is not per channel)
// is not; a reduction over another axis that scales x is listed as unidentified.
#include "graph/normalization.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "graph/layers.h"
#include "test_util.h"

namespace reinit {
namespace normalization_test {
namespace {

using reinit_test::AddFloatValues;
using reinit_test::AddInitializer;
using reinit_test::Contains;
using reinit_test::NameNodesAfterOutputs;
using reinit_test::ParseModelOrDie;

// A model from a graph in text syntax (opset 17 unless given), nodes named after their first
// outputs, with scalar initializers of the given values, per-channel ones of shape [16] (of
// `type`) and `axes`, an int64 [-1], for the reductions that take their axes as an input.
onnx::ModelProto Model(const std::string& graph,
                       const std::vector<std::pair<std::string, float>>& scalars,
                       const std::vector<std::string>& channels, int opset = 17,
                       int32_t type = onnx::TensorProto::FLOAT) {
  auto model = ParseModelOrDie("<ir_version: 8, opset_import: [\"\" : " + std::to_string(opset) +
                               "]>\n" + graph);
  NameNodesAfterOutputs(&model);
  for (const auto& [name, value] : scalars) AddFloatValues(&model, name, {}, {value});
  for (const auto& c : channels) AddInitializer(&model, c, {16}, type);
  auto* axes = AddInitializer(&model, "axes", {1}, onnx::TensorProto::INT64);
  const int64_t last = -1;
  axes->set_raw_data(std::string(reinterpret_cast<const char*>(&last), sizeof last));
  return model;
}

std::vector<std::string> Names(const GraphIndex& index, const std::vector<int>& nodes) {
  std::vector<std::string> names;
  for (int v : nodes) names.push_back(index.NodeName(v));
  return names;
}

// The one site the model holds: its kind, x, γ, β, anchor and what follows the anchor.
struct Want {
  NormKind kind;
  std::string input, gamma, beta, anchor;
  std::vector<std::string> after_anchor;
};

void ExpectOneSite(const onnx::ModelProto& model, const Want& want) {
  const GraphIndex index(model.graph());
  const Normalizations found = FindNormalizations(index);
  ASSERT_EQ(found.sites.size(), 1u);
  EXPECT_TRUE(found.unidentified.empty());
  const NormSite& site = found.sites[0];
  EXPECT_EQ(NormKindName(site.kind), std::string(NormKindName(want.kind)));
  EXPECT_EQ(site.input, want.input);
  EXPECT_EQ(site.gamma, want.gamma);
  EXPECT_EQ(site.beta, want.beta);
  EXPECT_EQ(index.NodeName(site.anchor), want.anchor);
  EXPECT_EQ(Names(index, site.after_anchor), want.after_anchor);
  EXPECT_EQ(site.output, model.graph().output(0).name());
}

TEST(Normalization, TorchWithTheMeanSubtractedTwiceAndTheWeightFirst) {
  // HF's BertLayerNorm exported by torch 1.1: (x - u) twice, weight * x + bias.
  const auto model = Model(R"(g (float[N, 16] x) => (float[N, 16] y) {
    u = ReduceMean <axes = [-1]> (x)
    d1 = Sub (x, u)
    sq = Pow (d1, two)
    s = ReduceMean <axes = [-1]> (sq)
    se = Add (s, eps)
    sd = Sqrt (se)
    d2 = Sub (x, u)
    n = Div (d2, sd)
    sc = Mul (gamma, n)
    y = Add (sc, beta)
  })",
                           {{"two", 2}, {"eps", 1e-5f}}, {"gamma", "beta"});
  ExpectOneSite(model, {NormKind::kLayerNorm, "x", "gamma", "beta", "sc", {"y"}});
}

TEST(Normalization, CastToDoubleBetweenSubAndPowAndBack) {
  const auto model = Model(R"(g (float[N, 16] x) => (float[N, 16] y) {
    m = ReduceMean <axes = [-1]> (x)
    d = Sub (x, m)
    dd = Cast <to = 11> (d)
    sq = Pow (dd, two)
    v = ReduceMean <axes = [-1]> (sq)
    vf = Cast <to = 1> (v)
    ve = Add (vf, eps)
    sd = Sqrt (ve)
    n = Div (d, sd)
    sc = Mul (n, gamma)
    y = Add (sc, beta)
  })",
                           {{"two", 2}, {"eps", 1e-5f}}, {"gamma", "beta"});
  ExpectOneSite(model, {NormKind::kLayerNorm, "x", "gamma", "beta", "sc", {"y"}});
}

TEST(Normalization, CastToFloatBetweenSubAndPow) {
  const auto model = Model(R"(g (float[N, 16] x) => (float[N, 16] y) {
    m = ReduceMean <axes = [-1]> (x)
    d = Sub (x, m)
    df = Cast <to = 1> (d)
    sq = Pow (df, two)
    v = ReduceMean <axes = [-1]> (sq)
    ve = Add (v, eps)
    sd = Sqrt (ve)
    n = Div (d, sd)
    sc = Mul (n, gamma)
    y = Add (sc, beta)
  })",
                           {{"two", 2}, {"eps", 1e-5f}}, {"gamma", "beta"});
  ExpectOneSite(model, {NormKind::kLayerNorm, "x", "gamma", "beta", "sc", {"y"}});
}

TEST(Normalization, TensorFlowsRsqrtTimesGammaAndBetaLessMeanTimesS) {
  // keras2onnx: the axis written as 2 of a rank-3 x; γ reaches the output twice (x·s, m·s), so
  // no single Mul stands for the norm: the final Add does.
  const auto model = Model(R"(g (float[1, 4, 16] x) => (float[1, 4, 16] y) {
    m = ReduceMean <axes = [2]> (x)
    d = Sub (x, m)
    sq = Mul (d, d)
    v = ReduceMean <axes = [2]> (sq)
    ve = Add (v, eps)
    sd = Sqrt (ve)
    r = Reciprocal (sd)
    s = Mul (r, gamma)
    xs = Mul (x, s)
    ms = Mul (m, s)
    b = Sub (beta, ms)
    y = Add (xs, b)
  })",
                           {{"eps", 1e-5f}}, {"gamma", "beta"});
  ExpectOneSite(model, {NormKind::kLayerNorm, "x", "gamma", "beta", "y", {}});
}

TEST(Normalization, RmsNormInFloat32BetweenFloat16Casts) {
  // T5 / LLaMA in half precision: the statistic in float32, γ applied in float16.
  const auto model = Model(R"(g (float16[N, 16] x) => (float16[N, 16] y) {
    x32 = Cast <to = 1> (x)
    sq = Pow (x32, two)
    ms = ReduceMean <axes = [-1]> (sq)
    me = Add (ms, eps)
    rt = Sqrt (me)
    inv = Reciprocal (rt)
    n = Mul (x32, inv)
    n16 = Cast <to = 10> (n)
    y = Mul (gamma, n16)
  })",
                           {{"two", 2}, {"eps", 1e-5f}}, {"gamma"}, 17, onnx::TensorProto::FLOAT16);
  ExpectOneSite(model, {NormKind::kRmsNorm, "x32", "gamma", "", "y", {}});
}

TEST(Normalization, RmsNormWithDivAndAxesAsAnInput) {
  const auto model = Model(R"(g (float[N, 16] x) => (float[N, 16] y) {
    sq = Mul (x, x)
    ms = ReduceMean (sq, axes)
    me = Add (ms, eps)
    rt = Sqrt (me)
    n = Div (x, rt)
    y = Mul (n, gamma)
  })",
                           {{"eps", 1e-5f}}, {"gamma"}, 18);
  ExpectOneSite(model, {NormKind::kRmsNorm, "x", "gamma", "", "y", {}});
}

TEST(Normalization, BesselCorrectedStdAndL2NormalizationAreNormalizationsToo) {
  // The Annotated Transformer's (x - mean)/(std + eps), std with Bessel's correction.
  const auto unbiased = Model(R"(g (float[N, 16] x) => (float[N, 16] y) {
    m = ReduceMean <axes = [-1]> (x)
    d = Sub (x, m)
    sq = Mul (d, d)
    ss = ReduceSum <keepdims = 1> (sq, axes)
    var = Div (ss, fifteen)
    sd = Sqrt (var)
    se = Add (sd, eps)
    n = Div (d, se)
    sc = Mul (gamma, n)
    y = Add (sc, beta)
  })",
                              {{"fifteen", 15}, {"eps", 1e-6f}}, {"gamma", "beta"});
  ExpectOneSite(unbiased, {NormKind::kLayerNorm, "x", "gamma", "beta", "sc", {"y"}});

  const auto l2 = Model(R"(g (float[N, 16] x) => (float[N, 16] y) {
    ss = ReduceSumSquare <axes = [-1]> (x)
    norm = Sqrt (ss)
    y = Div (x, norm)
  })",
                        {}, {});
  ExpectOneSite(l2, {NormKind::kL2Norm, "x", "", "", "y", {}});
}

TEST(Normalization, FoundNormsAreLayersWithTheirGammaAndBeta) {
  const auto model = Model(R"(g (float[1, 4, 16] x) => (float[1, 4, 16] y) {
    m = ReduceMean <axes = [-1]> (x)
    d = Sub (x, m)
    sq = Mul (d, d)
    v = ReduceMean <axes = [-1]> (sq)
    ve = Add (v, eps)
    sd = Sqrt (ve)
    r = Reciprocal (sd)
    s = Mul (r, gamma)
    xs = Mul (x, s)
    ms = Mul (m, s)
    b = Sub (beta, ms)
    y = Add (xs, b)
  })",
                           {{"eps", 1e-5f}}, {"gamma", "beta"});
  const auto layers = FindLayers(GraphIndex(model.graph()));
  ASSERT_EQ(layers.size(), 1u);
  EXPECT_EQ(layers[0].op, "LayerNormalization (decomposed)");
  EXPECT_EQ(layers[0].name, "y");
  EXPECT_EQ(layers[0].weight, "gamma");
  EXPECT_EQ(layers[0].bias, "beta");
  EXPECT_EQ(layers[0].output, "y");
  EXPECT_EQ(layers[0].skipped, "");
  EXPECT_EQ(KindOf(layers[0].rule->layout), LayerKind::kNorm);
}

TEST(Normalization, ASoftmaxAndAMeanSubtractionAreNoNormalizations) {
  const auto softmax = Model(R"(g (float[N, 16] x) => (float[N, 16] y) {
    mx = ReduceMax <axes = [-1]> (x)
    d = Sub (x, mx)
    e = Exp (d)
    s = ReduceSum <keepdims = 1> (e, axes)
    y = Div (e, s)
  })",
                             {}, {});
  const auto centred = Model(R"(g (float[N, 16] x) => (float[N, 16] y) {
    m = ReduceMean <axes = [-1]> (x)
    y = Sub (x, m)
  })",
                             {}, {});
  for (const auto* model : {&softmax, &centred}) {
    const Normalizations found = FindNormalizations(GraphIndex(model->graph()));
    EXPECT_TRUE(found.sites.empty());
    EXPECT_TRUE(found.unidentified.empty());  // evaluated: known not to normalize
  }
}

TEST(Normalization, AScaleThatIsNotPerChannelIsNoGamma) {
  // The LayerNorm is found (it normalizes), but w [4, 16] is no γ: it stays a loose tensor.
  auto model = Model(R"(g (float[1, 4, 16] x) => (float[1, 4, 16] y) {
    m = ReduceMean <axes = [-1]> (x)
    d = Sub (x, m)
    sq = Mul (d, d)
    v = ReduceMean <axes = [-1]> (sq)
    ve = Add (v, eps)
    sd = Sqrt (ve)
    n = Div (d, sd)
    y = Mul (n, w)
  })",
                     {{"eps", 1e-5f}}, {});
  AddInitializer(&model, "w", {4, 16});
  const GraphIndex index(model.graph());
  const Normalizations found = FindNormalizations(index);
  ASSERT_EQ(found.sites.size(), 1u);
  EXPECT_EQ(found.sites[0].output, "n");
  EXPECT_EQ(found.sites[0].gamma, "");
  const auto layers = FindLayers(index);
  ASSERT_EQ(layers.size(), 1u);
  EXPECT_EQ(layers[0].weight, "w");
  EXPECT_EQ(layers[0].rule, nullptr);  // loose, skipped
}

TEST(Normalization, AnL2NormalizationOverAnotherAxisIsUnidentified) {
  // Over the batch axis: not x/‖x‖ of a row, and not evaluated as one.
  const auto model = Model(R"(g (float[4, 16] x) => (float[4, 16] y) {
    ss = ReduceSumSquare <axes = [0]> (x)
    norm = Sqrt (ss)
    y = Div (x, norm)
  })",
                           {}, {});
  const GraphIndex index(model.graph());
  const Normalizations found = FindNormalizations(index);
  EXPECT_TRUE(found.sites.empty());
  ASSERT_EQ(found.unidentified.size(), 1u);
  EXPECT_EQ(index.NodeName(found.unidentified[0].reduction), "ss");
  EXPECT_EQ(index.NodeName(found.unidentified[0].combine), "y");
  EXPECT_TRUE(Contains(found.unidentified[0].why,
                       "ReduceSumSquare 'ss' is no reduction over the last axis alone"));
}

TEST(Normalization, APositiveAxisOfUnknownRankIsNotTakenForTheLast) {
  const auto model = Model(R"(g (float x) => (float y) {
    ss = ReduceSumSquare <axes = [1]> (x)
    norm = Sqrt (ss)
    y = Div (x, norm)
  })",
                           {}, {});
  const Normalizations found = FindNormalizations(GraphIndex(model.graph()));
  EXPECT_TRUE(found.sites.empty());
  EXPECT_EQ(found.unidentified.size(), 1u);
}

}  // namespace
}  // namespace normalization_test
}  // namespace reinit
