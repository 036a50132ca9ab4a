// Store events (issue #8) downstream of the journal: the S3 objects carry them (JSON Lines
// with "type", one CSV row each), `machub verify` re-derives their canonical bytes and
// walks the chain across mixed sales and events, and an independent reader
// (tests/tools/recompute_report.py) recomputes the Z figures from the objects alone.
//
// The entries are chained here by hand (core::CanonicalSale / CanonicalEvent,
// CanonicalRecord, ChainHash) exactly as the journal chains them, so these tests do not
// depend on the journal; the uploader path over a real journal is in sync_test.cc.

#include <gtest/gtest.h>
#include <sys/wait.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "cloud/local_sink.h"
#include "core/chain.h"
#include "core/report.h"
#include "core/sale_codec.h"
#include "core/sha256.h"
#include "core/store_event.h"
#include "core/time_format.h"
#include "sync/batch_format.h"
#include "sync/verify.h"
#include "temp_dir.h"

#ifndef MACHUB_SOURCE_DIR
#error "MACHUB_SOURCE_DIR must name the source tree (for tests/tools/recompute_report.py)"
#endif

namespace machub::sync {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

constexpr char kStore[] = "S001";
constexpr char kDay[] = "2026-11-27T10:15:00Z";

// Builds a store's chain of entries the way the journal does.
class ChainBuilder {
 public:
  ChainBuilder() : prev_(core::GenesisHash(kStore)), received_(*core::ParseRfc3339(kDay)) {}

  const core::StoredSale& AddSale(const json& request) {
    Result<core::Sale> sale = core::DecodeSale(request.dump());
    EXPECT_TRUE(sale.ok()) << sale.status().ToString() << " for " << request.dump();
    core::StoredSale stored;
    stored.sale = sale.ok() ? *sale : core::Sale{};
    const std::string terminal = stored.sale.terminal_id;
    char receipt[64];
    std::snprintf(receipt, sizeof(receipt), "%s-%06d", terminal.c_str(), ++receipts_[terminal]);
    stored.receipt_no = receipt;
    stored.canonical = core::CanonicalSale(stored.sale);
    return Chain(std::move(stored));
  }

  const core::StoredSale& AddEvent(const json& request) {
    Result<core::StoreEvent> event = core::DecodeEventRequest(request.dump());
    EXPECT_TRUE(event.ok()) << event.status().ToString() << " for " << request.dump();
    return AddEvent(event.ok() ? *event : core::StoreEvent{}, "");
  }

  const core::StoredSale& AddEvent(core::StoreEvent event, std::string receipt_no) {
    core::StoredSale stored;
    stored.receipt_no = std::move(receipt_no);
    stored.canonical = core::CanonicalEvent(event);
    stored.event = std::move(event);
    return Chain(std::move(stored));
  }

  // A Z report over every entry since the previous one, with the figures of
  // core::ComputeReport, as the hub closes the day.
  const core::StoredSale& AddZ(const std::string& currency) {
    std::vector<core::JournalEntry> entries = Entries();
    const size_t since = core::EntriesSinceLastZ(entries);
    entries.erase(entries.begin(), entries.begin() + static_cast<std::ptrdiff_t>(since));
    Result<core::ReportFigures> figures = core::ComputeReport(entries, currency);
    EXPECT_TRUE(figures.ok()) << figures.status().ToString();
    core::StoreEvent z;
    z.id = "z-" + std::to_string(++z_number_);
    z.type = core::EventType::kZReport;
    z.created_at_ms = received_;
    z.currency = currency;
    z.cashier = "manager";
    z.z_number = z_number_;
    z.first_seq = entries.empty() ? static_cast<int64_t>(stored_.size()) + 1 : entries.front().seq;
    z.last_seq = static_cast<int64_t>(stored_.size());
    z.figures = core::ReportFiguresJson(*figures);
    last_z_figures_ = z.figures;
    return AddEvent(std::move(z), "Z" + std::to_string(z_number_));
  }

