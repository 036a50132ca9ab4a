#pragma once
// The terminal API (../../docs/API.md is the contract): routing, authentication,
// per-terminal rate limiting, JSON codecs and metrics around a Journal.
//
// ApiHandler::Handle is the http::Handler of the hub. It never blocks an I/O thread on a
// commit: POST /v1/sales hands the sale to Journal::Append and answers from its callback.
// Handle is thread-safe. `journal`, `metrics` (may be null: no metrics) and `clock` (null:
// the system clock) must outlive the handler and every Append callback still pending
// (close the journal before destroying them); the handler itself may go first. Error answers come
// from api_error.h; the HTTP-level codes the API adds are `method_not_allowed` (405, with Allow)
// and those of the server (bad_request, server_busy).
//
// Routes: POST /v1/sales, GET /v1/sales/{id}, GET /v1/sales?after_seq=&limit=,
// GET /v1/status, GET /healthz (no token), GET /metrics (token unless metrics_public),
// GET / (dashboard page, no token), and the store's day (issue #8):
//   POST /v1/events          drawer_open | cash_in | cash_out | drawer_close of the
//                            token's own terminal (core::DecodeEventRequest) ->
//                            Journal::AppendEvent; 201/200 with the stored entry
//   POST /v1/reports/z       manager: closes the business day (core::DecodeZRequest);
//                            201/200 with the stored z_report entry
//   GET  /v1/reports/x       manager: the open day's figures (core::ComputeReport over
//                            Journal::ReadOpenDay), ?currency=, and the open drawers
//   GET  /v1/reports/z/last  manager: the last Z report entry (404 before the first)
//   POST /v1/sales/{id}/payments/{index}/authorization
//                            the processor's answer to an offline card payment
//                            (core::DecodeAuthorizationRequest) by the sale's terminal or
//                            a manager -> Journal::AppendEvent; 201/200 with the entry
//   GET  /v1/offline-payments manager: ?state=outstanding|declined|approved|voided|all
//   GET  /v1/offline         manager: exposure against each limit (also in /v1/status)
//   GET  /v1/alerts          manager: the alerts raised now (also in /v1/status)
//   GET  /v1/drawers         open drawers with their expected cash and the sessions
//                            closed in the open day: every terminal's for a manager
//                            token, its own for a terminal token
// Store events answer from the journal's callback, after the commit is durable, with the
// entry read back by id (GET /v1/sales/{id} form) on the writer thread: one indexed read
// per event, which are rare. Manager-only routes refuse a terminal token with 403
// forbidden before the body is read. The report reads run on the handler's own report
// thread (ApiOptions::report_queue_max). Mutual TLS (Request::client_cert_verified): the
// token's terminal must also be one of the client certificate's identities, else 403
// forbidden — so a sale's terminal_id must match token AND certificate (defence in
// depth: a stolen token is useless without the terminal's key, and a copied
// certificate without its token). Every authenticated request counts against the
// terminal's rate limit before its body is decoded. A `limit` above list_limit_max is
// clamped to it; a non-numeric or negative after_seq, or a limit < 1, is 422.

#include <cstdint>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "core/clock.h"
#include "core/metrics.h"
#include "http/server.h"
#include "http/token.h"
#include "journal/sale_journal.h"

