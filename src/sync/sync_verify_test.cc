// Sync tests (sync_test_support.h has the fixtures): `machub verify` over uploaded objects,
// SyncService from configuration, and the crash between PUT and mark in a real child process.
#include "sync/sync_test_support.h"

namespace machub::sync {
namespace {

// ---- Verification ----

TEST_F(LocalSyncTest, VerifyFindsTamperingGapsAndDuplicates) {
  AppendSales(30);
  UploaderOptions options = Options();
  options.cut.format = BatchFormat::kCsv;
  ASSERT_TRUE(MakeUploader(options, sink_.get())->RunOnce(OnceOptions{}).ok());
  VerifyOptions verify{.prefix = "pos"};
  Result<VerifySummary> clean = VerifyStore(*sink_, verify);
  ASSERT_TRUE(clean.ok());
  EXPECT_TRUE(clean->ok()) << clean->ToJson();
  EXPECT_EQ(clean->sales, 30);
  EXPECT_EQ(clean->objects, 3);

  std::vector<std::string> keys = Keys();
  ASSERT_EQ(keys.size(), 3u);
  // A duplicate copy of the middle object under an overlapping name.
  auto middle = sink_->Get(keys[1]);
  auto middle_head = sink_->Head(keys[1]);
  cloud::PutRequest copy;
  copy.key = BatchKey("pos", "S001", 15, 20, clock_.NowMs(), BatchFormat::kCsv);
  copy.body = middle->body;
  copy.metadata = middle_head->metadata;
  ASSERT_TRUE(sink_->Put(copy).ok());
  Result<VerifySummary> dup = VerifyStore(*sink_, verify);
  ASSERT_TRUE(dup.ok());
  EXPECT_FALSE(dup->ok());
  EXPECT_GT(dup->duplicates, 0);
  EXPECT_GT(dup->hash_mismatches, 0);  // its content does not match its name
  fs::remove(sink_->root() + "/" + copy.key);

  // Removing the middle object leaves a gap of 10 and no other problem.
  fs::remove(sink_->root() + "/" + keys[1]);
  Result<VerifySummary> gap = VerifyStore(*sink_, verify);
  ASSERT_TRUE(gap.ok());
  EXPECT_EQ(gap->gaps, 10);
  EXPECT_EQ(gap->chain_breaks, 0);
  EXPECT_FALSE(gap->ok());
}

// Formula-looking names change the CSV bytes, not the chain: verify passes on both formats.
TEST_F(LocalSyncTest, VerifyPassesWithFormulaCells) {
  for (const char* format : {"csv", "jsonl"}) {
    for (int i = 0; i < 3; ++i) {
      SaleSpec spec;
      spec.id = std::string(format) + "-" + std::to_string(i);
      spec.name = i == 0 ? "=1+2" : (i == 1 ? "@cmd" : "-x");
      ASSERT_TRUE(journal_->Append(MakeSale(spec)).get().ok());
    }
    UploaderOptions options = Options();
    options.cut.format = std::string(format) == "csv" ? BatchFormat::kCsv : BatchFormat::kJsonl;
    ASSERT_TRUE(MakeUploader(options, sink_.get())->RunOnce(OnceOptions{}).ok());
  }
  Result<VerifySummary> summary = VerifyStore(*sink_, VerifyOptions{.prefix = "pos"});
  ASSERT_TRUE(summary.ok());
  EXPECT_TRUE(summary->ok()) << summary->ToJson();
  EXPECT_EQ(summary->sales, 6);
}

TEST_F(LocalSyncTest, VerifyRecomputesJsonLinesHashes) {
  AppendSales(20);
  ASSERT_TRUE(MakeUploader(Options(), sink_.get())->RunOnce(OnceOptions{}).ok());
  std::vector<std::string> keys = Keys();
  ASSERT_EQ(keys.size(), 2u);
  // Rewrite one sale's price, with consistent sha256 metadata and ETag: only the chain
  // hash can tell.
  std::string raw = *Gunzip(sink_->Get(keys[0])->body);
  size_t at = raw.find("\"unit_price\":\"3.50\"");
  ASSERT_NE(at, std::string::npos);
  raw.replace(at, 19, "\"unit_price\":\"0.50\"");
  ReplaceObject(keys[0], raw);
  Result<VerifySummary> summary = VerifyStore(*sink_, VerifyOptions{.prefix = "pos"});
  ASSERT_TRUE(summary.ok());
  EXPECT_EQ(summary->hash_mismatches, 1) << summary->ToJson();
  EXPECT_EQ(summary->chain_breaks, 0);
  EXPECT_FALSE(summary->ok());
  // The wrong store: no objects at all, nothing to complain about.
  Result<VerifySummary> other =
      VerifyStore(*sink_, VerifyOptions{.store_id = "S999", .prefix = "pos"});
  ASSERT_TRUE(other.ok());
  EXPECT_EQ(other->objects, 0);
}

// Entries stored under an untrusted clock (issue #11): the mark travels in both formats,
// verify recomputes the chain with it, and removing it from an object is caught. CSV
// objects written before the clock_untrusted column existed still verify.
TEST_F(LocalSyncTest, ClockUntrustedMarkIsUploadedAndVerified) {
  AppendSales(2, "ok");
  clock_.Advance(-3'600'000);  // the clock steps back an hour: held, marked
  AppendEvent("held-open", "drawer_open", {{"amount", "10.00"}});
  AppendSales(2, "held");
  UploaderOptions options = Options();
  options.cut.format = BatchFormat::kJsonl;
  ASSERT_TRUE(MakeUploader(options, sink_.get())->RunOnce(OnceOptions{}).ok());
  std::vector<std::string> keys = Keys();
  ASSERT_EQ(keys.size(), 1u);
  const std::string raw = *Gunzip(sink_->Get(keys[0])->body);
  EXPECT_EQ(std::count(raw.begin(), raw.end(), '\n'), 5);
  size_t marked = 0;
  for (size_t at = raw.find("\"clock_untrusted\":true"); at != std::string::npos;
       at = raw.find("\"clock_untrusted\":true", at + 1)) {
    ++marked;
  }
  EXPECT_EQ(marked, 3u) << raw;
  Result<VerifySummary> clean = VerifyStore(*sink_, VerifyOptions{.prefix = "pos"});
  ASSERT_TRUE(clean.ok());
  EXPECT_TRUE(clean->ok()) << clean->ToJson();
  EXPECT_EQ(clean->events, 1);

  // The CSV rows carry the mark in the last column.
  std::vector<core::StoredSale> sales = AllSales();
  const std::string csv = EncodeBatch("S001", sales, BatchFormat::kCsv);
  EXPECT_NE(csv.find(core::ToHex(sales[4].prev_hash) + ",true\n"), std::string::npos);
  EXPECT_NE(csv.find(core::ToHex(sales[0].prev_hash) + ",false\n"), std::string::npos);

  // Dropping the mark from the object: the hash no longer matches.
  std::string forged_raw = raw;
  const std::string mark = ",\"clock_untrusted\":true";
  forged_raw.erase(forged_raw.find(mark), mark.size());
  ReplaceObject(keys[0], forged_raw);
  Result<VerifySummary> summary = VerifyStore(*sink_, VerifyOptions{.prefix = "pos"});
  ASSERT_TRUE(summary.ok());
  EXPECT_EQ(summary->hash_mismatches, 1) << summary->ToJson();
  EXPECT_FALSE(summary->ok());
}

TEST_F(LocalSyncTest, CsvWithTheHeaderBeforeClockUntrustedStillVerifies) {
  AppendSales(3);
  UploaderOptions options = Options();
  options.cut.format = BatchFormat::kCsv;
  ASSERT_TRUE(MakeUploader(options, sink_.get())->RunOnce(OnceOptions{}).ok());
  std::vector<std::string> keys = Keys();
  ASSERT_EQ(keys.size(), 1u);
  // Rewrite the object as an earlier hub wrote it: no last column.
  std::string raw = *Gunzip(sink_->Get(keys[0])->body);
  std::string old;
  size_t start = 0;
  while (start < raw.size()) {
    size_t end = raw.find('\n', start);
    std::string row = raw.substr(start, end - start);
    old += row.substr(0, row.rfind(',')) + "\n";
    start = end + 1;
  }
  ASSERT_EQ(old.find("clock_untrusted"), std::string::npos);
  ReplaceObject(keys[0], old);
  Result<VerifySummary> summary = VerifyStore(*sink_, VerifyOptions{.prefix = "pos"});
  ASSERT_TRUE(summary.ok());
  EXPECT_TRUE(summary->ok()) << summary->ToJson();
  EXPECT_EQ(summary->sales, 3);
}

// Store events through the whole path: the real journal chains them, the uploader cuts
// and uploads them with the sales exactly once, verify re-derives every entry from the
// objects, and the independent reader recomputes the Z report from the objects alone and
// gets the hub's figures byte for byte.
TEST_F(LocalSyncTest, StoreEventsAreUploadedOnceVerifiedAndTheZRecomputed) {
  AppendEvent("open-1", "drawer_open", {{"amount", "100.00"}});
  AppendEvent("open-2", "drawer_open", {{"amount", "40.00"}}, "T02");
  AppendSales(12);
  {
    SaleSpec refund;
    refund.id = "r1";
    refund.type = "refund";
    refund.ref = "s3";
    refund.terminal = "T02";
    ASSERT_TRUE(journal_->Append(MakeSale(refund)).get().ok());
  }
  AppendEvent("out-1", "cash_out", {{"amount", "7.25"}, {"reason", "-window cleaner"}}, "T02");
  AppendEvent("close-1", "drawer_close", {{"counted", "130.00"}});
  const journal::Receipt z = AppendZ("z-1");
  EXPECT_EQ(z.receipt_no, "Z1");
  AppendSales(3);  // the next day's first sales
  UploaderOptions options = Options();
  options.cut.max_sales = 7;  // entries cut across objects: 1..7, 8..14, ...
  std::unique_ptr<Uploader> uploader = MakeUploader(options, sink_.get());
  ASSERT_TRUE(uploader->RunOnce(OnceOptions{}).ok());
  Result<VerifySummary> summary = VerifyStore(*sink_, VerifyOptions{.prefix = "pos"});
  ASSERT_TRUE(summary.ok());
  EXPECT_TRUE(summary->ok()) << summary->ToJson();
  EXPECT_EQ(summary->sales, 21);  // every entry once
  EXPECT_EQ(summary->events, 5);
  EXPECT_EQ(summary->last_seq, 21);
  EXPECT_EQ(summary->objects, 3);
  // The hub's Z report equals its entries' figures recomputed from the objects.
  EXPECT_EQ(summary->z_reports_checked, 1);
  EXPECT_EQ(summary->z_mismatches, 0);
  // Uploaded once: a second run adds no object.
  ASSERT_TRUE(uploader->RunOnce(OnceOptions{}).ok());
  EXPECT_EQ(Keys().size(), 3u);
  EXPECT_EQ(Uploaded(), 21);

  Result<std::optional<core::StoredSale>> stored = journal_->Get("z-1");
  ASSERT_TRUE(stored.ok() && stored->has_value() && (*stored)->is_event());
  const std::string& figures = (*stored)->event->figures;
  EXPECT_EQ(json::parse(figures)["cash_out"], "7.25");
  if (std::system("python3 -c 'import gzip, json, decimal' 2>/dev/null") != 0) {
    GTEST_SKIP() << "python3 is not installed: the independent reader cannot run";
  }
  const std::string command = "python3 " + std::string(MACHUB_SOURCE_DIR) +
                              "/tests/tools/recompute_report.py " + sink_->root() + " --z 1";
  FILE* pipe = popen(command.c_str(), "r");
  ASSERT_NE(pipe, nullptr);
  std::string out;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof(buf), pipe)) > 0) out.append(buf, n);
  const int status = pclose(pipe);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << out;
  EXPECT_EQ(out, figures + "\n");
}

