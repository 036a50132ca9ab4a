// DynamoSink and the sales items, against a real dynalite (tests/peers/dynalite.sh) started
// once for this executable and a real SqliteJournal; the crash test kills a real child
// process (SIGKILL from the failpoint) between a batch write and its progress mark.
#include "sync/dynamo_sink.h"

#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <set>
#include <string>

#include "core/sale_codec.h"
#include "core/sha256.h"
#include "core/store_event.h"
#include "journal/sqlite_journal.h"
#include "sync/dynamo_items.h"
#include "test_peers.h"

namespace machub::sync {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

// `n` euro signs: 3 bytes each in UTF-8, 200 of them the longest line name the API allows.
std::string Euros(int n) {
  std::string s;
  for (int i = 0; i < n; ++i) s += "\u20ac";
  return s;
}

std::string SaleJson(const std::string& id, int lines, size_t name_bytes, bool card) {
  json sale = {{"id", id},
               {"terminal_id", "T01"},
               {"type", "sale"},
               {"created_at", "2026-11-27T10:15:00Z"},
               {"currency", "USD"}};
  sale["lines"] = json::array();
  for (int i = 0; i < lines; ++i) {
    sale["lines"].push_back(
        {{"sku", "sku-" + std::to_string(i)},
         {"name", name_bytes <= 200 ? std::string(name_bytes, 'n') : Euros(200)},
         {"qty", "2"},
         {"unit_price", "3.50"},
         {"tax_rate", "0.0825"}});
  }
  sale["payments"] =
      json::array({{{"method", "cash"}, {"amount", std::to_string(lines * 10) + ".00"}}});
  if (card) {
    sale["payments"].push_back(
        {{"method", "card"}, {"amount", "1.00"}, {"card_token", "tok_123"}, {"last4", "4242"}});
  }
  return sale.dump();
}

core::Sale MakeSale(const std::string& id, int lines = 1, size_t name_bytes = 12,
                    bool card = false) {
  Result<core::Sale> sale = core::DecodeSale(SaleJson(id, lines, name_bytes, card));
  EXPECT_TRUE(sale.ok()) << sale.status().ToString();
  return sale.ok() ? std::move(sale).value() : core::Sale{};
}

testing::DynalitePeer* g_peer = nullptr;
std::string g_skip_reason;

class DynaliteEnvironment : public ::testing::Environment {
 public:
  void SetUp() override {
    // The crash child reuses the parent's dynalite.
    if (const char* endpoint = std::getenv("DYNAMO_SINK_CHILD_ENDPOINT")) {
      child_endpoint_ = endpoint;
      return;
    }
    char tmpl[] = "/tmp/machub-dynamo-sink-test-XXXXXX";
    if (mkdtemp(tmpl) == nullptr) return;
    dir_ = tmpl;
    peer_ = testing::DynalitePeer::Start(dir_, &g_skip_reason);
    g_peer = peer_.get();
  }
  void TearDown() override {
    g_peer = nullptr;
    peer_.reset();
    if (!dir_.empty()) fs::remove_all(dir_);
  }
  static std::string child_endpoint_;

