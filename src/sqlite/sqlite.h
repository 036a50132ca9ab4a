#pragma once
// Small helpers over the SQLite C API, shared by every store that keeps a SQLite file
// (the journal, the catalog cache). No connection policy lives here: each store decides
// its pragmas, threads and schema; this header only removes the repeated plumbing.
//
// Errors: ToStatus is the ONE place where SQLite result codes become Status:
//   SQLITE_ERROR/MISUSE/RANGE/CONSTRAINT/MISMATCH -> kInternal (a bug in our SQL; the
//     message is sqlite3_errmsg, which names the statement's problem),
//   SQLITE_NOTADB -> kInvalidArgument ("the file is not a SQLite database"),
//   everything else (FULL, IOERR, CANTOPEN, READONLY, BUSY, NOMEM, CORRUPT...) ->
//     kStorageUnavailable with sqlite3_errstr (generic text, never a file path).
// IsDamagedFile tells the two codes that mean "this file is not a usable database"
// (NOTADB, CORRUPT) for stores that can rebuild their file (a cache).
//
// Threads: the helpers keep no state; a connection and its statements are used by one
// thread at a time (SQLITE_OPEN_NOMUTEX everywhere in machub).

#include <sqlite3.h>

#include <cstdint>
#include <string>
#include <string_view>

#include "core/status.h"

namespace machub::sqlite {

// `what` is the caller's context, e.g. "journal: prune"; the message is
// "<what>: <SQLite's text>". `db` may be null (open failures).
Status ToStatus(sqlite3* db, int rc, std::string_view what);

// True for SQLITE_NOTADB and SQLITE_CORRUPT (primary codes).
bool IsDamagedFile(int rc);

// sqlite3_exec without callbacks; returns the SQLite code.
int Exec(sqlite3* db, const char* sql);

// A prepared statement finalized at scope end, for statements not worth caching.
class Stmt {
 public:
  Stmt(sqlite3* db, std::string_view sql);
  ~Stmt();
  Stmt(const Stmt&) = delete;
  Stmt& operator=(const Stmt&) = delete;
  int prepare_rc() const { return rc_; }
  sqlite3_stmt* get() const { return stmt_; }

 private:
  sqlite3_stmt* stmt_ = nullptr;
  int rc_ = SQLITE_OK;
};

// Resets (and clears the bindings of) a cached statement when the scope ends, so no
// connection keeps a read snapshot open (an open snapshot stops checkpoints completing).
class ResetOnExit {
 public:
  explicit ResetOnExit(sqlite3_stmt* stmt) : stmt_(stmt) {}
  ~ResetOnExit();
  ResetOnExit(const ResetOnExit&) = delete;
  ResetOnExit& operator=(const ResetOnExit&) = delete;

 private:
  sqlite3_stmt* stmt_;
};

// Bind copies (SQLITE_TRANSIENT): the argument may die before the step.
void BindText(sqlite3_stmt* stmt, int index, std::string_view text);
void BindBlob(sqlite3_stmt* stmt, int index, std::string_view bytes);
// Column readers; NULL reads as "".
std::string ColumnText(sqlite3_stmt* stmt, int col);
std::string ColumnBlob(sqlite3_stmt* stmt, int col);

// Steps a statement that returns no rows: SQLITE_DONE -> OK, else ToStatus(what).
Status StepDone(sqlite3* db, sqlite3_stmt* stmt, std::string_view what);
// Prepares, steps once and finalizes `sql`: the first column of the first row (0 when
// there is no row).
Result<int64_t> QueryInt(sqlite3* db, const char* sql, std::string_view what);
// Steps `stmt` once: its first column as int64; *found is false when there is no row or
// the value is NULL (the result is then 0).
Result<int64_t> QueryOptionalInt(sqlite3* db, sqlite3_stmt* stmt, bool* found,
                                 std::string_view what);

}  // namespace machub::sqlite
