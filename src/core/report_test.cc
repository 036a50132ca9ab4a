#include "core/report.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "core/sale_codec.h"

namespace machub::core {
namespace {

constexpr char kAt[] = R"("created_at":"2026-12-05T09:00:00Z","currency":"USD")";

Sale MustSale(const std::string& json) {
  Result<Sale> sale = DecodeSale(json);
  EXPECT_TRUE(sale.ok()) << sale.status().ToString();
  return sale.ok() ? *sale : Sale{};
}

StoreEvent MustEvent(const std::string& json) {
  Result<StoreEvent> event = DecodeEventRequest(json);
  EXPECT_TRUE(event.ok()) << event.status().ToString();
  return event.ok() ? *event : StoreEvent{};
}

JournalEntry SaleAt(int64_t seq, std::string receipt, const std::string& json) {
  return JournalEntry{seq, std::move(receipt), 0, MustSale(json)};
}

JournalEntry EventAt(int64_t seq, const std::string& json) {
  return JournalEntry{seq, "", 0, MustEvent(json)};
}

// A small day, every figure worked out by hand in the comments.
std::vector<JournalEntry> Day() {
  const std::string at = kAt;
  return {
      EventAt(1, R"({"id":"o1","terminal_id":"T01","type":"drawer_open",)" + at +
                     R"(,"amount":"100.00"})"),
      // 2 x 5.00 at 10 %: net 10.00, tax 1.00, total 11.00; cash 20.00, change 9.00.
      SaleAt(2, "T01-000001",
             R"({"id":"s1","terminal_id":"T01",)" + at +
                 R"(,"lines":[{"sku":"A","qty":"2","unit_price":"5.00","tax_rate":"0.1"}],)"
                 R"("payments":[{"method":"cash","amount":"20.00"}]})"),
      // 3.33 at 8.25 %: tax 0.274725 -> 0.27, total 3.60, offline card, T02 (no drawer).
      SaleAt(3, "T02-000001",
             R"({"id":"s2","terminal_id":"T02",)" + at +
                 R"(,"lines":[{"sku":"B","qty":"1","unit_price":"3.33","tax_rate":"0.0825"}],)"
                 R"("payments":[{"method":"card","amount":"3.60","card_token":"tok_1",)"
                 R"("last4":"4242","offline":true}]})"),
      // 1.5 x 2.00 untaxed: 3.00 by card (online).
      SaleAt(4, "T01-000002",
             R"({"id":"s3","terminal_id":"T01",)" + at +
                 R"(,"lines":[{"sku":"C","qty":"1.5","unit_price":"2.00"}],)"
                 R"("payments":[{"method":"card","amount":"3.00","card_token":"tok_2"}]})"),
      // T02 refunds one unit of T01's sale in cash: 5.00 + 0.50 tax.
      SaleAt(5, "T02-000002",
             R"({"id":"r1","terminal_id":"T02","type":"refund","ref":"s1",)" + at +
                 R"(,"lines":[{"sku":"A","qty":"1","unit_price":"5.00","tax_rate":"0.1"}],)"
                 R"("payments":[{"method":"cash","amount":"5.50"}]})"),
      EventAt(6, R"({"id":"po1","terminal_id":"T01","type":"cash_out",)" + at +
                     R"(,"amount":"2","reason":"milk"})"),
      // Expected 100.00 + 11.00 - 2.00 = 109.00; counted 108.50: variance -0.50.
      EventAt(7, R"({"id":"c1","terminal_id":"T01","type":"drawer_close",)" + at +
                     R"(,"counted":"108.50"})"),
      SaleAt(8, "T01-000003",
             R"({"id":"v1","terminal_id":"T01","type":"void","ref":"s3",)" + at +
                 R"(,"lines":[{"sku":"C","qty":"1.5","unit_price":"2.00"}],)"
                 R"("payments":[{"method":"card","amount":"3.00","card_token":"tok_2"}]})"),
  };
}

TEST(ReportTest, FiguresOfADay) {
  Result<ReportFigures> r = ComputeReport(Day(), "USD");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->first_seq, 1);
  EXPECT_EQ(r->last_seq, 8);
  EXPECT_EQ(r->entries, 8);
  EXPECT_EQ(r->sales, (TypeTotals{3, 1633, 127, 1760}));
  EXPECT_EQ(r->refunds, (TypeTotals{1, 500, 50, 550}));
  EXPECT_EQ(r->voids, (TypeTotals{1, 300, 0, 300}));
  EXPECT_EQ(r->net(), (TypeTotals{3, 833, 77, 910}));
  ASSERT_EQ(r->by_method.size(), 2u);
  EXPECT_EQ(r->by_method.at("cash"), (MethodTotals{1, 1100, 1, 550}));
  EXPECT_EQ(r->by_method.at("card"), (MethodTotals{2, 660, 1, 300}));
  // Tenders and lines tell the same story: net by method == net total.
  EXPECT_EQ(r->by_method.at("cash").net() + r->by_method.at("card").net(), r->net().total);
  ASSERT_EQ(r->by_tax_rate.size(), 3u);
  EXPECT_EQ(r->by_tax_rate.at(0), (RateTotals{0, 0}));
  EXPECT_EQ(r->by_tax_rate.at(82500), (RateTotals{333, 27}));
  EXPECT_EQ(r->by_tax_rate.at(100000), (RateTotals{500, 50}));
  EXPECT_EQ(r->terminals.at("T01"), (TerminalFigures{"T01-000001", "T01-000003", 2, 0, 1}));
  EXPECT_EQ(r->terminals.at("T02"), (TerminalFigures{"T02-000001", "T02-000002", 1, 1, 0}));
  ASSERT_EQ(r->drawers.size(), 1u);
  const DrawerSession& d = r->drawers[0];
  EXPECT_EQ(d.terminal_id, "T01");
  EXPECT_EQ(d.opened_seq, 1);
  EXPECT_EQ(d.closed_seq, 7);
  EXPECT_EQ(d.float_amount, 10000);
  EXPECT_EQ(d.cash_sales, 1100);
  EXPECT_EQ(d.cash_out, 200);
  EXPECT_EQ(d.expected(), 10900);
  EXPECT_EQ(d.counted, 10850);
  EXPECT_EQ(d.variance(), -50);
  EXPECT_EQ(r->cash_without_drawer.at("T02"), -550);
  EXPECT_EQ(r->offline_card_count, 1);
  EXPECT_EQ(r->offline_card_amount, 360);
  EXPECT_EQ(r->cash_in, 0);
  EXPECT_EQ(r->cash_out, 200);
  EXPECT_EQ(r->other_currency_entries, 0);
}

TEST(ReportTest, CanonicalJsonOfADay) {
  Result<ReportFigures> r = ComputeReport(Day(), "USD");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(
      ReportFiguresJson(*r),
      R"({"currency":"USD","first_seq":1,"last_seq":8,"entries":8,)"
      R"("sales":{"count":3,"subtotal":"16.33","tax":"1.27","total":"17.60"},)"
      R"("refunds":{"count":1,"subtotal":"5.00","tax":"0.50","total":"5.50"},)"
      R"("voids":{"count":1,"subtotal":"3.00","tax":"0.00","total":"3.00"},)"
      R"("net":{"count":3,"subtotal":"8.33","tax":"0.77","total":"9.10"},)"
      R"("by_method":[{"method":"card","sales_count":2,"collected":"6.60","refunds_count":1,)"
      R"("returned":"3.00","net":"3.60"},{"method":"cash","sales_count":1,"collected":"11.00",)"
      R"("refunds_count":1,"returned":"5.50","net":"5.50"}],)"
      R"("by_tax_rate":[{"rate":"0","net":"0.00","tax":"0.00"},)"
      R"({"rate":"0.0825","net":"3.33","tax":"0.27"},{"rate":"0.1","net":"5.00","tax":"0.50"}],)"
      R"("terminals":[{"terminal_id":"T01","first_receipt":"T01-000001",)"
      R"("last_receipt":"T01-000003","sales":2,"refunds":0,"voids":1},)"
      R"({"terminal_id":"T02","first_receipt":"T02-000001","last_receipt":"T02-000002",)"
      R"("sales":1,"refunds":1,"voids":0}],)"
      R"("drawers":[{"terminal_id":"T01","opened_seq":1,"closed_seq":7,"float":"100.00",)"
      R"("cash_sales":"11.00","cash_refunds":"0.00","cash_in":"0.00","cash_out":"2.00",)"
      R"("expected":"109.00","counted":"108.50","variance":"-0.50"}],)"
      R"("cash_without_drawer":[{"terminal_id":"T02","amount":"-5.50"}],)"
      R"("offline_card":{"count":1,"amount":"3.60"},"cash_in":"0.00","cash_out":"2.00",)"
      R"("z_reports":0,"other_currency_entries":0})");
}

TEST(ReportTest, OpenDrawerShowsExpectedWithoutCounted) {
  std::vector<JournalEntry> day = Day();
  day.resize(6);  // before the close
  Result<ReportFigures> r = ComputeReport(day, "USD");
  ASSERT_TRUE(r.ok());
  ASSERT_EQ(r->drawers.size(), 1u);
  EXPECT_EQ(r->drawers[0].closed_seq, 0);
  EXPECT_FALSE(r->drawers[0].counted.has_value());
  EXPECT_FALSE(r->drawers[0].variance().has_value());
  EXPECT_EQ(r->drawers[0].expected(), 10900);
  EXPECT_EQ(ReportFiguresJson(*r).find("\"counted\""), std::string::npos);
}

TEST(ReportTest, ZReportsSplitTheDays) {
  std::vector<JournalEntry> entries = Day();
  StoreEvent z;
  z.id = "z1";
  z.type = EventType::kZReport;
  z.currency = "USD";
  z.z_number = 1;
  entries.push_back(JournalEntry{9, "Z1", 0, z});
  EXPECT_EQ(EntriesSinceLastZ(entries), 9u);
  const std::string at = kAt;
  entries.push_back(EventAt(10, R"({"id":"o2","terminal_id":"T03","type":"drawer_open",)" + at +
                                    R"(,"amount":"50.00"})"));
  EXPECT_EQ(EntriesSinceLastZ(entries), 9u);
  EXPECT_EQ(EntriesSinceLastZ(Day()), 0u);

  const std::vector<JournalEntry> next(entries.begin() + 9, entries.end());
  Result<ReportFigures> r = ComputeReport(next, "USD");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->first_seq, 10);
  EXPECT_EQ(r->sales.count, 0);
  ASSERT_EQ(r->drawers.size(), 1u);
  EXPECT_EQ(r->drawers[0].expected(), 5000);

