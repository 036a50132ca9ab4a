// Catalog tests (catalog_test_support.h has the shared pieces): both fetchers against a real Ceph
// RGW when one can start here (skipped with the reason otherwise), and the attempt report both
// fetchers share.
#include "catalog/catalog_test_support.h"
#include "static_credentials.h"

namespace machub::catalog {
namespace {

// ---- Real S3 (Ceph RGW) ------------------------------------------------------------

using machub::testing::StaticCredentials;

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
