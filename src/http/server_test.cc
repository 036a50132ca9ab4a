// Why this file is long (about 770 lines): one real server per test over real sockets;
// each HTTP/1.1 hazard (pipelining, chunking, smuggling shapes, limits, timeouts,
// admission, drain, TLS) needs its own raw client exchange.
#include "http/server.h"

#include <gtest/gtest.h>

#include <atomic>
#include <boost/asio/ssl.hpp>
#include <boost/beast/ssl.hpp>
#include <condition_variable>
#include <deque>
#include <future>
#include <mutex>
#include <nlohmann/json.hpp>
#include <thread>

#include "http/test_util.h"

namespace machub::http {
namespace {

using namespace std::chrono_literals;
using testing::Client;
using testing::StringResponse;
using testing::WaitFor;
namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
namespace ssl = boost::asio::ssl;
using tcp = boost::asio::ip::tcp;

ServerOptions TestOptions() {
  ServerOptions options;
  options.port = 0;
  options.threads = 2;
  return options;
}

// Answers 200 with a JSON echo of the request, synchronously on the I/O thread.
struct EchoHandler {
  std::atomic<int> calls{0};
  Handler handler() {
    return [this](Request&& request, Respond respond) {
      ++calls;
      nlohmann::json echo;
      echo["method"] = request.method;
      echo["target"] = request.target;
      echo["body"] = request.body;
      echo["x_test"] = std::string(request.Header("x-test"));
      echo["remote"] = request.remote_address;
      Response response;
      response.body = echo.dump();
      response.headers.emplace_back("X-Extra", "yes");
      respond(std::move(response));
    };
  }
};

std::unique_ptr<Server> MustStart(const ServerOptions& options, Handler handler) {
  Result<std::unique_ptr<Server>> server = Server::Start(options, std::move(handler));
  EXPECT_TRUE(server.ok()) << server.status().ToString();
  if (!server.ok()) return nullptr;
  return std::move(server).value();
}

std::string ErrorCodeOf(const StringResponse& res) {
  auto body = nlohmann::json::parse(res.body(), nullptr, false);
  if (body.is_discarded() || !body.contains("error")) return "<no error body>";
  return body["error"]["code"].get<std::string>();
}

TEST(ServerTest, KeepAliveServesSeveralRequestsOnOneConnection) {
  EchoHandler echo;
  auto server = MustStart(TestOptions(), echo.handler());
  ASSERT_NE(server, nullptr);
  ASSERT_NE(server->port(), 0);
  Client client(server->port());
  for (int i = 0; i < 5; ++i) {
    StringResponse res =
        client.Call("POST", "/x?i=" + std::to_string(i), "body" + std::to_string(i),
                    {{"X-Test", "v" + std::to_string(i)}});
    ASSERT_EQ(res.result_int(), 200);
    EXPECT_EQ(res[bhttp::field::server], "machub");
    EXPECT_EQ(res[bhttp::field::content_type], "application/json");
    EXPECT_EQ(res[bhttp::field::content_length], std::to_string(res.body().size()));
    EXPECT_EQ(res["X-Extra"], "yes");
    EXPECT_TRUE(res.keep_alive());
    auto body = nlohmann::json::parse(res.body());
    EXPECT_EQ(body["method"], "POST");
    EXPECT_EQ(body["target"], "/x?i=" + std::to_string(i));
    EXPECT_EQ(body["body"], "body" + std::to_string(i));
    EXPECT_EQ(body["x_test"], "v" + std::to_string(i));
    EXPECT_EQ(body["remote"], "127.0.0.1");
  }
  EXPECT_EQ(server->connections(), 1);
  EXPECT_EQ(echo.calls.load(), 5);
  server->Stop();
}

TEST(ServerTest, PipelinedRequestsAreAnsweredInOrder) {
  EchoHandler echo;
  auto server = MustStart(TestOptions(), echo.handler());
  ASSERT_NE(server, nullptr);
  Client client(server->port());
  client.SendRaw(
      "GET /a HTTP/1.1\r\nHost: x\r\n\r\nGET /b HTTP/1.1\r\nHost: x\r\n\r\n"
      "POST /c HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nxyz");
  EXPECT_EQ(nlohmann::json::parse(client.Read().body())["target"], "/a");
  EXPECT_EQ(nlohmann::json::parse(client.Read().body())["target"], "/b");
  auto last = nlohmann::json::parse(client.Read().body());
  EXPECT_EQ(last["target"], "/c");
  EXPECT_EQ(last["body"], "xyz");
  server->Stop();
}

TEST(ServerTest, ChunkedBodyIsAccepted) {
  EchoHandler echo;
  auto server = MustStart(TestOptions(), echo.handler());
  ASSERT_NE(server, nullptr);
  Client client(server->port());
  client.SendRaw(
      "POST /c HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
      "3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n");
  StringResponse res = client.Read();
  ASSERT_EQ(res.result_int(), 200);
  EXPECT_EQ(nlohmann::json::parse(res.body())["body"], "abcde");
  server->Stop();
}

TEST(ServerTest, ConnectionCloseAndHttp10CloseAfterTheAnswer) {
  EchoHandler echo;
  auto server = MustStart(TestOptions(), echo.handler());
  ASSERT_NE(server, nullptr);
  {
    Client client(server->port());
    client.Send("GET", "/", {}, {{"Connection", "close"}});
    StringResponse res = client.Read();
    EXPECT_EQ(res.result_int(), 200);
    EXPECT_FALSE(res.keep_alive());
    EXPECT_TRUE(client.WaitClosed(2s));
  }
  {
    Client client(server->port());
    client.Send("GET", "/", {}, {}, /*version=*/10);
    StringResponse res = client.Read();
    EXPECT_EQ(res.result_int(), 200);
    EXPECT_EQ(res.version(), 10u);
    EXPECT_TRUE(client.WaitClosed(2s));
  }
  {
    // HTTP/1.0 asking for keep-alive keeps the connection.
    Client client(server->port());
    client.Send("GET", "/1", {}, {{"Connection", "keep-alive"}}, 10);
    EXPECT_TRUE(client.Read().keep_alive());
    client.Send("GET", "/2", {}, {{"Connection", "keep-alive"}}, 10);
    EXPECT_EQ(nlohmann::json::parse(client.Read().body())["target"], "/2");
  }
  server->Stop();
}

TEST(ServerTest, BodyOverLimitIs413AndCloses) {
  EchoHandler echo;
  ServerOptions options = TestOptions();
  options.body_limit = 1024;
  auto server = MustStart(options, echo.handler());
  ASSERT_NE(server, nullptr);
  {
    Client client(server->port());
    client.Send("POST", "/", std::string(2000, 'a'));
    StringResponse res = client.Read();
    EXPECT_EQ(res.result_int(), 413);
    EXPECT_EQ(ErrorCodeOf(res), "payload_too_large");
    EXPECT_FALSE(res.keep_alive());
    EXPECT_TRUE(client.WaitClosed(3s));
  }
  {
    // Chunked: the limit is enforced while the body streams in.
    Client client(server->port());
    client.SendRaw("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n");
    for (int i = 0; i < 3; ++i) client.SendRaw("200\r\n" + std::string(512, 'b') + "\r\n");
    StringResponse res = client.Read();
    EXPECT_EQ(res.result_int(), 413);
    EXPECT_EQ(ErrorCodeOf(res), "payload_too_large");
  }
  {
    // Exactly at the limit is fine.
    Client client(server->port());
    EXPECT_EQ(client.Call("POST", "/", std::string(1024, 'c')).result_int(), 200);
  }
  EXPECT_EQ(echo.calls.load(), 1);
  server->Stop();
}

TEST(ServerTest, HeaderOverLimitIs431) {
  EchoHandler echo;
  ServerOptions options = TestOptions();
  options.header_limit = 1024;
  auto server = MustStart(options, echo.handler());
  ASSERT_NE(server, nullptr);
  Client client(server->port());
  client.Send("GET", "/", {}, {{"X-Big", std::string(2000, 'h')}});
  StringResponse res = client.Read();
  EXPECT_EQ(res.result_int(), 431);
  EXPECT_EQ(ErrorCodeOf(res), "payload_too_large");
  EXPECT_NE(res.body().find("header"), std::string::npos);
  EXPECT_TRUE(client.WaitClosed(3s));
  EXPECT_EQ(echo.calls.load(), 0);
  server->Stop();
}

TEST(ServerTest, SmugglingShapesAreRefusedWith400) {
  EchoHandler echo;
  auto server = MustStart(TestOptions(), echo.handler());
  ASSERT_NE(server, nullptr);
  const std::vector<std::string> requests = {
      "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n"
      "0\r\n\r\n",
      "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n"
      "0\r\n\r\n",
      "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\nContent-Length: 5\r\n\r\n"
      "hello",
      "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n",
      "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!",
  };
  for (const std::string& raw : requests) {
    Client client(server->port());
    client.SendRaw(raw);
    StringResponse res = client.Read();
    EXPECT_EQ(res.result_int(), 400) << raw;
    EXPECT_EQ(ErrorCodeOf(res), "bad_request") << raw;
    EXPECT_TRUE(client.WaitClosed(3s)) << raw;
  }
  EXPECT_EQ(echo.calls.load(), 0);
  server->Stop();
}

TEST(ServerTest, ObsFoldIs400AndHeaderLimitCountsTheWholeBlock) {
  EchoHandler echo;
  ServerOptions options = TestOptions();
  options.header_limit = 1024;
  auto server = MustStart(options, echo.handler());
  ASSERT_NE(server, nullptr);
  for (const std::string& raw :
       {std::string("GET / HTTP/1.1\r\nHost: x\r\nX-A: a\r\n b\r\n\r\n"),
        std::string("GET / HTTP/1.1\r\nHost: x\r\nX-A: a\r\n\tb\r\n\r\n")}) {
    Client client(server->port());
    client.SendRaw(raw);
    StringResponse res = client.Read();
    EXPECT_EQ(res.result_int(), 400) << raw;
    EXPECT_EQ(ErrorCodeOf(res), "bad_request") << raw;
    EXPECT_TRUE(client.WaitClosed(3s)) << raw;
  }
  // Many small headers, sent in pieces: each piece is under the limit, the block is not.
  {
    Client client(server->port());
    client.SendRaw("GET / HTTP/1.1\r\nHost: x\r\n");
    for (int i = 0; i < 60; ++i) client.SendRaw("X-H" + std::to_string(i) + ": 0123456789\r\n");
    client.SendRaw("\r\n");
    StringResponse res = client.Read();
    EXPECT_EQ(res.result_int(), 431);
    EXPECT_TRUE(client.WaitClosed(3s));
  }
  // Just under the limit is fine.
  {
    Client client(server->port());
    StringResponse res = client.Call("GET", "/", {}, {{"X-Big", std::string(900, 'h')}});
    EXPECT_EQ(res.result_int(), 200);
  }
  EXPECT_EQ(echo.calls.load(), 1);
  server->Stop();
}

TEST(ServerTest, MalformedRequestIs400) {
  EchoHandler echo;
  auto server = MustStart(TestOptions(), echo.handler());
  ASSERT_NE(server, nullptr);
  for (const std::string raw :
       {"GARBAGE\r\n\r\n", "GET / HTTP/9.9\r\n\r\n", "GET / HTTP/1.1\r\nBad Header\r\n\r\n"}) {
    Client client(server->port());
    client.SendRaw(raw);
    StringResponse res = client.Read();
    EXPECT_EQ(res.result_int(), 400) << raw;
    EXPECT_EQ(ErrorCodeOf(res), "bad_request") << raw;
  }
  EXPECT_EQ(echo.calls.load(), 0);
  server->Stop();
}

TEST(ServerTest, ExpectContinueGetsInterimAnswer) {
  EchoHandler echo;
  auto server = MustStart(TestOptions(), echo.handler());
  ASSERT_NE(server, nullptr);
  Client client(server->port());
  client.SendRaw(
      "POST /e HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nExpect: 100-continue\r\n\r\n");
  StringResponse interim = client.Read();
  EXPECT_EQ(interim.result_int(), 100);
  client.SendRaw("data");
  StringResponse res = client.Read();
  ASSERT_EQ(res.result_int(), 200);
  EXPECT_EQ(nlohmann::json::parse(res.body())["body"], "data");
  server->Stop();
}

TEST(ServerTest, TricklingClientIsCutByReadTimeoutWithoutHoldingAThread) {
  EchoHandler echo;
  ServerOptions options = TestOptions();
  options.threads = 1;  // a trickler that held the only thread would starve the other client
  options.read_timeout_ms = 300;
  auto server = MustStart(options, echo.handler());
  ASSERT_NE(server, nullptr);

  Client trickler(server->port());
  std::atomic<bool> stop_trickling{false};
  std::thread writer([&] {
    const std::string request =
        "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n" + std::string(100, 'z');
    for (char c : request) {
      if (stop_trickling) return;
      beast::error_code ec;
      asio::write(trickler.socket(), asio::buffer(&c, 1), ec);
      if (ec) return;
      std::this_thread::sleep_for(100ms);  // the pace of the attack, not a wait
    }
  });
  const auto start = std::chrono::steady_clock::now();

  // Meanwhile another client is served at once.
  Client other(server->port());
  EXPECT_EQ(other.Call("GET", "/other").result_int(), 200);

  EXPECT_TRUE(trickler.WaitClosed(2s));
  const auto elapsed = std::chrono::steady_clock::now() - start;
  stop_trickling = true;
  writer.join();
  EXPECT_LT(elapsed, 2s);
  EXPECT_GE(elapsed, 250ms);
  EXPECT_EQ(echo.calls.load(), 1);
  server->Stop();
}

TEST(ServerTest, IdleKeptAliveConnectionIsClosedAfterIdleTimeout) {
  EchoHandler echo;
  ServerOptions options = TestOptions();
  options.idle_timeout_ms = 200;
  auto server = MustStart(options, echo.handler());
  ASSERT_NE(server, nullptr);
  Client client(server->port());
  EXPECT_EQ(client.Call("GET", "/").result_int(), 200);
  const auto start = std::chrono::steady_clock::now();
  EXPECT_TRUE(client.WaitClosed(3s));
  EXPECT_GE(std::chrono::steady_clock::now() - start, 150ms);
  EXPECT_TRUE(WaitFor([&] { return server->connections() == 0; }));
  server->Stop();
}

// Answers from a worker thread, like the journal's writer does.
class WorkerHandler {
 public:
  WorkerHandler() : worker_([this] { Run(); }) {}
  ~WorkerHandler() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      done_ = true;
    }
    cv_.notify_all();
    worker_.join();
  }
  Handler handler() {
    return [this](Request&& request, Respond respond) {
      std::lock_guard<std::mutex> lock(mu_);
      queue_.emplace_back(std::move(request.target), std::move(respond));
      cv_.notify_all();
    };
  }
  std::thread::id worker_id() const { return worker_.get_id(); }

