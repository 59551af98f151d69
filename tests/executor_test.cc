// The reference executor: the graph runner (order, feeds, outputs, observers, freed values,
// refusals) and each op against values computed by hand in the test. Models are written in
// ONNX text syntax; constants go in as initializers with the values spelled out.
#include "signal/executor/executor.h"

#include <gtest/gtest.h>

#include <cmath>
#include <map>

#include "model_builder.h"
#include "signal/executor/ops.h"

namespace reinit::exec {
namespace executor_test {
namespace {

// Parses `text` and adds float initializers name -> (dims, values).
onnx::ModelProto Model(
    const std::string& text,
    const std::map<std::string, std::pair<std::vector<int64_t>, std::vector<float>>>& floats = {}) {
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

// Runs the model on the feeds and returns output `name`.
Tensor RunOne(const onnx::ModelProto& m, const std::map<std::string, Tensor>& feeds,
              const std::string& name = "y") {
  auto e = Executor::Create(m);
  EXPECT_TRUE(e.ok()) << e.status().message();
  if (!e.ok()) return {};
  auto out = (*e)->Run(feeds);
  EXPECT_TRUE(out.ok()) << out.status().message();
  if (!out.ok()) return {};
  return out->at(name);
}

void ExpectNear(const Tensor& t, const std::vector<int64_t>& shape,
                const std::vector<float>& values, float tol = 1e-5f) {
  EXPECT_EQ(t.shape, shape);
  ASSERT_EQ(t.f.size(), values.size());
  for (size_t k = 0; k < values.size(); ++k) {
    EXPECT_NEAR(t.f[k], values[k], tol * std::max(1.0f, std::fabs(values[k]))) << "element " << k;
  }
}

TEST(Executor, BroadcastShapeAndIndex) {
  EXPECT_EQ(*BroadcastShape({2, 1, 3}, {4, 1}), (std::vector<int64_t>{2, 4, 3}));
  EXPECT_EQ(*BroadcastShape({}, {5}), (std::vector<int64_t>{5}));
  EXPECT_FALSE(BroadcastShape({2, 3}, {4}).ok());
  // [2, 1] against [2, 3]: element (r, c) reads row r.
  EXPECT_EQ(BroadcastIndex({2, 1}, {2, 3}), (std::vector<int64_t>{0, 0, 0, 1, 1, 1}));
  // [3] against [2, 3]: element (r, c) reads c.
  EXPECT_EQ(BroadcastIndex({3}, {2, 3}), (std::vector<int64_t>{0, 1, 2, 0, 1, 2}));
  EXPECT_EQ(BroadcastIndex({}, {2, 2}), (std::vector<int64_t>{0, 0, 0, 0}));
}

TEST(Executor, MatMulTwoDimensional) {
  // [[1, 2], [3, 4]] · [[5, 6, 7], [8, 9, 10]] = [[21, 24, 27], [47, 54, 61]].
  auto m = Model(R"(<ir_version: 8, opset_import: ["" : 17]>
g (float[2, 2] x) => (float[2, 3] y) { y = MatMul (x, w) })",
                 {{"w", {{2, 3}, {5, 6, 7, 8, 9, 10}}}});
  ExpectNear(RunOne(m, {{"x", Tensor::Float({2, 2}, {1, 2, 3, 4})}}), {2, 3},
             {21, 24, 27, 47, 54, 61});
}

TEST(Executor, MatMulBatchedBroadcastAndVectors) {
  // x [2, 1, 2] · w [2, 1]: each batch row times w = [1, -1].
  auto m = Model(R"(<ir_version: 8, opset_import: ["" : 17]>
g (float[2, 1, 2] x) => (float[2, 1, 1] y) { y = MatMul (x, w) })",
                 {{"w", {{2, 1}, {1, -1}}}});
  ExpectNear(RunOne(m, {{"x", Tensor::Float({2, 1, 2}, {3, 1, 5, 7})}}), {2, 1, 1}, {2, -2});
  // A vector times a matrix: [1, 2] · [[1, 2], [3, 4]] = [7, 10], shape [2].
  auto v = Model(R"(<ir_version: 8, opset_import: ["" : 17]>
g (float[2] x) => (float[2] y) { y = MatMul (x, w) })",
                 {{"w", {{2, 2}, {1, 2, 3, 4}}}});
  ExpectNear(RunOne(v, {{"x", Tensor::Float({2}, {1, 2})}}), {2}, {7, 10});
}

TEST(Executor, MatMulLargeEnoughToSplitMatchesTheNaiveProduct) {
  const int64_t m = 300, k = 70, n = 50;
  std::vector<float> a(m * k), b(k * n);
  for (size_t i = 0; i < a.size(); ++i) a[i] = std::sin(0.1f * i);
  for (size_t i = 0; i < b.size(); ++i) b[i] = std::cos(0.07f * i);
  auto model = Model(R"(<ir_version: 8, opset_import: ["" : 17]>
g (float[300, 70] x) => (float[300, 50] y) { y = MatMul (x, w) })",
                     {{"w", {{k, n}, b}}});
  const Tensor y = RunOne(model, {{"x", Tensor::Float({m, k}, a)}});
  ASSERT_EQ(y.f.size(), static_cast<size_t>(m * n));
  for (int64_t r = 0; r < m; r += 37) {
    for (int64_t c = 0; c < n; c += 7) {
      double s = 0;
      for (int64_t j = 0; j < k; ++j) s += double(a[r * k + j]) * b[j * n + c];
      EXPECT_NEAR(y.f[r * n + c], s, 1e-4) << r << "," << c;
    }
  }
}

