// sync/ without a network: batch format goldens, cutting rules (ManualClock), the upload
// protocol against LocalSink and an in-memory store with injectable faults, pruning,
// RunOnce, verification, and the crash between PUT and mark in a real child process.
// The same protocol against a real S3 (Ceph RGW) is in sync_rgw_test.cc.

#include <gtest/gtest.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <future>
#include <map>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "cloud/local_sink.h"
#include "cloud/s3_client.h"
#include "core/chain.h"
#include "core/clock.h"
#include "core/metrics.h"
#include "core/sale_codec.h"
#include "core/sha256.h"
#include "core/time_format.h"
#include "journal/sqlite_journal.h"
#include "manual_clock.h"
#include "sync/backlog.h"
#include "sync/backoff.h"
#include "sync/batch_cutter.h"
#include "sync/batch_format.h"
#include "sync/day_totals.h"
#include "sync/service.h"
#include "sync/uploader.h"
#include "sync/verify.h"
#include "temp_dir.h"
#include "test_peers.h"

extern char** environ;

namespace machub::sync {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

constexpr char kDay1[] = "2026-11-27T10:15:00Z";

std::string Str(std::string_view prefix, int64_t n) {
  std::string s(prefix);
  s += std::to_string(n);
  return s;
}

struct SaleSpec {
  std::string id;
  std::string terminal = "T01";
  std::string name = "Coffee beans";
  std::string type = "sale";
  std::string ref;
  int lines = 1;
  bool card = false;
};

std::string SaleJson(const SaleSpec& spec) {
  json sale;
  sale["id"] = spec.id;
  sale["terminal_id"] = spec.terminal;
  sale["type"] = spec.type;
  if (!spec.ref.empty()) sale["ref"] = spec.ref;
  sale["created_at"] = kDay1;
  sale["currency"] = "USD";
  sale["lines"] = json::array();
  for (int i = 0; i < spec.lines; ++i) {
    sale["lines"].push_back({{"sku", Str("sku-", i)},
                             {"name", spec.name},
                             {"qty", "2"},
                             {"unit_price", "3.50"},
                             {"tax_rate", "0.0825"}});
  }
  sale["payments"] = json::array();
  if (spec.type == "sale") {
    sale["payments"].push_back(
        {{"method", "cash"}, {"amount", std::to_string(10 * spec.lines) + ".00"}});
    if (spec.card) {
      sale["payments"].push_back(
          {{"method", "card"}, {"amount", "1.00"}, {"card_token", "tok_123"}, {"last4", "4242"}});
    }
  }
  return sale.dump();
}

core::Sale MakeSale(const SaleSpec& spec) {
  Result<core::Sale> sale = core::DecodeSale(SaleJson(spec));
  EXPECT_TRUE(sale.ok()) << sale.status().ToString() << " for " << SaleJson(spec);
  return sale.ok() ? std::move(sale).value() : core::Sale{};
}

core::Sale MakeSale(const std::string& id) {
  SaleSpec spec;
  spec.id = id;
  return MakeSale(spec);
}

// Polls `done` every 5 ms until it holds or `timeout_ms` passed (the condition is owned
// by another thread, so there is nothing to wait on directly).
bool WaitUntil(const std::function<bool()>& done, int64_t timeout_ms = 10000) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  while (!done()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return true;
}

// ---- An in-memory ObjectStore with faults ----

class FakeStore final : public cloud::ObjectStore {
 public:
  struct Object {
    std::string body;
    std::map<std::string, std::string> metadata;
  };

  Result<cloud::PutOutcome> Put(const cloud::PutRequest& request) override {
    std::lock_guard<std::mutex> lock(mu_);
    ++puts;
    if (!put_failure.ok() && put_failures_left != 0) {
      if (put_failures_left > 0) --put_failures_left;
      return put_failure;
    }
    if (request.if_none_match && honor_if_none_match && objects.count(request.key)) {
      return cloud::PutOutcome::kAlreadyExists;
    }
    objects[request.key] = Object{request.body, request.metadata};
    ++writes;
    return cloud::PutOutcome::kCreated;
  }
  Result<cloud::ObjectInfo> Head(const std::string& key) override {
    std::lock_guard<std::mutex> lock(mu_);
    ++heads;
    auto it = objects.find(key);
    if (it == objects.end()) return Status(ErrorCode::kNotFound, "S3 HEAD " + key + ": HTTP 404");
    cloud::ObjectInfo info;
    info.etag = Md5Hex(it->second.body);
    info.size = static_cast<int64_t>(it->second.body.size());
    info.metadata = it->second.metadata;
    return info;
  }
  Result<cloud::GetResult> Get(const std::string& key, const std::string&) override {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = objects.find(key);
    if (it == objects.end()) return Status(ErrorCode::kNotFound, "S3 GET " + key + ": HTTP 404");
    cloud::GetResult result;
    result.etag = Md5Hex(it->second.body);
    result.body = it->second.body;
    return result;
  }
  Result<cloud::ListResult> List(const std::string& prefix, const std::string&) override {
    std::lock_guard<std::mutex> lock(mu_);
    cloud::ListResult result;
    for (const auto& [key, object] : objects) {
      if (key.starts_with(prefix)) {
        cloud::ObjectInfo info;
        info.etag = Md5Hex(object.body);
        info.size = static_cast<int64_t>(object.body.size());
        result.objects.emplace_back(key, info);
      }
    }
    return result;
  }
  Status Probe() override {
    std::lock_guard<std::mutex> lock(mu_);
    ++probes;
    return probe_status;
  }
  std::string Describe() const override { return "fake://store"; }

  void SetPutFailure(Status status, int count) {
    std::lock_guard<std::mutex> lock(mu_);
    put_failure = std::move(status);
    put_failures_left = count;
  }
  void SetProbe(Status status) {
    std::lock_guard<std::mutex> lock(mu_);
    probe_status = std::move(status);
  }
  int Puts() {
    std::lock_guard<std::mutex> lock(mu_);
    return puts;
  }
  size_t SalesObjects() {
    std::lock_guard<std::mutex> lock(mu_);
    size_t n = 0;
    for (const auto& [key, object] : objects) n += key.find("/sales/") != std::string::npos;
    return n;
  }

  std::mutex mu_;
  std::map<std::string, Object> objects;
  bool honor_if_none_match = true;
  Status put_failure;
  int put_failures_left = 0;  // -1: forever
  Status probe_status;
  int puts = 0, writes = 0, heads = 0, probes = 0;
};

// ---- Fixture: a journal in a temporary folder ----

class SyncTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(tmp_.ok());
    dir_ = tmp_.path();
    journal_ = OpenJournal();
    ASSERT_NE(journal_, nullptr);
  }
  void TearDown() override {
    if (journal_) journal_->Close();
  }

  std::unique_ptr<journal::SqliteJournal> OpenJournal() {
    journal::JournalOptions options;
    options.path = dir_ + "/journal.db";
    options.store_id = "S001";
    options.checkpoint_interval_ms = 0;
    options.clock = &clock_;
    auto journal = journal::SqliteJournal::Open(options);
    EXPECT_TRUE(journal.ok()) << journal.status().ToString();
    return journal.ok() ? std::move(journal).value() : nullptr;
  }

  void AppendSales(int n, const std::string& prefix = "s") {
    for (int i = 0; i < n; ++i) {
      Result<journal::Receipt> r = journal_->Append(MakeSale(Str(prefix, next_id_++))).get();
      ASSERT_TRUE(r.ok()) << r.status().ToString();
    }
  }

  // A store event on T01 (drawer_open, cash_in, cash_out, drawer_close) through the
  // journal; `members` adds the type's own (amount, reason, counted).
  journal::Receipt AppendEvent(const std::string& id, const std::string& type, json members,
                               const std::string& terminal = "T01") {
    json request = {{"id", id},
                    {"terminal_id", terminal},
                    {"type", type},
                    {"created_at", kDay1},
                    {"currency", "USD"}};
    request.update(members);
    Result<core::StoreEvent> event = core::DecodeEventRequest(request.dump());
    EXPECT_TRUE(event.ok()) << event.status().ToString() << " for " << request.dump();
    if (!event.ok()) return {};
    Result<journal::Receipt> r = journal_->AppendEvent(std::move(*event)).get();
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return r.ok() ? *r : journal::Receipt{};
  }
  journal::Receipt AppendZ(const std::string& id) {
    Result<core::StoreEvent> z =
        core::DecodeZRequest(json({{"id", id}, {"created_at", kDay1}, {"cashier", "Mia"}}).dump());
    EXPECT_TRUE(z.ok()) << z.status().ToString();
    if (!z.ok()) return {};
    Result<journal::Receipt> r = journal_->AppendEvent(std::move(*z)).get();
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return r.ok() ? *r : journal::Receipt{};
  }

  std::vector<core::StoredSale> AllSales() {
    Result<std::vector<core::StoredSale>> all = journal_->List(0, 1000000);
    EXPECT_TRUE(all.ok());
    return all.ok() ? *all : std::vector<core::StoredSale>{};
  }

  UploaderOptions Options() {
    UploaderOptions o;
    o.cut.store_id = "S001";
    o.cut.prefix = "pos";
    o.cut.max_sales = 10;
    o.poll_interval_ms = 5;
    o.probe_interval_ms = 20;
    o.idle_probe_interval_ms = 50;
    o.backoff_base_ms = 5;
    o.backoff_cap_ms = 50;
    o.prune_interval_ms = 0;
    o.clock = &clock_;
    o.random = [] { return uint64_t{0}; };  // no jitter: immediate retries
    o.metrics = &metrics_;
    return o;
  }

  std::unique_ptr<Uploader> MakeUploader(const UploaderOptions& options,
                                         cloud::ObjectStore* store) {
    auto uploader = Uploader::Create(options, journal_.get(), store);
    EXPECT_TRUE(uploader.ok()) << uploader.status().ToString();
    return uploader.ok() ? std::move(uploader).value() : nullptr;
  }

  int64_t Uploaded() {
    int64_t n = 0;
    for (const auto& s : AllSales()) n += s.uploaded;
    return n;
  }

  int64_t Counter(const std::string& name, const core::Labels& labels = {}) {
    return metrics_.GetCounter(name, "", labels).Value();
  }

  machub::testing::TempDir tmp_{"sync_test"};  // removed after everything below
  std::string dir_;
  machub::testing::ManualClock clock_{*core::ParseRfc3339(kDay1) + 1000};
  core::MetricsRegistry metrics_;
  std::unique_ptr<journal::SqliteJournal> journal_;
  int next_id_ = 1;
};

// ---- Batch format ----