  std::vector<core::JournalEntry> Entries(int64_t first = 1, int64_t last = INT64_MAX) const {
    std::vector<core::JournalEntry> out;
    for (const core::StoredSale& s : stored_) {
      if (s.seq < first || s.seq > last) continue;
      core::JournalEntry e;
      e.seq = s.seq;
      e.receipt_no = s.receipt_no;
      e.received_at_ms = s.received_at_ms;
      if (s.is_event()) {
        e.body = *s.event;
      } else {
        e.body = s.sale;
      }
      out.push_back(std::move(e));
    }
    return out;
  }

  const std::vector<core::StoredSale>& stored() const { return stored_; }
  const std::string& last_z_figures() const { return last_z_figures_; }

 private:
  const core::StoredSale& Chain(core::StoredSale stored) {
    stored.seq = static_cast<int64_t>(stored_.size()) + 1;
    received_ += 1000;
    stored.received_at_ms = received_;
    stored.prev_hash = prev_;
    stored.hash = core::ChainHash(
        prev_, core::CanonicalRecord(stored.seq, stored.receipt_no, stored.received_at_ms,
                                     stored.clock_skew, stored.canonical));
    prev_ = stored.hash;
    stored_.push_back(std::move(stored));
    return stored_.back();
  }

  std::string prev_;
  int64_t received_;
  std::map<std::string, int> receipts_;
  int64_t z_number_ = 0;
  std::string last_z_figures_;
  std::vector<core::StoredSale> stored_;
};

json Line(const std::string& sku, const std::string& qty, const std::string& price,
          const std::string& rate) {
  json line = {{"sku", sku}, {"name", "Item " + sku}, {"qty", qty}, {"unit_price", price}};
  if (!rate.empty()) line["tax_rate"] = rate;
  return line;
}

// Lines and payments as vectors: a braced list of one json is ambiguous (a one-element
// array for GCC, the element itself for Clang), a vector is not.
json Sale(const std::string& id, const std::string& terminal, const std::vector<json>& lines,
          const std::vector<json>& payments, const std::string& currency = "USD") {
  json sale = {{"id", id},
               {"terminal_id", terminal},
               {"type", "sale"},
               {"created_at", kDay},
               {"currency", currency}};
  sale["lines"] = json::array();
  for (const json& l : lines) sale["lines"].push_back(l);
  sale["payments"] = json::array();
  for (const json& p : payments) sale["payments"].push_back(p);
  return sale;
}

json Return(const std::string& type, const std::string& id, const std::string& terminal,
            const std::string& ref, const std::vector<json>& lines,
            const std::vector<json>& payments) {
  json r = Sale(id, terminal, lines, payments);
  r["type"] = type;
  r["ref"] = ref;
  return r;
}

json Event(const std::string& type, const std::string& id, const std::string& terminal,
           json members) {
  json e = {{"id", id},           {"terminal_id", terminal}, {"type", type},
            {"created_at", kDay}, {"currency", "USD"},       {"cashier", "Ann"}};
  for (auto& [k, v] : members.items()) e[k] = v;
  return e;
}

// A store day on four terminals with every kind of figure: drawers (one closed with
// counts, one left open), cash sales with change, an offline card sale, a cross-terminal
// refund, a void, paid-in and paid-out (one on a terminal without a drawer, one whose
// reason looks like a formula), a sale in another currency, Z1, then the next day's start
// and Z2, then an offline card sale and its payment_authorization.
ChainBuilder StoreDay() {
  ChainBuilder c;
  c.AddEvent(Event("drawer_open", "open-1", "T01", {{"amount", "100.00"}}));
  c.AddEvent(Event("drawer_open", "open-2", "T02", {{"amount", "50.00"}}));
  c.AddSale(Sale("s1", "T01",
                 {Line("a", "2", "3.50", "0.0825"), Line("b", "1", "10.00", ""),
                  Line("c", "0.5", "4.99", "0.2")},
                 {{{"method", "cash"}, {"amount", "30.00"}}}));
  c.AddSale(Sale("s2", "T02", {Line("a", "1", "5.00", "0.0825")},
                 {{{"method", "card"},
                   {"amount", "5.41"},
                   {"card_token", "tok_1"},
                   {"last4", "4242"},
                   {"offline", true}}}));
  c.AddSale(
      Sale("s3", "T03", {Line("d", "1", "9.99", "")}, {{{"method", "cash"}, {"amount", "10.00"}}}));
  c.AddSale(Return("refund", "r1", "T02", "s1", {Line("a", "1", "3.50", "0.0825")},
                   {{{"method", "cash"}, {"amount", "3.79"}}}));
  c.AddEvent(Event("cash_in", "in-1", "T01", {{"amount", "20.00"}, {"reason", "float top-up"}}));
  c.AddEvent(Event("cash_out", "out-1", "T02",
                   {{"amount", "15.00"}, {"reason", "=HYPERLINK(\"http://x\")"}}));
  c.AddSale(Sale("yen", "T01", {Line("e", "1", "350", "0.08")},
                 {{{"method", "cash"}, {"amount", "1000"}}}, "JPY"));
  c.AddSale(Return("void", "v1", "T02", "s2", {Line("a", "1", "5.00", "0.0825")},
                   {{{"method", "card"}, {"amount", "5.41"}, {"card_token", "tok_1"}}}));
  c.AddSale(
      Sale("s4", "T02", {Line("f", "3", "2.00", "0.0825")},
           {{{"method", "cash"}, {"amount", "5.00"}}, {{"method", "gift"}, {"amount", "1.50"}}}));
  c.AddEvent(Event("drawer_close", "close-1", "T01",
                   {{"counted", "140.00"},
                    {"counts", json::array({{{"denomination", "20.00"}, {"count", 7}}})}}));
  c.AddEvent(Event("cash_out", "out-2", "T04", {{"amount", "5.00"}, {"reason", "stamps"}}));
  c.AddZ("USD");
  c.AddEvent(Event("drawer_open", "open-3", "T01", {{"amount", "80.00"}}));
  c.AddSale(Sale("s5", "T01", {Line("a", "1", "3.50", "0.0825")},
                 {{{"method", "cash"}, {"amount", "4.00"}}}));
  c.AddZ("USD");
  c.AddSale(Sale("s6", "T02", {Line("b", "2", "10.00", "")},
                 {{{"method", "card"}, {"amount", "20.00"}, {"card_token", "tok_2"}}}));
  c.AddSale(Sale("s7", "T02", {Line("b", "1", "10.00", "")},
                 {{{"method", "card"},
                   {"amount", "10.00"},
                   {"card_token", "tok_3"},
                   {"last4", "1881"},
                   {"offline", true}}}));
  // The processor's answer to s7's offline payment (issue #9); the hub fills terminal,
  // currency and amount from the sale.
  Result<core::StoreEvent> auth = core::DecodeAuthorizationRequest(
      R"({"id":"auth-7","result":"approved","auth_code":"A1B2","created_at":"2026-11-27T10:15:00Z"})",
      "s7", 0);
  EXPECT_TRUE(auth.ok()) << auth.status().ToString();
  if (auth.ok()) {
    auth->terminal_id = "T02";
    auth->currency = "USD";
    auth->amount = 1000;
    c.AddEvent(*auth, "");
  }
  return c;
}

// The object of one batch, as the uploader writes it (bytes, key, metadata).
cloud::PutRequest ObjectOf(const std::vector<core::StoredSale>& all, size_t from, size_t to,
                           BatchFormat format) {
  std::vector<core::StoredSale> batch(all.begin() + static_cast<std::ptrdiff_t>(from),
                                      all.begin() + static_cast<std::ptrdiff_t>(to));
  cloud::PutRequest put;
  put.key = BatchKey("pos", kStore, batch.front().seq, batch.back().seq,
                     batch.front().received_at_ms, format);
  Result<std::string> gz = GzipDeterministic(EncodeBatch(kStore, batch, format));
  EXPECT_TRUE(gz.ok());
  put.body = *gz;
  put.metadata = ObjectMetadata(
      kStore, format, batch.front().seq, batch.back().seq, core::ToHex(batch.front().prev_hash),
      core::ToHex(batch.front().hash), core::ToHex(batch.back().hash), Sha256Hex(put.body));
  return put;
}

class StoreDayObjectsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(tmp_.ok());
    dir_ = tmp_.path();
    auto sink = cloud::LocalSink::Open({.root = dir_ + "/sink", .fsync = false});
    ASSERT_TRUE(sink.ok());
    sink_ = std::move(*sink);
  }
  // Uploads `day` as objects cut at `cuts` (indexes into its entries).
  void Upload(const ChainBuilder& day, std::vector<size_t> cuts, BatchFormat format) {
    const auto& all = day.stored();
    cuts.push_back(all.size());
    size_t from = 0;
    for (size_t to : cuts) {
      ASSERT_TRUE(sink_->Put(ObjectOf(all, from, to, format)).ok());
      from = to;
    }
  }

  // Replaces `from` by `to` in the object holding it, keeping its sha256 metadata
  // consistent (a forger who rewrites the object and its metadata).
  void Forge(const std::string& from, const std::string& to) {
    auto listed = sink_->List("pos/sales/");
    ASSERT_TRUE(listed.ok());
    for (auto& [key, info] : listed->objects) {
      std::string raw = *Gunzip(sink_->Get(key)->body);
      const size_t at = raw.find(from);
      if (at == std::string::npos) continue;
      raw.replace(at, from.size(), to);
      cloud::PutRequest put;
      put.key = key;
      put.body = *GzipDeterministic(raw);
      put.metadata = sink_->Head(key)->metadata;
      put.metadata["sha256"] = Sha256Hex(put.body);
      fs::remove(sink_->root() + "/" + key);
      ASSERT_TRUE(sink_->Put(put).ok());
      return;
    }
    FAIL() << "no object holds " << from;
  }

  machub::testing::TempDir tmp_{"store_day_test"};  // removed after everything below
  std::string dir_;
  std::unique_ptr<cloud::LocalSink> sink_;
};

