#include "journal/sale_journal.h"

#include <memory>
#include <utility>

namespace machub::journal {

std::future<Result<Receipt>> SaleJournal::Append(core::Sale sale) {
  // shared_ptr: std::function needs a copyable callable, std::promise is move-only.
  auto promise = std::make_shared<std::promise<Result<Receipt>>>();
  std::future<Result<Receipt>> future = promise->get_future();
  Append(std::move(sale),
         [promise](Result<Receipt> result) { promise->set_value(std::move(result)); });
  return future;
}

std::future<Result<Receipt>> SaleJournal::AppendEvent(core::StoreEvent event) {
  auto promise = std::make_shared<std::promise<Result<Receipt>>>();
  std::future<Result<Receipt>> future = promise->get_future();
  AppendEvent(std::move(event),
              [promise](Result<Receipt> result) { promise->set_value(std::move(result)); });
  return future;
}

}  // namespace machub::journal