 private:
  std::string dir_;
  std::unique_ptr<testing::DynalitePeer> peer_;
};
std::string DynaliteEnvironment::child_endpoint_;

std::string Endpoint() {
  return g_peer != nullptr ? g_peer->endpoint() : DynaliteEnvironment::child_endpoint_;
}

TEST(DynamoItemsTest, TypedAttributesAndNoCardNumber) {
  core::StoredSale stored;
  stored.seq = 42;
  stored.receipt_no = "T01-000042";
  stored.received_at_ms = 1764238500000;  // 2025-11-27
  stored.hash = std::string(32, '\x01');
  stored.sale = MakeSale("sale-42", 2, 12, true);
  Result<DynamoSalesItem> item = MakeSalesItem("S001", stored);
  ASSERT_TRUE(item.ok()) << item.status().ToString();
  const json& it = item->item;
  EXPECT_EQ(it["store_id"]["S"], "S001");
  EXPECT_EQ(it["seq"]["N"], "42");
  EXPECT_EQ(it["entry_id"]["S"], "sale-42");
  std::string hex;
  for (int i = 0; i < 32; ++i) hex += "01";
  EXPECT_EQ(it["entry_hash"]["S"], hex);
  EXPECT_EQ(it["date"]["S"], "2025-11-27");
  EXPECT_EQ(it["total"]["N"], std::to_string(stored.sale.total));
  EXPECT_EQ(it["lines"]["L"].size(), 2u);
  EXPECT_EQ(it["lines"]["L"][0]["M"]["qty_milli"]["N"], "2000");
  EXPECT_EQ(it["lines"]["L"][0]["M"]["unit_price"]["N"], "350");
  ASSERT_EQ(it["payments"]["L"].size(), 2u);
  EXPECT_EQ(it["payments"]["L"][1]["M"]["last4"]["S"], "4242");
  EXPECT_EQ(it["payments"]["L"][1]["M"]["card_token"]["S"], "tok_123");
  EXPECT_FALSE(item->lines_omitted);
  EXPECT_EQ(item->bytes, DynamoItemBytes(it));
  // Deterministic: the same entry gives the same item.
  EXPECT_EQ(MakeSalesItem("S001", stored)->item.dump(), it.dump());
}

TEST(DynamoItemsTest, StoreAlertAttributesCountAndNameTheHubsAlerts) {
  nlohmann::json none = StoreAlertAttributes({}, false);
  EXPECT_EQ(none["alerts"]["N"], "0");
  EXPECT_FALSE(none.contains("alert_codes"));  // DynamoDB refuses an empty set
  nlohmann::json some =
      StoreAlertAttributes({"clock_untrusted", "backlog_old", "clock_untrusted"}, true);
  EXPECT_EQ(some["alerts"]["N"], "3");
  EXPECT_EQ(some["alert_codes"]["SS"],
            nlohmann::json::array({"backlog_old", "clock_untrusted", "dynamodb_integrity_alert"}));
}

TEST(DynamoItemsTest, OversizedEntryOmitsItsLinesExplicitly) {
  core::StoredSale stored;
  stored.seq = 7;
  stored.hash = std::string(32, '\x02');
  stored.sale = MakeSale("big-7", 1000, 600);  // 1000 lines of 200 euro signs: about 0.9 MB
  Result<DynamoSalesItem> item = MakeSalesItem("S001", stored);
  ASSERT_TRUE(item.ok());
  EXPECT_TRUE(item->lines_omitted);
  EXPECT_FALSE(item->item.contains("lines"));
  EXPECT_EQ(item->item["lines_omitted"]["BOOL"], true);
  EXPECT_EQ(item->item["line_count"]["N"], "1000");
  EXPECT_EQ(item->item["total"]["N"], std::to_string(stored.sale.total));
  EXPECT_LT(item->bytes, kDynamoDefaultItemBudget);
  // A budget too small even for the reduced item: an explicit error, never a silent cut.
  EXPECT_EQ(MakeSalesItem("S001", stored, 100).status().code(), ErrorCode::kInvalidArgument);
}

core::StoreEvent MakeEvent(const json& request) {
  Result<core::StoreEvent> event = core::DecodeEventRequest(request.dump());
  EXPECT_TRUE(event.ok()) << event.status().ToString() << " for " << request.dump();
  return event.ok() ? std::move(event).value() : core::StoreEvent{};
}

core::StoredSale StoredEvent(core::StoreEvent event, int64_t seq, std::string receipt_no = "") {
  core::StoredSale stored;
  stored.seq = seq;
  stored.receipt_no = std::move(receipt_no);
  stored.received_at_ms = 1764238500000;  // 2025-11-27
  stored.hash = std::string(32, '\x03');
  stored.canonical = core::CanonicalEvent(event);
  stored.event = std::move(event);
  return stored;
}

TEST(DynamoItemsTest, StoreEventsAreTypedItemsWithoutSaleAmounts) {
  const json base = {{"terminal_id", "T02"},
                     {"created_at", "2026-11-27T10:15:00Z"},
                     {"currency", "USD"},
                     {"cashier", "Ann"}};
  json out = base;
  out.update({{"id", "out-1"}, {"type", "cash_out"}, {"amount", "15.25"}, {"reason", "stamps"}});
  Result<DynamoSalesItem> cash = MakeSalesItem("S001", StoredEvent(MakeEvent(out), 8));
  ASSERT_TRUE(cash.ok()) << cash.status().ToString();
  const json& c = cash->item;
  EXPECT_EQ(c["store_id"]["S"], "S001");
  EXPECT_EQ(c["seq"]["N"], "8");
  EXPECT_EQ(c["entry_id"]["S"], "out-1");
  EXPECT_EQ(c["type"]["S"], "cash_out");
  EXPECT_EQ(c["terminal_id"]["S"], "T02");
  EXPECT_EQ(c["cashier"]["S"], "Ann");
  EXPECT_EQ(c["amount"]["N"], "1525");
  EXPECT_EQ(c["reason"]["S"], "stamps");
  EXPECT_EQ(c["date"]["S"], "2025-11-27");
  EXPECT_EQ(c["entry_hash"]["S"].get<std::string>().size(), 64u);
  // An event has no receipt number and no sale amounts: nothing empty or made up.
  for (const char* absent : {"receipt_no", "total", "subtotal", "paid", "change", "lines",
                             "payments", "ref", "counted", "figures"}) {
    EXPECT_FALSE(c.contains(absent)) << absent;
  }
  EXPECT_EQ(cash->bytes, DynamoItemBytes(c));

  json close = base;
  close.update(
      {{"id", "close-1"},
       {"type", "drawer_close"},
       {"counted", "140.00"},
       {"counts",
        {{{"denomination", "20.00"}, {"count", 6}}, {{"denomination", "0.25"}, {"count", 80}}}}});
  Result<DynamoSalesItem> drawer = MakeSalesItem("S001", StoredEvent(MakeEvent(close), 9));
  ASSERT_TRUE(drawer.ok());
  EXPECT_EQ(drawer->item["counted"]["N"], "14000");
  ASSERT_EQ(drawer->item["counts"]["L"].size(), 2u);
  EXPECT_EQ(drawer->item["counts"]["L"][1]["M"]["denomination"]["N"], "25");
  EXPECT_EQ(drawer->item["counts"]["L"][1]["M"]["count"]["N"], "80");
  EXPECT_FALSE(drawer->item.contains("amount"));

  // A Z report closed by a manager without a terminal: its number, range and figures.
  core::StoreEvent z;
  z.id = "z-1";
  z.type = core::EventType::kZReport;
  z.created_at_ms = 1764238500000;
  z.currency = "USD";
  z.z_number = 3;
  z.first_seq = 100;
  z.last_seq = 180;
  z.figures = R"({"currency":"USD","first_seq":100,"last_seq":180})";
  Result<DynamoSalesItem> report = MakeSalesItem("S001", StoredEvent(z, 181, "Z3"));
  ASSERT_TRUE(report.ok());
  EXPECT_EQ(report->item["type"]["S"], "z_report");
  EXPECT_EQ(report->item["receipt_no"]["S"], "Z3");
  EXPECT_FALSE(report->item.contains("terminal_id"));
  EXPECT_EQ(report->item["z_number"]["N"], "3");
  EXPECT_EQ(report->item["first_seq"]["N"], "100");
  EXPECT_EQ(report->item["last_seq"]["N"], "180");
  EXPECT_EQ(report->item["figures"]["S"], z.figures);
  EXPECT_FALSE(report->figures_omitted);
  // Figures beyond the budget are left out explicitly (they stay in S3).
  z.figures = "{\"x\":\"" + std::string(2000, 'a') + "\"}";
  Result<DynamoSalesItem> big = MakeSalesItem("S001", StoredEvent(z, 181, "Z3"), 1000);
  ASSERT_TRUE(big.ok()) << big.status().ToString();
  EXPECT_TRUE(big->figures_omitted);
  EXPECT_FALSE(big->item.contains("figures"));
  EXPECT_EQ(big->item["figures_omitted"]["BOOL"], true);
  EXPECT_EQ(MakeSalesItem("S001", StoredEvent(z, 181, "Z3"), 50).status().code(),
            ErrorCode::kInvalidArgument);

  // The processor's answer to an offline card payment (issue #9).
  Result<core::StoreEvent> auth = core::DecodeAuthorizationRequest(
      R"({"id":"auth-1","result":"declined","reason":"insufficient funds"})", "sale-9", 1);
  ASSERT_TRUE(auth.ok()) << auth.status().ToString();
  auth->terminal_id = "T01";
  auth->currency = "USD";
  auth->amount = 1250;
  Result<DynamoSalesItem> answer = MakeSalesItem("S001", StoredEvent(*auth, 182));
  ASSERT_TRUE(answer.ok());
  EXPECT_EQ(answer->item["type"]["S"], "payment_authorization");
  EXPECT_EQ(answer->item["sale_id"]["S"], "sale-9");
  EXPECT_EQ(answer->item["payment_index"]["N"], "1");
  EXPECT_EQ(answer->item["amount"]["N"], "1250");
  EXPECT_EQ(answer->item["result"]["S"], "declined");
  EXPECT_EQ(answer->item["reason"]["S"], "insufficient funds");
  EXPECT_FALSE(answer->item.contains("auth_code"));
}

class DynamoSinkTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (Endpoint().empty()) GTEST_SKIP() << "dynalite not available: " << g_skip_reason;
    if (const char* d = std::getenv("DYNAMO_SINK_CHILD_DIR")) {
      dir_ = d;
    } else {
      char tmpl[] = "/tmp/machub-dynamo-sink-XXXXXX";
      ASSERT_NE(mkdtemp(tmpl), nullptr);
      dir_ = tmpl;
      own_dir_ = true;
    }
    table_ =
        "sales_" + std::string(::testing::UnitTest::GetInstance()->current_test_info()->name());
    if (const char* t = std::getenv("DYNAMO_SINK_CHILD_TABLE")) table_ = t;
    OpenJournal();
    cloud::CredentialsOptions co;
    co.access_key_id = "MACHUBDYNAMOTEST0000";
    co.secret_access_key = "machubDynamoTestSecret000000000000000000";
    co.getenv = [](const char*) -> const char* { return nullptr; };
    auto creds = cloud::MakeDefaultCredentialsProvider(co);
    ASSERT_TRUE(creds.ok());
    creds_ = std::move(creds).value();
    cloud::DynamoOptions options;
    options.endpoint = Endpoint();
    options.credentials = creds_.get();
    options.connect_timeout_ms = 1000;
    options.total_timeout_ms = 5000;
    auto client = cloud::DynamoDbClient::Create(options);
    ASSERT_TRUE(client.ok());
    client_ = std::move(client).value();
    if (own_dir_) {
      cloud::DynamoTableSpec spec;
      spec.name = table_;
      spec.hash_key = "store_id";
      spec.range_key = "seq";
      spec.gsis.push_back({std::string(kDynamoEntryIdIndex), "entry_id", "S"});
      ASSERT_TRUE(client_->CreateTable(spec).ok());
      ASSERT_TRUE(client_->WaitActive(table_, 10000).ok());
    }
  }
  void TearDown() override {
    sink_.reset();
    if (journal_) journal_->Close();
    journal_.reset();
    if (own_dir_) fs::remove_all(dir_);
  }
  void OpenJournal() {
    journal::JournalOptions jo;
    jo.path = dir_ + "/journal.db";
    jo.store_id = "S001";
    auto j = journal::SqliteJournal::Open(jo);
    ASSERT_TRUE(j.ok()) << j.status().ToString();
    journal_ = std::move(j).value();
  }
  void Append(int n, int lines = 1, size_t name_bytes = 12) {
    for (int i = 0; i < n; ++i) {
      auto r = journal_->Append(MakeSale("s" + std::to_string(next_++), lines, name_bytes)).get();
      ASSERT_TRUE(r.ok()) << r.status().ToString();
    }
  }
  DynamoSink& Sink() {
    if (!sink_) {
      DynamoSinkOptions o;
      o.store_id = "S001";
      o.sales_table = table_;
      o.read_chunk = 60;
      o.backoff_base_ms = 5;
      o.backoff_cap_ms = 50;
      sink_ = std::make_unique<DynamoSink>(o, journal_.get(), client_.get());
    }
    return *sink_;
  }
  // Every item of store S001, in seq order, read with the client's Query.
  std::vector<json> Items() {
    auto items = client_->QueryPartition(table_, "store_id", {{"S", "S001"}});
    EXPECT_TRUE(items.ok()) << items.status().ToString();
    return items.ok() ? *items : std::vector<json>{};
  }
  void ExpectExactly(int64_t n) {
    std::vector<json> items = Items();
    ASSERT_EQ(static_cast<int64_t>(items.size()), n);
    for (int64_t i = 0; i < n; ++i) {
      EXPECT_EQ(items[i]["seq"]["N"], std::to_string(i + 1));
      EXPECT_EQ(items[i]["entry_id"]["S"], "s" + std::to_string(i + 1));
    }
  }

  std::string dir_, table_;
  bool own_dir_ = false;
  int next_ = 1;
  std::unique_ptr<journal::SqliteJournal> journal_;
  std::unique_ptr<cloud::CredentialsProvider> creds_;
  std::unique_ptr<cloud::DynamoDbClient> client_;
  int64_t Cursor() {
    auto p = journal_->GetSinkProgress(kDynamoSinkName);
    EXPECT_TRUE(p.ok()) << p.status().ToString();
    return p.ok() ? p->delivered_seq : -1;
  }
  std::unique_ptr<DynamoSink> sink_;
};

