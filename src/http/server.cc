// Why this file is long (about 800 lines): one Beast session template serves plain HTTP
// and TLS, and the connection admission (per-address caps, reserved capacity for
// authenticated terminals, first-request and idle deadlines, early answers before the
// body) is woven through that session's state machine; split apart, each half would need
// the other's internals. What stands alone is elsewhere: the TLS material in
// tls_identity.cc, the request-level checks in request_checks.cc.
#include "http/server.h"

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include <algorithm>
#include <atomic>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <chrono>
#include <condition_variable>
#include <exception>
#include <future>
#include <limits>
#include <mutex>
#include <optional>
#include <thread>
#include <type_traits>
#include <unordered_map>

#include "core/log.h"
#include "core/strings.h"
#include "http/api_error.h"
#include "http/request_checks.h"
#include "http/tls_identity.h"

namespace machub::http {

std::string_view Request::Header(std::string_view lower_name) const {
  for (const auto& [name, value] : headers) {
    if (name == lower_name) return value;
  }
  return {};
}

namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
namespace ssl = boost::asio::ssl;
using tcp = boost::asio::ip::tcp;

// Bytes asked for while waiting for the first byte of a request: enough for a typical
// small request in one read, small enough not to matter for thousands of idle sessions.
constexpr size_t kFirstReadSize = 4096;
// How long a closing connection waits for the peer's FIN after our answer, and how much
// it reads meanwhile. Closing with unread bytes in the kernel buffer sends an RST, which
// can destroy the 413/400 answer before the client reads it.
constexpr int64_t kLingerMs = 1000;
constexpr size_t kLingerMaxBytes = 1 << 20;
// After the drain, how long Stop waits for every session to observe its close.
constexpr auto kCloseWait = std::chrono::seconds(2);

class SessionBase {
 public:
  virtual ~SessionBase() = default;
  // Posts a close onto the session's strand: always, or only when it waits for a request.
  virtual void Shutdown(bool only_if_idle) = 0;
};

// State shared by the server and every session. Sessions (and Respond callbacks, which
// may outlive the server on a journal thread) hold it by shared_ptr, so the io_context
// outlives every socket bound to it.
struct Core {
  Core(const ServerOptions& server_options, Handler request_handler)
      : options(server_options), handler(std::move(request_handler)), ioc(options.threads) {}

  const ServerOptions options;
  const Handler handler;
  asio::io_context ioc;
  std::optional<ssl::context> tls;
  // Certificate reload (tls_reload_check_ms > 0): the identity new connections get, and
  // the stamps of the files it came from (stamps and next check: accept strand only).
  std::mutex tls_mu;
  std::shared_ptr<const TlsIdentity> tls_identity;  // guarded by tls_mu
  FileStamp cert_stamp, key_stamp;
  std::chrono::steady_clock::time_point next_tls_check{};

  std::shared_ptr<const TlsIdentity> CurrentTlsIdentity() {
    std::lock_guard<std::mutex> lock(tls_mu);
    return tls_identity;
  }

