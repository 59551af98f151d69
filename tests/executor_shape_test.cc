// The executor's shape ops, each against values worked out by hand in the test or by a plain
// loop written here from the op's definition. Models are in ONNX text syntax; shape-like
// operands come from Constant nodes so that each test reads as the graph it runs.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "model_builder.h"
#include "signal/executor/executor.h"
#include "signal/executor/ops.h"

namespace reinit::exec {
namespace executor_shape_test {
namespace {

using Floats = std::vector<float>;
using Ints = std::vector<int64_t>;

// "<ir_version: 8, opset_import: ["" : opset]>" and the graph.
onnx::ModelProto Model(const std::string& graph, int opset = 17) {
  return reinit_test::ParseModel("<ir_version: 8, opset_import: [\"\" : " + std::to_string(opset) +
                                 "]>\n" + graph);
}

StatusOr<std::map<std::string, Tensor>> RunAll(const onnx::ModelProto& m,
                                               const std::map<std::string, Tensor>& feeds) {
  auto e = Executor::Create(m);
  if (!e.ok()) return e.status();
  return (*e)->Run(feeds);
}

// Runs the model and returns output `name` (an empty tensor, after a test failure, if the run
// fails).
Tensor RunOne(const onnx::ModelProto& m, const std::map<std::string, Tensor>& feeds,
              const std::string& name = "y") {
  auto out = RunAll(m, feeds);
  EXPECT_TRUE(out.ok()) << out.status().message();
  if (!out.ok()) return {};
  return out->at(name);
}

// The run's error message ("" and a test failure if it succeeds).
std::string RunError(const onnx::ModelProto& m, const std::map<std::string, Tensor>& feeds) {
  auto out = RunAll(m, feeds);
  EXPECT_FALSE(out.ok()) << "the run succeeded";
  return out.ok() ? "" : out.status().message();
}

void ExpectFloats(const Tensor& t, const Ints& shape, const Floats& values, float tol = 1e-5f) {
  EXPECT_EQ(t.type, DType::kFloat);
  EXPECT_EQ(t.shape, shape);
  ASSERT_EQ(t.f.size(), values.size());
  for (size_t k = 0; k < values.size(); ++k) {
    EXPECT_NEAR(t.f[k], values[k], tol * std::max(1.0f, std::fabs(values[k]))) << "element " << k;
  }
}

void ExpectInts(const Tensor& t, const Ints& shape, const Ints& values,
                DType type = DType::kInt64) {
  EXPECT_EQ(t.type, type);
  EXPECT_EQ(t.shape, shape);
  EXPECT_EQ(t.i, values);
}

#define EXPECT_CONTAINS(text, part) \
  EXPECT_NE(std::string(text).find(part), std::string::npos) << "in: " << (text)

// 0, 1, 2, ... as floats, for a tensor of `shape`.
Tensor Iota(const Ints& shape) {
  Tensor t = Tensor::Float(shape);
  for (size_t k = 0; k < t.f.size(); ++k) t.f[k] = static_cast<float>(k);
  return t;
}

// Row-major index of `pos` in `shape`.
int64_t Flat(const Ints& shape, const Ints& pos) {
  int64_t at = 0;
  for (size_t a = 0; a < shape.size(); ++a) at = at * shape[a] + pos[a];
  return at;
}

// Calls visit(pos) for every position of `shape`, in row-major order.
template <typename Visit>
void ForEach(const Ints& shape, Visit visit) {
  Ints pos(shape.size(), 0);
  if (ShapeSize(shape) == 0) return;
  while (true) {
    visit(pos);
    size_t a = shape.size();
    while (a > 0 && ++pos[a - 1] == shape[a - 1]) pos[--a] = 0;
    if (a == 0) return;
  }
}

// ---- Reshape, Flatten, Squeeze, Unsqueeze ------------------------------------------------------

TEST(Reshape, MinusOneAndZeroCopyAndTypes) {
  auto m = Model(R"(g (float[2, 3, 4] x) => (float[6, 4] y, float[2, 12] z) {
  s = Constant <value = int64[2] {-1, 4}> ()
  t = Constant <value = int64[2] {0, -1}> ()
  y = Reshape (x, s)
  z = Reshape (x, t)
})");
  auto out = RunAll(m, {{"x", Iota({2, 3, 4})}});
  ASSERT_TRUE(out.ok()) << out.status().message();
  ExpectFloats(out->at("y"), {6, 4}, Iota({24}).f);
  ExpectFloats(out->at("z"), {2, 12}, Iota({24}).f);
  // int64 and bool data keep their type and values.
  auto ints = Model(R"(g (int64[4] x, bool[4] b) => (int64[2, 2] y, bool[2, 2] c) {
  s = Constant <value = int64[2] {2, 2}> ()
  y = Reshape (x, s)
  c = Reshape (b, s)
})");
  auto io = RunAll(
      ints, {{"x", Tensor::Int64({4}, {5, -6, 7, 8})}, {"b", Tensor::Bool({4}, {1, 0, 0, 1})}});
  ASSERT_TRUE(io.ok()) << io.status().message();
  ExpectInts(io->at("y"), {2, 2}, {5, -6, 7, 8});
  ExpectInts(io->at("c"), {2, 2}, {1, 0, 0, 1}, DType::kBool);
}

TEST(Reshape, AllowZeroKeepsAZeroDimension) {
  auto m = Model(R"(g (float[0, 3] x) => (float[3, 0] y) {
  s = Constant <value = int64[2] {3, 0}> ()
  y = Reshape <allowzero = 1> (x, s)
})",
                 14);
  ExpectFloats(RunOne(m, {{"x", Tensor::Float({0, 3})}}), {3, 0}, {});
}

TEST(Reshape, Errors) {
  auto twice = Model(R"(g (float[2, 3] x) => (float[6] y) {
  s = Constant <value = int64[2] {-1, -1}> ()
  y = Reshape (x, s)
})");
  EXPECT_CONTAINS(RunError(twice, {{"x", Iota({2, 3})}}), "-1 more than once");
  auto count = Model(R"(g (float[2, 3] x) => (float[4] y) {
  s = Constant <value = int64[1] {4}> ()
  y = Reshape (x, s)
})");
  EXPECT_CONTAINS(RunError(count, {{"x", Iota({2, 3})}}), "cannot reshape [2, 3] (6 elements)");
  auto divide = Model(R"(g (float[2, 3] x) => (float[4] y) {
  s = Constant <value = int64[2] {4, -1}> ()
  y = Reshape (x, s)
})");
  EXPECT_CONTAINS(RunError(divide, {{"x", Iota({2, 3})}}), "cannot reshape");
  auto huge = Model(R"(g (float[2, 3] x) => (float[4] y) {
  s = Constant <value = int64[3] {4611686018427387904, 4, 0}> ()
  y = Reshape <allowzero = 1> (x, s)
})");
  EXPECT_CONTAINS(RunError(huge, {{"x", Iota({2, 3})}}), "overflows");
}

