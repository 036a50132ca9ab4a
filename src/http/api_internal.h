#pragma once
// The API handler's inside, shared by its three files: api.cc (routing, authentication,
// the sale and event routes), api_reports.cc (X/Z reports and drawers) and api_status.cc
// (status, alerts, metrics, offline payments). Not a contract for other modules: only
// http/api.h is.

#include <algorithm>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include "core/report.h"
#include "http/api.h"
#include "http/api_error.h"
#include "http/auth.h"
#include "http/rate_limiter.h"

namespace machub::http {
namespace api_internal {

using ojson = nlohmann::ordered_json;

constexpr int kDefaultListLimit = 100;

enum class Route {
  kUnmatched,
  kDashboard,
  kDashboardJs,
  kHealthz,
  kMetrics,
  kStatus,
  kSales,
  kSale,
  kCatalog,
  kProduct,
  kEvents,
  kDrawers,
  kReportX,
  kReportZ,
  kReportZLast,
  kAuthorization,
  kOfflinePayments,
  kOffline,
  kAlerts
};

// The route label of metrics: the pattern, never the raw path (bounded cardinality).
std::string_view RouteLabel(Route route);
// The value of `key` in a query string (last occurrence wins), decoded.
std::optional<std::string> QueryParam(std::string_view query, std::string_view key);
// Plain decimal digits only (no sign, no spaces), fits int64.
std::optional<int64_t> ParseNonNegative(std::string_view text);
// True when `method` on `route` needs a manager token.
bool NeedsManager(Route route, std::string_view method);
// A JSON answer (Cache-Control: no-store).
Response JsonResponse(int status, std::string body);
// Compact JSON; invalid UTF-8 replaced, never thrown on.
std::string Dump(const ojson& value);

// At most this many entries are read back to recompute a drawer session that was opened
// before the last Z report (GET /v1/reports/x, /v1/drawers).
constexpr size_t kMaxDrawerScan = 1'000'000;

struct OpenDrawer {
  std::string terminal_id;
  int64_t opened_seq = 0;
  // Its figures so far; nullopt when they cannot be computed (its drawer_open was pruned
  // after upload, or it lies more than kMaxDrawerScan entries back).
  std::optional<core::DrawerSession> session;
};

// The open business day as the report routes show it.
struct DayFigures {
  journal::SaleJournal::OpenDay day;
  std::string currency;  // a known ISO 4217 code
  core::ReportFigures figures;
  std::vector<OpenDrawer> open;  // in the order of ReadOpenDay's open_drawers
};

// One thread that runs queued tasks in order (the report routes). The destructor runs
// what is still queued, then joins.
class TaskThread {
 public:
  explicit TaskThread(size_t max_queued) : max_queued_(max_queued) {}
  ~TaskThread() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      stop_ = true;
    }
    cv_.notify_all();
    if (thread_.joinable()) thread_.join();
  }
  TaskThread(const TaskThread&) = delete;
  TaskThread& operator=(const TaskThread&) = delete;

  // False (task not taken) when max_queued tasks are already waiting.
  bool Post(std::function<void()> task) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (queue_.size() >= max_queued_) return false;
      queue_.push_back(std::move(task));
      if (!thread_.joinable()) thread_ = std::thread([this] { Run(); });  // on first use
    }
    cv_.notify_one();
    return true;
  }

 private:
  void Run() {
    std::unique_lock<std::mutex> lock(mu_);
    for (;;) {
      cv_.wait(lock, [this] { return stop_ || !queue_.empty(); });
      if (queue_.empty()) return;  // stop_ and nothing left
      std::function<void()> task = std::move(queue_.front());
      queue_.pop_front();
      lock.unlock();
      task();
      lock.lock();
    }
  }

  const size_t max_queued_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::function<void()>> queue_;
  bool stop_ = false;
  std::thread thread_;
};

}  // namespace api_internal

struct ApiHandler::Impl {
  using DayFigures = api_internal::DayFigures;
  using Route = api_internal::Route;
  using TaskThread = api_internal::TaskThread;
  using ojson = api_internal::ojson;

  Impl(ApiOptions opts, journal::SaleJournal* j, core::MetricsRegistry* m, const core::Clock* c,
       StatusProviders s)
      : options(std::move(opts)),
        journal(j),
        metrics(m),
        clock(c != nullptr ? c : &core::SystemClock()),
        status(std::move(s)),
        auth(std::make_shared<const TokenAuthenticator>(options.tokens)),
        limiter(options.rate_per_terminal, options.rate_burst),
        start_us(clock->MonotonicUs()),
        reports(static_cast<size_t>(std::max(1, options.report_queue_max))) {}

