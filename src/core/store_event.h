#pragma once
// Store events: the journal entries that are not sales (issue #8). A cash drawer is
// opened with a float, cash is paid in or out with a reason, the drawer is closed with
// the counted cash, and the business day is closed by a Z report. Each event is stored
// exactly like a sale: the same gapless sequence, the same hash chain
// (core/chain.h: CanonicalRecord over the event's canonical bytes), the same idempotency
// by client-generated id.
//
// Request bodies (POST /v1/events; the Z report is built by the hub, see below):
//   {"id":"..","terminal_id":"T01","type":"drawer_open|cash_in|cash_out|drawer_close",
//    "created_at":"RFC 3339","currency":"USD","cashier":"..",        (cashier optional)
//    "amount":"100.00",            drawer_open (the float, >= 0), cash_in/cash_out (> 0)
//    "reason":"..",                cash_in/cash_out: required, 1..200 characters
//    "counted":"512.35",           drawer_close: required, >= 0
//    "counts":[{"denomination":"20.00","count":12},...]}  drawer_close: optional
// Validation (one error, the first in this order): kInvalidJson (not JSON, duplicate key
// anywhere, root not an object); kInvalidField for the first unknown member (a member
// that belongs to another event type is unknown too); then id, terminal_id, type,
// created_at, currency, cashier, amount, reason, counted, counts; then the sum of counts
// (kTotalMismatch "counts" when it differs from counted). Field rules are those of a sale
// (sale_codec.h): ids, RFC 3339, known currency, decimal strings (never JSON numbers)
// with at most the currency's minor units and <= 10^15 minor units. counts: 1..50
// objects, denomination > 0, count an integer 0..10^6, no denomination twice.
// Every free-text field (cashier, reason) is checked for card numbers
// (kCardNumberForbidden) before its format.
//
// The Z report entry ("type":"z_report") is never sent by a terminal: the hub builds it
// from the journal (core/report.h) when a manager closes the day. It carries the Z
// number, the seq range it covers and the figures, so it can be re-checked from the
// uploaded objects alone.
//
// Thread-safety: all functions are pure.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"

namespace machub::core {

// kPaymentAuthorization (issue #9): the processor's answer to an offline card payment,
// recorded through POST /v1/sales/{id}/payments/{index}/authorization.
enum class EventType {
  kDrawerOpen,
  kCashIn,
  kCashOut,
  kDrawerClose,
  kZReport,
  kPaymentAuthorization
};

// "drawer_open" | "cash_in" | "cash_out" | "drawer_close" | "z_report" |
// "payment_authorization".
std::string_view EventTypeName(EventType type);
// The inverse; nullopt for anything else (including the sale types).
std::optional<EventType> EventTypeFromName(std::string_view name);
// True for "drawer_open" .. "z_report": the journal's entry type names besides
// "sale" | "refund" | "void".
bool IsEventTypeName(std::string_view name);

struct DenominationCount {
  int64_t denomination = 0;  // minor units, > 0
  int64_t count = 0;         // 0..10^6
};

struct StoreEvent {
  std::string id;           // 1..64 of [A-Za-z0-9._:-], shares the id space with sales
  std::string terminal_id;  // 1..32 of [A-Za-z0-9._-]; z_report: the closing terminal
                            // or empty (a manager without a terminal)
  EventType type = EventType::kDrawerOpen;
  int64_t created_at_ms = 0;
  std::string currency;
  std::string cashier;  // optional
  // drawer_open: the float; cash_in/cash_out: the amount; drawer_close: counted cash.
  int64_t amount = 0;
  std::string reason;                     // cash_in/cash_out
  std::vector<DenominationCount> counts;  // drawer_close, optional
  // z_report only:
  int64_t z_number = 0;   // 1, 2, ... per store
  int64_t first_seq = 0;  // the entries the report covers: first_seq..last_seq
  int64_t last_seq = 0;   // (last_seq is the entry before the Z report itself)
  std::string figures;    // ReportFiguresJson(...) bytes (core/report.h)
  // payment_authorization only (the hub fills terminal_id, currency and amount from the
  // sale; created_at too when the request has none):
  std::string sale_id;        // the sale whose payment this answers
  int64_t payment_index = 0;  // its index in the sale's payments, from 0
  std::string result;         // "approved" | "declined"
  std::string auth_code;      // optional, 1..64 characters
  // `reason` (optional, 1..200 characters): why it was declined.
};

// Parses and validates a terminal's request body (drawer_open, cash_in, cash_out,
// drawer_close). A body with "type":"z_report" or a sale type: kInvalidField "type".
Result<StoreEvent> DecodeEventRequest(std::string_view json);

// Parses and validates a POST /v1/reports/z body:
//   {"id":"..","created_at":"RFC 3339","terminal_id":"..","cashier":"..","currency":"USD"}
// (terminal_id, cashier and currency optional). The result has type kZReport and no
// figures yet; currency is empty when not sent.
Result<StoreEvent> DecodeZRequest(std::string_view json);

// Parses and validates a POST /v1/sales/{sale_id}/payments/{index}/authorization body:
//   {"id":"..","result":"approved"|"declined","auth_code":"..","reason":"..",
//    "created_at":"RFC 3339"}   (auth_code, reason and created_at optional)
// `sale_id` and `payment_index` come from the path (checked like an id, index >= 0). The
// result has type kPaymentAuthorization; created_at_ms is 0 when not sent.
Result<StoreEvent> DecodeAuthorizationRequest(std::string_view json, std::string_view sale_id,
                                              int64_t payment_index);

// Canonical bytes, compact JSON with keys in exactly this order (absent = omitted):
//   {"id","terminal_id" (omitted when empty),"type","created_at" (UTC, ms),"currency",
//    "cashier" (if non-empty),
//    drawer_open / cash_in / cash_out: "amount", "reason" (cash_in/out)
//    drawer_close: "counted", "counts":[{"denomination","count" (a JSON number)}] (if any)
//    z_report: "z_number","first_seq","last_seq" (JSON numbers),"figures":{...}
//    payment_authorization: "sale_id","payment_index" (a JSON number),"amount","result",
//      "auth_code" (if any),"reason" (if any)}
// Amounts in exactly the currency's minor units ("100.00"). Stable across versions:
// changing it breaks idempotency and the chain.
std::string CanonicalEvent(const StoreEvent& event);

// Full JSON of a stored event (GET /v1/sales/{id} and the list, JSON Lines export): the
// canonical members with the journal's own inserted after "id", in this order:
//   id, seq (number), receipt_no, terminal_id (if any), type, created_at, received_at
//   (RFC 3339 ms), clock_skew (bool), currency, cashier (if any), the type's members as in
//   CanonicalEvent, hash, prev_hash (hex), uploaded (bool).
struct EntryPlace {
  int64_t seq = 0;
  std::string_view receipt_no;
  int64_t received_at_ms = 0;
  bool clock_skew = false;
  bool clock_untrusted = false;
  std::string_view hash;       // 32 raw bytes
  std::string_view prev_hash;  // 32 raw bytes
  bool uploaded = false;
};
std::string StoredEventJson(const StoreEvent& event, const EntryPlace& place);

// Inverse of CanonicalEvent for bytes read from the journal or an uploaded object.
// Bytes that are not exactly canonical (re-encoding differs) -> kInternal.
Result<StoreEvent> DecodeCanonicalEvent(std::string_view canonical);

// The "type" of canonical entry bytes ("sale", "refund", "void", "drawer_open", ...),
// read without a full decode; empty when the bytes carry no top-level string "type".
std::string EntryTypeOf(std::string_view canonical);

}  // namespace machub::core
