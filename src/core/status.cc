#include "core/status.h"

namespace machub {

std::string_view ErrorCodeName(ErrorCode code) {
  switch (code) {
    case ErrorCode::kOk:
      return "ok";
    case ErrorCode::kInvalidJson:
      return "invalid_json";
    case ErrorCode::kInvalidField:
      return "invalid_field";
    case ErrorCode::kMissingField:
      return "missing_field";
    case ErrorCode::kTotalMismatch:
      return "total_mismatch";
    case ErrorCode::kCardNumberForbidden:
      return "card_number_forbidden";
    case ErrorCode::kCardOverpayment:
      return "card_overpayment";
    case ErrorCode::kIdConflict:
      return "id_conflict";
    case ErrorCode::kNotFound:
      return "not_found";
    case ErrorCode::kUnauthorized:
      return "unauthorized";
    case ErrorCode::kForbidden:
      return "forbidden";
    case ErrorCode::kPayloadTooLarge:
      return "payload_too_large";
    case ErrorCode::kRateLimited:
      return "rate_limited";
    case ErrorCode::kStorageUnavailable:
      return "storage_unavailable";
    case ErrorCode::kRefundExceedsOriginal:
      return "refund_exceeds_original";
    case ErrorCode::kAlreadyVoided:
      return "already_voided";
    case ErrorCode::kNotRefundable:
      return "not_refundable";
    case ErrorCode::kCurrencyMismatch:
      return "currency_mismatch";
    case ErrorCode::kRefExpired:
      return "ref_expired";
    case ErrorCode::kIdExpired:
      return "id_expired";
    case ErrorCode::kDrawerClosed:
      return "drawer_closed";
    case ErrorCode::kDrawerAlreadyOpen:
      return "drawer_already_open";
    case ErrorCode::kOfflineLimitExceeded:
      return "offline_limit_exceeded";
    case ErrorCode::kPaymentResolved:
      return "payment_resolved";
    case ErrorCode::kInvalidArgument:
      return "invalid_argument";
    case ErrorCode::kIoError:
      return "io_error";
    case ErrorCode::kUnavailable:
      return "unavailable";
    case ErrorCode::kInternal:
      return "internal";
  }
  return "internal";
}

std::string Status::ToString() const {
  if (ok()) return "ok";
  std::string out(ErrorCodeName(code_));
  out += ": ";
  out += message_;
  if (!field_.empty()) {
    out += " (";
    out += field_;
    out += ")";
  }
  return out;
}

}  // namespace machub