TEST_F(DynamoSinkTest, DrainsEveryEntryOnceInSeqOrder) {
  Append(130);
  int64_t moved = 0;
  for (int i = 0; i < 10; ++i) {
    auto r = Sink().Step();
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    if (*r == 0) break;
    moved += *r;
  }
  EXPECT_EQ(moved, 130);
  ExpectExactly(130);
  DynamoSinkStatus st = Sink().status();
  EXPECT_EQ(st.cursor, 130);
  EXPECT_EQ(st.backlog(), 0);
  EXPECT_EQ(st.state, "idle");
  EXPECT_EQ(st.written, 130);
  // The first chunk after a start is written conditionally (it may be a replay).
  EXPECT_EQ(st.replayed, 60);
  EXPECT_EQ(Cursor(), 130);
}

// Store events reach the table like sales: one item per entry, in the same seq order, the
// Z report with its figures; a replay of the same chunk (conditional writes) passes.
TEST_F(DynamoSinkTest, StoreEventsAreItemsInTheSameSequence) {
  auto event = [&](const json& request) {
    auto r = journal_->AppendEvent(MakeEvent(request)).get();
    ASSERT_TRUE(r.ok()) << r.status().ToString();
  };
  const json base = {
      {"terminal_id", "T01"}, {"created_at", "2026-11-27T10:15:00Z"}, {"currency", "USD"}};
  json open = base;
  open.update({{"id", "open-1"}, {"type", "drawer_open"}, {"amount", "100.00"}});
  event(open);
  Append(2);  // 10.00 cash each (change 2.42)
  json out = base;
  out.update({{"id", "out-1"}, {"type", "cash_out"}, {"amount", "5.00"}, {"reason", "stamps"}});
  event(out);
  json close = base;
  close.update({{"id", "close-1"}, {"type", "drawer_close"}, {"counted", "110.16"}});
  event(close);
  Result<core::StoreEvent> zreq =
      core::DecodeZRequest(R"({"id":"z-1","created_at":"2026-11-27T22:00:00Z"})");
  ASSERT_TRUE(zreq.ok()) << zreq.status().ToString();
  auto z = journal_->AppendEvent(*zreq).get();
  ASSERT_TRUE(z.ok()) << z.status().ToString();
  EXPECT_EQ(z->receipt_no, "Z1");
  while (true) {
    auto r = Sink().Step();
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    if (*r == 0) break;
  }
  std::vector<json> items = Items();
  ASSERT_EQ(items.size(), 6u);
  const char* types[] = {"drawer_open", "sale", "sale", "cash_out", "drawer_close", "z_report"};
  for (size_t i = 0; i < items.size(); ++i) {
    EXPECT_EQ(items[i]["seq"]["N"], std::to_string(i + 1));
    EXPECT_EQ(items[i]["type"]["S"], types[i]);
  }
  EXPECT_EQ(items[0]["amount"]["N"], "10000");
  EXPECT_FALSE(items[0].contains("receipt_no"));
  EXPECT_EQ(items[3]["reason"]["S"], "stamps");
  EXPECT_EQ(items[4]["counted"]["N"], "11016");
  EXPECT_EQ(items[5]["receipt_no"]["S"], "Z1");
  EXPECT_EQ(items[5]["z_number"]["N"], "1");
  EXPECT_EQ(items[5]["first_seq"]["N"], "1");
  EXPECT_EQ(items[5]["last_seq"]["N"], "5");
  Result<std::optional<core::StoredSale>> stored = journal_->Get("z-1");
  ASSERT_TRUE(stored.ok() && stored->has_value() && (*stored)->is_event());
  EXPECT_EQ(items[5]["figures"]["S"], (*stored)->event->figures);
  EXPECT_EQ(json::parse(items[5]["figures"]["S"].get<std::string>())["cash_out"], "5.00");
  // The items equal what MakeSalesItem makes of the journal's rows (a pure function).
  auto rows = journal_->List(0, 10);
  ASSERT_TRUE(rows.ok());
  for (size_t i = 0; i < rows->size(); ++i) {
    EXPECT_EQ(items[i]["entry_hash"]["S"], core::ToHex((*rows)[i].hash));
  }
  // After a restart the sink goes on after the Z report (its first chunk conditional).
  sink_.reset();
  journal_->Close();
  OpenJournal();
  ASSERT_TRUE(journal_->Append(MakeSale("after-z")).get().ok());
  auto again = Sink().Step();
  ASSERT_TRUE(again.ok()) << again.status().ToString();
  EXPECT_EQ(*again, 1);
  EXPECT_EQ(Items().size(), 7u);
  EXPECT_EQ(Sink().status().state, "ok");
}

