#pragma once
// What every journal test file shares (test support, never in the hub): sales built from
// a spec, the JournalTest fixture (a journal in a fresh folder, a manual clock), appends
// that must succeed, and raw SQLite access for the migration tests.

#include <gtest/gtest.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <functional>
#include <future>
#include <latch>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "core/chain.h"
#include "core/clock.h"
#include "core/metrics.h"
#include "core/report.h"
#include "core/sale_codec.h"
#include "core/store_event.h"
#include "core/time_format.h"
#include "journal/sale_journal.h"
#include "journal/sqlite_journal.h"
#include "manual_clock.h"
#include "str.h"
#include "temp_dir.h"

namespace machub::journal {

inline constexpr char kCreatedAt[] = "2026-11-27T10:15:00Z";

using machub::testing::Str;

struct SaleSpec {
  std::string id;
  std::string terminal = "T01";
  std::string unit_price = "3.50";
  std::string type = "sale";
  std::string ref;
  std::string created_at = kCreatedAt;
  int lines = 1;
};

inline std::string SaleJson(const SaleSpec& spec) {
  std::string json = "{\"id\":\"" + spec.id + "\",\"terminal_id\":\"" + spec.terminal +
                     "\",\"type\":\"" + spec.type + "\",";
  if (!spec.ref.empty()) json += "\"ref\":\"" + spec.ref + "\",";
  json += "\"created_at\":\"" + spec.created_at + "\",\"currency\":\"USD\",\"lines\":[";
  for (int i = 0; i < spec.lines; ++i) {
    if (i > 0) json += ",";
    json += Str("{\"sku\":\"000", i);
    json += Str("\",\"name\":\"Coffee beans, medium roast ", i);
    json += "\",\"qty\":\"2\",\"unit_price\":\"" + spec.unit_price + "\",\"tax_rate\":\"0.0825\"}";
  }
  // A sale pays more than its total (the rest is change); a refund or void may list no
  // payments (when it lists some they must add up to its total exactly).
  if (spec.type == "sale") {
    json += "],\"payments\":[{\"method\":\"cash\",\"amount\":\"" +
            std::to_string(10 * spec.lines + 10) + "00.00\"}]}";
  } else {
    json += "],\"payments\":[]}";
  }
  return json;
}

inline core::Sale MakeSale(const SaleSpec& spec) {
  Result<core::Sale> sale = core::DecodeSale(SaleJson(spec));
  if (!sale.ok()) {
    ADD_FAILURE() << "DecodeSale failed for " << SaleJson(spec) << ": " << sale.status().ToString();
    return core::Sale{};
  }
  return std::move(sale).value();
}

inline core::Sale MakeSale(const std::string& id, const std::string& terminal = "T01") {
  SaleSpec spec;
  spec.id = id;
  spec.terminal = terminal;
  return MakeSale(spec);
}

class JournalTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(tmp_.ok());
    dir_ = tmp_.path();
  }

  JournalOptions Options() const {
    JournalOptions options;
    options.path = dir_ + "/journal.db";
    options.store_id = "S001";
    options.checkpoint_interval_ms = 20;  // exercise the checkpointer in every test
    options.clock = &clock_;
    return options;
  }

  // The sales' created_at plus one second: no skew.
  machub::testing::ManualClock clock_{*core::ParseRfc3339(kCreatedAt) + 1000};

  std::unique_ptr<SqliteJournal> MustOpen(const JournalOptions& options) {
    Result<std::unique_ptr<SqliteJournal>> journal = SqliteJournal::Open(options);
    EXPECT_TRUE(journal.ok()) << journal.status().ToString();
    return journal.ok() ? std::move(journal).value() : nullptr;
  }

  machub::testing::TempDir tmp_{"journal_test"};  // removed after everything below
  std::string dir_;
};

inline Receipt MustAppend(SaleJournal& journal, core::Sale sale) {
  Result<Receipt> receipt = journal.Append(std::move(sale)).get();
  EXPECT_TRUE(receipt.ok()) << receipt.status().ToString();
  return receipt.ok() ? *receipt : Receipt{};
}

inline int64_t UserVersion(const std::string& path) {
  sqlite3* db = nullptr;
  sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READONLY, nullptr);
  sqlite3_stmt* stmt = nullptr;
  int64_t version = -1;
  if (sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &stmt, nullptr) == SQLITE_OK &&
      sqlite3_step(stmt) == SQLITE_ROW) {
    version = sqlite3_column_int64(stmt, 0);
  }
  sqlite3_finalize(stmt);
  sqlite3_close_v2(db);
  return version;
}

inline void ExecRaw(const std::string& path, const std::string& sql) {
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READWRITE, nullptr), SQLITE_OK);
  EXPECT_EQ(sqlite3_exec(db, sql.c_str(), nullptr, nullptr, nullptr), SQLITE_OK)
      << sqlite3_errmsg(db);
  sqlite3_close_v2(db);
}

inline Receipt MustAppendEvent(SaleJournal& journal, core::StoreEvent event) {
  Result<Receipt> receipt = journal.AppendEvent(std::move(event)).get();
  EXPECT_TRUE(receipt.ok()) << receipt.status().ToString();
  return receipt.ok() ? *receipt : Receipt{};
}

