#include "graph/activation.h"

#include <gtest/gtest.h>

#include <cmath>
#include <numbers>
#include <ostream>
#include <string>
#include <unordered_set>
#include <vector>

#include "graph/layers.h"
#include "test_util.h"

namespace reinit {
namespace activation_test {
namespace {

using reinit_test::AddFloatValues;
using reinit_test::AddInitializer;
using reinit_test::Contains;
using reinit_test::NameNodesAfterOutputs;
using reinit_test::ParseModelOrDie;
using Path = std::vector<std::string>;

// A model from `graph` in text syntax at the given opset, nodes named after their outputs.
onnx::ModelProto Model(const std::string& graph, int opset = 17) {
  const std::string header = "<ir_version: " + std::string(opset < 8 ? "3" : "8") +
                             ", opset_import: [\"\" : " + std::to_string(opset) + "]>\n";
  auto model = ParseModelOrDie(header + graph);
  NameNodesAfterOutputs(&model);
  return model;
}

// x [N, 4] -> fc = Gemm(x, w [8, 4], b [8]) -> `body`, which reads fc. Graph outputs: `outputs`.
onnx::ModelProto GemmThen(const std::string& body, int opset = 17,
                          const std::string& outputs = "float[N, 8] y") {
  auto model = Model("g (float[N, 4] x) => (" + outputs +
                         ") {\n fc = Gemm <transB = 1> (x, w, b)\n" + body + "\n}",
                     opset);
  AddInitializer(&model, "w", {8, 4});
  AddInitializer(&model, "b", {8});
  return model;
}

// DetectActivation for the layer named `layer`, called as plan.cc does.
proto::Activation Detect(const onnx::ModelProto& model, const std::string& layer = "fc") {
  const GraphIndex index(model.graph());
  const auto layers = FindLayers(index);
  const std::unordered_set<int> layer_nodes = WalkBoundaries(layers);
  for (const auto& l : layers) {
    if (l.name == layer) return DetectActivation(index, layer_nodes, l.output, l.path);
  }
  ADD_FAILURE() << "no layer '" << layer << "'";
  return {};
}

Path PathOf(const proto::Activation& a) { return {a.path().begin(), a.path().end()}; }

// --- Activation ops: one row each, the node reads fc and writes y.

struct OpCase {
  const char* name;  // test name
  const char* node;  // "y = Op <attrs> (fc)"
  const char* op;
  const char* kind;
  double param;
};

void PrintTo(const OpCase& c, std::ostream* os) { *os << c.node; }

class ActivationOp : public ::testing::TestWithParam<OpCase> {};

TEST_P(ActivationOp, IsTheVerdict) {
  const OpCase& c = GetParam();
  // Opset 20 so that Gelu and Mish exist; the walk does not run the checker.
  const auto a = Detect(GemmThen(c.node, 20));
  EXPECT_EQ(a.kind(), c.kind);
  EXPECT_DOUBLE_EQ(a.param(), c.param);
  EXPECT_EQ(PathOf(a), Path{std::string(c.op) + " 'y'"});
  EXPECT_FALSE(a.ambiguous());
}

INSTANTIATE_TEST_SUITE_P(
    Ops, ActivationOp,
    ::testing::Values(
        OpCase{"Relu", "y = Relu (fc)", "Relu", "relu", 0},
        OpCase{"LeakyReluDefault", "y = LeakyRelu (fc)", "LeakyRelu", "leaky_relu", 0.01f},
        OpCase{"LeakyReluAlpha", "y = LeakyRelu <alpha = 0.2> (fc)", "LeakyRelu", "leaky_relu",
               0.2f},
        OpCase{"EluDefault", "y = Elu (fc)", "Elu", "elu", 1.0},
        OpCase{"EluAlpha", "y = Elu <alpha = 0.5> (fc)", "Elu", "elu", 0.5},
        OpCase{"Celu", "y = Celu <alpha = 2.0> (fc)", "Celu", "celu", 2.0},
        OpCase{"Selu", "y = Selu (fc)", "Selu", "selu", 0},
        OpCase{"ThresholdedRelu", "y = ThresholdedRelu <alpha = 0.7> (fc)", "ThresholdedRelu",
               "thresholded_relu", 0.7f},
        OpCase{"Sigmoid", "y = Sigmoid (fc)", "Sigmoid", "sigmoid", 0},
        OpCase{"HardSigmoid", "y = HardSigmoid (fc)", "HardSigmoid", "hard_sigmoid", 0},
        OpCase{"Tanh", "y = Tanh (fc)", "Tanh", "tanh", 0},
        OpCase{"Softplus", "y = Softplus (fc)", "Softplus", "softplus", 0},
        OpCase{"Softsign", "y = Softsign (fc)", "Softsign", "softsign", 0},
        OpCase{"HardSwish", "y = HardSwish (fc)", "HardSwish", "hard_swish", 0},
        OpCase{"Mish", "y = Mish (fc)", "Mish", "mish", 0},
        OpCase{"Gelu", "y = Gelu (fc)", "Gelu", "gelu", 0},
        OpCase{"GeluNone", "y = Gelu <approximate = \"none\"> (fc)", "Gelu", "gelu", 0},
        OpCase{"GeluTanh", "y = Gelu <approximate = \"tanh\"> (fc)", "Gelu", "gelu_tanh", 0}),
    [](const auto& info) { return std::string(info.param.name); });

// --- PRelu: the mean of a constant slope.

TEST(PRelu, MeanOfTheSlopeInitializer) {
  auto model = GemmThen("y = PRelu (fc, slope)");
  const std::vector<float> slope = {0.1f, 0.2f, 0.05f, 0.3f, 0.0f, 0.25f, 0.15f, 0.4f};
  AddFloatValues(&model, "slope", {8}, slope);
  double mean = 0;
  for (float s : slope) mean += s;
  mean /= static_cast<double>(slope.size());
  const auto a = Detect(model);
  EXPECT_EQ(a.kind(), "prelu");
  EXPECT_NEAR(a.param(), mean, 1e-12);
}

TEST(PRelu, SlopeInAConstantNode) {
  const auto a = Detect(GemmThen(R"(slope = Constant <value_float = 0.3> ()
    y = PRelu (fc, slope))"));
  EXPECT_EQ(a.kind(), "prelu");
  EXPECT_DOUBLE_EQ(a.param(), 0.3f);
}

TEST(PRelu, NonConstantSlopeTakesPyTorchsDefault) {
  const auto a = Detect(GemmThen("y = PRelu (fc, slope)", 17, "float[N, 8] y, float[8] slope"));
  EXPECT_EQ(a.kind(), "prelu");
  EXPECT_DOUBLE_EQ(a.param(), 0.25);
}

// --- Clip as relu6 / relu.

TEST(Clip, ZeroSixFromInitializersIsRelu6) {
  auto model = GemmThen("y = Clip (fc, lo, hi)");
  AddFloatValues(&model, "lo", {}, {0.0f});
  AddFloatValues(&model, "hi", {}, {6.0f});
  const auto a = Detect(model);
  EXPECT_EQ(a.kind(), "relu6");
  EXPECT_EQ(PathOf(a), Path{"Clip 'y'"});
}

TEST(Clip, ZeroSixFromTypedInitializersIsRelu6) {
  // Written in the text syntax, the bounds are stored in float_data rather than raw_data.
  const auto a = Detect(Model(R"(g (float[N, 4] x) => (float[N, 8] y)
      <float[8, 4] w = {0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0,
                        0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0,
                        0.0, 0.0},
       float lo = {0.0}, float hi = {6.0}> {
    fc = Gemm <transB = 1> (x, w)
    y = Clip (fc, lo, hi)
  })"));
  EXPECT_EQ(a.kind(), "relu6");
}

TEST(Clip, ZeroSixFromConstantNodesIsRelu6) {
  const auto a = Detect(GemmThen(R"(lo = Constant <value_float = 0.0> ()
    hi = Constant <value = float[1] {6.0}> ()
    y = Clip (fc, lo, hi))"));
  EXPECT_EQ(a.kind(), "relu6");
}

TEST(Clip, ZeroInfinityIsRelu) {
  auto model = GemmThen("y = Clip (fc, lo, hi)");
  AddFloatValues(&model, "lo", {}, {0.0f});
  AddFloatValues(&model, "hi", {}, {INFINITY});
  EXPECT_EQ(Detect(model).kind(), "relu");
}

TEST(Clip, MinOnlyIsRelu) {
  auto model = GemmThen("y = Clip (fc, lo)");
  AddFloatValues(&model, "lo", {}, {0.0f});
  EXPECT_EQ(Detect(model).kind(), "relu");
}

TEST(Clip, OtherBoundsAreNotAnActivation) {
  auto model = GemmThen("y = Clip (fc, lo, hi)");
  AddFloatValues(&model, "lo", {}, {-1.0f});
  AddFloatValues(&model, "hi", {}, {1.0f});
  const auto a = Detect(model);
  EXPECT_EQ(a.kind(), "linear");
  ASSERT_EQ(a.path_size(), 1);
  EXPECT_TRUE(Contains(a.path(0), "Clip 'y' (not a known activation"));
}

TEST(Clip, Opset6AttributesZeroSixIsRelu6) {
  EXPECT_EQ(Detect(GemmThen("y = Clip <min = 0.0, max = 6.0> (fc)", 6)).kind(), "relu6");
  EXPECT_EQ(Detect(GemmThen("y = Clip <min = 0.0> (fc)", 6)).kind(), "relu");
}

// --- Exporters' decompositions.

TEST(Decomposition, SiluEitherOperandOrder) {
  for (const char* mul : {"y = Mul (fc, s)", "y = Mul (s, fc)"}) {
    const auto a = Detect(GemmThen(std::string("s = Sigmoid (fc)\n") + mul));
    EXPECT_EQ(a.kind(), "silu") << mul;
    EXPECT_EQ(PathOf(a), Path{"Mul 'y' (x·Sigmoid(x) = SiLU)"}) << mul;
    EXPECT_FALSE(a.ambiguous()) << mul;
  }
}

TEST(Decomposition, HardSwish) {
  const auto a = Detect(GemmThen(R"(s = HardSigmoid <alpha = 0.16666667, beta = 0.5> (fc)
    y = Mul (fc, s))"));
  EXPECT_EQ(a.kind(), "hard_swish");
  EXPECT_EQ(PathOf(a), Path{"Mul 'y' (x·HardSigmoid(x) = HardSwish)"});
}

TEST(Decomposition, Mish) {
  const auto a = Detect(GemmThen(R"(sp = Softplus (fc)
    t = Tanh (sp)
    y = Mul (fc, t))"));
  EXPECT_EQ(a.kind(), "mish");
  EXPECT_EQ(PathOf(a), Path{"Mul 'y' (x·Tanh(Softplus(x)) = Mish)"});
}

// 0.5·x·(1 + Erf(x/√2)) as torch.onnx writes it: Mul(x, 1 + erf) first, then times 0.5.
constexpr const char* kGeluErfBody = R"(d = Div (fc, sqrt2)
    e = Erf (d)
    a = Add (e, one)
    m = Mul (fc, a)
    y = Mul (m, half))";

void AddGeluErfConstants(onnx::ModelProto* model) {
  AddFloatValues(model, "sqrt2", {}, {static_cast<float>(std::sqrt(2.0))});
  AddFloatValues(model, "one", {}, {1.0f});
  AddFloatValues(model, "half", {}, {0.5f});
}

TEST(Decomposition, GeluErfWithInitializers) {
  auto model = GemmThen(kGeluErfBody);
  AddGeluErfConstants(&model);
  const auto a = Detect(model);
  EXPECT_EQ(a.kind(), "gelu");
  EXPECT_EQ(PathOf(a), Path{"Mul 'm' (0.5·x·(1 + Erf(x/√2)) = GELU)"});
  EXPECT_FALSE(a.ambiguous());
}

TEST(Decomposition, GeluErfWithConstantNodes) {
  // PyTorch puts the constants in Constant nodes next to their use.
  const auto a = Detect(GemmThen(std::string(R"(sqrt2 = Constant <value = float {1.4142135}> ()
    one = Constant <value = float {1.0}> ()
    half = Constant <value = float {0.5}> ()
    )") + kGeluErfBody));
  EXPECT_EQ(a.kind(), "gelu");
  EXPECT_FALSE(a.ambiguous());
}

TEST(Decomposition, GeluErfScaledByHalfFirst) {
  // x·0.5·(1 + Erf(x/√2)), as Hugging Face's Python GELU and Keras write it.
  auto model = GemmThen(R"(h = Mul (fc, half)
    d = Div (fc, sqrt2)
    e = Erf (d)
    a = Add (one, e)
    y = Mul (h, a))");
  AddGeluErfConstants(&model);
  const auto a = Detect(model);
  EXPECT_EQ(a.kind(), "gelu");
  EXPECT_EQ(PathOf(a), Path{"Mul 'y' (0.5·x·(1 + Erf(x/√2)) = GELU)"});
  EXPECT_FALSE(a.ambiguous());
}

void AddGeluTanhConstants(onnx::ModelProto* model) {
  AddFloatValues(model, "three", {}, {3.0f});
  AddFloatValues(model, "kappa", {}, {0.044715f});
  AddFloatValues(model, "beta", {}, {static_cast<float>(std::sqrt(2.0 / std::numbers::pi))});
  AddFloatValues(model, "one", {}, {1.0f});
  AddFloatValues(model, "half", {}, {0.5f});
}

TEST(Decomposition, GeluTanhWithPow) {
  auto model = GemmThen(R"(p = Pow (fc, three)
    k = Mul (p, kappa)
    i = Add (fc, k)
    s = Mul (i, beta)
    t = Tanh (s)
    a = Add (t, one)
    m = Mul (fc, a)
    y = Mul (m, half))");
  AddGeluTanhConstants(&model);
  const auto a = Detect(model);
  EXPECT_EQ(a.kind(), "gelu_tanh");
  EXPECT_EQ(PathOf(a), Path{"Mul 'm' (0.5·x·(1 + Tanh(√(2/π)(x + 0.044715x³))) = GELU (tanh))"});
  EXPECT_FALSE(a.ambiguous());
}

TEST(Decomposition, GeluTanhWithCubeAsProducts) {
  // torch.onnx's gelu(approximate="tanh") before opset 20: x·(x·x), beta first, half last.
  auto model = GemmThen(R"(xx = Mul (fc, fc)
    xxx = Mul (fc, xx)
    k = Mul (kappa, xxx)
    i = Add (fc, k)
    s = Mul (beta, i)
    t = Tanh (s)
    a = Add (one, t)
    m = Mul (fc, a)
    y = Mul (half, m))");
  AddGeluTanhConstants(&model);
  const auto a = Detect(model);
  EXPECT_EQ(a.kind(), "gelu_tanh");
  EXPECT_EQ(a.path_size(), 1);
  EXPECT_FALSE(a.ambiguous());
}

TEST(Decomposition, GeluTanhScaledByHalfFirst) {
  // GPT-2's NewGELUActivation: 0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³))), left to right.
  auto model = GemmThen(R"(h = Mul (fc, half)
    p = Pow (fc, three)
    k = Mul (kappa, p)
    i = Add (fc, k)
    s = Mul (beta, i)
    t = Tanh (s)
    a = Add (one, t)
    y = Mul (h, a))");
  AddGeluTanhConstants(&model);
  const auto a = Detect(model);
  EXPECT_EQ(a.kind(), "gelu_tanh");
  EXPECT_EQ(PathOf(a), Path{"Mul 'y' (0.5·x·(1 + Tanh(√(2/π)(x + 0.044715x³))) = GELU (tanh))"});
}

TEST(Decomposition, GateFromAnotherTensorIsNotSilu) {
  // fc·Sigmoid(g): a gate computed from something else, not SiLU.
  const auto a = Detect(GemmThen(R"(s = Sigmoid (gate)
    y = Mul (fc, s))",
                                 17, "float[N, 8] y, float[N, 8] gate"));
  EXPECT_EQ(a.kind(), "linear");
  EXPECT_EQ(PathOf(a), (Path{"Mul 'y'", "graph output 'y'"}));
}

TEST(Decomposition, AfterAPassThroughOp) {
  auto model = GemmThen(R"(bn = BatchNormalization (fc, sc, sh, mu, var)
    s = Sigmoid (bn)
    y = Mul (bn, s))");
  for (const char* name : {"sc", "sh", "mu", "var"}) AddInitializer(&model, name, {8});
  const auto a = Detect(model);
  EXPECT_EQ(a.kind(), "silu");
  EXPECT_EQ(PathOf(a), (Path{"BatchNormalization 'bn'", "Mul 'y' (x·Sigmoid(x) = SiLU)"}));
}

// --- Other exporters' spellings (tf2onnx, paddle2onnx, hand-written Keras), identified by the
// values they compute. Each: the body after fc, its scalar constants, and the verdict.
struct Spelling {
  const char* name;
  const char* body;
  std::vector<std::pair<const char*, float>> constants;
  const char* kind;
  double param;
};

void PrintTo(const Spelling& c, std::ostream* os) { *os << c.name; }

class ExporterSpelling : public ::testing::TestWithParam<Spelling> {};

TEST_P(ExporterSpelling, IsRecognised) {
  const Spelling& c = GetParam();
  auto model = GemmThen(c.body);
  for (const auto& [name, value] : c.constants) AddFloatValues(&model, name, {}, {value});
  const auto a = Detect(model);
  EXPECT_EQ(a.kind(), c.kind);
  EXPECT_NEAR(a.param(), c.param, 1e-6);
  EXPECT_FALSE(a.ambiguous()) << a.alternatives(0);
  // The nonlinearity's output is the last constant scaling's: where --propagate measures.
  EXPECT_EQ(a.output(), "y");
}

INSTANTIATE_TEST_SUITE_P(
    Activation, ExporterSpelling,
    ::testing::Values(
        // x·Clip(x + 3, 0, 6)/6 (tf2onnx's hard-swish, paddle2onnx's hardswish before opset 14)
        Spelling{"HardSwishClipThenDiv",
                 "a = Add (fc, three)\n c = Clip (a, zero, six)\n m = Mul (fc, c)\n"
                 " y = Div (m, six)",
                 {{"three", 3}, {"zero", 0}, {"six", 6}},
                 "hard_swish",
                 0},
        Spelling{"HardSwishDivInside",
                 "a = Add (fc, three)\n c = Clip (a, zero, six)\n d = Div (c, six)\n"
                 " y = Mul (fc, d)",
                 {{"three", 3}, {"zero", 0}, {"six", 6}},
                 "hard_swish",
                 0},
        // x·Relu6(x + 3)/6 with Relu6 as Min(Relu(.), 6), times 1/6
        Spelling{"HardSwishReluMin",
                 "a = Add (fc, three)\n r = Relu (a)\n c = Min (r, six)\n m = Mul (c, fc)\n"
                 " y = Mul (m, sixth)",
                 {{"three", 3}, {"six", 6}, {"sixth", 1.0f / 6}},
                 "hard_swish",
                 0},
        // hard-sigmoid as Clip(x/6 + 0.5, 0, 1) and as Clip(x + 3, 0, 6)/6
        Spelling{"HardSigmoidClip01",
                 "d = Div (fc, six)\n a = Add (d, half)\n y = Clip (a, zero, one)",
                 {{"six", 6}, {"half", 0.5f}, {"zero", 0}, {"one", 1}},
                 "hard_sigmoid",
                 0},
        Spelling{"HardSigmoidRelu6Form",
                 "a = Add (fc, three)\n c = Clip (a, zero, six)\n y = Div (c, six)",
                 {{"three", 3}, {"zero", 0}, {"six", 6}},
                 "hard_sigmoid",
                 0},
        // LeakyReLU as Max(x, αx) (tf.maximum) and as Where(x > 0, x, αx)
        Spelling{"LeakyReluMax",
                 "s = Mul (fc, alpha)\n y = Max (fc, s)",
                 {{"alpha", 0.2f}},
                 "leaky_relu",
                 0.2},
        Spelling{"LeakyReluWhere",
                 "g = Greater (fc, zero)\n s = Mul (fc, alpha)\n y = Where (g, fc, s)",
                 {{"zero", 0}, {"alpha", 0.1f}},
                 "leaky_relu",
                 0.1},
        // SiLU as x / (1 + Exp(-x)) (swish written out)
        Spelling{"SiluDivExp",
                 "n = Neg (fc)\n e = Exp (n)\n a = Add (e, one)\n y = Div (fc, a)",
                 {{"one", 1}},
                 "silu",
                 0},
        // Mish with Softplus written as Log(1 + Exp(x)) (paddle2onnx)
        Spelling{"MishLogExp",
                 "e = Exp (fc)\n a = Add (e, one)\n l = Log (a)\n t = Tanh (l)\n y = Mul (fc, t)",
                 {{"one", 1}},
                 "mish",
                 0},
        // GELU as tf2onnx writes Keras' exact gelu: x·0.5·(1 + Erf(x·0.70710677))
        Spelling{"GeluErfTimesRsqrt2",
                 "h = Mul (fc, half)\n s = Mul (fc, rsqrt2)\n e = Erf (s)\n a = Add (e, one)\n"
                 " y = Mul (h, a)",
                 {{"half", 0.5f}, {"rsqrt2", 0.70710677f}, {"one", 1}},
                 "gelu",
                 0},
        // GELU with the tanh approximation and x³ as x·x·x (paddle2onnx), 0.5 last
        Spelling{"GeluTanhCubeProducts",
                 "x2 = Mul (fc, fc)\n x3 = Mul (x2, fc)\n c = Mul (x3, k)\n i = Add (fc, c)\n"
                 " s = Mul (i, r)\n t = Tanh (s)\n a = Add (t, one)\n m = Mul (fc, a)\n"
                 " y = Mul (m, half)",
                 {{"k", 0.044715f}, {"r", 0.7978846f}, {"one", 1}, {"half", 0.5f}},
                 "gelu_tanh",
                 0}),
    [](const auto& info) { return std::string(info.param.name); });

// PaddleOCR v4 (PPLCNetV3, paddle2onnx): a learnable affine block before and after the
// hard-swish. The scaling after it belongs to the next block: the activation ends at the Div.
TEST(ExporterSpelling, HardSwishBetweenAffineBlocks) {
  auto model = GemmThen(
      "p = Mul (w0, fc)\n q = Add (p, w1)\n a = Add (q, three)\n c = Clip (a, zero, six)\n"
      " m = Mul (q, c)\n h = Div (m, six)\n s = Mul (h, w2)\n y = Add (s, w3)");
  for (const auto& [n, v] : std::vector<std::pair<const char*, float>>{{"w0", 0.943f},
                                                                       {"w1", 0.504f},
                                                                       {"three", 3},
                                                                       {"zero", 0},
                                                                       {"six", 6},
                                                                       {"w2", 0.9f},
                                                                       {"w3", 0.1f}}) {
    AddFloatValues(&model, n, {}, {v});
  }
  const auto a = Detect(model);
  EXPECT_EQ(a.kind(), "hard_swish");
  EXPECT_FALSE(a.ambiguous());
  EXPECT_EQ(a.output(), "h");
}

// A clamp that is no activation's, and a product with an unrelated gate, stay unidentified.
TEST(ExporterSpelling, OtherFunctionsAreNotTakenForActivations) {
  auto model = GemmThen(
      "a = Add (fc, two)\n c = Clip (a, zero, six)\n m = Mul (fc, c)\n"
      " y = Div (m, six)");
  for (const auto& [n, v] :
       std::vector<std::pair<const char*, float>>{{"two", 2}, {"zero", 0}, {"six", 6}}) {
    AddFloatValues(&model, n, {}, {v});
  }
  EXPECT_NE(Detect(model).kind(), "hard_swish");
}

TEST(Decomposition, OtherConsumersAreStillWalked) {
  const auto a = Detect(GemmThen(R"(s = Sigmoid (fc)
    y = Mul (fc, s)
    t = Tanh (fc))",
                                 17, "float[N, 8] y, float[N, 8] t"));
  EXPECT_EQ(a.kind(), "silu");
  EXPECT_TRUE(a.ambiguous());
  EXPECT_EQ(Path(a.alternatives().begin(), a.alternatives().end()), Path{"tanh via Tanh 't'"});
}

// --- Walking through ops that do not change which nonlinearity comes next: a Conv layer
// fc, then `nodes` from fc to z, then y = Relu(z).

struct WalkCase {
  const char* name;
  const char* initializers;  // text-syntax initializer list, or ""
  const char* nodes;
  Path path;  // before "Relu 'y'"
};

void PrintTo(const WalkCase& c, std::ostream* os) { *os << c.name; }

class WalkThrough : public ::testing::TestWithParam<WalkCase> {};

TEST_P(WalkThrough, ReachesTheRelu) {
  const WalkCase& c = GetParam();
  std::string inits = c.initializers;
  if (!inits.empty()) inits = "<" + inits + ">";
  auto model = Model("g (float[1, 3, 8, 8] x) => (float y) " + inits + " {\n" +
                     " fc = Conv <pads = [1, 1, 1, 1]> (x, w)\n " + c.nodes + "\n y = Relu (z)\n}");
  AddInitializer(&model, "w", {4, 3, 3, 3});
  const auto a = Detect(model);
  EXPECT_EQ(a.kind(), "relu");
  Path path = c.path;
  path.push_back("Relu 'y'");
  EXPECT_EQ(PathOf(a), path);
  EXPECT_FALSE(a.ambiguous());
}

INSTANTIATE_TEST_SUITE_P(
    Ops, WalkThrough,
    ::testing::Values(
        WalkCase{"BiasAdd",
                 "float[4, 1, 1] bias = {0.0, 0.0, 0.0, 0.0}",
                 "z = Add (fc, bias)",
                 {"Add 'z'"}},
        WalkCase{"BatchNormalization",
                 "float[4] s = {1.0, 1.0, 1.0, 1.0}, float[4] sh = {0.0, 0.0, 0.0, 0.0}, "
                 "float[4] m = {0.0, 0.0, 0.0, 0.0}, float[4] v = {1.0, 1.0, 1.0, 1.0}",
                 "z = BatchNormalization (fc, s, sh, m, v)",
                 {"BatchNormalization 'z'"}},
        WalkCase{"ResidualAdd", "", "z = Add (x, fc)", {"Add 'z'"}},
        WalkCase{"Reshape", "int64[2] shape = {1, -1}", "z = Reshape (fc, shape)", {"Reshape 'z'"}},
        WalkCase{"Flatten", "", "z = Flatten <axis = 1> (fc)", {"Flatten 'z'"}},
        WalkCase{"Transpose", "", "z = Transpose <perm = [0, 2, 3, 1]> (fc)", {"Transpose 'z'"}},
        WalkCase{"UnsqueezeSqueeze",
                 "int64[1] axes = {0}",
                 "u = Unsqueeze (fc, axes)\n z = Squeeze (u, axes)",
                 {"Unsqueeze 'u'", "Squeeze 'z'"}},
        WalkCase{"Identity", "", "z = Identity (fc)", {"Identity 'z'"}},
        WalkCase{"Dropout", "", "z, mask = Dropout (fc)", {"Dropout 'z'"}},
        WalkCase{"Cast", "", "z = Cast <to = 1> (fc)", {"Cast 'z'"}},
        WalkCase{"MaxPool", "", "z = MaxPool <kernel_shape = [2, 2]> (fc)", {"MaxPool 'z'"}},
        WalkCase{"GlobalAveragePool", "", "z = GlobalAveragePool (fc)", {"GlobalAveragePool 'z'"}},
        WalkCase{"Concat", "", "z = Concat <axis = 1> (x, fc)", {"Concat 'z'"}},
        WalkCase{"Split", "", "z, other = Split <axis = 1> (fc)", {"Split 'z'"}},
        WalkCase{"Slice",
                 "int64[1] starts = {0}, int64[1] ends = {2}",
                 "z = Slice (fc, starts, ends)",
                 {"Slice 'z'"}},
        WalkCase{
            "Pad", "int64[8] pads = {0, 0, 1, 1, 0, 0, 1, 1}", "z = Pad (fc, pads)", {"Pad 'z'"}},
        WalkCase{"Resize",
                 "float[4] scales = {1.0, 1.0, 2.0, 2.0}",
                 "z = Resize (fc, , scales)",
                 {"Resize 'z'"}},
        WalkCase{"Chain",
                 "int64[2] shape = {1, -1}",
                 "p = MaxPool <kernel_shape = [2, 2]> (fc)\n d = Dropout (p)\n"
                 " r = Reshape (d, shape)\n z = Identity (r)",
                 {"MaxPool 'p'", "Dropout 'd'", "Reshape 'r'", "Identity 'z'"}}),
    [](const auto& info) { return std::string(info.param.name); });

TEST(Walk, FoldedBiasAddStartsThePath) {
  auto model = Model(R"(g (float[N, 4] x) => (float[N, 8] y) {
    mm = MatMul (x, w)
    h = Add (mm, b)
    y = Relu (h)
  })");
  AddInitializer(&model, "w", {4, 8});
  AddInitializer(&model, "b", {8});
  const auto a = Detect(model, "mm");
  EXPECT_EQ(a.kind(), "relu");
  EXPECT_EQ(PathOf(a), (Path{"Add 'h'", "Relu 'y'"}));
}

TEST(Walk, LayerNormalizationDecompositionThenRelu) {
  // The statistics (ReduceMean, Pow, Sqrt) end their paths without a verdict.
  auto model = GemmThen(R"(mu = ReduceMean <axes = [-1]> (fc)
    d = Sub (fc, mu)
    p = Pow (d, two)
    var = ReduceMean <axes = [-1]> (p)
    ve = Add (var, eps)
    sd = Sqrt (ve)
    n = Div (d, sd)
    sc = Mul (n, gamma)
    sh = Add (sc, beta)
    y = Relu (sh))");
  AddFloatValues(&model, "two", {}, {2.0f});
  AddFloatValues(&model, "eps", {}, {1e-5f});
  AddInitializer(&model, "gamma", {8});
  AddInitializer(&model, "beta", {8});
  const auto a = Detect(model);
  EXPECT_EQ(a.kind(), "relu");
  EXPECT_FALSE(a.ambiguous());
  EXPECT_EQ(PathOf(a), (Path{"Sub 'd'", "Div 'n'", "Mul 'sc'", "Add 'sh'", "Relu 'y'"}));
}

// --- Linear verdicts.

TEST(Linear, AnotherLayer) {
  auto model = GemmThen("y = Gemm <transB = 1> (fc, w2)");
  AddInitializer(&model, "w2", {8, 8});
  const auto a = Detect(model);
  EXPECT_EQ(a.kind(), "linear");
  EXPECT_EQ(PathOf(a), Path{"Gemm 'y'"});
}

TEST(Linear, AnotherLayerAfterAReshape) {
  auto model = GemmThen(R"(r = Reshape (fc, shape)
    y = MatMul (r, w2))");
  AddInitializer(&model, "shape", {2}, onnx::TensorProto::INT64);
  AddInitializer(&model, "w2", {8, 8});
  const auto a = Detect(model);
  EXPECT_EQ(a.kind(), "linear");
  EXPECT_EQ(PathOf(a), (Path{"Reshape 'r'", "MatMul 'y'"}));
}

TEST(Linear, SoftmaxAndLogSoftmax) {
  for (const char* op : {"Softmax", "LogSoftmax"}) {
    const auto a = Detect(GemmThen(std::string("y = ") + op + " (fc)"));
    EXPECT_EQ(a.kind(), "linear") << op;
    EXPECT_EQ(PathOf(a), Path{std::string(op) + " 'y'"});
  }
}

TEST(Linear, GraphOutput) {
  auto model = Model(R"(g (float[N, 4] x) => (float[N, 8] fc) {
    fc = Gemm <transB = 1> (x, w, b)
  })");
  AddInitializer(&model, "w", {8, 4});
  AddInitializer(&model, "b", {8});
  const auto a = Detect(model);
  EXPECT_EQ(a.kind(), "linear");
  EXPECT_EQ(PathOf(a), Path{"graph output 'fc'"});
}

TEST(Linear, AGraphOutputThatAlsoFeedsAnActivationIsThatActivation) {
  // The pre-activation is exported too (a debugging output): the Relu still follows the layer.
  auto model = Model(R"(g (float[N, 4] x) => (float[N, 8] fc, float[N, 8] y) {
    fc = Gemm <transB = 1> (x, w, b)
    y = Relu (fc)
  })");
  AddInitializer(&model, "w", {8, 4});
  AddInitializer(&model, "b", {8});
  const auto a = Detect(model);
  EXPECT_EQ(a.kind(), "relu");
  EXPECT_FALSE(a.ambiguous());
}

TEST(Linear, UnknownOpSaysSo) {
  const auto a = Detect(GemmThen("y = Abs (fc)"));
  EXPECT_EQ(a.kind(), "linear");
  ASSERT_EQ(a.path_size(), 1);
  EXPECT_EQ(a.path(0), "Abs 'y' (not a known activation or pass-through op: taken as linear)");
}

TEST(Linear, NoConsumerAtAll) {
  auto model = GemmThen("y = Identity (x)");
  const auto a = Detect(model);
  EXPECT_EQ(a.kind(), "linear");
  EXPECT_EQ(PathOf(a), Path{"no nonlinearity reached"});
}

// --- Ambiguity.

TEST(Ambiguous, TieGoesToTheFirstFound) {
  const auto a = Detect(GemmThen(R"(r = Relu (fc)
    t = Tanh (fc))",
                                 17, "float[N, 8] r, float[N, 8] t"));
  EXPECT_EQ(a.kind(), "relu");
  EXPECT_TRUE(a.ambiguous());
  EXPECT_EQ(PathOf(a), Path{"Relu 'r'"});
  EXPECT_EQ(Path(a.alternatives().begin(), a.alternatives().end()), Path{"tanh via Tanh 't'"});
}

TEST(Ambiguous, MajorityWins) {
  const auto a = Detect(GemmThen(R"(t = Tanh (fc)
    r1 = Relu (fc)
    r2 = Relu (fc))",
                                 17, "float[N, 8] t, float[N, 8] r1, float[N, 8] r2"));
  EXPECT_EQ(a.kind(), "relu");
  EXPECT_TRUE(a.ambiguous());
  EXPECT_EQ(PathOf(a), Path{"Relu 'r1'"});
  EXPECT_EQ(Path(a.alternatives().begin(), a.alternatives().end()), Path{"tanh via Tanh 't'"});
}

TEST(Ambiguous, DifferentParametersAreDifferentVerdicts) {
  const auto a = Detect(GemmThen(R"(l1 = LeakyRelu <alpha = 0.1> (fc)
    l2 = LeakyRelu <alpha = 0.2> (fc)
    l3 = LeakyRelu <alpha = 0.2> (fc))",
                                 17, "float[N, 8] l1, float[N, 8] l2, float[N, 8] l3"));
  EXPECT_EQ(a.kind(), "leaky_relu");
  EXPECT_DOUBLE_EQ(a.param(), 0.2f);
  EXPECT_TRUE(a.ambiguous());
  EXPECT_EQ(Path(a.alternatives().begin(), a.alternatives().end()),
            Path{"leaky_relu via LeakyRelu 'l1'"});
}

TEST(Ambiguous, SameActivationOnEveryPathIsNotAmbiguous) {
  const auto a = Detect(GemmThen(R"(r1 = Relu (fc)
    f = Flatten (fc)
    r2 = Relu (f))",
                                 17, "float[N, 8] r1, float[N, 8] r2"));
  EXPECT_EQ(a.kind(), "relu");
  EXPECT_FALSE(a.ambiguous());
  EXPECT_EQ(a.alternatives_size(), 0);
}