TEST_F(DynamoSinkTest, OutageKeepsTheCursorAndResumesWithoutLoss) {
  Append(20);
  ASSERT_TRUE(Sink().Step().ok());
  Append(30);
  ASSERT_TRUE(g_peer->Outage());
  auto r = Sink().Step(2);
  EXPECT_EQ(r.status().code(), ErrorCode::kUnavailable);
  DynamoSinkStatus st = Sink().status();
  EXPECT_EQ(st.state, "retrying");
  EXPECT_EQ(st.cursor, 20);
  EXPECT_EQ(st.backlog(), 30);
  EXPECT_GE(st.retryable_errors, 2);
  EXPECT_EQ(Cursor(), 20);
  ASSERT_TRUE(g_peer->Resume());
  // The failed step may have written part of 21..50: they are rewritten conditionally.
  while (true) {
    auto again = Sink().Step();
    ASSERT_TRUE(again.ok()) << again.status().ToString();
    if (*again == 0) break;
  }
  ExpectExactly(50);
  EXPECT_EQ(Sink().status().replayed, 20 + 30);
}

TEST_F(DynamoSinkTest, ADifferentItemUnderTheKeyIsAnIntegrityAlertNotAnOverwrite) {
  Append(5);
  // Something else already wrote seq 3 (another hub with the same store id, say).
  json foreign = SalesKey("S001", 3);
  foreign["entry_id"] = {{"S", "foreign"}};
  foreign["entry_hash"] = {{"S", "ffff"}};
  ASSERT_TRUE(client_->PutItem(table_, foreign, "", nullptr, nullptr).ok());
  // The first chunk after a start is written conditionally: the hashes are compared.
  auto r = Sink().Step();
  EXPECT_EQ(r.status().code(), ErrorCode::kIdConflict) << r.status().ToString();
  EXPECT_EQ(Sink().status().state, "integrity_alert");
  EXPECT_NE(Sink().status().last_error.find("seq 3"), std::string::npos);
  EXPECT_EQ(Sink().status().cursor, 0);
  EXPECT_EQ(Cursor(), 0);
  auto item = client_->GetItem(table_, SalesKey("S001", 3));
  ASSERT_TRUE(item.ok());
  EXPECT_EQ((*item)["entry_id"]["S"], "foreign");
  // It stays stopped: later steps do not move on.
  EXPECT_FALSE(Sink().Step().ok());
}

