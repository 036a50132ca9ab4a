// Packed canonical JSON (canonical_pack.h has the format).

#include "journal/canonical_pack.h"

#include <zlib.h>

#include <algorithm>

namespace machub::journal {
namespace {

// Format 1's dictionary. DEFLATE finds matches best near the end of a dictionary, so the
// most common entry, a sale, comes last. Never edit: rows written with it must decode.
constexpr std::string_view kDictionaryV1 =
    R"({"id":"","terminal_id":"","type":"drawer_close","created_at":"","currency":"","cashier":"",)"
    R"("counted":"","counts":[{"denomination":"0.05","count":"0"}],"reason":""})"
    R"({"id":"","terminal_id":"","type":"payment_authorization","created_at":"","sale_id":"",)"
    R"("payment_index":0,"result":"approved","auth_code":""})"
    R"({"id":"","terminal_id":"","type":"cash_in","created_at":"","currency":"EUR","amount":"100.00"})"
    R"({"id":"","terminal_id":"","type":"refund","ref":"","created_at":"","currency":"USD",)"
    R"("cashier":"","lines":[{"sku":"","name":"","qty":"-1","unit_price":"","discount":"0.00",)"
    R"("tax_rate":"0.19"}],"payments":[{"method":"cash","amount":"-"}],"reason":""})"
    R"({"id":"","terminal_id":"T01","type":"sale","created_at":"2026-12-07T12:00:00.000Z",)"
    R"("currency":"USD","cashier":"","lines":[{"sku":"","name":"","qty":"1","unit_price":"",)"
    R"("discount":"0.00","tax_rate":"0.07"},{"sku":"","name":"","qty":"2","unit_price":"1.00",)"
    R"("discount":"0.00","tax_rate":"0.0825"}],"payments":[{"method":"card","amount":"",)"
    R"("card_token":"tok_","last4":"","brand":"visa","auth_code":"","offline":true},)"
    R"({"method":"cash","amount":"20.00"}]})";

constexpr int kWindowBits = -12;  // raw DEFLATE, 4 KiB window (holds the dictionary)
constexpr size_t kHeaderBytes = 5;
constexpr int64_t kMaxExpansion = 1032;

static_assert(kDictionaryV1.size() < (size_t{1} << 12), "the dictionary must fit the window");

const Bytef* DictionaryBytes() { return reinterpret_cast<const Bytef*>(kDictionaryV1.data()); }

// One compressor and one decompressor per thread, reset per call: deflateInit2 allocates
// ~30 KiB (4 KiB window, memLevel 4), too much to repeat for every sale.
struct Deflater {
  z_stream z{};
  bool ok = false;
  Deflater() { ok = deflateInit2(&z, 6, Z_DEFLATED, kWindowBits, 4, Z_DEFAULT_STRATEGY) == Z_OK; }
  ~Deflater() {
    if (ok) deflateEnd(&z);
  }
  Deflater(const Deflater&) = delete;
  Deflater& operator=(const Deflater&) = delete;
};

struct Inflater {
  z_stream z{};
  bool ok = false;
  Inflater() { ok = inflateInit2(&z, kWindowBits) == Z_OK; }
  ~Inflater() {
    if (ok) inflateEnd(&z);
  }
  Inflater(const Inflater&) = delete;
  Inflater& operator=(const Inflater&) = delete;
};

std::string PackCanonicalHeader(size_t canonical_size) {
  const auto size = static_cast<uint32_t>(canonical_size);
  std::string out(kHeaderBytes, '\0');
  out[0] = static_cast<char>(kPackedCanonicalV1);
  for (int i = 0; i < 4; ++i) out[1 + i] = static_cast<char>((size >> (24 - 8 * i)) & 0xff);
  return out;
}

Status Corrupt(std::string_view what) {
  return Status(ErrorCode::kInternal, "journal: a packed canonical " + std::string(what));
}

}  // namespace

std::string PackCanonical(std::string_view canonical) {
  static_assert(sizeof(uInt) >= 4);
  std::string out = PackCanonicalHeader(canonical.size());

  thread_local Deflater d;
  if (d.ok && deflateReset(&d.z) == Z_OK &&
      deflateSetDictionary(&d.z, DictionaryBytes(), static_cast<uInt>(kDictionaryV1.size())) ==
          Z_OK) {
    const uLong bound = deflateBound(&d.z, static_cast<uLong>(canonical.size()));
    out.resize(kHeaderBytes + bound);
    d.z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(canonical.data()));
    d.z.avail_in = static_cast<uInt>(canonical.size());
    d.z.next_out = reinterpret_cast<Bytef*>(out.data() + kHeaderBytes);
    d.z.avail_out = static_cast<uInt>(bound);
    if (deflate(&d.z, Z_FINISH) == Z_STREAM_END) {
      out.resize(kHeaderBytes + d.z.total_out);
      return out;
    }
  }
  // zlib only fails here when out of memory.
  return PackCanonicalStored(canonical);
}

