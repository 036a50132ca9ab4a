// The catalog and the per-store configuration (store.json): format validation, rendering,
// the local copies, the fetchers against a LocalSink and scripted stores, and
// (CatalogRgwTest) against a real Ceph RGW when one can start here (skipped with the
// reason otherwise).

#include "catalog/catalog.h"

#include <gtest/gtest.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <functional>
#include <mutex>
#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>
#include <vector>

#include "catalog/catalog_store.h"
#include "catalog/poll_loop.h"
#include "catalog/store_config.h"
#include "cloud/local_sink.h"
#include "cloud/s3_client.h"
#include "core/clock.h"
#include "core/file.h"
#include "core/metrics.h"
#include "core/sha256.h"
#include "manual_clock.h"
#include "temp_dir.h"
#include "test_peers.h"

namespace machub::catalog {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

constexpr int64_t kT0 = 1'795'000'000'000;  // 2026-11-18T11:06:40Z

struct TempDir : machub::testing::TempDir {
  TempDir() : machub::testing::TempDir("catalog_test") {}
};

json Product(std::string sku, std::string name = "Coffee", std::string price = "3.50",
             std::string tax_rate = "0.0825") {
  return json{{"sku", std::move(sku)},
              {"name", std::move(name)},
              {"price", std::move(price)},
              {"tax_rate", std::move(tax_rate)}};
}

json ValidDoc() {
  return json{{"version", "v1"},
              {"currency", "USD"},
              {"products", json::array({Product("0002", "Tea", "2.00", "0"),
                                        Product("0001", "Coffee", "3.50", "0.0825")})}};
}

std::string CatalogBody(std::string version, std::vector<json> products,
                        std::string currency = "USD") {
  return json{{"version", std::move(version)},
              {"currency", std::move(currency)},
              {"products", std::move(products)}}
      .dump();
}

// ---- Format and validation ---------------------------------------------------------

TEST(CatalogParseTest, AcceptsValidCatalogSortedWithDefaults) {
  json doc = ValidDoc();
  doc["products"][0]["active"] = false;
  Result<Catalog> c = ParseCatalog(doc.dump());
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->version, "v1");
  EXPECT_EQ(c->currency, "USD");
  ASSERT_EQ(c->products.size(), 2u);
  EXPECT_EQ(c->products[0], (CatalogProduct{"0001", "Coffee", 350, 82500, true}));
  EXPECT_EQ(c->products[1], (CatalogProduct{"0002", "Tea", 200, 0, false}));
  EXPECT_TRUE(ValidateCatalog(*c).ok());
}

TEST(CatalogParseTest, IgnoresUnknownMembersOfAnyShapeAtEveryLevel) {
  json doc = ValidDoc();
  doc["generated_by"] = {{"tool", "backoffice"}, {"nested", {{"products", json::array({1})}}}};
  doc["extra_list"] = json::array({json::array({json::object()}), "x", nullptr, 1.5});
  doc["products"][0]["color"] = "red";
  doc["products"][0]["barcodes"] = json::array({"123", {{"sku", 5}}});
  doc["products"][1]["meta"] = {{"price", 1.25}, {"active", "maybe"}};
  Result<Catalog> c = ParseCatalog(doc.dump());
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->products.size(), 2u);
  EXPECT_EQ(c->products[1].price_minor, 200);
}

TEST(CatalogParseTest, EmptyProductListIsValid) {
  Result<Catalog> c = ParseCatalog(CatalogBody("empty", {}));
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_TRUE(c->products.empty());
}

TEST(CatalogParseTest, CurrencyMinorUnitsDecidePricePlaces) {
  Result<Catalog> jpy = ParseCatalog(CatalogBody("j", {Product("A", "Ramen", "980")}, "JPY"));
  ASSERT_TRUE(jpy.ok()) << jpy.status().ToString();
  EXPECT_EQ(jpy->products[0].price_minor, 980);
  Result<Catalog> bad = ParseCatalog(CatalogBody("j", {Product("A", "Ramen", "980.5")}, "JPY"));
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().field(), "products[0].price");
  // Currency after the products: prices are judged once the currency is known.
  std::string late = R"({"products":[{"sku":"A","name":"x","price":"1.234","tax_rate":"0"}],)"
                     R"("version":"v","currency":"KWD"})";
  Result<Catalog> kwd = ParseCatalog(late);
  ASSERT_TRUE(kwd.ok()) << kwd.status().ToString();
  EXPECT_EQ(kwd->products[0].price_minor, 1234);
}

struct Rejection {
  std::string name;
  std::function<std::string()> body;
  ErrorCode code;
  std::string field;
};

json With(std::function<void(json&)> edit) {
  json doc = ValidDoc();
  edit(doc);
  return doc;
}

std::vector<Rejection> Rejections() {
  auto doc = [](std::function<void(json&)> edit) { return [edit] { return With(edit).dump(); }; };
  auto p0 = [](std::string member, json value) {
    return [member, value](json& d) { d["products"][0][member] = value; };
  };
  auto drop0 = [](std::string member) {
    return [member](json& d) { d["products"][0].erase(member); };
  };
  return {
      {"not_json", [] { return std::string("{\"version\": "); }, ErrorCode::kInvalidJson, ""},
      {"trailing_garbage", [] { return ValidDoc().dump() + " x"; }, ErrorCode::kInvalidJson, ""},
      {"top_level_array", [] { return std::string("[]"); }, ErrorCode::kInvalidJson, ""},
      {"top_level_string", [] { return std::string("\"catalog\""); }, ErrorCode::kInvalidJson, ""},
      {"invalid_utf8",
       [] {
         std::string body = CatalogBody("v", {});
         body[13] = '\xff';  // inside "USD"
         return body;
       },
       ErrorCode::kInvalidJson, ""},
      {"version_missing", doc([](json& d) { d.erase("version"); }), ErrorCode::kMissingField,
       "version"},
      {"version_empty", doc([](json& d) { d["version"] = ""; }), ErrorCode::kInvalidField,
       "version"},
      {"version_number", doc([](json& d) { d["version"] = 7; }), ErrorCode::kInvalidField,
       "version"},
      {"version_too_long", doc([](json& d) { d["version"] = std::string(129, 'v'); }),
       ErrorCode::kInvalidField, "version"},
      {"currency_missing", doc([](json& d) { d.erase("currency"); }), ErrorCode::kMissingField,
       "currency"},
      {"currency_unknown", doc([](json& d) { d["currency"] = "XXQ"; }), ErrorCode::kInvalidField,
       "currency"},
      {"currency_lower_case", doc([](json& d) { d["currency"] = "usd"; }), ErrorCode::kInvalidField,
       "currency"},
      {"products_missing", doc([](json& d) { d.erase("products"); }), ErrorCode::kMissingField,
       "products"},
      {"products_object", doc([](json& d) { d["products"] = json::object(); }),
       ErrorCode::kInvalidField, "products"},
      {"product_not_object", doc([](json& d) { d["products"][1] = "0003"; }),
       ErrorCode::kInvalidField, "products[1]"},
      {"sku_missing", doc(drop0("sku")), ErrorCode::kMissingField, "products[0].sku"},
      {"sku_empty", doc(p0("sku", "")), ErrorCode::kInvalidField, "products[0].sku"},
      {"sku_number", doc(p0("sku", 1)), ErrorCode::kInvalidField, "products[0].sku"},
      {"sku_too_long", doc(p0("sku", std::string(65, 's'))), ErrorCode::kInvalidField,
       "products[0].sku"},
      {"sku_control_char", doc(p0("sku", "00\n01")), ErrorCode::kInvalidField, "products[0].sku"},
      {"sku_duplicate", doc([](json& d) { d["products"].push_back(Product("0002", "Tea again")); }),
       ErrorCode::kInvalidField, "products[2].sku"},
      {"name_missing", doc(drop0("name")), ErrorCode::kMissingField, "products[0].name"},
      {"name_null", doc(p0("name", nullptr)), ErrorCode::kInvalidField, "products[0].name"},
      {"name_too_long", doc(p0("name", std::string(201, 'n'))), ErrorCode::kInvalidField,
       "products[0].name"},
      {"price_missing", doc(drop0("price")), ErrorCode::kMissingField, "products[0].price"},
      {"price_json_number", doc(p0("price", 3.5)), ErrorCode::kInvalidField, "products[0].price"},
      {"price_too_many_places", doc(p0("price", "3.505")), ErrorCode::kInvalidField,
       "products[0].price"},
      {"price_negative", doc(p0("price", "-1.00")), ErrorCode::kInvalidField, "products[0].price"},
      {"price_exponent", doc(p0("price", "1e3")), ErrorCode::kInvalidField, "products[0].price"},
      {"price_empty", doc(p0("price", "")), ErrorCode::kInvalidField, "products[0].price"},
      {"price_too_large", doc(p0("price", "10000000000000.01")), ErrorCode::kInvalidField,
       "products[0].price"},
      {"price_overflow", doc(p0("price", "99999999999999999999")), ErrorCode::kInvalidField,
       "products[0].price"},
      {"tax_rate_missing", doc(drop0("tax_rate")), ErrorCode::kMissingField,
       "products[0].tax_rate"},
      {"tax_rate_above_one", doc(p0("tax_rate", "1.000001")), ErrorCode::kInvalidField,
       "products[0].tax_rate"},
      {"tax_rate_seven_places", doc(p0("tax_rate", "0.0000001")), ErrorCode::kInvalidField,
       "products[0].tax_rate"},
      {"tax_rate_negative", doc(p0("tax_rate", "-0.1")), ErrorCode::kInvalidField,
       "products[0].tax_rate"},
      {"tax_rate_json_number", doc(p0("tax_rate", 0.08)), ErrorCode::kInvalidField,
       "products[0].tax_rate"},
      {"active_string", doc(p0("active", "yes")), ErrorCode::kInvalidField, "products[0].active"},
      {"active_null", doc(p0("active", nullptr)), ErrorCode::kInvalidField, "products[0].active"},
  };
}

