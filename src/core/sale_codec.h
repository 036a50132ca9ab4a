#pragma once
// Decoding and validating POST /v1/sales bodies, the canonical encoding of a sale, and
// the JSON answers built from stored sales.
//
// Validation rules (API.md): each failure is a Status with a stable code and the JSON
// path of the field: kInvalidJson (not JSON / not an object / duplicate keys),
// kMissingField, kInvalidField (wrong type, bad format, out of range, unknown currency,
// a refund without ref, ...), kTotalMismatch ("total" differs from the computation, or a
// sale paid less than its total: field "payments"), kCardNumberForbidden (a card number
// in any free-text field, field like "payments[1].card_token"), kCardOverpayment
// (non-cash payments above the total, field "payments").
//
// Precisely (one error is reported; the first in this order):
//  1. kInvalidJson, field "": not JSON, invalid UTF-8, trailing bytes, root not an object,
//     or a duplicate key in ANY object (readers disagree on which copy wins).
//  2. kInvalidField: the first unknown member in document order, at any level
//     ("lines[0].colour"), so that nothing sent is silently dropped. A member name that is
//     not plain [A-Za-z0-9_.-]{1,64} (or looks like a card number) is not echoed: the field
//     is then the enclosing object's path ("" at the root).
//  3. The fields in this order: id, terminal_id, type, ref, created_at, currency, cashier,
//     lines (count, then each line: sku, name, qty, unit_price, discount, tax_rate, then
//     its amounts), payments (count, then each: method, amount, card_token, last4, brand,
//     auth_code, offline), total, then the payment sum.
//  - JSON null counts as absent everywhere. Absent required field: kMissingField. Any
//    other wrong JSON type: kInvalidField. Money, qty and tax_rate must be JSON strings
//    ("must be a decimal string"); a JSON number is refused.
//  - id, ref: 1..64 of [A-Za-z0-9._:-], the first a letter or digit. terminal_id: 1..32 of
//  [A-Za-z0-9._-].
//    type: "sale" (default) | "refund" | "void". ref: required for refund/void
//    (kMissingField), forbidden for a sale, must differ from id. created_at: RFC 3339
//    (time_format.h). currency: known to FindCurrency.
//  - Text fields count characters (code points) and refuse control characters
//    (U+0000-U+001F, U+007F): sku 1..64, name <= 200, cashier <= 64, card_token <= 128,
//    brand <= 32, auth_code <= 64. method: 1..32 of [a-z0-9_]. last4: exactly 4 digits.
//    An empty optional string is the same as an absent one.
//  - lines: 1..1000 objects. qty: decimal with <= 3 places, 0 < qty <= 1000000.
//    unit_price, discount (default 0), payment amounts, total: decimals with at most the
//    currency's minor units, >= 0, <= 10^15 minor units. discount <= the line's gross.
//    tax_rate: <= 6 places, 0..1 (default 0).
//  - payments: optional, <= 20 objects. card_token is required (kMissingField) and
//    non-empty when method == "card". offline: bool.
//  - kCardNumberForbidden (card_number.h, CheckNoCardNumber) for every free-text field:
//    id, terminal_id, ref, cashier, each line's sku and name, each payment's method,
//    card_token, last4, brand, auth_code — checked before that field's format; and for a
//    payment amount (CheckNoCardNumberInAmount), after it parsed.
//  - Amounts: gross = round_half_up(qty_milli * unit_price / 1000); net = gross -
//    discount; tax = round_half_up(net * tax_rate_micro / 10^6); subtotal, tax_total,
//    total = subtotal + tax_total, paid: sums. Any gross or sum above 10^15 minor units:
//    kInvalidField "amount too large" (field "lines[i]", "lines" or "payments").
//  - total, when sent, must equal the computed total (kTotalMismatch "total").
//    Sale: paid >= total (else kTotalMismatch "payments"); the payments whose method is
//    not "cash" add up to at most the total (else kCardOverpayment "payments": change is
//    given only from cash); change = paid - total.
//    Refund/void: when payments are sent their sum must equal the total (kTotalMismatch
//    "payments"); change = 0.
// Messages are sentences that never quote a client's value (only limits and, for
// total_mismatch, the hub's own computed amounts).
//
// Thread-safety: all functions are pure and may be called from any thread.

