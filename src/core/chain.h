#pragma once
// The tamper-evident chain: hash_n = SHA-256(hash_{n-1} || CanonicalRecord(sale_n)),
// hash_0 = GenesisHash(store_id). Verifiable from the S3 objects alone.

#include <cstdint>
#include <string>
#include <string_view>

namespace machub::core {

// SHA-256("machub-genesis-v1\n" + store_id), 32 raw bytes.
std::string GenesisHash(std::string_view store_id);

// What the hub knew about the clocks when it stored an entry, as bits (the journal's
// clock_skew column holds them):
inline constexpr int kClockSkew = 1;       // |received_at - created_at| above the bound
inline constexpr int kClockUntrusted = 2;  // the hub's own clock was untrusted (issue #11)

// The bytes that are hashed for one stored sale: seq, receipt_no, received_at (ms),
// the clock flags and the canonical sale, in a fixed text layout (docs/JOURNAL.md):
//   "machub-record-v1\nseq=<seq>\nreceipt=<receipt_no>\nreceived_at=<ms>\nskew=<0|1>\n"
//   then "clock=untrusted\n" only when kClockUntrusted is set (so every entry stored
//   without it hashes as before), followed by the canonical sale bytes (no trailing
//   newline). Integers are plain base-10 (a '-' only for negative values). receipt_no
//   must not contain '\n'.
std::string CanonicalRecord(int64_t seq, std::string_view receipt_no, int64_t received_at_ms,
                            int clock_flags, std::string_view canonical_sale);

// SHA-256(prev_hash || record), 32 raw bytes.
std::string ChainHash(std::string_view prev_hash, std::string_view record);

}  // namespace machub::core
