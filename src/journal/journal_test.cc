// Journal tests (journal_test_support.h has the fixture): Appending, reading back and verifying;
// group commit; idempotency; a SIGKILL mid-stream.
#include "journal/internal.h"
#include "journal/journal_test_support.h"

namespace machub::journal {
namespace {

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

// The terminals table is written by every 64th commit only (and by Prune); a reopen
// takes the receipts after its counters_seq from their rows. Close writes nothing more,
// so this is also what a reopen after a kill or a power cut sees.
TEST_F(JournalTest, ReceiptNumbersContinueFromRowsTheCounterTableDoesNotCount) {
  {
    auto journal = MustOpen(Options());
    ASSERT_NE(journal, nullptr);
    for (int i = 1; i <= 100; ++i) {
      const std::string terminal = i % 2 ? "T-1" : "T-2";
      const Receipt receipt = MustAppend(*journal, MakeSale(Str("r", i), terminal));
      EXPECT_EQ(receipt.receipt_no, ReceiptNo(terminal, (i + 1) / 2));
    }
    // Written by the 1st and the 65th commit: through seq 65, T-1 at 33, T-2 at 32.
    EXPECT_EQ(*journal->QueryIntOnWriterForTest(
                  "SELECT CAST(value AS INTEGER) FROM meta WHERE key = 'counters_seq'"),
              65);
    EXPECT_EQ(*journal->QueryIntOnWriterForTest("SELECT max(last_receipt) FROM terminals"), 33);
  }
  auto journal = MustOpen(Options());
  ASSERT_NE(journal, nullptr);
  EXPECT_EQ(MustAppend(*journal, MakeSale("next-1", "T-1")).receipt_no, "T-1-000051");
  EXPECT_EQ(MustAppend(*journal, MakeSale("next-2", "T-2")).receipt_no, "T-2-000051");
  EXPECT_EQ(MustAppend(*journal, MakeSale("next-3", "T-3")).receipt_no, "T-3-000001");
}

TEST_F(JournalTest, ReceiptCounterReadsBackWhatReceiptNoWrote) {
  EXPECT_EQ(ReceiptCounter("T-1", ReceiptNo("T-1", 7)), 7);
  EXPECT_EQ(ReceiptCounter("T09", ReceiptNo("T09", 1'000'000)), 1'000'000);
  EXPECT_EQ(ReceiptCounter("T09", "T09-000012"), 12);
  EXPECT_EQ(ReceiptCounter("T09", "T08-000012"), std::nullopt);
  EXPECT_EQ(ReceiptCounter("T09", "T09000012"), std::nullopt);
  EXPECT_EQ(ReceiptCounter("T09", "T09-"), std::nullopt);
  EXPECT_EQ(ReceiptCounter("T09", "T09-12a"), std::nullopt);
  EXPECT_EQ(ReceiptCounter("T09", "T09-000000"), std::nullopt);
  EXPECT_EQ(ReceiptCounter("T09", "T09--00001"), std::nullopt);
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
  // Killed mid-stream, after 600 acknowledgements: appends are in flight.
  KilledChild run = RunAndKill([&](int fd) { RunCrashChild(options, fd); },
                               [n = 0](const std::string&) mutable { return ++n >= 600; });
  ASSERT_TRUE(run.killed) << "child ended early, status " << run.wstatus;
  ASSERT_TRUE(WIFSIGNALED(run.wstatus));
  EXPECT_EQ(WTERMSIG(run.wstatus), SIGKILL);
  const std::vector<std::string>& acked = run.lines;

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

}  // namespace
}  // namespace machub::journal
