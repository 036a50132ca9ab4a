#include "harness.h"

#include <fcntl.h>
#include <openssl/rand.h>
#include <openssl/sha.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

// clang-format off
#include <utility>  // before Asio: Boost 1.74 with GCC 12 C++20 needs std::exchange declared
// clang-format on

#include <algorithm>
#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <thread>

namespace machub::testing {
namespace fs = std::filesystem;
namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = beast::http;

namespace {

std::string Hex(const unsigned char* p, size_t n) {
  static const char* kDigits = "0123456789abcdef";
  std::string out;
  for (size_t i = 0; i < n; ++i) {
    out += kDigits[p[i] >> 4];
    out += kDigits[p[i] & 15];
  }
  return out;
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

}  // namespace

TempDir::TempDir() {
  const char* base = getenv("TMPDIR");
  std::string tmpl = std::string(base && *base ? base : "/tmp") + "/machub-test-XXXXXX";
  if (mkdtemp(tmpl.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
  path_ = tmpl;
}

TempDir::~TempDir() {
  if (getenv("MACHUB_KEEP_TEST_DIRS") != nullptr) return;
  std::error_code ec;
  fs::remove_all(path_, ec);
}

std::string MachubBinary() {
  const char* env = getenv("MACHUB_BINARY");
  if (env != nullptr && *env != '\0') return env;
  return MACHUB_BINARY_PATH;
}

ChildProcess::ChildProcess(const std::vector<std::string>& argv, const std::string& log_path,
                           const std::map<std::string, std::string>& env)
    : log_path_(log_path) {
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  pid_ = fork();
  if (pid_ < 0) throw std::runtime_error("fork failed");
  if (pid_ == 0) {
    int fd = open(log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    if (fd >= 0) {
      dup2(fd, 1);
      dup2(fd, 2);
      close(fd);
    }
    int devnull = open("/dev/null", O_RDONLY);
    if (devnull >= 0) dup2(devnull, 0);
    for (const auto& [k, v] : env) setenv(k.c_str(), v.c_str(), 1);
    // The child gets its own process group so a stray signal to the test hits only it.
    setpgid(0, 0);
    execv(args[0], args.data());
    _exit(127);
  }
}

ChildProcess::~ChildProcess() {
  if (Running()) {
    kill(pid_, SIGKILL);
    Wait(std::chrono::seconds(10));
  }
}

bool ChildProcess::Running() {
  if (reaped_) return false;
  int st = 0;
  pid_t r = waitpid(pid_, &st, WNOHANG);
  if (r == pid_) {
    status_ = st;
    reaped_ = true;
    return false;
  }
  return true;
}

void ChildProcess::Signal(int sig) {
  if (!reaped_) kill(pid_, sig);
}

int ChildProcess::Wait(std::chrono::milliseconds timeout) {
  if (!WaitFor([&] { return !Running(); }, timeout)) return -1;
  if (WIFEXITED(status_)) return WEXITSTATUS(status_);
  if (WIFSIGNALED(status_)) return 128 + WTERMSIG(status_);
  return -1;
}

CommandResult RunCommand(const std::vector<std::string>& argv, int timeout_s) {
  TempDir dir;
  std::string out_path = dir.Join("out");
  ChildProcess child(argv, out_path);
  CommandResult result;
  result.exit_code = child.Wait(std::chrono::seconds(timeout_s));
  result.out = ReadFile(out_path);
  return result;
}

std::vector<Terminal> MakeTerminals(int n) {
  std::vector<Terminal> out;
  for (int i = 1; i <= n; ++i) {
    Terminal t;
    char id[16];
    snprintf(id, sizeof id, "T%02d", i);
    t.id = id;
    unsigned char raw[24];
    if (RAND_bytes(raw, sizeof raw) != 1) throw std::runtime_error("RAND_bytes");
    t.token = "mh_" + Hex(raw, sizeof raw);
    unsigned char digest[SHA256_DIGEST_LENGTH];
    SHA256(reinterpret_cast<const unsigned char*>(t.token.data()), t.token.size(), digest);
    t.hash = Hex(digest, sizeof digest);
    out.push_back(t);
  }
  return out;
}

void WriteTokensFile(const std::string& path, const std::vector<Terminal>& terminals) {
  std::ofstream out(path);
  for (const auto& t : terminals) out << t.id << ' ' << t.token << '\n';
}

std::unique_ptr<Hub> Hub::Start(const Options& options) {
  static int counter = 0;
  auto hub = std::unique_ptr<Hub>(new Hub());
  std::string ready = options.data_dir + ".ready";
  std::error_code ec;
  fs::remove(ready, ec);
  std::vector<std::string> argv = {MachubBinary(), "serve",
                                   "--data-dir",   options.data_dir,
                                   "--listen",     "127.0.0.1:" + std::to_string(options.port),
                                   "--ready-file", ready,
                                   "--demo-token", "false"};
  for (const auto& t : options.terminals) {
    argv.push_back(t.manager ? "--manager-tokens" : "--terminal-tokens");
    argv.push_back(t.id + ":" + t.hash);
  }
  // Tests send faster than a till; the rate limit is off unless a test sets it.
  if (std::find(options.extra_args.begin(), options.extra_args.end(), "--rate-per-terminal") ==
      options.extra_args.end()) {
    argv.push_back("--rate-per-terminal");
    argv.push_back("0");
  }
  for (const auto& a : options.extra_args) argv.push_back(a);
  std::string log = options.log_path.empty()
                        ? options.data_dir + ".hub-" + std::to_string(++counter) + ".log"
                        : options.log_path;
  hub->process_ = std::make_unique<ChildProcess>(argv, log, options.env);
  bool up = WaitFor([&] { return fs::exists(ready) || !hub->process_->Running(); },
                    std::chrono::seconds(30));
  if (!up || !fs::exists(ready)) {
    throw std::runtime_error("hub did not start; log:\n" + ReadFile(log));
  }
  hub->port_ = static_cast<uint16_t>(std::stoi(ReadFile(ready)));
  return hub;
}

Hub::~Hub() {
  if (process_ && process_->Running()) Kill();
}

std::string Hub::url() const { return "http://127.0.0.1:" + std::to_string(port_); }

void Hub::Kill() {
  process_->Signal(SIGKILL);
  process_->Wait(std::chrono::seconds(10));
}

int Hub::Terminate() {
  process_->Signal(SIGTERM);
  return process_->Wait(std::chrono::seconds(30));
}

struct HttpClient::Impl {
  asio::io_context io;
  beast::tcp_stream stream{io};
  beast::flat_buffer buffer;
  uint16_t port;
  bool open = false;

  void Connect() {
    beast::error_code ec;
    stream.socket().close(ec);
    buffer.clear();
    stream.connect(asio::ip::tcp::endpoint(asio::ip::make_address("127.0.0.1"), port));
    open = true;
  }
};

HttpClient::HttpClient(uint16_t port) : impl_(std::make_unique<Impl>()) { impl_->port = port; }
HttpClient::~HttpClient() = default;

bool HttpClient::connected() const { return impl_->open; }

HttpResponse HttpClient::Request(const std::string& method, const std::string& target,
                                 const std::string& body,
                                 const std::map<std::string, std::string>& headers) {
  for (int attempt = 0; attempt < 2; ++attempt) {
    if (!impl_->open) impl_->Connect();
    bhttp::request<bhttp::string_body> req;
    req.method_string(method);
    req.target(target);
    req.version(11);
    req.set(bhttp::field::host, "127.0.0.1");
    for (const auto& [k, v] : headers) req.set(k, v);
    if (!body.empty() || method == "POST") {
      req.set(bhttp::field::content_type, "application/json");
      req.body() = body;
      req.prepare_payload();
    }
    beast::error_code ec;
    impl_->stream.expires_after(std::chrono::seconds(30));
    bhttp::write(impl_->stream, req, ec);
    if (ec) {
      impl_->open = false;
      continue;
    }
    bhttp::response_parser<bhttp::string_body> parser;
    parser.body_limit(64 * 1024 * 1024);
    bhttp::read(impl_->stream, impl_->buffer, parser, ec);
    if (ec) {
      impl_->open = false;
      if (attempt == 0 &&
          (ec == bhttp::error::end_of_stream || ec == asio::error::connection_reset)) {
        continue;  // a kept-alive connection the server closed meanwhile
      }
      throw std::runtime_error("HTTP read failed: " + ec.message());
    }
    auto res = parser.release();
    HttpResponse out;
    out.status = static_cast<int>(res.result_int());
    out.body = res.body();
    for (const auto& f : res) {
      std::string name(f.name_string());
      for (auto& c : name) c = static_cast<char>(tolower(static_cast<unsigned char>(c)));
      out.headers[name] = std::string(f.value());
    }
    if (!res.keep_alive()) {
      impl_->stream.socket().close(ec);
      impl_->open = false;
    }
    return out;
  }
  throw std::runtime_error("HTTP request failed twice");
}

HttpResponse HttpClient::Get(const std::string& target, const std::string& token) {
  std::map<std::string, std::string> h;
  if (!token.empty()) h["Authorization"] = "Bearer " + token;
  return Request("GET", target, "", h);
}

HttpResponse HttpClient::Post(const std::string& target, const std::string& body,
                              const std::string& token) {
  std::map<std::string, std::string> h;
  if (!token.empty()) h["Authorization"] = "Bearer " + token;
  return Request("POST", target, body, h);
}

std::string SaleBody(const std::string& id, const std::string& terminal_id,
                     const std::string& unit_price) {
  return R"({"id":")" + id + R"(","terminal_id":")" + terminal_id +
         R"(","created_at":"2026-11-27T10:15:00Z","currency":"USD",)"
         R"("lines":[{"sku":"0001","name":"Coffee","qty":"2","unit_price":")" +
         unit_price +
         R"(","tax_rate":"0.0825"}],)"
         R"("payments":[{"method":"cash","amount":"100.00"}]})";
}

}  // namespace machub::testing