 private:
  void Run() {
    std::unique_lock<std::mutex> lock(mu_);
    for (;;) {
      cv_.wait(lock, [&] { return done_ || !queue_.empty(); });
      if (queue_.empty()) return;
      auto [target, respond] = std::move(queue_.front());
      queue_.pop_front();
      lock.unlock();
      Response response;
      response.status = 201;
      response.body = "{\"target\":\"" + target + "\"}";
      respond(std::move(response));
      lock.lock();
    }
  }
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::pair<std::string, Respond>> queue_;
  bool done_ = false;
  std::thread worker_;
};

TEST(ServerTest, RespondFromAnotherThread) {
  WorkerHandler worker;
  auto server = MustStart(TestOptions(), worker.handler());
  ASSERT_NE(server, nullptr);
  Client client(server->port());
  for (int i = 0; i < 20; ++i) {
    StringResponse res = client.Call("POST", "/w" + std::to_string(i), "{}");
    ASSERT_EQ(res.result_int(), 201);
    EXPECT_EQ(nlohmann::json::parse(res.body())["target"], "/w" + std::to_string(i));
  }
  server->Stop();
}

TEST(ServerTest, DroppedOrThrowingHandlerAnswers500) {
  auto server = MustStart(TestOptions(), [](Request&& request, Respond respond) {
    if (request.target == "/throw") throw std::runtime_error("boom");
    if (request.target == "/twice") {
      Response first;
      first.body = "{\"n\":1}";
      respond(first);
      respond(first);  // ignored
    }
    // "/drop": respond goes out of scope uncalled.
  });
  ASSERT_NE(server, nullptr);
  Client client(server->port());
  StringResponse dropped = client.Call("GET", "/drop");
  EXPECT_EQ(dropped.result_int(), 500);
  EXPECT_EQ(ErrorCodeOf(dropped), "internal");
  StringResponse thrown = client.Call("GET", "/throw");
  EXPECT_EQ(thrown.result_int(), 500);
  EXPECT_EQ(thrown.body().find("boom"), std::string::npos);
  StringResponse twice = client.Call("GET", "/twice");
  EXPECT_EQ(twice.result_int(), 200);
  // Still in sync: exactly one answer per request.
  EXPECT_EQ(client.Call("GET", "/twice").body(), "{\"n\":1}");
  server->Stop();
}

