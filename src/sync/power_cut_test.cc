// Power cuts under load (issue #11, part 4). A SIGKILL keeps what reached the page cache;
// a power cut keeps only what was fsync'd. PowerCutVfs (tests/support) sits under every
// SQLite connection of this process and, at a random moment while terminals append and
// the uploader ships batches to a local folder (standing in for S3, which a power cut in
// the shop does not touch), cuts the power: nothing more reaches the disk, and every
// journal file is rolled back to its last fsync. Then the journal reopens, as the hub
// does at boot, and must hold every entry it acknowledged, with the same seq and hash,
// open clean, verify its chain, answer a retried id with the original receipt, and let
// the uploader resume so that the folder ends with every entry exactly once.
//
// MACHUB_POWER_CUTS sets the number of cuts (default 150, about 20 s); the long run in
// docs/TESTING.md uses thousands. MACHUB_POWER_CUT_SEED replays one run.

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <iterator>
#include <map>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "cloud/local_sink.h"
#include "core/log.h"
#include "core/sale_codec.h"
#include "journal/sqlite_journal.h"
#include "power_cut_vfs.h"
#include "sync/uploader.h"
#include "sync/verify.h"

namespace machub::sync {
namespace {

using machub::testing::PowerCutVfs;

int64_t EnvInt(const char* name, int64_t fallback) {
  const char* v = std::getenv(name);
  return v != nullptr && *v != '\0' ? std::atoll(v) : fallback;
}

core::Sale MakeSale(const std::string& id, const std::string& terminal) {
  const std::string body = "{\"id\":\"" + id + "\",\"terminal_id\":\"" + terminal +
                           "\",\"type\":\"sale\",\"created_at\":\"2026-12-06T10:15:00Z\","
                           "\"currency\":\"USD\",\"lines\":[{\"sku\":\"0001\",\"name\":\"Tea\","
                           "\"qty\":\"1\",\"unit_price\":\"2.50\",\"tax_rate\":\"0.0825\"}],"
                           "\"payments\":[{\"method\":\"cash\",\"amount\":\"5.00\"}]}";
  Result<core::Sale> sale = core::DecodeSale(body);
  EXPECT_TRUE(sale.ok()) << sale.status().ToString();
  return sale.ok() ? std::move(sale).value() : core::Sale{};
}

struct Acked {
  int64_t seq = 0;
  std::string hash;
  std::string terminal;
};

TEST(PowerCutTest, AcknowledgedEntriesOutliveEveryCutAndUploadExactlyOnce) {
  PowerCutVfs& vfs = PowerCutVfs::Install();
  core::SetLogLevel(core::LogLevel::kError);  // the journal's failed commits after each cut
  const int64_t cuts = EnvInt("MACHUB_POWER_CUTS", 150);
  const uint64_t seed = static_cast<uint64_t>(
      EnvInt("MACHUB_POWER_CUT_SEED", std::chrono::steady_clock::now().time_since_epoch().count()));
  SCOPED_TRACE("MACHUB_POWER_CUT_SEED=" + std::to_string(seed));
  std::mt19937_64 rng(seed);

  char tmpl[] = "/tmp/power_cut_test.XXXXXX";
  ASSERT_NE(mkdtemp(tmpl), nullptr);
  const std::string dir = tmpl;
  journal::JournalOptions jo;
  jo.path = dir + "/journal.db";
  jo.store_id = "S001";
  jo.checkpoint_interval_ms = 5;  // checkpoints (and WAL truncation) are cut too
  jo.id_keys_flush_rows = 8;      // and the bulk writes to sale_ids
  auto sink = cloud::LocalSink::Open({.root = dir + "/s3", .fsync = false});
  ASSERT_TRUE(sink.ok());
  UploaderOptions uo;
  uo.cut.prefix = "pos";
  uo.cut.max_sales = 16;

  std::map<std::string, Acked> acked;   // every id ever answered OK
  std::vector<std::string> acked_last;  // acknowledged during the previous run
  int64_t undone = 0, refused = 0, serial = 0;

  for (int64_t cut = 0; cut <= cuts; ++cut) {
    Result<std::unique_ptr<journal::SqliteJournal>> opened = journal::SqliteJournal::Open(jo);
    ASSERT_TRUE(opened.ok()) << "cut " << cut << ": " << opened.status().ToString();
    journal::SqliteJournal& journal = **opened;

    // What was acknowledged before the cut is there, unchanged.
    for (const std::string& id : acked_last) {
      Result<std::optional<core::StoredSale>> got = journal.Get(id);
      ASSERT_TRUE(got.ok()) << got.status().ToString();
      ASSERT_TRUE(got->has_value()) << "cut " << cut << ": acknowledged " << id << " is lost";
      EXPECT_EQ((*got)->seq, acked[id].seq) << id;
      EXPECT_EQ((*got)->hash, acked[id].hash) << id;
    }
    // A terminal retrying an acknowledged id gets the original receipt, not a new sale:
    // one from the last run (in memory or in sale_ids after the reopen) and one from
    // any run before (found through sale_ids).
    if (!acked_last.empty()) {
      std::vector<std::string> retried = {acked_last[rng() % acked_last.size()]};
      auto any = acked.begin();
      std::advance(any, static_cast<std::ptrdiff_t>(rng() % acked.size()));
      retried.push_back(any->first);
      for (const std::string& id : retried) {
        Result<journal::Receipt> retry = journal.Append(MakeSale(id, acked[id].terminal)).get();
        ASSERT_TRUE(retry.ok()) << retry.status().ToString();
        EXPECT_FALSE(retry->created) << id;
        EXPECT_EQ(retry->seq, acked[id].seq) << id;
      }
    }
    Result<int64_t> chain = journal.VerifyChain();
    ASSERT_TRUE(chain.ok()) << "cut " << cut << ": " << chain.status().ToString();
    ASSERT_TRUE(journal.IntegrityCheck().ok()) << "cut " << cut;
    if (cut == cuts) break;

    // Load: three terminals appending, the uploader shipping batches, until the cut.
    Result<std::unique_ptr<Uploader>> uploader = Uploader::Create(uo, &journal, sink->get());
    ASSERT_TRUE(uploader.ok()) << uploader.status().ToString();
    std::atomic<bool> stop{false};
    std::mutex mu;
    std::vector<std::string> acked_now;
    std::vector<std::thread> threads;
    for (int t = 0; t < 3; ++t) {
      const std::string terminal = "T0" + std::to_string(t + 1);
      const int64_t base = serial;
      serial += 1'000'000;
      threads.emplace_back([&, terminal, base] {
        for (int64_t i = 0; !stop.load(); ++i) {
          const std::string id = "p" + std::to_string(base + i);
          Result<journal::Receipt> r = journal.Append(MakeSale(id, terminal)).get();
          if (!r.ok()) continue;  // after the cut: 503 to the terminal, it retries later
          std::lock_guard<std::mutex> lock(mu);
          acked[id] = Acked{r->seq, r->hash, terminal};
          acked_now.push_back(id);
        }
      });
    }
    threads.emplace_back([&] {
      OnceOptions once;
      once.give_up_after_ms = 0;
      while (!stop.load()) {
        (void)(*uploader)->RunOnce(once);
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
      }
    });
    std::this_thread::sleep_for(std::chrono::microseconds(1000 + rng() % 30'000));
    vfs.CutPower();
    stop.store(true);
    for (std::thread& t : threads) t.join();
    uploader->reset();
    journal.Close();
    opened->reset();
    vfs.RestoreToLastSync();
    undone += vfs.counters().undone_records;
    refused += vfs.counters().refused;
    acked_last = std::move(acked_now);
  }
  ASSERT_GT(acked.size(), 100u) << "too little load to prove anything";
  // The cuts must have landed on unsynced writes, or nothing was tested.
  EXPECT_GT(undone, 0);
  EXPECT_GT(refused, 0);

  // Power stays on: everything ever acknowledged is there, and the uploader finishes.
  auto journal = journal::SqliteJournal::Open(jo);
  ASSERT_TRUE(journal.ok());
  for (const auto& [id, a] : acked) {
    Result<std::optional<core::StoredSale>> got = (*journal)->Get(id);
    ASSERT_TRUE(got.ok() && got->has_value()) << id << " is lost";
    EXPECT_EQ((*got)->seq, a.seq) << id;
  }
  // And a retry of each is a replay: the writer's lookup (sale_ids and the rows after it)
  // finds every one, so nothing is stored twice.
  const int64_t entries_before_retries = *(*journal)->VerifyChain();
  for (const auto& [id, a] : acked) {
    Result<journal::Receipt> retry = (*journal)->Append(MakeSale(id, a.terminal)).get();
    ASSERT_TRUE(retry.ok()) << retry.status().ToString();
    ASSERT_FALSE(retry->created) << id << " was stored twice";
    EXPECT_EQ(retry->seq, a.seq) << id;
  }
  EXPECT_EQ(*(*journal)->VerifyChain(), entries_before_retries);
  auto uploader = Uploader::Create(uo, journal->get(), sink->get());
  ASSERT_TRUE(uploader.ok());
  Result<OnceProgress> done = (*uploader)->RunOnce(OnceOptions{});
  ASSERT_TRUE(done.ok()) << done.status().ToString();
  const int64_t last_seq = *(*journal)->VerifyChain();
  Result<VerifySummary> verified = VerifyStore(**sink, VerifyOptions{.prefix = "pos"});
  ASSERT_TRUE(verified.ok()) << verified.status().ToString();
  EXPECT_TRUE(verified->ok()) << verified->ToJson();
  EXPECT_EQ(verified->duplicates, 0);
  EXPECT_EQ(verified->first_seq, 1);
  EXPECT_EQ(verified->last_seq, last_seq);
  EXPECT_EQ(verified->sales, last_seq) << "every entry exactly once in the folder";
  std::printf(
      "power cuts: %lld, acknowledged sales: %zu, journal entries: %lld, unsynced "
      "writes undone: %lld, operations refused while off: %lld, objects: %lld\n",
      static_cast<long long>(cuts), acked.size(), static_cast<long long>(last_seq),
      static_cast<long long>(undone), static_cast<long long>(refused),
      static_cast<long long>(verified->objects));
  uploader->reset();
  (*journal)->Close();
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace machub::sync
