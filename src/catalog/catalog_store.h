#pragma once
// CatalogStore: the hub's local copy of the product catalog, in its own SQLite database
// (<data_dir>/catalog.db, WAL), separate from the journal so that a catalog update never
// contends with sale commits for the journal's write lock or its fsyncs.
//
// Schema (PRAGMA user_version = 1):
//   catalog_meta(id INTEGER PRIMARY KEY CHECK (id = 1),  -- at most one row
//                version TEXT, etag TEXT,                -- etag: the object's, unquoted
//                currency TEXT, fetched_at_ms INTEGER,   -- last 200/304 from the store
//                applied_at_ms INTEGER,                  -- when this content was applied
//                product_count INTEGER)
//   products(sku TEXT PRIMARY KEY, name TEXT, price_minor INTEGER,
//            tax_rate_micro INTEGER, active INTEGER) WITHOUT ROWID
// No catalog_meta row means "no catalog yet". Apply() replaces everything in one
// transaction: a reader of the file (or a crash) sees the old catalog or the new one.
//
// Ownership and threads: one object owns one read-write connection; it is NOT
// thread-safe (CatalogFetcher calls it from one thread at a time, under its own mutex).
// Errors: SQLite failures -> kIoError (message names the operation and SQLite's text);
// a file that is not a catalog database, or rows that break the format rules, ->
// kInternal from Load().

#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "catalog/catalog.h"
#include "core/status.h"

struct sqlite3;

namespace machub::catalog {

struct StoredCatalog {
  Catalog catalog;  // products sorted by sku, validated again on load
  std::string etag;
  int64_t fetched_at_ms = 0;
  int64_t applied_at_ms = 0;
};

class CatalogStore {
 public:
  // Opens or creates the database (the folder must exist) and migrates the schema.
  static Result<std::unique_ptr<CatalogStore>> Open(const std::string& path);
  ~CatalogStore();
  CatalogStore(const CatalogStore&) = delete;
  CatalogStore& operator=(const CatalogStore&) = delete;

  // The stored catalog, or nullopt when none was ever applied.
  Result<std::optional<StoredCatalog>> Load();
  // Replaces the stored catalog atomically (one transaction). `catalog` must be valid
  // (ParseCatalog's output: products sorted by sku, unique).
  Status Apply(const Catalog& catalog, const std::string& etag, int64_t fetched_at_ms,
               int64_t applied_at_ms);
  // Records a confirmation (304, or the same content again) of the stored catalog with
  // the object's current ETag. No-op without a catalog.
  Status Touch(int64_t fetched_at_ms, const std::string& etag);

  const std::string& path() const { return path_; }

 private:
  CatalogStore(std::string path, sqlite3* db) : path_(std::move(path)), db_(db) {}

  Status Exec(const char* sql, const char* what);

  std::string path_;
  sqlite3* db_;
};

}  // namespace machub::catalog
