#pragma once
// The product catalog: its S3 format, its validation, the immutable in-memory view the API
// answers from, and CatalogFetcher, which keeps the hub's copy in step with the cloud.
//
// ---- Format (docs/S3_FORMAT.md, "Catalog") -------------------------------------------
// Object: `<prefix>/catalog/store=<store_id>/catalog.json` (CatalogKey), written by the
// chain's back office, read by the hub with a conditional GET (If-None-Match: <ETag>).
// Body, UTF-8 JSON, at most 64 MiB:
//   {"version": "2026-11-27.1",          required, string, 1..128 characters
//    "currency": "USD",                  required, a known ISO 4217 code (core/currency.h)
//    "products": [                       required, array of at most 200000 objects
//      {"sku": "0001",                   required, string, 1..64 characters, unique
//       "name": "Coffee",                required, string, 0..200 characters
//       "price": "3.50",                 required, decimal string in the major unit with at
//                                        most the currency's minor digits, >= 0, <= 10^15
//                                        minor units (as a sale's unit_price)
//       "tax_rate": "0.0825",            required, decimal string 0..1, at most 6 places
//       "active": true}                  optional boolean, default true
//    ]}
// Text fields must not contain control characters (U+0000..U+001F, U+007F); lengths
// count Unicode code points. Decimal strings follow core/money.h: "-"? digits ("." digits)?
// — no exponent, no "+", no spaces, no JSON numbers (no floating point near money).
// Members not named here are ignored at every level (forward compatible: a newer back
// office may add fields; this hub neither keeps nor serves them). A member given twice
// counts with its last value (as most JSON readers do).
// All or nothing: a catalog that breaks any rule is refused as a whole; the hub keeps the
// catalog it had, and status shows why (last_error, with the JSON path of the field).
//
// ---- What the hub serves (GET /v1/catalog, GET /v1/products/{sku}) -------------------
// A canonical rendering of the accepted catalog, not the downloaded bytes: compact JSON
//   {"version":"…","currency":"USD","products":[{"sku":"0001","name":"Coffee",
//    "price":"3.50","tax_rate":"0.0825","active":true},…]}
// with products sorted by sku (byte order), prices with exactly the currency's minor
// digits, tax rates without trailing zeros ("0.0825", "0", "1"), unknown members dropped.
// Its ETag is strong: "\"<first 32 hex digits of SHA-256(body)>\"" — equal content gives
// an equal ETag, across restarts too. A product: {"sku","name","price","tax_rate",
// "active","currency"}; inactive products are still served (with "active":false).

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

inline constexpr size_t kMaxCatalogProducts = 200'000;
inline constexpr size_t kMaxCatalogBytes = 64u << 20;
inline constexpr int64_t kDefaultCatalogIntervalMs = 5 * 60 * 1000;

struct CatalogProduct {
  std::string sku;
  std::string name;
  int64_t price_minor = 0;     // minor units of the catalog's currency
  int64_t tax_rate_micro = 0;  // millionths: 82500 is 8.25 %
  bool active = true;

  bool operator==(const CatalogProduct&) const = default;
};

struct Catalog {
  std::string version;
  std::string currency;                  // a code FindCurrency knows
  std::vector<CatalogProduct> products;  // sorted by sku, skus unique

  bool operator==(const Catalog&) const = default;
};

// "<prefix>/catalog/store=<store_id>/catalog.json"; an empty prefix gives "catalog/...".
// Slashes at the ends of `prefix` are dropped.
std::string CatalogKey(std::string_view prefix, std::string_view store_id);

// Parses and validates a catalog.json body (rules above). Errors: kInvalidJson (not JSON,
// or not an object at the top), kMissingField / kInvalidField with the JSON path in
// field() ("products[12].price"), kPayloadTooLarge over kMaxCatalogBytes. The message
// quotes no field values.
Result<Catalog> ParseCatalog(std::string_view json);

// Checks a catalog built by other means (e.g. read back from catalog.db) against the same
// rules, plus products sorted by sku with no duplicate. Same codes and fields as
// ParseCatalog.
Status ValidateCatalog(const Catalog& catalog);

// An accepted catalog, rendered once. Immutable: share it freely between threads.
struct CatalogView {
  Catalog catalog;
  int minor_units = 2;
  std::string etag;  // strong, with quotes: "\"1f0c…\"" (32 hex digits)
  std::string body;  // the GET /v1/catalog body

  // Binary search by sku; null when absent.
  const CatalogProduct* Find(std::string_view sku) const;
  // {"sku","name","price","tax_rate","active","currency"} or nullopt when absent.
  std::optional<std::string> ProductJson(std::string_view sku) const;
};

// Renders `catalog` (which must be valid: ValidateCatalog) into a view.
std::shared_ptr<const CatalogView> MakeCatalogView(Catalog catalog);

// True when an If-None-Match header value matches `etag` (RFC 9110 13.1.2: "*", or a
// comma-separated list of entity tags compared weakly, so W/"x" matches "x"). For
// GET /v1/catalog: a hit answers 304 with the ETag and no body.
bool IfNoneMatchHits(std::string_view header, std::string_view etag);

