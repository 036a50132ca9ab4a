// Security hardening against the real machub binary (issue 5): TLS, mutual TLS with the
// terminal identity from the client certificate, token rotation with an overlap, slow
// clients, header limits and request smuggling, secrets kept out of every output, and
// card numbers refused everywhere.

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <boost/asio.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>
#include <utility>  // before Asio: Boost 1.74 with GCC 12 C++20 needs std::exchange declared

#include "harness.h"

namespace machub::testing {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
namespace ssl = boost::asio::ssl;
using nlohmann::json;
using Clock = std::chrono::steady_clock;

std::string ReadAll(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::string ErrorCodeOf(const std::string& body) {
  auto j = json::parse(body, nullptr, false);
  if (j.is_discarded() || !j.is_object() || !j.contains("error")) return "<no error: " + body + ">";
  return j["error"].value("code", "");
}

void Run(const std::vector<std::string>& argv) {
  CommandResult r = RunCommand(argv, 60);
  ASSERT_EQ(r.exit_code, 0) << argv[0] << " " << (argv.size() > 1 ? argv[1] : "") << ": " << r.out;
}

// Certificates made with the openssl command line: a server certificate (CN and SAN
// 127.0.0.1) from `ca`, client certificates for T01 from `ca` (the hub's client CA) and
// from `other` (a CA the hub does not trust).
struct Certs {
  std::string ca_crt, server_crt, server_key, t01_crt, t01_key, rogue_crt, rogue_key;
};

// RunCommand execs a path, not a name looked up in PATH.
std::string Openssl() {
  const char* path = std::getenv("PATH");
  std::istringstream dirs(path != nullptr ? path : "/usr/bin:/usr/local/bin");
  for (std::string dir; std::getline(dirs, dir, ':');) {
    if (!dir.empty() && ::access((dir + "/openssl").c_str(), X_OK) == 0) return dir + "/openssl";
  }
  return "/usr/bin/openssl";
}

void MakeCa(const TempDir& dir, const std::string& name) {
  Run({Openssl(), "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
       "-nodes", "-keyout", dir.Join(name + ".key"), "-out", dir.Join(name + ".crt"), "-subj",
       "/CN=" + name, "-days", "2"});
}

void MakeLeaf(const TempDir& dir, const std::string& ca, const std::string& name,
              const std::string& cn, const std::string& ext) {
  const std::string ext_file = dir.Join(name + ".ext");
  std::ofstream(ext_file) << ext << "\n";
  Run({Openssl(), "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
       "-keyout", dir.Join(name + ".key"), "-out", dir.Join(name + ".csr"), "-subj", "/CN=" + cn});
  Run({Openssl(), "x509", "-req", "-in", dir.Join(name + ".csr"), "-CA", dir.Join(ca + ".crt"),
       "-CAkey", dir.Join(ca + ".key"), "-CAcreateserial", "-out", dir.Join(name + ".crt"), "-days",
       "2", "-extfile", ext_file});
}

Certs MakeCerts(const TempDir& dir) {
  MakeCa(dir, "ca");
  MakeCa(dir, "other");
  MakeLeaf(dir, "ca", "server", "127.0.0.1",
           "subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth");
  MakeLeaf(dir, "ca", "t01", "T01", "extendedKeyUsage=clientAuth");
  MakeLeaf(dir, "other", "rogue", "T01", "extendedKeyUsage=clientAuth");
  return {dir.Join("ca.crt"),  dir.Join("server.crt"), dir.Join("server.key"), dir.Join("t01.crt"),
          dir.Join("t01.key"), dir.Join("rogue.crt"),  dir.Join("rogue.key")};
}

struct TlsResult {
  bool handshake_ok = false;
  int status = 0;  // 0: no HTTP answer
  std::string body;
  std::string error;
};

// One HTTPS request on a fresh connection; the server is verified against `ca`.
TlsResult TlsRequest(uint16_t port, const std::string& ca, const std::string& cert,
                     const std::string& key, const std::string& method, const std::string& target,
                     const std::string& body, const std::string& token) {
  TlsResult out;
  asio::io_context io;
  ssl::context ctx(ssl::context::tls_client);
  ctx.load_verify_file(ca);
  ctx.set_verify_mode(ssl::verify_peer);
  if (!cert.empty()) {
    ctx.use_certificate_file(cert, ssl::context::pem);
    ctx.use_private_key_file(key, ssl::context::pem);
  }
  beast::ssl_stream<beast::tcp_stream> stream(io, ctx);
  beast::get_lowest_layer(stream).expires_after(std::chrono::seconds(10));
  beast::get_lowest_layer(stream).connect(
      asio::ip::tcp::endpoint(asio::ip::make_address("127.0.0.1"), port));
  beast::error_code ec;
  stream.handshake(ssl::stream_base::client, ec);
  if (ec) {
    out.error = "handshake: " + ec.message();
    return out;
  }
  out.handshake_ok = true;
  bhttp::request<bhttp::string_body> req;
  req.method_string(method);
  req.target(target);
  req.version(11);
  req.set(bhttp::field::host, "127.0.0.1");
  if (!token.empty()) req.set(bhttp::field::authorization, "Bearer " + token);
  if (method == "POST") {
    req.set(bhttp::field::content_type, "application/json");
    req.body() = body;
    req.prepare_payload();
  }
  bhttp::write(stream, req, ec);
  if (ec) {
    out.error = "write: " + ec.message();
    return out;
  }
  beast::flat_buffer buffer;
  bhttp::response<bhttp::string_body> res;
  bhttp::read(stream, buffer, res, ec);
  if (ec) {
    out.error = "read: " + ec.message();
    return out;
  }
  out.status = static_cast<int>(res.result_int());
  out.body = res.body();
  return out;
}

// A plain TCP connection for byte-exact requests.
class RawSocket {
 public:
  // `source`: the local address to connect from (any 127/8 address works on Linux).
  explicit RawSocket(uint16_t port, const char* source = nullptr) {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    if (source != nullptr) {
      sockaddr_in local{};
      local.sin_family = AF_INET;
      ::inet_pton(AF_INET, source, &local.sin_addr);
      ::bind(fd_, reinterpret_cast<sockaddr*>(&local), sizeof local);
    }
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    connected_ = ::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
    int one = 1;
    ::setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  }
  ~RawSocket() {
    if (fd_ >= 0) ::close(fd_);
  }
  bool connected() const { return connected_; }
  bool Send(std::string_view data) {
    while (!data.empty()) {
      ssize_t n = ::send(fd_, data.data(), data.size(), MSG_NOSIGNAL);
      if (n <= 0) return false;
      data.remove_prefix(static_cast<size_t>(n));
    }
    return true;
  }
  // Waits up to `timeout` for bytes or EOF; returns false on timeout. Sets *eof.
  bool ReadSome(std::chrono::milliseconds timeout, std::string* out, bool* eof) {
    pollfd p{fd_, POLLIN, 0};
    *eof = false;
    if (::poll(&p, 1, static_cast<int>(timeout.count())) <= 0) return false;
    char buf[8192];
    ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
    if (n <= 0) {
      *eof = true;
      return true;
    }
    out->append(buf, static_cast<size_t>(n));
    return true;
  }
  // Everything until the server closes (or `timeout` passes).
  std::string ReadUntilClose(std::chrono::milliseconds timeout) {
    std::string out;
    const auto deadline = Clock::now() + timeout;
    bool eof = false;
    while (!eof && Clock::now() < deadline) {
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
      if (!ReadSome(std::max(left, std::chrono::milliseconds(1)), &out, &eof)) break;
    }
    return out;
  }

 private:
  int fd_ = -1;
  bool connected_ = false;
};

int StatusOf(const std::string& raw_answer) {
  // "HTTP/1.1 431 ..."
  if (raw_answer.rfind("HTTP/1.", 0) != 0 || raw_answer.size() < 12) return 0;
  return std::atoi(raw_answer.substr(9, 3).c_str());
}

class SecurityTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    cert_dir_ = new TempDir();
    certs_ = new Certs(MakeCerts(*cert_dir_));
  }
  static void TearDownTestSuite() {
    delete certs_;
    delete cert_dir_;
  }

