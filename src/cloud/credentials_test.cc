// Why this file is long (about 780 lines): the credential chain's sources (explicit,
// environment, shared files with profiles, the Greengrass container endpoint) share one
// fake environment and one local HTTP endpoint that the container tests script.
#include "cloud/credentials.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <thread>
#include <vector>

#include "core/time_format.h"
#include "manual_clock.h"
#include "temp_dir.h"

namespace machub::cloud {
namespace {

namespace fs = std::filesystem;

constexpr int64_t kMinute = 60 * 1000;
constexpr int64_t kHour = 60 * kMinute;

// ---------------------------------------------------------------------------------------
// A tiny blocking HTTP/1.1 credential endpoint on 127.0.0.1 (port 0), one connection at a
// time, "Connection: close". It checks the Authorization header and serves credentials
// numbered by request ("ASIAFAKE1", "ASIAFAKE2", ...) so a test sees each refresh.
class FakeCredentialEndpoint {
 public:
  FakeCredentialEndpoint() {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    EXPECT_GE(fd_, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = 0;
    EXPECT_EQ(::bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
    EXPECT_EQ(::listen(fd_, 16), 0);
    socklen_t len = sizeof addr;
    EXPECT_EQ(::getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len), 0);
    port_ = ntohs(addr.sin_port);
    thread_ = std::thread([this] { Run(); });
  }
  ~FakeCredentialEndpoint() { Stop(); }

  // After Stop the port refuses connections.
  void Stop() {
    if (!thread_.joinable()) return;
    stopping_ = true;
    ::shutdown(fd_, SHUT_RDWR);  // wakes accept()
    thread_.join();
    ::close(fd_);
  }

  int port() const { return port_; }
  std::string Url(const std::string& host = "127.0.0.1") const {
    return "http://" + host + ":" + std::to_string(port_) + "/2016-11-01/credentialprovider/";
  }

  void SetExpectedToken(std::string token) {
    std::lock_guard<std::mutex> lock(mu_);
    expected_token_ = std::move(token);
  }
  void SetExpiration(int64_t ms) {
    std::lock_guard<std::mutex> lock(mu_);
    expiration_ms_ = ms;
  }
  void SetStatus(int status) {
    std::lock_guard<std::mutex> lock(mu_);
    status_ = status;
  }
  // Serve this body verbatim instead of generated credentials (empty: generated).
  void SetRawBody(std::string body) {
    std::lock_guard<std::mutex> lock(mu_);
    raw_body_ = std::move(body);
  }
  int requests() const { return requests_.load(); }
  std::string last_authorization() const {
    std::lock_guard<std::mutex> lock(mu_);
    return last_authorization_;
  }

  static std::string SecretFor(int n) { return "SECRET-" + std::to_string(n) + "-wJalrXUtnFEMI"; }
  static std::string TokenFor(int n) { return "SESSION-" + std::to_string(n) + "-IQoJb3JpZ2lu"; }

 private:
  void Run() {
    while (true) {
      const int c = ::accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC);
      if (c < 0) {
        if (stopping_) return;
        if (errno == EINTR || errno == ECONNABORTED) continue;
        return;
      }
      Handle(c);
      ::close(c);
    }
  }