struct CatalogFetcherOptions {
  std::string key;      // CatalogKey(config prefix, store_id)
  std::string db_path;  // "<data_dir>/catalog.db"; its folder must exist
  // After a failed attempt the thread tries again after min(interval, this).
  int64_t retry_after_error_ms = 60'000;
  size_t max_bytes = kMaxCatalogBytes;  // larger bodies are refused (kPayloadTooLarge)
};

// Keeps the local catalog in step with the object `options.key` of an ObjectStore.
//
// Open() loads the last applied catalog from catalog.db, so the hub answers catalog
// requests offline from its first second. FetchOnce() asks the store with a conditional
// GET (If-None-Match: the stored object ETag):
//   304 (or 200 with the same ETag, or a body rendering to the same content)
//       -> only fetched_at is updated (nothing re-applied);
//   200 -> the body is validated; a valid catalog is written to catalog.db in one
//       transaction and then published as the new snapshot; an invalid one is refused
//       whole and the previous catalog stays;
//   an error -> nothing changes but last_error.
// Errors never stop the fetcher; they are logged (a repeated identical error once) and
// shown by StatusJson().
//
// Threads: every public function is thread-safe. Snapshot()/Product()/StatusJson() take a
// short mutex only to copy a shared_ptr or a few fields, never wait for a fetch, and may be
// called from HTTP I/O threads. FetchOnce() calls are serialized. Start() runs FetchOnce at
// once and then every interval on a thread of its own until Stop() (or destruction);
// Stop() waits for an attempt in flight (bounded by the store's own timeouts).
// Ownership: `store`, `clock` and `metrics` are not owned and must outlive the fetcher.
//
// Metrics: machub_catalog_fetches_total{result="applied|not_modified|invalid|error"},
// machub_catalog_fetch_seconds (histogram), machub_catalog_products (gauge),
// machub_catalog_fetched_timestamp_seconds (gauge, last 200/304).
class CatalogFetcher {
 public:
  // `store` may be null (no cloud configured): the stored catalog is served and
  // FetchOnce() reports kUnavailable. `clock` null: the system clock; `metrics` null: a
  // private registry. Errors: kInvalidArgument for an empty key or db_path, kIoError when
  // catalog.db cannot be opened or created. A catalog.db this hub cannot read (not a
  // database, damaged, or another schema version) is moved aside
  // ("catalog.db.corrupt-<ms>") and a new one created: the catalog is a cache the cloud
  // can refill. Stored rows that fail validation are logged and ignored (no
  // snapshot; the next fetch downloads the whole catalog again).
  static Result<std::unique_ptr<CatalogFetcher>> Open(cloud::ObjectStore* store,
                                                      CatalogFetcherOptions options,
                                                      const core::Clock* clock,
                                                      core::MetricsRegistry* metrics);
  ~CatalogFetcher();
  CatalogFetcher(const CatalogFetcher&) = delete;
  CatalogFetcher& operator=(const CatalogFetcher&) = delete;

  // One attempt, as described above. OK for applied / not modified; otherwise the reason
  // (the store's error, kNotFound when the object does not exist, the validation error,
  // kIoError from catalog.db), also kept as last_error.
  Status FetchOnce();

  // Starts the periodic thread (first attempt at once). kInvalidArgument for
  // interval_ms <= 0 or when already started.
  Status Start(int64_t interval_ms = kDefaultCatalogIntervalMs);
  // Stops and joins the thread. Idempotent; Start() may be called again afterwards.
  void Stop();
  // Wakes the periodic thread for an attempt now (e.g. when the cloud comes back online).
  // No-op when not started.
  void FetchSoon();

  // The current catalog, or null when the hub has none yet. The view never changes; a
  // new catalog is a new view.
  std::shared_ptr<const CatalogView> Snapshot() const;
  // The product JSON of `sku` in the current catalog, nullopt when absent or no catalog.
  std::optional<std::string> Product(std::string_view sku) const;

  // The "catalog" block of GET /v1/status:
  //   {"version": "…"|null, "fetched_at": RFC 3339|null, "applied_at": RFC 3339|null,
  //    "products": N, "etag": "\"…\""|null, "last_error": "…"|null,
  //    "last_error_at": RFC 3339|null, "last_attempt_at": RFC 3339|null}
  // fetched_at: the last time the store confirmed or delivered the catalog;
  // last_error: the last attempt's failure, null after a successful attempt.
  nlohmann::ordered_json StatusJson() const;

  // Attempts finished since Open (successful or not).
  int64_t attempts() const;
  // Waits until attempts() >= n or timeout_ms passes; true when reached.
  bool WaitForAttempts(int64_t n, int64_t timeout_ms) const;

 private:
  struct Impl;

  explicit CatalogFetcher(std::unique_ptr<Impl> impl);

  std::unique_ptr<Impl> impl_;
};

}  // namespace machub::catalog
