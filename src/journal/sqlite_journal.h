#pragma once
// SqliteJournal: the SQLite implementation of both journal interfaces, SaleJournal
// (sale_journal.h, for http/) and Ledger (ledger.h, for sinks), over one database file.
// The owner (app/) holds the SqliteJournal and hands each side its interface; this header
// adds opening, closing and what only tests and tools need.
//
// Sources: sqlite_journal.cc (open, close, the writer connection), writer.cc (the
// group-commit loop, writer transactions), append.cc (one sale inside a group), events.cc,
// offline.cc, checkpointer.cc, reads.cc, ledger_store.cc (batches, sink cursors,
// pruning), schema.cc (migrations), canonical_pack.cc (a row's packed canonical),
// internal.h (what those files share); SQLite plumbing
// in sqlite/sqlite.h.
//
// Connections and threads:
//   - writer thread: the only read-write connection that changes data. Pragmas:
//     journal_mode=WAL, synchronous=FULL, foreign_keys=OFF (no table declares one since
//     v8), busy_timeout,
//     wal_autocheckpoint=0 (when a checkpointer runs), journal_size_limit.
//   - checkpointer thread (checkpoint_interval_ms > 0): its own connection, runs
//     PRAGMA wal_checkpoint(PASSIVE) every interval when commits happened since the last
//     one. PASSIVE never takes the write lock, so commits do not wait for it.
//     SQLite rewinds the WAL only when a write transaction starts right after a checkpoint
//     that copied every frame; under sustained load commits land during every checkpointer
//     run, so the WAL would grow without bound. So when a run leaves frames behind and the
//     WAL holds more than 16 MiB of frames (4096 of 4 KiB pages), the checkpointer asks the
//     writer to catch up: between two groups the writer runs one PASSIVE checkpoint itself,
//     which only copies the tail written during the checkpointer's run and syncs the
//     database file; its next transaction then rewinds the WAL.
//     With checkpoint_interval_ms <= 0 there is no checkpointer: SQLite's automatic
//     checkpoint (every 1000 WAL pages, inside a COMMIT on the writer) stays on. That is
//     the baseline of the measurement in MeasureWorstCommitUnderCheckpoints.
//   - reads: a small pool of SQLITE_OPEN_READONLY connections guarded by a mutex; a read
//     leases one for the duration of the call.
//
// Schema (PRAGMA user_version, migrations in schema.cc, each in a transaction):
//   v1: sales(seq INTEGER PRIMARY KEY, id TEXT UNIQUE, terminal_id, receipt_no, type,
//             ref REFERENCES sales(id), created_at_ms, received_at_ms, clock_skew,
//             currency, total, change, canonical, prev_hash, hash, uploaded)
//       terminals(terminal_id PRIMARY KEY, last_receipt)   -- per-terminal receipt counter
//         (written every kCounterFlushCommits commits and by Prune; meta counters_seq)
//       meta(key PRIMARY KEY, value)                        -- "store_id"
//   v2: batches(id INTEGER PRIMARY KEY, first_seq UNIQUE, last_seq, object_key, format,
//               gzip_level, raw_bytes, gz_bytes, canonical_bytes, sha256, md5,
//               created_at_ms, state pending|uploaded|quarantined, attempts, last_error,
//               uploaded_at_ms)                        -- one row per S3 object (sync/)
//       index sales(seq) WHERE uploaded = 0           -- the backlog, found fast
//       index sales(ref) WHERE ref IS NOT NULL        -- FK checks when pruning
//       meta "chain_anchor_seq", "chain_anchor_hash" (hex): the last pruned sale
//   v3: index sales_unuploaded dropped; sales.uploaded is obsolete (kept, never written
//       nor read). A sale is uploaded iff an uploaded batch covers its seq: StoredSale
//       .uploaded, SyncBounds.oldest_unuploaded_seq and Prune derive it from batches, so
//       MarkBatchUploaded changes one batch row (no per-sale UPDATE competing with sales).
//   v4: sink_progress(sink PRIMARY KEY, delivered_seq, active, updated_at_ms): one
//       progress cursor per registered sink (Ledger::RegisterSink); Prune stays below
//       the lowest active cursor.
//   v5: ids(id PRIMARY KEY, seq, hash, received_at_ms): the id index (id_horizon_ms),
//       the ids of pruned rows: Prune moves them there in its transaction (since
//       2026-12-07; before, every append also wrote its id there, and those rows stay).
//   v6: store events in sales (the type CHECK widened in place, schema.cc), drawers(
//       terminal_id PRIMARY KEY, opened_seq): the open drawers; meta "last_z_number",
//       "last_z_seq", "last_z_currency". docs/JOURNAL.md has the reasoning.
//   v7: offline_payments(sale_id, payment_index, terminal_id, amount, currency, sale_seq,
//       received_at_ms, state outstanding|approved|declined|voided, outcome_seq), the
//       type CHECK gains payment_authorization (issue #9, offline.cc).
//   v8: sales rebuilt without UNIQUE(id) and without ref REFERENCES sales(id);
//       sale_ids(id_hash, seq) PRIMARY KEY (id_hash, seq) WITHOUT ROWID, written in bulk
//       (id_keys_flush_rows, Prune) up to meta "ids_indexed_seq"; the rows after it are in
//       memory (RecentIds). internal.h, "finding a row by its id".
//   A database with a user_version newer than this binary knows is refused
//   (kInvalidArgument), and so is one created for another store_id.
//
// Errors: SQLite result codes map to Status in one place (sqlite::ToStatus):
//   SQLITE_ERROR/MISUSE/RANGE/CONSTRAINT/MISMATCH -> kInternal (a bug in our SQL),
//   SQLITE_NOTADB -> kInvalidArgument (the file is not a database),
//   everything else (FULL, IOERR, CANTOPEN, READONLY, BUSY, NOMEM, CORRUPT...) ->
//   kStorageUnavailable. Messages never contain file paths.
//   A group whose transaction fails is rolled back as a whole and every sale in it is
//   answered kStorageUnavailable (whatever the SQLite code); the in-memory next seq, last
//   hash and receipt counters are then reloaded from the file. kStorageUnavailable means
//   "not acknowledged", not "certainly absent": if an fsync fails inside COMMIT, the
//   group's frames are complete in the WAL, and should the process restart before the
//   next commit overwrites them, SQLite's WAL recovery brings the group back. A terminal's
//   retry then gets a replay (200) of it. Nothing acknowledged is ever lost or doubled.
//   After an I/O error other than a failed fsync, the write connection is reopened.
//
// Metrics (when JournalOptions::metrics is set):
//   machub_sales_committed_total            counter, sales inserted (replays not counted)
//   machub_journal_commits_total            counter, transactions committed
//   machub_journal_commit_failures_total    counter, groups rolled back on a storage error
//   machub_journal_checkpoints_total        counter, PASSIVE checkpoints run
//   machub_commit_group_size                histogram, appends answered per committed
//                                           transaction (replays and refusals included)
//   machub_fsync_seconds                    histogram, duration of the COMMIT call
//   machub_commit_max_microseconds          gauge, worst COMMIT call since Open, in
//                                           microseconds (a gauge is an integer)

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <variant>
#include <vector>

