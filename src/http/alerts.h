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
//   clock_untrusted      (critical) the hub's clock cannot be trusted: it is behind the
//                        journal's newest entry ("behind_journal": a Pi without RTC that
//                        booted with a stale clock), or the kernel says it is not
//                        synchronized and clock.require_sync is on
//                        ("kernel_unsynchronized"); figures: "reasons", "newest_entry_at",
//                        "behind_s", "held_entries"
//   clock_skew           the S3 endpoint's clock differs from ours by more than the skew
//                        bound ("offset_s", "bound_s"); uploads still work (requests are
//                        signed with the learned offset) but received_at is off by as much
// Input blocks that are not objects (or lack a member) raise no alert from them.

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

namespace machub::http {

// What the hub knows about its own clock (issue #11: a Pi 4B has no RTC).
struct ClockInputs {
  std::optional<bool> kernel_synchronized;  // core::KernelClockSynchronized()
  bool require_sync = false;                // config clock.require_sync
  int64_t newest_received_at_ms = 0;        // journal::JournalStats
  int64_t held_entries = 0;                 // journal::JournalStats::clock_held
  std::optional<int64_t> cloud_offset_ms;   // sync::SyncService::CloudClockOffsetMs()
  int64_t skew_bound_ms = 5 * 60 * 1000;    // config clock_skew_bound_s
  int64_t now_ms = 0;
};

// The "clock" block of /v1/status: {"now", "trusted", "reasons", "kernel_synchronized",
// "require_sync", "newest_entry_at", "held_entries", "cloud_offset_ms", "skewed"}.
nlohmann::json ClockStatusJson(const ClockInputs& in);

struct ServiceAlertInputs {
  nlohmann::json cloud_json;    // sync::SyncService::CloudStatusJson()
  nlohmann::json backlog_json;  // sync::SyncService::BacklogJson()
  std::optional<int64_t> free_disk_bytes;
  int64_t min_free_disk_bytes = 0;  // 0: no disk alert
  int64_t backlog_max_age_ms = 30 * 60 * 1000;
  int64_t uploads_failing_ms = 15 * 60 * 1000;
  int64_t started_at_ms = 0;  // when the hub started (uploads never succeeded yet)
  int64_t now_ms = 0;
  std::optional<ClockInputs> clock;  // nullopt: no clock alerts
};

// A JSON array.
nlohmann::json ServiceAlertsJson(const ServiceAlertInputs& in);

}  // namespace machub::http
