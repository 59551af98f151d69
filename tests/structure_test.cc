// The structure stage and the residual rules: joins, streams, their normalization, each
// layer's place, and what --residual and the recipes do to the draws. Expected values are
// computed here from the formulas (He: g/sqrt(fan_in); Fixup: x L^(-1/(2m-2)); scaled:
// x s0/sqrt(L); DeepNet: beta = (8N)^(-1/4)), not read from the code under test.
#include "graph/structure.h"

#include <gtest/gtest.h>

#include <cmath>
#include <map>
#include <string>

#include "graph/graph_index.h"
#include "graph/layers.h"
#include "init/apply.h"
#include "model_builder.h"
#include "plan/plan.h"
#include "signal/executor/executor.h"
#include "signal/propagate.h"
#include "test_util.h"

namespace reinit {
namespace structure_test {
namespace {

using reinit_test::AddFloatInitializer;
using reinit_test::ParseModel;

constexpr char kHeader[] = "<ir_version: 8, opset_import: [\"\" : 17]>\n";

proto::Plan PlanOf(const onnx::ModelProto& model, PlanOptions options = {}) {
  auto plan = MakePlan(model, options);
  EXPECT_TRUE(plan.ok()) << plan.status().message();
  return plan.ok() ? *plan : proto::Plan();
}

const proto::Layer& ByWeight(const proto::Plan& plan, const std::string& weight) {
  for (const auto& l : plan.layers()) {
    if (l.weight().name() == weight) return l;
  }
  ADD_FAILURE() << "no layer with weight " << weight;
  static const proto::Layer kNone;
  return kNone;
}

// x[2,D] -> stem -> `blocks` times x = x + fc2(relu(fc1(x))) -> head [3]. No normalization.
onnx::ModelProto ResidualMlp(int blocks, int d = 8) {
  const std::string D = std::to_string(d);
  std::string body = " s = Gemm <transB = 1> (x, stem_w, stem_b)\n";
  std::string prev = "s";
  for (int i = 0; i < blocks; ++i) {
    const std::string n = std::to_string(i);
    body += std::string(" a") + n + " = Gemm <transB = 1> (" + prev + ", fc1_" + n + ", b1_" + n +
            ")\n";
    body += std::string(" r") + n + " = Relu (a" + n + ")\n";
    body +=
        std::string(" c") + n + " = Gemm <transB = 1> (r" + n + ", fc2_" + n + ", b2_" + n + ")\n";
    body += std::string(" j") + n + " = Add (" + prev + ", c" + n + ")\n";
    prev = "j" + std::to_string(i);
  }
  body += std::string(" y = Gemm <transB = 1> (") + prev + ", head_w, head_b)\n";
  auto model = ParseModel(std::string(kHeader) + "g (float[2, " + D +
                          "] x) => (float[2, 3] y) {\n" + body + "}");
  AddFloatInitializer(&model, "stem_w", {d, d});
  AddFloatInitializer(&model, "stem_b", {d});
  for (int i = 0; i < blocks; ++i) {
    const std::string n = std::to_string(i);
    AddFloatInitializer(&model, "fc1_" + n, {d, d});
    AddFloatInitializer(&model, "b1_" + n, {d});
    AddFloatInitializer(&model, "fc2_" + n, {d, d});
    AddFloatInitializer(&model, "b2_" + n, {d});
  }
  AddFloatInitializer(&model, "head_w", {3, d});
  AddFloatInitializer(&model, "head_b", {3});
  return model;
}

// ids[1,4] -> table[V,D] lookup -> `blocks` times x = x + w2_i(relu(w1_i(LN(x)))), then LN.
// Pre-norm, as GPT-2.
onnx::ModelProto PreNormNet(int blocks, int d = 8, int v = 16) {
  const std::string D = std::to_string(d);
  std::string body = " e = Gather (table, ids)\n";
  std::string prev = "e";
  for (int i = 0; i < blocks; ++i) {
    const std::string n = std::to_string(i);
    body += std::string(" h") + n + " = LayerNormalization <axis = -1> (" + prev + ", g" + n +
            ", be" + n + ")\n";
    body += std::string(" u") + n + " = MatMul (h" + n + ", w1_" + n + ")\n";
    body += std::string(" r") + n + " = Relu (u" + n + ")\n";
    body += std::string(" o") + n + " = MatMul (r" + n + ", w2_" + n + ")\n";
    body += std::string(" j") + n + " = Add (" + prev + ", o" + n + ")\n";
    prev = "j" + n;
  }
  body += std::string(" y = LayerNormalization <axis = -1> (") + prev + ", gf, bf)\n";
  auto model = ParseModel(std::string(kHeader) + "g (int64[1, 4] ids) => (float[1, 4, " + D +
                          "] y) {\n" + body + "}");
  AddFloatInitializer(&model, "table", {v, d});
  for (int i = 0; i < blocks; ++i) {
    const std::string n = std::to_string(i);
    AddFloatInitializer(&model, "g" + n, {d});
    AddFloatInitializer(&model, "be" + n, {d});
    AddFloatInitializer(&model, "w1_" + n, {d, 2 * d});
    AddFloatInitializer(&model, "w2_" + n, {2 * d, d});
  }
  AddFloatInitializer(&model, "gf", {d});
  AddFloatInitializer(&model, "bf", {d});
  return model;
}

// x[1,D] -> `blocks` times x = LN(alpha_skip * x + w2_i(relu(w1_i(x)))): post-norm. With
// `attention`, each branch is w_o(Softmax(w_q x) * w_v x) instead.
onnx::ModelProto PostNormNet(int blocks, double alpha, bool attention = false, int d = 8) {
  const std::string D = std::to_string(d);
  std::string body;
  std::string prev = "x";
  for (int i = 0; i < blocks; ++i) {
    const std::string n = std::to_string(i);
    std::string skip = prev;
    if (alpha != 1) {
      body += std::string(" k") + n + " = Mul (" + prev + ", alpha)\n";
      skip = "k" + n;
    }
    if (attention) {
      body += std::string(" q") + n + " = MatMul (" + prev + ", wq_" + n + ")\n";
      body += std::string(" p") + n + " = Softmax <axis = -1> (q" + n + ")\n";
      body += std::string(" v") + n + " = MatMul (" + prev + ", wv_" + n + ")\n";
      body += std::string(" m") + n + " = Mul (p" + n + ", v" + n + ")\n";
      body += std::string(" o") + n + " = MatMul (m" + n + ", wo_" + n + ")\n";
    } else {
      body += std::string(" u") + n + " = MatMul (" + prev + ", w1_" + n + ")\n";
      body += std::string(" r") + n + " = Relu (u" + n + ")\n";
      body += std::string(" o") + n + " = MatMul (r" + n + ", w2_" + n + ")\n";
    }
    body += std::string(" s") + n + " = Add (" + skip + ", o" + n + ")\n";
    body += std::string(" j") + n + " = LayerNormalization <axis = -1> (s" + n + ", g" + n +
            ", be" + n + ")\n";
    prev = "j" + n;
  }
  body += std::string(" y = Identity (") + prev + ")\n";
  auto model = ParseModel(std::string(kHeader) + "g (float[1, " + D + "] x) => (float[1, " + D +
                          "] y) {\n" + body + "}");
  if (alpha != 1) {
    auto* a = model.mutable_graph()->add_initializer();
    a->set_name("alpha");
    a->set_data_type(onnx::TensorProto::FLOAT);
    a->add_float_data(static_cast<float>(alpha));
  }
  for (int i = 0; i < blocks; ++i) {
    const std::string n = std::to_string(i);
    for (const char* w : attention ? std::vector<const char*>{"wq_", "wv_", "wo_"}
                                   : std::vector<const char*>{"w1_", "w2_"}) {
      AddFloatInitializer(&model, w + n, {d, d});
    }
    AddFloatInitializer(&model, "g" + n, {d});
    AddFloatInitializer(&model, "be" + n, {d});
  }
  return model;
}

// Two ResNet basic blocks with BatchNorm, the second with a 1x1 conv + BN projection.
onnx::ModelProto ResNetBlocks() {
  auto model =
      ParseModel(std::string(kHeader) + R"(g (float[1, 4, 8, 8] x) => (float[1, 8, 4, 4] y) {
  a = Conv <pads = [1, 1, 1, 1]> (x, c1a)
  an = BatchNormalization (a, s1a, t1a, m1a, v1a)
  ar = Relu (an)
  b = Conv <pads = [1, 1, 1, 1]> (ar, c1b)
  bn = BatchNormalization (b, s1b, t1b, m1b, v1b)
  j1 = Add (bn, x)
  o1 = Relu (j1)
  c = Conv <pads = [1, 1, 1, 1], strides = [2, 2]> (o1, c2a)
  cn = BatchNormalization (c, s2a, t2a, m2a, v2a)
  cr = Relu (cn)
  d = Conv <pads = [1, 1, 1, 1]> (cr, c2b)
  dn = BatchNormalization (d, s2b, t2b, m2b, v2b)
  p = Conv <strides = [2, 2]> (o1, proj)
  pn = BatchNormalization (p, sp, tp, mp, vp)
  j2 = Add (dn, pn)
  y = Relu (j2)
})");
  AddFloatInitializer(&model, "c1a", {4, 4, 3, 3});
  AddFloatInitializer(&model, "c1b", {4, 4, 3, 3});
  AddFloatInitializer(&model, "c2a", {8, 4, 3, 3});
  AddFloatInitializer(&model, "c2b", {8, 8, 3, 3});
  AddFloatInitializer(&model, "proj", {8, 4, 1, 1});
  for (const char* bn : {"1a", "1b", "2a", "2b", "p"}) {
    const int64_t c = std::string(bn) == "1a" || std::string(bn) == "1b" ? 4 : 8;
    for (const char* k : {"s", "t", "m", "v"})
      AddFloatInitializer(&model, k + std::string(bn), {c});
  }
  return model;
}

TEST(Structure, ResidualMlpIsOneStreamWithoutNorms) {
  const auto plan = PlanOf(ResidualMlp(3));
  ASSERT_EQ(plan.streams_size(), 1);
  const auto& st = plan.streams(0);
  EXPECT_EQ(st.branches(), 3);
  EXPECT_EQ(st.normalization(), "none");
  EXPECT_EQ(st.rule(), "fixup");
  for (const auto& j : st.joins()) {
    EXPECT_EQ(j.skip(), "direct");
    EXPECT_EQ(j.depth(), 2);
    EXPECT_EQ(j.layers_size(), 2);
  }
  for (int i = 0; i < 3; ++i) {
    const auto& fc1 = ByWeight(plan, "fc1_" + std::to_string(i));
    const auto& fc2 = ByWeight(plan, "fc2_" + std::to_string(i));
    EXPECT_EQ(fc1.residual().position(), "first");
    EXPECT_EQ(fc2.residual().position(), "last");
    EXPECT_EQ(fc1.residual().branch(), i);
    EXPECT_EQ(fc2.residual().branches(), 3);
    EXPECT_EQ(fc2.residual().layers_in_branch(), 2);
    EXPECT_EQ(fc1.residual().stream(), "stream0");
  }
  EXPECT_EQ(ByWeight(plan, "stem_w").residual().position(), "none");
  EXPECT_EQ(ByWeight(plan, "head_w").residual().position(), "none");
}

TEST(Structure, FixupZeroesLastLayersAndTheClassifierAndScalesTheRest) {
  const auto plan = PlanOf(ResidualMlp(3));
  for (int i = 0; i < 3; ++i) {
    const auto& fc1 = ByWeight(plan, "fc1_" + std::to_string(i)).weight();
    EXPECT_EQ(ByWeight(plan, "fc2_" + std::to_string(i)).weight().scheme(), "zero");
    EXPECT_EQ(fc1.scheme(), "he-normal");
    // He for ReLU, fan_in 8: sqrt(2)/sqrt(8); Fixup, m = 2: x 3^(-1/2).
    EXPECT_NEAR(fc1.std(), std::sqrt(2.0 / 8) / std::sqrt(3.0), 1e-12);
    EXPECT_NEAR(fc1.scale(), 1 / std::sqrt(3.0), 1e-12);
  }
  EXPECT_EQ(ByWeight(plan, "head_w").weight().scheme(), "zero");
  EXPECT_NE(ByWeight(plan, "stem_w").weight().scheme(), "zero");
  EXPECT_NE(ByWeight(plan, "fc1_0").reason().find("fixup"), std::string::npos);
}

TEST(Structure, ResidualNoneIsThePerLayerPlan) {
  PlanOptions none;
  none.residual = "none";
  const auto plan = PlanOf(ResidualMlp(3), none);
  ASSERT_EQ(plan.streams_size(), 1);
  EXPECT_EQ(plan.streams(0).rule(), "none");
  for (const auto& l : plan.layers()) {
    EXPECT_EQ(l.weight().scale(), 0) << l.name();
    EXPECT_NE(l.weight().scheme(), "zero") << l.name();
    EXPECT_EQ(l.reason().find("fixup"), std::string::npos) << l.name();
  }
  // A named scheme gets no depth rule unless asked.
  PlanOptions he;
  he.scheme = "he-normal";
  const auto plain = PlanOf(ResidualMlp(3), he);
  for (const auto& st : plain.streams()) EXPECT_EQ(st.rule(), "none");
}

TEST(Structure, ScaledAndZeroRulesOnTheLastLayer) {
  PlanOptions scaled;
  scaled.residual = "scaled";
  const auto plan = PlanOf(ResidualMlp(4), scaled);
  // fc2 meets the next block's fc1 and the head: linear, xavier-uniform, bound sqrt(6/16).
  const auto& fc2 = ByWeight(plan, "fc2_1").weight();
  EXPECT_EQ(fc2.scheme(), "xavier-uniform");
  EXPECT_NEAR(fc2.bound(), std::sqrt(6.0 / 16) / std::sqrt(4.0), 1e-12);
  EXPECT_NEAR(ByWeight(plan, "fc1_1").weight().std(), std::sqrt(2.0 / 8), 1e-12);

  PlanOptions zero;
  zero.residual = "zero";
  const auto z = PlanOf(ResidualMlp(4), zero);
  EXPECT_EQ(ByWeight(z, "fc2_2").weight().scheme(), "zero");
  EXPECT_EQ(ByWeight(z, "fc1_2").weight().scheme(), "he-normal");
  EXPECT_NE(ByWeight(z, "head_w").weight().scheme(), "zero");
}

TEST(Structure, PreNormStreamStartsAtTheEmbeddingAndBranchesAreScaledToIt) {
  const int blocks = 4;
  const auto plan = PlanOf(PreNormNet(blocks));
  ASSERT_EQ(plan.streams_size(), 1);
  const auto& st = plan.streams(0);
  EXPECT_EQ(st.normalization(), "pre_norm");
  EXPECT_EQ(st.rule(), "scaled");
  EXPECT_EQ(st.branches(), blocks);
  const double s0 = 1 / std::sqrt(8.0);  // the table's lecun-normal std, 1/sqrt(D)
  EXPECT_NEAR(st.input_std(), s0, 1e-12);
  EXPECT_EQ(ByWeight(plan, "g1").residual().position(), "first");  // the pre-norm
  EXPECT_EQ(ByWeight(plan, "gf").residual().position(), "none");
  const auto& w2 = ByWeight(plan, "w2_2").weight();
  EXPECT_EQ(w2.scheme(), "xavier-uniform");
  EXPECT_NEAR(w2.bound(), std::sqrt(6.0 / (16 + 8)) * s0 / std::sqrt(double(blocks)), 1e-12);
  EXPECT_EQ(ByWeight(plan, "w1_2").weight().scale(), 0);  // only the last layer is scaled
}

TEST(Structure, Gpt2AndBertRecipes) {
  const int blocks = 4;
  PlanOptions gpt2;
  gpt2.scheme = "gpt2";
  auto plan = PlanOf(PreNormNet(blocks), gpt2);
  EXPECT_DOUBLE_EQ(plan.std(), 0.02);
  EXPECT_EQ(ByWeight(plan, "table").weight().scheme(), "normal");
  EXPECT_DOUBLE_EQ(ByWeight(plan, "table").weight().std(), 0.02);
  EXPECT_DOUBLE_EQ(ByWeight(plan, "w1_0").weight().std(), 0.02);
  EXPECT_NEAR(ByWeight(plan, "w2_0").weight().std(), 0.02 / std::sqrt(double(blocks)), 1e-15);
  EXPECT_EQ(ByWeight(plan, "g0").weight().scheme(), "constant");
  gpt2.naive_std = 0.05;  // --std overrides 0.02
  plan = PlanOf(PreNormNet(blocks), gpt2);
  EXPECT_NEAR(ByWeight(plan, "w2_3").weight().std(), 0.05 / 2, 1e-15);

  PlanOptions bert;
  bert.scheme = "bert";
  plan = PlanOf(PreNormNet(blocks), bert);
  EXPECT_EQ(plan.streams(0).rule(), "none");
  EXPECT_DOUBLE_EQ(ByWeight(plan, "w2_0").weight().std(), 0.02);
  bert.scheme = "bert-truncated";
  plan = PlanOf(PreNormNet(blocks), bert);
  EXPECT_EQ(ByWeight(plan, "w1_1").weight().scheme(), "truncated-normal");
  EXPECT_DOUBLE_EQ(ByWeight(plan, "w1_1").weight().std(), 0.02);
  EXPECT_DOUBLE_EQ(ByWeight(plan, "w1_1").weight().bound(), 0.04);
}

// The drawn values of the recipes: their std, from the sample (5 standard errors: the std of
// a sample std of n normal values is about std/sqrt(2n)), and the truncation.
TEST(Structure, RecipesDrawWhatTheySay) {
  for (const char* scheme : {"gpt2", "bert-truncated"}) {
    PlanOptions o;
    o.scheme = scheme;
    auto model = PreNormNet(2, 64, 512);
    const auto plan = PlanOf(model, o);
    ASSERT_TRUE(ApplyPlan(plan, &model).ok());
    const bool truncated = scheme == std::string("bert-truncated");
    // N(0, 0.02^2) cut at +-2 sigma has std 0.02 * 0.8796 (TF's truncated_normal_initializer).
    const double want = truncated ? 0.02 * 0.87962566103423978 : 0.02;
    for (const char* name : {"table", "w1_1"}) {
      const auto v = reinit_test::RawFloats(*reinit_test::FindInitializer(model, name));
      double sum2 = 0, peak = 0;
      for (float x : v) {
        sum2 += double(x) * x;
        peak = std::max(peak, std::abs(double(x)));
      }
      const double n = static_cast<double>(v.size()), got = std::sqrt(sum2 / n);
      EXPECT_NEAR(got, want, 5 * want / std::sqrt(2 * n)) << scheme << " " << name;
      if (truncated) {
        EXPECT_LE(peak, 0.04 * (1 + 1e-6)) << name;
      }
    }
  }
}

TEST(Structure, PostNormStreamIsLeftAlone) {
  const auto plan = PlanOf(PostNormNet(3, 1));
  ASSERT_EQ(plan.streams_size(), 1);
  EXPECT_EQ(plan.streams(0).normalization(), "post_norm");
  EXPECT_EQ(plan.streams(0).rule(), "none");
  EXPECT_EQ(plan.streams(0).branches(), 3);
  for (const auto& l : plan.layers()) EXPECT_EQ(l.weight().scale(), 0) << l.name();
}

TEST(Structure, DeepNetScalesValueOutputAndFfnByBetaAndChecksAlpha) {
  const int blocks = 4;  // L = 4 branches, N = 2 blocks of DeepNet's count
  const double n = blocks / 2.0, beta = std::pow(8 * n, -0.25), alpha = std::pow(2 * n, 0.25);
  PlanOptions deepnet;
  deepnet.scheme = "deepnet";
  auto plan = PlanOf(PostNormNet(blocks, alpha, /*attention=*/true), deepnet);
  ASSERT_EQ(plan.streams_size(), 1);
  EXPECT_EQ(plan.streams(0).rule(), "deepnet");
  EXPECT_NEAR(plan.streams(0).joins(0).skip_scale(), alpha, 1e-6);
  EXPECT_EQ(plan.warnings_size(), 0);
  const double xavier = std::sqrt(2.0 / 16);                          // xavier-normal, 8x8, gain 1
  EXPECT_NEAR(ByWeight(plan, "wq_1").weight().std(), xavier, 1e-12);  // query: feeds Softmax
  EXPECT_NEAR(ByWeight(plan, "wv_1").weight().std(), xavier * beta, 1e-12);
  EXPECT_NEAR(ByWeight(plan, "wo_1").weight().std(), xavier * beta, 1e-12);
  // Without alpha on the skips: beta alone, and a warning that says why.
  plan = PlanOf(PostNormNet(blocks, 1, true), deepnet);
  ASSERT_EQ(plan.warnings_size(), 1);
  EXPECT_NE(plan.warnings(0).find("alpha"), std::string::npos);
  EXPECT_NEAR(ByWeight(plan, "wo_0").weight().std(), xavier * beta, 1e-12);
}

TEST(Structure, ResNetBlocksNormInBranchWithAProjectedSkip) {
  const auto plan = PlanOf(ResNetBlocks());
  ASSERT_EQ(plan.streams_size(), 1);
  const auto& st = plan.streams(0);
  EXPECT_EQ(st.branches(), 2);
  EXPECT_EQ(st.normalization(), "in_branch");
  EXPECT_EQ(st.rule(), "none");
  EXPECT_EQ(st.joins(0).skip(), "direct");
  EXPECT_EQ(st.joins(1).skip(), "projected");
  EXPECT_EQ(ByWeight(plan, "proj").residual().position(), "projected_skip");
  EXPECT_EQ(ByWeight(plan, "sp").residual().position(), "projected_skip");
  EXPECT_EQ(ByWeight(plan, "c2a").residual().position(), "first");
  EXPECT_EQ(ByWeight(plan, "s2b").residual().position(), "last");
  EXPECT_EQ(ByWeight(plan, "s2a").residual().position(), "inner");
  EXPECT_EQ(ByWeight(plan, "s2b").weight().scheme(), "constant");

  PlanOptions zero_gamma;
  zero_gamma.zero_init_residual = true;
  const auto z = PlanOf(ResNetBlocks(), zero_gamma);
  EXPECT_EQ(ByWeight(z, "s1b").weight().scheme(), "zero");
  EXPECT_EQ(ByWeight(z, "s2b").weight().scheme(), "zero");
  EXPECT_EQ(ByWeight(z, "s2a").weight().scheme(), "constant");
  EXPECT_EQ(ByWeight(z, "sp").weight().scheme(), "constant");
  EXPECT_NE(ByWeight(z, "c2b").weight().scheme(), "zero");

  PlanOptions scaled;
  scaled.residual = "scaled";
  const auto s = PlanOf(ResNetBlocks(), scaled);
  EXPECT_NEAR(ByWeight(s, "s2b").weight().value(), 1 / std::sqrt(2.0), 1e-12);
  EXPECT_EQ(ByWeight(s, "c2b").weight().scale(), 0);  // the norm after it takes the factor
}

TEST(Structure, SumsThatAreNotResidualJoins) {
  // Two parallel layers of one input, an embedding plus a position table, a bias Add.
  auto model =
      ParseModel(std::string(kHeader) +
                 R"(g (float[2, 4] x, int64[1, 3] ids) => (float[2, 4] y, float[1, 3, 4] z) {
  a = MatMul (x, wa)
  b = MatMul (x, wb)
  s = Add (a, b)
  y = Add (s, bias)
  t = Gather (tok, ids)
  p = Gather (pos, ids)
  z = Add (t, p)
})");
  AddFloatInitializer(&model, "wa", {4, 4});
  AddFloatInitializer(&model, "wb", {4, 4});
  AddFloatInitializer(&model, "bias", {4});
  AddFloatInitializer(&model, "tok", {10, 4});
  AddFloatInitializer(&model, "pos", {10, 4});
  EXPECT_EQ(PlanOf(model).streams_size(), 0);
}

TEST(Structure, UsageErrors) {
  PlanOptions bad;
  bad.residual = "sometimes";
  auto s = CheckPlanOptions(bad);
  EXPECT_EQ(s.code(), StatusCode::kUsage);
  EXPECT_NE(s.message().find("fixup"), std::string::npos);  // lists the valid ones
  PlanOptions lsuv;
  lsuv.scheme = "lsuv";
  lsuv.residual = "fixup";
  EXPECT_EQ(CheckPlanOptions(lsuv).code(), StatusCode::kUsage);
}

TEST(Structure, AnUneditedPlanReadsBackToTheSameDraws) {
  for (const char* scheme : {"auto", "gpt2", "fixup"}) {
    PlanOptions o;
    o.scheme = scheme;
    const auto model = scheme == std::string("auto") ? ResidualMlp(3) : PreNormNet(4);
    const auto plan = PlanOf(model, o);
    auto back = ReadPlan(PlanToJson(plan), "p.json", model);
    ASSERT_TRUE(back.ok()) << back.status().message();
    ASSERT_EQ(back->layers_size(), plan.layers_size());
    for (int i = 0; i < plan.layers_size(); ++i) {
      const auto& a = plan.layers(i).weight();
      const auto& b = back->layers(i).weight();
      EXPECT_EQ(a.scheme(), b.scheme()) << scheme << " " << a.name();
      EXPECT_NEAR(a.std(), b.std(), 1e-15) << scheme << " " << a.name();
      EXPECT_NEAR(a.bound(), b.bound(), 1e-15) << scheme << " " << a.name();
    }
  }
}

TEST(Structure, OrthogonalDrawsTakeTheDepthFactorInTheirGain) {
  PlanOptions o;
  o.scheme = "orthogonal";
  o.residual = "scaled";
  auto model = ResidualMlp(4);
  const auto plan = PlanOf(model, o);
  ASSERT_TRUE(ApplyPlan(plan, &model).ok());
  // fc2_0 [8, 8], gain 1 (linear): W W^T = (1/sqrt(4))^2 I.
  const auto w = reinit_test::RawFloats(*reinit_test::FindInitializer(model, "fc2_0"));
  for (int r = 0; r < 8; ++r) {
    for (int c = 0; c < 8; ++c) {
      double dot = 0;
      for (int k = 0; k < 8; ++k) dot += double(w[r * 8 + k]) * w[c * 8 + k];
      EXPECT_NEAR(dot, r == c ? 0.25 : 0.0, 1e-5) << r << "," << c;
    }
  }
}

// The stream's std after the last join over the first layer's output, on random inputs.
double StreamGrowth(onnx::ModelProto model, const PlanOptions& options) {
  auto plan = MakePlan(model, options);
  EXPECT_TRUE(plan.ok());
  EXPECT_TRUE(ApplyPlan(*plan, &model).ok());
  auto executor = exec::Executor::Create(model);
  EXPECT_TRUE(executor.ok());
  PropagateOptions p;
  auto feeds = RandomInputs(**executor, p);
  EXPECT_TRUE(feeds.ok());
  auto signal = Propagate(**executor, *plan, *feeds);
  EXPECT_TRUE(signal.ok());
  EXPECT_EQ(signal->joins.size(), plan->streams(0).joins_size());
  return signal->joins.back().moments.std / signal->layers.front().before.std;
}

TEST(Structure, DepthRuleKeepsTheStreamFlatWhereNoneLetsItGrow) {
  // 32 blocks, width 64, batch 256 rows (the std of 16k values: a few percent of noise).
  auto model = ResidualMlp(32, 64);
  model.mutable_graph()
      ->mutable_input(0)
      ->mutable_type()
      ->mutable_tensor_type()
      ->mutable_shape()
      ->mutable_dim(0)
      ->set_dim_value(256);
  model.mutable_graph()
      ->mutable_output(0)
      ->mutable_type()
      ->mutable_tensor_type()
      ->mutable_shape()
      ->mutable_dim(0)
      ->set_dim_value(256);
  PlanOptions automatic, none, scaled;
  none.residual = "none";
  scaled.residual = "scaled";
  const double flat = StreamGrowth(model, automatic);
  EXPECT_GT(flat, 0.25);
  EXPECT_LT(flat, 4);
  // He branches double the stream's variance per block: about 2^16 in std after 32.
  EXPECT_GT(StreamGrowth(model, none), 1e3);
  // Branch outputs x 1/sqrt(L): the variance grows by about (1 + 1/L)^L ~ e, not 2^L.
  const double s = StreamGrowth(model, scaled);
  EXPECT_GT(s, 0.25);
  EXPECT_LT(s, 4);
}

// A norm of `in` as text: its lines, ending in `out`; γ `<p>g` and β `<p>b` of [D] where it has
// them. TensorFlow's spelling, torch <= 1.9's (x - mean twice), an L2 normalization over the
// batch axis (which reinit cannot identify) and com.microsoft's SimplifiedLayerNormalization.
using NormText = std::string (*)(const std::string& p, const std::string& in,
                                 const std::string& out);

std::string TfNorm(const std::string& p, const std::string& in, const std::string& out) {
  return " " + p + "m = ReduceMean <axes = [-1]> (" + in + ")\n " + p + "d = Sub (" + in + ", " +
         p + "m)\n " + p + "q = Mul (" + p + "d, " + p + "d)\n " + p +
         "v = ReduceMean <axes = [-1]> (" + p + "q)\n " + p + "e = Add (" + p + "v, eps)\n " + p +
         "r = Sqrt (" + p + "e)\n " + p + "i = Reciprocal (" + p + "r)\n " + p + "s = Mul (" + p +
         "i, " + p + "g)\n " + p + "xs = Mul (" + in + ", " + p + "s)\n " + p + "ms = Mul (" + p +
         "m, " + p + "s)\n " + p + "c = Sub (" + p + "b, " + p + "ms)\n " + out + " = Add (" + p +
         "xs, " + p + "c)\n";
}

std::string TorchNorm(const std::string& p, const std::string& in, const std::string& out) {
  return " " + p + "m = ReduceMean <axes = [-1]> (" + in + ")\n " + p + "d = Sub (" + in + ", " +
         p + "m)\n " + p + "q = Pow (" + p + "d, two)\n " + p + "v = ReduceMean <axes = [-1]> (" +
         p + "q)\n " + p + "e = Add (" + p + "v, eps)\n " + p + "r = Sqrt (" + p + "e)\n " + p +
         "d2 = Sub (" + in + ", " + p + "m)\n " + p + "n = Div (" + p + "d2, " + p + "r)\n " + p +
         "s = Mul (" + p + "g, " + p + "n)\n " + out + " = Add (" + p + "s, " + p + "b)\n";
}

// torch's spelling with γ a scalar: the structural matcher's layer (at the Mul by γ), which the
// matcher by value finds as a norm without γ ending at the Div.
std::string TorchNormScalarGamma(const std::string& p, const std::string& in,
                                 const std::string& out) {
  return " " + p + "m = ReduceMean <axes = [-1]> (" + in + ")\n " + p + "d = Sub (" + in + ", " +
         p + "m)\n " + p + "q = Pow (" + p + "d, two)\n " + p + "v = ReduceMean <axes = [-1]> (" +
         p + "q)\n " + p + "e = Add (" + p + "v, eps)\n " + p + "r = Sqrt (" + p + "e)\n " + p +
         "n = Div (" + p + "d, " + p + "r)\n " + out + " = Mul (" + p + "n, two)\n";
}

std::string BatchL2(const std::string& p, const std::string& in, const std::string& out) {
  return " " + p + "q = ReduceSumSquare <axes = [0]> (" + in + ")\n " + p + "r = Sqrt (" + p +
         "q)\n " + out + " = Div (" + in + ", " + p + "r)\n";
}

std::string FusedRms(const std::string& p, const std::string& in, const std::string& out) {
  return " " + out + " = com.microsoft.SimplifiedLayerNormalization (" + in + ", " + p + "g)\n";
}

// x[2,D] -> `blocks` times x = x + w2_i(relu(w1_i(norm(x)))) (pre-norm), or
// x = norm(x + w2_i(relu(w1_i(x)))) (post-norm) -> head [D, 3].
onnx::ModelProto NormedNet(int blocks, NormText norm, bool post, int d = 8) {
  std::string body, prev = "x";
  for (int i = 0; i < blocks; ++i) {
    const std::string n = std::to_string(i), p = "n" + n + "_";
    const std::string in = post ? prev : p + "out";
    if (!post) body += norm(p, prev, in);
    body += " u" + n + " = MatMul (" + in + ", w1_" + n + ")\n r" + n + " = Relu (u" + n + ")\n o" +
            n + " = MatMul (r" + n + ", w2_" + n + ")\n";
    body += " j" + n + " = Add (" + prev + ", o" + n + ")\n";
    prev = "j" + n;
    if (post) {
      body += norm(p, prev, p + "out");
      prev = p + "out";
    }
  }
  body += " y = MatMul (" + prev + ", head)\n";
  auto model =
      ParseModel("<ir_version: 8, opset_import: [\"\" : 17, \"com.microsoft\" : 1]>\ng (float[2, " +
                 std::to_string(d) + "] x) => (float[2, 3] y) {\n" + body + "}");
  reinit_test::NameNodesAfterOutputs(&model);
  for (int i = 0; i < blocks; ++i) {
    const std::string n = std::to_string(i);
    AddFloatInitializer(&model, "w1_" + n, {d, d});
    AddFloatInitializer(&model, "w2_" + n, {d, d});
    AddFloatInitializer(&model, "n" + n + "_g", {d});
    AddFloatInitializer(&model, "n" + n + "_b", {d});
  }
  AddFloatInitializer(&model, "head", {d, 3});
  reinit_test::AddFloatInitializer(&model, "eps", {})->set_raw_data(std::string(4, '\0'));
  auto* two = reinit_test::AddFloatInitializer(&model, "two", {});
  const float v = 2;
  two->set_raw_data(std::string(reinterpret_cast<const char*>(&v), sizeof v));
  return model;
}

// The names of the layers the plan zeroes.
std::vector<std::string> Zeroed(const proto::Plan& plan) {
  std::vector<std::string> names;
  for (const auto& l : plan.layers()) {
    if (l.weight().scheme() == "zero") names.push_back(l.name());
  }
  return names;
}

TEST(Structure, WrittenOutNormsClassifyTheirStreamsWhateverTheSpelling) {
  const auto pre = PlanOf(NormedNet(3, TfNorm, false));
  ASSERT_EQ(pre.streams_size(), 1);
  EXPECT_EQ(pre.streams(0).normalization(), "pre_norm");
  EXPECT_EQ(pre.streams(0).rule(), "scaled");
  EXPECT_EQ(ByWeight(pre, "n1_g").residual().position(), "first");
  EXPECT_TRUE(Zeroed(pre).empty());

  const auto post = PlanOf(NormedNet(3, TorchNorm, true));
  ASSERT_EQ(post.streams_size(), 1);
  EXPECT_EQ(post.streams(0).normalization(), "post_norm");
  EXPECT_EQ(post.streams(0).rule(), "none");
  EXPECT_TRUE(Zeroed(post).empty());

  // One norm stands in each branch, the structural matcher's layer, not also the Div.
  const auto scalar = PlanOf(NormedNet(3, TorchNormScalarGamma, false));
  ASSERT_EQ(scalar.streams_size(), 1);
  EXPECT_EQ(scalar.streams(0).normalization(), "pre_norm");
  const auto& layers = scalar.streams(0).joins(1).layers();
  EXPECT_EQ(std::vector<std::string>(layers.begin(), layers.end()),
            (std::vector<std::string>{"n1_out", "u1", "o1"}));

  const auto fused = PlanOf(NormedNet(3, FusedRms, false));
  ASSERT_EQ(fused.streams_size(), 1);
  EXPECT_EQ(fused.streams(0).normalization(), "pre_norm");
}

TEST(Structure, AStreamWhoseNormalizationCannotBeEstablishedGetsNoRule) {
  const auto plan = PlanOf(NormedNet(3, BatchL2, false));
  ASSERT_EQ(plan.streams_size(), 1);
  EXPECT_EQ(plan.streams(0).normalization(), "unknown");
  EXPECT_EQ(plan.streams(0).rule(), "none");
  EXPECT_TRUE(Zeroed(plan).empty());
  ASSERT_EQ(plan.warnings_size(), 1);
  EXPECT_EQ(plan.warnings(0),
            "stream0: normalization could not be established (Div 'n0_out' scales the stream by "
            "a statistic of it that could not be identified: ReduceSumSquare 'n0_q' is no "
            "reduction over the last axis alone); no depth rule applied");
  // Asked for, a rule still applies, and the warning says so.
  PlanOptions fixup;
  fixup.residual = "fixup";
  const auto asked = PlanOf(NormedNet(3, BatchL2, false), fixup);
  EXPECT_EQ(asked.streams(0).rule(), "fixup");
  EXPECT_EQ(Zeroed(asked), (std::vector<std::string>{"o0", "o1", "o2", "y"}));
  ASSERT_EQ(asked.warnings_size(), 1);
  EXPECT_NE(asked.warnings(0).find("); --residual fixup applied as asked"), std::string::npos);
  // Without the unidentified normalization the stream is norm-free: Fixup.
  EXPECT_EQ(PlanOf(ResidualMlp(3)).streams(0).normalization(), "none");
}

}  // namespace
}  // namespace structure_test
}  // namespace reinit