#include "core/clock.h"
#include "core/metrics.h"
#include "journal/ledger.h"
#include "journal/sale_journal.h"

struct sqlite3;
struct sqlite3_stmt;

namespace machub::journal {

class RecentIds;  // internal.h

struct JournalOptions {
  std::string path;               // the SQLite database file; its folder must exist
  std::string store_id = "S001";  // seeds the chain's genesis hash
  int64_t clock_skew_bound_ms = 5 * 60 * 1000;
  int max_group = 512;       // most sales in one commit
  bool group_commit = true;  // false: one transaction per sale (benchmark baseline)
  // When the writer is idle and nothing is queued, the thread that appends commits its
  // entry itself (a group of one) instead of waking the writer thread and being woken
  // back: one terminal's sale crosses no thread. Writes stay serialised (one writer at a
  // time, in arrival order); while that commit runs, others queue for the writer thread
  // as before. docs/BENCHMARKS.md "The hot path".
  bool inline_commit = true;
  int64_t checkpoint_interval_ms = 1000;
  // With checkpoint_min_wal_bytes > 0, a checkpointer tick copies the WAL only once the
  // commits since its last run appended at least that many bytes of WAL frames, or the
  // oldest of them waited checkpoint_max_age_ms (on `clock`). A page that many commits
  // changed (an index leaf, a table's right edge) is then written to the database file
  // once instead of once per commit: at a store's rate of a few sales a second that
  // halves the bytes written per sale (docs/BENCHMARKS.md, "SD-card wear"). Under load
  // the WAL passes the threshold within a tick and nothing changes. 0: every tick that
  // follows a commit. Durability does not depend on it: every commit's WAL is fsync'd.
  int64_t checkpoint_min_wal_bytes = 0;
  int64_t checkpoint_max_age_ms = 5 * 60 * 1000;
  // SQLite page size of a journal created now (512..65536, a power of two); an existing
  // journal keeps the size it was created with (WAL mode cannot change it).
  // 512, SQLite's smallest: a commit writes whole pages to the WAL, and a sale's commit
  // changes a few pages (its row's leaf, an id index leaf, now and then page 1 and a
  // parent) whatever their size, so small pages write the fewest bytes per sale: 8.3 KB
  // at one terminal against 9.5 KB with 1024 and 30 KB with 4096 (docs/BENCHMARKS.md,
  // "SD-card wear"). A packed row (canonical_pack.h) fits one; a larger one continues in
  // overflow pages.
  int page_size = 512;
  // Rows are found by id through sale_ids, which the next 8 commits write in bulk once
  // this many rows are not in it yet (they are in memory until then; docs/JOURNAL.md,
  // "v8"). Larger: fewer, bigger bulk writes; each touches at most every page of
  // sale_ids, so bytes written per sale fall as it grows. At least 1; tests use small
  // values to exercise the bulk write.
  int64_t id_keys_flush_rows = 8192;
  // How long an id stays in the id index after its sale was received, even when its row
  // was pruned (uploaded and old, or low disk): a retry within it is answered id_expired,
  // a refund of it ref_expired. Independent of sync.retention_days. At least 90 days.
  int64_t id_horizon_ms = int64_t{90} * 24 * 3600 * 1000;
  // A sale, refund or void with a cash payment on a terminal whose drawer is not open
  // is refused (kDrawerClosed) when true; allowed (its cash counted as
  // cash_without_drawer in the reports) when false. Config: drawer.required.
  bool cash_requires_open_drawer = false;
  OfflineLimits offline;
  const core::Clock* clock = nullptr;        // null: the system clock
  core::MetricsRegistry* metrics = nullptr;  // null: no metrics
  // Asked once per group commit on the writer thread (keep it cheap: the hub's asks the
  // kernel with adjtimex); true marks the group's entries clock_untrusted. An entry whose
  // received_at was held at the journal's newest (the clock read earlier) is marked
  // whatever this says. Null: only held entries are marked.
  std::function<bool()> clock_untrusted;
};

class SqliteJournal final : public SaleJournal, public Ledger {
 public:
  // Opens (creating if needed) and migrates the database, starts the writer and
  // checkpointer threads. kInvalidArgument for bad options, a file that is not a
  // database, a newer schema or another store's database; kStorageUnavailable when the
  // file cannot be opened or cannot use WAL mode.
  static Result<std::unique_ptr<SqliteJournal>> Open(const JournalOptions& options);

