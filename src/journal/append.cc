// One sale inside a writer group (writer.cc): the idempotency check, the refund rules
// against the journal, the terminal's receipt counter, the chain hash, the offline card
// exposure, then the row. Everything is staged in the writer's state and becomes the
// journal's only when the group commits.
#include <sqlite3.h>

#include <charconv>
#include <cinttypes>
#include <cstdio>
#include <string>
#include <string_view>
#include <utility>

#include "core/chain.h"
#include "core/log.h"
#include "core/refund_rules.h"
#include "core/sale_codec.h"
#include "journal/canonical_pack.h"
#include "journal/internal.h"
#include "journal/sqlite_journal.h"

namespace machub::journal {

std::string ReceiptNo(const std::string& terminal_id, int64_t counter) {
  char digits[32];
  std::snprintf(digits, sizeof(digits), "%06" PRId64, counter);
  return terminal_id + "-" + digits;
}

std::optional<int64_t> ReceiptCounter(std::string_view terminal_id, std::string_view receipt_no) {
  if (receipt_no.size() <= terminal_id.size() + 1 ||
      receipt_no.substr(0, terminal_id.size()) != terminal_id ||
      receipt_no[terminal_id.size()] != '-') {
    return std::nullopt;
  }
  const std::string_view digits = receipt_no.substr(terminal_id.size() + 1);
  int64_t counter = 0;
  const auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), counter);
  if (ec != std::errc() || end != digits.data() + digits.size() || counter < 1) {
    return std::nullopt;
  }
  return counter;
}

Result<Receipt> SqliteJournal::AppendOne(const core::Sale& sale, bool* created, int* storage_rc) {
  WriterStatements& s = *wstmts_;
  const std::string canonical = core::CanonicalSale(sale);
  static const Status kStorage(ErrorCode::kStorageUnavailable, "journal: storage failed");

  // Idempotency. The lookup runs inside the group's transaction, so it also sees the rows
  // inserted earlier in this same group: two copies of one id in a group are one insert
  // and one replay.
  {
    ResetOnExit reset(s.find);
    int rc = StepById(*recent_ids_, s.id_keys, s.find, sale.id);
    if (rc == SQLITE_ROW) {
      ASSIGN_OR_RETURN(const std::string stored, ColumnCanonical(s.find, 0));
      if (stored != canonical) {
        return Status(ErrorCode::kIdConflict,
                      "a sale with this id is already stored with a different body", "id");
      }
      return ReplayReceipt(s.find, sale.id);
    }
    if (rc != SQLITE_DONE) {
      *storage_rc = rc;
      return kStorage;
    }
  }
  // Not among the rows: an id whose row was pruned is still in the id index.
  {
    Result<bool> pruned = InIdIndex(sale.id, storage_rc);
    if (!pruned.ok()) return pruned.status();
    if (*pruned) {
      return IdExpired();
    }
  }

  if (sale.type != core::SaleType::kSale) {
    // The refund rules (core/refund_rules.h) against the original and every refund/void
    // already stored for it. Both reads run inside this group's transaction on the one
    // writer, so they also see what earlier members of the group inserted: of two racing
    // refunds the second one is judged with the first one counted.
    core::Sale original;
    {
      ResetOnExit reset(s.exists);
      int rc = StepById(*recent_ids_, s.id_keys, s.exists, sale.ref);
      if (rc == SQLITE_DONE) {
        Result<bool> pruned = InIdIndex(sale.ref, storage_rc);
        if (!pruned.ok()) return pruned.status();
        if (*pruned) {
          return Status(ErrorCode::kRefExpired,
                        "the original sale was pruned after upload, so the refund rules "
                        "cannot be checked against it here",
                        "ref");
        }
        return Status(ErrorCode::kInvalidField,
                      std::string(core::SaleTypeName(sale.type)) +
                          " refers to a sale id that is not stored on this hub",
                      "ref");
      }
      if (rc != SQLITE_ROW) {
        *storage_rc = rc;
        return kStorage;
      }
      if (core::IsEventTypeName(ColumnText(s.exists, 1))) {
        return Status(
            ErrorCode::kInvalidField,
            std::string(core::SaleTypeName(sale.type)) + " refers to a store event, not a sale",
            "ref");
      }
      ASSIGN_OR_RETURN(const std::string stored, ColumnCanonical(s.exists, 0));
      ASSIGN_OR_RETURN(original, core::DecodeStoredCanonical(stored));
    }
    std::vector<core::Sale> earlier;
    {
      ResetOnExit reset(s.reversals);
      BindText(s.reversals, 1, sale.ref);
      int rc;
      while ((rc = sqlite3_step(s.reversals)) == SQLITE_ROW) {
        ASSIGN_OR_RETURN(const std::string stored, ColumnCanonical(s.reversals, 0));
        ASSIGN_OR_RETURN(core::Sale reversal, core::DecodeStoredCanonical(stored));
        earlier.push_back(std::move(reversal));
      }
      if (rc != SQLITE_DONE) {
        *storage_rc = rc;
        return kStorage;
      }
    }
    RETURN_IF_ERROR(core::CheckReversal(original, earlier, sale));
  }

  if (options_.cash_requires_open_drawer && !DrawerOpen(sale.terminal_id)) {
    for (const core::Payment& payment : sale.payments) {
      if (payment.method == "cash") {
        return Status(ErrorCode::kDrawerClosed,
                      "cash on a terminal whose drawer is not open (drawer.required is on): open "
                      "the drawer first",
                      "payments");
      }
    }
  }

  if (sale.type == core::SaleType::kSale) RETURN_IF_ERROR(CheckOfflineLimits(sale));

  int64_t counter = 1;
  if (auto it = staged_counters_.find(sale.terminal_id); it != staged_counters_.end()) {
    counter = it->second + 1;
  } else if (auto jt = terminal_counters_.find(sale.terminal_id); jt != terminal_counters_.end()) {
    counter = jt->second + 1;
  }
  Receipt receipt;
  receipt.created = true;
  receipt.id = sale.id;
  receipt.receipt_no = ReceiptNo(sale.terminal_id, counter);
  receipt.total = sale.total;
  receipt.change = sale.change;
  receipt.currency = sale.currency;
  receipt.type = core::SaleTypeName(sale.type);
  const NewRow row{&sale.id,    sale.terminal_id,   receipt.receipt_no, receipt.type,
                   sale.ref,    sale.created_at_ms, sale.currency,      sale.total,
                   sale.change, &canonical};
  RETURN_IF_ERROR(InsertRow(row, &receipt, storage_rc));
  if (sale.type == core::SaleType::kSale) {
    RETURN_IF_ERROR(TrackOfflinePayments(sale, receipt.seq, receipt.received_at_ms, storage_rc));
  } else if (sale.type == core::SaleType::kVoid) {
    RETURN_IF_ERROR(ReleaseOnVoid(sale, receipt.seq, storage_rc));
  }
  staged_counters_[sale.terminal_id] = counter;
  *created = true;
  return receipt;
}