TEST(Executor, GemmTransposesAlphaBetaAndBroadcastBias) {
  // A^T with A = [[1, 3], [2, 4]] is [[1, 2], [3, 4]]; B^T with B = [[1, 0], [0, 1], [1, 1]]
  // is [[1, 0, 1], [0, 1, 1]]. A^T·B^T = [[1, 2, 3], [3, 4, 7]]; times 2, plus 0.5 · [1, 2, 3].
  auto m = Model(R"(<ir_version: 8, opset_import: ["" : 17]>
g (float[2, 2] x) => (float[2, 3] y) { y = Gemm <transA = 1, transB = 1, alpha = 2.0, beta = 0.5> (x, w, b) })",
                 {{"w", {{3, 2}, {1, 0, 0, 1, 1, 1}}}, {"b", {{3}, {1, 2, 3}}}});
  ExpectNear(RunOne(m, {{"x", Tensor::Float({2, 2}, {1, 3, 2, 4})}}), {2, 3},
             {2.5f, 5, 7.5f, 6.5f, 9, 15.5f});
}

TEST(Executor, IdentityDropoutAndConstant) {
  auto m = reinit_test::ParseModel(R"(<ir_version: 8, opset_import: ["" : 17]>
g (float[3] x) => (float[3] y, float[2] c, bool[3] mask) {
  a = Identity (x)
  y, mask = Dropout (a)
  c = Constant <value = float[2] {1.5, -2.0}> ()
})");
  auto e = Executor::Create(m);
  ASSERT_TRUE(e.ok()) << e.status().message();
  auto out = (*e)->Run({{"x", Tensor::Float({3}, {1, 2, 3})}});
  ASSERT_TRUE(out.ok()) << out.status().message();
  ExpectNear(out->at("y"), {3}, {1, 2, 3});
  ExpectNear(out->at("c"), {2}, {1.5f, -2.0f});
  EXPECT_EQ(out->at("mask").type, DType::kBool);
  EXPECT_EQ(out->at("mask").i, (std::vector<int64_t>{1, 1, 1}));
}

TEST(Executor, ObserverSeesEveryNodeInOrderAndSetInitializerChangesTheResult) {
  auto m = Model(R"(<ir_version: 8, opset_import: ["" : 17]>
g (float[1, 2] x) => (float[1, 2] y) {
  h = MatMul (x, w1)
  y = MatMul (h, w2)
})",
                 {{"w1", {{2, 2}, {1, 0, 0, 1}}}, {"w2", {{2, 2}, {2, 0, 0, 2}}}});
  auto e = Executor::Create(m);
  ASSERT_TRUE(e.ok()) << e.status().message();
  std::vector<int> seen;
  auto out = (*e)->Run({{"x", Tensor::Float({1, 2}, {1, 2})}},
                       [&](int node, const std::vector<Tensor>& outputs) {
                         seen.push_back(node);
                         EXPECT_EQ(outputs.size(), 1u);
                         return Status::Ok();
                       });
  ASSERT_TRUE(out.ok());
  EXPECT_EQ(seen, (std::vector<int>{0, 1}));
  ExpectNear(out->at("y"), {1, 2}, {2, 4});
  ASSERT_TRUE((*e)->SetInitializer("w1", Tensor::Float({2, 2}, {0, 1, 1, 0})).ok());
  ExpectNear((*e)->Run({{"x", Tensor::Float({1, 2}, {1, 2})}})->at("y"), {1, 2}, {4, 2});
  EXPECT_FALSE((*e)->SetInitializer("w1", Tensor::Float({2}, {0, 1})).ok());
  EXPECT_FALSE((*e)->SetInitializer("nope", Tensor::Float({1}, {0})).ok());
  // An observer's error stops the run.
  auto stopped = (*e)->Run({{"x", Tensor::Float({1, 2}, {1, 2})}},
                           [](int, const std::vector<Tensor>&) { return ModelError("stop"); });
  EXPECT_FALSE(stopped.ok());
}