  std::unique_ptr<Hub> StartHub(std::vector<std::string> extra_args,
                                std::map<std::string, std::string> env = {}) {
    Hub::Options o;
    o.data_dir = dir_.Join("data");
    o.terminals = terminals_;
    o.extra_args = std::move(extra_args);
    o.env = std::move(env);
    o.log_path = dir_.Join("hub.log");
    return Hub::Start(o);
  }

  static TempDir* cert_dir_;
  static Certs* certs_;
  TempDir dir_;
  // T01 holds a manager token (status, metrics, lists), T02 a terminal token.
  std::vector<Terminal> terminals_ = [] {
    auto t = MakeTerminals(2);
    t[0].manager = true;
    return t;
  }();
};

TempDir* SecurityTest::cert_dir_ = nullptr;
Certs* SecurityTest::certs_ = nullptr;

// 1. HTTPS with --tls-cert/--tls-key; plain HTTP to the TLS port gets no HTTP answer.
TEST_F(SecurityTest, TlsServesSalesAndRefusesPlainHttp) {
  auto hub = StartHub({"--tls-cert", certs_->server_crt, "--tls-key", certs_->server_key});
  TlsResult sale = TlsRequest(hub->port(), certs_->ca_crt, "", "", "POST", "/v1/sales",
                              SaleBody("tls-1", "T01"), terminals_[0].token);
  ASSERT_TRUE(sale.handshake_ok) << sale.error;
  EXPECT_EQ(sale.status, 201) << sale.body << sale.error;
  TlsResult stored = TlsRequest(hub->port(), certs_->ca_crt, "", "", "GET", "/v1/sales/tls-1", "",
                                terminals_[0].token);
  EXPECT_EQ(stored.status, 200) << stored.body << stored.error;

  RawSocket plain(hub->port());
  ASSERT_TRUE(plain.connected());
  const std::string body = SaleBody("plain-1", "T01");
  plain.Send("POST /v1/sales HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + terminals_[0].token +
             "\r\nContent-Type: application/json\r\nContent-Length: " +
             std::to_string(body.size()) + "\r\n\r\n" + body);
  const std::string answer = plain.ReadUntilClose(std::chrono::seconds(5));
  EXPECT_EQ(answer.find("HTTP/1."), std::string::npos) << answer;
  TlsResult absent = TlsRequest(hub->port(), certs_->ca_crt, "", "", "GET", "/v1/sales/plain-1", "",
                                terminals_[0].token);
  EXPECT_EQ(absent.status, 404) << absent.body << absent.error;
}

