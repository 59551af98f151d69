#include "plan/plan_options.h"

namespace reinit {

// File-local, under a name of its own (the library is a unity build).
namespace plan_option_rows {

Status WrongType() { return UsageError("a planning option given a value of the wrong type"); }

// An option held as it is given (a number, a flag, a seed, a text taken as it is).
template <typename T, auto Member>
Status SetAs(const OptionValue& value, PlanOptions* o) {
  const T* v = std::get_if<T>(&value);
  if (!v) return WrongType();
  o->*Member = *v;
  return Status::Ok();
}

// A text option: `Convert` (a Parse* below) turns the text into the member's value.
template <auto Member, auto Convert>
Status SetText(const OptionValue& value, PlanOptions* o) {
  const std::string* text = std::get_if<std::string>(&value);
  if (!text) return WrongType();
  auto converted = Convert(*text);
  if (!converted.ok()) return converted.status();
  o->*Member = *converted;
  return Status::Ok();
}

Status SetOverrides(const OptionValue& value, PlanOptions* o) {
  if (const auto* pairs = std::get_if<std::vector<LayerOverride>>(&value)) {
    o->overrides = *pairs;
    return Status::Ok();
  }
  const auto* specs = std::get_if<std::vector<std::string>>(&value);
  if (!specs) return WrongType();
  o->overrides.clear();
  for (const auto& spec : *specs) {
    auto layer = ParseLayerOverride(spec);
    if (!layer.ok()) return layer.status();
    o->overrides.push_back(std::move(*layer));
  }
  return Status::Ok();
}

Status ReadFanConvention(const proto::Plan& plan, PlanOptions* o) {
  const std::string& text = plan.fan_convention();
  if (text == "torch") {
    o->fan_convention = FanConvention::kTorch;
  } else if (!text.empty() && text != "onnx") {
    return ModelError("fanConvention must be 'onnx' or 'torch', not '" + text + "'");
  }
  return Status::Ok();
}

Status ReadMode(const proto::Plan& plan, PlanOptions* o) {
  const std::string& text = plan.mode();
  if (text == "fan_out") {
    o->he_mode = FanMode::kFanOut;
  } else if (!text.empty() && text != "fan_in") {
    return ModelError("mode must be 'fan_in' or 'fan_out', not '" + text + "'");
  }
  return Status::Ok();
}

}  // namespace plan_option_rows

StatusOr<size_t> ChooseText(std::string_view flag, std::string_view text,
                            std::initializer_list<std::string_view> valid) {
  std::string list;
  size_t i = 0;
  for (std::string_view v : valid) {
    if (v == text) return i;
    list.append(list.empty() ? "" : ", ").append(v);
    ++i;
  }
  return UsageError("unknown " + std::string(flag) + " '" + std::string(text) +
                    "'; valid: " + list);
}

StatusOr<FanConvention> ParseFanConvention(std::string_view text) {
  auto i = ChooseText("--fan-convention", text, {"onnx", "torch"});
  if (!i.ok()) return i.status();
  return *i == 1 ? FanConvention::kTorch : FanConvention::kOnnx;
}

StatusOr<FanMode> ParseHeMode(std::string_view text) {
  auto i = ChooseText("--mode", text, {"fan_in", "fan_out"});
  if (!i.ok()) return i.status();
  return *i == 1 ? FanMode::kFanOut : FanMode::kFanIn;
}

StatusOr<bool> ParseKeepBias(std::string_view text) {
  auto i = ChooseText("--bias", text, {"zero", "keep"});
  if (!i.ok()) return i.status();
  return *i == 1;
}

StatusOr<bool> ParseKeepNorms(std::string_view text) {
  auto i = ChooseText("--norms", text, {"reset", "keep"});
  if (!i.ok()) return i.status();
  return *i == 1;
}

StatusOr<LayerOverride> ParseLayerOverride(const std::string& spec) {
  const size_t eq = spec.rfind('=');
  if (eq == std::string::npos || eq == 0 || eq + 1 == spec.size()) {
    return UsageError("--layer '" + spec + "': expected GLOB=SCHEME");
  }
  return LayerOverride{spec.substr(0, eq), spec.substr(eq + 1)};
}

// clang-format off
const std::vector<PlanOptionRow>& PlanOptionRows() {
  using P = proto::Plan;
  using T = OptionType;
  using namespace plan_option_rows;  // NOLINT: the rows' setters and readers
  static const std::vector<PlanOptionRow> kRows = {
      {"scheme", "scheme", T::kText,
       SetAs<std::string, &PlanOptions::scheme>,
       [](const PlanOptions& o, P* p) { p->set_scheme(o.scheme); },
       nullptr},  // a plan read back keeps its layers' schemes
      {"seed", "seed", T::kSeed,
       SetAs<uint64_t, &PlanOptions::seed>,
       [](const PlanOptions& o, P* p) { p->set_seed(o.seed); },
       [](const P& p, PlanOptions* o) { o->seed = p.seed(); return Status::Ok(); }},
      {"layer", "layers", T::kGlobSchemes, SetOverrides,
       nullptr, nullptr},  // the plan holds each layer's outcome instead
      {"bias", "bias", T::kText,
       SetText<&PlanOptions::keep_bias, ParseKeepBias>,
       [](const PlanOptions& o, P* p) { p->set_bias(o.keep_bias ? "keep" : "zero"); },
       [](const P& p, PlanOptions* o) { o->keep_bias = p.bias() == "keep"; return Status::Ok(); }},
      {"norms", "norms", T::kText,
       SetText<&PlanOptions::keep_norms, ParseKeepNorms>,
       [](const PlanOptions& o, P* p) { p->set_norms(o.keep_norms ? "keep" : "reset"); },
       [](const P& p, PlanOptions* o) { o->keep_norms = p.norms() == "keep"; return Status::Ok(); }},
      {"forget-bias", "forget_bias", T::kNumber,
       SetAs<double, &PlanOptions::forget_bias>,
       [](const PlanOptions& o, P* p) { p->set_forget_bias(o.forget_bias); },
       [](const P& p, PlanOptions* o) { o->forget_bias = p.forget_bias(); return Status::Ok(); }},
      {"fan-convention", "fan_convention", T::kText,
       SetText<&PlanOptions::fan_convention, ParseFanConvention>,
       [](const PlanOptions& o, P* p) {
         p->set_fan_convention(o.fan_convention == FanConvention::kTorch ? "torch" : "onnx");
       },
       ReadFanConvention},
      {"mode", "mode", T::kText,
       SetText<&PlanOptions::he_mode, ParseHeMode>,
       [](const PlanOptions& o, P* p) { p->set_mode(std::string(FanModeName(o.he_mode))); },
       ReadMode},
      {"std", "std", T::kPositiveNumber,
       SetAs<double, &PlanOptions::naive_std>,
       [](const PlanOptions& o, P* p) { p->set_std(EffectiveStd(o)); },
       [](const P& p, PlanOptions* o) {
         if (p.std() > 0) o->naive_std = p.std();
         return Status::Ok();
       }},
      {"range", "range", T::kPositiveNumber,
       SetAs<double, &PlanOptions::naive_range>,
       [](const PlanOptions& o, P* p) { p->set_range(o.naive_range); },
       [](const P& p, PlanOptions* o) {
         if (p.range() > 0) o->naive_range = p.range();
         return Status::Ok();
       }},
      {"residual", "residual", T::kText,
       SetAs<std::string, &PlanOptions::residual>,
       [](const PlanOptions& o, P* p) { p->set_residual(o.residual); },
       [](const P& p, PlanOptions* o) { o->residual = p.residual(); return Status::Ok(); }},
      {"zero-init-residual", "zero_init_residual", T::kFlag,
       SetAs<bool, &PlanOptions::zero_init_residual>,
       [](const PlanOptions& o, P* p) { p->set_zero_init_residual(o.zero_init_residual); },
       [](const P& p, PlanOptions* o) {
         o->zero_init_residual = p.zero_init_residual();
         return Status::Ok();
       }},
  };
  return kRows;
}
// clang-format on

const PlanOptionRow* FindPlanOption(std::string_view flag) {
  for (const auto& row : PlanOptionRows()) {
    if (row.flag == flag) return &row;
  }
  return nullptr;
}

Status SetPlanOption(std::string_view flag, const OptionValue& value, PlanOptions* options) {
  const PlanOptionRow* row = FindPlanOption(flag);
  if (!row) return UsageError("unknown planning option --" + std::string(flag));
  return row->set(value, options);
}

void WritePlanOptions(const PlanOptions& options, proto::Plan* plan) {
  for (const auto& row : PlanOptionRows()) {
    if (row.write) row.write(options, plan);
  }
}

Status ReadPlanOptions(const proto::Plan& plan, PlanOptions* options) {
  for (const auto& row : PlanOptionRows()) {
    if (row.read) REINIT_RETURN_IF_ERROR(row.read(plan, options));
  }
  return Status::Ok();
}

}  // namespace reinit
