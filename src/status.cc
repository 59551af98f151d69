#include "status.h"

namespace reinit {

Status Status::WithContext(const std::string& context) const {
  if (ok()) return *this;
  return Status(code_, context + ": " + message_);
}

Status UsageError(std::string message) { return {StatusCode::kUsage, std::move(message)}; }
Status ModelError(std::string message) { return {StatusCode::kModel, std::move(message)}; }
Status IoError(std::string message) { return {StatusCode::kIo, std::move(message)}; }

}  // namespace reinit