// ---- Batch format ----

TEST_F(StoreDayObjectsTest, JsonLinesCarryEventsWithTypeAndWithoutUploadBookkeeping) {
  ChainBuilder day = StoreDay();
  std::vector<core::StoredSale> all = day.stored();
  const std::string raw = EncodeBatch(kStore, all, BatchFormat::kJsonl);
  std::vector<std::string> lines;
  for (size_t start = 0; start < raw.size();) {
    const size_t end = raw.find('\n', start);
    ASSERT_NE(end, std::string::npos);
    lines.push_back(raw.substr(start, end - start));
    start = end + 1;
  }
  ASSERT_EQ(lines.size(), all.size());
  for (size_t i = 0; i < all.size(); ++i) {
    // Golden: the stored entry's JSON (StoredEventJson for events) minus "uploaded".
    std::string expected = core::StoredSaleJson(all[i]);
    const std::string suffix = ",\"uploaded\":false}";
    ASSERT_TRUE(expected.ends_with(suffix)) << expected;
    expected.replace(expected.size() - suffix.size(), std::string::npos, "}");
    EXPECT_EQ(lines[i], expected);
    json line = json::parse(lines[i]);
    EXPECT_FALSE(line.contains("uploaded"));
    EXPECT_EQ(line["seq"], all[i].seq);
    EXPECT_EQ(line["hash"], core::ToHex(all[i].hash));
  }
  json open = json::parse(lines[0]);
  EXPECT_EQ(open["type"], "drawer_open");
  EXPECT_EQ(open["amount"], "100.00");
  EXPECT_EQ(open["receipt_no"], "");
  json z = json::parse(lines[13]);
  EXPECT_EQ(z["type"], "z_report");
  EXPECT_EQ(z["receipt_no"], "Z1");
  EXPECT_EQ(z["z_number"], 1);
  EXPECT_EQ(z["first_seq"], 1);
  EXPECT_EQ(z["last_seq"], 13);
  EXPECT_EQ(z["figures"]["cash_out"], "20.00");
  // An uploaded row gives the same bytes (the flag is bookkeeping, not data).
  for (core::StoredSale& s : all) s.uploaded = true;
  EXPECT_EQ(EncodeBatch(kStore, all, BatchFormat::kJsonl), raw);
}

