// S3Client against a real S3 implementation: a throw-away Ceph RGW started once for this
// executable by tests/peers/rgw.sh, and tests/peers/fault_proxy for network faults. When
// RGW cannot start here (packages missing and not root), the RGW tests are skipped with
// the reason; the pure tests (error mapping, XML) always run.

#include "cloud/s3_client.h"

#include <curl/curl.h>
#include <gtest/gtest.h>
#include <openssl/evp.h>
#include <stdlib.h>

#include <chrono>
#include <filesystem>
#include <regex>

#include "core/clock.h"
#include "core/sha256.h"
#include "manual_clock.h"
#include "static_credentials.h"
#include "test_peers.h"

namespace machub::cloud {
namespace {

using machub::testing::FaultProxy;
using machub::testing::RgwPeer;

constexpr const char* kBucket = "machub-test";

using machub::testing::StaticCredentials;

// One RGW cluster and one fault proxy in front of it for the whole executable.
class PeersEnvironment : public ::testing::Environment {
 public:
  void SetUp() override {
    std::string tmpl = (std::filesystem::temp_directory_path() / "machub-s3-test.XXXXXX").string();
    if (mkdtemp(tmpl.data()) == nullptr) {
      why_ = "mkdtemp failed";
      return;
    }
    dir_ = tmpl;
    rgw_ = RgwPeer::Start(dir_ + "/rgw", &why_);
    if (rgw_ == nullptr) return;
    std::fprintf(stderr, "[ peers    ] RGW ready at %s in %lld ms\n", rgw_->endpoint().c_str(),
                 static_cast<long long>(rgw_->start_ms()));
    proxy_ = FaultProxy::Start(rgw_->port(), &why_);
    if (proxy_ == nullptr) {
      rgw_.reset();
      return;
    }
    StaticCredentials creds(rgw_->access_key(), rgw_->secret_key());
    S3Options options;
    options.endpoint = rgw_->endpoint();
    options.bucket = kBucket;
    options.credentials = &creds;
    auto client = S3Client::Create(options);
    Status created = client.ok() ? (*client)->CreateBucket() : client.status();
    if (!created.ok()) {
      why_ = "cannot create the test bucket: " + created.ToString();
      proxy_.reset();
      rgw_.reset();
    }
  }
  void TearDown() override {
    proxy_.reset();
    if (rgw_ != nullptr) {
      EXPECT_TRUE(rgw_->Stop()) << "rgw.sh stop failed";
    }
    rgw_.reset();
    std::error_code ec;
    if (!dir_.empty()) std::filesystem::remove_all(dir_, ec);
  }

  static PeersEnvironment* instance;
  std::unique_ptr<RgwPeer> rgw_;
  std::unique_ptr<FaultProxy> proxy_;
  std::string why_;
  std::string dir_;
};
PeersEnvironment* PeersEnvironment::instance = nullptr;

std::string Md5Hex(std::string_view data) {
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_Digest(data.data(), data.size(), out, &len, EVP_md5(), nullptr);
  return core::ToHex(std::string_view(reinterpret_cast<char*>(out), len));
}

int64_t ElapsedMs(std::chrono::steady_clock::time_point since) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() -
                                                               since)
      .count();
}

class S3ClientTest : public ::testing::Test {
 protected:
  void SetUp() override {
    env_ = PeersEnvironment::instance;
    if (env_->rgw_ == nullptr) GTEST_SKIP() << "no RGW peer: " << env_->why_;
    creds_ =
        std::make_unique<StaticCredentials>(env_->rgw_->access_key(), env_->rgw_->secret_key());
    client_ = MakeClient(BaseOptions());
    // Every test gets its own key space.
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    ns_ = std::string(info->name()) + "-" + std::to_string(getpid()) + "-" +
          std::to_string(++run_) + "/";
  }
  void TearDown() override {
    if (env_ != nullptr && env_->proxy_ != nullptr) env_->proxy_->SetMode("pass");
  }

  S3Options BaseOptions() {
    S3Options options;
    options.endpoint = env_->rgw_->endpoint();
    options.bucket = kBucket;
    options.credentials = creds_.get();
    return options;
  }

