#pragma once
// SaleJournal: what the API side (http/) needs from the durable journal: store a sale
// exactly once, read sales back, and the figures and checks /healthz, /v1/stats and
// `machub verify` show. Nothing here knows about sinks (ledger.h) or SQLite
// (sqlite_journal.h implements this).
//
// Durability: Append's callback runs only after the sale's transaction is durable
// (fsync'd); a success is never answered before that.
// Threads: every method is thread-safe. Append returns at once; its callback runs exactly
// once, on the journal's writer thread, and must be quick (post the answer to an I/O
// thread). Reads never wait for the writer.
// Errors: kStorageUnavailable when the storage failed or the journal is closed (the sale
// was not acknowledged; the terminal retries), per-sale errors as documented below.

#include <cstdint>
#include <functional>
#include <future>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "core/report.h"
#include "core/sale.h"
#include "core/status.h"
#include "core/store_event.h"

namespace machub::journal {

// What POST /v1/sales answers for a stored sale.
struct Receipt {
  bool created = false;  // true: inserted now (201); false: idempotent replay (200)
  std::string id;
  int64_t seq = 0;
  std::string receipt_no;
  int64_t total = 0;   // minor units
  int64_t change = 0;  // minor units
  std::string currency;
  std::string hash;  // 32 raw bytes
  int64_t received_at_ms = 0;
  std::string type;  // "sale" | "refund" | "void" | a store event type
};

// Offline card payments (issue #9): limits on the money at risk, checked by the writer
// in the same step as the commit, so terminals racing to a limit never pass it together.
// Amounts are decimal strings in the store's currency ("500.00"), at most 3 decimals;
// empty: no such limit.
struct OfflineLimits {
  bool enabled = true;                   // false: a payment marked offline is refused
  std::string card_max_amount;           // largest single offline payment
  std::string terminal_max_outstanding;  // outstanding per terminal
  std::string store_max_outstanding;     // outstanding in the whole store
};

// One offline card payment as the journal tracks it (table offline_payments, v7).
struct OfflinePayment {
  std::string sale_id;
  int64_t payment_index = 0;
  std::string terminal_id;
  int64_t amount = 0;  // minor units of currency
  std::string currency;
  int64_t sale_seq = 0;
  int64_t received_at_ms = 0;  // when the sale was stored
  std::string state;           // outstanding | approved | declined | voided
  int64_t outcome_seq = 0;     // the authorization (or void) entry; 0 while outstanding
};

// The money at risk now: outstanding offline payments, summed.
struct OfflineExposure {
  int64_t store = 0;
  std::map<std::string, int64_t> terminals;  // only terminals with something outstanding
  int64_t outstanding = 0;                   // how many payments
  int64_t oldest_received_at_ms = 0;         // 0 when none
};

struct JournalStats {
  int64_t last_seq = 0;
  int64_t sales = 0;
  int64_t size_bytes = 0;       // database + WAL files
  int64_t free_disk_bytes = 0;  // on the journal's filesystem
  int64_t commits = 0;          // transactions committed since Open
  // The newest entry's received_at (0: none yet), and how many entries since Open took
  // it instead of an older clock reading (received_at never goes backwards).
  int64_t newest_received_at_ms = 0;
  int64_t clock_held = 0;
};

class SaleJournal {
 public:
  virtual ~SaleJournal() = default;

  using AppendCallback = std::function<void(Result<Receipt>)>;

  // `sale` must come from core::DecodeSale. The callback runs exactly once: Receipt on
  // success (created or replay); kIdConflict for the same id with a different canonical
  // body; kInvalidField (field "ref") when a refund/void names an unknown sale; the
  // refund rules' codes (core/refund_rules.h) when a refund/void breaks them; kIdExpired
  // when the id's row was pruned but the id is still in the id index, kRefExpired when a
  // refund/void names such a sale (JournalOptions::id_horizon_ms);
  // kStorageUnavailable when the commit failed or the journal is closed. `done` may be
  // empty (fire and forget).
  virtual void Append(core::Sale sale, AppendCallback done) = 0;
  // The same, answered through a future (tests, tools).
  std::future<Result<Receipt>> Append(core::Sale sale);

