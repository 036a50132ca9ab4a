// The HTTP server's listener: listening, accepting, connection admission (global,
// per-address and reserved-for-terminals caps, the 503 to a refused client), the I/O
// threads, certificate reload for new connections, and the drain at Stop. One
// connection's state machine is session.cc; what both share is server_core.h.
#include "http/server.h"

#include <algorithm>
#include <atomic>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/beast/core/error.hpp>
#include <chrono>
#include <exception>
#include <future>
#include <mutex>
#include <thread>

#include "core/log.h"
#include "http/api_error.h"
#include "http/server_core.h"
#include "http/tls_identity.h"

namespace machub::http {

std::string_view Request::Header(std::string_view lower_name) const {
  for (const auto& [name, value] : headers) {
    if (name == lower_name) return value;
  }
  return {};
}

namespace server_internal {

void Core::MaybeReloadTls() {
  if (!tls || options.tls_reload_check_ms <= 0) return;
  const auto now = std::chrono::steady_clock::now();
  if (now < next_tls_check) return;
  next_tls_check = now + std::chrono::milliseconds(options.tls_reload_check_ms);
  const FileStamp cert = StampOf(options.tls_cert_file);
  const FileStamp key = StampOf(options.tls_key_file);
  if (cert == cert_stamp && key == key_stamp) return;
  auto loaded = LoadTlsIdentity(options.tls_cert_file, options.tls_key_file);
  if (!loaded.ok()) {
    // Probably caught between the two renames of a renewal: retry at the next check.
    core::LogWarn("tls_reload_failed", {{"error", loaded.status().message()}});
    return;
  }
  cert_stamp = cert;
  key_stamp = key;
  {
    std::lock_guard<std::mutex> lock(tls_mu);
    tls_identity = std::move(*loaded);
  }
  core::LogInfo("tls_reloaded", {{"cert", options.tls_cert_file}});
}

}  // namespace server_internal

namespace {

using server_internal::Core;
using server_internal::SessionBase;
using server_internal::StartSession;
namespace asio = boost::asio;
namespace beast = boost::beast;
using tcp = boost::asio::ip::tcp;

// After the drain, how long Stop waits for every session to observe its close.
constexpr auto kCloseWait = std::chrono::seconds(2);

class ServerImpl final : public Server {
 public:
  explicit ServerImpl(std::shared_ptr<Core> core)
      : core_(std::move(core)),
        acceptor_(asio::make_strand(core_->ioc)),
        retry_timer_(acceptor_.get_executor()),
        work_(asio::make_work_guard(core_->ioc)) {}

  ~ServerImpl() override { Stop(0); }

  Status Listen() {
    beast::error_code ec;
    tcp::endpoint endpoint;
    const auto address = asio::ip::make_address(core_->options.address, ec);
    if (!ec) {
      endpoint = tcp::endpoint(address, core_->options.port);
    } else {
      tcp::resolver resolver(core_->ioc);
      auto results = resolver.resolve(core_->options.address, std::to_string(core_->options.port),
                                      tcp::resolver::passive, ec);
      if (ec || results.empty()) {
        return Status(ErrorCode::kInvalidArgument,
                      "cannot resolve listen address " + core_->options.address);
      }
      endpoint = results.begin()->endpoint();
    }
    const std::string where = core_->options.address + ":" + std::to_string(core_->options.port);
    acceptor_.open(endpoint.protocol(), ec);
    if (ec) {
      return Status(ErrorCode::kIoError, "cannot open socket for " + where + ": " + ec.message());
    }
    acceptor_.set_option(asio::socket_base::reuse_address(true), ec);
    if (ec) {
      return Status(ErrorCode::kIoError, "cannot set SO_REUSEADDR: " + ec.message());
    }
    acceptor_.bind(endpoint, ec);
    if (ec) {
      return Status(ErrorCode::kIoError, "cannot bind " + where + ": " + ec.message());
    }
    acceptor_.listen(asio::socket_base::max_listen_connections, ec);
    if (ec) {
      return Status(ErrorCode::kIoError, "cannot listen on " + where + ": " + ec.message());
    }
    port_ = acceptor_.local_endpoint(ec).port();
    return Status::Ok();
  }

