// The journal's schema: the migration steps and the store binding. sqlite_journal.h
// describes every version; a deployed database has run the old steps, so they are never
// edited, only appended to.

#include <string>
#include <string_view>

#include "core/log.h"
#include "journal/internal.h"

namespace machub::journal {
namespace {

// Migration i brings user_version from i to i+1. Append new steps; never edit old ones
// (a deployed database has already run them).
constexpr const char* kMigrations[] = {
    // v1: the sale journal.
    R"sql(
CREATE TABLE meta(
  key TEXT PRIMARY KEY,
  value TEXT NOT NULL
) WITHOUT ROWID;
CREATE TABLE terminals(
  terminal_id TEXT PRIMARY KEY,
  last_receipt INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TABLE sales(
  seq INTEGER PRIMARY KEY,
  id TEXT NOT NULL UNIQUE,
  terminal_id TEXT NOT NULL,
  receipt_no TEXT NOT NULL,
  type TEXT NOT NULL CHECK (type IN ('sale', 'refund', 'void')),
  ref TEXT REFERENCES sales(id),
  created_at_ms INTEGER NOT NULL,
  received_at_ms INTEGER NOT NULL,
  clock_skew INTEGER NOT NULL,
  currency TEXT NOT NULL,
  total INTEGER NOT NULL,
  change INTEGER NOT NULL,
  canonical TEXT NOT NULL,
  prev_hash BLOB NOT NULL,
  hash BLOB NOT NULL,
  uploaded INTEGER NOT NULL DEFAULT 0
);
)sql",
    // v2: upload bookkeeping for sync/ (batches, the backlog index) and pruning (an index
    // for the foreign key checks that deleting a referenced sale runs).
    R"sql(
CREATE TABLE batches(
  id INTEGER PRIMARY KEY,
  first_seq INTEGER NOT NULL UNIQUE,
  last_seq INTEGER NOT NULL,
  object_key TEXT NOT NULL,
  format TEXT NOT NULL,
  gzip_level INTEGER NOT NULL,
  raw_bytes INTEGER NOT NULL,
  gz_bytes INTEGER NOT NULL,
  canonical_bytes INTEGER NOT NULL,
  sha256 TEXT NOT NULL,
  md5 TEXT NOT NULL,
  created_at_ms INTEGER NOT NULL,
  state TEXT NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'uploaded', 'quarantined')),
  attempts INTEGER NOT NULL DEFAULT 0,
  last_error TEXT NOT NULL DEFAULT '',
  uploaded_at_ms INTEGER,
  CHECK (last_seq >= first_seq)
);
CREATE INDEX batches_unfinished ON batches(first_seq) WHERE state <> 'uploaded';
CREATE INDEX sales_unuploaded ON sales(seq) WHERE uploaded = 0;
CREATE INDEX sales_ref ON sales(ref) WHERE ref IS NOT NULL;
)sql",
    // v3: a sale is uploaded iff an uploaded batch covers its seq (derived from batches,
    // see kStoredColumns), so marking a batch uploaded writes one row instead of rewriting
    // every sale row of the batch. sales.uploaded stays (dropping a column rewrites the
    // whole table at upgrade) but is neither written nor read any more; its partial
    // index, which every insert maintained, goes.
    R"sql(
DROP INDEX IF EXISTS sales_unuploaded;
)sql",
    // v4: one progress cursor per sink that is not batch-based (Ledger::RegisterSink);
    // Prune stays at or below the lowest active cursor.
    R"sql(
CREATE TABLE sink_progress(
  sink TEXT PRIMARY KEY,
  delivered_seq INTEGER NOT NULL DEFAULT 0 CHECK (delivered_seq >= 0),
  active INTEGER NOT NULL DEFAULT 1 CHECK (active IN (0, 1)),
  updated_at_ms INTEGER NOT NULL DEFAULT 0
) WITHOUT ROWID;
)sql",
    // v5: the id index (issue #8). Every stored id with its seq and hash, kept after its
    // sale row is pruned, for JournalOptions::id_horizon_ms, so that a retry of a pruned
    // sale is answered id_expired (never stored twice) and a refund of a pruned sale
    // ref_expired (never accepted against nothing).
    R"sql(
CREATE TABLE ids(
  id TEXT PRIMARY KEY,
  seq INTEGER NOT NULL,
  hash BLOB NOT NULL,
  received_at_ms INTEGER NOT NULL
) WITHOUT ROWID;
INSERT INTO ids(id, seq, hash, received_at_ms) SELECT id, seq, hash, received_at_ms FROM sales;
)sql",
    // v6: store events (issue #8) in the same table, so they share the seq and the chain.
    // The CHECK on sales.type is widened in place by WidenEntryTypes below (SQLite
    // cannot ALTER a CHECK; rebuilding the table would copy the whole journal on the
    // device). The open drawer of each terminal; the last Z report lives in meta.
    R"sql(
CREATE TABLE drawers(
  terminal_id TEXT PRIMARY KEY,
  opened_seq INTEGER NOT NULL
) WITHOUT ROWID;
)sql",
    // v7: offline card payments (issue #9): one row per payment marked offline, its state
    // until the processor's answer (a payment_authorization entry) or a void; the type
    // CHECK gains payment_authorization (WidenEntryTypes).
    R"sql(