TEST_F(StoreDayObjectsTest, CsvHasOneRowPerEventWithTheSaleColumnsStable) {
  ChainBuilder day = StoreDay();
  const std::vector<core::StoredSale>& all = day.stored();
  const std::string csv = EncodeBatch(kStore, all, BatchFormat::kCsv);
  // The header is the sales' header: old objects and the Athena DDL read as before.
  ASSERT_TRUE(csv.starts_with(std::string(CsvHeader()) + "\n"));
  auto row_of = [&](size_t i) {
    std::string out;
    AppendSaleRecord(&out, BatchFormat::kCsv, kStore, all[i]);
    return out;
  };
  const auto hashes = [&](size_t i) {
    return core::ToHex(all[i].hash) + "," + core::ToHex(all[i].prev_hash) + ",false\n";
  };
  // drawer_open: the float in sale_total.
  EXPECT_EQ(row_of(0),
            "S001,1,open-1,,T01,drawer_open,,2026-11-27T10:15:00.000Z,2026-11-27T10:15:01.000Z,"
            "false,USD,Ann,,,,,,,,,,,,100.00,,,," +
                hashes(0));
  // cash_out: the amount in sale_total, the reason in `name`, neutralised like a sale's
  // text cells (a formula-looking reason is quoted with a leading apostrophe).
  EXPECT_EQ(row_of(7),
            "S001,8,out-1,,T02,cash_out,,2026-11-27T10:15:00.000Z,2026-11-27T10:15:08.000Z,"
            "false,USD,Ann,,,\"'=HYPERLINK(\"\"http://x\"\")\",,,,,,,,,15.00,,,," +
                hashes(7));
  // drawer_close: the counted cash (the counts per denomination are JSON Lines only).
  EXPECT_EQ(row_of(11),
            "S001,12,close-1,,T01,drawer_close,,2026-11-27T10:15:00.000Z,"
            "2026-11-27T10:15:12.000Z,false,USD,Ann,,,,,,,,,,,,140.00,,,," +
                hashes(11));
  // z_report: its number in receipt_no, no amount (the figures are JSON Lines only).
  const std::string z = row_of(13);
  EXPECT_TRUE(z.starts_with("S001,14,z-1,Z1,,z_report,,")) << z;
  // cashier, then 15 empty cells (line_no .. payment_methods, sale_total included).
  EXPECT_TRUE(z.ends_with(",manager" + std::string(16, ',') + hashes(13))) << z;
  // payment_authorization: the sale in ref, the payment's amount, "<index>:<result>".
  EXPECT_EQ(row_of(19),
            "S001,20,auth-7,,T02,payment_authorization,s7,2026-11-27T10:15:00.000Z,"
            "2026-11-27T10:15:20.000Z,false,USD,,,,,,,,,,,,,10.00,,,0:approved," +
                hashes(19));
  // Every event row has the header's column count; no cell starts a formula.
  for (size_t i = 0; i < all.size(); ++i) {
    if (!all[i].is_event()) continue;
    const std::string row = row_of(i);
    std::string unquoted;
    bool quoted = false;
    for (char ch : row) {
      if (ch == '"') quoted = !quoted;
      if (!quoted) unquoted.push_back(ch);
    }
    EXPECT_EQ(std::count(unquoted.begin(), unquoted.end(), ','),
              std::count(CsvHeader().begin(), CsvHeader().end(), ','))
        << row;
  }
  for (const char* bad : {",=", ",+", ",@", ",\t", ",-"}) {
    EXPECT_EQ(csv.find(bad), std::string::npos) << bad;
  }
  // The sale rows are exactly what a sales-only batch gives.
  std::string sale_row;
  AppendSaleRecord(&sale_row, BatchFormat::kCsv, kStore, all[2]);
  EXPECT_NE(csv.find(sale_row), std::string::npos);
  EXPECT_EQ(std::count(sale_row.begin(), sale_row.end(), '\n'), 3);  // one row per line item
}

