#include "cloud/sigv4.h"

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <algorithm>
#include <cstdlib>
#include <map>

#include "core/sha256.h"
#include "core/strings.h"
#include "core/time_format.h"

namespace machub::cloud {
namespace {

constexpr std::string_view kAlgorithm = "AWS4-HMAC-SHA256";
constexpr std::string_view kUnsignedPayload = "UNSIGNED-PAYLOAD";
constexpr int64_t kMaxPresignSeconds = 7 * 24 * 3600;

bool IsSpace(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; }

// SigV4 "Trimall": no leading/trailing whitespace, inner runs become one space. Folded
// (multi-line) header values arrive here with their line breaks and collapse the same way.
std::string TrimAll(std::string_view value) {
  std::string out;
  out.reserve(value.size());
  bool pending_space = false;
  for (char c : value) {
    if (IsSpace(c)) {
      pending_space = !out.empty();
      continue;
    }
    if (pending_space) out.push_back(' ');
    pending_space = false;
    out.push_back(c);
  }
  return out;
}

std::string Hmac(std::string_view key, std::string_view data) {
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  // One-shot HMAC() is not deprecated in OpenSSL 3 and cannot fail with SHA-256 unless the
  // library is broken; abort then, as core/sha256 does, rather than sign garbage.
  if (HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
           reinterpret_cast<const unsigned char*>(data.data()), data.size(), out,
           &len) == nullptr) {
    std::abort();
  }
  return std::string(reinterpret_cast<const char*>(out), len);
}

std::string SigningKey(const Credentials& creds, std::string_view date,
                       const SigningParams& params) {
  std::string key = Hmac("AWS4" + creds.secret_access_key, date);
  key = Hmac(key, params.region);
  key = Hmac(key, params.service);
  return Hmac(key, "aws4_request");
}

// Generic (non-S3) services canonicalize "/a/./b/../c//" to "/a/c/"; S3 object keys may
// legitimately contain such segments, which is why S3 mode never calls this.
std::string NormalizePath(std::string_view path) {
  std::vector<std::string_view> segments;
  size_t pos = 0;
  while (pos <= path.size()) {
    size_t next = path.find('/', pos);
    if (next == std::string_view::npos) next = path.size();
    std::string_view seg = path.substr(pos, next - pos);
    if (seg == "..") {
      if (!segments.empty()) segments.pop_back();
    } else if (!seg.empty() && seg != ".") {
      segments.push_back(seg);
    }
    pos = next + 1;
  }
  std::string out;
  for (std::string_view seg : segments) {
    out.push_back('/');
    out.append(seg);
  }
  if (out.empty()) return "/";
  if (!path.empty() && path.back() == '/') out.push_back('/');
  return out;
}

std::string CanonicalUri(const SigningRequest& request, const SigningParams& params) {
  std::string path = request.path;
  if (params.normalize_path) path = NormalizePath(path);
  if (params.encode_path) path = UriEncode(path, /*encode_slash=*/false);
  return path;
}

std::string CanonicalQuery(const std::vector<std::pair<std::string, std::string>>& query) {
  std::vector<std::pair<std::string, std::string>> encoded;
  encoded.reserve(query.size());
  for (const auto& [key, value] : query) {
    encoded.emplace_back(UriEncode(key, true), UriEncode(value, true));
  }
  // Sorted by encoded key, then encoded value (byte order), as the spec asks.
  std::sort(encoded.begin(), encoded.end());
  std::string out;
  for (const auto& [key, value] : encoded) {
    if (!out.empty()) out.push_back('&');
    out.append(key);
    out.push_back('=');
    out.append(value);
  }
  return out;
}

struct CanonicalHeaders {
  std::string block;         // "name:value\n" per header
  std::string signed_names;  // "host;x-amz-date"
};

CanonicalHeaders BuildCanonicalHeaders(
    const std::vector<std::pair<std::string, std::string>>& headers) {
  std::map<std::string, std::string> merged;  // sorted by lower-case name
  for (const auto& [name, value] : headers) {
    std::string key = core::AsciiLower(TrimAll(name));
    auto [it, inserted] = merged.try_emplace(key, TrimAll(value));
    if (!inserted) {
      it->second.push_back(',');
      it->second.append(TrimAll(value));
    }
  }
  CanonicalHeaders out;
  for (const auto& [name, value] : merged) {
    out.block.append(name).append(":").append(value).append("\n");
    if (!out.signed_names.empty()) out.signed_names.push_back(';');
    out.signed_names.append(name);
  }
  return out;
}

bool HasHeader(const std::vector<std::pair<std::string, std::string>>& headers,
               std::string_view lower_name) {
  return std::any_of(headers.begin(), headers.end(), [&](const auto& h) {
    return core::AsciiLower(TrimAll(h.first)) == lower_name;
  });
}

Status Validate(const SigningRequest& request, const Credentials& creds) {
  if (creds.access_key_id.empty() || creds.secret_access_key.empty()) {
    return Status(ErrorCode::kInvalidArgument, "sigv4: empty access key id or secret key");
  }
  if (request.method.empty()) {
    return Status(ErrorCode::kInvalidArgument, "sigv4: empty method");
  }
  if (request.path.empty() || request.path.front() != '/') {
    return Status(ErrorCode::kInvalidArgument, "sigv4: path must start with '/'");
  }
  if (!HasHeader(request.headers, "host")) {
    return Status(ErrorCode::kInvalidArgument, "sigv4: the headers must include host");
  }
  if (HasHeader(request.headers, "authorization")) {
    return Status(ErrorCode::kInvalidArgument, "sigv4: an Authorization header cannot be signed");
  }
  return Status::Ok();
}

// The caller's headers minus those signing sets itself (the signer's value wins; two
// x-amz-date headers would make the canonical request disagree with what S3 sees).
std::vector<std::pair<std::string, std::string>> HeadersWithout(
    const std::vector<std::pair<std::string, std::string>>& headers,
    const std::vector<std::string_view>& lower_names) {
  std::vector<std::pair<std::string, std::string>> out;
  for (const auto& h : headers) {
    const std::string name = core::AsciiLower(TrimAll(h.first));
    if (std::find(lower_names.begin(), lower_names.end(), name) == lower_names.end()) {
      out.push_back(h);
    }
  }
  return out;
}

struct Signature {
  std::string canonical_request;
  std::string string_to_sign;
  std::string signature;
};

Signature Sign(const std::string& method, const std::string& canonical_uri,
               const std::string& canonical_query, const CanonicalHeaders& headers,
               const std::string& payload, const Credentials& creds, std::string_view amz_date,
               const std::string& scope, const SigningParams& params) {
  Signature out;
  out.canonical_request = method + "\n" + canonical_uri + "\n" + canonical_query + "\n" +
                          headers.block + "\n" + headers.signed_names + "\n" + payload;
  out.string_to_sign = std::string(kAlgorithm) + "\n" + std::string(amz_date) + "\n" + scope +
                       "\n" + Sha256Hex(out.canonical_request);
  out.signature =
      core::ToHex(Hmac(SigningKey(creds, amz_date.substr(0, 8), params), out.string_to_sign));
  return out;
}

std::string Scope(std::string_view amz_date, const SigningParams& params) {
  return std::string(amz_date.substr(0, 8)) + "/" + params.region + "/" + params.service +
         "/aws4_request";
}

}  // namespace