  // A store event (core::DecodeEventRequest, or core::DecodeZRequest for a Z report),
  // stored exactly like a sale: the same seq, chain, idempotency by id (the ids of sales
  // and events are one space) and durability. The callback's Receipt: seq, hash,
  // received_at_ms, currency, total = the event's amount (drawer_open: the float;
  // cash_in/out: the amount; drawer_close: counted; z_report: 0, its figures are in
  // the stored entry, Get(id)), type = the event type name,
  // receipt_no "" (a Z report: "Z<n>").
  // Rules, judged by the one writer against everything committed before (so racing
  // terminals cannot both win):
  //  - drawer_open while the terminal's drawer is open: kDrawerAlreadyOpen;
  //  - cash_in, cash_out, drawer_close while it is not open: kDrawerClosed.
  // z_report: the writer builds the report inside the commit: z_number = last + 1,
  // first_seq = the entry after the last Z report (or the first row still stored),
  // last_seq = the entry just before it, figures = core::ComputeReport over those
  // entries in the request's currency, or when none was sent the currency of the first
  // entry covered (else the last Z report's, else "USD"). Its replay (same id) answers
  // the stored report when id, terminal_id, created_at, cashier (and currency, when
  // sent) match, else kIdConflict. Other events: same canonical bytes = replay.
  virtual void AppendEvent(core::StoreEvent event, AppendCallback done) = 0;
  std::future<Result<Receipt>> AppendEvent(core::StoreEvent event);

  // The open business day: every entry after the last Z report (from the first row
  // still stored when there is none), decoded, in seq order, read from one snapshot;
  // what GET /v1/reports/x and the drawer views compute their figures from.
  struct OpenDay {
    int64_t last_z_number = 0;  // 0: no Z report yet
    int64_t last_z_seq = 0;
    std::string last_z_currency;  // empty: no Z report yet
    std::vector<core::JournalEntry> entries;
    // Terminals whose drawer is open now, with the seq of their drawer_open.
    std::vector<std::pair<std::string, int64_t>> open_drawers;
  };
  virtual Result<OpenDay> ReadOpenDay() = 0;
  // The drawers open now, by terminal id, with when each was opened (the drawer_open's
  // received_at; 0 when that entry was pruned after upload). Cheap: no entry is decoded.
  struct OpenDrawerAt {
    std::string terminal_id;
    int64_t opened_seq = 0;
    int64_t opened_at_ms = 0;
  };
  virtual Result<std::vector<OpenDrawerAt>> ReadOpenDrawers() = 0;

  // Reads from a consistent snapshot. List: entries (sales and events) with seq >
  // after_seq in seq order, at most `limit` (limit <= 0: none). Get finds an event too.
  virtual Result<std::optional<core::StoredSale>> Get(const std::string& id) = 0;
  virtual Result<std::vector<core::StoredSale>> List(int64_t after_seq, int limit) = 0;
  virtual Result<JournalStats> Stats() = 0;

  // Walks the whole chain from the genesis hash (or, after pruning, from the chain
  // anchor): seq gapless from 1 (or anchor + 1), every hash equal to
  // SHA-256(prev || record). Returns the number of sales checked; kInternal when broken.
  virtual Result<int64_t> VerifyChain() = 0;
  // The storage's own consistency check (OK or kInternal with what is wrong).
  virtual Status IntegrityCheck() = 0;

  // ---- Offline card payments (issue #9) ----
  // Payments in `state` ("" = every state; outstanding | approved | declined | voided),
  // oldest first (received_at_ms, sale_id, payment_index), at most `limit` (<= 0: none).
  virtual Result<std::vector<OfflinePayment>> ListOfflinePayments(const std::string& state,
                                                                  int limit) = 0;
  // The exposure now: outstanding offline payments summed, from one read snapshot.
  virtual Result<OfflineExposure> ReadOfflineExposure() = 0;
  // The limits the journal enforces (fixed at open).
  virtual OfflineLimits offline_limits() const = 0;

  // OK while the last commit (or, before any, the open) succeeded; kStorageUnavailable
  // after a failed commit until one succeeds again, and after Close. Cheap; for /healthz.
  virtual Status Health() const = 0;
};

}  // namespace machub::journal
