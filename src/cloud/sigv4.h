#pragma once
// AWS Signature Version 4, written for S3's rules: the path is URI-encoded exactly once
// and never normalized; query keys and values are encoded (RFC 3986 unreserved kept,
// '/' as %2F); x-amz-content-sha256 carries the payload's SHA-256 and is signed.
// Pure functions (no I/O, no clock): the caller passes the time.

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/sha256.h"
#include "core/status.h"

namespace machub::cloud {

struct Credentials {
  std::string access_key_id;
  std::string secret_access_key;
  std::string session_token;  // empty when none
  int64_t expires_at_ms = 0;  // 0: does not expire
};

struct SigningRequest {
  std::string method;  // "PUT"
  // Path exactly as it will be sent, already percent-encoded for the wire
  // ("/bucket/sales/store%3DS001/x.gz"); signing does not encode or normalize it again
  // unless `encode_path` is set (the generic, non-S3 vectors double-encode).
  std::string path;
  // Query parameters, NOT encoded (signing encodes them).
  std::vector<std::pair<std::string, std::string>> query;
  // Headers to sign (name as given; signing lower-cases and trims values). Must include
  // "host". Signing adds x-amz-date, x-amz-content-sha256 (S3) and
  // x-amz-security-token when the credentials have a session token.
  std::vector<std::pair<std::string, std::string>> headers;
  // Hex SHA-256 of the body, or "UNSIGNED-PAYLOAD" (any literal the service accepts is
  // signed as given). Empty: SignRequest uses the hash of an empty body, PresignQuery
  // "UNSIGNED-PAYLOAD".
  std::string payload_sha256_hex;
};

struct SigningParams {
  std::string region = "us-east-1";
  std::string service = "s3";
  int64_t time_ms = 0;             // signing time (already corrected for clock skew)
  bool add_content_sha256 = true;  // S3: add and sign x-amz-content-sha256
  bool encode_path = false;        // generic AWS services: encode each path segment again
  bool normalize_path = false;     // generic AWS services only; S3 never normalizes
  // The session token is sent (header or query) but left out of the signature; a few
  // non-S3 services want that. S3 signs it: keep false.
  bool omit_session_token = false;
  // Authorization parts separated by "," (the S3 docs' spelling) instead of ", " (what the
  // AWS SDKs send). Servers accept both; only matters for byte-exact comparisons.
  bool compact_authorization = false;
};

struct SignedRequest {
  std::string canonical_request;
  std::string string_to_sign;
  std::string signature;      // hex
  std::string authorization;  // value of the Authorization header
  // Headers the caller must send in addition to its own (x-amz-date, ...).
  std::vector<std::pair<std::string, std::string>> added_headers;
};

// Header-based signing. kInvalidArgument when "host" is missing, the credentials are empty,
// the method is empty, the path does not start with '/', or the headers contain
// "authorization". Headers that signing adds itself (x-amz-date; x-amz-content-sha256 when
// add_content_sha256; x-amz-security-token when the credentials carry a token) replace any
// the caller passed under the same name. Header values are signed trimmed, with inner runs
// of whitespace collapsed to one space; same-name headers are joined with ',' in the
// order given. Nothing here is logged; error messages never contain a secret.
Result<SignedRequest> SignRequest(const SigningRequest& request, const Credentials& creds,
                                  const SigningParams& params);

struct PresignedRequest {
  std::string canonical_request;
  std::string string_to_sign;
  std::string signature;  // hex
  // The whole query string, encoded, without the leading '?': the request's own query
  // parameters and the X-Amz-* ones in canonical (sorted) order, then X-Amz-Signature
  // (then X-Amz-Security-Token when omit_session_token).
  std::string query;
};

// Query-string signing (presigned URL). Signed headers are the request's headers (at least
// "host"); nothing is added to the headers, add_content_sha256 is ignored. The session
// token, when any, goes into X-Amz-Security-Token. kInvalidArgument as for SignRequest, for
// `expires_s` outside 1..604800, or when the query already holds an X-Amz-Algorithm,
// -Credential, -Date, -Expires, -SignedHeaders, -Signature or -Security-Token parameter.
Result<PresignedRequest> Presign(const SigningRequest& request, const Credentials& creds,
                                 const SigningParams& params, int64_t expires_s);

// A presigned URL's query string (X-Amz-Algorithm ... X-Amz-Signature), encoded, to append
// after '?' to the path. `expires_s` 1..604800. Same as Presign(...).query.
Result<std::string> PresignQuery(const SigningRequest& request, const Credentials& creds,
                                 const SigningParams& params, int64_t expires_s);

// RFC 3986 encoding as SigV4 wants it (unreserved A-Z a-z 0-9 - . _ ~ kept; '/' kept only
// when encode_slash is false).
std::string UriEncode(std::string_view text, bool encode_slash);

// "20150830T123600Z" for a time (UTC, years 0000..9999).
std::string AmzDate(int64_t time_ms);

// Lower-case hex SHA-256 of `data`, as x-amz-content-sha256 wants it.
using core::Sha256Hex;  // core/sha256.h

}  // namespace machub::cloud