// 2. Mutual TLS: certificate required and verified; its CN is the terminal identity.
TEST_F(SecurityTest, MutualTlsBindsTerminalToCertificate) {
  auto hub = StartHub({"--tls-cert", certs_->server_crt, "--tls-key", certs_->server_key,
                       "--tls-client-ca", certs_->ca_crt});
  const uint16_t port = hub->port();
  const std::string& t01 = terminals_[0].token;
  const std::string& t02 = terminals_[1].token;

  TlsResult ok = TlsRequest(port, certs_->ca_crt, certs_->t01_crt, certs_->t01_key, "POST",
                            "/v1/sales", SaleBody("m-1", "T01"), t01);
  ASSERT_TRUE(ok.handshake_ok) << ok.error;
  EXPECT_EQ(ok.status, 201) << ok.body << ok.error;

  // T01's certificate with T02's token and sale: the certificate says T01.
  TlsResult other = TlsRequest(port, certs_->ca_crt, certs_->t01_crt, certs_->t01_key, "POST",
                               "/v1/sales", SaleBody("m-2", "T02"), t02);
  EXPECT_EQ(other.status, 403) << other.body << other.error;
  EXPECT_EQ(ErrorCodeOf(other.body), "forbidden");
  // T01's certificate and token, a sale of T02.
  TlsResult mismatch = TlsRequest(port, certs_->ca_crt, certs_->t01_crt, certs_->t01_key, "POST",
                                  "/v1/sales", SaleBody("m-3", "T02"), t01);
  EXPECT_EQ(mismatch.status, 403) << mismatch.body << mismatch.error;
  // The bearer token is still required with a valid certificate.
  TlsResult no_token = TlsRequest(port, certs_->ca_crt, certs_->t01_crt, certs_->t01_key, "POST",
                                  "/v1/sales", SaleBody("m-4", "T01"), "");
  EXPECT_EQ(no_token.status, 401) << no_token.body << no_token.error;

  // No client certificate, or one from a CA the hub does not trust: no HTTP answer (with
  // TLS 1.3 the client may finish its half of the handshake before the alert arrives).
  TlsResult anonymous =
      TlsRequest(port, certs_->ca_crt, "", "", "POST", "/v1/sales", SaleBody("m-5", "T01"), t01);
  EXPECT_EQ(anonymous.status, 0) << anonymous.body;
  EXPECT_FALSE(anonymous.error.empty());
  TlsResult rogue = TlsRequest(port, certs_->ca_crt, certs_->rogue_crt, certs_->rogue_key, "POST",
                               "/v1/sales", SaleBody("m-6", "T01"), t01);
  EXPECT_EQ(rogue.status, 0) << rogue.body;
  EXPECT_FALSE(rogue.error.empty());

  for (const char* id : {"m-2", "m-3", "m-4", "m-5", "m-6"}) {
    TlsResult get = TlsRequest(port, certs_->ca_crt, certs_->t01_crt, certs_->t01_key, "GET",
                               std::string("/v1/sales/") + id, "", t01);
    EXPECT_EQ(get.status, 404) << id << ": " << get.body << get.error;
  }
}

// 3. `machub token rotate`: old and new token both valid during the overlap, the old one
// refused (401 "token expired") after it; the running hub picks up the file by itself.
TEST_F(SecurityTest, TokenRotationOverlapThenExpiry) {
  const std::string data = dir_.Join("data");
  CommandResult created = RunCommand({MachubBinary(), "token", "create", "--terminal", "T01",
                                      "--role", "manager", "--data-dir", data});
  ASSERT_EQ(created.exit_code, 0) << created.out;
  std::istringstream first(created.out);
  std::string id, old_token;
  first >> id >> old_token;
  ASSERT_EQ(id, "T01");
  terminals_.clear();  // tokens come from the tokens file only
  auto hub = StartHub({});
  HttpClient client(hub->port());
  ASSERT_EQ(client.Post("/v1/sales", SaleBody("r-1", "T01"), old_token).status, 201);

  constexpr auto kOverlap = std::chrono::seconds(4);
  const auto rotated_at = Clock::now();
  CommandResult rotated = RunCommand({MachubBinary(), "token", "rotate", "--terminal", "T01",
                                      "--overlap", "4s", "--data-dir", data});
  ASSERT_EQ(rotated.exit_code, 0) << rotated.out;
  std::istringstream second(rotated.out);
  std::string new_token;
  second >> id >> new_token;
  ASSERT_EQ(id, "T01");
  ASSERT_NE(new_token, old_token);
  const std::string file = ReadAll(data + "/tokens");
  EXPECT_NE(file.find("Z role=manager\n"), std::string::npos) << file;  // old entry: expiry
  // The rotated token keeps the manager role (status is a manager route).

  ASSERT_TRUE(WaitFor([&] { return client.Get("/v1/status", new_token).status == 200; },
                      std::chrono::seconds(3)))
      << "the hub did not pick up the rotated token";
  auto both_old = client.Post("/v1/sales", SaleBody("r-2", "T01"), old_token);
  auto both_new = client.Post("/v1/sales", SaleBody("r-3", "T01"), new_token);
  ASSERT_LT(Clock::now() - rotated_at, kOverlap - std::chrono::milliseconds(300))
      << "too slow to observe the overlap";
  EXPECT_EQ(both_old.status, 201) << both_old.body;
  EXPECT_EQ(both_new.status, 201) << both_new.body;

  HttpResponse refused;
  ASSERT_TRUE(WaitFor(
      [&] {
        refused = client.Get("/v1/status", old_token);
        return refused.status == 401;
      },
      std::chrono::seconds(10)));
  // Never before the overlap (the expiry was computed after rotated_at).
  EXPECT_GE(Clock::now() - rotated_at, kOverlap - std::chrono::milliseconds(100));
  EXPECT_NE(refused.body.find("token expired"), std::string::npos) << refused.body;
  EXPECT_EQ(client.Post("/v1/sales", SaleBody("r-4", "T01"), old_token).status, 401);
  EXPECT_EQ(client.Post("/v1/sales", SaleBody("r-5", "T01"), new_token).status, 201);
  EXPECT_EQ(client.Get("/v1/sales/r-4", new_token).status, 404);
}

