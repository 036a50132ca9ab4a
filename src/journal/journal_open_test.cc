// Journal tests (journal_test_support.h has the fixture): Opening (migrations, refusals), storage
// and fsync failures (a fault-injecting VFS), closing, the checkpointer and its catch-up, and the
// worst-commit measurement.
#include "journal/journal_test_support.h"

namespace machub::journal {
namespace {

// ---- (7) opening ----

TEST_F(JournalTest, MigratesAnEmptyFile) {
  JournalOptions options = Options();
  { std::ofstream touch(options.path); }
  ASSERT_EQ(std::filesystem::file_size(options.path), 0u);
  auto journal = MustOpen(options);
  ASSERT_NE(journal, nullptr);
  EXPECT_TRUE(MustAppend(*journal, MakeSale("x")).created);
  journal->Close();
  EXPECT_EQ(UserVersion(options.path), 8);
  // Reopening an up-to-date database runs no migration and keeps the data.
  journal = MustOpen(options);
  ASSERT_NE(journal, nullptr);
  Result<JournalStats> stats = journal->Stats();
  ASSERT_TRUE(stats.ok());
  EXPECT_EQ(stats->sales, 1);
}

TEST_F(JournalTest, RefusesAnotherStoresDatabase) {
  JournalOptions options = Options();
  {
    auto journal = MustOpen(options);
    ASSERT_NE(journal, nullptr);
    MustAppend(*journal, MakeSale("x"));
  }
  options.store_id = "S002";
  Result<std::unique_ptr<SqliteJournal>> other = SqliteJournal::Open(options);
  ASSERT_FALSE(other.ok());
  EXPECT_EQ(other.status().code(), ErrorCode::kInvalidArgument);
  EXPECT_NE(other.status().message().find("S001"), std::string::npos) << other.status().message();
  EXPECT_EQ(other.status().message().find(dir_), std::string::npos);
}

TEST_F(JournalTest, RefusesANewerSchema) {
  JournalOptions options = Options();
  {
    auto journal = MustOpen(options);
    ASSERT_NE(journal, nullptr);
  }
  ExecRaw(options.path, "PRAGMA user_version=99");
  Result<std::unique_ptr<SqliteJournal>> newer = SqliteJournal::Open(options);
  ASSERT_FALSE(newer.ok());
  EXPECT_EQ(newer.status().code(), ErrorCode::kInvalidArgument);
  EXPECT_NE(newer.status().message().find("newer"), std::string::npos) << newer.status().message();
  EXPECT_EQ(UserVersion(options.path), 99);  // untouched
}

TEST_F(JournalTest, RefusesAFileThatIsNotADatabase) {
  JournalOptions options = Options();
  {
    std::ofstream garbage(options.path);
    for (int i = 0; i < 512; ++i) garbage << "not a database ";
  }
  Result<std::unique_ptr<SqliteJournal>> opened = SqliteJournal::Open(options);
  ASSERT_FALSE(opened.ok());
  EXPECT_EQ(opened.status().code(), ErrorCode::kInvalidArgument) << opened.status().ToString();
}

TEST_F(JournalTest, RefusesBadOptions) {
  JournalOptions options = Options();
  options.path = dir_ + "/missing-folder/journal.db";
  Result<std::unique_ptr<SqliteJournal>> missing = SqliteJournal::Open(options);
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.status().code(), ErrorCode::kStorageUnavailable);
  options = Options();
  options.max_group = 0;
  EXPECT_EQ(SqliteJournal::Open(options).status().code(), ErrorCode::kInvalidArgument);
  options = Options();
  options.store_id = "";
  EXPECT_EQ(SqliteJournal::Open(options).status().code(), ErrorCode::kInvalidArgument);
}

// ---- (8) storage failure ----

TEST_F(JournalTest, FailedCommitAnswersEveryWaiterAndRecovers) {
  core::MetricsRegistry metrics;
  JournalOptions options = Options();
  options.metrics = &metrics;
  auto journal = MustOpen(options);
  ASSERT_NE(journal, nullptr);
  for (int i = 0; i < 5; ++i) MustAppend(*journal, MakeSale(Str("ok", i)));

  // The file may not grow any more: the next group that needs a page fails (SQLITE_FULL).
  Result<int64_t> pages = journal->QueryIntOnWriterForTest("PRAGMA page_count");
  ASSERT_TRUE(pages.ok()) << pages.status().ToString();
  Result<int64_t> limit = journal->QueryIntOnWriterForTest(Str("PRAGMA max_page_count=", *pages));
  ASSERT_TRUE(limit.ok());
  ASSERT_EQ(*limit, *pages);

  constexpr int kGroup = 200;  // ~100 KB of rows: far more than the last page can hold
  std::vector<core::Sale> sales;
  for (int i = 0; i < kGroup; ++i) {
    sales.push_back(MakeSale(SaleSpec{.id = Str("full", i), .lines = 3}));
  }
  journal->PauseWriterForTest();
  std::vector<std::future<Result<Receipt>>> futures;
  for (const core::Sale& sale : sales) futures.push_back(journal->Append(sale));
  journal->ResumeWriterForTest();
  for (auto& f : futures) {
    Result<Receipt> r = f.get();
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.status().code(), ErrorCode::kStorageUnavailable) << r.status().ToString();
  }
  EXPECT_EQ(journal->Health().code(), ErrorCode::kStorageUnavailable);
  Result<JournalStats> stats = journal->Stats();
  ASSERT_TRUE(stats.ok());
  EXPECT_EQ(stats->sales, 5);  // nothing half-written
  EXPECT_EQ(stats->last_seq, 5);
  Result<std::optional<core::StoredSale>> none = journal->Get("full0");
  ASSERT_TRUE(none.ok());
  EXPECT_FALSE(none->has_value());
  EXPECT_NE(metrics.RenderText().find("machub_journal_commit_failures_total 1"), std::string::npos);

