#pragma once
// What every sync test file shares (test support, never in the hub): sales built from a
// spec, an in-memory ObjectStore with faults (FakeStore), the SyncTest fixture (a journal
// in a fresh folder, a manual clock) and LocalSyncTest (the same with a local-folder sink).

// The same protocol against a real S3 (Ceph RGW) is in sync_rgw_test.cc.

#include <gtest/gtest.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <future>
#include <map>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "cloud/local_sink.h"
#include "cloud/s3_client.h"
#include "core/chain.h"
#include "core/clock.h"
#include "core/metrics.h"
#include "core/sale_codec.h"
#include "core/sha256.h"
#include "core/time_format.h"
#include "journal/sqlite_journal.h"
#include "manual_clock.h"
#include "str.h"
#include "sync/backlog.h"
#include "sync/backoff.h"
#include "sync/batch_cutter.h"
#include "sync/batch_format.h"
#include "sync/day_totals.h"
#include "sync/service.h"
#include "sync/uploader.h"
#include "sync/verify.h"
#include "temp_dir.h"
#include "test_peers.h"
#include "wait_until.h"

extern char** environ;

namespace machub::sync {

namespace fs = std::filesystem;
using nlohmann::json;

inline constexpr char kDay1[] = "2026-11-27T10:15:00Z";

using machub::testing::Str;

struct SaleSpec {
  std::string id;
  std::string terminal = "T01";
  std::string name = "Coffee beans";
  std::string type = "sale";
  std::string ref;
  int lines = 1;
  bool card = false;
};

inline std::string SaleJson(const SaleSpec& spec) {
  json sale;
  sale["id"] = spec.id;
  sale["terminal_id"] = spec.terminal;
  sale["type"] = spec.type;
  if (!spec.ref.empty()) sale["ref"] = spec.ref;
  sale["created_at"] = kDay1;
  sale["currency"] = "USD";
  sale["lines"] = json::array();
  for (int i = 0; i < spec.lines; ++i) {
    sale["lines"].push_back({{"sku", Str("sku-", i)},
                             {"name", spec.name},
                             {"qty", "2"},
                             {"unit_price", "3.50"},
                             {"tax_rate", "0.0825"}});
  }
  sale["payments"] = json::array();
  if (spec.type == "sale") {
    sale["payments"].push_back(
        {{"method", "cash"}, {"amount", std::to_string(10 * spec.lines) + ".00"}});
    if (spec.card) {
      sale["payments"].push_back(
          {{"method", "card"}, {"amount", "1.00"}, {"card_token", "tok_123"}, {"last4", "4242"}});
    }
  }
  return sale.dump();
}

inline core::Sale MakeSale(const SaleSpec& spec) {
  Result<core::Sale> sale = core::DecodeSale(SaleJson(spec));
  EXPECT_TRUE(sale.ok()) << sale.status().ToString() << " for " << SaleJson(spec);
  return sale.ok() ? std::move(sale).value() : core::Sale{};
}

inline core::Sale MakeSale(const std::string& id) {
  SaleSpec spec;
  spec.id = id;
  return MakeSale(spec);
}

// Polls `done` every 5 ms until it holds or `timeout_ms` passed (the condition is owned
// by another thread, so there is nothing to wait on directly).
using machub::testing::WaitUntil;

// ---- An in-memory ObjectStore with faults ----

class FakeStore final : public cloud::ObjectStore {
 public:
  struct Object {
    std::string body;
    std::map<std::string, std::string> metadata;
  };

