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
#include "temp_dir.h"

namespace machub::journal {
namespace {

constexpr char kCreatedAt[] = "2026-11-27T10:15:00Z";

// prefix + n. (Not `"literal" + std::to_string(n)`: GCC 12 -O2 warns falsely on that,
// -Wrestrict, GCC bug 105329.)
std::string Str(std::string_view prefix, int64_t n) {
  std::string s(prefix);
  s += std::to_string(n);
  return s;
}

struct SaleSpec {
  std::string id;
  std::string terminal = "T01";
  std::string unit_price = "3.50";
  std::string type = "sale";
  std::string ref;
  std::string created_at = kCreatedAt;
  int lines = 1;
};

std::string SaleJson(const SaleSpec& spec) {
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

core::Sale MakeSale(const SaleSpec& spec) {
  Result<core::Sale> sale = core::DecodeSale(SaleJson(spec));
  if (!sale.ok()) {
    ADD_FAILURE() << "DecodeSale failed for " << SaleJson(spec) << ": " << sale.status().ToString();
    return core::Sale{};
  }
  return std::move(sale).value();
}

core::Sale MakeSale(const std::string& id, const std::string& terminal = "T01") {
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

Receipt MustAppend(SaleJournal& journal, core::Sale sale) {
  Result<Receipt> receipt = journal.Append(std::move(sale)).get();
  EXPECT_TRUE(receipt.ok()) << receipt.status().ToString();
  return receipt.ok() ? *receipt : Receipt{};
}

// ---- (1) append and read back ----

TEST_F(JournalTest, AppendReadBackAndVerify) {
  auto journal = MustOpen(Options());
  ASSERT_NE(journal, nullptr);
  EXPECT_TRUE(journal->Health().ok());

  std::vector<Receipt> receipts;
  std::vector<core::Sale> sales;
  for (int i = 0; i < 10; ++i) {
    sales.push_back(MakeSale(Str("s", i), i % 2 == 0 ? "T01" : "T02"));
    receipts.push_back(MustAppend(*journal, sales.back()));
  }
  for (int i = 0; i < 10; ++i) {
    EXPECT_TRUE(receipts[i].created);
    EXPECT_EQ(receipts[i].id, Str("s", i));
    EXPECT_EQ(receipts[i].seq, i + 1);
    char expected[32];
    std::snprintf(expected, sizeof(expected), "%s-%06d", i % 2 == 0 ? "T01" : "T02", i / 2 + 1);
    EXPECT_EQ(receipts[i].receipt_no, expected);
    EXPECT_EQ(receipts[i].hash.size(), 32u);
    EXPECT_EQ(receipts[i].total, sales[i].total);
    EXPECT_EQ(receipts[i].change, sales[i].change);
    EXPECT_EQ(receipts[i].currency, "USD");
  }
  EXPECT_EQ(receipts[0].total, 758);  // 2 x 3.50 + round_half_up(7.00 x 0.0825)

  for (int i = 0; i < 10; ++i) {
    Result<std::optional<core::StoredSale>> got = journal->Get(Str("s", i));
    ASSERT_TRUE(got.ok()) << got.status().ToString();
    ASSERT_TRUE(got->has_value());
    const core::StoredSale& stored = **got;
    EXPECT_EQ(stored.seq, receipts[i].seq);
    EXPECT_EQ(stored.receipt_no, receipts[i].receipt_no);
    EXPECT_EQ(stored.hash, receipts[i].hash);
    EXPECT_EQ(stored.received_at_ms, receipts[i].received_at_ms);
    EXPECT_EQ(stored.canonical, core::CanonicalSale(sales[i]));
    EXPECT_EQ(stored.sale.id, sales[i].id);
    EXPECT_EQ(stored.sale.terminal_id, sales[i].terminal_id);
    EXPECT_EQ(stored.sale.total, sales[i].total);
    EXPECT_FALSE(stored.uploaded);
    EXPECT_FALSE(stored.clock_skew);
  }
  Result<std::optional<core::StoredSale>> missing = journal->Get("nope");
  ASSERT_TRUE(missing.ok());
  EXPECT_FALSE(missing->has_value());

  Result<std::vector<core::StoredSale>> all = journal->List(0, 100);
  ASSERT_TRUE(all.ok()) << all.status().ToString();
  ASSERT_EQ(all->size(), 10u);
  EXPECT_EQ((*all)[0].prev_hash, core::GenesisHash("S001"));
  for (size_t i = 0; i < all->size(); ++i) {
    EXPECT_EQ((*all)[i].seq, static_cast<int64_t>(i + 1));
    if (i > 0) {
      EXPECT_EQ((*all)[i].prev_hash, (*all)[i - 1].hash);
    }
  }
  Result<std::vector<core::StoredSale>> page = journal->List(5, 3);
  ASSERT_TRUE(page.ok());
  ASSERT_EQ(page->size(), 3u);
  EXPECT_EQ((*page)[0].seq, 6);
  EXPECT_EQ((*page)[2].seq, 8);
  Result<std::vector<core::StoredSale>> none = journal->List(10, 5);
  ASSERT_TRUE(none.ok());
  EXPECT_TRUE(none->empty());
  Result<std::vector<core::StoredSale>> zero = journal->List(0, 0);
  ASSERT_TRUE(zero.ok());
  EXPECT_TRUE(zero->empty());

  Result<int64_t> verified = journal->VerifyChain();
  ASSERT_TRUE(verified.ok()) << verified.status().ToString();
  EXPECT_EQ(*verified, 10);
  EXPECT_TRUE(journal->IntegrityCheck().ok());
  Result<JournalStats> stats = journal->Stats();
  ASSERT_TRUE(stats.ok());
  EXPECT_EQ(stats->last_seq, 10);
  EXPECT_EQ(stats->sales, 10);
  EXPECT_GT(stats->size_bytes, 0);
  EXPECT_GT(stats->free_disk_bytes, 0);
  EXPECT_EQ(stats->commits, 10);

  // A replay answers the original receipt, even after a reopen.
  journal->Close();
  journal = MustOpen(Options());
  ASSERT_NE(journal, nullptr);
  Receipt replay = MustAppend(*journal, sales[3]);
  EXPECT_FALSE(replay.created);
  EXPECT_EQ(replay.seq, receipts[3].seq);
  EXPECT_EQ(replay.receipt_no, receipts[3].receipt_no);
  EXPECT_EQ(replay.hash, receipts[3].hash);
  EXPECT_EQ(replay.received_at_ms, receipts[3].received_at_ms);
  EXPECT_EQ(replay.total, receipts[3].total);
  EXPECT_EQ(replay.change, receipts[3].change);
  // Sequence and per-terminal counters continue after the reopen.
  Receipt next = MustAppend(*journal, MakeSale("s10", "T02"));
  EXPECT_EQ(next.seq, 11);
  EXPECT_EQ(next.receipt_no, "T02-000006");
  Result<int64_t> verified2 = journal->VerifyChain();
  ASSERT_TRUE(verified2.ok());
  EXPECT_EQ(*verified2, 11);
}

TEST_F(JournalTest, ReceiptNumberGrowsPastSixDigits) {
  {
    auto journal = MustOpen(Options());
    ASSERT_NE(journal, nullptr);
    EXPECT_EQ(MustAppend(*journal, MakeSale("a", "T09")).receipt_no, "T09-000001");
    ASSERT_TRUE(journal->ExecOnWriterForTest("UPDATE terminals SET last_receipt=999998").ok());
  }
  auto journal = MustOpen(Options());
  ASSERT_NE(journal, nullptr);
  EXPECT_EQ(MustAppend(*journal, MakeSale("b", "T09")).receipt_no, "T09-999999");
  EXPECT_EQ(MustAppend(*journal, MakeSale("c", "T09")).receipt_no, "T09-1000000");
}

// ---- (2) group commit ----

TEST_F(JournalTest, GroupCommitGroupsConcurrentAppends) {
  core::MetricsRegistry metrics;
  JournalOptions options = Options();
  options.metrics = &metrics;
  auto journal = MustOpen(options);
  ASSERT_NE(journal, nullptr);

  constexpr int kThreads = 64;
  constexpr int kPerThread = 50;
  constexpr int kSales = kThreads * kPerThread;
  // Decode up front so the threads spend their time in the journal.
  std::vector<std::vector<core::Sale>> sales(kThreads);
  for (int t = 0; t < kThreads; ++t) {
    for (int i = 0; i < kPerThread; ++i) {
      sales[t].push_back(MakeSale(Str("g-", t) + Str("-", i), Str("T", t % 8)));
    }
  }
  std::latch start(kThreads);
  std::mutex mu;
  std::vector<Receipt> receipts;
  std::vector<std::thread> threads;
  std::atomic<int> failures{0};
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      start.arrive_and_wait();
      for (int i = 0; i < kPerThread; ++i) {
        // Like a terminal: one request at a time, the next after the answer.
        Result<Receipt> r = journal->Append(sales[t][i]).get();
        if (!r.ok() || !r->created) {
          failures.fetch_add(1);
          continue;
        }
        std::lock_guard<std::mutex> lock(mu);
        receipts.push_back(*r);
      }
    });
  }
  for (auto& thread : threads) thread.join();
  EXPECT_EQ(failures.load(), 0);
  ASSERT_EQ(receipts.size(), static_cast<size_t>(kSales));

  Result<JournalStats> stats = journal->Stats();
  ASSERT_TRUE(stats.ok());
  EXPECT_EQ(stats->sales, kSales);
  EXPECT_EQ(stats->last_seq, kSales);
  std::printf("[ group commit ] %d sales from %d threads in %lld commits (%.1f sales/commit)\n",
              kSales, kThreads, static_cast<long long>(stats->commits),
              static_cast<double>(kSales) / static_cast<double>(stats->commits));
  EXPECT_LT(stats->commits, kSales / 4);
  EXPECT_GT(stats->commits, 0);

  // Metrics agree with the journal's own count.
  std::string text = metrics.RenderText();
  EXPECT_NE(text.find(Str("machub_sales_committed_total ", kSales)), std::string::npos) << text;
  EXPECT_NE(text.find(Str("machub_journal_commits_total ", stats->commits)), std::string::npos);
  EXPECT_NE(text.find(Str("machub_commit_group_size_count ", stats->commits)), std::string::npos);
  EXPECT_NE(text.find(Str("machub_fsync_seconds_count ", stats->commits)), std::string::npos);
  EXPECT_NE(text.find("machub_commit_max_microseconds"), std::string::npos);