// ---- Verification from the objects alone ----

TEST_F(StoreDayObjectsTest, VerifyWalksTheChainAcrossSalesAndEvents) {
  ChainBuilder day = StoreDay();
  Upload(day, {4, 13}, BatchFormat::kJsonl);  // objects 1..4, 5..13, 14..20
  Result<VerifySummary> summary = VerifyStore(*sink_, VerifyOptions{.prefix = "pos"});
  ASSERT_TRUE(summary.ok()) << summary.status().ToString();
  EXPECT_TRUE(summary->ok()) << summary->ToJson();
  EXPECT_EQ(summary->objects, 3);
  EXPECT_EQ(summary->sales, 20);
  EXPECT_EQ(summary->events, 10);
  EXPECT_EQ(summary->first_seq, 1);
  EXPECT_EQ(summary->last_seq, 20);
  EXPECT_EQ(json::parse(summary->ToJson())["events"], 10);
  // Both Z reports recomputed from the objects' entries alone.
  EXPECT_EQ(summary->z_reports_checked, 2);
  EXPECT_EQ(summary->z_reports_unchecked, 0);
  EXPECT_EQ(summary->z_mismatches, 0);
}

TEST_F(StoreDayObjectsTest, VerifyPassesOnCsvWithEvents) {
  ChainBuilder day = StoreDay();
  Upload(day, {10}, BatchFormat::kCsv);
  Result<VerifySummary> summary = VerifyStore(*sink_, VerifyOptions{.prefix = "pos"});
  ASSERT_TRUE(summary.ok());
  EXPECT_TRUE(summary->ok()) << summary->ToJson();
  EXPECT_EQ(summary->sales, 20);
  EXPECT_EQ(summary->events, 10);
  EXPECT_EQ(summary->z_reports_checked, 0);  // CSV has no figures
  EXPECT_EQ(summary->z_reports_unchecked, 2);
}

