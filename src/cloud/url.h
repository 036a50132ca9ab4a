#pragma once
// One URL parser for every http(s) URL machub is given (the load generator's --url, the
// container credentials endpoint), built on libcurl's URL API (CURLU) rather than by hand.
// Thread-safety: free function, no shared state (libcurl's global init runs once).

#include <string>
#include <string_view>

#include "core/status.h"

namespace machub::cloud {

struct HttpUrl {
  std::string scheme;  // "http" | "https" (lower case)
  std::string host;    // lower case, IPv6 without brackets ("::1")
  std::string port;    // as written; empty when absent
  std::string path;    // "/" when absent
  bool has_userinfo = false;
  bool has_query = false;     // a '?' part
  bool has_fragment = false;  // a '#' part
};

// kInvalidArgument (message without the URL: it may carry credentials) for anything
// libcurl does not parse as an absolute URL, another scheme, no host or a bad port.
Result<HttpUrl> ParseHttpUrl(std::string_view text);

}  // namespace machub::cloud