TEST(Flatten, AxisDefaultNegativeAndEnds) {
  auto m = Model(
      R"(g (float[2, 3, 4] x) => (float[2, 12] a, float[1, 24] b, float[6, 4] c, float[24, 1] d) {
  a = Flatten (x)
  b = Flatten <axis = 0> (x)
  c = Flatten <axis = -1> (x)
  d = Flatten <axis = 3> (x)
})");
  auto out = RunAll(m, {{"x", Iota({2, 3, 4})}});
  ASSERT_TRUE(out.ok()) << out.status().message();
  ExpectFloats(out->at("a"), {2, 12}, Iota({24}).f);
  ExpectFloats(out->at("b"), {1, 24}, Iota({24}).f);
  ExpectFloats(out->at("c"), {6, 4}, Iota({24}).f);
  ExpectFloats(out->at("d"), {24, 1}, Iota({24}).f);
  auto bad = Model(R"(g (float[2, 3] x) => (float[6] y) { y = Flatten <axis = 3> (x) })");
  EXPECT_CONTAINS(RunError(bad, {{"x", Iota({2, 3})}}), "axis 3 is out of range");
}

TEST(Squeeze, AxesInputAttributeAndAll) {
  auto m13 = Model(R"(g (float[1, 3, 1, 2] x) => (float[3, 1, 2] y, float[3, 2] z) {
  a = Constant <value = int64[1] {0}> ()
  y = Squeeze (x, a)
  z = Squeeze (x)
})");
  auto out = RunAll(m13, {{"x", Iota({1, 3, 1, 2})}});
  ASSERT_TRUE(out.ok()) << out.status().message();
  ExpectFloats(out->at("y"), {3, 1, 2}, Iota({6}).f);
  ExpectFloats(out->at("z"), {3, 2}, Iota({6}).f);
  auto m11 = Model(R"(g (float[1, 3, 1, 2] x) => (float[1, 3, 2] y) {
  y = Squeeze <axes = [-2]> (x)
})",
                   11);
  ExpectFloats(RunOne(m11, {{"x", Iota({1, 3, 1, 2})}}), {1, 3, 2}, Iota({6}).f);
  auto bad = Model(R"(g (float[1, 3] x) => (float[1] y) {
  a = Constant <value = int64[1] {1}> ()
  y = Squeeze (x, a)
})");
  EXPECT_CONTAINS(RunError(bad, {{"x", Iota({1, 3})}}), "cannot squeeze axis 1 of size 3");
}

TEST(Unsqueeze, AxesInputAttributeNegativeAndRepeated) {
  auto m13 = Model(R"(g (int64[3] x) => (int64[1, 3, 1] y) {
  a = Constant <value = int64[2] {0, -1}> ()
  y = Unsqueeze (x, a)
})");
  ExpectInts(RunOne(m13, {{"x", Tensor::Int64({3}, {4, 5, 6})}}), {1, 3, 1}, {4, 5, 6});
  auto m11 = Model(R"(g (float[2, 3] x) => (float[2, 1, 3] y) {
  y = Unsqueeze <axes = [1]> (x)
})",
                   11);
  ExpectFloats(RunOne(m11, {{"x", Iota({2, 3})}}), {2, 1, 3}, Iota({6}).f);
  // A scalar becomes a 1-element vector.
  auto scalar = Model(R"(g (float x) => (float[1] y) {
  a = Constant <value = int64[1] {0}> ()
  y = Unsqueeze (x, a)
})");
  ExpectFloats(RunOne(scalar, {{"x", Tensor::Float({}, {2.5f})}}), {1}, {2.5f});
  auto twice = Model(R"(g (float[2] x) => (float[1, 2, 1] y) {
  a = Constant <value = int64[2] {0, -3}> ()
  y = Unsqueeze (x, a)
})");
  EXPECT_CONTAINS(RunError(twice, {{"x", Iota({2})}}), "given twice");
}

// ---- Transpose, Concat, Split ------------------------------------------------------------------

TEST(Transpose, DefaultReversesAndPermMatchesALoop) {
  auto m = Model(R"(g (float[2, 3] x) => (float[3, 2] y) { y = Transpose (x) })");
  // [[0, 1, 2], [3, 4, 5]]^T = [[0, 3], [1, 4], [2, 5]].
  ExpectFloats(RunOne(m, {{"x", Iota({2, 3})}}), {3, 2}, {0, 3, 1, 4, 2, 5});
  auto p = Model(R"(g (float[2, 3, 4, 5] x) => (float[4, 2, 5, 3] y) {
  y = Transpose <perm = [2, 0, 3, 1]> (x)
})");
  const Ints in_shape{2, 3, 4, 5}, perm{2, 0, 3, 1}, out_shape{4, 2, 5, 3};
  const Tensor x = Iota(in_shape);
  Floats expected(x.f.size());
  ForEach(out_shape, [&](const Ints& pos) {
    Ints src(4);
    for (size_t a = 0; a < 4; ++a) src[perm[a]] = pos[a];
    expected[Flat(out_shape, pos)] = x.f[Flat(in_shape, src)];
  });
  ExpectFloats(RunOne(p, {{"x", x}}), out_shape, expected);
  auto bools = Model(R"(g (bool[2, 2] x) => (bool[2, 2] y) { y = Transpose (x) })");
  ExpectInts(RunOne(bools, {{"x", Tensor::Bool({2, 2}, {1, 1, 0, 0})}}), {2, 2}, {1, 0, 1, 0},
             DType::kBool);
  auto bad = Model(R"(g (float[2, 3] x) => (float[3, 2] y) { y = Transpose <perm = [0, 0]> (x) })");
  EXPECT_CONTAINS(RunError(bad, {{"x", Iota({2, 3})}}), "not a permutation");
}