  // Space is back: the same sales go through, the seq continues without a gap and the
  // receipt counter did not advance for the failed group.
  ASSERT_TRUE(journal->ExecOnWriterForTest("PRAGMA max_page_count=1073741823").ok());
  journal->PauseWriterForTest();
  futures.clear();
  for (const core::Sale& sale : sales) futures.push_back(journal->Append(sale));
  journal->ResumeWriterForTest();
  for (int i = 0; i < kGroup; ++i) {
    Result<Receipt> r = futures[i].get();
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    EXPECT_TRUE(r->created);
    EXPECT_EQ(r->seq, 6 + i);
    if (i == 0) {
      EXPECT_EQ(r->receipt_no, "T01-000006");
    }
  }
  EXPECT_TRUE(journal->Health().ok());
  Result<int64_t> verified = journal->VerifyChain();
  ASSERT_TRUE(verified.ok()) << verified.status().ToString();
  EXPECT_EQ(*verified, 5 + kGroup);
  EXPECT_TRUE(journal->IntegrityCheck().ok());
}

// ---- (8b) fsync failure, through a fault-injecting VFS ----

// A VFS shim over the default one whose xSync (xWrite) fails while `fail_sync`
// (`fail_write`) is set, like a disk that reports EIO. Registered as the default VFS for
// the test's duration, so the journal needs no hook for it.
struct FaultVfs {
  static inline std::atomic<bool> fail_sync{false};
  static inline std::atomic<bool> fail_write{false};
  static inline std::atomic<int> failures{0};
  static inline sqlite3_vfs* real = nullptr;
  static inline sqlite3_vfs vfs{};
  static inline sqlite3_io_methods methods{};

  struct File {
    sqlite3_file base;
    sqlite3_file* inner() { return reinterpret_cast<sqlite3_file*>(this + 1); }
  };
  static sqlite3_file* Inner(sqlite3_file* f) { return reinterpret_cast<File*>(f)->inner(); }

