// The recurrent ops RNN, GRU and LSTM, as the ONNX spec defines them (gate blocks: GRU z, r,
// h; LSTM i, o, f, c; peepholes i, o, f). For one direction, with f, g, h the direction's
// activations and every pre-activation clipped to [-clip, clip] when clip is given:
//
//   RNN   H_t = f(X_t·Wi^T + H_{t-1}·Ri^T + Wbi + Rbi)
//   GRU   z_t = f(X_t·Wz^T + H_{t-1}·Rz^T + Wbz + Rbz)
//         r_t = f(X_t·Wr^T + H_{t-1}·Rr^T + Wbr + Rbr)
//         h_t = g(X_t·Wh^T + (r_t ⊙ H_{t-1})·Rh^T + Rbh + Wbh)    linear_before_reset = 0
//         h_t = g(X_t·Wh^T + r_t ⊙ (H_{t-1}·Rh^T + Rbh) + Wbh)    linear_before_reset = 1
//         H_t = (1 - z_t) ⊙ h_t + z_t ⊙ H_{t-1}
//   LSTM  i_t = f(X_t·Wi^T + H_{t-1}·Ri^T + Pi ⊙ C_{t-1} + Wbi + Rbi)
//         f_t = f(X_t·Wf^T + H_{t-1}·Rf^T + Pf ⊙ C_{t-1} + Wbf + Rbf)  (1 - i_t: input_forget)
//         c_t = g(X_t·Wc^T + H_{t-1}·Rc^T + Wbc + Rbc)
//         C_t = f_t ⊙ C_{t-1} + i_t ⊙ c_t
//         o_t = f(X_t·Wo^T + H_{t-1}·Ro^T + Po ⊙ C_t + Wbo + Rbo)
//         H_t = o_t ⊙ h(C_t)
//
// The input projections X_t·W^T of all steps are one matrix product up front; each step is
// then one product with R (two for GRU without linear_before_reset). The directions of a
// bidirectional op run in parallel. With sequence_lens, batch entry b runs steps 0..len_b-1
// (the reverse direction from len_b-1 down), Y is 0 past len_b, and Y_h/Y_c hold the state
// after its last step (the initial state when len_b is 0).
#include <Eigen/Core>
#include <algorithm>
#include <cctype>
#include <cmath>
#include <string>
#include <vector>

#include "parallel.h"
#include "signal/executor/ops.h"

namespace reinit::exec {
namespace {

using RowMatrix = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
using MapConst = Eigen::Map<const RowMatrix>;

// The most values an op's outputs and scratch may hold, as for the shape ops.
constexpr int64_t kMaxValues = int64_t{1} << 31;

enum class Cell { kRnn, kGru, kLstm };

// One of the spec's activation functions, with its alpha and beta.
struct Activation {
  enum Kind {
    kRelu,
    kTanh,
    kSigmoid,
    kAffine,
    kLeakyRelu,
    kThresholdedRelu,
    kScaledTanh,
    kHardSigmoid,
    kElu,
    kSoftsign,
    kSoftplus
  } kind = kTanh;
  float alpha = 0.0f, beta = 0.0f;