  // Options for a client behind the fault proxy, with short timeouts.
  S3Options ProxiedOptions() {
    S3Options options = BaseOptions();
    options.endpoint = env_->proxy_->endpoint();
    options.connect_timeout_ms = 1000;
    options.low_speed_limit_bytes = 1;
    options.low_speed_time_s = 1;
    options.total_timeout_ms = 3000;
    return options;
  }

  static std::unique_ptr<S3Client> MakeClient(S3Options options) {
    auto client = S3Client::Create(std::move(options));
    EXPECT_TRUE(client.ok()) << client.status().ToString();
    return client.ok() ? std::move(*client) : nullptr;
  }

  static PutRequest Request(std::string key, std::string body,
                            std::map<std::string, std::string> metadata = {}) {
    PutRequest r;
    r.key = std::move(key);
    r.body = std::move(body);
    r.metadata = std::move(metadata);
    return r;
  }

  int Accepted() {
    std::smatch m;
    std::string stats = env_->proxy_->Command("stats");
    std::regex re("accepted=([0-9]+)");
    return std::regex_search(stats, m, re) ? std::stoi(m[1]) : -1;
  }

  PeersEnvironment* env_ = nullptr;
  std::unique_ptr<StaticCredentials> creds_;
  std::unique_ptr<S3Client> client_;
  std::string ns_;
  static inline int run_ = 0;  // distinct keys under --gtest_repeat
};

TEST_F(S3ClientTest, PutHeadGetListRoundTrip) {
  const std::string key = ns_ + "pos/sales/store=S001/date=2026-11-27/S001-000001-000010.jsonl.gz";
  std::string body(100000, '\0');
  for (size_t i = 0; i < body.size(); ++i) body[i] = static_cast<char>(i * 7919 % 251);
  PutRequest put = Request(key, body, {{"first-hash", "00aa"}, {"last-hash", "ffbb"}});
  put.content_type = "application/x-ndjson";
  auto created = client_->Put(put);
  ASSERT_TRUE(created.ok()) << created.status().ToString();
  EXPECT_EQ(*created, PutOutcome::kCreated);

  auto head = client_->Head(key);
  ASSERT_TRUE(head.ok()) << head.status().ToString();
  EXPECT_EQ(head->etag, Md5Hex(body));
  EXPECT_EQ(head->size, static_cast<int64_t>(body.size()));
  EXPECT_EQ(head->metadata,
            (std::map<std::string, std::string>{{"first-hash", "00aa"}, {"last-hash", "ffbb"}}));

  auto get = client_->Get(key);
  ASSERT_TRUE(get.ok()) << get.status().ToString();
  EXPECT_FALSE(get->not_modified);
  EXPECT_EQ(get->body, body);
  EXPECT_EQ(get->etag, Md5Hex(body));

  auto cached = client_->Get(key, get->etag);
  ASSERT_TRUE(cached.ok()) << cached.status().ToString();
  EXPECT_TRUE(cached->not_modified);
  EXPECT_TRUE(cached->body.empty());
  EXPECT_EQ(cached->etag, get->etag);

  auto list = client_->List(ns_ + "pos/sales/");
  ASSERT_TRUE(list.ok()) << list.status().ToString();
  ASSERT_EQ(list->objects.size(), 1u);
  EXPECT_EQ(list->objects[0].first, key);
  EXPECT_EQ(list->objects[0].second.etag, Md5Hex(body));
  EXPECT_EQ(list->objects[0].second.size, static_cast<int64_t>(body.size()));
  EXPECT_TRUE(list->next_token.empty());

  EXPECT_TRUE(client_->Probe().ok());
  EXPECT_EQ(client_->Describe(), std::string("s3://") + kBucket);
}

