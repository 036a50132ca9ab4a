#include "http/alerts.h"

#include <algorithm>
#include <nlohmann/json.hpp>

#include "core/time_format.h"

namespace machub::http {
namespace {

using json = nlohmann::json;

// An RFC 3339 member as ms, 0 when absent, null or malformed.
int64_t TimeOf(const json& block, const char* name) {
  if (!block.is_object() || !block.contains(name) || !block[name].is_string()) return 0;
  Result<int64_t> ms = core::ParseRfc3339(block[name].get<std::string>());
  return ms.ok() ? *ms : 0;
}

}  // namespace

std::string ServiceAlertsJson(const ServiceAlertInputs& in) {
  json alerts = json::array();
  const json cloud = json::parse(in.cloud_json, nullptr, false);
  const json backlog = json::parse(in.backlog_json, nullptr, false);

  const int64_t oldest = TimeOf(backlog, "oldest_sale_at");
  if (oldest > 0 && in.now_ms - oldest > in.backlog_max_age_ms) {
    alerts.push_back({{"code", "backlog_old"},
                      {"severity", "warning"},
                      {"oldest_sale_at", backlog["oldest_sale_at"]},
                      {"age_s", (in.now_ms - oldest) / 1000},
                      {"sales", backlog.value("sales", json(0))}});
  }

  if (cloud.is_object()) {
    const int64_t last_success = TimeOf(cloud, "last_success_at");
    const int64_t last_error = TimeOf(cloud, "last_error_at");
    const std::string state = cloud.value("state", "");
    const int64_t ok_since = std::max(last_success, in.started_at_ms);
    if (state != "disabled" && last_error > last_success &&
        in.now_ms - ok_since > in.uploads_failing_ms) {
      alerts.push_back({{"code", "uploads_failing"},
                        {"severity", "critical"},
                        {"state", state},
                        {"last_success_at", cloud.value("last_success_at", json(nullptr))},
                        {"last_error", cloud.value("last_error", json(nullptr))},
                        {"last_error_at", cloud["last_error_at"]}});
    }
    const json quarantined = cloud.value("quarantined", json(0));
    if (quarantined.is_number_integer() && quarantined.get<int64_t>() > 0) {
      alerts.push_back(
          {{"code", "batches_quarantined"}, {"severity", "critical"}, {"batches", quarantined}});
    }
  }

  if (in.free_disk_bytes && in.min_free_disk_bytes > 0 &&
      *in.free_disk_bytes < in.min_free_disk_bytes) {
    alerts.push_back({{"code", "disk_low"},
                      {"severity", "critical"},
                      {"free_disk_bytes", *in.free_disk_bytes},
                      {"threshold_bytes", in.min_free_disk_bytes}});
  }
  return alerts.dump();
}

}  // namespace machub::http
