// LSTM, GRU and RNN: each (direction, gate) block of W and R is drawn on its own with its own
// fans and gain, recurrent blocks are orthogonal under auto, biases are zero but for the LSTM
// forget gate's --forget-bias. Expected values come from the formulas, computed here.
#include "graph/recurrent.h"

#include <gtest/gtest.h>

#include <Eigen/Dense>
#include <cmath>

#include "init/apply.h"
#include "model_builder.h"
#include "plan/plan.h"
#include "stats.h"

namespace reinit {
namespace recurrent_test {
namespace {

using reinit_test::AddFloatInitializer;
using reinit_test::ExpectUniform;
using reinit_test::FindInitializer;
using reinit_test::ParseModel;
using reinit_test::RawFloats;

constexpr int64_t kI = 48, kH = 64;

// A recurrent node `op` with W [dirs, gates·H, I], R [dirs, gates·H, H], B [dirs, 2·gates·H].
onnx::ModelProto Recurrent(const std::string& op, int64_t gates, const std::string& attrs,
                           int64_t dirs) {
  const std::string text = "<ir_version: 8, opset_import: [\"\" : 17]>\ng (float[5, 1, " +
                           std::to_string(kI) + "] x) => (y) {\n y = " + op +
                           " <hidden_size = " + std::to_string(kH) + attrs + "> (x, W, R, B)\n}";
  auto model = ParseModel(text);
  model.mutable_graph()->mutable_node(0)->set_name("rnn");
  AddFloatInitializer(&model, "W", {dirs, gates * kH, kI});
  AddFloatInitializer(&model, "R", {dirs, gates * kH, kH});
  AddFloatInitializer(&model, "B", {dirs, 2 * gates * kH});
  return model;
}

struct Result {
  proto::Plan plan;
  onnx::ModelProto model;
};

Result Reinit(onnx::ModelProto model, PlanOptions options = {}) {
  auto plan = MakePlan(model, options);
  EXPECT_TRUE(plan.ok()) << plan.status().message();
  if (!plan.ok()) return {};
  Status s = ApplyPlan(*plan, &model);
  EXPECT_TRUE(s.ok()) << s.message();
  return {*plan, model};
}

std::vector<double> Block(const onnx::ModelProto& m, const std::string& tensor, int64_t index,
                          int64_t size) {
  auto all = RawFloats(*FindInitializer(m, tensor));
  return {all.begin() + index * size, all.begin() + (index + 1) * size};
}

void ExpectOrthogonal(const std::vector<double>& v, int64_t n, double gain,
                      const std::string& what) {
  reinit_test::ExpectOrthogonal(v, n, n, gain, what);
}

TEST(Lstm, BidirectionalGateBlocksUnderAuto) {
  auto r = Reinit(Recurrent("LSTM", 4, ", direction = \"bidirectional\"", 2));
  const auto& layer = r.plan.layers(0);
  EXPECT_EQ(layer.kind(), "recurrent");
  EXPECT_EQ(layer.fan_in(), kI);
  EXPECT_EQ(layer.fan_out(), kH);
  ASSERT_EQ(layer.weight().blocks_size(), 8);
  EXPECT_EQ(layer.weight().blocks(0).name(), "forward.i");
  EXPECT_EQ(layer.weight().blocks(3).name(), "forward.c");
  EXPECT_EQ(layer.weight().blocks(7).name(), "reverse.c");
  // Input blocks: xavier-uniform with the gate's gain: 1 for sigmoid gates i, o, f, 5/3 for c.
  const char* gates = "iofc";
  for (int64_t b = 0; b < 8; ++b) {
    const double gain = gates[b % 4] == 'c' ? 5.0 / 3.0 : 1.0;
    ExpectUniform(Block(r.model, "W", b, kH * kI), gain * std::sqrt(6.0 / (kI + kH)),
                  "W block " + std::to_string(b));
    ExpectOrthogonal(Block(r.model, "R", b, kH * kH), kH, 1.0, "R block " + std::to_string(b));
  }
  for (float v : RawFloats(*FindInitializer(r.model, "B"))) EXPECT_EQ(v, 0);
}

TEST(Lstm, BlocksAreIndependentDraws) {
  // Two blocks with the same scheme and parameters must not hold the same values.
  auto r = Reinit(Recurrent("LSTM", 4, "", 1));
  EXPECT_NE(Block(r.model, "W", 0, kH * kI), Block(r.model, "W", 1, kH * kI));
  EXPECT_NE(Block(r.model, "R", 0, kH * kH), Block(r.model, "R", 1, kH * kH));
}

TEST(Lstm, ForgetBiasSetsTheInputForgetBlockOnly) {
  PlanOptions o;
  o.forget_bias = 1.0;
  auto r = Reinit(Recurrent("LSTM", 4, ", direction = \"bidirectional\"", 2), o);
  const auto b = RawFloats(*FindInitializer(r.model, "B"));
  ASSERT_EQ(b.size(), static_cast<size_t>(2 * 8 * kH));
  for (int64_t d = 0; d < 2; ++d) {
    for (int64_t k = 0; k < 8 * kH; ++k) {
      // Per direction: input biases i, o, f, c then recurrent ones; f is block 2.
      const bool forget_input = k >= 2 * kH && k < 3 * kH;
      EXPECT_EQ(b[d * 8 * kH + k], forget_input ? 1.0f : 0.0f) << "direction " << d << " k " << k;
    }
  }
}

TEST(Gru, ActivationsAttributeChoosesTheGains) {
  // f = Relu drives z and r (gain √2), g = Tanh drives h (5/3).
  auto r = Reinit(Recurrent("GRU", 3, ", activations = [\"Relu\", \"Tanh\"]", 1));
  const double gains[] = {std::sqrt(2.0), std::sqrt(2.0), 5.0 / 3.0};
  for (int64_t b = 0; b < 3; ++b) {
    ExpectUniform(Block(r.model, "W", b, kH * kI), gains[b] * std::sqrt(6.0 / (kI + kH)),
                  "GRU W block " + std::to_string(b));
    ExpectOrthogonal(Block(r.model, "R", b, kH * kH), kH, 1.0, "GRU R");
  }
  EXPECT_EQ(r.plan.layers(0).weight().blocks(0).activation(), "relu");
}

TEST(Rnn, OneTanhGateWithAnExplicitScheme) {
  PlanOptions o;
  o.scheme = "he-uniform";
  auto r = Reinit(Recurrent("RNN", 1, "", 1), o);
  // he-uniform with tanh's gain: W block fan_in I, R block fan_in H.
  ExpectUniform(Block(r.model, "W", 0, kH * kI), 5.0 / 3.0 * std::sqrt(3.0 / kI), "RNN W");
  ExpectUniform(Block(r.model, "R", 0, kH * kH), 5.0 / 3.0 * std::sqrt(3.0 / kH), "RNN R");
}

TEST(Recurrent, TorchConventionCountsEveryGateAsFanOut) {
  PlanOptions o;
  o.fan_convention = FanConvention::kTorch;
  auto plan = MakePlan(Recurrent("LSTM", 4, "", 1), o);
  ASSERT_TRUE(plan.ok()) << plan.status().message();
  EXPECT_EQ(plan->layers(0).fan_in(), kI);
  EXPECT_EQ(plan->layers(0).fan_out(), 4 * kH);  // torch: weight_ih is [4H, I]
  EXPECT_EQ(plan->layers(0).weight().blocks(0).fan_out(), 4 * kH);
}

TEST(Recurrent, ErrorsNameTheLayer) {
  auto model = Recurrent("LSTM", 4, "", 1);
  model.mutable_graph()->mutable_node(0)->mutable_attribute(0)->set_i(10);  // hidden_size
  auto plan = MakePlan(model, {});
  ASSERT_FALSE(plan.ok());
  EXPECT_NE(plan.status().message().find("layer 'rnn' (LSTM), weight 'W'"), std::string::npos)
      << plan.status().message();
  EXPECT_NE(plan.status().message().find("hidden_size 10"), std::string::npos);

  auto bidir = Recurrent("GRU", 3, "", 2);  // two directions, direction attribute forward
  plan = MakePlan(bidir, {});
  ASSERT_FALSE(plan.ok());
  EXPECT_NE(plan.status().message().find("2 directions"), std::string::npos)
      << plan.status().message();
}

TEST(Recurrent, KeepBiasAndPlanRoundTrip) {
  auto model = Recurrent("LSTM", 4, "", 1);
  PlanOptions o;
  o.keep_bias = true;
  o.seed = 4;
  auto r = Reinit(model, o);
  EXPECT_EQ(reinit_test::FindInitializer(r.model, "B")->SerializeAsString(),
            reinit_test::FindInitializer(model, "B")->SerializeAsString());
  // An unedited plan read back applies to the same bytes.
  auto plan = MakePlan(model, o);
  ASSERT_TRUE(plan.ok());
  auto back = ReadPlan(PlanToJson(*plan), "p.json", model);
  ASSERT_TRUE(back.ok()) << back.status().message();
  auto again = model;
  ASSERT_TRUE(ApplyPlan(*back, &again).ok());
  EXPECT_EQ(again.SerializeAsString(), r.model.SerializeAsString());
}

}  // namespace
}  // namespace recurrent_test
}  // namespace reinit

