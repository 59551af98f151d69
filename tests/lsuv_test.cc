// LSUV and the .npy reader: every LSUV layer of the sample models ends with output variance
// 1 ± tolerance, measured again independently on the written model; the options bound the
// iterations; the same seed gives the same bytes; real samples from a .npy file are used as
// given. The .npy files are written byte by byte in the tests.
#include "signal/lsuv.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>

#include "cli_util.h"
#include "io/model_io.h"
#include "reinit.h"
#include "signal/npy.h"
#include "signal/propagate.h"

namespace reinit {
namespace lsuv_test {
namespace {

using reinit_cli_test::ReadFile;
using reinit_cli_test::SourcePath;
using reinit_cli_test::TempDir;
using reinit_cli_test::WriteFile;

// A version 1.0 .npy file of `descr` with `shape` text and the raw data.
std::string Npy(const std::string& descr, const std::string& shape, const std::string& data,
                const std::string& fortran = "False") {
  std::string header =
      "{'descr': '" + descr + "', 'fortran_order': " + fortran + ", 'shape': " + shape + ", }";
  while ((10 + header.size() + 1) % 64 != 0) header += ' ';
  header += '\n';
  std::string out = "\x93NUMPY";
  out += '\x01';
  out += '\x00';
  out += static_cast<char>(header.size() & 0xff);
  out += static_cast<char>(header.size() >> 8);
  return out + header + data;
}

template <typename T>
std::string Bytes(const std::vector<T>& v) {
  return std::string(reinterpret_cast<const char*>(v.data()), v.size() * sizeof(T));
}

TEST(Npy, ReadsFloatsIntegersAndBools) {
  auto f = ParseNpy(Npy("<f4", "(2, 3)", Bytes<float>({1, 2, 3, 4, 5, 6})), "a.npy");
  ASSERT_TRUE(f.ok()) << f.status().message();
  EXPECT_EQ(f->shape, (std::vector<int64_t>{2, 3}));
  EXPECT_EQ(f->f, (std::vector<float>{1, 2, 3, 4, 5, 6}));
  auto d = ParseNpy(Npy("<f8", "(2,)", Bytes<double>({0.5, -1.25})), "d.npy");
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(d->f, (std::vector<float>{0.5f, -1.25f}));
  auto i = ParseNpy(Npy("<i8", "(3,)", Bytes<int64_t>({7, -1, 3})), "i.npy");
  ASSERT_TRUE(i.ok());
  EXPECT_EQ(i->type, exec::DType::kInt64);
  EXPECT_EQ(i->i, (std::vector<int64_t>{7, -1, 3}));
  auto u = ParseNpy(Npy("|u1", "(2,)", std::string("\x05\xff", 2)), "u.npy");
  ASSERT_TRUE(u.ok());
  EXPECT_EQ(u->i, (std::vector<int64_t>{5, 255}));
  auto b = ParseNpy(Npy("|b1", "(2,)", std::string("\x00\x01", 2)), "b.npy");
  ASSERT_TRUE(b.ok());
  EXPECT_EQ(b->type, exec::DType::kBool);
  auto scalar = ParseNpy(Npy("<f4", "()", Bytes<float>({3})), "s.npy");
  ASSERT_TRUE(scalar.ok());
  EXPECT_TRUE(scalar->shape.empty());
  EXPECT_EQ(scalar->f, (std::vector<float>{3}));
}

TEST(Npy, RefusesWhatItCannotReadNamingTheFile) {
  const std::string data = Bytes<float>({1, 2});
  for (const auto& [bytes, why] : std::vector<std::pair<std::string, std::string>>{
           {"not numpy at all", "magic"},
           {Npy("<f4", "(2,)", data, "True"), "Fortran"},
           {Npy(">f4", "(2,)", data), "big-endian"},
           {Npy("<f4", "(3,)", data), "holds 8 bytes of data"},
           {Npy("<c8", "(1,)", data), "dtype"},
           {Npy("<f4", "(-2,)", data), "shape"},
           {Npy("<f4", "(2,)", data).substr(0, 20), "truncated"}}) {
    auto r = ParseNpy(bytes, "x.npy");
    ASSERT_FALSE(r.ok()) << why;
    EXPECT_NE(r.status().message().find("'x.npy'"), std::string::npos) << r.status().message();
    EXPECT_NE(r.status().message().find(why), std::string::npos) << r.status().message();
  }
}

RunOptions Lsuv(const std::string& model, const std::string& out) {
  RunOptions o;
  o.input = model;
  o.output = out;
  o.plan.scheme = "lsuv";
  o.plan.seed = 3;
  o.inputs.batch = 32;
  return o;
}

// The variance of every LSUV layer's output, measured on the written model with the same
// inputs, independently of RunLsuv's own bookkeeping.
void ExpectUnitVariance(const std::string& written, const proto::Plan& plan,
                        const std::vector<Feeds>& feeds, double tolerance) {
  auto model = LoadModel(written);
  ASSERT_TRUE(model.ok()) << model.status().message();
  auto executor = exec::Executor::Create(*model);
  ASSERT_TRUE(executor.ok()) << executor.status().message();
  auto signal = Propagate(**executor, plan, feeds);
  ASSERT_TRUE(signal.ok()) << signal.status().message();
  int checked = 0;
  for (const auto& layer : plan.layers()) {
    if (!layer.has_lsuv()) continue;
    for (const auto& s : signal->layers) {
      if (s.name != layer.name()) continue;
      const double variance = s.before.std * s.before.std;
      EXPECT_NEAR(variance, 1.0, tolerance) << written << ": " << layer.name();
      // The float32 weights written reproduce what LSUV measured.
      EXPECT_NEAR(variance, layer.lsuv().variance(), 1e-3) << layer.name();
      ++checked;
    }
  }
  EXPECT_GT(checked, 0) << written;
}

class SampleModel : public ::testing::TestWithParam<std::string> {};

TEST_P(SampleModel, EveryLsuvLayerEndsWithUnitOutputVariance) {
  TempDir dir;
  const std::string in = SourcePath("models/" + GetParam());
  const std::string out = dir / "out.onnx";
  RunOptions o = Lsuv(in, out);
  auto r = ReinitFile(o);
  ASSERT_TRUE(r.ok()) << r.status().message();
  ASSERT_TRUE(HasLsuvLayers(r->plan));
  for (const auto& layer : r->plan.layers()) {
    if (!layer.has_lsuv()) continue;
    EXPECT_LE(layer.lsuv().iterations(), 10) << layer.name();
    EXPECT_EQ(layer.weight().scheme(), "orthogonal") << layer.name();
    if (layer.has_bias()) {
      EXPECT_EQ(layer.bias().scheme(), "zero") << layer.name();
    }
  }
  auto model = LoadModel(in);
  ASSERT_TRUE(model.ok());
  auto executor = exec::Executor::Create(*model);
  ASSERT_TRUE(executor.ok());
  auto feeds = RandomBatches(**executor, o.inputs);  // the batches LSUV measured on
  ASSERT_TRUE(feeds.ok());
  ExpectUnitVariance(out, r->plan, *feeds, 0.1);
}

INSTANTIATE_TEST_SUITE_P(Models, SampleModel,
                         ::testing::Values("mlp_tanh.onnx", "mlp_selu.onnx", "resnet_cnn.onnx",
                                           "plain_cnn.onnx", "grouped_convnet.onnx",
                                           "transformer_block.onnx", "dcgan_generator.onnx"),
                         [](const auto& info) {
                           std::string n = info.param;
                           return n.substr(0, n.find('.'));
                         });

// An export with a static batch of 1 (most of them): LSUV measures on batches of it until
// --batch samples, so its scales hold on fresh inputs. Measured on 2048 fresh samples (another
// seed): every layer within LSUV's tolerance plus 5 standard errors of a variance estimated on
// the 32 samples (sqrt(2/n) of n values), and closer to 1 than after measuring on one sample.
TEST(Lsuv, AStaticBatchOfOneIsMeasuredOnEnoughSamplesToHoldOnFreshInputs) {
  TempDir dir;
  auto model = LoadModel(SourcePath("models/mlp_tanh.onnx"));
  ASSERT_TRUE(model.ok());
  for (auto* v :
       {model->mutable_graph()->mutable_input(0), model->mutable_graph()->mutable_output(0)}) {
    v->mutable_type()->mutable_tensor_type()->mutable_shape()->mutable_dim(0)->set_dim_value(1);
  }
  const std::string in = dir / "static1.onnx";
  reinit_cli_test::SaveModelFile(*model, in);
  auto fresh_deviation = [&](int64_t samples, double* worst_excess) {
    const std::string out = dir / ("out" + std::to_string(samples) + ".onnx");
    RunOptions o = Lsuv(in, out);
    o.inputs.batch = samples;
    auto r = ReinitFile(o);
    EXPECT_TRUE(r.ok()) << r.status().message();
    auto written = LoadModel(out);
    EXPECT_TRUE(written.ok());
    auto executor = exec::Executor::Create(*written);
    EXPECT_TRUE(executor.ok());
    PropagateOptions fresh;
    fresh.batch = 2048;
    fresh.seed = 12345;
    auto batches = RandomBatches(**executor, fresh);
    EXPECT_TRUE(batches.ok());
    EXPECT_EQ(batches->size(), 2048u);  // batches of the static 1
    auto signal = Propagate(**executor, r->plan, *batches);
    EXPECT_TRUE(signal.ok());
    double sum2 = 0;
    int n = 0;
    *worst_excess = -1;
    for (const auto& layer : r->plan.layers()) {
      if (!layer.has_lsuv()) continue;
      for (const auto& s : signal->layers) {
        if (s.name != layer.name()) continue;
        const double v = s.before.std * s.before.std;
        const double values = static_cast<double>(samples * layer.weight().shape(0));
        const double bound = 0.1 + 5 * std::sqrt(2 / values);
        *worst_excess = std::max(*worst_excess, std::abs(v - 1) - bound);
        sum2 += (v - 1) * (v - 1);
        ++n;
      }
    }
    EXPECT_EQ(n, 10);
    return std::sqrt(sum2 / n);
  };
  double excess32 = 0, excess1 = 0;
  const double rms32 = fresh_deviation(32, &excess32);
  const double rms1 = fresh_deviation(1, &excess1);
  EXPECT_LE(excess32, 0) << "a layer's fresh variance is off by more than the bound";
  EXPECT_LT(rms32, rms1) << "32 samples: " << rms32 << ", one sample: " << rms1;
}

TEST(Lsuv, ToleranceAndIterationsBoundTheLoopAndTheSeedFixesTheBytes) {
  TempDir dir;
  const std::string in = SourcePath("models/mlp_tanh.onnx");
  RunOptions o = Lsuv(in, dir / "a.onnx");
  o.lsuv.tolerance = 1e-4;
  auto tight = ReinitFile(o);
  ASSERT_TRUE(tight.ok()) << tight.status().message();
  for (const auto& l : tight->plan.layers()) {
    if (l.has_lsuv()) {
      EXPECT_NEAR(l.lsuv().variance(), 1.0, 1e-4) << l.name();
    }
  }
  o.output = dir / "b.onnx";
  ASSERT_TRUE(ReinitFile(o).ok());
  EXPECT_EQ(ReadFile(dir / "a.onnx"), ReadFile(dir / "b.onnx"));
  o.output = dir / "c.onnx";
  o.lsuv.max_iterations = 1;
  o.lsuv.tolerance = 1e-9;
  auto once = ReinitFile(o);
  ASSERT_TRUE(once.ok());
  for (const auto& l : once->plan.layers()) {
    if (l.has_lsuv()) {
      EXPECT_EQ(l.lsuv().iterations(), 1) << l.name();
    }
  }
  o.output = dir / "d.onnx";
  o.lsuv.max_iterations = 10;
  o.plan.seed = 4;
  ASSERT_TRUE(ReinitFile(o).ok());
  EXPECT_NE(ReadFile(dir / "a.onnx"), ReadFile(dir / "d.onnx"));
}

TEST(Lsuv, RealSamplesFromANpyFileAreWhatItMeasuresOn) {
  TempDir dir;
  const std::string in = SourcePath("models/mlp_selu.onnx");
  // 20 samples of 48 features: a ramp, nothing like N(0, 1).
  std::vector<float> x(20 * 48);
  for (size_t k = 0; k < x.size(); ++k) x[k] = 3.0f + 0.01f * static_cast<float>(k % 97);
  WriteFile(dir / "x.npy", Npy("<f4", "(20, 48)", Bytes(x)));
  RunOptions o = Lsuv(in, dir / "out.onnx");
  o.data[""] = dir / "x.npy";
  auto r = ReinitFile(o);
  ASSERT_TRUE(r.ok()) << r.status().message();
  ExpectUnitVariance(dir / "out.onnx", r->plan, {Feeds{{"x", exec::Tensor::Float({20, 48}, x)}}},
                     0.1);
  // A file of the wrong shape or type is a usage error naming it.
  WriteFile(dir / "bad.npy", Npy("<f4", "(20, 47)", Bytes(std::vector<float>(20 * 47))));
  o.data[""] = dir / "bad.npy";
  auto bad = ReinitFile(o);
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().code(), StatusCode::kUsage);
  EXPECT_NE(bad.status().message().find("bad.npy"), std::string::npos);
  o.data.clear();
  o.data["nope"] = dir / "x.npy";
  EXPECT_FALSE(ReinitFile(o).ok());
}

}  // namespace
}  // namespace lsuv_test
}  // namespace reinit
