#include "sync/backlog.h"

#include <nlohmann/json.hpp>
#include <vector>

#include "core/time_format.h"

namespace machub::sync {

BacklogTracker::BacklogTracker(journal::Ledger* journal, core::MetricsRegistry* metrics)
    : journal_(journal) {
  if (metrics != nullptr) {
    m_sales_ =
        &metrics->GetGauge("machub_backlog_sales", "Sales stored on the hub and not yet uploaded.");
    m_bytes_ = &metrics->GetGauge("machub_backlog_bytes",
                                  "Canonical bytes of the sales not yet uploaded.");
  }
}

Result<Backlog> BacklogTracker::Refresh() {
  std::lock_guard<std::mutex> lock(mu_);
  ASSIGN_OR_RETURN(journal::SyncBounds bounds, journal_->GetSyncBounds());
  const int64_t batched = bounds.batched_seq;
  if (!initialized_ || batched < tail_after_) {
    tail_after_ = tail_upto_ = batched;
    tail_bytes_ = 0;
  } else if (batched > tail_after_) {
    if (batched >= tail_upto_) {
      tail_after_ = tail_upto_ = batched;
      tail_bytes_ = 0;
    } else {
      // Cut into batches since the last refresh: those bytes now count in the batches.
      ASSIGN_OR_RETURN(int64_t cut, journal_->CanonicalBytes(tail_after_, batched));
      tail_bytes_ -= cut;
      tail_after_ = batched;
    }
  }
  if (bounds.last_seq > tail_upto_) {
    ASSIGN_OR_RETURN(int64_t added, journal_->CanonicalBytes(tail_upto_, bounds.last_seq));
    tail_bytes_ += added;
    tail_upto_ = bounds.last_seq;
  }
  initialized_ = true;
  ASSIGN_OR_RETURN(std::vector<journal::BatchRecord> unfinished, journal_->ListBatches(true));
  Backlog backlog;
  backlog.known = true;
  backlog.sales = tail_upto_ - tail_after_;
  backlog.bytes = tail_bytes_;
  for (const journal::BatchRecord& b : unfinished) {
    backlog.sales += b.sales();
    backlog.bytes += b.canonical_bytes;
    if (b.state == journal::BatchState::kQuarantined) {
      ++backlog.quarantined_batches;
    } else {
      ++backlog.pending_batches;
    }
  }
  backlog.oldest_received_at_ms =
      bounds.oldest_unuploaded_seq > 0 ? bounds.oldest_unuploaded_received_at_ms : 0;
  last_ = backlog;
  if (m_sales_ != nullptr) {
    m_sales_->Set(backlog.sales);
    m_bytes_->Set(backlog.bytes);
  }
  return backlog;
}

Backlog BacklogTracker::Snapshot() const {
  std::lock_guard<std::mutex> lock(mu_);
  return last_;
}

nlohmann::json BacklogTracker::ToJson(const Backlog& backlog) {
  nlohmann::json j;
  j["sales"] = backlog.sales;
  j["bytes"] = backlog.bytes;
  j["oldest_sale_at"] = backlog.sales > 0 && backlog.oldest_received_at_ms != 0
                            ? nlohmann::json(core::FormatRfc3339(backlog.oldest_received_at_ms))
                            : nlohmann::json(nullptr);
  return j;
}

}  // namespace machub::sync