TEST(CatalogParseTest, RejectsEachBrokenRule) {
  for (const Rejection& r : Rejections()) {
    SCOPED_TRACE(r.name);
    Result<Catalog> c = ParseCatalog(r.body());
    ASSERT_FALSE(c.ok()) << r.name << " was accepted";
    EXPECT_EQ(c.status().code(), r.code) << c.status().ToString();
    EXPECT_EQ(c.status().field(), r.field) << c.status().ToString();
    EXPECT_FALSE(c.status().message().empty());
  }
}

TEST(CatalogParseTest, LimitsAreInclusive) {
  json doc = ValidDoc();
  doc["version"] = std::string(128, 'v');
  doc["products"][0]["sku"] = std::string(64, 's');
  // 200 code points of 3 bytes each: lengths count characters, not bytes.
  std::string name;
  for (int i = 0; i < 200; ++i) name += "\xe2\x82\xac";
  doc["products"][0]["name"] = name;
  doc["products"][0]["price"] = "10000000000000.00";
  doc["products"][0]["tax_rate"] = "1";
  doc["products"][1]["name"] = "";
  Result<Catalog> c = ParseCatalog(doc.dump());
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->products[1].price_minor, 1'000'000'000'000'000);
  EXPECT_EQ(c->products[1].tax_rate_micro, 1'000'000);
}

std::string ManyProducts(size_t n) {
  std::string body = R"({"version":"big","currency":"USD","products":[)";
  char buf[96];
  for (size_t i = 0; i < n; ++i) {
    std::snprintf(buf, sizeof(buf), R"(%s{"sku":"%07zu","name":"","price":"1.00","tax_rate":"0"})",
                  i == 0 ? "" : ",", n - i);
    body += buf;
  }
  return body + "]}";
}

TEST(CatalogParseTest, ProductCountLimit) {
  Result<Catalog> at_limit = ParseCatalog(ManyProducts(kMaxCatalogProducts));
  ASSERT_TRUE(at_limit.ok()) << at_limit.status().ToString();
  EXPECT_EQ(at_limit->products.size(), kMaxCatalogProducts);
  EXPECT_EQ(at_limit->products.front().sku, "0000001");
  Result<Catalog> over = ParseCatalog(ManyProducts(kMaxCatalogProducts + 1));
  ASSERT_FALSE(over.ok());
  EXPECT_EQ(over.status().code(), ErrorCode::kInvalidField);
  EXPECT_EQ(over.status().field(), "products");
}

TEST(CatalogParseTest, SizeLimit) {
  std::string body = ValidDoc().dump();
  body.append(kMaxCatalogBytes + 1 - body.size(), ' ');
  Result<Catalog> c = ParseCatalog(body);
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.status().code(), ErrorCode::kPayloadTooLarge);
  EXPECT_EQ(c.status().field(), "");
}

TEST(CatalogValidateTest, RefusesUnsortedDuplicateAndOutOfRangeRows) {
  Catalog c = *ParseCatalog(ValidDoc().dump());
  EXPECT_TRUE(ValidateCatalog(c).ok());
  Catalog swapped = c;
  std::swap(swapped.products[0], swapped.products[1]);
  EXPECT_EQ(ValidateCatalog(swapped).field(), "products[1].sku");
  Catalog dup = c;
  dup.products[1].sku = dup.products[0].sku;
  EXPECT_EQ(ValidateCatalog(dup).field(), "products[1].sku");
  Catalog negative = c;
  negative.products[0].price_minor = -1;
  EXPECT_EQ(ValidateCatalog(negative).field(), "products[0].price");
  Catalog tax = c;
  tax.products[1].tax_rate_micro = 1'000'001;
  EXPECT_EQ(ValidateCatalog(tax).field(), "products[1].tax_rate");
  Catalog utf8 = c;
  utf8.products[0].name = "bad \xc3";
  EXPECT_EQ(ValidateCatalog(utf8).field(), "products[0].name");
  Catalog currency = c;
  currency.currency = "ZZZ";
  EXPECT_EQ(ValidateCatalog(currency).field(), "currency");
}

TEST(CatalogViewTest, CanonicalBodyEtagAndProducts) {
  json doc = ValidDoc();
  doc["products"][0]["tax_rate"] = "0.100";  // rendered without trailing zeros
  doc["products"][1]["name"] = "Caf\xc3\xa9 \"Latte\"";
  doc["products"][1]["price"] = "3.5";
  doc["ignored"] = true;
  auto view = MakeCatalogView(*ParseCatalog(doc.dump()));
  const std::string expected =
      R"({"version":"v1","currency":"USD","products":[)"
      R"({"sku":"0001","name":"Caf\u00e9 \"Latte\"","price":"3.50","tax_rate":"0.0825","active":true},)"
      R"({"sku":"0002","name":"Tea","price":"2.00","tax_rate":"0.1","active":true}]})";
  EXPECT_EQ(json::parse(view->body), json::parse(expected));
  EXPECT_NE(view->body.find("Caf\xc3\xa9"), std::string::npos) << "UTF-8 kept as is";
  EXPECT_EQ(view->etag, "\"" + core::ToHex(core::Sha256(view->body)).substr(0, 32) + "\"");

  std::optional<std::string> coffee = view->ProductJson("0001");
  ASSERT_TRUE(coffee.has_value());
  EXPECT_EQ(json::parse(*coffee), json::parse(R"({"sku":"0001","name":"Café \"Latte\"",)"
                                              R"("price":"3.50","tax_rate":"0.0825",)"
                                              R"("active":true,"currency":"USD"})"));
  EXPECT_FALSE(view->ProductJson("0003").has_value());
  EXPECT_FALSE(view->ProductJson("").has_value());
  EXPECT_EQ(view->Find("0002")->price_minor, 200);

  // Same content, different document (order, spacing, unknown members) -> same ETag.
  json reordered = ValidDoc();
  std::swap(reordered["products"][0], reordered["products"][1]);
  reordered["products"][0]["tax_rate"] = "0.082500";
  auto a = MakeCatalogView(*ParseCatalog(ValidDoc().dump()));
  auto b = MakeCatalogView(*ParseCatalog(reordered.dump(2)));
  EXPECT_EQ(a->etag, b->etag);
  EXPECT_EQ(a->body, b->body);
  json changed = ValidDoc();
  changed["products"][0]["price"] = "2.01";
  EXPECT_NE(MakeCatalogView(*ParseCatalog(changed.dump()))->etag, a->etag);
}

