// Sync tests (sync_test_support.h has the fixtures): The uploader: backoff and error texts, uploads
// to a local folder, faults of an in-memory store, pruning.
#include "sync/sync_test_support.h"

namespace machub::sync {
namespace {

// ---- Backoff and error texts ----

TEST(BackoffTest, ExponentialCeilingWithFullJitter) {
  EXPECT_EQ(BackoffCeilingMs(0, 1000, 60000), 0);
  EXPECT_EQ(BackoffCeilingMs(1, 1000, 60000), 1000);
  EXPECT_EQ(BackoffCeilingMs(2, 1000, 60000), 2000);
  EXPECT_EQ(BackoffCeilingMs(6, 1000, 60000), 32000);
  EXPECT_EQ(BackoffCeilingMs(7, 1000, 60000), 60000);
  EXPECT_EQ(BackoffCeilingMs(1000000, 1000, 60000), 60000);
  std::vector<uint64_t> values = {0, 1000, 1001, 12345678901ULL};
  size_t i = 0;
  RandomSource fixed = [&] { return values[i++ % values.size()]; };
  EXPECT_EQ(FullJitterDelayMs(1, 1000, 60000, fixed), 0);
  EXPECT_EQ(FullJitterDelayMs(1, 1000, 60000, fixed), 1000);  // the ceiling is reachable
  EXPECT_EQ(FullJitterDelayMs(1, 1000, 60000, fixed), 0);     // 1001 % 1001
  EXPECT_LE(FullJitterDelayMs(50, 1000, 60000, fixed), 60000);
  RandomSource real = DefaultRandomSource();
  for (int n = 0; n < 1000; ++n) {
    int64_t d = FullJitterDelayMs(3, 1000, 60000, real);
    ASSERT_GE(d, 0);
    ASSERT_LE(d, 4000);
  }
}

TEST(ShortErrorTest, NamesTheKindAndTheStoreCodeWithoutSecrets) {
  EXPECT_EQ(ShortError(cloud::MapS3Error("PUT", "pos/k", 403, "SignatureDoesNotMatch", "", 0, "")),
            "auth: SignatureDoesNotMatch (403)");
  EXPECT_EQ(ShortError(cloud::MapS3Error("PUT", "pos/k", 503, "SlowDown", "Reduce", 0, "")),
            "network: SlowDown (503)");
  EXPECT_EQ(ShortError(cloud::MapS3Error("HEAD", "", 403, "", "", 0, "")), "auth: HTTP 403");
  EXPECT_EQ(ShortError(cloud::MapS3Error("HEAD", "", 404, "NoSuchBucket", "", 0, "")),
            "not_found: NoSuchBucket (404)");
  EXPECT_EQ(ShortError(cloud::MapS3Error("PUT", "pos/k", 0, "", "", 7, "Failed to connect")),
            "network: Couldn't connect to server (Failed to connect)");
  EXPECT_EQ(ShortError(Status(ErrorCode::kUnavailable, "local sink folder is missing: /x")),
            "network: local sink folder is missing: /x");
  EXPECT_EQ(FailureReason(Status(ErrorCode::kInvalidArgument, "x")), "invalid");
  // The facts travel as details, not text: a message that merely looks like one is kept.
  const Status s3 = cloud::MapS3Error("PUT", "pos/k", 503, "SlowDown", "Reduce", 0, "");
  EXPECT_EQ(s3.detail("http_status"), "503");
  EXPECT_EQ(s3.detail("cloud_code"), "SlowDown");
  EXPECT_EQ(ShortError(Status(ErrorCode::kUnavailable, "S3 PUT k: HTTP 500 Oops")),
            "network: S3 PUT k: HTTP 500 Oops");
  // A long message is cut on a character boundary, never inside a UTF-8 sequence.
  std::string long_text(199, 'x');
  long_text += "\xC3\xA9\xC3\xA9";  // "éé": bytes 199..202
  const std::string cut = ShortError(Status(ErrorCode::kIoError, long_text));
  EXPECT_EQ(cut, "io: " + std::string(199, 'x') + "...");
  EXPECT_TRUE(nlohmann::json::accept("\"" + cut + "\""));
}

// (LocalSyncTest: sync_test_support.h)

TEST_F(LocalSyncTest, UploadsEverythingOnceMarksItAndVerifies) {
  AppendSales(45);
  UploaderOptions options = Options();
  options.cut.max_age_ms = 0;  // cut at once
  std::atomic<int> after_batch_calls{0};
  options.after_batch = [&] { after_batch_calls.fetch_add(1); };
  auto uploader = MakeUploader(options, sink_.get());
  uploader->Start();
  ASSERT_TRUE(WaitUntil([&] { return Uploaded() == 45; }));
  // More sales while it runs.
  AppendSales(7);
  uploader->Nudge();
  ASSERT_TRUE(WaitUntil([&] { return Uploaded() == 52; }));
  ASSERT_TRUE(WaitUntil([&] { return uploader->GetBacklog().sales == 0; }));
  uploader->Stop();
  // The hook ran once per batch done, on the upload thread (serve trims the heap there).
  EXPECT_EQ(after_batch_calls.load(), static_cast<int>(Keys().size()));

  // 10+10+10+10+5, then the 7 in as many batches as the 5 ms polls saw them arrive.
  std::vector<std::string> keys = Keys();
  ASSERT_GE(keys.size(), 6u);
  EXPECT_EQ(keys[0],
            "pos/sales/store=S001/date=2026-11-27/S001-000000000001-000000000010.jsonl.gz");
  EXPECT_EQ(keys[4],
            "pos/sales/store=S001/date=2026-11-27/S001-000000000041-000000000045.jsonl.gz");
  // Each object is the re-encoding of its rows, with the recorded hashes and metadata.
  Result<std::vector<journal::BatchRecord>> batches = journal_->ListBatches(false);
  ASSERT_TRUE(batches.ok());
  ASSERT_EQ(batches->size(), keys.size());
  for (const journal::BatchRecord& b : *batches) {
    EXPECT_EQ(b.state, journal::BatchState::kUploaded);
    auto got = sink_->Get(b.key);
    ASSERT_TRUE(got.ok());
    EXPECT_EQ(Md5Hex(got->body), b.md5_hex);
    EXPECT_EQ(Sha256Hex(got->body), b.sha256_hex);
    auto head = sink_->Head(b.key);
    EXPECT_EQ(head->metadata.at("sha256"), b.sha256_hex);
    EXPECT_EQ(head->metadata.at("first-seq"), std::to_string(b.first_seq));
    std::vector<core::StoredSale> rows =
        *journal_->List(b.first_seq - 1, static_cast<int>(b.sales()));
    EXPECT_EQ(*Gunzip(got->body), EncodeBatch("S001", rows, BatchFormat::kJsonl));
  }
  VerifyOptions verify;
  verify.prefix = "pos";
  Result<VerifySummary> summary = VerifyStore(*sink_, verify);
  ASSERT_TRUE(summary.ok()) << summary.status().ToString();
  EXPECT_TRUE(summary->ok()) << summary->ToJson();
  EXPECT_EQ(summary->objects, static_cast<int64_t>(keys.size()));
  EXPECT_EQ(summary->sales, 52);
  EXPECT_EQ(summary->first_seq, 1);
  EXPECT_EQ(summary->last_seq, 52);

  EXPECT_EQ(Counter("machub_upload_successes_total"), static_cast<int64_t>(keys.size()));
  EXPECT_EQ(Counter("machub_upload_attempts_total"), static_cast<int64_t>(keys.size()));
  EXPECT_GT(Counter("machub_upload_bytes_total"), 0);
  json status = json(uploader->CloudStatusJson());
  EXPECT_EQ(status["state"], "online");
  EXPECT_EQ(status["quarantined"], 0);
  EXPECT_EQ(status["conditional_put"], "on");  // LocalSink honors If-None-Match
  EXPECT_EQ(status["target"], "file://" + fs::canonical(dir_ + "/sink").string() + "/pos");
  EXPECT_FALSE(status["last_success_at"].is_null());
  json backlog = json(uploader->BacklogJson());
  EXPECT_EQ(backlog, json::parse(R"({"sales":0,"bytes":0,"oldest_sale_at":null})"));
  // The auto probe left its object beside the sales.
  EXPECT_EQ(Keys("pos/_machub/").size(), 1u);
}

// Issue 11 part 6: the status's backlog is exact when read. A sale acknowledged just
// before the read counts, with the upload thread running (which refreshed its figures at
// most once a second before) and with sync disabled (every 2 s before).
TEST_F(LocalSyncTest, BacklogIsExactWhenReadRightAfterASale) {
  UploaderOptions options = Options();
  options.cut.max_age_ms = 3600 * 1000;  // a lone sale waits: it stays in the backlog
  auto uploader = MakeUploader(options, sink_.get());
  uploader->Start();
  ASSERT_TRUE(WaitUntil([&] { return uploader->GetStatus().state == CloudState::kOnline; }));
  std::this_thread::sleep_for(std::chrono::milliseconds(50));  // the thread's first refresh
  for (int i = 1; i <= 3; ++i) {
    AppendSales(1);
    json backlog = json(uploader->BacklogJson());
    EXPECT_EQ(backlog["sales"], i);
    EXPECT_EQ(backlog["bytes"], *journal_->CanonicalBytes(0, i));
  }
  uploader->Stop();

  auto disabled = SyncService::Create(SyncConfig{}, "S001", journal_.get(), &metrics_, &clock_);
  ASSERT_TRUE(disabled.ok());
  EXPECT_EQ(json((*disabled)->BacklogJson())["sales"], 3);
  AppendSales(1);
  EXPECT_EQ(json((*disabled)->BacklogJson())["sales"], 4);
}

TEST_F(LocalSyncTest, CrashBetweenPutAndMarkIsResolvedByTheRecordedMd5) {
  AppendSales(25);
  // A first run cut and recorded batch 1..10 and PUT it, then died before the mark.
  BatchCutter cutter(journal_.get(), CutOptions{.prefix = "pos", .max_sales = 10}, &clock_);
  auto first = cutter.Next(*journal_->GetSyncBounds(), true);
  ASSERT_TRUE(first.ok() && first->has_value());
  ASSERT_TRUE(journal_->RecordBatch((*first)->record).ok());
  cloud::PutRequest put;
  put.key = (*first)->record.key;
  put.body = (*first)->bytes;
  put.metadata = (*first)->metadata;
  ASSERT_EQ(*sink_->Put(put), cloud::PutOutcome::kCreated);

  // The restarted uploader re-encodes from the rows, meets the object (412), sees the
  // recorded MD5, marks, and goes on. RunOnce uploads all that is stored.
  auto uploader = MakeUploader(Options(), sink_.get());
  std::vector<OnceProgress> seen;
  OnceOptions once;
  once.progress = [&](const OnceProgress& p) { seen.push_back(p); };
  Result<OnceProgress> done = uploader->RunOnce(once);
  ASSERT_TRUE(done.ok()) << done.status().ToString();
  EXPECT_EQ(done->batches, 3);
  EXPECT_EQ(done->sales, 25);
  EXPECT_EQ(done->total_sales, 25);
  ASSERT_EQ(seen.size(), 3u);
  EXPECT_EQ(seen[0].sales, 10);
  EXPECT_EQ(seen[2].sales, 25);
  EXPECT_EQ(Keys().size(), 3u);
  EXPECT_EQ(Uploaded(), 25);
  EXPECT_EQ(Counter("machub_batches_quarantined_total"), 0);
  // Nothing left: a second run does nothing.
  Result<OnceProgress> again = uploader->RunOnce(OnceOptions{});
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->batches, 0);
  EXPECT_TRUE(VerifyStore(*sink_, VerifyOptions{.prefix = "pos"})->ok());
}

TEST_F(LocalSyncTest, OtherContentAtTheKeyIsQuarantinedNeverOverwritten) {
  AppendSales(30);
  const std::string key = BatchKey("pos", "S001", 11, 20, clock_.NowMs(), BatchFormat::kJsonl);
  cloud::PutRequest put;
  put.key = key;
  put.body = "someone else's bytes";
  ASSERT_EQ(*sink_->Put(put), cloud::PutOutcome::kCreated);

  auto uploader = MakeUploader(Options(), sink_.get());
  Result<OnceProgress> done = uploader->RunOnce(OnceOptions{});
  ASSERT_TRUE(done.ok()) << done.status().ToString();
  EXPECT_EQ(done->quarantined, 1);
  EXPECT_EQ(done->batches, 3);
  EXPECT_EQ(sink_->Get(key)->body, "someone else's bytes");
  EXPECT_EQ(Uploaded(), 20);  // 1..10 and 21..30
  Result<std::vector<journal::BatchRecord>> unfinished = journal_->ListBatches(true);
  ASSERT_EQ(unfinished->size(), 1u);
  EXPECT_EQ((*unfinished)[0].state, journal::BatchState::kQuarantined);
  EXPECT_EQ((*unfinished)[0].first_seq, 11);
  EXPECT_NE((*unfinished)[0].last_error.find("etag differs"), std::string::npos);
  EXPECT_EQ(Counter("machub_batches_quarantined_total"), 1);
  json status = json(uploader->CloudStatusJson());
  EXPECT_EQ(status["quarantined"], 1);
  EXPECT_TRUE(status.contains("alert"));
  json backlog = json(uploader->BacklogJson());
  EXPECT_EQ(backlog["sales"], 10);  // the quarantined sales have not reached the cloud
  EXPECT_EQ(backlog["bytes"], *journal_->CanonicalBytes(10, 20));
  EXPECT_EQ(backlog["oldest_sale_at"], core::FormatRfc3339(clock_.NowMs()));
  // Never pruned.
  journal::PruneRequest all;
  all.ignore_age = true;
  EXPECT_EQ(journal_->Prune(all)->anchor_seq, 10);
  // Verify sees the foreign object (hash mismatch) and the gap it leaves.
  Result<VerifySummary> summary = VerifyStore(*sink_, VerifyOptions{.prefix = "pos"});
  ASSERT_TRUE(summary.ok());
  EXPECT_FALSE(summary->ok());

  // The operator removes the foreign object and requeues: the batch goes up, all is well.
  fs::remove(sink_->root() + "/" + key);
  SyncConfig config;
  config.dir = sink_->root();
  config.prefix = "pos";
  config.batch_max_sales = 10;
  auto service = SyncService::Create(config, "S001", journal_.get(), nullptr, &clock_);
  ASSERT_TRUE(service.ok());
  Result<int64_t> requeued = (*service)->RequeueQuarantined();
  ASSERT_TRUE(requeued.ok());
  EXPECT_EQ(*requeued, 1);
  done = (*service)->RunOnce(OnceOptions{});
  ASSERT_TRUE(done.ok()) << done.status().ToString();
  EXPECT_EQ(done->batches, 1);
  EXPECT_EQ(Uploaded(), 20);  // every sale left (1..10 were pruned above)
  EXPECT_TRUE(journal_->ListBatches(true)->empty());
  summary = VerifyStore(*sink_, VerifyOptions{.prefix = "pos"});
  ASSERT_TRUE(summary.ok());
  EXPECT_TRUE(summary->ok()) << summary->ToJson();
}

TEST_F(LocalSyncTest, ReencodingThatDiffersDefersToTheRecordedHashes) {
  AppendSales(20);
  // Batch 1..10 recorded by "another zlib": other hashes; its object (those other bytes)
  // is in the store. Batch 11..20 likewise, but its PUT never happened.
  BatchCutter cutter(journal_.get(), CutOptions{.prefix = "pos", .max_sales = 10}, &clock_);
  const std::string other_bytes = "bytes from another zlib";
  for (int i = 0; i < 2; ++i) {
    auto next = cutter.Next(*journal_->GetSyncBounds(), true);
    ASSERT_TRUE(next.ok() && next->has_value());
    journal::BatchRecord record = (*next)->record;
    record.sha256_hex = Sha256Hex(other_bytes);
    record.md5_hex = Md5Hex(other_bytes);
    ASSERT_TRUE(journal_->RecordBatch(record).ok());
    if (i == 0) {
      cloud::PutRequest put;
      put.key = record.key;
      put.body = other_bytes;
      ASSERT_EQ(*sink_->Put(put), cloud::PutOutcome::kCreated);
    }
  }
  auto uploader = MakeUploader(Options(), sink_.get());
  Result<OnceProgress> done = uploader->RunOnce(OnceOptions{});
  ASSERT_TRUE(done.ok()) << done.status().ToString();
  EXPECT_EQ(done->quarantined, 0);
  EXPECT_EQ(Uploaded(), 20);
  Result<std::vector<journal::BatchRecord>> batches = journal_->ListBatches(false);
  ASSERT_EQ(batches->size(), 2u);
  // The first object is the recorded one (kept); the second was uploaded fresh and its
  // record now holds the fresh hashes.
  EXPECT_EQ(sink_->Get((*batches)[0].key)->body, other_bytes);
  auto second = sink_->Get((*batches)[1].key);
  ASSERT_TRUE(second.ok());
  EXPECT_EQ((*batches)[1].sha256_hex, Sha256Hex(second->body));
  EXPECT_EQ((*batches)[1].md5_hex, Md5Hex(second->body));
}

// ---- Faults: the in-memory store ----

TEST_F(SyncTest, RetryableErrorsGoOfflineAndResumeWhenTheProbeSucceeds) {
  AppendSales(20);
  FakeStore store;
  // As the real client reports a refused connection (curl error 7).
  const Status refused = cloud::MapS3Error("PUT", "k", 0, "", "", 7, "Failed to connect");
  store.SetPutFailure(refused, -1);
  store.SetProbe(refused);
  UploaderOptions options = Options();
  options.conditional_put = ConditionalPut::kOn;
  options.backoff_base_ms = 60'000;  // only a successful probe can bring the upload back
  options.backoff_cap_ms = 60'000;
  options.random = [] { return uint64_t{59'999}; };
  options.cut.max_age_ms = 0;
  auto uploader = MakeUploader(options, &store);
  uploader->Start();
  ASSERT_TRUE(WaitUntil([&] { return uploader->GetStatus().state == CloudState::kOffline; }));
  ASSERT_TRUE(WaitUntil([&] {
    std::lock_guard<std::mutex> lock(store.mu_);
    return store.probes >= 3;
  }));
  json status = json(uploader->CloudStatusJson());
  EXPECT_EQ(status["state"], "offline");
  EXPECT_EQ(status["last_error"], "network: Couldn't connect to server (Failed to connect)");
  EXPECT_FALSE(status["next_attempt_at"].is_null());
  EXPECT_EQ(store.Puts(), 1);  // probes, not PUTs, while offline
  EXPECT_EQ(json(uploader->BacklogJson())["sales"], 20);
  EXPECT_EQ(Counter("machub_upload_failures_total", {{"reason", "network"}}), 1);
  EXPECT_EQ((*journal_->ListBatches(true))[0].attempts, 1);

  const auto back = std::chrono::steady_clock::now();
  store.SetPutFailure(Status::Ok(), 0);
  store.SetProbe(Status::Ok());
  ASSERT_TRUE(WaitUntil([&] { return Uploaded() == 20; }));
  const auto resumed_ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - back)
          .count();
  EXPECT_LT(resumed_ms, 2000);  // probe interval 20 ms, not the 60 s backoff
  EXPECT_EQ(store.SalesObjects(), 2u);
  ASSERT_TRUE(WaitUntil([&] { return uploader->GetStatus().state == CloudState::kOnline; }));
  uploader->Stop();
}

TEST_F(SyncTest, AProbeRefusedByPolicyStillMeansReachable) {
  // A device policy without s3:ListBucket: HeadBucket answers 403, PUTs work.
  FakeStore store;
  store.SetProbe(cloud::MapS3Error("HEAD", "", 403, "", "", 0, ""));
  UploaderOptions options = Options();
  options.cut.max_age_ms = 0;
  auto uploader = MakeUploader(options, &store);
  uploader->Start();
  ASSERT_TRUE(WaitUntil([&] {
    std::lock_guard<std::mutex> lock(store.mu_);
    return store.probes >= 2;
  }));
  EXPECT_EQ(uploader->GetStatus().state, CloudState::kOnline);
  AppendSales(5);
  ASSERT_TRUE(WaitUntil([&] { return Uploaded() == 5; }));
  EXPECT_EQ(uploader->GetStatus().state, CloudState::kOnline);
  // While offline, such an answer ends the wait for the backoff at once.
  store.SetPutFailure(cloud::MapS3Error("PUT", "k", 503, "SlowDown", "", 0, ""), 1);
  uploader->Stop();
  options.backoff_base_ms = 60'000;
  options.backoff_cap_ms = 60'000;
  options.random = [] { return uint64_t{59'999}; };
  auto second = MakeUploader(options, &store);
  AppendSales(5);
  second->Start();
  ASSERT_TRUE(WaitUntil([&] { return Uploaded() == 10; }, 5000));
  second->Stop();
}

TEST_F(SyncTest, AuthErrorsDegradeAndRetrySlowly) {
  AppendSales(5);
  FakeStore store;
  store.SetPutFailure(cloud::MapS3Error("PUT", "pos/k", 403, "SignatureDoesNotMatch", "", 0, ""),
                      -1);
  UploaderOptions options = Options();
  options.conditional_put = ConditionalPut::kOn;
  options.cut.max_age_ms = 0;
  options.degraded_retry_ms = 60'000;
  auto uploader = MakeUploader(options, &store);
  uploader->Start();
  ASSERT_TRUE(WaitUntil([&] { return uploader->GetStatus().state == CloudState::kDegraded; }));
  // No tight loop: a handful of attempts at most over a while.
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  EXPECT_EQ(store.Puts(), 1);
  json status = json(uploader->CloudStatusJson());
  EXPECT_EQ(status["state"], "degraded");
  EXPECT_EQ(status["last_error"], "auth: SignatureDoesNotMatch (403)");
  EXPECT_EQ(Counter("machub_upload_failures_total", {{"reason", "auth"}}), 1);
  const int64_t next = *core::ParseRfc3339(status["next_attempt_at"].get<std::string>());
  EXPECT_GE(next, clock_.NowMs() + 59'000);
  uploader->Stop();
  // RunOnce returns a non-retryable error at once.
  auto once = MakeUploader(options, &store);
  Result<OnceProgress> done = once->RunOnce(OnceOptions{});
  ASSERT_FALSE(done.ok());
  EXPECT_EQ(done.status().code(), ErrorCode::kUnauthorized);
  EXPECT_EQ(done.status().message(), "auth: SignatureDoesNotMatch (403)");
}

TEST_F(SyncTest, AStoreThatIgnoresIfNoneMatchGetsHeadBeforePut) {
  AppendSales(20);
  FakeStore store;
  store.honor_if_none_match = false;  // overwrites silently, like some S3-compatibles
  // Batch 11..20 is already there with the same bytes (an earlier attempt), and...
  BatchCutter cutter(journal_.get(), CutOptions{.prefix = "pos", .max_sales = 10}, &clock_);
  journal::SyncBounds bounds = *journal_->GetSyncBounds();
  bounds.batched_seq = 10;
  auto second = cutter.Next(bounds, true);
  ASSERT_TRUE(second.ok() && second->has_value());
  store.objects[(*second)->record.key] = {(*second)->bytes, (*second)->metadata};
  auto uploader = MakeUploader(Options(), &store);  // conditional_put auto
  Result<OnceProgress> done = uploader->RunOnce(OnceOptions{});
  ASSERT_TRUE(done.ok()) << done.status().ToString();
  EXPECT_EQ(json(uploader->CloudStatusJson())["conditional_put"], "off");
  EXPECT_EQ(done->batches, 2);
  EXPECT_EQ(Uploaded(), 20);
  // 2 probe PUTs + 1 PUT for batch 1..10; batch 11..20 found by HEAD, not re-sent.
  EXPECT_EQ(store.Puts(), 3);
  // ... and other content is quarantined, not overwritten.
  AppendSales(10);
  const std::string key = BatchKey("pos", "S001", 21, 30, clock_.NowMs(), BatchFormat::kJsonl);
  store.objects[key] = {"foreign", {}};
  done = uploader->RunOnce(OnceOptions{});
  ASSERT_TRUE(done.ok());
  EXPECT_EQ(done->quarantined, 1);
  EXPECT_EQ(store.objects[key].body, "foreign");
  EXPECT_EQ(store.Puts(), 3);
}

TEST_F(SyncTest, RunOnceRetriesTransientErrorsAndGivesUp) {
  AppendSales(10);
  FakeStore store;
  store.SetPutFailure(cloud::MapS3Error("PUT", "k", 503, "SlowDown", "", 0, ""), 3);
  UploaderOptions options = Options();
  options.conditional_put = ConditionalPut::kOn;
  auto uploader = MakeUploader(options, &store);
  Result<OnceProgress> done = uploader->RunOnce(OnceOptions{});
  ASSERT_TRUE(done.ok()) << done.status().ToString();
  EXPECT_EQ(done->batches, 1);
  EXPECT_EQ(store.Puts(), 4);
  EXPECT_EQ(Counter("machub_upload_failures_total", {{"reason", "network"}}), 3);
  EXPECT_EQ(Counter("machub_upload_attempts_total"), 4);

  AppendSales(10);
  store.SetPutFailure(cloud::MapS3Error("PUT", "k", 503, "SlowDown", "", 0, ""), -1);
  OnceOptions once;
  once.give_up_after_ms = 100;
  done = uploader->RunOnce(once);
  ASSERT_FALSE(done.ok());
  EXPECT_EQ(done.status().code(), ErrorCode::kUnavailable);
  EXPECT_EQ(done.status().message(), "network: SlowDown (503)");
}

// ---- Pruning ----

TEST_F(LocalSyncTest, PrunesUploadedSalesByAgeAndOnLowDisk) {
  AppendSales(30);
  UploaderOptions options = Options();
  options.cut.max_age_ms = 0;
  options.prune_interval_ms = 1;
  options.retention_ms = 10 * 60'000;
  options.min_free_disk_bytes = 0;
  options.min_free_disk_percent = 0;
  options.prune_chunk_sales = 7;
  auto uploader = MakeUploader(options, sink_.get());
  uploader->Start();
  ASSERT_TRUE(WaitUntil([&] { return Uploaded() == 30; }));
  EXPECT_EQ(AllSales().size(), 30u);  // young: kept
  AppendSales(5);                     // not uploaded yet when the clock jumps
  clock_.Advance(11 * 60'000);
  ASSERT_TRUE(WaitUntil([&] { return AllSales().size() <= 6u; }));
  uploader->Stop();
  // Everything old and uploaded went, except the newest sale; the chain still verifies.
  std::vector<core::StoredSale> left = AllSales();
  EXPECT_EQ(left.back().seq, 35);
  Result<int64_t> verified = journal_->VerifyChain();
  ASSERT_TRUE(verified.ok()) << verified.status().ToString();
  EXPECT_EQ(*verified, static_cast<int64_t>(left.size()));
  EXPECT_GE(Counter("machub_sales_pruned_total"), 29);

  // Low disk: every uploaded sale goes, whatever its age (here: "100 % must be free").
  AppendSales(10);
  options.retention_ms = 0;
  options.min_free_disk_percent = 100;
  auto low = MakeUploader(options, sink_.get());
  low->Start();
  ASSERT_TRUE(WaitUntil([&] {
    std::vector<core::StoredSale> now = AllSales();
    return !now.empty() && now.front().seq == 45;
  }));
  low->Stop();
  EXPECT_TRUE(journal_->VerifyChain().ok());
}

}  // namespace
}  // namespace machub::sync
