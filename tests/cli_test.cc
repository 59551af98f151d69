// End-to-end tests of the reinit command line: run the built binary on copies of the sample
// models (and on small models written here) in fresh temporary directories, and check exit
// codes, messages, the files written and the tensors inside them.
#include <gtest/gtest.h>
#include <onnx/checker.h>
#include <onnx/defs/parser.h>
#include <pty.h>

#include <cmath>
#include <fstream>
#include <map>
#include <random>
#include <set>

#include "cli_util.h"
#include "model_builder.h"
#include "plan/registry.h"

namespace reinit_cli_test {
namespace cli_test {
namespace {

using reinit::proto::Layer;
using reinit::proto::Plan;

bool Contains(const std::string& haystack, const std::string& needle) {
  return haystack.find(needle) != std::string::npos;
}

// Every run: no crash, no uncaught exception, no temporary file left beside the output.
RunOutput RunChecked(const std::vector<std::string>& args, const std::string& cwd = "") {
  RunOutput r = RunReinit(args, cwd);
  EXPECT_NE(r.exit_code, -1) << "killed by a signal\n" << r;
  EXPECT_FALSE(Contains(r.err, "terminate called")) << r;
  EXPECT_FALSE(Contains(r.err, "Aborted")) << r;
  if (!cwd.empty()) {
    EXPECT_TRUE(TempFilesIn(cwd).empty()) << r;
  }
  return r;
}

void ExpectError(const RunOutput& r, int code, const std::vector<std::string>& needles) {
  EXPECT_EQ(r.exit_code, code) << r;
  EXPECT_TRUE(Contains(r.err, "reinit: error: ")) << r;
  for (const auto& n : needles) {
    EXPECT_TRUE(Contains(r.err, n)) << "stderr lacks '" << n << "'\n" << r;
  }
  EXPECT_FALSE(Contains(r.err, "terminate called")) << r;
  EXPECT_FALSE(Contains(r.err, "Aborted")) << r;
}

void ExpectPassesChecker(const onnx::ModelProto& model) {
  try {
    onnx::checker::check_model(model);
  } catch (const std::exception& e) {
    ADD_FAILURE() << "check_model: " << e.what();
  }
}

std::vector<std::string> SampleModels() {
  std::vector<std::string> names;
  for (const auto& e : fs::directory_iterator(SourcePath("models"))) {
    if (e.path().extension() == ".onnx") names.push_back(e.path().filename().string());
  }
  std::sort(names.begin(), names.end());
  return names;
}

size_t CountEqual(const std::vector<double>& a, const std::vector<double>& b) {
  size_t n = 0;
  for (size_t i = 0; i < std::min(a.size(), b.size()); ++i) n += a[i] == b[i];
  return n;
}

bool AllZero(const std::vector<double>& v) {
  return std::all_of(v.begin(), v.end(), [](double x) { return x == 0; });
}

std::string TensorBytes(const onnx::ModelProto& model, const std::string& name) {
  const onnx::TensorProto* t = FindInitializer(model, name);
  EXPECT_NE(t, nullptr) << "no initializer " << name;
  return t ? t->SerializeAsString() : "";
}

// ---------------------------------------------------------------------------------------------
// 1. Every sample model through `--scheme auto --seed 5`.

TEST(SampleModels, ThereAreTen) { EXPECT_EQ(SampleModels().size(), 10u); }

class EveryModel : public ::testing::TestWithParam<std::string> {};

TEST_P(EveryModel, AutoRewritesExactlyThePlannedTensors) {
  TempDir dir;
  const std::string in = CopyModel(GetParam(), dir);
  const std::string in_bytes = ReadFile(in);
  const onnx::ModelProto input = ParseModel(in_bytes);

  const Plan plan = Inspect(in, {"--scheme", "auto", "--seed", "5"});
  // Rewritten tensors; those set to a constant (zero biases, reset norm state) by value.
  std::set<std::string> rewritten;
  std::map<std::string, double> constant;
  for (const Layer& l : plan.layers()) {
    if (!l.skipped().empty()) continue;
    EXPECT_NE(l.weight().scheme(), "") << l.name();
    EXPECT_NE(l.weight().scheme(), "keep") << l.name();
    std::vector<const reinit::proto::TensorInit*> tensors = {&l.weight()};
    if (l.has_bias()) {
      EXPECT_EQ(l.bias().scheme(), "zero") << l.name();
      tensors.push_back(&l.bias());
    }
    for (const auto& p : l.params()) tensors.push_back(&p);
    for (const auto* t : tensors) {
      if (t->scheme() == "keep") continue;
      rewritten.insert(t->name());
      if (t->scheme() == "zero") constant[t->name()] = 0;
      if (t->scheme() == "constant") constant[t->name()] = t->value();
    }
  }
  ASSERT_FALSE(rewritten.empty());
  for (const auto& name : rewritten) ASSERT_NE(FindInitializer(input, name), nullptr) << name;

  const RunOutput r =
      RunChecked({in, "--scheme", "auto", "--seed", "5", "-o", dir / "out.onnx"}, dir.path());
  ASSERT_EQ(r.exit_code, 0) << r;
  EXPECT_TRUE(Contains(r.out, "wrote")) << r;
  const std::string out_bytes = ReadFile(dir / "out.onnx");
  const onnx::ModelProto output = ParseModel(out_bytes);
  ExpectPassesChecker(output);

  ASSERT_EQ(output.graph().initializer_size(), input.graph().initializer_size());
  for (int i = 0; i < input.graph().initializer_size(); ++i) {
    const onnx::TensorProto& a = input.graph().initializer(i);
    const onnx::TensorProto& b = output.graph().initializer(i);
    SCOPED_TRACE(a.name());
    ASSERT_EQ(a.name(), b.name());
    if (!rewritten.count(a.name())) {
      EXPECT_EQ(a.SerializeAsString(), b.SerializeAsString()) << "not in the plan, yet changed";
      continue;
    }
    EXPECT_EQ(std::vector<int64_t>(a.dims().begin(), a.dims().end()),
              std::vector<int64_t>(b.dims().begin(), b.dims().end()));
    EXPECT_EQ(a.data_type(), b.data_type());
    EXPECT_EQ(StorageOf(a), StorageOf(b));
    const auto va = Values(a), vb = Values(b);
    ASSERT_EQ(va.size(), vb.size());
    if (auto c = constant.find(a.name()); c != constant.end()) {
      EXPECT_EQ(CountEqual(vb, std::vector<double>(vb.size(), c->second)), vb.size())
          << "not set to " << c->second;
      EXPECT_LT(CountEqual(va, vb), va.size()) << "the sample was already constant: proves nothing";
    } else {
      EXPECT_LE(CountEqual(va, vb), va.size() / 100) << "values did not change";
      EXPECT_FALSE(AllZero(vb));
    }
  }

  // Nothing else changed: put the input's tensors back and drop reinit's metadata.
  onnx::ModelProto restored = output;
  for (auto& t : *restored.mutable_graph()->mutable_initializer()) {
    if (rewritten.count(t.name())) t.CopyFrom(*FindInitializer(input, t.name()));
  }
  auto* props = restored.mutable_metadata_props();
  props->erase(std::remove_if(props->begin(), props->end(),
                              [](const auto& p) { return p.key().rfind("reinit.", 0) == 0; }),
               props->end());
  EXPECT_EQ(restored.SerializeAsString(), input.SerializeAsString())
      << "something besides the planned tensors and reinit.* metadata changed";

  EXPECT_EQ(Metadata(output, "reinit.version"), plan.tool_version());
  EXPECT_NE(plan.tool_version(), "");
  EXPECT_EQ(Metadata(output, "reinit.scheme"), "auto");
  EXPECT_EQ(Metadata(output, "reinit.seed"), "5");

  // Same seed: same bytes. Another seed: other weights, same zeros.
  const RunOutput again =
      RunChecked({in, "--scheme", "auto", "--seed", "5", "-o", dir / "again.onnx"}, dir.path());
  ASSERT_EQ(again.exit_code, 0) << again;
  EXPECT_TRUE(ReadFile(dir / "again.onnx") == out_bytes) << "same seed, different bytes";
  const RunOutput other =
      RunChecked({in, "--scheme", "auto", "--seed", "6", "-o", dir / "seed6.onnx"}, dir.path());
  ASSERT_EQ(other.exit_code, 0) << other;
  const onnx::ModelProto seed6 = LoadModelFile(dir / "seed6.onnx");
  EXPECT_EQ(Metadata(seed6, "reinit.seed"), "6");
  for (const auto& name : rewritten) {
    SCOPED_TRACE(name);
    const auto v5 = Values(*FindInitializer(output, name));
    const auto v6 = Values(*FindInitializer(seed6, name));
    if (constant.count(name)) {
      EXPECT_EQ(v5, v6);
    } else {
      EXPECT_LE(CountEqual(v5, v6), v5.size() / 100) << "seed 6 drew the same values as seed 5";
    }
  }

  EXPECT_TRUE(ReadFile(in) == in_bytes) << "the input file changed";
  std::vector<std::string> expected_files = {"again.onnx", GetParam(), "out.onnx", "seed6.onnx"};
  std::sort(expected_files.begin(), expected_files.end());
  EXPECT_EQ(ListDir(dir.path()), expected_files);
}

INSTANTIATE_TEST_SUITE_P(Models, EveryModel, ::testing::ValuesIn(SampleModels()),
                         [](const ::testing::TestParamInfo<std::string>& info) {
                           std::string name = fs::path(info.param).stem().string();
                           for (char& c : name) {
                             if (!std::isalnum(static_cast<unsigned char>(c))) c = '_';
                           }
                           return name;
                         });

// ---------------------------------------------------------------------------------------------
// 2. The detected activations match models/expected_activations.tsv.

TEST(ExpectedActivations, EveryRowMatchesAndNoLayerIsUnexpected) {
  struct Row {
    std::string layer, op, activation;
  };
  std::map<std::string, std::vector<Row>> rows;
  std::ifstream tsv(SourcePath("models/expected_activations.tsv"));
  ASSERT_TRUE(tsv.good());
  std::string line;
  std::getline(tsv, line);
  ASSERT_EQ(line, "model\tlayer\top\tactivation");
  while (std::getline(tsv, line)) {
    if (line.empty()) continue;
    std::istringstream fields(line);
    std::string model;
    Row row;
    ASSERT_TRUE(std::getline(fields, model, '\t') && std::getline(fields, row.layer, '\t') &&
                std::getline(fields, row.op, '\t') && std::getline(fields, row.activation))
        << line;
    rows[model].push_back(row);
  }
  std::vector<std::string> models;
  for (const auto& [model, unused] : rows) models.push_back(model);
  EXPECT_EQ(models, SampleModels()) << "the TSV and models/ disagree on the models";

  TempDir dir;
  for (const auto& [model, expected] : rows) {
    SCOPED_TRACE(model);
    const Plan plan = Inspect(CopyModel(model, dir));
    for (const Row& row : expected) {
      const Layer* layer = FindLayer(plan, row.layer);
      ASSERT_NE(layer, nullptr) << "no layer " << row.layer;
      EXPECT_EQ(layer->op(), row.op) << row.layer;
      EXPECT_EQ(layer->skipped(), "") << row.layer;
      EXPECT_EQ(layer->activation().kind(), row.activation) << row.layer;
    }
    for (const Layer& layer : plan.layers()) {
      // The TSV lists the layers followed by an activation: dense and conv ones.
      if (!layer.skipped().empty() || (layer.kind() != "dense" && layer.kind() != "conv")) continue;
      EXPECT_TRUE(std::any_of(expected.begin(), expected.end(),
                              [&](const Row& r) { return r.layer == layer.name(); }))
          << "unexpected layer " << layer.name() << " (" << layer.op() << ")";
    }
  }
}

// ---------------------------------------------------------------------------------------------
// 3. Where the output goes.

TEST(OutputPath, DefaultIsBesideTheInput) {
  TempDir dir;
  fs::create_directory(dir / "sub");
  const std::string in = CopyModel("mlp_selu.onnx", dir, "sub/m.onnx");
  const std::string in_bytes = ReadFile(in);
  const RunOutput r = RunChecked({"sub/m.onnx", "--seed", "1"}, dir.path());
  ASSERT_EQ(r.exit_code, 0) << r;
  EXPECT_TRUE(Contains(r.out, "sub/m.reinit.onnx")) << r;
  EXPECT_EQ(ListDir(dir / "sub"), (std::vector<std::string>{"m.onnx", "m.reinit.onnx"}));
  EXPECT_EQ(ListDir(dir.path()), std::vector<std::string>{"sub"});
  const RunOutput max_seed = RunChecked(
      {"sub/m.onnx", "--seed", "18446744073709551615", "-o", "sub/max.onnx"}, dir.path());
  ASSERT_EQ(max_seed.exit_code, 0) << max_seed;
  EXPECT_EQ(Metadata(LoadModelFile(dir / "sub/max.onnx"), "reinit.seed"), "18446744073709551615");
  fs::remove(dir / "sub/max.onnx");
  EXPECT_TRUE(TempFilesIn(dir / "sub").empty());
  EXPECT_EQ(Metadata(LoadModelFile(dir / "sub/m.reinit.onnx"), "reinit.seed"), "1");
  EXPECT_TRUE(ReadFile(in) == in_bytes);

  // A name without .onnx gets the suffix appended; a dot in a folder name is not an extension.
  fs::create_directory(dir / "v1.onnx.d");
  CopyModel("mlp_selu.onnx", dir, "v1.onnx.d/model");
  ASSERT_EQ(RunChecked({"v1.onnx.d/model", "--seed", "1"}, dir.path()).exit_code, 0);
  EXPECT_EQ(ListDir(dir / "v1.onnx.d"), (std::vector<std::string>{"model", "model.reinit.onnx"}));

  // An absolute input path, run from elsewhere.
  fs::remove(dir / "sub/m.reinit.onnx");
  const RunOutput abs = RunChecked({dir / "sub/m.onnx"}, "/");
  ASSERT_EQ(abs.exit_code, 0) << abs;
  EXPECT_EQ(ListDir(dir / "sub"), (std::vector<std::string>{"m.onnx", "m.reinit.onnx"}));
}

TEST(OutputPath, DryRunWritesNothingAndPrintsThePlan) {
  TempDir dir;
  const std::string in = CopyModel("mlp_tanh.onnx", dir, "m.onnx");
  const std::string in_bytes = ReadFile(in);
  const auto before = ListDir(dir.path());
  for (const auto& args :
       std::vector<std::vector<std::string>>{{"m.onnx", "--dry-run"},
                                             {"m.onnx", "--dry-run", "-o", "out.onnx"},
                                             {"m.onnx", "--dry-run", "--in-place"}}) {
    const RunOutput r = RunChecked(args, dir.path());
    ASSERT_EQ(r.exit_code, 0) << r;
    EXPECT_EQ(ListDir(dir.path()), before) << r;
    EXPECT_TRUE(ReadFile(in) == in_bytes);
    for (const char* word : {"fc1", "fc10", "fc1.weight", "tanh", "sigmoid", "dry run"}) {
      EXPECT_TRUE(Contains(r.out, word)) << "no '" << word << "' in\n" << r;
    }
    EXPECT_FALSE(Contains(r.out, "wrote")) << r;
  }
}

TEST(OutputPath, InPlaceRewritesTheInputAsOutputWould) {
  TempDir dir;
  const std::string in = CopyModel("grouped_convnet.onnx", dir, "m.onnx");
  const std::string in_bytes = ReadFile(in);
  ASSERT_EQ(RunChecked({"m.onnx", "--seed", "3", "-o", "expected.onnx"}, dir.path()).exit_code, 0);
  const RunOutput r = RunChecked({"m.onnx", "--seed", "3", "--in-place"}, dir.path());
  ASSERT_EQ(r.exit_code, 0) << r;
  const std::string now = ReadFile(in);
  EXPECT_FALSE(now == in_bytes) << "--in-place left the input unchanged";
  EXPECT_TRUE(now == ReadFile(dir / "expected.onnx")) << "--in-place and -o wrote different models";
  EXPECT_EQ(ListDir(dir.path()), (std::vector<std::string>{"expected.onnx", "m.onnx"}));
}

TEST(OutputPath, OutputEqualToInputIsRefusedWithoutInPlace) {
  TempDir dir;
  fs::create_directory(dir / "sub");
  const std::string in = CopyModel("mlp_tanh.onnx", dir, "m.onnx");
  const std::string in_bytes = ReadFile(in);
  const auto before = ListDir(dir.path());
  const std::vector<std::pair<std::string, std::string>> spellings = {
      {"m.onnx", "m.onnx"},       {"m.onnx", "./m.onnx"},      {"./m.onnx", "m.onnx"},
      {"m.onnx", dir / "m.onnx"}, {"m.onnx", "sub/../m.onnx"}, {dir / "m.onnx", ".//m.onnx"}};
  for (const auto& [input, output] : spellings) {
    SCOPED_TRACE(input + " -o " + output);
    const RunOutput r = RunChecked({input, "-o", output}, dir.path());
    ExpectError(r, 2, {"--in-place"});
    EXPECT_TRUE(ReadFile(in) == in_bytes);
    EXPECT_EQ(ListDir(dir.path()), before);
  }
  // --in-place together with -o is ambiguous.
  const RunOutput both = RunChecked({"m.onnx", "--in-place", "-o", "out.onnx"}, dir.path());
  ExpectError(both, 2, {"--in-place"});
  EXPECT_EQ(ListDir(dir.path()), before);
  EXPECT_TRUE(ReadFile(in) == in_bytes);
}

// ---------------------------------------------------------------------------------------------
// 4. Each tensor's values depend only on the seed, its name and its own scheme.

TEST(Independence, ChangingOneLayersSchemeChangesOnlyItsWeight) {
  TempDir dir;
  const std::string in = CopyModel("mlp_tanh.onnx", dir, "m.onnx");
  const Plan plan = Inspect(in);
  const Layer* fc1 = FindLayer(plan, "fc1");
  ASSERT_NE(fc1, nullptr);
  const std::string fc1_weight = fc1->weight().name();

  ASSERT_EQ(
      RunChecked({"m.onnx", "--seed", "9", "--layer", "fc1=he-normal", "-o", "a.onnx"}, dir.path())
          .exit_code,
      0);
  ASSERT_EQ(RunChecked({"m.onnx", "--seed", "9", "--layer", "fc1=xavier-normal", "-o", "b.onnx"},
                       dir.path())
                .exit_code,
            0);
  ASSERT_EQ(RunChecked({"m.onnx", "--seed", "9", "-o", "c.onnx"}, dir.path()).exit_code, 0);
  const onnx::ModelProto a = LoadModelFile(dir / "a.onnx");
  const onnx::ModelProto b = LoadModelFile(dir / "b.onnx");
  const onnx::ModelProto c = LoadModelFile(dir / "c.onnx");
  EXPECT_NE(TensorBytes(a, fc1_weight), TensorBytes(b, fc1_weight));
  const auto rewritten = RewrittenTensors(plan);
  ASSERT_GT(rewritten.size(), 10u);
  for (const auto& name : rewritten) {
    if (name == fc1_weight) continue;
    EXPECT_EQ(TensorBytes(a, name), TensorBytes(b, name)) << name;
    EXPECT_EQ(TensorBytes(a, name), TensorBytes(c, name)) << name;
  }
}

// ---------------------------------------------------------------------------------------------
// 5. --layer, --bias, --scheme zero.

TEST(LayerOverride, LaterMatchWins) {
  TempDir dir;
  const std::string in = CopyModel("mlp_tanh.onnx", dir, "m.onnx");
  const Plan p1 = Inspect(in, {"--layer", "fc*=xavier-uniform", "--layer", "fc1=orthogonal"});
  ASSERT_NE(FindLayer(p1, "fc1"), nullptr);
  EXPECT_EQ(FindLayer(p1, "fc1")->weight().scheme(), "orthogonal");
  EXPECT_TRUE(Contains(FindLayer(p1, "fc1")->reason(), "fc1=orthogonal"))
      << FindLayer(p1, "fc1")->reason();
  for (const char* name : {"fc2", "fc9", "fc10"}) {
    ASSERT_NE(FindLayer(p1, name), nullptr) << name;
    EXPECT_EQ(FindLayer(p1, name)->weight().scheme(), "xavier-uniform") << name;
    EXPECT_TRUE(Contains(FindLayer(p1, name)->reason(), "fc*=xavier-uniform")) << name;
  }
  const Plan p2 = Inspect(in, {"--layer", "fc1=orthogonal", "--layer", "fc*=xavier-uniform"});
  EXPECT_EQ(FindLayer(p2, "fc1")->weight().scheme(), "xavier-uniform");
  EXPECT_TRUE(Contains(FindLayer(p2, "fc1")->reason(), "fc*=xavier-uniform"));
}

TEST(LayerOverride, MatchesTheWeightName) {
  TempDir dir;
  const std::string in = CopyModel("mlp_tanh.onnx", dir, "m.onnx");
  const Plan plain = Inspect(in);
  ASSERT_NE(FindLayer(plain, "fc1"), nullptr);
  ASSERT_EQ(FindLayer(plain, "fc1")->weight().name(), "fc1.weight");
  ASSERT_NE(FindLayer(plain, "fc1")->weight().scheme(), "lecun-normal");

  const RunOutput r = RunChecked({"inspect", in, "--json", "--layer", "fc1.weight=lecun-normal",
                                  "--layer", "*3.weight=he-uniform"});
  ASSERT_EQ(r.exit_code, 0) << r;
  EXPECT_FALSE(Contains(r.err, "matched no layer")) << r;
  const Plan p = ParsePlan(r.out);
  EXPECT_EQ(FindLayer(p, "fc1")->weight().scheme(), "lecun-normal");
  EXPECT_TRUE(Contains(FindLayer(p, "fc1")->reason(), "fc1.weight=lecun-normal"))
      << FindLayer(p, "fc1")->reason();
  EXPECT_EQ(FindLayer(p, "fc3")->weight().scheme(), "he-uniform");
  for (const char* name : {"fc2", "fc4", "fc10"}) {
    EXPECT_EQ(FindLayer(p, name)->weight().scheme(), FindLayer(plain, name)->weight().scheme())
        << name;
    EXPECT_EQ(FindLayer(p, name)->reason(), FindLayer(plain, name)->reason()) << name;
  }

  // A glob that matches nothing is a warning, not an error.
  const RunOutput none = RunChecked({"inspect", in, "--layer", "nomatch*=he-normal"});
  EXPECT_EQ(none.exit_code, 0) << none;
  EXPECT_TRUE(Contains(none.err, "nomatch*")) << none;
}

TEST(Bias, KeepLeavesBiasBytesIdentical) {
  TempDir dir;
  const std::string in = CopyModel("transformer_block.onnx", dir, "m.onnx");
  const onnx::ModelProto input = LoadModelFile(in);
  const Plan plan = Inspect(in, {"--bias", "keep"});
  const RunOutput r =
      RunChecked({"m.onnx", "--bias", "keep", "--seed", "2", "-o", "out.onnx"}, dir.path());
  ASSERT_EQ(r.exit_code, 0) << r;
  const onnx::ModelProto output = LoadModelFile(dir / "out.onnx");
  int biases = 0;
  for (const Layer& l : plan.layers()) {
    if (!l.skipped().empty() || l.kind() == "norm") continue;  // norm shifts follow --norms
    EXPECT_NE(TensorBytes(input, l.weight().name()), TensorBytes(output, l.weight().name()))
        << l.weight().name();
    if (!l.has_bias()) continue;
    ++biases;
    EXPECT_EQ(l.bias().scheme(), "keep");
    EXPECT_EQ(TensorBytes(input, l.bias().name()), TensorBytes(output, l.bias().name()))
        << l.bias().name();
  }
  EXPECT_GT(biases, 0) << "the model has no bias: the test proves nothing";
}

TEST(SchemeZero, WritesAllZeroWeights) {
  TempDir dir;
  for (const char* model : {"resnet_cnn.onnx", "dcgan_generator.onnx"}) {
    SCOPED_TRACE(model);
    const std::string in = CopyModel(model, dir);
    const std::string out = dir / (std::string("zero_") + model);
    const RunOutput r = RunChecked({in, "--scheme", "zero", "-o", out}, dir.path());
    ASSERT_EQ(r.exit_code, 0) << r;
    const onnx::ModelProto output = LoadModelFile(out);
    EXPECT_EQ(Metadata(output, "reinit.scheme"), "zero");
    const Plan plan = Inspect(in, {"--scheme", "zero"});
    int weights = 0;
    for (const Layer& l : plan.layers()) {
      if (!l.skipped().empty()) continue;
      EXPECT_EQ(l.weight().scheme(), "zero");
      const auto* w = FindInitializer(output, l.weight().name());
      ASSERT_NE(w, nullptr);
      EXPECT_TRUE(AllZero(Values(*w))) << l.weight().name();
      EXPECT_EQ(Values(*w).size(), Values(*FindInitializer(LoadModelFile(in), w->name())).size());
      ++weights;
    }
    EXPECT_GT(weights, 0);
  }
}

// ---------------------------------------------------------------------------------------------
// 6. --plan: the JSON of `inspect --json`, edited or not.

TEST(PlanFile, EditedSchemesAreApplied) {
  TempDir dir;
  const std::string in = CopyModel("mlp_tanh.onnx", dir, "m.onnx");
  const onnx::ModelProto input = LoadModelFile(in);
  Plan plan = Inspect(in, {"--seed", "11"});
  double fan_in = 0;
  std::string edited_weight, kept_weight;
  for (auto& l : *plan.mutable_layers()) {
    if (l.name() == "fc1") {  // [64, 32]: lecun std 1/sqrt(32) differs from every auto choice
      l.mutable_weight()->set_scheme("lecun-normal");
      fan_in = l.fan_in();
      edited_weight = l.weight().name();
    } else if (l.name() == "fc3") {
      l.mutable_weight()->set_scheme("keep");
      kept_weight = l.weight().name();
    }
  }
  ASSERT_EQ(fan_in, 32);
  ASSERT_FALSE(kept_weight.empty());
  WriteFile(dir / "p.json", PlanJson(plan));

  const RunOutput r = RunChecked({"m.onnx", "--plan", "p.json", "-o", "out.onnx"}, dir.path());
  ASSERT_EQ(r.exit_code, 0) << r;
  const onnx::ModelProto output = LoadModelFile(dir / "out.onnx");
  EXPECT_EQ(TensorBytes(output, kept_weight), TensorBytes(input, kept_weight));

  const auto values = Values(*FindInitializer(output, edited_weight));
  const double n = static_cast<double>(values.size());
  ASSERT_EQ(values.size(), 64u * 32u);
  const double sigma = 1 / std::sqrt(fan_in);
  const Moments m = MomentsOf(values);
  // Standard errors of a normal sample's standard deviation and mean.
  EXPECT_NEAR(m.std, sigma, 5 * sigma / std::sqrt(2 * (n - 1)));
  EXPECT_NEAR(m.mean, 0, 5 * sigma / std::sqrt(n));

  // The layers left as inspect planned them get the values a direct run gives.
  ASSERT_EQ(RunChecked({"m.onnx", "--seed", "11", "-o", "direct.onnx"}, dir.path()).exit_code, 0);
  const onnx::ModelProto direct = LoadModelFile(dir / "direct.onnx");
  for (const char* name : {"fc2.weight", "fc2.bias", "fc10.weight"}) {
    EXPECT_EQ(TensorBytes(output, name), TensorBytes(direct, name)) << name;
  }
}

// Edits to `normal`/`uniform` with the plan's own std/bound, a kept bias, a layer left out and
// a changed seed.
TEST(PlanFile, OtherEditsAreApplied) {
  TempDir dir;
  const std::string in = CopyModel("mlp_tanh.onnx", dir, "m.onnx");
  const onnx::ModelProto input = LoadModelFile(in);
  Plan plan = Inspect(in, {"--seed", "11"});
  plan.set_seed(12);
  auto* layers = plan.mutable_layers();
  for (auto& l : *layers) {
    if (l.name() == "fc2") {
      l.mutable_weight()->set_scheme("normal");
      l.mutable_weight()->set_std(0.3);
      l.mutable_bias()->set_scheme("keep");
    } else if (l.name() == "fc4") {
      l.mutable_weight()->set_scheme("uniform");
      l.mutable_weight()->set_bound(0.7);
    }
  }
  const auto fc5 = std::find_if(layers->begin(), layers->end(),
                                [](const Layer& l) { return l.name() == "fc5"; });
  ASSERT_NE(fc5, layers->end());
  layers->erase(fc5);
  WriteFile(dir / "p.json", PlanJson(plan));

  const RunOutput r = RunChecked({"m.onnx", "--plan", "p.json", "-o", "out.onnx"}, dir.path());
  ASSERT_EQ(r.exit_code, 0) << r;
  const onnx::ModelProto output = LoadModelFile(dir / "out.onnx");
  EXPECT_EQ(Metadata(output, "reinit.seed"), "12");

  const auto normal = Values(*FindInitializer(output, "fc2.weight"));
  const double n = static_cast<double>(normal.size());
  ASSERT_EQ(normal.size(), 64u * 64u);
  EXPECT_NEAR(MomentsOf(normal).std, 0.3, 5 * 0.3 / std::sqrt(2 * (n - 1)));
  EXPECT_EQ(TensorBytes(output, "fc2.bias"), TensorBytes(input, "fc2.bias"));

  const auto uniform = Values(*FindInitializer(output, "fc4.weight"));
  double max_abs = 0;
  for (double v : uniform) max_abs = std::max(max_abs, std::fabs(v));
  EXPECT_LE(max_abs, 0.7);
  EXPECT_GT(max_abs, 0.69);
  // For U(-b, b): std b/sqrt(3), and the standard error of the sample std is b/sqrt(15 n).
  EXPECT_NEAR(MomentsOf(uniform).std, 0.7 / std::sqrt(3.0), 5 * 0.7 / std::sqrt(15 * n));

  for (const char* name : {"fc5.weight", "fc5.bias"}) {
    EXPECT_EQ(TensorBytes(output, name), TensorBytes(input, name)) << name << ": not in the plan";
  }
  // The seed is the plan's: untouched layers match a direct run with seed 12.
  ASSERT_EQ(RunChecked({"m.onnx", "--seed", "12", "-o", "direct.onnx"}, dir.path()).exit_code, 0);
  const onnx::ModelProto direct = LoadModelFile(dir / "direct.onnx");
  for (const char* name : {"fc1.weight", "fc3.weight", "fc10.weight"}) {
    EXPECT_EQ(TensorBytes(output, name), TensorBytes(direct, name)) << name;
  }
}

TEST(PlanFile, UneditedPlanReproducesTheDirectRun) {
  TempDir dir;
  for (const auto& model : SampleModels()) {
    SCOPED_TRACE(model);
    const std::string in = CopyModel(model, dir);
    const RunOutput inspect =
        RunChecked({"inspect", in, "--json", "--scheme", "auto", "--seed", "11"});
    ASSERT_EQ(inspect.exit_code, 0) << inspect;
    WriteFile(dir / "p.json", inspect.out);
    const RunOutput via_plan = RunChecked({in, "--plan", "p.json", "-o", "a.onnx"}, dir.path());
    ASSERT_EQ(via_plan.exit_code, 0) << via_plan;
    const RunOutput direct =
        RunChecked({in, "--scheme", "auto", "--seed", "11", "-o", "b.onnx"}, dir.path());
    ASSERT_EQ(direct.exit_code, 0) << direct;
    EXPECT_TRUE(ReadFile(dir / "a.onnx") == ReadFile(dir / "b.onnx"))
        << "--plan of an unedited inspect plan and the direct run wrote different models";
  }
}

// ---------------------------------------------------------------------------------------------
// Small models written in the tests.

// Parses ONNX text syntax, names the nodes, and adds the initializers.
onnx::ModelProto BuildModel(const char* text, const std::vector<std::string>& node_names,
                            const std::vector<onnx::TensorProto>& initializers) {
  onnx::ModelProto model;
  const auto status = onnx::OnnxParser::Parse(model, text);
  EXPECT_TRUE(status.IsOK()) << status.ErrorMessage();
  EXPECT_EQ(model.graph().node_size(), static_cast<int>(node_names.size()));
  for (int i = 0; i < model.graph().node_size() && i < static_cast<int>(node_names.size()); ++i) {
    model.mutable_graph()->mutable_node(i)->set_name(node_names[i]);
  }
  for (const auto& t : initializers) *model.mutable_graph()->add_initializer() = t;
  return model;
}

// Exactly representable in float16 and bfloat16: k/64, k in [-15, 15] \ {0}.
double SampleValue(size_t i) {
  const int k = static_cast<int>(i * 7 % 30) - 15;
  return (k >= 0 ? k + 1 : k) / 64.0;
}

uint16_t HalfBits(double v) {  // exact for normal values with <= 11 significant bits
  const uint16_t sign = v < 0 ? 0x8000 : 0;
  int exp = 0;
  const double frac = std::frexp(std::fabs(v), &exp);  // v = frac * 2^exp, frac in [0.5, 1)
  const auto mant = static_cast<uint16_t>(std::lround((frac * 2 - 1) * 1024));
  return sign | static_cast<uint16_t>((exp - 1 + 15) << 10) | mant;
}

uint16_t Bfloat16Bits(double v) {
  return static_cast<uint16_t>(std::bit_cast<uint32_t>(static_cast<float>(v)) >> 16);
}

// A tensor of `dims` and type with SampleValue()s, in raw_data or in the typed field.
onnx::TensorProto MakeTensor(const std::string& name, int32_t type, std::vector<int64_t> dims,
                             bool raw) {
  onnx::TensorProto t;
  t.set_name(name);
  t.set_data_type(type);
  size_t count = 1;
  for (int64_t d : dims) {
    t.add_dims(d);
    count *= static_cast<size_t>(d);
  }
  std::string bytes;
  auto append = [&](auto x) { bytes.append(reinterpret_cast<const char*>(&x), sizeof x); };
  for (size_t i = 0; i < count; ++i) {
    const double v = SampleValue(i);
    switch (type) {
      case onnx::TensorProto::FLOAT:
        raw ? append(static_cast<float>(v)) : t.add_float_data(static_cast<float>(v));
        break;
      case onnx::TensorProto::DOUBLE:
        raw ? append(v) : t.add_double_data(v);
        break;
      case onnx::TensorProto::FLOAT16:
        raw ? append(HalfBits(v)) : t.add_int32_data(HalfBits(v));
        break;
      case onnx::TensorProto::BFLOAT16:
        raw ? append(Bfloat16Bits(v)) : t.add_int32_data(Bfloat16Bits(v));
        break;
    }
  }
  if (raw) t.set_raw_data(bytes);
  return t;
}

constexpr const char* kGemmText = R"(
<ir_version: 8, opset_import: ["" : 17]>
g (float[2,4] x) => (float[2,3] y) {
  y = Gemm <transB = 1> (x, fc_w, fc_b)
}
)";

// ---------------------------------------------------------------------------------------------
// 9. Data types and storage fields.

constexpr const char* kTypesText = R"(
<ir_version: 8, opset_import: ["" : 17]>
types (float16[2,4] x16, bfloat16[2,4] xbf, double[2,4] xd, float[2,4] xf)
   => (float16[2,3] y16, bfloat16[2,3] ybf, double[2,3] yd, float[2,3] yf) {
  y16 = Gemm <transB = 1> (x16, w16, b16)
  ybf = Gemm <transB = 1> (xbf, wbf, bbf)
  yd = Gemm <transB = 1> (xd, wd, bd)
  yf = Gemm <transB = 1> (xf, wf, bf)
}
)";

onnx::ModelProto TypesModel(bool raw) {
  std::vector<onnx::TensorProto> inits;
  for (const auto& [suffix, type] :
       std::vector<std::pair<std::string, int32_t>>{{"16", onnx::TensorProto::FLOAT16},
                                                    {"bf", onnx::TensorProto::BFLOAT16},
                                                    {"d", onnx::TensorProto::DOUBLE},
                                                    {"f", onnx::TensorProto::FLOAT}}) {
    inits.push_back(MakeTensor("w" + suffix, type, {3, 4}, raw));
    inits.push_back(MakeTensor("b" + suffix, type, {3}, raw));
  }
  return BuildModel(kTypesText, {"fc16", "fcbf", "fcd", "fcf"}, inits);
}

TEST(DataTypes, TypesAndStorageFieldsArePreserved) {
  for (bool raw : {true, false}) {
    SCOPED_TRACE(raw ? "raw_data" : "typed fields");
    TempDir dir;
    const onnx::ModelProto input = TypesModel(raw);
    ExpectPassesChecker(input);
    SaveModelFile(input, dir / "types.onnx");
    for (const auto& t : input.graph().initializer()) {
      ASSERT_EQ(StorageOf(t), raw                                          ? "raw_data"
                              : t.data_type() == onnx::TensorProto::FLOAT  ? "float_data"
                              : t.data_type() == onnx::TensorProto::DOUBLE ? "double_data"
                                                                           : "int32_data");
      ASSERT_EQ(Values(t).size(),
                static_cast<size_t>(t.dims(0) * (t.dims_size() > 1 ? t.dims(1) : 1)));
    }

    const RunOutput r = RunChecked({"types.onnx", "--seed", "4", "-o", "out.onnx"}, dir.path());
    ASSERT_EQ(r.exit_code, 0) << r;
    const onnx::ModelProto output = LoadModelFile(dir / "out.onnx");
    ExpectPassesChecker(output);
    ASSERT_EQ(output.graph().initializer_size(), input.graph().initializer_size());
    for (int i = 0; i < input.graph().initializer_size(); ++i) {
      const auto& a = input.graph().initializer(i);
      const auto& b = output.graph().initializer(i);
      SCOPED_TRACE(a.name());
      EXPECT_EQ(a.name(), b.name());
      EXPECT_EQ(a.data_type(), b.data_type());
      EXPECT_EQ(a.dims_size(), b.dims_size());
      EXPECT_EQ(StorageOf(a), StorageOf(b));
      const auto va = Values(a), vb = Values(b);
      ASSERT_EQ(va.size(), vb.size());
      EXPECT_NE(va, vb);
      for (double v : vb) EXPECT_TRUE(std::isfinite(v));
      if (a.name()[0] == 'b') {
        EXPECT_TRUE(AllZero(vb));
      } else {
        EXPECT_LE(CountEqual(va, vb), 1u);
        EXPECT_FALSE(AllZero(vb));
      }
    }
  }
}

// ---------------------------------------------------------------------------------------------
// 7. Errors: exit code, message, nothing written, input unchanged.

class Errors : public ::testing::Test {
 protected:
  void SetUp() override {
    model_ = CopyModel("mlp_tanh.onnx", dir_, "m.onnx");
    Snapshot();
  }
  // Records the directory and the model, which every failing run must leave as they are.
  void Snapshot() {
    listing_ = ListDir(dir_.path());
    model_bytes_ = ReadFile(model_);
  }
  RunOutput ExpectFails(const std::vector<std::string>& args, int code,
                        const std::vector<std::string>& needles) {
    const RunOutput r = RunChecked(args, dir_.path());
    ExpectError(r, code, needles);
    EXPECT_EQ(ListDir(dir_.path()), listing_) << "a failing run changed the directory";
    EXPECT_TRUE(ReadFile(model_) == model_bytes_) << "a failing run changed the input";
    return r;
  }
  Plan InspectModel() { return Inspect(model_); }
  void WritePlan(const Plan& plan) {
    WriteFile(dir_ / "p.json", PlanJson(plan));
    Snapshot();
  }
  void WriteModel(const onnx::ModelProto& model, const std::string& name) {
    SaveModelFile(model, dir_ / name);
    Snapshot();
  }

