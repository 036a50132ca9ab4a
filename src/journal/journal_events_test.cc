// Journal tests (journal_test_support.h has the fixture): Store events: drawers, cash in/out, Z
// reports, in the same seq and chain as sales.
#include "journal/journal_test_support.h"

namespace machub::journal {
namespace {

// ---- store events (issue #8) ----

core::StoreEvent MakeZ(const std::string& id, const std::string& extra = "") {
  Result<core::StoreEvent> z = core::DecodeZRequest("{\"id\":\"" + id + "\",\"created_at\":\"" +
                                                    std::string(kCreatedAt) + "\"" + extra + "}");
  EXPECT_TRUE(z.ok()) << z.status().ToString();
  return z.ok() ? std::move(z).value() : core::StoreEvent{};
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
  EXPECT_EQ(UserVersion(options.path), 8);
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
  // Killed once 40 Z reports are acknowledged: Z reports and drawer closes are in flight.
  KilledChild run = RunAndKill([&](int fd) { RunStoreDayCrashChild(options, fd); },
                               [zs = 0](const std::string& line) mutable {
                                 if (line[0] == 'z') ++zs;
                                 return zs >= 40;
                               });
  ASSERT_TRUE(run.killed) << "child ended early, status " << run.wstatus;
  std::map<std::string, std::string> acked;  // id -> receipt_no
  for (const std::string& text : run.lines) {
    const size_t space = text.find(' ');
    acked[text.substr(0, space)] = text.substr(space + 1);
  }

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

}  // namespace
}  // namespace machub::journal
