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
//  - offline card payments (issue #9): SetOfflineLimits' limits checked before a sale is
//    stored (kOfflineLimitExceeded with the details limit, limit_amount, exposure,
//    remaining, as journal/offline.cc), every offline payment tracked (outstanding until
//    a payment_authorization answers it or a void of its sale releases it); an
//    authorization for an unknown sale -> kNotFound, a payment that is not offline ->
//    kInvalidField "payment_index", one already answered -> kPaymentResolved; its replay
//    is judged on the request's members (id, sale, index, result, auth_code, reason);
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
#include "core/currency.h"
#include "core/money.h"
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

  Result<std::vector<OpenDrawerAt>> ReadOpenDrawers() override {
    std::lock_guard<std::mutex> lock(mu_);
    if (!fail_.ok()) return fail_;
    std::vector<OpenDrawerAt> out;
    for (const auto& [terminal, seq] : open_drawers_) {
      int64_t at = 0;
      for (const auto& s : stored_) {
        if (s.seq == seq) at = s.received_at_ms;
      }
      out.push_back(OpenDrawerAt{terminal, seq, at});
    }
    std::sort(out.begin(), out.end(),
              [](const auto& a, const auto& b) { return a.terminal_id < b.terminal_id; });
    return out;
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

  Result<std::vector<journal::OfflinePayment>> ListOfflinePayments(const std::string& state,
                                                                   int limit) override {
    std::lock_guard<std::mutex> lock(mu_);
    if (!fail_.ok()) return fail_;
    std::vector<journal::OfflinePayment> out;
    for (const journal::OfflinePayment& p : offline_) {  // already in received order
      if (static_cast<int>(out.size()) >= limit) break;
      if (state.empty() || p.state == state) out.push_back(p);
    }
    return out;
  }

  Result<journal::OfflineExposure> ReadOfflineExposure() override {
    std::lock_guard<std::mutex> lock(mu_);
    if (!fail_.ok()) return fail_;
    journal::OfflineExposure e;
    for (const journal::OfflinePayment& p : offline_) {
      if (p.state != "outstanding") continue;
      e.store += p.amount;
      e.terminals[p.terminal_id] += p.amount;
      ++e.outstanding;
      if (e.oldest_received_at_ms == 0 || p.received_at_ms < e.oldest_received_at_ms) {
        e.oldest_received_at_ms = p.received_at_ms;
      }
    }
    return e;
  }

  journal::OfflineLimits offline_limits() const override {
    std::lock_guard<std::mutex> lock(mu_);
    return limits_;
  }

  // The offline limits (decimal strings as the configuration's; must parse).
  void SetOfflineLimits(journal::OfflineLimits limits) {
    std::lock_guard<std::mutex> lock(mu_);
    limits_ = std::move(limits);
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
    if (sale.type == core::SaleType::kSale) {
      Status limits = CheckOfflineLocked(sale);
      if (!limits.ok()) return limits;
    }
    const std::string receipt_no = sale.terminal_id + "-" + std::to_string(100000 + Next());
    core::StoredSale& s = Store(std::move(canonical), receipt_no);
    if (sale.type == core::SaleType::kSale) {
      for (size_t i = 0; i < sale.payments.size(); ++i) {
        if (!sale.payments[i].offline) continue;
        journal::OfflinePayment p;
        p.sale_id = sale.id;
        p.payment_index = static_cast<int64_t>(i);
        p.terminal_id = sale.terminal_id;
        p.amount = sale.payments[i].amount;
        p.currency = sale.currency;
        p.sale_seq = s.seq;
        p.received_at_ms = s.received_at_ms;
        p.state = "outstanding";
        offline_.push_back(std::move(p));
      }
    } else if (sale.type == core::SaleType::kVoid) {
      for (journal::OfflinePayment& p : offline_) {
        if (p.sale_id == sale.ref && p.state == "outstanding") {
          p.state = "voided";
          p.outcome_seq = s.seq;
        }
      }
    }
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
    if (event.type == core::EventType::kPaymentAuthorization) {
      return AppendOutcomeLocked(std::move(event));
    }
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

  // A limit in minor units of `currency` (-1: none), as journal/offline.cc rounds it.
  static int64_t LimitMinor(const std::string& text, const std::string& currency) {
    if (text.empty()) return -1;
    Result<int64_t> milli = core::ParseDecimal(text, 3);
    if (!milli.ok()) return -1;
    const core::Currency* c = core::FindCurrency(currency);
    int64_t scale = 1;
    for (int i = c != nullptr ? c->minor_units : 2; i < 3; ++i) scale *= 10;
    return *milli / scale;
  }

  static std::string Money(int64_t minor, const std::string& currency) {
    const core::Currency* c = core::FindCurrency(currency);
    return core::FormatAmount(minor, c != nullptr ? c->minor_units : 2);
  }

  // `remaining` < 0: max - exposure (a single payment's limit leaves the whole limit).
  static Status Exceeded(const char* limit, int64_t max, int64_t exposure,
                         const std::string& currency, std::string field, int64_t remaining = -1) {
    if (remaining < 0) remaining = max - exposure;
    return Status(ErrorCode::kOfflineLimitExceeded, std::string(limit) + " would be passed",
                  std::move(field))
        .WithDetail("limit", limit)
        .WithDetail("limit_amount", Money(max, currency))
        .WithDetail("exposure", Money(exposure, currency))
        .WithDetail("remaining", Money(remaining < 0 ? 0 : remaining, currency));
  }

  Status CheckOfflineLocked(const core::Sale& sale) const {
    int64_t offline = 0;
    for (size_t i = 0; i < sale.payments.size(); ++i) {
      const core::Payment& p = sale.payments[i];
      if (!p.offline) continue;
      const std::string field = "payments[" + std::to_string(i) + "]";
      if (!limits_.enabled)
        return Exceeded("offline.enabled", 0, 0, sale.currency, field + ".offline");
      const int64_t card = LimitMinor(limits_.card_max_amount, sale.currency);
      if (card >= 0 && p.amount > card) {
        return Exceeded("offline.card_max_amount", card, p.amount, sale.currency, field + ".amount",
                        card);
      }
      offline += p.amount;
    }
    if (offline == 0) return Status::Ok();
    int64_t terminal = 0;
    int64_t store = 0;
    for (const journal::OfflinePayment& p : offline_) {
      if (p.state != "outstanding") continue;
      store += p.amount;
      if (p.terminal_id == sale.terminal_id) terminal += p.amount;
    }
    const int64_t tmax = LimitMinor(limits_.terminal_max_outstanding, sale.currency);
    if (tmax >= 0 && terminal + offline > tmax) {
      return Exceeded("offline.terminal_max_outstanding", tmax, terminal, sale.currency,
                      "payments");
    }
    const int64_t smax = LimitMinor(limits_.store_max_outstanding, sale.currency);
    if (smax >= 0 && store + offline > smax) {
      return Exceeded("offline.store_max_outstanding", smax, store, sale.currency, "payments");
    }
    return Status::Ok();
  }

  Result<journal::Receipt> AppendOutcomeLocked(core::StoreEvent event) {
    if (const core::StoredSale* old = Find(event.id)) {
      const core::StoreEvent* e = old->is_event() ? &*old->event : nullptr;
      if (e == nullptr || e->type != core::EventType::kPaymentAuthorization ||
          e->sale_id != event.sale_id || e->payment_index != event.payment_index ||
          e->result != event.result || e->auth_code != event.auth_code ||
          e->reason != event.reason ||
          (event.created_at_ms != 0 && e->created_at_ms != event.created_at_ms)) {
        return Status(ErrorCode::kIdConflict, "this id was stored with a different body", "id");
      }
      return ReceiptOf(*old, false);
    }
    const core::StoredSale* sale = Find(event.sale_id);
    if (sale == nullptr) return Status(ErrorCode::kNotFound, "no sale with this id", "sale_id");
    if (sale->is_event() || sale->sale.type != core::SaleType::kSale) {
      return Status(ErrorCode::kInvalidField, "only a sale's payments are authorized", "sale_id");
    }
    journal::OfflinePayment* tracked = nullptr;
    for (journal::OfflinePayment& p : offline_) {
      if (p.sale_id == event.sale_id && p.payment_index == event.payment_index) tracked = &p;
    }
    if (tracked == nullptr) {
      return Status(ErrorCode::kInvalidField, "the sale has no offline payment at this index",
                    "payment_index");
    }
    if (tracked->state != "outstanding") {
      return Status(ErrorCode::kPaymentResolved,
                    "this payment's outcome is already recorded (" + tracked->state + ")",
                    "payment_index")
          .WithDetail("state", tracked->state);
    }
    event.terminal_id = sale->sale.terminal_id;
    event.currency = sale->sale.currency;
    event.amount = tracked->amount;
    if (event.created_at_ms == 0) event.created_at_ms = clock_->NowMs();
    std::string canonical = core::CanonicalEvent(event);
    core::StoredSale& s = Store(std::move(canonical), "");
    tracked->state = event.result;
    tracked->outcome_seq = s.seq;
    s.event = std::move(event);
    OnStored(s);
    return ReceiptOf(s, true);
  }

  const core::Clock* clock_;
  mutable std::mutex mu_;
  journal::OfflineLimits limits_;
  std::vector<journal::OfflinePayment> offline_;  // in the order stored
  Status fail_;
  bool cash_requires_open_drawer_ = false;
  std::vector<core::StoredSale> stored_;
  std::map<std::string, int64_t> open_drawers_;  // terminal -> seq of its drawer_open
  int last_list_limit_ = 0;
  int appends_ = 0;
};

}  // namespace machub::testing