// 300 keep-alive connections driven by one client io_context: all are open at the same
// time (each waits at a barrier after its first answer), then each sends two more.
TEST(ServerTest, ThreeHundredConcurrentKeepAliveConnections) {
  EchoHandler echo;
  ServerOptions options = TestOptions();
  options.max_connections_per_address = 1000;  // the echo handler authenticates nobody
  auto server = MustStart(options, echo.handler());
  ASSERT_NE(server, nullptr);
  constexpr int kConnections = 300;
  constexpr int kRequestsEach = 3;

  asio::io_context ioc;
  const tcp::endpoint endpoint(asio::ip::make_address("127.0.0.1"), server->port());
  struct Conn {
    explicit Conn(asio::io_context& io) : socket(io) {}
    tcp::socket socket;
    beast::flat_buffer buffer;
    bhttp::request<bhttp::string_body> req;
    StringResponse res;
    int done = 0;
  };
  std::vector<std::unique_ptr<Conn>> conns;
  int ok_answers = 0;
  int failures = 0;
  int at_barrier = 0;
  int open_at_barrier = -1;
  std::function<void(Conn*)> send;

  auto on_read = [&](Conn* c, beast::error_code ec) {
    if (ec || c->res.result_int() != 200 || !c->res.keep_alive()) {
      ++failures;
      return;
    }
    ++ok_answers;
    ++c->done;
    if (c->done == 1) {
      if (++at_barrier == kConnections) {
        open_at_barrier = server->connections();
        for (auto& other : conns) send(other.get());
      }
      return;
    }
    if (c->done < kRequestsEach) send(c);
  };
  send = [&](Conn* c) {
    c->req = {};
    c->req.method(bhttp::verb::post);
    c->req.target("/n");
    c->req.version(11);
    c->req.set(bhttp::field::host, "x");
    c->req.body() = "r" + std::to_string(c->done);
    c->req.prepare_payload();
    bhttp::async_write(c->socket, c->req, [&, c](beast::error_code ec, size_t) {
      if (ec) {
        ++failures;
        return;
      }
      c->res = {};
      bhttp::async_read(c->socket, c->buffer, c->res,
                        [&, c](beast::error_code rec, size_t) { on_read(c, rec); });
    });
  };
  for (int i = 0; i < kConnections; ++i) {
    conns.push_back(std::make_unique<Conn>(ioc));
    Conn* c = conns.back().get();
    c->socket.async_connect(endpoint, [&, c](beast::error_code ec) {
      if (ec) {
        ++failures;
        return;
      }
      send(c);
    });
  }
  std::thread runner([&] { ioc.run_for(30s); });
  runner.join();
  EXPECT_EQ(failures, 0);
  EXPECT_EQ(ok_answers, kConnections * kRequestsEach);
  EXPECT_EQ(open_at_barrier, kConnections);
  EXPECT_EQ(echo.calls.load(), kConnections * kRequestsEach);
  conns.clear();
  server->Stop();
}