#include <string>
#include <string_view>

#include "core/sale.h"
#include "core/status.h"

namespace machub::core {

// Parses, validates and computes totals (tax per line = round_half_up(net * rate)).
// The Sale's declared_total is set when "total" was sent.
Result<Sale> DecodeSale(std::string_view json);

// Canonical bytes of the request content: compact JSON, fixed key order, amounts and
// quantities formatted canonically, optional fields omitted when empty. Two bodies that
// mean the same sale ("3.5" vs "3.50", keys reordered, spaces) give the same bytes.
// Stable across versions: changing it breaks idempotency and the chain (docs/JOURNAL.md).
//
// Layout (no whitespace, keys in exactly this order):
//   {"id":..,"terminal_id":..,"type":"sale|refund|void","ref":.. (only if non-empty),
//    "created_at":"YYYY-MM-DDTHH:MM:SS.mmmZ","currency":..,"cashier":.. (only if non-empty),
//    "lines":[{"sku":..,"name":.. (only if non-empty),"qty":..,"unit_price":..,
//              "discount":..,"tax_rate":..},...],
//    "payments":[{"method":..,"amount":..,"card_token","last4","brand","auth_code"
//                 (each only if non-empty),"offline":true (only if true)},...]}
// "payments" is always present ([] when none). qty and tax_rate: minimal decimals, no
// trailing zeros ("2", "0.5", "0.0825", "0"). unit_price, discount, amount: exactly the
// currency's minor units ("3.50", "0.00"; JPY "350"). The declared "total" is not part of
// it (the same sale sent with or without it has the same bytes). Strings: '"' and '\\'
// escaped, control characters as \b \f \n \r \t or \u00xx, everything else (incl.
// non-ASCII UTF-8 and '/') copied verbatim.
std::string CanonicalSale(const Sale& sale);

// Inverse of CanonicalSale (used when reading the journal): DecodeSale on the stored
// bytes, so every computed field is filled — except the request-only rules (card numbers,
// an id's first character, card overpayment), so that rows stored before a rule was added
// stay readable. Bytes that do not decode are corruption:
// kInternal (with the decoder's reason in the message).
Result<Sale> DecodeCanonical(std::string_view canonical);

// DecodeCanonical for bytes the journal stored (validated when they were written, read
// back for every upload and GET): a direct reader of exactly the layout CanonicalSale
// writes, which skips the request checks (card numbers, text rules, id characters) but
// computes every amount the same way. Anything outside that layout (another key order,
// whitespace, a non-canonical decimal, an escape CanonicalSale does not write, an amount
// rule broken) goes to DecodeCanonical, so the answer and any error are the same.
Result<Sale> DecodeStoredCanonical(std::string_view canonical);
// The reader alone: false (and *out untouched) when `canonical` is not exactly in the
// layout. For tests and DecodeStoredCanonical.
bool TryDecodeCanonicalLayout(std::string_view canonical, Sale* out);

// Full JSON of a stored sale (GET /v1/sales/{id}, JSON Lines export): the sale's fields as
// sent (money as decimal strings), plus seq, receipt_no, received_at, clock_skew, computed
// totals, hash and prev_hash (hex), uploaded. Key order:
//   id, seq (number), receipt_no, terminal_id, type, ref (if non-empty), created_at,
//   received_at (RFC 3339 ms), clock_skew (bool), currency, cashier (if non-empty),
//   lines [{sku, name (always), qty, unit_price, discount, tax_rate, net, tax}],
//   payments [{method, amount, card_token/last4/brand/auth_code (if non-empty),
//   offline (always, bool)}], subtotal, tax, total, paid, change, hash, prev_hash,
//   uploaded (bool). Money as decimal strings in the currency's minor units.
// A store event (stored.event set) is written by core::StoredEventJson instead.
std::string StoredSaleJson(const StoredSale& stored);

}  // namespace machub::core
