#include "app/loadgen.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "app/http_client.h"

namespace machub::app {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
using tcp = asio::ip::tcp;

// A stand-in hub with the idempotency rules of API.md (same id + same body -> 200 with the
// original answer) and scripted misbehaviour, one thread per connection.
class FakeHub {
 public:
  struct Faults {
    int answer_503_every = 0;       // every Nth request: 503, not stored
    int close_after_every = 0;      // every Nth request: answer with Connection: close
    int store_then_drop_every = 0;  // every Nth request: store, then close without answering
    int hang_once_at = 0;           // the Nth request: store, never answer (client times out)
  };

  explicit FakeHub(Faults faults)
      : faults_(faults), acceptor_(ioc_, {asio::ip::make_address("127.0.0.1"), 0}) {
    port_ = acceptor_.local_endpoint().port();
    accept_thread_ = std::thread([this] { AcceptLoop(); });
  }

  ~FakeHub() {
    stopping_ = true;
    beast::error_code ec;
    // Wake the acceptor with a connection of our own, then close it.
    tcp::socket s(ioc_);
    s.connect({asio::ip::make_address("127.0.0.1"), port_}, ec);
    accept_thread_.join();
    std::vector<std::thread> threads;
    {
      std::lock_guard<std::mutex> lock(mu_);
      for (auto& sock : sockets_) sock->shutdown(tcp::socket::shutdown_both, ec);
      threads.swap(threads_);
    }
    for (auto& t : threads) t.join();
  }

  uint16_t port() const { return port_; }

  std::set<std::string> StoredIds() {
    std::lock_guard<std::mutex> lock(mu_);
    std::set<std::string> out;
    for (const auto& [id, entry] : stored_) out.insert(id);
    return out;
  }
  int requests() const { return requests_.load(); }
  int refunds() {
    std::lock_guard<std::mutex> lock(mu_);
    return refunds_;
  }
  std::string last_authorization() {
    std::lock_guard<std::mutex> lock(mu_);
    return last_authorization_;
  }

 private:
  struct Entry {
    std::string body;
    std::string answer;
  };

  void AcceptLoop() {
    for (;;) {
      auto sock = std::make_shared<tcp::socket>(ioc_);
      beast::error_code ec;
      acceptor_.accept(*sock, ec);
      if (ec || stopping_) return;
      std::lock_guard<std::mutex> lock(mu_);
      sockets_.push_back(sock);
      threads_.emplace_back([this, sock] { Serve(*sock); });
    }
  }

  void Serve(tcp::socket& sock) {
    beast::flat_buffer buffer;
    for (;;) {
      bhttp::request<bhttp::string_body> req;
      beast::error_code ec;
      bhttp::read(sock, buffer, req, ec);
      if (ec) return;
      int n = ++requests_;
      bhttp::response<bhttp::string_body> res;
      res.version(11);
      res.set(bhttp::field::content_type, "application/json");
      bool drop = false;
      bool hang = false;
      if (faults_.answer_503_every > 0 && n % faults_.answer_503_every == 0) {
        res.result(503);
        res.body() = R"({"error":{"code":"storage_unavailable","message":"test"}})";
      } else {
        auto j = nlohmann::json::parse(req.body(), nullptr, false);
        std::string id = j.is_object() && j.contains("id") ? j["id"].get<std::string>() : "";
        std::lock_guard<std::mutex> lock(mu_);
        last_authorization_ = std::string(req[bhttp::field::authorization]);
        auto it = stored_.find(id);
        if (id.empty()) {
          res.result(400);
          res.body() = R"({"error":{"code":"invalid_json","message":"no id"}})";
        } else if (it == stored_.end()) {
          std::string answer = R"({"id":")" + id + R"(","seq":)" + std::to_string(++seq_) + "}";
          stored_[id] = Entry{req.body(), answer};
          if (j.value("type", "sale") == "refund") ++refunds_;
          res.result(201);
          res.body() = answer;
        } else if (it->second.body == req.body()) {
          res.result(200);
          res.body() = it->second.answer;
        } else {
          res.result(409);
          res.body() = R"({"error":{"code":"id_conflict","message":"test"}})";
        }
        if (res.result_int() == 201) {
          drop = faults_.store_then_drop_every > 0 && n % faults_.store_then_drop_every == 0;
          // The first new sale at or after the Nth request (a retry answered 200 cannot hang).
          hang = faults_.hang_once_at > 0 && n >= faults_.hang_once_at && !hung_;
          if (hang) hung_ = true;
        }
      }
      if (drop) {
        sock.shutdown(tcp::socket::shutdown_both, ec);
        return;
      }
      if (hang) {
        // Keep the connection open and silent; the client must time out and resend.
        buffer.consume(buffer.size());
        char c;
        sock.read_some(asio::buffer(&c, 1), ec);
        return;
      }
      bool close = faults_.close_after_every > 0 && n % faults_.close_after_every == 0;
      res.keep_alive(!close);
      res.prepare_payload();
      bhttp::write(sock, res, ec);
      if (ec || close) {
        sock.shutdown(tcp::socket::shutdown_both, ec);
        return;
      }
    }
  }