  void Handle(int c) {
    timeval tv{5, 0};  // a broken client must not hang the test forever
    ::setsockopt(c, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    std::string request;
    char buf[2048];
    while (request.find("\r\n\r\n") == std::string::npos) {
      const ssize_t n = ::recv(c, buf, sizeof buf, 0);
      if (n <= 0) return;
      request.append(buf, static_cast<size_t>(n));
    }
    const int n = ++requests_;
    std::string authorization;
    bool has_authorization = false;
    size_t pos = request.find("\r\n") + 2;
    while (pos < request.size()) {
      const size_t end = request.find("\r\n", pos);
      const std::string line = request.substr(pos, end - pos);
      pos = end + 2;
      if (line.empty()) break;
      const size_t colon = line.find(':');
      std::string name = line.substr(0, colon);
      for (char& ch : name) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
      if (name == "authorization") {
        has_authorization = true;
        authorization = line.substr(colon + 1);
        while (!authorization.empty() && authorization.front() == ' ') authorization.erase(0, 1);
      }
    }
    int status;
    std::string body;
    {
      std::lock_guard<std::mutex> lock(mu_);
      last_authorization_ = has_authorization ? authorization : "<none>";
      status = status_;
      if (!has_authorization || authorization != expected_token_) {
        status = 403;
        body = R"({"message":"invalid token"})";
      } else if (!raw_body_.empty()) {
        body = raw_body_;
      } else if (status == 200) {
        body = R"({"AccessKeyId":"ASIAFAKE)" + std::to_string(n) + R"(","SecretAccessKey":")" +
               SecretFor(n) + R"(","Token":")" + TokenFor(n) + R"(","Expiration":")" +
               core::FormatRfc3339(expiration_ms_) + R"("})";
      } else {
        body = R"({"message":"upstream failure"})";
      }
    }
    const std::string answer =
        "HTTP/1.1 " + std::to_string(status) +
        " X\r\nContent-Type: application/json\r\nContent-Length: " + std::to_string(body.size()) +
        "\r\nConnection: close\r\n\r\n" + body;
    size_t sent = 0;
    while (sent < answer.size()) {
      const ssize_t w = ::send(c, answer.data() + sent, answer.size() - sent, MSG_NOSIGNAL);
      if (w <= 0) return;
      sent += static_cast<size_t>(w);
    }
  }

  int fd_ = -1;
  int port_ = 0;
  std::atomic<bool> stopping_{false};
  std::atomic<int> requests_{0};
  std::thread thread_;
  mutable std::mutex mu_;
  std::string expected_token_ = "test-token";
  int64_t expiration_ms_ = 0;
  int status_ = 200;
  std::string raw_body_;
  std::string last_authorization_;
};

// A port where nothing listens: bound (so nobody else takes it) but not listening, so a
// connection attempt is refused at once.
class ClosedPort {
 public:
  ClosedPort() {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    EXPECT_EQ(::bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
    socklen_t len = sizeof addr;
    ::getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len);
    port_ = ntohs(addr.sin_port);
  }
  ~ClosedPort() { ::close(fd_); }
  int port() const { return port_; }

 private:
  int fd_ = -1;
  int port_ = 0;
};

// A port that accepts connections (kernel backlog) but never answers: a hung endpoint.
class SilentPort {
 public:
  SilentPort() {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    EXPECT_EQ(::bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
    EXPECT_EQ(::listen(fd_, 4), 0);
    socklen_t len = sizeof addr;
    ::getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len);
    port_ = ntohs(addr.sin_port);
  }
  ~SilentPort() { ::close(fd_); }
  int port() const { return port_; }

 private:
  int fd_ = -1;
  int port_ = 0;
};

// An environment the provider reads through CredentialsOptions::getenv.
class FakeEnv {
 public:
  void Set(const std::string& name, const std::string& value) { vars_[name] = value; }
  void Unset(const std::string& name) { vars_.erase(name); }
  std::function<const char*(const char*)> Getter() {
    return [this](const char* name) -> const char* {
      const auto it = vars_.find(name);
      return it == vars_.end() ? nullptr : it->second.c_str();
    };
  }

 private:
  std::map<std::string, std::string> vars_;
};

// Paths as fs::path, for the tests' `dir.path() / "name"`.
class TempDir {
 public:
  TempDir() : dir_("machub-cred") {}
  fs::path Write(const std::string& name, const std::string& content) const {
    return dir_.Write(name, content);
  }
  fs::path path() const { return dir_.path(); }

 private:
  machub::testing::TempDir dir_;
};

class CredentialsTest : public ::testing::Test {
 protected:
  CredentialsTest() : clock_(core::ParseRfc3339("2026-11-27T10:00:00Z").value()) {}

  CredentialsOptions Options() {
    CredentialsOptions o;
    o.clock = &clock_;
    o.getenv = env_.Getter();
    o.http_timeout_ms = 2000;
    return o;
  }