CREATE TABLE offline_payments(
  sale_id TEXT NOT NULL,
  payment_index INTEGER NOT NULL,
  terminal_id TEXT NOT NULL,
  amount INTEGER NOT NULL,
  currency TEXT NOT NULL,
  sale_seq INTEGER NOT NULL,
  received_at_ms INTEGER NOT NULL,
  state TEXT NOT NULL CHECK (state IN ('outstanding', 'approved', 'declined', 'voided')),
  outcome_seq INTEGER,
  PRIMARY KEY (sale_id, payment_index)
) WITHOUT ROWID;
CREATE INDEX offline_outstanding ON offline_payments(received_at_ms) WHERE state = 'outstanding';
)sql",
    // v8: sales rebuilt without the UNIQUE index on id (issue #11, SD-card wear). That
    // index took a random leaf of ~40-byte keys per sale: about 40% of a commit's WAL
    // frames, and at every checkpoint a random page per sale. An id is now found through
    // sale_ids, written in bulk, and the rows since in memory (internal.h, "finding a row
    // by its id"); the writer is the only inserter and looks an id up before it inserts
    // it (append.cc). ref loses its REFERENCES sales(id), which needed the UNIQUE index:
    // append.cc refuses a refund of an id that is not stored, and Prune keeps the original
    // of a kept refund. SQLite's documented procedure for other schema changes
    // (https://sqlite.org/lang_altertable.html): new table, copy, drop, rename, indexes.
    // The copy runs once, at the first open by this version; the connection has foreign
    // keys off (sqlite_journal.cc), so DROP TABLE checks nothing. The type CHECK is
    // kTypeCheckV7 byte for byte, for a later WidenEntryTypes.
    R"sql(
CREATE TABLE sales_v8(
  seq INTEGER PRIMARY KEY,
  id TEXT NOT NULL,
  terminal_id TEXT NOT NULL,
  receipt_no TEXT NOT NULL,
  type TEXT NOT NULL CHECK (type IN ('sale', 'refund', 'void', 'drawer_open', 'cash_in', 'cash_out', 'drawer_close', 'z_report', 'payment_authorization')),
  ref TEXT,
  created_at_ms INTEGER NOT NULL,
  received_at_ms INTEGER NOT NULL,
  clock_skew INTEGER NOT NULL,
  currency TEXT NOT NULL,
  total INTEGER NOT NULL,
  change INTEGER NOT NULL,
  canonical TEXT NOT NULL,
  prev_hash BLOB NOT NULL,
  hash BLOB NOT NULL,
  uploaded INTEGER NOT NULL DEFAULT 0
);
INSERT INTO sales_v8(seq, id, terminal_id, receipt_no, type, ref, created_at_ms,
                     received_at_ms, clock_skew, currency, total, change, canonical,
                     prev_hash, hash, uploaded)
  SELECT seq, id, terminal_id, receipt_no, type, ref, created_at_ms, received_at_ms,
         clock_skew, currency, total, change, canonical, prev_hash, hash, uploaded
  FROM sales ORDER BY seq;
DROP TABLE sales;
ALTER TABLE sales_v8 RENAME TO sales;
CREATE INDEX sales_ref ON sales(ref) WHERE ref IS NOT NULL;
CREATE TABLE sale_ids(
  id_hash INTEGER NOT NULL,
  seq INTEGER NOT NULL,
  PRIMARY KEY (id_hash, seq)
) WITHOUT ROWID;
INSERT INTO sale_ids(id_hash, seq) SELECT id_hash(id), seq FROM sales ORDER BY 1, 2;
INSERT INTO meta(key, value) SELECT 'ids_indexed_seq', coalesce(max(seq), 0) FROM sales;
)sql",
};

// The sales.type CHECK of v1 and what v6 makes of it. The text must match the v1 step
// byte for byte: SQLite keeps a table's CREATE statement as written.
constexpr std::string_view kTypeCheckV1 = "CHECK (type IN ('sale', 'refund', 'void'))";
constexpr std::string_view kTypeCheckV6 =
    "CHECK (type IN ('sale', 'refund', 'void', 'drawer_open', 'cash_in', 'cash_out', "
    "'drawer_close', 'z_report'))";
constexpr std::string_view kTypeCheckV7 =
    "CHECK (type IN ('sale', 'refund', 'void', 'drawer_open', 'cash_in', 'cash_out', "
    "'drawer_close', 'z_report', 'payment_authorization'))";