  TempDir dir_;
  std::string model_;
  std::vector<std::string> listing_;
  std::string model_bytes_;
};

TEST_F(Errors, MissingInput) {
  ExpectFails({"nope.onnx"}, 1, {"nope.onnx"});
  ExpectFails({"nope.onnx", "-o", "out.onnx"}, 1, {"nope.onnx"});
  ExpectFails({"inspect", "nope.onnx"}, 1, {"nope.onnx"});
}

TEST_F(Errors, EmptyFile) {
  WriteFile(dir_ / "empty.onnx", "");
  Snapshot();
  ExpectFails({"empty.onnx"}, 1, {"empty.onnx", "empty"});
  ExpectFails({"inspect", "empty.onnx"}, 1, {"empty.onnx"});
}

TEST_F(Errors, RandomBytes) {
  std::mt19937 gen(1);
  std::string junk(4096, '\0');
  for (char& c : junk) c = static_cast<char>(gen() & 0xff);
  WriteFile(dir_ / "junk.onnx", junk);
  Snapshot();
  ExpectFails({"junk.onnx"}, 1, {"junk.onnx"});
}

TEST_F(Errors, ModelWithoutGraph) {
  onnx::ModelProto model;
  model.set_ir_version(8);
  model.set_producer_name("cli_test");
  auto* opset = model.add_opset_import();
  opset->set_domain("");
  opset->set_version(17);
  WriteModel(model, "nograph.onnx");
  ExpectFails({"nograph.onnx"}, 1, {"nograph.onnx", "graph"});
  ExpectFails({"inspect", "nograph.onnx", "--json"}, 1, {"nograph.onnx", "graph"});
}

TEST_F(Errors, UnknownSchemeListsTheValidOnes) {
  for (const auto& args : std::vector<std::vector<std::string>>{
           {"m.onnx", "--scheme", "foo"}, {"inspect", "m.onnx", "--scheme", "foo"}}) {
    const RunOutput r = ExpectFails(args, 2, {"foo"});
    for (const auto& name : reinit::SchemeNames()) {
      EXPECT_TRUE(Contains(r.err, name)) << "the message does not list " << name << "\n" << r;
    }
  }
}

TEST_F(Errors, BadLayerSpecs) {
  ExpectFails({"m.onnx", "--layer", "x=bogus"}, 2, {"bogus", "he-normal"});
  ExpectFails({"m.onnx", "--layer", "noequals"}, 2, {"noequals"});
  ExpectFails({"m.onnx", "--layer", "=he-normal"}, 2, {"=he-normal"});
  ExpectFails({"m.onnx", "--layer", "fc1="}, 2, {"fc1="});
}

TEST_F(Errors, BadOptions) {
  ExpectFails({"m.onnx", "--frobnicate"}, 2, {"--frobnicate"});
  ExpectFails({"m.onnx", "--bias", "maybe"}, 2, {"maybe"});
  ExpectFails({"m.onnx", "--seed", "many"}, 2, {"many"});
  ExpectFails({"m.onnx", "--std", "-1"}, 2, {"-1"});
  ExpectFails({}, 2, {"model"});
}

TEST_F(Errors, OutputDirectoryMissing) {
  ExpectFails({"m.onnx", "-o", "nodir/out.onnx"}, 1, {"nodir/out.onnx"});
}

TEST_F(Errors, PathsThatAreDirectories) {
  fs::create_directory(dir_ / "d");
  Snapshot();
  ExpectFails({"m.onnx", "-o", "d"}, 1, {"'d'"});
  EXPECT_TRUE(ListDir(dir_ / "d").empty());
  ExpectFails({"d"}, 1, {"'d'", "directory"});
}

TEST_F(Errors, SeedOutOfRange) {
  ExpectFails({"m.onnx", "--seed", "-1"}, 2, {"-1"});
  ExpectFails({"m.onnx", "--seed", "18446744073709551616"}, 2, {"18446744073709551616"});
  ExpectFails({"inspect", "m.onnx", "--seed", "-3"}, 2, {"-3"});
  ExpectFails({"m.onnx", "--seed", "1.5"}, 2, {"1.5"});
}

TEST_F(Errors, PlanNamesAMissingLayer) {
  Plan plan = InspectModel();
  ASSERT_GT(plan.layers_size(), 0);
  plan.mutable_layers(0)->set_name("no_such_layer");
  WritePlan(plan);
  ExpectFails({"m.onnx", "--plan", "p.json", "-o", "out.onnx"}, 1, {"no_such_layer"});
}

TEST_F(Errors, PlanWithUnknownScheme) {
  Plan plan = InspectModel();
  ASSERT_GT(plan.layers_size(), 1);
  plan.mutable_layers(1)->mutable_weight()->set_scheme("bogus-scheme");
  WritePlan(plan);
  ExpectFails({"m.onnx", "--plan", "p.json", "-o", "out.onnx"}, 1,
              {"bogus-scheme", plan.layers(1).name(), "he-normal", "xavier-uniform"});
}

TEST_F(Errors, PlanWithTheWrongWeight) {
  Plan plan = InspectModel();
  ASSERT_GT(plan.layers_size(), 1);
  plan.mutable_layers(0)->mutable_weight()->set_name(plan.layers(1).weight().name());
  WritePlan(plan);
  ExpectFails({"m.onnx", "--plan", "p.json", "-o", "out.onnx"}, 1,
              {plan.layers(0).name(), plan.layers(1).weight().name()});
}

TEST_F(Errors, PlanWithOptionsItWouldIgnore) {
  WritePlan(InspectModel());
  for (const auto& extra : std::vector<std::vector<std::string>>{{"--scheme", "he-normal"},
                                                                 {"--seed", "4"},
                                                                 {"--layer", "fc1=zero"},
                                                                 {"--bias", "keep"},
                                                                 {"--mode", "fan_out"}}) {
    std::vector<std::string> args = {"m.onnx", "--plan", "p.json", "-o", "out.onnx"};
    args.insert(args.end(), extra.begin(), extra.end());
    ExpectFails(args, 2, {"--plan", extra[0]});
  }
}

TEST_F(Errors, PlanNotJson) {
  WriteFile(dir_ / "p.json", "this is { not json");
  Snapshot();
  ExpectFails({"m.onnx", "--plan", "p.json", "-o", "out.onnx"}, 1, {"p.json"});
  ExpectFails({"m.onnx", "--plan", "absent.json", "-o", "out.onnx"}, 1, {"absent.json"});
}

// x [1, 4, 8, 8] -> Conv 'conv_a' (weight W_a [6, per_group_in, 3, 3], `group`) -> y.
onnx::ModelProto ConvModel(int group, int64_t per_group_in) {
  const std::string text =
      "<ir_version: 8, opset_import: [\"\" : 17]>\n"
      "g (float[1,4,8,8] x) => (float[1,6,6,6] y) {\n"
      "  y = Conv <group = " +
      std::to_string(group) +
      ", kernel_shape = [3, 3]> (x, W_a)\n"
      "}\n";
  return BuildModel(text.c_str(), {"conv_a"},
                    {MakeTensor("W_a", onnx::TensorProto::FLOAT, {6, per_group_in, 3, 3}, true)});
}

TEST_F(Errors, ConvGroupZero) {
  WriteModel(ConvModel(0, 4), "g0.onnx");
  ExpectFails({"g0.onnx", "-o", "out.onnx"}, 1, {"conv_a", "W_a"});
  ExpectFails({"inspect", "g0.onnx"}, 1, {"conv_a", "W_a"});
}

TEST_F(Errors, ConvGroupNotDividingOutputChannels) {
  WriteModel(ConvModel(4, 1), "g4.onnx");  // 6 output channels, 4 groups
  ExpectFails({"g4.onnx", "-o", "out.onnx"}, 1, {"conv_a", "W_a"});
  ExpectFails({"g4.onnx", "--fan-convention", "torch", "-o", "out.onnx"}, 1, {"conv_a", "W_a"});
}

TEST_F(Errors, ConvTransposeGroupNotDividingInputChannels) {
  // ConvTranspose's weight is [C_in, C_out / group, k...]: 4 groups cannot split 6 channels.
  WriteModel(
      BuildModel(R"(
<ir_version: 8, opset_import: ["" : 17]>
g (float[1,6,4,4] x) => (float[1,4,6,6] y) {
  y = ConvTranspose <group = 4, kernel_shape = [3, 3]> (x, W_t)
}
)",
                 {"deconv_a"}, {MakeTensor("W_t", onnx::TensorProto::FLOAT, {6, 1, 3, 3}, true)}),
      "t4.onnx");
  ExpectFails({"t4.onnx", "-o", "out.onnx"}, 1, {"deconv_a", "W_t"});
  ExpectFails({"t4.onnx", "--fan-convention", "torch", "-o", "out.onnx"}, 1, {"deconv_a", "W_t"});
}