  std::unique_ptr<CredentialsProvider> Make() {
    auto p = MakeDefaultCredentialsProvider(Options());
    EXPECT_TRUE(p.ok()) << p.status().ToString();
    return p.ok() ? std::move(p).value() : nullptr;
  }

  // The container variables, pointing at `url`, with the token in the variable.
  void UseContainer(const std::string& url, const std::string& token = "test-token") {
    env_.Set("AWS_CONTAINER_CREDENTIALS_FULL_URI", url);
    env_.Set("AWS_CONTAINER_AUTHORIZATION_TOKEN", token);
  }

  machub::testing::ManualClock clock_;
  FakeEnv env_;
};

TEST_F(CredentialsTest, ContainerSuccess) {
  FakeCredentialEndpoint server;
  const int64_t expiration = clock_.NowMs() + kHour;
  server.SetExpiration(expiration);
  UseContainer(server.Url());
  auto provider = Make();
  ASSERT_NE(provider, nullptr);
  EXPECT_EQ(provider->Describe(), "container");
  EXPECT_EQ(server.requests(), 0);  // nothing is fetched before the first Get
  auto c = provider->Get();
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->access_key_id, "ASIAFAKE1");
  EXPECT_EQ(c->secret_access_key, FakeCredentialEndpoint::SecretFor(1));
  EXPECT_EQ(c->session_token, FakeCredentialEndpoint::TokenFor(1));
  EXPECT_EQ(c->expires_at_ms, expiration);
  EXPECT_EQ(server.last_authorization(), "test-token");  // raw, no scheme
  // Cached: a second Get does not ask again.
  auto again = provider->Get();
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->access_key_id, "ASIAFAKE1");
  EXPECT_EQ(server.requests(), 1);
}

TEST_F(CredentialsTest, LocalhostIsReachedOverIpv4) {
  FakeCredentialEndpoint server;  // listens on 127.0.0.1 only, like the TES
  server.SetExpiration(clock_.NowMs() + kHour);
  UseContainer(server.Url("localhost"));
  auto provider = Make();
  ASSERT_NE(provider, nullptr);
  auto c = provider->Get();
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->access_key_id, "ASIAFAKE1");
}

TEST_F(CredentialsTest, TokenFileWinsOverVariableAndIsReReadAtEachRefresh) {
  TempDir dir;
  FakeCredentialEndpoint server;
  server.SetExpiration(clock_.NowMs() + kHour);
  server.SetExpectedToken("file-token");
  UseContainer(server.Url(), "variable-token");
  env_.Set("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE", dir.Write("token", "  file-token\n").string());
  auto provider = Make();
  ASSERT_NE(provider, nullptr);
  auto c = provider->Get();
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(server.last_authorization(), "file-token");

  // The token rotates: the next refresh reads the new one.
  dir.Write("token", "rotated-token\n");
  server.SetExpectedToken("rotated-token");
  provider->Invalidate();
  c = provider->Get();
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(server.last_authorization(), "rotated-token");
  EXPECT_EQ(c->access_key_id, "ASIAFAKE2");

  // A vanished token file is a configuration error.
  fs::remove(dir.path() / "token");
  provider->Invalidate();
  EXPECT_EQ(provider->Get().status().code(), ErrorCode::kInvalidArgument);
}

TEST_F(CredentialsTest, RefreshesWithinTheMargin) {
  FakeCredentialEndpoint server;
  const int64_t start = clock_.NowMs();
  server.SetExpiration(start + kHour);
  UseContainer(server.Url());
  CredentialsOptions o = Options();
  o.refresh_margin_ms = 15 * kMinute;
  auto made = MakeDefaultCredentialsProvider(o);
  ASSERT_TRUE(made.ok());
  auto& provider = *made;
  ASSERT_TRUE(provider->Get().ok());
  EXPECT_EQ(server.requests(), 1);

  clock_.Set(start + 44 * kMinute);  // 16 min left: outside the margin
  auto c = provider->Get();
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->access_key_id, "ASIAFAKE1");
  EXPECT_EQ(server.requests(), 1);

  server.SetExpiration(start + 2 * kHour);
  clock_.Set(start + 46 * kMinute);  // 14 min left: refresh
  c = provider->Get();
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->access_key_id, "ASIAFAKE2");
  EXPECT_EQ(c->expires_at_ms, start + 2 * kHour);
  EXPECT_EQ(server.requests(), 2);
}