TEST(Concat, AlongAnInnerAxisAndInt64Shapes) {
  auto m = Model(R"(g (float[2, 1] a, float[2, 2] b) => (float[2, 3] y) {
  y = Concat <axis = -1> (a, b)
})");
  // [[10], [20]] ++ [[0, 1], [2, 3]] = [[10, 0, 1], [20, 2, 3]].
  ExpectFloats(RunOne(m, {{"a", Tensor::Float({2, 1}, {10, 20})}, {"b", Iota({2, 2})}}), {2, 3},
               {10, 0, 1, 20, 2, 3});
  auto ints = Model(R"(g (int64[1] a, int64[0] b, int64[2] c) => (int64[3] y) {
  y = Concat <axis = 0> (a, b, c)
})");
  ExpectInts(RunOne(ints, {{"a", Tensor::Int64({1}, {-1})},
                           {"b", Tensor::Int64({0})},
                           {"c", Tensor::Int64({2}, {8, 9})}}),
             {3}, {-1, 8, 9});
  auto bad = Model(R"(g (float[2, 1] a, float[3, 2] b) => (float[2, 3] y) {
  y = Concat <axis = 1> (a, b)
})");
  EXPECT_CONTAINS(RunError(bad, {{"a", Iota({2, 1})}, {"b", Iota({3, 2})}}),
                  "does not concatenate");
  auto types =
      Model(R"(g (float[1] a, int64[1] b) => (float[2] y) { y = Concat <axis = 0> (a, b) })");
  EXPECT_CONTAINS(RunError(types, {{"a", Iota({1})}, {"b", Tensor::Int64({1})}}),
                  "does not concatenate");
}

TEST(Split, InputAttributeEqualAndUneven) {
  // [[0, 1, 2], [3, 4, 5]] split [1, 2] on axis 1.
  auto m13 = Model(R"(g (float[2, 3] x) => (float[2, 1] a, float[2, 2] b) {
  s = Constant <value = int64[2] {1, 2}> ()
  a, b = Split <axis = 1> (x, s)
})");
  auto out = RunAll(m13, {{"x", Iota({2, 3})}});
  ASSERT_TRUE(out.ok()) << out.status().message();
  ExpectFloats(out->at("a"), {2, 1}, {0, 3});
  ExpectFloats(out->at("b"), {2, 2}, {1, 2, 4, 5});
  auto m11 = Model(R"(g (float[5] x) => (float[2] a, float[3] b) {
  a, b = Split <split = [2, 3]> (x)
})",
                   11);
  auto o11 = RunAll(m11, {{"x", Iota({5})}});
  ASSERT_TRUE(o11.ok()) << o11.status().message();
  ExpectFloats(o11->at("a"), {2}, {0, 1});
  ExpectFloats(o11->at("b"), {3}, {2, 3, 4});
  auto equal = Model(R"(g (int64[4, 1] x) => (int64[2, 1] a, int64[2, 1] b) { a, b = Split (x) })");
  auto oe = RunAll(equal, {{"x", Tensor::Int64({4, 1}, {1, 2, 3, 4})}});
  ASSERT_TRUE(oe.ok()) << oe.status().message();
  ExpectInts(oe->at("a"), {2, 1}, {1, 2});
  ExpectInts(oe->at("b"), {2, 1}, {3, 4});
  // Opset 18's num_outputs: parts of ceil(5 / 3) = 2, the last smaller.
  auto uneven = Model(R"(g (float[5] x) => (float[2] a, float[2] b, float[1] c) {
  a, b, c = Split <num_outputs = 3> (x)
})",
                      18);
  auto ou = RunAll(uneven, {{"x", Iota({5})}});
  ASSERT_TRUE(ou.ok()) << ou.status().message();
  ExpectFloats(ou->at("a"), {2}, {0, 1});
  ExpectFloats(ou->at("b"), {2}, {2, 3});
  ExpectFloats(ou->at("c"), {1}, {4});
  auto bad = Model(R"(g (float[5] x) => (float[2] a, float[3] b) { a, b = Split (x) })");
  EXPECT_CONTAINS(RunError(bad, {{"x", Iota({5})}}), "does not split into 2 equal parts");
  auto sum = Model(R"(g (float[5] x) => (float[2] a, float[2] b) {
  s = Constant <value = int64[2] {2, 2}> ()
  a, b = Split (x, s)
})");
  EXPECT_CONTAINS(RunError(sum, {{"x", Iota({5})}}), "does not cut axis 0 of size 5");
}

// ---- Slice -------------------------------------------------------------------------------------

// Python's slicing of range(dim) by start:end:step, written from its definition.
Ints PySlice(int64_t dim, int64_t start, int64_t end, int64_t step) {
  auto fix = [&](int64_t v) {
    if (v < 0) v += dim;
    return step > 0 ? std::clamp<int64_t>(v, 0, dim) : std::clamp<int64_t>(v, -1, dim - 1);
  };
  const int64_t b = fix(start), e = fix(end);
  Ints out;
  for (int64_t i = b; step > 0 ? i < e : i > e; i += step) out.push_back(i);
  return out;
}

TEST(Slice, StartsEndsAxesStepsAgainstPythonSlicing) {
  constexpr int64_t kMax = INT64_MAX;
  struct Case {
    int64_t start, end, step;
  };
  const Case cases[] = {{1, 3, 1},     {0, kMax, 2},      {-1, -kMax, -1}, {-2, -5, -2},
                        {4, 1, -1},    {10, kMax, 1},     {-100, 2, 1},    {3, 3, 1},
                        {kMax, 0, -3}, {2, -kMax, -kMax}, {0, -1, 1},      {5, -100, -1}};
  const Tensor x = Iota({3, 5});
  for (const Case& c : cases) {
    const std::string text =
        "g (float[3, 5] x) => (float[3, 1] y) {\n"
        "  s = Constant <value = int64[1] {" +
        std::to_string(c.start) + "}> ()\n  e = Constant <value = int64[1] {" +
        std::to_string(c.end) +
        "}> ()\n  a = Constant <value = int64[1] {-1}> ()\n"
        "  t = Constant <value = int64[1] {" +
        std::to_string(c.step) + "}> ()\n  y = Slice (x, s, e, a, t)\n}";
    const Ints cols = PySlice(5, c.start, c.end, c.step);
    Floats expected;
    for (int64_t r = 0; r < 3; ++r) {
      for (int64_t col : cols) expected.push_back(x.f[r * 5 + col]);
    }
    SCOPED_TRACE(std::to_string(c.start) + ":" + std::to_string(c.end) + ":" +
                 std::to_string(c.step));
    ExpectFloats(RunOne(Model(text), {{"x", x}}), {3, static_cast<int64_t>(cols.size())}, expected);
  }
}