  void Run() {
    DoAccept();
    const int n = std::max(1, core_->options.threads);
    for (int i = 0; i < n; ++i) {
      threads_.emplace_back([core = core_] {
        for (;;) {
          try {
            core->ioc.run();
            return;
          } catch (const std::exception& e) {
            // A handler threw through Asio; keep the loop alive for everyone else.
            core::LogError("http_io_exception", {{"what", e.what()}});
          }
        }
      });
    }
  }

  uint16_t port() const override { return port_; }
  int connections() const override { return core_->connections.load(); }

  void Stop(int64_t drain_ms) override {
    if (stop_called_.exchange(true)) return;
    core_->draining = true;

    // Stop accepting: close the acceptor on its strand (an accept handler may be running),
    // and wait until that happened. Without I/O threads (Start failed) nothing races.
    auto close_acceptor = [this] {
      beast::error_code ec;
      acceptor_.close(ec);
      retry_timer_.cancel();
    };
    if (threads_.empty()) {
      close_acceptor();
    } else {
      std::promise<void> closed;
      asio::post(acceptor_.get_executor(), [&] {
        close_acceptor();
        closed.set_value();
      });
      closed.get_future().wait();
    }

    std::vector<std::shared_ptr<SessionBase>> sessions = Sessions();
    for (auto& s : sessions) s->Shutdown(/*only_if_idle=*/true);
    sessions.clear();
    {
      std::unique_lock<std::mutex> lock(core_->mu);
      core_->cv.wait_for(lock, std::chrono::milliseconds(std::max<int64_t>(0, drain_ms)),
                         [&] { return core_->in_flight == 0; });
      core_->stopped = true;
    }
    sessions = Sessions();
    for (auto& s : sessions) s->Shutdown(/*only_if_idle=*/false);
    sessions.clear();
    {
      std::unique_lock<std::mutex> lock(core_->mu);
      core_->cv.wait_for(lock, kCloseWait, [&] { return core_->connections.load() == 0; });
    }
    work_.reset();
    core_->ioc.stop();
    for (auto& t : threads_) t.join();
    threads_.clear();
    // Run what completed during the shutdown (aborted reads, cancelled timers) so the
    // handlers release their sessions; nothing re-arms once `stopped` is set.
    try {
      core_->ioc.restart();
      core_->ioc.poll();
    } catch (const std::exception& e) {
      core::LogError("http_io_exception", {{"what", e.what()}});
    }
  }

 private:
  std::vector<std::shared_ptr<SessionBase>> Sessions() {
    std::vector<std::shared_ptr<SessionBase>> out;
    std::lock_guard<std::mutex> lock(core_->mu);
    out.reserve(core_->sessions.size());
    for (auto& [ptr, weak] : core_->sessions) {
      if (auto s = weak.lock()) out.push_back(std::move(s));
    }
    return out;
  }

  void DoAccept() {
    acceptor_.async_accept(
        asio::make_strand(core_->ioc),
        [this](beast::error_code ec, tcp::socket socket) { OnAccept(ec, std::move(socket)); });
  }

  void OnAccept(beast::error_code ec, tcp::socket socket) {
    if (ec == asio::error::operation_aborted || !acceptor_.is_open()) return;
    if (ec) {
      // EMFILE and friends: retrying at once would spin; back off briefly.
      core::LogWarn("http_accept_failed", {{"error", ec.message()}});
      retry_timer_.expires_after(std::chrono::milliseconds(100));
      retry_timer_.async_wait([this](beast::error_code tec) {
        if (!tec) DoAccept();
      });
      return;
    }
    if (core_->draining.load()) {
      beast::error_code ignored;
      socket.close(ignored);
      return;
    }
    beast::error_code ignored;
    const auto remote = socket.remote_endpoint(ignored);
    std::string remote_text = ignored ? std::string() : remote.address().to_string();
    if (const char* refusal = Admit(remote_text)) {
      Refused(refusal);
      RefuseBusy(socket);
    } else {
      socket.set_option(tcp::no_delay(true), ignored);  // small answers, no Nagle delay
      core_->MaybeReloadTls();
      StartSession(core_, std::move(socket), std::move(remote_text));
    }
    DoAccept();
  }

