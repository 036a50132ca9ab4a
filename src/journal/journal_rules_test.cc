// Journal tests (journal_test_support.h has the fixture): Refunds and voids and their rules,
// decided by the single writer; clock skew, an untrusted clock, received_at that never goes
// backwards; the page size of new journals.
#include "journal/journal_test_support.h"

namespace machub::journal {
namespace {

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

// New journals take JournalOptions::page_size (512 bytes by default: the fewest bytes
// written per sale, docs/BENCHMARKS.md "SD-card wear"); a journal created with another
// size keeps it, and a bad size is refused.
TEST_F(JournalTest, PageSizeAppliesToNewJournalsOnly) {
  {
    auto journal = MustOpen(Options());
    ASSERT_NE(journal, nullptr);
    EXPECT_EQ(*journal->QueryIntOnWriterForTest("PRAGMA page_size"), 512);
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
  auto reopened = MustOpen(Options());  // 512 asked, 512 kept
  ASSERT_NE(reopened, nullptr);
  EXPECT_EQ(*reopened->QueryIntOnWriterForTest("PRAGMA page_size"), 512);
  JournalOptions again = Options();
  again.path = old.path;  // default 512 asked of a 4096 journal: it stays 4096 and works
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

}  // namespace
}  // namespace machub::journal