  ~SqliteJournal() override;  // calls Close()

  SqliteJournal(const SqliteJournal&) = delete;
  SqliteJournal& operator=(const SqliteJournal&) = delete;

  // Drains queued appends (each completes), stops the threads, closes connections.
  // Every call after Close answers kStorageUnavailable. Idempotent. Never call Close from
  // an Append callback (it runs on the writer thread, which Close joins).
  void Close();

  // ---- SaleJournal ----
  using SaleJournal::Append;
  // Appends after Close complete at once, on the calling thread. Append from a callback
  // is fine.
  void Append(core::Sale sale, AppendCallback done) override;
  using SaleJournal::AppendEvent;
  void AppendEvent(core::StoreEvent event, AppendCallback done) override;
  Result<OpenDay> ReadOpenDay() override;
  // JournalStats::newest_received_at_ms and clock_held without Stats()'s table scan.
  int64_t newest_received_at_ms() const { return newest_received_at_ms_.load(); }
  int64_t clock_held() const { return clock_held_.load(); }
  Result<std::vector<OpenDrawerAt>> ReadOpenDrawers() override;
  Result<std::optional<core::StoredSale>> Get(const std::string& id) override;
  // Both SaleJournal::List and Ledger::List: the same read.
  Result<std::vector<core::StoredSale>> List(int64_t after_seq, int limit) override;
  Result<JournalStats> Stats() override;
  Result<int64_t> VerifyChain() override;
  Status IntegrityCheck() override;  // PRAGMA integrity_check == "ok"
  Status Health() const override;