TEST(CatalogViewTest, IfNoneMatch) {
  const std::string etag = "\"0123abcd\"";
  EXPECT_TRUE(IfNoneMatchHits("\"0123abcd\"", etag));
  EXPECT_TRUE(IfNoneMatchHits("W/\"0123abcd\"", etag));
  EXPECT_TRUE(IfNoneMatchHits("\"x\", \"0123abcd\"", etag));
  EXPECT_TRUE(IfNoneMatchHits("\"a,b\",\"0123abcd\"", etag));
  EXPECT_TRUE(IfNoneMatchHits("*", etag));
  EXPECT_TRUE(IfNoneMatchHits("  \"0123abcd\"  ", etag));
  EXPECT_FALSE(IfNoneMatchHits("", etag));
  EXPECT_FALSE(IfNoneMatchHits("\"0123abc\"", etag));
  EXPECT_FALSE(IfNoneMatchHits("0123abcd", etag));
  EXPECT_FALSE(IfNoneMatchHits("\"a,\"0123abcd\"\"", etag));
}

TEST(CatalogViewTest, Key) {
  EXPECT_EQ(CatalogKey("pos", "S001"), "pos/catalog/store=S001/catalog.json");
  EXPECT_EQ(CatalogKey("/chain/pos/", "S001"), "chain/pos/catalog/store=S001/catalog.json");
  EXPECT_EQ(CatalogKey("", "S9"), "catalog/store=S9/catalog.json");
}

// ---- catalog.db ----------------------------------------------------------------------

TEST(CatalogStoreTest, ApplyReplacesEverythingAndLoadsBack) {
  TempDir dir;
  const std::string path = dir.path() + "/catalog.db";
  auto store = CatalogStore::Open(path);
  ASSERT_TRUE(store.ok()) << store.status().ToString();
  auto empty = (*store)->Load();
  ASSERT_TRUE(empty.ok()) << empty.status().ToString();
  EXPECT_FALSE(empty->has_value());
  EXPECT_TRUE((*store)->Touch(5, "e").ok()) << "no catalog: nothing to touch";

  Catalog first = *ParseCatalog(
      CatalogBody("one", {Product("A"), Product("B"), Product("C", "Cake", "4.00", "0.07")}));
  ASSERT_TRUE((*store)->Apply(first, "etag-1", kT0, kT0).ok());
  Catalog second = *ParseCatalog(CatalogBody("two", {Product("D", "Donut", "1.25", "0")}));
  ASSERT_TRUE((*store)->Apply(second, "etag-2", kT0 + 10, kT0 + 10).ok());
  ASSERT_TRUE((*store)->Touch(kT0 + 20, "etag-2b").ok());
  store->reset();

  auto reopened = CatalogStore::Open(path);
  ASSERT_TRUE(reopened.ok()) << reopened.status().ToString();
  auto loaded = (*reopened)->Load();
  ASSERT_TRUE(loaded.ok()) << loaded.status().ToString();
  ASSERT_TRUE(loaded->has_value());
  EXPECT_EQ((*loaded)->catalog, second);
  EXPECT_EQ((*loaded)->etag, "etag-2b");
  EXPECT_EQ((*loaded)->fetched_at_ms, kT0 + 20);
  EXPECT_EQ((*loaded)->applied_at_ms, kT0 + 10);

  // The file is in WAL mode and separate from any journal.
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READONLY, nullptr), SQLITE_OK);
  sqlite3_stmt* stmt = nullptr;
  ASSERT_EQ(sqlite3_prepare_v2(db, "PRAGMA journal_mode", -1, &stmt, nullptr), SQLITE_OK);
  ASSERT_EQ(sqlite3_step(stmt), SQLITE_ROW);
  EXPECT_STREQ(reinterpret_cast<const char*>(sqlite3_column_text(stmt, 0)), "wal");
  sqlite3_finalize(stmt);
  sqlite3_close(db);
}

TEST(CatalogStoreTest, NotADatabaseIsInternal) {
  TempDir dir;
  const std::string path = dir.path() + "/catalog.db";
  std::ofstream(path) << std::string(4096, 'x');
  auto store = CatalogStore::Open(path);
  ASSERT_FALSE(store.ok());
  EXPECT_EQ(store.status().code(), ErrorCode::kInternal) << store.status().ToString();
}

// ---- CatalogFetcher --------------------------------------------------------------------

// Forwards to another store and records each Get (the If-None-Match sent and whether the
// answer was "not modified"); can be told to fail or to ignore If-None-Match.
class RecordingStore final : public cloud::ObjectStore {
 public:
  explicit RecordingStore(cloud::ObjectStore* inner) : inner_(inner) {}

  struct Call {
    std::string if_none_match;
    bool not_modified = false;
    bool ok = false;
  };

  Result<cloud::PutOutcome> Put(const cloud::PutRequest& r) override { return inner_->Put(r); }
  Result<cloud::ObjectInfo> Head(const std::string& key) override { return inner_->Head(key); }
  Result<cloud::GetResult> Get(const std::string& key, const std::string& inm = "") override {
    Status fail;
    bool ignore = false;
    {
      std::lock_guard lock(mu_);
      fail = fail_;
      ignore = ignore_if_none_match_;
    }
    Result<cloud::GetResult> got =
        fail.ok() ? inner_->Get(key, ignore ? std::string() : inm) : Result<cloud::GetResult>(fail);
    std::lock_guard lock(mu_);
    calls_.push_back({inm, got.ok() && got->not_modified, got.ok()});
    return got;
  }
  Result<cloud::ListResult> List(const std::string& p, const std::string& t = "") override {
    return inner_->List(p, t);
  }
  Status Probe() override { return inner_->Probe(); }
  std::string Describe() const override { return inner_->Describe(); }

  void SetFailure(Status s) {
    std::lock_guard lock(mu_);
    fail_ = std::move(s);
  }
  void SetIgnoreIfNoneMatch(bool ignore) {
    std::lock_guard lock(mu_);
    ignore_if_none_match_ = ignore;
  }
  std::vector<Call> calls() const {
    std::lock_guard lock(mu_);
    return calls_;
  }

 private:
  cloud::ObjectStore* inner_;
  mutable std::mutex mu_;
  Status fail_;
  bool ignore_if_none_match_ = false;
  std::vector<Call> calls_;
};

// A local folder as the object store, seen through a RecordingStore, with a manual clock:
// what the fetchers' tests (catalog.json, store.json) share.
class FetcherTestBase : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_FALSE(dir_.path().empty());
    auto sink = cloud::LocalSink::Open({.root = dir_.path() + "/bucket", .fsync = false});
    ASSERT_TRUE(sink.ok()) << sink.status().ToString();
    sink_ = std::move(*sink);
    store_ = std::make_unique<RecordingStore>(sink_.get());
  }
  // Writes (or overwrites, as the back office does) the object at `key`.
  void PutObject(const std::string& key, const std::string& body) {
    cloud::PutRequest r;
    r.key = key;
    r.body = body;
    r.if_none_match = false;
    auto put = sink_->Put(r);
    ASSERT_TRUE(put.ok()) << put.status().ToString();
  }

  TempDir dir_;
  machub::testing::ManualClock clock_{kT0};
  core::MetricsRegistry metrics_;
  std::unique_ptr<cloud::LocalSink> sink_;
  std::unique_ptr<RecordingStore> store_;
};

class CatalogFetcherTest : public FetcherTestBase {
 protected:
  static constexpr const char* kKey = "pos/catalog/store=S001/catalog.json";

  CatalogFetcherOptions Options() {
    CatalogFetcherOptions o;
    o.key = kKey;
    o.db_path = dir_.path() + "/catalog.db";
    return o;
  }