  static int Open(sqlite3_vfs*, const char* name, sqlite3_file* file, int flags, int* out) {
    sqlite3_file* inner = reinterpret_cast<File*>(file)->inner();
    int rc = real->xOpen(real, name, inner, flags, out);
    file->pMethods = inner->pMethods != nullptr ? &methods : nullptr;
    return rc;
  }
  static int Close(sqlite3_file* f) { return Inner(f)->pMethods->xClose(Inner(f)); }
  static int Read(sqlite3_file* f, void* b, int n, sqlite3_int64 o) {
    return Inner(f)->pMethods->xRead(Inner(f), b, n, o);
  }
  static int Write(sqlite3_file* f, const void* b, int n, sqlite3_int64 o) {
    if (fail_write.load()) {
      failures.fetch_add(1);
      return SQLITE_IOERR_WRITE;
    }
    return Inner(f)->pMethods->xWrite(Inner(f), b, n, o);
  }
  static int Truncate(sqlite3_file* f, sqlite3_int64 size) {
    return Inner(f)->pMethods->xTruncate(Inner(f), size);
  }
  static int Sync(sqlite3_file* f, int flags) {
    if (fail_sync.load()) {
      failures.fetch_add(1);
      return SQLITE_IOERR_FSYNC;
    }
    return Inner(f)->pMethods->xSync(Inner(f), flags);
  }
  static int FileSize(sqlite3_file* f, sqlite3_int64* size) {
    return Inner(f)->pMethods->xFileSize(Inner(f), size);
  }
  static int Lock(sqlite3_file* f, int l) { return Inner(f)->pMethods->xLock(Inner(f), l); }
  static int Unlock(sqlite3_file* f, int l) { return Inner(f)->pMethods->xUnlock(Inner(f), l); }
  static int CheckReserved(sqlite3_file* f, int* r) {
    return Inner(f)->pMethods->xCheckReservedLock(Inner(f), r);
  }
  static int FileControl(sqlite3_file* f, int op, void* arg) {
    return Inner(f)->pMethods->xFileControl(Inner(f), op, arg);
  }
  static int SectorSize(sqlite3_file* f) { return Inner(f)->pMethods->xSectorSize(Inner(f)); }
  static int DeviceCharacteristics(sqlite3_file* f) {
    return Inner(f)->pMethods->xDeviceCharacteristics(Inner(f));
  }
  static int ShmMap(sqlite3_file* f, int pg, int sz, int extend, void volatile** p) {
    return Inner(f)->pMethods->xShmMap(Inner(f), pg, sz, extend, p);
  }
  static int ShmLock(sqlite3_file* f, int offset, int n, int flags) {
    return Inner(f)->pMethods->xShmLock(Inner(f), offset, n, flags);
  }
  static void ShmBarrier(sqlite3_file* f) { Inner(f)->pMethods->xShmBarrier(Inner(f)); }
  static int ShmUnmap(sqlite3_file* f, int del) {
    return Inner(f)->pMethods->xShmUnmap(Inner(f), del);
  }
  static int Fetch(sqlite3_file* f, sqlite3_int64 o, int n, void** p) {
    return Inner(f)->pMethods->xFetch(Inner(f), o, n, p);
  }
  static int Unfetch(sqlite3_file* f, sqlite3_int64 o, void* p) {
    return Inner(f)->pMethods->xUnfetch(Inner(f), o, p);
  }

  static int Delete(sqlite3_vfs*, const char* name, int sync) {
    return real->xDelete(real, name, sync);
  }
  static int Access(sqlite3_vfs*, const char* name, int flags, int* out) {
    return real->xAccess(real, name, flags, out);
  }
  static int FullPathname(sqlite3_vfs*, const char* name, int n, char* out) {
    return real->xFullPathname(real, name, n, out);
  }
  static int Randomness(sqlite3_vfs*, int n, char* out) { return real->xRandomness(real, n, out); }
  static int Sleep(sqlite3_vfs*, int us) { return real->xSleep(real, us); }
  static int CurrentTime(sqlite3_vfs*, double* t) { return real->xCurrentTime(real, t); }
  static int GetLastError(sqlite3_vfs*, int n, char* out) {
    return real->xGetLastError(real, n, out);
  }
  static int CurrentTimeInt64(sqlite3_vfs*, sqlite3_int64* t) {
    return real->xCurrentTimeInt64(real, t);
  }