// A Z report chained with figures that are not those of its entries (a hub bug, or a
// forger who recomputed every hash after it): the chain holds, the figures check fails.
TEST_F(StoreDayObjectsTest, VerifyRecomputesEachZReportFromTheObjects) {
  ChainBuilder day;
  day.AddEvent(Event("drawer_open", "open-1", "T01", {{"amount", "100.00"}}));
  day.AddSale(Sale("s1", "T01", {Line("a", "2", "3.50", "0.0825")},
                   {{{"method", "cash"}, {"amount", "10.00"}}}));
  const core::StoredSale& honest = day.AddZ("USD");
  core::StoreEvent wrong = *honest.event;
  wrong.id = "z-wrong";
  wrong.z_number = 2;
  wrong.first_seq = 4;  // covers nothing but claims a sale
  wrong.last_seq = 3;
  Result<core::ReportFigures> none = core::ComputeReport({}, "USD");
  ASSERT_TRUE(none.ok());
  json claimed = json::parse(core::ReportFiguresJson(*none));
  claimed["sales"]["count"] = 1;
  wrong.figures = claimed.dump();
  day.AddEvent(wrong, "Z2");
  Upload(day, {2}, BatchFormat::kJsonl);
  Result<VerifySummary> summary = VerifyStore(*sink_, VerifyOptions{.prefix = "pos"});
  ASSERT_TRUE(summary.ok());
  EXPECT_FALSE(summary->ok());
  EXPECT_EQ(summary->hash_mismatches, 0) << summary->ToJson();
  EXPECT_EQ(summary->chain_breaks, 0);
  EXPECT_EQ(summary->z_reports_checked, 2);
  EXPECT_EQ(summary->z_mismatches, 1);
  EXPECT_NE(summary->ToJson().find("Z report 2 (seq 4) does not have the figures"),
            std::string::npos)
      << summary->ToJson();
}