TEST(Slice, SeveralAxesDefaultsAttributesAndErrors) {
  // x[1:, ::-2] of [[0..4], [5..9], [10..14]]: rows 1, 2; columns 4, 2, 0.
  auto m = Model(R"(g (float[3, 5] x) => (float[2, 3] y) {
  s = Constant <value = int64[2] {1, -1}> ()
  e = Constant <value = int64[2] {3, -6}> ()
  a = Constant <value = int64[2] {0, 1}> ()
  t = Constant <value = int64[2] {1, -2}> ()
  y = Slice (x, s, e, a, t)
})");
  ExpectFloats(RunOne(m, {{"x", Iota({3, 5})}}), {2, 3}, {9, 7, 5, 14, 12, 10});
  // No axes or steps: the first axes, step 1; int64 data.
  auto ints = Model(R"(g (int64[4] x) => (int64[2] y) {
  s = Constant <value = int64[1] {1}> ()
  e = Constant <value = int64[1] {3}> ()
  y = Slice (x, s, e)
})");
  ExpectInts(RunOne(ints, {{"x", Tensor::Int64({4}, {7, 8, 9, 10})}}), {2}, {8, 9});
  // Opset 9: attributes.
  auto m9 = Model(R"(g (float[3, 5] x) => (float[3, 2] y) {
  y = Slice <starts = [3], ends = [1000], axes = [1]> (x)
})",
                  9);
  ExpectFloats(RunOne(m9, {{"x", Iota({3, 5})}}), {3, 2}, {3, 4, 8, 9, 13, 14});
  auto zero = Model(R"(g (float[3] x) => (float[1] y) {
  s = Constant <value = int64[1] {0}> ()
  e = Constant <value = int64[1] {3}> ()
  a = Constant <value = int64[1] {0}> ()
  t = Constant <value = int64[1] {0}> ()
  y = Slice (x, s, e, a, t)
})");
  EXPECT_CONTAINS(RunError(zero, {{"x", Iota({3})}}), "step 0");
  auto axis = Model(R"(g (float[3] x) => (float[1] y) {
  s = Constant <value = int64[1] {0}> ()
  e = Constant <value = int64[1] {3}> ()
  a = Constant <value = int64[1] {1}> ()
  y = Slice (x, s, e, a)
})");
  EXPECT_CONTAINS(RunError(axis, {{"x", Iota({3})}}), "axis 1 is out of range for rank 1");
}

// ---- Gather, Shape, Size -----------------------------------------------------------------------

TEST(Gather, AxesNegativeIndicesAndTypes) {
  // Rows 2, 0 and -1 (= 2) of [[0, 1], [2, 3], [4, 5]].
  auto m = Model(R"(g (float[3, 2] x) => (float[3, 2] y) {
  i = Constant <value = int64[3] {2, 0, -1}> ()
  y = Gather (x, i)
})");
  ExpectFloats(RunOne(m, {{"x", Iota({3, 2})}}), {3, 2}, {4, 5, 0, 1, 4, 5});
  // Axis 1 with 2-D indices: out[r, i, j] = x[r, idx[i, j]].
  auto m1 = Model(R"(g (float[2, 3] x) => (float[2, 2, 2] y) {
  i = Constant <value = int64[2, 2] {0, 2, 1, 1}> ()
  y = Gather <axis = 1> (x, i)
})");
  ExpectFloats(RunOne(m1, {{"x", Iota({2, 3})}}), {2, 2, 2}, {0, 2, 1, 1, 3, 5, 4, 4});
  // The pattern exporters use for a dimension: Shape, then Gather of a scalar index.
  auto dim = Model(R"(g (float[2, 7, 3] x) => (int64 y) {
  s = Shape (x)
  i = Constant <value = int64 {1}> ()
  y = Gather (s, i)
})");
  ExpectInts(RunOne(dim, {{"x", Tensor::Float({2, 7, 3})}}), {}, {7});
  // Embedding lookup with int ids fed as a graph input.
  auto ids = Model(R"(g (float[4, 2] w, int64[2, 1] ids) => (float[2, 1, 2] y) {
  y = Gather (w, ids)
})");
  ExpectFloats(RunOne(ids, {{"w", Iota({4, 2})}, {"ids", Tensor::Int64({2, 1}, {3, 1})}}),
               {2, 1, 2}, {6, 7, 2, 3});
  auto bad = Model(R"(g (float[3] x) => (float[1] y) {
  i = Constant <value = int64[1] {3}> ()
  y = Gather (x, i)
})");
  EXPECT_CONTAINS(RunError(bad, {{"x", Iota({3})}}), "index 3 is out of range for axis 0");
  auto neg = Model(R"(g (float[3] x) => (float[1] y) {
  i = Constant <value = int64[1] {-4}> ()
  y = Gather (x, i)
})");
  EXPECT_CONTAINS(RunError(neg, {{"x", Iota({3})}}), "index -4 is out of range");
}

TEST(Shape, StartEndAndSize) {
  auto m = Model(
      R"(g (float[2, 3, 4, 5] x) => (int64[4] a, int64[2] b, int64[1] c, int64[0] d, int64 n) {
  a = Shape (x)
  b = Shape <start = 1, end = -1> (x)
  c = Shape <start = -1> (x)
  d = Shape <start = 3, end = 1> (x)
  n = Size (x)
})",
      15);
  auto out = RunAll(m, {{"x", Tensor::Float({2, 3, 4, 5})}});
  ASSERT_TRUE(out.ok()) << out.status().message();
  ExpectInts(out->at("a"), {4}, {2, 3, 4, 5});
  ExpectInts(out->at("b"), {2}, {3, 4});
  ExpectInts(out->at("c"), {1}, {5});
  ExpectInts(out->at("d"), {0}, {});
  ExpectInts(out->at("n"), {}, {120});
}

// ---- Expand, Tile, ConstantOfShape -------------------------------------------------------------

TEST(Expand, BroadcastsBothWaysAndRefusesHugeShapes) {
  // [3, 1] against [2, 1, 4]: out[i, j, k] = x[j].
  auto m = Model(R"(g (float[3, 1] x) => (float[2, 3, 4] y) {
  s = Constant <value = int64[3] {2, 1, 4}> ()
  y = Expand (x, s)
})");
  Floats expected;
  for (int i = 0; i < 2; ++i) {
    for (int j = 0; j < 3; ++j) {
      for (int k = 0; k < 4; ++k) expected.push_back(static_cast<float>(j));
    }
  }
  ExpectFloats(RunOne(m, {{"x", Iota({3, 1})}}), {2, 3, 4}, expected);
  // A shape smaller than the input: the input's dims win.
  auto small = Model(R"(g (int64[2, 2] x) => (int64[2, 2] y) {
  s = Constant <value = int64[1] {1}> ()
  y = Expand (x, s)
})");
  ExpectInts(RunOne(small, {{"x", Tensor::Int64({2, 2}, {1, 2, 3, 4})}}), {2, 2}, {1, 2, 3, 4});
  auto huge = Model(R"(g (float[1] x) => (float[1] y) {
  s = Constant <value = int64[3] {1048576, 1048576, 1048576}> ()
  y = Expand (x, s)
})");
  EXPECT_CONTAINS(RunError(huge, {{"x", Iota({1})}}), "more than 2^31 elements");
  auto overflow = Model(R"(g (float[1] x) => (float[1] y) {
  s = Constant <value = int64[3] {9223372036854775807, 4, 0}> ()
  y = Expand (x, s)
})");
  EXPECT_CONTAINS(RunError(overflow, {{"x", Iota({1})}}), "more than 2^31 elements");
  auto mismatch = Model(R"(g (float[3] x) => (float[1] y) {
  s = Constant <value = int64[1] {2}> ()
  y = Expand (x, s)
})");
  EXPECT_CONTAINS(RunError(mismatch, {{"x", Iota({3})}}), "do not broadcast");
}