  // Accept strand. Reloads the pair when a file changed since the last load.
  void MaybeReloadTls() {
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

  std::atomic<bool> draining{false};
  std::atomic<int> connections{0};
  std::atomic<int> anonymous{0};  // connections that never carried an authenticated request

  std::mutex mu;
  // Open anonymous connections by remote address (authenticated ones are not capped).
  std::unordered_map<std::string, int> per_address;
  std::condition_variable cv;  // in_flight or connections dropped
  bool stopped = false;        // Respond calls are dropped; sessions never re-arm
  int in_flight = 0;           // requests handed to the handler and not yet answered
  std::unordered_map<SessionBase*, std::weak_ptr<SessionBase>> sessions;

  // An anonymous connection leaves the per-address and anonymous counts (closed, or
  // authenticated); the caller holds `mu`.
  void LeaveAnonymousLocked(const std::string& remote) {
    anonymous.fetch_sub(1);
    if (auto it = per_address.find(remote); it != per_address.end() && --it->second <= 0) {
      per_address.erase(it);
    }
  }
  void Authenticated(const std::string& remote) {
    std::lock_guard<std::mutex> lock(mu);
    LeaveAnonymousLocked(remote);
  }
  void ConnectionClosed(const std::string& remote, bool authenticated) {
    std::lock_guard<std::mutex> lock(mu);
    connections.fetch_sub(1);
    if (!authenticated) LeaveAnonymousLocked(remote);
    cv.notify_all();
  }
  void EarlyAnswer(int status) const {
    if (options.on_early_answer) options.on_early_answer(status);
  }
  void RequestDone() {
    std::lock_guard<std::mutex> lock(mu);
    --in_flight;
    cv.notify_all();
  }
};

std::string_view Sv(beast::string_view v) { return {v.data(), v.size()}; }

// One connection. All members are used on the session's strand only, except through
// Shutdown() and the Respond callback, which post onto it.
template <bool kTls>
class Session final : public SessionBase, public std::enable_shared_from_this<Session<kTls>> {
 public:
  using Stream = std::conditional_t<kTls, beast::ssl_stream<beast::tcp_stream>, beast::tcp_stream>;

  Session(std::shared_ptr<Core> core, tcp::socket socket, std::string remote)
      : core_(std::move(core)),
        stream_(MakeStream(*core_, std::move(socket))),
        remote_(std::move(remote)) {}

  ~Session() override {
    if (!closed_) core_->ConnectionClosed(remote_, authenticated_);
    std::lock_guard<std::mutex> lock(core_->mu);
    core_->sessions.erase(this);
  }

  void Start() {
    {
      std::lock_guard<std::mutex> lock(core_->mu);
      core_->sessions[this] = this->weak_from_this();
    }
    asio::dispatch(stream_.get_executor(), [self = this->shared_from_this()] { self->Begin(); });
  }

  void Shutdown(bool only_if_idle) override {
    asio::post(stream_.get_executor(), [self = this->shared_from_this(), only_if_idle] {
      if (only_if_idle && self->state_ != State::kIdle) return;
      self->HardClose();
    });
  }

 private:
  enum class State { kHandshake, kIdle, kReading, kHandling, kWriting, kClosing, kClosed };

  // Ensures the request is answered exactly once, even by a handler that drops its
  // Respond without calling it (then the client gets a 500 instead of a hung request).
  struct Responder {
    explicit Responder(std::shared_ptr<Session> s) : session(std::move(s)) {}
    ~Responder() {
      if (!done.exchange(true)) {
        session->Post(ErrorResponse(500, ErrorCodeName(ErrorCode::kInternal), "internal error"));
      }
    }
    void Call(Response response) {
      if (done.exchange(true)) return;
      session->Post(std::move(response));
    }
    std::shared_ptr<Session> session;
    std::atomic<bool> done{false};
  };

  static Stream MakeStream(Core& core, tcp::socket socket) {
    if constexpr (kTls) {
      return Stream(std::move(socket), *core.tls);
    } else {
      return Stream(std::move(socket));
    }
  }

  beast::tcp_stream& Lowest() { return beast::get_lowest_layer(stream_); }
  static std::chrono::milliseconds Ms(int64_t ms) { return std::chrono::milliseconds(ms); }

  void Begin() {
    if constexpr (kTls) {
      if (auto id = core_->CurrentTlsIdentity()) {
        // A reloaded certificate replaces the context's for this connection.
        if (SSL_use_cert_and_key(stream_.native_handle(), id->leaf, id->key, id->chain, 1) != 1) {
          ERR_clear_error();
          return HardClose();
        }
      }
      state_ = State::kHandshake;
      Lowest().expires_after(Ms(core_->options.read_timeout_ms));
      stream_.async_handshake(ssl::stream_base::server,
                              [self = this->shared_from_this()](beast::error_code ec) {
                                if (ec) return self->HardClose();
                                self->ReadPeerIdentity();
                                self->ReadRequest();
                              });
    } else {
      ReadRequest();
    }
  }