std::string PackCanonicalStored(std::string_view canonical) {
  std::string out = PackCanonicalHeader(canonical.size());
  size_t offset = 0;
  do {
    const size_t n = std::min<size_t>(canonical.size() - offset, 65535);
    const bool last = offset + n == canonical.size();
    out.push_back(last ? '\x01' : '\x00');  // BFINAL, BTYPE 00 (stored)
    out.push_back(static_cast<char>(n & 0xff));
    out.push_back(static_cast<char>(n >> 8));
    out.push_back(static_cast<char>(~n & 0xff));
    out.push_back(static_cast<char>((~n >> 8) & 0xff));
    out.append(canonical.data() + offset, n);
    offset += n;
  } while (offset < canonical.size());
  return out;
}

Result<std::string> UnpackCanonical(std::string_view packed) {
  if (packed.size() < kHeaderBytes) return Corrupt("is shorter than its header");
  if (static_cast<unsigned char>(packed[0]) != kPackedCanonicalV1) {
    return Corrupt("has an unknown format " +
                   std::to_string(static_cast<unsigned char>(packed[0])));
  }
  const int64_t size = CanonicalSize(packed.data(), static_cast<int>(packed.size()), true);
  // DEFLATE expands at most 1032:1 (a 258-byte match in two bits), so a larger recorded
  // length is a lie; refusing it here keeps a damaged row from allocating gigabytes.
  if (size > static_cast<int64_t>(packed.size() - kHeaderBytes) * kMaxExpansion + 258) {
    return Corrupt("records a length its stream cannot hold");
  }
  std::string out(static_cast<size_t>(size), '\0');
  thread_local Inflater f;
  if (!f.ok || inflateReset(&f.z) != Z_OK ||
      inflateSetDictionary(&f.z, DictionaryBytes(), static_cast<uInt>(kDictionaryV1.size())) !=
          Z_OK) {
    return Status(ErrorCode::kStorageUnavailable, "journal: cannot start zlib");
  }
  f.z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(packed.data() + kHeaderBytes));
  f.z.avail_in = static_cast<uInt>(packed.size() - kHeaderBytes);
  // One spare byte: a stream that decodes to more than the header says stops short of
  // Z_STREAM_END instead of filling the buffer exactly.
  char spare = 0;
  f.z.next_out = reinterpret_cast<Bytef*>(out.empty() ? &spare : out.data());
  f.z.avail_out = static_cast<uInt>(out.size());
  int rc = inflate(&f.z, Z_FINISH);
  if (rc == Z_BUF_ERROR && f.z.avail_out == 0 && f.z.total_out == out.size()) {
    f.z.next_out = reinterpret_cast<Bytef*>(&spare);
    f.z.avail_out = 1;
    rc = inflate(&f.z, Z_FINISH);
  }
  if (rc != Z_STREAM_END || f.z.total_out != out.size() || f.z.avail_in != 0) {
    return Corrupt("does not decode to its recorded length");
  }
  return out;
}

int64_t CanonicalSize(const void* data, int bytes, bool blob) {
  if (!blob) return bytes;
  const auto* p = static_cast<const unsigned char*>(data);
  if (bytes < static_cast<int>(kHeaderBytes) || p[0] != kPackedCanonicalV1) return -1;
  return (int64_t{p[1]} << 24) | (int64_t{p[2]} << 16) | (int64_t{p[3]} << 8) | p[4];
}

Result<std::string> ColumnCanonical(sqlite3_stmt* stmt, int col) {
  if (sqlite3_column_type(stmt, col) == SQLITE_BLOB) {
    const void* data = sqlite3_column_blob(stmt, col);
    const int bytes = sqlite3_column_bytes(stmt, col);
    return UnpackCanonical(std::string_view(static_cast<const char*>(data), bytes));
  }
  const auto* text = reinterpret_cast<const char*>(sqlite3_column_text(stmt, col));
  return std::string(text != nullptr ? text : "", sqlite3_column_bytes(stmt, col));
}

int RegisterCanonicalSize(sqlite3* db) {
  return sqlite3_create_function(
      db, "canonical_size", 1, SQLITE_UTF8 | SQLITE_DETERMINISTIC | SQLITE_INNOCUOUS, nullptr,
      [](sqlite3_context* ctx, int /*argc*/, sqlite3_value** argv) {
        const bool blob = sqlite3_value_type(argv[0]) == SQLITE_BLOB;
        const void* data = blob ? sqlite3_value_blob(argv[0]) : sqlite3_value_text(argv[0]);
        sqlite3_result_int64(ctx, CanonicalSize(data, sqlite3_value_bytes(argv[0]), blob));
      },
      nullptr, nullptr);
}

}  // namespace machub::journal