TEST_F(DynamoSinkTest, OversizedEntryIsWrittenWithItsLinesOmitted) {
  Append(1, 1000, 600);
  Append(1);
  auto r = Sink().Step();
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(*r, 2);
  std::vector<json> items = Items();
  ASSERT_EQ(items.size(), 2u);
  EXPECT_EQ(items[0]["lines_omitted"]["BOOL"], true);
  EXPECT_EQ(items[1]["lines"]["L"].size(), 1u);
  EXPECT_EQ(Sink().status().oversized, 1);
}

TEST_F(DynamoSinkTest, CurrentStatusCountsEntriesTheSinkHasNotLookedAtYet) {
  Append(5);
  ASSERT_TRUE(Sink().Step().ok());
  ASSERT_EQ(Sink().status().backlog(), 0);
  Append(3);  // after the sink's last look: its own figures still say 0
  EXPECT_EQ(Sink().status().backlog(), 0);
  DynamoSinkStatus now = Sink().CurrentStatus();
  EXPECT_EQ(now.last_seq, 8);
  EXPECT_EQ(now.cursor, 5);
  EXPECT_EQ(now.backlog(), 3);
  ASSERT_TRUE(Sink().Step().ok());
  EXPECT_EQ(Sink().CurrentStatus().backlog(), 0);
  ExpectExactly(8);
}

