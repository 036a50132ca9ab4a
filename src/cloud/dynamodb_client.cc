#include "cloud/dynamodb_client.h"

#include <curl/curl.h>
#include <zlib.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <chrono>
#include <cstring>
#include <map>
#include <thread>
#include <utility>

#include "cloud/curl_response.h"
#include "cloud/sigv4.h"
#include "core/strings.h"

namespace machub::cloud {
namespace {

constexpr std::string_view kTargetPrefix = "DynamoDB_20120810.";
constexpr std::string_view kContentType = "application/x-amz-json-1.0";

int CancelCheck(void* user, curl_off_t, curl_off_t, curl_off_t, curl_off_t) {
  const auto* cancel = static_cast<const std::atomic<bool>*>(user);
  return cancel != nullptr && cancel->load() ? 1 : 0;
}

bool IsThrottlingCode(std::string_view code) {
  return code == "ProvisionedThroughputExceededException" || code == "ThrottlingException" ||
         code == "RequestLimitExceeded" || code == "LimitExceededException" ||
         code == "Throttling" || code == "TooManyRequestsException";
}

bool IsAuthCode(std::string_view code) {
  return code == "UnrecognizedClientException" || code == "InvalidSignatureException" ||
         code == "AccessDeniedException" || code == "MissingAuthenticationToken" ||
         code == "MissingAuthenticationTokenException" || code == "IncompleteSignature" ||
         code == "IncompleteSignatureException" || code == "InvalidClientTokenId" ||
         code == "SignatureDoesNotMatch";
}

}  // namespace

std::string_view DynamoErrorKindName(DynamoErrorKind kind) {
  switch (kind) {
    case DynamoErrorKind::kNone:
      return "none";
    case DynamoErrorKind::kThrottled:
      return "throttled";
    case DynamoErrorKind::kServer:
      return "server";
    case DynamoErrorKind::kNetwork:
      return "network";
    case DynamoErrorKind::kExpiredToken:
      return "expired_token";
    case DynamoErrorKind::kConditionFailed:
      return "condition_failed";
    case DynamoErrorKind::kNotFound:
      return "not_found";
    case DynamoErrorKind::kInUse:
      return "in_use";
    case DynamoErrorKind::kAuth:
      return "auth";
    case DynamoErrorKind::kValidation:
      return "validation";
  }
  return "unknown";
}

Status MapDynamoError(std::string_view op, int http_status, std::string_view type,
                      std::string_view message, DynamoError* error) {
  std::string_view code = type;
  if (size_t hash = code.rfind('#'); hash != std::string_view::npos) code.remove_prefix(hash + 1);
  DynamoErrorKind kind;
  ErrorCode status_code;
  if (http_status == 0) {
    kind = DynamoErrorKind::kNetwork;
    status_code = ErrorCode::kUnavailable;
  } else if (IsThrottlingCode(code) || http_status == 429) {
    kind = DynamoErrorKind::kThrottled;
    status_code = ErrorCode::kUnavailable;
  } else if (http_status >= 500) {
    kind = DynamoErrorKind::kServer;
    status_code = ErrorCode::kUnavailable;
  } else if (code == "ExpiredTokenException" || code == "ExpiredToken") {
    kind = DynamoErrorKind::kExpiredToken;
    status_code = ErrorCode::kUnavailable;
  } else if (code == "ConditionalCheckFailedException") {
    kind = DynamoErrorKind::kConditionFailed;
    status_code = ErrorCode::kIdConflict;
  } else if (code == "ResourceNotFoundException") {
    kind = DynamoErrorKind::kNotFound;
    status_code = ErrorCode::kNotFound;
  } else if (code == "ResourceInUseException") {
    kind = DynamoErrorKind::kInUse;
    status_code = ErrorCode::kIdConflict;
  } else if (IsAuthCode(code) || http_status == 401 || http_status == 403) {
    kind = DynamoErrorKind::kAuth;
    status_code = ErrorCode::kUnauthorized;
  } else {
    kind = DynamoErrorKind::kValidation;
    status_code = ErrorCode::kInvalidArgument;
  }
  std::string text = "DynamoDB " + std::string(op) + ": ";
  text += http_status == 0 ? std::string("no answer") : "HTTP " + std::to_string(http_status);
  if (!code.empty()) text += " " + std::string(code);
  if (!message.empty()) text += ": " + std::string(message);
  if (error != nullptr) {
    error->kind = kind;
    error->http_status = http_status;
    error->code = std::string(code);
    error->message = std::string(message);
  }
  return Status(status_code, text);
}

bool Crc32Matches(std::string_view body, std::string_view header_value) {
  uint64_t expected = 0;
  auto [end, ec] =
      std::from_chars(header_value.data(), header_value.data() + header_value.size(), expected);
  if (ec != std::errc() || end != header_value.data() + header_value.size()) return false;
  uLong crc = crc32(0L, Z_NULL, 0);
  // zlib takes uInt lengths: feed large bodies in pieces.
  const auto* p = reinterpret_cast<const Bytef*>(body.data());
  size_t left = body.size();
  while (left > 0) {
    uInt n = static_cast<uInt>(std::min<size_t>(left, 1u << 30));
    crc = crc32(crc, p, n);
    p += n;
    left -= n;
  }
  return static_cast<uint64_t>(crc) == expected;
}

int64_t FullJitterBackoffMs(int attempt, int64_t base_ms, int64_t cap_ms, std::mt19937_64& rng) {
  if (base_ms <= 0 || cap_ms <= 0) return 0;
  int64_t ceiling = base_ms;
  for (int i = 0; i < attempt && ceiling < cap_ms; ++i) ceiling *= 2;
  ceiling = std::min(ceiling, cap_ms);
  std::uniform_int_distribution<int64_t> dist(0, ceiling);
  return dist(rng);
}

Result<SignedRequest> SignDynamoDbRequest(std::string_view host, std::string_view op,
                                          std::string_view body, const Credentials& creds,
                                          std::string_view region, int64_t time_ms) {
  SigningRequest sreq;
  sreq.method = "POST";
  sreq.path = "/";
  sreq.headers = {{"content-type", std::string(kContentType)},
                  {"host", std::string(host)},
                  {"x-amz-target", std::string(kTargetPrefix) + std::string(op)}};
  sreq.payload_sha256_hex = Sha256Hex(body);
  SigningParams params;
  params.region = std::string(region);
  params.service = "dynamodb";
  params.time_ms = time_ms;
  params.add_content_sha256 = false;
  return SignRequest(sreq, creds, params);
}

Result<std::unique_ptr<DynamoDbClient>> DynamoDbClient::Create(DynamoOptions options) {
  if (options.region.empty()) return Status(ErrorCode::kInvalidArgument, "DynamoDB: no region");
  if (options.credentials == nullptr) {
    return Status(ErrorCode::kInvalidArgument, "DynamoDB: no credentials provider");
  }
  std::unique_ptr<DynamoDbClient> client(new DynamoDbClient(std::move(options)));
  std::string endpoint = client->options_.endpoint;
  if (endpoint.empty()) {
    endpoint = "https://dynamodb." + client->options_.region + ".amazonaws.com";
  }
  while (endpoint.ends_with('/')) endpoint.pop_back();
  std::string rest;
  if (endpoint.starts_with("http://")) {
    rest = endpoint.substr(7);
  } else if (endpoint.starts_with("https://")) {
    rest = endpoint.substr(8);
  } else {
    return Status(ErrorCode::kInvalidArgument,
                  "DynamoDB endpoint must start with http:// or https://: " + endpoint);
  }
  if (rest.empty() || rest.find_first_of("/?#@ ") != std::string::npos) {
    return Status(ErrorCode::kInvalidArgument,
                  "DynamoDB endpoint must be scheme://host[:port] without a path: " + endpoint);
  }
  client->host_ = rest;
  client->url_ = endpoint + "/";
  CURL* curl = curl_easy_init();
  if (curl == nullptr) return Status(ErrorCode::kInternal, "curl_easy_init failed");
  client->curl_ = curl;
  return client;
}

DynamoDbClient::DynamoDbClient(DynamoOptions options)
    : options_(std::move(options)),
      clock_(options_.clock != nullptr ? options_.clock : &core::SystemClock()) {}

DynamoDbClient::~DynamoDbClient() {
  if (curl_ != nullptr) curl_easy_cleanup(static_cast<CURL*>(curl_));
}

std::string DynamoDbClient::Describe() const { return "dynamodb:" + url_; }

Result<nlohmann::json> DynamoDbClient::Call(std::string_view op, const nlohmann::json& request,
                                            DynamoError* error) {
  DynamoError local;
  DynamoError* err = error != nullptr ? error : &local;
  *err = DynamoError{};
  const std::string body = request.dump();
  const std::string target = std::string(kTargetPrefix) + std::string(op);

  Result<Credentials> creds = options_.credentials->Get();
  if (!creds.ok()) {
    err->kind = creds.status().code() == ErrorCode::kUnavailable ? DynamoErrorKind::kNetwork
                                                                 : DynamoErrorKind::kAuth;
    err->message = creds.status().message();
    return Status(creds.status().code(),
                  "DynamoDB " + std::string(op) + ": credentials: " + creds.status().message());
  }

  ASSIGN_OR_RETURN(SignedRequest signed_request,
                   SignDynamoDbRequest(host_, op, body, *creds, options_.region, clock_->NowMs()));

  curl_slist* headers = nullptr;
  auto add = [&headers](const std::string& line) {
    curl_slist* next = curl_slist_append(headers, line.c_str());
    if (next != nullptr) headers = next;
  };
  add("Host: " + host_);
  add("Content-Type: " + std::string(kContentType));
  add("X-Amz-Target: " + target);
  for (const auto& [name, value] : signed_request.added_headers) add(name + ": " + value);
  add("Authorization: " + signed_request.authorization);
  add("Expect:");
  add("Accept:");

  internal::CurlResponse transfer;
  transfer.max_bytes = static_cast<size_t>(std::max<int64_t>(options_.max_response_bytes, 4096));
  char curl_error[CURL_ERROR_SIZE] = {0};
  long http_status = 0;
  CURLcode rc;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (options_.cancel != nullptr && options_.cancel->load()) {
      curl_slist_free_all(headers);
      err->kind = DynamoErrorKind::kNetwork;
      err->message = "cancelled";
      return Status(ErrorCode::kUnavailable, "DynamoDB " + std::string(op) + ": cancelled");
    }
    CURL* curl = static_cast<CURL*>(curl_);
    curl_easy_reset(curl);  // keeps the connection cache
    curl_easy_setopt(curl, CURLOPT_URL, url_.c_str());
    curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, curl_error);
    curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(curl, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(curl, CURLOPT_USERAGENT, "machub/" MACHUB_VERSION);
    curl_easy_setopt(curl, CURLOPT_TCP_KEEPALIVE, 1L);
    curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT_MS,
                     static_cast<long>(options_.connect_timeout_ms));
    curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, static_cast<long>(options_.total_timeout_ms));
    if (!options_.ca_file.empty()) curl_easy_setopt(curl, CURLOPT_CAINFO, options_.ca_file.c_str());
    if (fresh_connection_) curl_easy_setopt(curl, CURLOPT_FRESH_CONNECT, 1L);
    // No transparent decompression: the CRC-32 covers the bytes as sent.
    curl_easy_setopt(curl, CURLOPT_POST, 1L);
    curl_easy_setopt(curl, CURLOPT_POSTFIELDS, body.data());
    curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(body.size()));
    curl_easy_setopt(curl, CURLOPT_HEADERFUNCTION, internal::CurlWriteHeader);
    curl_easy_setopt(curl, CURLOPT_HEADERDATA, &transfer);
    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, internal::CurlWriteBody);
    curl_easy_setopt(curl, CURLOPT_WRITEDATA, &transfer);
    if (options_.cancel != nullptr) {
      curl_easy_setopt(curl, CURLOPT_XFERINFOFUNCTION, CancelCheck);
      curl_easy_setopt(curl, CURLOPT_XFERINFODATA, const_cast<std::atomic<bool>*>(options_.cancel));
      curl_easy_setopt(curl, CURLOPT_NOPROGRESS, 0L);
    }
    rc = curl_easy_perform(curl);
    curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &http_status);
    curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, nullptr);
    curl_easy_setopt(curl, CURLOPT_HTTPHEADER, nullptr);
    fresh_connection_ = rc != CURLE_OK || http_status >= 400;
  }
  curl_slist_free_all(headers);

  if (rc != CURLE_OK) {
    std::string why = transfer.too_large ? std::string("answer larger than the limit")
                                         : std::string(curl_easy_strerror(rc));
    if (curl_error[0] != '\0' && !transfer.too_large) why += " (" + std::string(curl_error) + ")";
    return MapDynamoError(op, 0, "", why, err);
  }
  auto crc = transfer.headers.find("x-amz-crc32");
  if (crc != transfer.headers.end() && !Crc32Matches(transfer.body, crc->second)) {
    std::lock_guard<std::mutex> lock(mutex_);
    fresh_connection_ = true;
    return MapDynamoError(op, 0, "", "x-amz-crc32 does not match the answer's body", err);
  }
  nlohmann::json answer = nlohmann::json::parse(transfer.body, nullptr, false);
  if (http_status >= 200 && http_status < 300) {
    if (answer.is_discarded() || !answer.is_object()) {
      return MapDynamoError(op, 0, "", "unparsable answer", err);
    }
    return answer;
  }
  std::string type, message;
  if (!answer.is_discarded() && answer.is_object()) {
    if (auto it = answer.find("__type"); it != answer.end() && it->is_string()) type = *it;
    for (const char* key : {"message", "Message"}) {
      if (auto it = answer.find(key); it != answer.end() && it->is_string()) message = *it;
    }
  }
  Status status = MapDynamoError(op, static_cast<int>(http_status), type, message, err);
  if (err->kind == DynamoErrorKind::kExpiredToken) options_.credentials->Invalidate();
  return status;
}

