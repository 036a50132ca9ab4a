// The writer's side of store events (issue #8): idempotency, the drawer rules and the Z
// report, judged inside the group's transaction on the one writer thread, so two
// terminals racing for the same drawer or two managers closing the day at once cannot
// both win. The rows go into the sales table through InsertRow, like a sale's.

#include <sqlite3.h>

#include <string>
#include <utility>
#include <vector>

#include "core/report.h"
#include "core/store_event.h"
#include "journal/canonical_pack.h"
#include "journal/internal.h"

namespace machub::journal {
namespace {

const Status kStorage(ErrorCode::kStorageUnavailable, "journal: storage failed");

// What a replay of a Z request must repeat: the request's own members (the figures are
// the hub's, built at the first commit).
bool SameAuthorizationRequest(const core::StoreEvent& stored, const core::StoreEvent& request) {
  return stored.id == request.id && stored.sale_id == request.sale_id &&
         stored.payment_index == request.payment_index && stored.result == request.result &&
         stored.auth_code == request.auth_code && stored.reason == request.reason &&
         (request.created_at_ms == 0 || stored.created_at_ms == request.created_at_ms);
}

bool SameZRequest(const core::StoreEvent& stored, const core::StoreEvent& request) {
  return stored.id == request.id && stored.terminal_id == request.terminal_id &&
         stored.created_at_ms == request.created_at_ms && stored.cashier == request.cashier &&
         (request.currency.empty() || stored.currency == request.currency);
}

std::string_view EntryCurrency(const core::JournalEntry& entry) {
  if (const core::Sale* sale = entry.sale()) return sale->currency;
  return entry.event()->currency;
}

}  // namespace

Status SqliteJournal::LoadStoreDayState() {
  std::map<std::string, int64_t> drawers;
  {
    Stmt stmt(wdb_, "SELECT terminal_id, opened_seq FROM drawers");
    int rc = stmt.prepare_rc();
    if (rc == SQLITE_OK) {
      while ((rc = sqlite3_step(stmt.get())) == SQLITE_ROW) {
        drawers[ColumnText(stmt.get(), 0)] = sqlite3_column_int64(stmt.get(), 1);
      }
    }
    if (rc != SQLITE_DONE) return SqliteError(wdb_, rc, "load open drawers");
  }
  ASSIGN_OR_RETURN(LastZ last, ReadLastZ(wdb_));
  open_drawers_ = std::move(drawers);
  last_z_number_ = last.number;
  last_z_seq_ = last.seq;
  last_z_currency_ = std::move(last.currency);
  return LoadOfflineState();
}

bool SqliteJournal::DrawerOpen(const std::string& terminal_id) const {
  if (auto it = staged_drawers_.find(terminal_id); it != staged_drawers_.end()) {
    return it->second != 0;
  }
  return open_drawers_.count(terminal_id) != 0;
}

Status SqliteJournal::BuildZReport(core::StoreEvent& event, int* storage_rc) {
  WriterStatements& s = *wstmts_;
  // Inside the transaction: the read sees what earlier members of this group inserted.
  std::vector<core::JournalEntry> entries;
  {
    ResetOnExit reset(s.entries_after);
    sqlite3_bind_int64(s.entries_after, 1, staged_z_seq_);
    int rc;
    while ((rc = sqlite3_step(s.entries_after)) == SQLITE_ROW) {
      core::JournalEntry entry;
      entry.seq = sqlite3_column_int64(s.entries_after, 0);
      entry.receipt_no = ColumnText(s.entries_after, 1);
      entry.received_at_ms = sqlite3_column_int64(s.entries_after, 2);
      ASSIGN_OR_RETURN(const std::string canonical, ColumnCanonical(s.entries_after, 4));
      ASSIGN_OR_RETURN(entry.body,
                       DecodeEntryBody(ColumnText(s.entries_after, 3), canonical, entry.seq));
      entries.push_back(std::move(entry));
    }
    if (rc != SQLITE_DONE) {
      *storage_rc = rc;
      return kStorage;
    }
  }
  if (event.currency.empty()) {
    event.currency = !entries.empty()              ? std::string(EntryCurrency(entries.front()))
                     : !staged_z_currency_.empty() ? staged_z_currency_
                                                   : std::string("USD");
  }
  ASSIGN_OR_RETURN(core::ReportFigures figures, core::ComputeReport(entries, event.currency));
  event.z_number = staged_z_number_ + 1;
  event.first_seq = entries.empty() ? staged_seq_ : entries.front().seq;
  event.last_seq = staged_seq_ - 1;
  event.figures = core::ReportFiguresJson(figures);
  return Status::Ok();
}

Result<Receipt> SqliteJournal::AppendEventOne(core::StoreEvent& event, bool* created,
                                              int* storage_rc) {
  WriterStatements& s = *wstmts_;
  const bool z_report = event.type == core::EventType::kZReport;
  const bool outcome = event.type == core::EventType::kPaymentAuthorization;
  const std::string_view type = core::EventTypeName(event.type);

  // Idempotency, in the one id space of sales and events.
  {
    ResetOnExit reset(s.find);
    int rc = StepById(*recent_ids_, s.id_keys, s.find, event.id);
    if (rc == SQLITE_ROW) {
      ASSIGN_OR_RETURN(const std::string stored_canonical, ColumnCanonical(s.find, 0));
      const std::string stored_type = ColumnText(s.find, 8);
      bool same = false;
      if (z_report || outcome) {
        // Built by the hub: the request's own members must repeat, not the bytes.
        if (stored_type == type) {
          ASSIGN_OR_RETURN(core::StoreEvent stored, core::DecodeCanonicalEvent(stored_canonical));
          same = z_report ? SameZRequest(stored, event) : SameAuthorizationRequest(stored, event);
        }
      } else {
        same = stored_canonical == core::CanonicalEvent(event);
      }
      if (!same) {
        return Status(ErrorCode::kIdConflict,
                      "an entry with this id is already stored with a different body", "id");
      }
      return ReplayReceipt(s.find, event.id);
    }
    if (rc != SQLITE_DONE) {
      *storage_rc = rc;
      return kStorage;
    }
  }
  {
    Result<bool> pruned = InIdIndex(event.id, storage_rc);
    if (!pruned.ok()) return pruned.status();
    if (*pruned) {
      return IdExpired();
    }
  }

  // The drawer rules, against everything committed before and this group's earlier
  // members.
  switch (event.type) {
    case core::EventType::kDrawerOpen:
      if (DrawerOpen(event.terminal_id)) {
        return Status(ErrorCode::kDrawerAlreadyOpen,
                      "this terminal's drawer is already open; close it first", "type");
      }
      break;
    case core::EventType::kCashIn:
    case core::EventType::kCashOut:
    case core::EventType::kDrawerClose:
      if (!DrawerOpen(event.terminal_id)) {
        return Status(ErrorCode::kDrawerClosed, "this terminal's drawer is not open", "type");
      }
      break;
    case core::EventType::kZReport:
      RETURN_IF_ERROR(BuildZReport(event, storage_rc));
      break;
    case core::EventType::kPaymentAuthorization:
      RETURN_IF_ERROR(PrepareAuthorization(event, storage_rc));
      break;
  }

  const std::string canonical = core::CanonicalEvent(event);
  Receipt receipt;
  receipt.created = true;
  receipt.id = event.id;
  receipt.receipt_no = z_report ? "Z" + std::to_string(event.z_number) : std::string();
  receipt.total = z_report ? 0 : event.amount;
  receipt.currency = event.currency;
  receipt.type = type;
  const NewRow row{&event.id,           event.terminal_id, receipt.receipt_no, type, {},
                   event.created_at_ms, event.currency,    receipt.total,      0,    &canonical};
  RETURN_IF_ERROR(InsertRow(row, &receipt, storage_rc));

  // The state the rules read, written in the same transaction.
  auto step = [&](sqlite3_stmt* stmt) {
    const int rc = sqlite3_step(stmt);
    sqlite3_reset(stmt);
    sqlite3_clear_bindings(stmt);
    if (rc != SQLITE_DONE) *storage_rc = rc;
    return rc == SQLITE_DONE;
  };
  switch (event.type) {
    case core::EventType::kDrawerOpen:
      BindText(s.drawer_open, 1, event.terminal_id);
      sqlite3_bind_int64(s.drawer_open, 2, receipt.seq);
      if (!step(s.drawer_open)) return kStorage;
      staged_drawers_[event.terminal_id] = receipt.seq;
      break;
    case core::EventType::kDrawerClose:
      BindText(s.drawer_close, 1, event.terminal_id);
      if (!step(s.drawer_close)) return kStorage;
      staged_drawers_[event.terminal_id] = 0;
      break;
    case core::EventType::kZReport: {
      const std::pair<const char*, std::string> values[] = {
          {kLastZNumberKey, std::to_string(event.z_number)},
          {kLastZSeqKey, std::to_string(receipt.seq)},
          {kLastZCurrencyKey, event.currency}};
      for (const auto& [key, value] : values) {
        BindText(s.meta_put, 1, key);
        BindText(s.meta_put, 2, value);
        if (!step(s.meta_put)) return kStorage;
      }
      staged_z_number_ = event.z_number;
      staged_z_seq_ = receipt.seq;
      staged_z_currency_ = event.currency;
      break;
    }
    case core::EventType::kPaymentAuthorization:
      RETURN_IF_ERROR(RecordOutcome(event, receipt.seq, storage_rc));
      break;
    case core::EventType::kCashIn:
    case core::EventType::kCashOut:
      break;
  }
  *created = true;
  return receipt;
}

}  // namespace machub::journal