  // Mutual TLS: the handshake already verified the chain (SSL_VERIFY_PEER with
  // FAIL_IF_NO_PEER_CERT), so a certificate here is trusted; keep its names for the API.
  void ReadPeerIdentity() {
    if constexpr (kTls) {
      SSL* ssl = stream_.native_handle();
      X509* cert = SSL_get0_peer_certificate(ssl);
      if (cert == nullptr || SSL_get_verify_result(ssl) != X509_V_OK) return;
      client_cert_verified_ = true;
      client_identities_ = CertificateIdentities(cert);
    }
  }

  void ReadRequest() {
    if (state_ == State::kClosed) return;
    if (core_->draining.load()) return GracefulClose();
    parser_.emplace();
    ConfigureRequestParser(*parser_, core_->options);
    if (buffer_.size() > 0) return ReadHeader();  // a pipelined request is already here
    // Idle: only the idle timeout applies until the first byte of the next request; a
    // new connection gets the much shorter first-request deadline (an idle flood).
    state_ = State::kIdle;
    Lowest().expires_after(Ms(requests_ == 0 ? core_->options.first_request_timeout_ms
                                             : core_->options.idle_timeout_ms));
    stream_.async_read_some(buffer_.prepare(kFirstReadSize),
                            [self = this->shared_from_this()](beast::error_code ec, size_t n) {
                              if (ec || self->state_ == State::kClosed) return self->HardClose();
                              self->buffer_.commit(n);
                              self->ReadHeader();
                            });
  }

  void ReadHeader() {
    state_ = State::kReading;
    // One deadline for the whole request (headers, 100-continue, body): a client that
    // trickles bytes is cut off when it passes, whatever its pace.
    Lowest().expires_after(Ms(core_->options.read_timeout_ms));
    ScanHeader();
  }

  // Beast silently unfolds obs-fold header lines (RFC 9112 section 5.2), so they can only
  // be seen in the raw bytes: collect the whole header block first (more than
  // header_limit bytes: 431), refuse folding with 400, then let Beast parse it.
  void ScanHeader() {
    const std::string_view data(static_cast<const char*>(buffer_.data().data()), buffer_.size());
    const size_t end = HeaderBlockEnd(data);
    if (end == std::string_view::npos && data.size() <= core_->options.header_limit) {
      stream_.async_read_some(buffer_.prepare(kFirstReadSize),
                              [self = this->shared_from_this()](beast::error_code ec, size_t n) {
                                if (self->state_ == State::kClosed) return;
                                if (ec) return self->HardClose();  // timeout, reset, EOF
                                self->buffer_.commit(n);
                                self->ScanHeader();
                              });
      return;
    }
    // Beast applies header_limit to each parse window, not to the whole block (fields
    // parsed from an earlier read no longer count), so the limit is enforced here.
    const size_t block = end == std::string_view::npos ? data.size() : end + 2;
    if (block > core_->options.header_limit) {
      if (auto error = ReadErrorAnswer(bhttp::error::header_limit, core_->options)) {
        return WriteEarlyError(error->status, error->code, error->message);
      }
    }
    if (end != std::string_view::npos && HasObsFold(data.substr(0, end))) {
      return WriteEarlyError(400, kBadRequestCode,
                             "obsolete line folding (obs-fold) in a header is not accepted");
    }
    bhttp::async_read_header(
        stream_, buffer_, *parser_,
        [self = this->shared_from_this()](beast::error_code ec, size_t) { self->OnHeader(ec); });
  }