TEST_F(CredentialsTest, EndpointDownKeepsValidCachedCredentialsUntilTheyExpire) {
  auto server = std::make_unique<FakeCredentialEndpoint>();
  const int64_t start = clock_.NowMs();
  server->SetExpiration(start + kHour);
  UseContainer(server->Url());
  auto provider = Make();
  ASSERT_NE(provider, nullptr);
  ASSERT_TRUE(provider->Get().ok());
  server->Stop();

  // In the refresh window, endpoint down: the cached credentials still work.
  clock_.Set(start + 50 * kMinute);
  ::testing::internal::CaptureStdout();
  auto c = provider->Get();
  const std::string log = ::testing::internal::GetCapturedStdout();
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->access_key_id, "ASIAFAKE1");
  EXPECT_NE(log.find("credentials_refresh_failed"), std::string::npos) << log;
  EXPECT_EQ(log.find(FakeCredentialEndpoint::SecretFor(1)), std::string::npos) << log;
  EXPECT_EQ(log.find(FakeCredentialEndpoint::TokenFor(1)), std::string::npos) << log;
  EXPECT_EQ(log.find("test-token"), std::string::npos) << log;

  // Expired and endpoint down: retryable error, no stale credentials.
  clock_.Set(start + kHour);
  auto expired = provider->Get();
  ASSERT_FALSE(expired.ok());
  EXPECT_EQ(expired.status().code(), ErrorCode::kUnavailable);
}

TEST_F(CredentialsTest, FailingRefreshIsRetriedAtMostOncePerRetryInterval) {
  FakeCredentialEndpoint server;
  const int64_t start = clock_.NowMs();
  server.SetExpiration(start + kHour);
  UseContainer(server.Url());
  CredentialsOptions o = Options();
  o.refresh_retry_ms = 10'000;
  auto made = MakeDefaultCredentialsProvider(o);
  ASSERT_TRUE(made.ok());
  auto& provider = *made;
  ASSERT_TRUE(provider->Get().ok());

  server.SetStatus(503);
  clock_.Set(start + 50 * kMinute);
  ::testing::internal::CaptureStdout();
  EXPECT_EQ(provider->Get()->access_key_id, "ASIAFAKE1");
  EXPECT_EQ(server.requests(), 2);
  EXPECT_EQ(provider->Get()->access_key_id, "ASIAFAKE1");  // within the retry interval
  EXPECT_EQ(server.requests(), 2);
  clock_.Advance(10'000);
  EXPECT_EQ(provider->Get()->access_key_id, "ASIAFAKE1");
  EXPECT_EQ(server.requests(), 3);
  ::testing::internal::GetCapturedStdout();

  server.SetStatus(200);
  clock_.Advance(10'000);
  EXPECT_EQ(provider->Get()->access_key_id, "ASIAFAKE4");
}

TEST_F(CredentialsTest, InvalidateForcesAFetch) {
  FakeCredentialEndpoint server;
  server.SetExpiration(clock_.NowMs() + kHour);
  UseContainer(server.Url());
  auto provider = Make();
  ASSERT_NE(provider, nullptr);
  ASSERT_TRUE(provider->Get().ok());
  provider->Invalidate();
  auto c = provider->Get();
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->access_key_id, "ASIAFAKE2");
  EXPECT_EQ(server.requests(), 2);
}

TEST_F(CredentialsTest, ConcurrentGetsShareOneCache) {
  FakeCredentialEndpoint server;
  server.SetExpiration(clock_.NowMs() + kHour);
  UseContainer(server.Url());
  auto provider = Make();
  ASSERT_NE(provider, nullptr);
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 25; ++i) {
        if (t == 0 && i % 10 == 0) provider->Invalidate();
        auto c = provider->Get();
        if (!c.ok() || c->access_key_id.rfind("ASIAFAKE", 0) != 0) ++failures;
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(failures.load(), 0);
  // One fetch, plus at most one per Invalidate (three of them).
  EXPECT_GE(server.requests(), 1);
  EXPECT_LE(server.requests(), 4);
}

TEST_F(CredentialsTest, ForbiddenIsUnauthorized) {
  FakeCredentialEndpoint server;
  server.SetExpiration(clock_.NowMs() + kHour);
  UseContainer(server.Url(), "wrong-token");
  auto provider = Make();
  ASSERT_NE(provider, nullptr);
  auto c = provider->Get();
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.status().code(), ErrorCode::kUnauthorized);
  EXPECT_EQ(c.status().message().find("wrong-token"), std::string::npos);
}