namespace machub::http {

struct ApiOptions {
  std::string store_id = "S001";
  std::vector<TerminalToken> tokens;
  double rate_per_terminal = 50.0;  // sustained requests/s per terminal; <= 0: unlimited
  double rate_burst = 100.0;        // bucket size
  bool metrics_public = false;      // /metrics without a token
  int list_limit_max = 1000;        // GET /v1/sales?limit= cap
  // GET /v1/reports/x, /v1/reports/z/last and /v1/drawers read and decode the whole open
  // day (tens of ms for a few thousand entries): they run on one report thread of the
  // handler, never on an I/O thread, one at a time. More than report_queue_max waiting:
  // 503 server_busy (Retry-After: 1). reports_inline: run them on the calling thread
  // instead (tests and the fuzz target, which expect an answer before Handle returns).
  int report_queue_max = 32;
  bool reports_inline = false;
  // Offline card payments (issue #9): an outstanding one older than this raises the
  // alert offline_payment_overdue (config offline.max_age_h). `currency`: how exposure
  // figures are formatted while nothing is outstanding.
  int64_t offline_max_age_ms = int64_t{24} * 3600 * 1000;
  // The store's closing time in minutes after local midnight (config drawer.close_time):
  // a drawer opened before the last such time and still open raises
  // drawer_open_past_close. -1: no such alert.
  int drawer_close_minute = -1;
  std::string currency = "USD";
};

// Extra blocks of GET /v1/status that modules above http provide (cloud, backlog,
// catalog, ...). Each returns a JSON object (a value, not text: nothing is parsed again);
// a missing function, a throw or a value that is not an object gives the block's
// "disabled"/empty default (and a log line).
struct StatusProviders {
  using Block = std::function<nlohmann::ordered_json()>;
  Block cloud;    // {"state": ..., ...}
  Block backlog;  // {"sales": ..., "bytes": ..., "oldest_sale_at": ...}
  Block catalog;  // {"version": ..., "fetched_at": ...}
  // The per-store configuration from the cloud (catalog/store_config.h): the
  // "store_config" block of /v1/status; absent when no function is given.
  Block store_config;
  // GET /v1/catalog: the cached catalog as {strong ETag, JSON body}; nullopt (or no
  // function) while the hub has none -> 404. Called on I/O threads: must not block.
  std::function<std::optional<std::pair<std::string, std::string>>()> catalog_body;
  // GET /v1/products/{sku}: one product's JSON, nullopt when unknown -> 404.
  std::function<std::optional<std::string>(const std::string& sku)> product;
  // Alerts of the modules above http (uploads, backlog, disk, quarantine): a JSON array
  // of {"code", "severity", figures...} raised now; the handler adds the offline alerts,
  // keeps each one's since-time while it stays raised and exports machub_alert{code}.
  Block alerts;
  // The hub's clock (http::ClockStatusJson): the "clock" block of /v1/status.
  Block clock;
};

class ApiHandler {
 public:
  ApiHandler(ApiOptions options, journal::SaleJournal* journal, core::MetricsRegistry* metrics,
             const core::Clock* clock, StatusProviders status = {});
  ~ApiHandler();

  void Handle(Request&& request, Respond respond);

  // ServerOptions::header_check: auth before body. For an authenticated route with a
  // missing, unknown or expired token (or from an address over its failed-authentication
  // limit), the 401/429 answer, counted and logged (rate-limited) like Handle's; nullopt
  // otherwise. Thread-safe. Failed authentications per remote address: a burst of 20,
  // then one per second; over it, every authenticated request from that address gets 429
  // rate_limited until the bucket refills. 401 log lines: at most one a second, with the
  // count of those not logged.
  std::optional<Response> CheckHeader(const Request& header);

  // ServerOptions::on_early_answer: counts an answer the server gave without the handler
  // (400, 413, 431, 503) in machub_http_requests_total{route="server"}. Thread-safe.
  void CountServerAnswer(int http_status);

  // The body of GET /v1/status (also used by `machub status --data`).
  std::string StatusJson();
  // The codes of the raised alerts (GET /v1/alerts' "alerts" array, in its order), for
  // sinks that publish them (the DynamoDB stores item). Thread-safe.
  std::vector<std::string> RaisedAlertCodes();

  // Optional: where the gauge machub_http_connections reads the open connection count
  // when /metrics is rendered (e.g. [&server] { return server->connections(); }).
  // Thread-safe; pass an empty function to detach before the source goes away.
  void SetConnectionsSource(std::function<int()> connections);

  // Replaces the accepted tokens (e.g. after the tokens file changed: a rotation).
  // Thread-safe; requests already authenticated are unaffected.
  void SetTokens(std::vector<TerminalToken> tokens);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// SHA-256 of a token as lower-case hex (what tokens files and configuration hold).
std::string HashToken(std::string_view token);

}  // namespace machub::http
