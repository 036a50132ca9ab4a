#pragma once
// What every catalog test file shares (test support, never in the hub): catalog documents,
// a TempDir, a store that records the fetchers' GETs, and the fetchers' fixture base.
#include <gtest/gtest.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <functional>
#include <mutex>
#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>
#include <vector>

#include "catalog/catalog.h"
#include "catalog/catalog_store.h"
#include "catalog/poll_loop.h"
#include "catalog/store_config.h"
#include "cloud/local_sink.h"
#include "cloud/s3_client.h"
#include "core/clock.h"
#include "core/file.h"
#include "core/metrics.h"
#include "core/sha256.h"
#include "manual_clock.h"
#include "temp_dir.h"
#include "test_peers.h"

namespace machub::catalog {

namespace fs = std::filesystem;
using nlohmann::json;

inline constexpr int64_t kT0 = 1'795'000'000'000;  // 2026-11-18T11:06:40Z

struct TempDir : machub::testing::TempDir {
  TempDir() : machub::testing::TempDir("catalog_test") {}
};

inline json Product(std::string sku, std::string name = "Coffee", std::string price = "3.50",
                    std::string tax_rate = "0.0825") {
  return json{{"sku", std::move(sku)},
              {"name", std::move(name)},
              {"price", std::move(price)},
              {"tax_rate", std::move(tax_rate)}};
}

inline json ValidDoc() {
  return json{{"version", "v1"},
              {"currency", "USD"},
              {"products", json::array({Product("0002", "Tea", "2.00", "0"),
                                        Product("0001", "Coffee", "3.50", "0.0825")})}};
}

inline std::string CatalogBody(std::string version, std::vector<json> products,
                               std::string currency = "USD") {
  return json{{"version", std::move(version)},
              {"currency", std::move(currency)},
              {"products", std::move(products)}}
      .dump();
}

// Forwards to another store and records each Get (the If-None-Match sent and whether the
// answer was "not modified"); can be told to fail or to ignore If-None-Match.
class RecordingStore final : public cloud::ObjectStore {
 public:
  explicit RecordingStore(cloud::ObjectStore* inner) : inner_(inner) {}

  struct Call {
    std::string if_none_match;
    bool not_modified = false;
    bool ok = false;
  };

  Result<cloud::PutOutcome> Put(const cloud::PutRequest& r) override { return inner_->Put(r); }
  Result<cloud::ObjectInfo> Head(const std::string& key) override { return inner_->Head(key); }
  Result<cloud::GetResult> Get(const std::string& key, const std::string& inm = "") override {
    Status fail;
    bool ignore = false;
    {
      std::lock_guard lock(mu_);
      fail = fail_;
      ignore = ignore_if_none_match_;
    }
    Result<cloud::GetResult> got =
        fail.ok() ? inner_->Get(key, ignore ? std::string() : inm) : Result<cloud::GetResult>(fail);
    std::lock_guard lock(mu_);
    calls_.push_back({inm, got.ok() && got->not_modified, got.ok()});
    return got;
  }
  Result<cloud::ListResult> List(const std::string& p, const std::string& t = "") override {
    return inner_->List(p, t);
  }
  Status Probe() override { return inner_->Probe(); }
  std::string Describe() const override { return inner_->Describe(); }

  void SetFailure(Status s) {
    std::lock_guard lock(mu_);
    fail_ = std::move(s);
  }
  void SetIgnoreIfNoneMatch(bool ignore) {
    std::lock_guard lock(mu_);
    ignore_if_none_match_ = ignore;
  }
  std::vector<Call> calls() const {
    std::lock_guard lock(mu_);
    return calls_;
  }

 private:
  cloud::ObjectStore* inner_;
  mutable std::mutex mu_;
  Status fail_;
  bool ignore_if_none_match_ = false;
  std::vector<Call> calls_;
};

// A local folder as the object store, seen through a RecordingStore, with a manual clock:
// what the fetchers' tests (catalog.json, store.json) share.
class FetcherTestBase : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_FALSE(dir_.path().empty());
    auto sink = cloud::LocalSink::Open({.root = dir_.path() + "/bucket", .fsync = false});
    ASSERT_TRUE(sink.ok()) << sink.status().ToString();
    sink_ = std::move(*sink);
    store_ = std::make_unique<RecordingStore>(sink_.get());
  }
  // Writes (or overwrites, as the back office does) the object at `key`.
  void PutObject(const std::string& key, const std::string& body) {
    cloud::PutRequest r;
    r.key = key;
    r.body = body;
    r.if_none_match = false;
    auto put = sink_->Put(r);
    ASSERT_TRUE(put.ok()) << put.status().ToString();
  }

  TempDir dir_;
  machub::testing::ManualClock clock_{kT0};
  core::MetricsRegistry metrics_;
  std::unique_ptr<cloud::LocalSink> sink_;
  std::unique_ptr<RecordingStore> store_;
};

// A store.json document (terminal tokens of a terminal and a manager, offline limits, a
// member a newer back office might add).
inline const std::string kHashA(64, 'a');
inline const std::string kHashB = std::string(63, '0') + "f";

inline json StoreDoc(std::string version = "s1") {
  return json{{"version", std::move(version)},
              {"terminal_tokens",
               {{{"terminal_id", "T02"}, {"sha256", kHashA}},
                {{"terminal_id", "M1"},
                 {"sha256", kHashB},
                 {"role", "manager"},
                 {"expires_at", "2027-01-31T00:00:00Z"}}}},
              {"offline",
               {{"enabled", true}, {"card_max_amount", "150.00"}, {"store_max_outstanding", ""}}},
              {"future_member", {1, 2, 3}}};
}

}  // namespace machub::catalog