  // Makes the shim the default VFS until destroyed.
  FaultVfs() {
    real = sqlite3_vfs_find(nullptr);
    methods = sqlite3_io_methods{3,
                                 &Close,
                                 &Read,
                                 &Write,
                                 &Truncate,
                                 &Sync,
                                 &FileSize,
                                 &Lock,
                                 &Unlock,
                                 &CheckReserved,
                                 &FileControl,
                                 &SectorSize,
                                 &DeviceCharacteristics,
                                 &ShmMap,
                                 &ShmLock,
                                 &ShmBarrier,
                                 &ShmUnmap,
                                 &Fetch,
                                 &Unfetch};
    vfs = sqlite3_vfs{};
    vfs.iVersion = 2;
    vfs.szOsFile = static_cast<int>(sizeof(File)) + real->szOsFile;
    vfs.mxPathname = real->mxPathname;
    vfs.zName = "machub-fault";
    vfs.xOpen = &Open;
    vfs.xDelete = &Delete;
    vfs.xAccess = &Access;
    vfs.xFullPathname = &FullPathname;
    vfs.xRandomness = &Randomness;
    vfs.xSleep = &Sleep;
    vfs.xCurrentTime = &CurrentTime;
    vfs.xGetLastError = &GetLastError;
    vfs.xCurrentTimeInt64 = &CurrentTimeInt64;
    fail_sync = false;
    fail_write = false;
    failures = 0;
    sqlite3_vfs_register(&vfs, 1);
  }
  ~FaultVfs() {
    sqlite3_vfs_unregister(&vfs);
    sqlite3_vfs_register(real, 1);
  }
};

// Appends a group of 20 while `fault` is set: every answer is kStorageUnavailable. Then
// the same 20 again without the fault: all stored, seq and receipts continue without a gap.
void FailThenRecover(SqliteJournal& journal, std::atomic<bool>& fault, int64_t stored_before) {
  std::vector<core::Sale> sales;
  for (int i = 0; i < 20; ++i) sales.push_back(MakeSale(Str("eio", i)));
  fault = true;
  journal.PauseWriterForTest();
  std::vector<std::future<Result<Receipt>>> futures;
  for (const core::Sale& sale : sales) futures.push_back(journal.Append(sale));
  journal.ResumeWriterForTest();
  for (auto& f : futures) {
    Result<Receipt> r = f.get();
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.status().code(), ErrorCode::kStorageUnavailable);
  }
  fault = false;
  EXPECT_GT(FaultVfs::failures.load(), 0);
  EXPECT_EQ(journal.Health().code(), ErrorCode::kStorageUnavailable);
  EXPECT_EQ(journal.GetWriterStats().failed_groups, 1);
  Result<JournalStats> stats = journal.Stats();
  ASSERT_TRUE(stats.ok());
  EXPECT_EQ(stats->sales, stored_before);

  journal.PauseWriterForTest();
  futures.clear();
  for (const core::Sale& sale : sales) futures.push_back(journal.Append(sale));
  journal.ResumeWriterForTest();
  for (int i = 0; i < 20; ++i) {
    Result<Receipt> r = futures[i].get();
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    EXPECT_TRUE(r->created);
    EXPECT_EQ(r->seq, stored_before + 1 + i);
    if (i == 0) {
      char expected[32];
      std::snprintf(expected, sizeof(expected), "T01-%06lld",
                    static_cast<long long>(stored_before + 1));
      EXPECT_EQ(r->receipt_no, expected);
    }
  }
  EXPECT_TRUE(journal.Health().ok());
}

TEST_F(JournalTest, FsyncFailureIsNeverAcknowledged) {
  FaultVfs fault;
  JournalOptions options = Options();
  options.checkpoint_interval_ms = 60'000;  // only commits write during the test
  {
    auto journal = MustOpen(options);
    ASSERT_NE(journal, nullptr);
    for (int i = 0; i < 3; ++i) MustAppend(*journal, MakeSale(Str("pre", i)));
    FailThenRecover(*journal, FaultVfs::fail_sync, 3);
    // Same connection: the next commit overwrote the failed group's WAL frames.
    EXPECT_EQ(journal->GetWriterStats().reopens, 0);
  }
  // After a reopen the failed group has not come back.
  auto journal = MustOpen(options);
  ASSERT_NE(journal, nullptr);
  Result<int64_t> verified = journal->VerifyChain();
  ASSERT_TRUE(verified.ok()) << verified.status().ToString();
  EXPECT_EQ(*verified, 23);
  EXPECT_TRUE(journal->IntegrityCheck().ok());
}