TEST(ServerTest, ConnectionsBeyondMaxGet503) {
  EchoHandler echo;
  ServerOptions options = TestOptions();
  options.max_connections = 2;
  options.reserved_connections = 0;  // the echo handler authenticates nobody
  auto server = MustStart(options, echo.handler());
  ASSERT_NE(server, nullptr);
  Client a(server->port());
  Client b(server->port());
  ASSERT_TRUE(WaitFor([&] { return server->connections() == 2; }));
  Client c(server->port());
  StringResponse res = c.Read();
  EXPECT_EQ(res.result_int(), 503);
  EXPECT_EQ(ErrorCodeOf(res), "server_busy");
  EXPECT_EQ(res[bhttp::field::retry_after], "1");
  EXPECT_EQ(a.Call("GET", "/a").result_int(), 200);
  EXPECT_EQ(server->connections(), 2);
  server->Stop();
}

// Issue 13: anonymous connections are capped per address and must start a request
// within first_request_timeout_ms; a connection whose request authenticated leaves the cap.
TEST(ServerTest, AdmissionPerAddressCapAndFirstRequestDeadline) {
  std::atomic<int> refused{0};
  ServerOptions options = TestOptions();
  options.max_connections_per_address = 1;
  options.first_request_timeout_ms = 1000;
  options.on_refused = [&](std::string_view reason) {
    if (reason == "per_address") refused.fetch_add(1);
  };
  auto server = MustStart(options, [](Request&& request, Respond respond) {
    Response response;
    response.authenticated = request.target == "/auth";
    respond(std::move(response));
  });
  ASSERT_NE(server, nullptr);
  // `a` authenticates at once: it does not count against the address.
  Client a(server->port());
  EXPECT_EQ(a.Call("GET", "/auth").result_int(), 200);
  Client b(server->port());
  ASSERT_TRUE(WaitFor([&] { return server->connections() == 2; }));
  Client c(server->port());
  EXPECT_EQ(c.Read().result_int(), 503);
  EXPECT_EQ(refused.load(), 1);
  // The idle anonymous one is closed at the first-request deadline, not the idle timeout;
  // then the address has room again. `a` stays open.
  const auto start = std::chrono::steady_clock::now();
  EXPECT_TRUE(b.WaitClosed(5s));
  EXPECT_LT(std::chrono::steady_clock::now() - start, 3s);
  ASSERT_TRUE(WaitFor([&] { return server->connections() == 1; }));
  Client d(server->port());
  EXPECT_EQ(d.Call("GET", "/x").result_int(), 200);
  EXPECT_EQ(a.Call("GET", "/again").result_int(), 200);
  server->Stop();
}

