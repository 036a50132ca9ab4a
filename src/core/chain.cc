#include "core/chain.h"

#include <charconv>

#include "core/sha256.h"

namespace machub::core {
namespace {

void AppendInt(std::string* out, int64_t v) {
  char buf[24];
  const auto res = std::to_chars(buf, buf + sizeof(buf), v);
  out->append(buf, res.ptr);
}

}  // namespace

std::string GenesisHash(std::string_view store_id) {
  return Sha256Of({"machub-genesis-v1\n", store_id});
}

std::string CanonicalRecord(int64_t seq, std::string_view receipt_no, int64_t received_at_ms,
                            int clock_flags, std::string_view canonical_sale) {
  // A line-oriented header before the sale bytes. The header fields cannot contain a
  // newline (numbers, and a receipt number built from a terminal id), so the layout is
  // unambiguous without escaping; the sale comes last and runs to the end.
  std::string out;
  out.reserve(96 + receipt_no.size() + canonical_sale.size());
  out.append("machub-record-v1\nseq=");
  AppendInt(&out, seq);
  out.append("\nreceipt=");
  out.append(receipt_no);
  out.append("\nreceived_at=");
  AppendInt(&out, received_at_ms);
  out.append((clock_flags & kClockSkew) != 0 ? "\nskew=1\n" : "\nskew=0\n");
  if ((clock_flags & kClockUntrusted) != 0) out.append("clock=untrusted\n");
  out.append(canonical_sale);
  return out;
}

std::string ChainHash(std::string_view prev_hash, std::string_view record) {
  return Sha256Of({prev_hash, record});
}

}  // namespace machub::core