// Expiry given in the configuration form "T01:HASH:RFC3339".
TEST_F(SecurityTest, ConfiguredExpiredTokenIsRefused) {
  terminals_ = MakeTerminals(1);
  Terminal past = MakeTerminals(1)[0];
  auto hub = StartHub({"--terminal-tokens", "T01:" + past.hash + ":2020-01-01T00:00:00Z",
                       "--terminal-tokens", "T01:" + terminals_[0].hash + ":2999-01-01T00:00:00Z"});
  HttpClient client(hub->port());
  auto expired = client.Post("/v1/sales", SaleBody("e-1", "T01"), past.token);
  EXPECT_EQ(expired.status, 401) << expired.body;
  EXPECT_EQ(client.Post("/v1/sales", SaleBody("e-2", "T01"), terminals_[0].token).status, 201);
}

// 4. A client trickling a byte a second is cut off by the read timeout, and with one I/O
// thread other clients are served meanwhile at normal latency.
TEST_F(SecurityTest, TricklingClientIsCutOffWithoutBlockingOthers) {
  auto hub = StartHub({"--threads", "1", "--read-timeout-ms", "1000"});
  HttpClient client(hub->port());
  ASSERT_EQ(client.Post("/v1/sales", SaleBody("warm", "T01"), terminals_[0].token).status, 201);

  std::atomic<bool> trickle_done{false};
  std::atomic<int64_t> closed_after_ms{-1};
  std::thread trickler([&] {
    RawSocket s(hub->port());
    const std::string request =
        "POST /v1/sales HTTP/1.1\r\nHost: x\r\nX-Slow: " + std::string(40, 'a') + "\r\n\r\n";
    const auto start = Clock::now();
    for (char c : request) {
      if (!s.Send(std::string_view(&c, 1))) break;
      std::string got;
      bool eof = false;
      if (s.ReadSome(std::chrono::seconds(1), &got, &eof) && eof) break;
    }
    closed_after_ms =
        std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - start).count();
    trickle_done = true;
  });

  int served = 0;
  int64_t worst_ms = 0;
  for (int i = 0; !trickle_done.load() && i < 100; ++i) {
    const auto t0 = Clock::now();
    auto r = client.Post("/v1/sales", SaleBody("during-" + std::to_string(i), "T01"),
                         terminals_[0].token);
    worst_ms = std::max<int64_t>(
        worst_ms, std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - t0).count());
    EXPECT_EQ(r.status, 201) << r.body;
    if (r.status == 201) ++served;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));  // pacing, not waiting
  }
  trickler.join();
  EXPECT_GE(closed_after_ms.load(), 900);
  EXPECT_LE(closed_after_ms.load(), 2500) << "the trickling client was not cut off in time";
  EXPECT_GE(served, 5) << "other clients were not served during the trickle";
  EXPECT_LT(worst_ms, 750) << "a sale waited behind the trickling client";
}