TEST(Tile, RepeatsEachAxisAndRefusesHugeOnes) {
  // [[0, 1], [2, 3]] tiled [2, 3].
  auto m = Model(R"(g (float[2, 2] x) => (float[4, 6] y) {
  r = Constant <value = int64[2] {2, 3}> ()
  y = Tile (x, r)
})");
  Floats expected;
  for (int i = 0; i < 4; ++i) {
    for (int j = 0; j < 6; ++j) expected.push_back(static_cast<float>((i % 2) * 2 + j % 2));
  }
  ExpectFloats(RunOne(m, {{"x", Iota({2, 2})}}), {4, 6}, expected);
  auto huge = Model(R"(g (float[2, 2] x) => (float[4, 6] y) {
  r = Constant <value = int64[2] {4611686018427387904, 4}> ()
  y = Tile (x, r)
})");
  EXPECT_CONTAINS(RunError(huge, {{"x", Iota({2, 2})}}), "overflow");
  auto rank = Model(R"(g (float[2, 2] x) => (float[4, 6] y) {
  r = Constant <value = int64[1] {2}> ()
  y = Tile (x, r)
})");
  EXPECT_CONTAINS(RunError(rank, {{"x", Iota({2, 2})}}), "do not match the rank");
}

TEST(ConstantOfShape, DefaultValueTypesAndRefusals) {
  auto m = Model(R"(g (int64[2] s) => (float[2, 3] a, int64[2, 3] b, float c) {
  a = ConstantOfShape (s)
  b = ConstantOfShape <value = int64[1] {-7}> (s)
  e = Constant <value = int64[0] {}> ()
  c = ConstantOfShape <value = float[1] {1.5}> (e)
})");
  auto out = RunAll(m, {{"s", Tensor::Int64({2}, {2, 3})}});
  ASSERT_TRUE(out.ok()) << out.status().message();
  ExpectFloats(out->at("a"), {2, 3}, Floats(6, 0.0f));
  ExpectInts(out->at("b"), {2, 3}, Ints(6, -7));
  ExpectFloats(out->at("c"), {}, {1.5f});
  auto e = Executor::Create(m);
  ASSERT_TRUE(e.ok());
  auto huge = (*e)->Run({{"s", Tensor::Int64({2}, {65536, 65536})}});
  ASSERT_FALSE(huge.ok());
  EXPECT_CONTAINS(huge.status().message(), "more than 2^31 elements");
  auto negative = (*e)->Run({{"s", Tensor::Int64({2}, {2, -3})}});
  ASSERT_FALSE(negative.ok());
  EXPECT_CONTAINS(negative.status().message(), "negative dimension");
}

// ---- Pad ---------------------------------------------------------------------------------------

// numpy.pad of a 2-D tensor, written from the definitions of its modes.
Floats PadLoop(const Tensor& x, const Ints& pads, const std::string& mode, float value) {
  const int64_t rows = x.shape[0], cols = x.shape[1];
  const int64_t out_rows = rows + pads[0] + pads[2], out_cols = cols + pads[1] + pads[3];
  auto source = [&](int64_t o, int64_t before, int64_t dim) -> int64_t {
    int64_t s = o - before;
    if (s >= 0 && s < dim) return s;
    if (mode == "constant") return -1;
    if (mode == "edge") return s < 0 ? 0 : dim - 1;
    // reflect: mirror about the ends until inside.
    while (s < 0 || s >= dim) s = s < 0 ? -s : 2 * (dim - 1) - s;
    return s;
  };
  Floats out;
  for (int64_t r = 0; r < out_rows; ++r) {
    for (int64_t c = 0; c < out_cols; ++c) {
      const int64_t sr = source(r, pads[0], rows), sc = source(c, pads[1], cols);
      out.push_back(sr < 0 || sc < 0 ? value : x.f[sr * cols + sc]);
    }
  }
  return out;
}

TEST(Pad, ModesAgainstALoop) {
  const Tensor x = Iota({3, 4});
  const Ints pads_cases[] = {{1, 2, 0, 1}, {0, 0, 2, 3}, {2, 5, 4, 7}, {-1, 1, 0, -2}};
  for (const std::string mode : {"constant", "reflect", "edge"}) {
    for (const Ints& pads : pads_cases) {
      std::string ps;
      for (int64_t p : pads) ps += (ps.empty() ? "" : ", ") + std::to_string(p);
      auto m = Model("g (float[3, 4] x) => (float[1] y) {\n  p = Constant <value = int64[4] {" +
                     ps + "}> ()\n  v = Constant <value = float {2.5}> ()\n  y = Pad <mode = \"" +
                     mode + "\"> (x, p, v)\n}");
      SCOPED_TRACE(mode + " " + ps);
      ExpectFloats(RunOne(m, {{"x", x}}), {3 + pads[0] + pads[2], 4 + pads[1] + pads[3]},
                   PadLoop(x, pads, mode, 2.5f));
    }
  }
}

