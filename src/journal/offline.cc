// Offline card payments (issue #9): the exposure limits, checked by the one writer in the
// same transaction as the commit (so 64 terminals racing to the store limit cannot pass it
// together), the offline_payments rows that make the exposure recountable after a
// restart, and the authorization outcomes that release it.

#include <sqlite3.h>

#include <string>
#include <utility>
#include <vector>

#include "core/currency.h"
#include "core/money.h"
#include "core/sale_codec.h"
#include "journal/canonical_pack.h"
#include "journal/internal.h"

namespace machub::journal {
namespace {

const Status kStorage(ErrorCode::kStorageUnavailable, "journal: storage failed");

// A limit in thousandths of a unit, in minor units of `currency` (rounded down, so a limit
// never grows by the conversion).
int64_t LimitInMinor(int64_t milli, const std::string& currency) {
  const core::Currency* c = core::FindCurrency(currency);
  const int minor = c != nullptr ? c->minor_units : 2;
  int64_t scale = 1;
  for (int i = minor; i < 3; ++i) scale *= 10;
  return milli / scale;
}

std::string Money(int64_t minor, const std::string& currency) {
  const core::Currency* c = core::FindCurrency(currency);
  return core::FormatAmount(minor, c != nullptr ? c->minor_units : 2);
}

Status LimitExceeded(std::string_view limit, std::string message, int64_t limit_minor,
                     int64_t exposure, int64_t remaining, const std::string& currency,
                     std::string field) {
  return Status(ErrorCode::kOfflineLimitExceeded, std::move(message), std::move(field))
      .WithDetail("limit", std::string(limit))
      .WithDetail("limit_amount", Money(limit_minor, currency))
      .WithDetail("exposure", Money(exposure, currency))
      .WithDetail("remaining", Money(remaining < 0 ? 0 : remaining, currency));
}

}  // namespace

Result<int64_t> ParseOfflineLimit(const std::string& text, std::string_view name) {
  if (text.empty()) return int64_t{-1};
  Result<int64_t> milli = core::ParseDecimal(text, 3);
  if (!milli.ok()) {
    return Status(ErrorCode::kInvalidArgument,
                  "journal: " + std::string(name) +
                      " must be a decimal amount with at most 3 decimals, such as \"500.00\"");
  }
  return milli;
}

Result<SqliteJournal::ParsedOfflineLimits> SqliteJournal::ParseOfflineLimits(
    const OfflineLimits& limits) {
  ParsedOfflineLimits parsed;
  parsed.enabled = limits.enabled;
  ASSIGN_OR_RETURN(parsed.card_milli,
                   ParseOfflineLimit(limits.card_max_amount, "offline.card_max_amount"));
  ASSIGN_OR_RETURN(parsed.terminal_milli, ParseOfflineLimit(limits.terminal_max_outstanding,
                                                            "offline.terminal_max_outstanding"));
  ASSIGN_OR_RETURN(parsed.store_milli, ParseOfflineLimit(limits.store_max_outstanding,
                                                         "offline.store_max_outstanding"));
  return parsed;
}

OfflineLimits SqliteJournal::offline_limits() const {
  std::lock_guard lock(limits_mu_);
  return limits_text_;
}

Status SqliteJournal::SetOfflineLimits(const OfflineLimits& limits) {
  ASSIGN_OR_RETURN(ParsedOfflineLimits parsed, ParseOfflineLimits(limits));
  std::lock_guard lock(limits_mu_);
  limits_text_ = limits;
  limits_ = parsed;
  return Status::Ok();
}

Status SqliteJournal::LoadOfflineState() {
  std::map<std::string, int64_t> terminals;
  int64_t store = 0;
  Stmt stmt(wdb_,
            "SELECT terminal_id, sum(amount) FROM offline_payments WHERE state = 'outstanding' "
            "GROUP BY terminal_id");
  int rc = stmt.prepare_rc();
  if (rc == SQLITE_OK) {
    while ((rc = sqlite3_step(stmt.get())) == SQLITE_ROW) {
      const int64_t sum = sqlite3_column_int64(stmt.get(), 1);
      terminals[ColumnText(stmt.get(), 0)] = sum;
      store += sum;
    }
  }
  if (rc != SQLITE_DONE) return SqliteError(wdb_, rc, "load offline exposure");
  offline_terminal_ = std::move(terminals);
  offline_store_ = store;
  return Status::Ok();
}

int64_t SqliteJournal::OutstandingFor(const std::string& terminal_id) const {
  int64_t outstanding = 0;
  if (auto it = offline_terminal_.find(terminal_id); it != offline_terminal_.end()) {
    outstanding = it->second;
  }
  if (auto it = staged_offline_terminal_.find(terminal_id); it != staged_offline_terminal_.end()) {
    outstanding += it->second;
  }
  return outstanding;
}

Status SqliteJournal::CheckOfflineLimits(const core::Sale& sale) const {
  bool any_offline = false;
  for (const core::Payment& payment : sale.payments) any_offline |= payment.offline;
  if (!any_offline) return Status::Ok();
  ParsedOfflineLimits limits;
  {
    std::lock_guard lock(limits_mu_);
    limits = limits_;
  }
  int64_t offline = 0;
  for (size_t i = 0; i < sale.payments.size(); ++i) {
    const core::Payment& payment = sale.payments[i];
    if (!payment.offline) continue;
    const std::string field = "payments[" + std::to_string(i) + "]";
    if (!limits.enabled) {
      return LimitExceeded("offline.enabled",
                           "offline card payments are turned off on this hub: ask for another "
                           "tender",
                           0, 0, 0, sale.currency, field + ".offline");
    }
    if (limits.card_milli >= 0) {
      const int64_t max = LimitInMinor(limits.card_milli, sale.currency);
      if (payment.amount > max) {
        return LimitExceeded("offline.card_max_amount",
                             "this offline card payment is above the largest one allowed", max,
                             payment.amount, max, sale.currency, field + ".amount");
      }
    }
    offline += payment.amount;
  }
  if (offline == 0) return Status::Ok();
  if (limits.terminal_milli >= 0) {
    const int64_t max = LimitInMinor(limits.terminal_milli, sale.currency);
    const int64_t outstanding = OutstandingFor(sale.terminal_id);
    if (outstanding + offline > max) {
      return LimitExceeded("offline.terminal_max_outstanding",
                           "this terminal's outstanding offline card payments would pass its "
                           "limit",
                           max, outstanding, max - outstanding, sale.currency, "payments");
    }
  }
  if (limits.store_milli >= 0) {
    const int64_t max = LimitInMinor(limits.store_milli, sale.currency);
    const int64_t outstanding = offline_store_ + staged_offline_store_;
    if (outstanding + offline > max) {
      return LimitExceeded("offline.store_max_outstanding",
                           "the store's outstanding offline card payments would pass its limit",
                           max, outstanding, max - outstanding, sale.currency, "payments");
    }
  }
  return Status::Ok();
}

Status SqliteJournal::TrackOfflinePayments(const core::Sale& sale, int64_t seq,
                                           int64_t received_at_ms, int* storage_rc) {
  WriterStatements& s = *wstmts_;
  for (size_t i = 0; i < sale.payments.size(); ++i) {
    const core::Payment& payment = sale.payments[i];
    if (!payment.offline) continue;
    ResetOnExit reset(s.offline_insert);
    BindText(s.offline_insert, 1, sale.id);
    sqlite3_bind_int64(s.offline_insert, 2, static_cast<int64_t>(i));
    BindText(s.offline_insert, 3, sale.terminal_id);
    sqlite3_bind_int64(s.offline_insert, 4, payment.amount);
    BindText(s.offline_insert, 5, sale.currency);
    sqlite3_bind_int64(s.offline_insert, 6, seq);
    sqlite3_bind_int64(s.offline_insert, 7, received_at_ms);
    const int rc = sqlite3_step(s.offline_insert);
    if (rc != SQLITE_DONE) {
      *storage_rc = rc;
      return kStorage;
    }
    staged_offline_terminal_[sale.terminal_id] += payment.amount;
    staged_offline_store_ += payment.amount;
  }
  return Status::Ok();
}

Status SqliteJournal::ReleaseOnVoid(const core::Sale& void_sale, int64_t seq, int* storage_rc) {
  WriterStatements& s = *wstmts_;
  // A voided sale is never forwarded to the processor: its payments are no longer at risk.
  std::vector<std::pair<int64_t, std::pair<std::string, int64_t>>> released;
  {
    ResetOnExit reset(s.offline_of_sale);
    BindText(s.offline_of_sale, 1, void_sale.ref);
    int rc;
    while ((rc = sqlite3_step(s.offline_of_sale)) == SQLITE_ROW) {
      released.push_back(
          {sqlite3_column_int64(s.offline_of_sale, 0),
           {ColumnText(s.offline_of_sale, 1), sqlite3_column_int64(s.offline_of_sale, 2)}});
    }
    if (rc != SQLITE_DONE) {
      *storage_rc = rc;
      return kStorage;
    }
  }
  for (const auto& [index, who] : released) {
    ResetOnExit reset(s.offline_resolve);
    BindText(s.offline_resolve, 1, void_sale.ref);
    sqlite3_bind_int64(s.offline_resolve, 2, index);
    BindText(s.offline_resolve, 3, "voided");
    sqlite3_bind_int64(s.offline_resolve, 4, seq);
    const int rc = sqlite3_step(s.offline_resolve);
    if (rc != SQLITE_DONE) {
      *storage_rc = rc;
      return kStorage;
    }
    staged_offline_terminal_[who.first] -= who.second;
    staged_offline_store_ -= who.second;
  }
  return Status::Ok();
}

Status SqliteJournal::PrepareAuthorization(core::StoreEvent& event, int* storage_rc) {
  WriterStatements& s = *wstmts_;
  core::Sale sale;
  {
    ResetOnExit reset(s.exists);
    const int rc = StepById(*recent_ids_, s.id_keys, s.exists, event.sale_id);
    if (rc == SQLITE_DONE) {
      Result<bool> pruned = InIdIndex(event.sale_id, storage_rc);
      if (!pruned.ok()) return pruned.status();
      if (*pruned) {
        return Status(ErrorCode::kRefExpired,
                      "the sale was pruned after upload; its outcome cannot be checked here",
                      "sale_id");
      }
      return Status(ErrorCode::kNotFound, "no sale with this id", "sale_id");
    }
    if (rc != SQLITE_ROW) {
      *storage_rc = rc;
      return kStorage;
    }
    if (ColumnText(s.exists, 1) != "sale") {
      return Status(ErrorCode::kInvalidField, "only a sale's payments are authorized", "sale_id");
    }
    ASSIGN_OR_RETURN(const std::string stored, ColumnCanonical(s.exists, 0));
    ASSIGN_OR_RETURN(sale, core::DecodeStoredCanonical(stored));
  }
  if (event.payment_index >= static_cast<int64_t>(sale.payments.size()) ||
      !sale.payments[static_cast<size_t>(event.payment_index)].offline) {
    return Status(ErrorCode::kInvalidField, "the sale has no offline payment at this index",
                  "payment_index");
  }
  // Resolved already (by another outcome, or by a void)?
  {
    ResetOnExit reset(s.offline_find);
    BindText(s.offline_find, 1, event.sale_id);
    sqlite3_bind_int64(s.offline_find, 2, event.payment_index);
    const int rc = sqlite3_step(s.offline_find);
    if (rc == SQLITE_ROW) {
      const std::string state = ColumnText(s.offline_find, 0);
      if (state != "outstanding") {
        return Status(ErrorCode::kPaymentResolved,
                      "this payment's outcome is already recorded (" + state + ")", "payment_index")
            .WithDetail("state", state);
      }
    } else if (rc != SQLITE_DONE) {
      *storage_rc = rc;
      return kStorage;
    }
  }
  const core::Payment& payment = sale.payments[static_cast<size_t>(event.payment_index)];
  event.terminal_id = sale.terminal_id;
  event.currency = sale.currency;
  event.amount = payment.amount;
  if (event.created_at_ms == 0) event.created_at_ms = clock_->NowMs();
  return Status::Ok();
}

Status SqliteJournal::RecordOutcome(const core::StoreEvent& event, int64_t seq, int* storage_rc) {
  WriterStatements& s = *wstmts_;
  std::string state;
  std::string terminal_id;
  int64_t amount = 0;
  {
    ResetOnExit reset(s.offline_find);
    BindText(s.offline_find, 1, event.sale_id);
    sqlite3_bind_int64(s.offline_find, 2, event.payment_index);
    const int rc = sqlite3_step(s.offline_find);
    if (rc == SQLITE_ROW) {
      state = ColumnText(s.offline_find, 0);
      terminal_id = ColumnText(s.offline_find, 1);
      amount = sqlite3_column_int64(s.offline_find, 2);
    } else if (rc != SQLITE_DONE) {
      *storage_rc = rc;
      return kStorage;
    }
  }
  if (state.empty()) {
    // A sale stored before schema v7 has no row (nothing was counted for it): the
    // outcome gets one, already resolved.
    ResetOnExit reset(s.offline_insert);
    BindText(s.offline_insert, 1, event.sale_id);
    sqlite3_bind_int64(s.offline_insert, 2, event.payment_index);
    BindText(s.offline_insert, 3, event.terminal_id);
    sqlite3_bind_int64(s.offline_insert, 4, event.amount);
    BindText(s.offline_insert, 5, event.currency);
    sqlite3_bind_int64(s.offline_insert, 6, 0);
    sqlite3_bind_int64(s.offline_insert, 7, 0);
    const int rc = sqlite3_step(s.offline_insert);
    if (rc != SQLITE_DONE) {
      *storage_rc = rc;
      return kStorage;
    }
  }
  {
    ResetOnExit reset(s.offline_resolve);
    BindText(s.offline_resolve, 1, event.sale_id);
    sqlite3_bind_int64(s.offline_resolve, 2, event.payment_index);
    BindText(s.offline_resolve, 3, event.result);
    sqlite3_bind_int64(s.offline_resolve, 4, seq);
    const int rc = sqlite3_step(s.offline_resolve);
    if (rc != SQLITE_DONE) {
      *storage_rc = rc;
      return kStorage;
    }
  }
  if (state == "outstanding") {
    staged_offline_terminal_[terminal_id] -= amount;
    staged_offline_store_ -= amount;
  }
  return Status::Ok();
}

Result<std::vector<OfflinePayment>> SqliteJournal::ListOfflinePayments(const std::string& state,
                                                                       int limit) {
  std::vector<OfflinePayment> out;
  if (limit <= 0) return out;
  ASSIGN_OR_RETURN(ReadLease conn, AcquireRead());
  ASSIGN_OR_RETURN(sqlite3_stmt * stmt,
                   conn->Prepare("SELECT sale_id, payment_index, terminal_id, amount, currency, "
                                 "sale_seq, received_at_ms, state, coalesce(outcome_seq, 0) "
                                 "FROM offline_payments WHERE ?1 = '' OR state = ?1 "
                                 "ORDER BY received_at_ms, sale_id, payment_index LIMIT ?2"));
  ResetOnExit reset(stmt);
  BindText(stmt, 1, state);
  sqlite3_bind_int(stmt, 2, limit);
  int rc;
  while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
    OfflinePayment p;
    p.sale_id = ColumnText(stmt, 0);
    p.payment_index = sqlite3_column_int64(stmt, 1);
    p.terminal_id = ColumnText(stmt, 2);
    p.amount = sqlite3_column_int64(stmt, 3);
    p.currency = ColumnText(stmt, 4);
    p.sale_seq = sqlite3_column_int64(stmt, 5);
    p.received_at_ms = sqlite3_column_int64(stmt, 6);
    p.state = ColumnText(stmt, 7);
    p.outcome_seq = sqlite3_column_int64(stmt, 8);
    out.push_back(std::move(p));
  }
  if (rc != SQLITE_DONE) return SqliteError(conn->db, rc, "list offline payments");
  return out;
}