namespace reinit {
namespace recurrent_test {
namespace {

TEST(Recurrent, WeightsAssembledBySliceAndConcatAreDrawnInTheGateOrderTheLayerSees) {
  // PyTorch's training-mode export: W = Unsqueeze(Concat(w[0:H], w[3H:4H], w[H:3H])) turns
  // torch's gate order i, f, g, o into ONNX's i, o, f, c; the biases are concatenated slices
  // of two tensors.
  const std::string h = std::to_string(kH);
  auto model = ParseModel(
      "<ir_version: 8, opset_import: [\"\" : 17]>\n"
      "g (float[5, 1, " +
      std::to_string(kI) +
      "] x) => (y) {\n"
      " a = Slice (w, s0, sh)\n b = Slice (w, s3, s4)\n c = Slice (w, sh, s3)\n"
      " cat = Concat <axis = 0> (a, b, c)\n W = Unsqueeze (cat, zero)\n"
      " ra = Slice (r, s0, sh)\n rb = Slice (r, s3, s4)\n rc = Slice (r, sh, s3)\n"
      " rcat = Concat <axis = 0> (ra, rb, rc)\n R = Unsqueeze (rcat, zero)\n"
      " bcat = Concat <axis = 0> (bi, bh)\n B = Unsqueeze (bcat, zero)\n"
      " y = LSTM <hidden_size = " +
      h + "> (x, W, R, B)\n}");
  auto ints = [&](const char* name, int64_t v) {
    auto* t = model.mutable_graph()->add_initializer();
    t->set_name(name);
    t->set_data_type(onnx::TensorProto::INT64);
    t->add_dims(1);
    t->add_int64_data(v);
  };
  ints("s0", 0);
  ints("sh", kH);
  ints("s3", 3 * kH);
  ints("s4", 4 * kH);
  ints("zero", 0);
  AddFloatInitializer(&model, "w", {4 * kH, kI});
  AddFloatInitializer(&model, "r", {4 * kH, kH});
  AddFloatInitializer(&model, "bi", {4 * kH});
  AddFloatInitializer(&model, "bh", {4 * kH});
  auto r = Reinit(model);
  ASSERT_EQ(r.plan.layers_size(), 1) << PlanToJson(r.plan);
  EXPECT_EQ(r.plan.layers(0).skipped(), "");
  EXPECT_EQ(r.plan.layers(0).weight().name(), "w");
  // torch's rows: i = 0:H, f = H:2H, g = 2H:3H (the tanh cell gate, ONNX's c), o = 3H:4H.
  const double sigmoid_bound = std::sqrt(6.0 / (kI + kH));
  const char* gates[] = {"i", "f", "g", "o"};
  for (int64_t g = 0; g < 4; ++g) {
    const double gain = g == 2 ? 5.0 / 3.0 : 1.0;
    ExpectUniform(Block(r.model, "w", g, kH * kI), gain * sigmoid_bound,
                  std::string("torch gate ") + gates[g]);
    ExpectOrthogonal(Block(r.model, "r", g, kH * kH), kH, 1.0, std::string("R ") + gates[g]);
  }
  for (const char* b : {"bi", "bh"}) {
    for (float v : RawFloats(*FindInitializer(r.model, b))) EXPECT_EQ(v, 0) << b;
  }
}

}  // namespace
}  // namespace recurrent_test
}  // namespace reinit

