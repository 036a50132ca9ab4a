#include "http/request_checks.h"

#include <algorithm>
#include <iterator>
#include <limits>
#include <string_view>

#include "core/strings.h"
#include "http/api_error.h"

namespace machub::http {

namespace {

namespace beast = boost::beast;
namespace bhttp = boost::beast::http;

std::string_view Sv(beast::string_view v) { return {v.data(), v.size()}; }

bool IsHttpParseError(const beast::error_code& ec) {
  return ec.category() == bhttp::make_error_code(bhttp::error::bad_method).category();
}

}  // namespace

void ConfigureRequestParser(bhttp::request_parser<bhttp::string_body>& parser,
                            const ServerOptions& options) {
  parser.body_limit(options.body_limit);
  parser.header_limit(static_cast<uint32_t>(
      std::min<size_t>(options.header_limit, std::numeric_limits<uint32_t>::max())));
}

std::optional<EarlyError> CheckRequestHeader(const bhttp::request_header<>& req) {
  // Request smuggling: a proxy and this server must never disagree on where a body
  // ends. Beast already refuses most combinations; refuse every one explicitly.
  const size_t te_count = req.count(bhttp::field::transfer_encoding);
  if (te_count > 0) {
    const bool chunked_only =
        te_count == 1 &&
        IEquals(core::TrimSpaceTab(Sv(req[bhttp::field::transfer_encoding])), "chunked");
    if (req.count(bhttp::field::content_length) > 0 || !chunked_only) {
      return EarlyError{400, std::string(kBadRequestCode),
                        "Transfer-Encoding must be exactly \"chunked\" and must not come "
                        "with Content-Length"};
    }
  }
  // API.md: Content-Length is one decimal number. A list ("238, 238", which RFC 9110
  // lets a recipient collapse) or two Content-Length lines is refused rather than guessed.
  const size_t cl_count = req.count(bhttp::field::content_length);
  if (cl_count > 1 ||
      (cl_count == 1 &&
       core::TrimSpaceTab(Sv(req[bhttp::field::content_length])).find_first_not_of("0123456789") !=
           std::string_view::npos)) {
    return EarlyError{400, std::string(kBadRequestCode),
                      "Content-Length must be a single decimal number"};
  }
  // Two Authorization headers: readers disagree on which one counts.
  if (req.count(bhttp::field::authorization) > 1) {
    return EarlyError{400, std::string(kBadRequestCode), "more than one Authorization header"};
  }
  return std::nullopt;
}

std::optional<EarlyError> ReadErrorAnswer(const beast::error_code& ec,
                                          const ServerOptions& options) {
  if (ec == bhttp::error::body_limit) {
    return EarlyError{
        413, std::string(ErrorCodeName(ErrorCode::kPayloadTooLarge)),
        "request body is larger than " + std::to_string(options.body_limit) + " bytes"};
  }
  if (ec == bhttp::error::header_limit) {
    return EarlyError{
        431, std::string(ErrorCodeName(ErrorCode::kPayloadTooLarge)),
        "request headers are larger than " + std::to_string(options.header_limit) + " bytes"};
  }
  if (IsHttpParseError(ec) && ec != bhttp::error::end_of_stream &&
      ec != bhttp::error::partial_message) {
    return EarlyError{400, std::string(kBadRequestCode), "malformed HTTP request: " + ec.message()};
  }
  return std::nullopt;
}

Request ToRequest(bhttp::request<bhttp::string_body>&& msg, std::string remote_address) {
  Request request;
  request.method = std::string(msg.method_string());
  request.target = std::string(msg.target());
  request.headers.reserve(static_cast<size_t>(std::distance(msg.begin(), msg.end())));
  for (const auto& field : msg) {
    request.headers.emplace_back(core::AsciiLower(Sv(field.name_string())),
                                 std::string(field.value().data(), field.value().size()));
  }
  request.body = std::move(msg.body());
  request.remote_address = std::move(remote_address);
  return request;
}

bool IEquals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && core::AsciiLower(a) == core::AsciiLower(b);
}

size_t HeaderBlockEnd(std::string_view data) {
  const size_t crlf = data.find("\r\n\r\n");
  const size_t lf = data.find("\n\n");
  return std::min(crlf, lf);
}

bool HasObsFold(std::string_view header_block) {
  for (size_t nl = header_block.find('\n'); nl != std::string_view::npos;
       nl = header_block.find('\n', nl + 1)) {
    if (nl + 1 < header_block.size() &&
        (header_block[nl + 1] == ' ' || header_block[nl + 1] == '\t')) {
      return true;
    }
  }
  return false;
}

}  // namespace machub::http