// ---- SyncService: configuration to objects ----

TEST_F(SyncTest, ServiceFromConfigurationDisabledOrToAFolder) {
  AppendSales(12);
  SyncConfig config;
  auto disabled = SyncService::Create(config, "S001", journal_.get(), &metrics_, &clock_);
  ASSERT_TRUE(disabled.ok()) << disabled.status().ToString();
  EXPECT_FALSE((*disabled)->enabled());
  (*disabled)->Start();
  json cloud = json((*disabled)->CloudStatusJson());
  EXPECT_EQ(cloud["state"], "disabled");
  json backlog = json((*disabled)->BacklogJson());
  EXPECT_EQ(backlog["sales"], 12);
  EXPECT_EQ(backlog["bytes"], *journal_->CanonicalBytes(0, 12));
  EXPECT_EQ(backlog["oldest_sale_at"], "2026-11-27T10:15:01.000Z");
  EXPECT_EQ((*disabled)->RunOnce(OnceOptions{}).status().code(), ErrorCode::kInvalidArgument);

  config.dir = dir_ + "/outbox";
  config.prefix = "chain";
  config.format = "csv";
  config.batch_max_sales = 5;
  auto service = SyncService::Create(config, "S001", journal_.get(), &metrics_, &clock_);
  ASSERT_TRUE(service.ok()) << service.status().ToString();
  ASSERT_TRUE((*service)->enabled());
  Result<OnceProgress> done = (*service)->RunOnce(OnceOptions{});
  ASSERT_TRUE(done.ok()) << done.status().ToString();
  EXPECT_EQ(done->batches, 3);
  EXPECT_TRUE(fs::exists(dir_ + "/outbox/chain/sales/store=S001/date=2026-11-27/"
                                "S001-000000000011-000000000012.csv.gz"));
  EXPECT_EQ(json((*service)->BacklogJson())["sales"], 0);
  EXPECT_EQ(json((*service)->CloudStatusJson())["state"], "online");
  (*service)->Stop();

  std::unique_ptr<cloud::CredentialsProvider> creds;
  auto target = OpenTarget(config, &creds);
  ASSERT_TRUE(target.ok());
  Result<VerifySummary> verified = VerifyStore(**target, {.prefix = "chain"});
  ASSERT_TRUE(verified.ok());
  EXPECT_TRUE(verified->ok()) << verified->ToJson();
  EXPECT_EQ(verified->sales, 12);

  // Bad values name their key.
  SyncConfig bad;
  bad.format = "xml";
  EXPECT_EQ(ValidateSyncConfig(bad).message(), "sync.format: must be jsonl or csv");
  bad = SyncConfig{};
  bad.batch_max_bytes = 32 << 20;
  EXPECT_EQ(ValidateSyncConfig(bad).code(), ErrorCode::kInvalidArgument);
  bad = SyncConfig{};
  bad.access_key_id = "AKIA";
  EXPECT_NE(ValidateSyncConfig(bad).message().find("sync.access_key_id"), std::string::npos);
  EXPECT_EQ(OpenTarget(SyncConfig{}, &creds).status().code(), ErrorCode::kInvalidArgument);
  SyncConfig s3;
  s3.bucket = "my-bucket";
  s3.access_key_id = "AKIAEXAMPLE";
  s3.secret_access_key = "secret";
  s3.prefix = "pos";
  auto s3_service = SyncService::Create(s3, "S001", journal_.get(), nullptr, &clock_);
  ASSERT_TRUE(s3_service.ok()) << s3_service.status().ToString();
  EXPECT_EQ(json((*s3_service)->CloudStatusJson())["target"], "s3://my-bucket/pos");
}