TEST(Pad, HandValuesOldOpsetAxesAndErrors) {
  // The spec's reflect example: pads [0, 2, 0, 0] on [[1.0, 1.2], [2.3, 3.4], [4.5, 5.7]].
  auto m = Model(R"(g (float[3, 2] x) => (float[3, 4] y) {
  p = Constant <value = int64[4] {0, 2, 0, 0}> ()
  y = Pad <mode = "reflect"> (x, p)
})");
  ExpectFloats(RunOne(m, {{"x", Tensor::Float({3, 2}, {1.0f, 1.2f, 2.3f, 3.4f, 4.5f, 5.7f})}}),
               {3, 4}, {1.0f, 1.2f, 1.0f, 1.2f, 2.3f, 3.4f, 2.3f, 3.4f, 4.5f, 5.7f, 4.5f, 5.7f});
  // Opset 2: pads and value are attributes.
  auto m2 =
      Model(R"(g (float[2] x) => (float[4] y) { y = Pad <pads = [1, 1], value = -1.0> (x) })", 2);
  ExpectFloats(RunOne(m2, {{"x", Tensor::Float({2}, {5, 6})}}), {4}, {-1, 5, 6, -1});
  // Opset 18's axes input: only axis 1 (given as -1) is padded; int64 data and constant.
  auto m18 = Model(R"(g (int64[2, 2] x) => (int64[2, 3] y) {
  p = Constant <value = int64[2] {1, 0}> ()
  v = Constant <value = int64 {9}> ()
  a = Constant <value = int64[1] {-1}> ()
  y = Pad (x, p, v, a)
})",
                   18);
  ExpectInts(RunOne(m18, {{"x", Tensor::Int64({2, 2}, {1, 2, 3, 4})}}), {2, 3}, {9, 1, 2, 9, 3, 4});
  auto count = Model(R"(g (float[2, 2] x) => (float[2] y) {
  p = Constant <value = int64[2] {1, 1}> ()
  y = Pad (x, p)
})");
  EXPECT_CONTAINS(RunError(count, {{"x", Iota({2, 2})}}), "need 2 entries for each of the 2");
  auto crop = Model(R"(g (float[2] x) => (float[2] y) {
  p = Constant <value = int64[2] {-2, -1}> ()
  y = Pad (x, p)
})");
  EXPECT_CONTAINS(RunError(crop, {{"x", Iota({2})}}), "negative or overflowing size");
  auto huge = Model(R"(g (float[2] x) => (float[2] y) {
  p = Constant <value = int64[2] {0, 4294967296}> ()
  y = Pad (x, p)
})");
  EXPECT_CONTAINS(RunError(huge, {{"x", Iota({2})}}), "more than 2^31 elements");
}

// ---- Resize, Upsample --------------------------------------------------------------------------

// The 4-D Resize model with scales (or sizes) given as a Constant.
onnx::ModelProto ResizeModel(const std::string& attrs, const Floats& scales, const Ints& sizes = {},
                             int opset = 13) {
  auto list = [](const auto& v) {
    std::string s;
    for (auto e : v) s += (s.empty() ? "" : ", ") + std::to_string(e);
    return s;
  };
  std::string body;
  if (!scales.empty()) {
    body = "  s = Constant <value = float[" + std::to_string(scales.size()) + "] {" + list(scales) +
           "}> ()\n  y = Resize <" + attrs + "> (x, , s)\n";
  } else {
    body = "  s = Constant <value = int64[" + std::to_string(sizes.size()) + "] {" + list(sizes) +
           "}> ()\n  y = Resize <" + attrs + "> (x, , , s)\n";
  }
  return Model("g (float[1, 1, 2, 2] x) => (float[1] y) {\n" + body + "}", opset);
}

TEST(Resize, NearestModesFromTheOnnxExamples) {
  // resize_upsample_scales_nearest: [[1, 2], [3, 4]] by [1, 1, 2, 3].
  auto up = ResizeModel("mode = \"nearest\"", {1, 1, 2, 3});
  ExpectFloats(RunOne(up, {{"x", Tensor::Float({1, 1, 2, 2}, {1, 2, 3, 4})}}), {1, 1, 4, 6},
               {1, 1, 1, 2, 2, 2, 1, 1, 1, 2, 2, 2, 3, 3, 3, 4, 4, 4, 3, 3, 3, 4, 4, 4});
  // resize_downsample_scales_nearest: [[1, 2, 3, 4], [5, 6, 7, 8]] by 0.6 -> [[1, 3]].
  auto down = Model(R"(g (float[1, 1, 2, 4] x) => (float[1, 1, 1, 2] y) {
  s = Constant <value = float[4] {1.0, 1.0, 0.6, 0.6}> ()
  y = Resize <mode = "nearest"> (x, , s)
})");
  ExpectFloats(RunOne(down, {{"x", Iota({1, 1, 2, 4})}}), {1, 1, 1, 2}, {0, 2});
  // 1-D view along the width: 4 -> 8 under each nearest_mode with asymmetric coordinates
  // (x_original = x / 2: 0, 0.5, 1, 1.5, ...).
  auto mode = [](const std::string& nearest) {
    return Model(R"(g (float[4] x) => (float[8] y) {
  s = Constant <value = float[1] {2.0}> ()
  y = Resize <mode = "nearest", coordinate_transformation_mode = "asymmetric", nearest_mode = ")" +
                 nearest + R"("> (x, , s)
})");
  };
  const Tensor x = Tensor::Float({4}, {10, 20, 30, 40});
  ExpectFloats(RunOne(mode("floor"), {{"x", x}}), {8}, {10, 10, 20, 20, 30, 30, 40, 40});
  ExpectFloats(RunOne(mode("round_prefer_floor"), {{"x", x}}), {8},
               {10, 10, 20, 20, 30, 30, 40, 40});
  ExpectFloats(RunOne(mode("round_prefer_ceil"), {{"x", x}}), {8},
               {10, 20, 20, 30, 30, 40, 40, 40});
  ExpectFloats(RunOne(mode("ceil"), {{"x", x}}), {8}, {10, 20, 20, 30, 30, 40, 40, 40});
  // Nearest moves int64 values too.
  auto ints = Model(R"(g (int64[2] x) => (int64[4] y) {
  s = Constant <value = int64[1] {4}> ()
  y = Resize <mode = "nearest"> (x, , , s)
})");
  ExpectInts(RunOne(ints, {{"x", Tensor::Int64({2}, {7, 9})}}), {4}, {7, 7, 9, 9});
}

TEST(Resize, LinearFromTheOnnxExamples) {
  const Tensor x = Tensor::Float({1, 1, 2, 2}, {1, 2, 3, 4});
  // resize_upsample_scales_linear (half_pixel).
  ExpectFloats(
      RunOne(ResizeModel("mode = \"linear\"", {1, 1, 2, 2}), {{"x", x}}), {1, 1, 4, 4},
      {1, 1.25f, 1.75f, 2, 1.5f, 1.75f, 2.25f, 2.5f, 2.5f, 2.75f, 3.25f, 3.5f, 3, 3.25f, 3.75f, 4});
  // resize_upsample_scales_linear_align_corners.
  const float t = 1.0f / 3.0f;
  ExpectFloats(RunOne(ResizeModel("mode = \"linear\", coordinate_transformation_mode = "
                                  "\"align_corners\"",
                                  {1, 1, 2, 2}),
                      {{"x", x}}),
               {1, 1, 4, 4},
               {1, 1 + t, 1 + 2 * t, 2, 1 + 2 * t, 2, 2 + t, 2 + 2 * t, 2 + t, 2 + 2 * t, 3, 3 + t,
                3, 3 + t, 3 + 2 * t, 4});
  // resize_downsample_scales_linear: [[1, 2, 3, 4], [5, 6, 7, 8]] by 0.6.
  auto down = Model(R"(g (float[1, 1, 2, 4] x) => (float[1, 1, 1, 2] y) {
  s = Constant <value = float[4] {1.0, 1.0, 0.6, 0.6}> ()
  y = Resize <mode = "linear"> (x, , s)
})");
  ExpectFloats(RunOne(down, {{"x", Tensor::Float({1, 1, 2, 4}, {1, 2, 3, 4, 5, 6, 7, 8})}}),
               {1, 1, 1, 2}, {2.6666667f, 4.3333333f});
}

