#pragma once
// The per-store configuration (issue #11): what a chain sets for one store in the cloud
// rather than in the thing group's deployment, which every store of the group shares.
//
// ---- Format (docs/S3_FORMAT.md, "Store configuration") --------------------------------
// Object: `<prefix>/config/store=<store_id>/store.json` (StoreConfigKey), written by the
// chain's back office, read by the hub with a conditional GET (If-None-Match: <ETag>).
// Body, UTF-8 JSON, at most 1 MiB:
//   {"version": "2026-12-06.1",            required, string, 1..128 characters
//    "terminal_tokens": [                  optional, at most 1000 entries
//      {"terminal_id": "T01",              required, [A-Za-z0-9._-]{1,32}
//       "sha256": "<64 hex digits>",       required, lower case: SHA-256 of the token
//                                          (`machub token hash`); never the token itself
//       "role": "terminal"|"manager",      optional, default "terminal"
//       "expires_at": "2027-01-31T00:00:00Z"}],  optional, RFC 3339
//    "offline": {                          optional; each member overrides the hub's own
//      "enabled": true,                    configuration key offline.<member>; absent
//      "card_max_amount": "150.00",        members keep the hub's value; an empty
//      "terminal_max_outstanding": "600",  string means "no limit"; amounts are decimal
//      "store_max_outstanding": "2000"}}   strings >= 0 with at most 3 decimals
// Members not named here are ignored; text must not contain control characters. All or
// nothing: a document that breaks a rule is refused whole, the hub keeps what it had and
// status shows why (last_error, with the JSON path of the field, never a value).
//
// ---- What the hub does with it ---------------------------------------------------------
// The tokens are accepted besides those of the configuration and of the tokens file (a
// new document replaces the previous document's tokens whole); the offline limits
// replace the configured ones member by member. The last applied document is kept in
// `<data_dir>/store-config.json` (replaced atomically and durably), so a hub that
// restarts without a link starts with it. A missing object (404) keeps the last good
// copy: to revoke a token, publish a document without it.

#include <cstddef>
#include <cstdint>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "cloud/object_store.h"
#include "core/clock.h"
#include "core/metrics.h"
#include "core/status.h"

namespace machub::catalog {

inline constexpr size_t kMaxStoreConfigBytes = 1u << 20;
inline constexpr size_t kMaxStoreConfigTokens = 1000;

struct StoreConfigToken {
  std::string terminal_id;
  std::string sha256_hex;
  int64_t expires_at_ms = 0;  // 0: never
  bool manager = false;

  bool operator==(const StoreConfigToken&) const = default;
};

// Members present in the document; nullopt: keep the hub's configured value.
struct StoreOfflineOverrides {
  std::optional<bool> enabled;
  std::optional<std::string> card_max_amount;  // "" = no limit
  std::optional<std::string> terminal_max_outstanding;
  std::optional<std::string> store_max_outstanding;

  bool operator==(const StoreOfflineOverrides&) const = default;
};

struct StoreConfig {
  std::string version;
  std::vector<StoreConfigToken> tokens;
  StoreOfflineOverrides offline;

  bool operator==(const StoreConfig&) const = default;
};

// "<prefix>/config/store=<store_id>/store.json"; an empty prefix gives "config/...".
std::string StoreConfigKey(std::string_view prefix, std::string_view store_id);

// Parses and validates a store.json body (rules above). Errors: kInvalidJson (not JSON or
// not an object), kMissingField / kInvalidField with the JSON path in field()
// ("terminal_tokens[3].sha256"), kPayloadTooLarge over kMaxStoreConfigBytes. Messages
// quote no values (a token hash is not secret, but a mistyped token might be).
Result<StoreConfig> ParseStoreConfig(std::string_view json);

struct StoreConfigFetcherOptions {
  std::string key;         // StoreConfigKey(config prefix, store_id)
  std::string local_path;  // "<data_dir>/store-config.json"; its folder must exist
  // After a failed attempt the periodic thread tries again after min(interval, this).
  int64_t retry_after_error_ms = 60'000;
};

// Keeps the hub's copy of store.json in step with the object store, as CatalogFetcher
// does for the catalog (same conditional GET, same thread model, same error handling):
//   Open() loads the last applied document from local_path (an unreadable or invalid copy
//   is logged and ignored: the next fetch downloads the object again);
//   FetchOnce(): 304 (or the same ETag, or the same content) -> fetched_at only, nothing
//   written to disk (no SD-card wear for an unchanged object); 200 with a valid document
//   -> written to local_path, then published (generation() grows); an invalid document
//   or an error -> nothing changes but last_error.
// Threads: every public function is thread-safe; Snapshot/StatusJson/generation never
// wait for a fetch. Ownership: `store`, `clock` and `metrics` must outlive the fetcher.
// Metrics: machub_store_config_fetches_total{result="applied|not_modified|invalid|error"}.
class StoreConfigFetcher {
 public:
  // `store` may be null (no cloud configured): the local copy is used and FetchOnce()
  // reports kUnavailable. kInvalidArgument for an empty key or local_path.
  static Result<std::unique_ptr<StoreConfigFetcher>> Open(cloud::ObjectStore* store,
                                                          StoreConfigFetcherOptions options,
                                                          const core::Clock* clock,
                                                          core::MetricsRegistry* metrics);
  ~StoreConfigFetcher();
  StoreConfigFetcher(const StoreConfigFetcher&) = delete;
  StoreConfigFetcher& operator=(const StoreConfigFetcher&) = delete;

  // One attempt. OK for applied / not modified; otherwise the reason (kNotFound when the
  // object does not exist), also kept as last_error.
  Status FetchOnce();
  // The periodic thread (catalog/poll_loop.h); kInvalidArgument for interval_ms <= 0 or
  // when already started.
  Status Start(int64_t interval_ms);
  void Stop();
  void FetchSoon();

  // The applied document, or null when the hub has none.
  std::shared_ptr<const StoreConfig> Snapshot() const;
  // Grows by one each time a new document is published (Open's copy counts): a reader
  // compares it with the value it last applied.
  int64_t generation() const;

  // The "store_config" block of GET /v1/status:
  //   {"key": "…", "version": "…"|null, "etag": "…"|null, "terminal_tokens": N,
  //    "offline": {overridden members}, "fetched_at", "applied_at", "last_attempt_at",
  //    "last_error_at": RFC 3339|null, "last_error": "…"|null}
  nlohmann::ordered_json StatusJson() const;

 private:
  struct Impl;
  explicit StoreConfigFetcher(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace machub::catalog