// 5. Oversized headers and every request-smuggling shape, over raw sockets.
TEST_F(SecurityTest, OversizedHeadersAndSmugglingAreRefused) {
  auto hub = StartHub({});
  const std::string auth = "Authorization: Bearer " + terminals_[0].token + "\r\n";
  const std::string body = SaleBody("smuggle", "T01");
  const std::string len = std::to_string(body.size());
  struct Case {
    std::string name;
    std::string request;
    int status;
  };
  const std::vector<Case> cases = {
      {"oversized_headers",
       "GET /v1/status HTTP/1.1\r\nHost: x\r\n" + auth + "X-Big: " + std::string(20'000, 'a') +
           "\r\n\r\n",
       431},
      {"many_headers",
       [&] {
         std::string r = "GET /v1/status HTTP/1.1\r\nHost: x\r\n";
         for (int i = 0; i < 800; ++i) r += "X-H" + std::to_string(i) + ": vvvvvvvvvvvvvvvv\r\n";
         return r + "\r\n";
       }(),
       431},
      {"cl_and_te_chunked",
       "POST /v1/sales HTTP/1.1\r\nHost: x\r\n" + auth + "Content-Length: " + len +
           "\r\nTransfer-Encoding: chunked\r\n\r\n" + body,
       400},
      {"te_chunked_then_cl",
       "POST /v1/sales HTTP/1.1\r\nHost: x\r\n" + auth +
           "Transfer-Encoding: chunked\r\nContent-Length: 4\r\n\r\n0\r\n\r\n",
       400},
      {"te_identity",
       "POST /v1/sales HTTP/1.1\r\nHost: x\r\n" + auth +
           "Transfer-Encoding: identity\r\nContent-Length: " + len + "\r\n\r\n" + body,
       400},
      {"te_gzip_chunked",
       "POST /v1/sales HTTP/1.1\r\nHost: x\r\n" + auth +
           "Transfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n",
       400},
      {"te_twice",
       "POST /v1/sales HTTP/1.1\r\nHost: x\r\n" + auth +
           "Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
       400},
      {"duplicate_cl_different",
       "POST /v1/sales HTTP/1.1\r\nHost: x\r\n" + auth + "Content-Length: " + len +
           "\r\nContent-Length: 5\r\n\r\n" + body,
       400},
      {"cl_list",
       "POST /v1/sales HTTP/1.1\r\nHost: x\r\n" + auth + "Content-Length: " + len + ", 5\r\n\r\n" +
           body,
       400},
      {"cl_negative",
       "POST /v1/sales HTTP/1.1\r\nHost: x\r\n" + auth + "Content-Length: -1\r\n\r\n", 400},
      {"obs_fold",
       "POST /v1/sales HTTP/1.1\r\nHost: x\r\n" + auth + "Content-Length: " + len +
           "\r\nX-Folded: a\r\n  b\r\n\r\n" + body,
       400},
      {"obs_fold_te",
       "POST /v1/sales HTTP/1.1\r\nHost: x\r\n" + auth + "Content-Length: " + len +
           "\r\nTransfer-Encoding:\r\n chunked\r\n\r\n" + body,
       400},
  };
  for (const Case& c : cases) {
    RawSocket s(hub->port());
    ASSERT_TRUE(s.connected());
    s.Send(c.request);
    const std::string answer = s.ReadUntilClose(std::chrono::seconds(5));
    EXPECT_EQ(StatusOf(answer), c.status) << c.name << ":\n" << answer.substr(0, 300);
    // The connection is closed after the refusal: no second answer hides in the stream.
    EXPECT_EQ(answer.find("HTTP/1.", 5), std::string::npos) << c.name << ":\n" << answer;
  }
  HttpClient client(hub->port());
  EXPECT_EQ(client.Get("/v1/sales/smuggle", terminals_[0].token).status, 404);
}

// 6. Tokens and cloud secrets never appear in the log, status, metrics or error bodies.
TEST_F(SecurityTest, SecretsNeverAppearInAnyOutput) {
  const std::string aws_secret = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYzEXAMPLESECRETKEY";
  const std::string aws_session = "FwoGZXIvYXdzEXAMPLESESSIONTOKENabcdef0123456789";
  const std::string aws_key_id = "AKIAEXAMPLEKEYID0001";
  const std::string wrong_token = "mh_WRONGtokenXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX";
  auto hub = StartHub({"--log-level", "debug"}, {{"AWS_SECRET_ACCESS_KEY", aws_secret},
                                                 {"AWS_SESSION_TOKEN", aws_session},
                                                 {"AWS_ACCESS_KEY_ID", aws_key_id},
                                                 {"MACHUB_TOKEN", terminals_[1].token}});
  HttpClient client(hub->port());
  const std::string& t01 = terminals_[0].token;
  std::vector<HttpResponse> answers;
  answers.push_back(client.Post("/v1/sales", SaleBody("s-1", "T01"), t01));
  EXPECT_EQ(answers.back().status, 201);
  answers.push_back(client.Post("/v1/sales", SaleBody("s-2", "T01"), wrong_token));
  EXPECT_EQ(answers.back().status, 401);
  answers.push_back(client.Post("/v1/sales", SaleBody("s-3", "T01"), aws_secret));
  EXPECT_EQ(answers.back().status, 401);
  answers.push_back(client.Post("/v1/sales", SaleBody("s-4", "T02"), t01));
  EXPECT_EQ(answers.back().status, 403);
  answers.push_back(
      client.Request("POST", "/v1/sales", "{not json", {{"Authorization", "Bearer " + t01}}));
  EXPECT_EQ(answers.back().status, 400);
  answers.push_back(client.Request("POST", "/v1/sales", SaleBody("s-5", "T01", "-1"),
                                   {{"Authorization", "Bearer " + t01}}));
  EXPECT_EQ(answers.back().status, 422);
  answers.push_back(client.Request("GET", "/v1/status", "", {{"Authorization", "Basic " + t01}}));
  EXPECT_EQ(answers.back().status, 401);
  answers.push_back(client.Get("/v1/sales/s-1", t01));
  answers.push_back(client.Get("/v1/sales/nope", t01));
  EXPECT_EQ(answers.back().status, 404);
  answers.push_back(client.Get("/v1/sales?after_seq=0&limit=10", t01));
  answers.push_back(client.Get("/v1/sales?after_seq=x", t01));
  answers.push_back(client.Get("/v1/status", t01));
  EXPECT_EQ(answers.back().status, 200);
  answers.push_back(client.Get("/metrics", t01));
  EXPECT_EQ(answers.back().status, 200);
  // A terminal token on manager routes: 403 forbidden, whatever it holds.
  answers.push_back(client.Get("/v1/status", terminals_[1].token));
  EXPECT_EQ(answers.back().status, 403);
  answers.push_back(client.Get("/v1/sales?after_seq=0", terminals_[1].token));
  EXPECT_EQ(answers.back().status, 403);
  answers.push_back(client.Get("/metrics", wrong_token));
  answers.push_back(client.Get("/healthz"));
  answers.push_back(client.Get("/"));
  answers.push_back(client.Get("/no/such/path", t01));
  answers.push_back(
      client.Request("DELETE", "/v1/sales", "", {{"Authorization", "Bearer " + t01}}));
  EXPECT_EQ(answers.back().status, 405);
  {
    RawSocket s(hub->port());
    s.Send("POST /v1/sales HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + t01 +
           "\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n");
    HttpResponse raw;
    raw.body = s.ReadUntilClose(std::chrono::seconds(5));
    raw.status = StatusOf(raw.body);
    EXPECT_EQ(raw.status, 400);
    answers.push_back(raw);
  }
  ASSERT_EQ(hub->Terminate(), 0);

  std::string everything = ReadAll(dir_.Join("hub.log"));
  ASSERT_NE(everything.find("\"stopped\""), std::string::npos) << everything;
  for (const HttpResponse& a : answers) {
    everything += a.body;
    for (const auto& [k, v] : a.headers) everything += k + ": " + v + "\n";
  }
  for (const std::string& secret :
       {t01, terminals_[1].token, wrong_token, aws_secret, aws_session}) {
    EXPECT_EQ(everything.find(secret), std::string::npos) << "secret leaked: " << secret;
  }
}

// 7. Card numbers: refused in every payment string field and cashier, never echoed,
// never logged, never stored.
std::string LuhnComplete(const std::string& digits) {
  // Appends the check digit that makes `digits` + d pass Luhn.
  int sum = 0;
  for (size_t i = 0; i < digits.size(); ++i) {
    int d = digits[digits.size() - 1 - i] - '0';
    if (i % 2 == 0) d = d * 2 > 9 ? d * 2 - 9 : d * 2;
    sum += d;
  }
  return digits + std::to_string((10 - sum % 10) % 10);
}

TEST_F(SecurityTest, CardNumbersAreRefusedEverywhere) {
  auto hub = StartHub({"--log-level", "debug"});
  HttpClient client(hub->port());
  const std::string& t01 = terminals_[0].token;
  const std::string nineteen = LuhnComplete("453201511283036612");
  ASSERT_EQ(nineteen.size(), 19u);
  const std::vector<std::string> numbers = {
      "4111111111111111",    "4111 1111 1111 1111", "4111-1111-1111-1111", "4222222222222",
      "378282246310005",     "3782 822463 10005",   "371449635398431",     "5555555555554444",
      "5105-1051-0510-5100", "2223 0031 2200 3222", "6011111111111117",    nineteen,
      "tok " + nineteen};
  const std::vector<std::string> fields = {"cashier", "method",    "card_token", "last4",
                                           "brand",   "auth_code", "amount"};
  int n = 0;
  for (const std::string& field : fields) {
    for (const std::string& number : numbers) {
      const std::string id = "card-" + std::to_string(++n);
      json sale = json::parse(SaleBody(id, "T01"));
      if (field == "cashier") {
        sale["cashier"] = number;
      } else {
        sale["payments"][0] = {{"method", "card"}, {"amount", "100.00"}, {"card_token", "tok_abc"},
                               {"last4", "1111"},  {"brand", "visa"},    {"auth_code", "A1"}};
        sale["payments"][0][field] = number;
      }
      auto r = client.Post("/v1/sales", sale.dump(), t01);
      EXPECT_EQ(r.status, 422) << field << " " << number << ": " << r.body;
      // An amount with spaces or dashes, or above the amount bound, is not even a decimal
      // (invalid_field); a bare 13-digit number is one and must be refused as a card.
      const bool decimal_digits = number.find_first_not_of("0123456789") == std::string::npos;
      if (field != "amount" || (decimal_digits && number.size() == 13)) {
        EXPECT_EQ(ErrorCodeOf(r.body), "card_number_forbidden") << field << " " << number;
      }
      std::string digits;
      for (char c : number) {
        if (c >= '0' && c <= '9') digits.push_back(c);
      }
      EXPECT_EQ(r.body.find(number), std::string::npos) << r.body;
      EXPECT_EQ(r.body.find(digits.substr(0, 12)), std::string::npos) << r.body;
      EXPECT_EQ(client.Get("/v1/sales/" + id, t01).status, 404) << id;
    }
  }
  auto list = client.Get("/v1/sales?after_seq=0", t01);
  ASSERT_EQ(list.status, 200);
  ASSERT_EQ(hub->Terminate(), 0);
  const std::string log = ReadAll(dir_.Join("hub.log"));
  for (const std::string& number : numbers) {
    std::string digits;
    for (char c : number) {
      if (c >= '0' && c <= '9') digits.push_back(c);
    }
    EXPECT_EQ(log.find(number), std::string::npos) << "logged: " << number;
    EXPECT_EQ(log.find(digits.substr(0, 12)), std::string::npos) << "logged: " << number;
    EXPECT_EQ(list.body.find(digits.substr(0, 12)), std::string::npos) << "listed: " << number;
  }
}

// ---- Issue 13 (hardening) ----

// Sums the samples of a metric whose label set contains `labels` (Prometheus text).
double MetricSum(const std::string& text, const std::string& name, const std::string& labels) {
  double sum = 0;
  size_t pos = 0;
  while ((pos = text.find(name + "{", pos)) != std::string::npos) {
    const size_t eol = text.find('\n', pos);
    const std::string line = text.substr(pos, eol - pos);
    pos = eol;
    if (line.find(labels) == std::string::npos) continue;
    sum += std::atof(line.substr(line.rfind(' ') + 1).c_str());
  }
  return sum;
}

size_t CountOf(const std::string& text, const std::string& needle) {
  size_t n = 0;
  for (size_t pos = text.find(needle); pos != std::string::npos; pos = text.find(needle, pos + 1)) {
    ++n;
  }
  return n;
}

// 300 idle connections from 127.0.0.2 against max_connections 256: the per-address cap
// refuses most of them, so a terminal on 127.0.0.1 still gets its sale answered at once;
// the idle ones are dropped at the first-request deadline; refusals are counted and logged.
TEST_F(SecurityTest, IdleFloodFromOneAddressDoesNotStopAnotherTerminal) {
  auto hub = StartHub({"--max-connections", "256", "--first-request-timeout-ms", "1500"});
  std::vector<std::unique_ptr<RawSocket>> flood;
  for (int i = 0; i < 300; ++i) {
    flood.push_back(std::make_unique<RawSocket>(hub->port(), "127.0.0.2"));
    ASSERT_TRUE(flood.back()->connected()) << i;
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(200));  // let the hub accept them
  HttpClient client(hub->port());
  const auto t0 = Clock::now();
  auto r = client.Post("/v1/sales", SaleBody("during-flood", "T01"), terminals_[0].token);
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - t0).count();
  EXPECT_EQ(r.status, 201) << r.body;
  EXPECT_LT(ms, 1000);

  // An idle connection that was admitted is closed at the first-request deadline, long
  // before the 120 s idle timeout.
  RawSocket idle(hub->port(), "127.0.0.3");
  ASSERT_TRUE(idle.connected());
  const auto idle_start = Clock::now();
  std::string got = idle.ReadUntilClose(std::chrono::seconds(6));
  const auto idle_ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - idle_start).count();
  EXPECT_LT(idle_ms, 4000) << "an idle first connection was kept";

  auto metrics = client.Get("/metrics", terminals_[0].token);
  ASSERT_EQ(metrics.status, 200);
  EXPECT_GE(
      MetricSum(metrics.body, "machub_http_connections_refused_total", "reason=\"per_address\""),
      200)
      << metrics.body;
  flood.clear();
  ASSERT_EQ(hub->Terminate(), 0);
  const std::string log = ReadAll(dir_.Join("hub.log"));
  EXPECT_GE(CountOf(log, "http_connection_refused"), 1u);
  EXPECT_LE(CountOf(log, "http_connection_refused"), 10u) << "refusals are not rate-limited";
}