// The weight [6, 1, 3, 3] with group 3 says the input has 3 channels; it has 4.
TEST_F(Errors, ConvGroupNotDividingInputChannels) {
  WriteModel(ConvModel(3, 1), "g3.onnx");  // 4 input channels, 3 groups of 1
  ExpectFails({"g3.onnx", "-o", "out.onnx"}, 1, {"conv_a", "W_a"});
}

TEST_F(Errors, RawDataOfTheWrongLength) {
  onnx::TensorProto w = MakeTensor("fc_w", onnx::TensorProto::FLOAT, {3, 4}, true);
  w.mutable_raw_data()->resize(11 * 4);
  WriteModel(
      BuildModel(kGemmText, {"fc"}, {w, MakeTensor("fc_b", onnx::TensorProto::FLOAT, {3}, true)}),
      "short.onnx");
  ExpectFails({"short.onnx", "-o", "out.onnx"}, 1, {"fc_w"});
  ExpectFails({"inspect", "short.onnx"}, 1, {"fc_w"});

  onnx::TensorProto typed = MakeTensor("fc_w", onnx::TensorProto::FLOAT, {3, 4}, false);
  typed.add_float_data(0.5f);
  WriteModel(BuildModel(kGemmText, {"fc"},
                        {typed, MakeTensor("fc_b", onnx::TensorProto::FLOAT, {3}, true)}),
             "long.onnx");
  ExpectFails({"long.onnx", "-o", "out.onnx"}, 1, {"fc_w"});
}