TEST_F(SyncTest, SameRowsGiveTheSameBytesWhateverTheChunking) {
  AppendSales(30);
  std::vector<core::StoredSale> sales = AllSales();
  for (BatchFormat format : {BatchFormat::kJsonl, BatchFormat::kCsv}) {
    const std::string raw = EncodeBatch("S001", sales, format);
    Result<std::string> a = GzipDeterministic(raw, 6);
    Result<std::string> b = GzipDeterministic(raw, 6);
    ASSERT_TRUE(a.ok() && b.ok());
    EXPECT_EQ(*a, *b);
    // Streaming one record at a time gives the same bytes as one shot.
    auto encoder = BatchEncoder::Create(format, "S001", 6);
    ASSERT_TRUE(encoder.ok());
    for (const auto& sale : sales) ASSERT_TRUE((*encoder)->Add(sale).ok());
    Result<EncodedObject> streamed = (*encoder)->Finish();
    ASSERT_TRUE(streamed.ok());
    EXPECT_EQ(streamed->bytes, *a);
    EXPECT_EQ(streamed->raw_bytes, static_cast<int64_t>(raw.size()));
    EXPECT_EQ(streamed->sha256_hex, core::ToHex(core::Sha256(*a)));
    EXPECT_EQ(streamed->md5_hex, Md5Hex(*a));
    // Fixed gzip header: magic, deflate, no flags, mtime 0, OS 255 ("unknown").
    ASSERT_GT(a->size(), 18u);
    EXPECT_EQ(static_cast<unsigned char>((*a)[0]), 0x1f);
    EXPECT_EQ(static_cast<unsigned char>((*a)[1]), 0x8b);
    EXPECT_EQ((*a)[3], 0);
    EXPECT_EQ(a->substr(4, 4), std::string(4, '\0'));
    EXPECT_EQ(static_cast<unsigned char>((*a)[9]), 255);
    Result<std::string> back = Gunzip(*a);
    ASSERT_TRUE(back.ok());
    EXPECT_EQ(*back, raw);
    // Another level gives other (still deterministic) bytes.
    EXPECT_NE(*GzipDeterministic(raw, 1), *a);
    EXPECT_EQ(*GzipDeterministic(raw, 1), *GzipDeterministic(raw, 1));
  }
  EXPECT_FALSE(Gunzip("not gzip").ok());
  std::string truncated = *GzipDeterministic(std::string(10000, 'x'));
  truncated.resize(truncated.size() - 4);
  EXPECT_FALSE(Gunzip(truncated).ok());
  EXPECT_FALSE(Gunzip(*GzipDeterministic(std::string(10000, 'x')), 100).ok());
}

TEST_F(SyncTest, JsonLinesHoldFullStoredSalesWithoutUploadBookkeeping) {
  SaleSpec spec;
  spec.id = "card-sale";
  spec.card = true;
  ASSERT_TRUE(journal_->Append(MakeSale(spec)).get().ok());
  std::vector<core::StoredSale> sales = AllSales();
  ASSERT_EQ(sales.size(), 1u);
  const std::string raw = EncodeBatch("S001", sales, BatchFormat::kJsonl);
  ASSERT_EQ(raw.back(), '\n');
  json line = json::parse(raw);
  EXPECT_FALSE(line.contains("uploaded"));
  EXPECT_EQ(line["seq"], 1);
  EXPECT_EQ(line["id"], "card-sale");
  EXPECT_EQ(line["payments"][1]["card_token"], "tok_123");
  EXPECT_EQ(line["payments"][1]["last4"], "4242");
  EXPECT_EQ(line["hash"], core::ToHex(sales[0].hash));
  EXPECT_EQ(line["prev_hash"], core::ToHex(core::GenesisHash("S001")));
  // The same line whatever the row's upload flag.
  sales[0].uploaded = true;
  EXPECT_EQ(EncodeBatch("S001", sales, BatchFormat::kJsonl), raw);
  // Golden: StoredSaleJson minus "uploaded".
  sales[0].uploaded = false;
  std::string expected = core::StoredSaleJson(sales[0]);
  expected.replace(expected.size() - std::string(",\"uploaded\":false}").size(), std::string::npos,
                   "}");
  EXPECT_EQ(raw, expected + "\n");
}

// Rows read back from the journal are decoded by the stored-row reader
// (core::DecodeStoredCanonical), which skips the request checks. The objects must hold
// exactly what the full decoder gives, for every shape of sale the format allows.
TEST_F(SyncTest, StoredRowsEncodeExactlyAsWithTheFullDecoder) {
  std::vector<json> requests;
  json rich;
  rich["id"] = "rich:1";
  rich["terminal_id"] = "T-7";
  rich["created_at"] = "2026-11-27T10:15:00.123+01:00";
  rich["currency"] = "USD";
  rich["cashier"] = "Ann \"A\" O'Neil \\ \u00fc \u65e5\u672c";
  rich["lines"] = {{{"sku", "a,b"},
                    {"name", "Beans, \"dark\" \\ roast"},
                    {"qty", "2.5"},
                    {"unit_price", "3.49"},
                    {"discount", "0.50"},
                    {"tax_rate", "0.0825"}},
                   {{"sku", "x"}, {"qty", "0.001"}, {"unit_price", "1000.00"}, {"tax_rate", "0.2"}},
                   {{"sku", "y"}, {"name", ""}, {"qty", "3"}, {"unit_price", "0.10"}}};
  rich["payments"] = {{{"method", "cash"}, {"amount", "20.00"}},
                      {{"method", "card"},
                       {"amount", "5.00"},
                       {"card_token", "tok_9"},
                       {"last4", "4242"},
                       {"brand", "visa"},
                       {"auth_code", "A1"},
                       {"offline", true}},
                      {{"method", "gift_card"}, {"amount", "0.01"}, {"offline", false}}};
  requests.push_back(rich);
  json refund = {
      {"id", "refund.1"},
      {"terminal_id", "T-7"},
      {"type", "refund"},
      {"ref", "rich:1"},
      {"created_at", kDay1},
      {"currency", "USD"},
      {"lines",
       {{{"sku", "x"}, {"qty", "0.001"}, {"unit_price", "1000.00"}, {"tax_rate", "0.2"}}}}};
  requests.push_back(refund);
  json yen = {
      {"id", "yen"},
      {"terminal_id", "T1"},
      {"created_at", kDay1},
      {"currency", "JPY"},
      {"total", "378"},
      {"lines", {{{"sku", "s"}, {"qty", "1"}, {"unit_price", "350"}, {"tax_rate", "0.08"}}}},
      {"payments", {{{"method", "cash"}, {"amount", "1000"}}}}};
  requests.push_back(yen);
  json dinar = {{"id", "bhd"},
                {"terminal_id", "T1"},
                {"created_at", kDay1},
                {"currency", "BHD"},
                {"lines", {{{"sku", "s"}, {"qty", "1"}, {"unit_price", "1.250"}}}},
                {"payments", {{{"method", "cash"}, {"amount", "5.000"}}}}};
  requests.push_back(dinar);
  json free_sale = {{"id", "free"},
                    {"terminal_id", "T1"},
                    {"created_at", kDay1},
                    {"currency", "EUR"},
                    {"lines", {{{"sku", "gift"}, {"qty", "1"}, {"unit_price", "0.00"}}}}};
  requests.push_back(free_sale);
  json void_sale = {{"id", "void-1"},
                    {"terminal_id", "T1"},
                    {"type", "void"},
                    {"ref", "yen"},
                    {"created_at", kDay1},
                    {"currency", "JPY"},
                    {"lines", {{{"sku", "s"}, {"qty", "1"}, {"unit_price", "350"}}}},
                    {"payments", {{{"method", "cash"}, {"amount", "350"}}}}};
  requests.push_back(void_sale);
  for (const json& request : requests) {
    Result<core::Sale> sale = core::DecodeSale(request.dump());
    ASSERT_TRUE(sale.ok()) << sale.status().ToString() << " for " << request.dump();
    Result<journal::Receipt> r = journal_->Append(std::move(*sale)).get();
    ASSERT_TRUE(r.ok()) << r.status().ToString();
  }
  const std::vector<core::StoredSale> fast = AllSales();
  ASSERT_EQ(fast.size(), requests.size());
  std::vector<core::StoredSale> full = fast;
  for (core::StoredSale& stored : full) {
    core::Sale direct;
    // The reader takes these rows itself (no fallback to the full decoder)...
    EXPECT_TRUE(core::TryDecodeCanonicalLayout(stored.canonical, &direct)) << stored.canonical;
    Result<core::Sale> decoded = core::DecodeCanonical(stored.canonical);
    ASSERT_TRUE(decoded.ok()) << decoded.status().ToString();
    stored.sale = *decoded;
    // ...and gives the same sale, computed amounts included.
    core::StoredSale via_reader = stored;
    via_reader.sale = direct;
    EXPECT_EQ(core::StoredSaleJson(via_reader), core::StoredSaleJson(stored));
    EXPECT_EQ(core::CanonicalSale(direct), stored.canonical);
  }
  EXPECT_EQ(EncodeBatch("S001", fast, BatchFormat::kJsonl),
            EncodeBatch("S001", full, BatchFormat::kJsonl));
  EXPECT_EQ(EncodeBatch("S001", fast, BatchFormat::kCsv),
            EncodeBatch("S001", full, BatchFormat::kCsv));
  EXPECT_EQ(full[1].sale.ref, "rich:1");
  EXPECT_EQ(full[0].sale.payments[1].auth_code, "A1");

  // Bytes outside the exact layout are not the reader's: the full decoder answers.
  const std::string& canonical = fast[0].canonical;
  core::Sale unused;
  std::string spaced = canonical;
  spaced.insert(1, " ");
  EXPECT_FALSE(core::TryDecodeCanonicalLayout(spaced, &unused));
  Result<core::Sale> fallback = core::DecodeStoredCanonical(spaced);
  ASSERT_TRUE(fallback.ok()) << fallback.status().ToString();
  EXPECT_EQ(core::CanonicalSale(*fallback), canonical);
  std::string reordered = canonical;
  const size_t type_at = reordered.find(",\"type\":\"sale\"");
  ASSERT_NE(type_at, std::string::npos);
  reordered.erase(type_at, std::string(",\"type\":\"sale\"").size());
  reordered.insert(reordered.size() - 1, ",\"type\":\"sale\"");
  EXPECT_FALSE(core::TryDecodeCanonicalLayout(reordered, &unused));
  ASSERT_TRUE(core::DecodeStoredCanonical(reordered).ok());
  EXPECT_EQ(core::CanonicalSale(*core::DecodeStoredCanonical(reordered)), canonical);
  // Corruption is reported as such, by either path.
  EXPECT_FALSE(core::TryDecodeCanonicalLayout(canonical.substr(0, canonical.size() - 1), &unused));
  EXPECT_EQ(core::DecodeStoredCanonical(canonical.substr(0, canonical.size() - 1)).status().code(),
            ErrorCode::kInternal);
  // A sale that pays less than its total breaks a rule: not accepted by the reader either.
  std::string underpaid = canonical;
  const size_t card = underpaid.find("\"amount\":\"20.00\"");
  ASSERT_NE(card, std::string::npos);
  underpaid.replace(card, std::string("\"amount\":\"20.00\"").size(), "\"amount\":\"0.00\"");
  EXPECT_FALSE(core::TryDecodeCanonicalLayout(underpaid, &unused));
  EXPECT_EQ(core::DecodeStoredCanonical(underpaid).status().code(), ErrorCode::kInternal);
}

TEST_F(SyncTest, CsvRowsPerLineItemWithRfc4180Quoting) {
  SaleSpec spec;
  spec.id = "q1";
  spec.name = "Beans, \"dark\" roast";
  spec.lines = 2;
  spec.card = true;
  ASSERT_TRUE(journal_->Append(MakeSale(spec)).get().ok());
  std::vector<core::StoredSale> sales = AllSales();
  const std::string raw = EncodeBatch("S001", sales, BatchFormat::kCsv);
  const std::string hash = core::ToHex(sales[0].hash);
  const std::string prev = core::ToHex(sales[0].prev_hash);
  const std::string head =
      "S001,1,q1,T01-000001,T01,sale,,2026-11-27T10:15:00.000Z,2026-11-27T10:15:01.000Z,false,"
      "USD,,";
  const std::string tail =
      ",14.00,1.16,15.16,21.00,5.84,cash:20.00;card:1.00," + hash + "," + prev + ",false\n";
  EXPECT_EQ(raw, std::string(CsvHeader()) + "\n" + head +
                     "1,sku-0,\"Beans, \"\"dark\"\" roast\",2,3.50,0.00,0.0825,7.00,0.58" + tail +
                     head + "2,sku-1,\"Beans, \"\"dark\"\" roast\",2,3.50,0.00,0.0825,7.00,0.58" +
                     tail);
  EXPECT_EQ(CsvHeader(),
            "store_id,seq,sale_id,receipt_no,terminal_id,type,ref,created_at,received_at,"
            "clock_skew,currency,cashier,line_no,sku,name,qty,unit_price,discount,tax_rate,"
            "line_net,line_tax,sale_subtotal,sale_tax,sale_total,sale_paid,sale_change,"
            "payment_methods,hash,prev_hash,clock_untrusted");
}