TEST_F(StoreDayObjectsTest, VerifyCountsZReportsItCannotCoverAsUnchecked) {
  ChainBuilder day = StoreDay();
  Upload(day, {4, 13}, BatchFormat::kJsonl);
  // A day longer than the limit: Z1 (13 entries) unchecked, Z2 (2 entries) checked.
  VerifyOptions small{.prefix = "pos"};
  small.max_z_entries = 5;
  Result<VerifySummary> limited = VerifyStore(*sink_, small);
  ASSERT_TRUE(limited.ok());
  EXPECT_TRUE(limited->ok()) << limited->ToJson();
  EXPECT_EQ(limited->z_reports_checked, 1);
  EXPECT_EQ(limited->z_reports_unchecked, 1);
  // The first object missing: a gap, and Z1 cannot be recomputed (not a figures problem).
  auto listed = sink_->List("pos/sales/");
  ASSERT_TRUE(listed.ok());
  fs::remove(sink_->root() + "/" + listed->objects.front().first);
  Result<VerifySummary> gap = VerifyStore(*sink_, VerifyOptions{.prefix = "pos"});
  ASSERT_TRUE(gap.ok());
  EXPECT_EQ(gap->gaps, 4);
  EXPECT_EQ(gap->z_reports_unchecked, 1);
  EXPECT_EQ(gap->z_reports_checked, 1);
  EXPECT_EQ(gap->z_mismatches, 0);
}

TEST_F(StoreDayObjectsTest, VerifyFindsAChangedCashOutAmount) {
  ChainBuilder day = StoreDay();
  Upload(day, {4, 13}, BatchFormat::kJsonl);
  Forge("\"amount\":\"15.00\",\"reason\"", "\"amount\":\"1.00\",\"reason\"");
  Result<VerifySummary> summary = VerifyStore(*sink_, VerifyOptions{.prefix = "pos"});
  ASSERT_TRUE(summary.ok());
  EXPECT_FALSE(summary->ok());
  EXPECT_EQ(summary->hash_mismatches, 1) << summary->ToJson();
  EXPECT_EQ(summary->chain_breaks, 0);
  ASSERT_FALSE(summary->problems.empty());
  EXPECT_NE(summary->problems[0].find("seq 8 hash does not match"), std::string::npos)
      << summary->ToJson();
}

TEST_F(StoreDayObjectsTest, VerifyFindsAChangedZFigureAndAChangedReason) {
  ChainBuilder day = StoreDay();
  Upload(day, {4, 13}, BatchFormat::kJsonl);
  // A Z figure: the figures are part of the Z report's canonical bytes.
  Forge("\"cash_out\":\"20.00\",\"z_reports\"", "\"cash_out\":\"10.00\",\"z_reports\"");
  Result<VerifySummary> z = VerifyStore(*sink_, VerifyOptions{.prefix = "pos"});
  ASSERT_TRUE(z.ok());
  EXPECT_EQ(z->hash_mismatches, 1) << z->ToJson();
  EXPECT_NE(z->ToJson().find("seq 14 hash does not match"), std::string::npos) << z->ToJson();
  // A reason, and a line made non-canonical (a member the event type does not have).
  Forge("\"reason\":\"stamps\"", "\"reason\":\"lunch\"");
  Forge("\"amount\":\"80.00\"", "\"amount\":\"80.00\",\"note\":\"x\"");
  Result<VerifySummary> more = VerifyStore(*sink_, VerifyOptions{.prefix = "pos"});
  ASSERT_TRUE(more.ok());
  EXPECT_EQ(more->hash_mismatches, 3) << more->ToJson();
  EXPECT_NE(more->ToJson().find("seq 15 does not decode as a store event"), std::string::npos)
      << more->ToJson();
  EXPECT_EQ(more->chain_breaks, 0);
}

// ---- The independent reader ----

struct ReaderRun {
  int exit_code = -1;
  std::string out;
};