TEST_F(DynamoSinkTest, ThreadDrainsInTheBackground) {
  Append(40);
  Sink().Start();
  for (int i = 0; i < 200 && Sink().status().cursor < 40; ++i) usleep(20000);
  Append(10);
  for (int i = 0; i < 200 && Sink().status().cursor < 50; ++i) usleep(20000);
  Sink().Stop();
  ExpectExactly(50);
}

// A figure, not a check (docs/BENCHMARKS.md): items/s of a backlog drained into dynalite
// and bytes per item. Run by hand:
//   dynamo_sink_test --gtest_also_run_disabled_tests --gtest_filter='*DISABLED_Backlog*'
// DYNAMO_BENCH_SALES (default 100000) sets the backlog.
TEST_F(DynamoSinkTest, DISABLED_BacklogDrainFigures) {
  const char* env = std::getenv("DYNAMO_BENCH_SALES");
  const int n = env != nullptr ? std::atoi(env) : 100000;
  std::atomic<int> done{0};
  for (int i = 0; i < n; ++i) {
    journal_->Append(MakeSale("b" + std::to_string(i), 3, 16, i % 3 == 0),
                     [&done](Result<journal::Receipt> r) {
                       EXPECT_TRUE(r.ok());
                       done.fetch_add(1);
                     });
  }
  while (done.load() < n) usleep(10000);
  auto entries = journal_->List(0, 1000);
  ASSERT_TRUE(entries.ok());
  int64_t bytes = 0;
  for (const auto& e : *entries) bytes += MakeSalesItem("S001", e)->bytes;
  const auto t0 = std::chrono::steady_clock::now();
  int64_t moved = 0;
  while (true) {
    auto r = Sink().Step();
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    if (*r == 0) break;
    moved += *r;
  }
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  ASSERT_EQ(moved, n);
  std::printf(
      "dynamodb drain: %d entries in %.1f s = %.0f items/s; %.0f bytes/item "
      "(3 lines, a third with a card payment)\n",
      n, s, n / s, static_cast<double>(bytes) / static_cast<double>(entries->size()));
}

