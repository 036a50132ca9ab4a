#pragma once
// BatchCutter: decides when the journal's next sales make a batch, and encodes them.
//
// Rules (for the sales after SyncBounds::batched_seq, i.e. not yet in any batch):
//   a batch is DUE when `force` (sync --once), or at least max_sales are waiting, or the
//   oldest waiting sale was received max_age_ms ago or more (by the injected clock), or
//   the waiting sales span two UTC dates (by received_at), or their canonical bytes
//   reach max_raw_bytes;
//   a due batch takes the waiting sales in seq order and stops before the first one that
//   would make it exceed max_sales, or exceed max_raw_bytes of uncompressed body (a batch
//   always holds at least one sale), or has another UTC date than its first sale.
// So every object sits in one date partition (its first sale's date) and stays far below
// the 16 MB of a single PUT (max_raw_bytes is at most 15 MiB; gzip never grows sale
// data).
//
// Memory: rows are read `page_sales` at a time and streamed through the gzip encoder;
// only the compressed object is held (plus at most 5 blocks of 64 KiB of record text).
// CPU: for a range of 1000 sales or more, the gzip stage runs on a short-lived helper
// thread while the calling thread reads and formats rows (the same bytes either way).
//
// Thread-safety: Next and Reencode keep no state between calls and may run on several
// threads at once (the uploader encodes the next batch while uploading one). Reads only;
// recording the batch is the caller's job (Journal::RecordBatch).

#include <cstdint>
#include <map>
#include <optional>
#include <string>

#include "core/clock.h"
#include "core/status.h"
#include "journal/ledger.h"
#include "sync/batch_format.h"

namespace machub::sync {

struct CutOptions {
  std::string store_id = "S001";
  std::string prefix;  // PRODUCT.md <prefix> of the keys ("" allowed)
  BatchFormat format = BatchFormat::kJsonl;
  int gzip_level = kDefaultGzipLevel;
  int64_t max_sales = 5000;
  int64_t max_raw_bytes = 8LL << 20;
  int64_t max_age_ms = 60'000;
  // Rows per journal read. Each row is held decoded (its Sale, lines and all: ~2-3 KB),
  // so a page is what the encoder holds besides the object; 64 rows cost no measurable
  // drain speed against 256 and keep ~0.7 MB less resident at 64 terminals.
  int page_sales = 64;
};

// kInvalidArgument naming the option when out of range (max_sales >= 1, 64 KiB <=
// max_raw_bytes <= 15 MiB, max_age_ms >= 0, gzip_level 1..9, page_sales >= 1, a store
// id that is non-empty and printable without '/').
Status ValidateCutOptions(const CutOptions& options);

// A batch ready to record and upload.
struct EncodedBatch {
  // Everything but id, state, attempts, last_error, uploaded_at_ms.
  journal::BatchRecord record;
  std::string bytes;                            // the object
  std::map<std::string, std::string> metadata;  // ObjectMetadata(...)
  enum class Stop { kEnd, kMaxSales, kMaxBytes, kDateChange };
  Stop stop = Stop::kEnd;  // why the batch ended where it did
};

class BatchCutter {
 public:
  // `journal` and `clock` (null: the system clock) must outlive the cutter.
  BatchCutter(journal::Ledger* journal, CutOptions options, const core::Clock* clock);

  // The next due batch after bounds.batched_seq, no later than upto_seq, encoded but not
  // recorded; nullopt when nothing is due. Errors: the journal's, or kInternal when the
  // journal has a gap where sales are expected.
  Result<std::optional<EncodedBatch>> Next(const journal::SyncBounds& bounds, bool force,
                                           int64_t upto_seq = INT64_MAX);

  // The bytes of a recorded batch again, from its rows, with its recorded format and gzip
  // level (the limits above do not apply: the recorded range is the batch).
  Result<EncodedBatch> Reencode(const journal::BatchRecord& record);

  const CutOptions& options() const { return options_; }

 private:
  Result<EncodedBatch> Encode(int64_t after_seq, int64_t max_last_seq, BatchFormat format,
                              int level, bool apply_limits);

  journal::Ledger* journal_;
  CutOptions options_;
  const core::Clock* clock_;
};

}  // namespace machub::sync
