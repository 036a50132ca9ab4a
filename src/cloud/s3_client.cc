#include "cloud/s3_client.h"

#include <curl/curl.h>
#include <openssl/evp.h>

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <cstring>
#include <map>
#include <mutex>
#include <utility>

#include "cloud/curl_response.h"
#include "cloud/s3_xml.h"
#include "cloud/sigv4.h"
#include "core/log.h"
#include "core/sha256.h"
#include "core/strings.h"
#include "core/time_format.h"

namespace machub::cloud {

struct S3Client::Request {
  std::string method;                                        // GET | PUT | HEAD
  std::string path;                                          // encoded, exactly as sent and signed
  std::vector<std::pair<std::string, std::string>> query;    // not encoded
  std::vector<std::pair<std::string, std::string>> headers;  // sent and signed (no host)
  const std::string* body = nullptr;                         // PUT only
  std::string payload_sha256;
  std::string op;   // labels for messages: "PUT", "HEAD", ...
  std::string key;  // the caller's key ("" for bucket operations)
};

struct S3Client::Response {
  int status = 0;  // 0: no HTTP answer
  int curl_code = CURLE_OK;
  std::string curl_error;
  std::map<std::string, std::string> headers;  // lower-case names, last response only
  std::string body;
  bool body_too_large = false;
  std::string s3_code;     // <Code> of an error body
  std::string s3_message;  // <Message> of an error body
};

namespace {

constexpr int64_t kHeadSkewThresholdMs = 10 * 60 * 1000;
constexpr size_t kMaxMetadataBytes = 2048;  // S3's limit for all x-amz-meta-* together

void GlobalInitOnce() {
  // curl_global_init is not thread-safe on every libcurl build: do it once, early.
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

std::string Base64(std::string_view raw) {
  std::string out(4 * ((raw.size() + 2) / 3) + 1, '\0');
  int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                          reinterpret_cast<const unsigned char*>(raw.data()),
                          static_cast<int>(raw.size()));
  out.resize(static_cast<size_t>(n));
  return out;
}

std::string Unquote(std::string_view etag) {
  etag = core::TrimWhitespace(etag);
  if (etag.size() >= 2 && etag.front() == '"' && etag.back() == '"') {
    etag = etag.substr(1, etag.size() - 2);
  }
  return std::string(etag);
}

bool IsDnsSafeBucket(const std::string& bucket) {
  for (char c : bucket) {
    if (!(std::islower(static_cast<unsigned char>(c)) ||
          std::isdigit(static_cast<unsigned char>(c)) || c == '-')) {
      return false;
    }
  }
  return true;
}

const std::string& EmptySha256() {
  static const std::string kHex = core::ToHex(core::Sha256(""));
  return kHex;
}

bool IsOneOf(const std::string& code, std::initializer_list<const char*> codes) {
  for (const char* c : codes) {
    if (code == c) return true;
  }
  return false;
}

bool IsCredentialExpiry(const std::string& code) {
  return IsOneOf(code, {"ExpiredToken", "InvalidToken", "TokenRefreshRequired"});
}

// A PUT's body as libcurl reads it (and seeks in it, to send it again after a redirect or
// an auth retry).
struct Upload {
  const std::string* body = nullptr;
  size_t pos = 0;
};

size_t ReadUpload(char* buffer, size_t size, size_t nitems, void* user) {
  auto* u = static_cast<Upload*>(user);
  size_t n = std::min(size * nitems, u->body->size() - u->pos);
  // Bytes, not a C string: no terminator is wanted.
  std::memcpy(buffer, u->body->data() + u->pos, n);  // NOLINT(bugprone-not-null-terminated-result)
  u->pos += n;
  return n;
}

// What the progress callback watches: the stop flag and the stall watch (either may be
// null), and the bytes moved so far (to tell progress from silence).
struct ProgressState {
  const std::atomic<bool>* cancel = nullptr;
  RequestWatch* watch = nullptr;
  curl_off_t moved = 0;
};

int ProgressCheck(void* user, curl_off_t, curl_off_t dlnow, curl_off_t, curl_off_t ulnow) {
  auto* p = static_cast<ProgressState*>(user);
  if (p->cancel != nullptr && p->cancel->load()) return 1;
  if (p->watch != nullptr) {
    if (dlnow + ulnow != p->moved) {
      p->moved = dlnow + ulnow;
      p->watch->Moved();
    }
    if (p->watch->ShouldAbort()) return 1;
  }
  return 0;
}

int SeekUpload(void* user, curl_off_t offset, int origin) {
  auto* u = static_cast<Upload*>(user);
  if (origin != SEEK_SET || offset < 0 || static_cast<size_t>(offset) > u->body->size()) {
    return CURL_SEEKFUNC_CANTSEEK;
  }
  u->pos = static_cast<size_t>(offset);
  return CURL_SEEKFUNC_OK;
}

}  // namespace

namespace {

Status MapS3ErrorKind(const std::string& op, const std::string& key, int http_status,
                      const std::string& s3_code, const std::string& s3_message, int curl_code,
                      const std::string& curl_error) {
  std::string what = "S3 " + op + (key.empty() ? std::string() : " " + key);
  if (curl_code != CURLE_OK) {
    std::string msg = what + ": " + curl_easy_strerror(static_cast<CURLcode>(curl_code));
    // The curl error buffer names hosts, ports and timings, never headers.
    if (!curl_error.empty()) msg += " (" + curl_error + ")";
    switch (curl_code) {
      case CURLE_URL_MALFORMAT:
      case CURLE_UNSUPPORTED_PROTOCOL:
      case CURLE_NOT_BUILT_IN:
        return Status(ErrorCode::kInvalidArgument, msg);
      case CURLE_OUT_OF_MEMORY:
      case CURLE_BAD_FUNCTION_ARGUMENT:
      case CURLE_UNKNOWN_OPTION:
        return Status(ErrorCode::kInternal, msg);
      default:
        // Connect, resolve, TLS, send/receive, timeouts, empty answers: the path to the
        // store is broken now and may heal; the uploader retries with backoff.
        return Status(ErrorCode::kUnavailable, msg);
    }
  }
  std::string msg = what + ": HTTP " + std::to_string(http_status);
  if (!s3_code.empty()) msg += " " + s3_code;
  // The S3 <Message> is a fixed sentence per code; auth errors get none (their bodies
  // also carry the string to sign, which stays out of logs).
  if (!s3_message.empty() && http_status != 403) msg += ": " + s3_message.substr(0, 200);

  if (IsCredentialExpiry(s3_code)) return Status(ErrorCode::kUnavailable, msg);
  if (IsOneOf(s3_code, {"RequestTimeTooSkewed", "RequestTimeout", "SlowDown", "ServiceUnavailable",
                        "InternalError", "OperationAborted", "ConditionalRequestConflict",
                        "RequestThrottled"})) {
    return Status(ErrorCode::kUnavailable, msg);
  }
  if (IsOneOf(s3_code, {"SignatureDoesNotMatch", "InvalidAccessKeyId", "AccessDenied",
                        "AccountProblem", "AllAccessDisabled", "InvalidSecurity"})) {
    return Status(ErrorCode::kUnauthorized, msg);
  }
  if (http_status == 403) return Status(ErrorCode::kUnauthorized, msg);
  if (http_status == 404) return Status(ErrorCode::kNotFound, msg);
  if (http_status == 307 || http_status == 408 || http_status == 409 || http_status == 429) {
    return Status(ErrorCode::kUnavailable, msg);
  }
  if (http_status == 501) return Status(ErrorCode::kInvalidArgument, msg);
  if (http_status >= 500 || http_status == 0) return Status(ErrorCode::kUnavailable, msg);
  if (http_status >= 300 && http_status < 500) return Status(ErrorCode::kInvalidArgument, msg);
  return Status(ErrorCode::kInternal, msg + " (unexpected answer)");
}

}  // namespace

Status MapS3Error(const std::string& op, const std::string& key, int http_status,
                  const std::string& s3_code, const std::string& s3_message, int curl_code,
                  const std::string& curl_error) {
  Status status = MapS3ErrorKind(op, key, http_status, s3_code, s3_message, curl_code, curl_error);
  // The same facts as structure, for readers that act on them (the uploader's status
  // line): never parsed back out of the message.
  if (curl_code != CURLE_OK) {
    std::string transport = curl_easy_strerror(static_cast<CURLcode>(curl_code));
    if (!curl_error.empty()) transport += " (" + curl_error + ")";
    status.AddDetail("transport", std::move(transport));
  } else {
    status.AddDetail("http_status", std::to_string(http_status));
    if (!s3_code.empty()) status.AddDetail("cloud_code", s3_code);
  }
  return status;
}

S3Client::S3Client(S3Options options)
    : options_(std::move(options)),
      clock_(options_.clock != nullptr ? options_.clock : &core::SystemClock()) {}

S3Client::~S3Client() {
  if (curl_ != nullptr) curl_easy_cleanup(static_cast<CURL*>(curl_));
}

Result<std::unique_ptr<S3Client>> S3Client::Create(S3Options options) {
  if (options.bucket.size() < 3 || options.bucket.size() > 63 ||
      options.bucket.find('/') != std::string::npos) {
    return Status(ErrorCode::kInvalidArgument, "S3 bucket name must have 3 to 63 characters",
                  "bucket");
  }
  if (options.region.empty()) {
    return Status(ErrorCode::kInvalidArgument, "S3 region is empty", "region");
  }
  if (options.credentials == nullptr) {
    return Status(ErrorCode::kInvalidArgument, "S3 client needs a credentials provider");
  }
  while (!options.prefix.empty() && options.prefix.back() == '/') options.prefix.pop_back();
  while (!options.prefix.empty() && options.prefix.front() == '/') options.prefix.erase(0, 1);
  bool default_endpoint = options.endpoint.empty();
  if (default_endpoint) options.endpoint = "https://s3." + options.region + ".amazonaws.com";
  while (!options.endpoint.empty() && options.endpoint.back() == '/') options.endpoint.pop_back();

  std::string scheme, host;
  size_t sep = options.endpoint.find("://");
  if (sep != std::string::npos) {
    scheme = core::AsciiLower(options.endpoint.substr(0, sep));
    host = options.endpoint.substr(sep + 3);
  }
  if ((scheme != "http" && scheme != "https") || host.empty() ||
      host.find_first_of("/?#@ ") != std::string::npos) {
    return Status(ErrorCode::kInvalidArgument,
                  "S3 endpoint must look like http(s)://host[:port]: " + options.endpoint,
                  "endpoint");
  }
  bool virtual_hosted = false;
  switch (options.addressing) {
    case S3Addressing::kPathStyle:
      break;
    case S3Addressing::kVirtualHosted:
      virtual_hosted = true;
      break;
    case S3Addressing::kAuto:
      // Dotted names break the TLS wildcard *.s3.<region>.amazonaws.com.
      virtual_hosted = default_endpoint && IsDnsSafeBucket(options.bucket);
      break;
  }
  if (virtual_hosted && !IsDnsSafeBucket(options.bucket) &&
      options.bucket.find('.') == std::string::npos) {
    return Status(ErrorCode::kInvalidArgument,
                  "S3 bucket name is not usable in a host name: use path-style addressing",
                  "bucket");
  }

  GlobalInitOnce();
  CURL* curl = curl_easy_init();
  if (curl == nullptr) return Status(ErrorCode::kInternal, "curl_easy_init failed");
  std::unique_ptr<S3Client> client(new S3Client(std::move(options)));
  client->curl_ = curl;
  client->scheme_ = scheme;
  client->virtual_hosted_ = virtual_hosted;
  client->host_ = virtual_hosted ? client->options_.bucket + "." + host : host;
  return client;
}

std::string S3Client::Describe() const {
  return "s3://" + options_.bucket + (options_.prefix.empty() ? "" : "/" + options_.prefix);
}

std::string S3Client::FullKey(const std::string& key) const {
  return options_.prefix.empty() ? key : options_.prefix + "/" + key;
}

std::string S3Client::ObjectPath(const std::string& full_key) const {
  std::string encoded = UriEncode(full_key, /*encode_slash=*/false);
  return virtual_hosted_ ? "/" + encoded : "/" + options_.bucket + "/" + encoded;
}

std::string S3Client::BucketPath() const { return virtual_hosted_ ? "/" : "/" + options_.bucket; }

Result<S3Client::Response> S3Client::Execute(const Request& request) {
  ASSIGN_OR_RETURN(Credentials creds, options_.credentials->Get());
  ASSIGN_OR_RETURN(Response response, PerformOnce(request, creds));
  if (response.status != 403) return response;

  // Clock skew: learn server time - local time from the answer and try once more.
  bool skewed = response.s3_code == "RequestTimeTooSkewed";
  int64_t local_ms = clock_->NowMs();
  int64_t server_ms = 0;
  auto date = response.headers.find("date");
  if (date != response.headers.end()) {
    time_t t = curl_getdate(date->second.c_str(), nullptr);
    if (t > 0) server_ms = static_cast<int64_t>(t) * 1000;
  }
  if (server_ms == 0 && skewed) {
    Result<int64_t> parsed = core::ParseRfc3339(FirstElement(response.body, "ServerTime"));
    if (parsed.ok()) server_ms = *parsed;
  }
  int64_t offset = server_ms - local_ms;
  if (!skewed && request.method == "HEAD" && response.s3_code.empty() && server_ms != 0 &&
      std::llabs(offset - clock_offset_ms_.load()) > kHeadSkewThresholdMs) {
    skewed = true;  // HEAD answers carry no body, so no error code: the Date tells
  }
  if (!skewed || server_ms == 0) return response;
  clock_offset_ms_.store(offset);
  core::LogWarn("s3_clock_skew", {{"offset_ms", offset}, {"store", Describe()}});
  return PerformOnce(request, creds);
}

Result<S3Client::Response> S3Client::PerformOnce(const Request& request, const Credentials& creds) {
  SigningRequest sreq;
  sreq.method = request.method;
  sreq.path = request.path;
  sreq.query = request.query;
  sreq.headers = request.headers;
  sreq.headers.emplace_back("host", host_);
  sreq.payload_sha256_hex = request.payload_sha256;
  SigningParams params;
  params.region = options_.region;
  params.service = "s3";
  params.time_ms = clock_->NowMs() + clock_offset_ms_.load();
  ASSIGN_OR_RETURN(SignedRequest signed_request, SignRequest(sreq, creds, params));

  std::string url = scheme_ + "://" + host_ + request.path;
  for (size_t i = 0; i < request.query.size(); ++i) {
    url += (i == 0 ? "?" : "&");
    url += UriEncode(request.query[i].first, true) + "=" + UriEncode(request.query[i].second, true);
  }

  curl_slist* headers = nullptr;
  auto add_header = [&headers](const std::string& name, const std::string& value) {
    std::string line = name + ": " + value;
    curl_slist* next = curl_slist_append(headers, line.c_str());
    if (next != nullptr) headers = next;
  };
  add_header("Host", host_);
  for (const auto& [name, value] : request.headers) add_header(name, value);
  for (const auto& [name, value] : signed_request.added_headers) add_header(name, value);
  add_header("Authorization", signed_request.authorization);
  // No "Expect: 100-continue" round trip, and no unsigned headers curl would invent.
  headers = curl_slist_append(headers, "Expect:");
  headers = curl_slist_append(headers, "Accept:");
  if (request.method == "PUT" &&
      request.headers.end() ==
          std::find_if(request.headers.begin(), request.headers.end(),
                       [](const auto& h) { return core::AsciiLower(h.first) == "content-type"; })) {
    headers = curl_slist_append(headers, "Content-Type:");
  }

  Response response;
  char error[CURL_ERROR_SIZE] = {0};
  internal::CurlResponse transfer;
  transfer.max_bytes = static_cast<size_t>(std::max<int64_t>(options_.max_get_bytes, 1 << 20));
  Upload upload{request.body};

  std::lock_guard<std::mutex> lock(mutex_);
  if (options_.cancel != nullptr && options_.cancel->load()) {
    curl_slist_free_all(headers);
    return Status(ErrorCode::kUnavailable, "S3 " + request.op + " " + request.key + ": cancelled");
  }
  CURL* curl = static_cast<CURL*>(curl_);
  // Reset keeps the connection cache: the next request reuses the kept-alive connection.
  curl_easy_reset(curl);
  curl_easy_setopt(curl, CURLOPT_URL, url.c_str());
  curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
  curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, error);
  curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(curl, CURLOPT_PATH_AS_IS, 1L);  // the path is signed exactly as sent
  curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(curl, CURLOPT_FOLLOWLOCATION, 0L);
  curl_easy_setopt(curl, CURLOPT_USERAGENT, "machub/" MACHUB_VERSION);
  curl_easy_setopt(curl, CURLOPT_TCP_KEEPALIVE, 1L);
  curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT_MS, static_cast<long>(options_.connect_timeout_ms));
  curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, static_cast<long>(options_.total_timeout_ms));
  if (options_.low_speed_limit_bytes > 0 && options_.low_speed_time_s > 0) {
    curl_easy_setopt(curl, CURLOPT_LOW_SPEED_LIMIT,
                     static_cast<long>(options_.low_speed_limit_bytes));
    curl_easy_setopt(curl, CURLOPT_LOW_SPEED_TIME, static_cast<long>(options_.low_speed_time_s));
  }
  if (!options_.ca_file.empty()) curl_easy_setopt(curl, CURLOPT_CAINFO, options_.ca_file.c_str());
  curl_slist* connect_to = nullptr;
  if (!options_.connect_to.empty()) {
    connect_to = curl_slist_append(nullptr, options_.connect_to.c_str());
    curl_easy_setopt(curl, CURLOPT_CONNECT_TO, connect_to);
  }
  if (fresh_connection_) curl_easy_setopt(curl, CURLOPT_FRESH_CONNECT, 1L);
  if (options_.max_send_bytes_per_s > 0) {
    curl_easy_setopt(curl, CURLOPT_MAX_SEND_SPEED_LARGE,
                     static_cast<curl_off_t>(options_.max_send_bytes_per_s));
  }
  ProgressState progress{options_.cancel, options_.watch, 0};
  uint64_t watched = 0;
  if (options_.cancel != nullptr || options_.watch != nullptr) {
    // Called about once a second and on every transfer step: a set flag (or an abort
    // through the watch) aborts the request (CURLE_ABORTED_BY_CALLBACK, mapped to
    // kUnavailable like a network failure).
    curl_easy_setopt(curl, CURLOPT_XFERINFOFUNCTION, ProgressCheck);
    curl_easy_setopt(curl, CURLOPT_XFERINFODATA, &progress);
    curl_easy_setopt(curl, CURLOPT_NOPROGRESS, 0L);
  }
  if (options_.watch != nullptr) watched = options_.watch->Begin();
  curl_easy_setopt(curl, CURLOPT_HEADERFUNCTION, internal::CurlWriteHeader);
  curl_easy_setopt(curl, CURLOPT_HEADERDATA, &transfer);
  curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, internal::CurlWriteBody);
  curl_easy_setopt(curl, CURLOPT_WRITEDATA, &transfer);
  if (request.method == "HEAD") {
    curl_easy_setopt(curl, CURLOPT_NOBODY, 1L);
  } else if (request.method == "PUT") {
    static const std::string kEmpty;
    if (upload.body == nullptr) upload.body = &kEmpty;
    curl_easy_setopt(curl, CURLOPT_UPLOAD, 1L);
    curl_easy_setopt(curl, CURLOPT_READFUNCTION, ReadUpload);
    curl_easy_setopt(curl, CURLOPT_READDATA, &upload);
    curl_easy_setopt(curl, CURLOPT_SEEKFUNCTION, SeekUpload);
    curl_easy_setopt(curl, CURLOPT_SEEKDATA, &upload);
    curl_easy_setopt(curl, CURLOPT_INFILESIZE_LARGE, static_cast<curl_off_t>(upload.body->size()));
  } else if (request.method == "GET") {
    curl_easy_setopt(curl, CURLOPT_HTTPGET, 1L);
  } else {
    curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, request.method.c_str());
  }

  CURLcode rc = curl_easy_perform(curl);
  const bool stall_aborted = options_.watch != nullptr && options_.watch->WasAborted(watched);
  if (options_.watch != nullptr) options_.watch->End();
  long status = 0;
  curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
  curl_slist_free_all(headers);
  curl_slist_free_all(connect_to);
  // Detach the stack buffer and callbacks before they go out of scope.
  curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, nullptr);
  curl_easy_setopt(curl, CURLOPT_NOPROGRESS, 1L);
  curl_easy_setopt(curl, CURLOPT_XFERINFODATA, nullptr);

  response.body = std::move(transfer.body);
  response.headers = std::move(transfer.headers);
  response.body_too_large = transfer.too_large;
  response.curl_code = rc;
  response.status = rc == CURLE_OK ? static_cast<int>(status) : 0;
  if (rc != CURLE_OK) response.curl_error = error;
  if (rc != CURLE_OK && stall_aborted) {
    response.curl_error = "stalled: no progress while the store answered a probe, aborted";
  }
  // A connection that saw a failure may be half-dead (a middlebox, a restarted store):
  // never reuse it. Expected answers (404, 304, 412) leave the connection healthy.
  fresh_connection_ = rc != CURLE_OK ||
                      (response.status >= 400 && response.status != 404 && response.status != 412);
  if (response.status >= 300 && !response.body.empty()) {
    response.s3_code = FirstElement(response.body, "Code");
    response.s3_message = FirstElement(response.body, "Message");
  }
  return response;
}

