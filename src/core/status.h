#pragma once
// Status and Result<T>: the one error type of machub.
//
// Every fallible function returns Status or Result<T>. No exception crosses a module
// boundary: third-party exceptions are caught at the adapter and turned into a Status.
// Each ErrorCode has a stable snake_case name that is part of the terminal API (API.md);
// the HTTP layer maps codes to status lines in one place (http/api_error.h).

#include <cassert>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

namespace machub {

enum class ErrorCode {
  kOk = 0,
  // Terminal API codes (API.md). Their names are a contract; never rename.
  kInvalidJson,
  kInvalidField,
  kMissingField,
  kTotalMismatch,
  kCardNumberForbidden,
  kIdConflict,
  kNotFound,
  kUnauthorized,
  kForbidden,
  kPayloadTooLarge,
  kRateLimited,
  kStorageUnavailable,
  // Store-day codes (issue #8): refusals that depend on the journal's state.
  kRefundExceedsOriginal,  // more than is left of the original sale (qty or amount)
  kAlreadyVoided,          // the original sale was voided: no refund, no second void
  kNotRefundable,          // ref is a refund/void, or a void of a partly refunded sale
  kCurrencyMismatch,       // refund/void currency differs from the original's
  kRefExpired,             // the original's row was pruned: it cannot be checked
  kIdExpired,              // the id is known (index) but its row was pruned
  kDrawerClosed,           // cash on a terminal without an open drawer (when configured)
  kDrawerAlreadyOpen,      // drawer_open while the terminal's drawer is open
  kCardOverpayment,        // non-cash payments above the total (change only from cash)
  // Offline card payments (issue #9).
  kOfflineLimitExceeded,  // an offline card payment would pass an exposure limit
  kPaymentResolved,       // the payment's authorization outcome is already recorded
  // Internal codes (never expected by a terminal, still stable names).
  kInvalidArgument,  // bad configuration or command-line input
  kIoError,          // a file or socket operation failed
  kUnavailable,      // a peer (S3, credentials endpoint) is unreachable; retryable
  kInternal,         // a bug or an invariant broken
};

// Stable snake_case name, e.g. "invalid_json".
std::string_view ErrorCodeName(ErrorCode code);

class [[nodiscard]] Status {
 public:
  Status() = default;  // OK
  Status(ErrorCode code, std::string message, std::string field = {})
      : code_(code), message_(std::move(message)), field_(std::move(field)) {}

  // Named facts behind a refusal that a client acts on (offline_limit_exceeded: which
  // limit, the exposure, what is left), answered as extra string members of the error
  // body. Never secrets or card numbers. Chainable: Status(...).WithDetail("limit", "x").
  using Details = std::vector<std::pair<std::string, std::string>>;
  Status&& WithDetail(std::string name, std::string value) && {
    details_.emplace_back(std::move(name), std::move(value));
    return std::move(*this);
  }
  void AddDetail(std::string name, std::string value) {
    details_.emplace_back(std::move(name), std::move(value));
  }
  const Details& details() const { return details_; }
  // The value of detail `name`, empty when absent.
  std::string_view detail(std::string_view name) const {
    for (const auto& [n, v] : details_) {
      if (n == name) return v;
    }
    return {};
  }

  static Status Ok() { return {}; }

  bool ok() const { return code_ == ErrorCode::kOk; }
  ErrorCode code() const { return code_; }
  // A human sentence. Never contains secrets (tokens, keys) or card numbers.
  const std::string& message() const { return message_; }
  // JSON path of the offending request field ("lines[2].qty"), empty when none.
  const std::string& field() const { return field_; }

  // "code: message (field)" for logs.
  std::string ToString() const;

  bool operator==(const Status&) const = default;

 private:
  ErrorCode code_ = ErrorCode::kOk;
  std::string message_;
  std::string field_;
  Details details_;
};

template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::move(value)) {}        // NOLINT(google-explicit-constructor)
  Result(Status status) : v_(std::move(status)) {  // NOLINT(google-explicit-constructor)
    assert(!std::get<Status>(v_).ok() && "Result built from an OK Status");
  }

  bool ok() const { return std::holds_alternative<T>(v_); }
  const Status& status() const {
    static const Status kOk;
    return ok() ? kOk : std::get<Status>(v_);
  }
  T& value() & { return std::get<T>(v_); }
  const T& value() const& { return std::get<T>(v_); }
  T&& value() && { return std::get<T>(std::move(v_)); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  // The value, or `fallback` when this holds an error (for callers that check the value
  // itself next, e.g. a size).
  T value_or(T fallback) const& { return ok() ? std::get<T>(v_) : std::move(fallback); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }

 private:
  std::variant<T, Status> v_;
};

}  // namespace machub

#define MACHUB_CONCAT_INNER(a, b) a##b
#define MACHUB_CONCAT(a, b) MACHUB_CONCAT_INNER(a, b)

// Macro arguments here are statements, declarations and expressions spliced as written
// (`ASSIGN_OR_RETURN(auto x, F())`); parentheses would break them.
// NOLINTBEGIN(bugprone-macro-parentheses)
#define RETURN_IF_ERROR(expr)      \
  do {                             \
    ::machub::Status _st = (expr); \
    if (!_st.ok()) return _st;     \
  } while (0)

#define ASSIGN_OR_RETURN_IMPL(tmp, lhs, expr) \
  auto tmp = (expr);                          \
  if (!tmp.ok()) return tmp.status();         \
  lhs = std::move(tmp).value()

#define ASSIGN_OR_RETURN(lhs, expr) \
  ASSIGN_OR_RETURN_IMPL(MACHUB_CONCAT(_result_, __LINE__), lhs, expr)

// NOLINTEND(bugprone-macro-parentheses)