TEST_F(S3ClientTest, KeysNeedingEncodingRoundTrip) {
  // '=' and ' ' and '+' and non-ASCII in the path, '&' and '<' in the List XML.
  const std::vector<std::string> keys = {ns_ + "a=b/c d+e.gz", ns_ + "x&y<z>'\"/f~g_h-i.j",
                                         ns_ + "caf\xc3\xa9/%41%2F", ns_ + "dots/./../k"};
  for (const auto& key : keys) {
    auto put = client_->Put(Request(key, "body of " + key));
    ASSERT_TRUE(put.ok()) << key << ": " << put.status().ToString();
    EXPECT_EQ(*put, PutOutcome::kCreated) << key;
    auto get = client_->Get(key);
    ASSERT_TRUE(get.ok()) << key << ": " << get.status().ToString();
    EXPECT_EQ(get->body, "body of " + key);
  }
  auto list = client_->List(ns_);
  ASSERT_TRUE(list.ok()) << list.status().ToString();
  std::set<std::string> listed;
  for (const auto& [key, info] : list->objects) listed.insert(key);
  EXPECT_EQ(listed, std::set<std::string>(keys.begin(), keys.end()));
}

TEST_F(S3ClientTest, IfNoneMatchNeverOverwrites) {
  const std::string key = ns_ + "batch.gz";
  ASSERT_EQ(*client_->Put(Request(key, "first", {{"v", "1"}})), PutOutcome::kCreated);
  auto again = client_->Put(Request(key, "second", {{"v", "2"}}));
  ASSERT_TRUE(again.ok()) << again.status().ToString();
  EXPECT_EQ(*again, PutOutcome::kAlreadyExists);
  EXPECT_EQ(client_->Get(key)->body, "first");
  EXPECT_EQ(client_->Head(key)->metadata.at("v"), "1");
  // A connection that answered 412 stays usable.
  EXPECT_TRUE(client_->Head(key).ok());
}

TEST_F(S3ClientTest, ListPagesWithContinuationToken) {
  S3Options options = BaseOptions();
  options.list_page_size = 2;
  auto client = MakeClient(options);
  std::set<std::string> expected;
  for (int i = 0; i < 5; ++i) {
    std::string key = ns_ + "k" + std::to_string(i);
    ASSERT_EQ(*client->Put(Request(key, "x")), PutOutcome::kCreated);
    expected.insert(key);
  }
  std::set<std::string> seen;
  std::string token;
  int pages = 0;
  do {
    auto page = client->List(ns_, token);
    ASSERT_TRUE(page.ok()) << page.status().ToString();
    EXPECT_LE(page->objects.size(), 2u);
    for (const auto& [key, info] : page->objects) seen.insert(key);
    token = page->next_token;
    ASSERT_LT(++pages, 10);
  } while (!token.empty());
  EXPECT_EQ(pages, 3);
  EXPECT_EQ(seen, expected);
}

TEST_F(S3ClientTest, PrefixOptionIsPrependedAndStripped) {
  S3Options options = BaseOptions();
  options.prefix = ns_ + "root/";
  auto client = MakeClient(options);
  ASSERT_EQ(*client->Put(Request("sales/a.gz", "a")), PutOutcome::kCreated);
  EXPECT_TRUE(client_->Head(ns_ + "root/sales/a.gz").ok());  // where it really is
  auto list = client->List("sales/");
  ASSERT_TRUE(list.ok()) << list.status().ToString();
  ASSERT_EQ(list->objects.size(), 1u);
  EXPECT_EQ(list->objects[0].first, "sales/a.gz");
  EXPECT_EQ(client->Get("sales/a.gz")->body, "a");
  EXPECT_EQ(client->Describe(), std::string("s3://") + kBucket + "/" + ns_ + "root");
}

TEST_F(S3ClientTest, VirtualHostedAddressing) {
  S3Options options = BaseOptions();
  int port = env_->rgw_->port();
  options.endpoint = "http://localhost:" + std::to_string(port);  // rgw dns name = localhost
  options.addressing = S3Addressing::kVirtualHosted;
  options.connect_to = std::string(kBucket) + ".localhost:" + std::to_string(port) +
                       ":127.0.0.1:" + std::to_string(port);
  auto client = MakeClient(options);
  auto put = client->Put(Request(ns_ + "v=1/x", "virtual"));
  ASSERT_TRUE(put.ok()) << put.status().ToString();
  EXPECT_EQ(client_->Get(ns_ + "v=1/x")->body, "virtual");
  auto list = client->List(ns_);
  ASSERT_TRUE(list.ok()) << list.status().ToString();
  ASSERT_EQ(list->objects.size(), 1u);
  EXPECT_TRUE(client->Probe().ok());
}