  const ApiOptions options;
  journal::SaleJournal* const journal;
  core::MetricsRegistry* const metrics;
  const core::Clock* const clock;
  const StatusProviders status;
  std::mutex auth_mu;
  std::shared_ptr<const TokenAuthenticator> auth;  // replaced whole by SetTokens

  std::shared_ptr<const TokenAuthenticator> Authenticator() {
    std::lock_guard<std::mutex> lock(auth_mu);
    return auth;
  }
  RateLimiter limiter;
  // Failed authentications per remote address: a burst of kAuthFailureBurst, then one
  // per second; an address over it gets 429 for every authenticated route, whatever token.
  static constexpr double kAuthFailureRate = 1.0;
  static constexpr double kAuthFailureBurst = 20.0;
  RateLimiter auth_failures{kAuthFailureRate, kAuthFailureBurst};
  LogThrottle unauthorized_log;  // at most one http_unauthorized line a second
  const int64_t start_us;

  std::mutex connections_mu;
  std::function<int()> connections;
  // Last member: destroyed (drained and joined) first, while everything above still lives.
  TaskThread reports;

  // Runs a report route on the report thread (or inline, ApiOptions::reports_inline).
  void OnReportThread(std::function<void()> task, const Respond& respond) {
    if (options.reports_inline) return task();
    if (!reports.Post(std::move(task))) {
      Response busy = ErrorResponse(503, kServerBusyCode, "too many report requests waiting");
      busy.headers.emplace_back("Retry-After", "1");
      respond(std::move(busy));
    }
  }

  void Handle(Request&& request, Respond respond);

  // Wraps `respond` so that every answer is counted and timed, whatever thread answers.
  // Captures the registry and clock, not `this`: a journal callback may run after the
  // handler is gone.
  Respond Instrument(Route route, int64_t start, Respond respond) {
    if (metrics == nullptr) return respond;
    return [metrics = metrics, clock = clock, route, start,
            respond = std::move(respond)](Response response) {
      const std::string label(api_internal::RouteLabel(route));
      metrics
          ->GetCounter("machub_http_requests_total", "HTTP requests answered, by route and status",
                       {{"route", label}, {"status", std::to_string(response.status)}})
          .Inc();
      metrics
          ->GetHistogram("machub_http_request_duration_seconds",
                         "Time from request to answer, by route", core::LatencyBuckets(),
                         {{"route", label}})
          .Observe(static_cast<double>(clock->MonotonicUs() - start) / 1e6);
      respond(std::move(response));
    };
  }