// Auth before body: no "100 Continue" and no body read for a request without a valid
// token; failed authentications are rate-limited per address and in the log.
TEST_F(SecurityTest, UnauthenticatedRequestIsRefusedBeforeItsBody) {
  auto hub = StartHub({});
  for (const char* auth : {"", "Authorization: Bearer nope\r\n"}) {
    RawSocket s(hub->port());
    ASSERT_TRUE(s.Send(std::string("POST /v1/sales HTTP/1.1\r\nHost: x\r\n") + auth +
                       "Content-Type: application/json\r\nContent-Length: 200000\r\n"
                       "Expect: 100-continue\r\n\r\n"));
    std::string got;
    bool eof = false;
    ASSERT_TRUE(s.ReadSome(std::chrono::seconds(3), &got, &eof)) << "no answer before the body";
    EXPECT_EQ(StatusOf(got), 401) << got;
    EXPECT_EQ(got.find("100 Continue"), std::string::npos) << got;
  }
  // A flood of bad tokens from one address: after a burst, 429 instead of 401, and only
  // a few log lines.
  HttpClient client(hub->port());
  int unauthorized = 0;
  int limited = 0;
  for (int i = 0; i < 60; ++i) {
    auto r = client.Get("/v1/status", "bad-token-" + std::to_string(i));
    unauthorized += r.status == 401 ? 1 : 0;
    limited += r.status == 429 ? 1 : 0;
  }
  EXPECT_LE(unauthorized, 30);
  EXPECT_GE(limited, 25);
  ASSERT_EQ(hub->Terminate(), 0);
  const std::string log = ReadAll(dir_.Join("hub.log"));
  EXPECT_LE(CountOf(log, "http_unauthorized"), 10u) << "401 log lines are not rate-limited";
}

