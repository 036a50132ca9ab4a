// Journal tests (journal_test_support.h has the fixture): The ledger side: upload batches, pruning,
// sink progress cursors, their migrations.
#include "journal/journal_test_support.h"

namespace machub::journal {
namespace {

// ---- (9) upload bookkeeping and pruning (schema v2) ----

BatchRecord Batch(int64_t first, int64_t last, const std::string& key = "") {
  BatchRecord b;
  b.first_seq = first;
  b.last_seq = last;
  b.key = key.empty() ? Str("k-", first) : key;
  b.format = "jsonl";
  b.gzip_level = 6;
  b.raw_bytes = 100;
  b.gz_bytes = 50;
  b.canonical_bytes = 80;
  b.sha256_hex = std::string(64, 'a');
  b.md5_hex = std::string(32, 'b');
  b.created_at_ms = 1234;
  return b;
}

TEST_F(JournalTest, MigratesAVersion1DatabaseToVersion2) {
  JournalOptions options = Options();
  {
    auto journal = MustOpen(options);
    ASSERT_NE(journal, nullptr);
    for (int i = 0; i < 3; ++i) MustAppend(*journal, MakeSale(Str("v1-", i)));
  }
  // Back to what a v1 binary left behind.
  ExecRaw(options.path,
          kUndoV6 +
              "DROP TABLE sink_progress; DROP TABLE ids; "
              "DROP TABLE batches; DROP INDEX IF EXISTS sales_unuploaded; DROP INDEX sales_ref; "
              "PRAGMA user_version=1");
  ASSERT_EQ(UserVersion(options.path), 1);
  auto journal = MustOpen(options);
  ASSERT_NE(journal, nullptr);
  EXPECT_EQ(UserVersion(options.path), 8);  // v1 -> ... -> v8
  Result<SyncBounds> bounds = journal->GetSyncBounds();
  ASSERT_TRUE(bounds.ok()) << bounds.status().ToString();
  EXPECT_EQ(bounds->last_seq, 3);
  EXPECT_EQ(bounds->batched_seq, 0);
  EXPECT_EQ(bounds->oldest_unuploaded_seq, 1);
  EXPECT_EQ(bounds->anchor_seq, 0);
  EXPECT_EQ(bounds->anchor_hash, core::GenesisHash("S001"));
  Result<int64_t> verified = journal->VerifyChain();
  ASSERT_TRUE(verified.ok());
  EXPECT_EQ(*verified, 3);
}

TEST_F(JournalTest, RecordsBatchesInOrderAndMarksThemUploaded) {
  auto journal = MustOpen(Options());
  ASSERT_NE(journal, nullptr);
  int64_t canonical = 0;
  for (int i = 1; i <= 10; ++i) {
    MustAppend(*journal, MakeSale(Str("b", i)));
    if (i <= 4) canonical += static_cast<int64_t>((*journal->Get(Str("b", i)))->canonical.size());
  }
  Result<int64_t> bytes = journal->CanonicalBytes(0, 4);
  ASSERT_TRUE(bytes.ok());
  EXPECT_EQ(*bytes, canonical);
  EXPECT_EQ(*journal->CanonicalBytes(4, 4), 0);

  Result<BatchRecord> first = journal->RecordBatch(Batch(1, 4));
  ASSERT_TRUE(first.ok()) << first.status().ToString();
  EXPECT_GT(first->id, 0);
  EXPECT_EQ(first->state, BatchState::kPending);
  // Idempotent for the same range and key; refused for another batch at the same start.
  Result<BatchRecord> again = journal->RecordBatch(Batch(1, 4));
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->id, first->id);
  EXPECT_EQ(journal->RecordBatch(Batch(1, 5)).status().code(), ErrorCode::kInvalidArgument);
  // Not right after the last batch, or past the last sale: refused.
  EXPECT_EQ(journal->RecordBatch(Batch(6, 7)).status().code(), ErrorCode::kInvalidArgument);
  EXPECT_EQ(journal->RecordBatch(Batch(5, 11)).status().code(), ErrorCode::kInvalidArgument);
  BatchRecord bad = Batch(5, 6);
  bad.sha256_hex = "xyz";
  EXPECT_EQ(journal->RecordBatch(bad).status().code(), ErrorCode::kInvalidArgument);

  Result<SyncBounds> bounds = journal->GetSyncBounds();
  ASSERT_TRUE(bounds.ok());
  EXPECT_EQ(bounds->batched_seq, 4);
  EXPECT_EQ(bounds->oldest_unuploaded_seq, 1);

