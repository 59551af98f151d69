// The executor's RNN, GRU and LSTM against a scalar reference written here from the ONNX
// spec's equations (one unit of one gate at a time, in double), on small random inputs: every
// direction, with and without bias, initial state and sequence_lens, both layouts, both
// linear_before_reset, peepholes, input_forget, clip and non-default activations. Plus a
// case small enough to work out by hand, and the errors.
#include <gtest/gtest.h>
#include <onnx/onnx_pb.h>

#include <cmath>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "signal/executor/executor.h"
#include "signal/executor/ops.h"

namespace reinit::exec {
namespace executor_recurrent_test {
namespace {

using Floats = std::vector<float>;
using Ints = std::vector<int64_t>;

#define EXPECT_CONTAINS(text, part) \
  EXPECT_NE(std::string(text).find(part), std::string::npos) << "in: " << (text)

struct Case {
  std::string op = "LSTM";  // RNN, GRU, LSTM
  std::string direction = "forward";
  int64_t layout = 0;
  int64_t seq = 5, batch = 3, input = 4, hidden = 3;
  bool bias = false, initial = false, lengths = false, peepholes = false;
  bool linear_before_reset = false, input_forget = false;
  float clip = 0.0f;                     // 0: no clip attribute
  std::vector<std::string> activations;  // empty: the defaults
  Floats alphas, betas;

