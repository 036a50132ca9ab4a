#pragma once
// The bytes of one S3 object: a pure function of the journal rows it holds, so a retry
// after a crash sends the same bytes to the same key (docs/S3_FORMAT.md).
//
// Formats: JSON Lines (one journal entry per line, full fidelity: core::StoredSaleJson
// without its "uploaded" member, which is upload bookkeeping, not data; a store event's
// line is core::StoredEventJson's, with its "type") and CSV (header row, one row per line
// item of a sale, one row per store event with its amount in sale_total and its reason in
// name; the seed's test.csv lineage; RFC 4180 quoting, "\n" line ends). Both gzip'd with fixed
// header fields (mtime 0, no name, OS 255) and a fixed level, so equal rows give equal bytes for a
// given zlib build. The uploader never relies on re-encoding matching across versions: it compares
// against the hashes recorded with the batch (uploader.h).
//
// Thread-safety: free functions are pure; a BatchEncoder belongs to one thread.

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "core/sale.h"
#include "core/sha256.h"
#include "core/status.h"

namespace machub::sync {

enum class BatchFormat { kJsonl, kCsv };

// gzip level of new batches. Measured on generated sale JSON (sync_bench, x86-64): level 1
// deflates about twice as fast as level 6 (101 vs 49 MB/s) and leaves 18.3% of the raw
// bytes instead of 13.9%, both well under the 25% target; the drain is CPU-bound, so 1.
// Recorded per batch (part of the bytes' determinism), so it may change between versions.
inline constexpr int kDefaultGzipLevel = 1;
// x-amz-meta-format-version of the objects written by this code.
inline constexpr std::string_view kFormatVersion = "1";

std::string_view FormatExtension(BatchFormat format);         // "jsonl" | "csv"
Result<BatchFormat> ParseBatchFormat(std::string_view text);  // "jsonl" | "csv"

// UTC calendar day of a time (days since 1970-01-01, floor) and its "YYYY-MM-DD".
int64_t UtcDay(int64_t ms);
std::string UtcDate(int64_t ms);

// "<prefix>/sales/store=<store>/date=<YYYY-MM-DD>/<store>-<first 12 digits>-<last 12
// digits>.<ext>.gz" (no leading '/', an empty prefix gives "sales/..."; a prefix's leading and
// trailing
// '/' are dropped). `first_received_at_ms` gives the date.
std::string BatchKey(std::string_view prefix, std::string_view store_id, int64_t first_seq,
                     int64_t last_seq, int64_t first_received_at_ms, BatchFormat format);

// The key prefix under which every sales object of a store lives:
// "<prefix>/sales/store=<store>/".
std::string SalesPrefix(std::string_view prefix, std::string_view store_id);

// The file name part of a batch key parsed back: false when `key` does not end in
// "<store>-<12 digits>-<12 digits>.<jsonl|csv>.gz".
struct ParsedKey {
  std::string store_id;
  int64_t first_seq = 0;
  int64_t last_seq = 0;
  BatchFormat format = BatchFormat::kJsonl;
  std::string date;  // from "date=YYYY-MM-DD/" when present, else empty
};
bool ParseBatchKey(std::string_view key, ParsedKey* out);

// The CSV header row (without the line end), also documented in docs/S3_FORMAT.md.
std::string_view CsvHeader();

// One entry's part of the body, appended to *out: JSONL one line ending "\n"; CSV one
// row per line item (a store event: one row), each ending "\n". `store_id` fills the
// CSV store_id column.
void AppendSaleRecord(std::string* out, BatchFormat format, std::string_view store_id,
                      const core::StoredSale& sale);

// Uncompressed object body for `sales` (in seq order): the CSV header line, then the
// records.
std::string EncodeBatch(std::string_view store_id, const std::vector<core::StoredSale>& sales,
                        BatchFormat format);

// Deterministic gzip (mtime 0, no name, OS 255, the given level, default strategy).
Result<std::string> GzipDeterministic(std::string_view data, int level = kDefaultGzipLevel);
// kInvalidArgument for bytes that are not one complete gzip member or inflate to more
// than max_output bytes.
Result<std::string> Gunzip(std::string_view data, size_t max_output = 512u << 20);

// Lower-case hex MD5 (the ETag S3 gives a single-part upload) and SHA-256.
using core::Md5Hex;     // core/sha256.h
using core::Sha256Hex;  // core/sha256.h

// The finished object of a BatchEncoder.
struct EncodedObject {
  std::string bytes;  // gzip
  int64_t raw_bytes = 0;
  std::string sha256_hex;  // of `bytes`
  std::string md5_hex;     // of `bytes`
};

// Streams records into a gzip object without holding the uncompressed body: the bytes
// equal GzipDeterministic(EncodeBatch(...)) for the same sales, whatever the record
// boundaries (zlib's output does not depend on how its input is split).
class BatchEncoder {
 public:
  // kInternal when zlib cannot start (out of memory, a bad level: 1..9 are accepted).
  static Result<std::unique_ptr<BatchEncoder>> Create(BatchFormat format, std::string store_id,
                                                      int level);
  ~BatchEncoder();
  BatchEncoder(const BatchEncoder&) = delete;
  BatchEncoder& operator=(const BatchEncoder&) = delete;

  // The bytes Add(sale) would append, into *record (cleared first).
  void EncodeRecord(const core::StoredSale& sale, std::string* record) const;
  // Appends already encoded record bytes (from EncodeRecord).
  Status AddRecord(std::string_view record);
  Status Add(const core::StoredSale& sale);

  int64_t raw_bytes() const { return raw_bytes_; }  // header included
  // Reserves the compressed output for up to `raw_bytes` of input (zlib's deflateBound), so
  // the object is written in place instead of being copied at every doubling. Large
  // blocks are mmap'd (app/serve.cc pins glibc's thresholds): the pages the output never
  // reaches are never resident. Optional; the bytes are the same either way.
  void ReserveFor(int64_t raw_bytes);
  // Finishes the gzip stream; the encoder cannot be used afterwards.
  Result<EncodedObject> Finish();

 private:
  struct Deflate;
  BatchEncoder(BatchFormat format, std::string store_id);
  Status Write(std::string_view data);
  Status Compress(std::string_view data, int flush);

  BatchFormat format_;
  std::string store_id_;
  std::unique_ptr<Deflate> deflate_;
  std::string staged_;  // input not yet given to deflate (less than 64 KiB)
  std::string chunk_;   // deflate's output buffer, appended to out_
  std::string out_;
  int64_t raw_bytes_ = 0;
  bool finished_ = false;
};

// x-amz-meta-* of a batch object (names without the prefix). Hashes are lower-case hex:
// prev-hash (the chain hash before the first sale: the previous object's last-hash, or
// the store's genesis hash for seq 1), first-hash, last-hash, sha256 (of the object).
std::map<std::string, std::string> ObjectMetadata(std::string_view store_id, BatchFormat format,
                                                  int64_t first_seq, int64_t last_seq,
                                                  std::string_view prev_hash_hex,
                                                  std::string_view first_hash_hex,
                                                  std::string_view last_hash_hex,
                                                  std::string_view sha256_hex);

}  // namespace machub::sync