  std::unique_ptr<CatalogFetcher> OpenFetcher(cloud::ObjectStore* store,
                                              CatalogFetcherOptions options) {
    auto f = CatalogFetcher::Open(store, std::move(options), &clock_, &metrics_);
    EXPECT_TRUE(f.ok()) << f.status().ToString();
    return f.ok() ? std::move(*f) : nullptr;
  }
  std::unique_ptr<CatalogFetcher> OpenFetcher() { return OpenFetcher(store_.get(), Options()); }

  void Upload(const std::string& body) { PutObject(kKey, body); }

  int64_t Fetches(const std::string& result) {
    return metrics_.GetCounter("machub_catalog_fetches_total", "", {{"result", result}}).Value();
  }

  static json StatusOf(const CatalogFetcher& f) { return json(f.StatusJson()); }
};

TEST_F(CatalogFetcherTest, NoCatalogYet) {
  auto f = OpenFetcher();
  ASSERT_NE(f, nullptr);
  EXPECT_EQ(f->Snapshot(), nullptr);
  EXPECT_FALSE(f->Product("0001").has_value());
  json s = StatusOf(*f);
  EXPECT_TRUE(s["version"].is_null());
  EXPECT_TRUE(s["fetched_at"].is_null());
  EXPECT_EQ(s["products"], 0);
  EXPECT_TRUE(s["last_error"].is_null());

  machub::Status missing = f->FetchOnce();
  EXPECT_EQ(missing.code(), ErrorCode::kNotFound) << missing.ToString();
  s = StatusOf(*f);
  EXPECT_NE(s["last_error"].get<std::string>().find(kKey), std::string::npos) << s.dump();
  EXPECT_EQ(s["last_attempt_at"], "2026-11-18T11:06:40.000Z");
  EXPECT_EQ(Fetches("error"), 1);
  EXPECT_EQ(f->attempts(), 1);
}

TEST_F(CatalogFetcherTest, AppliesAndAnswersOfflineAfterRestart) {
  Upload(ValidDoc().dump());
  std::string etag, body;
  {
    auto f = OpenFetcher();
    ASSERT_TRUE(f->FetchOnce().ok());
    auto view = f->Snapshot();
    ASSERT_NE(view, nullptr);
    EXPECT_EQ(view->catalog.version, "v1");
    etag = view->etag;
    body = view->body;
    json s = StatusOf(*f);
    EXPECT_EQ(s["version"], "v1");
    EXPECT_EQ(s["products"], 2);
    EXPECT_EQ(s["fetched_at"], "2026-11-18T11:06:40.000Z");
    EXPECT_EQ(s["applied_at"], "2026-11-18T11:06:40.000Z");
    EXPECT_EQ(s["etag"], etag);
    EXPECT_TRUE(s["last_error"].is_null());
    EXPECT_EQ(Fetches("applied"), 1);
    EXPECT_EQ(metrics_.GetGauge("machub_catalog_products", "").Value(), 2);
  }
  // Restart with no cloud at all: the catalog comes from catalog.db.
  auto offline = OpenFetcher(nullptr, Options());
  ASSERT_NE(offline, nullptr);
  auto view = offline->Snapshot();
  ASSERT_NE(view, nullptr);
  EXPECT_EQ(view->etag, etag);
  EXPECT_EQ(view->body, body);
  ASSERT_TRUE(offline->Product("0002").has_value());
  EXPECT_EQ(json::parse(*offline->Product("0002"))["price"], "2.00");
  machub::Status st = offline->FetchOnce();
  EXPECT_EQ(st.code(), ErrorCode::kUnavailable);
  json s = StatusOf(*offline);
  EXPECT_EQ(s["version"], "v1");
  EXPECT_EQ(s["fetched_at"], "2026-11-18T11:06:40.000Z");
  EXPECT_FALSE(s["last_error"].is_null());
  EXPECT_NE(offline->Snapshot(), nullptr) << "an error never drops the catalog";
}