// ---- The crash between PUT and mark, in a real child process ----

// Runs only as the child of FailpointSyncTest (MACHUB_SYNC_CHILD_DIR set): uploads with
// the failpoint armed, which must end the process with SIGKILL.
TEST(FailpointChild, UploadUntilTheFailpoint) {
  const char* dir = std::getenv("MACHUB_SYNC_CHILD_DIR");
  if (dir == nullptr) GTEST_SKIP() << "runs as a child of FailpointSyncTest only";
  journal::JournalOptions jo;
  jo.path = std::string(dir) + "/journal.db";
  jo.store_id = "S001";
  auto journal = journal::SqliteJournal::Open(jo);
  ASSERT_TRUE(journal.ok());
  auto sink = cloud::LocalSink::Open({.root = std::string(dir) + "/sink"});
  ASSERT_TRUE(sink.ok());
  UploaderOptions options;
  options.cut.prefix = "pos";
  options.cut.max_sales = 10;
  auto uploader = Uploader::Create(options, journal->get(), sink->get());
  ASSERT_TRUE(uploader.ok());
  (void)(*uploader)->RunOnce(OnceOptions{});
  ADD_FAILURE() << "the failpoint did not end the process";
}

TEST_F(LocalSyncTest, KilledBetweenPutAndMarkInAChildProcess) {
#ifndef MACHUB_FAILPOINTS
  GTEST_SKIP() << "built without MACHUB_FAILPOINTS";
#else
  AppendSales(25);
  journal_->Close();
  journal_.reset();
  // The child: this executable, one test, the failpoint armed.
  int wstatus = testing::RunSelfAsChild(
      "FailpointChild.UploadUntilTheFailpoint",
      {"MACHUB_SYNC_CHILD_DIR=" + dir_, "MACHUB_FAILPOINT=after_put_before_mark"});
  ASSERT_TRUE(WIFSIGNALED(wstatus)) << wstatus;
  ASSERT_EQ(WTERMSIG(wstatus), SIGKILL);

  // The child PUT batch 1..10 and died: the object exists, the batch is pending.
  journal_ = OpenJournal();
  ASSERT_NE(journal_, nullptr);
  ASSERT_EQ(Keys().size(), 1u);
  Result<std::vector<journal::BatchRecord>> pending = journal_->ListBatches(true);
  ASSERT_EQ(pending->size(), 1u);
  EXPECT_EQ((*pending)[0].state, journal::BatchState::kPending);
  EXPECT_EQ(Uploaded(), 0);

  // The restarted hub finishes: exactly one object per batch, everything marked.
  auto uploader = MakeUploader(Options(), sink_.get());
  Result<OnceProgress> done = uploader->RunOnce(OnceOptions{});
  ASSERT_TRUE(done.ok()) << done.status().ToString();
  EXPECT_EQ(Keys().size(), 3u);
  EXPECT_EQ(Uploaded(), 25);
  EXPECT_EQ(Counter("machub_batches_quarantined_total"), 0);
  EXPECT_TRUE(VerifyStore(*sink_, VerifyOptions{.prefix = "pos"})->ok());
#endif
}

}  // namespace
}  // namespace machub::sync
