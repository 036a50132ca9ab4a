#pragma once
// DynamoDbClient: a small Amazon DynamoDB client on the project's own HTTP stack (libcurl)
// and SigV4 signer (sigv4.h), with the same CredentialsProvider chain as S3Client. No AWS
// SDK (none is packaged by Debian); only the operations the DynamoDB sink needs.
//
// What goes on the wire (DynamoDB's JSON 1.0 protocol):
//   POST /   Content-Type: application/x-amz-json-1.0
//            X-Amz-Target: DynamoDB_20120810.<Operation>
//            body: the operation's JSON request; answer: its JSON response.
//   Signed with SigV4, service "dynamodb", the options' region; signed headers are
//   content-type, host, x-amz-date, x-amz-target (and x-amz-security-token with temporary
//   credentials); x-amz-content-sha256 is not sent (DynamoDB does not use it).
//   Every answer that carries x-amz-crc32 (DynamoDB always sends it) must match the CRC-32
//   of the body as received; a mismatch is kUnavailable (corrupted in transit, retry).
//
// Errors: every failure is a Status, and the typed detail is in DynamoError (optional out
// parameter of Call and every operation). The one mapping function is MapDynamoError:
//   kind            when                                                     Status code
//   kThrottled      ProvisionedThroughputExceededException, ThrottlingException,
//                   RequestLimitExceeded, LimitExceededException, HTTP 429    kUnavailable
//   kServer         HTTP 5xx (InternalServerError, ServiceUnavailable, ...)   kUnavailable
//   kNetwork        no HTTP answer (connect refused, reset, timeout), CRC-32
//                   mismatch, unparsable answer                               kUnavailable
//   kExpiredToken   ExpiredTokenException (the provider is Invalidate()d)     kUnavailable
//   kConditionFailed ConditionalCheckFailedException                          kIdConflict
//   kNotFound       ResourceNotFoundException                                 kNotFound
//   kInUse          ResourceInUseException (table exists / is being created)  kIdConflict
//   kAuth           UnrecognizedClientException, InvalidSignatureException,
//                   AccessDeniedException, MissingAuthenticationToken,
//                   IncompleteSignature, any 403                              kUnauthorized
//   kValidation     ValidationException, SerializationException, other 4xx    kInvalidArgument
// DynamoError::retryable() is true for the first four kinds: the caller backs off (with
// FullJitterBackoffMs) and sends the same request again. The others must not be retried
// blindly: auth and validation need an operator (the sink reports them in status).
// Messages name the operation, HTTP status and DynamoDB error code and message, never
// credentials, signatures or request headers. The client itself never retries.
//
// Threads: requests on one client are serialized by a mutex (one curl handle, its
// connection kept alive and reused); the client is thread-safe. A failed request makes the
// next one open a fresh connection.

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include "cloud/credentials.h"
#include "core/clock.h"
#include "core/status.h"

namespace machub::cloud {

struct DynamoOptions {
  // Scheme, host and optional port, no path: "http://127.0.0.1:8000". Empty: the AWS
  // regional endpoint https://dynamodb.<region>.amazonaws.com.
  std::string endpoint;
  std::string region = "us-east-1";
  CredentialsProvider* credentials = nullptr;  // required; not owned, must outlive the client
  const core::Clock* clock = nullptr;          // null: the system clock (signing time)
  int64_t connect_timeout_ms = 5000;
  int64_t total_timeout_ms = 30000;         // a whole request
  std::string ca_file;                      // PEM bundle for https; empty: the system store
  int64_t max_response_bytes = 16LL << 20;  // larger answers fail (kNetwork)
  // When set, a request fails at once (kUnavailable "cancelled") while *cancel is true, and
  // a request in flight is aborted when it becomes true. Not owned.
  const std::atomic<bool>* cancel = nullptr;
};

enum class DynamoErrorKind {
  kNone,
  kThrottled,
  kServer,
  kNetwork,
  kExpiredToken,
  kConditionFailed,
  kNotFound,
  kInUse,
  kAuth,
  kValidation,
};

// "throttled", "server", "network", ... (stable names, used in status and metrics).
std::string_view DynamoErrorKindName(DynamoErrorKind kind);

struct DynamoError {
  DynamoErrorKind kind = DynamoErrorKind::kNone;
  int http_status = 0;  // 0: no HTTP answer
  std::string code;     // DynamoDB's short error code ("ThrottlingException"), may be empty
  std::string message;  // DynamoDB's message, may be empty
  bool retryable() const {
    return kind == DynamoErrorKind::kThrottled || kind == DynamoErrorKind::kServer ||
           kind == DynamoErrorKind::kNetwork || kind == DynamoErrorKind::kExpiredToken;
  }
};

// The one place that classifies a DynamoDB answer (table above). `http_status` 0 when no
// answer came; `type` is the "__type" of the error body ("com.amazonaws...#Code" or a bare
// code; the part after '#' is used). Returns the Status for operation `op` and fills *error.
Status MapDynamoError(std::string_view op, int http_status, std::string_view type,
                      std::string_view message, DynamoError* error);

// True when `header_value` (decimal, as in x-amz-crc32) is the CRC-32 (zlib/IEEE) of body.
bool Crc32Matches(std::string_view body, std::string_view header_value);

// "Full jitter" backoff: a uniform random delay in [0, min(cap_ms, base_ms * 2^attempt)].
// attempt 0 for the first retry. Thread-compatible (the caller owns `rng`).
int64_t FullJitterBackoffMs(int attempt, int64_t base_ms, int64_t cap_ms, std::mt19937_64& rng);

// The SigV4 signature of one DynamoDB request exactly as Call sends it: POST /, headers
// content-type, host, x-amz-target (+ what signing adds), service "dynamodb". Pure.
Result<SignedRequest> SignDynamoDbRequest(std::string_view host, std::string_view op,
                                          std::string_view body, const Credentials& creds,
                                          std::string_view region, int64_t time_ms);

// One table's key and index layout for CreateTable. Key attributes are "S" or "N".
struct DynamoTableSpec {
  std::string name;
  std::string hash_key;
  std::string hash_type = "S";
  std::string range_key;  // empty: hash key only
  std::string range_type = "N";
  struct Gsi {
    std::string name;
    std::string hash_key;
    std::string hash_type = "S";
    // Projection ALL; no range key.
  };
  std::vector<Gsi> gsis;
};

class DynamoDbClient {
 public:
  // kInvalidArgument for a missing region/credentials or a malformed endpoint.
  static Result<std::unique_ptr<DynamoDbClient>> Create(DynamoOptions options);
  ~DynamoDbClient();
  DynamoDbClient(const DynamoDbClient&) = delete;
  DynamoDbClient& operator=(const DynamoDbClient&) = delete;