TEST_F(CredentialsTest, ClosedPortIsUnavailable) {
  ClosedPort closed;
  UseContainer("http://127.0.0.1:" + std::to_string(closed.port()) + "/creds");
  auto provider = Make();
  ASSERT_NE(provider, nullptr);
  auto c = provider->Get();
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.status().code(), ErrorCode::kUnavailable) << c.status().ToString();
}

TEST_F(CredentialsTest, HungEndpointTimesOutAsUnavailable) {
  SilentPort silent;
  UseContainer("http://127.0.0.1:" + std::to_string(silent.port()) + "/creds");
  CredentialsOptions o = Options();
  o.http_timeout_ms = 200;
  auto made = MakeDefaultCredentialsProvider(o);
  ASSERT_TRUE(made.ok());
  auto c = (*made)->Get();
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.status().code(), ErrorCode::kUnavailable) << c.status().ToString();
}

TEST_F(CredentialsTest, ServerErrorsAndMalformedAnswersAreUnavailable) {
  FakeCredentialEndpoint server;
  server.SetExpiration(clock_.NowMs() + kHour);
  UseContainer(server.Url());
  auto provider = Make();
  ASSERT_NE(provider, nullptr);
  for (int status : {500, 503, 504, 429, 404}) {
    server.SetStatus(status);
    auto c = provider->Get();
    ASSERT_FALSE(c.ok());
    EXPECT_EQ(c.status().code(), ErrorCode::kUnavailable) << status;
    EXPECT_NE(c.status().message().find(std::to_string(status)), std::string::npos);
  }
  server.SetStatus(200);
  const std::string secret_body_part = "TopSecretValue123";
  for (const std::string& body : {std::string("not json"), std::string("[1,2]"),
                                  std::string(R"({"AccessKeyId":"A","Token":"t"})"),
                                  R"({"AccessKeyId":"A","SecretAccessKey":")" + secret_body_part +
                                      R"(","Expiration":"tomorrow"})",
                                  std::string(R"({"AccessKeyId":7,"SecretAccessKey":"s"})")}) {
    server.SetRawBody(body);
    auto c = provider->Get();
    ASSERT_FALSE(c.ok()) << body;
    EXPECT_EQ(c.status().code(), ErrorCode::kUnavailable) << body;
    EXPECT_NE(c.status().message().find("malformed"), std::string::npos) << c.status().message();
    EXPECT_EQ(c.status().message().find(secret_body_part), std::string::npos);
  }
  // Without Expiration the credentials do not expire.
  server.SetRawBody(R"({"AccessKeyId":"A","SecretAccessKey":"S"})");
  auto c = provider->Get();
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->expires_at_ms, 0);
  EXPECT_EQ(c->session_token, "");
}