TEST_F(S3ClientTest, MissingObjectAndBucket) {
  EXPECT_EQ(client_->Head(ns_ + "nope").status().code(), ErrorCode::kNotFound);
  auto get = client_->Get(ns_ + "nope");
  EXPECT_EQ(get.status().code(), ErrorCode::kNotFound);
  EXPECT_NE(get.status().message().find("NoSuchKey"), std::string::npos) << get.status().message();
  S3Options options = BaseOptions();
  options.bucket = "no-such-bucket";
  auto client = MakeClient(options);
  EXPECT_EQ(client->Probe().code(), ErrorCode::kNotFound);
  EXPECT_EQ(client->List("").status().code(), ErrorCode::kNotFound);
}

TEST_F(S3ClientTest, WrongSecretIsUnauthorized) {
  StaticCredentials wrong(env_->rgw_->access_key(), "wrong-secret-0123456789");
  S3Options options = BaseOptions();
  options.credentials = &wrong;
  auto client = MakeClient(options);
  auto put = client->Put(Request(ns_ + "x", "x"));
  ASSERT_FALSE(put.ok());
  EXPECT_EQ(put.status().code(), ErrorCode::kUnauthorized);
  EXPECT_FALSE(IsRetryable(put.status()));
  const std::string& msg = put.status().message();
  EXPECT_NE(msg.find("SignatureDoesNotMatch"), std::string::npos) << msg;
  EXPECT_NE(msg.find("403"), std::string::npos) << msg;
  EXPECT_EQ(msg.find("wrong-secret"), std::string::npos) << msg;
  EXPECT_EQ(msg.find("Signature="), std::string::npos) << msg;
  EXPECT_EQ(client->Probe().code(), ErrorCode::kUnauthorized);
  EXPECT_EQ(client_->Head(ns_ + "x").status().code(), ErrorCode::kNotFound);
}

TEST_F(S3ClientTest, UnknownAccessKeyIsUnauthorizedAndInvalidatesCredentials) {
  StaticCredentials unknown("AKIDUNKNOWN000000000", env_->rgw_->secret_key());
  S3Options options = BaseOptions();
  options.credentials = &unknown;
  auto client = MakeClient(options);
  auto put = client->Put(Request(ns_ + "x", "x"));
  ASSERT_FALSE(put.ok());
  EXPECT_EQ(put.status().code(), ErrorCode::kUnauthorized);
  EXPECT_NE(put.status().message().find("InvalidAccessKeyId"), std::string::npos)
      << put.status().message();
  EXPECT_EQ(unknown.invalidated, 1);
}

TEST_F(S3ClientTest, WrongContentMd5IsDetectedAndNotRetryable) {
  S3Options options = BaseOptions();
  options.test_corrupt_content_md5 = true;
  auto client = MakeClient(options);
  auto put = client->Put(Request(ns_ + "corrupt.gz", "the bytes"));
  ASSERT_FALSE(put.ok());
  EXPECT_EQ(put.status().code(), ErrorCode::kInvalidArgument);
  EXPECT_FALSE(IsRetryable(put.status()));
  EXPECT_NE(put.status().message().find("BadDigest"), std::string::npos) << put.status().message();
  EXPECT_EQ(client_->Head(ns_ + "corrupt.gz").status().code(), ErrorCode::kNotFound);
}

