#pragma once
// X and Z report figures (issue #8), computed from journal entries alone with exact
// integer minor units, so that anyone holding the uploaded objects can recompute them to
// the cent. Pure functions: no journal, no clock, no I/O; any thread.
//
// What counts (every amount in minor units of the report's currency):
//  - sales / refunds / voids: count, subtotal, tax, total of each type.
//  - net: sales minus refunds minus voids (subtotal, tax, total).
//  - by payment method: a sale adds each payment's amount to its method, the sale's
//    change is taken off "cash" (change is given in cash); a refund or void adds its
//    payments to "returned". net = collected - returned.
//  - by tax rate: per line rate, net and tax; sales add, refunds and voids subtract.
//  - per terminal: first and last receipt number in seq order, counts per type.
//  - drawers: one session per drawer_open, on its terminal, until that terminal's next
//    drawer_close. expected = float + cash of sales - cash of refunds/voids + cash_in -
//    cash_out; a closed session has counted and variance = counted - expected. Cash moved
//    on a terminal without an open session goes to cash_without_drawer.
//  - offline card: count and amount of card payments of sales marked offline.
//  - cash_in / cash_out: totals over all drawers.
//  - Entries in another currency than the report's are not added anywhere; they are
//    counted in other_currency_entries (a store has one currency; this makes a mistake
//    visible instead of mixing units). z_report entries are counted in z_reports only.

#include <cstdint>
#include <map>
#include <nlohmann/json_fwd.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "core/sale.h"
#include "core/status.h"
#include "core/store_event.h"

namespace machub::core {

// One journal entry as the report sees it: where it sits in the chain and what it is.
struct JournalEntry {
  int64_t seq = 0;
  std::string receipt_no;  // sales, refunds, voids: "T01-000123"; events: as stored
  int64_t received_at_ms = 0;
  std::variant<Sale, StoreEvent> body;

  const Sale* sale() const { return std::get_if<Sale>(&body); }
  const StoreEvent* event() const { return std::get_if<StoreEvent>(&body); }
};

struct TypeTotals {
  int64_t count = 0;
  int64_t subtotal = 0;
  int64_t tax = 0;
  int64_t total = 0;
  bool operator==(const TypeTotals&) const = default;
};

struct MethodTotals {
  int64_t sales_count = 0;  // payments of sales with this method
  int64_t collected = 0;    // cash: tendered minus change
  int64_t refunds_count = 0;
  int64_t returned = 0;
  int64_t net() const { return collected - returned; }
  bool operator==(const MethodTotals&) const = default;
};

struct RateTotals {
  int64_t net = 0;
  int64_t tax = 0;
  bool operator==(const RateTotals&) const = default;
};

struct TerminalFigures {
  std::string first_receipt;
  std::string last_receipt;
  int64_t sales = 0;
  int64_t refunds = 0;
  int64_t voids = 0;
  bool operator==(const TerminalFigures&) const = default;
};

struct DrawerSession {
  std::string terminal_id;
  int64_t opened_seq = 0;
  int64_t closed_seq = 0;  // 0 while open
  int64_t float_amount = 0;
  int64_t cash_sales = 0;    // cash tendered minus change
  int64_t cash_refunds = 0;  // cash paid back by refunds and voids
  int64_t cash_in = 0;
  int64_t cash_out = 0;
  std::optional<int64_t> counted;  // set when closed
  int64_t expected() const { return float_amount + cash_sales - cash_refunds + cash_in - cash_out; }
  std::optional<int64_t> variance() const {
    if (!counted) return std::nullopt;
    return *counted - expected();
  }
  bool operator==(const DrawerSession&) const = default;
};

struct ReportFigures {
  std::string currency;
  int64_t first_seq = 0;  // 0 when no entries
  int64_t last_seq = 0;
  int64_t entries = 0;
  TypeTotals sales, refunds, voids;
  TypeTotals net() const;
  std::map<std::string, MethodTotals> by_method;
  std::map<int64_t, RateTotals> by_tax_rate;  // key: rate in millionths
  std::map<std::string, TerminalFigures> terminals;
  std::vector<DrawerSession> drawers;                  // in opening order
  std::map<std::string, int64_t> cash_without_drawer;  // per terminal, net cash
  int64_t offline_card_count = 0;
  int64_t offline_card_amount = 0;
  int64_t cash_in = 0;
  int64_t cash_out = 0;
  int64_t z_reports = 0;
  int64_t other_currency_entries = 0;
  bool operator==(const ReportFigures&) const = default;
};

// The figures over `entries` (in increasing seq order; otherwise kInvalidArgument).
// Sums beyond int64 (impossible below ~9 * 10^3 maximal sales): kInvalidArgument.
Result<ReportFigures> ComputeReport(const std::vector<JournalEntry>& entries,
                                    std::string_view currency);

// Index of the first entry after the last z_report in `entries` (0 when there is none):
// the entries an X report or the next Z report covers.
size_t EntriesSinceLastZ(const std::vector<JournalEntry>& entries);

// Canonical JSON of the figures (stored in a z_report entry and answered by the report
// routes). Compact, keys in exactly this order, amounts as decimal strings in the
// currency's minor units (negative with '-'), counts and seqs as JSON numbers:
//   {"currency","first_seq","last_seq","entries",
//    "sales":{"count","subtotal","tax","total"},"refunds":{..},"voids":{..},"net":{..},
//    "by_method":[{"method","sales_count","collected","refunds_count","returned","net"}],
//    "by_tax_rate":[{"rate" ("0.0825"),"net","tax"}],
//    "terminals":[{"terminal_id","first_receipt","last_receipt","sales","refunds","voids"}],
//    "drawers":[{"terminal_id","opened_seq","closed_seq" (closed only),"float",
//                "cash_sales","cash_refunds","cash_in","cash_out","expected",
//                "counted","variance" (closed only)}],
//    "cash_without_drawer":[{"terminal_id","amount"}],
//    "offline_card":{"count","amount"},"cash_in","cash_out","z_reports",
//    "other_currency_entries"}
// Lists sorted by method, rate, terminal_id; drawers in opening order.
std::string ReportFiguresJson(const ReportFigures& figures);

// One "drawers" item of ReportFiguresJson (also answered by GET /v1/drawers), amounts in
// `minor_units` digits.
nlohmann::ordered_json DrawerSessionJson(const DrawerSession& session, int minor_units);

}  // namespace machub::core