  // ---- Ledger ----
  Result<SyncBounds> GetSyncBounds() override;
  Result<int64_t> CanonicalBytes(int64_t after_seq, int64_t upto_seq) override;
  Result<std::vector<BatchRecord>> ListBatches(bool unfinished_only, int64_t after_first_seq = 0,
                                               int limit = 1000) override;
  Result<BatchRecord> RecordBatch(const BatchRecord& batch) override;
  Status RecordBatchFailure(int64_t batch_id, const std::string& error) override;
  Status UpdateBatchObject(int64_t batch_id, int64_t raw_bytes, int64_t gz_bytes,
                           const std::string& sha256_hex, const std::string& md5_hex) override;
  Status MarkBatchUploaded(int64_t batch_id, int64_t uploaded_at_ms) override;
  Status MarkBatchQuarantined(int64_t batch_id, const std::string& error) override;
  Status RequeueBatch(int64_t batch_id) override;
  Result<SinkProgress> RegisterSink(const std::string& sink) override;
  Status AdvanceSinkProgress(const std::string& sink, int64_t delivered_seq) override;
  Result<SinkProgress> GetSinkProgress(const std::string& sink) override;
  Result<std::vector<SinkProgress>> ListSinks() override;
  Status RetireSink(const std::string& sink) override;
  Result<PruneResult> Prune(const PruneRequest& request) override;

  // ---- Offline card payments (issue #9), SaleJournal ----
  Result<std::vector<OfflinePayment>> ListOfflinePayments(const std::string& state,
                                                          int limit) override;
  // The exposure recounted from the table in one read snapshot.
  Result<OfflineExposure> ReadOfflineExposure() override;
  OfflineLimits offline_limits() const override;
  // Replaces the offline limits at run time (a per-store configuration from the cloud:
  // catalog/store_config.h). Every limit is parsed first; kInvalidArgument changes
  // nothing. Sales checked after the call see the new limits; the exposure already
  // outstanding stays (a lower limit refuses new offline payments until it drops below).
  // Thread-safe.
  Status SetOfflineLimits(const OfflineLimits& limits);
  // The writer's own running figures (what the limits are checked against), read on the
  // writer thread between groups; a test compares them with ReadOfflineExposure.
  Result<OfflineExposure> WriterExposureForTest();

  // Writer figures since Open (latencies in microseconds of the options' clock). For
  // benchmarks, docs and tests; /metrics has the same figures when a registry is set.
  struct WriterStats {
    int64_t max_commit_us = 0;             // worst COMMIT call (WAL write + fsync)
    int64_t max_group_us = 0;              // worst group, dequeue to just before its callbacks
    int64_t checkpoints = 0;               // PASSIVE checkpoints run by the checkpointer
    int64_t groups = 0;                    // groups processed (committed or failed)
    int64_t failed_groups = 0;             // groups rolled back on a SQLite error
    int64_t reopens = 0;                   // write connection reopened after an I/O error
    int64_t writer_checkpoints = 0;        // safety-valve checkpoints run by the writer
    int64_t max_writer_checkpoint_us = 0;  // worst of those (delays the next group)
    // COMMIT calls that overlapped a checkpointer run, and the worst of them.
    int64_t commits_during_checkpoint = 0;
    int64_t max_commit_during_checkpoint_us = 0;
  };
  WriterStats GetWriterStats() const;

