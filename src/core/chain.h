#pragma once
// The tamper-evident chain: hash_n = SHA-256(hash_{n-1} || CanonicalRecord(sale_n)),
// hash_0 = GenesisHash(store_id). Verifiable from the S3 objects alone.

#include <cstdint>
#include <string>
#include <string_view>

namespace machub::core {

// SHA-256("machub-genesis-v1\n" + store_id), 32 raw bytes.
std::string GenesisHash(std::string_view store_id);

// The bytes that are hashed for one stored sale: seq, receipt_no, received_at (ms),
// clock_skew and the canonical sale, in a fixed text layout (docs/JOURNAL.md):
//   "machub-record-v1\nseq=<seq>\nreceipt=<receipt_no>\nreceived_at=<ms>\nskew=<0|1>\n"
//   followed by the canonical sale bytes (no trailing newline). Integers are plain
//   base-10 (a '-' only for negative values). receipt_no must not contain '\n'.
std::string CanonicalRecord(int64_t seq, std::string_view receipt_no, int64_t received_at_ms,
                            bool clock_skew, std::string_view canonical_sale);

// SHA-256(prev_hash || record), 32 raw bytes.
std::string ChainHash(std::string_view prev_hash, std::string_view record);

}  // namespace machub::core
