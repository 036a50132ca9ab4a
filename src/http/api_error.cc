#include "http/api_error.h"

#include <nlohmann/json.hpp>

namespace machub::http {
namespace {

bool IsInternal(ErrorCode code) { return HttpStatusFor(code) == 500; }

}  // namespace

int HttpStatusFor(ErrorCode code) {
  switch (code) {
    case ErrorCode::kInvalidJson:
      return 400;
    case ErrorCode::kInvalidField:
    case ErrorCode::kMissingField:
    case ErrorCode::kTotalMismatch:
    case ErrorCode::kCardNumberForbidden:
    case ErrorCode::kCardOverpayment:
    case ErrorCode::kOfflineLimitExceeded:
      return 422;
    case ErrorCode::kUnauthorized:
      return 401;
    case ErrorCode::kForbidden:
      return 403;
    case ErrorCode::kNotFound:
      return 404;
    case ErrorCode::kIdConflict:
    case ErrorCode::kRefundExceedsOriginal:
    case ErrorCode::kAlreadyVoided:
    case ErrorCode::kDrawerClosed:
    case ErrorCode::kDrawerAlreadyOpen:
    case ErrorCode::kIdExpired:
    case ErrorCode::kRefExpired:
    case ErrorCode::kPaymentResolved:
      return 409;
    case ErrorCode::kNotRefundable:
    case ErrorCode::kCurrencyMismatch:
      return 422;
    case ErrorCode::kPayloadTooLarge:
      return 413;
    case ErrorCode::kRateLimited:
      return 429;
    case ErrorCode::kStorageUnavailable:
      return 503;
    case ErrorCode::kOk:
    case ErrorCode::kInvalidArgument:
    case ErrorCode::kIoError:
    case ErrorCode::kUnavailable:
    case ErrorCode::kInternal:
      break;
  }
  return 500;
}

std::string ErrorBody(std::string_view code, std::string_view message, std::string_view field,
                      const Status::Details& details) {
  nlohmann::ordered_json error;
  error["code"] = code;
  error["message"] = message;
  if (!field.empty()) error["field"] = field;
  for (const auto& [name, value] : details) error[name] = value;
  nlohmann::ordered_json body;
  body["error"] = std::move(error);
  // Messages may quote client input; invalid UTF-8 must not turn into an exception.
  return body.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

std::string ErrorBody(const Status& status) {
  if (IsInternal(status.code())) {
    return ErrorBody(ErrorCodeName(ErrorCode::kInternal), "internal error");
  }
  return ErrorBody(ErrorCodeName(status.code()), status.message(), status.field(),
                   status.details());
}

Response ErrorResponse(int http_status, std::string_view code, std::string_view message,
                       std::string_view field) {
  Response response;
  response.status = http_status;
  response.content_type = "application/json";
  response.body = ErrorBody(code, message, field);
  response.headers.emplace_back("Cache-Control", "no-store");
  if (http_status == 401) response.headers.emplace_back("WWW-Authenticate", "Bearer");
  return response;
}

Response ErrorResponse(const Status& status) {
  Response response;
  response.status = HttpStatusFor(status.code());
  response.content_type = "application/json";
  response.body = ErrorBody(status);
  response.headers.emplace_back("Cache-Control", "no-store");
  if (response.status == 401) response.headers.emplace_back("WWW-Authenticate", "Bearer");
  return response;
}

}  // namespace machub::http