TEST_F(S3ClientTest, ClockSkewIsLearnedAndCorrected) {
  const int64_t real_now = core::SystemClock().NowMs();
  machub::testing::ManualClock clock(real_now - 3600 * 1000);  // one hour slow
  S3Options options = BaseOptions();
  options.clock = &clock;
  auto client = MakeClient(options);
  EXPECT_EQ(client->clock_offset_ms(), 0);
  auto put = client->Put(Request(ns_ + "skewed", "on time"));
  ASSERT_TRUE(put.ok()) << put.status().ToString();
  EXPECT_EQ(*put, PutOutcome::kCreated);
  EXPECT_NEAR(static_cast<double>(client->clock_offset_ms()), 3600.0 * 1000, 5000.0);
  // Later requests use the learned offset from the start.
  int64_t learned = client->clock_offset_ms();
  EXPECT_TRUE(client->Head(ns_ + "skewed").ok());
  EXPECT_EQ(client->clock_offset_ms(), learned);

  // A HEAD has no error body: the Date header alone reveals the skew.
  machub::testing::ManualClock fast(real_now + 3600 * 1000);
  options.clock = &fast;
  auto head_client = MakeClient(options);
  auto head = head_client->Head(ns_ + "skewed");
  ASSERT_TRUE(head.ok()) << head.status().ToString();
  EXPECT_NEAR(static_cast<double>(head_client->clock_offset_ms()), -3600.0 * 1000, 5000.0);
}

size_t AppendToString(char* data, size_t size, size_t nmemb, void* user) {
  static_cast<std::string*>(user)->append(data, size * nmemb);
  return size * nmemb;
}

// A plain libcurl GET, without any signing of ours. Returns the HTTP status.
long PlainGet(const std::string& url, std::string* body) {
  CURL* curl = curl_easy_init();
  curl_easy_setopt(curl, CURLOPT_URL, url.c_str());
  curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, AppendToString);
  curl_easy_setopt(curl, CURLOPT_WRITEDATA, body);
  curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, 5000L);
  long status = 0;
  if (curl_easy_perform(curl) == CURLE_OK) curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
  curl_easy_cleanup(curl);
  return status;
}

TEST_F(S3ClientTest, PresignedGetWorksWithPlainCurl) {
  const std::string key = ns_ + "store=S1/shared file.csv";
  ASSERT_EQ(*client_->Put(Request(key, "a,b\n1,2\n")), PutOutcome::kCreated);
  auto url = client_->PresignGet(key, 300);
  ASSERT_TRUE(url.ok()) << url.status().ToString();
  EXPECT_EQ(url->find(env_->rgw_->secret_key()), std::string::npos);
  std::string body;
  EXPECT_EQ(PlainGet(*url, &body), 200) << body;
  EXPECT_EQ(body, "a,b\n1,2\n");

  // The signature covers the key: another key with the same query is refused.
  std::string other = *url;
  other.replace(other.find("shared"), 6, "sharex");
  body.clear();
  EXPECT_EQ(PlainGet(other, &body), 403);
  EXPECT_EQ(client_->PresignGet(key, 0).status().code(), ErrorCode::kInvalidArgument);
}

TEST_F(S3ClientTest, HonoursProxyEnvironmentVariables) {
  // libcurl reads http_proxy/no_proxy itself; the fault proxy only counts connections.
  auto client = MakeClient(BaseOptions());
  int before = Accepted();
  setenv("http_proxy", env_->proxy_->endpoint().c_str(), 1);
  (void)client->Head(ns_ + "via-proxy");  // the outcome depends on the proxy, not checked
  int through_proxy = Accepted();
  setenv("no_proxy", "127.0.0.1", 1);
  auto direct = client->Put(Request(ns_ + "direct", "d"));
  int after_no_proxy = Accepted();
  unsetenv("http_proxy");
  unsetenv("no_proxy");
  EXPECT_EQ(through_proxy, before + 1);
  ASSERT_TRUE(direct.ok()) << direct.status().ToString();
  EXPECT_EQ(after_no_proxy, through_proxy);
}

TEST_F(S3ClientTest, ThroughPassingProxyEverythingWorks) {
  auto client = MakeClient(ProxiedOptions());
  ASSERT_TRUE(env_->proxy_->SetMode("latency 150"));
  auto start = std::chrono::steady_clock::now();
  auto put = client->Put(Request(ns_ + "slow", "slow but fine"));
  ASSERT_TRUE(put.ok()) << put.status().ToString();
  EXPECT_GE(ElapsedMs(start), 150);
  ASSERT_TRUE(env_->proxy_->SetMode("pass"));
  EXPECT_EQ(client->Get(ns_ + "slow")->body, "slow but fine");
}

