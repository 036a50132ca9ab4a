#pragma once
// MemoryJournal: an in-memory journal::SaleJournal for the API's unit tests and the
// request fuzz target (test support, never in the hub). It models the rules the real
// journal's single writer applies (journal/sale_journal.h), so that the routes can be
// tested against them without SQLite:
//  - one gapless seq for sales and store events, one id space, a hash chain;
//  - idempotency: same id and same canonical bytes = replay (created false), other bytes
//    = kIdConflict; a Z report replays when id, terminal_id, created_at, cashier (and the
//    currency, when the request named one) match;
//  - refunds and voids: `ref` must name a stored sale (kInvalidField "ref"), then
//    core::CheckReversal against the refunds/voids already stored;
//  - payment_authorization events (issue #9) are stored without the offline-limit model;
//  - drawers: drawer_open on an open drawer -> kDrawerAlreadyOpen; cash_in, cash_out,
//    drawer_close on a closed one -> kDrawerClosed; with cash_requires_open_drawer, a
//    sale/refund/void paid partly in cash on a closed drawer -> kDrawerClosed;
//  - the Z report is built inside the append: z_number = last + 1, the seq range since
//    the last Z, figures = core::ComputeReport in the request's currency (else the first
//    covered entry's, else the last Z's, else USD).
// Appends answer synchronously on the calling thread, after the internal lock is
// released (a callback may call back into the journal). Thread-safe.

#include <algorithm>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "core/clock.h"
#include "core/refund_rules.h"
#include "core/report.h"
#include "core/sale_codec.h"
#include "core/sha256.h"
#include "core/store_event.h"
#include "journal/sale_journal.h"

namespace machub::testing {

class MemoryJournal : public journal::SaleJournal {
 public:
  using SaleJournal::Append;
  using SaleJournal::AppendEvent;

  // `clock` gives received_at; it must outlive the journal.
  explicit MemoryJournal(const core::Clock* clock) : clock_(clock) {}

  void Append(core::Sale sale, AppendCallback done) override {
    Result<journal::Receipt> result = AppendSaleLocked(std::move(sale));
    if (done) done(std::move(result));
  }

  void AppendEvent(core::StoreEvent event, AppendCallback done) override {
    Result<journal::Receipt> result = AppendEventLocked(std::move(event));
    if (done) done(std::move(result));
  }

  Result<OpenDay> ReadOpenDay() override {
    std::lock_guard<std::mutex> lock(mu_);
    if (!fail_.ok()) return fail_;
    OpenDay day;
    const size_t from = SinceLastZ(&day.last_z_number, &day.last_z_seq, &day.last_z_currency);
    for (size_t i = from; i < stored_.size(); ++i) day.entries.push_back(EntryOf(stored_[i]));
    for (const auto& [terminal, seq] : open_drawers_) day.open_drawers.emplace_back(terminal, seq);
    std::sort(day.open_drawers.begin(), day.open_drawers.end(),
              [](const auto& a, const auto& b) { return a.second < b.second; });
    return day;
  }

  Result<std::optional<core::StoredSale>> Get(const std::string& id) override {
    std::lock_guard<std::mutex> lock(mu_);
    if (!fail_.ok()) return fail_;
    const core::StoredSale* found = Find(id);
    if (found == nullptr) return std::optional<core::StoredSale>();
    return std::optional<core::StoredSale>(*found);
  }

  Result<std::vector<core::StoredSale>> List(int64_t after_seq, int limit) override {
    std::lock_guard<std::mutex> lock(mu_);
    if (!fail_.ok()) return fail_;
    last_list_limit_ = limit;
    std::vector<core::StoredSale> out;
    for (const auto& s : stored_) {
      if (s.seq > after_seq && static_cast<int>(out.size()) < limit) out.push_back(s);
    }
    return out;
  }

  Result<journal::JournalStats> Stats() override {
    std::lock_guard<std::mutex> lock(mu_);
    if (!fail_.ok()) return fail_;
    journal::JournalStats stats;
    stats.last_seq = static_cast<int64_t>(stored_.size());
    stats.sales = static_cast<int64_t>(stored_.size());
    stats.size_bytes = 4096;
    stats.free_disk_bytes = 1 << 30;
    return stats;
  }

  Result<int64_t> VerifyChain() override {
    std::lock_guard<std::mutex> lock(mu_);
    return static_cast<int64_t>(stored_.size());
  }
  Status IntegrityCheck() override { return Status::Ok(); }
  Status Health() const override {
    std::lock_guard<std::mutex> lock(mu_);
    return fail_;
  }

