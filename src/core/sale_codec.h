#pragma once
// Decoding and validating POST /v1/sales bodies, the canonical encoding of a sale, and
// the JSON answers built from stored sales.
//
// Validation rules (API.md): each failure is a Status with a stable code and the JSON
// path of the field: kInvalidJson (not JSON / not an object / duplicate keys),
// kMissingField, kInvalidField (wrong type, bad format, out of range, unknown currency,
// a refund without ref, ...), kTotalMismatch ("total" differs from the computation, or a
// sale paid less than its total: field "payments"), kCardNumberForbidden (a card number
// in any payment field, field like "payments[1].card_token").

#include <string>
#include <string_view>

#include "core/sale.h"
#include "core/status.h"

namespace machub::core {

// Parses, validates and computes totals (tax per line = round_half_up(net * rate)).
Result<Sale> DecodeSale(std::string_view json);

// Canonical bytes of the request content: compact JSON, fixed key order, amounts and
// quantities formatted canonically, optional fields omitted when empty. Two bodies that
// mean the same sale ("3.5" vs "3.50", keys reordered, spaces) give the same bytes.
// Stable across versions: changing it breaks idempotency and the chain (docs/JOURNAL.md).
std::string CanonicalSale(const Sale& sale);

// Inverse of CanonicalSale (used when reading the journal).
Result<Sale> DecodeCanonical(std::string_view canonical);

// Full JSON of a stored sale (GET /v1/sales/{id}, JSON Lines export): the sale's fields as
// sent (money as decimal strings), plus seq, receipt_no, received_at, clock_skew, computed
// totals, hash and prev_hash (hex), uploaded.
std::string StoredSaleJson(const StoredSale& stored);

}  // namespace machub::core
