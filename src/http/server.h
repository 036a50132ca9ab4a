#pragma once
// An asynchronous HTTP/1.1 server (Boost.Beast on Asio) for many keep-alive terminal
// connections: a few I/O threads, no thread per connection.
//
// Each connection reads one request at a time (read timeout covers headers and body),
// hands it to the Handler, and writes the answer when the handler calls `respond`
// (from any thread, exactly once; a Respond dropped uncalled answers 500). Bodies over
// `body_limit` get 413 payload_too_large, a header block (request line included) over
// `header_limit` 431 payload_too_large, malformed requests, obs-fold header lines and
// Content-Length together with Transfer-Encoding 400 bad_request
// (api_error.h), then the connection closes — without calling the handler. Beyond
// `max_connections` a new connection gets 503 server_busy and is closed.
//
// Connection admission (docs/SECURITY.md): a new connection must start its first request
// within `first_request_timeout_ms` (not the idle timeout); connections that have not yet
// carried an authenticated request ("anonymous": the handler marks answers with
// Response::authenticated) number at most `max_connections_per_address` per remote
// address and may use only max_connections - reserved_connections slots (at least 1), so
// kept-alive terminals always find room. Authenticated connections are capped only by
// max_connections (many terminals may share one address behind NAT, or a load generator). A refused
// connection gets the same 503 server_busy (plain text) or is closed (TLS); on_refused is told why.
// Auth before body: header_check sees each request's header (body empty) before the body
// is read or "100 Continue" sent; an answer it returns is written at once, the body is
// never read, and the connection closes.
// With tls_cert_file/tls_key_file set, every connection is TLS (1.2 or later). With
// tls_client_ca_file set too (mutual TLS), every client must present a certificate that
// chains to that CA: a client without one, or with one from another CA, fails the
// handshake and never reaches the handler. The verified certificate's identities are
// handed to the handler in Request::client_identities (the server itself authorizes
// nothing by them).
// Certificate renewal without a restart: with tls_reload_check_ms > 0, at most that often
// (checked when a connection is accepted, on the accept strand) the server stats
// tls_cert_file and tls_key_file; when either changed (inode, size or mtime) it loads both,
// and when the key matches the certificate, every later connection gets the new
// certificate chain (connections already open keep theirs). A pair that does not load or
// match is logged (`tls_reload_failed`) and the previous one stays in use.

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/status.h"

namespace machub::http {

struct Request {
  std::string method;  // "GET", "POST", ...
  std::string target;  // path and query as sent: "/v1/sales?after_seq=3"
  std::vector<std::pair<std::string, std::string>> headers;  // names lower-cased
  std::string body;
  std::string remote_address;
  // Mutual TLS only: true when the connection presented a client certificate that the
  // server verified; then client_identities holds the certificate's subject CN (first, when
  // present) followed by its DNS and URI subjectAltNames. Empty/false otherwise.
  bool client_cert_verified = false;
  std::vector<std::string> client_identities;

  // First header with this lower-case name, or empty.
  std::string_view Header(std::string_view lower_name) const;
};

struct Response {
  int status = 200;
  std::string content_type = "application/json";
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;  // extra headers
  // Set by the handler when the request carried a valid token: the connection then
  // counts as a terminal's (reserved capacity, ServerOptions::reserved_connections).
  bool authenticated = false;
};

struct ServerOptions {
  std::string address = "127.0.0.1";
  uint16_t port = 8080;  // 0: any free port (see Server::port())
  int threads = 2;       // I/O threads
  size_t body_limit = 256 * 1024;
  size_t header_limit = 16 * 1024;
  int64_t read_timeout_ms = 15'000;   // one whole request, from its first byte
  int64_t write_timeout_ms = 15'000;  // one whole answer
  int64_t idle_timeout_ms = 120'000;  // a kept-alive connection with no request
  int max_connections = 2048;
  int64_t first_request_timeout_ms = 5'000;  // a new connection's first request must start
  int max_connections_per_address = 64;      // anonymous ones, per remote IP address
  int reserved_connections = 64;             // only for connections that authenticated
  std::string tls_cert_file;                 // PEM; both or neither
  std::string tls_key_file;
  // PEM file of CA certificates; when set (TLS only), client certificates are required
  // and verified against it.
  std::string tls_client_ca_file;
  // 0: the certificate is read once at Start. Otherwise see the file comment.
  int64_t tls_reload_check_ms = 0;

  // Optional hooks; each may run on any I/O thread at once, must be cheap and must not
  // throw. header_check: see above (nullopt lets the request continue). on_early_answer:
  // every answer the server writes without the handler (400, 413, 431, 503 server_busy)
  // with its status, for metrics. on_refused: a connection refused at accept, reason
  // "max_connections", "per_address" or "anonymous".
  std::function<std::optional<Response>(const Request&)> header_check;
  std::function<void(int status)> on_early_answer;
  std::function<void(std::string_view reason)> on_refused;
};

using Respond = std::function<void(Response)>;
using Handler = std::function<void(Request&&, Respond)>;

class Server {
 public:
  // Binds, listens and starts the I/O threads. Fails with kIoError when the address
  // cannot be bound, kInvalidArgument for unreadable TLS files.
  static Result<std::unique_ptr<Server>> Start(const ServerOptions& options, Handler handler);

  virtual ~Server() = default;
  // The bound port (useful with port 0).
  virtual uint16_t port() const = 0;
  // Open connections right now.
  virtual int connections() const = 0;
  // Stops accepting, lets in-flight requests finish (up to `drain_ms`), closes the rest
  // and joins the I/O threads. Idempotent. Never call it from a handler (an I/O thread).
  // A Respond called after Stop is dropped harmlessly.
  virtual void Stop(int64_t drain_ms = 5000) = 0;
};

}  // namespace machub::http