TEST(ServerTest, HeaderCheckAnswersBeforeBodyAndEarlyAnswersAreReported) {
  std::atomic<int> handled{0};
  std::mutex mu;
  std::vector<int> early;
  ServerOptions options = TestOptions();
  options.header_limit = 2048;
  options.header_check = [](const Request& header) -> std::optional<Response> {
    if (!header.Header("authorization").empty()) return std::nullopt;
    Response response;
    response.status = 401;
    return response;
  };
  options.on_early_answer = [&](int status) {
    std::lock_guard<std::mutex> lock(mu);
    early.push_back(status);
  };
  auto server = MustStart(options, [&](Request&&, Respond respond) {
    handled.fetch_add(1);
    respond(Response{});
  });
  ASSERT_NE(server, nullptr);
  {
    Client client(server->port());
    client.SendRaw(
        "POST /x HTTP/1.1\r\nHost: h\r\nContent-Length: 100000\r\n"
        "Expect: 100-continue\r\n\r\n");
    StringResponse res = client.Read();
    EXPECT_EQ(res.result_int(), 401);  // not 100
  }
  {
    Client client(server->port());
    client.SendRaw("GET /x HTTP/1.1\r\nHost: h\r\nAuthorization: a\r\nAuthorization: b\r\n\r\n");
    EXPECT_EQ(client.Read().result_int(), 400);
  }
  {
    Client client(server->port());
    client.SendRaw("GET /x HTTP/1.1\r\nHost: h\r\nX: " + std::string(4000, 'a') + "\r\n\r\n");
    EXPECT_EQ(client.Read().result_int(), 431);
  }
  EXPECT_EQ(handled.load(), 0);
  std::lock_guard<std::mutex> lock(mu);
  EXPECT_EQ(early, (std::vector<int>{400, 431}));
  server->Stop();
}