  // Every sale exactly once; seq gapless; receipts gapless per terminal.
  std::set<int64_t> seqs;
  std::map<std::string, std::set<std::string>> by_terminal;
  for (const Receipt& r : receipts) {
    seqs.insert(r.seq);
    by_terminal[r.receipt_no.substr(0, r.receipt_no.find('-'))].insert(r.receipt_no);
  }
  EXPECT_EQ(seqs.size(), static_cast<size_t>(kSales));
  EXPECT_EQ(*seqs.begin(), 1);
  EXPECT_EQ(*seqs.rbegin(), kSales);
  ASSERT_EQ(by_terminal.size(), 8u);
  for (const auto& [terminal, numbers] : by_terminal) {
    ASSERT_EQ(numbers.size(), static_cast<size_t>(kSales / 8)) << terminal;
    char last[32];
    std::snprintf(last, sizeof(last), "%s-%06d", terminal.c_str(), kSales / 8);
    EXPECT_EQ(*numbers.rbegin(), last);
  }
  for (int t = 0; t < kThreads; t += 7) {
    Result<std::optional<core::StoredSale>> got = journal->Get(sales[t][kPerThread - 1].id);
    ASSERT_TRUE(got.ok());
    EXPECT_TRUE(got->has_value());
  }
  Result<int64_t> verified = journal->VerifyChain();
  ASSERT_TRUE(verified.ok()) << verified.status().ToString();
  EXPECT_EQ(*verified, kSales);
}

TEST_F(JournalTest, ALoneAppendCommitsOnTheCallingThreadAndOthersQueueBehindIt) {
  auto journal = MustOpen(Options());
  ASSERT_NE(journal, nullptr);
  const std::thread::id caller = std::this_thread::get_id();
  // Nothing written, nothing queued: the caller commits its own sale, and its callback has
  // run (on the caller's thread) when Append returns.
  std::thread::id first_thread;
  Result<Receipt> first = Status(ErrorCode::kInternal, "callback did not run");
  std::promise<Result<Receipt>> second_promise;
  std::future<Result<Receipt>> second = second_promise.get_future();
  std::atomic<bool> second_ran_inline{false};
  std::atomic<bool> first_returned{false};
  std::thread::id second_thread;
  journal->Append(MakeSale("inline-1"), [&](Result<Receipt> r) {
    first_thread = std::this_thread::get_id();
    first = std::move(r);
    // Appended while the inline commit still holds the writer: queued for the writer
    // thread, which must take it after this callback returns (no recursion, no deadlock).
    journal->Append(MakeSale("queued-2"), [&](Result<Receipt> r2) {
      second_thread = std::this_thread::get_id();
      second_ran_inline.store(!first_returned.load());
      second_promise.set_value(std::move(r2));
    });
    first_returned.store(true);
  });
  ASSERT_TRUE(first.ok()) << first.status().ToString();
  EXPECT_EQ(first_thread, caller);
  EXPECT_EQ(first->seq, 1);
  ASSERT_EQ(second.wait_for(std::chrono::seconds(10)), std::future_status::ready);
  Result<Receipt> queued = second.get();
  ASSERT_TRUE(queued.ok()) << queued.status().ToString();
  EXPECT_EQ(queued->seq, 2);
  EXPECT_FALSE(second_ran_inline.load());
  EXPECT_NE(second_thread, caller);  // the writer thread's
  Result<int64_t> verified = journal->VerifyChain();
  ASSERT_TRUE(verified.ok()) << verified.status().ToString();
  EXPECT_EQ(*verified, 2);

  // With inline_commit off every commit is the writer thread's.
  journal.reset();
  JournalOptions options = Options();
  options.inline_commit = false;
  journal = MustOpen(options);
  ASSERT_NE(journal, nullptr);
  std::promise<std::thread::id> where;
  journal->Append(MakeSale("threaded-3"), [&](Result<Receipt> r) {
    EXPECT_TRUE(r.ok());
    where.set_value(std::this_thread::get_id());
  });
  EXPECT_NE(where.get_future().get(), caller);
}

TEST_F(JournalTest, WithoutGroupCommitEachSaleIsItsOwnTransaction) {
  JournalOptions options = Options();
  options.group_commit = false;
  auto journal = MustOpen(options);
  ASSERT_NE(journal, nullptr);
  journal->PauseWriterForTest();
  std::vector<std::future<Result<Receipt>>> futures;
  for (int i = 0; i < 20; ++i) futures.push_back(journal->Append(MakeSale(Str("n", i))));
  journal->ResumeWriterForTest();
  for (auto& f : futures) EXPECT_TRUE(f.get().ok());
  Result<JournalStats> stats = journal->Stats();
  ASSERT_TRUE(stats.ok());
  EXPECT_EQ(stats->commits, 20);
  EXPECT_EQ(stats->sales, 20);
}

TEST_F(JournalTest, MaxGroupBoundsTheGroup) {
  JournalOptions options = Options();
  options.max_group = 8;
  auto journal = MustOpen(options);
  ASSERT_NE(journal, nullptr);
  journal->PauseWriterForTest();
  std::vector<std::future<Result<Receipt>>> futures;
  for (int i = 0; i < 20; ++i) futures.push_back(journal->Append(MakeSale(Str("m", i))));
  EXPECT_EQ(journal->QueuedForTest(), 20u);
  journal->ResumeWriterForTest();
  for (auto& f : futures) EXPECT_TRUE(f.get().ok());
  Result<JournalStats> stats = journal->Stats();
  ASSERT_TRUE(stats.ok());
  EXPECT_EQ(stats->commits, 3);  // 8 + 8 + 4
}

// ---- (3) idempotency ----

TEST_F(JournalTest, DuplicatesInOneGroupAreOneInsert) {
  auto journal = MustOpen(Options());
  ASSERT_NE(journal, nullptr);
  SaleSpec a{.id = "dup"};
  SaleSpec b{.id = "dup", .unit_price = "4.00"};
  journal->PauseWriterForTest();
  auto first = journal->Append(MakeSale(a));
  auto again = journal->Append(MakeSale(a));
  auto other = journal->Append(MakeSale(b));
  journal->ResumeWriterForTest();
  Result<Receipt> r1 = first.get();
  Result<Receipt> r2 = again.get();
  Result<Receipt> r3 = other.get();
  ASSERT_TRUE(r1.ok());
  ASSERT_TRUE(r2.ok());
  EXPECT_TRUE(r1->created);
  EXPECT_FALSE(r2->created);
  EXPECT_EQ(r2->seq, r1->seq);
  EXPECT_EQ(r2->hash, r1->hash);
  EXPECT_EQ(r2->receipt_no, r1->receipt_no);
  ASSERT_FALSE(r3.ok());
  EXPECT_EQ(r3.status().code(), ErrorCode::kIdConflict);
  Result<JournalStats> stats = journal->Stats();
  ASSERT_TRUE(stats.ok());
  EXPECT_EQ(stats->sales, 1);
  EXPECT_EQ(stats->commits, 1);
}

TEST_F(JournalTest, RacingRetriesOfOneSaleStoreItOnce) {
  auto journal = MustOpen(Options());
  ASSERT_NE(journal, nullptr);
  constexpr int kThreads = 32;
  constexpr int kRounds = 10;
  for (int round = 0; round < kRounds; ++round) {
    const std::string id = Str("race-", round);
    core::Sale sale = MakeSale(id, Str("T0", round % 3));
    std::latch start(kThreads);
    std::vector<Result<Receipt>> answers(kThreads, Status(ErrorCode::kInternal, "unset"));
    std::vector<std::thread> threads;
    for (int t = 0; t < kThreads; ++t) {
      threads.emplace_back([&, t] {
        start.arrive_and_wait();
        answers[t] = journal->Append(sale).get();
      });
    }
    for (auto& thread : threads) thread.join();
    int created = 0;
    for (const Result<Receipt>& a : answers) {
      ASSERT_TRUE(a.ok()) << a.status().ToString();
      created += a->created ? 1 : 0;
      EXPECT_EQ(a->seq, answers[0]->seq);
      EXPECT_EQ(a->hash, answers[0]->hash);
      EXPECT_EQ(a->receipt_no, answers[0]->receipt_no);
      EXPECT_EQ(a->received_at_ms, answers[0]->received_at_ms);
    }
    EXPECT_EQ(created, 1) << id;
  }
  Result<JournalStats> stats = journal->Stats();
  ASSERT_TRUE(stats.ok());
  EXPECT_EQ(stats->sales, kRounds);
  EXPECT_EQ(stats->last_seq, kRounds);
}

TEST_F(JournalTest, RacingConflictingBodiesStoreOne) {
  auto journal = MustOpen(Options());
  ASSERT_NE(journal, nullptr);
  constexpr int kThreads = 32;
  constexpr int kRounds = 10;
  for (int round = 0; round < kRounds; ++round) {
    const std::string id = Str("conflict-", round);
    const core::Sale bodies[2] = {MakeSale(SaleSpec{.id = id, .unit_price = "3.50"}),
                                  MakeSale(SaleSpec{.id = id, .unit_price = "4.25"})};
    ASSERT_NE(core::CanonicalSale(bodies[0]), core::CanonicalSale(bodies[1]));
    std::latch start(kThreads);
    std::vector<Result<Receipt>> answers(kThreads, Status(ErrorCode::kInternal, "unset"));
    std::vector<std::thread> threads;
    for (int t = 0; t < kThreads; ++t) {
      threads.emplace_back([&, t] {
        start.arrive_and_wait();
        answers[t] = journal->Append(bodies[t % 2]).get();
      });
    }
    for (auto& thread : threads) thread.join();

    Result<std::optional<core::StoredSale>> stored = journal->Get(id);
    ASSERT_TRUE(stored.ok());
    ASSERT_TRUE(stored->has_value());
    const int winner = (*stored)->canonical == core::CanonicalSale(bodies[0]) ? 0 : 1;
    ASSERT_EQ((*stored)->canonical, core::CanonicalSale(bodies[winner]));
    int created = 0;
    for (int t = 0; t < kThreads; ++t) {
      if (t % 2 == winner) {
        ASSERT_TRUE(answers[t].ok()) << answers[t].status().ToString();
        created += answers[t]->created ? 1 : 0;
        EXPECT_EQ(answers[t]->seq, (*stored)->seq);
        EXPECT_EQ(answers[t]->hash, (*stored)->hash);
      } else {
        ASSERT_FALSE(answers[t].ok());
        EXPECT_EQ(answers[t].status().code(), ErrorCode::kIdConflict);
      }
    }
    EXPECT_EQ(created, 1);
  }
  Result<JournalStats> stats = journal->Stats();
  ASSERT_TRUE(stats.ok());
  EXPECT_EQ(stats->sales, kRounds);  // never two rows for one id
  Result<int64_t> verified = journal->VerifyChain();
  ASSERT_TRUE(verified.ok());
  EXPECT_EQ(*verified, kRounds);
}

// ---- (4) unclean stop ----

// The child appends forever from several threads and writes each id to the pipe from its
// callback (after COMMIT). The parent SIGKILLs it mid-stream, then checks that every
// acknowledged id is in the reopened journal.
[[noreturn]] void RunCrashChild(const JournalOptions& options, int fd) {
  Result<std::unique_ptr<SqliteJournal>> opened = SqliteJournal::Open(options);
  if (!opened.ok()) _exit(3);
  SqliteJournal& journal = **opened;
  auto worker = [&](int t) {
    for (int batch = 0;; ++batch) {
      std::vector<std::future<void>> done;
      for (int i = 0; i < 16; ++i) {
        std::string id = Str("k-", t) + Str("-", batch * 16 + i);
        Result<core::Sale> sale =
            core::DecodeSale(SaleJson(SaleSpec{.id = id, .terminal = Str("T0", t)}));
        if (!sale.ok()) _exit(4);
        auto promise = std::make_shared<std::promise<void>>();
        done.push_back(promise->get_future());
        journal.Append(std::move(sale).value(), [fd, id, promise](Result<Receipt> r) {
          if (r.ok()) {
            std::string line = id + "\n";
            if (write(fd, line.data(), line.size()) != static_cast<ssize_t>(line.size())) _exit(5);
          }
          promise->set_value();
        });
      }
      for (auto& f : done) f.get();
    }
  };
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) threads.emplace_back(worker, t);
  for (auto& thread : threads) thread.join();
  _exit(0);
}

