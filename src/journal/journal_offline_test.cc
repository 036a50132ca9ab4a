// Journal tests (journal_test_support.h has the fixture): Offline card payments: exposure limits
// enforced at commit, outcomes, crash safety.
#include "journal/journal_test_support.h"

namespace machub::journal {
namespace {

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
  KilledChild run = RunAndKill([&](int fd) { RunOfflineCrashChild(options, fd); },
                               [n = 0](const std::string&) mutable { return ++n >= 400; });
  ASSERT_TRUE(run.killed) << "child ended early, status " << run.wstatus;
  const std::vector<std::string>& acked = run.lines;
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
  EXPECT_EQ(UserVersion(options.path), 8);
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
