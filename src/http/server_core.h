#pragma once
// What the HTTP server's two halves share (internal to src/http): the listener side
// (server.cc: accept, admission, draining, TLS reload) and one connection's state machine
// (session.cc). Not part of the public API; server.h is.

#include <atomic>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/context.hpp>
#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>

#include "http/server.h"
#include "http/tls_identity.h"

namespace machub::http::server_internal {

namespace asio = boost::asio;
namespace ssl = boost::asio::ssl;
using tcp = boost::asio::ip::tcp;

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

  // Accept strand. Reloads the pair when a file changed since the last load (server.cc).
  void MaybeReloadTls();

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

// Starts serving one admitted connection (counted in core->connections and
// core->anonymous by the caller): plain HTTP, or TLS when core->tls is set.
void StartSession(const std::shared_ptr<Core>& core, tcp::socket socket, std::string remote);

}  // namespace machub::http::server_internal