TEST_F(JournalTest, AcknowledgedSalesSurviveSigkill) {
  JournalOptions options = Options();
  int fds[2];
  ASSERT_EQ(pipe(fds), 0);
  fflush(stdout);
  pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    close(fds[0]);
    RunCrashChild(options, fds[1]);
  }
  close(fds[1]);
  FILE* in = fdopen(fds[0], "r");
  ASSERT_NE(in, nullptr);
  std::vector<std::string> acked;
  char* line = nullptr;
  size_t cap = 0;
  bool killed = false;
  ssize_t n;
  while ((n = getline(&line, &cap, in)) > 0) {
    acked.emplace_back(line, static_cast<size_t>(n - 1));
    if (!killed && acked.size() >= 600) {
      ASSERT_EQ(kill(pid, SIGKILL), 0);  // mid-stream: appends are in flight
      killed = true;
    }
  }
  free(line);
  fclose(in);
  int wstatus = 0;
  ASSERT_EQ(waitpid(pid, &wstatus, 0), pid);
  ASSERT_TRUE(killed) << "child ended early, status " << wstatus;
  ASSERT_TRUE(WIFSIGNALED(wstatus));
  EXPECT_EQ(WTERMSIG(wstatus), SIGKILL);

  auto journal = MustOpen(options);
  ASSERT_NE(journal, nullptr);
  std::set<std::string> unique(acked.begin(), acked.end());
  EXPECT_EQ(unique.size(), acked.size());
  for (const std::string& id : acked) {
    Result<std::optional<core::StoredSale>> got = journal->Get(id);
    ASSERT_TRUE(got.ok()) << got.status().ToString();
    EXPECT_TRUE(got->has_value()) << "acknowledged sale lost: " << id;
  }
  Result<JournalStats> stats = journal->Stats();
  ASSERT_TRUE(stats.ok());
  EXPECT_GE(stats->sales, static_cast<int64_t>(acked.size()));
  EXPECT_EQ(stats->sales, stats->last_seq);
  Result<int64_t> verified = journal->VerifyChain();
  ASSERT_TRUE(verified.ok()) << verified.status().ToString();
  EXPECT_EQ(*verified, stats->sales);
  EXPECT_TRUE(journal->IntegrityCheck().ok());
  std::printf("[ crash ] %zu acknowledged, %lld stored after SIGKILL\n", acked.size(),
              static_cast<long long>(stats->sales));
  // The journal continues where the dead process stopped.
  Receipt next = MustAppend(*journal, MakeSale("after-crash"));
  EXPECT_EQ(next.seq, stats->last_seq + 1);
  Result<int64_t> verified2 = journal->VerifyChain();
  ASSERT_TRUE(verified2.ok());
}

// ---- (5) refunds and voids ----

TEST_F(JournalTest, RefundNeedsAStoredRef) {
  auto journal = MustOpen(Options());
  ASSERT_NE(journal, nullptr);
  Result<Receipt> orphan =
      journal->Append(MakeSale(SaleSpec{.id = "r0", .type = "refund", .ref = "ghost"})).get();
  ASSERT_FALSE(orphan.ok());
  EXPECT_EQ(orphan.status().code(), ErrorCode::kInvalidField);
  EXPECT_EQ(orphan.status().field(), "ref");

  // A ref inserted earlier in the same group counts.
  journal->PauseWriterForTest();
  auto sale = journal->Append(MakeSale("orig"));
  auto sale2 = journal->Append(MakeSale("orig2"));
  auto refund = journal->Append(MakeSale(SaleSpec{.id = "r1", .type = "refund", .ref = "orig"}));
  auto void_sale = journal->Append(MakeSale(SaleSpec{.id = "v1", .type = "void", .ref = "orig2"}));
  auto bad = journal->Append(MakeSale(SaleSpec{.id = "r2", .type = "refund", .ref = "later"}));
  auto later = journal->Append(MakeSale("later"));
  journal->ResumeWriterForTest();
  Result<Receipt> rs = sale.get();
  ASSERT_TRUE(sale2.get().ok());
  Result<Receipt> rr = refund.get();
  Result<Receipt> rv = void_sale.get();
  Result<Receipt> rb = bad.get();
  Result<Receipt> rl = later.get();
  ASSERT_TRUE(rs.ok());
  ASSERT_TRUE(rr.ok()) << rr.status().ToString();
  ASSERT_TRUE(rv.ok()) << rv.status().ToString();
  EXPECT_TRUE(rr->created);
  EXPECT_EQ(rr->seq, rs->seq + 2);
  EXPECT_EQ(rv->seq, rs->seq + 3);
  ASSERT_FALSE(rb.ok());  // its ref came after it
  EXPECT_EQ(rb.status().field(), "ref");
  ASSERT_TRUE(rl.ok());
  EXPECT_EQ(rl->seq, rs->seq + 4);  // the refused refund took no seq
  Result<std::optional<core::StoredSale>> stored = journal->Get("r1");
  ASSERT_TRUE(stored.ok());
  ASSERT_TRUE(stored->has_value());
  EXPECT_EQ((*stored)->sale.type, core::SaleType::kRefund);
  EXPECT_EQ((*stored)->sale.ref, "orig");
  // Refund of a sale committed by an earlier group.
  EXPECT_TRUE(MustAppend(*journal, MakeSale(SaleSpec{.id = "r3", .type = "refund", .ref = "later"}))
                  .created);
  Result<int64_t> verified = journal->VerifyChain();
  ASSERT_TRUE(verified.ok());
  EXPECT_EQ(*verified, 6);
}

// ---- (7) refund and void rules, decided by the single writer (issue #8) ----

// A sale of 2 x "A" at 3.50, untaxed (7.00), or a refund/void of `qty` of it.
core::Sale StoreDaySale(const std::string& id, const std::string& terminal,
                        const std::string& type = "sale", const std::string& ref = "",
                        const std::string& qty = "2", const std::string& currency = "USD") {
  std::string json =
      "{\"id\":\"" + id + "\",\"terminal_id\":\"" + terminal + "\",\"type\":\"" + type + "\",";
  if (!ref.empty()) json += "\"ref\":\"" + ref + "\",";
  json += std::string("\"created_at\":\"") + kCreatedAt + "\",\"currency\":\"" + currency +
          "\",\"lines\":[{\"sku\":\"A\",\"qty\":\"" + qty + "\",\"unit_price\":\"3.50\"}]";
  if (type == "sale") json += ",\"payments\":[{\"method\":\"cash\",\"amount\":\"10.00\"}]";
  json += "}";
  Result<core::Sale> sale = core::DecodeSale(json);
  EXPECT_TRUE(sale.ok()) << json << ": " << sale.status().ToString();
  return sale.ok() ? std::move(sale).value() : core::Sale{};
}

TEST_F(JournalTest, RefundAndVoidRulesAreEnforced) {
  auto journal = MustOpen(Options());
  ASSERT_NE(journal, nullptr);
  MustAppend(*journal, StoreDaySale("s1", "T01"));
  // Another terminal refunds T01's sale, in two parts.
  EXPECT_TRUE(MustAppend(*journal, StoreDaySale("r1", "T02", "refund", "s1", "1.5")).created);
  Result<Receipt> over = journal->Append(StoreDaySale("r2", "T03", "refund", "s1", "0.6")).get();
  EXPECT_EQ(over.status().code(), ErrorCode::kRefundExceedsOriginal);
  EXPECT_EQ(over.status().field(), "lines[0]");
  EXPECT_TRUE(MustAppend(*journal, StoreDaySale("r3", "T03", "refund", "s1", "0.5")).created);
  // A retry of an accepted refund is still its original answer, not a refusal.
  Result<Receipt> retry = journal->Append(StoreDaySale("r3", "T03", "refund", "s1", "0.5")).get();
  ASSERT_TRUE(retry.ok()) << retry.status().ToString();
  EXPECT_FALSE(retry->created);
  // Nothing left; a void of a refunded sale, a refund of a refund: refused.
  EXPECT_EQ(
      journal->Append(StoreDaySale("r4", "T01", "refund", "s1", "0.001")).get().status().code(),
      ErrorCode::kRefundExceedsOriginal);
  EXPECT_EQ(journal->Append(StoreDaySale("v1", "T01", "void", "s1")).get().status().code(),
            ErrorCode::kNotRefundable);
  EXPECT_EQ(journal->Append(StoreDaySale("r5", "T01", "refund", "r1", "0.5")).get().status().code(),
            ErrorCode::kNotRefundable);
  // Voids: one per sale, and nothing after it.
  MustAppend(*journal, StoreDaySale("s2", "T01"));
  EXPECT_EQ(
      journal->Append(StoreDaySale("r6", "T01", "refund", "s2", "1", "EUR")).get().status().code(),
      ErrorCode::kCurrencyMismatch);
  EXPECT_TRUE(MustAppend(*journal, StoreDaySale("v2", "T02", "void", "s2")).created);
  EXPECT_EQ(journal->Append(StoreDaySale("v3", "T01", "void", "s2")).get().status().code(),
            ErrorCode::kAlreadyVoided);
  EXPECT_EQ(journal->Append(StoreDaySale("r7", "T01", "refund", "s2", "1")).get().status().code(),
            ErrorCode::kAlreadyVoided);
  // Refused entries took no seq: s1 r1 r3 s2 v2.
  Result<int64_t> verified = journal->VerifyChain();
  ASSERT_TRUE(verified.ok()) << verified.status().ToString();
  EXPECT_EQ(*verified, 5);
}

