#pragma once
// The hub's service alerts outside the offline payments (docs/OPERATIONS.md): derived
// from what /v1/status already shows (the cloud and backlog blocks, the journal's free
// disk), as a JSON array of {"code","severity", figures...} for
// StatusProviders::alerts. The API handler adds the offline alerts, the since-times and
// the machub_alert gauges. Pure function: thread-safe, no I/O.
//
// Codes raised:
//   backlog_old          the oldest sale not uploaded was received more than
//                        backlog_max_age_ms ago ("oldest_sale_at", "age_s", "sales")
//   uploads_failing      the last upload attempt failed and none succeeded for
//                        uploads_failing_ms (since the hub started when none ever did)
//                        ("last_success_at", "last_error", "last_error_at")
//   batches_quarantined  the cloud block reports quarantined batches ("batches")
//   disk_low             free disk of the journal's filesystem below min_free_disk_bytes,
//                        the pruning threshold ("free_disk_bytes", "threshold_bytes")
// Malformed input blocks are ignored (no alert from them).

#include <cstdint>
#include <optional>
#include <string>

namespace machub::http {

struct ServiceAlertInputs {
  std::string cloud_json;    // sync::SyncService::CloudStatusJson()
  std::string backlog_json;  // sync::SyncService::BacklogJson()
  std::optional<int64_t> free_disk_bytes;
  int64_t min_free_disk_bytes = 0;  // 0: no disk alert
  int64_t backlog_max_age_ms = 30 * 60 * 1000;
  int64_t uploads_failing_ms = 15 * 60 * 1000;
  int64_t started_at_ms = 0;  // when the hub started (uploads never succeeded yet)
  int64_t now_ms = 0;
};

std::string ServiceAlertsJson(const ServiceAlertInputs& in);

}  // namespace machub::http