  // Admission (server.h): nullptr when the connection may open (and then it is counted),
  // else the reason it is refused.
  const char* Admit(const std::string& remote) {
    const ServerOptions& o = core_->options;
    std::lock_guard<std::mutex> lock(core_->mu);
    if (core_->connections.load() >= o.max_connections) return "max_connections";
    if (core_->anonymous.load() >= std::max(1, o.max_connections - o.reserved_connections)) {
      return "anonymous";
    }
    int& mine = core_->per_address[remote];
    if (mine >= o.max_connections_per_address) return "per_address";
    ++mine;
    core_->connections.fetch_add(1);
    core_->anonymous.fetch_add(1);
    return nullptr;
  }

  // Counted always; logged at most once a second with how many were not logged.
  void Refused(const char* reason) {
    if (core_->options.on_refused) core_->options.on_refused(reason);
    ++refused_since_log_;
    const auto now = std::chrono::steady_clock::now();
    if (now - last_refusal_log_ >= std::chrono::seconds(1)) {
      core::LogWarn("http_connection_refused",
                    {{"reason", reason}, {"refused_since_last_log", refused_since_log_}});
      refused_since_log_ = 0;
      last_refusal_log_ = now;
    }
  }

  // Over max_connections: a plain-text client gets a short 503 written without blocking
  // (it fits any fresh socket buffer); a TLS client just sees the connection close.
  void RefuseBusy(tcp::socket& socket) {
    beast::error_code ec;
    if (!core_->tls) {
      static const std::string kAnswer = [] {
        const std::string body = ErrorBody(kServerBusyCode, "too many connections; retry later");
        return "HTTP/1.1 503 Service Unavailable\r\nServer: machub\r\nContent-Type: "
               "application/json\r\nRetry-After: 1\r\nCache-Control: no-store\r\n"
               "Connection: close\r\nContent-Length: " +
               std::to_string(body.size()) + "\r\n\r\n" + body;
      }();
      core_->EarlyAnswer(503);
      socket.non_blocking(true, ec);
      if (!ec) socket.write_some(asio::buffer(kAnswer), ec);
      socket.shutdown(tcp::socket::shutdown_send, ec);
    }
    socket.close(ec);
  }

  std::shared_ptr<Core> core_;
  tcp::acceptor acceptor_;
  asio::steady_timer retry_timer_;
  asio::executor_work_guard<asio::io_context::executor_type> work_;
  std::vector<std::thread> threads_;
  uint16_t port_ = 0;
  std::atomic<bool> stop_called_{false};
  // Refusal log throttle; used on the acceptor's strand only.
  int64_t refused_since_log_ = 0;
  std::chrono::steady_clock::time_point last_refusal_log_{};
};

}  // namespace

Result<std::unique_ptr<Server>> Server::Start(const ServerOptions& options, Handler handler) {
  if (!handler) return Status(ErrorCode::kInvalidArgument, "no request handler");
  if (options.threads < 1 || options.max_connections < 1 || options.read_timeout_ms <= 0 ||
      options.write_timeout_ms <= 0 || options.idle_timeout_ms <= 0 ||
      options.first_request_timeout_ms <= 0 || options.max_connections_per_address < 1 ||
      options.reserved_connections < 0) {
    return Status(ErrorCode::kInvalidArgument,
                  "threads, max_connections and timeouts must be positive");
  }
  try {
    auto core = std::make_shared<Core>(options, std::move(handler));
    RETURN_IF_ERROR(LoadTlsContext(options, &core->tls));
    if (core->tls && options.tls_reload_check_ms > 0) {
      core->cert_stamp = StampOf(options.tls_cert_file);
      core->key_stamp = StampOf(options.tls_key_file);
      core->next_tls_check =
          std::chrono::steady_clock::now() + std::chrono::milliseconds(options.tls_reload_check_ms);
    }
    auto server = std::make_unique<ServerImpl>(core);
    RETURN_IF_ERROR(server->Listen());
    server->Run();
    return std::unique_ptr<Server>(std::move(server));
  } catch (const std::exception& e) {
    // Asio/OpenSSL setup throws only on resource exhaustion; turn it into a Status here.
    return Status(ErrorCode::kIoError, std::string("cannot start HTTP server: ") + e.what());
  }
}

}  // namespace machub::http