  // Every call fails with `status` until it is set back to OK.
  void SetFailure(Status status) {
    std::lock_guard<std::mutex> lock(mu_);
    fail_ = std::move(status);
  }
  void SetCashRequiresOpenDrawer(bool required) {
    std::lock_guard<std::mutex> lock(mu_);
    cash_requires_open_drawer_ = required;
  }
  int last_list_limit() const {
    std::lock_guard<std::mutex> lock(mu_);
    return last_list_limit_;
  }
  // Append and AppendEvent calls so far (stored or not).
  int appends() const {
    std::lock_guard<std::mutex> lock(mu_);
    return appends_;
  }
  // Entries stored (sales and events).
  size_t size() const {
    std::lock_guard<std::mutex> lock(mu_);
    return stored_.size();
  }

 protected:
  // Called with the lock held for each entry just stored (before the answer).
  virtual void OnStored(const core::StoredSale& /*stored*/) {}

 private:
  static const std::string& IdOf(const core::StoredSale& s) {
    return s.is_event() ? s.event->id : s.sale.id;
  }

  const core::StoredSale* Find(const std::string& id) const {
    for (const auto& s : stored_) {
      if (IdOf(s) == id) return &s;
    }
    return nullptr;
  }

  // Index of the first entry after the last Z report; fills what is known of that Z.
  size_t SinceLastZ(int64_t* z_number, int64_t* z_seq, std::string* z_currency) const {
    for (size_t i = stored_.size(); i > 0; --i) {
      const core::StoredSale& s = stored_[i - 1];
      if (s.is_event() && s.event->type == core::EventType::kZReport) {
        *z_number = s.event->z_number;
        *z_seq = s.seq;
        *z_currency = s.event->currency;
        return i;
      }
    }
    return 0;
  }

  static core::JournalEntry EntryOf(const core::StoredSale& s) {
    core::JournalEntry entry;
    entry.seq = s.seq;
    entry.receipt_no = s.receipt_no;
    entry.received_at_ms = s.received_at_ms;
    if (s.is_event()) {
      entry.body = *s.event;
    } else {
      entry.body = s.sale;
    }
    return entry;
  }

  core::StoredSale& Store(std::string canonical, std::string receipt_no) {
    core::StoredSale s;
    s.seq = static_cast<int64_t>(stored_.size()) + 1;
    s.receipt_no = std::move(receipt_no);
    s.received_at_ms = clock_->NowMs();
    s.canonical = std::move(canonical);
    s.prev_hash = stored_.empty() ? std::string(32, '\0') : stored_.back().hash;
    s.hash = core::Sha256(s.prev_hash + s.canonical);
    stored_.push_back(std::move(s));
    return stored_.back();
  }

  static journal::Receipt ReceiptOf(const core::StoredSale& s, bool created) {
    journal::Receipt r;
    r.created = created;
    r.seq = s.seq;
    r.receipt_no = s.receipt_no;
    r.hash = s.hash;
    r.received_at_ms = s.received_at_ms;
    if (s.is_event()) {
      const core::StoreEvent& e = *s.event;
      r.id = e.id;
      r.currency = e.currency;
      r.type = std::string(core::EventTypeName(e.type));
      r.total = e.type == core::EventType::kZReport ? 0 : e.amount;  // as the real one
    } else {
      r.id = s.sale.id;
      r.total = s.sale.total;
      r.change = s.sale.change;
      r.currency = s.sale.currency;
      r.type = std::string(core::SaleTypeName(s.sale.type));
    }
    return r;
  }

  Result<journal::Receipt> AppendSaleLocked(core::Sale sale) {
    std::lock_guard<std::mutex> lock(mu_);
    ++appends_;
    if (!fail_.ok()) return fail_;
    std::string canonical = core::CanonicalSale(sale);
    if (const core::StoredSale* old = Find(sale.id)) {
      if (old->is_event() || old->canonical != canonical) {
        return Status(ErrorCode::kIdConflict, "this id was stored with a different body", "id");
      }
      return ReceiptOf(*old, false);
    }
    if (sale.type != core::SaleType::kSale) {
      const core::StoredSale* original = Find(sale.ref);
      if (original == nullptr || original->is_event()) {
        return Status(ErrorCode::kInvalidField, "ref names no sale on this hub", "ref");
      }
      std::vector<core::Sale> earlier;
      for (const auto& s : stored_) {
        if (!s.is_event() && s.sale.type != core::SaleType::kSale && s.sale.ref == sale.ref) {
          earlier.push_back(s.sale);
        }
      }
      Status rules = core::CheckReversal(original->sale, earlier, sale);
      if (!rules.ok()) return rules;
    }
    if (cash_requires_open_drawer_ && !open_drawers_.count(sale.terminal_id)) {
      for (const core::Payment& p : sale.payments) {
        if (p.method == "cash") {
          return Status(ErrorCode::kDrawerClosed,
                        "cash on a terminal whose drawer is not open (drawer.required is on): "
                        "open the drawer first",
                        "payments");
        }
      }
    }
    const std::string receipt_no = sale.terminal_id + "-" + std::to_string(100000 + Next());
    core::StoredSale& s = Store(std::move(canonical), receipt_no);
    s.sale = std::move(sale);
    OnStored(s);
    return ReceiptOf(s, true);
  }

