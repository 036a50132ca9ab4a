#pragma once
// What libcurl hands back for one request, as the S3 and DynamoDB clients keep it: the
// body up to a limit and the last response's headers. Internal to src/cloud; the
// callbacks run on the thread that runs curl_easy_perform.

#include <cstddef>
#include <map>
#include <string>

namespace machub::cloud::internal {

struct CurlResponse {
  std::string body;
  // Lower-case names, trimmed values; only the last response's (after a 100 Continue).
  std::map<std::string, std::string> headers;
  size_t max_bytes = 0;
  bool too_large = false;  // the body passed max_bytes: the transfer was aborted
};

// CURLOPT_WRITEFUNCTION, with CURLOPT_WRITEDATA a CurlResponse*: appends to the body; past
// max_bytes it sets too_large and aborts the transfer (CURLE_WRITE_ERROR).
size_t CurlWriteBody(char* data, size_t size, size_t nmemb, void* response);

// CURLOPT_HEADERFUNCTION, with CURLOPT_HEADERDATA a CurlResponse*: a status line starts a
// new response and drops the headers of the previous one.
size_t CurlWriteHeader(char* data, size_t size, size_t nmemb, void* response);

}  // namespace machub::cloud::internal
