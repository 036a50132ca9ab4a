#include "catalog/catalog_store.h"

#include <sqlite3.h>

#include <string_view>
#include <utility>

#include "sqlite/sqlite.h"

namespace machub::catalog {
namespace {

constexpr int kBusyTimeoutMs = 5000;
constexpr int kSchemaVersion = 1;

// SQLite codes map as for every SQLite file (sqlite::ToStatus), with one exception: a
// file that is not a catalog database or a damaged one is kInternal, so the fetcher can
// tell it from a transient failure and rebuild the cache from the cloud.
Status SqliteError(sqlite3* db, int rc, std::string_view what) {
  const std::string context = "catalog.db: " + std::string(what);
  if (sqlite::IsDamagedFile(rc)) {
    return Status(ErrorCode::kInternal, context + ": " + sqlite3_errstr(rc));
  }
  return sqlite::ToStatus(db, rc, context);
}

class Stmt {
 public:
  Stmt() = default;
  ~Stmt() { sqlite3_finalize(stmt_); }
  Stmt(const Stmt&) = delete;
  Stmt& operator=(const Stmt&) = delete;

  Status Prepare(sqlite3* db, const char* sql, const char* what) {
    db_ = db;
    what_ = what;
    const int rc = sqlite3_prepare_v2(db, sql, -1, &stmt_, nullptr);
    return rc == SQLITE_OK ? Status::Ok() : SqliteError(db, rc, what);
  }
  sqlite3_stmt* get() const { return stmt_; }
  // SQLITE_ROW -> true, SQLITE_DONE -> false.
  Result<bool> Step() {
    const int rc = sqlite3_step(stmt_);
    if (rc == SQLITE_ROW) return true;
    if (rc == SQLITE_DONE) return false;
    return SqliteError(db_, rc, what_);
  }
  void Reset() {
    sqlite3_reset(stmt_);
    sqlite3_clear_bindings(stmt_);
  }
  void BindText(int i, const std::string& s) { sqlite::BindText(stmt_, i, s); }
  void BindInt(int i, int64_t v) { sqlite3_bind_int64(stmt_, i, v); }

