// Signal propagation: the random inputs (shapes, ids, determinism, their distribution) and the
// per-layer moments, checked against moments computed in the test from the same feeds.
#include "signal/propagate.h"

#include <gtest/gtest.h>

#include <cmath>

#include "model_builder.h"
#include "plan/plan.h"
#include "stats.h"
#include "test_util.h"

namespace reinit {
namespace propagate_test {
namespace {

using exec::Executor;
using exec::Tensor;

onnx::ModelProto WithFloats(
    const std::string& text,
    const std::map<std::string, std::pair<std::vector<int64_t>, std::vector<float>>>& floats) {
  onnx::ModelProto m = reinit_test::ParseModel(text);
  for (const auto& [name, dv] : floats) {
    auto* t = m.mutable_graph()->add_initializer();
    t->set_name(name);
    t->set_data_type(onnx::TensorProto::FLOAT);
    for (int64_t d : dv.first) t->add_dims(d);
    for (float v : dv.second) t->add_float_data(v);
  }
  return m;
}

std::vector<float> Scaled(int n, float s) {  // s · identity, n x n
  std::vector<float> w(static_cast<size_t>(n * n), 0.0f);
  for (int k = 0; k < n; ++k) w[static_cast<size_t>(k * n + k)] = s;
  return w;
}

std::unique_ptr<Executor> Make(const onnx::ModelProto& m) {
  auto e = Executor::Create(m);
  EXPECT_TRUE(e.ok()) << e.status().message();
  return e.ok() ? std::move(*e) : nullptr;
}

TEST(RandomInputs, SymbolicBatchTakesTheBatchAndValuesAreStandardNormal) {
  auto m = WithFloats(R"(<ir_version: 8, opset_import: ["" : 17]>
g (float[N, 64] x) => (float[N, 64] y) { y = MatMul (x, w) })",
                      {{"w", {{64, 64}, Scaled(64, 1)}}});
  auto e = Make(m);
  ASSERT_NE(e, nullptr);
  PropagateOptions o;
  o.batch = 100;
  auto feeds = RandomInputs(*e, o);
  ASSERT_TRUE(feeds.ok()) << feeds.status().message();
  const Tensor& x = feeds->at("x");
  EXPECT_EQ(x.shape, (std::vector<int64_t>{100, 64}));
  // 6400 draws: the mean within 5 standard errors of 0, the variance within 5 of 1
  // (the variance of a sample variance of N(0, 1) is 2 / n).
  const double n = static_cast<double>(x.f.size());
  const Moments mo = MomentsOf(x);
  EXPECT_NEAR(mo.mean, 0.0, 5.0 / std::sqrt(n));
  EXPECT_NEAR(mo.std * mo.std, 1.0, 5.0 * std::sqrt(2.0 / n));
  // Same seed, same values; another seed, others.
  EXPECT_EQ(RandomInputs(*e, o)->at("x").f, x.f);
  o.seed = 1;
  EXPECT_NE(RandomInputs(*e, o)->at("x").f, x.f);
}

TEST(RandomInputs, OtherSymbolicDimsNeedAShapeThatAgreesWithTheDeclaredDims) {
  auto m = WithFloats(R"(<ir_version: 8, opset_import: ["" : 17]>
g (float[N, T, 4] x) => (float[N, T, 4] y) { y = MatMul (x, w) })",
                      {{"w", {{4, 4}, Scaled(4, 1)}}});
  auto e = Make(m);
  ASSERT_NE(e, nullptr);
  PropagateOptions o;
  auto missing = RandomInputs(*e, o);
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.status().code(), StatusCode::kUsage);
  EXPECT_NE(missing.status().message().find("input 'x' has the shape [N, T, 4]: give dim 1"),
            std::string::npos)
      << missing.status().message();
  o.input_shapes["x"] = {2, 5, 4};
  auto given = RandomInputs(*e, o);
  ASSERT_TRUE(given.ok()) << given.status().message();
  EXPECT_EQ(given->at("x").shape, (std::vector<int64_t>{2, 5, 4}));
  o.input_shapes["x"] = {2, 5, 3};
  EXPECT_FALSE(RandomInputs(*e, o).ok());  // dim 2 is declared 4
  o.input_shapes["x"] = {2, 5};
  EXPECT_FALSE(RandomInputs(*e, o).ok());  // rank
  o.input_shapes.clear();
  o.input_shapes["nope"] = {1};
  auto unknown = RandomInputs(*e, o);
  ASSERT_FALSE(unknown.ok());
  EXPECT_NE(unknown.status().message().find("its inputs: 'x'"), std::string::npos);
}