  void OnHeader(beast::error_code ec) {
    if (state_ == State::kClosed) return;
    if (ec) return OnReadError(ec);
    const auto& req = parser_->get();
    // Request smuggling (request_checks.h).
    if (auto error = CheckRequestHeader(req)) {
      return WriteEarlyError(error->status, error->code, error->message);
    }
    // Auth before body: a request the handler would refuse for its token is answered
    // now, before any body byte is read or continued.
    if (core_->options.header_check) {
      Request header;
      header.method = std::string(req.method_string());
      header.target = std::string(req.target());
      for (const auto& field : req) {
        header.headers.emplace_back(core::AsciiLower(Sv(field.name_string())),
                                    std::string(field.value().data(), field.value().size()));
      }
      header.remote_address = remote_;
      header.client_cert_verified = client_cert_verified_;
      header.client_identities = client_identities_;
      if (std::optional<Response> refused = core_->options.header_check(header)) {
        version_ = req.version();
        keep_alive_ = false;
        head_ = false;
        counted_ = false;
        return Write(std::move(*refused));
      }
    }
    if (!parser_->is_done() && req.version() >= 11 &&
        IEquals(core::TrimSpaceTab(Sv(req[bhttp::field::expect])), "100-continue")) {
      continue_.emplace(bhttp::status::continue_, req.version());
      bhttp::async_write(stream_, *continue_,
                         [self = this->shared_from_this()](beast::error_code wec, size_t) {
                           if (wec || self->state_ == State::kClosed) return self->HardClose();
                           self->ReadBody();
                         });
      return;
    }
    ReadBody();
  }

  void ReadBody() {
    if (parser_->is_done()) return OnRequest();
    bhttp::async_read(stream_, buffer_, *parser_,
                      [self = this->shared_from_this()](beast::error_code ec, size_t) {
                        if (self->state_ == State::kClosed) return;
                        if (ec) return self->OnReadError(ec);
                        self->OnRequest();
                      });
  }

  void OnReadError(beast::error_code ec) {
    if (auto error = ReadErrorAnswer(ec, core_->options)) {
      return WriteEarlyError(error->status, error->code, error->message);
    }
    // Timeout, reset, EOF in the middle of a request: nobody to answer.
    HardClose();
  }

  // An answer the server gives on its own (the handler never saw the request); the
  // connection closes after it because the rest of the stream cannot be trusted.
  void WriteEarlyError(int status, std::string_view code, const std::string& message) {
    version_ = 11;
    keep_alive_ = false;
    head_ = false;
    counted_ = false;
    core_->EarlyAnswer(status);
    Write(ErrorResponse(status, code, message));
  }

  void OnRequest() {
    state_ = State::kHandling;
    auto& msg = parser_->get();
    version_ = msg.version();
    keep_alive_ = msg.keep_alive();
    head_ = msg.method() == bhttp::verb::head;
    Request request = ToRequest(std::move(msg), remote_);
    request.client_cert_verified = client_cert_verified_;
    request.client_identities = client_identities_;
    parser_.reset();
    {
      std::lock_guard<std::mutex> lock(core_->mu);
      ++core_->in_flight;
    }
    counted_ = true;
    auto responder = std::make_shared<Responder>(this->shared_from_this());
    Respond respond = [responder](Response response) { responder->Call(std::move(response)); };
    try {
      core_->handler(std::move(request), std::move(respond));
    } catch (const std::exception& e) {
      core::LogError("http_handler_exception", {{"what", e.what()}});
      responder->Call(ErrorResponse(500, ErrorCodeName(ErrorCode::kInternal), "internal error"));
    } catch (...) {
      core::LogError("http_handler_exception", {{"what", "unknown"}});
      responder->Call(ErrorResponse(500, ErrorCodeName(ErrorCode::kInternal), "internal error"));
    }
  }

  // Any thread. After Stop the io_context is no longer run, so an answer arriving then is
  // dropped rather than queued behind a stopped loop.
  void Post(Response response) {
    std::lock_guard<std::mutex> lock(core_->mu);
    if (core_->stopped) return;
    asio::post(stream_.get_executor(),
               [self = this->shared_from_this(), r = std::move(response)]() mutable {
                 self->Write(std::move(r));
               });
  }

