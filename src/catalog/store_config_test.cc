// Catalog tests (catalog_test_support.h has the shared pieces): the per-store configuration
// (store.json): its fetcher and local copy.
#include "catalog/catalog_test_support.h"

namespace machub::catalog {
namespace {

// ---- store.json (store_config.h) ---------------------------------------------------

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

}  // namespace
}  // namespace machub::catalog