  // Any operation: signs and sends `request` as DynamoDB_20120810.<op>, returns the parsed
  // answer. Errors as in the table above; *error (when given) gets the typed detail.
  Result<nlohmann::json> Call(std::string_view op, const nlohmann::json& request,
                              DynamoError* error = nullptr);

  // CreateTable with BillingMode PAY_PER_REQUEST (on-demand). An existing table is kInUse.
  Status CreateTable(const DynamoTableSpec& spec, DynamoError* error = nullptr);
  // DescribeTable: TableStatus ("CREATING", "ACTIVE", ...); kNotFound when absent.
  Result<std::string> DescribeTableStatus(const std::string& table, DynamoError* error = nullptr);
  // Polls DescribeTable until every table is ACTIVE (and its indexes), or timeout_ms.
  Status WaitActive(const std::string& table, int64_t timeout_ms);

  // BatchWriteItem of PutRequests (at most 25 items, one table). Returns the items
  // DynamoDB did not process (UnprocessedItems, as attribute-value maps); the caller
  // retries them with backoff. An empty vector: all written.
  Result<std::vector<nlohmann::json>> BatchPut(const std::string& table,
                                               const std::vector<nlohmann::json>& items,
                                               DynamoError* error = nullptr);

  // PutItem. `condition` (may be empty) is a ConditionExpression with its names/values
  // (JSON objects, may be empty/null). A failed condition is kConditionFailed.
  Status PutItem(const std::string& table, const nlohmann::json& item, const std::string& condition,
                 const nlohmann::json& names, const nlohmann::json& values,
                 DynamoError* error = nullptr);

  // GetItem with ConsistentRead. The item (attribute-value map), or null JSON when absent.
  Result<nlohmann::json> GetItem(const std::string& table, const nlohmann::json& key,
                                 DynamoError* error = nullptr);

  // UpdateItem with an UpdateExpression (and optional condition). Returns nothing.
  Status UpdateItem(const std::string& table, const nlohmann::json& key, const std::string& update,
                    const std::string& condition, const nlohmann::json& names,
                    const nlohmann::json& values, DynamoError* error = nullptr);

  // Query one partition (`hash_key` = `hash_value`, an attribute value) in range-key order,
  // following LastEvaluatedKey; at most `limit` items in all (0: no limit). Consistent.
  Result<std::vector<nlohmann::json>> QueryPartition(const std::string& table,
                                                     const std::string& hash_key,
                                                     const nlohmann::json& hash_value,
                                                     size_t limit = 0,
                                                     DynamoError* error = nullptr);

  std::string Describe() const;  // the endpoint, never a secret

 private:
  explicit DynamoDbClient(DynamoOptions options);

  DynamoOptions options_;
  std::string url_;
  std::string host_;
  const core::Clock* clock_;
  std::mutex mutex_;      // guards curl_ and fresh_connection_
  void* curl_ = nullptr;  // CURL*
  bool fresh_connection_ = false;
};

}  // namespace machub::cloud
