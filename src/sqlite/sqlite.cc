#include "sqlite/sqlite.h"

namespace machub::sqlite {

Status ToStatus(sqlite3* db, int rc, std::string_view what) {
  std::string prefix = std::string(what) + ": ";
  switch (rc & 0xff) {
    case SQLITE_ERROR:
    case SQLITE_MISUSE:
    case SQLITE_RANGE:
    case SQLITE_CONSTRAINT:
    case SQLITE_MISMATCH:
      return Status(ErrorCode::kInternal,
                    prefix + (db != nullptr ? sqlite3_errmsg(db) : sqlite3_errstr(rc)));
    case SQLITE_NOTADB:
      return Status(ErrorCode::kInvalidArgument, prefix + "the file is not a SQLite database");
    default:
      return Status(ErrorCode::kStorageUnavailable, prefix + sqlite3_errstr(rc));
  }
}

bool IsDamagedFile(int rc) {
  const int primary = rc & 0xff;
  return primary == SQLITE_NOTADB || primary == SQLITE_CORRUPT;
}

int Exec(sqlite3* db, const char* sql) { return sqlite3_exec(db, sql, nullptr, nullptr, nullptr); }

Stmt::Stmt(sqlite3* db, std::string_view sql) {
  rc_ = sqlite3_prepare_v2(db, sql.data(), static_cast<int>(sql.size()), &stmt_, nullptr);
}

Stmt::~Stmt() { sqlite3_finalize(stmt_); }

ResetOnExit::~ResetOnExit() {
  sqlite3_reset(stmt_);
  sqlite3_clear_bindings(stmt_);
}

void BindText(sqlite3_stmt* stmt, int index, std::string_view text) {
  sqlite3_bind_text(stmt, index, text.data(), static_cast<int>(text.size()), SQLITE_TRANSIENT);
}

void BindBlob(sqlite3_stmt* stmt, int index, std::string_view bytes) {
  sqlite3_bind_blob(stmt, index, bytes.data(), static_cast<int>(bytes.size()), SQLITE_TRANSIENT);
}

std::string ColumnText(sqlite3_stmt* stmt, int col) {
  const auto* text = reinterpret_cast<const char*>(sqlite3_column_text(stmt, col));
  return text == nullptr ? std::string() : std::string(text, sqlite3_column_bytes(stmt, col));
}

std::string ColumnBlob(sqlite3_stmt* stmt, int col) {
  const auto* data = static_cast<const char*>(sqlite3_column_blob(stmt, col));
  return data == nullptr ? std::string() : std::string(data, sqlite3_column_bytes(stmt, col));
}

Status StepDone(sqlite3* db, sqlite3_stmt* stmt, std::string_view what) {
  int rc = sqlite3_step(stmt);
  return rc == SQLITE_DONE ? Status::Ok() : ToStatus(db, rc, what);
}

Result<int64_t> QueryInt(sqlite3* db, const char* sql, std::string_view what) {
  Stmt stmt(db, sql);
  if (stmt.prepare_rc() != SQLITE_OK) return ToStatus(db, stmt.prepare_rc(), what);
  int rc = sqlite3_step(stmt.get());
  if (rc == SQLITE_ROW) return sqlite3_column_int64(stmt.get(), 0);
  if (rc == SQLITE_DONE) return int64_t{0};
  return ToStatus(db, rc, what);
}

Result<int64_t> QueryOptionalInt(sqlite3* db, sqlite3_stmt* stmt, bool* found,
                                 std::string_view what) {
  int rc = sqlite3_step(stmt);
  *found = rc == SQLITE_ROW && sqlite3_column_type(stmt, 0) != SQLITE_NULL;
  if (rc != SQLITE_ROW && rc != SQLITE_DONE) return ToStatus(db, rc, what);
  return *found ? sqlite3_column_int64(stmt, 0) : 0;
}

}  // namespace machub::sqlite