  void Write(Response r) {
    if (state_ == State::kClosed) {
      // The connection was closed while the handler worked (Stop, or a hard error).
      FinishRequest();
      return;
    }
    state_ = State::kWriting;
    ++requests_;
    if (r.authenticated && !authenticated_) {
      authenticated_ = true;  // now one of the terminals' connections
      core_->Authenticated(remote_);
    }
    response_.emplace();
    response_->version(version_);
    if (r.status < 100 || r.status > 999) {
      core::LogError("http_bad_status", {{"status", r.status}});
      r = ErrorResponse(500, ErrorCodeName(ErrorCode::kInternal), "internal error");
    }
    response_->result(static_cast<unsigned>(r.status));
    response_->set(bhttp::field::server, "machub");
    response_->set(bhttp::field::content_type, r.content_type);
    for (auto& [name, value] : r.headers) {
      // The framing headers are the server's business.
      if (IEquals(name, "content-length") || IEquals(name, "transfer-encoding") ||
          IEquals(name, "connection")) {
        continue;
      }
      response_->insert(name, value);
    }
    const bool keep = keep_alive_ && !core_->draining.load();
    response_->keep_alive(keep);
    response_->body() = std::move(r.body);
    response_->prepare_payload();
    if (head_) response_->body().clear();  // Content-Length stays that of the GET answer
    Lowest().expires_after(Ms(core_->options.write_timeout_ms));
    bhttp::async_write(stream_, *response_,
                       [self = this->shared_from_this(), keep](beast::error_code ec, size_t) {
                         self->response_.reset();
                         self->FinishRequest();
                         if (self->state_ == State::kClosed) return;
                         if (ec) return self->HardClose();
                         if (!keep) return self->GracefulClose();
                         self->ReadRequest();
                       });
  }

  void FinishRequest() {
    if (!counted_) return;
    counted_ = false;
    core_->RequestDone();
  }

  void GracefulClose() {
    if (state_ == State::kClosed || state_ == State::kClosing) return;
    state_ = State::kClosing;
    Lowest().expires_after(Ms(std::min(kLingerMs, core_->options.read_timeout_ms)));
    if constexpr (kTls) {
      stream_.async_shutdown(
          [self = this->shared_from_this()](beast::error_code) { self->HardClose(); });
    } else {
      beast::error_code ec;
      Lowest().socket().shutdown(tcp::socket::shutdown_send, ec);
      if (ec) return HardClose();
      Linger();
    }
  }

  void Linger() {
    linger_buffer_.resize(kFirstReadSize);
    Lowest().async_read_some(asio::buffer(linger_buffer_), [self = this->shared_from_this()](
                                                               beast::error_code ec, size_t n) {
      self->lingered_ += n;
      if (ec || self->state_ == State::kClosed || self->lingered_ > kLingerMaxBytes) {
        return self->HardClose();
      }
      self->Linger();
    });
  }

  void HardClose() {
    if (state_ == State::kClosed) return;
    state_ = State::kClosed;
    beast::error_code ec;
    Lowest().socket().shutdown(tcp::socket::shutdown_both, ec);
    Lowest().close();
    if (!closed_) {
      closed_ = true;
      core_->ConnectionClosed(remote_, authenticated_);
    }
  }

  const std::shared_ptr<Core> core_;  // first: destroyed after the stream
  Stream stream_;
  const std::string remote_;
  beast::flat_buffer buffer_;
  std::optional<bhttp::request_parser<bhttp::string_body>> parser_;
  std::optional<bhttp::response<bhttp::empty_body>> continue_;
  std::optional<bhttp::response<bhttp::string_body>> response_;
  std::string linger_buffer_;
  size_t lingered_ = 0;
  State state_ = State::kIdle;
  unsigned version_ = 11;
  bool keep_alive_ = false;
  bool head_ = false;
  bool counted_ = false;        // this request is in core_->in_flight
  bool closed_ = false;         // core_->connections already decremented
  bool authenticated_ = false;  // an answer said its request authenticated
  int64_t requests_ = 0;        // answers written on this connection
  bool client_cert_verified_ = false;
  std::vector<std::string> client_identities_;  // of the verified client certificate
};

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
      if (core_->tls) {
        std::make_shared<Session<true>>(core_, std::move(socket), std::move(remote_text))->Start();
      } else {
        std::make_shared<Session<false>>(core_, std::move(socket), std::move(remote_text))->Start();
      }
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