// Widens the CHECK on sales.type inside the migration's transaction, by SQLite's
// documented procedure for loosening a constraint (https://sqlite.org/lang_altertable.html,
// "making other kinds of table schema changes"): rewrite the table's SQL in sqlite_schema
// with writable_schema on, and bump schema_version so every connection re-reads it. Every
// existing row satisfies the wider check, so no data changes.
Status WidenEntryTypes(sqlite3* db, std::string_view from, std::string_view to,
                       std::string_view step) {
  Result<int64_t> version = QueryInt(db, "PRAGMA schema_version", "read schema_version");
  if (!version.ok()) return version.status();
  if (Exec(db, "PRAGMA writable_schema=ON") != SQLITE_OK) {
    return SqliteError(db, sqlite3_errcode(db), "writable_schema");
  }
  int changed = 0;
  {
    Stmt update(db,
                "UPDATE sqlite_schema SET sql = replace(sql, ?1, ?2) "
                "WHERE type = 'table' AND name = 'sales' AND instr(sql, ?1) > 0");
    int rc = update.prepare_rc();
    if (rc == SQLITE_OK) {
      BindText(update.get(), 1, from);
      BindText(update.get(), 2, to);
      rc = sqlite3_step(update.get());
    }
    if (rc != SQLITE_DONE) {
      Exec(db, "PRAGMA writable_schema=OFF");
      return SqliteError(db, rc, "widen sales.type");
    }
    changed = sqlite3_changes(db);
  }
  const std::string bump = "PRAGMA schema_version=" + std::to_string(*version + 1);
  int rc = Exec(db, bump.c_str());
  Exec(db, "PRAGMA writable_schema=OFF");
  if (rc != SQLITE_OK) return SqliteError(db, rc, "bump schema_version");
  if (changed != 1) {
    return Status(ErrorCode::kInternal, "journal: migration to " + std::string(step) +
                                            ": the sales table's type check is not the one "
                                            "the previous version left");
  }
  return Status::Ok();
}

}  // namespace

const int kSchemaVersion = static_cast<int>(std::size(kMigrations));

Status MigrateSchema(sqlite3* db) {
  for (;;) {
    int brc = Exec(db, "BEGIN IMMEDIATE");
    if (brc != SQLITE_OK) return SqliteError(db, brc, "begin migration");
    auto rollback = [&](Status s) {
      Exec(db, "ROLLBACK");
      return s;
    };
    Result<int64_t> version = QueryInt(db, "PRAGMA user_version", "read user_version");
    if (!version.ok()) return rollback(version.status());
    if (*version > kSchemaVersion) {
      return rollback(Status(ErrorCode::kInvalidArgument,
                             "journal: the database has schema version " +
                                 std::to_string(*version) + ", newer than this binary's " +
                                 std::to_string(kSchemaVersion) + "; upgrade machub"));
    }
    if (*version == kSchemaVersion) {
      int crc = Exec(db, "COMMIT");
      if (crc != SQLITE_OK) return rollback(SqliteError(db, crc, "commit"));
      return Status::Ok();
    }
    int src = Exec(db, kMigrations[*version]);
    if (src != SQLITE_OK) {
      return rollback(SqliteError(db, src, "migration to v" + std::to_string(*version + 1)));
    }
    if (*version + 1 == 6 || *version + 1 == 7) {
      Status widened = *version + 1 == 6 ? WidenEntryTypes(db, kTypeCheckV1, kTypeCheckV6, "v6")
                                         : WidenEntryTypes(db, kTypeCheckV6, kTypeCheckV7, "v7");
      if (!widened.ok()) return rollback(widened);
    }
    std::string set_version = "PRAGMA user_version=" + std::to_string(*version + 1);
    src = Exec(db, set_version.c_str());
    if (src == SQLITE_OK) src = Exec(db, "COMMIT");
    if (src != SQLITE_OK) {
      return rollback(SqliteError(db, src, "migration to v" + std::to_string(*version + 1)));
    }
    core::LogInfo("journal_migrated", {{"schema_version", *version + 1}});
  }
}

Status BindStore(sqlite3* db, const std::string& store_id) {
  int brc = Exec(db, "BEGIN IMMEDIATE");
  if (brc != SQLITE_OK) return SqliteError(db, brc, "begin");
  Status result;
  {
    Stmt get(db, "SELECT value FROM meta WHERE key='store_id'");
    int grc = get.prepare_rc();
    if (grc == SQLITE_OK) grc = sqlite3_step(get.get());
    const bool found = grc == SQLITE_ROW;
    const std::string stored_store = found ? ColumnText(get.get(), 0) : std::string();
    if (grc != SQLITE_ROW && grc != SQLITE_DONE) {
      result = SqliteError(db, grc, "read store_id");
    } else if (found && stored_store != store_id) {
      result =
          Status(ErrorCode::kInvalidArgument, "journal: the database belongs to store \"" +
                                                  stored_store + "\", not \"" + store_id + "\"");
    } else if (!found) {
      Stmt put(db, "INSERT INTO meta(key, value) VALUES('store_id', ?1)");
      int prc = put.prepare_rc();
      if (prc == SQLITE_OK) {
        BindText(put.get(), 1, store_id);
        prc = sqlite3_step(put.get());
      }
      if (prc != SQLITE_DONE && prc != SQLITE_OK) result = SqliteError(db, prc, "write store_id");
    }
  }
  if (result.ok()) {
    int crc = Exec(db, "COMMIT");
    if (crc != SQLITE_OK) result = SqliteError(db, crc, "commit");
  }
  if (!result.ok()) Exec(db, "ROLLBACK");
  return result;
}

}  // namespace machub::journal
