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