TEST_F(CredentialsTest, PlainHttpOnlyToLoopbackAndTheContainerAddresses) {
  for (const char* uri :
       {"http://192.0.2.10/creds", "http://169.254.169.254/latest", "http://10.0.0.1:8080/",
        "http://127.0.0.1@192.0.2.1/", "http://[2001:db8::1]/", "ftp://127.0.0.1/creds",
        "not a url", "http://127.0.0.1.nip.invalid/"}) {
    env_.Set("AWS_CONTAINER_CREDENTIALS_FULL_URI", uri);
    auto p = MakeDefaultCredentialsProvider(Options());
    ASSERT_FALSE(p.ok()) << uri;
    EXPECT_EQ(p.status().code(), ErrorCode::kInvalidArgument) << uri;
  }
  for (const char* uri :
       {"http://127.0.0.1:1/creds", "http://127.9.8.7/", "http://[::1]:1/",
        "http://localhost:1/creds", "http://169.254.170.2/v2/credentials/x",
        "http://169.254.170.23/v1/credentials", "https://192.0.2.1/creds", "HTTP://127.0.0.1:2/"}) {
    env_.Set("AWS_CONTAINER_CREDENTIALS_FULL_URI", uri);
    auto p = MakeDefaultCredentialsProvider(Options());
    ASSERT_TRUE(p.ok()) << uri << ": " << p.status().ToString();
    EXPECT_EQ((*p)->Describe(), "container");
  }
}

TEST_F(CredentialsTest, PrecedenceExplicitEnvironmentProfileContainer) {
  TempDir dir;
  FakeCredentialEndpoint server;
  server.SetExpiration(clock_.NowMs() + kHour);
  UseContainer(server.Url());
  env_.Set("HOME", dir.path().string());
  dir.Write(".aws/credentials",
            "[default]\naws_access_key_id = AKIDPROFILE\n"
            "aws_secret_access_key = profile-secret\n");
  env_.Set("AWS_ACCESS_KEY_ID", "AKIDENV");
  env_.Set("AWS_SECRET_ACCESS_KEY", "env-secret");
  env_.Set("AWS_SESSION_TOKEN", "env-token");

  CredentialsOptions o = Options();
  o.access_key_id = "AKIDCONFIG";
  o.secret_access_key = "config-secret";
  auto p = MakeDefaultCredentialsProvider(o);
  ASSERT_TRUE(p.ok());
  EXPECT_EQ((*p)->Describe(), "config");
  EXPECT_EQ((*p)->Get()->access_key_id, "AKIDCONFIG");
  EXPECT_EQ((*p)->Get()->expires_at_ms, 0);

  p = MakeDefaultCredentialsProvider(Options());
  ASSERT_TRUE(p.ok());
  EXPECT_EQ((*p)->Describe(), "environment");
  auto env_creds = (*p)->Get();
  ASSERT_TRUE(env_creds.ok());
  EXPECT_EQ(env_creds->access_key_id, "AKIDENV");
  EXPECT_EQ(env_creds->secret_access_key, "env-secret");
  EXPECT_EQ(env_creds->session_token, "env-token");

  env_.Unset("AWS_ACCESS_KEY_ID");
  env_.Unset("AWS_SECRET_ACCESS_KEY");
  env_.Unset("AWS_SESSION_TOKEN");
  p = MakeDefaultCredentialsProvider(Options());
  ASSERT_TRUE(p.ok());
  EXPECT_EQ((*p)->Describe(), "profile:default");
  EXPECT_EQ((*p)->Get()->access_key_id, "AKIDPROFILE");

  fs::remove(dir.path() / ".aws/credentials");
  p = MakeDefaultCredentialsProvider(Options());
  ASSERT_TRUE(p.ok());
  EXPECT_EQ((*p)->Describe(), "container");
  EXPECT_EQ((*p)->Get()->access_key_id, "ASIAFAKE1");

  env_.Unset("AWS_CONTAINER_CREDENTIALS_FULL_URI");
  p = MakeDefaultCredentialsProvider(Options());
  ASSERT_FALSE(p.ok());
  EXPECT_EQ(p.status().code(), ErrorCode::kInvalidArgument);
  for (const char* looked_at : {"AWS_ACCESS_KEY_ID", ".aws/credentials", ".aws/config",
                                "AWS_CONTAINER_CREDENTIALS_FULL_URI"}) {
    EXPECT_NE(p.status().message().find(looked_at), std::string::npos) << p.status().message();
  }
  EXPECT_EQ(server.requests(), 1);
}