  Result<ReportFigures> all = ComputeReport(entries, "USD");
  ASSERT_TRUE(all.ok());
  EXPECT_EQ(all->z_reports, 1);
}

TEST(ReportTest, OtherCurrencyIsCountedNotMixed) {
  std::vector<JournalEntry> entries = {
      SaleAt(1, "T01-000001",
             R"({"id":"e1","terminal_id":"T01","created_at":"2026-12-05T09:00:00Z",)"
             R"("currency":"EUR","lines":[{"sku":"A","qty":"1","unit_price":"1.00"}],)"
             R"("payments":[{"method":"cash","amount":"1.00"}]})")};
  Result<ReportFigures> r = ComputeReport(entries, "USD");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->other_currency_entries, 1);
  EXPECT_EQ(r->sales.count, 0);
  EXPECT_TRUE(r->terminals.empty());
}

TEST(ReportTest, RefusesEntriesOutOfOrder) {
  std::vector<JournalEntry> entries = Day();
  std::swap(entries[2], entries[3]);
  EXPECT_EQ(ComputeReport(entries, "USD").status().code(), ErrorCode::kInvalidArgument);
  Result<ReportFigures> empty = ComputeReport({}, "JPY");
  ASSERT_TRUE(empty.ok());
  EXPECT_EQ(empty->first_seq, 0);
  EXPECT_NE(ReportFiguresJson(*empty).find(R"("cash_in":"0","cash_out":"0")"), std::string::npos);
}

TEST(ReportTest, HugeSumsFailInsteadOfWrapping) {
  std::vector<JournalEntry> entries;
  for (int i = 0; i < 10'000; ++i) {
    entries.push_back(
        SaleAt(i + 1, "T01-" + std::to_string(i),
               R"({"id":"h)" + std::to_string(i) +
                   R"(","terminal_id":"T01","created_at":"2026-12-05T09:00:00Z","currency":"USD",)"
                   R"("lines":[{"sku":"A","qty":"1","unit_price":"10000000000000.00"}],)"
                   R"("payments":[{"method":"card","amount":"10000000000000.00",)"
                   R"("card_token":"tok"}]})"));
  }
  EXPECT_EQ(ComputeReport(entries, "USD").status().code(), ErrorCode::kInvalidArgument);
}

}  // namespace
}  // namespace machub::core