TEST_F(S3ClientTest, ConnectionResetIsUnavailable) {
  auto client = MakeClient(ProxiedOptions());
  ASSERT_TRUE(env_->proxy_->SetMode("reset"));
  auto put = client->Put(Request(ns_ + "x", "x"));
  ASSERT_FALSE(put.ok());
  EXPECT_EQ(put.status().code(), ErrorCode::kUnavailable) << put.status().ToString();

  // Reset in the middle of the body: nothing is stored, and a retry creates the object.
  ASSERT_TRUE(env_->proxy_->SetMode("reset-after 2000"));
  std::string big(200000, 'b');
  put = client->Put(Request(ns_ + "x", big));
  ASSERT_FALSE(put.ok());
  EXPECT_EQ(put.status().code(), ErrorCode::kUnavailable) << put.status().ToString();
  ASSERT_TRUE(env_->proxy_->SetMode("close-after 2000"));
  put = client->Put(Request(ns_ + "x", big));
  ASSERT_FALSE(put.ok());
  EXPECT_EQ(put.status().code(), ErrorCode::kUnavailable) << put.status().ToString();
  EXPECT_EQ(client_->Head(ns_ + "x").status().code(), ErrorCode::kNotFound);

  ASSERT_TRUE(env_->proxy_->SetMode("pass"));
  put = client->Put(Request(ns_ + "x", big));
  ASSERT_TRUE(put.ok()) << put.status().ToString();
  EXPECT_EQ(*put, PutOutcome::kCreated);
}

TEST_F(S3ClientTest, RefusedConnectionIsUnavailable) {
  auto client = MakeClient(ProxiedOptions());
  ASSERT_TRUE(env_->proxy_->SetMode("refuse"));
  Status probe = client->Probe();
  EXPECT_EQ(probe.code(), ErrorCode::kUnavailable) << probe.ToString();
  EXPECT_TRUE(IsRetryable(probe));
  ASSERT_TRUE(env_->proxy_->SetMode("pass"));
  EXPECT_TRUE(client->Probe().ok());
}

TEST_F(S3ClientTest, BlackholeTimesOutAsUnavailable) {
  auto client = MakeClient(ProxiedOptions());  // low speed: < 1 B/s for 1 s; total 3 s
  ASSERT_TRUE(env_->proxy_->SetMode("blackhole"));
  auto start = std::chrono::steady_clock::now();
  auto put = client->Put(Request(ns_ + "x", "x"));
  int64_t elapsed = ElapsedMs(start);
  ASSERT_FALSE(put.ok());
  EXPECT_EQ(put.status().code(), ErrorCode::kUnavailable) << put.status().ToString();
  EXPECT_LE(elapsed, 3500);

  // The total timeout holds even when the low-speed guard is off.
  S3Options options = ProxiedOptions();
  options.low_speed_limit_bytes = 0;
  options.total_timeout_ms = 1500;
  auto total_only = MakeClient(options);
  start = std::chrono::steady_clock::now();
  Status probe = total_only->Probe();
  elapsed = ElapsedMs(start);
  EXPECT_EQ(probe.code(), ErrorCode::kUnavailable) << probe.ToString();
  EXPECT_GE(elapsed, 1400);
  EXPECT_LE(elapsed, 2500);
}

TEST_F(S3ClientTest, GatewayOutageAndRecovery) {
  const std::string before = ns_ + "before";
  ASSERT_EQ(*client_->Put(Request(before, "kept")), PutOutcome::kCreated);
  S3Options options = BaseOptions();
  options.connect_timeout_ms = 1000;
  options.total_timeout_ms = 3000;
  auto client = MakeClient(options);
  ASSERT_TRUE(client->Probe().ok());  // a kept-alive connection exists now

  ASSERT_TRUE(env_->rgw_->StopGateway());
  auto put = client->Put(Request(ns_ + "during", "x"));
  ASSERT_FALSE(put.ok());
  EXPECT_EQ(put.status().code(), ErrorCode::kUnavailable) << put.status().ToString();

  ASSERT_TRUE(env_->rgw_->StartGateway());
  put = client->Put(Request(ns_ + "after", "y"));
  ASSERT_TRUE(put.ok()) << put.status().ToString();
  EXPECT_EQ(*put, PutOutcome::kCreated);
  EXPECT_EQ(client->Get(before)->body, "kept");  // the store kept its data
}