// The tensor the nonlinearity produces, where inspect --propagate measures "after".
TEST(ActivationOutput, IsTheActivationOpsOutputOrTheDecompositionsLastMul) {
  EXPECT_EQ(Detect(GemmThen("h = Relu (fc)\n y = Identity (h)")).output(), "h");
  // 0.5·x·(1 + Erf(x/√2)) written as an exporter does: the last Mul's output.
  auto gelu = GemmThen(R"(
 s = Constant <value = float {1.41421356}> ()
 d = Div (fc, s)
 e = Erf (d)
 one = Constant <value = float {1.0}> ()
 p = Add (e, one)
 m = Mul (fc, p)
 half = Constant <value = float {0.5}> ()
 y = Mul (m, half))");
  const proto::Activation a = Detect(gelu);
  EXPECT_EQ(a.kind(), "gelu");
  EXPECT_EQ(a.output(), "y");  // after the 0.5, not 'm'
  auto silu = GemmThen("s = Sigmoid (fc)\n y = Mul (fc, s)");
  EXPECT_EQ(Detect(silu).output(), "y");
  // Linear: nothing to measure after.
  EXPECT_EQ(Detect(GemmThen("y = Identity (fc)")).output(), "");
}

}  // namespace
}  // namespace activation_test
}  // namespace reinit
