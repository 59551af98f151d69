// Status and StatusOr: how the library reports failure. Nothing in src/ prints or exits; a
// failing function returns a Status whose message names the file, layer and tensor, and the
// tool prints it once as "reinit: error: <message>".
#pragma once

#include <optional>
#include <string>
#include <utility>
#include <variant>

namespace reinit {

enum class StatusCode {
  kOk,
  kUsage,  // a bad option or option value: exit 2
  kModel,  // the model or plan cannot be processed: exit 1
  kIo,     // reading or writing a file failed: exit 1
};

class [[nodiscard]] Status {
 public:
  Status() = default;
  Status(StatusCode code, std::string message) : code_(code), message_(std::move(message)) {}

  static Status Ok() { return {}; }
  bool ok() const { return code_ == StatusCode::kOk; }
  StatusCode code() const { return code_; }
  const std::string& message() const { return message_; }

  // Returns a copy whose message is "<context>: <message>".
  Status WithContext(const std::string& context) const;

 private:
  StatusCode code_ = StatusCode::kOk;
  std::string message_;
};

Status UsageError(std::string message);
Status ModelError(std::string message);
Status IoError(std::string message);

template <typename T>
class [[nodiscard]] StatusOr {
 public:
  StatusOr(Status status) : value_(std::move(status)) {}  // NOLINT: implicit by design
  StatusOr(T value) : value_(std::move(value)) {}         // NOLINT: implicit by design

  bool ok() const { return std::holds_alternative<T>(value_); }
  Status status() const { return ok() ? Status::Ok() : std::get<Status>(value_); }
  T& value() & { return std::get<T>(value_); }
  const T& value() const& { return std::get<T>(value_); }
  T&& value() && { return std::get<T>(std::move(value_)); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }

 private:
  std::variant<Status, T> value_;
};

}  // namespace reinit

#define REINIT_RETURN_IF_ERROR(expr)                 \
  do {                                               \
    ::reinit::Status reinit_status_ = (expr);        \
    if (!reinit_status_.ok()) return reinit_status_; \
  } while (0)
