#include "cloud/url.h"

#include <curl/curl.h>

#include <memory>
#include <mutex>

#include "core/strings.h"

namespace machub::cloud {
namespace {

std::once_flag curl_once;

// The part, or "" when the URL has none.
std::string Part(CURLU* url, CURLUPart part) {
  char* value = nullptr;
  if (curl_url_get(url, part, &value, 0) != CURLUE_OK || value == nullptr) return "";
  std::string out(value);
  curl_free(value);
  return out;
}

bool Has(CURLU* url, CURLUPart part) {
  char* value = nullptr;
  const CURLUcode rc = curl_url_get(url, part, &value, 0);
  if (value != nullptr) curl_free(value);
  return rc == CURLUE_OK;
}

}  // namespace

Result<HttpUrl> ParseHttpUrl(std::string_view text) {
  // curl_global_init is reference counted; the S3 client and the credentials call it too.
  std::call_once(curl_once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
  const Status bad(ErrorCode::kInvalidArgument, "not a valid http(s) URL");
  std::unique_ptr<CURLU, decltype(&curl_url_cleanup)> url(curl_url(), &curl_url_cleanup);
  if (!url) return Status(ErrorCode::kInternal, "curl_url failed");
  const std::string copy(text);
  if (curl_url_set(url.get(), CURLUPART_URL, copy.c_str(), 0) != CURLUE_OK) return bad;
  HttpUrl out;
  out.scheme = core::AsciiLower(Part(url.get(), CURLUPART_SCHEME));
  out.host = core::AsciiLower(Part(url.get(), CURLUPART_HOST));
  if (out.host.size() >= 2 && out.host.front() == '[' && out.host.back() == ']') {
    out.host = out.host.substr(1, out.host.size() - 2);
  }
  out.port = Part(url.get(), CURLUPART_PORT);
  out.path = Part(url.get(), CURLUPART_PATH);
  // push_back, not `= "/"`: GCC 12 at -O3 for aarch64 reports a false -Wrestrict on the
  // literal assignment (GCC bug 105329) and CI builds with warnings as errors.
  if (out.path.empty()) out.path.push_back('/');
  out.has_userinfo = Has(url.get(), CURLUPART_USER) || Has(url.get(), CURLUPART_PASSWORD);
  out.has_query = Has(url.get(), CURLUPART_QUERY);
  out.has_fragment = Has(url.get(), CURLUPART_FRAGMENT);
  if ((out.scheme != "http" && out.scheme != "https") || out.host.empty()) return bad;
  return out;
}

}  // namespace machub::cloud
