#include "sync/day_totals.h"

#include "sync/batch_format.h"

namespace machub::sync {

namespace {

constexpr int64_t kDayMs = 24LL * 60 * 60 * 1000;

int64_t DayStartMs(int64_t ms) {
  int64_t day = ms / kDayMs;
  if (ms % kDayMs < 0) --day;  // before 1970: floor, not truncation
  return day * kDayMs;
}

nlohmann::json N(int64_t v) { return {{"N", std::to_string(v)}}; }

}  // namespace

DayTotals::DayTotals(journal::Ledger* ledger, const core::Clock* clock, int read_chunk)
    : ledger_(ledger), clock_(clock), read_chunk_(read_chunk > 0 ? read_chunk : 500) {}

Result<int64_t> DayTotals::FirstSeqOfDay(int64_t day_start_ms, int64_t last_seq) {
  // Invariant: every entry below lo was received before the day; hi is an answer.
  int64_t lo = 1, hi = last_seq + 1;
  while (lo < hi) {
    const int64_t mid = lo + (hi - lo) / 2;
    Result<std::vector<core::StoredSale>> at = ledger_->List(mid - 1, 1);
    if (!at.ok()) return at.status();
    if (at->empty()) {  // nothing at or after mid (cannot happen below last_seq)
      hi = mid;
    } else if (at->front().received_at_ms >= day_start_ms) {
      hi = std::min(mid, at->front().seq);
    } else {
      lo = at->front().seq + 1;  // entries up to the one found are before the day
    }
  }
  return lo;
}

Result<DayFigures> DayTotals::Update() {
  const int64_t now = clock_->NowMs();
  const int64_t day_start = DayStartMs(now);
  const std::string today = UtcDate(now);
  Result<journal::SyncBounds> bounds = ledger_->GetSyncBounds();
  if (!bounds.ok()) return bounds.status();
  const int64_t last_seq = bounds->last_seq;
  if (figures_.date != today || last_seq < read_upto_) {
    // A new day (or a journal that went back: start over).
    Result<int64_t> first = FirstSeqOfDay(day_start, last_seq);
    if (!first.ok()) return first.status();
    figures_ = DayFigures{};
    figures_.date = today;
    read_upto_ = *first - 1;
  }
  while (read_upto_ < last_seq) {
    Result<std::vector<core::StoredSale>> chunk = ledger_->List(read_upto_, read_chunk_);
    if (!chunk.ok()) return chunk.status();
    if (chunk->empty()) break;
    for (const core::StoredSale& entry : *chunk) {
      read_upto_ = entry.seq;
      // Received after today (a clock that stepped back since): counted tomorrow.
      if (entry.received_at_ms < day_start || entry.received_at_ms >= day_start + kDayMs) {
        continue;
      }
      if (figures_.first_seq == 0) figures_.first_seq = entry.seq;
      figures_.last_seq = entry.seq;
      // Store events (drawers, cash in/out, Z reports) are today's entries (first/last
      // seq, like their sales-table items) but not sales: nothing to count or sum.
      if (entry.is_event()) continue;
      const core::Sale& sale = entry.sale;
      if (figures_.currency.empty()) figures_.currency = sale.currency;
      if (sale.currency != figures_.currency) {
        ++figures_.other_currency;
        continue;
      }
      switch (sale.type) {
        case core::SaleType::kSale:
          ++figures_.sales;
          figures_.sales_total += sale.total;
          break;
        case core::SaleType::kRefund:
          ++figures_.refunds;
          figures_.refunds_total += sale.total;
          break;
        case core::SaleType::kVoid:
          ++figures_.voids;
          figures_.voids_total += sale.total;
          break;
      }
    }
  }
  return figures_;
}

nlohmann::json DayTotals::Attributes(const DayFigures& f) {
  nlohmann::json out = {{"today", {{"S", f.date}}},
                        {"today_sales", N(f.sales)},
                        {"today_sales_total", N(f.sales_total)},
                        {"today_refunds", N(f.refunds)},
                        {"today_refunds_total", N(f.refunds_total)},
                        {"today_voids", N(f.voids)},
                        {"today_voids_total", N(f.voids_total)},
                        {"today_net_total", N(f.net_total())},
                        {"today_other_currency", N(f.other_currency)},
                        {"today_last_seq", N(f.last_seq)}};
  if (!f.currency.empty()) out["today_currency"] = {{"S", f.currency}};
  return out;
}

}  // namespace machub::sync
