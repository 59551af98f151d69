#include "option_values.h"

#include <charconv>

namespace reinit {

StatusOr<ExternalDataMode> ParseExternalDataMode(std::string_view text) {
  auto i = ChooseText("--external-data", text, {"keep", "single", "inline"});
  if (!i.ok()) return i.status();
  return *i == 1   ? ExternalDataMode::kSingle
         : *i == 2 ? ExternalDataMode::kInline
                   : ExternalDataMode::kKeep;
}

StatusOr<std::pair<std::string, std::vector<int64_t>>> ParseInputShape(const std::string& spec) {
  const size_t eq = spec.rfind('=');
  const Status bad =
      UsageError("--input '" + spec + "': expected NAME=D0,D1,... with positive dims");
  if (eq == std::string::npos || eq == 0 || eq + 1 == spec.size()) return bad;
  std::vector<int64_t> dims;
  const std::string list = spec.substr(eq + 1);
  for (size_t at = 0; at <= list.size();) {
    size_t comma = list.find(',', at);
    if (comma == std::string::npos) comma = list.size();
    const std::string item = list.substr(at, comma - at);
    int64_t d = 0;
    const auto [ptr, ec] = std::from_chars(item.data(), item.data() + item.size(), d);
    if (item.empty() || ec != std::errc() || ptr != item.data() + item.size() || d <= 0) {
      return bad;
    }
    dims.push_back(d);
    at = comma + 1;
  }
  return std::pair{spec.substr(0, eq), std::move(dims)};
}

std::pair<std::string, std::string> ParseDataSpec(const std::string& spec) {
  const size_t eq = spec.find('=');
  const bool named = eq != std::string::npos && spec.find('/') > eq && eq > 0;
  using Spec = std::pair<std::string, std::string>;
  return named ? Spec{spec.substr(0, eq), spec.substr(eq + 1)} : Spec{"", spec};
}

int64_t DefaultBatch(std::string_view scheme) {
  const Scheme* s = SchemeNamed(scheme);
  return s && s->batch > 0 ? s->batch : 8;
}

}  // namespace reinit