// The child of the crash test: drains until the failpoint kills it.
TEST_F(DynamoSinkTest, ChildDrainUntilTheFailpoint) {
  if (std::getenv("DYNAMO_SINK_CHILD_DIR") == nullptr) GTEST_SKIP() << "child only";
  for (int i = 0; i < 10; ++i) ASSERT_TRUE(Sink().Step().ok());
  FAIL() << "the failpoint did not fire";
}

TEST_F(DynamoSinkTest, KillBetweenBatchWriteAndMarkNeitherDuplicatesNorLoses) {
#ifndef MACHUB_FAILPOINTS
  GTEST_SKIP() << "needs a build with MACHUB_FAILPOINTS";
#else
  Append(100);
  journal_->Close();
  journal_.reset();
  int wstatus = testing::RunSelfAsChild(
      "DynamoSinkTest.ChildDrainUntilTheFailpoint",
      {"DYNAMO_SINK_CHILD_DIR=" + dir_, "DYNAMO_SINK_CHILD_ENDPOINT=" + Endpoint(),
       "DYNAMO_SINK_CHILD_TABLE=" + table_, "MACHUB_FAILPOINT=dynamo_after_write_before_mark"});
  ASSERT_TRUE(WIFSIGNALED(wstatus)) << wstatus;
  ASSERT_EQ(WTERMSIG(wstatus), SIGKILL);
  // The child wrote 1..60 (conditionally: its first chunk), 61..100 with BatchWriteItem,
  // moved the cursor to 60 only, and died before moving it to 100.
  OpenJournal();
  EXPECT_EQ(Cursor(), 60);
  EXPECT_EQ(Items().size(), 100u);
  while (true) {
    auto r = Sink().Step();
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    if (*r == 0) break;
  }
  ExpectExactly(100);
  EXPECT_EQ(Sink().status().replayed, 40);
  EXPECT_EQ(Cursor(), 100);
#endif
}

}  // namespace
}  // namespace machub::sync

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  ::testing::AddGlobalTestEnvironment(new machub::sync::DynaliteEnvironment);
  return RUN_ALL_TESTS();
}
