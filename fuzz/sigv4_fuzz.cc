// Fuzz target: SigV4 canonicalization of arbitrary methods, paths, queries and headers
// (cloud::SignRequest, Presign, PresignQuery, UriEncode). Must never crash; the query
// part of every canonical request, and every presigned query string, may hold only
// RFC 3986 unreserved characters, '%XX' escapes (upper-case hex) and the '=' / '&'
// separators: a raw byte there means a value was not encoded.

#include <fuzzer/FuzzedDataProvider.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "cloud/sigv4.h"
#include "fuzz_check.h"

namespace {

using machub::fuzz::Check;

bool IsUnreserved(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
         c == '.' || c == '_' || c == '~';
}
bool IsUpperHex(char c) { return (c >= '0' && c <= '9') || (c >= 'A' && c <= 'F'); }

// Only unreserved characters and %XX escapes, plus the characters in `separators`.
bool WellEncoded(std::string_view s, std::string_view separators) {
  for (size_t i = 0; i < s.size(); ++i) {
    const char c = s[i];
    if (IsUnreserved(c) || separators.find(c) != std::string_view::npos) continue;
    if (c == '%' && i + 2 < s.size() && IsUpperHex(s[i + 1]) && IsUpperHex(s[i + 2])) {
      i += 2;
      continue;
    }
    return false;
  }
  return true;
}

// The canonical query string: the third line of the canonical request. Only meaningful
// when the method and path hold no line break (the caller's responsibility).
std::string_view QueryLine(std::string_view canonical) {
  size_t a = canonical.find('\n');
  size_t b = a == std::string_view::npos ? a : canonical.find('\n', a + 1);
  size_t c = b == std::string_view::npos ? b : canonical.find('\n', b + 1);
  Check(c != std::string_view::npos, "canonical request has fewer than 3 lines");
  return canonical.substr(b + 1, c - b - 1);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace machub::cloud;
  FuzzedDataProvider in(data, size);
  SigningRequest request;
  request.method = in.ConsumeRandomLengthString(16);
  request.path = in.ConsumeRandomLengthString(128);
  const int queries = in.ConsumeIntegralInRange<int>(0, 6);
  for (int i = 0; i < queries; ++i) {
    std::string key = in.ConsumeRandomLengthString(32);
    request.query.emplace_back(std::move(key), in.ConsumeRandomLengthString(64));
  }
  request.headers.emplace_back(in.ConsumeBool() ? "host" : "Host",
                               in.ConsumeRandomLengthString(64));
  const int headers = in.ConsumeIntegralInRange<int>(0, 4);
  for (int i = 0; i < headers; ++i) {
    std::string name = in.ConsumeRandomLengthString(24);
    request.headers.emplace_back(std::move(name), in.ConsumeRandomLengthString(64));
  }
  if (in.ConsumeBool()) request.payload_sha256_hex = in.ConsumeRandomLengthString(64);

  Credentials creds;
  creds.access_key_id = in.ConsumeBool() ? "AKIDEXAMPLE" : in.ConsumeRandomLengthString(24);
  creds.secret_access_key = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";
  if (in.ConsumeBool()) creds.session_token = in.ConsumeRandomLengthString(48);

  SigningParams params;
  if (in.ConsumeBool()) params.region = in.ConsumeRandomLengthString(16);
  if (in.ConsumeBool()) params.service = in.ConsumeRandomLengthString(16);
  params.time_ms = in.ConsumeIntegralInRange<int64_t>(0, 253'402'300'799'999);
  params.add_content_sha256 = in.ConsumeBool();
  params.encode_path = in.ConsumeBool();
  params.normalize_path = in.ConsumeBool();
  params.omit_session_token = in.ConsumeBool();
  params.compact_authorization = in.ConsumeBool();
  const int64_t expires_s = in.ConsumeIntegralInRange<int64_t>(-10, 700'000);

  const bool plain_lines = request.method.find('\n') == std::string::npos &&
                           request.path.find('\n') == std::string::npos;

  auto signed_request = SignRequest(request, creds, params);
  if (signed_request.ok()) {
    Check(signed_request->signature.size() == 64, "signature is not 64 hex digits");
    if (plain_lines) {
      Check(WellEncoded(QueryLine(signed_request->canonical_request), "=&"),
            "raw byte in the canonical query (SignRequest)");
    }
  }
  auto presigned = Presign(request, creds, params, expires_s);
  if (presigned.ok()) {
    Check(presigned->signature.size() == 64, "presigned signature is not 64 hex digits");
    Check(WellEncoded(presigned->query, "=&"), "raw byte in the presigned query");
    if (plain_lines) {
      Check(WellEncoded(QueryLine(presigned->canonical_request), "=&"),
            "raw byte in the canonical query (Presign)");
    }
    auto query = PresignQuery(request, creds, params, expires_s);
    Check(query.ok() && *query == presigned->query, "PresignQuery differs from Presign");
  }
  for (const auto& [key, value] : request.query) {
    Check(WellEncoded(UriEncode(key, true), ""), "UriEncode(encode_slash) left a raw byte");
    Check(WellEncoded(UriEncode(value, false), "/"), "UriEncode left a raw byte");
  }
  AmzDate(params.time_ms);
  return 0;
}