TEST(ServerTest, StopDrainsInFlightRequests) {
  std::mutex mu;
  Respond held;
  std::promise<void> got_request;
  auto server = MustStart(TestOptions(), [&](Request&&, Respond respond) {
    std::lock_guard<std::mutex> lock(mu);
    held = std::move(respond);
    got_request.set_value();
  });
  ASSERT_NE(server, nullptr);
  const uint16_t port = server->port();
  Client idle(port);  // a kept-alive connection with no request: closed at once by Stop
  Client client(port);
  client.Send("POST", "/slow", "{}");
  got_request.get_future().wait();

  auto stopped = std::async(std::launch::async, [&] { server->Stop(10'000); });
  // Stop closes the acceptor first and the idle connection: wait for both to be visible.
  EXPECT_TRUE(idle.WaitClosed(3s));
  EXPECT_TRUE(WaitFor([&] {
    asio::io_context io;
    tcp::socket probe(io);
    beast::error_code ec;
    probe.connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), port), ec);
    return static_cast<bool>(ec);
  }));
  EXPECT_EQ(stopped.wait_for(0ms), std::future_status::timeout);  // still draining
  {
    std::lock_guard<std::mutex> lock(mu);
    Response response;
    response.body = "{\"drained\":true}";
    held(std::move(response));
  }
  StringResponse res = client.Read();
  EXPECT_EQ(res.result_int(), 200);
  EXPECT_EQ(res.body(), "{\"drained\":true}");
  EXPECT_FALSE(res.keep_alive());
  EXPECT_EQ(stopped.wait_for(5s), std::future_status::ready);
  EXPECT_TRUE(client.WaitClosed(2s));
  server->Stop();  // idempotent
}

