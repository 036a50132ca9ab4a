#pragma once
// S3Client: an ObjectStore on an S3 bucket (AWS S3 or any S3 implementation such as Ceph
// RGW), over libcurl, signed with SigV4 (sigv4.h) using a CredentialsProvider.
//
// What goes on the wire:
//   PUT    Content-MD5 (base64 MD5 of the body) and x-amz-content-sha256 (hex SHA-256 of
//          the body, signed), If-None-Match: * when PutRequest::if_none_match, metadata as
//          x-amz-meta-<name>. 412 -> PutOutcome::kAlreadyExists.
//   HEAD   etag (without quotes), size, x-amz-meta-* metadata.
//   GET    optional If-None-Match "<etag>"; 304 -> GetResult::not_modified.
//   LIST   ListObjectsV2 (list-type=2, prefix, continuation-token), 1000 keys a page.
//   Probe  HeadBucket.
// Keys are URI-encoded once per '/'-separated segment ('/' kept, '=' sent as %3D) and
// signed exactly as sent; paths are never normalized (CURLOPT_PATH_AS_IS).
//
// The client does not retry, with one exception: a 403 RequestTimeTooSkewed (or a bare
// 403 to a HEAD whose Date header is more than 10 minutes off) teaches it the offset
// between the server's Date and the local clock; it re-signs with the corrected time and
// retries that request once at once. The offset is kept for later requests. Retries with
// backoff belong to the caller (IsRetryable in object_store.h).
//
// Errors (one mapping function, MapS3Error): network failures, timeouts (connect, low
// speed, total), 5xx, 429/SlowDown, 409 conflicts, RequestTimeout -> kUnavailable;
// SignatureDoesNotMatch, InvalidAccessKeyId, AccessDenied (any 403) -> kUnauthorized;
// ExpiredToken / InvalidToken / TokenRefreshRequired -> the provider is Invalidate()d and
// kUnavailable (fresh credentials are fetched on the next call); 404 -> kNotFound;
// BadDigest, XAmzContentSHA256Mismatch, other 4xx, 301 (bucket in another region) ->
// kInvalidArgument. Messages name the operation, key, HTTP status and S3 error code, never
// credentials, signatures or request headers.
//
// Connections: one curl easy handle per client (its connection is reused, keep-alive);
// after any failed request the next one opens a fresh connection. Requests on one client
// are serialized by a mutex: the client is thread-safe, use one client per thread for
// parallel uploads.
//
// Proxies: libcurl reads the standard variables itself on every connection:
// http_proxy (lower case only; HTTP_PROXY is ignored, see "httpoxy"), https_proxy /
// HTTPS_PROXY, all_proxy / ALL_PROXY and no_proxy / NO_PROXY (comma-separated hosts,
// domains or "*"). Nothing needs to be configured here; s3_client_test checks it.

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "cloud/credentials.h"
#include "cloud/object_store.h"
#include "cloud/request_watch.h"
#include "cloud/s3_xml.h"
#include "core/clock.h"
#include "core/status.h"