  Result<cloud::PutOutcome> Put(const cloud::PutRequest& request) override {
    std::lock_guard<std::mutex> lock(mu_);
    ++puts;
    if (!put_failure.ok() && put_failures_left != 0) {
      if (put_failures_left > 0) --put_failures_left;
      return put_failure;
    }
    if (request.if_none_match && honor_if_none_match && objects.count(request.key)) {
      return cloud::PutOutcome::kAlreadyExists;
    }
    objects[request.key] = Object{request.body, request.metadata};
    ++writes;
    return cloud::PutOutcome::kCreated;
  }
  Result<cloud::ObjectInfo> Head(const std::string& key) override {
    std::lock_guard<std::mutex> lock(mu_);
    ++heads;
    auto it = objects.find(key);
    if (it == objects.end()) return Status(ErrorCode::kNotFound, "S3 HEAD " + key + ": HTTP 404");
    cloud::ObjectInfo info;
    info.etag = Md5Hex(it->second.body);
    info.size = static_cast<int64_t>(it->second.body.size());
    info.metadata = it->second.metadata;
    return info;
  }
  Result<cloud::GetResult> Get(const std::string& key, const std::string&) override {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = objects.find(key);
    if (it == objects.end()) return Status(ErrorCode::kNotFound, "S3 GET " + key + ": HTTP 404");
    cloud::GetResult result;
    result.etag = Md5Hex(it->second.body);
    result.body = it->second.body;
    return result;
  }
  Result<cloud::ListResult> List(const std::string& prefix, const std::string&) override {
    std::lock_guard<std::mutex> lock(mu_);
    cloud::ListResult result;
    for (const auto& [key, object] : objects) {
      if (key.starts_with(prefix)) {
        cloud::ObjectInfo info;
        info.etag = Md5Hex(object.body);
        info.size = static_cast<int64_t>(object.body.size());
        result.objects.emplace_back(key, info);
      }
    }
    return result;
  }
  Status Probe() override {
    std::lock_guard<std::mutex> lock(mu_);
    ++probes;
    return probe_status;
  }
  std::string Describe() const override { return "fake://store"; }

  void SetPutFailure(Status status, int count) {
    std::lock_guard<std::mutex> lock(mu_);
    put_failure = std::move(status);
    put_failures_left = count;
  }
  void SetProbe(Status status) {
    std::lock_guard<std::mutex> lock(mu_);
    probe_status = std::move(status);
  }
  int Puts() {
    std::lock_guard<std::mutex> lock(mu_);
    return puts;
  }
  size_t SalesObjects() {
    std::lock_guard<std::mutex> lock(mu_);
    size_t n = 0;
    for (const auto& [key, object] : objects) n += key.find("/sales/") != std::string::npos;
    return n;
  }