// Issue 13: text cells a spreadsheet would run as formulas are written quoted with a
// leading apostrophe in CSV; JSON Lines keeps the exact text; numbers are untouched.
TEST_F(SyncTest, CsvNeutralisesFormulaCells) {
  const std::string names[] = {"=HYPERLINK(\"http://x\")", "+1+2", "-2+3", "@SUM(A1)",
                               "Plain = fine"};
  for (size_t i = 0; i < std::size(names); ++i) {
    SaleSpec spec;
    spec.id = "f" + std::to_string(i);
    spec.name = names[i];
    ASSERT_TRUE(journal_->Append(MakeSale(spec)).get().ok());
  }
  std::vector<core::StoredSale> sales = AllSales();
  const std::string csv = EncodeBatch("S001", sales, BatchFormat::kCsv);
  EXPECT_NE(csv.find(",\"'=HYPERLINK(\"\"http://x\"\")\","), std::string::npos) << csv;
  EXPECT_NE(csv.find(",\"'+1+2\","), std::string::npos);
  EXPECT_NE(csv.find(",\"'-2+3\","), std::string::npos);
  EXPECT_NE(csv.find(",\"'@SUM(A1)\","), std::string::npos);
  EXPECT_NE(csv.find(",Plain = fine,"), std::string::npos);
  // No cell starts with a formula character unless it is a number the hub wrote.
  for (const char* bad : {",=", ",+", ",@", ",\t", ",-"}) {
    EXPECT_EQ(csv.find(bad), std::string::npos) << bad;
  }
  const std::string jsonl = EncodeBatch("S001", sales, BatchFormat::kJsonl);
  EXPECT_NE(jsonl.find("\"name\":\"=HYPERLINK(\\\"http://x\\\")\""), std::string::npos) << jsonl;
  EXPECT_NE(jsonl.find("\"name\":\"-2+3\""), std::string::npos);
}

TEST(BatchKeyTest, LayoutDatePartitionAndParsing) {
  const int64_t late = *core::ParseRfc3339("2026-11-27T23:59:59.999Z");
  EXPECT_EQ(BatchKey("pos", "S001", 1, 5000, late, BatchFormat::kJsonl),
            "pos/sales/store=S001/date=2026-11-27/S001-000000000001-000000005000.jsonl.gz");
  EXPECT_EQ(BatchKey("/chain/pos/", "S-7", 123456789012, 123456789013, late + 1, BatchFormat::kCsv),
            "chain/pos/sales/store=S-7/date=2026-11-28/S-7-123456789012-123456789013.csv.gz");
  EXPECT_EQ(BatchKey("", "S001", 2, 3, 0, BatchFormat::kJsonl),
            "sales/store=S001/date=1970-01-01/S001-000000000002-000000000003.jsonl.gz");
  EXPECT_EQ(UtcDate(-1), "1969-12-31");
  EXPECT_EQ(UtcDay(-1), -1);
  EXPECT_EQ(UtcDay(86'400'000), 1);
  EXPECT_EQ(SalesPrefix("pos/", "S001"), "pos/sales/store=S001/");
  ParsedKey parsed;
  ASSERT_TRUE(ParseBatchKey(
      "chain/pos/sales/store=S-7/date=2026-11-28/S-7-123456789012-123456789013.csv.gz", &parsed));
  EXPECT_EQ(parsed.store_id, "S-7");
  EXPECT_EQ(parsed.first_seq, 123456789012);
  EXPECT_EQ(parsed.last_seq, 123456789013);
  EXPECT_EQ(parsed.format, BatchFormat::kCsv);
  EXPECT_EQ(parsed.date, "2026-11-28");
  EXPECT_FALSE(ParseBatchKey("pos/sales/store=S001/x.jsonl.gz", &parsed));
  EXPECT_FALSE(ParseBatchKey("S001-000000000001-000000000002.txt.gz", &parsed));
  EXPECT_FALSE(ParseBatchKey("S001-00000000000a-000000000002.csv.gz", &parsed));
  EXPECT_FALSE(ParseBatchKey("-000000000001-000000000002.csv.gz", &parsed));
  // Metadata names and values (docs/S3_FORMAT.md).
  auto meta = ObjectMetadata("S001", BatchFormat::kJsonl, 1, 10, "aa", "bb", "cc", "dd");
  EXPECT_EQ(meta, (std::map<std::string, std::string>{{"format-version", "1"},
                                                      {"format", "jsonl"},
                                                      {"store-id", "S001"},
                                                      {"first-seq", "1"},
                                                      {"last-seq", "10"},
                                                      {"sales", "10"},
                                                      {"prev-hash", "aa"},
                                                      {"first-hash", "bb"},
                                                      {"last-hash", "cc"},
                                                      {"sha256", "dd"}}));
}

// ---- Cutting rules ----

