#pragma once
// The one place where an error becomes an HTTP answer (API.md, "Errors").
//
// Every non-2xx answer of the hub has the body
//   {"error":{"code":"<snake_case>","message":"<sentence>","field":"<json path>"}}
// with "field" present only when known. Codes of ErrorCode keep their ErrorCodeName();
// internal codes (invalid_argument, io_error, unavailable, internal) are answered as 500
// "internal" with a generic message, so no internal detail (paths, SQL) leaks to a client.
//
// HTTP-level codes that have no ErrorCode (they never leave the http module):
//   bad_request         400  the request is not valid HTTP/1.1 (parse error, Content-Length
//                            together with Transfer-Encoding, unknown transfer coding)
//   method_not_allowed  405  known path, other method; the answer carries `Allow`
//   server_busy         503  more than max_connections connections; `Retry-After: 1`
// Oversized headers are answered 431 with code payload_too_large (message says headers).
//
// All functions are pure and thread-safe.

#include <string>
#include <string_view>

#include "core/status.h"
#include "http/server.h"

namespace machub::http {

inline constexpr std::string_view kBadRequestCode = "bad_request";
inline constexpr std::string_view kMethodNotAllowedCode = "method_not_allowed";
inline constexpr std::string_view kServerBusyCode = "server_busy";

// HTTP status for an error code: invalid_json 400; invalid_field, missing_field,
// total_mismatch, card_number_forbidden 422; unauthorized 401; forbidden 403;
// not_found 404; id_conflict 409; payload_too_large 413; rate_limited 429;
// storage_unavailable 503; everything else (and kOk, which is not an error) 500.
int HttpStatusFor(ErrorCode code);

// The error body for `status` (must not be OK). 500-class internal codes get code
// "internal" and a generic message.
std::string ErrorBody(const Status& status);
// The error body with an explicit code (for the HTTP-level codes above).
std::string ErrorBody(std::string_view code, std::string_view message, std::string_view field = {},
                      const Status::Details& details = {});

// A complete answer: status line from HttpStatusFor, JSON body, Cache-Control: no-store,
// and `WWW-Authenticate: Bearer` for 401.
Response ErrorResponse(const Status& status);
Response ErrorResponse(int http_status, std::string_view code, std::string_view message,
                       std::string_view field = {});

}  // namespace machub::http
