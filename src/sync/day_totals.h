#pragma once
// DayTotals: today's figures of one store for the stores item in DynamoDB
// (docs/DYNAMODB.md): how many sales, refunds and voids the journal holds for the current
// UTC day and their totals in minor units.
//
// "Today" is the UTC date of the clock, the same `date` every sales item and every S3
// partition carries, so the figures reconcile with a Query on the sales table or an Athena
// query on one partition. An entry belongs to the day of its received_at (the hub's clock
// at append). The store's own business day (opening to Z report) is the Z report's job.
//
// Incremental: the first call finds the day's first entry with a binary search over seq
// (received_at grows with seq; after a backwards clock step the boundary is approximate)
// and reads the day's entries; later calls read only the entries appended since. At
// midnight the figures start again from zero. Entries pruned before they were read are
// not counted (the journal keeps sync.retention_days of entries, so today's are there).
//
// Amounts are summed in the currency of the day's first sale, refund or void; entries in
// another currency are counted in other_currency only (a store has one currency). Store
// events (drawer_open, cash_in, cash_out, drawer_close, z_report) move first_seq/last_seq
// (they are today's entries and today's sales-table items) but are not counted or summed:
// the figures are sales, refunds and voids; cash movements and the business day are the
// X/Z reports' (core/report.h).
//
// Threads: one caller at a time (the DynamoDB sink's thread); reads the Ledger only.

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>

#include "core/clock.h"
#include "core/status.h"
#include "journal/ledger.h"

namespace machub::sync {

struct DayFigures {
  std::string date;  // "YYYY-MM-DD" (UTC)
  std::string currency;
  int64_t sales = 0, sales_total = 0;
  int64_t refunds = 0, refunds_total = 0;
  int64_t voids = 0, voids_total = 0;
  int64_t other_currency = 0;
  int64_t first_seq = 0, last_seq = 0;  // 0: no entry today
  int64_t net_total() const { return sales_total - refunds_total - voids_total; }
};

class DayTotals {
 public:
  // Neither pointer is owned; both must outlive this object. `read_chunk` entries are
  // read per List call.
  DayTotals(journal::Ledger* ledger, const core::Clock* clock, int read_chunk = 500);

  // Brings the figures up to the journal's last entry and returns them.
  Result<DayFigures> Update();

  // The figures as stores item attributes (DynamoDB attribute values): today (S),
  // today_sales, today_sales_total, today_refunds, today_refunds_total, today_voids,
  // today_voids_total, today_net_total, today_other_currency, today_last_seq (N), and
  // today_currency (S) once there is an entry.
  static nlohmann::json Attributes(const DayFigures& figures);

 private:
  // The smallest seq whose entry was received at or after `day_start_ms` (or
  // last_seq + 1 when none).
  Result<int64_t> FirstSeqOfDay(int64_t day_start_ms, int64_t last_seq);

  journal::Ledger* ledger_;
  const core::Clock* clock_;
  int read_chunk_;
  DayFigures figures_;
  int64_t read_upto_ = 0;  // entries up to this seq are in figures_ (or before the day)
};

}  // namespace machub::sync