TEST(RandomInputs, IdsForAnEmbeddingAreRowsOfItsTable) {
  auto m = WithFloats(R"(<ir_version: 8, opset_import: ["" : 17]>
g (int64[N, 50] ids) => (float[N, 50, 2] y) { y = Gather (table, ids) })",
                      {{"table", {{7, 2}, std::vector<float>(14, 1.0f)}}});
  auto e = Make(m);
  ASSERT_NE(e, nullptr);
  PropagateOptions o;
  o.batch = 40;
  auto feeds = RandomInputs(*e, o);
  ASSERT_TRUE(feeds.ok()) << feeds.status().message();
  const Tensor& ids = feeds->at("ids");
  EXPECT_EQ(ids.type, exec::DType::kInt64);
  std::vector<int> seen(7, 0);
  for (int64_t id : ids.i) {
    ASSERT_GE(id, 0);
    ASSERT_LT(id, 7);
    ++seen[static_cast<size_t>(id)];
  }
  // 2000 uniform ids over 7 rows: each count within 5 standard deviations of 2000/7.
  const double p = 1.0 / 7, n = 2000;
  for (int c : seen) EXPECT_NEAR(c, n * p, 5 * std::sqrt(n * p * (1 - p)));
}

TEST(RandomInputs, IntegersThatNoGatherReadsAreRefused) {
  auto m = reinit_test::ParseModel(R"(<ir_version: 8, opset_import: ["" : 17]>
g (int64[N, 4] x) => (int64[N, 4] y) { y = Identity (x) })");
  auto e = Make(m);
  ASSERT_NE(e, nullptr);
  auto feeds = RandomInputs(*e, PropagateOptions{});
  ASSERT_FALSE(feeds.ok());
  EXPECT_NE(feeds.status().message().find("input 'x' holds integers that no Gather reads"),
            std::string::npos);
}

TEST(Moments, OfAHandfulOfValues) {
  const Moments m = MomentsOf(Tensor::Float({4}, {1, 2, 3, 6}));
  EXPECT_DOUBLE_EQ(m.mean, 3.0);
  EXPECT_DOUBLE_EQ(m.std, std::sqrt((4.0 + 1 + 0 + 9) / 4));
  EXPECT_EQ(MomentsOf(Tensor::Int64({2}, {1, 2})).std, 0.0);
}

TEST(Propagate, MeasuresEachLayerInOrderAndTheRatio) {
  // Three linear layers: ×2, ×0.5, ×3 (scaled identities), so stds follow 2σ, σ, 3σ of x.
  auto m = WithFloats(R"(<ir_version: 8, opset_import: ["" : 17]>
g (float[N, 16] x) => (float[N, 16] y) {
  a = MatMul (x, w1)
  b = MatMul (a, w2)
  y = MatMul (b, w3)
})",
                      {{"w1", {{16, 16}, Scaled(16, 2)}},
                       {"w2", {{16, 16}, Scaled(16, 0.5f)}},
                       {"w3", {{16, 16}, Scaled(16, 3)}}});
  reinit_test::NameNodesAfterOutputs(&m);
  auto plan = MakePlan(m, PlanOptions{});
  ASSERT_TRUE(plan.ok()) << plan.status().message();
  auto e = Make(m);
  ASSERT_NE(e, nullptr);
  PropagateOptions o;
  o.batch = 32;
  auto feeds = RandomInputs(*e, o);
  ASSERT_TRUE(feeds.ok());
  const Moments x = MomentsOf(feeds->at("x"));
  auto signal = Propagate(*e, *plan, *feeds);
  ASSERT_TRUE(signal.ok()) << signal.status().message();
  ASSERT_EQ(signal->layers.size(), 3u);
  EXPECT_EQ(signal->layers[0].name, "a");
  EXPECT_EQ(signal->layers[2].name, "y");
  const double scale[] = {2, 1, 3};
  for (size_t k = 0; k < 3; ++k) {
    EXPECT_NEAR(signal->layers[k].before.std, scale[k] * x.std, 1e-5) << k;
    EXPECT_NEAR(signal->layers[k].before.mean, scale[k] * x.mean, 1e-5) << k;
    EXPECT_EQ(signal->layers[k].after.std, signal->layers[k].before.std);  // linear
  }
  EXPECT_NEAR(signal->ratio, 1.5, 1e-5);
  EXPECT_EQ(signal->inputs.at("x"), (std::vector<int64_t>{32, 16}));
}

}  // namespace
}  // namespace propagate_test
}  // namespace reinit