TEST_F(CatalogFetcherTest, ConditionalGetAppliesOnlyChanges) {
  Upload(ValidDoc().dump());
  auto f = OpenFetcher();
  ASSERT_TRUE(f->FetchOnce().ok());
  auto first = f->Snapshot();

  clock_.Advance(60'000);
  ASSERT_TRUE(f->FetchOnce().ok());
  std::vector<RecordingStore::Call> calls = store_->calls();
  ASSERT_EQ(calls.size(), 2u);
  EXPECT_EQ(calls[0].if_none_match, "");
  EXPECT_FALSE(calls[0].not_modified);
  EXPECT_FALSE(calls[1].if_none_match.empty());
  EXPECT_TRUE(calls[1].not_modified);
  EXPECT_EQ(f->Snapshot(), first) << "not re-applied: the very same view";
  json s = StatusOf(*f);
  EXPECT_EQ(s["fetched_at"], "2026-11-18T11:07:40.000Z");
  EXPECT_EQ(s["applied_at"], "2026-11-18T11:06:40.000Z");
  EXPECT_EQ(Fetches("applied"), 1);
  EXPECT_EQ(Fetches("not_modified"), 1);

  clock_.Advance(60'000);
  json changed = ValidDoc();
  changed["version"] = "v2";
  changed["products"].push_back(Product("0003", "Cake", "4.25", "0.07"));
  Upload(changed.dump());
  ASSERT_TRUE(f->FetchOnce().ok());
  auto second = f->Snapshot();
  ASSERT_NE(second, first);
  EXPECT_EQ(second->catalog.version, "v2");
  EXPECT_EQ(second->catalog.products.size(), 3u);
  EXPECT_EQ(first->catalog.version, "v1") << "a view never changes";
  s = StatusOf(*f);
  EXPECT_EQ(s["applied_at"], "2026-11-18T11:08:40.000Z");
  EXPECT_EQ(Fetches("applied"), 2);
  calls = store_->calls();
  EXPECT_EQ(calls[2].if_none_match, calls[1].if_none_match);

  // The fresh ETag was stored: a restarted hub asks with it and gets 304.
  f.reset();
  auto restarted = OpenFetcher();
  ASSERT_TRUE(restarted->FetchOnce().ok());
  calls = store_->calls();
  EXPECT_TRUE(calls.back().not_modified);
  EXPECT_EQ(restarted->Snapshot()->etag, second->etag);
}

TEST_F(CatalogFetcherTest, StoreIgnoringIfNoneMatchDoesNotReapply) {
  Upload(ValidDoc().dump());
  auto f = OpenFetcher();
  ASSERT_TRUE(f->FetchOnce().ok());
  auto first = f->Snapshot();
  store_->SetIgnoreIfNoneMatch(true);
  clock_.Advance(1000);
  ASSERT_TRUE(f->FetchOnce().ok());
  EXPECT_FALSE(store_->calls().back().not_modified) << "the store sent the whole body";
  EXPECT_EQ(f->Snapshot(), first);
  EXPECT_EQ(Fetches("applied"), 1);
  EXPECT_EQ(Fetches("not_modified"), 1);

  // A new object with the same content (re-uploaded with another layout): new ETag
  // remembered, content not re-applied.
  store_->SetIgnoreIfNoneMatch(false);
  Upload(ValidDoc().dump(2));
  clock_.Advance(1000);
  ASSERT_TRUE(f->FetchOnce().ok());
  EXPECT_EQ(f->Snapshot(), first);
  EXPECT_EQ(Fetches("applied"), 1);
  ASSERT_TRUE(f->FetchOnce().ok());
  EXPECT_TRUE(store_->calls().back().not_modified) << "asked with the new object's ETag";
  EXPECT_EQ(StatusOf(*f)["applied_at"], "2026-11-18T11:06:40.000Z");
}

TEST_F(CatalogFetcherTest, BadCatalogKeepsThePreviousOne) {
  Upload(ValidDoc().dump());
  auto f = OpenFetcher();
  ASSERT_TRUE(f->FetchOnce().ok());
  auto good = f->Snapshot();

  json bad = ValidDoc();
  bad["version"] = "v2";
  bad["products"][1]["price"] = "-3.00";
  Upload(bad.dump());
  clock_.Advance(5000);
  machub::Status st = f->FetchOnce();
  EXPECT_EQ(st.code(), ErrorCode::kInvalidField);
  EXPECT_EQ(st.field(), "products[1].price");
  EXPECT_EQ(f->Snapshot(), good);
  json s = StatusOf(*f);
  EXPECT_EQ(s["version"], "v1");
  EXPECT_EQ(s["fetched_at"], "2026-11-18T11:06:40.000Z") << "a refused catalog is no fetch";
  ASSERT_TRUE(s["last_error"].is_string());
  EXPECT_NE(s["last_error"].get<std::string>().find("products[1].price"), std::string::npos);
  EXPECT_EQ(s["last_error_at"], "2026-11-18T11:06:45.000Z");
  EXPECT_EQ(Fetches("invalid"), 1);

  // Still refused on the next attempt (the bad object's ETag is not remembered), and a
  // restart serves the good catalog.
  EXPECT_EQ(f->FetchOnce().code(), ErrorCode::kInvalidField);
  std::vector<RecordingStore::Call> calls = store_->calls();
  ASSERT_EQ(calls.size(), 3u);
  EXPECT_FALSE(calls[1].if_none_match.empty());
  EXPECT_EQ(calls[2].if_none_match, calls[1].if_none_match) << "asked with the good one's ETag";
  f.reset();
  auto restarted = OpenFetcher(nullptr, Options());
  EXPECT_EQ(restarted->Snapshot()->body, good->body);
  restarted.reset();

  f = OpenFetcher();
  json fixed = ValidDoc();
  fixed["version"] = "v3";
  Upload(fixed.dump());
  ASSERT_TRUE(f->FetchOnce().ok());
  s = StatusOf(*f);
  EXPECT_EQ(s["version"], "v3");
  EXPECT_TRUE(s["last_error"].is_null());
  EXPECT_TRUE(s["last_error_at"].is_null());
}

TEST_F(CatalogFetcherTest, NotJsonAndTooLargeAreRefused) {
  Upload("<html>proxy login</html>");
  CatalogFetcherOptions small = Options();
  small.max_bytes = 200;
  auto f = OpenFetcher(store_.get(), small);
  EXPECT_EQ(f->FetchOnce().code(), ErrorCode::kInvalidJson);
  json big = ValidDoc();
  big["padding"] = std::string(300, 'p');
  Upload(big.dump());
  EXPECT_EQ(f->FetchOnce().code(), ErrorCode::kPayloadTooLarge);
  EXPECT_EQ(f->Snapshot(), nullptr);
  EXPECT_EQ(Fetches("invalid"), 2);
}

TEST_F(CatalogFetcherTest, StoreErrorsKeepTheCatalog) {
  Upload(ValidDoc().dump());
  auto f = OpenFetcher();
  ASSERT_TRUE(f->FetchOnce().ok());
  auto good = f->Snapshot();
  store_->SetFailure(machub::Status(ErrorCode::kUnavailable, "GET: connection refused"));
  EXPECT_EQ(f->FetchOnce().code(), ErrorCode::kUnavailable);
  EXPECT_EQ(f->Snapshot(), good);
  EXPECT_EQ(StatusOf(*f)["last_error"], "unavailable: GET: connection refused");
  EXPECT_EQ(Fetches("error"), 1);
  store_->SetFailure(machub::Status());
  ASSERT_TRUE(f->FetchOnce().ok());
  EXPECT_TRUE(StatusOf(*f)["last_error"].is_null());
}

TEST_F(CatalogFetcherTest, UnreadableDatabaseIsMovedAsideAndRebuilt) {
  const std::string path = Options().db_path;
  std::ofstream(path) << std::string(8192, 'z');
  Upload(ValidDoc().dump());
  auto f = OpenFetcher();
  ASSERT_NE(f, nullptr);
  EXPECT_EQ(f->Snapshot(), nullptr);
  int aside = 0;
  for (const auto& e : fs::directory_iterator(dir_.path())) {
    if (e.path().filename().string().starts_with("catalog.db.corrupt-")) ++aside;
  }
  EXPECT_EQ(aside, 1);
  ASSERT_TRUE(f->FetchOnce().ok());
  EXPECT_EQ(f->Snapshot()->catalog.version, "v1");
}

TEST_F(CatalogFetcherTest, TamperedRowsAreNotServed) {
  Upload(ValidDoc().dump());
  {
    auto f = OpenFetcher();
    ASSERT_TRUE(f->FetchOnce().ok());
  }
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(Options().db_path.c_str(), &db), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(db, "UPDATE products SET price_minor = -5 WHERE sku = '0001'", nullptr,
                         nullptr, nullptr),
            SQLITE_OK);
  sqlite3_close(db);
  auto f = OpenFetcher();
  EXPECT_EQ(f->Snapshot(), nullptr);
  EXPECT_NE(StatusOf(*f)["last_error"].get<std::string>().find("unreadable"), std::string::npos);
  // No ETag is trusted: the next fetch downloads and rewrites everything.
  ASSERT_TRUE(f->FetchOnce().ok());
  EXPECT_EQ(store_->calls().back().if_none_match, "");
  EXPECT_EQ(json::parse(*f->Product("0001"))["price"], "3.50");
}

TEST_F(CatalogFetcherTest, ConcurrentReadersSeeOldOrNewSnapshot) {
  json a = ValidDoc();
  json b = ValidDoc();
  b["version"] = "v2";
  b["products"][0]["price"] = "9.99";
  b["products"][1]["price"] = "9.99";
  const auto view_a = MakeCatalogView(*ParseCatalog(a.dump()));
  const auto view_b = MakeCatalogView(*ParseCatalog(b.dump()));

  Upload(a.dump());
  auto f = OpenFetcher();
  ASSERT_TRUE(f->FetchOnce().ok());

  std::atomic<bool> done{false};
  std::atomic<int64_t> reads{0};
  std::atomic<int64_t> bad{0};
  std::vector<std::thread> readers;
  for (int t = 0; t < 4; ++t) {
    readers.emplace_back([&] {
      while (!done.load()) {
        auto view = f->Snapshot();
        const bool is_a = view->etag == view_a->etag && view->body == view_a->body;
        const bool is_b = view->etag == view_b->etag && view->body == view_b->body;
        // Everything read from one view belongs to that view.
        std::optional<std::string> p = view->ProductJson("0002");
        const std::string price = p ? json::parse(*p)["price"].get<std::string>() : "";
        if (!(is_a && price == "2.00") && !(is_b && price == "9.99")) bad.fetch_add(1);
        if (!f->Product("0001").has_value()) bad.fetch_add(1);
        reads.fetch_add(1);
      }
    });
  }
  for (int i = 0; i < 20; ++i) {
    Upload((i % 2 == 0 ? b : a).dump());
    machub::Status st = f->FetchOnce();
    EXPECT_TRUE(st.ok()) << st.ToString();
    EXPECT_EQ(f->Snapshot()->catalog.version, i % 2 == 0 ? "v2" : "v1");
  }
  done.store(true);
  for (auto& t : readers) t.join();
  EXPECT_EQ(bad.load(), 0);
  EXPECT_GT(reads.load(), 0);
  EXPECT_EQ(Fetches("applied"), 21);
}

TEST_F(CatalogFetcherTest, PeriodicThreadFetchesAtStartAndOnRequest) {
  Upload(ValidDoc().dump());
  auto f = OpenFetcher();
  EXPECT_EQ(f->Start(0).code(), ErrorCode::kInvalidArgument);
  ASSERT_TRUE(f->Start(3'600'000).ok());
  EXPECT_EQ(f->Start(3'600'000).code(), ErrorCode::kInvalidArgument);
  ASSERT_TRUE(f->WaitForAttempts(1, 10'000));
  ASSERT_NE(f->Snapshot(), nullptr);

  json v2 = ValidDoc();
  v2["version"] = "v2";
  Upload(v2.dump());
  f->FetchSoon();
  ASSERT_TRUE(f->WaitForAttempts(2, 10'000));
  EXPECT_EQ(f->Snapshot()->catalog.version, "v2");
  f->Stop();
  f->Stop();
  const int64_t after_stop = f->attempts();
  EXPECT_EQ(after_stop, 2) << "the hour-long wait was never cut short except by FetchSoon";

  // Start again after Stop.
  ASSERT_TRUE(f->Start(3'600'000).ok());
  ASSERT_TRUE(f->WaitForAttempts(3, 10'000));
}  // the destructor stops the thread

TEST_F(CatalogFetcherTest, PeriodicThreadRetriesSoonerAfterErrors) {
  CatalogFetcherOptions o = Options();
  o.retry_after_error_ms = 1;
  auto f = OpenFetcher(store_.get(), o);
  ASSERT_TRUE(f->Start(3'600'000).ok());
  // No object yet: every attempt fails and is retried after 1 ms, not an hour.
  ASSERT_TRUE(f->WaitForAttempts(3, 10'000));
  Upload(ValidDoc().dump());
  // Await the first successful attempt: the snapshot is published before the attempt
  // counts, so reading the count first never misses it.
  for (int i = 0; i < 1000; ++i) {
    const int64_t n = f->attempts();
    if (f->Snapshot() != nullptr) break;
    ASSERT_TRUE(f->WaitForAttempts(n + 1, 10'000));
  }
  f->Stop();
  ASSERT_NE(f->Snapshot(), nullptr);
  EXPECT_TRUE(StatusOf(*f)["last_error"].is_null());
}

TEST_F(CatalogFetcherTest, OpenRefusesMissingSettings) {
  CatalogFetcherOptions no_key = Options();
  no_key.key.clear();
  EXPECT_EQ(CatalogFetcher::Open(store_.get(), no_key, nullptr, nullptr).status().code(),
            ErrorCode::kInvalidArgument);
  CatalogFetcherOptions no_db = Options();
  no_db.db_path.clear();
  EXPECT_EQ(CatalogFetcher::Open(store_.get(), no_db, nullptr, nullptr).status().code(),
            ErrorCode::kInvalidArgument);
  CatalogFetcherOptions no_folder = Options();
  no_folder.db_path = dir_.path() + "/missing/catalog.db";
  EXPECT_EQ(CatalogFetcher::Open(store_.get(), no_folder, nullptr, nullptr).status().code(),
            ErrorCode::kIoError);
}

// ---- store.json (store_config.h) ---------------------------------------------------

const std::string kHashA(64, 'a');
const std::string kHashB = std::string(63, '0') + "f";

json StoreDoc(std::string version = "s1") {
  return json{{"version", std::move(version)},
              {"terminal_tokens",
               {{{"terminal_id", "T02"}, {"sha256", kHashA}},
                {{"terminal_id", "M1"},
                 {"sha256", kHashB},
                 {"role", "manager"},
                 {"expires_at", "2027-01-31T00:00:00Z"}}}},
              {"offline",
               {{"enabled", true}, {"card_max_amount", "150.00"}, {"store_max_outstanding", ""}}},
              {"future_member", {1, 2, 3}}};
}

TEST(StoreConfigParseTest, AcceptsAValidDocument) {
  EXPECT_EQ(StoreConfigKey("/pos/", "S042"), "pos/config/store=S042/store.json");
  EXPECT_EQ(StoreConfigKey("", "S042"), "config/store=S042/store.json");
  Result<StoreConfig> c = ParseStoreConfig(StoreDoc().dump());
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->version, "s1");
  ASSERT_EQ(c->tokens.size(), 2u);
  EXPECT_EQ(c->tokens[0], (StoreConfigToken{"T02", kHashA, 0, false}));
  EXPECT_EQ(c->tokens[1].terminal_id, "M1");
  EXPECT_TRUE(c->tokens[1].manager);
  EXPECT_EQ(c->tokens[1].expires_at_ms, 1'801'353'600'000);
  EXPECT_EQ(c->offline.enabled, std::optional<bool>(true));
  EXPECT_EQ(c->offline.card_max_amount, std::optional<std::string>("150.00"));
  EXPECT_EQ(c->offline.store_max_outstanding, std::optional<std::string>(""));
  EXPECT_FALSE(c->offline.terminal_max_outstanding.has_value()) << "absent: the hub's own value";
  // Only a version: no tokens, no overrides.
  Result<StoreConfig> bare = ParseStoreConfig(R"({"version":"x"})");
  ASSERT_TRUE(bare.ok());
  EXPECT_TRUE(bare->tokens.empty());
  EXPECT_EQ(bare->offline, StoreOfflineOverrides{});
}

TEST(StoreConfigParseTest, RefusesABadDocumentWholeWithThePath) {
  struct Case {
    std::function<void(json&)> edit;
    ErrorCode code;
    std::string field;
  };
  const std::vector<Case> cases = {
      {[](json& d) { d.erase("version"); }, ErrorCode::kMissingField, "version"},
      {[](json& d) { d["version"] = ""; }, ErrorCode::kInvalidField, "version"},
      {[](json& d) { d["version"] = 7; }, ErrorCode::kInvalidField, "version"},
      {[](json& d) { d["terminal_tokens"] = "T01"; }, ErrorCode::kInvalidField, "terminal_tokens"},
      {[](json& d) { d["terminal_tokens"][1] = 5; }, ErrorCode::kInvalidField,
       "terminal_tokens[1]"},
      {[](json& d) { d["terminal_tokens"][0].erase("terminal_id"); }, ErrorCode::kMissingField,
       "terminal_tokens[0].terminal_id"},
      {[](json& d) { d["terminal_tokens"][0]["terminal_id"] = "T 02"; }, ErrorCode::kInvalidField,
       "terminal_tokens[0].terminal_id"},
      {[](json& d) { d["terminal_tokens"][1].erase("sha256"); }, ErrorCode::kMissingField,
       "terminal_tokens[1].sha256"},
      {[](json& d) { d["terminal_tokens"][1]["sha256"] = std::string(64, 'A'); },
       ErrorCode::kInvalidField, "terminal_tokens[1].sha256"},
      {[](json& d) { d["terminal_tokens"][1]["sha256"] = "mh_secrettokentext"; },
       ErrorCode::kInvalidField, "terminal_tokens[1].sha256"},
      {[](json& d) { d["terminal_tokens"][1]["role"] = "admin"; }, ErrorCode::kInvalidField,
       "terminal_tokens[1].role"},
      {[](json& d) { d["terminal_tokens"][1]["expires_at"] = "tomorrow"; },
       ErrorCode::kInvalidField, "terminal_tokens[1].expires_at"},
      {[](json& d) { d["offline"] = true; }, ErrorCode::kInvalidField, "offline"},
      {[](json& d) { d["offline"]["enabled"] = "yes"; }, ErrorCode::kInvalidField,
       "offline.enabled"},
      {[](json& d) { d["offline"]["card_max_amount"] = 150; }, ErrorCode::kInvalidField,
       "offline.card_max_amount"},
      {[](json& d) { d["offline"]["terminal_max_outstanding"] = "-1"; }, ErrorCode::kInvalidField,
       "offline.terminal_max_outstanding"},
      {[](json& d) { d["offline"]["store_max_outstanding"] = "1.2345"; }, ErrorCode::kInvalidField,
       "offline.store_max_outstanding"},
      {[](json& d) {
         json many = json::array();
         for (int i = 0; i < 1001; ++i) many.push_back({{"terminal_id", "T"}, {"sha256", kHashA}});
         d["terminal_tokens"] = many;
       },
       ErrorCode::kInvalidField, "terminal_tokens"},
  };
  for (size_t i = 0; i < cases.size(); ++i) {
    json doc = StoreDoc();
    cases[i].edit(doc);
    Result<StoreConfig> c = ParseStoreConfig(doc.dump());
    ASSERT_FALSE(c.ok()) << "case " << i;
    EXPECT_EQ(c.status().code(), cases[i].code) << "case " << i << ": " << c.status().ToString();
    EXPECT_EQ(c.status().field(), cases[i].field) << "case " << i;
    EXPECT_EQ(c.status().ToString().find("mh_secret"), std::string::npos) << "no value quoted";
  }
  EXPECT_EQ(ParseStoreConfig("{").status().code(), ErrorCode::kInvalidJson);
  EXPECT_EQ(ParseStoreConfig("[]").status().code(), ErrorCode::kInvalidJson);
  EXPECT_EQ(ParseStoreConfig(std::string(kMaxStoreConfigBytes + 1, ' ')).status().code(),
            ErrorCode::kPayloadTooLarge);
}

class StoreConfigFetcherTest : public FetcherTestBase {
 protected:
  static constexpr const char* kKey = "pos/config/store=S001/store.json";

  StoreConfigFetcherOptions Options() {
    return {.key = kKey, .local_path = dir_.path() + "/store-config.json"};
  }
  std::unique_ptr<StoreConfigFetcher> Open(cloud::ObjectStore* store) {
    auto f = StoreConfigFetcher::Open(store, Options(), &clock_, &metrics_);
    EXPECT_TRUE(f.ok()) << f.status().ToString();
    return f.ok() ? std::move(*f) : nullptr;
  }
  void Upload(const std::string& body) { PutObject(kKey, body); }
  int64_t Fetches(const std::string& result) {
    return metrics_.GetCounter("machub_store_config_fetches_total", "", {{"result", result}})
        .Value();
  }
};

TEST_F(StoreConfigFetcherTest, AppliesRefusesAndKeepsTheLastGoodCopyOffline) {
  auto f = Open(store_.get());
  ASSERT_NE(f, nullptr);
  EXPECT_EQ(f->Snapshot(), nullptr);
  EXPECT_EQ(f->generation(), 0);
  EXPECT_EQ(f->FetchOnce().code(), ErrorCode::kNotFound);
  EXPECT_EQ(Fetches("error"), 1);
  EXPECT_FALSE(fs::exists(Options().local_path)) << "nothing applied, nothing written";

  Upload(StoreDoc("s1").dump());
  ASSERT_TRUE(f->FetchOnce().ok());
  ASSERT_NE(f->Snapshot(), nullptr);
  EXPECT_EQ(f->Snapshot()->version, "s1");
  EXPECT_EQ(f->generation(), 1);
  EXPECT_EQ(Fetches("applied"), 1);
  json st = json(f->StatusJson());
  EXPECT_EQ(st["version"], "s1");
  EXPECT_EQ(st["terminal_tokens"], 2);
  EXPECT_EQ(st["offline"]["card_max_amount"], "150.00");
  EXPECT_TRUE(st["last_error"].is_null());

  // Unchanged: a conditional GET, nothing re-applied, the local copy not rewritten (no
  // SD-card wear for an unchanged object).
  const auto written = fs::last_write_time(Options().local_path);
  const std::string copy_before = *core::ReadFileToString(Options().local_path);
  clock_.Advance(60'000);
  ASSERT_TRUE(f->FetchOnce().ok());
  EXPECT_FALSE(store_->calls().back().if_none_match.empty());
  EXPECT_EQ(f->generation(), 1);
  EXPECT_EQ(Fetches("not_modified"), 1);
  EXPECT_EQ(fs::last_write_time(Options().local_path), written);
  EXPECT_EQ(*core::ReadFileToString(Options().local_path), copy_before);

  // Invalid: refused whole, the previous document stays (in memory and on disk).
  json bad = StoreDoc("s2");
  bad["terminal_tokens"][0]["sha256"] = "nothex";
  Upload(bad.dump());
  EXPECT_EQ(f->FetchOnce().code(), ErrorCode::kInvalidField);
  EXPECT_EQ(f->Snapshot()->version, "s1");
  EXPECT_EQ(f->generation(), 1);
  EXPECT_EQ(Fetches("invalid"), 1);
  st = json(f->StatusJson());
  EXPECT_NE(st["last_error"].get<std::string>().find("terminal_tokens[0].sha256"),
            std::string::npos);
  EXPECT_EQ(*core::ReadFileToString(Options().local_path), copy_before);

  // A new valid document replaces the old one whole.
  json s3 = StoreDoc("s3");
  s3["terminal_tokens"].erase(0);
  s3.erase("offline");
  Upload(s3.dump());
  ASSERT_TRUE(f->FetchOnce().ok());
  EXPECT_EQ(f->Snapshot()->version, "s3");
  EXPECT_EQ(f->Snapshot()->tokens.size(), 1u);
  EXPECT_EQ(f->Snapshot()->offline, StoreOfflineOverrides{});
  EXPECT_EQ(f->generation(), 2);

  // The object is deleted and the hub restarts with no store at all: the last good copy
  // is what it starts with; a fetch without a store says why.
  f.reset();
  auto offline = Open(nullptr);
  ASSERT_NE(offline, nullptr);
  ASSERT_NE(offline->Snapshot(), nullptr);
  EXPECT_EQ(offline->Snapshot()->version, "s3");
  EXPECT_EQ(offline->generation(), 1);
  EXPECT_EQ(offline->FetchOnce().code(), ErrorCode::kUnavailable);
  EXPECT_EQ(offline->Snapshot()->version, "s3");
}

TEST_F(StoreConfigFetcherTest, ADamagedLocalCopyIsIgnoredAndRefetched) {
  std::ofstream(Options().local_path) << "{\"body\": \"{\\\"version\\\":";  // cut mid-write
  auto f = Open(store_.get());
  ASSERT_NE(f, nullptr);
  EXPECT_EQ(f->Snapshot(), nullptr);
  EXPECT_FALSE(json(f->StatusJson())["last_error"].is_null());
  Upload(StoreDoc("s1").dump());
  ASSERT_TRUE(f->FetchOnce().ok());
  EXPECT_EQ(f->Snapshot()->version, "s1");
  f.reset();
  EXPECT_EQ(Open(nullptr)->Snapshot()->version, "s1") << "the refetched copy replaced it";
}

TEST_F(StoreConfigFetcherTest, PeriodicThreadPicksUpANewDocument) {
  auto f = Open(store_.get());
  ASSERT_NE(f, nullptr);
  EXPECT_EQ(f->Start(0).code(), ErrorCode::kInvalidArgument);
  ASSERT_TRUE(f->Start(3'600'000).ok());
  EXPECT_EQ(f->Start(3'600'000).code(), ErrorCode::kInvalidArgument);
  Upload(StoreDoc("s1").dump());
  f->FetchSoon();
  for (int i = 0; i < 500 && f->generation() == 0; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_EQ(f->generation(), 1);
  f->Stop();
  f->Stop();
}

// ---- Real S3 (Ceph RGW) ------------------------------------------------------------

class StaticCredentials final : public cloud::CredentialsProvider {
 public:
  StaticCredentials(std::string key, std::string secret) {
    creds_.access_key_id = std::move(key);
    creds_.secret_access_key = std::move(secret);
  }
  Result<cloud::Credentials> Get() override { return creds_; }
  void Invalidate() override {}
  std::string Describe() const override { return "static"; }

 private:
  cloud::Credentials creds_;
};

// One RGW cluster for this suite, started lazily so that the other suites never pay
// for it (ctest runs this suite as its own test, catalog_rgw_test).
class CatalogRgwTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new TempDir();
    rgw_ = machub::testing::RgwPeer::Start(dir_->path() + "/rgw", &why_).release();
    if (rgw_ == nullptr) return;
    creds_ = new StaticCredentials(rgw_->access_key(), rgw_->secret_key());
    cloud::S3Options options;
    options.endpoint = rgw_->endpoint();
    options.bucket = "machub-catalog-test";
    options.credentials = creds_;
    auto client = cloud::S3Client::Create(options);
    if (!client.ok()) {
      why_ = client.status().ToString();
      return;
    }
    if (machub::Status st = (*client)->CreateBucket(); !st.ok()) {
      why_ = "cannot create the bucket: " + st.ToString();
      return;
    }
    client_ = client->release();
  }
  static void TearDownTestSuite() {
    delete client_;
    client_ = nullptr;
    if (rgw_ != nullptr) {
      EXPECT_TRUE(rgw_->Stop());
    }
    delete rgw_;
    rgw_ = nullptr;
    delete creds_;
    creds_ = nullptr;
    delete dir_;
    dir_ = nullptr;
  }
  void SetUp() override {
    if (client_ == nullptr) GTEST_SKIP() << "no RGW peer: " << why_;
  }
  // Writes a JSON object at `key`, overwriting it as the back office does.
  static void PutJson(const std::string& key, const std::string& body) {
    cloud::PutRequest r;
    r.key = key;
    r.body = body;
    r.content_type = "application/json";
    r.if_none_match = false;
    auto outcome = client_->Put(r);
    ASSERT_TRUE(outcome.ok()) << outcome.status().ToString();
  }

  static inline TempDir* dir_ = nullptr;
  static inline machub::testing::RgwPeer* rgw_ = nullptr;
  static inline StaticCredentials* creds_ = nullptr;
  static inline cloud::S3Client* client_ = nullptr;
  static inline std::string why_;
};

TEST_F(CatalogRgwTest, ConditionalFetchAgainstRealS3) {
  const std::string key = CatalogKey("pos-" + std::to_string(getpid()), "S001");  // own key per run
  auto put = [&](const std::string& body) { PutJson(key, body); };
  RecordingStore store(client_);
  TempDir data;
  machub::testing::ManualClock clock(kT0);
  core::MetricsRegistry metrics;
  CatalogFetcherOptions options;
  options.key = key;
  options.db_path = data.path() + "/catalog.db";
  auto opened = CatalogFetcher::Open(&store, options, &clock, &metrics);
  ASSERT_TRUE(opened.ok()) << opened.status().ToString();
  std::unique_ptr<CatalogFetcher> f = std::move(*opened);

  EXPECT_EQ(f->FetchOnce().code(), ErrorCode::kNotFound) << "no object yet";

  put(ValidDoc().dump());
  machub::Status st = f->FetchOnce();
  ASSERT_TRUE(st.ok()) << st.ToString();
  EXPECT_EQ(f->Snapshot()->catalog.version, "v1");
  EXPECT_EQ(json::parse(*f->Product("0001"))["price"], "3.50");

  clock.Advance(1000);
  st = f->FetchOnce();
  ASSERT_TRUE(st.ok()) << st.ToString();
  ASSERT_FALSE(store.calls().empty());
  EXPECT_TRUE(store.calls().back().not_modified) << "RGW answered 304";
  EXPECT_FALSE(store.calls().back().if_none_match.empty());
  EXPECT_EQ(metrics.GetCounter("machub_catalog_fetches_total", "", {{"result", "applied"}}).Value(),
            1);

  json v2 = ValidDoc();
  v2["version"] = "v2";
  v2["products"][0]["price"] = "2.25";
  put(v2.dump());
  st = f->FetchOnce();
  ASSERT_TRUE(st.ok()) << st.ToString();
  EXPECT_FALSE(store.calls().back().not_modified);
  EXPECT_EQ(f->Snapshot()->catalog.version, "v2");
  EXPECT_EQ(json::parse(*f->Product("0002"))["price"], "2.25");
  EXPECT_EQ(metrics.GetCounter("machub_catalog_fetches_total", "", {{"result", "applied"}}).Value(),
            2);

  // Restart offline: the RGW catalog is served from catalog.db.
  const std::string etag = f->Snapshot()->etag;
  f.reset();
  auto offline = CatalogFetcher::Open(nullptr, options, &clock, &metrics);
  ASSERT_TRUE(offline.ok()) << offline.status().ToString();
  EXPECT_EQ((*offline)->Snapshot()->etag, etag);
}

TEST_F(CatalogRgwTest, StoreConfigConditionalFetchAgainstRealS3) {
  const std::string key = StoreConfigKey("pos-" + std::to_string(getpid()), "S001");
  auto put = [&](const std::string& body) { PutJson(key, body); };
  RecordingStore store(client_);
  TempDir data;
  machub::testing::ManualClock clock(kT0);
  core::MetricsRegistry metrics;
  StoreConfigFetcherOptions options{.key = key, .local_path = data.path() + "/store-config.json"};
  auto opened = StoreConfigFetcher::Open(&store, options, &clock, &metrics);
  ASSERT_TRUE(opened.ok()) << opened.status().ToString();
  std::unique_ptr<StoreConfigFetcher> f = std::move(*opened);
  EXPECT_EQ(f->FetchOnce().code(), ErrorCode::kNotFound) << "no object yet";

  put(StoreDoc("r1").dump());
  machub::Status st = f->FetchOnce();
  ASSERT_TRUE(st.ok()) << st.ToString();
  EXPECT_EQ(f->Snapshot()->version, "r1");
  st = f->FetchOnce();
  ASSERT_TRUE(st.ok()) << st.ToString();
  EXPECT_TRUE(store.calls().back().not_modified) << "RGW answered 304";
  EXPECT_EQ(f->generation(), 1);

  put(StoreDoc("r2").dump());
  st = f->FetchOnce();
  ASSERT_TRUE(st.ok()) << st.ToString();
  EXPECT_EQ(f->Snapshot()->version, "r2");
  EXPECT_EQ(f->generation(), 2);
  const std::string etag = json(f->StatusJson())["etag"];
  EXPECT_FALSE(etag.empty());

  // Restart offline: RGW's document from the local copy.
  f.reset();
  auto offline = StoreConfigFetcher::Open(nullptr, options, &clock, &metrics);
  ASSERT_TRUE(offline.ok());
  EXPECT_EQ((*offline)->Snapshot()->version, "r2");
  EXPECT_EQ(json((*offline)->StatusJson())["etag"], etag);
}

// The bookkeeping both fetchers share: every attempt counted by outcome (a failure that
// is not a rejected object counts as an error), an error logged once until it changes,
// a rejection under its own event, and one "recovered" line when it clears.
TEST(FetchReportTest, CountsEveryAttemptAndLogsEachChangeOnce) {
  core::MetricsRegistry metrics;
  FetchReport report(&metrics, "machub_test_fetches_total", "help", "thing", "cfg/thing.json");
  auto count = [&](const char* result) {
    return metrics.GetCounter("machub_test_fetches_total", "", {{"result", result}}).Value();
  };
  const Status down(ErrorCode::kUnavailable, "link down");
  const Status bad(ErrorCode::kInvalidJson, "not json");
  ::testing::internal::CaptureStdout();
  EXPECT_EQ(report.Record(FetchOutcome::kApplied, Status::Ok()), FetchOutcome::kApplied);
  // kApplied with an error is an error: what the fetcher had set does not matter.
  EXPECT_EQ(report.Record(FetchOutcome::kApplied, down), FetchOutcome::kError);
  EXPECT_EQ(report.Record(FetchOutcome::kError, down), FetchOutcome::kError);
  EXPECT_EQ(report.Record(FetchOutcome::kInvalid, bad), FetchOutcome::kInvalid);
  EXPECT_EQ(report.Record(FetchOutcome::kNotModified, Status::Ok()), FetchOutcome::kNotModified);
  EXPECT_EQ(report.Record(FetchOutcome::kNotModified, Status::Ok()), FetchOutcome::kNotModified);
  const std::string out = ::testing::internal::GetCapturedStdout();
  EXPECT_EQ(count("applied"), 1);
  EXPECT_EQ(count("error"), 2);
  EXPECT_EQ(count("invalid"), 1);
  EXPECT_EQ(count("not_modified"), 2);
  std::vector<json> lines;
  std::istringstream in(out);
  for (std::string line; std::getline(in, line);) lines.push_back(json::parse(line));
  ASSERT_EQ(lines.size(), 3u) << out;
  EXPECT_EQ(lines[0]["event"], "thing_fetch_failed");
  EXPECT_EQ(lines[0]["key"], "cfg/thing.json");
  EXPECT_NE(lines[0]["error"].get<std::string>().find("link down"), std::string::npos);
  EXPECT_EQ(lines[1]["event"], "thing_rejected");
  EXPECT_EQ(lines[2]["event"], "thing_fetch_recovered");
}

}  // namespace
}  // namespace machub::catalog
