#pragma once
// How the journal stores an entry's canonical JSON (sales.canonical, docs/JOURNAL.md
// "Packed canonical"). Since 2026-12-07 a new row holds a BLOB:
//
//   byte 0      0x01, the format
//   bytes 1..4  the canonical's length in bytes, big-endian
//   bytes 5..   a raw DEFLATE stream (4 KiB window) of the canonical, primed with a fixed
//               dictionary of what every canonical sale and event repeats: keys in their
//               order, payment methods, entry types. The dictionary is part of format 1
//               and never changes; a new dictionary would be a new format byte.
//
// A row written before holds the canonical as TEXT and is read as it is. The packed form
// is about a quarter of the text (a loadgen sale of ~840 bytes packs to ~220), so a row
// fits one 512-byte page without an overflow page (docs/BENCHMARKS.md, "SD-card wear").
// The chain hashes the canonical text, never the packed bytes, so packing does not change
// what a verifier checks.

#include <sqlite3.h>

#include <cstdint>
#include <string>
#include <string_view>

#include "core/status.h"

namespace machub::journal {

inline constexpr unsigned char kPackedCanonicalV1 = 0x01;

// The BLOB to store for `canonical`. Thread-safe (one compressor per thread).
std::string PackCanonical(std::string_view canonical);

// Format 1 without compression (DEFLATE's stored blocks): PackCanonical's fallback when
// zlib cannot allocate; exposed for its test.
std::string PackCanonicalStored(std::string_view canonical);

// The canonical back from a BLOB PackCanonical made. kInternal for anything else: an
// unknown format byte, a stream that does not decode or not to the recorded length.
Result<std::string> UnpackCanonical(std::string_view packed);

// The canonical length a stored value stands for: the header's length for a packed BLOB,
// the byte length of a TEXT. -1 for a BLOB without a valid header.
int64_t CanonicalSize(const void* data, int bytes, bool blob);

// Column `col` of the current row as canonical text, unpacking a BLOB.
Result<std::string> ColumnCanonical(sqlite3_stmt* stmt, int col);

// Registers canonical_size(x) on `db`: CanonicalSize of a stored value, for SQL sums.
int RegisterCanonicalSize(sqlite3* db);

}  // namespace machub::journal