  int64_t gates() const { return op == "RNN" ? 1 : op == "GRU" ? 3 : 4; }
  int64_t dirs() const { return direction == "bidirectional" ? 2 : 1; }
  std::string Name() const {
    return op + " " + direction + " layout " + std::to_string(layout) + (bias ? " B" : "") +
           (initial ? " initial" : "") + (lengths ? " lens" : "") + (peepholes ? " P" : "") +
           (linear_before_reset ? " lbr" : "") + (input_forget ? " input_forget" : "") +
           (clip > 0 ? " clip" : "");
  }
};

// The op's operands, drawn at random; tensors in the layout the case asks for.
struct Data {
  Floats x, w, r, b, h0, c0, p;
  Ints lens;
};

Data Draw(const Case& c, uint32_t seed) {
  std::mt19937 gen(seed);
  std::uniform_real_distribution<float> u(-1.0f, 1.0f);
  auto fill = [&](int64_t n, float scale) {
    Floats v(static_cast<size_t>(n));
    for (float& e : v) e = scale * u(gen);
    return v;
  };
  const int64_t gh = c.gates() * c.hidden, d = c.dirs();
  Data data;
  data.x = fill(c.seq * c.batch * c.input, 1.5f);
  data.w = fill(d * gh * c.input, 0.8f);
  data.r = fill(d * gh * c.hidden, 0.8f);
  data.b = fill(d * 2 * gh, 0.5f);
  data.h0 = fill(d * c.batch * c.hidden, 1.0f);
  data.c0 = fill(d * c.batch * c.hidden, 1.0f);
  data.p = fill(d * 3 * c.hidden, 0.5f);
  // Full length, a shorter one, one step; repeated for larger batches.
  for (int64_t b = 0; b < c.batch; ++b) {
    const int64_t pick = b % 3;
    data.lens.push_back(pick == 0 ? c.seq : pick == 1 ? std::max<int64_t>(1, c.seq - 2) : 1);
  }
  return data;
}

onnx::TensorProto* AddFloats(onnx::GraphProto* g, const std::string& name, const Ints& dims,
                             const Floats& values) {
  auto* t = g->add_initializer();
  t->set_name(name);
  t->set_data_type(onnx::TensorProto::FLOAT);
  for (int64_t d : dims) t->add_dims(d);
  for (float v : values) t->add_float_data(v);
  return t;
}

void AddInput(onnx::GraphProto* g, const std::string& name) {
  auto* in = g->add_input();
  in->set_name(name);
  in->mutable_type()->mutable_tensor_type()->set_elem_type(onnx::TensorProto::FLOAT);
}

// The one-node model: W, R, B, sequence_lens (int32, as exporters write it) and P as
// initializers; X, initial_h and initial_c as graph inputs.
onnx::ModelProto BuildModel(const Case& c, const Data& data) {
  onnx::ModelProto m;
  m.set_ir_version(8);
  m.add_opset_import()->set_version(14);
  auto* g = m.mutable_graph();
  g->set_name("g");
  const int64_t gh = c.gates() * c.hidden, d = c.dirs();
  AddInput(g, "X");
  AddFloats(g, "W", {d, gh, c.input}, data.w);
  AddFloats(g, "R", {d, gh, c.hidden}, data.r);
  auto* node = g->add_node();
  node->set_op_type(c.op);
  node->set_name("rnn");
  for (const char* in : {"X", "W", "R"}) node->add_input(in);
  node->add_input(c.bias ? "B" : "");
  if (c.bias) AddFloats(g, "B", {d, 2 * gh}, data.b);
  node->add_input(c.lengths ? "L" : "");
  if (c.lengths) {
    auto* t = g->add_initializer();
    t->set_name("L");
    t->set_data_type(onnx::TensorProto::INT32);
    t->add_dims(c.batch);
    for (int64_t v : data.lens) t->add_int32_data(static_cast<int32_t>(v));
  }
  node->add_input(c.initial ? "H0" : "");
  if (c.initial) AddInput(g, "H0");
  if (c.op == "LSTM") {
    node->add_input(c.initial ? "C0" : "");
    if (c.initial) AddInput(g, "C0");
    node->add_input(c.peepholes ? "P" : "");
    if (c.peepholes) AddFloats(g, "P", {d, 3 * c.hidden}, data.p);
  }
  for (const char* out : {"Y", "Y_h", "Y_c"}) {
    if (std::string(out) == "Y_c" && c.op != "LSTM") break;
    node->add_output(out);
    g->add_output()->set_name(out);
  }
  auto attr_i = [&](const std::string& name, int64_t v) {
    auto* a = node->add_attribute();
    a->set_name(name);
    a->set_type(onnx::AttributeProto::INT);
    a->set_i(v);
  };
  attr_i("hidden_size", c.hidden);
  attr_i("layout", c.layout);
  if (c.op == "GRU") attr_i("linear_before_reset", c.linear_before_reset);
  if (c.op == "LSTM") attr_i("input_forget", c.input_forget);
  auto* dir = node->add_attribute();
  dir->set_name("direction");
  dir->set_type(onnx::AttributeProto::STRING);
  dir->set_s(c.direction);
  if (c.clip > 0) {
    auto* a = node->add_attribute();
    a->set_name("clip");
    a->set_type(onnx::AttributeProto::FLOAT);
    a->set_f(c.clip);
  }
  if (!c.activations.empty()) {
    auto* a = node->add_attribute();
    a->set_name("activations");
    a->set_type(onnx::AttributeProto::STRINGS);
    for (const auto& s : c.activations) a->add_strings(s);
  }
  for (const auto& [name, values] :
       {std::pair{"activation_alpha", c.alphas}, std::pair{"activation_beta", c.betas}}) {
    if (values.empty()) continue;
    auto* a = node->add_attribute();
    a->set_name(name);
    a->set_type(onnx::AttributeProto::FLOATS);
    for (float v : values) a->add_floats(v);
  }
  return m;
}

StatusOr<std::map<std::string, Tensor>> RunCase(const Case& c, const Data& data) {
  auto e = Executor::Create(BuildModel(c, data));
  if (!e.ok()) return e.status();
  const Ints x_shape =
      c.layout == 0 ? Ints{c.seq, c.batch, c.input} : Ints{c.batch, c.seq, c.input};
  const Ints s_shape =
      c.layout == 0 ? Ints{c.dirs(), c.batch, c.hidden} : Ints{c.batch, c.dirs(), c.hidden};
  std::map<std::string, Tensor> feeds{{"X", Tensor::Float(x_shape, data.x)}};
  if (c.initial) {
    feeds["H0"] = Tensor::Float(s_shape, data.h0);
    if (c.op == "LSTM") feeds["C0"] = Tensor::Float(s_shape, data.c0);
  }
  return (*e)->Run(feeds);
}

// ---- The scalar reference ----------------------------------------------------------------------

double Act(const std::string& name, double x, double alpha, double beta) {
  if (name == "Sigmoid") return 1.0 / (1.0 + std::exp(-x));
  if (name == "Tanh") return std::tanh(x);
  if (name == "Relu") return x > 0 ? x : 0.0;
  if (name == "LeakyRelu") return x >= 0 ? x : alpha * x;
  if (name == "HardSigmoid") return std::min(1.0, std::max(0.0, alpha * x + beta));
  if (name == "Affine") return alpha * x + beta;
  if (name == "ScaledTanh") return alpha * std::tanh(beta * x);
  if (name == "Softsign") return x / (1 + std::fabs(x));
  ADD_FAILURE() << "no reference for " << name;
  return 0;
}

struct Outputs {
  Floats y, yh, yc;  // layout 0: [seq, dirs, batch, hidden], [dirs, batch, hidden]
};

Outputs Reference(const Case& c, const Data& data) {
  const int64_t T = c.seq, B = c.batch, I = c.input, H = c.hidden, D = c.dirs();
  const int64_t G = c.gates();
  // Operands in layout 0, read through accessors.
  auto x = [&](int64_t t, int64_t b, int64_t k) {
    return double(c.layout == 0 ? data.x[(t * B + b) * I + k] : data.x[(b * T + t) * I + k]);
  };
  auto state0 = [&](const Floats& v, int64_t d, int64_t b, int64_t j) {
    if (!c.initial) return 0.0;
    return double(c.layout == 0 ? v[(d * B + b) * H + j] : v[(b * D + d) * H + j]);
  };
  // The activation functions with their parameters, per direction (names repeated when one
  // direction's list is given for a bidirectional op).
  std::vector<std::string> names = c.activations;
  if (names.empty()) {
    names = c.op == "RNN"   ? std::vector<std::string>{"Tanh"}
            : c.op == "GRU" ? std::vector<std::string>{"Sigmoid", "Tanh"}
                            : std::vector<std::string>{"Sigmoid", "Tanh", "Tanh"};
  }
  const size_t per = static_cast<size_t>(c.op == "RNN" ? 1 : c.op == "GRU" ? 2 : 3);
  if (names.size() == per && D == 2) {
    const std::vector<std::string> one = names;
    names.insert(names.end(), one.begin(), one.end());
  }
  std::vector<double> alpha(names.size()), beta(names.size());
  for (size_t k = 0, na = 0, nb = 0; k < names.size(); ++k) {
    const std::string& n = names[k];
    const bool takes_alpha =
        n == "LeakyRelu" || n == "HardSigmoid" || n == "Affine" || n == "ScaledTanh";
    const bool takes_beta = n == "HardSigmoid" || n == "Affine" || n == "ScaledTanh";
    alpha[k] = n == "LeakyRelu" ? 0.01 : n == "HardSigmoid" ? 0.2 : 1.0;
    beta[k] = n == "HardSigmoid" ? 0.5 : n == "Affine" ? 0.0 : 1.0;
    if (takes_alpha && na < c.alphas.size()) alpha[k] = c.alphas[na++];
    if (takes_beta && nb < c.betas.size()) beta[k] = c.betas[nb++];
  }
  auto clip = [&](double v) {
    return c.clip > 0 ? std::min<double>(c.clip, std::max<double>(-c.clip, v)) : v;
  };

  Outputs out;
  out.y.assign(static_cast<size_t>(T * D * B * H), 0.0f);
  out.yh.assign(static_cast<size_t>(D * B * H), 0.0f);
  out.yc.assign(static_cast<size_t>(D * B * H), 0.0f);
  for (int64_t d = 0; d < D; ++d) {
    const bool reverse = c.direction == "reverse" || d == 1;
    auto act = [&](size_t k, double v) {
      const size_t at = static_cast<size_t>(d) * per + k;
      return Act(names[at], v, alpha[at], beta[at]);
    };
    const float* W = data.w.data() + d * G * H * I;
    const float* R = data.r.data() + d * G * H * H;
    const float* Wb = data.b.data() + d * 2 * G * H;
    const float* Rb = Wb + G * H;
    const float* P = data.p.data() + d * 3 * H;
    // X_t·W_g^T + Wb_g for unit j of gate block g; H·R_g^T + Rb_g likewise.
    auto xw = [&](int64_t g, int64_t j, int64_t t, int64_t b) {
      double s = c.bias ? Wb[g * H + j] : 0.0;
      for (int64_t k = 0; k < I; ++k) s += W[(g * H + j) * I + k] * x(t, b, k);
      return s;
    };
    auto hr = [&](int64_t g, int64_t j, const std::vector<double>& h) {
      double s = c.bias ? Rb[g * H + j] : 0.0;
      for (int64_t k = 0; k < H; ++k) s += R[(g * H + j) * H + k] * h[k];
      return s;
    };
    for (int64_t b = 0; b < B; ++b) {
      std::vector<double> h(H), cell(H), next(H), next_c(H);
      for (int64_t j = 0; j < H; ++j) {
        h[j] = state0(data.h0, d, b, j);
        cell[j] = state0(data.c0, d, b, j);
      }
      const int64_t len = c.lengths ? data.lens[b] : T;
      for (int64_t s = 0; s < len; ++s) {
        const int64_t t = reverse ? len - 1 - s : s;
        if (c.op == "RNN") {
          for (int64_t j = 0; j < H; ++j) next[j] = act(0, clip(xw(0, j, t, b) + hr(0, j, h)));
        } else if (c.op == "GRU") {
          std::vector<double> z(H), r(H), rh(H);
          for (int64_t j = 0; j < H; ++j) {
            z[j] = act(0, clip(xw(0, j, t, b) + hr(0, j, h)));
            r[j] = act(0, clip(xw(1, j, t, b) + hr(1, j, h)));
            rh[j] = r[j] * h[j];
          }
          for (int64_t j = 0; j < H; ++j) {
            // hr includes Rbh; xw includes Wbh.
            const double pre = c.linear_before_reset ? xw(2, j, t, b) + r[j] * hr(2, j, h)
                                                     : xw(2, j, t, b) + hr(2, j, rh);
            const double cand = act(1, clip(pre));
            next[j] = (1 - z[j]) * cand + z[j] * h[j];
          }
        } else {
          for (int64_t j = 0; j < H; ++j) {
            const double pi = c.peepholes ? P[j] : 0.0;
            const double po = c.peepholes ? P[H + j] : 0.0;
            const double pf = c.peepholes ? P[2 * H + j] : 0.0;
            const double i = act(0, clip(xw(0, j, t, b) + hr(0, j, h) + pi * cell[j]));
            const double f =
                c.input_forget ? 1 - i : act(0, clip(xw(2, j, t, b) + hr(2, j, h) + pf * cell[j]));
            const double cand = act(1, clip(xw(3, j, t, b) + hr(3, j, h)));
            next_c[j] = f * cell[j] + i * cand;
            const double o = act(0, clip(xw(1, j, t, b) + hr(1, j, h) + po * next_c[j]));
            next[j] = o * act(2, next_c[j]);
          }
          cell = next_c;
        }
        h = next;
        for (int64_t j = 0; j < H; ++j) out.y[((t * D + d) * B + b) * H + j] = float(h[j]);
      }
      for (int64_t j = 0; j < H; ++j) {
        out.yh[(d * B + b) * H + j] = float(h[j]);
        out.yc[(d * B + b) * H + j] = float(cell[j]);
      }
    }
  }
  if (c.layout == 1) {
    // [seq, dirs, batch, hidden] -> [batch, seq, dirs, hidden]; [dirs, batch, hidden] ->
    // [batch, dirs, hidden].
    Floats y(out.y.size()), yh(out.yh.size()), yc(out.yc.size());
    for (int64_t t = 0; t < T; ++t) {
      for (int64_t d = 0; d < D; ++d) {
        for (int64_t b = 0; b < B; ++b) {
          for (int64_t j = 0; j < H; ++j) {
            y[((b * T + t) * D + d) * H + j] = out.y[((t * D + d) * B + b) * H + j];
          }
        }
      }
    }
    for (int64_t d = 0; d < D; ++d) {
      for (int64_t b = 0; b < B; ++b) {
        for (int64_t j = 0; j < H; ++j) {
          yh[(b * D + d) * H + j] = out.yh[(d * B + b) * H + j];
          yc[(b * D + d) * H + j] = out.yc[(d * B + b) * H + j];
        }
      }
    }
    out = {y, yh, yc};
  }
  return out;
}

void ExpectClose(const Tensor& got, const Ints& shape, const Floats& want,
                 const std::string& what) {
  EXPECT_EQ(got.shape, shape) << what;
  ASSERT_EQ(got.f.size(), want.size()) << what;
  for (size_t k = 0; k < want.size(); ++k) {
    ASSERT_NEAR(got.f[k], want[k], 2e-5) << what << " element " << k;
  }
}

// Runs the case on random data and compares Y, Y_h (and Y_c) with the reference.
void Check(const Case& c, uint32_t seed = 7) {
  SCOPED_TRACE(c.Name());
  const Data data = Draw(c, seed);
  auto out = RunCase(c, data);
  ASSERT_TRUE(out.ok()) << out.status().message();
  const Outputs want = Reference(c, data);
  const int64_t D = c.dirs();
  const Ints y_shape =
      c.layout == 0 ? Ints{c.seq, D, c.batch, c.hidden} : Ints{c.batch, c.seq, D, c.hidden};
  const Ints s_shape = c.layout == 0 ? Ints{D, c.batch, c.hidden} : Ints{c.batch, D, c.hidden};
  ExpectClose(out->at("Y"), y_shape, want.y, "Y");
  ExpectClose(out->at("Y_h"), s_shape, want.yh, "Y_h");
  if (c.op == "LSTM") ExpectClose(out->at("Y_c"), s_shape, want.yc, "Y_c");
}

// ---- Against the reference ---------------------------------------------------------------------

// Every direction and layout, each of bias, initial state and sequence_lens on and off.
void CheckAllForms(Case c) {
  for (const char* direction : {"forward", "reverse", "bidirectional"}) {
    for (int64_t layout : {0, 1}) {
      for (int mask = 0; mask < 8; ++mask) {
        c.direction = direction;
        c.layout = layout;
        c.bias = mask & 1;
        c.initial = mask & 2;
        c.lengths = mask & 4;
        Check(c, static_cast<uint32_t>(mask + 10 * layout));
      }
    }
  }
}

TEST(Rnn, MatchesTheReferenceInEveryForm) {
  Case c;
  c.op = "RNN";
  CheckAllForms(c);
}

TEST(Gru, MatchesTheReferenceInEveryFormWithAndWithoutLinearBeforeReset) {
  Case c;
  c.op = "GRU";
  CheckAllForms(c);
  c.linear_before_reset = true;
  CheckAllForms(c);
}

TEST(Lstm, MatchesTheReferenceInEveryForm) {
  Case c;
  c.op = "LSTM";
  CheckAllForms(c);
}

TEST(Lstm, PeepholesInputForgetAndClip) {
  Case c;
  c.op = "LSTM";
  c.bias = c.initial = c.lengths = true;
  for (const char* direction : {"forward", "bidirectional"}) {
    c.direction = direction;
    c.peepholes = true;
    Check(c);
    c.input_forget = true;
    Check(c);
    c.clip = 0.3f;  // small enough to bind: pre-activations here reach several units
    Check(c);
    c.peepholes = c.input_forget = false;
    c.clip = 0.0f;
  }
}

TEST(Recurrent, ClipBindsForRnnAndGru) {
  for (const char* op : {"RNN", "GRU"}) {
    Case c;
    c.op = op;
    c.bias = c.initial = true;
    c.clip = 0.25f;
    c.direction = "bidirectional";
    Check(c);
  }
}

TEST(Recurrent, NonDefaultActivationsWithAlphaAndBeta) {
  Case rnn;
  rnn.op = "RNN";
  rnn.bias = true;
  rnn.activations = {"Relu"};
  Check(rnn);
  // Per direction: LeakyRelu takes alpha 0.2; ScaledTanh takes alpha 0.5 and beta 2 (the
  // first beta); HardSigmoid takes alpha 0.3, beta 0.4.
  rnn.direction = "bidirectional";
  rnn.activations = {"LeakyRelu", "ScaledTanh"};
  rnn.alphas = {0.2f, 0.5f};
  rnn.betas = {2.0f};
  Check(rnn);
  Case gru;
  gru.op = "GRU";
  gru.bias = gru.initial = true;
  gru.activations = {"HardSigmoid", "Softsign"};
  gru.alphas = {0.3f};
  gru.betas = {0.4f};
  Check(gru);
  Case lstm;
  lstm.op = "LSTM";
  lstm.initial = true;
  lstm.direction = "bidirectional";
  lstm.activations = {"Sigmoid", "Relu", "Tanh", "HardSigmoid", "Tanh", "Affine"};
  lstm.alphas = {0.25f, 0.7f};
  lstm.betas = {0.5f, 0.1f};
  Check(lstm);
  // One direction's list serves both directions.
  lstm.activations = {"Sigmoid", "Tanh", "Relu"};
  lstm.alphas = lstm.betas = {};
  Check(lstm);
}

TEST(Recurrent, LargerShapesAndOneStep) {
  Case c;
  c.seq = 9;
  c.batch = 7;
  c.input = 13;
  c.hidden = 11;
  c.bias = c.initial = c.lengths = true;
  for (const char* op : {"RNN", "GRU", "LSTM"}) {
    c.op = op;
    c.direction = "bidirectional";
    Check(c, 3);
  }
  c.seq = 1;
  c.batch = 1;
  c.direction = "reverse";
  Check(c, 4);
}

// ---- By hand -----------------------------------------------------------------------------------

TEST(Rnn, OneUnitByHand) {
  // H_1 = tanh(0.5·1 + 0.25·0 + 0.1 + 0.2) = tanh(0.8); H_2 = tanh(0.5·2 + 0.25·tanh(0.8) + 0.3).
  Case c;
  c.op = "RNN";
  c.seq = 2;
  c.batch = c.input = c.hidden = 1;
  c.bias = true;
  Data data;
  data.x = {1, 2};
  data.w = {0.5f};
  data.r = {0.25f};
  data.b = {0.1f, 0.2f};
  auto out = RunCase(c, data);
  ASSERT_TRUE(out.ok()) << out.status().message();
  const float h1 = std::tanh(0.8f), h2 = std::tanh(1.0f + 0.25f * h1 + 0.3f);
  ExpectClose(out->at("Y"), {2, 1, 1, 1}, {h1, h2}, "Y");
  ExpectClose(out->at("Y_h"), {1, 1, 1}, {h2}, "Y_h");
}

TEST(Gru, OneUnitByHand) {
  // Zero weights but the biases: z = σ(Wbz + Rbz) = σ(0) = 0.5, r = σ(0), h = tanh(Wbh + Rbh)
  // = tanh(1). From H_0 = 2: H_1 = 0.5·tanh(1) + 0.5·2.
  Case c;
  c.op = "GRU";
  c.seq = c.batch = c.input = c.hidden = 1;
  c.bias = c.initial = true;
  Data data;
  data.x = {3};
  data.w = {0, 0, 0};
  data.r = {0, 0, 0};
  data.b = {1, -1, 0.5f, -1, 1, 0.5f};
  data.h0 = {2};
  auto out = RunCase(c, data);
  ASSERT_TRUE(out.ok()) << out.status().message();
  ExpectClose(out->at("Y_h"), {1, 1, 1}, {0.5f * std::tanh(1.0f) + 1.0f}, "Y_h");
}

TEST(Lstm, OneUnitByHand) {
  // Weights zero, biases b: i = σ(bi), o = σ(bo), f = σ(bf), c = tanh(bc). With C_0 = 1:
  // C_1 = f·1 + i·c, H_1 = o·tanh(C_1). Gate order i, o, f, c: Wb = [1, 2, 3, 0.5], Rb = 0.
  Case c;
  c.op = "LSTM";
  c.seq = c.batch = c.input = c.hidden = 1;
  c.bias = c.initial = true;
  Data data;
  data.x = {3};
  data.w = {0, 0, 0, 0};
  data.r = {0, 0, 0, 0};
  data.b = {1, 2, 3, 0.5f, 0, 0, 0, 0};
  data.h0 = {0};
  data.c0 = {1};
  auto out = RunCase(c, data);
  ASSERT_TRUE(out.ok()) << out.status().message();
  auto sig = [](float v) { return 1.0f / (1.0f + std::exp(-v)); };
  const float c1 = sig(3) + sig(1) * std::tanh(0.5f);
  ExpectClose(out->at("Y_c"), {1, 1, 1}, {c1}, "Y_c");
  ExpectClose(out->at("Y_h"), {1, 1, 1}, {sig(2) * std::tanh(c1)}, "Y_h");
}

TEST(Recurrent, ZeroLengthSequenceKeepsTheInitialStateAndOutputsZeros) {
  Case c;
  c.op = "GRU";
  c.batch = 2;
  c.initial = c.lengths = true;
  c.direction = "bidirectional";
  Data data = Draw(c, 5);
  data.lens = {0, 3};
  auto out = RunCase(c, data);
  ASSERT_TRUE(out.ok()) << out.status().message();
  const Tensor& y = out->at("Y");  // [seq, 2, batch 2, hidden]
  for (int64_t t = 0; t < c.seq; ++t) {
    for (int64_t d = 0; d < 2; ++d) {
      for (int64_t j = 0; j < c.hidden; ++j) {
        EXPECT_EQ(y.f[((t * 2 + d) * 2 + 0) * c.hidden + j], 0.0f);
        if (t >= 3) {
          EXPECT_EQ(y.f[((t * 2 + d) * 2 + 1) * c.hidden + j], 0.0f);
        }
      }
    }
  }
  const Tensor& yh = out->at("Y_h");
  for (int64_t d = 0; d < 2; ++d) {
    for (int64_t j = 0; j < c.hidden; ++j) {
      EXPECT_EQ(yh.f[(d * 2 + 0) * c.hidden + j], data.h0[(d * 2 + 0) * c.hidden + j]);
    }
  }
  const Outputs want = Reference(c, data);
  ExpectClose(out->at("Y"), {c.seq, 2, 2, c.hidden}, want.y, "Y");
}

// ---- Errors ------------------------------------------------------------------------------------

std::string ErrorOf(const Case& c, const Data& data) {
  auto out = RunCase(c, data);
  EXPECT_FALSE(out.ok()) << c.Name() << " ran";
  return out.ok() ? "" : out.status().message();
}

TEST(Recurrent, ErrorsNameWhatIsWrong) {
  Case c;
  c.op = "LSTM";
  c.bias = c.lengths = true;
  const Data good = Draw(c, 1);

  // A W declared with one row fewer.
  {
    auto m = BuildModel(c, good);
    auto* t = m.mutable_graph()->mutable_initializer(0);
    t->set_dims(1, 4 * c.hidden - 1);
    t->mutable_float_data()->Truncate(static_cast<int>((4 * c.hidden - 1) * c.input));
    auto e = Executor::Create(m);
    ASSERT_TRUE(e.ok());
    auto out = (*e)->Run({{"X", Tensor::Float({c.seq, c.batch, c.input}, good.x)}});
    ASSERT_FALSE(out.ok());
    EXPECT_CONTAINS(out.status().message(), "node 'rnn' (LSTM)");
    EXPECT_CONTAINS(out.status().message(), "expected W [1, 12, 4]");
  }
  Data lens = good;
  lens.lens[1] = c.seq + 1;
  EXPECT_CONTAINS(ErrorOf(c, lens), "sequence length 6 is outside [0, 5]");

  Case dir = c;
  dir.direction = "sideways";
  EXPECT_CONTAINS(ErrorOf(dir, good), "direction 'sideways'");

  Case act = c;
  act.activations = {"Sigmoid", "Swish", "Tanh"};
  EXPECT_CONTAINS(ErrorOf(act, good), "activation 'Swish' is not one of");

  Case count = c;
  count.activations = {"Sigmoid", "Tanh"};
  EXPECT_CONTAINS(ErrorOf(count, good), "activations lists 2 functions; 3 are needed");

  // A bidirectional op whose W has one direction.
  Case bidir = c;
  bidir.direction = "bidirectional";
  auto m = BuildModel(c, good);
  for (auto& a : *m.mutable_graph()->mutable_node(0)->mutable_attribute()) {
    if (a.name() == "direction") a.set_s("bidirectional");
  }
  auto e = Executor::Create(m);
  ASSERT_TRUE(e.ok());
  auto out = (*e)->Run({{"X", Tensor::Float({c.seq, c.batch, c.input}, good.x)}});
  ASSERT_FALSE(out.ok());
  EXPECT_CONTAINS(out.status().message(), "2 direction(s)");
}

TEST(Recurrent, RefusesOutputsBeyondTwoToThe31Values) {
  // 2^11 steps of a batch of 2^10 + 1 with 1024 units: Y would hold just over 2^31 values,
  // from an X of 8 MiB and an R of 4 MiB.
  Case c;
  c.op = "RNN";
  c.seq = 1 << 11;
  c.batch = (1 << 10) + 1;
  c.input = 1;
  c.hidden = 1024;
  Data data;
  data.x.assign(static_cast<size_t>(c.seq * c.batch), 0.5f);
  data.w.assign(1024, 0.1f);
  data.r.assign(1024 * 1024, 0.0f);
  EXPECT_CONTAINS(ErrorOf(c, data), "would need more than 2^31 values");
}

TEST(Recurrent, HiddenSizeFollowsFromRWhenTheAttributeIsAbsent) {
  Case c;
  c.op = "GRU";
  c.bias = true;
  const Data data = Draw(c, 2);
  auto m = BuildModel(c, data);
  auto* attrs = m.mutable_graph()->mutable_node(0)->mutable_attribute();
  for (int k = 0; k < attrs->size(); ++k) {
    if (attrs->Get(k).name() == "hidden_size") {
      attrs->DeleteSubrange(k, 1);
      break;
    }
  }
  auto e = Executor::Create(m);
  ASSERT_TRUE(e.ok());
  auto out = (*e)->Run({{"X", Tensor::Float({c.seq, c.batch, c.input}, data.x)}});
  ASSERT_TRUE(out.ok()) << out.status().message();
  const Outputs want = Reference(c, data);
  ExpectClose(out->at("Y"), {c.seq, 1, c.batch, c.hidden}, want.y, "Y");
}

}  // namespace
}  // namespace executor_recurrent_test
}  // namespace reinit::exec