  // The authenticated principal, or the error answer (401, 403, 429) already sent. A
  // terminal token on a manager-only route is 403 `forbidden`.
  std::optional<Principal> Authorize(const Request& request, Route route, const Respond& respond) {
    const int64_t now_us = clock->MonotonicUs();
    if (const int64_t wait_s = auth_failures.Peek(request.remote_address, now_us); wait_s > 0) {
      CountAuthFailure("too_many_failures");
      Response response = ErrorResponse(
          Status(ErrorCode::kRateLimited, "too many failed authentications from this address"));
      response.headers.emplace_back("Retry-After", std::to_string(wait_s));
      respond(std::move(response));
      return std::nullopt;
    }
    Result<Principal> principal =
        Authenticator()->Authenticate(request.Header("authorization"), clock->NowMs());
    if (!principal.ok()) {
      const bool missing = BearerToken(request.Header("authorization")).empty();
      const char* reason = missing                                           ? "missing"
                           : principal.status().message() == "token expired" ? "expired"
                                                                             : "unknown";
      CountAuthFailure(reason);
      (void)auth_failures.Acquire(request.remote_address, now_us);
      int64_t suppressed = 0;
      if (unauthorized_log.Allow(now_us, &suppressed)) {
        core::LogWarn("http_unauthorized", {{"remote", request.remote_address},
                                            {"route", api_internal::RouteLabel(route)},
                                            {"reason", reason},
                                            {"not_logged_since_last", suppressed}});
      }
      respond(ErrorResponse(principal.status()));
      return std::nullopt;
    }
    const std::string* terminal = &principal->terminal_id;
    // Mutual TLS: the token must belong to the terminal the certificate names.
    if (request.client_cert_verified &&
        std::find(request.client_identities.begin(), request.client_identities.end(), *terminal) ==
            request.client_identities.end()) {
      CountAuthFailure("certificate_mismatch");
      core::LogWarn("http_forbidden", {{"remote", request.remote_address},
                                       {"route", api_internal::RouteLabel(route)},
                                       {"token_terminal", *terminal},
                                       {"reason", "certificate_mismatch"}});
      respond(ErrorResponse(Status(ErrorCode::kForbidden,
                                   "the token's terminal does not match the client certificate")));
      return std::nullopt;
    }
    if (principal->role != Role::kManager && api_internal::NeedsManager(route, request.method)) {
      CountAuthFailure("needs_manager");
      core::LogWarn("http_forbidden", {{"remote", request.remote_address},
                                       {"route", api_internal::RouteLabel(route)},
                                       {"token_terminal", *terminal},
                                       {"reason", "needs_manager"}});
      respond(ErrorResponse(Status(ErrorCode::kForbidden,
                                   "this route needs a manager token (machub token create "
                                   "--role manager)")));
      return std::nullopt;
    }
    const int64_t retry_after_s = limiter.Acquire(*terminal, clock->MonotonicUs());
    if (retry_after_s > 0) {
      if (metrics != nullptr) {
        metrics
            ->GetCounter("machub_http_rate_limited_total",
                         "Requests refused by the per-terminal rate limit",
                         {{"terminal", *terminal}})
            .Inc();
      }
      Response response =
          ErrorResponse(Status(ErrorCode::kRateLimited, "too many requests from this terminal"));
      response.headers.emplace_back("Retry-After", std::to_string(retry_after_s));
      respond(std::move(response));
      return std::nullopt;
    }
    return std::move(*principal);
  }

  void CountAuthFailure(std::string_view reason) {
    if (metrics == nullptr) return;
    metrics
        ->GetCounter("machub_http_auth_failures_total",
                     "Requests refused by authentication (missing/unknown token, other terminal)",
                     {{"reason", std::string(reason)}})
        .Inc();
  }

  std::optional<Response> CheckHeader(const Request& header);
  void CountServerAnswer(int http_status);
  void PostSale(const Request& request, const std::string& terminal, Respond respond);
  void GetSale(const std::string& id, const Respond& respond);
  void GetCatalog(const Request& request, const Respond& respond);
  void ListSales(std::string_view query, const Respond& respond);
  void PostEvent(const Request& request, const std::string& terminal, Respond respond);
  void PostZReport(const Request& request, const std::string& terminal, Respond respond);
  void GetXReport(std::string_view query, const Respond& respond);
  void GetLastZReport(const Respond& respond);
  void GetDrawers(std::string_view query, const Principal& principal, const Respond& respond);
  // 403 for a body naming another terminal than the token's (logged without the value).
  void RefuseOtherTerminal(const Request& request, const std::string& terminal,
                           const Respond& respond);
  // The open day with its figures (GET /v1/reports/x, /v1/drawers).
  Result<DayFigures> ReadDay(std::string_view query);
  // Journal entries first_seq..last_seq read through List (drawers opened before the
  // last Z report); stops early (fewer entries) beyond kMaxDrawerScan entries.
  Result<std::vector<core::JournalEntry>> ReadEntries(int64_t first_seq, int64_t last_seq);
  void Healthz(const Respond& respond);
  void Metrics(const Respond& respond);
  std::string StatusJson();
  void PostAuthorization(const Request& request, const Principal& principal,
                         const std::string& sale_id, int64_t index, Respond respond);
  void ListOfflinePayments(std::string_view query, const Respond& respond);
  // The offline exposure against each limit (GET /v1/offline, /v1/status "offline").
  Result<ojson> OfflineJson();
  // The current alerts (GET /v1/alerts, /v1/status "alerts"), oldest first; also sets the
  // machub_alert gauges.
  ojson AlertsJson();
  // drawer_open_past_close's figures, nullopt when no drawer is open past the close.
  std::optional<ojson> DrawersPastCloseAlert(int64_t now);

  // since-times of the alerts seen raised (code -> ms), forgotten when they clear.
  std::mutex alerts_mu;
  std::map<std::string, int64_t> alert_since;
};

}  // namespace machub::http