Status DynamoDbClient::CreateTable(const DynamoTableSpec& spec, DynamoError* error) {
  nlohmann::json attrs = nlohmann::json::array();
  std::map<std::string, std::string> seen;
  auto attr = [&](const std::string& name, const std::string& type) {
    if (seen.emplace(name, type).second) {
      attrs.push_back({{"AttributeName", name}, {"AttributeType", type}});
    }
  };
  nlohmann::json keys = nlohmann::json::array();
  keys.push_back({{"AttributeName", spec.hash_key}, {"KeyType", "HASH"}});
  attr(spec.hash_key, spec.hash_type);
  if (!spec.range_key.empty()) {
    keys.push_back({{"AttributeName", spec.range_key}, {"KeyType", "RANGE"}});
    attr(spec.range_key, spec.range_type);
  }
  nlohmann::json request = {
      {"TableName", spec.name}, {"KeySchema", keys}, {"BillingMode", "PAY_PER_REQUEST"}};
  if (!spec.gsis.empty()) {
    nlohmann::json gsis = nlohmann::json::array();
    for (const auto& g : spec.gsis) {
      attr(g.hash_key, g.hash_type);
      gsis.push_back({{"IndexName", g.name},
                      {"KeySchema", nlohmann::json::array(
                                        {{{"AttributeName", g.hash_key}, {"KeyType", "HASH"}}})},
                      {"Projection", {{"ProjectionType", "ALL"}}}});
    }
    request["GlobalSecondaryIndexes"] = gsis;
  }
  request["AttributeDefinitions"] = attrs;
  Result<nlohmann::json> answer = Call("CreateTable", request, error);
  return answer.ok() ? Status::Ok() : answer.status();
}