TEST_F(S3ClientTest, FrozenGatewayIsUnavailableThenRecovers) {
  S3Options options = BaseOptions();
  options.low_speed_time_s = 1;
  options.total_timeout_ms = 2000;
  auto client = MakeClient(options);
  ASSERT_TRUE(env_->rgw_->Freeze());
  Status probe = client->Probe();
  ASSERT_TRUE(env_->rgw_->Thaw());
  EXPECT_EQ(probe.code(), ErrorCode::kUnavailable) << probe.ToString();
  auto put = client->Put(Request(ns_ + "thawed", "t"));
  ASSERT_TRUE(put.ok()) << put.status().ToString();
}

// --- No peer needed below. ---

TEST(S3ErrorMapTest, MapsEveryClass) {
  auto code = [](int http, const char* s3, int curl = CURLE_OK) {
    return MapS3Error("PUT", "k", http, s3, "", curl, "").code();
  };
  EXPECT_EQ(code(0, "", CURLE_COULDNT_CONNECT), ErrorCode::kUnavailable);
  EXPECT_EQ(code(0, "", CURLE_OPERATION_TIMEDOUT), ErrorCode::kUnavailable);
  EXPECT_EQ(code(0, "", CURLE_RECV_ERROR), ErrorCode::kUnavailable);
  EXPECT_EQ(code(0, "", CURLE_GOT_NOTHING), ErrorCode::kUnavailable);
  EXPECT_EQ(code(0, "", CURLE_COULDNT_RESOLVE_HOST), ErrorCode::kUnavailable);
  EXPECT_EQ(code(0, "", CURLE_URL_MALFORMAT), ErrorCode::kInvalidArgument);
  EXPECT_EQ(code(500, "InternalError"), ErrorCode::kUnavailable);
  EXPECT_EQ(code(503, "SlowDown"), ErrorCode::kUnavailable);
  EXPECT_EQ(code(502, ""), ErrorCode::kUnavailable);
  EXPECT_EQ(code(429, ""), ErrorCode::kUnavailable);
  EXPECT_EQ(code(400, "RequestTimeout"), ErrorCode::kUnavailable);
  EXPECT_EQ(code(403, "RequestTimeTooSkewed"), ErrorCode::kUnavailable);
  EXPECT_EQ(code(409, "OperationAborted"), ErrorCode::kUnavailable);
  EXPECT_EQ(code(409, "ConditionalRequestConflict"), ErrorCode::kUnavailable);
  EXPECT_EQ(code(400, "ExpiredToken"), ErrorCode::kUnavailable);
  EXPECT_EQ(code(403, "InvalidToken"), ErrorCode::kUnavailable);
  EXPECT_EQ(code(403, "SignatureDoesNotMatch"), ErrorCode::kUnauthorized);
  EXPECT_EQ(code(403, "InvalidAccessKeyId"), ErrorCode::kUnauthorized);
  EXPECT_EQ(code(403, "AccessDenied"), ErrorCode::kUnauthorized);
  EXPECT_EQ(code(403, ""), ErrorCode::kUnauthorized);  // HEAD: no body
  EXPECT_EQ(code(404, "NoSuchKey"), ErrorCode::kNotFound);
  EXPECT_EQ(code(404, "NoSuchBucket"), ErrorCode::kNotFound);
  EXPECT_EQ(code(400, "BadDigest"), ErrorCode::kInvalidArgument);
  EXPECT_EQ(code(400, "XAmzContentSHA256Mismatch"), ErrorCode::kInvalidArgument);
  EXPECT_EQ(code(400, "InvalidArgument"), ErrorCode::kInvalidArgument);
  EXPECT_EQ(code(400, "AuthorizationHeaderMalformed"), ErrorCode::kInvalidArgument);
  EXPECT_EQ(code(301, "PermanentRedirect"), ErrorCode::kInvalidArgument);
  EXPECT_EQ(code(501, "NotImplemented"), ErrorCode::kInvalidArgument);

  Status s = MapS3Error("PUT", "a/b", 400, "BadDigest",
                        "The Content-MD5 you specified did not "
                        "match what we received.",
                        CURLE_OK, "");
  EXPECT_EQ(s.message(),
            "S3 PUT a/b: HTTP 400 BadDigest: The Content-MD5 you specified did not "
            "match what we received.");
  // Auth errors never carry the store's message (its body holds the string to sign).
  s = MapS3Error("GET", "k", 403, "SignatureDoesNotMatch", "details", CURLE_OK, "");
  EXPECT_EQ(s.message(), "S3 GET k: HTTP 403 SignatureDoesNotMatch");
}