TEST(ServerTest, StopGivesUpAfterDrainTimeoutAndLateRespondIsHarmless) {
  std::mutex mu;
  Respond held;
  std::promise<void> got_request;
  auto server = MustStart(TestOptions(), [&](Request&&, Respond respond) {
    std::lock_guard<std::mutex> lock(mu);
    held = std::move(respond);
    got_request.set_value();
  });
  ASSERT_NE(server, nullptr);
  Client client(server->port());
  client.Send("GET", "/never");
  got_request.get_future().wait();
  const auto start = std::chrono::steady_clock::now();
  server->Stop(200);
  EXPECT_LT(std::chrono::steady_clock::now() - start, 3s);
  EXPECT_TRUE(client.WaitClosed(2s));
  server.reset();
  // The journal may answer after the server is gone: dropped, no crash, no leak.
  std::lock_guard<std::mutex> lock(mu);
  held(Response{});
  held = nullptr;
}

TEST(ServerTest, StartFailures) {
  EchoHandler echo;
  auto first = MustStart(TestOptions(), echo.handler());
  ASSERT_NE(first, nullptr);
  ServerOptions busy = TestOptions();
  busy.port = first->port();
  // SO_REUSEADDR does not allow two listeners on one port.
  EXPECT_EQ(Server::Start(busy, echo.handler()).status().code(), ErrorCode::kIoError);

  ServerOptions half_tls = TestOptions();
  half_tls.tls_cert_file = "/nonexistent/cert.pem";
  EXPECT_EQ(Server::Start(half_tls, echo.handler()).status().code(), ErrorCode::kInvalidArgument);
  half_tls.tls_key_file = "/nonexistent/key.pem";
  EXPECT_EQ(Server::Start(half_tls, echo.handler()).status().code(), ErrorCode::kInvalidArgument);

  ServerOptions ca_without_tls = TestOptions();
  ca_without_tls.tls_client_ca_file = "/nonexistent/ca.pem";
  EXPECT_EQ(Server::Start(ca_without_tls, echo.handler()).status().code(),
            ErrorCode::kInvalidArgument);

  ServerOptions bad_address = TestOptions();
  bad_address.address = "not an address";
  EXPECT_FALSE(Server::Start(bad_address, echo.handler()).ok());
  first->Stop();
}

