// The sale codec's writers: the canonical bytes (CanonicalSale, hashed into the chain)
// and the stored-row JSON (StoredSaleJson, API answers and S3 objects).
#include "core/sale_codec.h"
#include "core/sale_codec_internal.h"
#include "core/sha256.h"
#include "core/time_format.h"

namespace machub::core {

using sale_internal::MinorUnits;
using sale_internal::WritePayments;
using sale_internal::Writer;

std::string CanonicalSale(const Sale& sale) {
  const int minor = MinorUnits(sale);
  Writer w(256 + sale.lines.size() * 112 + sale.payments.size() * 96);
  w.BeginObject();
  w.String("id", sale.id);
  w.String("terminal_id", sale.terminal_id);
  w.String("type", SaleTypeName(sale.type));
  if (!sale.ref.empty()) w.String("ref", sale.ref);
  w.String("created_at", FormatRfc3339(sale.created_at_ms));
  w.String("currency", sale.currency);
  if (!sale.cashier.empty()) w.String("cashier", sale.cashier);
  w.BeginArray("lines");
  for (const Line& line : sale.lines) {
    w.BeginObject();
    w.String("sku", line.sku);
    if (!line.name.empty()) w.String("name", line.name);
    w.Decimal("qty", line.qty_milli, 3, true);
    w.Decimal("unit_price", line.unit_price, minor, false);
    w.Decimal("discount", line.discount, minor, false);
    w.Decimal("tax_rate", line.tax_rate_micro, 6, true);
    w.EndObject();
  }
  w.EndArray();
  WritePayments(w, sale, minor, /*always_offline=*/false);
  w.EndObject();
  return w.Take();
}

std::string StoredSaleJson(const StoredSale& stored) {
  if (stored.event.has_value()) {
    return StoredEventJson(
        *stored.event,
        EntryPlace{stored.seq, stored.receipt_no, stored.received_at_ms, stored.clock_skew,
                   stored.clock_untrusted, stored.hash, stored.prev_hash, stored.uploaded});
  }
  const Sale& sale = stored.sale;
  const int minor = MinorUnits(sale);
  Writer w(512 + sale.lines.size() * 160 + sale.payments.size() * 112);
  w.BeginObject();
  w.String("id", sale.id);
  w.Int("seq", stored.seq);
  w.String("receipt_no", stored.receipt_no);
  w.String("terminal_id", sale.terminal_id);
  w.String("type", SaleTypeName(sale.type));
  if (!sale.ref.empty()) w.String("ref", sale.ref);
  w.String("created_at", FormatRfc3339(sale.created_at_ms));
  w.String("received_at", FormatRfc3339(stored.received_at_ms));
  w.Bool("clock_skew", stored.clock_skew);
  // Only when set: every entry stored under a trusted clock reads as before.
  if (stored.clock_untrusted) w.Bool("clock_untrusted", true);
  w.String("currency", sale.currency);
  if (!sale.cashier.empty()) w.String("cashier", sale.cashier);
  w.BeginArray("lines");
  for (const Line& line : sale.lines) {
    w.BeginObject();
    w.String("sku", line.sku);
    w.String("name", line.name);
    w.Decimal("qty", line.qty_milli, 3, true);
    w.Decimal("unit_price", line.unit_price, minor, false);
    w.Decimal("discount", line.discount, minor, false);
    w.Decimal("tax_rate", line.tax_rate_micro, 6, true);
    w.Decimal("net", line.net, minor, false);
    w.Decimal("tax", line.tax, minor, false);
    w.EndObject();
  }
  w.EndArray();
  WritePayments(w, sale, minor, /*always_offline=*/true);
  w.Decimal("subtotal", sale.subtotal, minor, false);
  w.Decimal("tax", sale.tax_total, minor, false);
  w.Decimal("total", sale.total, minor, false);
  w.Decimal("paid", sale.paid, minor, false);
  w.Decimal("change", sale.change, minor, false);
  w.String("hash", ToHex(stored.hash));
  w.String("prev_hash", ToHex(stored.prev_hash));
  w.Bool("uploaded", stored.uploaded);
  w.EndObject();
  return w.Take();
}

}  // namespace machub::core