  // ---- Test hooks. Not for production code. ----
  // Runs `sql` (no result rows) on the write connection, on the writer thread, between two
  // groups; e.g. "PRAGMA max_page_count=..." to make the next commit fail with SQLITE_FULL.
  Status ExecOnWriterForTest(const std::string& sql);
  // Runs a query on the write connection and returns the first column of the first row as
  // int64 (e.g. "PRAGMA page_count").
  Result<int64_t> QueryIntOnWriterForTest(const std::string& sql);
  // While paused the writer takes no new group, so appends pile up in the queue and the
  // next group holds all of them (up to max_group). Close resumes.
  void PauseWriterForTest();
  void ResumeWriterForTest();
  // Number of appends waiting in the queue.
  size_t QueuedForTest() const;
  // WAL frame count above which an incomplete checkpointer run asks the writer to catch up.
  void SetWalCatchUpFramesForTest(int64_t frames);

 private:
  struct Pending {
    std::variant<core::Sale, core::StoreEvent> entry;
    AppendCallback done;
  };
  // One row of the sales table as the writer inserts it (a sale or an event).
  struct NewRow {
    const std::string* id;
    std::string_view terminal_id;
    std::string_view receipt_no;
    std::string_view type;
    std::string_view ref;  // empty: NULL
    int64_t created_at_ms = 0;
    std::string_view currency;
    int64_t total = 0;
    int64_t change = 0;
    const std::string* canonical;
  };
  struct WriterStatements;
  struct ReadConnection;
  class ReadLease;

  explicit SqliteJournal(const JournalOptions& options);

  Status OpenWriter();  // opens the write connection, pragmas, migrations, store_id
  void CloseWriter();
  Status PrepareWriterStatements();
  Status LoadState();  // next seq, last hash, terminal counters from the database
  Status OpenCheckpointer();

  void WriterLoop();
  // Appends `entry`: commits it on the calling thread when the writer is idle and nothing
  // waits (inline_commit), queues it for the writer thread otherwise.
  void Submit(Pending entry);
  // on_writer_thread: false for an inline commit, which leaves a requested catch-up
  // checkpoint to the writer thread instead of running it on the caller's.
  void ProcessGroup(std::vector<Pending>& group, bool on_writer_thread = true);
  // Runs the group in one transaction. Per-sale answers go to `answers`; a non-OK return
  // means the transaction failed and was rolled back (its SQLite code in last_failed_rc_).
  Status RunGroup(std::vector<Pending>& group, std::vector<Result<Receipt>>& answers,
                  int64_t* inserted, int64_t* commit_us);
  // One sale inside the open transaction: a Receipt, or a per-sale error (conflict, bad
  // ref). A SQLite failure sets *storage_rc and the whole group must roll back.
  Result<Receipt> AppendOne(const core::Sale& sale, bool* created, int* storage_rc);
  // The same for a store event (events.cc): the drawer rules, the Z report's figures.
  Result<Receipt> AppendEventOne(core::StoreEvent& event, bool* created, int* storage_rc);
  // Inserts `row` as the next entry of the chain (seq, receipt, hash, the id index) and
  // advances the staged seq and hash. Fills receipt seq, received_at_ms and hash.
  Status InsertRow(const NewRow& row, Receipt* receipt, int* storage_rc);
  // Writer thread: is the terminal's drawer open (staged changes of this group first)?
  bool DrawerOpen(const std::string& terminal_id) const;
  // The Z report inside the group's transaction: number, range and figures (events.cc).
  Status BuildZReport(core::StoreEvent& event, int* storage_rc);
  // offline.cc: the limits for a sale about to be stored (OK or kOfflineLimitExceeded),
  // then its rows once it is; a void releases what its sale had outstanding.
  Status CheckOfflineLimits(const core::Sale& sale) const;
  Status TrackOfflinePayments(const core::Sale& sale, int64_t seq, int64_t received_at_ms,
                              int* storage_rc);
  Status ReleaseOnVoid(const core::Sale& void_sale, int64_t seq, int* storage_rc);
  // An authorization outcome: checks and fills `event` from its sale; after InsertRow,
  // RecordOutcome updates the payment's row and the exposure.
  Status PrepareAuthorization(core::StoreEvent& event, int* storage_rc);
  Status RecordOutcome(const core::StoreEvent& event, int64_t seq, int* storage_rc);
  int64_t OutstandingFor(const std::string& terminal_id) const;
  Status LoadOfflineState();
  // Writer thread: loads the open drawers and the last Z report (LoadState).
  Status LoadStoreDayState();
  // Writer thread: is `id` in the id index (schema v5)? Storage errors set *storage_rc.
  Result<bool> InIdIndex(const std::string& id, int* storage_rc);
  void RecoverAfterFailure(int sqlite_code);