  ASSERT_TRUE(journal->RecordBatchFailure(first->id, "network: refused").ok());
  ASSERT_TRUE(journal->RecordBatchFailure(first->id, "network: reset").ok());
  ASSERT_TRUE(
      journal->UpdateBatchObject(first->id, 101, 51, std::string(64, 'c'), std::string(32, 'd'))
          .ok());
  Result<std::vector<BatchRecord>> unfinished = journal->ListBatches(true);
  ASSERT_TRUE(unfinished.ok());
  ASSERT_EQ(unfinished->size(), 1u);
  EXPECT_EQ((*unfinished)[0].attempts, 2);
  EXPECT_EQ((*unfinished)[0].last_error, "network: reset");
  EXPECT_EQ((*unfinished)[0].sha256_hex, std::string(64, 'c'));
  EXPECT_EQ((*unfinished)[0].gz_bytes, 51);
  EXPECT_EQ((*unfinished)[0].key, "k-1");

  ASSERT_TRUE(journal->MarkBatchUploaded(first->id, 5555).ok());
  ASSERT_TRUE(journal->MarkBatchUploaded(first->id, 5556).ok());  // idempotent
  for (int i = 1; i <= 10; ++i) {
    EXPECT_EQ((*journal->Get(Str("b", i)))->uploaded, i <= 4) << i;
  }
  bounds = journal->GetSyncBounds();
  EXPECT_EQ(bounds->oldest_unuploaded_seq, 5);
  EXPECT_TRUE(journal->ListBatches(true)->empty());
  Result<std::vector<BatchRecord>> all = journal->ListBatches(false);
  ASSERT_EQ(all->size(), 1u);
  EXPECT_EQ((*all)[0].state, BatchState::kUploaded);
  EXPECT_EQ((*all)[0].uploaded_at_ms, 5555);
  EXPECT_EQ(journal->UpdateBatchObject(first->id, 1, 1, std::string(64, 'c'), std::string(32, 'd'))
                .code(),
            ErrorCode::kNotFound);

  // A quarantined batch keeps its sales not uploaded and cannot be marked uploaded.
  Result<BatchRecord> second = journal->RecordBatch(Batch(5, 10));
  ASSERT_TRUE(second.ok());
  ASSERT_TRUE(journal->MarkBatchQuarantined(second->id, "differs").ok());
  EXPECT_EQ(journal->MarkBatchUploaded(second->id, 1).code(), ErrorCode::kInvalidArgument);
  unfinished = journal->ListBatches(true);
  ASSERT_EQ(unfinished->size(), 1u);
  EXPECT_EQ((*unfinished)[0].state, BatchState::kQuarantined);
  EXPECT_EQ((*unfinished)[0].last_error, "differs");
  EXPECT_FALSE((*journal->Get("b7"))->uploaded);
  EXPECT_EQ(journal->GetSyncBounds()->batched_seq, 10);
  // The operator resolved it: pending again, then uploaded.
  ASSERT_TRUE(journal->RequeueBatch(second->id).ok());
  EXPECT_EQ(journal->RequeueBatch(second->id).code(), ErrorCode::kNotFound);
  EXPECT_EQ((*journal->ListBatches(true))[0].state, BatchState::kPending);
  EXPECT_EQ((*journal->ListBatches(true))[0].last_error, "");
  ASSERT_TRUE(journal->MarkBatchUploaded(second->id, 7).ok());
  EXPECT_TRUE((*journal->Get("b7"))->uploaded);