// Bilinear resize of one [h, w] plane to [oh, ow] per coordinate_transformation_mode, written
// from the spec's formulas for each output element.
Floats BilinearLoop(const Floats& x, int64_t h, int64_t w, int64_t oh, int64_t ow,
                    const std::string& mode) {
  auto coord = [&](int64_t o, int64_t in, int64_t out) {
    const double scale = double(out) / double(in);
    if (mode == "half_pixel") return (o + 0.5) / scale - 0.5;
    if (mode == "pytorch_half_pixel") return out > 1 ? (o + 0.5) / scale - 0.5 : 0.0;
    if (mode == "align_corners") return out == 1 ? 0.0 : o * double(in - 1) / double(out - 1);
    return o / scale;
  };
  Floats y;
  for (int64_t r = 0; r < oh; ++r) {
    for (int64_t c = 0; c < ow; ++c) {
      const double yr = std::clamp(coord(r, h, oh), 0.0, double(h - 1));
      const double xc = std::clamp(coord(c, w, ow), 0.0, double(w - 1));
      const int64_t r0 = int64_t(std::floor(yr)), c0 = int64_t(std::floor(xc));
      const int64_t r1 = std::min(r0 + 1, h - 1), c1 = std::min(c0 + 1, w - 1);
      const double dr = yr - r0, dc = xc - c0;
      y.push_back(float((1 - dr) * (1 - dc) * x[r0 * w + c0] + (1 - dr) * dc * x[r0 * w + c1] +
                        dr * (1 - dc) * x[r1 * w + c0] + dr * dc * x[r1 * w + c1]));
    }
  }
  return y;
}

TEST(Resize, LinearWithSizesMatchesALoopForEachCoordinateMode) {
  Tensor x = Tensor::Float({2, 3, 5, 4});
  for (size_t k = 0; k < x.f.size(); ++k) x.f[k] = std::sin(0.37f * static_cast<float>(k));
  for (const std::string mode :
       {"half_pixel", "pytorch_half_pixel", "align_corners", "asymmetric"}) {
    for (const Ints& hw : {Ints{7, 3}, Ints{1, 9}, Ints{5, 4}, Ints{2, 11}}) {
      auto m = Model(
          "g (float[2, 3, 5, 4] x) => (float[1] y) {\n  s = Constant <value = int64[4] {2, 3, " +
          std::to_string(hw[0]) + ", " + std::to_string(hw[1]) +
          "}> ()\n  y = Resize <mode = \"linear\", coordinate_transformation_mode = \"" + mode +
          "\"> (x, , , s)\n}");
      Floats expected;
      for (int64_t p = 0; p < 6; ++p) {
        const Floats plane(x.f.begin() + p * 20, x.f.begin() + (p + 1) * 20);
        const Floats y = BilinearLoop(plane, 5, 4, hw[0], hw[1], mode);
        expected.insert(expected.end(), y.begin(), y.end());
      }
      SCOPED_TRACE(mode + " " + std::to_string(hw[0]) + "x" + std::to_string(hw[1]));
      ExpectFloats(RunOne(m, {{"x", x}}), {2, 3, hw[0], hw[1]}, expected, 1e-5f);
    }
  }
}

TEST(Resize, TrilinearOnThreeAxesIsSeparable) {
  // Each axis 2 -> 3 with align_corners (x_original = x / 2) on a 2x2x2 cube holding
  // 4a + 2b + c: trilinear interpolation reproduces that linear function at (i/2, j/2, k/2).
  auto m = Model(R"(g (float[2, 2, 2] x) => (float[3, 3, 3] y) {
  s = Constant <value = int64[3] {3, 3, 3}> ()
  y = Resize <mode = "linear", coordinate_transformation_mode = "align_corners"> (x, , , s)
})");
  Floats expected;
  for (int i = 0; i < 3; ++i) {
    for (int j = 0; j < 3; ++j) {
      for (int k = 0; k < 3; ++k) expected.push_back(4 * 0.5f * i + 2 * 0.5f * j + 0.5f * k);
    }
  }
  ExpectFloats(RunOne(m, {{"x", Iota({2, 2, 2})}}), {3, 3, 3}, expected);
}

TEST(Resize, CropAndResizeExtrapolates) {
  // roi [0.5, 1.5] on a length-3 axis resized to 3: x_original = 1 + x, so 1, 2, 3 -> the last
  // is outside and takes extrapolation_value.
  auto m = Model(R"(g (float[3] x) => (float[3] y) {
  r = Constant <value = float[2] {0.5, 1.5}> ()
  s = Constant <value = int64[1] {3}> ()
  y = Resize <mode = "linear", coordinate_transformation_mode = "tf_crop_and_resize", extrapolation_value = -9.0> (x, r, , s)
})");
  ExpectFloats(RunOne(m, {{"x", Tensor::Float({3}, {10, 20, 30})}}), {3}, {20, 30, -9});
}

TEST(Resize, OpsetElevenScalesAndRefusals) {
  // Opset 11: roi and scales are required inputs, empty when sizes are given.
  auto m11 = Model(R"(g (float[1, 1, 2, 2] x) => (float[1, 1, 4, 4] y) {
  r = Constant <value = float[0] {}> ()
  e = Constant <value = float[0] {}> ()
  s = Constant <value = int64[4] {1, 1, 4, 4}> ()
  y = Resize <mode = "nearest", coordinate_transformation_mode = "asymmetric", nearest_mode = "floor"> (x, r, e, s)
})",
                   11);
  ExpectFloats(RunOne(m11, {{"x", Tensor::Float({1, 1, 2, 2}, {1, 2, 3, 4})}}), {1, 1, 4, 4},
               {1, 1, 2, 2, 1, 1, 2, 2, 3, 3, 4, 4, 3, 3, 4, 4});
  const Tensor x = Iota({1, 1, 2, 2});
  EXPECT_CONTAINS(RunError(ResizeModel("mode = \"cubic\"", {1, 1, 2, 2}), {{"x", x}}),
                  "'cubic' is not supported");
  EXPECT_CONTAINS(RunError(ResizeModel("mode = \"nearest\"", {1, 1, 100000, 100000}), {{"x", x}}),
                  "more than 2^31 elements");
  EXPECT_CONTAINS(RunError(ResizeModel("mode = \"nearest\"", {1, 1, 1e30f, 1}), {{"x", x}}),
                  "invalid or too large");
  EXPECT_CONTAINS(RunError(ResizeModel("mode = \"nearest\"", {}, {1, 1, -2, 2}), {{"x", x}}),
                  "invalid or too large");
  EXPECT_CONTAINS(RunError(ResizeModel("mode = \"nearest\"", {1, 1, 2}), {{"x", x}}),
                  "3 entries for 4 axes");
}