// A bias is rewritten (zero) or kept, never read; a corrupt one is still a corrupt model.
TEST_F(Errors, BiasRawDataOfTheWrongLength) {
  onnx::TensorProto bias = MakeTensor("fc_b", onnx::TensorProto::FLOAT, {3}, true);
  bias.mutable_raw_data()->append("\0\0\0\0", 4);
  WriteModel(BuildModel(kGemmText, {"fc"},
                        {MakeTensor("fc_w", onnx::TensorProto::FLOAT, {3, 4}, true), bias}),
             "bias.onnx");
  ExpectFails({"bias.onnx", "-o", "out.onnx"}, 1, {"fc_b"});
  ExpectFails({"bias.onnx", "--bias", "keep", "-o", "out.onnx"}, 1, {"fc_b"});
  ExpectFails({"inspect", "bias.onnx"}, 1, {"fc_b"});
}

// ---------------------------------------------------------------------------------------------
// 8. schemes and --help.

TEST(Schemes, ListsEverySchemeWithAFormula) {
  const RunOutput r = RunChecked({"schemes"});
  ASSERT_EQ(r.exit_code, 0) << r;
  std::map<std::string, std::string> formula;  // first word -> the rest of the line
  std::istringstream lines(r.out);
  std::string line;
  while (std::getline(lines, line)) {
    const size_t start = line.find_first_not_of(' ');
    if (start == std::string::npos) continue;
    const size_t end = line.find(' ', start);
    const std::string first = line.substr(start, end == std::string::npos ? end : end - start);
    const size_t rest = end == std::string::npos ? end : line.find_first_not_of(' ', end);
    formula.emplace(first, rest == std::string::npos ? "" : line.substr(rest));
  }
  const auto names = reinit::SchemeNames();
  EXPECT_GE(names.size(), 14u);
  for (const auto& name : names) {
    ASSERT_TRUE(formula.count(name)) << "schemes does not list " << name << "\n" << r;
    EXPECT_GE(formula[name].size(), 5u) << name << " has no formula";
  }
  EXPECT_TRUE(Contains(formula["he-normal"], "sqrt")) << formula["he-normal"];
}

