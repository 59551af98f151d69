// The scheme registry: every initialization scheme the tool knows, by name, with its formula.
//
// Most schemes are one variance-scaling rule (Keras' VarianceScaling): variance = scale / n
// with n = fan_in, fan_out or (fan_in + fan_out)/2, drawn from a normal, a uniform
// (bound = √(3·variance)) or a normal truncated at ±2σ and rescaled so the variance is
// exact (σ = √variance / 0.87962566103423978, the std of N(0,1) cut at ±2). Orthogonal, zero
// and the naive draws are their own kinds; "auto" picks one of the others per layer
// (plan/auto_policy.h). The registry is one list built in registry.cc; SchemeNames() feeds
// `reinit schemes` and the unknown-scheme message.
//
// The named policies and recipes (auto, the framework defaults, lsuv, fixup, gpt2, bert, ...)
// are rows of the same list: each row says how the scheme picks a layer's draw, which residual
// rule it brings, its default --std and whether it needs data. The planner, the residual rules,
// LSUV and the option defaults read these fields, never the names: a new recipe is one row.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "graph/layers.h"
#include "status.h"

namespace reinit {

// kPolicy: a per-layer choice among the others (auto, the framework defaults).
enum class SchemeKind { kZero, kConstant, kNaive, kVarianceScaling, kOrthogonal, kPolicy };
enum class Distribution { kNone, kConstant, kNormal, kUniform, kTruncatedNormal, kOrthogonal };
enum class FanMode { kFanIn, kFanOut, kFanAvg };

// The frameworks whose construction-time draws the *-default schemes reproduce
// (plan/framework_defaults.h).
enum class Framework { kTorch, kKeras, kFlax };

// How a scheme picks each layer's draw.
enum class LayerChoice {
  kSelf,       // every layer drawn by the scheme itself (the plain schemes)
  kAuto,       // auto's table (plan/auto_policy.h)
  kFramework,  // what `framework`'s layers hold when constructed
  kRecipe,     // the row's RecipeDraw for the layers it names, auto's choice for the others
};

// A recipe's per-layer draw: what its dense and conv layers (and embedding tables when
// `embeddings`) get, with `reason` as the layer's reason. Other layers (norms, recurrent
// layers, embeddings otherwise) get auto's choice, its reason after `leaves_to_auto`
// ("" for "<name> leaves this layer to auto: ").
struct RecipeDraw {
  std::string_view scheme = {};  // a plain scheme of the registry
  std::string_view reason = {};
  bool embeddings = false;
  bool unit_gain = false;  // drawn with gain 1 instead of the activation's
  bool lsuv = false;       // then scaled to unit output variance on a batch (signal/lsuv.h)
  std::string_view leaves_to_auto = {};
};

struct Scheme {
  std::string_view name = {};
  std::string_view formula = {};  // shown by `reinit schemes`
  std::string_view paper = {};    // the paper the scheme comes from ("" for none)
  SchemeKind kind = SchemeKind::kPolicy;
  Distribution distribution = Distribution::kNone;
  FanMode mode = FanMode::kFanIn;  // variance scaling: which fan n is; he-* follow --mode instead
  bool follows_mode = false;       // true for he-*: --mode fan_in|fan_out picks n
  bool uses_gain = false;  // false for lecun-* (variance exactly 1/fan_in) and the naive draws
  LayerChoice choice = LayerChoice::kSelf;
  RecipeDraw draw = {};                               // kRecipe
  std::optional<Framework> framework = std::nullopt;  // kFramework
  // The residual rule a stream gets when --residual is not given (plan/residual.h):
  // none, fixup, scaled, deepnet, or auto (by the stream's normalization).
  std::string_view residual = "none";
  // Not "": the scheme takes no --residual rule but none, and this says why.
  std::string_view refuses_residual = {};
  // Whether the per-layer draws keep a unit-variance input at unit variance (false for the
  // fixed-scale draws); the residual scaled rule's s0 needs it.
  bool keeps_variance = true;
  double default_std = 0.01;  // --std when not given (naive and recipe normal draws)
  // > 0: the scheme finishes its draws on data (LSUV's scaling), by default on a batch of this
  // many random inputs; 0: it needs none.
  int64_t batch = 0;
};

// The enum values by name, as the Python module's schemes() gives them: "variance_scaling",
// "truncated_normal", "fan_avg", ...
std::string_view SchemeKindName(SchemeKind kind);
std::string_view DistributionName(Distribution distribution);
std::string_view FanModeName(FanMode mode);

const std::vector<Scheme>& Schemes();
std::vector<std::string> SchemeNames();
// The scheme of that name; an error listing the valid names otherwise.
StatusOr<const Scheme*> FindScheme(std::string_view name);
// The scheme of that name, or nullptr.
const Scheme* SchemeNamed(std::string_view name);

// The row's fields by name, with what an unknown name gets: --std's default (0.01); whether
// the scheme needs data (LSUV); whether it picks per layer (auto, lsuv, the recipes: not the
// framework defaults).
double DefaultStd(std::string_view scheme);
bool NeedsData(std::string_view scheme);
bool ChoosesPerLayer(std::string_view scheme);

// The draw that an auto or recipe scheme gives a layer of this activation, kind and depth
// (plan/auto_policy.h for auto's table); nullopt for the other schemes.
struct LayerDraw {
  std::string scheme;
  std::string reason;
  bool unit_gain = false;
  bool lsuv = false;
};
std::optional<LayerDraw> ChooseForLayer(std::string_view scheme, std::string_view activation,
                                        LayerKind kind, int depth);

// √variance of N(0,1) truncated to ±2: the factor a truncated draw's σ is divided by.
inline constexpr double kTruncatedStdAt2 = 0.87962566103423978;

struct SchemeInputs {
  double fan_in = 0;
  double fan_out = 0;
  double gain = 1;
  FanMode he_mode = FanMode::kFanIn;
  double naive_std = 0.01;    // `normal`
  double naive_range = 0.05;  // `uniform`
};

// The parameters a scheme draws with: for normal and truncated normal, std (of the final
// values before truncation; the cut is 2·std) and bound = 2·std for truncated; for uniform,
// bound; for orthogonal, the gain only. Errors for a non-positive fan.
struct DrawParameters {
  double gain = 1;  // the activation's gain, passed through; schemes with !uses_gain ignore it
  double std = 0;
  double bound = 0;
};
StatusOr<DrawParameters> ComputeParameters(const Scheme& scheme, const SchemeInputs& in);

}  // namespace reinit
