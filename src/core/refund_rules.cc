#include "core/refund_rules.h"

#include <map>
#include <string>

#include "core/currency.h"
#include "core/money.h"

namespace machub::core {
namespace {

struct Taken {
  int64_t qty_milli = 0;
  int64_t amount = 0;  // net + tax, minor units
};

}  // namespace

Status CheckReversal(const Sale& original, const std::vector<Sale>& earlier, const Sale& reversal) {
  if (original.type != SaleType::kSale) {
    return Status(ErrorCode::kNotRefundable,
                  "ref is a refund or void; only a sale can be refunded or voided", "ref");
  }
  if (reversal.currency != original.currency) {
    return Status(ErrorCode::kCurrencyMismatch,
                  "currency must be the original sale's currency (" + original.currency + ")",
                  "currency");
  }
  for (const Sale& e : earlier) {
    if (e.type == SaleType::kVoid) {
      return Status(ErrorCode::kAlreadyVoided,
                    "the original sale was voided; it takes no refund or second void", "ref");
    }
  }
  if (reversal.type == SaleType::kVoid && !earlier.empty()) {
    return Status(ErrorCode::kNotRefundable,
                  "the original sale has refunds, so it cannot be voided; refund what is left",
                  "ref");
  }
  const Currency* currency = FindCurrency(original.currency);
  const int minor = currency != nullptr ? currency->minor_units : 2;

  // All amounts are <= 10^15 per line and <= 1000 lines per sale; sums over the original
  // and its reversals (each bounded by the original below) stay far below int64.
  std::map<std::string, Taken> limit;
  for (const Line& line : original.lines) {
    Taken& t = limit[line.sku];
    t.qty_milli += line.qty_milli;
    t.amount += line.net + line.tax;
  }
  std::map<std::string, Taken> taken;
  int64_t taken_total = 0;
  for (const Sale& e : earlier) {
    for (const Line& line : e.lines) {
      Taken& t = taken[line.sku];
      t.qty_milli += line.qty_milli;
      t.amount += line.net + line.tax;
    }
    taken_total += e.total;
  }
  for (size_t i = 0; i < reversal.lines.size(); ++i) {
    const Line& line = reversal.lines[i];
    const std::string path = "lines[" + std::to_string(i) + "]";
    const auto it = limit.find(line.sku);
    if (it == limit.end()) {
      return Status(ErrorCode::kInvalidField, "sku is not a line of the original sale",
                    path + ".sku");
    }
    Taken& t = taken[line.sku];
    t.qty_milli += line.qty_milli;
    t.amount += line.net + line.tax;
    if (t.qty_milli > it->second.qty_milli) {
      const int64_t left = it->second.qty_milli - (t.qty_milli - line.qty_milli);
      std::string qty;
      AppendDecimal(&qty, left < 0 ? 0 : left, 3, /*trim_zeros=*/true);
      return Status(ErrorCode::kRefundExceedsOriginal,
                    "the quantity exceeds what is left of this item on the original sale (" + qty +
                        " left, counting this request's earlier lines)",
                    path);
    }
    if (t.amount > it->second.amount) {
      const int64_t left = it->second.amount - (t.amount - line.net - line.tax);
      return Status(ErrorCode::kRefundExceedsOriginal,
                    "the amount exceeds what is left of this item on the original sale (" +
                        FormatAmount(left < 0 ? 0 : left, minor) +
                        " left incl. tax, counting this request's earlier lines)",
                    path);
    }
  }
  if (taken_total + reversal.total > original.total) {
    const int64_t left = original.total - taken_total;
    return Status(ErrorCode::kRefundExceedsOriginal,
                  "the total exceeds what is left of the original sale (" +
                      FormatAmount(left < 0 ? 0 : left, minor) + ")",
                  "total");
  }
  return Status::Ok();
}

}  // namespace machub::core
