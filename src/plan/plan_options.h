// The planning options as one table: for each option, the tool's long flag and the Python
// module's keyword, the value it takes, how that value sets PlanOptions (through the text
// conversions below, with their messages), and how PlanOptions is written to the Plan message
// (MakePlan) and read back from it (ReadPlan). The tool, the Python module, MakePlan and ReadPlan
// all go through these rows: a new planning option is one PlanOptions member, one proto::Plan
// field and one row in plan_options.cc.
//
// The conversions of the planning options' text forms live here, with the plan they shape;
// option_values.h (the other options' text forms) includes this header.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "graph/fans.h"
#include "plan/plan.h"
#include "plan.pb.h"
#include "status.h"

namespace reinit {

// The index of `text` in `valid`, or a usage error "unknown <flag> 'text'; valid: a, b".
StatusOr<size_t> ChooseText(std::string_view flag, std::string_view text,
                            std::initializer_list<std::string_view> valid);

StatusOr<FanConvention> ParseFanConvention(std::string_view text);  // onnx | torch
StatusOr<FanMode> ParseHeMode(std::string_view text);               // fan_in | fan_out
StatusOr<bool> ParseKeepBias(std::string_view text);                // zero | keep: keep?
StatusOr<bool> ParseKeepNorms(std::string_view text);               // reset | keep: keep?

// --layer GLOB=SCHEME (split at the last '='; the scheme is checked by CheckPlanOptions).
StatusOr<LayerOverride> ParseLayerOverride(const std::string& spec);

// What a planning option takes (the Python module checks the Python type by it).
enum class OptionType {
  kText,            // a str, converted by the row
  kNumber,          // a number
  kPositiveNumber,  // a number > 0
  kFlag,            // True or False
  kSeed,            // a whole number from 0 to 2^64 - 1
  kGlobSchemes,     // GLOB=SCHEME texts, or {GLOB: SCHEME} pairs already split
};

// One option's value as the tool or the Python module holds it.
using OptionValue = std::variant<std::string, double, bool, uint64_t, std::vector<std::string>,
                                 std::vector<LayerOverride>>;

struct PlanOptionRow {
  std::string_view flag;     // the tool's long flag without "--"
  std::string_view keyword;  // the Python module's keyword
  OptionType type;
  // Sets the member from the value (a usage error for a text it does not take).
  Status (*set)(const OptionValue& value, PlanOptions* options);
  // Writes the member to the Plan (nullptr: the Plan does not hold it).
  void (*write)(const PlanOptions& options, proto::Plan* plan);
  // Reads it back from a Plan (nullptr: a plan read back is not planned by it); the error is
  // the message after "plan 'FILE': ".
  Status (*read)(const proto::Plan& plan, PlanOptions* options);
};

// In the order the tool checks them beside --plan and ReadPlan reads them.
const std::vector<PlanOptionRow>& PlanOptionRows();

// The row of that long flag, or nullptr.
const PlanOptionRow* FindPlanOption(std::string_view flag);

// Sets the option of that long flag from `value` (the row's set).
Status SetPlanOption(std::string_view flag, const OptionValue& value, PlanOptions* options);

// Every row's write, and every row's read in order (the first error).
void WritePlanOptions(const PlanOptions& options, proto::Plan* plan);
Status ReadPlanOptions(const proto::Plan& plan, PlanOptions* options);

}  // namespace reinit