  int64_t Next() const { return static_cast<int64_t>(stored_.size()) + 1; }

  Result<journal::Receipt> AppendEventLocked(core::StoreEvent event) {
    std::lock_guard<std::mutex> lock(mu_);
    ++appends_;
    if (!fail_.ok()) return fail_;
    if (event.type == core::EventType::kZReport) return AppendZLocked(std::move(event));
    std::string canonical = core::CanonicalEvent(event);
    if (const core::StoredSale* old = Find(event.id)) {
      if (!old->is_event() || old->canonical != canonical) {
        return Status(ErrorCode::kIdConflict, "this id was stored with a different body", "id");
      }
      return ReceiptOf(*old, false);
    }
    const bool open = open_drawers_.count(event.terminal_id) > 0;
    const bool drawer_event = event.type != core::EventType::kPaymentAuthorization;
    if (drawer_event && event.type == core::EventType::kDrawerOpen && open) {
      return Status(ErrorCode::kDrawerAlreadyOpen,
                    "this terminal's drawer is already open; close it first", "type");
    }
    if (drawer_event && event.type != core::EventType::kDrawerOpen && !open) {
      return Status(ErrorCode::kDrawerClosed, "this terminal's drawer is not open", "type");
    }
    core::StoredSale& s = Store(std::move(canonical), "");
    if (event.type == core::EventType::kDrawerOpen) open_drawers_[event.terminal_id] = s.seq;
    if (event.type == core::EventType::kDrawerClose) open_drawers_.erase(event.terminal_id);
    s.event = std::move(event);
    OnStored(s);
    return ReceiptOf(s, true);
  }

  Result<journal::Receipt> AppendZLocked(core::StoreEvent z) {
    if (const core::StoredSale* old = Find(z.id)) {
      const core::StoreEvent* e = old->is_event() ? &*old->event : nullptr;
      if (e == nullptr || e->type != core::EventType::kZReport || e->terminal_id != z.terminal_id ||
          e->created_at_ms != z.created_at_ms || e->cashier != z.cashier ||
          (!z.currency.empty() && z.currency != e->currency)) {
        return Status(ErrorCode::kIdConflict, "this id was stored with a different body", "id");
      }
      return ReceiptOf(*old, false);
    }
    int64_t last_z = 0;
    int64_t last_z_seq = 0;
    std::string last_z_currency;
    const size_t from = SinceLastZ(&last_z, &last_z_seq, &last_z_currency);
    std::vector<core::JournalEntry> entries;
    for (size_t i = from; i < stored_.size(); ++i) entries.push_back(EntryOf(stored_[i]));
    if (z.currency.empty()) {
      if (!entries.empty()) {
        const core::JournalEntry& first = entries.front();
        z.currency = first.sale() ? first.sale()->currency : first.event()->currency;
      } else {
        z.currency = last_z_currency.empty() ? "USD" : last_z_currency;
      }
    }
    Result<core::ReportFigures> figures = core::ComputeReport(entries, z.currency);
    if (!figures.ok()) return figures.status();
    z.z_number = last_z + 1;
    z.first_seq = last_z_seq + 1;
    z.last_seq = static_cast<int64_t>(stored_.size());
    z.figures = core::ReportFiguresJson(*figures);
    std::string canonical = core::CanonicalEvent(z);
    core::StoredSale& s = Store(std::move(canonical), "Z" + std::to_string(z.z_number));
    s.event = std::move(z);
    OnStored(s);
    return ReceiptOf(s, true);
  }

  const core::Clock* clock_;
  mutable std::mutex mu_;
  Status fail_;
  bool cash_requires_open_drawer_ = false;
  std::vector<core::StoredSale> stored_;
  std::map<std::string, int64_t> open_drawers_;  // terminal -> seq of its drawer_open
  int last_list_limit_ = 0;
  int appends_ = 0;
};

}  // namespace machub::testing