  Faults faults_;
  asio::io_context ioc_;
  tcp::acceptor acceptor_;
  uint16_t port_ = 0;
  std::atomic<bool> stopping_{false};
  std::thread accept_thread_;
  std::mutex mu_;
  std::vector<std::shared_ptr<tcp::socket>> sockets_;
  std::vector<std::thread> threads_;
  std::map<std::string, Entry> stored_;
  int64_t seq_ = 0;
  int refunds_ = 0;
  bool hung_ = false;
  std::string last_authorization_;
  std::atomic<int> requests_{0};
};

class LoadgenTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("machub_loadgen_test_" + std::to_string(::getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
    tokens_ = (dir_ / "terminals.txt").string();
    std::ofstream out(tokens_);
    out << "# from machub token create\n";
    for (int i = 1; i <= 8; ++i) out << "T0" << i << " mh_token" << i << "\n";
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  LoadgenOptions Options(uint16_t port) {
    LoadgenOptions o;
    o.url = "http://127.0.0.1:" + std::to_string(port);
    o.tokens_file = tokens_;
    o.terminals = 4;
    o.duration_s = 0.6;
    o.acked_file = (dir_ / "acked.txt").string();
    o.handle_signals = false;
    o.retry_percent = 10;
    o.refund_percent = 10;
    o.timeout_ms = 2000;
    return o;
  }

  std::vector<std::string> AckedLines() {
    std::ifstream in((dir_ / "acked.txt").string());
    std::vector<std::string> lines;
    std::string line;
    while (std::getline(in, line)) lines.push_back(line);
    return lines;
  }

  std::filesystem::path dir_;
  std::string tokens_;
};

TEST_F(LoadgenTest, HappyPathAcksRetriesAndRefunds) {
  FakeHub hub({});
  auto report = RunLoadgen(Options(hub.port()));
  ASSERT_TRUE(report.ok()) << report.status().ToString();
  EXPECT_FALSE(report->Failed()) << report->ToTable();
  EXPECT_GT(report->acked, 50);
  EXPECT_EQ(report->conn_errors, 0);
  EXPECT_EQ(report->unexpected, 0);
  EXPECT_GT(report->retry_ok, 0);
  EXPECT_EQ(report->retry_mismatch, 0);
  EXPECT_GT(report->refunds, 0);
  EXPECT_EQ(report->refunds, hub.refunds());
  EXPECT_EQ(report->answered, hub.requests());
  EXPECT_EQ(report->by_status.at(201), report->created);
  EXPECT_GT(report->p50_ms, 0);
  EXPECT_LE(report->p50_ms, report->p99_ms);
  EXPECT_LE(report->p99_ms, report->max_ms);
  EXPECT_EQ(hub.last_authorization().rfind("Bearer mh_token", 0), 0u);

  // Every acked id exactly once, and exactly the stored ones (no faults here).
  std::vector<std::string> acked = AckedLines();
  std::set<std::string> stored_after_first = hub.StoredIds();
  std::set<std::string> unique(acked.begin(), acked.end());
  EXPECT_EQ(unique.size(), acked.size());
  EXPECT_EQ(static_cast<int64_t>(acked.size()), report->acked);
  EXPECT_EQ(unique, stored_after_first);

  // A second run against the same hub uses a fresh random seed: no id is reused (409).
  auto again = RunLoadgen(Options(hub.port()));
  ASSERT_TRUE(again.ok());
  EXPECT_NE(again->seed, report->seed);
  EXPECT_EQ(again->unexpected, 0) << again->ToTable();
  EXPECT_GT(again->acked, 50);

  auto json = nlohmann::json::parse(report->ToJson());
  EXPECT_EQ(json["acked"], report->acked);
  EXPECT_EQ(json["by_status"]["503"], 0);
  for (const char* key :
       {"sent", "throughput_per_s", "p50_ms", "p95_ms", "p99_ms", "max_ms", "conn_errors"}) {
    EXPECT_TRUE(json.contains(key)) << key;
  }
}

TEST_F(LoadgenTest, FaultsAreRetriedWithTheSameIdsAndNothingAckedIsMissing) {
  FakeHub hub({.answer_503_every = 7, .close_after_every = 5, .store_then_drop_every = 11});
  auto report = RunLoadgen(Options(hub.port()));
  ASSERT_TRUE(report.ok());
  EXPECT_GT(report->acked, 10);
  EXPECT_GT(report->by_status[503], 0);
  EXPECT_GT(report->conn_errors, 0);
  EXPECT_EQ(report->retry_mismatch, 0);
  EXPECT_EQ(report->unexpected, 0) << report->ToTable();
  std::vector<std::string> acked = AckedLines();
  std::set<std::string> unique(acked.begin(), acked.end());
  EXPECT_EQ(unique.size(), acked.size());
  std::set<std::string> stored = hub.StoredIds();
  for (const std::string& id : unique) EXPECT_TRUE(stored.count(id)) << id;
  // Stored but unacknowledged only for the last, unanswered sale of each terminal at most.
  EXPECT_LE(stored.size(), unique.size() + 4);
  // A resend after a dropped answer gets 200 and counts as the sale's acknowledgement.
  EXPECT_GT(report->by_status[200], report->retry_ok);
}

TEST_F(LoadgenTest, TimeoutIsAnErrorNotAHang) {
  FakeHub hub({.hang_once_at = 3});
  LoadgenOptions o = Options(hub.port());
  o.terminals = 1;
  o.timeout_ms = 150;
  o.duration_s = 0.5;
  auto report = RunLoadgen(o);
  ASSERT_TRUE(report.ok());
  EXPECT_EQ(report->timeouts, 1);
  EXPECT_EQ(report->conn_errors, 1);
  EXPECT_GT(report->acked, 3);
  std::vector<std::string> acked = AckedLines();
  std::set<std::string> stored = hub.StoredIds();
  EXPECT_EQ(std::set<std::string>(acked.begin(), acked.end()), stored);
}

TEST_F(LoadgenTest, HubDownKeepsRetryingUntilTheEnd) {
  uint16_t port;
  {
    FakeHub hub({});
    port = hub.port();
  }  // nothing listens on `port` now
  LoadgenOptions o = Options(port);
  o.duration_s = 0.4;
  auto report = RunLoadgen(o);
  ASSERT_TRUE(report.ok());
  EXPECT_EQ(report->acked, 0);
  EXPECT_GE(report->conn_errors, 4);
  EXPECT_FALSE(report->Failed());

  o.stop_on_error = true;
  o.duration_s = 30;
  auto start = std::chrono::steady_clock::now();
  report = RunLoadgen(o);
  ASSERT_TRUE(report.ok());
  EXPECT_TRUE(report->stopped_on_error);
  EXPECT_TRUE(report->Failed());
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(10));
}

TEST_F(LoadgenTest, OpenLoopRateIsApproximatelyHeld) {
  FakeHub hub({});
  LoadgenOptions o = Options(hub.port());
  o.rate = 200;
  o.duration_s = 1.0;
  o.poisson = false;
  auto report = RunLoadgen(o);
  ASSERT_TRUE(report.ok());
  EXPECT_GT(report->sent, 120);
  EXPECT_LT(report->sent, 260);
}

TEST_F(LoadgenTest, OptionErrors) {
  LoadgenOptions o = Options(1);
  o.terminals = 9;
  auto r = RunLoadgen(o);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), ErrorCode::kInvalidArgument);
  EXPECT_NE(r.status().message().find("has 8 terminals"), std::string::npos);
  o = Options(1);
  o.url = "https://127.0.0.1:1";
  EXPECT_EQ(RunLoadgen(o).status().code(), ErrorCode::kInvalidArgument);
  o = Options(1);
  o.currency = "XXX";
  EXPECT_EQ(RunLoadgen(o).status().code(), ErrorCode::kInvalidArgument);
  o = Options(1);
  o.retry_percent = 60;
  o.refund_percent = 50;
  EXPECT_EQ(RunLoadgen(o).status().code(), ErrorCode::kInvalidArgument);
}