std::string UriEncode(std::string_view text, bool encode_slash) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(text.size() * 3);
  for (char ch : text) {
    const auto c = static_cast<unsigned char>(ch);
    const bool unreserved = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
                            (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_' || c == '~';
    if (unreserved || (c == '/' && !encode_slash)) {
      out.push_back(ch);
    } else {
      out.push_back('%');
      out.push_back(kHex[c >> 4]);
      out.push_back(kHex[c & 0x0f]);
    }
  }
  return out;
}

std::string AmzDate(int64_t time_ms) {
  // "2015-08-30T12:36:00.000Z" -> "20150830T123600Z"; time_format owns the calendar maths.
  const std::string t = core::FormatRfc3339(time_ms);
  return t.substr(0, 4) + t.substr(5, 2) + t.substr(8, 2) + "T" + t.substr(11, 2) +
         t.substr(14, 2) + t.substr(17, 2) + "Z";
}

Result<SignedRequest> SignRequest(const SigningRequest& request, const Credentials& creds,
                                  const SigningParams& params) {
  RETURN_IF_ERROR(Validate(request, creds));
  const std::string amz_date = AmzDate(params.time_ms);
  const std::string scope = Scope(amz_date, params);
  const std::string payload =
      request.payload_sha256_hex.empty() ? Sha256Hex("") : request.payload_sha256_hex;
  const bool has_token = !creds.session_token.empty();

  std::vector<std::string_view> managed = {"x-amz-date"};
  if (params.add_content_sha256) managed.emplace_back("x-amz-content-sha256");
  if (has_token) managed.emplace_back("x-amz-security-token");
  std::vector<std::pair<std::string, std::string>> signed_headers =
      HeadersWithout(request.headers, managed);

  SignedRequest out;
  out.added_headers.emplace_back("x-amz-date", amz_date);
  if (params.add_content_sha256) out.added_headers.emplace_back("x-amz-content-sha256", payload);
  for (const auto& h : out.added_headers) signed_headers.push_back(h);
  if (has_token) {
    out.added_headers.emplace_back("x-amz-security-token", creds.session_token);
    if (!params.omit_session_token) signed_headers.push_back(out.added_headers.back());
  }

  const CanonicalHeaders headers = BuildCanonicalHeaders(signed_headers);
  Signature sig = Sign(request.method, CanonicalUri(request, params), CanonicalQuery(request.query),
                       headers, payload, creds, amz_date, scope, params);
  const char* sep = params.compact_authorization ? "," : ", ";
  out.authorization = std::string(kAlgorithm) + " Credential=" + creds.access_key_id + "/" + scope +
                      sep + "SignedHeaders=" + headers.signed_names + sep +
                      "Signature=" + sig.signature;
  out.canonical_request = std::move(sig.canonical_request);
  out.string_to_sign = std::move(sig.string_to_sign);
  out.signature = std::move(sig.signature);
  return out;
}