TEST(S3XmlTest, ParsesListAnswers) {
  const std::string xml =
      R"(<?xml version="1.0" encoding="UTF-8"?>)"
      R"(<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">)"
      "<Name>b</Name><Prefix>p/</Prefix><KeyCount>2</KeyCount><MaxKeys>2</MaxKeys>"
      "<IsTruncated>true</IsTruncated>"
      "<Contents><Key>p/a&amp;b&lt;c&gt;&#x0D;&#233;</Key><ETag>&quot;abc&quot;</ETag>"
      "<Size>12</Size></Contents>"
      "<Contents><Key>p/x</Key><ETag>\"def\"</ETag><Size>0</Size><StorageClass/></Contents>"
      "<NextContinuationToken>1/tok+en=</NextContinuationToken></ListBucketResult>";
  auto keys = XmlElements(xml, "Key");
  ASSERT_EQ(keys.size(), 2u);  // <KeyCount> is another element
  EXPECT_EQ(keys[0], "p/a&b<c>\r\xc3\xa9");
  EXPECT_EQ(keys[1], "p/x");
  EXPECT_EQ(XmlElements(xml, "ETag")[0], "\"abc\"");
  EXPECT_EQ(XmlElements(xml, "StorageClass"), std::vector<std::string>{""});
  EXPECT_EQ(XmlElements(xml, "NextContinuationToken")[0], "1/tok+en=");
  EXPECT_TRUE(XmlElements(xml, "Missing").empty());
  EXPECT_EQ(XmlDecode("a &unknown; &#xZZ; & b &#128512;"),
            "a &unknown; &#xZZ; & b \xf0\x9f\x98\x80");
}

TEST(S3ClientCreateTest, ValidatesOptions) {
  StaticCredentials creds("a", "b");
  S3Options options;
  options.bucket = "ok-bucket";
  options.credentials = &creds;
  EXPECT_TRUE(S3Client::Create(options).ok());
  auto bad = options;
  bad.bucket = "ab";
  EXPECT_EQ(S3Client::Create(bad).status().code(), ErrorCode::kInvalidArgument);
  bad = options;
  bad.credentials = nullptr;
  EXPECT_EQ(S3Client::Create(bad).status().code(), ErrorCode::kInvalidArgument);
  bad = options;
  bad.endpoint = "ftp://host";
  EXPECT_EQ(S3Client::Create(bad).status().code(), ErrorCode::kInvalidArgument);
  bad = options;
  bad.endpoint = "http://host/path";
  EXPECT_EQ(S3Client::Create(bad).status().code(), ErrorCode::kInvalidArgument);
  bad = options;
  bad.region = "";
  EXPECT_EQ(S3Client::Create(bad).status().code(), ErrorCode::kInvalidArgument);
}

}  // namespace
}  // namespace machub::cloud

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  auto* env = new machub::cloud::PeersEnvironment();
  machub::cloud::PeersEnvironment::instance = env;
  ::testing::AddGlobalTestEnvironment(env);
  return RUN_ALL_TESTS();
}
