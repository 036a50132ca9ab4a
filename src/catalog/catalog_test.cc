// Catalog tests (catalog_test_support.h has the shared pieces): the catalog's local copy
// (catalog.db) and CatalogFetcher against a local folder and scripted stores.
#include "catalog/catalog_test_support.h"

namespace machub::catalog {
namespace {

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
// (RecordingStore, FetcherTestBase: catalog_test_support.h)
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

}  // namespace
}  // namespace machub::catalog