 private:
  sqlite3* db_ = nullptr;
  sqlite3_stmt* stmt_ = nullptr;
  const char* what_ = "";
};

// Column readers that refuse a type SQLite would silently convert: rows that do not look
// like ours mean a damaged or foreign file.
bool TextColumn(sqlite3_stmt* stmt, int i, std::string* out) {
  if (sqlite3_column_type(stmt, i) != SQLITE_TEXT) return false;
  const auto* text = reinterpret_cast<const char*>(sqlite3_column_text(stmt, i));
  out->assign(text, static_cast<size_t>(sqlite3_column_bytes(stmt, i)));
  return true;
}

bool IntColumn(sqlite3_stmt* stmt, int i, int64_t* out) {
  if (sqlite3_column_type(stmt, i) != SQLITE_INTEGER) return false;
  *out = sqlite3_column_int64(stmt, i);
  return true;
}

Status Damaged(std::string_view what) {
  return Status(ErrorCode::kInternal, "catalog.db: " + std::string(what));
}

}  // namespace

Result<std::unique_ptr<CatalogStore>> CatalogStore::Open(const std::string& path) {
  sqlite3* db = nullptr;
  const int rc = sqlite3_open_v2(
      path.c_str(), &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, nullptr);
  if (rc != SQLITE_OK) {
    Status st = SqliteError(db, rc, "open " + path);
    sqlite3_close(db);
    return st;
  }
  std::unique_ptr<CatalogStore> store(new CatalogStore(path, db));
  sqlite3_busy_timeout(db, kBusyTimeoutMs);
  // WAL so that a reader of the file (machub status, a backup) never blocks an apply.
  // synchronous=NORMAL: a power cut may undo the last apply, never half of it, and the
  // older catalog comes back with its older ETag, so the next fetch simply repeats it.
  RETURN_IF_ERROR(store->Exec(
      "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA journal_size_limit=4194304;",
      "set pragmas"));

  Stmt version;
  RETURN_IF_ERROR(version.Prepare(db, "PRAGMA user_version", "read user_version"));
  ASSIGN_OR_RETURN(bool has_row, version.Step());
  const int64_t user_version = has_row ? sqlite3_column_int64(version.get(), 0) : 0;
  if (user_version == 0) {
    RETURN_IF_ERROR(
        store->Exec("BEGIN IMMEDIATE;"
                    "CREATE TABLE IF NOT EXISTS catalog_meta("
                    "  id INTEGER PRIMARY KEY CHECK (id = 1),"
                    "  version TEXT NOT NULL, etag TEXT NOT NULL, currency TEXT NOT NULL,"
                    "  fetched_at_ms INTEGER NOT NULL, applied_at_ms INTEGER NOT NULL,"
                    "  product_count INTEGER NOT NULL);"
                    "CREATE TABLE IF NOT EXISTS products("
                    "  sku TEXT PRIMARY KEY, name TEXT NOT NULL, price_minor INTEGER NOT NULL,"
                    "  tax_rate_micro INTEGER NOT NULL, active INTEGER NOT NULL) WITHOUT ROWID;"
                    "PRAGMA user_version=1;"
                    "COMMIT;",
                    "create schema"));
  } else if (user_version != kSchemaVersion) {
    return Damaged("schema version " + std::to_string(user_version) +
                   " is not one this hub understands");
  }
  return store;
}

CatalogStore::~CatalogStore() { sqlite3_close(db_); }

Status CatalogStore::Exec(const char* sql, const char* what) {
  char* error = nullptr;
  const int rc = sqlite3_exec(db_, sql, nullptr, nullptr, &error);
  sqlite3_free(error);
  if (rc == SQLITE_OK) return Status::Ok();
  Status st = SqliteError(db_, rc, what);
  if (!sqlite3_get_autocommit(db_)) sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
  return st;
}

Result<std::optional<StoredCatalog>> CatalogStore::Load() {
  // One read transaction: the meta row and the products are of the same apply.
  RETURN_IF_ERROR(Exec("BEGIN", "begin load"));
  auto load = [&]() -> Result<std::optional<StoredCatalog>> {
    Stmt meta;
    RETURN_IF_ERROR(meta.Prepare(db_,
                                 "SELECT version, etag, currency, fetched_at_ms, applied_at_ms, "
                                 "product_count FROM catalog_meta WHERE id = 1",
                                 "read catalog_meta"));
    ASSIGN_OR_RETURN(bool has_meta, meta.Step());
    if (!has_meta) return std::optional<StoredCatalog>();
    StoredCatalog stored;
    int64_t product_count = 0;
    if (!TextColumn(meta.get(), 0, &stored.catalog.version) ||
        !TextColumn(meta.get(), 1, &stored.etag) ||
        !TextColumn(meta.get(), 2, &stored.catalog.currency) ||
        !IntColumn(meta.get(), 3, &stored.fetched_at_ms) ||
        !IntColumn(meta.get(), 4, &stored.applied_at_ms) ||
        !IntColumn(meta.get(), 5, &product_count) || product_count < 0) {
      return Damaged("catalog_meta has unexpected column types");
    }
    Stmt rows;
    RETURN_IF_ERROR(rows.Prepare(db_,
                                 "SELECT sku, name, price_minor, tax_rate_micro, active FROM "
                                 "products ORDER BY sku",
                                 "read products"));
    stored.catalog.products.reserve(static_cast<size_t>(product_count));
    while (true) {
      ASSIGN_OR_RETURN(bool has_row, rows.Step());
      if (!has_row) break;
      CatalogProduct p;
      int64_t active = 0;
      if (!TextColumn(rows.get(), 0, &p.sku) || !TextColumn(rows.get(), 1, &p.name) ||
          !IntColumn(rows.get(), 2, &p.price_minor) ||
          !IntColumn(rows.get(), 3, &p.tax_rate_micro) || !IntColumn(rows.get(), 4, &active) ||
          (active != 0 && active != 1)) {
        return Damaged("products has unexpected column types");
      }
      p.active = active == 1;
      stored.catalog.products.push_back(std::move(p));
    }
    if (static_cast<int64_t>(stored.catalog.products.size()) != product_count) {
      return Damaged("products holds " + std::to_string(stored.catalog.products.size()) +
                     " rows, catalog_meta says " + std::to_string(product_count));
    }
    if (Status valid = ValidateCatalog(stored.catalog); !valid.ok()) {
      return Damaged("stored catalog breaks the format rules: " + valid.ToString());
    }
    return std::optional<StoredCatalog>(std::move(stored));
  };
  Result<std::optional<StoredCatalog>> result = load();
  // A read transaction has nothing to keep; COMMIT and ROLLBACK both just end it.
  sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
  return result;
}

Status CatalogStore::Apply(const Catalog& catalog, const std::string& etag, int64_t fetched_at_ms,
                           int64_t applied_at_ms) {
  RETURN_IF_ERROR(Exec("BEGIN IMMEDIATE", "begin apply"));
  auto apply = [&]() -> Status {
    RETURN_IF_ERROR(Exec("DELETE FROM products", "delete products"));
    Stmt insert;
    RETURN_IF_ERROR(insert.Prepare(db_,
                                   "INSERT INTO products(sku, name, price_minor, tax_rate_micro, "
                                   "active) VALUES (?, ?, ?, ?, ?)",
                                   "insert product"));
    for (const CatalogProduct& p : catalog.products) {
      insert.Reset();
      insert.BindText(1, p.sku);
      insert.BindText(2, p.name);
      insert.BindInt(3, p.price_minor);
      insert.BindInt(4, p.tax_rate_micro);
      insert.BindInt(5, p.active ? 1 : 0);
      ASSIGN_OR_RETURN(bool row, insert.Step());
      (void)row;
    }
    Stmt meta;
    RETURN_IF_ERROR(meta.Prepare(db_,
                                 "INSERT OR REPLACE INTO catalog_meta(id, version, etag, currency, "
                                 "fetched_at_ms, applied_at_ms, product_count) "
                                 "VALUES (1, ?, ?, ?, ?, ?, ?)",
                                 "write catalog_meta"));
    meta.BindText(1, catalog.version);
    meta.BindText(2, etag);
    meta.BindText(3, catalog.currency);
    meta.BindInt(4, fetched_at_ms);
    meta.BindInt(5, applied_at_ms);
    meta.BindInt(6, static_cast<int64_t>(catalog.products.size()));
    ASSIGN_OR_RETURN(bool row, meta.Step());
    (void)row;
    return Exec("COMMIT", "commit apply");
  };
  Status st = apply();
  if (!st.ok() && !sqlite3_get_autocommit(db_)) {
    sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
  }
  return st;
}

Status CatalogStore::Touch(int64_t fetched_at_ms, const std::string& etag) {
  Stmt update;
  RETURN_IF_ERROR(update.Prepare(
      db_, "UPDATE catalog_meta SET fetched_at_ms = ?, etag = ? WHERE id = 1", "touch"));
  update.BindInt(1, fetched_at_ms);
  update.BindText(2, etag);
  ASSIGN_OR_RETURN(bool row, update.Step());
  (void)row;
  return Status::Ok();
}

}  // namespace machub::catalog