  journal->Close();
  EXPECT_EQ(journal->RecordBatch(Batch(11, 11)).status().code(), ErrorCode::kStorageUnavailable);
  EXPECT_EQ(journal->GetSyncBounds().status().code(), ErrorCode::kStorageUnavailable);
}

// Prune deletes rows whose receipts the terminals table may not count yet (it is written
// by every 64th commit): it writes the table first, so a reopen never hands out a receipt
// number again. Here T-1's rows all go; the newest row, which stays, is T-2's.
TEST_F(JournalTest, PruneWritesTheReceiptCountersOfTheRowsItDeletes) {
  JournalOptions options = Options();
  {
    auto journal = MustOpen(options);
    ASSERT_NE(journal, nullptr);
    for (int i = 1; i <= 9; ++i) MustAppend(*journal, MakeSale(Str("t1-", i), "T-1"));
    MustAppend(*journal, MakeSale("t2-1", "T-2"));
    EXPECT_EQ(*journal->QueryIntOnWriterForTest(
                  "SELECT last_receipt FROM terminals WHERE terminal_id = 'T-1'"),
              1);  // only the first commit wrote it
    ASSERT_TRUE(journal->MarkBatchUploaded(journal->RecordBatch(Batch(1, 10))->id, 1).ok());
    PruneRequest all;
    all.ignore_age = true;
    Result<PruneResult> pruned = journal->Prune(all);
    ASSERT_TRUE(pruned.ok()) << pruned.status().ToString();
    EXPECT_EQ(pruned->pruned, 9);
    EXPECT_EQ(*journal->QueryIntOnWriterForTest(
                  "SELECT last_receipt FROM terminals WHERE terminal_id = 'T-1'"),
              9);
  }
  auto journal = MustOpen(options);
  ASSERT_NE(journal, nullptr);
  EXPECT_EQ(MustAppend(*journal, MakeSale("t1-10", "T-1")).receipt_no, "T-1-000010");
  EXPECT_EQ(MustAppend(*journal, MakeSale("t2-2", "T-2")).receipt_no, "T-2-000002");
}

TEST_F(JournalTest, PruneKeepsUnsyncedReferencedAndNewestSales) {
  JournalOptions options = Options();
  auto journal = MustOpen(options);
  ASSERT_NE(journal, nullptr);
  const int64_t t0 = clock_.NowMs();
  for (int i = 1; i <= 30; ++i) {
    clock_.Set(t0 + i * 1000);
    if (i == 25) {
      SaleSpec refund;
      refund.id = "refund-of-5";
      refund.type = "refund";
      refund.ref = "p5";
      MustAppend(*journal, MakeSale(refund));
    } else {
      MustAppend(*journal, MakeSale(Str("p", i)));
    }
  }
  // Nothing uploaded: nothing pruned, whatever the age.
  PruneRequest all;
  all.ignore_age = true;
  Result<PruneResult> pruned = journal->Prune(all);
  ASSERT_TRUE(pruned.ok()) << pruned.status().ToString();
  EXPECT_EQ(pruned->pruned, 0);

  ASSERT_TRUE(journal->MarkBatchUploaded(journal->RecordBatch(Batch(1, 20))->id, 1).ok());
  ASSERT_TRUE(journal->MarkBatchUploaded(journal->RecordBatch(Batch(21, 24))->id, 1).ok());

  // By age: sales received before t0 + 3.5 s are 1..3.
  PruneRequest by_age;
  by_age.received_before_ms = t0 + 3500;
  pruned = journal->Prune(by_age);
  ASSERT_TRUE(pruned.ok()) << pruned.status().ToString();
  EXPECT_EQ(pruned->pruned, 3);
  EXPECT_EQ(pruned->anchor_seq, 3);
  Result<int64_t> verified = journal->VerifyChain();
  ASSERT_TRUE(verified.ok()) << verified.status().ToString();
  EXPECT_EQ(*verified, 27);

  // Regardless of age, in chunks: stops before p5 (seq 5), which the kept refund (seq 25)
  // refers to... until the refund itself goes.
  all.max_sales = 1;
  pruned = journal->Prune(all);
  ASSERT_TRUE(pruned.ok());
  EXPECT_EQ(pruned->pruned, 1);
  EXPECT_EQ(pruned->anchor_seq, 4);
  all.max_sales = 100;
  pruned = journal->Prune(all);
  ASSERT_TRUE(pruned.ok());
  EXPECT_EQ(pruned->pruned, 0);  // seq 5 is referenced by the refund at 25 (not uploaded)
  EXPECT_EQ(pruned->anchor_seq, 4);

  // Upload the rest: now everything but the newest sale may go, refund and original in
  // one statement.
  ASSERT_TRUE(journal->MarkBatchUploaded(journal->RecordBatch(Batch(25, 30))->id, 1).ok());
  pruned = journal->Prune(all);
  ASSERT_TRUE(pruned.ok()) << pruned.status().ToString();
  EXPECT_EQ(pruned->pruned, 25);
  EXPECT_EQ(pruned->anchor_seq, 29);
  // The id index holds exactly the pruned sales' ids (Prune moves them there; an append
  // writes none).
  EXPECT_EQ(*journal->QueryIntOnWriterForTest("SELECT count(*) FROM ids"), 29);
  EXPECT_EQ(*journal->QueryIntOnWriterForTest("SELECT count(*) FROM ids WHERE seq > 29"), 0);
  // sale_ids (schema v8) holds the key of the kept sale and none of the pruned ones.
  EXPECT_EQ(*journal->QueryIntOnWriterForTest("SELECT count(*) FROM sale_ids"), 1);
  EXPECT_EQ(*journal->QueryIntOnWriterForTest("SELECT count(*) FROM sale_ids k JOIN sales s "
                                              "ON s.seq = k.seq AND k.id_hash = id_hash(s.id)"),
            1);
  EXPECT_EQ(journal->Prune(all)->pruned, 0);
  Result<SyncBounds> bounds = journal->GetSyncBounds();
  ASSERT_TRUE(bounds.ok());
  EXPECT_EQ(bounds->anchor_seq, 29);
  EXPECT_EQ(bounds->anchor_hash, (*journal->List(28, 1))[0].prev_hash);
  EXPECT_EQ(bounds->batched_seq, 30);
  EXPECT_EQ(bounds->last_seq, 30);
  // Uploaded batches wholly inside the pruned prefix are gone; the last one stays.
  Result<std::vector<BatchRecord>> batches = journal->ListBatches(false);
  ASSERT_EQ(batches->size(), 1u);
  EXPECT_EQ((*batches)[0].first_seq, 25);
  verified = journal->VerifyChain();
  ASSERT_TRUE(verified.ok()) << verified.status().ToString();
  EXPECT_EQ(*verified, 1);

  // The chain goes on after the anchor, across a reopen; a refund of a pruned sale is
  // refused with ref_expired and a retry of a pruned sale with id_expired (the id index
  // outlives the rows), never stored a second time.
  Receipt next = MustAppend(*journal, MakeSale("after-prune"));
  EXPECT_EQ(next.seq, 31);
  journal->Close();
  journal = MustOpen(options);
  ASSERT_NE(journal, nullptr);
  EXPECT_EQ(MustAppend(*journal, MakeSale("after-reopen")).seq, 32);
  verified = journal->VerifyChain();
  ASSERT_TRUE(verified.ok()) << verified.status().ToString();
  EXPECT_EQ(*verified, 3);
  SaleSpec late_refund;
  late_refund.id = "late-refund";
  late_refund.type = "refund";
  late_refund.ref = "p10";
  Result<Receipt> refused = journal->Append(MakeSale(late_refund)).get();
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().code(), ErrorCode::kRefExpired);
  EXPECT_EQ(refused.status().field(), "ref");
  Result<Receipt> retry = journal->Append(MakeSale("p10")).get();
  EXPECT_EQ(retry.status().code(), ErrorCode::kIdExpired);
  EXPECT_EQ(retry.status().field(), "id");
  late_refund.ref = "never-sold";
  late_refund.id = "late-refund-2";
  EXPECT_EQ(journal->Append(MakeSale(late_refund)).get().status().code(), ErrorCode::kInvalidField);
  EXPECT_EQ(MustAppend(*journal, MakeSale("after-reopen-2")).seq, 33);  // nothing took a seq

