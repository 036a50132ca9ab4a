#pragma once
// The request-level checks of the HTTP server (server.h), shared by Server and the
// fuzz target for the request path (fuzz/http_request_fuzz.cc), so both parse requests
// exactly alike: parser limits, the request-smuggling rule, which read errors get an
// answer, and the conversion of a parsed Beast message into an http::Request.
//
// Pure functions on Beast types; thread-safe. Internal to the http module (and its
// fuzzing): the public contract is server.h.

#include <boost/beast/core/error.hpp>
#include <boost/beast/http/message.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/string_body.hpp>
#include <optional>
#include <string>
#include <string_view>

#include "http/server.h"

namespace machub::http {

// An answer the server gives on its own, without calling the handler; the connection
// closes after it.
struct EarlyError {
  int status = 400;
  std::string code;  // api_error.h code name
  std::string message;
};

// Applies options.body_limit and options.header_limit to a fresh parser.
void ConfigureRequestParser(
    boost::beast::http::request_parser<boost::beast::http::string_body>& parser,
    const ServerOptions& options);

// Checks a parsed request header (before the body is read). Each is a 400 bad_request:
// request smuggling (a Transfer-Encoding other than exactly one "chunked", or one together
// with Content-Length), a Content-Length that is not one decimal number (a list such as
// "238, 238", or two Content-Length lines), more than one Authorization header.
std::optional<EarlyError> CheckRequestHeader(const boost::beast::http::request_header<>& header);

// The answer for a read error: 413 over the body limit, 431 over the header limit, 400
// for a malformed request. nullopt: nobody to answer (timeout, reset, EOF mid-request).
std::optional<EarlyError> ReadErrorAnswer(const boost::beast::error_code& ec,
                                          const ServerOptions& options);

// ASCII case-insensitive comparison for header handling (names and tokens are ASCII);
// core/strings.h has the case folding and trimming.
bool IEquals(std::string_view a, std::string_view b);  // ASCII case-insensitive

// Moves a complete parsed message into a Request (header names lower-cased).
Request ToRequest(boost::beast::http::request<boost::beast::http::string_body>&& message,
                  std::string remote_address);

// Where the header block of the request at the start of `data` ends (the index of its
// empty line), or npos when it is not complete yet. A bare LF ends it too, so that Beast,
// not a wait for more bytes, decides about such a request.
size_t HeaderBlockEnd(std::string_view data);

// A header line that starts with a space or tab continues the previous one (obs-fold).
bool HasObsFold(std::string_view header_block);

}  // namespace machub::http
