// The reference executor's NN family: Conv, ConvTranspose, the pools and the normalizations.
// Each op runs as a one-node model written in ONNX text syntax, and is checked against values
// computed by hand or by a naive loop written here from the op's definition (a direct
// convolution over every output, tap and channel; a scatter for ConvTranspose; a window scan
// for the pools), never against the kernels' own helpers.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <map>
#include <random>

#include "model_builder.h"
#include "parallel.h"
#include "signal/executor/executor.h"
#include "signal/executor/ops.h"

namespace reinit::exec {
namespace executor_nn_test {
namespace {

using Inits = std::map<std::string, Tensor>;

// Deterministic values in [-1, 1).
std::vector<float> Values(int64_t n, unsigned seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> u(-1.0f, 1.0f);
  std::vector<float> v(static_cast<size_t>(n));
  for (float& f : v) f = u(rng);
  return v;
}

Tensor Random(const std::vector<int64_t>& shape, unsigned seed) {
  return Tensor::Float(shape, Values(ShapeSize(shape), seed));
}

std::string Dims(const std::vector<int64_t>& shape) {
  std::string s;
  for (size_t k = 0; k < shape.size(); ++k) s += (k ? ", " : "") + std::to_string(shape[k]);
  return s;
}

// A model with graph input x, the float initializers, and one node writing `outputs`.
onnx::ModelProto NodeModel(const std::string& node, const std::vector<int64_t>& x_shape,
                           const Inits& inits, const std::string& outputs, int opset) {
  const std::string text = "<ir_version: 8, opset_import: [\"\" : " + std::to_string(opset) +
                           "]>\ng (float[" + Dims(x_shape) + "] x) => (" + outputs + ") {\n  " +
                           node + "\n}";
  onnx::ModelProto m = reinit_test::ParseModel(text);
  for (const auto& [name, t] : inits) {
    auto* p = m.mutable_graph()->add_initializer();
    p->set_name(name);
    p->set_data_type(onnx::TensorProto::FLOAT);
    for (int64_t d : t.shape) p->add_dims(d);
    for (float v : t.f) p->add_float_data(v);
  }
  return m;
}

// Runs `node` on x; the outputs by name, or the error.
StatusOr<std::map<std::string, Tensor>> RunNode(const std::string& node, const Tensor& x,
                                                const Inits& inits = {},
                                                const std::string& outputs = "float y",
                                                int opset = 17) {
  auto e = Executor::Create(NodeModel(node, x.shape, inits, outputs, opset));
  if (!e.ok()) return e.status();
  return (*e)->Run({{"x", x}});
}

// Runs `node` on x and returns y (a test failure if it fails).
Tensor RunY(const std::string& node, const Tensor& x, const Inits& inits = {}) {
  auto out = RunNode(node, x, inits);
  EXPECT_TRUE(out.ok()) << node << ": " << out.status().message();
  if (!out.ok()) return {};
  return out->at("y");
}

// The error `node` gives on x (a test failure if it runs).
std::string ErrorOf(const std::string& node, const Tensor& x, const Inits& inits = {},
                    const std::string& outputs = "float y") {
  auto out = RunNode(node, x, inits, outputs);
  EXPECT_FALSE(out.ok()) << node << " ran";
  return out.ok() ? "" : out.status().message();
}

void ExpectClose(const Tensor& actual, const Tensor& expected, float tol = 1e-4f) {
  ASSERT_EQ(actual.shape, expected.shape);
  ASSERT_EQ(actual.f.size(), expected.f.size());
  for (size_t k = 0; k < expected.f.size(); ++k) {
    ASSERT_NEAR(actual.f[k], expected.f[k], tol * std::max(1.0f, std::fabs(expected.f[k])))
        << "element " << k;
  }
}

void ExpectValues(const Tensor& t, const std::vector<int64_t>& shape,
                  const std::vector<float>& values, float tol = 1e-5f) {
  ExpectClose(t, Tensor::Float(shape, values), tol);
}

// ---- Naive references ---------------------------------------------------------------------------

std::vector<int64_t> Coords(int64_t flat, const std::vector<int64_t>& shape) {
  std::vector<int64_t> c(shape.size());
  for (size_t a = shape.size(); a-- > 0;) {
    c[a] = flat % shape[a];
    flat /= shape[a];
  }
  return c;
}

int64_t Flat(const std::vector<int64_t>& coords, const std::vector<int64_t>& shape) {
  int64_t f = 0;
  for (size_t a = 0; a < shape.size(); ++a) f = f * shape[a] + coords[a];
  return f;
}

// Per spatial axis; pads as ONNX lists them (all begins, then all ends). Empty = defaults.
struct Spatial {
  std::vector<int64_t> strides, pads, dilations;
  int64_t Stride(size_t a) const { return strides.empty() ? 1 : strides[a]; }
  int64_t Dilation(size_t a) const { return dilations.empty() ? 1 : dilations[a]; }
  int64_t PadBegin(size_t a) const { return pads.empty() ? 0 : pads[a]; }
  int64_t PadEnd(size_t a, size_t rank) const { return pads.empty() ? 0 : pads[rank + a]; }
};

// floor((in + pads - dilated kernel) / stride) + 1 per axis.
std::vector<int64_t> OutShape(const std::vector<int64_t>& in, const std::vector<int64_t>& kernel,
                              const Spatial& sp) {
  std::vector<int64_t> out;
  for (size_t a = 0; a < in.size(); ++a) {
    const int64_t extent = (kernel[a] - 1) * sp.Dilation(a) + 1;
    out.push_back((in[a] + sp.PadBegin(a) + sp.PadEnd(a, in.size()) - extent) / sp.Stride(a) + 1);
  }
  return out;
}

std::vector<int64_t> Tail(const std::vector<int64_t>& v) { return {v.begin() + 2, v.end()}; }

// y[n, m, o] = b[m] + sum over c < C/group and taps k of
// x[n, group_of(m) * C/group + c, o * stride - pad_begin + k * dilation] * w[m, c, k].
Tensor NaiveConv(const Tensor& x, const Tensor& w, const std::vector<float>& b, int64_t group,
                 const Spatial& sp, std::vector<int64_t> out = {}) {
  const int64_t n_images = x.shape[0], maps = w.shape[0], cg = w.shape[1];
  const std::vector<int64_t> in = Tail(x.shape), kernel = Tail(w.shape);
  const size_t rank = in.size();
  if (out.empty()) out = OutShape(in, kernel, sp);
  std::vector<int64_t> y_shape = {n_images, maps};
  y_shape.insert(y_shape.end(), out.begin(), out.end());
  Tensor y = Tensor::Float(y_shape);
  for (int64_t yi = 0; yi < y.size(); ++yi) {
    const std::vector<int64_t> yc = Coords(yi, y_shape);
    const int64_t n = yc[0], m = yc[1], gi = m / (maps / group);
    double acc = b.empty() ? 0.0 : b[m];
    for (int64_t c = 0; c < cg; ++c) {
      for (int64_t ki = 0; ki < ShapeSize(kernel); ++ki) {
        const std::vector<int64_t> k = Coords(ki, kernel);
        std::vector<int64_t> xc = {n, gi * cg + c};
        bool inside = true;
        for (size_t a = 0; a < rank; ++a) {
          const int64_t i = yc[2 + a] * sp.Stride(a) - sp.PadBegin(a) + k[a] * sp.Dilation(a);
          inside = inside && i >= 0 && i < in[a];
          xc.push_back(i);
        }
        if (!inside) continue;
        std::vector<int64_t> wc = {m, c};
        wc.insert(wc.end(), k.begin(), k.end());
        acc += double(x.f[Flat(xc, x.shape)]) * w.f[Flat(wc, w.shape)];
      }
    }
    y.f[yi] = static_cast<float>(acc);
  }
  return y;
}

// Every x[n, c, i] times w[c, mm, k] added to y[n, group_of(c) * M/group + mm,
// i * stride - pad_begin + k * dilation] where that is inside y (spatial shape `out`).
Tensor NaiveConvTranspose(const Tensor& x, const Tensor& w, const std::vector<float>& b,
                          int64_t group, const Spatial& sp, const std::vector<int64_t>& out) {
  const int64_t n_images = x.shape[0], channels = x.shape[1], mg = w.shape[1];
  const int64_t cg = channels / group;
  const std::vector<int64_t> kernel = Tail(w.shape);
  const size_t rank = out.size();
  std::vector<int64_t> y_shape = {n_images, mg * group};
  y_shape.insert(y_shape.end(), out.begin(), out.end());
  std::vector<double> acc(static_cast<size_t>(ShapeSize(y_shape)), 0.0);
  for (int64_t yi = 0; yi < ShapeSize(y_shape); ++yi) {
    acc[yi] = b.empty() ? 0.0 : b[Coords(yi, y_shape)[1]];
  }
  for (int64_t xi = 0; xi < x.size(); ++xi) {
    const std::vector<int64_t> xc = Coords(xi, x.shape);
    const int64_t n = xc[0], c = xc[1], gi = c / cg;
    for (int64_t mm = 0; mm < mg; ++mm) {
      for (int64_t ki = 0; ki < ShapeSize(kernel); ++ki) {
        const std::vector<int64_t> k = Coords(ki, kernel);
        std::vector<int64_t> yc = {n, gi * mg + mm};
        bool inside = true;
        for (size_t a = 0; a < rank; ++a) {
          const int64_t o = xc[2 + a] * sp.Stride(a) - sp.PadBegin(a) + k[a] * sp.Dilation(a);
          inside = inside && o >= 0 && o < out[a];
          yc.push_back(o);
        }
        if (!inside) continue;
        std::vector<int64_t> wc = {c, mm};
        wc.insert(wc.end(), k.begin(), k.end());
        acc[Flat(yc, y_shape)] += double(x.f[xi]) * w.f[Flat(wc, w.shape)];
      }
    }
  }
  return Tensor::Float(y_shape, std::vector<float>(acc.begin(), acc.end()));
}

enum class Kind { kMax, kAverage, kAverageIncludePad, kLp };

// Every window o * stride - pad_begin + k * dilation: the max, the mean over the taps inside x
// (or, including pads, over the taps inside x and its pads), or (sum |x|^p)^(1/p).
Tensor NaivePool(const Tensor& x, Kind kind, const std::vector<int64_t>& kernel, const Spatial& sp,
                 const std::vector<int64_t>& out, double p = 2) {
  const std::vector<int64_t> in = Tail(x.shape);
  const size_t rank = in.size();
  std::vector<int64_t> y_shape = {x.shape[0], x.shape[1]};
  y_shape.insert(y_shape.end(), out.begin(), out.end());
  Tensor y = Tensor::Float(y_shape);
  for (int64_t yi = 0; yi < y.size(); ++yi) {
    const std::vector<int64_t> yc = Coords(yi, y_shape);
    double best = -INFINITY, sum = 0;
    int64_t inside_count = 0, padded_count = 0;
    for (int64_t ki = 0; ki < ShapeSize(kernel); ++ki) {
      const std::vector<int64_t> k = Coords(ki, kernel);
      std::vector<int64_t> xc = {yc[0], yc[1]};
      bool inside = true, in_pads = true;
      for (size_t a = 0; a < rank; ++a) {
        const int64_t i = yc[2 + a] * sp.Stride(a) - sp.PadBegin(a) + k[a] * sp.Dilation(a);
        inside = inside && i >= 0 && i < in[a];
        in_pads = in_pads && i < in[a] + sp.PadEnd(a, rank);
        xc.push_back(i);
      }
      padded_count += in_pads;
      if (!inside) continue;
      const double v = x.f[Flat(xc, x.shape)];
      best = std::max(best, v);
      sum += kind == Kind::kLp ? std::pow(std::fabs(v), p) : v;
      ++inside_count;
    }
    double r = best;
    if (kind == Kind::kAverage) r = sum / inside_count;
    if (kind == Kind::kAverageIncludePad) r = sum / padded_count;
    if (kind == Kind::kLp) r = std::pow(sum, 1 / p);
    y.f[yi] = static_cast<float>(r);
  }
  return y;
}

std::string Ints(const std::vector<int64_t>& v) {
  std::string s = "[";
  s += Dims(v);
  s += "]";
  return s;
}

// "strides = [..], pads = [..], dilations = [..]" for the non-empty fields.
std::string Attrs(const Spatial& sp) {
  std::string s;
  auto add = [&](const char* name, const std::vector<int64_t>& v) {
    if (!v.empty()) s += std::string(s.empty() ? "" : ", ") + name + " = " + Ints(v);
  };
  add("strides", sp.strides);
  add("pads", sp.pads);
  add("dilations", sp.dilations);
  return s;
}

// ---- Conv ---------------------------------------------------------------------------------------

TEST(ExecutorNn, ConvByHand) {
  // x = [[1, 2, 3], [4, 5, 6], [7, 8, 9]], w = [[1, 0], [0, -1]], b = 10: each output is
  // x[i][j] - x[i+1][j+1] + 10 = -4 + 10.
  const Tensor x = Tensor::Float({1, 1, 3, 3}, {1, 2, 3, 4, 5, 6, 7, 8, 9});
  const Inits w = {{"w", Tensor::Float({1, 1, 2, 2}, {1, 0, 0, -1})},
                   {"b", Tensor::Float({1}, {10})}};
  ExpectValues(RunY("y = Conv (x, w, b)", x, w), {1, 1, 2, 2}, {6, 6, 6, 6});
  // Padded by 1 on every side, stride 2: outputs at (-1, -1), (-1, 1), (1, -1), (1, 1):
  // -x[0][0], -x[0][2], -x[2][0], x[1][1] - x[2][2] (+ 10).
  ExpectValues(RunY("y = Conv <pads = [1, 1, 1, 1], strides = [2, 2]> (x, w, b)", x, w),
               {1, 1, 2, 2}, {9, 7, 3, 6});
}

TEST(ExecutorNn, ConvGroupsStridesPadsDilationsMatchTheDefinition) {
  const Tensor x = Random({2, 4, 9, 11}, 1);
  const Tensor w = Random({6, 2, 3, 2}, 2);
  const std::vector<float> b = Values(6, 3);
  const Spatial sp{{2, 1}, {1, 0, 2, 1}, {1, 2}};
  const Tensor y = RunY("y = Conv <group = 2, " + Attrs(sp) + "> (x, w, b)", x,
                        {{"w", w}, {"b", Tensor::Float({6}, b)}});
  ExpectClose(y, NaiveConv(x, w, b, 2, sp));
  // kernel_shape given (agreeing with W), no bias.
  ExpectClose(
      RunY("y = Conv <kernel_shape = [3, 2], group = 2, " + Attrs(sp) + "> (x, w)", x, {{"w", w}}),
      NaiveConv(x, w, {}, 2, sp));
}

TEST(ExecutorNn, DepthwiseConvMatchesTheDefinition) {
  const Tensor x = Random({2, 5, 12, 10}, 4);
  const std::vector<float> b = Values(10, 5);
  // group = C = M: one kernel per channel.
  const Tensor w = Random({5, 1, 3, 3}, 6);
  const Spatial sp{{2, 2}, {1, 1, 1, 1}, {}};
  ExpectClose(RunY("y = Conv <group = 5, " + Attrs(sp) + "> (x, w, b)", x,
                   {{"w", w}, {"b", Tensor::Float({5}, {b.begin(), b.begin() + 5})}}),
              NaiveConv(x, w, {b.begin(), b.begin() + 5}, 5, sp));
  // Channel multiplier 2 (M = 2C), stride 1, dilation 2, uneven pads.
  const Tensor w2 = Random({10, 1, 3, 2}, 7);
  const Spatial sp2{{}, {2, 0, 1, 3}, {2, 1}};
  ExpectClose(RunY("y = Conv <group = 5, " + Attrs(sp2) + "> (x, w, b)", x,
                   {{"w", w2}, {"b", Tensor::Float({10}, b)}}),
              NaiveConv(x, w2, b, 5, sp2));
}

TEST(ExecutorNn, Conv1DAnd3DMatchTheDefinition) {
  const Tensor x1 = Random({3, 4, 20}, 8);
  const Tensor w1 = Random({5, 4, 4}, 9);
  const Spatial sp1{{3}, {2, 1}, {2}};
  ExpectClose(RunY("y = Conv <" + Attrs(sp1) + "> (x, w)", x1, {{"w", w1}}),
              NaiveConv(x1, w1, {}, 1, sp1));
  const Tensor x3 = Random({2, 4, 5, 6, 7}, 10);
  const Tensor w3 = Random({4, 2, 2, 3, 2}, 11);
  const std::vector<float> b3 = Values(4, 12);
  const Spatial sp3{{1, 2, 2}, {1, 0, 1, 0, 1, 1}, {2, 1, 1}};
  ExpectClose(RunY("y = Conv <group = 2, " + Attrs(sp3) + "> (x, w, b)", x3,
                   {{"w", w3}, {"b", Tensor::Float({4}, b3)}}),
              NaiveConv(x3, w3, b3, 2, sp3));
}

TEST(ExecutorNn, ConvAutoPad) {
  // Input 7 x 5, kernel 4 x 3, strides 2 x 2: SAME gives ceil(7/2) x ceil(5/2) = 4 x 3 outputs;
  // total padding (4-1)*2 + 4 - 7 = 3 rows and (3-1)*2 + 3 - 5 = 2 columns. SAME_UPPER puts
  // the odd row at the end (1, 2), SAME_LOWER at the start (2, 1); columns are 1, 1 either way.
  const Tensor x = Random({1, 2, 7, 5}, 13);
  const Tensor w = Random({3, 2, 4, 3}, 14);
  const Inits inits = {{"w", w}};
  const Tensor upper =
      RunY("y = Conv <auto_pad = \"SAME_UPPER\", strides = [2, 2]> (x, w)", x, inits);
  EXPECT_EQ(upper.shape, (std::vector<int64_t>{1, 3, 4, 3}));
  ExpectClose(upper, NaiveConv(x, w, {}, 1, {{2, 2}, {1, 1, 2, 1}, {}}));
  const Tensor lower =
      RunY("y = Conv <auto_pad = \"SAME_LOWER\", strides = [2, 2]> (x, w)", x, inits);
  ExpectClose(lower, NaiveConv(x, w, {}, 1, {{2, 2}, {2, 1, 1, 1}, {}}));
  // VALID: no padding, floor((7 - 4) / 2) + 1 = 2 by floor((5 - 3) / 2) + 1 = 2.
  const Tensor valid = RunY("y = Conv <auto_pad = \"VALID\", strides = [2, 2]> (x, w)", x, inits);
  EXPECT_EQ(valid.shape, (std::vector<int64_t>{1, 3, 2, 2}));
  ExpectClose(valid, NaiveConv(x, w, {}, 1, {{2, 2}, {}, {}}));
  // NOTSET is the explicit pads (none here).
  ExpectClose(RunY("y = Conv <auto_pad = \"NOTSET\", strides = [2, 2]> (x, w)", x, inits), valid);
}

TEST(ExecutorNn, ConvInManyBlocksIsTheSameForEveryThreadCount) {
  // 128 input channels x 3 x 3 taps: the columns (every position of every image) are gathered
  // in blocks of about 128. 3 images of 9 x 9 give 243 columns, two blocks that straddle the
  // images; one of 12 x 12 gives two blocks inside it.
  for (const std::vector<int64_t>& shape :
       {std::vector<int64_t>{3, 128, 9, 9}, std::vector<int64_t>{1, 128, 12, 12}}) {
    const Tensor x = Random(shape, 15);
    const Tensor w = Random({8, 128, 3, 3}, 16);
    const std::vector<float> b = Values(8, 17);
    const Inits inits = {{"w", w}, {"b", Tensor::Float({8}, b)}};
    const std::string node = "y = Conv <pads = [1, 1, 1, 1]> (x, w, b)";
    const Tensor expected = NaiveConv(x, w, b, 1, {{}, {1, 1, 1, 1}, {}});
    std::vector<Tensor> runs;
    for (int threads : {1, 2, 3}) {
      SetThreadCount(threads);
      runs.push_back(RunY(node, x, inits));
    }
    SetThreadCount(0);
    ExpectClose(runs[0], expected, 2e-4f);
    for (const Tensor& t : runs) {
      ASSERT_EQ(t.f.size(), runs[0].f.size());
      EXPECT_EQ(std::memcmp(t.f.data(), runs[0].f.data(), t.f.size() * sizeof(float)), 0);
    }
  }
}

TEST(ExecutorNn, ConvRefusesBadShapesAndAttributes) {
  const Tensor x = Random({1, 4, 5, 5}, 18);
  const Inits w = {{"w", Random({2, 2, 3, 3}, 19)}};
  const Inits w4 = {{"w", Random({2, 4, 3, 3}, 19)}};
  EXPECT_NE(ErrorOf("y = Conv <group = 0> (x, w)", x, w).find("group 0 is not positive"),
            std::string::npos);
  EXPECT_NE(ErrorOf("y = Conv <group = 3> (x, w)", x, w).find("channels in 3 groups"),
            std::string::npos);
  EXPECT_NE(ErrorOf("y = Conv (x, w)", x, w).find("2 input channels per group"), std::string::npos);
  EXPECT_NE(ErrorOf("y = Conv <group = 2> (x, w)", x, {{"w", Random({3, 2, 3, 3}, 1)}})
                .find("do not divide into 2 groups"),
            std::string::npos);
  EXPECT_NE(ErrorOf("y = Conv (x, w)", x, {{"w", Random({2, 4, 3}, 1)}}).find("has rank 3"),
            std::string::npos);
  EXPECT_NE(ErrorOf("y = Conv (x, w)", x, {{"w", Random({2, 4, 6, 3}, 1)}})
                .find("larger than the padded input"),
            std::string::npos);
  EXPECT_NE(ErrorOf("y = Conv <pads = [0, 0, -1, 0]> (x, w)", x, w4).find("pads value -1"),
            std::string::npos);
  EXPECT_NE(ErrorOf("y = Conv <strides = [0, 1]> (x, w)", x, w4).find("strides value 0"),
            std::string::npos);
  EXPECT_NE(ErrorOf("y = Conv <strides = [1]> (x, w)", x, w4).find("strides has 1 values"),
            std::string::npos);
  EXPECT_NE(ErrorOf("y = Conv <dilations = [1, 0]> (x, w)", x, w4).find("dilations value 0"),
            std::string::npos);
  EXPECT_NE(ErrorOf("y = Conv <kernel_shape = [2, 2]> (x, w)", x, w4).find("disagrees with W"),
            std::string::npos);
  EXPECT_NE(ErrorOf("y = Conv <auto_pad = \"SAME\"> (x, w)", x, w4).find("auto_pad 'SAME'"),
            std::string::npos);
  EXPECT_NE(ErrorOf("y = Conv <auto_pad = \"VALID\", pads = [1, 1, 1, 1]> (x, w)", x, w4)
                .find("pads cannot be given with auto_pad"),
            std::string::npos);
  Inits wb = w4;
  wb["b"] = Tensor::Float({3}, {1, 2, 3});
  EXPECT_NE(ErrorOf("y = Conv (x, w, b)", x, wb).find("should be [2]"), std::string::npos);
  EXPECT_NE(ErrorOf("y = Conv (x, w)", Random({4, 5}, 1), {{"w", Random({2, 5}, 1)}})
                .find("rank 3 or more"),
            std::string::npos);
  // Pads that would make an enormous output are refused, not allocated.
  EXPECT_NE(ErrorOf("y = Conv <pads = [2000000000, 2000000000, 0, 0]> (x, w)", x, w4)
                .find("larger than the executor allows"),
            std::string::npos);
}

// ---- ConvTranspose ------------------------------------------------------------------------------

TEST(ExecutorNn, ConvTransposeByHand) {
  // 1-D, stride 2: each input value stamps the kernel [1, 10] at 2i: [1, 10, 2, 20, 3, 30].
  const Tensor x = Tensor::Float({1, 1, 3}, {1, 2, 3});
  ExpectValues(RunY("y = ConvTranspose <strides = [2]> (x, w)", x,
                    {{"w", Tensor::Float({1, 1, 2}, {1, 10})}}),
               {1, 1, 6}, {1, 10, 2, 20, 3, 30});
  // Stride 1, kernel [1, 1, 1]: overlapping stamps sum: [1, 3, 6, 5, 3]; pads [1, 1] cut one
  // from each end; bias 0.5 everywhere.
  ExpectValues(
      RunY("y = ConvTranspose <pads = [1, 1]> (x, w, b)", x,
           {{"w", Tensor::Float({1, 1, 3}, {1, 1, 1})}, {"b", Tensor::Float({1}, {0.5f})}}),
      {1, 1, 3}, {3.5f, 6.5f, 5.5f});
}

TEST(ExecutorNn, ConvTransposeGroupsStridesPadsDilationsOutputPaddingMatchTheDefinition) {
  const Tensor x = Random({2, 4, 5, 4}, 20);
  const Tensor w = Random({4, 3, 3, 2}, 21);  // C = 4, M / group = 3, group 2: M = 6
  const std::vector<float> b = Values(6, 22);
  const Spatial sp{{2, 3}, {1, 0, 0, 2}, {2, 1}};
  // Output: stride * (in - 1) + output_padding + dilated kernel - pads:
  // 2 * 4 + 1 + 5 - 1 = 13 and 3 * 3 + 1 + 2 - 2 = 10.
  const Tensor y =
      RunY("y = ConvTranspose <group = 2, output_padding = [1, 1], " + Attrs(sp) + "> (x, w, b)", x,
           {{"w", w}, {"b", Tensor::Float({6}, b)}});
  EXPECT_EQ(y.shape, (std::vector<int64_t>{2, 6, 13, 10}));
  ExpectClose(y, NaiveConvTranspose(x, w, b, 2, sp, {13, 10}));
}

TEST(ExecutorNn, ConvTransposeOutputShapeAndAutoPad) {
  const Tensor x = Random({1, 2, 3, 4}, 23);
  const Tensor w = Random({2, 2, 3, 3}, 24);
  const Inits inits = {{"w", w}};
  // Stride 2, kernel 3: the full output is 2 * 2 + 3 = 7 rows, 2 * 3 + 3 = 9 columns.
  // output_shape [6, 9]: one row of padding, at the start (NOTSET puts the odd one first).
  ExpectClose(RunY("y = ConvTranspose <strides = [2, 2], output_shape = [6, 9]> (x, w)", x, inits),
              NaiveConvTranspose(x, w, {}, 1, {{2, 2}, {1, 0, 0, 0}, {}}, {6, 9}));
  // The whole shape may be given; pads are then ignored.
  ExpectClose(RunY("y = ConvTranspose <strides = [2, 2], pads = [3, 3, 3, 3], "
                   "output_shape = [1, 2, 6, 9]> (x, w)",
                   x, inits),
              NaiveConvTranspose(x, w, {}, 1, {{2, 2}, {1, 0, 0, 0}, {}}, {6, 9}));
  // An output larger than the full result extends it at the end with zeros.
  ExpectClose(RunY("y = ConvTranspose <strides = [2, 2], output_shape = [8, 10]> (x, w)", x, inits),
              NaiveConvTranspose(x, w, {}, 1, {{2, 2}, {}, {}}, {8, 10}));
  // SAME: output = input * stride = 6 x 8; padding 1 row (7 - 6) and 1 column (9 - 8):
  // SAME_UPPER at the end, SAME_LOWER at the start.
  ExpectClose(
      RunY("y = ConvTranspose <strides = [2, 2], auto_pad = \"SAME_UPPER\"> (x, w)", x, inits),
      NaiveConvTranspose(x, w, {}, 1, {{2, 2}, {0, 0, 1, 1}, {}}, {6, 8}));
  ExpectClose(
      RunY("y = ConvTranspose <strides = [2, 2], auto_pad = \"SAME_LOWER\"> (x, w)", x, inits),
      NaiveConvTranspose(x, w, {}, 1, {{2, 2}, {1, 1, 0, 0}, {}}, {6, 8}));
  // VALID: no padding.
  ExpectClose(RunY("y = ConvTranspose <strides = [2, 2], auto_pad = \"VALID\"> (x, w)", x, inits),
              NaiveConvTranspose(x, w, {}, 1, {{2, 2}, {}, {}}, {7, 9}));
}

TEST(ExecutorNn, ConvTranspose1DAnd3DAndManyChannelsMatchTheDefinition) {
  const Tensor x1 = Random({2, 3, 7}, 25);
  const Tensor w1 = Random({3, 2, 4}, 26);
  const Spatial sp1{{3}, {2, 1}, {2}};
  // 3 * 6 + 7 - 3 = 22.
  ExpectClose(RunY("y = ConvTranspose <" + Attrs(sp1) + "> (x, w)", x1, {{"w", w1}}),
              NaiveConvTranspose(x1, w1, {}, 1, sp1, {22}));
  const Tensor x3 = Random({1, 2, 3, 4, 3}, 27);
  const Tensor w3 = Random({2, 2, 2, 3, 2}, 28);
  const std::vector<float> b3 = Values(4, 29);
  const Spatial sp3{{2, 1, 2}, {0, 1, 0, 1, 0, 0}, {1, 1, 2}};
  // 2*2 + 2 - 1 = 5, 1*3 + 3 - 1 = 5, 2*2 + 3 = 7.
  ExpectClose(RunY("y = ConvTranspose <group = 2, " + Attrs(sp3) + "> (x, w, b)", x3,
                   {{"w", w3}, {"b", Tensor::Float({4}, b3)}}),
              NaiveConvTranspose(x3, w3, b3, 2, sp3, {5, 5, 7}));
  // 40 output channels (several pieces per image) over 32 x 32 inputs (several blocks).
  const Tensor x = Random({2, 3, 32, 32}, 30);
  const Tensor w = Random({3, 40, 3, 3}, 31);
  const std::vector<float> b = Values(40, 32);
  const Spatial sp{{1, 1}, {1, 1, 1, 1}, {}};
  std::vector<Tensor> runs;
  for (int threads : {1, 3}) {
    SetThreadCount(threads);
    runs.push_back(RunY("y = ConvTranspose <pads = [1, 1, 1, 1]> (x, w, b)", x,
                        {{"w", w}, {"b", Tensor::Float({40}, b)}}));
  }
  SetThreadCount(0);
  ExpectClose(runs[0], NaiveConvTranspose(x, w, b, 1, sp, {32, 32}));
  EXPECT_EQ(std::memcmp(runs[0].f.data(), runs[1].f.data(), runs[0].f.size() * 4), 0);
}

TEST(ExecutorNn, ConvTransposeRefusesBadShapesAndAttributes) {
  const Tensor x = Random({1, 4, 3, 3}, 33);
  const Inits w = {{"w", Random({4, 2, 3, 3}, 34)}};
  EXPECT_NE(ErrorOf("y = ConvTranspose (x, w)", x, {{"w", Random({3, 2, 3, 3}, 1)}})
                .find("should have X's 4 channels first"),
            std::string::npos);
  EXPECT_NE(ErrorOf("y = ConvTranspose <group = 3> (x, w)", x, w).find("in 3 groups"),
            std::string::npos);
  EXPECT_NE(ErrorOf("y = ConvTranspose <group = -1> (x, w)", x, w).find("not positive"),
            std::string::npos);
  EXPECT_NE(ErrorOf("y = ConvTranspose <pads = [3, 3, 3, 3]> (x, w)", x, w)
                .find("the output would have -1 elements"),
            std::string::npos);
  EXPECT_NE(ErrorOf("y = ConvTranspose <output_shape = [5]> (x, w)", x, w)
                .find("output_shape has 1 values"),
            std::string::npos);
  EXPECT_NE(ErrorOf("y = ConvTranspose <output_padding = [-1, 0]> (x, w)", x, w)
                .find("output_padding value -1"),
            std::string::npos);
  EXPECT_NE(ErrorOf("y = ConvTranspose <strides = [1, 0]> (x, w)", x, w).find("strides value 0"),
            std::string::npos);
  EXPECT_NE(
      ErrorOf("y = ConvTranspose (x, w)", x, {{"w", Random({4, 2, 3}, 1)}}).find("has rank 3"),
      std::string::npos);
}

// ---- Pooling ------------------------------------------------------------------------------------

TEST(ExecutorNn, MaxAndAveragePoolByHand) {
  const Tensor x = Tensor::Float({1, 1, 4, 4}, {1, 2, 3, 4,      //
                                                5, 6, 7, 8,      //
                                                -1, -2, -3, -4,  //
                                                0, 9, 0, 10});
  ExpectValues(RunY("y = MaxPool <kernel_shape = [2, 2], strides = [2, 2]> (x)", x), {1, 1, 2, 2},
               {6, 8, 9, 10});
  ExpectValues(RunY("y = AveragePool <kernel_shape = [2, 2], strides = [2, 2]> (x)", x),
               {1, 1, 2, 2}, {3.5f, 5.5f, 1.5f, 0.75f});
  // 1-D average with pads 1: windows [pad, 1, 2], [2, 3, 4] -> 3 / 2 and 9 / 3 without the pad
  // in the count, 3 / 3 with it.
  const Tensor v = Tensor::Float({1, 1, 4}, {1, 2, 3, 4});
  ExpectValues(RunY("y = AveragePool <kernel_shape = [3], strides = [2], pads = [1, 0]> (x)", v),
               {1, 1, 2}, {1.5f, 3});
  ExpectValues(RunY("y = AveragePool <kernel_shape = [3], strides = [2], pads = [1, 0], "
                    "count_include_pad = 1> (x)",
                    v),
               {1, 1, 2}, {1, 3});
}

TEST(ExecutorNn, CeilModeDropsAWindowThatStartsInTheEndPadding) {
  // Input 5, kernel 2, stride 2, pads 1 and 1: ceil((5 + 2 - 2) / 2) + 1 = 4 windows, but the
  // fourth would start at 5, in the end padding, so there are 3 (as PyTorch computes).
  const Tensor x = Tensor::Float({1, 1, 5}, {1, 2, 3, 4, 5});
  ExpectValues(RunY("y = MaxPool <kernel_shape = [2], strides = [2], pads = [1, 1], "
                    "ceil_mode = 1> (x)",
                    x),
               {1, 1, 3}, {1, 3, 5});
  // Floor mode: floor(5 / 2) + 1 = 3 as well; without pads, ceil mode keeps the partial window.
  ExpectValues(RunY("y = MaxPool <kernel_shape = [2], strides = [2], ceil_mode = 1> (x)", x),
               {1, 1, 3}, {2, 4, 5});
  ExpectValues(RunY("y = MaxPool <kernel_shape = [2], strides = [2]> (x)", x), {1, 1, 2}, {2, 4});
  // Input 6, kernel 3, stride 2, pads 1 and 1, ceil: 4 windows starting at -1, 1, 3, 5; the
  // last holds x[5], the end pad and one place past it. count_include_pad divides by the
  // taps inside input + pads: 2.
  const Tensor v = Tensor::Float({1, 1, 6}, {1, 2, 3, 4, 5, 6});
  ExpectValues(RunY("y = AveragePool <kernel_shape = [3], strides = [2], pads = [1, 1], "
                    "ceil_mode = 1, count_include_pad = 1> (x)",
                    v),
               {1, 1, 4}, {1, 3, 5, 3});
  ExpectValues(RunY("y = AveragePool <kernel_shape = [3], strides = [2], pads = [1, 1], "
                    "ceil_mode = 1> (x)",
                    v),
               {1, 1, 4}, {1.5f, 3, 5, 6});
}

TEST(ExecutorNn, PoolsMatchTheDefinition) {
  const Tensor x = Random({2, 3, 9, 8}, 35);
  const std::vector<int64_t> k = {3, 2};
  const Spatial sp{{2, 3}, {1, 1, 2, 1}, {}};
  // (9 + 3 - 3) / 2 + 1 = 5, (8 + 2 - 2) / 3 + 1 = 3.
  const std::vector<int64_t> out = {5, 3};
  const std::string attrs = "kernel_shape = [3, 2], " + Attrs(sp);
  ExpectClose(RunY("y = MaxPool <" + attrs + "> (x)", x), NaivePool(x, Kind::kMax, k, sp, out));
  ExpectClose(RunY("y = AveragePool <" + attrs + "> (x)", x),
              NaivePool(x, Kind::kAverage, k, sp, out));
  ExpectClose(RunY("y = AveragePool <count_include_pad = 1, " + attrs + "> (x)", x),
              NaivePool(x, Kind::kAverageIncludePad, k, sp, out));
  ExpectClose(RunY("y = LpPool <" + attrs + "> (x)", x), NaivePool(x, Kind::kLp, k, sp, out, 2));
  ExpectClose(RunY("y = LpPool <p = 1, " + attrs + "> (x)", x),
              NaivePool(x, Kind::kLp, k, sp, out, 1));
  ExpectClose(RunY("y = LpPool <p = 3, " + attrs + "> (x)", x),
              NaivePool(x, Kind::kLp, k, sp, out, 3));
  // MaxPool with dilations: extent (3 - 1) * 2 + 1 = 5 rows: (9 + 3 - 5) / 2 + 1 = 4.
  const Spatial dil{{2, 3}, {1, 1, 2, 1}, {2, 1}};
  ExpectClose(RunY("y = MaxPool <kernel_shape = [3, 2], " + Attrs(dil) + "> (x)", x),
              NaivePool(x, Kind::kMax, k, dil, {4, 3}));
  // Ceil mode, 2-D, strides 2 x 4, pads 1 at the starts: (9 + 1 - 3) / 2 = 3.5 -> 5 rows
  // (floor: 4), the last window at 7..9 reaching past the input; (8 + 1 - 2) / 4 = 1.75 -> 3
  // columns (floor: 2), the last at 7..8. With these pads the windows of `sp` would start in
  // the end padding and be dropped: 5 x 3, as in floor mode.
  const Spatial ceil{{2, 4}, {1, 1, 0, 0}, {}};
  const std::string ceil_attrs = "ceil_mode = 1, kernel_shape = [3, 2], " + Attrs(ceil);
  ExpectClose(RunY("y = MaxPool <" + ceil_attrs + "> (x)", x),
              NaivePool(x, Kind::kMax, k, ceil, {5, 3}));
  ExpectClose(RunY("y = AveragePool <" + ceil_attrs + "> (x)", x),
              NaivePool(x, Kind::kAverage, k, ceil, {5, 3}));
  ExpectClose(RunY("y = AveragePool <count_include_pad = 1, " + ceil_attrs + "> (x)", x),
              NaivePool(x, Kind::kAverageIncludePad, k, ceil, {5, 3}));
  EXPECT_EQ(RunY("y = MaxPool <ceil_mode = 1, " + attrs + "> (x)", x).shape,
            (std::vector<int64_t>{2, 3, 5, 3}));
}

TEST(ExecutorNn, Pools1DAnd3DAndAutoPad) {
  const Tensor x1 = Random({2, 2, 11}, 36);
  const Spatial sp1{{3}, {2, 1}, {2}};
  // (11 + 3 - 5) / 3 + 1 = 4.
  ExpectClose(RunY("y = MaxPool <kernel_shape = [3], " + Attrs(sp1) + "> (x)", x1),
              NaivePool(x1, Kind::kMax, {3}, sp1, {4}));
  const Tensor x3 = Random({1, 2, 5, 6, 4}, 37);
  const Spatial sp3{{2, 2, 1}, {1, 0, 1, 1, 1, 0}, {}};
  // (5 + 2 - 2) / 2 + 1 = 3, (6 + 1 - 3) / 2 + 1 = 3, (4 + 1 - 2) + 1 = 4.
  const std::string attrs3 = "kernel_shape = [2, 3, 2], " + Attrs(sp3);
  ExpectClose(RunY("y = AveragePool <" + attrs3 + "> (x)", x3),
              NaivePool(x3, Kind::kAverage, {2, 3, 2}, sp3, {3, 3, 4}));
  ExpectClose(RunY("y = MaxPool <" + attrs3 + "> (x)", x3),
              NaivePool(x3, Kind::kMax, {2, 3, 2}, sp3, {3, 3, 4}));
  // auto_pad on input 7 x 6, kernel 3 x 2, strides 2 x 2: SAME gives 4 x 3 outputs, total
  // padding (4-1)*2 + 3 - 7 = 2 rows and (3-1)*2 + 2 - 6 = 0 columns; kernel 2 x 2: 1 row,
  // at the end (UPPER) or the start (LOWER).
  const Tensor x = Random({1, 2, 7, 6}, 38);
  ExpectClose(RunY("y = AveragePool <kernel_shape = [3, 2], strides = [2, 2], "
                   "auto_pad = \"SAME_UPPER\"> (x)",
                   x),
              NaivePool(x, Kind::kAverage, {3, 2}, {{2, 2}, {1, 0, 1, 0}, {}}, {4, 3}));
  ExpectClose(RunY("y = MaxPool <kernel_shape = [2, 2], strides = [2, 2], "
                   "auto_pad = \"SAME_UPPER\"> (x)",
                   x),
              NaivePool(x, Kind::kMax, {2, 2}, {{2, 2}, {0, 0, 1, 0}, {}}, {4, 3}));
  ExpectClose(RunY("y = MaxPool <kernel_shape = [2, 2], strides = [2, 2], "
                   "auto_pad = \"SAME_LOWER\"> (x)",
                   x),
              NaivePool(x, Kind::kMax, {2, 2}, {{2, 2}, {1, 0, 0, 0}, {}}, {4, 3}));
  ExpectClose(RunY("y = MaxPool <kernel_shape = [2, 2], strides = [2, 2], "
                   "auto_pad = \"VALID\"> (x)",
                   x),
              NaivePool(x, Kind::kMax, {2, 2}, {{2, 2}, {}, {}}, {3, 3}));
}

TEST(ExecutorNn, MaxPoolIndices) {
  // Two 2 x 3 planes, kernel 2 x 2, stride 1: maxima at (1, 1), (1, 2) in the first plane and
  // (0, 0), (1, 2) in the second. Row-major flat indices over the whole input, or with
  // storage_order 1 the spatial part column-major (h + w * 2).
  const Tensor x = Tensor::Float({1, 2, 2, 3}, {0, 1, 2, 3, 9, 8,  //
                                                7, 1, 2, 3, 4, 6});
  auto out = RunNode("y, i = MaxPool <kernel_shape = [2, 2]> (x)", x, {}, "float y, int64 i");
  ASSERT_TRUE(out.ok()) << out.status().message();
  ExpectValues(out->at("y"), {1, 2, 1, 2}, {9, 9, 7, 6});
  EXPECT_EQ(out->at("i").i, (std::vector<int64_t>{4, 4, 6, 11}));
  auto col = RunNode("y, i = MaxPool <kernel_shape = [2, 2], storage_order = 1> (x)", x, {},
                     "float y, int64 i");
  ASSERT_TRUE(col.ok()) << col.status().message();
  EXPECT_EQ(col->at("i").i, (std::vector<int64_t>{3, 3, 6, 11}));
}

TEST(ExecutorNn, GlobalPools) {
  const Tensor x = Tensor::Float({1, 2, 2, 2}, {1, -2, 3, 4, -1, -1, -1, -5});
  ExpectValues(RunY("y = GlobalAveragePool (x)", x), {1, 2, 1, 1}, {1.5f, -2});
  ExpectValues(RunY("y = GlobalMaxPool (x)", x), {1, 2, 1, 1}, {4, -1});
  // sqrt(1 + 4 + 9 + 16) = sqrt(30), sqrt(28); p = 1: 10, 8.
  ExpectValues(RunY("y = GlobalLpPool (x)", x), {1, 2, 1, 1}, {std::sqrt(30.0f), std::sqrt(28.0f)});
  ExpectValues(RunY("y = GlobalLpPool <p = 1> (x)", x), {1, 2, 1, 1}, {10, 8});
  // 1-D and 3-D spatial shapes.
  ExpectValues(RunY("y = GlobalAveragePool (x)", Tensor::Float({2, 1, 3}, {1, 2, 3, 4, 5, 9})),
               {2, 1, 1}, {2, 6});
  const Tensor x3 = Random({2, 3, 2, 3, 4}, 39);
  const Tensor y3 = RunY("y = GlobalMaxPool (x)", x3);
  EXPECT_EQ(y3.shape, (std::vector<int64_t>{2, 3, 1, 1, 1}));
  ExpectClose(y3, NaivePool(x3, Kind::kMax, {2, 3, 4}, {}, {1, 1, 1}));
  ExpectClose(RunY("y = GlobalAveragePool (x)", x3),
              NaivePool(x3, Kind::kAverage, {2, 3, 4}, {}, {1, 1, 1}));
}

TEST(ExecutorNn, PoolsRefuseBadAttributes) {
  const Tensor x = Random({1, 1, 5, 5}, 40);
  EXPECT_NE(ErrorOf("y = MaxPool (x)", x).find("kernel_shape is missing"), std::string::npos);
  EXPECT_NE(ErrorOf("y = MaxPool <kernel_shape = [2]> (x)", x).find("kernel_shape has 1 values"),
            std::string::npos);
  EXPECT_NE(ErrorOf("y = MaxPool <kernel_shape = [2, 0]> (x)", x).find("kernel_shape value 0"),
            std::string::npos);
  EXPECT_NE(ErrorOf("y = AveragePool <kernel_shape = [2, 2], pads = [2, 0, 0, 0]> (x)", x)
                .find("not smaller than the kernel's extent 2"),
            std::string::npos);
  EXPECT_NE(ErrorOf("y = MaxPool <kernel_shape = [6, 2]> (x)", x).find("larger than the padded"),
            std::string::npos);
  EXPECT_NE(ErrorOf("y = MaxPool <kernel_shape = [2, 2], strides = [0, 1]> (x)", x)
                .find("strides value 0"),
            std::string::npos);
  EXPECT_NE(ErrorOf("y = LpPool <kernel_shape = [2, 2], p = 0> (x)", x).find("not positive"),
            std::string::npos);
  EXPECT_NE(ErrorOf("y = MaxPool <kernel_shape = [2]> (x)", Random({2, 5}, 1)).find("rank 3"),
            std::string::npos);
  EXPECT_NE(ErrorOf("y = GlobalMaxPool (x)", Random({2}, 1)).find("N x C"), std::string::npos);
}

TEST(ExecutorNn, EmptyTensorsGiveEmptyOrBiasOutputs) {
  // No input channels: the convolution sums nothing, Y is the bias.
  ExpectValues(RunY("y = Conv (x, w, b)", Tensor::Float({1, 0, 3, 3}),
                    {{"w", Tensor::Float({2, 0, 2, 2})}, {"b", Tensor::Float({2}, {1, -1})}}),
               {1, 2, 2, 2}, {1, 1, 1, 1, -1, -1, -1, -1});
  ExpectValues(RunY("y = ConvTranspose (x, w, b)", Tensor::Float({1, 0, 2}),
                    {{"w", Tensor::Float({0, 1, 2})}, {"b", Tensor::Float({1}, {3})}}),
               {1, 1, 3}, {3, 3, 3});
  // No images: an empty output, even where a hostile kernel and pads make an axis ~2^31 long.
  EXPECT_EQ(
      RunY("y = Conv (x, w)", Tensor::Float({0, 2, 4, 4}), {{"w", Random({3, 2, 3, 3}, 1)}}).shape,
      (std::vector<int64_t>{0, 3, 2, 2}));
  const Tensor y = RunY(
      "y = MaxPool <kernel_shape = [2000000000, 1], pads = [1999999999, 0, 1999999999, 0]> (x)",
      Tensor::Float({0, 1, 5, 5}));
  EXPECT_EQ(y.shape, (std::vector<int64_t>{0, 1, 2000000004, 5}));
  EXPECT_TRUE(y.f.empty());
}

// ---- Normalization ------------------------------------------------------------------------------

TEST(ExecutorNn, BatchNormalizationByHand) {
  // Channel 0: (x - 1) / sqrt(4 + 0) * 2 + 1 = x; channel 1: (x - 0) / sqrt(0.25) * 1 - 1.
  const Tensor x = Tensor::Float({2, 2, 2}, {1, 3, 1, 2, 5, 7, -1, 0});
  const Inits p = {{"s", Tensor::Float({2}, {2, 1})},
                   {"b", Tensor::Float({2}, {1, -1})},
                   {"m", Tensor::Float({2}, {1, 0})},
                   {"v", Tensor::Float({2}, {4, 0.25f})}};
  ExpectValues(RunY("y = BatchNormalization <epsilon = 0.0> (x, s, b, m, v)", x, p), {2, 2, 2},
               {1, 3, 1, 3, 5, 7, -3, -1});
  // Default epsilon 1e-5: channel 1's divisor is sqrt(0.25 + 1e-5).
  const Tensor y = RunY("y = BatchNormalization (x, s, b, m, v)", x, p);
  EXPECT_NEAR(y.f[2], 1.0 / std::sqrt(0.25 + 1e-5) - 1, 1e-6);
  // training_mode = 1: the batch's statistics. Channel 0 holds 1, 3, 5, 7 (mean 4, variance
  // 5), channel 1 holds 1, 2, -1, 0 (mean 0.5, variance 1.25); the running statistics move
  // 10% of the way (momentum 0.9) from m and v towards them.
  auto train = RunNode(
      "y, rm, rv = BatchNormalization <training_mode = 1, epsilon = 0.0> "
      "(x, s, b, m, v)",
      x, p, "float y, float rm, float rv");
  ASSERT_TRUE(train.ok()) << train.status().message();
  const float r5 = 1 / std::sqrt(5.0f), r125 = 1 / std::sqrt(1.25f);
  ExpectValues(train->at("y"), {2, 2, 2},
               {-3 * r5 * 2 + 1, -1 * r5 * 2 + 1, 0.5f * r125 - 1, 1.5f * r125 - 1, 1 * r5 * 2 + 1,
                3 * r5 * 2 + 1, -1.5f * r125 - 1, -0.5f * r125 - 1});
  ExpectValues(train->at("rm"), {2}, {0.9f * 1 + 0.1f * 4, 0.9f * 0 + 0.1f * 0.5f});
  ExpectValues(train->at("rv"), {2}, {0.9f * 4 + 0.1f * 5, 0.9f * 0.25f + 0.1f * 1.25f});
  // A 1-D input is one channel.
  ExpectValues(
      RunY("y = BatchNormalization <epsilon = 0.0> (x, s, b, m, v)", Tensor::Float({3}, {1, 3, 5}),
           {{"s", Tensor::Float({1}, {2})},
            {"b", Tensor::Float({1}, {0})},
            {"m", Tensor::Float({1}, {1})},
            {"v", Tensor::Float({1}, {4})}}),
      {3}, {0, 2, 4});
}

TEST(ExecutorNn, BatchNormalizationRefusesBadStatistics) {
  const Tensor x = Random({2, 3, 4}, 41);
  Inits p = {{"s", Random({3}, 1)},
             {"b", Random({3}, 2)},
             {"m", Random({3}, 3)},
             {"v", Tensor::Float({3}, {1, 2, 3})}};
  p["m"] = Random({4}, 3);
  EXPECT_NE(
      ErrorOf("y = BatchNormalization (x, s, b, m, v)", x, p).find("input_mean [4] should be [3]"),
      std::string::npos);
}

// (x - mean) / sqrt(var + eps) over `count` values `stride` apart starting at `first`.
void NaiveNormalize(const std::vector<float>& x, std::vector<float>* y, int64_t first,
                    int64_t count, int64_t stride, double eps) {
  double mean = 0, var = 0;
  for (int64_t i = 0; i < count; ++i) mean += x[first + i * stride];
  mean /= count;
  for (int64_t i = 0; i < count; ++i) var += std::pow(x[first + i * stride] - mean, 2);
  var /= count;
  for (int64_t i = 0; i < count; ++i) {
    (*y)[first + i * stride] =
        static_cast<float>((x[first + i * stride] - mean) / std::sqrt(var + eps));
  }
}

TEST(ExecutorNn, InstanceNormalization) {
  const Tensor x = Random({2, 3, 4, 5}, 42);
  const std::vector<float> s = Values(3, 43), b = Values(3, 44);
  std::vector<float> e(x.f.size());
  for (int64_t plane = 0; plane < 6; ++plane) NaiveNormalize(x.f, &e, plane * 20, 20, 1, 1e-5);
  for (size_t i = 0; i < e.size(); ++i) e[i] = e[i] * s[i / 20 % 3] + b[i / 20 % 3];
  ExpectClose(RunY("y = InstanceNormalization (x, s, b)", x,
                   {{"s", Tensor::Float({3}, s)}, {"b", Tensor::Float({3}, b)}}),
              Tensor::Float(x.shape, e));
  EXPECT_NE(ErrorOf("y = InstanceNormalization (x, s, b)", x,
                    {{"s", Random({2}, 1)}, {"b", Tensor::Float({3}, b)}})
                .find("scale [2] should be [3]"),
            std::string::npos);
}

TEST(ExecutorNn, LayerNormalization) {
  // By hand: [1, 2, 3, 4] has mean 2.5, variance 1.25.
  const Tensor h = Tensor::Float({1, 4}, {1, 2, 3, 4});
  const double sd = std::sqrt(1.25 + 1e-5);
  ExpectValues(RunY("y = LayerNormalization (x, s)", h, {{"s", Tensor::Float({4}, {1, 1, 1, 2})}}),
               {1, 4}, {float(-1.5 / sd), float(-0.5 / sd), float(0.5 / sd), float(2 * 1.5 / sd)});
  // axis 1 of [2, 3, 4]: over the last 12 values; Scale [4] broadcast over [3, 4], B [3, 1].
  const Tensor x = Random({2, 3, 4}, 45);
  const std::vector<float> s = Values(4, 46), b = Values(3, 47);
  std::vector<float> e(x.f.size());
  for (int64_t row = 0; row < 2; ++row) NaiveNormalize(x.f, &e, row * 12, 12, 1, 1e-3);
  for (size_t i = 0; i < e.size(); ++i) e[i] = e[i] * s[i % 4] + b[i / 4 % 3];
  auto out = RunNode("y, mean, inv = LayerNormalization <axis = 1, epsilon = 0.001> (x, s, b)", x,
                     {{"s", Tensor::Float({4}, s)}, {"b", Tensor::Float({3, 1}, b)}},
                     "float y, float mean, float inv");
  ASSERT_TRUE(out.ok()) << out.status().message();
  ExpectClose(out->at("y"), Tensor::Float(x.shape, e));
  // Mean and InvStdDev shaped [2, 1, 1].
  for (int64_t row = 0; row < 2; ++row) {
    double mean = 0, var = 0;
    for (int i = 0; i < 12; ++i) mean += x.f[row * 12 + i] / 12.0;
    for (int i = 0; i < 12; ++i) var += std::pow(x.f[row * 12 + i] - mean, 2) / 12.0;
    EXPECT_EQ(out->at("mean").shape, (std::vector<int64_t>{2, 1, 1}));
    EXPECT_NEAR(out->at("mean").f[row], mean, 1e-6);
    EXPECT_NEAR(out->at("inv").f[row], 1 / std::sqrt(var + 1e-3), 1e-5);
  }
  // Default axis -1 on the same x.
  std::vector<float> e2(x.f.size());
  for (int64_t row = 0; row < 6; ++row) NaiveNormalize(x.f, &e2, row * 4, 4, 1, 1e-5);
  for (size_t i = 0; i < e2.size(); ++i) e2[i] *= s[i % 4];
  ExpectClose(RunY("y = LayerNormalization (x, s)", x, {{"s", Tensor::Float({4}, s)}}),
              Tensor::Float(x.shape, e2));
  EXPECT_NE(ErrorOf("y = LayerNormalization (x, s)", x, {{"s", Random({3}, 1)}})
                .find("does not broadcast to the normalized shape [4]"),
            std::string::npos);
  EXPECT_NE(ErrorOf("y = LayerNormalization <axis = 4> (x, s)", x, {{"s", Random({4}, 1)}})
                .find("axis 4 is out of range"),
            std::string::npos);
}

TEST(ExecutorNn, GroupNormalization) {
  // 4 channels in 2 groups: statistics over channels {0, 1} and {2, 3} of each image.
  const Tensor x = Random({2, 4, 3}, 48);
  const std::vector<float> s = Values(4, 49), b = Values(4, 50);
  std::vector<float> e(x.f.size());
  for (int64_t blk = 0; blk < 4; ++blk) NaiveNormalize(x.f, &e, blk * 6, 6, 1, 1e-5);
  std::vector<float> per_channel = e, per_group = e;
  for (size_t i = 0; i < e.size(); ++i) {
    const size_t c = i / 3 % 4;
    per_channel[i] = e[i] * s[c] + b[c];
    per_group[i] = e[i] * s[c / 2] + b[c / 2];
  }
  ExpectClose(RunY("y = GroupNormalization <num_groups = 2> (x, s, b)", x,
                   {{"s", Tensor::Float({4}, s)}, {"b", Tensor::Float({4}, b)}}),
              Tensor::Float(x.shape, per_channel));
  // Opset 18's scale and bias per group.
  ExpectClose(
      RunY("y = GroupNormalization <num_groups = 2> (x, s, b)", x,
           {{"s", Tensor::Float({2}, {s[0], s[1]})}, {"b", Tensor::Float({2}, {b[0], b[1]})}}),
      Tensor::Float(x.shape, per_group));
  EXPECT_NE(ErrorOf("y = GroupNormalization <num_groups = 3> (x, s, b)", x,
                    {{"s", Random({3}, 1)}, {"b", Random({3}, 2)}})
                .find("num_groups 3 does not divide the 4 channels"),
            std::string::npos);
  EXPECT_NE(
      ErrorOf("y = GroupNormalization (x, s, b)", x, {{"s", Random({4}, 1)}, {"b", Random({4}, 2)}})
          .find("num_groups is missing"),
      std::string::npos);
  EXPECT_NE(ErrorOf("y = GroupNormalization <num_groups = 2> (x, s, b)", x,
                    {{"s", Random({3}, 1)}, {"b", Random({4}, 2)}})
                .find("scale [3] should be [4]"),
            std::string::npos);
}

TEST(ExecutorNn, LpNormalization) {
  const Tensor x = Tensor::Float({2, 2}, {3, -4, 0, 0});
  ExpectValues(RunY("y = LpNormalization (x)", x), {2, 2}, {0.6f, -0.8f, 0, 0});
  ExpectValues(RunY("y = LpNormalization <p = 1> (x)", x), {2, 2}, {3.0f / 7, -4.0f / 7, 0, 0});
  // Axis 0: columns [3, 0] and [-4, 0].
  ExpectValues(RunY("y = LpNormalization <axis = 0> (x)", x), {2, 2}, {1, -1, 0, 0});
  EXPECT_NE(ErrorOf("y = LpNormalization <p = 3> (x)", x).find("p 3 is not 1 or 2"),
            std::string::npos);
  EXPECT_NE(ErrorOf("y = LpNormalization <axis = 2> (x)", x).find("out of range"),
            std::string::npos);
}

TEST(ExecutorNn, Lrn) {
  // Three channels 1, 2, 3 at one position; the window of size 2 is [c, c+1], of size 3
  // [c-1, c+1] (ONNX: floor((size-1)/2) before, ceil((size-1)/2) after), clipped at the edges.
  const Tensor x = Tensor::Float({1, 3, 1, 1}, {1, 2, 3});
  ExpectClose(
      RunY("y = LRN <size = 2, alpha = 1.0, beta = 1.0, bias = 1.0> (x)", x),
      Tensor::Float(x.shape, {1 / (1 + 5 / 2.0f), 2 / (1 + 13 / 2.0f), 3 / (1 + 9 / 2.0f)}));
  // beta 0.5 and bias 2: y = x / sqrt(2 + alpha / 3 * sum).
  ExpectClose(RunY("y = LRN <size = 3, alpha = 0.3, beta = 0.5, bias = 2.0> (x)", x),
              Tensor::Float(x.shape, {1 / std::sqrt(2 + 0.1f * 5), 2 / std::sqrt(2 + 0.1f * 14),
                                      3 / std::sqrt(2 + 0.1f * 13)}));
  EXPECT_NE(ErrorOf("y = LRN <size = 0> (x)", x).find("size 0 is not positive"), std::string::npos);
}

TEST(ExecutorNn, MeanVarianceNormalization) {
  // Default axes [0, 2, 3]: per channel over images and positions; (x - mean) / (sd + 1e-9).
  const Tensor x = Random({2, 3, 2, 2}, 51);
  std::vector<float> e(x.f.size());
  for (int64_t c = 0; c < 3; ++c) {
    std::vector<size_t> at;
    for (int64_t n = 0; n < 2; ++n) {
      for (int64_t i = 0; i < 4; ++i) at.push_back(static_cast<size_t>((n * 3 + c) * 4 + i));
    }
    double mean = 0, var = 0;
    for (size_t i : at) mean += x.f[i] / 8.0;
    for (size_t i : at) var += std::pow(x.f[i] - mean, 2) / 8.0;
    for (size_t i : at) e[i] = static_cast<float>((x.f[i] - mean) / (std::sqrt(var) + 1e-9));
  }
  ExpectClose(RunY("y = MeanVarianceNormalization (x)", x), Tensor::Float(x.shape, e));
  // axes [-1]: each row of the last axis.
  const Tensor r = Tensor::Float({2, 2}, {1, 3, 5, 5});
  ExpectValues(RunY("y = MeanVarianceNormalization <axes = [-1]> (x)", r), {2, 2}, {-1, 1, 0, 0});
  EXPECT_NE(ErrorOf("y = MeanVarianceNormalization (x)", r).find("axis 2 is out of range"),
            std::string::npos);
  EXPECT_NE(ErrorOf("y = MeanVarianceNormalization <axes = [1, -1]> (x)", r).find("repeat"),
            std::string::npos);
}

}  // namespace
}  // namespace executor_nn_test
}  // namespace reinit::exec