TEST_F(CredentialsTest, HalfConfiguredSourcesAreErrors) {
  CredentialsOptions o = Options();
  o.access_key_id = "AKIDCONFIG";
  EXPECT_EQ(MakeDefaultCredentialsProvider(o).status().code(), ErrorCode::kInvalidArgument);
  o = Options();
  o.session_token = "only-a-token";
  EXPECT_EQ(MakeDefaultCredentialsProvider(o).status().code(), ErrorCode::kInvalidArgument);
  env_.Set("AWS_ACCESS_KEY_ID", "AKIDENV");
  auto p = MakeDefaultCredentialsProvider(Options());
  EXPECT_EQ(p.status().code(), ErrorCode::kInvalidArgument);
  EXPECT_NE(p.status().message().find("AWS_SECRET_ACCESS_KEY"), std::string::npos);
  o = Options();
  o.refresh_margin_ms = -1;
  EXPECT_EQ(MakeDefaultCredentialsProvider(o).status().code(), ErrorCode::kInvalidArgument);
}

TEST_F(CredentialsTest, SharedFilesWithProfiles) {
  TempDir dir;
  const fs::path credentials = dir.Write("creds.ini",
                                         "# comment\n"
                                         "[default]\n"
                                         "aws_access_key_id=AKIDDEFAULT\n"
                                         "aws_secret_access_key=default/secret+key\n"
                                         "\n"
                                         "[work]\n"
                                         "aws_access_key_id   =   AKIDWORK   \n"
                                         "aws_secret_access_key = work-secret ; inline comment\n"
                                         "aws_session_token = work-token # another\n"
                                         "[both]\n"
                                         "aws_access_key_id = AKIDBOTH_CREDENTIALS\n"
                                         "aws_secret_access_key = s\n"
                                         "[half]\n"
                                         "aws_access_key_id = AKIDHALF\n");
  const fs::path config = dir.Write("config.ini",
                                    "[default]\n"
                                    "region = eu-central-1\n"
                                    "[profile cfgonly]\n"
                                    "region = eu-west-1\n"
                                    "s3 =\n"
                                    "  addressing_style = path\n"
                                    "aws_access_key_id = AKIDCFG\n"
                                    "aws_secret_access_key = cfg-secret\n"
                                    "[profile both]\n"
                                    "aws_access_key_id = AKIDBOTH_CONFIG\n"
                                    "aws_secret_access_key = s\n"
                                    "[profile roleonly]\n"
                                    "role_arn = arn:aws:iam::123456789012:role/x\n"
                                    "[sso-session corp]\n"
                                    "aws_access_key_id = AKIDNOTAPROFILE\n"
                                    "aws_secret_access_key = s\n"
                                    "[cfgplain]\n"
                                    "aws_access_key_id = AKIDNOTAPROFILE\n"
                                    "aws_secret_access_key = s\n");
  env_.Set("AWS_SHARED_CREDENTIALS_FILE", credentials.string());
  env_.Set("AWS_CONFIG_FILE", config.string());

  auto get = [&](const std::string& profile) {
    if (profile.empty()) {
      env_.Unset("AWS_PROFILE");
    } else {
      env_.Set("AWS_PROFILE", profile);
    }
    return MakeDefaultCredentialsProvider(Options());
  };

  auto p = get("");
  ASSERT_TRUE(p.ok()) << p.status().ToString();
  EXPECT_EQ((*p)->Describe(), "profile:default");
  EXPECT_EQ((*p)->Get()->access_key_id, "AKIDDEFAULT");
  EXPECT_EQ((*p)->Get()->secret_access_key, "default/secret+key");

  p = get("work");
  ASSERT_TRUE(p.ok()) << p.status().ToString();
  EXPECT_EQ((*p)->Describe(), "profile:work");
  auto work = (*p)->Get();
  ASSERT_TRUE(work.ok());
  EXPECT_EQ(work->access_key_id, "AKIDWORK");
  EXPECT_EQ(work->secret_access_key, "work-secret");
  EXPECT_EQ(work->session_token, "work-token");

  p = get("cfgonly");
  ASSERT_TRUE(p.ok()) << p.status().ToString();
  EXPECT_EQ((*p)->Get()->access_key_id, "AKIDCFG");

  p = get("both");  // the credentials file wins
  ASSERT_TRUE(p.ok());
  EXPECT_EQ((*p)->Get()->access_key_id, "AKIDBOTH_CREDENTIALS");

  for (const char* bad : {"half", "roleonly", "missing", "corp", "cfgplain"}) {
    p = get(bad);
    ASSERT_FALSE(p.ok()) << bad;
    EXPECT_EQ(p.status().code(), ErrorCode::kInvalidArgument) << bad;
    EXPECT_NE(p.status().message().find(bad), std::string::npos) << p.status().message();
    EXPECT_EQ(p.status().message().find("AKIDNOTAPROFILE"), std::string::npos);
  }

  // Default location under HOME, "~" expanded.
  env_.Unset("AWS_PROFILE");
  env_.Unset("AWS_CONFIG_FILE");
  env_.Set("AWS_SHARED_CREDENTIALS_FILE", "~/elsewhere/credentials");
  env_.Set("HOME", dir.path().string());
  dir.Write("elsewhere/credentials",
            "[default]\naws_access_key_id=AKIDHOME\n"
            "aws_secret_access_key=home-secret\n");
  p = get("");
  ASSERT_TRUE(p.ok()) << p.status().ToString();
  EXPECT_EQ((*p)->Get()->access_key_id, "AKIDHOME");
}

