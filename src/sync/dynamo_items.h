#pragma once
// The DynamoDB items of the sales table (docs/DYNAMODB.md): one item per journal entry,
// a pure function of the stored entry, so a replay rewrites an identical item.
//
//   store_id  S   partition key
//   seq       N   sort key (a store's entries read in sequence order)
//   entry_id  S   the sale id; the GSI "by_entry_id" finds an entry across all stores
//   entry_hash S  hex SHA-256 of the chain record; conditional writes compare it
//   type S, ref S (refund/void), terminal_id S, receipt_no S, cashier S, currency S,
//   created_at_ms N, received_at_ms N, date S (UTC YYYY-MM-DD of received_at),
//   subtotal N, tax_total N, total N, paid N, change N   -- integers in minor units
//   lines     L of M {sku S, name S, qty_milli N, unit_price N, discount N,
//                     tax_rate_micro N, net N, tax N}
//   payments  L of M {method S, amount N, card_token S, last4 S, brand S, auth_code S,
//                     offline BOOL}   -- tokens and last 4 only, never a card number
//   clock_skew BOOL, clock_untrusted BOOL (only when true: stored while the hub's own
//   clock was untrusted), format_version N (1)
// A store event (stored.is_event()) has the same key, entry_id, entry_hash, type (the
// event's type), terminal_id, receipt_no, cashier (each left out when empty), currency,
// created_at_ms, received_at_ms, date, clock_skew (and clock_untrusted) and format_version, no sale
// amounts, and its own:
//   drawer_open / cash_in / cash_out: amount N, reason S (cash_in / cash_out)
//   drawer_close: counted N, counts L of M {denomination N, count N} (when counted by
//                 denomination)
//   z_report: z_number N, first_seq N, last_seq N, figures S (core::ReportFiguresJson,
//             the exact text of the chained entry)
//   payment_authorization: sale_id S, payment_index N, amount N, result S, auth_code S
//             and reason S (when present)
// Amounts are exact integers in minor units stored as DynamoDB numbers: exact (DynamoDB
// numbers hold 38 digits), summable in expressions, and the journal's own representation.
//
// Items over the limit: DynamoDB refuses items above 400 KB. When the full item is larger
// than `max_item_bytes` (default 350 KB, a margin under the limit), "lines" is replaced by
// lines_omitted BOOL true and line_count N; the complete entry stays in S3 (the DynamoDB
// view is a live index, S3 the full history). Should the item still be too large (huge
// payments list), payments are omitted the same way (payments_omitted, payment_count). A
// z_report too large (figures of thousands of terminals) loses its figures the same way
// (figures_omitted BOOL true).
// Thread-safety: pure functions.

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "core/sale.h"
#include "core/status.h"

namespace machub::sync {

inline constexpr int64_t kDynamoMaxItemBytes = 400 * 1024;
inline constexpr int64_t kDynamoDefaultItemBudget = 350 * 1024;
inline constexpr std::string_view kDynamoEntryIdIndex = "by_entry_id";

struct DynamoSalesItem {
  nlohmann::json item;  // attribute name -> attribute value
  int64_t bytes = 0;    // DynamoItemBytes(item)
  bool lines_omitted = false;
  bool payments_omitted = false;
  bool figures_omitted = false;  // a z_report's figures (see above)
};

// The item for one stored entry. kInvalidArgument when even the reduced item is too large.
Result<DynamoSalesItem> MakeSalesItem(std::string_view store_id, const core::StoredSale& stored,
                                      int64_t max_item_bytes = kDynamoDefaultItemBudget);

// DynamoDB's item size rule: attribute names plus values (strings as UTF-8 bytes, numbers
// about 1 byte per 2 digits + 1, booleans 1, lists/maps 3 + their elements + 1 per
// element). An upper estimate close to what DynamoDB bills.
int64_t DynamoItemBytes(const nlohmann::json& item);

// The key attributes {store_id, seq} of an entry.
nlohmann::json SalesKey(std::string_view store_id, int64_t seq);

// The stores item's alert attributes (docs/DYNAMODB.md): "alerts" (N), the number of the
// hub's raised alerts (`alert_codes`, the codes of GET /v1/alerts' array; repeats count
// once) plus 1 when the DynamoDB sink stopped on an integrity alert, and "alert_codes" (SS,
// sorted) naming them, left out when there is none (DynamoDB has no empty sets).
nlohmann::json StoreAlertAttributes(const std::vector<std::string>& alert_codes,
                                    bool dynamo_integrity_alert);

}  // namespace machub::sync