TEST(ServerTest, TlsServesHttpsAndRefusesPlainText) {
  testing::TestCertificate cert;
  ASSERT_TRUE(cert.ok());
  EchoHandler echo;
  ServerOptions options = TestOptions();
  options.tls_cert_file = cert.cert_file();
  options.tls_key_file = cert.key_file();
  auto server = MustStart(options, echo.handler());
  ASSERT_NE(server, nullptr);

  asio::io_context ioc;
  ssl::context ctx(ssl::context::tls_client);
  ctx.load_verify_file(cert.cert_file());
  ctx.set_verify_mode(ssl::verify_peer);
  beast::ssl_stream<beast::tcp_stream> stream(ioc, ctx);
  SSL_set_tlsext_host_name(stream.native_handle(), "localhost");
  beast::get_lowest_layer(stream).connect(
      tcp::endpoint(asio::ip::make_address("127.0.0.1"), server->port()));
  stream.handshake(ssl::stream_base::client);
  EXPECT_GE(SSL_version(stream.native_handle()), TLS1_2_VERSION);
  beast::flat_buffer buffer;
  for (int i = 0; i < 3; ++i) {
    bhttp::request<bhttp::string_body> req{bhttp::verb::post, "/tls", 11};
    req.set(bhttp::field::host, "localhost");
    req.body() = "secret" + std::to_string(i);
    req.prepare_payload();
    bhttp::write(stream, req);
    StringResponse res;
    bhttp::read(stream, buffer, res);
    ASSERT_EQ(res.result_int(), 200);
    EXPECT_EQ(nlohmann::json::parse(res.body())["body"], "secret" + std::to_string(i));
  }
  beast::error_code ec;
  stream.shutdown(ec);

  // A plain-text request on the TLS port gets no HTTP answer.
  Client plain(server->port());
  plain.SendRaw("GET / HTTP/1.1\r\nHost: x\r\n\r\n");
  EXPECT_TRUE(plain.WaitClosed(3s));
  EXPECT_EQ(echo.calls.load(), 3);
  server->Stop();
}

TEST(ServerTest, TlsKeyThatDoesNotMatchIsRejected) {
  testing::TestCertificate a;
  testing::TestCertificate b;
  ASSERT_TRUE(a.ok() && b.ok());
  ServerOptions options = TestOptions();
  options.tls_cert_file = a.cert_file();
  options.tls_key_file = b.key_file();
  EchoHandler echo;
  EXPECT_EQ(Server::Start(options, echo.handler()).status().code(), ErrorCode::kInvalidArgument);
}

}  // namespace
}  // namespace machub::http