Status S3Client::Fail(const std::string& op, const std::string& key, const Response& response) {
  if (response.body_too_large) {
    return Status(ErrorCode::kInvalidArgument, "S3 " + op + " " + key + ": answer larger than " +
                                                   std::to_string(options_.max_get_bytes) +
                                                   " bytes");
  }
  if (IsCredentialExpiry(response.s3_code) || response.s3_code == "InvalidAccessKeyId") {
    // Temporary credentials ran out (or were revoked): the next Get() fetches new ones.
    options_.credentials->Invalidate();
  }
  return MapS3Error(op, key, response.status, response.s3_code, response.s3_message,
                    response.curl_code, response.curl_error);
}

Result<PutOutcome> S3Client::Put(const PutRequest& put) {
  if (put.key.empty()) return Status(ErrorCode::kInvalidArgument, "S3 PUT: empty key", "key");
  size_t meta_bytes = 0;
  Request request;
  request.method = "PUT";
  request.op = "PUT";
  request.key = put.key;
  request.path = ObjectPath(FullKey(put.key));
  request.body = &put.body;
  request.payload_sha256 = core::ToHex(core::Sha256(put.body));
  std::string md5 = Base64(core::Md5(put.body));
  if (options_.test_corrupt_content_md5) md5 = Base64(core::Md5(put.body + "corrupt"));
  request.headers.emplace_back("content-md5", md5);
  request.headers.emplace_back("content-type", put.content_type.empty()
                                                   ? std::string("application/octet-stream")
                                                   : put.content_type);
  if (!put.content_encoding.empty()) {
    request.headers.emplace_back("content-encoding", put.content_encoding);
  }
  if (put.if_none_match) request.headers.emplace_back("if-none-match", "*");
  for (const auto& [name, value] : put.metadata) {
    // S3 lower-cases names and trims values: only what survives a round trip is accepted.
    bool name_ok = !name.empty();
    for (char c : name) {
      name_ok = name_ok &&
                (std::islower(static_cast<unsigned char>(c)) ||
                 std::isdigit(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.');
    }
    bool value_ok = value.empty() || (value.front() != ' ' && value.back() != ' ');
    for (char c : value) value_ok = value_ok && c >= 0x20 && c <= 0x7E;
    if (!name_ok || !value_ok) {
      return Status(ErrorCode::kInvalidArgument,
                    "S3 metadata must be lower-case names and printable ASCII values: " + name,
                    "metadata");
    }
    meta_bytes += name.size() + value.size();
    request.headers.emplace_back("x-amz-meta-" + name, value);
  }
  if (meta_bytes > kMaxMetadataBytes) {
    return Status(ErrorCode::kInvalidArgument, "S3 metadata larger than 2 KB", "metadata");
  }
  ASSIGN_OR_RETURN(Response response, Execute(request));
  if (response.status >= 200 && response.status < 300) return PutOutcome::kCreated;
  if (response.status == 412) return PutOutcome::kAlreadyExists;
  return Fail("PUT", put.key, response);
}

Result<ObjectInfo> S3Client::Head(const std::string& key) {
  Request request;
  request.method = "HEAD";
  request.op = "HEAD";
  request.key = key;
  request.path = ObjectPath(FullKey(key));
  request.payload_sha256 = EmptySha256();
  ASSIGN_OR_RETURN(Response response, Execute(request));
  if (response.status != 200) return Fail("HEAD", key, response);
  ObjectInfo info;
  for (const auto& [name, value] : response.headers) {
    if (name == "etag") {
      info.etag = Unquote(value);
    } else if (name == "content-length") {
      info.size = std::strtoll(value.c_str(), nullptr, 10);
    } else if (name.starts_with("x-amz-meta-")) {
      info.metadata[name.substr(11)] = value;
    }
  }
  return info;
}

Result<GetResult> S3Client::Get(const std::string& key, const std::string& if_none_match) {
  Request request;
  request.method = "GET";
  request.op = "GET";
  request.key = key;
  request.path = ObjectPath(FullKey(key));
  request.payload_sha256 = EmptySha256();
  if (!if_none_match.empty()) {
    request.headers.emplace_back("if-none-match", "\"" + Unquote(if_none_match) + "\"");
  }
  ASSIGN_OR_RETURN(Response response, Execute(request));
  GetResult result;
  auto etag = response.headers.find("etag");
  if (etag != response.headers.end()) result.etag = Unquote(etag->second);
  if (response.status == 304) {
    result.not_modified = true;
    if (result.etag.empty()) result.etag = Unquote(if_none_match);
    return result;
  }
  if (response.status != 200) return Fail("GET", key, response);
  result.body = std::move(response.body);
  return result;
}

Result<ListResult> S3Client::List(const std::string& prefix, const std::string& token) {
  Request request;
  request.method = "GET";
  request.op = "LIST";
  request.key = prefix;
  request.path = BucketPath();
  request.payload_sha256 = EmptySha256();
  std::string full_prefix = options_.prefix.empty() ? prefix : options_.prefix + "/" + prefix;
  request.query.emplace_back("list-type", "2");
  if (!full_prefix.empty()) request.query.emplace_back("prefix", full_prefix);
  if (!token.empty()) request.query.emplace_back("continuation-token", token);
  if (options_.list_page_size > 0) {
    request.query.emplace_back("max-keys", std::to_string(options_.list_page_size));
  }
  ASSIGN_OR_RETURN(Response response, Execute(request));
  if (response.status != 200) return Fail("LIST", prefix, response);

  ListResult result;
  std::string strip = options_.prefix.empty() ? "" : options_.prefix + "/";
  for (std::string_view contents : XmlRawElements(response.body, "Contents")) {
    std::string key = FirstElement(contents, "Key");
    if (!strip.empty()) {
      if (!key.starts_with(strip)) continue;  // cannot happen with our prefix; be safe
      key.erase(0, strip.size());
    }
    ObjectInfo info;
    info.etag = Unquote(FirstElement(contents, "ETag"));
    info.size = std::strtoll(FirstElement(contents, "Size").c_str(), nullptr, 10);
    result.objects.emplace_back(std::move(key), std::move(info));
  }
  // IsTruncated and NextContinuationToken exist only at the top level of the answer.
  if (FirstElement(response.body, "IsTruncated") == "true") {
    result.next_token = FirstElement(response.body, "NextContinuationToken");
    if (result.next_token.empty()) {
      return Status(ErrorCode::kInternal,
                    "S3 LIST " + prefix + ": truncated page without NextContinuationToken");
    }
  }
  return result;
}

Status S3Client::Probe() {
  Request request;
  request.method = "HEAD";
  request.op = "HeadBucket";
  request.path = BucketPath();
  request.payload_sha256 = EmptySha256();
  ASSIGN_OR_RETURN(Response response, Execute(request));
  if (response.status == 200) return Status::Ok();
  return Fail("HeadBucket " + options_.bucket, "", response);
}

Status S3Client::CreateBucket() {
  Request request;
  request.method = "PUT";
  request.op = "CreateBucket";
  request.path = BucketPath();
  std::string body;
  if (options_.region != "us-east-1") {
    body =
        "<CreateBucketConfiguration xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">"
        "<LocationConstraint>" +
        options_.region + "</LocationConstraint></CreateBucketConfiguration>";
  }
  request.body = &body;
  request.payload_sha256 = core::ToHex(core::Sha256(body));
  ASSIGN_OR_RETURN(Response response, Execute(request));
  if (response.status == 200) return Status::Ok();
  if (response.status == 409 && response.s3_code == "BucketAlreadyOwnedByYou") return Status::Ok();
  return Fail("CreateBucket " + options_.bucket, "", response);
}

Result<std::string> S3Client::PresignGet(const std::string& key, int64_t expires_s) {
  if (expires_s < 1 || expires_s > 604800) {
    return Status(ErrorCode::kInvalidArgument, "presigned URL lifetime must be 1..604800 s");
  }
  ASSIGN_OR_RETURN(Credentials creds, options_.credentials->Get());
  SigningRequest sreq;
  sreq.method = "GET";
  sreq.path = ObjectPath(FullKey(key));
  sreq.headers.emplace_back("host", host_);
  sreq.payload_sha256_hex = "UNSIGNED-PAYLOAD";
  SigningParams params;
  params.region = options_.region;
  params.service = "s3";
  params.time_ms = clock_->NowMs() + clock_offset_ms_.load();
  ASSIGN_OR_RETURN(std::string query, PresignQuery(sreq, creds, params, expires_s));
  return scheme_ + "://" + host_ + sreq.path + "?" + query;
}

}  // namespace machub::cloud
