// Pruning (uploader.h "Retention"): uploaded sales leave the journal once older than the
// retention, or sooner when the disk runs low; never one that is not uploaded.
#include <chrono>

#include "core/log.h"
#include "sync/uploader.h"

namespace machub::sync {

using SteadyClock = std::chrono::steady_clock;
using std::chrono::milliseconds;

// ---- Pruning ----

void Uploader::MaybePrune() {
  if (options_.prune_interval_ms <= 0) return;
  const auto now = SteadyClock::now();
  if (now < next_prune_) return;
  next_prune_ = now + milliseconds(options_.prune_interval_ms);
  Result<journal::SyncBounds> bounds = journal_->GetSyncBounds();
  if (!bounds.ok()) {
    core::LogWarn("sync_prune_failed", {{"error", bounds.status().ToString()}});
    return;
  }
  const int64_t free = bounds->free_disk_bytes;
  const int64_t total = bounds->total_disk_bytes;
  const bool low_disk =
      total > 0 && (free < options_.min_free_disk_bytes ||
                    (options_.min_free_disk_percent > 0 &&
                     free * 100 < total * static_cast<int64_t>(options_.min_free_disk_percent)));
  if (!low_disk && options_.retention_ms <= 0) return;
  journal::PruneRequest request;
  request.ignore_age = low_disk;
  request.received_before_ms = NowMs() - options_.retention_ms;
  request.max_sales = options_.prune_chunk_sales;
  int64_t pruned = 0;
  int64_t anchor = bounds->anchor_seq;
  // Chunks keep each writer transaction short; sale groups run between them.
  for (int chunk = 0; chunk < 1000 && !stopping_.load(); ++chunk) {
    Result<journal::PruneResult> result = journal_->Prune(request);
    if (!result.ok()) {
      core::LogWarn("sync_prune_failed", {{"error", result.status().ToString()}});
      break;
    }
    pruned += result->pruned;
    anchor = result->anchor_seq;
    if (result->pruned == 0) break;
  }
  if (pruned > 0) {
    if (m_pruned_ != nullptr) m_pruned_->Inc(pruned);
    core::LogInfo("sync_pruned", {{"sales", pruned},
                                  {"anchor_seq", anchor},
                                  {"low_disk", low_disk},
                                  {"free_disk_bytes", free}});
  }
}

}  // namespace machub::sync
