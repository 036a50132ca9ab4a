#pragma once
// A minimal blocking HTTP(S) client for the CLI (`machub status --url`), on Beast/Asio,
// and the URL parsing shared with the load generator.
//
// Thread-safety: HttpGet may be called from any thread; each call has its own io_context.
// Errors: kInvalidArgument for a malformed URL, kUnavailable when the peer cannot be
// reached or does not answer in time (message says which), kIoError for TLS setup
// problems. A non-2xx answer is not an error: it is returned with its status.

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/status.h"

namespace machub::app {

struct Url {
  bool https = false;
  std::string host;  // without brackets ("::1")
  std::string port;  // "8080"; the scheme's default when absent
  std::string path;  // without a trailing '/': "" for "http://h:1/", "/hub" for ".../hub/"

  // Value for the Host header: "127.0.0.1:8080", "[::1]:8080".
  std::string HostHeader() const;
};

// "http://HOST[:PORT][/PATH]" or "https://...". HOST may be "[v6]".
Result<Url> ParseUrl(std::string_view text);

struct HttpClientOptions {
  int64_t timeout_ms = 5000;  // whole exchange: connect, TLS, request and answer
  std::string ca_file;        // https: trust this PEM file (else the system store)
  bool insecure = false;      // https: skip certificate and host name verification
};

struct HttpAnswer {
  int status = 0;
  std::string body;
};

// GET url.path + target, with extra headers (e.g. Authorization).
Result<HttpAnswer> HttpGet(const Url& url, std::string_view target,
                           const std::vector<std::pair<std::string, std::string>>& headers,
                           const HttpClientOptions& options);

}  // namespace machub::app
