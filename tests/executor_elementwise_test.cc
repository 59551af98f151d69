// The reference executor's elementwise family (ops_elementwise.cc): broadcasting arithmetic and
// comparisons, Where, unary maths, activations, Clip, Cast, Softmax, reductions. Each op runs
// as a one-node model in ONNX text syntax; expected values are written out by hand or computed
// here by plain loops from the op's definition.
#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <map>

#include "model_builder.h"
#include "parallel.h"
#include "signal/executor/executor.h"
#include "test_util.h"

namespace reinit::exec {
namespace executor_elementwise_test {
namespace {

std::string TypeName(DType type) {
  return type == DType::kFloat ? "float" : type == DType::kInt64 ? "int64" : "bool";
}

// "x0", "x1", ... Strings here are built by appending: GCC 12 warns (-Wrestrict, a false
// positive) on some `"literal" + std::string` expressions.
std::string InputName(size_t k) { return std::string("x").append(std::to_string(k)); }

// The model `y = <op> (x0, x1, ...)` at `opset`, the inputs fed as graph inputs. `op` carries
// the attributes ("LeakyRelu <alpha = 0.5>"); `args` replaces the argument list when set
// ("x0, , x1" omits an optional input). int64 initializers are added from `ints`.
onnx::ModelProto OpModel(const std::string& op, const std::vector<Tensor>& inputs, int opset,
                         const std::string& args,
                         const std::map<std::string, std::vector<int64_t>>& ints) {
  std::string decl, names;
  for (size_t k = 0; k < inputs.size(); ++k) {
    if (k) {
      decl += ", ";
      names += ", ";
    }
    decl += TypeName(inputs[k].type) + " " + InputName(k);
    names += InputName(k);
  }
  auto m = reinit_test::ParseModel(
      "<ir_version: 8, opset_import: [\"\" : " + std::to_string(opset) + "]>\ng (" + decl +
      ") => (float y) { y = " + op + " (" + (args.empty() ? names : args) + ") }");
  for (const auto& [name, values] : ints) {
    auto* t = m.mutable_graph()->add_initializer();
    t->set_name(name);
    t->set_data_type(onnx::TensorProto::INT64);
    t->add_dims(static_cast<int64_t>(values.size()));
    for (int64_t v : values) t->add_int64_data(v);
  }
  return m;
}

StatusOr<Tensor> TryOp(const std::string& op, const std::vector<Tensor>& inputs, int opset = 17,
                       const std::string& args = "",
                       const std::map<std::string, std::vector<int64_t>>& ints = {}) {
  auto e = Executor::Create(OpModel(op, inputs, opset, args, ints));
  if (!e.ok()) return e.status();
  std::map<std::string, Tensor> feeds;
  for (size_t k = 0; k < inputs.size(); ++k) feeds[InputName(k)] = inputs[k];
  auto out = (*e)->Run(feeds);
  if (!out.ok()) return out.status();
  return out->at("y");
}

Tensor RunOp(const std::string& op, const std::vector<Tensor>& inputs, int opset = 17,
             const std::string& args = "",
             const std::map<std::string, std::vector<int64_t>>& ints = {}) {
  auto y = TryOp(op, inputs, opset, args, ints);
  EXPECT_TRUE(y.ok()) << op << ": " << y.status().message();
  return y.ok() ? *y : Tensor{};
}

// The op's error message ("" if it ran).
std::string OpError(const std::string& op, const std::vector<Tensor>& inputs, int opset = 17,
                    const std::string& args = "") {
  auto y = TryOp(op, inputs, opset, args);
  return y.ok() ? "" : y.status().message();
}

void ExpectNear(const Tensor& t, const std::vector<int64_t>& shape,
                const std::vector<float>& values, float tol = 1e-5f) {
  EXPECT_EQ(t.type, DType::kFloat);
  EXPECT_EQ(t.shape, shape);
  ASSERT_EQ(t.f.size(), values.size());
  for (size_t k = 0; k < values.size(); ++k) {
    if (std::isnan(values[k])) {
      EXPECT_TRUE(std::isnan(t.f[k])) << "element " << k;
    } else {
      EXPECT_NEAR(t.f[k], values[k], tol * std::max(1.0f, std::fabs(values[k]))) << "element " << k;
    }
  }
}

void ExpectInts(const Tensor& t, DType type, const std::vector<int64_t>& shape,
                const std::vector<int64_t>& values) {
  EXPECT_EQ(t.type, type);
  EXPECT_EQ(t.shape, shape);
  EXPECT_EQ(t.i, values);
}

using reinit_test::Contains;

// x [2, 1, 3] = 1..6 and y [4, 1] = 0.5, -1, 2, 4: out [2, 4, 3], element (i, j, k) from
// x[i, 0, k] and y[j, 0].
const Tensor kX213 = Tensor::Float({2, 1, 3}, {1, 2, 3, 4, 5, 6});
const Tensor kY41 = Tensor::Float({4, 1}, {0.5f, -1, 2, 4});

std::vector<float> Expected213x41(const std::function<double(double, double)>& fn) {
  std::vector<float> out;
  for (int i = 0; i < 2; ++i) {
    for (int j = 0; j < 4; ++j) {
      for (int k = 0; k < 3; ++k) out.push_back(float(fn(kX213.f[i * 3 + k], kY41.f[j])));
    }
  }
  return out;
}

// ---- Binary ------------------------------------------------------------------------------------

TEST(Elementwise, ArithmeticBroadcasts213With41) {
  const std::map<std::string, std::function<double(double, double)>> ops = {
      {"Add", [](double a, double b) { return a + b; }},
      {"Sub", [](double a, double b) { return a - b; }},
      {"Mul", [](double a, double b) { return a * b; }},
      {"Div", [](double a, double b) { return a / b; }},
      {"Pow", [](double a, double b) { return std::pow(a, b); }},
  };
  for (const auto& [op, fn] : ops) {
    SCOPED_TRACE(op);
    ExpectNear(RunOp(op, {kX213, kY41}), {2, 4, 3}, Expected213x41(fn));
  }
  // Two anchors by hand: x[1, 0, 2] - y[3] = 6 - 4 and x[0, 0, 1] / y[1] = 2 / -1.
  EXPECT_EQ(RunOp("Sub", {kX213, kY41}).f[1 * 12 + 3 * 3 + 2], 2.0f);
  EXPECT_EQ(RunOp("Div", {kX213, kY41}).f[0 * 12 + 1 * 3 + 1], -2.0f);
}

TEST(Elementwise, ScalarsBroadcast) {
  const Tensor s = Tensor::Float({}, {2});
  ExpectNear(RunOp("Sub", {Tensor::Float({3}, {1, 2, 3}), s}), {3}, {-1, 0, 1});
  ExpectNear(RunOp("Sub", {s, Tensor::Float({3}, {1, 2, 3})}), {3}, {1, 0, -1});
  ExpectNear(RunOp("Mul", {s, Tensor::Float({}, {-3})}), {}, {-6});
  // A one-element tensor of higher rank against a scalar keeps its rank.
  ExpectNear(RunOp("Add", {Tensor::Float({1, 1}, {1}), s}), {1, 1}, {3});
}

TEST(Elementwise, Int64ArithmeticAndCDivision) {
  const Tensor a = Tensor::Int64({2, 2}, {7, -7, 9, -9});
  const Tensor b = Tensor::Int64({2}, {2, -2});
  ExpectInts(RunOp("Add", {a, b}), DType::kInt64, {2, 2}, {9, -9, 11, -11});
  ExpectInts(RunOp("Sub", {a, b}), DType::kInt64, {2, 2}, {5, -5, 7, -7});
  ExpectInts(RunOp("Mul", {a, b}), DType::kInt64, {2, 2}, {14, 14, 18, 18});
  // Truncation toward zero: 7/2 = 3, -7/-2 = 3, 9/2 = 4, -9/-2 = 4; and -7/2 = -3.
  ExpectInts(RunOp("Div", {a, b}), DType::kInt64, {2, 2}, {3, 3, 4, 4});
  ExpectInts(RunOp("Div", {Tensor::Int64({2}, {-7, 7}), Tensor::Int64({}, {2})}), DType::kInt64,
             {2}, {-3, 3});
  EXPECT_TRUE(Contains(OpError("Div", {a, Tensor::Int64({2}, {1, 0})}), "division by zero"));
  // Float division by zero is IEEE's.
  const Tensor q = RunOp("Div", {Tensor::Float({2}, {1, -1}), Tensor::Float({}, {0})});
  EXPECT_TRUE(std::isinf(q.f[0]) && q.f[0] > 0);
  EXPECT_TRUE(std::isinf(q.f[1]) && q.f[1] < 0);
}

TEST(Elementwise, PowMixesFloatAndInt64Operands) {
  ExpectNear(RunOp("Pow", {Tensor::Float({3}, {2, 4, -3}), Tensor::Float({3}, {3, 0.5f, 2})}), {3},
             {8, 2, 9});
  // Float base, int64 exponent: float result.
  ExpectNear(RunOp("Pow", {Tensor::Float({2}, {2, 1.5f}), Tensor::Int64({}, {2})}), {2},
             {4, 2.25f});
  // int64 base: int64 result, truncated for a fractional exponent (10^0.5 = 3.16).
  ExpectInts(RunOp("Pow", {Tensor::Int64({3}, {2, 3, -2}), Tensor::Int64({}, {3})}), DType::kInt64,
             {3}, {8, 27, -8});
  ExpectInts(RunOp("Pow", {Tensor::Int64({2}, {4, 10}), Tensor::Float({}, {0.5f})}), DType::kInt64,
             {2}, {2, 3});
}

TEST(Elementwise, ComparisonsGiveBool) {
  const Tensor a = Tensor::Float({2, 2}, {1, 2, 3, 4});
  const Tensor b = Tensor::Float({2}, {2, 3});
  ExpectInts(RunOp("Equal", {a, b}), DType::kBool, {2, 2}, {0, 0, 0, 0});
  ExpectInts(RunOp("Greater", {a, b}), DType::kBool, {2, 2}, {0, 0, 1, 1});
  ExpectInts(RunOp("Less", {a, b}), DType::kBool, {2, 2}, {1, 1, 0, 0});
  ExpectInts(RunOp("Equal", {Tensor::Int64({3}, {1, 2, 3}), Tensor::Int64({}, {2})}), DType::kBool,
             {3}, {0, 1, 0});
  ExpectInts(RunOp("Greater", {Tensor::Int64({3}, {1, 2, 3}), Tensor::Int64({}, {2})}),
             DType::kBool, {3}, {0, 0, 1});
  ExpectInts(RunOp("Equal", {Tensor::Bool({2}, {0, 1}), Tensor::Bool({2}, {1, 1})}), DType::kBool,
             {2}, {0, 1});
  EXPECT_TRUE(Contains(OpError("Less", {Tensor::Bool({1}, {0}), Tensor::Bool({1}, {1})}),
                       "Less takes float or int64"));
}

TEST(Elementwise, BinaryErrorsNameTheProblem) {
  const std::string shapes = OpError("Add", {Tensor::Float({2, 3}), Tensor::Float({4})});
  EXPECT_TRUE(Contains(shapes, "(Add)"));
  EXPECT_TRUE(Contains(shapes, "shapes [2, 3] and [4] do not broadcast"));
  EXPECT_TRUE(Contains(OpError("Mul", {Tensor::Float({2}), Tensor::Int64({2})}),
                       "different types: float and int64"));
  EXPECT_TRUE(Contains(OpError("Add", {Tensor::Bool({2}), Tensor::Bool({2})}),
                       "input 0 'x0' is bool; Add takes float or int64"));
  EXPECT_TRUE(Contains(OpError("Add", {Tensor::Float({2})}), "input 1 is missing"));
}

TEST(Elementwise, LegacyBroadcastAlignsBFromAxis) {
  // Opset 6, broadcast = 1, axis = 1: B [3] lines up with A's axis 1 of [2, 3, 2].
  const Tensor a = Tensor::Float({2, 3, 2}, {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11});
  const Tensor b = Tensor::Float({3}, {100, 200, 300});
  ExpectNear(RunOp("Add <broadcast = 1, axis = 1>", {a, b}, 6), {2, 3, 2},
             {100, 101, 202, 203, 304, 305, 106, 107, 208, 209, 310, 311});
  // Without axis, B lines up with A's trailing dims, as in numpy.
  ExpectNear(RunOp("Mul <broadcast = 1>", {a, Tensor::Float({2}, {1, -1})}, 6), {2, 3, 2},
             {0, -1, 2, -3, 4, -5, 6, -7, 8, -9, 10, -11});
}

TEST(Elementwise, VariadicOpsBroadcastAcrossAllInputs) {
  const Tensor a = Tensor::Float({2, 1}, {1, 2});
  const Tensor b = Tensor::Float({3}, {10, 20, 30});
  const Tensor c = Tensor::Float({}, {-4});
  // Element (i, j) combines a[i], b[j] and c.
  std::vector<float> sum, mean, mx, mn;
  for (int i = 0; i < 2; ++i) {
    for (int j = 0; j < 3; ++j) {
      const float v[3] = {a.f[i], b.f[j], c.f[0]};
      sum.push_back(v[0] + v[1] + v[2]);
      mean.push_back((v[0] + v[1] + v[2]) / 3);
      mx.push_back(std::max({v[0], v[1], v[2]}));
      mn.push_back(std::min({v[0], v[1], v[2]}));
    }
  }
  ExpectNear(RunOp("Sum", {a, b, c}), {2, 3}, sum);
  ExpectNear(RunOp("Mean", {a, b, c}), {2, 3}, mean);
  ExpectNear(RunOp("Max", {a, b, c}), {2, 3}, mx);
  ExpectNear(RunOp("Min", {a, b, c}), {2, 3}, mn);
  ExpectNear(RunOp("Max", {Tensor::Float({2}, {1, -1})}), {2}, {1, -1});  // one input
  ExpectInts(RunOp("Max", {Tensor::Int64({3}, {1, 5, -2}), Tensor::Int64({}, {0})}), DType::kInt64,
             {3}, {1, 5, 0});
  ExpectInts(RunOp("Sum", {Tensor::Int64({2}, {1, 5}), Tensor::Int64({2}, {3, 4})}), DType::kInt64,
             {2}, {4, 9});
  EXPECT_TRUE(Contains(OpError("Mean", {Tensor::Int64({2})}), "Mean takes float"));
  EXPECT_TRUE(Contains(OpError("Sum", {a, b, Tensor::Float({4})}), "do not broadcast"));
  EXPECT_TRUE(Contains(OpError("Min", {a, Tensor::Int64({1})}), "different types"));
}

TEST(Elementwise, WhereBroadcastsThreeInputs) {
  // cond [2, 1], X [3], Y scalar: row 0 takes X, row 1 takes Y.
  const Tensor cond = Tensor::Bool({2, 1}, {1, 0});
  ExpectNear(RunOp("Where", {cond, Tensor::Float({3}, {1, 2, 3}), Tensor::Float({}, {-1})}), {2, 3},
             {1, 2, 3, -1, -1, -1});
  ExpectInts(RunOp("Where", {Tensor::Bool({3}, {0, 1, 0}), Tensor::Int64({3}, {1, 2, 3}),
                             Tensor::Int64({3}, {7, 8, 9})}),
             DType::kInt64, {3}, {7, 2, 9});
  EXPECT_TRUE(
      Contains(OpError("Where", {Tensor::Float({1}), Tensor::Float({1}), Tensor::Float({1})}),
               "input 0 'x0' is float; Where takes bool"));
  EXPECT_TRUE(Contains(OpError("Where", {cond, Tensor::Float({3}), Tensor::Float({4})}),
                       "do not broadcast"));
}

// ---- Unary -------------------------------------------------------------------------------------

// Runs `op` on `x` and compares with fn applied to each element.
void ExpectUnary(const std::string& op, const std::vector<float>& x,
                 const std::function<double(double)>& fn, float tol = 1e-5f) {
  SCOPED_TRACE(op);
  std::vector<float> want;
  for (float v : x) want.push_back(float(fn(v)));
  ExpectNear(RunOp(op, {Tensor::Float({static_cast<int64_t>(x.size())}, x)}),
             {static_cast<int64_t>(x.size())}, want, tol);
}

const std::vector<float> kSigned = {-3.5f, -1, -0.25f, 0, 0.25f, 1, 2.5f, 6};
const std::vector<float> kPositive = {0.01f, 0.5f, 1, 2, 9, 100};

TEST(Elementwise, UnaryMaths) {
  ExpectUnary("Neg", kSigned, [](double x) { return -x; });
  ExpectUnary("Abs", kSigned, [](double x) { return x < 0 ? -x : x; });
  ExpectUnary("Exp", kSigned, [](double x) { return std::exp(x); });
  ExpectUnary("Log", kPositive, [](double x) { return std::log(x); });
  ExpectUnary("Sqrt", kPositive, [](double x) { return std::sqrt(x); });
  ExpectUnary("Reciprocal", {-4, -0.5f, 0.25f, 3}, [](double x) { return 1 / x; });
  ExpectUnary("Erf", kSigned, [](double x) { return std::erf(x); });
  // Hand values.
  ExpectNear(RunOp("Floor", {Tensor::Float({4}, {-1.5f, -0.5f, 0.5f, 2})}), {4}, {-2, -1, 0, 2});
  ExpectNear(RunOp("Ceil", {Tensor::Float({4}, {-1.5f, -0.5f, 0.5f, 2})}), {4}, {-1, 0, 1, 2});
  ExpectNear(RunOp("Erf", {Tensor::Float({2}, {0.5f, -1})}), {2}, {0.5204999f, -0.8427008f});
  ExpectNear(RunOp("Sqrt", {Tensor::Float({}, {-1})}), {}, {NAN});
  ExpectInts(RunOp("Neg", {Tensor::Int64({2}, {3, -4})}), DType::kInt64, {2}, {-3, 4});
  ExpectInts(RunOp("Abs", {Tensor::Int64({2}, {3, -4})}), DType::kInt64, {2}, {3, 4});
  ExpectInts(RunOp("Not", {Tensor::Bool({2}, {0, 1})}), DType::kBool, {2}, {1, 0});
  EXPECT_TRUE(Contains(OpError("Exp", {Tensor::Int64({1})}), "Exp takes float"));
  EXPECT_TRUE(Contains(OpError("Not", {Tensor::Float({1})}), "Not takes bool"));
}

// ---- Activations -------------------------------------------------------------------------------

TEST(Elementwise, ActivationsWithDefaultAttributes) {
  const double selu_a = 1.67326319217681884765625, selu_g = 1.05070102214813232421875;
  ExpectUnary("Relu", kSigned, [](double x) { return x > 0 ? x : 0; });
  ExpectUnary("LeakyRelu", kSigned, [](double x) { return x >= 0 ? x : 0.01 * x; });
  ExpectUnary("Elu", kSigned, [](double x) { return x >= 0 ? x : std::exp(x) - 1; });
  ExpectUnary("Selu", kSigned, [&](double x) {
    return x > 0 ? selu_g * x : selu_g * (selu_a * std::exp(x) - selu_a);
  });
  ExpectUnary("Celu", kSigned,
              [](double x) { return std::max(0.0, x) + std::min(0.0, std::exp(x) - 1); });
  ExpectUnary("Sigmoid", kSigned, [](double x) { return 1 / (1 + std::exp(-x)); });
  ExpectUnary("HardSigmoid", kSigned,
              [](double x) { return std::max(0.0, std::min(1.0, 0.2 * x + 0.5)); });
  ExpectUnary("HardSwish", kSigned,
              [](double x) { return x * std::max(0.0, std::min(1.0, x / 6 + 0.5)); });
  ExpectUnary("Tanh", kSigned, [](double x) { return std::tanh(x); });
  ExpectUnary("Softplus", kSigned, [](double x) { return std::log(std::exp(x) + 1); });
  ExpectUnary("Softsign", kSigned, [](double x) { return x / (1 + std::fabs(x)); });
  ExpectUnary("ThresholdedRelu", kSigned, [](double x) { return x > 1 ? x : 0; });
  ExpectUnary("Mish", kSigned, [](double x) { return x * std::tanh(std::log(1 + std::exp(x))); });
  ExpectUnary("Gelu", kSigned,
              [](double x) { return 0.5 * x * (1 + std::erf(x / std::sqrt(2.0))); });
  // Hand values: sigmoid(0) = 1/2, hardswish(1) = 1 · (1/6 + 1/2), selu(-1) = γ·α·(1/e - 1),
  // gelu(1) = Φ(1) = 0.8413447, softplus(0) = ln 2.
  ExpectNear(RunOp("Sigmoid", {Tensor::Float({}, {0})}), {}, {0.5f});
  ExpectNear(RunOp("HardSwish", {Tensor::Float({}, {1})}), {}, {2.0f / 3});
  ExpectNear(RunOp("Selu", {Tensor::Float({}, {-1})}), {}, {-1.1113307f});
  ExpectNear(RunOp("Gelu", {Tensor::Float({}, {1})}), {}, {0.8413447f});
  ExpectNear(RunOp("Softplus", {Tensor::Float({}, {0})}), {}, {0.6931472f});
  ExpectInts(RunOp("Relu", {Tensor::Int64({3}, {-2, 0, 5})}), DType::kInt64, {3}, {0, 0, 5});
}

TEST(Elementwise, ActivationsWithAttributes) {
  ExpectNear(RunOp("LeakyRelu <alpha = 0.5>", {Tensor::Float({2}, {-2, 3})}), {2}, {-1, 3});
  ExpectNear(RunOp("Elu <alpha = 2.0>", {Tensor::Float({2}, {-1, 3})}), {2},
             {float(2 * (std::exp(-1.0) - 1)), 3});
  ExpectNear(RunOp("Selu <alpha = 2.0, gamma = 3.0>", {Tensor::Float({2}, {-1, 3})}), {2},
             {float(3 * (2 * std::exp(-1.0) - 2)), 9});
  // Celu with α = 2: max(0, x) + min(0, α(exp(x/α) - 1)).
  ExpectNear(RunOp("Celu <alpha = 2.0>", {Tensor::Float({2}, {-1, 3})}), {2},
             {float(2 * (std::exp(-0.5) - 1)), 3});
  ExpectNear(RunOp("HardSigmoid <alpha = 0.5, beta = 0.25>", {Tensor::Float({3}, {-1, 1, 2})}), {3},
             {0, 0.75f, 1});
  ExpectNear(RunOp("ThresholdedRelu <alpha = 0.5>", {Tensor::Float({3}, {0.4f, 0.5f, 0.6f})}), {3},
             {0, 0, 0.6f});
  // Gelu's tanh form: 0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³))).
  std::vector<float> want;
  for (float x : kSigned) {
    want.push_back(
        float(0.5 * x * (1 + std::tanh(std::sqrt(2 / M_PI) * (x + 0.044715 * x * x * x)))));
  }
  ExpectNear(RunOp("Gelu <approximate = \"tanh\">", {Tensor::Float({8}, kSigned)}), {8}, want);
  ExpectNear(RunOp("Gelu <approximate = \"tanh\">", {Tensor::Float({}, {1})}), {}, {0.8411920f});
  EXPECT_TRUE(Contains(OpError("Gelu <approximate = \"fast\">", {Tensor::Float({1})}),
                       "approximate = 'fast'; expected 'none' or 'tanh'"));
}

TEST(Elementwise, ActivationsStayFiniteAtTheExtremes) {
  const Tensor x = Tensor::Float({2}, {-100, 100});
  ExpectNear(RunOp("Sigmoid", {x}), {2}, {0, 1});
  EXPECT_GT(RunOp("Sigmoid", {x}).f[0], 0.0f);  // e^-100, not 0/0
  ExpectNear(RunOp("Softplus", {x}), {2}, {0, 100});
  ExpectNear(RunOp("Mish", {x}), {2}, {0, 100});
  ExpectNear(RunOp("Tanh", {x}), {2}, {-1, 1});
}

TEST(Elementwise, PReluSlopeBroadcastsToX) {
  const Tensor x = Tensor::Float({2, 3}, {-1, 2, -3, 4, -5, 6});
  ExpectNear(RunOp("PRelu", {x, Tensor::Float({3}, {0.1f, 0.2f, 0.3f})}), {2, 3},
             {-0.1f, 2, -0.9f, 4, -1, 6});
  ExpectNear(RunOp("PRelu", {x, Tensor::Float({2, 1}, {0.5f, 2})}), {2, 3},
             {-0.5f, 2, -1.5f, 4, -10, 6});
  ExpectNear(RunOp("PRelu", {x, Tensor::Float({}, {0.25f})}), {2, 3},
             {-0.25f, 2, -0.75f, 4, -1.25f, 6});
  // Broadcasting is one-way: the slope may not grow X.
  EXPECT_TRUE(Contains(OpError("PRelu", {x, Tensor::Float({2})}),
                       "slope [2] does not broadcast to X [2, 3]"));
  EXPECT_TRUE(Contains(OpError("PRelu", {x, Tensor::Float({2, 2, 3})}),
                       "slope [2, 2, 3] does not broadcast to X [2, 3]"));
}

TEST(Elementwise, ClipBoundsAreInputsFromOpset11AndAttributesBefore) {
  const Tensor x = Tensor::Float({5}, {-3, -1, 0, 2, 5});
  const Tensor lo = Tensor::Float({}, {-1}), hi = Tensor::Float({}, {2});
  ExpectNear(RunOp("Clip", {x, lo, hi}, 13), {5}, {-1, -1, 0, 2, 2});
  ExpectNear(RunOp("Clip", {x, hi}, 13, "x0, , x1"), {5}, {-3, -1, 0, 2, 2});  // max only
  ExpectNear(RunOp("Clip", {x, lo}, 13), {5}, {-1, -1, 0, 2, 5});              // min only
  ExpectNear(RunOp("Clip", {x}, 13), {5}, {-3, -1, 0, 2, 5});
  ExpectNear(RunOp("Clip", {x, hi, lo}, 13), {5}, {-1, -1, -1, -1, -1});  // min > max: max
  ExpectNear(RunOp("Clip", {x, Tensor::Float({1}, {0})}, 11), {5}, {0, 0, 0, 2, 5});
  ExpectInts(
      RunOp("Clip",
            {Tensor::Int64({3}, {-5, 1, 9}), Tensor::Int64({}, {0}), Tensor::Int64({}, {4})}, 13),
      DType::kInt64, {3}, {0, 1, 4});
  EXPECT_TRUE(Contains(OpError("Clip", {x, Tensor::Float({2}, {0, 1})}, 13),
                       "min must be a scalar, is [2]"));
  EXPECT_TRUE(Contains(OpError("Clip", {x, Tensor::Int64({}, {0})}, 13),
                       "input 1 'x1' is int64; Clip takes float"));
  // Opset 6: attributes, unbounded when absent.
  ExpectNear(RunOp("Clip <min = -1.0, max = 2.0>", {x}, 6), {5}, {-1, -1, 0, 2, 2});
  ExpectNear(RunOp("Clip <max = 0.0>", {x}, 6), {5}, {-3, -1, 0, 0, 0});
  ExpectNear(RunOp("Clip", {x}, 6), {5}, {-3, -1, 0, 2, 5});
}

// ---- Cast --------------------------------------------------------------------------------------

TEST(Elementwise, CastFollowsTheTargetType) {
  using P = onnx::TensorProto;
  auto cast = [](const Tensor& x, int to) {
    return RunOp("Cast <to = " + std::to_string(to) + ">", {x});
  };
  const Tensor x = Tensor::Float({5}, {-2.7f, -0.5f, 0.5f, 2.7f, 0});
  ExpectInts(cast(x, P::INT64), DType::kInt64, {5}, {-2, 0, 0, 2, 0});
  ExpectInts(cast(x, P::INT32), DType::kInt64, {5}, {-2, 0, 0, 2, 0});
  ExpectInts(cast(x, P::BOOL), DType::kBool, {5}, {1, 1, 1, 1, 0});
  ExpectNear(cast(x, P::DOUBLE), {5}, x.f, 0);
  // Narrow integer types wrap: 300 -> int8 44, -1 -> uint8 255.
  ExpectInts(cast(Tensor::Float({2}, {300, -1}), P::INT8), DType::kInt64, {2}, {44, -1});
  ExpectInts(cast(Tensor::Float({2}, {300, -1}), P::UINT8), DType::kInt64, {2}, {44, 255});
  ExpectInts(cast(Tensor::Int64({1}, {70000}), P::INT16), DType::kInt64, {1}, {4464});
  // float16 and bfloat16 round to their precision: 1/3 is 0x3555 = 0.333251953125 in binary16
  // and 0x3eab = 0.333984375 in bfloat16.
  ExpectNear(cast(Tensor::Float({1}, {1.0f / 3}), P::FLOAT16), {1}, {0.333251953125f}, 0);
  ExpectNear(cast(Tensor::Float({1}, {1.0f / 3}), P::BFLOAT16), {1}, {0.333984375f}, 0);
  ExpectNear(cast(Tensor::Int64({2}, {-3, 5}), P::FLOAT), {2}, {-3, 5});
  ExpectNear(cast(Tensor::Bool({2}, {1, 0}), P::FLOAT), {2}, {1, 0});
  ExpectInts(cast(Tensor::Int64({3}, {-3, 0, 5}), P::BOOL), DType::kBool, {3}, {1, 0, 1});
  EXPECT_TRUE(Contains(OpError("Cast <to = 8>", {x}), "cast to STRING is not supported"));
  EXPECT_TRUE(Contains(OpError("Cast", {x}), "attribute 'to' is missing"));
  // CastLike takes the second input's type.
  ExpectInts(RunOp("CastLike", {x, Tensor::Int64({})}), DType::kInt64, {5}, {-2, 0, 0, 2, 0});
  ExpectNear(RunOp("CastLike", {Tensor::Bool({2}, {1, 0}), Tensor::Float({1})}), {2}, {1, 0});
}

// ---- Softmax -----------------------------------------------------------------------------------

// Softmax over each group of `len` elements `stride` apart, straight from the definition.
std::vector<float> SoftmaxRef(const std::vector<float>& x, int64_t len, int64_t stride, bool log) {
  std::vector<float> y(x.size());
  for (size_t base = 0; base < x.size(); ++base) {
    // Groups start at offsets whose position along the axis is 0.
    if ((base / stride) % len != 0) continue;
    double sum = 0;
    for (int64_t j = 0; j < len; ++j) sum += std::exp(double(x[base + j * stride]));
    for (int64_t j = 0; j < len; ++j) {
      const double v = std::exp(double(x[base + j * stride])) / sum;
      y[base + j * stride] = float(log ? std::log(v) : v);
    }
  }
  return y;
}

TEST(Elementwise, SoftmaxAlongAxisFromOpset13) {
  std::vector<float> v(24);
  for (size_t k = 0; k < v.size(); ++k) v[k] = std::sin(float(k)) * 3;
  const Tensor x = Tensor::Float({2, 3, 4}, v);
  ExpectNear(RunOp("Softmax", {x}, 13), {2, 3, 4}, SoftmaxRef(v, 4, 1, false));
  ExpectNear(RunOp("LogSoftmax", {x}, 13), {2, 3, 4}, SoftmaxRef(v, 4, 1, true));
  ExpectNear(RunOp("Softmax <axis = 1>", {x}, 13), {2, 3, 4}, SoftmaxRef(v, 3, 4, false));
  ExpectNear(RunOp("LogSoftmax <axis = -3>", {x}, 13), {2, 3, 4}, SoftmaxRef(v, 2, 12, true));
  // By hand: softmax(0, ln 3) = (1/4, 3/4).
  ExpectNear(RunOp("Softmax", {Tensor::Float({2}, {0, std::log(3.0f)})}, 13), {2}, {0.25f, 0.75f});
}

TEST(Elementwise, SoftmaxBeforeOpset13FlattensAtAxis) {
  std::vector<float> v(24);
  for (size_t k = 0; k < v.size(); ++k) v[k] = std::cos(float(k)) * 2;
  const Tensor x = Tensor::Float({2, 3, 4}, v);
  // Default axis 1: each batch row's 12 values together.
  ExpectNear(RunOp("Softmax", {x}, 11), {2, 3, 4}, SoftmaxRef(v, 12, 1, false));
  ExpectNear(RunOp("LogSoftmax", {x}, 11), {2, 3, 4}, SoftmaxRef(v, 12, 1, true));
  // axis 2: rows of 4, the same as opset 13's last axis.
  ExpectNear(RunOp("Softmax <axis = 2>", {x}, 11), {2, 3, 4}, SoftmaxRef(v, 4, 1, false));
  ExpectNear(RunOp("Softmax <axis = 0>", {x}, 11), {2, 3, 4}, SoftmaxRef(v, 24, 1, false));
  // The same node differs across the opsets: opset 13's default axis is the last.
  const Tensor small = Tensor::Float({1, 2, 2}, {0, 0, 0, std::log(2.0f)});
  ExpectNear(RunOp("Softmax <axis = 1>", {small}, 11), {1, 2, 2}, {0.2f, 0.2f, 0.2f, 0.4f});
  ExpectNear(RunOp("Softmax <axis = 1>", {small}, 13), {1, 2, 2}, {0.5f, 1.0f / 3, 0.5f, 2.0f / 3});
}

TEST(Elementwise, SoftmaxIsStableAndChecksTheAxis) {
  // exp(1000) overflows float; shifted by the max it does not. e/(1+e) = 0.7310586.
  const Tensor big = Tensor::Float({2}, {1000, 1001});
  ExpectNear(RunOp("Softmax", {big}), {2}, {0.2689414f, 0.7310586f});
  ExpectNear(RunOp("LogSoftmax", {big}), {2}, {-1.3132616f, -0.3132616f});
  ExpectNear(RunOp("LogSoftmax", {Tensor::Float({2}, {-1000, 0})}), {2}, {-1000, 0});
  EXPECT_TRUE(Contains(OpError("Softmax <axis = 2>", {Tensor::Float({2, 2})}),
                       "axis 2 is out of range for rank 2"));
  EXPECT_TRUE(Contains(OpError("Softmax", {Tensor::Int64({2})}), "Softmax takes float"));
}

// ---- Reductions --------------------------------------------------------------------------------

const Tensor kM23 = Tensor::Float({2, 3}, {1, 2, 3, 4, 5, 6});

TEST(Elementwise, ReductionsByHand) {
  ExpectNear(RunOp("ReduceSum <axes = [1]>", {kM23}, 11), {2, 1}, {6, 15});
  ExpectNear(RunOp("ReduceSum <axes = [0], keepdims = 0>", {kM23}, 11), {3}, {5, 7, 9});
  ExpectNear(RunOp("ReduceSum", {kM23}, 11), {1, 1}, {21});
  ExpectNear(RunOp("ReduceSum <keepdims = 0>", {kM23}, 11), {}, {21});
  ExpectNear(RunOp("ReduceMean <axes = [-1], keepdims = 0>", {kM23}), {2}, {2, 5});
  ExpectNear(RunOp("ReduceMean", {kM23}), {1, 1}, {3.5f});
  ExpectNear(RunOp("ReduceMax <axes = [1]>", {kM23}), {2, 1}, {3, 6});
  ExpectNear(RunOp("ReduceMin <axes = [0]>", {kM23}), {1, 3}, {1, 2, 3});
  ExpectNear(RunOp("ReduceSumSquare <axes = [1]>", {kM23}), {2, 1}, {14, 77});
  ExpectNear(RunOp("ReduceMax <axes = [0, 1], keepdims = 0>", {kM23}), {}, {6});
  ExpectInts(
      RunOp("ReduceSum <axes = [1], keepdims = 0>", {Tensor::Int64({2, 2}, {1, 2, 3, 4})}, 11),
      DType::kInt64, {2}, {3, 7});
  ExpectInts(RunOp("ReduceMax <axes = [0], keepdims = 0>", {Tensor::Int64({2, 2}, {1, 7, 3, 4})}),
             DType::kInt64, {2}, {3, 7});
}

TEST(Elementwise, ReductionsOverTwoAxesMatchLoops) {
  // x [2, 3, 4] reduced over axes 0 and 2: out[j] combines x[i, j, k] for all i, k.
  std::vector<float> v(24);
  for (size_t k = 0; k < v.size(); ++k) v[k] = std::sin(0.7f * float(k)) * 4;
  const Tensor x = Tensor::Float({2, 3, 4}, v);
  std::vector<float> sum(3, 0), sq(3, 0), mx(3, -1e9f), mn(3, 1e9f);
  for (int i = 0; i < 2; ++i) {
    for (int j = 0; j < 3; ++j) {
      for (int k = 0; k < 4; ++k) {
        const float e = v[i * 12 + j * 4 + k];
        sum[j] += e;
        sq[j] += e * e;
        mx[j] = std::max(mx[j], e);
        mn[j] = std::min(mn[j], e);
      }
    }
  }
  std::vector<float> mean = sum;
  for (float& m : mean) m /= 8;
  ExpectNear(RunOp("ReduceSum <axes = [0, 2]>", {x}, 11), {1, 3, 1}, sum);
  ExpectNear(RunOp("ReduceMean <axes = [2, 0], keepdims = 0>", {x}), {3}, mean);
  ExpectNear(RunOp("ReduceSumSquare <axes = [0, -1], keepdims = 0>", {x}), {3}, sq);
  ExpectNear(RunOp("ReduceMax <axes = [0, 2], keepdims = 0>", {x}), {3}, mx);
  ExpectNear(RunOp("ReduceMin <axes = [-3, 2], keepdims = 0>", {x}), {3}, mn);
}

TEST(Elementwise, ReduceSumTakesAxesAsAnInputFromOpset13) {
  ExpectNear(RunOp("ReduceSum <keepdims = 0>", {kM23}, 13, "x0, axes", {{"axes", {-1}}}), {2},
             {6, 15});
  ExpectNear(RunOp("ReduceSum", {kM23}, 13, "x0, axes", {{"axes", {0}}}), {1, 3}, {5, 7, 9});
  ExpectNear(RunOp("ReduceSum", {kM23}, 13), {1, 1}, {21});  // no axes: all
  // noop_with_empty_axes: no axes reduce nothing.
  ExpectNear(RunOp("ReduceSum <noop_with_empty_axes = 1>", {kM23}, 13), {2, 3}, kM23.f);
  ExpectNear(RunOp("ReduceSum <noop_with_empty_axes = 1>", {kM23}, 13, "x0, axes", {{"axes", {1}}}),
             {2, 1}, {6, 15});
  // axes moved: an attribute at opset 13, or an input at 11, is refused rather than ignored.
  EXPECT_TRUE(Contains(OpError("ReduceSum <axes = [1]>", {kM23}, 13),
                       "axes is an input from opset 13, not an attribute"));
  EXPECT_TRUE(Contains(OpError("ReduceSum", {kM23, Tensor::Int64({1}, {1})}, 11),
                       "axes is an attribute before opset 13, not an input"));
  EXPECT_TRUE(Contains(OpError("ReduceMean", {kM23, Tensor::Int64({1}, {1})}, 17),
                       "axes is an attribute before opset 18, not an input"));
}

TEST(Elementwise, ReductionErrors) {
  EXPECT_TRUE(
      Contains(OpError("ReduceMean <axes = [2]>", {kM23}), "axis 2 is out of range for rank 2"));
  EXPECT_TRUE(
      Contains(OpError("ReduceSum <axes = [1, -1]>", {kM23}, 11), "axis -1 is listed twice"));
  EXPECT_TRUE(
      Contains(OpError("ReduceMax", {Tensor::Bool({2})}), "ReduceMax takes float or int64"));
  // An empty reduction gives the identity; a float mean of nothing is NaN.
  ExpectNear(RunOp("ReduceSum <axes = [1], keepdims = 0>", {Tensor::Float({2, 0})}, 11), {2},
             {0, 0});
  ExpectNear(RunOp("ReduceMean <axes = [1], keepdims = 0>", {Tensor::Float({2, 0})}), {2},
             {NAN, NAN});
}

TEST(Elementwise, ArgMaxAndArgMin) {
  const Tensor x = Tensor::Float({2, 3}, {1, 5, 5, 7, 2, 7});
  ExpectInts(RunOp("ArgMax <axis = 1>", {x}), DType::kInt64, {2, 1}, {1, 0});
  ExpectInts(RunOp("ArgMax <axis = -1, select_last_index = 1>", {x}), DType::kInt64, {2, 1},
             {2, 2});
  ExpectInts(RunOp("ArgMax <keepdims = 0>", {x}), DType::kInt64, {3}, {1, 0, 1});  // axis 0
  ExpectInts(RunOp("ArgMin <axis = 1, keepdims = 0>", {x}), DType::kInt64, {2}, {0, 1});
  ExpectInts(RunOp("ArgMin", {x}), DType::kInt64, {1, 3}, {0, 1, 0});
  ExpectInts(
      RunOp("ArgMin <axis = 0, select_last_index = 1>", {Tensor::Int64({2, 2}, {3, 4, 3, 1})}),
      DType::kInt64, {1, 2}, {1, 1});
  EXPECT_TRUE(Contains(OpError("ArgMax <axis = 2>", {x}), "axis 2 is out of range for rank 2"));
  EXPECT_TRUE(Contains(OpError("ArgMax <axis = 1>", {Tensor::Float({2, 0})}), "has size 0"));
}

// ---- Size and threads --------------------------------------------------------------------------

TEST(Elementwise, LargeInputsMatchLoopsAndDoNotDependOnTheThreadCount) {
  // Several 64 Ki pieces: [600, 500] with [500], [600, 1] and per-row reductions.
  const int64_t rows = 600, cols = 500;
  std::vector<float> a(rows * cols), b(cols), c(rows);
  for (size_t k = 0; k < a.size(); ++k) a[k] = std::sin(0.001f * float(k)) * 5;
  for (size_t k = 0; k < b.size(); ++k) b[k] = std::cos(0.01f * float(k));
  for (size_t k = 0; k < c.size(); ++k) c[k] = float(k % 7) - 3;
  const std::vector<Tensor> in = {Tensor::Float({rows, cols}, a), Tensor::Float({cols}, b),
                                  Tensor::Float({rows, 1}, c)};
  std::map<int, std::vector<Tensor>> by_threads;
  for (int threads : {1, 3}) {
    SetThreadCount(threads);
    by_threads[threads] = {RunOp("Sum", in), RunOp("Softmax", {in[0]}),
                           RunOp("ReduceMean <axes = [1]>", {in[0]}), RunOp("Tanh", {in[0]})};
  }
  SetThreadCount(0);
  const auto& r = by_threads[3];
  for (size_t k = 0; k < r.size(); ++k) EXPECT_EQ(by_threads[1][k].f, r[k].f) << "output " << k;
  for (int64_t i = 0; i < rows; i += 61) {
    double sum = 0, exp_sum = 0;
    for (int64_t j = 0; j < cols; ++j) {
      sum += a[i * cols + j];
      exp_sum += std::exp(double(a[i * cols + j]));
    }
    EXPECT_NEAR(r[2].f[i], sum / cols, 1e-5) << i;
    for (int64_t j = 0; j < cols; j += 53) {
      const float e = a[i * cols + j];
      EXPECT_NEAR(r[0].f[i * cols + j], e + b[j] + c[i], 1e-5) << i << "," << j;
      EXPECT_NEAR(r[1].f[i * cols + j], std::exp(double(e)) / exp_sum, 1e-7) << i << "," << j;
      EXPECT_NEAR(r[3].f[i * cols + j], std::tanh(e), 1e-6) << i << "," << j;
    }
  }
}

}  // namespace
}  // namespace executor_elementwise_test
}  // namespace reinit::exec
