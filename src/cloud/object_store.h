#pragma once
// Where batches go: an S3 bucket (s3_client.h) or, on the embedded default, a local
// folder with the same key layout (local_sink.h). The uploader sees only this interface.
//
// Error contract (one place decides what is retryable: IsRetryable below):
//   kUnavailable  — network failure, timeout, 5xx, throttling (SlowDown, 503), expired
//                   credentials, RequestTimeTooSkewed (after the clock offset is learned):
//                   retry with backoff.
//   kUnauthorized — the store refused our identity (SignatureDoesNotMatch,
//                   InvalidAccessKeyId, AccessDenied): retrying will not help until the
//                   configuration changes; surfaced in status as an auth error.
//   kNotFound     — no such bucket (HeadBucket/Probe) or key (Head/Get).
//   kInvalidArgument / kInternal — anything else (a bug or a misconfiguration).

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "core/status.h"

namespace machub::cloud {

struct PutRequest {
  std::string key;  // without the bucket: "pos/sales/store=S001/date=.../S001-...jsonl.gz"
  std::string body;
  std::string content_type = "application/octet-stream";
  std::string content_encoding;                 // e.g. empty for .gz objects stored as-is
  std::map<std::string, std::string> metadata;  // sent as x-amz-meta-<name>
  bool if_none_match = true;                    // If-None-Match: * (never overwrite)
};

enum class PutOutcome {
  kCreated,        // 2xx: the object is ours now
  kAlreadyExists,  // 412 PreconditionFailed: an object with this key exists
};

struct ObjectInfo {
  std::string etag;  // without quotes; for a single-part PUT, the hex MD5 of the body
  int64_t size = 0;
  std::map<std::string, std::string> metadata;  // x-amz-meta-* names without the prefix
};

struct GetResult {
  bool not_modified = false;  // 304 for a matching If-None-Match
  std::string etag;
  std::string body;
};

struct ListResult {
  std::vector<std::pair<std::string, ObjectInfo>> objects;  // key -> info (etag, size)
  std::string next_token;                                   // empty when this was the last page
};

class ObjectStore {
 public:
  virtual ~ObjectStore() = default;
  // Thread-safe unless stated otherwise by the implementation.
  virtual Result<PutOutcome> Put(const PutRequest& request) = 0;
  virtual Result<ObjectInfo> Head(const std::string& key) = 0;
  virtual Result<GetResult> Get(const std::string& key, const std::string& if_none_match = "") = 0;
  virtual Result<ListResult> List(const std::string& prefix, const std::string& token = "") = 0;
  // A cheap reachability and permission check (HeadBucket for S3).
  virtual Status Probe() = 0;
  // "s3://bucket/prefix" or "file:///path": for status and logs, never a secret.
  virtual std::string Describe() const = 0;
};

inline bool IsRetryable(const Status& s) { return s.code() == ErrorCode::kUnavailable; }

}  // namespace machub::cloud