ReaderRun RunReader(const std::string& args) {
  const std::string command = "python3 " + std::string(MACHUB_SOURCE_DIR) +
                              "/tests/tools/recompute_report.py " + args + " 2>/dev/null";
  ReaderRun run;
  FILE* pipe = popen(command.c_str(), "r");
  if (pipe == nullptr) return run;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof(buf), pipe)) > 0) run.out.append(buf, n);
  const int status = pclose(pipe);
  run.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return run;
}

bool HavePython() {
  return std::system("python3 -c 'import gzip, json, decimal' 2>/dev/null") == 0;
}

TEST_F(StoreDayObjectsTest, IndependentReaderRecomputesTheZFiguresByteForByte) {
  if (!HavePython()) GTEST_SKIP() << "python3 is not installed: the reader cannot run";
  ChainBuilder day = StoreDay();
  Upload(day, {4, 13}, BatchFormat::kJsonl);
  const std::string folder = sink_->root();

  // Z1 covers seqs 1..13: the figures the hub stored, recomputed from the objects.
  Result<core::ReportFigures> z1 = core::ComputeReport(day.Entries(1, 13), "USD");
  ASSERT_TRUE(z1.ok());
  const std::string z1_json = core::ReportFiguresJson(*z1);
  // The day exercises what the rules distinguish.
  json f = json::parse(z1_json);
  ASSERT_EQ(f["drawers"].size(), 2u);
  EXPECT_EQ(f["drawers"][0]["variance"], "-0.58");
  EXPECT_FALSE(f["drawers"][1].contains("counted"));
  EXPECT_EQ(f["cash_without_drawer"].size(), 2u);
  EXPECT_EQ(f["other_currency_entries"], 1);
  EXPECT_EQ(f["offline_card"]["count"], 1);
  EXPECT_EQ(f["by_tax_rate"].size(), 3u);

  ReaderRun range = RunReader(folder + " --from-seq 1 --to-seq 13 --currency USD");
  EXPECT_EQ(range.exit_code, 0);
  EXPECT_EQ(range.out, z1_json + "\n");
  ReaderRun by_number = RunReader(folder + " --z 1");
  EXPECT_EQ(by_number.exit_code, 0);
  EXPECT_EQ(by_number.out, z1_json + "\n");
  ReaderRun check = RunReader(folder + " --check-z");
  EXPECT_EQ(check.exit_code, 0) << check.out;
  EXPECT_EQ(check.out, "Z1 seq 1..13: ok\nZ2 seq 15..16: ok\n");
  // No range: the open day after the last Z report (what an X report shows).
  Result<core::ReportFigures> open = core::ComputeReport(day.Entries(18, 20), "USD");
  ASSERT_TRUE(open.ok());
  ReaderRun x = RunReader(folder);
  EXPECT_EQ(x.exit_code, 0);
  EXPECT_EQ(x.out, core::ReportFiguresJson(*open) + "\n");
  // Files instead of a folder give the same answer.
  std::string files;
  for (const auto& entry : fs::recursive_directory_iterator(folder)) {
    if (entry.path().string().ends_with(".jsonl.gz")) files += " " + entry.path().string();
  }
  EXPECT_EQ(RunReader(files + " --z 1").out, z1_json + "\n");

  // The reader can fail: a sale's payment rewritten in an object (its hash no longer
  // matches either, which verify reports) changes the recomputed Z1 figures.
  Forge("{\"method\":\"gift\",\"amount\":\"1.50\"", "{\"method\":\"gift\",\"amount\":\"2.50\"");
  ReaderRun forged = RunReader(folder + " --check-z");
  EXPECT_EQ(forged.exit_code, 1);
  EXPECT_EQ(forged.out, "Z1 seq 1..13: MISMATCH\nZ2 seq 15..16: ok\n");
  EXPECT_EQ(RunReader(folder + " --z 1").exit_code, 1);
  EXPECT_EQ(RunReader(folder + " --z 3").exit_code, 1);  // no such Z report
  // Unreadable input is its own exit status.
  std::ofstream(folder + "/junk.jsonl") << "{not json\n";
  EXPECT_EQ(RunReader(folder + " --check-z").exit_code, 2);
}

}  // namespace
}  // namespace machub::sync
