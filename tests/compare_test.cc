// The scheme comparison and its chart, on the sample models: the story the chart must tell
// (a deep tanh MLP collapses under naive N(0, 0.01) and holds under Xavier; a plain ReLU CNN
// vanishes under naive init and holds under He; zero init is dead everywhere), the table, and
// the SVG's self-containedness.
#include "signal/compare.h"

#include <gtest/gtest.h>

#include <cmath>

#include "cli_util.h"
#include "io/model_io.h"

namespace reinit {
namespace compare_test {
namespace {

const SchemeSignal& Find(const Comparison& c, const std::string& scheme) {
  for (const auto& s : c.schemes) {
    if (s.scheme == scheme) return s;
  }
  ADD_FAILURE() << "no scheme " << scheme;
  static const SchemeSignal none;
  return none;
}

Comparison Compare(const std::string& model, const std::string& chosen = "auto") {
  auto m = LoadModel(reinit_cli_test::SourcePath("models/" + model));
  EXPECT_TRUE(m.ok()) << m.status().message();
  PlanOptions p;
  p.scheme = chosen;
  PropagateOptions o;
  o.batch = 16;
  auto c = CompareSchemes(*m, p, o);
  EXPECT_TRUE(c.ok()) << c.status().message();
  return c.ok() ? *c : Comparison{};
}

// The std after the activation of layer `name`.
double StdAt(const SchemeSignal& s, const std::string& name) {
  for (const auto& l : s.signal.layers) {
    if (l.name == name) return l.after.std;
  }
  ADD_FAILURE() << "no layer " << name << " under " << s.scheme;
  return NAN;
}

TEST(Compare, DeepTanhMlpCollapsesUnderNaiveNormalAndHoldsUnderXavier) {
  const Comparison c = Compare("mlp_tanh.onnx");
  ASSERT_EQ(c.schemes.size(), 7u);
  // Under N(0, 0.01) with width 64 each layer multiplies the std by about
  // 0.01 · sqrt(64) = 0.08: eight tanh layers take it down by 1e-8.
  const SchemeSignal& naive = Find(c, "normal");
  EXPECT_LT(StdAt(naive, "fc8"), 1e-6 * StdAt(naive, "fc1"));
  // Xavier (gain 5/3) keeps it within a factor 2 from fc1 to fc8.
  const SchemeSignal& xavier = Find(c, "xavier-normal");
  const double ratio = StdAt(xavier, "fc8") / StdAt(xavier, "fc1");
  EXPECT_GT(ratio, 0.5);
  EXPECT_LT(ratio, 2.0);
  for (const auto& l : Find(c, "zero").signal.layers) EXPECT_EQ(l.after.std, 0.0) << l.name;
}

TEST(Compare, PlainReluCnnVanishesUnderNaiveNormalAndHoldsUnderHe) {
  const Comparison c = Compare("plain_cnn.onnx");
  ASSERT_EQ(c.schemes.size(), 7u);
  const SchemeSignal& naive = Find(c, "normal");
  EXPECT_LT(StdAt(naive, "conv8"), 1e-6 * StdAt(naive, "conv1"));
  const SchemeSignal& he = Find(c, "he-normal");
  const double ratio = StdAt(he, "conv8") / StdAt(he, "conv1");
  EXPECT_GT(ratio, 0.25);
  EXPECT_LT(ratio, 4.0);
  for (const auto& l : Find(c, "zero").signal.layers) EXPECT_EQ(l.after.std, 0.0) << l.name;
}

TEST(Compare, TheChosenSchemeIsListedOnceAndMarked) {
  const Comparison c = Compare("mlp_tanh.onnx", "he-normal");
  ASSERT_EQ(c.schemes.size(), 6u);
  EXPECT_EQ(c.schemes.back().scheme, "he-normal");
  EXPECT_TRUE(c.schemes.back().chosen);
  for (size_t k = 0; k + 1 < c.schemes.size(); ++k) EXPECT_FALSE(c.schemes[k].chosen);
  const std::string table = FormatComparison(c);
  EXPECT_NE(table.find("he-normal (chosen)"), std::string::npos) << table;
  EXPECT_NE(table.find("fc8"), std::string::npos) << table;
}

TEST(Compare, TheChartIsSelfContainedWithOneLinePerScheme) {
  const Comparison c = Compare("mlp_tanh.onnx");
  const std::string svg = ComparisonSvg(c, "mlp <tanh> & co");
  EXPECT_EQ(svg.rfind("<svg xmlns=\"http://www.w3.org/2000/svg\"", 0), 0u);
  EXPECT_NE(svg.find("</svg>"), std::string::npos);
  size_t lines = 0;
  for (size_t at = svg.find("<polyline"); at != std::string::npos;
       at = svg.find("<polyline", at + 1)) {
    ++lines;
  }
  EXPECT_EQ(lines, c.schemes.size());
  EXPECT_EQ(svg.find("<script"), std::string::npos);
  EXPECT_EQ(svg.find("href"), std::string::npos);
  EXPECT_EQ(svg.find("http", 20), std::string::npos);                   // only the namespace
  EXPECT_NE(svg.find("mlp &lt;tanh&gt; &amp; co"), std::string::npos);  // escaped
  EXPECT_NE(svg.find("zero (0: dead)"), std::string::npos);
  EXPECT_NE(svg.find("auto (chosen)"), std::string::npos);
}

}  // namespace
}  // namespace compare_test
}  // namespace reinit