// Duplicate Authorization, list-valued Content-Length: 400; the server's own answers
// (400, 431) are counted in machub_http_requests_total.
TEST_F(SecurityTest, AmbiguousHeadersAreRefusedAndCounted) {
  auto hub = StartHub({});
  const std::string body = SaleBody("ambiguous", "T01");
  const std::string len = std::to_string(body.size());
  const std::string auth = "Authorization: Bearer " + terminals_[0].token + "\r\n";
  const std::vector<std::string> requests = {
      "POST /v1/sales HTTP/1.1\r\nHost: x\r\n" + auth + auth + "Content-Length: " + len +
          "\r\n\r\n" + body,
      "POST /v1/sales HTTP/1.1\r\nHost: x\r\n" + auth + "Content-Length: " + len + ", " + len +
          "\r\n\r\n" + body,
      "POST /v1/sales HTTP/1.1\r\nHost: x\r\n" + auth + "Authorization: Bearer other\r\n" +
          "Content-Length: " + len + "\r\n\r\n" + body,
  };
  for (const std::string& request : requests) {
    RawSocket s(hub->port());
    ASSERT_TRUE(s.Send(request));
    const std::string got = s.ReadUntilClose(std::chrono::seconds(3));
    EXPECT_EQ(StatusOf(got), 400) << request << "\n" << got;
  }
  {
    RawSocket s(hub->port());
    ASSERT_TRUE(s.Send("GET /v1/status HTTP/1.1\r\nHost: x\r\nX-Big: " + std::string(20'000, 'a') +
                       "\r\n\r\n"));
    EXPECT_EQ(StatusOf(s.ReadUntilClose(std::chrono::seconds(3))), 431);
  }
  HttpClient client(hub->port());
  EXPECT_EQ(client.Get("/v1/sales/ambiguous", terminals_[0].token).status, 404);
  auto metrics = client.Get("/metrics", terminals_[0].token);
  ASSERT_EQ(metrics.status, 200);
  EXPECT_EQ(
      MetricSum(metrics.body, "machub_http_requests_total", "route=\"server\",status=\"400\""), 3)
      << metrics.body;
  EXPECT_EQ(
      MetricSum(metrics.body, "machub_http_requests_total", "route=\"server\",status=\"431\""), 1);
}

// Card numbers outside payment fields and in other shapes; a terminal_id that is a card
// number is refused as one (never logged, never echoed); card overpayment; unsafe ids.
TEST_F(SecurityTest, CardNumbersInFreeTextAndOtherShapes) {
  auto hub = StartHub({"--log-level", "debug"});
  HttpClient client(hub->port());
  const std::string& t01 = terminals_[0].token;
  const std::string fullwidth = "\xEF\xBC\x94\xEF\xBC\x91\xEF\xBC\x91\xEF\xBC\x91 1111 1111 1111";
  int n = 0;
  for (const std::string& number :
       {std::string("4111.1111.1111.1111"), std::string("4111 - 1111 - 1111 - 1111"),
        std::string("4111_1111_1111_1111"), fullwidth}) {
    for (const char* field : {"name", "sku"}) {
      json sale = json::parse(SaleBody("ft-" + std::to_string(++n), "T01"));
      sale["lines"][0][field] = number;
      auto r = client.Post("/v1/sales", sale.dump(), t01);
      EXPECT_EQ(r.status, 422) << field << " " << number << ": " << r.body;
      EXPECT_EQ(ErrorCodeOf(r.body), "card_number_forbidden") << r.body;
      EXPECT_EQ(r.body.find("1111"), std::string::npos) << r.body;
    }
  }
  for (const char* field : {"id", "terminal_id"}) {
    json sale = json::parse(SaleBody("ft-x", "T01"));
    sale[field] = "4111111111111111";
    auto r = client.Post("/v1/sales", sale.dump(), t01);
    EXPECT_EQ(r.status, 422) << field << ": " << r.body;
    EXPECT_EQ(ErrorCodeOf(r.body), "card_number_forbidden") << r.body;
  }
  json over = json::parse(SaleBody("over-1", "T01"));
  over["payments"] = json::parse(R"([{"method":"card","amount":"100.00","card_token":"t"}])");
  auto r = client.Post("/v1/sales", over.dump(), t01);
  EXPECT_EQ(r.status, 422) << r.body;
  EXPECT_EQ(ErrorCodeOf(r.body), "card_overpayment") << r.body;
  for (const char* id : {".", ".."}) {
    auto bad = client.Post("/v1/sales", SaleBody(id, "T01"), t01);
    EXPECT_EQ(bad.status, 422) << id << ": " << bad.body;
    EXPECT_EQ(ErrorCodeOf(bad.body), "invalid_field") << bad.body;
  }
  ASSERT_EQ(hub->Terminate(), 0);
  const std::string log = ReadAll(dir_.Join("hub.log"));
  EXPECT_EQ(log.find("4111"), std::string::npos) << "a card number reached the log";
}

}  // namespace
}  // namespace machub::testing
