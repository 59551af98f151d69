// Fixed tensors: DFT bases, mel banks, windows and smoothing kernels recognised by their
// values (built here from their definitions), ordinary weights not; and the plan keeps them
// unless a --layer glob names them.
#include "graph/fixed.h"

#include <gtest/gtest.h>

#include <cmath>
#include <numbers>
#include <random>

#include "model_builder.h"
#include "plan/plan.h"

namespace reinit {
namespace fixed_test {
namespace {

onnx::TensorProto Tensor(const std::vector<int64_t>& dims, const std::vector<float>& v) {
  onnx::TensorProto t;
  t.set_data_type(onnx::TensorProto::FLOAT);
  for (int64_t d : dims) t.add_dims(d);
  t.set_raw_data(std::string(reinterpret_cast<const char*>(v.data()), v.size() * 4));
  return t;
}

double Hann(int n, int size) { return 0.5 - 0.5 * std::cos(2 * std::numbers::pi * n / size); }

// An STFT basis as torch-stft and silero write it: F = N/2 + 1 windowed cos rows, then (when
// `with_sin`) F windowed -sin rows; [rows, 1, N].
std::vector<float> DftBasis(int n, bool with_sin, bool swap_two_rows = false) {
  const int f = n / 2 + 1;
  std::vector<float> v;
  for (int part = 0; part < (with_sin ? 2 : 1); ++part) {
    for (int k = 0; k < f; ++k) {
      const int kk = swap_two_rows && k == 3 ? 8 : swap_two_rows && k == 8 ? 3 : k;
      for (int t = 0; t < n; ++t) {
        const double x = 2 * std::numbers::pi * kk * t / n;
        v.push_back(static_cast<float>(Hann(t, n) * (part == 0 ? std::cos(x) : -std::sin(x))));
      }
    }
  }
  return v;
}

// A mel-style bank [bins, filters]: triangles with rising peaks.
std::vector<float> MelBank(int bins, int filters) {
  std::vector<float> v(static_cast<size_t>(bins * filters), 0);
  for (int m = 0; m < filters; ++m) {
    const double lo = 1 + 2.0 * m, peak = lo + 2 + 0.1 * m, hi = peak + 2 + 0.1 * m;
    for (int b = 0; b < bins; ++b) {
      double w = b <= peak ? (b - lo) / (peak - lo) : (hi - b) / (hi - peak);
      v[static_cast<size_t>(b * filters + m)] = static_cast<float>(std::max(0.0, w));
    }
  }
  return v;
}

std::vector<float> Random(size_t n, unsigned seed, bool positive = false) {
  std::mt19937 gen(seed);
  std::normal_distribution<float> d(0, 0.1f);
  std::vector<float> v(n);
  for (auto& x : v) x = positive ? std::abs(d(gen)) : d(gen);
  return v;
}

TEST(Fixed, DftBasesAreRecognisedByTheirHarmonics) {
  const auto both = DftBasis(64, true);
  EXPECT_EQ(FixedTensorKind(Tensor({66, 1, 64}, both), "w", {66, 1, 64}, 0), "DFT basis");
  const auto cos_only = DftBasis(64, false);
  EXPECT_EQ(FixedTensorKind(Tensor({33, 1, 64}, cos_only), "w", {33, 1, 64}, 0), "DFT basis");
  // Two rows out of order: not one harmonic per row in order.
  const auto swapped = DftBasis(64, true, true);
  EXPECT_EQ(FixedTensorKind(Tensor({66, 1, 64}, swapped), "w", {66, 1, 64}, 0), std::nullopt);
  const auto random = Random(66 * 64, 1);
  EXPECT_EQ(FixedTensorKind(Tensor({66, 1, 64}, random), "w", {66, 1, 64}, 0), std::nullopt);
}

TEST(Fixed, MelBanksWindowsAndSmoothingKernels) {
  EXPECT_EQ(FixedTensorKind(Tensor({64, 12}, MelBank(64, 12)), "m", {64, 12}, 1),
            "mel filter bank");
  // A scaled identity: one-bin "filters" with rising peaks, but no filter bank.
  std::vector<float> identity(16 * 16, 0);
  for (int i = 0; i < 16; ++i) identity[static_cast<size_t>(i * 16 + i)] = 2;
  EXPECT_EQ(FixedTensorKind(Tensor({16, 16}, identity), "w", {16, 16}, 1), std::nullopt);
  // Non-negative but not triangles with rising peaks.
  EXPECT_EQ(FixedTensorKind(Tensor({64, 12}, Random(64 * 12, 2, true)), "m", {64, 12}, 1),
            std::nullopt);
  std::vector<float> hann, hamming_symmetric;
  for (int t = 0; t < 32; ++t) {
    hann.push_back(static_cast<float>(Hann(t, 32)));
    hamming_symmetric.push_back(
        static_cast<float>(0.54 - 0.46 * std::cos(2 * std::numbers::pi * t / 31)));
  }
  EXPECT_EQ(FixedTensorKind(Tensor({32}, hann), "t", {32}, -1), "window (hann)");
  EXPECT_EQ(FixedTensorKind(Tensor({32}, hamming_symmetric), "t", {32}, -1), "window (hamming)");
  EXPECT_EQ(FixedTensorKind(Tensor({32}, Random(32, 3)), "t", {32}, -1), std::nullopt);
  const std::vector<float> gauss = {0.006f, 0.061f, 0.242f, 0.382f, 0.242f, 0.061f, 0.006f};
  EXPECT_EQ(FixedTensorKind(Tensor({1, 1, 7}, gauss), "k", {1, 1, 7}, 0), "smoothing kernel");
  std::vector<float> lopsided = gauss;
  lopsided[0] = 0.012f;
  lopsided[3] = 0.376f;
  EXPECT_EQ(FixedTensorKind(Tensor({1, 1, 7}, lopsided), "k", {1, 1, 7}, 0), std::nullopt);
}

TEST(Fixed, ZeroedOrDeferredValuesAreJudgedByTheNameOnly) {
  const std::vector<float> zeros(66 * 64, 0);
  EXPECT_EQ(FixedTensorKind(Tensor({66, 1, 64}, zeros), "conv.weight", {66, 1, 64}, 0),
            std::nullopt);
  EXPECT_EQ(
      FixedTensorKind(Tensor({66, 1, 64}, zeros), "stft.forward_basis_buffer", {66, 1, 64}, 0),
      "buffer (by its name)");
}

// A 1-D conv whose weight is a DFT basis, followed by a learned conv: the basis is kept, the
// learned conv drawn; a --layer glob naming the basis re-initializes it.
TEST(Fixed, ThePlanKeepsThemUnlessALayerGlobNamesThem) {
  auto model = reinit_test::ParseModel(R"(<ir_version: 8, opset_import: ["" : 17]>
g (float[1, 1, 256] x) => (float[1, 8, 190] y) {
  s = Conv <strides = [1]> (x, basis)
  y = Conv <kernel_shape = [3]> (s, w)
})");
  auto* basis = model.mutable_graph()->add_initializer();
  *basis = Tensor({66, 1, 64}, DftBasis(64, true));
  basis->set_name("basis");
  reinit_test::AddFloatInitializer(&model, "w", {8, 66, 3});
  auto plan = MakePlan(model, {});
  ASSERT_TRUE(plan.ok()) << plan.status().message();
  ASSERT_EQ(plan->layers_size(), 2);
  EXPECT_EQ(plan->layers(0).skipped(), "kept: fixed DFT basis");
  EXPECT_TRUE(plan->layers(1).skipped().empty());
  PlanOptions o;
  o.overrides.push_back({"basis", "xavier-uniform"});
  plan = MakePlan(model, o);
  ASSERT_TRUE(plan.ok());
  EXPECT_TRUE(plan->layers(0).skipped().empty());
  EXPECT_EQ(plan->layers(0).weight().scheme(), "xavier-uniform");
}

}  // namespace
}  // namespace fixed_test
}  // namespace reinit