TEST_F(JournalTest, SixtyFourRacingRefundsNeverExceedTheSale) {
  auto journal = MustOpen(Options());
  ASSERT_NE(journal, nullptr);
  MustAppend(*journal, StoreDaySale("s1", "T01"));
  // 64 threads, 8 terminals, each refunds 0.1 of the 2 units: exactly 20 fit.
  constexpr int kRefunds = 64;
  std::vector<Result<Receipt>> results(kRefunds, Status(ErrorCode::kInternal, "not run"));
  std::latch start(kRefunds);
  std::vector<std::thread> threads;
  for (int i = 0; i < kRefunds; ++i) {
    threads.emplace_back([&, i] {
      core::Sale refund = StoreDaySale(Str("r", i), Str("T0", i % 8), "refund", "s1", "0.1");
      start.arrive_and_wait();
      results[i] = journal->Append(std::move(refund)).get();
    });
  }
  for (std::thread& t : threads) t.join();
  int accepted = 0;
  for (const Result<Receipt>& r : results) {
    if (r.ok()) {
      ++accepted;
    } else {
      EXPECT_EQ(r.status().code(), ErrorCode::kRefundExceedsOriginal) << r.status().ToString();
    }
  }
  EXPECT_EQ(accepted, 20);
  // What is stored agrees: the refunds add up to the sale exactly.
  Result<std::vector<core::StoredSale>> all = journal->List(0, 1000);
  ASSERT_TRUE(all.ok());
  int64_t refunded = 0;
  for (const core::StoredSale& s : *all) {
    if (s.sale.type == core::SaleType::kRefund) refunded += s.sale.total;
  }
  EXPECT_EQ(refunded, 700);
  ASSERT_TRUE(journal->VerifyChain().ok());
}

TEST_F(JournalTest, EightTerminalsRacingToVoidOneSaleOneWins) {
  auto journal = MustOpen(Options());
  ASSERT_NE(journal, nullptr);
  MustAppend(*journal, StoreDaySale("s1", "T01"));
  constexpr int kTerminals = 8;
  std::vector<Result<Receipt>> results(kTerminals, Status(ErrorCode::kInternal, "not run"));
  std::latch start(kTerminals);
  std::vector<std::thread> threads;
  for (int i = 0; i < kTerminals; ++i) {
    threads.emplace_back([&, i] {
      core::Sale void_sale = StoreDaySale(Str("v", i), Str("T0", i + 1), "void", "s1");
      start.arrive_and_wait();
      results[i] = journal->Append(std::move(void_sale)).get();
    });
  }
  for (std::thread& t : threads) t.join();
  int won = 0;
  for (const Result<Receipt>& r : results) {
    if (r.ok()) {
      ++won;
    } else {
      EXPECT_EQ(r.status().code(), ErrorCode::kAlreadyVoided) << r.status().ToString();
    }
  }
  EXPECT_EQ(won, 1);
  Result<int64_t> verified = journal->VerifyChain();
  ASSERT_TRUE(verified.ok());
  EXPECT_EQ(*verified, 2);
}

// ---- (6) clock skew ----