  // Runs `body` on the writer thread between two groups, inside one BEGIN IMMEDIATE ..
  // COMMIT transaction (rolled back when `body` fails), and waits for it.
  // With durable = false the COMMIT does not wait for an fsync (synchronous=NORMAL for
  // that transaction only; the next durable commit's fsync covers it). Only for writes
  // whose loss in a power cut is harmless (MarkBatchUploaded: the batch stays pending and
  // its identical upload is recognised by its recorded MD5). FULL is restored before the
  // writer takes the next group; if that fails the write connection is closed (and
  // reopened, with FULL, by the next writer task).
  Status RunWriterTransaction(const std::function<Status(sqlite3* db)>& body, bool durable = true);

  void CheckpointLoop();
  void MaybeCheckpointOnWriter();  // the catch-up checkpoint, when requested

  Result<ReadLease> AcquireRead();
  void ReleaseRead(std::unique_ptr<ReadConnection> conn);

  const JournalOptions options_;
  const core::Clock* clock_;
  const std::string genesis_;

  // Writer-thread state (only the writer thread touches these after Open).
  sqlite3* wdb_ = nullptr;
  std::unique_ptr<WriterStatements> wstmts_;
  // The rows not yet in sale_ids (internal.h): the writer adds and drops, reads look.
  const std::unique_ptr<RecentIds> recent_ids_;
  // Writes to sale_ids the keys of the rows after meta ids_indexed_seq through
  // `through_seq` whose hash is in part `part` of `parts` (RecentIds::Between), and, with
  // the last part, moves ids_indexed_seq up to `through_seq`; in the open transaction on
  // the writer connection. SQLITE_DONE, or the SQLite code on failure.
  int WriteIdKeys(int64_t through_seq, int part, int parts);
  // The bulk write in progress (writer thread): the seq it covers through (0: none) and
  // the next part to write. LoadState starts it over.
  int64_t id_keys_through_ = 0;
  int id_keys_part_ = 0;
  bool state_valid_ = false;
  int last_failed_rc_ = 0;
  int64_t next_seq_ = 1;
  std::string last_hash_;
  std::map<std::string, int64_t> terminal_counters_;
  // The terminals table is not written by every commit (its page would be one more WAL
  // frame per sale, docs/BENCHMARKS.md "SD-card wear"): every kCounterFlushCommits-th
  // commit and Prune write every counter with meta "counters_seq", the seq through which
  // the table counts every receipt. LoadState takes later receipts from their rows.
  static constexpr int kCounterFlushCommits = 64;
  int commits_since_counter_flush_ = kCounterFlushCommits;  // the first commit writes them
  // Writes terminal_counters_ overlaid with `staged` and counters_seq = `through_seq`, in
  // the open transaction on the writer connection; the SQLite code on failure.
  int WriteCounters(const std::map<std::string, int64_t>& staged, int64_t through_seq);
  // Group-local staging, committed to the fields above only after COMMIT.
  int64_t staged_seq_ = 1;
  std::string staged_hash_;
  // received_at never goes backwards within the journal (issue #11, clocks): a row whose
  // clock reading is older than the newest row's received_at takes the newest's instead,
  // and is counted in clock_held_.
  int64_t last_received_at_ms_ = 0;
  bool staged_clock_untrusted_ = false;  // this group's answer of options_.clock_untrusted
  int64_t staged_received_at_ms_ = 0;
  int64_t staged_clock_held_ = 0;
  std::atomic<int64_t> newest_received_at_ms_{0};
  std::atomic<int64_t> clock_held_{0};
  std::map<std::string, int64_t> staged_counters_;
  // Store-day state (schema v6): the open drawer of each terminal (its drawer_open's
  // seq) and the last Z report; staged like the counters, applied after COMMIT. In the
  // staged drawer map a 0 means "closed in this group".
  std::map<std::string, int64_t> open_drawers_;
  std::map<std::string, int64_t> staged_drawers_;
  int64_t last_z_number_ = 0;
  int64_t last_z_seq_ = 0;
  std::string last_z_currency_;
  // Offline exposure (schema v7): outstanding per terminal and store-wide, with this
  // group's changes staged as deltas; limits in thousandths of a currency unit.
  std::map<std::string, int64_t> offline_terminal_;
  int64_t offline_store_ = 0;
  std::map<std::string, int64_t> staged_offline_terminal_;
  int64_t staged_offline_store_ = 0;
  // The limits as given (first options_.offline) and parsed, guarded by limits_mu_ (set from
  // any thread by SetOfflineLimits, read by the writer for a sale with an offline payment).
  struct ParsedOfflineLimits {
    bool enabled = true;
    int64_t card_milli = -1;  // -1: no limit
    int64_t terminal_milli = -1;
    int64_t store_milli = -1;
  };
  static Result<ParsedOfflineLimits> ParseOfflineLimits(const OfflineLimits& limits);
  mutable std::mutex limits_mu_;
  OfflineLimits limits_text_;
  ParsedOfflineLimits limits_;
  int64_t staged_z_number_ = 0;
  int64_t staged_z_seq_ = 0;
  std::string staged_z_currency_;

