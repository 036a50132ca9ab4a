#include "journal/journal.h"

#include <memory>
#include <utility>

#include "journal/sqlite_journal.h"

namespace machub::journal {

Result<std::unique_ptr<Journal>> Journal::Open(const JournalOptions& options) {
  ASSIGN_OR_RETURN(std::unique_ptr<SqliteJournal> journal, SqliteJournal::Open(options));
  return std::unique_ptr<Journal>(std::move(journal));
}

std::future<Result<Receipt>> Journal::Append(core::Sale sale) {
  // shared_ptr: std::function needs a copyable callable, std::promise is move-only.
  auto promise = std::make_shared<std::promise<Result<Receipt>>>();
  std::future<Result<Receipt>> future = promise->get_future();
  Append(std::move(sale),
         [promise](Result<Receipt> result) { promise->set_value(std::move(result)); });
  return future;
}

}  // namespace machub::journal

namespace machub::journal {
namespace {

Status NotSupported() {
  return Status(ErrorCode::kInternal, "journal: upload bookkeeping is not supported here");
}

}  // namespace

std::string_view BatchStateName(BatchState state) {
  switch (state) {
    case BatchState::kPending:
      return "pending";
    case BatchState::kUploaded:
      return "uploaded";
    case BatchState::kQuarantined:
      return "quarantined";
  }
  return "pending";
}

Result<SyncBounds> Journal::GetSyncBounds() { return NotSupported(); }
Result<int64_t> Journal::CanonicalBytes(int64_t, int64_t) { return NotSupported(); }
Result<std::vector<BatchRecord>> Journal::ListBatches(bool, int64_t, int) { return NotSupported(); }
Result<BatchRecord> Journal::RecordBatch(const BatchRecord&) { return NotSupported(); }
Status Journal::RecordBatchFailure(int64_t, const std::string&) { return NotSupported(); }
Status Journal::UpdateBatchObject(int64_t, int64_t, int64_t, const std::string&,
                                  const std::string&) {
  return NotSupported();
}
Status Journal::MarkBatchUploaded(int64_t, int64_t) { return NotSupported(); }
Status Journal::MarkBatchQuarantined(int64_t, const std::string&) { return NotSupported(); }
Status Journal::RequeueBatch(int64_t) { return NotSupported(); }
Result<PruneResult> Journal::Prune(const PruneRequest&) { return NotSupported(); }

}  // namespace machub::journal
