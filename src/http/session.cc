// One connection of the HTTP server: a Beast session template for plain HTTP and TLS
// whose state machine carries the connection admission that needs the request itself
// (first-request and idle deadlines, one deadline per request, auth before the body,
// early answers, linger before close). The listener that admits it is server.cc; the
// request-level checks are request_checks.cc.
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include <algorithm>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <exception>
#include <type_traits>

#include "core/log.h"
#include "core/strings.h"
#include "http/api_error.h"
#include "http/request_checks.h"
#include "http/server_core.h"

namespace machub::http::server_internal {
namespace {

namespace beast = boost::beast;
namespace bhttp = boost::beast::http;

// Bytes asked for while waiting for the first byte of a request: enough for a typical
// small request in one read, small enough not to matter for thousands of idle sessions.
constexpr size_t kFirstReadSize = 4096;
// How long a closing connection waits for the peer's FIN after our answer, and how much
// it reads meanwhile. Closing with unread bytes in the kernel buffer sends an RST, which
// can destroy the 413/400 answer before the client reads it.
constexpr int64_t kLingerMs = 1000;
constexpr size_t kLingerMaxBytes = 1 << 20;

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

}  // namespace

void StartSession(const std::shared_ptr<Core>& core, tcp::socket socket, std::string remote) {
  if (core->tls) {
    std::make_shared<Session<true>>(core, std::move(socket), std::move(remote))->Start();
  } else {
    std::make_shared<Session<false>>(core, std::move(socket), std::move(remote))->Start();
  }
}

}  // namespace machub::http::server_internal
