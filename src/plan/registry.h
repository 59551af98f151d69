// The scheme registry: every initialization scheme the tool knows, by name, with its formula.
//
// Most schemes are one variance-scaling rule (Keras' VarianceScaling): variance = scale / n
// with n = fan_in, fan_out or (fan_in + fan_out)/2, drawn from a normal, a uniform
// (bound = √(3·variance)) or a normal truncated at ±2σ and rescaled so the variance is
// exact (σ = √variance / 0.87962566103423978, the std of N(0,1) cut at ±2). Orthogonal, zero
// and the naive draws are their own kinds; "auto" picks one of the others per layer
// (schemes/auto_policy.h). The registry is one list built in registry.cc; SchemeNames() feeds
// `reinit schemes` and the unknown-scheme message.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "status.h"

namespace reinit {

// kPolicy: a per-layer choice among the others (auto, the framework defaults).
enum class SchemeKind { kZero, kConstant, kNaive, kVarianceScaling, kOrthogonal, kPolicy };
enum class Distribution { kNone, kConstant, kNormal, kUniform, kTruncatedNormal, kOrthogonal };
enum class FanMode { kFanIn, kFanOut, kFanAvg };

struct Scheme {
  std::string_view name;
  std::string_view formula;  // shown by `reinit schemes`
  SchemeKind kind;
  Distribution distribution;
  FanMode mode;       // variance scaling: which fan n is; he-* follow --mode instead
  bool follows_mode;  // true for he-*: --mode fan_in|fan_out picks n
  bool uses_gain;     // false for lecun-* (variance exactly 1/fan_in) and the naive draws
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
