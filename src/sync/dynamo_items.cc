#include "sync/dynamo_items.h"

#include <set>
#include <string>

#include "core/sha256.h"
#include "sync/batch_format.h"

namespace machub::sync {
namespace {

using nlohmann::json;

json S(std::string_view v) { return {{"S", std::string(v)}}; }
json N(int64_t v) { return {{"N", std::to_string(v)}}; }
json B(bool v) { return {{"BOOL", v}}; }

int64_t ValueBytes(const json& av) {
  if (!av.is_object() || av.empty()) return 0;
  // Read the key through a named iterator: a structured binding on
  // *av.items().begin() refers into a temporary proxy (ASan: use after scope).
  const auto first = av.begin();
  const std::string& type = first.key();
  const json& v = first.value();
  if (type == "S") return static_cast<int64_t>(v.get_ref<const std::string&>().size());
  if (type == "N") return static_cast<int64_t>(v.get_ref<const std::string&>().size()) / 2 + 2;
  if (type == "BOOL" || type == "NULL") return 1;
  int64_t total = 3;
  if (type == "L") {
    for (const auto& e : v) total += 1 + ValueBytes(e);
  } else if (type == "M") {
    for (const auto& [name, e] : v.items()) {
      total += 1 + static_cast<int64_t>(name.size()) + ValueBytes(e);
    }
  }
  return total;
}

}  // namespace

int64_t DynamoItemBytes(const json& item) {
  int64_t total = 0;
  for (const auto& [name, av] : item.items()) {
    total += static_cast<int64_t>(name.size()) + ValueBytes(av);
  }
  return total;
}

json SalesKey(std::string_view store_id, int64_t seq) {
  return {{"store_id", S(store_id)}, {"seq", N(seq)}};
}

namespace {

// A store event's item: the common attributes of every entry, then the event's own.
Result<DynamoSalesItem> MakeEventItem(std::string_view store_id, const core::StoredSale& stored,
                                      int64_t max_item_bytes) {
  const core::StoreEvent& event = *stored.event;
  json item = SalesKey(store_id, stored.seq);
  item["entry_id"] = S(event.id);
  item["entry_hash"] = S(core::ToHex(stored.hash));
  item["type"] = S(core::EventTypeName(event.type));
  // Empty strings are left out (a Z report closed by a manager without a terminal, the
  // empty receipt number of a drawer event): older DynamoDB and dynalite refuse them.
  if (!event.terminal_id.empty()) item["terminal_id"] = S(event.terminal_id);
  if (!stored.receipt_no.empty()) item["receipt_no"] = S(stored.receipt_no);
  if (!event.cashier.empty()) item["cashier"] = S(event.cashier);
  item["currency"] = S(event.currency);
  item["created_at_ms"] = N(event.created_at_ms);
  item["received_at_ms"] = N(stored.received_at_ms);
  item["date"] = S(UtcDate(stored.received_at_ms));
  item["clock_skew"] = B(stored.clock_skew);
  if (stored.clock_untrusted) item["clock_untrusted"] = B(true);
  item["format_version"] = N(1);
  switch (event.type) {
    case core::EventType::kDrawerOpen:
    case core::EventType::kCashIn:
    case core::EventType::kCashOut:
      item["amount"] = N(event.amount);
      if (!event.reason.empty()) item["reason"] = S(event.reason);
      break;
    case core::EventType::kDrawerClose: {
      item["counted"] = N(event.amount);
      if (!event.counts.empty()) {
        json counts = json::array();
        for (const core::DenominationCount& c : event.counts) {
          counts.push_back({{"M", {{"denomination", N(c.denomination)}, {"count", N(c.count)}}}});
        }
        item["counts"] = {{"L", counts}};
      }
      break;
    }
    case core::EventType::kPaymentAuthorization:
      item["sale_id"] = S(event.sale_id);
      item["payment_index"] = N(event.payment_index);
      item["amount"] = N(event.amount);
      item["result"] = S(event.result);
      if (!event.auth_code.empty()) item["auth_code"] = S(event.auth_code);
      if (!event.reason.empty()) item["reason"] = S(event.reason);
      break;
    case core::EventType::kZReport:
      item["z_number"] = N(event.z_number);
      item["first_seq"] = N(event.first_seq);
      item["last_seq"] = N(event.last_seq);
      item["figures"] = S(event.figures);
      break;
  }
  DynamoSalesItem out;
  out.bytes = DynamoItemBytes(item);
  if (out.bytes > max_item_bytes && item.contains("figures")) {
    // A Z report of thousands of terminals: the figures stay in S3 (and in the journal).
    item.erase("figures");
    item["figures_omitted"] = B(true);
    out.figures_omitted = true;
    out.bytes = DynamoItemBytes(item);
  }
  if (out.bytes > max_item_bytes) {
    return Status(ErrorCode::kInvalidArgument,
                  "entry " + std::to_string(stored.seq) + " does not fit a DynamoDB item");
  }
  out.item = std::move(item);
  return out;
}

}  // namespace

Result<DynamoSalesItem> MakeSalesItem(std::string_view store_id, const core::StoredSale& stored,
                                      int64_t max_item_bytes) {
  if (stored.is_event()) return MakeEventItem(store_id, stored, max_item_bytes);
  const core::Sale& sale = stored.sale;
  json item = SalesKey(store_id, stored.seq);
  item["entry_id"] = S(sale.id);
  item["entry_hash"] = S(core::ToHex(stored.hash));
  item["type"] = S(core::SaleTypeName(sale.type));
  if (!sale.ref.empty()) item["ref"] = S(sale.ref);
  item["terminal_id"] = S(sale.terminal_id);
  item["receipt_no"] = S(stored.receipt_no);
  if (!sale.cashier.empty()) item["cashier"] = S(sale.cashier);
  item["currency"] = S(sale.currency);
  item["created_at_ms"] = N(sale.created_at_ms);
  item["received_at_ms"] = N(stored.received_at_ms);
  item["date"] = S(UtcDate(stored.received_at_ms));
  item["subtotal"] = N(sale.subtotal);
  item["tax_total"] = N(sale.tax_total);
  item["total"] = N(sale.total);
  item["paid"] = N(sale.paid);
  item["change"] = N(sale.change);
  item["clock_skew"] = B(stored.clock_skew);
  if (stored.clock_untrusted) item["clock_untrusted"] = B(true);
  item["format_version"] = N(1);
  json payments = json::array();
  for (const auto& p : sale.payments) {
    json m = {{"method", S(p.method)}, {"amount", N(p.amount)}, {"offline", B(p.offline)}};
    if (!p.card_token.empty()) m["card_token"] = S(p.card_token);
    if (!p.last4.empty()) m["last4"] = S(p.last4);
    if (!p.brand.empty()) m["brand"] = S(p.brand);
    if (!p.auth_code.empty()) m["auth_code"] = S(p.auth_code);
    payments.push_back({{"M", m}});
  }
  json lines = json::array();
  for (const auto& l : sale.lines) {
    json m = {{"sku", S(l.sku)},
              {"qty_milli", N(l.qty_milli)},
              {"unit_price", N(l.unit_price)},
              {"discount", N(l.discount)},
              {"tax_rate_micro", N(l.tax_rate_micro)},
              {"net", N(l.net)},
              {"tax", N(l.tax)}};
    if (!l.name.empty()) m["name"] = S(l.name);
    lines.push_back({{"M", m}});
  }
  DynamoSalesItem out;
  item["payments"] = {{"L", payments}};
  item["lines"] = {{"L", lines}};
  out.bytes = DynamoItemBytes(item);
  if (out.bytes > max_item_bytes) {
    item.erase("lines");
    item["lines_omitted"] = B(true);
    item["line_count"] = N(static_cast<int64_t>(sale.lines.size()));
    out.lines_omitted = true;
    out.bytes = DynamoItemBytes(item);
  }
  if (out.bytes > max_item_bytes) {
    item.erase("payments");
    item["payments_omitted"] = B(true);
    item["payment_count"] = N(static_cast<int64_t>(sale.payments.size()));
    out.payments_omitted = true;
    out.bytes = DynamoItemBytes(item);
  }
  if (out.bytes > max_item_bytes) {
    return Status(ErrorCode::kInvalidArgument,
                  "entry " + std::to_string(stored.seq) + " does not fit a DynamoDB item");
  }
  out.item = std::move(item);
  return out;
}

nlohmann::json StoreAlertAttributes(const std::vector<std::string>& alert_codes,
                                    bool dynamo_integrity_alert) {
  std::set<std::string> codes(alert_codes.begin(), alert_codes.end());
  if (dynamo_integrity_alert) codes.insert("dynamodb_integrity_alert");
  nlohmann::json out = nlohmann::json::object();
  out["alerts"] = {{"N", std::to_string(codes.size())}};
  if (!codes.empty()) out["alert_codes"] = {{"SS", codes}};
  return out;
}

}  // namespace machub::sync
