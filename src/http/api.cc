#include "http/api.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <condition_variable>
#include <cstdio>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <string_view>
#include <thread>
#include <utility>

#include "core/currency.h"
#include "core/log.h"
#include "core/money.h"
#include "core/report.h"
#include "core/sale_codec.h"
#include "core/sha256.h"
#include "core/store_event.h"
#include "core/time_format.h"
#include "http/api_error.h"
#include "http/auth.h"
#include "http/dashboard.h"
#include "http/rate_limiter.h"

#ifndef MACHUB_VERSION
#define MACHUB_VERSION "unknown"
#endif

namespace machub::http {
namespace {

using ojson = nlohmann::ordered_json;

constexpr int kDefaultListLimit = 100;
constexpr std::string_view kJson = "application/json";
constexpr std::string_view kPrometheus = "text/plain; version=0.0.4; charset=utf-8";

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
std::string_view RouteLabel(Route route) {
  switch (route) {
    case Route::kDashboard:
      return "/";
    case Route::kDashboardJs:
      return "/dashboard.js";
    case Route::kHealthz:
      return "/healthz";
    case Route::kMetrics:
      return "/metrics";
    case Route::kStatus:
      return "/v1/status";
    case Route::kSales:
      return "/v1/sales";
    case Route::kSale:
      return "/v1/sales/{id}";
    case Route::kCatalog:
      return "/v1/catalog";
    case Route::kProduct:
      return "/v1/products/{sku}";
    case Route::kEvents:
      return "/v1/events";
    case Route::kDrawers:
      return "/v1/drawers";
    case Route::kReportX:
      return "/v1/reports/x";
    case Route::kReportZ:
      return "/v1/reports/z";
    case Route::kReportZLast:
      return "/v1/reports/z/last";
    case Route::kAuthorization:
      return "/v1/sales/{id}/payments/{index}/authorization";
    case Route::kOfflinePayments:
      return "/v1/offline-payments";
    case Route::kOffline:
      return "/v1/offline";
    case Route::kAlerts:
      return "/v1/alerts";
    case Route::kUnmatched:
      break;
  }
  return "unmatched";
}

// Manager-only: the store's status, its metrics, the list of all sales and the reports
// (X, closing the day with a Z, the last Z). A terminal reads one sale by id (for a
// refund), the catalog and products, its own drawer session, and posts its own entries.
bool NeedsManager(Route route, std::string_view method) {
  return route == Route::kStatus || route == Route::kMetrics ||
         (route == Route::kSales && method == "GET") || route == Route::kReportX ||
         route == Route::kReportZ || route == Route::kReportZLast ||
         route == Route::kOfflinePayments || route == Route::kOffline || route == Route::kAlerts;
}

std::string_view AllowedMethods(Route route) {
  switch (route) {
    case Route::kSales:
      return "GET, POST";
    case Route::kEvents:
    case Route::kReportZ:
    case Route::kAuthorization:
      return "POST";
    default:
      return "GET";
  }
}

bool MethodAllowed(Route route, std::string_view method) {
  const std::string_view allowed = AllowedMethods(route);
  if (method == "GET") return allowed.find("GET") != std::string_view::npos;
  if (method == "POST") return allowed.find("POST") != std::string_view::npos;
  return false;
}

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// %XX-decoding ("+" is a space only in queries). Nullopt for a broken escape.
std::optional<std::string> PercentDecode(std::string_view in, bool plus_is_space) {
  std::string out;
  out.reserve(in.size());
  for (size_t i = 0; i < in.size(); ++i) {
    if (in[i] == '%') {
      if (i + 2 >= in.size()) return std::nullopt;
      const int hi = HexValue(in[i + 1]);
      const int lo = HexValue(in[i + 2]);
      if (hi < 0 || lo < 0) return std::nullopt;
      out.push_back(static_cast<char>(hi * 16 + lo));
      i += 2;
    } else if (plus_is_space && in[i] == '+') {
      out.push_back(' ');
    } else {
      out.push_back(in[i]);
    }
  }
  return out;
}

std::optional<int64_t> ParseNonNegative(std::string_view text);

Route Match(std::string_view path, std::string* id, int64_t* index = nullptr) {
  if (path == "/") return Route::kDashboard;
  if (path == "/dashboard.js") return Route::kDashboardJs;
  if (path == "/healthz") return Route::kHealthz;
  if (path == "/metrics") return Route::kMetrics;
  if (path == "/v1/status") return Route::kStatus;
  if (path == "/v1/sales") return Route::kSales;
  if (path == "/v1/catalog") return Route::kCatalog;
  if (path == "/v1/events") return Route::kEvents;
  if (path == "/v1/drawers") return Route::kDrawers;
  if (path == "/v1/reports/x") return Route::kReportX;
  if (path == "/v1/reports/z") return Route::kReportZ;
  if (path == "/v1/reports/z/last") return Route::kReportZLast;
  if (path == "/v1/offline-payments") return Route::kOfflinePayments;
  if (path == "/v1/offline") return Route::kOffline;
  if (path == "/v1/alerts") return Route::kAlerts;
  constexpr std::string_view kProductPrefix = "/v1/products/";
  if (path.substr(0, kProductPrefix.size()) == kProductPrefix) {
    const std::string_view raw = path.substr(kProductPrefix.size());
    if (raw.empty() || raw.find('/') != std::string_view::npos) return Route::kUnmatched;
    auto decoded = PercentDecode(raw, /*plus_is_space=*/false);
    if (!decoded || decoded->empty()) return Route::kUnmatched;
    *id = std::move(*decoded);
    return Route::kProduct;
  }
  constexpr std::string_view kSalePrefix = "/v1/sales/";
  if (path.substr(0, kSalePrefix.size()) == kSalePrefix) {
    std::string_view raw = path.substr(kSalePrefix.size());
    Route route = Route::kSale;
    // {id}/payments/{index}/authorization
    constexpr std::string_view kPayments = "/payments/";
    constexpr std::string_view kAuthorization = "/authorization";
    if (const size_t slash = raw.find('/'); slash != std::string_view::npos) {
      std::string_view rest = raw.substr(slash);
      if (rest.substr(0, kPayments.size()) != kPayments || rest.size() <= kAuthorization.size() ||
          rest.substr(rest.size() - kAuthorization.size()) != kAuthorization) {
        return Route::kUnmatched;
      }
      const std::string_view number =
          rest.substr(kPayments.size(), rest.size() - kPayments.size() - kAuthorization.size());
      const std::optional<int64_t> n = ParseNonNegative(number);
      if (!n || *n > 1000000) return Route::kUnmatched;
      if (index != nullptr) *index = *n;
      raw = raw.substr(0, slash);
      route = Route::kAuthorization;
    }
    if (raw.empty()) return Route::kUnmatched;
    auto decoded = PercentDecode(raw, /*plus_is_space=*/false);
    if (!decoded || decoded->empty()) return Route::kUnmatched;
    *id = std::move(*decoded);
    return route;
  }
  return Route::kUnmatched;
}

// The value of `key` in a query string (last occurrence wins), decoded.
std::optional<std::string> QueryParam(std::string_view query, std::string_view key) {
  std::optional<std::string> found;
  while (!query.empty()) {
    const size_t amp = query.find('&');
    const std::string_view pair = query.substr(0, amp);
    query = amp == std::string_view::npos ? std::string_view() : query.substr(amp + 1);
    const size_t eq = pair.find('=');
    auto name = PercentDecode(pair.substr(0, eq), true);
    if (!name || *name != key) continue;
    auto value = PercentDecode(eq == std::string_view::npos ? "" : pair.substr(eq + 1), true);
    found = value ? std::move(*value) : std::string("\x01");  // broken escape: not a number
  }
  return found;
}

// Plain decimal digits only (no sign, no spaces), fits int64.
std::optional<int64_t> ParseNonNegative(std::string_view text) {
  if (text.empty()) return std::nullopt;
  int64_t value = 0;
  const auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || ptr != text.data() + text.size() || text.front() == '-') {
    return std::nullopt;
  }
  return value;
}

Response JsonResponse(int status, std::string body) {
  Response response;
  response.status = status;
  response.content_type = std::string(kJson);
  response.body = std::move(body);
  response.headers.emplace_back("Cache-Control", "no-store");
  return response;
}

std::string Dump(const ojson& value) {
  return value.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

// A provider's JSON text, or `fallback` when it is missing or not a JSON object.
ojson ProvidedBlock(const std::function<std::string()>& provider, std::string_view name,
                    ojson fallback) {
  if (!provider) return fallback;
  std::string text;
  try {
    text = provider();
  } catch (const std::exception& e) {
    core::LogError("status_provider_failed", {{"block", name}, {"what", e.what()}});
    return fallback;
  }
  ojson parsed = ojson::parse(text, nullptr, /*allow_exceptions=*/false);
  if (parsed.is_discarded() || !parsed.is_object()) {
    core::LogError("status_provider_invalid", {{"block", name}});
    return fallback;
  }
  return parsed;
}

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

// The day's currency when none is asked for: the first entry's, else the last Z
// report's, else USD (the same choice as a Z report's, sale_journal.h).
std::string DefaultCurrency(const journal::SaleJournal::OpenDay& day) {
  for (const core::JournalEntry& entry : day.entries) {
    const std::string& code =
        entry.sale() != nullptr ? entry.sale()->currency : entry.event()->currency;
    if (core::FindCurrency(code) != nullptr) return code;
  }
  if (core::FindCurrency(day.last_z_currency) != nullptr) return day.last_z_currency;
  return "USD";
}

std::optional<core::DrawerSession> FindOpenSession(const core::ReportFigures& figures,
                                                   const std::string& terminal,
                                                   int64_t opened_seq) {
  for (const core::DrawerSession& session : figures.drawers) {
    if (session.terminal_id == terminal && session.opened_seq == opened_seq &&
        session.closed_seq == 0) {
      return session;
    }
  }
  return std::nullopt;
}

core::JournalEntry EntryOf(core::StoredSale stored) {
  core::JournalEntry entry;
  entry.seq = stored.seq;
  entry.receipt_no = std::move(stored.receipt_no);
  entry.received_at_ms = stored.received_at_ms;
  if (stored.event) {
    entry.body = std::move(*stored.event);
  } else {
    entry.body = std::move(stored.sale);
  }
  return entry;
}

ojson OpenDrawerJson(const OpenDrawer& drawer, int minor) {
  if (drawer.session) return core::DrawerSessionJson(*drawer.session, minor);
  ojson j;
  j["terminal_id"] = drawer.terminal_id;
  j["opened_seq"] = drawer.opened_seq;
  j["expected"] = nullptr;  // unknown: see OpenDrawer::session
  return j;
}

ojson LastZJson(const journal::SaleJournal::OpenDay& day) {
  if (day.last_z_seq == 0) return nullptr;
  ojson j;
  j["z_number"] = day.last_z_number;
  j["seq"] = day.last_z_seq;
  j["currency"] = day.last_z_currency;
  return j;
}

// A body's decoding error without the caller's own bearer token in it: error messages
// and field paths may quote client text (an unknown member's name), and a client that put
// its token into the body must not get it back in an answer (or a proxy's log).
Status WithoutToken(const Status& status, const Request& request) {
  const std::string_view token = BearerToken(request.Header("authorization"));
  if (token.empty()) return status;
  const bool in_message = status.message().find(token) != std::string::npos;
  const bool in_field = status.field().find(token) != std::string::npos;
  if (!in_message && !in_field) return status;
  Status scrubbed(status.code(), in_message ? "the request body is invalid" : status.message(),
                  in_field ? "" : status.field());
  for (const auto& [name, value] : status.details()) {
    if (value.find(token) == std::string::npos) {
      scrubbed = std::move(scrubbed).WithDetail(name, value);
    }
  }
  return scrubbed;
}

// The answer to a stored store event (POST /v1/events, POST /v1/reports/z): 201 when
// created, 200 for a replay, with the entry as GET /v1/sales/{id} shows it. Runs on the
// journal's writer thread after the commit; the one indexed read it does there is cheap
// and events are rare (a few per terminal and day). Should that read fail, the entry is
// still durable: the answer is then its receipt (id, seq, receipt_no, type, hash,
// received_at). `closing_terminal`: a Z report's token terminal, for the log.
journal::SaleJournal::AppendCallback EventAnswer(journal::SaleJournal* journal,
                                                 std::string closing_terminal, Respond respond) {
  return [journal, closing_terminal = std::move(closing_terminal),
          respond = std::move(respond)](Result<journal::Receipt> r) {
    if (!r.ok()) {
      if (HttpStatusFor(r.status().code()) >= 500) {
        core::LogError("event_not_stored", {{"error", r.status().ToString()}});
      }
      return respond(ErrorResponse(r.status()));
    }
    const journal::Receipt& receipt = *r;
    const int status = receipt.created ? 201 : 200;
    if (receipt.type == "z_report" && receipt.created) {
      core::LogInfo(
          "z_report_closed",
          {{"z", receipt.receipt_no}, {"seq", receipt.seq}, {"token_terminal", closing_terminal}});
    }
    Result<std::optional<core::StoredSale>> stored = journal->Get(receipt.id);
    if (stored.ok() && stored->has_value() && (*stored)->seq == receipt.seq) {
      return respond(JsonResponse(status, core::StoredSaleJson(**stored)));
    }
    core::LogWarn("event_read_back_failed",
                  {{"seq", receipt.seq},
                   {"error", stored.ok() ? std::string("not found") : stored.status().ToString()}});
    ojson body;
    body["id"] = receipt.id;
    body["seq"] = receipt.seq;
    body["receipt_no"] = receipt.receipt_no;
    body["type"] = receipt.type;
    body["hash"] = core::ToHex(receipt.hash);
    body["received_at"] = core::FormatRfc3339(receipt.received_at_ms);
    respond(JsonResponse(status, Dump(body)));
  };
}

// An offline limit (decimal string, empty = none) in minor units of `currency`, rounded
// down as the journal does (journal/offline.cc); -1 when there is none.
int64_t OfflineLimitMinor(const std::string& text, int minor_units) {
  if (text.empty()) return -1;
  Result<int64_t> milli = core::ParseDecimal(text, 3);
  if (!milli.ok()) return -1;
  int64_t scale = 1;
  for (int i = minor_units; i < 3; ++i) scale *= 10;
  return *milli / scale;
}

// {"exposure","limit","remaining","percent"} of one limit (limit, remaining, percent null
// without a limit).
ojson LimitJson(int64_t exposure, int64_t limit, int minor) {
  ojson out;
  out["exposure"] = core::FormatAmount(exposure, minor);
  if (limit < 0) {
    out["limit"] = nullptr;
    out["remaining"] = nullptr;
    out["percent"] = nullptr;
  } else {
    out["limit"] = core::FormatAmount(limit, minor);
    out["remaining"] = core::FormatAmount(std::max<int64_t>(0, limit - exposure), minor);
    out["percent"] =
        limit == 0
            ? (exposure > 0 ? 100.0 : 0.0)
            : std::round(1000.0 * static_cast<double>(exposure) / static_cast<double>(limit)) /
                  10.0;
  }
  return out;
}

}  // namespace

// Every alert code the hub raises (docs/OPERATIONS.md): each has a machub_alert gauge.
constexpr const char* kAlertCodes[] = {"offline_exposure_store_high",
                                       "offline_exposure_terminal_high",
                                       "offline_payment_overdue",
                                       "backlog_old",
                                       "uploads_failing",
                                       "batches_quarantined",
                                       "disk_low",
                                       "clock_untrusted",
                                       "clock_skew",
                                       "drawer_open_past_close"};

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

struct ApiHandler::Impl {
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
      const std::string label(RouteLabel(route));
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
                                            {"route", RouteLabel(route)},
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
                                       {"route", RouteLabel(route)},
                                       {"token_terminal", *terminal},
                                       {"reason", "certificate_mismatch"}});
      respond(ErrorResponse(Status(ErrorCode::kForbidden,
                                   "the token's terminal does not match the client certificate")));
      return std::nullopt;
    }
    if (principal->role != Role::kManager && NeedsManager(route, request.method)) {
      CountAuthFailure("needs_manager");
      core::LogWarn("http_forbidden", {{"remote", request.remote_address},
                                       {"route", RouteLabel(route)},
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

// Auth before body: the same decision Handle would take on the token, taken on the
// header alone. Only a refusal is answered here (counted like any answer); a valid token
// goes on to Handle, which also applies the rate limit.
std::optional<Response> ApiHandler::Impl::CheckHeader(const Request& header) {
  const std::string_view target = header.target;
  std::string id;
  const Route route = Match(target.substr(0, target.find('?')), &id);
  const bool needs_token = route != Route::kUnmatched && route != Route::kDashboard &&
                           route != Route::kDashboardJs && route != Route::kHealthz &&
                           !(route == Route::kMetrics && options.metrics_public);
  if (!needs_token || !MethodAllowed(route, header.method)) return std::nullopt;
  if (auth_failures.Peek(header.remote_address, clock->MonotonicUs()) == 0 &&
      Authenticator()->Authenticate(header.Header("authorization"), clock->NowMs()).ok()) {
    return std::nullopt;
  }
  std::optional<Response> answer;
  Respond capture = Instrument(route, clock->MonotonicUs(),
                               [&answer](Response response) { answer = std::move(response); });
  (void)Authorize(header, route, capture);
  return answer;
}

void ApiHandler::Impl::CountServerAnswer(int http_status) {
  if (metrics == nullptr) return;
  metrics
      ->GetCounter("machub_http_requests_total", "HTTP requests answered, by route and status",
                   {{"route", "server"}, {"status", std::to_string(http_status)}})
      .Inc();
}

void ApiHandler::Impl::Handle(Request&& request, Respond respond) {
  const int64_t start = clock->MonotonicUs();
  const std::string_view target = request.target;
  const size_t question = target.find('?');
  const std::string_view path = target.substr(0, question);
  const std::string_view query =
      question == std::string_view::npos ? std::string_view() : target.substr(question + 1);
  std::string id;
  int64_t payment_index = 0;
  const Route route = Match(path, &id, &payment_index);
  respond = Instrument(route, start, std::move(respond));

  if (route == Route::kUnmatched) {
    return respond(ErrorResponse(Status(ErrorCode::kNotFound, "no such resource")));
  }
  const bool is_post = request.method == "POST";
  if (!MethodAllowed(route, request.method)) {
    Response response = ErrorResponse(405, kMethodNotAllowedCode,
                                      request.method.size() <= 16
                                          ? "method " + request.method + " is not allowed here"
                                          : std::string("method not allowed here"));
    response.headers.emplace_back("Allow", std::string(AllowedMethods(route)));
    return respond(std::move(response));
  }

  switch (route) {
    case Route::kDashboard:
    case Route::kDashboardJs: {
      Response response;
      const bool page = route == Route::kDashboard;
      response.content_type = page ? "text/html; charset=utf-8" : "text/javascript; charset=utf-8";
      response.body = std::string(page ? kDashboardHtml : kDashboardJs);
      response.headers.emplace_back("Cache-Control", "no-cache");
      response.headers.emplace_back("Content-Security-Policy", std::string(kDashboardCsp));
      response.headers.emplace_back("X-Content-Type-Options", "nosniff");
      response.headers.emplace_back("Referrer-Policy", "no-referrer");
      return respond(std::move(response));
    }
    case Route::kHealthz:
      return Healthz(respond);
    case Route::kMetrics:
      if (!options.metrics_public && !Authorize(request, route, respond)) return;
      return Metrics(respond);
    default:
      break;
  }

  std::optional<Principal> principal = Authorize(request, route, respond);
  if (!principal) return;
  // The connection now belongs to a terminal (server.h: reserved capacity).
  respond = [inner = std::move(respond)](Response response) {
    response.authenticated = true;
    inner(std::move(response));
  };
  switch (route) {
    case Route::kStatus:
      return respond(JsonResponse(200, StatusJson()));
    case Route::kSale:
      return GetSale(id, respond);
    case Route::kCatalog:
      return GetCatalog(request, respond);
    case Route::kProduct: {
      std::optional<std::string> product = status.product ? status.product(id) : std::nullopt;
      if (!product) return respond(ErrorResponse(Status(ErrorCode::kNotFound, "no such product")));
      return respond(JsonResponse(200, std::move(*product)));
    }
    case Route::kSales:
      if (is_post) return PostSale(request, principal->terminal_id, std::move(respond));
      return ListSales(query, respond);
    case Route::kEvents:
      return PostEvent(request, principal->terminal_id, std::move(respond));
    case Route::kReportZ:
      return PostZReport(request, principal->terminal_id, std::move(respond));
    case Route::kAuthorization:
      return PostAuthorization(request, *principal, id, payment_index, std::move(respond));
    case Route::kOfflinePayments:
      return ListOfflinePayments(query, respond);
    case Route::kOffline: {
      Result<ojson> offline = OfflineJson();
      if (!offline.ok()) return respond(ErrorResponse(offline.status()));
      return respond(JsonResponse(200, Dump(*offline)));
    }
    case Route::kAlerts: {
      ojson body;
      body["alerts"] = AlertsJson();
      return respond(JsonResponse(200, Dump(body)));
    }
    case Route::kReportX:
      return OnReportThread(
          [this, query = std::string(query), respond] { GetXReport(query, respond); }, respond);
    case Route::kReportZLast:
      return OnReportThread([this, respond] { GetLastZReport(respond); }, respond);
    case Route::kDrawers:
      return OnReportThread([this, query = std::string(query), principal = *principal,
                             respond] { GetDrawers(query, principal, respond); },
                            respond);
    default:
      return respond(ErrorResponse(Status(ErrorCode::kInternal, "unrouted")));
  }
}

// A strong ETag from the catalog; If-None-Match with it (or "*") answers 304.
void ApiHandler::Impl::GetCatalog(const Request& request, const Respond& respond) {
  auto catalog = status.catalog_body ? status.catalog_body() : std::nullopt;
  if (!catalog) {
    return respond(ErrorResponse(Status(ErrorCode::kNotFound, "no catalog on this hub yet")));
  }
  const std::string& etag = catalog->first;
  const std::string_view if_none_match = request.Header("if-none-match");
  bool hit = false;
  for (size_t pos = 0; pos <= if_none_match.size() && !if_none_match.empty();) {
    size_t comma = if_none_match.find(',', pos);
    std::string_view tag = if_none_match.substr(
        pos, comma == std::string_view::npos ? std::string_view::npos : comma - pos);
    while (!tag.empty() && tag.front() == ' ') tag.remove_prefix(1);
    while (!tag.empty() && tag.back() == ' ') tag.remove_suffix(1);
    if (tag.substr(0, 2) == "W/") tag.remove_prefix(2);
    if (tag == "*" || tag == etag) hit = true;
    if (comma == std::string_view::npos) break;
    pos = comma + 1;
  }
  Response response = hit ? JsonResponse(304, "") : JsonResponse(200, catalog->second);
  response.headers.emplace_back("ETag", etag);
  respond(std::move(response));
}

void ApiHandler::Impl::PostSale(const Request& request, const std::string& terminal,
                                Respond respond) {
  Result<core::Sale> sale = core::DecodeSale(request.body);
  if (!sale.ok()) return respond(ErrorResponse(WithoutToken(sale.status(), request)));
  if (sale->terminal_id != terminal) return RefuseOtherTerminal(request, terminal, respond);
  // Answered from the journal's writer thread once the commit is on disk; the Respond
  // only posts the write to the connection's I/O thread.
  journal->Append(std::move(*sale), [respond = std::move(respond)](Result<journal::Receipt> r) {
    if (!r.ok()) {
      if (HttpStatusFor(r.status().code()) >= 500) {
        core::LogError("sale_not_stored", {{"error", r.status().ToString()}});
      }
      return respond(ErrorResponse(r.status()));
    }
    const journal::Receipt& receipt = *r;
    const core::Currency* currency = core::FindCurrency(receipt.currency);
    if (currency == nullptr) {
      core::LogError("receipt_unknown_currency", {{"id", receipt.id}});
      return respond(ErrorResponse(Status(ErrorCode::kInternal, "unknown currency")));
    }
    // Built only from the stored receipt, so a replay answers the very same bytes.
    ojson body;
    body["id"] = receipt.id;
    body["seq"] = receipt.seq;
    body["receipt_no"] = receipt.receipt_no;
    body["total"] = core::FormatAmount(receipt.total, currency->minor_units);
    body["change"] = core::FormatAmount(receipt.change, currency->minor_units);
    body["hash"] = core::ToHex(receipt.hash);
    body["received_at"] = core::FormatRfc3339(receipt.received_at_ms);
    respond(JsonResponse(receipt.created ? 201 : 200, Dump(body)));
  });
}

void ApiHandler::Impl::RefuseOtherTerminal(const Request& request, const std::string& terminal,
                                           const Respond& respond) {
  CountAuthFailure("other_terminal");
  // The offered terminal_id is neither logged nor echoed: it is client text (it passed
  // the card-number check, but a log line needs only the field's path).
  core::LogWarn("http_forbidden", {{"remote", request.remote_address},
                                   {"token_terminal", terminal},
                                   {"field", "terminal_id"},
                                   {"reason", "other_terminal"}});
  respond(ErrorResponse(Status(ErrorCode::kForbidden,
                               "terminal_id does not match the token's terminal", "terminal_id")));
}

void ApiHandler::Impl::PostEvent(const Request& request, const std::string& terminal,
                                 Respond respond) {
  Result<core::StoreEvent> event = core::DecodeEventRequest(request.body);
  if (!event.ok()) return respond(ErrorResponse(WithoutToken(event.status(), request)));
  if (event->terminal_id != terminal) return RefuseOtherTerminal(request, terminal, respond);
  journal->AppendEvent(std::move(*event), EventAnswer(journal, "", std::move(respond)));
}

void ApiHandler::Impl::PostZReport(const Request& request, const std::string& terminal,
                                   Respond respond) {
  Result<core::StoreEvent> z = core::DecodeZRequest(request.body);
  if (!z.ok()) return respond(ErrorResponse(WithoutToken(z.status(), request)));
  // terminal_id is optional here; when sent it must be the token's, as for every entry.
  if (!z->terminal_id.empty() && z->terminal_id != terminal) {
    return RefuseOtherTerminal(request, terminal, respond);
  }
  journal->AppendEvent(std::move(*z), EventAnswer(journal, terminal, std::move(respond)));
}

// The figures of the open business day in the currency asked for (?currency=), else the
// first entry's, else the last Z report's, else USD; and every open drawer's session,
// also those opened before the last Z report (read back from their drawer_open).
Result<DayFigures> ApiHandler::Impl::ReadDay(std::string_view query) {
  DayFigures out;
  if (auto asked = QueryParam(query, "currency")) {
    if (core::FindCurrency(*asked) == nullptr) {
      return Status(ErrorCode::kInvalidField,
                    "currency must be a known ISO 4217 code in upper case (\"USD\")", "currency");
    }
    out.currency = *asked;
  }
  ASSIGN_OR_RETURN(out.day, journal->ReadOpenDay());
  if (out.currency.empty()) out.currency = DefaultCurrency(out.day);
  ASSIGN_OR_RETURN(out.figures, core::ComputeReport(out.day.entries, out.currency));
  int64_t scan_from = 0;
  for (const auto& [terminal, opened_seq] : out.day.open_drawers) {
    OpenDrawer drawer{terminal, opened_seq, FindOpenSession(out.figures, terminal, opened_seq)};
    if (!drawer.session && (scan_from == 0 || opened_seq < scan_from)) scan_from = opened_seq;
    out.open.push_back(std::move(drawer));
  }
  if (scan_from > 0) {
    // A drawer left open over a Z report: its session starts before the open day.
    const int64_t upto = out.day.entries.empty() ? out.day.last_z_seq : out.day.entries.back().seq;
    ASSIGN_OR_RETURN(std::vector<core::JournalEntry> older, ReadEntries(scan_from, upto));
    ASSIGN_OR_RETURN(core::ReportFigures wider, core::ComputeReport(older, out.currency));
    for (OpenDrawer& drawer : out.open) {
      if (!drawer.session) {
        drawer.session = FindOpenSession(wider, drawer.terminal_id, drawer.opened_seq);
      }
    }
  }
  return out;
}

Result<std::vector<core::JournalEntry>> ApiHandler::Impl::ReadEntries(int64_t first_seq,
                                                                      int64_t last_seq) {
  constexpr int kPage = 1000;
  std::vector<core::JournalEntry> out;
  int64_t after = first_seq - 1;
  while (after < last_seq) {
    ASSIGN_OR_RETURN(std::vector<core::StoredSale> page, journal->List(after, kPage));
    if (page.empty()) break;
    for (core::StoredSale& stored : page) {
      if (stored.seq > last_seq) return out;
      out.push_back(EntryOf(std::move(stored)));
    }
    if (out.size() > kMaxDrawerScan) {
      // Too far back to recompute here: the session's figures are left unknown rather
      // than computed from part of it.
      core::LogWarn("drawer_scan_too_long", {{"from_seq", first_seq}, {"to_seq", last_seq}});
      out.clear();
      break;
    }
    after = page.back().seq;
  }
  return out;
}

void ApiHandler::Impl::GetXReport(std::string_view query, const Respond& respond) {
  Result<DayFigures> day = ReadDay(query);
  if (!day.ok()) return respond(ErrorResponse(day.status()));
  const int minor = core::FindCurrency(day->currency)->minor_units;
  ojson out;
  out["report"] = "x";
  out["store_id"] = options.store_id;
  out["generated_at"] = core::FormatRfc3339(clock->NowMs());
  out["currency"] = day->currency;
  out["last_z"] = LastZJson(day->day);
  out["figures"] = ojson::parse(core::ReportFiguresJson(day->figures));
  ojson open = ojson::array();
  for (const OpenDrawer& drawer : day->open) open.push_back(OpenDrawerJson(drawer, minor));
  out["open_drawers"] = std::move(open);
  respond(JsonResponse(200, Dump(out)));
}

void ApiHandler::Impl::GetDrawers(std::string_view query, const Principal& principal,
                                  const Respond& respond) {
  Result<DayFigures> day = ReadDay(query);
  if (!day.ok()) return respond(ErrorResponse(day.status()));
  // A terminal token sees its own terminal's drawer only; a manager every drawer.
  const bool all = principal.role == Role::kManager;
  auto visible = [&](const std::string& terminal) {
    return all || terminal == principal.terminal_id;
  };
  const int minor = core::FindCurrency(day->currency)->minor_units;
  ojson out;
  out["currency"] = day->currency;
  ojson open = ojson::array();
  for (const OpenDrawer& drawer : day->open) {
    if (visible(drawer.terminal_id)) open.push_back(OpenDrawerJson(drawer, minor));
  }
  out["open"] = std::move(open);
  ojson closed = ojson::array();
  for (const core::DrawerSession& session : day->figures.drawers) {
    if (session.closed_seq != 0 && visible(session.terminal_id)) {
      closed.push_back(core::DrawerSessionJson(session, minor));
    }
  }
  out["closed"] = std::move(closed);
  respond(JsonResponse(200, Dump(out)));
}

void ApiHandler::Impl::GetLastZReport(const Respond& respond) {
  Result<journal::SaleJournal::OpenDay> day = journal->ReadOpenDay();
  if (!day.ok()) return respond(ErrorResponse(day.status()));
  if (day->last_z_seq == 0) {
    return respond(ErrorResponse(Status(ErrorCode::kNotFound, "no Z report yet")));
  }
  Result<std::vector<core::StoredSale>> entry = journal->List(day->last_z_seq - 1, 1);
  if (!entry.ok()) return respond(ErrorResponse(entry.status()));
  if (entry->empty() || entry->front().seq != day->last_z_seq || !entry->front().is_event() ||
      entry->front().event->type != core::EventType::kZReport) {
    return respond(ErrorResponse(Status(
        ErrorCode::kNotFound, "Z" + std::to_string(day->last_z_number) +
                                  " is no longer stored on this hub (pruned after upload)")));
  }
  respond(JsonResponse(200, core::StoredSaleJson(entry->front())));
}

void ApiHandler::Impl::GetSale(const std::string& id, const Respond& respond) {
  Result<std::optional<core::StoredSale>> stored = journal->Get(id);
  if (!stored.ok()) return respond(ErrorResponse(stored.status()));
  if (!stored->has_value()) {
    return respond(ErrorResponse(Status(ErrorCode::kNotFound, "no sale with this id")));
  }
  respond(JsonResponse(200, core::StoredSaleJson(**stored)));
}

void ApiHandler::Impl::ListSales(std::string_view query, const Respond& respond) {
  int64_t after_seq = 0;
  int64_t limit = kDefaultListLimit;
  if (auto text = QueryParam(query, "after_seq")) {
    auto value = ParseNonNegative(*text);
    if (!value) {
      return respond(ErrorResponse(Status(
          ErrorCode::kInvalidField, "after_seq must be a non-negative integer", "after_seq")));
    }
    after_seq = *value;
  }
  if (auto text = QueryParam(query, "limit")) {
    auto value = ParseNonNegative(*text);
    if (!value || *value < 1) {
      return respond(ErrorResponse(
          Status(ErrorCode::kInvalidField, "limit must be a positive integer", "limit")));
    }
    limit = *value;
  }
  limit = std::min<int64_t>(limit, std::max(1, options.list_limit_max));
  Result<std::vector<core::StoredSale>> sales = journal->List(after_seq, static_cast<int>(limit));
  if (!sales.ok()) return respond(ErrorResponse(sales.status()));
  std::string body = "{\"sales\":[";
  int64_t next = after_seq;
  bool first = true;
  for (const core::StoredSale& stored : *sales) {
    if (!first) body += ',';
    first = false;
    body += core::StoredSaleJson(stored);
    next = stored.seq;
  }
  body += "],\"next_after_seq\":";
  body += std::to_string(next);
  body += '}';
  respond(JsonResponse(200, std::move(body)));
}

void ApiHandler::Impl::Healthz(const Respond& respond) {
  const Status health = journal->Health();
  if (!health.ok()) {
    // Whatever the journal reported, /healthz speaks of storage; the detail is logged.
    core::LogWarn("healthz_unhealthy", {{"error", health.ToString()}});
    return respond(ErrorResponse(
        Status(ErrorCode::kStorageUnavailable, "the journal cannot store sales right now")));
  }
  respond(JsonResponse(200, R"({"status":"ok"})"));
}

void ApiHandler::Impl::Metrics(const Respond& respond) {
  Response response;
  response.content_type = std::string(kPrometheus);
  response.headers.emplace_back("Cache-Control", "no-store");
  if (metrics != nullptr) {
    std::function<int()> source;
    {
      std::lock_guard<std::mutex> lock(connections_mu);
      source = connections;
    }
    if (source) {
      metrics->GetGauge("machub_http_connections", "Open HTTP connections").Set(source());
    }
    response.body = metrics->RenderText();
  }
  respond(std::move(response));
}

// POST /v1/sales/{id}/payments/{index}/authorization: the processor's answer to an offline
// card payment. A manager may record it for any sale; a terminal token only for a sale
// of its own terminal (the sale is read first: 404 when unknown, 403 when another
// terminal's). The journal judges the rest (payment_index, payment_resolved, replay).
void ApiHandler::Impl::PostAuthorization(const Request& request, const Principal& principal,
                                         const std::string& sale_id, int64_t index,
                                         Respond respond) {
  Result<core::StoreEvent> event = core::DecodeAuthorizationRequest(request.body, sale_id, index);
  if (!event.ok()) return respond(ErrorResponse(WithoutToken(event.status(), request)));
  if (principal.role != Role::kManager) {
    Result<std::optional<core::StoredSale>> sale = journal->Get(sale_id);
    if (!sale.ok()) return respond(ErrorResponse(sale.status()));
    if (!sale->has_value()) {
      return respond(
          ErrorResponse(Status(ErrorCode::kNotFound, "no sale with this id", "sale_id")));
    }
    const core::StoredSale& stored = **sale;
    const std::string& owner =
        stored.is_event() ? stored.event->terminal_id : stored.sale.terminal_id;
    if (owner != principal.terminal_id) {
      CountAuthFailure("other_terminal");
      core::LogWarn("http_forbidden", {{"remote", request.remote_address},
                                       {"token_terminal", principal.terminal_id},
                                       {"field", "sale_id"},
                                       {"reason", "other_terminal"}});
      return respond(ErrorResponse(
          Status(ErrorCode::kForbidden,
                 "the sale belongs to another terminal: its terminal or a manager records the "
                 "outcome",
                 "sale_id")));
    }
  }
  journal->AppendEvent(std::move(*event), EventAnswer(journal, "", std::move(respond)));
}

// GET /v1/offline-payments?state=outstanding|declined|approved|voided&limit=
void ApiHandler::Impl::ListOfflinePayments(std::string_view query, const Respond& respond) {
  std::string state = "outstanding";
  if (auto text = QueryParam(query, "state")) {
    if (*text != "outstanding" && *text != "declined" && *text != "approved" && *text != "voided" &&
        *text != "all") {
      return respond(ErrorResponse(
          Status(ErrorCode::kInvalidField,
                 "state must be one of outstanding, declined, approved, voided, all", "state")));
    }
    state = *text == "all" ? "" : *text;
  }
  int64_t limit = kDefaultListLimit;
  if (auto text = QueryParam(query, "limit")) {
    auto value = ParseNonNegative(*text);
    if (!value || *value < 1) {
      return respond(ErrorResponse(
          Status(ErrorCode::kInvalidField, "limit must be a positive integer", "limit")));
    }
    limit = std::min<int64_t>(*value, std::max(1, options.list_limit_max));
  }
  Result<std::vector<journal::OfflinePayment>> list =
      journal->ListOfflinePayments(state, static_cast<int>(limit));
  if (!list.ok()) return respond(ErrorResponse(list.status()));
  const int64_t now = clock->NowMs();
  ojson payments = ojson::array();
  for (const journal::OfflinePayment& p : *list) {
    const core::Currency* c = core::FindCurrency(p.currency);
    ojson item;
    item["sale_id"] = p.sale_id;
    item["payment_index"] = p.payment_index;
    item["terminal_id"] = p.terminal_id;
    item["amount"] = core::FormatAmount(p.amount, c != nullptr ? c->minor_units : 2);
    item["currency"] = p.currency;
    item["state"] = p.state;
    item["sale_seq"] = p.sale_seq;
    if (p.received_at_ms > 0) {
      item["received_at"] = core::FormatRfc3339(p.received_at_ms);
      item["age_s"] = std::max<int64_t>(0, (now - p.received_at_ms) / 1000);
    } else {
      item["received_at"] = nullptr;
      item["age_s"] = nullptr;
    }
    if (p.outcome_seq > 0) {
      item["outcome_seq"] = p.outcome_seq;
    } else {
      item["outcome_seq"] = nullptr;
    }
    payments.push_back(std::move(item));
  }
  ojson body;
  body["state"] = state.empty() ? "all" : state;
  body["payments"] = std::move(payments);
  respond(JsonResponse(200, Dump(body)));
}

Result<ojson> ApiHandler::Impl::OfflineJson() {
  ASSIGN_OR_RETURN(journal::OfflineExposure exposure, journal->ReadOfflineExposure());
  const journal::OfflineLimits limits = journal->offline_limits();
  std::string currency = options.currency;
  if (exposure.outstanding > 0) {
    ASSIGN_OR_RETURN(std::vector<journal::OfflinePayment> first,
                     journal->ListOfflinePayments("outstanding", 1));
    if (!first.empty()) currency = first.front().currency;
  }
  const core::Currency* c = core::FindCurrency(currency);
  const int minor = c != nullptr ? c->minor_units : 2;
  const int64_t now = clock->NowMs();
  ojson out;
  out["enabled"] = limits.enabled;
  out["currency"] = currency;
  out["outstanding"] = exposure.outstanding;
  const int64_t card = OfflineLimitMinor(limits.card_max_amount, minor);
  out["card_max_amount"] = card < 0 ? ojson(nullptr) : ojson(core::FormatAmount(card, minor));
  out["store"] =
      LimitJson(exposure.store, OfflineLimitMinor(limits.store_max_outstanding, minor), minor);
  const int64_t terminal_limit = OfflineLimitMinor(limits.terminal_max_outstanding, minor);
  out["terminal_limit"] =
      terminal_limit < 0 ? ojson(nullptr) : ojson(core::FormatAmount(terminal_limit, minor));
  ojson terminals = ojson::array();
  for (const auto& [terminal, amount] : exposure.terminals) {
    ojson t = LimitJson(amount, terminal_limit, minor);
    t["terminal_id"] = terminal;
    terminals.push_back(std::move(t));
  }
  out["terminals"] = std::move(terminals);
  if (exposure.oldest_received_at_ms > 0) {
    out["oldest_received_at"] = core::FormatRfc3339(exposure.oldest_received_at_ms);
    out["oldest_age_s"] = std::max<int64_t>(0, (now - exposure.oldest_received_at_ms) / 1000);
  } else {
    out["oldest_received_at"] = nullptr;
    out["oldest_age_s"] = nullptr;
  }
  out["max_age_h"] = options.offline_max_age_ms / 3'600'000;
  return out;
}

std::optional<ojson> ApiHandler::Impl::DrawersPastCloseAlert(int64_t now) {
  Result<std::vector<journal::SaleJournal::OpenDrawerAt>> open = journal->ReadOpenDrawers();
  if (!open.ok()) {
    core::LogWarn("open_drawers_read_failed", {{"error", open.status().ToString()}});
    return std::nullopt;
  }
  const int64_t last_close = core::LastLocalTimeOfDay(now, options.drawer_close_minute);
  ojson drawers = ojson::array();
  for (const journal::SaleJournal::OpenDrawerAt& d : *open) {
    // A drawer_open pruned after upload (opened_at 0) is older than any close.
    if (d.opened_at_ms >= last_close) continue;
    ojson j;
    j["terminal_id"] = d.terminal_id;
    j["opened_seq"] = d.opened_seq;
    j["opened_at"] = d.opened_at_ms > 0 ? ojson(core::FormatRfc3339(d.opened_at_ms)) : ojson();
    drawers.push_back(std::move(j));
  }
  if (drawers.empty()) return std::nullopt;
  char close_time[24];
  std::snprintf(close_time, sizeof(close_time), "%02d:%02d", options.drawer_close_minute / 60,
                options.drawer_close_minute % 60);
  ojson a;
  a["severity"] = "warning";
  a["close_time"] = close_time;
  a["last_close_at"] = core::FormatRfc3339(last_close);
  a["drawers"] = std::move(drawers);
  return a;
}

ojson ApiHandler::Impl::AlertsJson() {
  const int64_t now = clock->NowMs();
  // code -> {severity, figures}; the order of the answer is by since, then code.
  std::map<std::string, ojson> raised;
  Result<ojson> offline = OfflineJson();
  if (offline.ok()) {
    const ojson& o = *offline;
    auto high = [](const ojson& limit) {
      return !limit["percent"].is_null() && limit["percent"].get<double>() >= 80.0;
    };
    if (high(o["store"])) {
      ojson a = o["store"];
      a["severity"] = a["percent"].get<double>() >= 100.0 ? "critical" : "warning";
      a["limit_name"] = "offline.store_max_outstanding";
      raised["offline_exposure_store_high"] = std::move(a);
    }
    ojson terminals = ojson::array();
    double worst = 0;
    for (const ojson& t : o["terminals"]) {
      if (high(t)) {
        terminals.push_back(t);
        worst = std::max(worst, t["percent"].get<double>());
      }
    }
    if (!terminals.empty()) {
      ojson a;
      a["severity"] = worst >= 100.0 ? "critical" : "warning";
      a["limit_name"] = "offline.terminal_max_outstanding";
      a["terminals"] = std::move(terminals);
      raised["offline_exposure_terminal_high"] = std::move(a);
    }
    if (!o["oldest_age_s"].is_null() &&
        o["oldest_age_s"].get<int64_t>() * 1000 > options.offline_max_age_ms) {
      Result<std::vector<journal::OfflinePayment>> list =
          journal->ListOfflinePayments("outstanding", options.list_limit_max);
      int64_t overdue = 0;
      if (list.ok()) {
        for (const journal::OfflinePayment& p : *list) {
          if (now - p.received_at_ms > options.offline_max_age_ms) ++overdue;
        }
      }
      ojson a;
      a["severity"] = "warning";
      a["overdue"] = overdue;
      a["oldest_received_at"] = o["oldest_received_at"];
      a["oldest_age_s"] = o["oldest_age_s"];
      a["max_age_h"] = o["max_age_h"];
      raised["offline_payment_overdue"] = std::move(a);
    }
  } else {
    core::LogWarn("offline_exposure_read_failed", {{"error", offline.status().ToString()}});
  }
  if (options.drawer_close_minute >= 0) {
    if (std::optional<ojson> a = DrawersPastCloseAlert(now)) {
      raised["drawer_open_past_close"] = std::move(*a);
    }
  }
  if (status.alerts) {
    // Alerts of the modules above http: a JSON array of {code, severity, ...}.
    ojson extra = ojson::parse(status.alerts(), nullptr, false);
    if (extra.is_array()) {
      for (ojson& a : extra) {
        if (!a.is_object() || !a.contains("code") || !a["code"].is_string()) continue;
        const std::string code = a["code"].get<std::string>();
        a.erase("code");
        raised[code] = std::move(a);
      }
    }
  }
  std::vector<std::pair<int64_t, ojson>> sorted;
  {
    std::lock_guard<std::mutex> lock(alerts_mu);
    for (auto it = alert_since.begin(); it != alert_since.end();) {
      it = raised.count(it->first) ? std::next(it) : alert_since.erase(it);
    }
    for (auto& [code, figures] : raised) {
      const int64_t since = alert_since.emplace(code, now).first->second;
      ojson a;
      a["code"] = code;
      a["severity"] = figures.contains("severity") ? figures["severity"] : ojson("warning");
      a["since"] = core::FormatRfc3339(since);
      for (auto& [k, v] : figures.items()) {
        if (k != "severity") a[k] = v;
      }
      sorted.emplace_back(since, std::move(a));
    }
  }
  std::stable_sort(sorted.begin(), sorted.end(),
                   [](const auto& x, const auto& y) { return x.first < y.first; });
  if (metrics != nullptr) {
    for (const char* code : kAlertCodes) {
      metrics
          ->GetGauge("machub_alert", "1 while the alert is raised (docs/OPERATIONS.md)",
                     {{"code", code}})
          .Set(raised.count(code) ? 1 : 0);
    }
  }
  ojson out = ojson::array();
  for (auto& [since, a] : sorted) out.push_back(std::move(a));
  return out;
}

std::string ApiHandler::Impl::StatusJson() {
  ojson out;
  out["store_id"] = options.store_id;
  out["version"] = MACHUB_VERSION;
  out["uptime_s"] = (clock->MonotonicUs() - start_us) / 1'000'000;
  out["cloud"] = ProvidedBlock(status.cloud, "cloud",
                               ojson{{"state", "disabled"},
                                     {"last_success_at", nullptr},
                                     {"last_error", nullptr},
                                     {"next_attempt_at", nullptr}});
  out["backlog"] = ProvidedBlock(status.backlog, "backlog",
                                 ojson{{"sales", 0}, {"bytes", 0}, {"oldest_sale_at", nullptr}});
  ojson journal_block;
  Result<journal::JournalStats> stats = journal->Stats();
  if (stats.ok()) {
    journal_block["last_seq"] = stats->last_seq;
    journal_block["sales"] = stats->sales;
    journal_block["size_bytes"] = stats->size_bytes;
    journal_block["free_disk_bytes"] = stats->free_disk_bytes;
  } else {
    core::LogWarn("journal_stats_failed", {{"error", stats.status().ToString()}});
    journal_block["last_seq"] = nullptr;
    journal_block["sales"] = nullptr;
    journal_block["size_bytes"] = nullptr;
    journal_block["free_disk_bytes"] = nullptr;
  }
  journal_block["healthy"] = journal->Health().ok();
  out["journal"] = std::move(journal_block);
  if (status.clock) out["clock"] = ProvidedBlock(status.clock, "clock", ojson(nullptr));
  out["catalog"] = ProvidedBlock(status.catalog, "catalog",
                                 ojson{{"version", nullptr}, {"fetched_at", nullptr}});
  if (status.store_config) {
    out["store_config"] = ProvidedBlock(status.store_config, "store_config", ojson(nullptr));
  }
  Result<ojson> offline = OfflineJson();
  out["offline"] = offline.ok() ? std::move(*offline) : ojson(nullptr);
  out["alerts"] = AlertsJson();
  return Dump(out);
}

ApiHandler::ApiHandler(ApiOptions options, journal::SaleJournal* journal,
                       core::MetricsRegistry* metrics, const core::Clock* clock,
                       StatusProviders status)
    : impl_(
          std::make_unique<Impl>(std::move(options), journal, metrics, clock, std::move(status))) {
  for (const TerminalToken& token : impl_->options.tokens) {
    if (token.sha256_hex.size() != 64 || !core::FromHex(token.sha256_hex).ok()) {
      core::LogWarn("token_hash_invalid", {{"terminal", token.terminal_id}});
    }
  }
}

ApiHandler::~ApiHandler() = default;

void ApiHandler::Handle(Request&& request, Respond respond) {
  // Nothing below is expected to throw; if it does, the Server answers 500.
  impl_->Handle(std::move(request), std::move(respond));
}

std::optional<Response> ApiHandler::CheckHeader(const Request& header) {
  return impl_->CheckHeader(header);
}

void ApiHandler::CountServerAnswer(int status) { impl_->CountServerAnswer(status); }

std::string ApiHandler::StatusJson() { return impl_->StatusJson(); }

std::string ApiHandler::AlertsJson() { return Dump(impl_->AlertsJson()); }

void ApiHandler::SetTokens(std::vector<TerminalToken> tokens) {
  auto next = std::make_shared<const TokenAuthenticator>(tokens);
  std::lock_guard<std::mutex> lock(impl_->auth_mu);
  impl_->auth = std::move(next);
}

void ApiHandler::SetConnectionsSource(std::function<int()> connections) {
  std::lock_guard<std::mutex> lock(impl_->connections_mu);
  impl_->connections = std::move(connections);
}

}  // namespace machub::http