Status SqliteJournal::InsertRow(const NewRow& row, Receipt* receipt, int* storage_rc) {
  WriterStatements& s = *wstmts_;
  static const Status kStorage(ErrorCode::kStorageUnavailable, "journal: storage failed");
  receipt->seq = staged_seq_;
  receipt->received_at_ms = clock_->NowMs();
  bool untrusted = staged_clock_untrusted_;
  if (receipt->received_at_ms < staged_received_at_ms_) {
    // The clock is behind the journal's newest entry (a Pi without RTC that booted with a
    // stale clock, a step backwards): hold received_at at the newest so it never goes back,
    // and mark the entry.
    receipt->received_at_ms = staged_received_at_ms_;
    ++staged_clock_held_;
    untrusted = true;
  }
  const int64_t skew_ms = receipt->received_at_ms - row.created_at_ms;
  const int clock_flags =
      ((skew_ms < 0 ? -skew_ms : skew_ms) > options_.clock_skew_bound_ms ? core::kClockSkew : 0) |
      (untrusted ? core::kClockUntrusted : 0);
  const std::string record = core::CanonicalRecord(
      receipt->seq, receipt->receipt_no, receipt->received_at_ms, clock_flags, *row.canonical);
  receipt->hash = core::ChainHash(staged_hash_, record);
  {
    sqlite3_stmt* ins = s.insert;
    ResetOnExit reset(ins);
    sqlite3_bind_int64(ins, 1, receipt->seq);
    BindText(ins, 2, *row.id);
    BindText(ins, 3, row.terminal_id);
    BindText(ins, 4, row.receipt_no);
    BindText(ins, 5, row.type);
    if (row.ref.empty()) {
      sqlite3_bind_null(ins, 6);
    } else {
      BindText(ins, 6, row.ref);
    }
    sqlite3_bind_int64(ins, 7, row.created_at_ms);
    sqlite3_bind_int64(ins, 8, receipt->received_at_ms);
    sqlite3_bind_int(ins, 9, clock_flags);  // bits: core::kClockSkew, core::kClockUntrusted
    BindText(ins, 10, row.currency);
    sqlite3_bind_int64(ins, 11, row.total);
    sqlite3_bind_int64(ins, 12, row.change);
    BindBlob(ins, 13, PackCanonical(*row.canonical));
    BindBlob(ins, 14, staged_hash_);
    BindBlob(ins, 15, receipt->hash);
    int rc = sqlite3_step(ins);
    if (rc != SQLITE_DONE) {
      *storage_rc = rc;
      return kStorage;
    }
  }
  recent_ids_->Add(IdHash(*row.id), receipt->seq);
  staged_seq_ = receipt->seq + 1;
  staged_hash_ = receipt->hash;
  staged_received_at_ms_ = receipt->received_at_ms;
  return Status::Ok();
}

Result<bool> SqliteJournal::InIdIndex(const std::string& id, int* storage_rc) {
  sqlite3_stmt* find = wstmts_->id_find;
  ResetOnExit reset(find);
  BindText(find, 1, id);
  const int rc = sqlite3_step(find);
  if (rc == SQLITE_ROW) return true;
  if (rc == SQLITE_DONE) return false;
  *storage_rc = rc;
  return Status(ErrorCode::kStorageUnavailable, "journal: storage failed");
}

}  // namespace machub::journal
