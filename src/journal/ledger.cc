#include "journal/ledger.h"

namespace machub::journal {

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

}  // namespace machub::journal
