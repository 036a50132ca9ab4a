// Fuzz target: POST /v1/sales body decoding (core::DecodeSale). For every accepted body
// the canonical encoding must round-trip, the totals must add up and no payment field
// (nor the cashier) may hold a card number. Any input, and every canonical encoding, is
// also read by the journal's fast stored-row reader, which must agree with DecodeCanonical.
// The same bytes also go to the store-event decoders (POST /v1/events and
// POST /v1/reports/z bodies, core/store_event.h) and the stored-event reader: an accepted
// event round-trips through its canonical bytes, holds no card number in a free-text
// field, and the stored reader accepts only exactly canonical bytes.

#include <cstddef>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>

#include "core/card_number.h"
#include "core/sale.h"
#include "core/sale_codec.h"
#include "core/store_event.h"
#include "fuzz_check.h"

using machub::fuzz::Check;

namespace {

// The journal's fast reader of stored rows (DecodeStoredCanonical, and its layout reader
// alone) must give exactly what the full decoder gives, for any bytes.
void CheckStoredReaderAgrees(std::string_view bytes) {
  using namespace machub::core;
  auto full = DecodeCanonical(bytes);
  auto fast = DecodeStoredCanonical(bytes);
  Check(full.ok() == fast.ok(), "stored reader and DecodeCanonical disagree on validity");
  if (!full.ok()) {
    Check(full.status().code() == fast.status().code(), "stored reader: other error code");
  } else {
    Check(CanonicalSale(*fast) == CanonicalSale(*full), "stored reader: other sale");
    Check(fast->total == full->total && fast->change == full->change && fast->paid == full->paid &&
              fast->tax_total == full->tax_total,
          "stored reader: other amounts");
  }
  Sale layout;
  if (TryDecodeCanonicalLayout(bytes, &layout)) {
    Check(full.ok(), "layout reader accepted what DecodeCanonical refuses");
    Check(CanonicalSale(layout) == CanonicalSale(*full), "layout reader: other sale");
    Check(layout.total == full->total && layout.change == full->change && layout.paid == full->paid,
          "layout reader: other amounts");
  }
}

void CheckEvent(const machub::Result<machub::core::StoreEvent>& decoded) {
  using namespace machub::core;
  if (!decoded.ok()) {
    Check(decoded.status().code() != machub::ErrorCode::kOk, "event error without code");
    return;
  }
  const StoreEvent& event = *decoded;
  Check(!ContainsCardNumber(event.reason) && !ContainsCardNumber(event.cashier),
        "card number in an accepted event's free text");
  StoreEvent stored = event;
  if (stored.type == EventType::kZReport) {
    stored.currency = "USD";
    stored.z_number = 1;
    stored.first_seq = 1;
    stored.figures = "{}";
  }
  const std::string canonical = CanonicalEvent(stored);
  auto again = DecodeCanonicalEvent(canonical);
  Check(again.ok(), "canonical event bytes do not decode");
  Check(CanonicalEvent(*again) == canonical, "canonical event encoding not stable");
  Check(EntryTypeOf(canonical) == EventTypeName(stored.type), "EntryTypeOf disagrees");
}

void CheckEvents(std::string_view bytes) {
  using namespace machub::core;
  CheckEvent(DecodeEventRequest(bytes));
  CheckEvent(DecodeZRequest(bytes));
  auto stored = DecodeCanonicalEvent(bytes);
  if (stored.ok()) Check(CanonicalEvent(*stored) == bytes, "stored event reader: not canonical");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace machub::core;
  CheckStoredReaderAgrees(machub::fuzz::AsText(data, size));
  CheckEvents(machub::fuzz::AsText(data, size));
  auto decoded = DecodeSale(machub::fuzz::AsText(data, size));
  if (!decoded.ok()) {
    Check(decoded.status().code() != machub::ErrorCode::kOk, "error without code");
    return 0;
  }
  const Sale& sale = *decoded;

  // Canonical round trip: CanonicalSale(DecodeCanonical(CanonicalSale(s))) == CanonicalSale(s).
  const std::string canonical = CanonicalSale(sale);
  auto again = DecodeCanonical(canonical);
  Check(again.ok(), "canonical bytes do not decode");
  Check(CanonicalSale(*again) == canonical, "canonical encoding not stable");
  Check(again->total == sale.total && again->change == sale.change,
        "canonical decoding changed the amounts");
  CheckStoredReaderAgrees(canonical);

  // Totals.
  int64_t subtotal = 0;
  int64_t tax_total = 0;
  Check(!sale.lines.empty(), "sale without lines");
  for (const Line& line : sale.lines) {
    Check(line.qty_milli > 0 && line.unit_price >= 0 && line.discount >= 0, "line range");
    Check(line.net >= 0 && line.tax >= 0, "negative line amount");
    subtotal += line.net;
    tax_total += line.tax;
  }
  int64_t paid = 0;
  for (const Payment& p : sale.payments) {
    Check(p.amount >= 0, "negative payment");
    paid += p.amount;
  }
  Check(sale.subtotal == subtotal, "subtotal != sum of line net");
  Check(sale.tax_total == tax_total, "tax_total != sum of line tax");
  Check(sale.total == sale.subtotal + sale.tax_total, "total != subtotal + tax_total");
  Check(sale.paid == paid, "paid != sum of payments");
  if (sale.declared_total) Check(*sale.declared_total == sale.total, "declared total differs");
  if (sale.type == SaleType::kSale) {
    Check(sale.change >= 0, "negative change");
    Check(sale.change == sale.paid - sale.total, "change != paid - total");
    Check(sale.ref.empty(), "sale with ref");
  } else {
    Check(sale.change == 0, "refund/void with change");
    Check(!sale.ref.empty() && sale.ref != sale.id, "refund/void ref");
    if (!sale.payments.empty()) Check(sale.paid == sale.total, "refund paid != total");
  }

  // No card number is ever stored.
  Check(!ContainsCardNumber(sale.cashier), "card number in cashier");
  for (const Payment& p : sale.payments) {
    Check(!ContainsCardNumber(p.method), "card number in method");
    Check(!ContainsCardNumber(p.card_token), "card number in card_token");
    Check(!ContainsCardNumber(p.last4), "card number in last4");
    Check(!ContainsCardNumber(p.brand), "card number in brand");
    Check(!ContainsCardNumber(p.auth_code), "card number in auth_code");
  }

  // The stored form renders as valid JSON.
  StoredSale stored;
  stored.seq = 1;
  stored.receipt_no = sale.terminal_id + "-000001";
  stored.received_at_ms = sale.created_at_ms;
  stored.canonical = canonical;
  stored.prev_hash = std::string(32, '\0');
  stored.hash = std::string(32, '\x01');
  stored.sale = sale;
  Check(nlohmann::json::accept(StoredSaleJson(stored)), "StoredSaleJson is not JSON");
  Check(nlohmann::json::accept(canonical), "canonical sale is not JSON");
  return 0;
}
