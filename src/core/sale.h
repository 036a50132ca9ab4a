#pragma once
// The sale as the hub understands it: what a terminal sends (API.md, POST /v1/sales),
// decoded, validated and with every amount computed, and what the journal stores.
//
// All money is int64 minor units of `currency` (no floating point anywhere near money).
// Quantities are int64 thousandths ("2.5" -> 2500). Tax rates are int64 millionths
// ("0.0825" -> 82500). Times are int64 milliseconds since the Unix epoch, UTC.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/store_event.h"

namespace machub::core {

enum class SaleType { kSale, kRefund, kVoid };

struct Line {
  std::string sku;
  std::string name;
  int64_t qty_milli = 0;       // > 0, thousandths of a unit
  int64_t unit_price = 0;      // minor units, >= 0
  int64_t discount = 0;        // minor units, >= 0, at most the gross amount
  int64_t tax_rate_micro = 0;  // millionths, >= 0
  // Computed by DecodeSale (sale_codec.h):
  int64_t net = 0;  // round_half_up(qty * unit_price) - discount
  int64_t tax = 0;  // round_half_up(net * tax_rate)
};

struct Payment {
  std::string method;      // "cash", "card", or another tender name
  int64_t amount = 0;      // minor units, >= 0
  std::string card_token;  // card: the processor's token, never a card number
  std::string last4;       // card: exactly 4 digits when present
  std::string brand;
  std::string auth_code;
  bool offline = false;
};

// A validated request. Produced only by DecodeSale (sale_codec.h), so every instance
// satisfies the rules of API.md except those that need the journal (ref must exist).
struct Sale {
  std::string id;           // client-generated idempotency key, 1..64 chars [A-Za-z0-9._:-]
  std::string terminal_id;  // 1..32 chars [A-Za-z0-9._-]
  SaleType type = SaleType::kSale;
  std::string ref;  // refund/void: id of the original sale; empty for a sale
  int64_t created_at_ms = 0;
  std::string currency;  // ISO 4217 code, known to currency.h
  std::string cashier;   // optional
  std::vector<Line> lines;
  std::vector<Payment> payments;
  std::optional<int64_t> declared_total;  // "total" as sent, if sent
  // Computed:
  int64_t subtotal = 0;   // sum of line net
  int64_t tax_total = 0;  // sum of line tax
  int64_t total = 0;      // subtotal + tax_total
  int64_t paid = 0;       // sum of payments
  int64_t change = 0;     // sale: paid - total (>= 0); refund/void: 0
};

// A journal entry as stored and answered: a sale, refund or void (`sale`), or, when
// `event` is set, a store event (core/store_event.h: drawer_open, cash_in, cash_out,
// drawer_close, z_report), in which case `sale` is left empty. The name stays "StoredSale"
// because sales are what nearly every reader handles; code that can meet an event checks
// is_event() first.
struct StoredSale {
  int64_t seq = 0;         // gapless store sequence, first sale is 1
  std::string receipt_no;  // per terminal: "T01-000123"; events: "" (a Z report: "Z7")
  int64_t received_at_ms = 0;
  bool clock_skew = false;          // |received_at - created_at| above the configured bound
  bool clock_untrusted = false;     // stored while the hub's own clock was untrusted
  std::string canonical;            // CanonicalSale(sale) bytes (the request content)
  std::string prev_hash;            // 32 raw bytes: previous sale's hash, or the store genesis
  std::string hash;                 // 32 raw bytes: SHA-256(prev_hash || CanonicalRecord(...))
  bool uploaded = false;            // reached the cloud (sync); false until sync exists
  Sale sale;                        // decoded back from `canonical` (sales, refunds, voids)
  std::optional<StoreEvent> event;  // decoded back from `canonical` (store events)

  bool is_event() const { return event.has_value(); }
};

std::string_view SaleTypeName(SaleType type);  // "sale" | "refund" | "void"

}  // namespace machub::core