  // Queue shared by Append and the writer.
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Pending> queue_;
  std::deque<std::function<void()>> writer_tasks_;
  bool closing_ = false;
  bool paused_ = false;
  // A group or task is running (on the writer thread, or inline on an appending thread):
  // the single-writer rule, guarded by mu_.
  bool writer_busy_ = false;
  std::thread writer_;

  // Checkpointer.
  sqlite3* cdb_ = nullptr;
  std::mutex ckpt_mu_;
  std::condition_variable ckpt_cv_;
  bool ckpt_stop_ = false;
  std::thread checkpointer_;

  // Read pool.
  std::mutex read_mu_;
  std::vector<std::unique_ptr<ReadConnection>> idle_reads_;
  bool reads_closed_ = false;

  std::mutex close_mu_;
  std::atomic<bool> closed_{false};
  std::atomic<bool> healthy_{true};
  std::atomic<int64_t> commits_{0};
  std::atomic<int64_t> max_commit_us_{0};
  std::atomic<int64_t> max_group_us_{0};
  std::atomic<int64_t> checkpoints_{0};
  std::atomic<int64_t> groups_{0};
  std::atomic<int64_t> failed_groups_{0};
  std::atomic<int64_t> reopens_{0};
  std::atomic<int64_t> writer_checkpoints_{0};
  std::atomic<int64_t> max_writer_checkpoint_us_{0};
  std::atomic<bool> checkpoint_running_{false};
  std::atomic<int64_t> checkpoint_runs_started_{0};
  std::atomic<int64_t> commits_during_checkpoint_{0};
  std::atomic<int64_t> max_commit_during_checkpoint_us_{0};
  std::atomic<int64_t> wal_catch_up_frames_{4096};
  // WAL frames appended since the checkpointer's last run (WalHook, on the committing
  // thread), the WAL's length after the last commit, and one frame's size in bytes.
  std::atomic<int64_t> wal_frames_added_{0};
  std::atomic<int> wal_frames_last_{0};
  int64_t wal_frame_bytes_ = 4096 + 24;
  static int WalHook(void* journal, sqlite3* db, const char* name, int frames);
  // Whether a checkpointer tick with work to do waits: CheckpointLoop.
  bool DeferCheckpoint(int64_t wal_bytes, int64_t waited_us) const;
  std::atomic<bool> catch_up_requested_{false};

  // Metrics (null without a registry).
  core::Counter* m_sales_committed_ = nullptr;
  core::Counter* m_commits_ = nullptr;
  core::Counter* m_commit_failures_ = nullptr;
  core::Counter* m_checkpoints_ = nullptr;
  core::Histogram* m_group_size_ = nullptr;
  core::Histogram* m_fsync_ = nullptr;
  core::Gauge* m_commit_max_us_ = nullptr;
};

}  // namespace machub::journal
