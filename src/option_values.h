// The option values that the command line and the Python module both take as text, converted to
// the library's types in one place: each conversion, its valid values and its message. Messages
// name the options by the tool's long flags (the Python module's keywords are the same names with
// `_` for `-`). The tool's parser checks the enumerated values itself first (CLI11's own
// messages); the GLOB=SCHEME and NAME=SHAPE forms are checked only here.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "graph/fans.h"
#include "io/external_data.h"
#include "plan/plan.h"
#include "plan/plan_options.h"
#include "status.h"

namespace reinit {

// The bounds of the numeric options (the tool's parser and the Python module check them).
inline constexpr int kMaxThreads = 1024;
inline constexpr int64_t kMaxBatch = int64_t{1} << 20;
inline constexpr int kMaxLsuvIterations = 1000;

// The planning options (--scheme, --bias, --mode, --layer, ...): their table and their text
// conversions (ParseFanConvention, ParseHeMode, ParseKeepBias, ParseKeepNorms,
// ParseLayerOverride) are in plan_options.h, with the plan they shape.

StatusOr<ExternalDataMode> ParseExternalDataMode(std::string_view text);  // keep|single|inline

// --input NAME=D0,D1,... with positive dims.
StatusOr<std::pair<std::string, std::vector<int64_t>>> ParseInputShape(const std::string& spec);

// --data [NAME=]FILE.npy: {"", FILE} for the model's only input. A path may hold '=' only
// after a '/'.
std::pair<std::string, std::string> ParseDataSpec(const std::string& spec);

// The random inputs' samples when --batch is not given: 8, or the batch of a scheme that needs
// data (its registry row: 32 for lsuv, whose scales must hold on fresh inputs: a variance
// measured on 32 samples or more).
int64_t DefaultBatch(std::string_view scheme);

}  // namespace reinit