TEST(Executor, InputsListTheirDeclaredShapes) {
  auto m = Model(R"(<ir_version: 8, opset_import: ["" : 17]>
g (float[N, 2] x, int64[3] ids) => (float[N, 2] y) { y = MatMul (x, w) })",
                 {{"w", {{2, 2}, {1, 0, 0, 1}}}});
  auto e = Executor::Create(m);
  ASSERT_TRUE(e.ok()) << e.status().message();
  ASSERT_EQ((*e)->inputs().size(), 2u);
  EXPECT_EQ((*e)->inputs()[0].name, "x");
  EXPECT_EQ((*e)->inputs()[0].shape, (std::vector<int64_t>{-1, 2}));
  EXPECT_EQ((*e)->inputs()[0].dim_names[0], "N");
  EXPECT_EQ((*e)->inputs()[1].type, DType::kInt64);
  // A missing feed is an error naming it.
  auto out = (*e)->Run({{"x", Tensor::Float({1, 2}, {1, 2})}});
  ASSERT_FALSE(out.ok());
  EXPECT_NE(out.status().message().find("'ids'"), std::string::npos);
}

TEST(Executor, RefusesAnOpItDoesNotRunNamingIt) {
  auto m = reinit_test::ParseModel(R"(<ir_version: 8, opset_import: ["" : 17]>
g (float[2] x) => (float[2] y) { y = Hardmax (x) })");
  // Named after the node; the op is listed as unsupported.
  m.mutable_graph()->mutable_node(0)->set_name("hm");
  auto e = Executor::Create(m);
  ASSERT_FALSE(e.ok());
  EXPECT_NE(e.status().message().find("node 'hm' (Hardmax): operator 'Hardmax' is not supported"),
            std::string::npos)
      << e.status().message();
}

TEST(Executor, ErrorsNameTheNode) {
  auto m = Model(R"(<ir_version: 8, opset_import: ["" : 17]>
g (float[2, 3] x) => (float[2, 3] y) { y = MatMul (x, w) })",
                 {{"w", {{2, 3}, {1, 2, 3, 4, 5, 6}}}});
  auto e = Executor::Create(m);
  ASSERT_TRUE(e.ok());
  auto out = (*e)->Run({{"x", Tensor::Float({2, 3}, {1, 2, 3, 4, 5, 6})}});
  ASSERT_FALSE(out.ok());
  EXPECT_NE(out.status().message().find("(MatMul)"), std::string::npos) << out.status().message();
  EXPECT_NE(out.status().message().find("cannot be multiplied"), std::string::npos);
}

TEST(Executor, DecodesIntegerAndBoolInitializers) {
  onnx::TensorProto t;
  t.set_name("i");
  t.set_data_type(onnx::TensorProto::INT32);
  t.add_dims(3);
  for (int v : {-1, 0, 7}) t.add_int32_data(v);
  auto d = DecodeTensor(t);
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(d->type, DType::kInt64);
  EXPECT_EQ(d->i, (std::vector<int64_t>{-1, 0, 7}));
  onnx::TensorProto b;
  b.set_name("b");
  b.set_data_type(onnx::TensorProto::BOOL);
  b.add_dims(2);
  b.set_raw_data(std::string("\x00\x01", 2));
  auto db = DecodeTensor(b);
  ASSERT_TRUE(db.ok());
  EXPECT_EQ(db->type, DType::kBool);
  EXPECT_EQ(db->i, (std::vector<int64_t>{0, 1}));
  onnx::TensorProto s;
  s.set_name("s");
  s.set_data_type(onnx::TensorProto::STRING);
  EXPECT_FALSE(DecodeTensor(s).ok());
}

TEST(Executor, CastToIntegersSaturatesAndTruncates) {
  const Tensor t =
      CastTo(Tensor::Float({6}, {2.7f, -2.7f, NAN, INFINITY, -INFINITY, 1e30f}), DType::kInt64);
  EXPECT_EQ(t.i, (std::vector<int64_t>{2, -2, 0, INT64_MAX, INT64_MIN, INT64_MAX}));
  EXPECT_EQ(CastTo(Tensor::Float({2}, {0.0f, -0.5f}), DType::kBool).i,
            (std::vector<int64_t>{0, 1}));
}

TEST(Executor, AFeedWhoseValuesDisagreeWithItsShapeIsRefused) {
  auto m = Model(R"(<ir_version: 8, opset_import: ["" : 17]>
g (float[N, 2] x) => (float[N, 2] y) { y = MatMul (x, w) })",
                 {{"w", {{2, 2}, {1, 0, 0, 1}}}});
  auto e = Executor::Create(m);
  ASSERT_TRUE(e.ok());
  Tensor bad = Tensor::Float({3, 2}, {1, 2, 3, 4});  // 4 values for 6
  auto out = (*e)->Run({{"x", bad}});
  ASSERT_FALSE(out.ok());
  EXPECT_NE(out.status().message().find("holds 4 values for the shape [3, 2]"), std::string::npos)
      << out.status().message();
}

}  // namespace
}  // namespace executor_test
}  // namespace reinit::exec