TEST(Help, ExitsZero) {
  const RunOutput r = RunChecked({"--help"});
  EXPECT_EQ(r.exit_code, 0) << r;
  for (const char* option : {"--scheme", "--seed", "--layer", "--plan", "--dry-run", "inspect"}) {
    EXPECT_TRUE(Contains(r.out, option)) << option << "\n" << r;
  }
  const RunOutput version = RunChecked({"--version"});
  EXPECT_EQ(version.exit_code, 0) << version;
  EXPECT_TRUE(Contains(version.out, "reinit ")) << version;

  const RunOutput sub = RunChecked({"inspect", "--help"});
  EXPECT_EQ(sub.exit_code, 0) << sub;
  EXPECT_TRUE(Contains(sub.out, "--json")) << sub;
}

}  // namespace
}  // namespace cli_test
}  // namespace reinit_cli_test

namespace reinit_cli_test {
namespace cli_test {
namespace {

// Runs reinit with its stdout and stderr on a pseudo-terminal; returns all it printed.
std::string RunOnTerminal(const std::vector<std::string>& args) {
  std::vector<char*> argv;
  std::string binary = REINIT_BINARY;
  argv.push_back(binary.data());
  std::vector<std::string> copies = args;
  for (auto& a : copies) argv.push_back(a.data());
  argv.push_back(nullptr);
  int master = -1;
  const pid_t pid = forkpty(&master, nullptr, nullptr, nullptr);
  if (pid == 0) {
    setenv("REINIT_PROGRESS_AFTER_MS", "0", 1);
    execv(argv[0], argv.data());
    _exit(127);
  }
  EXPECT_GT(pid, 0);
  std::string out;
  char buffer[4096];
  for (;;) {
    const ssize_t n = read(master, buffer, sizeof buffer);
    if (n > 0) {
      out.append(buffer, static_cast<size_t>(n));
    } else if (n < 0 && errno == EINTR) {
      continue;
    } else {
      break;  // EIO once the child has exited
    }
  }
  close(master);
  int status = 0;
  waitpid(pid, &status, 0);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << out;
  return out;
}

// A Gemm with a 4 MiB weight: large enough to be streamed, and so to show progress.
std::string LargeModel(const TempDir& dir) {
  onnx::ModelProto m;
  const auto parsed = onnx::OnnxParser::Parse(m, R"(<ir_version: 8, opset_import: ["" : 17]>
g (float[1, 1024] x) => (float[1, 1024] y) {
  y = Gemm <transB = 1> (x, w)
})");
  EXPECT_TRUE(parsed.IsOK()) << parsed.ErrorMessage();
  auto* w = m.mutable_graph()->add_initializer();
  w->set_name("w");
  w->set_data_type(onnx::TensorProto::FLOAT);
  w->add_dims(1024);
  w->add_dims(1024);
  w->set_raw_data(std::string(1024 * 1024 * 4, '\0'));
  SaveModelFile(m, dir / "large.onnx");
  return dir / "large.onnx";
}

TEST(Progress, ABarOnATerminalNoneWithQuietNoneWhenPiped) {
  TempDir dir;
  const std::string model = LargeModel(dir);
  const std::string shown = RunOnTerminal({model, "-o", dir / "a.onnx"});
  EXPECT_NE(shown.find("reinit: ["), std::string::npos) << shown;
  EXPECT_NE(shown.find("100%"), std::string::npos) << shown;
  const std::string quiet = RunOnTerminal({model, "-o", dir / "b.onnx", "--quiet"});
  EXPECT_EQ(quiet.find("reinit: ["), std::string::npos) << quiet;
  setenv("REINIT_PROGRESS_AFTER_MS", "0", 1);
  const RunOutput piped = RunReinit({model, "-o", dir / "c.onnx"});
  unsetenv("REINIT_PROGRESS_AFTER_MS");
  EXPECT_EQ(piped.exit_code, 0) << piped;
  EXPECT_EQ(piped.err.find("reinit: ["), std::string::npos) << piped;
}

// -q is taken by every command, so that a script can pass it to any of them (before, `reinit
// export ... -q` was refused: "The following argument was not expected: -q"); it changes
// nothing they print.
TEST(Progress, EveryCommandTakesQuiet) {
  TempDir dir;
  const std::string model = LargeModel(dir);
  const std::vector<std::vector<std::string>> commands = {
      {model, "-o", dir / "a.onnx"},
      {"inspect", model},
      {"inspect", model, "--json"},
      {"export", model, "-o", dir / "w.safetensors"},
      {"schemes"},
  };
  for (const auto& args : commands) {
    const RunOutput plain = RunReinit(args);
    ASSERT_EQ(plain.exit_code, 0) << plain;
    for (const char* flag : {"-q", "--quiet"}) {
      std::vector<std::string> with = args;
      with.push_back(flag);
      const RunOutput quiet = RunReinit(with);
      EXPECT_EQ(quiet.exit_code, 0) << quiet;
      EXPECT_EQ(quiet.out, plain.out) << args[0] << " " << flag;
      EXPECT_EQ(quiet.err, plain.err) << args[0] << " " << flag;
    }
  }
}

TEST(Threads, TheOutputIsTheSameBytesForEveryCount) {
  TempDir dir;
  const std::string model = LargeModel(dir);
  std::string first;
  for (const char* threads : {"1", "2", "5", "0"}) {
    const std::string out = dir / (std::string("t") + threads + ".onnx");
    const RunOutput r =
        RunReinit({model, "-o", out, "--threads", threads, "--scheme", "he-normal"});
    ASSERT_EQ(r.exit_code, 0) << r;
    const std::string bytes = ReadFile(out);
    if (first.empty()) first = bytes;
    EXPECT_TRUE(bytes == first) << "--threads " << threads;
  }
  const RunOutput bad = RunReinit({model, "-o", dir / "x.onnx", "--threads", "-1"});
  EXPECT_EQ(bad.exit_code, 2) << bad;
  EXPECT_TRUE(Contains(bad.err, "--threads")) << bad;
}

// export draws weights too, and takes --threads like the main command: the same bytes for every
// count; an invalid count is a usage error there too.
TEST(Threads, ExportTakesThreadsAndWritesTheSameBytesForEveryCount) {
  TempDir dir;
  const std::string model = LargeModel(dir);
  std::string first;
  for (const char* threads : {"1", "3", "0"}) {
    const std::string out = dir / (std::string("w") + threads + ".safetensors");
    const RunOutput r = RunReinit({"export", model, "-o", out, "--threads", threads, "-q"});
    ASSERT_EQ(r.exit_code, 0) << r;
    const std::string bytes = ReadFile(out);
    if (first.empty()) first = bytes;
    EXPECT_TRUE(bytes == first) << "export --threads " << threads;
  }
  EXPECT_GT(first.size(), 4u << 20);  // the 4 MiB weight is in it
  const RunOutput bad =
      RunReinit({"export", model, "-o", dir / "x.safetensors", "--threads", "-1"});
  EXPECT_EQ(bad.exit_code, 2) << bad;
  EXPECT_TRUE(Contains(bad.err, "--threads")) << bad;
}

TEST(MaxMemory, ATensorDrawnWholeOverTheLimitIsRefusedBeforeAnythingIsWritten) {
  TempDir dir;
  const std::string model = LargeModel(dir);  // a 1024 x 1024 float weight: 4 MiB
  const RunOutput refused =
      RunReinit({model, "-o", dir / "o.onnx", "--scheme", "orthogonal", "--max-memory", "1M"});
  EXPECT_EQ(refused.exit_code, 1) << refused;
  EXPECT_TRUE(Contains(refused.err, "reinit: error: ")) << refused;
  EXPECT_TRUE(Contains(refused.err, "tensor 'w'")) << refused;
  EXPECT_TRUE(Contains(refused.err, "[1024, 1024]")) << refused;
  EXPECT_TRUE(Contains(refused.err, "--max-memory")) << refused;
  EXPECT_FALSE(fs::exists(dir / "o.onnx"));
  // Streamed schemes need no room for the whole tensor; the default limit is ample.
  EXPECT_EQ(RunReinit({model, "-o", dir / "a.onnx", "--max-memory", "1M"}).exit_code, 0);
  EXPECT_EQ(RunReinit({model, "-o", dir / "b.onnx", "--scheme", "orthogonal"}).exit_code, 0);
  const RunOutput bad = RunReinit({model, "-o", dir / "c.onnx", "--max-memory", "lots"});
  EXPECT_EQ(bad.exit_code, 2) << bad;
}

TEST(MaxMemory, AnAbsurdDeclaredShapeFailsFast) {
  TempDir dir;
  onnx::ModelProto m;
  // A weight of 1e10 values made by ConstantOfShape: 40 GB to materialize.
  const auto parsed = onnx::OnnxParser::Parse(m, R"(<ir_version: 8, opset_import: ["" : 17]>
g (float[1, 100000] x) => (float[1, 100000] y) {
  s = Constant <value = int64[2] {100000, 100000}> ()
  w = ConstantOfShape <value = float[1] {0.5}> (s)
  y = Gemm <transB = 1> (x, w)
})");
  ASSERT_TRUE(parsed.IsOK()) << parsed.ErrorMessage();
  SaveModelFile(m, dir / "absurd.onnx");
  const RunOutput r = RunReinit({dir / "absurd.onnx", "-o", dir / "o.onnx", "--max-memory", "8G"});
  EXPECT_EQ(r.exit_code, 1) << r;
  EXPECT_TRUE(Contains(r.err, "'w'")) << r;
  EXPECT_TRUE(Contains(r.err, "10000000000 values")) << r;
  EXPECT_TRUE(Contains(r.err, "--max-memory")) << r;
  EXPECT_FALSE(fs::exists(dir / "o.onnx"));
}

// ---- Signal propagation: inspect --propagate and --report ------------------------------------

TEST(Propagate, PrintsEveryLayerAndTheRatio) {
  const RunOutput r =
      RunChecked({"inspect", SourcePath("models/mlp_tanh.onnx"), "--propagate", "--batch", "4"});
  ASSERT_EQ(r.exit_code, 0) << r;
  EXPECT_TRUE(Contains(r.out, "x [4,32]")) << r;
  for (const char* col : {"mean before", "std before", "mean after", "std after"}) {
    EXPECT_TRUE(Contains(r.out, col)) << r;
  }
  for (int k = 1; k <= 10; ++k) EXPECT_TRUE(Contains(r.out, "fc" + std::to_string(k))) << r;
  EXPECT_TRUE(Contains(r.out, "std after activation, last layer / first layer: ")) << r;
  // The seed decides the inputs.
  const RunOutput again =
      RunChecked({"inspect", SourcePath("models/mlp_tanh.onnx"), "--propagate", "--batch", "4"});
  EXPECT_EQ(again.out, r.out);
  const RunOutput other = RunChecked({"inspect", SourcePath("models/mlp_tanh.onnx"), "--propagate",
                                      "--batch", "4", "--seed", "9"});
  EXPECT_NE(other.out, r.out);
}

TEST(Propagate, BadInputShapesAreUsageErrors) {
  const std::string model = SourcePath("models/mlp_tanh.onnx");
  ExpectError(RunChecked({"inspect", model, "--propagate", "--input", "x=4,5"}), 2,
              {"--input x: dim 1 is 5, but the model declares [N, 32]"});
  ExpectError(RunChecked({"inspect", model, "--propagate", "--input", "y=4"}), 2,
              {"no input of that name"});
  ExpectError(RunChecked({"inspect", model, "--propagate", "--input", "x=4,-1"}), 2,
              {"--input 'x=4,-1'"});
  ExpectError(RunChecked({"inspect", model, "--propagate", "--batch", "0"}), 2, {"--batch"});
}

TEST(Propagate, AnOpTheExecutorDoesNotRunIsNamed) {
  TempDir dir;
  onnx::ModelProto m;
  ASSERT_TRUE(onnx::OnnxParser::Parse(m, R"(<ir_version: 8, opset_import: ["" : 17]>
g (float[N, 4] x) => (float[N, 3] y) {
  h = Gemm <transB = 1> (x, w)
  y = Hardmax (h)
})")
                  .IsOK());
  reinit_test::AddFloatInitializer(&m, "w", {3, 4});
  m.mutable_graph()->mutable_node(1)->set_name("hm");
  const std::string model = dir / "m.onnx";
  SaveModelFile(m, model);
  ExpectError(RunChecked({"inspect", model, "--propagate"}), 1,
              {model, "node 'hm' (Hardmax): operator 'Hardmax' is not supported"});
  // --report fails the same way before anything is written.
  ExpectError(RunChecked({model, "-o", dir / "o.onnx", "--report", dir / "r.svg"}, dir.path()), 1,
              {"Hardmax"});
  EXPECT_FALSE(fs::exists(dir / "o.onnx"));
  EXPECT_FALSE(fs::exists(dir / "r.svg"));
}

TEST(Report, WritesTheModelTheTableAndTheChart) {
  TempDir dir;
  const std::string model = CopyModel("mlp_tanh.onnx", dir);
  const RunOutput r =
      RunChecked({model, "-o", dir / "o.onnx", "--report", dir / "r.svg"}, dir.path());
  ASSERT_EQ(r.exit_code, 0) << r;
  EXPECT_TRUE(fs::exists(dir / "o.onnx"));
  EXPECT_TRUE(Contains(r.out, "std after each layer's activation, by scheme")) << r;
  for (const char* s : {"zero", "normal", "xavier-normal", "he-normal", "lecun-normal",
                        "orthogonal", "auto (chosen)"}) {
    EXPECT_TRUE(Contains(r.out, s)) << s << "\n" << r;
  }
  EXPECT_TRUE(Contains(r.out, "wrote " + (dir / "r.svg"))) << r;
  const std::string svg = ReadFile(dir / "r.svg");
  EXPECT_EQ(svg.rfind("<svg", 0), 0u);
  ExpectError(RunChecked({model, "--dry-run", "--report", dir / "s.svg"}), 2, {"--report"});
  EXPECT_FALSE(fs::exists(dir / "s.svg"));
}

}  // namespace
}  // namespace cli_test
}  // namespace reinit_cli_test
