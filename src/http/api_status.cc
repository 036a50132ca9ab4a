// The status side of the API handler: GET /v1/status and its blocks from the providers,
// the alerts (raised, since-times, machub_alert gauges), /metrics, the offline exposure
// against its limits and the offline payment lists.
#include <algorithm>
#include <cmath>
#include <map>
#include <string>
#include <utility>

#include "core/currency.h"
#include "core/log.h"
#include "core/money.h"
#include "core/sale_codec.h"
#include "core/store_event.h"
#include "core/time_format.h"
#include "http/api_internal.h"

#ifndef MACHUB_VERSION
#define MACHUB_VERSION "unknown"
#endif

namespace machub::http {
namespace {

using namespace api_internal;  // NOLINT(google-build-using-namespace)

constexpr std::string_view kPrometheus = "text/plain; version=0.0.4; charset=utf-8";

// A provider's block, or `fallback` when it is missing, throws, or is not a JSON object (an
// array with `array`).
ojson ProvidedBlock(const StatusProviders::Block& provider, std::string_view name, ojson fallback,
                    bool array = false) {
  if (!provider) return fallback;
  ojson block;
  try {
    block = provider();
  } catch (const std::exception& e) {
    core::LogError("status_provider_failed", {{"block", name}, {"what", e.what()}});
    return fallback;
  }
  if (array ? !block.is_array() : !block.is_object()) {
    core::LogError("status_provider_invalid", {{"block", name}});
    return fallback;
  }
  return block;
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

}  // namespace

using namespace api_internal;  // NOLINT(google-build-using-namespace)

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
    ojson extra = ProvidedBlock(status.alerts, "alerts", ojson::array(), /*array=*/true);
    {
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

}  // namespace machub::http
