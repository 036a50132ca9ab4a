#include "cloud/curl_response.h"

#include <string_view>

#include "core/strings.h"

namespace machub::cloud::internal {

size_t CurlWriteBody(char* data, size_t size, size_t nmemb, void* response) {
  auto* r = static_cast<CurlResponse*>(response);
  const size_t n = size * nmemb;
  if (r->body.size() + n > r->max_bytes) {
    r->too_large = true;
    return 0;
  }
  r->body.append(data, n);
  return n;
}

size_t CurlWriteHeader(char* data, size_t size, size_t nmemb, void* response) {
  auto* r = static_cast<CurlResponse*>(response);
  const size_t n = size * nmemb;
  const std::string_view line(data, n);
  if (line.starts_with("HTTP/")) {
    r->headers.clear();
    return n;
  }
  const size_t colon = line.find(':');
  if (colon == std::string_view::npos) return n;
  r->headers[core::AsciiLower(core::TrimWhitespace(line.substr(0, colon)))] =
      std::string(core::TrimWhitespace(line.substr(colon + 1)));
  return n;
}

}  // namespace machub::cloud::internal