TEST_F(JournalTest, WriteErrorReopensTheConnection) {
  FaultVfs fault;
  JournalOptions options = Options();
  options.checkpoint_interval_ms = 60'000;
  {
    auto journal = MustOpen(options);
    ASSERT_NE(journal, nullptr);
    for (int i = 0; i < 3; ++i) MustAppend(*journal, MakeSale(Str("pre", i)));
    FailThenRecover(*journal, FaultVfs::fail_write, 3);
    EXPECT_EQ(journal->GetWriterStats().reopens, 1);
  }
  auto journal = MustOpen(options);
  ASSERT_NE(journal, nullptr);
  Result<int64_t> verified = journal->VerifyChain();
  ASSERT_TRUE(verified.ok()) << verified.status().ToString();
  EXPECT_EQ(*verified, 23);
  EXPECT_TRUE(journal->IntegrityCheck().ok());
}

// ---- (9) close ----

TEST_F(JournalTest, CloseDrainsQueuedAppends) {
  JournalOptions options = Options();
  auto journal = MustOpen(options);
  ASSERT_NE(journal, nullptr);
  constexpr int kQueued = 100;
  std::mutex mu;
  std::vector<Result<Receipt>> answers;
  journal->PauseWriterForTest();
  for (int i = 0; i < kQueued; ++i) {
    journal->Append(MakeSale(Str("q", i)), [&](Result<Receipt> r) {
      std::lock_guard<std::mutex> lock(mu);
      answers.push_back(std::move(r));
    });
  }
  EXPECT_EQ(journal->QueuedForTest(), static_cast<size_t>(kQueued));
  journal->Close();  // resumes the writer and waits for the queue
  ASSERT_EQ(answers.size(), static_cast<size_t>(kQueued));
  for (const auto& a : answers) EXPECT_TRUE(a.ok() && a->created) << a.status().ToString();

  auto after = journal->Append(MakeSale("late"));
  ASSERT_EQ(after.wait_for(std::chrono::seconds(0)), std::future_status::ready);
  EXPECT_EQ(after.get().status().code(), ErrorCode::kStorageUnavailable);
  EXPECT_EQ(journal->Health().code(), ErrorCode::kStorageUnavailable);
  EXPECT_EQ(journal->Get("q0").status().code(), ErrorCode::kStorageUnavailable);
  journal->Close();  // idempotent

  journal = MustOpen(options);
  ASSERT_NE(journal, nullptr);
  Result<JournalStats> stats = journal->Stats();
  ASSERT_TRUE(stats.ok());
  EXPECT_EQ(stats->sales, kQueued);
}

// Waits (polling; the checkpointer has no completion signal) until `pred` holds.
template <typename Pred>
bool WaitFor(Pred pred) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (!pred()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  return true;
}