TEST_F(JournalTest, ClockSkewIsFlagged) {
  Result<int64_t> created = core::ParseRfc3339(kCreatedAt);
  ASSERT_TRUE(created.ok());
  machub::testing::ManualClock clock(*created);
  JournalOptions options = Options();
  options.clock = &clock;
  options.clock_skew_bound_ms = 60'000;
  auto journal = MustOpen(options);
  ASSERT_NE(journal, nullptr);

  struct Case {
    std::string id;
    int64_t now;
    bool skew;
  } const cases[] = {
      // In time order: received_at never goes backwards (the next test).
      {"early", *created - 60'001, true}, {"early-at-bound", *created - 60'000, false},
      {"on-time", *created, false},       {"at-bound", *created + 60'000, false},
      {"late", *created + 60'001, true},
  };
  for (const Case& c : cases) {
    clock.Set(c.now);
    Receipt receipt = MustAppend(*journal, MakeSale(c.id));
    EXPECT_EQ(receipt.received_at_ms, c.now) << c.id;
    Result<std::optional<core::StoredSale>> stored = journal->Get(c.id);
    ASSERT_TRUE(stored.ok());
    ASSERT_TRUE(stored->has_value());
    EXPECT_EQ((*stored)->clock_skew, c.skew) << c.id;
    EXPECT_EQ((*stored)->received_at_ms, c.now);
  }
  Result<int64_t> verified = journal->VerifyChain();  // the flag is part of the hash
  ASSERT_TRUE(verified.ok());
  EXPECT_EQ(*verified, 5);
}

// A clock that steps back (a Pi without RTC booting with a stale clock, before NTP):
// received_at is held at the newest entry's, within a run and across a reopen, and counted.
TEST_F(JournalTest, ReceivedAtNeverGoesBackwards) {
  const int64_t t0 = clock_.NowMs();
  {
    auto journal = MustOpen(Options());
    ASSERT_NE(journal, nullptr);
    EXPECT_EQ(MustAppend(*journal, MakeSale("first")).received_at_ms, t0);
    clock_.Set(t0 - 3'600'000);
    EXPECT_EQ(MustAppend(*journal, MakeSale("behind")).received_at_ms, t0);
    Result<JournalStats> stats = journal->Stats();
    ASSERT_TRUE(stats.ok());
    EXPECT_EQ(stats->newest_received_at_ms, t0);
    EXPECT_EQ(stats->clock_held, 1);
  }
  // Reopened with the clock still an hour behind: the newest received_at is read back.
  auto journal = MustOpen(Options());
  ASSERT_NE(journal, nullptr);
  EXPECT_EQ(journal->Stats()->newest_received_at_ms, t0);
  EXPECT_EQ(journal->Stats()->clock_held, 0);
  EXPECT_EQ(MustAppend(*journal, MakeSale("after-reopen")).received_at_ms, t0);
  EXPECT_EQ(journal->Stats()->clock_held, 1);
  // The clock catches up (NTP answered): readings are taken as they are again.
  clock_.Set(t0 + 5'000);
  EXPECT_EQ(MustAppend(*journal, MakeSale("caught-up")).received_at_ms, t0 + 5'000);
  EXPECT_EQ(journal->Stats()->newest_received_at_ms, t0 + 5'000);
  EXPECT_EQ(journal->Stats()->clock_held, 1);
  Result<int64_t> verified = journal->VerifyChain();
  ASSERT_TRUE(verified.ok()) << verified.status().ToString();
  EXPECT_EQ(*verified, 4);
}

// Entries stored under an untrusted clock are marked, and the mark is part of the chain:
// held entries always; others while the options' clock_untrusted says so (the hub asks
// the kernel). Unmarked entries hash as before (the record has no extra line).
TEST_F(JournalTest, EntriesUnderAnUntrustedClockAreMarkedInTheChain) {
  bool kernel_unsynced = false;
  JournalOptions options = Options();
  options.clock_untrusted = [&] { return kernel_unsynced; };
  auto journal = MustOpen(options);
  ASSERT_NE(journal, nullptr);
  const int64_t t0 = clock_.NowMs();
  MustAppend(*journal, MakeSale("trusted"));
  clock_.Set(t0 - 60'000);
  MustAppend(*journal, MakeSale("held"));
  clock_.Set(t0 + 1'000);
  kernel_unsynced = true;
  MustAppend(*journal, MakeSale("unsynced"));
  kernel_unsynced = false;
  MustAppend(*journal, MakeSale("synced-again"));
  auto flag = [&](const std::string& id) {
    Result<std::optional<core::StoredSale>> stored = journal->Get(id);
    EXPECT_TRUE(stored.ok() && stored->has_value()) << id;
    return stored.ok() && stored->has_value() && (*stored)->clock_untrusted;
  };
  EXPECT_FALSE(flag("trusted"));
  EXPECT_TRUE(flag("held"));
  EXPECT_TRUE(flag("unsynced"));
  EXPECT_FALSE(flag("synced-again"));
  // The stored JSON carries the mark only when set.
  Result<std::optional<core::StoredSale>> held = journal->Get("held");
  EXPECT_NE(core::StoredSaleJson(**held).find("\"clock_untrusted\":true"), std::string::npos);
  Result<std::optional<core::StoredSale>> trusted = journal->Get("trusted");
  EXPECT_EQ(core::StoredSaleJson(**trusted).find("clock_untrusted"), std::string::npos);
  // The mark is hashed: the record of "held" with the mark gives its stored hash, without
  // it another one.
  const core::StoredSale& h = **held;
  EXPECT_EQ(
      core::ChainHash(h.prev_hash, core::CanonicalRecord(h.seq, h.receipt_no, h.received_at_ms,
                                                         core::kClockUntrusted, h.canonical)),
      h.hash);
  EXPECT_NE(core::ChainHash(h.prev_hash, core::CanonicalRecord(h.seq, h.receipt_no,
                                                               h.received_at_ms, 0, h.canonical)),
            h.hash);
  Result<int64_t> verified = journal->VerifyChain();
  ASSERT_TRUE(verified.ok()) << verified.status().ToString();
  EXPECT_EQ(*verified, 4);
  // Flipping the stored mark breaks the chain.
  ASSERT_TRUE(
      journal->ExecOnWriterForTest("UPDATE sales SET clock_skew = 0 WHERE id = 'held'").ok());
  EXPECT_FALSE(journal->VerifyChain().ok());
}

// New journals take JournalOptions::page_size (1 KiB by default: half the bytes written
// per sale, docs/BENCHMARKS.md "SD-card wear"); a journal created with another size keeps
// it, and a bad size is refused.
TEST_F(JournalTest, PageSizeAppliesToNewJournalsOnly) {
  {
    auto journal = MustOpen(Options());
    ASSERT_NE(journal, nullptr);
    EXPECT_EQ(*journal->QueryIntOnWriterForTest("PRAGMA page_size"), 1024);
    MustAppend(*journal, MakeSale("small-pages"));
  }
  JournalOptions old = Options();
  old.path = dir_ + "/old.db";
  old.page_size = 4096;
  {
    auto journal = MustOpen(old);
    ASSERT_NE(journal, nullptr);
    MustAppend(*journal, MakeSale("big-pages"));
  }
  auto reopened = MustOpen(Options());  // 1024 asked, 1024 kept
  ASSERT_NE(reopened, nullptr);
  EXPECT_EQ(*reopened->QueryIntOnWriterForTest("PRAGMA page_size"), 1024);
  JournalOptions again = Options();
  again.path = old.path;  // default 1024 asked of a 4096 journal: it stays 4096 and works
  auto kept = MustOpen(again);
  ASSERT_NE(kept, nullptr);
  EXPECT_EQ(*kept->QueryIntOnWriterForTest("PRAGMA page_size"), 4096);
  EXPECT_TRUE((*kept->Get("big-pages")).has_value());
  MustAppend(*kept, MakeSale("after-reopen"));
  EXPECT_EQ(*kept->VerifyChain(), 2);
  for (int bad : {0, 1000, 256, 131072}) {
    JournalOptions b = Options();
    b.path = dir_ + "/bad.db";
    b.page_size = bad;
    EXPECT_EQ(SqliteJournal::Open(b).status().code(), ErrorCode::kInvalidArgument) << bad;
  }
}

// ---- (7) opening ----

int64_t UserVersion(const std::string& path) {
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

void ExecRaw(const std::string& path, const std::string& sql) {
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READWRITE, nullptr), SQLITE_OK);
  EXPECT_EQ(sqlite3_exec(db, sql.c_str(), nullptr, nullptr, nullptr), SQLITE_OK)
      << sqlite3_errmsg(db);
  sqlite3_close_v2(db);
}

TEST_F(JournalTest, MigratesAnEmptyFile) {
  JournalOptions options = Options();
  { std::ofstream touch(options.path); }
  ASSERT_EQ(std::filesystem::file_size(options.path), 0u);
  auto journal = MustOpen(options);
  ASSERT_NE(journal, nullptr);
  EXPECT_TRUE(MustAppend(*journal, MakeSale("x")).created);
  journal->Close();
  EXPECT_EQ(UserVersion(options.path), 7);
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
  EXPECT_GT(std::filesystem::file_size(options.path), db_size_before + 100'000);
  EXPECT_EQ(journal->GetWriterStats().writer_checkpoints, 0);
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

// What a binary before schema v6 left behind: no drawers or offline_payments table, and
// the sales.type CHECK as v1 wrote it (v6 and v7 widen it in place).
const std::string kUndoV7 =
    "PRAGMA writable_schema=ON; "
    "UPDATE sqlite_schema SET sql = replace(sql, "
    "'CHECK (type IN (''sale'', ''refund'', ''void'', ''drawer_open'', ''cash_in'', "
    "''cash_out'', ''drawer_close'', ''z_report'', ''payment_authorization''))', "
    "'CHECK (type IN (''sale'', ''refund'', ''void'', ''drawer_open'', ''cash_in'', "
    "''cash_out'', ''drawer_close'', ''z_report''))') WHERE name = 'sales'; "
    "PRAGMA writable_schema=OFF; DROP TABLE offline_payments; ";
const std::string kUndoV6 =
    kUndoV7 +
    "PRAGMA writable_schema=ON; "
    "UPDATE sqlite_schema SET sql = replace(sql, "
    "'CHECK (type IN (''sale'', ''refund'', ''void'', ''drawer_open'', ''cash_in'', "
    "''cash_out'', ''drawer_close'', ''z_report''))', "
    "'CHECK (type IN (''sale'', ''refund'', ''void''))') WHERE name = 'sales'; "
    "PRAGMA writable_schema=OFF; DROP TABLE drawers; ";

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
  EXPECT_EQ(UserVersion(options.path), 7);  // v1 -> ... -> v7
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
    ASSERT_EQ(sqlite3_prepare_v2(db, "SELECT count(*), min(seq) FROM ids", -1, &stmt, nullptr),
              SQLITE_OK);
    ASSERT_EQ(sqlite3_step(stmt), SQLITE_ROW);
    EXPECT_EQ(sqlite3_column_int64(stmt, 0), 1);   // the newest sale's row stays, so its id
    EXPECT_EQ(sqlite3_column_int64(stmt, 1), 33);  // too
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
  EXPECT_EQ(UserVersion(options.path), 7);  // v2 -> ... -> v7
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
  EXPECT_EQ(UserVersion(options.path), 7);
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

// ---- store events (issue #8) ----

core::StoreEvent MakeEvent(const std::string& id, const std::string& terminal,
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

core::StoreEvent MakeZ(const std::string& id, const std::string& extra = "") {
  Result<core::StoreEvent> z = core::DecodeZRequest("{\"id\":\"" + id + "\",\"created_at\":\"" +
                                                    std::string(kCreatedAt) + "\"" + extra + "}");
  EXPECT_TRUE(z.ok()) << z.status().ToString();
  return z.ok() ? std::move(z).value() : core::StoreEvent{};
}

Receipt MustAppendEvent(SaleJournal& journal, core::StoreEvent event) {
  Result<Receipt> receipt = journal.AppendEvent(std::move(event)).get();
  EXPECT_TRUE(receipt.ok()) << receipt.status().ToString();
  return receipt.ok() ? *receipt : Receipt{};
}

ErrorCode EventCode(SaleJournal& journal, core::StoreEvent event) {
  return journal.AppendEvent(std::move(event)).get().status().code();
}

TEST_F(JournalTest, StoreEventsShareTheSeqTheChainAndTheReads) {
  auto journal = MustOpen(Options());
  ASSERT_NE(journal, nullptr);
  Receipt open = MustAppendEvent(*journal, MakeEvent("d1", "T01", "drawer_open"));
  EXPECT_TRUE(open.created);
  EXPECT_EQ(open.seq, 1);
  EXPECT_EQ(open.type, "drawer_open");
  EXPECT_EQ(open.receipt_no, "");
  EXPECT_EQ(open.total, 10000);
  EXPECT_EQ(MustAppend(*journal, MakeSale("s1")).seq, 2);
  EXPECT_EQ(MustAppendEvent(*journal, MakeEvent("c1", "T01", "cash_out")).seq, 3);
  EXPECT_EQ(MustAppendEvent(*journal, MakeEvent("d2", "T01", "drawer_close")).seq, 4);

  Result<std::optional<core::StoredSale>> got = journal->Get("c1");
  ASSERT_TRUE(got.ok() && got->has_value()) << got.status().ToString();
  ASSERT_TRUE((*got)->is_event());
  EXPECT_EQ((*got)->event->type, core::EventType::kCashOut);
  EXPECT_EQ((*got)->event->amount, 2000);
  EXPECT_EQ((*got)->event->reason, "bank");
  EXPECT_EQ((*got)->canonical, core::CanonicalEvent(*(*got)->event));

  Result<std::vector<core::StoredSale>> all = journal->List(0, 10);
  ASSERT_TRUE(all.ok());
  ASSERT_EQ(all->size(), 4u);
  EXPECT_TRUE((*all)[0].is_event());
  EXPECT_FALSE((*all)[1].is_event());
  EXPECT_EQ((*all)[1].sale.id, "s1");
  // The chain covers every type: each hash is over the previous one and the record.
  for (size_t i = 0; i < all->size(); ++i) {
    const core::StoredSale& e = (*all)[i];
    EXPECT_EQ(e.hash, core::ChainHash(e.prev_hash,
                                      core::CanonicalRecord(e.seq, e.receipt_no, e.received_at_ms,
                                                            e.clock_skew, e.canonical)));
    if (i > 0) {
      EXPECT_EQ(e.prev_hash, (*all)[i - 1].hash);
    }
  }
  Result<int64_t> verified = journal->VerifyChain();
  ASSERT_TRUE(verified.ok()) << verified.status().ToString();
  EXPECT_EQ(*verified, 4);

  // Replay and conflict, in the one id space of sales and events.
  Receipt again = MustAppendEvent(*journal, MakeEvent("c1", "T01", "cash_out"));
  EXPECT_FALSE(again.created);
  EXPECT_EQ(again.seq, 3);
  EXPECT_EQ(again.type, "cash_out");
  EXPECT_EQ(EventCode(*journal, MakeEvent("c1", "T01", "cash_in")), ErrorCode::kIdConflict);
  EXPECT_EQ(EventCode(*journal, MakeEvent("s1", "T01", "drawer_open")), ErrorCode::kIdConflict);
  EXPECT_EQ(journal->Append(MakeSale("d1")).get().status().code(), ErrorCode::kIdConflict);
  // A refund names a sale, never an event.
  Result<Receipt> refund =
      journal->Append(MakeSale(SaleSpec{.id = "r1", .type = "refund", .ref = "c1"})).get();
  EXPECT_EQ(refund.status().code(), ErrorCode::kInvalidField);
  EXPECT_EQ(refund.status().field(), "ref");
  Result<JournalStats> stats = journal->Stats();
  ASSERT_TRUE(stats.ok());
  EXPECT_EQ(stats->last_seq, 4);
}

TEST_F(JournalTest, DrawerRulesHoldAcrossGroupsAndRestarts) {
  JournalOptions options = Options();
  {
    auto journal = MustOpen(options);
    ASSERT_NE(journal, nullptr);
    EXPECT_EQ(EventCode(*journal, MakeEvent("x1", "T01", "cash_in")), ErrorCode::kDrawerClosed);
    EXPECT_EQ(EventCode(*journal, MakeEvent("x2", "T01", "drawer_close")),
              ErrorCode::kDrawerClosed);
    // One group: open, a second open (refused: the first counts), a close, a reopen.
    journal->PauseWriterForTest();
    auto a = journal->AppendEvent(MakeEvent("o1", "T01", "drawer_open"));
    auto b = journal->AppendEvent(MakeEvent("o2", "T01", "drawer_open"));
    auto c = journal->AppendEvent(MakeEvent("k1", "T01", "drawer_close"));
    auto d = journal->AppendEvent(MakeEvent("o3", "T01", "drawer_open"));
    auto e = journal->AppendEvent(MakeEvent("o4", "T02", "drawer_open"));
    journal->ResumeWriterForTest();
    EXPECT_TRUE(a.get().ok());
    EXPECT_EQ(b.get().status().code(), ErrorCode::kDrawerAlreadyOpen);
    EXPECT_TRUE(c.get().ok());
    EXPECT_TRUE(d.get().ok());
    EXPECT_TRUE(e.get().ok());
    // Nothing was stored for the refusals.
    EXPECT_FALSE(journal->Get("x1")->has_value());
    EXPECT_FALSE(journal->Get("o2")->has_value());
  }
  auto journal = MustOpen(options);  // the open drawers come back from the file
  ASSERT_NE(journal, nullptr);
  EXPECT_EQ(EventCode(*journal, MakeEvent("o5", "T01", "drawer_open")),
            ErrorCode::kDrawerAlreadyOpen);
  Result<SaleJournal::OpenDay> day = journal->ReadOpenDay();
  ASSERT_TRUE(day.ok()) << day.status().ToString();
  ASSERT_EQ(day->open_drawers.size(), 2u);
  EXPECT_EQ(day->open_drawers[0].first, "T01");
  EXPECT_EQ(day->open_drawers[1].first, "T02");
  // The cheap read: the same drawers, with the received_at of their drawer_open.
  Result<std::vector<SaleJournal::OpenDrawerAt>> open = journal->ReadOpenDrawers();
  ASSERT_TRUE(open.ok()) << open.status().ToString();
  ASSERT_EQ(open->size(), 2u);
  for (size_t i = 0; i < 2; ++i) {
    EXPECT_EQ((*open)[i].terminal_id, day->open_drawers[i].first);
    EXPECT_EQ((*open)[i].opened_seq, day->open_drawers[i].second);
    Result<std::vector<core::StoredSale>> entry = journal->List((*open)[i].opened_seq - 1, 1);
    ASSERT_TRUE(entry.ok());
    ASSERT_EQ(entry->size(), 1u);
    EXPECT_EQ((*open)[i].opened_at_ms, entry->front().received_at_ms);
    EXPECT_GT((*open)[i].opened_at_ms, 0);
  }
  EXPECT_TRUE(journal->AppendEvent(MakeEvent("k2", "T01", "drawer_close")).get().ok());
  EXPECT_EQ(journal->ReadOpenDay()->open_drawers.size(), 1u);
  EXPECT_EQ(journal->ReadOpenDrawers()->size(), 1u);
}

TEST_F(JournalTest, CashWithoutAnOpenDrawerIsRefusedWhenConfigured) {
  JournalOptions options = Options();
  {
    auto journal = MustOpen(options);  // default: allowed
    ASSERT_NE(journal, nullptr);
    EXPECT_TRUE(journal->Append(MakeSale("free")).get().ok());
  }
  options.cash_requires_open_drawer = true;
  auto journal = MustOpen(options);
  ASSERT_NE(journal, nullptr);
  Result<Receipt> refused = journal->Append(MakeSale("cash1", "T03")).get();
  EXPECT_EQ(refused.status().code(), ErrorCode::kDrawerClosed);
  EXPECT_FALSE(journal->Get("cash1")->has_value());
  MustAppendEvent(*journal, MakeEvent("o1", "T03", "drawer_open"));
  EXPECT_TRUE(journal->Append(MakeSale("cash1", "T03")).get().ok());
  // Another terminal's drawer does not count.
  EXPECT_EQ(journal->Append(MakeSale("cash2", "T04")).get().status().code(),
            ErrorCode::kDrawerClosed);
}

TEST_F(JournalTest, ZReportsAreNumberedCoverTheDayAndReplay) {
  JournalOptions options = Options();
  auto journal = MustOpen(options);
  ASSERT_NE(journal, nullptr);
  MustAppendEvent(*journal, MakeEvent("o1", "T01", "drawer_open"));
  MustAppend(*journal, MakeSale("s1"));
  MustAppend(*journal, MakeSale("s2", "T02"));
  MustAppendEvent(*journal, MakeEvent("k1", "T01", "drawer_close"));
  Result<std::vector<core::StoredSale>> day1 = journal->List(0, 100);
  ASSERT_TRUE(day1.ok());

  Receipt z1 = MustAppendEvent(*journal, MakeZ("z-1"));
  EXPECT_EQ(z1.receipt_no, "Z1");
  EXPECT_EQ(z1.seq, 5);
  EXPECT_EQ(z1.type, "z_report");
  Result<std::optional<core::StoredSale>> stored = journal->Get("z-1");
  ASSERT_TRUE(stored.ok() && stored->has_value());
  const core::StoreEvent& z = *(*stored)->event;
  EXPECT_EQ(z.z_number, 1);
  EXPECT_EQ(z.first_seq, 1);
  EXPECT_EQ(z.last_seq, 4);
  EXPECT_EQ(z.currency, "USD");
  // The figures are core::ComputeReport over exactly the entries before it.
  std::vector<core::JournalEntry> entries;
  for (const core::StoredSale& e : *day1) {
    core::JournalEntry entry{e.seq, e.receipt_no, e.received_at_ms, {}};
    if (e.is_event()) {
      entry.body = *e.event;
    } else {
      entry.body = e.sale;
    }
    entries.push_back(std::move(entry));
  }
  Result<core::ReportFigures> expected = core::ComputeReport(entries, "USD");
  ASSERT_TRUE(expected.ok());
  EXPECT_EQ(z.figures, core::ReportFiguresJson(*expected));
  EXPECT_EQ(expected->sales.count, 2);
  ASSERT_EQ(expected->drawers.size(), 1u);

  // Replay: same request, same report; another body under its id: conflict.
  Receipt again = MustAppendEvent(*journal, MakeZ("z-1"));
  EXPECT_FALSE(again.created);
  EXPECT_EQ(again.receipt_no, "Z1");
  EXPECT_EQ(EventCode(*journal, MakeZ("z-1", ",\"cashier\":\"Ann\"")), ErrorCode::kIdConflict);
  EXPECT_EQ(EventCode(*journal, MakeZ("s1")), ErrorCode::kIdConflict);

  // The open day starts after Z1; an empty day still gets its Z.
  Result<SaleJournal::OpenDay> open = journal->ReadOpenDay();
  ASSERT_TRUE(open.ok());
  EXPECT_EQ(open->last_z_number, 1);
  EXPECT_EQ(open->last_z_seq, 5);
  EXPECT_TRUE(open->entries.empty());
  Receipt z2 = MustAppendEvent(*journal, MakeZ("z-2"));
  EXPECT_EQ(z2.receipt_no, "Z2");
  MustAppend(*journal, MakeSale("s3"));
  journal.reset();
  journal = MustOpen(options);  // the numbering survives a restart
  ASSERT_NE(journal, nullptr);
  Receipt z3 = MustAppendEvent(*journal, MakeZ("z-3", ",\"currency\":\"EUR\""));
  EXPECT_EQ(z3.receipt_no, "Z3");
  Result<std::optional<core::StoredSale>> third = journal->Get("z-3");
  ASSERT_TRUE(third.ok() && third->has_value());
  EXPECT_EQ((*third)->event->first_seq, 7);
  EXPECT_EQ((*third)->event->last_seq, 7);
  EXPECT_EQ((*third)->event->currency, "EUR");
  // A USD sale in a EUR report is counted apart, never mixed in.
  EXPECT_NE((*third)->event->figures.find("\"other_currency_entries\":1"), std::string::npos);
  Result<int64_t> verified = journal->VerifyChain();
  ASSERT_TRUE(verified.ok());
  EXPECT_EQ(*verified, 8);
}

TEST_F(JournalTest, RacingZReportsAndDrawerOpensEachWinOnce) {
  auto journal = MustOpen(Options());
  ASSERT_NE(journal, nullptr);
  for (int i = 0; i < 40; ++i) MustAppend(*journal, MakeSale(Str("s", i), Str("T", i % 4)));
  // 8 managers close the day at once with different ids, 8 tabs open T05's drawer.
  std::vector<std::future<Result<Receipt>>> zs;
  std::vector<std::future<Result<Receipt>>> opens;
  std::vector<std::thread> threads;
  std::mutex mu;
  std::latch start(16);
  for (int t = 0; t < 16; ++t) {
    threads.emplace_back([&, t] {
      start.arrive_and_wait();
      auto f = t < 8 ? journal->AppendEvent(MakeZ(Str("z", t)))
                     : journal->AppendEvent(MakeEvent(Str("o", t), "T05", "drawer_open"));
      std::lock_guard<std::mutex> lock(mu);
      (t < 8 ? zs : opens).push_back(std::move(f));
    });
  }
  for (auto& thread : threads) thread.join();
  std::set<std::string> numbers;
  for (auto& f : zs) {
    Result<Receipt> r = f.get();
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    numbers.insert(r->receipt_no);
  }
  EXPECT_EQ(numbers, (std::set<std::string>{"Z1", "Z2", "Z3", "Z4", "Z5", "Z6", "Z7", "Z8"}));
  int won = 0;
  for (auto& f : opens) {
    Result<Receipt> r = f.get();
    if (r.ok()) {
      ++won;
    } else {
      EXPECT_EQ(r.status().code(), ErrorCode::kDrawerAlreadyOpen);
    }
  }
  EXPECT_EQ(won, 1);
  // The reports tile the journal: each starts right after the previous one.
  Result<std::vector<core::StoredSale>> all = journal->List(0, 1000);
  ASSERT_TRUE(all.ok());
  int64_t next_first = 1;
  int zcount = 0;
  for (const core::StoredSale& e : *all) {
    if (!e.is_event() || e.event->type != core::EventType::kZReport) continue;
    ++zcount;
    EXPECT_EQ(e.event->first_seq, next_first);
    EXPECT_EQ(e.event->last_seq, e.seq - 1);
    next_first = e.seq + 1;
  }
  EXPECT_EQ(zcount, 8);
}

TEST_F(JournalTest, MigratedJournalStoresEvents) {
  JournalOptions options = Options();
  {
    auto journal = MustOpen(options);
    ASSERT_NE(journal, nullptr);
    MustAppend(*journal, MakeSale("before"));
  }
  ExecRaw(options.path, kUndoV6 + "PRAGMA user_version=5");
  ASSERT_EQ(UserVersion(options.path), 5);
  auto journal = MustOpen(options);
  ASSERT_NE(journal, nullptr);
  EXPECT_EQ(UserVersion(options.path), 7);
  EXPECT_EQ(MustAppendEvent(*journal, MakeEvent("o1", "T01", "drawer_open")).seq, 2);
  EXPECT_EQ(MustAppendEvent(*journal, MakeZ("z1")).receipt_no, "Z1");
  Result<int64_t> verified = journal->VerifyChain();
  ASSERT_TRUE(verified.ok());
  EXPECT_EQ(*verified, 3);
  EXPECT_TRUE(journal->IntegrityCheck().ok());
}

// A child that closes drawers and days as fast as it can, reporting each acknowledged
// entry ("<id> <receipt_no>") on `fd`.
[[noreturn]] void RunStoreDayCrashChild(const JournalOptions& options, int fd) {
  Result<std::unique_ptr<SqliteJournal>> opened = SqliteJournal::Open(options);
  if (!opened.ok()) _exit(3);
  SqliteJournal& journal = **opened;
  auto report = [&](const Result<Receipt>& r) {
    if (!r.ok()) return;
    std::string line = r->id + " " + (r->receipt_no.empty() ? "-" : r->receipt_no) + "\n";
    if (write(fd, line.data(), line.size()) != static_cast<ssize_t>(line.size())) _exit(5);
  };
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      const std::string terminal = Str("T", t);
      for (int i = 0;; ++i) {
        report(
            journal.AppendEvent(MakeEvent(Str(terminal + "-o", i), terminal, "drawer_open")).get());
        report(journal.Append(MakeSale(Str(terminal + "-s", i), terminal)).get());
        report(journal.AppendEvent(MakeEvent(Str(terminal + "-k", i), terminal, "drawer_close"))
                   .get());
        if (t == 0) report(journal.AppendEvent(MakeZ(Str("z", i))).get());
      }
    });
  }
  for (auto& thread : threads) thread.join();
  _exit(0);
}

TEST_F(JournalTest, SigkillDuringZReportsAndDrawerClosesLosesNothing) {
  JournalOptions options = Options();
  int fds[2];
  ASSERT_EQ(pipe(fds), 0);
  fflush(stdout);
  pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    close(fds[0]);
    RunStoreDayCrashChild(options, fds[1]);
  }
  close(fds[1]);
  FILE* in = fdopen(fds[0], "r");
  ASSERT_NE(in, nullptr);
  std::map<std::string, std::string> acked;  // id -> receipt_no
  char* line = nullptr;
  size_t cap = 0;
  bool killed = false;
  int zs = 0;
  ssize_t n;
  while ((n = getline(&line, &cap, in)) > 0) {
    std::string text(line, static_cast<size_t>(n - 1));
    const size_t space = text.find(' ');
    acked[text.substr(0, space)] = text.substr(space + 1);
    if (text[0] == 'z') ++zs;
    if (!killed && zs >= 40) {
      ASSERT_EQ(kill(pid, SIGKILL), 0);  // Z reports and drawer closes are in flight
      killed = true;
    }
  }
  free(line);
  fclose(in);
  int wstatus = 0;
  ASSERT_EQ(waitpid(pid, &wstatus, 0), pid);
  ASSERT_TRUE(killed) << "child ended early, status " << wstatus;

  auto journal = MustOpen(options);
  ASSERT_NE(journal, nullptr);
  for (const auto& [id, receipt_no] : acked) {
    Result<std::optional<core::StoredSale>> got = journal->Get(id);
    ASSERT_TRUE(got.ok()) << got.status().ToString();
    ASSERT_TRUE(got->has_value()) << "acknowledged entry lost: " << id;
    EXPECT_EQ((*got)->receipt_no, receipt_no == "-" ? "" : receipt_no) << id;
  }
  // Z numbers run 1..N without a gap or a double, each report right after the last.
  Result<std::vector<core::StoredSale>> all = journal->List(0, 1'000'000);
  ASSERT_TRUE(all.ok());
  int64_t expect_number = 1;
  int64_t next_first = 1;
  for (const core::StoredSale& e : *all) {
    if (!e.is_event() || e.event->type != core::EventType::kZReport) continue;
    EXPECT_EQ(e.event->z_number, expect_number++);
    EXPECT_EQ(e.event->first_seq, next_first);
    next_first = e.seq + 1;
  }
  EXPECT_GE(expect_number - 1, 40);
  Result<int64_t> verified = journal->VerifyChain();
  ASSERT_TRUE(verified.ok()) << verified.status().ToString();
  EXPECT_EQ(*verified, static_cast<int64_t>(all->size()));
  // The drawer state is the file's: a terminal killed mid-session can close its drawer.
  Result<SaleJournal::OpenDay> day = journal->ReadOpenDay();
  ASSERT_TRUE(day.ok());
  EXPECT_EQ(day->last_z_number, expect_number - 1);
  for (const auto& [terminal, opened_seq] : day->open_drawers) {
    EXPECT_TRUE(
        journal->AppendEvent(MakeEvent("after-" + terminal, terminal, "drawer_close")).get().ok());
  }
  Receipt z = MustAppendEvent(*journal, MakeZ("z-after"));
  EXPECT_EQ(z.receipt_no, Str("Z", expect_number));
  std::printf("[ crash ] %zu acknowledged entries, %lld Z reports before SIGKILL\n", acked.size(),
              static_cast<long long>(expect_number - 1));
}

// ---- offline card payments (issue #9) ----

core::Sale OfflineSale(const std::string& id, const std::string& terminal,
                       const std::string& amount, bool offline = true) {
  const std::string json =
      "{\"id\":\"" + id + "\",\"terminal_id\":\"" + terminal +
      "\",\"type\":\"sale\",\"created_at\":\"" + kCreatedAt +
      "\",\"currency\":\"USD\",\"lines\":[{\"sku\":\"A\",\"qty\":\"1\",\"unit_price\":\"" + amount +
      "\",\"tax_rate\":\"0\"}],\"payments\":[{\"method\":\"card\",\"amount\":\"" + amount +
      "\",\"card_token\":\"tok_1\",\"last4\":\"4242\",\"offline\":" + (offline ? "true" : "false") +
      "}]}";
  Result<core::Sale> sale = core::DecodeSale(json);
  EXPECT_TRUE(sale.ok()) << json << ": " << sale.status().ToString();
  return sale.ok() ? std::move(sale).value() : core::Sale{};
}

core::StoreEvent Outcome(const std::string& id, const std::string& sale_id,
                         const std::string& result, int64_t index = 0) {
  Result<core::StoreEvent> event = core::DecodeAuthorizationRequest(
      "{\"id\":\"" + id + "\",\"result\":\"" + result + "\"}", sale_id, index);
  EXPECT_TRUE(event.ok()) << event.status().ToString();
  return event.ok() ? std::move(event).value() : core::StoreEvent{};
}

std::string DetailOf(const Status& status, const std::string& name) {
  for (const auto& [n, v] : status.details()) {
    if (n == name) return v;
  }
  return "";
}

// The exposure recounted from the journal's entries alone: offline payments of sales
// minus those with an outcome or a void.
std::map<std::string, int64_t> RecountExposure(SqliteJournal& journal) {
  Result<std::vector<core::StoredSale>> all = journal.List(0, 1'000'000);
  EXPECT_TRUE(all.ok());
  std::map<std::pair<std::string, int64_t>, std::pair<std::string, int64_t>> open;
  for (const core::StoredSale& e : *all) {
    if (e.is_event()) {
      if (e.event->type == core::EventType::kPaymentAuthorization) {
        open.erase({e.event->sale_id, e.event->payment_index});
      }
      continue;
    }
    if (e.sale.type == core::SaleType::kVoid) {
      for (auto it = open.begin(); it != open.end();) {
        it = it->first.first == e.sale.ref ? open.erase(it) : std::next(it);
      }
      continue;
    }
    if (e.sale.type != core::SaleType::kSale) continue;
    for (size_t i = 0; i < e.sale.payments.size(); ++i) {
      if (e.sale.payments[i].offline) {
        open[{e.sale.id, static_cast<int64_t>(i)}] = {e.sale.terminal_id,
                                                      e.sale.payments[i].amount};
      }
    }
  }
  std::map<std::string, int64_t> per_terminal;
  for (const auto& [key, who] : open) per_terminal[who.first] += who.second;
  return per_terminal;
}

// The per-store configuration changes the limits while the hub runs: the next sale is
// checked against the new ones; a bad value changes nothing.
TEST_F(JournalTest, OfflineLimitsChangeAtRunTime) {
  JournalOptions options = Options();
  options.offline.card_max_amount = "100.00";
  auto journal = MustOpen(options);
  ASSERT_NE(journal, nullptr);
  EXPECT_TRUE(journal->Append(OfflineSale("c1", "T01", "60.00")).get().ok());

  OfflineLimits lower;
  lower.card_max_amount = "50.00";
  lower.store_max_outstanding = "80.00";
  ASSERT_TRUE(journal->SetOfflineLimits(lower).ok());
  EXPECT_EQ(journal->offline_limits().card_max_amount, "50.00");
  Result<Receipt> card = journal->Append(OfflineSale("c2", "T01", "50.01")).get();
  EXPECT_EQ(DetailOf(card.status(), "limit"), "offline.card_max_amount");
  // 60 already outstanding: the lower store limit leaves 20.
  Result<Receipt> store = journal->Append(OfflineSale("c3", "T01", "20.01")).get();
  EXPECT_EQ(DetailOf(store.status(), "limit"), "offline.store_max_outstanding");
  EXPECT_EQ(DetailOf(store.status(), "remaining"), "20.00");
  EXPECT_TRUE(journal->Append(OfflineSale("c4", "T01", "20.00")).get().ok());

  OfflineLimits bad = lower;
  bad.card_max_amount = "lots";
  EXPECT_EQ(journal->SetOfflineLimits(bad).code(), ErrorCode::kInvalidArgument);
  EXPECT_EQ(journal->offline_limits().card_max_amount, "50.00") << "nothing changed";

  OfflineLimits off;
  off.enabled = false;
  ASSERT_TRUE(journal->SetOfflineLimits(off).ok());
  Result<Receipt> refused = journal->Append(OfflineSale("c5", "T01", "1.00")).get();
  EXPECT_EQ(DetailOf(refused.status(), "limit"), "offline.enabled");
  OfflineLimits none;  // enabled, no limits
  ASSERT_TRUE(journal->SetOfflineLimits(none).ok());
  EXPECT_TRUE(journal->Append(OfflineSale("c6", "T01", "900.00")).get().ok());
}

TEST_F(JournalTest, OfflineLimitsRefuseBeforeStoringWithTheFigures) {
  JournalOptions options = Options();
  options.offline.card_max_amount = "100.00";
  options.offline.terminal_max_outstanding = "150.00";
  options.offline.store_max_outstanding = "250.00";
  auto journal = MustOpen(options);
  ASSERT_NE(journal, nullptr);

  Result<Receipt> big = journal->Append(OfflineSale("big", "T01", "100.01")).get();
  EXPECT_EQ(big.status().code(), ErrorCode::kOfflineLimitExceeded);
  EXPECT_EQ(big.status().field(), "payments[0].amount");
  EXPECT_EQ(DetailOf(big.status(), "limit"), "offline.card_max_amount");
  EXPECT_EQ(DetailOf(big.status(), "limit_amount"), "100.00");
  EXPECT_FALSE(journal->Get("big")->has_value());
  // Not offline: no limit applies.
  EXPECT_TRUE(journal->Append(OfflineSale("online", "T01", "900.00", false)).get().ok());

  EXPECT_TRUE(journal->Append(OfflineSale("a1", "T01", "100.00")).get().ok());
  Result<Receipt> t1 = journal->Append(OfflineSale("a2", "T01", "60.00")).get();
  EXPECT_EQ(t1.status().code(), ErrorCode::kOfflineLimitExceeded);
  EXPECT_EQ(DetailOf(t1.status(), "limit"), "offline.terminal_max_outstanding");
  EXPECT_EQ(DetailOf(t1.status(), "exposure"), "100.00");
  EXPECT_EQ(DetailOf(t1.status(), "remaining"), "50.00");
  EXPECT_TRUE(journal->Append(OfflineSale("a3", "T01", "50.00")).get().ok());  // exactly 150
  EXPECT_TRUE(journal->Append(OfflineSale("b1", "T02", "99.99")).get().ok());
  Result<Receipt> st = journal->Append(OfflineSale("b2", "T02", "0.02")).get();
  EXPECT_EQ(DetailOf(st.status(), "limit"), "offline.store_max_outstanding");
  EXPECT_EQ(DetailOf(st.status(), "exposure"), "249.99");
  EXPECT_EQ(DetailOf(st.status(), "remaining"), "0.01");
  EXPECT_TRUE(journal->Append(OfflineSale("b3", "T02", "0.01")).get().ok());  // exactly 250

  // An approval releases the exposure; a second outcome for it is refused.
  Receipt ok = MustAppendEvent(*journal, Outcome("auth-a1", "a1", "approved"));
  EXPECT_EQ(ok.type, "payment_authorization");
  EXPECT_EQ(ok.total, 10000);
  EXPECT_FALSE(MustAppendEvent(*journal, Outcome("auth-a1", "a1", "approved")).created);
  Result<Receipt> twice = journal->AppendEvent(Outcome("auth-a1b", "a1", "declined")).get();
  EXPECT_EQ(twice.status().code(), ErrorCode::kPaymentResolved);
  EXPECT_EQ(journal->AppendEvent(Outcome("auth-a1", "a1", "declined")).get().status().code(),
            ErrorCode::kIdConflict);
  EXPECT_TRUE(journal->Append(OfflineSale("a4", "T01", "100.00")).get().ok());
  // A decline releases it too and lists the payment for the manager.
  MustAppendEvent(*journal, Outcome("auth-b1", "b1", "declined"));
  Result<std::vector<OfflinePayment>> declined = journal->ListOfflinePayments("declined", 10);
  ASSERT_TRUE(declined.ok());
  ASSERT_EQ(declined->size(), 1u);
  EXPECT_EQ((*declined)[0].sale_id, "b1");
  EXPECT_EQ((*declined)[0].terminal_id, "T02");
  EXPECT_EQ((*declined)[0].amount, 9999);
  // A void releases what its sale had outstanding.
  Result<core::Sale> void_a3 = core::DecodeSale(
      std::string(R"({"id":"v-a3","terminal_id":"T01","type":"void","ref":"a3","created_at":")") +
      kCreatedAt +
      R"(","currency":"USD","lines":[{"sku":"A","qty":"1","unit_price":"50.00","tax_rate":"0"}],)"
      R"("payments":[]})");
  ASSERT_TRUE(void_a3.ok()) << void_a3.status().ToString();
  MustAppend(*journal, *void_a3);
  Result<OfflineExposure> exposure = journal->ReadOfflineExposure();
  ASSERT_TRUE(exposure.ok());
  EXPECT_EQ(exposure->store, 10000 + 1);  // a4 and b3
  EXPECT_EQ(exposure->terminals["T01"], 10000);
  EXPECT_EQ(exposure->outstanding, 2);
  EXPECT_GT(exposure->oldest_received_at_ms, 0);

  // Bad outcomes change nothing.
  EXPECT_EQ(journal->AppendEvent(Outcome("x1", "ghost", "approved")).get().status().code(),
            ErrorCode::kNotFound);
  EXPECT_EQ(journal->AppendEvent(Outcome("x2", "online", "approved")).get().status().field(),
            "payment_index");
  EXPECT_EQ(journal->AppendEvent(Outcome("x3", "a4", "approved", 1)).get().status().field(),
            "payment_index");
  EXPECT_EQ(journal->AppendEvent(Outcome("x4", "a3", "approved")).get().status().code(),
            ErrorCode::kPaymentResolved);  // voided
  EXPECT_FALSE(journal->Get("x4")->has_value());

  Result<OfflineExposure> writer = journal->WriterExposureForTest();
  ASSERT_TRUE(writer.ok());
  EXPECT_EQ(writer->store, exposure->store);
  EXPECT_EQ(writer->terminals, exposure->terminals);
  EXPECT_EQ(RecountExposure(*journal), exposure->terminals);

  options.offline.enabled = false;
  journal.reset();
  journal = MustOpen(options);
  ASSERT_NE(journal, nullptr);
  Result<Receipt> off = journal->Append(OfflineSale("c1", "T03", "1.00")).get();
  EXPECT_EQ(DetailOf(off.status(), "limit"), "offline.enabled");
  EXPECT_EQ(off.status().field(), "payments[0].offline");
  // The exposure came back from the file.
  Result<OfflineExposure> after = journal->WriterExposureForTest();
  ASSERT_TRUE(after.ok());
  EXPECT_EQ(after->store, 10001);

  options.offline.enabled = true;
  options.offline.card_max_amount = "12.3456";
  journal.reset();
  EXPECT_EQ(SqliteJournal::Open(options).status().code(), ErrorCode::kInvalidArgument);
}

TEST_F(JournalTest, SixtyFourTerminalsRacingToTheStoreLimitNeverPassItByACent) {
  JournalOptions options = Options();
  options.offline.store_max_outstanding = "500.00";
  auto journal = MustOpen(options);
  ASSERT_NE(journal, nullptr);
  std::atomic<int64_t> accepted_cents{0};
  std::atomic<int> refused{0};
  std::latch start(64);
  std::vector<std::thread> threads;
  for (int t = 0; t < 64; ++t) {
    threads.emplace_back([&, t] {
      start.arrive_and_wait();
      for (int i = 0; i < 4; ++i) {
        // 7.00, 7.01, ... 7.63: amounts that do not divide the limit evenly.
        const int64_t cents = 700 + t;
        const std::string amount = Str("7.", 100 + t).erase(2, 1);
        Result<Receipt> r =
            journal->Append(OfflineSale(Str("r-", t * 10 + i), Str("T", t), amount)).get();
        if (r.ok()) {
          accepted_cents += cents;
        } else {
          EXPECT_EQ(r.status().code(), ErrorCode::kOfflineLimitExceeded);
          ++refused;
        }
      }
    });
  }
  for (auto& thread : threads) thread.join();
  Result<OfflineExposure> exposure = journal->ReadOfflineExposure();
  ASSERT_TRUE(exposure.ok());
  EXPECT_LE(exposure->store, 50000);
  EXPECT_EQ(exposure->store, accepted_cents.load());
  // Full: not even the smallest of the refused sales would have fitted.
  EXPECT_GT(exposure->store + 700, 50000);
  EXPECT_GT(refused.load(), 0);
  std::map<std::string, int64_t> recount = RecountExposure(*journal);
  int64_t total = 0;
  for (const auto& [terminal, cents] : recount) total += cents;
  EXPECT_EQ(total, exposure->store);
}

[[noreturn]] void RunOfflineCrashChild(const JournalOptions& options, int fd) {
  Result<std::unique_ptr<SqliteJournal>> opened = SqliteJournal::Open(options);
  if (!opened.ok()) _exit(3);
  SqliteJournal& journal = **opened;
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0;; ++i) {
        const std::string id = Str(Str("o", t) + "-", i);
        Result<Receipt> r = journal.Append(OfflineSale(id, Str("T", t), "3.00")).get();
        if (r.ok() && i % 2 == 0) {
          Result<Receipt> outcome =
              journal.AppendEvent(Outcome("a-" + id, id, i % 4 == 0 ? "approved" : "declined"))
                  .get();
          if (!outcome.ok()) _exit(6);
        }
        if (r.ok()) {
          const std::string line = id + "\n";
          if (write(fd, line.data(), line.size()) != static_cast<ssize_t>(line.size())) _exit(5);
        }
      }
    });
  }
  for (auto& thread : threads) thread.join();
  _exit(0);
}