TEST(UrlTest, Parse) {
  auto u = ParseUrl("http://127.0.0.1:8080");
  ASSERT_TRUE(u.ok());
  EXPECT_FALSE(u->https);
  EXPECT_EQ(u->host, "127.0.0.1");
  EXPECT_EQ(u->port, "8080");
  EXPECT_EQ(u->path, "");
  u = ParseUrl("https://[::1]/hub/");
  ASSERT_TRUE(u.ok());
  EXPECT_TRUE(u->https);
  EXPECT_EQ(u->host, "::1");
  EXPECT_EQ(u->port, "443");
  EXPECT_EQ(u->path, "/hub");
  EXPECT_EQ(u->HostHeader(), "[::1]:443");
  for (const char* bad : {"127.0.0.1:8080", "ftp://x", "http://", "http://h:99999", "http://h:8x",
                          "http://[::1", "http://u@h", "http://h/?q=1"}) {
    EXPECT_FALSE(ParseUrl(bad).ok()) << bad;
  }
}

TEST(HttpGetTest, UnreachableIsUnavailable) {
  uint16_t port;
  {
    asio::io_context ioc;
    tcp::acceptor a(ioc, {asio::ip::make_address("127.0.0.1"), 0});
    port = a.local_endpoint().port();
  }
  auto url = ParseUrl("http://127.0.0.1:" + std::to_string(port));
  ASSERT_TRUE(url.ok());
  auto r = HttpGet(*url, "/v1/status", {}, {});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), ErrorCode::kUnavailable);
  EXPECT_NE(r.status().message().find("connect"), std::string::npos) << r.status().message();
}

TEST(CredentialsFileTest, ParsesAndRejectsMalformed) {
  std::string path =
      std::filesystem::temp_directory_path() / ("machub_creds_" + std::to_string(::getpid()));
  std::ofstream(path) << "# c\n\nT01 mh_a\n  T02\tmh_b  # note\n";
  auto creds = LoadCredentialsFile(path);
  ASSERT_TRUE(creds.ok());
  ASSERT_EQ(creds->size(), 2u);
  EXPECT_EQ((*creds)[1].terminal_id, "T02");
  EXPECT_EQ((*creds)[1].token, "mh_b");
  std::ofstream(path) << "T01\n";
  EXPECT_FALSE(LoadCredentialsFile(path).ok());
  std::ofstream(path) << "T01 a b\n";
  EXPECT_FALSE(LoadCredentialsFile(path).ok());
  std::filesystem::remove(path);
}

}  // namespace
}  // namespace machub::app