Result<OfflineExposure> SqliteJournal::ReadOfflineExposure() {
  ASSIGN_OR_RETURN(ReadLease conn, AcquireRead());
  ASSIGN_OR_RETURN(sqlite3_stmt * stmt,
                   conn->Prepare("SELECT terminal_id, sum(amount), count(*), min(received_at_ms) "
                                 "FROM offline_payments WHERE state = 'outstanding' "
                                 "GROUP BY terminal_id"));
  ResetOnExit reset(stmt);
  OfflineExposure exposure;
  int rc;
  while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
    const int64_t sum = sqlite3_column_int64(stmt, 1);
    exposure.terminals[ColumnText(stmt, 0)] = sum;
    exposure.store += sum;
    exposure.outstanding += sqlite3_column_int64(stmt, 2);
    const int64_t oldest = sqlite3_column_int64(stmt, 3);
    if (exposure.oldest_received_at_ms == 0 || oldest < exposure.oldest_received_at_ms) {
      exposure.oldest_received_at_ms = oldest;
    }
  }
  if (rc != SQLITE_DONE) return SqliteError(conn->db, rc, "read offline exposure");
  return exposure;
}

Result<OfflineExposure> SqliteJournal::WriterExposureForTest() {
  OfflineExposure exposure;
  Status status = RunWriterTransaction([&](sqlite3*) {
    exposure.terminals = offline_terminal_;
    exposure.store = offline_store_;
    return Status::Ok();
  });
  if (!status.ok()) return status;
  return exposure;
}

}  // namespace machub::journal