TEST_F(JournalTest, SigkillBetweenCommitAndAnswerNeverCountsExposureTwiceOrLosesIt) {
  JournalOptions options = Options();
  options.offline.store_max_outstanding = "1000000.00";
  int fds[2];
  ASSERT_EQ(pipe(fds), 0);
  fflush(stdout);
  pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    close(fds[0]);
    RunOfflineCrashChild(options, fds[1]);
  }
  close(fds[1]);
  FILE* in = fdopen(fds[0], "r");
  ASSERT_NE(in, nullptr);
  std::vector<std::string> acked;
  char* line = nullptr;
  size_t cap = 0;
  bool killed = false;
  ssize_t n;
  while ((n = getline(&line, &cap, in)) > 0) {
    acked.emplace_back(line, static_cast<size_t>(n - 1));
    if (!killed && acked.size() >= 400) {
      ASSERT_EQ(kill(pid, SIGKILL), 0);
      killed = true;
    }
  }
  free(line);
  fclose(in);
  int wstatus = 0;
  ASSERT_EQ(waitpid(pid, &wstatus, 0), pid);
  ASSERT_TRUE(killed);
  auto journal = MustOpen(options);
  ASSERT_NE(journal, nullptr);
  for (const std::string& id : acked) {
    ASSERT_TRUE(journal->Get(id)->has_value()) << "acknowledged sale lost: " << id;
  }
  Result<OfflineExposure> writer = journal->WriterExposureForTest();
  Result<OfflineExposure> table = journal->ReadOfflineExposure();
  ASSERT_TRUE(writer.ok() && table.ok());
  const std::map<std::string, int64_t> recount = RecountExposure(*journal);
  EXPECT_EQ(writer->terminals, recount);
  EXPECT_EQ(table->terminals, recount);
  int64_t total = 0;
  for (const auto& [terminal, cents] : recount) total += cents;
  EXPECT_EQ(writer->store, total);
  EXPECT_GT(total, 0);
  std::printf(
      "[ crash ] %zu offline sales acknowledged; exposure after restart %lld cents = "
      "the journal's recount\n",
      acked.size(), static_cast<long long>(total));
}