  float operator()(float x) const {
    switch (kind) {
      case kRelu:
        return std::max(x, 0.0f);
      case kTanh:
        return std::tanh(x);
      case kSigmoid:
        return 1.0f / (1.0f + std::exp(-x));
      case kAffine:
        return alpha * x + beta;
      case kLeakyRelu:
        return x >= 0.0f ? x : alpha * x;
      case kThresholdedRelu:
        return x >= alpha ? x : 0.0f;
      case kScaledTanh:
        return alpha * std::tanh(beta * x);
      case kHardSigmoid:
        return std::clamp(alpha * x + beta, 0.0f, 1.0f);
      case kElu:
        return x >= 0.0f ? x : alpha * (std::exp(x) - 1.0f);
      case kSoftsign:
        return x / (1.0f + std::fabs(x));
      case kSoftplus:
        return std::log1p(std::exp(x));
    }
    return x;
  }
};

// The activations attribute (per direction, forward first), or the op's defaults. Functions
// that take alpha and beta take the next values of activation_alpha and activation_beta in
// order, or their defaults where those lists run out.
StatusOr<std::vector<Activation>> ReadActivations(const OpContext& ctx, Cell cell,
                                                  int64_t directions) {
  std::vector<std::string> names;
  if (const auto* a = ctx.FindAttr("activations")) {
    names.assign(a->strings().begin(), a->strings().end());
  }
  const size_t per = cell == Cell::kRnn ? 1 : cell == Cell::kGru ? 2 : 3;
  if (names.empty()) {
    const std::vector<std::string> defaults =
        cell == Cell::kRnn   ? std::vector<std::string>{"Tanh"}
        : cell == Cell::kGru ? std::vector<std::string>{"Sigmoid", "Tanh"}
                             : std::vector<std::string>{"Sigmoid", "Tanh", "Tanh"};
    for (int64_t d = 0; d < directions; ++d)
      names.insert(names.end(), defaults.begin(), defaults.end());
  } else if (names.size() == per && directions == 2) {
    const std::vector<std::string> one = names;  // the same for both directions
    names.insert(names.end(), one.begin(), one.end());
  }
  if (names.size() != per * static_cast<size_t>(directions)) {
    return ctx.Error("activations lists " + std::to_string(names.size()) + " functions; " +
                     std::to_string(per * static_cast<size_t>(directions)) + " are needed");
  }
  const std::vector<float> alphas = ctx.Attr("activation_alpha", std::vector<float>{});
  const std::vector<float> betas = ctx.Attr("activation_beta", std::vector<float>{});
  size_t next_alpha = 0, next_beta = 0;
  std::vector<Activation> out;
  for (const std::string& name : names) {
    std::string lower = name;
    for (char& ch : lower) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
    struct Known {
      const char* name;
      Activation::Kind kind;
      int params;  // 0, 1 (alpha) or 2 (alpha, beta)
      float alpha, beta;
    };
    static const Known kKnown[] = {
        {"relu", Activation::kRelu, 0, 0, 0},
        {"tanh", Activation::kTanh, 0, 0, 0},
        {"sigmoid", Activation::kSigmoid, 0, 0, 0},
        {"affine", Activation::kAffine, 2, 1.0f, 0.0f},
        {"leakyrelu", Activation::kLeakyRelu, 1, 0.01f, 0},
        {"thresholdedrelu", Activation::kThresholdedRelu, 1, 1.0f, 0},
        {"scaledtanh", Activation::kScaledTanh, 2, 1.0f, 1.0f},
        {"hardsigmoid", Activation::kHardSigmoid, 2, 0.2f, 0.5f},
        {"elu", Activation::kElu, 1, 1.0f, 0},
        {"softsign", Activation::kSoftsign, 0, 0, 0},
        {"softplus", Activation::kSoftplus, 0, 0, 0},
    };
    const Known* k = nullptr;
    for (const Known& known : kKnown) {
      if (lower == known.name) k = &known;
    }
    if (!k) {
      return ctx.Error("activation '" + name +
                       "' is not one of Relu, Tanh, Sigmoid, Affine, LeakyRelu, ThresholdedRelu, "
                       "ScaledTanh, HardSigmoid, Elu, Softsign, Softplus");
    }
    Activation act;
    act.kind = k->kind;
    act.alpha = k->alpha;
    act.beta = k->beta;
    if (k->params >= 1 && next_alpha < alphas.size()) act.alpha = alphas[next_alpha++];
    if (k->params >= 2 && next_beta < betas.size()) act.beta = betas[next_beta++];
    out.push_back(act);
  }
  return out;
}

// Everything one direction needs; pointers into the op's inputs and outputs.
struct Problem {
  Cell cell = Cell::kRnn;
  int64_t seq = 0, batch = 0, input = 0, hidden = 0, gates = 1;
  const float* x = nullptr;      // [seq, batch, input]
  std::vector<int64_t> lengths;  // [batch]
  bool clip = false;
  float clip_value = 0.0f;
  bool linear_before_reset = false;  // GRU
  bool input_forget = false;         // LSTM
};

struct Direction {
  bool reverse = false;
  const float* w = nullptr;         // [gates·hidden, input]
  const float* r = nullptr;         // [gates·hidden, hidden]
  const float* wb = nullptr;        // [gates·hidden] or null
  const float* rb = nullptr;        // [gates·hidden] or null
  const float* p = nullptr;         // [3·hidden] or null (LSTM)
  const float* h0 = nullptr;        // [batch, hidden] or null
  const float* c0 = nullptr;        // [batch, hidden] or null (LSTM)
  const Activation* act = nullptr;  // 1, 2 or 3 functions
  float* y = nullptr;   // Y[:, d] : element (t, b, j) at y[(t·dirs·batch + b)·hidden + j]
  int64_t y_step = 0;   // dirs·batch·hidden
  float* yh = nullptr;  // [batch, hidden]
  float* yc = nullptr;  // [batch, hidden]
};

void RunDirection(const Problem& pb, const Direction& dir) {
  const int64_t batch = pb.batch, hidden = pb.hidden, gh = pb.gates * hidden;
  auto clip = [&](float v) { return pb.clip ? std::clamp(v, -pb.clip_value, pb.clip_value) : v; };
  const MapConst w(dir.w, gh, pb.input), r(dir.r, gh, hidden);
  // X_t·W^T + biases for every step at once; the GRU's Rbh stays out under
  // linear_before_reset, where r_t multiplies it.
  RowMatrix xw = MapConst(pb.x, pb.seq * batch, pb.input) * w.transpose();
  std::vector<float> bias(static_cast<size_t>(gh), 0.0f), rbh(static_cast<size_t>(hidden), 0.0f);
  if (dir.wb) {
    for (int64_t k = 0; k < gh; ++k) bias[k] = dir.wb[k] + dir.rb[k];
    if (pb.cell == Cell::kGru && pb.linear_before_reset) {
      for (int64_t j = 0; j < hidden; ++j) {
        rbh[j] = dir.rb[2 * hidden + j];
        bias[2 * hidden + j] = dir.wb[2 * hidden + j];
      }
    }
    xw.rowwise() += Eigen::Map<const Eigen::RowVectorXf>(bias.data(), gh);
  }
  RowMatrix h = RowMatrix::Zero(batch, hidden), c = RowMatrix::Zero(batch, hidden);
  if (dir.h0) h = MapConst(dir.h0, batch, hidden);
  if (dir.c0) c = MapConst(dir.c0, batch, hidden);
  RowMatrix hr(batch, gh), rh(batch, hidden), hh(batch, hidden);
  std::vector<float> gate(static_cast<size_t>(gh));
  const int64_t steps = *std::max_element(pb.lengths.begin(), pb.lengths.end());
  for (int64_t s = 0; s < steps; ++s) {
    // The time step each batch entry is at; -1 for those whose sequence has ended.
    auto time = [&](int64_t b) {
      if (s >= pb.lengths[b]) return int64_t{-1};
      return dir.reverse ? pb.lengths[b] - 1 - s : s;
    };
    switch (pb.cell) {
      case Cell::kRnn:
      case Cell::kLstm: {
        hr.noalias() = h * r.transpose();
        for (int64_t b = 0; b < batch; ++b) {
          const int64_t t = time(b);
          if (t < 0) continue;
          const float* x = xw.data() + (t * batch + b) * gh;
          float* hb = h.data() + b * hidden;
          for (int64_t k = 0; k < gh; ++k) gate[k] = x[k] + hr(b, k);
          if (pb.cell == Cell::kRnn) {
            for (int64_t j = 0; j < hidden; ++j) hb[j] = dir.act[0](clip(gate[j]));
            continue;
          }
          float* cb = c.data() + b * hidden;
          const float* gi = gate.data();
          const float* go = gi + hidden;
          const float* gf = go + hidden;
          const float* gc = gf + hidden;
          for (int64_t j = 0; j < hidden; ++j) {
            const float pi = dir.p ? dir.p[j] : 0.0f;
            const float po = dir.p ? dir.p[hidden + j] : 0.0f;
            const float pf = dir.p ? dir.p[2 * hidden + j] : 0.0f;
            const float i = dir.act[0](clip(gi[j] + pi * cb[j]));
            const float f = pb.input_forget ? 1.0f - i : dir.act[0](clip(gf[j] + pf * cb[j]));
            const float cand = dir.act[1](clip(gc[j]));
            cb[j] = f * cb[j] + i * cand;
            const float o = dir.act[0](clip(go[j] + po * cb[j]));
            hb[j] = o * dir.act[2](cb[j]);
          }
        }
        break;
      }
      case Cell::kGru: {
        // z and r from H_{t-1}·[Rz; Rr]^T; then the h gate.
        hr.leftCols(2 * hidden).noalias() = h * r.topRows(2 * hidden).transpose();
        const auto rh_t = r.bottomRows(hidden).transpose();
        for (int64_t b = 0; b < batch; ++b) {
          const int64_t t = time(b) < 0 ? 0 : time(b);
          const float* x = xw.data() + (t * batch + b) * gh;
          for (int64_t k = 0; k < 2 * hidden; ++k) {
            hr(b, k) = dir.act[0](clip(x[k] + hr(b, k)));  // z, then r
          }
        }
        if (pb.linear_before_reset) {
          hh.noalias() = h * rh_t;
        } else {
          rh = h.cwiseProduct(hr.middleCols(hidden, hidden));
          hh.noalias() = rh * rh_t;
        }
        for (int64_t b = 0; b < batch; ++b) {
          const int64_t t = time(b);
          if (t < 0) continue;
          const float* x = xw.data() + (t * batch + b) * gh + 2 * hidden;
          float* hb = h.data() + b * hidden;
          for (int64_t j = 0; j < hidden; ++j) {
            const float z = hr(b, j), rj = hr(b, hidden + j);
            const float pre =
                pb.linear_before_reset ? x[j] + rj * (hh(b, j) + rbh[j]) : x[j] + hh(b, j);
            const float cand = dir.act[1](clip(pre));
            hb[j] = (1.0f - z) * cand + z * hb[j];
          }
        }
        break;
      }
    }
    for (int64_t b = 0; b < batch; ++b) {
      const int64_t t = time(b);
      if (t < 0 || !dir.y) continue;
      std::copy(h.data() + b * hidden, h.data() + (b + 1) * hidden,
                dir.y + t * dir.y_step + b * hidden);
    }
  }
  if (dir.yh) std::copy(h.data(), h.data() + batch * hidden, dir.yh);
  if (dir.yc) std::copy(c.data(), c.data() + batch * hidden, dir.yc);
}

// [a, b, rest] -> [b, a, rest], for the layout = 1 inputs and outputs.
std::vector<float> SwapLeadingAxes(const std::vector<float>& v, int64_t a, int64_t b,
                                   int64_t rest) {
  std::vector<float> out(v.size());
  for (int64_t i = 0; i < a; ++i) {
    for (int64_t j = 0; j < b; ++j) {
      std::copy(v.begin() + (i * b + j) * rest, v.begin() + (i * b + j + 1) * rest,
                out.begin() + (j * a + i) * rest);
    }
  }
  return out;
}

// A present float input of exactly `shape`, or null when absent; an error otherwise.
StatusOr<const float*> Optional(const OpContext& ctx, int k, const char* name,
                                const std::vector<int64_t>& shape) {
  if (!ctx.has_input(k)) return static_cast<const float*>(nullptr);
  auto t = ctx.Input(k, DType::kFloat);
  if (!t.ok()) return t.status();
  if ((*t)->shape != shape || static_cast<int64_t>((*t)->f.size()) != ShapeSize(shape)) {
    return ctx.Error(std::string(name) + " is " + ShapeString((*t)->shape) + ", expected " +
                     ShapeString(shape));
  }
  return (*t)->f.data();
}

Status Recurrent(OpContext& ctx, Cell cell) {
  Problem pb;
  pb.cell = cell;
  pb.gates = cell == Cell::kRnn ? 1 : cell == Cell::kGru ? 3 : 4;
  const std::string direction = ctx.Attr("direction", std::string("forward"));
  if (direction != "forward" && direction != "reverse" && direction != "bidirectional") {
    return ctx.Error("direction '" + direction + "' is not one of forward, reverse, bidirectional");
  }
  const int64_t dirs = direction == "bidirectional" ? 2 : 1;
  const int64_t layout = ctx.Attr("layout", int64_t{0});
  if (layout != 0 && layout != 1)
    return ctx.Error("layout " + std::to_string(layout) + " is not 0 or 1");

  auto x_or = ctx.Input(0, DType::kFloat);
  if (!x_or.ok()) return x_or.status();
  auto w_or = ctx.Input(1, DType::kFloat);
  if (!w_or.ok()) return w_or.status();
  auto r_or = ctx.Input(2, DType::kFloat);
  if (!r_or.ok()) return r_or.status();
  const Tensor &x = **x_or, &w = **w_or, &r = **r_or;
  if (x.rank() != 3 || static_cast<int64_t>(x.f.size()) != x.size()) {
    return ctx.Error("X is " + ShapeString(x.shape) + ", not 3-D");
  }
  pb.seq = x.shape[layout == 0 ? 0 : 1];
  pb.batch = x.shape[layout == 0 ? 1 : 0];
  pb.input = x.shape[2];
  if (r.rank() != 3) return ctx.Error("R is " + ShapeString(r.shape) + ", not 3-D");
  pb.hidden = ctx.Attr("hidden_size", r.shape[2]);
  const int64_t gh = pb.gates * pb.hidden;
  const std::vector<int64_t> w_shape{dirs, gh, pb.input}, r_shape{dirs, gh, pb.hidden};
  if (pb.hidden <= 0 || w.shape != w_shape || r.shape != r_shape ||
      static_cast<int64_t>(w.f.size()) != w.size() ||
      static_cast<int64_t>(r.f.size()) != r.size()) {
    return ctx.Error("W " + ShapeString(w.shape) + " and R " + ShapeString(r.shape) +
                     " do not match X " + ShapeString(x.shape) + ", hidden_size " +
                     std::to_string(pb.hidden) + " and " + std::to_string(dirs) +
                     " direction(s): expected W " + ShapeString(w_shape) + " and R " +
                     ShapeString(r_shape));
  }
  // Y and the input projections hold up to seq·batch·dirs·gates·hidden values: a short X and a
  // wide R must not make them unallocatable.
  int64_t values = 1;
  for (int64_t f : {pb.seq, pb.batch, dirs, pb.gates, pb.hidden}) {
    if (__builtin_mul_overflow(values, f, &values) || values > kMaxValues) {
      return ctx.Error("X " + ShapeString(x.shape) + " with hidden_size " +
                       std::to_string(pb.hidden) + " would need more than 2^31 values");
    }
  }
  auto b_or = Optional(ctx, 3, "B", {dirs, 2 * gh});
  if (!b_or.ok()) return b_or.status();
  pb.lengths.assign(static_cast<size_t>(pb.batch), pb.seq);
  if (ctx.has_input(4)) {
    auto lens = ctx.Ints(4);
    if (!lens.ok()) return lens.status();
    if (static_cast<int64_t>(lens->size()) != pb.batch) {
      return ctx.Error("sequence_lens has " + std::to_string(lens->size()) +
                       " entries for a batch of " + std::to_string(pb.batch));
    }
    for (int64_t len : *lens) {
      if (len < 0 || len > pb.seq) {
        return ctx.Error("sequence length " + std::to_string(len) + " is outside [0, " +
                         std::to_string(pb.seq) + "]");
      }
    }
    pb.lengths = *lens;
  }
  const std::vector<int64_t> state_shape = layout == 0
                                               ? std::vector<int64_t>{dirs, pb.batch, pb.hidden}
                                               : std::vector<int64_t>{pb.batch, dirs, pb.hidden};
  auto h0_or = Optional(ctx, 5, "initial_h", state_shape);
  if (!h0_or.ok()) return h0_or.status();
  const float* c0 = nullptr;
  const float* p = nullptr;
  if (cell == Cell::kLstm) {
    auto c0_or = Optional(ctx, 6, "initial_c", state_shape);
    if (!c0_or.ok()) return c0_or.status();
    c0 = *c0_or;
    auto p_or = Optional(ctx, 7, "P", {dirs, 3 * pb.hidden});
    if (!p_or.ok()) return p_or.status();
    p = *p_or;
  }
  if (const auto* a = ctx.FindAttr("clip")) {
    pb.clip = true;
    pb.clip_value = a->f();
    if (!(pb.clip_value > 0.0f))
      return ctx.Error("clip " + std::to_string(pb.clip_value) + " is not positive");
  }
  pb.linear_before_reset = cell == Cell::kGru && ctx.Attr("linear_before_reset", int64_t{0}) != 0;
  pb.input_forget = cell == Cell::kLstm && ctx.Attr("input_forget", int64_t{0}) != 0;
  auto acts = ReadActivations(ctx, cell, dirs);
  if (!acts.ok()) return acts.status();
  const size_t per = cell == Cell::kRnn ? 1 : cell == Cell::kGru ? 2 : 3;

  // Computed in layout 0: X [seq, batch, input], states [dirs, batch, hidden].
  std::vector<float> x0, h0, c0v;
  pb.x = x.f.data();
  const float* h0p = *h0_or;
  if (layout == 1) {
    x0 = SwapLeadingAxes(x.f, pb.batch, pb.seq, pb.input);
    pb.x = x0.data();
    if (h0p) {
      h0 = SwapLeadingAxes(ctx.input(5).f, pb.batch, dirs, pb.hidden);
      h0p = h0.data();
    }
    if (c0) {
      c0v = SwapLeadingAxes(ctx.input(6).f, pb.batch, dirs, pb.hidden);
      c0 = c0v.data();
    }
  }
  const int64_t bh = pb.batch * pb.hidden;
  Tensor y = Tensor::Float({pb.seq, dirs, pb.batch, pb.hidden});
  Tensor yh = Tensor::Float({dirs, pb.batch, pb.hidden});
  Tensor yc = Tensor::Float({dirs, pb.batch, pb.hidden});
  std::vector<Direction> ds(static_cast<size_t>(dirs));
  for (int64_t d = 0; d < dirs; ++d) {
    Direction& dir = ds[d];
    dir.reverse = direction == "reverse" || d == 1;
    dir.w = w.f.data() + d * gh * pb.input;
    dir.r = r.f.data() + d * gh * pb.hidden;
    if (*b_or) {
      dir.wb = *b_or + d * 2 * gh;
      dir.rb = dir.wb + gh;
    }
    if (p) dir.p = p + d * 3 * pb.hidden;
    if (h0p) dir.h0 = h0p + d * bh;
    if (c0) dir.c0 = c0 + d * bh;
    dir.act = acts->data() + d * per;
    dir.y = y.f.data() + d * bh;
    dir.y_step = dirs * bh;
    dir.yh = yh.f.data() + d * bh;
    dir.yc = cell == Cell::kLstm ? yc.f.data() + d * bh : nullptr;
  }
  if (pb.batch > 0 && pb.seq > 0) {
    ParallelFor(static_cast<size_t>(dirs), [&](size_t d) { RunDirection(pb, ds[d]); });
  } else {
    // No steps: Y is empty and the final states are the initial ones.
    for (int64_t d = 0; d < dirs; ++d) {
      if (ds[d].h0) std::copy(ds[d].h0, ds[d].h0 + bh, ds[d].yh);
      if (ds[d].c0 && ds[d].yc) std::copy(ds[d].c0, ds[d].c0 + bh, ds[d].yc);
    }
  }
  if (layout == 1) {
    // Y [seq·dirs, batch, hidden] -> [batch, seq·dirs, hidden]; Y_h, Y_c [dirs, batch, hidden]
    // -> [batch, dirs, hidden].
    y.f = SwapLeadingAxes(y.f, pb.seq * dirs, pb.batch, pb.hidden);
    y.shape = {pb.batch, pb.seq, dirs, pb.hidden};
    yh.f = SwapLeadingAxes(yh.f, dirs, pb.batch, pb.hidden);
    yc.f = SwapLeadingAxes(yc.f, dirs, pb.batch, pb.hidden);
    yh.shape = yc.shape = {pb.batch, dirs, pb.hidden};
  }
  ctx.output(0) = std::move(y);
  if (ctx.output_count() > 1) ctx.output(1) = std::move(yh);
  if (ctx.output_count() > 2 && cell == Cell::kLstm) ctx.output(2) = std::move(yc);
  return Status::Ok();
}

Status Rnn(OpContext& ctx) { return Recurrent(ctx, Cell::kRnn); }
Status Gru(OpContext& ctx) { return Recurrent(ctx, Cell::kGru); }
Status Lstm(OpContext& ctx) { return Recurrent(ctx, Cell::kLstm); }

}  // namespace

void RegisterRecurrentOps(OpTable* table) {
  (*table)["RNN"] = Rnn;
  (*table)["GRU"] = Gru;
  (*table)["LSTM"] = Lstm;
}

}  // namespace reinit::exec