Result<std::string> DynamoDbClient::DescribeTableStatus(const std::string& table,
                                                        DynamoError* error) {
  ASSIGN_OR_RETURN(nlohmann::json answer, Call("DescribeTable", {{"TableName", table}}, error));
  const nlohmann::json& t = answer.value("Table", nlohmann::json::object());
  std::string status = t.value("TableStatus", "");
  if (status == "ACTIVE") {
    for (const auto& g : t.value("GlobalSecondaryIndexes", nlohmann::json::array())) {
      std::string index_status = g.value("IndexStatus", "ACTIVE");
      if (index_status != "ACTIVE") return "INDEX_" + index_status;
    }
  }
  return status;
}

Status DynamoDbClient::WaitActive(const std::string& table, int64_t timeout_ms) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  while (true) {
    ASSIGN_OR_RETURN(std::string status, DescribeTableStatus(table));
    if (status == "ACTIVE") return Status::Ok();
    if (std::chrono::steady_clock::now() >= deadline) {
      return Status(ErrorCode::kUnavailable,
                    "DynamoDB table " + table + " still " + status + " after the wait");
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
}

Result<std::vector<nlohmann::json>> DynamoDbClient::BatchPut(
    const std::string& table, const std::vector<nlohmann::json>& items, DynamoError* error) {
  if (items.empty()) return std::vector<nlohmann::json>{};
  if (items.size() > 25) {
    return Status(ErrorCode::kInvalidArgument, "DynamoDB BatchWriteItem: more than 25 items");
  }
  nlohmann::json requests = nlohmann::json::array();
  for (const auto& item : items) requests.push_back({{"PutRequest", {{"Item", item}}}});
  nlohmann::json request = {{"RequestItems", {{table, requests}}}};
  ASSIGN_OR_RETURN(nlohmann::json answer, Call("BatchWriteItem", request, error));
  std::vector<nlohmann::json> unprocessed;
  auto it = answer.find("UnprocessedItems");
  if (it != answer.end() && it->is_object()) {
    auto t = it->find(table);
    if (t != it->end() && t->is_array()) {
      for (const auto& r : *t) {
        if (r.contains("PutRequest") && r["PutRequest"].contains("Item")) {
          unprocessed.push_back(r["PutRequest"]["Item"]);
        }
      }
    }
  }
  return unprocessed;
}

Status DynamoDbClient::PutItem(const std::string& table, const nlohmann::json& item,
                               const std::string& condition, const nlohmann::json& names,
                               const nlohmann::json& values, DynamoError* error) {
  nlohmann::json request = {{"TableName", table}, {"Item", item}};
  if (!condition.empty()) request["ConditionExpression"] = condition;
  if (names.is_object() && !names.empty()) request["ExpressionAttributeNames"] = names;
  if (values.is_object() && !values.empty()) request["ExpressionAttributeValues"] = values;
  Result<nlohmann::json> answer = Call("PutItem", request, error);
  return answer.ok() ? Status::Ok() : answer.status();
}

Result<nlohmann::json> DynamoDbClient::GetItem(const std::string& table, const nlohmann::json& key,
                                               DynamoError* error) {
  nlohmann::json request = {{"TableName", table}, {"Key", key}, {"ConsistentRead", true}};
  ASSIGN_OR_RETURN(nlohmann::json answer, Call("GetItem", request, error));
  auto it = answer.find("Item");
  if (it == answer.end()) return nlohmann::json();
  return *it;
}

Status DynamoDbClient::UpdateItem(const std::string& table, const nlohmann::json& key,
                                  const std::string& update, const std::string& condition,
                                  const nlohmann::json& names, const nlohmann::json& values,
                                  DynamoError* error) {
  nlohmann::json request = {{"TableName", table}, {"Key", key}, {"UpdateExpression", update}};
  if (!condition.empty()) request["ConditionExpression"] = condition;
  if (names.is_object() && !names.empty()) request["ExpressionAttributeNames"] = names;
  if (values.is_object() && !values.empty()) request["ExpressionAttributeValues"] = values;
  Result<nlohmann::json> answer = Call("UpdateItem", request, error);
  return answer.ok() ? Status::Ok() : answer.status();
}

Result<std::vector<nlohmann::json>> DynamoDbClient::QueryPartition(const std::string& table,
                                                                   const std::string& hash_key,
                                                                   const nlohmann::json& hash_value,
                                                                   size_t limit,
                                                                   DynamoError* error) {
  std::vector<nlohmann::json> items;
  nlohmann::json start;
  do {
    nlohmann::json request = {{"TableName", table},
                              {"KeyConditionExpression", "#h = :h"},
                              {"ExpressionAttributeNames", {{"#h", hash_key}}},
                              {"ExpressionAttributeValues", {{":h", hash_value}}},
                              {"ConsistentRead", true}};
    if (!start.is_null()) request["ExclusiveStartKey"] = start;
    if (limit > 0) request["Limit"] = limit - items.size();
    ASSIGN_OR_RETURN(nlohmann::json answer, Call("Query", request, error));
    for (auto& item : answer.value("Items", nlohmann::json::array())) items.push_back(item);
    start = answer.value("LastEvaluatedKey", nlohmann::json());
  } while (!start.is_null() && (limit == 0 || items.size() < limit));
  return items;
}

}  // namespace machub::cloud