TEST_F(SyncTest, CutsByCountThenByAge) {
  AppendSales(25);
  CutOptions options;
  options.max_sales = 10;
  options.max_age_ms = 60'000;
  BatchCutter cutter(journal_.get(), options, &clock_);
  std::vector<EncodedBatch> batches;
  for (;;) {
    Result<journal::SyncBounds> bounds = journal_->GetSyncBounds();
    ASSERT_TRUE(bounds.ok());
    Result<std::optional<EncodedBatch>> next = cutter.Next(*bounds, false);
    ASSERT_TRUE(next.ok()) << next.status().ToString();
    if (!next->has_value()) break;
    ASSERT_TRUE(journal_->RecordBatch((*next)->record).ok());
    batches.push_back(std::move(**next));
  }
  ASSERT_EQ(batches.size(), 2u);  // 1..10, 11..20; 21..25 are too young and too few
  EXPECT_EQ(batches[0].record.first_seq, 1);
  EXPECT_EQ(batches[0].record.last_seq, 10);
  EXPECT_EQ(batches[0].stop, EncodedBatch::Stop::kMaxSales);
  EXPECT_EQ(batches[1].record.first_seq, 11);
  EXPECT_EQ(batches[1].record.last_seq, 20);
  clock_.Advance(59'000);  // the oldest waiting sale is 59 s old (received at +1 s)
  ASSERT_FALSE(cutter.Next(*journal_->GetSyncBounds(), false)->has_value());
  clock_.Advance(1'000);
  Result<std::optional<EncodedBatch>> aged = cutter.Next(*journal_->GetSyncBounds(), false);
  ASSERT_TRUE(aged.ok() && aged->has_value());
  EXPECT_EQ((*aged)->record.first_seq, 21);
  EXPECT_EQ((*aged)->record.last_seq, 25);
  EXPECT_EQ((*aged)->stop, EncodedBatch::Stop::kEnd);
  // The record carries what the uploader and the journal need.
  const journal::BatchRecord& r = (*aged)->record;
  EXPECT_EQ(r.key, "sales/store=S001/date=2026-11-27/S001-000000000021-000000000025.jsonl.gz");
  EXPECT_EQ(r.format, "jsonl");
  EXPECT_EQ(r.gzip_level, kDefaultGzipLevel);
  EXPECT_EQ(r.gz_bytes, static_cast<int64_t>((*aged)->bytes.size()));
  EXPECT_EQ(r.sha256_hex, core::ToHex(core::Sha256((*aged)->bytes)));
  EXPECT_EQ(r.md5_hex, Md5Hex((*aged)->bytes));
  EXPECT_EQ(r.raw_bytes, static_cast<int64_t>(Gunzip((*aged)->bytes)->size()));
  EXPECT_EQ(r.canonical_bytes, *journal_->CanonicalBytes(20, 25));
  std::vector<core::StoredSale> sales = AllSales();
  EXPECT_EQ((*aged)->metadata.at("prev-hash"), core::ToHex(sales[19].hash));
  EXPECT_EQ((*aged)->metadata.at("first-hash"), core::ToHex(sales[20].hash));
  EXPECT_EQ((*aged)->metadata.at("last-hash"), core::ToHex(sales[24].hash));
  // Force cuts young sales at once (sync --once).
  AppendSales(3);
  ASSERT_TRUE(journal_->RecordBatch((*aged)->record).ok());
  ASSERT_FALSE(cutter.Next(*journal_->GetSyncBounds(), false)->has_value());
  Result<std::optional<EncodedBatch>> forced = cutter.Next(*journal_->GetSyncBounds(), true);
  ASSERT_TRUE(forced.ok() && forced->has_value());
  EXPECT_EQ((*forced)->record.first_seq, 26);
  EXPECT_EQ((*forced)->record.last_seq, 28);
  // ... but no further than upto_seq.
  Result<std::optional<EncodedBatch>> upto = cutter.Next(*journal_->GetSyncBounds(), true, 27);
  ASSERT_TRUE(upto.ok() && upto->has_value());
  EXPECT_EQ((*upto)->record.last_seq, 27);
}

TEST_F(SyncTest, CutsByBytesAndNeverExceedsTheLimit) {
  // Sales of 100 lines: about 9 KB of canonical bytes and 14 KB of JSON each.
  for (int i = 0; i < 12; ++i) {
    SaleSpec spec;
    spec.id = Str("big", i);
    spec.lines = 100;
    ASSERT_TRUE(journal_->Append(MakeSale(spec)).get().ok());
  }
  CutOptions options;
  options.max_raw_bytes = 64 << 10;
  BatchCutter cutter(journal_.get(), options, &clock_);
  Result<std::optional<EncodedBatch>> next = cutter.Next(*journal_->GetSyncBounds(), false);
  ASSERT_TRUE(next.ok()) << next.status().ToString();
  ASSERT_TRUE(next->has_value());  // due: canonical bytes reached the limit
  EXPECT_EQ((*next)->stop, EncodedBatch::Stop::kMaxBytes);
  EXPECT_LE((*next)->record.raw_bytes, 64 << 10);
  const int64_t per_sale = (*next)->record.raw_bytes / (*next)->record.sales();
  EXPECT_GT((*next)->record.raw_bytes + per_sale, 64 << 10);  // as full as it gets
  // One sale larger than the limit still makes a batch of one.
  options.max_raw_bytes = 64 << 10;
  SaleSpec huge;
  huge.id = "huge";
  huge.lines = 1000;
  BatchCutter forced(journal_.get(), options, &clock_);
  ASSERT_TRUE(journal_->RecordBatch((*next)->record).ok());
  journal::SyncBounds bounds = *journal_->GetSyncBounds();
  bounds.batched_seq = 12;
  ASSERT_TRUE(journal_->Append(MakeSale(huge)).get().ok());
  bounds = *journal_->GetSyncBounds();
  // Skip the rest of the 12 first.
  while (bounds.batched_seq < 12) {
    auto b = forced.Next(bounds, true, 12);
    ASSERT_TRUE(b.ok() && b->has_value());
    ASSERT_TRUE(journal_->RecordBatch((*b)->record).ok());
    bounds = *journal_->GetSyncBounds();
  }
  auto one = forced.Next(bounds, true);
  ASSERT_TRUE(one.ok() && one->has_value());
  EXPECT_EQ((*one)->record.sales(), 1);
  EXPECT_GT((*one)->record.raw_bytes, 64 << 10);
  EXPECT_EQ(ValidateCutOptions(CutOptions{.max_raw_bytes = 16 << 20}).code(),
            ErrorCode::kInvalidArgument);
}

// A range of 1000 sales or more is compressed on a helper thread while rows are read
// (batch_cutter.h): the object must be byte for byte the one-shot encoding of the same
// rows, for both formats, with the byte limit and when re-encoded.
TEST_F(SyncTest, LargeBatchesEncodedInTwoStagesGiveTheSameBytes) {
  std::vector<std::future<Result<journal::Receipt>>> pending;
  for (int i = 0; i < 2400; ++i) {
    SaleSpec spec;
    spec.id = Str("two-stage-", i);
    spec.lines = 1 + i % 4;
    spec.card = i % 3 == 0;
    pending.push_back(journal_->Append(MakeSale(spec)));
  }
  for (auto& f : pending) ASSERT_TRUE(f.get().ok());
  const std::vector<core::StoredSale> sales = AllSales();
  ASSERT_EQ(sales.size(), 2400u);
  for (BatchFormat format : {BatchFormat::kJsonl, BatchFormat::kCsv}) {
    CutOptions options;
    options.format = format;
    options.max_sales = 5000;
    BatchCutter cutter(journal_.get(), options, &clock_);
    Result<std::optional<EncodedBatch>> next =
        cutter.Next(*journal_->GetSyncBounds(), /*force=*/true);
    ASSERT_TRUE(next.ok() && next->has_value()) << next.status().ToString();
    const EncodedBatch& batch = **next;
    EXPECT_EQ(batch.record.sales(), 2400);
    const std::string raw = EncodeBatch("S001", sales, format);
    EXPECT_EQ(batch.record.raw_bytes, static_cast<int64_t>(raw.size()));
    EXPECT_EQ(batch.bytes, *GzipDeterministic(raw, options.gzip_level));
    EXPECT_EQ(batch.record.sha256_hex, Sha256Hex(batch.bytes));
    EXPECT_EQ(*Gunzip(batch.bytes), raw);
    // Re-encoding the recorded range (the path after a restart) gives the same object.
    Result<EncodedBatch> again = cutter.Reencode(batch.record);
    ASSERT_TRUE(again.ok()) << again.status().ToString();
    EXPECT_EQ(again->bytes, batch.bytes);
  }
  // The byte limit still holds exactly: the batch ends before the record that would
  // cross it, and its bytes are those of the sales it holds.
  CutOptions limited;
  limited.max_sales = 5000;
  limited.max_raw_bytes = 1 << 20;
  BatchCutter cutter(journal_.get(), limited, &clock_);
  Result<std::optional<EncodedBatch>> next = cutter.Next(*journal_->GetSyncBounds(), true);
  ASSERT_TRUE(next.ok() && next->has_value());
  const EncodedBatch& batch = **next;
  EXPECT_EQ(batch.stop, EncodedBatch::Stop::kMaxBytes);
  const std::vector<core::StoredSale> held(sales.begin(), sales.begin() + batch.record.sales());
  const std::string raw = EncodeBatch("S001", held, BatchFormat::kJsonl);
  EXPECT_LE(static_cast<int64_t>(raw.size()), limited.max_raw_bytes);
  EXPECT_GT(raw.size() + EncodeBatch("S001", {sales[held.size()]}, BatchFormat::kJsonl).size(),
            static_cast<size_t>(limited.max_raw_bytes));
  EXPECT_EQ(batch.bytes, *GzipDeterministic(raw));
}

TEST_F(SyncTest, ABatchNeverSpansTwoUtcDates) {
  clock_.Set(*core::ParseRfc3339("2026-11-27T23:59:50Z"));
  AppendSales(3);
  clock_.Set(*core::ParseRfc3339("2026-11-28T00:00:05Z"));
  AppendSales(2);
  BatchCutter cutter(journal_.get(), CutOptions{}, &clock_);
  // Due although young and few: the waiting sales span two dates.
  Result<std::optional<EncodedBatch>> day1 = cutter.Next(*journal_->GetSyncBounds(), false);
  ASSERT_TRUE(day1.ok() && day1->has_value());
  EXPECT_EQ((*day1)->record.first_seq, 1);
  EXPECT_EQ((*day1)->record.last_seq, 3);
  EXPECT_EQ((*day1)->stop, EncodedBatch::Stop::kDateChange);
  EXPECT_NE((*day1)->record.key.find("/date=2026-11-27/"), std::string::npos);
  ASSERT_TRUE(journal_->RecordBatch((*day1)->record).ok());
  // The next day's sales wait for their own age rule.
  EXPECT_FALSE(cutter.Next(*journal_->GetSyncBounds(), false)->has_value());
  Result<std::optional<EncodedBatch>> day2 = cutter.Next(*journal_->GetSyncBounds(), true);
  ASSERT_TRUE(day2.ok() && day2->has_value());
  EXPECT_EQ((*day2)->record.first_seq, 4);
  EXPECT_NE((*day2)->record.key.find("/date=2026-11-28/"), std::string::npos);
}

// ---- Today's figures for the stores item ----
TEST_F(SyncTest, DayTotalsCountTheUtcDayIncrementallyAndAfterARestart) {
  clock_.Set(*core::ParseRfc3339("2026-11-27T23:59:50Z"));
  AppendSales(20);  // s1..s20, seq 1..20
  auto append = [&](const std::string& id, const std::string& type, const std::string& ref) {
    SaleSpec spec;
    spec.id = id;
    spec.type = type;
    spec.ref = ref;
    Result<journal::Receipt> r = journal_->Append(MakeSale(spec)).get();
    ASSERT_TRUE(r.ok()) << r.status().ToString();
  };
  append("r1", "refund", "s1");                       // seq 21
  const int64_t one = AllSales().front().sale.total;  // every sale and refund here: 1 line
  ASSERT_GT(one, 0);

  DayTotals day(journal_.get(), &clock_, 3);  // small chunks: several List calls
  Result<DayFigures> f = day.Update();
  ASSERT_TRUE(f.ok()) << f.status().ToString();
  EXPECT_EQ(f->date, "2026-11-27");
  EXPECT_EQ(f->currency, "USD");
  EXPECT_EQ(f->sales, 20);
  EXPECT_EQ(f->sales_total, 20 * one);
  EXPECT_EQ(f->refunds, 1);
  EXPECT_EQ(f->refunds_total, one);
  EXPECT_EQ(f->net_total(), 19 * one);
  EXPECT_EQ(f->first_seq, 1);
  EXPECT_EQ(f->last_seq, 21);
  // Only the new entries are read next time; the figures add up.
  AppendSales(2);  // seq 22, 23
  f = day.Update();
  EXPECT_EQ(f->sales, 22);
  EXPECT_EQ(f->last_seq, 23);

  // Midnight: a new day starts from zero.
  clock_.Set(*core::ParseRfc3339("2026-11-28T00:00:05Z"));
  f = day.Update();
  EXPECT_EQ(f->date, "2026-11-28");
  EXPECT_EQ(f->sales, 0);
  EXPECT_EQ(f->last_seq, 0);
  AppendSales(3, "d");  // seq 24..26
  append("v1", "void", "d25");
  f = day.Update();
  EXPECT_EQ(f->sales, 3);
  EXPECT_EQ(f->voids, 1);
  EXPECT_EQ(f->voids_total, one);
  EXPECT_EQ(f->net_total(), 2 * one);
  EXPECT_EQ(f->first_seq, 24);
  EXPECT_EQ(f->last_seq, 27);

  // A restarted hub finds the day's first entry by searching: the same figures.
  DayTotals restarted(journal_.get(), &clock_, 500);
  Result<DayFigures> g = restarted.Update();
  ASSERT_TRUE(g.ok());
  EXPECT_EQ(g->first_seq, 24);
  EXPECT_EQ(g->sales, f->sales);
  EXPECT_EQ(g->voids_total, f->voids_total);
  EXPECT_EQ(g->net_total(), f->net_total());

  json attributes = DayTotals::Attributes(*g);
  EXPECT_EQ(attributes["today"]["S"], "2026-11-28");
  EXPECT_EQ(attributes["today_sales"]["N"], "3");
  EXPECT_EQ(attributes["today_net_total"]["N"], std::to_string(2 * one));
  EXPECT_EQ(attributes["today_currency"]["S"], "USD");
  EXPECT_EQ(attributes["today_last_seq"]["N"], "27");
}

// Store events are today's entries (first/last seq) but not sales: not counted, not
// summed, and a day that starts with a drawer_open takes its currency from the first sale.
TEST_F(SyncTest, DayTotalsSkipStoreEvents) {
  clock_.Set(*core::ParseRfc3339("2026-11-27T12:00:00Z"));
  AppendEvent("open-1", "drawer_open", {{"amount", "100.00"}});  // seq 1
  AppendSales(3);                                                // seq 2..4
  AppendEvent("in-1", "cash_in", {{"amount", "20.00"}, {"reason", "float"}});
  AppendEvent("close-1", "drawer_close", {{"counted", "150.00"}});
  AppendZ("z-1");  // seq 7
  const int64_t one = AllSales()[1].sale.total;
  DayTotals day(journal_.get(), &clock_, 2);
  Result<DayFigures> f = day.Update();
  ASSERT_TRUE(f.ok()) << f.status().ToString();
  EXPECT_EQ(f->currency, "USD");
  EXPECT_EQ(f->sales, 3);
  EXPECT_EQ(f->sales_total, 3 * one);
  EXPECT_EQ(f->refunds + f->voids + f->other_currency, 0);
  EXPECT_EQ(f->first_seq, 1);
  EXPECT_EQ(f->last_seq, 7);
  // A restart searches the day's first entry over events too.
  DayTotals restarted(journal_.get(), &clock_);
  Result<DayFigures> g = restarted.Update();
  ASSERT_TRUE(g.ok());
  EXPECT_EQ(g->first_seq, 1);
  EXPECT_EQ(g->sales_total, f->sales_total);
}

TEST_F(SyncTest, DayTotalsOfADayWithoutEntries) {
  clock_.Set(*core::ParseRfc3339("2026-11-27T12:00:00Z"));
  AppendSales(5);
  clock_.Set(*core::ParseRfc3339("2026-11-29T08:00:00Z"));
  DayTotals day(journal_.get(), &clock_);
  Result<DayFigures> f = day.Update();
  ASSERT_TRUE(f.ok());
  EXPECT_EQ(f->date, "2026-11-29");
  EXPECT_EQ(f->sales, 0);
  EXPECT_EQ(f->first_seq, 0);
  json attributes = DayTotals::Attributes(*f);
  EXPECT_EQ(attributes["today_sales_total"]["N"], "0");
  EXPECT_FALSE(attributes.contains("today_currency"));
}

// ---- Backoff and error texts ----

TEST(BackoffTest, ExponentialCeilingWithFullJitter) {
  EXPECT_EQ(BackoffCeilingMs(0, 1000, 60000), 0);
  EXPECT_EQ(BackoffCeilingMs(1, 1000, 60000), 1000);
  EXPECT_EQ(BackoffCeilingMs(2, 1000, 60000), 2000);
  EXPECT_EQ(BackoffCeilingMs(6, 1000, 60000), 32000);
  EXPECT_EQ(BackoffCeilingMs(7, 1000, 60000), 60000);
  EXPECT_EQ(BackoffCeilingMs(1000000, 1000, 60000), 60000);
  std::vector<uint64_t> values = {0, 1000, 1001, 12345678901ULL};
  size_t i = 0;
  RandomSource fixed = [&] { return values[i++ % values.size()]; };
  EXPECT_EQ(FullJitterDelayMs(1, 1000, 60000, fixed), 0);
  EXPECT_EQ(FullJitterDelayMs(1, 1000, 60000, fixed), 1000);  // the ceiling is reachable
  EXPECT_EQ(FullJitterDelayMs(1, 1000, 60000, fixed), 0);     // 1001 % 1001
  EXPECT_LE(FullJitterDelayMs(50, 1000, 60000, fixed), 60000);
  RandomSource real = DefaultRandomSource();
  for (int n = 0; n < 1000; ++n) {
    int64_t d = FullJitterDelayMs(3, 1000, 60000, real);
    ASSERT_GE(d, 0);
    ASSERT_LE(d, 4000);
  }
}

TEST(ShortErrorTest, NamesTheKindAndTheStoreCodeWithoutSecrets) {
  EXPECT_EQ(ShortError(cloud::MapS3Error("PUT", "pos/k", 403, "SignatureDoesNotMatch", "", 0, "")),
            "auth: SignatureDoesNotMatch (403)");
  EXPECT_EQ(ShortError(cloud::MapS3Error("PUT", "pos/k", 503, "SlowDown", "Reduce", 0, "")),
            "network: SlowDown (503)");
  EXPECT_EQ(ShortError(cloud::MapS3Error("HEAD", "", 403, "", "", 0, "")), "auth: HTTP 403");
  EXPECT_EQ(ShortError(cloud::MapS3Error("HEAD", "", 404, "NoSuchBucket", "", 0, "")),
            "not_found: NoSuchBucket (404)");
  EXPECT_EQ(ShortError(cloud::MapS3Error("PUT", "pos/k", 0, "", "", 7, "Failed to connect")),
            "network: Couldn't connect to server (Failed to connect)");
  EXPECT_EQ(ShortError(Status(ErrorCode::kUnavailable, "local sink folder is missing: /x")),
            "network: local sink folder is missing: /x");
  EXPECT_EQ(FailureReason(Status(ErrorCode::kInvalidArgument, "x")), "invalid");
  // The facts travel as details, not text: a message that merely looks like one is kept.
  const Status s3 = cloud::MapS3Error("PUT", "pos/k", 503, "SlowDown", "Reduce", 0, "");
  EXPECT_EQ(s3.detail("http_status"), "503");
  EXPECT_EQ(s3.detail("cloud_code"), "SlowDown");
  EXPECT_EQ(ShortError(Status(ErrorCode::kUnavailable, "S3 PUT k: HTTP 500 Oops")),
            "network: S3 PUT k: HTTP 500 Oops");
  // A long message is cut on a character boundary, never inside a UTF-8 sequence.
  std::string long_text(199, 'x');
  long_text += "\xC3\xA9\xC3\xA9";  // "éé": bytes 199..202
  const std::string cut = ShortError(Status(ErrorCode::kIoError, long_text));
  EXPECT_EQ(cut, "io: " + std::string(199, 'x') + "...");
  EXPECT_TRUE(nlohmann::json::accept("\"" + cut + "\""));
}

// ---- The uploader against a local folder ----

class LocalSyncTest : public SyncTest {
 protected:
  void SetUp() override {
    SyncTest::SetUp();
    auto sink = cloud::LocalSink::Open({.root = dir_ + "/sink", .fsync = false});
    ASSERT_TRUE(sink.ok());
    sink_ = std::move(*sink);
  }
  std::vector<std::string> Keys(const std::string& prefix = "pos/sales/") {
    std::vector<std::string> keys;
    auto listed = sink_->List(prefix);
    EXPECT_TRUE(listed.ok());
    for (auto& [key, info] : listed->objects) keys.push_back(key);
    return keys;
  }
  // Replaces the object at `key` with `raw` gzipped, with consistent sha256 metadata and
  // ETag (as a forger, or an earlier hub, would leave it): only verify's own checks can
  // tell.
  void ReplaceObject(const std::string& key, const std::string& raw) {
    const std::string body = *GzipDeterministic(raw);
    auto head = sink_->Head(key);
    ASSERT_TRUE(head.ok());
    fs::remove(sink_->root() + "/" + key);
    cloud::PutRequest put;
    put.key = key;
    put.body = body;
    put.metadata = head->metadata;
    put.metadata["sha256"] = Sha256Hex(body);
    ASSERT_TRUE(sink_->Put(put).ok());
  }
  std::unique_ptr<cloud::LocalSink> sink_;
};

TEST_F(LocalSyncTest, UploadsEverythingOnceMarksItAndVerifies) {
  AppendSales(45);
  UploaderOptions options = Options();
  options.cut.max_age_ms = 0;  // cut at once
  std::atomic<int> after_batch_calls{0};
  options.after_batch = [&] { after_batch_calls.fetch_add(1); };
  auto uploader = MakeUploader(options, sink_.get());
  uploader->Start();
  ASSERT_TRUE(WaitUntil([&] { return Uploaded() == 45; }));
  // More sales while it runs.
  AppendSales(7);
  uploader->Nudge();
  ASSERT_TRUE(WaitUntil([&] { return Uploaded() == 52; }));
  ASSERT_TRUE(WaitUntil([&] { return uploader->GetBacklog().sales == 0; }));
  uploader->Stop();
  // The hook ran once per batch done, on the upload thread (serve trims the heap there).
  EXPECT_EQ(after_batch_calls.load(), static_cast<int>(Keys().size()));

  // 10+10+10+10+5, then the 7 in as many batches as the 5 ms polls saw them arrive.
  std::vector<std::string> keys = Keys();
  ASSERT_GE(keys.size(), 6u);
  EXPECT_EQ(keys[0],
            "pos/sales/store=S001/date=2026-11-27/S001-000000000001-000000000010.jsonl.gz");
  EXPECT_EQ(keys[4],
            "pos/sales/store=S001/date=2026-11-27/S001-000000000041-000000000045.jsonl.gz");
  // Each object is the re-encoding of its rows, with the recorded hashes and metadata.
  Result<std::vector<journal::BatchRecord>> batches = journal_->ListBatches(false);
  ASSERT_TRUE(batches.ok());
  ASSERT_EQ(batches->size(), keys.size());
  for (const journal::BatchRecord& b : *batches) {
    EXPECT_EQ(b.state, journal::BatchState::kUploaded);
    auto got = sink_->Get(b.key);
    ASSERT_TRUE(got.ok());
    EXPECT_EQ(Md5Hex(got->body), b.md5_hex);
    EXPECT_EQ(Sha256Hex(got->body), b.sha256_hex);
    auto head = sink_->Head(b.key);
    EXPECT_EQ(head->metadata.at("sha256"), b.sha256_hex);
    EXPECT_EQ(head->metadata.at("first-seq"), std::to_string(b.first_seq));
    std::vector<core::StoredSale> rows =
        *journal_->List(b.first_seq - 1, static_cast<int>(b.sales()));
    EXPECT_EQ(*Gunzip(got->body), EncodeBatch("S001", rows, BatchFormat::kJsonl));
  }
  VerifyOptions verify;
  verify.prefix = "pos";
  Result<VerifySummary> summary = VerifyStore(*sink_, verify);
  ASSERT_TRUE(summary.ok()) << summary.status().ToString();
  EXPECT_TRUE(summary->ok()) << summary->ToJson();
  EXPECT_EQ(summary->objects, static_cast<int64_t>(keys.size()));
  EXPECT_EQ(summary->sales, 52);
  EXPECT_EQ(summary->first_seq, 1);
  EXPECT_EQ(summary->last_seq, 52);

  EXPECT_EQ(Counter("machub_upload_successes_total"), static_cast<int64_t>(keys.size()));
  EXPECT_EQ(Counter("machub_upload_attempts_total"), static_cast<int64_t>(keys.size()));
  EXPECT_GT(Counter("machub_upload_bytes_total"), 0);
  json status = json(uploader->CloudStatusJson());
  EXPECT_EQ(status["state"], "online");
  EXPECT_EQ(status["quarantined"], 0);
  EXPECT_EQ(status["conditional_put"], "on");  // LocalSink honors If-None-Match
  EXPECT_EQ(status["target"], "file://" + fs::canonical(dir_ + "/sink").string() + "/pos");
  EXPECT_FALSE(status["last_success_at"].is_null());
  json backlog = json(uploader->BacklogJson());
  EXPECT_EQ(backlog, json::parse(R"({"sales":0,"bytes":0,"oldest_sale_at":null})"));
  // The auto probe left its object beside the sales.
  EXPECT_EQ(Keys("pos/_machub/").size(), 1u);
}

// Issue 11 part 6: the status's backlog is exact when read. A sale acknowledged just
// before the read counts, with the upload thread running (which refreshed its figures at
// most once a second before) and with sync disabled (every 2 s before).
TEST_F(LocalSyncTest, BacklogIsExactWhenReadRightAfterASale) {
  UploaderOptions options = Options();
  options.cut.max_age_ms = 3600 * 1000;  // a lone sale waits: it stays in the backlog
  auto uploader = MakeUploader(options, sink_.get());
  uploader->Start();
  ASSERT_TRUE(WaitUntil([&] { return uploader->GetStatus().state == CloudState::kOnline; }));
  std::this_thread::sleep_for(std::chrono::milliseconds(50));  // the thread's first refresh
  for (int i = 1; i <= 3; ++i) {
    AppendSales(1);
    json backlog = json(uploader->BacklogJson());
    EXPECT_EQ(backlog["sales"], i);
    EXPECT_EQ(backlog["bytes"], *journal_->CanonicalBytes(0, i));
  }
  uploader->Stop();

  auto disabled = SyncService::Create(SyncConfig{}, "S001", journal_.get(), &metrics_, &clock_);
  ASSERT_TRUE(disabled.ok());
  EXPECT_EQ(json((*disabled)->BacklogJson())["sales"], 3);
  AppendSales(1);
  EXPECT_EQ(json((*disabled)->BacklogJson())["sales"], 4);
}

TEST_F(LocalSyncTest, CrashBetweenPutAndMarkIsResolvedByTheRecordedMd5) {
  AppendSales(25);
  // A first run cut and recorded batch 1..10 and PUT it, then died before the mark.
  BatchCutter cutter(journal_.get(), CutOptions{.prefix = "pos", .max_sales = 10}, &clock_);
  auto first = cutter.Next(*journal_->GetSyncBounds(), true);
  ASSERT_TRUE(first.ok() && first->has_value());
  ASSERT_TRUE(journal_->RecordBatch((*first)->record).ok());
  cloud::PutRequest put;
  put.key = (*first)->record.key;
  put.body = (*first)->bytes;
  put.metadata = (*first)->metadata;
  ASSERT_EQ(*sink_->Put(put), cloud::PutOutcome::kCreated);

  // The restarted uploader re-encodes from the rows, meets the object (412), sees the
  // recorded MD5, marks, and goes on. RunOnce uploads all that is stored.
  auto uploader = MakeUploader(Options(), sink_.get());
  std::vector<OnceProgress> seen;
  OnceOptions once;
  once.progress = [&](const OnceProgress& p) { seen.push_back(p); };
  Result<OnceProgress> done = uploader->RunOnce(once);
  ASSERT_TRUE(done.ok()) << done.status().ToString();
  EXPECT_EQ(done->batches, 3);
  EXPECT_EQ(done->sales, 25);
  EXPECT_EQ(done->total_sales, 25);
  ASSERT_EQ(seen.size(), 3u);
  EXPECT_EQ(seen[0].sales, 10);
  EXPECT_EQ(seen[2].sales, 25);
  EXPECT_EQ(Keys().size(), 3u);
  EXPECT_EQ(Uploaded(), 25);
  EXPECT_EQ(Counter("machub_batches_quarantined_total"), 0);
  // Nothing left: a second run does nothing.
  Result<OnceProgress> again = uploader->RunOnce(OnceOptions{});
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->batches, 0);
  EXPECT_TRUE(VerifyStore(*sink_, VerifyOptions{.prefix = "pos"})->ok());
}

TEST_F(LocalSyncTest, OtherContentAtTheKeyIsQuarantinedNeverOverwritten) {
  AppendSales(30);
  const std::string key = BatchKey("pos", "S001", 11, 20, clock_.NowMs(), BatchFormat::kJsonl);
  cloud::PutRequest put;
  put.key = key;
  put.body = "someone else's bytes";
  ASSERT_EQ(*sink_->Put(put), cloud::PutOutcome::kCreated);

  auto uploader = MakeUploader(Options(), sink_.get());
  Result<OnceProgress> done = uploader->RunOnce(OnceOptions{});
  ASSERT_TRUE(done.ok()) << done.status().ToString();
  EXPECT_EQ(done->quarantined, 1);
  EXPECT_EQ(done->batches, 3);
  EXPECT_EQ(sink_->Get(key)->body, "someone else's bytes");
  EXPECT_EQ(Uploaded(), 20);  // 1..10 and 21..30
  Result<std::vector<journal::BatchRecord>> unfinished = journal_->ListBatches(true);
  ASSERT_EQ(unfinished->size(), 1u);
  EXPECT_EQ((*unfinished)[0].state, journal::BatchState::kQuarantined);
  EXPECT_EQ((*unfinished)[0].first_seq, 11);
  EXPECT_NE((*unfinished)[0].last_error.find("etag differs"), std::string::npos);
  EXPECT_EQ(Counter("machub_batches_quarantined_total"), 1);
  json status = json(uploader->CloudStatusJson());
  EXPECT_EQ(status["quarantined"], 1);
  EXPECT_TRUE(status.contains("alert"));
  json backlog = json(uploader->BacklogJson());
  EXPECT_EQ(backlog["sales"], 10);  // the quarantined sales have not reached the cloud
  EXPECT_EQ(backlog["bytes"], *journal_->CanonicalBytes(10, 20));
  EXPECT_EQ(backlog["oldest_sale_at"], core::FormatRfc3339(clock_.NowMs()));
  // Never pruned.
  journal::PruneRequest all;
  all.ignore_age = true;
  EXPECT_EQ(journal_->Prune(all)->anchor_seq, 10);
  // Verify sees the foreign object (hash mismatch) and the gap it leaves.
  Result<VerifySummary> summary = VerifyStore(*sink_, VerifyOptions{.prefix = "pos"});
  ASSERT_TRUE(summary.ok());
  EXPECT_FALSE(summary->ok());

  // The operator removes the foreign object and requeues: the batch goes up, all is well.
  fs::remove(sink_->root() + "/" + key);
  SyncConfig config;
  config.dir = sink_->root();
  config.prefix = "pos";
  config.batch_max_sales = 10;
  auto service = SyncService::Create(config, "S001", journal_.get(), nullptr, &clock_);
  ASSERT_TRUE(service.ok());
  Result<int64_t> requeued = (*service)->RequeueQuarantined();
  ASSERT_TRUE(requeued.ok());
  EXPECT_EQ(*requeued, 1);
  done = (*service)->RunOnce(OnceOptions{});
  ASSERT_TRUE(done.ok()) << done.status().ToString();
  EXPECT_EQ(done->batches, 1);
  EXPECT_EQ(Uploaded(), 20);  // every sale left (1..10 were pruned above)
  EXPECT_TRUE(journal_->ListBatches(true)->empty());
  summary = VerifyStore(*sink_, VerifyOptions{.prefix = "pos"});
  ASSERT_TRUE(summary.ok());
  EXPECT_TRUE(summary->ok()) << summary->ToJson();
}

TEST_F(LocalSyncTest, ReencodingThatDiffersDefersToTheRecordedHashes) {
  AppendSales(20);
  // Batch 1..10 recorded by "another zlib": other hashes; its object (those other bytes)
  // is in the store. Batch 11..20 likewise, but its PUT never happened.
  BatchCutter cutter(journal_.get(), CutOptions{.prefix = "pos", .max_sales = 10}, &clock_);
  const std::string other_bytes = "bytes from another zlib";
  for (int i = 0; i < 2; ++i) {
    auto next = cutter.Next(*journal_->GetSyncBounds(), true);
    ASSERT_TRUE(next.ok() && next->has_value());
    journal::BatchRecord record = (*next)->record;
    record.sha256_hex = Sha256Hex(other_bytes);
    record.md5_hex = Md5Hex(other_bytes);
    ASSERT_TRUE(journal_->RecordBatch(record).ok());
    if (i == 0) {
      cloud::PutRequest put;
      put.key = record.key;
      put.body = other_bytes;
      ASSERT_EQ(*sink_->Put(put), cloud::PutOutcome::kCreated);
    }
  }
  auto uploader = MakeUploader(Options(), sink_.get());
  Result<OnceProgress> done = uploader->RunOnce(OnceOptions{});
  ASSERT_TRUE(done.ok()) << done.status().ToString();
  EXPECT_EQ(done->quarantined, 0);
  EXPECT_EQ(Uploaded(), 20);
  Result<std::vector<journal::BatchRecord>> batches = journal_->ListBatches(false);
  ASSERT_EQ(batches->size(), 2u);
  // The first object is the recorded one (kept); the second was uploaded fresh and its
  // record now holds the fresh hashes.
  EXPECT_EQ(sink_->Get((*batches)[0].key)->body, other_bytes);
  auto second = sink_->Get((*batches)[1].key);
  ASSERT_TRUE(second.ok());
  EXPECT_EQ((*batches)[1].sha256_hex, Sha256Hex(second->body));
  EXPECT_EQ((*batches)[1].md5_hex, Md5Hex(second->body));
}

// ---- Faults: the in-memory store ----

TEST_F(SyncTest, RetryableErrorsGoOfflineAndResumeWhenTheProbeSucceeds) {
  AppendSales(20);
  FakeStore store;
  // As the real client reports a refused connection (curl error 7).
  const Status refused = cloud::MapS3Error("PUT", "k", 0, "", "", 7, "Failed to connect");
  store.SetPutFailure(refused, -1);
  store.SetProbe(refused);
  UploaderOptions options = Options();
  options.conditional_put = ConditionalPut::kOn;
  options.backoff_base_ms = 60'000;  // only a successful probe can bring the upload back
  options.backoff_cap_ms = 60'000;
  options.random = [] { return uint64_t{59'999}; };
  options.cut.max_age_ms = 0;
  auto uploader = MakeUploader(options, &store);
  uploader->Start();
  ASSERT_TRUE(WaitUntil([&] { return uploader->GetStatus().state == CloudState::kOffline; }));
  ASSERT_TRUE(WaitUntil([&] {
    std::lock_guard<std::mutex> lock(store.mu_);
    return store.probes >= 3;
  }));
  json status = json(uploader->CloudStatusJson());
  EXPECT_EQ(status["state"], "offline");
  EXPECT_EQ(status["last_error"], "network: Couldn't connect to server (Failed to connect)");
  EXPECT_FALSE(status["next_attempt_at"].is_null());
  EXPECT_EQ(store.Puts(), 1);  // probes, not PUTs, while offline
  EXPECT_EQ(json(uploader->BacklogJson())["sales"], 20);
  EXPECT_EQ(Counter("machub_upload_failures_total", {{"reason", "network"}}), 1);
  EXPECT_EQ((*journal_->ListBatches(true))[0].attempts, 1);

  const auto back = std::chrono::steady_clock::now();
  store.SetPutFailure(Status::Ok(), 0);
  store.SetProbe(Status::Ok());
  ASSERT_TRUE(WaitUntil([&] { return Uploaded() == 20; }));
  const auto resumed_ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - back)
          .count();
  EXPECT_LT(resumed_ms, 2000);  // probe interval 20 ms, not the 60 s backoff
  EXPECT_EQ(store.SalesObjects(), 2u);
  ASSERT_TRUE(WaitUntil([&] { return uploader->GetStatus().state == CloudState::kOnline; }));
  uploader->Stop();
}

TEST_F(SyncTest, AProbeRefusedByPolicyStillMeansReachable) {
  // A device policy without s3:ListBucket: HeadBucket answers 403, PUTs work.
  FakeStore store;
  store.SetProbe(cloud::MapS3Error("HEAD", "", 403, "", "", 0, ""));
  UploaderOptions options = Options();
  options.cut.max_age_ms = 0;
  auto uploader = MakeUploader(options, &store);
  uploader->Start();
  ASSERT_TRUE(WaitUntil([&] {
    std::lock_guard<std::mutex> lock(store.mu_);
    return store.probes >= 2;
  }));
  EXPECT_EQ(uploader->GetStatus().state, CloudState::kOnline);
  AppendSales(5);
  ASSERT_TRUE(WaitUntil([&] { return Uploaded() == 5; }));
  EXPECT_EQ(uploader->GetStatus().state, CloudState::kOnline);
  // While offline, such an answer ends the wait for the backoff at once.
  store.SetPutFailure(cloud::MapS3Error("PUT", "k", 503, "SlowDown", "", 0, ""), 1);
  uploader->Stop();
  options.backoff_base_ms = 60'000;
  options.backoff_cap_ms = 60'000;
  options.random = [] { return uint64_t{59'999}; };
  auto second = MakeUploader(options, &store);
  AppendSales(5);
  second->Start();
  ASSERT_TRUE(WaitUntil([&] { return Uploaded() == 10; }, 5000));
  second->Stop();
}

TEST_F(SyncTest, AuthErrorsDegradeAndRetrySlowly) {
  AppendSales(5);
  FakeStore store;
  store.SetPutFailure(cloud::MapS3Error("PUT", "pos/k", 403, "SignatureDoesNotMatch", "", 0, ""),
                      -1);
  UploaderOptions options = Options();
  options.conditional_put = ConditionalPut::kOn;
  options.cut.max_age_ms = 0;
  options.degraded_retry_ms = 60'000;
  auto uploader = MakeUploader(options, &store);
  uploader->Start();
  ASSERT_TRUE(WaitUntil([&] { return uploader->GetStatus().state == CloudState::kDegraded; }));
  // No tight loop: a handful of attempts at most over a while.
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  EXPECT_EQ(store.Puts(), 1);
  json status = json(uploader->CloudStatusJson());
  EXPECT_EQ(status["state"], "degraded");
  EXPECT_EQ(status["last_error"], "auth: SignatureDoesNotMatch (403)");
  EXPECT_EQ(Counter("machub_upload_failures_total", {{"reason", "auth"}}), 1);
  const int64_t next = *core::ParseRfc3339(status["next_attempt_at"].get<std::string>());
  EXPECT_GE(next, clock_.NowMs() + 59'000);
  uploader->Stop();
  // RunOnce returns a non-retryable error at once.
  auto once = MakeUploader(options, &store);
  Result<OnceProgress> done = once->RunOnce(OnceOptions{});
  ASSERT_FALSE(done.ok());
  EXPECT_EQ(done.status().code(), ErrorCode::kUnauthorized);
  EXPECT_EQ(done.status().message(), "auth: SignatureDoesNotMatch (403)");
}

TEST_F(SyncTest, AStoreThatIgnoresIfNoneMatchGetsHeadBeforePut) {
  AppendSales(20);
  FakeStore store;
  store.honor_if_none_match = false;  // overwrites silently, like some S3-compatibles
  // Batch 11..20 is already there with the same bytes (an earlier attempt), and...
  BatchCutter cutter(journal_.get(), CutOptions{.prefix = "pos", .max_sales = 10}, &clock_);
  journal::SyncBounds bounds = *journal_->GetSyncBounds();
  bounds.batched_seq = 10;
  auto second = cutter.Next(bounds, true);
  ASSERT_TRUE(second.ok() && second->has_value());
  store.objects[(*second)->record.key] = {(*second)->bytes, (*second)->metadata};
  auto uploader = MakeUploader(Options(), &store);  // conditional_put auto
  Result<OnceProgress> done = uploader->RunOnce(OnceOptions{});
  ASSERT_TRUE(done.ok()) << done.status().ToString();
  EXPECT_EQ(json(uploader->CloudStatusJson())["conditional_put"], "off");
  EXPECT_EQ(done->batches, 2);
  EXPECT_EQ(Uploaded(), 20);
  // 2 probe PUTs + 1 PUT for batch 1..10; batch 11..20 found by HEAD, not re-sent.
  EXPECT_EQ(store.Puts(), 3);
  // ... and other content is quarantined, not overwritten.
  AppendSales(10);
  const std::string key = BatchKey("pos", "S001", 21, 30, clock_.NowMs(), BatchFormat::kJsonl);
  store.objects[key] = {"foreign", {}};
  done = uploader->RunOnce(OnceOptions{});
  ASSERT_TRUE(done.ok());
  EXPECT_EQ(done->quarantined, 1);
  EXPECT_EQ(store.objects[key].body, "foreign");
  EXPECT_EQ(store.Puts(), 3);
}

TEST_F(SyncTest, RunOnceRetriesTransientErrorsAndGivesUp) {
  AppendSales(10);
  FakeStore store;
  store.SetPutFailure(cloud::MapS3Error("PUT", "k", 503, "SlowDown", "", 0, ""), 3);
  UploaderOptions options = Options();
  options.conditional_put = ConditionalPut::kOn;
  auto uploader = MakeUploader(options, &store);
  Result<OnceProgress> done = uploader->RunOnce(OnceOptions{});
  ASSERT_TRUE(done.ok()) << done.status().ToString();
  EXPECT_EQ(done->batches, 1);
  EXPECT_EQ(store.Puts(), 4);
  EXPECT_EQ(Counter("machub_upload_failures_total", {{"reason", "network"}}), 3);
  EXPECT_EQ(Counter("machub_upload_attempts_total"), 4);

  AppendSales(10);
  store.SetPutFailure(cloud::MapS3Error("PUT", "k", 503, "SlowDown", "", 0, ""), -1);
  OnceOptions once;
  once.give_up_after_ms = 100;
  done = uploader->RunOnce(once);
  ASSERT_FALSE(done.ok());
  EXPECT_EQ(done.status().code(), ErrorCode::kUnavailable);
  EXPECT_EQ(done.status().message(), "network: SlowDown (503)");
}

// ---- Pruning ----

TEST_F(LocalSyncTest, PrunesUploadedSalesByAgeAndOnLowDisk) {
  AppendSales(30);
  UploaderOptions options = Options();
  options.cut.max_age_ms = 0;
  options.prune_interval_ms = 1;
  options.retention_ms = 10 * 60'000;
  options.min_free_disk_bytes = 0;
  options.min_free_disk_percent = 0;
  options.prune_chunk_sales = 7;
  auto uploader = MakeUploader(options, sink_.get());
  uploader->Start();
  ASSERT_TRUE(WaitUntil([&] { return Uploaded() == 30; }));
  EXPECT_EQ(AllSales().size(), 30u);  // young: kept
  AppendSales(5);                     // not uploaded yet when the clock jumps
  clock_.Advance(11 * 60'000);
  ASSERT_TRUE(WaitUntil([&] { return AllSales().size() <= 6u; }));
  uploader->Stop();
  // Everything old and uploaded went, except the newest sale; the chain still verifies.
  std::vector<core::StoredSale> left = AllSales();
  EXPECT_EQ(left.back().seq, 35);
  Result<int64_t> verified = journal_->VerifyChain();
  ASSERT_TRUE(verified.ok()) << verified.status().ToString();
  EXPECT_EQ(*verified, static_cast<int64_t>(left.size()));
  EXPECT_GE(Counter("machub_sales_pruned_total"), 29);

  // Low disk: every uploaded sale goes, whatever its age (here: "100 % must be free").
  AppendSales(10);
  options.retention_ms = 0;
  options.min_free_disk_percent = 100;
  auto low = MakeUploader(options, sink_.get());
  low->Start();
  ASSERT_TRUE(WaitUntil([&] {
    std::vector<core::StoredSale> now = AllSales();
    return !now.empty() && now.front().seq == 45;
  }));
  low->Stop();
  EXPECT_TRUE(journal_->VerifyChain().ok());
}

// ---- Verification ----

TEST_F(LocalSyncTest, VerifyFindsTamperingGapsAndDuplicates) {
  AppendSales(30);
  UploaderOptions options = Options();
  options.cut.format = BatchFormat::kCsv;
  ASSERT_TRUE(MakeUploader(options, sink_.get())->RunOnce(OnceOptions{}).ok());
  VerifyOptions verify{.prefix = "pos"};
  Result<VerifySummary> clean = VerifyStore(*sink_, verify);
  ASSERT_TRUE(clean.ok());
  EXPECT_TRUE(clean->ok()) << clean->ToJson();
  EXPECT_EQ(clean->sales, 30);
  EXPECT_EQ(clean->objects, 3);

  std::vector<std::string> keys = Keys();
  ASSERT_EQ(keys.size(), 3u);
  // A duplicate copy of the middle object under an overlapping name.
  auto middle = sink_->Get(keys[1]);
  auto middle_head = sink_->Head(keys[1]);
  cloud::PutRequest copy;
  copy.key = BatchKey("pos", "S001", 15, 20, clock_.NowMs(), BatchFormat::kCsv);
  copy.body = middle->body;
  copy.metadata = middle_head->metadata;
  ASSERT_TRUE(sink_->Put(copy).ok());
  Result<VerifySummary> dup = VerifyStore(*sink_, verify);
  ASSERT_TRUE(dup.ok());
  EXPECT_FALSE(dup->ok());
  EXPECT_GT(dup->duplicates, 0);
  EXPECT_GT(dup->hash_mismatches, 0);  // its content does not match its name
  fs::remove(sink_->root() + "/" + copy.key);

  // Removing the middle object leaves a gap of 10 and no other problem.
  fs::remove(sink_->root() + "/" + keys[1]);
  Result<VerifySummary> gap = VerifyStore(*sink_, verify);
  ASSERT_TRUE(gap.ok());
  EXPECT_EQ(gap->gaps, 10);
  EXPECT_EQ(gap->chain_breaks, 0);
  EXPECT_FALSE(gap->ok());
}

// Formula-looking names change the CSV bytes, not the chain: verify passes on both formats.
TEST_F(LocalSyncTest, VerifyPassesWithFormulaCells) {
  for (const char* format : {"csv", "jsonl"}) {
    for (int i = 0; i < 3; ++i) {
      SaleSpec spec;
      spec.id = std::string(format) + "-" + std::to_string(i);
      spec.name = i == 0 ? "=1+2" : (i == 1 ? "@cmd" : "-x");
      ASSERT_TRUE(journal_->Append(MakeSale(spec)).get().ok());
    }
    UploaderOptions options = Options();
    options.cut.format = std::string(format) == "csv" ? BatchFormat::kCsv : BatchFormat::kJsonl;
    ASSERT_TRUE(MakeUploader(options, sink_.get())->RunOnce(OnceOptions{}).ok());
  }
  Result<VerifySummary> summary = VerifyStore(*sink_, VerifyOptions{.prefix = "pos"});
  ASSERT_TRUE(summary.ok());
  EXPECT_TRUE(summary->ok()) << summary->ToJson();
  EXPECT_EQ(summary->sales, 6);
}

TEST_F(LocalSyncTest, VerifyRecomputesJsonLinesHashes) {
  AppendSales(20);
  ASSERT_TRUE(MakeUploader(Options(), sink_.get())->RunOnce(OnceOptions{}).ok());
  std::vector<std::string> keys = Keys();
  ASSERT_EQ(keys.size(), 2u);
  // Rewrite one sale's price, with consistent sha256 metadata and ETag: only the chain
  // hash can tell.
  std::string raw = *Gunzip(sink_->Get(keys[0])->body);
  size_t at = raw.find("\"unit_price\":\"3.50\"");
  ASSERT_NE(at, std::string::npos);
  raw.replace(at, 19, "\"unit_price\":\"0.50\"");
  ReplaceObject(keys[0], raw);
  Result<VerifySummary> summary = VerifyStore(*sink_, VerifyOptions{.prefix = "pos"});
  ASSERT_TRUE(summary.ok());
  EXPECT_EQ(summary->hash_mismatches, 1) << summary->ToJson();
  EXPECT_EQ(summary->chain_breaks, 0);
  EXPECT_FALSE(summary->ok());
  // The wrong store: no objects at all, nothing to complain about.
  Result<VerifySummary> other =
      VerifyStore(*sink_, VerifyOptions{.store_id = "S999", .prefix = "pos"});
  ASSERT_TRUE(other.ok());
  EXPECT_EQ(other->objects, 0);
}

// Entries stored under an untrusted clock (issue #11): the mark travels in both formats,
// verify recomputes the chain with it, and removing it from an object is caught. CSV
// objects written before the clock_untrusted column existed still verify.
TEST_F(LocalSyncTest, ClockUntrustedMarkIsUploadedAndVerified) {
  AppendSales(2, "ok");
  clock_.Advance(-3'600'000);  // the clock steps back an hour: held, marked
  AppendEvent("held-open", "drawer_open", {{"amount", "10.00"}});
  AppendSales(2, "held");
  UploaderOptions options = Options();
  options.cut.format = BatchFormat::kJsonl;
  ASSERT_TRUE(MakeUploader(options, sink_.get())->RunOnce(OnceOptions{}).ok());
  std::vector<std::string> keys = Keys();
  ASSERT_EQ(keys.size(), 1u);
  const std::string raw = *Gunzip(sink_->Get(keys[0])->body);
  EXPECT_EQ(std::count(raw.begin(), raw.end(), '\n'), 5);
  size_t marked = 0;
  for (size_t at = raw.find("\"clock_untrusted\":true"); at != std::string::npos;
       at = raw.find("\"clock_untrusted\":true", at + 1)) {
    ++marked;
  }
  EXPECT_EQ(marked, 3u) << raw;
  Result<VerifySummary> clean = VerifyStore(*sink_, VerifyOptions{.prefix = "pos"});
  ASSERT_TRUE(clean.ok());
  EXPECT_TRUE(clean->ok()) << clean->ToJson();
  EXPECT_EQ(clean->events, 1);

  // The CSV rows carry the mark in the last column.
  std::vector<core::StoredSale> sales = AllSales();
  const std::string csv = EncodeBatch("S001", sales, BatchFormat::kCsv);
  EXPECT_NE(csv.find(core::ToHex(sales[4].prev_hash) + ",true\n"), std::string::npos);
  EXPECT_NE(csv.find(core::ToHex(sales[0].prev_hash) + ",false\n"), std::string::npos);

  // Dropping the mark from the object: the hash no longer matches.
  std::string forged_raw = raw;
  const std::string mark = ",\"clock_untrusted\":true";
  forged_raw.erase(forged_raw.find(mark), mark.size());
  ReplaceObject(keys[0], forged_raw);
  Result<VerifySummary> summary = VerifyStore(*sink_, VerifyOptions{.prefix = "pos"});
  ASSERT_TRUE(summary.ok());
  EXPECT_EQ(summary->hash_mismatches, 1) << summary->ToJson();
  EXPECT_FALSE(summary->ok());
}

TEST_F(LocalSyncTest, CsvWithTheHeaderBeforeClockUntrustedStillVerifies) {
  AppendSales(3);
  UploaderOptions options = Options();
  options.cut.format = BatchFormat::kCsv;
  ASSERT_TRUE(MakeUploader(options, sink_.get())->RunOnce(OnceOptions{}).ok());
  std::vector<std::string> keys = Keys();
  ASSERT_EQ(keys.size(), 1u);
  // Rewrite the object as an earlier hub wrote it: no last column.
  std::string raw = *Gunzip(sink_->Get(keys[0])->body);
  std::string old;
  size_t start = 0;
  while (start < raw.size()) {
    size_t end = raw.find('\n', start);
    std::string row = raw.substr(start, end - start);
    old += row.substr(0, row.rfind(',')) + "\n";
    start = end + 1;
  }
  ASSERT_EQ(old.find("clock_untrusted"), std::string::npos);
  ReplaceObject(keys[0], old);
  Result<VerifySummary> summary = VerifyStore(*sink_, VerifyOptions{.prefix = "pos"});
  ASSERT_TRUE(summary.ok());
  EXPECT_TRUE(summary->ok()) << summary->ToJson();
  EXPECT_EQ(summary->sales, 3);
}

// Store events through the whole path: the real journal chains them, the uploader cuts
// and uploads them with the sales exactly once, verify re-derives every entry from the
// objects, and the independent reader recomputes the Z report from the objects alone and
// gets the hub's figures byte for byte.
TEST_F(LocalSyncTest, StoreEventsAreUploadedOnceVerifiedAndTheZRecomputed) {
  AppendEvent("open-1", "drawer_open", {{"amount", "100.00"}});
  AppendEvent("open-2", "drawer_open", {{"amount", "40.00"}}, "T02");
  AppendSales(12);
  {
    SaleSpec refund;
    refund.id = "r1";
    refund.type = "refund";
    refund.ref = "s3";
    refund.terminal = "T02";
    ASSERT_TRUE(journal_->Append(MakeSale(refund)).get().ok());
  }
  AppendEvent("out-1", "cash_out", {{"amount", "7.25"}, {"reason", "-window cleaner"}}, "T02");
  AppendEvent("close-1", "drawer_close", {{"counted", "130.00"}});
  const journal::Receipt z = AppendZ("z-1");
  EXPECT_EQ(z.receipt_no, "Z1");
  AppendSales(3);  // the next day's first sales
  UploaderOptions options = Options();
  options.cut.max_sales = 7;  // entries cut across objects: 1..7, 8..14, ...
  std::unique_ptr<Uploader> uploader = MakeUploader(options, sink_.get());
  ASSERT_TRUE(uploader->RunOnce(OnceOptions{}).ok());
  Result<VerifySummary> summary = VerifyStore(*sink_, VerifyOptions{.prefix = "pos"});
  ASSERT_TRUE(summary.ok());
  EXPECT_TRUE(summary->ok()) << summary->ToJson();
  EXPECT_EQ(summary->sales, 21);  // every entry once
  EXPECT_EQ(summary->events, 5);
  EXPECT_EQ(summary->last_seq, 21);
  EXPECT_EQ(summary->objects, 3);
  // The hub's Z report equals its entries' figures recomputed from the objects.
  EXPECT_EQ(summary->z_reports_checked, 1);
  EXPECT_EQ(summary->z_mismatches, 0);
  // Uploaded once: a second run adds no object.
  ASSERT_TRUE(uploader->RunOnce(OnceOptions{}).ok());
  EXPECT_EQ(Keys().size(), 3u);
  EXPECT_EQ(Uploaded(), 21);

  Result<std::optional<core::StoredSale>> stored = journal_->Get("z-1");
  ASSERT_TRUE(stored.ok() && stored->has_value() && (*stored)->is_event());
  const std::string& figures = (*stored)->event->figures;
  EXPECT_EQ(json::parse(figures)["cash_out"], "7.25");
  if (std::system("python3 -c 'import gzip, json, decimal' 2>/dev/null") != 0) {
    GTEST_SKIP() << "python3 is not installed: the independent reader cannot run";
  }
  const std::string command = "python3 " + std::string(MACHUB_SOURCE_DIR) +
                              "/tests/tools/recompute_report.py " + sink_->root() + " --z 1";
  FILE* pipe = popen(command.c_str(), "r");
  ASSERT_NE(pipe, nullptr);
  std::string out;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof(buf), pipe)) > 0) out.append(buf, n);
  const int status = pclose(pipe);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << out;
  EXPECT_EQ(out, figures + "\n");
}

// ---- SyncService: configuration to objects ----

TEST_F(SyncTest, ServiceFromConfigurationDisabledOrToAFolder) {
  AppendSales(12);
  SyncConfig config;
  auto disabled = SyncService::Create(config, "S001", journal_.get(), &metrics_, &clock_);
  ASSERT_TRUE(disabled.ok()) << disabled.status().ToString();
  EXPECT_FALSE((*disabled)->enabled());
  (*disabled)->Start();
  json cloud = json((*disabled)->CloudStatusJson());
  EXPECT_EQ(cloud["state"], "disabled");
  json backlog = json((*disabled)->BacklogJson());
  EXPECT_EQ(backlog["sales"], 12);
  EXPECT_EQ(backlog["bytes"], *journal_->CanonicalBytes(0, 12));
  EXPECT_EQ(backlog["oldest_sale_at"], "2026-11-27T10:15:01.000Z");
  EXPECT_EQ((*disabled)->RunOnce(OnceOptions{}).status().code(), ErrorCode::kInvalidArgument);

  config.dir = dir_ + "/outbox";
  config.prefix = "chain";
  config.format = "csv";
  config.batch_max_sales = 5;
  auto service = SyncService::Create(config, "S001", journal_.get(), &metrics_, &clock_);
  ASSERT_TRUE(service.ok()) << service.status().ToString();
  ASSERT_TRUE((*service)->enabled());
  Result<OnceProgress> done = (*service)->RunOnce(OnceOptions{});
  ASSERT_TRUE(done.ok()) << done.status().ToString();
  EXPECT_EQ(done->batches, 3);
  EXPECT_TRUE(fs::exists(dir_ + "/outbox/chain/sales/store=S001/date=2026-11-27/"
                                "S001-000000000011-000000000012.csv.gz"));
  EXPECT_EQ(json((*service)->BacklogJson())["sales"], 0);
  EXPECT_EQ(json((*service)->CloudStatusJson())["state"], "online");
  (*service)->Stop();

  std::unique_ptr<cloud::CredentialsProvider> creds;
  auto target = OpenTarget(config, &creds);
  ASSERT_TRUE(target.ok());
  Result<VerifySummary> verified = VerifyStore(**target, {.prefix = "chain"});
  ASSERT_TRUE(verified.ok());
  EXPECT_TRUE(verified->ok()) << verified->ToJson();
  EXPECT_EQ(verified->sales, 12);

  // Bad values name their key.
  SyncConfig bad;
  bad.format = "xml";
  EXPECT_EQ(ValidateSyncConfig(bad).message(), "sync.format: must be jsonl or csv");
  bad = SyncConfig{};
  bad.batch_max_bytes = 32 << 20;
  EXPECT_EQ(ValidateSyncConfig(bad).code(), ErrorCode::kInvalidArgument);
  bad = SyncConfig{};
  bad.access_key_id = "AKIA";
  EXPECT_NE(ValidateSyncConfig(bad).message().find("sync.access_key_id"), std::string::npos);
  EXPECT_EQ(OpenTarget(SyncConfig{}, &creds).status().code(), ErrorCode::kInvalidArgument);
  SyncConfig s3;
  s3.bucket = "my-bucket";
  s3.access_key_id = "AKIAEXAMPLE";
  s3.secret_access_key = "secret";
  s3.prefix = "pos";
  auto s3_service = SyncService::Create(s3, "S001", journal_.get(), nullptr, &clock_);
  ASSERT_TRUE(s3_service.ok()) << s3_service.status().ToString();
  EXPECT_EQ(json((*s3_service)->CloudStatusJson())["target"], "s3://my-bucket/pos");
}

// ---- The crash between PUT and mark, in a real child process ----

// Runs only as the child of FailpointSyncTest (MACHUB_SYNC_CHILD_DIR set): uploads with
// the failpoint armed, which must end the process with SIGKILL.
TEST(FailpointChild, UploadUntilTheFailpoint) {
  const char* dir = std::getenv("MACHUB_SYNC_CHILD_DIR");
  if (dir == nullptr) GTEST_SKIP() << "runs as a child of FailpointSyncTest only";
  journal::JournalOptions jo;
  jo.path = std::string(dir) + "/journal.db";
  jo.store_id = "S001";
  auto journal = journal::SqliteJournal::Open(jo);
  ASSERT_TRUE(journal.ok());
  auto sink = cloud::LocalSink::Open({.root = std::string(dir) + "/sink"});
  ASSERT_TRUE(sink.ok());
  UploaderOptions options;
  options.cut.prefix = "pos";
  options.cut.max_sales = 10;
  auto uploader = Uploader::Create(options, journal->get(), sink->get());
  ASSERT_TRUE(uploader.ok());
  (void)(*uploader)->RunOnce(OnceOptions{});
  ADD_FAILURE() << "the failpoint did not end the process";
}

TEST_F(LocalSyncTest, KilledBetweenPutAndMarkInAChildProcess) {
#ifndef MACHUB_FAILPOINTS
  GTEST_SKIP() << "built without MACHUB_FAILPOINTS";
#else
  AppendSales(25);
  journal_->Close();
  journal_.reset();
  // The child: this executable, one test, the failpoint armed.
  int wstatus = testing::RunSelfAsChild(
      "FailpointChild.UploadUntilTheFailpoint",
      {"MACHUB_SYNC_CHILD_DIR=" + dir_, "MACHUB_FAILPOINT=after_put_before_mark"});
  ASSERT_TRUE(WIFSIGNALED(wstatus)) << wstatus;
  ASSERT_EQ(WTERMSIG(wstatus), SIGKILL);

  // The child PUT batch 1..10 and died: the object exists, the batch is pending.
  journal_ = OpenJournal();
  ASSERT_NE(journal_, nullptr);
  ASSERT_EQ(Keys().size(), 1u);
  Result<std::vector<journal::BatchRecord>> pending = journal_->ListBatches(true);
  ASSERT_EQ(pending->size(), 1u);
  EXPECT_EQ((*pending)[0].state, journal::BatchState::kPending);
  EXPECT_EQ(Uploaded(), 0);

  // The restarted hub finishes: exactly one object per batch, everything marked.
  auto uploader = MakeUploader(Options(), sink_.get());
  Result<OnceProgress> done = uploader->RunOnce(OnceOptions{});
  ASSERT_TRUE(done.ok()) << done.status().ToString();
  EXPECT_EQ(Keys().size(), 3u);
  EXPECT_EQ(Uploaded(), 25);
  EXPECT_EQ(Counter("machub_batches_quarantined_total"), 0);
  EXPECT_TRUE(VerifyStore(*sink_, VerifyOptions{.prefix = "pos"})->ok());
#endif
}

}  // namespace
}  // namespace machub::sync