  std::mutex mu_;
  std::map<std::string, Object> objects;
  bool honor_if_none_match = true;
  Status put_failure;
  int put_failures_left = 0;  // -1: forever
  Status probe_status;
  int puts = 0, writes = 0, heads = 0, probes = 0;
};

// ---- Fixture: a journal in a temporary folder ----

class SyncTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(tmp_.ok());
    dir_ = tmp_.path();
    journal_ = OpenJournal();
    ASSERT_NE(journal_, nullptr);
  }
  void TearDown() override {
    if (journal_) journal_->Close();
  }

  std::unique_ptr<journal::SqliteJournal> OpenJournal() {
    journal::JournalOptions options;
    options.path = dir_ + "/journal.db";
    options.store_id = "S001";
    options.checkpoint_interval_ms = 0;
    options.clock = &clock_;
    auto journal = journal::SqliteJournal::Open(options);
    EXPECT_TRUE(journal.ok()) << journal.status().ToString();
    return journal.ok() ? std::move(journal).value() : nullptr;
  }

  void AppendSales(int n, const std::string& prefix = "s") {
    for (int i = 0; i < n; ++i) {
      Result<journal::Receipt> r = journal_->Append(MakeSale(Str(prefix, next_id_++))).get();
      ASSERT_TRUE(r.ok()) << r.status().ToString();
    }
  }

  // A store event on T01 (drawer_open, cash_in, cash_out, drawer_close) through the
  // journal; `members` adds the type's own (amount, reason, counted).
  journal::Receipt AppendEvent(const std::string& id, const std::string& type, json members,
                               const std::string& terminal = "T01") {
    json request = {{"id", id},
                    {"terminal_id", terminal},
                    {"type", type},
                    {"created_at", kDay1},
                    {"currency", "USD"}};
    request.update(members);
    Result<core::StoreEvent> event = core::DecodeEventRequest(request.dump());
    EXPECT_TRUE(event.ok()) << event.status().ToString() << " for " << request.dump();
    if (!event.ok()) return {};
    Result<journal::Receipt> r = journal_->AppendEvent(std::move(*event)).get();
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return r.ok() ? *r : journal::Receipt{};
  }
  journal::Receipt AppendZ(const std::string& id) {
    Result<core::StoreEvent> z =
        core::DecodeZRequest(json({{"id", id}, {"created_at", kDay1}, {"cashier", "Mia"}}).dump());
    EXPECT_TRUE(z.ok()) << z.status().ToString();
    if (!z.ok()) return {};
    Result<journal::Receipt> r = journal_->AppendEvent(std::move(*z)).get();
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return r.ok() ? *r : journal::Receipt{};
  }

  std::vector<core::StoredSale> AllSales() {
    Result<std::vector<core::StoredSale>> all = journal_->List(0, 1000000);
    EXPECT_TRUE(all.ok());
    return all.ok() ? *all : std::vector<core::StoredSale>{};
  }

  UploaderOptions Options() {
    UploaderOptions o;
    o.cut.store_id = "S001";
    o.cut.prefix = "pos";
    o.cut.max_sales = 10;
    o.poll_interval_ms = 5;
    o.probe_interval_ms = 20;
    o.idle_probe_interval_ms = 50;
    o.backoff_base_ms = 5;
    o.backoff_cap_ms = 50;
    o.prune_interval_ms = 0;
    o.clock = &clock_;
    o.random = [] { return uint64_t{0}; };  // no jitter: immediate retries
    o.metrics = &metrics_;
    return o;
  }

  std::unique_ptr<Uploader> MakeUploader(const UploaderOptions& options,
                                         cloud::ObjectStore* store) {
    auto uploader = Uploader::Create(options, journal_.get(), store);
    EXPECT_TRUE(uploader.ok()) << uploader.status().ToString();
    return uploader.ok() ? std::move(uploader).value() : nullptr;
  }

  int64_t Uploaded() {
    int64_t n = 0;
    for (const auto& s : AllSales()) n += s.uploaded;
    return n;
  }

  int64_t Counter(const std::string& name, const core::Labels& labels = {}) {
    return metrics_.GetCounter(name, "", labels).Value();
  }

  machub::testing::TempDir tmp_{"sync_test"};  // removed after everything below
  std::string dir_;
  machub::testing::ManualClock clock_{*core::ParseRfc3339(kDay1) + 1000};
  core::MetricsRegistry metrics_;
  std::unique_ptr<journal::SqliteJournal> journal_;
  int next_id_ = 1;
};

// ---- The uploader against a local folder ----

class LocalSyncTest : public SyncTest {
 protected:
  void SetUp() override {
    SyncTest::SetUp();
    auto sink = cloud::LocalSink::Open({.root = dir_ + "/sink", .fsync = false});
    ASSERT_TRUE(sink.ok());
    sink_ = std::move(*sink);
  }
  std::vector<std::string> Keys(const std::string& prefix = "pos/sales/") {
    std::vector<std::string> keys;
    auto listed = sink_->List(prefix);
    EXPECT_TRUE(listed.ok());
    for (auto& [key, info] : listed->objects) keys.push_back(key);
    return keys;
  }
  // Replaces the object at `key` with `raw` gzipped, with consistent sha256 metadata and
  // ETag (as a forger, or an earlier hub, would leave it): only verify's own checks can
  // tell.
  void ReplaceObject(const std::string& key, const std::string& raw) {
    const std::string body = *GzipDeterministic(raw);
    auto head = sink_->Head(key);
    ASSERT_TRUE(head.ok());
    fs::remove(sink_->root() + "/" + key);
    cloud::PutRequest put;
    put.key = key;
    put.body = body;
    put.metadata = head->metadata;
    put.metadata["sha256"] = Sha256Hex(body);
    ASSERT_TRUE(sink_->Put(put).ok());
  }
  std::unique_ptr<cloud::LocalSink> sink_;
};

}  // namespace machub::sync