TEST_F(CredentialsTest, NoStatusMessageContainsASecret) {
  TempDir dir;
  std::vector<Status> errors;
  const std::vector<std::string> secrets = {"container-token-SECRET",
                                            "file-token-SECRET",
                                            FakeCredentialEndpoint::SecretFor(1),
                                            FakeCredentialEndpoint::TokenFor(1),
                                            "config-secret-SECRET",
                                            "profile-secret-SECRET",
                                            "env-secret-SECRET"};

  FakeCredentialEndpoint server;
  server.SetExpiration(clock_.NowMs() + kHour);
  server.SetExpectedToken("someone-else");
  UseContainer(server.Url(), "container-token-SECRET");
  errors.push_back(Make()->Get().status());  // 403

  env_.Set("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE",
           dir.Write("token", "file-token-SECRET").string());
  errors.push_back(Make()->Get().status());  // 403 with the file token

  server.SetExpectedToken("file-token-SECRET");
  server.SetRawBody(R"({"AccessKeyId":"ASIAFAKE1","SecretAccessKey":")" +
                    FakeCredentialEndpoint::SecretFor(1) + R"(","Token":")" +
                    FakeCredentialEndpoint::TokenFor(1) + R"(","Expiration":"soon"})");
  errors.push_back(Make()->Get().status());  // malformed

  dir.Write("token", "file-token-SECRET\r\nX-Injected: 1");
  errors.push_back(Make()->Get().status());  // line break in the token
  env_.Unset("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE");

  server.Stop();
  errors.push_back(Make()->Get().status());  // unreachable

  env_.Set("AWS_CONTAINER_CREDENTIALS_FULL_URI", "http://192.0.2.1/?token=x");
  errors.push_back(MakeDefaultCredentialsProvider(Options()).status());
  CredentialsOptions o = Options();
  o.secret_access_key = "config-secret-SECRET";
  errors.push_back(MakeDefaultCredentialsProvider(o).status());
  env_.Set("AWS_SECRET_ACCESS_KEY", "env-secret-SECRET");
  errors.push_back(MakeDefaultCredentialsProvider(Options()).status());
  env_.Unset("AWS_SECRET_ACCESS_KEY");
  env_.Set("AWS_SHARED_CREDENTIALS_FILE",
           dir.Write("c", "[default]\naws_secret_access_key = profile-secret-SECRET\n").string());
  errors.push_back(MakeDefaultCredentialsProvider(Options()).status());

  ASSERT_EQ(errors.size(), 9u);
  for (const Status& s : errors) {
    EXPECT_FALSE(s.ok());
    for (const std::string& secret : secrets) {
      EXPECT_EQ(s.ToString().find(secret), std::string::npos) << s.ToString();
    }
  }
}

}  // namespace
}  // namespace machub::cloud