// The writer never checkpoints (wal_autocheckpoint=0), so the main database file only
// grows when the checkpointer copies the WAL into it.
TEST_F(JournalTest, CheckpointerCopiesTheWalIntoTheDatabase) {
  JournalOptions options = Options();
  options.checkpoint_interval_ms = 5;
  auto journal = MustOpen(options);
  ASSERT_NE(journal, nullptr);
  const auto db_size_before = std::filesystem::file_size(options.path);
  journal->PauseWriterForTest();
  std::vector<std::future<Result<Receipt>>> futures;
  for (int i = 0; i < 200; ++i) {
    futures.push_back(journal->Append(MakeSale(SaleSpec{.id = Str("b", i), .lines = 3})));
  }
  journal->ResumeWriterForTest();
  for (auto& f : futures) ASSERT_TRUE(f.get().ok());
  // The checkpointer runs only once commits happened, so its first run follows the group.
  EXPECT_TRUE(WaitFor([&] { return journal->GetWriterStats().checkpoints >= 1; }));
  // 200 packed rows of ~200 bytes with their index entries.
  EXPECT_GT(std::filesystem::file_size(options.path), db_size_before + 40'000);
  EXPECT_EQ(journal->GetWriterStats().writer_checkpoints, 0);
}

// With checkpoint_min_wal_bytes the checkpointer lets the WAL grow: a few commits wait
// until they are checkpoint_max_age_ms old (the test's clock), many commits run one as
// soon as they wrote that many bytes of WAL; each copies everything committed so far.
TEST_F(JournalTest, CheckpointerWaitsForEnoughWalOrItsAge) {
  JournalOptions options = Options();
  options.checkpoint_interval_ms = 5;
  options.checkpoint_min_wal_bytes = 512 * 1024;
  options.checkpoint_max_age_ms = 60'000;
  auto journal = MustOpen(options);
  ASSERT_NE(journal, nullptr);
  const auto db_size_before = std::filesystem::file_size(options.path);
  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE(journal->Append(MakeSale(SaleSpec{.id = Str("few", i)})).get().ok());
  }
  // 40 ticks: three small commits are neither enough WAL nor old enough.
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  EXPECT_EQ(journal->GetWriterStats().checkpoints, 0);
  EXPECT_EQ(std::filesystem::file_size(options.path), db_size_before);

  clock_.Advance(59'000);
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  EXPECT_EQ(journal->GetWriterStats().checkpoints, 0);  // 59 s: not yet
  clock_.Advance(1'000);
  EXPECT_TRUE(WaitFor([&] { return journal->GetWriterStats().checkpoints == 1; }));
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  EXPECT_EQ(journal->GetWriterStats().checkpoints, 1);  // nothing new to copy

  // One commit at a time (each is at least a sales leaf, two id leaves and the counter:
  // 4 KiB of frames) until the WAL holds 512 KiB more; the clock stands still.
  int appended = 0;
  while (journal->GetWriterStats().checkpoints == 1 && appended < 1000) {
    ASSERT_TRUE(
        journal->Append(MakeSale(SaleSpec{.id = Str("many", appended), .lines = 3})).get().ok());
    ++appended;
  }
  EXPECT_EQ(journal->GetWriterStats().checkpoints, 2) << appended << " sales";
  // Enough bytes took more than a handful of commits and fewer than 512 KiB / 1 KiB.
  EXPECT_GT(appended, 20);
  EXPECT_LT(appended, 512);
  EXPECT_EQ(journal->GetWriterStats().writer_checkpoints, 0);
}

// A clean Close leaves no WAL behind even when the thresholds held the checkpoint back
// and reads used the pool: the writer closes last, so SQLite copies and deletes the WAL
// then, and the next start has nothing to copy.
TEST_F(JournalTest, CloseCopiesTheWalIntoTheDatabase) {
  JournalOptions options = Options();
  options.checkpoint_min_wal_bytes = 64 * 1024 * 1024;
  options.checkpoint_max_age_ms = 60'000;
  const std::string wal = options.path + "-wal";
  {
    auto journal = MustOpen(options);
    ASSERT_NE(journal, nullptr);
    for (int i = 0; i < 20; ++i) MustAppend(*journal, MakeSale(SaleSpec{.id = Str("c", i)}));
    ASSERT_TRUE(journal->Get("c0").ok() && journal->Get("c0")->has_value());  // a pooled read
    EXPECT_EQ(journal->GetWriterStats().checkpoints, 0);
    ASSERT_TRUE(std::filesystem::exists(wal));
    EXPECT_GT(std::filesystem::file_size(wal), 0u);
    journal->Close();
  }
  EXPECT_FALSE(std::filesystem::exists(wal));
  auto reopened = MustOpen(options);
  ASSERT_NE(reopened, nullptr);
  auto last = reopened->Get("c19");
  EXPECT_TRUE(last.ok() && last->has_value());
}

TEST_F(JournalTest, OpenRefusesNegativeCheckpointThresholds) {
  JournalOptions options = Options();
  options.checkpoint_min_wal_bytes = -1;
  Result<std::unique_ptr<SqliteJournal>> journal = SqliteJournal::Open(options);
  ASSERT_FALSE(journal.ok());
  EXPECT_EQ(journal.status().code(), ErrorCode::kInvalidArgument);
  options = Options();
  options.checkpoint_max_age_ms = -1;
  journal = SqliteJournal::Open(options);
  ASSERT_FALSE(journal.ok());
  EXPECT_EQ(journal.status().code(), ErrorCode::kInvalidArgument);
}

// When a checkpointer run cannot copy every frame (here: a reader holds an old snapshot;
// in production: commits during the run) and the WAL is big, the writer runs a catch-up
// checkpoint between two groups.
TEST_F(JournalTest, IncompleteCheckpointAsksTheWriterToCatchUp) {
  JournalOptions options = Options();
  options.checkpoint_interval_ms = 5;
  auto journal = MustOpen(options);
  ASSERT_NE(journal, nullptr);
  journal->SetWalCatchUpFramesForTest(10);
  for (int i = 0; i < 5; ++i) MustAppend(*journal, MakeSale(Str("a", i)));

  sqlite3* reader = nullptr;
  ASSERT_EQ(sqlite3_open_v2(options.path.c_str(), &reader, SQLITE_OPEN_READONLY, nullptr),
            SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(reader, "BEGIN; SELECT count(*) FROM sales;", nullptr, nullptr, nullptr),
            SQLITE_OK);
  journal->PauseWriterForTest();
  std::vector<std::future<Result<Receipt>>> futures;
  for (int i = 0; i < 200; ++i) {
    futures.push_back(journal->Append(MakeSale(SaleSpec{.id = Str("b", i), .lines = 3})));
  }
  journal->ResumeWriterForTest();
  for (auto& f : futures) ASSERT_TRUE(f.get().ok());
  // A writer task runs after the writer finished the group, its catch-up check included.
  ASSERT_TRUE(journal->QueryIntOnWriterForTest("SELECT 1").ok());
  // A checkpointer run that ends after that check stops at the reader's snapshot, finds
  // the WAL long and asks the writer to catch up.
  const int64_t runs = journal->GetWriterStats().checkpoints;
  EXPECT_TRUE(WaitFor([&] { return journal->GetWriterStats().checkpoints >= runs + 1; }));
  // The writer catches up after its next group, unless the checkpointer happens to be
  // running (SQLITE_BUSY); then after the one after.
  const int64_t before = journal->GetWriterStats().writer_checkpoints;
  int extra = 0;
  while (journal->GetWriterStats().writer_checkpoints == before && extra < 50) {
    MustAppend(*journal, MakeSale(Str("c", extra++)));
    ASSERT_TRUE(journal->QueryIntOnWriterForTest("SELECT 1").ok());
  }
  EXPECT_GT(journal->GetWriterStats().writer_checkpoints, before);
  sqlite3_exec(reader, "COMMIT", nullptr, nullptr, nullptr);
  sqlite3_close_v2(reader);

  MustAppend(*journal, MakeSale("d"));
  Result<int64_t> verified = journal->VerifyChain();
  ASSERT_TRUE(verified.ok()) << verified.status().ToString();
  EXPECT_EQ(*verified, 206 + extra);
  EXPECT_TRUE(journal->IntegrityCheck().ok());
}

// ---- measurement: worst commit while checkpoints run ----

int64_t EnvInt(const char* name, int64_t fallback) {
  const char* value = std::getenv(name);
  return value != nullptr ? std::atoll(value) : fallback;
}

// Prints the worst COMMIT and the worst whole group while the checkpointer (or, with
// checkpoint_interval_ms=0, SQLite's inline autocheckpoint) runs. Small by default;
// MACHUB_JOURNAL_MEASURE_SALES=200000 gives the figure for docs/JOURNAL.md;
// MACHUB_JOURNAL_MEASURE_PRODUCERS / _BURST shape the load (default 8 x 32 in flight);
// MACHUB_JOURNAL_MEASURE_CHECKPOINT_MS sets the checkpointer's interval (default 1000).
TEST_F(JournalTest, MeasureWorstCommitUnderCheckpoints) {
  const int64_t total = EnvInt("MACHUB_JOURNAL_MEASURE_SALES", 4000);
  // Each producer appends a burst and waits for all of it, like `burst` terminals.
  const int producers = static_cast<int>(EnvInt("MACHUB_JOURNAL_MEASURE_PRODUCERS", 8));
  const int burst_size = static_cast<int>(EnvInt("MACHUB_JOURNAL_MEASURE_BURST", 32));
  const int64_t checkpoint_ms = EnvInt("MACHUB_JOURNAL_MEASURE_CHECKPOINT_MS", 1000);
  for (int64_t interval_ms : {checkpoint_ms, int64_t{0}}) {
    const std::string sub = dir_ + Str("/ckpt", interval_ms);
    std::filesystem::create_directory(sub);
    core::MetricsRegistry metrics;
    JournalOptions options = Options();
    options.path = sub + "/journal.db";
    options.checkpoint_interval_ms = interval_ms;
    options.metrics = &metrics;
    options.clock = nullptr;  // real monotonic time for the latencies
    auto journal = MustOpen(options);
    ASSERT_NE(journal, nullptr);
    std::atomic<int64_t> next{0};
    std::atomic<int64_t> failures{0};
    const auto start = std::chrono::steady_clock::now();
    std::vector<std::thread> threads;
    for (int p = 0; p < producers; ++p) {
      threads.emplace_back([&, p] {
        core::Sale base = MakeSale(SaleSpec{.id = "base", .terminal = Str("T", p), .lines = 2});
        for (;;) {
          std::vector<std::future<Result<Receipt>>> burst;
          for (int i = 0; i < burst_size; ++i) {
            int64_t n = next.fetch_add(1);
            if (n >= total) break;
            core::Sale sale = base;
            sale.id = Str("m", n);
            burst.push_back(journal->Append(std::move(sale)));
          }
          if (burst.empty()) return;
          for (auto& f : burst) {
            if (!f.get().ok()) failures.fetch_add(1);
          }
        }
      });
    }
    for (auto& t : threads) t.join();
    const double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    EXPECT_EQ(failures.load(), 0);
    SqliteJournal::WriterStats latency = journal->GetWriterStats();
    Result<JournalStats> stats = journal->Stats();
    ASSERT_TRUE(stats.ok());
    EXPECT_EQ(stats->sales, total);
    // p99 of the COMMIT call from the histogram (upper bound of the bucket).
    core::Histogram& fsync =
        metrics.GetHistogram("machub_fsync_seconds", "", core::LatencyBuckets());
    std::vector<int64_t> cumulative = fsync.CumulativeCounts();
    double p99 = -1;
    for (size_t i = 0; i < fsync.bounds().size(); ++i) {
      if (cumulative[i] * 100 >= fsync.Count() * 99) {
        p99 = fsync.bounds()[i];
        break;
      }
    }
    std::printf(
        "[ measure ] %d x %d in flight, checkpoint_interval_ms=%lld%s: %lld sales in %.2f s "
        "(%.0f/s), %lld "
        "commits (%.1f sales/commit), worst COMMIT %.2f ms, worst group %.2f ms, mean COMMIT "
        "%.2f ms, p99 COMMIT <= %.4f s, %lld checkpoints (%lld by the writer, worst %.2f ms), %lld "
        "COMMITs during a checkpoint "
        "(worst %.2f ms), db+wal %.1f MB\n",
        producers, burst_size, static_cast<long long>(interval_ms),
        interval_ms == 0 ? " (inline autocheckpoint)" : " (checkpointer thread)",
        static_cast<long long>(total), seconds, static_cast<double>(total) / seconds,
        static_cast<long long>(stats->commits),
        static_cast<double>(total) / static_cast<double>(stats->commits),
        static_cast<double>(latency.max_commit_us) / 1000.0,
        static_cast<double>(latency.max_group_us) / 1000.0,
        fsync.Sum() * 1000.0 / static_cast<double>(std::max<int64_t>(1, fsync.Count())), p99,
        static_cast<long long>(latency.checkpoints),
        static_cast<long long>(latency.writer_checkpoints),
        static_cast<double>(latency.max_writer_checkpoint_us) / 1000.0,
        static_cast<long long>(latency.commits_during_checkpoint),
        static_cast<double>(latency.max_commit_during_checkpoint_us) / 1000.0,
        static_cast<double>(stats->size_bytes) / 1e6);
  }
}

}  // namespace
}  // namespace machub::journal