namespace machub::cloud {

enum class S3Addressing {
  kAuto,           // virtual-hosted on the default AWS endpoint when the bucket name is
                   // DNS-safe (no dots with https), path-style otherwise
  kPathStyle,      // http(s)://endpoint/bucket/key
  kVirtualHosted,  // http(s)://bucket.endpoint-host/key
};

struct S3Options {
  // Scheme, host and optional port, no path: "http://127.0.0.1:7480". Empty: the AWS
  // regional endpoint https://s3.<region>.amazonaws.com.
  std::string endpoint;
  std::string region = "us-east-1";
  std::string bucket;  // 3..63 characters
  // Prepended to every key ("<prefix>/<key>") and to List prefixes; List strips it from
  // the keys it returns. Empty (default): keys are used as given. Callers whose keys
  // already carry the PRODUCT.md <prefix> leave this empty.
  std::string prefix;
  S3Addressing addressing = S3Addressing::kAuto;
  CredentialsProvider* credentials = nullptr;  // required; not owned, must outlive the client
  const core::Clock* clock = nullptr;          // null: the system clock (signing time)
  int64_t connect_timeout_ms = 5000;
  // Abort a transfer slower than low_speed_limit_bytes per second for low_speed_time_s
  // seconds (CURLOPT_LOW_SPEED_LIMIT/TIME): a stalled connection fails quickly even when
  // the total timeout is long. 0 disables.
  int64_t low_speed_limit_bytes = 1;
  int64_t low_speed_time_s = 30;
  int64_t total_timeout_ms = 120000;  // a whole request, 0: no limit
  std::string ca_file;                // PEM bundle for https; empty: the system store
  // "HOST:PORT:CONNECT-HOST:CONNECT-PORT" (CURLOPT_CONNECT_TO): connect elsewhere than DNS
  // says while sending and signing the same Host; for tests of virtual-hosted addressing
  // against a local store. Empty: off.
  std::string connect_to;
  int64_t max_get_bytes = 256LL << 20;  // larger GET bodies fail (kInvalidArgument)
  int list_page_size = 0;               // max-keys for ListObjectsV2; 0: the store's default (1000)
  // Upload speed cap in bytes per second (CURLOPT_MAX_SEND_SPEED_LARGE), so a backlog
  // drain does not fill a store's uplink; 0: no cap.
  int64_t max_send_bytes_per_s = 0;
  // When set, a request in flight is aborted as soon as *cancel becomes true, and later
  // requests fail at once (kUnavailable "cancelled"): lets an uploader stop promptly.
  // Not owned; must outlive the client.
  const std::atomic<bool>* cancel = nullptr;
  // When set, every request reports its progress here and can be aborted through it by
  // another thread (request_watch.h): the uploader's stall watchdog. Not owned; must
  // outlive the client.
  RequestWatch* watch = nullptr;
  // Tests only: send a wrong Content-MD5 on PUT (the store must answer BadDigest).
  bool test_corrupt_content_md5 = false;
};

class S3Client final : public ObjectStore {
 public:
  // kInvalidArgument for a missing bucket/region/credentials or a malformed endpoint.
  static Result<std::unique_ptr<S3Client>> Create(S3Options options);
  ~S3Client() override;
  S3Client(const S3Client&) = delete;
  S3Client& operator=(const S3Client&) = delete;

  Result<PutOutcome> Put(const PutRequest& request) override;
  Result<ObjectInfo> Head(const std::string& key) override;
  Result<GetResult> Get(const std::string& key, const std::string& if_none_match = "") override;
  // `token` is the previous page's next_token. Keys are returned without options.prefix.
  Result<ListResult> List(const std::string& prefix, const std::string& token = "") override;
  Status Probe() override;
  std::string Describe() const override;  // "s3://bucket" or "s3://bucket/prefix"

  // PUT Bucket (a LocationConstraint body unless the region is us-east-1). An existing
  // bucket we own counts as success. For tests and first-time setup.
  Status CreateBucket();

  // A presigned GET URL for `key` valid `expires_s` seconds (1..604800), for handing an
  // object to a tool without credentials. kInvalidArgument for a bad duration.
  Result<std::string> PresignGet(const std::string& key, int64_t expires_s);

  // Server time minus local time, in ms, as learned from a RequestTimeTooSkewed answer
  // (0 until then). Added to the clock for every signature.
  int64_t clock_offset_ms() const { return clock_offset_ms_.load(); }

 private:
  struct Request;
  struct Response;
  explicit S3Client(S3Options options);

  // Signs and performs one request, re-signing once after a clock-skew answer.
  Result<Response> Execute(const Request& request);
  Result<Response> PerformOnce(const Request& request, const Credentials& creds);
  // The error Status for a failed response, and the side effects the error asks for
  // (credentials invalidated, fresh connection next time).
  Status Fail(const std::string& op, const std::string& key, const Response& response);

  std::string FullKey(const std::string& key) const;
  std::string ObjectPath(const std::string& full_key) const;  // encoded, as sent and signed
  std::string BucketPath() const;

  S3Options options_;
  std::string scheme_;  // "http" | "https"
  std::string host_;    // Host header value (with port when not the default)
  bool virtual_hosted_ = false;
  const core::Clock* clock_;
  std::atomic<int64_t> clock_offset_ms_{0};

  std::mutex mutex_;      // guards curl_ and fresh_connection_
  void* curl_ = nullptr;  // CURL*; void* keeps <curl/curl.h> out of this header
  bool fresh_connection_ = false;
};

// The one place that turns an S3 answer into a Status (see the table above). `http_status`
// 0 when no HTTP answer came; `curl_code` is a CURLcode (0 = CURLE_OK); `s3_code` and
// `s3_message` from the error body (may be empty). `op` and `key` only label the message.
Status MapS3Error(const std::string& op, const std::string& key, int http_status,
                  const std::string& s3_code, const std::string& s3_message, int curl_code,
                  const std::string& curl_error);

}  // namespace machub::cloud