Result<PresignedRequest> Presign(const SigningRequest& request, const Credentials& creds,
                                 const SigningParams& params, int64_t expires_s) {
  RETURN_IF_ERROR(Validate(request, creds));
  if (expires_s < 1 || expires_s > kMaxPresignSeconds) {
    return Status(ErrorCode::kInvalidArgument, "sigv4: presign expiry must be 1..604800 s");
  }
  static constexpr std::string_view kReserved[] = {
      "x-amz-algorithm",     "x-amz-credential", "x-amz-date",          "x-amz-expires",
      "x-amz-signedheaders", "x-amz-signature",  "x-amz-security-token"};
  for (const auto& [key, value] : request.query) {
    const std::string lower = core::AsciiLower(key);
    if (std::find(std::begin(kReserved), std::end(kReserved), lower) != std::end(kReserved)) {
      return Status(ErrorCode::kInvalidArgument,
                    "sigv4: the query already holds the presign parameter " + key);
    }
  }
  const std::string amz_date = AmzDate(params.time_ms);
  const std::string scope = Scope(amz_date, params);
  const std::string payload = request.payload_sha256_hex.empty() ? std::string(kUnsignedPayload)
                                                                 : request.payload_sha256_hex;
  const bool has_token = !creds.session_token.empty();

  std::vector<std::string_view> managed = {"x-amz-date"};
  if (has_token) managed.emplace_back("x-amz-security-token");
  const CanonicalHeaders headers = BuildCanonicalHeaders(HeadersWithout(request.headers, managed));

  std::vector<std::pair<std::string, std::string>> query = request.query;
  query.emplace_back("X-Amz-Algorithm", std::string(kAlgorithm));
  query.emplace_back("X-Amz-Credential", creds.access_key_id + "/" + scope);
  query.emplace_back("X-Amz-Date", amz_date);
  query.emplace_back("X-Amz-Expires", std::to_string(expires_s));
  query.emplace_back("X-Amz-SignedHeaders", headers.signed_names);
  if (has_token && !params.omit_session_token) {
    query.emplace_back("X-Amz-Security-Token", creds.session_token);
  }
  const std::string canonical_query = CanonicalQuery(query);

  Signature sig = Sign(request.method, CanonicalUri(request, params), canonical_query, headers,
                       payload, creds, amz_date, scope, params);
  PresignedRequest out;
  out.query = canonical_query + "&X-Amz-Signature=" + sig.signature;
  if (has_token && params.omit_session_token) {
    out.query += "&X-Amz-Security-Token=" + UriEncode(creds.session_token, true);
  }
  out.canonical_request = std::move(sig.canonical_request);
  out.string_to_sign = std::move(sig.string_to_sign);
  out.signature = std::move(sig.signature);
  return out;
}

Result<std::string> PresignQuery(const SigningRequest& request, const Credentials& creds,
                                 const SigningParams& params, int64_t expires_s) {
  ASSIGN_OR_RETURN(PresignedRequest presigned, Presign(request, creds, params, expires_s));
  return std::move(presigned.query);
}

}  // namespace machub::cloud
