#pragma once
// BacklogTracker: what has not reached the cloud yet: the sales not uploaded, their
// canonical bytes and the oldest one's received_at — the "backlog" block of GET
// /v1/status and the gauges machub_backlog_sales / machub_backlog_bytes.
//
// Exact and cheap: backlog = the sales after the last recorded batch (the "tail"; seqs are
// gapless, so their count is last_seq - batched_seq) plus the pending and quarantined
// batches (few rows, with their canonical bytes recorded). The tail's bytes are kept
// incrementally: each Refresh reads only the sales committed since the previous one, and
// subtracts the range newly cut into batches. The first Refresh reads the whole tail once.
//
// Thread-safe: Refresh and Snapshot may be called from any thread (a mutex serializes
// them); in the hub the uploader thread refreshes and the HTTP threads read Snapshot().

#include <cstdint>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>

#include "core/metrics.h"
#include "core/status.h"
#include "journal/ledger.h"

namespace machub::sync {

struct Backlog {
  int64_t sales = 0;
  int64_t bytes = 0;                  // canonical bytes of those sales
  int64_t oldest_received_at_ms = 0;  // 0: no backlog
  int64_t quarantined_batches = 0;
  int64_t pending_batches = 0;
  bool known = false;  // false until the first successful Refresh
};

class BacklogTracker {
 public:
  // `journal` must outlive the tracker. With `metrics`, Refresh sets the gauges
  // machub_backlog_sales and machub_backlog_bytes.
  BacklogTracker(journal::Ledger* journal, core::MetricsRegistry* metrics);

  // Reads the journal (GetSyncBounds, the new tail, the unfinished batches). On an error
  // the previous snapshot stays.
  Result<Backlog> Refresh();
  // The last refreshed figures (known=false before the first Refresh succeeded).
  Backlog Snapshot() const;

  // {"sales":N,"bytes":N,"oldest_sale_at":"RFC 3339"|null}
  static nlohmann::json ToJson(const Backlog& backlog);

 private:
  journal::Ledger* journal_;
  core::Gauge* m_sales_ = nullptr;
  core::Gauge* m_bytes_ = nullptr;
  mutable std::mutex mu_;
  bool initialized_ = false;
  int64_t tail_after_ = 0;  // the tail is (tail_after_, tail_upto_]
  int64_t tail_upto_ = 0;
  int64_t tail_bytes_ = 0;
  Backlog last_;
};

}  // namespace machub::sync