namespace reinit {
namespace recurrent_test {
namespace {

TEST(Recurrent, ABidirectionalLayerJoinedFromOneTensorPerDirection) {
  // W = Concat(Unsqueeze(wf), Unsqueeze(wr)), R likewise: each direction's tensor is drawn
  // with its own gate blocks.
  auto model = ParseModel(
      "<ir_version: 8, opset_import: [\"\" : 17]>\n"
      "g (float[5, 1, " +
      std::to_string(kI) +
      "] x) => (y) {\n"
      " uf = Unsqueeze (wf, zero)\n ur = Unsqueeze (wr, zero)\n"
      " W = Concat <axis = 0> (uf, ur)\n"
      " rf = Unsqueeze (hf, zero)\n rr = Unsqueeze (hr, zero)\n"
      " R = Concat <axis = 0> (rf, rr)\n"
      " y = GRU <hidden_size = " +
      std::to_string(kH) + ", direction = \"bidirectional\"> (x, W, R)\n}");
  auto* zero = model.mutable_graph()->add_initializer();
  zero->set_name("zero");
  zero->set_data_type(onnx::TensorProto::INT64);
  zero->add_dims(1);
  zero->add_int64_data(0);
  for (const char* w : {"wf", "wr"}) AddFloatInitializer(&model, w, {3 * kH, kI});
  for (const char* r : {"hf", "hr"}) AddFloatInitializer(&model, r, {3 * kH, kH});
  auto r = Reinit(model);
  ASSERT_EQ(r.plan.layers_size(), 1) << PlanToJson(r.plan);
  EXPECT_EQ(r.plan.layers(0).skipped(), "");
  EXPECT_EQ(r.plan.layers(0).fan_in(), kI);
  const double bound = std::sqrt(6.0 / (kI + kH));
  for (const char* w : {"wf", "wr"}) {
    for (int64_t g = 0; g < 3; ++g) {  // z, r (sigmoid), h (tanh)
      ExpectUniform(Block(r.model, w, g, kH * kI), (g == 2 ? 5.0 / 3.0 : 1.0) * bound,
                    std::string(w) + " gate " + std::to_string(g));
    }
  }
  for (const char* h : {"hf", "hr"}) {
    for (int64_t g = 0; g < 3; ++g) ExpectOrthogonal(Block(r.model, h, g, kH * kH), kH, 1.0, h);
  }
  // The two directions are drawn from different streams.
  EXPECT_NE(Block(r.model, "wf", 0, kH * kI), Block(r.model, "wr", 0, kH * kI));
}

// An RNN node with one forward direction whose `activations` attribute is [name].
onnx::NodeProto RnnWithActivation(const std::string& name) {
  onnx::NodeProto node;
  node.set_op_type("RNN");
  auto* a = node.add_attribute();
  a->set_name("activations");
  a->set_type(onnx::AttributeProto::STRINGS);
  a->add_strings(name);
  return node;
}

// Every activation name ONNX's recurrent ops accept, with the kind recurrent.cc's own map gave
// it before the kinds came from the op table (graph/op_traits) and its activation kinds; a
// drifting row in either table fails here.
TEST(RecurrentActivations, EachSpecNameGivesTheKindItAlwaysHad) {
  const std::pair<std::string, std::string> kKinds[] = {
      {"Sigmoid", "sigmoid"},
      {"Tanh", "tanh"},
      {"Relu", "relu"},
      {"LeakyRelu", "leaky_relu"},
      {"ThresholdedRelu", "thresholded_relu"},
      {"HardSigmoid", "hard_sigmoid"},
      {"Elu", "elu"},
      {"Softsign", "softsign"},
      {"Softplus", "softplus"},
      {"ScaledTanh", "tanh"},
      {"Affine", "linear"},
  };
  for (const auto& [name, kind] : kKinds) {
    auto gates = RecurrentGates(RnnWithActivation(name), WeightLayout::kRnn, 1);
    ASSERT_TRUE(gates.ok()) << name << ": " << gates.status().message();
    ASSERT_EQ(gates->size(), 1u) << name;
    EXPECT_EQ((*gates)[0].activation, kind) << name;
  }
}

// Activation ops the table knows that ONNX's recurrent ops do not accept, kind names, and names
// of no op stay unknown.
TEST(RecurrentActivations, OtherNamesAreUnknown) {
  for (const std::string name : {"Selu", "Celu", "Gelu", "HardSwish", "Mish", "PRelu", "Clip",
                                 "Softmax", "Identity", "relu", "tanh", "linear", ""}) {
    auto gates = RecurrentGates(RnnWithActivation(name), WeightLayout::kRnn, 1);
    ASSERT_FALSE(gates.ok()) << name;
    EXPECT_EQ(gates.status().message(), "unknown activation '" + name + "'");
  }
}

}  // namespace
}  // namespace recurrent_test
}  // namespace reinit
