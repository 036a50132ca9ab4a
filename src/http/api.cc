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
#include "http/api_internal.h"
#include "http/auth.h"
#include "http/dashboard.h"
#include "http/rate_limiter.h"

#ifndef MACHUB_VERSION
#define MACHUB_VERSION "unknown"
#endif

namespace machub::http {
namespace api_internal {
namespace {

constexpr std::string_view kJson = "application/json";

}  // namespace

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

// Routing helpers private to this file (the shared ones are declared in api_internal.h).
namespace {

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

}  // namespace

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

// Manager-only: the store's status, its metrics, the list of all sales and the reports
// (X, closing the day with a Z, the last Z). A terminal reads one sale by id (for a
// refund), the catalog and products, its own drawer session, and posts its own entries.
bool NeedsManager(Route route, std::string_view method) {
  return route == Route::kStatus || route == Route::kMetrics ||
         (route == Route::kSales && method == "GET") || route == Route::kReportX ||
         route == Route::kReportZ || route == Route::kReportZLast ||
         route == Route::kOfflinePayments || route == Route::kOffline || route == Route::kAlerts;
}

}  // namespace api_internal

namespace {

using namespace api_internal;  // NOLINT(google-build-using-namespace): this file's own inside

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

}  // namespace

using namespace api_internal;  // NOLINT(google-build-using-namespace)

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

std::vector<std::string> ApiHandler::RaisedAlertCodes() {
  std::vector<std::string> codes;
  for (const ojson& alert : impl_->AlertsJson())
    codes.push_back(alert.at("code").get<std::string>());
  return codes;
}

void ApiHandler::SetTokens(std::vector<TerminalToken> tokens) {
  auto next = std::make_shared<const TokenAuthenticator>(std::move(tokens));
  std::lock_guard<std::mutex> lock(impl_->auth_mu);
  impl_->auth = std::move(next);
}

void ApiHandler::SetConnectionsSource(std::function<int()> connections) {
  std::lock_guard<std::mutex> lock(impl_->connections_mu);
  impl_->connections = std::move(connections);
}

}  // namespace machub::http