TEST_F(JournalTest, MigratesAVersion6DatabaseToVersion7) {
  JournalOptions options = Options();
  {
    auto journal = MustOpen(options);
    ASSERT_NE(journal, nullptr);
    MustAppendEvent(*journal, MakeEvent("o1", "T01", "drawer_open"));
    MustAppend(*journal, OfflineSale("old-offline", "T01", "5.00"));
  }
  // Back to v6: no offline_payments, the narrower type check.
  ExecRaw(options.path, kUndoV7 + "PRAGMA user_version=6");
  ASSERT_EQ(UserVersion(options.path), 6);
  auto journal = MustOpen(options);
  ASSERT_NE(journal, nullptr);
  EXPECT_EQ(UserVersion(options.path), 7);
  // A payment stored before v7 was never counted; its outcome is still recorded.
  EXPECT_EQ(journal->ReadOfflineExposure()->store, 0);
  Receipt outcome = MustAppendEvent(*journal, Outcome("auth-old", "old-offline", "approved"));
  EXPECT_TRUE(outcome.created);
  EXPECT_EQ(journal->ListOfflinePayments("approved", 10)->size(), 1u);
  EXPECT_EQ(journal->WriterExposureForTest()->store, 0);
  EXPECT_TRUE(journal->VerifyChain().ok());
}

}  // namespace
}  // namespace machub::journal