  // Past the id horizon (measured from each sale's receipt), the next prune forgets the
  // pruned ids: the index stays bounded.
  clock_.Set(t0 + options.id_horizon_ms + 31'000);
  ASSERT_TRUE(journal->MarkBatchUploaded(journal->RecordBatch(Batch(31, 33))->id, 1).ok());
  ASSERT_TRUE(journal->Prune(all).ok());
  {
    sqlite3* db = nullptr;
    ASSERT_EQ(sqlite3_open_v2(options.path.c_str(), &db, SQLITE_OPEN_READONLY, nullptr), SQLITE_OK);
    sqlite3_stmt* stmt = nullptr;
    ASSERT_EQ(sqlite3_prepare_v2(db, "SELECT count(*) FROM ids", -1, &stmt, nullptr), SQLITE_OK);
    ASSERT_EQ(sqlite3_step(stmt), SQLITE_ROW);
    // Every pruned id is past the horizon; the newest sale's row stays in `sales`, and a
    // live row's id is never in the index.
    EXPECT_EQ(sqlite3_column_int64(stmt, 0), 0);
    sqlite3_finalize(stmt);
    sqlite3_close(db);
  }
  EXPECT_EQ(journal->Append(MakeSale("p10")).get().status().code(), ErrorCode::kOk)
      << "beyond the documented horizon an id may be used again";

  // Tampering right after the anchor is still caught.
  journal->Close();
  ExecRaw(options.path, "UPDATE sales SET prev_hash = zeroblob(32) WHERE seq = 33");
  journal = MustOpen(options);
  ASSERT_NE(journal, nullptr);
  verified = journal->VerifyChain();
  EXPECT_FALSE(verified.ok());
}

TEST_F(JournalTest, UploadBookkeepingDoesNotStallAppends) {
  // Writer tasks run between groups: appends racing with them all complete, and the
  // sale counts and marks stay consistent.
  auto journal = MustOpen(Options());
  ASSERT_NE(journal, nullptr);
  for (int i = 1; i <= 200; ++i) MustAppend(*journal, MakeSale(Str("w", i)));
  std::atomic<bool> stop{false};
  std::thread appender([&] {
    for (int i = 0; !stop.load(); ++i) MustAppend(*journal, MakeSale(Str("x", i)));
  });
  for (int64_t first = 1; first <= 200; first += 20) {
    Result<BatchRecord> b = journal->RecordBatch(Batch(first, first + 19));
    ASSERT_TRUE(b.ok()) << b.status().ToString();
    ASSERT_TRUE(journal->MarkBatchUploaded(b->id, 1).ok());
  }
  // Prune keeps the newest sale: let the appender store at least one after the batches
  // (marking is one short transaction per batch, so this loop can beat it).
  while (journal->Stats()->last_seq <= 200) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  PruneRequest all;
  all.ignore_age = true;
  Result<PruneResult> pruned = journal->Prune(all);
  stop.store(true);
  appender.join();
  ASSERT_TRUE(pruned.ok()) << pruned.status().ToString();
  EXPECT_EQ(pruned->pruned, 200);
  Result<int64_t> verified = journal->VerifyChain();
  ASSERT_TRUE(verified.ok()) << verified.status().ToString();
  EXPECT_GE(*verified, 1);
}

// Schema v3: "uploaded" is derived from the batches, so marking a batch uploaded writes
// its batch row only, never the sale rows (which competed with sale commits for the WAL).
TEST_F(JournalTest, MarkingABatchUploadedWritesOneRowWhateverItsSize) {
  auto journal = MustOpen(Options());
  ASSERT_NE(journal, nullptr);
  std::vector<std::future<Result<Receipt>>> pending;
  for (int i = 1; i <= 2500; ++i) pending.push_back(journal->Append(MakeSale(Str("m", i))));
  for (auto& f : pending) ASSERT_TRUE(f.get().ok());
  Result<BatchRecord> big = journal->RecordBatch(Batch(1, 2500));
  ASSERT_TRUE(big.ok());
  EXPECT_EQ(journal->GetSyncBounds()->oldest_unuploaded_seq, 1);
  Result<int64_t> before = journal->QueryIntOnWriterForTest("SELECT total_changes()");
  ASSERT_TRUE(before.ok());
  ASSERT_TRUE(journal->MarkBatchUploaded(big->id, 42).ok());
  Result<int64_t> after = journal->QueryIntOnWriterForTest("SELECT total_changes()");
  ASSERT_TRUE(after.ok());
  EXPECT_EQ(*after - *before, 1);  // the batch row; v2 also rewrote 2500 sale rows
  // The mark commits without its own fsync; sale groups after it are FULL again, also
  // after a mark that failed.
  EXPECT_EQ(*journal->QueryIntOnWriterForTest("PRAGMA synchronous"), 2);
  EXPECT_EQ(journal->MarkBatchUploaded(big->id + 100, 42).code(), ErrorCode::kNotFound);
  EXPECT_EQ(*journal->QueryIntOnWriterForTest("PRAGMA synchronous"), 2);
  Result<std::vector<core::StoredSale>> all_sales = journal->List(0, 3000);
  ASSERT_TRUE(all_sales.ok());
  ASSERT_EQ(all_sales->size(), 2500u);
  for (const auto& s : *all_sales) ASSERT_TRUE(s.uploaded) << s.seq;
  EXPECT_EQ(journal->GetSyncBounds()->oldest_unuploaded_seq, 0);
  PruneRequest all;
  all.ignore_age = true;
  Result<PruneResult> pruned = journal->Prune(all);
  ASSERT_TRUE(pruned.ok());
  EXPECT_EQ(pruned->pruned, 2499);  // the newest sale stays
}

// A quarantined batch before an uploaded one: the uploaded batch's sales are uploaded, the
// quarantined ones are not, the backlog starts at the quarantined batch and nothing is
// pruned past it; sales in no batch yet are not uploaded either.
TEST_F(JournalTest, UploadedIsDerivedPerBatchAroundAQuarantine) {
  auto journal = MustOpen(Options());
  ASSERT_NE(journal, nullptr);
  for (int i = 1; i <= 12; ++i) MustAppend(*journal, MakeSale(Str("q", i)));
  Result<BatchRecord> first = journal->RecordBatch(Batch(1, 4));
  Result<BatchRecord> second = journal->RecordBatch(Batch(5, 10));
  ASSERT_TRUE(first.ok() && second.ok());
  ASSERT_TRUE(journal->MarkBatchQuarantined(first->id, "foreign object").ok());
  ASSERT_TRUE(journal->MarkBatchUploaded(second->id, 9).ok());
  for (int i = 1; i <= 12; ++i) {
    EXPECT_EQ((*journal->Get(Str("q", i)))->uploaded, i >= 5 && i <= 10) << i;
  }
  Result<std::vector<core::StoredSale>> listed = journal->List(2, 9);
  ASSERT_TRUE(listed.ok());
  ASSERT_EQ(listed->size(), 9u);
  for (const auto& s : *listed) EXPECT_EQ(s.uploaded, s.seq >= 5 && s.seq <= 10) << s.seq;
  Result<SyncBounds> bounds = journal->GetSyncBounds();
  ASSERT_TRUE(bounds.ok());
  EXPECT_EQ(bounds->oldest_unuploaded_seq, 1);
  EXPECT_EQ(bounds->oldest_unuploaded_received_at_ms, (*journal->Get("q1"))->received_at_ms);
  PruneRequest all;
  all.ignore_age = true;
  EXPECT_EQ(journal->Prune(all)->pruned, 0);
  // Resolved: everything up to the last batch may go, the unbatched tail stays.
  ASSERT_TRUE(journal->RequeueBatch(first->id).ok());
  ASSERT_TRUE(journal->MarkBatchUploaded(first->id, 10).ok());
  bounds = journal->GetSyncBounds();
  EXPECT_EQ(bounds->oldest_unuploaded_seq, 11);
  EXPECT_EQ(bounds->oldest_unuploaded_received_at_ms, (*journal->Get("q11"))->received_at_ms);
  Result<PruneResult> pruned = journal->Prune(all);
  ASSERT_TRUE(pruned.ok());
  EXPECT_EQ(pruned->pruned, 10);
  EXPECT_EQ(pruned->anchor_seq, 10);
  EXPECT_FALSE((*journal->Get("q11"))->uploaded);
  EXPECT_EQ(journal->GetSyncBounds()->oldest_unuploaded_seq, 11);
  ASSERT_TRUE(journal->VerifyChain().ok());
}

// A database a v2 binary left behind: per-row flags (with a batch half-marked when that
// binary was killed mid-way) and the backlog index. v3 drops the index and derives the
// flags from the batches, so the half-marked sales count as not uploaded (conservative:
// the batch is still pending and is retried), and nothing else changes.
TEST_F(JournalTest, MigratesAVersion2DatabaseToVersion3) {
  JournalOptions options = Options();
  {
    auto journal = MustOpen(options);
    ASSERT_NE(journal, nullptr);
    std::vector<std::future<Result<Receipt>>> pending;
    for (int i = 1; i <= 2500; ++i) pending.push_back(journal->Append(MakeSale(Str("v2-", i))));
    for (auto& f : pending) ASSERT_TRUE(f.get().ok());
    Result<BatchRecord> done = journal->RecordBatch(Batch(1, 1000, "k-a"));
    ASSERT_TRUE(done.ok());
    ASSERT_TRUE(journal->MarkBatchUploaded(done->id, 5).ok());
    ASSERT_TRUE(journal->RecordBatch(Batch(1001, 2500, "k-b")).ok());
  }
  // Back to v2: the index, and the flags as v2's chunked marking left them.
  ExecRaw(options.path,
          kUndoV6 +
              "DROP TABLE sink_progress; DROP TABLE ids; "
              "CREATE INDEX sales_unuploaded ON sales(seq) WHERE uploaded = 0; "
              "UPDATE sales SET uploaded = 1 WHERE seq <= 1500; PRAGMA user_version=2");
  ASSERT_EQ(UserVersion(options.path), 2);
  auto journal = MustOpen(options);
  ASSERT_NE(journal, nullptr);
  EXPECT_EQ(UserVersion(options.path), 8);  // v2 -> ... -> v8
  Result<int64_t> index = journal->QueryIntOnWriterForTest(
      "SELECT count(*) FROM sqlite_master WHERE name = 'sales_unuploaded'");
  ASSERT_TRUE(index.ok());
  EXPECT_EQ(*index, 0);
  Result<std::vector<core::StoredSale>> sales = journal->List(0, 3000);
  ASSERT_TRUE(sales.ok());
  ASSERT_EQ(sales->size(), 2500u);
  for (const auto& s : *sales) ASSERT_EQ(s.uploaded, s.seq <= 1000) << s.seq;
  Result<SyncBounds> bounds = journal->GetSyncBounds();
  ASSERT_TRUE(bounds.ok());
  EXPECT_EQ(bounds->batched_seq, 2500);
  EXPECT_EQ(bounds->oldest_unuploaded_seq, 1001);
  PruneRequest all;
  all.ignore_age = true;
  Result<PruneResult> pruned = journal->Prune(all);
  ASSERT_TRUE(pruned.ok()) << pruned.status().ToString();
  EXPECT_EQ(pruned->pruned, 1000);  // not into the pending batch, whatever its rows say
  // The pending batch finishes as usual; new sales are stored and are not uploaded.
  Result<std::vector<BatchRecord>> unfinished = journal->ListBatches(true);
  ASSERT_TRUE(unfinished.ok());
  ASSERT_EQ(unfinished->size(), 1u);
  ASSERT_TRUE(journal->MarkBatchUploaded((*unfinished)[0].id, 6).ok());
  MustAppend(*journal, MakeSale("after-v3"));
  EXPECT_FALSE((*journal->Get("after-v3"))->uploaded);
  EXPECT_EQ(journal->GetSyncBounds()->oldest_unuploaded_seq, 2501);
  Result<int64_t> verified = journal->VerifyChain();
  ASSERT_TRUE(verified.ok()) << verified.status().ToString();
  EXPECT_EQ(*verified, 1501);
}

// ---- (10) sink progress cursors (schema v4) ----

TEST_F(JournalTest, SinkProgressIsMonotonicAndSurvivesReopen) {
  JournalOptions options = Options();
  {
    auto journal = MustOpen(options);
    ASSERT_NE(journal, nullptr);
    for (int i = 1; i <= 5; ++i) MustAppend(*journal, MakeSale(Str("sp-", i)));
    Ledger& ledger = *journal;
    EXPECT_EQ(ledger.GetSinkProgress("dynamodb").status().code(), ErrorCode::kNotFound);
    EXPECT_EQ(ledger.AdvanceSinkProgress("dynamodb", 1).code(), ErrorCode::kNotFound);
    EXPECT_EQ(ledger.RegisterSink("").status().code(), ErrorCode::kInvalidArgument);
    EXPECT_EQ(ledger.RegisterSink("Dynamo DB").status().code(), ErrorCode::kInvalidArgument);
    EXPECT_EQ(ledger.RegisterSink(std::string(65, 'a')).status().code(),
              ErrorCode::kInvalidArgument);

    Result<SinkProgress> registered = ledger.RegisterSink("dynamodb");
    ASSERT_TRUE(registered.ok()) << registered.status().ToString();
    EXPECT_EQ(registered->sink, "dynamodb");
    EXPECT_EQ(registered->delivered_seq, 0);
    EXPECT_TRUE(registered->active);

    ASSERT_TRUE(ledger.AdvanceSinkProgress("dynamodb", 3).ok());
    EXPECT_EQ(ledger.GetSinkProgress("dynamodb")->delivered_seq, 3);
    // Monotonic: a lower or equal seq changes nothing and is not an error.
    ASSERT_TRUE(ledger.AdvanceSinkProgress("dynamodb", 2).ok());
    ASSERT_TRUE(ledger.AdvanceSinkProgress("dynamodb", 3).ok());
    EXPECT_EQ(ledger.GetSinkProgress("dynamodb")->delivered_seq, 3);
    // Never past what is stored, never negative.
    EXPECT_EQ(ledger.AdvanceSinkProgress("dynamodb", 6).code(), ErrorCode::kInvalidArgument);
    EXPECT_EQ(ledger.AdvanceSinkProgress("dynamodb", -1).code(), ErrorCode::kInvalidArgument);
    EXPECT_EQ(ledger.GetSinkProgress("dynamodb")->delivered_seq, 3);
    // Registering again keeps the cursor.
    EXPECT_EQ(ledger.RegisterSink("dynamodb")->delivered_seq, 3);
    ASSERT_TRUE(ledger.RegisterSink("archive-2").ok());
    ASSERT_TRUE(ledger.RetireSink("archive-2").ok());
    ASSERT_TRUE(ledger.RetireSink("archive-2").ok());  // idempotent
    EXPECT_EQ(ledger.RetireSink("never").code(), ErrorCode::kNotFound);
    EXPECT_EQ(ledger.AdvanceSinkProgress("archive-2", 1).code(), ErrorCode::kNotFound);
    journal->Close();
    EXPECT_EQ(ledger.GetSinkProgress("dynamodb").status().code(), ErrorCode::kStorageUnavailable);
    EXPECT_EQ(ledger.AdvanceSinkProgress("dynamodb", 4).code(), ErrorCode::kStorageUnavailable);
  }
  auto journal = MustOpen(options);
  ASSERT_NE(journal, nullptr);
  Result<std::vector<SinkProgress>> sinks = journal->ListSinks();
  ASSERT_TRUE(sinks.ok()) << sinks.status().ToString();
  ASSERT_EQ(sinks->size(), 2u);
  EXPECT_EQ((*sinks)[0].sink, "archive-2");
  EXPECT_FALSE((*sinks)[0].active);
  EXPECT_EQ((*sinks)[1].sink, "dynamodb");
  EXPECT_EQ((*sinks)[1].delivered_seq, 3);
  EXPECT_TRUE((*sinks)[1].active);
  // A retired sink registered again is active with its old cursor.
  Result<SinkProgress> back = journal->RegisterSink("archive-2");
  ASSERT_TRUE(back.ok());
  EXPECT_TRUE(back->active);
}

TEST_F(JournalTest, PruneWaitsForEveryActiveSinkCursor) {
  auto journal = MustOpen(Options());
  ASSERT_NE(journal, nullptr);
  for (int i = 1; i <= 10; ++i) MustAppend(*journal, MakeSale(Str("pc-", i)));
  Result<BatchRecord> batch = journal->RecordBatch(Batch(1, 10));
  ASSERT_TRUE(batch.ok()) << batch.status().ToString();
  ASSERT_TRUE(journal->MarkBatchUploaded(batch->id, 5).ok());
  ASSERT_TRUE(journal->RegisterSink("dynamodb").ok());
  ASSERT_TRUE(journal->RegisterSink("slow").ok());
  PruneRequest all;
  all.ignore_age = true;

  // The batch is uploaded, but neither cursor has moved: nothing goes.
  Result<PruneResult> pruned = journal->Prune(all);
  ASSERT_TRUE(pruned.ok()) << pruned.status().ToString();
  EXPECT_EQ(pruned->pruned, 0);
  // The lowest active cursor bounds the prefix.
  ASSERT_TRUE(journal->AdvanceSinkProgress("dynamodb", 7).ok());
  ASSERT_TRUE(journal->AdvanceSinkProgress("slow", 4).ok());
  pruned = journal->Prune(all);
  ASSERT_TRUE(pruned.ok());
  EXPECT_EQ(pruned->pruned, 4);
  EXPECT_EQ(pruned->anchor_seq, 4);
  // A retired sink no longer holds entries back; the newest entry always stays.
  ASSERT_TRUE(journal->RetireSink("slow").ok());
  pruned = journal->Prune(all);
  ASSERT_TRUE(pruned.ok());
  EXPECT_EQ(pruned->anchor_seq, 7);
  ASSERT_TRUE(journal->AdvanceSinkProgress("dynamodb", 10).ok());
  pruned = journal->Prune(all);
  ASSERT_TRUE(pruned.ok());
  EXPECT_EQ(pruned->anchor_seq, 9);
  Result<int64_t> verified = journal->VerifyChain();
  ASSERT_TRUE(verified.ok()) << verified.status().ToString();
  EXPECT_EQ(*verified, 1);
  // A cursor may sit at the anchor after everything before it was pruned.
  EXPECT_EQ(journal->GetSinkProgress("dynamodb")->delivered_seq, 10);
}

// A database the current v3 binary leaves behind (sales, an uploaded batch, a prune):
// v4 adds the cursor table and changes nothing else.
TEST_F(JournalTest, MigratesAVersion3DatabaseToVersion4) {
  JournalOptions options = Options();
  {
    auto journal = MustOpen(options);
    ASSERT_NE(journal, nullptr);
    for (int i = 1; i <= 6; ++i) MustAppend(*journal, MakeSale(Str("v3-", i)));
    Result<BatchRecord> batch = journal->RecordBatch(Batch(1, 4));
    ASSERT_TRUE(batch.ok());
    ASSERT_TRUE(journal->MarkBatchUploaded(batch->id, 5).ok());
    PruneRequest all;
    all.ignore_age = true;
    ASSERT_EQ(journal->Prune(all)->anchor_seq, 4);
  }
  ExecRaw(options.path,
          kUndoV6 + "DROP TABLE sink_progress; DROP TABLE ids; PRAGMA user_version=3");
  ASSERT_EQ(UserVersion(options.path), 3);
  auto journal = MustOpen(options);
  ASSERT_NE(journal, nullptr);
  EXPECT_EQ(UserVersion(options.path), 8);
  Result<std::vector<SinkProgress>> sinks = journal->ListSinks();
  ASSERT_TRUE(sinks.ok()) << sinks.status().ToString();
  EXPECT_TRUE(sinks->empty());
  Result<SyncBounds> bounds = journal->GetSyncBounds();
  ASSERT_TRUE(bounds.ok());
  EXPECT_EQ(bounds->last_seq, 6);
  EXPECT_EQ(bounds->anchor_seq, 4);
  EXPECT_EQ(bounds->batched_seq, 4);
  EXPECT_EQ(bounds->oldest_unuploaded_seq, 5);
  ASSERT_TRUE(journal->RegisterSink("dynamodb").ok());
  ASSERT_TRUE(journal->AdvanceSinkProgress("dynamodb", 6).ok());
  MustAppend(*journal, MakeSale("after-v4"));
  Result<int64_t> verified = journal->VerifyChain();
  ASSERT_TRUE(verified.ok()) << verified.status().ToString();
  EXPECT_EQ(*verified, 3);
}

}  // namespace
}  // namespace machub::journal