TEST(Upsample, NearestAndLinearAreAsymmetric) {
  auto m = Model(R"(g (float[1, 1, 2, 2] x) => (float[1, 1, 4, 6] y) {
  s = Constant <value = float[4] {1.0, 1.0, 2.0, 3.0}> ()
  y = Upsample <mode = "nearest"> (x, s)
})",
                 9);
  ExpectFloats(RunOne(m, {{"x", Tensor::Float({1, 1, 2, 2}, {1, 2, 3, 4})}}), {1, 1, 4, 6},
               {1, 1, 1, 2, 2, 2, 1, 1, 1, 2, 2, 2, 3, 3, 3, 4, 4, 4, 3, 3, 3, 4, 4, 4});
  // upsample linear (the ONNX example): x_original = x / 2, clamped at the last element.
  auto lin = Model(R"(g (float[1, 1, 2, 2] x) => (float[1, 1, 4, 4] y) {
  s = Constant <value = float[4] {1.0, 1.0, 2.0, 2.0}> ()
  y = Upsample <mode = "linear"> (x, s)
})",
                   9);
  ExpectFloats(RunOne(lin, {{"x", Tensor::Float({1, 1, 2, 2}, {1, 2, 3, 4})}}), {1, 1, 4, 4},
               {1, 1.5f, 2, 2, 2, 2.5f, 3, 3, 3, 3.5f, 4, 4, 3, 3.5f, 4, 4});
  // Opset 7: scales as an attribute.
  auto m7 = Model(R"(g (float[2] x) => (float[4] y) { y = Upsample <scales = [2.0]> (x) })", 7);
  ExpectFloats(RunOne(m7, {{"x", Tensor::Float({2}, {5, 6})}}), {4}, {5, 5, 6, 6});
}

// ---- DepthToSpace, SpaceToDepth ----------------------------------------------------------------

TEST(DepthToSpace, DcrAndCrdMatchTheirDefinitionsAndSpaceToDepthInverts) {
  const int64_t n = 2, c = 8, h = 2, w = 3, b = 2, oc = c / (b * b);
  const Tensor x = Iota({n, c, h, w});
  // DCR: out[n, k, y·b + i, x·b + j] = in[n, (i·b + j)·oc + k, y, x]; CRD: in[n, k·b² + i·b + j, y,
  // x].
  Floats dcr, crd;
  for (int64_t in = 0; in < n; ++in) {
    for (int64_t k = 0; k < oc; ++k) {
      for (int64_t oy = 0; oy < h * b; ++oy) {
        for (int64_t ox = 0; ox < w * b; ++ox) {
          const int64_t i = oy % b, j = ox % b, y = oy / b, xx = ox / b;
          dcr.push_back(x.f[Flat({n, c, h, w}, {in, (i * b + j) * oc + k, y, xx})]);
          crd.push_back(x.f[Flat({n, c, h, w}, {in, k * b * b + i * b + j, y, xx})]);
        }
      }
    }
  }
  auto m = Model(
      R"(g (float[2, 8, 2, 3] x) => (float[2, 2, 4, 6] d, float[2, 2, 4, 6] r, float[2, 8, 2, 3] back) {
  d = DepthToSpace <blocksize = 2> (x)
  r = DepthToSpace <blocksize = 2, mode = "CRD"> (x)
  back = SpaceToDepth <blocksize = 2> (d)
})");
  auto out = RunAll(m, {{"x", x}});
  ASSERT_TRUE(out.ok()) << out.status().message();
  ExpectFloats(out->at("d"), {n, oc, h * b, w * b}, dcr);
  ExpectFloats(out->at("r"), {n, oc, h * b, w * b}, crd);
  ExpectFloats(out->at("back"), {n, c, h, w}, x.f);
  auto bad =
      Model(R"(g (float[1, 3, 2, 2] x) => (float[1] y) { y = DepthToSpace <blocksize = 2> (x) })");
  EXPECT_CONTAINS(RunError(bad, {{"x", Iota({1, 3, 2, 2})}}), "do not divide into blocks");
  auto odd =
      Model(R"(g (float[1, 1, 3, 2] x) => (float[1] y) { y = SpaceToDepth <blocksize = 2> (x) })");
  EXPECT_CONTAINS(RunError(odd, {{"x", Iota({1, 1, 3, 2})}}), "do not divide by 2");
}

// ---- The executor's defences -------------------------------------------------------------------

TEST(ShapeOps, FeedsThatDisagreeWithTheirShapeAreRefused) {
  auto m = Model(R"(g (float[2, 3] x) => (float[3, 2] y) { y = Transpose (x) })");
  Tensor lying = Tensor::Float({2, 3});
  lying.f.resize(4);
  EXPECT_CONTAINS(RunError(m, {{"x", lying}}), "holds 4 values for the shape [2, 3]");
  // Empty, but with dims whose product would overflow: refused before anything multiplies
  // them.
  Tensor absurd;
  absurd.shape = {int64_t{1} << 40, int64_t{1} << 40, 0};
  EXPECT_CONTAINS(RunError(m, {{"x", absurd}}), "more than 2^31 elements");
}

TEST(ShapeOps, ShufflenetChannelShuffle) {
  // Reshape [1, 4, 1, 1] -> [1, 2, 2, 1, 1], swap the group axes, flatten back: channels
  // 0, 1, 2, 3 come out as 0, 2, 1, 3.
  auto m = Model(R"(g (float[1, 4, 1, 1] x) => (float[1, 4, 1, 1] y) {
  s = Constant <value = int64[5] {1, 2, 2, 1, 1}> ()
  a = Reshape (x, s)
  t = Transpose <perm = [0, 2, 1, 3, 4]> (a)
  b = Constant <value = int64[4] {1, -1, 1, 1}> ()
  y = Reshape (t, b)
})");
  ExpectFloats(RunOne(m, {{"x", Iota({1, 4, 1, 1})}}), {1, 4, 1, 1}, {0, 2, 1, 3});
}

}  // namespace
}  // namespace executor_shape_test
}  // namespace reinit::exec