inline core::StoreEvent MakeEvent(const std::string& id, const std::string& terminal,
                                  const std::string& type, const std::string& extra = "") {
  std::string json = "{\"id\":\"" + id + "\",\"terminal_id\":\"" + terminal + "\",\"type\":\"" +
                     type + "\",\"created_at\":\"" + kCreatedAt + "\",\"currency\":\"USD\"";
  if (type == "drawer_open") json += ",\"amount\":\"100.00\"";
  if (type == "cash_in" || type == "cash_out") json += ",\"amount\":\"20.00\",\"reason\":\"bank\"";
  if (type == "drawer_close" && extra.empty()) json += ",\"counted\":\"100.00\"";
  json += extra + "}";
  Result<core::StoreEvent> event = core::DecodeEventRequest(json);
  if (!event.ok()) {
    ADD_FAILURE() << "DecodeEventRequest failed for " << json << ": " << event.status().ToString();
    return core::StoreEvent{};
  }
  return std::move(event).value();
}

// What a binary before schema v6 left behind: no drawers or offline_payments table, and
// the sales.type CHECK as v1 wrote it (v6 and v7 widen it in place).
// v8 -> v7: sales rebuilt with its UNIQUE id and REFERENCES again, no sale_ids.
inline const std::string kUndoV8 =
    "CREATE TABLE sales_v7(seq INTEGER PRIMARY KEY, id TEXT NOT NULL UNIQUE, "
    "terminal_id TEXT NOT NULL, receipt_no TEXT NOT NULL, type TEXT NOT NULL CHECK (type IN "
    "('sale', 'refund', 'void', 'drawer_open', 'cash_in', 'cash_out', 'drawer_close', "
    "'z_report', 'payment_authorization')), ref TEXT REFERENCES sales(id), "
    "created_at_ms INTEGER NOT NULL, received_at_ms INTEGER NOT NULL, "
    "clock_skew INTEGER NOT NULL, currency TEXT NOT NULL, total INTEGER NOT NULL, "
    "change INTEGER NOT NULL, canonical TEXT NOT NULL, prev_hash BLOB NOT NULL, "
    "hash BLOB NOT NULL, uploaded INTEGER NOT NULL DEFAULT 0); "
    "INSERT INTO sales_v7 SELECT * FROM sales; DROP TABLE sales; "
    "ALTER TABLE sales_v7 RENAME TO sales; "
    "CREATE INDEX sales_ref ON sales(ref) WHERE ref IS NOT NULL; "
    "DROP TABLE sale_ids; DELETE FROM meta WHERE key = 'ids_indexed_seq'; ";
inline const std::string kUndoV7 =
    kUndoV8 +
    "PRAGMA writable_schema=ON; "
    "UPDATE sqlite_schema SET sql = replace(sql, "
    "'CHECK (type IN (''sale'', ''refund'', ''void'', ''drawer_open'', ''cash_in'', "
    "''cash_out'', ''drawer_close'', ''z_report'', ''payment_authorization''))', "
    "'CHECK (type IN (''sale'', ''refund'', ''void'', ''drawer_open'', ''cash_in'', "
    "''cash_out'', ''drawer_close'', ''z_report''))') WHERE name = 'sales'; "
    "PRAGMA writable_schema=OFF; DROP TABLE offline_payments; ";
inline const std::string kUndoV6 =
    kUndoV7 +
    "PRAGMA writable_schema=ON; "
    "UPDATE sqlite_schema SET sql = replace(sql, "
    "'CHECK (type IN (''sale'', ''refund'', ''void'', ''drawer_open'', ''cash_in'', "
    "''cash_out'', ''drawer_close'', ''z_report''))', "
    "'CHECK (type IN (''sale'', ''refund'', ''void''))') WHERE name = 'sales'; "
    "PRAGMA writable_schema=OFF; DROP TABLE drawers; ";

// A journal process killed with SIGKILL mid-stream, for real (fork, pipe, kill): the child
// runs `child(fd)`, which appends and writes one line to fd per acknowledged append and
// never returns; the parent reads the lines and kills the child once `kill_after(line)`
// says so (it sees each line as it arrives), then reads what is left and reaps it.
struct KilledChild {
  std::vector<std::string> lines;  // every line read: all acknowledged before the kill
  bool killed = false;             // false: the child ended on its own (wstatus says how)
  int wstatus = 0;
};

inline KilledChild RunAndKill(const std::function<void(int fd)>& child,
                              const std::function<bool(const std::string& line)>& kill_after) {
  KilledChild run;
  int fds[2];
  if (pipe(fds) != 0) {
    ADD_FAILURE() << "pipe failed";
    return run;
  }
  fflush(stdout);
  const pid_t pid = fork();
  if (pid < 0) {
    ADD_FAILURE() << "fork failed";
    return run;
  }
  if (pid == 0) {
    close(fds[0]);
    child(fds[1]);
    _exit(7);  // the child must not return (a code no child uses)
  }
  close(fds[1]);
  FILE* in = fdopen(fds[0], "r");
  if (in == nullptr) {
    ADD_FAILURE() << "fdopen failed";
    close(fds[0]);
    kill(pid, SIGKILL);  // else it blocks on a full pipe and waitpid never returns
  }
  char* line = nullptr;
  size_t cap = 0;
  ssize_t n;
  while (in != nullptr && (n = getline(&line, &cap, in)) > 0) {
    run.lines.emplace_back(line, static_cast<size_t>(n - 1));
    if (!run.killed && kill_after(run.lines.back())) {
      EXPECT_EQ(kill(pid, SIGKILL), 0);
      run.killed = true;
    }
  }
  free(line);
  if (in != nullptr) fclose(in);
  EXPECT_EQ(waitpid(pid, &run.wstatus, 0), pid);
  return run;
}

}  // namespace machub::journal
